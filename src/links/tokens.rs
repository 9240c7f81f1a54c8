//! Signed links for subscribers: confirm, manage preferences, unsubscribe.
//!
//! A token is `PAYLOAD.MAC`, both base64url without padding. The payload
//! holds a version, the purpose, the id of the key that signed it, the
//! subscriber's id and the time it was issued; the MAC is HMAC-SHA256 over
//! the payload *and the subscriber's address*, so a token dies with the
//! person it was made for even if their id is later given to someone else.
//! Verification compares in constant time; any changed byte makes the
//! token invalid. Confirmation tokens expire after 7 days; the others
//! never do (an unsubscribe link in a years-old email must still work).
//!
//! A [`Signer`] holds every key of the site's key ring (see
//! [`crate::keys`]): it signs with the active one and verifies with the
//! one a token names, so links signed before `tidings key rotate` keep
//! working. Tokens of the first format (version 1, before keys had ids)
//! name no key; they are checked against every key of the ring.
//!
//! The envelope sender of a digest carries a token of its own, shorter and
//! case-proof because it lives in an address's local part: see
//! [`BounceToken`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};

/// The number of a key in the site's key ring.
pub type KeyId = u32;

/// The first format: version, purpose, subscriber, issued.
const V1: u8 = 1;
const V1_LEN: usize = 1 + 1 + 8 + 8;
/// The current format: version, purpose, key id, subscriber, issued.
const V2: u8 = 2;
const V2_LEN: usize = 1 + 1 + 4 + 8 + 8;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Confirm,
    Preferences,
    Unsubscribe,
    /// The VERP envelope sender of a digest: see [`BounceToken`].
    Bounce,
}

impl Purpose {
    fn code(self) -> u8 {
        match self {
            Purpose::Confirm => b'c',
            Purpose::Preferences => b'p',
            Purpose::Unsubscribe => b'u',
            Purpose::Bounce => b'b',
        }
    }

    fn from_code(code: u8) -> Option<Purpose> {
        [Purpose::Confirm, Purpose::Preferences, Purpose::Unsubscribe]
            .into_iter()
            .find(|p| p.code() == code)
    }

    /// How long a token stays valid; `None` is for ever.
    pub fn max_age(self) -> Option<Duration> {
        match self {
            Purpose::Confirm => Some(Duration::days(7)),
            Purpose::Preferences | Purpose::Unsubscribe | Purpose::Bounce => None,
        }
    }
}

/// Why a token was refused. Pages show one message for all of them, so
/// that a guesser learns nothing; logs may say which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the link is not a valid token")]
    Malformed,
    #[error("the link's signature does not match")]
    BadSignature,
    #[error("the link is meant for something else")]
    WrongPurpose,
    #[error("the link has expired")]
    Expired,
    #[error("the link was signed with a key this process does not hold")]
    UnknownKey,
}

/// A token read but not yet checked: enough to look up whose it claims to be.
#[derive(Debug, Clone)]
pub struct Unverified {
    /// The payload as signed: [`V1_LEN`] or [`V2_LEN`] bytes.
    payload: Vec<u8>,
    mac: Vec<u8>,
}

impl Unverified {
    pub fn parse(token: &str) -> Result<Unverified, TokenError> {
        let (payload, mac) = token.trim().split_once('.').ok_or(TokenError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        match (payload.first(), payload.len()) {
            (Some(&V1), V1_LEN) | (Some(&V2), V2_LEN) => {}
            _ => return Err(TokenError::Malformed),
        }
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| TokenError::Malformed)?;
        Ok(Unverified { payload, mac })
    }

    /// Where the subscriber id starts: after the key id in version 2.
    fn body(&self) -> &[u8] {
        if self.payload[0] == V1 {
            &self.payload[2..]
        } else {
            &self.payload[6..]
        }
    }

    /// The key the token names; `None` for the first format.
    pub fn key_id(&self) -> Option<KeyId> {
        (self.payload[0] == V2)
            .then(|| KeyId::from_be_bytes(self.payload[2..6].try_into().expect("4 bytes")))
    }

    /// The subscriber the token claims to be for (not yet proven).
    pub fn subscriber_id(&self) -> i64 {
        i64::from_be_bytes(self.body()[..8].try_into().expect("8 bytes"))
    }

    fn issued(&self) -> i64 {
        i64::from_be_bytes(self.body()[8..16].try_into().expect("8 bytes"))
    }
}

/// What a verified token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub subscriber_id: i64,
    pub purpose: Purpose,
    pub issued: DateTime<Utc>,
}

/// Signs with the active key of a key ring and verifies with any of them.
#[derive(Clone)]
pub struct Signer {
    active: KeyId,
    /// Every key this process holds, the active one included.
    keys: Vec<(KeyId, Vec<u8>)>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys never reach a log.
        write!(f, "Signer(active key {}, ..)", self.active)
    }
}

fn mac(key: &[u8], payload: &[u8], email_key: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(payload);
    mac.update(email_key.as_bytes());
    mac
}

impl Signer {
    /// A signer with one key, numbered 1 (a site's first key).
    pub fn new(key: &[u8]) -> Signer {
        Signer::with_keys(1, vec![(1, key.to_vec())])
    }

    /// A signer that signs with key `active` (which must be among `keys`)
    /// and verifies with any of `keys`.
    pub fn with_keys(active: KeyId, keys: Vec<(KeyId, Vec<u8>)>) -> Signer {
        assert!(
            keys.iter().any(|(id, _)| *id == active),
            "the active key is one of the keys"
        );
        Signer { active, keys }
    }

    /// The key new tokens are signed with.
    pub fn active_key(&self) -> KeyId {
        self.active
    }

    /// Whether this signer holds key `id`.
    pub fn holds(&self, id: KeyId) -> bool {
        self.keys.iter().any(|(k, _)| *k == id)
    }

    fn key(&self, id: KeyId) -> Option<&[u8]> {
        self.keys
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, key)| key.as_slice())
    }

    /// A token for `purpose`, for the subscriber with `id` and address key
    /// `email_key` (the lower-cased address), signed with the active key.
    pub fn sign(
        &self,
        purpose: Purpose,
        id: i64,
        email_key: &str,
        issued: DateTime<Utc>,
    ) -> String {
        let mut payload = [0u8; V2_LEN];
        payload[0] = V2;
        payload[1] = purpose.code();
        payload[2..6].copy_from_slice(&self.active.to_be_bytes());
        payload[6..14].copy_from_slice(&id.to_be_bytes());
        payload[14..22].copy_from_slice(&issued.timestamp().to_be_bytes());
        let key = self.key(self.active).expect("the active key is held");
        let mac = mac(key, &payload, email_key).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    /// Checks a parsed token against the address of the subscriber it
    /// names, the purpose it must have, and its age at `now`.
    pub fn verify(
        &self,
        token: &Unverified,
        purpose: Purpose,
        email_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Claims, TokenError> {
        let signed = |key: &[u8]| {
            mac(key, &token.payload, email_key)
                .verify_slice(&token.mac)
                .is_ok()
        };
        match token.key_id() {
            Some(id) => {
                let key = self.key(id).ok_or(TokenError::UnknownKey)?;
                if !signed(key) {
                    return Err(TokenError::BadSignature);
                }
            }
            // The first format names no key: any of the ring's will do.
            None => {
                if !self.keys.iter().any(|(_, key)| signed(key)) {
                    return Err(TokenError::BadSignature);
                }
            }
        }
        let actual = Purpose::from_code(token.payload[1]).ok_or(TokenError::Malformed)?;
        if actual != purpose {
            return Err(TokenError::WrongPurpose);
        }
        let issued = DateTime::from_timestamp(token.issued(), 0).ok_or(TokenError::Malformed)?;
        if let Some(max) = purpose.max_age()
            && now - issued > max
        {
            return Err(TokenError::Expired);
        }
        Ok(Claims {
            subscriber_id: token.subscriber_id(),
            purpose,
            issued,
        })
    }

    /// Keys for another use (such as form tokens), derived from each key
    /// of the ring with `label`, the active key's first. No token reveals
    /// them: tokens are MACs over payloads, these over a fixed prefix no
    /// payload starts with.
    pub fn derive(&self, label: &str) -> Vec<[u8; 32]> {
        let one = |key: &[u8]| -> [u8; 32] {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(b"\0tidings derived key\0");
            mac.update(label.as_bytes());
            mac.finalize().into_bytes().into()
        };
        let active = self.key(self.active).expect("the active key is held");
        std::iter::once(one(active))
            .chain(
                self.keys
                    .iter()
                    .filter(|(id, _)| *id != self.active)
                    .map(|(_, key)| one(key)),
            )
            .collect()
    }
}

/// The format of bounce tokens, in their MAC's input only.
const V_BOUNCE: u8 = 3;
/// The bytes of HMAC-SHA256 a bounce token keeps: 80 bits, 16 characters.
const BOUNCE_MAC_LEN: usize = 10;
/// Lower-case base32 (RFC 4648's alphabet): survives relays that fold
/// the local part's case.
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The token in a digest's envelope sender (`bounces+TOKEN@example.org`,
/// VERP), naming one delivery: `EDITION-SUBSCRIBER-KEY-MAC`, the three
/// numbers in decimal and the MAC the first 80 bits of HMAC-SHA256 (over
/// the purpose, the numbers and the subscriber's address, like the links)
/// in lower-case base32, 16 characters. Only digits, letters and `-`, so it
/// is a plain local part; nothing in it changes when a relay folds case;
/// with ids below a billion it is at most 42 characters, leaving room in
/// the 64 of a local part for `bounces+`. 80 bits are plenty against
/// forgery: a guesser gets one try per report and no oracle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceToken {
    pub edition_id: i64,
    pub subscriber_id: i64,
    key: KeyId,
    mac: [u8; BOUNCE_MAC_LEN],
}

impl BounceToken {
    /// Reads a token (any letter case); not yet verified.
    pub fn parse(text: &str) -> Result<BounceToken, TokenError> {
        let text = text.trim().to_ascii_lowercase();
        let mut parts = text.split('-');
        let mut number = || {
            parts
                .next()
                .filter(|p| !p.is_empty() && p.len() <= 19 && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<i64>().ok())
                .ok_or(TokenError::Malformed)
        };
        let edition_id = number()?;
        let subscriber_id = number()?;
        let key = KeyId::try_from(number()?).map_err(|_| TokenError::Malformed)?;
        let mac = parts.next().ok_or(TokenError::Malformed)?;
        if parts.next().is_some() {
            return Err(TokenError::Malformed);
        }
        Ok(BounceToken {
            edition_id,
            subscriber_id,
            key,
            mac: base32_decode(mac).ok_or(TokenError::Malformed)?,
        })
    }

    fn input(key: KeyId, edition_id: i64, subscriber_id: i64) -> Vec<u8> {
        let mut input = vec![V_BOUNCE, Purpose::Bounce.code()];
        input.extend_from_slice(&key.to_be_bytes());
        input.extend_from_slice(&edition_id.to_be_bytes());
        input.extend_from_slice(&subscriber_id.to_be_bytes());
        input
    }
}

impl std::fmt::Display for BounceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}-{}-{}",
            self.edition_id,
            self.subscriber_id,
            self.key,
            base32_encode(&self.mac)
        )
    }
}

fn base32_encode(bytes: &[u8; BOUNCE_MAC_LEN]) -> String {
    let mut bits = 0u128;
    for b in bytes {
        bits = (bits << 8) | u128::from(*b);
    }
    (0..BOUNCE_MAC_LEN * 8 / 5)
        .rev()
        .map(|i| BASE32[((bits >> (i * 5)) & 31) as usize] as char)
        .collect()
}

fn base32_decode(text: &str) -> Option<[u8; BOUNCE_MAC_LEN]> {
    if text.len() != BOUNCE_MAC_LEN * 8 / 5 {
        return None;
    }
    let mut bits = 0u128;
    for c in text.bytes() {
        let v = BASE32.iter().position(|&a| a == c)?;
        bits = (bits << 5) | v as u128;
    }
    let mut out = [0u8; BOUNCE_MAC_LEN];
    for (i, b) in out.iter_mut().enumerate() {
        *b = (bits >> ((BOUNCE_MAC_LEN - 1 - i) * 8)) as u8;
    }
    Some(out)
}

impl Signer {
    /// The VERP token of the delivery of edition `edition_id` to the
    /// subscriber `subscriber_id` whose address key is `email_key`.
    pub fn sign_bounce(&self, edition_id: i64, subscriber_id: i64, email_key: &str) -> BounceToken {
        let key = self.key(self.active).expect("the active key is held");
        let input = BounceToken::input(self.active, edition_id, subscriber_id);
        let full = mac(key, &input, email_key).finalize().into_bytes();
        BounceToken {
            edition_id,
            subscriber_id,
            key: self.active,
            mac: full[..BOUNCE_MAC_LEN].try_into().expect("10 bytes"),
        }
    }

    /// Checks a bounce token against the address of the subscriber it
    /// names (in constant time).
    pub fn verify_bounce(&self, token: &BounceToken, email_key: &str) -> Result<(), TokenError> {
        let key = self.key(token.key).ok_or(TokenError::UnknownKey)?;
        let input = BounceToken::input(token.key, token.edition_id, token.subscriber_id);
        mac(key, &input, email_key)
            .verify_truncated_left(&token.mac)
            .map_err(|_| TokenError::BadSignature)
    }
}

/// What the store keeps of a key to tell it again without holding it: the
/// first 16 hex digits of a SHA-256 of the key under a fixed label.
pub fn fingerprint(key: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(b"tidings signing key fingerprint\0");
    hash.update(key);
    hex::encode(&hash.finalize()[..8])
}

/// Generates a new random signing key.
pub fn generate_key() -> Vec<u8> {
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).expect("the operating system provides randomness");
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_token_verifies_for_its_subscriber_and_purpose_only() {
        let signer = Signer::new(b"a key of some length");
        let now = at("2026-01-01T00:00:00Z");
        let t = signer.sign(Purpose::Unsubscribe, 42, "ann@example.org", now);
        let u = Unverified::parse(&t).unwrap();
        assert_eq!(u.subscriber_id(), 42);
        let claims = signer
            .verify(&u, Purpose::Unsubscribe, "ann@example.org", now)
            .unwrap();
        assert_eq!((claims.subscriber_id, claims.issued), (42, now));
        assert_eq!(
            signer.verify(&u, Purpose::Preferences, "ann@example.org", now),
            Err(TokenError::WrongPurpose)
        );
        assert_eq!(
            signer.verify(&u, Purpose::Unsubscribe, "bo@example.org", now),
            Err(TokenError::BadSignature),
            "the same id given to someone else"
        );
        let other = Signer::new(b"another key");
        assert_eq!(
            other.verify(&u, Purpose::Unsubscribe, "ann@example.org", now),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn any_changed_byte_breaks_the_token() {
        let signer = Signer::new(b"k");
        let now = at("2026-01-01T00:00:00Z");
        let t = signer.sign(Purpose::Preferences, 7, "a@example.org", now);
        let chars: Vec<char> = t.chars().collect();
        for i in 0..chars.len() {
            let mut changed = chars.clone();
            changed[i] = if chars[i] == 'A' { 'B' } else { 'A' };
            let changed: String = changed.into_iter().collect();
            if changed == t {
                continue;
            }
            let ok = Unverified::parse(&changed)
                .and_then(|u| signer.verify(&u, Purpose::Preferences, "a@example.org", now));
            assert!(ok.is_err(), "changing character {i} of {t} went unnoticed");
        }
        for bad in ["", ".", "abc", "abc.def", &t[..t.len() - 1]] {
            assert!(
                Unverified::parse(bad)
                    .and_then(|u| signer.verify(&u, Purpose::Preferences, "a@example.org", now))
                    .is_err()
            );
        }
    }

    #[test]
    fn confirmation_expires_after_seven_days_unsubscribe_never() {
        let signer = Signer::new(b"k");
        let issued = at("2026-01-01T00:00:00Z");
        let confirm =
            Unverified::parse(&signer.sign(Purpose::Confirm, 1, "a@example.org", issued)).unwrap();
        let unsub =
            Unverified::parse(&signer.sign(Purpose::Unsubscribe, 1, "a@example.org", issued))
                .unwrap();
        let day7 = at("2026-01-08T00:00:00Z");
        let day8 = at("2026-01-08T00:00:01Z");
        assert!(
            signer
                .verify(&confirm, Purpose::Confirm, "a@example.org", day7)
                .is_ok()
        );
        assert_eq!(
            signer.verify(&confirm, Purpose::Confirm, "a@example.org", day8),
            Err(TokenError::Expired)
        );
        let years = at("2036-01-01T00:00:00Z");
        assert!(
            signer
                .verify(&unsub, Purpose::Unsubscribe, "a@example.org", years)
                .is_ok()
        );
    }

    /// A token of the first format (no key id), as earlier versions made.
    fn first_format(key: &[u8], purpose: Purpose, id: i64, email_key: &str) -> String {
        let mut payload = vec![V1, purpose.code()];
        payload.extend_from_slice(&id.to_be_bytes());
        payload.extend_from_slice(&0i64.to_be_bytes());
        let mac = mac(key, &payload, email_key).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    #[test]
    fn a_ring_verifies_each_key_it_holds_and_signs_with_the_active_one() {
        let now = at("2026-01-01T00:00:00Z");
        let old = Signer::new(b"the first key");
        let ring = Signer::with_keys(
            2,
            vec![
                (1, b"the first key".to_vec()),
                (2, b"the second key".to_vec()),
            ],
        );
        let before = Unverified::parse(&old.sign(Purpose::Unsubscribe, 5, "a@b.org", now)).unwrap();
        assert_eq!(before.key_id(), Some(1));
        assert!(
            ring.verify(&before, Purpose::Unsubscribe, "a@b.org", now)
                .is_ok()
        );
        let after = Unverified::parse(&ring.sign(Purpose::Unsubscribe, 5, "a@b.org", now)).unwrap();
        assert_eq!(after.key_id(), Some(2));
        assert_eq!(
            old.verify(&after, Purpose::Unsubscribe, "a@b.org", now),
            Err(TokenError::UnknownKey),
            "a process that does not hold key 2 says so"
        );
        // A token naming key 1 but signed with key 2 is refused.
        let forged = Signer::with_keys(1, vec![(1, b"the second key".to_vec())]);
        let forged =
            Unverified::parse(&forged.sign(Purpose::Unsubscribe, 5, "a@b.org", now)).unwrap();
        assert_eq!(
            ring.verify(&forged, Purpose::Unsubscribe, "a@b.org", now),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn first_format_tokens_verify_with_any_key_of_the_ring() {
        let now = at("2026-01-01T00:00:00Z");
        let ring = Signer::with_keys(2, vec![(1, b"stored".to_vec()), (2, b"given".to_vec())]);
        for key in [&b"stored"[..], b"given"] {
            let t =
                Unverified::parse(&first_format(key, Purpose::Unsubscribe, 9, "a@b.org")).unwrap();
            assert_eq!((t.key_id(), t.subscriber_id()), (None, 9));
            let claims = ring
                .verify(&t, Purpose::Unsubscribe, "a@b.org", now)
                .unwrap();
            assert_eq!(claims.issued, DateTime::UNIX_EPOCH);
            assert_eq!(
                ring.verify(&t, Purpose::Unsubscribe, "c@b.org", now),
                Err(TokenError::BadSignature)
            );
        }
        let stranger =
            Unverified::parse(&first_format(b"other", Purpose::Unsubscribe, 9, "a@b.org")).unwrap();
        assert_eq!(
            ring.verify(&stranger, Purpose::Unsubscribe, "a@b.org", now),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn derived_keys_start_with_the_active_one_and_differ_per_label() {
        let ring = Signer::with_keys(2, vec![(1, b"one".to_vec()), (2, b"two".to_vec())]);
        let csrf = ring.derive("csrf");
        assert_eq!(csrf.len(), 2);
        assert_eq!(csrf[0], Signer::new(b"two").derive("csrf")[0]);
        assert_ne!(csrf[0], ring.derive("other")[0]);
        assert_eq!(fingerprint(b"two").len(), 16);
        assert_ne!(fingerprint(b"one"), fingerprint(b"two"));
    }

    #[test]
    fn bounce_tokens_are_short_case_proof_and_bound_to_the_address() {
        let signer = Signer::with_keys(2, vec![(1, b"old".to_vec()), (2, b"new".to_vec())]);
        let token = signer.sign_bounce(12, 345, "ann@example.org");
        let text = token.to_string();
        assert!(text.starts_with("12-345-2-"), "{text}");
        assert_eq!(text.len(), "12-345-2-".len() + 16);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
        let read = BounceToken::parse(&text.to_uppercase()).unwrap();
        assert_eq!(read, token);
        assert_eq!(signer.verify_bounce(&read, "ann@example.org"), Ok(()));
        assert_eq!(
            signer.verify_bounce(&read, "bob@example.org"),
            Err(TokenError::BadSignature)
        );
        let forged = BounceToken::parse(&text.replacen("12-", "13-", 1)).unwrap();
        assert_eq!(
            signer.verify_bounce(&forged, "ann@example.org"),
            Err(TokenError::BadSignature)
        );
        let longest = signer.sign_bounce(999_999_999, 999_999_999, "a@b.org");
        assert!(longest.to_string().len() <= 42);
        for bad in [
            "",
            "1-2-3",
            "1-2-3-abc",
            "x-2-3-aaaaaaaaaaaaaaaa",
            "1-2-3-aaaaaaaaaaaaaaaa-1",
        ] {
            assert!(BounceToken::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_random() {
        assert_ne!(generate_key(), generate_key());
        assert_eq!(generate_key().len(), 32);
    }
}
