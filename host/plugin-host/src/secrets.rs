//! The secret setting values of one plugin instance, scrubbed from every
//! line the host writes about it: the instance's own log lines, and its
//! errors before the host logs or returns them. A plugin is not trusted to
//! keep its token out of an error message (a drop-in may not even try), and
//! errors of the HTTP stack quote the URL, where a webhook keeps its token.

use crate::component::MASK;

/// Shortest value treated as a secret: shorter ones would mask ordinary words.
const MIN_SECRET_LEN: usize = 4;

/// Shortest URL part (path segment, query value) treated as a secret of its own.
const MIN_URL_PART_LEN: usize = 8;

/// Secret values to scrub, longest first (so a secret containing another is
/// masked whole).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    /// The secrets of `values`; a URL also contributes its token-like parts
    /// (long path segments and query values), which errors quote separately.
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut all = Vec::new();
        for value in values {
            let value = value.trim().to_string();
            if value.len() < MIN_SECRET_LEN {
                continue;
            }
            all.extend(url_parts(&value));
            all.push(value);
        }
        all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        all.dedup();
        Self { values: all }
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret replaced by the mask.
    pub fn scrub(&self, text: &str) -> String {
        let mut scrubbed = text.to_string();
        for secret in &self.values {
            if scrubbed.contains(secret.as_str()) {
                scrubbed = scrubbed.replace(secret.as_str(), MASK);
            }
        }
        scrubbed
    }
}

/// The parts of a URL an error may quote without the rest: the URL without
/// its query, long path segments and long query values.
fn url_parts(value: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(value) else {
        return Vec::new();
    };
    if !url.has_host() {
        return Vec::new();
    }
    let mut parts = Vec::new();
    if let Some((without_query, _)) = value.split_once('?') {
        if url.path().len() > 1 {
            parts.push(without_query.to_string());
        }
    }
    if let Some(segments) = url.path_segments() {
        parts.extend(
            segments
                .filter(|segment| segment.len() >= MIN_URL_PART_LEN)
                .map(str::to_string),
        );
    }
    parts.extend(
        url.query_pairs()
            .map(|(_, value)| value.into_owned())
            .filter(|value| value.len() >= MIN_URL_PART_LEN),
    );
    if let Some(password) = url.password() {
        parts.push(password.to_string());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_values_and_the_token_parts_of_urls() {
        let secrets = Secrets::new([
            "https://hooks.example/services/T000/B000/XXXXXXXXXXXX?thread=abcdefgh123".to_string(),
            "tk_0123456789".to_string(),
            "ab".to_string(),
        ]);
        let cases = [
            (
                "POST https://hooks.example/services/T000/B000/XXXXXXXXXXXX failed",
                "POST ******** failed",
            ),
            ("token XXXXXXXXXXXX in a path", "token ******** in a path"),
            ("query abcdefgh123", "query ********"),
            ("Bearer tk_0123456789", "Bearer ********"),
            (
                "ab stays: too short to be a secret",
                "ab stays: too short to be a secret",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(secrets.scrub(text), expected, "{text}");
        }
    }

    #[test]
    fn nothing_to_scrub_leaves_text_alone() {
        let secrets = Secrets::default();
        assert!(secrets.is_empty());
        assert_eq!(secrets.scrub("plain"), "plain");
    }
}
