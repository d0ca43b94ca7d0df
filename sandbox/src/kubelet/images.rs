//! The image map: which image references the kubelet runs, as which local
//! executable (the image's ENTRYPOINT/CMD), with which directories first on PATH
//! (the image's binaries, e.g. PostgreSQL 15's bin directory) and environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageMapping {
    /// Image reference pattern; `*` matches any characters (`postgres:15*`, `*/lifeboat:*`).
    pub image: String,
    /// The image's ENTRYPOINT (empty: containers must set `command`).
    #[serde(default)]
    pub command: Vec<String>,
    /// The image's CMD, used when the container sets neither command nor args.
    #[serde(default)]
    pub args: Vec<String>,
    /// Directories put first on PATH and searched first for the command.
    #[serde(default)]
    pub path: Vec<PathBuf>,
    /// The image's environment (the container's `env` overrides it).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageMapError {
    #[error("reading the image map {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("parsing the image map {path}: {source}")]
    Parse { path: PathBuf, source: serde_yaml::Error },
    #[error("{0:?} is not PATTERN=EXECUTABLE")]
    Flag(String),
}

#[derive(Deserialize)]
struct File {
    images: Vec<ImageMapping>,
}

/// `images:` entries of a YAML file.
pub fn from_file(path: &Path) -> Result<Vec<ImageMapping>, ImageMapError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImageMapError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let f: File = serde_yaml::from_str(&text).map_err(|source| ImageMapError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(f.images)
}

/// `PATTERN=EXECUTABLE` (a command-line flag): the executable is the entrypoint.
pub fn from_flag(flag: &str) -> Result<ImageMapping, ImageMapError> {
    let (image, exe) = flag.split_once('=').ok_or_else(|| ImageMapError::Flag(flag.into()))?;
    if image.is_empty() || exe.is_empty() {
        return Err(ImageMapError::Flag(flag.into()));
    }
    Ok(ImageMapping {
        image: image.into(),
        command: vec![exe.into()],
        ..ImageMapping::default()
    })
}

/// Glob match where `*` stands for any run of characters.
pub fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, rest)) => {
            let Some(tail) = s.strip_prefix(head) else { return false };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob(rest, &tail[i..]))
        }
    }
}

pub fn find<'a>(images: &'a [ImageMapping], image: &str) -> Option<&'a ImageMapping> {
    images.iter().find(|m| glob(&m.image, image))
}

/// The argv a container runs (Docker's ENTRYPOINT/CMD rules), with argv[0] resolved
/// on the image's directories and then PATH.
pub fn argv(m: &ImageMapping, command: &[String], args: &[String], path_env: &str) -> Result<Vec<String>, String> {
    let mut argv: Vec<String> = if !command.is_empty() {
        command.iter().chain(args).cloned().collect()
    } else if !args.is_empty() {
        m.command.iter().chain(args).cloned().collect()
    } else {
        m.command.iter().chain(&m.args).cloned().collect()
    };
    let first = argv.first().cloned().ok_or("no command specified")?;
    if !first.contains('/') {
        let dirs = m.path.iter().cloned().chain(std::env::split_paths(path_env));
        let found = dirs
            .map(|d| d.join(&first))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("exec: {first:?}: executable file not found in $PATH"))?;
        argv[0] = found.to_string_lossy().into_owned();
    }
    Ok(argv)
}

/// PATH inside the container: the image's directories, then the usual ones.
pub fn path_env(m: &ImageMapping) -> String {
    let mut parts: Vec<String> = m.path.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    parts.push(m.env.get("PATH").cloned().unwrap_or_else(|| DEFAULT_PATH.to_string()));
    parts.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_docker_command_rules() {
        assert!(glob("postgres:15*", "postgres:15.4-bookworm"));
        assert!(glob("*/lifeboat:*", "ghcr.io/x/lifeboat:0.1"));
        assert!(!glob("postgres:15*", "postgres:16"));
        let m = ImageMapping {
            image: "x".into(),
            command: vec!["/bin/echo".into()],
            args: vec!["default".into()],
            ..ImageMapping::default()
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(argv(&m, &[], &[], DEFAULT_PATH), Ok(s(&["/bin/echo", "default"])));
        assert_eq!(argv(&m, &[], &s(&["a"]), DEFAULT_PATH), Ok(s(&["/bin/echo", "a"])));
        let sh = argv(&m, &s(&["sh", "-c", "x"]), &[], DEFAULT_PATH).expect("sh is on PATH");
        assert!(sh[0].ends_with("/sh") && sh[1..] == s(&["-c", "x"]), "{sh:?}");
    }
}
