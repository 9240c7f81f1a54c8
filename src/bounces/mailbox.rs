//! The bounce mailbox, read over IMAP (`[bounces] mailbox`): each new
//! message is fetched without marking it read (`BODY.PEEK[]`) and run
//! through [`import`]; those whose token verified (also when already
//! recorded) are moved to `[bounces] processed_folder`, and everything
//! else (auto-replies, strangers' mail, reports with no token of ours) is
//! left where it is with its flags unchanged.
//!
//! The store keeps how far the folder has been read (its `UIDVALIDITY`
//! and the next UID, in the setting `bounces.mailbox:<user@host:port/folder>`),
//! so each poll reads only what arrived since; `bounces fetch --all` reads
//! everything again. A poll reads at most [`MAX_MESSAGES`] messages, oldest
//! first, and skips (with a log line) any larger than [`MAX_MESSAGE_BYTES`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use async_imap::{Client, Session};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use super::{Imported, import};
use crate::config::env::Secret;
use crate::config::{Bounces, ImapMailbox, Tls};
use crate::links::tokens::Signer;
use crate::store::Store;

/// Messages read in one poll at most; the rest wait for the next.
pub const MAX_MESSAGES: usize = 500;
/// A message larger than this is not read (bounces quote the message they
/// are about, a digest of some hundred KiB; this is far more).
pub const MAX_MESSAGE_BYTES: u32 = 4 << 20;
/// How long connecting (TCP, TLS, greeting, login) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one IMAP command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Read and imported: what [`import`] found and did.
    Imported(Imported),
    /// Larger than [`MAX_MESSAGE_BYTES`] (its size): not read, left alone.
    TooLarge(u32),
    /// Flagged `\Deleted` by someone else, or gone before it was read:
    /// left alone.
    Gone,
}

/// One message of the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub uid: u32,
    pub outcome: Outcome,
    /// Moved to the processed folder.
    pub moved: bool,
}

impl Message {
    /// A report whose token verified: it is moved.
    fn matched(&self) -> bool {
        matches!(self.outcome, Outcome::Imported(Imported::Matched { .. }))
    }
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UID {}: ", self.uid)?;
        match &self.outcome {
            Outcome::Imported(imported) => write!(f, "{imported}")?,
            Outcome::TooLarge(size) => write!(
                f,
                "{size} bytes, over the {} MiB read at most: left alone",
                MAX_MESSAGE_BYTES >> 20
            )?,
            Outcome::Gone => f.write_str("deleted by someone else: left alone")?,
        }
        if self.moved {
            f.write_str("; moved")?;
        }
        Ok(())
    }
}

/// What one poll found and did.
#[derive(Debug, Clone, Default)]
pub struct Polled {
    /// Each message read, oldest first.
    pub messages: Vec<Message>,
    /// Messages moved to the processed folder.
    pub moved: usize,
    /// New messages past [`MAX_MESSAGES`], left for the next poll.
    pub waiting: usize,
    /// The processed folder, as configured.
    pub processed_folder: String,
}

impl std::fmt::Display for Polled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let matched = self.messages.iter().filter(|m| m.matched()).count();
        write!(
            f,
            "{} new message(s) read: {matched} matched, {} moved to {}, {} left alone",
            self.messages.len(),
            self.moved,
            self.processed_folder,
            self.messages.len() - matched,
        )?;
        if self.waiting > 0 {
            write!(f, "; {} more wait for the next poll", self.waiting)?;
        }
        Ok(())
    }
}

/// Reads the new messages of `[bounces] mailbox` once and acts on them
/// (see the module's text); with `all`, every message of the folder, not
/// only those that arrived since the last poll. A connection, TLS or
/// login failure is an error naming the server and the user (never the
/// password); so is a store that cannot be written, after the messages
/// already matched were moved.
pub async fn poll(
    store: &Store,
    signer: &Signer,
    bounces: &Bounces,
    all: bool,
    now: DateTime<Utc>,
) -> Result<Polled> {
    let mailbox = bounces
        .mailbox
        .as_ref()
        .context("no [bounces] mailbox in config.toml: add one such as \"imap://bounces@imap.example.org/INBOX\"")?;
    let password = mailbox.password().map_err(anyhow::Error::msg)?;
    let mut session = connect(mailbox, password).await?;
    let result = read(&mut session, store, signer, bounces, mailbox, all, now).await;
    // A server that does not answer LOGOUT changes nothing already done.
    let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
    let polled = result?;
    tracing::info!(mailbox = %mailbox, summary = %polled, "bounce mailbox read");
    Ok(polled)
}

/// A connection of any kind: plain, or TLS from the start or after
/// STARTTLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Stream for T {}
type Connection = Box<dyn Stream>;

/// The server's `host:port` and the user, for messages.
fn who(m: &ImapMailbox) -> String {
    format!(
        "the bounce mailbox {}:{} (user `{}`)",
        m.host, m.port, m.user
    )
}

/// `future`, or an error naming `what` when it fails or takes longer
/// than `limit`.
async fn within<T, E>(
    limit: Duration,
    what: impl FnOnce() -> String,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(limit, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(anyhow::Error::new(e).context(what())),
        Err(_) => Err(anyhow!("{}: no answer in {} s", what(), limit.as_secs())),
    }
}

/// Connects, with TLS as configured, and logs in.
async fn connect(m: &ImapMailbox, password: &Secret) -> Result<Session<Connection>> {
    let cannot = |step: &str| format!("cannot {step} {}", who(m));
    let tcp = within(
        CONNECT_TIMEOUT,
        || cannot("connect to"),
        TcpStream::connect((m.host.as_str(), m.port)),
    )
    .await?;
    let _ = tcp.set_nodelay(true);
    let stream: Connection = match m.tls {
        Tls::None => Box::new(tcp),
        Tls::Tls => Box::new(tls(m, tcp).await?),
        Tls::Starttls => {
            let mut client = Client::new(tcp);
            greeting(m, &mut client).await?;
            within(
                CONNECT_TIMEOUT,
                || {
                    format!(
                        "{} did not accept STARTTLS (set ?tls=tls for port 993, or ?tls=none \
                         only for a server on this host)",
                        who(m)
                    )
                },
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await?;
            Box::new(tls(m, client.into_inner()).await?)
        }
    };
    let mut client = Client::new(stream);
    if m.tls != Tls::Starttls {
        greeting(m, &mut client).await?;
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, client.login(&m.user, password.expose())).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err((e, _))) => Err(anyhow!(
            "{} refused the login: {e}. To fix: check the user in [bounces] mailbox \
             (imap://USER@host) and the password in the environment variable \
             TIDINGS_BOUNCES_PASSWORD",
            who(m)
        )),
        Err(_) => Err(anyhow!(
            "cannot log in to {}: no answer in {} s",
            who(m),
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

/// Reads the server's greeting.
async fn greeting<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug>(
    m: &ImapMailbox,
    client: &mut Client<T>,
) -> Result<()> {
    let greeted = within(
        CONNECT_TIMEOUT,
        || format!("cannot read the greeting of {}", who(m)),
        client.read_response(),
    )
    .await?;
    if greeted.is_none() {
        return Err(anyhow!(
            "{} closed the connection before greeting (is it an IMAP server, and is the TLS \
             mode right?)",
            who(m)
        ));
    }
    Ok(())
}

/// TLS over `tcp`, checking the server's certificate against the Web's
/// root authorities (as the SMTP transport does) for `host`.
async fn tls(
    m: &ImapMailbox,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("cannot set up TLS")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(m.host.clone())
        .with_context(|| format!("`{}` is not a name TLS can check", m.host))?;
    within(
        CONNECT_TIMEOUT,
        || {
            format!(
                "TLS with {} failed (check the port and ?tls=: tls speaks TLS from the first \
                 byte, port 993; starttls upgrades a plain connection, port 143; and that the \
                 server's certificate is valid for its name)",
                who(m)
            )
        },
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
}

/// The store's setting that says how far `m` has been read.
fn mark_name(m: &ImapMailbox) -> String {
    format!(
        "bounces.mailbox:{}@{}:{}/{}",
        m.user, m.host, m.port, m.folder
    )
}

/// `UIDVALIDITY NEXT_UID`, as stored.
fn parse_mark(value: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(value).ok()?;
    let (validity, next) = text.trim().split_once(' ')?;
    Some((validity.parse().ok()?, next.parse().ok()?))
}

/// The poll itself, on a logged-in session.
async fn read(
    session: &mut Session<Connection>,
    store: &Store,
    signer: &Signer,
    bounces: &Bounces,
    m: &ImapMailbox,
    all: bool,
    now: DateTime<Utc>,
) -> Result<Polled> {
    let mut polled = Polled {
        processed_folder: m.processed_folder.clone(),
        ..Polled::default()
    };
    let capabilities = within(
        COMMAND_TIMEOUT,
        || format!("CAPABILITY failed on {}", who(m)),
        session.capabilities(),
    )
    .await?;
    let can_move = capabilities.has_str("MOVE");
    let uidplus = capabilities.has_str("UIDPLUS");
    let selected = within(
        COMMAND_TIMEOUT,
        || format!("cannot open the folder `{}` of {}", m.folder, who(m)),
        session.select(&m.folder),
    )
    .await?;
    if selected.exists == 0 {
        return Ok(polled);
    }
    let validity = selected.uid_validity.unwrap_or(0);
    let name = mark_name(m);
    let start = match store.setting(&name).await?.as_deref().and_then(parse_mark) {
        Some((v, next)) if v == validity && !all => next.max(1),
        _ => 1,
    };

    // The new messages' UIDs, sizes and flags, oldest first.
    let listing: Vec<async_imap::types::Fetch> = within(
        COMMAND_TIMEOUT,
        || format!("cannot list the messages of `{}` on {}", m.folder, who(m)),
        async {
            session
                .uid_fetch(format!("{start}:*"), "(UID RFC822.SIZE FLAGS)")
                .await?
                .try_collect()
                .await
        },
    )
    .await?;
    let mut new: Vec<(u32, u32, bool)> = listing
        .iter()
        .filter_map(|f| {
            let uid = f.uid?;
            let deleted = f
                .flags()
                .any(|flag| matches!(flag, async_imap::types::Flag::Deleted));
            (uid >= start).then_some((uid, f.size.unwrap_or(0), deleted))
        })
        .collect();
    new.sort_unstable();
    new.dedup_by_key(|(uid, _, _)| *uid);
    polled.waiting = new.len().saturating_sub(MAX_MESSAGES);
    new.truncate(MAX_MESSAGES);

    // Each one read and imported; a store failure stops the poll there.
    let mut failure = None;
    let mut next = start;
    for (uid, size, deleted) in new {
        let outcome = if deleted {
            Outcome::Gone
        } else if size > MAX_MESSAGE_BYTES {
            tracing::warn!(mailbox = %m, uid, size, "a message over the size read at most: left alone");
            Outcome::TooLarge(size)
        } else {
            let fetched: Vec<async_imap::types::Fetch> = within(
                COMMAND_TIMEOUT,
                || format!("cannot read message UID {uid} of {}", who(m)),
                async {
                    session
                        .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
                        .await?
                        .try_collect()
                        .await
                },
            )
            .await?;
            match fetched
                .iter()
                .find(|f| f.uid == Some(uid))
                .and_then(|f| f.body())
            {
                None => Outcome::Gone,
                Some(raw) => match import(store, signer, bounces, raw, now).await {
                    Ok(imported) => Outcome::Imported(imported),
                    Err(e) => {
                        failure = Some(e.context(format!("cannot import message UID {uid}")));
                        break;
                    }
                },
            }
        };
        polled.messages.push(Message {
            uid,
            outcome,
            moved: false,
        });
        next = uid + 1;
    }

    // Those whose token verified, to the processed folder.
    let matched: Vec<u32> = polled
        .messages
        .iter()
        .filter(|msg| msg.matched())
        .map(|msg| msg.uid)
        .collect();
    if !matched.is_empty() {
        move_to_processed(session, m, &matched, can_move, uidplus).await?;
        for message in polled.messages.iter_mut().filter(|msg| msg.matched()) {
            message.moved = true;
        }
        polled.moved = matched.len();
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if next > start || all {
        store
            .set_setting(&name, format!("{validity} {next}").as_bytes())
            .await?;
    }
    Ok(polled)
}

/// Moves `uids` to the processed folder, creating it when missing: `UID
/// MOVE` where the server has it, else `UID COPY`, `\Deleted` and `UID
/// EXPUNGE` of those UIDs alone (without UIDPLUS they stay flagged
/// `\Deleted`: a plain EXPUNGE would remove others' deleted mail too).
async fn move_to_processed(
    session: &mut Session<Connection>,
    m: &ImapMailbox,
    uids: &[u32],
    can_move: bool,
    uidplus: bool,
) -> Result<()> {
    let folder = m.processed_folder.as_str();
    // CREATE fails when the folder is there: that failure is no problem,
    // and any other shows in the move that follows.
    if let Ok(Ok(())) = tokio::time::timeout(COMMAND_TIMEOUT, session.create(folder)).await {
        tracing::info!(mailbox = %m, folder, "processed folder created");
    }
    let set = uids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let cannot = || {
        format!(
            "cannot move the matched reports to `{folder}` on {}",
            who(m)
        )
    };
    if can_move {
        return within(COMMAND_TIMEOUT, cannot, session.uid_mv(&set, folder)).await;
    }
    within(COMMAND_TIMEOUT, cannot, session.uid_copy(&set, folder)).await?;
    within(COMMAND_TIMEOUT, cannot, async {
        session
            .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    if uidplus {
        within(COMMAND_TIMEOUT, cannot, async {
            session
                .uid_expunge(&set)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
    } else {
        tracing::warn!(mailbox = %m, "the server has neither MOVE nor UIDPLUS: the reports copied to the processed folder stay in the inbox flagged \\Deleted");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_read_back_and_refuse_garbage() {
        assert_eq!(parse_mark(b"1796226297 42"), Some((1796226297, 42)));
        assert_eq!(parse_mark(b"x 42"), None);
        assert_eq!(parse_mark(b""), None);
    }
}
