//! Recognising a report of failed delivery in the raw bytes of a message:
//! a delivery status notification (RFC 3464), a complaint in Abuse
//! Reporting Format (RFC 5965), the plain-text bounces of servers that send
//! neither (Exim, qmail and the like), or an auto-reply, which is never a
//! bounce. Pure: what the report says and which VERP tokens it holds; no
//! token is verified here, and no address is guessed from its text.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use crate::links::tokens::BounceToken;
use crate::model::BounceKind;

/// What a message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// A bounce or a complaint.
    Report(BounceKind),
    /// A vacation message or other automatic answer: never a bounce.
    AutoReply,
    /// A report that delivery succeeded, was relayed or expanded.
    Delivered,
    /// Anything else (a person's mail, spam): left alone.
    Unrecognised,
}

/// What a message says, with every VERP token found in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub class: Class,
    /// The server's words: `Diagnostic-Code`, the SMTP reply quoted in a
    /// plain-text bounce, or the feedback type of a complaint.
    pub diagnostic: String,
    /// The distinct tokens of `LOCAL+TOKEN@DOMAIN` addresses anywhere in
    /// the report (its headers, the status fields, the returned message),
    /// in the order found.
    pub tokens: Vec<BounceToken>,
}

/// Reads `raw` (a whole message, as from a mailbox or an MTA's pipe).
pub fn parse(raw: &[u8]) -> Parsed {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Parsed {
            class: Class::Unrecognised,
            diagnostic: String::new(),
            tokens: tokens(&String::from_utf8_lossy(raw)),
        };
    };
    let text = all_text(raw, &message);
    let tokens = tokens(&text);
    let (class, diagnostic) = classify(&message, &text);
    Parsed {
        class,
        diagnostic,
        tokens,
    }
}

fn classify(message: &Message<'_>, text: &str) -> (Class, String) {
    if let Some(ct) = message.content_type()
        && ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    {
        let report_type = ct
            .attribute("report-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        if report_type == "feedback-report"
            && let Some(fields) = part_text(message, &["feedback-report"])
        {
            return (Class::Report(BounceKind::Complaint), complaint(&fields));
        }
        if report_type.ends_with("delivery-status")
            && let Some(fields) = part_text(message, &["delivery-status", "global-delivery-status"])
            && let Some(found) = delivery_status(&fields)
        {
            return found;
        }
    }
    let subject = message.subject().unwrap_or("").to_lowercase();
    let daemon = from_daemon(message);
    if !daemon && auto_reply(message, &subject) {
        return (Class::AutoReply, String::new());
    }
    if (daemon || BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s)))
        && let Some(found) = plain_bounce(&subject, text)
    {
        return found;
    }
    if auto_reply(message, &subject) || header_has(message, "Auto-Submitted", "auto-replied") {
        return (Class::AutoReply, String::new());
    }
    (Class::Unrecognised, String::new())
}

/// The report's fields of `multipart/report`: the part `message/SUBTYPE`.
fn part_text(message: &Message<'_>, subtypes: &[&str]) -> Option<String> {
    message.parts.iter().find_map(|part| {
        let ct = part.content_type()?;
        let wanted = ct.ctype().eq_ignore_ascii_case("message")
            && ct
                .subtype()
                .is_some_and(|s| subtypes.iter().any(|w| s.eq_ignore_ascii_case(w)));
        wanted.then(|| String::from_utf8_lossy(part.contents()).into_owned())
    })
}

/// Header fields of an RFC 3464 / 5965 body: unfolded `(name, value)`
/// pairs, names lower-cased, blank lines (between recipients) kept as
/// `("", "")`.
fn fields(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            out.push((String::new(), String::new()));
        } else if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    out
}

/// The worst of the per-recipient fields: a failure with a 5.x.x status
/// (or none) is hard; with 4.x.x, or `delayed`, soft. `None` when no
/// recipient failed or was delayed.
fn delivery_status(text: &str) -> Option<(Class, String)> {
    let mut worst: Option<(u8, String)> = None;
    let mut saw_action = false;
    let (mut action, mut status, mut diagnostic) = (String::new(), String::new(), String::new());
    let mut fields = fields(text);
    fields.push((String::new(), String::new()));
    for (name, value) in fields {
        match name.as_str() {
            "action" => {
                action = value.to_ascii_lowercase();
                saw_action = true;
            }
            "status" => status = value,
            "diagnostic-code" => diagnostic = value,
            "" if !action.is_empty() => {
                let rank = match (action.as_str(), status.chars().next()) {
                    ("failed", Some('4')) | ("delayed", _) => 1,
                    ("failed", _) => 2,
                    _ => 0,
                };
                let said = if diagnostic.is_empty() {
                    format!("Status: {status}")
                } else {
                    format!("{status} {}", diagnostic.trim()).trim().to_owned()
                };
                if rank > 0 && worst.as_ref().is_none_or(|(r, _)| rank > *r) {
                    worst = Some((rank, said));
                }
                (action, status, diagnostic) = Default::default();
            }
            _ => {}
        }
    }
    match worst {
        Some((2, said)) => Some((Class::Report(BounceKind::Hard), said)),
        Some((_, said)) => Some((Class::Report(BounceKind::Soft), said)),
        None if saw_action => Some((Class::Delivered, String::new())),
        None => None,
    }
}

/// The feedback type and what the reporter said of the complaint.
fn complaint(text: &str) -> String {
    let fields = fields(text);
    let get = |n: &str| {
        fields
            .iter()
            .find(|(name, _)| name == n)
            .map(|(_, v)| v.as_str())
    };
    let mut said = format!(
        "Feedback-Type: {}",
        get("feedback-type").unwrap_or("unknown")
    );
    if let Some(agent) = get("user-agent") {
        said.push_str(&format!("; User-Agent: {agent}"));
    }
    said
}

/// Subjects of bounces that are not `multipart/report`.
const BOUNCE_SUBJECTS: &[&str] = &[
    "mail delivery failed",
    "delivery status notification",
    "undeliverable",
    "undelivered mail",
    "failure notice",
    "returned mail",
    "delivery failure",
    "mail delivery system",
    "warning: message",
    "olevererbart",
    "kunde inte levereras",
];

/// Words that say a plain-text bounce is temporary.
const SOFT_WORDS: &[&str] = &[
    "temporary",
    "delayed",
    "will keep trying",
    "still trying",
    "will retry",
    "not yet been delivered",
    "has not been delivered yet",
];

/// Words that say it is permanent.
const HARD_WORDS: &[&str] = &[
    "permanent error",
    "permanently",
    "could not be delivered",
    "couldn't be delivered",
    "wasn't able to deliver",
    "following address(es) failed",
    "does not exist",
    "user unknown",
    "no such user",
    "address rejected",
];

/// A bounce in plain text: hard or soft from its words and the SMTP reply
/// it quotes; `None` when it says neither.
fn plain_bounce(subject: &str, text: &str) -> Option<(Class, String)> {
    let lower = text.to_lowercase();
    let reply = smtp_reply(text);
    let code = reply.as_deref().and_then(|r| r.chars().next());
    let soft = subject.starts_with("warning:")
        || subject.contains("delayed")
        || code == Some('4')
        || (code.is_none() && SOFT_WORDS.iter().any(|w| lower.contains(w)));
    let hard = code == Some('5') || HARD_WORDS.iter().any(|w| lower.contains(w));
    let kind = if soft && code != Some('5') {
        BounceKind::Soft
    } else if hard {
        BounceKind::Hard
    } else {
        return None;
    };
    Some((Class::Report(kind), reply.unwrap_or_default()))
}

/// The first line quoting an SMTP reply (`550 5.1.1 …`, `Remote host
/// said: 550 …`), from the code on, with the lines that continue it.
fn smtp_reply(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().map(|l| l.trim()).collect();
    for (i, line) in lines.iter().enumerate() {
        let start = line
            .char_indices()
            .find(|&(j, c)| {
                matches!(c, '4' | '5')
                    && (j == 0 || !line.as_bytes()[j - 1].is_ascii_alphanumeric())
                    && reply_code(&line[j..])
            })
            .map(|(j, _)| j);
        if let Some(j) = start {
            let mut said = line[j..].to_owned();
            for more in lines.iter().skip(i + 1).take(3) {
                if more.is_empty() || more.starts_with("--") {
                    break;
                }
                said.push(' ');
                said.push_str(more);
            }
            return Some(said.chars().take(1000).collect());
        }
    }
    None
}

/// `s` starts with a three-digit reply code followed by a space or `-`,
/// and then an enhanced status code or words.
fn reply_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 4
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
        && (b[3] == b' ' || b[3] == b'-')
        && (b[4].is_ascii_alphabetic()
            || b[4] == b'<'
            || (b[4].is_ascii_digit() && s[4..].starts_with(&s[..1])))
}

/// Whether the message comes from a mail system rather than a person.
fn from_daemon(message: &Message<'_>) -> bool {
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or("")
        .to_ascii_lowercase();
    let local = from.split('@').next().unwrap_or("");
    ["mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"].contains(&local)
        || message.return_address() == Some("")
}

/// Subjects of auto-replies, in Swedish and English.
const VACATION_SUBJECTS: &[&str] = &[
    "out of office",
    "out of the office",
    "automatic reply",
    "auto reply",
    "autoreply",
    "auto-reply",
    "vacation",
    "away from",
    "frånvaro",
    "autosvar",
    "automatiskt svar",
    "semester",
    "ledig",
];

fn auto_reply(message: &Message<'_>, subject: &str) -> bool {
    (header_has(message, "Auto-Submitted", "auto-replied") && !from_daemon(message))
        || message.header("X-Autoreply").is_some()
        || message.header("X-Autorespond").is_some()
        || message.header("X-Autoresponder").is_some()
        || header_has(message, "Precedence", "auto_reply")
        || VACATION_SUBJECTS.iter().any(|s| subject.contains(s))
}

/// Whether header `name` is there and holds `value` (any case; `""`:
/// just there).
fn header_has(message: &Message<'_>, name: &str, value: &str) -> bool {
    message
        .header_raw(name)
        .is_some_and(|v| v.to_ascii_lowercase().contains(value))
}

/// Everything of the report that may hold a token: the raw bytes and the
/// decoded text of every part (a returned message may be base64 or
/// quoted-printable).
fn all_text(raw: &[u8], message: &Message<'_>) -> String {
    let mut text = String::from_utf8_lossy(raw).into_owned();
    for part in &message.parts {
        match &part.body {
            PartType::Text(t) | PartType::Html(t) => {
                text.push('\n');
                text.push_str(t);
            }
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                text.push('\n');
                text.push_str(&String::from_utf8_lossy(b));
            }
            PartType::Message(m) => {
                text.push('\n');
                text.push_str(&all_text(m.raw_message(), m));
            }
            PartType::Multipart(_) => {}
        }
    }
    text
}

/// The tokens of every `+TOKEN@` in `text`, distinct, in order.
fn tokens(text: &str) -> Vec<BounceToken> {
    let mut found: Vec<BounceToken> = Vec::new();
    for (i, _) in text.match_indices('+') {
        let rest = &text[i + 1..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len());
        if !rest[end..].starts_with('@') {
            continue;
        }
        if let Ok(token) = BounceToken::parse(&rest[..end])
            && !found.contains(&token)
        {
            found.push(token);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::links::tokens::Signer;

    /// The token of the fixtures: edition 7, subscriber 42,
    /// anna@example.se, key 1 = `fixture key`.
    const TOKEN: &str = "7-42-1-u5c7nq3sz6iuwwne";

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/bounces/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The fixture's class and diagnostic; its one token must be ours and
    /// verify.
    fn read(name: &str) -> (Class, String) {
        let parsed = parse(&fixture(name));
        assert_eq!(parsed.tokens.len(), 1, "{name}: {:?}", parsed.tokens);
        assert_eq!(parsed.tokens[0].to_string(), TOKEN, "{name}");
        let signer = Signer::new(b"fixture key");
        assert_eq!(
            signer.verify_bounce(&parsed.tokens[0], "anna@example.se"),
            Ok(()),
            "{name}"
        );
        (parsed.class, parsed.diagnostic)
    }

    fn hard(name: &str, said: &str) {
        let (class, diagnostic) = read(name);
        assert_eq!(class, Class::Report(BounceKind::Hard), "{name}");
        assert!(diagnostic.contains(said), "{name}: {diagnostic}");
    }

    fn soft(name: &str, said: &str) {
        let (class, diagnostic) = read(name);
        assert_eq!(class, Class::Report(BounceKind::Soft), "{name}");
        assert!(diagnostic.contains(said), "{name}: {diagnostic}");
    }

    #[test]
    fn delivery_status_notifications_are_hard_or_soft_by_action_and_status() {
        hard(
            "postfix-hard.eml",
            "5.1.1 <anna@example.se>: Recipient address rejected",
        );
        soft("postfix-soft.eml", "4.2.2 smtp; 452 4.2.2");
        soft("postfix-delayed.eml", "Connection timed out");
    }

    #[test]
    fn each_servers_bounce_is_recognised() {
        hard("exchange-ndr.eml", "RESOLVER.ADR.RecipientNotFound");
        hard("gmail-hard.eml", "does not exist");
        hard(
            "outlook-com-hard.eml",
            "550 5.5.0 Requested action not taken",
        );
        hard(
            "exim-hard.eml",
            "550 5.1.1 <anna@example.se>: No such user here",
        );
        soft("exim-delayed.eml", "451 4.7.1 Greylisted");
        hard(
            "qmail-hard.eml",
            "550 5.1.1 <anna@example.se>... User unknown",
        );
    }

    #[test]
    fn a_feedback_report_is_a_complaint() {
        let (class, diagnostic) = read("arf-complaint.eml");
        assert_eq!(class, Class::Report(BounceKind::Complaint));
        assert!(diagnostic.contains("Feedback-Type: abuse"), "{diagnostic}");
    }

    #[test]
    fn auto_replies_are_never_bounces() {
        for name in ["autoreply-en.eml", "autoreply-sv.eml"] {
            let (class, _) = read(name);
            assert_eq!(class, Class::AutoReply, "{name}");
        }
    }

    #[test]
    fn a_forged_token_does_not_verify_and_a_strangers_mail_has_none() {
        let forged = parse(&fixture("forged-token.eml"));
        assert_eq!(forged.class, Class::Report(BounceKind::Hard));
        let signer = Signer::new(b"fixture key");
        assert!(
            forged
                .tokens
                .iter()
                .all(|t| signer.verify_bounce(t, "anna@example.se").is_err())
        );
        let stranger = parse(&fixture("stranger.eml"));
        assert_eq!(stranger.class, Class::Unrecognised);
        assert!(stranger.tokens.is_empty());
        assert_eq!(parse(b"not a message at all").class, Class::Unrecognised);
    }
}
