//! `index.html` in the feeds folder: a page listing every feed with its
//! RSS, Atom and JSON links, plus `<link rel="alternate">` autodiscovery,
//! rendered with tera from `templates/index.html` — the site's own copy
//! when it has one, else the one built into tidings.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::prepare::{Feed, Format, feeds_base};
use crate::config::Config;
use crate::model::Lang;
use crate::templates::{self, Templates};

/// Name of the page in the feeds dir.
pub const FILE: &str = "index.html";

/// Where a site keeps its own copy of the template.
pub fn template_path(config: &Config) -> PathBuf {
    templates::site_path(config, FILE)
}

/// The template: the site's copy next to config.toml, else the built-in
/// one. An error names the file that does not parse.
pub fn load(config: &Config) -> Result<Templates> {
    Templates::load(config, &[FILE])
}

#[derive(Serialize)]
struct Page<'a> {
    site: SiteVars<'a>,
    feeds: Vec<FeedVars>,
    opml: String,
    updated: String,
    words: Words,
}

#[derive(Serialize)]
struct SiteVars<'a> {
    title: &'a str,
    description: &'a str,
    language: &'a str,
    base_url: &'a str,
}

#[derive(Serialize)]
struct FeedVars {
    /// The feed's full title ("Site – Theme").
    title: String,
    /// The theme's title, or the site's for the site's feed.
    name: String,
    description: String,
    home: String,
    theme: Option<String>,
    stories: usize,
    rss: String,
    atom: String,
    json: String,
}

/// The page's own words, in the site's language (Swedish or English).
#[derive(Serialize)]
struct Words {
    feeds: &'static str,
    opml: &'static str,
    updated: &'static str,
}

impl Words {
    fn new(lang: Lang) -> Words {
        if lang == Lang::Sv {
            Words {
                feeds: "Flöden",
                opml: "Alla flöden som OPML (för import i en flödesläsare)",
                updated: "Senast uppdaterad",
            }
        } else {
            Words {
                feeds: "Feeds",
                opml: "All feeds as OPML (to import into a feed reader)",
                updated: "Last updated",
            }
        }
    }
}

/// Renders the page for `feeds` with a loaded template.
pub fn render(template: &Templates, config: &Config, feeds: &[Feed]) -> Result<Vec<u8>> {
    let lang = config.site.language.as_str();
    let page = Page {
        site: SiteVars {
            title: &config.site.title,
            description: config.site.description.get(lang),
            language: lang,
            base_url: config.site.base_url.as_str(),
        },
        feeds: feeds
            .iter()
            .map(|f| FeedVars {
                title: f.title.clone(),
                name: f
                    .theme
                    .map_or(config.site.title.clone(), |t| t.title.get(lang).to_owned()),
                description: f.description.clone(),
                home: f.home_url.to_string(),
                theme: f.theme.map(|t| t.slug.to_string()),
                stories: f.stories.len(),
                rss: f.url(config, Format::Rss).to_string(),
                atom: f.url(config, Format::Atom).to_string(),
                json: f.url(config, Format::Json).to_string(),
            })
            .collect(),
        opml: feeds_base(config)
            .join(super::OPML_FILE)
            .expect("a constant path joins")
            .to_string(),
        updated: feeds
            .first()
            .map(|f| {
                f.updated
                    .with_timezone(&config.site.timezone)
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .unwrap_or_default(),
        words: Words::new(Lang::of(lang)),
    };
    let context = tera::Context::from_serialize(&page).map_err(anyhow::Error::new)?;
    let html = template.render(FILE, &context)?;
    Ok(html.into_bytes())
}
