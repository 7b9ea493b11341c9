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
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The ports a kubelet serves on: its API, and its healthz on loopback.
pub const PORTS: [u16; 2] = [10250, 10248];

/// The kernel tunables a kubelet sets when it starts (`setupKernelTunables` in
/// pkg/kubelet/cm/container_manager_linux.go), restored afterwards.
pub const KERNEL_TUNABLES: [&str; 6] = [
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
];

/// Where the node's files are for the harness, and how it runs a process there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// The harness runs on the node: its paths are the node's.
    Same,
    /// The harness runs in a container sharing the host's PID namespace: the node's files are
    /// under `/proc/<pid>/root` of a host process (PID 1, whose root is the node's on every
    /// node; else the first process whose root is), and a process for the node enters that
    /// process's namespaces.
    Process(u32),
}

impl Host {
    /// How the harness sees the node whose root fs is `rootfs`. From a container that cannot
    /// see a host process, no process can be started on the node: `Err` says what to add.
    pub fn detect(rootfs: &Path) -> Result<Self, String> {
        let id = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino()));
        let root = id(rootfs)
            .map_err(|e| format!("--kubelet-binary: root fs {}: {e}", rootfs.display()))?;
        if id(Path::new("/")).is_ok_and(|o| o == root) {
            return Ok(Self::Same);
        }
        let pid1 = match id(Path::new("/proc/1/root")) {
            Ok(p) if p == root => return Ok(Self::Process(1)),
            Ok(_) => "it is not PID 1's root either".to_string(),
            Err(e) => format!("PID 1's root cannot be seen ({e})"),
        };
        let mut pids: Vec<u32> = std::fs::read_dir("/proc")
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        pids.sort_unstable();
        let own = std::process::id();
        if let Some(pid) = pids.into_iter().find(|p| {
            *p != own
                && id(&Path::new("/proc").join(p.to_string()).join("root")).is_ok_and(|r| r == root)
        }) {
            return Ok(Self::Process(pid));
        }
        Err(format!(
            "--kubelet-binary: the root fs {} is not this process's root, {pid1}, and no \
             process seen has it as its root: to start a kubelet on the node from a container, \
             run it in the host's PID namespace (docker run --pid=host --privileged)",
            rootfs.display()
        ))
    }

    /// A node path as the harness reaches it, for writing.
    pub fn local(&self, node_path: &Path) -> PathBuf {
        match self {
            Self::Same => node_path.to_path_buf(),
            Self::Process(pid) => Path::new("/proc")
                .join(pid.to_string())
                .join("root")
                .join(node_path.strip_prefix("/").unwrap_or(node_path)),
        }
    }

    /// A command that runs `program` (a node path) on the node: in the host process's mount,
    /// network, UTS, IPC and cgroup namespaces where they are not already this process's.
    pub fn command(&self, program: &Path) -> io::Result<Command> {
        let mut cmd = Command::new(program);
        if let Self::Process(pid) = self {
            let mut enter: Vec<OwnedFd> = Vec::new();
            for ns in ["mnt", "net", "uts", "ipc", "cgroup"] {
                let theirs = format!("/proc/{pid}/ns/{ns}");
                if std::fs::read_link(&theirs).ok()
                    == std::fs::read_link(format!("/proc/self/ns/{ns}")).ok()
                {
                    continue;
                }
                enter.push(std::fs::File::open(&theirs)?.into());
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

/// The process listening on a TCP port of this network namespace, if any: `(pid, name)`,
/// or `None` for the pid when the socket's owner cannot be seen.
pub fn listener(port: u16) -> Option<(Option<u32>, String)> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        inodes.extend(listening_inodes(&text, port));
    }
    if inodes.is_empty() {
        return None;
    }
    let owner = std::fs::read_dir("/proc").ok()?.flatten().find_map(|p| {
        let pid: u32 = p.file_name().to_str()?.parse().ok()?;
        let fds = std::fs::read_dir(p.path().join("fd")).ok()?;
        let owns = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| {
                inodes
                    .iter()
                    .any(|i| l.as_os_str() == format!("socket:[{i}]").as_str())
            })
        });
        owns.then(|| {
            let name = std::fs::read_to_string(p.path().join("comm"))
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
    /// The kubelet's log, in the result dir.
    pub log: PathBuf,
}

/// Checks that a kubelet can be started: the binary runs, no kubelet serves on its ports
/// (the node's own must be stopped first), and a CRI endpoint is known. `Err` is one line
/// saying what to do.
pub fn preflight(
    root: &crate::node::rootfs::RootFs,
    rootfs: &Path,
    binary: &Path,
    endpoint: Option<&str>,
    node_kubelet: Option<&crate::node::kubelet::Kubelet>,
    log: PathBuf,
) -> Result<Plan, String> {
    let host = Host::detect(rootfs)?;
    if !binary.is_absolute() {
        return Err(format!(
            "--kubelet-binary {}: give the kubelet's absolute path on the node",
            binary.display()
        ));
    }
    match std::fs::metadata(host.local(binary)) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
        Ok(_) => {
            return Err(format!(
                "--kubelet-binary {}: not an executable file on the node",
                binary.display()
            ));
        }
        Err(e) => return Err(format!("--kubelet-binary {}: {e}", binary.display())),
    }
    for port in PORTS {
        if let Some((pid, name)) = listener(port) {
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
    let version = host
        .command(binary)
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
        log,
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
    pub api_url: String,
    /// `systemd` or `cgroupfs`, as the runtime uses, and where that was read.
    pub cgroup_driver: (String, String),
}

/// What a managed kubelet changed on the node that its run must put back, kept in its work
/// dir (`state.json`) so that the next run can, if this one is killed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct State {
    /// The CRI socket, a node path.
    pub endpoint: PathBuf,
    /// The kernel tunables as they were before it started (`kernel/panic`, value).
    pub tunables: Vec<(String, String)>,
    /// The pod log directories that did not exist before it started (it makes them).
    pub new_log_dirs: Vec<PathBuf>,
    /// The namespace of the run's pods.
    pub namespace: String,
}

/// A running managed kubelet.
#[derive(Debug)]
pub struct Managed {
    pub plan: Plan,
    /// The work directory on the node: `/var/tmp/node-conformance-<run id>`.
    pub work: PathBuf,
    /// Its static pod directory, a node path.
    pub manifests: PathBuf,
    pub pid: u32,
    child: Arc<Mutex<Child>>,
    /// Dropped once the kubelet has stopped: ends the thread it was started from.
    thread_stop: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    started: Instant,
    /// When it was started, in nanoseconds since the Unix epoch: every pod sandbox created
    /// since is its (the node's own kubelet is stopped).
    pub started_unix_nanos: i64,
    state: State,
    pub namespace: String,
    /// What it was started with, for the report.
    pub description: String,
}

impl Managed {
    /// Writes the kubelet's files and starts it. The process is started from a thread that
    /// lives as long as it: the kubelet is sent SIGTERM if the harness dies (its parent death
    /// signal follows the thread that forked it).
    pub fn start(plan: &Plan, settings: &Settings, namespace: &str) -> Result<Self, String> {
        let host = &plan.host;
        let work = PathBuf::from(format!("/var/tmp/node-conformance-{}", settings.run_id));
        let manifests = work.join("manifests");
        let local = |p: &Path| host.local(p);
        let fail = |what: &str, e: io::Error| format!("cannot {what}: {e}");
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(local(&work))
            .map_err(|e| fail(&format!("create {}", work.display()), e))?;
        for dir in ["manifests", "root", "volume-plugins"] {
            std::fs::create_dir(local(&work.join(dir)))
                .map_err(|e| fail(&format!("create {}", work.join(dir).display()), e))?;
        }
        let kubeconfig = work.join("kubeconfig");
        let config = work.join("config.yaml");
        std::fs::write(local(&kubeconfig), kubeconfig_text(&settings.api_url))
            .map_err(|e| fail("write the kubeconfig", e))?;
        std::fs::write(
            local(&config),
            config_text(&manifests, &settings.cgroup_driver.0),
        )
        .map_err(|e| fail("write the KubeletConfiguration", e))?;
        let tunables: Vec<(String, String)> = KERNEL_TUNABLES
            .iter()
            .filter_map(|t| {
                let v = std::fs::read_to_string(local(&Path::new("/proc/sys").join(t))).ok()?;
                Some(((*t).to_string(), v.trim().to_string()))
            })
            .collect();
        let new_log_dirs = ["/var/log/pods", "/var/log/containers"]
            .iter()
            .map(PathBuf::from)
            .filter(|d| !local(d).exists())
            .collect();
        let state = State {
            endpoint: plan.endpoint.clone(),
            tunables,
            new_log_dirs,
            namespace: namespace.to_string(),
        };
        let state_text = serde_json::to_string(&state).map_err(|e| e.to_string())?;
        std::fs::write(local(&work.join("state.json")), state_text)
            .map_err(|e| fail("write the kubelet's state", e))?;
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
        let log = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&plan.log)
            .map_err(|e| fail(&format!("open {}", plan.log.display()), e))?;
        let log2 = log.try_clone().map_err(|e| fail("open the log", e))?;
        let mut cmd = host
            .command(&plan.binary)
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
                plan.log.display()
            ),
            plan: plan.clone(),
            work,
            manifests,
            pid,
            child,
            thread_stop: Mutex::new(Some(thread_stop)),
            started: Instant::now(),
            started_unix_nanos: started_unix_nanos(),
            state,
            namespace: namespace.to_string(),
        })
    }

    /// Why the kubelet is not running, if it exited: its status and the last lines of its log.
    pub fn exited(&self) -> Option<String> {
        let status = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .try_wait()
            .ok()??;
        let last_error = last_klog_error(&self.plan.log)
            .map(|l| format!("; its last error: {l}"))
            .unwrap_or_default();
        Some(format!(
            "the kubelet exited ({status}) {}s after it started{last_error}; the end of its log {}:\n{}",
            self.started.elapsed().as_secs(),
            self.plan.log.display(),
            log_tail(&self.plan.log, 10)
        ))
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
    pub fn clean(&self) -> Vec<String> {
        clean_up(&self.plan.host, &self.work, &self.state)
    }
}

/// Puts back what a managed kubelet changed (its [`State`]) and removes its work dir `work`
/// (a node path), once it has stopped. One line per thing done or not.
pub fn clean_up(host: &Host, work: &Path, state: &State) -> Vec<String> {
    let mut lines = Vec::new();
    for (tunable, before) in &state.tunables {
        // The host's /proc: a container's own is read-only unless it is privileged.
        let path = host.local(&Path::new("/proc/sys").join(tunable));
        let now = std::fs::read_to_string(&path).unwrap_or_default();
        if now.trim() != before {
            let name = tunable.replace('/', ".");
            lines.push(match std::fs::write(&path, before) {
                Ok(()) => format!(
                    "restored {name} to {before} (the kubelet set {})",
                    now.trim()
                ),
                Err(e) => format!("could not restore {name} to {before}: {e}"),
            });
        }
    }
    lines.extend(remove_work_dir(host, work));
    // /var/log/pods/<namespace>_<pod>_<uid>, /var/log/containers/<pod>_<namespace>_<c>-<id>.log
    let logs = [
        ("/var/log/pods", format!("{}_", state.namespace)),
        ("/var/log/containers", format!("_{}_", state.namespace)),
    ];
    for (dir, mark) in logs {
        let dir = Path::new(dir);
        let Ok(entries) = std::fs::read_dir(host.local(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.contains(&mark) {
                continue;
            }
            let removed = if e.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(e.path())
            } else {
                std::fs::remove_file(e.path())
            };
            if let Err(err) = removed {
                lines.push(format!(
                    "could not remove {}: {err}",
                    dir.join(&name).display()
                ));
            }
        }
        if state.new_log_dirs.iter().any(|d| d == dir)
            && std::fs::remove_dir(host.local(dir)).is_ok()
        {
            lines.push(format!("removed {} (the kubelet made it)", dir.display()));
        }
    }
    lines
}

/// A dead run's managed kubelet: its process ended (if it outlived the run, it is killed),
/// then its [`State`] put back and its work dir removed. Returns the state, for the pods it
/// left in the runtime, and one line per thing done.
pub fn recover(host: &Host, work: &Path) -> (Option<State>, Vec<String>) {
    let mut lines = Vec::new();
    let needle = format!("{}/", work.display());
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle)
                && let Some(pid) = rustix::process::Pid::from_raw(pid)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                lines.push(format!("killed pid {pid:?} of the dead run's kubelet"));
            }
        }
    }
    let state: Option<State> = std::fs::read_to_string(host.local(&work.join("state.json")))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    match &state {
        Some(state) => lines.extend(clean_up(host, work, state)),
        None => lines.extend(remove_work_dir(host, work)),
    }
    (state, lines)
}

/// Removes a kubelet's work dir (a node path) after detaching the mounts under it: the
/// kubelet bind-mounts its root dir onto itself to share mounts with containers, and removing
/// through a mount would reach into what is mounted. One line per thing done or not.
fn remove_work_dir(host: &Host, work: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let mut mounts = mounts_under(host, work);
    mounts.retain(|m| match unmount(host, m) {
        Ok(()) => false,
        Err(e) => {
            lines.push(format!("could not unmount {m}: {e}"));
            true
        }
    });
    lines.push(if mounts.is_empty() {
        match std::fs::remove_dir_all(host.local(work)) {
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

/// Mount points under `dir` in the node's mount namespace, deepest first.
fn mounts_under(host: &Host, dir: &Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    let table = match host {
        Host::Same => "/proc/self/mountinfo".to_string(),
        Host::Process(pid) => format!("/proc/{pid}/mountinfo"),
    };
    let mut mounts: Vec<String> = std::fs::read_to_string(table)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    mounts.dedup();
    mounts
}

/// Detaches a mount a kubelet left: here, or with the node's own `umount` in its mount
/// namespace when the harness runs in a container.
fn unmount(host: &Host, mount: &str) -> Result<(), String> {
    match host {
        Host::Same => rustix::mount::unmount(mount, rustix::mount::UnmountFlags::DETACH)
            .map_err(|e| e.to_string()),
        Host::Process(_) => {
            let out = host
                .command(Path::new("/bin/umount"))
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

/// The last fatal (`F1130 12:44:20.941940 ...`), else error, line klog wrote to a log: what a
/// kubelet that exits says last before its goroutine dump.
fn last_klog_error(path: &Path) -> Option<String> {
    let text = log_tail(path, 2000);
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

/// The last `n` lines of a log file.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| {
            let from = b.len().saturating_sub(64 * 1024);
            String::from_utf8_lossy(&b[from..]).into_owned()
        })
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn kubeconfig_text(api_url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: node-conformance\n  cluster:\n    server: {api_url}\n\
         contexts:\n- name: node-conformance\n  context:\n    cluster: node-conformance\n    user: kubelet\n\
         current-context: node-conformance\nusers:\n- name: kubelet\n  user: {{}}\n"
    )
}

/// The KubeletConfiguration (v1beta1, which every kubelet since 1.10 reads). Beyond pointing
/// it here: nothing of its own on the node's network (servers on loopback, no iptables
/// chains) or cgroups (no QoS hierarchy, nothing reserved), and eviction only when the node is
/// nearly out of memory or disk, since the tests are about behaviour, not capacity; the
/// static pod directory read every 5 s instead of 20 s.
fn config_text(manifests: &Path, cgroup_driver: &str) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
         staticPodPath: {}\nfileCheckFrequency: 5s\nsyncFrequency: 10s\ncgroupDriver: {cgroup_driver}\n\
         address: 127.0.0.1\nhealthzBindAddress: 127.0.0.1\nport: {}\nhealthzPort: {}\nreadOnlyPort: 0\n\
         authentication:\n  anonymous:\n    enabled: false\n  webhook:\n    enabled: false\n\
         authorization:\n  mode: AlwaysAllow\n\
         cgroupsPerQOS: false\nenforceNodeAllocatable: []\nmakeIPTablesUtilChains: false\n\
         failSwapOn: false\nserializeImagePulls: false\n\
         evictionHard:\n  memory.available: 100Mi\n  nodefs.available: 1%\n  imagefs.available: 1%\n  nodefs.inodesFree: 1%\n",
        manifests.display(),
        PORTS[0],
        PORTS[1]
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
        let t = tempfile::tempdir().unwrap();
        let log = t.path().join("kubelet.log");
        std::fs::write(
            &log,
            "I1130 12:44:20.1 4529 server.go:416] Version: v1.20.2\n\
             E1130 12:44:20.5 4529 kubelet.go:1] something minor\n\
             F1130 12:44:20.941940 4529 server.go:269] failed to run Kubelet: failed to create kubelet: open /dev/kmsg: operation not permitted\n\
             goroutine 1 [running]:\nk8s.io/kubernetes/vendor/k8s.io/klog/v2.stacks(0x1)\n",
        )
        .unwrap();
        let e = last_klog_error(&log).unwrap();
        assert!(
            e.ends_with("open /dev/kmsg: operation not permitted"),
            "{e}"
        );
        std::fs::write(&log, "I1130 fine\n").unwrap();
        assert_eq!(last_klog_error(&log), None);
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
        let c = config_text(Path::new("/var/tmp/x/manifests"), "cgroupfs");
        let v: serde_json::Value = serde_saphyr::from_str(&c).unwrap();
        assert_eq!(v["staticPodPath"], "/var/tmp/x/manifests");
        assert_eq!(v["cgroupDriver"], "cgroupfs");
        assert_eq!(v["makeIPTablesUtilChains"], false);
        assert_eq!(v["cgroupsPerQOS"], false);
        assert_eq!(v["address"], "127.0.0.1");
        let k: serde_json::Value =
            serde_saphyr::from_str(&kubeconfig_text("http://127.0.0.1:8080")).unwrap();
        assert_eq!(
            k["clusters"][0]["cluster"]["server"],
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn a_root_that_is_neither_ours_nor_pid_1s_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let e = Host::detect(t.path()).unwrap_err();
        assert!(e.contains("--pid=host"), "{e}");
        assert_eq!(Host::detect(Path::new("/")).unwrap(), Host::Same);
        assert_eq!(
            Host::Process(1).local(Path::new("/var/tmp/x")),
            Path::new("/proc/1/root/var/tmp/x")
        );
    }
}
