//! The site's pages: `/` (the feeds of the site and of every theme, the
//! latest stories, the sign-up form), `/themes/<slug>/`, the archive of
//! editions (`/archive/`, `/archive/<digest>/`, `/archive/<digest>/<id>`,
//! the "view in browser" link of every digest email), and the page every
//! unknown path gets (404).
//!
//! Links are root-relative (`/feeds/…`, `/themes/…`): the service answers
//! at the root of its host.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;

use super::AppState;
use super::answers::{BODY_LIMIT, Link, Message, internal_error, not_found_page};
use super::forms::{self, Prefill, SignupForm};
use super::render::{self, Alternate, Cache, FeedLinks, Layout};
use super::words::{Lang, PageLang};
use crate::config::{Config, Theme};
use crate::model::ThemeSlug;
use crate::store::StoredStory;

/// Stories on the front page and on a theme's page.
const LATEST: usize = 10;
const THEME_LATEST: usize = 20;
/// Editions listed per digest in the archive.
const ARCHIVE_LIMIT: i64 = 500;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/themes/{slug}/", get(theme))
        .route("/themes/{slug}", get(theme))
        .route("/archive/", get(archive))
        .route("/archive", get(archive))
        .route("/archive/{digest}/", get(digest_archive))
        .route("/archive/{digest}", get(digest_archive))
        .route("/archive/{digest}/{edition}", get(edition))
        .route("/archive/{digest}/{edition}/", get(edition))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// The answer to every unknown path.
pub async fn not_found(State(shared): State<AppState>, pl: PageLang) -> Response {
    not_found_page(&shared, pl)
}

/// A story in a list.
#[derive(Debug, Serialize)]
pub struct StoryVars {
    title: String,
    /// Only http(s) links; a story with another kind is shown unlinked.
    url: Option<String>,
    /// The story's own language when it has one (`lang` attribute).
    lang: Option<String>,
    date: String,
    date_iso: String,
    summary: String,
    /// The story's picture (only https: the pages' Content-Security-Policy
    /// loads no other), and its text alternative ("" when it has none).
    image: Option<String>,
    image_alt: String,
    themes: Vec<Link>,
}

impl StoryVars {
    pub fn new(config: &Config, lang: Lang, stored: &StoredStory) -> StoryVars {
        let story = &stored.story;
        let published = story.published.with_timezone(&config.site.timezone);
        StoryVars {
            title: story.title.clone(),
            url: Some(story.url.clone())
                .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
            lang: story.language.as_ref().map(|l| l.as_str().to_owned()),
            date: crate::digest::words::date(lang.code(), published),
            date_iso: published.format("%Y-%m-%d").to_string(),
            summary: story.summary.clone(),
            image: story.image.clone().filter(|u| u.starts_with("https://")),
            image_alt: story.image_alt.clone().unwrap_or_default(),
            themes: story
                .themes
                .iter()
                .filter_map(|slug| config.theme(slug))
                .map(|t| Link {
                    href: theme_path(t),
                    text: t.title.get(lang.code()).to_owned(),
                })
                .collect(),
        }
    }
}

fn theme_path(theme: &Theme) -> String {
    format!("/themes/{}/", theme.slug)
}

/// A theme with its page and feeds.
#[derive(Debug, Serialize)]
struct ThemeVars {
    slug: String,
    title: String,
    description: String,
    href: String,
    feeds: FeedLinks,
}

impl ThemeVars {
    fn new(theme: &Theme, lang: Lang) -> ThemeVars {
        ThemeVars {
            slug: theme.slug.to_string(),
            title: theme.title.get(lang.code()).to_owned(),
            description: theme.description.get(lang.code()).to_owned(),
            href: theme_path(theme),
            feeds: FeedLinks::new(Some(theme)),
        }
    }
}

/// The newest published stories, of one theme or of all.
async fn latest(
    shared: &AppState,
    theme: Option<&ThemeSlug>,
    limit: usize,
) -> anyhow::Result<Vec<StoredStory>> {
    let index = shared.store.published_index().await?;
    let ids: Vec<_> = index
        .iter()
        .filter(|s| theme.is_none_or(|t| s.themes.contains(t)))
        .take(limit)
        .map(|s| &s.id)
        .collect();
    shared.store.published_by_ids(&ids).await
}

#[derive(Serialize)]
struct IndexPage {
    site_feeds: FeedLinks,
    opml: &'static str,
    themes: Vec<ThemeVars>,
    stories: Vec<StoryVars>,
    #[serde(flatten)]
    signup: SignupForm,
}

async fn index(State(shared): State<AppState>, pl: PageLang, headers: HeaderMap) -> Response {
    let config = &shared.config;
    let lang = pl.lang;
    let stories = match latest(&shared, None, LATEST).await {
        Ok(s) => s,
        Err(e) => return internal_error(&shared, pl, &e),
    };
    let site_feeds = FeedLinks::new(None);
    let mut alternates: Vec<Alternate> = site_feeds.alternates(&config.site.title).into();
    for t in &config.themes {
        let title = format!("{} – {}", config.site.title, t.title.get(lang.code()));
        alternates.extend(FeedLinks::new(Some(t)).alternates(&title));
    }
    let (signup, cookie) = forms::signup_form(&shared, pl, &headers, Prefill::default());
    let page = IndexPage {
        site_feeds,
        opml: "/feeds/feeds.opml",
        themes: config
            .themes
            .iter()
            .map(|t| ThemeVars::new(t, lang))
            .collect(),
        stories: stories
            .iter()
            .map(|s| StoryVars::new(config, lang, s))
            .collect(),
        signup,
    };
    let layout = Layout::new(config, lang, pl.explicit, "/", &config.site.title)
        .alternates(alternates)
        .signup_here()
        .wide();
    let mut response =
        shared
            .pages
            .page(StatusCode::OK, "index.html", &layout, &page, Cache::NoStore);
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Serialize)]
struct ThemePage {
    theme: ThemeVars,
    site_feeds: FeedLinks,
    stories: Vec<StoryVars>,
    #[serde(flatten)]
    signup: SignupForm,
}

async fn theme(
    State(shared): State<AppState>,
    Path(slug): Path<String>,
    pl: PageLang,
    headers: HeaderMap,
) -> Response {
    let config = &shared.config;
    let lang = pl.lang;
    let Some(theme) = ThemeSlug::parse(&slug).ok().and_then(|s| config.theme(&s)) else {
        return not_found_page(&shared, pl);
    };
    let stories = match latest(&shared, Some(&theme.slug), THEME_LATEST).await {
        Ok(s) => s,
        Err(e) => return internal_error(&shared, pl, &e),
    };
    let vars = ThemeVars::new(theme, lang);
    let title = format!("{} – {}", config.site.title, vars.title);
    let site_feeds = FeedLinks::new(None);
    let mut alternates: Vec<Alternate> = vars.feeds.alternates(&title).into();
    alternates.extend(site_feeds.alternates(&config.site.title));
    let prefill = Prefill {
        themes: vec![theme.slug.to_string()],
        ..Prefill::default()
    };
    let (signup, cookie) = forms::signup_form(&shared, pl, &headers, prefill);
    let layout = Layout::new(config, lang, pl.explicit, &vars.href, &vars.title)
        .alternates(alternates)
        .signup_here();
    let page = ThemePage {
        stories: stories
            .iter()
            .map(|s| StoryVars::new(config, lang, s))
            .collect(),
        theme: vars,
        site_feeds,
        signup,
    };
    let mut response =
        shared
            .pages
            .page(StatusCode::OK, "theme.html", &layout, &page, Cache::NoStore);
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Serialize)]
struct ArchivePage {
    digests: Vec<DigestVars>,
    /// Only one digest's page (`/archive/<digest>/`).
    single: bool,
}

#[derive(Clone, Serialize)]
struct DigestVars {
    id: String,
    title: String,
    href: String,
    editions: Vec<EditionLink>,
}

#[derive(Clone, Serialize)]
struct EditionLink {
    href: String,
    label: String,
    date: String,
    date_iso: String,
    stories: i64,
}

async fn digest_vars(
    shared: &AppState,
    digest: &crate::config::Digest,
    lang: Lang,
) -> anyhow::Result<DigestVars> {
    let config = &shared.config;
    let editions = shared
        .store
        .archived_editions(&digest.id, ARCHIVE_LIMIT)
        .await?;
    Ok(DigestVars {
        id: digest.id.clone(),
        title: digest.title.get(lang.code()).to_owned(),
        href: format!("/archive/{}/", digest.id),
        editions: editions
            .iter()
            .map(|a| {
                let e = &a.edition;
                let sent = e.period_end.with_timezone(&config.site.timezone);
                EditionLink {
                    href: format!("/archive/{}/{}", digest.id, e.id),
                    label: crate::digest::email::period_label(config, lang.code(), e.period()),
                    date: crate::digest::words::date(lang.code(), sent),
                    date_iso: sent.format("%Y-%m-%d").to_string(),
                    stories: a.stories,
                }
            })
            .collect(),
    })
}

async fn archive(State(shared): State<AppState>, pl: PageLang) -> Response {
    let mut digests = Vec::new();
    for d in &shared.config.digests {
        match digest_vars(&shared, d, pl.lang).await {
            Ok(v) => digests.push(v),
            Err(e) => return internal_error(&shared, pl, &e),
        }
    }
    let w = super::words::words(pl.lang);
    let layout = Layout::new(
        &shared.config,
        pl.lang,
        pl.explicit,
        "/archive/",
        w.archive_heading,
    );
    let page = ArchivePage {
        digests,
        single: false,
    };
    shared
        .pages
        .page(StatusCode::OK, "archive.html", &layout, &page, Cache::Short)
}

async fn digest_archive(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    pl: PageLang,
) -> Response {
    let Some(digest) = shared.config.digest(Some(&id)) else {
        return not_found_page(&shared, pl);
    };
    let vars = match digest_vars(&shared, digest, pl.lang).await {
        Ok(v) => v,
        Err(e) => return internal_error(&shared, pl, &e),
    };
    let layout = Layout::new(
        &shared.config,
        pl.lang,
        pl.explicit,
        &vars.href,
        &vars.title,
    );
    let page = ArchivePage {
        digests: vec![vars],
        single: true,
    };
    shared
        .pages
        .page(StatusCode::OK, "archive.html", &layout, &page, Cache::Short)
}

async fn edition(
    State(shared): State<AppState>,
    Path((digest_id, edition_id)): Path<(String, String)>,
    pl: PageLang,
) -> Response {
    let config = &shared.config;
    let lang = pl.lang;
    let Some(digest) = config.digest(Some(&digest_id)) else {
        return not_found_page(&shared, pl);
    };
    let Ok(edition_id) = edition_id.parse::<i64>() else {
        return not_found_page(&shared, pl);
    };
    let found = async {
        let Some(edition) = shared.store.edition_of(&digest.id, edition_id).await? else {
            return Ok(None);
        };
        let stories = shared.store.edition_stories(edition.id).await?;
        let stories =
            crate::sources::bodies::filled(&shared.config, &shared.store, stories).await?;
        anyhow::Ok(Some((edition, stories)))
    };
    let (edition, stories) = match found.await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found_page(&shared, pl),
        Err(e) => return internal_error(&shared, pl, &e),
    };
    let email = match crate::digest::email::web_edition(
        config,
        &shared.editions,
        digest,
        lang.code(),
        &edition,
        &stories,
    ) {
        Ok(email) => email,
        Err(e) => return internal_error(&shared, pl, &e),
    };
    let page = EditionPage {
        digest: digest.title.get(lang.code()).to_owned(),
        period: crate::digest::email::period_label(config, lang.code(), edition.period()),
        archive_href: format!("/archive/{}/", digest.id),
        email,
    };
    let path = format!("/archive/{}/{}", digest.id, edition.id);
    let heading = format!("{} {}", page.digest, page.period);
    let layout = Layout::new(config, lang, pl.explicit, &path, &heading);
    shared
        .pages
        .page(StatusCode::OK, "edition.html", &layout, &page, Cache::Short)
}

/// An edition's page: the email itself, made for the web
/// (`digest::email::web_edition`).
#[derive(Serialize)]
struct EditionPage {
    digest: String,
    period: String,
    archive_href: String,
    /// The email's styles and body, as HTML the digest's templates made.
    email: String,
}

/// Every page of this module with sample values (see
/// [`render::Templates::check`]): the front page, a theme's page, the
/// archive (all digests, one), an edition, a message.
pub(super) fn samples(config: &Config, lang: Lang) -> Vec<render::Sample> {
    let stories = crate::templates::sample_stories(config);
    let story_vars = || -> Vec<StoryVars> {
        stories
            .iter()
            .map(|s| StoryVars::new(config, lang, s))
            .collect()
    };
    let layout = |path: &str, heading: &str| Layout::new(config, lang, false, path, heading);
    let mut out = vec![render::Sample::new(
        "index.html",
        layout("/", &config.site.title),
        &IndexPage {
            site_feeds: FeedLinks::new(None),
            opml: "/feeds/feeds.opml",
            themes: config
                .themes
                .iter()
                .map(|t| ThemeVars::new(t, lang))
                .collect(),
            stories: story_vars(),
            signup: forms::sample_form(config, lang),
        },
    )];
    if let Some(theme) = config.themes.first() {
        let vars = ThemeVars::new(theme, lang);
        out.push(render::Sample::new(
            "theme.html",
            layout(&vars.href.clone(), &vars.title.clone()),
            &ThemePage {
                theme: vars,
                site_feeds: FeedLinks::new(None),
                stories: story_vars(),
                signup: forms::sample_form(config, lang),
            },
        ));
    }
    let digests: Vec<DigestVars> = config
        .digests
        .iter()
        .map(|d| DigestVars {
            id: d.id.clone(),
            title: d.title.get(lang.code()).to_owned(),
            href: format!("/archive/{}/", d.id),
            editions: vec![EditionLink {
                href: format!("/archive/{}/1", d.id),
                label: crate::digest::email::period_label(
                    config,
                    lang.code(),
                    crate::store::editions::Period {
                        start: chrono::Utc::now() - crate::store::editions::FIRST_EDITION_LOOKBACK,
                        end: chrono::Utc::now(),
                    },
                ),
                date: crate::digest::words::date(lang.code(), chrono::Utc::now()),
                date_iso: "2026-12-01".into(),
                stories: stories.len() as i64,
            }],
        })
        .collect();
    // One digest's page exists only for a configured digest.
    for single in [false, true]
        .into_iter()
        .filter(|s| !s || !digests.is_empty())
    {
        out.push(render::Sample::new(
            "archive.html",
            layout("/archive/", super::words::words(lang).archive_heading),
            &ArchivePage {
                digests: digests[..if single { 1 } else { digests.len() }.min(digests.len())]
                    .to_vec(),
                single,
            },
        ));
    }
    let w = super::words::words(lang);
    if let Some(d) = digests.first() {
        out.push(render::Sample::new(
            "edition.html",
            layout(&format!("/archive/{}/1", d.id), &d.title),
            &EditionPage {
                digest: d.title.clone(),
                period: d.editions[0].label.clone(),
                archive_href: d.href.clone(),
                email: "<h1>A sample edition</h1>".into(),
            },
        ));
    }
    out.push(render::Sample::new(
        "message.html",
        layout("/", w.not_found_heading),
        &Message {
            id: "not-found",
            heading: w.not_found_heading.into(),
            paragraphs: vec![w.not_found_text.into()],
            link: Some(Link {
                href: "/".into(),
                text: w.home.into(),
            }),
            path: "/".into(),
        },
    ));
    out
}
