//! `Link` (RFC 8288) and `Retry-After` (RFC 9110) header parsing.

use std::time::{Duration, SystemTime};

/// One link of a `Link` header: target as written and its `rel` values (lowercase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkValue {
    /// Target URI as written between `<` and `>` (may be relative).
    pub target: String,
    /// Relation types, e.g. `["next"]`.
    pub rels: Vec<String>,
}

/// Parses a `Link` header value: `<uri>; rel="next", <uri2>; rel=prev`.
pub fn parse_link_header(header: &str) -> Vec<LinkValue> {
    let mut links = Vec::new();
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let after_open = &rest[open + 1..];
        let Some(close) = after_open.find('>') else {
            break;
        };
        let target = after_open[..close].trim().to_string();
        let mut params = &after_open[close + 1..];
        let mut rels = Vec::new();
        // Parameters run until a comma outside quotes (the next link) or the end.
        loop {
            params = params.trim_start();
            let Some(after_semicolon) = params.strip_prefix(';') else {
                break;
            };
            let (param, remaining) = split_param(after_semicolon);
            params = remaining;
            if let Some((name, value)) = param.split_once('=') {
                if name.trim().eq_ignore_ascii_case("rel") {
                    let value = unquote(value.trim());
                    rels.extend(value.split_whitespace().map(str::to_ascii_lowercase));
                }
            }
        }
        links.push(LinkValue { target, rels });
        rest = params.strip_prefix(',').unwrap_or(params);
    }
    links
}

/// Splits one `;`-parameter off: up to the next `;` or `,` outside quotes.
fn split_param(input: &str) -> (&str, &str) {
    let mut in_quotes = false;
    let mut escaped = false;
    for (index, character) in input.char_indices() {
        match character {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ';' | ',' if !in_quotes => return (&input[..index], &input[index..]),
            _ => {}
        }
    }
    (input, "")
}

fn unquote(value: &str) -> String {
    match value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
    {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut characters = inner.chars();
            while let Some(character) = characters.next() {
                if character == '\\' {
                    if let Some(escaped) = characters.next() {
                        out.push(escaped);
                    }
                } else {
                    out.push(character);
                }
            }
            out
        }
        None => value.to_string(),
    }
}

/// The `rel="next"` target among all given `Link` header values, as written.
pub fn next_link<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<String> {
    headers
        .into_iter()
        .flat_map(parse_link_header)
        .find(|link| link.rels.iter().any(|rel| rel == "next"))
        .map(|link| link.target)
}

/// Parses `Retry-After`: delay in seconds, or an HTTP date (a past date means no wait).
/// `None` when the value is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_style_next_link() {
        let header = r#"</v2/app/tags/list?last=b&n=2>; rel="next""#;
        assert_eq!(
            next_link([header]).as_deref(),
            Some("/v2/app/tags/list?last=b&n=2")
        );
    }

    #[test]
    fn several_links_and_unquoted_rel() {
        let header =
            r#"<https://r.io/p1>; rel=prev, <https://r.io/p3>; title="a, b; c"; rel="next last""#;
        let links = parse_link_header(header);
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].rels, ["prev"]);
        assert_eq!(links[1].target, "https://r.io/p3");
        assert_eq!(links[1].rels, ["next", "last"]);
        assert_eq!(next_link([header]).as_deref(), Some("https://r.io/p3"));
    }

    #[test]
    fn next_link_across_header_values_and_absent() {
        assert_eq!(
            next_link([r#"<a>; rel="prev""#, r#"<b>; REL="NEXT""#]).as_deref(),
            Some("b")
        );
        assert_eq!(next_link([r#"<a>; rel="prev""#]), None);
        assert_eq!(next_link(["garbage", "<unterminated"]), None);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }
}
