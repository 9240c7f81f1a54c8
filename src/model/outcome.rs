//! How things ended, as the store keeps them: a delivery's state in the
//! ledger and a job's last result. Each enum is the one mapping between
//! the program's values and the words stored (and shown in `status` and
//! `/metrics`).

use std::fmt;
use std::str::FromStr;

/// Where one delivery of an edition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Waiting to be claimed (or for its retry time).
    Pending,
    /// Claimed by a worker, under a lease.
    Sending,
    Sent,
    /// Given up: refused for good, or too many temporary failures.
    Failed,
    /// Not sent on purpose: the subscriber left, or nothing new in their
    /// themes.
    Skipped,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 5] = [
        DeliveryState::Pending,
        DeliveryState::Sending,
        DeliveryState::Sent,
        DeliveryState::Failed,
        DeliveryState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
            DeliveryState::Skipped => "skipped",
        }
    }
}

/// How one run of a scheduled job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobOutcome {
    Ok,
    Failed,
    /// A tick passed over without a run (`[schedule] on_missed = "skip"`).
    Skipped,
}

impl JobOutcome {
    pub const ALL: [JobOutcome; 3] = [JobOutcome::Ok, JobOutcome::Failed, JobOutcome::Skipped];

    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Ok => "ok",
            JobOutcome::Failed => "failed",
            JobOutcome::Skipped => "skipped",
        }
    }
}

macro_rules! stored_words {
    ($($t:ident),*) => {$(
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<$t, String> {
                $t::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| format!("`{s}` is not a {} the store knows", stringify!($t)))
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

stored_words!(DeliveryState, JobOutcome);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_maps_back() {
        for s in DeliveryState::ALL {
            assert_eq!(s.as_str().parse::<DeliveryState>(), Ok(s));
        }
        for o in JobOutcome::ALL {
            assert_eq!(o.to_string().parse::<JobOutcome>(), Ok(o));
        }
        assert!("done".parse::<JobOutcome>().is_err());
    }
}
