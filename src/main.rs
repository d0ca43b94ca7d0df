use clap::Parser;
use lifeboat::cli::{Cli, run};
use lifeboat::logging::{self, InitLoggingError};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(err) = logging::init(&cli.log, cli.log_format) {
        eprintln!("error: {err}");
        // A bad filter is bad input (2), like any other invalid flag.
        std::process::exit(match err {
            InitLoggingError::Filter { .. } => 2,
            InitLoggingError::Install(_) => 1,
        });
    }
    std::process::exit(run(cli).await);
}
