//! Where a restore reads from: the Backup (or the plan's newest backup found in S3 by its
//! manifest), its store, and the age identity when the backup is encrypted.

use kube::Api;

use crate::api::{Backup, BackupStore, EngineKind, RecoveryPlan, Restore};
use crate::controller::context::Context;
use crate::controller::secrets::read_text;
use crate::controller::store_access::open_store;
use crate::pipeline::crypto::parse_identities;
use crate::storage::Store;
use crate::storage::catalog::list_backups;
use crate::storage::manifest::Manifest;

/// Everything a restore needs to read.
pub struct Resolved {
    pub backup: String,
    pub plan: Option<String>,
    pub engine: EngineKind,
    pub store: Store,
    pub manifest: Manifest,
    pub identities: Vec<age::x25519::Identity>,
}

async fn get<K>(ctx: &Context, namespace: &str, name: &str, what: &str) -> Result<K, String>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|e| format!("reading {what} {namespace}/{name}: {e}"))?
        .ok_or_else(|| format!("{what} {namespace}/{name} not found"))
}

/// Resolves the backup to restore.
pub async fn resolve(ctx: &Context, namespace: &str, restore: &Restore) -> Result<Resolved, String> {
    let (plan_name, wanted) = match (&restore.spec.backup, &restore.spec.plan) {
        (Some(backup), _) => {
            let b: Backup = get(ctx, namespace, backup, "Backup").await?;
            (b.spec.plan.clone(), Some(backup.clone()))
        }
        (None, Some(plan)) => (plan.clone(), None),
        (None, None) => return Err("set spec.backup or spec.plan".into()),
    };
    let plan: RecoveryPlan = get(ctx, namespace, &plan_name, "RecoveryPlan").await?;
    let store_name = plan
        .spec
        .backup
        .as_ref()
        .map(|b| b.store.clone())
        .ok_or_else(|| format!("RecoveryPlan {plan_name} has no spec.backup.store"))?;
    let store_obj: BackupStore = get(ctx, namespace, &store_name, "BackupStore").await?;
    let store = open_store(&ctx.client, namespace, &store_obj.spec)
        .await
        .map_err(|e| format!("BackupStore {store_name}: {e}"))?;
    let catalog = list_backups(&store, namespace, &plan_name)
        .await
        .map_err(|e| format!("listing backups of {plan_name} in S3: {e}"))?;
    let entry = match &wanted {
        Some(name) => catalog.into_iter().find(|e| &e.backup == name).ok_or_else(|| {
            format!("Backup {name} has no manifest in S3: it never completed, or its objects were deleted")
        })?,
        None => catalog
            .into_iter()
            .next()
            .ok_or_else(|| format!("no completed backup of {plan_name} in S3"))?,
    };
    let identities = match store_obj
        .spec
        .encryption
        .as_ref()
        .and_then(|e| e.age_identity_secret.as_ref())
    {
        Some(r) => {
            let text = read_text(&ctx.client, namespace, &r.name, &r.key)
                .await
                .map_err(|e| format!("age identity: {e}"))?;
            parse_identities(&text).map_err(|e| format!("age identity in Secret {}: {e}", r.name))?
        }
        None => Vec::new(),
    };
    Ok(Resolved {
        backup: entry.backup,
        plan: Some(plan_name),
        engine: plan.spec.engine,
        store,
        manifest: entry.manifest,
        identities,
    })
}
