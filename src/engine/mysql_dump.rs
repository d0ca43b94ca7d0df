//! `mariadb-dump` and `mariadb` commands. Credentials go into a private 0600 option
//! file passed as `--defaults-extra-file`, which must be the first argument.
//!
//! Consistent position: `--single-transaction --gtid --master-data=2` makes the dump
//! carry the GTID position of its snapshot as a comment
//! (`-- SET GLOBAL gtid_slave_pos='0-1-42';`). MariaDB 10.11 writes it near the END
//! of the dump ("deferred gtid setting"), after all data: keep the last few KiB of
//! the stream and read it with [`gtid_from_dump`] once the dump finished.
//! `--master-data` needs the binary log and the RELOAD privilege. MySQL 8's `mysqldump` spells this differently
//! (`--source-data=2`, `SET @@GLOBAL.GTID_PURGED`): untested and not parsed.

use tokio::process::Command;

use super::commands::DumpCommand;
use super::commands::{KeepAlive, RestoreCommand, check_database_name, private_file};
use super::error::DumpError;
use super::mysql::MysqlEngine;
use super::position::GtidSet;
use super::types::{EngineConfig, Member, SslMode};

/// Program names (the MariaDB client package provides both).
const DUMP_PROGRAM: &str = "mariadb-dump";
const CLIENT_PROGRAM: &str = "mariadb";

impl MysqlEngine {
    /// `mariadb-dump` of `database` (without `CREATE DATABASE`/`USE`, so it can be
    /// restored under another name). The position is written near the end of the dump.
    pub async fn dump(&self, member: &Member, database: &str) -> Result<DumpCommand, DumpError> {
        check_database_name(database)?;
        let file = private_file(&member.name, &option_file(&self.config, member))?;
        let mut command = Command::new(DUMP_PROGRAM);
        command
            .arg(format!("--defaults-extra-file={}", file.display()))
            .args([
                "--single-transaction",
                "--gtid",
                "--master-data=2",
                "--routines",
                "--triggers",
                "--events",
                "--hex-blob",
                "--quick",
                "--skip-dump-date",
            ])
            .arg(database);
        Ok(DumpCommand {
            command,
            position: None,
            keep: KeepAlive::SecretFile(file),
        })
    }

    /// `mariadb` reading a dump from stdin into existing `database`, stopping at the
    /// first error.
    pub fn restore(&self, member: &Member, database: &str) -> Result<RestoreCommand, DumpError> {
        check_database_name(database)?;
        let file = private_file(&member.name, &option_file(&self.config, member))?;
        let mut command = Command::new(CLIENT_PROGRAM);
        command
            .arg(format!("--defaults-extra-file={}", file.display()))
            .arg("--batch")
            .arg(format!("--database={database}"));
        Ok(RestoreCommand {
            command,
            keep: KeepAlive::SecretFile(file),
        })
    }
}

/// The `[client]` option file: connection, credentials, TLS.
fn option_file(config: &EngineConfig, member: &Member) -> String {
    let mut lines = vec![
        "[client]".to_string(),
        format!("host={}", quote_option(&member.host)),
        format!("port={}", member.port),
        "protocol=tcp".to_string(),
        format!("user={}", quote_option(&config.credentials.username)),
        format!("password={}", quote_option(&config.credentials.password)),
        format!("loose-connect-timeout={}", config.timeouts.connect.as_secs().max(1)),
    ];
    match config.tls.mode {
        SslMode::Disable => lines.push("skip-ssl".into()),
        SslMode::Prefer => {}
        SslMode::Require => lines.push("ssl".into()),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            lines.push("ssl".into());
            lines.push("ssl-verify-server-cert".into());
        }
    }
    if let Some(ca) = &config.tls.ca_file {
        lines.push(format!("ssl-ca={}", quote_option(&ca.display().to_string())));
    }
    lines.join("\n") + "\n"
}

/// A double-quoted option-file value (`\` and `"` escaped).
fn quote_option(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The GTID position recorded by `--gtid --master-data=2`, found in `text`: pass the
/// last 4 KiB of the dump (where MariaDB 10.11 writes it) or the whole dump. `None` if
/// `text` has none. The last occurrence wins.
pub fn gtid_from_dump(text: &str) -> Option<GtidSet> {
    text.lines().rev().find_map(|line| {
        let rest = line
            .trim_start_matches("--")
            .trim()
            .strip_prefix("SET GLOBAL gtid_slave_pos")?
            .trim_start()
            .strip_prefix('=')?
            .trim()
            .strip_prefix('\'')?;
        let value = &rest[..rest.find('\'')?];
        value.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::types::Credentials;

    #[test]
    fn dump_position_is_found() {
        let head = "-- MariaDB dump 10.19\n--\n-- Position to start replication or point-in-time recovery from\n--\n\n-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000002', MASTER_LOG_POS=1234;\n\n--\n-- GTID to start replication from\n--\n\n-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\n-- SET GLOBAL gtid_slave_pos='0-1-42';\n";
        assert_eq!(gtid_from_dump(head).unwrap().to_string(), "0-1-42");
        assert_eq!(gtid_from_dump("-- nothing\n"), None);
    }

    #[tokio::test]
    async fn option_file_holds_credentials_and_comes_first() {
        let engine = MysqlEngine::new(EngineConfig {
            credentials: Credentials::new("u", "pa\"ss"),
            ..Default::default()
        });
        let text = option_file(&engine.config, &Member::new("m", "127.0.0.9", 3306));
        assert!(text.contains("password=\"pa\\\"ss\""));
        assert!(text.contains("skip-ssl"));
        let cmd = engine.dump(&Member::new("m", "127.0.0.9", 3306), "shop").await.unwrap();
        let args: Vec<String> = cmd
            .command
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args[0].starts_with("--defaults-extra-file="));
        assert!(args.iter().all(|a| !a.contains("pa\"ss")));
        assert_eq!(args.last().map(String::as_str), Some("shop"));
    }
}
