//! Swarm services on a manager (a watcher with `swarm = true`): discovered
//! like containers (image, tag, labels from the service spec), and updated by
//! the engine's own `service update` with the new image pinned by digest. The
//! service's own update configuration applies (parallelism, order, monitor,
//! failure action): with `failure_action = rollback`, Swarm rolls a failed
//! update back by itself, and the report says so.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bollard::models::{Service, ServiceUpdateStatusStateEnum};
use bollard::query_parameters::{InspectServiceOptions, ListServicesOptions, UpdateServiceOptions};

use crowsnest_oci::Auth;

use super::{docker_credentials, ReplaceOptions, ReplaceReport, ReplaceStatus};
use crate::discovery::{DiscoveredContainer, WorkloadKind};
use crate::labels::ContainerOptions;
use crate::{DiscoveryError, DockerWatcher};

/// How often a service's update state is read while it updates.
const POLL: Duration = Duration::from_millis(500);

impl DockerWatcher {
    /// The Swarm services of this manager, as discovered workloads
    /// ([`WorkloadKind::Service`]): id and name of the service, its image as
    /// the spec pins it (`repo:tag@digest`), its labels.
    pub async fn discover_services(&self) -> Result<Vec<DiscoveredContainer>, DiscoveryError> {
        let services = self
            .docker
            .list_services(Some(ListServicesOptions {
                status: Some(true),
                ..Default::default()
            }))
            .await
            .map_err(|source| self.list_error(source))?;
        // Services have no local image: the manager's platform is the one looked up.
        let platform = self.docker.version().await.ok();
        let (os, architecture) = platform
            .map(|version| (version.os, version.arch))
            .unwrap_or_default();
        Ok(services
            .into_iter()
            .map(|service| self.service_workload(service, os.clone(), architecture.clone()))
            .collect())
    }

    fn service_workload(
        &self,
        service: Service,
        os: Option<String>,
        architecture: Option<String>,
    ) -> DiscoveredContainer {
        let spec = service.spec.unwrap_or_default();
        let image_reference = spec
            .task_template
            .as_ref()
            .and_then(|task| task.container_spec.as_ref())
            .and_then(|container| container.image.clone())
            .unwrap_or_default();
        let labels: BTreeMap<String, String> =
            spec.labels.unwrap_or_default().into_iter().collect();
        let (options, problems) = ContainerOptions::from_labels(&labels);
        let watched = options.watch.unwrap_or(self.config.watch_by_default);
        let running = service
            .service_status
            .and_then(|status| status.running_tasks)
            .unwrap_or_default();
        let repo_digests = image_reference
            .split_once('@')
            .map(|(name, digest)| {
                let repository = crate::update::swarm::repository_of(name);
                vec![format!("{repository}@{digest}")]
            })
            .unwrap_or_default();
        DiscoveredContainer {
            id: service.id.unwrap_or_default(),
            name: spec.name.unwrap_or_default(),
            status: if running > 0 { "running" } else { "created" }.to_owned(),
            watcher: self.name.clone(),
            kind: WorkloadKind::Service,
            image_id: String::new(),
            repo_digests,
            repo_tags: Vec::new(),
            architecture,
            os,
            variant: None,
            image_created: None,
            image_reference,
            labels,
            options,
            watched,
            error: (!problems.is_empty()).then(|| problems.join("; ")),
            owner: None,
            pull_auth: BTreeMap::new(),
        }
    }

    /// Updates service `id` to `image` (`repo:tag@digest`) with the
    /// service's own update configuration, and waits for Swarm's verdict:
    /// completed (updated), rolled back, or paused (failed).
    pub async fn update_service(
        &self,
        id: &str,
        image: &str,
        auth: &Auth,
        server: &str,
        options: &ReplaceOptions,
    ) -> ReplaceReport {
        let mut report = ReplaceReport::failed(id, image);
        let service = match self
            .docker
            .inspect_service(id, None::<InspectServiceOptions>)
            .await
        {
            Ok(service) => service,
            Err(error) => {
                report.message = Some(format!("inspecting service {id} failed: {error}"));
                return report;
            }
        };
        let mut spec = service.spec.clone().unwrap_or_default();
        report.name = spec.name.clone().unwrap_or_else(|| id.to_owned());
        let Some(container) = spec
            .task_template
            .as_mut()
            .and_then(|task| task.container_spec.as_mut())
        else {
            report.message = Some(format!("service {} runs no container", report.name));
            return report;
        };
        report.from_image = container.image.clone().unwrap_or_default();
        container.image = Some(image.to_owned());
        let failure_action = spec
            .update_config
            .as_ref()
            .and_then(|config| config.failure_action)
            .map_or_else(|| "pause".to_owned(), |action| action.to_string());
        let step = format!(
            "service update {} --image {image} (the service's update configuration; on failure: {failure_action})",
            report.name
        );
        if options.dry_run {
            report.status = ReplaceStatus::DryRun;
            report.steps.push(step);
            return report;
        }
        let before = update_marker(&service);
        let version = service
            .version
            .and_then(|version| version.index)
            .and_then(|index| i32::try_from(index).ok())
            .unwrap_or_default();
        let update = UpdateServiceOptions {
            version,
            ..Default::default()
        };
        if let Err(error) = self
            .patient()
            .update_service(id, spec, update, docker_credentials(auth, server))
            .await
        {
            report.message = Some(format!("service update {} failed: {error}", report.name));
            return report;
        }
        report.steps.push(step);
        let (status, message) = self.await_service_update(id, before, options.timeout).await;
        report.status = status;
        report.message = message;
        if status == ReplaceStatus::Updated {
            report.new_id = Some(id.to_owned());
        }
        tracing::info!(watcher = %self.name, service = %report.name, status = status.as_str(), message = ?report.message, "service update finished");
        report
    }

    /// Polls service `id` until the update started after `before` ends.
    async fn await_service_update(
        &self,
        id: &str,
        before: Option<String>,
        timeout: Duration,
    ) -> (ReplaceStatus, Option<String>) {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("not started");
        loop {
            match self
                .docker
                .inspect_service(id, None::<InspectServiceOptions>)
                .await
            {
                Ok(service) if update_marker(&service) != before => {
                    let status = service.update_status.unwrap_or_default();
                    let message = status.message.filter(|message| !message.is_empty());
                    match status.state {
                        Some(ServiceUpdateStatusStateEnum::COMPLETED) => {
                            return (ReplaceStatus::Updated, message)
                        }
                        Some(ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED) => {
                            return (
                                ReplaceStatus::RolledBack,
                                Some(
                                    message
                                        .unwrap_or_else(|| "Swarm rolled the update back".into()),
                                ),
                            )
                        }
                        Some(
                            state @ (ServiceUpdateStatusStateEnum::PAUSED
                            | ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED),
                        ) => {
                            return (
                                ReplaceStatus::Failed,
                                Some(format!(
                                    "the update is {state}: {}",
                                    message.unwrap_or_default()
                                )),
                            )
                        }
                        Some(state) => last = state.to_string(),
                        None => last = "no update status".into(),
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    return (
                        ReplaceStatus::Failed,
                        Some(format!("inspecting service {id} failed: {error}")),
                    )
                }
            }
            if Instant::now() >= deadline {
                return (
                    ReplaceStatus::Failed,
                    Some(format!(
                        "the update did not finish within {}s (state: {last})",
                        timeout.as_secs()
                    )),
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// What tells one update of a service from the next: when it started.
fn update_marker(service: &Service) -> Option<String> {
    service
        .update_status
        .as_ref()
        .and_then(|status| status.started_at.as_ref())
        .map(|started| format!("{started:?}"))
}

/// The repository of `name[:tag]` (a registry `host:port` kept whole).
pub fn repository_of(name: &str) -> &str {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(colon) => &name[..slash + colon],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_keeps_the_registry_port() {
        assert_eq!(
            repository_of("127.0.0.1:5000/team/app:1.0"),
            "127.0.0.1:5000/team/app"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/team/app"),
            "127.0.0.1:5000/team/app"
        );
        assert_eq!(repository_of("nginx:1.25"), "nginx");
    }
}
