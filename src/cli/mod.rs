//! Command-line interface: `lifeboat <command>`, also usable as `kubectl lifeboat`.
//!
//! Every flag can also come from an environment variable (shown in `--help`). Usage
//! errors exit with code 2 (clap's convention); runtime failures with 1.

mod actions;
mod crd;
mod follow;
mod operator;
mod sandbox;
mod status;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::logging::LogFormat;

/// lifeboat keeps a shop's PostgreSQL and MariaDB databases recoverable: scheduled backups
/// to S3, replica lag held against the RPO, safe failover, verified restores.
///
/// Installed as `kubectl-lifeboat` on the PATH, it also runs as `kubectl lifeboat ...`.
#[derive(Debug, Parser)]
#[command(name = "lifeboat", version, about, propagate_version = true)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax, e.g. `info,lifeboat=debug`).
    #[arg(long, global = true, env = "LIFEBOAT_LOG", default_value = "info")]
    pub log: String,
    /// Log line format: `text` (colour only on a terminal) or `json` (one object per line, for log pipelines).
    #[arg(long, global = true, env = "LIFEBOAT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// lifeboat's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the operator (controllers, /metrics, /healthz, /readyz) against the current kubeconfig.
    Operator(operator::OperatorArgs),
    /// Print lifeboat's CustomResourceDefinitions as YAML (or write them to a directory).
    Crd(crd::CrdArgs),
    /// Start kube-sandbox, the in-memory Kubernetes API server used by tests and the demo.
    Sandbox(sandbox::SandboxArgs),
    /// Show every RecoveryPlan with its RPO/RTO compliance, replica lag and last backup.
    Status(status::StatusArgs),
    /// Take a backup of a plan now and follow it until it ends.
    Backup(actions::BackupArgs),
    /// Restore a backup into a target server, run checks, and follow it until it ends.
    Restore(actions::RestoreArgs),
    /// Promote a replica of a plan (failover, or a zero-loss --switchover) and follow it.
    Failover(actions::FailoverArgs),
}

/// Runs the parsed command. Returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Operator(args) => operator::run(args).await,
        Command::Crd(args) => crd::run(args),
        Command::Sandbox(args) => sandbox::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Backup(args) => actions::backup(args).await,
        Command::Restore(args) => actions::restore(args).await,
        Command::Failover(args) => actions::failover(args).await,
    };
    match result {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("error: {err:#}");
            err.exit_code()
        }
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The user asked for something invalid (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// Could not reach or use the Kubernetes API.
    #[error("kubernetes: {context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
    /// A local file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Anything else, with its context.
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// Exit code for this error: 2 for bad input, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }
}
