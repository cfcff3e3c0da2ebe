//! The message of a delivery, rendered by the host from the trigger's
//! templates (minijinja): a title and a body for one container (simple
//! mode) and for all the containers of a scan (batch mode). Values are
//! escaped for the markup the plugin sends in, so a container name never
//! breaks it; the templates' own text is passed as written.
//!
//! Variables (documented in README "Templates"): `trigger`, and in simple
//! mode `container`, in batch mode `containers` and `count`. Each container
//! has `id`, `name`, `display_name`, `watcher`, `status`, `image`,
//! `image_name`, `registry`, `current`, `offered`, `kind`, `semver_diff`,
//! `local_digest`, `remote_digest`, `link`, `error`.

use std::fmt::Write as _;

use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crowsnest_config::TriggerOptions;
use crowsnest_model::ContainerObject;
use crowsnest_plugin_host::trigger::{Message, TextFormat};

/// Title of a simple-mode message when the configuration sets none.
pub const DEFAULT_TITLE: &str =
    "New {{ container.kind }} found for container {{ container.display_name }}";

/// Body of a simple-mode message when the configuration sets none.
pub const DEFAULT_BODY: &str = "Container {{ container.display_name }} ({{ container.image }}) \
can be updated from {{ container.current }} to {{ container.offered }}\
{% if container.semver_diff %} ({{ container.semver_diff }}){% endif %}.\
{% if container.link %}\nRelease notes: {{ container.link }}{% endif %}";

/// Title of a batch-mode message when the configuration sets none.
pub const DEFAULT_BATCH_TITLE: &str = "{{ count }} update{% if count != 1 %}s{% endif %} available";

/// Body of a batch-mode message when the configuration sets none.
pub const DEFAULT_BATCH_BODY: &str = "{% for container in containers %}\
- {{ container.display_name }} ({{ container.image }}): {{ container.current }} → {{ container.offered }}\
{% if container.semver_diff %} ({{ container.semver_diff }}){% endif %}\
{% if container.link %} {{ container.link }}{% endif %}\n{% endfor %}";

/// The four templates, by the key that sets each.
const KEYS: [&str; 4] = ["title", "body", "batch_title", "batch_body"];

/// A template the configuration got wrong: its key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct TemplateError {
    /// `title`, `body`, `batch_title` or `batch_body`.
    pub key: &'static str,
    /// The template engine's complaint, with the line in the template.
    pub message: String,
}

/// A trigger's compiled templates, escaping for its plugin's markup.
pub struct MessageTemplates {
    env: Environment<'static>,
}

impl std::fmt::Debug for MessageTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageTemplates").finish_non_exhaustive()
    }
}

/// One container as templates see it.
#[derive(Debug, Clone, Serialize)]
struct TemplateContainer<'a> {
    id: &'a str,
    name: &'a str,
    display_name: &'a str,
    watcher: &'a str,
    status: &'a str,
    image: &'a str,
    image_name: &'a str,
    registry: &'a str,
    current: Option<&'a str>,
    offered: Option<&'a str>,
    kind: Option<&'a str>,
    semver_diff: Option<&'a str>,
    local_digest: Option<&'a str>,
    remote_digest: Option<&'a str>,
    link: Option<&'a str>,
    error: Option<&'a str>,
}

impl<'a> TemplateContainer<'a> {
    fn of(container: &'a ContainerObject) -> Self {
        let kind = container.update_kind.as_ref();
        let result = container.result.as_ref();
        Self {
            id: &container.id,
            name: &container.name,
            display_name: &container.display_name,
            watcher: &container.watcher,
            status: &container.status,
            image: &container.image.reference,
            image_name: &container.image.name,
            registry: &container.image.registry.name,
            current: kind
                .and_then(|kind| kind.local_value.as_deref())
                .or(container.image.tag.value.as_deref()),
            offered: kind
                .and_then(|kind| kind.remote_value.as_deref())
                .or(result.and_then(|result| result.tag.as_deref())),
            kind: kind.map(|kind| kind.kind.as_str()),
            semver_diff: kind.and_then(|kind| kind.semver_diff.as_deref()),
            local_digest: container.image.digest.value.as_deref(),
            remote_digest: result.and_then(|result| result.digest.as_deref()),
            link: result.and_then(|result| result.link.as_deref()),
            error: container.error.as_ref().map(|error| error.message.as_str()),
        }
    }
}

impl MessageTemplates {
    /// Compiles the trigger's templates (the defaults where it sets none),
    /// escaping values for `format`, and renders each once on a sample
    /// container, so a bad template is a configuration error at start-up.
    pub fn new(options: &TriggerOptions, format: TextFormat) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let escape = match format {
            TextFormat::Plain => AutoEscape::None,
            TextFormat::Html => AutoEscape::Html,
            TextFormat::Markdown => AutoEscape::Custom("markdown".into()),
            TextFormat::TelegramMarkdownV2 => AutoEscape::Custom("telegram-markdown-v2".into()),
            TextFormat::SlackMrkdwn => AutoEscape::Custom("slack-mrkdwn".into()),
        };
        env.set_auto_escape_callback(move |_| escape.clone());
        env.set_formatter(|out, state, value| {
            let AutoEscape::Custom(markup) = state.auto_escape() else {
                return minijinja::escape_formatter(out, state, value);
            };
            let text = value.to_string();
            let written = if value.is_safe() {
                out.write_str(&text)
            } else {
                out.write_str(&escape_for(markup, &text))
            };
            written.map_err(minijinja::Error::from)
        });
        let configured = [
            &options.title,
            &options.body,
            &options.batch_title,
            &options.batch_body,
        ];
        let defaults = [
            DEFAULT_TITLE,
            DEFAULT_BODY,
            DEFAULT_BATCH_TITLE,
            DEFAULT_BATCH_BODY,
        ];
        for ((key, configured), default) in KEYS.into_iter().zip(configured).zip(defaults) {
            let source = configured.clone().unwrap_or_else(|| default.to_string());
            env.add_template_owned(key, source)
                .map_err(|err| template_error(key, &err))?;
        }
        let templates = Self { env };
        let sample = sample_container();
        templates
            .render_simple("sample", &sample)
            .map_err(|(key, err)| template_error(key, &err))?;
        templates
            .render_batch("sample", std::slice::from_ref(&sample))
            .map_err(|(key, err)| template_error(key, &err))?;
        Ok(templates)
    }

    /// The message about one container (simple mode).
    pub fn simple(&self, trigger: &str, container: &ContainerObject) -> Result<Message, String> {
        self.render_simple(trigger, container)
            .map_err(|(key, err)| template_error(key, &err).to_string())
    }

    /// The message about every container of a scan (batch mode).
    pub fn batch(&self, trigger: &str, containers: &[ContainerObject]) -> Result<Message, String> {
        self.render_batch(trigger, containers)
            .map_err(|(key, err)| template_error(key, &err).to_string())
    }

    fn render_simple(
        &self,
        trigger: &str,
        container: &ContainerObject,
    ) -> Result<Message, (&'static str, minijinja::Error)> {
        let context = minijinja::context! {
            trigger => trigger,
            container => Value::from(Serde(TemplateContainer::of(container))),
        };
        self.render(["title", "body"], context)
    }

    fn render_batch(
        &self,
        trigger: &str,
        containers: &[ContainerObject],
    ) -> Result<Message, (&'static str, minijinja::Error)> {
        let views: Vec<TemplateContainer<'_>> =
            containers.iter().map(TemplateContainer::of).collect();
        let context = minijinja::context! {
            trigger => trigger,
            count => containers.len(),
            containers => Value::from(Serde(views)),
        };
        self.render(["batch_title", "batch_body"], context)
    }

    fn render(
        &self,
        [title, body]: [&'static str; 2],
        context: Value,
    ) -> Result<Message, (&'static str, minijinja::Error)> {
        let render = |key: &'static str| {
            self.env
                .get_template(key)
                .and_then(|template| template.render(&context))
                .map(|text| text.trim().to_string())
                .map_err(|err| (key, err))
        };
        Ok(Message {
            title: render(title)?,
            body: render(body)?,
        })
    }
}

/// The engine's error in words, with its line in the template.
fn template_error(key: &'static str, err: &minijinja::Error) -> TemplateError {
    let mut message = String::from("bad template: ");
    message.push_str(&err.kind().to_string());
    if let Some(detail) = err.detail() {
        let _ = write!(message, ": {detail}");
    }
    if let Some(line) = err.line() {
        let _ = write!(message, " (template line {line})");
    }
    TemplateError { key, message }
}

/// `text` escaped for the custom markup `markup`.
fn escape_for(markup: &str, text: &str) -> String {
    let reserved: &[char] = match markup {
        "telegram-markdown-v2" => &[
            '\\', '_', '*', '[', ']', '(', ')', '~', '`', '>', '#', '+', '-', '=', '|', '{', '}',
            '.', '!',
        ],
        "markdown" => &['\\', '`', '*', '_', '~', '[', ']', '<', '>', '|'],
        "slack-mrkdwn" => {
            return text
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
        }
        _ => &[],
    };
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if reserved.contains(&c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A container with a minor update, every field set: what templates are
/// checked on at start-up, and what `crowsnest triggers test` sends.
pub fn sample_container() -> ContainerObject {
    use crowsnest_model::{
        DigestInfo, ImageInfo, RegistryInfo, ScanResult, TagInfo, UpdateKindInfo,
    };
    ContainerObject {
        id: "0000000000000000000000000000000000000000000000000000000000c0ffee".into(),
        name: "crowsnest-sample".into(),
        display_name: "crowsnest sample".into(),
        status: "running".into(),
        watcher: "local".into(),
        image: ImageInfo {
            id: "sha256:1111111111111111111111111111111111111111111111111111111111111111".into(),
            registry: RegistryInfo {
                name: "hub".into(),
                url: "https://registry-1.docker.io/v2".into(),
                lookup_image: "docker.io/library/nginx".into(),
            },
            name: "library/nginx".into(),
            tag: TagInfo {
                value: Some("1.25.3".into()),
                semver: true,
            },
            digest: DigestInfo {
                watch: false,
                value: Some(
                    "sha256:2222222222222222222222222222222222222222222222222222222222222222"
                        .into(),
                ),
                repo: None,
            },
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
            created: None,
            reference: "nginx:1.25.3".into(),
        },
        result: Some(ScanResult {
            tag: Some("1.26.0".into()),
            digest: Some(
                "sha256:3333333333333333333333333333333333333333333333333333333333333333".into(),
            ),
            link: Some("https://nginx.org/en/CHANGES-1.26".into()),
            created: None,
        }),
        update_available: true,
        update_kind: Some(UpdateKindInfo {
            kind: "tag".into(),
            local_value: Some("1.25.3".into()),
            remote_value: Some("1.26.0".into()),
            semver_diff: Some("minor".into()),
        }),
        error: None,
        labels: Default::default(),
        kind: None,
        owner: None,
        check: crowsnest_model::CheckInfo::new(crowsnest_model::CheckStatus::Update),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates(options: TriggerOptions, format: TextFormat) -> MessageTemplates {
        MessageTemplates::new(&options, format).unwrap()
    }

    fn named(name: &str) -> ContainerObject {
        ContainerObject {
            name: name.into(),
            display_name: name.into(),
            ..sample_container()
        }
    }

    #[test]
    fn defaults_describe_the_update() {
        let plain = templates(TriggerOptions::default(), TextFormat::Plain);
        let message = plain.simple("ops", &sample_container()).unwrap();
        assert_eq!(
            message.title,
            "New tag found for container crowsnest sample"
        );
        assert_eq!(
            message.body,
            "Container crowsnest sample (nginx:1.25.3) can be updated from 1.25.3 to 1.26.0 (minor).\nRelease notes: https://nginx.org/en/CHANGES-1.26"
        );
        let batch = plain.batch("ops", &[named("a"), named("b")]).unwrap();
        assert_eq!(batch.title, "2 updates available");
        assert_eq!(
            batch.body,
            "- a (nginx:1.25.3): 1.25.3 → 1.26.0 (minor) https://nginx.org/en/CHANGES-1.26\n- b (nginx:1.25.3): 1.25.3 → 1.26.0 (minor) https://nginx.org/en/CHANGES-1.26"
        );
        assert_eq!(
            plain.batch("ops", &[named("a")]).unwrap().title,
            "1 update available"
        );
    }

    #[test]
    fn configured_templates_see_every_variable() {
        let options = TriggerOptions {
            title: Some("[{{ trigger }}] {{ container.name }}".into()),
            body: Some("{{ container.kind }}/{{ container.semver_diff }} {{ container.current }}>{{ container.offered }} {{ container.registry }} {{ container.image_name }} {{ container.watcher }} {{ container.remote_digest[:13] }} {{ container.error or 'no error' }}".into()),
            batch_title: Some("{{ count }} for {{ trigger }}".into()),
            batch_body: Some("{{ containers | map(attribute='name') | join(', ') }}".into()),
            ..TriggerOptions::default()
        };
        let rendered = templates(options, TextFormat::Plain);
        let message = rendered.simple("ops", &sample_container()).unwrap();
        assert_eq!(message.title, "[ops] crowsnest-sample");
        assert_eq!(
            message.body,
            "tag/minor 1.25.3>1.26.0 hub library/nginx local sha256:333333 no error"
        );
        let batch = rendered.batch("ops", &[named("a"), named("b")]).unwrap();
        assert_eq!(
            (batch.title.as_str(), batch.body.as_str()),
            ("2 for ops", "a, b")
        );
    }

    #[test]
    fn values_are_escaped_for_the_plugin_markup() {
        let options = TriggerOptions {
            title: Some("*{{ container.name }}*".into()),
            ..TriggerOptions::default()
        };
        let cases = [
            (TextFormat::Plain, "*a_b<c>.d&e*"),
            (TextFormat::Html, "*a_b&lt;c&gt;.d&amp;e*"),
            (TextFormat::Markdown, "*a\\_b\\<c\\>.d&e*"),
            (TextFormat::TelegramMarkdownV2, "*a\\_b<c\\>\\.d&e*"),
            (TextFormat::SlackMrkdwn, "*a_b&lt;c&gt;.d&amp;e*"),
        ];
        for (format, expected) in cases {
            let message = templates(options.clone(), format)
                .simple("ops", &named("a_b<c>.d&e"))
                .unwrap();
            assert_eq!(message.title, expected, "{format:?}");
        }
    }

    #[test]
    fn bad_templates_name_their_key_and_line() {
        let cases = [
            (
                TriggerOptions {
                    body: Some("line one\n{% if %}".into()),
                    ..TriggerOptions::default()
                },
                "body",
                "template line 2",
            ),
            (
                TriggerOptions {
                    title: Some("{{ container.nmae }}".into()),
                    ..TriggerOptions::default()
                },
                "title",
                "undefined",
            ),
            (
                TriggerOptions {
                    batch_body: Some("{% for c in containers %}{{ c.name }".into()),
                    ..TriggerOptions::default()
                },
                "batch_body",
                "syntax error",
            ),
        ];
        for (options, key, words) in cases {
            let err = MessageTemplates::new(&options, TextFormat::Plain).unwrap_err();
            assert_eq!(err.key, key);
            assert!(err.message.contains(words), "{key}: {}", err.message);
        }
    }
}
