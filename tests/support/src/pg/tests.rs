//! Harness self-tests: the pg servers really run and replicate.

use super::*;

#[tokio::test]
async fn replica_streams_and_sees_primary_writes() {
    let cluster = PgCluster::start(PgOptions {
        replicas: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    cluster
        .primary
        .execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let replica = &cluster.replicas[0];
    wait_until("row on replica", Duration::from_secs(10), || async {
        let n: i64 = replica.query_one("SELECT count(*) FROM t").await?;
        Ok((n == 1).then_some(()))
    })
    .await
    .unwrap();
    let in_recovery: bool = replica.query_one("SELECT pg_is_in_recovery()").await.unwrap();
    assert!(in_recovery);
}

#[tokio::test]
async fn synchronous_standby_is_honoured() {
    let cluster = PgCluster::start(PgOptions {
        replicas: 1,
        synchronous_standby_names: Some("FIRST 1 (replica1)".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let state = wait_until("sync replica", READY_TIMEOUT, || async {
        let s: Option<String> = cluster
            .primary
            .query_one("SELECT max(sync_state) FROM pg_stat_replication WHERE application_name = 'replica1'")
            .await?;
        Ok(s.filter(|s| s == "sync"))
    })
    .await
    .unwrap();
    assert_eq!(state, "sync");
}

#[tokio::test]
async fn shop_has_the_requested_rows() {
    let cluster = PgCluster::start(PgOptions::default()).await.unwrap();
    let size = shop::ShopSize::SMALL;
    shop::create_shop(&cluster.primary, "shop", size).await.unwrap();
    let sums = shop::table_sums(&cluster.primary, "shop").await.unwrap();
    let rows: i64 = sums.values().map(|s| s.rows).sum();
    assert_eq!(rows as u64, size.total_rows());
    assert_eq!(sums["order_items"].rows as u64, size.orders * size.items_per_order);
    assert_ne!(sums["orders"].checksum, "0");
}
