//! `POST /websub`: the built-in WebSub hub's subscription endpoint, when
//! `[feeds] websub_hubs` holds `"builtin"` (404 otherwise). A request is
//! checked at once (400 with the reason, 429 over a limit) and answered
//! `202 Accepted`; its intent is verified after the answer, in the
//! background (see [`crate::websub::hub`]).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;

use super::AppState;
use super::limits;
use crate::websub::hub::{self, Refusal, Request, Verified};

/// A subscription request is a few short fields.
const BODY_LIMIT: usize = 16 * 1024;

const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/websub",
        post(subscribe).layer(DefaultBodyLimit::max(BODY_LIMIT)),
    )
}

fn answer(status: StatusCode, text: impl Into<String>) -> Response {
    let mut text = text.into();
    text.push('\n');
    (status, [(header::CONTENT_TYPE, TEXT)], text).into_response()
}

async fn subscribe(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.config.feeds.websub.builtin() {
        return answer(StatusCode::NOT_FOUND, "not found");
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let websub = state.ingester.websub().clone();
    let request = match Request::parse(&websub, &form) {
        Ok(request) => request,
        Err(e) => return answer(StatusCode::BAD_REQUEST, e),
    };
    let now = Utc::now();
    let client = limits::client_address(peer, &headers, state.config.http.behind_proxy);
    match limits::websub(&state.store, client, request.callback.host(), now).await {
        Ok(None) => {}
        Ok(Some(limited)) => {
            let mut response = answer(
                StatusCode::TOO_MANY_REQUESTS,
                "too many subscription requests; try again later",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(limited.seconds()));
            return response;
        }
        Err(e) => return unavailable(e),
    }
    match hub::admit(&websub, &request, now).await {
        Ok(Ok(())) => {}
        Ok(Err(Refusal::Invalid(e))) => return answer(StatusCode::BAD_REQUEST, e),
        Ok(Err(Refusal::TooMany(e))) => return answer(StatusCode::TOO_MANY_REQUESTS, e),
        Err(e) => return unavailable(e),
    }
    state.background.spawn(async move {
        let (mode, topic, host) = (
            request.mode.as_str(),
            request.topic.to_string(),
            request.callback.host().to_owned(),
        );
        match hub::verify(&websub, &request).await {
            Ok(Verified::Confirmed) => {
                tracing::info!(mode, %topic, %host, "websub: intent verified")
            }
            Ok(Verified::NotConfirmed(why)) => {
                tracing::warn!(mode, %topic, %host, why, "websub: intent not verified; nothing changed")
            }
            Err(e) => {
                tracing::error!(mode, %topic, %host, error = %format!("{e:#}"), "websub: cannot record a verified request")
            }
        }
    });
    answer(
        StatusCode::ACCEPTED,
        "accepted: the callback will be asked to confirm",
    )
}

fn unavailable(e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "websub: the store is not answering");
    answer(StatusCode::SERVICE_UNAVAILABLE, "try again later")
}
