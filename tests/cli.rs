//! The command line contract: selection, listing, exit codes and one-line usage errors.

mod common;

use common::{Status, command, fixture, message, registered, run_on, status};

#[test]
fn list_prints_only_selected_names() {
    let out = command()
        .args(["list", "--focus", "kernel"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines.iter().all(
        |l| l.starts_with("[sig-node] System Verification") && l.ends_with("[NodeConformance]")
    ));
}

#[test]
fn focus_and_skip_come_from_the_environment_too() {
    let out = command()
        .arg("list")
        .env("FOCUS", "System")
        .env("SKIP", "swap|IPv4")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(!text.contains("swap") && !text.contains("IPv4"));
    // An empty SKIP skips nothing, as upstream's SKIP= does.
    let out = command().arg("list").env("SKIP", "").output().unwrap();
    let all = String::from_utf8(out.stdout).unwrap().lines().count();
    assert!(all > 7, "{all}");
}

#[test]
fn every_registered_test_appears_in_junit_even_when_filtered_out() {
    let run = run_on(&fixture("healthy-v2"), &["--focus", "swap"]);
    assert_eq!(run.code(), 0, "{}", run.explain());
    let suite = &run.junit().test_suites[0];
    let all = registered();
    assert_eq!(
        (suite.tests, suite.skipped, suite.failures),
        (all, all - 1, 0)
    );
    let case = run.case("kernel release");
    assert!(matches!(status(&case), Status::Skipped));
    assert_eq!(
        message(&case),
        "not selected: does not match FOCUS \"swap\""
    );
    assert!(
        run.stdout().contains(&format!("running 1 of {all} tests")),
        "{}",
        run.stdout()
    );
}

fn assert_usage_error(run_args: &[&str], want: &str) {
    let out = command().args(run_args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{run_args:?}: {err}");
    assert!(err.contains(want), "{run_args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

#[test]
fn usage_errors_exit_2_naming_the_bad_input() {
    let root = fixture("healthy-v2");
    let root = root.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    let bad_spec = tmp.path().join("bad.yaml");
    std::fs::write(&bad_spec, "kernelSpec:\n  versions: [\"(\"]\n").unwrap();
    let typo_spec = tmp.path().join("typo.yaml");
    std::fs::write(&typo_spec, "os: Linux\ncgroupz: [cpu]\n").unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let under_file = file.join("results");

    assert_usage_error(
        &["run", "--rootfs", root, "--result-dir", out, "--focus", "("],
        "invalid --focus (FOCUS) regular expression \"(\"",
    );
    assert_usage_error(
        &[
            "run",
            "--rootfs",
            root,
            "--result-dir",
            out,
            "--skip",
            "[z-a]",
        ],
        "--skip (SKIP)",
    );
    assert_usage_error(&["list", "--focus", "("], "--focus");
    assert_usage_error(
        &["run", "--rootfs", "/no/such/root", "--result-dir", out],
        "root fs /no/such/root",
    );
    assert_usage_error(
        &[
            "run",
            "--rootfs",
            root,
            "--result-dir",
            out,
            "--system-spec",
            "/no/such/spec.yaml",
        ],
        "system spec /no/such/spec.yaml: cannot read",
    );
    assert_usage_error(
        &[
            "run",
            "--rootfs",
            root,
            "--result-dir",
            out,
            "--system-spec",
            bad_spec.to_str().unwrap(),
        ],
        "bad.yaml: kernelSpec.versions[0]",
    );
    assert_usage_error(
        &[
            "run",
            "--rootfs",
            root,
            "--result-dir",
            out,
            "--system-spec",
            typo_spec.to_str().unwrap(),
        ],
        "cgroupz",
    );
    assert_usage_error(
        &[
            "run",
            "--rootfs",
            root,
            "--result-dir",
            under_file.to_str().unwrap(),
        ],
        "is not writable",
    );
    // A FIFO as the spec: opening it must not wait for a writer that never comes.
    let fifo_spec = tmp.path().join("fifo.yaml");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo_spec)
            .status()
            .unwrap()
            .success()
    );
    assert_usage_error(
        &[
            "run",
            "--rootfs",
            root,
            "--result-dir",
            out,
            "--system-spec",
            fifo_spec.to_str().unwrap(),
        ],
        "fifo.yaml: cannot read: is a FIFO (named pipe), not a regular file",
    );
    assert_usage_error(&["run", "--parallelism", "0"], "--parallelism");
    assert_usage_error(&["frobnicate"], "frobnicate");
    // Nothing was written by the runs that stopped on bad input.
    assert!(!tmp.path().join("junit_01.xml").exists());
}

#[test]
fn env_fallbacks_for_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let out = command()
        .arg("run")
        .env("ROOTFS", fixture("healthy-v2"))
        .env("REPORT_PATH", tmp.path())
        .env("PARALLELISM", "1")
        .env("FOCUS", "IPv4")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let junit = std::fs::read_to_string(tmp.path().join("junit_01.xml")).unwrap();
    assert!(
        junit.contains("healthy-v2"),
        "rootfs property names the fixture"
    );
}

#[test]
fn odd_arguments_never_panic() {
    let root = fixture("healthy-v2");
    let tmp = tempfile::tempdir().unwrap();
    for focus in ["", "\\", "(?i)", "a{99999999}", "[[:alpha:]]", "\u{202e}"] {
        let out = command()
            .args(["run", "--result-dir"])
            .arg(tmp.path())
            .arg("--rootfs")
            .arg(&root)
            .args(["--focus", focus])
            .output()
            .unwrap();
        let code = out.status.code();
        assert!(
            matches!(code, Some(0..=2)),
            "{focus:?}: {code:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("panicked"),
            "{focus:?}"
        );
    }
}

#[test]
fn version_and_spec_subcommands() {
    let out = command().arg("version").output().unwrap();
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("node-conformance ")
    );
    let out = command().arg("spec").output().unwrap();
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(
        yaml.contains("kernelSpec:") && yaml.contains("NETFILTER_XT_TARGET_REDIRECT"),
        "{yaml}"
    );
    // What `spec` prints is a spec file that loads.
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("default.yaml");
    std::fs::write(&spec, yaml).unwrap();
    let run = common::run_system(
        &fixture("healthy-v2"),
        &["--system-spec", spec.to_str().unwrap()],
    );
    assert_eq!(run.code(), 0, "{}", run.explain());
}

#[test]
fn a_rerun_replaces_earlier_results_and_leaves_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junit_01.xml"), "stale").unwrap();
    std::fs::write(dir.path().join("results.json"), "stale").unwrap();
    let out = command()
        .args(["run", "--rootfs"])
        .arg(fixture("healthy-v2"))
        .arg("--result-dir")
        .arg(dir.path())
        .args(["--focus", "System Verification"])
        .output()
        .unwrap();
    assert!(out.status.code().is_some_and(|c| c < 2), "{out:?}");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["junit_01.xml", "results.json"]);
    let junit = std::fs::read_to_string(dir.path().join("junit_01.xml")).unwrap();
    assert!(junit.contains("<testsuites"), "{junit}");
}

#[test]
fn a_signal_is_answered_within_a_second_while_a_test_is_stuck() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    common::copy_tree(&fixture("healthy-v2"), &root);
    std::fs::create_dir_all(root.join("var/run")).unwrap();
    // A Docker socket that accepts and never answers.
    let listener =
        std::os::unix::net::UnixListener::bind(root.join("var/run/docker.sock")).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            held.push(c);
        }
    });
    let results = tmp.path().join("results");
    let child = command()
        .args([
            "run",
            "--focus",
            "Docker Engine reports",
            "--test-timeout",
            "60",
            "--rootfs",
        ])
        .arg(&root)
        .arg("--result-dir")
        .arg(&results)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    let sent = std::time::Instant::now();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        sent.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(out.status.code(), Some(1));
    let junit = std::fs::read_to_string(results.join("junit_01.xml")).unwrap();
    assert!(junit.contains("interrupted by SIGTERM after"), "{junit}");
}

#[test]
fn a_full_disk_reports_every_result_file_and_leaves_no_temporary_one() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    // A file size limit makes every write past 1 KiB fail, as a full disk does.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 1 && exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_node-conformance"))
        .env_remove("SKIP")
        .env_remove("FOCUS")
        .args(["run", "--focus", "System Verification", "--rootfs"])
        .arg(fixture("healthy-v2"))
        .arg("--result-dir")
        .arg(&results)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot write")
            && err.contains("junit_01.xml")
            && err.contains("results.json"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_dangling_symlink_as_result_dir_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let link = tmp.path().join("results");
    std::os::unix::fs::symlink(tmp.path().join("nowhere"), &link).unwrap();
    assert_usage_error(
        &[
            "run",
            "--rootfs",
            fixture("healthy-v2").to_str().unwrap(),
            "--result-dir",
            link.to_str().unwrap(),
        ],
        "which does not exist (a dangling symlink)",
    );
}

#[test]
fn malformed_numbers_and_invalid_utf8_are_named_not_panics() {
    for (args, want) in [
        (&["workload", "--sleep", "inf"][..], "--sleep: \"inf\""),
        (&["workload", "--sleep", "NaN"][..], "--sleep: \"NaN\""),
        (&["workload", "--sleep", "1e300"][..], "--sleep: \"1e300\""),
        (&["workload", "--exit", "99999999999"][..], "--exit"),
    ] {
        assert_usage_error(args, want);
    }
    use std::os::unix::ffi::OsStrExt;
    let out = command()
        .arg("list")
        .env("FOCUS", std::ffi::OsStr::from_bytes(b"Sys\xfftem"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("environment variable FOCUS (--focus)"),
        "{err}"
    );
}

#[test]
fn a_kubelet_the_harness_cannot_start_is_a_usage_error_naming_what_to_do() {
    let kubelet_group = r"\[sig-node\] Node registers";
    // A kubelet already serving: its port is named with the process, and how to stop it.
    let Ok(listener) = std::net::TcpListener::bind("127.0.0.1:10248") else {
        eprintln!("skipped: port 10248 is in use here");
        return;
    };
    let out = command()
        .args(["run", "--rootfs", "/", "--focus", kubelet_group])
        .args(["--kubelet-binary", "/bin/true", "--result-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("is taken by") && err.contains("systemctl stop kubelet"),
        "{err}"
    );
    // Port 10250 is looked at first; where nothing else holds it, this test's listener is found.
    if !err.contains("port 10250") {
        assert!(err.contains("port 10248 is taken by"), "{err}");
        assert!(
            err.contains(&format!("(pid {})", std::process::id())),
            "{err}"
        );
    }
    drop(listener);
    // Nothing to start.
    let result_dir = tempfile::tempdir().unwrap();
    let run = |binary: &'static str| {
        let dir = result_dir.path().to_str().unwrap().to_string();
        let args: Vec<String> = ["run", "--rootfs", "/", "--focus", kubelet_group]
            .into_iter()
            .map(String::from)
            .chain([
                "--result-dir".into(),
                dir,
                "--kubelet-binary".into(),
                binary.into(),
            ])
            .collect();
        args
    };
    let missing = run("/nonexistent/kubelet");
    let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
    assert_usage_error(
        &missing,
        "--kubelet-binary /nonexistent/kubelet: no such file or directory",
    );
    let relative = run("kubelet");
    let relative: Vec<&str> = relative.iter().map(String::as_str).collect();
    assert_usage_error(&relative, "give the kubelet's absolute path on the node");
    // No kubelet test selected: the flag is not acted on.
    let out = command()
        .args(["run", "--rootfs", "/", "--focus", "System Verification OS"])
        .args(["--kubelet-binary", "/nonexistent/kubelet", "--result-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_paused_workload_says_so_and_stops_at_once_on_sigterm() {
    use std::io::Read;
    let mut child = command()
        .args(["workload", "--stdout", "before", "--pause"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 64];
    while !seen.contains("Paused\n") {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "ended before pausing: {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    // Still running: a pause that returned at once would have exited by now.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(child.try_wait().unwrap().is_none(), "{seen}");
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    out.read_to_string(&mut seen).unwrap();
    assert_eq!(status.code(), Some(0), "{seen}");
    assert_eq!(seen, "before\nPaused\nReceived signal 15, exiting\n");
}

#[test]
fn the_entrypoint_tester_prints_argv_as_go_prints_a_slice() {
    let out = command()
        .args(["workload", "entrypoint-tester", "override", "--arguments"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "[{} workload entrypoint-tester override --arguments]\n",
            common::BIN
        )
    );
}
