//! Feed files are replaced atomically: a reader holding the old file keeps
//! reading it whole, no temporary file is left behind, and feeds of themes
//! that were removed from the config disappear.

use std::io::Read;

use crate::support::{FIXTURE_CONFIG, Site};

#[test]
fn a_reader_of_the_old_file_never_sees_a_half_written_one() {
    let site = Site::new();
    site.story("one", "One", "2024-01-01", &["alpha"]);
    site.build();
    let old = site.feed_bytes("rss.xml");
    // Opened before the rebuild, as a web server serving it would.
    let mut handle = std::fs::File::open(site.path("feeds/rss.xml")).unwrap();

    for i in 0..50 {
        site.story(
            &format!("more-{i:02}"),
            &format!("More {i}"),
            "2024-02-01",
            &["alpha"],
        );
    }
    site.build();
    let new = site.feed_bytes("rss.xml");
    assert_ne!(old, new);
    let mut through_handle = Vec::new();
    handle.read_to_end(&mut through_handle).unwrap();
    assert_eq!(
        through_handle, old,
        "the old file was replaced, not rewritten in place"
    );
    assert!(rss::Channel::read_from(&new[..]).is_ok());

    let mut stack = vec![site.path("feeds")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".tidings-"),
                "temporary file left: {}",
                path.display()
            );
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
}

#[test]
fn feed_files_are_readable_by_everyone() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new();
    site.build();
    let mode = std::fs::metadata(site.path("feeds/atom.xml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
}

#[test]
fn write_if_changed_reports_whether_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/feed.xml");
    assert!(tidings::feeds::write_if_changed(&path, b"one").unwrap());
    assert!(!tidings::feeds::write_if_changed(&path, b"one").unwrap());
    assert!(tidings::feeds::write_if_changed(&path, b"two").unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), b"two");
}

#[test]
fn feeds_of_a_removed_theme_are_removed() {
    let site = Site::new();
    site.story("one", "One", "2024-01-01", &["alpha"]);
    site.build();
    assert!(site.path("feeds/themes/gamma/rss.xml").exists());
    let without_gamma =
        FIXTURE_CONFIG.replace("[[themes]]\nslug = \"gamma\"\ntitle = \"Gamma\"\n", "");
    assert_ne!(without_gamma, FIXTURE_CONFIG);
    site.write_config(&without_gamma);
    // Something of the operator's own in that folder stays.
    std::fs::write(site.path("feeds/themes/beta/notes.txt"), "mine").unwrap();
    let run = site.build();
    assert!(run.stdout.contains("3 removed"), "{run}");
    assert!(!site.path("feeds/themes/gamma").exists());
    assert!(site.path("feeds/themes/beta/notes.txt").exists());
    assert!(site.path("feeds/themes/alpha/rss.xml").exists());
}
