//! `crowsnest plugins test NAME --image REF`: one registry instance's
//! matches / locate / credentials / list-tags / resolve for one image, each
//! step with its outcome, for a user whose private registry does not work.

use crowsnest_oci::reference::ImageReference;
use crowsnest_plugin_host::registry::{Auth, ImageRef};

use super::registries::RegistrySet;
use crowsnest_plugin_host::component::MASK;

/// One step of a probe and what it gave.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeStep {
    /// `matches`, `locate`, `credentials`, `list-tags`, `resolve`.
    pub step: &'static str,
    /// Whether the step succeeded.
    pub ok: bool,
    /// What it gave, or why it failed (secrets masked).
    pub detail: String,
}

impl ProbeStep {
    fn new(step: &'static str, outcome: Result<String, String>) -> Self {
        let ok = outcome.is_ok();
        Self {
            step,
            ok,
            detail: outcome.unwrap_or_else(|err| err),
        }
    }
}

/// Credentials as they may be shown.
fn shown(auth: &Auth) -> String {
    match auth {
        Auth::Anonymous => "anonymous".into(),
        Auth::Basic((user, _)) => format!("basic, user `{user}`, password {MASK}"),
        Auth::Bearer(_) => format!("bearer token {MASK}"),
    }
}

/// Runs the steps for `image` on the instance `name`, stopping at the first failure.
pub(super) async fn probe(
    registries: &RegistrySet,
    name: &str,
    image: &ImageReference,
) -> Vec<ProbeStep> {
    let Some(instance) = registries.configured().iter().find(|i| i.name == name) else {
        let names: Vec<&str> = registries
            .configured()
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        return vec![ProbeStep::new(
            "matches",
            Err(format!(
                "no registry instance `{name}` (configured: {})",
                names.join(", ")
            )),
        )];
    };
    let plugin = &instance.plugin;
    let written = ImageRef {
        domain: image.domain_as_written().to_string(),
        path: image.written_path().to_string(),
        tag: image.tag().map(str::to_string),
        digest: image.digest().map(str::to_string),
    };
    let mut steps = Vec::new();
    let matched = match plugin.matches(&written).await {
        Ok(Some(priority)) => Ok(format!(
            "`{}` ({}) serves `{}` with priority {priority}",
            instance.name,
            plugin.plugin(),
            written.domain
        )),
        Ok(None) => Err(format!(
            "`{}` ({}) does not serve `{}`: another registry would look it up",
            instance.name,
            plugin.plugin(),
            written.domain
        )),
        Err(err) => Err(err.to_string()),
    };
    steps.push(ProbeStep::new("matches", matched));
    let location = plugin.locate(&written).await.map_err(|err| err.to_string());
    steps.push(ProbeStep::new(
        "locate",
        location
            .as_ref()
            .map(|l| {
                format!(
                    "{} (repository `{}` on {})",
                    l.display, l.repository, l.registry_url
                )
            })
            .map_err(Clone::clone),
    ));
    let Ok(location) = location else { return steps };
    let credentials = plugin.credentials(&location).await;
    steps.push(ProbeStep::new(
        "credentials",
        credentials.as_ref().map(shown).map_err(ToString::to_string),
    ));
    if credentials.is_err() {
        return steps;
    }
    let tags = plugin.list_tags(&location).await;
    steps.push(ProbeStep::new(
        "list-tags",
        tags.as_ref()
            .map(|tags| {
                let last: Vec<&str> = tags.iter().rev().take(10).map(String::as_str).collect();
                format!("{} tags (last: {})", tags.len(), last.join(", "))
            })
            .map_err(ToString::to_string),
    ));
    if tags.is_err() {
        return steps;
    }
    let reference = image.digest().or(image.tag()).unwrap_or("latest");
    let resolved = plugin.resolve(&location, reference, None, false).await;
    steps.push(ProbeStep::new(
        "resolve",
        resolved
            .map(|info| format!("`{reference}` is {} ({})", info.digest, info.media_type))
            .map_err(|err| err.to_string()),
    ));
    steps
}
