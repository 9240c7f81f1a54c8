//! Digests rendered once per audience. Subscribers who share a language
//! and a choice of themes get the same email but for three values: their
//! address and their signed preferences and unsubscribe links. Rendering
//! (tera, then CSS inlining, which parses the whole page) is by far the
//! dearest part of sending, so an edition renders each audience once with
//! markers in place of those values, and each subscriber's copy is that
//! rendering with the markers replaced.
//!
//! The renderings are kept as their quoted-printable MIME bodies, cut
//! where the values go, so a copy costs no encoding: each piece before a
//! value ends in a soft line break (`=` CRLF, which decoding removes), so
//! each value starts a line of its own and no line grows past 76
//! characters. They are compressed (LZ4): an edition can have thousands of
//! audiences of some 50 KB each, and LZ4 gives one back in microseconds.
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

use super::render::{self, DigestEmail, Links, Templates};
use crate::mail::message::{Encoded, crlf, fingerprint};
use crate::mail::rendered::Rendered;
use crate::model::ThemeSlug;

const RECIPIENT: &str = "tidings-recipient-4e1f8a@example.invalid";
const PREFERENCES: &str = "https://tidings-preferences-4e1f8a.invalid/p";
const UNSUBSCRIBE: &str = "https://tidings-unsubscribe-4e1f8a.invalid/u";
const MARKERS: [&str; 3] = [RECIPIENT, PREFERENCES, UNSUBSCRIBE];

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
    /// `email` rendered and encoded, from the audience's rendering when it
    /// has one. `themes` are the subscriber's, which decided
    /// `email.sections` from the stories of `edition`.
    pub fn render(
        &self,
        templates: &Templates,
        edition: i64,
        email: &DigestEmail,
        themes: &[ThemeSlug],
    ) -> Result<Encoded> {
        let own = || render::render(templates, email).map(|r| Encoded::encode(&r));
        if values(email)
            .iter()
            .any(|v| v.contains(['&', '<', '>', '"', '\'']))
        {
            return own();
        }
        let key = (edition, email.language.to_owned(), themes.to_vec());
        let known = self.cache.lock().expect("not poisoned").get(&key).cloned();
        match known {
            Some(Some(generic)) => generic.personalize(email),
            Some(None) => own(),
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
                let (entry, direct) = match checked {
                    Some(true) => (Some(Arc::new(Packed::pack(&generic()?))), None),
                    Some(false) => (None, None),
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
                        (same.then(|| Arc::new(Packed::pack(&generic))), Some(direct))
                    }
                };
                self.cache
                    .lock()
                    .expect("not poisoned")
                    .insert(key, entry.clone());
                match (entry, direct) {
                    (Some(generic), _) => generic.personalize(email),
                    (None, Some(direct)) => Ok(Encoded::encode(&direct)),
                    (None, None) => own(),
                }
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
    let mut found: Vec<(usize, u8)> = MARKERS
        .iter()
        .zip(0u8..)
        .flat_map(|(marker, which)| s.match_indices(marker).map(move |(at, _)| (at, which)))
        .collect();
    found.sort_unstable();
    found
}

/// `s` with the markers found at `marks` replaced by the subscriber's values.
fn fill(s: &str, marks: &[(usize, u8)], email: &DigestEmail) -> String {
    let values = values(email);
    let mut out = String::with_capacity(s.len() + 256);
    let mut from = 0;
    for &(at, which) in marks {
        let which = usize::from(which);
        out.push_str(&s[from..at]);
        out.push_str(values[which]);
        from = at + MARKERS[which].len();
    }
    out.push_str(&s[from..]);
    out
}

/// The three values of `email`, as [`MARKERS`] orders them.
fn values<'e>(email: &'e DigestEmail) -> [&'e str; 3] {
    [
        email.recipient,
        &email.links.preferences,
        &email.links.unsubscribe,
    ]
}

/// A rendering with markers, as its encoded parts cut where the values go.
struct Packed {
    subject: String,
    html: Part,
    text: Part,
    /// Of the encoded parts with the markers.
    fingerprint: [u8; 32],
}

/// One part, quoted-printable encoded in pieces, compressed.
struct Part {
    lz4: Vec<u8>,
    /// Its length uncompressed.
    len: usize,
    /// Where each value goes in it: (offset, which of [`MARKERS`]).
    cuts: Vec<(usize, u8)>,
}

impl Packed {
    fn pack(r: &Rendered) -> Packed {
        let (html, html_cuts) = encode_cut(&r.html);
        let (text, text_cuts) = encode_cut(&r.text);
        Packed {
            subject: r.subject.clone(),
            fingerprint: fingerprint(&[&text, &html]),
            html: Part::new(html, html_cuts),
            text: Part::new(text, text_cuts),
        }
    }

    /// The subscriber's copy.
    fn personalize(&self, email: &DigestEmail) -> Result<Encoded> {
        let values = values(email);
        let encoded = values.map(|v| {
            let mut out = Vec::with_capacity(v.len() + 8);
            encode_piece(v, &mut out);
            out
        });
        let mut parts: Vec<&[u8]> = vec![&self.fingerprint];
        parts.extend(values.iter().map(|v| v.as_bytes()));
        Ok(Encoded {
            subject: self.subject.clone(),
            html: self.html.fill(&encoded)?,
            text: self.text.fill(&encoded)?,
            fingerprint: fingerprint(&parts),
        })
    }
}

impl Part {
    fn new(encoded: Vec<u8>, cuts: Vec<(usize, u8)>) -> Part {
        Part {
            lz4: lz4_flex::block::compress(&encoded),
            len: encoded.len(),
            cuts,
        }
    }

    /// The part with the encoded `values` put in.
    fn fill(&self, values: &[Vec<u8>; 3]) -> Result<Vec<u8>> {
        let encoded = lz4_flex::block::decompress(&self.lz4, self.len)?;
        let mut out = Vec::with_capacity(self.len + values.iter().map(Vec::len).sum::<usize>() * 2);
        let mut from = 0;
        for (i, &(at, which)) in self.cuts.iter().enumerate() {
            out.extend_from_slice(&encoded[from..at]);
            let value = values[usize::from(which)].as_slice();
            // A value that ends the part needs no soft line break after it.
            let last = i + 1 == self.cuts.len() && at == encoded.len();
            out.extend_from_slice(match last {
                true => value.strip_suffix(b"=\r\n").unwrap_or(value),
                false => value,
            });
            from = at;
        }
        out.extend_from_slice(&encoded[from..]);
        Ok(out)
    }
}

/// `s` (with markers) with CRLF line ends, quoted-printable encoded in
/// pieces that end where a marker was, and where each marker was.
fn encode_cut(s: &str) -> (Vec<u8>, Vec<(usize, u8)>) {
    let s = crlf(s);
    let mut out = Vec::with_capacity(s.len() + s.len() / 8);
    let mut cuts = Vec::new();
    let mut from = 0;
    for (at, which) in marks(&s) {
        encode_piece(&s[from..at], &mut out);
        cuts.push((out.len(), which));
        from = at + MARKERS[usize::from(which)].len();
    }
    out.extend_from_slice(&quoted_printable::encode(&s[from..]));
    (out, cuts)
}

/// Appends `piece` quoted-printable encoded, ending in a soft line break
/// unless it ends a line, so that what comes next starts a line. Lines
/// are kept to 75 characters so that the `=` fits in 76.
pub(super) fn encode_piece(piece: &str, out: &mut Vec<u8>) {
    if piece.is_empty() {
        return;
    }
    let options = quoted_printable::Options::default()
        .line_length_limit(75)
        .input_mode(quoted_printable::InputMode::Text);
    out.extend_from_slice(quoted_printable::encode_with_options(piece, options).as_bytes());
    if !piece.ends_with("\r\n") {
        out.extend_from_slice(b"=\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `generic` with its markers replaced by `values`, the way a copy is
    /// made, decoded again.
    fn copy(generic: &str, values: [&str; 3]) -> (Vec<u8>, String) {
        let (encoded, cuts) = encode_cut(generic);
        let part = Part::new(encoded, cuts);
        let values = values.map(|v| {
            let mut out = Vec::new();
            encode_piece(v, &mut out);
            out
        });
        let filled = part.fill(&values).unwrap();
        let decoded =
            quoted_printable::decode(&filled, quoted_printable::ParseMode::Strict).unwrap();
        (filled, String::from_utf8(decoded).unwrap())
    }

    #[test]
    fn a_copy_decodes_to_the_rendering_with_the_values_and_keeps_lines_short() {
        let long_link = format!("https://exempel.se/preferences/{}", "a1b2".repeat(40));
        let cases = [
            format!("Hej {RECIPIENT}!\nLänk: {PREFERENCES}\n\n{UNSUBSCRIBE}"),
            format!("{RECIPIENT}{PREFERENCES}{UNSUBSCRIBE}"),
            format!("{}{RECIPIENT} \n{}", "x".repeat(74), "å".repeat(60)),
            format!("<a href=\"{UNSUBSCRIBE}\">avsluta</a>   \r\n= {PREFERENCES}\r"),
            format!("trailing space before a marker {RECIPIENT}. {UNSUBSCRIBE} "),
        ];
        for generic in &cases {
            for values in [
                [
                    "åsa@exempel.se",
                    long_link.as_str(),
                    "https://e.se/u?a=1&b=2",
                ],
                ["a@b.se", "https://e.se/p", "https://e.se/u"],
            ] {
                let (filled, decoded) = copy(generic, values);
                let want = crlf(generic)
                    .replace(RECIPIENT, values[0])
                    .replace(PREFERENCES, values[1])
                    .replace(UNSUBSCRIBE, values[2]);
                assert_eq!(decoded, want, "{generic:?}");
                let text = String::from_utf8(filled).unwrap();
                for line in text.split("\r\n") {
                    assert!(line.len() <= 76, "{} characters: {line:?}", line.len());
                    assert!(line.is_ascii() && !line.contains('\n') && !line.contains('\r'));
                }
            }
        }
    }
}
