//! `apprise`: notifies through an Apprise API server, stateless (`POST
//! {url}/notify/` with the Apprise `urls` to reach) or stateful (`POST
//! {url}/notify/{key}`, the server's saved configuration for that key,
//! optionally narrowed to a `tag`), with `{title, body, type, format}` as
//! JSON. 424 (some services failed) is retried.

use crowsnest_plugin_sdk::encoding::percent_encode;
use crowsnest_plugin_sdk::http::Request;
use crowsnest_plugin_sdk::serde_json::{json, Value};
use crowsnest_plugin_sdk::trigger::{
    exchange, Delivery, DeliveryError, Message, TextFormat, Trigger,
};
use crowsnest_plugin_sdk::{ConfigError, ConfigKey, PluginInfo, Settings};

/// Stateless or stateful.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Urls(Vec<String>),
    Key { key: String, tag: Option<String> },
}

/// One configured Apprise API target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apprise {
    base: String,
    target: Target,
    kind: String,
    format: TextFormat,
}

impl Apprise {
    fn endpoint(&self) -> String {
        match &self.target {
            Target::Urls(_) => format!("{}/notify/", self.base),
            Target::Key { key, .. } => format!("{}/notify/{}", self.base, percent_encode(key)),
        }
    }

    fn body(&self, message: &Message) -> Value {
        let format = match self.format {
            TextFormat::Markdown => "markdown",
            TextFormat::Html => "html",
            _ => "text",
        };
        let mut body = json!({ "title": message.title, "body": message.body, "type": self.kind, "format": format });
        match &self.target {
            Target::Urls(urls) => body["urls"] = urls.join(",").into(),
            Target::Key { tag: Some(tag), .. } => body["tag"] = tag.clone().into(),
            Target::Key { tag: None, .. } => {}
        }
        body
    }
}

impl Trigger for Apprise {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "apprise",
            env!("CARGO_PKG_VERSION"),
            "Notifies through an Apprise API server",
        )
        .key(ConfigKey::required("url", "Apprise API base URL"))
        .key(
            ConfigKey::optional("urls", "Stateless: the Apprise URLs to notify, an array").secret(),
        )
        .key(ConfigKey::optional("key", "Stateful: the configuration key on the server").secret())
        .key(ConfigKey::optional(
            "tag",
            "Stateful: only the URLs with this tag",
        ))
        .key(ConfigKey::optional(
            "type",
            "info (default), success, warning or failure",
        ))
        .key(ConfigKey::optional(
            "format",
            "text (default), markdown or html",
        ))
    }

    fn configure(settings: &Settings) -> Result<Self, ConfigError> {
        let urls = settings.string_list("urls")?;
        let target = match (urls.is_empty(), settings.get("key")) {
            (false, None) => Target::Urls(urls),
            (true, Some(key)) => Target::Key {
                key: key.trim().to_string(),
                tag: settings.get("tag").map(str::to_string),
            },
            (false, Some(_)) => {
                return Err(ConfigError::key(
                    "key",
                    "use either urls (stateless) or key (stateful)",
                ))
            }
            (true, None) => {
                return Err(ConfigError::key(
                    "urls",
                    "required: urls (stateless) or key (stateful)",
                ))
            }
        };
        if settings.get("tag").is_some() && matches!(target, Target::Urls(_)) {
            return Err(ConfigError::key(
                "tag",
                "a tag selects among a key's saved URLs",
            ));
        }
        let kind = settings
            .string_or("type", "info")
            .trim()
            .to_ascii_lowercase();
        if !["info", "success", "warning", "failure"].contains(&kind.as_str()) {
            return Err(ConfigError::key(
                "type",
                format!("`{kind}` is not info, success, warning or failure"),
            ));
        }
        let format = match settings
            .string_or("format", "text")
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "text" => TextFormat::Plain,
            "markdown" => TextFormat::Markdown,
            "html" => TextFormat::Html,
            other => {
                return Err(ConfigError::key(
                    "format",
                    format!("`{other}` is not text, markdown or html"),
                ))
            }
        };
        Ok(Self {
            base: settings.require_http_url("url")?.registry_base(),
            target,
            kind,
            format,
        })
    }

    fn format(&self) -> TextFormat {
        self.format
    }

    fn deliver(&self, message: &Message, _: Delivery<'_>) -> Result<(), DeliveryError> {
        let request = Request::post(self.endpoint()).json(&self.body(message));
        match exchange("apprise", request) {
            Ok(_) => Ok(()),
            Err(mut err) if err.message.starts_with("apprise answered HTTP status 424") => {
                // Some of the services behind Apprise failed: they may recover.
                err.retryable = true;
                Err(err)
            }
            Err(err) => Err(err),
        }
    }
}

crowsnest_plugin_sdk::export_trigger!(Apprise);

#[cfg(test)]
mod tests {
    use super::*;
    use crowsnest_plugin_sdk::trigger::configure_from;
    use crowsnest_plugin_sdk::trigger::testing::message;

    #[test]
    fn stateless_and_stateful() {
        let stateless: Apprise = configure_from([
            ("url", "http://apprise.test:8000"),
            ("urls", r#"["mailto://a","json://b"]"#),
        ])
        .unwrap();
        assert_eq!(stateless.endpoint(), "http://apprise.test:8000/notify/");
        assert_eq!(
            stateless.body(&message("T", "B"))["urls"],
            "mailto://a,json://b"
        );
        let stateful: Apprise = configure_from([
            ("url", "http://a.test"),
            ("key", "crow nest"),
            ("tag", "ops"),
            ("format", "markdown"),
        ])
        .unwrap();
        assert_eq!(stateful.endpoint(), "http://a.test/notify/crow%20nest");
        assert_eq!(
            stateful.body(&message("T", "B")),
            json!({"title": "T", "body": "B", "type": "info", "format": "markdown", "tag": "ops"})
        );
        let cases: [(&[(&str, &str)], &str); 4] = [
            (&[("url", "http://a")], "urls"),
            (
                &[("url", "http://a"), ("urls", r#"["x"]"#), ("key", "k")],
                "key",
            ),
            (
                &[("url", "http://a"), ("key", "k"), ("type", "panic")],
                "type",
            ),
            (
                &[("url", "http://a"), ("urls", r#"["x"]"#), ("tag", "t")],
                "tag",
            ),
        ];
        for (pairs, key) in cases {
            assert_eq!(
                configure_from::<Apprise>(pairs.iter().copied())
                    .unwrap_err()
                    .key
                    .as_deref(),
                Some(key)
            );
        }
    }
}
