//! A story file's text through the directory source's parsing: front
//! matter split and read as TOML, then the story (or a problem with a
//! line in the file).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::fuzzing::{self, StoryFile};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((front, offset, body)) = fuzzing::split_front_matter(text) {
        assert_eq!(&text[offset..offset + front.len()], front);
        assert!(text.ends_with(body));
    }
    match fuzzing::story_file(text) {
        Ok(StoryFile::Story(story)) => {
            assert!(!story.title.trim().is_empty(), "a story without a title");
            assert!(
                story.summary.chars().count() <= 301,
                "summary {:?}",
                story.summary
            );
            assert!(!story.body_html.contains("<script"), "{}", story.body_html);
        }
        Ok(StoryFile::Draft) => {}
        Err(problem) => {
            let lines = text.split('\n').count();
            if let Some(line) = problem.line {
                assert!(
                    line >= 1 && line <= lines,
                    "line {line} of {lines}: {problem:?}"
                );
            }
        }
    }
});
