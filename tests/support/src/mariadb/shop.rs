//! The shop schema for MariaDB (same tables and data as [`crate::pg::shop`]),
//! generated server-side with the SEQUENCE engine (`seq_1_to_N`), and per-table row
//! counts + checksums.

use std::collections::BTreeMap;

use anyhow::Context;
use mysql_async::prelude::Queryable;

pub use crate::pg::shop::{ORDERS_PER_BATCH, ShopSize, TableSum};

use super::MariaServer;

/// DDL of the shop tables (InnoDB, utf8mb4).
pub const SCHEMA: &str = "
CREATE TABLE customers (id bigint PRIMARY KEY, email varchar(255) NOT NULL UNIQUE,
  name varchar(255) NOT NULL, created_at datetime(6) NOT NULL) ENGINE=InnoDB;
CREATE TABLE products (id bigint PRIMARY KEY, sku varchar(64) NOT NULL UNIQUE,
  title varchar(255) NOT NULL, price_cents int NOT NULL, stock int NOT NULL) ENGINE=InnoDB;
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL,
  status varchar(16) NOT NULL, total_cents bigint NOT NULL, note text NOT NULL,
  created_at datetime(6) NOT NULL, FOREIGN KEY (customer_id) REFERENCES customers (id))
  ENGINE=InnoDB;
CREATE TABLE order_items (order_id bigint NOT NULL, line int NOT NULL, product_id bigint NOT NULL,
  quantity int NOT NULL, price_cents int NOT NULL, note text NULL, PRIMARY KEY (order_id, line),
  KEY order_items_product (product_id), FOREIGN KEY (order_id) REFERENCES orders (id),
  FOREIGN KEY (product_id) REFERENCES products (id)) ENGINE=InnoDB;
";

/// Creates database `dbname` on `server` with the shop schema and `size` data.
pub async fn create_shop(server: &MariaServer, dbname: &str, size: ShopSize) -> anyhow::Result<()> {
    let mut conn = server.connect().await?;
    conn.query_drop(format!("CREATE DATABASE `{dbname}`; USE `{dbname}`;"))
        .await?;
    conn.query_drop(SCHEMA).await.context("shop schema")?;
    let (c, p, i, n) = (size.customers, size.products, size.items_per_order, size.note_bytes);
    conn.query_drop(format!(
        "INSERT INTO customers SELECT seq, CONCAT('customer', seq, '@shop.test'),
           CONCAT('Customer ', seq), TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq MINUTE
         FROM seq_1_to_{c};
         INSERT INTO products SELECT seq, CONCAT('SKU-', seq), CONCAT('Product ', seq),
           100 + (seq * 37) % 10000, (seq * 13) % 500 FROM seq_1_to_{p};"
    ))
    .await
    .context("customers and products")?;
    let mut first = 1;
    while first <= size.orders {
        let last = (first + ORDERS_PER_BATCH - 1).min(size.orders);
        conn.query_drop(format!(
            "INSERT INTO orders SELECT seq, 1 + (seq * 7919) % {c},
               ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'delivered'), (seq * 113) % 100000,
               LEFT(REPEAT(MD5(seq), {n} DIV 32 + 1), {n}),
               TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND
             FROM seq_{first}_to_{last};
             INSERT INTO order_items SELECT o.seq, l.seq, 1 + (o.seq * 31 + l.seq * 17) % {p},
               1 + (o.seq + l.seq) % 5, 100 + (o.seq * 7 + l.seq) % 10000,
               IF(l.seq % 7 = 0, NULL, LEFT(REPEAT(MD5(o.seq * 100 + l.seq), {n} DIV 32 + 1), {n}))
             FROM seq_{first}_to_{last} o, seq_1_to_{i} l;"
        ))
        .await
        .with_context(|| format!("orders {first}..={last}"))?;
        first = last + 1;
    }
    conn.disconnect().await?;
    Ok(())
}

/// [`TableSum`] of every base table in database `dbname`, by table name. The checksum
/// is the sum over rows of the first 60 bits of MD5 of the `|`-joined column values.
pub async fn table_sums(server: &MariaServer, dbname: &str) -> anyhow::Result<BTreeMap<String, TableSum>> {
    let mut conn = server.connect().await?;
    let tables: Vec<String> = conn
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES
             WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
            (dbname,),
        )
        .await?;
    let mut sums = BTreeMap::new();
    for table in tables {
        let columns: Vec<String> = conn
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (dbname, &table),
            )
            .await?;
        let row_text = columns
            .iter()
            .map(|c| format!("IFNULL(CAST(`{c}` AS CHAR), '\\\\N')"))
            .collect::<Vec<_>>()
            .join(", ");
        let (rows, checksum): (i64, String) = conn
            .query_first(format!(
                "SELECT COUNT(*), CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(MD5(CONCAT_WS('|', {row_text})), 1, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR)
                 FROM `{dbname}`.`{table}`"
            ))
            .await
            .with_context(|| format!("checksum of {table}"))?
            .with_context(|| format!("checksum of {table}: no row"))?;
        sums.insert(table, TableSum { rows, checksum });
    }
    conn.disconnect().await?;
    Ok(sums)
}
