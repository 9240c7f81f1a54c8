//! Sign-up: the form (`GET`/`POST /subscribe`) and its JSON twin
//! (`POST /api/subscribe`), under the same rules. The signed subscriber
//! pages (confirm, preferences, unsubscribe) are in [`super::manage`] and
//! their routes are joined here.
//!
//! A POST goes through, in order: `[mail]` configured (else 503), the
//! body's type and size (415, 413), a cross-site check and, for the form,
//! the CSRF token ([`super::csrf`]; 403), the honeypot (a filled one gets
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
use chrono::Utc;
use serde::Serialize;

use super::csrf::{self, Csrf};
use super::limits::{self, Limited};
use super::pages::{Link, Message};
use super::render::{Cache, Layout};
use super::signup::{self, Choices, FieldError, FieldMessages, Input};
use super::words::{Lang, PageLang};
use super::{AppState, manage, server};
use crate::config::Config;
use crate::links::tokens::Signer;

/// The largest body any of these routes accepts.
pub const BODY_LIMIT: usize = 16 * 1024;

/// The CSRF key (the rate limits are kept in the store).
pub struct FormState {
    pub csrf: Csrf,
}

impl FormState {
    pub fn new(_config: &Config, signer: &Signer) -> FormState {
        FormState {
            csrf: Csrf::new(signer),
        }
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/subscribe", get(signup_page).post(subscribe))
        .route("/api/subscribe", post(subscribe_json))
        .merge(manage::routes())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// Whether the site takes sign-ups: it needs `[mail]` and a digest.
pub fn available(shared: &AppState) -> bool {
    shared.mailer.is_some() && !shared.config.digests.is_empty()
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

/// A form's hidden `csrf` value and the cookie to set with it.
pub fn csrf_field(shared: &AppState, headers: &HeaderMap) -> (String, HeaderValue) {
    // The same nonce for every tab: one form does not void another.
    let nonce = csrf::cookie_nonce(headers).unwrap_or_else(csrf::new_nonce);
    let secure = shared.config.http.behind_proxy
        && headers
            .get("x-forwarded-proto")
            .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    (
        shared.forms.csrf.token(&nonce, Utc::now()),
        csrf::set_cookie(&nonce, secure),
    )
}

/// Checks a posted form's origin and CSRF token; the answer to give when
/// they fail.
pub fn check_origin(
    shared: &AppState,
    pl: PageLang,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<(), Response> {
    let checked = if csrf::cross_site(headers, &shared.config) {
        Err(csrf::CsrfError::CrossSite)
    } else {
        shared.forms.csrf.verify(token, headers, Utc::now())
    };
    checked.map_err(|why| {
        tracing::info!(reason = %why, "form refused: CSRF");
        let w = super::words::words(pl.lang);
        refusal(
            shared,
            pl,
            StatusCode::FORBIDDEN,
            "csrf",
            w.csrf_heading,
            vec![w.csrf_text.into()],
        )
    })
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

/// A page explaining why a form was refused.
fn refusal(
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

fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}

/// The fields of an urlencoded sign-up; unknown ones are ignored and the
/// first of a repeated single field counts.
struct FormBody {
    input: Input,
    csrf: Option<String>,
    lang: Option<String>,
}

fn parse_form(body: &[u8]) -> FormBody {
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

/// Counts the sign-up against both limits (in the store, shared by every
/// instance): `Some` when one refused it. A store that does not answer
/// refuses it too (`Err`; the sign-up could not be stored anyway).
pub async fn limit(
    shared: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    email_key: &str,
) -> anyhow::Result<Option<Limited>> {
    let client = limits::client_address(peer, headers, shared.config.http.behind_proxy);
    limits::check(&shared.store, client, email_key, Utc::now()).await
}

/// For the operator: why a sign-up's confirmation cannot be built (a
/// template changed since the start, say); never the address.
fn log_unbuildable(error: &anyhow::Error, person: &crate::model::NewSubscriber) {
    let error = crate::model::redact(&format!("{error:#}"), person.email.as_str());
    tracing::error!(%error, "sign-up refused: its confirmation email cannot be built");
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

fn retry_after(response: &mut Response, limited: Limited) {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(limited.seconds()));
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
    if let Err(answer) = check_origin(&shared, pl, &headers, csrf.as_deref()) {
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
