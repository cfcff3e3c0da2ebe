//! Mail through the SMTP server the host is configured with for this trigger
//! instance (`[triggers.NAME.smtp]`): the host holds server, TLS,
//! credentials, sender and the allowed recipients; the plugin composes.

pub use crowsnest_plugin_world_trigger::crowsnest::plugin::smtp::{Mail, SmtpError, SmtpRejection};

use crowsnest_plugin_world_trigger::crowsnest::plugin::smtp as wit_smtp;

/// Sends `mail` and waits for the server to accept it. Outside wasm there is
/// no host: every message fails with [`SmtpError::Transport`].
pub fn send(mail: &Mail) -> Result<(), SmtpError> {
    if !cfg!(target_arch = "wasm32") {
        return Err(SmtpError::Transport(
            "no crowsnest host outside wasm: SMTP is only available to the component".into(),
        ));
    }
    wit_smtp::send(mail)
}

/// The error in words.
pub fn describe(error: &SmtpError) -> String {
    match error {
        SmtpError::NotAllowed(detail) => format!("not allowed: {detail}"),
        SmtpError::InvalidMessage(detail) => format!("invalid message: {detail}"),
        SmtpError::Rejected(rejection) => format!("rejected: {}", rejection.message),
        SmtpError::Transport(detail) => format!("transport error: {detail}"),
    }
}
