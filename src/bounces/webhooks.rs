//! What relays post to the bounce webhooks, read and verified: pure
//! functions from a request's body (and its signature headers) to a list of
//! [`Event`]s, one per recipient a report names. Each relay has its own
//! form and its own proof that the request is the relay's:
//!
//! - Amazon SES posts through an SNS topic: an SNS message signed with RSA
//!   (SHA1 for `SignatureVersion` 1, SHA256 for 2) over the canonical form
//!   of its fields, with a certificate fetched from where [`UrlPattern`]
//!   allows ([`SnsMessage`], [`certificate_key`]); the SES notification is
//!   the message's `Message` ([`ses_events`]).
//! - Mailgun signs `timestamp + token` with HMAC-SHA256 under the
//!   account's webhook signing key ([`mailgun`]).
//! - Postmark sends basic authentication in the URL it was given
//!   ([`basic_auth_matches`], [`postmark`]).
//! - SendGrid signs `timestamp + body` with ECDSA P-256 ([`SendGridKey`],
//!   [`sendgrid`]).
//!
//! Nothing here reads the store or the network: [`super::relay`] fetches
//! certificates, matches events to deliveries and records them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, TimeZone as _, Utc};
use hmac::{Hmac, Mac as _};
use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::pkcs8::der::asn1::{AnyRef, GeneralizedTime, UtcTime};
use rsa::pkcs8::der::{Decode as _, Encode as _, Reader as _, SliceReader, Tag, Tagged as _};
use serde_json::Value;
use subtle::ConstantTimeEq as _;
use url::Url;

use crate::links::tokens::BounceToken;
use crate::model::BounceKind;

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// The signature (or the credentials) is missing or wrong: 401.
    Unauthorized(String),
    /// The body is not what the relay sends: 400.
    Malformed(String),
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::Unauthorized(why) | Rejected::Malformed(why) => f.write_str(why),
        }
    }
}

fn malformed(why: impl Into<String>) -> Rejected {
    Rejected::Malformed(why.into())
}

fn unauthorized(why: impl Into<String>) -> Rejected {
    Rejected::Unauthorized(why.into())
}

/// One recipient's bounce or complaint, as a relay reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// A name of this event that stays the same when the relay delivers it
    /// again (its event id, with the recipient): the store records it once.
    pub identity: String,
    pub kind: BounceKind,
    /// The address that bounced or complained, as the relay gives it.
    pub recipient: Option<String>,
    /// The VERP token of the envelope sender, when the relay tells it
    /// (not yet verified).
    pub token: Option<BounceToken>,
    /// The edition and subscriber of a digest's Message-ID
    /// (`e{edition}.s{subscriber}.{digest}@{host}`), when the relay tells it.
    pub digest_message: Option<(i64, i64)>,
    /// The relay's words for what happened.
    pub diagnostic: String,
    /// When it happened, by the relay's clock.
    pub at: Option<DateTime<Utc>>,
}

/// The longest diagnostic kept, in characters.
const MAX_DIAGNOSTIC: usize = 1000;

/// `text` on one line, without control characters, cut to
/// [`MAX_DIAGNOSTIC`].
fn diagnostic(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_DIAGNOSTIC)
        .collect();
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The VERP token of an envelope sender `LOCAL+TOKEN@DOMAIN`.
pub fn token_of_sender(sender: &str) -> Option<BounceToken> {
    let sender = sender.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, _) = sender.rsplit_once('@')?;
    let (_, token) = local.split_once('+')?;
    BounceToken::parse(token).ok()
}

/// The edition and subscriber a digest's Message-ID names:
/// `<e12.s34.monthly@example.org>` gives `(12, 34)`.
pub fn digest_message_id(id: &str) -> Option<(i64, i64)> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, _) = id.split_once('@')?;
    let mut parts = local.splitn(3, '.');
    let number = |part: Option<&str>, prefix: char| {
        part?
            .strip_prefix(prefix)
            .filter(|n| !n.is_empty() && n.len() <= 18 && n.bytes().all(|b| b.is_ascii_digit()))?
            .parse::<i64>()
            .ok()
    };
    let edition = number(parts.next(), 'e')?;
    let subscriber = number(parts.next(), 's')?;
    parts.next().filter(|digest| !digest.is_empty())?;
    Some((edition, subscriber))
}

fn text<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

fn json(body: &[u8], relay: &str) -> Result<Value, Rejected> {
    serde_json::from_slice(body)
        .map_err(|e| malformed(format!("the body is not the JSON {relay} sends: {e}")))
}

fn rfc3339(value: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn unix_seconds(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let value = value?;
    let seconds = value
        .as_f64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))?;
    Utc.timestamp_opt(seconds.trunc() as i64, 0).single()
}

// ---------------------------------------------------------------- SNS / SES

/// Where SNS certificates and subscription confirmations may be fetched
/// from: a scheme, a host in which `*` stands for one label, and a port
/// (the scheme's default unless the pattern names one; `*` for any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPattern {
    scheme: String,
    host: String,
    port: Option<Option<u16>>,
}

/// The pattern of production: SNS's own hosts, over HTTPS.
pub const SNS_URL_PATTERN: &str = "https://sns.*.amazonaws.com";

impl UrlPattern {
    /// Reads `SCHEME://HOST[:PORT|:*]`.
    pub fn parse(text: &str) -> Result<UrlPattern, String> {
        let expected = "expected SCHEME://HOST such as \"https://sns.*.amazonaws.com\"";
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("`{text}`: {expected}"))?;
        if scheme != "https" && scheme != "http" {
            return Err(format!("`{text}`: the scheme must be https or http"));
        }
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, "*")) => (host, Some(None)),
            Some((host, port)) => (
                host,
                Some(Some(
                    port.parse::<u16>()
                        .map_err(|_| format!("`{text}`: `{port}` is not a port"))?,
                )),
            ),
            None => (rest, None),
        };
        if host.is_empty() || host.contains('/') {
            return Err(format!("`{text}`: {expected}"));
        }
        Ok(UrlPattern {
            scheme: scheme.to_owned(),
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether `url` is one this pattern allows.
    pub fn matches(&self, url: &Url) -> bool {
        if url.scheme() != self.scheme || !url.username().is_empty() || url.password().is_some() {
            return false;
        }
        let port_ok = match self.port {
            None => url.port().is_none(),
            Some(None) => true,
            Some(Some(port)) => url.port_or_known_default() == Some(port),
        };
        let Some(host) = url.host_str() else {
            return false;
        };
        port_ok && host_matches(&self.host, &host.to_ascii_lowercase())
    }
}

impl std::fmt::Display for UrlPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        match self.port {
            None => Ok(()),
            Some(None) => f.write_str(":*"),
            Some(Some(port)) => write!(f, ":{port}"),
        }
    }
}

/// `pattern`'s labels against `host`'s: `*` is any one non-empty label of
/// letters, digits and `-`.
fn host_matches(pattern: &str, host: &str) -> bool {
    let (p, h): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), host.split('.').collect());
    p.len() == h.len()
        && p.iter().zip(&h).all(|(p, h)| {
            if *p == "*" {
                !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            } else {
                p == h
            }
        })
}

/// What an SNS message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnsKind {
    /// A new subscription: GET `subscribe_url` to confirm it.
    SubscriptionConfirmation { subscribe_url: Url },
    /// A message published to the topic (here, an SES notification).
    Notification,
    /// The subscription was ended.
    UnsubscribeConfirmation,
}

/// An SNS message, read but not yet verified.
#[derive(Debug, Clone)]
pub struct SnsMessage {
    pub kind: SnsKind,
    pub message_id: String,
    pub topic_arn: String,
    /// The message itself: for a notification, SES's JSON.
    pub message: String,
    pub signing_cert_url: Url,
    /// The bytes the signature covers.
    canonical: String,
    signature: Vec<u8>,
    sha256: bool,
}

impl SnsMessage {
    /// Reads an SNS message. A body without a signature is
    /// [`Rejected::Unauthorized`] (raw message delivery sends none).
    pub fn parse(body: &[u8]) -> Result<SnsMessage, Rejected> {
        let value = json(body, "SNS")?;
        let field = |key: &str| text(&value, key);
        let required = |key: &str| {
            field(key)
                .ok_or_else(|| malformed(format!("the SNS message has no `{key}` (a string)")))
        };
        // First: a message without a signature proves nothing, whatever
        // else it holds.
        let signature = field("Signature").ok_or_else(|| {
            unauthorized("the SNS message is not signed (is raw message delivery on?)")
        })?;
        let kind = required("Type")?;
        let signature = BASE64
            .decode(signature)
            .map_err(|_| unauthorized("the SNS signature is not base64"))?;
        let sha256 = match field("SignatureVersion") {
            Some("1") => false,
            Some("2") => true,
            other => {
                return Err(unauthorized(format!(
                    "unknown SNS SignatureVersion {other:?}: expected \"1\" or \"2\""
                )));
            }
        };
        let cert = required("SigningCertURL")?;
        let signing_cert_url = Url::parse(cert)
            .map_err(|e| unauthorized(format!("SigningCertURL `{cert}` is no URL: {e}")))?;
        let keys: &[&str] = match kind {
            "Notification" => &[
                "Message",
                "MessageId",
                "Subject",
                "Timestamp",
                "TopicArn",
                "Type",
            ],
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => &[
                "Message",
                "MessageId",
                "SubscribeURL",
                "Timestamp",
                "Token",
                "TopicArn",
                "Type",
            ],
            other => {
                return Err(malformed(format!(
                    "unknown SNS message Type `{other}`: expected Notification, \
                     SubscriptionConfirmation or UnsubscribeConfirmation"
                )));
            }
        };
        // The canonical form: each field's name and value on lines of their
        // own, in this order; Subject only when the message has one.
        let mut canonical = String::new();
        for key in keys {
            match field(key) {
                Some(v) => {
                    canonical.push_str(key);
                    canonical.push('\n');
                    canonical.push_str(v);
                    canonical.push('\n');
                }
                None if *key == "Subject" => {}
                None => {
                    return Err(malformed(format!(
                        "the SNS {kind} has no `{key}` (a string)"
                    )));
                }
            }
        }
        let kind = match kind {
            "SubscriptionConfirmation" => {
                let url = required("SubscribeURL")?;
                SnsKind::SubscriptionConfirmation {
                    subscribe_url: Url::parse(url)
                        .map_err(|e| malformed(format!("SubscribeURL `{url}` is no URL: {e}")))?,
                }
            }
            "Notification" => SnsKind::Notification,
            _ => SnsKind::UnsubscribeConfirmation,
        };
        Ok(SnsMessage {
            kind,
            message_id: required("MessageId")?.to_owned(),
            topic_arn: required("TopicArn")?.to_owned(),
            message: required("Message")?.to_owned(),
            signing_cert_url,
            canonical,
            signature,
            sha256,
        })
    }

    /// Checks the signature with the public key of the certificate at
    /// `signing_cert_url`.
    pub fn verify(&self, key: &RsaPublicKey) -> Result<(), Rejected> {
        use sha2::Digest as _;
        let checked = if self.sha256 {
            let digest = sha2::Sha256::digest(self.canonical.as_bytes());
            key.verify(
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                &digest,
                &self.signature,
            )
        } else {
            let digest = sha1::Sha1::digest(self.canonical.as_bytes());
            key.verify(
                rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                &digest,
                &self.signature,
            )
        };
        checked.map_err(|_| unauthorized("the SNS signature does not verify"))
    }
}

/// The RSA public key of a PEM (or DER) X.509 certificate, when it is
/// valid at `now`.
pub fn certificate_key(bytes: &[u8], now: DateTime<Utc>) -> Result<RsaPublicKey, String> {
    let der;
    let bytes = if bytes.starts_with(b"-----BEGIN") {
        let text = std::str::from_utf8(bytes).map_err(|_| "the certificate is not PEM text")?;
        let (label, doc) = rsa::pkcs8::der::Document::from_pem(text)
            .map_err(|e| format!("the certificate is not PEM: {e}"))?;
        if label != "CERTIFICATE" {
            return Err(format!("expected a CERTIFICATE, found a {label}"));
        }
        der = doc;
        der.as_bytes()
    } else {
        bytes
    };
    let bad = |e: rsa::pkcs8::der::Error| format!("the certificate is not X.509 DER: {e}");
    let cert = AnyRef::from_der(bytes).map_err(bad)?;
    let mut outer = SliceReader::new(cert.value()).map_err(bad)?;
    let tbs: AnyRef = outer.decode().map_err(bad)?;
    let mut fields = SliceReader::new(tbs.value()).map_err(bad)?;
    let mut next: AnyRef = fields.decode().map_err(bad)?;
    // [0] version, when present, comes before the serial number.
    if next.tag().is_context_specific() {
        next = fields.decode().map_err(bad)?;
    }
    let _serial = next;
    let _signature: AnyRef = fields.decode().map_err(bad)?;
    let _issuer: AnyRef = fields.decode().map_err(bad)?;
    let validity: AnyRef = fields.decode().map_err(bad)?;
    let _subject: AnyRef = fields.decode().map_err(bad)?;
    let spki: AnyRef = fields.decode().map_err(bad)?;
    let mut times = SliceReader::new(validity.value()).map_err(bad)?;
    let not_before = time(times.decode().map_err(bad)?)?;
    let not_after = time(times.decode().map_err(bad)?)?;
    if now < not_before || now > not_after {
        return Err(format!(
            "the certificate is valid from {not_before} to {not_after}, not now"
        ));
    }
    let spki = spki.to_der().map_err(bad)?;
    RsaPublicKey::from_public_key_der(&spki)
        .map_err(|e| format!("the certificate's key is not an RSA key: {e}"))
}

fn time(any: AnyRef<'_>) -> Result<DateTime<Utc>, String> {
    let since_epoch = match any.tag() {
        Tag::UtcTime => UtcTime::try_from(any).map(|t| t.to_unix_duration()),
        Tag::GeneralizedTime => GeneralizedTime::try_from(any).map(|t| t.to_unix_duration()),
        other => {
            return Err(format!(
                "the certificate's validity has a {other}, not a time"
            ));
        }
    }
    .map_err(|e| format!("the certificate's validity: {e}"))?;
    Utc.timestamp_opt(since_epoch.as_secs() as i64, 0)
        .single()
        .ok_or_else(|| "the certificate's validity is out of range".to_owned())
}

/// The events of an SES notification (the `Message` of an SNS
/// notification): one per bounced or complaining recipient. Deliveries
/// and the other event types give none.
pub fn ses_events(message: &str) -> Result<Vec<Event>, Rejected> {
    let value: Value = serde_json::from_str(message)
        .map_err(|e| malformed(format!("the SNS Message is not SES's JSON: {e}")))?;
    // Identity notifications say notificationType; configuration set
    // event publishing says eventType.
    let Some(kind) = text(&value, "notificationType").or_else(|| text(&value, "eventType")) else {
        return Err(malformed(
            "the SES notification has no notificationType or eventType",
        ));
    };
    let mail = value.get("mail").unwrap_or(&Value::Null);
    let token = text(mail, "source").and_then(token_of_sender);
    let digest_message = mail
        .get("commonHeaders")
        .and_then(|h| text(h, "messageId"))
        .and_then(digest_message_id)
        .or_else(|| {
            mail.get("headers")?
                .as_array()?
                .iter()
                .filter(|h| text(h, "name").is_some_and(|n| n.eq_ignore_ascii_case("message-id")))
                .find_map(|h| digest_message_id(text(h, "value")?))
        });
    let (section, list, of_kind): (&str, &str, Describe) = match kind {
        "Bounce" => ("bounce", "bouncedRecipients", ses_bounce),
        "Complaint" => ("complaint", "complainedRecipients", ses_complaint),
        _ => return Ok(Vec::new()),
    };
    let Some(report) = value.get(section) else {
        return Err(malformed(format!(
            "the SES {kind} notification has no `{section}`"
        )));
    };
    let feedback = text(report, "feedbackId")
        .or_else(|| text(mail, "messageId"))
        .ok_or_else(|| malformed(format!("the SES {kind} has no feedbackId")))?;
    let at = rfc3339(text(report, "timestamp"));
    let recipients = report
        .get(list)
        .and_then(Value::as_array)
        .ok_or_else(|| malformed(format!("the SES {kind} has no `{list}` array")))?;
    let mut events = Vec::new();
    for recipient in recipients {
        let address = text(recipient, "emailAddress").map(str::to_owned);
        let (kind, words) = of_kind(report, recipient);
        events.push(Event {
            identity: format!(
                "ses:{feedback}:{}",
                address.as_deref().unwrap_or_default().to_lowercase()
            ),
            kind,
            recipient: address,
            token: token.clone(),
            digest_message,
            diagnostic: diagnostic(&words),
            at,
        });
    }
    Ok(events)
}

/// The kind and diagnostic of one recipient of an SES bounce or complaint.
type Describe = fn(&Value, &Value) -> (BounceKind, String);

fn ses_bounce(bounce: &Value, recipient: &Value) -> (BounceKind, String) {
    let kind = match text(bounce, "bounceType") {
        Some("Permanent") => BounceKind::Hard,
        _ => BounceKind::Soft,
    };
    let words = text(recipient, "diagnosticCode")
        .or_else(|| text(recipient, "status"))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            format!(
                "{} bounce ({})",
                text(bounce, "bounceType").unwrap_or("Undetermined"),
                text(bounce, "bounceSubType").unwrap_or("General")
            )
        });
    (kind, words)
}

fn ses_complaint(complaint: &Value, _recipient: &Value) -> (BounceKind, String) {
    let words = match text(complaint, "complaintFeedbackType") {
        Some(feedback) => format!("complaint: {feedback}"),
        None => "complaint".to_owned(),
    };
    (BounceKind::Complaint, words)
}

// ---------------------------------------------------------------- Mailgun

/// How old a Mailgun signature may be.
pub const MAILGUN_MAX_AGE_SECONDS: i64 = 15 * 60;

/// A Mailgun webhook: its events and the signature's token (which the
/// caller keeps to refuse it again: a replay).
#[derive(Debug, Clone)]
pub struct Mailgun {
    pub token: String,
    pub events: Vec<Event>,
}

/// Verifies and reads a Mailgun webhook (the JSON form):
/// `signature.signature` must be the hex HMAC-SHA256 of `timestamp +
/// token` under `key`, and `timestamp` within
/// [`MAILGUN_MAX_AGE_SECONDS`] of `now`.
pub fn mailgun(body: &[u8], key: &[u8], now: DateTime<Utc>) -> Result<Mailgun, Rejected> {
    let value = json(body, "Mailgun")?;
    let signature = value
        .get("signature")
        .ok_or_else(|| unauthorized("the Mailgun webhook has no `signature`"))?;
    let (Some(timestamp), Some(token), Some(hex_mac)) = (
        text(signature, "timestamp"),
        text(signature, "token"),
        text(signature, "signature"),
    ) else {
        return Err(unauthorized(
            "the Mailgun signature needs timestamp, token and signature",
        ));
    };
    let mac = hex::decode(hex_mac).map_err(|_| unauthorized("the Mailgun signature is not hex"))?;
    let mut hmac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key");
    hmac.update(timestamp.as_bytes());
    hmac.update(token.as_bytes());
    hmac.verify_slice(&mac)
        .map_err(|_| unauthorized("the Mailgun signature does not verify"))?;
    let signed = timestamp
        .parse::<i64>()
        .map_err(|_| unauthorized("the Mailgun timestamp is not a number"))?;
    if (now.timestamp() - signed).abs() > MAILGUN_MAX_AGE_SECONDS {
        return Err(unauthorized(format!(
            "the Mailgun signature is from {signed}, more than {} minutes from now",
            MAILGUN_MAX_AGE_SECONDS / 60
        )));
    }
    let data = value
        .get("event-data")
        .ok_or_else(|| malformed("the Mailgun webhook has no `event-data`"))?;
    let event =
        text(data, "event").ok_or_else(|| malformed("the Mailgun event-data has no `event`"))?;
    let kind = match (event, text(data, "severity")) {
        ("failed", Some("permanent")) => BounceKind::Hard,
        ("failed", _) => BounceKind::Soft,
        ("complained", _) => BounceKind::Complaint,
        _ => {
            return Ok(Mailgun {
                token: token.to_owned(),
                events: Vec::new(),
            });
        }
    };
    let id = text(data, "id").unwrap_or(token);
    let status = data.get("delivery-status").unwrap_or(&Value::Null);
    let words = [
        status
            .get("code")
            .map(|c| c.to_string())
            .unwrap_or_default(),
        text(status, "message").unwrap_or_default().to_owned(),
        text(status, "description").unwrap_or_default().to_owned(),
        text(data, "reason")
            .map(|r| format!("({r})"))
            .unwrap_or_default(),
    ]
    .join(" ");
    let words = if kind == BounceKind::Complaint {
        "complaint".to_owned()
    } else {
        words
    };
    let message_id = data
        .get("message")
        .and_then(|m| m.get("headers"))
        .and_then(|h| text(h, "message-id"));
    let recipient = text(data, "recipient").map(str::to_owned);
    Ok(Mailgun {
        token: token.to_owned(),
        events: vec![Event {
            identity: format!("mailgun:{id}"),
            kind,
            recipient,
            token: data
                .get("envelope")
                .and_then(|e| text(e, "sender"))
                .and_then(token_of_sender),
            digest_message: message_id.and_then(digest_message_id),
            diagnostic: diagnostic(&words),
            at: unix_seconds(data.get("timestamp")),
        }],
    })
}

// ---------------------------------------------------------------- Postmark

/// Whether an `Authorization: Basic …` header carries `user` and
/// `password` (compared in constant time).
pub fn basic_auth_matches(header: Option<&str>, user: &str, password: &str) -> bool {
    let Some(encoded) = header.and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
    }) else {
        return false;
    };
    let Ok(decoded) = BASE64.decode(encoded) else {
        return false;
    };
    use sha2::Digest as _;
    // Compared as hashes, so that not even the password's length shows.
    let expected = sha2::Sha256::digest(format!("{user}:{password}"));
    bool::from(sha2::Sha256::digest(&decoded).ct_eq(&expected))
}

/// What a Postmark bounce `Type` is, when it says something of the address.
/// The rest (auto-replies, subscribe requests, address changes, Postmark's
/// own API errors, challenge verifications) change nothing.
pub fn postmark_kind(bounce_type: &str) -> Option<BounceKind> {
    match bounce_type {
        "HardBounce" | "BadEmailAddress" | "ManuallyDeactivated" => Some(BounceKind::Hard),
        "Transient" | "SoftBounce" | "DnsError" | "SpamNotification" | "Blocked"
        | "DMARCPolicy" | "Undeliverable" | "VirusNotification" => Some(BounceKind::Soft),
        "SpamComplaint" | "Unsubscribe" => Some(BounceKind::Complaint),
        _ => None,
    }
}

/// Reads a Postmark webhook (authenticated by the caller): a Bounce or a
/// SpamComplaint record; other record types give no event.
pub fn postmark(body: &[u8]) -> Result<Vec<Event>, Rejected> {
    let value = json(body, "Postmark")?;
    let record = text(&value, "RecordType")
        .ok_or_else(|| malformed("the Postmark webhook has no RecordType"))?;
    let bounce_type = match record {
        "Bounce" => {
            text(&value, "Type").ok_or_else(|| malformed("the Postmark bounce has no Type"))?
        }
        "SpamComplaint" => "SpamComplaint",
        _ => return Ok(Vec::new()),
    };
    let Some(kind) = postmark_kind(bounce_type) else {
        return Ok(Vec::new());
    };
    let id = value
        .get("ID")
        .filter(|id| id.is_number() || id.is_string())
        .ok_or_else(|| malformed("the Postmark record has no ID"))?;
    let words = [
        bounce_type,
        text(&value, "Description").unwrap_or_default(),
        text(&value, "Details").unwrap_or_default(),
    ]
    .join(": ");
    Ok(vec![Event {
        identity: format!("postmark:{record}:{id}"),
        kind,
        recipient: text(&value, "Email").map(str::to_owned),
        token: None,
        digest_message: None,
        diagnostic: diagnostic(&words),
        at: rfc3339(text(&value, "BouncedAt")),
    }])
}

// ---------------------------------------------------------------- SendGrid

/// SendGrid's verification key: a P-256 public key.
#[derive(Clone)]
pub struct SendGridKey {
    /// The uncompressed point.
    point: Vec<u8>,
}

impl std::fmt::Debug for SendGridKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SendGridKey(..)")
    }
}

impl SendGridKey {
    /// Reads the key as SendGrid shows it: base64 of a DER
    /// SubjectPublicKeyInfo (a PEM block is taken too).
    pub fn parse(text: &str) -> Result<SendGridKey, String> {
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .join("");
        let der = BASE64
            .decode(body.trim())
            .map_err(|_| "the key is not base64".to_owned())?;
        let spki = rsa::pkcs8::spki::SubjectPublicKeyInfoRef::from_der(&der)
            .map_err(|e| format!("the key is not a DER public key: {e}"))?;
        const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
        const P256: &str = "1.2.840.10045.3.1.7";
        let curve = spki.algorithm.parameters.and_then(|p| {
            p.decode_as::<rsa::pkcs8::der::asn1::ObjectIdentifier>()
                .ok()
        });
        if spki.algorithm.oid.to_string() != EC_PUBLIC_KEY
            || curve.map(|c| c.to_string()).as_deref() != Some(P256)
        {
            return Err("the key is not an ECDSA P-256 public key".to_owned());
        }
        let point = spki.subject_public_key.raw_bytes();
        if point.len() != 65 || point[0] != 4 {
            return Err("the key's point is not an uncompressed P-256 point".to_owned());
        }
        Ok(SendGridKey {
            point: point.to_vec(),
        })
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            &self.point,
        )
        .verify(message, signature)
        .is_ok()
    }
}

/// Verifies and reads SendGrid's signed event webhook: `signature` (the
/// `X-Twilio-Email-Event-Webhook-Signature` header, base64 DER ECDSA) over
/// `timestamp` (`X-Twilio-Email-Event-Webhook-Timestamp`) followed by the
/// body. Events that say nothing of the address give none.
pub fn sendgrid(
    body: &[u8],
    signature: Option<&str>,
    timestamp: Option<&str>,
    key: &SendGridKey,
) -> Result<Vec<Event>, Rejected> {
    let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
        return Err(unauthorized(
            "the SendGrid webhook is not signed (turn on signature verification)",
        ));
    };
    let signature = BASE64
        .decode(signature.trim())
        .map_err(|_| unauthorized("the SendGrid signature is not base64"))?;
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(body);
    if !key.verify(&signed, &signature) {
        return Err(unauthorized("the SendGrid signature does not verify"));
    }
    let value = json(body, "SendGrid")?;
    let list = value
        .as_array()
        .ok_or_else(|| malformed("the SendGrid webhook is not a JSON array of events"))?;
    let mut events = Vec::new();
    for (n, item) in list.iter().enumerate() {
        let event = text(item, "event")
            .ok_or_else(|| malformed(format!("SendGrid event {n} has no `event`")))?;
        let reason = text(item, "reason")
            .or_else(|| text(item, "response"))
            .unwrap_or_default();
        let kind = match event {
            "bounce" if text(item, "type") == Some("blocked") => BounceKind::Soft,
            "bounce" => BounceKind::Hard,
            "blocked" | "deferred" => BounceKind::Soft,
            "dropped" if reason == "Bounced Address" => BounceKind::Hard,
            "dropped" if reason == "Spam Reporting Address" => BounceKind::Complaint,
            "spamreport" => BounceKind::Complaint,
            _ => continue,
        };
        let identity = match text(item, "sg_event_id") {
            Some(id) => format!("sendgrid:{id}"),
            None => {
                use sha2::Digest as _;
                let canonical = serde_json::to_vec(item).unwrap_or_default();
                format!(
                    "sendgrid:sha256:{}",
                    hex::encode(sha2::Sha256::digest(canonical))
                )
            }
        };
        let words = match (event, text(item, "status")) {
            ("spamreport", _) => "complaint (spam report)".to_owned(),
            (_, Some(status)) => format!("{event}: {status} {reason}"),
            _ => format!("{event}: {reason}"),
        };
        events.push(Event {
            identity,
            kind,
            recipient: text(item, "email").map(str::to_owned),
            token: None,
            digest_message: text(item, "smtp-id").and_then(digest_message_id),
            diagnostic: diagnostic(&words),
            at: unix_seconds(item.get("timestamp")),
        });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_patterns_take_one_label_per_star_and_the_default_port() {
        let sns = UrlPattern::parse(SNS_URL_PATTERN).unwrap();
        let ok = |u: &str| sns.matches(&Url::parse(u).unwrap());
        assert!(ok(
            "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem"
        ));
        assert!(!ok("http://sns.eu-west-1.amazonaws.com/x.pem"));
        assert!(!ok("https://sns.eu-west-1.amazonaws.com:8443/x.pem"));
        assert!(!ok("https://sns.evil.example.amazonaws.com/x.pem"));
        assert!(!ok("https://sns.eu-west-1.amazonaws.com.evil.org/x.pem"));
        assert!(!ok("https://user@sns.eu-west-1.amazonaws.com/x.pem"));
        let local = UrlPattern::parse("http://127.0.0.1:*").unwrap();
        assert!(local.matches(&Url::parse("http://127.0.0.1:4321/c.pem").unwrap()));
        assert!(UrlPattern::parse("ftp://x").is_err());
        assert!(UrlPattern::parse("sns.*.amazonaws.com").is_err());
    }

    #[test]
    fn digest_message_ids_and_verp_senders_are_read() {
        assert_eq!(
            digest_message_id("<e12.s34.monthly@example.org>"),
            Some((12, 34))
        );
        assert_eq!(digest_message_id("e1.s2.x@h"), Some((1, 2)));
        assert_eq!(digest_message_id("<abc@example.org>"), None);
        assert_eq!(digest_message_id("<e1.s2@example.org>"), None);
        let token = token_of_sender("bounces+7-42-1-u5c7nq3sz6iuwwne@example.org").unwrap();
        assert_eq!((token.edition_id, token.subscriber_id), (7, 42));
        assert!(token_of_sender("news@example.org").is_none());
    }

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/webhooks/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn ses_notifications_give_one_event_per_recipient() {
        let bounce = fixture("ses-bounce.json");
        let events = ses_events(&bounce).unwrap();
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.kind, BounceKind::Hard);
        assert_eq!(event.recipient.as_deref(), Some("anna@example.se"));
        assert_eq!(event.digest_message, Some((7, 42)));
        let token = event.token.as_ref().unwrap();
        assert_eq!((token.edition_id, token.subscriber_id), (7, 42));
        assert!(
            event.diagnostic.contains("User unknown"),
            "{}",
            event.diagnostic
        );
        assert!(event.identity.starts_with("ses:0102017a7d6f3a38-"));
        let transient = ses_events(&bounce.replace("Permanent", "Transient")).unwrap();
        assert_eq!(transient[0].kind, BounceKind::Soft);
        let complaint = ses_events(&fixture("ses-complaint.json")).unwrap();
        assert_eq!(complaint[0].kind, BounceKind::Complaint);
        assert_eq!(complaint[0].diagnostic, "complaint: abuse");
        let delivery = r#"{"notificationType":"Delivery","mail":{},"delivery":{}}"#;
        assert!(ses_events(delivery).unwrap().is_empty());
        assert!(matches!(ses_events("{}"), Err(Rejected::Malformed(_))));
    }

    #[test]
    fn the_test_certificate_gives_its_key_and_unsigned_sns_messages_are_unauthorized() {
        let key = certificate_key(fixture("sns-test-cert.pem").as_bytes(), Utc::now());
        assert!(key.is_ok(), "{key:?}");
        let expired = certificate_key(
            fixture("sns-test-cert.pem").as_bytes(),
            Utc::now() + chrono::Duration::days(365 * 200),
        );
        assert!(expired.unwrap_err().contains("not now"));
        assert!(
            certificate_key(
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                Utc::now()
            )
            .is_err()
        );
        let unsigned =
            fixture("sns-notification.json").replace("\"Signature\": \"SIGNATURE\",", "");
        assert!(matches!(
            SnsMessage::parse(unsigned.as_bytes()),
            Err(Rejected::Unauthorized(_))
        ));
    }

    #[test]
    fn postmark_types_map_to_kinds() {
        assert_eq!(postmark_kind("HardBounce"), Some(BounceKind::Hard));
        assert_eq!(postmark_kind("SoftBounce"), Some(BounceKind::Soft));
        assert_eq!(postmark_kind("SpamComplaint"), Some(BounceKind::Complaint));
        assert_eq!(postmark_kind("AutoResponder"), None);
    }

    #[test]
    fn basic_auth_is_checked() {
        let header = format!("Basic {}", BASE64.encode("tidings:pw"));
        assert!(basic_auth_matches(Some(&header), "tidings", "pw"));
        assert!(!basic_auth_matches(Some(&header), "tidings", "pw2"));
        assert!(!basic_auth_matches(None, "tidings", "pw"));
        assert!(!basic_auth_matches(Some("Bearer x"), "tidings", "pw"));
    }
}
