//! `config.toml`: the operator's description of the site, its themes, its
//! sources, the feeds, the store, the mail and digests, and the service.
//!
//! Loading happens in two steps, as ripgrep parses its flags before acting
//! on them. The file is parsed once into a spanned TOML tree, and `read`
//! reads each section into its raw form (strings and numbers, as serde
//! sees them); then each section's `validate` turns the raw values into
//! typed ones (`Url`, `Tz`, `ThemeSlug`, `CronSchedule`, ...). Every problem
//! carries the file, line, column and key (`spans` holds that machinery),
//! and all of them are returned together.
//!
//! One file per section: `site`, `themes`, `sources` (directory and
//! remote), `feeds`, `storage`, `mail`, `digests`, `schedule`, `http`, `bounces`. The
//! environment ([`env`]) is read apart, once, at start;
//! [`Config::with_environment`] hands the values that belong to a section
//! (the SMTP password, the API token, the HTTP backoff) to it.

use std::path::{Path, PathBuf};

use toml::de::DeTable;
use url::Url;

use crate::model::ThemeSlug;
use crate::model::problem::{Problem, Problems};
use env::Environment;
use read::RawConfig;
use spans::Context;

mod bounces;
mod digests;
pub mod env;
mod feeds;
mod http;
mod localized;
mod mail;
mod read;
mod schedule;
mod site;
mod sources;
mod spans;
mod storage;
mod themes;

pub use bounces::{Bounces, ImapMailbox, Relay, Webhooks};
pub use digests::Digest;
pub use feeds::{Feeds, Hub, WebSub};
pub use http::Http;
pub use localized::Localized;
pub use mail::{Dkim, Mail, Tls, Transport};
pub use schedule::Schedule;
pub use site::{Site, parse_base_url};
pub use sources::{DirectorySource, FeedSource, Remote, Source, WordPressSource};
pub use storage::{Storage, StorageUrl};
pub use themes::Theme;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file itself.
    pub path: PathBuf,
    /// The folder holding it; relative paths in the file are relative to it.
    pub root: PathBuf,
    pub site: Site,
    pub themes: Vec<Theme>,
    pub sources: Vec<Source>,
    pub feeds: Feeds,
    pub storage: Storage,
    /// `[mail]`, when the site sends email.
    pub mail: Option<Mail>,
    /// `[[digests]]`, in config order.
    pub digests: Vec<Digest>,
    /// `[schedule]`, for `tidings run`.
    pub schedule: Schedule,
    /// `[http]`, for `tidings run`.
    pub http: Http,
    /// `[bounces]`: the VERP envelope sender and the bounce policy.
    pub bounces: Bounces,
}

impl Config {
    /// Reads, parses and validates `path`, returning every problem found.
    pub fn load(path: &Path) -> Result<Config, Problems> {
        let text = match fs_err::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                return Err(Problems(vec![Problem::new(
                    path,
                    format!("cannot read the config file: {}", io_reason(&e)),
                )]));
            }
        };
        Config::from_str(path, &text)
    }

    /// Parses and validates config text as if read from `path`.
    pub fn from_str(path: &Path, text: &str) -> Result<Config, Problems> {
        let mut cx = Context {
            file: path.to_path_buf(),
            text,
            problems: Problems::default(),
        };
        let root = match DeTable::parse(text) {
            Ok(root) => root,
            Err(e) => {
                cx.problems.push(
                    Problem::new(path, format!("invalid TOML: {}", e.message().trim()))
                        .at_span(text, e.span()),
                );
                return Err(cx.problems);
            }
        };
        let raw = read::read(&mut cx, root.get_ref());
        let config = validate(&mut cx, raw);
        if cx.problems.is_empty() {
            Ok(config.expect("validation without problems yields a config"))
        } else {
            Err(cx.problems.sorted())
        }
    }

    /// The config with the settings of the environment that belong to its
    /// sections: the SMTP password to `[mail]`, the API token to `[http]`,
    /// the HTTP backoff to each remote source, the bounce mailbox's
    /// password to `[bounces]`. `main` calls it once, with
    /// the environment it read at start; nothing deeper reads the
    /// environment.
    pub fn with_environment(mut self, env: &Environment) -> Config {
        if let Some(mail) = &mut self.mail {
            mail.smtp_password = env.smtp_password.clone();
        }
        self.http.api_token = env.api_token.clone();
        for remote in self.sources.iter_mut().filter_map(Source::remote_mut) {
            remote.backoff = env.http_backoff;
        }
        self.feeds.websub.backoff = env.websub_backoff;
        if let Some(mailbox) = &mut self.bounces.mailbox {
            mailbox.password = env.bounces_password.clone();
        }
        let hooks = &mut self.bounces.webhooks;
        hooks.mailgun_signing_key = env.mailgun_signing_key.clone();
        hooks.postmark_password = env.postmark_webhook_password.clone();
        hooks.sendgrid_key = env.sendgrid_verification_key.clone();
        hooks.sns_cert_url_pattern = env.sns_cert_url_pattern.clone();
        self
    }

    /// The digest with `id`, or the first one when `id` is `None`.
    pub fn digest(&self, id: Option<&str>) -> Option<&Digest> {
        match id {
            Some(id) => self.digests.iter().find(|d| d.id == id),
            None => self.digests.first(),
        }
    }

    /// Where the service is reached from outside: `[http] public_url`,
    /// else `[site] base_url`. Links to its pages start with it.
    pub fn public_url(&self) -> &Url {
        self.http.public_url.as_ref().unwrap_or(&self.site.base_url)
    }

    /// The URLs of the WebSub hubs every feed announces, in config order:
    /// `<public_url>websub` for the built-in hub.
    pub fn hub_urls(&self) -> Vec<Url> {
        let websub = &self.feeds.websub;
        websub
            .hubs
            .iter()
            .map(|hub| match hub {
                Hub::Builtin => self.builtin_hub_url(),
                Hub::External(url) => url.clone(),
            })
            .collect()
    }

    /// Where the built-in WebSub hub is reached: `<public_url>websub`.
    pub fn builtin_hub_url(&self) -> Url {
        self.public_url()
            .join("websub")
            .expect("a constant relative path joins")
    }

    /// The theme with `slug`, if configured.
    pub fn theme(&self, slug: &ThemeSlug) -> Option<&Theme> {
        self.themes.iter().find(|t| &t.slug == slug)
    }
}

fn io_reason(e: &std::io::Error) -> String {
    // fs_err's message repeats the path; the kind is what the operator needs.
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::InvalidData => "not valid UTF-8".into(),
        _ => e.to_string(),
    }
}

/// Loading, step two: each section validated, in the order the sections
/// depend on each other (themes need the site's language, sources the
/// themes). Every step runs, so that all problems are reported; the
/// config is whole only when there were none.
fn validate(cx: &mut Context, raw: RawConfig<'_>) -> Option<Config> {
    let root = folder_of(&cx.file);
    let site = site::validate(cx, raw.site, raw.root.contains_key("site"));
    let language = site.as_ref().map(|s| s.language.as_str());
    let themes = themes::validate(cx, raw.themes, language);
    let sources = sources::validate(cx, raw.sources, &themes, &root);
    if !raw.root.contains_key("sources") && !raw.any_section_failed {
        sources::missing(cx);
    }
    let feeds = raw
        .feeds
        .and_then(|(feeds, value)| feeds::validate(cx, feeds, value.as_ref(), &root));
    let storage = raw
        .storage
        .and_then(|(storage, value)| storage::validate(cx, storage, value.as_ref(), &root));
    let mail = raw
        .mail
        .map(|(mail, value)| mail::validate(cx, mail, &value, &root));
    let digests = digests::validate(cx, raw.digests, language);
    let schedule = match raw.schedule {
        Some((schedule, value)) => schedule::validate(cx, schedule, &value),
        None => Some(Schedule::default()),
    };
    let http = match raw.http {
        Some((http, value)) => http::validate(cx, http, &value),
        None => Some(Http::default()),
    };
    let bounces = match raw.bounces {
        Some((bounces, value)) => bounces::validate(cx, bounces, &value),
        None => Some(Bounces::default()),
    };
    Some(Config {
        path: cx.file.clone(),
        root,
        site: site?,
        themes,
        sources,
        feeds: feeds?,
        storage: storage?,
        mail: mail.flatten(),
        digests,
        schedule: schedule?,
        http: http?,
        bounces: bounces?,
    })
}

/// The folder of the config file, against which its relative paths
/// resolve.
fn folder_of(file: &Path) -> PathBuf {
    file.parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match Config::from_str(Path::new("config.toml"), text) {
            Ok(_) => Vec::new(),
            Err(p) => p.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn every_problem_is_listed_with_line_and_key() {
        let text = r#"[site]
title = "T"
base_url = "/relative"
timezone = "Mars/Olympus"
colour = "blue"

[[themes]]
slug = "a"
title = "A"

[[themes]]
slug = "a"
title = "A again"

[feeds]
items = "many"
"#;
        let p = problems(text);
        let joined = p.join("\n");
        assert!(
            joined.contains("config.toml:3:12: `site.base_url`"),
            "{joined}"
        );
        assert!(
            joined.contains("config.toml:4:12: `site.timezone`: unknown time zone"),
            "{joined}"
        );
        assert!(
            joined.contains("config.toml:5:1: `site.colour`: unknown key"),
            "{joined}"
        );
        assert!(joined.contains("config.toml:12:8: `themes[1].slug`: duplicate theme slug `a`, already used on line 8"), "{joined}");
        assert!(joined.contains("`feeds.items`"), "{joined}");
    }

    #[test]
    fn bounces_are_checked_with_line_and_key_and_default_when_absent() {
        let site = "[site]\ntitle = \"T\"\nbase_url = \"https://example.org\"\n\n\
                    [[sources]]\nkind = \"feed\"\nurl = \"https://partner.example.org/feed.xml\"\n";
        let config = Config::from_str(Path::new("config.toml"), site).unwrap();
        assert_eq!(config.bounces, Bounces::default());
        assert_eq!(config.bounces.soft_limit, 3);
        assert_eq!(config.bounces.soft_window_days, 30);
        let text = format!(
            "{site}\n[bounces]\nreturn_path = \"bounces+x@example.org\"\nsoft_limit = 0\nmailbox = \"imap://x\"\n\
             schedule = \"every hour\"\nprocessed = \"done\"\n"
        );
        let joined = problems(&text).join("\n");
        assert!(
            joined.contains("config.toml:10:15: `bounces.return_path`"),
            "{joined}"
        );
        assert!(joined.contains("`bounces.soft_limit`"), "{joined}");
        assert!(
            joined.contains("config.toml:12:11: `bounces.mailbox`: `imap://x` names no user"),
            "{joined}"
        );
        assert!(
            joined.contains("config.toml:13:12: `bounces.schedule`: `every hour`"),
            "{joined}"
        );
        assert!(
            joined.contains("config.toml:14:1: `bounces.processed`: unknown key"),
            "{joined}"
        );
        let same = format!(
            "{site}\n[bounces]\nmailbox = \"imap://u@h/Bounces\"\nprocessed_folder = \"bounces\"\n"
        );
        let joined = problems(&same).join("\n");
        assert!(
            joined.contains(
                "`bounces.processed_folder`: `bounces` is the folder the reports arrive in"
            ),
            "{joined}"
        );
        let good = format!(
            "{site}\n[bounces]\nreturn_path = \"bounces@example.org\"\nsoft_window_days = 7\n"
        );
        let config = Config::from_str(Path::new("config.toml"), &good).unwrap();
        assert_eq!(
            config.bounces.return_path.unwrap().to_string(),
            "bounces@example.org"
        );
        assert_eq!(config.bounces.soft_window_days, 7);
        assert!(config.bounces.mailbox.is_none());
        let imap = format!(
            "{site}\n[bounces]\nmailbox = \"imap://bounces@imap.example.org/Reports\"\nschedule = \"*/5 * * * *\"\n"
        );
        let config = Config::from_str(Path::new("config.toml"), &imap).unwrap();
        let mailbox = config.bounces.mailbox.as_ref().unwrap();
        assert_eq!(mailbox.folder, "Reports");
        assert_eq!(mailbox.processed_folder, "tidings-processed");
        assert_eq!(mailbox.schedule.as_str(), "*/5 * * * *");
        assert!(config.bounces.mailbox_problem().is_some());
        let env = Environment::from_vars(|name| {
            (name == "TIDINGS_BOUNCES_PASSWORD").then(|| " pw ".into())
        })
        .unwrap();
        let config = config.with_environment(&env);
        let mailbox = config.bounces.mailbox.as_ref().unwrap();
        assert_eq!(mailbox.password.as_ref().unwrap().expose(), " pw ");
        assert!(config.bounces.mailbox_problem().is_none());
        assert!(!format!("{config:?}").contains(" pw "));
    }

    #[test]
    fn the_environment_reaches_the_sections_that_use_it() {
        let text = r#"[site]
title = "T"
base_url = "https://example.org"

[[sources]]
kind = "feed"
url = "https://partner.example.org/feed.xml"

[mail]
from = "news@example.org"
transport = "smtp://news@smtp.example.org"
"#;
        let config = Config::from_str(Path::new("config.toml"), text).unwrap();
        let env = Environment::from_vars(|name| match name {
            "TIDINGS_SMTP_PASSWORD" => Some("pw".into()),
            "TIDINGS_API_TOKEN" => Some("token".into()),
            "TIDINGS_HTTP_BACKOFF_MS" => Some("10".into()),
            _ => None,
        })
        .unwrap();
        let config = config.with_environment(&env);
        let mail = config.mail.as_ref().unwrap();
        assert_eq!(mail.smtp_password.as_ref().unwrap().expose(), "pw");
        assert_eq!(config.http.api_token.as_ref().unwrap().expose(), "token");
        let remote = config.sources[0].remote().unwrap();
        assert_eq!(remote.backoff, std::time::Duration::from_millis(10));
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("\"pw\"") && !shown.contains("token\""),
            "{shown}"
        );
    }
}
