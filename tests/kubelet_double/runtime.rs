//! Where containers run: child processes of the workload binary, or Docker containers through
//! the docker CLI. Each container instance gets its own log and termination-message files
//! under the double's temporary directory.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::worker::{ContainerSpec, PodInfo};

/// The Docker label on every container the double starts: `<LABEL>=<node name>`.
pub const LABEL: &str = "node-conformance.kubelet-double";
/// The test image's entrypoint, which the process runtime maps to the workload binary.
const ENTRYPOINT: &str = "/node-conformance";

pub enum Runtime {
    Process { binary: PathBuf, root: PathBuf },
    Docker { node: String, root: PathBuf },
}

/// One run of one container.
pub trait Instance: Send {
    /// `<runtime>://<id>`, as containerStatuses carry it.
    fn id(&self) -> String;
    fn image_id(&self) -> String;
    /// The exit code once it has exited; 128 + the signal when a signal ended it.
    fn poll(&mut self) -> Option<i32>;
    /// SIGTERM, or SIGKILL with `kill`.
    fn signal(&mut self, kill: bool);
    /// The file at the container's terminationMessagePath.
    fn termination_message(&self) -> String;
    /// The last 80 lines, at most 2048 bytes, of its output.
    fn log_tail(&self) -> String;
    /// Forgets it in the runtime, once it has exited.
    fn remove(&mut self);
}

/// A reason (as `state.waiting.reason`) and a message.
pub type StartError = (String, String);

impl Runtime {
    /// containerRuntimeVersion.
    pub fn version(&self) -> String {
        match self {
            Self::Process { .. } => format!("process://{}", env!("CARGO_PKG_VERSION")),
            Self::Docker { .. } => format!(
                "docker://{}",
                docker(&["version", "-f", "{{.Server.Version}}"])
                    .unwrap_or_else(|_| "unknown".into())
            ),
        }
    }

    pub fn start(
        &self,
        pod: &PodInfo,
        c: &ContainerSpec,
        attempt: u32,
    ) -> Result<Box<dyn Instance>, StartError> {
        let root = match self {
            Self::Process { root, .. } | Self::Docker { root, .. } => root,
        };
        let fail = |e: std::io::Error| ("CreateContainerConfigError".to_string(), e.to_string());
        // Laid out as the kubelet lays out /var/log/pods: one directory per pod and container,
        // one file per restart.
        let dir = root.join(&pod.uid).join(&c.name);
        std::fs::create_dir_all(&dir).map_err(fail)?;
        let log = dir.join(format!("{attempt}.log"));
        let message = dir.join(format!("{attempt}.termination-log"));
        File::create(&message).map_err(fail)?;
        // A container need not run as root, and it must be able to write its message.
        std::fs::set_permissions(&message, std::fs::Permissions::from_mode(0o666)).map_err(fail)?;
        // A pod's emptyDir volumes outlive its containers' restarts: one directory each.
        let mut volumes = Vec::new();
        for (mount, volume) in &c.empty_dirs {
            let at = root.join(&pod.uid).join("volumes").join(volume);
            std::fs::create_dir_all(&at).map_err(fail)?;
            std::fs::set_permissions(&at, std::fs::Permissions::from_mode(0o777)).map_err(fail)?;
            volumes.push((mount.clone(), at));
        }
        match self {
            Self::Process { binary, .. } => start_process(binary, pod, c, log, message, &volumes),
            Self::Docker { node, .. } => start_docker(node, pod, c, attempt, message, &volumes),
        }
    }

    /// Removes every Docker container labelled for this node.
    pub fn remove_all(&self) {
        let Self::Docker { node, .. } = self else {
            return;
        };
        let filter = format!("label={LABEL}={node}");
        let ids = match docker(&["ps", "-aq", "--filter", &filter]) {
            Ok(ids) => ids,
            Err(e) => {
                log!("cannot list the containers labelled {LABEL}={node}: {e}");
                return;
            }
        };
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if ids.is_empty() {
            return;
        }
        let mut args = vec!["rm", "-f"];
        args.extend(&ids);
        match docker(&args) {
            Ok(_) => log!("removed {} containers labelled {LABEL}={node}", ids.len()),
            Err(e) => log!("cannot remove the containers labelled {LABEL}={node}: {e}"),
        }
    }
}

fn read_message(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The last 80 lines, then at most the last 2048 bytes of them, as the kubelet falls back to.
fn tail(text: &str) -> String {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut cut = body.rmatch_indices('\n').nth(79).map_or(0, |(i, _)| i + 1);
    cut = cut.max(text.len().saturating_sub(2048));
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    text[cut..].to_string()
}

struct Process {
    child: Child,
    id: String,
    image_id: String,
    log: PathBuf,
    message: PathBuf,
}

fn start_process(
    binary: &Path,
    pod: &PodInfo,
    c: &ContainerSpec,
    log: PathBuf,
    message: PathBuf,
    volumes: &[(String, PathBuf)],
) -> Result<Box<dyn Instance>, StartError> {
    let mut argv: Vec<String> = match &c.command {
        Some(cmd) if !cmd.is_empty() => cmd.iter().chain(&c.args).cloned().collect(),
        _ => [ENTRYPOINT.to_string(), "workload".into()]
            .into_iter()
            .chain(c.args.iter().cloned())
            .collect(),
    };
    // The container's terminationMessagePath is a path in its own filesystem; here each
    // instance writes to a file of its own instead, never to the host's /dev.
    for a in argv.iter_mut().skip(1) {
        if *a == c.termination_path {
            *a = message.to_string_lossy().into_owned();
        }
        // So are paths in its emptyDir volumes: each is a directory of the pod's here.
        for (mount, at) in volumes {
            if let Some(rest) = a.strip_prefix(mount.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                *a = format!("{}{rest}", at.display());
            }
        }
    }
    let program = if argv[0] == ENTRYPOINT {
        binary.to_path_buf()
    } else {
        PathBuf::from(&argv[0])
    };
    let fail = |e: std::io::Error| ("RunContainerError".to_string(), e.to_string());
    let out = File::create(&log).map_err(fail)?;
    let err = out.try_clone().map_err(fail)?;
    let mut cmd = Command::new(&program);
    cmd.args(&argv[1..])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOSTNAME", &pod.name)
        .envs(c.env.iter().map(|(k, v)| (k, v)))
        .current_dir(log.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group, so a stop reaches whatever it started too.
        .process_group(0);
    // SAFETY: between fork and exec only prctl runs, which is async-signal-safe. Should the
    // double be killed outright, its containers die with it; the signal follows the thread
    // that forked, the pod's worker, which outlives its processes.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
    let child = cmd.spawn().map_err(|e| {
        (
            "RunContainerError".to_string(),
            format!("{}: {e}", program.display()),
        )
    })?;
    Ok(Box::new(Process {
        id: format!("process://{}", uuid::Uuid::new_v4().simple()),
        image_id: format!("process://{}", program.display()),
        child,
        log,
        message,
    }))
}

impl Instance for Process {
    fn id(&self) -> String {
        self.id.clone()
    }
    fn image_id(&self) -> String {
        self.image_id.clone()
    }
    fn poll(&mut self) -> Option<i32> {
        match self.child.try_wait() {
            Ok(Some(st)) => Some(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))),
            Ok(None) => None,
            // Only when it is not our child any more: it is gone either way.
            Err(_) => Some(255),
        }
    }
    fn signal(&mut self, kill: bool) {
        use rustix::process::{Pid, Signal, kill_process_group};
        let sig = if kill { Signal::KILL } else { Signal::TERM };
        // It may have exited already: nothing to stop then.
        let _ = kill_process_group(Pid::from_child(&self.child), sig);
    }
    fn termination_message(&self) -> String {
        read_message(&self.message)
    }
    fn log_tail(&self) -> String {
        tail(&read_message(&self.log))
    }
    fn remove(&mut self) {}
}

/// Runs the docker CLI: its trimmed stdout, or its stderr as the error.
fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

struct Docker {
    id: String,
    image_id: String,
    message: PathBuf,
}

fn start_docker(
    node: &str,
    pod: &PodInfo,
    c: &ContainerSpec,
    attempt: u32,
    message: PathBuf,
    volumes: &[(String, PathBuf)],
) -> Result<Box<dyn Instance>, StartError> {
    // Named as dockershim named them, so `docker ps` shows whose container it is.
    let uid: String = pod.uid.chars().take(8).collect();
    let name = format!(
        "k8s_{}_{}_{}_{uid}_{attempt}",
        c.name, pod.name, pod.namespace
    );
    let hostname: String = pod.name.chars().take(63).collect();
    let mut args: Vec<String> = [
        "run",
        "-d",
        "--pull",
        "never",
        "--network",
        "none",
        "--name",
        &name,
        "--hostname",
        hostname.trim_end_matches(['-', '.']),
        "--label",
        &format!("{LABEL}={node}"),
        "-v",
        &format!("{}:{}", message.display(), c.termination_path),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (mount, at) in volumes {
        args.extend(["-v".to_string(), format!("{}:{mount}", at.display())]);
    }
    for (k, v) in &c.env {
        args.extend(["-e".to_string(), format!("{k}={v}")]);
    }
    match &c.command {
        Some(cmd) if !cmd.is_empty() => {
            args.extend(["--entrypoint".to_string(), cmd[0].clone(), c.image.clone()]);
            args.extend(cmd[1..].iter().cloned());
        }
        _ => args.push(c.image.clone()),
    }
    args.extend(c.args.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let id = docker(&args).map_err(|e| {
        // A container created but not started would otherwise linger until shutdown.
        let _ = docker(&["rm", "-f", &name]);
        let reason = if e.contains("No such image") {
            "ErrImageNeverPull"
        } else {
            "RunContainerError"
        };
        (reason.to_string(), e)
    })?;
    let image_id = docker(&["inspect", "-f", "{{.Image}}", &id]).unwrap_or_default();
    Ok(Box::new(Docker {
        id,
        image_id,
        message,
    }))
}

impl Instance for Docker {
    fn id(&self) -> String {
        format!("docker://{}", self.id)
    }
    fn image_id(&self) -> String {
        self.image_id.clone()
    }
    fn poll(&mut self) -> Option<i32> {
        match docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &self.id,
        ]) {
            Ok(s) => match s.split_once(' ') {
                Some(("exited" | "dead", code)) => Some(code.parse().unwrap_or(255)),
                _ => None,
            },
            // Removed behind our back: gone, with no exit code to tell.
            Err(e) if e.contains("No such") => Some(255),
            Err(_) => None,
        }
    }
    fn signal(&mut self, kill: bool) {
        let sig = if kill { "KILL" } else { "TERM" };
        // It may have exited already: nothing to stop then.
        let _ = docker(&["kill", "-s", sig, &self.id]);
    }
    fn termination_message(&self) -> String {
        read_message(&self.message)
    }
    fn log_tail(&self) -> String {
        let out = Command::new("docker")
            .args(["logs", "--tail", "80", &self.id])
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) => {
                let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&o.stderr));
                tail(&text)
            }
            Err(_) => String::new(),
        }
    }
    fn remove(&mut self) {
        if let Err(e) = docker(&["rm", "-f", &self.id]) {
            log!("cannot remove container {}: {e}", self.id);
        }
    }
}
