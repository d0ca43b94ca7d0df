//! `lifeboat backup`, `restore` and `failover`: create the request object and follow it.

use std::time::Duration;

use kube::Api;

use super::CliError;
use super::follow::{create, follow};
use crate::api::backup::BackupSpec;
use crate::api::common::DatabaseCredentialsRef;
use crate::api::failover::{FailoverSpec, FailoverType};
use crate::api::restore::{DatabaseRename, RestoreCheck, RestoreSpec, RestoreTarget};
use crate::api::{Backup, BackupPhase, DeletionPolicy, Failover, FailoverPhase, Restore, RestorePhase};

/// Options shared by the three commands.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Namespace of the plan.
    #[arg(long, short = 'n', env = "LIFEBOAT_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// How long to follow before giving up (the request goes on in the cluster), e.g. 30m.
    #[arg(long, env = "LIFEBOAT_WAIT", default_value = "30m", value_parser = parse_wait)]
    pub wait: Duration,
}

fn parse_wait(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e}; use e.g. 90s, 30m or 2h"))
}

/// Arguments of `lifeboat backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// RecoveryPlan to back up.
    pub plan: String,
    /// Delete the S3 objects when the Backup object is deleted.
    #[arg(long, env = "LIFEBOAT_DELETE_OBJECTS")]
    pub delete_objects: bool,
    #[command(flatten)]
    pub common: Common,
}

/// Arguments of `lifeboat restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// Backup to restore.
    pub backup: String,
    /// Host of the target server.
    #[arg(long, env = "LIFEBOAT_TARGET_HOST")]
    pub target: String,
    /// Port of the target server (default: the engine's).
    #[arg(long, env = "LIFEBOAT_TARGET_PORT")]
    pub target_port: Option<u16>,
    /// Secret with `username` and `password` for the target.
    #[arg(long, env = "LIFEBOAT_TARGET_SECRET")]
    pub target_secret: String,
    /// Restore database FROM as TO (repeatable): --rename orders=orders_check.
    #[arg(long = "rename", env = "LIFEBOAT_RENAME", value_parser = parse_rename, value_delimiter = ',')]
    pub renames: Vec<DatabaseRename>,
    /// A check after the restore (repeatable): NAME:DATABASE:EXPECTED:SQL.
    #[arg(long = "check", env = "LIFEBOAT_CHECK", value_parser = parse_check)]
    pub checks: Vec<RestoreCheck>,
    #[command(flatten)]
    pub common: Common,
}

fn parse_rename(text: &str) -> Result<DatabaseRename, String> {
    match text.split_once('=') {
        Some((from, to)) if !from.is_empty() && !to.is_empty() => Ok(DatabaseRename {
            from: from.into(),
            to: to.into(),
        }),
        _ => Err(format!("{text:?}: expected FROM=TO, e.g. orders=orders_check")),
    }
}

fn parse_check(text: &str) -> Result<RestoreCheck, String> {
    let parts: Vec<&str> = text.splitn(4, ':').collect();
    match parts.as_slice() {
        [name, database, expect, sql] if !name.is_empty() && !database.is_empty() && !sql.is_empty() => {
            Ok(RestoreCheck {
                name: (*name).into(),
                database: (*database).into(),
                expect: (*expect).into(),
                sql: (*sql).into(),
            })
        }
        _ => Err(format!(
            "{text:?}: expected NAME:DATABASE:EXPECTED:SQL, e.g. orders:shop:t:select count(*) > 0 from orders"
        )),
    }
}

/// Arguments of `lifeboat failover`.
#[derive(Debug, clap::Args)]
pub struct FailoverArgs {
    /// RecoveryPlan whose primary to replace.
    pub plan: String,
    /// Member to promote (default: the most advanced healthy replica).
    #[arg(long, env = "LIFEBOAT_FAILOVER_TO")]
    pub to: Option<String>,
    /// Planned handover with zero data loss (the primary must be healthy).
    #[arg(long, env = "LIFEBOAT_SWITCHOVER")]
    pub switchover: bool,
    /// Promote even if more data would be lost than maxDataLoss allows.
    #[arg(long, env = "LIFEBOAT_FORCE")]
    pub force: bool,
    #[command(flatten)]
    pub common: Common,
}

async fn client() -> Result<kube::Client, CliError> {
    kube::Client::try_default().await.map_err(|source| CliError::Kube {
        context: "loading kubeconfig".into(),
        source,
    })
}

/// `lifeboat backup PLAN`.
pub async fn backup(args: BackupArgs) -> Result<(), CliError> {
    let api: Api<Backup> = Api::namespaced(client().await?, &args.common.namespace);
    let policy = if args.delete_objects {
        DeletionPolicy::Delete
    } else {
        DeletionPolicy::Retain
    };
    let mut object = Backup::new(
        "",
        BackupSpec {
            plan: args.plan.clone(),
            deletion_policy: policy,
        },
    );
    object.metadata.name = None;
    object.metadata.generate_name = Some(format!("{}-manual-", args.plan));
    let name = create(&api, &object).await?;
    let done = follow(&api, &name, args.common.wait, |b| {
        let phase = b.status.as_ref().and_then(|s| s.phase);
        (
            phase.map(|p| format!("{p:?}")),
            matches!(phase, Some(BackupPhase::Completed | BackupPhase::Failed)),
        )
    })
    .await?;
    let status = done.status.unwrap_or_default();
    println!("{}", status.message.clone().unwrap_or_default());
    match status.phase {
        Some(BackupPhase::Completed) => {
            println!(
                "size {}, took {}",
                status.size.unwrap_or_default(),
                status.duration.unwrap_or_default()
            );
            Ok(())
        }
        _ => Err(CliError::Other(format!("backup {name} failed"))),
    }
}

/// `lifeboat restore BACKUP --target HOST --target-secret SECRET`.
pub async fn restore(args: RestoreArgs) -> Result<(), CliError> {
    let api: Api<Restore> = Api::namespaced(client().await?, &args.common.namespace);
    let spec = RestoreSpec {
        backup: Some(args.backup.clone()),
        plan: None,
        target: RestoreTarget {
            host: args.target,
            port: args.target_port,
            credentials_secret: DatabaseCredentialsRef {
                name: args.target_secret,
                username_key: "username".into(),
                password_key: "password".into(),
            },
        },
        renames: args.renames,
        checks: args.checks,
    };
    let mut object = Restore::new("", spec);
    object.metadata.name = None;
    object.metadata.generate_name = Some(format!("{}-restore-", args.backup));
    let name = create(&api, &object).await?;
    let done = follow(&api, &name, args.common.wait, |r| {
        let phase = r.status.as_ref().and_then(|s| s.phase);
        (
            phase.map(|p| format!("{p:?}")),
            matches!(phase, Some(RestorePhase::Completed | RestorePhase::Failed)),
        )
    })
    .await?;
    let status = done.status.unwrap_or_default();
    for check in &status.checks {
        println!(
            "check {}: {} ({})",
            check.name,
            if check.passed { "passed" } else { "FAILED" },
            check.actual.clone().unwrap_or_default()
        );
    }
    println!("{}", status.message.clone().unwrap_or_default());
    match status.phase {
        Some(RestorePhase::Completed) => Ok(()),
        _ => Err(CliError::Other(format!("restore {name} failed"))),
    }
}

/// `lifeboat failover PLAN [--to MEMBER] [--switchover] [--force]`.
pub async fn failover(args: FailoverArgs) -> Result<(), CliError> {
    let api: Api<Failover> = Api::namespaced(client().await?, &args.common.namespace);
    let kind = if args.switchover {
        FailoverType::Switchover
    } else {
        FailoverType::Failover
    };
    let mut object = Failover::new(
        "",
        FailoverSpec {
            plan: args.plan.clone(),
            kind,
            to: args.to,
            force: args.force,
        },
    );
    object.metadata.name = None;
    object.metadata.generate_name = Some(format!("{}-manual-", args.plan));
    let name = create(&api, &object).await?;
    let done = follow(&api, &name, args.common.wait, |f| {
        let phase = f.status.as_ref().and_then(|s| s.phase);
        (
            phase.map(|p| format!("{p:?}")),
            matches!(
                phase,
                Some(FailoverPhase::Completed | FailoverPhase::Refused | FailoverPhase::Failed)
            ),
        )
    })
    .await?;
    let status = done.status.unwrap_or_default();
    for step in &status.steps {
        println!(
            "  {} {}: {} {}",
            step.name,
            step.member.clone().unwrap_or_default(),
            step.result.clone().unwrap_or_default(),
            step.message.clone().unwrap_or_default()
        );
    }
    println!("{}", status.message.clone().unwrap_or_default());
    match status.phase {
        Some(FailoverPhase::Completed) => {
            println!("RTO {}", status.rto.unwrap_or_default());
            Ok(())
        }
        _ => Err(CliError::Other(format!("failover {name} did not complete"))),
    }
}
