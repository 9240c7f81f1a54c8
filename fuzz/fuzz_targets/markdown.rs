//! The Markdown, sanitizing and summary rules of stories: nothing hostile
//! survives, the fast path keeps only what ammonia keeps, summaries are
//! cut at character boundaries to their length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::fuzzing::{self, content};

fn assert_clean(html: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in [
        "<script",
        "<iframe",
        "<style",
        "javascript:",
        " onerror",
        " onclick",
    ] {
        assert!(!lower.contains(bad), "{bad} survived in {html:?}");
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
