//! The data of one plugin instance's `Store`: its label, limits and CPU
//! clock, and the state of each capability lent to it. A capability that is
//! `None` is not lent: its imports answer "not allowed".

use std::sync::Arc;

use crate::bindings::registry::crowsnest::plugin::{registry_types, types};
use crate::capabilities::{
    GrantCache, HttpCapability, MqttCapability, OciCapability, SmtpCapability,
};
use crate::limits::{GuardedLimits, GuestClock, SandboxLimits};
use crate::secrets::Secrets;

/// What one plugin instance is lent, each capability with its own state.
#[derive(Clone, Default)]
pub struct Capabilities {
    /// Raw HTTP to the hosts of its allow-list.
    pub http: Option<HttpCapability>,
    /// The host's OCI distribution client, restricted to the same allow-list.
    pub oci: Option<OciCapability>,
    /// The SMTP server of a trigger instance (`[triggers.NAME.smtp]`).
    pub smtp: Option<SmtpCapability>,
    /// The MQTT broker of a trigger instance (`[triggers.NAME.mqtt]`).
    pub mqtt: Option<MqttCapability>,
    /// Vendor credentials obtained by token exchanges, kept until they
    /// expire; shared by the copies of one instance (a fresh one per spec).
    pub grants: GrantCache,
    /// The instance's secret setting values, scrubbed from its log lines.
    /// Not a capability, but it travels with them into every store.
    pub secrets: Arc<Secrets>,
}

/// The data of one plugin instance's `Store`.
pub struct HostState {
    /// Plugin instance label used in logs and errors, e.g. `oci (registry local)`.
    pub label: Arc<str>,
    /// Memory/table limits.
    pub limits: GuardedLimits,
    /// CPU accounting for the running call.
    pub clock: GuestClock,
    /// What this instance is lent.
    pub capabilities: Capabilities,
    sandbox: SandboxLimits,
}

impl HostState {
    /// Fresh state for a new store.
    pub fn new(label: Arc<str>, sandbox: SandboxLimits, capabilities: Capabilities) -> Self {
        Self {
            label,
            limits: GuardedLimits::new(sandbox.memory_bytes),
            clock: GuestClock::default(),
            capabilities,
            sandbox,
        }
    }

    /// Limits this state was built with.
    pub fn sandbox(&self) -> &SandboxLimits {
        &self.sandbox
    }
}

impl types::Host for HostState {}
impl registry_types::Host for HostState {}
