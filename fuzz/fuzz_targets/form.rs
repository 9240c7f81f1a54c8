//! The sign-up form's urlencoded body as the handler reads and checks it:
//! what is accepted is a valid subscriber with known themes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::fuzzing;

fuzz_target!(|data: &[u8]| {
    let (_, checked) = fuzzing::signup_form(data);
    match checked {
        Ok(person) => {
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
        Err(errors) => assert!(!errors.is_empty()),
    }
});
