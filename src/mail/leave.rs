//! The email that answers "unsubscribe me" typed on the site, for someone
//! whose link did not work: it goes only to the address itself (so nobody
//! can unsubscribe someone else) and holds one signed unsubscribe link.
//! Like the confirmation, it echoes nothing typed but the address.

use anyhow::{Result, anyhow};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{Config, Mail};
use crate::links::tokens::{Purpose, Signer};
use crate::mail::Mailer;
use crate::mail::message::{DkimSigner, Notice, build_notice};
use crate::mail::rendered::{self, Rendered, one_line};
use crate::model::Lang;
use crate::model::SubscriberEmail;

/// Names of the templates (a site's own copies go next to config.toml in
/// `templates/`).
pub const HTML_FILE: &str = "leave.html";
pub const TEXT_FILE: &str = "leave.txt";

/// The fixed words of the email in one language.
#[derive(Debug, Serialize)]
pub struct Words {
    pub subject: &'static str,
    pub heading: &'static str,
    /// "Someone, hopefully you, asked to stop receiving the newsletters
    /// of" {site} …
    pub asked: &'static str,
    /// … "at the address" {address}.
    pub with_address: &'static str,
    pub button: &'static str,
    pub ignore: &'static str,
    pub link_text: &'static str,
}

static SV: Words = Words {
    subject: "Avsluta din prenumeration",
    heading: "Avsluta din prenumeration",
    asked: "Någon, förhoppningsvis du, har bett att sluta få nyhetsbrev från",
    with_address: "till adressen",
    button: "Avsluta prenumerationen",
    ignore: "Om det inte var du kan du bortse från det här mejlet: ingenting ändras.",
    link_text: "Fungerar inte knappen? Öppna den här länken:",
};

static EN: Words = Words {
    subject: "Unsubscribe",
    heading: "End your subscription",
    asked: "Someone, hopefully you, asked to stop receiving the newsletters of",
    with_address: "at the address",
    button: "Unsubscribe",
    ignore: "If it was not you, ignore this email: nothing changes.",
    link_text: "Button not working? Open this link:",
};

/// The words in `lang`.
pub fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Sv => &SV,
        Lang::En => &EN,
    }
}

#[derive(Serialize)]
struct Vars<'a> {
    language: &'a str,
    subject: &'a str,
    words: &'static Words,
    site: &'a str,
    recipient: &'a str,
    unsubscribe_url: &'a str,
    organization: &'a str,
    logo: Option<&'a str>,
    accent: &'a str,
    accent_text: String,
}

/// Renders the email (templates read at each call: these are rare).
pub fn render(
    config: &Config,
    language: &str,
    recipient: &SubscriberEmail,
    unsubscribe_url: &str,
) -> Result<Rendered> {
    let words = words(Lang::of(language));
    let subject = one_line(&format!("{} – {}", words.subject, config.site.title));
    let vars = Vars {
        language,
        subject: &subject,
        words,
        site: &config.site.title,
        recipient: recipient.as_str(),
        unsubscribe_url,
        organization: config.mail.as_ref().map_or("", |m| m.organization.as_str()),
        logo: config.site.logo.as_ref().map(|u| u.as_str()),
        accent: &config.site.accent,
        accent_text: rendered::text_on(&config.site.accent),
    };
    rendered::notice(config, (HTML_FILE, TEXT_FILE), subject.clone(), &vars)
}

/// Sends the subscriber `id` at `email` a link that unsubscribes them.
/// Returns the server's reply.
pub async fn send(
    config: &Config,
    mailer: &Mailer,
    (id, email): (i64, &SubscriberEmail),
    language: &str,
    signer: &Signer,
    now: DateTime<Utc>,
) -> Result<String> {
    let (message_id, message) = message(
        config,
        &mailer.mail,
        (id, email),
        language,
        signer,
        mailer.dkim.as_ref(),
        now,
    )?;
    mailer
        .sender
        .send(&message_id, &message)
        .await
        .map_err(|e| anyhow!("the unsubscribe link was not sent: {e}"))
}

/// The whole message for the subscriber `id` at `email`, with its
/// Message-ID.
pub fn message(
    config: &Config,
    mail: &Mail,
    (id, email): (i64, &SubscriberEmail),
    language: &str,
    signer: &Signer,
    dkim: Option<&DkimSigner>,
    now: DateTime<Utc>,
) -> Result<(String, lettre::Message)> {
    let token = signer.sign(Purpose::Unsubscribe, id, &email.key(), now);
    let url = format!("{}unsubscribe/{token}", config.public_url());
    let rendered = render(config, language, email, &url)?;
    let host = config.site.base_url.host_str().unwrap_or("localhost");
    let message_id = crate::mail::message::unique_message_id(&format!("leave.s{id}"), host);
    let notice = Notice {
        from: &mail.from,
        reply_to: mail.reply_to.as_ref(),
        to: email.as_str(),
        message_id: message_id.clone(),
        date: now,
    };
    Ok((message_id, build_notice(&notice, &rendered, dkim)?))
}
