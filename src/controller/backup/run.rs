//! One backup run: pick the source member, dump every database through the pipeline,
//! and describe the outcome as a status. Anything that goes wrong yields a Failed status
//! with a message naming the missing or broken thing.

use std::time::{Duration, Instant};

use chrono::Utc;
use kube::{Api, ResourceExt};

use super::ReconcileBackupError;
use crate::api::backup::BackupObject;
use crate::api::{Backup, BackupPhase, BackupStatus, BackupStore, EngineKind, RecoveryPlan};
use crate::controller::context::Context;
use crate::controller::metrics::PlanLabels;
use crate::controller::plan::assess::{replica_views, topology};
use crate::controller::plan::observe::observe;
use crate::controller::store_access::open_store;
use crate::engine::{Engine, Member, Probe};
use crate::pipeline::backup::{BackupOptions, BackupRequest, DumpJob, run_backup};
use crate::pipeline::crypto::parse_recipients;
use crate::policy::objectives::human_seconds;
use crate::policy::validate::{PlanSettings, describe, plan_settings};
use crate::storage::keys::BackupKey;
use crate::storage::multipart::abort_orphaned_uploads;

/// A Failed status with `message`.
pub fn failed(mut status: BackupStatus, message: String) -> BackupStatus {
    status.phase = Some(BackupPhase::Failed);
    status.completion_time = Some(Utc::now());
    status.message = Some(message);
    status
}

/// Human size: `1.2GiB`, `340.0KiB`, `12B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// The member to dump from: a healthy replica within the RPO when the plan prefers one,
/// else the healthy primary.
fn choose_source(
    plan: &RecoveryPlan,
    settings: &PlanSettings,
    observation: &crate::controller::plan::observe::Observation,
) -> Option<(Member, Probe)> {
    let probes = &observation.probes;
    let record = crate::controller::primary_record::PrimaryRecord::of(plan);
    let topo = topology(probes, record.primary.as_deref(), record.epoch);
    let prefer_replica = plan.spec.backup.as_ref().is_some_and(|b| b.prefer_replica);
    if prefer_replica && topo.primary_healthy {
        let memory = crate::controller::plan::runtime::lock(&observation.runtime)
            .memory
            .clone();
        let views = replica_views(probes, topo.primary.as_deref(), &memory, settings, chrono::Utc::now());
        let best = views
            .iter()
            .filter(|v| v.healthy && v.lag().is_some_and(|l| l <= settings.rpo))
            .min_by(|a, b| a.lag().cmp(&b.lag()).then_with(|| a.name.cmp(&b.name)));
        if let Some((m, Ok(p))) = best.and_then(|v| probes.get(&v.name)) {
            return Some((m.clone(), p.clone()));
        }
    }
    let primary = topo.primary.filter(|_| topo.primary_healthy)?;
    match probes.get(&primary) {
        Some((m, Ok(p))) => Some((m.clone(), p.clone())),
        _ => None,
    }
}

/// Runs the backup; returns the status to record.
pub async fn run(ctx: &Context, namespace: &str, backup: &Backup) -> Result<BackupStatus, ReconcileBackupError> {
    let mut status = backup.status.clone().unwrap_or_default();
    let plan_name = &backup.spec.plan;
    let plan: Option<RecoveryPlan> = Api::namespaced(ctx.client.clone(), namespace)
        .get_opt(plan_name)
        .await
        .ok()
        .flatten();
    let Some(plan) = plan else {
        return Ok(failed(
            status,
            format!("RecoveryPlan {namespace}/{plan_name} not found"),
        ));
    };
    let Some(policy) = plan.spec.backup.clone() else {
        return Ok(failed(
            status,
            format!("RecoveryPlan {plan_name} has no spec.backup: set backup.store to say where backups go"),
        ));
    };
    let store_obj: Option<BackupStore> = Api::namespaced(ctx.client.clone(), namespace)
        .get_opt(&policy.store)
        .await
        .ok()
        .flatten();
    let Some(store_obj) = store_obj else {
        return Ok(failed(
            status,
            format!(
                "BackupStore {namespace}/{} (spec.backup.store of plan {plan_name}) not found",
                policy.store
            ),
        ));
    };
    let store = match open_store(&ctx.client, namespace, &store_obj.spec).await {
        Ok(s) => s,
        Err(e) => return Ok(failed(status, format!("BackupStore {}: {e}", policy.store))),
    };
    let recipients = match store_obj
        .spec
        .encryption
        .as_ref()
        .map(|e| parse_recipients(&e.age_recipients))
        .transpose()
    {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => {
            return Ok(failed(
                status,
                format!("BackupStore {} spec.encryption.ageRecipients: {e}", policy.store),
            ));
        }
    };
    if policy.databases.is_empty() {
        return Ok(failed(
            status,
            format!("RecoveryPlan {plan_name} spec.backup.databases is empty: name the databases to dump"),
        ));
    }
    let settings = match plan_settings(&plan.spec) {
        Ok(s) => s,
        Err(problems) => {
            return Ok(failed(
                status,
                format!("RecoveryPlan {plan_name} is invalid: {}", describe(&problems)),
            ));
        }
    };
    let primary = plan.status.as_ref().and_then(|s| s.primary.clone());
    let observation = match observe(
        &ctx.client,
        &ctx.plans,
        namespace,
        &plan,
        crate::controller::plan::observe::ProbeLimits::decision(&settings),
        None,
        primary.as_deref(),
    )
    .await
    {
        Ok(o) => o,
        Err(e) => return Ok(failed(status, format!("cannot reach the members of {plan_name}: {e}"))),
    };
    let Some((member, probe)) = choose_source(&plan, &settings, &observation) else {
        return Ok(failed(status, format!("no healthy member of {plan_name} to dump from")));
    };

    let started = Instant::now();
    status.phase = Some(BackupPhase::Running);
    status.start_time = Some(Utc::now());
    status.source_member = Some(member.name.clone());
    status.engine_version = Some(probe.server_version.clone());
    status.message = None;
    super::write(ctx, namespace, backup, &status).await?;
    tracing::info!(
        member = %member.name,
        role = ?probe.role,
        databases = %policy.databases.join(","),
        "backup started"
    );
    // Fault injection for the restart test (see the README): die while "Running".
    if std::env::var("LIFEBOAT_TEST_CRASH_DURING_BACKUP").is_ok_and(|v| v == "1") {
        tracing::error!("LIFEBOAT_TEST_CRASH_DURING_BACKUP: exiting now");
        std::process::exit(86);
    }

    let engine = observation.engine.clone();
    let format = match plan.spec.engine {
        EngineKind::Postgres => "pgdump",
        EngineKind::Mysql => "sql",
    };
    let mut jobs = Vec::new();
    let mut keep_alive = Vec::new();
    let mut position = None;
    for database in &policy.databases {
        match engine.dump(&member, database).await {
            Ok(dump) => {
                position = position.or_else(|| dump.position.as_ref().map(ToString::to_string));
                let crate::engine::DumpCommand { command, keep, .. } = dump;
                keep_alive.push(keep);
                jobs.push(DumpJob {
                    database: database.clone(),
                    format: format.into(),
                    command,
                });
            }
            Err(e) => {
                return Ok(failed(
                    status,
                    format!("preparing the dump of {database} on {}: {e}", member.name),
                ));
            }
        }
    }
    let key = match BackupKey::new(namespace, plan_name, &backup.name_any()) {
        Ok(k) => k,
        Err(e) => return Ok(failed(status, e.to_string())),
    };
    let request = BackupRequest {
        key: key.clone(),
        engine: plan.spec.engine.to_string(),
        server_version: probe.server_version.clone(),
        consistent_position: position,
        jobs,
    };
    let options = BackupOptions {
        compression_level: policy.compression.level,
        recipients,
        ..BackupOptions::default()
    };
    let result = run_backup(&store, request, &options).await;
    drop(keep_alive);
    let manifest = match result {
        Ok(m) => m,
        Err(e) => return Ok(failed(status, format!("backup from {} failed: {e}", member.name))),
    };

    let seconds = started.elapsed().as_secs_f64();
    let bytes = manifest.stored_bytes();
    status.phase = Some(BackupPhase::Completed);
    status.completion_time = Some(manifest.completed_at);
    status.duration_seconds = Some(seconds);
    status.duration = Some(human_seconds(seconds));
    status.manifest_key = Some(key.manifest(store.prefix()));
    status.objects = manifest
        .objects
        .iter()
        .map(|o| BackupObject {
            database: o.database.clone(),
            key: o.key.clone(),
            size_bytes: o.size as i64,
            sha256: o.sha256.clone(),
        })
        .collect();
    status.size_bytes = Some(bytes as i64);
    status.size = Some(human_bytes(bytes));
    status.consistent_position = manifest.consistent_position.clone();
    status.consistent_time = Some(manifest.started_at);
    status.message = Some(format!(
        "{} database(s) from {} stored in s3://{}/{}",
        manifest.objects.len(),
        member.name,
        store.bucket(),
        key.folder(store.prefix())
    ));
    let labels = PlanLabels {
        namespace: namespace.into(),
        plan: plan_name.clone(),
    };
    ctx.metrics
        .backup_duration_seconds
        .get_or_create(&labels)
        .observe(seconds);
    ctx.metrics.backup_bytes.get_or_create(&labels).set(bytes as f64);
    ctx.metrics
        .backup_last_success_timestamp_seconds
        .get_or_create(&labels)
        .set(manifest.completed_at.timestamp() as f64);
    Ok(status)
}

/// After an interrupted backup: abort its multipart uploads (nothing else of it exists:
/// without a manifest it never was a backup).
pub async fn abort_orphans(ctx: &Context, namespace: &str, backup: &Backup) {
    let Some(plan) = Api::<RecoveryPlan>::namespaced(ctx.client.clone(), namespace)
        .get_opt(&backup.spec.plan)
        .await
        .ok()
        .flatten()
    else {
        return;
    };
    let Some(store_name) = plan.spec.backup.map(|b| b.store) else {
        return;
    };
    let Some(store_obj) = Api::<BackupStore>::namespaced(ctx.client.clone(), namespace)
        .get_opt(&store_name)
        .await
        .ok()
        .flatten()
    else {
        return;
    };
    let Ok(store) = open_store(&ctx.client, namespace, &store_obj.spec).await else {
        return;
    };
    let Ok(key) = BackupKey::new(namespace, &backup.spec.plan, &backup.name_any()) else {
        return;
    };
    match abort_orphaned_uploads(&store, &key.folder(store.prefix()), Duration::ZERO).await {
        Ok(aborted) if !aborted.is_empty() => tracing::info!(?aborted, "aborted the interrupted backup's uploads"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not abort the interrupted backup's uploads"),
    }
}
