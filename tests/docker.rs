//! The container runtime group against real runtimes: the node's Docker Engine, and a
//! containerd started here. Skipped where no engine answers, unless CI requires them
//! (NODE_CONFORMANCE_REQUIRE_DOCKER=1).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Status, docker, docker_available, leftovers, message, run_id, run_on, static_binary, status,
    system_out,
};

/// One harness against the Engine at a time: concurrent loads of the same image layer can
/// collide in Docker's layer store, which is not what these tests are about.
static ENGINE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn engine() -> std::sync::MutexGuard<'static, ()> {
    ENGINE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The Engine to ourselves and the static binary, or `None` (a skip) where either is missing.
fn engine_and_binary() -> Option<(std::sync::MutexGuard<'static, ()>, std::path::PathBuf)> {
    if !docker_available() {
        return None;
    }
    let guard = engine();
    Some((guard, static_binary()?))
}

const DOCKER_CASES: [&str; 8] = [
    "a container exits with the expected code",
    "stdout and stderr are captured separately",
    "environment variables arrive",
    "a termination message file is readable after exit",
    "a read-only root file system rejects writes",
    "a non-root UID is honoured",
    "a memory limit is enforced",
    "a restart policy restarts the container",
];

#[test]
fn docker_runs_containers_the_way_the_kubelet_relies_on_and_leaves_nothing() {
    let Some((_engine, bin)) = engine_and_binary() else {
        return;
    };
    let run = run_on(
        Path::new("/"),
        &[
            "--focus",
            "Container Runtime (Docker|a runtime|the Docker)",
            "--workload-binary",
            bin.to_str().unwrap(),
        ],
    );
    // This machine's Docker (20.10, cgroup v2) now and then kills a container over its memory
    // limit without reporting OOMKilled: the harness must say exactly that, and nothing else
    // may fail.
    let docker_missed_the_oom = |case: &str, c: &quick_junit::TestCase| {
        case == "a memory limit is enforced"
            && message(c).contains("the Engine does not report OOMKilled for this kill")
    };
    let mut failed = 0;
    for case in DOCKER_CASES {
        let c = run.case(case);
        if matches!(status(&c), Status::Passed) {
            continue;
        }
        assert!(
            docker_missed_the_oom(case, &c),
            "{case}: {}\n{}",
            message(&c),
            run.explain()
        );
        failed += 1;
    }
    assert_eq!(run.code(), i32::from(failed > 0), "{}", run.explain());
    let facts = system_out(&run.case("Docker Engine reports its configuration"));
    for item in [
        "version:",
        "storage driver:",
        "cgroup driver:",
        "cgroup version:",
    ] {
        assert!(facts.contains(item), "{item} in {facts}");
    }
    let oom = system_out(&run.case("a memory limit is enforced"));
    assert!(oom.contains("[ok]   OOM killed: true"), "{oom}");
    let id = run_id(&run);
    assert_eq!(
        leftovers(&id),
        "",
        "containers or images of run {id} left behind"
    );
    assert!(
        run.stdout()
            .contains(&format!("removed image node-conformance-workload:{id}")),
        "{}",
        run.stdout()
    );
}

#[test]
fn a_dynamic_harness_binary_skips_the_container_cases_saying_why() {
    if !docker_available() {
        return;
    }
    let _engine = engine();
    // The system's own tools are dynamically linked: one cannot be the test image.
    let run = run_on(
        Path::new("/"),
        &[
            "--focus",
            "Docker a container exits",
            "--workload-binary",
            "/bin/true",
        ],
    );
    let c = run.case("a container exits with the expected code");
    assert!(matches!(status(&c), Status::Skipped), "{}", run.explain());
    assert!(
        message(&c).contains("dynamically linked"),
        "{}",
        message(&c)
    );
}

#[test]
fn sigterm_mid_run_writes_results_and_removes_everything() {
    let Some((_engine, bin)) = engine_and_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let child = common::command()
        .args([
            "run",
            "--rootfs",
            "/",
            "--parallelism",
            "1",
            "--focus",
            "Container Runtime Docker",
        ])
        .arg("--result-dir")
        .arg(dir.path())
        .arg("--workload-binary")
        .arg(&bin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once a container of this run exists: mid-test, with something to clean up.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    while Instant::now() < deadline && seen.is_empty() {
        seen = docker(&["ps", "-aq", "--filter", "label=node-conformance.run"]);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!seen.is_empty(), "no test container appeared");
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let run = common::Run { output: out, dir };
    assert_eq!(run.code(), 1, "{}", run.explain());
    let report = run.junit();
    let cases = &report.test_suites[0].test_cases;
    // The test that was running is failed; those that had not started are skipped, saying so.
    let cut: Vec<_> = cases
        .iter()
        .filter(|c| message(c).contains("interrupted by SIGTERM after"))
        .collect();
    assert!(!cut.is_empty(), "{}", run.junit_text());
    assert!(cut.iter().all(|c| matches!(status(c), Status::Failed)));
    for c in cases
        .iter()
        .filter(|c| message(c).contains("not run: the run was interrupted by SIGTERM"))
    {
        assert!(matches!(status(c), Status::Skipped));
    }
    let id = run_id(&run);
    assert_eq!(
        leftovers(&id),
        "",
        "run {id} left containers or images behind"
    );
    assert!(
        run.stdout().contains("interrupted by SIGTERM"),
        "{}",
        run.stdout()
    );
}

#[test]
fn what_a_sigkilled_run_left_is_removed_by_the_next_run() {
    let Some((_engine, bin)) = engine_and_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut child = common::command()
        .args(["run", "--rootfs", "/", "--parallelism", "1"])
        .args(["--focus", "Container Runtime Docker a restart policy"])
        .arg("--result-dir")
        .arg(dir.path())
        .arg("--workload-binary")
        .arg(&bin)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut id = String::new();
    while Instant::now() < deadline && id.is_empty() {
        id = docker(&[
            "ps",
            "-a",
            "--filter",
            "label=node-conformance.run",
            "--format",
            "{{.Label \"node-conformance.run\"}}",
        ])
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!id.is_empty(), "no test container appeared");
    // No handler runs on SIGKILL: the container and the image stay behind.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_ne!(common::leftovers(&id), "", "nothing was left to recover");
    let next = run_on(
        Path::new("/"),
        &["--focus", "System Verification the operating system"],
    );
    assert_eq!(common::leftovers(&id), "", "{}", next.explain());
    assert!(
        next.stdout()
            .contains(&format!("left by run {id}, no longer running")),
        "{}",
        next.stdout()
    );
}

#[test]
fn cri_readiness_is_asked_of_a_real_containerd() {
    if !Command::new("containerd")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(
            std::env::var("NODE_CONFORMANCE_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "containerd is required in CI"
        );
        eprintln!("skipped: no containerd binary");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rootfs");
    let sock = root.join("run/containerd/containerd.sock");
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    let mut containerd = Command::new("containerd")
        .arg("--address")
        .arg(&sock)
        .arg("--root")
        .arg(tmp.path().join("lib"))
        .arg("--state")
        .arg(tmp.path().join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The CRI plugin reports NetworkReady only once it has looked for a CNI config.
    std::thread::sleep(Duration::from_millis(500));
    let run = run_on(&root, &["--focus", "CRI runtime is ready"]);
    let _ = containerd.kill();
    let _ = containerd.wait();
    let c = run.case("CRI runtime is ready");
    let out = system_out(&c);
    assert!(
        out.contains("[ok]   containerd: /run/containerd/containerd.sock: containerd"),
        "{out}"
    );
    assert!(out.contains("(CRI v1"), "{out}");
    assert!(
        out.contains("[ok]   containerd RuntimeReady: true"),
        "{out}"
    );
    // No CNI config here: the kubelet would not schedule pods, and the test says so.
    assert!(matches!(status(&c), Status::Failed), "{}", run.explain());
    assert!(
        message(&c).contains("containerd NetworkReady is false"),
        "{}",
        message(&c)
    );
    assert!(message(&c).contains("CNI"), "{}", message(&c));
}

#[test]
fn a_test_past_its_timeout_fails_and_its_container_is_removed() {
    let Some((_engine, bin)) = engine_and_binary() else {
        return;
    };
    // The restart case takes over a second: three starts with back-off in between.
    let run = run_on(
        Path::new("/"),
        &[
            "--focus",
            "Docker a restart policy",
            "--test-timeout",
            "1",
            "--workload-binary",
            bin.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code(), 1, "{}", run.explain());
    let c = run.case("a restart policy restarts the container");
    assert!(matches!(status(&c), Status::Failed));
    assert_eq!(message(&c), "timed out after 1s (--test-timeout)");
    let id = run_id(&run);
    assert_eq!(
        leftovers(&id),
        "",
        "run {id} left containers or images behind"
    );
    // The abandoned test may have been loading the image: a load the Engine finishes after the
    // run has gone would leave it behind, so look again a little later.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(leftovers(&id), "", "run {id} left its image behind");
}
