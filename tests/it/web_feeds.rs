//! `/feeds/…` over HTTP from a running `tidings run`: media types,
//! validators and `304`, gzip and brotli, HEAD, methods, path safety, and a
//! file replaced by an ingest while the service runs.

use std::io::Read as _;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use reqwest::{Client, Method, StatusCode};

use crate::support::{Service, Site, TOKEN, raw_client, sample_site_to_serve as site};

/// A theme of the sample site.
const THEME: &str = "agenda-2030";

async fn get(client: &Client, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name} header in {h:?}"))
        .to_str()
        .unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(bytes, 4096)
        .read_to_end(&mut out)
        .expect("a brotli body");
    out
}

/// Sends `GET <path>` byte for byte (no client normalises it) and returns
/// the status and body.
async fn raw_get(service: &Service, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let host = service.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

/// Every file the build wrote that `/feeds/` serves, with its media type.
fn served_files(site: &Site) -> Vec<(String, &'static str)> {
    let mut files = vec![
        ("rss.xml".to_owned(), "application/rss+xml; charset=utf-8"),
        ("atom.xml".into(), "application/atom+xml; charset=utf-8"),
        ("feed.json".into(), "application/feed+json; charset=utf-8"),
        ("feeds.opml".into(), "text/x-opml; charset=utf-8"),
    ];
    for (f, t) in [
        ("rss.xml", "application/rss+xml; charset=utf-8"),
        ("atom.xml", "application/atom+xml; charset=utf-8"),
        ("feed.json", "application/feed+json; charset=utf-8"),
    ] {
        files.push((format!("themes/{THEME}/{f}"), t));
    }
    if site.path("feeds/index.html").exists() {
        files.push(("index.html".into(), "text/html; charset=utf-8"));
    }
    files
}

#[tokio::test]
async fn every_feed_file_is_served_with_its_type_and_validators() {
    let site = site();
    let service = site.serve(&[]);
    let client = raw_client();
    let files = served_files(&site);
    assert!(
        files.iter().any(|(f, _)| f == "index.html"),
        "the build writes index.html"
    );
    for (rel, content_type) in &files {
        let response = get(&client, &service.url(&format!("/feeds/{rel}")), &[]).await;
        assert_eq!(response.status(), StatusCode::OK, "{rel}");
        let h = response.headers().clone();
        assert_eq!(header(&h, "content-type"), *content_type, "{rel}");
        let etag = header(&h, "etag");
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10,
            "{rel}: a strong ETag, not {etag}"
        );
        assert_eq!(header(&h, "cache-control"), "public, max-age=300");
        assert_eq!(header(&h, "vary").to_ascii_lowercase(), "accept-encoding");
        assert!(h.get("content-encoding").is_none(), "{rel}: not asked for");
        let modified = httpdate::parse_http_date(header(&h, "last-modified")).unwrap();
        let mtime = std::fs::metadata(site.path(&format!("feeds/{rel}")))
            .unwrap()
            .modified()
            .unwrap();
        let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(
            secs(modified),
            secs(mtime),
            "{rel}: Last-Modified is the mtime"
        );
        let body = response.bytes().await.unwrap();
        assert_eq!(body, site.feed_bytes(rel), "{rel}: the file's bytes");
        if rel.ends_with(".xml") || rel.ends_with(".json") {
            let feed = feed_rs::parser::parse(&body[..]).unwrap_or_else(|e| panic!("{rel}: {e}"));
            assert!(!feed.entries.is_empty(), "{rel} has entries");
        }
    }
    // Different files, different tags.
    let a = get(&client, &service.url("/feeds/atom.xml"), &[]).await;
    let r = get(&client, &service.url("/feeds/rss.xml"), &[]).await;
    assert_ne!(a.headers()["etag"], r.headers()["etag"]);
    // The folder itself is its index page.
    let index = get(&client, &service.url("/feeds/"), &[]).await;
    assert_eq!(index.status(), StatusCode::OK);
    assert_eq!(
        header(index.headers(), "content-type"),
        "text/html; charset=utf-8"
    );
    assert_eq!(index.bytes().await.unwrap(), site.feed_bytes("index.html"));
}

#[tokio::test]
async fn conditional_requests_get_304_and_only_when_they_match() {
    let site = site();
    let service = site.serve(&[]);
    let client = raw_client();
    let url = service.url("/feeds/atom.xml");
    let first = get(&client, &url, &[]).await;
    let etag = header(first.headers(), "etag").to_owned();
    let modified = header(first.headers(), "last-modified").to_owned();
    let opaque = etag.trim_matches('"');
    let earlier = httpdate::fmt_http_date(
        httpdate::parse_http_date(&modified).unwrap() - Duration::from_secs(86400),
    );

    let not_modified: Vec<(&str, String)> = vec![
        ("if-none-match", etag.clone()),
        ("if-none-match", format!("W/{etag}")),
        ("if-none-match", format!("\"nope\", {etag}")),
        ("if-none-match", format!("W/\"x\",W/\"{opaque}-gz\"")),
        ("if-none-match", "*".into()),
        ("if-modified-since", modified.clone()),
        (
            "if-modified-since",
            httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600)),
        ),
    ];
    for (name, value) in &not_modified {
        let r = get(&client, &url, &[(name, value)]).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{name}: {value}");
        assert_eq!(header(r.headers(), "etag"), etag, "a 304 names the version");
        assert_eq!(header(r.headers(), "cache-control"), "public, max-age=300");
        assert!(r.bytes().await.unwrap().is_empty(), "a 304 has no body");
    }

    let modified_since: Vec<Vec<(&str, String)>> = vec![
        vec![("if-none-match", "\"something-else\"".into())],
        vec![("if-none-match", opaque.to_owned())], // unquoted: malformed
        vec![("if-modified-since", earlier.clone())],
        vec![("if-modified-since", "not a date".into())],
        // If-None-Match decides when both are present (RFC 9110 §13.2.2).
        vec![
            ("if-none-match", "\"something-else\"".into()),
            ("if-modified-since", modified.clone()),
        ],
    ];
    for headers in &modified_since {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = get(&client, &url, &pairs).await;
        assert_eq!(r.status(), StatusCode::OK, "{headers:?}");
        assert_eq!(r.bytes().await.unwrap(), site.feed_bytes("atom.xml"));
    }
    // And the other way round: a matching tag wins over an old date.
    let r = get(
        &client,
        &url,
        &[("if-none-match", &etag), ("if-modified-since", &earlier)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn gzip_and_brotli_bodies_decode_to_the_file() {
    let site = site();
    let service = site.serve(&[]);
    let client = raw_client();
    for rel in ["atom.xml", "rss.xml", "feed.json", "feeds.opml"] {
        let url = service.url(&format!("/feeds/{rel}"));
        let file = site.feed_bytes(rel);
        let identity = get(&client, &url, &[]).await;
        let identity_tag = header(identity.headers(), "etag").to_owned();

        let gz = get(&client, &url, &[("accept-encoding", "gzip")]).await;
        assert_eq!(header(gz.headers(), "content-encoding"), "gzip", "{rel}");
        let gz_tag = header(gz.headers(), "etag").to_owned();
        let body = gz.bytes().await.unwrap();
        assert!(body.len() < file.len(), "{rel}: gzip is smaller");
        assert_eq!(gunzip(&body), file, "{rel}: gzip decodes to the file");

        let br = get(&client, &url, &[("accept-encoding", "gzip, deflate, br")]).await;
        assert_eq!(header(br.headers(), "content-encoding"), "br", "{rel}");
        let br_tag = header(br.headers(), "etag").to_owned();
        let body = br.bytes().await.unwrap();
        assert_eq!(unbrotli(&body), file, "{rel}: brotli decodes to the file");

        // Each representation has its own strong tag, and any of them
        // validates the content whatever encoding is asked for now.
        assert_ne!(identity_tag, gz_tag);
        assert_ne!(identity_tag, br_tag);
        assert_ne!(gz_tag, br_tag);
        let r = get(&client, &url, &[("if-none-match", &gz_tag)]).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(r.headers(), "etag"), identity_tag);
        let r = get(
            &client,
            &url,
            &[("if-none-match", &identity_tag), ("accept-encoding", "br")],
        )
        .await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(r.headers(), "etag"), br_tag);
    }

    let url = service.url("/feeds/atom.xml");
    let encoding_for = async |accept: &str| {
        let r = get(&client, &url, &[("accept-encoding", accept)]).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_else(|| "identity".into())
    };
    assert_eq!(encoding_for("br;q=0.5, gzip;q=0.8").await, "gzip");
    assert_eq!(encoding_for("gzip;q=0.5, br").await, "br");
    assert_eq!(encoding_for("br;q=0, gzip").await, "gzip");
    assert_eq!(encoding_for("gzip;q=0").await, "identity");
    assert_eq!(encoding_for("identity").await, "identity");
    assert_eq!(encoding_for("deflate").await, "identity");
    assert_eq!(encoding_for("*").await, "br");
    assert_eq!(encoding_for("*;q=0.1, br;q=0").await, "gzip");

    // A client that decodes on its own gets the file.
    let auto = Client::new();
    let r = auto.get(&url).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), site.feed_bytes("atom.xml"));
}

#[tokio::test]
async fn head_answers_headers_without_a_body() {
    let site = site();
    let service = site.serve(&[]);
    let client = raw_client();
    let url = service.url("/feeds/rss.xml");
    let file = site.feed_bytes("rss.xml");

    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let h = head.headers().clone();
    assert_eq!(
        header(&h, "content-type"),
        "application/rss+xml; charset=utf-8"
    );
    assert_eq!(header(&h, "content-length"), file.len().to_string());
    assert!(head.bytes().await.unwrap().is_empty());
    let get_tag = get(&client, &url, &[]).await.headers()["etag"].clone();
    assert_eq!(h["etag"], get_tag);

    let head = client
        .head(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    let gz = get(&client, &url, &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(head.headers(), "content-encoding"), "gzip");
    let gz_len = gz.bytes().await.unwrap().len();
    assert_eq!(header(head.headers(), "content-length"), gz_len.to_string());

    let head = client
        .head(&url)
        .header("if-none-match", get_tag.to_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn other_methods_are_refused_with_405() {
    let site = site();
    let service = site.serve(&[]);
    let client = raw_client();
    for path in [
        "/feeds/atom.xml",
        &format!("/feeds/themes/{THEME}/feed.json"),
        "/feeds/",
    ] {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let r = client
                .request(method.clone(), service.url(path))
                .body("x")
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let allow = header(r.headers(), "allow").to_ascii_uppercase();
            assert!(allow.contains("GET") && allow.contains("HEAD"), "{allow}");
        }
    }
}

#[tokio::test]
async fn nothing_but_the_feed_files_is_served() {
    let site = site();
    let service = site.serve(&[]);
    // Things a traversal would like to reach, inside and outside the dir.
    std::fs::write(site.path("feeds/notes.txt"), "private notes").unwrap();
    std::fs::write(site.path("feeds/.tidings-x.tmp"), "half written").unwrap();
    let theme_rss = site.path(&format!("feeds/themes/{THEME}/rss.xml"));
    std::fs::remove_file(&theme_rss).unwrap();
    std::os::unix::fs::symlink(site.config_path(), &theme_rss).unwrap();

    let paths = [
        "/feeds/../config.toml".to_owned(),
        "/feeds/%2e%2e/config.toml".into(),
        "/feeds/%2E%2E%2Fconfig.toml".into(),
        "/feeds/..%2fconfig.toml".into(),
        "/feeds/themes/../../config.toml".into(),
        "/feeds/themes/../rss.xml".into(),
        "/feeds/themes/..%2F..%2Fconfig.toml%00/rss.xml".into(),
        "/feeds/themes/%2e%2e/rss.xml".into(),
        format!("/feeds/themes/{THEME}/../../../config.toml"),
        format!("/feeds/themes/{THEME}/rss.xml"), // a symlink out
        "/feeds//etc/passwd".into(),
        "/feeds/%2Fetc%2Fpasswd".into(),
        "/feeds/notes.txt".into(),
        "/feeds/.tidings-x.tmp".into(),
        "/feeds/themes/no-such-theme/rss.xml".into(),
        "/feeds/themes/".into(),
        "/feeds/atom.xml/".into(),
        "/feeds/atom%2Exml".into(),
        "/feeds/../tidings.db".into(),
    ];
    for path in &paths {
        let (status, text) = raw_get(&service, path).await;
        assert_eq!(status, 404, "{path}:\n{text}");
        assert!(
            !text.contains("[site]") && !text.contains("private notes") && !text.contains("root:"),
            "{path} leaked a file:\n{text}"
        );
    }
    // The real files are still there.
    let (status, _) = raw_get(&service, "/feeds/atom.xml").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_replaced_file_is_served_fresh_with_a_new_tag() {
    let site = site();
    let service = site.serve(&[("TIDINGS_API_TOKEN", TOKEN)]);
    let client = raw_client();
    let url = service.url("/feeds/atom.xml");
    let theme_url = service.url(&format!("/feeds/themes/{THEME}/feed.json"));
    let before = get(&client, &url, &[]).await;
    let old_tag = header(before.headers(), "etag").to_owned();
    let old_gz = get(&client, &url, &[("accept-encoding", "gzip")]).await;
    let old_gz_tag = header(old_gz.headers(), "etag").to_owned();
    let old_theme_tag = header(get(&client, &theme_url, &[]).await.headers(), "etag").to_owned();
    // A feed of another theme, which the new story leaves alone.
    let other_url = service.url("/feeds/themes/ledarskap/atom.xml");
    let other_bytes = site.feed_bytes("themes/ledarskap/atom.xml");
    let other = get(&client, &other_url, &[]).await;
    let other_tag = header(other.headers(), "etag").to_owned();

    let date = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    site.story("fresh-from-the-cms", "Fresh from the CMS", &date, &[THEME]);
    let r = client
        .post(service.url("/api/ingest"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", service.log());

    // The reader's cached copy is stale now: a 200 with a new tag.
    for accept in ["identity", "gzip", "br"] {
        let r = get(
            &client,
            &url,
            &[("if-none-match", &old_tag), ("accept-encoding", accept)],
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK, "{accept}");
        let tag = header(r.headers(), "etag").to_owned();
        assert_ne!(tag, old_tag);
        assert_ne!(tag, old_gz_tag);
        let body = r.bytes().await.unwrap().to_vec();
        let body = match accept {
            "gzip" => gunzip(&body),
            "br" => unbrotli(&body),
            _ => body,
        };
        assert_eq!(body, site.feed_bytes("atom.xml"), "{accept}: the new file");
        let feed = feed_rs::parser::parse(&body[..]).unwrap();
        assert!(
            feed.entries.iter().any(|e| e
                .title
                .as_ref()
                .is_some_and(|t| t.content == "Fresh from the CMS")),
            "{accept}: the new story is in the feed"
        );
    }
    let r = get(&client, &theme_url, &[("if-none-match", &old_theme_tag)]).await;
    assert_eq!(r.status(), StatusCode::OK, "the theme's feed changed too");
    // A file the ingest did not rewrite still validates.
    assert_eq!(site.feed_bytes("themes/ledarskap/atom.xml"), other_bytes);
    let r = get(&client, &other_url, &[("if-none-match", &other_tag)]).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
}

/// Connections are served on several threads: clients that stall in the
/// middle of a request hold up neither the others nor a stop, which closes
/// them at once (see also `web_server`, with hundreds of them).
#[test]
fn stalled_clients_hold_up_neither_other_requests_nor_a_stop() {
    use std::io::Write as _;
    use std::net::TcpStream;
    use std::time::Instant;

    let site = site();
    site.build();
    let service = site.serve(&[("TIDINGS_SHUTDOWN_SECONDS", "2")]);
    let addr = service.base.strip_prefix("http://").unwrap().to_owned();
    // More of them than there are threads: every thread has some.
    let stalled: Vec<TcpStream> = (0..16)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /feeds/atom.xml HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    for _ in 0..16 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /feeds/atom.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(answer.ends_with(b"</feed>\n"), "the whole feed");
    }
    let asked = Instant::now();
    let (code, log) = service.stop();
    assert_eq!(code, 0, "{log}");
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "{:?} to stop:\n{log}",
        asked.elapsed()
    );
    drop(stalled);
}
