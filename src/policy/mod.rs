//! Pure decisions: no I/O and no Kubernetes calls in here.

pub mod validate;
