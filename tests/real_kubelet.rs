//! The kubelet tests against a real kubelet: 1.20.2 built from Debian's source package
//! (../shared/peers/kubernetes/build.sh) on a containerd of its own with a CNI bridge and a
//! pause image (node-env.sh), started and stopped by the harness itself (`--kubelet-binary`).
//! All must pass but those of features newer than 1.20 (which skip, naming the version they
//! need), and nothing may be left: no static pod file, no pod sandbox or container
//! in the containerd, no kubelet process, no work dir, no pod logs.
//!
//! Needs root, the peers and Debian's archive (for containerd); skipped otherwise, unless
//! NODE_CONFORMANCE_REQUIRE_KUBELET=1 (CI), which makes their absence a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const GROUP: &str = r"\[sig-node\] (Node|MirrorPod|Pod Lifecycle|Pods|PodOSRejection|Hostname of Pod|ContainerLogPath|Deleted pods handling|Pod SIGKILL|Containers|Container Runtime blackbox test|Downward API|ConfigMap|Secrets|Variable Expansion|Kubelet when|Kubelet with|KubeletManagedEtcHosts|\[NodeConformance\] Containers Lifecycle) ";
/// The default skip and `[Slow]`: upstream's back-off cap test waits about 30 minutes by
/// design; it runs in a full run, not in this group.
const SKIP: &str = r"\[Flaky\]|\[Serial\]|\[Disruptive\]|\[Slow\]";
/// How many of the group kubelet 1.20.2 runs, all to pass.
const RUNS: usize = 67;
/// How many of the group test a feature newer than kubelet 1.20.2: each skips, naming the
/// kubelet version it needs.
const NEWER: usize = 9;
/// How many test an image's own entrypoint and arguments, which the node's pause image (where
/// the workload runs here) cannot show: each skips, saying so.
const IMAGE_DEFAULTS: usize = 2;

/// The failure kubelet 1.20.2 shows now and then (one run in four here): a pod whose container
/// ignores SIGTERM (with or without a preStop hook that never ends) is killed at the end of its
/// 30 s grace period, but its removal is confirmed more than 30 s later (the kubelet's status
/// manager finds it not yet reclaimed on three of its 10 s passes). The harness reports it, as
/// it must; this run tolerates that failure of those two tests with that message, and nothing
/// else.
fn known_1_20_failure(failure: &str) -> bool {
    failure.starts_with(
        "[sig-node] [NodeConformance] Containers Lifecycle when a pod cannot terminate gracefully should respect termination grace period seconds",
    ) && failure.contains("to be removed: not within 60s")
        && failure.contains("being deleted")
}

/// node-env.sh runs one environment at a time (its bridge has one name).
static NODE_ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn peers() -> Option<PathBuf> {
    let dir = std::env::var_os("NODE_CONFORMANCE_KUBELET_PEERS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peers/kubernetes"),
        PathBuf::from,
    );
    let root = rustix::process::geteuid().is_root();
    let usable = root && dir.join("build.sh").exists() && dir.join("node-env.sh").exists();
    if !usable {
        assert!(
            std::env::var("NODE_CONFORMANCE_REQUIRE_KUBELET").as_deref() != Ok("1"),
            "a real kubelet is required (NODE_CONFORMANCE_REQUIRE_KUBELET=1) but {} is not \
             usable here (root: {root})",
            dir.display()
        );
        eprintln!("skipped: no real kubelet environment ({})", dir.display());
        return None;
    }
    Some(dir)
}

/// The last line a script printed, or a panic with all it said.
fn script(path: &Path, args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(path)
        .args(args)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// node-env.sh's containerd, stopped and removed when dropped.
struct NodeEnv {
    script: PathBuf,
    dir: tempfile::TempDir,
    endpoint: String,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
    // node-env.sh runs one environment per machine: other users of it wait, and are waited for.
    _machine: common::NodeEnvLock,
}

impl NodeEnv {
    fn start(peers: &Path) -> Self {
        let guard = NODE_ENV
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let machine = common::NodeEnvLock::take();
        let dir = tempfile::tempdir().expect("env dir");
        let script_path = peers.join("node-env.sh");
        let endpoint = script(&script_path, &["start", &dir.path().display().to_string()]);
        assert!(
            endpoint.starts_with("unix://"),
            "node-env.sh printed {endpoint:?}"
        );
        NodeEnv {
            script: script_path,
            dir,
            endpoint,
            _one_at_a_time: guard,
            _machine: machine,
        }
    }

    fn ctr(&self, args: &[&str]) -> String {
        let sock = self.dir.path().join("containerd.sock");
        let out = Command::new("ctr")
            .arg("--address")
            .arg(&sock)
            .args(["-n", "k8s.io"])
            .args(args)
            .output()
            .expect("ctr runs");
        assert!(
            out.status.success(),
            "ctr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for NodeEnv {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

/// The harness's binary without its debug information (a quarter of a debug build's size) in
/// `dir`, else the binary itself: the pods run it from a hostPath and the image pull tests pull
/// it as the test image, and a runtime with the native snapshotter copies it whole for each
/// container, which on a small machine slows the kubelet's other pods.
fn without_debug_info(dir: &Path) -> PathBuf {
    let copy = dir.join("node-conformance");
    let stripped = std::fs::copy(common::BIN, &copy).is_ok()
        && Command::new("strip")
            .arg("--strip-debug")
            .arg(&copy)
            .status()
            .is_ok_and(|s| s.success());
    if stripped {
        copy
    } else {
        PathBuf::from(common::BIN)
    }
}

/// Processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|p| p.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|p| std::fs::read(p.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

#[test]
fn the_kubelet_group_passes_against_a_real_kubelet_and_leaves_nothing() {
    let Some(peers) = peers() else { return };
    let bin_dir = PathBuf::from(script(&peers.join("build.sh"), &[]));
    let kubelet = bin_dir.join("kubelet");
    let env = NodeEnv::start(&peers);
    let results = tempfile::tempdir().expect("result dir");
    let work = tempfile::tempdir().expect("work dir");
    let port = common::free_port();
    let out = common::command()
        .args([
            "run",
            "--rootfs",
            "/",
            "--focus",
            GROUP,
            "--skip",
            SKIP,
            "--parallelism",
            "64",
        ])
        .arg("--result-dir")
        .arg(results.path())
        .arg("--workload-binary")
        .arg(without_debug_info(work.path()))
        .arg("--kubelet-binary")
        .arg(&kubelet)
        .args(["--container-runtime-endpoint", &env.endpoint])
        .args(["--api-server-port", &port.to_string()])
        .output()
        .expect("the harness runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(results.path().join("results.json")).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("no results.json ({e}):\n{stdout}\n{stderr}"));
    let log = std::fs::read_to_string(results.path().join("kubelet.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    let tests = json["tests"].as_array().expect("tests");
    let selected: Vec<&serde_json::Value> =
        tests.iter().filter(|t| t["verdict"] != "skipped").collect();
    let (known, failed): (Vec<String>, Vec<String>) = selected
        .iter()
        .filter(|t| t["verdict"] != "passed")
        .map(|t| format!("{}: {}", t["name"], t["message"]))
        .partition(|f| known_1_20_failure(f));
    for k in &known {
        eprintln!("kubelet 1.20.2, known to fail now and then: {k}");
    }
    let skips: Vec<(&str, &str)> = tests
        .iter()
        .filter(|t| t["selected"] == true && t["verdict"] == "skipped")
        .map(|t| {
            (
                t["name"].as_str().unwrap_or("?"),
                t["message"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let newer = skips
        .iter()
        .filter(|(_, m)| m.starts_with("needs kubelet v1."))
        .count();
    let image = skips
        .iter()
        .filter(|(_, m)| m.contains("give the harness the workload image"))
        .count();
    assert!(
        newer == NEWER && image == IMAGE_DEFAULTS && skips.len() == NEWER + IMAGE_DEFAULTS,
        "skipped: {skips:#?}\n\nstdout:\n{stdout}"
    );
    assert!(
        failed.is_empty() && selected.len() == RUNS,
        "{} selected, failed:\n{}\n\nstdout:\n{stdout}\nstderr:\n{stderr}\nkubelet log (end, newest first):\n{}",
        selected.len(),
        failed.join("\n"),
        tail.join("\n")
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let node = tests
        .iter()
        .find(|t| {
            t["name"]
                .as_str()
                .is_some_and(|n| n.contains("registers and turns Ready"))
        })
        .expect("the Node test");
    let checks = node["checks"].to_string();
    assert!(
        checks.contains("v1.20.2"),
        "kubelet version not reported: {checks}"
    );
    // Its server refused a client without the run's certificate and answered the harness.
    assert!(
        checks.contains("without a client certificate") && checks.contains("401 Unauthorized"),
        "{checks}"
    );

    // Nothing left.
    let run_id = json["run_id"].as_str().expect("run id").to_string();
    // What the harness says when it cannot clean up (a kubelet's status may say "could not"
    // of its own containers while it removes them).
    assert!(
        !stdout.contains("could not remove") && !stdout.contains("could not delete"),
        "{stdout}"
    );
    let work = format!("/var/lib/node-conformance/runs/{run_id}");
    assert!(!Path::new(&work).exists(), "{work} is left");
    assert!(
        processes_with(&work).is_empty(),
        "processes left: {:?}",
        processes_with(&work)
    );
    assert_eq!(
        env.ctr(&["containers", "ls", "-q"]),
        "",
        "containers left in the containerd"
    );
    assert_eq!(
        env.ctr(&["tasks", "ls", "-q"]),
        "",
        "tasks left in the containerd"
    );
    let namespace = format!("node-conformance-{run_id}");
    for dir in ["/var/log/pods", "/var/log/containers"] {
        let left: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains(&namespace))
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
    // The image pull tests' pulls from the run's registry, with all their references.
    let images = env.ctr(&["images", "ls", "-q"]);
    assert!(
        !images.contains("127.0.0.1:"),
        "images pulled from the run's registry are left: {images}"
    );
    // What the pods ran: the harness's binary in the node's pause image, nothing imported.
    assert!(
        images
            .lines()
            .all(|i| i.contains("pause") || i.starts_with("sha256:")),
        "images in the containerd: {images}"
    );
}

#[test]
fn what_a_sigkilled_run_and_its_kubelet_left_is_removed_by_the_next_run() {
    let Some(peers) = peers() else { return };
    let bin_dir = PathBuf::from(script(&peers.join("build.sh"), &[]));
    let env = NodeEnv::start(&peers);
    let results = tempfile::tempdir().expect("result dir");
    let tunable = || std::fs::read_to_string("/proc/sys/kernel/panic").unwrap_or_default();
    let before = tunable();
    let mut child = common::command()
        .args(["run", "--rootfs", "/", "--focus", GROUP, "--skip", SKIP])
        .arg("--result-dir")
        .arg(results.path())
        .arg("--kubelet-binary")
        .arg(bin_dir.join("kubelet"))
        .args(["--container-runtime-endpoint", &env.endpoint])
        .args(["--api-server-port", &common::free_port().to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the harness runs");
    // Killed once its kubelet runs pods: a work dir, sandboxes and changed tunables to recover.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::time::Instant::now() < deadline
        && env.ctr(&["tasks", "ls", "-q"]).lines().count() < 3
    {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let work: Vec<PathBuf> = std::fs::read_dir("/var/lib/node-conformance/runs")
        .expect("/var/lib/node-conformance/runs")
        .flatten()
        .map(|e| e.path())
        .collect();
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    assert!(!work.is_empty(), "no work dir while the kubelet ran");
    assert_ne!(
        env.ctr(&["containers", "ls", "-q"]),
        "",
        "nothing was left to recover"
    );
    let next = common::run_on(
        Path::new("/"),
        &["--focus", "System Verification the operating system"],
    );
    let said = next.stdout();
    assert!(said.contains("no longer running"), "{said}");
    for w in &work {
        assert!(!w.exists(), "{} is left: {said}", w.display());
        assert!(
            processes_with(&w.display().to_string()).is_empty(),
            "a kubelet is left"
        );
    }
    assert_eq!(
        env.ctr(&["containers", "ls", "-q"]),
        "",
        "containers left: {said}"
    );
    assert_eq!(tunable(), before, "kernel.panic not restored: {said}");
    let images = env.ctr(&["images", "ls", "-q"]);
    assert!(
        !images.contains("/node-conformance/public:")
            && !images.contains("/node-conformance/private:"),
        "images pulled from the dead run's registry are left: {images}\n{said}"
    );
}

/// A one-node cluster (`control-plane --kubelet-binary`) as an ordinary account on the node
/// meets it: the user `nobody` posts a pod that mounts the host's `/` and writes a file there
/// as root, without credentials, and asks the kubelet's own server for its pods. Both are
/// refused (401), no pod is made, nothing runs, no file appears; the same pod with the admin
/// kubeconfig's token would be accepted (a dry run says so), so the 401 is the credentials'.
#[test]
fn an_ordinary_account_gets_nothing_from_a_running_one_node_cluster() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let Some(peers) = peers() else { return };
    let bin_dir = PathBuf::from(script(&peers.join("build.sh"), &[]));
    let env = NodeEnv::start(&peers);
    let port = common::free_port();
    /// SIGTERM and a wait when dropped, so a failed assertion leaves no cluster running.
    struct Terminated(std::process::Child);
    impl Drop for Terminated {
        fn drop(&mut self) {
            let _ = Command::new("kill").arg(self.0.id().to_string()).status();
            let _ = self.0.wait();
        }
    }
    let mut cp = common::command()
        .arg("control-plane")
        .args(["--api-server-port", &port.to_string()])
        .arg("--kubelet-binary")
        .arg(bin_dir.join("kubelet"))
        .args(["--container-runtime-endpoint", &env.endpoint])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("control-plane runs");
    let stdout = cp.stdout.take().expect("stdout");
    let cp = Terminated(cp);
    let mut lines = std::io::BufReader::new(stdout);
    let mut first = String::new();
    lines.read_line(&mut first).expect("a line");
    let kubeconfig = first
        .split_once("admin kubeconfig: ")
        .map(|(_, p)| PathBuf::from(p.trim()))
        .unwrap_or_else(|| panic!("no kubeconfig in {first:?}"));
    let k: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&kubeconfig).expect("kubeconfig"))
            .expect("JSON");
    let token = k["users"][0]["user"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let target = format!("/tmp/node-conformance-pwned-{}", std::process::id());
    let workload = common::static_binary().expect("a static harness binary");
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "root", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "k8s.gcr.io/pause:3.2",
            "command": ["/bin/node-conformance", "workload", "--write", format!("/host{target}")],
            "volumeMounts": [{"name": "host", "mountPath": "/host"},
                             {"name": "bin", "mountPath": "/bin"}]}],
            "volumes": [{"name": "host", "hostPath": {"path": "/"}},
                        {"name": "bin", "hostPath": {"path": workload.parent().expect("dir")}}]}});
    let curl = |args: &[&str], as_nobody: bool| -> (u16, String) {
        let mut c = Command::new("curl");
        c.args(["-sk", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"])
            .args(args);
        if as_nobody {
            c.uid(65534).gid(65534);
        }
        let out = c.output().expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_string())
    };
    let api = format!("https://127.0.0.1:{port}");
    let body = pod.to_string();
    let post = |extra: &[&str], query: &str| {
        let mut args = vec![
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
        ];
        args.extend_from_slice(extra);
        let url = format!("{api}/api/v1/namespaces/default/pods{query}");
        let mut all: Vec<&str> = args.clone();
        all.push(&url);
        curl(&all, true)
    };
    let (code, said) = post(&[], "");
    assert_eq!(code, 401, "{said}");
    let bearer = format!("Authorization: Bearer {token}");
    let (code, said) = post(&["-H", &bearer], "?dryRun=All");
    assert_eq!(code, 201, "the same pod with credentials: {said}");
    // The kubelet serves once it has started; then it answers nobody.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (code, said) = loop {
        let (code, said) = curl(&["https://127.0.0.1:10250/pods"], true);
        if code != 0 || std::time::Instant::now() > deadline {
            break (code, said);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert_eq!(code, 401, "the kubelet's server: {said}");
    std::thread::sleep(std::time::Duration::from_secs(15));
    let (code, pods) = curl(
        &[
            "-H",
            &bearer,
            &format!("{api}/api/v1/namespaces/default/pods"),
        ],
        false,
    );
    drop(cp);
    let written = Path::new(&target).exists();
    let _ = std::fs::remove_file(&target);
    assert_eq!(code, 200, "{pods}");
    let list: serde_json::Value = serde_json::from_str(&pods).expect("a list");
    assert_eq!(list["items"], serde_json::json!([]), "{pods}");
    assert!(!written, "the pod ran and wrote {target}");
    assert_eq!(env.ctr(&["containers", "ls", "-q"]), "", "containers left");
    assert!(!kubeconfig.exists(), "the admin kubeconfig is left");
}

/// Upstream's Containers tests where the workload runs in its own image (`--pod-image`), the
/// image the harness makes from its binary (src/runtime/image.rs) imported into the kubelet's
/// containerd: the image's default entrypoint and arguments are then the workload's, and all
/// four tests run, where the node's pause image skips two of them.
#[test]
fn the_containers_tests_pass_in_the_workload_image() {
    let Some(peers) = peers() else { return };
    let Some(binary) = common::static_binary() else {
        return;
    };
    let bin_dir = PathBuf::from(script(&peers.join("build.sh"), &[]));
    let env = NodeEnv::start(&peers);
    let tag = "node-conformance-workload:containers-test";
    let chunks = node_conformance::runtime::image::archive(
        bytes::Bytes::from(std::fs::read(&binary).expect("the static binary")),
        tag,
        "containers-test",
    )
    .expect("an image archive");
    let archive = env.dir.path().join("workload.tar");
    std::fs::write(&archive, chunks.concat()).expect("archive written");
    env.ctr(&["images", "import", &archive.display().to_string()]);
    let results = tempfile::tempdir().expect("result dir");
    let port = common::free_port();
    let out = common::command()
        .args([
            "run",
            "--rootfs",
            "/",
            "--focus",
            r"\[sig-node\] Containers ",
        ])
        .arg("--result-dir")
        .arg(results.path())
        .arg("--kubelet-binary")
        .arg(bin_dir.join("kubelet"))
        .args(["--container-runtime-endpoint", &env.endpoint])
        .args(["--api-server-port", &port.to_string()])
        .args(["--pod-image", tag])
        .output()
        .expect("the harness runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(results.path().join("results.json")).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("no results.json ({e}):\n{stdout}"));
    let passed: Vec<&str> = json["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .filter(|t| t["selected"] == true && t["verdict"] == "passed")
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(passed.len(), 4, "{passed:#?}\n{stdout}");
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    env.ctr(&["images", "rm", tag]);
}

/// kubectl against a one-node cluster (`control-plane --kubelet-binary`): `kubectl exec`
/// (SPDY or websocket, whichever kubectl speaks, relayed by the control plane to the kubelet)
/// runs a command in a container and gets its output and exit code, and `kubectl logs` reads
/// the container's log. Skipped without kubectl on PATH.
#[test]
fn kubectl_exec_and_logs_reach_a_real_kubelet_through_the_control_plane() {
    use std::io::BufRead;
    let Some(peers) = peers() else { return };
    let kubectl_present = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !kubectl_present {
        assert!(
            std::env::var("NODE_CONFORMANCE_REQUIRE_KUBECTL").as_deref() != Ok("1"),
            "kubectl is required (NODE_CONFORMANCE_REQUIRE_KUBECTL=1) but is not on PATH"
        );
        eprintln!("skipped: no kubectl on PATH");
        return;
    }
    let Some(workload) = common::static_binary() else {
        return;
    };
    let bin_dir = PathBuf::from(script(&peers.join("build.sh"), &[]));
    let env = NodeEnv::start(&peers);
    let port = common::free_port();
    struct Terminated(std::process::Child);
    impl Drop for Terminated {
        fn drop(&mut self) {
            let _ = Command::new("kill").arg(self.0.id().to_string()).status();
            let _ = self.0.wait();
        }
    }
    let mut cp = common::command()
        .arg("control-plane")
        .args(["--api-server-port", &port.to_string()])
        .arg("--kubelet-binary")
        .arg(bin_dir.join("kubelet"))
        .args(["--container-runtime-endpoint", &env.endpoint])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("control-plane runs");
    let stdout = cp.stdout.take().expect("stdout");
    let cp = Terminated(cp);
    let mut first = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut first)
        .expect("a line");
    let kubeconfig = first
        .split_once("admin kubeconfig: ")
        .map(|(_, p)| PathBuf::from(p.trim()))
        .unwrap_or_else(|| panic!("no kubeconfig in {first:?}"));
    let home = tempfile::tempdir().expect("home");
    let kubectl = |args: &[&str]| -> std::process::Output {
        Command::new("kubectl")
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", home.path())
            .args(["--request-timeout", "60s"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("kubectl runs")
    };
    // No scheduler runs: the pod names the node, once the kubelet has registered it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let node = loop {
        let out = kubectl(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
        let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !name.is_empty() {
            break name;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no node registered: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_secs(1));
    };
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "exec", "namespace": "default"},
        "spec": {"terminationGracePeriodSeconds": 1, "nodeName": node,
            "containers": [{"name": "c", "image": "k8s.gcr.io/pause:3.2",
            "imagePullPolicy": "Never",
            "command": ["/bin/node-conformance", "workload", "--stdout", "container is alive",
                "--sleep", "600"],
            "volumeMounts": [{"name": "bin", "mountPath": "/bin", "readOnly": true}]}],
            "volumes": [{"name": "bin", "hostPath": {"path": workload.parent().expect("dir")}}]}});
    let manifest = home.path().join("pod.json");
    std::fs::write(&manifest, pod.to_string()).expect("manifest");
    let out = kubectl(&["apply", "-f", &manifest.display().to_string()]);
    assert!(
        out.status.success(),
        "apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/exec",
        "--timeout=180s",
    ]);
    assert!(
        out.status.success(),
        "the pod is not Ready: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&kubectl(&["get", "pod", "exec", "-o", "json"]).stdout)
    );
    let out = kubectl(&[
        "exec",
        "exec",
        "--",
        "/bin/node-conformance",
        "workload",
        "--stdout",
        "hello",
        "--stderr",
        "oops",
    ]);
    let said = format!(
        "stdout {:?}, stderr {:?}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n", "{said}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("oops"),
        "{said}"
    );
    // A nonzero exit comes back as kubectl's own exit code.
    let out = kubectl(&[
        "exec",
        "exec",
        "-c",
        "c",
        "--",
        "/bin/node-conformance",
        "workload",
        "--exit",
        "3",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A command that does not exist is the runtime's error, not a hang.
    let out = kubectl(&["exec", "exec", "--", "/no/such/command"]);
    assert!(!out.status.success());
    let out = kubectl(&["logs", "exec"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "container is alive\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kubectl(&["delete", "pod", "exec", "--wait=true", "--timeout=60s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(cp);
    assert_eq!(env.ctr(&["containers", "ls", "-q"]), "", "containers left");
}
