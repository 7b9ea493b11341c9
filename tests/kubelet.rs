//! Kubelet configuration checks on the kubeadm-like fixture root and broken copies of it.
//! File modes are set here: git keeps only 644 and 755.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Run, Status, copy_tree, fixture, message, run_on, status, system_out};

/// A copy of the kubeadm-like node with kubeadm's file modes and a cluster CA in place.
fn kubeadm_node() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    copy_tree(&fixture("kubeadm-node"), &root);
    std::fs::create_dir_all(root.join("etc/kubernetes/pki")).unwrap();
    std::fs::write(root.join("etc/kubernetes/pki/ca.crt"), "cluster CA\n").unwrap();
    common::tree::set_kubeadm_modes(&root);
    (dir, root)
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn run_kubelet(root: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["--focus", "Kubelet"];
    args.extend_from_slice(extra);
    run_on(root, &args)
}

/// The names of the failed tests, shortened to what follows "Kubelet ".
fn failed(run: &Run) -> Vec<String> {
    run.failed()
        .iter()
        .map(|n| n.trim_start_matches("[sig-node] Kubelet ").to_string())
        .collect()
}

#[test]
fn a_kubeadm_node_passes_every_check() {
    let (_d, root) = kubeadm_node();
    let run = run_kubelet(&root, &[]);
    assert_eq!(run.code(), 0, "{}", run.explain());
    let out = system_out(&run.case("anonymous authentication"));
    assert!(out.contains("no kubelet process; kubeadm's files"), "{out}");
    assert!(out.contains("[ok]   authentication.anonymous.enabled: false (authentication.anonymous.enabled in /var/lib/kubelet/config.yaml)"), "{out}");
    let out = system_out(&run.case("cgroup driver"));
    assert!(
        out.contains("[info] runtime: systemd (SystemdCgroup in /etc/containerd/config.toml)"),
        "{out}"
    );
    let c = run.case("healthz");
    assert!(matches!(status(&c), Status::Skipped));
    assert_eq!(message(&c), "no running kubelet process to ask");
    // The kubelet's staticPodPath is where the static pod tests look.
    let run = run_on(&root, &["--focus", "Static Pods satisfy"]);
    assert!(
        system_out(&run.case("Static Pods satisfy"))
            .contains("static pod directory /etc/kubernetes/manifests")
    );
}

#[test]
fn each_bad_setting_fails_exactly_its_own_test() {
    let (_d, root) = kubeadm_node();
    let config = root.join("var/lib/kubelet/config.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    let bad = text
        .replace(
            "anonymous:\n    enabled: false",
            "anonymous:\n    enabled: true",
        )
        .replace("mode: Webhook", "mode: AlwaysAllow")
        .replace("readOnlyPort: 0", "readOnlyPort: 10255")
        .replace(
            "streamingConnectionIdleTimeout: 4h0m0s",
            "streamingConnectionIdleTimeout: 0s",
        )
        .replace(
            "- TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "- TLS_RSA_WITH_AES_128_CBC_SHA",
        )
        .replace("podPidsLimit: 4096", "podPidsLimit: -1")
        .replace("seccompDefault: true", "seccompDefault: false")
        .replace("maxPods: 110", "maxPods: 250")
        .replace("cgroupDriver: systemd", "cgroupDriver: cgroupfs")
        .replace("rotateCertificates: true", "rotateCertificates: false");
    std::fs::write(&config, bad).unwrap();
    let run = run_kubelet(&root, &[]);
    assert_eq!(run.code(), 1);
    let mut got = failed(&run);
    got.sort();
    let mut want: Vec<String> = [
        "anonymous authentication is disabled (CIS 4.2.1) [NodeBestPractice]",
        "authorization mode is not AlwaysAllow (CIS 4.2.2) [NodeBestPractice]",
        "read-only port is disabled (CIS 4.2.4) [NodeBestPractice]",
        "streaming connection idle timeout is not 0 (CIS 4.2.5) [NodeBestPractice]",
        "client certificate rotation is on (CIS 4.2.10) [NodeBestPractice]",
        "TLS cipher suites are strong (CIS 4.2.12) [NodeBestPractice]",
        "pod PIDs limit is set (CIS 4.2.13) [NodeBestPractice]",
        "seccomp default is on (CIS 4.2.14) [NodeBestPractice]",
        "maxPods is within the tested envelope of 110 [NodeBestPractice]",
        "cgroup driver matches the container runtime's [NodeBestPractice]",
    ]
    .map(String::from)
    .to_vec();
    want.sort();
    assert_eq!(got, want);
    let m = message(&run.case("read-only port"));
    assert!(m.contains("readOnlyPort is 10255 (readOnlyPort in /var/lib/kubelet/config.yaml); set readOnlyPort: 0"), "{m}");
    let m = message(&run.case("cipher suites"));
    assert!(m.contains("TLS_RSA_WITH_AES_128_CBC_SHA"), "{m}");
    let m = message(&run.case("cgroup driver"));
    assert!(
        m.contains("cgroupfs") && m.contains("the runtime's is systemd"),
        "{m}"
    );
}

#[test]
fn a_running_kubelet_is_followed_to_its_flags_and_config() {
    let (_d, root) = kubeadm_node();
    // The process names a config elsewhere and overrides one of its settings with a flag.
    std::fs::create_dir_all(root.join("etc/kubelet")).unwrap();
    std::fs::rename(
        root.join("var/lib/kubelet/config.yaml"),
        root.join("etc/kubelet/custom.yaml"),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("proc/4242")).unwrap();
    std::fs::write(
        root.join("proc/4242/cmdline"),
        "/usr/bin/kubelet\0--config=/etc/kubelet/custom.yaml\0--kubeconfig\0/etc/kubernetes/kubelet.conf\0--hostname-override=node9\0--read-only-port=10255\0--healthz-port=1\0",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("proc/1")).unwrap();
    std::fs::write(root.join("proc/1/cmdline"), "/sbin/init\0").unwrap();
    let run = run_kubelet(&root, &[]);
    let mut got = failed(&run);
    got.sort();
    assert_eq!(
        got,
        vec![
            "healthz endpoint answers [NodeBestPractice]",
            "hostname is not overridden (CIS 4.2.7) [NodeBestPractice]",
            "read-only port is disabled (CIS 4.2.4) [NodeBestPractice]",
        ],
        "{}",
        run.explain()
    );
    let out = system_out(&run.case("read-only port"));
    assert!(
        out.contains("kubelet process 4242") && out.contains("config /etc/kubelet/custom.yaml"),
        "{out}"
    );
    assert!(message(&run.case("read-only port")).contains("(flag --read-only-port)"));
    assert!(message(&run.case("hostname is not")).contains("--hostname-override"));
    assert!(message(&run.case("healthz")).contains("http://127.0.0.1:1/healthz"));
}

#[test]
fn loose_file_modes_fail_with_the_command_that_fixes_them() {
    let (_d, root) = kubeadm_node();
    chmod(&root.join("var/lib/kubelet/config.yaml"), 0o644);
    chmod(&root.join("etc/kubernetes/pki/ca.crt"), 0o666);
    let run = run_kubelet(&root, &[]);
    let mut got = failed(&run);
    got.sort();
    assert_eq!(
        got,
        vec![
            "client CA file is mode 644 or stricter and owned by root (CIS 4.1.7, 4.1.8) [NodeBestPractice]",
            "config file is mode 600 or stricter and owned by root (CIS 4.1.9, 4.1.10) [NodeBestPractice]",
        ]
    );
    let m = message(&run.case("config file is mode"));
    assert!(m.contains("mode 644 (/var/lib/kubelet/config.yaml), allowed 600 or stricter; fix: chmod 600 /var/lib/kubelet/config.yaml"), "{m}");
}

#[test]
fn a_malformed_config_fails_the_checks_that_read_it_naming_the_file() {
    let (_d, root) = kubeadm_node();
    std::fs::write(
        root.join("var/lib/kubelet/config.yaml"),
        "kind: KubeletConfiguration\nmaxPods: [\n",
    )
    .unwrap();
    let run = run_kubelet(&root, &[]);
    let m = message(&run.case("maxPods"));
    assert!(
        m.contains("the kubelet's configuration cannot be read: /var/lib/kubelet/config.yaml"),
        "{m}"
    );
    assert!(m.contains("line"), "{m}");
    // File checks do not need to read it.
    assert!(matches!(
        status(&run.case("config file is mode")),
        Status::Passed
    ));
}

#[test]
fn without_a_kubelet_every_check_skips_saying_where_it_looked() {
    let run = run_kubelet(&fixture("healthy-v2"), &[]);
    assert_eq!(run.code(), 0, "{}", run.explain());
    let c = run.case("anonymous authentication");
    assert!(matches!(status(&c), Status::Skipped));
    assert!(
        message(&c).contains("no kubelet on this node"),
        "{}",
        message(&c)
    );
    assert!(
        message(&c).contains("/var/lib/kubelet/config.yaml"),
        "{}",
        message(&c)
    );
    assert!(failed(&run).is_empty());
}

/// The failure message and system-out of one test on a fixture root.
fn one(root: &str, focus: &str) -> (Status, String, String) {
    let run = run_on(&fixture(root), &["--focus", focus]);
    let c = run.case(focus);
    (status(&c), message(&c), system_out(&c))
}

#[test]
fn a_zero_idle_timeout_flag_is_a_zero_duration_and_fails_cis_4_2_5() {
    let (s, msg, _) = one(
        "kubelet-idle-timeout-zero-flag",
        "streaming connection idle timeout",
    );
    assert!(matches!(s, Status::Failed), "{msg}");
    assert!(
        msg.contains(
            "streamingConnectionIdleTimeout is \"0\" (0s) (flag --streaming-connection-idle-timeout)"
        ),
        "{msg}"
    );
}

#[test]
fn an_idle_timeout_go_cannot_parse_fails_naming_gos_error() {
    let (s, msg, _) = one(
        "kubelet-idle-timeout-invalid",
        "streaming connection idle timeout",
    );
    assert!(matches!(s, Status::Failed), "{msg}");
    assert!(
        msg.contains("invalid: time: missing unit in duration \"30\""),
        "{msg}"
    );
}

#[test]
fn an_unset_setting_is_judged_by_the_default_it_shows() {
    let (s, msg, _) = one("kubelet-rotation-unset", "client certificate rotation");
    assert!(matches!(s, Status::Failed), "{msg}");
    assert!(
        msg.contains("rotateCertificates is unset, so false"),
        "{msg}"
    );
}

#[test]
fn a_relative_config_is_found_from_the_kubelets_working_directory() {
    let (s, msg, out) = one("kubelet-config-relative-to-cwd", "client CA file is set");
    assert!(matches!(s, Status::Passed), "{msg}");
    assert!(out.contains("config /etc/kubelet/config.yaml"), "{out}");
    // The file's own relative path is relative to the file's directory.
    assert!(
        out.contains("[ok]   authentication.x509.clientCAFile: /etc/kubelet/pki/ca.crt (authentication.x509.clientCAFile in /etc/kubelet/config.yaml)"),
        "{out}"
    );
}

#[test]
fn config_dir_drop_ins_merge_in_order_under_the_flags() {
    let (s, msg, out) = one("kubelet-config-dir-drop-ins", "read-only port");
    assert!(matches!(s, Status::Passed), "{msg}");
    assert!(
        out.contains("[ok]   readOnlyPort: 0 (readOnlyPort in /etc/kubernetes/kubelet.conf.d/nested/20-ports.conf)"),
        "{out}"
    );
    assert!(
        out.contains("drop-ins, merged in this order: /etc/kubernetes/kubelet.conf.d/10-ports.conf, /etc/kubernetes/kubelet.conf.d/nested/20-ports.conf"),
        "{out}"
    );
    let (s, msg, _) = one("kubelet-config-dir-drop-ins", "maxPods");
    assert!(matches!(s, Status::Failed), "{msg}");
    assert!(msg.contains("maxPods is 300 (flag --max-pods)"), "{msg}");
}

#[test]
fn the_kubelets_runtime_endpoint_is_looked_at_first() {
    let run = run_on(
        &fixture("kubelet-runtime-endpoint"),
        &["--focus", "a runtime endpoint is present"],
    );
    let c = run.case("a runtime endpoint is present");
    assert!(matches!(status(&c), Status::Failed), "{}", run.explain());
    let msg = message(&c);
    assert!(
        msg.contains(
            "tried /run/k3s/containerd/containerd.sock (no such file or directory), /run/containerd/containerd.sock"
        ),
        "{msg}"
    );
    assert!(
        system_out(&c).contains("[info] the kubelet's runtime: not found"),
        "{}",
        system_out(&c)
    );
}
