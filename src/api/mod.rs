//! lifeboat's custom resources (group `lifeboat.dev`, version `v1alpha1`).

// kube-derive takes one `printcolumn(...)` per column; clippy reads the repeated
// `type_ = "string"` inside them as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

pub mod backup;
pub mod backup_store;
pub mod common;
pub mod failover;
pub mod recovery_plan;
pub mod restore;

pub use backup::{Backup, BackupPhase, BackupSpec, BackupStatus, DeletionPolicy};
pub use backup_store::{BackupStore, BackupStoreSpec, BackupStoreStatus};
pub use common::{EngineKind, FIELD_MANAGER, GROUP, ROLE_LABEL, VERSION};
pub use failover::{Failover, FailoverPhase, FailoverSpec, FailoverStatus, FailoverType};
pub use recovery_plan::{RecoveryPlan, RecoveryPlanSpec, RecoveryPlanStatus};
pub use restore::{Restore, RestorePhase, RestoreSpec, RestoreStatus};

pub use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CRD lifeboat serves, in a stable order (the order of `crds/` and `lifeboat crd`).
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![
        BackupStore::crd(),
        RecoveryPlan::crd(),
        Backup::crd(),
        Restore::crd(),
        Failover::crd(),
    ]
}

/// The file name a CRD is committed under in `crds/`: `lifeboat.dev_<plural>.yaml`.
pub fn crd_file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// Renders a CRD as the YAML committed in `crds/` and printed by `lifeboat crd`.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(crd)
}
