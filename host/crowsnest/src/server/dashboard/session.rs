//! Dashboard sessions: the login form trades the API token for an opaque,
//! random session id kept here with its expiry and its CSRF token; the
//! session cookie is `HttpOnly`, `SameSite=Strict`, `Path=/` (and `Secure`
//! behind a TLS proxy that sends `X-Forwarded-Proto: https`).
//!
//! The same session authenticates the API for the dashboard's own calls
//! (`EventSource` cannot send a bearer header): reads with the cookie alone,
//! every other method only with the session's CSRF token in
//! `X-CSRF-Token` and a same-origin `Origin`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::server::auth::unauthorized;
use crate::server::AppState;

/// Name of the session cookie.
pub const COOKIE: &str = "crowsnest_session";
/// Header carrying the CSRF token on the dashboard's `fetch` calls.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field carrying the CSRF token on the dashboard's plain form posts.
pub const CSRF_FIELD: &str = "csrf";
/// How long a session lasts after login.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// A logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The opaque id in the cookie.
    pub id: String,
    /// The token every unsafe request of this session must echo.
    pub csrf: String,
}

struct Entry {
    csrf: String,
    expires: Instant,
}

/// The live sessions, kept in memory (a restart logs everyone out).
#[derive(Default, Clone)]
pub struct Sessions {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions")
    }
}

/// 32 random bytes as hex, from the operating system's generator via `rand`.
fn random_hex() -> String {
    use std::fmt::Write as _;
    let bytes: [u8; 32] = rand::random();
    bytes
        .iter()
        .fold(String::with_capacity(64), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

impl Sessions {
    /// Starts a session (dropping expired ones).
    pub fn create(&self) -> Session {
        let session = Session {
            id: random_hex(),
            csrf: random_hex(),
        };
        if let Ok(mut entries) = self.entries.lock() {
            let now = Instant::now();
            entries.retain(|_, entry| entry.expires > now);
            entries.insert(
                session.id.clone(),
                Entry {
                    csrf: session.csrf.clone(),
                    expires: now + SESSION_LIFETIME,
                },
            );
        }
        session
    }

    /// The live session with `id`, if any.
    pub fn get(&self, id: &str) -> Option<Session> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(id)?;
        (entry.expires > Instant::now()).then(|| Session {
            id: id.to_owned(),
            csrf: entry.csrf.clone(),
        })
    }

    /// Ends the session with `id`.
    pub fn remove(&self, id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(id);
        }
    }

    /// The session named by the request's cookie, if it is live.
    pub fn from_headers(&self, headers: &HeaderMap) -> Option<Session> {
        self.get(&cookie_value(headers, COOKIE)?)
    }
}

/// The value of cookie `name` in the `Cookie` headers. (Six lines of
/// splitting: a cookie crate would add a dependency for one lookup.)
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_owned())
}

/// Whether the request came through a TLS-terminating proxy.
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value that stores `id` (or, with `None`, clears the cookie).
pub fn set_cookie(headers: &HeaderMap, id: Option<&str>) -> HeaderValue {
    let secure = if over_tls(headers) { "; Secure" } else { "" };
    let text = match id {
        Some(id) => format!(
            "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
            SESSION_LIFETIME.as_secs()
        ),
        None => format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"),
    };
    // Hex ids and fixed text only: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("crowsnest_session="))
}

/// Whether the request is same-origin: an `Origin` header, when sent, must
/// name this very host; without one, `Sec-Fetch-Site` must not say cross-site.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let header_text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    match (header_text("origin"), header_text("host")) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
        (None, _) => {
            header_text("sec-fetch-site").is_none_or(|site| matches!(site, "same-origin" | "none"))
        }
    }
}

/// Whether `presented` is the session's CSRF token (constant time).
pub fn csrf_matches(session: &Session, presented: Option<&str>) -> bool {
    presented
        .is_some_and(|presented| bool::from(presented.as_bytes().ct_eq(session.csrf.as_bytes())))
}

/// axum middleware of the API: the bearer token, or a dashboard session
/// (with its CSRF token and a same-origin request for anything but reads).
pub async fn require_api_auth(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if bearer.is_none() && state.token.is_set() {
        if let Some(session) = state.sessions.from_headers(headers) {
            let safe = matches!(*request.method(), Method::GET | Method::HEAD);
            let csrf = headers
                .get(CSRF_HEADER)
                .and_then(|value| value.to_str().ok());
            if safe || (same_origin(headers) && csrf_matches(&session, csrf)) {
                return next.run(request).await;
            }
            return forbidden_cross_site();
        }
    }
    match state.token.check(bearer) {
        Ok(()) => next.run(request).await,
        Err(error) => unauthorized(error),
    }
}

/// 403 for a session request without its CSRF token or from another origin.
pub fn forbidden_cross_site() -> Response {
    use axum::response::IntoResponse as _;
    (
        axum::http::StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({
            "error": "this session request lacks its CSRF token (X-CSRF-Token) or comes from another origin"
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn sessions_are_random_found_by_cookie_and_removed() {
        let sessions = Sessions::default();
        let one = sessions.create();
        let two = sessions.create();
        assert_eq!(one.id.len(), 64);
        assert_ne!(one.id, two.id);
        assert_ne!(one.id, one.csrf);
        let cookie = format!("theme=dark; {COOKIE}={}", one.id);
        let found = sessions
            .from_headers(&headers(&[("cookie", &cookie)]))
            .unwrap();
        assert_eq!(found.csrf, one.csrf);
        sessions.remove(&one.id);
        assert!(sessions
            .from_headers(&headers(&[("cookie", &cookie)]))
            .is_none());
        assert!(sessions.get("forged").is_none());
    }

    #[test]
    fn cookies_are_strict_and_secure_behind_tls() {
        let plain = set_cookie(&HeaderMap::new(), Some("abc"));
        let plain = plain.to_str().unwrap();
        assert!(plain.starts_with("crowsnest_session=abc; HttpOnly; SameSite=Strict; Path=/"));
        assert!(!plain.contains("Secure"));
        let tls = set_cookie(&headers(&[("x-forwarded-proto", "https")]), Some("abc"));
        assert!(tls.to_str().unwrap().ends_with("; Secure"));
        assert!(set_cookie(&HeaderMap::new(), None)
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
    }

    #[test]
    fn origins_are_checked() {
        let host = ("host", "127.0.0.1:3000");
        assert!(same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:3000")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[host, ("origin", "null")])));
        assert!(same_origin(&headers(&[host])));
        assert!(!same_origin(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
    }
}
