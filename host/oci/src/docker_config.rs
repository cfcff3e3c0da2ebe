//! Docker's client configuration (`~/.docker/config.json`, and the same
//! `auths` map inside Kubernetes image pull secrets): which credentials the
//! Docker CLI would use for a registry, and the answer of a credential
//! helper (`docker-credential-NAME get`). Parsing only; running a helper is
//! the host's business.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use crate::Auth;

/// The `auths` key Docker writes for Docker Hub.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// The user name a credential helper answers when `Secret` is an identity
/// token rather than a password.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

/// The parts of `config.json` that say how to log in to registries.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DockerConfigFile {
    /// Stored logins, keyed by registry (host, `host:port`, or a URL).
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
    /// A credential helper per registry host (`ghcr.io` -> `gh`).
    #[serde(default, rename = "credHelpers")]
    pub cred_helpers: BTreeMap<String, String>,
    /// The helper holding every other registry's login (`desktop`, `pass`).
    #[serde(default, rename = "credsStore")]
    pub creds_store: Option<String>,
}

/// One `auths` entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthEntry {
    /// User name, when stored apart.
    pub username: Option<String>,
    /// Password, when stored apart.
    pub password: Option<String>,
    /// base64 `user:password`.
    pub auth: Option<String>,
    /// An OAuth refresh token (`docker login` against some registries).
    pub identitytoken: Option<String>,
}

/// What an `auths` entry or a helper gives for a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredLogin {
    /// A user and password (or access token), usable as Basic credentials.
    Password(Auth),
    /// Only an identity token (an OAuth refresh token).
    IdentityToken,
}

impl AuthEntry {
    /// The login this entry holds; `None` when it holds nothing (Docker
    /// writes `{}` entries for hosts whose login lives in a helper).
    pub fn login(&self) -> Result<Option<StoredLogin>, String> {
        if let (Some(username), Some(password)) = (&self.username, &self.password) {
            if !username.is_empty() {
                return Ok(Some(basic(username, password)));
            }
        }
        if let Some(encoded) = self.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|err| format!("`auth` is not base64: {err}"))?;
            let text = String::from_utf8(decoded).map_err(|_| "`auth` is not UTF-8".to_string())?;
            let (username, password) = text
                .split_once(':')
                .ok_or_else(|| "`auth` is not `user:password`".to_string())?;
            if !username.is_empty() {
                return Ok(Some(basic(username, password)));
            }
        }
        if self.identitytoken.as_deref().is_some_and(|t| !t.is_empty()) {
            return Ok(Some(StoredLogin::IdentityToken));
        }
        Ok(None)
    }
}

fn basic(username: &str, password: &str) -> StoredLogin {
    StoredLogin::Password(Auth::Basic {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// What `docker-credential-NAME get` prints on success.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HelperAnswer {
    /// The server the login is for.
    #[serde(rename = "ServerURL", default)]
    pub server_url: String,
    /// User name, or [`IDENTITY_TOKEN_USER`].
    pub username: String,
    /// Password, access token or identity token.
    pub secret: String,
}

impl HelperAnswer {
    /// The login this answer gives.
    pub fn login(&self) -> StoredLogin {
        if self.username == IDENTITY_TOKEN_USER {
            StoredLogin::IdentityToken
        } else {
            basic(&self.username, &self.secret)
        }
    }
}

impl DockerConfigFile {
    /// Parses the text of a `config.json`.
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(text).map_err(|err| format!("not a Docker config.json: {err}"))
    }

    /// The `auths` entry for registry `domain` (as an image names it;
    /// Docker Hub is `docker.io`), with the key it was found under.
    pub fn auth_entry(&self, domain: &str) -> Option<(&str, &AuthEntry)> {
        let wanted = registry_host(domain);
        self.auths
            .iter()
            .find(|(key, _)| registry_host(key) == wanted)
            .map(|(key, entry)| (key.as_str(), entry))
    }

    /// The helper serving `domain` (its `credHelpers` entry, else
    /// `credsStore`), with the server URL to ask it for.
    pub fn helper_for(&self, domain: &str) -> Option<(&str, String)> {
        let wanted = registry_host(domain);
        let server_url = if wanted == "docker.io" {
            DOCKER_HUB_AUTH_KEY.to_owned()
        } else {
            wanted.clone()
        };
        self.cred_helpers
            .iter()
            .find(|(key, _)| registry_host(key) == wanted)
            .map(|(key, helper)| (helper.as_str(), key.clone()))
            .or_else(|| {
                self.creds_store
                    .as_deref()
                    .filter(|store| !store.is_empty())
                    .map(|store| (store, server_url))
            })
    }
}

/// The registry host of an `auths` key or an image domain, which may be a
/// bare host, a URL (`https://index.docker.io/v1/`) or a host with a path;
/// Docker Hub's names are all `docker.io`.
pub fn registry_host(key: &str) -> String {
    let without_scheme = key.split_once("://").map_or(key, |(_, rest)| rest);
    let host = without_scheme.split('/').next().unwrap_or(without_scheme);
    match host.to_ascii_lowercase().as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" | "docker.io" => {
            "docker.io".to_owned()
        }
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{
        "auths": {
            "https://index.docker.io/v1/": {"auth": "YWxpY2U6czNjcjN0"},
            "http://127.0.0.1:5000": {"username": "bob", "password": "pw"},
            "ghcr.io": {},
            "quay.io": {"identitytoken": "refresh"},
            "bad.example": {"auth": "!!"}
        },
        "credHelpers": {"ghcr.io": "gh", "https://Registry.Example/v2/": "ex"},
        "credsStore": "desktop"
    }"#;

    fn config() -> DockerConfigFile {
        DockerConfigFile::parse(CONFIG.as_bytes()).unwrap()
    }

    #[test]
    fn auths_match_by_host_whatever_the_key_shape() {
        let config = config();
        let (key, hub) = config.auth_entry("docker.io").unwrap();
        assert_eq!(key, DOCKER_HUB_AUTH_KEY);
        assert_eq!(hub.login().unwrap(), Some(basic("alice", "s3cr3t")));
        let (_, local) = config.auth_entry("127.0.0.1:5000").unwrap();
        assert_eq!(local.login().unwrap(), Some(basic("bob", "pw")));
        assert!(config.auth_entry("127.0.0.1:5001").is_none());
        assert_eq!(config.auth_entry("ghcr.io").unwrap().1.login(), Ok(None));
        assert_eq!(
            config.auth_entry("quay.io").unwrap().1.login(),
            Ok(Some(StoredLogin::IdentityToken))
        );
        assert!(config
            .auth_entry("bad.example")
            .unwrap()
            .1
            .login()
            .unwrap_err()
            .contains("base64"));
    }

    #[test]
    fn helpers_per_host_then_the_store() {
        let config = config();
        assert_eq!(config.helper_for("ghcr.io"), Some(("gh", "ghcr.io".into())));
        assert_eq!(
            config.helper_for("registry.example"),
            Some(("ex", "https://Registry.Example/v2/".into()))
        );
        assert_eq!(
            config.helper_for("docker.io"),
            Some(("desktop", DOCKER_HUB_AUTH_KEY.into()))
        );
        assert_eq!(
            config.helper_for("127.0.0.1:5000"),
            Some(("desktop", "127.0.0.1:5000".into()))
        );
        let plain = DockerConfigFile::parse(b"{}").unwrap();
        assert_eq!(plain.helper_for("docker.io"), None);
    }

    #[test]
    fn helper_answers_and_identity_tokens() {
        let answer: HelperAnswer = serde_json::from_str(
            r#"{"ServerURL":"ghcr.io","Username":"octocat","Secret":"ghp_x"}"#,
        )
        .unwrap();
        assert_eq!(answer.login(), basic("octocat", "ghp_x"));
        let token: HelperAnswer =
            serde_json::from_str(r#"{"ServerURL":"r","Username":"<token>","Secret":"t"}"#).unwrap();
        assert_eq!(token.login(), StoredLogin::IdentityToken);
        assert!(DockerConfigFile::parse(b"[1]")
            .unwrap_err()
            .contains("config.json"));
    }
}
