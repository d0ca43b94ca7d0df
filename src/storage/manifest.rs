//! `manifest.json`: the proof that a backup is complete, written after every object.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version of the manifest format, bumped on incompatible changes.
pub const MANIFEST_FORMAT: u32 = 1;

/// Everything needed to find, verify and restore a backup without Kubernetes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: u32,
    pub namespace: String,
    pub plan: String,
    pub backup: String,
    /// `postgres` or `mysql`.
    pub engine: String,
    /// Version string the database server reported.
    pub server_version: String,
    /// LSN (PostgreSQL) or GTID set (MySQL/MariaDB) the dump is consistent with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_position: Option<String>,
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    pub compression: Compression,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    pub lifeboat_version: String,
    pub objects: Vec<ManifestObject>,
}

/// How objects are compressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compression {
    /// Always `zstd` for now.
    pub algorithm: String,
    pub level: i32,
}

/// Client-side encryption of the objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Encryption {
    /// Always `age` for now.
    pub scheme: String,
    /// Public keys the objects are encrypted to (any matching identity decrypts).
    pub recipients: Vec<String>,
}

/// One stored object: one database's dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestObject {
    pub database: String,
    /// Full S3 key.
    pub key: String,
    /// Stored size in bytes (compressed, encrypted).
    pub size: u64,
    /// Hex sha256 of the stored bytes.
    pub sha256: String,
    /// Bytes the dump command produced, before compression.
    pub raw_size: u64,
    /// Format of the dump inside, e.g. `pgdump` (pg_dump -Fc) or `sql`.
    pub format: String,
}

impl Manifest {
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data (strings, numbers, dates) cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Sum of stored object sizes.
    pub fn stored_bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.size).sum()
    }

    pub fn object(&self, database: &str) -> Option<&ManifestObject> {
        self.objects.iter().find(|o| o.database == database)
    }
}

/// The running lifeboat's version, recorded in every manifest.
pub fn lifeboat_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_through_json() {
        let m = Manifest {
            format: MANIFEST_FORMAT,
            namespace: "shop".into(),
            plan: "orders".into(),
            backup: "b1".into(),
            engine: "postgres".into(),
            server_version: "15.8".into(),
            consistent_position: Some("0/3000060".into()),
            started_at: Utc::now(),
            completed_at: Utc::now(),
            compression: Compression {
                algorithm: "zstd".into(),
                level: 3,
            },
            encryption: None,
            lifeboat_version: lifeboat_version(),
            objects: vec![],
        };
        let json = m.to_json();
        assert!(String::from_utf8_lossy(&json).contains("\"consistentPosition\""));
        assert_eq!(Manifest::from_json(&json).unwrap(), m);
    }
}
