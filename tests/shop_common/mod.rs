//! Waits shared by the shop-ledger e2e tests: the plan Ready with writes routed to the
//! primary alone, orders flowing, and the plan's (first) Failover ended.
#![allow(dead_code)]

use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::Api;
use kube::api::ListParams;
use lifeboat::api::{Failover, FailoverPhase, FailoverStatus, RecoveryPlan};
use lifeboat_testkit::shop_load::ShopLoad;
use lifeboat_testkit::tools::wait_until_async;

/// Waits until plan `shop` is Ready and the writer Service `db` routes to `primary_host`
/// alone; returns the Service's clusterIP.
pub async fn ready_and_routed(client: &kube::Client, primary_host: &str) -> String {
    let plans: Api<RecoveryPlan> = Api::default_namespaced(client.clone());
    wait_until_async("plan Ready", Duration::from_secs(60), || async {
        let s = plans.get("shop").await.ok()?.status?;
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
            .then_some(())
    })
    .await;
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let ip = wait_until_async(
        "writer Service selects the primary",
        Duration::from_secs(30),
        || async {
            let spec = services.get("db").await.ok()?.spec?;
            (spec.selector?.get("lifeboat.dev/role")? == "primary").then_some(spec.cluster_ip?)
        },
    )
    .await;
    // The proxy routes by the Service's endpoints: wait until they hold the primary alone.
    let endpoints: Api<Endpoints> = Api::default_namespaced(client.clone());
    wait_until_async("endpoints hold only the primary", Duration::from_secs(30), || async {
        let subsets = endpoints.get("db").await.ok()?.subsets?;
        let ips: Vec<String> = subsets
            .iter()
            .flat_map(|s| s.addresses.iter().flatten().map(|a| a.ip.clone()))
            .collect();
        (ips == vec![primary_host.to_string()]).then_some(())
    })
    .await;
    ip
}

/// Waits until `more` further orders are acknowledged.
pub async fn orders_flow(load: &ShopLoad, more: usize) {
    let base = load.acknowledged();
    wait_until_async("orders flowing", Duration::from_secs(60), || async {
        (load.acknowledged() >= base + more).then_some(())
    })
    .await;
}

/// Waits until the namespace's first Failover is Completed, Refused or Failed.
pub async fn failover_ended(client: &kube::Client, within: Duration) -> FailoverStatus {
    let failovers: Api<Failover> = Api::default_namespaced(client.clone());
    wait_until_async("failover ended", within, || async {
        let s = failovers
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .next()?
            .status?;
        matches!(
            s.phase,
            Some(FailoverPhase::Completed | FailoverPhase::Refused | FailoverPhase::Failed)
        )
        .then_some(s)
    })
    .await
}
