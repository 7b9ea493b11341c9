//! Helpers shared by the integration tests: run the binary as a user would and read what it
//! wrote.
#![allow(dead_code)]

pub mod pki;
pub mod protobuf;
pub mod tree;

#[allow(unused_imports)]
pub use tree::copy_tree;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use quick_junit::{Report, TestCase, TestCaseStatus};

pub const BIN: &str = env!("CARGO_BIN_EXE_node-conformance");

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The binary with a clean environment, so a FOCUS or SKIP in the caller's shell cannot leak in.
pub fn command() -> Command {
    let mut c = Command::new(BIN);
    for var in [
        "FOCUS",
        "SKIP",
        "ROOTFS",
        "INSECURE_HTTP",
        "ADMIN_KUBECONFIG",
        "REPORT_PATH",
        "SYSTEM_SPEC_FILE",
        "PARALLELISM",
        "API_SERVER_PORT",
        "POD_IMAGE",
        "POD_MANIFEST_PATH",
        "NODE_READY_TIMEOUT",
        "MIRROR_POD_TIMEOUT",
        "POD_START_TIMEOUT",
        "KUBELET_BINARY",
        "CONTAINER_RUNTIME_ENDPOINT",
        "TEST_TIMEOUT",
        "WORKLOAD_BINARY",
        "KUBELET_CONFIG",
        "KUBECONFIG_PATH",
        "PKI_DIR",
        "FLEET_REPORT_DIR",
        "KEEP_RUNNING",
        "SONOBUOY",
        "SONOBUOY_RESULTS_DIR",
        "IMAGE",
        "NAMESPACE",
        "NODE_SELECTOR",
        "EXCLUDE_CONTROL_PLANE",
        "HOST_RESULT_DIR",
        "RUN_ID",
        "PLUGIN_NAME",
        "KUBECONFIG",
        "COLLECT_DIR",
        "COLLECT_TIMEOUT",
    ] {
        c.env_remove(var);
    }
    c
}

pub struct Run {
    pub output: Output,
    pub dir: tempfile::TempDir,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    pub fn junit_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("junit_01.xml")).expect("junit_01.xml written")
    }
    /// The JUnit file, parsed: proves it is well-formed.
    pub fn junit(&self) -> Report {
        Report::deserialize_from_str(&self.junit_text()).expect("junit_01.xml parses")
    }
    pub fn json(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.path().join("results.json"))
            .expect("results.json written");
        serde_json::from_str(&text).expect("results.json parses")
    }
    /// The test case whose name contains `part`; exactly one must.
    pub fn case(&self, part: &str) -> TestCase {
        let report = self.junit();
        let mut found: Vec<TestCase> = report.test_suites[0]
            .test_cases
            .iter()
            .filter(|c| c.name.as_str().contains(part))
            .cloned()
            .collect();
        assert_eq!(found.len(), 1, "one test case named like {part:?}");
        found.remove(0)
    }
    /// The full names of the failed test cases.
    pub fn failed(&self) -> Vec<String> {
        self.junit().test_suites[0]
            .test_cases
            .iter()
            .filter(|c| matches!(status(c), Status::Failed))
            .map(|c| c.name.as_str().to_string())
            .collect()
    }

    /// Debug text for assertion messages.
    pub fn explain(&self) -> String {
        format!(
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code(),
            self.stdout(),
            self.stderr()
        )
    }
}

/// How many tests the harness registers (what `list` prints with nothing filtered).
pub fn registered() -> usize {
    let out = command()
        .arg("list")
        .env("SKIP", "")
        .output()
        .expect("list runs");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// `run` of the System Verification group only, against a fixture root.
pub fn run_system(root: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["--focus", "System Verification"];
    args.extend_from_slice(extra);
    run_on(root, &args)
}

/// `node-conformance run --rootfs <root> --result-dir <tmp> <extra...>`.
pub fn run_on(root: &Path, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = command()
        .arg("run")
        .arg("--rootfs")
        .arg(root)
        .arg("--result-dir")
        .arg(dir.path())
        .args(extra)
        .output()
        .expect("binary runs");
    Run { output, dir }
}

/// [`run_on`], killing the harness if it has not finished within `secs`: a hang fails the
/// test instead of stalling the suite.
pub fn run_on_within(root: &Path, extra: &[&str], secs: u64) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = command()
        .arg("run")
        .arg("--rootfs")
        .arg(root)
        .arg("--result-dir")
        .arg(dir.path())
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary runs");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(output) => Run {
            output: output.expect("wait"),
            dir,
        },
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("the harness did not finish within {secs}s");
        }
    }
}

pub enum Status {
    Passed,
    Failed,
    Skipped,
}

pub fn status(case: &TestCase) -> Status {
    match &case.status {
        TestCaseStatus::Success { .. } => Status::Passed,
        TestCaseStatus::NonSuccess { .. } => Status::Failed,
        TestCaseStatus::Skipped { .. } => Status::Skipped,
    }
}

pub fn message(case: &TestCase) -> String {
    match &case.status {
        TestCaseStatus::Success { .. } => String::new(),
        TestCaseStatus::NonSuccess { message, .. } | TestCaseStatus::Skipped { message, .. } => {
            message
                .as_ref()
                .map(|m| m.as_str().to_string())
                .unwrap_or_default()
        }
    }
}

pub fn system_out(case: &TestCase) -> String {
    case.system_out
        .as_ref()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

/// Whether a Docker Engine answers here. When CI says Docker must be tested
/// (NODE_CONFORMANCE_REQUIRE_DOCKER=1), its absence fails instead of skipping.
pub fn docker_available() -> bool {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("NODE_CONFORMANCE_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "Docker is required (NODE_CONFORMANCE_REQUIRE_DOCKER=1) but `docker info` does not answer"
        );
        eprintln!("skipped: no Docker Engine answers `docker info`");
    }
    ok
}

/// The static harness binary the test image is made from: NODE_CONFORMANCE_STATIC_BIN, else
/// the binary under test (every Linux glibc build is static, see .cargo/config.toml).
pub fn static_binary() -> Option<PathBuf> {
    let path = std::env::var_os("NODE_CONFORMANCE_STATIC_BIN")
        .map_or_else(|| PathBuf::from(BIN), PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("NODE_CONFORMANCE_REQUIRE_DOCKER").as_deref() != Ok("1"),
        "Docker tests need the static binary at {}",
        path.display()
    );
    eprintln!("skipped: no static binary at {}", path.display());
    None
}

/// `docker` with arguments; its stdout.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The run id the harness recorded in junit_01.xml.
pub fn run_id(run: &Run) -> String {
    run_id_of(&run.junit())
}

pub fn run_id_of(report: &Report) -> String {
    report.test_suites[0]
        .properties
        .iter()
        .find(|p| p.name.as_str() == "run-id")
        .map(|p| p.value.as_str().to_string())
        .expect("run-id property")
}

/// Containers and images still labelled with a run id.
pub fn leftovers(run_id: &str) -> String {
    let filter = format!("label=node-conformance.run={run_id}");
    let mut left = docker(&["ps", "-aq", "--filter", &filter]);
    left.push_str(&docker(&["images", "-q", "--filter", &filter]));
    left
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `node-conformance control-plane` on a free port, answering; killed when dropped.
pub struct ControlPlane {
    child: std::process::Child,
    pub port: u16,
    /// The admin kubeconfig's credentials, when served over TLS.
    pub secure: Option<Secure>,
    _dir: Option<tempfile::TempDir>,
}

/// What a client of a TLS control plane needs, read from the admin kubeconfig it wrote.
#[derive(Debug, Clone)]
pub struct Secure {
    pub kubeconfig: std::path::PathBuf,
    pub token: String,
    /// The CA, PEM.
    pub ca: String,
}

impl ControlPlane {
    /// Starts one over plain HTTP (`--insecure-http`), on a port the kernel picks, read from
    /// the line it prints: a port picked beforehand could be taken by another test's server
    /// in between. For the tests of what the API answers, whoever asks.
    pub fn start() -> Self {
        Self::spawn(&["--insecure-http"], None)
    }

    /// Starts one as a user would: over TLS, every request authenticated, its admin
    /// kubeconfig written into a directory of the test's.
    pub fn start_secure() -> Self {
        let dir = tempfile::tempdir().expect("a dir for the kubeconfig");
        let kubeconfig = dir.path().join("admin.kubeconfig");
        let mut cp = Self::spawn(
            &["--admin-kubeconfig", &kubeconfig.display().to_string()],
            Some(dir),
        );
        let text = std::fs::read_to_string(&kubeconfig).expect("the admin kubeconfig");
        let k: serde_json::Value = serde_json::from_str(&text).expect("a JSON kubeconfig");
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD
            .decode(
                k["clusters"][0]["cluster"]["certificate-authority-data"]
                    .as_str()
                    .expect("CA data"),
            )
            .expect("base64");
        cp.secure = Some(Secure {
            kubeconfig,
            token: k["users"][0]["user"]["token"]
                .as_str()
                .expect("a token")
                .to_string(),
            ca: String::from_utf8(ca).expect("PEM"),
        });
        cp
    }

    fn spawn(extra: &[&str], dir: Option<tempfile::TempDir>) -> Self {
        use std::io::BufRead;
        let mut child = command()
            .args(["control-plane", "--api-server-port", "0"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the control plane starts");
        let stdout = child.stdout.take().expect("its stdout");
        let mut first = String::new();
        let mut lines = std::io::BufReader::new(stdout);
        lines
            .read_line(&mut first)
            .expect("it says where it serves");
        let port = first
            .split_once("://127.0.0.1:")
            .and_then(|(_, rest)| {
                rest.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no port in {first:?}"));
        // Read on, so a line it prints later never blocks it on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
        ControlPlane {
            child,
            port,
            secure: None,
            _dir: dir,
        }
    }

    /// The base URL: `https://` when served over TLS.
    pub fn url(&self) -> String {
        let scheme = if self.secure.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }
}

impl ControlPlane {
    /// Sends SIGTERM; whether the process exited within `limit`.
    pub fn terminate_within(&mut self, limit: std::time::Duration) -> bool {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a child's pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM sent");
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Holds /tmp/node-env.lock (flock, exclusive) while alive, as `flock /tmp/node-env.lock`
/// does: waits while another holder has it.
pub struct NodeEnvLock {
    _file: std::fs::File,
}

impl NodeEnvLock {
    pub fn take() -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/tmp/node-env.lock")
            .expect("/tmp/node-env.lock");
        if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            eprintln!("waiting for /tmp/node-env.lock, held by another user of node-env.sh");
            let began = std::time::Instant::now();
            rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
                .expect("flock /tmp/node-env.lock");
            eprintln!(
                "took /tmp/node-env.lock after {} s",
                began.elapsed().as_secs()
            );
        }
        NodeEnvLock { _file: file }
    }
}
