//! One digest email as a MIME message: its headers (the list headers of
//! RFC 2369, 2919 and 8058 among them), the multipart/alternative body
//! with the text part before the HTML part, and the DKIM signature.
//!
//! Every header value that comes from data is checked here: one holding a
//! CR, LF or other control character is refused with an error, never
//! cleaned up or passed on, so no data can add a header of its own.
//! lettre has no types for the `List-*` headers; [`ListId`],
//! [`ListUnsubscribe`] and [`ListUnsubscribePost`] are ours.

use std::borrow::Cow;
use std::time::SystemTime;

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use base64::Engine as _;
use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{
    ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue,
};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};

use rsa::RsaPrivateKey;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::der::asn1::OctetStringRef;
use rsa::pkcs8::der::{Decode, pem};
use rsa::pkcs8::{DecodePrivateKey, ObjectIdentifier, PrivateKeyInfo};

use super::rendered::Rendered;
use crate::config::Dkim;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Who a message goes to and the headers that are not its content.
pub struct Envelope<'a> {
    pub from: &'a Mailbox,
    pub reply_to: Option<&'a Mailbox>,
    /// An address already validated by `SubscriberEmail`.
    pub to: &'a str,
    /// Without angle brackets: `e12.s345.monthly@goda-exempel.example.org`.
    pub message_id: String,
    /// RFC 2919: `Goda exempel – månadsbrev <monthly.goda-exempel.example.org>`.
    pub list_id: String,
    /// The one-click unsubscribe link (https; http is accepted for local
    /// sites, though mailbox providers only honour https).
    pub unsubscribe_url: String,
    /// `mailto:unsubscribe@…?subject=unsubscribe%20…`, when there is one.
    pub unsubscribe_mailto: Option<String>,
    pub date: chrono::DateTime<chrono::Utc>,
    /// The SMTP envelope sender (`MAIL FROM`) when it is not the From
    /// address: the VERP address of `[bounces] return_path`. It is no
    /// header: the receiving server writes `Return-Path` from it.
    pub return_path: Option<lettre::Address>,
}

/// Builds the message, signed when `dkim` is given. The key file is read
/// for each call; a sender of many messages loads a [`DkimSigner`] once
/// and calls [`build_signed`].
pub fn build(envelope: &Envelope, rendered: &Rendered, dkim: Option<&Dkim>) -> Result<Message> {
    let signer = dkim.map(DkimSigner::load).transpose()?;
    build_signed(envelope, rendered, signer.as_ref())
}

/// [`build`] with a key loaded beforehand.
pub fn build_signed(
    envelope: &Envelope,
    rendered: &Rendered,
    signer: Option<&DkimSigner>,
) -> Result<Message> {
    build_encoded(envelope, Encoded::encode(rendered), signer)
}

/// [`build_signed`] with the parts already encoded.
pub fn build_encoded(
    envelope: &Envelope,
    encoded: Encoded,
    signer: Option<&DkimSigner>,
) -> Result<Message> {
    let list_id = ListId::new(&envelope.list_id)?;
    let unsubscribe = ListUnsubscribe::new(
        &envelope.unsubscribe_url,
        envelope.unsubscribe_mailto.as_deref(),
    )?;
    let notice = Notice {
        from: envelope.from,
        reply_to: envelope.reply_to,
        to: envelope.to,
        message_id: envelope.message_id.clone(),
        date: envelope.date,
    };
    let mut builder = headers(&notice, &encoded.subject)?
        .header(list_id)
        .header(unsubscribe)
        .header(ListUnsubscribePost);
    if let Some(return_path) = &envelope.return_path {
        let to: lettre::Address = envelope
            .to
            .parse()
            .map_err(|e| anyhow!("`{}` is not an email address: {e}", envelope.to))?;
        let smtp = lettre::address::Envelope::new(Some(return_path.clone()), vec![to])
            .context("cannot make the SMTP envelope")?;
        builder = builder.envelope(smtp);
    }
    finish(&notice, builder, encoded, signer)
}

/// A message to one person that is not part of a list (a confirmation
/// request): no List-* headers.
pub struct Notice<'a> {
    pub from: &'a Mailbox,
    pub reply_to: Option<&'a Mailbox>,
    pub to: &'a str,
    /// Without angle brackets.
    pub message_id: String,
    pub date: chrono::DateTime<chrono::Utc>,
}

/// Builds a [`Notice`], signed when `signer` is given.
pub fn build_notice(
    notice: &Notice,
    rendered: &Rendered,
    signer: Option<&DkimSigner>,
) -> Result<Message> {
    let builder = headers(notice, &rendered.subject)?;
    finish(notice, builder, Encoded::encode(rendered), signer)
}

/// The headers every message has, each checked for line breaks.
fn headers(n: &Notice, subject: &str) -> Result<lettre::message::MessageBuilder> {
    for mailbox in [Some(n.from), n.reply_to].into_iter().flatten() {
        if let Some(name) = &mailbox.name {
            one_line("From or Reply-To", name)?;
        }
    }
    let to: Mailbox = one_line("To", n.to)?
        .parse()
        .map_err(|e| anyhow!("`{}` is not an email address: {e}", n.to))?;
    let subject = one_line("Subject", subject)?;
    let message_id = message_id(&n.message_id)?;
    let mut builder = Message::builder().from(n.from.clone()).to(to);
    if let Some(reply_to) = n.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    Ok(builder
        .subject(subject)
        .date(SystemTime::from(n.date))
        .message_id(Some(format!("<{message_id}>"))))
}

/// The text and HTML parts as multipart/alternative, then the signature.
fn finish(
    n: &Notice,
    builder: lettre::message::MessageBuilder,
    encoded: Encoded,
    signer: Option<&DkimSigner>,
) -> Result<Message> {
    let part = |kind: ContentType, body: Vec<u8>| {
        SinglePart::builder()
            .header(kind)
            .body(Body::dangerous_pre_encoded(
                body,
                ContentTransferEncoding::QuotedPrintable,
            ))
    };
    let body = MultiPart::alternative()
        .boundary(boundary(&n.message_id, &encoded.fingerprint))
        .singlepart(part(ContentType::TEXT_PLAIN, encoded.text))
        .singlepart(part(ContentType::TEXT_HTML, encoded.html));
    let mut message = builder
        .multipart(body)
        .with_context(|| format!("cannot build the message to {}", n.to))?;
    if let Some(signer) = signer {
        message.sign(&signer.config);
    }
    Ok(message)
}

/// The message as it goes over SMTP or into an `.eml` file.
pub fn to_bytes(message: &Message) -> Vec<u8> {
    message.formatted()
}

/// `value` unchanged, or an error naming `header` when it holds a control
/// character (CR and LF among them) and so could start a header of its own.
fn one_line<'v>(header: &str, value: &'v str) -> Result<&'v str> {
    ensure!(
        !value.chars().any(char::is_control),
        "the {header} header would hold a line break or control character ({value:?}); \
         refusing to build the message"
    );
    Ok(value)
}

/// A boundary derived from the Message-ID and the content rather than
/// random, so that the same message is the same bytes. It starts with
/// `=_`, which quoted-printable text never holds, so it cannot occur in
/// either part.
fn boundary(message_id: &str, fingerprint: &[u8; 32]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update((message_id.len() as u64).to_le_bytes());
    h.update(message_id.as_bytes());
    h.update(fingerprint);
    format!("=_tidings_{}", hex::encode(&h.finalize()[..16]))
}

/// A message's text and HTML parts, quoted-printable encoded (RFC 2045,
/// section 6.7) with CRLF line ends, as they go into the MIME body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// One line: no CR, LF or other control characters.
    pub subject: String,
    pub text: Vec<u8>,
    pub html: Vec<u8>,
    /// A digest of the content; with the Message-ID it makes the boundary.
    pub fingerprint: [u8; 32],
}

impl Encoded {
    /// Encodes both parts of `rendered`.
    pub fn encode(rendered: &Rendered) -> Encoded {
        let text = quoted_printable::encode(crlf(&rendered.text).as_bytes());
        let html = quoted_printable::encode(crlf(&rendered.html).as_bytes());
        Encoded {
            subject: rendered.subject.clone(),
            fingerprint: fingerprint(&[&text, &html]),
            text,
            html,
        }
    }
}

/// A SHA-256 of `parts`, each with its length.
pub fn fingerprint(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// `s` with every line ending in CRLF, as MIME text wants it.
pub fn crlf(s: &str) -> Cow<'_, str> {
    let bare = s
        .match_indices('\n')
        .any(|(at, _)| at == 0 || s.as_bytes()[at - 1] != b'\r');
    if !bare {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(s.len() + s.len() / 32);
    let mut from = 0;
    for (at, _) in s.match_indices('\n') {
        if at == 0 || bytes[at - 1] != b'\r' {
            out.extend_from_slice(&bytes[from..at]);
            out.push(b'\r');
            from = at;
        }
    }
    out.extend_from_slice(&bytes[from..]);
    // Only ASCII CRs were added, each before an LF.
    let out = String::from_utf8(out).expect("still UTF-8");
    Cow::Owned(out)
}

/// Characters RFC 5322 allows in a dot-atom, besides letters and digits.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

fn is_dot_atom(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
        && s.chars().all(|c| c == '.' || is_atext(c))
}

/// A Message-ID no other message has: `<kind>.<32 hex digits>@<host>`,
/// the digits from 16 random bytes. For every message that is not one
/// delivery of a digest edition (confirmations, test sends): two made in
/// the same second for the same person must still differ, or mail clients
/// treat the second as a copy of the first and a `file:` outbox would hold
/// one where two were sent.
pub fn unique_message_id(kind: &str, host: &str) -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    format!("{kind}.{}@{host}", hex::encode(bytes))
}

/// A Message-ID without its angle brackets: `left@right`, both dot-atoms.
fn message_id(id: &str) -> Result<&str> {
    one_line("Message-ID", id)?;
    match id.split_once('@') {
        Some((left, right)) if is_dot_atom(left) && is_dot_atom(right) => Ok(id),
        _ => bail!(
            "`{id}` is not a Message-ID: expected `unique-part@domain` without angle brackets"
        ),
    }
}

/// `List-Id` (RFC 2919): an optional description, then `<label.namespace>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListId(String);

impl ListId {
    pub fn new(value: &str) -> Result<ListId> {
        one_line("List-Id", value)?;
        let ok = value
            .strip_suffix('>')
            .and_then(|v| v.rsplit_once('<'))
            .is_some_and(|(phrase, id)| {
                !phrase.contains(['<', '>']) && is_dot_atom(id) && id.contains('.')
            });
        ensure!(
            ok,
            "`{value}` is not a List-Id: expected `Description <list-label.example.org>`"
        );
        Ok(ListId(value.trim().to_owned()))
    }
}

impl Header for ListId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Id")
    }
    fn parse(s: &str) -> Result<Self, BoxError> {
        Ok(ListId::new(s)?)
    }
    fn display(&self) -> HeaderValue {
        // Non-ASCII words of the description are RFC 2047-encoded by lettre.
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe` (RFC 2369): `<https://…>` and, when given,
/// `<mailto:…>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUnsubscribe {
    url: String,
    mailto: Option<String>,
}

impl ListUnsubscribe {
    pub fn new(url: &str, mailto: Option<&str>) -> Result<ListUnsubscribe> {
        check_list_uri("List-Unsubscribe", url)?;
        let parsed = url::Url::parse(url)
            .map_err(|e| anyhow!("the unsubscribe link `{url}` is not a URL: {e}"))?;
        ensure!(
            matches!(parsed.scheme(), "https" | "http") && parsed.host_str().is_some(),
            "the unsubscribe link `{url}` is not an https link"
        );
        if let Some(mailto) = mailto {
            check_list_uri("List-Unsubscribe", mailto)?;
            ensure!(
                mailto.len() > 7 && mailto[..7].eq_ignore_ascii_case("mailto:"),
                "`{mailto}` is not a mailto: link"
            );
        }
        Ok(ListUnsubscribe {
            url: url.to_owned(),
            mailto: mailto.map(str::to_owned),
        })
    }
}

/// A URI that goes between angle brackets in a comma-separated list: no
/// control characters, white space, brackets or commas.
fn check_list_uri(header: &str, uri: &str) -> Result<()> {
    one_line(header, uri)?;
    ensure!(
        !uri.is_empty() && !uri.contains(|c: char| c.is_whitespace() || "<>,\"".contains(c)),
        "`{uri}` cannot go in the {header} header: it holds white space, `<`, `>`, `\"` or `,`"
    );
    Ok(())
}

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, BoxError> {
        let mut url = None;
        let mut mailto = None;
        for item in s.split(',') {
            let uri = item
                .trim()
                .strip_prefix('<')
                .and_then(|i| i.strip_suffix('>'))
                .ok_or("List-Unsubscribe: expected <uri>, <uri>")?;
            if uri.len() > 7 && uri[..7].eq_ignore_ascii_case("mailto:") {
                mailto = Some(uri);
            } else {
                url = Some(uri);
            }
        }
        let url = url.ok_or("List-Unsubscribe: no https link")?;
        Ok(ListUnsubscribe::new(url, mailto)?)
    }
    fn display(&self) -> HeaderValue {
        let mut value = format!("<{}>", self.url);
        if let Some(mailto) = &self.mailto {
            value.push_str(&format!(", <{mailto}>"));
        }
        HeaderValue::new(Self::name(), value)
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058): a POST
/// to the https link unsubscribes without a further page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListUnsubscribePost;

const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(s: &str) -> Result<Self, BoxError> {
        if s.trim() == ONE_CLICK {
            Ok(ListUnsubscribePost)
        } else {
            Err(format!("List-Unsubscribe-Post: expected `{ONE_CLICK}`").into())
        }
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), ONE_CLICK.to_owned())
    }
}

/// The headers the DKIM signature covers. RFC 8058 requires the two
/// unsubscribe headers to be signed. Reply-To is listed even when absent,
/// so that one cannot be added without breaking the signature.
/// Content-Type is left out: lettre keeps a multipart's Content-Type with
/// the body, not among the headers it signs, so listing it would make
/// every signature fail to verify.
const SIGNED_HEADERS: &[&str] = &[
    "From",
    "Reply-To",
    "Subject",
    "To",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// A DKIM key, read and parsed once.
pub struct DkimSigner {
    config: DkimConfig,
}

impl std::fmt::Debug for DkimSigner {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DkimSigner { .. }")
    }
}

impl DkimSigner {
    /// Reads the PEM key of `[mail] dkim`: RSA (PKCS#1 `RSA PRIVATE KEY` or
    /// PKCS#8 `PRIVATE KEY`, as `openssl genrsa` writes) or Ed25519 (PKCS#8,
    /// as `openssl genpkey -algorithm ed25519` writes). Errors name the file
    /// and never show the key.
    pub fn load(dkim: &Dkim) -> Result<DkimSigner> {
        let path = &dkim.key_file;
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow!("cannot read the DKIM key {}: {}", path.display(), e.kind()))?;
        let key = signing_key(&text)
            .with_context(|| format!("the DKIM key {} cannot be used", path.display()))?;
        let headers = SIGNED_HEADERS
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect();
        Ok(DkimSigner {
            config: DkimConfig::new(
                dkim.selector.clone(),
                dkim.domain.clone(),
                key,
                headers,
                // Relaxed survives relays that refold headers or change
                // trailing white space.
                DkimCanonicalization {
                    header: DkimCanonicalizationType::Relaxed,
                    body: DkimCanonicalizationType::Relaxed,
                },
            ),
        })
    }
}

/// The key in `text`. lettre takes RSA keys as PKCS#1 PEM and Ed25519 keys
/// as the base64 of their 32-byte seed; the RustCrypto crates (`rsa`, its
/// `pkcs1`, `pkcs8` and `der`) read the PEM and DER around them.
fn signing_key(text: &str) -> Result<DkimSigningKey> {
    let signing_error = |e: lettre::message::dkim::DkimSigningKeyError| anyhow!("{e}");
    let text = text.trim();
    let Some(start) = text.find("-----BEGIN ") else {
        // The bare base64 form of an Ed25519 key, as DKIM tools print it.
        let raw = base64::engine::general_purpose::STANDARD.decode(text);
        if raw.is_ok_and(|r| r.len() == 32) {
            return DkimSigningKey::new(text, DkimSigningAlgorithm::Ed25519).map_err(signing_error);
        }
        bail!("it is not a PEM private key (expected -----BEGIN PRIVATE KEY-----)");
    };
    // The first PEM block (a file may hold parameters or a certificate too).
    let block = &text[start..];
    let label_end = block["-----BEGIN ".len()..]
        .find("-----")
        .map(|i| i + "-----BEGIN ".len())
        .context("it is not a PEM private key")?;
    let label = &block["-----BEGIN ".len()..label_end];
    let end_marker = format!("-----END {label}-----");
    let end = block
        .find(&end_marker)
        .context("its PEM block has no END line")?
        + end_marker.len();
    let block = &block[..end];
    if label == "ENCRYPTED PRIVATE KEY" || block.contains("Proc-Type:") {
        bail!("it is encrypted; store it unencrypted (and readable only by tidings)");
    }
    let (label, der) = pem::decode_vec(block.as_bytes())
        .map_err(|e| anyhow!("its PEM block cannot be read: {e}"))?;
    match label {
        "RSA PRIVATE KEY" => rsa_key(
            RsaPrivateKey::from_pkcs1_der(&der).map_err(|e| anyhow!("its RSA key is bad: {e}"))?,
        ),
        "PRIVATE KEY" => {
            let info = PrivateKeyInfo::from_der(&der)
                .map_err(|e| anyhow!("its PKCS#8 structure is bad: {e}"))?;
            if info.algorithm.oid == rsa::pkcs1::ALGORITHM_OID {
                rsa_key(
                    RsaPrivateKey::from_pkcs8_der(&der)
                        .map_err(|e| anyhow!("its RSA key is bad: {e}"))?,
                )
            } else if info.algorithm.oid == ED25519 {
                // RFC 8410: the key is an OCTET STRING of the 32-byte seed.
                let seed = OctetStringRef::from_der(info.private_key)
                    .ok()
                    .map(|s| s.as_bytes())
                    .filter(|s| s.len() == 32)
                    .context("its Ed25519 key is not 32 bytes")?;
                let b64 = base64::engine::general_purpose::STANDARD.encode(seed);
                DkimSigningKey::new(&b64, DkimSigningAlgorithm::Ed25519).map_err(signing_error)
            } else {
                bail!("it is neither an RSA nor an Ed25519 key")
            }
        }
        other => bail!("it holds a `{other}`: expected an RSA or Ed25519 private key"),
    }
}

/// The Ed25519 algorithm (RFC 8410).
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// An RSA key as lettre takes it: PKCS#1 PEM.
fn rsa_key(key: RsaPrivateKey) -> Result<DkimSigningKey> {
    let pem = key
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| anyhow!("its RSA key cannot be written as PKCS#1: {e}"))?;
    DkimSigningKey::new(&pem, DkimSigningAlgorithm::Rsa).map_err(|e| anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use chrono::TimeZone;
    use mail_parser::{MessageParser, MimeHeaders, PartType};

    use super::*;
    use crate::digest::render::{Templates, render};
    use crate::fixtures::{email, site, stories};

    fn rendered(period: &str) -> Rendered {
        let site = site("");
        let stories = stories();
        let templates = Templates::load(&site.config).unwrap();
        render(&templates, &email(&site.config, &stories, "sv", period)).unwrap()
    }

    /// A header value as one line with single spaces.
    fn unfold(value: &str) -> String {
        value.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn from() -> Mailbox {
        "Goda exempel <nyhetsbrev@goda-exempel.example.org>"
            .parse()
            .unwrap()
    }

    fn envelope<'a>(from: &'a Mailbox, reply_to: Option<&'a Mailbox>) -> Envelope<'a> {
        Envelope {
            from,
            reply_to,
            to: "anna@example.se",
            message_id: "e12.s345.monthly@goda-exempel.example.org".into(),
            list_id: "Goda exempel – månadsbrev <monthly.goda-exempel.example.org>".into(),
            unsubscribe_url: "https://goda-exempel.example.org/unsubscribe/abc.def".into(),
            unsubscribe_mailto: Some(
                "mailto:unsubscribe@goda-exempel.example.org?subject=unsubscribe%20abc".into(),
            ),
            date: chrono::Utc.with_ymd_and_hms(2024, 4, 1, 6, 0, 0).unwrap(),
            return_path: None,
        }
    }

    #[test]
    fn the_message_has_list_headers_and_two_utf8_parts() {
        let from = from();
        let reply_to: Mailbox = "redaktion@goda-exempel.example.org".parse().unwrap();
        let rendered = rendered("mars 2024");
        let message = build(&envelope(&from, Some(&reply_to)), &rendered, None).unwrap();
        let bytes = to_bytes(&message);
        let raw = String::from_utf8(bytes.clone()).unwrap();
        for line in raw.split("\r\n") {
            assert!(line.len() <= 998, "line of {} bytes", line.len());
        }
        let parsed = MessageParser::default().parse(&bytes).unwrap();

        let from = parsed.from().unwrap().first().unwrap();
        assert_eq!(from.name(), Some("Goda exempel"));
        assert_eq!(from.address(), Some("nyhetsbrev@goda-exempel.example.org"));
        assert_eq!(
            parsed.to().unwrap().first().unwrap().address(),
            Some("anna@example.se")
        );
        assert_eq!(
            parsed.reply_to().unwrap().first().unwrap().address(),
            Some("redaktion@goda-exempel.example.org")
        );
        assert_eq!(
            parsed.subject(),
            Some("Hållbar stad i Windhoek | Goda exempel – månadsbrev mars 2024")
        );
        assert_eq!(parsed.date().unwrap().to_timestamp(), 1_711_951_200);
        assert_eq!(
            parsed.message_id(),
            Some("e12.s345.monthly@goda-exempel.example.org")
        );
        assert!(raw.contains("\r\nMessage-ID: <e12.s345.monthly@goda-exempel.example.org>\r\n"));
        assert!(raw.contains("\r\nMIME-Version: 1.0\r\n"));
        // "– månadsbrev" is RFC 2047-encoded; lettre may fold the line.
        assert_eq!(
            unfold(parsed.header_raw("List-Id").unwrap()),
            "Goda exempel =?utf-8?b?4oCTIG3DpW5hZHNicmV2?= <monthly.goda-exempel.example.org>"
        );
        let list = parsed.list_id().as_address().unwrap().first().unwrap();
        assert_eq!(list.name(), Some("Goda exempel – månadsbrev"));
        assert_eq!(list.address(), Some("monthly.goda-exempel.example.org"));
        assert_eq!(
            unfold(parsed.header_raw("List-Unsubscribe").unwrap()),
            "<https://goda-exempel.example.org/unsubscribe/abc.def>, \
             <mailto:unsubscribe@goda-exempel.example.org?subject=unsubscribe%20abc>"
        );
        assert_eq!(
            parsed.header_raw("List-Unsubscribe-Post").map(str::trim),
            Some("List-Unsubscribe=One-Click")
        );

        let root = parsed.root_part();
        assert_eq!(root.content_type().unwrap().c_type, "multipart");
        assert_eq!(root.content_type().unwrap().subtype(), Some("alternative"));
        let leaves: Vec<_> = parsed
            .parts
            .iter()
            .filter(|p| !matches!(p.body, PartType::Multipart(_)))
            .collect();
        assert_eq!(leaves.len(), 2);
        for (part, subtype) in leaves.iter().zip(["plain", "html"]) {
            let ct = part.content_type().unwrap();
            assert_eq!((ct.ctype(), ct.subtype()), ("text", Some(subtype)));
            assert_eq!(
                ct.attribute("charset").map(str::to_lowercase).as_deref(),
                Some("utf-8")
            );
        }
        let text = parsed.body_text(0).unwrap();
        let html = parsed.body_html(0).unwrap();
        assert_eq!(text.replace("\r\n", "\n"), rendered.text);
        assert!(html.contains("Växjö och An Giang vässar demokratin"));
        assert!(html.contains(r#"href="https://goda-exempel.example.org/hallbar-stad/""#));
        assert!(!html.to_lowercase().contains("<script"));
        assert!(html.contains("max-width: 600px") || html.contains(r#"width="600""#));
        assert!(html.contains(" style=\""));
        assert!(html.contains("@media (prefers-color-scheme: dark)"));
        for url in [
            "https://goda-exempel.example.org/vaxjo-an-giang/",
            "https://goda-exempel.example.org/tom-och-jerry/",
            "https://goda-exempel.example.org/hallbar-stad/",
        ] {
            assert!(text.lines().any(|l| l == url), "{url}");
        }
    }

    #[test]
    fn a_return_path_is_the_smtp_sender_and_no_header() {
        let from: Mailbox = "News <news@example.org>".parse().unwrap();
        let rendered = Rendered {
            subject: "S".into(),
            html: "<p>h</p>".into(),
            text: "t".into(),
        };
        let plain = build(&envelope(&from, None), &rendered, None).unwrap();
        assert_eq!(
            plain.envelope().from().unwrap().to_string(),
            "news@example.org"
        );
        let mut e = envelope(&from, None);
        e.return_path = Some(
            "bounces+1-2-1-aaaaaaaaaaaaaaaa@example.org"
                .parse()
                .unwrap(),
        );
        let verp = build(&e, &rendered, None).unwrap();
        assert_eq!(
            verp.envelope().from().unwrap().to_string(),
            "bounces+1-2-1-aaaaaaaaaaaaaaaa@example.org"
        );
        assert_eq!(verp.envelope().to()[0].to_string(), "anna@example.se");
        let bytes = String::from_utf8(to_bytes(&verp)).unwrap();
        assert!(
            !bytes.contains("Return-Path") && !bytes.contains("bounces+"),
            "{bytes}"
        );
    }

    #[test]
    fn the_same_envelope_gives_the_same_bytes() {
        let from = from();
        let rendered = rendered("mars 2024");
        let a = to_bytes(&build(&envelope(&from, None), &rendered, None).unwrap());
        let b = to_bytes(&build(&envelope(&from, None), &rendered, None).unwrap());
        assert_eq!(a, b);
        let raw = String::from_utf8(a).unwrap();
        assert!(!raw.contains("Reply-To"));
        // Without a mailto the header holds the https link alone.
        let mut e = envelope(&from, None);
        e.unsubscribe_mailto = None;
        let raw = String::from_utf8(to_bytes(&build(&e, &rendered, None).unwrap())).unwrap();
        assert!(raw.contains(
            "\r\nList-Unsubscribe: <https://goda-exempel.example.org/unsubscribe/abc.def>\r\n"
        ));
    }

    #[test]
    fn an_injected_subject_stays_one_header() {
        let from = from();
        let rendered = rendered("mars 2024\r\nBcc: x@evil.example");
        let bytes = to_bytes(&build(&envelope(&from, None), &rendered, None).unwrap());
        let parsed = MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(
            parsed.subject(),
            Some(
                "Hållbar stad i Windhoek | Goda exempel – månadsbrev mars 2024 Bcc: x@evil.example"
            )
        );
        assert!(parsed.bcc().is_none());
        assert!(parsed.header_raw("Bcc").is_none());
    }

    #[test]
    fn header_values_with_line_breaks_are_refused() {
        let from = from();
        let rendered = rendered("mars 2024");
        let refused = |change: &dyn Fn(&mut Envelope)| {
            let mut e = envelope(&from, None);
            change(&mut e);
            build(&e, &rendered, None)
                .expect_err("must be refused")
                .to_string()
        };
        let err = refused(&|e| e.to = "anna@example.se\r\nBcc: x@evil.example");
        assert!(err.contains("To header"), "{err}");
        let err = refused(&|e| e.list_id.push_str("\nBcc: x@evil.example"));
        assert!(err.contains("List-Id"), "{err}");
        let err = refused(&|e| e.unsubscribe_url.push_str("\r\nBcc: x@evil.example"));
        assert!(err.contains("List-Unsubscribe"), "{err}");
        let err = refused(&|e| e.unsubscribe_mailto = Some("mailto:a@b.org\n".into()));
        assert!(err.contains("List-Unsubscribe"), "{err}");
        let err = refused(&|e| e.message_id = "a@b.org>\r\nBcc: <x".into());
        assert!(err.contains("Message-ID"), "{err}");
        // Not control characters, but not what these headers take either.
        assert!(
            build(
                &{
                    let mut e = envelope(&from, None);
                    e.unsubscribe_url = "javascript:alert(1)".into();
                    e
                },
                &rendered,
                None
            )
            .is_err()
        );
        assert!(ListId::new("no brackets").is_err());
        assert!(ListId::new("Name <nodot>").is_err());
        assert!(message_id("<a@b>").is_err());

        let mut bad = rendered.clone();
        bad.subject = "Hi\r\nBcc: x@evil.example".into();
        let err = build(&envelope(&from, None), &bad, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Subject"), "{err}");
    }

    #[test]
    fn list_headers_parse_back() {
        let h = ListUnsubscribe::new("https://x.org/u/1", Some("mailto:u@x.org")).unwrap();
        let value = h.display();
        let mut headers = lettre::message::header::Headers::new();
        headers.insert_raw(value);
        assert_eq!(headers.get::<ListUnsubscribe>(), Some(h));
        assert!(ListUnsubscribePost::parse("List-Unsubscribe=One-Click").is_ok());
        assert!(ListId::parse("x\r\ny <a.b>").is_err());
    }

    fn dkim_headers(key_file: &std::path::Path) -> String {
        let from = from();
        let rendered = rendered("mars 2024");
        let dkim = Dkim {
            domain: "goda-exempel.example.org".into(),
            selector: "tidings".into(),
            key_file: key_file.to_owned(),
        };
        let message = build(&envelope(&from, None), &rendered, Some(&dkim)).unwrap();
        let bytes = to_bytes(&message);
        let parsed = MessageParser::default().parse(&bytes).unwrap();
        let signature = parsed.header_raw("DKIM-Signature").expect("signed");
        unfold(signature).replace(' ', "")
    }

    fn assert_signed(signature: &str, algorithm: &str) {
        assert!(
            signature.contains(&format!("a={algorithm}-sha256;")),
            "{signature}"
        );
        assert!(
            signature.contains("d=goda-exempel.example.org;"),
            "{signature}"
        );
        assert!(signature.contains("s=tidings;"), "{signature}");
        let h = signature
            .split(';')
            .find_map(|t| t.trim().strip_prefix("h="))
            .unwrap();
        let h: Vec<&str> = h.split(':').collect();
        for name in [
            "from",
            "subject",
            "to",
            "date",
            "message-id",
            "list-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
        ] {
            assert!(h.contains(&name), "{name} not in {h:?}");
        }
        let b = signature
            .split(';')
            .find_map(|t| t.trim().strip_prefix("b="))
            .unwrap();
        assert!(b.len() > 40, "{signature}");
    }

    #[test]
    fn dkim_signs_with_a_pkcs8_ed25519_key() {
        let dir = tempfile::tempdir().unwrap();
        // A fresh key in the PKCS#8 form `openssl genpkey` writes.
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&seed);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let path = dir.path().join("dkim.pem");
        fs_err::write(
            &path,
            format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"),
        )
        .unwrap();
        assert_signed(&dkim_headers(&path), "ed25519");
    }

    #[test]
    fn dkim_signs_with_rsa_keys_from_openssl() {
        let dir = tempfile::tempdir().unwrap();
        let pkcs8 = dir.path().join("pkcs8.pem");
        let status = Command::new("openssl")
            .args(["genrsa", "-out"])
            .arg(&pkcs8)
            .arg("2048")
            .stderr(std::process::Stdio::null())
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("skipped: openssl is not installed");
            return;
        }
        assert_signed(&dkim_headers(&pkcs8), "rsa");
        let pkcs1 = dir.path().join("pkcs1.pem");
        let status = Command::new("openssl")
            .args(["rsa", "-traditional", "-in"])
            .arg(&pkcs8)
            .arg("-out")
            .arg(&pkcs1)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        assert!(
            fs_err::read_to_string(&pkcs1)
                .unwrap()
                .contains("BEGIN RSA PRIVATE KEY")
        );
        assert_signed(&dkim_headers(&pkcs1), "rsa");
    }

    #[test]
    fn an_unusable_dkim_key_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let dkim = |key_file: std::path::PathBuf| Dkim {
            domain: "x.org".into(),
            selector: "s".into(),
            key_file,
        };
        let missing = dir.path().join("missing.pem");
        let err = format!(
            "{:#}",
            DkimSigner::load(&dkim(missing.clone())).unwrap_err()
        );
        assert!(err.contains(&missing.display().to_string()), "{err}");
        let junk = dir.path().join("junk.pem");
        fs_err::write(&junk, "not a key").unwrap();
        let err = format!("{:#}", DkimSigner::load(&dkim(junk.clone())).unwrap_err());
        assert!(err.contains(&junk.display().to_string()), "{err}");
        assert!(err.contains("not a PEM private key"), "{err}");
        let broken = dir.path().join("broken.pem");
        fs_err::write(
            &broken,
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = format!("{:#}", DkimSigner::load(&dkim(broken.clone())).unwrap_err());
        assert!(err.contains("broken.pem"), "{err}");
    }
}
