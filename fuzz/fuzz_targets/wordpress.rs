//! A page of the WordPress REST API through its parsing and the mapping of
//! each post to a story.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::fuzzing;

fuzz_target!(|data: &[u8]| {
    let Ok(stories) = fuzzing::wordpress_stories(data) else {
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
