//! Tencent Cloud TCR's `CreateInstanceToken` (API 3.0, version 2019-09-24):
//! `POST /` with `Content-Type: application/json; charset=utf-8`,
//! `X-TC-Action`, `X-TC-Version`, `X-TC-Region`, `X-TC-Timestamp` and a
//! TC3-HMAC-SHA256 `Authorization`, body `{"RegistryId", "TokenType"}`.
//! The emulator recomputes the signature as Tencent documents it (canonical
//! request over the signed headers, string to sign, key chain `"TC3"+SK` →
//! date → service → `tc3_request`) and answers, always with HTTP 200, either
//! `{"Response":{"Username","Token","ExpTime"(ms),"RequestId"}}` or
//! `{"Response":{"Error":{"Code","Message"},"RequestId"}}` with Tencent's
//! codes (`AuthFailure.SecretIdNotFound`, `AuthFailure.SignatureFailure`,
//! `AuthFailure.SignatureExpire`, `InvalidParameter`, `ResourceNotFound`,
//! `RequestLimitExceeded`, `InternalError`).

use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::emulator::{expect_route, hmac_sha256, unix_now};
use super::{Answer, Received, Service};

/// The action the emulator serves.
pub const ACTION: &str = "CreateInstanceToken";
/// How long temporary instance tokens last.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// The clock skew Tencent tolerates on `X-TC-Timestamp`.
const MAX_SKEW_SECONDS: u64 = 300;
const REQUEST_ID: &str = "6a3b1f0e-0000-4000-8000-000000000000";

/// A TCR API endpoint knowing one API key and one Enterprise instance.
pub struct Tencent {
    /// The SecretId it knows.
    pub secret_id: String,
    /// Its SecretKey.
    pub secret_key: String,
    /// The instance tokens are issued for (`tcr-…`).
    pub registry_id: String,
    /// The registry credentials a token carries.
    pub registry_user: (String, String),
}

impl Tencent {
    /// The problems of the TC3 signature, each starting with Tencent's code.
    fn signature_problems(&self, request: &Received, timestamp: u64) -> Vec<String> {
        let Some(fields) = request
            .header("authorization")
            .and_then(|header| header.strip_prefix("TC3-HMAC-SHA256 "))
        else {
            return vec![
                "AuthFailure.InvalidAuthorization: not a TC3-HMAC-SHA256 Authorization".into(),
            ];
        };
        let field = |name: &str| {
            fields
                .split(',')
                .map(str::trim)
                .find_map(|part| part.strip_prefix(&format!("{name}=")))
                .unwrap_or_default()
        };
        let credential = field("Credential");
        let (secret_id, scope) = credential.split_once('/').unwrap_or((credential, ""));
        if secret_id != self.secret_id {
            return vec![format!(
                "AuthFailure.SecretIdNotFound: The SecretId {secret_id} is not found"
            )];
        }
        let date = chrono::DateTime::from_timestamp(timestamp as i64, 0)
            .map(|at| at.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        let expected_scope = format!("{date}/tcr/tc3_request");
        if scope != expected_scope {
            return vec![format!(
                "AuthFailure.SignatureFailure: credential scope {scope}, expected {expected_scope}"
            )];
        }
        let signed_headers = field("SignedHeaders");
        let signed: Vec<&str> = signed_headers.split(';').collect();
        if !signed.contains(&"content-type") || !signed.contains(&"host") {
            return vec![
                "AuthFailure.SignatureFailure: content-type and host must be signed".into(),
            ];
        }
        let canonical_headers: String = signed
            .iter()
            .map(|name| {
                format!(
                    "{name}:{}\n",
                    request
                        .header(name)
                        .unwrap_or_default()
                        .trim()
                        .to_ascii_lowercase()
                )
            })
            .collect();
        let canonical_request = format!(
            "{}\n/\n\n{canonical_headers}\n{signed_headers}\n{}",
            request.method,
            hex::encode(Sha256::digest(&request.body))
        );
        let string_to_sign = format!(
            "TC3-HMAC-SHA256\n{timestamp}\n{expected_scope}\n{}",
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let date_key = hmac_sha256(format!("TC3{}", self.secret_key).as_bytes(), &date);
        let service_key = hmac_sha256(&date_key, "tcr");
        let signing_key = hmac_sha256(&service_key, "tc3_request");
        let expected = hex::encode(hmac_sha256(&signing_key, &string_to_sign));
        if field("Signature") != expected {
            return vec![format!("AuthFailure.SignatureFailure: The provided credentials could not be validated. Canonical request:\n{canonical_request}")];
        }
        Vec::new()
    }
}

impl Service for Tencent {
    fn check(&self, request: &Received) -> Vec<String> {
        let mut problems: Vec<String> = expect_route(request, "POST", "/")
            .into_iter()
            .map(|problem| format!("InvalidAction: {problem}"))
            .collect();
        for (header, expected) in [
            ("x-tc-action", ACTION),
            ("x-tc-version", "2019-09-24"),
            ("content-type", "application/json; charset=utf-8"),
        ] {
            if request.header(header) != Some(expected) {
                problems.push(format!(
                    "InvalidParameter: {header} is {:?}",
                    request.header(header)
                ));
            }
        }
        if request.header("x-tc-region").is_none_or(str::is_empty) {
            problems.push("MissingParameter: X-TC-Region".into());
        }
        let timestamp = request
            .header("x-tc-timestamp")
            .and_then(|t| t.parse::<u64>().ok());
        match timestamp {
            Some(at) if at.abs_diff(unix_now()) <= MAX_SKEW_SECONDS => {}
            _ => problems.push(format!(
                "AuthFailure.SignatureExpire: X-TC-Timestamp {:?} is missing or off by more than 5 minutes",
                request.header("x-tc-timestamp")
            )),
        }
        if problems.is_empty() {
            problems.extend(self.signature_problems(request, timestamp.unwrap_or_default()));
        }
        if problems.is_empty() {
            let body = request.json();
            if body["RegistryId"].as_str() != Some(self.registry_id.as_str()) {
                problems.push(format!(
                    "ResourceNotFound: instance {} does not exist",
                    body["RegistryId"]
                ));
            }
            if !matches!(body["TokenType"].as_str(), Some("temp" | "longterm")) {
                problems.push(format!("InvalidParameter: TokenType {}", body["TokenType"]));
            }
        }
        problems
    }

    fn accept(&self, _request: &Received) -> Answer {
        let (user, token) = &self.registry_user;
        let expires_ms = (unix_now() + TOKEN_LIFETIME.as_secs()) * 1000;
        Answer::json(
            200,
            json!({"Response": {"Username": user, "Token": token, "ExpTime": expires_ms, "RequestId": REQUEST_ID}}),
        )
    }

    fn reject(&self, problems: &[String]) -> Answer {
        let first = problems.first().map(String::as_str).unwrap_or_default();
        let (code, message) = first
            .split_once(": ")
            .unwrap_or(("InvalidParameter", first));
        Answer::json(
            200,
            json!({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": REQUEST_ID}}),
        )
    }

    fn fail(&self) -> Answer {
        Answer::json(
            200,
            json!({"Response": {"Error": {"Code": "InternalError", "Message": "internal error"}, "RequestId": REQUEST_ID}}),
        )
    }

    fn rate_limit(&self, _wait: Duration) -> Answer {
        Answer::json(
            200,
            json!({"Response": {"Error": {"Code": "RequestLimitExceeded", "Message": "Your current request times equals to `20` in a second"}, "RequestId": REQUEST_ID}}),
        )
    }

    fn text(&self, request: &Received) -> String {
        request.text()
    }

    fn says_how_long(&self) -> bool {
        false
    }
}
