//! A Kubernetes watcher as configured: `[watchers.NAME]` with
//! `kind = "kubernetes"` (the `kind` key itself is read by the config crate).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One Kubernetes cluster to watch, as written in the configuration.
///
/// Neither `kubeconfig` nor `context`: the in-cluster service account
/// (`KUBERNETES_SERVICE_HOST` and the mounted token) is used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesWatcherConfig {
    /// Path of a kubeconfig file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig to use (default: its `current-context`);
    /// without `kubeconfig`, of `$KUBECONFIG` or `~/.kube/config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Namespaces whose Pods are watched (empty: every namespace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Label selector the Pods must match, e.g. `app=web,tier!=cache`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Watch containers whose Pod carries no `crowsnest.watch` label.
    #[serde(default = "default_true")]
    pub watch_by_default: bool,
    /// Cron expression for periodic scans of this watcher (used by the daemon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Random delay, in seconds, added before each scheduled scan (used by the daemon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<u64>,
}

fn default_true() -> bool {
    true
}

impl KubernetesWatcherConfig {
    /// Checks what serde cannot: the offending key and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for namespace in &self.namespaces {
            if !is_dns_label(namespace) {
                return Err((
                    "namespaces",
                    format!("`{namespace}` is not a namespace name (lowercase letters, digits and `-`, at most 63)"),
                ));
            }
        }
        if let Some(selector) = &self.label_selector {
            if selector.trim().is_empty() {
                return Err((
                    "label_selector",
                    "is empty (remove it to watch every Pod)".into(),
                ));
            }
        }
        if self.context.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err((
                "context",
                "is empty (remove it to use the current context)".into(),
            ));
        }
        Ok(())
    }
}

/// Whether `name` is an RFC 1123 label, as namespace names are.
fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let config: KubernetesWatcherConfig =
            toml::from_str("namespaces = [\"apps\"]\nlabel_selector = \"app=web\"").unwrap();
        assert!(config.watch_by_default);
        assert_eq!(config.namespaces, ["apps"]);
        assert!(config.validate().is_ok());
        assert!(toml::from_str::<KubernetesWatcherConfig>("socket = \"/x\"").is_err());
    }

    #[test]
    fn bad_values_name_their_key() {
        let bad_namespace = KubernetesWatcherConfig {
            namespaces: vec!["Apps_1".into()],
            ..Default::default()
        };
        assert_eq!(bad_namespace.validate().unwrap_err().0, "namespaces");
        let empty_selector = KubernetesWatcherConfig {
            label_selector: Some(" ".into()),
            ..Default::default()
        };
        assert_eq!(empty_selector.validate().unwrap_err().0, "label_selector");
    }
}
