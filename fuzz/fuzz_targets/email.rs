//! Subscriber addresses: an accepted address is canonical (parsing it
//! again gives it back), at most 254 characters, and one lettre sends to.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::fuzzing::SubscriberEmail;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(email) = SubscriberEmail::parse(text) else {
        return;
    };
    let canonical = email.as_str();
    assert!(
        canonical.len() <= 254,
        "{} bytes: {canonical:?}",
        canonical.len()
    );
    let again = SubscriberEmail::parse(canonical)
        .unwrap_or_else(|e| panic!("{canonical:?} (from {text:?}) refused when parsed again: {e}"));
    assert_eq!(again.as_str(), canonical, "from {text:?}");
    let address: lettre::Address = canonical
        .parse()
        .unwrap_or_else(|e| panic!("lettre refuses {canonical:?} (from {text:?}): {e}"));
    assert_eq!(address.to_string(), canonical);
    let _ = email.key();
});
