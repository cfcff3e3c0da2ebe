//! `semver`: the default version strategy. Same-shape tags (prefix, part
//! count, separator, suffix) compared part by part; see `versioning::semver`.

/// The semver strategy; it takes no settings.
pub struct Semver;

crowsnest_strategy_glue::settingless_strategy!(
    Semver,
    name: "semver",
    description: "Versions of the same shape as the current tag, compared part by part",
    choose: versioning::semver::choose,
);

crowsnest_plugin_sdk::export_strategy!(Semver);
