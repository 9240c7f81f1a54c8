//! Digest emails joined from pieces, so that the cost of one message does
//! not depend on how many different emails an edition has.
//!
//! Rendering the HTML part (tera, then CSS inlining, which parses the
//! whole page) is the dearest part of sending. Readers who choose their
//! themes in their own order get emails that share every story but few
//! whole pages, so this module renders each *piece* once per edition and
//! language, with the CSS already inlined and the quoted-printable
//! encoding already applied: each theme's heading, each story's card, each
//! theme's closing lines, and the frame around them (the header with the
//! lead story, the footer). A reader's HTML part is those pieces joined in
//! their order with their own values put in: address, links, subject,
//! story count, preheader, theme names and "N more" counts.
//!
//! Where the template may be cut is the template's to say: the built-in
//! `digest.html` marks each place with `{{ cut | safe }}`, which renders
//! as nothing in an ordinary rendering. The pieces come from *probe*
//! renderings in which each cut is an HTML comment and each reader's value
//! a marker; a marker is filled in escaped as the CSS inliner's serializer
//! escapes text or an attribute there.
//!
//! Nothing here is trusted blindly. A language's pieces are used only if
//! the probe cuts where expected, every story's card and every heading is
//! the same wherever it stands, and the first readers of the language in
//! each edition get byte for byte the HTML part an ordinary rendering
//! gives (checked by rendering them whole as well). Otherwise the edition
//! falls back, for that language, to rendering each audience whole
//! ([`Segments`]) and says so once in the log.
//!
//! The plain-text part is joined the same way from the same cuts in
//! `digest.txt`. Its `wrap` filter reflows a paragraph around the values
//! in it, so a probe renders the text with each wrap marked rather than
//! done; a wrap without a reader's value is done at once, one with a
//! value when the reader's email is joined, with the same function. A
//! text template without cuts is rendered whole for each reader.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Result;

use super::render::{self, DigestEmail, Facts, Outline, Probe, Section, Templates};
use super::segments::{Segments, encode_piece};
use crate::mail::message::{Encoded, crlf, fingerprint};
use crate::model::ThemeSlug;
use crate::store::StoredStory;
use crate::templates::wrap;

/// What a probe puts where the template allows a cut.
const CUT: &str = "<!--tidings-cut-4e1f8a-->";
const RECIPIENT: &str = "tidings-recipient-4e1f8a@example.invalid";
const PREFERENCES: &str = "https://tidings-preferences-4e1f8a.invalid/p";
const UNSUBSCRIBE: &str = "https://tidings-unsubscribe-4e1f8a.invalid/u";
const SUBJECT: &str = "tidings-subject-4e1f8a";
const SUMMARY: &str = "tidings-summary-4e1f8a";
const THEMES: &str = "tidings-themes-4e1f8a";
/// Numbers stand in for the numbers: a template may compare them.
const COUNT: usize = 7_318_262_519;
const MORE: usize = 6_174_901_353;
/// How many readers of each language in each edition are also rendered
/// whole and compared before the pieces are trusted alone.
const VERIFY: usize = 3;

/// A reader's value that a piece leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Recipient,
    Preferences,
    Unsubscribe,
    Subject,
    Summary,
    Themes,
    Count,
    More,
}

const VALUES: [Value; 8] = [
    Value::Recipient,
    Value::Preferences,
    Value::Unsubscribe,
    Value::Subject,
    Value::Summary,
    Value::Themes,
    Value::Count,
    Value::More,
];

impl Value {
    fn marker(self) -> String {
        match self {
            Value::Recipient => RECIPIENT.to_owned(),
            Value::Preferences => PREFERENCES.to_owned(),
            Value::Unsubscribe => UNSUBSCRIBE.to_owned(),
            Value::Subject => SUBJECT.to_owned(),
            Value::Summary => SUMMARY.to_owned(),
            Value::Themes => THEMES.to_owned(),
            Value::Count => COUNT.to_string(),
            Value::More => MORE.to_string(),
        }
    }
}

/// An edition's id and a language: one set of pieces.
type LayoutKey = (i64, String);

/// The pieces of every edition and language delivered so far.
#[derive(Default)]
pub struct Pieces {
    layouts: Mutex<HashMap<LayoutKey, Arc<OnceLock<Layout>>>>,
    /// The fallback: each audience rendered whole.
    segments: Segments,
}

/// One edition's pieces in one language, or why there are none.
enum Layout {
    Cut(Box<Cut>),
    Whole,
}

struct Cut {
    opens: HashMap<ThemeSlug, Both>,
    cards: HashMap<String, Both>,
    /// Per theme: its closing lines with nothing more, and with more.
    closes: HashMap<ThemeSlug, [Both; 2]>,
    /// Whether the plain-text template is cut too (else each reader's
    /// text part is rendered whole).
    text_cut: bool,
    /// The header (with the lead story) and footer, per lead story and
    /// the conditions a template tests (one story; no preheader text).
    frames: Mutex<HashMap<FrameKey, Arc<Frame>>>,
    /// Readers compared with a whole rendering so far, and whether all
    /// were the same (`None` once one was not).
    checked: Mutex<Option<usize>>,
    /// What the text part's story cards show, made once.
    facts: Facts,
    edition: i64,
    language: String,
}

type FrameKey = (Option<String>, bool, bool);

/// What joining one reader's email gave.
enum Joined {
    Email(Encoded),
    /// This reader's values cannot be put in as they are: render theirs
    /// another way.
    NotThisOne,
    /// The template cannot be cut safely after all.
    Broken(String),
}

struct Frame {
    top: Both,
    foot: Both,
}

/// A piece of the HTML part with the same piece of the text part (none
/// when the text template is not cut).
#[derive(PartialEq)]
struct Both {
    html: Piece,
    text: Option<TextPiece>,
}

impl Both {
    fn new(html: &str, text: Option<&str>) -> Result<Both, String> {
        Ok(Both {
            html: Piece::new(html)?,
            text: text.map(TextPiece::new).transpose()?,
        })
    }

    /// Appends the piece with `values` to the HTML part and (when cut) the
    /// text part.
    fn fill(&self, html: &mut Vec<u8>, text: &mut Vec<u8>, values: &mut Values) {
        self.html.fill(html, values);
        if let Some(piece) = &self.text {
            piece.fill(text, values);
        }
    }
}

impl Pieces {
    /// `email` rendered and encoded: its HTML part joined from pieces where
    /// the templates allow it, else from its audience's rendering.
    /// `stories` are the edition's, `themes` the reader's.
    pub fn render(
        &self,
        templates: &Templates,
        edition: i64,
        email: &DigestEmail,
        stories: &[StoredStory],
        themes: &[ThemeSlug],
    ) -> Result<Encoded> {
        let layout = {
            let key = (edition, email.language.to_owned());
            let mut layouts = self.layouts.lock().expect("not poisoned");
            layouts.entry(key).or_default().clone()
        };
        let layout = layout.get_or_init(|| Layout::new(templates, edition, email, stories));
        let Layout::Cut(cut) = layout else {
            return self.segments.render(templates, edition, email, themes);
        };
        let joined = match cut.join(templates, email)? {
            Joined::Email(joined) => joined,
            Joined::NotThisOne => return self.segments.render(templates, edition, email, themes),
            Joined::Broken(why) => {
                cut.give_up(templates, &why);
                return self.segments.render(templates, edition, email, themes);
            }
        };
        let verify = {
            let checked = cut.checked.lock().expect("not poisoned");
            match *checked {
                None => return self.segments.render(templates, edition, email, themes),
                Some(n) => n < VERIFY,
            }
        };
        if verify {
            let whole = render::render(templates, email)?;
            let same = decoded(&joined.html).as_deref() == Some(crlf(&whole.html).as_bytes())
                && decoded(&joined.text).as_deref() == Some(crlf(&whole.text).as_bytes())
                && joined.subject == whole.subject;
            if !same {
                cut.give_up(
                    templates,
                    "the email joined from pieces differs from a whole rendering",
                );
                return Ok(Encoded::encode(&whole));
            }
            let mut checked = cut.checked.lock().expect("not poisoned");
            *checked = checked.map(|n| n + 1);
        }
        Ok(joined)
    }
}

impl Layout {
    /// The pieces of edition `edition` in the language of `email` (whose
    /// config, digest, period, note and edition link they share), from
    /// probes showing every story of `stories` under each of its themes.
    fn new(
        templates: &Templates,
        edition: i64,
        email: &DigestEmail,
        stories: &[StoredStory],
    ) -> Layout {
        match Cut::new(templates, edition, email, stories) {
            Ok(Some(cut)) => Layout::Cut(Box::new(cut)),
            Ok(None) => {
                tracing::info!(
                    edition,
                    language = email.language,
                    template = templates.origin(render::HTML_FILE),
                    "the digest template has no `{{{{ cut | safe }}}}` marks; each audience's email is rendered whole"
                );
                Layout::Whole
            }
            Err(why) => {
                tracing::warn!(
                    edition,
                    language = email.language,
                    template = templates.origin(render::HTML_FILE),
                    reason = %why,
                    "the digest template cannot be cut into pieces safely; each audience's email is rendered whole"
                );
                Layout::Whole
            }
        }
    }
}

/// The probe rendering of `email` with `sections` and the reader's values
/// as markers.
fn probe(
    templates: &Templates,
    email: &DigestEmail,
    sections: Vec<Section<'_>>,
    lead: Option<&StoredStory>,
    (one, no_summary): (bool, bool),
    more: usize,
    facts: &Facts,
) -> Result<(String, String), String> {
    let email = DigestEmail {
        sections,
        recipient: RECIPIENT,
        links: render::Links {
            preferences: PREFERENCES.to_owned(),
            unsubscribe: UNSUBSCRIBE.to_owned(),
            edition: email.links.edition.clone(),
        },
        ..*email
    };
    let probe = Probe {
        cut: CUT,
        lead,
        subject: SUBJECT,
        story_count: if one { 1 } else { COUNT },
        summary: if no_summary { "" } else { SUMMARY },
        themes: THEMES,
        more,
    };
    render::render_probe(templates, &email, &probe, facts).map_err(|e| format!("{e:#}"))
}

impl Cut {
    /// `Ok(None)` when the template has no cuts; `Err` says why the
    /// pieces cannot be trusted.
    fn new(
        templates: &Templates,
        edition: i64,
        email: &DigestEmail,
        stories: &[StoredStory],
    ) -> Result<Option<Cut>, String> {
        // Every theme with stories, each with all of them: every piece a
        // reader can get. Once in the site's order with nothing more, once
        // reversed with more, so that each piece is seen in two places.
        let all: Vec<Section> = email
            .config
            .themes
            .iter()
            .map(|theme| Section {
                theme,
                stories: stories
                    .iter()
                    .filter(|s| s.story.themes.contains(&theme.slug))
                    .collect(),
                more: 0,
            })
            .filter(|s| !s.stories.is_empty())
            .collect();
        let reversed: Vec<Section> = all.iter().rev().cloned().collect();
        let facts = Facts::new(email.config, email.language, stories);
        let (mut opens, mut cards) = (HashMap::new(), HashMap::new());
        let mut closes: HashMap<ThemeSlug, Vec<Both>> = HashMap::new();
        let mut text_cut = true;
        for (sections, more) in [(all, 0), (reversed, MORE)] {
            let (html, text) = probe(
                templates,
                email,
                sections.clone(),
                None,
                (false, false),
                more,
                &facts,
            )?;
            let want = 3 + sections.iter().map(|s| s.stories.len() + 2).sum::<usize>();
            let Some(parts) = cut(&html, want, "HTML")? else {
                return Ok(None);
            };
            let texts = cut(&text, want, "plain-text")?;
            // Both probes render the same template: it has cuts in both or
            // in neither (were it otherwise, the pieces would differ and
            // `same` would refuse them).
            text_cut &= texts.is_some();
            let text = |at: usize| texts.as_ref().map(|t| t[at]);
            let mut at = 2;
            for section in &sections {
                let slug = &section.theme.slug;
                let piece = Both::new(parts[at], text(at))?;
                same(&mut opens, slug.clone(), piece, "a theme's heading")?;
                at += 1;
                for story in &section.stories {
                    let piece = Both::new(parts[at], text(at))?;
                    same(&mut cards, story.id.as_str().to_owned(), piece, "a story")?;
                    at += 1;
                }
                closes
                    .entry(slug.clone())
                    .or_default()
                    .push(Both::new(parts[at], text(at))?);
                at += 1;
            }
        }
        if !text_cut {
            tracing::info!(
                edition,
                language = email.language,
                template = templates.origin(render::TEXT_FILE),
                "the plain-text digest template has no `{{{{ cut }}}}` marks; \
                 each reader's text part is rendered whole"
            );
        }
        let closes = closes
            .into_iter()
            .map(|(slug, pair)| {
                let [none, some]: [Both; 2] = pair
                    .try_into()
                    .map_err(|_| format!("theme {slug}: its closing lines were not seen twice"))?;
                Ok((slug, [none, some]))
            })
            .collect::<Result<_, String>>()?;
        Ok(Some(Cut {
            opens,
            cards,
            closes,
            text_cut,
            frames: Mutex::default(),
            checked: Mutex::new(Some(0)),
            facts,
            edition,
            language: email.language.to_owned(),
        }))
    }

    /// The frame for `key`, made by a probe with no sections.
    fn frame(
        &self,
        templates: &Templates,
        email: &DigestEmail,
        lead: Option<&StoredStory>,
        key: FrameKey,
    ) -> Result<Arc<Frame>, String> {
        if let Some(frame) = self.frames.lock().expect("not poisoned").get(&key) {
            return Ok(frame.clone());
        }
        let (html, text) = probe(
            templates,
            email,
            Vec::new(),
            lead,
            (key.1, key.2),
            0,
            &self.facts,
        )?;
        let Some(parts) = cut(&html, 3, "HTML")? else {
            return Err("the HTML of an email without themes has no cuts".into());
        };
        let texts = cut(&text, 3, "plain-text")?.filter(|_| self.text_cut);
        let text = |at: usize| texts.as_ref().map(|t| t[at]);
        let frame = Arc::new(Frame {
            top: Both::new(
                &format!("{}{}", parts[0], parts[1]),
                texts
                    .as_ref()
                    .map(|t| format!("{}{}", t[0], t[1]))
                    .as_deref(),
            )?,
            foot: Both::new(parts[2], text(2))?,
        });
        self.frames
            .lock()
            .expect("not poisoned")
            .insert(key, frame.clone());
        Ok(frame)
    }

    /// Stops joining this edition's emails in this language, saying why
    /// in the log the first time.
    fn give_up(&self, templates: &Templates, why: &str) {
        let mut checked = self.checked.lock().expect("not poisoned");
        if checked.take().is_some() {
            tracing::warn!(
                edition = self.edition,
                language = self.language,
                template = templates.origin(render::HTML_FILE),
                reason = why,
                "the digest template cannot be cut into pieces safely; \
                 this edition's emails in this language are rendered whole"
            );
        }
    }

    /// The reader's email joined from the pieces.
    fn join(&self, templates: &Templates, email: &DigestEmail) -> Result<Joined> {
        let outline = Outline::of(email);
        let subject = render::subject(templates, email, &outline)?;
        let Some(mut values) = Values::new([
            email.recipient,
            &email.links.preferences,
            &email.links.unsubscribe,
            &subject,
            &outline.summary,
            &outline.themes.join(", "),
        ]) else {
            return Ok(Joined::NotThisOne);
        };
        values.count = outline.story_count.to_string();
        let key: FrameKey = (
            outline.lead.map(|l| l.id.as_str().to_owned()),
            outline.story_count == 1,
            outline.summary.is_empty(),
        );
        let frame = match self.frame(templates, email, outline.lead, key.clone()) {
            Ok(frame) => frame,
            Err(why) => return Ok(Joined::Broken(why)),
        };
        let mut html = Vec::with_capacity(64 * 1024);
        let mut text = Vec::with_capacity(if self.text_cut { 16 * 1024 } else { 0 });
        let mut ids: Vec<&[u8]> = Vec::new();
        frame.top.fill(&mut html, &mut text, &mut values);
        for section in &email.sections {
            let others: Vec<&StoredStory> = section
                .stories
                .iter()
                .copied()
                .filter(|s| outline.lead.is_none_or(|l| l.id != s.id))
                .collect();
            if others.is_empty() {
                continue;
            }
            let slug = &section.theme.slug;
            let (Some(open), Some(close)) = (self.opens.get(slug), self.closes.get(slug)) else {
                return Ok(Joined::Broken(format!("no piece for theme {slug}")));
            };
            open.fill(&mut html, &mut text, &mut values);
            for story in others {
                let Some(card) = self.cards.get(story.id.as_str()) else {
                    return Ok(Joined::Broken(format!("no piece for story {}", story.id)));
                };
                card.fill(&mut html, &mut text, &mut values);
                ids.push(story.id.as_str().as_bytes());
            }
            values.more = section.more.to_string();
            close[usize::from(section.more > 0)].fill(&mut html, &mut text, &mut values);
            ids.push(slug.as_str().as_bytes());
        }
        frame.foot.fill(&mut html, &mut text, &mut values);
        for part in [&mut html, &mut text] {
            if part.ends_with(b"=\r\n") {
                part.truncate(part.len() - 3);
            }
        }
        if !self.text_cut {
            let whole = render::render_text(templates, email, &self.facts)?;
            text = quoted_printable::encode(crlf(&whole).as_bytes());
        }
        // What the parts are made from names them (the boundary needs no
        // more than that: the same message, the same bytes), without
        // hashing the tens of kilobytes made from it.
        let lead = key.0.unwrap_or_default();
        let mut parts: Vec<&[u8]> = vec![lead.as_bytes(), values.count.as_bytes()];
        parts.extend(values.raw.iter().map(|v| v.as_bytes()));
        parts.extend(ids);
        Ok(Joined::Email(Encoded {
            subject,
            fingerprint: fingerprint(&parts),
            text,
            html,
        }))
    }
}

/// Records `piece` as the piece `key` of `pieces`, or says it differs
/// from the piece already seen there.
fn same<K: std::hash::Hash + Eq + std::fmt::Display>(
    pieces: &mut HashMap<K, Both>,
    key: K,
    piece: Both,
    what: &str,
) -> Result<(), String> {
    match pieces.get(&key) {
        Some(seen) if *seen != piece => Err(format!(
            "{what} ({key}) renders differently depending on where it stands"
        )),
        Some(_) => Ok(()),
        None => {
            pieces.insert(key, piece);
            Ok(())
        }
    }
}

/// `rendered` split at the cuts into the `want` pieces expected; `None`
/// when it has no cuts at all.
fn cut<'r>(rendered: &'r str, want: usize, what: &str) -> Result<Option<Vec<&'r str>>, String> {
    let parts: Vec<&str> = rendered.split(CUT).collect();
    match parts.len() {
        1 => Ok(None),
        n if n == want => Ok(Some(parts)),
        n => Err(format!(
            "expected {want} pieces of the {what} part, the template gave {n}"
        )),
    }
}

/// A piece of the HTML part, quoted-printable encoded, cut where the
/// reader's values go.
#[derive(PartialEq)]
struct Piece {
    encoded: Vec<u8>,
    /// (offset in `encoded`, the value, whether inside an attribute).
    cuts: Vec<(usize, Value, bool)>,
}

impl Piece {
    fn new(html: &str) -> Result<Piece, String> {
        let html = crlf(html);
        let found = markers(&html);
        let mut encoded = Vec::with_capacity(html.len() + html.len() / 8);
        let mut cuts = Vec::with_capacity(found.len());
        let mut from = 0;
        for (at, value, len) in found {
            if at < from {
                return Err("two of the reader's values overlap".into());
            }
            let attr = context(&html[..at])?;
            encode_piece(&html[from..at], &mut encoded);
            cuts.push((encoded.len(), value, attr));
            from = at + len;
        }
        encode_piece(&html[from..], &mut encoded);
        Ok(Piece { encoded, cuts })
    }

    fn fill(&self, out: &mut Vec<u8>, values: &mut Values) {
        let mut from = 0;
        for &(at, value, attr) in &self.cuts {
            out.extend_from_slice(&self.encoded[from..at]);
            let mode = if attr { Mode::Attribute } else { Mode::Text };
            out.extend_from_slice(values.encoded(value, mode));
            from = at;
        }
        out.extend_from_slice(&self.encoded[from..]);
    }
}

/// Whether a value after `before` (serialized HTML) stands in an
/// attribute (`true`) or in text (`false`); an error where the serializer
/// writes it unescaped (a comment, a style or script element).
fn context(before: &str) -> Result<bool, String> {
    let open = before.rfind('<');
    let close = before.rfind('>');
    if open > close {
        return Ok(true);
    }
    let lower = |s: &str| s.to_ascii_lowercase();
    let before_lower = lower(&before[before.len().saturating_sub(64 * 1024)..]);
    if before_lower.rfind("<!--") > before_lower.rfind("-->") {
        return Err("a reader's value stands in an HTML comment".into());
    }
    for raw in [
        "style", "script", "noscript", "xmp", "iframe", "noembed", "noframes",
    ] {
        if before_lower.rfind(&format!("<{raw}")) > before_lower.rfind(&format!("</{raw}")) {
            return Err(format!("a reader's value stands in a <{raw}> element"));
        }
    }
    Ok(false)
}

/// How a reader's value is written where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// In HTML text: escaped as text.
    Text,
    /// In an HTML attribute: escaped as an attribute value.
    Attribute,
    /// In the plain-text part: as it is.
    Plain,
}

/// One reader's values, escaped and encoded once each as needed.
struct Values {
    /// As [`VALUES`] orders the first six.
    raw: [String; 6],
    count: String,
    more: String,
    encoded: [[Option<Vec<u8>>; 3]; 8],
}

impl Values {
    fn new(raw: [&str; 6]) -> Option<Values> {
        // Text the HTML parser would change (line ends, control
        // characters) cannot be put in as it is.
        if raw.iter().any(|v| v.chars().any(char::is_control)) {
            return None;
        }
        Some(Values {
            raw: raw.map(str::to_owned),
            count: String::new(),
            more: String::new(),
            encoded: Default::default(),
        })
    }

    fn raw(&self, value: Value) -> &str {
        match value {
            Value::Count => &self.count,
            Value::More => &self.more,
            _ => &self.raw[VALUES.iter().position(|v| *v == value).expect("a value")],
        }
    }

    fn encoded(&mut self, value: Value, mode: Mode) -> &[u8] {
        let index = VALUES.iter().position(|v| *v == value).expect("a value");
        let slot = mode as usize;
        if value == Value::More {
            // Differs per theme: never kept.
            self.encoded[index][slot] = None;
        }
        if self.encoded[index][slot].is_none() {
            let raw = self.raw(value);
            let mut out = Vec::with_capacity(raw.len() + 8);
            match mode {
                Mode::Text => encode_piece(&escape(raw, false), &mut out),
                Mode::Attribute => encode_piece(&escape(raw, true), &mut out),
                Mode::Plain => encode_piece(raw, &mut out),
            }
            self.encoded[index][slot] = Some(out);
        }
        self.encoded[index][slot].as_deref().expect("just made")
    }
}

/// A piece of the plain-text part: quoted-printable encoded, cut where a
/// reader's value goes as it is and where a paragraph that the `wrap`
/// filter reflows holds one, to be wrapped once the value is in.
#[derive(Debug, PartialEq)]
struct TextPiece {
    encoded: Vec<u8>,
    gaps: Vec<(usize, Run)>,
}

/// Plain text as a probe rendered it, with its wraps (see
/// [`crate::templates::marking_wraps`]) and the reader's values found.
#[derive(Debug, PartialEq)]
enum Run {
    Text(String),
    Value(Value),
    Wrap(usize, Vec<Run>),
}

impl TextPiece {
    /// The piece of a probe's plain text `text`. A wrap without a reader's
    /// value in it is wrapped now.
    fn new(text: &str) -> Result<TextPiece, String> {
        use crate::templates::{WRAP_CLOSE, WRAP_OPEN, WRAP_WIDTH};
        // The runs of each wrap being read, outermost first, with its width.
        let mut open: Vec<(usize, Vec<Run>)> = vec![(0, Vec::new())];
        let mut rest = text;
        while let Some(at) = rest.find([WRAP_OPEN, WRAP_CLOSE]) {
            let runs = &mut open.last_mut().expect("the outermost").1;
            add_text(runs, &rest[..at]);
            if rest[at..].starts_with(WRAP_OPEN) {
                let after = &rest[at + WRAP_OPEN.len_utf8()..];
                let (width, after) = after
                    .split_once(WRAP_WIDTH)
                    .ok_or("a wrap of the plain text has no width")?;
                let width = width
                    .parse()
                    .map_err(|_| format!("a wrap of the plain text has the width {width:?}"))?;
                open.push((width, Vec::new()));
                rest = after;
            } else {
                rest = &rest[at + WRAP_CLOSE.len_utf8()..];
                if open.len() == 1 {
                    return Err("a wrap of the plain text ends where none began".into());
                }
                let (width, inner) = open.pop().expect("a wrap");
                let runs = &mut open.last_mut().expect("the outermost").1;
                match &inner[..] {
                    [] => {}
                    [Run::Text(text)] => add_text(runs, &wrap(text, width)),
                    _ => runs.push(Run::Wrap(width, inner)),
                }
            }
        }
        let (_, mut runs) = open.pop().expect("the outermost");
        if !open.is_empty() {
            return Err("a wrap of the plain text does not end in its piece".into());
        }
        add_text(&mut runs, rest);
        let mut encoded = Vec::with_capacity(text.len() + text.len() / 8);
        let mut gaps = Vec::new();
        for run in runs {
            match run {
                Run::Text(text) => encode_piece(&crlf(&text), &mut encoded),
                gap => gaps.push((encoded.len(), gap)),
            }
        }
        Ok(TextPiece { encoded, gaps })
    }

    fn fill(&self, out: &mut Vec<u8>, values: &mut Values) {
        let mut from = 0;
        for (at, gap) in &self.gaps {
            out.extend_from_slice(&self.encoded[from..*at]);
            match gap {
                Run::Value(value) => out.extend_from_slice(values.encoded(*value, Mode::Plain)),
                run => {
                    let mut text = String::with_capacity(256);
                    flatten(std::slice::from_ref(run), values, &mut text);
                    encode_piece(&crlf(&text), out);
                }
            }
            from = *at;
        }
        out.extend_from_slice(&self.encoded[from..]);
    }
}

/// Where a probe's `text` holds a reader's value: (offset, the value, the
/// marker's length), in order.
fn markers(text: &str) -> Vec<(usize, Value, usize)> {
    let mut found: Vec<(usize, Value, usize)> = Vec::new();
    for value in VALUES {
        let marker = value.marker();
        found.extend(
            text.match_indices(&marker)
                .map(|(at, m)| (at, value, m.len())),
        );
    }
    found.sort_unstable_by_key(|&(at, _, _)| at);
    found
}

/// Appends `text` to `runs`, each reader's value in it as a run of its own.
fn add_text(runs: &mut Vec<Run>, text: &str) {
    let found = markers(text);
    let push = |runs: &mut Vec<Run>, text: &str| {
        if text.is_empty() {
            return;
        }
        match runs.last_mut() {
            Some(Run::Text(last)) => last.push_str(text),
            _ => runs.push(Run::Text(text.to_owned())),
        }
    };
    let mut from = 0;
    for (at, value, len) in found {
        if at < from {
            continue;
        }
        push(runs, &text[from..at]);
        runs.push(Run::Value(value));
        from = at + len;
    }
    push(runs, &text[from..]);
}

/// `runs` with the reader's values put in and wrapped where they say,
/// appended to `out`.
fn flatten(runs: &[Run], values: &Values, out: &mut String) {
    for run in runs {
        match run {
            Run::Text(text) => out.push_str(text),
            Run::Value(value) => out.push_str(values.raw(*value)),
            Run::Wrap(width, inner) => {
                let mut text = String::with_capacity(256);
                flatten(inner, values, &mut text);
                out.push_str(&wrap(&text, *width));
            }
        }
    }
}

/// `text` escaped as the CSS inliner's serializer escapes text (`&`, `<`,
/// `>`, no-break space) or an attribute value (`&`, `"`, no-break space).
fn escape(text: &str, attr: bool) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '\u{a0}' => out.push_str("&nbsp;"),
            '"' if attr => out.push_str("&quot;"),
            '<' if !attr => out.push_str("&lt;"),
            '>' if !attr => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `encoded` quoted-printable decoded, strictly.
fn decoded(encoded: &[u8]) -> Option<Vec<u8>> {
    quoted_printable::decode(encoded, quoted_printable::ParseMode::Strict).ok()
}

impl Pieces {
    /// Whether the emails of `edition` in `language` are joined from
    /// pieces (rather than rendered whole), as far as delivered so far:
    /// `None` when not, else whether their text parts are joined too.
    pub fn joined(&self, edition: i64, language: &str) -> Option<bool> {
        let layouts = self.layouts.lock().expect("not poisoned");
        let Some(Layout::Cut(cut)) = layouts
            .get(&(edition, language.to_owned()))
            .and_then(|l| l.get())
        else {
            return None;
        };
        let checked = cut.checked.lock().expect("not poisoned").is_some();
        checked.then_some(cut.text_cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::compose;
    use crate::fixtures::{site, story};
    use crate::mail::message::Encoded;

    /// Six themes, at most three stories of a theme per email.
    const EXTRA: &str = r#"max_stories_per_theme = 3

[[themes]]
slug = "vatten"
title = { sv = "Vatten & avlopp", en = "Water & sewage" }

[[themes]]
slug = "skola"
title = { sv = "Skola", en = "School" }

[[themes]]
slug = "halsa"
title = { sv = "Hälsa \"och\" vård", en = "Health <care>" }

[[themes]]
slug = "kultur"
title = { sv = "Kultur", en = "Culture" }
"#;

    const THEMES: [&str; 6] = [
        "miljo-och-klimat",
        "lokal-demokrati",
        "vatten",
        "skola",
        "halsa",
        "kultur",
    ];

    /// A small deterministic generator, so that a failure repeats.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) % n as u64) as usize
        }
    }

    /// 26 stories, newest first, with awkward titles and summaries, some
    /// featured, some without image or summary or in another language.
    fn stories(rng: &mut Lcg) -> Vec<StoredStory> {
        let titles = [
            "Tom & Jerry <b>i</b> \"Kisumu\"",
            "Växjö och An Giang vässar demokratin",
            "’Citat’ och 'enkla' fnuttar",
            "Ett\u{a0}hårt mellanslag",
            "Vatten > avlopp < skola",
        ];
        let mut out: Vec<StoredStory> = (0..26)
            .map(|i| {
                let n = 1 + rng.next(3);
                let mut themes: Vec<&str> = Vec::new();
                while themes.len() < n {
                    let t = THEMES[rng.next(THEMES.len())];
                    if !themes.contains(&t) {
                        themes.push(t);
                    }
                }
                let title = format!("{} {i}", titles[i % titles.len()]);
                let mut s = story(&format!("story-{i}"), &title, &themes, 1 + (i as u32 % 28));
                s.story.published += chrono::Duration::minutes(i as i64);
                if i % 7 == 3 {
                    s.story.image = None;
                }
                if i % 5 == 2 {
                    s.story.summary = String::new();
                }
                if i % 6 == 1 {
                    s.story.summary = format!("Sammanfattning & <mer> \"{i}\"\u{a0}slut");
                }
                if i % 9 == 4 {
                    s.story.featured = true;
                }
                if i % 8 == 5 {
                    s.story.language = Some(crate::model::Language::parse("en").unwrap());
                }
                s
            })
            .collect();
        out.sort_by(|a, b| {
            (b.story.published, a.id.as_str()).cmp(&(a.story.published, b.id.as_str()))
        });
        out
    }

    /// Every reader's email from `pieces` decodes to what an ordinary
    /// rendering gives; returns whether each language was joined.
    fn compare(site_templates: Option<&str>) -> Vec<Option<bool>> {
        compare_both(site_templates, None)
    }

    /// [`compare`] with a site's own text template as well.
    fn compare_both(site_html: Option<&str>, site_text: Option<&str>) -> Vec<Option<bool>> {
        let site = site(EXTRA);
        let dir = site.dir.path().join("templates");
        for (name, copy) in [("digest.html", site_html), ("digest.txt", site_text)] {
            if let Some(copy) = copy {
                fs_err::create_dir_all(&dir).unwrap();
                fs_err::write(dir.join(name), copy).unwrap();
            }
        }
        let config = &site.config;
        let templates = Templates::load(config).unwrap();
        let mut rng = Lcg(17);
        let stories = stories(&mut rng);
        let digest = config.digest(None).unwrap();
        let pieces = Pieces::default();
        let recipients = ["anna@example.se", "o'brien+x@example.se", "b&b@example.se"];
        let mut joined = Vec::new();
        for language in ["sv", "en"] {
            for reader in 0..80 {
                let n = 1 + rng.next(4);
                let mut themes: Vec<ThemeSlug> = Vec::new();
                while themes.len() < n {
                    let t = ThemeSlug::parse(THEMES[rng.next(THEMES.len())]).unwrap();
                    if !themes.contains(&t) {
                        themes.push(t);
                    }
                }
                let sections = compose::sections(config, digest, &themes, &stories);
                let email = DigestEmail {
                    config,
                    digest,
                    language,
                    period: "mars 2024",
                    sections,
                    links: render::Links {
                        preferences: format!("https://e.example/preferences/?t=a{reader}&u=\"1\""),
                        unsubscribe: format!("https://e.example/unsubscribe/{reader}"),
                        edition: "https://e.example/archive/monthly/1".into(),
                    },
                    recipient: recipients[reader % recipients.len()],
                    note: None,
                    test: false,
                    web: false,
                };
                let got = pieces
                    .render(&templates, 1, &email, &stories, &themes)
                    .unwrap();
                let want = Encoded::encode(&render::render(&templates, &email).unwrap());
                assert_eq!(got.subject, want.subject);
                let html = String::from_utf8(decoded(&got.html).unwrap()).unwrap();
                let want_html = String::from_utf8(decoded(&want.html).unwrap()).unwrap();
                assert_eq!(html, want_html, "reader {reader} ({language}, {themes:?})");
                let text = String::from_utf8(decoded(&got.text).unwrap()).unwrap();
                let want_text = String::from_utf8(decoded(&want.text).unwrap()).unwrap();
                assert_eq!(text, want_text, "reader {reader} ({language}, {themes:?})");
                for line in got
                    .html
                    .split(|b| *b == b'\n')
                    .chain(got.text.split(|b| *b == b'\n'))
                {
                    assert!(line.len() <= 77, "{}", String::from_utf8_lossy(line));
                }
            }
            joined.push(pieces.joined(1, language));
        }
        joined
    }

    #[test]
    fn joined_emails_are_what_a_whole_rendering_gives_for_readers_in_their_own_order() {
        assert_eq!(compare(None), [Some(true), Some(true)]);
    }

    #[test]
    fn a_site_copy_that_keeps_the_cuts_is_joined_too() {
        let html = crate::templates::built_in("digest.html")
            .unwrap()
            .replace("#f2f2ef", "#fafafa")
            .replace(
                r#"<p class="more">"#,
                r#"<p class="more" data-theme-free="yes">"#,
            );
        assert_eq!(compare(Some(&html)), [Some(true), Some(true)]);
    }

    #[test]
    fn a_site_text_template_is_joined_with_its_wraps_done_around_the_values() {
        let built_in = crate::templates::built_in("digest.txt").unwrap();
        // The links inside wrapped paragraphs, a wrap inside a wrap, and a
        // narrow wrap around the "N more" line.
        let reflowed = built_in
            .replace(
                "{{ words.manage | wrap }}:\n{{ links.preferences }}",
                "{% filter wrap(width=30) %}{{ words.manage }}: {{ links.preferences }} \
                 {{ recipient }} {{ 'a b c d e f' | wrap(width=3) }}{% endfilter %}",
            )
            .replace(
                "{% filter wrap %}{{ section.more }}",
                "{% filter wrap(width=12) %}{{ section.more }}",
            );
        assert_ne!(reflowed, built_in);
        assert_eq!(
            compare_both(None, Some(&reflowed)),
            [Some(true), Some(true)]
        );
        // No cuts: the HTML part is still joined, the text rendered whole.
        let uncut = built_in.replace("{{ cut }}", "");
        assert_eq!(compare_both(None, Some(&uncut)), [Some(false), Some(false)]);
        // A value changed on its way in cannot be put in: all rendered whole.
        let upper = built_in.replace(
            "{{ themes | join(sep=\", \") }}",
            "{{ themes | join(sep=\", \") | upper }}",
        );
        assert_ne!(upper, built_in);
        assert_eq!(compare_both(None, Some(&upper)), [None, None]);
    }

    #[test]
    fn templates_that_cannot_be_cut_are_rendered_whole_and_still_right() {
        let built_in = crate::templates::built_in("digest.html").unwrap();
        // No cuts at all.
        let uncut = built_in.replace("{{ cut | safe }}", "");
        assert_eq!(compare(Some(&uncut)), [None, None]);
        // A card that depends on where it stands.
        let positional = built_in.replace(
            r#"<h3 class="story-title">"#,
            r#"<h3 class="story-title" data-n="{{ loop.index }}">"#,
        );
        assert_eq!(compare(Some(&positional)), [None, None]);
        // A reader's value where it is not escaped.
        let raw = built_in.replace(
            "<!--[if mso]></td>",
            "<!-- {{ recipient }} --><!--[if mso]></td>",
        );
        assert_eq!(compare(Some(&raw)), [None, None]);
    }
}
