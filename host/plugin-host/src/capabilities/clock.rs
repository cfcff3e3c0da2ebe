//! `clock`: the host's wall clock, for what a plugin must date (Matrix
//! transaction ids, JWT `iat`/`exp`, SigV4 dates, token expiry). Reading it needs no grant: a plugin learns
//! nothing from the time it could not learn from the HTTP `Date` header.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::bindings::registry::crowsnest::plugin::clock;
use crate::HostState;

impl clock::Host for HostState {
    async fn now(&mut self) -> clock::Instant {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        clock::Instant {
            seconds: since_epoch.as_secs(),
            nanoseconds: since_epoch.subsec_nanos(),
        }
    }
}
