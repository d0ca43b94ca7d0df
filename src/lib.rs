//! lifeboat: keeps an online shop's databases recoverable.
//!
//! Decisions are pure (`policy`), I/O sits at the edges (`engine`, `storage`,
//! `pipeline`, `controller`), and the Kubernetes API lives in `api`.

pub mod api;
pub mod cli;
pub mod controller;
pub mod engine;
pub mod http;
pub mod logging;
pub mod pipeline;
pub mod policy;
pub mod storage;
