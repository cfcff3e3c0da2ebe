//! A real SMTP server: Debian's python3-aiosmtpd (`smtp_server.py` beside
//! this file) on a free loopback port, with STARTTLS (required) or implicit
//! TLS, and AUTH required; every accepted message is kept. Scripted answers
//! (`451 …`, `550 …`) replace the next messages' acceptance. Stopped on drop.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::tls::TestCa;
use crate::ports;

/// How the server secures connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain, then STARTTLS (required before anything else).
    StartTls,
    /// TLS from the first byte.
    Tls,
}

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// `MAIL FROM`.
    pub from: String,
    /// `RCPT TO`s.
    pub to: Vec<String>,
    /// The message as sent (headers and body).
    pub data: String,
    /// The client had authenticated.
    pub authenticated: bool,
    /// The connection was encrypted.
    pub tls: bool,
}

/// A running aiosmtpd.
pub struct SmtpServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The user AUTH accepts.
    pub user: String,
    /// Its password.
    pub password: String,
    /// The CA that signed its certificate.
    pub ca: TestCa,
    mailbox: PathBuf,
    faults: PathBuf,
    child: Child,
}

impl SmtpServer {
    /// Starts a server accepting `user`/`password`, secured as `tls`.
    pub fn start(tls: SmtpTls, user: &str, password: &str) -> Self {
        let ca = TestCa::new();
        let port = ports::free_port();
        let mailbox = ca.dir.path().join("mailbox.jsonl");
        let faults = ca.dir.path().join("faults");
        std::fs::write(&faults, "").expect("faults file");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/services/smtp_server.py");
        let mode = match tls {
            SmtpTls::StartTls => "starttls",
            SmtpTls::Tls => "tls",
        };
        // Debian's interpreter: python3-aiosmtpd is installed for it.
        let mut child = Command::new("/usr/bin/python3")
            // aiosmtpd warns about its own deprecated attributes and about AUTH over implicit TLS.
            .args(["-W", "ignore"])
            .arg(script)
            .args([mode, &port.to_string()])
            .arg(ca.cert())
            .arg(ca.key())
            .args([user, password])
            .arg(&mailbox)
            .arg(&faults)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start aiosmtpd (apt-get install python3-aiosmtpd): {error}")
            });
        let ready = child
            .stdout
            .take()
            .and_then(|stdout| BufReader::new(stdout).lines().next())
            .and_then(Result::ok);
        assert_eq!(ready.as_deref(), Some("ready"), "aiosmtpd did not start");
        Self {
            port,
            user: user.into(),
            password: password.into(),
            ca,
            mailbox,
            faults,
            child,
        }
    }

    /// Answers the next messages with `replies` (e.g. `451 4.3.0 Try again
    /// later`) instead of accepting them, one each.
    pub fn reply_next(&self, replies: &[&str]) {
        let text: String = replies.iter().map(|reply| format!("{reply}\n")).collect();
        std::fs::write(&self.faults, text).expect("write faults");
    }

    /// The messages accepted so far.
    pub fn accepted(&self) -> Vec<Accepted> {
        let text = std::fs::read_to_string(&self.mailbox).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .map(|record| Accepted {
                from: record["from"].as_str().unwrap_or_default().to_string(),
                to: record["to"]
                    .as_array()
                    .map(|to| {
                        to.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
                data: record["data"].as_str().unwrap_or_default().to_string(),
                authenticated: record["authenticated"].as_bool().unwrap_or(false),
                tls: record["tls"].as_bool().unwrap_or(false),
            })
            .collect()
    }

    /// Waits until `count` messages were accepted (at most `timeout`).
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Accepted> {
        crate::wait::blocking_until(timeout, "messages accepted by aiosmtpd", || {
            self.accepted().len() >= count
        });
        self.accepted()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
