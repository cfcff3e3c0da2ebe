//! Alibaba Cloud Container Registry's `GetAuthorizationToken` (Enterprise
//! Edition, API version 2018-12-01) as an RPC call: `GET /?Action=…&Version=…`
//! with the common parameters (`Format`, `AccessKeyId`, `SignatureMethod=HMAC-SHA1`,
//! `SignatureVersion=1.0`, `SignatureNonce`, `Timestamp`) and `Signature`.
//! The emulator recomputes the signature as Alibaba documents it (sorted,
//! percent-encoded parameters; `GET&%2F&encode(query)`; Base64 HMAC-SHA1
//! keyed with `secret&`), refuses a reused nonce or a stale timestamp, and
//! answers `{TempUsername, AuthorizationToken, ExpireTime (ms), IsSuccess,
//! RequestId}`, or Alibaba's error body `{RequestId, HostId, Code, Message,
//! Recommend}` with its status: `404 InvalidAccessKeyId.NotFound`,
//! `400 SignatureDoesNotMatch`, `400 SignatureNonceUsed`,
//! `400 InvalidTimeStamp.Expired`, `400 MissingParameter`, `404 InstanceNotExist`.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;

use super::emulator::{expect_route, unix_now};
use super::{Answer, Received, Service};

/// The action the emulator serves.
pub const ACTION: &str = "GetAuthorizationToken";
/// How long temporary tokens last.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// The clock skew Alibaba tolerates on `Timestamp`.
const MAX_SKEW_SECONDS: u64 = 900;
const REQUEST_ID: &str = "0F5F1C4B-0000-4000-8000-000000000000";

/// A Container Registry API endpoint knowing one AccessKey and one instance.
pub struct Aliyun {
    /// The AccessKey id it knows.
    pub access_key_id: String,
    /// Its secret.
    pub access_key_secret: String,
    /// The Enterprise Edition instance tokens are issued for.
    pub instance_id: String,
    /// The registry credentials a token carries.
    pub registry_user: (String, String),
    nonces: Mutex<BTreeSet<String>>,
}

impl Aliyun {
    /// The endpoint for `instance_id`, with one known AccessKey.
    pub fn new(
        access_key_id: &str,
        access_key_secret: &str,
        instance_id: &str,
        registry_user: (String, String),
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
            instance_id: instance_id.into(),
            registry_user,
            nonces: Mutex::default(),
        }
    }
}

/// Alibaba's percent-encoding: RFC 3986 unreserved characters kept, every
/// other byte `%XX` in upper-case hex (space `%20`, `*` `%2A`).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Base64 of HMAC-SHA1(`key`, `message`), computed by openssl (an
/// implementation independent of the plugin's, and no SHA-1 crate in the
/// host workspace for one emulator).
fn hmac_sha1_base64(key: &str, message: &str) -> String {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha1", "-binary", "-hmac", key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl dgst");
    child
        .stdin
        .take()
        .expect("openssl stdin")
        .write_all(message.as_bytes())
        .expect("write to openssl");
    let output = child.wait_with_output().expect("openssl output");
    base64::engine::general_purpose::STANDARD.encode(output.stdout)
}

impl Service for Aliyun {
    fn check(&self, request: &Received) -> Vec<String> {
        let mut problems: Vec<String> = expect_route(request, "GET", "/")
            .into_iter()
            .map(|problem| format!("404 InvalidAction.NotFound: {problem}"))
            .collect();
        let query = &request.query;
        let param = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
        for (name, expected) in [
            ("Action", ACTION),
            ("Version", "2018-12-01"),
            ("Format", "JSON"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
        ] {
            if param(name) != expected {
                problems.push(format!("400 InvalidParameter: {name} is {:?}", param(name)));
            }
        }
        for name in ["SignatureNonce", "Signature", "RegionId"] {
            if param(name).is_empty() {
                problems.push(format!("400 MissingParameter: {name}"));
            }
        }
        let at = chrono::DateTime::parse_from_rfc3339(param("Timestamp"))
            .ok()
            .and_then(|at| u64::try_from(at.timestamp()).ok());
        if at.is_none_or(|at| at.abs_diff(unix_now()) > MAX_SKEW_SECONDS) {
            problems.push(format!(
                "400 InvalidTimeStamp.Expired: Timestamp {:?}",
                param("Timestamp")
            ));
        }
        if !problems.is_empty() {
            return problems;
        }
        if param("AccessKeyId") != self.access_key_id {
            return vec![format!(
                "404 InvalidAccessKeyId.NotFound: Specified access key is not found: {}",
                param("AccessKeyId")
            )];
        }
        let canonical = query
            .iter()
            .filter(|(name, _)| *name != "Signature")
            .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let string_to_sign = format!("{}&%2F&{}", request.method, encode(&canonical));
        let expected = hmac_sha1_base64(&format!("{}&", self.access_key_secret), &string_to_sign);
        if param("Signature") != expected {
            return vec![format!("400 SignatureDoesNotMatch: Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}")];
        }
        let fresh = self
            .nonces
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(param("SignatureNonce").to_string());
        if !fresh {
            return vec![
                "400 SignatureNonceUsed: Specified signature nonce was used already.".into(),
            ];
        }
        if param("InstanceId") != self.instance_id {
            return vec![format!(
                "404 InstanceNotExist: instance {:?} does not exist",
                param("InstanceId")
            )];
        }
        Vec::new()
    }

    fn accept(&self, _request: &Received) -> Answer {
        let (user, token) = &self.registry_user;
        Answer::json(
            200,
            json!({"TempUsername": user, "AuthorizationToken": token,
                   "ExpireTime": (unix_now() + TOKEN_LIFETIME.as_secs()) * 1000,
                   "IsSuccess": true, "Code": "success", "RequestId": REQUEST_ID}),
        )
    }

    fn reject(&self, problems: &[String]) -> Answer {
        let first = problems.first().map(String::as_str).unwrap_or_default();
        let (status, rest) = first.split_once(' ').unwrap_or(("400", first));
        let (code, message) = rest.split_once(": ").unwrap_or((rest, ""));
        Answer::json(
            status.parse().unwrap_or(400),
            json!({"RequestId": REQUEST_ID, "HostId": "cr.cn-hangzhou.aliyuncs.com", "Code": code,
                   "Message": message, "Recommend": "https://api.aliyun.com/troubleshoot"}),
        )
    }

    fn fail(&self) -> Answer {
        Answer::json(
            500,
            json!({"RequestId": REQUEST_ID, "Code": "InternalError", "Message": "The request processing has failed due to some unknown error."}),
        )
    }

    fn rate_limit(&self, _wait: Duration) -> Answer {
        Answer::json(
            400,
            json!({"RequestId": REQUEST_ID, "Code": "Throttling", "Message": "Request was denied due to request throttling."}),
        )
    }

    fn text(&self, request: &Received) -> String {
        format!("{:?}", request.query)
    }

    fn says_how_long(&self) -> bool {
        false
    }
}
