//! `email`: mails the message through the SMTP server configured for the
//! trigger (`[triggers.NAME.smtp]`: server, TLS, credentials, sender,
//! recipients are the host's). Subject = title; a plain-text part with the
//! body, and an HTML alternative with the body and a table of the updates.

use crowsnest_plugin_sdk::smtp::{self, Mail, SmtpError};
use crowsnest_plugin_sdk::trigger::{Delivery, DeliveryError, Message, Trigger};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// One configured mail notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    to: Vec<String>,
    html: bool,
}

/// `text` safe inside HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Email {
    fn html(message: &Message, delivery: Delivery<'_>) -> String {
        let mut html = format!(
            "<!DOCTYPE html><html><body><h2>{}</h2><p>{}</p>",
            escape(&message.title),
            escape(&message.body).replace('\n', "<br>")
        );
        html.push_str("<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\"><tr><th>Container</th><th>Image</th><th>Current</th><th>Available</th></tr>");
        for event in delivery.events() {
            let available = match &event.link {
                Some(link) => format!(
                    "<a href=\"{}\">{}</a>",
                    escape(link),
                    escape(&event.remote_value)
                ),
                None => escape(&event.remote_value),
            };
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{available}</td></tr>",
                escape(&event.display_name),
                escape(&event.image),
                escape(&event.local_value),
            ));
        }
        html.push_str("</table></body></html>");
        html
    }
}

/// What the host's SMTP client reported, with whether to try again.
fn failure(error: &SmtpError) -> DeliveryError {
    let message = format!("email: {}", smtp::describe(error));
    match error {
        SmtpError::Rejected(rejection) if !rejection.permanent => DeliveryError::retryable(message),
        SmtpError::Transport(_) => DeliveryError::retryable(message),
        _ => DeliveryError::permanent(message),
    }
}

impl Trigger for Email {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "email",
            env!("CARGO_PKG_VERSION"),
            "Mails updates through the trigger's SMTP server",
        )
        .key(ConfigKey::optional(
            "to",
            "Only these of the server's configured recipients, an array",
        ))
        .key(ConfigKey::optional(
            "html",
            "Add an HTML alternative (default true)",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            to: settings.string_list("to")?,
            html: settings.bool_or("html", true)?,
        })
    }

    fn deliver(&self, message: &Message, delivery: Delivery<'_>) -> Result<(), DeliveryError> {
        let mail = Mail {
            to: self.to.clone(),
            subject: message.title.clone(),
            text: message.body.clone(),
            html: self.html.then(|| Self::html(message, delivery)),
        };
        smtp::send(&mail).map_err(|err| failure(&err))
    }
}

crowsnest_plugin_sdk::export_trigger!(Email);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::smtp::SmtpRejection;
    use crowsnest_plugin_sdk::trigger::configure_from;
    use crowsnest_plugin_sdk::trigger::testing::{event, message};

    #[test]
    fn html_alternative_escapes_and_lists_updates() {
        let html = Email::html(
            &message("New <tag>", "a & b\nc"),
            Delivery::Batch(&[event("web"), event("db")]),
        );
        assert!(
            html.contains("<h2>New &lt;tag&gt;</h2><p>a &amp; b<br>c</p>"),
            "{html}"
        );
        assert!(html.contains("<td>web</td>") && html.contains("<td>db</td>"));
        assert!(html.contains("<a href=\"https://example.test/releases/1.26\">1.26</a>"));
    }

    #[test]
    fn rejections_say_whether_to_retry() {
        let rejected = |permanent| {
            SmtpError::Rejected(SmtpRejection {
                message: "550".into(),
                permanent,
            })
        };
        assert!(!failure(&rejected(true)).retryable);
        assert!(failure(&rejected(false)).retryable);
        assert!(failure(&SmtpError::Transport("refused".into())).retryable);
        assert!(!failure(&SmtpError::NotAllowed("x".into())).retryable);
        let email: Email =
            configure_from([("to", r#"["ops@example.test"]"#), ("html", "false")]).unwrap();
        assert_eq!(
            email,
            Email {
                to: vec!["ops@example.test".into()],
                html: false
            }
        );
    }
}
