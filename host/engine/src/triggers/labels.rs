//! What a container's `crowsnest.trigger.include/exclude` labels say about
//! one trigger.

use crowsnest_config::Threshold;
use crowsnest_docker::ContainerOptions;

/// What a container's `crowsnest.trigger.include/exclude` labels say about one trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelVerdict {
    /// Not allowed for this container.
    Excluded,
    /// Allowed, with the trigger's own threshold or the label's override.
    Allowed(Option<Threshold>),
}

/// Applies the container's trigger labels to trigger `name` (plugin `plugin`).
pub fn label_verdict(options: &ContainerOptions, name: &str, plugin: &str) -> LabelVerdict {
    let qualified = format!("{plugin}.{name}");
    let entries = |list: &Option<String>| -> Vec<(String, Option<String>)> {
        list.as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| match entry.split_once(':') {
                Some((trigger, threshold)) => (
                    trigger.trim().to_ascii_lowercase(),
                    Some(threshold.trim().to_owned()),
                ),
                None => (entry.to_ascii_lowercase(), None),
            })
            .collect()
    };
    let names_this = |trigger: &str| {
        trigger == name.to_ascii_lowercase() || trigger == qualified.to_ascii_lowercase()
    };
    if entries(&options.trigger_exclude)
        .iter()
        .any(|(trigger, _)| names_this(trigger))
    {
        return LabelVerdict::Excluded;
    }
    if options.trigger_include.is_none() {
        return LabelVerdict::Allowed(None);
    }
    match entries(&options.trigger_include)
        .into_iter()
        .find(|(trigger, _)| names_this(trigger))
    {
        Some((_, threshold)) => LabelVerdict::Allowed(threshold.and_then(|t| t.parse().ok())),
        None => LabelVerdict::Excluded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_include_exclude_and_override_threshold() {
        let options = |include: Option<&str>, exclude: Option<&str>| ContainerOptions {
            trigger_include: include.map(str::to_owned),
            trigger_exclude: exclude.map(str::to_owned),
            ..Default::default()
        };
        assert_eq!(
            label_verdict(&options(None, None), "ops", "webhook"),
            LabelVerdict::Allowed(None)
        );
        assert_eq!(
            label_verdict(&options(None, Some("ops")), "ops", "webhook"),
            LabelVerdict::Excluded
        );
        assert_eq!(
            label_verdict(&options(Some("other"), None), "ops", "webhook"),
            LabelVerdict::Excluded
        );
        assert_eq!(
            label_verdict(
                &options(Some("other, webhook.ops:major-only"), None),
                "ops",
                "webhook"
            ),
            LabelVerdict::Allowed(Some(Threshold::MajorOnly))
        );
        assert_eq!(
            label_verdict(&options(Some("ops"), Some("webhook.ops")), "ops", "webhook"),
            LabelVerdict::Excluded,
            "exclude wins"
        );
    }
}
