//! `[mail]` and `[[digests]]`: how email leaves, and which periodic digests
//! exist. Read by the same loader as the rest of config.toml.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use lettre::message::Mailbox;
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::{Context, Localized, span_of};

/// `[mail]`.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Required: `"Name <address>"`.
    pub from: Mailbox,
    /// Default none.
    pub reply_to: Option<Mailbox>,
    /// Default `file:outbox`.
    pub transport: Transport,
    /// Default 8: SMTP connections in parallel.
    pub concurrency: usize,
    /// Default 50: messages per second at most; 0 = unlimited.
    pub rate_limit: u32,
    /// Default 5: attempts for temporary failures.
    pub max_attempts: u32,
    /// Default empty: name and postal address for the footer.
    pub organization: String,
    /// Default none: a mailbox whose messages the operator treats as
    /// unsubscribe requests, offered as the `mailto:` of List-Unsubscribe.
    pub unsubscribe_address: Option<lettre::Address>,
    /// Default none.
    pub dkim: Option<Dkim>,
}

/// Where messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// `.eml` files in a folder (resolved against the config's folder).
    File(PathBuf),
    /// An SMTP relay; the password comes from `TIDINGS_SMTP_PASSWORD`.
    Smtp {
        host: String,
        port: u16,
        user: Option<String>,
        tls: Tls,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain connection upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or in tests.
    None,
}

/// `dkim = { domain, selector, key_file }`.
#[derive(Debug, Clone)]
pub struct Dkim {
    pub domain: String,
    pub selector: String,
    /// PEM private key (RSA or Ed25519), resolved against the config's folder.
    pub key_file: PathBuf,
}

/// One `[[digests]]` table.
#[derive(Debug, Clone)]
pub struct Digest {
    /// `[a-z0-9-]+`, unique.
    pub id: String,
    pub title: Localized,
    /// When the service (`tidings run`, a later version) sends it, read in
    /// `[site] timezone`.
    pub schedule: crate::schedule::CronSchedule,
    /// Tera template text per language; `{{ period }}` is the edition's
    /// period. Default: the title followed by the period.
    pub subject: Localized,
    /// Default true: no email to a subscriber with nothing new.
    pub skip_if_empty: bool,
    /// Default 10.
    pub max_stories_per_theme: usize,
}

impl Digest {
    /// The languages this digest can be sent in: those its title has a
    /// text for (all the site's supported ones when it has one text).
    pub fn languages(&self, site_language: &str) -> Vec<String> {
        let mut langs: Vec<String> = self.title.languages().map(str::to_owned).collect();
        if langs.is_empty() {
            langs = vec![site_language.to_owned(), "sv".into(), "en".into()];
            langs.dedup();
        }
        langs
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct RawMail {
    from: String,
    reply_to: Option<String>,
    #[serde(default = "default_transport")]
    transport: String,
    #[serde(default = "default_concurrency")]
    concurrency: i64,
    #[serde(default = "default_rate_limit")]
    rate_limit: i64,
    #[serde(default = "default_max_attempts")]
    max_attempts: i64,
    #[serde(default)]
    organization: String,
    unsubscribe_address: Option<String>,
    dkim: Option<RawDkim>,
}
pub(super) const MAIL_KEYS: &[&str] = &[
    "from",
    "reply_to",
    "transport",
    "concurrency",
    "rate_limit",
    "max_attempts",
    "organization",
    "unsubscribe_address",
    "dkim",
];

fn default_transport() -> String {
    "file:outbox".into()
}
fn default_concurrency() -> i64 {
    8
}
fn default_rate_limit() -> i64 {
    50
}
fn default_max_attempts() -> i64 {
    5
}

#[derive(Debug, Deserialize)]
struct RawDkim {
    domain: String,
    selector: String,
    key_file: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawDigest {
    id: String,
    title: Localized,
    #[serde(default = "default_schedule")]
    schedule: String,
    subject: Option<Localized>,
    #[serde(default = "default_true")]
    skip_if_empty: bool,
    #[serde(default = "default_max_stories")]
    max_stories_per_theme: i64,
}
pub(super) const DIGEST_KEYS: &[&str] = &[
    "id",
    "title",
    "schedule",
    "subject",
    "skip_if_empty",
    "max_stories_per_theme",
];

fn default_schedule() -> String {
    "0 8 1 * *".into()
}
fn default_true() -> bool {
    true
}
fn default_max_stories() -> i64 {
    10
}

pub(super) fn validate_mail(
    cx: &mut Context,
    raw: RawMail,
    value: &Spanned<DeValue<'_>>,
    root: &Path,
) -> Option<Mail> {
    let mut ok = true;
    let mut mailbox = |cx: &mut Context, key: &str, text: &str| match text.parse::<Mailbox>() {
        Ok(m) => Some(m),
        Err(e) => {
            cx.problem(
                &format!("mail.{key}"),
                span_of(value, key),
                format!(
                    "`{text}` is not an email address ({e}): expected \"Name <name@example.org>\" \
                     or \"name@example.org\""
                ),
            );
            ok = false;
            None
        }
    };
    let from = mailbox(cx, "from", &raw.from);
    let reply_to = raw
        .reply_to
        .as_deref()
        .and_then(|r| mailbox(cx, "reply_to", r));
    let transport = match parse_transport(&raw.transport, root) {
        Ok(t) => Some(t),
        Err(e) => {
            cx.problem("mail.transport", span_of(value, "transport"), e);
            None
        }
    };
    let mut range = |cx: &mut Context, key: &str, n: i64, min: i64, max: i64| -> i64 {
        if n < min || n > max {
            cx.problem(
                &format!("mail.{key}"),
                span_of(value, key),
                format!("{n} is out of range: expected a number from {min} to {max}"),
            );
            ok = false;
        }
        n.clamp(min, max)
    };
    let concurrency = range(cx, "concurrency", raw.concurrency, 1, 256) as usize;
    let rate_limit = range(cx, "rate_limit", raw.rate_limit, 0, 100_000) as u32;
    let max_attempts = range(cx, "max_attempts", raw.max_attempts, 1, 100) as u32;
    let unsubscribe_address = match raw.unsubscribe_address.as_deref().map(str::trim) {
        Some(a) => {
            match a.parse::<lettre::Address>() {
                Ok(a) => Some(a),
                Err(e) => {
                    cx.problem(
                    "mail.unsubscribe_address",
                    span_of(value, "unsubscribe_address"),
                    format!("`{a}` is not an email address ({e}): expected \"unsubscribe@example.org\""),
                );
                    ok = false;
                    None
                }
            }
        }
        None => None,
    };
    let dkim = raw.dkim.and_then(|d| {
        let key_file = root.join(&d.key_file);
        if !key_file.is_file() {
            cx.problem(
                "mail.dkim.key_file",
                span_of(value, "dkim"),
                format!(
                    "`{}` is not a file (resolved to {}): expected a PEM private key",
                    d.key_file,
                    key_file.display()
                ),
            );
            return None;
        }
        Some(Dkim {
            domain: d.domain,
            selector: d.selector,
            key_file,
        })
    });
    if !ok {
        return None;
    }
    Some(Mail {
        from: from?,
        reply_to,
        transport: transport?,
        concurrency,
        rate_limit,
        max_attempts,
        organization: crate::model::text::clean_line(&raw.organization),
        unsubscribe_address,
        dkim,
    })
}

/// `file:DIR` or `smtp://[user@]host[:port][?tls=starttls|tls|none]`.
pub fn parse_transport(text: &str, root: &Path) -> Result<Transport, String> {
    if let Some(dir) = text.strip_prefix("file:") {
        if dir.is_empty() {
            return Err("`file:` needs a folder, such as \"file:outbox\"".into());
        }
        return Ok(Transport::File(root.join(dir)));
    }
    let expected = "expected \"file:outbox\" or \"smtp://user@smtp.example.org:587?tls=starttls\"";
    let url = url::Url::parse(text)
        .map_err(|e| format!("`{text}` is not a transport ({e}): {expected}"))?;
    if url.scheme() != "smtp" {
        return Err(format!("unknown transport `{}`: {expected}", url.scheme()));
    }
    if url.password().is_some() {
        return Err(
            "a password does not belong in config.toml: remove it and set TIDINGS_SMTP_PASSWORD"
                .into(),
        );
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("`{text}` names no host: {expected}"))?
        .to_owned();
    let mut tls = Tls::Starttls;
    for (k, v) in url.query_pairs() {
        match (k.as_ref(), v.as_ref()) {
            ("tls", "starttls") => tls = Tls::Starttls,
            ("tls", "tls") => tls = Tls::Tls,
            ("tls", "none") => tls = Tls::None,
            ("tls", other) => {
                return Err(format!(
                    "tls={other} is unknown: expected starttls, tls or none"
                ));
            }
            (other, _) => return Err(format!("unknown option `{other}`: expected tls")),
        }
    }
    let port = url.port().unwrap_or(match tls {
        Tls::Tls => 465,
        Tls::Starttls => 587,
        Tls::None => 25,
    });
    let user = Some(url.username())
        .filter(|u| !u.is_empty())
        .map(percent_decode);
    Ok(Transport::Smtp {
        host,
        port,
        user,
        tls,
    })
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

pub(super) fn validate_digests(
    cx: &mut Context,
    raw: Vec<(usize, RawDigest, Spanned<DeValue<'_>>)>,
    site_language: Option<&str>,
) -> Vec<Digest> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, raw, value) in raw {
        let key = format!("digests[{i}]");
        if crate::model::ThemeSlug::parse(&raw.id).is_err() {
            cx.problem(
                &format!("{key}.id"),
                span_of(&value, "id"),
                format!("`{}` is not a valid digest id: expected lowercase letters, digits and hyphens, such as \"monthly\"", raw.id),
            );
            continue;
        }
        if !seen.insert(raw.id.clone()) {
            cx.problem(
                &format!("{key}.id"),
                span_of(&value, "id"),
                format!(
                    "duplicate digest id `{}`: each digest needs its own id",
                    raw.id
                ),
            );
            continue;
        }
        if raw.max_stories_per_theme < 1 || raw.max_stories_per_theme > 1000 {
            cx.problem(
                &format!("{key}.max_stories_per_theme"),
                span_of(&value, "max_stories_per_theme"),
                format!(
                    "{} is out of range: expected a number from 1 to 1000",
                    raw.max_stories_per_theme
                ),
            );
            continue;
        }
        if let Some(lang) = site_language
            && !raw.title.has(lang)
        {
            cx.problem(
                &format!("{key}.title"),
                span_of(&value, "title"),
                format!("missing a title in `{lang}`, the site's language ([site] language)"),
            );
        }
        let schedule = match crate::schedule::CronSchedule::parse(&raw.schedule) {
            Ok(s) => s,
            Err(e) => {
                cx.problem(&format!("{key}.schedule"), span_of(&value, "schedule"), e);
                continue;
            }
        };
        let subject = raw
            .subject
            .unwrap_or_else(|| raw.title.map(|t| format!("{t} {{{{ period }}}}")));
        out.push(Digest {
            id: raw.id,
            title: raw.title,
            schedule,
            subject,
            skip_if_empty: raw.skip_if_empty,
            max_stories_per_theme: raw.max_stories_per_theme as usize,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_parse_with_defaults_and_refuse_passwords() {
        let root = Path::new("/site");
        assert_eq!(
            parse_transport("file:outbox", root),
            Ok(Transport::File("/site/outbox".into()))
        );
        assert_eq!(
            parse_transport("smtp://news%40x.org@smtp.x.org?tls=tls", root),
            Ok(Transport::Smtp {
                host: "smtp.x.org".into(),
                port: 465,
                user: Some("news@x.org".into()),
                tls: Tls::Tls
            })
        );
        assert_eq!(
            parse_transport("smtp://127.0.0.1:2525?tls=none", root),
            Ok(Transport::Smtp {
                host: "127.0.0.1".into(),
                port: 2525,
                user: None,
                tls: Tls::None
            })
        );
        assert!(
            parse_transport("smtp://u:secret@x.org", root)
                .unwrap_err()
                .contains("TIDINGS_SMTP_PASSWORD")
        );
        assert!(parse_transport("http://x.org", root).is_err());
        assert!(parse_transport("smtp://x.org?tls=maybe", root).is_err());
    }
}
