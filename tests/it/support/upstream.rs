//! A real HTTP server on loopback that plays a site's upstreams: a
//! WordPress site's REST API (a behaving fake of `/wp-json/wp/v2/posts`,
//! see [`Upstream::wordpress`]) and anything else as static replies (feeds,
//! error pages, redirects, scripted failures, slow answers; see
//! [`Upstream::set`]). Every request is logged for the test to inspect.
//!
//! The server runs on a multi-thread tokio runtime of its own, in a thread
//! of its own, so that it serves sync `#[test]`s and `#[tokio::test]`s
//! alike; it stops when the [`Upstream`] is dropped.
//!
//! The fixtures it is meant to serve live in `tests/fixtures/upstream/`
//! ([`fixture`], [`wordpress_fixture`]).

// A fake with the whole API a test may want, not only what today's tests use.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State as AxumState;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, NaiveDateTime};
use serde_json::{Map, Value, json};

/// The fake WordPress's posts route.
pub const WP_POSTS: &str = "/wp-json/wp/v2/posts";

/// A reply the server gives to a path: status, headers, body, and how long
/// to wait before answering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
    /// Answer with the value of this query parameter as the body (a
    /// WebSub subscriber echoing `hub.challenge`), when set.
    pub echo: Option<String>,
}

impl Reply {
    /// 200 with this `Content-Type` and body.
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply::status(200)
            .header("Content-Type", content_type)
            .body(body)
    }

    /// This status with no headers and an empty body.
    pub fn status(code: u16) -> Reply {
        Reply {
            status: code,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
            echo: None,
        }
    }

    /// 200 with this JSON, `Content-Type: application/json`.
    pub fn json(value: &Value) -> Reply {
        Reply::ok("application/json", serde_json::to_vec(value).unwrap())
    }

    /// A redirect (301, 302, 303, 307 or 308) to `location` (use
    /// [`Upstream::url`] for one on this server).
    pub fn redirect(code: u16, location: &str) -> Reply {
        Reply::status(code).header("Location", location)
    }

    /// Sets a header, replacing one of the same name (case-insensitive).
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Answers with the request's query parameter `name` as the body (as
    /// a WebSub subscriber echoes `hub.challenge`); empty when absent.
    pub fn echo(mut self, name: &str) -> Reply {
        self.echo = Some(name.to_owned());
        self
    }

    /// Replaces the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }

    /// Waits this long before answering (the request is logged at once).
    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// The value of a header of this reply (name case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Panics (in the test's thread, with a clear message) unless the
    /// status and headers can be sent.
    fn check(&self, path: &str) {
        StatusCode::from_u16(self.status)
            .unwrap_or_else(|_| panic!("reply for {path}: bad status {}", self.status));
        for (k, v) in &self.headers {
            HeaderName::from_bytes(k.as_bytes())
                .unwrap_or_else(|_| panic!("reply for {path}: bad header name {k:?}"));
            HeaderValue::from_str(v)
                .unwrap_or_else(|_| panic!("reply for {path}: bad header value {v:?}"));
        }
    }
}

/// A request the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The path as sent (still percent-encoded), without the query.
    pub path: String,
    /// The query, decoded, in order.
    pub query: Vec<(String, String)>,
    /// The headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, as sent.
    pub body: Vec<u8>,
}

impl Request {
    /// The value of a query parameter; the last one if repeated (as PHP
    /// reads it).
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a header (name case-insensitive); the first if repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Replies set for one path, served in turn, the last one repeating.
struct Scripted {
    replies: Vec<Reply>,
    served: usize,
}

#[derive(Default)]
struct State {
    statics: HashMap<String, Scripted>,
    wordpress: Option<Vec<Value>>,
    log: Vec<Request>,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<State>>,
    /// `http://127.0.0.1:PORT`
    base: Arc<str>,
}

/// The server; stops when dropped.
pub struct Upstream {
    addr: SocketAddr,
    shared: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    /// Starts a server on a free loopback port; it answers 404 to every
    /// path until told otherwise.
    pub fn start() -> Upstream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Shared {
            state: Arc::new(Mutex::new(State::default())),
            base: format!("http://{addr}").into(),
        };
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("upstream-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("the upstream's runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    tokio::select! {
                        served = axum::serve(listener, app) => served.expect("the upstream serves"),
                        _ = stopped => {}
                    }
                });
                // Connections still open (a delayed reply, a keep-alive
                // client) are dropped, not waited for.
                runtime.shutdown_background();
            })
            .expect("spawn the upstream's thread");
        Upstream {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.shared.base)
    }

    /// The loopback address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    /// Answers `path` with `reply` from now on. `path` is matched exactly
    /// against the request's path (without the query); a `path?query` key
    /// matches only that exact query and wins over the bare path. A static
    /// reply wins over the fake WordPress while set.
    pub fn set(&self, path: &str, reply: Reply) {
        self.set_sequence(path, vec![reply]);
    }

    /// Answers successive requests to `path` with successive replies, the
    /// last one repeating (`500, 500, then 200`).
    pub fn set_sequence(&self, path: &str, replies: Vec<Reply>) {
        assert!(!replies.is_empty(), "set_sequence({path}): no replies");
        for reply in &replies {
            reply.check(path);
        }
        self.state()
            .statics
            .insert(path.to_owned(), Scripted { replies, served: 0 });
    }

    /// Removes the static reply of `path` (the fake WordPress, if any,
    /// answers it again).
    pub fn clear(&self, path: &str) {
        self.state().statics.remove(path);
    }

    /// Installs (or replaces) the fake WordPress with these post objects
    /// (see [`wordpress_fixture`]); serves `/wp-json/`, `/wp-json/wp/v2/posts`
    /// and `/wp-json/wp/v2/posts/{id}`.
    pub fn wordpress(&self, posts: Vec<Value>) {
        for post in &posts {
            assert!(
                post["id"].is_u64(),
                "a WordPress post without an id: {post}"
            );
        }
        self.state().wordpress = Some(posts);
    }

    /// An upstream edit: replaces the post with this one's `id`, or adds it.
    pub fn wordpress_upsert(&self, post: Value) {
        let id = post["id"].as_u64().expect("a WordPress post without an id");
        let mut state = self.state();
        let posts = state.wordpress.get_or_insert_with(Vec::new);
        match posts.iter_mut().find(|p| p["id"].as_u64() == Some(id)) {
            Some(old) => *old = post,
            None => posts.push(post),
        }
    }

    /// An upstream deletion (or unpublishing): the post with this id is no
    /// longer served. True if there was one.
    pub fn wordpress_remove(&self, id: u64) -> bool {
        let mut state = self.state();
        let posts = state.wordpress.get_or_insert_with(Vec::new);
        let before = posts.len();
        posts.retain(|p| p["id"].as_u64() != Some(id));
        posts.len() != before
    }

    /// The requests made to `path` (exact, without the query), in order.
    pub fn requests(&self, path: &str) -> Vec<Request> {
        self.state()
            .log
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// How many requests were made to `path`.
    pub fn request_count(&self, path: &str) -> usize {
        self.state().log.iter().filter(|r| r.path == path).count()
    }

    /// Every request, in order.
    pub fn all_requests(&self) -> Vec<Request> {
        self.state().log.clone()
    }

    /// Forgets the requests logged so far.
    pub fn clear_requests(&self) {
        self.state().log.clear();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The lock, even if a panicking test poisoned it.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn handle(AxumState(shared): AxumState<Shared>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let raw_query = parts.uri.query().unwrap_or("");
    let request = Request {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: url::form_urlencoded::parse(raw_query.as_bytes())
            .into_owned()
            .collect(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let reply = {
        let mut state = lock(&shared.state);
        state.log.push(request.clone());
        route(&mut state, &request, raw_query, &shared.base)
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut reply = reply;
    if let Some(name) = reply.echo.take() {
        reply.body = request.query_value(&name).unwrap_or("").as_bytes().to_vec();
    }
    let mut response = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        response = response.header(k.as_str(), v.as_str());
    }
    response
        .body(Body::from(reply.body))
        .expect("a reply checked when set")
}

fn route(state: &mut State, request: &Request, raw_query: &str, base: &str) -> Reply {
    let with_query = format!("{}?{raw_query}", request.path);
    let key = if state.statics.contains_key(&with_query) {
        Some(with_query)
    } else if state.statics.contains_key(&request.path) {
        Some(request.path.clone())
    } else {
        None
    };
    if let Some(key) = key {
        let scripted = state.statics.get_mut(&key).unwrap();
        let i = scripted.served.min(scripted.replies.len() - 1);
        scripted.served += 1;
        return conditional(scripted.replies[i].clone(), request);
    }
    if let Some(posts) = &state.wordpress
        && let Some(reply) = wordpress::route(posts, request, base)
    {
        return reply;
    }
    Reply::ok("text/plain; charset=utf-8", "Not Found\n").with_status(404)
}

impl Reply {
    fn with_status(mut self, status: u16) -> Reply {
        self.status = status;
        self
    }
}

/// 304 Not Modified instead of a 2xx reply when the request's validators
/// match the reply's (`If-None-Match` against `ETag`, weakly; else
/// `If-Modified-Since` against `Last-Modified`, as strings).
fn conditional(reply: Reply, request: &Request) -> Reply {
    if !(200..300).contains(&reply.status) || !matches!(request.method.as_str(), "GET" | "HEAD") {
        return reply;
    }
    let not_modified = if let Some(tags) = request.header("if-none-match") {
        reply.header_value("etag").is_some_and(|etag| {
            let weak = |t: &str| t.trim().trim_start_matches("W/").to_owned();
            tags.trim() == "*" || tags.split(',').any(|t| weak(t) == weak(etag))
        })
    } else if let Some(since) = request.header("if-modified-since") {
        reply
            .header_value("last-modified")
            .is_some_and(|modified| modified.trim() == since.trim())
    } else {
        false
    };
    if !not_modified {
        return reply;
    }
    const KEPT: &[&str] = &[
        "etag",
        "last-modified",
        "cache-control",
        "expires",
        "vary",
        "content-location",
        "date",
    ];
    Reply {
        status: 304,
        headers: reply
            .headers
            .iter()
            .filter(|(k, _)| KEPT.iter().any(|kept| k.eq_ignore_ascii_case(kept)))
            .cloned()
            .collect(),
        body: Vec::new(),
        delay: reply.delay,
        echo: None,
    }
}

/// The fake WordPress 6 REST API (unauthenticated, `view` context).
pub(crate) mod wordpress {
    use super::*;

    const JSON: &str = "application/json; charset=UTF-8";

    /// The reply for a WordPress route, or `None` outside `/wp-json`.
    pub(super) fn route(posts: &[Value], request: &Request, base: &str) -> Option<Reply> {
        let path = request.path.as_str();
        if path != "/wp-json" && !path.starts_with("/wp-json/") {
            return None;
        }
        let route = path.trim_start_matches("/wp-json").trim_end_matches('/');
        if !matches!(request.method.as_str(), "GET" | "HEAD") {
            return Some(no_route());
        }
        Some(match route {
            "" => index(base),
            "/wp/v2/posts" => list(posts, request, base),
            _ => match route.strip_prefix("/wp/v2/posts/") {
                Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
                    single(posts, request, id.parse().unwrap_or(u64::MAX))
                }
                _ => no_route(),
            },
        })
    }

    fn reply(status: u16, body: &Value) -> Reply {
        common_headers(Reply::ok(JSON, serde_json::to_vec(body).unwrap()).with_status(status))
    }

    fn common_headers(reply: Reply) -> Reply {
        reply
            .header("X-Robots-Tag", "noindex")
            .header("X-Content-Type-Options", "nosniff")
            .header(
                "Access-Control-Expose-Headers",
                "X-WP-Total, X-WP-TotalPages, Link",
            )
            .header(
                "Access-Control-Allow-Headers",
                "Authorization, X-WP-Nonce, Content-Disposition, Content-MD5, Content-Type",
            )
    }

    fn error(status: u16, code: &str, message: &str) -> Reply {
        reply(
            status,
            &json!({"code": code, "message": message, "data": {"status": status}}),
        )
    }

    fn no_route() -> Reply {
        error(
            404,
            "rest_no_route",
            "No route was found matching the URL and request method.",
        )
    }

    fn index(base: &str) -> Reply {
        reply(
            200,
            &json!({
                "name": "Centrum för lokal demokrati",
                "description": "Goda exempel från kommunala partnerskap",
                "url": base,
                "home": base,
                "gmt_offset": "1",
                "timezone_string": "Europe/Stockholm",
                "page_for_posts": 0,
                "page_on_front": 0,
                "show_on_front": "posts",
                "namespaces": ["wp/v2"],
                "authentication": {},
                "routes": {
                    "/wp/v2/posts": {
                        "namespace": "wp/v2",
                        "methods": ["GET", "POST"],
                        "endpoints": [{"methods": ["GET"], "args": {
                            "page": {"type": "integer", "default": 1, "minimum": 1},
                            "per_page": {"type": "integer", "default": 10, "minimum": 1, "maximum": 100},
                            "modified_after": {"type": "string", "format": "date-time"},
                            "orderby": {"type": "string", "default": "date"},
                            "order": {"type": "string", "default": "desc", "enum": ["asc", "desc"]},
                        }}],
                        "_links": {"self": [{"href": format!("{base}/wp-json/wp/v2/posts")}]},
                    },
                },
                "site_logo": 0,
                "site_icon": 0,
                "site_icon_url": "",
                "_links": {"help": [{"href": "https://developer.wordpress.org/rest-api/"}]},
            }),
        )
    }

    /// One invalid parameter: its name, message and detail code.
    struct Invalid(String, String, &'static str);

    fn invalid(errors: Vec<Invalid>) -> Reply {
        let names: Vec<&str> = errors.iter().map(|e| e.0.as_str()).collect();
        let mut params = Map::new();
        let mut details = Map::new();
        for Invalid(name, message, code) in &errors {
            params.insert(name.clone(), json!(message));
            details.insert(
                name.clone(),
                json!({"code": code, "message": message, "data": null}),
            );
        }
        reply(
            400,
            &json!({
                "code": "rest_invalid_param",
                "message": format!("Invalid parameter(s): {}", names.join(", ")),
                "data": {"status": 400, "params": params, "details": details},
            }),
        )
    }

    fn integer(
        request: &Request,
        name: &str,
        default: u64,
        range: (u64, u64),
        errors: &mut Vec<Invalid>,
    ) -> u64 {
        let Some(text) = request.query_value(name) else {
            return default;
        };
        let Ok(n) = text.trim().parse::<i64>() else {
            errors.push(Invalid(
                name.into(),
                format!("{name} is not of type integer."),
                "rest_invalid_type",
            ));
            return default;
        };
        let (min, max) = range;
        if n < min as i64 || n as u64 > max {
            let message = if max == u64::MAX {
                format!("{name} must be greater than or equal to {min}")
            } else {
                format!("{name} must be between {min} (inclusive) and {max} (inclusive)")
            };
            errors.push(Invalid(name.into(), message, "rest_out_of_bounds"));
            return default;
        }
        n as u64
    }

    /// An ISO 8601 date-time as WordPress's `rest_parse_date` accepts it
    /// (`2026-11-01T10:00:00`, optional fraction, optional `Z` or
    /// `+01`/`+01:00`), as naive UTC; a time without an offset is UTC.
    pub(crate) fn parse_date(text: &str) -> Option<NaiveDateTime> {
        let text = text.trim();
        if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
            return Some(t);
        }
        let split = text
            .len()
            .checked_sub(3)
            .and_then(|i| Some((text.get(..i)?, text.get(i..)?)));
        let with_minutes = match split {
            Some((head, tail))
                if (tail.starts_with('+') || tail.starts_with('-'))
                    && tail[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                format!("{head}{tail}:00")
            }
            _ => text.to_owned(),
        };
        DateTime::parse_from_rfc3339(&with_minutes)
            .ok()
            .filter(|_| with_minutes.contains('T'))
            .map(|t| t.naive_utc())
    }

    fn post_time(post: &Value, field: &str) -> Option<NaiveDateTime> {
        post[field].as_str().and_then(parse_date)
    }

    fn published(post: &Value) -> bool {
        post["status"].as_str().unwrap_or("publish") == "publish"
    }

    fn ids(text: &str) -> Vec<u64> {
        text.split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    }

    fn has_any(post: &Value, field: &str, wanted: &[u64]) -> bool {
        post[field].as_array().is_some_and(|have| {
            have.iter()
                .any(|t| t.as_u64().is_some_and(|t| wanted.contains(&t)))
        })
    }

    fn list(posts: &[Value], request: &Request, base: &str) -> Reply {
        let mut errors = Vec::new();
        let page = integer(request, "page", 1, (1, u64::MAX), &mut errors);
        let per_page = integer(request, "per_page", 10, (1, 100), &mut errors);
        let order = request.query_value("order").unwrap_or("desc");
        if !matches!(order, "asc" | "desc") {
            errors.push(Invalid(
                "order".into(),
                "order is not one of asc and desc.".into(),
                "rest_not_in_enum",
            ));
        }
        let orderby = request.query_value("orderby").unwrap_or("date");
        const ORDERBY: &[&str] = &[
            "author",
            "date",
            "id",
            "include",
            "modified",
            "parent",
            "relevance",
            "slug",
            "include_slugs",
            "title",
        ];
        if !ORDERBY.contains(&orderby) {
            errors.push(Invalid(
                "orderby".into(),
                "orderby is not one of author, date, id, include, modified, parent, relevance, \
                 slug, include_slugs, and title."
                    .into(),
                "rest_not_in_enum",
            ));
        } else if !matches!(
            orderby,
            "author" | "date" | "id" | "modified" | "slug" | "title"
        ) {
            errors.push(Invalid(
                "orderby".into(),
                format!("orderby={orderby} is not supported by the fake WordPress."),
                "rest_not_in_enum",
            ));
        }
        if let Some(status) = request.query_value("status")
            && status.split(',').any(|s| s.trim() != "publish")
        {
            errors.push(Invalid(
                "status".into(),
                "Status is forbidden.".into(),
                "rest_forbidden_status",
            ));
        }
        let mut bounds = Vec::new();
        for (param, field, after) in [
            ("after", "date_gmt", true),
            ("before", "date_gmt", false),
            ("modified_after", "modified_gmt", true),
            ("modified_before", "modified_gmt", false),
        ] {
            if let Some(text) = request.query_value(param) {
                match parse_date(text) {
                    Some(t) => bounds.push((field, after, t)),
                    None => errors.push(Invalid(
                        param.into(),
                        "Invalid date.".into(),
                        "rest_invalid_date",
                    )),
                }
            }
        }
        if !errors.is_empty() {
            return invalid(errors);
        }

        let filter = |name: &str| request.query_value(name).map(ids);
        let (categories, tags) = (filter("categories"), filter("tags"));
        let (categories_exclude, tags_exclude) =
            (filter("categories_exclude"), filter("tags_exclude"));
        let (include, exclude) = (filter("include"), filter("exclude"));
        let slugs: Option<Vec<&str>> = request
            .query_value("slug")
            .map(|s| s.split(',').map(str::trim).collect());
        let mut selected: Vec<&Value> = posts
            .iter()
            .filter(|p| published(p))
            .filter(|p| {
                bounds.iter().all(|&(field, after, bound)| {
                    post_time(p, field).is_some_and(|t| if after { t > bound } else { t < bound })
                })
            })
            .filter(|p| {
                categories
                    .as_ref()
                    .is_none_or(|c| has_any(p, "categories", c))
            })
            .filter(|p| tags.as_ref().is_none_or(|t| has_any(p, "tags", t)))
            .filter(|p| {
                categories_exclude
                    .as_ref()
                    .is_none_or(|c| !has_any(p, "categories", c))
            })
            .filter(|p| tags_exclude.as_ref().is_none_or(|t| !has_any(p, "tags", t)))
            .filter(|p| {
                include
                    .as_ref()
                    .is_none_or(|i| p["id"].as_u64().is_some_and(|id| i.contains(&id)))
            })
            .filter(|p| {
                exclude
                    .as_ref()
                    .is_none_or(|e| !p["id"].as_u64().is_some_and(|id| e.contains(&id)))
            })
            .filter(|p| {
                slugs
                    .as_ref()
                    .is_none_or(|s| p["slug"].as_str().is_some_and(|slug| s.contains(&slug)))
            })
            .collect();
        selected.sort_by(|a, b| {
            let by = match orderby {
                "date" => post_time(a, "date_gmt").cmp(&post_time(b, "date_gmt")),
                "modified" => post_time(a, "modified_gmt").cmp(&post_time(b, "modified_gmt")),
                "author" => a["author"].as_u64().cmp(&b["author"].as_u64()),
                "slug" => a["slug"].as_str().cmp(&b["slug"].as_str()),
                "title" => a["title"]["rendered"]
                    .as_str()
                    .cmp(&b["title"]["rendered"].as_str()),
                _ => std::cmp::Ordering::Equal,
            }
            .then_with(|| a["id"].as_u64().cmp(&b["id"].as_u64()));
            if order == "desc" { by.reverse() } else { by }
        });

        let total = selected.len() as u64;
        let total_pages = total.div_ceil(per_page);
        if page > total_pages && total > 0 {
            return error(
                400,
                "rest_post_invalid_page_number",
                "The page number requested is larger than the number of pages available.",
            );
        }
        let items: Vec<Value> = selected
            .into_iter()
            .skip(((page - 1) * per_page) as usize)
            .take(per_page as usize)
            .map(|p| shape(p, request))
            .collect();

        let mut links = Vec::new();
        if page > 1 {
            let prev = (page - 1).min(total_pages.max(1));
            links.push(format!(
                "<{}>; rel=\"prev\"",
                page_link(base, request, prev)
            ));
        }
        if total_pages > page {
            links.push(format!(
                "<{}>; rel=\"next\"",
                page_link(base, request, page + 1)
            ));
        }
        let mut reply = reply(200, &Value::Array(items))
            .header("X-WP-Total", &total.to_string())
            .header("X-WP-TotalPages", &total_pages.to_string())
            .header("Allow", "GET, POST");
        if !links.is_empty() {
            reply = reply.header("Link", &links.join(", "));
        }
        reply
    }

    /// The list's URL with this page, the other parameters kept in order
    /// (as WordPress's `add_query_arg` builds it).
    fn page_link(base: &str, request: &Request, page: u64) -> String {
        let mut url = url::Url::parse(&format!("{base}/wp-json/wp/v2/posts")).unwrap();
        let mut pairs: Vec<(String, String)> = request.query.clone();
        match pairs.iter_mut().find(|(k, _)| k == "page") {
            Some(pair) => pair.1 = page.to_string(),
            None => pairs.push(("page".into(), page.to_string())),
        }
        url.query_pairs_mut().extend_pairs(&pairs);
        url.into()
    }

    fn single(posts: &[Value], request: &Request, id: u64) -> Reply {
        match posts.iter().find(|p| p["id"].as_u64() == Some(id)) {
            Some(post) if published(post) => {
                reply(200, &shape(post, request)).header("Allow", "GET")
            }
            Some(_) => error(
                401,
                "rest_forbidden",
                "Sorry, you are not allowed to do that.",
            ),
            None => error(404, "rest_post_invalid_id", "Invalid post ID."),
        }
    }

    /// The `_fields` asked for, from `_fields=a,b` or `_fields[]=a`.
    fn fields(request: &Request) -> Option<Vec<String>> {
        let fields: Vec<String> = request
            .query
            .iter()
            .filter(|(k, _)| k == "_fields" || k == "_fields[]")
            .flat_map(|(_, v)| v.split(','))
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .collect();
        (!fields.is_empty()).then_some(fields)
    }

    /// A post as served: `_embedded` only with `_embed` (only the rels
    /// named, if any: `_embed=author,wp:term`), then only the `_fields`
    /// asked for (dotted names pick nested members: `title.rendered`).
    fn shape(post: &Value, request: &Request) -> Value {
        let mut post = post.clone();
        let object = post.as_object_mut().expect("a post is an object");
        match request
            .query
            .iter()
            .rev()
            .find(|(k, _)| k == "_embed")
            .map(|(_, v)| v.as_str())
        {
            None => {
                object.remove("_embedded");
            }
            Some("" | "1" | "true") => {}
            Some(rels) => {
                let rels: Vec<&str> = rels.split(',').map(str::trim).collect();
                if let Some(Value::Object(embedded)) = object.get_mut("_embedded") {
                    embedded.retain(|k, _| rels.contains(&k.as_str()));
                }
            }
        }
        let Some(mut fields) = fields(request) else {
            return post;
        };
        // As WordPress 5.4+: `_embed` with `_fields` keeps `_embedded` when
        // `_links` is asked for.
        if fields.iter().any(|f| f == "_links") {
            fields.push("_embedded".into());
        }
        let mut kept = Value::Object(Map::new());
        for field in &fields {
            let path: Vec<&str> = field.split('.').collect();
            copy_path(&post, &mut kept, &path);
        }
        kept
    }

    fn copy_path(from: &Value, to: &mut Value, path: &[&str]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let Some(value) = from.get(*first) else {
            return;
        };
        let Some(to) = to.as_object_mut() else {
            return;
        };
        if rest.is_empty() {
            to.insert((*first).to_owned(), value.clone());
        } else if value.is_object() {
            let slot = to
                .entry((*first).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            copy_path(value, slot, rest);
        }
    }
}

/// The path of a fixture under `tests/fixtures/upstream/`.
pub fn fixture_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upstream")
        .join(relative)
}

/// The bytes of a fixture under `tests/fixtures/upstream/`
/// (`feeds/partner.rss`).
pub fn fixture(relative: &str) -> Vec<u8> {
    let path = fixture_path(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fixture under `tests/fixtures/upstream/` as text.
pub fn fixture_text(relative: &str) -> String {
    String::from_utf8(fixture(relative)).expect("a UTF-8 fixture")
}

/// The 23 posts of `wordpress/posts.json` (21 published, 2 drafts).
pub fn wordpress_fixture() -> Vec<Value> {
    serde_json::from_slice(&fixture("wordpress/posts.json")).expect("posts.json")
}

/// Post 4712 as edited upstream (`wordpress/post-4712-edited.json`).
pub fn wordpress_edited_fixture() -> Value {
    serde_json::from_slice(&fixture("wordpress/post-4712-edited.json"))
        .expect("post-4712-edited.json")
}
