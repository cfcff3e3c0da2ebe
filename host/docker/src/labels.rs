//! The crowsnest options a container carries in its labels: `crowsnest.*`,
//! with What's Up Docker's `wud.*` twins accepted (the `crowsnest.*` label wins).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Prefix of the labels crowsnest reads.
const LABEL_PREFIX: &str = "crowsnest.";

/// Prefix of What's Up Docker's labels, accepted as lower-priority twins.
const WUD_LABEL_PREFIX: &str = "wud.";

/// Watchtower's opt-in/opt-out label, accepted as an alias of `crowsnest.update`.
pub const WATCHTOWER_ENABLE_LABEL: &str = "com.centurylinklabs.watchtower.enable";

/// crowsnest options a container carries in its labels (`crowsnest.*`, or the `wud.*` twin).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOptions {
    /// `crowsnest.watch`: explicit opt-in / opt-out.
    pub watch: Option<bool>,
    /// `crowsnest.watch.digest`: also compare digests for this container.
    pub watch_digest: Option<bool>,
    /// `crowsnest.tag.include`: regex a candidate tag must match.
    pub tag_include: Option<String>,
    /// `crowsnest.tag.exclude`: regex a candidate tag must not match.
    pub tag_exclude: Option<String>,
    /// `crowsnest.tag.transform`: `REGEX => $1.$2` rewrite before comparing.
    pub tag_transform: Option<String>,
    /// `crowsnest.strategy`: name of the versioning strategy plugin.
    pub strategy: Option<String>,
    /// `crowsnest.strategy.regex`: parameter of the regex strategy.
    pub strategy_regex: Option<String>,
    /// `crowsnest.registry.lookup.image`: image to look up instead of the deployed one.
    pub registry_lookup_image: Option<String>,
    /// `crowsnest.link.template`: template of the release-notes link.
    pub link_template: Option<String>,
    /// `crowsnest.display.name`: name shown instead of the container name.
    pub display_name: Option<String>,
    /// `crowsnest.trigger.include`: triggers allowed for this container.
    pub trigger_include: Option<String>,
    /// `crowsnest.trigger.exclude`: triggers never run for this container.
    pub trigger_exclude: Option<String>,
    /// `crowsnest.update` (Watchtower's `com.centurylinklabs.watchtower.enable`
    /// accepted): explicit opt-in / opt-out of update actions.
    #[serde(default)]
    pub update: Option<bool>,
}

impl ContainerOptions {
    /// Reads the options from a container's labels. The `crowsnest.*` label wins
    /// over its `wud.*` twin. Returns the options and one message per label whose
    /// value could not be understood (that option is then left unset).
    pub fn from_labels(labels: &BTreeMap<String, String>) -> (Self, Vec<String>) {
        let mut problems = Vec::new();
        let text = |suffix: &str| label_value(labels, suffix).map(|(_, value)| value.to_owned());
        let mut flag = |suffix: &str| {
            let (key, value) = label_value(labels, suffix)?;
            let parsed = parse_bool(value);
            if parsed.is_none() {
                problems.push(format!(
                    "label `{key}`: expected true or false, got `{value}`"
                ));
            }
            parsed
        };
        let watch = flag("watch");
        let watch_digest = flag("watch.digest");
        let mut update = flag("update");
        if update.is_none() {
            if let Some(value) = labels.get(WATCHTOWER_ENABLE_LABEL) {
                update = parse_bool(value);
                if update.is_none() {
                    problems.push(format!(
                        "label `{WATCHTOWER_ENABLE_LABEL}`: expected true or false, got `{value}`"
                    ));
                }
            }
        }
        let options = Self {
            watch,
            watch_digest,
            tag_include: text("tag.include"),
            tag_exclude: text("tag.exclude"),
            tag_transform: text("tag.transform"),
            strategy: text("strategy"),
            strategy_regex: text("strategy.regex"),
            registry_lookup_image: text("registry.lookup.image"),
            link_template: text("link.template"),
            display_name: text("display.name"),
            trigger_include: text("trigger.include"),
            trigger_exclude: text("trigger.exclude"),
            update,
        };
        (options, problems)
    }
}

/// The label (key, value) for `suffix`: `crowsnest.SUFFIX` if present, else `wud.SUFFIX`.
fn label_value<'a>(
    labels: &'a BTreeMap<String, String>,
    suffix: &str,
) -> Option<(&'a str, &'a str)> {
    [LABEL_PREFIX, WUD_LABEL_PREFIX].iter().find_map(|prefix| {
        labels
            .get_key_value(&format!("{prefix}{suffix}"))
            .map(|(key, value)| (key.as_str(), value.as_str()))
    })
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Some(true),
        "false" | "no" | "0" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn crowsnest_label_wins_over_wud_twin() {
        let (options, problems) = ContainerOptions::from_labels(&labels(&[
            ("wud.tag.include", "^wud$"),
            ("crowsnest.tag.include", "^cn$"),
            ("wud.tag.exclude", "rc"),
            ("wud.watch", "false"),
        ]));
        assert!(problems.is_empty());
        assert_eq!(options.tag_include.as_deref(), Some("^cn$"));
        assert_eq!(options.tag_exclude.as_deref(), Some("rc"));
        assert_eq!(options.watch, Some(false));
        assert_eq!(options.strategy, None);
    }

    #[test]
    fn update_label_with_watchtower_alias() {
        let read = |pairs: &[(&str, &str)]| ContainerOptions::from_labels(&labels(pairs));
        assert_eq!(read(&[]).0.update, None);
        assert_eq!(
            read(&[(WATCHTOWER_ENABLE_LABEL, "false")]).0.update,
            Some(false)
        );
        assert_eq!(read(&[("wud.update", "true")]).0.update, Some(true));
        assert_eq!(
            read(&[
                ("crowsnest.update", "true"),
                (WATCHTOWER_ENABLE_LABEL, "false")
            ])
            .0
            .update,
            Some(true),
            "the crowsnest label wins"
        );
        let (options, problems) = read(&[(WATCHTOWER_ENABLE_LABEL, "sometimes")]);
        assert_eq!(options.update, None);
        assert!(
            problems[0].contains(WATCHTOWER_ENABLE_LABEL),
            "{problems:?}"
        );
    }

    #[test]
    fn bad_boolean_label_is_reported_and_ignored() {
        let (options, problems) =
            ContainerOptions::from_labels(&labels(&[("crowsnest.watch.digest", "perhaps")]));
        assert_eq!(options.watch_digest, None);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("crowsnest.watch.digest"),
            "{problems:?}"
        );
    }
}
