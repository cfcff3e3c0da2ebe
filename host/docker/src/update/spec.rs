//! The creation request of a replacement container: the old container's own
//! configuration, byte for byte, on a new image.
//!
//! `docker inspect` merges what the user asked for with what the old image
//! contributed (its `ENV`, `LABEL`, `CMD`, `ENTRYPOINT`, `WORKDIR`, `USER`,
//! `VOLUME`, `EXPOSE`, `HEALTHCHECK`, `STOPSIGNAL`). Copied as it is, the new
//! container would keep the old image's defaults (an old `VERSION` variable,
//! an old label) over the new image's. So what equals the old image's value
//! is left out and the new image supplies it, as `docker compose` and
//! Watchtower do; everything else — host configuration (mounts, ports,
//! restart policy, resources, capabilities, devices, log configuration),
//! user-set environment and labels, networks with their aliases and static
//! addresses — is kept exactly.

use std::collections::{HashMap, HashSet};

use bollard::models::{
    ContainerConfig, ContainerCreateBody, ContainerInspectResponse, EndpointSettings, HostConfig,
    ImageConfig, MountPointTypeEnum, NetworkingConfig,
};

/// Network modes that are not a network a container is attached to by name.
const BUILTIN_NETWORK_MODES: [&str; 4] = ["default", "bridge", "host", "none"];

/// A replacement container's creation request, and the networks to attach
/// after creation (the engine takes one network at creation before API 1.44).
#[derive(Debug, Clone)]
pub struct ReplacementSpec {
    /// `POST /containers/create` body.
    pub body: ContainerCreateBody,
    /// Further networks, attached in this order before the first start.
    pub extra_networks: Vec<(String, EndpointSettings)>,
}

/// The container network mode `container:ID` names, when that is the mode.
pub fn network_container(host: &HostConfig) -> Option<&str> {
    host.network_mode.as_deref()?.strip_prefix("container:")
}

/// Builds the replacement of `old` on `image`. `old_image` is the
/// configuration of the image `old` was created from (None when that image is
/// gone: the inspected configuration is then copied whole). `network_owner`
/// replaces the container a `container:ID` network mode points at (when that
/// container is itself being replaced).
pub fn replacement(
    old: &ContainerInspectResponse,
    old_image: Option<&ImageConfig>,
    image: &str,
    network_owner: Option<&str>,
) -> ReplacementSpec {
    let mut config = old.config.clone().unwrap_or_default();
    let mut host = old.host_config.clone().unwrap_or_default();
    if let Some(defaults) = old_image {
        drop_image_defaults(&mut config, defaults);
    }
    let old_id = old.id.as_deref().unwrap_or_default();
    // A hostname the engine derived from the old id is not configuration.
    if config
        .hostname
        .as_deref()
        .is_some_and(|hostname| !hostname.is_empty() && old_id.starts_with(hostname))
    {
        config.hostname = None;
    }
    if let Some(owner) = network_owner {
        host.network_mode = Some(format!("container:{owner}"));
    }
    if network_container(&host).is_some() {
        // The engine refuses these with a container network mode; they belong
        // to the container whose network is shared.
        config.hostname = None;
        config.domainname = None;
        config.mac_address = None;
        config.exposed_ports = None;
    }
    for port in host
        .port_bindings
        .iter()
        .flat_map(|bindings| bindings.keys())
    {
        config
            .exposed_ports
            .get_or_insert_with(HashMap::new)
            .insert(port.clone(), HashMap::new());
    }
    keep_anonymous_volumes(old, &mut host);
    let (networking, extra_networks) = networks(old, &host);
    config.image = Some(image.to_owned());
    ReplacementSpec {
        body: create_body(config, host, networking),
        extra_networks,
    }
}

/// Leaves out of `config` every value equal to what the old image contributed.
fn drop_image_defaults(config: &mut ContainerConfig, image: &ImageConfig) {
    if config.working_dir == image.working_dir {
        config.working_dir = None;
    }
    if config.user == image.user {
        config.user = None;
    }
    // An entrypoint set at creation resets the image's CMD, so CMD is the
    // user's own unless the entrypoint is the image's too.
    if config.entrypoint == image.entrypoint {
        config.entrypoint = None;
        if config.cmd == image.cmd {
            config.cmd = None;
        }
    }
    if config.healthcheck == image.healthcheck {
        config.healthcheck = None;
    }
    if config.stop_signal == image.stop_signal {
        config.stop_signal = None;
    }
    if config.shell == image.shell {
        config.shell = None;
    }
    if config.on_build == image.on_build {
        config.on_build = None;
    }
    if let (Some(env), Some(defaults)) = (&mut config.env, &image.env) {
        let defaults: HashSet<&String> = defaults.iter().collect();
        env.retain(|entry| !defaults.contains(entry));
    }
    if let (Some(labels), Some(defaults)) = (&mut config.labels, &image.labels) {
        labels.retain(|key, value| defaults.get(key) != Some(value));
    }
    if let (Some(volumes), Some(defaults)) = (&mut config.volumes, &image.volumes) {
        volumes.retain(|path, _| !defaults.contains_key(path));
    }
    if let (Some(ports), Some(defaults)) = (&mut config.exposed_ports, &image.exposed_ports) {
        ports.retain(|port, _| !defaults.contains_key(port));
    }
}

/// Anonymous volumes (an image `VOLUME`, or `-v /path`) would be created
/// afresh, empty: they are bound by name instead, so the data stays.
fn keep_anonymous_volumes(old: &ContainerInspectResponse, host: &mut HostConfig) {
    let bound: HashSet<String> = host
        .binds
        .iter()
        .flatten()
        .filter_map(|bind| bind_target(bind))
        .chain(
            host.mounts
                .iter()
                .flatten()
                .filter_map(|mount| mount.target.clone()),
        )
        .collect();
    for mount in old.mounts.iter().flatten() {
        let (Some(MountPointTypeEnum::VOLUME), Some(name), Some(destination)) =
            (&mount.typ, &mount.name, &mount.destination)
        else {
            continue;
        };
        if bound.contains(destination) {
            continue;
        }
        let mode = if mount.rw == Some(false) { ":ro" } else { "" };
        host.binds
            .get_or_insert_with(Vec::new)
            .push(format!("{name}:{destination}{mode}"));
    }
}

/// The container path of a `-v SOURCE:TARGET[:OPTIONS]` bind.
fn bind_target(bind: &str) -> Option<String> {
    bind.split(':').nth(1).map(str::to_owned)
}

/// The network attached at creation (the network mode's, when it is a user
/// network) and the others, each with the settings a user can give: static
/// addresses, aliases (less the old id the engine added), links, driver options.
fn networks(
    old: &ContainerInspectResponse,
    host: &HostConfig,
) -> (Option<NetworkingConfig>, Vec<(String, EndpointSettings)>) {
    let mode = host.network_mode.as_deref().unwrap_or("default");
    if mode == "host" || mode == "none" || mode.starts_with("container:") {
        return (None, Vec::new());
    }
    let old_id = old.id.as_deref().unwrap_or_default();
    let mut endpoints: Vec<(String, EndpointSettings)> = old
        .network_settings
        .as_ref()
        .and_then(|settings| settings.networks.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(name, endpoint)| (name, user_settings(endpoint, old_id)))
        .collect();
    endpoints.sort_by(|a, b| a.0.cmp(&b.0));
    let primary = endpoints
        .iter()
        .position(|(name, _)| name == mode && !BUILTIN_NETWORK_MODES.contains(&mode))
        .map(|index| endpoints.remove(index));
    // The network mode's own network is attached by creation itself.
    endpoints.retain(|(name, _)| name != mode && !(mode == "default" && name == "bridge"));
    let networking = primary.map(|(name, endpoint)| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(name, endpoint)])),
    });
    (networking, endpoints)
}

/// What of an inspected endpoint the user configured.
fn user_settings(endpoint: EndpointSettings, old_id: &str) -> EndpointSettings {
    let aliases: Option<Vec<String>> = endpoint.aliases.map(|aliases| {
        aliases
            .into_iter()
            .filter(|alias| alias.len() < 12 || !old_id.starts_with(alias.as_str()))
            .collect()
    });
    EndpointSettings {
        ipam_config: endpoint.ipam_config,
        links: endpoint.links,
        aliases: aliases.filter(|aliases| !aliases.is_empty()),
        driver_opts: endpoint.driver_opts,
        ..Default::default()
    }
}

/// A creation body from its three parts.
fn create_body(
    config: ContainerConfig,
    host: HostConfig,
    networking: Option<NetworkingConfig>,
) -> ContainerCreateBody {
    ContainerCreateBody {
        hostname: config.hostname,
        domainname: config.domainname,
        user: config.user,
        attach_stdin: config.attach_stdin,
        attach_stdout: config.attach_stdout,
        attach_stderr: config.attach_stderr,
        exposed_ports: config.exposed_ports,
        tty: config.tty,
        open_stdin: config.open_stdin,
        stdin_once: config.stdin_once,
        env: config.env,
        cmd: config.cmd,
        healthcheck: config.healthcheck,
        args_escaped: config.args_escaped,
        image: config.image,
        volumes: config.volumes,
        working_dir: config.working_dir,
        entrypoint: config.entrypoint,
        network_disabled: config.network_disabled,
        mac_address: config.mac_address,
        on_build: config.on_build,
        labels: config.labels,
        stop_signal: config.stop_signal,
        stop_timeout: config.stop_timeout,
        shell: config.shell,
        host_config: Some(host),
        networking_config: networking,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{HealthConfig, MountPoint, NetworkSettings, PortBinding};

    fn strings(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|item| (*item).to_owned()).collect())
    }

    fn old_container() -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some("0123456789abcdef0123".into()),
            config: Some(ContainerConfig {
                hostname: Some("0123456789ab".into()),
                env: strings(&["PATH=/bin", "VERSION=1.0", "MODE=prod"]),
                labels: Some(HashMap::from([
                    ("org.opencontainers.image.version".into(), "1.0".into()),
                    ("team".into(), "web".into()),
                ])),
                cmd: strings(&["sleep", "3600"]),
                entrypoint: strings(&["/bin/busybox"]),
                working_dir: Some("/srv".into()),
                healthcheck: Some(HealthConfig {
                    test: strings(&["CMD", "true"]),
                    ..Default::default()
                }),
                volumes: Some(HashMap::from([("/data".into(), HashMap::new())])),
                image: Some("app:1.0".into()),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                network_mode: Some("front".into()),
                binds: strings(&["/srv/conf:/conf:ro", "named:/named"]),
                port_bindings: Some(HashMap::from([(
                    "80/tcp".into(),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some("8080".into()),
                    }]),
                )])),
                ..Default::default()
            }),
            mounts: Some(vec![
                MountPoint {
                    typ: Some(MountPointTypeEnum::VOLUME),
                    name: Some("anon123".into()),
                    destination: Some("/data".into()),
                    rw: Some(true),
                    ..Default::default()
                },
                MountPoint {
                    typ: Some(MountPointTypeEnum::VOLUME),
                    name: Some("named".into()),
                    destination: Some("/named".into()),
                    rw: Some(true),
                    ..Default::default()
                },
            ]),
            network_settings: Some(NetworkSettings {
                networks: Some(HashMap::from([
                    (
                        "front".into(),
                        EndpointSettings {
                            aliases: strings(&["web", "0123456789ab"]),
                            ip_address: Some("172.20.0.5".into()),
                            network_id: Some("n1".into()),
                            ..Default::default()
                        },
                    ),
                    (
                        "back".into(),
                        EndpointSettings {
                            aliases: strings(&["api"]),
                            ..Default::default()
                        },
                    ),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn old_image() -> ImageConfig {
        ImageConfig {
            env: strings(&["PATH=/bin", "VERSION=1.0"]),
            labels: Some(HashMap::from([(
                "org.opencontainers.image.version".into(),
                "1.0".into(),
            )])),
            cmd: strings(&["sleep", "3600"]),
            entrypoint: strings(&["/bin/busybox"]),
            volumes: Some(HashMap::from([("/data".into(), HashMap::new())])),
            ..Default::default()
        }
    }

    #[test]
    fn image_defaults_go_and_user_settings_stay() {
        let spec = replacement(&old_container(), Some(&old_image()), "app:1.1", None);
        let body = spec.body;
        assert_eq!(body.image.as_deref(), Some("app:1.1"));
        assert_eq!(body.env, strings(&["MODE=prod"]));
        assert_eq!(
            body.labels,
            Some(HashMap::from([("team".into(), "web".into())]))
        );
        assert_eq!(body.cmd, None, "the image's CMD comes from the new image");
        assert_eq!(body.entrypoint, None);
        assert_eq!(body.working_dir.as_deref(), Some("/srv"), "set by the user");
        assert!(body.healthcheck.is_some(), "set by the user");
        assert_eq!(body.hostname, None, "derived from the old id");
        assert!(body.exposed_ports.unwrap().contains_key("80/tcp"));
        let host = body.host_config.unwrap();
        assert_eq!(
            host.binds,
            strings(&["/srv/conf:/conf:ro", "named:/named", "anon123:/data"]),
            "the anonymous volume is kept by name"
        );
        let networking = body.networking_config.unwrap().endpoints_config.unwrap();
        let front = &networking["front"];
        assert_eq!(front.aliases, strings(&["web"]), "the old id alias goes");
        assert_eq!(front.ip_address, None, "assigned, not configured");
        assert_eq!(spec.extra_networks.len(), 1);
        assert_eq!(spec.extra_networks[0].0, "back");
    }

    #[test]
    fn without_the_old_image_everything_is_copied() {
        let spec = replacement(&old_container(), None, "app:1.1", None);
        assert_eq!(
            spec.body.env,
            strings(&["PATH=/bin", "VERSION=1.0", "MODE=prod"])
        );
        assert_eq!(spec.body.cmd, strings(&["sleep", "3600"]));
    }

    #[test]
    fn a_shared_network_points_at_the_new_owner_and_drops_what_conflicts() {
        let mut old = old_container();
        if let Some(host) = old.host_config.as_mut() {
            host.network_mode = Some("container:aaaa".into());
            host.port_bindings = None;
        }
        if let Some(config) = old.config.as_mut() {
            config.hostname = Some("shared-host".into());
            config.exposed_ports = Some(HashMap::from([("9000/tcp".into(), HashMap::new())]));
        }
        let spec = replacement(&old, Some(&old_image()), "app:1.0", Some("bbbb"));
        let host = spec.body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("container:bbbb"));
        assert_eq!(spec.body.hostname, None);
        assert_eq!(spec.body.exposed_ports, None);
        assert!(spec.body.networking_config.is_none());
        assert!(spec.extra_networks.is_empty());
    }
}
