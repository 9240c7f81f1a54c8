//! The pages behind a subscriber's signed link (see [`crate::tokens`]):
//! `/confirm/<token>`, `/preferences/<token>` and `/unsubscribe/<token>`.
//!
//! The token is the only credential: no login, no cookie, no CSRF token
//! (another site cannot know it). A GET only shows a page with a button;
//! the POST acts, so the mail scanners that follow every link change
//! nothing. Every refused link — malformed, tampered with, meant for
//! another purpose, expired, or of a subscriber who no longer exists —
//! gets the same 400 page; the log says which.
//!
//! Unsubscribing follows RFC 8058: a POST with any body (such as
//! `List-Unsubscribe=One-Click`, urlencoded or multipart), or none,
//! answers 200 with no redirect and no cookie, and a repeat is harmless.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;
use serde::Serialize;

use super::AppState;
use super::answers::{
    BODY_LIMIT, Link, Message, bad_request, body_refused, internal_error, is_form,
};
use super::render::{Cache, Layout};
use super::signup::{Choices, FieldMessages, Input, check_choices};
use super::words::PageLang;
use crate::links::tokens::{Purpose, Unverified};
use crate::model::{Status, Subscriber};

/// Longer than any token this site makes.
const MAX_TOKEN: usize = 256;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/confirm/{token}", get(confirm_page).post(confirm))
        .route(
            "/preferences/{token}",
            get(preferences_page).post(save_preferences),
        )
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// The subscriber a token is for, if the token is good for `purpose`.
async fn holder(
    shared: &AppState,
    token: &str,
    purpose: Purpose,
) -> anyhow::Result<Option<Subscriber>> {
    if token.len() > MAX_TOKEN {
        tracing::info!(?purpose, "link refused: too long");
        return Ok(None);
    }
    let parsed = match Unverified::parse(token) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(?purpose, reason = %e, "link refused");
            return Ok(None);
        }
    };
    let Some(person) = shared
        .store
        .subscriber_by_id(parsed.subscriber_id())
        .await?
    else {
        tracing::info!(?purpose, "link refused: no such subscriber");
        return Ok(None);
    };
    let key = person.email.to_lowercase();
    match shared.keys.verify(&parsed, purpose, &key, Utc::now()).await {
        Ok(_) => Ok(Some(person)),
        Err(e) => {
            tracing::info!(?purpose, subscriber = person.id, reason = %e, "link refused");
            Ok(None)
        }
    }
}

/// The page of a link that does not work: for a preferences or
/// unsubscribe link, with the ways out ([`super::leave::invalid_link`]);
/// for a confirmation link, a new sign-up. Always 400; only the log says
/// why the link was refused.
fn invalid(shared: &AppState, pl: PageLang, purpose: Purpose, headers: &HeaderMap) -> Response {
    if purpose != Purpose::Confirm {
        return super::leave::invalid_link(shared, pl, headers);
    }
    let w = super::words::words(pl.lang);
    let link = if super::guard::available(shared) {
        Link {
            href: "/subscribe".into(),
            text: w.signup_again.into(),
        }
    } else {
        Link {
            href: "/".into(),
            text: w.home.into(),
        }
    };
    shared.pages.message(
        &shared.config,
        pl,
        StatusCode::BAD_REQUEST,
        &Message {
            id: "invalid-link",
            heading: w.invalid_heading.into(),
            paragraphs: vec![w.invalid_text.into()],
            link: Some(link),
            path: "/".into(),
        },
    )
}

/// A token's subscriber and the page language for them (theirs unless
/// the page asked for one), or the answer to give instead.
async fn lookup(
    shared: &AppState,
    pl: PageLang,
    token: &str,
    purpose: Purpose,
    headers: &HeaderMap,
) -> Result<(Subscriber, PageLang), Response> {
    match holder(shared, token, purpose).await {
        Ok(Some(person)) => {
            let pl = pl.or_subscriber(person.language.as_str());
            Ok((person, pl))
        }
        Ok(None) => Err(invalid(shared, pl, purpose, headers)),
        Err(e) => Err(internal_error(shared, pl, &e)),
    }
}

fn page(
    shared: &AppState,
    pl: PageLang,
    status: StatusCode,
    path: &str,
    file: &str,
    heading: &str,
    vars: &impl Serialize,
) -> Response {
    let layout = Layout::new(&shared.config, pl.lang, pl.explicit, path, heading).noindex();
    shared
        .pages
        .page(status, file, &layout, vars, Cache::NoStore)
}

fn sign(shared: &AppState, purpose: Purpose, person: &Subscriber) -> String {
    shared
        .keys
        .signer()
        .sign(purpose, person.id, &person.email.to_lowercase(), Utc::now())
}

#[derive(Serialize)]
struct ConfirmVars {
    done: bool,
    email: String,
    preferences_href: String,
}

async fn confirm_page(
    State(shared): State<AppState>,
    Path(token): Path<String>,
    pl: PageLang,
    headers: HeaderMap,
) -> Response {
    let (person, pl) = match lookup(&shared, pl, &token, Purpose::Confirm, &headers).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    // Someone who left since, or bounced, needs a new sign-up.
    if matches!(person.status, Status::Unsubscribed | Status::Bounced) {
        return invalid(&shared, pl, Purpose::Confirm, &headers);
    }
    let vars = ConfirmVars {
        done: false,
        email: person.email,
        preferences_href: String::new(),
    };
    let w = super::words::words(pl.lang);
    let path = format!("/confirm/{token}");
    page(
        &shared,
        pl,
        StatusCode::OK,
        &path,
        "confirm.html",
        w.confirm_heading,
        &vars,
    )
}

async fn confirm(
    State(shared): State<AppState>,
    Path(token): Path<String>,
    pl: PageLang,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(rejection) = body {
        return body_refused(&shared, pl, &rejection);
    }
    let (person, pl) = match lookup(&shared, pl, &token, Purpose::Confirm, &headers).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    match shared.store.confirm_subscriber(person.id, Utc::now()).await {
        Ok(Some(Status::Active)) => {}
        Ok(_) => return invalid(&shared, pl, Purpose::Confirm, &headers),
        Err(e) => return internal_error(&shared, pl, &e),
    }
    tracing::info!(subscriber = person.id, "subscription confirmed");
    let vars = ConfirmVars {
        done: true,
        preferences_href: format!(
            "/preferences/{}",
            sign(&shared, Purpose::Preferences, &person)
        ),
        email: person.email,
    };
    let w = super::words::words(pl.lang);
    let path = format!("/confirm/{token}");
    page(
        &shared,
        pl,
        StatusCode::OK,
        &path,
        "confirm.html",
        w.confirmed_heading,
        &vars,
    )
}

#[derive(Serialize)]
struct PreferencesVars {
    email: String,
    status: &'static str,
    saved: bool,
    unsubscribe_href: String,
    choices: Choices,
    errors: FieldMessages,
}

/// The choices a preferences page shows: the stored ones, the ones just
/// saved, or the ones just refused.
struct Shown<'a> {
    themes: Vec<&'a str>,
    language: &'a str,
    digest: &'a str,
}

/// What the preferences page reports.
enum Outcome {
    Showing,
    Saved,
    Refused(FieldMessages),
}

fn preferences_answer(
    shared: &AppState,
    pl: PageLang,
    token: &str,
    person: &Subscriber,
    shown: &Shown,
    outcome: Outcome,
) -> Response {
    let (status, saved, errors) = match outcome {
        Outcome::Showing => (StatusCode::OK, false, FieldMessages::default()),
        Outcome::Saved => (StatusCode::OK, true, FieldMessages::default()),
        Outcome::Refused(errors) => (StatusCode::UNPROCESSABLE_ENTITY, false, errors),
    };
    let choices = Choices::new(
        &shared.config,
        pl.lang,
        &shown.themes,
        shown.language,
        shown.digest,
    );
    let vars = PreferencesVars {
        email: person.email.clone(),
        status: person.status.as_str(),
        saved,
        unsubscribe_href: format!(
            "/unsubscribe/{}",
            sign(shared, Purpose::Unsubscribe, person)
        ),
        choices,
        errors,
    };
    let w = super::words::words(pl.lang);
    let path = format!("/preferences/{token}");
    page(
        shared,
        pl,
        status,
        &path,
        "preferences.html",
        w.preferences_heading,
        &vars,
    )
}

async fn preferences_page(
    State(shared): State<AppState>,
    Path(token): Path<String>,
    pl: PageLang,
    headers: HeaderMap,
) -> Response {
    let (person, pl) = match lookup(&shared, pl, &token, Purpose::Preferences, &headers).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let shown = Shown {
        themes: person.themes.iter().map(|t| t.as_str()).collect(),
        language: person.language.as_str(),
        digest: person.digest.as_str(),
    };
    preferences_answer(&shared, pl, &token, &person, &shown, Outcome::Showing)
}

/// Reads `themes`, `language` and `digest` of an urlencoded body.
fn parse_choices(body: &[u8]) -> Input {
    let mut input = Input::default();
    let (mut language, mut digest) = (None, None);
    for (key, value) in url::form_urlencoded::parse(body) {
        match key.as_ref() {
            "themes" => input.themes.push(value.into_owned()),
            "language" => language = language.or(Some(value.into_owned())),
            "digest" => digest = digest.or(Some(value.into_owned())),
            _ => {}
        }
    }
    input.language = language.unwrap_or_default();
    input.digest = digest.unwrap_or_default();
    input
}

async fn save_preferences(
    State(shared): State<AppState>,
    Path(token): Path<String>,
    pl: PageLang,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => return body_refused(&shared, pl, &rejection),
    };
    let (person, pl) = match lookup(&shared, pl, &token, Purpose::Preferences, &headers).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    if !is_form(&headers) {
        return bad_request(&shared, pl, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let input = parse_choices(&body);
    let chosen = match check_choices(&shared.config, &input) {
        Ok(c) => c,
        Err(errors) => {
            let shown = Shown {
                themes: input.themes.iter().map(|t| t.trim()).collect(),
                language: &input.language,
                digest: &input.digest,
            };
            let messages = FieldMessages::new(&errors, super::words::words(pl.lang));
            let outcome = Outcome::Refused(messages);
            return preferences_answer(&shared, pl, &token, &person, &shown, outcome);
        }
    };
    let saved = shared
        .store
        .set_preferences(person.id, &chosen.themes, &chosen.language, &chosen.digest)
        .await;
    if let Err(e) = saved {
        return internal_error(&shared, pl, &e);
    }
    tracing::info!(subscriber = person.id, "preferences saved");
    let shown = Shown {
        themes: chosen.themes.iter().map(|t| t.as_str()).collect(),
        language: chosen.language.as_str(),
        digest: &chosen.digest,
    };
    preferences_answer(&shared, pl, &token, &person, &shown, Outcome::Saved)
}

#[derive(Serialize)]
struct UnsubscribeVars {
    done: bool,
    email: String,
}

async fn unsubscribe_page(
    State(shared): State<AppState>,
    Path(token): Path<String>,
    pl: PageLang,
    headers: HeaderMap,
) -> Response {
    let (person, pl) = match lookup(&shared, pl, &token, Purpose::Unsubscribe, &headers).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let vars = UnsubscribeVars {
        done: false,
        email: person.email,
    };
    let w = super::words::words(pl.lang);
    let path = format!("/unsubscribe/{token}");
    page(
        &shared,
        pl,
        StatusCode::OK,
        &path,
        "unsubscribe.html",
        w.unsubscribe_heading,
        &vars,
    )
}

async fn unsubscribe(
    State(shared): State<AppState>,
    Path(token): Path<String>,
    pl: PageLang,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // Whatever the body says (One-Click or a person's button), or none.
    if let Err(rejection) = body {
        return body_refused(&shared, pl, &rejection);
    }
    let (person, pl) = match lookup(&shared, pl, &token, Purpose::Unsubscribe, &headers).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    if let Err(e) = shared.store.unsubscribe(person.id, Utc::now()).await {
        return internal_error(&shared, pl, &e);
    }
    tracing::info!(subscriber = person.id, "unsubscribed");
    let vars = UnsubscribeVars {
        done: true,
        email: person.email,
    };
    let w = super::words::words(pl.lang);
    let path = format!("/unsubscribe/{token}");
    page(
        &shared,
        pl,
        StatusCode::OK,
        &path,
        "unsubscribe.html",
        w.unsubscribed_heading,
        &vars,
    )
}

/// This module's pages with sample values: confirm (before and after),
/// preferences (shown, saved, refused; for each status) and unsubscribe
/// (before and after).
pub(super) fn samples(
    config: &crate::config::Config,
    lang: super::words::Lang,
) -> Vec<super::render::Sample> {
    use super::render::Sample;
    let w = super::words::words(lang);
    let email = crate::templates::SAMPLE_RECIPIENT.to_owned();
    let layout =
        |path: &str, heading: &str| Layout::new(config, lang, false, path, heading).noindex();
    let mut out = Vec::new();
    for done in [false, true] {
        out.push(Sample::new(
            "confirm.html",
            layout("/confirm/sample", w.confirm_heading),
            &ConfirmVars {
                done,
                email: email.clone(),
                preferences_href: "/preferences/sample".into(),
            },
        ));
        out.push(Sample::new(
            "unsubscribe.html",
            layout("/unsubscribe/sample", w.unsubscribe_heading),
            &UnsubscribeVars {
                done,
                email: email.clone(),
            },
        ));
    }
    let themes: Vec<&str> = config
        .themes
        .iter()
        .take(1)
        .map(|t| t.slug.as_str())
        .collect();
    for status in Status::ALL {
        for (saved, errors) in [
            (false, FieldMessages::default()),
            (true, FieldMessages::default()),
            (
                false,
                FieldMessages::new(
                    &[super::signup::FieldError {
                        problem: super::signup::Problem::NoTheme,
                        detail: String::new(),
                    }],
                    w,
                ),
            ),
        ] {
            out.push(Sample::new(
                "preferences.html",
                layout("/preferences/sample", w.preferences_heading),
                &PreferencesVars {
                    email: email.clone(),
                    status: status.as_str(),
                    saved,
                    unsubscribe_href: "/unsubscribe/sample".into(),
                    choices: Choices::new(config, lang, &themes, "", ""),
                    errors,
                },
            ));
        }
    }
    out
}
