//! S3 object store: streaming multipart writer and reader, manifests, catalog, store check.
//!
//! Everything a disaster recovery needs is in S3 itself: a backup is the set of objects
//! under `{prefix}/{namespace}/{plan}/{backup}/` plus its `manifest.json`, written last.
//! No manifest means not a backup.

pub mod catalog;
pub mod check;
pub mod client;
pub mod config;
pub mod error;
pub mod keys;
pub mod manifest;
pub mod multipart;
pub mod prune;
pub mod reader;

pub use catalog::{CatalogEntry, CatalogError, list_backups};
pub use check::{CheckFailure, CheckReason, check_store};
pub use client::{ConnectError, Store};
pub use config::{RetryPolicy, StaticCredentials, StoreConfig};
pub use error::{S3CallError, S3FailureKind};
pub use keys::{BackupKey, KeyError};
pub use manifest::{Manifest, ManifestObject};
pub use multipart::{MultipartUpload, PartSizing, UploadError, abort_orphaned_uploads};
pub use prune::{PruneError, PruneReport, prune_backups};
