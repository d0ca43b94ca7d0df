//! The operator's log output: human text (colour only on a terminal) or one flat JSON
//! object per line for log pipelines, and [`RepeatLimiter`] for lines that would
//! otherwise repeat every reconcile round.
//!
//! Conventions for log lines (see the README, "Reading lifeboat's logs"):
//! - INFO: one line per decision and per action, with structured fields named
//!   `namespace`, `plan`, `member`, `backup`, `restore`, `failover`, `epoch`, ... The
//!   reconcile span (see `controller::runner`) already carries `namespace` and the
//!   object's name (`plan`, `backup`, `restore`, `failover` or `store`): events inside
//!   it add only the rest; JSON lines merge span and event fields.
//! - WARN: something a person must look at (a store unavailable, a check failed).
//! - ERROR: something lifeboat could not do (a backup or restore that failed).
//! - Never a secret: log names of Secrets and keys, never their values, and never a
//!   connection string or `Debug` of a `Command` (it prints the environment).

mod flat;
pub mod repeats;

use std::io::IsTerminal;

pub use repeats::{RepeatLimiter, repeats};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `timestamp LEVEL message key=value ...`; ANSI colour only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, message, then every field of
    /// the event and of the spans it happened in, flat.
    Json,
}

impl LogFormat {
    pub fn as_str(&self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Failed to set up logging.
#[derive(Debug, thiserror::Error)]
pub enum InitLoggingError {
    #[error("invalid --log / LIFEBOAT_LOG filter {filter:?}: {source} (e.g. `info` or `info,lifeboat=debug`)")]
    Filter {
        filter: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("installing the log subscriber: {0}")]
    Install(String),
}

/// Installs the global subscriber. Lines go to stderr so `lifeboat crd > file` stays clean.
pub fn init(filter: &str, format: LogFormat) -> Result<(), InitLoggingError> {
    let env_filter = tracing_subscriber::EnvFilter::try_new(filter).map_err(|source| InitLoggingError::Filter {
        filter: filter.to_string(),
        source,
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    // A file or a pipe gets no escape codes: they make logs unreadable in `less` and grep.
    let ansi = format == LogFormat::Text && std::io::stderr().is_terminal();
    let installed = builder
        .with_ansi(ansi)
        .fmt_fields(flat::PairFields)
        .event_format(flat::Flat {
            json: format == LogFormat::Json,
        })
        .try_init();
    installed.map_err(|e| InitLoggingError::Install(e.to_string()))
}
