//! Multi-scope token plans: before a scan, the caller names the repositories
//! it will read on each registry; a token is then asked for a batch of them at
//! once (several `scope` parameters, as Docker Hub's and distribution's token
//! servers allow), so a scan costs one token request per batch, not one per
//! repository. A repository whose batch token lacks its scope
//! (`insufficient_scope`) gets its own token from then on; a realm refusing a
//! multi-scope request turns batching off for its registry.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

/// Repositories per multi-scope token request: bounds the URL (about 50 bytes
/// a scope) and the size of the token sent back on every request.
pub const SCOPES_PER_TOKEN: usize = 50;

/// The planned batches of every registry origin.
#[derive(Debug, Default)]
pub(crate) struct ScopePlans {
    origins: Mutex<HashMap<String, OriginPlan>>,
}

/// One registry's batches and exceptions.
#[derive(Debug, Default)]
struct OriginPlan {
    /// The space-separated scopes of the batch each repository belongs to.
    batch_of: HashMap<String, Arc<str>>,
    /// Repositories a batch token did not cover: they get their own token.
    own_token: HashSet<String>,
    /// The token realm refused a multi-scope request.
    refused: bool,
}

/// The pull scope of `repository`, as a token request names it.
pub(crate) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

impl ScopePlans {
    /// Plans the batches of `origin` for `repositories`: a full scan
    /// (`replace`) drops the repositories it no longer reads; otherwise the
    /// repositories not planned yet are added as new batches, leaving the
    /// existing batches (and their cached tokens) as they are.
    pub fn plan<'a>(
        &self,
        origin: &str,
        repositories: impl IntoIterator<Item = &'a str>,
        replace: bool,
    ) {
        let mut origins = self.origins.lock().unwrap_or_else(PoisonError::into_inner);
        let plan = origins.entry(origin.to_string()).or_default();
        if replace {
            plan.batch_of.clear();
        }
        let mut new: Vec<&str> = repositories
            .into_iter()
            .filter(|repository| {
                !plan.own_token.contains(*repository) && !plan.batch_of.contains_key(*repository)
            })
            .collect();
        // Sorted, so that the same repositories make the same batches (and
        // hit the same cached tokens) scan after scan.
        new.sort_unstable();
        new.dedup();
        for batch in new.chunks(SCOPES_PER_TOKEN) {
            let scopes: Arc<str> = batch
                .iter()
                .map(|repository| pull_scope(repository))
                .collect::<Vec<_>>()
                .join(" ")
                .into();
            for repository in batch {
                plan.batch_of
                    .insert((*repository).to_string(), Arc::clone(&scopes));
            }
        }
    }

    /// The scopes of the batch `repository` of `origin` is read with, when it
    /// is planned in a batch of several.
    pub fn batch_for(&self, origin: &str, repository: &str) -> Option<Arc<str>> {
        let origins = self.origins.lock().unwrap_or_else(PoisonError::into_inner);
        let plan = origins.get(origin)?;
        if plan.refused || plan.own_token.contains(repository) {
            return None;
        }
        plan.batch_of
            .get(repository)
            .filter(|scopes| scopes.contains(' '))
            .cloned()
    }

    /// A batch token lacked `repository`'s scope: it gets its own token from now on.
    pub fn needs_own_token(&self, origin: &str, repository: &str) {
        let mut origins = self.origins.lock().unwrap_or_else(PoisonError::into_inner);
        let plan = origins.entry(origin.to_string()).or_default();
        plan.batch_of.remove(repository);
        plan.own_token.insert(repository.to_string());
    }

    /// The realm of `origin` refused a multi-scope request: ask per repository.
    pub fn refused(&self, origin: &str) {
        let mut origins = self.origins.lock().unwrap_or_else(PoisonError::into_inner);
        origins.entry(origin.to_string()).or_default().refused = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "http://127.0.0.1:5003";

    fn repositories(count: usize) -> Vec<String> {
        (0..count)
            .map(|index| format!("team/app{index:03}"))
            .collect()
    }

    #[test]
    fn batches_of_at_most_fifty_sorted_and_stable() {
        let plans = ScopePlans::default();
        let names = repositories(120);
        plans.plan(ORIGIN, names.iter().rev().map(String::as_str), true);
        let first = plans.batch_for(ORIGIN, "team/app000").unwrap();
        assert_eq!(first.split(' ').count(), SCOPES_PER_TOKEN);
        assert!(first.starts_with("repository:team/app000:pull repository:team/app001:pull"));
        assert!(Arc::ptr_eq(
            &first,
            &plans.batch_for(ORIGIN, "team/app049").unwrap()
        ));
        let last = plans.batch_for(ORIGIN, "team/app119").unwrap();
        assert_eq!(last.split(' ').count(), 20);
        // The same scan planned again makes the same scopes (same cache keys).
        plans.plan(ORIGIN, names.iter().map(String::as_str), true);
        assert_eq!(plans.batch_for(ORIGIN, "team/app000").unwrap(), first);
        assert_eq!(plans.batch_for("http://other", "team/app000"), None);
    }

    #[test]
    fn a_single_repository_is_no_batch_and_extending_keeps_batches() {
        let plans = ScopePlans::default();
        plans.plan(ORIGIN, ["solo/app"], true);
        assert_eq!(plans.batch_for(ORIGIN, "solo/app"), None);
        plans.plan(ORIGIN, ["a", "b"], true);
        let batch = plans.batch_for(ORIGIN, "a").unwrap();
        assert_eq!(&*batch, "repository:a:pull repository:b:pull");
        assert_eq!(plans.batch_for(ORIGIN, "solo/app"), None, "replaced");
        plans.plan(ORIGIN, ["a", "c", "d"], false);
        assert_eq!(plans.batch_for(ORIGIN, "a").unwrap(), batch);
        assert_eq!(
            &*plans.batch_for(ORIGIN, "c").unwrap(),
            "repository:c:pull repository:d:pull"
        );
    }

    #[test]
    fn own_tokens_and_refusals_stop_batching() {
        let plans = ScopePlans::default();
        plans.plan(ORIGIN, ["a", "b", "c"], true);
        plans.needs_own_token(ORIGIN, "b");
        assert_eq!(plans.batch_for(ORIGIN, "b"), None);
        assert!(plans.batch_for(ORIGIN, "a").is_some());
        plans.plan(ORIGIN, ["a", "b", "c"], true);
        assert_eq!(
            &*plans.batch_for(ORIGIN, "a").unwrap(),
            "repository:a:pull repository:c:pull"
        );
        plans.refused(ORIGIN);
        assert_eq!(plans.batch_for(ORIGIN, "a"), None);
    }
}
