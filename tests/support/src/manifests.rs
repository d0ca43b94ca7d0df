//! The manifests most tests apply: credentials, a writer Service, a BackupStore on a
//! garage, and a RecoveryPlan, with the few knobs tests turn.

use crate::s3::Garage;

/// What to put in the plan.
#[derive(Clone, Debug)]
pub struct PlanManifest<'a> {
    /// `postgres` or `mysql`.
    pub engine: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    pub port: u16,
    /// The plan's `backup:` block as flow YAML (without the store), e.g. `{schedule: "@yearly", databases: [shop]}`.
    pub backup: Option<&'a str>,
    /// The plan's `failover:` block as flow YAML.
    pub failover: &'a str,
    /// Objectives as flow YAML.
    pub objectives: &'a str,
}

impl Default for PlanManifest<'_> {
    fn default() -> Self {
        PlanManifest {
            engine: "postgres",
            username: crate::pg::PASSWORD_USER,
            password: crate::pg::PASSWORD,
            port: 5432,
            backup: None,
            failover: "{probeInterval: 500ms, failureThreshold: 3}",
            objectives: "{rpo: 1m, rto: 30s}",
        }
    }
}

/// Secret `db-credentials`, Service `db` (selector app=db), optionally Secret `s3-keys` and
/// BackupStore `garage`, and RecoveryPlan `shop` selecting pods labelled app=db.
pub fn plan_manifest(plan: &PlanManifest<'_>, garage: Option<&Garage>) -> String {
    let mut out = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: db-credentials}}\nstringData: {{username: {}, password: {}}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: db}}\nspec: {{selector: {{app: db}}, ports: [{{port: {}}}]}}\n",
        plan.username, plan.password, plan.port
    );
    if let Some(g) = garage {
        out += &format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s3-keys}}\nstringData: {{AWS_ACCESS_KEY_ID: {}, AWS_SECRET_ACCESS_KEY: {}}}\n---\napiVersion: lifeboat.dev/v1alpha1\nkind: BackupStore\nmetadata: {{name: garage}}\nspec: {{s3: {{bucket: {}, endpoint: '{}', region: {}, forcePathStyle: true, credentialsSecret: {{name: s3-keys}}}}}}\n",
            g.access_key(),
            g.secret_key(),
            g.bucket(),
            g.endpoint(),
            g.region()
        );
    }
    out += &format!(
        "---\napiVersion: lifeboat.dev/v1alpha1\nkind: RecoveryPlan\nmetadata: {{name: shop}}\nspec:\n  engine: {}\n  members: {{selector: {{matchLabels: {{app: db}}}}}}\n  credentialsSecret: {{name: db-credentials}}\n  writerService: db\n  objectives: {}\n  failover: {}\n",
        plan.engine, plan.objectives, plan.failover
    );
    if let Some(backup) = plan.backup {
        let trimmed = backup.trim();
        let inner = trimmed
            .strip_prefix('{')
            .and_then(|b| b.strip_suffix('}'))
            .unwrap_or(trimmed);
        out += &format!("  backup: {{store: garage, {inner}}}\n");
    }
    out
}
