//! One reader's digest email, made the same way wherever it is made: by
//! the delivery worker for each subscriber of an edition, by `digest
//! preview`, and by `digest test`. A [`Composer`] holds what every email
//! of a digest shares (the config, the templates, the key that signs the
//! links, the sender's address and DKIM key); a [`Reader`] and an
//! [`Issue`] say whom one email is for and which edition it belongs to.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Duration, Utc};

use super::render::{self, DigestEmail, Links, Section, Templates};
use super::{compose, words};
use crate::config::{Config, Digest, Mail};
use crate::links::tokens::{Purpose, Signer};
use crate::mail::Mailer;
use crate::mail::message::{self, DkimSigner, Encoded, Envelope};
use crate::mail::rendered::Rendered;
use crate::model::{Subscriber, SubscriberEmail};
use crate::store::{Store, StoredStory};

/// Whom one email is for.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    /// The subscriber's id (0 for a test send: no subscriber).
    pub id: i64,
    pub email: &'a str,
    /// The language tag the email is written in.
    pub language: &'a str,
}

impl<'a> From<&'a Subscriber> for Reader<'a> {
    fn from(s: &'a Subscriber) -> Reader<'a> {
        Reader {
            id: s.id,
            email: &s.email,
            language: s.language.as_str(),
        }
    }
}

/// Which edition an email belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Issue {
    /// The edition's id; `None` for a preview or a test of what the next
    /// edition would hold.
    pub edition: Option<i64>,
    /// When the links' tokens are issued (an edition's: the same tokens
    /// whenever a row is sent again).
    pub issued: DateTime<Utc>,
    /// When the period the email covers ends (see [`period_label`]).
    pub period_end: DateTime<Utc>,
}

/// What every email of one digest shares.
pub struct Composer<'a> {
    pub config: &'a Config,
    pub mail: &'a Mail,
    pub digest: &'a Digest,
    pub templates: &'a Templates,
    pub signer: &'a Signer,
    pub dkim: Option<&'a DkimSigner>,
}

impl<'a> Composer<'a> {
    pub fn new(
        config: &'a Config,
        mailer: &'a Mailer,
        digest: &'a Digest,
        templates: &'a Templates,
        signer: &'a Signer,
    ) -> Composer<'a> {
        Composer {
            config,
            mail: &mailer.mail,
            digest,
            templates,
            signer,
            dkim: mailer.dkim.as_ref(),
        }
    }

    /// The reader's sections: their themes in their order, each with its
    /// stories of `stories`.
    pub fn sections<'s>(
        &'s self,
        themes: &[crate::model::ThemeSlug],
        stories: &'s [StoredStory],
    ) -> Vec<Section<'s>> {
        compose::sections(self.config, self.digest, themes, stories)
    }

    /// Calls `then` with what the templates see of the reader's email: the
    /// sections, the period named in their language, their links signed.
    pub fn with_email<'s, T>(
        &'s self,
        reader: Reader<'s>,
        sections: Vec<Section<'s>>,
        issue: Issue,
        then: impl FnOnce(&DigestEmail<'_>) -> T,
    ) -> T {
        let period = period_label(self.config, reader.language, issue.period_end);
        let email = DigestEmail {
            config: self.config,
            digest: self.digest,
            language: reader.language,
            period: &period,
            sections,
            links: links(
                self.config,
                self.signer,
                self.digest,
                issue.edition,
                (reader.id, &reader.email.to_lowercase()),
                issue.issued,
            ),
            recipient: reader.email,
        };
        then(&email)
    }

    /// The reader's email, rendered (`digest preview`).
    pub fn render(
        &self,
        reader: Reader<'_>,
        sections: Vec<Section<'_>>,
        issue: Issue,
    ) -> Result<Rendered> {
        self.with_email(reader, sections, issue, |email| {
            render::render(self.templates, email)
        })
    }

    /// The whole message for the reader, rendered from the templates.
    pub fn message(
        &self,
        reader: Reader<'_>,
        sections: Vec<Section<'_>>,
        issue: Issue,
        message_id: String,
    ) -> Result<lettre::Message> {
        self.with_email(reader, sections, issue, |email| {
            let rendered = render::render(self.templates, email)?;
            self.build(email, Encoded::encode(&rendered), message_id)
        })
    }

    /// The message of `email` from its encoded parts: list headers naming
    /// the digest, and the one-click unsubscribe of its links.
    pub fn build(
        &self,
        email: &DigestEmail<'_>,
        encoded: Encoded,
        message_id: String,
    ) -> Result<lettre::Message> {
        let host = self.config.site.base_url.host_str().unwrap_or("localhost");
        let envelope = Envelope {
            from: &self.mail.from,
            reply_to: self.mail.reply_to.as_ref(),
            to: email.recipient,
            message_id,
            list_id: format!(
                "{} <{}.{host}>",
                self.digest.title.get(email.language),
                self.digest.id
            ),
            unsubscribe_mailto: unsubscribe_mailto(self.mail, &email.links.unsubscribe),
            unsubscribe_url: email.links.unsubscribe.clone(),
            date: Utc::now(),
        };
        message::build_encoded(&envelope, encoded, self.dkim)
    }

    /// The Message-ID of a test send: random, unlike a delivery's.
    pub fn test_message_id(&self) -> String {
        let host = self.config.site.base_url.host_str().unwrap_or("localhost");
        message::unique_message_id(&format!("test.{}", self.digest.id), host)
    }
}

/// What `digest preview` shows: the reader's email if the digest ran now,
/// and how many stories it holds.
pub async fn preview(
    composer: &Composer<'_>,
    store: &Store,
    reader: &Subscriber,
    now: DateTime<Utc>,
) -> Result<(Rendered, usize)> {
    let stories = store.pending_stories(&composer.digest.id, now).await?;
    let sections = composer.sections(&reader.themes, &stories);
    let count = compose::story_count(&sections);
    let issue = Issue {
        edition: None,
        issued: now,
        period_end: now,
    };
    let rendered = composer.render(reader.into(), sections, issue)?;
    Ok((rendered, count))
}

/// What a test send sent.
#[derive(Debug, Clone)]
pub struct TestSent {
    pub stories: usize,
    /// The server's reply (or where the file was written).
    pub reply: String,
}

/// Sends `to` what the next edition would hold of every theme, in
/// `language`. Its links belong to no subscriber (id 0 matches nobody);
/// nothing is frozen or recorded.
pub async fn send_test(
    composer: &Composer<'_>,
    mailer: &Mailer,
    store: &Store,
    to: &SubscriberEmail,
    language: &str,
    now: DateTime<Utc>,
) -> Result<TestSent> {
    let stories = store.pending_stories(&composer.digest.id, now).await?;
    let themes: Vec<_> = composer
        .config
        .themes
        .iter()
        .map(|t| t.slug.clone())
        .collect();
    let sections = composer.sections(&themes, &stories);
    let count = compose::story_count(&sections);
    let reader = Reader {
        id: 0,
        email: to.as_str(),
        language,
    };
    let issue = Issue {
        edition: None,
        issued: now,
        period_end: now,
    };
    let message_id = composer.test_message_id();
    let message = composer.message(reader, sections, issue, message_id.clone())?;
    let reply = mailer
        .sender
        .send(&message_id, &message)
        .await
        .map_err(anyhow::Error::new)
        .context("the test was not sent")?;
    Ok(TestSent {
        stories: count,
        reply,
    })
}

/// The links of a digest email: signed preferences and unsubscribe links
/// for the subscriber (`id`, lower-cased address), and the edition's page
/// (the digest's editions page while no edition is frozen).
pub fn links(
    config: &Config,
    signer: &Signer,
    digest: &Digest,
    edition: Option<i64>,
    (id, email_key): (i64, &str),
    issued: DateTime<Utc>,
) -> Links {
    let base = config.public_url();
    let token = |p| signer.sign(p, id, email_key, issued);
    Links {
        preferences: format!("{base}preferences/{}", token(Purpose::Preferences)),
        unsubscribe: format!("{base}unsubscribe/{}", token(Purpose::Unsubscribe)),
        edition: match edition {
            Some(e) => format!("{base}archive/{}/{e}", digest.id),
            None => format!("{base}archive/{}/", digest.id),
        },
    }
}

/// `mailto:` for List-Unsubscribe when `[mail] unsubscribe_address` is
/// set: its subject carries the unsubscribe link, so whoever (or whatever)
/// reads that mailbox knows exactly whom to remove.
pub fn unsubscribe_mailto(mail: &Mail, unsubscribe_url: &str) -> Option<String> {
    let address = mail.unsubscribe_address.as_ref()?;
    let subject: String =
        url::form_urlencoded::byte_serialize(format!("unsubscribe {unsubscribe_url}").as_bytes())
            .collect::<String>()
            .replace('+', "%20");
    Some(format!("mailto:{address}?subject={subject}"))
}

/// The period an edition ending at `end` is named after: the month of
/// the day before it ends, so that a monthly digest sent on the 1st is
/// named after the month it covers.
pub fn period_label(config: &Config, language: &str, end: DateTime<Utc>) -> String {
    let day = (end - Duration::days(1)).with_timezone(&config.site.timezone);
    words::period(language, day.date_naive())
}
