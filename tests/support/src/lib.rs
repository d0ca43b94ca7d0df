//! lifeboat-testkit: one harness of real servers for lifeboat's tests and demo.
//!
//! Every server binds its own loopback address (127.0.0.x) and is stopped by PID
//! when its handle drops.

/// A kube-sandbox with lifeboat's CRDs applied, driven by the real kubectl and helm.
pub mod cluster;
/// Real faults: hung servers, cut network paths.
pub mod faults;
/// Manifests most tests apply.
pub mod manifests;
/// MariaDB primaries with N GTID replicas.
pub mod mariadb;
/// Loopback address allocation shared by concurrently running test processes.
pub mod net;
/// The operator as a child process.
pub mod operator;
/// PostgreSQL 15 primaries with N streaming replicas.
pub mod pg;
/// garage (real S3) and moto (object lock, SSE) servers.
pub mod s3;
/// The shop workload and its ledger.
pub mod shop_load;
/// Pinned kubectl and helm binaries, and waiting helpers.
pub mod tools;
