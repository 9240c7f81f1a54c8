//! Turning untrusted story text into what feeds and emails may carry:
//! Markdown rendered by pulldown-cmark, HTML sanitized with ammonia's
//! allow-list, every relative URL made absolute, and characters that XML
//! forbids removed.

pub use crate::model::text::{clean_line, strip_illegal_chars};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;

use ammonia::{Builder, UrlRelative};
use pulldown_cmark::{
    Alignment, CodeBlockKind, CowStr, Event, LinkType, Options, Parser, Tag, html,
};
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

/// The Markdown stories are written in: CommonMark with tables, footnotes,
/// strikethrough and smart punctuation.
const MARKDOWN: Options = Options::ENABLE_TABLES
    .union(Options::ENABLE_FOOTNOTES)
    .union(Options::ENABLE_STRIKETHROUGH)
    .union(Options::ENABLE_SMART_PUNCTUATION);

/// Renders Markdown to sanitized HTML whose links and images are absolute.
///
/// Markdown with no raw HTML, and whose every link and image points
/// somewhere the allow-list accepts, takes a fast path: pulldown-cmark
/// escapes all text and attributes itself, so rewriting each URL and
/// adding `rel="noopener"` gives what ammonia would keep, without parsing
/// the result again (most of a cold build's time went there). Anything
/// else (raw HTML, footnotes, an e-mail autolink, a URL ammonia would
/// drop) goes through ammonia as a whole.
pub fn markdown_to_html(markdown: &str, base: &Bases) -> String {
    let markdown = strip_illegal_chars(markdown);
    let events: Vec<Event> = Parser::new_ext(&markdown, MARKDOWN).collect();
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    match plain_markdown(&events, base) {
        Some(safe) => {
            html::push_html(&mut html, safe.into_iter());
            let html = add_noopener(html);
            // Entities (`&#1;`) can still decode to what XML forbids.
            match strip_illegal_chars(&html) {
                Cow::Borrowed(_) => html,
                Cow::Owned(clean) => clean,
            }
        }
        None => {
            html::push_html(&mut html, events.into_iter());
            sanitize_html(&html, base)
        }
    }
}

/// pulldown-cmark's HTML for `markdown` before any sanitizing, and
/// whether [`markdown_to_html`] takes its fast path for it: what the fuzz
/// target compares the fast path against.
#[cfg(fuzzing)]
pub(crate) fn raw_markdown(markdown: &str, base: &Bases) -> (String, bool) {
    let markdown = strip_illegal_chars(markdown);
    let events: Vec<Event> = Parser::new_ext(&markdown, MARKDOWN).collect();
    let fast = plain_markdown(&events, base).is_some();
    let mut html = String::new();
    html::push_html(&mut html, events.into_iter());
    (html, fast)
}

/// `rel="noopener"` on every link pulldown-cmark wrote (`<a href="`),
/// as ammonia's `link_rel` would add it. Every `<` of text and attribute
/// values is escaped, so the pattern only ever matches a tag.
fn add_noopener(html: String) -> String {
    const TAG: &str = "<a href=\"";
    let finder = memchr::memmem::Finder::new(TAG);
    let mut found = finder.find_iter(html.as_bytes()).peekable();
    if found.peek().is_none() {
        return html;
    }
    let mut out = String::with_capacity(html.len() + 256);
    let mut from = 0;
    for at in found {
        out.push_str(&html[from..at]);
        out.push_str("<a rel=\"noopener\" href=\"");
        from = at + TAG.len();
    }
    out.push_str(&html[from..]);
    out
}

/// The events with every URL made absolute and what ammonia would strip
/// anyway (a code block's language class, a table's alignment styles)
/// left out, or `None` when the Markdown needs the sanitizer.
fn plain_markdown<'a>(events: &[Event<'a>], base: &Bases) -> Option<Vec<Event<'a>>> {
    events
        .iter()
        .map(|event| {
            Some(match event {
                Event::Html(_)
                | Event::InlineHtml(_)
                | Event::FootnoteReference(_)
                | Event::Start(Tag::FootnoteDefinition(_))
                | Event::TaskListMarker(_)
                | Event::InlineMath(_)
                | Event::DisplayMath(_) => return None,
                Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }) => {
                    if matches!(link_type, LinkType::Email | LinkType::WikiLink { .. }) {
                        return None;
                    }
                    Event::Start(Tag::Link {
                        link_type: *link_type,
                        dest_url: allowed_url(dest_url, base)?,
                        title: title.clone(),
                        id: id.clone(),
                    })
                }
                Event::Start(Tag::Image {
                    link_type,
                    dest_url,
                    title,
                    id,
                }) => Event::Start(Tag::Image {
                    link_type: *link_type,
                    dest_url: allowed_url(dest_url, base)?,
                    title: title.clone(),
                    id: id.clone(),
                }),
                Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))) => {
                    Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(CowStr::Borrowed(""))))
                }
                Event::Start(Tag::Table(columns)) => {
                    Event::Start(Tag::Table(vec![Alignment::None; columns.len()]))
                }
                Event::Start(Tag::Heading { id: Some(_), .. })
                | Event::Start(Tag::BlockQuote(Some(_))) => return None,
                other => other.clone(),
            })
        })
        .collect()
}

/// A link's or image's URL as ammonia would leave it: an absolute URL with
/// an allowed scheme as it is, a relative one resolved, anything else
/// `None`.
///
/// ammonia reads the URL from pulldown-cmark's HTML, where it is
/// percent-encoded, so that is the form judged and resolved here: to the
/// URL parser a `\` is a `/` and a tab is nothing, but `%5C` and `%09` are
/// kept (`[x](a\b)` is `a%5Cb`, and `https://exa\mple.org/` has no valid
/// host). A resolved URL that pulldown-cmark would encode further (where
/// ammonia writes it as it is) takes the sanitizer.
fn allowed_url<'a>(url: &CowStr<'a>, base: &Bases) -> Option<CowStr<'a>> {
    let written = as_written(url);
    match Url::parse(&written) {
        Ok(parsed) => ALLOWED_SCHEMES
            .contains(&parsed.scheme())
            .then(|| url.clone()),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let resolved = String::from(base.resolve(&written)?);
            (as_written(&resolved) == resolved).then(|| CowStr::from(resolved))
        }
        Err(_) => None,
    }
}

/// `url` as it reads back from the `href` or `src` pulldown-cmark writes:
/// every byte outside its safe set percent-encoded (`&` and `'` are only
/// escaped as HTML, which the HTML parser undoes).
fn as_written(url: &str) -> Cow<'_, str> {
    const KEPT: &[u8] = b"!#$%&'()*+,-./:;=?@^_~";
    let safe = |b: u8| b.is_ascii_alphanumeric() || KEPT.contains(&b);
    if url.bytes().all(safe) {
        return Cow::Borrowed(url);
    }
    let mut out = String::with_capacity(url.len() + 16);
    for b in url.bytes() {
        if safe(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(out)
}

const ALLOWED_SCHEMES: [&str; 4] = ["http", "https", "mailto", "tel"];

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
        b.url_schemes(HashSet::from(ALLOWED_SCHEMES));
        b.link_rel(Some("noopener"));
        b
    });
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
    fn c1_controls_and_non_characters_are_dropped() {
        let s = "a\u{80}b\u{9F}c\u{A0}d\u{FFFE}e\u{FFFF}f\u{FEFF}g\u{7F}";
        assert_eq!(strip_illegal_chars(s), "abc\u{A0}def\u{FEFF}g");
    }

    #[test]
    fn what_is_illegal_is_found_anywhere_in_a_long_text() {
        // Every position relative to the 64-byte blocks of the coarse
        // test, a two- and three-byte character straddling two blocks.
        for bad in ["\u{1}", "\u{85}", "\u{FFFF}"] {
            for at in 0..130 {
                let s = format!(
                    "{}{bad}{}",
                    "å".repeat(at / 2) + &"a".repeat(at % 2),
                    "b".repeat(70)
                );
                let clean = strip_illegal_chars(&s);
                assert!(matches!(clean, Cow::Owned(_)), "{bad:?} at {at}");
                assert!(!clean.contains(bad), "{bad:?} at {at}");
                assert_eq!(clean.len(), s.len() - bad.len());
            }
        }
        let legal = format!(
            "{}\t\r\n\u{A0}\u{FEFF}\u{2028}{}",
            "ö".repeat(40),
            "x".repeat(100)
        );
        assert!(matches!(strip_illegal_chars(&legal), Cow::Borrowed(_)));
    }

    #[test]
    fn links_get_noopener_and_nothing_else_changes() {
        let base = Bases {
            site: Url::parse("https://example.org/").unwrap(),
            page: Url::parse("https://example.org/stories/x/").unwrap(),
        };
        let html = markdown_to_html(
            "[one](https://a.example/) and [two](/b/), `<a href=\"`",
            &base,
        );
        assert_eq!(
            html,
            "<p><a rel=\"noopener\" href=\"https://a.example/\">one</a> and \
             <a rel=\"noopener\" href=\"https://example.org/b/\">two</a>, \
             <code>&lt;a href=\"</code></p>\n"
        );
    }

    /// What the fast path gives must be what ammonia gives: running
    /// ammonia over the fast path's output changes nothing that running it
    /// over pulldown-cmark's raw output would not.
    #[test]
    fn the_fast_path_keeps_only_what_ammonia_keeps() {
        let docs = [
            "Plain *text* with **bold**, `code` and a [link](https://example.org/x?a=1&b=2 \"T\").",
            "## Heading\n\n> quoted -- \"smart\" ...\n\n- one\n- two\n\n1. first\n2. second\n\n---\n",
            "[rel](/other/) [page](img/x.jpg) ![pic](../pic.png \"title\") [proto](//cdn.example.org/a)",
            "[mail](mailto:a@example.org) [tel](tel:+4612345) [odd](HTTPS://Example.ORG/Å?q=ä#f)",
            "```rust\nfn main() { println!(\"<b>\"); }\n```\n\n    indented <code>\n",
            "| a | b |\n|:--|--:|\n| 1 & 2 | <3 |\n",
            "~~struck~~ line  \nbreak & < > \" ' entities &amp; &#x80; &copy;",
            "[js](javascript:alert(1)) ![data](data:image/png;base64,AAAA) [vb](vbscript:x)",
            "<b>raw</b> inline and\n\n<div onclick=x>block</div>",
            "Footnote[^1].\n\n[^1]: The note.",
            "<me@example.org> and <https://example.org/auto>",
            "[ref][r]\n\n[r]: /ref-target/ \"Ref\"",
            "[bad](http://[::1) [space](<a b.html>)",
        ];
        let mut fast = 0;
        for md in docs {
            let events: Vec<Event> = Parser::new_ext(md, MARKDOWN).collect();
            let mut raw = String::new();
            html::push_html(&mut raw, events.clone().into_iter());
            let ours = markdown_to_html(md, &base());
            assert_eq!(
                sanitize_html(&ours, &base()),
                sanitize_html(&raw, &base()),
                "for {md:?}"
            );
            if plain_markdown(&events, &base()).is_some() {
                fast += 1;
                assert!(!ours.contains("<a href"), "a link without rel in {ours}");
                for bad in [
                    "script", "data:", "style=", "class=", " id=", "onclick", "<div",
                ] {
                    assert!(!ours.contains(bad), "{bad} in the fast path's {ours}");
                }
            }
        }
        assert!(fast >= 7, "only {fast} documents took the fast path");
    }

    /// The fast path resolved and judged a URL as written in the Markdown,
    /// but ammonia sees it percent-encoded in pulldown-cmark's HTML: a
    /// backslash became a slash, a tab vanished, and a link whose host
    /// holds a backslash was kept where ammonia drops it.
    #[test]
    fn the_fast_path_judges_urls_as_ammonia_reads_them() {
        for md in [
            "[x](a\\b)",
            "[x](<a\tb>)",
            "[x](https://exa\\mple.org/)",
            "[x](a|b) [y](<a b>) ![å](bilder/å.jpg) [z](a?b=1&c='d')",
            // What the markdown fuzz target found, cut to the link.
            "[r[l](/otZZZZZZZZZZZZZZZ&gZZZZZZ\\xample.org/x?a=2&b=2 \"T\").",
        ] {
            let mut raw = String::new();
            html::push_html(&mut raw, Parser::new_ext(md, MARKDOWN));
            let ours = markdown_to_html(md, &base());
            assert_eq!(
                sanitize_html(&ours, &base()),
                sanitize_html(&raw, &base()),
                "for {md:?}"
            );
        }
        let html = markdown_to_html("[x](https://exa\\mple.org/)", &base());
        assert!(!html.contains("href"), "{html}");
        let html = markdown_to_html("![å](bilder/å.jpg)", &base());
        assert!(
            html.contains("src=\"https://example.org/site/stories/a/bilder/%C3%A5.jpg\""),
            "{html}"
        );
    }

    #[test]
    fn summaries_come_from_the_first_paragraph() {
        let md = "## Heading\n\nFirst *para*\ngoes on.\n\nSecond.";
        assert_eq!(summary_from_markdown(md, 200), "First para goes on.");
        assert_eq!(truncate_words("one two three four", 9), "one two…");
    }
}
