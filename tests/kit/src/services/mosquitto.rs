//! A real MQTT broker: Debian's mosquitto on two free loopback ports, one
//! plain and one TLS (certificate from [`TestCa`]), both requiring a
//! username and password; and subscriptions with Debian's `mosquitto_sub`,
//! so what a test checks was received by an independent client. Stopped on
//! drop.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::tls::TestCa;
use crate::{ports, wait};

/// A running mosquitto.
pub struct Mosquitto {
    /// Plain MQTT port on 127.0.0.1.
    pub port: u16,
    /// MQTT over TLS port on 127.0.0.1.
    pub tls_port: u16,
    /// The one user.
    pub user: String,
    /// Its password.
    pub password: String,
    /// The CA that signed the broker's certificate.
    pub ca: TestCa,
    child: Child,
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|error| {
        panic!("cannot run {what} (apt-get install mosquitto mosquitto-clients): {error}")
    });
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Mosquitto {
    /// Starts a broker for `user`/`password`.
    pub fn start(user: &str, password: &str) -> Self {
        let ca = TestCa::new();
        let dir = ca.dir.path();
        let passwords = dir.join("passwd");
        run(
            Command::new("mosquitto_passwd")
                .args(["-c", "-b"])
                .arg(&passwords)
                .args([user, password]),
            "mosquitto_passwd",
        );
        let (port, tls_port) = (ports::free_port(), ports::free_port());
        let config = format!(
            "user root\npersistence false\nper_listener_settings false\nallow_anonymous false\npassword_file {passwords}\nlog_dest stderr\nlog_type error\nlog_type warning\n\nlistener {port} 127.0.0.1\n\nlistener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n",
            passwords = passwords.display(),
            ca = ca.ca().display(),
            cert = ca.cert().display(),
            key = ca.key().display(),
        );
        let config_path = dir.join("mosquitto.conf");
        std::fs::write(&config_path, config).expect("write mosquitto.conf");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start mosquitto (apt-get install mosquitto): {error}")
            });
        let broker = Self {
            port,
            tls_port,
            user: user.into(),
            password: password.into(),
            ca,
            child,
        };
        // Both listeners open together; probing the TLS one would make mosquitto log a TLS error.
        wait::blocking_until(Duration::from_secs(10), "mosquitto to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        broker
    }

    /// Subscribes to `filter` over TLS with `mosquitto_sub` and waits until
    /// the subscription is in place (a probe message came back).
    pub fn subscribe(&self, filter: &str) -> Subscription {
        let mut child = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.tls_port.to_string(),
                "--cafile",
            ])
            .arg(self.ca.ca())
            .args(["-u", &self.user, "-P", &self.password, "-q", "1"])
            .args(["-t", filter, "-t", "crowsnest-test-probe"])
            .args(["-F", "%r %q %t %p"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start mosquitto_sub (apt-get install mosquitto-clients): {error}")
            });
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(stdout) = child.stdout.take() {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            });
        }
        let subscription = Subscription { child, lines };
        wait::blocking_until(
            Duration::from_secs(10),
            "the subscription to be in place",
            || {
                self.publish_plain("crowsnest-test-probe", "probe");
                std::thread::sleep(Duration::from_millis(100));
                subscription
                    .raw()
                    .iter()
                    .any(|line| line.contains("crowsnest-test-probe"))
            },
        );
        subscription
    }

    /// Publishes `payload` to `topic` with `mosquitto_pub` (plain port).
    pub fn publish_plain(&self, topic: &str, payload: &str) {
        run(
            Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args([
                    "-u",
                    &self.user,
                    "-P",
                    &self.password,
                    "-t",
                    topic,
                    "-m",
                    payload,
                ]),
            "mosquitto_pub",
        );
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message a subscriber received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttMessage {
    /// Topic.
    pub topic: String,
    /// Payload, as text.
    pub payload: String,
    /// The broker delivered it as a retained message.
    pub retained: bool,
    /// The QoS it was delivered with.
    pub qos: u8,
}

/// A running `mosquitto_sub`; killed on drop.
pub struct Subscription {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Subscription {
    fn raw(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The messages received so far (the probe left out).
    pub fn messages(&self) -> Vec<MqttMessage> {
        self.raw()
            .iter()
            .filter_map(|line| {
                let mut parts = line.splitn(4, ' ');
                let retained = parts.next()? == "1";
                let qos = parts.next()?.parse().ok()?;
                let topic = parts.next()?.to_string();
                let payload = parts.next().unwrap_or_default().to_string();
                (topic != "crowsnest-test-probe").then_some(MqttMessage {
                    topic,
                    payload,
                    retained,
                    qos,
                })
            })
            .collect()
    }

    /// Waits until at least `count` messages arrived (at most `timeout`).
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<MqttMessage> {
        wait::blocking_until(timeout, "MQTT messages", || self.messages().len() >= count);
        self.messages()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
