//! The self-update path. crowsnest running in a container cannot stop its own
//! container and then start the replacement: it would be gone half-way. As
//! Watchtower does, the old instance renames its container aside and starts
//! the replacement beside it, labelled [`SELF_REPLACES_LABEL`] with the old
//! id; the new instance, once up, stops and removes the old container
//! ([`DockerWatcher::finish_handover`]).

use bollard::query_parameters::{InspectContainerOptions, StopContainerOptions};

use crate::DockerWatcher;

/// Label the replacement of crowsnest's own container carries: the id of the
/// container it replaces.
pub const SELF_REPLACES_LABEL: &str = "crowsnest.update.replaces";

/// Environment variable naming crowsnest's own container id when it cannot be
/// read from `/proc/self/mountinfo` (another runtime, an unusual data root).
pub const CONTAINER_ID_ENV: &str = "CROWSNEST_CONTAINER_ID";

/// The id of the Docker container this process runs in: `CROWSNEST_CONTAINER_ID`,
/// else the container directory the engine bind-mounts `/etc/hostname` and
/// `/etc/resolv.conf` from (`…/containers/ID/…` in `/proc/self/mountinfo`).
/// `None` outside a container.
pub fn own_container_id() -> Option<String> {
    if let Some(id) = std::env::var(CONTAINER_ID_ENV)
        .ok()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
    {
        return Some(id);
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    container_id_in_mountinfo(&mountinfo)
}

/// The container id in the bind mounts of `/etc/hostname` (or resolv.conf, hosts).
fn container_id_in_mountinfo(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let root = fields.nth(3)?;
        let mount_point = fields.next()?;
        if !matches!(
            mount_point,
            "/etc/hostname" | "/etc/resolv.conf" | "/etc/hosts"
        ) {
            return None;
        }
        let mut parts = root.split('/');
        parts.find(|part| *part == "containers")?;
        let id = parts.next()?;
        (id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit())).then(|| id.to_owned())
    })
}

impl DockerWatcher {
    /// Run by a new crowsnest at start-up: when its own container (`own_id`)
    /// replaces an older one ([`SELF_REPLACES_LABEL`]), stops and removes that
    /// one (volumes kept). Returns the id removed.
    pub async fn finish_handover(&self, own_id: &str) -> Result<Option<String>, String> {
        let own = self
            .docker
            .inspect_container(own_id, None::<InspectContainerOptions>)
            .await
            .map_err(|error| format!("inspecting crowsnest's own container failed: {error}"))?;
        let Some(old) = own
            .config
            .and_then(|config| config.labels)
            .and_then(|labels| labels.get(SELF_REPLACES_LABEL).cloned())
            .filter(|old| old != own_id)
        else {
            return Ok(None);
        };
        match self
            .docker
            .inspect_container(&old, None::<InspectContainerOptions>)
            .await
        {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(error) => return Err(format!("inspecting the replaced container failed: {error}")),
            Ok(_) => {}
        }
        self.patient()
            .stop_container(&old, None::<StopContainerOptions>)
            .await
            .map_err(|error| format!("stopping the replaced container failed: {error}"))?;
        self.remove(&old)
            .await
            .map_err(|error| format!("the replaced container: {error}"))?;
        tracing::info!(watcher = %self.name, replaced = %old, "self-update finished: the old crowsnest container is gone");
        Ok(Some(old))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_id_is_read_from_the_hostname_mount() {
        let id = "5f1c0e6b2a9d4c3b8e7f6a5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b";
        let mountinfo = format!(
            "590 510 0:52 / / rw,relatime - overlay overlay rw\n\
             612 590 254:1 /var/lib/docker/containers/{id}/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw\n"
        );
        assert_eq!(container_id_in_mountinfo(&mountinfo).as_deref(), Some(id));
        assert_eq!(
            container_id_in_mountinfo("22 1 0:21 / /proc rw - proc proc rw\n"),
            None
        );
        let not_an_id =
            "612 590 254:1 /srv/containers/abc/hostname /etc/hostname rw - ext4 /dev/vda rw";
        assert_eq!(container_id_in_mountinfo(not_an_id), None);
    }
}
