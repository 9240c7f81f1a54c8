//! `[site]`: the site's name, address, language and time zone.

use chrono_tz::Tz;
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;
use url::Url;

use super::Localized;
use super::spans::{Checks, Context};
use crate::model::Language;
use crate::model::text::clean_line;

/// `[site]`.
#[derive(Debug, Clone)]
pub struct Site {
    pub title: String,
    /// Absolute, with a path ending in `/`.
    pub base_url: Url,
    /// Default `sv`. Theme titles and feed languages follow it.
    pub language: Language,
    /// Default `UTC`. Dates without an offset are read in it.
    pub timezone: Tz,
    /// Default empty; one string, or one per language.
    pub description: Localized,
    /// Default empty.
    pub author: String,
    /// The site's logo (an absolute URL, or a path under `base_url`), shown
    /// at the top of the pages and the emails. Default none.
    pub logo: Option<Url>,
    /// The accent colour of the pages and the emails (buttons, links,
    /// headings), `#rrggbb`. Default `#1d5c8f`.
    pub accent: String,
}

/// The accent colour when `[site] accent` is not set.
pub const DEFAULT_ACCENT: &str = "#1d5c8f";

#[derive(Debug, Deserialize)]
pub(super) struct RawSite {
    title: String,
    base_url: String,
    #[serde(default = "default_language")]
    language: String,
    #[serde(default = "default_timezone")]
    timezone: String,
    #[serde(default)]
    description: Localized,
    #[serde(default)]
    author: String,
    #[serde(default)]
    logo: Option<String>,
    #[serde(default)]
    accent: Option<String>,
}
pub(super) const SITE_KEYS: &[&str] = &[
    "title",
    "base_url",
    "language",
    "timezone",
    "description",
    "author",
    "logo",
    "accent",
];

fn default_language() -> String {
    "sv".into()
}
fn default_timezone() -> String {
    "UTC".into()
}

/// `[site]` checked. `raw` is `None` when the section could not be read
/// (its problems are reported already) or is not in the file (`present`
/// false), which is a problem of its own.
pub(super) fn validate(
    cx: &mut Context,
    raw: Option<(RawSite, Spanned<DeValue<'_>>)>,
    present: bool,
) -> Option<Site> {
    let Some((raw, value)) = raw else {
        if !present {
            cx.problem(
                "site",
                Some(0..0),
                "missing section [site]: it needs at least `title` and `base_url`, \
                 such as base_url = \"https://example.org\"",
            );
        }
        return None;
    };
    let mut t = Checks::new(cx, "site", &value);
    let base_url = t.check("base_url", parse_base_url(&raw.base_url));
    let timezone = t.check(
        "timezone",
        raw.timezone.parse::<Tz>().map_err(|_| {
            format!(
                "unknown time zone `{}`: expected an IANA name such as \"Europe/Stockholm\" or \"UTC\"",
                raw.timezone
            )
        }),
    );
    let language = t.check("language", Language::parse(&raw.language));
    if raw.title.trim().is_empty() {
        t.fail("title", "must not be empty");
    }
    let logo = match (&raw.logo, &base_url) {
        (Some(logo), Some(base)) => t.check("logo", parse_logo(base, logo)).map(Some),
        _ => Some(None),
    };
    let accent = match &raw.accent {
        Some(accent) => t.check("accent", parse_colour(accent)),
        None => Some(DEFAULT_ACCENT.to_owned()),
    };
    if !t.ok {
        return None;
    }
    // Feeds are XML: characters it forbids must not reach them.
    Some(Site {
        title: clean_line(&raw.title),
        base_url: base_url?,
        language: language?,
        timezone: timezone?,
        description: raw.description.map(clean_line),
        author: clean_line(&raw.author),
        logo: logo?,
        accent: accent?,
    })
}

/// The logo's URL: absolute (http or https), or a path joined to the
/// site's address.
fn parse_logo(base: &Url, logo: &str) -> Result<Url, String> {
    let url = base
        .join(logo.trim())
        .map_err(|e| format!("`{logo}` is not a URL ({e}): expected such as \"/logo.png\""))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{logo}` is not an http(s) URL: expected such as \"/logo.png\" or \"https://example.org/logo.png\""
        ));
    }
    Ok(url)
}

/// A colour as `#rrggbb` (or `#rgb`), lower-cased; anything else could
/// break out of a `style` attribute.
fn parse_colour(colour: &str) -> Result<String, String> {
    let c = colour.trim().to_ascii_lowercase();
    let hex = c.strip_prefix('#').unwrap_or("");
    if matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(c)
    } else {
        Err(format!(
            "`{colour}` is not a colour: expected `#rrggbb`, such as \"{DEFAULT_ACCENT}\""
        ))
    }
}

/// An absolute http(s) URL; its path is made to end in `/` so that story
/// URLs join under it.
pub fn parse_base_url(s: &str) -> Result<Url, String> {
    let expected = "expected an absolute http(s) URL such as \"https://example.org\"";
    let mut url =
        Url::parse(s).map_err(|e| format!("`{s}` is not an absolute URL ({e}): {expected}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("`{s}` is not an http(s) URL: {expected}"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{s}` has a query or fragment: {expected}"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_gets_a_trailing_slash() {
        assert_eq!(
            parse_base_url("https://x.org/site").unwrap().as_str(),
            "https://x.org/site/"
        );
        assert!(parse_base_url("/relative").is_err());
        assert!(parse_base_url("ftp://x.org").is_err());
    }

    #[test]
    fn logos_join_the_site_and_colours_are_hex() {
        let base = parse_base_url("https://x.org/news/").unwrap();
        assert_eq!(
            parse_logo(&base, "img/logo.png").unwrap().as_str(),
            "https://x.org/news/img/logo.png"
        );
        assert_eq!(
            parse_logo(&base, "https://cdn.org/l.svg").unwrap().as_str(),
            "https://cdn.org/l.svg"
        );
        assert!(parse_logo(&base, "javascript:alert(1)").is_err());
        assert_eq!(parse_colour(" #1D5C8F ").unwrap(), "#1d5c8f");
        assert_eq!(parse_colour("#abc").unwrap(), "#abc");
        for bad in ["1d5c8f", "#12345", "red", "#12345g", "#123;x"] {
            assert!(parse_colour(bad).is_err(), "{bad}");
        }
    }
}
