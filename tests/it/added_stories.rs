//! A build after an ingest that only added stories chooses what each feed
//! lists from what the last build's feeds listed and the new stories,
//! without reading every published story: its files are byte for byte
//! those of a build from scratch, wherever the new stories fall (newest,
//! too old for any list, into a theme whose list is short, tied in time
//! with a listed story). An edit or a withdrawal is planned from every
//! story again, and the next addition from the lists again.

use crate::support::{FIXTURE_CONFIG, Run, Site};

/// The fixture with four stories a feed and a fourth theme, `delta`.
fn config() -> String {
    FIXTURE_CONFIG.replace("items = 50", "items = 4").replace(
        "[[sources]]",
        "[[themes]]\nslug = \"delta\"\ntitle = \"Delta\"\n\n[[sources]]",
    )
}

/// Builds, logging how the feeds were chosen; says whether they were
/// chosen from the last build's lists.
fn build(site: &Site) -> (bool, Run) {
    let run = site.tidings_env(&["build"], &[("TIDINGS_LOG", "tidings=debug")]);
    assert_eq!(run.code, 0, "{run}");
    let from_lists = run
        .stderr
        .contains("feeds: chosen from the last build's lists and the stories added");
    (from_lists, run)
}

/// Asserts that the site's feeds are those a build from scratch of the
/// same stories writes, in a store of its own.
fn same_as_from_scratch(site: &Site, step: &str) {
    let fresh = Site::with_config(&config());
    for entry in std::fs::read_dir(site.path("content/stories")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            fresh.path("content/stories").join(entry.file_name()),
        )
        .unwrap();
    }
    fresh.build();
    let (ours, theirs) = (site.feeds_folder(), fresh.feeds_folder());
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{step}: the same files"
    );
    for (rel, bytes) in &ours {
        assert!(
            bytes == &theirs[rel],
            "{step}: {rel} differs from a build from scratch:\n--- this build\n{}\n--- from scratch\n{}",
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&theirs[rel])
        );
    }
}

/// Builds after `step`; asserts whether the feeds were chosen from the
/// last build's lists, and that they are those of a build from scratch.
fn built(site: &Site, step: &str, from_lists: bool) -> Run {
    let (chosen, run) = build(site);
    assert_eq!(chosen, from_lists, "{step}: chosen from the lists?\n{run}");
    same_as_from_scratch(site, step);
    run
}

#[test]
fn feeds_after_stories_added_are_those_of_a_build_from_scratch() {
    let site = Site::with_config(&config());
    for n in 0..12 {
        let themes: &[&str] = match n % 3 {
            0 => &["alpha"],
            1 => &["beta", "alpha"],
            _ => &["gamma"],
        };
        site.story(
            &format!("s{n:02}"),
            &format!("Story {n}"),
            &format!("2024-02-{:02}T09:00:00Z", n + 1),
            themes,
        );
    }
    site.story("d0", "Delta one", "2024-01-20T09:00:00Z", &["delta"]);
    // A first build has no lists to go by.
    built(&site, "first build", false);

    let steps: &[(&str, &str, &[&str])] = &[
        // The newest of all: tops the site's feed and alpha's.
        ("newest", "2024-03-01T09:00:00Z", &["alpha"]),
        // Older than every story the site's and beta's feeds list.
        ("too-old", "2023-01-01T09:00:00Z", &["beta"]),
        // Just as old, but delta's list is short: it enters that one.
        ("old-delta", "2023-01-02T09:00:00Z", &["delta", "gamma"]),
        // The time of `s11`, the newest before; `a-tie` sorts first.
        ("a-tie", "2024-02-12T09:00:00Z", &["gamma"]),
        // In no theme: only the site's feed can list it.
        ("no-theme", "2024-02-10T12:00:00Z", &[]),
    ];
    for (name, date, themes) in steps {
        site.story(name, &format!("Added {name}"), date, themes);
        let run = built(&site, name, true);
        assert!(
            run.stdout.contains("1 new, 0 updated, 0 withdrawn"),
            "{run}"
        );
    }

    // Two at once, one of them in a theme no list showed before.
    site.story("pair-1", "Pair one", "2024-02-20T09:00:00Z", &["delta"]);
    site.story(
        "pair-2",
        "Pair two",
        "2022-05-05T09:00:00Z",
        &["gamma", "beta"],
    );
    built(&site, "two added", true);

    // An edit moves a listed story down: chosen from every story again.
    site.story("newest", "Added newest", "2021-01-01T09:00:00Z", &["alpha"]);
    let run = built(&site, "an edit", false);
    assert!(run.stdout.contains("0 new, 1 updated"), "{run}");

    // A withdrawal leaves a gap only the story below can fill.
    site.remove_story("s11");
    let run = built(&site, "a withdrawal", false);
    assert!(run.stdout.contains("1 withdrawn"), "{run}");

    // And the next story added goes by the lists again.
    site.story(
        "after",
        "Added after",
        "2024-02-11T10:00:00Z",
        &["alpha", "delta"],
    );
    built(&site, "after a full choice", true);
}

/// The lists a build goes by are those of the stories just before its
/// ingest: when another process's ingest came in between (here: the build
/// of a second feeds folder from the same store), they are not.
#[test]
fn a_build_goes_by_the_lists_only_of_the_stories_just_before_its_ingest() {
    let site = Site::with_config(&config());
    site.story("one", "One", "2024-02-01T09:00:00Z", &["alpha"]);
    site.build();
    let other = site.path("other.toml");
    let text = std::fs::read_to_string(site.config_path()).unwrap();
    std::fs::write(
        &other,
        text.replace("dir = \"feeds\"", "dir = \"feeds-other\""),
    )
    .unwrap();
    site.story("two", "Two", "2024-02-02T09:00:00Z", &["beta"]);
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("--config")
        .arg(&other)
        .arg("build")
        .current_dir(site.root())
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    assert!(site.path("feeds-other/atom.xml").exists());
    site.story("three", "Three", "2024-02-03T09:00:00Z", &["gamma"]);
    built(&site, "after another ingest", false);
    site.story("four", "Four", "2024-02-04T09:00:00Z", &["alpha"]);
    built(&site, "four", true);
}
