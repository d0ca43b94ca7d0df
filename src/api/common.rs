//! Types shared by several kinds: references to Secrets, durations, conditions.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// API group of every lifeboat kind.
pub const GROUP: &str = "lifeboat.dev";
/// API version of every lifeboat kind.
pub const VERSION: &str = "v1alpha1";
/// Field manager used for every server-side apply lifeboat makes.
pub const FIELD_MANAGER: &str = "lifeboat";
/// Label lifeboat keeps on member pods so the writer Service follows the primary.
pub const ROLE_LABEL: &str = "lifeboat.dev/role";

/// Pattern every duration field must match: one or more `<number><unit>` groups with
/// units ms, s, m, h or d, e.g. `500ms`, `30s`, `5m`, `1h30m`, `7d`.
pub const DURATION_PATTERN: &str = r"^([0-9]+(ms|s|m|h|d))+$";

/// A key inside a Secret in the same namespace.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the same namespace as the object that refers to it.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A Secret holding a database username and password.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseCredentialsRef {
    /// Name of the Secret, in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key of the username in the Secret.
    #[serde(default = "default_username_key")]
    pub username_key: String,
    /// Key of the password in the Secret.
    #[serde(default = "default_password_key")]
    pub password_key: String,
}

fn default_username_key() -> String {
    "username".into()
}

fn default_password_key() -> String {
    "password".into()
}

/// The two database engines lifeboat protects.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// PostgreSQL (tested with 15); physical streaming replication.
    Postgres,
    /// MySQL or MariaDB (tested with MariaDB 10.11); GTID replication.
    Mysql,
}

impl EngineKind {
    /// The port the engine listens on unless told otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            EngineKind::Postgres => 5432,
            EngineKind::Mysql => 3306,
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineKind::Postgres => "postgres",
            EngineKind::Mysql => "mysql",
        })
    }
}
