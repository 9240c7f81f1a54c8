//! The shape stays: every module of `src/` is in ARCHITECTURE.md's code
//! map, and none imports a module of its own layer or of one above it.
//! The order is read from the map's `layers` block, so the map and this
//! test cannot drift apart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, top first, as module names (`commands`, `web`, `main`).
fn layers(map: &str) -> Vec<Vec<String>> {
    let block = map
        .split("```layers\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("ARCHITECTURE.md has a ```layers block");
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_whitespace()
                .map(|m| m.trim_end_matches('/').trim_end_matches(".rs").to_owned())
                .collect()
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments and its unit tests.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `code` names through `crate::` or `tidings::`,
/// also inside a group: `crate::{a, b::c}`.
fn imports(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for prefix in ["crate::", "tidings::"] {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &code[at + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    found.push(ident(item.trim()));
                }
            } else {
                found.push(ident(rest));
            }
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

fn ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn no_module_imports_its_own_layer_or_one_above() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let layers = layers(&map);
    let layer_of: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.iter().map(move |m| (m.as_str(), i)))
        .collect();
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        // The crate root declares every module; the fixtures serve tests.
        if module == "lib" || module == "fixtures" {
            continue;
        }
        let Some(&here) = layer_of.get(module.as_str()) else {
            wrong.push(format!(
                "src/{}: the module `{module}` is not in ARCHITECTURE.md's layers",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for import in imports(&code(&text)) {
            if import == module {
                continue;
            }
            let Some(&there) = layer_of.get(import.as_str()) else {
                // A function of the crate root, such as on_all_cores.
                continue;
            };
            if there <= here {
                wrong.push(format!(
                    "src/{} imports `{import}`, which is {} in ARCHITECTURE.md's layers",
                    rel.display(),
                    if there == here {
                        "on its own layer"
                    } else {
                        "above it"
                    }
                ));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_what_it_must() {
    let code = code(
        "use crate::{store::Store, model};\n// use crate::web;\nlet x = tidings::digest::email::f();\nfoo::crate::x",
    );
    assert_eq!(imports(&code), ["store", "model", "digest"]);
    let layers = layers("x\n```layers\nmain.rs commands/\nweb/\n```\n");
    assert_eq!(layers, [vec!["main", "commands"], vec!["web"]]);
}
