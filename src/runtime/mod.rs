//! Clients of the node's container runtimes, and the services built on them that tests share:
//! started once, on first use, and torn down by the runner whatever happened to the tests.

pub mod cri;
pub mod docker;
pub mod image;
pub mod kubelet;
pub mod recovery;

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
    /// `--kubelet-binary`, checked before the run.
    managed_plan: Option<kubelet::Plan>,
    managed: OnceLock<Result<kubelet::Managed, Unavailable>>,
    pod_workload: OnceLock<Result<PodWorkload, Unavailable>>,
    /// Directories this run made on the node for the pods' workload binary.
    workload_dirs: std::sync::Mutex<Vec<PathBuf>>,
}

/// Where the kubelet tests' pods find the workload.
#[derive(Debug, Clone)]
pub enum PodWorkload {
    /// An image holding it as its entrypoint: `--pod-image`, or the test image loaded into
    /// Docker.
    Image(String),
    /// The node's pause image, which every node that runs pods holds, with the harness's
    /// static binary from a directory on the node (a hostPath volume): nothing is imported
    /// into the runtime and no registry is involved.
    Pause { image: String, dir: PathBuf },
}

/// Where the workload binary's directory is mounted in a pause-image container.
const WORKLOAD_MOUNT: &str = "/node-conformance-workload";

impl PodWorkload {
    /// A container named `workload` that runs `node-conformance workload ARGS...`.
    pub fn container(&self, args: &[&str]) -> serde_json::Value {
        match self {
            Self::Image(image) => serde_json::json!({"name": "workload", "image": image,
                "imagePullPolicy": "Never", "args": args}),
            Self::Pause { image, .. } => serde_json::json!({"name": "workload", "image": image,
                "imagePullPolicy": "Never",
                "command": [format!("{WORKLOAD_MOUNT}/node-conformance"), "workload"],
                "args": args,
                "volumeMounts": [{"name": "node-conformance", "mountPath": WORKLOAD_MOUNT,
                    "readOnly": true}]}),
        }
    }

    /// The pod's volumes for [`PodWorkload::container`].
    pub fn volumes(&self) -> serde_json::Value {
        match self {
            Self::Image(_) => serde_json::json!([]),
            Self::Pause { dir, .. } => serde_json::json!([{"name": "node-conformance",
                "hostPath": {"path": dir, "type": "Directory"}}]),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Image(image) => format!("image {image}"),
            Self::Pause { image, dir } => format!(
                "the node's pause image {image} running {}/node-conformance (hostPath)",
                dir.display()
            ),
        }
    }
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
        managed_plan: Option<kubelet::Plan>,
    ) -> Self {
        Self {
            run_id,
            workload_binary,
            pod_image,
            managed_plan,
            managed: OnceLock::new(),
            pod_workload: OnceLock::new(),
            workload_dirs: std::sync::Mutex::new(Vec::new()),
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

    /// Whether the harness starts the kubelet itself (`--kubelet-binary`).
    pub fn manages_kubelet(&self) -> bool {
        self.managed_plan.is_some()
    }

    /// `v1.35.0`, as `--kubelet-binary --version` printed it; `None` without that flag.
    pub fn managed_kubelet_version(&self) -> Option<&str> {
        self.managed_plan.as_ref().map(|p| p.version.as_str())
    }

    /// The kubelet this run started, started on first use (after the control plane, and after
    /// the node's own kubelet configuration was read, so the tests of that never see this
    /// one). `None` without `--kubelet-binary`.
    pub fn managed_kubelet(
        &self,
        node: &crate::node::Node,
        namespace: &str,
    ) -> Option<Result<&kubelet::Managed, Unavailable>> {
        let plan = self.managed_plan.as_ref()?;
        let started = self.managed.get_or_init(|| {
            let cp = self.control_plane()?;
            let _ = node.kubelet();
            let socket = node
                .root
                .socket(&plan.endpoint)
                .map_err(|e| Unavailable::Broken(format!("the CRI endpoint: {e}")))?;
            let driver = self
                .block_on(Duration::from_secs(30), async {
                    let cri = cri::Cri::connect(&socket.connect_path()).await?;
                    cri.cgroup_driver().await
                })
                .and_then(|r| r)
                .map_err(|e| {
                    Unavailable::Broken(format!(
                        "the CRI runtime at {} does not answer: {e}",
                        plan.endpoint.display()
                    ))
                })?;
            let cgroup_driver = match driver {
                Some((d, source)) => (d.to_string(), source.to_string()),
                None => match node.kubelet().ok().and_then(|k| k.str("cgroupDriver")) {
                    Some(d) => (d.to_string(), "the node's kubelet configuration".into()),
                    None => ("cgroupfs".into(), "the kubelet's default".into()),
                },
            };
            let settings = kubelet::Settings {
                run_id: self.run_id.clone(),
                node_name: node.name().to_string(),
                api_url: cp.url.clone(),
                cgroup_driver,
            };
            kubelet::Managed::start(plan, &settings, namespace).map_err(Unavailable::Broken)
        });
        Some(started.as_ref().map_err(Clone::clone))
    }

    /// How the kubelet tests' pods run the workload: `--pod-image` when given; else the pause
    /// image of the CRI runtime the kubelet uses, with this run's binary placed in a hidden
    /// directory of the static pod directory (`manifests`: where the harness writes it, and
    /// the same directory as a node path), which the kubelet does not read; else the test
    /// image loaded into Docker; else the published workload image.
    pub fn pod_workload(
        &self,
        node: &crate::node::Node,
        manifests: (&std::path::Path, &std::path::Path),
    ) -> Result<&PodWorkload, Unavailable> {
        self.pod_workload
            .get_or_init(|| {
                if let Some(image) = &self.pod_image {
                    return Ok(PodWorkload::Image(image.clone()));
                }
                let found = match &self.managed_plan {
                    Some(plan) => vec![(plan.endpoint.clone(), node.root.socket(&plan.endpoint))],
                    None => endpoints::discover_with(
                        &node.root,
                        Kind::Cri,
                        node.kubelet()
                            .ok()
                            .and_then(|k| k.str("containerRuntimeEndpoint")),
                    )
                    .into_iter()
                    .map(|f| (f.path(), f.socket))
                    .collect(),
                };
                let mut why = Vec::new();
                for (path, socket) in found {
                    let Ok(socket) = socket else { continue };
                    let pause = self
                        .block_on(Duration::from_secs(30), async {
                            let cri = cri::Cri::connect(&socket.connect_path()).await?;
                            let configured = cri.config().await.ok().flatten();
                            let images = cri.images().await?;
                            cri::pause_image(
                                &images,
                                configured.as_ref().and_then(cri::configured_sandbox_image),
                            )
                        })
                        .and_then(|r| r);
                    match pause {
                        Ok(image) => {
                            let dir = self.place_workload(manifests)?;
                            return Ok(PodWorkload::Pause { image, dir });
                        }
                        Err(e) => why.push(format!("{}: {e}", path.display())),
                    }
                }
                if self.managed_plan.is_some() {
                    return Err(Unavailable::Broken(format!(
                        "no pause image to run the pods in: {}",
                        why.join("; ")
                    )));
                }
                Ok(match self.workload(&node.root) {
                    Ok(docker) => PodWorkload::Image(docker.image_tag()),
                    Err(_) => PodWorkload::Image(format!(
                        "node-conformance-workload:{}",
                        env!("CARGO_PKG_VERSION")
                    )),
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Copies the static workload binary to `.node-conformance-<run id>/node-conformance` in
    /// the static pod directory; returns the directory as a node path.
    fn place_workload(
        &self,
        (local, node_path): (&std::path::Path, &std::path::Path),
    ) -> Result<PathBuf, Unavailable> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        // create_new: never through a file or symlink planted at the name.
        let binary =
            image::read_static_binary(&self.workload_binary).map_err(Unavailable::Absent)?;
        let name = format!(".node-conformance-{}", self.run_id);
        let dir = local.join(&name);
        let fail = |e: std::io::Error| {
            Unavailable::Broken(format!(
                "cannot place the workload binary in {}: {e}",
                dir.display()
            ))
        };
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&dir)
            .map_err(fail)?;
        self.workload_dirs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(dir.clone());
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(dir.join("node-conformance"))
            .map_err(fail)?;
        std::io::Write::write_all(&mut file, &binary).map_err(fail)?;
        Ok(node_path.join(name))
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

    /// Removes what runs of the harness that are no longer alive left on the node: their
    /// static pod files and workload directory in the static pod directory (`manifests`, as
    /// the harness reaches it), their managed kubelets' work dirs and pods, their Docker
    /// containers and images. One line per thing removed or not.
    pub fn recover(
        &self,
        node: &crate::node::Node,
        rootfs: &std::path::Path,
        manifests: &std::path::Path,
    ) -> Vec<String> {
        let mut lines = recovery::static_pod_dir(manifests);
        if let Ok(host) = kubelet::Host::detect(rootfs) {
            for (id, work) in recovery::dead_work_dirs(&host) {
                let (state, done) = kubelet::recover(&host, &work);
                lines.extend(
                    done.into_iter()
                        .map(|l| format!("{l} (left by run {id}, no longer running)")),
                );
                let Some(state) = state else { continue };
                lines.extend(self.remove_sandboxes(
                    &host.local(&state.endpoint),
                    kubelet::namespace_labels(&state.namespace),
                    |_| true,
                    &format!("dead run {id}"),
                    true,
                ));
            }
        }
        // Only where an Engine is there to ask: a node without Docker costs no connection. A
        // connection of its own: the tests' (self.docker) is not held up by this one. An
        // Engine that does not answer in time is said to have not been looked at: what dead
        // runs left there stays for a later run, and the run says so.
        let Some(socket) = endpoints::discover(&node.root, Kind::Docker)
            .into_iter()
            .find_map(|f| f.socket.ok())
        else {
            return lines;
        };
        let not_looked = |why: String| {
            format!("could not look for what dead runs left in the Docker Engine: {why}")
        };
        let docker = match self.block_on(
            Duration::from_secs(30),
            docker::Docker::connect(socket, &self.run_id),
        ) {
            Ok(Ok(docker)) => docker,
            Ok(Err(e)) | Err(e) => {
                lines.push(not_looked(e));
                return lines;
            }
        };
        let runs = match self.block_on(Duration::from_secs(60), docker.labelled_runs()) {
            Ok(Ok(runs)) => runs,
            Ok(Err(e)) | Err(e) => {
                lines.push(not_looked(e));
                return lines;
            }
        };
        for id in runs
            .into_iter()
            .filter(|id| *id != self.run_id && !recovery::is_alive(id))
        {
            match self.block_on(Duration::from_secs(60), docker.remove_run(&id)) {
                Ok((removed, failed)) => {
                    lines.extend(
                        removed
                            .into_iter()
                            .map(|r| format!("removed {r} (left by run {id}, no longer running)")),
                    );
                    lines.extend(
                        failed
                            .into_iter()
                            .map(|f| format!("could not remove {f} (left by run {id})")),
                    );
                }
                Err(e) => lines.push(format!(
                    "could not remove what run {id} left in the Docker Engine: {e}"
                )),
            }
        }
        lines
    }

    /// Stops and removes, through the CRI socket at `socket` (as the harness reaches it), the
    /// pod sandboxes (and so their containers) that `labels` selects and `pick` admits: what a
    /// stopped kubelet leaves in the runtime. `whose` names them in the lines, one per sandbox.
    fn remove_sandboxes(
        &self,
        socket: &std::path::Path,
        labels: std::collections::HashMap<String, String>,
        pick: impl Fn(&cri::PodSandbox) -> bool,
        whose: &str,
        settle: bool,
    ) -> Vec<String> {
        let socket = socket.display().to_string();
        let removed = self.block_on(Duration::from_secs(120), async {
            let cri = cri::Cri::connect(&socket).await?;
            let mut lines = Vec::new();
            // A kubelet stopped mid-way leaves sandboxes the runtime is still creating, listed
            // only once made: looked for again until two looks 2 s apart find none (at most
            // 12 s), always with `settle`, else when the first look found some (pods were
            // still being made).
            let (mut quiet, mut looks, mut settle) = (0, 0, settle);
            loop {
                let found: Vec<cri::PodSandbox> = cri
                    .sandboxes(labels.clone())
                    .await?
                    .into_iter()
                    .filter(|s| pick(s))
                    .collect();
                quiet = if found.is_empty() { quiet + 1 } else { 0 };
                settle |= looks == 0 && !found.is_empty();
                for sandbox in found {
                    let name = sandbox.metadata.map_or(String::new(), |m| m.name);
                    lines.push(match cri.remove_sandbox(&sandbox.id).await {
                        Ok(()) => format!("removed pod sandbox {name} ({}) of {whose}", sandbox.id),
                        Err(e) => format!("could not remove pod sandbox {name} of {whose}: {e}"),
                    });
                }
                // A container the kubelet was creating when its sandbox went outlives it;
                // found by its pod's labels, where the sandboxes are selected by label.
                if !labels.is_empty() {
                    for container in cri.containers(labels.clone()).await? {
                        quiet = 0;
                        lines.push(match cri.remove_container(&container.id).await {
                            Ok(()) => format!("removed container {} of {whose}", container.id),
                            Err(e) => format!(
                                "could not remove container {} of {whose}: {e}",
                                container.id
                            ),
                        });
                    }
                }
                looks += 1;
                if !settle || quiet >= 2 || looks >= 6 {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Ok::<_, String>(lines)
        });
        match removed {
            Ok(Ok(lines)) => lines,
            Ok(Err(e)) | Err(e) => vec![format!(
                "could not remove the pod sandboxes of {whose}: {e}"
            )],
        }
    }

    /// Removes everything this run created in the runtimes. Returns one line per thing
    /// removed or left behind.
    pub fn shutdown(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(Ok(cp)) = self.control_plane.get() {
            lines.extend(cp.remove_leftovers());
        }
        if let Some(Ok(managed)) = self.managed.get() {
            lines.push(managed.stop());
            lines.extend(self.remove_sandboxes(
                &managed.plan.host.local(&managed.plan.endpoint),
                std::collections::HashMap::new(),
                |s| kubelet::made_by(managed, s),
                "this run's kubelet",
                false,
            ));
            lines.extend(managed.clean());
        }
        for dir in std::mem::take(
            &mut *self
                .workload_dirs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ) {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => lines.push(format!("removed {}", dir.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => lines.push(format!("could not remove {}: {e}", dir.display())),
            }
        }
        if let Some(Ok(cp)) = self.control_plane.get() {
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
