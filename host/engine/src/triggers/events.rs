//! The update event a container's result describes, and the key `once`
//! remembers a delivered result by.

use crowsnest_model::ContainerObject;
use crowsnest_plugin_host::trigger::UpdateEvent;

/// The update event a container's result describes (None when it has no update).
pub fn update_event(container: &ContainerObject) -> Option<UpdateEvent> {
    if !container.update_available || container.error.is_some() {
        return None;
    }
    let kind = container.update_kind.as_ref()?;
    Some(UpdateEvent {
        container_id: container.id.clone(),
        container_name: container.name.clone(),
        display_name: container.display_name.clone(),
        watcher: container.watcher.clone(),
        image: container.image.reference.clone(),
        kind: kind.kind.clone(),
        semver_diff: kind.semver_diff.clone(),
        local_value: kind.local_value.clone().unwrap_or_default(),
        remote_value: kind.remote_value.clone().unwrap_or_default(),
        remote_digest: container
            .result
            .as_ref()
            .and_then(|result| result.digest.clone()),
        link: container
            .result
            .as_ref()
            .and_then(|result| result.link.clone()),
    })
}

/// The key `once` remembers a delivered result by.
pub fn result_key(event: &UpdateEvent) -> String {
    format!("{}:{}", event.kind, event.remote_value)
}
