//! `kube-sandbox --dir DIR [--listen 127.0.0.1:0] [--state FILE] [--image-map FILE] [--image P=EXE]`: serve until
//! SIGTERM/SIGINT, with DIR/kubeconfig written and DIR/ready created once serving.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kube_sandbox::{Sandbox, SandboxOptions};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser, Debug)]
#[command(name = "kube-sandbox", about = "In-memory Kubernetes API server for tests and demos")]
struct Args {
    /// Directory for `kubeconfig` and the `ready` marker.
    #[arg(long)]
    dir: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Save objects here on shutdown and load them at start.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Run a kubelet with the images of this YAML file (`images: [{image, command, args, path, env}]`).
    #[arg(long)]
    image_map: Option<PathBuf>,
    /// Run a kubelet for this image too: `PATTERN=EXECUTABLE` (repeatable; `*` globs).
    #[arg(long = "image")]
    images: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut images = vec![];
    if let Some(path) = &args.image_map {
        match kube_sandbox::kubelet::images::from_file(path) {
            Ok(m) => images.extend(m),
            Err(e) => {
                eprintln!("kube-sandbox: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    for flag in &args.images {
        match kube_sandbox::kubelet::images::from_flag(flag) {
            Ok(m) => images.push(m),
            Err(e) => {
                eprintln!("kube-sandbox: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let kubelet = (args.image_map.is_some() || !args.images.is_empty())
        .then_some(kube_sandbox::kubelet::KubeletOptions { images });
    let opts = SandboxOptions {
        dir: Some(args.dir),
        listen: args.listen,
        state_file: args.state,
        kubelet,
    };
    let sandbox = match Sandbox::start(opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kube-sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", sandbox.url());
    let (mut term, mut int) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            eprintln!("kube-sandbox: cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let mut sandbox = sandbox;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = sandbox.restart_requested() => {
                tracing::info!("restart requested through the admin API");
                if let Err(e) = sandbox.restart().await {
                    eprintln!("kube-sandbox: restart failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    sandbox.shutdown().await;
    ExitCode::SUCCESS
}
