//! Where messages go: `.eml` files in a folder (the default, so the main job
//! needs no mail server) or an SMTP relay.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

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
}

/// A ready transport.
#[derive(Clone)]
pub enum Sender {
    /// Writes `<message-id>.eml` files into the folder.
    File(PathBuf),
    /// SMTP in the clear or with STARTTLS: lettre's SMTP client on
    /// connections of our own, kept open for the next message.
    Relay(Arc<Relay>),
    /// SMTP over implicit TLS: lettre's pooled transport.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Connections to one relay, each opened with `TCP_NODELAY`. lettre 0.11
/// writes a message's body and its closing `.` in two writes; with
/// Nagle's algorithm on, the second waits for the acknowledgement of the
/// first, which the server delays by 40 ms: every message would cost 40 ms
/// of nothing (fixed upstream in lettre#1159, not yet released). lettre's
/// own pool opens its sockets itself, so this keeps the connections.
pub struct Relay {
    host: String,
    port: u16,
    starttls: bool,
    credentials: Option<Credentials>,
    hello: ClientId,
    /// Open connections not in use, with when each was last used.
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    max_idle: usize,
}

/// A connection idle longer than this is checked with `NOOP` before use:
/// servers close idle sessions, and a message should not pay for that.
const CHECK_AFTER: Duration = Duration::from_secs(5);

impl Relay {
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let refused = |e: std::io::Error| {
            SendError::Transient(format!(
                "cannot connect to {}:{}: {e}",
                self.host, self.port
            ))
        };
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(refused)?;
        stream.set_nodelay(true).map_err(refused)?;
        let smtp = |e: lettre::transport::smtp::Error| classify(&e);
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
            .await
            .map_err(smtp)?;
        if self.starttls {
            let tls = TlsParameters::new(self.host.clone()).map_err(smtp)?;
            conn.starttls(tls, &self.hello).await.map_err(smtp)?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(smtp)?;
        }
        Ok(conn)
    }

    async fn send(&self, message: &Message) -> Result<Response, SendError> {
        let reused = loop {
            let Some((mut conn, since)) = self.idle.lock().expect("not poisoned").pop() else {
                break None;
            };
            if conn.has_broken() {
                continue;
            }
            if since.elapsed() < CHECK_AFTER || conn.test_connected().await {
                break Some(conn);
            }
        };
        let mut conn = match reused {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        let reply = conn
            .send(message.envelope(), &message.formatted())
            .await
            .map_err(|e| classify(&e));
        // lettre closes the connection after a failed transaction.
        if !conn.has_broken() {
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
            Sender::Smtp(_) => f.write_str("Sender::Smtp(..)"),
        }
    }
}

/// How long one SMTP command may take before the attempt counts as a
/// temporary failure.
const SMTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

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
                let credentials = match user {
                    Some(user) => {
                        let password = std::env::var("TIDINGS_SMTP_PASSWORD").map_err(|_| {
                            anyhow!(
                                "[mail] transport names the user `{user}`: set its password in the \
                                 environment variable TIDINGS_SMTP_PASSWORD"
                            )
                        })?;
                        Some(Credentials::new(user.clone(), password))
                    }
                    None => None,
                };
                if matches!(tls, Tls::None | Tls::Starttls) {
                    return Ok(Sender::Relay(Arc::new(Relay {
                        host: host.clone(),
                        port: *port,
                        starttls: matches!(tls, Tls::Starttls),
                        credentials,
                        hello: ClientId::default(),
                        idle: Mutex::new(Vec::new()),
                        max_idle: mail.concurrency,
                    })));
                }
                let builder = match tls {
                    Tls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
                    Tls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
                    Tls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                };
                let mut builder = builder
                    .port(*port)
                    .timeout(Some(SMTP_TIMEOUT))
                    .pool_config(PoolConfig::new().max_size(mail.concurrency as u32));
                if let Some(credentials) = credentials {
                    builder = builder.credentials(credentials);
                }
                Ok(Sender::Smtp(builder.build()))
            }
        }
    }

    /// Sends one message; returns the transport's reply (for the ledger).
    pub async fn send(&self, message_id: &str, message: &Message) -> Result<String, SendError> {
        match self {
            Sender::File(dir) => {
                // The Message-ID names the file: a message sent twice (after
                // a crash) replaces itself instead of appearing twice.
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
                let path = dir.join(format!("{name}.eml"));
                crate::feeds::write_if_changed(&path, &message.formatted()).map_err(|e| {
                    SendError::Transient(format!("cannot write {}: {e}", path.display()))
                })?;
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
            Sender::Smtp(smtp) => match smtp.send(message.clone()).await {
                Ok(reply) => Ok(describe(&reply)),
                Err(e) => Err(classify(&e)),
            },
        }
    }
}

fn describe(reply: &Response) -> String {
    format!(
        "{} {}",
        reply.code(),
        reply.message().collect::<Vec<_>>().join(" ")
    )
}

/// Sorts an SMTP error into what the retry loop needs: a 5xx reply is
/// permanent (and 550, 551 and 553 — unknown or refused mailbox — mean the
/// address itself bounced); everything else (4xx, a dropped connection, a
/// timeout, TLS trouble) may go through later.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let message = e.to_string();
    if e.is_permanent() {
        let code = e.status().map(|c| c.to_string()).unwrap_or_default();
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
