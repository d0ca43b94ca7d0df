//! `lifeboat sandbox`: starts kube-sandbox in the foreground.

use std::net::SocketAddr;
use std::path::PathBuf;

use kube_sandbox::{Sandbox, SandboxOptions};

use super::CliError;

/// Arguments of `lifeboat sandbox`.
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Directory for `kubeconfig` and the `ready` marker.
    #[arg(long, env = "LIFEBOAT_SANDBOX_DIR")]
    pub dir: PathBuf,
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "LIFEBOAT_SANDBOX_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Save objects here on shutdown and load them at start.
    #[arg(long, env = "LIFEBOAT_SANDBOX_STATE")]
    pub state: Option<PathBuf>,
}

pub async fn run(args: SandboxArgs) -> Result<(), CliError> {
    let options = SandboxOptions {
        dir: Some(args.dir),
        listen: args.listen,
        state_file: args.state,
        ..SandboxOptions::default()
    };
    let sandbox = Sandbox::start(options)
        .await
        .map_err(|e| CliError::Other(format!("starting kube-sandbox: {e}")))?;
    println!("kube-sandbox serving at {}", sandbox.url());
    println!("export KUBECONFIG={}", sandbox.kubeconfig_path().display());
    super::operator::shutdown_signal().await;
    sandbox.shutdown().await;
    Ok(())
}
