//! The mail side of a site, set up once and shared by every entry point
//! (the service, `digest send`, `digest test`, `subscribers add
//! --send-confirmation`, the web's sign-ups): the transport and the DKIM
//! key.

use anyhow::Result;

use crate::config::{Config, Mail};
use crate::mail::message::DkimSigner;
use crate::mail::transport::Sender;

/// The mail side, set up once: `[mail]`, the transport, the DKIM key.
pub struct Mailer {
    pub mail: Mail,
    pub sender: Sender,
    pub dkim: Option<DkimSigner>,
}

impl Mailer {
    /// `None` when the site has no `[mail]`.
    pub fn new(config: &Config) -> Result<Option<Mailer>> {
        let Some(mail) = &config.mail else {
            return Ok(None);
        };
        Ok(Some(Mailer {
            sender: Sender::new(mail)?,
            dkim: mail.dkim.as_ref().map(DkimSigner::load).transpose()?,
            mail: mail.clone(),
        }))
    }
}
