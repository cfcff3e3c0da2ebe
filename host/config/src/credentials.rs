//! `[credentials]`: where Docker's own logins are read from
//! (`~/.docker/config.json`), and whether the host may run the credential
//! helpers it names.

use std::path::{Path, PathBuf};

use crowsnest_oci::docker_config::DockerConfigFile;

/// `[credentials]`: Docker's `config.json` and its credential helpers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CredentialsConfig {
    /// Docker's `config.json` (or the directory holding it); `~/` is the
    /// home directory. Default: `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`, when it exists.
    pub docker_config: Option<PathBuf>,
    /// Run the `credHelpers`/`credsStore` helpers the file names
    /// (`docker-credential-NAME get`) on the host. Off unless set.
    pub helpers: bool,
    /// Wall-clock bound of one helper run, seconds.
    pub helper_timeout_secs: u64,
}

impl Default for CredentialsConfig {
    fn default() -> Self {
        Self {
            docker_config: None,
            helpers: false,
            helper_timeout_secs: 10,
        }
    }
}

/// Docker's `config.json` as read at start-up.
#[derive(Debug, Clone, Default)]
pub struct DockerCredentials {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its logins and helpers.
    pub file: DockerConfigFile,
}

impl CredentialsConfig {
    /// Reads the Docker config this section names, or the default one when
    /// it exists. `home` and `docker_config_dir` are `$HOME` and
    /// `$DOCKER_CONFIG`. An explicit file that cannot be read is an error;
    /// a broken default one is logged and skipped (it is not crowsnest's).
    pub fn load_docker_config(
        &self,
        home: Option<&Path>,
        docker_config_dir: Option<&Path>,
    ) -> Result<Option<DockerCredentials>, String> {
        let (path, explicit) = match &self.docker_config {
            Some(path) => (expand_home(path, home)?, true),
            None => match docker_config_dir
                .map(Path::to_path_buf)
                .or_else(|| home.map(|home| home.join(".docker")))
            {
                Some(dir) => (dir.join("config.json"), false),
                None => return Ok(None),
            },
        };
        let path = if path.is_dir() {
            path.join("config.json")
        } else {
            path
        };
        if !explicit && !path.exists() {
            return Ok(None);
        }
        let read = std::fs::read(&path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))
            .and_then(|bytes| {
                DockerConfigFile::parse(&bytes).map_err(|err| format!("{}: {err}", path.display()))
            });
        match read {
            Ok(file) => Ok(Some(DockerCredentials { path, file })),
            Err(message) if explicit => Err(message),
            Err(message) => {
                tracing::warn!("Docker credentials not used: {message}");
                Ok(None)
            }
        }
    }
}

/// `path` with a leading `~/` replaced by `home`.
fn expand_home(path: &Path, home: Option<&Path>) -> Result<PathBuf, String> {
    match path.strip_prefix("~") {
        Ok(rest) => home
            .map(|home| home.join(rest))
            .ok_or_else(|| format!("`{}` starts with ~ but $HOME is not set", path.display())),
        Err(_) => Ok(path.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_only_when_it_exists_and_explicit_paths_must_read() {
        let home = tempfile::tempdir().unwrap();
        let section = CredentialsConfig::default();
        assert!(section
            .load_docker_config(Some(home.path()), None)
            .unwrap()
            .is_none());
        std::fs::create_dir(home.path().join(".docker")).unwrap();
        std::fs::write(
            home.path().join(".docker/config.json"),
            r#"{"auths":{"r.io":{"auth":"dTpw"}}}"#,
        )
        .unwrap();
        let found = section
            .load_docker_config(Some(home.path()), None)
            .unwrap()
            .unwrap();
        assert!(found.file.auth_entry("r.io").is_some());
        // $DOCKER_CONFIG wins over ~/.docker.
        let other = tempfile::tempdir().unwrap();
        assert!(section
            .load_docker_config(Some(home.path()), Some(other.path()))
            .unwrap()
            .is_none());
        let explicit = CredentialsConfig {
            docker_config: Some("~/.docker".into()),
            ..CredentialsConfig::default()
        };
        let found = explicit
            .load_docker_config(Some(home.path()), None)
            .unwrap()
            .unwrap();
        assert_eq!(found.path, home.path().join(".docker/config.json"));
        let missing = CredentialsConfig {
            docker_config: Some(home.path().join("nope.json")),
            ..CredentialsConfig::default()
        };
        assert!(missing
            .load_docker_config(None, None)
            .unwrap_err()
            .contains("nope.json"));
    }
}
