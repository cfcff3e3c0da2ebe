//! The services triggers deliver to, on loopback.
//!
//! - Real servers where Debian packages one: [`mosquitto`] (MQTT, TLS and
//!   password auth) and [`smtp`] (python3-aiosmtpd with STARTTLS or TLS and
//!   AUTH), each started on free ports with a certificate from [`tls`] and
//!   stopped on drop.
//! - Emulators of the chat and push services ([`emulator`]): each follows
//!   the service's documented API — it checks method, path, headers and body
//!   shape, and answers as the service does, its error, failure and
//!   rate-limit answers included — and records what it received:
//!   [`ntfy`], [`gotify`], [`slack`], [`discord`], [`teams`], [`telegram`],
//!   [`pushover`], [`matrix`], [`googlechat`], [`mattermost`],
//!   [`rocketchat`], [`apprise`].
//! - Emulators of cloud registries' token APIs, in front of the real
//!   distribution registry: [`ecr`] (SigV4-signed `GetAuthorizationToken`),
//!   [`google`] (RS256 JWT-bearer exchange for service accounts), [`azure`]
//!   (AAD client credentials, then ACR's `/oauth2/exchange`), [`tencent`]
//!   (TC3-HMAC-SHA256-signed `CreateInstanceToken`), [`aliyun`] (RPC-signed
//!   `GetAuthorizationToken`).
//! - [`kubernetes`]: an emulation of the Kubernetes API server's list/watch
//!   protocol (resourceVersion, watch events, bookmarks, `410 Gone`), for
//!   the Kubernetes watcher; no real API server can run on the test machines.
//! - [`logs`]: every log line of the test process, to check that no secret
//!   is ever written.

pub mod aliyun;
pub mod apprise;
pub mod azure;
pub mod discord;
pub mod ecr;
pub mod emulator;
pub mod google;
pub mod googlechat;
pub mod gotify;
pub mod kubernetes;
pub mod logs;
pub mod matrix;
pub mod mattermost;
pub mod mosquitto;
pub mod ntfy;
pub mod pushover;
pub mod rocketchat;
pub mod slack;
pub mod smtp;
pub mod teams;
pub mod telegram;
pub mod tencent;
pub mod tls;

pub use emulator::{Answer, Emulator, Fault, Received, Service};
