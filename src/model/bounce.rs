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

/// The bounces and complaints that came back about one edition: how many
/// of its readers had each kind of event (a reader counts once per kind).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EditionBounces {
    pub hard: i64,
    pub soft: i64,
    pub complaints: i64,
}

/// Above this share of an edition's sent messages, complaints get a
/// warning: Gmail and Yahoo throttle senders from 0.3%, and ask bulk
/// senders to stay below 0.1%.
pub const COMPLAINT_RATE_WARNING: f64 = 0.001;
/// Above this share, hard bounces get a warning: a list this stale is
/// what mailbox providers read as bought or neglected.
pub const HARD_BOUNCE_RATE_WARNING: f64 = 0.02;

impl EditionBounces {
    /// Each kind as a share of `sent` messages (0 when none were sent).
    pub fn rate(&self, kind: BounceKind, sent: i64) -> f64 {
        let n = match kind {
            BounceKind::Hard => self.hard,
            BounceKind::Soft => self.soft,
            BounceKind::Complaint => self.complaints,
        };
        if sent <= 0 {
            0.0
        } else {
            n as f64 / sent as f64
        }
    }

    /// Whether the rate of `kind` is above its threshold (soft bounces
    /// have none).
    pub fn over(&self, kind: BounceKind, sent: i64) -> bool {
        match kind {
            BounceKind::Hard => self.rate(kind, sent) > HARD_BOUNCE_RATE_WARNING,
            BounceKind::Complaint => self.rate(kind, sent) > COMPLAINT_RATE_WARNING,
            BounceKind::Soft => false,
        }
    }

    /// What is above its threshold, as sentences for a log or a status.
    pub fn warnings(&self, sent: i64) -> Vec<String> {
        let mut out = Vec::new();
        let complaints = self.rate(BounceKind::Complaint, sent);
        if self.over(BounceKind::Complaint, sent) {
            out.push(format!(
                "complaint rate {} ({} of {sent}) is above {}: mailbox providers throttle or \
                 block senders whose readers report them as spam; check who is on the list and \
                 how they signed up",
                percent(complaints),
                self.complaints,
                percent(COMPLAINT_RATE_WARNING)
            ));
        }
        let hard = self.rate(BounceKind::Hard, sent);
        if self.over(BounceKind::Hard, sent) {
            out.push(format!(
                "hard-bounce rate {} ({} of {sent}) is above {}: the list holds many addresses \
                 that do not exist (an old or imported list?)",
                percent(hard),
                self.hard,
                percent(HARD_BOUNCE_RATE_WARNING)
            ));
        }
        out
    }
}

impl fmt::Display for EditionBounces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} hard, {} soft bounces, {} complaints",
            self.hard, self.soft, self.complaints
        )
    }
}

/// `0.0015` as "0.15%".
pub fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p == 0.0 || p >= 10.0 {
        format!("{p:.0}%")
    } else if p >= 1.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.2}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_start_above_the_thresholds() {
        let b = EditionBounces {
            hard: 20,
            soft: 5,
            complaints: 1,
        };
        assert!(
            b.warnings(1000).is_empty(),
            "2% and 0.1% exactly: no warning"
        );
        let w = b.warnings(999);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("complaint rate 0.10% (1 of 999)"), "{w:?}");
        assert!(
            w[1].starts_with("hard-bounce rate 2.0% (20 of 999)"),
            "{w:?}"
        );
        assert!(EditionBounces::default().warnings(0).is_empty());
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.0015), "0.15%");
        assert_eq!(percent(0.25), "25%");
    }
}
