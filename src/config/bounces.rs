//! `[bounces]`: where reports of failed delivery come back (the VERP
//! envelope sender) and when they stop a subscriber's mail.

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::env::Secret;
use super::spans::{Checks, Context};

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
    /// `[bounces.webhooks]`: the relays whose reports arrive over HTTP.
    pub webhooks: Webhooks,
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
            webhooks: Webhooks::default(),
        }
    }
}

const DEFAULT_SOFT_LIMIT: i64 = 3;
const DEFAULT_SOFT_WINDOW_DAYS: i64 = 30;
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
    webhooks: Option<RawWebhooks>,
}
pub(super) const BOUNCES_KEYS: &[&str] =
    &["return_path", "soft_limit", "soft_window_days", "webhooks"];

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
