//! The library entry point: start a sandbox on a free loopback port, get its
//! kubeconfig, URL and a kube::Client, restart it keeping state, shut it down.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, Shared};
use crate::auth::tokens::TokenIssuer;
use crate::faults::Faults;
use crate::ipalloc::IpAllocator;
use crate::persist::{self, StateFileError};
use crate::tls::Pki;
use crate::{kubeconfig, lifecycle};

pub struct SandboxOptions {
    /// Where `kubeconfig` and `ready` are written; a temporary directory if None.
    pub dir: Option<PathBuf>,
    pub listen: SocketAddr,
    pub state_file: Option<PathBuf>,
    /// Run a kubelet for these images and the Deployment, ReplicaSet and Job
    /// controllers; None (the default): pods never run, as before.
    pub kubelet: Option<crate::kubelet::KubeletOptions>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            dir: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_file: None,
            kubelet: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("creating the sandbox directory {path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("listening on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("writing {path}: {source}")]
    WriteFile { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    State(#[from] StateFileError),
    #[error(transparent)]
    Key(#[from] crate::auth::tokens::KeyError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("building a kube client for {url}: {reason}")]
    Client { url: String, reason: String },
}

struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
    tls_task: JoinHandle<()>,
    network: Option<crate::network::NetworkHandle>,
}

pub struct Sandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    https_addr: SocketAddr,
    pki: Arc<Pki>,
    dir: PathBuf,
    kubeconfig: PathBuf,
    state_file: Option<PathBuf>,
    client: kube::Client,
    running: Option<Running>,
    /// The kubelet and workload controllers (they outlive API server restarts).
    nodes: Option<(crate::kubelet::KubeletHandle, crate::controllers::ControllersHandle)>,
    _tempdir: Option<tempfile::TempDir>,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    // After a restart the old socket may linger for a moment; retry briefly.
    let mut last = None;
    for _ in 0..50 {
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(StartError::Bind {
        addr,
        source: last.unwrap_or_else(|| std::io::Error::other("bind failed")),
    })
}

/// Serves the API; service networking is started unless a running one is handed over.
async fn serve(
    shared: Arc<Shared>,
    (listener, tls_listener): (TcpListener, TcpListener),
    pki: &Pki,
    client: kube::Client,
    network: Option<crate::network::NetworkHandle>,
) -> Running {
    let stop = CancellationToken::new();
    let tls_router = api::router(shared.clone(), crate::auth::Listener::Secure);
    let tls_task = tokio::spawn(crate::tls::serve(
        tls_listener,
        pki.acceptor.clone(),
        tls_router,
        stop.clone(),
    ));
    let router = api::router(shared, crate::auth::Listener::Insecure);
    let token = stop.clone();
    let task = tokio::spawn(async move {
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(token.cancelled_owned())
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "sandbox server stopped with an error");
        }
    });
    let network = match network {
        Some(running) => Some(running),
        None => Some(crate::network::start(client).await),
    };
    Running {
        stop,
        task,
        tls_task,
        network,
    }
}

impl Sandbox {
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, StartError> {
        let (dir, tempdir) = match opts.dir {
            Some(d) => (d, None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("kube-sandbox-")
                    .tempdir()
                    .map_err(|source| StartError::Dir {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        std::fs::create_dir_all(&dir).map_err(|source| StartError::Dir {
            path: dir.clone(),
            source,
        })?;
        let ips = IpAllocator::default();
        let store = persist::load(opts.state_file.as_deref(), &ips)?;
        // Kept in the directory so that tokens stay valid across process restarts.
        let issuer = TokenIssuer::load_or_create(Some(&dir.join("sa-signing-key.der")))?;
        let listener = bind(opts.listen).await?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: opts.listen,
            source,
        })?;
        let tls_listener = bind(SocketAddr::new(addr.ip(), 0)).await?;
        let https_addr = tls_listener.local_addr().map_err(|source| StartError::Bind {
            addr: opts.listen,
            source,
        })?;
        let pki = Arc::new(Pki::load_or_create(&dir, &[addr.ip()])?);
        let mut shared = Shared::new(store, ips, issuer, pki.ca_pem.clone());
        let kubelet_root = dir.join("kubelet");
        if opts.kubelet.is_some() {
            shared.log_root = Some(kubelet_root.join("logs"));
        }
        let shared = Arc::new(shared);
        let url = format!("http://{addr}");
        let client = make_client(&url)?;
        let kubeconfig = dir.join("kubeconfig");
        kubeconfig::write(&kubeconfig, &url).map_err(|source| StartError::WriteFile {
            path: kubeconfig.clone(),
            source,
        })?;
        let running = serve(shared.clone(), (listener, tls_listener), &pki, client.clone(), None).await;
        let ready = dir.join("ready");
        std::fs::write(&ready, url.as_bytes()).map_err(|source| StartError::WriteFile { path: ready, source })?;
        tracing::info!(%url, dir = %dir.display(), "kube-sandbox serving");
        let nodes = opts.kubelet.map(|k| {
            (
                crate::kubelet::start(client.clone(), k, https_addr, kubelet_root),
                crate::controllers::start(client.clone()),
            )
        });
        Ok(Sandbox {
            shared,
            addr,
            https_addr,
            pki,
            dir,
            kubeconfig,
            state_file: opts.state_file,
            client,
            running: Some(running),
            nodes,
            _tempdir: tempdir,
        })
    }

    /// A sandbox on a free port with a temporary directory.
    pub async fn start_default() -> Result<Sandbox, StartError> {
        Sandbox::start(SandboxOptions::default()).await
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The TLS endpoint (what in-pod clients reach through `KUBERNETES_SERVICE_HOST/PORT`):
    /// requests without credentials there are `system:anonymous`.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.https_addr)
    }

    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
    }

    /// The cluster CA certificate (PEM file) that signs the TLS endpoint's certificate.
    pub fn ca_path(&self) -> &Path {
        &self.pki.ca_path
    }

    pub async fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Resolves when a client asked for a restart with `POST /sandbox/restart`.
    pub async fn restart_requested(&self) {
        self.shared.restart_requested.notified().await;
    }

    pub fn faults(&self) -> Faults {
        Faults {
            shared: self.shared.clone(),
        }
    }

    async fn stop(&mut self) {
        drop(self.nodes.take());
        if let Some(net) = self.stop_api().await {
            net.shutdown().await;
        }
    }

    /// Stops the API server only, handing back the service networking (the data plane),
    /// which outlives an API server restart as kube-proxy's rules do.
    async fn stop_api(&mut self) -> Option<crate::network::NetworkHandle> {
        let running = self.running.take()?;
        self.shared.drop_watches();
        running.stop.cancel();
        running.tls_task.abort();
        let abort = running.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), running.task)
            .await
            .is_err()
        {
            abort.abort();
        }
        running.network
    }

    fn save(&self) -> Result<(), StateFileError> {
        match &self.state_file {
            Some(path) => persist::save(&self.shared.store(), path),
            None => Ok(()),
        }
    }

    /// Stop serving and start again on the same URL; Service traffic keeps flowing
    /// (the proxy's watches reconnect). With a state file, the
    /// objects go through it (like a process restart: watch history is lost,
    /// so watches resuming from older versions get 410); without one, memory is kept.
    pub async fn restart(&mut self) -> Result<(), StartError> {
        let network = self.stop_api().await;
        if let Some(path) = &self.state_file {
            self.save()?;
            let mut store = persist::load(Some(path), &self.shared.ips)?;
            crate::admission::all_namespace_defaults(&mut store, &self.shared.ca_pem);
            *self.shared.store() = store;
        }
        lifecycle::settle(&mut self.shared.store(), &self.shared.ips);
        let listener = bind(self.addr).await?;
        let tls_listener = bind(self.https_addr).await?;
        let pki = self.pki.clone();
        self.running = Some(
            serve(
                self.shared.clone(),
                (listener, tls_listener),
                &pki,
                self.client.clone(),
                network,
            )
            .await,
        );
        Ok(())
    }

    /// Stop serving; with a state file, save the objects to it.
    pub async fn shutdown(mut self) {
        self.stop().await;
        if let Err(e) = self.save() {
            tracing::error!(error = %e, "saving sandbox state");
        }
        // Drop now has nothing left to stop.
    }
}

/// Dropping a running sandbox stops it at once (listener, watches, service
/// networking) and saves the state file, without waiting for connections to drain.
impl Drop for Sandbox {
    fn drop(&mut self) {
        drop(self.nodes.take());
        let Some(running) = self.running.take() else { return };
        drop(running.network);
        self.shared.drop_watches();
        running.stop.cancel();
        running.task.abort();
        running.tls_task.abort();
        if let Err(e) = self.save() {
            tracing::error!(error = %e, "saving sandbox state");
        }
    }
}

fn make_client(url: &str) -> Result<kube::Client, StartError> {
    let err = |reason: String| StartError::Client {
        url: url.to_string(),
        reason,
    };
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|e: axum::http::uri::InvalidUri| err(e.to_string()))?;
    let config = kube::Config::new(uri);
    kube::Client::try_from(config).map_err(|e| err(e.to_string()))
}

/// A sandbox on a free port with a temporary directory.
pub async fn start_default() -> Result<Sandbox, StartError> {
    Sandbox::start(SandboxOptions::default()).await
}
