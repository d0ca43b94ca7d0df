//! The PostgreSQL probe query and how its row becomes a [`Probe`].
//!
//! `pg_stat_replication`'s `*_lag` columns go NULL when the primary is idle, so lag
//! is computed from LSNs and the replay timestamp instead (see [`Probe`]).

use tokio_postgres::{Client, Row};

use super::error::Failure;
use super::position::{Lsn, PgPosition, Position, TimelineSwitch, parse_timeline_history};
use std::time::Duration;

use super::types::{Heartbeat, Probe, Role, SyncReplication, Upstream};

/// One round trip: recovery state, LSNs, timeline, replay pause/timestamp, settings,
/// and the WAL receiver (zero or one row, hence the LEFT JOIN). Functions that fail in
/// recovery (or outside it) are guarded by CASE.
pub(crate) const PROBE_SQL: &str = "
SELECT pg_is_in_recovery() AS in_recovery,
  CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn()::text END AS current_lsn,
  CASE WHEN NOT pg_is_in_recovery()
       THEN ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS current_tli,
  pg_last_wal_receive_lsn()::text AS received_lsn,
  pg_last_wal_replay_lsn()::text AS replayed_lsn,
  CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END AS pause_state,
  extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS replay_age,
  current_setting('server_version') AS server_version,
  current_setting('default_transaction_read_only') = 'on' AS default_read_only,
  (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_tli,
  current_setting('primary_conninfo', true) AS primary_conninfo,
  w.status AS receiver_status, w.sender_host, w.sender_port,
  w.latest_end_lsn::text AS latest_end_lsn, w.written_lsn::text AS written_lsn,
  w.flushed_lsn::text AS flushed_lsn, w.received_tli,
  extract(epoch FROM clock_timestamp() - w.last_msg_receipt_time)::float8 AS receipt_age,
  (SELECT setting::float8 FROM pg_settings WHERE name = 'wal_sender_timeout') AS sender_timeout_ms,
  (SELECT setting::float8 FROM pg_settings WHERE name = 'wal_receiver_status_interval') AS status_interval_s,
  current_setting('synchronous_standby_names') <> ''
    AND current_setting('synchronous_commit') IN ('on', 'remote_write', 'remote_apply') AS sync_configured,
  (SELECT array_agg(application_name::text ORDER BY application_name) FROM pg_stat_replication
    WHERE sync_state IN ('sync', 'quorum')) AS sync_standbys
FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS w ON true";

/// lifeboat's heartbeat row; a missing schema or table means "no heartbeat".
pub(crate) const HEARTBEAT_READ_SQL: &str = "SELECT written_at_us, epoch, writer FROM lifeboat.heartbeat WHERE id = 1";

/// Creates the heartbeat table (idempotent). Documented in the README.
pub(crate) const HEARTBEAT_CREATE_SQL: &str = "CREATE SCHEMA IF NOT EXISTS lifeboat;
CREATE TABLE IF NOT EXISTS lifeboat.heartbeat (
  id int PRIMARY KEY CHECK (id = 1),
  written_at_us bigint NOT NULL,
  epoch bigint NOT NULL DEFAULT 0,
  writer text NOT NULL
)";

/// One heartbeat upsert, committed locally: with synchronous replication and every standby
/// gone, a heartbeat must not hang the probe round (nor be counted as replicated). The
/// epoch never goes down, so a stale writer cannot lower a promotion's epoch.
pub(crate) fn heartbeat_write_sql(written_at_us: i64, epoch: u64, writer: &str) -> String {
    format!(
        "BEGIN; SET LOCAL synchronous_commit TO local;
INSERT INTO lifeboat.heartbeat AS h (id, written_at_us, epoch, writer) VALUES (1, {written_at_us}, {epoch}, {})
ON CONFLICT (id) DO UPDATE SET written_at_us = EXCLUDED.written_at_us, writer = EXCLUDED.writer,
  epoch = GREATEST(h.epoch, EXCLUDED.epoch);
COMMIT",
        super::postgres_sql::quote_literal(writer)
    )
}

/// The heartbeat row from [`HEARTBEAT_READ_SQL`].
pub(crate) fn heartbeat_from_row(row: &Row) -> Result<Heartbeat, Failure> {
    let us: i64 = get(row, "written_at_us")?;
    let epoch: i64 = get(row, "epoch")?;
    let writer: String = get(row, "writer")?;
    let written_at = chrono::DateTime::from_timestamp_micros(us)
        .ok_or_else(|| Failure::Unexpected(format!("heartbeat time {us} out of range")))?;
    Ok(Heartbeat {
        written_at,
        epoch: u64::try_from(epoch).unwrap_or(0),
        writer,
    })
}

fn seconds(value: Option<f64>) -> Option<Duration> {
    value
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(Duration::from_secs_f64)
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, col: &str) -> Result<T, Failure> {
    row.try_get(col)
        .map_err(|e| Failure::Unexpected(format!("probe column {col}: {e}")))
}

fn lsn(row: &Row, col: &str) -> Result<Option<Lsn>, Failure> {
    get::<Option<String>>(row, col)?
        .map(|s| s.parse::<Lsn>().map_err(|e| Failure::Unexpected(e.to_string())))
        .transpose()
}

/// Builds the probe from [`PROBE_SQL`]'s row (timeline history is added separately).
pub(crate) fn probe_from_row(row: &Row) -> Result<Probe, Failure> {
    let in_recovery: bool = get(row, "in_recovery")?;
    let current = lsn(row, "current_lsn")?;
    let received = lsn(row, "received_lsn")?;
    let replayed = lsn(row, "replayed_lsn")?;
    let receiver_status: Option<String> = get(row, "receiver_status")?;
    let received_tli: Option<i32> = get(row, "received_tli")?;
    let checkpoint_tli: i32 = get(row, "checkpoint_tli")?;
    let timeline = if in_recovery {
        received_tli.unwrap_or(checkpoint_tli)
    } else {
        get::<Option<i32>>(row, "current_tli")?.unwrap_or(checkpoint_tli)
    };
    let default_read_only: bool = get(row, "default_read_only")?;
    let server_version: String = get(row, "server_version")?;
    let position = PgPosition {
        timeline: u32::try_from(timeline).unwrap_or(0),
        current,
        received,
        replayed,
        history: Vec::new(),
    };
    let wal_sender_timeout = seconds(get::<Option<f64>>(row, "sender_timeout_ms")?.map(|ms| ms / 1000.0));
    if !in_recovery {
        let standbys: Option<Vec<String>> = get(row, "sync_standbys")?;
        return Ok(Probe {
            role: Role::Primary,
            position: Position::Postgres(position),
            upstream: None,
            lag_bytes: None,
            lag_transactions: None,
            lag_seconds: None,
            server_version,
            read_only: default_read_only,
            heartbeat: None,
            wal_sender_timeout,
            synchronous: Some(SyncReplication {
                configured: get::<Option<bool>>(row, "sync_configured")?.unwrap_or(false),
                standbys: standbys.unwrap_or_default(),
            }),
        });
    }
    let upstream_end = [
        lsn(row, "latest_end_lsn")?,
        lsn(row, "written_lsn")?,
        lsn(row, "flushed_lsn")?,
        received,
    ]
    .into_iter()
    .flatten()
    .max();
    let lag_bytes = match (upstream_end, replayed) {
        (Some(end), Some(done)) => Some(end.0.saturating_sub(done.0)),
        _ => None,
    };
    let replay_age: Option<f64> = get(row, "replay_age")?;
    let lag_seconds = match lag_bytes {
        Some(0) => Some(0.0),
        _ => replay_age.map(|age| age.max(0.0)),
    };
    let pause_state: Option<String> = get(row, "pause_state")?;
    let conninfo: Option<String> = get(row, "primary_conninfo")?;
    let sender_host: Option<String> = get(row, "sender_host")?;
    let sender_port: Option<i32> = get(row, "sender_port")?;
    let configured = conninfo.as_deref().map(conninfo_host_port).unwrap_or_default();
    let upstream = Upstream {
        host: sender_host.or(configured.0),
        port: sender_port.and_then(|p| u16::try_from(p).ok()).or(configured.1),
        receiving: receiver_status.as_deref() == Some("streaming"),
        applying: pause_state.as_deref() == Some("not paused"),
        state: format!(
            "{}; replay {}",
            receiver_status.as_deref().unwrap_or("no wal receiver"),
            pause_state.as_deref().unwrap_or("unknown")
        ),
        last_error: None,
        silence: seconds(get(row, "receipt_age")?),
        progress: None,
        heartbeat_period: None,
        status_interval: seconds(get(row, "status_interval_s")?),
    };
    Ok(Probe {
        role: Role::Replica,
        position: Position::Postgres(position),
        upstream: Some(upstream),
        lag_bytes,
        lag_transactions: None,
        lag_seconds,
        server_version,
        read_only: true,
        heartbeat: None,
        wal_sender_timeout,
        synchronous: None,
    })
}

/// The ancestors of `timeline` from its history file in pg_wal (needs superuser or
/// `pg_read_server_files`; empty when unreadable or on timeline 1).
pub(crate) async fn timeline_history(client: &Client, timeline: u32) -> Vec<TimelineSwitch> {
    if timeline <= 1 {
        return Vec::new();
    }
    let path = format!("pg_wal/{timeline:08X}.history");
    match client.query_one("SELECT pg_read_file($1)", &[&path]).await {
        Ok(row) => parse_timeline_history(&row.get::<_, String>(0)).unwrap_or_default(),
        Err(e) => {
            tracing::debug!(error = %e, %path, "timeline history unreadable");
            Vec::new()
        }
    }
}

/// `host` and `port` from a libpq key=value conninfo (quotes and `\` escapes
/// understood).
pub(crate) fn conninfo_host_port(conninfo: &str) -> (Option<String>, Option<u16>) {
    let mut host = None;
    let mut port = None;
    let mut chars = conninfo.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        match key.trim() {
            "host" | "hostaddr" if host.is_none() || key.trim() == "host" => host = Some(value),
            "port" => port = value.parse().ok(),
            _ => {}
        }
    }
    (host, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_host_and_port_are_read() {
        assert_eq!(
            conninfo_host_port("user=postgres host='10.0.0.5' port=5433 application_name='r\\'1'"),
            (Some("10.0.0.5".into()), Some(5433))
        );
        assert_eq!(conninfo_host_port(""), (None, None));
        assert_eq!(conninfo_host_port("host=a"), (Some("a".into()), None));
    }
}
