//! The typed handle of each world the rest of the host calls: a configured
//! registry provider, version strategy or trigger, each backed by an
//! instance pool, each validating what its guest returns.

pub mod registry;
pub mod strategy;
pub mod trigger;
pub mod validate;
