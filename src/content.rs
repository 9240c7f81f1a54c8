//! Turning untrusted story text into what feeds and emails may carry:
//! Markdown rendered by pulldown-cmark, HTML sanitized with ammonia's
//! allow-list, every relative URL made absolute, and characters that XML
//! forbids removed.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;

use ammonia::{Builder, UrlRelative};
use pulldown_cmark::{Options, Parser, html};
use url::Url;

/// What relative URLs in a story resolve against.
#[derive(Debug, Clone)]
pub struct Bases {
    /// The site's `base_url`: root-relative references (`/images/x.jpg`)
    /// resolve under it, so a site served from a sub-path keeps its path.
    pub site: Url,
    /// The story's own URL: other relative references resolve against it.
    pub page: Url,
}

impl Bases {
    /// `reference` as an absolute http(s) URL, or `None` when it cannot be
    /// one.
    pub fn resolve(&self, reference: &str) -> Option<Url> {
        let reference = reference.trim();
        let url = match reference.strip_prefix('/') {
            Some(rest) if !rest.starts_with('/') => self.site.join(rest),
            _ => self.page.join(reference),
        }
        .ok()?;
        matches!(url.scheme(), "http" | "https").then_some(url)
    }
}

impl<'a> ammonia::UrlRelativeEvaluate<'a> for Bases {
    fn evaluate<'url>(&self, url: &'url str) -> Option<Cow<'url, str>> {
        self.resolve(url).map(|u| Cow::Owned(u.into()))
    }
}

/// Renders Markdown to sanitized HTML whose links and images are absolute.
pub fn markdown_to_html(markdown: &str, base: &Bases) -> String {
    let markdown = strip_illegal_chars(markdown);
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_SMART_PUNCTUATION;
    let parser = Parser::new_ext(&markdown, options);
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, parser);
    sanitize_html(&unsafe_html, base)
}

/// Cleans untrusted HTML with an allow-list and makes its URLs absolute.
pub fn sanitize_html(html: &str, base: &Bases) -> String {
    let clean = SANITIZER.with_borrow_mut(|builder| {
        builder.url_relative(UrlRelative::Custom(Box::new(base.clone())));
        builder.clean(html).to_string()
    });
    strip_illegal_chars(&clean).into_owned()
}

// The allow-list: ammonia's defaults (no script, style, iframe, form,
// event attributes; only http, https, mailto and tel URLs), with the
// tags Markdown produces for figures and footnotes kept.
// One per thread, since building the allow-list costs more than using it.
thread_local! {
    static SANITIZER: RefCell<Builder<'static>> = RefCell::new({
        let mut b = Builder::default();
        b.add_tags(["figure", "figcaption", "section"]);
        b.url_schemes(HashSet::from(["http", "https", "mailto", "tel"]));
        b.link_rel(Some("noopener"));
        b
    });
}

/// Removes characters XML 1.0 does not allow (C0 controls other than tab,
/// line feed and carriage return, U+FFFE and U+FFFF) and the C1 controls
/// that validators flag. Borrows when there is nothing to remove.
pub fn strip_illegal_chars(s: &str) -> std::borrow::Cow<'_, str> {
    fn illegal(c: char) -> bool {
        matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{7F}'..='\u{9F}' | '\u{FFFE}' | '\u{FFFF}')
    }
    if s.chars().any(illegal) {
        std::borrow::Cow::Owned(s.chars().filter(|&c| !illegal(c)).collect())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Plain text for a one-line field (title, summary, author): illegal
/// characters removed and runs of whitespace folded to one space.
pub fn clean_line(s: &str) -> String {
    strip_illegal_chars(s)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text of an HTML fragment (a CMS's title or excerpt): tags dropped,
/// entities decoded, whitespace folded. ammonia parses it as a browser
/// would; with no tag allowed its output is text in which html5ever escaped
/// only `&`, `<`, `>` and no-break spaces, undone here.
pub fn html_to_text(html: &str) -> String {
    let text = Builder::empty()
        .clean_content_tags(["script", "style", "template"].into_iter().collect())
        .clean(html)
        .to_string();
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&");
    clean_line(&text)
}

/// A summary from the Markdown body when the editor gave none: the text of
/// the first paragraph, cut at a word boundary near `max` characters.
pub fn summary_from_markdown(markdown: &str, max: usize) -> String {
    use pulldown_cmark::{Event, Tag, TagEnd};
    let mut text = String::new();
    let mut in_paragraph = false;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Paragraph) => in_paragraph = true,
            Event::End(TagEnd::Paragraph) if !text.trim().is_empty() => break,
            Event::End(TagEnd::Paragraph) => in_paragraph = false,
            Event::Text(t) | Event::Code(t) if in_paragraph => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak if in_paragraph => text.push(' '),
            _ => {}
        }
    }
    truncate_words(&clean_line(&text), max)
}

/// Cuts `s` to at most `max` characters at a word boundary, adding `…`.
pub fn truncate_words(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > max / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end_matches([',', '.', ';', ':', ' ']))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Bases {
        Bases {
            site: Url::parse("https://example.org/site/").unwrap(),
            page: Url::parse("https://example.org/site/stories/a/").unwrap(),
        }
    }

    #[test]
    fn hostile_html_is_removed() {
        let md = "Hi <script>alert(1)</script><img src=x onerror=alert(1)> \
                  [x](javascript:alert(1)) <iframe src=//evil></iframe><style>p{}</style>";
        let html = markdown_to_html(md, &base());
        for bad in ["<script", "onerror", "javascript:", "<iframe", "<style"] {
            assert!(!html.contains(bad), "{bad} survived in {html}");
        }
    }

    #[test]
    fn relative_links_and_images_become_absolute() {
        let html = markdown_to_html("[a](/other/) [b](img/x.jpg) ![c](../pic.png)", &base());
        assert!(
            html.contains("href=\"https://example.org/site/other/\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"https://example.org/site/stories/a/img/x.jpg\""),
            "{html}"
        );
        assert!(
            html.contains("src=\"https://example.org/site/stories/pic.png\""),
            "{html}"
        );
    }

    #[test]
    fn control_characters_are_dropped_but_text_survives() {
        let s = "a\u{1}b\u{7}c\té\u{202E}🙂";
        assert_eq!(strip_illegal_chars(s), "abc\té\u{202E}🙂");
    }

    #[test]
    fn summaries_come_from_the_first_paragraph() {
        let md = "## Heading\n\nFirst *para*\ngoes on.\n\nSecond.";
        assert_eq!(summary_from_markdown(md, 200), "First para goes on.");
        assert_eq!(truncate_words("one two three four", 9), "one two…");
    }
}
