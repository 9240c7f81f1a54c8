//! `tidings init DIR`: a new site (see `tidings::init`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

pub fn run(dir: &Path) -> Result<ExitCode> {
    let files = tidings::init::init(dir)?;
    for f in &files {
        println!("created {}", f.display());
    }
    println!(
        "next: tidings --config {} build",
        dir.join("config.toml").display()
    );
    Ok(ExitCode::SUCCESS)
}
