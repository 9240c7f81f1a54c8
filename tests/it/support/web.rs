//! The web side of a fixture site: the site with stories built and
//! `[mail]`, `tidings run` with the test secret, and a browser-like client
//! whose answers are read whole as a [`Page`].

use reqwest::header::HeaderMap;
use reqwest::{Client, StatusCode};

use super::digest::digest_site;
use super::service::Service;
use super::site::{Site, recent};

/// The signing key every test service runs with, so tests can sign links.
pub const SECRET: &str = "web-test-secret-0123456789abcdefghijklmnop";

/// The token of `POST /api/ingest` in the tests that set one.
pub const TOKEN: &str = "test-token-5f2c";

/// The fixture site with `[mail]` (sending through `transport`), a monthly
/// digest and a few recent stories, built.
pub fn web_site(transport: &str) -> Site {
    let site = digest_site(transport);
    recent(&site, "a1", "Alpha one", 2, &["alpha"]);
    recent(&site, "b1", "Beta <one> & co", 1, &["beta"]);
    recent(&site, "ag", "Alpha and gamma", 3, &["alpha", "gamma"]);
    site.build();
    site
}

/// Adds `[http]` with the client address taken from `X-Forwarded-For`.
pub fn behind_proxy(site: &Site) {
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    std::fs::write(
        site.config_path(),
        format!("{config}\n[http]\nlisten = \"127.0.0.1:0\"\nbehind_proxy = true\n"),
    )
    .unwrap();
}

/// `tidings run` on the site with [`SECRET`].
pub fn serve(site: &Site) -> Service {
    site.serve(&[("TIDINGS_SECRET", SECRET)])
}

/// A browser-like client: keeps cookies, never follows redirects.
pub fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub async fn from(response: reqwest::Response) -> Page {
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    /// Asserts the page is HTML in `lang` with the security headers.
    pub fn assert_html(&self, status: StatusCode, lang: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.header("content-type"), "text/html; charset=utf-8");
        assert!(
            self.body.starts_with("<!DOCTYPE html>"),
            "{}",
            &self.body[..80]
        );
        assert!(
            self.body.contains(&format!("<html lang=\"{lang}\">")),
            "not in {lang}: {}",
            &self.body[..200]
        );
        assert_eq!(
            self.header("content-security-policy"),
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
        assert_eq!(self.header("x-content-type-options"), "nosniff");
        assert_eq!(self.header("referrer-policy"), "no-referrer");
        assert!(self.body.contains("name=\"viewport\""));
        assert!(self.body.contains("<a class=\"skip\" href=\"#main\">"));
        assert!(self.body.contains("<main id=\"main\""));
        assert!(!self.body.to_lowercase().contains("<script"));
    }

    /// The element with `id`, from its start tag to the end of the line.
    pub fn has_id(&self, id: &str) -> bool {
        self.body.contains(&format!("id=\"{id}\""))
    }

    /// The value of the hidden `csrf` field.
    pub fn csrf(&self) -> String {
        attr_after(&self.body, "name=\"csrf\"", "value")
            .unwrap_or_else(|| panic!("no csrf field in {}", self.body))
    }
}

/// The value of attribute `attr` in the tag holding `marker`.
pub fn attr_after(html: &str, marker: &str, attr: &str) -> Option<String> {
    let at = html.find(marker)?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let key = format!("{attr}=\"");
    let from = tag.find(&key)? + key.len();
    Some(tag[from..from + tag[from..].find('"')?].to_owned())
}

/// `GET url`, read whole.
pub async fn get(client: &Client, url: &str) -> Page {
    Page::from(client.get(url).send().await.unwrap()).await
}

/// The sample site on a free port, with its scheduled ingest moved out of
/// the way so that only the test rewrites the feeds.
pub fn sample_site_to_serve() -> Site {
    let site = Site::sample();
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    let mut lines: Vec<String> = config
        .lines()
        .map(|line| {
            if line.starts_with("ingest =") {
                "ingest = \"0 0 1 1 *\"".to_owned()
            } else if line.starts_with("listen =") {
                "listen = \"127.0.0.1:0\"".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect();
    if !config.contains("[schedule]") {
        lines.push("[schedule]\ningest = \"0 0 1 1 *\"".into());
    }
    if !config.contains("[http]") {
        lines.push("[http]\nlisten = \"127.0.0.1:0\"".into());
    }
    std::fs::write(site.config_path(), lines.join("\n") + "\n").unwrap();
    site
}

/// A client that neither asks for nor decodes compression, so the test
/// sees the bytes on the wire.
pub fn raw_client() -> Client {
    Client::builder().no_gzip().no_brotli().build().unwrap()
}
