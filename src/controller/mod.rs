//! Controllers, one module per kind (arriving with the operator issue), and what they
//! may do in the cluster.

pub mod backup;
pub mod backup_store;
pub mod conditions;
pub mod context;
pub mod failover;
pub mod inflight;
pub mod leader;
pub mod members;
pub mod metrics;
pub mod pacer;
pub mod permissions;
pub mod plan;
pub mod primary_record;
pub mod restore;
pub mod runner;
pub mod secrets;
pub mod status;
pub mod store_access;
