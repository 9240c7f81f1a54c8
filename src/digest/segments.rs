//! Digests rendered once per audience. Subscribers who share a language
//! and a choice of themes get the same email but for three values: their
//! address and their signed preferences and unsubscribe links. Rendering
//! (tera, then CSS inlining, which parses the whole page) is by far the
//! dearest part of sending, so an edition renders each audience once with
//! markers in place of those values, and each subscriber's copy is that
//! rendering with the markers replaced.
//!
//! The renderings are kept compressed (deflate, fastest level): an
//! edition can have thousands of audiences of some 50 KB each, and
//! inflating one costs a fraction of a millisecond.
//!
//! A template is free to do anything with the values (a filter could
//! change a marker past recognition), so in each edition the first
//! subscriber of each language is also rendered the ordinary way, and that
//! language uses the shortcut only if both give the same bytes. Values
//! with characters that HTML escapes differently by context (`&`, `<`,
//! `>`, `"`, `'`) are always rendered the ordinary way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;

use super::render::{self, DigestEmail, Links, Rendered, Templates};
use crate::story::ThemeSlug;

const RECIPIENT: &str = "tidings-recipient-4e1f8a@example.invalid";
const PREFERENCES: &str = "https://tidings-preferences-4e1f8a.invalid/p";
const UNSUBSCRIBE: &str = "https://tidings-unsubscribe-4e1f8a.invalid/u";

/// (edition, language, themes): who gets the same email.
type Audience = (i64, String, Vec<ThemeSlug>);

/// Per audience: the rendering with markers, or `None` when the
/// template does not carry the values through verbatim.
#[derive(Default)]
pub struct Segments {
    cache: Mutex<HashMap<Audience, Option<Arc<Packed>>>>,
    /// Per (edition, language): whether the templates carried the values
    /// through verbatim when checked.
    verbatim: Mutex<HashMap<(i64, String), bool>>,
}

impl Segments {
    /// `email` rendered, from the audience's rendering when it has one.
    /// `themes` are the subscriber's, which decided `email.sections` from
    /// the stories of `edition`.
    pub fn render(
        &self,
        templates: &Templates,
        edition: i64,
        email: &DigestEmail,
        themes: &[ThemeSlug],
    ) -> Result<Rendered> {
        let values = [
            email.recipient,
            &email.links.preferences,
            &email.links.unsubscribe,
        ];
        if values
            .iter()
            .any(|v| v.contains(['&', '<', '>', '"', '\'']))
        {
            return render::render(templates, email);
        }
        let key = (edition, email.language.to_owned(), themes.to_vec());
        let known = self.cache.lock().expect("not poisoned").get(&key).cloned();
        match known {
            Some(Some(generic)) => generic.personalize(email),
            Some(None) => render::render(templates, email),
            None => {
                let generic = || {
                    render::render(
                        templates,
                        &DigestEmail {
                            recipient: RECIPIENT,
                            links: Links {
                                preferences: PREFERENCES.to_owned(),
                                unsubscribe: UNSUBSCRIBE.to_owned(),
                                edition: email.links.edition.clone(),
                            },
                            sections: email.sections.clone(),
                            ..*email
                        },
                    )
                };
                let language = (edition, email.language.to_owned());
                let checked = self
                    .verbatim
                    .lock()
                    .expect("not poisoned")
                    .get(&language)
                    .copied();
                let (entry, rendered) = match checked {
                    Some(true) => {
                        let generic = generic()?;
                        let mine = personalize(&generic, email);
                        (Some(Arc::new(Packed::pack(&generic)?)), mine)
                    }
                    Some(false) => (None, render::render(templates, email)?),
                    None => {
                        let direct = render::render(templates, email)?;
                        let generic = generic()?;
                        let same = personalize(&generic, email) == direct;
                        if !same {
                            tracing::debug!(
                                language = email.language,
                                "the digest templates change the personal values; each subscriber is rendered on their own"
                            );
                        }
                        self.verbatim
                            .lock()
                            .expect("not poisoned")
                            .insert(language, same);
                        let entry = if same {
                            Some(Arc::new(Packed::pack(&generic)?))
                        } else {
                            None
                        };
                        (entry, direct)
                    }
                };
                self.cache.lock().expect("not poisoned").insert(key, entry);
                Ok(rendered)
            }
        }
    }
}

fn personalize(generic: &Rendered, email: &DigestEmail) -> Rendered {
    Rendered {
        subject: generic.subject.clone(),
        html: fill(&generic.html, &marks(&generic.html), email),
        text: fill(&generic.text, &marks(&generic.text), email),
    }
}

/// Where the markers are in `s`: (offset, which of the three).
fn marks(s: &str) -> Vec<(usize, u8)> {
    let mut found: Vec<(usize, u8)> = [RECIPIENT, PREFERENCES, UNSUBSCRIBE]
        .iter()
        .zip(0u8..)
        .flat_map(|(marker, which)| s.match_indices(marker).map(move |(at, _)| (at, which)))
        .collect();
    found.sort_unstable();
    found
}

/// `s` with the markers found at `marks` replaced by the subscriber's values.
fn fill(s: &str, marks: &[(usize, u8)], email: &DigestEmail) -> String {
    let values = [
        (RECIPIENT, email.recipient),
        (PREFERENCES, email.links.preferences.as_str()),
        (UNSUBSCRIBE, email.links.unsubscribe.as_str()),
    ];
    let mut out = String::with_capacity(s.len() + 256);
    let mut from = 0;
    for &(at, which) in marks {
        let (marker, value) = values[usize::from(which)];
        out.push_str(&s[from..at]);
        out.push_str(value);
        from = at + marker.len();
    }
    out.push_str(&s[from..]);
    out
}

/// A rendering with markers, deflated, with where its markers are.
struct Packed {
    subject: String,
    html: (Vec<u8>, Vec<(usize, u8)>),
    text: (Vec<u8>, Vec<(usize, u8)>),
}

impl Packed {
    fn pack(r: &Rendered) -> Result<Packed> {
        Ok(Packed {
            subject: r.subject.clone(),
            html: (deflate(&r.html)?, marks(&r.html)),
            text: (deflate(&r.text)?, marks(&r.text)),
        })
    }

    /// The subscriber's copy.
    fn personalize(&self, email: &DigestEmail) -> Result<Rendered> {
        Ok(Rendered {
            subject: self.subject.clone(),
            html: fill(&inflate(&self.html.0)?, &self.html.1, email),
            text: fill(&inflate(&self.text.0)?, &self.text.1, email),
        })
    }
}

fn deflate(s: &str) -> Result<Vec<u8>> {
    use std::io::Write as _;
    let mut e = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(s.len() / 4),
        flate2::Compression::fast(),
    );
    e.write_all(s.as_bytes())?;
    Ok(e.finish()?)
}

fn inflate(b: &[u8]) -> Result<String> {
    use std::io::Read as _;
    let mut s = String::with_capacity(b.len() * 5);
    flate2::read::DeflateDecoder::new(b).read_to_string(&mut s)?;
    Ok(s)
}
