//! How `SHOW SLAVE STATUS` and the GTID variables become a [`Probe`] (pure).

use super::error::Failure;
use super::mysql_sql::StatusRow;
use super::position::{GtidSet, MysqlPosition, Position};
use std::time::Duration;

use super::types::{Probe, Role, Upstream};

fn parse_gtids(text: &str) -> Result<GtidSet, Failure> {
    text.parse()
        .map_err(|e: super::position::GtidParseError| Failure::Unexpected(e.to_string()))
}

/// Builds a probe from the variables and the replication status row (pure).
pub(crate) fn probe_from(
    server_version: String,
    read_only: bool,
    binlog: &str,
    slave: &str,
    status: Option<&StatusRow>,
) -> Result<Probe, Failure> {
    let mut position = MysqlPosition {
        binlog: parse_gtids(binlog)?,
        slave: parse_gtids(slave)?,
        io: None,
    };
    let Some(status) = status else {
        return Ok(Probe {
            role: Role::Primary,
            position: Position::Mysql(position),
            upstream: None,
            lag_bytes: None,
            lag_transactions: None,
            lag_seconds: None,
            server_version,
            read_only,
            heartbeat: None,
            wal_sender_timeout: None,
            synchronous: None,
        });
    };
    let io = parse_gtids(status.get(&["Gtid_IO_Pos"]).unwrap_or(""))?;
    let io_running = status.get(&["Slave_IO_Running", "Replica_IO_Running"]).unwrap_or("No");
    let sql_running = status
        .get(&["Slave_SQL_Running", "Replica_SQL_Running"])
        .unwrap_or("No");
    let lag_transactions = io.transactions_ahead_of(&position.slave);
    let same_file = status.get(&["Master_Log_File", "Source_Log_File"])
        == status.get(&["Relay_Master_Log_File", "Relay_Source_Log_File"]);
    let lag_bytes = match (
        same_file,
        status.get_u64(&["Read_Master_Log_Pos", "Read_Source_Log_Pos"]),
        status.get_u64(&["Exec_Master_Log_Pos", "Exec_Source_Log_Pos"]),
    ) {
        (true, Some(read), Some(done)) => Some(read.saturating_sub(done)),
        _ => None,
    };
    let lag_seconds = if lag_transactions == 0 {
        Some(0.0)
    } else {
        status
            .get_u64(&["Seconds_Behind_Master", "Seconds_Behind_Source"])
            .map(|s| s as f64)
    };
    let last_error = [status.get(&["Last_IO_Error"]), status.get(&["Last_SQL_Error"])]
        .into_iter()
        .flatten()
        .filter(|e| !e.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let upstream = Upstream {
        host: status.get(&["Master_Host", "Source_Host"]).map(str::to_string),
        port: status
            .get_u64(&["Master_Port", "Source_Port"])
            .and_then(|p| u16::try_from(p).ok()),
        receiving: io_running == "Yes",
        applying: sql_running == "Yes",
        state: format!("io={io_running} sql={sql_running}"),
        last_error: (!last_error.is_empty()).then_some(last_error),
        silence: None,
        progress: Some(format!(
            "{}:{}:{}:{}",
            status.get(&["Master_Log_File", "Source_Log_File"]).unwrap_or(""),
            status
                .get(&["Read_Master_Log_Pos", "Read_Source_Log_Pos"])
                .unwrap_or(""),
            status.get(&["Slave_received_heartbeats"]).unwrap_or(""),
            io
        )),
        heartbeat_period: status
            .get(&["Slave_heartbeat_period"])
            .and_then(|p| p.trim().parse::<f64>().ok())
            .filter(|p| p.is_finite() && *p > 0.0)
            .map(Duration::from_secs_f64),
        status_interval: None,
    };
    position.io = Some(io);
    Ok(Probe {
        role: Role::Replica,
        position: Position::Mysql(position),
        upstream: Some(upstream),
        lag_bytes,
        lag_transactions: Some(lag_transactions),
        lag_seconds,
        server_version,
        read_only,
        heartbeat: None,
        wal_sender_timeout: None,
        synchronous: None,
    })
}
