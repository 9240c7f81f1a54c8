//! `tidings init DIR`: a new site that builds as it is, with a commented
//! config.toml, one example story and the templates to edit.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

const CONFIG: &str = include_str!("init/config.toml");
const STORY: &str = include_str!("init/welcome.md");

/// The templates a site may edit, as tidings ships them.
const TEMPLATES: &[(&str, &str)] = &[
    ("index.html", include_str!("../templates/index.html")),
    ("digest.html", include_str!("../templates/digest.html")),
    ("digest.txt", include_str!("../templates/digest.txt")),
    ("confirm.html", include_str!("../templates/confirm.html")),
    ("confirm.txt", include_str!("../templates/confirm.txt")),
];

/// Creates the site in `dir`; refuses to overwrite an existing config.
/// Returns the files it wrote.
pub fn init(dir: &Path) -> Result<Vec<PathBuf>> {
    let config = dir.join("config.toml");
    if config.exists() {
        bail!(
            "{} already exists; init never overwrites a site (choose an empty folder)",
            config.display()
        );
    }
    let story = dir.join("content/stories/welcome.md");
    fs_err::create_dir_all(story.parent().expect("has a parent"))?;
    fs_err::write(&config, CONFIG)?;
    let mut written = vec![config];
    if !story.exists() {
        fs_err::write(&story, STORY)?;
        written.push(story);
    }
    let templates = dir.join("templates");
    fs_err::create_dir_all(&templates)?;
    for (name, text) in TEMPLATES {
        let path = templates.join(name);
        if !path.exists() {
            fs_err::write(&path, text)?;
            written.push(path);
        }
    }
    Ok(written)
}
