//! Signed links for subscribers: confirm, manage preferences, unsubscribe.
//!
//! A token is `PAYLOAD.MAC`, both base64url without padding. The payload
//! holds a version, the purpose, the subscriber's id and the time it was
//! issued; the MAC is HMAC-SHA256 over the payload *and the subscriber's
//! address*, so a token dies with the person it was made for even if their
//! id is later given to someone else. Verification compares in constant
//! time; any changed byte makes the token invalid. Confirmation tokens
//! expire after 7 days; the others never do (an unsubscribe link in a
//! years-old email must still work).
//!
//! The key is `TIDINGS_SECRET` when set; otherwise one is generated once
//! and kept in the store (see [`crate::store::Store::signing_key`]), never
//! in config.toml.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 1 + 1 + 8 + 8;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Confirm,
    Preferences,
    Unsubscribe,
}

impl Purpose {
    fn code(self) -> u8 {
        match self {
            Purpose::Confirm => b'c',
            Purpose::Preferences => b'p',
            Purpose::Unsubscribe => b'u',
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
            Purpose::Preferences | Purpose::Unsubscribe => None,
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
}

/// A token read but not yet checked: enough to look up whose it claims to be.
#[derive(Debug, Clone)]
pub struct Unverified {
    payload: [u8; PAYLOAD_LEN],
    mac: Vec<u8>,
}

impl Unverified {
    pub fn parse(token: &str) -> Result<Unverified, TokenError> {
        let (payload, mac) = token.trim().split_once('.').ok_or(TokenError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let payload: [u8; PAYLOAD_LEN] = payload.try_into().map_err(|_| TokenError::Malformed)?;
        if payload[0] != VERSION {
            return Err(TokenError::Malformed);
        }
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| TokenError::Malformed)?;
        Ok(Unverified { payload, mac })
    }

    /// The subscriber the token claims to be for (not yet proven).
    pub fn subscriber_id(&self) -> i64 {
        i64::from_be_bytes(self.payload[2..10].try_into().expect("8 bytes"))
    }

    fn issued(&self) -> i64 {
        i64::from_be_bytes(self.payload[10..18].try_into().expect("8 bytes"))
    }
}

/// What a verified token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub subscriber_id: i64,
    pub purpose: Purpose,
    pub issued: DateTime<Utc>,
}

/// Signs and verifies tokens with one key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never reaches a log.
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(key: &[u8]) -> Signer {
        Signer { key: key.to_vec() }
    }

    fn mac(&self, payload: &[u8], email_key: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload);
        mac.update(email_key.as_bytes());
        mac
    }

    /// A token for `purpose`, for the subscriber with `id` and address key
    /// `email_key` (the lower-cased address).
    pub fn sign(
        &self,
        purpose: Purpose,
        id: i64,
        email_key: &str,
        issued: DateTime<Utc>,
    ) -> String {
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[0] = VERSION;
        payload[1] = purpose.code();
        payload[2..10].copy_from_slice(&id.to_be_bytes());
        payload[10..18].copy_from_slice(&issued.timestamp().to_be_bytes());
        let mac = self.mac(&payload, email_key).finalize().into_bytes();
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
        self.mac(&token.payload, email_key)
            .verify_slice(&token.mac)
            .map_err(|_| TokenError::BadSignature)?;
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
}

/// The signer for this site: from `TIDINGS_SECRET` when set, else from the
/// key kept in the store.
pub async fn signer(store: &crate::store::Store) -> anyhow::Result<Signer> {
    match std::env::var("TIDINGS_SECRET") {
        Ok(secret) if !secret.is_empty() => {
            if secret.len() < 32 {
                anyhow::bail!(
                    "TIDINGS_SECRET is too short ({} characters): use at least 32 random characters",
                    secret.len()
                );
            }
            Ok(Signer::new(secret.as_bytes()))
        }
        _ => Ok(Signer::new(&store.signing_key().await?)),
    }
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

    #[test]
    fn keys_are_random() {
        assert_ne!(generate_key(), generate_key());
        assert_eq!(generate_key().len(), 32);
    }
}
