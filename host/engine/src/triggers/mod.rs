//! Host-side trigger dispatch: which configured trigger fires for which update,
//! when, how often, and delivery with retries that never block a scan.
//!
//! `[triggers.NAME] plugin = "webhook"` plus the host options below; every other
//! key goes to the plugin's `configure`:
//! - `threshold` = `all` (default) | `major` | `minor` | `patch` | `major-only` | `minor-only`
//!   (WUD's meaning: `minor` fires for minor and patch updates, `minor-only` for minor only;
//!   digest and non-semver updates pass every threshold);
//! - `mode` = `simple` (one delivery per container, default) | `batch` (one per scan);
//! - `once` = true (default): a given result (container + kind + remote value) is
//!   delivered once, remembered in the store across restarts;
//! - `auto` = true (default); false = only when asked through the API (`/v1/update`,
//!   `POST /api/containers/{id}/triggers/{name}`);
//! - `retries` (default 3) and `retry_backoff_ms` (default 1000, doubled per attempt);
//!   a service's rate-limit answer (the plugin's `retry-after`) is waited out
//!   when longer, and a failure the plugin calls final is not retried;
//! - `allowed_hosts`: hosts the plugin may reach besides the host of its `url`;
//! - `title`, `body`, `batch_title`, `batch_body`: the message templates
//!   (see [`templates`]);
//! - `[triggers.NAME.smtp]`, `[triggers.NAME.mqtt]`: the mail server and MQTT
//!   broker lent to the plugin (its `smtp` and `mqtt` imports).
//!
//! Per container, `crowsnest.trigger.include` / `.exclude` (comma-separated trigger
//! names, `NAME` or `PLUGIN.NAME`, include entries optionally `NAME:THRESHOLD`) narrow
//! which triggers fire for it.
//!
//! Modules: `events` (the update event a container's result describes),
//! `labels` (per-container include/exclude), [`templates`] (the rendered
//! message), `setup` (building triggers from the configuration), `dispatch`
//! (which trigger fires when), `delivery` (one delivery with its retries) and
//! `sample` (`crowsnest triggers test`).

mod delivery;
mod dispatch;
mod events;
mod labels;
mod sample;
mod setup;
pub mod templates;

use std::collections::BTreeMap;
use std::fmt;

use futures::future::BoxFuture;
use serde::Serialize;

use crowsnest_config::TriggerOptions;
use crowsnest_plugin_host::trigger::{DeliveryError, Message, TextFormat, UpdateEvent};
use crowsnest_plugin_host::{Secrets, TriggerPlugin};

pub use delivery::close_and_wait;
pub use dispatch::{DispatchScope, TriggerDispatcher, TriggerRunError};
pub use events::{result_key, update_event};
pub use labels::{label_verdict, LabelVerdict};
pub use sample::SampleReport;
pub use templates::{MessageTemplates, TemplateError};

/// Something that delivers events: a trigger plugin instance, in production.
pub trait Notifier: Send + Sync + 'static {
    /// The markup its messages are in.
    fn format(&self) -> TextFormat;
    /// Deliver one event with its message.
    fn notify<'a>(
        &'a self,
        message: &'a Message,
        event: &'a UpdateEvent,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;
    /// Deliver several events at once with the batch's message.
    fn notify_batch<'a>(
        &'a self,
        message: &'a Message,
        events: &'a [UpdateEvent],
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

impl Notifier for TriggerPlugin {
    fn format(&self) -> TextFormat {
        TriggerPlugin::format(self)
    }

    fn notify<'a>(
        &'a self,
        message: &'a Message,
        event: &'a UpdateEvent,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(TriggerPlugin::notify(self, message, event))
    }

    fn notify_batch<'a>(
        &'a self,
        message: &'a Message,
        events: &'a [UpdateEvent],
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(TriggerPlugin::notify_batch(self, message, events))
    }
}

/// One configured trigger.
pub struct ConfiguredTrigger {
    /// `[triggers.NAME]`.
    pub name: String,
    /// Plugin serving it.
    pub plugin: String,
    /// Host options.
    pub options: TriggerOptions,
    /// Plugin settings with secrets masked, for `GET /api/triggers`.
    pub masked_settings: BTreeMap<String, String>,
    /// Secret values scrubbed from every error and log line about it.
    pub secrets: Secrets,
    templates: MessageTemplates,
    notifier: Box<dyn Notifier>,
}

impl fmt::Debug for ConfiguredTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfiguredTrigger")
            .field("name", &self.name)
            .field("plugin", &self.plugin)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ConfiguredTrigger {
    /// A trigger delivering through `notifier`, its messages rendered from
    /// the templates of `options` for the notifier's markup.
    pub fn new(
        name: impl Into<String>,
        plugin: impl Into<String>,
        options: TriggerOptions,
        notifier: Box<dyn Notifier>,
    ) -> Result<Self, TemplateError> {
        let templates = MessageTemplates::new(&options, notifier.format())?;
        Ok(Self {
            name: name.into(),
            plugin: plugin.into(),
            options,
            masked_settings: BTreeMap::new(),
            secrets: Secrets::default(),
            templates,
            notifier,
        })
    }

    /// `text` without this trigger's secrets.
    pub fn scrub(&self, text: &str) -> String {
        self.secrets.scrub(text)
    }
}

/// `GET /api/triggers` entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerSummary {
    /// `[triggers.NAME]`.
    pub name: String,
    /// Plugin serving it.
    pub plugin: String,
    /// Host options.
    #[serde(flatten)]
    pub options: TriggerOptions,
    /// Plugin settings, secrets masked.
    pub settings: BTreeMap<String, String>,
}
