//! kubelet-double: a TEST DOUBLE of the kubelet, not a kubelet.
//!
//! The harness tests real kubelets; this program stands in for one so the harness's kubelet
//! tests can run on a machine without a kubelet, against the local control plane
//! (`node-conformance control-plane`). It does, over the plain HTTP JSON API, the simplified
//! least of what a kubelet does: registers its Node and keeps it Ready, renews its Lease, runs
//! static pods from a manifest directory (with mirror pods) and the API pods bound to its node,
//! and reports their status. Containers are child processes of the workload binary
//! (`--runtime process`) or Docker containers (`--runtime docker`).
//!
//! `--break` makes it misbehave on purpose in one named way, so tests can show that the
//! harness notices.
//!
//!     kubelet-double --server http://127.0.0.1:PORT --node-name NAME --pod-manifest-path DIR
//!         [--runtime process|docker] [--workload-binary PATH] [--sync-ms 200]
//!         [--heartbeat-ms 1000] [--break owner-reference|hash|ready|mirror-recreate|no-pull]

/// One line per notable action, to stderr.
macro_rules! log {
    ($($arg:tt)*) => {
        eprintln!("{} kubelet-double: {}", chrono::Utc::now().format("%H:%M:%S%.3f"), format_args!($($arg)*))
    };
}

mod api;
mod node;
mod pods;
mod pull;
mod runtime;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    Process,
    Docker,
}

/// The ways the double can be told to misbehave, each breaking one thing a kubelet must get right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Break {
    /// Mirror pods carry no ownerReference to the Node.
    OwnerReference,
    /// A mirror pod's config.mirror annotation differs from its config.hash.
    Hash,
    /// The Node's Ready condition stays False.
    Ready,
    /// A mirror pod deleted through the API is not recreated.
    MirrorRecreate,
    /// No image is pulled: a container of pull policy Always runs whatever it names.
    NoPull,
}

#[derive(Debug, Parser)]
#[command(
    name = "kubelet-double",
    about = "A kubelet test double for the node-conformance harness (not a kubelet)"
)]
pub struct Cli {
    /// The API server over plain HTTP (http://127.0.0.1:PORT), without credentials.
    #[arg(
        long,
        required_unless_present = "kubeconfig",
        conflicts_with = "kubeconfig"
    )]
    server: Option<String>,
    /// A kubeconfig (JSON, as `node-conformance kubelet-config` writes it) with the server, the
    /// CA to trust and a client certificate, all inline.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    #[arg(long)]
    node_name: String,
    /// The static pod directory.
    #[arg(long)]
    pod_manifest_path: PathBuf,
    #[arg(long, value_enum, default_value = "process")]
    runtime: RuntimeKind,
    /// The binary whose `workload` subcommand the containers run (process runtime). Defaults to
    /// the node-conformance binary beside this one.
    #[arg(long)]
    workload_binary: Option<PathBuf>,
    #[arg(long, default_value_t = 200)]
    sync_ms: u64,
    #[arg(long, default_value_t = 1000)]
    heartbeat_ms: u64,
    /// Misbehave on purpose (may be repeated).
    #[arg(long = "break", value_enum)]
    breaks: Vec<Break>,
}

/// target/debug/examples/kubelet-double sits one level below target/debug/node-conformance.
fn default_workload_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("node-conformance"))
        .find(|p| p.is_file())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            log!("cannot handle signal {sig}: {e}");
            return ExitCode::from(2);
        }
    }
    let root = match tempfile::Builder::new().prefix("kubelet-double-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            log!("cannot make a temporary directory: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match cli.runtime {
        RuntimeKind::Process => {
            let Some(binary) = cli.workload_binary.clone().or_else(default_workload_binary) else {
                log!(
                    "no workload binary: build node-conformance (cargo build) or pass --workload-binary"
                );
                return ExitCode::from(2);
            };
            runtime::Runtime::Process {
                binary,
                root: root.path().to_path_buf(),
            }
        }
        RuntimeKind::Docker => runtime::Runtime::Docker {
            node: cli.node_name.clone(),
            root: root.path().to_path_buf(),
        },
    };
    let rt = Arc::new(rt);
    // Containers an earlier run of this node left behind, were it killed outright.
    rt.remove_all();
    let (server, credentials) = match (&cli.server, &cli.kubeconfig) {
        (Some(server), _) => (server.clone(), Default::default()),
        (None, Some(path)) => match api::from_kubeconfig(path) {
            Ok(found) => found,
            Err(e) => {
                log!("{}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        (None, None) => {
            log!("give --server or --kubeconfig");
            return ExitCode::from(2);
        }
    };
    let api = api::Api::new(&server, &credentials);
    let sync = Duration::from_millis(cli.sync_ms.max(10));

    let mut agent = node::NodeAgent::new(api.clone(), &cli, rt.version());
    let node_uid = agent.uid_handle();
    let mut waiting_logged = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return ExitCode::SUCCESS;
        }
        match agent.register() {
            Ok(()) => break,
            Err(e) if !waiting_logged => {
                log!("waiting for the API server at {server}: {e}");
                waiting_logged = true;
            }
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let heartbeat = {
        let stop = Arc::clone(&stop);
        let every = Duration::from_millis(cli.heartbeat_ms.max(10));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                agent.heartbeat();
                sleep_unless(&stop, every);
            }
        })
    };

    let mut kubelet = pods::Kubelet::new(api, &cli, Arc::clone(&rt), node_uid, sync);
    while !stop.load(Ordering::Relaxed) {
        kubelet.sync();
        sleep_unless(&stop, sync);
    }
    log!("stopping: killing every container this node started");
    kubelet.shutdown();
    rt.remove_all();
    let _ = heartbeat.join();
    if let Err(e) = root.close() {
        log!("cannot remove the temporary directory: {e}");
    }
    log!("stopped");
    ExitCode::SUCCESS
}

/// Sleeps, waking early for a stop signal so shutdown is prompt even with a long period.
fn sleep_unless(stop: &AtomicBool, total: Duration) {
    let step = Duration::from_millis(50);
    let mut left = total;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        let d = left.min(step);
        std::thread::sleep(d);
        left -= d;
    }
}

/// A metav1.Time.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
