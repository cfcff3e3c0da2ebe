//! Amazon ECR's `GetAuthorizationToken` (JSON 1.1 protocol): `POST /` with
//! `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken`,
//! `Content-Type: application/x-amz-json-1.1`, body `{}`, signed with SigV4.
//! The emulator recomputes the signature from the headers the request says
//! it signed (canonical request, string to sign, HMAC key chain, as AWS
//! documents them) and answers with a Base64 `user:password` for the real
//! registry behind it, valid 12 hours; an unknown key is
//! `UnrecognizedClientException`, a wrong signature
//! `InvalidSignatureException`, both 403, with AWS's `__type` JSON.

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::emulator::{expect_route, hmac_sha256, unix_now};
use super::{Answer, Received, Service};

/// The target header of the call.
pub const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";
/// How long ECR's registry passwords last.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The clock skew AWS tolerates on `X-Amz-Date`.
const MAX_SKEW_SECONDS: u64 = 300;

/// An ECR API endpoint knowing one access key, in one region.
pub struct Ecr {
    /// The access key id it knows.
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
    /// The region the endpoint serves.
    pub region: String,
    /// The registry credentials the token carries (`AWS`, password on real ECR).
    pub registry_user: (String, String),
}

/// `key=value` pairs of a SigV4 `Authorization` header after the algorithm.
fn authorization_fields(header: &str) -> Option<(String, String, String)> {
    let rest = header.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let field = |name: &str| {
        rest.split(',')
            .map(str::trim)
            .find_map(|part| part.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };
    Some((
        field("Credential")?,
        field("SignedHeaders")?,
        field("Signature")?,
    ))
}

impl Ecr {
    /// The problems of the request's signature, each starting with the
    /// error code AWS would answer.
    fn signature_problems(&self, request: &Received) -> Vec<String> {
        let Some((credential, signed_headers, signature)) = request
            .header("authorization")
            .and_then(authorization_fields)
        else {
            return vec![
                "MissingAuthenticationTokenException: no SigV4 Authorization header".into(),
            ];
        };
        let mut scope = credential.splitn(2, '/');
        let (key_id, scope) = (
            scope.next().unwrap_or_default(),
            scope.next().unwrap_or_default(),
        );
        if key_id != self.access_key_id {
            return vec![format!(
                "UnrecognizedClientException: unknown access key {key_id}"
            )];
        }
        let amz_date = request.header("x-amz-date").unwrap_or_default();
        let expected_scope = format!(
            "{}/{}/ecr/aws4_request",
            amz_date.get(..8).unwrap_or_default(),
            self.region
        );
        if scope != expected_scope {
            return vec![format!(
                "InvalidSignatureException: credential scope {scope}, expected {expected_scope}"
            )];
        }
        let signed: Vec<&str> = signed_headers.split(';').collect();
        for required in ["content-type", "host", "x-amz-date", "x-amz-target"] {
            if !signed.contains(&required) {
                return vec![format!(
                    "InvalidSignatureException: {required} is not signed"
                )];
            }
        }
        let canonical_headers: String = signed
            .iter()
            .map(|name| {
                format!(
                    "{name}:{}\n",
                    request.header(name).unwrap_or_default().trim()
                )
            })
            .collect();
        let query = String::new();
        let canonical_request = format!(
            "{}\n{}\n{query}\n{canonical_headers}\n{signed_headers}\n{}",
            request.method,
            request.path,
            hex::encode(Sha256::digest(&request.body))
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{expected_scope}\n{}",
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let date_key = hmac_sha256(
            format!("AWS4{}", self.secret_access_key).as_bytes(),
            amz_date.get(..8).unwrap_or_default(),
        );
        let region_key = hmac_sha256(&date_key, &self.region);
        let service_key = hmac_sha256(&region_key, "ecr");
        let signing_key = hmac_sha256(&service_key, "aws4_request");
        let expected = hex::encode(hmac_sha256(&signing_key, &string_to_sign));
        if signature != expected {
            return vec![format!(
                "InvalidSignatureException: The request signature we calculated does not match the signature you provided. Canonical request:\n{canonical_request}"
            )];
        }
        Vec::new()
    }
}

/// Seconds since the epoch of an `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`).
fn amz_seconds(amz_date: &str) -> Option<u64> {
    let parsed = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ").ok()?;
    u64::try_from(parsed.and_utc().timestamp()).ok()
}

impl Service for Ecr {
    fn check(&self, request: &Received) -> Vec<String> {
        let mut problems: Vec<String> = expect_route(request, "POST", "/")
            .into_iter()
            .map(|problem| format!("UnknownOperationException: {problem}"))
            .collect();
        if request.header("x-amz-target") != Some(TARGET) {
            problems.push(format!(
                "UnknownOperationException: X-Amz-Target {:?}",
                request.header("x-amz-target")
            ));
        }
        if request.header("content-type") != Some("application/x-amz-json-1.1") {
            problems.push(format!(
                "SerializationException: Content-Type {:?}",
                request.header("content-type")
            ));
        }
        if !request.json().is_object() {
            problems.push("SerializationException: the body is not a JSON object".into());
        }
        let skew = request
            .header("x-amz-date")
            .and_then(amz_seconds)
            .map(|at| at.abs_diff(unix_now()));
        if skew.is_none_or(|skew| skew > MAX_SKEW_SECONDS) {
            problems.push(format!("InvalidSignatureException: X-Amz-Date {:?} is missing or off by more than 5 minutes", request.header("x-amz-date")));
        }
        if problems.is_empty() {
            problems.extend(self.signature_problems(request));
        }
        problems
    }

    fn accept(&self, _request: &Received) -> Answer {
        let (user, password) = &self.registry_user;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        // ECR answers epoch seconds with a fraction.
        let expires_at = (unix_now() + TOKEN_LIFETIME.as_secs()) as f64 + 0.432;
        Answer::json(
            200,
            json!({"authorizationData": [{"authorizationToken": token, "expiresAt": expires_at,
                   "proxyEndpoint": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"}]}),
        )
    }

    fn reject(&self, problems: &[String]) -> Answer {
        let first = problems.first().map(String::as_str).unwrap_or_default();
        let (code, message) = first
            .split_once(": ")
            .unwrap_or(("ValidationException", first));
        let status = match code {
            "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "MissingAuthenticationTokenException" => 403,
            _ => 400,
        };
        Answer::json(status, json!({"__type": code, "message": message}))
            .with_header("x-amzn-RequestId", "8f1d0d1c-0000-4000-8000-000000000000")
    }

    fn fail(&self) -> Answer {
        Answer::json(
            500,
            json!({"__type": "ServerException", "message": "internal error"}),
        )
    }

    fn rate_limit(&self, _wait: Duration) -> Answer {
        Answer::json(
            400,
            json!({"__type": "ThrottlingException", "message": "Rate exceeded"}),
        )
    }

    fn text(&self, request: &Received) -> String {
        request.text()
    }

    fn says_how_long(&self) -> bool {
        false
    }
}
