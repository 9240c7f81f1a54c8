//! Protection of the sign-up form against cross-site requests.
//!
//! Double submit with a signed token: a page with the form sets a cookie
//! `tidings_csrf` holding a random nonce (HttpOnly, SameSite=Strict) and
//! puts in the form a hidden `csrf` token `ISSUED.NONCE.MAC`, where MAC is
//! HMAC-SHA256 over the issue time and the nonce. A POST is accepted only
//! when the token's MAC is right, it is at most [`MAX_AGE`] old, and its
//! nonce is the cookie's. Another site can neither read the token nor set
//! the cookie, so it cannot forge the pair.
//!
//! The HMAC key is derived from the site's signing keys (see
//! [`crate::keys`]), so a form served before a restart, or by another
//! instance of the same site, still works: tokens are made with the key
//! derived from the active key and accepted with any key of the ring.
//! The derivation ([`Signer::derive`]) is one no subscriber link reveals.
//!
//! In addition, [`cross_site`] refuses a request that the browser marks
//! as coming from another site (`Sec-Fetch-Site`), or whose `Origin` is
//! neither the public URL's nor the request's own host. `Origin: null` is
//! let through: browsers send it for same-origin POSTs from a page with
//! `Referrer-Policy: no-referrer`, which these pages have.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Config;
use crate::links::tokens::Signer;

/// The cookie holding the nonce.
pub const COOKIE: &str = "tidings_csrf";
/// How long a form stays valid.
pub const MAX_AGE: Duration = Duration::hours(6);
/// Random bytes in a nonce.
const NONCE_BYTES: usize = 16;

/// Why a form token was refused (logged; the visitor sees one page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    #[error("no form token")]
    Missing,
    #[error("the form token is malformed or its signature does not match")]
    Forged,
    #[error("the form token has expired")]
    Expired,
    #[error("the form token does not match the cookie (or there is no cookie)")]
    NoCookie,
    #[error("the request comes from another site")]
    CrossSite,
}

/// Makes and checks form tokens with the site's derived key.
pub struct Csrf {
    /// The active key's first.
    keys: Vec<[u8; 32]>,
}

impl Csrf {
    pub fn new(signer: &Signer) -> Csrf {
        Csrf {
            keys: signer.derive("csrf"),
        }
    }

    fn mac(key: &[u8; 32], issued: i64, nonce: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        mac.update(b"csrf\0");
        mac.update(issued.to_string().as_bytes());
        mac.update(b".");
        mac.update(nonce.as_bytes());
        mac
    }

    /// The hidden field's value for the cookie's `nonce`.
    pub fn token(&self, nonce: &str, now: DateTime<Utc>) -> String {
        self.token_at(now.timestamp(), nonce)
    }

    /// The token for `nonce` issued at `issued` (seconds since the epoch).
    pub(crate) fn token_at(&self, issued: i64, nonce: &str) -> String {
        let mac = Csrf::mac(&self.keys[0], issued, nonce)
            .finalize()
            .into_bytes();
        format!("{issued}.{nonce}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// Checks the form's token against the request's cookie.
    pub fn verify(
        &self,
        token: Option<&str>,
        headers: &HeaderMap,
        now: DateTime<Utc>,
    ) -> Result<(), CsrfError> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(CsrfError::Missing)?;
        let mut parts = token.split('.');
        let (Some(issued), Some(nonce), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CsrfError::Forged);
        };
        let issued: i64 = issued.parse().map_err(|_| CsrfError::Forged)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| CsrfError::Forged)?;
        if !self
            .keys
            .iter()
            .any(|key| Csrf::mac(key, issued, nonce).verify_slice(&mac).is_ok())
        {
            return Err(CsrfError::Forged);
        }
        // A little slack for a clock that stepped back. An issue time so
        // far off that the age overflows is no fresher.
        let fresh = now
            .timestamp()
            .checked_sub(issued)
            .is_some_and(|age| (-300..=MAX_AGE.num_seconds()).contains(&age));
        if !fresh {
            return Err(CsrfError::Expired);
        }
        match cookie_nonce(headers) {
            Some(cookie) if constant_time_eq(cookie.as_bytes(), nonce.as_bytes()) => Ok(()),
            _ => Err(CsrfError::NoCookie),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The nonce of the request's cookie, when it has a well-formed one.
pub fn cookie_nonce(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| is_nonce(v))
}

fn is_nonce(value: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(value)
        .is_ok_and(|b| b.len() == NONCE_BYTES)
}

/// A fresh random nonce.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; NONCE_BYTES];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The `Set-Cookie` value for `nonce`. `secure` when the visitor came over
/// HTTPS (a proxy in front says so with `X-Forwarded-Proto`).
pub fn set_cookie(nonce: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={nonce}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        MAX_AGE.num_seconds()
    ))
    .expect("a nonce is base64url")
}

/// Whether the browser says the request comes from another site, or its
/// `Origin` is neither this service's public origin nor its own host.
pub fn cross_site(headers: &HeaderMap, config: &Config) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    if fetch_site
        .as_deref()
        .is_some_and(|s| s != "same-origin" && s != "none")
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    if origin == "null" {
        return false;
    }
    let Ok(url) = url::Url::parse(origin) else {
        return true;
    };
    let public = config.public_url();
    if url.origin() == public.origin() {
        return false;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => return true,
    };
    !origin_host.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Found by the `tokens` fuzz target: a signed token whose issue time
    /// is far from now made the age overflow (a panic in debug builds).
    #[test]
    fn an_issue_time_at_the_ends_of_the_range_is_expired() {
        let csrf = Csrf::new(&Signer::new(b"0123456789abcdef0123456789abcdef"));
        let nonce = new_nonce();
        let cookie = headers(&[("cookie", &format!("{COOKIE}={nonce}"))]);
        for (issued, now) in [
            (i64::MIN, at("2026-01-01T12:00:00Z")),
            (i64::MAX, at("1969-12-31T23:59:58Z")),
        ] {
            let token = csrf.token_at(issued, &nonce);
            assert_eq!(
                csrf.verify(Some(&token), &cookie, now),
                Err(CsrfError::Expired)
            );
        }
    }

    #[test]
    fn a_token_needs_its_cookie_its_signature_and_its_youth() {
        let csrf = Csrf::new(&Signer::new(b"0123456789abcdef0123456789abcdef"));
        let now = at("2026-01-01T12:00:00Z");
        let nonce = new_nonce();
        let token = csrf.token(&nonce, now);
        let cookie = headers(&[("cookie", &format!("a=b; {COOKIE}={nonce}"))]);
        assert_eq!(csrf.verify(Some(&token), &cookie, now), Ok(()));
        assert_eq!(
            csrf.verify(Some(&token), &cookie, now + Duration::hours(5)),
            Ok(())
        );
        assert_eq!(
            csrf.verify(Some(&token), &cookie, now + Duration::hours(7)),
            Err(CsrfError::Expired)
        );
        assert_eq!(
            csrf.verify(Some(&token), &HeaderMap::new(), now),
            Err(CsrfError::NoCookie)
        );
        let other = headers(&[("cookie", &format!("{COOKIE}={}", new_nonce()))]);
        assert_eq!(
            csrf.verify(Some(&token), &other, now),
            Err(CsrfError::NoCookie)
        );
        assert_eq!(csrf.verify(None, &cookie, now), Err(CsrfError::Missing));
        // Any changed character is noticed.
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            if changed != token {
                assert!(csrf.verify(Some(&changed), &cookie, now).is_err(), "{i}");
            }
        }
        // Another site's key makes tokens that are worth nothing here.
        let stranger = Csrf::new(&Signer::new(b"another key of the same length!!"));
        let forged = stranger.token(&nonce, now);
        assert_eq!(
            csrf.verify(Some(&forged), &cookie, now),
            Err(CsrfError::Forged)
        );
    }

    #[test]
    fn cross_site_requests_are_recognized() {
        let config = crate::fixtures::site("").config;
        let same = [
            headers(&[]),
            headers(&[("sec-fetch-site", "same-origin")]),
            headers(&[("origin", "null"), ("host", "127.0.0.1:8080")]),
            headers(&[
                ("origin", "http://127.0.0.1:8080"),
                ("host", "127.0.0.1:8080"),
            ]),
            headers(&[("origin", "https://goda-exempel.example.org")]),
        ];
        for h in same {
            assert!(!cross_site(&h, &config), "{h:?}");
        }
        let cross = [
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
            headers(&[
                ("origin", "https://evil.example"),
                ("host", "127.0.0.1:8080"),
            ]),
            headers(&[
                ("origin", "http://127.0.0.1:9999"),
                ("host", "127.0.0.1:8080"),
            ]),
        ];
        for h in cross {
            assert!(cross_site(&h, &config), "{h:?}");
        }
    }
}
