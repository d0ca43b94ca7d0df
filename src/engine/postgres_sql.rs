//! PostgreSQL quoting, replication conninfo and error classification.

use tokio_postgres::error::SqlState;

use super::error::Failure;
use super::types::{EngineConfig, Member};

/// libpq conninfo for a replica's upstream. The password, if any, ends up in the
/// replica's postgresql.auto.conf, as `pg_basebackup -R` would write it.
pub(crate) fn primary_conninfo(config: &EngineConfig, primary: &Member, application_name: &str) -> String {
    let mut parts = vec![
        format!("host={}", quote_conninfo(&primary.host)),
        format!("port={}", primary.port),
        format!("user={}", quote_conninfo(&config.credentials.username)),
        format!("application_name={}", quote_conninfo(application_name)),
        format!("sslmode={}", config.tls.mode.as_libpq()),
    ];
    if !config.credentials.password.is_empty() {
        parts.push(format!("password={}", quote_conninfo(&config.credentials.password)));
    }
    if let Some(ca) = &config.tls.ca_file {
        parts.push(format!("sslrootcert={}", quote_conninfo(&ca.display().to_string())));
    }
    parts.join(" ")
}

/// A conninfo value in single quotes with `\` and `'` escaped.
pub(crate) fn quote_conninfo(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// An SQL string literal (standard_conforming_strings on).
pub(crate) fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// An SQL identifier in double quotes.
pub(crate) fn quote_ident(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// Classifies a connection error: bad credentials, or the server is out of reach.
pub(crate) fn connect_failure(user: &str, e: &tokio_postgres::Error) -> Failure {
    let code = e.code();
    if code == Some(&SqlState::INVALID_PASSWORD)
        || code == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
        || e.to_string().contains("password missing")
    {
        return Failure::Auth {
            user: user.to_string(),
            message: e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string()),
        };
    }
    let chain = error_chain(e);
    match e.as_db_error() {
        Some(db) => Failure::Connect(format!("{}: {}", db.code().code(), db.message())),
        None if chain.contains("TLS") || chain.contains("certificate") => Failure::Tls(chain),
        None => Failure::Connect(chain),
    }
}

/// A failed statement; a lost connection reads as unreachable.
pub(crate) fn query_failure(statement: &str, e: &tokio_postgres::Error) -> Failure {
    match e.as_db_error() {
        Some(db) => Failure::Query {
            statement: statement.to_string(),
            code: db.code().code().to_string(),
            message: db.message().to_string(),
        },
        None if e.is_closed() => Failure::Connect(format!("connection lost during {statement}")),
        None => Failure::Connect(error_chain(e)),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::types::Credentials;

    #[test]
    fn conninfo_quotes_values() {
        let config = EngineConfig {
            credentials: Credentials::new("repl", "p'w\\d"),
            ..Default::default()
        };
        let info = primary_conninfo(&config, &Member::new("a", "10.0.0.1", 5432), "b");
        assert_eq!(
            info,
            "host='10.0.0.1' port=5432 user='repl' application_name='b' sslmode=disable password='p\\'w\\\\d'"
        );
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
