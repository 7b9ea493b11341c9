//! node-conformance: tests whether a node is fit to join a Kubernetes cluster.
//!
//! The flow runs one way: CLI/env -> selection -> node view -> suite -> runner -> reports.

pub mod app;
pub mod cli;
pub mod cluster;
pub mod controlplane;
pub mod fleet;
pub mod node;
pub mod podsecurity;
pub mod report;
pub mod runner;
pub mod runtime;
pub mod spec;
pub mod suite;
pub mod workload;

/// The version, with the source revision when the build was given one.
pub fn version() -> String {
    match option_env!("NODE_CONFORMANCE_REVISION") {
        Some(rev) if !rev.is_empty() => format!("{} ({rev})", env!("CARGO_PKG_VERSION")),
        _ => env!("CARGO_PKG_VERSION").to_string(),
    }
}
