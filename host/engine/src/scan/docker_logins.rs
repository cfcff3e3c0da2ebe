//! Docker's own logins (`[credentials]`): the `auths` entries of Docker's
//! `config.json` and, when `helpers = true`, its credential helpers run on
//! the host (`docker-credential-NAME get`, the documented helper protocol:
//! the server URL on stdin, `{ServerURL, Username, Secret}` JSON on stdout).
//! They serve registry instances configured without credentials. A plugin
//! never runs anything: only this host module does, with a timeout.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::Mutex;

use crowsnest_config::Config;
use crowsnest_oci::docker_config::{DockerConfigFile, HelperAnswer, StoredLogin};
use crowsnest_oci::Auth;

/// How long a helper's answer (or failure) serves later lookups: every
/// container of a scan asks for its registry, the helper runs once.
const HELPER_ANSWER_TTL: Duration = Duration::from_secs(60);

/// What `docker-credential-*` helpers print when they hold no login for a server.
const HELPER_NOT_FOUND: &str = "credentials not found";

/// A login, none, or why it cannot be had.
type LoginResult = Result<Option<Auth>, String>;

/// Docker's logins, as `[credentials]` allows them to be used.
pub struct DockerLogins {
    /// Where `config.json` was read from (for messages).
    path: PathBuf,
    file: DockerConfigFile,
    helpers: bool,
    helper_timeout: Duration,
    /// Helper results per server URL, with when they were had.
    answers: Mutex<HashMap<String, (Instant, LoginResult)>>,
}

impl DockerLogins {
    /// The logins of `config`'s Docker config file, if one was found.
    pub fn from_config(config: &Config) -> Option<Self> {
        let found = config.docker_credentials.as_ref()?;
        Some(Self {
            path: found.path.clone(),
            file: found.file.clone(),
            helpers: config.credentials.helpers,
            helper_timeout: Duration::from_secs(config.credentials.helper_timeout_secs.max(1)),
            answers: Mutex::new(HashMap::new()),
        })
    }

    /// The Basic credentials Docker would use for registry `domain` (as an
    /// image names it; Docker Hub is `docker.io`): its helper's answer when
    /// helpers are allowed, else (or when the helper holds none) its `auths`
    /// entry. `Ok(None)`: Docker has no login for it. An error (a helper
    /// that fails, an unusable entry) belongs to that registry's containers.
    pub async fn login_for(&self, domain: &str) -> LoginResult {
        if self.helpers {
            if let Some((helper, server_url)) = self.file.helper_for(domain) {
                if let Some(auth) = self.helper_login(helper, &server_url).await? {
                    return Ok(Some(auth));
                }
            }
        } else if self.file.helper_for(domain).is_some() {
            tracing::debug!(
                domain,
                "Docker names a credential helper for this registry; not run ([credentials] helpers = false)"
            );
        }
        let Some((key, entry)) = self.file.auth_entry(domain) else {
            return Ok(None);
        };
        let login = entry
            .login()
            .map_err(|why| format!("{}: auths.\"{key}\": {why}", self.path.display()))?;
        self.usable(login, &format!("{}: auths.\"{key}\"", self.path.display()))
    }

    /// Basic credentials from a login, or why an identity token is not enough.
    fn usable(&self, login: Option<StoredLogin>, origin: &str) -> LoginResult {
        match login {
            Some(StoredLogin::Password(auth)) => Ok(Some(auth)),
            Some(StoredLogin::IdentityToken) => Err(format!(
                "{origin} holds only an identity token (an OAuth refresh token), which crowsnest does not exchange: \
                 `docker login` with a password or access token, or set username and password in [registries.NAME]"
            )),
            None => Ok(None),
        }
    }

    /// `helper`'s login for `server_url`, run at most once a minute.
    async fn helper_login(&self, helper: &str, server_url: &str) -> LoginResult {
        // Held while the helper runs: containers of one registry wait for
        // one run instead of starting their own.
        let mut answers = self.answers.lock().await;
        let key = format!("{helper}\0{server_url}");
        if let Some((at, result)) = answers.get(&key) {
            if at.elapsed() < HELPER_ANSWER_TTL {
                return result.clone();
            }
        }
        let result = run_helper(helper, server_url, self.helper_timeout)
            .await
            .and_then(|login| {
                self.usable(
                    login,
                    &format!("credential helper docker-credential-{helper} for `{server_url}`"),
                )
            });
        answers.insert(key, (Instant::now(), result.clone()));
        result
    }
}

/// Runs `docker-credential-HELPER get` for `server_url` within `timeout`.
/// `Ok(None)` when the helper holds no login for it.
async fn run_helper(
    helper: &str,
    server_url: &str,
    timeout: Duration,
) -> Result<Option<StoredLogin>, String> {
    let program = format!("docker-credential-{helper}");
    let failed = |why: String| format!("credential helper {program}: {why}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => failed("not found on PATH".into()),
            _ => failed(format!("cannot start: {err}")),
        })?;
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(server_url.as_bytes())
                .await
                .map_err(|err| failed(format!("cannot write the server URL: {err}")))?;
        }
        child
            .wait_with_output()
            .await
            .map_err(|err| failed(format!("cannot read its answer: {err}")))
    };
    // On timeout the future, and with it the child (kill_on_drop), is dropped.
    let output = tokio::time::timeout(timeout, run).await.map_err(|_| {
        failed(format!(
            "get `{server_url}` timed out after {} s ([credentials] helper_timeout_secs)",
            timeout.as_secs()
        ))
    })??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // Helpers print their errors on stdout (the protocol), some on stderr.
        if stdout.contains(HELPER_NOT_FOUND) {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said = [stdout.trim(), stderr.trim()]
            .into_iter()
            .filter(|text| !text.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(failed(format!(
            "get `{server_url}` failed ({}){}",
            output.status,
            if said.is_empty() {
                String::new()
            } else {
                format!(": {}", truncate(&said, 300))
            }
        )));
    }
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout).map_err(|err| {
        failed(format!(
            "get `{server_url}` did not answer {{ServerURL, Username, Secret}} JSON: {err}"
        ))
    })?;
    Ok(Some(answer.login()))
}

/// At most `max` bytes of `text`, on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or(text)
}
