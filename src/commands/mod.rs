//! Command handlers of the binary, one module per command group. Each
//! parses what clap did not, calls the library, and prints.

pub mod bounces;
pub mod build;
pub mod check;
pub mod db;
pub mod digest;
pub mod init;
pub mod key;
pub mod run;
pub mod status;
pub mod subscribers;

use tidings::model::Problems;

/// Every problem, one per line, to standard error.
pub fn print_problems(problems: &Problems) {
    for p in problems.iter() {
        eprintln!("{p}");
    }
}

/// `1 story`, `2 stories`, `3 themes`.
pub fn plural(n: usize, word: &str) -> String {
    match (n, word.strip_suffix('y')) {
        (1, _) => format!("{n} {word}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {word}s"),
    }
}
