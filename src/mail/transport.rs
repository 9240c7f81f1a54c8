//! Where messages go: `.eml` files in a folder (the default, so the main job
//! needs no mail server) or an SMTP relay.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
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
    /// A pooled SMTP client (lettre's async transport on tokio).
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sender::File(dir) => write!(f, "Sender::File({})", dir.display()),
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
                let builder = match tls {
                    Tls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
                    Tls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
                    Tls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                };
                let mut builder = builder
                    .port(*port)
                    .timeout(Some(SMTP_TIMEOUT))
                    .pool_config(PoolConfig::new().max_size(mail.concurrency as u32));
                if let Some(user) = user {
                    let password = std::env::var("TIDINGS_SMTP_PASSWORD").map_err(|_| {
                        anyhow!(
                            "[mail] transport names the user `{user}`: set its password in the \
                             environment variable TIDINGS_SMTP_PASSWORD"
                        )
                    })?;
                    builder = builder.credentials(Credentials::new(user.clone(), password));
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
            Sender::Smtp(smtp) => match smtp.send(message.clone()).await {
                Ok(reply) => Ok(format!(
                    "{} {}",
                    reply.code(),
                    reply.message().collect::<Vec<_>>().join(" ")
                )),
                Err(e) => Err(classify(&e)),
            },
        }
    }
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
