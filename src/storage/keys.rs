//! The S3 key scheme: `{prefix}/{namespace}/{plan}/{backup}/{database}.{ext}.zst[.age]`
//! and `.../{backup}/manifest.json`.

/// Name of the manifest object inside a backup's folder.
pub const MANIFEST_NAME: &str = "manifest.json";

/// A key segment that would break the layout.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field} {value:?} is not a valid key segment: it must be non-empty, not `.` or `..`, and contain no `/`")]
pub struct KeyError {
    pub field: &'static str,
    pub value: String,
}

/// Identifies one backup in a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupKey {
    pub namespace: String,
    pub plan: String,
    pub backup: String,
}

pub(crate) fn check_segment(field: &'static str, value: &str) -> Result<(), KeyError> {
    if value.is_empty() || value == "." || value == ".." || value.contains('/') {
        return Err(KeyError {
            field,
            value: value.to_string(),
        });
    }
    Ok(())
}

/// `{prefix}/{namespace}/{plan}/` (or without prefix when it is empty).
pub fn plan_prefix(store_prefix: &str, namespace: &str, plan: &str) -> Result<String, KeyError> {
    check_segment("namespace", namespace)?;
    check_segment("plan", plan)?;
    let root = store_prefix.trim_matches('/');
    Ok(if root.is_empty() {
        format!("{namespace}/{plan}/")
    } else {
        format!("{root}/{namespace}/{plan}/")
    })
}

impl BackupKey {
    pub fn new(namespace: &str, plan: &str, backup: &str) -> Result<Self, KeyError> {
        check_segment("namespace", namespace)?;
        check_segment("plan", plan)?;
        check_segment("backup", backup)?;
        Ok(BackupKey {
            namespace: namespace.into(),
            plan: plan.into(),
            backup: backup.into(),
        })
    }

    /// The backup's folder, ending in `/`.
    pub fn folder(&self, store_prefix: &str) -> String {
        // Segments were checked in `new`; plan_prefix cannot fail here.
        let plan = plan_prefix(store_prefix, &self.namespace, &self.plan)
            .unwrap_or_else(|_| format!("{}/{}/", self.namespace, self.plan));
        format!("{plan}{}/", self.backup)
    }

    pub fn manifest(&self, store_prefix: &str) -> String {
        format!("{}{MANIFEST_NAME}", self.folder(store_prefix))
    }

    /// Key of one database's dump: `{database}.{extension}.zst[.age]`.
    pub fn object(
        &self,
        store_prefix: &str,
        database: &str,
        extension: &str,
        encrypted: bool,
    ) -> Result<String, KeyError> {
        check_segment("database", database)?;
        check_segment("extension", extension)?;
        let age = if encrypted { ".age" } else { "" };
        Ok(format!("{}{database}.{extension}.zst{age}", self.folder(store_prefix)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_layout() {
        let key = BackupKey::new("shop", "orders", "orders-20260101-0000").unwrap();
        assert_eq!(
            key.object("backups", "orders", "pgdump", true).unwrap(),
            "backups/shop/orders/orders-20260101-0000/orders.pgdump.zst.age"
        );
        assert_eq!(key.manifest(""), "shop/orders/orders-20260101-0000/manifest.json");
    }

    #[test]
    fn slashes_in_segments_are_refused() {
        let err = BackupKey::new("shop", "a/b", "x").unwrap_err();
        assert_eq!(err.field, "plan");
        assert!(BackupKey::new("shop", "p", "..").is_err());
    }
}
