//! Runs the controllers while this instance leads, and stops them at once when it does not.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::watch;

use super::backup::{self, ReconcileBackupError};
use super::backup_store::{self, ReconcileStoreError};
use super::context::Context;
use super::failover::{self, ReconcileFailoverError};
use super::leader::{self, LeaseSettings};
use super::metrics::{ControllerLabels, FailureLabels, Metrics};
use super::plan::{self, ReconcilePlanError};
use super::restore::{self, ReconcileRestoreError};
use crate::api::{Backup, BackupStore, Failover, RecoveryPlan, Restore};
use crate::logging::repeats;

/// Operator settings.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// Only this namespace; `None` watches all.
    pub watch_namespace: Option<String>,
    /// Leader election lease.
    pub lease: LeaseSettings,
    /// Reconciles running at once, per controller.
    pub concurrency: u16,
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Counts a reconcile's outcome and duration.
fn record(metrics: &Metrics, controller: &str, started: Instant, failure: Option<&str>) {
    let labels = ControllerLabels {
        controller: controller.into(),
    };
    metrics.reconcile_runs.get_or_create(&labels).inc();
    metrics
        .reconcile_duration_seconds
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    if let Some(reason) = failure {
        metrics
            .reconcile_failures
            .get_or_create(&FailureLabels {
                controller: controller.into(),
                reason: reason.into(),
            })
            .inc();
    }
}

/// Logs a failed reconcile; the same error on the same object again within the
/// repeat window is counted, not written (a broken object fails every few seconds).
fn warn_failed(kind: &str, meta: &ObjectMeta, err: &dyn std::fmt::Display, reason: &str) {
    let namespace = meta.namespace.as_deref().unwrap_or("");
    let name = meta.name.as_deref().unwrap_or("");
    let error = err.to_string();
    if let Some(suppressed) = repeats().admit(&format!("{kind}/{namespace}/{name}"), &error) {
        tracing::warn!(kind, namespace, name, %error, reason, suppressed, "{kind} reconcile failed");
    }
}

async fn reconcile_store(store: Arc<BackupStore>, ctx: Arc<Context>) -> Result<Action, ReconcileStoreError> {
    let started = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        namespace = store.metadata.namespace.as_deref().unwrap_or(""),
        store = store.metadata.name.as_deref().unwrap_or("")
    );
    let result = tracing::Instrument::instrument(backup_store::reconcile(store, ctx.clone()), span).await;
    record(
        &ctx.metrics,
        "backupstore",
        started,
        result.as_ref().err().map(|e| e.category()),
    );
    result
}

fn store_error_policy(store: Arc<BackupStore>, err: &ReconcileStoreError, _ctx: Arc<Context>) -> Action {
    warn_failed("BackupStore", &store.metadata, err, err.category());
    Action::requeue(Duration::from_secs(15))
}

async fn reconcile_plan(rp: Arc<RecoveryPlan>, ctx: Arc<Context>) -> Result<Action, ReconcilePlanError> {
    let started = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        namespace = rp.metadata.namespace.as_deref().unwrap_or(""),
        plan = rp.metadata.name.as_deref().unwrap_or("")
    );
    let result = tracing::Instrument::instrument(plan::reconcile(rp, ctx.clone()), span).await;
    record(
        &ctx.metrics,
        "recoveryplan",
        started,
        result.as_ref().err().map(|e| e.category()),
    );
    result
}

fn plan_error_policy(rp: Arc<RecoveryPlan>, err: &ReconcilePlanError, _ctx: Arc<Context>) -> Action {
    warn_failed("RecoveryPlan", &rp.metadata, err, err.category());
    Action::requeue(Duration::from_secs(2))
}

async fn reconcile_failover(fo: Arc<Failover>, ctx: Arc<Context>) -> Result<Action, ReconcileFailoverError> {
    let started = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        namespace = fo.metadata.namespace.as_deref().unwrap_or(""),
        failover = fo.metadata.name.as_deref().unwrap_or("")
    );
    let result = tracing::Instrument::instrument(failover::reconcile(fo, ctx.clone()), span).await;
    record(
        &ctx.metrics,
        "failover",
        started,
        result.as_ref().err().map(|e| e.category()),
    );
    result
}

fn failover_error_policy(fo: Arc<Failover>, err: &ReconcileFailoverError, _ctx: Arc<Context>) -> Action {
    warn_failed("Failover", &fo.metadata, err, err.category());
    Action::requeue(Duration::from_secs(1))
}

async fn reconcile_backup(bk: Arc<Backup>, ctx: Arc<Context>) -> Result<Action, ReconcileBackupError> {
    let started = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        namespace = bk.metadata.namespace.as_deref().unwrap_or(""),
        plan = bk.spec.plan.as_str(),
        backup = bk.metadata.name.as_deref().unwrap_or("")
    );
    let result = tracing::Instrument::instrument(backup::reconcile(bk, ctx.clone()), span).await;
    record(
        &ctx.metrics,
        "backup",
        started,
        result.as_ref().err().map(|e| e.category()),
    );
    result
}

fn backup_error_policy(bk: Arc<Backup>, err: &ReconcileBackupError, _ctx: Arc<Context>) -> Action {
    warn_failed("Backup", &bk.metadata, err, err.category());
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile_restore(rst: Arc<Restore>, ctx: Arc<Context>) -> Result<Action, ReconcileRestoreError> {
    let started = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        namespace = rst.metadata.namespace.as_deref().unwrap_or(""),
        restore = rst.metadata.name.as_deref().unwrap_or("")
    );
    let result = tracing::Instrument::instrument(restore::reconcile(rst, ctx.clone()), span).await;
    record(
        &ctx.metrics,
        "restore",
        started,
        result.as_ref().err().map(|e| e.category()),
    );
    result
}

fn restore_error_policy(rst: Arc<Restore>, err: &ReconcileRestoreError, _ctx: Arc<Context>) -> Action {
    warn_failed("Restore", &rst.metadata, err, err.category());
    Action::requeue(Duration::from_secs(5))
}

/// Whether a BackupStore reads the Secret `name`.
fn uses_secret(store: &BackupStore, name: &str) -> bool {
    let s3 = &store.spec.s3;
    let encryption = store
        .spec
        .encryption
        .as_ref()
        .and_then(|e| e.age_identity_secret.as_ref());
    s3.credentials_secret.as_ref().is_some_and(|r| r.name == name)
        || s3.ca_bundle_secret.as_ref().is_some_and(|r| r.name == name)
        || encryption.is_some_and(|r| r.name == name)
}

/// Runs every controller until `stop` resolves.
async fn run_controllers(
    ctx: Arc<Context>,
    config: &OperatorConfig,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let ns = config.watch_namespace.as_deref();
    let controller_config = controller::Config::default().concurrency(config.concurrency);
    // One stop signal shared by every controller.
    let (tx, rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let store_controller = Controller::new(scoped::<BackupStore>(&ctx.client, ns), watcher::Config::default());
    // A fixed (or broken) Secret re-checks the stores that use it at once.
    let known_stores = store_controller.store();
    let stores = store_controller
        .watches(
            scoped::<Secret>(&ctx.client, ns),
            watcher::Config::default(),
            move |secret| {
                let (name, namespace) = (secret.metadata.name.clone(), secret.metadata.namespace.clone());
                known_stores
                    .state()
                    .into_iter()
                    .filter(|store| {
                        store.metadata.namespace == namespace && name.as_deref().is_some_and(|n| uses_secret(store, n))
                    })
                    .map(|store| ObjectRef::from_obj(&*store))
                    .collect::<Vec<_>>()
            },
        )
        .with_config(controller_config.clone())
        .graceful_shutdown_on(stopped(rx.clone()))
        .run(reconcile_store, store_error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let plans = Controller::new(scoped::<RecoveryPlan>(&ctx.client, ns), watcher::Config::default())
        .with_config(controller_config)
        .graceful_shutdown_on(stopped(rx.clone()))
        .run(reconcile_plan, plan_error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let failovers = Controller::new(scoped::<Failover>(&ctx.client, ns), watcher::Config::default())
        .with_config(controller::Config::default().concurrency(config.concurrency))
        .graceful_shutdown_on(stopped(rx.clone()))
        .run(reconcile_failover, failover_error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let backups = Controller::new(scoped::<Backup>(&ctx.client, ns), watcher::Config::default())
        .with_config(controller::Config::default().concurrency(config.concurrency))
        .graceful_shutdown_on(stopped(rx.clone()))
        .run(reconcile_backup, backup_error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let restores = Controller::new(scoped::<Restore>(&ctx.client, ns), watcher::Config::default())
        .with_config(controller::Config::default().concurrency(config.concurrency))
        .graceful_shutdown_on(stopped(rx.clone()))
        .run(reconcile_restore, restore_error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()));
    let forget = forget_deleted_plans(ctx.clone(), ns, stopped(rx.clone()));
    let signal = async move {
        stop.await;
        let _ = tx.send(true);
    };
    tokio::join!(stores, plans, failovers, backups, restores, forget, signal);
}

/// Releases a deleted plan's runtime: its engine and every kept-open database connection.
/// (The plan controller is not called for deletions, and a finalizer would block deleting a
/// plan whose operator is gone.)
async fn forget_deleted_plans(ctx: Arc<Context>, namespace: Option<&str>, stop: impl Future<Output = ()>) {
    let deletions = watcher::watcher(
        scoped::<RecoveryPlan>(&ctx.client, namespace),
        watcher::Config::default(),
    )
    .take_until(stop)
    .for_each(|event| {
        if let Ok(watcher::Event::Delete(plan)) = event {
            let key = format!(
                "{}/{}",
                plan.metadata.namespace.as_deref().unwrap_or_default(),
                plan.metadata.name.as_deref().unwrap_or_default()
            );
            if ctx.plans.remove(&key) {
                tracing::info!(plan = %key, "RecoveryPlan deleted: its database connections are closed");
            }
        }
        futures::future::ready(())
    });
    deletions.await;
}

/// Leads or waits, until `shutdown` flips to true. `ready` is set while the API is reachable.
pub async fn run(ctx: Arc<Context>, config: OperatorConfig, mut shutdown: watch::Receiver<bool>) {
    let mut leading = leader::spawn(ctx.client.clone(), config.lease.clone(), shutdown.clone());
    loop {
        // Wait to lead (or to be told to stop).
        while !*leading.borrow() {
            tokio::select! {
                changed = leading.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => if *shutdown.borrow() { return },
            }
        }
        tracing::info!("leading: starting controllers");
        let mut lost = leading.clone();
        let mut stopping = shutdown.clone();
        let stop = async move {
            loop {
                tokio::select! {
                    changed = lost.changed() => if changed.is_err() || !*lost.borrow() { return },
                    changed = stopping.changed() => if changed.is_err() || *stopping.borrow() { return },
                }
            }
        };
        run_controllers(ctx.clone(), &config, stop).await;
        // Another instance leads now: no connections to the databases are kept here.
        ctx.plans.clear();
        tracing::info!("controllers stopped");
        if *shutdown.borrow() {
            return;
        }
    }
}
