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

use super::words::{self, Words};
use crate::config::{Config, Digest, Theme};
use crate::feeds::prepare::theme_url;
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
    /// Already formatted, such as "november 2026" ([`words::period`]).
    pub period: &'a str,
    /// In the subscriber's theme order; a story appears in only one.
    pub sections: Vec<Section<'a>>,
    pub links: Links,
    /// The subscriber's address.
    pub recipient: &'a str,
}

/// Renders one subscriber's digest.
pub fn render(templates: &Templates, email: &DigestEmail) -> Result<Rendered> {
    let subject = subject(templates, email)?;
    let vars = Vars::new(email, &subject);
    let context = tera::Context::from_serialize(&vars).map_err(anyhow::Error::new)?;
    let html = templates.0.render(HTML_FILE, &context)?;
    let html = inline_css(&html).with_context(|| {
        format!(
            "cannot inline the CSS of {} (is its <style> valid CSS?)",
            templates.origin(HTML_FILE)
        )
    })?;
    let text = templates.0.render(TEXT_FILE, &context)?;
    Ok(Rendered {
        subject,
        html,
        text,
    })
}

/// The digest's subject template for the language, rendered with `period`,
/// `site` (the site's title) and `digest` (the digest's title) and made
/// into one line. It is not HTML-escaped: a header is not HTML.
fn subject(templates: &Templates, email: &DigestEmail) -> Result<String> {
    let lang = email.language;
    let mut context = tera::Context::new();
    context.insert("period", email.period);
    context.insert("site", &email.config.site.title);
    context.insert("digest", email.digest.title.get(lang));
    let text = templates
        .0
        .render_str(email.digest.subject.get(lang), &context, false)
        .with_context(|| {
            format!(
                "the subject of digest `{}` in `{lang}` ([[digests]] subject) does not render",
                email.digest.id
            )
        })?;
    Ok(one_line(&text))
}

/// The names the templates see.
#[derive(Serialize)]
struct Vars<'a> {
    lang: &'a str,
    subject: &'a str,
    period: &'a str,
    words: &'static Words,
    site: SiteVars<'a>,
    digest: DigestVars<'a>,
    recipient: &'a str,
    sections: Vec<SectionVars<'a>>,
    /// The titles of every theme the subscriber chose, in their order.
    themes: Vec<&'a str>,
    story_count: usize,
    /// The first story summary, shortened, for the inbox preview.
    preheader_summary: String,
    links: LinkVars<'a>,
    /// Name and postal address, or empty.
    organization: &'a str,
}

#[derive(Serialize)]
struct SiteVars<'a> {
    title: &'a str,
    url: &'a str,
}

#[derive(Serialize)]
struct DigestVars<'a> {
    id: &'a str,
    title: &'a str,
}

#[derive(Serialize)]
struct SectionVars<'a> {
    slug: &'a str,
    title: &'a str,
    url: String,
    stories: Vec<StoryVars<'a>>,
}

#[derive(Serialize)]
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
}

#[derive(Serialize)]
struct LinkVars<'a> {
    preferences: &'a str,
    unsubscribe: &'a str,
    edition: &'a str,
}

impl<'a> Vars<'a> {
    fn new(email: &'a DigestEmail<'a>, subject: &'a str) -> Vars<'a> {
        let config = email.config;
        let lang = email.language;
        let words = words::words(lang);
        let sections: Vec<SectionVars> = email
            .sections
            .iter()
            .map(|s| SectionVars {
                slug: s.theme.slug.as_str(),
                title: s.theme.title.get(lang),
                url: theme_url(config, s.theme).to_string(),
                stories: s
                    .stories
                    .iter()
                    .map(|story| StoryVars::new(config, lang, words, story))
                    .collect(),
            })
            .collect();
        let first_summary = sections
            .iter()
            .flat_map(|s| &s.stories)
            .map(|s| s.summary.trim())
            .find(|s| !s.is_empty())
            .unwrap_or_default();
        Vars {
            lang,
            subject,
            period: email.period,
            words,
            site: SiteVars {
                title: &config.site.title,
                url: config.site.base_url.as_str(),
            },
            digest: DigestVars {
                id: &email.digest.id,
                title: email.digest.title.get(lang),
            },
            recipient: email.recipient,
            themes: sections.iter().map(|s| s.title).collect(),
            story_count: sections.iter().map(|s| s.stories.len()).sum(),
            preheader_summary: shorten(first_summary, PREHEADER_CHARS),
            sections,
            links: LinkVars {
                preferences: &email.links.preferences,
                unsubscribe: &email.links.unsubscribe,
                edition: &email.links.edition,
            },
            organization: config.mail.as_ref().map_or("", |m| m.organization.as_str()),
        }
    }
}

impl<'a> StoryVars<'a> {
    fn new(config: &Config, lang: &str, words: &'static Words, stored: &'a StoredStory) -> Self {
        let story = &stored.story;
        let published = story.published.with_timezone(&config.site.timezone);
        // Sources make image URLs absolute; anything else (a data: or
        // javascript: URL) has no business in an email.
        let image = story
            .image
            .as_deref()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
        StoryVars {
            title: &story.title,
            url: &story.url,
            date: words::date(lang, published),
            date_iso: published.format("%Y-%m-%d").to_string(),
            summary: &story.summary,
            image,
            image_alt: story
                .image_alt
                .as_deref()
                .filter(|a| !a.trim().is_empty())
                .unwrap_or(words.image_alt_fallback),
        }
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
        assert!(html.contains("Publicerad 14 mars 2024"), "{html}");
        assert!(!html.contains("BODY-MUST-NOT-APPEAR"));
        // Theme headings in the subscriber's language, linked to the theme.
        assert!(
            html.contains(r#"href="https://goda-exempel.example.org/themes/miljo-och-klimat/""#)
        );
        assert!(html.contains("Miljö och klimat"));
        // Stories stay in the order given, themes in the subscriber's order.
        let pos = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s}"));
        assert!(pos("Växjö och An") < pos("Hållbar stad"));
        assert!(pos("Hållbar stad") < pos("Lokal demokrati</a></h2>"));
        // The hidden preheader: a count and the first summary.
        assert!(html.contains("3 nya berättelser: Sammanfattning av vaxjo-an-giang"));
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
        assert!(out.html.contains("Published 14 March 2024"));
        assert!(out.html.contains("Unsubscribe"));
        assert!(out.html.contains("Change your themes or language"));
        assert!(out.html.contains("Read this edition on the web"));
        assert!(!out.html.contains("Publicerad"));
        assert_eq!(out.subject, "Good examples – monthly March 2024");
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
        assert!(out.text.contains("Publicerad 14 mars 2024\n"));
        assert!(out.text.contains("MILJÖ OCH KLIMAT\n"));
        assert!(
            out.text
                .starts_with("Goda exempel – månadsbrev\nmars 2024\n\n"),
            "{}",
            out.text
        );
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
            "Goda exempel – månadsbrev mars 2024 Bcc: x@evil.example"
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
