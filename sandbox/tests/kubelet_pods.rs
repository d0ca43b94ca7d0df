//! What a pod's process sees and how the kubelet treats it: env (values,
//! secretKeyRef, configMapKeyRef, fieldRef), volumes at their mountPath
//! (emptyDir, secret, configMap, PVC that outlives the pod, the ServiceAccount
//! token), init containers in order, liveness restarts with `logs --previous`,
//! graceful deletion, and in-pod API clients (kube-rs in-cluster config, kubectl)
//! under the pod's ServiceAccount and RBAC.

mod common;

use common::{Cli, wait_kubectl};

const PODS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: s3cret}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: fast, "app.conf": "level=3"}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: env-and-volumes, labels: {tier: demo}}
spec:
  restartPolicy: Never
  initContainers:
  - {name: first, image: "shell:1", command: ["sh", "-c", "echo first > /work/order"], volumeMounts: [{name: work, mountPath: /work}]}
  - {name: second, image: "shell:1", command: ["sh", "-c", "echo second >> /work/order"], volumeMounts: [{name: work, mountPath: /work}]}
  containers:
  - name: main
    image: "shell:1"
    workingDir: /work
    command: ["sh", "-c"]
    args:
    - |
      echo "password=$PASSWORD mode=$MODE me=$ME ns=$NS ip=$MY_IP greeting=$GREETING"
      echo "order=$(tr '\n' ',' < order)"
      echo "secret=$(cat /etc/creds/password) conf=$(cat /etc/settings/app.conf)"
      echo "token=$(head -c 3 /var/run/secrets/kubernetes.io/serviceaccount/token) sa-ns=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)"
      echo "ca=$(head -1 /var/run/secrets/kubernetes.io/serviceaccount/ca.crt)"
      echo kept > /data/file
    env:
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: MODE, valueFrom: {configMapKeyRef: {name: settings, key: mode}}}
    - {name: ME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: GREETING, value: "hello $(ME)"}
    volumeMounts:
    - {name: work, mountPath: /work}
    - {name: creds, mountPath: /etc/creds, readOnly: true}
    - {name: settings, mountPath: /etc/settings}
    - {name: data, mountPath: /data}
  volumes:
  - {name: work, emptyDir: {}}
  - {name: creds, secret: {secretName: creds}}
  - {name: settings, configMap: {name: settings}}
  - {name: data, persistentVolumeClaim: {claimName: data}}
"#;

const SECOND: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  restartPolicy: Never
  containers:
  - {name: c, image: "shell:1", command: ["cat", "/data/file"], volumeMounts: [{name: data, mountPath: /data}]}
  volumes:
  - {name: data, persistentVolumeClaim: {claimName: data}}
---
apiVersion: v1
kind: Pod
metadata: {name: flaky}
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: c
    image: "shell:1"
    command: ["sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo started; while true; do sleep 0.1; done"]
    livenessProbe:
      tcpSocket: {port: 1}
      periodSeconds: 1
      failureThreshold: 2
"#;

fn apply(cli: &Cli, dir: &std::path::Path, name: &str, yaml: &str) {
    let path = dir.join(name);
    std::fs::write(&path, yaml).expect("write manifest");
    cli.kubectl(&["apply", "-f", path.to_str().expect("utf-8")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pods_process_sees_its_env_volumes_and_token_and_restarts_on_liveness() {
    let sandbox = common::kubelet::start().await;
    let cli = Cli::new(&sandbox);
    apply(&cli, sandbox.dir(), "pods.yaml", PODS);
    let phase = &["get", "pod", "env-and-volumes", "-o", "jsonpath={.status.phase}"];
    let done = wait_kubectl(&cli, "env-and-volumes to finish", phase, |o| {
        o == "Succeeded" || o == "Failed"
    })
    .await;
    let logs = cli.kubectl(&["logs", "env-and-volumes"]);
    assert_eq!(done, "Succeeded", "{logs}");
    let ip = cli.kubectl(&["get", "pod", "env-and-volumes", "-o", "jsonpath={.status.podIP}"]);
    let ca = std::fs::read_to_string(sandbox.ca_path()).expect("ca.crt");
    let expected = format!(
        "password=s3cret mode=fast me=env-and-volumes ns=default ip={ip} greeting=hello env-and-volumes\n\
         order=first,second,\n\
         secret=s3cret conf=level=3\n\
         token=eyJ sa-ns=default\n\
         ca={}\n",
        ca.lines().next().unwrap_or("")
    );
    assert_eq!(logs, expected);
    assert!(ip.starts_with("127.0."), "{ip}");
    let inits = cli.kubectl(&[
        "get",
        "pod",
        "env-and-volumes",
        "-o",
        "jsonpath={range .status.initContainerStatuses[*]}{.name}={.state.terminated.reason} {end}",
    ]);
    assert_eq!(inits.trim(), "first=Completed second=Completed");
    assert_eq!(
        cli.kubectl(&["get", "pvc", "data", "-o", "jsonpath={.status.phase}"]),
        "Bound"
    );

    // The claim outlives the pod: another pod reads what the first wrote.
    cli.kubectl(&["delete", "pod", "env-and-volumes"]);
    apply(&cli, sandbox.dir(), "second.yaml", SECOND);
    wait_kubectl(
        &cli,
        "reader to finish",
        &["get", "pod", "reader", "-o", "jsonpath={.status.phase}"],
        |o| o == "Succeeded",
    )
    .await;
    assert_eq!(cli.kubectl(&["logs", "reader"]), "kept\n");

    // A failing liveness probe restarts the container (SIGTERM first); --previous shows the old run.
    let restarts = &[
        "get",
        "pod",
        "flaky",
        "-o",
        "jsonpath={.status.containerStatuses[0].restartCount}",
    ];
    wait_kubectl(&cli, "flaky to be restarted", restarts, |o| {
        o.parse::<u32>().is_ok_and(|n| n >= 1)
    })
    .await;
    assert_eq!(cli.kubectl(&["logs", "flaky", "--previous"]), "started\ngot TERM\n");
    let last = cli.kubectl(&[
        "get",
        "pod",
        "flaky",
        "-o",
        "jsonpath={.status.containerStatuses[0].lastState.terminated.exitCode}",
    ]);
    assert_eq!(last, "0");
    // Graceful deletion: the object stays (Terminating) until the kubelet has stopped it.
    cli.kubectl(&["delete", "pod", "flaky", "--wait=false"]);
    let out = cli.run(
        "kubectl",
        &[
            "get",
            "pod",
            "flaky",
            "-o",
            "jsonpath={.metadata.deletionGracePeriodSeconds}",
        ],
    );
    let grace = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(grace == "3" || !out.status.success(), "{grace}");
    wait_kubectl(&cli, "flaky to be gone", &["get", "pods", "-o", "name"], |o| {
        !o.contains("pod/flaky")
    })
    .await;
}

const CLIENTS: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader}
rules:
- {apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader}
subjects: [{kind: ServiceAccount, name: reader}]
roleRef: {kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: v1
kind: Pod
metadata: {name: kube-rs-allowed}
spec:
  serviceAccountName: reader
  restartPolicy: Never
  containers: [{name: c, image: "in-cluster:1"}]
---
apiVersion: v1
kind: Pod
metadata: {name: kube-rs-denied}
spec:
  restartPolicy: Never
  containers: [{name: c, image: "in-cluster:1"}]
---
apiVersion: v1
kind: Pod
metadata: {name: kubectl-in-pod}
spec:
  serviceAccountName: reader
  restartPolicy: Never
  containers: [{name: c, image: "kubectl:1.35", args: ["get", "pods", "-o", "name"]}]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn in_pod_clients_use_the_in_cluster_config_and_the_pods_service_account() {
    let example = common::kubelet::in_cluster_example();
    assert!(
        example.is_file(),
        "{} is missing: `cargo test` builds examples",
        example.display()
    );
    let sandbox = common::kubelet::start().await;
    let cli = Cli::new(&sandbox);
    apply(&cli, sandbox.dir(), "clients.yaml", CLIENTS);
    for pod in ["kube-rs-allowed", "kube-rs-denied", "kubectl-in-pod"] {
        let args = ["get", "pod", pod, "-o", "jsonpath={.status.phase}"];
        wait_kubectl(&cli, pod, &args, |o| o == "Succeeded" || o == "Failed").await;
    }
    let phase = |p: &str| cli.kubectl(&["get", "pod", p, "-o", "jsonpath={.status.phase}"]);
    let allowed = cli.kubectl(&["logs", "kube-rs-allowed"]);
    assert_eq!(phase("kube-rs-allowed"), "Succeeded", "{allowed}");
    assert!(allowed.starts_with("listed 3 pods in default"), "{allowed}");
    let denied = cli.kubectl(&["logs", "kube-rs-denied"]);
    assert_eq!(phase("kube-rs-denied"), "Failed", "{denied}");
    assert!(
        denied.contains(r#"pods is forbidden: User \"system:serviceaccount:default:default\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""#)
            || denied.contains(r#"pods is forbidden: User "system:serviceaccount:default:default" cannot list resource "pods" in API group "" in the namespace "default""#),
        "{denied}"
    );
    let listed = cli.kubectl(&["logs", "kubectl-in-pod"]);
    assert_eq!(phase("kubectl-in-pod"), "Succeeded", "{listed}");
    assert!(listed.contains("pod/kubectl-in-pod"), "{listed}");
}
