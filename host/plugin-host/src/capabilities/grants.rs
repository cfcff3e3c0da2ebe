//! `grant-cache`: vendor credentials a registry plugin obtained by a token
//! exchange, kept per plugin instance until they expire. The pool runs
//! several copies of an instance and replaces a copy after a trap; keeping
//! grants here (not in guest memory) means one exchange serves them all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::bindings::registry::crowsnest::plugin::{grant_cache, registry_types};
use crate::HostState;

/// Most grants kept per instance: a plugin keys them by account/registry, so
/// a handful is normal; the cap stops a guest from growing host memory.
const MAX_GRANTS: usize = 64;
/// Longest a grant is kept whatever its stated expiry (vendors issue 12 h at most).
const MAX_LIFETIME_SECONDS: u64 = 24 * 3600;
/// Longest key accepted.
const MAX_KEY_LEN: usize = 512;

/// The grants of one plugin instance, shared by every copy in its pool.
#[derive(Clone, Default)]
pub struct GrantCache {
    grants: Arc<Mutex<HashMap<String, (registry_types::Auth, u64)>>>,
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl GrantCache {
    /// The unexpired grant under `key`.
    pub fn get(&self, key: &str) -> Option<registry_types::Auth> {
        let now = now_seconds();
        let mut grants = self
            .grants
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match grants.get(key) {
            Some((grant, expires_at)) if *expires_at > now => Some(grant.clone()),
            Some(_) => {
                grants.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `grant` under `key` until `expires_at` (Unix seconds), capped at
    /// [`MAX_LIFETIME_SECONDS`]; an expired grant or an oversized key is ignored.
    pub fn put(&self, key: String, grant: registry_types::Auth, expires_at: u64) {
        let now = now_seconds();
        if expires_at <= now || key.len() > MAX_KEY_LEN {
            return;
        }
        let expires_at = expires_at.min(now + MAX_LIFETIME_SECONDS);
        let mut grants = self
            .grants
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        grants.retain(|_, (_, expiry)| *expiry > now);
        if grants.len() >= MAX_GRANTS && !grants.contains_key(&key) {
            // Full of live grants: drop the one expiring first.
            if let Some(first) = grants
                .iter()
                .min_by_key(|(_, (_, expiry))| *expiry)
                .map(|(key, _)| key.clone())
            {
                grants.remove(&first);
            }
        }
        grants.insert(key, (grant, expires_at));
    }

    /// How many grants are kept now (expired ones included until next touched).
    pub fn len(&self) -> usize {
        self.grants
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Whether no grant is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl grant_cache::Host for HostState {
    async fn get(&mut self, key: String) -> Option<registry_types::Auth> {
        self.capabilities.grants.get(&key)
    }

    async fn put(&mut self, key: String, grant: registry_types::Auth, expires_at: u64) {
        self.capabilities.grants.put(key, grant, expires_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry_types::Auth;

    /// The bearer token kept under `key`, if any.
    fn bearer(cache: &GrantCache, key: &str) -> Option<String> {
        match cache.get(key) {
            Some(Auth::Bearer(token)) => Some(token),
            _ => None,
        }
    }

    #[test]
    fn keeps_a_grant_until_it_expires() {
        let cache = GrantCache::default();
        cache.put("a".into(), Auth::Bearer("t".into()), now_seconds() + 60);
        assert_eq!(bearer(&cache, "a").as_deref(), Some("t"));
        assert_eq!(
            bearer(&cache.clone(), "a").as_deref(),
            Some("t"),
            "copies share grants"
        );
        cache.put(
            "old".into(),
            Auth::Bearer("o".into()),
            now_seconds().saturating_sub(1),
        );
        assert!(cache.get("old").is_none(), "an expired grant is not kept");
        assert!(cache.get("missing").is_none());
    }

    #[test]
    fn caps_the_number_of_grants() {
        let cache = GrantCache::default();
        for index in 0..(MAX_GRANTS + 10) {
            cache.put(
                format!("k{index}"),
                Auth::Anonymous,
                now_seconds() + 100 + index as u64,
            );
        }
        assert_eq!(cache.len(), MAX_GRANTS);
        assert!(
            cache.get("k0").is_none(),
            "the grant expiring first made room"
        );
        assert!(cache.get(&format!("k{}", MAX_GRANTS + 9)).is_some());
    }
}
