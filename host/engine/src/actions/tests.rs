//! Which container an action takes: labels, opt-in, threshold, window.

use std::collections::BTreeMap;

use chrono::TimeZone;

use crowsnest_config::{ActionConfig, Threshold};
use crowsnest_model::{ContainerObject, ErrorInfo, ImageInfo, UpdateKindInfo};

use super::{ConfiguredAction, RunOrigin};

fn container(labels: &[(&str, &str)], semver_diff: Option<&str>) -> ContainerObject {
    ContainerObject {
        id: "c1".into(),
        name: "web".into(),
        display_name: "web".into(),
        status: "running".into(),
        watcher: "local".into(),
        image: ImageInfo {
            id: "sha256:1".into(),
            registry: Default::default(),
            name: "team/app".into(),
            tag: Default::default(),
            digest: Default::default(),
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
            created: None,
            reference: "team/app:1.0".into(),
        },
        result: None,
        update_available: true,
        update_kind: Some(UpdateKindInfo {
            kind: "tag".into(),
            local_value: Some("1.0".into()),
            remote_value: Some("2.0".into()),
            semver_diff: semver_diff.map(str::to_owned),
        }),
        error: None,
        labels: labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        kind: None,
        owner: None,
        check: crowsnest_model::CheckInfo::new(crowsnest_model::CheckStatus::Update),
    }
}

fn action(config: ActionConfig) -> ConfiguredAction {
    ConfiguredAction::new("nightly", config).unwrap()
}

#[test]
fn labels_opt_in_and_threshold_decide() {
    let all = action(ActionConfig::default());
    let cases: Vec<(&str, ContainerObject, bool, Option<&str>)> = vec![
        (
            "plain container",
            container(&[], Some("major")),
            false,
            None,
        ),
        (
            "opted out",
            container(&[("crowsnest.update", "false")], None),
            false,
            Some("opted out"),
        ),
        (
            "opted out through Watchtower's label",
            container(&[("com.centurylinklabs.watchtower.enable", "false")], None),
            false,
            Some("opted out"),
        ),
        (
            "an old container set aside",
            ContainerObject {
                name: "web-crowsnest-old-0123456789ab".into(),
                ..container(&[], None)
            },
            false,
            Some("kept aside"),
        ),
        (
            "no update",
            ContainerObject {
                update_available: false,
                ..container(&[], None)
            },
            false,
            Some("no update"),
        ),
        (
            "failed check",
            ContainerObject {
                error: Some(ErrorInfo {
                    message: "registry down".into(),
                }),
                ..container(&[], None)
            },
            false,
            Some("registry down"),
        ),
    ];
    for (what, container, explicit, expected) in &cases {
        let refusal = all.refusal(container, *explicit);
        match (expected, &refusal) {
            (None, None) => {}
            (Some(part), Some(reason)) if reason.contains(part) => {}
            _ => panic!("{what}: expected {expected:?}, got {refusal:?}"),
        }
    }

    let opt_in = action(ActionConfig {
        opt_in: true,
        ..ActionConfig::default()
    });
    assert!(opt_in.refusal(&container(&[], None), false).is_some());
    assert_eq!(
        opt_in.refusal(&container(&[("crowsnest.update", "true")], None), false),
        None
    );
    assert_eq!(
        opt_in.refusal(
            &container(&[("com.centurylinklabs.watchtower.enable", "true")], None),
            false
        ),
        None
    );

    let patch_only = action(ActionConfig {
        threshold: Threshold::Patch,
        ..ActionConfig::default()
    });
    let major = container(&[], Some("major"));
    assert!(patch_only
        .refusal(&major, false)
        .is_some_and(|reason| reason.contains("below the threshold")));
    assert_eq!(
        patch_only.refusal(&major, true),
        None,
        "asked for one container: no threshold"
    );
    assert_eq!(
        patch_only.refusal(&container(&[], Some("patch")), false),
        None
    );
}

#[test]
fn automatic_runs_need_auto_and_the_window() {
    let saturday_night = chrono::Local
        .with_ymd_and_hms(2025, 6, 14, 3, 30, 12)
        .unwrap();
    let monday_noon = chrono::Local
        .with_ymd_and_hms(2025, 6, 16, 12, 0, 0)
        .unwrap();
    let manual = action(ActionConfig::default());
    assert!(!manual.in_scope(RunOrigin::Automatic, saturday_night));
    assert!(manual.in_scope(RunOrigin::Api, monday_noon));
    let windowed = action(ActionConfig {
        auto: true,
        window: Some("* 2-4 * * SAT,SUN".into()),
        ..ActionConfig::default()
    });
    assert!(windowed.in_scope(RunOrigin::Automatic, saturday_night));
    assert!(!windowed.in_scope(RunOrigin::Automatic, monday_noon));
    assert!(
        windowed.in_scope(RunOrigin::Api, monday_noon),
        "the API ignores the window"
    );
    assert!(ConfiguredAction::new(
        "bad",
        ActionConfig {
            window: Some("not cron".into()),
            ..ActionConfig::default()
        }
    )
    .is_err());
}
