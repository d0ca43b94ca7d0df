//! Every Kubernetes API call the operator makes, as RBAC rules. The chart's ClusterRole
//! (or Role) must grant exactly these and nothing broader; a test renders the chart and
//! compares. A controller that starts calling something new adds it here first.

/// One RBAC rule: API group, resources (with subresources as `kind/sub`), verbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission {
    /// API group ("" is the core group).
    pub api_group: &'static str,
    /// Resources the verbs apply to.
    pub resources: &'static [&'static str],
    /// Verbs allowed.
    pub verbs: &'static [&'static str],
}

const READ: &[&str] = &["get", "list", "watch"];

/// What lifeboat's operator calls, and why.
pub const OPERATOR_PERMISSIONS: &[Permission] = &[
    // Its own kinds: watch all, create Backups (schedule) and Failovers (automatic
    // failover records), delete Backups (retention), SSA of spec-side finalizers.
    Permission {
        api_group: "lifeboat.dev",
        resources: &["backupstores", "recoveryplans", "restores"],
        verbs: &["get", "list", "watch", "patch"],
    },
    Permission {
        api_group: "lifeboat.dev",
        resources: &["backups", "failovers"],
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
    },
    Permission {
        api_group: "lifeboat.dev",
        resources: &[
            "backupstores/status",
            "recoveryplans/status",
            "backups/status",
            "restores/status",
            "failovers/status",
        ],
        verbs: &["get", "patch"],
    },
    // Member pods: read podIP and readiness, patch the lifeboat.dev/role label.
    Permission {
        api_group: "",
        resources: &["pods"],
        verbs: &["get", "list", "watch", "patch"],
    },
    // Writer Service: read its selector; patch it back to role=primary if changed.
    Permission {
        api_group: "",
        resources: &["services"],
        verbs: &["get", "list", "watch", "patch"],
    },
    // Database and S3 credentials, CA bundles, age identities.
    Permission {
        api_group: "",
        resources: &["secrets"],
        verbs: READ,
    },
    // Static-endpoint plans: lifeboat maintains the writer Service's endpoints itself.
    Permission {
        api_group: "",
        resources: &["endpoints"],
        verbs: &["get", "list", "watch", "create", "patch"],
    },
    Permission {
        api_group: "discovery.k8s.io",
        resources: &["endpointslices"],
        verbs: &["get", "list", "watch", "create", "patch"],
    },
    // Events at every phase (kube-runtime's Recorder writes events.k8s.io/v1).
    Permission {
        api_group: "events.k8s.io",
        resources: &["events"],
        verbs: &["create", "patch"],
    },
    // Leader election.
    Permission {
        api_group: "coordination.k8s.io",
        resources: &["leases"],
        verbs: &["get", "create", "update"],
    },
];
