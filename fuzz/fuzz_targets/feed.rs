//! An upstream feed's bytes through feed-rs and the mapping of each entry
//! to a story: no panic, and every story has an http(s) link, a title, a
//! sanitized body and a bounded summary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Ok(stories) = fuzzing::feed_stories(data) else {
        return;
    };
    for story in stories.into_iter().flatten() {
        assert!(story.url.starts_with("http://") || story.url.starts_with("https://"));
        assert!(!story.title.is_empty());
        assert!(story.summary.chars().count() <= 301, "{:?}", story.summary);
        assert!(!story.body_html.to_ascii_lowercase().contains("<script"));
        assert!(!story.slug.is_empty());
    }
});
