//! `crowsnest triggers test NAME`: a sample update sent through one
//! configured trigger exactly as a real one would be (its templates, mode,
//! plugin, retries), but never remembered as delivered.

use std::time::{Duration, Instant};

use crowsnest_config::Mode;
use crowsnest_model::{ContainerObject, UpdateKindInfo};
use crowsnest_plugin_host::trigger::Message;

use super::templates::sample_container;
use super::{result_key, update_event, TriggerDispatcher, TriggerRunError};

/// What happened to a sample delivery.
#[derive(Debug, Clone)]
pub struct SampleReport {
    /// `[triggers.NAME]`.
    pub trigger: String,
    /// Plugin serving it.
    pub plugin: String,
    /// Its mode: one sample container in simple mode, two in batch mode.
    pub mode: Mode,
    /// The sample containers' names.
    pub containers: Vec<String>,
    /// The message as rendered from the trigger's templates.
    pub message: Message,
    /// Attempts made.
    pub attempts: u32,
    /// From the first attempt to the outcome.
    pub elapsed: Duration,
    /// The last error (scrubbed of secrets) when every attempt failed.
    pub result: Result<(), String>,
}

/// The sample containers for `mode`: a minor tag update, and in batch mode
/// also a digest update.
fn samples(mode: Mode) -> Vec<ContainerObject> {
    let tag = sample_container();
    match mode {
        Mode::Simple => vec![tag],
        Mode::Batch => {
            let mut digest = sample_container();
            digest.id = "0000000000000000000000000000000000000000000000000000000000decade".into();
            digest.name = "crowsnest-sample-latest".into();
            digest.display_name = digest.name.clone();
            digest.image.reference = "redis:latest".into();
            digest.image.name = "library/redis".into();
            let remote = digest.result.as_ref().and_then(|r| r.digest.clone());
            digest.update_kind = Some(UpdateKindInfo {
                kind: "digest".into(),
                local_value: digest.image.digest.value.clone(),
                remote_value: remote,
                semver_diff: None,
            });
            if let Some(result) = digest.result.as_mut() {
                result.tag = Some("latest".into());
                result.link = None;
            }
            vec![tag, digest]
        }
    }
}

impl TriggerDispatcher {
    /// Sends a sample update through trigger `name` now, with its retries,
    /// and reports what happened. Nothing is remembered: `once` does not
    /// apply and a later real update is still delivered.
    pub async fn send_sample(&self, name: &str) -> Result<SampleReport, TriggerRunError> {
        let trigger = self.trigger(name)?;
        let containers = samples(trigger.options.mode);
        let message = match trigger.options.mode {
            Mode::Simple => trigger.templates.simple(&trigger.name, &containers[0]),
            Mode::Batch => trigger.templates.batch(&trigger.name, &containers),
        }
        .map_err(|message| TriggerRunError::Delivery {
            trigger: name.to_owned(),
            message,
        })?;
        let batch = containers
            .iter()
            .filter_map(update_event)
            .map(|event| {
                let key = (
                    trigger.name.clone(),
                    event.container_id.clone(),
                    result_key(&event),
                );
                (key, event)
            })
            .collect();
        let started = Instant::now();
        let outcome = self.delivery(trigger, false).run(&message, batch).await;
        Ok(SampleReport {
            trigger: trigger.name.clone(),
            plugin: trigger.plugin.clone(),
            mode: trigger.options.mode,
            containers: containers.iter().map(|c| c.name.clone()).collect(),
            message,
            attempts: outcome.attempts,
            elapsed: started.elapsed(),
            result: outcome.result,
        })
    }
}
