//! What a report of failed delivery says about a subscriber's address: the
//! kinds of bounce event, stored through one mapping.

use std::fmt;
use std::str::FromStr;

/// The kind of a bounce event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BounceKind {
    /// The address does not take mail, for good (a 5.x.x status).
    Hard,
    /// Delivery failed for now or is delayed (a 4.x.x status); counted.
    Soft,
    /// The reader reported the digest as spam (a feedback report).
    Complaint,
}

impl BounceKind {
    pub const ALL: [BounceKind; 3] = [BounceKind::Hard, BounceKind::Soft, BounceKind::Complaint];

    pub fn as_str(self) -> &'static str {
        match self {
            BounceKind::Hard => "hard",
            BounceKind::Soft => "soft",
            BounceKind::Complaint => "complaint",
        }
    }
}

impl FromStr for BounceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<BounceKind, String> {
        BounceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown bounce kind `{s}`: expected hard, soft or complaint"))
    }
}

impl fmt::Display for BounceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
