//! Streaming backup and restore: child process -> zstd -> (age) -> sha256 -> S3, and back.
//!
//! Memory is bounded by the part buffers: a backup holds at most `parts_in_flight`
//! parts (the one being filled included), whatever the database size. A restore holds
//! a few MiB of codec buffers.

pub mod backup;
pub mod crypto;
mod decode;
pub mod restore;
mod sink;
mod tail;

pub use backup::{BackupError, BackupOptions, BackupRequest, DumpJob, dump_to_object, run_backup};
pub use crypto::{CryptoError, parse_identities, parse_recipients};
pub use restore::{RestoreError, RestoreOptions, RestoreStats, Verification, restore_object};
