//! Test-only Docker registry token server for the loopback test world
//! (`scripts/registries.sh`). It issues RS256 JWTs whose `x5c` header carries
//! a self-signed certificate the registry trusts (`auth.token.rootcertbundle`).
//!
//! Policy: anonymous callers may `pull` repositories under `public/`; the
//! configured users (default `bob:builder`) get every action they ask for.
//! Exactly the requested actions the caller may have are granted.
//!
//! Endpoints: `GET /token?service=…&scope=…` (Docker token protocol),
//! `GET /stats` (request counts, so tests can assert token caching),
//! `GET /health`.
//!
//! Usage: `crowsnest-token-server --key KEY.pk8.der --cert CERT.der
//! [--listen 127.0.0.1:5010] [--issuer I] [--service S] [--expires-in SECS]
//! [--user NAME:PASSWORD]…`

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;

/// Repositories anonymous callers may pull.
const PUBLIC_PREFIX: &str = "public/";

/// Command-line settings.
struct Settings {
    listen: SocketAddr,
    key_path: String,
    cert_path: String,
    issuer: String,
    service: String,
    expires_in: u64,
    users: Vec<(String, String)>,
}

impl Settings {
    fn from_args() -> anyhow::Result<Self> {
        let mut settings = Settings {
            listen: "127.0.0.1:5010".parse()?,
            key_path: String::new(),
            cert_path: String::new(),
            issuer: "crowsnest-test-token-server".into(),
            service: "crowsnest-test-registry".into(),
            expires_in: 300,
            users: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--listen" => settings.listen = value.parse().context("--listen")?,
                "--key" => settings.key_path = value,
                "--cert" => settings.cert_path = value,
                "--issuer" => settings.issuer = value,
                "--service" => settings.service = value,
                "--expires-in" => settings.expires_in = value.parse().context("--expires-in")?,
                "--user" => {
                    let (name, password) = value
                        .split_once(':')
                        .context("--user takes NAME:PASSWORD")?;
                    settings.users.push((name.into(), password.into()));
                }
                other => bail!("unknown flag {other}"),
            }
        }
        if settings.key_path.is_empty() || settings.cert_path.is_empty() {
            bail!("--key KEY.pk8.der and --cert CERT.der are required");
        }
        if !settings.listen.ip().is_loopback() {
            bail!(
                "refusing to listen on non-loopback address {}",
                settings.listen
            );
        }
        if settings.users.is_empty() {
            settings.users.push(("bob".into(), "builder".into()));
        }
        Ok(settings)
    }
}

/// Counters served by `GET /stats`.
#[derive(Debug, Default, Serialize)]
struct Stats {
    /// Every `/token` request.
    token_requests: u64,
    /// Tokens issued.
    tokens_issued: u64,
    /// Requests refused (bad credentials, wrong service).
    rejected: u64,
    /// Requests per requested scope.
    by_scope: BTreeMap<String, u64>,
    /// Requests per account (`anonymous` for none).
    by_account: BTreeMap<String, u64>,
}

struct State {
    settings: Settings,
    key: RsaKeyPair,
    certificate_base64: String,
    rng: SystemRandom,
    serial: AtomicU64,
    stats: Mutex<Stats>,
}

/// One granted access entry of the JWT `access` claim.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct Access {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    actions: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_args()?;
    let key_der = std::fs::read(&settings.key_path)
        .with_context(|| format!("reading {}", settings.key_path))?;
    let key = RsaKeyPair::from_pkcs8(&key_der).map_err(|error| {
        anyhow::anyhow!("{} is not a PKCS#8 RSA key: {error}", settings.key_path)
    })?;
    let certificate = std::fs::read(&settings.cert_path)
        .with_context(|| format!("reading {}", settings.cert_path))?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    println!("token server listening on http://{}", settings.listen);
    let state = Arc::new(State {
        settings,
        key,
        certificate_base64: STANDARD.encode(certificate),
        rng: SystemRandom::new(),
        serial: AtomicU64::new(0),
        stats: Mutex::default(),
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(route(&state, request)) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection error: {error}");
            }
        });
    }
}

fn route(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/token") => token(state, &request),
        (&Method::GET, "/stats") => {
            let body = state
                .stats
                .lock()
                .map(|stats| json!(*stats))
                .unwrap_or_else(|_| json!({"error": "stats lock poisoned"}));
            json_response(StatusCode::OK, &body)
        }
        (&Method::GET, "/health") => json_response(StatusCode::OK, &json!({"ok": true})),
        _ => json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
    }
}

fn token(state: &State, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let query = request.uri().query().unwrap_or_default();
    let mut service = None;
    let mut scopes = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "service" => service = Some(value.into_owned()),
            "scope" => scopes.extend(
                value
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            _ => {}
        }
    }
    let account = match authenticate(&state.settings, request) {
        Ok(account) => account,
        Err(message) => {
            record(state, &scopes, "invalid-credentials", false);
            println!("token request rejected: {message}");
            let mut response = json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"errors": [{"code": "UNAUTHORIZED", "message": message}]}),
            );
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static(
                    "Basic realm=\"crowsnest-test-token-server\"",
                ),
            );
            return response;
        }
    };
    let account_label = account.clone().unwrap_or_else(|| "anonymous".into());
    if service.as_deref() != Some(state.settings.service.as_str()) {
        record(state, &scopes, &account_label, false);
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"errors": [{"code": "UNSUPPORTED", "message": format!("unknown service {service:?}")}]}),
        );
    }
    let access: Vec<Access> = scopes
        .iter()
        .filter_map(|scope| grant(scope, account.as_deref()))
        .collect();
    println!("token for {account_label}: requested {scopes:?}, granted {access:?}");
    match sign_token(state, account.as_deref().unwrap_or_default(), &access) {
        Ok((jwt, issued_at)) => {
            record(state, &scopes, &account_label, true);
            json_response(
                StatusCode::OK,
                &json!({
                    "token": jwt,
                    "access_token": jwt,
                    "expires_in": state.settings.expires_in,
                    "issued_at": issued_at,
                }),
            )
        }
        Err(message) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"errors": [{"code": "UNKNOWN", "message": message}]}),
        ),
    }
}

fn record(state: &State, scopes: &[String], account: &str, issued: bool) {
    if let Ok(mut stats) = state.stats.lock() {
        stats.token_requests += 1;
        if issued {
            stats.tokens_issued += 1;
        } else {
            stats.rejected += 1;
        }
        for scope in scopes {
            *stats.by_scope.entry(scope.clone()).or_default() += 1;
        }
        *stats.by_account.entry(account.to_string()).or_default() += 1;
    }
}

/// `Ok(None)` for anonymous, `Ok(Some(user))` for valid Basic credentials.
fn authenticate(
    settings: &Settings,
    request: &Request<Incoming>,
) -> Result<Option<String>, String> {
    let Some(header) = request.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let header = header
        .to_str()
        .map_err(|_| "authorization header is not text".to_string())?;
    let encoded = header
        .strip_prefix("Basic ")
        .ok_or_else(|| "only Basic credentials are accepted".to_string())?;
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| "malformed Basic credentials".to_string())?;
    let (name, password) = decoded
        .split_once(':')
        .ok_or_else(|| "malformed Basic credentials".to_string())?;
    if settings
        .users
        .iter()
        .any(|(user, secret)| user == name && secret == password)
    {
        Ok(Some(name.to_string()))
    } else {
        Err(format!("invalid username or password for {name:?}"))
    }
}

/// The actions of `scope` (`type:name:actions`) the account may have.
fn grant(scope: &str, account: Option<&str>) -> Option<Access> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let granted: Vec<String> = actions
        .split(',')
        .filter(|action| !action.is_empty())
        .filter(|action| match account {
            Some(_) => true,
            None => kind == "repository" && name.starts_with(PUBLIC_PREFIX) && *action == "pull",
        })
        .map(str::to_string)
        .collect();
    (!granted.is_empty()).then(|| Access {
        kind: kind.to_string(),
        name: name.to_string(),
        actions: granted,
    })
}

/// Builds and signs the JWT; returns it and its RFC 3339 issue time.
fn sign_token(state: &State, subject: &str, access: &[Access]) -> Result<(String, String), String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|error| error.to_string())?
        .as_secs();
    let serial = state.serial.fetch_add(1, Ordering::Relaxed);
    let header = json!({"alg": "RS256", "typ": "JWT", "x5c": [state.certificate_base64]});
    let claims = json!({
        "iss": state.settings.issuer,
        "sub": subject,
        "aud": state.settings.service,
        "exp": now + state.settings.expires_in,
        "nbf": now.saturating_sub(10),
        "iat": now,
        "jti": format!("{now}-{serial}"),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; state.key.public().modulus_len()];
    state
        .key
        .sign(
            &RSA_PKCS1_SHA256,
            &state.rng,
            signing_input.as_bytes(),
            &mut signature,
        )
        .map_err(|error| format!("signing failed: {error}"))?;
    Ok((
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)),
        rfc3339(now),
    ))
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (days-to-civil, proleptic Gregorian).
fn rfc3339(epoch_seconds: u64) -> String {
    let days = (epoch_seconds / 86_400) as i64;
    let seconds_of_day = epoch_seconds % 86_400;
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds_of_day / 3600,
        seconds_of_day % 3600 / 60,
        seconds_of_day % 60
    )
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_only_what_the_account_may_have() {
        assert_eq!(
            grant("repository:public/app:pull,push", None),
            Some(Access {
                kind: "repository".into(),
                name: "public/app".into(),
                actions: vec!["pull".into()]
            })
        );
        assert_eq!(grant("repository:private/app:pull", None), None);
        assert_eq!(
            grant("repository:private/app:pull,push", Some("bob")).map(|a| a.actions),
            Some(vec!["pull".to_string(), "push".to_string()])
        );
        assert_eq!(
            grant("repository:127.0.0.1:5003/x:pull", Some("bob")).map(|a| a.name),
            Some("127.0.0.1:5003/x".to_string())
        );
        assert_eq!(grant("garbage", Some("bob")), None);
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
