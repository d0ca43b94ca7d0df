//! kube-sandbox: an in-memory Kubernetes API server for tests and the demo.
//!
//! Real kubectl, helm and kube-rs talk to it over HTTP. Differences from
//! kube-apiserver are listed in `sandbox/README.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube_sandbox::StartError> {
//! let sandbox = kube_sandbox::Sandbox::start(kube_sandbox::SandboxOptions::default()).await?;
//! let client = sandbox.client().await;
//! println!("KUBECONFIG={}", sandbox.kubeconfig_path().display());
//! # drop(client); sandbox.shutdown().await; Ok(()) }
//! ```

/// Service networking: endpoints controller and the per-Service TCP proxy.
pub mod network;
/// Pure JSON machinery for merge/JSON/strategic-merge patches and server-side apply.
pub mod patch;
/// Pure CRD structural-schema handling: validation, defaulting, pruning.
pub mod schema;
/// Pure rendering of `additionalPrinterColumns` as a `meta.k8s.io/v1` Table.
pub mod table;

/// Defaults and admission of pods and jobs; namespace defaults.
mod admission;
/// HTTP routing and the verb handlers.
mod api;
/// Authentication (tokens, impersonation) and authorization (RBAC).
pub mod auth;
/// Deployment, ReplicaSet and Job controllers.
pub mod controllers;
/// Kubernetes `Status` errors.
pub mod error;
/// Fault injection (library and admin HTTP API).
pub mod faults;
/// ClusterIP allocation with cross-process locks.
pub mod ipalloc;
/// Adapter to the patch/schema/table functions.
mod json_glue;
/// Built-in kind behaviour (namespaces, services, CRDs, status reset).
mod kinds;
/// The kubeconfig file.
pub mod kubeconfig;
/// A kubelet for pods whose images map to local executables.
pub mod kubelet;
/// Garbage collection, finalizers, namespace and CRD cleanup.
mod lifecycle;
/// Metadata helpers.
mod meta;
/// `--state FILE` persistence.
pub mod persist;
/// Protobuf request bodies of typed clients.
mod proto;
/// Served resources: built-ins and CRDs.
pub mod resources;
/// Library entry point.
mod sandbox;
/// Label and field selectors.
pub mod selectors;
/// The object store and watch history.
pub mod store;
/// The cluster CA and the TLS listener.
pub mod tls;

pub use faults::Faults;
pub use sandbox::{Sandbox, SandboxOptions, StartError, start_default};
