//! Leaving without a working link: `GET /unsubscribe` shows a form for an
//! address, `POST /unsubscribe` mails that address a signed unsubscribe
//! link (see [`crate::mail::leave`]). The answer is the same whether or
//! not the address is on the list, and the mail goes only to the address
//! itself, so the form tells nobody who subscribes and lets nobody
//! unsubscribe someone else. The page of a preferences or unsubscribe link
//! that does not work ([`invalid_link`]) offers the same form, and
//! `[mail] unsubscribe_address` when set: a dead link never leaves a
//! reader with no way out.
//!
//! The form has the sign-up's protections: CSRF token, honeypot, and its
//! rate limits (a request counts as a sign-up of that address).

use std::net::SocketAddr;

use anyhow::{Context as _, Result, anyhow};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;
use serde::Serialize;

use super::AppState;
use super::answers::{BODY_LIMIT, bad_request, body_refused, is_form, rate_limited, unavailable};
use super::guard::{self, csrf_field, refuse_foreign};
use super::render::{Cache, Layout};
use super::words::PageLang;
use crate::model::{Status, SubscriberEmail};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/unsubscribe", get(form_page).post(request))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// The form's own values.
#[derive(Serialize)]
struct Form {
    csrf: String,
    email: String,
    error: Option<&'static str>,
}

/// What `web/leave.html` shows.
#[derive(Serialize)]
struct Vars {
    /// The page of a link that does not work.
    invalid: bool,
    /// The answer to a request.
    sent: bool,
    /// The form, when the site can send mail.
    form: Option<Form>,
    /// `[mail] unsubscribe_address`.
    address: Option<String>,
    /// Whether to offer "subscribe again".
    signup: bool,
}

fn answer(
    shared: &AppState,
    pl: PageLang,
    headers: &HeaderMap,
    status: StatusCode,
    mut vars: Vars,
    email: &str,
    error: Option<&'static str>,
) -> Response {
    let w = super::words::words(pl.lang);
    let mut cookie = None;
    if shared.mailer.is_some() && !vars.sent {
        let (csrf, set) = csrf_field(shared, headers);
        cookie = Some(set);
        vars.form = Some(Form {
            csrf,
            email: email.trim().to_owned(),
            error,
        });
    }
    vars.address = shared
        .config
        .mail
        .as_ref()
        .and_then(|m| m.unsubscribe_address.as_ref())
        .map(|a| a.to_string());
    vars.signup = guard::available(shared);
    let heading = if vars.invalid {
        w.invalid_heading
    } else if vars.sent {
        w.leave_sent_heading
    } else {
        w.leave_heading
    };
    let layout = Layout::new(
        &shared.config,
        pl.lang,
        pl.explicit,
        "/unsubscribe",
        heading,
    )
    .noindex();
    let mut response = shared
        .pages
        .page(status, "leave.html", &layout, &vars, Cache::NoStore);
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn vars(invalid: bool, sent: bool) -> Vars {
    Vars {
        invalid,
        sent,
        form: None,
        address: None,
        signup: false,
    }
}

/// The 400 page of a preferences or unsubscribe link that does not work:
/// why, and the ways out.
pub fn invalid_link(shared: &AppState, pl: PageLang, headers: &HeaderMap) -> Response {
    answer(
        shared,
        pl,
        headers,
        StatusCode::BAD_REQUEST,
        vars(true, false),
        "",
        None,
    )
}

async fn form_page(State(shared): State<AppState>, pl: PageLang, headers: HeaderMap) -> Response {
    answer(
        &shared,
        pl,
        &headers,
        StatusCode::OK,
        vars(false, false),
        "",
        None,
    )
}

/// The fields of the form; the first of a repeated one counts.
#[derive(Default)]
struct Fields {
    email: Option<String>,
    csrf: Option<String>,
    website: Option<String>,
    lang: Option<String>,
}

fn parse(body: &[u8]) -> Fields {
    let mut f = Fields::default();
    for (key, value) in url::form_urlencoded::parse(body) {
        let slot = match key.as_ref() {
            "email" => &mut f.email,
            "csrf" => &mut f.csrf,
            "website" => &mut f.website,
            "lang" => &mut f.lang,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.into_owned());
        }
    }
    f
}

async fn request(
    State(shared): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    pl: PageLang,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if shared.mailer.is_none() {
        return unavailable(&shared, pl);
    }
    let body = match body {
        Ok(b) => b,
        Err(rejection) => return body_refused(&shared, pl, &rejection),
    };
    if !is_form(&headers) {
        return bad_request(&shared, pl, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let fields = parse(&body);
    let pl = pl.or_field(fields.lang.as_deref());
    if let Some(answer) = refuse_foreign(&shared, pl, &headers, fields.csrf.as_deref()) {
        return answer;
    }
    if fields
        .website
        .as_deref()
        .is_some_and(|w| !w.trim().is_empty())
    {
        tracing::info!("unsubscribe request with the honeypot filled: ignored");
        return answer(
            &shared,
            pl,
            &headers,
            StatusCode::OK,
            vars(false, true),
            "",
            None,
        );
    }
    let typed = fields.email.unwrap_or_default();
    let email = match SubscriberEmail::parse(&typed) {
        Ok(e) => e,
        Err(_) => {
            let w = super::words::words(pl.lang);
            return answer(
                &shared,
                pl,
                &headers,
                StatusCode::UNPROCESSABLE_ENTITY,
                vars(false, false),
                &typed,
                Some(w.err_email),
            );
        }
    };
    match guard::limit(&shared, peer, &headers, &email.key()).await {
        Ok(None) => {}
        Ok(Some(limited)) => {
            tracing::info!(
                retry_after = limited.seconds(),
                "unsubscribe request rate-limited"
            );
            return rate_limited(&shared, pl, limited);
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot check the rate limits");
            return unavailable(&shared, pl);
        }
    }
    let tasks = shared.background.clone();
    let task_shared = shared.clone();
    tasks.spawn(async move {
        if let Err(e) = mail_link(&task_shared, &email).await {
            let error = crate::model::redact(&format!("{e:#}"), email.as_str());
            tracing::error!(%error, "unsubscribe request failed");
        }
    });
    answer(
        &shared,
        pl,
        &headers,
        StatusCode::OK,
        vars(false, true),
        "",
        None,
    )
}

/// Mails the subscriber with this address, if there is one who still gets
/// mail, a link that unsubscribes them. Logs name the subscriber's id,
/// never an address.
async fn mail_link(shared: &AppState, email: &SubscriberEmail) -> Result<()> {
    let Some(person) = shared.store.subscriber(&email.key()).await? else {
        tracing::info!("unsubscribe link asked for an address not on the list: nothing sent");
        return Ok(());
    };
    if !matches!(person.status, Status::Active | Status::Pending) {
        tracing::info!(subscriber = person.id, status = %person.status, "unsubscribe link asked by someone who gets no mail: nothing sent");
        return Ok(());
    }
    let mailer = shared.mailer.as_ref().context("no [mail]")?;
    let stored = SubscriberEmail::parse(&person.email).map_err(|e| anyhow!(e))?;
    let reply = crate::mail::leave::send(
        &shared.config,
        mailer,
        (person.id, &stored),
        person.language.as_str(),
        &shared.keys.signer(),
        Utc::now(),
    )
    .await?;
    tracing::info!(subscriber = person.id, %reply, "unsubscribe link sent");
    Ok(())
}

/// This module's page with sample values: the form on its own, for a link
/// that does not work, with a refused address, and the answer.
pub(super) fn samples(
    config: &crate::config::Config,
    lang: super::words::Lang,
) -> Vec<super::render::Sample> {
    let w = super::words::words(lang);
    let address = config
        .mail
        .as_ref()
        .and_then(|m| m.unsubscribe_address.as_ref())
        .map(|a| a.to_string())
        .or_else(|| Some("leave@example.org".into()));
    let form = |error| {
        Some(Form {
            csrf: "sample".into(),
            email: crate::templates::SAMPLE_RECIPIENT.into(),
            error,
        })
    };
    [
        (false, false, form(None)),
        (true, false, form(None)),
        (false, false, form(Some(w.err_email))),
        (false, true, None),
        (true, false, None),
    ]
    .into_iter()
    .map(|(invalid, sent, form)| {
        super::render::Sample::new(
            "leave.html",
            Layout::new(config, lang, false, "/unsubscribe", w.leave_heading).noindex(),
            &Vars {
                invalid,
                sent,
                form,
                address: address.clone(),
                signup: true,
            },
        )
    })
    .collect()
}
