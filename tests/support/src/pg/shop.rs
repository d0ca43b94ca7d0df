//! The shop schema (customers, products, orders, order_items) with generated data,
//! and per-table row counts + checksums to compare a source with a restored copy.
//!
//! Data is generated server-side (`generate_series`), in batches of orders, so a
//! >= 1 GiB database takes one call: `create_shop(&server, "shop", ShopSize::for_bytes(1 << 30))`.

use std::collections::BTreeMap;

use anyhow::Context;

use super::PgServer;

/// How much shop data to generate. Rows: `customers + products + orders +
/// orders * items_per_order`. `note_bytes` pads every order and order item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShopSize {
    pub customers: u64,
    pub products: u64,
    pub orders: u64,
    pub items_per_order: u64,
    pub note_bytes: u64,
}

impl ShopSize {
    /// A few thousand rows (500 customers, 200 products, 1000 orders, 3000 items).
    pub const SMALL: ShopSize = ShopSize {
        customers: 500,
        products: 200,
        orders: 1000,
        items_per_order: 3,
        note_bytes: 40,
    };

    /// Roughly `bytes` of table data (each order with its 3 items ~ 1 KiB on disk).
    pub fn for_bytes(bytes: u64) -> ShopSize {
        let orders = (bytes / 1024).max(1000);
        ShopSize {
            customers: (orders / 10).max(500),
            products: 5000,
            orders,
            items_per_order: 3,
            note_bytes: 200,
        }
    }

    /// Total rows over the four tables.
    pub fn total_rows(&self) -> u64 {
        self.customers + self.products + self.orders * (1 + self.items_per_order)
    }
}

/// Orders generated per INSERT statement (keeps each transaction moderate).
pub const ORDERS_PER_BATCH: u64 = 50_000;

/// DDL of the shop tables.
pub const SCHEMA: &str = "
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL UNIQUE,
  name text NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE products (id bigint PRIMARY KEY, sku text NOT NULL UNIQUE, title text NOT NULL,
  price_cents integer NOT NULL, stock integer NOT NULL);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers,
  status text NOT NULL, total_cents bigint NOT NULL, note text NOT NULL,
  created_at timestamptz NOT NULL);
CREATE TABLE order_items (order_id bigint NOT NULL REFERENCES orders, line integer NOT NULL,
  product_id bigint NOT NULL REFERENCES products, quantity integer NOT NULL,
  price_cents integer NOT NULL, note text, PRIMARY KEY (order_id, line));
CREATE INDEX order_items_product ON order_items (product_id);
";

/// Creates database `dbname` on `server` with the shop schema and `size` data.
pub async fn create_shop(server: &PgServer, dbname: &str, size: ShopSize) -> anyhow::Result<()> {
    server.execute(&format!("CREATE DATABASE \"{dbname}\"")).await?;
    let client = server.connect_db(dbname).await?;
    client.batch_execute(SCHEMA).await.context("shop schema")?;
    let (c, p, i, n) = (size.customers, size.products, size.items_per_order, size.note_bytes);
    client
        .batch_execute(&format!(
            "INSERT INTO customers SELECT g, 'customer' || g || '@shop.test', 'Customer ' || g,
               timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
             FROM generate_series(1, {c}) g;
             INSERT INTO products SELECT g, 'SKU-' || g, 'Product ' || g,
               100 + (g * 37) % 10000, (g * 13) % 500 FROM generate_series(1, {p}) g;"
        ))
        .await
        .context("customers and products")?;
    let mut first = 1;
    while first <= size.orders {
        let last = (first + ORDERS_PER_BATCH - 1).min(size.orders);
        client
            .batch_execute(&format!(
                "INSERT INTO orders SELECT g, 1 + (g * 7919) % {c},
                   (ARRAY['new','paid','shipped','delivered'])[1 + g % 4], (g * 113) % 100000,
                   left(repeat(md5(g::text), {n} / 32 + 1), {n}),
                   timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'
                 FROM generate_series({first}, {last}) g;
                 INSERT INTO order_items SELECT o, l, 1 + (o * 31 + l * 17) % {p}, 1 + (o + l) % 5,
                   100 + (o * 7 + l) % 10000,
                   CASE WHEN l % 7 = 0 THEN NULL
                        ELSE left(repeat(md5((o * 100 + l)::text), {n} / 32 + 1), {n}) END
                 FROM generate_series({first}, {last}) o, generate_series(1, {i}) l;"
            ))
            .await
            .with_context(|| format!("orders {first}..={last}"))?;
        first = last + 1;
    }
    client.batch_execute("ANALYZE").await?;
    Ok(())
}

/// Row count and an order-independent checksum of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSum {
    pub rows: i64,
    /// Sum over rows of the first 60 bits of md5(row as text), as decimal text.
    pub checksum: String,
}

/// [`TableSum`] of every table in schema `public` of `dbname`, by table name.
pub async fn table_sums(server: &PgServer, dbname: &str) -> anyhow::Result<BTreeMap<String, TableSum>> {
    let client = server.connect_db(dbname).await?;
    let tables = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await?;
    let mut sums = BTreeMap::new();
    for row in tables {
        let table: String = row.get(0);
        let sum = client
            .query_one(
                &format!(
                    "SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)::text
                     FROM \"{table}\" t"
                ),
                &[],
            )
            .await
            .with_context(|| format!("checksum of {table}"))?;
        sums.insert(
            table,
            TableSum {
                rows: sum.get(0),
                checksum: sum.get(1),
            },
        );
    }
    Ok(sums)
}
