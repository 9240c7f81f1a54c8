//! Signed links and form tokens: any text is refused or accepted without
//! a panic, a token signed is verified with the claims it was signed with
//! (and with no other address or purpose), and a form token signed for
//! any issue time is checked without a panic.
#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use tidings::fuzzing::{self, PURPOSES};

fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

fn i64_at(data: &[u8], at: usize) -> i64 {
    let mut bytes = [0u8; 8];
    for (i, b) in data.iter().skip(at).take(8).enumerate() {
        bytes[i] = *b;
    }
    i64::from_le_bytes(bytes)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let now = time(i64_at(data, 0) % 20_000_000_000);
    let (token, email_key) = text.split_once('\n').unwrap_or((&text, "a@example.org"));
    for purpose in PURPOSES {
        let _ = fuzzing::verify_token(token, purpose, email_key, now);
    }

    // Round trip.
    let id = i64_at(data, 8);
    let issued = time(i64_at(data, 16) % 20_000_000_000);
    let purpose = PURPOSES[data.first().map_or(0, |b| usize::from(*b) % 3)];
    let signed = fuzzing::sign_token(purpose, id, email_key, issued);
    let claims = fuzzing::verify_token(&signed, purpose, email_key, issued)
        .unwrap_or_else(|e| panic!("{signed} refused: {e}"));
    assert_eq!(claims.subscriber_id, id);
    assert_eq!(claims.issued, issued);
    assert!(fuzzing::verify_token(&signed, purpose, &format!("{email_key}x"), issued).is_err());
    for other in PURPOSES.into_iter().filter(|p| *p != purpose) {
        assert!(fuzzing::verify_token(&signed, other, email_key, issued).is_err());
    }

    // Form tokens: as typed, and signed for any issue time and nonce.
    let cookie = format!("tidings_csrf={email_key}");
    let _ = fuzzing::csrf_verify(Some(token), cookie.as_bytes(), now);
    let _ = fuzzing::csrf_verify(Some(&text), data, now);
    let form = fuzzing::csrf_token(i64_at(data, 24), email_key);
    let _ = fuzzing::csrf_verify(Some(&form), cookie.as_bytes(), now);
    let issued_now = fuzzing::csrf_token(now.timestamp(), email_key);
    let checked = fuzzing::csrf_verify(Some(&issued_now), cookie.as_bytes(), now);
    if email_key.trim() == email_key && !email_key.contains(['.', ';']) {
        // Refused only for want of a well-formed cookie nonce.
        if let Err(e) = checked {
            assert_eq!(e, tidings::web::csrf::CsrfError::NoCookie, "{issued_now}");
        }
    }
});
