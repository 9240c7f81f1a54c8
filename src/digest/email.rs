//! One reader's digest email, made the same way wherever it is made: by
//! the delivery worker for each subscriber of an edition, by `digest
//! preview`, and by `digest test`. A [`Composer`] holds what every email
//! of a digest shares (the config, the templates, the key that signs the
//! links, the sender's address and DKIM key); a [`Reader`] and an
//! [`Issue`] say whom one email is for and which edition it belongs to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};

use super::note::{self, Note};
use super::render::{self, DigestEmail, Links, Section, Templates};
use super::{compose, words};
use crate::config::{Config, Digest, Mail};
use crate::links::tokens::{Purpose, Signer};
use crate::mail::Mailer;
use crate::mail::message::{self, DkimSigner, Encoded, Envelope};
use crate::mail::rendered::Rendered;
use crate::model::{Subscriber, SubscriberEmail};
use crate::store::editions::{Edition, FIRST_EDITION_LOOKBACK, Period};
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
    /// The window of time the email covers (see [`period_label`]).
    pub period: Period,
    /// A test send (`digest test`): `[TEST]` in the subject.
    pub test: bool,
}

/// The window the next edition of `digest` would cover if frozen at `now`
/// (for a preview or a test send).
pub async fn next_period(store: &Store, digest: &str, now: DateTime<Utc>) -> Result<Period> {
    let last = store.editions(digest, 1).await?;
    let start = last
        .first()
        .map_or(now - FIRST_EDITION_LOOKBACK, |e| e.period_end)
        .min(now);
    Ok(Period { start, end: now })
}

/// What every email of one digest shares.
pub struct Composer<'a> {
    pub config: &'a Config,
    pub mail: &'a Mail,
    pub digest: &'a Digest,
    pub templates: &'a Templates,
    pub signer: &'a Signer,
    pub dkim: Option<&'a DkimSigner>,
    /// The editor's notes read so far, by language and period: each file
    /// is read once per edition, not once per reader.
    notes: Mutex<HashMap<NoteKey, Option<Arc<Note>>>>,
}

/// A reader's language and the edition's period: one note each.
type NoteKey = (String, Period);

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
            notes: Mutex::default(),
        }
    }

    /// The editor's note for readers in `language` of the edition covering
    /// `period`. A note that cannot be read is logged once and left out:
    /// it must not stop an edition.
    pub fn note(&self, language: &str, period: Period) -> Option<Arc<Note>> {
        let key = (language.to_owned(), period);
        let mut notes = self.notes.lock().expect("not poisoned");
        notes
            .entry(key)
            .or_insert_with(|| {
                match note::find(self.config, self.digest, language, period) {
                    Ok(found) => found.map(Arc::new),
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "the editor's note cannot be read; the edition goes out without it");
                        None
                    }
                }
            })
            .clone()
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
        let period = period_label(self.config, reader.language, issue.period);
        let note = self.note(reader.language, issue.period);
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
            note: note.as_deref(),
            test: issue.test,
            web: false,
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
            let delivery = issue
                .edition
                .filter(|_| reader.id != 0 && !issue.test)
                .map(|edition| (edition, reader.id));
            self.build(email, Encoded::encode(&rendered), message_id, delivery)
        })
    }

    /// The message of `email` from its encoded parts: list headers naming
    /// the digest, and the one-click unsubscribe of its links. `delivery`
    /// (edition id, subscriber id) names an edition's email to a
    /// subscriber, whose envelope sender is then the VERP address when
    /// `[bounces] return_path` is set.
    pub fn build(
        &self,
        email: &DigestEmail<'_>,
        encoded: Encoded,
        message_id: String,
        delivery: Option<(i64, i64)>,
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
            return_path: delivery.and_then(|d| self.return_path(email, d)),
        };
        message::build_encoded(&envelope, encoded, self.dkim)
    }

    /// The VERP envelope sender of an edition's email to a subscriber,
    /// when `[bounces] return_path` is set: `LOCAL+TOKEN@DOMAIN` (see
    /// [`crate::bounces::verp_address`]). A preview or test send names no
    /// delivery and keeps the From address.
    fn return_path(
        &self,
        email: &DigestEmail<'_>,
        (edition, subscriber): (i64, i64),
    ) -> Option<lettre::Address> {
        let base = self.config.bounces.return_path.as_ref()?;
        let token = self
            .signer
            .sign_bounce(edition, subscriber, &email.recipient.to_lowercase());
        crate::bounces::verp_address(base, &token)
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
    let stories = crate::sources::bodies::filled(composer.config, store, stories).await?;
    let sections = composer.sections(&reader.themes, &stories);
    let count = compose::story_count(&sections);
    let issue = Issue {
        edition: None,
        issued: now,
        period: next_period(store, &composer.digest.id, now).await?,
        test: false,
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

/// Sends `to` a realistic sample in `language`: the newest stories of
/// every theme (up to `max_stories_per_theme` each), whether or not an
/// edition already sent them, marked `[TEST]` in the subject. When `to` is
/// a subscriber, the links are theirs and work; otherwise they belong to
/// no one (id 0), and the pages they open say the link is not valid and
/// offer to unsubscribe by address. Nothing is frozen or recorded.
pub async fn send_test(
    composer: &Composer<'_>,
    mailer: &Mailer,
    store: &Store,
    to: &SubscriberEmail,
    language: &str,
    now: DateTime<Utc>,
) -> Result<TestSent> {
    let stories = newest_of_every_theme(composer, store).await?;
    let themes: Vec<_> = composer
        .config
        .themes
        .iter()
        .map(|t| t.slug.clone())
        .collect();
    let sections = composer.sections(&themes, &stories);
    let count = compose::story_count(&sections);
    let subscriber = store.subscriber(&to.key()).await?;
    let reader = Reader {
        id: subscriber.as_ref().map_or(0, |s| s.id),
        email: to.as_str(),
        language,
    };
    let issue = Issue {
        edition: None,
        issued: now,
        period: next_period(store, &composer.digest.id, now).await?,
        test: true,
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

/// The newest published stories of each configured theme, at most as many
/// as the digest shows of one theme, newest first.
async fn newest_of_every_theme(composer: &Composer<'_>, store: &Store) -> Result<Vec<StoredStory>> {
    let index = store.published_index().await?;
    let mut ids = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for theme in &composer.config.themes {
        for s in index
            .iter()
            .filter(|s| s.themes.contains(&theme.slug))
            .take(composer.digest.max_stories_per_theme)
        {
            if seen.insert(&s.id) {
                ids.push(&s.id);
            }
        }
    }
    let mut stories = store.published_by_ids(&ids).await?;
    crate::sources::bodies::fill(composer.config, store, &mut stories).await?;
    stories.sort_by(|a, b| {
        (b.story.published, a.id.as_str()).cmp(&(a.story.published, b.id.as_str()))
    });
    Ok(stories)
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

/// What an edition covering `period` is called in `language`: the months
/// it mostly covers, so that a monthly digest sent on the 1st (or by hand
/// on the 2nd) is named after the month before, or the days of a short one
/// ([`words::period_between`]).
pub fn period_label(config: &Config, language: &str, period: Period) -> String {
    let (first, last) = period.days(config);
    words::period_between(language, first, last)
}

/// The edition's page on the site: the email's design with every theme of
/// the edition, in `language`, with no personal link (a sign-up box in
/// their place) and the editor's note. Returns what goes inside the page's
/// `<main>`: the email's body, its styles inlined, after the `<style>` its
/// head keeps (the dark-mode and narrow-screen rules).
pub fn web_edition(
    config: &Config,
    templates: &Templates,
    digest: &Digest,
    language: &str,
    edition: &Edition,
    stories: &[StoredStory],
) -> Result<String> {
    let themes: Vec<_> = config.themes.iter().map(|t| t.slug.clone()).collect();
    let period = period_label(config, language, edition.period());
    let note = note::find(config, digest, language, edition.period()).unwrap_or_else(|e| {
        tracing::error!(error = %format!("{e:#}"), "the editor's note cannot be read; the page goes without it");
        None
    });
    let base = config.public_url();
    let email = DigestEmail {
        config,
        digest,
        language,
        period: &period,
        sections: compose::sections(config, digest, &themes, stories),
        links: Links {
            preferences: format!("{base}unsubscribe"),
            unsubscribe: format!("{base}unsubscribe"),
            edition: format!("{base}archive/{}/{}", digest.id, edition.id),
        },
        recipient: "",
        note: note.as_ref(),
        test: false,
        web: true,
    };
    let html = render::render(templates, &email)?.html;
    Ok(body_of(&html))
}

/// The `<style>` elements of a page's head and what its `<body>` holds.
fn body_of(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let head_end = lower.find("</head>").unwrap_or(0);
    let mut out = String::new();
    let mut at = 0;
    while let Some(start) = lower[at..head_end].find("<style") {
        let start = at + start;
        let Some(end) = lower[start..head_end].find("</style>") else {
            break;
        };
        let end = start + end + "</style>".len();
        out.push_str(&html[start..end]);
        out.push('\n');
        at = end;
    }
    let body = lower
        .find("<body")
        .and_then(|b| lower[b..].find('>').map(|e| b + e + 1))
        .unwrap_or(0);
    let body_end = lower.rfind("</body>").unwrap_or(html.len()).max(body);
    out.push_str(html[body..body_end].trim());
    out
}
