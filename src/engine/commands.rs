//! Dump and restore commands ready to spawn. Credentials never appear in argv: they
//! travel in the environment (`PGPASSWORD`) or in a private 0600 file that lives as
//! long as the returned value, so keep it alive until the child process has exited.

use std::io::Write;
use std::path::Path;

use tokio::process::Command;

use super::error::DumpError;
use super::position::Position;

/// Something that must outlive the spawned process (held, never read).
#[derive(Debug)]
#[allow(dead_code)]
pub(crate) enum KeepAlive {
    /// Nothing to keep.
    Nothing,
    /// A transaction holding the exported snapshot `pg_dump --snapshot` imports.
    PgSnapshot(tokio_postgres::Client),
    /// The MariaDB client option file with the password.
    SecretFile(tempfile::TempPath),
}

/// A dump command. Its stdout is the dump stream.
#[derive(Debug)]
pub struct DumpCommand {
    /// Spawn this (stdout piped); keep `self` alive until it exits.
    pub command: Command,
    /// The consistent position the dump represents when known before it runs
    /// (PostgreSQL). MariaDB writes it into the dump itself (near its end): read it with
    /// [`super::mysql::gtid_from_dump`].
    pub position: Option<Position>,
    pub(crate) keep: KeepAlive,
}

/// A restore command. Feed the dump to its stdin.
#[derive(Debug)]
pub struct RestoreCommand {
    /// Spawn this (stdin piped); keep `self` alive until it exits.
    pub command: Command,
    pub(crate) keep: KeepAlive,
}

impl DumpCommand {
    /// Whether a helper (snapshot transaction, credentials file) is being kept alive.
    pub fn holds_resources(&self) -> bool {
        !matches!(self.keep, KeepAlive::Nothing)
    }
}

impl RestoreCommand {
    /// Whether a helper (credentials file) is being kept alive.
    pub fn holds_resources(&self) -> bool {
        !matches!(self.keep, KeepAlive::Nothing)
    }
}

/// Rejects database names that cannot be passed safely to the client tools.
pub(crate) fn check_database_name(name: &str) -> Result<(), DumpError> {
    let invalid = |reason: &str| DumpError::InvalidInput {
        field: "database",
        value: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if name.len() > 64 {
        return Err(invalid("must be at most 64 characters"));
    }
    if name.starts_with('-') {
        return Err(invalid("must not start with '-' (it would read as an option)"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(invalid("must not contain control characters"));
    }
    Ok(())
}

/// Writes `contents` to a new file only the owner can read (0600, created that way,
/// never world-readable even briefly).
pub(crate) fn private_file(member: &str, contents: &str) -> Result<tempfile::TempPath, DumpError> {
    let err = |e: std::io::Error| DumpError::CredentialsFile {
        member: member.to_string(),
        message: e.to_string(),
    };
    // tempfile creates files with mode 0600.
    let mut file = tempfile::Builder::new()
        .prefix("lifeboat-client-")
        .suffix(".cnf")
        .tempfile()
        .map_err(err)?;
    file.write_all(contents.as_bytes()).map_err(err)?;
    file.flush().map_err(err)?;
    Ok(file.into_temp_path())
}

/// File mode bits of `path` (for tests of [`private_file`]).
pub fn file_mode(path: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_checked() {
        assert!(check_database_name("shop").is_ok());
        assert!(check_database_name("").is_err());
        assert!(check_database_name("--all").is_err());
        assert!(check_database_name("a\nb").is_err());
    }

    #[test]
    fn private_files_are_0600() {
        let path = private_file("m", "[client]\npassword=x\n").unwrap();
        assert_eq!(file_mode(&path).unwrap(), 0o600);
    }
}
