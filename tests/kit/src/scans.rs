//! Scan requests, and the checks every scan test makes on their results.

use crowsnest_model::{ContainerObject, ScanReport, ScanRequest};

/// A scan request limited to `patterns` (none: every container).
pub fn images(patterns: &[&str]) -> ScanRequest {
    ScanRequest {
        images: patterns.iter().map(|p| p.to_string()).collect(),
        ..ScanRequest::default()
    }
}

/// The container `id` in a report; panics listing what is there otherwise.
pub fn container<'a>(report: &'a ScanReport, id: &str) -> &'a ContainerObject {
    find(&report.containers, id)
}

/// The container `id` in a list of container objects.
pub fn find<'a>(containers: &'a [ContainerObject], id: &str) -> &'a ContainerObject {
    containers.iter().find(|c| c.id == id).unwrap_or_else(|| {
        let names: Vec<(&str, &str)> = containers
            .iter()
            .map(|c| (c.name.as_str(), c.image.reference.as_str()))
            .collect();
        panic!("container {id} not in the scan result: {names:?}")
    })
}

/// `object` was checked without error and is offered the tag `to` over its
/// tag `from`, a `diff` (`major`, `minor`, …) update.
pub fn assert_tag_update(object: &ContainerObject, from: &str, to: &str, diff: &str) {
    assert!(
        object.error.is_none(),
        "{}: {from} -> {to}: unexpected error {:?}",
        object.name,
        object.error
    );
    let kind = object.update_kind.as_ref().unwrap_or_else(|| {
        panic!(
            "{}: {from}: expected the offer {to}, got none: {object:#?}",
            object.name
        )
    });
    assert!(object.update_available, "{}: {object:#?}", object.name);
    assert_eq!(kind.kind, "tag", "{from} -> {to}");
    assert_eq!(kind.local_value.as_deref(), Some(from));
    assert_eq!(
        kind.remote_value.as_deref(),
        Some(to),
        "{from}: wrong offer"
    );
    assert_eq!(kind.semver_diff.as_deref(), Some(diff), "{from} -> {to}");
    assert_eq!(
        object.result.as_ref().and_then(|r| r.tag.as_deref()),
        Some(to)
    );
}

/// `object` was checked without error and has no update.
pub fn assert_no_update(object: &ContainerObject) {
    assert!(
        object.error.is_none(),
        "{}: unexpected error {:?}",
        object.name,
        object.error
    );
    assert!(
        !object.update_available,
        "{}: unexpected update {:?}",
        object.name, object.update_kind
    );
    assert!(object.update_kind.is_none());
}

/// How [`assert_failed`] compares the words with the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// Exactly as written.
    Sensitive,
    /// Ignoring case.
    Insensitive,
}

/// `object`'s check failed with an error naming every one of `words`, and
/// nothing is offered for it.
pub fn assert_failed(object: &ContainerObject, words: &[&str], case: Case) {
    assert!(
        !object.update_available,
        "{}: a failed check must not offer an update",
        object.name
    );
    assert!(object.update_kind.is_none());
    let message = &object
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("{}: expected an error, got {object:#?}", object.name))
        .message;
    let fold = |text: &str| match case {
        Case::Sensitive => text.to_owned(),
        Case::Insensitive => text.to_lowercase(),
    };
    for word in words {
        assert!(
            fold(message).contains(&fold(word)),
            "error {message:?} does not name {word:?}"
        );
    }
}

/// The container objects `crowsnest scan --format json` printed on `stdout`.
pub fn json_containers(stdout: &[u8]) -> Vec<serde_json::Value> {
    serde_json::from_slice(stdout).unwrap_or_else(|error| {
        panic!(
            "scan --format json prints an array ({error}): {}",
            String::from_utf8_lossy(stdout)
        )
    })
}

/// The container `id` among `containers`; panics listing them otherwise.
pub fn json_container<'a>(containers: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    containers
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("container {id} not in the scan: {containers:#?}"))
}
