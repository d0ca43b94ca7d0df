//! Two operator instances: only the Lease holder reconciles; when it dies, the other
//! takes over.

use std::net::TcpListener;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use lifeboat_testkit::cluster::TestCluster;
use lifeboat_testkit::operator::OperatorProcess;
use lifeboat_testkit::tools::{wait_until, wait_until_async};

struct Operator {
    _process: OperatorProcess,
    metrics: String,
}

impl Operator {
    fn start(cluster: &TestCluster, identity: &str) -> Operator {
        // Reserve a free port, then hand it over.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let address = format!("127.0.0.1:{port}");
        let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"));
        let process = OperatorProcess::start(
            &exe,
            cluster.kubeconfig(),
            identity,
            &[("LIFEBOAT_HTTP_ADDR", &address)],
        );
        Operator {
            _process: process,
            metrics: format!("http://{address}/metrics"),
        }
    }

    /// Reconcile runs this instance counted, once its /metrics answers.
    fn reconcile_runs(&self) -> Option<u64> {
        let out = std::process::Command::new("curl")
            .args(["-sf", &self.metrics])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        Some(
            text.lines()
                .filter(|l| l.starts_with("lifeboat_reconcile_runs_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum(),
        )
    }
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases.get("lifeboat-leader").await.ok()?.spec?.holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_acts_and_the_other_takes_over() {
    let cluster = TestCluster::with_crds().await;
    let leases: Api<Lease> = Api::default_namespaced(cluster.sandbox.client().await);
    let a = Operator::start(&cluster, "op-a");
    let first = wait_until_async("a leader", Duration::from_secs(30), || holder(&leases)).await;
    assert_eq!(first, "op-a");
    let b = Operator::start(&cluster, "op-b");

    // Work for the controllers: a store (its check fails: no such Secret, which is fine).
    let store = "apiVersion: lifeboat.dev/v1alpha1\nkind: BackupStore\nmetadata: {name: s}\nspec: {s3: {bucket: bkt, endpoint: 'http://127.0.0.1:9', credentialsSecret: {name: none}}}\n";
    assert!(cluster.kubectl_stdin(&["apply", "-f", "-"], store).ok);
    tokio::task::block_in_place(|| {
        wait_until("leader reconciles", Duration::from_secs(30), || {
            a.reconcile_runs().filter(|n| *n > 0)
        });
        wait_until("follower serves metrics", Duration::from_secs(30), || {
            b.reconcile_runs()
        });
    });
    assert_eq!(
        tokio::task::block_in_place(|| b.reconcile_runs()),
        Some(0),
        "the follower must not reconcile"
    );

    // The leader dies without releasing: the follower takes over once the lease expires.
    drop(a);
    let next = wait_until_async("op-b leads", Duration::from_secs(30), || async {
        holder(&leases).await.filter(|h| h == "op-b")
    })
    .await;
    assert_eq!(next, "op-b");
    let lease = leases.get("lifeboat-leader").await.expect("lease");
    assert!(lease.spec.and_then(|s| s.lease_transitions).unwrap_or(0) >= 1);
    // Poke the store so there is something to do, then see op-b act.
    assert!(cluster.kubectl(&["annotate", "backupstore", "s", "poke=1"]).ok);
    tokio::task::block_in_place(|| {
        wait_until("new leader reconciles", Duration::from_secs(30), || {
            b.reconcile_runs().filter(|n| *n > 0)
        })
    });
}
