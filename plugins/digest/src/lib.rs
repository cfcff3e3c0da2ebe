//! `digest`: never offers another tag; watches the current tag's digest.

/// The digest strategy; it takes no settings.
pub struct DigestOnly;

crowsnest_strategy_glue::settingless_strategy!(
    DigestOnly,
    name: "digest",
    description: "Watches the digest of the current tag only",
    choose: versioning::digest::choose,
);

crowsnest_plugin_sdk::export_strategy!(DigestOnly);
