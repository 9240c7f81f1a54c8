//! `[feeds]`: where the feeds are written, how much each holds, and the
//! WebSub hubs they announce (`websub_*`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;
use url::Url;

use super::spans::{Checks, Context};

/// `[feeds]`.
#[derive(Debug, Clone)]
pub struct Feeds {
    /// Default `feeds`, resolved against the config file's folder.
    pub dir: PathBuf,
    /// Default 50: the newest N stories in each feed.
    pub items: usize,
    /// Default true: full body as well as the summary.
    pub full_content: bool,
    /// The `websub_*` keys.
    pub websub: WebSub,
}

/// WebSub (W3C Recommendation): the hubs every feed announces, and the
/// rules of the built-in hub.
#[derive(Debug, Clone)]
pub struct WebSub {
    /// `websub_hubs`, default none: each an external hub's URL, or
    /// `"builtin"` for tidings' own hub at `<public_url>websub`.
    pub hubs: Vec<Hub>,
    /// `websub_allow_private_callbacks`, default false: callbacks on
    /// loopback, private, link-local or unspecified addresses are refused
    /// unless true (for tests and closed networks).
    pub allow_private_callbacks: bool,
    /// `websub_min_lease_seconds`, default 3600: a shorter lease asked
    /// for is raised to it.
    pub min_lease: Duration,
    /// `websub_max_lease_seconds`, default 30 days: a longer lease asked
    /// for is lowered to it.
    pub max_lease: Duration,
    /// `websub_default_lease_seconds`, default 10 days: the lease of a
    /// subscription that asks for none (within min and max).
    pub default_lease: Duration,
    /// `websub_max_subscriptions_per_host`, default 100: subscriptions of
    /// one callback host at once.
    pub max_per_host: usize,
    /// `TIDINGS_WEBSUB_BACKOFF_MS` (default 30 s): the first pause after a
    /// hub or a subscriber failed to answer, doubled after each failure.
    /// From the environment (set by
    /// [`Config::with_environment`](super::Config::with_environment)).
    pub backoff: Duration,
}

impl WebSub {
    /// Whether tidings is its own hub.
    pub fn builtin(&self) -> bool {
        self.hubs.contains(&Hub::Builtin)
    }

    /// The external hubs, which ingest pings.
    pub fn external(&self) -> impl Iterator<Item = &Url> {
        self.hubs.iter().filter_map(|h| match h {
            Hub::External(url) => Some(url),
            Hub::Builtin => None,
        })
    }
}

/// One entry of `websub_hubs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hub {
    /// `"builtin"`: tidings is the hub, at `<public_url>websub`.
    Builtin,
    /// A hub elsewhere, pinged after each build that changed a feed.
    External(Url),
}

/// The default first pause of WebSub retries.
pub const DEFAULT_WEBSUB_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
pub(super) struct RawFeeds {
    #[serde(default = "default_feeds_dir")]
    dir: String,
    #[serde(default = "default_items")]
    items: i64,
    #[serde(default = "default_true")]
    full_content: bool,
    #[serde(default)]
    websub_hubs: Vec<String>,
    #[serde(default)]
    websub_allow_private_callbacks: bool,
    #[serde(default = "default_min_lease")]
    websub_min_lease_seconds: i64,
    #[serde(default = "default_max_lease")]
    websub_max_lease_seconds: i64,
    #[serde(default = "default_lease")]
    websub_default_lease_seconds: i64,
    #[serde(default = "default_max_per_host")]
    websub_max_subscriptions_per_host: i64,
}
pub(super) const FEEDS_KEYS: &[&str] = &[
    "dir",
    "items",
    "full_content",
    "websub_hubs",
    "websub_allow_private_callbacks",
    "websub_min_lease_seconds",
    "websub_max_lease_seconds",
    "websub_default_lease_seconds",
    "websub_max_subscriptions_per_host",
];

impl Default for RawFeeds {
    fn default() -> Self {
        RawFeeds {
            dir: default_feeds_dir(),
            items: default_items(),
            full_content: true,
            websub_hubs: Vec::new(),
            websub_allow_private_callbacks: false,
            websub_min_lease_seconds: default_min_lease(),
            websub_max_lease_seconds: default_max_lease(),
            websub_default_lease_seconds: default_lease(),
            websub_max_subscriptions_per_host: default_max_per_host(),
        }
    }
}
fn default_feeds_dir() -> String {
    "feeds".into()
}
fn default_items() -> i64 {
    50
}
fn default_true() -> bool {
    true
}
const DAY: i64 = 24 * 3600;
fn default_min_lease() -> i64 {
    3600
}
fn default_max_lease() -> i64 {
    30 * DAY
}
fn default_lease() -> i64 {
    10 * DAY
}
fn default_max_per_host() -> i64 {
    100
}

/// `[feeds]` checked; `value` is `None` when the section is not in the
/// file (the defaults).
pub(super) fn validate(
    cx: &mut Context,
    raw: RawFeeds,
    value: Option<&Spanned<DeValue<'_>>>,
    root: &Path,
) -> Option<Feeds> {
    // Without a `[feeds]` table there is nothing to point at: the
    // defaults are valid.
    let empty = Spanned::new(0..0, DeValue::Table(Default::default()));
    let mut t = Checks::new(cx, "feeds", value.unwrap_or(&empty));
    let items = t.range("items", raw.items, 1, 100_000) as usize;
    let hubs = hubs(&mut t, &raw.websub_hubs);
    let seconds = |n: i64| Duration::from_secs(n as u64);
    let year = 365 * DAY;
    let min_lease = t.range(
        "websub_min_lease_seconds",
        raw.websub_min_lease_seconds,
        1,
        year,
    );
    let max_lease = t.range(
        "websub_max_lease_seconds",
        raw.websub_max_lease_seconds,
        1,
        year,
    );
    if max_lease < min_lease {
        t.fail(
            "websub_max_lease_seconds",
            format!(
                "{max_lease} is less than `feeds.websub_min_lease_seconds` ({min_lease}): \
                 expected a number from {min_lease} to {year}"
            ),
        );
    }
    let default_lease = raw.websub_default_lease_seconds;
    if default_lease < min_lease || default_lease > max_lease {
        t.fail(
            "websub_default_lease_seconds",
            format!(
                "{default_lease} is out of range: expected a number from \
                 `websub_min_lease_seconds` ({min_lease}) to `websub_max_lease_seconds` ({max_lease})"
            ),
        );
    }
    let max_per_host = t.range(
        "websub_max_subscriptions_per_host",
        raw.websub_max_subscriptions_per_host,
        1,
        1_000_000,
    ) as usize;
    if !t.ok {
        return None;
    }
    Some(Feeds {
        dir: root.join(&raw.dir),
        items,
        full_content: raw.full_content,
        websub: WebSub {
            hubs,
            allow_private_callbacks: raw.websub_allow_private_callbacks,
            min_lease: seconds(min_lease),
            max_lease: seconds(max_lease),
            default_lease: seconds(default_lease),
            max_per_host,
            backoff: DEFAULT_WEBSUB_BACKOFF,
        },
    })
}

/// `websub_hubs`: each `"builtin"` or an absolute http(s) URL, none twice.
fn hubs(t: &mut Checks, raw: &[String]) -> Vec<Hub> {
    let mut hubs = Vec::new();
    for (i, text) in raw.iter().enumerate() {
        let key = format!("websub_hubs[{i}]");
        let Some(hub) = t.check(&key, parse_hub(text)) else {
            continue;
        };
        if hubs.contains(&hub) {
            t.fail(&key, format!("`{text}` is listed twice"));
            continue;
        }
        hubs.push(hub);
    }
    hubs
}

/// One entry of `websub_hubs`.
fn parse_hub(text: &str) -> Result<Hub, String> {
    let expected = "expected \"builtin\" or an absolute http(s) URL such as \
                    \"https://pubsubhubbub.appspot.com/\"";
    let text = text.trim();
    if text.eq_ignore_ascii_case("builtin") {
        return Ok(Hub::Builtin);
    }
    let url = Url::parse(text).map_err(|e| format!("`{text}` is not a URL ({e}): {expected}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("`{text}` is not an http(s) URL: {expected}"));
    }
    if url.fragment().is_some() {
        return Err(format!("`{text}` has a fragment: {expected}"));
    }
    Ok(Hub::External(url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const SITE: &str = "[site]\ntitle = \"T\"\nbase_url = \"https://example.org/news\"\n\n\
        [[sources]]\nkind = \"feed\"\nurl = \"https://partner.example.org/feed.xml\"\n\n";

    fn load(feeds: &str) -> Result<Config, String> {
        Config::from_str(Path::new("config.toml"), &format!("{SITE}[feeds]\n{feeds}")).map_err(
            |p| {
                p.iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            },
        )
    }

    #[test]
    fn the_builtin_hub_is_under_the_public_url() {
        let config = load("websub_hubs = [\"builtin\", \"https://hub.example.net/\"]").unwrap();
        let hubs: Vec<String> = config.hub_urls().iter().map(Url::to_string).collect();
        assert_eq!(
            hubs,
            [
                "https://example.org/news/websub",
                "https://hub.example.net/"
            ]
        );
        assert!(config.feeds.websub.builtin());
        assert!(!config.feeds.websub.allow_private_callbacks);
        assert_eq!(
            config.feeds.websub.default_lease,
            Duration::from_secs(10 * 86400)
        );
        assert!(load("").unwrap().hub_urls().is_empty());
    }

    #[test]
    fn lease_settings_must_agree() {
        let e = load(
            "websub_min_lease_seconds = 600\nwebsub_max_lease_seconds = 60\n\
             websub_default_lease_seconds = 30\nwebsub_max_subscriptions_per_host = 0\n",
        )
        .unwrap_err();
        assert!(
            e.contains("config.toml:11:28: `feeds.websub_max_lease_seconds`: 60 is less than"),
            "{e}"
        );
        assert!(
            e.contains("`feeds.websub_default_lease_seconds`: 30 is out of range"),
            "{e}"
        );
        assert!(
            e.contains("`feeds.websub_max_subscriptions_per_host`: 0 is out of range"),
            "{e}"
        );
    }

    #[test]
    fn a_hub_is_builtin_or_an_http_url() {
        assert_eq!(parse_hub("builtin"), Ok(Hub::Builtin));
        assert!(matches!(
            parse_hub("https://hub.example.org/"),
            Ok(Hub::External(_))
        ));
        assert!(parse_hub("ftp://hub.example.org/").is_err());
        assert!(parse_hub("hub.example.org").is_err());
        assert!(parse_hub("https://hub.example.org/#x").is_err());
    }
}
