//! Triggers (`trigger` world, cargo feature `trigger`): deliver update events.
//!
//! Implement [`Trigger`] and export it with [`export_trigger!`](crate::export_trigger).
//! The host renders each delivery's [`Message`] (title and body) from the
//! trigger's templates, escaping values for the plugin's [`TextFormat`]; the
//! plugin only shapes it for its service. Triggers may use [`crate::http`],
//! [`crate::log`], [`crate::clock`], [`crate::smtp`] and [`crate::mqtt`]; a
//! failure is a [`DeliveryError`] saying whether and when to try again, which
//! the host's retries honour ([`check_status`] and [`http_failure`] build it
//! from an HTTP exchange).

use std::fmt;
use std::marker::PhantomData;

use crate::http::{HttpError, Request, Response};
use crate::{ConfigError, PluginInfo, Settings};

/// Generated bindings of the world.
#[doc(hidden)]
pub use crowsnest_plugin_world_trigger as bindings;

pub use bindings::exports::crowsnest::plugin::notifier::{Message, TextFormat, UpdateEvent};

use bindings::exports::crowsnest::plugin::notifier;

crate::world::impl_world_glue!(
    types: crate::trigger::bindings::crowsnest::plugin::types,
    meta_guest: bindings::exports::crowsnest::plugin::meta::Guest,
    kind: Trigger,
    plugin: Trigger,
    export: TriggerExport,
);

/// What one delivery is about.
#[derive(Debug, Clone, Copy)]
pub enum Delivery<'a> {
    /// One container (simple mode).
    One(&'a UpdateEvent),
    /// Every container of a scan (batch mode).
    Batch(&'a [UpdateEvent]),
}

impl<'a> Delivery<'a> {
    /// The events delivered.
    pub fn events(&self) -> &'a [UpdateEvent] {
        match *self {
            Self::One(event) => std::slice::from_ref(event),
            Self::Batch(events) => events,
        }
    }

    /// Whether this is a batch.
    pub fn is_batch(&self) -> bool {
        matches!(self, Self::Batch(_))
    }
}

/// A trigger: delivers update events somewhere.
pub trait Trigger: Sized + 'static {
    /// Static description; must not depend on configuration.
    fn describe() -> PluginInfo;

    /// Builds the instance state from validated settings.
    fn configure(settings: &Settings) -> Result<Self, ConfigError>;

    /// The markup this instance sends messages in (plain text unless overridden).
    fn format(&self) -> TextFormat {
        TextFormat::Plain
    }

    /// Delivers `message` about one event or a batch.
    fn deliver(&self, message: &Message, delivery: Delivery<'_>) -> Result<(), DeliveryError>;
}

/// Why a delivery failed, and whether (and when) trying again can help.
/// Never quote a secret setting in the message (the host scrubs them too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    /// What went wrong.
    pub message: String,
    /// The wait the service asked for before the next attempt, milliseconds.
    pub retry_after_ms: Option<u64>,
    /// Whether another attempt can succeed.
    pub retryable: bool,
}

impl DeliveryError {
    /// A failure another attempt may cure (a 5xx, a timeout).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry_after_ms: None,
            retryable: true,
        }
    }

    /// A failure no retry cures (a refused token, an unknown channel, a bad request).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            ..Self::retryable(message)
        }
    }

    /// A rate-limit answer: retry after `retry_after_ms` (when the service said).
    pub fn rate_limited(message: impl Into<String>, retry_after_ms: Option<u64>) -> Self {
        Self {
            retry_after_ms,
            ..Self::retryable(message)
        }
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(ms) = self.retry_after_ms {
            write!(f, " (retry after {ms} ms)")?;
        }
        Ok(())
    }
}

impl std::error::Error for DeliveryError {}

/// `response` when 2xx; else the failure it describes: 429 (and 503) are
/// retried after the `Retry-After` seconds, other 5xx, 408 and 425 are
/// retried, any other status is final. `service` names the other side in the
/// message (never a URL: webhook URLs hold tokens).
pub fn check_status(service: &str, response: Response) -> Result<Response, DeliveryError> {
    if response.is_success() {
        return Ok(response);
    }
    let status = response.status;
    let retry_after_ms = response.header("retry-after").and_then(retry_after_ms);
    let message = match response.error_for_status() {
        Err(err) => format!("{service} answered {err}"),
        Ok(_) => format!("{service} answered HTTP status {status}"),
    };
    Err(match status {
        429 | 503 => DeliveryError::rate_limited(message, retry_after_ms),
        408 | 425 | 500..=599 => DeliveryError::retryable(message),
        _ => DeliveryError::permanent(message),
    })
}

/// Sends `request` and requires a 2xx answer (see [`check_status`]).
pub fn exchange(service: &str, request: Request) -> Result<Response, DeliveryError> {
    let response = request.send().map_err(|err| http_failure(service, err))?;
    check_status(service, response)
}

/// Title and body as one text: the title wrapped in `strong` (e.g. `("*", "*")`,
/// `("<b>", "</b>")`), a blank line, the body; an empty part is left out.
pub fn compose(message: &Message, strong: (&str, &str)) -> String {
    match (message.title.is_empty(), message.body.is_empty()) {
        (true, _) => message.body.clone(),
        (false, true) => format!("{}{}{}", strong.0, message.title, strong.1),
        (false, false) => format!(
            "{}{}{}\n\n{}",
            strong.0, message.title, strong.1, message.body
        ),
    }
}

/// `text` cut to at most `max` characters, ending in `…` when cut (service
/// limits: Discord's 2000, Pushover's 1024).
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A request that got no answer: a refused host or a malformed request is
/// final, a timeout or a broken connection is retried.
pub fn http_failure(service: &str, error: HttpError) -> DeliveryError {
    let message = format!("{service}: {error}");
    match error {
        HttpError::NotAllowed(_) | HttpError::InvalidRequest(_) => {
            DeliveryError::permanent(message)
        }
        _ => DeliveryError::retryable(message),
    }
}

/// A `Retry-After` value in seconds (`120`, `1.5`) as milliseconds. An
/// HTTP date is not read: the host's backoff applies instead.
pub fn retry_after_ms(value: &str) -> Option<u64> {
    seconds_to_ms(value.trim().parse::<f64>().ok()?)
}

/// A wait in (fractional) seconds as whole milliseconds; `None` when negative or absurd.
pub fn seconds_to_ms(seconds: f64) -> Option<u64> {
    (seconds.is_finite() && (0.0..1e9).contains(&seconds)).then(|| (seconds * 1000.0).ceil() as u64)
}

/// An event as a JSON object with camelCase keys (the HTTP API's style).
pub fn event_to_json(event: &UpdateEvent) -> serde_json::Value {
    serde_json::json!({
        "containerId": event.container_id,
        "containerName": event.container_name,
        "displayName": event.display_name,
        "watcher": event.watcher,
        "image": event.image,
        "kind": event.kind,
        "semverDiff": event.semver_diff,
        "localValue": event.local_value,
        "remoteValue": event.remote_value,
        "remoteDigest": event.remote_digest,
        "link": event.link,
    })
}

/// Adapts a [`Trigger`] to the generated export traits.
#[doc(hidden)]
pub struct TriggerExport<T>(PhantomData<T>);

fn to_wit(error: DeliveryError) -> notifier::DeliveryError {
    notifier::DeliveryError {
        message: error.message,
        retry_after_ms: error.retry_after_ms,
        retryable: error.retryable,
    }
}

fn not_configured(message: String) -> notifier::DeliveryError {
    to_wit(DeliveryError::permanent(message))
}

impl<T: Trigger> notifier::Guest for TriggerExport<T> {
    fn message_format() -> TextFormat {
        with_instance::<T, _>("message-format", |instance| instance.format())
            .unwrap_or(TextFormat::Plain)
    }

    fn notify(message: Message, event: UpdateEvent) -> Result<(), notifier::DeliveryError> {
        with_instance::<T, _>("notify", |instance| {
            instance.deliver(&message, Delivery::One(&event))
        })
        .map_err(not_configured)?
        .map_err(to_wit)
    }

    fn notify_batch(
        message: Message,
        events: Vec<UpdateEvent>,
    ) -> Result<(), notifier::DeliveryError> {
        with_instance::<T, _>("notify-batch", |instance| {
            instance.deliver(&message, Delivery::Batch(&events))
        })
        .map_err(not_configured)?
        .map_err(to_wit)
    }
}

/// Exports a [`Trigger`] implementation as this component's `trigger` world.
/// Use once per plugin crate.
#[macro_export]
macro_rules! export_trigger {
    ($trigger:ty) => {
        $crate::__export_world!(trigger, TriggerExport, $trigger);
    };
}

/// Test helpers: sample events and messages for a plugin's native unit tests.
pub mod testing {
    use super::{Message, UpdateEvent};

    /// A minor tag update of container `name`.
    pub fn event(name: &str) -> UpdateEvent {
        UpdateEvent {
            container_id: format!("{name}-id"),
            container_name: name.to_string(),
            display_name: name.to_string(),
            watcher: "local".to_string(),
            image: "nginx:1.25".to_string(),
            kind: "tag".to_string(),
            semver_diff: Some("minor".to_string()),
            local_value: "1.25".to_string(),
            remote_value: "1.26".to_string(),
            remote_digest: Some("sha256:abc".to_string()),
            link: Some("https://example.test/releases/1.26".to_string()),
        }
    }

    /// A message with `title` and `body`.
    pub fn message(title: &str, body: &str) -> Message {
        Message {
            title: title.to_string(),
            body: body.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn statuses_say_whether_to_retry() {
        /// (status, headers, retryable, retry after ms)
        type Case<'a> = (u16, &'a [(&'a str, &'a str)], bool, Option<u64>);
        let cases: [Case<'_>; 7] = [
            (429, &[("Retry-After", "2")], true, Some(2000)),
            (429, &[("retry-after", "0.25")], true, Some(250)),
            (
                429,
                &[("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")],
                true,
                None,
            ),
            (503, &[], true, None),
            (500, &[("Retry-After", "5")], true, None),
            (404, &[], false, None),
            (401, &[], false, None),
        ];
        for (status, headers, retryable, after) in cases {
            let err = check_status("svc", response(status, headers, "nope")).unwrap_err();
            assert_eq!(
                (err.retryable, err.retry_after_ms),
                (retryable, after),
                "{status}"
            );
            assert!(
                err.message
                    .starts_with(&format!("svc answered HTTP status {status}")),
                "{}",
                err.message
            );
        }
        assert!(check_status("svc", response(204, &[], "")).is_ok());
    }

    #[test]
    fn transport_failures_say_whether_to_retry() {
        assert!(!http_failure("svc", HttpError::NotAllowed("h".into())).retryable);
        assert!(http_failure("svc", HttpError::Timeout("t".into())).retryable);
    }

    #[test]
    fn waits_in_seconds() {
        assert_eq!(seconds_to_ms(1.234), Some(1234));
        assert_eq!(seconds_to_ms(-1.0), None);
        assert_eq!(retry_after_ms(" 3 "), Some(3000));
    }
}
