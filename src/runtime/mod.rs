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
    api_port: u16,
    pod_image: Option<String>,
    control_plane: OnceLock<Result<ControlPlane, Unavailable>>,
}

/// The local control plane as the tests see it, once started.
#[derive(Debug)]
pub struct ControlPlane {
    pub url: String,
    pub port: u16,
    pub store: std::sync::Arc<crate::controlplane::store::Store>,
    running: std::sync::Mutex<Option<crate::controlplane::Running>>,
    /// Static pod files and API objects tests made and have not removed yet: what an
    /// interrupted run still has to remove.
    created: std::sync::Mutex<Vec<Created>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Created {
    File(PathBuf),
    /// An API path, `/api/v1/namespaces/ns/pods/name`.
    Object(String),
}

impl ControlPlane {
    fn created(&self) -> std::sync::MutexGuard<'_, Vec<Created>> {
        self.created
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    /// Writes a static pod manifest into the kubelet's static pod directory (mounted into the
    /// harness at the same path), recorded for clean-up first. JSON is YAML; the file is
    /// written whole and renamed so the kubelet never reads half of it.
    pub fn write_static_pod(
        &self,
        path: &std::path::Path,
        pod: &serde_json::Value,
    ) -> Result<(), String> {
        let file = Created::File(path.to_path_buf());
        {
            let mut created = self.created();
            if !created.contains(&file) {
                created.push(file);
            }
        }
        crate::report::write_atomically(path, pod.to_string().as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Removes a static pod manifest this run wrote; a missing one is already removed.
    pub fn remove_static_pod(&self, path: &std::path::Path) -> Result<(), String> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
        }
        self.created()
            .retain(|c| *c != Created::File(path.to_path_buf()));
        Ok(())
    }
    pub fn track_object(&self, api_path: &str) {
        self.created().push(Created::Object(api_path.to_string()));
    }
    pub fn untrack_object(&self, api_path: &str) {
        self.created()
            .retain(|c| *c != Created::Object(api_path.to_string()));
    }

    /// Removes what tests left: files first, so the kubelet stops the static pods, then the
    /// API objects. One line per thing removed or not.
    fn remove_leftovers(&self) -> Vec<String> {
        let left = std::mem::take(&mut *self.created());
        let api = crate::controlplane::client::Client::new(&self.url);
        left.into_iter()
            .map(|c| match c {
                Created::File(p) => match std::fs::remove_file(&p) {
                    Ok(()) => format!("removed static pod file {}", p.display()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        format!("static pod file {} was already gone", p.display())
                    }
                    Err(e) => format!("could not remove static pod file {}: {e}", p.display()),
                },
                Created::Object(path) => {
                    match api.delete(&path, &serde_json::json!({"gracePeriodSeconds": 0})) {
                        Ok(()) => format!("deleted {path}"),
                        Err(e) => format!("could not delete {path}: {e}"),
                    }
                }
            })
            .collect()
    }
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

/// Whether the static pod directory is there for the harness to write into: on the node it is
/// the kubelet's, mounted into the harness's container at the same path.
pub fn is_mounted_dir(dir: &std::path::Path) -> bool {
    dir.is_dir()
}

/// A run id: unique enough to tell this run's containers from any other's.
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", nanos & 0xffff_ffff_ffff, std::process::id())
}

impl Services {
    pub fn new(
        run_id: String,
        workload_binary: PathBuf,
        api_port: u16,
        pod_image: Option<String>,
    ) -> Self {
        Self {
            run_id,
            workload_binary,
            pod_image,
            rt: OnceLock::new(),
            docker: OnceLock::new(),
            workload: OnceLock::new(),
            api_port,
            control_plane: OnceLock::new(),
        }
    }

    pub fn api_port(&self) -> u16 {
        self.api_port
    }

    /// The image the kubelet tests' pods run: the one named with --pod-image; else the test
    /// image this run loads into Docker, when an Engine answers; else the published workload
    /// image, which a node whose kubelet uses containerd imports beforehand.
    pub fn pod_image(&self, root: &RootFs) -> String {
        if let Some(image) = &self.pod_image {
            return image.clone();
        }
        match self.workload(root) {
            Ok(docker) => docker.image_tag(),
            Err(_) => format!("node-conformance-workload:{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// The local control plane on 127.0.0.1, started on first use. A taken port fails the
    /// tests that need it, naming the port.
    pub fn control_plane(&self) -> Result<&ControlPlane, Unavailable> {
        self.control_plane
            .get_or_init(|| {
                let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
                let running = self
                    .block_on(
                        Duration::from_secs(10),
                        crate::controlplane::start(ip, self.api_port),
                    )
                    .and_then(|r| r)
                    .map_err(|e| {
                        Unavailable::Broken(format!("cannot start the local control plane: {e}"))
                    })?;
                Ok(ControlPlane {
                    url: running.url(),
                    port: running.addr.port(),
                    store: std::sync::Arc::clone(&running.store),
                    running: std::sync::Mutex::new(Some(running)),
                    created: std::sync::Mutex::new(Vec::new()),
                })
            })
            .as_ref()
            .map_err(Clone::clone)
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
        let mut lines = Vec::new();
        if let Some(Ok(cp)) = self.control_plane.get() {
            lines.extend(cp.remove_leftovers());
            let running = cp
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(running) = running {
                match self.block_on(Duration::from_secs(10), running.stop()) {
                    Ok(Ok(())) => {
                        lines.push(format!("stopped the local control plane on {}", cp.url))
                    }
                    Ok(Err(e)) | Err(e) => {
                        lines.push(format!(
                            "the local control plane on {} did not stop: {e}",
                            cp.url
                        ));
                    }
                }
            }
        }
        let Some(Ok(docker)) = self.docker.get() else {
            return lines;
        };
        match self.block_on(Duration::from_secs(60), docker.cleanup()) {
            Ok((removed, failed)) => lines.extend(
                removed
                    .into_iter()
                    .map(|r| format!("removed {r}"))
                    .chain(failed.into_iter().map(|f| format!("could not remove {f}"))),
            ),
            Err(e) => lines.push(format!(
                "cleanup of run {} did not finish: {e}",
                self.run_id
            )),
        }
        lines
    }
}
