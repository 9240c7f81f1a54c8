//! `[mail]`: how email leaves — the sender's address, the transport (an
//! outbox folder or an SMTP relay), its pace and the DKIM key.

use std::path::{Path, PathBuf};

use lettre::message::Mailbox;
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::env::Secret;
use super::spans::{Checks, Context};

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
    /// `TIDINGS_SMTP_PASSWORD`, the password of the transport's user: from
    /// the environment, never from config.toml (set by
    /// [`Config::with_environment`](super::Config::with_environment)).
    pub smtp_password: Option<Secret>,
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

/// `[mail]` checked; relative paths resolve against `root`.
pub(super) fn validate(
    cx: &mut Context,
    raw: RawMail,
    value: &Spanned<DeValue<'_>>,
    root: &Path,
) -> Option<Mail> {
    let mut t = Checks::new(cx, "mail", value);
    let from = mailbox(&mut t, "from", &raw.from);
    let reply_to = raw
        .reply_to
        .as_deref()
        .map(|r| mailbox(&mut t, "reply_to", r));
    let transport = t.check("transport", parse_transport(&raw.transport, root));
    let concurrency = t.range("concurrency", raw.concurrency, 1, 256) as usize;
    let rate_limit = t.range("rate_limit", raw.rate_limit, 0, 100_000) as u32;
    let max_attempts = t.range("max_attempts", raw.max_attempts, 1, 100) as u32;
    let unsubscribe_address = t.optional(
        "unsubscribe_address",
        raw.unsubscribe_address.as_deref().map(str::trim),
        |a| {
            a.parse::<lettre::Address>().map_err(|e| {
                format!("`{a}` is not an email address ({e}): expected \"unsubscribe@example.org\"")
            })
        },
    );
    let dkim = raw.dkim.map(|d| dkim(&mut t, d, root));
    if !t.ok {
        return None;
    }
    Some(Mail {
        from: from?,
        reply_to: reply_to.flatten(),
        transport: transport?,
        concurrency,
        rate_limit,
        max_attempts,
        organization: crate::model::text::clean_line(&raw.organization),
        unsubscribe_address,
        dkim: dkim.flatten(),
        smtp_password: None,
    })
}

/// `text` as a mailbox (`"Name <address>"` or a bare address).
fn mailbox(t: &mut Checks, key: &str, text: &str) -> Option<Mailbox> {
    let parsed = text.parse::<Mailbox>().map_err(|e| {
        format!(
            "`{text}` is not an email address ({e}): expected \"Name <name@example.org>\" \
             or \"name@example.org\""
        )
    });
    t.check(key, parsed)
}

/// `dkim = { … }`, when its key file is there.
fn dkim(t: &mut Checks, raw: RawDkim, root: &Path) -> Option<Dkim> {
    let key_file = root.join(&raw.key_file);
    if !key_file.is_file() {
        let span = t.span("dkim");
        t.cx.problem(
            "mail.dkim.key_file",
            span,
            format!(
                "`{}` is not a file (resolved to {}): expected a PEM private key",
                raw.key_file,
                key_file.display()
            ),
        );
        t.ok = false;
        return None;
    }
    Some(Dkim {
        domain: raw.domain,
        selector: raw.selector,
        key_file,
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
