//! `tidings init DIR`: a new site that builds as it is, with a commented
//! config.toml, one example story and the templates to edit.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

const CONFIG: &str = include_str!("init/config.toml");
const STORY: &str = include_str!("init/welcome.md");

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
    for name in crate::templates::EDITABLE {
        let path = templates.join(name);
        if !path.exists() {
            let text = crate::templates::built_in(name).expect("an editable template is built in");
            fs_err::write(&path, text)?;
            written.push(path);
        }
    }
    Ok(written)
}
