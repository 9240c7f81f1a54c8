//! Where messages go: `.eml` files in a folder (the default, so the main job
//! needs no mail server) or an SMTP relay.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::config::{Mail, Transport};

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
#[derive(Debug, Clone)]
pub enum Sender {
    /// Writes `<message-id>.eml` files into the folder.
    File(PathBuf),
}

impl Sender {
    pub fn new(mail: &Mail) -> Result<Sender> {
        match &mail.transport {
            Transport::File(dir) => {
                fs_err::create_dir_all(dir)?;
                Ok(Sender::File(dir.clone()))
            }
            Transport::Smtp { .. } => bail!(
                "sending through SMTP is not available in this version yet; \
                 use transport = \"file:outbox\" in [mail]"
            ),
        }
    }

    /// Sends one message; returns the transport's reply (for the ledger).
    pub async fn send(&self, message_id: &str, bytes: &[u8]) -> Result<String, SendError> {
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
                crate::feeds::write_if_changed(&path, bytes).map_err(|e| {
                    SendError::Transient(format!("cannot write {}: {e}", path.display()))
                })?;
                Ok(format!("written to {}", path.display()))
            }
        }
    }
}
