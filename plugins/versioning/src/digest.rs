//! The digest strategy: never offers a tag, always watches the digest.

use crate::filters::Filters;
use crate::{Decision, OptionError, Options};

/// Always `Decision { version_tag: false, watch_digest: true, offer: None }`,
/// after checking that `include`, `exclude` and `transform` are valid so a
/// broken label is reported whichever strategy is chosen.
pub fn choose(
    _current: &str,
    _candidates: &[String],
    opts: &Options,
) -> Result<Decision, OptionError> {
    Filters::compile(opts)?;
    Ok(Decision::digest_only())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_digest_but_options_are_checked() {
        let candidates = vec!["1.1".to_owned()];
        assert_eq!(
            choose("1.0", &candidates, &Options::default()),
            Ok(Decision::digest_only())
        );
        let bad = Options {
            exclude: Some("(".to_owned()),
            ..Options::default()
        };
        assert_eq!(
            choose("1.0", &candidates, &bad).unwrap_err().option,
            "exclude"
        );
    }
}
