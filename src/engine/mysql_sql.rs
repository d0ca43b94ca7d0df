//! SQL that differs between MariaDB (tested, 10.11) and MySQL 8 (untested: the
//! MySQL 8 spellings below follow its documentation — `SHOW REPLICA STATUS`,
//! `CHANGE REPLICATION SOURCE TO ... SOURCE_AUTO_POSITION=1`, `super_read_only`,
//! `WAIT_FOR_EXECUTED_GTID_SET` — but no MySQL 8 server runs in the tests, and MySQL 8
//! GTID sets are not parsed by [`super::position`]).

use std::collections::HashMap;

use mysql_async::{Row, Value};

/// Which server family a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    MariaDb,
    /// MySQL 8 (untested).
    Mysql8,
}

impl Dialect {
    /// From `@@version` (MariaDB says so in it, e.g. `10.11.6-MariaDB-0+deb12u1`).
    pub(crate) fn from_version(version: &str) -> Self {
        if version.contains("MariaDB") {
            Dialect::MariaDb
        } else {
            Dialect::Mysql8
        }
    }

    /// MariaDB: `SHOW ALL SLAVES STATUS` also reports `Slave_received_heartbeats` and
    /// `Slave_heartbeat_period` (one row per connection; lifeboat uses the default one).
    pub(crate) fn show_replica_status(self) -> &'static str {
        match self {
            Dialect::MariaDb => "SHOW ALL SLAVES STATUS",
            Dialect::Mysql8 => "SHOW REPLICA STATUS",
        }
    }

    /// Keeps the relay log when both replication threads are stopped: in GTID mode a
    /// restart would discard what was received but not applied (LOCAL-STACK.md), so the
    /// SQL thread is pointed at its own relay log position instead.
    pub(crate) fn resume_from_relay_log(self, file: &str, pos: u64) -> String {
        match self {
            Dialect::MariaDb => format!(
                "CHANGE MASTER TO MASTER_USE_GTID = no, RELAY_LOG_FILE = {}, RELAY_LOG_POS = {pos}",
                quote_string(file)
            ),
            Dialect::Mysql8 => format!(
                "CHANGE REPLICATION SOURCE TO SOURCE_AUTO_POSITION = 0, RELAY_LOG_FILE = {}, RELAY_LOG_POS = {pos}",
                quote_string(file)
            ),
        }
    }

    pub(crate) fn stop_io_thread(self) -> &'static str {
        match self {
            Dialect::MariaDb => "STOP SLAVE IO_THREAD",
            Dialect::Mysql8 => "STOP REPLICA IO_THREAD",
        }
    }

    pub(crate) fn start_sql_thread(self) -> &'static str {
        match self {
            Dialect::MariaDb => "START SLAVE SQL_THREAD",
            Dialect::Mysql8 => "START REPLICA SQL_THREAD",
        }
    }

    pub(crate) fn stop_replica(self) -> &'static str {
        match self {
            Dialect::MariaDb => "STOP SLAVE",
            Dialect::Mysql8 => "STOP REPLICA",
        }
    }

    pub(crate) fn start_replica(self) -> &'static str {
        match self {
            Dialect::MariaDb => "START SLAVE",
            Dialect::Mysql8 => "START REPLICA",
        }
    }

    pub(crate) fn reset_replica_all(self) -> &'static str {
        match self {
            Dialect::MariaDb => "RESET SLAVE ALL",
            Dialect::Mysql8 => "RESET REPLICA ALL",
        }
    }

    /// Waits until everything in `gtids` is applied; returns 0 on success, -1 (MariaDB)
    /// or 1 (MySQL 8) on timeout.
    pub(crate) fn wait_for_gtids(self, gtids: &str, seconds: u64) -> String {
        match self {
            Dialect::MariaDb => format!("SELECT MASTER_GTID_WAIT({}, {seconds})", quote_string(gtids)),
            Dialect::Mysql8 => format!("SELECT WAIT_FOR_EXECUTED_GTID_SET({}, {seconds})", quote_string(gtids)),
        }
    }

    /// Read-only for ordinary users. MariaDB: accounts with READ_ONLY ADMIN (SUPER in
    /// 10.11, `GRANT ALL`) still write. MySQL 8: `super_read_only` also stops SUPER.
    pub(crate) fn set_read_only(self, on: bool) -> &'static str {
        match (self, on) {
            (Dialect::MariaDb, true) => "SET GLOBAL read_only = 1",
            (Dialect::MariaDb, false) => "SET GLOBAL read_only = 0",
            (Dialect::Mysql8, true) => "SET GLOBAL super_read_only = 1",
            (Dialect::Mysql8, false) => "SET GLOBAL super_read_only = 0, GLOBAL read_only = 0",
        }
    }

    /// Points replication at a new source using GTID auto-positioning.
    pub(crate) fn change_source(self, source: &SourceSpec<'_>) -> String {
        let (kw, gtid) = match self {
            Dialect::MariaDb => ("MASTER", "MASTER_USE_GTID = slave_pos"),
            Dialect::Mysql8 => ("SOURCE", "SOURCE_AUTO_POSITION = 1"),
        };
        let head = match self {
            Dialect::MariaDb => "CHANGE MASTER TO",
            Dialect::Mysql8 => "CHANGE REPLICATION SOURCE TO",
        };
        let mut parts = vec![
            format!("{kw}_HOST = {}", quote_string(source.host)),
            format!("{kw}_PORT = {}", source.port),
            format!("{kw}_USER = {}", quote_string(source.user)),
            format!("{kw}_PASSWORD = {}", quote_string(source.password)),
            gtid.to_string(),
            format!("{kw}_CONNECT_RETRY = 1"),
            // An idle primary still sends an event every second, so a replica can tell a
            // hung primary (silence) from a quiet one (see policy::detection).
            format!("{kw}_HEARTBEAT_PERIOD = {HEARTBEAT_PERIOD_SECONDS}"),
        ];
        if source.tls {
            parts.push(format!("{kw}_SSL = 1"));
        }
        if let Some(ca) = source.ca_file {
            parts.push(format!("{kw}_SSL_CA = {}", quote_string(ca)));
        }
        if source.verify_cert {
            parts.push(format!("{kw}_SSL_VERIFY_SERVER_CERT = 1"));
        }
        format!("{head} {}", parts.join(", "))
    }
}

/// Heartbeat period lifeboat configures on the replicas it points at a primary.
pub(crate) const HEARTBEAT_PERIOD_SECONDS: u32 = 1;

/// lifeboat's heartbeat table (documented in the README).
pub(crate) const HEARTBEAT_CREATE_SQL: &str = "CREATE DATABASE IF NOT EXISTS lifeboat";
pub(crate) const HEARTBEAT_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS lifeboat.heartbeat (
  id INT PRIMARY KEY,
  written_at_us BIGINT NOT NULL,
  epoch BIGINT UNSIGNED NOT NULL DEFAULT 0,
  writer VARCHAR(253) NOT NULL
) ENGINE=InnoDB";
pub(crate) const HEARTBEAT_READ_SQL: &str = "SELECT written_at_us, epoch, writer FROM lifeboat.heartbeat WHERE id = 1";
/// The epoch never goes down, so a stale writer cannot lower a promotion's epoch.
pub(crate) const HEARTBEAT_WRITE_SQL: &str = "INSERT INTO lifeboat.heartbeat (id, written_at_us, epoch, writer) VALUES (1, ?, ?, ?)
ON DUPLICATE KEY UPDATE written_at_us = VALUES(written_at_us), writer = VALUES(writer), epoch = GREATEST(epoch, VALUES(epoch))";
/// Server errors meaning the heartbeat database or table does not exist yet.
pub(crate) const NO_SUCH_TABLE: [u16; 2] = [1146, 1049];

/// Where a replica should replicate from.
pub(crate) struct SourceSpec<'a> {
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub password: &'a str,
    pub tls: bool,
    pub ca_file: Option<&'a str>,
    pub verify_cert: bool,
}

/// A string literal, valid with and without NO_BACKSLASH_ESCAPES only for text
/// without backslashes; lifeboat's sessions keep the default sql_mode, where
/// backslashes escape.
pub(crate) fn quote_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// An identifier in backquotes.
pub(crate) fn quote_ident(value: &str) -> String {
    format!("`{}`", value.replace('`', "``"))
}

/// A replication status row by column name, every value as text (NULL as `None`).
#[derive(Debug, Default)]
pub(crate) struct StatusRow(HashMap<String, Option<String>>);

impl StatusRow {
    pub(crate) fn from_row(row: &Row) -> Self {
        let mut map = HashMap::new();
        for (i, column) in row.columns_ref().iter().enumerate() {
            let text = row.as_ref(i).and_then(value_text);
            map.insert(column.name_str().into_owned(), text);
        }
        StatusRow(map)
    }

    /// The first present, non-NULL column among `names` (MariaDB name first, then
    /// the MySQL 8 one).
    pub(crate) fn get(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| self.0.get(*n).and_then(|v| v.as_deref()))
    }

    pub(crate) fn get_u64(&self, names: &[&str]) -> Option<u64> {
        self.get(names).and_then(|v| v.trim().parse().ok())
    }
}

fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        other => Some(other.as_sql(false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_identifiers_are_quoted() {
        assert_eq!(quote_string("a'b\\c"), "'a''b\\\\c'");
        assert_eq!(quote_ident("we`ird"), "`we``ird`");
    }

    #[test]
    fn change_source_uses_gtid_positioning() {
        let spec = SourceSpec {
            host: "10.0.0.2",
            port: 3306,
            user: "repl",
            password: "pw",
            tls: false,
            ca_file: None,
            verify_cert: false,
        };
        let sql = Dialect::MariaDb.change_source(&spec);
        assert!(sql.starts_with("CHANGE MASTER TO MASTER_HOST = '10.0.0.2'"));
        assert!(sql.contains("MASTER_USE_GTID = slave_pos"));
        assert!(sql.contains("MASTER_CONNECT_RETRY = 1"));
        assert!(
            Dialect::Mysql8
                .change_source(&spec)
                .contains("SOURCE_AUTO_POSITION = 1")
        );
        assert_eq!(Dialect::from_version("10.11.6-MariaDB-0+deb12u1"), Dialect::MariaDb);
    }
}
