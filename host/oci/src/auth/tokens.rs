//! Bearer token cache keyed by (realm, service, scope, credential identity),
//! with one fetch at a time per key so that concurrent requests share a token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{Auth, RegistryError};

/// Slots kept before expired ones are pruned.
const PRUNE_THRESHOLD: usize = 1024;

/// What a token is cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey {
    pub realm: String,
    pub service: String,
    pub scope: String,
    pub identity: String,
}

/// A token and when to stop using it.
#[derive(Debug, Clone)]
pub(crate) struct CachedToken {
    pub token: String,
    pub renew_at: Instant,
}

/// One key's cached token; locked while it is being fetched.
pub(crate) type TokenSlot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

/// Tokens by key.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    slots: Mutex<HashMap<TokenKey, TokenSlot>>,
}

impl TokenCache {
    /// The slot for `key`; lock it, use the token if still valid, else fetch and store.
    pub fn slot(&self, key: &TokenKey) -> TokenSlot {
        let Ok(mut slots) = self.slots.lock() else {
            // A poisoned map only loses caching, never correctness.
            return Arc::default();
        };
        if slots.len() > PRUNE_THRESHOLD {
            let now = Instant::now();
            slots.retain(|_, slot| match slot.try_lock() {
                Ok(guard) => guard.as_ref().is_some_and(|cached| cached.renew_at > now),
                Err(_) => true,
            });
        }
        slots.entry(key.clone()).or_default().clone()
    }
}

/// Identifies the credentials in a cache key without keeping the password in clear.
pub(crate) fn credential_identity(auth: &Auth) -> String {
    match auth {
        Auth::Anonymous => "anonymous".to_string(),
        Auth::Basic { username, password } => {
            let mut hasher = Sha256::new();
            hasher.update(username.as_bytes());
            hasher.update([0]);
            hasher.update(password.as_bytes());
            format!("basic:{username}:{}", hex::encode(hasher.finalize()))
        }
        Auth::Bearer(token) => format!("bearer:{}", hex::encode(Sha256::digest(token.as_bytes()))),
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Reads a token server's JSON answer: `token` (or `access_token`) and how long
/// to use it: `expires_in` (or `default_lifetime`) minus a margin of at most half of it.
pub(crate) fn parse_token_response(
    body: &[u8],
    default_lifetime: Duration,
    margin: Duration,
    realm: &str,
) -> Result<(String, Duration), RegistryError> {
    let parsed: TokenResponse = serde_json::from_slice(body).map_err(|error| {
        RegistryError::Protocol(format!(
            "token server {realm} answered invalid JSON: {error}"
        ))
    })?;
    let token = parsed
        .token
        .filter(|token| !token.is_empty())
        .or(parsed.access_token.filter(|token| !token.is_empty()))
        .ok_or_else(|| {
            RegistryError::Protocol(format!(
                "token server {realm} answered neither `token` nor `access_token`"
            ))
        })?;
    let lifetime = parsed
        .expires_in
        .filter(|seconds| *seconds > 0)
        .map(Duration::from_secs)
        .unwrap_or(default_lifetime);
    let usable_for = lifetime.saturating_sub(margin.min(lifetime / 2));
    Ok((token, usable_for))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);
    const MARGIN: Duration = Duration::from_secs(10);

    #[test]
    fn token_or_access_token_and_lifetimes() {
        let (token, usable) =
            parse_token_response(br#"{"token":"t1","expires_in":300}"#, MINUTE, MARGIN, "r")
                .unwrap();
        assert_eq!((token.as_str(), usable), ("t1", Duration::from_secs(290)));
        let (token, usable) =
            parse_token_response(br#"{"access_token":"t2"}"#, MINUTE, MARGIN, "r").unwrap();
        assert_eq!((token.as_str(), usable), ("t2", Duration::from_secs(50)));
        let (token, usable) = parse_token_response(
            br#"{"token":"","access_token":"t3","expires_in":4}"#,
            MINUTE,
            MARGIN,
            "r",
        )
        .unwrap();
        assert_eq!((token.as_str(), usable), ("t3", Duration::from_secs(2)));
        assert!(matches!(
            parse_token_response(br#"{"expires_in":4}"#, MINUTE, MARGIN, "r"),
            Err(RegistryError::Protocol(_))
        ));
        assert!(matches!(
            parse_token_response(b"<html>", MINUTE, MARGIN, "r"),
            Err(RegistryError::Protocol(_))
        ));
    }

    #[test]
    fn identities_differ_by_credentials_and_hide_passwords() {
        let alice = credential_identity(&Auth::Basic {
            username: "alice".into(),
            password: "pw".into(),
        });
        let alice2 = credential_identity(&Auth::Basic {
            username: "alice".into(),
            password: "other".into(),
        });
        assert_ne!(alice, alice2);
        assert!(!alice.contains("pw"));
        assert_eq!(credential_identity(&Auth::Anonymous), "anonymous");
    }

    #[test]
    fn slots_are_shared_per_key() {
        let cache = TokenCache::default();
        let key = TokenKey {
            realm: "r".into(),
            service: "s".into(),
            scope: "repository:a:pull".into(),
            identity: "anonymous".into(),
        };
        let first = cache.slot(&key);
        let second = cache.slot(&key);
        assert!(Arc::ptr_eq(&first, &second));
        let other = cache.slot(&TokenKey {
            scope: "repository:b:pull".into(),
            ..key
        });
        assert!(!Arc::ptr_eq(&first, &other));
    }
}
