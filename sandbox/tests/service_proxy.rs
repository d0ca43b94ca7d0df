//! Service networking end to end through kube-rs: the endpoints controller follows
//! pod labels and readiness, and the proxy on `clusterIP:port` reaches the selected
//! pod's process, closing connections to a pod that stops being selected or ready.
//!
//! The "pods" are two tiny TCP servers, each on its own loopback address with a port
//! the kernel picks (port 0, so parallel tests never collide); each greets with its
//! identity and then echoes.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube_sandbox::{Sandbox, SandboxOptions};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const NAMESPACE: &str = "default";
const SERVICE: &str = "writer";
const SERVICE_PORT: u16 = 7000;
const DEADLINE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

/// Poll `check` until it yields a value or `DEADLINE` passes.
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A "pod process": greets each connection with `identity` then echoes lines.
struct EchoServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo_server(ip: Ipv4Addr, identity: &'static str) -> Result<EchoServer> {
    let listener = TcpListener::bind((ip, 0))
        .await
        .with_context(|| format!("binding {ip}:0"))?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                if write.write_all(format!("{identity}\n").as_bytes()).await.is_err() {
                    return;
                }
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if write.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(EchoServer { addr, task })
}

/// Two distinct loopback addresses for this process (any port-0 bind on them is
/// collision-free, so they need no lock).
fn pod_ips() -> (Ipv4Addr, Ipv4Addr) {
    let octet = (std::process::id() % 200) as u8 + 20;
    (Ipv4Addr::new(127, 0, 0, octet), Ipv4Addr::new(127, 0, 0, octet + 1))
}

async fn create_pod(pods: &Api<Pod>, name: &str, role: &str, server: &EchoServer) -> Result<()> {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "db", "role": role}},
        "spec": {"containers": [{"name": "db", "image": "none",
                 "ports": [{"name": "echo", "containerPort": server.addr.port()}]}]},
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    set_ready(pods, name, Some(server.addr.ip()), true).await
}

/// Play the kubelet: write podIP and the Ready condition through the status subresource.
async fn set_ready(pods: &Api<Pod>, name: &str, ip: Option<std::net::IpAddr>, ready: bool) -> Result<()> {
    let mut status = json!({"phase": "Running", "conditions": [
        {"type": "Ready", "status": if ready { "True" } else { "False" }}]});
    if let Some(ip) = ip {
        status["podIP"] = json!(ip.to_string());
        status["podIPs"] = json!([{"ip": ip.to_string()}]);
    }
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({"status": status})))
        .await?;
    Ok(())
}

async fn set_role(pods: &Api<Pod>, name: &str, role: &str) -> Result<()> {
    let patch = json!({"metadata": {"labels": {"role": role}}});
    pods.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    Ok(())
}

async fn create_service(client: &Client) -> Result<SocketAddr> {
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": SERVICE},
        "spec": {"selector": {"app": "db", "role": "primary"},
                 "ports": [{"name": "echo", "port": SERVICE_PORT, "targetPort": "echo"}]},
    }))?;
    let created = services.create(&PostParams::default(), &service).await?;
    let ip: Ipv4Addr = created
        .spec
        .and_then(|s| s.cluster_ip)
        .context("spec.clusterIP allocated on create")?
        .parse()?;
    Ok(SocketAddr::from((ip, SERVICE_PORT)))
}

/// Connect through the proxy and read the greeting; `None` if the connection was
/// refused, reset or closed without one.
async fn greeting(addr: SocketAddr) -> Option<(String, BufReader<TcpStream>)> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let read = tokio::time::timeout(DEADLINE, reader.read_line(&mut line))
        .await
        .ok()?
        .ok()?;
    (read > 0).then(|| (line.trim_end().to_owned(), reader))
}

/// Wait until a new connection is greeted by `identity`.
async fn connection_to(addr: SocketAddr, identity: &str) -> Result<BufReader<TcpStream>> {
    wait_for(&format!("a connection to {addr} reaching {identity}"), || async {
        greeting(addr)
            .await
            .filter(|(id, _)| id == identity)
            .map(|(_, conn)| conn)
    })
    .await
}

/// The connection's peer closes it (EOF or reset) before the deadline.
async fn assert_closed(conn: &mut BufReader<TcpStream>, what: &str) -> Result<()> {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(DEADLINE, conn.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => Ok(()),
        Ok(Ok(n)) => bail!("{what}: still open, read {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(_) => bail!("{what}: not closed within {DEADLINE:?}"),
    }
}

async fn assert_echoes(conn: &mut BufReader<TcpStream>) -> Result<()> {
    conn.get_mut().write_all(b"ping\n").await?;
    let mut line = String::new();
    tokio::time::timeout(DEADLINE, conn.read_line(&mut line)).await??;
    anyhow::ensure!(line == "ping\n", "echo through the proxy returned {line:?}");
    Ok(())
}

/// Endpoints as (ready IPs, not-ready IPs, ports by name).
type EndpointsView = (Vec<String>, Vec<String>, BTreeMap<String, i32>);

async fn endpoints_view(client: &Client) -> Option<EndpointsView> {
    let endpoints = Api::<Endpoints>::namespaced(client.clone(), NAMESPACE)
        .get_opt(SERVICE)
        .await
        .ok()??;
    let mut view: EndpointsView = Default::default();
    for subset in endpoints.subsets.into_iter().flatten() {
        view.0.extend(subset.addresses.into_iter().flatten().map(|a| a.ip));
        view.1
            .extend(subset.not_ready_addresses.into_iter().flatten().map(|a| a.ip));
        for port in subset.ports.into_iter().flatten() {
            view.2.insert(port.name.unwrap_or_default(), port.port);
        }
    }
    view.0.sort();
    view.1.sort();
    Some(view)
}

/// Slice endpoints as (ip, port of "echo", ready, serving, terminating), sorted.
async fn slices_view(client: &Client) -> Option<Vec<(String, i32, bool, bool, bool)>> {
    let params = ListParams::default().labels(&format!("kubernetes.io/service-name={SERVICE}"));
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), NAMESPACE)
        .list(&params)
        .await
        .ok()?;
    let mut view = Vec::new();
    for slice in slices.items {
        if slice.address_type != "IPv4" {
            return None;
        }
        let port = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some("echo"))
            .and_then(|p| p.port);
        for endpoint in slice.endpoints {
            let c = endpoint.conditions.unwrap_or_default();
            for ip in endpoint.addresses {
                view.push((ip, port?, c.ready?, c.serving?, c.terminating?));
            }
        }
    }
    view.sort();
    Some(view)
}

struct Fixture {
    sandbox: Sandbox,
    client: Client,
    pods: Api<Pod>,
    a: EchoServer,
    b: EchoServer,
    service: SocketAddr,
}

/// Pod a is primary, pod b replica, both Ready; the Service selects the primary.
async fn fixture() -> Result<Fixture> {
    // Shown only for failing tests; RUST_LOG overrides the level.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("kube_sandbox::network=debug"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
    let sandbox = Sandbox::start(SandboxOptions::default()).await?;
    let client = sandbox.client().await;
    let (ip_a, ip_b) = pod_ips();
    let (a, b) = (echo_server(ip_a, "pod-a").await?, echo_server(ip_b, "pod-b").await?);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    create_pod(&pods, "db-a", "primary", &a).await?;
    create_pod(&pods, "db-b", "replica", &b).await?;
    let service = create_service(&client).await?;
    Ok(Fixture {
        sandbox,
        client,
        pods,
        a,
        b,
        service,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabelling_moves_new_connections_and_closes_old_ones() -> Result<()> {
    let f = fixture().await?;
    let (ip_a, port_a) = (f.a.addr.ip().to_string(), i32::from(f.a.addr.port()));
    let (ip_b, port_b) = (f.b.addr.ip().to_string(), i32::from(f.b.addr.port()));

    let expected = (
        vec![ip_a.clone()],
        vec![],
        BTreeMap::from([("echo".to_owned(), port_a)]),
    );
    wait_for("Endpoints listing pod a", || async {
        endpoints_view(&f.client).await.filter(|v| *v == expected)
    })
    .await?;
    let expected = vec![(ip_a.clone(), port_a, true, true, false)];
    wait_for("EndpointSlice listing pod a", || async {
        slices_view(&f.client).await.filter(|v| *v == expected)
    })
    .await?;

    let mut old = connection_to(f.service, "pod-a").await?;
    assert_echoes(&mut old).await?;

    set_role(&f.pods, "db-a", "replica").await?;
    set_role(&f.pods, "db-b", "primary").await?;

    let expected = (
        vec![ip_b.clone()],
        vec![],
        BTreeMap::from([("echo".to_owned(), port_b)]),
    );
    wait_for("Endpoints listing pod b", || async {
        endpoints_view(&f.client).await.filter(|v| *v == expected)
    })
    .await?;
    let expected = vec![(ip_b.clone(), port_b, true, true, false)];
    wait_for("EndpointSlice listing pod b", || async {
        slices_view(&f.client).await.filter(|v| *v == expected)
    })
    .await?;

    let mut new = connection_to(f.service, "pod-b").await?;
    assert_echoes(&mut new).await?;
    assert_closed(&mut old, "the connection to the unselected pod a").await?;
    // Every later connection goes to b as well (a is no longer a candidate at all).
    for _ in 0..5 {
        let (identity, _) = greeting(f.service).await.context("connection after failover")?;
        anyhow::ensure!(identity == "pod-b", "a new connection reached {identity}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_pods_get_no_traffic_and_deleted_services_stop_listening() -> Result<()> {
    let f = fixture().await?;
    let ip_a = f.a.addr.ip().to_string();
    let port_a = i32::from(f.a.addr.port());
    let mut old = connection_to(f.service, "pod-a").await?;

    set_ready(&f.pods, "db-a", None, false).await?;

    let expected = (
        vec![],
        vec![ip_a.clone()],
        BTreeMap::from([("echo".to_owned(), port_a)]),
    );
    wait_for("Endpoints listing pod a as not ready", || async {
        endpoints_view(&f.client).await.filter(|v| *v == expected)
    })
    .await?;
    let expected = vec![(ip_a.clone(), port_a, false, false, false)];
    wait_for("EndpointSlice listing pod a as not ready", || async {
        slices_view(&f.client).await.filter(|v| *v == expected)
    })
    .await?;
    assert_closed(&mut old, "the connection to the not-ready pod a").await?;
    // With no ready endpoint the proxy refuses at once instead of holding the client.
    anyhow::ensure!(
        greeting(f.service).await.is_none(),
        "a connection without ready endpoints got a greeting"
    );

    set_ready(&f.pods, "db-a", None, true).await?;
    let mut back = connection_to(f.service, "pod-a").await?;

    Api::<Service>::namespaced(f.client.clone(), NAMESPACE)
        .delete(SERVICE, &DeleteParams::default())
        .await?;
    assert_closed(&mut back, "the connection through the deleted Service").await?;
    wait_for("the deleted Service's port to refuse connections", || async {
        TcpStream::connect(f.service).await.is_err().then_some(())
    })
    .await?;
    wait_for("the deleted Service's Endpoints and slices to go", || async {
        let gone = endpoints_view(&f.client).await.is_none() && slices_view(&f.client).await == Some(vec![]);
        gone.then_some(())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_proxy_recover_from_failed_writes_dropped_watches_and_restarts() -> Result<()> {
    let mut f = fixture().await?;
    connection_to(f.service, "pod-a").await?;

    let faults = f.sandbox.faults();
    faults.fail_next(3, "PUT", "/api/v1/namespaces/default/endpoints", 500, None);
    faults.fail_next(3, "*", "/apis/discovery.k8s.io", 503, Some(1));
    faults.drop_watches();
    set_role(&f.pods, "db-a", "replica").await?;
    set_role(&f.pods, "db-b", "primary").await?;
    let ip_b = f.b.addr.ip().to_string();
    wait_for("Endpoints listing pod b despite failed writes", || async {
        endpoints_view(&f.client)
            .await
            .filter(|v| v.0 == [ip_b.clone()] && v.1.is_empty())
    })
    .await?;
    let mut established = connection_to(f.service, "pod-b").await?;

    f.sandbox.restart().await?;
    // Like kube-proxy's rules, the data plane outlives an API server restart.
    assert_echoes(&mut established).await?;
    connection_to(f.service, "pod-b").await?;
    // The restarted controllers still follow changes.
    set_role(&f.pods, "db-b", "replica").await?;
    set_role(&f.pods, "db-a", "primary").await?;
    connection_to(f.service, "pod-a").await?;
    Ok(())
}
