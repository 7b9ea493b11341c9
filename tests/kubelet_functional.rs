//! The kubelet tests against the kubelet test double (tests/kubelet_double): they pass against
//! it, and each deliberately broken variant of it fails exactly the tests that should notice.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{Run, Status, run_on, status};

const NODE: &str = "double-node";
const GROUP: &str = r"\[sig-node\] (Node|MirrorPod|Pod Lifecycle|Container Runtime blackbox test) ";
/// The kubelet tests, as `list --focus` shows them.
const MIRROR: &[&str] = &[
    "should be updated when static pod updated",
    "should be recreated when mirror pod gracefully deleted",
    "should be recreated when mirror pod forcibly deleted",
    "should successfully recreate when file is removed and recreated",
];

fn double_binary() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/kubelet-double
    let exe = std::env::current_exe().expect("test binary path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    profile.join("examples").join("kubelet-double")
}

/// The static pod directory, a node path in the root: the harness writes into it through
/// the root, the double reads it at the root's path.
const MANIFESTS: &str = "/etc/kubernetes/manifests";

/// A node root whose kubelet points at the local control plane on `port`. As root, with the
/// credentials `kubelet-config` makes in the root (what a user does before attaching a
/// kubelet): the control plane serves over TLS with that CA and the double authenticates with
/// its client certificate. As another user, who cannot keep root-only credentials, over plain
/// HTTP (`--insecure-http`).
struct Node {
    root: tempfile::TempDir,
    port: u16,
    double: Option<Child>,
    secure: bool,
}

impl Node {
    fn new(server: Option<&str>) -> Self {
        let root = tempfile::tempdir().expect("root");
        let port = common::free_port();
        let secure = rustix::process::geteuid().is_root();
        let write = |path: &str, text: &str| {
            let p = root.path().join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        };
        std::fs::create_dir_all(root.path().join(&MANIFESTS[1..])).expect("manifests");
        write("etc/hostname", &format!("{NODE}\n"));
        write(
            "var/lib/kubelet/config.yaml",
            &format!(
                "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
                 staticPodPath: {MANIFESTS}\n"
            ),
        );
        let kubeconfig = if secure && server.is_none() {
            let out = common::command()
                .arg("kubelet-config")
                .arg("--rootfs")
                .arg(root.path())
                .args(["--api-server-port", &port.to_string()])
                .args(["--pod-manifest-path", MANIFESTS])
                .output()
                .expect("kubelet-config runs");
            assert!(out.status.success(), "kubelet-config: {out:?}");
            std::fs::read_to_string(
                root.path()
                    .join("var/lib/node-conformance/attach/kubelet.kubeconfig"),
            )
            .expect("the kubeconfig kubelet-config wrote")
        } else {
            let server = server.map_or_else(|| format!("http://127.0.0.1:{port}"), str::to_string);
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n\
                 contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n\
                 users:\n- name: u\n  user: {{}}\n"
            )
        };
        write("etc/kubernetes/kubelet.conf", &kubeconfig);
        Node {
            root,
            port,
            double: None,
            secure,
        }
    }

    /// The static pod directory, as the double sees it.
    fn manifests(&self) -> PathBuf {
        self.root.path().join(&MANIFESTS[1..])
    }

    fn start_double(&mut self, broken: Option<&str>) {
        self.start_double_with(broken, &[]);
    }

    fn start_double_with(&mut self, broken: Option<&str>, extra: &[&str]) {
        let mut c = Command::new(double_binary());
        c.args(extra);
        if self.secure {
            c.arg("--kubeconfig").arg(
                self.root
                    .path()
                    .join("var/lib/node-conformance/attach/kubelet.kubeconfig"),
            );
        } else {
            c.args(["--server", &format!("http://127.0.0.1:{}", self.port)]);
        }
        c.args(["--node-name", NODE])
            .arg("--pod-manifest-path")
            .arg(self.manifests())
            .args(["--workload-binary", common::BIN])
            .args(["--sync-ms", "100", "--heartbeat-ms", "500"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(b) = broken {
            c.args(["--break", b]);
        }
        self.double = Some(c.spawn().expect("the kubelet double starts"));
    }

    fn run(&self, focus: &str, waits: &str) -> Run {
        self.run_with(
            focus,
            waits,
            &["--pod-image", "node-conformance-workload:double"],
        )
    }

    fn run_with(&self, focus: &str, waits: &str, extra: &[&str]) -> Run {
        let port = self.port.to_string();
        let mut args = vec![
            "--focus",
            focus,
            "--api-server-port",
            &port,
            "--parallelism",
            "16",
        ];
        if !self.secure {
            args.push("--insecure-http");
        }
        args.extend_from_slice(extra);
        args.extend(["--node-ready-timeout", waits, "--mirror-pod-timeout", waits]);
        args.extend(["--pod-start-timeout", waits]);
        args.extend(["--pod-manifest-path", MANIFESTS]);
        run_on(self.root.path(), &args)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut d) = self.double.take() {
            // SIGTERM so the double stops what it started.
            let _ = Command::new("kill").arg(d.id().to_string()).status();
            let _ = d.wait();
        }
    }
}

/// The kubelet tests of the group.
const KUBELET_CASES: usize = 18;
/// Those of them that pull images.
const PULL_TESTS: &str = "when running a container with a new image";

fn assert_failed_exactly(run: &Run, want: &[&str]) {
    assert_failed_exactly_of(run, want, KUBELET_CASES);
}

/// [`assert_failed_exactly`] of a run where `cases` of the group's kubelet tests run.
fn assert_failed_exactly_of(run: &Run, want: &[&str], cases: usize) {
    let failed = run.failed();
    for w in want {
        assert!(
            failed.iter().any(|f| f.contains(w)),
            "{w:?} should have failed; failed: {failed:?}\n{}",
            run.explain()
        );
    }
    assert_eq!(
        failed.len(),
        want.len(),
        "failed: {failed:?}\n{}",
        run.explain()
    );
    let report = run.junit();
    let kubelet_cases = report.test_suites[0]
        .test_cases
        .iter()
        .filter(|c| c.name.as_str().contains("[NodeConformance]"))
        .filter(|c| matches!(status(c), Status::Passed | Status::Failed))
        .count();
    assert_eq!(
        kubelet_cases,
        cases,
        "every kubelet test ran\n{}",
        run.explain()
    );
}

#[test]
fn the_kubelet_group_passes_against_the_double_and_leaves_nothing() {
    let mut node = Node::new(None);
    node.start_double(None);
    let run = node.run(GROUP, "60");
    assert_eq!(run.code(), 0, "{}", run.explain());
    assert_failed_exactly(&run, &[]);
    let stdout = run.stdout();
    assert!(
        stdout.contains("stopped the local control plane"),
        "{stdout}"
    );
    let left: Vec<_> = std::fs::read_dir(node.manifests())
        .expect("manifests")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "static pod files left behind: {left:?}");
    // The mirror pod check is upstream's, in full.
    let case = run.case("should be recreated when mirror pod forcibly deleted");
    let out = case
        .system_out
        .as_ref()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    assert!(out.contains("new uid"), "{out}");
}

/// The published workload image, built from the static binary for one test and removed after.
struct WorkloadImage(String);

impl WorkloadImage {
    fn build(bin: &Path) -> Self {
        let context = tempfile::tempdir().expect("context");
        std::fs::copy(bin, context.path().join("node-conformance")).expect("copy the binary");
        let tag = format!("node-conformance-workload:double-{}", std::process::id());
        let dockerfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/workload/Dockerfile");
        let status = Command::new("docker")
            .args(["build", "--quiet", "-t", &tag, "-f"])
            .arg(dockerfile)
            .arg(context.path())
            .stdout(Stdio::null())
            .status()
            .expect("docker build runs");
        assert!(status.success(), "docker build of {tag}");
        WorkloadImage(tag)
    }
}

impl Drop for WorkloadImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .stdout(Stdio::null())
            .status();
    }
}

/// The same group with the pods in Docker containers of the published workload image.
#[test]
fn the_kubelet_group_passes_with_the_pods_in_docker() {
    if !common::docker_available() {
        return;
    }
    let Some(bin) = common::static_binary() else {
        return;
    };
    let image = WorkloadImage::build(&bin);
    let mut node = Node::new(None);
    node.start_double_with(None, &["--runtime", "docker"]);
    // The double runs Docker containers of the images it is given, and Docker pulls from the
    // run's registry without the pods' pull secrets: the pull tests are the process runtime's.
    let run = node.run_with(
        GROUP,
        "60",
        &["--pod-image", &image.0, "--skip", PULL_TESTS],
    );
    assert_eq!(run.code(), 0, "{}", run.explain());
    assert_failed_exactly_of(&run, &[], KUBELET_CASES - 4);
    drop(node);
    let left = common::docker(&[
        "ps",
        "-aq",
        "--filter",
        "label=node-conformance.kubelet-double",
    ]);
    assert_eq!(left.trim(), "", "containers left behind");
}

/// The group against the double broken in one named way, with short waits; the run fails.
fn against_broken_double(broken: &str) -> Run {
    let mut node = Node::new(None);
    node.start_double(Some(broken));
    let run = node.run(GROUP, "5");
    assert_eq!(run.code(), 1, "{}", run.explain());
    run
}

#[test]
fn a_mirror_pod_without_its_owner_reference_fails_the_mirror_pod_tests() {
    let run = against_broken_double("owner-reference");
    assert_failed_exactly(&run, MIRROR);
    assert!(run.junit_text().contains("ownerReference"));
}

#[test]
fn a_mirror_pod_with_the_wrong_hash_fails_the_mirror_pod_tests() {
    let run = against_broken_double("hash");
    assert_failed_exactly(&run, MIRROR);
    assert!(run.junit_text().contains("kubernetes.io/config.mirror"));
}

#[test]
fn a_node_never_ready_fails_the_ready_test_only() {
    let run = against_broken_double("ready");
    assert_failed_exactly(&run, &["registers and turns Ready"]);
    assert!(run.junit_text().contains("Ready=False"));
}

#[test]
fn a_mirror_pod_not_recreated_fails_the_deletion_tests_only() {
    let run = against_broken_double("mirror-recreate");
    assert_failed_exactly(&run, &MIRROR[1..3]);
    // The wait's failure tells the pod's last state and its events (the double writes none).
    let text = run.junit_text();
    assert!(
        text.contains("to be Running: not within 5s; last seen: "),
        "{text}"
    );
    assert!(text.contains("; no events"), "{text}");
}

#[test]
fn a_kubelet_that_pulls_no_image_fails_the_image_pull_tests() {
    let run = against_broken_double("no-pull");
    assert_failed_exactly(
        &run,
        &[
            "should not be able to pull image from invalid registry",
            "should be able to pull image [",
            "should not be able to pull from private registry without secret",
            "should be able to pull from private registry with secret",
        ],
    );
    let text = run.junit_text();
    assert!(text.contains("registry requests"), "{text}");
}

#[test]
fn a_kubelet_pointing_elsewhere_skips_the_group_saying_what_to_change() {
    let node = Node::new(Some("https://127.0.0.1:6443"));
    let run = node.run(GROUP, "5");
    assert_eq!(run.code(), 0, "{}", run.explain());
    let case = run.case("should be updated when static pod updated");
    assert!(
        matches!(status(&case), Status::Skipped),
        "{}",
        run.explain()
    );
    let text = run.junit_text();
    assert!(text.contains("has server https://127.0.0.1:6443"), "{text}");
    assert!(text.contains("node-conformance kubelet-config"), "{text}");
    assert!(!run.stdout().contains("stopped the local control plane"));
}
