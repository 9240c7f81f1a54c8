//! `tidings run` on a fixture site, listening on free loopback ports, and
//! the [`Service`] handle that reads its log and stops it.

use std::process::Command;

use super::site::Site;
use super::wait::wait_until;

/// `tidings run` on a site, listening on a free loopback port; stopped
/// (SIGKILL) when dropped unless [`Service::stop`] ended it first.
pub struct Service {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base: String,
    /// `http://ADDRESS/metrics`, once the service has said it.
    metrics: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Gives a config a free loopback port for the metrics listener when it
/// names none (the default, 127.0.0.1:8081, would be shared by every test
/// running at once), in its `[http]` table if it has one.
pub fn free_metrics_port(config: &str) -> String {
    if config
        .lines()
        .any(|l| l.trim_start().starts_with("metrics_listen"))
    {
        return config.to_owned();
    }
    let line = "metrics_listen = \"127.0.0.1:0\"";
    match config.find("[http]\n") {
        Some(at) => {
            let end = at + "[http]\n".len();
            format!("{}{line}\n{}", &config[..end], &config[end..])
        }
        None => format!("{config}\n[http]\n{line}\n"),
    }
}

impl Site {
    /// Starts `tidings run` with `env` set. A config without `[http]` gets
    /// `listen = "127.0.0.1:0"`; one with `[http]` must say so itself. The
    /// metrics listener is on a free port too (see [`free_metrics_port`]).
    pub fn serve(&self, env: &[(&str, &str)]) -> Service {
        use std::io::{BufRead, BufReader, Read};
        let mut config = std::fs::read_to_string(self.config_path()).unwrap();
        if !config.contains("[http]") {
            config = format!("{config}\n[http]\nlisten = \"127.0.0.1:0\"\n");
        }
        std::fs::write(self.config_path(), free_metrics_port(&config)).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
            .arg("--config")
            .arg(self.config_path())
            .arg("run")
            .current_dir(self.root())
            .env_remove("TIDINGS_CONFIG")
            .env("TIDINGS_LOG", "info,tidings=debug")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start tidings run");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        let Some(base) = line.trim().strip_prefix("listening on ") else {
            let _ = child.wait();
            std::thread::sleep(std::time::Duration::from_millis(200));
            panic!(
                "tidings run did not start: {line}\n--- stderr\n{}",
                stderr.lock().unwrap()
            );
        };
        let base = base.trim_end_matches('/').to_owned();
        // Keep draining stdout so the service never blocks on a full pipe,
        // noting the metrics line (the second) on the way.
        let metrics = std::sync::Arc::new(std::sync::Mutex::new(None));
        let seen = metrics.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while out.read_line(&mut line).is_ok_and(|n| n > 0) {
                if let Some(url) = line.trim().strip_prefix("metrics on ") {
                    *seen.lock().unwrap() = Some(url.to_owned());
                }
                line.clear();
            }
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        Service {
            child,
            base,
            metrics,
            stderr,
        }
    }
}

impl Service {
    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The `/metrics` URL of the metrics listener, as the service printed
    /// it (waiting up to 30 s for the line).
    pub fn metrics_url(&self) -> String {
        let printed = wait_until(30, || self.metrics.lock().unwrap().is_some());
        assert!(printed, "no `metrics on` line:\n{}", self.log());
        self.metrics.lock().unwrap().clone().unwrap()
    }

    /// The address (`IP:PORT`) the public listener is on.
    pub fn address(&self) -> String {
        self.base.strip_prefix("http://").unwrap().to_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the service logged so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `what` appears in the log (at most `secs` seconds).
    pub fn wait_for_log(&self, what: &str, secs: u64) -> bool {
        wait_until(secs, || self.log().contains(what))
    }

    /// Sends SIGTERM and waits (at most 60 s) for the exit code.
    pub fn stop(mut self) -> (i32, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(std::time::Duration::from_millis(100));
                return (status.code().unwrap_or(-1), self.log());
            }
            assert!(
                std::time::Instant::now() < end,
                "tidings run did not stop within 60 s of SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A loopback port free at the moment of asking (for configs that must
/// name their port up front, such as `[http] public_url` in links).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
