//! Sign-up: the form (`GET`/`POST /subscribe`) and its JSON twin
//! (`POST /api/subscribe`), under the same rules.
//!
//! A POST goes through, in order: `[mail]` configured (else 503), the
//! body's type and size (415, 413), a cross-site check and, for the form,
//! the CSRF token ([`super::guard`]; 403), the honeypot (a filled one gets
//! the success answer and nothing else happens), the fields (422, every
//! problem at once), the rate limits ([`super::limits`], kept in the
//! store; 429 with `Retry-After`), and then the same "check your inbox"
//! answer for every address while the store and the confirmation email are
//! dealt with in a task of their own ([`super::signup::start`]).
//!
//! The JSON endpoint has no CSRF token: it requires
//! `Content-Type: application/json`, which a browser sends cross-site only
//! after a CORS preflight that this service never grants, and it refuses
//! requests the browser marks as cross-site or whose `Origin` is foreign.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use super::answers::{
    BODY_LIMIT, bad_request, body_refused, is_form, media_type, rate_limited, retry_after,
    unavailable,
};
use super::guard::{available, csrf_field, limit, refuse_foreign};
use super::render::{Cache, Layout};
use super::signup::{self, Choices, FieldError, FieldMessages, Input};
use super::words::{Lang, PageLang};
use super::{AppState, csrf, server};
use crate::config::Config;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/subscribe", get(signup_page).post(subscribe))
        .route("/api/subscribe", post(subscribe_json))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// Values to show in the form again (or to check in advance).
#[derive(Debug, Clone, Default)]
pub struct Prefill {
    pub email: String,
    pub themes: Vec<String>,
    pub language: String,
    pub digest: String,
}

impl From<&Input> for Prefill {
    fn from(i: &Input) -> Prefill {
        Prefill {
            email: i.email.clone(),
            themes: i.themes.clone(),
            language: i.language.clone(),
            digest: i.digest.clone(),
        }
    }
}

/// The form's own values.
#[derive(Debug, Serialize)]
pub struct FormVars {
    available: bool,
    csrf: String,
    email: String,
    /// 1 on the sign-up page, 2 where the form is a section of a page.
    heading_level: u8,
}

/// Everything `web/signup_form.html` shows (flattened into a page).
#[derive(Debug, Serialize)]
pub struct SignupForm {
    form: FormVars,
    choices: Choices,
    errors: FieldMessages,
}

/// The sign-up form for a page, and the cookie to set with it (none when
/// the site takes no sign-ups).
pub fn signup_form(
    shared: &AppState,
    pl: PageLang,
    headers: &HeaderMap,
    prefill: Prefill,
) -> (SignupForm, Option<HeaderValue>) {
    form_with(shared, pl, headers, prefill, FieldMessages::default(), 2)
}

fn form_with(
    shared: &AppState,
    pl: PageLang,
    headers: &HeaderMap,
    prefill: Prefill,
    errors: FieldMessages,
    heading_level: u8,
) -> (SignupForm, Option<HeaderValue>) {
    let config = &shared.config;
    let available = available(shared);
    let (csrf, cookie) = if available {
        let (token, cookie) = csrf_field(shared, headers);
        (token, Some(cookie))
    } else {
        (String::new(), None)
    };
    let themes: Vec<&str> = prefill.themes.iter().map(|t| t.trim()).collect();
    let form = SignupForm {
        form: FormVars {
            available,
            csrf,
            email: prefill.email.trim().to_owned(),
            heading_level,
        },
        choices: Choices::new(config, pl.lang, &themes, &prefill.language, &prefill.digest),
        errors,
    };
    (form, cookie)
}

/// `web/signup.html`: the form on a page of its own (also how a form with
/// problems is shown again, with status 422).
fn signup_answer(
    shared: &AppState,
    pl: PageLang,
    headers: &HeaderMap,
    status: StatusCode,
    prefill: Prefill,
    errors: FieldMessages,
) -> Response {
    let w = super::words::words(pl.lang);
    let (form, cookie) = form_with(shared, pl, headers, prefill, errors, 1);
    let layout = Layout::new(
        &shared.config,
        pl.lang,
        pl.explicit,
        "/subscribe",
        w.signup_heading,
    );
    let mut response = shared
        .pages
        .page(status, "signup.html", &layout, &form, Cache::NoStore);
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

async fn signup_page(State(shared): State<AppState>, pl: PageLang, headers: HeaderMap) -> Response {
    signup_answer(
        &shared,
        pl,
        &headers,
        StatusCode::OK,
        Prefill::default(),
        FieldMessages::default(),
    )
}

/// The one answer to every accepted sign-up.
fn check_inbox(shared: &AppState, pl: PageLang) -> Response {
    let w = super::words::words(pl.lang);
    let layout = Layout::new(
        &shared.config,
        pl.lang,
        pl.explicit,
        "/subscribe",
        w.check_inbox_heading,
    );
    shared.pages.page(
        StatusCode::OK,
        "check_inbox.html",
        &layout,
        &(),
        Cache::NoStore,
    )
}

/// The fields of an urlencoded sign-up; unknown ones are ignored and the
/// first of a repeated single field counts.
pub(crate) struct FormBody {
    pub(crate) input: Input,
    pub(crate) csrf: Option<String>,
    pub(crate) lang: Option<String>,
}

pub(crate) fn parse_form(body: &[u8]) -> FormBody {
    let mut input = Input::default();
    let (mut email, mut language, mut digest, mut website) = (None, None, None, None);
    let (mut csrf, mut lang) = (None, None);
    for (key, value) in url::form_urlencoded::parse(body) {
        let value = value.into_owned();
        match key.as_ref() {
            "email" => email = email.or(Some(value)),
            "themes" => input.themes.push(value),
            "language" => language = language.or(Some(value)),
            "digest" => digest = digest.or(Some(value)),
            "website" => website = website.or(Some(value)),
            "csrf" => csrf = csrf.or(Some(value)),
            "lang" => lang = lang.or(Some(value)),
            _ => {}
        }
    }
    input.email = email.unwrap_or_default();
    input.language = language.unwrap_or_default();
    input.digest = digest.unwrap_or_default();
    input.website = website.unwrap_or_default();
    FormBody { input, csrf, lang }
}

/// For the operator: why a sign-up's confirmation cannot be built (a
/// template changed since the start, say); never the address.
fn log_unbuildable(error: &anyhow::Error, person: &crate::model::NewSubscriber) {
    let error = crate::model::redact(&format!("{error:#}"), person.email.as_str());
    tracing::error!(%error, "sign-up refused: its confirmation email cannot be built");
}

async fn subscribe(
    State(shared): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    pl: PageLang,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !available(&shared) {
        return unavailable(&shared, pl);
    }
    let body = match body {
        Ok(b) => b,
        Err(rejection) => return body_refused(&shared, pl, &rejection),
    };
    if !is_form(&headers) {
        return bad_request(&shared, pl, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let FormBody { input, csrf, lang } = parse_form(&body);
    let pl = pl.or_field(lang.as_deref());
    let w = super::words::words(pl.lang);
    if let Some(answer) = refuse_foreign(&shared, pl, &headers, csrf.as_deref()) {
        return answer;
    }
    if !input.website.trim().is_empty() {
        tracing::info!("sign-up with the honeypot filled: ignored");
        return check_inbox(&shared, pl);
    }
    let person = match signup::check(&shared.config, &input) {
        Ok(p) => p,
        Err(errors) => {
            return signup_answer(
                &shared,
                pl,
                &headers,
                StatusCode::UNPROCESSABLE_ENTITY,
                Prefill::from(&input),
                FieldMessages::new(&errors, w),
            );
        }
    };
    let limited = match limit(&shared, peer, &headers, &person.email.key()).await {
        Ok(limited) => limited,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot check the sign-up rate limits");
            return unavailable(&shared, pl);
        }
    };
    if let Some(limited) = limited {
        tracing::info!(retry_after = limited.seconds(), "sign-up rate-limited");
        return rate_limited(&shared, pl, limited);
    }
    if let Err(e) = signup::confirmation_builds(&shared, &person) {
        log_unbuildable(&e, &person);
        return unavailable(&shared, pl);
    }
    signup::start(shared.clone(), person);
    check_inbox(&shared, pl)
}

/// A JSON answer, never cached.
fn json(status: StatusCode, value: serde_json::Value) -> Response {
    let mut response = (status, axum::Json(value)).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn json_error(status: StatusCode, error: &str, message: &str) -> Response {
    json(
        status,
        serde_json::json!({ "error": error, "message": message }),
    )
}

fn json_fields(errors: &[FieldError]) -> Response {
    let list: Vec<serde_json::Value> = errors
        .iter()
        .map(|e| serde_json::json!({ "field": e.problem.field(), "message": e.detail }))
        .collect();
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        serde_json::json!({ "error": "invalid", "errors": list }),
    )
}

fn json_accepted() -> Response {
    json(
        StatusCode::ACCEPTED,
        serde_json::json!({
            "status": "accepted",
            "message": "Check your inbox: if the address can receive the newsletter, \
                        an email with a link to confirm the subscription is on its way.",
        }),
    )
}

async fn subscribe_json(
    State(shared): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !available(&shared) {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this site takes no sign-ups: it has no [mail] or no [[digests]]",
        );
    }
    if media_type(&headers).as_deref() != Some("application/json") {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the sign-up as Content-Type: application/json",
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the body is larger than 16 KiB",
            );
        }
        Err(r) if server::timed_out(&r) => {
            return json_error(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "the body did not arrive in time",
            );
        }
        Err(_) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "cannot read the body",
            );
        }
    };
    if csrf::cross_site(&headers, &shared.config) {
        tracing::info!("JSON sign-up refused: cross-site");
        return json_error(
            StatusCode::FORBIDDEN,
            "cross_site",
            "sign-ups from other sites are not accepted",
        );
    }
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                &format!("the body is not valid JSON: {e}"),
            );
        }
    };
    let input = match signup::from_json(&value) {
        Ok(i) => i,
        Err(errors) => return json_fields(&errors),
    };
    if !input.website.trim().is_empty() {
        tracing::info!("JSON sign-up with the honeypot filled: ignored");
        return json_accepted();
    }
    let person = match signup::check(&shared.config, &input) {
        Ok(p) => p,
        Err(errors) => return json_fields(&errors),
    };
    let limited = match limit(&shared, peer, &headers, &person.email.key()).await {
        Ok(limited) => limited,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot check the sign-up rate limits");
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "sign-ups cannot be taken just now; try again later",
            );
        }
    };
    if let Some(limited) = limited {
        let mut response = json(
            StatusCode::TOO_MANY_REQUESTS,
            serde_json::json!({
                "error": "rate_limited",
                "message": "too many sign-ups from here or for this address; try again later",
                "retry_after": limited.seconds(),
            }),
        );
        retry_after(&mut response, limited);
        return response;
    }
    if let Err(e) = signup::confirmation_builds(&shared, &person) {
        log_unbuildable(&e, &person);
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the confirmation email cannot be made right now; try again later",
        );
    }
    signup::start(shared.clone(), person);
    json_accepted()
}

/// The sign-up form with sample values, for pages rendered as samples.
pub(super) fn sample_form(config: &Config, lang: Lang) -> SignupForm {
    SignupForm {
        form: FormVars {
            available: true,
            csrf: "sample".into(),
            email: crate::templates::SAMPLE_RECIPIENT.into(),
            heading_level: 2,
        },
        choices: Choices::new(config, lang, &[], "", ""),
        errors: FieldMessages::default(),
    }
}

/// This module's pages with sample values: the sign-up page (as first
/// shown, and with every field refused) and "check your inbox".
pub(super) fn samples(config: &Config, lang: Lang) -> Vec<super::render::Sample> {
    use super::signup::{FieldError, Problem};
    let w = super::words::words(lang);
    let layout = |heading: &str| Layout::new(config, lang, false, "/subscribe", heading);
    let refused: Vec<FieldError> = [
        Problem::Email,
        Problem::NoTheme,
        Problem::Language,
        Problem::Digest,
    ]
    .into_iter()
    .map(|problem| FieldError {
        problem,
        detail: String::new(),
    })
    .collect();
    let mut with_errors = sample_form(config, lang);
    with_errors.errors = FieldMessages::new(&refused, w);
    with_errors.form.heading_level = 1;
    let mut unavailable = sample_form(config, lang);
    unavailable.form.available = false;
    vec![
        super::render::Sample::new(
            "signup.html",
            layout(w.signup_heading),
            &sample_form(config, lang),
        ),
        super::render::Sample::new("signup.html", layout(w.signup_heading), &with_errors),
        super::render::Sample::new("signup.html", layout(w.signup_heading), &unavailable),
        super::render::Sample::new("check_inbox.html", layout(w.check_inbox_heading), &()),
    ]
}
