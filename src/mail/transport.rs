//! Where messages go: `.eml` files in a folder (the default, so the main job
//! needs no mail server) or an SMTP relay.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::{ClientId, Extension};
use lettre::transport::smtp::response::Response;

use super::pipelining;
use crate::config::env::Secret;
use crate::config::{Mail, Tls, Transport};

/// Why a send failed, as a retry loop needs to know it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: a 4xx reply, a dropped connection, a timeout.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Not worth trying again: a 5xx reply. `address_rejected` when the
    /// server refused the recipient itself (the subscriber has bounced).
    #[error("permanent failure: {message}")]
    Permanent {
        message: String,
        address_rejected: bool,
    },
    /// `[mail] transport` cannot work as set up: TLS that the server does
    /// not offer or that fails, a login refused or missing, an outbox that
    /// cannot be written. No message can go until the operator changes
    /// something, so this stops a send instead of failing each message;
    /// the text names the transport and what to do.
    #[error("{0}")]
    Config(String),
}

/// A [`SendError::Config`] about the relay `server` (`host:port`): what
/// is wrong, then what to do.
fn setup_error(server: &str, what: impl std::fmt::Display, fix: &str) -> SendError {
    SendError::Config(format!("[mail] transport: {server}: {what}. To fix: {fix}"))
}

/// What to do when a login is refused or missing.
const FIX_LOGIN: &str = "check the user in the transport URL (smtp://USER@host) and the password \
                         in the environment variable TIDINGS_SMTP_PASSWORD";
/// What to do when TLS fails.
const FIX_TLS: &str = "check the port and the TLS mode: `?tls=starttls` (the default, port 587) \
                       upgrades a plain connection, `?tls=tls` (port 465) speaks TLS from the \
                       first byte, `?tls=none` (only for a relay on this host) none at all; \
                       and check that the server's certificate is valid for its name";

/// A ready transport.
#[derive(Clone)]
pub enum Sender {
    /// Writes `<message-id>.eml` files into the folder.
    File(PathBuf),
    /// SMTP: lettre's SMTP client on connections kept open for the next
    /// message; a message's commands go in one write where the relay
    /// offers `PIPELINING` (see [`pipelining`]).
    Relay(Arc<Relay>),
}

/// Connections to one relay. A plain connection (upgraded with STARTTLS
/// or not) is opened here with `TCP_NODELAY`: lettre 0.11's own `send`
/// writes a message's body and its closing `.` in two writes, and with
/// Nagle's algorithm on the second waits for the acknowledgement of the
/// first, which the server delays by 40 ms (fixed upstream in lettre#1159,
/// not yet released). One with TLS from the first byte is opened by lettre,
/// which sets no `TCP_NODELAY`; on it, as on every connection to a relay
/// that offers `PIPELINING`, the body and its `.` go in one write, each
/// write after the server's reply to the last, so nothing waits.
pub struct Relay {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    hello: ClientId,
    /// Open connections not in use, with when each was last used.
    idle: Mutex<Vec<(Connection, Instant)>>,
    max_idle: usize,
}

/// An open connection to the relay, and whether the relay takes a
/// message's commands in one write (`PIPELINING`, see [`pipelining`]).
struct Connection {
    smtp: AsyncSmtpConnection,
    pipelining: bool,
}

/// A connection idle longer than this is checked with `NOOP` before use:
/// servers close idle sessions, and a message should not pay for that.
const CHECK_AFTER: Duration = Duration::from_secs(5);

impl Relay {
    fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// A new connection, through STARTTLS and the login as configured. A
    /// server that does not offer STARTTLS, a handshake that fails or a
    /// login refused is [`SendError::Config`]; a refused or dropped
    /// connection, or a 4xx reply, is [`SendError::Transient`].
    async fn connect(&self) -> Result<Connection, SendError> {
        let server = self.server();
        if matches!(self.tls, Tls::Tls) {
            let tls = TlsParameters::new(self.host.clone()).map_err(|e| {
                let what = format!("cannot set up TLS for `{}`: {e}", self.host);
                setup_error(&server, what, FIX_TLS)
            })?;
            let conn = AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(SMTP_TIMEOUT),
                &self.hello,
                Some(tls),
                None,
            )
            .await
            .map_err(|e| classify_implicit_tls(&e, &server))?;
            return self.ready(conn, &server).await;
        }
        let refused =
            |e: std::io::Error| SendError::Transient(format!("cannot connect to {server}: {e}"));
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(refused)?;
        stream.set_nodelay(true).map_err(refused)?;
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
            .await
            .map_err(|e| classify(&e, &server))?;
        if matches!(self.tls, Tls::Starttls) {
            starttls(&mut conn, &self.host, &server, &self.hello).await?;
        }
        self.ready(conn, &server).await
    }

    /// A connection past its greeting and TLS: whether the relay offers
    /// `PIPELINING`, and the login.
    async fn ready(
        &self,
        mut conn: AsyncSmtpConnection,
        server: &str,
    ) -> Result<Connection, SendError> {
        let pipelining = pipelining::offered(&mut conn, &self.hello)
            .await
            .map_err(|e| classify(&e, server))?;
        if let Some(credentials) = &self.credentials {
            login(&mut conn, credentials, server).await?;
        }
        Ok(Connection {
            smtp: conn,
            pipelining,
        })
    }

    async fn send(&self, message: &Message) -> Result<Response, SendError> {
        let reused = loop {
            let Some((mut conn, since)) = self.idle.lock().expect("not poisoned").pop() else {
                break None;
            };
            if conn.smtp.has_broken() {
                continue;
            }
            if since.elapsed() < CHECK_AFTER || conn.smtp.test_connected().await {
                break Some(conn);
            }
        };
        let mut conn = match reused {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let (envelope, email) = (message.envelope(), message.formatted());
        let reply = if conn.pipelining {
            pipelining::send(&mut conn.smtp, envelope, &email).await
        } else {
            conn.smtp.send(envelope, &email).await
        }
        .map_err(|e| classify(&e, &self.server()));
        // lettre closes the connection after a failed transaction.
        if !conn.smtp.has_broken() {
            let mut idle = self.idle.lock().expect("not poisoned");
            if idle.len() < self.max_idle {
                idle.push((conn, Instant::now()));
            }
        }
        reply
    }
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sender::File(dir) => write!(f, "Sender::File({})", dir.display()),
            Sender::Relay(relay) => write!(f, "Sender::Relay({}:{})", relay.host, relay.port),
        }
    }
}

/// How long one SMTP command may take before the attempt counts as a
/// temporary failure.
pub(crate) const SMTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The login of `user`, with `password` (`TIDINGS_SMTP_PASSWORD`).
pub(crate) fn credentials(user: &str, password: Option<&Secret>) -> Result<Credentials> {
    let password = password.ok_or_else(|| {
        anyhow!(
            "[mail] transport names the user `{user}`: set its password in the environment \
             variable TIDINGS_SMTP_PASSWORD"
        )
    })?;
    Ok(Credentials::new(
        user.to_owned(),
        password.expose().to_owned(),
    ))
}

impl Sender {
    pub fn new(mail: &Mail) -> Result<Sender> {
        match &mail.transport {
            Transport::File(dir) => {
                fs_err::create_dir_all(dir)?;
                Ok(Sender::File(dir.clone()))
            }
            Transport::Smtp {
                host,
                port,
                user,
                tls,
            } => {
                let password = mail.smtp_password.as_ref();
                let credentials = user
                    .as_deref()
                    .map(|user| credentials(user, password))
                    .transpose()?;
                Ok(Sender::Relay(Arc::new(Relay {
                    host: host.clone(),
                    port: *port,
                    tls: *tls,
                    credentials,
                    hello: ClientId::default(),
                    idle: Mutex::new(Vec::new()),
                    max_idle: mail.concurrency,
                })))
            }
        }
    }

    /// Sends one message; returns the transport's reply (for the ledger).
    pub async fn send(&self, message_id: &str, message: &Message) -> Result<String, SendError> {
        match self {
            Sender::File(dir) => {
                let path = write_new_file(dir, message_id, &delivered_bytes(message))?;
                Ok(format!("written to {}", path.display()))
            }
            Sender::Relay(relay) => {
                match tokio::time::timeout(SMTP_TIMEOUT, relay.send(message)).await {
                    Ok(Ok(reply)) => Ok(describe(&reply)),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(SendError::Transient(format!(
                        "no answer from {}:{} within {} s",
                        relay.host,
                        relay.port,
                        SMTP_TIMEOUT.as_secs()
                    ))),
                }
            }
        }
    }
}

/// The message as a mailbox holds it after final delivery: when its
/// envelope sender is not its From address (the VERP address of
/// `[bounces] return_path`), a `Return-Path:` line first, as the delivery
/// agent writes it (RFC 5321, 4.4), so the outbox records where bounces
/// would go. Otherwise the bytes as sent.
fn delivered_bytes(message: &Message) -> Vec<u8> {
    let bytes = message.formatted();
    let from: Option<lettre::message::Mailboxes> = message
        .headers()
        .get::<lettre::message::header::From>()
        .map(Into::into);
    let sender = message.envelope().from();
    let same = from
        .as_ref()
        .and_then(|f| f.iter().next())
        .is_some_and(|f| Some(&f.email) == sender);
    match sender {
        Some(sender) if !same => {
            let mut out = format!("Return-Path: <{sender}>\r\n").into_bytes();
            out.extend_from_slice(&bytes);
            out
        }
        _ => bytes,
    }
}

/// Writes a message into `dir` as `<message-id>.eml` and returns the
/// path. Never over a file already there: the bytes go to a temporary
/// file first, which is then linked under the name only if the name is
/// free (`persist_noclobber`); when it is taken (a digest delivery sent
/// again after a crash keeps its Message-ID) the copy is kept beside it as
/// `<message-id>.2.eml`, `.3.eml`, …, as a mailbox would hold both. A
/// folder that cannot be written is [`SendError::Config`].
fn write_new_file(dir: &Path, message_id: &str, bytes: &[u8]) -> Result<PathBuf, SendError> {
    let name: String = message_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let failed = |path: &Path, e: std::io::Error| file_error(dir, path, e);
    let mut tmp = tempfile::Builder::new()
        .prefix(".tidings-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| failed(dir, e))?;
    let written = tmp
        .write_all(bytes)
        .and_then(|()| tmp.as_file().sync_data())
        .and_then(|()| {
            // Temporary files are private; the outbox's files are read by
            // whatever picks them up, as before.
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
        });
    written.map_err(|e| failed(tmp.path(), e))?;
    for n in 1..=1000u32 {
        let path = match n {
            1 => dir.join(format!("{name}.eml")),
            n => dir.join(format!("{name}.{n}.eml")),
        };
        match tmp.persist_noclobber(&path) {
            Ok(_) => return Ok(path),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => tmp = e.file,
            Err(e) => return Err(failed(&path, e.error)),
        }
    }
    Err(SendError::Transient(format!(
        "{}: a thousand files named {name}.*.eml already",
        dir.display()
    )))
}

/// An I/O error of the `file:` transport: one that no later attempt fixes
/// (no permission, a read-only or missing folder) stops the send.
pub(crate) fn file_error(dir: &Path, path: &Path, e: std::io::Error) -> SendError {
    use std::io::ErrorKind::*;
    let message = format!("cannot write {}: {e}", path.display());
    match e.kind() {
        PermissionDenied | ReadOnlyFilesystem | NotFound | NotADirectory => {
            SendError::Config(format!(
                "[mail] transport: {message}. To fix: make {} a folder that the user tidings \
                 runs as can write, or name another with transport = \"file:DIR\"",
                dir.display()
            ))
        }
        _ => SendError::Transient(message),
    }
}

fn describe(reply: &Response) -> String {
    format!(
        "{} {}",
        reply.code(),
        reply.message().collect::<Vec<_>>().join(" ")
    )
}

/// Sorts an SMTP error into what the retry loop needs. Replies that say
/// the setup is wrong rather than the message — 530 (a login or TLS is
/// required first), 534 and 538 (a stronger login or encryption is
/// required), 535 (the login was refused) — and lettre's TLS errors are
/// [`SendError::Config`] (a failed STARTTLS is sorted where it happens,
/// in [`starttls`]; one of TLS from the first byte by
/// [`classify_implicit_tls`]). Other 5xx replies are permanent (and 550,
/// 551 and 553 — unknown or refused mailbox — mean the address itself
/// bounced); everything else (4xx, a dropped connection, a timeout) may go
/// through later.
pub(crate) fn classify(e: &lettre::transport::smtp::Error, server: &str) -> SendError {
    let message = without_repeats(&e.to_string());
    let code = e.status().map(|c| c.to_string()).unwrap_or_default();
    match code.as_str() {
        "530" => {
            return setup_error(
                server,
                format!("the server takes no mail without a login or encryption: {message}"),
                "name the user in the transport URL (smtp://USER@host) with its password in \
                 TIDINGS_SMTP_PASSWORD, and use TLS (`?tls=starttls` or `?tls=tls`) if the \
                 server asks for it",
            );
        }
        "534" | "535" | "538" => {
            return setup_error(
                server,
                format!("the server refused the login: {message}"),
                FIX_LOGIN,
            );
        }
        _ => {}
    }
    if e.is_tls() {
        return setup_error(server, format!("TLS failed: {message}"), FIX_TLS);
    }
    // lettre's pooled transport says so when the server offers no login
    // it speaks; nothing but the text tells.
    if e.is_client() && message.contains("authentication mechanism") {
        return setup_error(
            server,
            format!("the server offers no login that tidings speaks (PLAIN or LOGIN): {message}"),
            FIX_LOGIN,
        );
    }
    if e.is_permanent() {
        let address_rejected =
            matches!(code.as_str(), "550" | "551" | "553") || message.contains(" 5.1.");
        SendError::Permanent {
            message,
            address_rejected,
        }
    } else {
        SendError::Transient(message)
    }
}

/// lettre's message with a part said twice in a row said once
/// ("Connection error: Connection error: …" from nested errors).
fn without_repeats(message: &str) -> String {
    let mut parts: Vec<&str> = message.split(": ").collect();
    parts.dedup_by(|b, a| a.eq_ignore_ascii_case(b));
    parts.join(": ")
}

/// [`classify`] for a connection with TLS from the first byte, where a
/// failed handshake reaches us only as an I/O error of kind `InvalidData`
/// (how rustls reports a certificate refused or a server that does not
/// speak TLS on the port) inside lettre's connection error. Only there:
/// on a plain connection the same kind means a reply that is not UTF-8.
pub(crate) fn classify_implicit_tls(e: &lettre::transport::smtp::Error, server: &str) -> SendError {
    if handshake_failed(e) {
        let message = without_repeats(&e.to_string());
        return setup_error(server, format!("TLS failed: {message}"), FIX_TLS);
    }
    classify(e, server)
}

fn handshake_failed(e: &lettre::transport::smtp::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::InvalidData;
        }
        source = cause.source();
    }
    false
}

/// Upgrades `conn` with STARTTLS, which the transport requires: a server
/// that does not offer it, or a handshake that fails, is
/// [`SendError::Config`]; a 4xx reply to STARTTLS is transient.
pub(crate) async fn starttls(
    conn: &mut AsyncSmtpConnection,
    host: &str,
    server: &str,
    hello: &ClientId,
) -> Result<(), SendError> {
    if !conn.can_starttls() {
        return Err(setup_error(
            server,
            "the server does not offer STARTTLS, which the transport requires (`smtp://` \
             without `?tls=` means `?tls=starttls`)",
            &format!(
                "if the relay runs on this host and takes mail unencrypted, set transport = \
                 \"smtp://{server}?tls=none\"; if it speaks TLS from the first byte (port 465), \
                 use `?tls=tls`"
            ),
        ));
    }
    let tls = TlsParameters::new(host.to_owned()).map_err(|e| {
        setup_error(
            server,
            format!("cannot set up TLS for `{host}`: {e}"),
            FIX_TLS,
        )
    })?;
    conn.starttls(tls, hello).await.map_err(|e| {
        if e.is_transient() {
            SendError::Transient(format!("STARTTLS at {server}: {e}"))
        } else {
            let e = without_repeats(&e.to_string());
            setup_error(server, format!("STARTTLS failed: {e}"), FIX_TLS)
        }
    })
}

/// Logs in on `conn` with the first of PLAIN and LOGIN that the server
/// offers; returns the mechanism. A refused login, or a server that offers
/// neither, is [`SendError::Config`]; a 4xx reply is transient.
pub(crate) async fn login(
    conn: &mut AsyncSmtpConnection,
    credentials: &Credentials,
    server: &str,
) -> Result<Mechanism, SendError> {
    let Some(mechanism) = conn.server_info().get_auth_mechanism(DEFAULT_MECHANISMS) else {
        let offered = if conn
            .server_info()
            .supports_feature(Extension::Authentication(Mechanism::Xoauth2))
        {
            "only XOAUTH2, which tidings does not speak"
        } else {
            "no login (no AUTH PLAIN or LOGIN in its EHLO reply)"
        };
        let hint = if conn.is_encrypted() {
            ""
        } else {
            " on an unencrypted connection (many servers offer a login only after STARTTLS)"
        };
        return Err(setup_error(
            server,
            format!("the server offers {offered}{hint}"),
            "remove the user from the transport URL if the relay takes mail without a login, \
             or use TLS (`?tls=starttls` or `?tls=tls`)",
        ));
    };
    match conn.auth(&[mechanism], credentials).await {
        Ok(_) => Ok(mechanism),
        Err(e) if e.is_transient() => Err(SendError::Transient(format!("login at {server}: {e}"))),
        Err(e) => Err(setup_error(
            server,
            format!("the server refused the login ({mechanism}): {e}"),
            FIX_LOGIN,
        )),
    }
}
