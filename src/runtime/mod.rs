//! Clients of the node's container runtimes, and the services built on them that tests share:
//! started once, on first use, and torn down by the runner whatever happened to the tests.

pub mod cri;
pub mod docker;
pub mod image;

use std::future::Future;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::node::rootfs::RootFs;
use crate::node::runtime::{self as endpoints, Kind};

/// Why a service a test needs is not there.
#[derive(Debug, Clone)]
pub enum Unavailable {
    /// Not on this node, or not usable by this harness build: the test skips.
    Absent(String),
    /// There, but broken: the test fails.
    Broken(String),
}

pub struct Services {
    pub run_id: String,
    workload_binary: PathBuf,
    rt: OnceLock<Result<tokio::runtime::Runtime, String>>,
    docker: OnceLock<Result<docker::Docker, Unavailable>>,
    workload: OnceLock<Result<(), Unavailable>>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

/// A run id: unique enough to tell this run's containers from any other's.
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", nanos & 0xffff_ffff_ffff, std::process::id())
}

impl Services {
    pub fn new(run_id: String, workload_binary: PathBuf) -> Self {
        Self {
            run_id,
            workload_binary,
            rt: OnceLock::new(),
            docker: OnceLock::new(),
            workload: OnceLock::new(),
        }
    }

    /// Runs a future on the shared runtime, with a deadline.
    pub fn block_on<F: Future>(&self, timeout: Duration, f: F) -> Result<F::Output, String> {
        let rt = self
            .rt
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the async runtime: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)?;
        rt.block_on(async { tokio::time::timeout(timeout, f).await })
            .map_err(|_| format!("no answer within {}s", timeout.as_secs()))
    }

    /// The node's Docker Engine, connected on first use.
    pub fn docker(&self, root: &RootFs) -> Result<&docker::Docker, Unavailable> {
        self.docker
            .get_or_init(|| {
                let found = endpoints::discover(root, Kind::Docker);
                let Some(first) = found.into_iter().next() else {
                    return Err(Unavailable::Absent("no Docker endpoint is known".into()));
                };
                let path = first.path();
                let socket = first.socket.map_err(|e| {
                    Unavailable::Absent(format!("no Docker Engine on this node: {e}"))
                })?;
                match self.block_on(
                    Duration::from_secs(30),
                    docker::Docker::connect(socket, &self.run_id),
                ) {
                    Ok(Ok(d)) => Ok(d),
                    Ok(Err(e)) | Err(e) => Err(Unavailable::Broken(format!(
                        "the Docker Engine at {} does not answer: {e}",
                        path.display()
                    ))),
                }
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Docker with the test image loaded, for the tests that run containers.
    pub fn workload(&self, root: &RootFs) -> Result<&docker::Docker, Unavailable> {
        let docker = self.docker(root)?;
        self.workload
            .get_or_init(|| {
                let binary = image::read_static_binary(&self.workload_binary)
                    .map_err(Unavailable::Absent)?;
                self.block_on(Duration::from_secs(120), docker.load_workload(binary))
                    .and_then(|r| r)
                    .map_err(Unavailable::Broken)
            })
            .clone()
            .map(|()| docker)
    }

    /// Removes everything this run created in the runtimes. Returns one line per thing
    /// removed or left behind.
    pub fn shutdown(&self) -> Vec<String> {
        let Some(Ok(docker)) = self.docker.get() else {
            return Vec::new();
        };
        match self.block_on(Duration::from_secs(60), docker.cleanup()) {
            Ok((removed, failed)) => removed
                .into_iter()
                .map(|r| format!("removed {r}"))
                .chain(failed.into_iter().map(|f| format!("could not remove {f}")))
                .collect(),
            Err(e) => vec![format!(
                "cleanup of run {} did not finish: {e}",
                self.run_id
            )],
        }
    }
}
