//! The JSON sign-up body as the API reads and checks it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::fuzzing;

fuzz_target!(|data: &[u8]| {
    match fuzzing::signup_json(data) {
        Some(Ok(person)) => {
            let known = fuzzing::theme_slugs();
            assert!(!person.themes.is_empty());
            assert!(
                person
                    .themes
                    .iter()
                    .all(|t| known.iter().any(|k| k == t.as_str()))
            );
            assert!(person.email.as_str().len() <= 254);
        }
        Some(Err(errors)) => assert!(!errors.is_empty()),
        None => {}
    }
});
