//! What guards a posted form: whether the site takes sign-ups, the CSRF
//! token and its cookie, a cross-site origin, and the rate limits kept in
//! the store. Used by every page group with a form.

use std::net::SocketAddr;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::Utc;

use super::AppState;
use super::answers::refusal;
use super::csrf::{self, Csrf};
use super::limits::{self, Limited};
use super::words::PageLang;
use crate::config::Config;
use crate::links::tokens::Signer;

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

/// Whether the site takes sign-ups: it needs `[mail]` and a digest.
pub fn available(shared: &AppState) -> bool {
    shared.mailer.is_some() && !shared.config.digests.is_empty()
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

/// Checks a posted form's origin and CSRF token: `None` when they pass,
/// else the answer to give (403).
pub fn refuse_foreign(
    shared: &AppState,
    pl: PageLang,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Option<Response> {
    let checked = if csrf::cross_site(headers, &shared.config) {
        Err(csrf::CsrfError::CrossSite)
    } else {
        shared.forms.csrf.verify(token, headers, Utc::now())
    };
    checked.err().map(|why| {
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
