//! The capabilities lent to guests, one module each, the way Spin's factors
//! are built: each owns its state (held in [`crate::HostState`]) and its
//! allow-list, and implements its WIT imports. Time spent in a host import is
//! not charged to the guest's CPU budget.

mod http;
mod log;
mod oci;

pub use http::{read_capped, CappedReadError, HttpCapability};
pub use oci::{error_to_wit, OciCapability};

/// An error and its sources on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}
