//! Image pull secrets (`kubernetes.io/dockerconfigjson`, and the older
//! `kubernetes.io/dockercfg`) read as registry credentials: the same
//! `auths` map as Docker's `config.json`, keyed by registry.

use std::collections::BTreeMap;

pub use crowsnest_oci::docker_config::registry_host;
use crowsnest_oci::docker_config::{AuthEntry, DockerConfigFile, StoredLogin};
pub use crowsnest_oci::Auth as PullCredential;

/// Credentials per registry host (`ghcr.io`, `127.0.0.1:5000`; Docker Hub
/// is `docker.io`).
pub type PullCredentials = BTreeMap<String, PullCredential>;

/// Secret type of a `.dockerconfigjson` secret.
pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
/// Secret type of a legacy `.dockercfg` secret.
pub const DOCKER_CFG: &str = "kubernetes.io/dockercfg";

/// The credentials of a pull secret of `secret_type` whose data holds
/// `data` (the decoded bytes of `.dockerconfigjson` or `.dockercfg`).
/// An unreadable secret is an error naming what is wrong; entries without
/// usable credentials are skipped.
pub fn parse(secret_type: &str, data: &[u8]) -> Result<PullCredentials, String> {
    let auths: BTreeMap<String, AuthEntry> = match secret_type {
        DOCKER_CONFIG_JSON => {
            DockerConfigFile::parse(data)
                .map_err(|err| format!("`.dockerconfigjson` is {err}"))?
                .auths
        }
        DOCKER_CFG => serde_json::from_slice(data)
            .map_err(|err| format!("`.dockercfg` is not a map of registries: {err}"))?,
        other => return Err(format!("type `{other}` is not an image pull secret")),
    };
    let mut credentials = PullCredentials::new();
    for (registry, entry) in auths {
        // An `identitytoken` alone is an OAuth refresh token only some
        // registries exchange; it cannot answer a Basic challenge.
        let login = entry
            .login()
            .map_err(|why| format!("`{registry}`: {why}"))?;
        if let Some(StoredLogin::Password(auth)) = login {
            credentials.insert(registry_host(&registry), auth);
        }
    }
    Ok(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_secret_formats() {
        let json = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"YWxpY2U6czNjcjN0"},
            "127.0.0.1:5000":{"username":"bob","password":"pw"},"empty.example":{}}}"#;
        let credentials = parse(DOCKER_CONFIG_JSON, json).unwrap();
        assert_eq!(
            credentials.get("docker.io"),
            Some(&PullCredential::Basic {
                username: "alice".into(),
                password: "s3cr3t".into()
            })
        );
        assert!(
            matches!(credentials.get("127.0.0.1:5000"), Some(PullCredential::Basic { username, .. }) if username == "bob")
        );
        assert!(!credentials.contains_key("empty.example"));
        let legacy = parse(DOCKER_CFG, br#"{"quay.io":{"auth":"dTpw"}}"#).unwrap();
        assert!(legacy.contains_key("quay.io"));
    }

    #[test]
    fn bad_secrets_say_what_is_wrong() {
        assert!(parse(DOCKER_CONFIG_JSON, b"nope")
            .unwrap_err()
            .contains(".dockerconfigjson"));
        let bad_auth = parse(DOCKER_CONFIG_JSON, br#"{"auths":{"r.io":{"auth":"!!"}}}"#);
        assert!(bad_auth.unwrap_err().contains("r.io"));
        assert!(parse("Opaque", b"{}").unwrap_err().contains("Opaque"));
    }
}
