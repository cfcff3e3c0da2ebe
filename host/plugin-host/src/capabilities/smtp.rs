//! `smtp`: mail through the one SMTP server configured for a trigger
//! instance. The host holds the server, its TLS, the credentials, the sender
//! and the recipients the instance may write to (its allow-list); the guest
//! only composes subject and body. Sent with lettre, one connection per
//! message (notifications are rare; a pooled connection would only go stale).

use std::fmt;
use std::time::{Duration, Instant};

use lettre::message::{header::ContentType, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{error_chain, pem_certificates};
use crate::bindings::trigger::crowsnest::plugin::smtp;
use crate::HostState;

/// How the connection to the server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which the server must offer (port 587).
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No TLS at all (a relay on the same host).
    None,
}

impl SmtpSecurity {
    /// The usual port for this kind of connection.
    pub fn default_port(self) -> u16 {
        match self {
            Self::StartTls => 587,
            Self::Tls => 465,
            Self::None => 25,
        }
    }
}

/// The SMTP server of one trigger instance, as configured.
#[derive(Clone)]
pub struct SmtpServer {
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// STARTTLS, TLS or none.
    pub security: SmtpSecurity,
    /// Username and password for SMTP AUTH, if the server wants them.
    pub credentials: Option<(String, String)>,
    /// Extra trusted CA certificates (PEM), besides the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// The sender, `Name <address>` or `address`.
    pub from: String,
    /// The recipients the instance may write to (all of them by default).
    pub to: Vec<String>,
    /// Limit for one message, connection to acceptance.
    pub timeout: Duration,
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.credentials.as_ref().map(|(user, _)| user))
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// A configured server rejected at start-up: the setting at fault and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SetupError {
    /// The setting of the server's table at fault (`from`, `to`, `ca`, ...).
    pub key: &'static str,
    /// Why.
    pub message: String,
}

impl SetupError {
    /// An error about `key`.
    pub fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }
}

/// The SMTP capability of one trigger instance.
#[derive(Clone)]
pub struct SmtpCapability {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    recipients: Vec<Mailbox>,
    /// `host:port`, for messages.
    server: String,
}

impl SmtpCapability {
    /// A capability sending through `server`; a bad address or certificate
    /// is reported here, naming its setting.
    pub fn new(server: &SmtpServer) -> Result<Self, SetupError> {
        let from: Mailbox = server
            .from
            .parse()
            .map_err(|err| SetupError::new("from", format!("`{}`: {err}", server.from)))?;
        if server.to.is_empty() {
            return Err(SetupError::new("to", "names no recipient"));
        }
        let recipients = server
            .to
            .iter()
            .map(|to| {
                to.parse::<Mailbox>()
                    .map_err(|err| SetupError::new("to", format!("`{to}`: {err}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tls = match server.security {
            SmtpSecurity::None => Tls::None,
            security => {
                let mut parameters = TlsParameters::builder(server.host.clone());
                if let Some(pem) = &server.ca_pem {
                    // Checked here: lettre takes a PEM without any certificate in it.
                    pem_certificates("ca", pem)?;
                    let certificate = Certificate::from_pem(pem).map_err(|err| {
                        SetupError::new("ca", format!("not a PEM certificate: {err}"))
                    })?;
                    parameters = parameters.add_root_certificate(certificate);
                }
                let parameters = parameters
                    .build()
                    .map_err(|err| SetupError::new("ca", error_chain(&err)))?;
                if security == SmtpSecurity::Tls {
                    Tls::Wrapper(parameters)
                } else {
                    Tls::Required(parameters)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&server.host)
            .port(server.port)
            .tls(tls)
            .timeout(Some(server.timeout));
        if let Some((username, password)) = &server.credentials {
            builder = builder.credentials(Credentials::new(username.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            recipients,
            server: format!("{}:{}", server.host, server.port),
        })
    }

    /// The recipients of `requested` (all configured ones when empty), each
    /// of which must be configured.
    fn recipients(&self, requested: &[String]) -> Result<Vec<Mailbox>, smtp::SmtpError> {
        if requested.is_empty() {
            return Ok(self.recipients.clone());
        }
        requested
            .iter()
            .map(|wanted| {
                let parsed: Mailbox = wanted.parse().map_err(|err| {
                    smtp::SmtpError::InvalidMessage(format!("recipient `{wanted}`: {err}"))
                })?;
                self.recipients
                    .iter()
                    .find(|allowed| allowed.email == parsed.email)
                    .cloned()
                    .ok_or_else(|| {
                        smtp::SmtpError::NotAllowed(format!(
                            "recipient `{}` is not one of this trigger's configured recipients",
                            parsed.email
                        ))
                    })
            })
            .collect()
    }

    async fn send(&self, mail: smtp::Mail) -> Result<(), smtp::SmtpError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(one_line(&mail.subject));
        for recipient in self.recipients(&mail.to)? {
            builder = builder.to(recipient);
        }
        let message = match mail.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(mail.text, html)),
            None => builder.header(ContentType::TEXT_PLAIN).body(mail.text),
        }
        .map_err(|err| smtp::SmtpError::InvalidMessage(err.to_string()))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(err) if err.is_permanent() || err.is_transient() => {
                Err(smtp::SmtpError::Rejected(smtp::SmtpRejection {
                    message: format!("{}: {}", self.server, error_chain(&err)),
                    permanent: err.is_permanent(),
                }))
            }
            Err(err) => Err(smtp::SmtpError::Transport(format!(
                "{}: {}",
                self.server,
                error_chain(&err)
            ))),
        }
    }
}

/// A subject on one line: a template may render line breaks, a header cannot hold them.
fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl smtp::Host for HostState {
    async fn send(&mut self, message: smtp::Mail) -> Result<(), smtp::SmtpError> {
        let Some(capability) = self.capabilities.smtp.clone() else {
            return Err(smtp::SmtpError::NotAllowed(
                "no SMTP server is configured for this trigger ([triggers.NAME.smtp])".into(),
            ));
        };
        let started = Instant::now();
        let result = capability.send(message).await;
        self.clock.add_host_time(started.elapsed());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> SmtpServer {
        SmtpServer {
            host: "127.0.0.1".into(),
            port: 2525,
            security: SmtpSecurity::None,
            credentials: None,
            ca_pem: None,
            from: "crowsnest <crowsnest@example.test>".into(),
            to: vec!["ops@example.test".into(), "Dev <dev@example.test>".into()],
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn recipients_must_be_configured() {
        let smtp = SmtpCapability::new(&server()).unwrap();
        assert_eq!(smtp.recipients(&[]).unwrap().len(), 2);
        let chosen = smtp.recipients(&["dev@example.test".into()]).unwrap();
        assert_eq!(chosen[0].to_string(), "Dev <dev@example.test>");
        assert!(matches!(
            smtp.recipients(&["boss@example.test".into()]),
            Err(smtp::SmtpError::NotAllowed(_))
        ));
        assert!(matches!(
            smtp.recipients(&["not an address".into()]),
            Err(smtp::SmtpError::InvalidMessage(_))
        ));
    }

    #[test]
    fn bad_settings_name_their_key() {
        let cases = [
            (
                SmtpServer {
                    from: "nobody".into(),
                    ..server()
                },
                "from",
            ),
            (
                SmtpServer {
                    to: vec![],
                    ..server()
                },
                "to",
            ),
            (
                SmtpServer {
                    to: vec!["a@b".into(), "@@".into()],
                    ..server()
                },
                "to",
            ),
            (
                SmtpServer {
                    security: SmtpSecurity::Tls,
                    ca_pem: Some(b"not pem".to_vec()),
                    ..server()
                },
                "ca",
            ),
        ];
        for (server, key) in cases {
            match SmtpCapability::new(&server) {
                Err(err) => assert_eq!(err.key, key, "{err}"),
                Ok(_) => panic!("{server:?} accepted"),
            }
        }
    }

    #[test]
    fn subjects_are_one_line() {
        assert_eq!(one_line("New tag\r\n for web \n"), "New tag for web");
    }
}
