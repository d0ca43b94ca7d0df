//! Streaming backup and restore: child process -> zstd -> (age) -> sha256 -> S3, and back.
