//! One subscriber's digest email, rendered: the subject line, the HTML part
//! (tera, then CSS inlined for mail clients) and the plain-text part.
//!
//! The caller prepares everything — which stories, in which sections, the
//! signed links, the formatted period — and this module only formats, so
//! the same [`DigestEmail`] always gives the same bytes. The templates are
//! `templates/digest.html` and `templates/digest.txt` beside config.toml
//! when the site has them (each on its own), else the ones built into
//! tidings.

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::note::Note;
use super::words::{self, Words};
use crate::config::{Config, Digest, Theme};
use crate::mail::rendered::{Rendered, inline_css, one_line};
use crate::store::StoredStory;
use crate::templates;

/// The HTML template's name (a site's copy: `templates/digest.html`).
pub const HTML_FILE: &str = "digest.html";
/// The plain-text template's name.
pub const TEXT_FILE: &str = "digest.txt";
/// The preheader shows in the inbox list next to the subject; longer text
/// is cut there anyway.
const PREHEADER_CHARS: usize = 140;

/// Both templates, parsed once and used for every subscriber.
pub struct Templates(templates::Templates);

impl Templates {
    /// The site's own `templates/digest.html` and `templates/digest.txt`
    /// next to config.toml where present (each on its own), else the
    /// built-in ones. An error names the file and says it does not parse.
    pub fn load(config: &Config) -> Result<Templates> {
        templates::Templates::load(config, &[HTML_FILE, TEXT_FILE]).map(Templates)
    }

    /// The files the templates came from, for messages.
    pub fn origin(&self, name: &str) -> String {
        self.0.origin(name)
    }
}

/// One theme of the subscriber's, with its new stories (possibly none: the
/// theme is then only named in the footer).
#[derive(Clone)]
pub struct Section<'a> {
    pub theme: &'a Theme,
    pub stories: Vec<&'a StoredStory>,
    /// New stories of the theme left out at `max_stories_per_theme`.
    pub more: usize,
}

/// The subscriber's own links, already signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    pub preferences: String,
    pub unsubscribe: String,
    /// The edition's page on the site.
    pub edition: String,
}

/// Everything one subscriber's email is made of.
pub struct DigestEmail<'a> {
    pub config: &'a Config,
    pub digest: &'a Digest,
    /// `sv` or `en`: the words, dates and titles are in it.
    pub language: &'a str,
    /// Already formatted, such as "november 2026" ([`words::period_between`]).
    pub period: &'a str,
    /// In the subscriber's theme order; a story appears in only one.
    pub sections: Vec<Section<'a>>,
    pub links: Links,
    /// The subscriber's address.
    pub recipient: &'a str,
    /// The editor's note for this edition and language, if any.
    pub note: Option<&'a Note>,
    /// Marks a test send: `[TEST]` before the subject.
    pub test: bool,
    /// The edition's page on the site rather than an email: no personal
    /// links, a sign-up box instead of the reason for the email.
    pub web: bool,
}

/// Renders one subscriber's digest.
pub fn render(templates: &Templates, email: &DigestEmail) -> Result<Rendered> {
    let mut vars = Vars::new(email);
    vars.subject = subject(templates, email, &vars.outline())?;
    let context = tera::Context::from_serialize(&vars).map_err(anyhow::Error::new)?;
    let html = render_html(templates, &context)?;
    let text = templates.0.render(TEXT_FILE, &context)?;
    Ok(Rendered {
        subject: vars.subject,
        html,
        text,
    })
}

/// The HTML template rendered with `context`, its CSS inlined.
fn render_html(templates: &Templates, context: &tera::Context) -> Result<String> {
    let html = templates.0.render(HTML_FILE, context)?;
    inline_css(&html).with_context(|| {
        format!(
            "cannot inline the CSS of {} (is its <style> valid CSS?)",
            templates.origin(HTML_FILE)
        )
    })
}

/// Only the plain-text part of `email` (the HTML part made from pieces,
/// see [`super::pieces`]).
pub fn render_text(templates: &Templates, email: &DigestEmail, facts: &Facts) -> Result<String> {
    let vars = Vars::with_lead_and(email, lead_story(&email.sections), Some(facts));
    let context = tera::Context::from_serialize(&vars).map_err(anyhow::Error::new)?;
    templates.0.render(TEXT_FILE, &context)
}

/// What of one reader's email depends on their stories rather than on the
/// edition and language: the values [`super::pieces`] fills in, and which
/// pieces it joins.
pub struct Outline<'a> {
    pub lead: Option<&'a StoredStory>,
    pub story_count: usize,
    /// The preheader's summary, shortened.
    pub summary: String,
    /// The titles of the reader's themes, in their order.
    pub themes: Vec<&'a str>,
}

impl<'a> Outline<'a> {
    /// The outline of `email`, as [`render`] would show it.
    pub fn of(email: &DigestEmail<'a>) -> Outline<'a> {
        let lead = lead_story(&email.sections);
        let not_lead = |s: &&StoredStory| lead.is_none_or(|l| l.id != s.id);
        let first_summary = lead
            .into_iter()
            .chain(
                email
                    .sections
                    .iter()
                    .flat_map(|s| s.stories.iter().copied().filter(not_lead)),
            )
            .map(|s| s.story.summary.trim())
            .find(|s| !s.is_empty())
            .unwrap_or_default();
        Outline {
            lead,
            story_count: email.sections.iter().map(|s| s.stories.len()).sum(),
            summary: shorten(first_summary, PREHEADER_CHARS),
            themes: email
                .sections
                .iter()
                .map(|s| s.theme.title.get(email.language))
                .collect(),
        }
    }
}

/// How a probe differs from an ordinary rendering: what it shows in place
/// of the reader's values, and the mark it puts where the template allows
/// a cut (`{{ cut | safe }}`).
pub struct Probe<'a> {
    pub cut: &'a str,
    pub lead: Option<&'a StoredStory>,
    pub subject: &'a str,
    pub story_count: usize,
    pub summary: &'a str,
    pub themes: &'a str,
    /// Every section's `more`.
    pub more: usize,
}

/// Both parts of `email` rendered as `probe` says: the HTML part, its CSS
/// inlined, and the plain-text part, in which the `wrap` filter marks its
/// text rather than wrapping it (see [`templates::marking_wraps`]).
pub fn render_probe(
    templates: &Templates,
    email: &DigestEmail,
    probe: &Probe,
    facts: &Facts,
) -> Result<(String, String)> {
    let mut vars = Vars::with_lead_and(email, probe.lead, Some(facts));
    vars.cut = probe.cut;
    vars.subject = probe.subject.to_owned();
    vars.story_count = probe.story_count;
    vars.preheader_summary = probe.summary.to_owned();
    vars.themes = vec![probe.themes];
    for section in &mut vars.sections {
        section.more = probe.more;
    }
    let context = tera::Context::from_serialize(&vars).map_err(anyhow::Error::new)?;
    let html = render_html(templates, &context)?;
    let text = templates::marking_wraps(|| templates.0.render(TEXT_FILE, &context))?;
    Ok((html, text))
}

/// The digest's subject template for the language, rendered with `lead`
/// (the lead story's title), `count` (the reader's new stories), `themes`
/// (the titles of the reader's themes), `period`, `site` (the site's
/// title) and `digest` (the digest's title), and made into one line. It is
/// not HTML-escaped: a header is not HTML.
pub fn subject(templates: &Templates, email: &DigestEmail, outline: &Outline) -> Result<String> {
    let lang = email.language;
    let mut context = tera::Context::new();
    context.insert("period", email.period);
    context.insert("site", &email.config.site.title);
    context.insert("digest", email.digest.title.get(lang));
    context.insert("lead", outline.lead.map_or("", |l| l.story.title.as_str()));
    context.insert("count", &outline.story_count);
    context.insert("themes", &outline.themes);
    let text = templates
        .0
        .render_str(email.digest.subject.get(lang), &context, false)
        .with_context(|| {
            format!(
                "the subject of digest `{}` in `{lang}` ([[digests]] subject) does not render",
                email.digest.id
            )
        })?;
    let text = one_line(&text);
    Ok(if email.test {
        format!("[TEST] {text}")
    } else {
        text
    })
}

/// The names the templates see.
#[derive(Serialize)]
struct Vars<'a> {
    lang: &'a str,
    subject: String,
    period: &'a str,
    words: &'static Words,
    site: SiteVars<'a>,
    digest: DigestVars<'a>,
    recipient: &'a str,
    /// The story the email leads with, shown large above the sections
    /// (and not again in its section).
    lead: Option<StoryVars<'a>>,
    #[serde(skip)]
    lead_story: Option<&'a StoredStory>,
    sections: Vec<SectionVars<'a>>,
    /// The titles of every theme the subscriber chose, in their order.
    themes: Vec<&'a str>,
    story_count: usize,
    /// The first story summary, shortened, for the inbox preview.
    preheader_summary: String,
    links: LinkVars<'a>,
    /// Name and postal address, or empty.
    organization: &'a str,
    /// The editor's note: `html` (sanitised) and `text`, or none.
    note: Option<NoteVars<'a>>,
    test: bool,
    web: bool,
    /// Where the template allows the email to be cut into pieces: nothing
    /// in an ordinary rendering (see [`super::pieces`]).
    cut: &'a str,
}

#[derive(Serialize)]
struct SiteVars<'a> {
    title: &'a str,
    url: &'a str,
    /// The logo's URL, or none.
    logo: Option<&'a str>,
    /// `#rrggbb`, and the colour of text on it (black or white, whichever
    /// reads better).
    accent: &'a str,
    accent_text: String,
    /// The accent as a link colour readable on white.
    link: String,
}

#[derive(Serialize)]
struct DigestVars<'a> {
    id: &'a str,
    title: &'a str,
}

#[derive(Serialize)]
struct NoteVars<'a> {
    html: &'a str,
    text: &'a str,
}

#[derive(Serialize)]
struct SectionVars<'a> {
    slug: &'a str,
    title: &'a str,
    url: String,
    /// Every story of the theme in this email, the lead story too (marked
    /// `lead`), so that a template that lists sections misses nothing.
    stories: Vec<StoryVars<'a>>,
    /// The same without the lead story, which the built-in templates show
    /// above the sections instead.
    others: Vec<StoryVars<'a>>,
    /// How many new stories of the theme the email leaves out.
    more: usize,
}

#[derive(Clone, Serialize)]
struct StoryVars<'a> {
    title: &'a str,
    url: &'a str,
    /// "14 mars 2024", in the site's time zone.
    date: String,
    /// "2024-03-14".
    date_iso: String,
    /// Plain text.
    summary: &'a str,
    image: Option<&'a str>,
    image_alt: &'a str,
    /// "Anna Berg och Per Ek", or empty.
    authors: String,
    /// Minutes to read the body, at least 1.
    reading_minutes: usize,
    /// The story's language tag when it differs from the email's (for a
    /// `lang` attribute), else none.
    lang: Option<&'a str>,
    featured: bool,
    /// The story the email leads with.
    lead: bool,
}

#[derive(Serialize)]
struct LinkVars<'a> {
    preferences: &'a str,
    unsubscribe: &'a str,
    edition: &'a str,
    /// The sign-up form, for a reader the email was forwarded to.
    subscribe: String,
    /// The digest's archive of editions.
    archive: String,
}

impl<'a> Vars<'a> {
    fn new(email: &'a DigestEmail<'a>) -> Vars<'a> {
        Vars::with_lead(email, lead_story(&email.sections))
    }

    /// What [`Outline::of`] gives for the email these were made of.
    fn outline(&self) -> Outline<'a> {
        Outline {
            lead: self.lead_story,
            story_count: self.story_count,
            summary: self.preheader_summary.clone(),
            themes: self.themes.clone(),
        }
    }

    fn with_lead(email: &'a DigestEmail<'a>, lead: Option<&'a StoredStory>) -> Vars<'a> {
        Vars::with_lead_and(email, lead, None)
    }

    /// With what `facts` knows of each story already made.
    fn with_lead_and(
        email: &'a DigestEmail<'a>,
        lead: Option<&'a StoredStory>,
        facts: Option<&Facts>,
    ) -> Vars<'a> {
        let config = email.config;
        let lang = email.language;
        let words = words::words(lang);
        let sections: Vec<SectionVars> = email
            .sections
            .iter()
            .map(|s| SectionVars {
                slug: s.theme.slug.as_str(),
                title: s.theme.title.get(lang),
                url: theme_page(config, s.theme),
                stories: s
                    .stories
                    .iter()
                    .map(|story| {
                        let mut vars = StoryVars::new(config, lang, words, story, facts);
                        vars.lead = lead.is_some_and(|l| l.id == story.id);
                        vars
                    })
                    .collect(),
                others: Vec::new(),
                more: s.more,
            })
            .map(|mut s| {
                s.others = s.stories.iter().filter(|v| !v.lead).cloned().collect();
                s
            })
            .collect();
        let lead_story = lead;
        let lead = lead.map(|story| StoryVars {
            lead: true,
            ..StoryVars::new(config, lang, words, story, facts)
        });
        let first_summary = lead
            .iter()
            .chain(sections.iter().flat_map(|s| &s.others))
            .map(|s| s.summary.trim())
            .find(|s| !s.is_empty())
            .unwrap_or_default();
        Vars {
            lang,
            subject: String::new(),
            period: email.period,
            words,
            site: SiteVars {
                title: &config.site.title,
                url: config.site.base_url.as_str(),
                logo: config.site.logo.as_ref().map(|u| u.as_str()),
                accent: &config.site.accent,
                accent_text: crate::mail::rendered::text_on(&config.site.accent),
                link: crate::mail::rendered::link_on_white(&config.site.accent),
            },
            digest: DigestVars {
                id: &email.digest.id,
                title: email.digest.title.get(lang),
            },
            recipient: email.recipient,
            themes: sections.iter().map(|s| s.title).collect(),
            story_count: sections.iter().map(|s| s.stories.len()).sum(),
            preheader_summary: shorten(first_summary, PREHEADER_CHARS),
            lead,
            sections,
            links: LinkVars {
                preferences: &email.links.preferences,
                unsubscribe: &email.links.unsubscribe,
                edition: &email.links.edition,
                subscribe: format!("{}#subscribe", config.public_url()),
                archive: format!("{}archive/{}/", config.public_url(), email.digest.id),
            },
            organization: config.mail.as_ref().map_or("", |m| m.organization.as_str()),
            note: email.note.map(|n| NoteVars {
                html: &n.html,
                text: &n.text,
            }),
            test: email.test,
            web: email.web,
            cut: "",
            lead_story,
        }
    }
}

/// The story a reader's email leads with: the newest the editor marked
/// `featured`, else the newest with an image, else the newest.
fn lead_story<'a>(sections: &[Section<'a>]) -> Option<&'a StoredStory> {
    let all = || sections.iter().flat_map(|s| s.stories.iter().copied());
    let newest = |it: &mut dyn Iterator<Item = &'a StoredStory>| {
        it.max_by(|a, b| {
            (a.story.published, b.id.as_str()).cmp(&(b.story.published, a.id.as_str()))
        })
    };
    newest(&mut all().filter(|s| s.story.featured))
        .or_else(|| newest(&mut all().filter(|s| StoryVars::image_of(s).is_some())))
        .or_else(|| newest(&mut all()))
}

/// Where tidings serves a theme's page: under the public address, which
/// is not always the site's.
fn theme_page(config: &Config, theme: &Theme) -> String {
    format!("{}themes/{}/", config.public_url(), theme.slug)
}

/// Minutes to read sanitised HTML at 200 words a minute, at least 1.
fn reading_minutes(html: &str) -> usize {
    let (mut words, mut in_tag, mut in_word) = (0usize, false, false);
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                in_word = false;
            }
            '>' => in_tag = false,
            _ if in_tag => {}
            c if c.is_whitespace() => in_word = false,
            _ => {
                if !in_word {
                    words += 1;
                }
                in_word = true;
            }
        }
    }
    words.div_ceil(200).max(1)
}

/// What a story's card shows that takes work to make (its dates in words,
/// its authors joined, its reading time, which reads the whole body), made
/// once per edition and language for every reader's email.
#[derive(Debug, Clone)]
struct Fact {
    date: String,
    date_iso: String,
    authors: String,
    reading_minutes: usize,
}

/// [`Fact`]s by story id, in one language.
#[derive(Default)]
pub struct Facts(std::collections::HashMap<String, Fact>);

impl Facts {
    /// The facts of `stories` in `lang`.
    pub fn new(config: &Config, lang: &str, stories: &[StoredStory]) -> Facts {
        let words = words::words(lang);
        Facts(
            stories
                .iter()
                .map(|s| (s.id.as_str().to_owned(), Fact::new(config, lang, words, s)))
                .collect(),
        )
    }
}

impl Fact {
    fn new(config: &Config, lang: &str, words: &'static Words, stored: &StoredStory) -> Fact {
        let story = &stored.story;
        let published = story.published.with_timezone(&config.site.timezone);
        Fact {
            date: words::date(lang, published),
            date_iso: published.format("%Y-%m-%d").to_string(),
            authors: join_names(&story.authors, words.and),
            reading_minutes: reading_minutes(&story.body_html),
        }
    }
}

impl<'a> StoryVars<'a> {
    fn new(
        config: &Config,
        lang: &str,
        words: &'static Words,
        stored: &'a StoredStory,
        facts: Option<&Facts>,
    ) -> Self {
        let story = &stored.story;
        let fact = match facts.and_then(|f| f.0.get(stored.id.as_str())) {
            Some(fact) => fact.clone(),
            None => Fact::new(config, lang, words, stored),
        };
        StoryVars {
            title: &story.title,
            url: &story.url,
            date: fact.date,
            date_iso: fact.date_iso,
            summary: &story.summary,
            image: Self::image_of(stored),
            image_alt: story
                .image_alt
                .as_deref()
                .filter(|a| !a.trim().is_empty())
                .unwrap_or(words.image_alt_fallback),
            authors: fact.authors,
            reading_minutes: fact.reading_minutes,
            lang: story
                .language
                .as_ref()
                .map(|l| l.as_str())
                .filter(|l| !same_primary(l, lang)),
            featured: story.featured,
            lead: false,
        }
    }

    /// Sources make image URLs absolute; anything else (a data: or
    /// javascript: URL) has no business in an email.
    fn image_of(stored: &StoredStory) -> Option<&str> {
        stored
            .story
            .image
            .as_deref()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
    }
}

/// Whether two language tags share their primary language (`sv`, `sv-FI`).
fn same_primary(a: &str, b: &str) -> bool {
    let primary = |t: &str| t.split('-').next().unwrap_or_default().to_ascii_lowercase();
    primary(a) == primary(b)
}

/// "A", "A and B", "A, B and C".
fn join_names(names: &[String], and: &str) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} {and} {last}", rest.join(", ")),
    }
}

/// `text` cut at a word boundary to at most `max` characters, with "…"
/// when something was cut.
fn shorten(text: &str, max: usize) -> String {
    let text = one_line(text);
    if text.chars().count() <= max {
        return text;
    }
    let mut out = String::new();
    for word in text.split(' ') {
        if out.chars().count() + word.chars().count() + 1 >= max {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        out = text.chars().take(max - 1).collect();
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::fixtures::{Site, email, site, stories};
    use crate::templates::{TEXT_WIDTH, wrap};

    fn rendered(extra: &str, language: &str, period: &str) -> (Site, Rendered) {
        let site = site(extra);
        let stories = stories();
        let templates = Templates::load(&site.config).unwrap();
        let out = render(&templates, &email(&site.config, &stories, language, period)).unwrap();
        (site, out)
    }

    #[test]
    fn html_is_an_email_friendly_page_with_inlined_css_and_dark_mode() {
        let (_site, out) = rendered("", "sv", "mars 2024");
        let html = &out.html;
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(html.contains(r#"<html lang="sv">"#), "{html}");
        assert!(!html.to_lowercase().contains("<script"), "{html}");
        assert!(!html.contains("<link"), "{html}");
        assert!(html.contains(r#"name="color-scheme" content="light dark""#));
        assert!(html.contains(r#"name="supported-color-schemes""#));
        assert!(html.contains(r#"role="presentation""#));
        assert!(html.contains(r#"width="600""#));
        assert!(html.contains("max-width: 600px"), "{html}");
        // Ordinary rules went into style attributes...
        assert!(html.contains(r#"<h1 class="title" style=""#), "{html}");
        // ...while the dark-mode rules stay in a <style> in <head>.
        let head = &html[..html.find("</head>").unwrap()];
        assert!(head.contains("<style>"), "{head}");
        assert!(
            head.contains("@media (prefers-color-scheme: dark)"),
            "{head}"
        );
        assert!(!head.contains(".story-title {"), "{head}");
        // Stories: linked titles, dates, summaries, images with alt text.
        for (slug, title) in [
            ("vaxjo-an-giang", "Växjö och An Giang vässar demokratin"),
            ("hallbar-stad", "Hållbar stad i Windhoek"),
        ] {
            let url = format!("https://goda-exempel.example.org/{slug}/");
            assert!(html.contains(&format!(r#"<a href="{url}""#)), "{html}");
            assert!(html.contains(title), "{title}");
            assert!(html.contains(&format!("Sammanfattning av {slug}")));
            assert!(html.contains(&format!("/images/{slug}.jpg\"")));
        }
        assert!(html.contains(r#"alt="Två teknikerer tar vattenprov vid en kanal""#));
        assert!(html.contains(r#"width="536""#));
        assert!(
            html.contains(r#"Publicerad <time datetime="2024-03-14">14 mars 2024</time>"#),
            "{html}"
        );
        assert!(!html.contains("BODY-MUST-NOT-APPEAR"));
        // Theme headings in the subscriber's language, linked to the theme.
        assert!(
            html.contains(r#"href="https://goda-exempel.example.org/themes/miljo-och-klimat/""#)
        );
        assert!(html.contains("Miljö och klimat"));
        // The newest story with an image leads, once; the others stay in
        // the order given, themes in the subscriber's order.
        let pos = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s}"));
        assert!(pos("Hållbar stad") < pos("Miljö och klimat</a></h2>"));
        assert_eq!(
            html.matches(">Hållbar stad i Windhoek</a>").count(),
            1,
            "{html}"
        );
        assert!(html.contains(r#"<h2 class="lead-title""#), "{html}");
        assert!(pos("Miljö och klimat</a></h2>") < pos("Växjö och An"));
        assert!(pos("Växjö och An") < pos("Lokal demokrati</a></h2>"));
        // The hidden preheader: a count and the lead's summary.
        assert!(html.contains("3 nya berättelser: Sammanfattning av hallbar-stad"));
        // "View in browser" at the top as well as the bottom, and a way in
        // for a reader the email was forwarded to.
        assert!(pos("Visa i webbläsaren") < pos("<h1"));
        assert!(html.contains(
            r#"Har någon skickat det här vidare till dig? <a href="https://goda-exempel.example.org/#subscribe""#
        ), "{html}");
        // Reading time and the accent colour.
        assert!(html.contains("1 min läsning"), "{html}");
        assert!(html.contains("#1d5c8f"), "{html}");
        assert!(html.contains("display: none"));
        // The footer.
        assert!(
            html.contains(
                "Du får det här mejlet eftersom du prenumererar på Goda exempel – månadsbrev \
             från Goda exempel och har valt de här temana: Miljö och klimat, Lokal demokrati."
            ),
            "{html}"
        );
        assert!(
            html.contains(r#"href="https://goda-exempel.example.org/preferences/?t=abc&amp;u=1""#),
            "{html}"
        );
        assert!(html.contains("Avsluta prenumerationen"));
        assert!(html.contains("Läs det här utskicket på webben"));
        assert!(html.contains("Centrum för lokal demokrati, Box 1, 111 11 Stockholm"));
    }

    #[test]
    fn every_value_is_escaped_in_html_and_plain_in_text() {
        let (_site, out) = rendered("", "sv", "mars 2024");
        assert!(!out.html.contains("<b>Tom"), "{}", out.html);
        assert!(
            out.html
                .contains("&lt;b&gt;Tom &amp; Jerry&lt;/b&gt; i \"Kisumu\""),
            "{}",
            out.html
        );
        assert!(out.text.contains("<b>Tom & Jerry</b> i \"Kisumu\""));
    }

    #[test]
    fn english_subscribers_get_english_words_and_titles() {
        let (_site, out) = rendered("", "en", "March 2024");
        assert!(out.html.contains(r#"<html lang="en">"#));
        assert!(out.html.contains("New stories in the themes you chose"));
        assert!(out.html.contains("Environment and climate"));
        assert!(out.html.contains(">14 March 2024</time>"));
        assert!(out.html.contains("Published <time"));
        assert!(out.html.contains("Unsubscribe"));
        assert!(out.html.contains("Change your themes or language"));
        assert!(out.html.contains("Read this edition on the web"));
        assert!(!out.html.contains("Publicerad"));
        assert_eq!(
            out.subject,
            "Hållbar stad i Windhoek | Good examples – monthly March 2024"
        );
        assert!(out.text.contains("ENVIRONMENT AND CLIMATE\n"));
        assert!(out.text.contains("You receive this email because"));
    }

    #[test]
    fn text_has_every_url_on_its_own_line_and_short_lines() {
        let (_site, out) = rendered("", "sv", "mars 2024");
        let lines: Vec<&str> = out.text.lines().collect();
        for url in [
            "https://goda-exempel.example.org/vaxjo-an-giang/",
            "https://goda-exempel.example.org/tom-och-jerry/",
            "https://goda-exempel.example.org/hallbar-stad/",
            "https://goda-exempel.example.org/themes/miljo-och-klimat/",
            "https://goda-exempel.example.org/preferences/?t=abc&u=1",
            "https://goda-exempel.example.org/unsubscribe/?t=abc",
            "https://goda-exempel.example.org/digests/monthly/2024-03/",
        ] {
            assert!(
                lines.contains(&url),
                "{url} not on a line of its own:\n{}",
                out.text
            );
        }
        for line in &lines {
            assert!(
                line.starts_with("https://") || line.chars().count() <= TEXT_WIDTH,
                "too long: {line}"
            );
        }
        assert!(
            out.text
                .contains("Publicerad 14 mars 2024 · 1 min läsning\n")
        );
        assert!(out.text.contains("MILJÖ OCH KLIMAT\n"));
        assert!(
            out.text.starts_with(
                "Visa i webbläsaren:\nhttps://goda-exempel.example.org/digests/monthly/2024-03/\n\n\
                 Goda exempel – månadsbrev\nmars 2024\n\n"
            ),
            "{}",
            out.text
        );
        // The signature separator is "-- " and everything after it is
        // wrapped like the rest.
        assert!(out.text.contains("\n-- \n"), "{}", out.text);
        assert!(!out.text.contains("BODY-MUST-NOT-APPEAR"));
        assert!(!out.text.contains("&amp;"));
        assert!(
            out.text
                .contains("Centrum för lokal demokrati, Box 1, 111 11 Stockholm"),
        );
    }

    #[test]
    fn the_subject_is_one_line_whatever_the_config_or_period_holds() {
        let (_site, out) = rendered("", "sv", "mars 2024\r\nBcc: x@evil.example");
        assert_eq!(
            out.subject,
            "Hållbar stad i Windhoek | Goda exempel – månadsbrev mars 2024 Bcc: x@evil.example"
        );
        let (_site, out) = rendered(
            "subject = { sv = \"{{ site }}:\\r\\n\\tBcc: y@evil.example {{ period }}\" }\n",
            "sv",
            "mars 2024",
        );
        assert_eq!(out.subject, "Goda exempel: Bcc: y@evil.example mars 2024");
        // No HTML escaping in a header.
        let (_site, out) = rendered("subject = \"A & B <{{ period }}>\"\n", "sv", "mars");
        assert_eq!(out.subject, "A & B <mars>");
    }

    #[test]
    fn the_same_input_gives_the_same_bytes() {
        let (_site, a) = rendered("", "sv", "mars 2024");
        let (_site, b) = rendered("", "sv", "mars 2024");
        assert_eq!(a, b);
    }

    #[test]
    fn a_site_template_replaces_the_builtin_one_and_bad_ones_are_named() {
        let site = site("");
        let dir = site.dir.path().join("templates");
        fs_err::create_dir_all(&dir).unwrap();
        fs_err::write(
            dir.join("digest.txt"),
            "{{ words.read_more }} {{ recipient }} {{ 'a b c d' | wrap(width=3) }}",
        )
        .unwrap();
        let stories = stories();
        let templates = Templates::load(&site.config).unwrap();
        let out = render(&templates, &email(&site.config, &stories, "sv", "mars")).unwrap();
        assert_eq!(out.text, "Läs mer anna@example.se a b\nc d");
        // The HTML template is still the built-in one.
        assert!(out.html.contains("Goda exempel – månadsbrev"));

        fs_err::write(dir.join("digest.html"), "<p>{% if %}</p>").unwrap();
        let err = format!("{:#}", Templates::load(&site.config).err().unwrap());
        let path = dir.join("digest.html");
        assert!(
            err.contains(&format!("the template {} does not parse", path.display())),
            "{err}"
        );
    }

    #[test]
    fn a_featured_story_leads_else_the_newest_with_an_image() {
        let site = site("");
        let templates = Templates::load(&site.config).unwrap();
        let mut stories = stories();
        // The oldest, in the second theme, marked featured: it leads.
        stories[1].story.featured = true;
        let out = render(&templates, &email(&site.config, &stories, "sv", "mars")).unwrap();
        let lead = &out.html[out.html.find(r#"<h2 class="lead-title""#).unwrap()..];
        assert!(lead[..300].contains("Tom &amp; Jerry"), "{lead}");
        assert!(
            out.subject
                .starts_with("<b>Tom & Jerry</b> i \"Kisumu\" | "),
            "{}",
            out.subject
        );
        // Without images and flags, the newest leads.
        let mut stories = crate::fixtures::stories();
        for s in &mut stories {
            s.story.image = None;
        }
        let out = render(&templates, &email(&site.config, &stories, "en", "March")).unwrap();
        assert!(
            out.subject.starts_with("Hållbar stad i Windhoek | "),
            "{}",
            out.subject
        );
        assert!(!out.html.contains("lead-image"), "{}", out.html);
    }

    #[test]
    fn cards_name_authors_reading_time_and_a_story_in_another_language() {
        let site = site("");
        let templates = Templates::load(&site.config).unwrap();
        let mut stories = stories();
        stories[0].story.authors = vec!["Anna Berg".into(), "Per Ek".into(), "Li Wu".into()];
        stories[0].story.body_html = format!("<p>{}</p>", "ord ".repeat(450));
        stories[0].story.language = Some(crate::model::Language::parse("en").unwrap());
        let out = render(&templates, &email(&site.config, &stories, "sv", "mars")).unwrap();
        assert!(
            out.html
                .contains("Av Anna Berg, Per Ek och Li Wu · 3 min läsning"),
            "{}",
            out.html
        );
        assert!(
            out.text
                .contains("Av Anna Berg, Per Ek och Li Wu · 3 min läsning"),
            "{}",
            out.text
        );
        assert!(out.html.contains(r#"<td lang="en""#), "{}", out.html);
        // A story in the email's own language gets no attribute.
        assert_eq!(out.html.matches(" lang=\"").count(), 2, "{}", out.html);
    }

    #[test]
    fn a_theme_cut_short_says_how_many_more_and_links_to_the_served_theme_page() {
        let site = site("[http]\npublic_url = \"https://nyhetsbrev.example.net/\"\n");
        let templates = Templates::load(&site.config).unwrap();
        let stories = stories();
        let mut email = email(&site.config, &stories, "en", "March 2024");
        email.sections[1].more = 4;
        let out = render(&templates, &email).unwrap();
        assert!(
            out.html.contains(
                r#"<a href="https://nyhetsbrev.example.net/themes/lokal-demokrati/" style="#
            ) || out
                .html
                .contains(r#"href="https://nyhetsbrev.example.net/themes/lokal-demokrati/""#),
            "{}",
            out.html
        );
        assert!(
            out.html.contains("4 more in Local democracy</a>"),
            "{}",
            out.html
        );
        assert!(
            out.text.contains("4 more in Local democracy:\nhttps://nyhetsbrev.example.net/themes/lokal-demokrati/\n"),
            "{}",
            out.text
        );
        assert!(
            !out.html.contains("goda-exempel.example.org/themes/"),
            "{}",
            out.html
        );
        assert!(
            out.html
                .contains(r#"href="https://nyhetsbrev.example.net/#subscribe""#)
        );
    }

    #[test]
    fn the_editors_note_and_a_test_mark() {
        let site = site("");
        let templates = Templates::load(&site.config).unwrap();
        let stories = stories();
        let note = crate::digest::note::render(&site.config, "Hej! Läs om **vatten**.");
        let mut email = email(&site.config, &stories, "sv", "mars 2024");
        email.note = Some(&note);
        email.test = true;
        let out = render(&templates, &email).unwrap();
        assert!(out.html.contains("<strong>vatten</strong>"), "{}", out.html);
        let pos = |s: &str| out.html.find(s).unwrap();
        assert!(pos("<strong>vatten") < pos(r#"<h2 class="lead-title""#));
        assert!(
            out.text.contains("mars 2024\n\nHej! Läs om vatten.\n"),
            "{}",
            out.text
        );
        assert!(out.subject.starts_with("[TEST] "), "{}", out.subject);
    }

    #[test]
    fn the_subject_may_use_the_count_the_themes_and_the_lead() {
        let (_site, out) = rendered(
            "subject = \"{{ count }} nya i {{ themes | join(sep=' och ') }}: {{ lead }}\"\n",
            "sv",
            "mars",
        );
        assert_eq!(
            out.subject,
            "3 nya i Miljö och klimat och Lokal demokrati: Hållbar stad i Windhoek"
        );
    }

    #[test]
    fn the_web_edition_has_no_personal_link_and_a_sign_up_box() {
        let site = site("");
        let templates = Templates::load(&site.config).unwrap();
        let stories = stories();
        let mut email = email(&site.config, &stories, "sv", "mars 2024");
        email.web = true;
        let out = render(&templates, &email).unwrap();
        assert!(!out.html.contains("preferences/?t=abc"), "{}", out.html);
        assert!(!out.html.contains("Du får det här mejlet"), "{}", out.html);
        assert!(out.html.contains("Vill du få nästa utskick i din inkorg?"));
        assert!(
            !out.html.contains("Visa i webbläsaren"),
            "the page is the browser"
        );
        assert!(out.html.contains("Växjö och An Giang"));
    }

    #[test]
    fn email_html_is_fluid_with_a_fixed_table_for_outlook() {
        let (_site, out) = rendered("", "sv", "mars 2024");
        let html = &out.html;
        assert!(
            html.contains("<!--[if mso]><table role=\"presentation\" width=\"600\""),
            "{html}"
        );
        let at = html.find(r#"class="container""#).unwrap();
        let tag = &html[at..at + html[at..].find('>').unwrap()];
        assert!(tag.contains(r#"width="100%""#), "{tag}");
        assert!(tag.contains("max-width: 600px"), "{tag}");
        // Images are as wide as the text column, never wider.
        assert!(html.contains(r#"class="image""#), "{html}");
        assert!(
            html.contains("width: 100%;max-width: 536px;height: auto;"),
            "{html}"
        );
    }

    #[test]
    fn wrap_breaks_between_words_and_never_inside_a_url() {
        assert_eq!(wrap("aa bb cc", 5), "aa bb\ncc");
        assert_eq!(wrap("one\ntwo three", 7), "one\ntwo\nthree");
        let url = "https://example.org/a/very/long/path/that/goes/on/and/on";
        assert_eq!(
            wrap(&format!("see {url} now"), 20),
            format!("see\n{url}\nnow")
        );
        assert_eq!(wrap("", 10), "");
    }

    #[test]
    fn shorten_cuts_at_a_word() {
        assert_eq!(shorten("kort", 10), "kort");
        assert_eq!(shorten("ett två tre fyra fem", 12), "ett två tre…");
        assert_eq!(shorten("abcdefghijklmnop", 5), "abcd…");
    }
}
