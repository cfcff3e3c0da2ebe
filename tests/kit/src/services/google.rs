//! Google's OAuth 2.0 token endpoint for service accounts
//! (developers.google.com/identity/protocols/oauth2/service-account):
//! `POST /token`, form `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT`.
//! The emulator verifies the JWT as Google does: header `{"alg":"RS256","typ":"JWT","kid"}`,
//! claims `iss` (the account), `scope`, `aud` (this endpoint), `iat` near
//! now, `exp` at most an hour later, and the RSASSA-PKCS1-v1_5/SHA-256
//! signature against the account's public key; it answers
//! `{access_token, expires_in: 3599, token_type: "Bearer"}`, or
//! `400 {"error":"invalid_grant","error_description":…}`.

use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use serde_json::{json, Value};
use sha2::Sha256;

use super::emulator::{expect_route, unix_now};
use super::{Answer, Received, Service};

/// The access token the emulator issues (also the registry password behind it).
pub const ACCESS_TOKEN: &str = "ya29.c.crowsnest-test-access-token";
/// The scope a registry client asks for.
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// A fresh RSA key as PEM (PKCS#8 private, SPKI public), made by openssl.
pub fn rsa_key_pair() -> (String, String) {
    let dir = tempfile::tempdir().expect("key dir");
    let private = dir.path().join("key.pem");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let path = private.to_string_lossy().to_string();
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        &path,
    ]);
    let public = run(&["pkey", "-in", &path, "-pubout"]);
    let private = std::fs::read_to_string(&private).expect("read key");
    (private, String::from_utf8(public).expect("PEM"))
}

/// Google's token endpoint knowing one service account.
pub struct Google {
    /// The account's `client_email`.
    pub client_email: String,
    /// Its `private_key_id` (the JWT `kid`).
    pub key_id: String,
    /// Its public key (SPKI PEM).
    pub public_key_pem: String,
}

fn form(request: &Received) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

fn segment(part: Option<&str>) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part?).ok()?).ok()
}

impl Google {
    fn assertion_problems(&self, request: &Received, assertion: &str) -> Vec<String> {
        let mut parts = assertion.split('.');
        let (Some(header), Some(claims)) = (segment(parts.next()), segment(parts.next())) else {
            return vec!["invalid_grant: the assertion is not a JWT".into()];
        };
        let mut problems = Vec::new();
        for (field, expected) in [
            ("alg", "RS256"),
            ("typ", "JWT"),
            ("kid", self.key_id.as_str()),
        ] {
            if header[field] != expected {
                problems.push(format!(
                    "invalid_grant: JWT header {field} is {}",
                    header[field]
                ));
            }
        }
        let audience = format!(
            "http://{}/token",
            request.header("host").unwrap_or_default()
        );
        for (field, expected) in [
            ("iss", self.client_email.as_str()),
            ("scope", SCOPE),
            ("aud", audience.as_str()),
        ] {
            if claims[field] != expected {
                problems.push(format!(
                    "invalid_grant: claim {field} is {}, expected {expected}",
                    claims[field]
                ));
            }
        }
        let (iat, exp) = (
            claims["iat"].as_u64().unwrap_or(0),
            claims["exp"].as_u64().unwrap_or(0),
        );
        if iat.abs_diff(unix_now()) > 300 || exp <= iat || exp - iat > 3600 {
            problems.push(format!("invalid_grant: Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe (iat {iat}, exp {exp})"));
        }
        let signed = assertion
            .rsplit_once('.')
            .map(|(input, signature)| (input, URL_SAFE_NO_PAD.decode(signature)));
        let key =
            RsaPublicKey::from_public_key_pem(&self.public_key_pem).expect("emulator public key");
        let verified = signed.is_some_and(|(input, signature)| {
            signature
                .ok()
                .and_then(|bytes| Signature::try_from(bytes.as_slice()).ok())
                .is_some_and(|signature| {
                    VerifyingKey::<Sha256>::new(key)
                        .verify(input.as_bytes(), &signature)
                        .is_ok()
                })
        });
        if !verified {
            problems.push("invalid_grant: Invalid JWT Signature.".into());
        }
        problems
    }
}

impl Service for Google {
    fn check(&self, request: &Received) -> Vec<String> {
        let mut problems: Vec<String> = expect_route(request, "POST", "/token")
            .into_iter()
            .map(|problem| format!("invalid_request: {problem}"))
            .collect();
        if request.header("content-type") != Some("application/x-www-form-urlencoded") {
            problems.push(format!(
                "invalid_request: Content-Type {:?}",
                request.header("content-type")
            ));
        }
        let form = form(request);
        let field = |name: &str| {
            form.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        if field("grant_type") != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
            problems.push(format!("unsupported_grant_type: {:?}", field("grant_type")));
        }
        match field("assertion") {
            Some(assertion) => problems.extend(self.assertion_problems(request, assertion)),
            None => problems.push("invalid_request: no assertion".into()),
        }
        problems
    }

    fn accept(&self, _request: &Received) -> Answer {
        Answer::json(
            200,
            json!({"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"}),
        )
    }

    fn reject(&self, problems: &[String]) -> Answer {
        let first = problems.first().map(String::as_str).unwrap_or_default();
        let (error, description) = first.split_once(": ").unwrap_or(("invalid_grant", first));
        Answer::json(
            400,
            json!({"error": error, "error_description": description}),
        )
    }

    fn fail(&self) -> Answer {
        Answer::json(
            503,
            json!({"error": "internal_failure", "error_description": "Backend Error"}),
        )
    }

    fn rate_limit(&self, _wait: Duration) -> Answer {
        Answer::json(
            429,
            json!({"error": "rate_limit_exceeded", "error_description": "Rate Limit Exceeded"}),
        )
    }

    fn text(&self, request: &Received) -> String {
        request.text()
    }

    fn says_how_long(&self) -> bool {
        false
    }
}
