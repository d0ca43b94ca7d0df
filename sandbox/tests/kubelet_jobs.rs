//! Jobs with mapped images run as local processes to Complete or Failed
//! (backoffLimit, activeDeadlineSeconds, ttlSecondsAfterFinished); a pod with an
//! unmapped image stays Pending with the reason.

mod common;

use common::{Cli, wait_kubectl};

const JOBS: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: bad}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: c, image: "shell:1", command: ["sh", "-c", "echo failing; exit 3"]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: slow}
spec:
  activeDeadlineSeconds: 2
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - {name: c, image: "shell:1", command: ["sleep", "60"]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: brief}
spec:
  ttlSecondsAfterFinished: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: c, image: "shell:1", command: ["true"]}
"#;

fn jsonpath(cli: &Cli, args: &[&str], path: &str) -> String {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    let p = format!("jsonpath={path}");
    all.extend_from_slice(&["-o", &p]);
    cli.kubectl(&all)
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_complete_or_fail_with_the_right_conditions() {
    let sandbox = common::kubelet::start().await;
    let cli = Cli::new(&sandbox);
    cli.kubectl(&[
        "create",
        "job",
        "ok",
        "--image=shell:1",
        "--",
        "sh",
        "-c",
        "echo done by $HOSTNAME",
    ]);
    let manifest = sandbox.dir().join("jobs.yaml");
    std::fs::write(&manifest, JOBS).expect("write manifest");
    cli.kubectl(&["apply", "-f", manifest.to_str().expect("utf-8")]);
    cli.kubectl(&["run", "unmapped", "--image=nginx:1.27"]);

    cli.kubectl(&["wait", "--for=condition=Complete", "job/ok", "--timeout=60s"]);
    assert_eq!(jsonpath(&cli, &["job", "ok"], "{.status.succeeded}"), "1");
    let conditions = jsonpath(&cli, &["job", "ok"], "{.status.conditions[*].type}");
    assert_eq!(conditions, "SuccessCriteriaMet Complete");
    assert!(cli.kubectl(&["logs", "job/ok"]).starts_with("done by ok-"));
    // Following a finished container's log ends with its output.
    let followed = cli.kubectl(&["logs", "-f", "job/ok", "--timestamps"]);
    assert!(followed.contains("Z done by ok-"), "{followed}");

    // backoffLimit 1: a second pod after the back-off, then Failed.
    cli.kubectl(&["wait", "--for=condition=Failed", "job/bad", "--timeout=60s"]);
    assert_eq!(
        jsonpath(
            &cli,
            &["job", "bad"],
            "{.status.conditions[?(@.type==\"Failed\")].reason}"
        ),
        "BackoffLimitExceeded"
    );
    assert_eq!(jsonpath(&cli, &["job", "bad"], "{.status.failed}"), "2");
    let exits = jsonpath(
        &cli,
        &["pods", "-l", "job-name=bad"],
        "{range .items[*]}{.status.phase} {.status.containerStatuses[0].state.terminated.exitCode} {.status.containerStatuses[0].state.terminated.reason};{end}",
    );
    assert_eq!(exits, "Failed 3 Error;Failed 3 Error;");

    cli.kubectl(&["wait", "--for=condition=Failed", "job/slow", "--timeout=60s"]);
    assert_eq!(
        jsonpath(
            &cli,
            &["job", "slow"],
            "{.status.conditions[?(@.type==\"Failed\")].reason}"
        ),
        "DeadlineExceeded"
    );
    // The deadline's pod is stopped (SIGTERM, then SIGKILL after its 1 s grace) and removed.
    wait_kubectl(
        &cli,
        "the slow job's pod to go",
        &["get", "pods", "-l", "job-name=slow", "-o", "name"],
        |o| o.trim().is_empty(),
    )
    .await;

    // ttlSecondsAfterFinished: 0 deletes the finished job (and its pods).
    wait_kubectl(&cli, "job/brief to be deleted", &["get", "jobs", "-o", "name"], |o| {
        !o.contains("job.batch/brief") && o.contains("job.batch/ok")
    })
    .await;

    let why = wait_kubectl(
        &cli,
        "the unmapped pod to be marked unschedulable",
        &[
            "get",
            "pod",
            "unmapped",
            "-o",
            "jsonpath={.status.phase} {.status.conditions[0].reason}: {.status.conditions[0].message}",
        ],
        |o| o.contains("Unschedulable"),
    )
    .await;
    assert_eq!(
        why,
        "Pending Unschedulable: 0/1 nodes are available: 1 node(s) cannot run image \"nginx:1.27\": it is not in kube-sandbox's image map."
    );
}
