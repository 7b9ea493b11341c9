//! A kubelet the harness starts itself (`--kubelet-binary`), as upstream's node e2e framework
//! does (test/e2e_node/services/kubelet.go): pointed at the local control plane, with a root
//! dir, static pod dir and KubeletConfiguration of its own under one work directory on the
//! node, in the host's namespaces, and stopped with everything it made removed at the end.
//!
//! Its configuration keeps it from changing the node: no iptables chains, no QoS cgroups, no
//! flexvolume directory of its own in /usr/libexec, its servers on loopback only. What it
//! still changes (the kernel tunables it sets at start, pod log directories) is put back.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::node::rootfs::{FileKind, RootFs};

use super::nodefs::Writable;
use super::state::{self, KubeletProcess, RunState};

/// The ports a kubelet serves on: its API, and its healthz on loopback.
pub const PORTS: [u16; 2] = [10250, 10248];

/// The kernel tunables a kubelet sets when it starts (`setupKernelTunables` in
/// pkg/kubelet/cm/container_manager_linux.go), restored afterwards: the only files under
/// /proc/sys a run writes, a dead run's included.
pub const KERNEL_TUNABLES: [&str; 6] = [
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
];

/// How the harness runs a process on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// The harness runs on the node: its root fs is `/`.
    Same,
    /// The harness runs in a container in the host's PID namespace: a process for the node
    /// enters the namespaces of this host process (PID 1, whose root is the node's on every
    /// node; else the first process whose root is), found in the node's /proc.
    Process(u32),
}

fn same_inode(a: &OwnedFd, b: &OwnedFd) -> bool {
    match (rustix::fs::fstat(a), rustix::fs::fstat(b)) {
        (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
        _ => false,
    }
}

impl Host {
    /// How the harness reaches the node whose root fs is `fs`, from the node's own /proc (in
    /// the root fs): a root fs that is not this machine's `/` needs the host's PID namespace
    /// and a host process with that root. `Err` says what to add.
    pub fn detect(fs: &RootFs) -> Result<Self, String> {
        if fs.dir() == Path::new("/") {
            return Ok(Self::Same);
        }
        let theirs = fs.read_link("/proc/1/ns/pid").map_err(|e| {
            format!(
                "the root fs {} is not this machine's root and its /proc cannot be read ({e}): \
                 to act on the node from a container, mount the host's / at it and run in the \
                 host's PID namespace (docker run --pid=host --privileged)",
                fs.dir().display()
            )
        })?;
        // Only in the same PID namespace do the node's process ids mean the same processes to
        // the harness (a kubelet it starts, a pid a dead run wrote down).
        if std::fs::read_link("/proc/self/ns/pid").ok().as_deref() != Some(theirs.as_path()) {
            return Err(
                "the harness does not run in the node's PID namespace: run its container with \
                 --pid=host (and --privileged) to start or stop processes on the node"
                    .to_string(),
            );
        }
        let root = fs
            .open_dir("/")
            .map_err(|e| format!("the root fs {}: {e}", fs.dir().display()))?;
        let has_root = |pid: u32| {
            fs.open_proc_entry(pid, "root", rustix::fs::OFlags::PATH)
                .is_ok_and(|r| same_inode(&r, &root))
        };
        if has_root(1) {
            return Ok(Self::Process(1));
        }
        let mut pids: Vec<u32> = fs
            .read_dir("/proc")
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n.to_str()?.parse().ok())
            .collect();
        pids.sort_unstable();
        let own = std::process::id();
        if let Some(pid) = pids.into_iter().find(|p| *p != own && has_root(*p)) {
            return Ok(Self::Process(pid));
        }
        Err(format!(
            "no process of the node has the root fs {} as its root: mount the host's / there",
            fs.dir().display()
        ))
    }

    /// A node path to the host process's /proc entries, for messages and reads through `fs`.
    fn proc_path(&self, entry: &str) -> String {
        match self {
            Self::Same => format!("/proc/self/{entry}"),
            Self::Process(pid) => format!("/proc/{pid}/{entry}"),
        }
    }

    /// A command that runs `program` (a node path) on the node: in the host process's mount,
    /// network, UTS, IPC and cgroup namespaces where they are not already this process's.
    pub fn command(&self, fs: &RootFs, program: &Path) -> io::Result<Command> {
        let mut cmd = Command::new(program);
        if let Self::Process(pid) = self {
            let mut enter: Vec<OwnedFd> = Vec::new();
            for ns in ["mnt", "net", "uts", "ipc", "cgroup"] {
                let theirs = fs.read_link(format!("/proc/{pid}/ns/{ns}")).ok();
                if theirs.is_some()
                    && theirs == std::fs::read_link(format!("/proc/self/ns/{ns}")).ok()
                {
                    continue;
                }
                enter.push(
                    fs.open_proc_entry(*pid, &format!("ns/{ns}"), rustix::fs::OFlags::RDONLY)
                        .map_err(|e| io::Error::other(e.to_string()))?,
                );
            }
            // SAFETY: only the setns system call runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    for fd in &enter {
                        rustix::thread::move_into_link_name_space(
                            std::os::fd::AsFd::as_fd(fd),
                            None,
                        )?;
                    }
                    Ok(())
                });
            }
        }
        Ok(cmd)
    }
}

/// The process listening on a TCP port of the node's network namespace (the host process's),
/// if any: `(pid, name)`, or `None` for the pid when the socket's owner cannot be seen. Read
/// from the node's /proc.
pub fn listener(fs: &RootFs, host: &Host, port: u16) -> Option<(Option<u32>, String)> {
    let mut inodes = Vec::new();
    for table in ["net/tcp", "net/tcp6"] {
        let Ok(text) = fs.read_to_string(host.proc_path(table), FileKind::Kernel) else {
            continue;
        };
        inodes.extend(listening_inodes(&text, port));
    }
    if inodes.is_empty() {
        return None;
    }
    let owner = fs.read_dir("/proc").ok()?.iter().find_map(|p| {
        let pid: u32 = p.to_str()?.parse().ok()?;
        let fds = fs.read_dir(format!("/proc/{pid}/fd")).ok()?;
        let owns = fds.iter().any(|fd| {
            fs.read_link(Path::new("/proc").join(pid.to_string()).join("fd").join(fd))
                .is_ok_and(|l| {
                    inodes
                        .iter()
                        .any(|i| l.as_os_str() == format!("socket:[{i}]").as_str())
                })
        });
        owns.then(|| {
            let name = fs
                .read_to_string(format!("/proc/{pid}/comm"), FileKind::Kernel)
                .map(|c| c.trim().to_string())
                .unwrap_or_default();
            (pid, name)
        })
    });
    Some(match owner {
        Some((pid, name)) => (Some(pid), name),
        None => (None, "a process this harness cannot see".into()),
    })
}

/// The socket inodes of `/proc/net/tcp{,6}` text listening on `port`.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local = f.get(1)?;
            let p = u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()?;
            // 0A: TCP_LISTEN.
            (p == port && *f.get(3)? == "0A").then(|| f.get(9)?.parse().ok())?
        })
        .collect()
}

/// What `--kubelet-binary` needs, checked before any test runs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub host: Host,
    /// The kubelet binary, a node path.
    pub binary: PathBuf,
    /// The CRI socket, a node path, and where it was found.
    pub endpoint: PathBuf,
    pub endpoint_source: String,
    /// `v1.20.2`, as `kubelet --version` printed it.
    pub version: String,
    /// The minor version, which decides the flags it takes.
    pub minor: u32,
}

/// Checks that a kubelet can be started: the binary runs, no kubelet serves on its ports
/// (the node's own must be stopped first), and a CRI endpoint is known. `Err` is one line
/// saying what to do.
pub fn preflight(
    root: &RootFs,
    binary: &Path,
    endpoint: Option<&str>,
    node_kubelet: Option<&crate::node::kubelet::Kubelet>,
) -> Result<Plan, String> {
    let host = Host::detect(root).map_err(|e| format!("--kubelet-binary: {e}"))?;
    if !binary.is_absolute() {
        return Err(format!(
            "--kubelet-binary {}: give the kubelet's absolute path on the node",
            binary.display()
        ));
    }
    match root.metadata(binary) {
        Ok(m) if m.is_executable() => {}
        Ok(_) => {
            return Err(format!(
                "--kubelet-binary {}: not an executable file on the node",
                binary.display()
            ));
        }
        Err(e) => return Err(format!("--kubelet-binary {e}")),
    }
    for port in PORTS {
        if let Some((pid, name)) = listener(root, &host, port) {
            let who = pid.map_or(name.clone(), |p| format!("{name} (pid {p})"));
            return Err(format!(
                "--kubelet-binary: port {port} is taken by {who}: the node's own kubelet is \
                 running; stop it (`systemctl stop kubelet`), run again, then start it again \
                 (`systemctl start kubelet`)"
            ));
        }
    }
    let (endpoint, endpoint_source) = match endpoint {
        Some(e) => (e.to_string(), "--container-runtime-endpoint".to_string()),
        None => match node_kubelet.and_then(|k| k.str("containerRuntimeEndpoint")) {
            Some(e) => (
                e.to_string(),
                "the node's kubelet configuration".to_string(),
            ),
            None => crate::node::runtime::discover(root, crate::node::runtime::Kind::Cri)
                .into_iter()
                .find(|f| f.socket.is_ok())
                .map(|f| {
                    (
                        f.path().display().to_string(),
                        format!("{} (found on the node)", f.endpoint.name),
                    )
                })
                .ok_or_else(|| {
                    "--kubelet-binary: no CRI endpoint is known: the node's kubelet configuration \
                     names none and no well-known socket answers; give --container-runtime-endpoint"
                        .to_string()
                })?,
        },
    };
    let path = endpoint.strip_prefix("unix://").unwrap_or(&endpoint);
    if !path.starts_with('/') {
        return Err(format!(
            "--container-runtime-endpoint {endpoint}: not a unix:// endpoint, which the harness can reach"
        ));
    }
    // A kubelet started as root takes its containers from this runtime.
    super::nodefs::trusted_socket(root, Path::new(path))
        .map_err(|e| format!("the CRI endpoint ({endpoint_source}): {e}"))?;
    let version = host
        .command(root, binary)
        .and_then(|mut c| c.arg("--version").stdin(Stdio::null()).output())
        .map_err(|e| format!("--kubelet-binary {}: cannot run it: {e}", binary.display()))?;
    let text = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let (version, minor) = parse_version(&text).ok_or_else(|| {
        format!(
            "--kubelet-binary {}: `--version` printed {text:?}, not `Kubernetes v1.N.M`",
            binary.display()
        )
    })?;
    Ok(Plan {
        host,
        binary: binary.to_path_buf(),
        endpoint: PathBuf::from(path),
        endpoint_source,
        version,
        minor,
    })
}

/// `Kubernetes v1.20.2` to (`v1.20.2`, 20).
fn parse_version(text: &str) -> Option<(String, u32)> {
    let v = text.strip_prefix("Kubernetes ")?.trim();
    let minor = v
        .strip_prefix("v1.")?
        .split(['.', '-', '+'])
        .next()?
        .parse()
        .ok()?;
    Some((v.to_string(), minor))
}

/// What the managed kubelet is started with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub run_id: String,
    pub node_name: String,
    /// The kubeconfig that points it at the control plane, its credentials inline.
    pub kubeconfig: String,
    /// The CA (PEM) whose client certificates its server accepts: the run's.
    pub client_ca: String,
    /// Its serving certificate and key (PEM), issued by the run's CA.
    pub serving: (String, String),
    /// The harness's client certificate and key (PEM) for its server, issued by the run's CA.
    pub harness_client: (String, String),
    /// `systemd` or `cgroupfs`, as the runtime uses, and where that was read.
    pub cgroup_driver: (String, String),
}

/// A running managed kubelet.
#[derive(Debug)]
pub struct Managed {
    pub plan: Plan,
    /// The work directory on the node: `/var/lib/node-conformance/runs/<run id>`.
    pub work: PathBuf,
    /// Its static pod directory, a node path.
    pub manifests: PathBuf,
    /// The node's root, writable: where its files were made and are removed from.
    pub node: Writable,
    pub pid: u32,
    child: Arc<Mutex<Child>>,
    /// Dropped once the kubelet has stopped: ends the thread it was started from.
    thread_stop: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    started: Instant,
    /// When it was started, in nanoseconds since the Unix epoch: every pod sandbox created
    /// since is its (the node's own kubelet is stopped).
    pub started_unix_nanos: i64,
    state: RunState,
    pub namespace: String,
    /// What it was started with, for the report.
    pub description: String,
    /// The CA its server's certificate chains to, and the harness's client certificate and
    /// key for it (PEM).
    server_credentials: crate::controlplane::client::Credentials,
    /// Its log (stdout and stderr), read back through this handle: it outlives the run's
    /// directory, so the run can keep it in the result dir after removing that.
    log: std::fs::File,
    /// Where the log is on the node: `<work>/kubelet.log`.
    pub log_path: PathBuf,
}

impl Managed {
    /// Writes the kubelet's files into the run's directory and starts it. The process is
    /// started from a thread that lives as long as it: the kubelet is sent SIGTERM if the
    /// harness dies (its parent death signal follows the thread that forked it).
    pub fn start(
        fs: &RootFs,
        plan: &Plan,
        settings: &Settings,
        namespace: &str,
    ) -> Result<Self, String> {
        let host = &plan.host;
        let node = Writable::node_root(fs).map_err(|e| format!("cannot write on the node: {e}"))?;
        node.private_dir(Path::new(state::RUNS_DIR))
            .map_err(|e| format!("cannot keep the run's state in {}: {e}", state::RUNS_DIR))?;
        let work = state::run_dir(&settings.run_id);
        let manifests = work.join("manifests");
        let fail = |what: &str, e: io::Error| format!("cannot {what}: {e}");
        node.mkdir(&work, 0o700)
            .map_err(|e| fail(&format!("create {}", work.display()), e))?;
        for (dir, mode) in [
            ("manifests", 0o755),
            ("root", 0o750),
            ("volume-plugins", 0o755),
            ("pki", 0o700),
        ] {
            node.mkdir(&work.join(dir), mode)
                .map_err(|e| fail(&format!("create {}", work.join(dir).display()), e))?;
        }
        let pki = work.join("pki");
        let kubeconfig = work.join("kubeconfig");
        let config = work.join("config.yaml");
        let write = |path: &Path, text: &str, mode: u32| {
            node.write_new(path, text.as_bytes(), mode)
                .map_err(|e| fail(&format!("write {}", path.display()), e))
        };
        write(&kubeconfig, &settings.kubeconfig, 0o600)?;
        write(&pki.join("ca.crt"), &settings.client_ca, 0o644)?;
        write(&pki.join("kubelet.crt"), &settings.serving.0, 0o644)?;
        write(&pki.join("kubelet.key"), &settings.serving.1, 0o600)?;
        write(
            &config,
            &config_text(&manifests, &pki, &settings.cgroup_driver.0),
            0o600,
        )?;
        let tunables: Vec<(String, String)> = KERNEL_TUNABLES
            .iter()
            .filter_map(|t| {
                let v = fs
                    .read_to_string(Path::new("/proc/sys").join(t), FileKind::Kernel)
                    .ok()?;
                Some(((*t).to_string(), v.trim().to_string()))
            })
            .collect();
        let new_log_dirs = state::LOG_DIRS
            .iter()
            .map(PathBuf::from)
            .filter(|d| !fs.exists(d))
            .collect();
        let mut state = RunState {
            run_id: settings.run_id.clone(),
            endpoint: Some(plan.endpoint.clone()),
            tunables,
            new_log_dirs,
            namespace: namespace.to_string(),
            kubelet: None,
        };
        let state_file = work.join(state::STATE_FILE);
        let state_text = serde_json::to_string(&state).map_err(|e| e.to_string())?;
        write(&state_file, &state_text, 0o600)?;
        let mut args = vec![
            format!("--config={}", config.display()),
            format!("--kubeconfig={}", kubeconfig.display()),
            format!("--root-dir={}", work.join("root").display()),
            format!(
                "--volume-plugin-dir={}",
                work.join("volume-plugins").display()
            ),
            format!("--hostname-override={}", settings.node_name),
            format!(
                "--container-runtime-endpoint=unix://{}",
                plan.endpoint.display()
            ),
            "--v=2".to_string(),
        ];
        // Before 1.24 the default runtime was the built-in Docker shim; 1.27 removed the flag.
        if plan.minor < 27 {
            args.push("--container-runtime=remote".into());
        }
        // In the run's directory, made new: nothing another user placed can be written
        // through, and it is read back through this handle, never by path.
        let log_path = work.join("kubelet.log");
        let log_file = node
            .create(&log_path, 0o600)
            .map_err(|e| fail(&format!("create {}", log_path.display()), e))?;
        let log = log_file.try_clone().map_err(|e| fail("open the log", e))?;
        let log2 = log_file.try_clone().map_err(|e| fail("open the log", e))?;
        let mut cmd = host
            .command(fs, &plan.binary)
            .map_err(|e| fail("enter the host's namespaces", e))?;
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Not the harness's process group: a Ctrl-C reaches the harness, which stops the
            // kubelet after removing the pods, in that order.
            .process_group(0);
        // SAFETY: only prctl runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::TERM,
                ))?;
                Ok(())
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("kubelet".into())
            .spawn(move || {
                let child = match cmd.spawn() {
                    Ok(c) => Arc::new(Mutex::new(c)),
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
                if tx.send(Ok((Arc::clone(&child), stop_tx))).is_err() {
                    return;
                }
                // Lives until the kubelet is stopped (or the harness ends).
                let _ = stop_rx.recv();
            })
            .map_err(|e| fail("start a thread", e))?;
        drop(spawned);
        let (child, thread_stop) = rx
            .recv()
            .map_err(|_| "the kubelet's thread ended".to_string())?
            .map_err(|e| fail(&format!("start {}", plan.binary.display()), e))?;
        let pid = child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .id();
        // Written down so that a later run can tell this process from any other if this run
        // is killed: without it, a later run kills nothing.
        if let Some(process) = process_of(fs, pid) {
            state.kubelet = Some(process);
            if let Ok(text) = serde_json::to_string(&state) {
                let _ = node.write_replace(&state_file, text.as_bytes(), 0o600);
            }
        }
        Ok(Self {
            description: format!(
                "kubelet {} (pid {pid}) from {}, CRI endpoint {} ({}), cgroup driver {} ({}), work dir {}, log {}",
                plan.version,
                plan.binary.display(),
                plan.endpoint.display(),
                plan.endpoint_source,
                settings.cgroup_driver.0,
                settings.cgroup_driver.1,
                work.display(),
                log_path.display()
            ),
            plan: plan.clone(),
            work,
            manifests,
            node,
            pid,
            child,
            thread_stop: Mutex::new(Some(thread_stop)),
            started: Instant::now(),
            started_unix_nanos: started_unix_nanos(),
            state,
            namespace: namespace.to_string(),
            log: log_file,
            log_path,
            server_credentials: crate::controlplane::client::Credentials {
                ca: Some(settings.client_ca.clone()),
                token: None,
                certificate: Some(settings.harness_client.clone()),
            },
        })
    }

    /// What the kubelet's server (127.0.0.1:10250, `/pods`) answers a client without a
    /// certificate and one with the harness's: (HTTP status or why there was none) each.
    /// Its certificate is verified against the run's CA both times.
    pub fn probe_server(&self) -> (Result<u16, String>, Result<u16, String>) {
        let base = format!("https://127.0.0.1:{}", PORTS[0]);
        let ask = |credentials: &crate::controlplane::client::Credentials| {
            crate::controlplane::client::Client::with_credentials(&base, credentials)
                .request("GET", "/pods", "application/json", None)
                .map(|(code, _)| code)
        };
        let anonymous = crate::controlplane::client::Credentials {
            certificate: None,
            ..self.server_credentials.clone()
        };
        (ask(&anonymous), ask(&self.server_credentials))
    }

    /// Why the kubelet is not running, if it exited: its status and the last lines of its log.
    pub fn exited(&self) -> Option<String> {
        let status = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .try_wait()
            .ok()??;
        let text = tail_of(&self.log, 64 << 10);
        let last_error = last_klog_error(&text)
            .map(|l| format!("; its last error: {l}"))
            .unwrap_or_default();
        Some(format!(
            "the kubelet exited ({status}) {}s after it started{last_error}; the end of its log {}:\n{}",
            self.started.elapsed().as_secs(),
            self.log_path.display(),
            last_lines(&text, 10)
        ))
    }

    /// Its whole log, up to the last `cap` bytes, read through the handle the run kept.
    pub fn log(&self, cap: u64) -> Vec<u8> {
        tail_of(&self.log, cap).into_bytes()
    }

    /// Stops the kubelet: SIGTERM, then SIGKILL after 10 s. Returns what happened.
    pub fn stop(&self) -> String {
        let said = self.stop_process();
        drop(
            self.thread_stop
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        said
    }

    fn stop_process(&self) -> String {
        let mut child = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Ok(Some(status)) = child.try_wait() {
            return format!("the kubelet (pid {}) had exited: {status}", self.pid);
        }
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return format!("stopped the kubelet (pid {})", self.pid);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        format!(
            "killed the kubelet (pid {}): it did not stop within 10s of SIGTERM",
            self.pid
        )
    }

    /// After [`Managed::stop`]: removes the work directory, the pod log directories of this
    /// run's namespace, and restores the kernel tunables the kubelet changed. One line each.
    pub fn clean(&self, fs: &RootFs) -> Vec<String> {
        clean_up(
            fs,
            Some(&self.plan.host),
            &self.node,
            &self.work,
            &self.state,
        )
    }
}

/// A process as a later run will recognize it, read from the node's /proc.
fn process_of(fs: &RootFs, pid: u32) -> Option<KubeletProcess> {
    let dir = fs
        .open_proc_entry(
            pid,
            ".",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        )
        .ok()?;
    Some(KubeletProcess {
        pid,
        start_time: start_time(&read_at(&dir, "stat")?)?,
        binary: exe_of(&dir)?,
    })
}

/// A small file of a /proc/<pid> directory.
fn read_at(dir: &OwnedFd, name: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let fd = rustix::fs::openat(
        dir,
        name,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(FileKind::Kernel.cap())
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// The executable of a /proc/<pid> directory, as the process's mount namespace names it.
fn exe_of(dir: &OwnedFd) -> Option<PathBuf> {
    let link = rustix::fs::readlinkat(dir, "exe", Vec::new()).ok()?;
    let text = link.to_string_lossy();
    Some(PathBuf::from(
        text.strip_suffix(" (deleted)").unwrap_or(&text).to_string(),
    ))
}

/// When a process started (clock ticks since boot), from its `/proc/<pid>/stat` bytes.
fn start_time(stat: &[u8]) -> Option<u64> {
    crate::node::kubelet::start_ticks(&String::from_utf8_lossy(stat))
}

/// Kills a dead run's kubelet if it still runs: the process with the pid written down, started
/// at the time written down, running the executable written down, with `--root-dir` in the
/// run's directory. The signal goes through the process's /proc directory (a pid file
/// descriptor), so a pid reused since is never signalled. One line, when there was one to kill.
fn kill_dead_kubelet(fs: &RootFs, k: &KubeletProcess, work: &Path) -> Option<String> {
    let dir = fs
        .open_proc_entry(
            k.pid,
            ".",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        )
        .ok()?;
    let root_dir = format!("--root-dir={}", work.join("root").display());
    let same = start_time(&read_at(&dir, "stat")?) == Some(k.start_time)
        && exe_of(&dir).as_deref() == Some(k.binary.as_path())
        && read_at(&dir, "cmdline")?
            .split(|b| *b == 0)
            .any(|arg| arg == root_dir.as_bytes());
    if !same {
        return None;
    }
    Some(
        match rustix::process::pidfd_send_signal(&dir, rustix::process::Signal::KILL) {
            Ok(()) => format!("killed pid {} of the dead run's kubelet", k.pid),
            Err(e) => format!(
                "could not kill pid {} of the dead run's kubelet: {e}",
                k.pid
            ),
        },
    )
}

/// Puts back what a managed kubelet changed (its [`RunState`]) and removes its work dir `work`
/// (a node path), once it has stopped, all through the node's root `node`. One line per thing
/// done or not.
pub fn clean_up(
    fs: &RootFs,
    host: Option<&Host>,
    node: &Writable,
    work: &Path,
    state: &RunState,
) -> Vec<String> {
    let mut lines = Vec::new();
    for (tunable, before) in &state.tunables {
        if !KERNEL_TUNABLES.contains(&tunable.as_str()) {
            continue;
        }
        let path = Path::new("/proc/sys").join(tunable);
        let now = node
            .read(&path, 4096)
            .map(|(b, _)| String::from_utf8_lossy(&b).trim().to_string())
            .unwrap_or_default();
        if now != *before {
            let name = tunable.replace('/', ".");
            lines.push(match node.write_existing(&path, before.as_bytes()) {
                Ok(()) => format!("restored {name} to {before} (the kubelet set {now})"),
                Err(e) => format!("could not restore {name} to {before}: {e}"),
            });
        }
    }
    lines.extend(remove_work_dir(fs, host, node, work));
    // /var/log/pods/<namespace>_<pod>_<uid>, /var/log/containers/<pod>_<namespace>_<c>-<id>.log:
    // a namespace and a pod name hold no `_`, so the marks select the run's namespace alone.
    let marks = [
        format!("{}_", state.namespace),
        format!("_{}_", state.namespace),
    ];
    for (dir, mark) in state::LOG_DIRS.iter().zip(marks) {
        let dir = Path::new(dir);
        let Ok(entries) = node.entries(dir) else {
            continue;
        };
        for (name, st) in entries {
            let name = name.to_string_lossy().into_owned();
            let ours = if dir == Path::new(state::LOG_DIRS[0]) {
                name.starts_with(&mark)
            } else {
                name.contains(&mark)
            };
            if !ours {
                continue;
            }
            let path = dir.join(&name);
            let removed = if st.file_type == rustix::fs::FileType::Directory {
                node.remove_all(&path)
            } else {
                node.remove_file(&path)
            };
            if let Err(err) = removed {
                lines.push(format!("could not remove {}: {err}", path.display()));
            }
        }
        if state.new_log_dirs.iter().any(|d| d == dir) && node.remove_dir(dir).is_ok() {
            lines.push(format!("removed {} (the kubelet made it)", dir.display()));
        }
    }
    lines
}

/// What a dead run left, once believed.
#[derive(Debug)]
pub enum Dead {
    /// Its directory and state are root's alone and of the form this harness writes: its
    /// kubelet has been killed if it still ran. Its pods are to be removed, then
    /// [`finish_recovery`] puts back what it changed.
    Believed(Option<RunState>),
    /// Not root's alone, or not of that form: nothing is to be done with it.
    Ignored,
}

/// The first half of the recovery of a dead run's directory `run_id`: it is believed only when
/// the directory and its state are root's alone and every field has the form this harness
/// writes (anything else is ignored, and said), and then its kubelet is killed if it still
/// runs. One line per thing done or not.
pub fn recover(fs: &RootFs, node: &Writable, run_id: &str) -> (Dead, Vec<String>) {
    let work = state::run_dir(run_id);
    let ignored = |why: String| {
        (
            Dead::Ignored,
            vec![format!(
                "ignored {}: {why}; nothing was done with it",
                work.display()
            )],
        )
    };
    match node.lstat(&work) {
        Ok(st) if st.file_type == rustix::fs::FileType::Directory => {
            if let Some(why) = st.not_roots_alone() {
                return ignored(why);
            }
        }
        Ok(st) => {
            return ignored(format!(
                "{}, not a directory",
                super::nodefs::describe(st.file_type)
            ));
        }
        Err(e) => return ignored(e.to_string()),
    }
    let state = match state::read(node, run_id) {
        Ok(s) => s,
        Err(why) => return ignored(why),
    };
    let lines = state
        .as_ref()
        .and_then(|s| s.kubelet.as_ref())
        .and_then(|k| kill_dead_kubelet(fs, k, &work))
        .into_iter()
        .collect();
    (Dead::Believed(state), lines)
}

/// The second half, once the dead run's pods are gone: what it changed put back
/// ([`clean_up`]), or, with no state, its directory removed.
pub fn finish_recovery(
    fs: &RootFs,
    host: Option<&Host>,
    node: &Writable,
    run_id: &str,
    state: Option<&RunState>,
) -> Vec<String> {
    let work = state::run_dir(run_id);
    match state {
        Some(state) => clean_up(fs, host, node, &work, state),
        None => remove_work_dir(fs, host, node, &work),
    }
}

/// Removes a kubelet's work dir (a node path) after detaching the mounts under it: the
/// kubelet bind-mounts its root dir onto itself to share mounts with containers, and removing
/// through a mount would reach into what is mounted. Nothing is removed while a mount may
/// remain. One line per thing done or not.
fn remove_work_dir(fs: &RootFs, host: Option<&Host>, node: &Writable, work: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let mut mounts = match mounts_under(fs, host, work) {
        Ok(m) => m,
        Err(e) => {
            return vec![format!(
                "left {}: cannot tell what is mounted under it ({e})",
                work.display()
            )];
        }
    };
    mounts.retain(|m| match host.map(|h| unmount(fs, h, m)) {
        Some(Ok(())) => false,
        Some(Err(e)) => {
            lines.push(format!("could not unmount {m}: {e}"));
            true
        }
        None => true,
    });
    lines.push(if mounts.is_empty() {
        match node.remove_all(work) {
            Ok(()) => format!("removed {}", work.display()),
            Err(e) => format!("could not remove {}: {e}", work.display()),
        }
    } else {
        format!(
            "left {}: mounts remain under it ({})",
            work.display(),
            mounts.join(", ")
        )
    });
    lines
}

/// Mount points under `dir` (a node path) in the node's mount namespace, deepest first. Where
/// no host process is known (a root fs that is a directory of this machine), the harness's own
/// mount table, under the root fs's path.
fn mounts_under(fs: &RootFs, host: Option<&Host>, dir: &Path) -> Result<Vec<String>, String> {
    let (table, prefix) = match host {
        Some(h) => (
            fs.read_to_string(h.proc_path("mountinfo"), FileKind::Kernel)
                .map_err(|e| e.to_string())?,
            format!("{}/", dir.display()),
        ),
        None => (
            crate::node::rootfs::read_local_string(
                Path::new("/proc/self/mountinfo"),
                FileKind::Kernel,
            )
            .map_err(|e| e.to_string())?,
            format!(
                "{}/",
                fs.dir()
                    .join(dir.strip_prefix("/").unwrap_or(dir))
                    .display()
            ),
        ),
    };
    let mut mounts: Vec<String> = table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    mounts.dedup();
    Ok(mounts)
}

/// Detaches a mount a kubelet left: here, or with the node's own `umount` in its mount
/// namespace when the harness runs in a container.
fn unmount(fs: &RootFs, host: &Host, mount: &str) -> Result<(), String> {
    match host {
        Host::Same => rustix::mount::unmount(mount, rustix::mount::UnmountFlags::DETACH)
            .map_err(|e| e.to_string()),
        Host::Process(_) => {
            let out = host
                .command(fs, Path::new("/bin/umount"))
                .and_then(|mut c| c.args(["-l", mount]).stdin(Stdio::null()).output())
                .map_err(|e| format!("umount: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "umount: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        }
    }
}

/// The last fatal (`F1130 12:44:20.941940 ...`), else error, line klog wrote in a log's
/// `text`: what a kubelet that exits says last before its goroutine dump.
fn last_klog_error(text: &str) -> Option<String> {
    let klog = |level: char| {
        text.lines()
            .rev()
            .find(|l| {
                let mut c = l.chars();
                c.next() == Some(level) && c.take(4).all(|d| d.is_ascii_digit())
            })
            .map(str::to_string)
    };
    klog('F').or_else(|| klog('E'))
}

/// The last `cap` bytes of an open file, as text, read at their offset (the file's own
/// position, shared with the kubelet writing it, is left alone).
fn tail_of(file: &std::fs::File, cap: u64) -> String {
    use std::os::unix::fs::FileExt;
    let len = file.metadata().map_or(0, |m| m.len());
    let from = len.saturating_sub(cap);
    let mut bytes = vec![0; usize::try_from(len - from).unwrap_or(0)];
    let mut read = 0;
    while read < bytes.len() {
        match file.read_at(&mut bytes[read..], from + read as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    bytes.truncate(read);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The last `n` lines of `text`.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The cluster domain the managed kubelet puts in pods' FQDNs and search paths: kubeadm's and
/// upstream's node e2e default.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// The KubeletConfiguration (v1beta1, which every kubelet since 1.10 reads). Beyond pointing
/// it here: its server on loopback, over TLS with a certificate of the run's CA, answering
/// only clients with a certificate of that CA (no anonymous requests: kubeadm's settings);
/// nothing of its own on the node's network (no iptables chains) or cgroups (no QoS
/// hierarchy, nothing reserved), and eviction only when the node is nearly out of memory or
/// disk, since the tests are about behaviour, not capacity; the static pod directory read
/// every 5 s instead of 20 s.
fn config_text(manifests: &Path, pki: &Path, cgroup_driver: &str) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
         staticPodPath: {}\nfileCheckFrequency: 5s\nsyncFrequency: 10s\ncgroupDriver: {cgroup_driver}\n\
         clusterDomain: {CLUSTER_DOMAIN}\n\
         address: 127.0.0.1\nhealthzBindAddress: 127.0.0.1\nport: {}\nhealthzPort: {}\nreadOnlyPort: 0\n\
         tlsCertFile: {pki}/kubelet.crt\ntlsPrivateKeyFile: {pki}/kubelet.key\n\
         authentication:\n  anonymous:\n    enabled: false\n  webhook:\n    enabled: false\n\
         \x20 x509:\n    clientCAFile: {pki}/ca.crt\n\
         authorization:\n  mode: AlwaysAllow\n\
         cgroupsPerQOS: false\nenforceNodeAllocatable: []\nmakeIPTablesUtilChains: false\n\
         failSwapOn: false\nserializeImagePulls: false\n\
         evictionHard:\n  memory.available: 100Mi\n  nodefs.available: 1%\n  imagefs.available: 1%\n  nodefs.inodesFree: 1%\n",
        manifests.display(),
        PORTS[0],
        PORTS[1],
        pki = pki.display(),
    )
}

/// Now, in nanoseconds since the Unix epoch, a second early: a sandbox's `created_at` is
/// the runtime's clock, read after the kubelet started.
fn started_unix_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .saturating_sub(1_000_000_000)
}

/// The CRI labels that select a namespace's pod sandboxes.
pub fn namespace_labels(namespace: &str) -> std::collections::HashMap<String, String> {
    std::collections::HashMap::from([(
        crate::runtime::cri::POD_NAMESPACE_LABEL.to_string(),
        namespace.to_string(),
    )])
}

/// Whether a pod sandbox is one the managed kubelet made: created after it started, or of the
/// run's namespace.
pub fn made_by(managed: &Managed, sandbox: &crate::runtime::cri::PodSandbox) -> bool {
    sandbox.created_at >= managed.started_unix_nanos
        || sandbox
            .labels
            .get(crate::runtime::cri::POD_NAMESPACE_LABEL)
            .is_some_and(|n| *n == managed.namespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_are_found_by_port() {
        // /proc/net/tcp as Linux writes it: a kubelet on 127.0.0.1:10248 and *:10250 listening,
        // a connection from port 10250 (state 01) that is not.
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:2808 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 00000000:280A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0\n\
   2: 0100007F:280A 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 10248), [4242]);
        assert_eq!(listening_inodes(table, 10250), [4343]);
        assert!(listening_inodes(table, 8080).is_empty());
    }

    #[test]
    fn a_kubelets_last_error_is_found_before_its_goroutine_dump() {
        let text = "I1130 12:44:20.1 4529 server.go:416] Version: v1.20.2\n\
             E1130 12:44:20.5 4529 kubelet.go:1] something minor\n\
             F1130 12:44:20.941940 4529 server.go:269] failed to run Kubelet: failed to create kubelet: open /dev/kmsg: operation not permitted\n\
             goroutine 1 [running]:\nk8s.io/kubernetes/vendor/k8s.io/klog/v2.stacks(0x1)\n";
        let e = last_klog_error(text).unwrap();
        assert!(
            e.ends_with("open /dev/kmsg: operation not permitted"),
            "{e}"
        );
        assert_eq!(last_klog_error("I1130 fine\n"), None);
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
    }

    #[test]
    fn a_log_is_read_back_through_its_handle_from_its_end() {
        use std::io::Write;
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("kubelet.log");
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        f.write_all(b"0123456789").unwrap();
        // Gone from its directory, still read through the handle.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(tail_of(&f, 4), "6789");
        assert_eq!(tail_of(&f, 100), "0123456789");
    }

    #[test]
    fn kubelet_versions_are_read_as_printed() {
        assert_eq!(
            parse_version("Kubernetes v1.20.2"),
            Some(("v1.20.2".to_string(), 20))
        );
        assert_eq!(
            parse_version("Kubernetes v1.35.0-rc.1"),
            Some(("v1.35.0-rc.1".to_string(), 35))
        );
        assert_eq!(parse_version("kubelet version 5"), None);
    }

    #[test]
    fn the_configuration_points_the_kubelet_here_and_keeps_it_off_the_node() {
        let c = config_text(
            Path::new("/var/lib/node-conformance/runs/x/manifests"),
            Path::new("/var/lib/node-conformance/runs/x/pki"),
            "cgroupfs",
        );
        let v: serde_json::Value = serde_saphyr::from_str(&c).unwrap();
        assert_eq!(
            v["staticPodPath"],
            "/var/lib/node-conformance/runs/x/manifests"
        );
        assert_eq!(v["cgroupDriver"], "cgroupfs");
        assert_eq!(v["makeIPTablesUtilChains"], false);
        assert_eq!(v["cgroupsPerQOS"], false);
        assert_eq!(v["address"], "127.0.0.1");
        assert_eq!(v["authentication"]["anonymous"]["enabled"], false);
        assert_eq!(
            v["authentication"]["x509"]["clientCAFile"],
            "/var/lib/node-conformance/runs/x/pki/ca.crt"
        );
        assert_eq!(
            v["tlsCertFile"],
            "/var/lib/node-conformance/runs/x/pki/kubelet.crt"
        );
    }

    #[test]
    fn a_process_start_time_is_read_past_its_name() {
        let stat = b"4242 (kube let) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 12 0 98765 1000000 100";
        assert_eq!(start_time(stat), Some(98765));
        assert_eq!(start_time(b"4242 (x) S 1"), None);
    }

    #[test]
    fn a_root_that_is_not_this_machines_needs_the_nodes_proc() {
        let t = tempfile::tempdir().unwrap();
        let fs = RootFs::open(t.path()).unwrap();
        let e = Host::detect(&fs).unwrap_err();
        assert!(e.contains("--pid=host"), "{e}");
        assert_eq!(
            Host::detect(&RootFs::open("/").unwrap()).unwrap(),
            Host::Same
        );
    }
}
