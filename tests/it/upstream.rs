//! The fake upstream's self-tests: the WordPress REST API it plays
//! (pages, filters, embeds), static and conditional replies, its life in
//! sync tests, and the fixtures it serves.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::upstream::wordpress;
use crate::support::{
    Reply, Upstream, WP_POSTS, fixture, wordpress_edited_fixture, wordpress_fixture,
};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .unwrap()
}

async fn get_json(url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = client().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap();
    (status, headers, body)
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers.get(name).map_or("", |v| v.to_str().unwrap())
}

fn ids_of(body: &Value) -> Vec<u64> {
    body.as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn upstream_wordpress_pages_filters_and_embeds() {
    let up = Upstream::start();
    let posts = wordpress_fixture();
    up.wordpress(posts.clone());
    let drafts: Vec<u64> = posts
        .iter()
        .filter(|p| p["status"] == "draft")
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(drafts, vec![4716, 4693]);

    // Three pages of ten over the 21 published posts, newest first.
    let mut seen = Vec::new();
    let mut dates = Vec::new();
    for page in 1..=3 {
        let (status, headers, body) =
            get_json(&up.url(&format!("{WP_POSTS}?per_page=10&page={page}"))).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "x-wp-total"), "21");
        assert_eq!(header(&headers, "x-wp-totalpages"), "3");
        assert_eq!(
            header(&headers, "content-type"),
            "application/json; charset=UTF-8"
        );
        let link = header(&headers, "link");
        assert_eq!(link.contains("rel=\"next\""), page < 3, "{link}");
        assert_eq!(link.contains("rel=\"prev\""), page > 1, "{link}");
        if page == 1 {
            let next = up.url(&format!("{WP_POSTS}?per_page=10&page=2"));
            assert_eq!(link, format!("<{next}>; rel=\"next\""));
        }
        let n = body.as_array().unwrap().len();
        assert_eq!(n, if page < 3 { 10 } else { 1 });
        for post in body.as_array().unwrap() {
            assert_eq!(post["status"], "publish");
            assert!(
                post.get("_embedded").is_none(),
                "no _embedded without _embed"
            );
            dates.push(post["date_gmt"].as_str().unwrap().to_owned());
        }
        seen.extend(ids_of(&body));
    }
    assert_eq!(seen.len(), 21);
    assert!(seen.iter().all(|id| !drafts.contains(id)));
    let mut sorted = dates.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, sorted, "date desc by default");

    // Past the end; per_page out of bounds; a non-public status.
    let (status, _, body) = get_json(&up.url(&format!("{WP_POSTS}?per_page=10&page=4"))).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "rest_post_invalid_page_number");
    assert_eq!(body["data"]["status"], 400);
    let (status, _, body) = get_json(&up.url(&format!("{WP_POSTS}?per_page=101"))).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "rest_invalid_param");
    let (status, _, body) = get_json(&up.url(&format!("{WP_POSTS}?status=draft"))).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "rest_invalid_param");

    // modified_after: strictly after, naive is UTC, offsets honoured.
    let expected = vec![4648, 4688, 4699, 4704, 4708, 4711, 4712];
    for after in [
        "2026-11-01T10:00:00",
        "2026-11-01T10:00:00Z",
        "2026-11-01T11:00:00+01:00",
    ] {
        let url = up.url(&format!(
            "{WP_POSTS}?modified_after={}&orderby=modified&order=asc&per_page=100",
            url::form_urlencoded::byte_serialize(after.as_bytes()).collect::<String>()
        ));
        let (status, headers, body) = get_json(&url).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "x-wp-total"), "7");
        let mut got = ids_of(&body);
        let modified: Vec<&str> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["modified_gmt"].as_str().unwrap())
            .collect();
        assert!(modified.is_sorted(), "{modified:?}");
        got.sort();
        assert_eq!(got, expected, "modified_after={after}");
    }

    // _embed and _fields.
    let (_, _, body) = get_json(&up.url(&format!("{WP_POSTS}?_embed&per_page=100"))).await;
    assert_eq!(body.as_array().unwrap().len(), 21);
    for post in body.as_array().unwrap() {
        let embedded = &post["_embedded"];
        assert!(embedded["author"][0]["name"].is_string());
        assert!(embedded["wp:term"][0].is_array());
        assert_eq!(
            embedded.get("wp:featuredmedia").is_some(),
            post["featured_media"] != 0
        );
    }
    let (_, _, body) =
        get_json(&up.url(&format!("{WP_POSTS}?_fields=id,modified_gmt&_embed"))).await;
    for post in body.as_array().unwrap() {
        let mut keys: Vec<&String> = post.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["id", "modified_gmt"]);
    }

    // One post; a draft is not served; the index.
    let (status, _, body) = get_json(&up.url(&format!("{WP_POSTS}/4711"))).await;
    assert_eq!(status, 200);
    assert!(
        body["content"]["rendered"]
            .as_str()
            .unwrap()
            .contains("<script>")
    );
    let (status, _, _) = get_json(&up.url(&format!("{WP_POSTS}/4693"))).await;
    assert_eq!(status, 401);
    let (status, _, body) = get_json(&up.url("/wp-json/")).await;
    assert_eq!(status, 200);
    assert_eq!(body["namespaces"], json!(["wp/v2"]));

    // An edit upstream; a static override wins while set.
    up.wordpress_upsert(wordpress_edited_fixture());
    let (_, _, body) = get_json(&up.url(&format!("{WP_POSTS}?per_page=1&orderby=modified"))).await;
    assert_eq!(ids_of(&body), [4712]);
    assert_eq!(body[0]["modified_gmt"], "2026-11-21T08:30:00");
    up.set(WP_POSTS, Reply::status(500));
    let response = client().get(up.url(WP_POSTS)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 500);
    up.clear(WP_POSTS);
    let response = client().get(up.url(WP_POSTS)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);

    // The log.
    let requests = up.requests(WP_POSTS);
    assert_eq!(requests.len(), up.request_count(WP_POSTS));
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].query_value("per_page"), Some("10"));
    assert_eq!(requests[0].query_value("page"), Some("1"));
    assert!(
        requests[0]
            .header("Host")
            .unwrap()
            .starts_with("127.0.0.1:")
    );
}

#[tokio::test]
async fn upstream_static_replies_conditional_and_sequences() {
    let up = Upstream::start();
    let rss = fixture("feeds/partner.rss");
    up.set(
        "/feed.rss",
        Reply::ok("application/rss+xml; charset=utf-8", rss.clone())
            .header("ETag", "\"v1\"")
            .header("Last-Modified", "Thu, 12 Nov 2026 08:30:00 GMT"),
    );
    let client = client();
    let response = client.get(up.url("/feed.rss")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), rss.as_slice());
    let response = client
        .get(up.url("/feed.rss"))
        .header("If-None-Match", "\"v1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 304);
    assert_eq!(response.headers()["etag"], "\"v1\"");
    assert!(response.bytes().await.unwrap().is_empty());
    let response = client
        .get(up.url("/feed.rss"))
        .header("If-None-Match", "\"v0\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let response = client
        .get(up.url("/feed.rss"))
        .header("If-Modified-Since", "Thu, 12 Nov 2026 08:30:00 GMT")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 304);
    assert_eq!(up.request_count("/feed.rss"), 4);
    assert_eq!(
        up.requests("/feed.rss")[1].header("if-none-match"),
        Some("\"v1\"")
    );

    // 500, 500, then 200 for good.
    up.set_sequence(
        "/flaky",
        vec![
            Reply::status(500),
            Reply::status(500),
            Reply::ok("text/plain", "ok"),
        ],
    );
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            client
                .get(up.url("/flaky"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [500, 500, 200, 200]);

    // A redirect, a delay, an unknown path.
    up.set("/old", Reply::redirect(301, &up.url("/feed.rss")));
    let response = client.get(up.url("/old")).send().await.unwrap();
    assert_eq!(response.url().path(), "/feed.rss");
    assert_eq!(response.status().as_u16(), 200);
    up.set(
        "/slow",
        Reply::ok("text/plain", "late").delay(Duration::from_millis(300)),
    );
    let started = std::time::Instant::now();
    let response = client.get(up.url("/slow")).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "late");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let response = client.get(up.url("/nothing-here")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    // A path with its query set wins over the bare path.
    up.set("/feed.rss?page=2", Reply::status(410));
    let response = client.get(up.url("/feed.rss?page=2")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 410);
}

#[test]
fn upstream_serves_sync_tests_and_stops_when_dropped() {
    use std::io::{Read, Write};
    let up = Upstream::start();
    up.set(
        "/hello",
        Reply::ok("text/plain", "hej").delay(Duration::from_secs(30)),
    );
    up.set("/quick", Reply::ok("text/plain", "hej"));
    let mut stream = std::net::TcpStream::connect(up.addr()).unwrap();
    write!(
        stream,
        "GET /quick HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        up.addr()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("hej"), "{answer}");
    // A request left waiting on a delayed reply does not hold up the drop.
    let mut waiting = std::net::TcpStream::connect(up.addr()).unwrap();
    write!(waiting, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    while up.request_count("/hello") == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let addr = up.addr();
    let started = std::time::Instant::now();
    drop(up);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn upstream_fixtures_exist_and_parse() {
    let posts = wordpress_fixture();
    assert_eq!(posts.len(), 23);
    let mut ids: Vec<u64> = posts.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 23);
    assert_eq!(posts.iter().filter(|p| p["status"] == "draft").count(), 2);
    for post in &posts {
        let date = post["date_gmt"].as_str().unwrap();
        let modified = post["modified_gmt"].as_str().unwrap();
        assert!(
            wordpress::parse_date(date).is_some() && modified > date,
            "{}",
            post["id"]
        );
        assert!(post["_embedded"]["wp:term"].as_array().unwrap().len() == 2);
    }
    let hostile = posts.iter().find(|p| p["id"] == 4711).unwrap();
    let content = hostile["content"]["rendered"].as_str().unwrap();
    for needle in [
        "<script>alert(1)</script>",
        "<img src=x onerror=\"alert(2)\">",
        "<a href=\"javascript:alert(3)\">klick</a>",
        "<iframe src=\"https://evil.example/\"",
        "]]>",
        "<a href=\"/om-oss/\">",
        "<img src=\"/wp-content/uploads/2026/10/bild.jpg\" alt=\"Bild\"",
        "الديمقراطية",
        "🌍",
    ] {
        assert!(content.contains(needle), "4711 lacks {needle}");
    }
    let edited = wordpress_edited_fixture();
    let original = posts.iter().find(|p| p["id"] == 4712).unwrap();
    for same in ["id", "date", "date_gmt", "slug", "link", "guid"] {
        assert_eq!(edited[same], original[same], "{same}");
    }
    assert!(edited["modified_gmt"].as_str() > original["modified_gmt"].as_str());
    assert_ne!(edited["title"], original["title"]);
    assert_ne!(edited["content"], original["content"]);

    let parse = |name: &str| feed_rs::parser::parse(fixture(&format!("feeds/{name}")).as_slice());
    let rss = parse("partner.rss").unwrap();
    assert_eq!(rss.entries.len(), 5);
    let updated = parse("partner-updated.rss").unwrap();
    assert_eq!(updated.entries.len(), 6);
    let before = rss
        .entries
        .iter()
        .find(|e| e.id == "partners.example.net:news:2035")
        .unwrap();
    let after = updated
        .entries
        .iter()
        .find(|e| e.id == "partners.example.net:news:2035")
        .unwrap();
    assert_ne!(
        before.title.as_ref().unwrap().content,
        after.title.as_ref().unwrap().content
    );
    let atom = parse("partner.atom").unwrap();
    assert_eq!(atom.entries.len(), 4);
    let json = parse("partner.json").unwrap();
    assert_eq!(json.entries.len(), 3);
    assert_eq!(parse("empty.rss").unwrap().entries.len(), 0);
    assert!(parse("broken.xml").is_err(), "broken.xml parses");
    assert!(parse("not-a-feed.html").is_err(), "not-a-feed.html parses");
    let _: Value = serde_json::from_slice(&fixture("feeds/partner.json")).unwrap();
}
