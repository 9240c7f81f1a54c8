//! The confirmation email of double opt-in: a new subscriber is `pending`
//! until they follow the signed link in it (valid 7 days). It echoes
//! nothing the visitor typed except their address, so a sign-up form
//! cannot be used to send someone else a message of the visitor's words.

use anyhow::{Context as _, Result, anyhow};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{Config, Digest, Mail};
use crate::links::tokens::{Purpose, Signer};
use crate::mail::Mailer;
use crate::mail::message::{self, DkimSigner, Notice, build_notice};
use crate::mail::rendered::{self, Rendered, one_line};
use crate::model::Lang;
use crate::model::{NewSubscriber, SubscriberEmail};

/// Names of the templates (a site's own copies go next to config.toml in
/// `templates/`).
pub const HTML_FILE: &str = "confirm.html";
pub const TEXT_FILE: &str = "confirm.txt";

/// The fixed words of the confirmation email in one language.
#[derive(Debug, Serialize)]
pub struct Words {
    pub subject: &'static str,
    pub heading: &'static str,
    /// "Someone (hopefully you) asked to receive" … {digest}
    pub asked: &'static str,
    /// … "from" {site} …
    pub from: &'static str,
    /// … "at the address" {address}.
    pub with_address: &'static str,
    pub button: &'static str,
    pub expires: &'static str,
    pub ignore: &'static str,
    pub link_text: &'static str,
}

static SV: Words = Words {
    subject: "Bekräfta din prenumeration",
    heading: "Bekräfta din prenumeration",
    asked: "Någon, förhoppningsvis du, har bett att få",
    from: "från",
    with_address: "till adressen",
    button: "Ja, skicka mig nyhetsbrevet",
    expires: "Länken gäller i 7 dagar.",
    ignore: "Om det inte var du kan du bortse från det här mejlet: du får ingenting mer från oss.",
    link_text: "Fungerar inte knappen? Öppna den här länken:",
};

static EN: Words = Words {
    subject: "Confirm your subscription",
    heading: "Confirm your subscription",
    asked: "Someone, hopefully you, asked to receive",
    from: "from",
    with_address: "at the address",
    button: "Yes, send me the newsletter",
    expires: "The link is valid for 7 days.",
    ignore: "If it was not you, ignore this email: you will get nothing more from us.",
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
    digest: &'a str,
    site: &'a str,
    recipient: &'a str,
    confirm_url: &'a str,
    organization: &'a str,
    logo: Option<&'a str>,
    accent: &'a str,
    accent_text: String,
}

/// Renders the confirmation email. Templates are read for each call:
/// confirmations are one at a time, not a million at once.
pub fn render(
    config: &Config,
    digest: &Digest,
    language: &str,
    recipient: &SubscriberEmail,
    confirm_url: &str,
) -> Result<Rendered> {
    let words = words(Lang::of(language));
    let subject = one_line(&format!("{} – {}", words.subject, config.site.title));
    let vars = Vars {
        language,
        subject: &subject,
        words,
        digest: digest.title.get(language),
        site: &config.site.title,
        recipient: recipient.as_str(),
        confirm_url,
        organization: config.mail.as_ref().map_or("", |m| m.organization.as_str()),
        logo: config.site.logo.as_ref().map(|u| u.as_str()),
        accent: &config.site.accent,
        accent_text: rendered::text_on(&config.site.accent),
    };
    rendered::notice(config, (HTML_FILE, TEXT_FILE), subject.clone(), &vars)
}

/// The link a subscriber follows to confirm.
pub fn confirm_url(
    config: &Config,
    signer: &Signer,
    id: i64,
    email: &SubscriberEmail,
    now: DateTime<Utc>,
) -> String {
    let token = signer.sign(Purpose::Confirm, id, &email.key(), now);
    format!("{}confirm/{token}", config.public_url())
}

/// Sends `person`, stored as subscriber `id`, their confirmation: the one
/// way the web's sign-ups and `subscribers add --send-confirmation` send
/// it. Returns the server's reply.
pub async fn send(
    config: &Config,
    mailer: &Mailer,
    person: &NewSubscriber,
    id: i64,
    signer: &Signer,
    now: DateTime<Utc>,
) -> Result<String> {
    let (message_id, message) = for_subscriber(config, mailer, person, id, signer, now)?;
    mailer
        .sender
        .send(&message_id, &message)
        .await
        .map_err(|e| anyhow!("the confirmation email was not sent: {e}"))
}

/// The message [`send`] sends, with its Message-ID (also built, and thrown
/// away, before a sign-up is answered: see `web::signup`).
pub fn for_subscriber(
    config: &Config,
    mailer: &Mailer,
    person: &NewSubscriber,
    id: i64,
    signer: &Signer,
    now: DateTime<Utc>,
) -> Result<(String, lettre::Message)> {
    let digest = config
        .digest(Some(&person.digest))
        .with_context(|| format!("no digest `{}`", person.digest))?;
    message(
        config,
        &mailer.mail,
        digest,
        (id, &person.email),
        person.language.as_str(),
        signer,
        mailer.dkim.as_ref(),
        now,
    )
}

/// The whole message, with its Message-ID.
#[allow(clippy::too_many_arguments)]
pub fn message(
    config: &Config,
    mail: &Mail,
    digest: &Digest,
    (id, email): (i64, &SubscriberEmail),
    language: &str,
    signer: &Signer,
    dkim: Option<&DkimSigner>,
    now: DateTime<Utc>,
) -> Result<(String, lettre::Message)> {
    let url = confirm_url(config, signer, id, email, now);
    let rendered = render(config, digest, language, email, &url)?;
    let host = config.site.base_url.host_str().unwrap_or("localhost");
    // Random, not derived from the time: a second request in the same
    // second is a second message.
    let message_id = message::unique_message_id(&format!("confirm.s{id}"), host);
    let notice = Notice {
        from: &mail.from,
        reply_to: mail.reply_to.as_ref(),
        to: email.as_str(),
        message_id: message_id.clone(),
        date: now,
    };
    Ok((message_id, build_notice(&notice, &rendered, dkim)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[site]
title = "Site"
base_url = "https://example.org/news/"
language = "en"

[[themes]]
slug = "alpha"
title = "Alpha"

[[sources]]
kind = "directory"
path = "stories"
url = "/stories/{slug}/"

[mail]
from = "News <news@example.org>"

[[digests]]
id = "monthly"
title = "Monthly"
"#;

    #[test]
    fn two_confirmations_made_at_the_same_instant_have_their_own_message_ids() {
        let site = tempfile::tempdir().unwrap();
        std::fs::create_dir(site.path().join("stories")).unwrap();
        let config = Config::from_str(&site.path().join("config.toml"), CONFIG).unwrap();
        let mail = config.mail.as_ref().unwrap();
        let email = SubscriberEmail::parse("ann@example.org").unwrap();
        let signer = Signer::new(b"a signing key of enough length for the test");
        let now = Utc::now();
        let make = || {
            message(
                &config,
                mail,
                &config.digests[0],
                (7, &email),
                "en",
                &signer,
                None,
                now,
            )
            .unwrap()
        };
        let ((first, m1), (second, m2)) = (make(), make());
        assert_ne!(first, second);
        for (id, m) in [(&first, m1), (&second, m2)] {
            assert!(
                id.starts_with("confirm.s7.") && id.ends_with("@example.org"),
                "{id}"
            );
            let raw = String::from_utf8(m.formatted()).unwrap();
            assert!(raw.contains(&format!("Message-ID: <{id}>\r\n")), "{raw}");
        }
    }
}
