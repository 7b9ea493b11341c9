//! The binary against the fixture roots: verdicts, messages and exit codes as a user reads
//! them in junit_01.xml.

mod common;

use common::{Status, fixture, message, registered, run_system, status, system_out};

const OS: &str = "operating system";
const RELEASE: &str = "kernel release";
const CONFIG: &str = "kernel config";
const CGROUPS: &str = "cgroups provide";
const EXES: &str = "executables";
const FORWARD: &str = "IPv4 forwarding";
const SWAP: &str = "swap";

fn assert_passed(run: &common::Run, part: &str) -> String {
    let case = run.case(part);
    assert!(
        matches!(status(&case), Status::Passed),
        "{part} should pass: {}\n{}",
        message(&case),
        run.explain()
    );
    system_out(&case)
}

fn assert_failed(run: &common::Run, part: &str) -> String {
    let case = run.case(part);
    assert!(
        matches!(status(&case), Status::Failed),
        "{part} should fail\n{}",
        run.explain()
    );
    message(&case)
}

#[test]
fn healthy_cgroup_v2_node_passes_everything() {
    let run = run_system(&fixture("healthy-v2"), &[]);
    assert_eq!(run.code(), 0, "{}", run.explain());
    let report = run.junit();
    let suite = &report.test_suites[0];
    let others = registered() - 7;
    assert_eq!(
        (suite.tests, suite.failures, suite.skipped),
        (7 + others, 0, others)
    );
    assert!(
        suite
            .extra
            .get("hostname")
            .is_some_and(|h| !h.as_str().is_empty())
    );
    assert!(suite.timestamp.is_some());
    let out = assert_passed(&run, CGROUPS);
    assert!(out.contains("[ok]   CGROUPS_VERSION: v2"), "{out}");
    assert!(
        out.contains("freezer: /sys/fs/cgroup/system.slice/cgroup.freeze exists"),
        "{out}"
    );
    let out = assert_passed(&run, CONFIG);
    assert!(
        out.contains("kernel config read from /proc/config.gz"),
        "{out}"
    );
    assert!(out.contains("[ok]   CONFIG_CGROUP_BPF: enabled"), "{out}");
    // The optional AUFS is missing: a warning naming the option, not a failure.
    assert!(
        out.contains("[warn] CONFIG_AUFS_FS: not set - Required for aufs."),
        "{out}"
    );
    assert!(assert_passed(&run, OS).contains("Fixture Linux (healthy-v2)"));
    assert!(assert_passed(&run, RELEASE).contains("6.1.0-18-amd64"));
    assert!(assert_passed(&run, EXES).contains("[ok]   nsenter: found at /usr/bin/nsenter"));
    assert!(assert_passed(&run, SWAP).contains("SWAP: off"));
    assert_passed(&run, FORWARD);
    // The console shows each test with its time, then the summary.
    let stdout = run.stdout();
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("PASS") && l.contains("ms [sig-node] System Verification")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("7 passed, 0 failed, {others} skipped")),
        "{stdout}"
    );
}

#[test]
fn cgroup_v1_node_passes_with_a_deprecation_warning() {
    let run = run_system(&fixture("cgroup-v1"), &[]);
    assert_eq!(run.code(), 0, "{}", run.explain());
    let out = assert_passed(&run, CGROUPS);
    assert!(
        out.contains("[warn] CGROUPS_VERSION: v1, deprecated"),
        "{out}"
    );
    assert!(out.contains("[ok]   CGROUPS_CPUACCT: enabled"), "{out}");
    // On v1 the v1 kernel options are required and CGROUP_BPF (missing here) is not.
    let out = assert_passed(&run, CONFIG);
    assert!(
        out.contains("kernel config read from /boot/config-5.15.0-91-generic"),
        "{out}"
    );
    assert!(
        out.contains("[ok]   CONFIG_CGROUP_FREEZER: enabled"),
        "{out}"
    );
    assert!(!out.contains("CGROUP_BPF"), "{out}");
    let out = assert_passed(&run, SWAP);
    assert!(
        out.contains("[warn] SWAP: /swap.img (file, 2097148 KiB) is active"),
        "{out}"
    );
}

/// system-validators v1.12.1: cgroup v1 is a warning below kubelet 1.35 (or with no kubelet
/// version known) and an error from 1.35 on.
#[test]
fn cgroup_v1_is_refused_for_kubelet_1_35_and_newer() {
    let run = run_system(&fixture("cgroup-v1-kubelet-1.34"), &[]);
    assert_eq!(run.code(), 0, "{}", run.explain());
    let out = assert_passed(&run, CGROUPS);
    assert!(
        out.contains(
            "[warn] CGROUPS_VERSION: v1, deprecated (kubelet 1.34.2-1.1, package kubelet in \
             /var/lib/dpkg/status): cgroups v1 support is deprecated"
        ),
        "{out}"
    );
    let run = run_system(&fixture("cgroup-v1-kubelet-1.35"), &[]);
    assert_eq!(run.code(), 1, "{}", run.explain());
    let m = assert_failed(&run, CGROUPS);
    assert!(
        m.contains(
            "CGROUPS_VERSION v1, refused for kubelet 1.35.0-1.1 (package kubelet in \
             /var/lib/dpkg/status): cgroups v1 support is deprecated and will be removed"
        ),
        "{m}"
    );
    assert!(m.contains("'FailCgroupV1' to 'false'"), "{m}");
    assert!(m.contains("systemd.unified_cgroup_hierarchy=1"), "{m}");
    // Only the cgroup test fails: the controllers themselves are all there.
    assert_eq!(run.failed().len(), 1, "{}", run.explain());
}

#[test]
fn an_unlisted_kernel_release_is_a_warning_not_a_failure() {
    for (root, release) in [
        ("old-kernel", "4.19.0-26-amd64"),
        ("unlisted-kernel-rhel8", "4.18.0-553.el8_10.x86_64"),
        ("unlisted-kernel-rhel9", "5.14.0-585.el9.x86_64"),
    ] {
        let run = run_system(&fixture(root), &[]);
        assert_eq!(run.code(), 0, "{root}: {}", run.explain());
        let out = assert_passed(&run, RELEASE);
        assert!(
            out.contains(&format!(
                "[warn] KERNEL_VERSION: {release} matches none of the supported versions"
            )) && out.contains(r"^5\.4.*$")
                && out.contains("Any 6.x version is also supported"),
            "{root}: {out}"
        );
        assert_eq!(run.junit().test_suites[0].failures, 0, "{root}");
        // The kernel config is still checked, under the release's own name.
        assert!(
            assert_passed(&run, CONFIG).contains(&format!("/boot/config-{release}")),
            "{root}"
        );
    }
}

#[test]
fn a_spec_file_can_accept_the_old_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(&spec, "os: Linux\nkernelSpec:\n  versions: ['^4\\.19\\..*$']\n  required:\n  - name: NAMESPACES\ncgroupsV2: [cpu]\n").unwrap();
    let run = run_system(
        &fixture("old-kernel"),
        &["--system-spec", spec.to_str().unwrap()],
    );
    assert_eq!(run.code(), 0, "{}", run.explain());
    assert!(assert_passed(&run, RELEASE).contains(r"matches ^4\.19\..*$"));
    let props = &run.junit().test_suites[0].properties;
    assert!(
        props
            .iter()
            .any(|p| p.name.as_str() == "system-spec" && p.value.as_str().ends_with("spec.yaml"))
    );
}

#[test]
fn missing_required_options_are_each_named() {
    let run = run_system(&fixture("missing-options"), &[]);
    assert_eq!(run.code(), 1, "{}", run.explain());
    let msg = assert_failed(&run, CONFIG);
    assert!(
        msg.contains("kernel config /boot/config-6.6.0-test"),
        "{msg}"
    );
    assert!(msg.contains("CONFIG_PID_NS (disabled)"), "{msg}");
    assert!(msg.contains("CONFIG_MEMCG (not set)"), "{msg}");
    let out = system_out(&run.case(CONFIG));
    assert!(out.contains("[FAIL] CONFIG_MEMCG: not set"), "{out}");
    assert!(out.contains("[ok]   CONFIG_NAMESPACES: enabled"), "{out}");
    assert_eq!(run.junit().test_suites[0].failures, 1);
}

#[test]
fn no_kernel_config_lists_every_place_looked_at() {
    let run = run_system(&fixture("no-config"), &[]);
    assert_eq!(run.code(), 1, "{}", run.explain());
    let msg = assert_failed(&run, CONFIG);
    for place in [
        "/proc/config.gz",
        "/boot/config-6.8.0-test",
        "/usr/src/linux-6.8.0-test/.config",
        "/usr/src/linux/.config",
        "/usr/lib/modules/6.8.0-test/config",
        "/usr/lib/ostree-boot/config-6.8.0-test",
        "/usr/lib/kernel/config-6.8.0-test",
        "/usr/src/linux-headers-6.8.0-test/.config",
        "/lib/modules/6.8.0-test/build/.config",
    ] {
        assert!(msg.contains(place), "{place} missing from: {msg}");
    }
}

/// Makes a FIFO (no writer will ever come) at `path`, replacing what is there.
fn fifo(path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn fifos_and_oversized_files_fail_their_test_instead_of_hanging_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    common::copy_tree(&fixture("healthy-v2"), &root);
    fifo(&root.join("proc/config.gz"));
    fifo(&root.join("proc/sys/net/ipv4/ip_forward"));
    // A gzip bomb where the next kernel config is looked for: 64 MiB of zeros, 64 KiB packed.
    let release = std::fs::read_to_string(root.join("proc/sys/kernel/osrelease")).unwrap();
    std::fs::create_dir_all(root.join("boot")).unwrap();
    let gz = std::process::Command::new("sh")
        .arg("-c")
        .arg("head -c 67108864 /dev/zero | gzip -1")
        .output()
        .unwrap();
    std::fs::write(
        root.join(format!("boot/config-{}", release.trim())),
        &gz.stdout,
    )
    .unwrap();
    let run = common::run_on_within(&root, &["--focus", "System Verification"], 60);
    assert_eq!(run.code(), 1, "{}", run.explain());
    let msg = assert_failed(&run, CONFIG);
    assert!(
        msg.contains("/proc/config.gz (is a FIFO (named pipe), not a regular file; not read)"),
        "{msg}"
    );
    assert!(msg.contains("decompresses to more than 16 MiB"), "{msg}");
    let msg = assert_failed(&run, FORWARD);
    assert!(
        msg.contains("/proc/sys/net/ipv4/ip_forward") && msg.contains("FIFO"),
        "{msg}"
    );
    assert_passed(&run, OS);
}

#[test]
fn absolute_and_climbing_symlinks_resolve_inside_the_root() {
    let run = run_system(&fixture("absolute-symlinks"), &[]);
    assert_eq!(run.code(), 0, "{}", run.explain());
    let out = assert_passed(&run, CONFIG);
    assert!(
        out.contains("kernel config read from /boot/config-6.1.0-link"),
        "{out}"
    );
    let out = assert_passed(&run, EXES);
    assert!(
        out.contains("[ok]   iptables: found at /usr/sbin/iptables"),
        "{out}"
    );
    assert!(out.contains("[ok]   ip: found at /usr/sbin/ip"), "{out}");
}

#[test]
fn symlink_loops_are_reported_not_followed_forever() {
    let run = run_system(&fixture("symlink-loop"), &[]);
    assert_eq!(run.code(), 1, "{}", run.explain());
    let msg = assert_failed(&run, CONFIG);
    assert!(
        msg.contains(
            "/boot/config-6.1.0-loop (too many levels of symbolic links (a symlink loop))"
        ),
        "{msg}"
    );
    let msg = assert_failed(&run, EXES);
    assert!(msg.contains("nsenter"), "{msg}");
    let out = system_out(&run.case(EXES));
    assert!(
        out.contains("/usr/bin/nsenter: too many levels of symbolic links"),
        "{out}"
    );
}

#[test]
fn messages_with_control_characters_keep_the_junit_file_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    common::copy_tree(&fixture("healthy-v2"), &root);
    std::fs::write(
        root.join("proc/sys/kernel/osrelease"),
        "3.0\u{1}\u{1b}[31m]]><x>&\"'\n",
    )
    .unwrap();
    let run = run_system(&root, &[]);
    // An unlisted release warns; the warning carries the characters.
    assert_eq!(run.code(), 0, "{}", run.explain());
    let text = run.junit_text();
    assert!(
        !text.contains('\u{1}') && !text.contains('\u{1b}'),
        "{text}"
    );
    assert!(!text.contains("]]><x>"), "{text}");
    let out = assert_passed(&run, RELEASE);
    assert!(out.contains("3.0]]><x>&\"'"), "{out}");
    // The same facts, unfiltered, in results.json.
    let json = run.json();
    let t = json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str().unwrap().contains(RELEASE))
        .unwrap();
    assert_eq!(t["verdict"], "passed");
    assert!(t.to_string().contains("\\u0001"), "{t}");
}

#[test]
fn results_json_carries_the_same_facts() {
    let run = common::run_on(
        &fixture("missing-options"),
        &["--focus", "System Verification the kernel"],
    );
    let json = run.json();
    assert_eq!(json["counts"]["tests"], registered());
    assert_eq!(json["counts"]["failed"], 1);
    assert_eq!(json["counts"]["passed"], 1);
    assert_eq!(json["counts"]["skipped"], registered() - 2);
    assert_eq!(json["focus"], "System Verification the kernel");
    let tests = json["tests"].as_array().unwrap();
    let config = tests
        .iter()
        .find(|t| t["name"].as_str().unwrap().contains(CONFIG))
        .unwrap();
    let memcg = config["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["item"] == "CONFIG_MEMCG")
        .unwrap();
    assert_eq!(memcg["status"], "fail");
    let skipped = tests
        .iter()
        .find(|t| t["name"].as_str().unwrap().contains(SWAP))
        .unwrap();
    assert_eq!(skipped["verdict"], "skipped");
    assert_eq!(skipped["selected"], false);
}

#[test]
fn forbidden_options_fail_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        "os: Linux\nkernelSpec:\n  required:\n  - name: NAMESPACES\n  forbidden:\n  - name: MEMCG\n    description: Not on this fleet.\n  - name: AUFS_FS\n",
    )
    .unwrap();
    let run = run_system(
        &fixture("healthy-v2"),
        &["--system-spec", spec.to_str().unwrap()],
    );
    assert_eq!(run.code(), 1, "{}", run.explain());
    let msg = assert_failed(&run, CONFIG);
    assert!(
        msg.contains("forbidden options enabled: CONFIG_MEMCG"),
        "{msg}"
    );
    let out = system_out(&run.case(CONFIG));
    assert!(
        out.contains("[FAIL] CONFIG_MEMCG: enabled, but forbidden - Not on this fleet."),
        "{out}"
    );
    assert!(out.contains("[ok]   CONFIG_AUFS_FS: not enabled"), "{out}");
}
