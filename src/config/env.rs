//! The environment variables tidings reads, read once at start with their
//! errors: a value that is set but cannot be used stops the program with a
//! message naming the variable, instead of being silently ignored.

use std::fmt;
use std::time::Duration;

/// A secret from the environment; never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The variables, read and checked.
#[derive(Debug, Clone)]
pub struct Environment {
    /// `TIDINGS_SECRET`: the key that signs links, when the operator gives
    /// it (else one is kept in the store).
    pub secret: Option<Secret>,
    /// `TIDINGS_SECRET_PREVIOUS`: keys given in `TIDINGS_SECRET` before a
    /// `tidings key rotate`, separated by spaces, so their links still work.
    pub previous_secrets: Vec<Secret>,
    /// `TIDINGS_SHUTDOWN_SECONDS`: how long a stop waits for work in flight.
    pub shutdown: Duration,
    /// `TIDINGS_LEASE_SECONDS`: how long a claimed delivery row is held.
    pub lease: Duration,
    /// `TIDINGS_BACKOFF_SECONDS`: the first wait after a temporary failure.
    pub backoff: Duration,
}

/// The shortest secret accepted, in characters.
pub const MIN_SECRET: usize = 32;

impl Default for Environment {
    fn default() -> Self {
        Environment {
            secret: None,
            previous_secrets: Vec::new(),
            shutdown: Duration::from_secs(30),
            lease: Duration::from_secs(60),
            backoff: Duration::from_secs(30),
        }
    }
}

impl Environment {
    /// Reads the process's environment. Every problem is reported, each
    /// naming its variable.
    pub fn from_process() -> Result<Environment, Vec<String>> {
        Environment::from_vars(|name| std::env::var_os(name))
    }

    /// Reads the variables through `get` (the process's environment, or a
    /// test's).
    pub fn from_vars(
        get: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Environment, Vec<String>> {
        let mut problems = Vec::new();
        let mut text = |name: &str| -> Option<String> {
            let value = get(name)?;
            match value.into_string() {
                Ok(s) if s.trim().is_empty() => None,
                Ok(s) => Some(s),
                Err(_) => {
                    problems.push(format!("{name}: the value is not valid UTF-8"));
                    None
                }
            }
        };
        let secret = text("TIDINGS_SECRET");
        let previous = text("TIDINGS_SECRET_PREVIOUS");
        let shutdown = text("TIDINGS_SHUTDOWN_SECONDS");
        let lease = text("TIDINGS_LEASE_SECONDS");
        let backoff = text("TIDINGS_BACKOFF_SECONDS");

        let d = Environment::default();
        let secret = secret.and_then(|s| {
            check_secret("TIDINGS_SECRET", &s)
                .map_err(|e| problems.push(e))
                .ok()
        });
        let mut previous_secrets = Vec::new();
        for (n, s) in previous
            .iter()
            .flat_map(|p| p.split_whitespace())
            .enumerate()
        {
            match check_secret("TIDINGS_SECRET_PREVIOUS", s) {
                Ok(s) => previous_secrets.push(s),
                Err(e) => problems.push(format!("{e} (the key number {} of the list)", n + 1)),
            }
        }
        let mut seconds = |name: &str, value: Option<String>, least: u64, default: Duration| {
            let Some(value) = value else {
                return default;
            };
            match value.trim().parse::<u64>() {
                Ok(n) if n >= least => Duration::from_secs(n),
                Ok(n) => {
                    problems.push(format!("{name}: {n} is too small: use at least {least}"));
                    default
                }
                Err(_) => {
                    problems.push(format!(
                        "{name}: `{}` is not a whole number of seconds (such as {})",
                        value.trim().escape_debug(),
                        default.as_secs()
                    ));
                    default
                }
            }
        };
        let shutdown = seconds("TIDINGS_SHUTDOWN_SECONDS", shutdown, 0, d.shutdown);
        let lease = seconds("TIDINGS_LEASE_SECONDS", lease, 1, d.lease);
        let backoff = seconds("TIDINGS_BACKOFF_SECONDS", backoff, 0, d.backoff);
        if problems.is_empty() {
            Ok(Environment {
                secret,
                previous_secrets,
                shutdown,
                lease,
                backoff,
            })
        } else {
            Err(problems)
        }
    }
}

fn check_secret(name: &str, value: &str) -> Result<Secret, String> {
    let length = value.chars().count();
    if length < MIN_SECRET {
        return Err(format!(
            "{name} is too short ({length} characters): use at least {MIN_SECRET} random \
             characters, such as the output of `openssl rand -base64 33`"
        ));
    }
    Ok(Secret(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Environment, Vec<String>> {
        Environment::from_vars(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).into())
        })
    }

    #[test]
    fn unset_and_empty_variables_take_the_defaults() {
        let env = read(&[("TIDINGS_SECRET", " ")]).unwrap();
        assert!(env.secret.is_none());
        assert_eq!(env.lease, Duration::from_secs(60));
        assert_eq!(env.shutdown, Duration::from_secs(30));
    }

    #[test]
    fn every_bad_value_is_named() {
        let problems = read(&[
            ("TIDINGS_SECRET", "short"),
            ("TIDINGS_SECRET_PREVIOUS", "also-short"),
            ("TIDINGS_SHUTDOWN_SECONDS", "soon"),
            ("TIDINGS_LEASE_SECONDS", "0"),
            ("TIDINGS_BACKOFF_SECONDS", "-1"),
        ])
        .unwrap_err();
        let all = problems.join("\n");
        for name in [
            "TIDINGS_SECRET is too short (5",
            "TIDINGS_SECRET_PREVIOUS is too short",
            "TIDINGS_SHUTDOWN_SECONDS: `soon`",
            "TIDINGS_LEASE_SECONDS: 0 is too small",
            "TIDINGS_BACKOFF_SECONDS: `-1`",
        ] {
            assert!(all.contains(name), "{name} in {all}");
        }
    }

    #[test]
    fn good_values_are_read() {
        let key = "k".repeat(40);
        let old = format!("{} {}", "a".repeat(32), "b".repeat(33));
        let env = read(&[
            ("TIDINGS_SECRET", &key),
            ("TIDINGS_SECRET_PREVIOUS", &old),
            ("TIDINGS_LEASE_SECONDS", "3"),
        ])
        .unwrap();
        assert_eq!(env.secret.unwrap().as_bytes(), key.as_bytes());
        assert_eq!(env.previous_secrets.len(), 2);
        assert_eq!(env.lease, Duration::from_secs(3));
        assert!(!format!("{:?}", read(&[("TIDINGS_SECRET", &key)])).contains(&key));
    }
}
