//! `[bounces]`: where reports of failed delivery come back (the VERP
//! envelope sender) and when they stop a subscriber's mail.

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use super::spans::{Checks, Context};

/// `[bounces]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounces {
    /// Default none: the address whose `+`-extensions receive the reports.
    /// When set, each digest's envelope sender (SMTP `MAIL FROM`) becomes
    /// `LOCAL+TOKEN@DOMAIN`, the token naming the edition and the
    /// subscriber, signed with the site's key ring.
    pub return_path: Option<lettre::Address>,
    /// Default 3: soft bounces within `soft_window_days` that stop a
    /// subscriber's mail as a hard bounce does.
    pub soft_limit: u32,
    /// Default 30: the days over which soft bounces are counted.
    pub soft_window_days: u32,
}

impl Default for Bounces {
    fn default() -> Self {
        Bounces {
            return_path: None,
            soft_limit: DEFAULT_SOFT_LIMIT as u32,
            soft_window_days: DEFAULT_SOFT_WINDOW_DAYS as u32,
        }
    }
}

const DEFAULT_SOFT_LIMIT: i64 = 3;
const DEFAULT_SOFT_WINDOW_DAYS: i64 = 30;
/// The longest local part `return_path` may have: the token takes up to
/// 43 of the 64 characters a local part may hold (RFC 5321 4.5.3.1.1),
/// with one more for the `+`.
pub const MAX_RETURN_PATH_LOCAL: usize = 20;

#[derive(Debug, Deserialize)]
pub(super) struct RawBounces {
    return_path: Option<String>,
    #[serde(default = "default_soft_limit")]
    soft_limit: i64,
    #[serde(default = "default_soft_window_days")]
    soft_window_days: i64,
}
pub(super) const BOUNCES_KEYS: &[&str] = &["return_path", "soft_limit", "soft_window_days"];

fn default_soft_limit() -> i64 {
    DEFAULT_SOFT_LIMIT
}
fn default_soft_window_days() -> i64 {
    DEFAULT_SOFT_WINDOW_DAYS
}

/// `[bounces]` checked.
pub(super) fn validate(
    cx: &mut Context,
    raw: RawBounces,
    value: &Spanned<DeValue<'_>>,
) -> Option<Bounces> {
    let mut t = Checks::new(cx, "bounces", value);
    let return_path = t.optional(
        "return_path",
        raw.return_path.as_deref().map(str::trim),
        parse_return_path,
    );
    let soft_limit = t.range("soft_limit", raw.soft_limit, 1, 1000) as u32;
    let soft_window_days = t.range("soft_window_days", raw.soft_window_days, 1, 3650) as u32;
    if !t.ok {
        return None;
    }
    Some(Bounces {
        return_path,
        soft_limit,
        soft_window_days,
    })
}

/// A bare address whose local part leaves room for `+TOKEN`.
pub fn parse_return_path(text: &str) -> Result<lettre::Address, String> {
    let address = text.parse::<lettre::Address>().map_err(|e| {
        format!("`{text}` is not an email address ({e}): expected \"bounces@example.org\"")
    })?;
    let local = address.user();
    if local.contains('+') {
        return Err(format!(
            "`{text}` already has a `+`: give the plain address, such as \"bounces@{}\"; \
             tidings adds `+TOKEN` itself",
            address.domain()
        ));
    }
    if local.starts_with('"') {
        return Err(format!("`{text}`: a quoted local part cannot take a token"));
    }
    if local.len() > MAX_RETURN_PATH_LOCAL {
        return Err(format!(
            "`{text}`: the part before `@` has {} characters, at most {MAX_RETURN_PATH_LOCAL} \
             leave room for the token (a local part holds 64)",
            local.len()
        ));
    }
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_are_plain_short_addresses() {
        assert_eq!(
            parse_return_path("bounces@example.org")
                .unwrap()
                .to_string(),
            "bounces@example.org"
        );
        assert!(
            parse_return_path("bounces")
                .unwrap_err()
                .contains("bounces@example.org")
        );
        assert!(
            parse_return_path("bounces+x@example.org")
                .unwrap_err()
                .contains("`+`")
        );
        assert!(
            parse_return_path("a-very-long-name-for-bounces@example.org")
                .unwrap_err()
                .contains("at most 20")
        );
    }
}
