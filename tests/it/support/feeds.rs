//! The feeds a build wrote, read back with independent parsers: feed-rs
//! here, Python's feedparser through `tests/feedcheck.py`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::site::Site;

impl Site {
    pub fn feed_bytes(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(&format!("feeds/{rel}")))
            .unwrap_or_else(|e| panic!("feeds/{rel}: {e}"))
    }

    /// A feed parsed by feed-rs.
    pub fn feed(&self, rel: &str) -> feed_rs::model::Feed {
        let bytes = self.feed_bytes(rel);
        feed_rs::parser::parse(&bytes[..]).unwrap_or_else(|e| panic!("feeds/{rel}: {e}"))
    }

    /// Every file under the feeds folder with its bytes, by its path
    /// relative to the folder (`themes/alpha/rss.xml`).
    pub fn feeds_folder(&self) -> BTreeMap<String, Vec<u8>> {
        fn walk(dir: &Path, rel: &str, out: &mut BTreeMap<String, Vec<u8>>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                let rel = format!("{rel}{}", entry.file_name().to_string_lossy());
                if entry.file_type().unwrap().is_dir() {
                    walk(&entry.path(), &format!("{rel}/"), out);
                } else {
                    out.insert(rel, std::fs::read(entry.path()).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.path("feeds"), "", &mut out);
        out
    }

    /// Every feed file the site should have, relative to the feeds dir.
    pub fn feed_files(&self, themes: &[&str]) -> Vec<String> {
        let mut files = vec!["rss.xml".to_owned(), "atom.xml".into(), "feed.json".into()];
        for t in themes {
            for f in ["rss.xml", "atom.xml", "feed.json"] {
                files.push(format!("themes/{t}/{f}"));
            }
        }
        files
    }
}

/// Parses feed files with Python's feedparser (through `tests/feedcheck.py`)
/// and returns its report, or `None` when feedparser is not installed and
/// this is not CI. Under `CI=true` a missing feedparser fails the test.
pub fn feedparser(paths: &[PathBuf]) -> Option<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/feedcheck.py");
    let python = std::env::var("TIDINGS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import feedparser"])
        .output();
    let available = probe.as_ref().is_ok_and(|o| o.status.success());
    if !available {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "Python's feedparser is required under CI=true: run scripts/test.sh, which installs it"
            );
        }
        eprintln!(
            "SKIPPED: Python's feedparser is not installed (pip install feedparser, or run scripts/test.sh)"
        );
        return None;
    }
    let out = Command::new(&python)
        .arg(script)
        .args(paths)
        .output()
        .expect("run feedcheck.py");
    assert!(
        out.status.success(),
        "feedcheck.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("feedcheck.py prints JSON"))
}
