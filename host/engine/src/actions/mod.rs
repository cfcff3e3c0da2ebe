//! Update actions (`[actions.NAME]`): acting on the updates a scan found by
//! pulling the offered image and replacing the container (or Swarm service)
//! with exactly the same configuration. This module is the policy — which
//! container, when, by which action — and the bookkeeping (per-container
//! lock, history, metrics); the Docker side is `crowsnest_docker::update`.
//!
//! Who is updated, by an action in scope (`auto` ones after a scan, inside
//! their `window`; every one when asked through the API):
//! - a container whose last check found an update and no error;
//! - not labelled `crowsnest.update=false` (Watchtower's
//!   `com.centurylinklabs.watchtower.enable` is the same label), and labelled
//!   `true` when the action is `opt_in`;
//! - whose update reaches the action's `threshold` (a request for one
//!   container by the API skips the threshold, not the labels);
//! - whose offered image is at least `cooldown_secs` old (its creation time,
//!   from the registry);
//! - that no other update is working on (a per-container lock; the second
//!   request is answered `skipped`).
//!
//! Each container is handled by the first action (in name order) that admits it.

mod run;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Local};

use crowsnest_config::{ActionConfig, Config, ConfigError, Threshold};
use crowsnest_docker::ContainerOptions;
use crowsnest_model::{ContainerObject, UpdateOutcome};

use crate::metrics::Metrics;
use crate::scan::Scanner;
use crate::scheduler::Schedule;

pub use run::finish_handover;

/// How many past update attempts `GET /api/containers/{id}` shows.
pub const HISTORY_LIMIT: usize = 20;

/// What asked for an update run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOrigin {
    /// After a scan: the `auto` actions, inside their window.
    Automatic,
    /// Through the API (`/v1/update`): every action, at any time.
    Api,
}

/// One configured action.
#[derive(Debug, Clone)]
pub struct ConfiguredAction {
    /// `[actions.NAME]`.
    pub name: String,
    /// Its keys.
    pub config: ActionConfig,
    window: Option<Schedule>,
}

impl ConfiguredAction {
    /// An action named `name`; the error is about the `window` key.
    pub fn new(name: impl Into<String>, config: ActionConfig) -> Result<Self, String> {
        let window = config.window.as_deref().map(Schedule::parse).transpose()?;
        Ok(Self {
            name: name.into(),
            config,
            window,
        })
    }

    /// Whether the action runs for `origin` at `now`.
    pub fn in_scope(&self, origin: RunOrigin, now: DateTime<Local>) -> bool {
        match origin {
            RunOrigin::Api => true,
            RunOrigin::Automatic => {
                self.config.auto
                    && self
                        .window
                        .as_ref()
                        .is_none_or(|window| window.contains_minute(now))
            }
        }
    }

    /// `None` when this action may update `container`, else why not.
    /// `explicit`: asked for this one container (the threshold does not apply).
    pub fn refusal(&self, container: &ContainerObject, explicit: bool) -> Option<String> {
        if let Some(error) = &container.error {
            return Some(format!("its last check failed: {}", error.message));
        }
        let kind = container.update_kind.as_ref();
        if !container.update_available || kind.is_none() {
            return Some("no update is available".into());
        }
        if run::is_set_aside(&container.name) {
            return Some("it is an old container kept aside during an update".into());
        }
        let (options, _) = ContainerOptions::from_labels(&container.labels);
        match (options.update, self.config.opt_in) {
            (Some(false), _) => {
                return Some("opted out by label `crowsnest.update=false`".into());
            }
            (None, true) => {
                return Some(format!(
                    "action `{}` is opt-in and the container is not labelled `crowsnest.update=true`",
                    self.name
                ));
            }
            _ => {}
        }
        if !explicit {
            let threshold: Threshold = self.config.threshold;
            if let Some(kind) = kind {
                if !threshold.reached(&kind.kind, kind.semver_diff.as_deref()) {
                    return Some(format!(
                        "the {} update is below the threshold of action `{}`",
                        kind.semver_diff.as_deref().unwrap_or(&kind.kind),
                        self.name
                    ));
                }
            }
        }
        None
    }
}

/// The configured update actions and what they share: the scanner (registry
/// instances, watchers, store), metrics, the per-container locks, and the id
/// of the container crowsnest itself runs in.
pub struct UpdateActions {
    actions: Vec<ConfiguredAction>,
    scanner: Scanner,
    metrics: Arc<Metrics>,
    busy: Mutex<HashSet<String>>,
    own_container: Option<String>,
}

impl std::fmt::Debug for UpdateActions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateActions")
            .field("actions", &self.actions)
            .field("own_container", &self.own_container)
            .finish_non_exhaustive()
    }
}

impl UpdateActions {
    /// Every `[actions.NAME]` of `config`; a bad `window` is a configuration
    /// error at its line.
    pub fn from_config(
        config: &Config,
        scanner: Scanner,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ConfigError> {
        let mut actions = Vec::new();
        for (name, action) in &config.actions {
            let configured = ConfiguredAction::new(name, action.clone())
                .map_err(|message| config.error_at(&["actions", name, "window"], message))?;
            actions.push(configured);
        }
        Ok(Self::new(
            actions,
            scanner,
            metrics,
            crowsnest_docker::update::own_container_id(),
        ))
    }

    /// Actions over `scanner`; `own_container` is the id of the container
    /// crowsnest runs in, if any (it is replaced by the self-update path).
    pub fn new(
        actions: Vec<ConfiguredAction>,
        scanner: Scanner,
        metrics: Arc<Metrics>,
        own_container: Option<String>,
    ) -> Self {
        Self {
            actions,
            scanner,
            metrics,
            busy: Mutex::default(),
            own_container,
        }
    }

    /// Whether no action is configured.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The configured actions.
    pub fn actions(&self) -> &[ConfiguredAction] {
        &self.actions
    }

    /// Whether some action runs automatically after scans.
    pub fn any_automatic(&self) -> bool {
        self.actions.iter().any(|action| action.config.auto)
    }

    /// Past update attempts on container `name` of `watcher`, most recent first.
    pub async fn history(&self, watcher: &str, name: &str) -> Vec<UpdateOutcome> {
        match self
            .scanner
            .store()
            .update_attempts(watcher, name, HISTORY_LIMIT)
            .await
        {
            Ok(history) => history,
            Err(error) => {
                tracing::warn!(%watcher, %name, %error, "cannot read the update history");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests;
