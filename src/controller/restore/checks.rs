//! Verification checks after a restore: a query whose single value must equal `expect`.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::api::EngineKind;
use crate::engine::{Credentials, Member};

const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `sql` in `database` on `member` and returns the first column of the first row as
/// text (`NULL` as "NULL"); an error is returned as text for the check's result.
pub async fn scalar(
    engine: EngineKind,
    member: &Member,
    credentials: &Credentials,
    database: &str,
    sql: &str,
) -> Result<String, String> {
    let work = async {
        match engine {
            EngineKind::Postgres => postgres_scalar(member, credentials, database, sql).await,
            EngineKind::Mysql => mysql_scalar(member, credentials, database, sql).await,
        }
    };
    tokio::time::timeout(CHECK_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {CHECK_TIMEOUT:?}")))
}

async fn postgres_scalar(
    member: &Member,
    credentials: &Credentials,
    database: &str,
    sql: &str,
) -> Result<String, String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&member.host)
        .port(member.port)
        .user(&credentials.username)
        .password(&credentials.password)
        .dbname(database)
        .connect_timeout(Duration::from_secs(5));
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    // simple_query returns every value as text, whatever its SQL type.
    let messages = client.simple_query(sql).await.map_err(|e| e.to_string());
    driver.abort();
    for message in messages? {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
            return Ok(row.get(0).unwrap_or("NULL").to_string());
        }
    }
    Err("the query returned no row".into())
}

async fn mysql_scalar(member: &Member, credentials: &Credentials, database: &str, sql: &str) -> Result<String, String> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(member.host.clone())
        .tcp_port(member.port)
        .user(Some(credentials.username.clone()))
        .pass(Some(credentials.password.clone()))
        .db_name(Some(database.to_string()));
    let mut conn = mysql_async::Conn::new(opts).await.map_err(|e| e.to_string())?;
    let row: Option<mysql_async::Row> = conn.query_first(sql).await.map_err(|e| e.to_string())?;
    let _ = conn.disconnect().await;
    let row = row.ok_or("the query returned no row")?;
    let value = row.as_ref(0).cloned().unwrap_or(mysql_async::Value::NULL);
    Ok(match value {
        mysql_async::Value::NULL => "NULL".into(),
        mysql_async::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        other => other.as_sql(true).trim_matches('\'').to_string(),
    })
}
