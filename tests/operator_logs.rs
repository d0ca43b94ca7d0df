//! `lifeboat operator --log-format json`: every line is a JSON object, and the lines of
//! a backup carry the fields a log pipeline filters on.

use std::path::PathBuf;
use std::time::Duration;

use kube::Api;
use lifeboat::api::{Backup, BackupPhase};
use lifeboat_testkit::cluster::{TestCluster, register_pod};
use lifeboat_testkit::manifests::{PlanManifest, plan_manifest};
use lifeboat_testkit::operator::OperatorProcess;
use lifeboat_testkit::pg::shop::{ShopSize, create_shop};
use lifeboat_testkit::pg::{PgCluster, PgOptions};
use lifeboat_testkit::s3::Garage;
use lifeboat_testkit::tools::wait_until_async;
use serde_json::Value;

fn lines(output: &str) -> Vec<Value> {
    output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn find<'a>(lines: &'a [Value], message: &str) -> Option<&'a Value> {
    lines
        .iter()
        .find(|l| l["message"].as_str().is_some_and(|m| m.starts_with(message)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_carry_the_fields_of_a_backup() {
    let pg = PgCluster::start(PgOptions::default()).await.expect("postgres");
    create_shop(&pg.primary, "shop", ShopSize::SMALL).await.expect("shop");
    let garage = tokio::task::block_in_place(Garage::start).expect("garage");
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    register_pod(&client, "default", "db-0", &[("app", "db")], &pg.primary.host()).await;
    let plan = PlanManifest {
        backup: Some(r#"{schedule: "@yearly", databases: [shop]}"#),
        objectives: "{rpo: 1h, rto: 1h}",
        ..PlanManifest::default()
    };
    let manifest = plan_manifest(&plan, Some(&garage))
        + "---\napiVersion: lifeboat.dev/v1alpha1\nkind: Backup\nmetadata: {name: manual}\nspec: {plan: shop}\n";
    let run = cluster.kubectl_stdin(&["apply", "-f", "-"], &manifest);
    assert!(run.ok, "{}", run.stderr);
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"));
    let operator = OperatorProcess::start_captured(&exe, cluster.kubeconfig(), "op", &["--log-format", "json"], &[]);

    let backups: Api<Backup> = Api::default_namespaced(client.clone());
    wait_until_async("Backup Completed", Duration::from_secs(60), || async {
        backups
            .get("manual")
            .await
            .ok()?
            .status?
            .phase
            .filter(|p| *p == BackupPhase::Completed)
    })
    .await;
    // The status is written just after the line: wait for the line, not for time.
    let parsed = wait_until_async("the backup's log line", Duration::from_secs(10), || async {
        let parsed = lines(&operator.output());
        find(&parsed, "backup completed").is_some().then_some(parsed)
    })
    .await;

    for line in &parsed {
        for key in ["timestamp", "level", "target"] {
            assert!(line[key].is_string(), "{key} in every line: {line}");
        }
    }
    let started = find(&parsed, "operator started").expect("a start line");
    assert_eq!(started["identity"], "op", "{started}");
    assert!(find(&parsed, "leadership gained").is_some(), "leadership is logged");
    let store = find(&parsed, "backup store available").expect("the store check is logged");
    assert_eq!(store["store"], "garage", "{store}");

    let begun = find(&parsed, "backup started").expect("a started line");
    let done = find(&parsed, "backup completed").expect("a completed line");
    for line in [begun, done] {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["namespace"], "default", "{line}");
        assert_eq!(line["plan"], "shop", "{line}");
        assert_eq!(line["backup"], "manual", "{line}");
        assert_eq!(line["member"], "db-0", "{line}");
    }
    let status = backups.get("manual").await.expect("backup").status.expect("status");
    assert_eq!(done["bytes"].as_i64(), status.size_bytes, "{done}");
    assert!(done["duration_seconds"].as_f64().is_some_and(|s| s > 0.0), "{done}");
    assert_eq!(done["databases"], 1, "{done}");
    assert!(done["position"].as_str().is_some_and(|p| !p.is_empty()), "{done}");
}
