//! `POST /webhooks/bounces/<relay>`: bounces and complaints posted by the
//! relays enabled in `[bounces.webhooks]` (`ses`, `mailgun`, `postmark`,
//! `sendgrid`; 404 for any other). The request is handed to
//! [`crate::bounces::relay`], which verifies it and records its events;
//! this module only translates: 401 for a wrong or missing signature (and
//! nothing recorded), 400 for a body the relay does not send, 403 for an
//! SNS topic not listed, 503 when the store or SNS does not answer (the
//! relay tries again), 200 with a line saying what was done.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;

use super::AppState;
use crate::bounces::relay::{Incoming, MAX_BODY, Refused};
use crate::bounces::webhooks::Rejected;
use crate::config::Relay;

const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/webhooks/bounces/{relay}",
        post(receive).layer(DefaultBodyLimit::max(MAX_BODY)),
    )
}

fn answer(status: StatusCode, text: impl Into<String>) -> Response {
    let mut text = text.into();
    text.push('\n');
    (status, [(header::CONTENT_TYPE, TEXT)], text).into_response()
}

async fn receive(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(relay) = Relay::parse(&name) else {
        return answer(StatusCode::NOT_FOUND, "not found");
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let request = Incoming {
        body: &body,
        authorization: header("authorization"),
        sendgrid_signature: header("x-twilio-email-event-webhook-signature"),
        sendgrid_timestamp: header("x-twilio-email-event-webhook-timestamp"),
    };
    let signer = state.keys.signer();
    let received = state
        .relays
        .receive(
            &state.store,
            &signer,
            &state.config.bounces,
            relay,
            &request,
            Utc::now(),
        )
        .await;
    match received {
        Ok(received) => answer(StatusCode::OK, received.to_string()),
        Err(Refused::NotEnabled) => answer(StatusCode::NOT_FOUND, "not found"),
        Err(Refused::Rejected(Rejected::Unauthorized(why))) => {
            tracing::warn!(relay = %relay, why, "bounce webhook: refused");
            let mut response = answer(StatusCode::UNAUTHORIZED, why);
            if relay == Relay::Postmark {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"tidings\""),
                );
            }
            response
        }
        Err(Refused::Rejected(Rejected::Malformed(why))) => {
            tracing::warn!(relay = %relay, why, "bounce webhook: malformed");
            answer(StatusCode::BAD_REQUEST, why)
        }
        Err(Refused::Forbidden(why)) => {
            tracing::warn!(relay = %relay, why, "bounce webhook: refused");
            answer(StatusCode::FORBIDDEN, why)
        }
        Err(Refused::Unavailable(e)) => {
            tracing::error!(relay = %relay, error = %format!("{e:#}"), "bounce webhook: cannot take the request now");
            answer(StatusCode::SERVICE_UNAVAILABLE, "try again later")
        }
    }
}
