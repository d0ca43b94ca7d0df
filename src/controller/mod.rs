//! Controllers, one module per kind (arriving with the operator issue), and what they
//! may do in the cluster.

pub mod permissions;
