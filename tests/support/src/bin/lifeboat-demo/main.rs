//! `make demo`: lifeboat's main job, end to end, on kube-sandbox with real PostgreSQL and
//! garage. A shop writes orders through the writer Service while the primary is killed;
//! lifeboat fails over on its own; a backup is restored into a scratch server and checked.
//! Prints a timeline and a summary, writes target/demo/report.json, stops what it started.

mod cluster;
mod timeline;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use kube_sandbox::{Sandbox, SandboxOptions};
use lifeboat_testkit::cluster::register_pod;
use lifeboat_testkit::pg::shop::{ShopSize, create_shop};
use lifeboat_testkit::pg::{PASSWORD, PASSWORD_USER, PgCluster, PgOptions};
use lifeboat_testkit::s3::Garage;
use lifeboat_testkit::shop_load::{PG_SCHEMA, PgTarget, ShopLoad, pg_order_ids};
use serde_json::{Value, json};

use cluster::{Kube, wait_for};
use timeline::Timeline;

const NS: &str = "default";
const PLAN: &str = "orders";

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    match run().await {
        Ok(()) => {}
        Err(err) => {
            eprintln!("demo failed: {err:#}");
            eprintln!("logs: target/demo/");
            std::process::exit(1);
        }
    }
}

fn repo_root() -> PathBuf {
    lifeboat_testkit::tools::repo_root()
}

async fn run() -> anyhow::Result<()> {
    let repo = repo_root();
    let out_dir = repo.join("target/demo");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir)?;
    let lifeboat = std::env::current_exe()?.parent().context("exe dir")?.join("lifeboat");
    anyhow::ensure!(lifeboat.exists(), "{} not built: run `make demo`", lifeboat.display());
    let mut t = Timeline::new();

    // The cluster.
    let sandbox = Sandbox::start(SandboxOptions {
        dir: Some(out_dir.join("sandbox")),
        ..SandboxOptions::default()
    })
    .await?;
    let kube = Kube {
        kubeconfig: sandbox.kubeconfig_path().to_path_buf(),
        repo: repo.clone(),
        lifeboat,
        logs: out_dir.clone(),
    };
    t.say(format!(
        "kube-sandbox serving at {} (kubeconfig {})",
        sandbox.url(),
        kube.kubeconfig.display()
    ));
    kube.kubectl(&["apply", "--server-side", "-f", "crds/"])?;
    kube.kubectl(&["wait", "--for=condition=Established", "crd", "--all", "--timeout=30s"])?;
    t.say("kubectl apply --server-side -f crds/: 5 CRDs established");
    kube.run(
        &lifeboat_testkit::tools::helm(),
        &[
            "install",
            "lifeboat",
            "charts/lifeboat",
            "-n",
            "lifeboat-system",
            "--create-namespace",
            "--set",
            "crds.install=false",
        ],
    )?;
    t.say("helm install lifeboat charts/lifeboat: RBAC, Deployment, metrics Service (the sandbox runs no pods: the operator runs as a local process)");

    // The databases and the object store.
    let mut pg = PgCluster::start(PgOptions {
        replicas: 2,
        ..PgOptions::default()
    })
    .await?;
    create_shop(&pg.primary, "orders", ShopSize::SMALL).await?;
    pg.primary.connect_db("orders").await?.batch_execute(PG_SCHEMA).await?;
    t.say(format!(
        "PostgreSQL primary {} with streaming replicas {} and {}; shop database `orders` (1000 orders)",
        pg.primary.host(),
        pg.replicas[0].host(),
        pg.replicas[1].host()
    ));
    let garage = tokio::task::block_in_place(Garage::start)?;
    t.say(format!(
        "garage (S3) at {}, bucket {}",
        garage.endpoint(),
        garage.bucket()
    ));
    let client = sandbox.client().await;
    let hosts = [pg.primary.host(), pg.replicas[0].host(), pg.replicas[1].host()];
    for (i, host) in hosts.iter().enumerate() {
        register_pod(&client, NS, &format!("orders-db-{i}"), &[("app", "orders-db")], host).await;
    }
    t.say("pods orders-db-0 (primary), orders-db-1, orders-db-2 registered with their podIPs");

    // The examples, pointed at this machine's servers.
    kube.kubectl(&["apply", "-f", "examples/postgres-orders.yaml"])?;
    kube.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: orders-db-credentials}}\nstringData: {{username: {PASSWORD_USER}, password: {PASSWORD}}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: backups-s3}}\nstringData: {{AWS_ACCESS_KEY_ID: {}, AWS_SECRET_ACCESS_KEY: {}}}\n",
        garage.access_key(),
        garage.secret_key()
    ))?;
    let s3 = json!({"spec": {"s3": {"bucket": garage.bucket(), "endpoint": garage.endpoint(), "region": garage.region(), "forcePathStyle": true}}});
    kube.kubectl(&[
        "patch",
        "backupstore",
        "shop-backups",
        "--type",
        "merge",
        "-p",
        &s3.to_string(),
    ])?;
    t.say("examples/postgres-orders.yaml applied (BackupStore shop-backups -> garage, RecoveryPlan orders: RPO 1m, RTO 30s, probe 1s x 3)");

    let mut operator = kube.start_operator()?;
    t.say("lifeboat operator started (log: target/demo/operator.log)");
    wait_for("plan orders Ready", Duration::from_secs(60), || {
        let plan = kube.get("recoveryplan", PLAN, NS).ok()?;
        condition(&plan, "Ready").filter(|s| s == "True")
    })
    .await?;
    t.say(format!(
        "RecoveryPlan orders Ready: primary orders-db-0\n{}",
        indent(&kube.kubectl(&["get", "rp", "-n", NS])?)
    ));
    wait_for("writer Service on the primary", Duration::from_secs(30), || {
        let svc = kube.get("service", "orders-db", NS).ok()?;
        (svc["spec"]["selector"]["lifeboat.dev/role"] == "primary").then_some(())
    })
    .await?;

    // The shop.
    let svc = kube.get("service", "orders-db", NS)?;
    let cluster_ip = svc["spec"]["clusterIP"].as_str().context("clusterIP")?.to_string();
    let load = ShopLoad::start_pg(PgTarget {
        host: cluster_ip.clone(),
        port: 5432,
        user: PASSWORD_USER.into(),
        password: PASSWORD.into(),
        dbname: "orders".into(),
    });
    wait_for("orders flowing", Duration::from_secs(30), || {
        (load.acknowledged() > 50).then_some(())
    })
    .await?;
    t.say(format!(
        "shop placing orders through the writer Service {cluster_ip}:5432"
    ));

    // A backup.
    let started = Instant::now();
    let out = kube.lifeboat(&["backup", PLAN, "-n", NS, "--wait", "2m"])?;
    let backup_seconds = started.elapsed().as_secs_f64();
    let backup = out
        .lines()
        .find_map(|l| l.split(':').next().filter(|n| n.starts_with("orders-manual-")))
        .context("backup name")?
        .to_string();
    let bk = kube.get("backup", &backup, NS)?;
    let backup_bytes = bk["status"]["sizeBytes"].as_i64().unwrap_or(0);
    t.say(format!(
        "`lifeboat backup orders`: {backup} Completed from {} in {:.2}s, {} stored (sha256 {}…)",
        bk["status"]["sourceMember"].as_str().unwrap_or("?"),
        backup_seconds,
        bk["status"]["size"].as_str().unwrap_or("?"),
        &bk["status"]["objects"][0]["sha256"].as_str().unwrap_or("")
            [..12.min(bk["status"]["objects"][0]["sha256"].as_str().unwrap_or("").len())]
    ));

    // The disaster.
    let before_kill = load.acknowledged();
    pg.primary.stop_immediate().await?;
    t.say(format!(
        "primary orders-db-0 killed (immediate stop) after {before_kill} acknowledged orders"
    ));
    let failover = wait_for("automatic failover", Duration::from_secs(60), || {
        let f = kube.list("failover", NS).ok()?.into_iter().next()?;
        matches!(f["status"]["phase"].as_str(), Some("Completed" | "Refused" | "Failed")).then_some(f)
    })
    .await?;
    anyhow::ensure!(
        failover["status"]["phase"] == "Completed",
        "failover did not complete: {}",
        failover["status"]["message"]
    );
    let new_primary = failover["status"]["newPrimary"].as_str().unwrap_or("?").to_string();
    for step in failover["status"]["steps"].as_array().cloned().unwrap_or_default() {
        t.say(format!(
            "  failover step {:<8} {:<12} {}",
            step["name"].as_str().unwrap_or(""),
            step["member"].as_str().unwrap_or(""),
            step["message"].as_str().unwrap_or("")
        ));
    }
    t.say(format!(
        "automatic failover Completed: {new_primary} promoted, operator-measured RTO {}",
        failover["status"]["rto"].as_str().unwrap_or("?")
    ));
    let resumed = load.acknowledged();
    wait_for("orders flowing on the new primary", Duration::from_secs(30), || {
        (load.acknowledged() > resumed + 50).then_some(())
    })
    .await?;
    let ledger = load.stop().await;
    let promoted = if new_primary == "orders-db-1" {
        &pg.replicas[0]
    } else {
        &pg.replicas[1]
    };
    let present: HashSet<i64> = pg_order_ids(&promoted.connect_db("orders").await?).await?;
    let lost = ledger.missing(&present);
    let unavailable = ledger.unavailability().map_or(0.0, |d| d.as_secs_f64());
    t.say(format!(
        "shop: {} orders acknowledged, {} lost, writes unavailable for {:.2}s",
        ledger.acknowledged.len(),
        lost.len(),
        unavailable
    ));

    // The restore drill.
    let scratch = PgCluster::start(PgOptions::default()).await?;
    let started = Instant::now();
    let host = scratch.primary.host();
    let restored = kube.lifeboat(&[
        "restore",
        &backup,
        "-n",
        NS,
        "--target",
        &host,
        "--target-secret",
        "orders-db-credentials",
        "--check",
        "orders-intact:orders:1000:select count(*) from orders",
        "--wait",
        "2m",
    ]);
    let restore_seconds = started.elapsed().as_secs_f64();
    let restore_verified = restored.as_ref().is_ok_and(|o| o.contains("passed"));
    t.say(format!(
        "`lifeboat restore {backup} --target {host}`: {} in {restore_seconds:.2}s",
        if restore_verified {
            "restored, check orders-intact passed"
        } else {
            "FAILED"
        }
    ));
    println!("\n{}", indent(&kube.kubectl(&["get", "lifeboat", "-n", NS])?));

    let report = json!({
        "backup_seconds": round(backup_seconds),
        "backup_bytes": backup_bytes,
        "failover_rto_seconds": round(unavailable),
        "operator_measured_rto_seconds": failover["status"]["rtoSeconds"].as_f64().map(round),
        "acknowledged_orders": ledger.acknowledged.len(),
        "lost_acknowledged_orders": lost.len(),
        "restore_seconds": round(restore_seconds),
        "restore_verified": restore_verified,
        "new_primary": new_primary,
        "timeline": t.events.iter().map(|(at, what)| json!({"at_seconds": round(*at), "event": what})).collect::<Vec<Value>>(),
    });
    std::fs::write(out_dir.join("report.json"), serde_json::to_string_pretty(&report)?)?;
    print_summary(&report);

    // Stop everything this demo started.
    let _ = operator.kill();
    let _ = operator.wait();
    drop(scratch);
    drop(pg);
    drop(garage);
    sandbox.shutdown().await;
    if !restore_verified {
        anyhow::bail!("the restore was not verified: {restored:?}");
    }
    Ok(())
}

fn condition(obj: &Value, type_: &str) -> Option<String> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?["status"]
        .as_str()
        .map(String::from)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("           {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn print_summary(report: &Value) {
    println!("\nSummary");
    let backup = format!("{} bytes in {}s", report["backup_bytes"], report["backup_seconds"]);
    println!("  {:<38} {backup}", "backup");
    println!(
        "  {:<38} {}s",
        "failover: shop write unavailability", report["failover_rto_seconds"]
    );
    println!(
        "  {:<38} {}s",
        "failover: RTO measured by lifeboat", report["operator_measured_rto_seconds"]
    );
    println!("  {:<38} {}", "acknowledged orders", report["acknowledged_orders"]);
    println!(
        "  {:<38} {}",
        "lost acknowledged orders", report["lost_acknowledged_orders"]
    );
    println!("  {:<38} {}s", "restore", report["restore_seconds"]);
    println!("  {:<38} {}", "restore_verified", report["restore_verified"]);
    println!("  report: target/demo/report.json");
}
