//! The Markdown, sanitizing and summary rules of stories: nothing hostile
//! survives, the fast path keeps only what ammonia keeps, summaries are
//! cut at character boundaries to their length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::fuzzing::{self, content};

/// Every tag of sanitized HTML is one the allow-list keeps, with no event
/// attribute and no URL of a scheme other than http(s), mailto and tel.
/// Text and attribute values are escaped (`<` and `"` never appear raw in
/// them), so tags are found by `<` and attributes are `name="value"`.
fn assert_clean(html: &str) {
    for tag in html.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or(tag);
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        for bad in [
            "script", "iframe", "style", "object", "embed", "form", "svg", "math",
        ] {
            assert_ne!(name, bad, "<{bad}> survived in {html:?}");
        }
        let mut rest = &tag[name.len().min(tag.len())..];
        while let Some((attr, after)) = rest.split_once("=\"") {
            let attr = attr.trim().to_ascii_lowercase();
            let (value, after) = after.split_once('"').unwrap_or((after, ""));
            assert!(!attr.starts_with("on"), "{attr} survived in {html:?}");
            if matches!(attr.as_str(), "href" | "src" | "cite") {
                let value = value.trim_start().to_ascii_lowercase();
                if let Some((scheme, _)) = value.split_once(':') {
                    let relative = scheme.contains(['/', '?', '#']);
                    assert!(
                        relative || ["http", "https", "mailto", "tel"].contains(&scheme),
                        "{attr}=\"{value}\" survived in {html:?}"
                    );
                }
            }
            rest = after;
        }
    }
    assert_eq!(
        content::strip_illegal_chars(html),
        html,
        "an illegal char in {html:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let bases = fuzzing::bases();
    let html = content::markdown_to_html(text, &bases);
    assert_clean(&html);
    let (raw, fast) = fuzzing::markdown_raw(text);
    if fast {
        assert!(!html.contains("<a href"), "a link without rel in {html:?}");
        assert_eq!(
            content::sanitize_html(&html, &bases),
            content::sanitize_html(&raw, &bases),
            "the fast path kept what ammonia would not, for {text:?}"
        );
    }
    assert_clean(&content::sanitize_html(text, &bases));

    let plain = content::html_to_text(text);
    assert!(!plain.contains('\n'), "a line break in {plain:?}");

    let max = usize::from(first);
    let summary = content::summary_from_markdown(text, max);
    assert!(
        summary.chars().count() <= max + 1,
        "{summary:?} longer than {max}"
    );
    let cut = content::truncate_words(text, max);
    if text.chars().count() <= max {
        assert_eq!(cut, text);
    } else {
        let kept = cut.strip_suffix('…').expect("a cut text ends in …");
        assert!(
            text.starts_with(kept),
            "{kept:?} is not a prefix of {text:?}"
        );
        assert!(cut.chars().count() <= max + 1, "{cut:?} longer than {max}");
    }
});
