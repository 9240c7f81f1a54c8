//! Fixtures the unit tests of several modules share: a site modelled on
//! the sample (two themes, a monthly digest, `[mail]`), loaded the way
//! `tidings` loads it, and stories and a digest email for it.

use chrono::{TimeZone, Utc};

use crate::config::Config;
use crate::digest::render::{DigestEmail, Links, Section};
use crate::model::{Story, StoryId, ThemeSlug};
use crate::store::StoredStory;

/// A site in a temporary folder (the config needs its story folder to
/// exist), loaded the way `tidings` loads it.
pub(crate) struct Site {
    pub dir: tempfile::TempDir,
    pub config: Config,
}

pub(crate) const CONFIG: &str = r#"
[site]
title = "Goda exempel"
base_url = "https://goda-exempel.example.org/"
language = "sv"
timezone = "Europe/Stockholm"

[[themes]]
slug = "miljo-och-klimat"
title = { sv = "Miljö och klimat", en = "Environment and climate" }

[[themes]]
slug = "lokal-demokrati"
title = { sv = "Lokal demokrati", en = "Local democracy" }

[[sources]]
kind = "directory"
path = "content/stories"

[mail]
from = "Goda exempel <nyhetsbrev@goda-exempel.example.org>"
reply_to = "redaktion@goda-exempel.example.org"
organization = "Centrum för lokal demokrati, Box 1, 111 11 Stockholm"

[[digests]]
id = "monthly"
title = { sv = "Goda exempel – månadsbrev", en = "Good examples – monthly" }
"#;

pub(crate) fn site(extra: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    fs_err::create_dir_all(dir.path().join("content/stories")).unwrap();
    let path = dir.path().join("config.toml");
    fs_err::write(&path, format!("{CONFIG}{extra}")).unwrap();
    let config = Config::load(&path).unwrap_or_else(|p| panic!("{p:?}"));
    Site { dir, config }
}

pub(crate) fn story(slug: &str, title: &str, themes: &[&str], day: u32) -> StoredStory {
    StoredStory {
        id: StoryId::parse(slug).unwrap(),
        guid: format!("tag:goda-exempel.example.org,2024-03-{day:02}:{slug}"),
        story: Story {
            id: None,
            slug: slug.into(),
            url: format!("https://goda-exempel.example.org/{slug}/"),
            title: title.into(),
            summary: format!(
                "Sammanfattning av {slug}: två kommuner, ett vattenprojekt och många \
                 möten mellan politiker och tjänstepersoner under ett helt år."
            ),
            body_html: "<p>BODY-MUST-NOT-APPEAR</p>".into(),
            body_source: None,
            language: None,
            authors: vec![],
            themes: themes
                .iter()
                .map(|t| ThemeSlug::parse(t).unwrap())
                .collect(),
            image: Some(format!(
                "https://goda-exempel.example.org/images/{slug}.jpg"
            )),
            image_alt: Some("Två teknikerer tar vattenprov vid en kanal".into()),
            published: Utc.with_ymd_and_hms(2024, 3, day, 8, 30, 0).unwrap(),
            updated: None,
            featured: false,
            origin: format!("content/stories/{slug}.md"),
            stamp: None,
        },
        first_seen: Utc.with_ymd_and_hms(2024, 3, day, 9, 0, 0).unwrap(),
        changed: None,
    }
}

pub(crate) fn stories() -> Vec<StoredStory> {
    vec![
        story(
            "vaxjo-an-giang",
            "Växjö och An Giang vässar demokratin",
            &["miljo-och-klimat"],
            14,
        ),
        story(
            "tom-och-jerry",
            "<b>Tom & Jerry</b> i \"Kisumu\"",
            &["lokal-demokrati"],
            2,
        ),
        story(
            "hallbar-stad",
            "Hållbar stad i Windhoek",
            &["miljo-och-klimat"],
            20,
        ),
    ]
}

pub(crate) fn email<'a>(
    config: &'a Config,
    stories: &'a [StoredStory],
    language: &'a str,
    period: &'a str,
) -> DigestEmail<'a> {
    let theme = |slug: &str| config.theme(&ThemeSlug::parse(slug).unwrap()).unwrap();
    DigestEmail {
        config,
        digest: config.digest(None).unwrap(),
        language,
        period,
        sections: vec![
            Section {
                theme: theme("miljo-och-klimat"),
                stories: vec![&stories[0], &stories[2]],
                more: 0,
            },
            Section {
                theme: theme("lokal-demokrati"),
                stories: vec![&stories[1]],
                more: 0,
            },
        ],
        links: Links {
            preferences: "https://goda-exempel.example.org/preferences/?t=abc&u=1".into(),
            unsubscribe: "https://goda-exempel.example.org/unsubscribe/?t=abc".into(),
            edition: "https://goda-exempel.example.org/digests/monthly/2024-03/".into(),
        },
        recipient: "anna@example.se",
        note: None,
        test: false,
        web: false,
    }
}
