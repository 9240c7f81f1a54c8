//! `[bounces]`: where reports of failed delivery come back (the VERP
//! envelope sender), when they stop a subscriber's mail, and the mailbox
//! that `tidings run` and `tidings bounces fetch` read them from over IMAP.

use std::fmt;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::env::Secret;
use super::mail::Tls;
use super::spans::{Checks, Context};
use crate::schedule::CronSchedule;

/// `[bounces]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounces {
    /// Default none: the address whose `+`-extensions receive the reports.
    /// When set, each digest's envelope sender (SMTP `MAIL FROM`) becomes
    /// `LOCAL+TOKEN@DOMAIN`, the token naming the edition and the
    /// subscriber, signed with the site's key ring.
    pub return_path: Option<lettre::Address>,
    /// Default 3: soft bounces within `soft_window_days` that stop a
    /// subscriber's mail as a hard bounce does.
    pub soft_limit: u32,
    /// Default 30: the days over which soft bounces are counted.
    pub soft_window_days: u32,
    /// Default none: the mailbox the reports arrive in, read over IMAP
    /// (`mailbox`, with `processed_folder` and `schedule`).
    pub mailbox: Option<ImapMailbox>,
    /// `[bounces.webhooks]`: the relays whose reports arrive over HTTP.
    pub webhooks: Webhooks,
}

/// `[bounces] mailbox = "imap://user@host[:port][/FOLDER][?tls=tls|starttls|none]"`
/// and the keys that go with it.
#[derive(Debug, Clone)]
pub struct ImapMailbox {
    pub host: String,
    /// Default 993 with `tls=tls`, else 143.
    pub port: u16,
    pub user: String,
    /// Default `INBOX`: the folder the reports arrive in.
    pub folder: String,
    /// Default `tls`: TLS from the first byte.
    pub tls: Tls,
    /// Default `tidings-processed`: where reports acted on are moved
    /// (created when missing).
    pub processed_folder: String,
    /// Default every 10 minutes: when `tidings run` reads the mailbox.
    pub schedule: CronSchedule,
    /// `TIDINGS_BOUNCES_PASSWORD`: from the environment, never from
    /// config.toml (set by [`Config::with_environment`](super::Config::with_environment)).
    pub password: Option<Secret>,
}

impl PartialEq for ImapMailbox {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.host,
            self.port,
            &self.user,
            &self.folder,
            self.tls,
            &self.processed_folder,
            self.schedule.as_str(),
            &self.password,
        ) == (
            &other.host,
            other.port,
            &other.user,
            &other.folder,
            other.tls,
            &other.processed_folder,
            other.schedule.as_str(),
            &other.password,
        )
    }
}
impl Eq for ImapMailbox {}

/// `imap://user@host:port/FOLDER?tls=MODE`, never with the password: for
/// messages and logs.
impl fmt::Display for ImapMailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tls = match self.tls {
            Tls::Tls => "tls",
            Tls::Starttls => "starttls",
            Tls::None => "none",
        };
        write!(
            f,
            "imap://{}@{}:{}/{}?tls={tls}",
            self.user, self.host, self.port, self.folder
        )
    }
}

impl ImapMailbox {
    /// The password, or the error that says where to set it.
    pub fn password(&self) -> Result<&Secret, String> {
        self.password.as_ref().ok_or_else(|| {
            format!(
                "[bounces] mailbox names the user `{}` on {}: set its password in the \
                 environment variable TIDINGS_BOUNCES_PASSWORD",
                self.user, self.host
            )
        })
    }
}

impl Bounces {
    /// Why the mailbox cannot be read as configured (no password in the
    /// environment), when one is set: `check`, the start of `run` and
    /// `bounces fetch` say so before doing anything.
    pub fn mailbox_problem(&self) -> Option<String> {
        self.mailbox.as_ref()?.password().err()
    }
}

/// A relay that reports bounces and complaints to a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relay {
    /// Amazon SES, through an SNS topic's HTTPS subscription.
    Ses,
    Mailgun,
    Postmark,
    SendGrid,
}

impl Relay {
    pub const ALL: [Relay; 4] = [Relay::Ses, Relay::Mailgun, Relay::Postmark, Relay::SendGrid];

    /// The name in config.toml and in the webhook's path.
    pub fn as_str(self) -> &'static str {
        match self {
            Relay::Ses => "ses",
            Relay::Mailgun => "mailgun",
            Relay::Postmark => "postmark",
            Relay::SendGrid => "sendgrid",
        }
    }

    pub fn parse(name: &str) -> Option<Relay> {
        Relay::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[bounces.webhooks]`, with the secrets the environment gives (set by
/// [`Config::with_environment`](super::Config::with_environment)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Webhooks {
    /// Default none: the relays whose `POST /webhooks/bounces/<relay>`
    /// is open; every other relay's path answers 404.
    pub relays: Vec<Relay>,
    /// Postmark: the user of the basic authentication in the webhook's
    /// URL (required when `postmark` is listed); the password is
    /// `TIDINGS_POSTMARK_WEBHOOK_PASSWORD`.
    pub postmark_user: Option<String>,
    /// SES: the SNS topics whose messages are taken (default: any topic
    /// whose message verifies).
    pub sns_topic_arns: Vec<String>,
    /// `TIDINGS_MAILGUN_SIGNING_KEY`.
    pub mailgun_signing_key: Option<Secret>,
    /// `TIDINGS_POSTMARK_WEBHOOK_PASSWORD`.
    pub postmark_password: Option<Secret>,
    /// `TIDINGS_SENDGRID_VERIFICATION_KEY`: the public key SendGrid shows
    /// (base64 of its DER form).
    pub sendgrid_key: Option<Secret>,
    /// `TIDINGS_SNS_CERT_URL_PATTERN`, for tests only: where SNS signing
    /// certificates (and subscription confirmations) may be fetched from,
    /// instead of `https://sns.*.amazonaws.com`.
    pub sns_cert_url_pattern: Option<String>,
}

impl Webhooks {
    pub fn enabled(&self, relay: Relay) -> bool {
        self.relays.contains(&relay)
    }

    /// What keeps an enabled relay from working: the environment variable
    /// it needs and does not have. `run` refuses to start with any.
    pub fn missing_secrets(&self) -> Vec<String> {
        let mut missing = Vec::new();
        let mut need = |relay: Relay, value: &Option<Secret>, name: &str| {
            if self.enabled(relay) && value.is_none() {
                missing.push(format!(
                    "`bounces.webhooks.relays` lists \"{relay}\" but {name} is not set"
                ));
            }
        };
        need(
            Relay::Mailgun,
            &self.mailgun_signing_key,
            "TIDINGS_MAILGUN_SIGNING_KEY",
        );
        need(
            Relay::Postmark,
            &self.postmark_password,
            "TIDINGS_POSTMARK_WEBHOOK_PASSWORD",
        );
        need(
            Relay::SendGrid,
            &self.sendgrid_key,
            "TIDINGS_SENDGRID_VERIFICATION_KEY",
        );
        missing
    }
}

impl Default for Bounces {
    fn default() -> Self {
        Bounces {
            return_path: None,
            soft_limit: DEFAULT_SOFT_LIMIT as u32,
            soft_window_days: DEFAULT_SOFT_WINDOW_DAYS as u32,
            mailbox: None,
            webhooks: Webhooks::default(),
        }
    }
}

const DEFAULT_SOFT_LIMIT: i64 = 3;
const DEFAULT_SOFT_WINDOW_DAYS: i64 = 30;
/// Default `[bounces] processed_folder`.
pub const DEFAULT_PROCESSED_FOLDER: &str = "tidings-processed";
/// Default `[bounces] schedule`: every 10 minutes.
const DEFAULT_SCHEDULE: &str = "*/10 * * * *";
/// The longest local part `return_path` may have: the token takes up to
/// 43 of the 64 characters a local part may hold (RFC 5321 4.5.3.1.1),
/// with one more for the `+`.
pub const MAX_RETURN_PATH_LOCAL: usize = 20;

#[derive(Debug, Deserialize)]
pub(super) struct RawBounces {
    return_path: Option<String>,
    #[serde(default = "default_soft_limit")]
    soft_limit: i64,
    #[serde(default = "default_soft_window_days")]
    soft_window_days: i64,
    mailbox: Option<String>,
    processed_folder: Option<String>,
    schedule: Option<String>,
    webhooks: Option<RawWebhooks>,
}
pub(super) const BOUNCES_KEYS: &[&str] = &[
    "return_path",
    "soft_limit",
    "soft_window_days",
    "mailbox",
    "processed_folder",
    "schedule",
    "webhooks",
];

#[derive(Debug, Deserialize)]
struct RawWebhooks {
    #[serde(default)]
    relays: Vec<String>,
    postmark_user: Option<String>,
    #[serde(default)]
    sns_topic_arns: Vec<String>,
}

fn default_soft_limit() -> i64 {
    DEFAULT_SOFT_LIMIT
}
fn default_soft_window_days() -> i64 {
    DEFAULT_SOFT_WINDOW_DAYS
}

/// `[bounces]` checked.
pub(super) fn validate(
    cx: &mut Context,
    raw: RawBounces,
    value: &Spanned<DeValue<'_>>,
) -> Option<Bounces> {
    let mut t = Checks::new(cx, "bounces", value);
    let return_path = t.optional(
        "return_path",
        raw.return_path.as_deref().map(str::trim),
        parse_return_path,
    );
    let soft_limit = t.range("soft_limit", raw.soft_limit, 1, 1000) as u32;
    let soft_window_days = t.range("soft_window_days", raw.soft_window_days, 1, 3650) as u32;
    let mailbox = t.optional(
        "mailbox",
        raw.mailbox.as_deref().map(str::trim),
        parse_mailbox,
    );
    let processed_folder = t
        .optional(
            "processed_folder",
            raw.processed_folder.as_deref().map(str::trim),
            |f| parse_folder(f).map(str::to_owned),
        )
        .unwrap_or_else(|| DEFAULT_PROCESSED_FOLDER.to_owned());
    let schedule = t.check(
        "schedule",
        CronSchedule::parse(raw.schedule.as_deref().unwrap_or(DEFAULT_SCHEDULE)),
    );
    if let Some(mailbox) = &mailbox
        && mailbox.folder.eq_ignore_ascii_case(&processed_folder)
    {
        t.fail(
            "processed_folder",
            format!(
                "`{processed_folder}` is the folder the reports arrive in (from `mailbox`): \
                 name another, such as \"{DEFAULT_PROCESSED_FOLDER}\""
            ),
        );
    }
    let webhooks = match raw.webhooks {
        Some(raw) => webhooks(&mut t, raw),
        None => Webhooks::default(),
    };
    if !t.ok {
        return None;
    }
    Some(Bounces {
        return_path,
        soft_limit,
        soft_window_days,
        mailbox: mailbox.map(|m| ImapMailbox {
            processed_folder,
            schedule: schedule.expect("checked"),
            ..m
        }),
        webhooks,
    })
}

/// `[bounces.webhooks]` checked (its secrets come later, from the
/// environment).
fn webhooks(t: &mut Checks, raw: RawWebhooks) -> Webhooks {
    let mut relays = Vec::new();
    for (n, name) in raw.relays.iter().enumerate() {
        let key = format!("webhooks.relays[{n}]");
        match Relay::parse(name.trim()) {
            Some(relay) if relays.contains(&relay) => {
                t.fail(&key, format!("\"{relay}\" is listed twice"))
            }
            Some(relay) => relays.push(relay),
            None => t.fail(
                &key,
                format!(
                    "unknown relay \"{name}\": expected \"ses\", \"mailgun\", \"postmark\" or \"sendgrid\""
                ),
            ),
        }
    }
    let postmark_user = raw
        .postmark_user
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty());
    if let Some(user) = &postmark_user
        && user.contains(':')
    {
        t.fail(
            "webhooks.postmark_user",
            "a basic-auth user cannot hold `:`",
        );
    }
    if relays.contains(&Relay::Postmark) && postmark_user.is_none() {
        t.fail(
            "webhooks.relays",
            "\"postmark\" needs `postmark_user` in [bounces.webhooks]: the user of the \
             basic authentication in the webhook's URL (its password is \
             TIDINGS_POSTMARK_WEBHOOK_PASSWORD)",
        );
    }
    for (n, arn) in raw.sns_topic_arns.iter().enumerate() {
        if !arn.starts_with("arn:aws") || arn.split(':').count() != 6 {
            t.fail(
                &format!("webhooks.sns_topic_arns[{n}]"),
                format!(
                    "`{arn}` is not a topic ARN: expected \"arn:aws:sns:REGION:ACCOUNT:TOPIC\""
                ),
            );
        }
    }
    Webhooks {
        relays,
        postmark_user,
        sns_topic_arns: raw.sns_topic_arns,
        ..Webhooks::default()
    }
}

/// `imap://user@host[:port][/FOLDER][?tls=tls|starttls|none]`; the
/// processed folder and schedule are the defaults (set by the caller).
pub fn parse_mailbox(text: &str) -> Result<ImapMailbox, String> {
    let expected = "expected \"imap://user@imap.example.org/INBOX\" \
                    (optionally with :port and ?tls=tls, starttls or none)";
    let url = url::Url::parse(text)
        .map_err(|e| format!("`{text}` is not an IMAP URL ({e}): {expected}"))?;
    if url.scheme() != "imap" {
        return Err(format!(
            "unknown scheme `{}` in `{text}`: {expected}",
            url.scheme()
        ));
    }
    if url.password().is_some() {
        return Err(
            "a password does not belong in config.toml: remove it and set \
             TIDINGS_BOUNCES_PASSWORD"
                .into(),
        );
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("`{text}` names no host: {expected}"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let user = percent_decode(url.username());
    if user.is_empty() {
        return Err(format!("`{text}` names no user: {expected}"));
    }
    let mut tls = Tls::Tls;
    for (k, v) in url.query_pairs() {
        match (k.as_ref(), v.as_ref()) {
            ("tls", "tls") => tls = Tls::Tls,
            ("tls", "starttls") => tls = Tls::Starttls,
            ("tls", "none") => tls = Tls::None,
            ("tls", other) => {
                return Err(format!(
                    "tls={other} is unknown: expected tls, starttls or none"
                ));
            }
            (other, _) => return Err(format!("unknown option `{other}`: expected tls")),
        }
    }
    let port = url.port().unwrap_or(match tls {
        Tls::Tls => 993,
        Tls::Starttls | Tls::None => 143,
    });
    let path = percent_decode(url.path().trim_start_matches('/'));
    let folder = if path.is_empty() {
        "INBOX".to_owned()
    } else {
        parse_folder(&path)?.to_owned()
    };
    Ok(ImapMailbox {
        host,
        port,
        user,
        folder,
        tls,
        processed_folder: DEFAULT_PROCESSED_FOLDER.to_owned(),
        schedule: CronSchedule::parse(DEFAULT_SCHEDULE).expect("a valid default"),
        password: None,
    })
}

/// A folder name as IMAP takes it without encoding: printable ASCII.
fn parse_folder(name: &str) -> Result<&str, String> {
    if name.is_empty() {
        return Err("the folder name is empty".into());
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_graphic() || *c == ' ')) {
        return Err(format!(
            "the folder name `{}` has {c:?}: use letters, digits and punctuation of ASCII",
            name.escape_debug()
        ));
    }
    Ok(name)
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

/// A bare address whose local part leaves room for `+TOKEN`.
pub fn parse_return_path(text: &str) -> Result<lettre::Address, String> {
    let address = text.parse::<lettre::Address>().map_err(|e| {
        format!("`{text}` is not an email address ({e}): expected \"bounces@example.org\"")
    })?;
    let local = address.user();
    if local.contains('+') {
        return Err(format!(
            "`{text}` already has a `+`: give the plain address, such as \"bounces@{}\"; \
             tidings adds `+TOKEN` itself",
            address.domain()
        ));
    }
    if local.starts_with('"') {
        return Err(format!("`{text}`: a quoted local part cannot take a token"));
    }
    if local.len() > MAX_RETURN_PATH_LOCAL {
        return Err(format!(
            "`{text}`: the part before `@` has {} characters, at most {MAX_RETURN_PATH_LOCAL} \
             leave room for the token (a local part holds 64)",
            local.len()
        ));
    }
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes_parse_with_defaults_and_refuse_passwords() {
        let m = parse_mailbox("imap://bounces%40example.org@imap.example.org").unwrap();
        assert_eq!(
            (
                m.user.as_str(),
                m.host.as_str(),
                m.port,
                m.folder.as_str(),
                m.tls
            ),
            (
                "bounces@example.org",
                "imap.example.org",
                993,
                "INBOX",
                Tls::Tls
            )
        );
        assert_eq!(
            m.to_string(),
            "imap://bounces@example.org@imap.example.org:993/INBOX?tls=tls"
        );
        let m = parse_mailbox("imap://u@127.0.0.1/Bounces%20in?tls=none").unwrap();
        assert_eq!(
            (m.port, m.folder.as_str(), m.tls),
            (143, "Bounces in", Tls::None)
        );
        let m = parse_mailbox("imap://u@h:1143/INBOX?tls=starttls").unwrap();
        assert_eq!((m.port, m.tls), (1143, Tls::Starttls));
        let err = |t: &str| parse_mailbox(t).unwrap_err();
        assert!(err("imap://u:pw@h").contains("TIDINGS_BOUNCES_PASSWORD"));
        assert!(err("imap://h").contains("names no user"));
        assert!(err("imaps://u@h").contains("unknown scheme `imaps`"));
        assert!(err("imap://u@h?tls=maybe").contains("tls=maybe is unknown"));
        assert!(err("imap://u@h?folder=x").contains("unknown option `folder`"));
        assert!(err("imap://u@h/Br%C3%A4nder").contains("ASCII"));
        assert!(err("bounces@example.org").contains("expected \"imap://"));
        let missing = Bounces {
            mailbox: Some(parse_mailbox("imap://u@h").unwrap()),
            ..Bounces::default()
        };
        let problem = missing.mailbox_problem().unwrap();
        assert!(problem.contains("TIDINGS_BOUNCES_PASSWORD"), "{problem}");
        assert!(problem.contains("`u` on h"), "{problem}");
    }

    #[test]
    fn return_paths_are_plain_short_addresses() {
        assert_eq!(
            parse_return_path("bounces@example.org")
                .unwrap()
                .to_string(),
            "bounces@example.org"
        );
        assert!(
            parse_return_path("bounces")
                .unwrap_err()
                .contains("bounces@example.org")
        );
        assert!(
            parse_return_path("bounces+x@example.org")
                .unwrap_err()
                .contains("`+`")
        );
        assert!(
            parse_return_path("a-very-long-name-for-bounces@example.org")
                .unwrap_err()
                .contains("at most 20")
        );
    }
}
