//! The answers every page group gives: the page renderer ([`Pages`]), the
//! short message pages (not found, errors, refusals of a form) and the
//! checks of a posted body. Lower than every page module, which use it;
//! it uses none of them.

use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

use super::limits::Limited;
use super::render::{self, Cache, Layout, Templates};
use super::words::PageLang;
use super::{AppState, server};
use crate::config::Config;

/// The largest body any of these routes accepts.
pub const BODY_LIMIT: usize = 16 * 1024;

/// The page templates.
pub struct Pages {
    pub templates: Templates,
}

impl Pages {
    /// Parses the templates (a site's own copies first); an error names
    /// the file that does not parse.
    pub fn load(config: &Config) -> anyhow::Result<Pages> {
        Ok(Pages {
            templates: Templates::load(config)?,
        })
    }

    /// Renders `file` into an answer, or the plain error page if it fails.
    pub fn page(
        &self,
        status: StatusCode,
        file: &str,
        layout: &Layout,
        page: &impl Serialize,
        cache: Cache,
    ) -> Response {
        match self.templates.render(file, layout, page) {
            Ok(body) => render::html(status, body, cache),
            Err(e) => render::broken(&e),
        }
    }

    /// A page with a heading and a few paragraphs (errors, notices).
    pub fn message(
        &self,
        config: &Config,
        pl: PageLang,
        status: StatusCode,
        message: &Message,
    ) -> Response {
        let layout = Layout::new(
            config,
            pl.lang,
            pl.explicit,
            &message.path,
            &message.heading,
        );
        self.page(status, "message.html", &layout, message, Cache::NoStore)
    }
}

/// What `web/message.html` shows.
#[derive(Debug, Serialize)]
pub struct Message {
    /// The heading's `id`, for tests and styles.
    pub id: &'static str,
    pub heading: String,
    pub paragraphs: Vec<String>,
    pub link: Option<Link>,
    /// The page's own path, for the language switch.
    #[serde(skip)]
    pub path: String,
}

#[derive(Debug, Serialize)]
pub struct Link {
    pub href: String,
    pub text: String,
}

pub fn not_found_page(shared: &AppState, pl: PageLang) -> Response {
    let w = super::words::words(pl.lang);
    shared.pages.message(
        &shared.config,
        pl,
        StatusCode::NOT_FOUND,
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
    )
}

/// The generic error page; the cause is logged, never shown.
pub fn internal_error(shared: &AppState, pl: PageLang, error: &anyhow::Error) -> Response {
    tracing::error!(error = %format!("{error:#}"), "request failed");
    let w = super::words::words(pl.lang);
    shared.pages.message(
        &shared.config,
        pl,
        StatusCode::INTERNAL_SERVER_ERROR,
        &Message {
            id: "error",
            heading: w.error_heading.into(),
            paragraphs: vec![w.error_text.into()],
            link: None,
            path: "/".into(),
        },
    )
}

/// A page explaining why a form was refused.
pub fn refusal(
    shared: &AppState,
    pl: PageLang,
    status: StatusCode,
    id: &'static str,
    heading: &str,
    paragraphs: Vec<String>,
) -> Response {
    let w = super::words::words(pl.lang);
    shared.pages.message(
        &shared.config,
        pl,
        status,
        &Message {
            id,
            heading: heading.to_owned(),
            paragraphs,
            link: Some(Link {
                href: "/subscribe".into(),
                text: w.reload_form.into(),
            }),
            path: "/subscribe".into(),
        },
    )
}

pub fn unavailable(shared: &AppState, pl: PageLang) -> Response {
    let w = super::words::words(pl.lang);
    shared.pages.message(
        &shared.config,
        pl,
        StatusCode::SERVICE_UNAVAILABLE,
        &Message {
            id: "unavailable",
            heading: w.unavailable_heading.into(),
            paragraphs: vec![w.unavailable_text.into()],
            link: Some(Link {
                href: "/".into(),
                text: w.home.into(),
            }),
            path: "/".into(),
        },
    )
}

/// 413 for a body over the limit, 408 for one that did not arrive in
/// time, 400 for one that cannot be read.
pub fn body_refused(shared: &AppState, pl: PageLang, rejection: &BytesRejection) -> Response {
    let w = super::words::words(pl.lang);
    if server::timed_out(rejection) {
        bad_request(shared, pl, StatusCode::REQUEST_TIMEOUT)
    } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        refusal(
            shared,
            pl,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            w.too_large_heading,
            vec![w.too_large_text.into()],
        )
    } else {
        bad_request(shared, pl, StatusCode::BAD_REQUEST)
    }
}

/// 400, or 415 for a body of a type the route does not read.
pub fn bad_request(shared: &AppState, pl: PageLang, status: StatusCode) -> Response {
    let w = super::words::words(pl.lang);
    refusal(
        shared,
        pl,
        status,
        "bad-request",
        w.bad_request_heading,
        vec![w.bad_request_text.into()],
    )
}

/// Whether the body is `application/x-www-form-urlencoded`.
pub fn is_form(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|m| m == "application/x-www-form-urlencoded")
}

pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}

/// 429 with `Retry-After`, for a form.
pub fn rate_limited(shared: &AppState, pl: PageLang, limited: Limited) -> Response {
    let w = super::words::words(pl.lang);
    let mut response = refusal(
        shared,
        pl,
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        w.rate_heading,
        vec![
            w.rate_text.into(),
            format!("{} {} {}", w.retry_in, limited.minutes(), w.minutes),
        ],
    );
    retry_after(&mut response, limited);
    response
}

pub fn retry_after(response: &mut Response, limited: Limited) {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(limited.seconds()));
}
