//! Rendering the site's pages: the tera templates of `templates/web/`
//! (built into the binary, each overridable by a site's own
//! `templates/web/<name>.html` next to config.toml), the layout every page
//! shares, and HTML responses with their security headers.
//!
//! Handlers prepare plain data (already localized, already decided) and
//! the templates only format it; tera escapes every value, since every
//! template name ends in `.html`.

use anyhow::Result;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::words::{Lang, Words};
use crate::config::{Config, Theme};
use crate::feeds::prepare::Format;
use crate::model::problem::Problem;

/// The page templates' names (built in, each replaceable by a site's own
/// `templates/web/<name>` next to config.toml).
fn names() -> Vec<&'static str> {
    crate::templates::BUILT_IN
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| name.starts_with("web/"))
        .collect()
}

/// The page templates, parsed once at start.
pub struct Templates(crate::templates::Templates);

/// A page to render with sample values, to find a template that cannot
/// render before anyone asks for the page (see [`Templates::check`]).
pub struct Sample {
    pub file: &'static str,
    pub layout: Layout,
    pub page: serde_json::Value,
}

impl Sample {
    pub fn new(file: &'static str, layout: Layout, page: &impl Serialize) -> Sample {
        Sample {
            file,
            layout,
            page: serde_json::to_value(page).expect("page values serialize"),
        }
    }
}

impl Templates {
    /// The built-in templates, each replaced by the site's own file when
    /// there is one. An error names the file that does not parse.
    pub fn load(config: &Config) -> Result<Templates> {
        crate::templates::Templates::load(config, &names()).map(Templates)
    }

    /// Renders `web/<file>` with the layout's names and `page`.
    pub fn render(&self, file: &str, layout: &Layout, page: &impl Serialize) -> Result<String> {
        let mut context = tera::Context::from_serialize(layout).map_err(anyhow::Error::new)?;
        context.insert("page", page);
        self.0.render(&format!("web/{file}"), &context)
    }

    /// Parses every template and renders every sample: a problem for each
    /// template that does not parse and each page that does not render.
    pub fn check(config: &Config, samples: &[Sample]) -> Vec<Problem> {
        let (templates, errors) = crate::templates::Templates::parse(config, &names());
        if !errors.is_empty() {
            return errors
                .iter()
                .map(|e| {
                    let mut p = templates.problem(e, "templates/web");
                    p.message = format!("does not parse: {}", p.message);
                    p
                })
                .collect();
        }
        let templates = Templates(templates);
        let mut found: Vec<Problem> = Vec::new();
        for sample in samples {
            if let Err(e) = templates.render(sample.file, &sample.layout, &sample.page) {
                let name = format!("web/{}", sample.file);
                let mut p = templates.0.problem(&e, &templates.0.origin(&name));
                p.message = format!("does not render ({name}): {}", p.message);
                if !found.contains(&p) {
                    found.push(p);
                }
            }
        }
        found
    }
}

/// A feed offered for autodiscovery (`<link rel="alternate">`).
#[derive(Debug, Clone, Serialize)]
pub struct Alternate {
    pub title: String,
    pub media_type: &'static str,
    pub href: String,
}

/// The links of one feed in each format, as root-relative paths.
#[derive(Debug, Clone, Serialize)]
pub struct FeedLinks {
    pub rss: String,
    pub atom: String,
    pub json: String,
}

impl FeedLinks {
    /// The site's feeds (`theme` None) or a theme's.
    pub fn new(theme: Option<&Theme>) -> FeedLinks {
        let dir = theme.map_or(String::new(), |t| format!("themes/{}/", t.slug));
        let at = |f: Format| format!("/feeds/{dir}{}", f.file_name());
        FeedLinks {
            rss: at(Format::Rss),
            atom: at(Format::Atom),
            json: at(Format::Json),
        }
    }

    /// The three `<link rel="alternate">` of this feed.
    pub fn alternates(&self, title: &str) -> [Alternate; 3] {
        [
            (&self.rss, Format::Rss, "RSS"),
            (&self.atom, Format::Atom, "Atom"),
            (&self.json, Format::Json, "JSON Feed"),
        ]
        .map(|(href, f, name)| Alternate {
            title: format!("{title} ({name})"),
            media_type: f.media_type(),
            href: href.clone(),
        })
    }
}

#[derive(Debug, Serialize)]
struct SiteVars {
    title: String,
    /// `[site] description` in the page's language.
    description: String,
    /// `[site] logo`, shown in the header with the title as its `alt`.
    logo: Option<String>,
    accent: Accent,
}

/// The colours of the pages, derived from `[site] accent` so that every
/// pair stays readable (WCAG AA, 4.5:1): the template only writes them
/// into CSS custom properties.
#[derive(Debug, Serialize)]
struct Accent {
    /// Buttons' background and the header's rule.
    accent: String,
    /// Text on a button: white or near-black, by the accent's luminance.
    on_accent: String,
    /// Links: the accent, or the nearest darker shade readable on the
    /// light page and its cards.
    link: String,
    /// The same three in the dark colour scheme (a lighter shade).
    dark_accent: String,
    dark_on_accent: String,
    dark_link: String,
}

impl Accent {
    fn new(accent: &str) -> Accent {
        use crate::model::colour::{Rgb, TEXT_CONTRAST, WHITE};
        // The backgrounds of base.html: page and card, light and dark.
        const SOFT: Rgb = Rgb(0xf3, 0xf5, 0xf7);
        const DARK: [Rgb; 2] = [Rgb(0x16, 0x16, 0x16), Rgb(0x23, 0x26, 0x29)];
        let rgb = Rgb::parse(accent).unwrap_or(Rgb(0x1d, 0x5c, 0x8f));
        let dark = rgb.readable_on(&DARK, TEXT_CONTRAST);
        Accent {
            accent: rgb.to_string(),
            on_accent: rgb.text_on().to_string(),
            link: rgb.readable_on(&[WHITE, SOFT], TEXT_CONTRAST).to_string(),
            dark_accent: dark.to_string(),
            dark_on_accent: dark.text_on().to_string(),
            dark_link: dark.to_string(),
        }
    }
}

/// The link to the same page in the other language.
#[derive(Debug, Serialize)]
struct Switch {
    lang: &'static str,
    href: String,
}

/// What the layout (`web/base.html`) shows around every page.
#[derive(Debug, Serialize)]
pub struct Layout {
    lang: &'static str,
    words: &'static Words,
    site: SiteVars,
    /// The document's `<title>`.
    title: String,
    alternates: Vec<Alternate>,
    /// `?lang=xx` when the language was chosen explicitly, else empty:
    /// appended to the site's own links so the choice sticks.
    lang_query: String,
    switch: Switch,
    /// Pages behind a token are kept out of search engines.
    noindex: bool,
    /// Whether the site takes sign-ups (`[mail]` and a digest): the
    /// header's "Subscribe" link and `web/signup_box.html` show then.
    signup: bool,
    /// Where the header's "Subscribe" leads: the form on this page
    /// (`#signup`) or the sign-up page.
    subscribe_href: String,
    /// A page laid out in two columns on a wide screen (the front page).
    wide: bool,
}

impl Layout {
    /// The layout of a page at `path` (without query), titled `heading`.
    pub fn new(config: &Config, lang: Lang, explicit: bool, path: &str, heading: &str) -> Layout {
        let other = match lang {
            Lang::Sv => Lang::En,
            Lang::En => Lang::Sv,
        };
        let title = if heading.is_empty() || heading == config.site.title {
            config.site.title.clone()
        } else {
            format!("{heading} – {}", config.site.title)
        };
        let lang_query = if explicit {
            format!("?lang={}", lang.code())
        } else {
            String::new()
        };
        Layout {
            lang: lang.code(),
            words: super::words::words(lang),
            site: SiteVars {
                title: config.site.title.clone(),
                description: config.site.description.get(lang.code()).to_owned(),
                logo: config.site.logo.as_ref().map(|u| u.to_string()),
                accent: Accent::new(&config.site.accent),
            },
            title,
            alternates: Vec::new(),
            signup: config.mail.is_some() && !config.digests.is_empty(),
            subscribe_href: format!("/subscribe{lang_query}"),
            wide: false,
            lang_query,
            switch: Switch {
                lang: other.code(),
                href: format!("{path}?lang={}", other.code()),
            },
            noindex: false,
        }
    }

    pub fn alternates(mut self, alternates: Vec<Alternate>) -> Layout {
        self.alternates = alternates;
        self
    }

    /// For a page that shows the sign-up form (in `<section id="signup">`):
    /// the header's "Subscribe" leads to it.
    pub fn signup_here(mut self) -> Layout {
        self.subscribe_href = "#signup".into();
        self
    }

    /// Two columns on a wide screen.
    pub fn wide(mut self) -> Layout {
        self.wide = true;
        self
    }

    pub fn noindex(mut self) -> Layout {
        self.noindex = true;
        self
    }

    pub fn words(&self) -> &'static Words {
        self.words
    }
}

/// How a response may be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// Pages with a form token or behind a subscriber's token, and answers
    /// to a POST: never stored.
    NoStore,
    /// Public pages that change when stories or editions do.
    Short,
}

/// The same for every page: no scripts, no outside resources, no framing,
/// forms only to this site, and no `Referer` (tokens live in URLs).
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers of an HTML answer, and its `Cache-Control`.
pub fn secure_headers(response: &mut Response, cache: Cache) {
    html_security(response.headers_mut());
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(match cache {
            Cache::NoStore => "no-store",
            Cache::Short => "public, max-age=60",
        }),
    );
}

/// The security headers every HTML answer carries (those of the service's
/// pages, and the feeds folder's `index.html`).
pub fn html_security(h: &mut axum::http::HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// An HTML answer with its headers.
pub fn html(status: StatusCode, body: String, cache: Cache) -> Response {
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response();
    secure_headers(&mut response, cache);
    response
}

/// The answer when a page cannot be rendered: the cause goes to the log,
/// the visitor gets a plain page that reveals nothing.
pub fn broken(error: &anyhow::Error) -> Response {
    tracing::error!(error = %format!("{error:#}"), "cannot render a page");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Error</title></head>\
         <body><h1>Something went wrong</h1><p>Please try again in a moment.</p></body></html>\n"
            .to_owned(),
        Cache::NoStore,
    )
}
