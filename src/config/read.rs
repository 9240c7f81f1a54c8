//! Loading, step one: the TOML tree read into each section's raw form, as
//! serde sees it. Each section, and each table of `[[themes]]`,
//! `[[sources]]` and `[[digests]]`, is read on its own, so that one bad
//! section does not hide the problems of the others. Unknown keys are
//! collected with `serde_ignored` rather than `deny_unknown_fields`, which
//! would stop at the first one (see `spans`).

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::bounces::{BOUNCES_KEYS, RawBounces};
use super::digests::{DIGEST_KEYS, RawDigest};
use super::feeds::{FEEDS_KEYS, RawFeeds};
use super::http::{HTTP_KEYS, RawHttp};
use super::mail::{MAIL_KEYS, RawMail};
use super::schedule::{RawSchedule, SCHEDULE_KEYS};
use super::site::{RawSite, SITE_KEYS};
use super::sources::{self, RawSource};
use super::spans::{Context, suggestion};
use super::storage::{RawStorage, STORAGE_KEYS};
use super::themes::{RawTheme, THEME_KEYS};

/// A table as read, with its spanned value for the problems found later.
type Read<'i, T> = (T, Spanned<DeValue<'i>>);
/// A table of an array of tables, with its index.
type ReadItem<'i, T> = (usize, T, Spanned<DeValue<'i>>);

/// The sections as read, each `None` when it was absent or could not be
/// read.
pub(super) struct RawConfig<'i> {
    /// The whole file, to tell a missing section from an unreadable one.
    pub root: &'i DeTable<'i>,
    pub site: Option<Read<'i, RawSite>>,
    pub themes: Vec<ReadItem<'i, RawTheme>>,
    pub sources: Vec<ReadItem<'i, RawSource>>,
    /// The defaults, without a value, when the file has no `[feeds]`.
    pub feeds: Option<(RawFeeds, Option<Spanned<DeValue<'i>>>)>,
    /// The defaults, without a value, when the file has no `[storage]`.
    pub storage: Option<(RawStorage, Option<Spanned<DeValue<'i>>>)>,
    pub mail: Option<Read<'i, RawMail>>,
    pub digests: Vec<ReadItem<'i, RawDigest>>,
    pub schedule: Option<Read<'i, RawSchedule>>,
    pub http: Option<Read<'i, RawHttp>>,
    pub bounces: Option<Read<'i, RawBounces>>,
    /// A section or table could not be read (its problems are reported).
    pub any_section_failed: bool,
}

const SECTIONS: &[&str] = &[
    "site", "themes", "sources", "feeds", "storage", "mail", "digests", "schedule", "http",
    "bounces",
];

/// Reads every section of `root`, reporting what cannot be read.
pub(super) fn read<'i>(cx: &mut Context, root: &'i DeTable<'i>) -> RawConfig<'i> {
    let mut raw = RawConfig {
        root,
        site: None,
        themes: Vec::new(),
        sources: Vec::new(),
        feeds: Some((RawFeeds::default(), None)),
        storage: Some((RawStorage::default(), None)),
        mail: None,
        digests: Vec::new(),
        schedule: None,
        http: None,
        bounces: None,
        any_section_failed: false,
    };
    for (key, value) in root {
        let name = key.get_ref().as_ref();
        let failed = match name {
            "site" => store(&mut raw.site, table(cx, name, value, SITE_KEYS)),
            "themes" => tables(cx, name, value, &mut raw.themes, |cx, key, item| {
                cx.section::<RawTheme>(key, item, THEME_KEYS)
            }),
            "sources" => tables(cx, name, value, &mut raw.sources, sources::read),
            "feeds" => store(
                &mut raw.feeds,
                table(cx, name, value, FEEDS_KEYS).map(|(s, v)| (s, Some(v))),
            ),
            "storage" => store(
                &mut raw.storage,
                table(cx, name, value, STORAGE_KEYS).map(|(s, v)| (s, Some(v))),
            ),
            "mail" => store(&mut raw.mail, table(cx, name, value, MAIL_KEYS)),
            "digests" => tables(cx, name, value, &mut raw.digests, |cx, key, item| {
                cx.section::<RawDigest>(key, item, DIGEST_KEYS)
            }),
            "schedule" => store(&mut raw.schedule, table(cx, name, value, SCHEDULE_KEYS)),
            "http" => store(&mut raw.http, table(cx, name, value, HTTP_KEYS)),
            "bounces" => store(&mut raw.bounces, table(cx, name, value, BOUNCES_KEYS)),
            other => {
                let hint = suggestion(other, SECTIONS);
                cx.problem(
                    other,
                    Some(key.span()),
                    format!(
                        "unknown section{hint}; expected one of: {}",
                        SECTIONS.join(", ")
                    ),
                );
                false
            }
        };
        raw.any_section_failed |= failed;
    }
    raw
}

/// Puts what was read in `slot`; whether it could not be read.
fn store<T>(slot: &mut Option<T>, read: Option<T>) -> bool {
    *slot = read;
    slot.is_none()
}

/// The section `[name]` with its `known` keys.
fn table<'i, T: serde::de::DeserializeOwned>(
    cx: &mut Context,
    name: &str,
    value: &'i Spanned<DeValue<'i>>,
    known: &[&str],
) -> Option<Read<'i, T>> {
    cx.section::<T>(name, value, known)
        .map(|s| (s, value.clone()))
}

/// Each table of `[[name]]` that `read` can read, into `out`; whether
/// one could not be read.
fn tables<'i, T>(
    cx: &mut Context,
    name: &str,
    value: &'i Spanned<DeValue<'i>>,
    out: &mut Vec<ReadItem<'i, T>>,
    mut read: impl FnMut(&mut Context, &str, &'i Spanned<DeValue<'i>>) -> Option<T>,
) -> bool {
    let mut failed = false;
    for (i, item) in cx.array_of_tables(name, value).into_iter().enumerate() {
        match read(cx, &format!("{name}[{i}]"), item) {
            Some(t) => out.push((i, t, item.clone())),
            None => failed = true,
        }
    }
    failed
}
