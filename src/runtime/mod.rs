//! Clients of the node's container runtimes, and the services built on them that tests share:
//! started once, on first use, and torn down by the runner whatever happened to the tests.

pub mod credentials;
pub mod cri;
pub mod docker;
pub mod image;
pub mod kubelet;
pub mod nodefs;
pub mod recovery;
pub mod registry;
pub mod state;

use std::future::Future;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::controlplane::client::{Client, Credentials};
use crate::node::rootfs::RootFs;
use crate::node::runtime::{self as endpoints, Kind};

use credentials::{Authority, Profile, RunCredentials};
use nodefs::Writable;

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
    test_image: OnceLock<Result<std::sync::Arc<image::TestImage>, Unavailable>>,
    registry: OnceLock<Result<registry::Registry, Unavailable>>,
    /// The CRI endpoints (node paths) the kubelet under test may have pulled from the
    /// registry through.
    pull_endpoints: std::sync::Mutex<Vec<PathBuf>>,
    api: ApiOptions,
    pod_image: Option<String>,
    control_plane: OnceLock<Result<ControlPlane, Unavailable>>,
    /// The static pod directory the kubelet under test reads, writable through the node's
    /// root: the managed kubelet's, else the node kubelet's.
    static_pods: OnceLock<Result<Writable, Unavailable>>,
    /// [`ApiOptions::ca`], taken when the control plane starts.
    attach_ca: std::sync::Mutex<Option<Authority>>,
    /// Its certificate (DER), which an attached kubelet's kubeconfig must trust.
    attach_ca_der: Option<Vec<u8>>,
    /// `--kubelet-binary`, checked before the run.
    managed_plan: Option<kubelet::Plan>,
    managed: OnceLock<Result<kubelet::Managed, Unavailable>>,
    pod_workload: OnceLock<Result<PodWorkload, Unavailable>>,
    /// Directories this run made on the node for the pods' workload binary (node paths in
    /// the static pod directory).
    workload_dirs: std::sync::Mutex<Vec<PathBuf>>,
}

/// How the local control plane is served.
#[derive(Debug, Default)]
pub struct ApiOptions {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Plain HTTP without authentication (`--insecure-http`).
    pub insecure_http: bool,
    /// The CA to serve with and to accept kubelets' client certificates of: the one
    /// `kubelet-config` made for an attached kubelet; a new one when `None`.
    pub ca: Option<Authority>,
    /// The address to serve on; 127.0.0.1 when `None`.
    pub bind: Option<std::net::IpAddr>,
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

    /// The command that runs `node-conformance workload` in its container, to which a test
    /// adds the actions itself (where upstream's test sets a command, not args).
    pub fn command(&self) -> Vec<String> {
        match self {
            Self::Image(_) => vec!["/node-conformance".into(), "workload".into()],
            Self::Pause { .. } => vec![
                format!("{WORKLOAD_MOUNT}/node-conformance"),
                "workload".into(),
            ],
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
    /// Its CA and what the harness authenticates with; `None` when served over plain HTTP.
    pub credentials: Option<RunCredentials>,
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
    /// Writes a static pod manifest into the kubelet's static pod directory `dir` (writable
    /// through the node's root), recorded for clean-up first. JSON is YAML; the file is
    /// written whole and renamed so the kubelet never reads half of it. `path` is a node path
    /// in `dir`.
    pub fn write_static_pod(
        &self,
        dir: &Writable,
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
        dir.write_replace(path, pod.to_string().as_bytes(), 0o600)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Removes a static pod manifest this run wrote; a missing one is already removed.
    pub fn remove_static_pod(&self, dir: &Writable, path: &std::path::Path) -> Result<(), String> {
        match dir.remove_file(path) {
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

    /// A client of the API with the harness's own credentials.
    pub fn client(&self) -> Client {
        Client::with_credentials(&self.url, &self.admin_credentials())
    }

    /// The harness's own credentials: its bearer token, and the CA the API serves with.
    pub fn admin_credentials(&self) -> Credentials {
        self.credentials
            .as_ref()
            .map(|c| Credentials {
                ca: Some(c.ca.cert().cert_pem.clone()),
                token: Some(c.admin_token.clone()),
                certificate: None,
            })
            .unwrap_or_default()
    }

    /// Removes what tests left: files first (through `static_pods`, the static pod directory
    /// writable), so the kubelet stops the static pods, then the API objects. One line per
    /// thing removed or not.
    fn remove_leftovers(&self, static_pods: Option<&Writable>) -> Vec<String> {
        let left = std::mem::take(&mut *self.created());
        let api = self.client();
        left.into_iter()
            .map(|c| match c {
                Created::File(p) => match static_pods.map(|d| d.remove_file(&p)) {
                    Some(Ok(())) => format!("removed static pod file {}", p.display()),
                    Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                        format!("static pod file {} was already gone", p.display())
                    }
                    Some(Err(e)) => {
                        format!("could not remove static pod file {}: {e}", p.display())
                    }
                    None => format!(
                        "could not remove static pod file {}: its directory cannot be written",
                        p.display()
                    ),
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

/// What a managed kubelet is given: a kubeconfig for the control plane `cp` with a client
/// certificate of the run's CA (user `system:node:<node>`, group `system:nodes`, as a kubelet's
/// own), and a serving certificate of that CA for its server, which accepts only client
/// certificates of that CA.
fn kubelet_settings(
    cp: &ControlPlane,
    run_id: &str,
    node_name: &str,
    cgroup_driver: (String, String),
) -> Result<kubelet::Settings, String> {
    let days = credentials::RUN_VALIDITY_DAYS;
    // Without the run's CA the kubelet's server would have no client to trust but anyone.
    let Some(creds) = &cp.credentials else {
        return Err(
            "a kubelet started by the harness needs the authenticated control plane: drop \
             --insecure-http"
                .to_string(),
        );
    };
    let client = creds.ca.issue(
        &Profile::Client {
            user: format!("system:node:{node_name}"),
            groups: vec!["system:nodes".into()],
        },
        days,
    )?;
    let loopback = vec![
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    ];
    let serving = creds
        .ca
        .issue(
            &Profile::Server {
                dns: vec![node_name.to_string(), "localhost".into()],
                ips: loopback.clone(),
            },
            days,
        )
        .or_else(|_| {
            // A node name that is not a DNS name cannot be a SAN; the kubelet is reached at
            // 127.0.0.1 anyway.
            creds.ca.issue(
                &Profile::Server {
                    dns: vec!["localhost".into()],
                    ips: loopback,
                },
                days,
            )
        })?;
    Ok(kubelet::Settings {
        harness_client: (
            creds.kubelet_client.cert_pem.clone(),
            creds.kubelet_client.key_pem.clone(),
        ),
        run_id: run_id.to_string(),
        node_name: node_name.to_string(),
        kubeconfig: credentials::kubeconfig(
            &cp.url,
            &creds.ca.cert().cert_pem,
            &credentials::User::Certificate {
                cert_pem: &client.cert_pem,
                key_pem: &client.key_pem,
            },
        ),
        client_ca: creds.ca.cert().cert_pem.clone(),
        serving: (serving.cert_pem, serving.key_pem),
        cgroup_driver,
    })
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
        api: ApiOptions,
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
            test_image: OnceLock::new(),
            registry: OnceLock::new(),
            pull_endpoints: std::sync::Mutex::new(Vec::new()),
            api: ApiOptions { ca: None, ..api },
            attach_ca_der: api.ca.as_ref().map(|ca| ca.cert().cert_der.clone()),
            attach_ca: std::sync::Mutex::new(api.ca),
            control_plane: OnceLock::new(),
            static_pods: OnceLock::new(),
        }
    }

    pub fn api_port(&self) -> u16 {
        self.api.port
    }

    /// The certificate (DER) of the CA `kubelet-config` made, which the control plane serves
    /// with for an attached kubelet; `None` when there is none.
    pub fn attach_ca(&self) -> Option<&[u8]> {
        self.attach_ca_der.as_deref()
    }

    /// Whether the API is served over plain HTTP, without authentication.
    pub fn insecure_http(&self) -> bool {
        self.api.insecure_http
    }

    /// Whether the harness starts the kubelet itself (`--kubelet-binary`).
    pub fn manages_kubelet(&self) -> bool {
        self.managed_plan.is_some()
    }

    /// `v1.35.0`, as `--kubelet-binary --version` printed it; `None` without that flag.
    pub fn managed_kubelet_version(&self) -> Option<&str> {
        self.managed_plan.as_ref().map(|p| p.version.as_str())
    }

    /// The log of the kubelet this run started (its last 64 MiB), if it started one.
    pub fn kubelet_log(&self) -> Option<Vec<u8>> {
        let m = self.managed.get()?.as_ref().ok()?;
        Some(m.log(64 << 20))
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
            let settings = kubelet_settings(cp, &self.run_id, node.name(), cgroup_driver)
                .map_err(Unavailable::Broken)?;
            kubelet::Managed::start(&node.root, plan, &settings, namespace)
                .map_err(Unavailable::Broken)
        });
        Some(started.as_ref().map_err(Clone::clone))
    }

    /// How the kubelet tests' pods run the workload: `--pod-image` when given; else the pause
    /// image of the CRI runtime the kubelet uses, with this run's binary placed in a hidden
    /// directory of the static pod directory ([`Services::static_pod_dir`]), which the
    /// kubelet does not read; else the test
    /// image loaded into Docker; else the published workload image.
    pub fn pod_workload(&self, node: &crate::node::Node) -> Result<&PodWorkload, Unavailable> {
        self.pod_workload
            .get_or_init(|| {
                if let Some(image) = &self.pod_image {
                    return Ok(PodWorkload::Image(image.clone()));
                }
                let found = self.kubelet_cri_endpoints(node);
                let mut why = Vec::new();
                for (path, socket) in found {
                    let Ok(socket) = socket else { continue };
                    if let Err(e) = nodefs::trusted_socket(&node.root, &path) {
                        why.push(e);
                        continue;
                    }
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
                            let dir = self.place_workload(self.static_pod_dir(node)?)?;
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

    /// The CRI endpoints of the kubelet under test, as node paths with their sockets: the
    /// managed kubelet's, else the node kubelet's `containerRuntimeEndpoint` or the known
    /// ones.
    fn kubelet_cri_endpoints(
        &self,
        node: &crate::node::Node,
    ) -> Vec<(
        PathBuf,
        Result<crate::node::rootfs::SocketHandle, crate::node::rootfs::FsError>,
    )> {
        match &self.managed_plan {
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
        }
    }

    /// Copies the static workload binary to `.node-conformance-<run id>/node-conformance` in
    /// the static pod directory `dir`; returns the directory as a node path.
    fn place_workload(&self, dir: &Writable) -> Result<PathBuf, Unavailable> {
        let binary =
            image::read_static_binary(&self.workload_binary).map_err(Unavailable::Absent)?;
        let path = dir
            .base()
            .join(format!(".node-conformance-{}", self.run_id));
        let fail = |e: std::io::Error| {
            Unavailable::Broken(format!(
                "cannot place the workload binary in {}: {e}",
                path.display()
            ))
        };
        dir.mkdir(&path, 0o755).map_err(fail)?;
        self.workload_dirs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(path.clone());
        // A new file: never through a file or symlink planted at the name.
        dir.write_new(&path.join("node-conformance"), &binary, 0o755)
            .map_err(fail)?;
        Ok(path)
    }

    /// The static pod directory of the kubelet under test, writable through the node's root:
    /// the managed kubelet's, else the node kubelet's (`--pod-manifest-path`, else its
    /// `staticPodPath`). `Absent` says why it cannot be written.
    pub fn static_pod_dir(&self, node: &crate::node::Node) -> Result<&Writable, Unavailable> {
        self.static_pods
            .get_or_init(|| {
                if let Some(Ok(m)) = self.managed.get() {
                    return m.node.subdir(&m.manifests).map_err(|e| {
                        Unavailable::Broken(format!("{}: {e}", m.manifests.display()))
                    });
                }
                let dir = node.pod_manifest_dir();
                // Written into as root: only where no other user can have chosen where.
                node.root
                    .open_dir("/")
                    .map_err(|e| e.to_string())
                    .and_then(|root| nodefs::trusted_dir(&root, &dir))
                    .map_err(|e| {
                        Unavailable::Absent(format!(
                            "the static pod directory {} is not written into as root: {e}",
                            dir.display()
                        ))
                    })?;
                Writable::node_dir(&node.root, &dir).map_err(|e| {
                    Unavailable::Absent(format!("the static pod directory cannot be written: {e}"))
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The local control plane on 127.0.0.1, started on first use. A taken port fails the
    /// tests that need it, naming the port.
    pub fn control_plane(&self) -> Result<&ControlPlane, Unavailable> {
        self.control_plane
            .get_or_init(|| {
                let broken = |e: String| {
                    Unavailable::Broken(format!("cannot start the local control plane: {e}"))
                };
                let (serving, credentials) = if self.api.insecure_http {
                    (crate::controlplane::Serving::Insecure, None)
                } else {
                    let ca = self
                        .attach_ca
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .take();
                    let bind: Vec<_> = self
                        .api
                        .bind
                        .filter(|ip| !ip.is_unspecified() && !ip.is_loopback())
                        .into_iter()
                        .collect();
                    let creds = RunCredentials::new(ca, &bind).map_err(broken)?;
                    (
                        crate::controlplane::Serving::Secure(creds.security()),
                        Some(creds),
                    )
                };
                let running = self
                    .block_on(
                        Duration::from_secs(10),
                        crate::controlplane::start(
                            self.api.bind.unwrap_or(crate::controlplane::DEFAULT_BIND),
                            self.api.port,
                            serving,
                        ),
                    )
                    .and_then(|r| r)
                    .map_err(broken)?;
                Ok(ControlPlane {
                    url: running.url(),
                    port: running.addr.port(),
                    store: std::sync::Arc::clone(&running.store),
                    credentials,
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

    /// The test image made from the workload binary, once: its layer and config are shared by
    /// the Docker load and the registry.
    pub fn test_image(&self) -> Result<&std::sync::Arc<image::TestImage>, Unavailable> {
        self.test_image
            .get_or_init(|| {
                let binary = image::read_static_binary(&self.workload_binary)
                    .map_err(Unavailable::Absent)?;
                image::TestImage::new(binary, &self.run_id)
                    .map(std::sync::Arc::new)
                    .map_err(|e| Unavailable::Broken(format!("cannot make the test image: {e}")))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The run's image registry on 127.0.0.1 serving the test image ([`registry::Registry`]),
    /// started on first use and stopped at the end of the run; the images the runtime pulled
    /// from it are removed then ([`Services::shutdown`]).
    pub fn registry(&self, node: &crate::node::Node) -> Result<&registry::Registry, Unavailable> {
        self.registry
            .get_or_init(|| {
                // Where the kubelet pulls, for the clean-up to look.
                *self
                    .pull_endpoints
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = self
                    .kubelet_cri_endpoints(node)
                    .into_iter()
                    .map(|(path, _)| path)
                    .collect();
                let image = std::sync::Arc::clone(self.test_image()?);
                self.block_on(
                    Duration::from_secs(10),
                    registry::Registry::start(image, &self.run_id),
                )
                .and_then(|r| r)
                .map_err(|e| Unavailable::Broken(format!("cannot start the image registry: {e}")))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Docker with the test image loaded, for the tests that run containers.
    pub fn workload(&self, root: &RootFs) -> Result<&docker::Docker, Unavailable> {
        let docker = self.docker(root)?;
        self.workload
            .get_or_init(|| {
                let test_image = self.test_image()?;
                self.block_on(Duration::from_secs(120), docker.load_workload(test_image))
                    .and_then(|r| r)
                    .map_err(Unavailable::Broken)
            })
            .clone()
            .map(|()| docker)
    }

    /// Removes what runs of the harness that are no longer alive left on the node, all
    /// through its root: their static pod files and workload directory in the node kubelet's
    /// static pod directory, their run directories (kubelet, pods, kernel tunables, pod logs;
    /// only what [`kubelet::recover`] believes), their Docker containers and images. One line
    /// per thing removed, left or ignored.
    pub fn recover(&self, node: &crate::node::Node) -> Vec<String> {
        let fs = &node.root;
        let mut lines = recovery::ignored_legacy_state(fs);
        // The node is opened for writing only when a dead run left something: a run on a node
        // no run died on writes nothing and reads nothing beyond these two directories.
        let manifests = node.pod_manifest_dir();
        let found = recovery::dead_static_pod_files(fs, &manifests);
        if !found.is_empty() {
            match Writable::node_dir(fs, &manifests) {
                Ok(w) => lines.extend(recovery::remove_static_pod_files(fs, &w, &found)),
                Err(e) => lines.push(format!(
                    "could not remove what dead runs left in {}: {e}",
                    manifests.display()
                )),
            }
        }
        let (dead, ignored) = recovery::dead_runs(fs);
        lines.extend(ignored);
        if !dead.is_empty() {
            match Writable::node_root(fs) {
                Ok(w) => {
                    let host = kubelet::Host::detect(fs).ok();
                    for id in dead {
                        let said = |l: String| format!("{l} (left by run {id}, no longer running)");
                        let (dead, done) = kubelet::recover(fs, &w, &id);
                        lines.extend(done.into_iter().map(said));
                        let kubelet::Dead::Believed(state) = dead else {
                            continue;
                        };
                        // Its pods first, as a run's own end does: a pod still starting must
                        // not lose its mounts and files under the kubelet's root dir.
                        if let Some(endpoint) = state.as_ref().and_then(|s| s.endpoint.as_ref()) {
                            let namespace = state::namespace(&id);
                            lines.extend(match fs.socket(endpoint) {
                                Ok(socket) => self.remove_sandboxes(
                                    &socket,
                                    kubelet::namespace_labels(&namespace),
                                    |_| true,
                                    &format!("dead run {id}"),
                                    true,
                                ),
                                Err(e) => vec![format!(
                                    "could not remove the pod sandboxes of dead run {id}: {e}"
                                )],
                            });
                            lines.extend(self.remove_pulled(
                                fs,
                                std::slice::from_ref(endpoint),
                                &id,
                                &format!("dead run {id}"),
                            ));
                        }
                        lines.extend(
                            kubelet::finish_recovery(fs, host.as_ref(), &w, &id, state.as_ref())
                                .into_iter()
                                .map(said),
                        );
                    }
                }
                Err(e) => lines.push(format!(
                    "could not remove what dead runs left in {}: {e}",
                    state::RUNS_DIR
                )),
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
        socket: &crate::node::rootfs::SocketHandle,
        labels: std::collections::HashMap<String, String>,
        pick: impl Fn(&cri::PodSandbox) -> bool,
        whose: &str,
        settle: bool,
    ) -> Vec<String> {
        let socket = socket.connect_path();
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

    /// Removes, through the CRI sockets at `endpoints` (node paths), the images pulled from the
    /// registry of run `run_id` ([`registry::pulled_in_run`]), each with all its references.
    /// `whose` names the run in the lines, one per image removed or left.
    fn remove_pulled(
        &self,
        fs: &RootFs,
        endpoints: &[PathBuf],
        run_id: &str,
        whose: &str,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        for endpoint in endpoints {
            // A socket that is not there pulled nothing.
            let Ok(socket) = fs.socket(endpoint) else {
                continue;
            };
            let path = socket.connect_path();
            let done = self.block_on(Duration::from_secs(60), async {
                let cri = cri::Cri::connect(&path).await?;
                let mut lines = Vec::new();
                for image in cri.images().await? {
                    let mut references = image.repo_tags.clone();
                    references.extend(image.repo_digests.iter().cloned());
                    if !registry::pulled_in_run(&references, run_id) {
                        continue;
                    }
                    let shown = references.join(", ");
                    lines.push(match cri.remove_image(&image.id).await {
                        Ok(()) => format!("removed image {shown} of {whose}"),
                        Err(e) => format!("could not remove image {shown} of {whose}: {e}"),
                    });
                }
                Ok::<_, String>(lines)
            });
            match done {
                Ok(Ok(l)) => lines.extend(l),
                Ok(Err(e)) | Err(e) => lines.push(format!(
                    "could not remove the images {whose} pulled through {}: {e}",
                    endpoint.display()
                )),
            }
        }
        lines
    }

    /// Removes everything this run created in the runtimes. Returns one line per thing
    /// removed or left behind.
    pub fn shutdown(&self, fs: &RootFs) -> Vec<String> {
        let mut lines = Vec::new();
        let static_pods = self.static_pods.get().and_then(|d| d.as_ref().ok());
        if let Some(Ok(cp)) = self.control_plane.get() {
            lines.extend(cp.remove_leftovers(static_pods));
        }
        let managed = self.managed.get().and_then(|m| m.as_ref().ok());
        if let Some(managed) = managed {
            lines.push(managed.stop());
            lines.extend(match fs.socket(&managed.plan.endpoint) {
                Ok(socket) => self.remove_sandboxes(
                    &socket,
                    std::collections::HashMap::new(),
                    |s| kubelet::made_by(managed, s),
                    "this run's kubelet",
                    false,
                ),
                Err(e) => vec![format!(
                    "could not remove the pod sandboxes of this run's kubelet: {e}"
                )],
            });
        }
        // After the kubelet stopped: its pods ran the binary from there.
        for dir in std::mem::take(
            &mut *self
                .workload_dirs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ) {
            match static_pods.map(|d| d.remove_all(&dir)) {
                Some(Ok(())) => lines.push(format!("removed {}", dir.display())),
                Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
                Some(Err(e)) => lines.push(format!("could not remove {}: {e}", dir.display())),
                None => {}
            }
        }
        // After the pods that ran them are gone.
        if let Some(Ok(registry)) = self.registry.get() {
            registry.stop();
            let endpoints = std::mem::take(
                &mut *self
                    .pull_endpoints
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            lines.extend(self.remove_pulled(fs, &endpoints, &self.run_id, "this run"));
        }
        if let Some(managed) = managed {
            lines.extend(managed.clean(fs));
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
