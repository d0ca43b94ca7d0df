//! Pure decisions: no I/O and no Kubernetes calls in here.

pub mod detection;
pub mod failover;
pub mod objectives;
pub mod retention;
pub mod risk;
pub mod roles;
pub mod schedule;
pub mod validate;
