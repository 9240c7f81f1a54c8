//! `[storage]`: where tidings keeps its state, SQLite or PostgreSQL.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;
use url::Url;

use super::spans::{Context, span_of};

/// `[storage]`.
#[derive(Debug, Clone)]
pub struct Storage {
    /// Default `sqlite://tidings.db`; a relative SQLite path is resolved
    /// against the config file's folder.
    pub url: StorageUrl,
}

#[derive(Clone, PartialEq, Eq)]
pub enum StorageUrl {
    Sqlite(PathBuf),
    /// `postgres://user[:password]@host[:port]/database[?…]`; the password
    /// may instead come from `PGPASSWORD`.
    Postgres(String),
}

impl fmt::Display for StorageUrl {
    /// The URL without its password, for messages and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            StorageUrl::Postgres(url) => match Url::parse(url) {
                Ok(mut u) => {
                    if u.password().is_some() {
                        let _ = u.set_password(Some("***"));
                    }
                    write!(f, "{u}")
                }
                Err(_) => f.write_str("postgres://…"),
            },
        }
    }
}

impl fmt::Debug for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageUrl({self})")
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct RawStorage {
    #[serde(default = "default_storage_url")]
    url: String,
}
pub(super) const STORAGE_KEYS: &[&str] = &["url"];

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            url: default_storage_url(),
        }
    }
}
fn default_storage_url() -> String {
    "sqlite://tidings.db".into()
}

/// `[storage]` checked; `value` is `None` when the section is not in the
/// file (the defaults).
pub(super) fn validate(
    cx: &mut Context,
    raw: RawStorage,
    value: Option<&Spanned<DeValue<'_>>>,
    root: &Path,
) -> Option<Storage> {
    let url = cx.check(
        "storage.url",
        value.and_then(|v| span_of(v, "url")),
        parse_storage_url(&raw.url, root),
    )?;
    Some(Storage { url })
}

fn parse_storage_url(url: &str, root: &Path) -> Result<StorageUrl, String> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() {
            return Err(format!(
                "`{url}` names no database file: expected \"sqlite://tidings.db\""
            ));
        }
        return Ok(StorageUrl::Sqlite(root.join(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let parsed = Url::parse(url).map_err(|e| {
            format!("not a PostgreSQL URL ({e}): expected \"postgres://user@host/database\"")
        })?;
        if parsed.host_str().is_none_or(str::is_empty) && !url.contains("host=") {
            return Err("names no server: expected \"postgres://user@host/database\"".into());
        }
        return Ok(StorageUrl::Postgres(url.to_owned()));
    }
    Err(format!(
        "`{url}` is not a storage URL: expected \"sqlite://PATH\" or \"postgres://user@host/database\""
    ))
}
