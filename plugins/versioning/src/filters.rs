//! The options every strategy shares: `include`, `exclude` and `transform`.

use std::borrow::Cow;

use regex_lite::Regex;

use crate::{OptionError, Options};

/// `include` / `exclude` / `transform`, compiled once per call.
#[derive(Debug)]
pub(crate) struct Filters {
    include: Option<Regex>,
    exclude: Option<Regex>,
    transform: Option<Transform>,
}

/// A compiled `REGEX => TEMPLATE` rewrite.
#[derive(Debug)]
struct Transform {
    regex: Regex,
    template: String,
}

impl Filters {
    /// Compiles the shared options, naming the offending option on failure.
    pub(crate) fn compile(opts: &Options) -> Result<Filters, OptionError> {
        Ok(Filters {
            include: compile_regex("include", opts.include.as_deref())?,
            exclude: compile_regex("exclude", opts.exclude.as_deref())?,
            transform: opts
                .transform
                .as_deref()
                .map(Transform::parse)
                .transpose()?,
        })
    }

    /// True when the published tag passes `include` and `exclude`.
    pub(crate) fn admits(&self, tag: &str) -> bool {
        self.include.as_ref().is_none_or(|re| re.is_match(tag))
            && !self.exclude.as_ref().is_some_and(|re| re.is_match(tag))
    }

    /// The text to read as a version: the transform's output, the tag itself
    /// without a transform, or `None` when the transform does not match.
    pub(crate) fn rewrite<'a>(&self, tag: &'a str) -> Option<Cow<'a, str>> {
        match &self.transform {
            None => Some(Cow::Borrowed(tag)),
            Some(transform) => transform.apply(tag).map(Cow::Owned),
        }
    }

    /// The published candidates that pass the filters, each with the text to read.
    pub(crate) fn candidates<'a>(
        &'a self,
        candidates: &'a [String],
    ) -> impl Iterator<Item = (&'a str, Cow<'a, str>)> + 'a {
        candidates
            .iter()
            .map(String::as_str)
            .filter(|tag| self.admits(tag))
            .filter_map(|tag| self.rewrite(tag).map(|text| (tag, text)))
    }
}

/// Compiles an optional user regex for `option`.
pub(crate) fn compile_regex(
    option: &str,
    pattern: Option<&str>,
) -> Result<Option<Regex>, OptionError> {
    pattern
        .map(|pattern| {
            Regex::new(pattern).map_err(|err| {
                OptionError::new(
                    option,
                    format!("invalid regular expression `{pattern}`: {err}"),
                )
            })
        })
        .transpose()
}

impl Transform {
    /// Parses `REGEX => TEMPLATE` (spaces around `=>` are optional).
    fn parse(formula: &str) -> Result<Transform, OptionError> {
        let Some((pattern, template)) = formula.split_once("=>") else {
            return Err(OptionError::new(
                "transform",
                format!("expected `REGEX => TEMPLATE`, got `{formula}`"),
            ));
        };
        let pattern = pattern.trim();
        let template = template.trim();
        let regex = Regex::new(pattern).map_err(|err| {
            OptionError::new(
                "transform",
                format!("invalid regular expression `{pattern}`: {err}"),
            )
        })?;
        check_template(&regex, template)?;
        Ok(Transform {
            regex,
            template: template.to_owned(),
        })
    }

    /// Expands the template with the first match, or `None` without a match.
    fn apply(&self, tag: &str) -> Option<String> {
        let captures = self.regex.captures(tag)?;
        let mut out = String::new();
        captures.expand(&self.template, &mut out);
        Some(out)
    }
}

/// Rejects templates that refer to groups the regex does not have, which
/// would silently expand to nothing. Follows the `$` syntax of
/// `Captures::expand`: `$$`, `$name`, `$1`, `${name}`.
fn check_template(regex: &Regex, template: &str) -> Result<(), OptionError> {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            rest = after;
            continue;
        }
        let reference = if let Some(braced) = rest.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => {
                    rest = &braced[end + 1..];
                    &braced[..end]
                }
                None => continue,
            }
        } else {
            let end = rest
                .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            rest = &rest[end..];
            name
        };
        if reference.is_empty() {
            continue;
        }
        let exists = match reference.parse::<usize>() {
            Ok(index) => index < regex.captures_len(),
            Err(_) => regex
                .capture_names()
                .flatten()
                .any(|name| name == reference),
        };
        if !exists {
            return Err(OptionError::new(
                "transform",
                format!("template refers to group `{reference}`, which the regular expression does not define"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(
        include: Option<&str>,
        exclude: Option<&str>,
        transform: Option<&str>,
    ) -> Result<Filters, OptionError> {
        Filters::compile(&Options {
            include: include.map(str::to_owned),
            exclude: exclude.map(str::to_owned),
            transform: transform.map(str::to_owned),
            extra: Vec::new(),
        })
    }

    #[test]
    fn include_and_exclude_are_unanchored_regexes() {
        let f = filters(Some(r"^\d+\.\d+$"), Some("rc"), None).unwrap();
        assert!(f.admits("1.25"));
        assert!(!f.admits("1.25-alpine"));
        let f = filters(Some("alpine"), Some(r"-rc\d"), None).unwrap();
        assert!(f.admits("1.25-alpine"));
        assert!(!f.admits("1.26-rc1-alpine"));
    }

    #[test]
    fn transform_numbered_and_named_groups() {
        let f = filters(None, None, Some(r"^(\d+)_(\d+)$ => $1.$2")).unwrap();
        assert_eq!(f.rewrite("1_2").as_deref(), Some("1.2"));
        assert_eq!(f.rewrite("latest"), None);
        let f = filters(
            None,
            None,
            Some(r"^v(?P<maj>\d+)-(?<min>\d+)=>${maj}.${min}"),
        )
        .unwrap();
        assert_eq!(f.rewrite("v3-4").as_deref(), Some("3.4"));
    }

    #[test]
    fn bad_options_name_the_option() {
        assert_eq!(
            filters(Some("(("), None, None).unwrap_err().option,
            "include"
        );
        assert_eq!(
            filters(None, Some("[z-a]"), None).unwrap_err().option,
            "exclude"
        );
        assert_eq!(
            filters(None, None, Some("(\\d+)")).unwrap_err().option,
            "transform"
        );
        assert_eq!(
            filters(None, None, Some("(( => $1")).unwrap_err().option,
            "transform"
        );
        assert_eq!(
            filters(None, None, Some(r"(\d+) => $2"))
                .unwrap_err()
                .option,
            "transform"
        );
        assert_eq!(
            filters(None, None, Some(r"(?P<a>\d+) => ${b}"))
                .unwrap_err()
                .option,
            "transform"
        );
    }

    #[test]
    fn template_escapes_are_not_references() {
        let f = filters(None, None, Some(r"(\d+) => $$$1")).unwrap();
        assert_eq!(f.rewrite("7").as_deref(), Some("$7"));
    }
}
