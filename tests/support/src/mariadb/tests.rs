//! Harness self-tests: the mariadb servers really run and replicate.

use super::*;

#[tokio::test]
async fn replica_applies_primary_writes() {
    let cluster = MariaCluster::start(MariaOptions { replicas: 1 }).await.unwrap();
    cluster
        .primary
        .execute("CREATE DATABASE d; CREATE TABLE d.t (id int primary key); INSERT INTO d.t VALUES (1)")
        .await
        .unwrap();
    let replica = &cluster.replicas[0];
    wait_until("row on replica", Duration::from_secs(10), || async {
        let n: i64 = replica.query_one("SELECT count(*) FROM d.t").await?;
        Ok((n == 1).then_some(()))
    })
    .await
    .unwrap();
    let read_only: i64 = replica.query_one("SELECT @@read_only").await.unwrap();
    assert_eq!(read_only, 1);
}

#[tokio::test]
async fn shop_has_the_requested_rows() {
    let cluster = MariaCluster::start(MariaOptions::default()).await.unwrap();
    let size = shop::ShopSize::SMALL;
    shop::create_shop(&cluster.primary, "shop", size).await.unwrap();
    let sums = shop::table_sums(&cluster.primary, "shop").await.unwrap();
    let rows: i64 = sums.values().map(|s| s.rows).sum();
    assert_eq!(rows as u64, size.total_rows());
    assert_ne!(sums["orders"].checksum, "0");
}
