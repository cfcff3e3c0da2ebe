//! Bearer-token authentication shared by the HTTP and gRPC front ends.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The configured token, if any. Compared in constant time.
#[derive(Clone, Default)]
pub struct Token {
    /// SHA-256 of the token: comparing digests keeps the comparison independent
    /// of where the first differing byte is *and* of the token's length.
    digest: Option<Arc<[u8; 32]>>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.digest.is_some() {
            "Token(set)"
        } else {
            "Token(none)"
        })
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer …` header.
    #[error("missing bearer token (send `Authorization: Bearer TOKEN`)")]
    Missing,
    /// A token that is not the configured one.
    #[error("invalid bearer token")]
    Invalid,
}

impl Token {
    /// `token` from `[server] token` (or `token_file`); None = no authentication.
    pub fn new(token: Option<&str>) -> Self {
        Self {
            digest: token.map(|token| Arc::new(Sha256::digest(token.as_bytes()).into())),
        }
    }

    /// Whether a token is configured.
    pub fn is_set(&self) -> bool {
        self.digest.is_some()
    }

    /// Checks an `Authorization` header value (HTTP header or gRPC metadata).
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<(), AuthError> {
        let Some(expected) = &self.digest else {
            return Ok(());
        };
        let presented = authorization
            .and_then(|value| std::str::from_utf8(value).ok())
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or(AuthError::Missing)?;
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        if bool::from(presented.ct_eq(expected.as_ref())) {
            Ok(())
        } else {
            Err(AuthError::Invalid)
        }
    }
}

/// The 401 answer for `error`, with its `WWW-Authenticate` challenge.
pub fn unauthorized(error: AuthError) -> Response {
    let challenge = match error {
        AuthError::Missing => "Bearer realm=\"crowsnest\"",
        AuthError::Invalid => "Bearer realm=\"crowsnest\", error=\"invalid_token\"",
    };
    let mut response = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({ "error": error.to_string() })),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_checked() {
        let open = Token::new(None);
        assert_eq!(open.check(None), Ok(()));
        let token = Token::new(Some("s3cret"));
        assert!(token.is_set());
        assert_eq!(token.check(None), Err(AuthError::Missing));
        assert_eq!(
            token.check(Some(b"Basic czNjcmV0")),
            Err(AuthError::Missing)
        );
        assert_eq!(token.check(Some(b"Bearer wrong")), Err(AuthError::Invalid));
        assert_eq!(token.check(Some(b"Bearer s3cre")), Err(AuthError::Invalid));
        assert_eq!(token.check(Some(b"Bearer s3cret")), Ok(()));
        assert_eq!(token.check(Some(b"bearer  s3cret ")), Ok(()));
        assert_eq!(token.check(Some(&[0xff, 0xfe])), Err(AuthError::Missing));
    }
}
