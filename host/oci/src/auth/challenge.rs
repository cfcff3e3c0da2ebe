//! `WWW-Authenticate` parsing (RFC 7235): several challenges per header,
//! `name=value` parameters with tokens or quoted strings (with `\` escapes and
//! commas inside quotes).

/// One authentication challenge, e.g. `Bearer realm="…",service="…"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthChallenge {
    /// Scheme in lowercase, e.g. `bearer`, `basic`.
    pub scheme: String,
    /// Parameters in order; names in lowercase, values unquoted.
    pub params: Vec<(String, String)>,
}

impl AuthChallenge {
    /// Value of parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Parses every challenge of one `WWW-Authenticate` header value. Malformed
/// parts are skipped rather than failing the whole header.
pub fn parse_challenges(header: &str) -> Vec<AuthChallenge> {
    let mut cursor = Cursor {
        bytes: header.as_bytes(),
        text: header,
        position: 0,
    };
    let mut challenges = Vec::new();
    loop {
        cursor.skip_while(|b| b == b',' || b.is_ascii_whitespace());
        if cursor.at_end() {
            break;
        }
        let scheme = cursor.token();
        if scheme.is_empty() {
            // Not a token character: skip to the next comma.
            cursor.skip_while(|b| b != b',');
            continue;
        }
        let mut challenge = AuthChallenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        loop {
            cursor.skip_while(|b| b == b',' || b.is_ascii_whitespace());
            let param_start = cursor.position;
            let name = cursor.token();
            if name.is_empty() {
                if !cursor.at_end() {
                    // token68 or garbage: skip it.
                    cursor.skip_while(|b| b != b',');
                    continue;
                }
                break;
            }
            cursor.skip_while(|b| b == b' ' || b == b'\t');
            if cursor.peek() != Some(b'=') {
                // A bare token after parameters starts the next challenge.
                cursor.position = param_start;
                break;
            }
            cursor.position += 1;
            cursor.skip_while(|b| b == b' ' || b == b'\t');
            let value = if cursor.peek() == Some(b'"') {
                cursor.quoted_string()
            } else {
                cursor.token().to_string()
            };
            challenge.params.push((name.to_ascii_lowercase(), value));
            cursor.skip_while(|b| b == b' ' || b == b'\t');
            match cursor.peek() {
                None | Some(b',') => {}
                // token68 padding or garbage after a value: skip to the next comma.
                Some(_) => cursor.skip_while(|b| b != b','),
            }
        }
        challenges.push(challenge);
    }
    challenges
}

struct Cursor<'a> {
    bytes: &'a [u8],
    text: &'a str,
    position: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.position >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn skip_while(&mut self, keep_skipping: impl Fn(u8) -> bool) {
        while let Some(byte) = self.peek() {
            if !keep_skipping(byte) {
                break;
            }
            self.position += 1;
        }
    }

    /// RFC 7230 `token`: `!#$%&'*+-.^_`|~`, digits and letters.
    fn token(&mut self) -> &'a str {
        let start = self.position;
        self.skip_while(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        &self.text[start..self.position]
    }

    /// A quoted string starting at the current `"`; unterminated strings end at the end of input.
    fn quoted_string(&mut self) -> String {
        self.position += 1;
        let mut value = Vec::new();
        while let Some(byte) = self.peek() {
            self.position += 1;
            match byte {
                b'"' => break,
                b'\\' => {
                    if let Some(escaped) = self.peek() {
                        value.push(escaped);
                        self.position += 1;
                    }
                }
                other => value.push(other),
            }
        }
        String::from_utf8_lossy(&value).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_style_bearer() {
        let parsed = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#,
        );
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].scheme, "bearer");
        assert_eq!(
            parsed[0].param("realm"),
            Some("https://auth.docker.io/token")
        );
        assert_eq!(parsed[0].param("service"), Some("registry.docker.io"));
        assert_eq!(parsed[0].param("scope"), None);
    }

    #[test]
    fn scope_with_commas_and_escapes() {
        let parsed = parse_challenges(
            r#"Bearer realm="https://r.io/token", service="r.io", scope="repository:a/b:pull,push", error="insufficient_scope", note="say \"hi\" \\ ok""#,
        );
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].param("scope"), Some("repository:a/b:pull,push"));
        assert_eq!(parsed[0].param("error"), Some("insufficient_scope"));
        assert_eq!(parsed[0].param("note"), Some(r#"say "hi" \ ok"#));
    }

    #[test]
    fn basic_and_several_challenges() {
        let parsed = parse_challenges(
            r#"Basic realm="Registry Realm", Bearer realm="https://t.io/token",service=t.io , Negotiate"#,
        );
        let schemes: Vec<_> = parsed.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate"]);
        assert_eq!(parsed[0].param("realm"), Some("Registry Realm"));
        assert_eq!(parsed[1].param("service"), Some("t.io"));
        assert!(parsed[2].params.is_empty());
    }

    #[test]
    fn case_insensitive_names_and_token68() {
        let parsed = parse_challenges(r#"NEGOTIATE abc123==, BASIC REALM=x"#);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].scheme, "negotiate");
        assert_eq!(parsed[1].scheme, "basic");
        assert_eq!(parsed[1].param("realm"), Some("x"));
    }

    #[test]
    fn garbage_and_unterminated_quotes_do_not_panic() {
        assert!(parse_challenges("").is_empty());
        assert!(parse_challenges(" , ,").is_empty());
        let parsed = parse_challenges(r#"Bearer realm="https://unterminated"#);
        assert_eq!(parsed[0].param("realm"), Some("https://unterminated"));
        let parsed = parse_challenges("@@@, Basic realm=r");
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].scheme, "basic");
    }
}
