//! The capabilities lent to guests, one module each, the way Spin's factors
//! are built: each owns its state (held in [`crate::HostState`]) and its
//! allow-list, and implements its WIT imports. Time spent in a host import is
//! not charged to the guest's CPU budget.
//!
//! `log` and `clock` are lent to every world that imports them, the grant
//! cache to every registry instance; `http`,
//! `oci`, `smtp` and `mqtt` only when the instance is configured with them.

mod clock;
mod grants;
mod http;
mod log;
pub mod mqtt;
mod oci;
pub mod smtp;

pub use grants::GrantCache;
pub use http::{read_capped, CappedReadError, HttpCapability};
pub use mqtt::{MqttBroker, MqttCapability};
pub use oci::{auth_from_wit, error_to_wit, OciCapability};
pub use smtp::{SetupError, SmtpCapability, SmtpSecurity, SmtpServer};

/// The certificates of a PEM file (setting `key`), at least one.
pub(crate) fn pem_certificates(
    key: &'static str,
    pem: &[u8],
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, SetupError> {
    use rustls::pki_types::pem::PemObject;
    let certificates = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| SetupError::new(key, format!("not a PEM certificate: {err}")))?;
    if certificates.is_empty() {
        return Err(SetupError::new(key, "holds no PEM certificate"));
    }
    Ok(certificates)
}

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
