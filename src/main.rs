use clap::Parser;
use lifeboat::cli::{Cli, run};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    // Logs go to stderr so `lifeboat crd > file` stays clean.
    let filter = match EnvFilter::try_new(&cli.log) {
        Ok(filter) => filter,
        Err(err) => {
            eprintln!(
                "error: invalid --log / LIFEBOAT_LOG filter {:?}: {err} (e.g. `info` or `info,lifeboat=debug`)",
                cli.log
            );
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    std::process::exit(run(cli).await);
}
