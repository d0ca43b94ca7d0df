//! Replication positions and their comparison — pure functions, no I/O.
//!
//! PostgreSQL positions are (timeline, LSN); comparing across timelines needs the
//! newer timeline's history (where each ancestor timeline was forked off). MariaDB
//! positions are GTID lists `domain-server-seq`, one GTID per domain (the format of
//! `gtid_binlog_pos`, `gtid_slave_pos` and `Gtid_IO_Pos`). In a domain, sequence
//! numbers grow monotonically along one history (`gtid_strict_mode`), so the same
//! sequence number from two different servers means two histories: divergence.
//!
//! MySQL 8 GTID sets (`uuid:1-100`) have a different shape and are not parsed here
//! (untested; [`GtidParseError`] names the offending entry).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A PostgreSQL WAL location (`16/B374D848`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

/// A text that is not `HEX/HEX`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid LSN {0:?}: expected two hex numbers like 16/B374D848")]
pub struct LsnParseError(pub String);

impl FromStr for Lsn {
    type Err = LsnParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || LsnParseError(s.to_string());
        let (hi, lo) = s.trim().split_once('/').ok_or_else(err)?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| err())?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| err())?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// One line of a timeline history file: `timeline` ended (was forked off) at `switch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineSwitch {
    pub timeline: u32,
    pub switch: Lsn,
}

/// Parses a `0000000N.history` file (`parentTLI <tab> switchpoint <tab> reason`).
/// Blank and `#` lines are skipped; malformed lines are an error naming the line.
pub fn parse_timeline_history(text: &str) -> Result<Vec<TimelineSwitch>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let parsed = (|| {
            let timeline = fields.next()?.parse().ok()?;
            let switch = fields.next()?.parse().ok()?;
            Some(TimelineSwitch { timeline, switch })
        })();
        out.push(parsed.ok_or_else(|| format!("malformed timeline history line {line:?}"))?);
    }
    Ok(out)
}

/// A PostgreSQL server's WAL positions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgPosition {
    /// Timeline the server writes (primary) or replays (replica).
    pub timeline: u32,
    /// Primary: `pg_current_wal_lsn()`.
    pub current: Option<Lsn>,
    /// Replica: `pg_last_wal_receive_lsn()` (received and flushed to disk).
    pub received: Option<Lsn>,
    /// Replica: `pg_last_wal_replay_lsn()`.
    pub replayed: Option<Lsn>,
    /// Ancestor timelines of `timeline` and where each ended; empty on timeline 1 or
    /// when it could not be read.
    pub history: Vec<TimelineSwitch>,
}

impl PgPosition {
    /// The furthest WAL this server holds: what it would have after a promotion
    /// (a promoted replica replays everything it received).
    pub fn end(&self) -> Option<Lsn> {
        [self.current, self.received, self.replayed].into_iter().flatten().max()
    }
}

/// One MariaDB GTID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gtid {
    pub domain: u32,
    pub server_id: u32,
    pub seq: u64,
}

/// A MariaDB GTID position: the last GTID of each replication domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet(pub BTreeMap<u32, Gtid>);

/// A GTID list entry that is not `domain-server-seq`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid MariaDB GTID {entry:?} in {list:?}: expected domain-server-seq like 0-1-42 (MySQL 8 uuid:interval sets are not supported)"
)]
pub struct GtidParseError {
    pub entry: String,
    pub list: String,
}

impl FromStr for GtidSet {
    type Err = GtidParseError;
    /// Parses `0-1-10,1-2-5`; an empty text is the empty set. When a domain appears
    /// twice (the `gtid_binlog_state` format) the highest sequence number wins.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = BTreeMap::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let err = || GtidParseError {
                entry: entry.to_string(),
                list: s.to_string(),
            };
            let mut parts = entry.split('-');
            let (Some(d), Some(sv), Some(q), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
                return Err(err());
            };
            let gtid = Gtid {
                domain: d.parse().map_err(|_| err())?,
                server_id: sv.parse().map_err(|_| err())?,
                seq: q.parse().map_err(|_| err())?,
            };
            let keep = set.get(&gtid.domain).is_none_or(|old: &Gtid| gtid.seq > old.seq);
            if keep {
                set.insert(gtid.domain, gtid);
            }
        }
        Ok(GtidSet(set))
    }
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .values()
            .map(|g| format!("{}-{}-{}", g.domain, g.server_id, g.seq))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl GtidSet {
    /// Per domain, the GTID with the highest sequence number of `self` and `other`.
    pub fn union(&self, other: &GtidSet) -> GtidSet {
        let mut out = self.0.clone();
        for (d, g) in &other.0 {
            if out.get(d).is_none_or(|old| g.seq > old.seq) {
                out.insert(*d, *g);
            }
        }
        GtidSet(out)
    }

    /// Transactions in `self` beyond `other`: per domain, how far `self`'s sequence
    /// number is ahead (0 where it is not). Used for "received but not applied".
    pub fn transactions_ahead_of(&self, other: &GtidSet) -> u64 {
        self.0
            .iter()
            .map(|(d, g)| g.seq.saturating_sub(other.0.get(d).map_or(0, |o| o.seq)))
            .sum()
    }
}

/// A MariaDB server's GTID positions, as text from the server and parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MysqlPosition {
    /// `@@gtid_binlog_pos`: last transaction written to this server's binlog (with
    /// `log_slave_updates` this includes replicated ones).
    pub binlog: GtidSet,
    /// `@@gtid_slave_pos`: last transaction applied by replication.
    pub slave: GtidSet,
    /// `Gtid_IO_Pos` of `SHOW SLAVE STATUS`: last transaction received (replicas).
    pub io: Option<GtidSet>,
}

impl MysqlPosition {
    /// Everything this server holds: binlog, applied and received transactions (a
    /// promotion applies what was received first).
    pub fn end(&self) -> GtidSet {
        let applied = self.binlog.union(&self.slave);
        match &self.io {
            Some(io) => applied.union(io),
            None => applied,
        }
    }
}

/// A member's replication position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    Postgres(PgPosition),
    Mysql(MysqlPosition),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Postgres(p) => match p.end() {
                Some(lsn) => write!(f, "{}/{lsn}", p.timeline),
                None => write!(f, "{}/unknown", p.timeline),
            },
            Position::Mysql(m) => write!(f, "{}", m.end()),
        }
    }
}

/// How position A relates to position B.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    Equal,
    /// A has everything B has, and more.
    Ahead,
    /// B has everything A has, and more.
    Behind,
    /// Each has transactions the other lacks in different domains (MariaDB multi-domain).
    Incomparable,
    /// A and B are on different histories (timeline fork, conflicting GTIDs).
    Diverged {
        reason: String,
    },
    /// The positions cannot be compared (different engines, missing data).
    Unknown {
        reason: String,
    },
}

impl Comparison {
    /// A is at least as advanced as B on the same history.
    pub fn at_least(&self) -> bool {
        matches!(self, Comparison::Equal | Comparison::Ahead)
    }
}

/// Compares two positions of the same engine.
pub fn compare(a: &Position, b: &Position) -> Comparison {
    match (a, b) {
        (Position::Postgres(a), Position::Postgres(b)) => compare_pg(a, b),
        (Position::Mysql(a), Position::Mysql(b)) => compare_gtid(&a.end(), &b.end()),
        _ => Comparison::Unknown {
            reason: "positions of different engines".into(),
        },
    }
}

/// PostgreSQL: same timeline compares LSNs; across timelines the newer one's history
/// must show the older timeline forked off at or after the older position.
pub fn compare_pg(a: &PgPosition, b: &PgPosition) -> Comparison {
    let (Some(la), Some(lb)) = (a.end(), b.end()) else {
        return Comparison::Unknown {
            reason: "a position has no LSN".into(),
        };
    };
    if a.timeline == b.timeline {
        return match la.cmp(&lb) {
            std::cmp::Ordering::Equal => Comparison::Equal,
            std::cmp::Ordering::Greater => Comparison::Ahead,
            std::cmp::Ordering::Less => Comparison::Behind,
        };
    }
    let (newer, older, older_lsn, a_is_newer) = if a.timeline > b.timeline {
        (a, b, lb, true)
    } else {
        (b, a, la, false)
    };
    let Some(fork) = newer.history.iter().find(|s| s.timeline == older.timeline) else {
        return Comparison::Diverged {
            reason: format!(
                "timeline {} is not an ancestor of timeline {} (history: {:?})",
                older.timeline, newer.timeline, newer.history
            ),
        };
    };
    if older_lsn > fork.switch {
        return Comparison::Diverged {
            reason: format!(
                "timeline {} continued to {older_lsn} past the fork at {} where timeline {} began",
                older.timeline, fork.switch, newer.timeline
            ),
        };
    }
    if a_is_newer {
        Comparison::Ahead
    } else {
        Comparison::Behind
    }
}

/// MariaDB: per domain, compare sequence numbers; equal numbers from different
/// servers mean two histories.
pub fn compare_gtid(a: &GtidSet, b: &GtidSet) -> Comparison {
    let (mut ahead, mut behind) = (false, false);
    let domains: std::collections::BTreeSet<u32> = a.0.keys().chain(b.0.keys()).copied().collect();
    for d in domains {
        match (a.0.get(&d), b.0.get(&d)) {
            (Some(_), None) => ahead = true,
            (None, Some(_)) => behind = true,
            (Some(x), Some(y)) if x.seq > y.seq => ahead = true,
            (Some(x), Some(y)) if x.seq < y.seq => behind = true,
            (Some(x), Some(y)) if x.server_id != y.server_id => {
                return Comparison::Diverged {
                    reason: format!(
                        "domain {d}: sequence {} written by server {} and by server {}",
                        x.seq, x.server_id, y.server_id
                    ),
                };
            }
            _ => {}
        }
    }
    match (ahead, behind) {
        (false, false) => Comparison::Equal,
        (true, false) => Comparison::Ahead,
        (false, true) => Comparison::Behind,
        (true, true) => Comparison::Incomparable,
    }
}

/// Errant transactions: GTIDs in `replica`'s binlog that `primary` cannot have (a
/// higher sequence number, or the same one from another server). With one GTID per
/// domain this finds every errant last transaction; one hidden behind later
/// replicated ones needs the binlogs themselves.
pub fn errant_gtids(replica: &GtidSet, primary: &GtidSet) -> Vec<Gtid> {
    replica
        .0
        .values()
        .filter(|r| match primary.0.get(&r.domain) {
            None => true,
            Some(p) => r.seq > p.seq || (r.seq == p.seq && r.server_id != p.server_id),
        })
        .copied()
        .collect()
}

/// Data the replica lacks compared with the primary: WAL bytes (PG, same timeline) or
/// transactions (MariaDB). `None` when not comparable.
pub fn lag_between(primary: &Position, replica: &Position) -> Option<u64> {
    match (primary, replica) {
        (Position::Postgres(p), Position::Postgres(r)) if p.timeline == r.timeline => {
            Some(p.end()?.0.saturating_sub(r.end()?.0))
        }
        (Position::Mysql(p), Position::Mysql(r)) => Some(p.end().transactions_ahead_of(&r.end())),
        _ => None,
    }
}

/// How far `a` is ahead of `b` (negative: behind), in WAL bytes (PG, same timeline) or
/// transactions (MariaDB, summed per domain). `None` when not comparable.
pub fn units_ahead(a: &Position, b: &Position) -> Option<i128> {
    match (a, b) {
        (Position::Postgres(a), Position::Postgres(b)) if a.timeline == b.timeline => {
            Some(i128::from(a.end()?.0) - i128::from(b.end()?.0))
        }
        (Position::Mysql(a), Position::Mysql(b)) => {
            let (a, b) = (a.end(), b.end());
            let domains: std::collections::BTreeSet<u32> = a.0.keys().chain(b.0.keys()).copied().collect();
            Some(
                domains
                    .into_iter()
                    .map(|d| {
                        i128::from(a.0.get(&d).map_or(0, |g| g.seq)) - i128::from(b.0.get(&d).map_or(0, |g| g.seq))
                    })
                    .sum(),
            )
        }
        _ => None,
    }
}

impl Position {
    /// Parses what [`Position`]'s `Display` wrote (PG `timeline/LSN`, MariaDB a GTID
    /// list), e.g. from a status field. PostgreSQL timeline history is not kept in the
    /// text, so positions on other timelines compare as unknown.
    pub fn parse(postgres: bool, text: &str) -> Option<Position> {
        if postgres {
            let (timeline, lsn) = text.split_once('/')?;
            let lsn: Lsn = lsn.parse().ok()?;
            Some(Position::Postgres(PgPosition {
                timeline: timeline.parse().ok()?,
                current: Some(lsn),
                ..PgPosition::default()
            }))
        } else {
            let set: GtidSet = text.parse().ok()?;
            Some(Position::Mysql(MysqlPosition {
                binlog: set,
                ..MysqlPosition::default()
            }))
        }
    }
}

#[cfg(test)]
mod tests;
