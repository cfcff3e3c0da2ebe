//! Compose projects. A replaced container keeps every `com.docker.compose.*`
//! label (they are the user's configuration, not the image's), so `docker
//! compose ps` and `up` still own it. Optionally the service's `image:` line
//! in the project's compose file is rewritten too, after a backup, so that the
//! next `compose up` keeps the update instead of going back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The compose project a container belongs to.
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
/// The compose service a container runs.
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
/// The compose files of the project (comma-separated), as compose recorded them.
pub const CONFIG_FILES_LABEL: &str = "com.docker.compose.project.config_files";
/// The project's working directory (relative compose files are resolved in it).
pub const WORKING_DIR_LABEL: &str = "com.docker.compose.project.working_dir";

/// The compose files a container's labels name, resolved against the
/// project's working directory.
pub fn compose_files(labels: &BTreeMap<String, String>) -> Vec<PathBuf> {
    let working_dir = labels.get(WORKING_DIR_LABEL).map(PathBuf::from);
    labels
        .get(CONFIG_FILES_LABEL)
        .map(|files| {
            files
                .split(',')
                .map(str::trim)
                .filter(|file| !file.is_empty())
                .map(|file| match (&working_dir, Path::new(file).is_relative()) {
                    (Some(dir), true) => dir.join(file),
                    _ => PathBuf::from(file),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Rewrites the `image:` of `service` from `old_image` to `new_image` in the
/// first of `files` that declares it, after copying that file to
/// `FILE.crowsnest-backup`. Returns the file rewritten. A file where the
/// service's image is not exactly `old_image` is left alone, with the reason.
pub fn rewrite_service_image(
    files: &[PathBuf],
    service: &str,
    old_image: &str,
    new_image: &str,
) -> Result<PathBuf, String> {
    let mut reasons = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(error) => {
                reasons.push(format!("{}: cannot read: {error}", file.display()));
                continue;
            }
        };
        match replace_image_line(&text, service, old_image, new_image) {
            Ok(Some(rewritten)) => {
                let backup = backup_path(file);
                std::fs::copy(file, &backup).map_err(|error| {
                    format!("{}: cannot write the backup: {error}", backup.display())
                })?;
                let temporary = file.with_extension("crowsnest-new");
                std::fs::write(&temporary, rewritten)
                    .and_then(|()| std::fs::rename(&temporary, file))
                    .map_err(|error| format!("{}: cannot rewrite: {error}", file.display()))?;
                return Ok(file.clone());
            }
            Ok(None) => {}
            Err(reason) => reasons.push(format!("{}: {reason}", file.display())),
        }
    }
    if reasons.is_empty() {
        reasons.push(format!("no compose file declares service `{service}`"));
    }
    Err(reasons.join("; "))
}

/// `FILE.crowsnest-backup`.
pub fn backup_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".crowsnest-backup");
    PathBuf::from(name)
}

/// `text` with the `image:` line of `service` (under `services:`) changed,
/// `None` when the file does not declare the service.
fn replace_image_line(
    text: &str,
    service: &str,
    old_image: &str,
    new_image: &str,
) -> Result<Option<String>, String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let is_content = |line: &str| {
        let trimmed = line.trim();
        !trimmed.is_empty() && !trimmed.starts_with('#')
    };
    let key_of = |line: &str| -> Option<String> {
        let trimmed = line.trim();
        let (key, _) = trimmed.split_once(':')?;
        Some(key.trim().trim_matches(['"', '\'']).to_owned())
    };
    let Some(services) = lines
        .iter()
        .position(|line| indent(line) == 0 && key_of(line).as_deref() == Some("services"))
    else {
        return Ok(None);
    };
    let block_end = |start: usize, parent_indent: usize| {
        lines
            .iter()
            .enumerate()
            .skip(start + 1)
            .find(|(_, line)| is_content(line) && indent(line) <= parent_indent)
            .map_or(lines.len(), |(index, _)| index)
    };
    let services_end = block_end(services, 0);
    let Some(service_line) = (services + 1..services_end).find(|&index| {
        is_content(lines[index]) && key_of(lines[index]).as_deref() == Some(service)
    }) else {
        return Ok(None);
    };
    let service_indent = indent(lines[service_line]);
    let service_end = block_end(service_line, service_indent);
    let Some(image_line) = (service_line + 1..service_end).find(|&index| {
        is_content(lines[index])
            && indent(lines[index]) > service_indent
            && key_of(lines[index]).as_deref() == Some("image")
    }) else {
        return Err(format!("service `{service}` has no `image:` line"));
    };
    let line = lines[image_line];
    let (key, rest) = line.split_once(':').unwrap_or((line, ""));
    let (value, comment) = match rest.find(" #") {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let value = value.trim_end_matches(['\n', '\r']);
    let written = value.trim().trim_matches(['"', '\'']);
    if written != old_image {
        return Err(format!(
            "service `{service}` has image `{written}`, not `{old_image}`: left alone"
        ));
    }
    let quote = match value.trim().chars().next() {
        Some(quote @ ('"' | '\'')) => quote.to_string(),
        _ => String::new(),
    };
    let ending = if line.ends_with("\r\n") {
        "\r\n"
    } else if line.ends_with('\n') {
        "\n"
    } else {
        ""
    };
    let comment = comment.trim_end_matches(['\n', '\r']);
    let spacing = &value[value.trim_end().len()..];
    let mut rewritten: String = lines[..image_line].concat();
    rewritten.push_str(&format!(
        "{key}: {quote}{new_image}{quote}{spacing}{comment}{ending}"
    ));
    rewritten.push_str(&lines[image_line + 1..].concat());
    Ok(Some(rewritten))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# the shop
services:
  web:
    image: \"registry:5000/shop/web:1.0\"  # pinned
    labels:
      tier: front
  worker:
    image: registry:5000/shop/web:1.0
volumes:
  data: {}
";

    #[test]
    fn only_the_services_image_line_changes() {
        let rewritten = replace_image_line(
            FILE,
            "worker",
            "registry:5000/shop/web:1.0",
            "registry:5000/shop/web:1.1",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            rewritten,
            FILE.replace(
                "  worker:\n    image: registry:5000/shop/web:1.0",
                "  worker:\n    image: registry:5000/shop/web:1.1"
            )
        );
        let web = replace_image_line(
            FILE,
            "web",
            "registry:5000/shop/web:1.0",
            "registry:5000/shop/web:1.1",
        )
        .unwrap()
        .unwrap();
        assert!(
            web.contains("    image: \"registry:5000/shop/web:1.1\"  # pinned\n"),
            "{web}"
        );
        assert!(web.contains("  worker:\n    image: registry:5000/shop/web:1.0\n"));
    }

    #[test]
    fn a_different_image_or_a_missing_service_is_left_alone() {
        assert!(replace_image_line(FILE, "web", "other:1.0", "other:1.1").is_err());
        assert_eq!(replace_image_line(FILE, "db", "x", "y").unwrap(), None);
        assert_eq!(
            replace_image_line("version: '3'\n", "web", "x", "y").unwrap(),
            None
        );
    }

    #[test]
    fn files_resolve_against_the_working_directory() {
        let labels = BTreeMap::from([
            (CONFIG_FILES_LABEL.to_owned(), "/srv/a.yml,b.yml".to_owned()),
            (WORKING_DIR_LABEL.to_owned(), "/srv/shop".to_owned()),
        ]);
        assert_eq!(
            compose_files(&labels),
            vec![
                PathBuf::from("/srv/a.yml"),
                PathBuf::from("/srv/shop/b.yml")
            ]
        );
    }
}
