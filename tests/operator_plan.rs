//! The RecoveryPlan controller against kube-sandbox and a real PostgreSQL primary with
//! two streaming replicas registered as Pods.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Api;
use lifeboat::api::{Failover, FailoverPhase, RecoveryPlan};
use lifeboat_testkit::cluster::{TestCluster, register_pod};
use lifeboat_testkit::operator::OperatorProcess;
use lifeboat_testkit::pg::{PASSWORD, PASSWORD_USER, PgCluster, PgOptions};
use lifeboat_testkit::tools::wait_until_async;

struct Operator;

impl Operator {
    fn start(cluster: &TestCluster) -> OperatorProcess {
        OperatorProcess::start(
            std::path::Path::new(env!("CARGO_BIN_EXE_lifeboat")),
            cluster.kubeconfig(),
            "op",
            &[],
        )
    }
}

const PLAN: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: db-credentials}
stringData: {username: USER, password: PASS}
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  selector: {app: db}
  ports: [{name: pg, port: 5432, targetPort: 5432}]
---
apiVersion: lifeboat.dev/v1alpha1
kind: RecoveryPlan
metadata: {name: shop}
spec:
  engine: postgres
  members: {selector: {matchLabels: {app: db}}}
  credentialsSecret: {name: db-credentials}
  writerService: db
  objectives: {rpo: 1m, rto: 30s}
  failover: {probeInterval: 500ms, failureThreshold: 3}
"#;

async fn condition(plans: &Api<RecoveryPlan>, type_: &str) -> Option<(String, String, String)> {
    let c = plans
        .get("shop")
        .await
        .ok()?
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status, c.reason, c.message))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_tracks_members_routes_writes_and_detects_a_dead_primary() {
    let mut pg = PgCluster::start(PgOptions {
        replicas: 2,
        ..PgOptions::default()
    })
    .await
    .expect("postgres");
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    let ns = "default";
    register_pod(&client, ns, "db-0", &[("app", "db")], &pg.primary.host()).await;
    register_pod(&client, ns, "db-1", &[("app", "db")], &pg.replicas[0].host()).await;
    register_pod(&client, ns, "db-2", &[("app", "db")], &pg.replicas[1].host()).await;
    let manifest = PLAN.replace("USER", PASSWORD_USER).replace("PASS", PASSWORD);
    let run = cluster.kubectl_stdin(&["apply", "-f", "-"], &manifest);
    assert!(run.ok, "{}", run.stderr);
    let _operator = Operator::start(&cluster);
    let plans: Api<RecoveryPlan> = Api::namespaced(client.clone(), ns);

    // Observed: the primary, every member with lag, Ready.
    let (_, reason, message) = wait_until_async("Ready=True", Duration::from_secs(60), || async {
        condition(&plans, "Ready").await.filter(|c| c.0 == "True")
    })
    .await;
    assert_eq!(reason, "PrimaryHealthy", "{message}");
    let status = plans.get("shop").await.expect("plan").status.expect("status");
    assert_eq!(status.primary.as_deref(), Some("db-0"));
    assert_eq!(status.members.len(), 3);
    assert!(
        status
            .members
            .iter()
            .filter(|m| m.role == "replica")
            .all(|m| m.healthy && m.lag_bytes.is_some()),
        "{:?}",
        status.members
    );

    // Writes are routed: role labels and the writer Service selecting the primary.
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let role = |p: Pod| p.metadata.labels.and_then(|l| l.get("lifeboat.dev/role").cloned());
    wait_until_async("pods labelled", Duration::from_secs(20), || async {
        let r0 = role(pods.get("db-0").await.ok()?)?;
        let r1 = role(pods.get("db-1").await.ok()?)?;
        (r0 == "primary" && r1 == "replica").then_some(())
    })
    .await;
    let service: Service = Api::namespaced(client.clone(), ns).get("db").await.expect("service");
    let selector = service.spec.and_then(|s| s.selector).expect("selector");
    assert_eq!(selector.get("lifeboat.dev/role").map(String::as_str), Some("primary"));
    assert_eq!(
        selector.get("app").map(String::as_str),
        Some("db"),
        "the user's own selector stays"
    );

    // The primary dies: after failureThreshold probes, confirmed by the replicas, an
    // automatic Failover is requested and Ready says why.
    pg.primary.stop_immediate().await.expect("stop primary");
    let failovers: Api<Failover> = Api::namespaced(client.clone(), ns);
    let requested = wait_until_async("automatic Failover", Duration::from_secs(30), || async {
        failovers
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|f| f.spec.plan == "shop")
    })
    .await;
    assert_eq!(
        requested
            .metadata
            .annotations
            .and_then(|a| a.get("lifeboat.dev/failed-primary").cloned())
            .as_deref(),
        Some("db-0")
    );
    let ready = condition(&plans, "Ready").await.expect("Ready");
    assert!(
        ready.1 == "PrimaryUnavailable" || ready.1 == "PrimaryHealthy",
        "{ready:?}"
    );

    // The Failover completes: a replica is promoted and writable, the writer Service
    // selects only it, the other replica follows it, and the RTO is measured.
    let name = requested.metadata.name.clone().expect("name");
    let done = wait_until_async("Failover Completed", Duration::from_secs(60), || async {
        let s = failovers.get(&name).await.ok()?.status?;
        matches!(
            s.phase,
            Some(FailoverPhase::Completed | FailoverPhase::Failed | FailoverPhase::Refused)
        )
        .then_some(s)
    })
    .await;
    assert_eq!(done.phase, Some(FailoverPhase::Completed), "{:?}", done.message);
    assert_eq!(done.old_primary.as_deref(), Some("db-0"));
    let new = done.new_primary.clone().expect("new primary");
    assert!(done.rto_seconds.is_some_and(|r| r > 0.0), "{done:?}");
    assert!(
        ["fence", "promote", "repoint"].iter().all(|s| done
            .steps
            .iter()
            .any(|x| x.name == *s && x.result.as_deref() == Some("Succeeded"))),
        "{:?}",
        done.steps
    );
    let (promoted, follower) = if new == "db-1" {
        (&pg.replicas[0], &pg.replicas[1])
    } else {
        (&pg.replicas[1], &pg.replicas[0])
    };
    promoted
        .execute("CREATE TABLE after_failover (id int); INSERT INTO after_failover VALUES (42)")
        .await
        .expect("new primary writable");
    wait_until_async(
        "the other replica follows the new primary",
        Duration::from_secs(30),
        || async {
            follower
                .query_one::<i32>("SELECT id FROM after_failover")
                .await
                .ok()
                .filter(|v| *v == 42)
        },
    )
    .await;
    let selected = wait_until_async(
        "writer Service selects only the new primary",
        Duration::from_secs(20),
        || async {
            let list = pods
                .list(&kube::api::ListParams::default().labels("app=db,lifeboat.dev/role=primary"))
                .await
                .ok()?;
            let names: Vec<String> = list.items.into_iter().filter_map(|p| p.metadata.name).collect();
            (names.len() == 1).then_some(names)
        },
    )
    .await;
    assert_eq!(selected, vec![new.clone()]);
    let plan = plans.get("shop").await.expect("plan");
    assert_eq!(plan.status.and_then(|s| s.primary).as_deref(), Some(new.as_str()));
    // The measured RTO now feeds the plan's estimate for losing the primary.
    let estimate = wait_until_async("RTO estimate from the failover", Duration::from_secs(20), || async {
        plans.get("shop").await.ok()?.status?.rto?.primary_loss_seconds
    })
    .await;
    assert_eq!(Some(estimate), done.rto_seconds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_inputs_are_named_and_fixing_them_recovers() {
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    let plans: Api<RecoveryPlan> = Api::default_namespaced(client.clone());
    let plan_only = PLAN.split("---").nth(2).expect("plan document").to_string();
    assert!(cluster.kubectl_stdin(&["apply", "-f", "-"], &plan_only).ok);
    let _operator = Operator::start(&cluster);

    // No Secret: named.
    let (_, reason, message) = wait_until_async("Ready=False", Duration::from_secs(30), || async {
        condition(&plans, "Ready").await.filter(|c| c.0 == "False")
    })
    .await;
    assert_eq!(reason, "CredentialsUnavailable");
    assert!(message.contains("db-credentials"), "{message}");

    // Secret there, but the selector matches no pod: named.
    let secret = PLAN
        .split("---")
        .next()
        .expect("secret")
        .replace("USER", "u")
        .replace("PASS", "p");
    assert!(cluster.kubectl_stdin(&["apply", "-f", "-"], &secret).ok);
    let (_, _, message) = wait_until_async("NoMembers", Duration::from_secs(30), || async {
        condition(&plans, "Ready").await.filter(|c| c.1 == "NoMembers")
    })
    .await;
    assert!(message.contains("app=db"), "{message}");

    // A pod appears at an address where nothing listens: unreachable, still no crash.
    register_pod(&client, "default", "db-0", &[("app", "db")], "127.0.0.1").await;
    let (_, reason, _) = wait_until_async("members probed", Duration::from_secs(30), || async {
        condition(&plans, "Ready")
            .await
            .filter(|c| c.1 != "NoMembers" && c.1 != "CredentialsUnavailable")
    })
    .await;
    assert!(
        ["NoPrimary", "PrimaryUnavailable", "WriterServiceMissing"].contains(&reason.as_str()),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_backup_store_is_named() {
    use lifeboat_testkit::manifests::{PlanManifest, plan_manifest};
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    register_pod(&client, "default", "db-0", &[("app", "db")], "127.0.0.1").await;
    // A backup block pointing at store "garage", which is never created.
    let manifest = plan_manifest(
        &PlanManifest {
            backup: Some(r#"{schedule: "@daily", databases: [shop]}"#),
            ..PlanManifest::default()
        },
        None,
    );
    assert!(cluster.kubectl_stdin(&["apply", "-f", "-"], &manifest).ok);
    let _operator = Operator::start(&cluster);
    let plans: Api<RecoveryPlan> = Api::default_namespaced(client.clone());
    let (_, _, message) = wait_until_async("BackupStoreMissing", Duration::from_secs(30), || async {
        condition(&plans, "Ready").await.filter(|c| c.1 == "BackupStoreMissing")
    })
    .await;
    assert!(message.contains("garage"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_schema_cannot_check_is_reported_as_invalid_spec() {
    use lifeboat_testkit::manifests::{PlanManifest, plan_manifest};
    let cluster = TestCluster::with_crds().await;
    let client = cluster.sandbox.client().await;
    // The schema accepts five fields; minute 61 does not exist.
    let plan = PlanManifest {
        backup: Some(r#"{schedule: "61 * * * *", timeZone: Mars/Olympus, databases: [shop]}"#),
        ..PlanManifest::default()
    };
    assert!(
        cluster
            .kubectl_stdin(&["apply", "-f", "-"], &plan_manifest(&plan, None))
            .ok
    );
    let _operator = Operator::start(&cluster);
    let plans: Api<RecoveryPlan> = Api::default_namespaced(client.clone());
    let (_, _, message) = wait_until_async("InvalidSpec", Duration::from_secs(30), || async {
        condition(&plans, "Ready").await.filter(|c| c.1 == "InvalidSpec")
    })
    .await;
    assert!(
        message.contains("spec.backup.schedule") && message.contains("spec.backup.timeZone"),
        "{message}"
    );
}
