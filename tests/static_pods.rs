//! Static pods against the Pod Security Standards and the seed's limits, on a kubeadm-like
//! fixture root and on broken copies of it.

mod common;

use std::path::Path;

use common::{Status, copy_tree, fixture, message, run_on, status, system_out};

const PSS: &str = "Static Pods satisfy the baseline Pod Security Standard";
const LIMITS: &str = "Static Pods declare CPU and memory limits";
const EVENTS: &str = "kube-apiserver keeps Events in a dedicated etcd";

fn run_static(root: &Path, extra: &[&str]) -> common::Run {
    let mut args = vec!["--focus", "Static Pods"];
    args.extend_from_slice(extra);
    run_on(root, &args)
}

/// A copy of the kubeadm-like root to break.
fn broken_copy(file: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    copy_tree(&fixture("kubeadm-node"), &root);
    std::fs::write(root.join("etc/kubernetes/manifests").join(file), text).unwrap();
    (dir, root)
}

#[test]
fn a_kubeadm_node_passes_with_control_plane_pods_noted() {
    let run = run_static(&fixture("kubeadm-node"), &[]);
    assert_eq!(run.code(), 0, "{}", run.explain());
    let out = system_out(&run.case(PSS));
    assert!(out.contains("[info] kube-apiserver (/etc/kubernetes/manifests/kube-apiserver.yaml): highest level: privileged; a control-plane component"), "{out}");
    assert!(out.contains("[ok]   log-collector (/etc/kubernetes/manifests/log-collector.yaml): highest level: restricted"), "{out}");
    assert!(
        out.contains("evaluated against Pod Security Standards policy version latest (v1.37"),
        "{out}"
    );
    // Both documents of a multi-document file, and the JSON manifest, are read.
    assert!(
        out.contains("[ok]   log-shipper")
            && out.contains("[ok]   node-exporter (/etc/kubernetes/manifests/node-exporter.json)"),
        "{out}"
    );
    // Dotfiles are not manifests to the kubelet, nor here.
    assert!(!out.contains(".editor-swap"), "{out}");
    let out = system_out(&run.case(LIMITS));
    assert!(
        out.contains("[ok]   log-collector container collector: limits cpu=100m, memory=200Mi"),
        "{out}"
    );
    assert!(
        out.contains("[info] kube-apiserver: control-plane component"),
        "{out}"
    );
    let out = system_out(&run.case(EVENTS));
    assert!(out.contains("/events#https://127.0.0.1:2382"), "{out}");
}

#[test]
fn control_plane_pods_are_told_by_what_they_run_not_their_names() {
    // A privileged add-on named like etcd gets no exemption: it runs etcdctl, not etcd.
    let (_dir, root) = broken_copy(
        "etcd-backup.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: etcd-backup, labels: {component: etcd}}\nspec:\n  hostNetwork: true\n  containers:\n  - name: backup\n    image: x\n    command: [etcdctl, snapshot, save, /backup/db]\n    securityContext: {privileged: true}\n",
    );
    let run = run_static(&root, &[]);
    let out = system_out(&run.case(PSS));
    assert!(matches!(status(&run.case(PSS)), Status::Failed), "{out}");
    assert!(out.contains("etcd-backup") && !out.contains("etcd-backup (/etc/kubernetes/manifests/etcd-backup.yaml): highest level: privileged; a control-plane component"), "{out}");
    // An API server under another name, as a non-kubeadm installer may write it, is one; and
    // the Events check finds it.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    copy_tree(&fixture("kubeadm-node"), &root);
    let manifests = root.join("etc/kubernetes/manifests");
    let api = std::fs::read_to_string(manifests.join("kube-apiserver.yaml"))
        .unwrap()
        .replace("name: kube-apiserver\n", "name: apiserver-main\n")
        .replace("component: kube-apiserver", "component: api");
    std::fs::remove_file(manifests.join("kube-apiserver.yaml")).unwrap();
    std::fs::write(manifests.join("apiserver-main.yaml"), api).unwrap();
    let run = run_static(&root, &[]);
    let out = system_out(&run.case(PSS));
    assert!(
        out.contains("apiserver-main (/etc/kubernetes/manifests/apiserver-main.yaml): highest level: privileged; a control-plane component"),
        "{out}"
    );
    let out = system_out(&run.case(EVENTS));
    assert!(out.contains("/events#https://127.0.0.1:2382"), "{out}");
}

#[test]
fn a_privileged_add_on_without_limits_fails_both_tests_naming_fields() {
    let (_dir, root) = broken_copy(
        "debug-agent.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: debug-agent}\nspec:\n  hostPID: true\n  containers:\n  - name: agent\n    image: x\n    securityContext: {privileged: true}\n",
    );
    let run = run_static(&root, &[]);
    assert_eq!(run.code(), 1, "{}", run.explain());
    let c = run.case(PSS);
    assert!(matches!(status(&c), Status::Failed));
    let m = message(&c);
    assert!(
        m.contains("debug-agent (spec.hostPID, spec.containers[0].securityContext.privileged)"),
        "{m}"
    );
    let c = run.case(LIMITS);
    assert!(matches!(status(&c), Status::Failed));
    assert!(
        message(&c)
            .contains("debug-agent spec.containers[0].resources.limits lacks cpu and memory"),
        "{}",
        message(&c)
    );
    assert!(matches!(status(&run.case(EVENTS)), Status::Passed));
}

#[test]
fn an_add_on_probing_a_host_is_below_baseline_under_the_newest_policy() {
    let (_dir, root) = broken_copy(
        "prober.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: prober}\nspec:\n  containers:\n  - name: p\n    image: x\n    livenessProbe: {tcpSocket: {host: 10.0.0.1, port: 80}}\n",
    );
    let run = run_static(&root, &[]);
    let c = run.case(PSS);
    assert!(matches!(status(&c), Status::Failed), "{}", run.explain());
    let m = message(&c);
    assert!(
        m.contains("(policy v1.37): prober (spec.containers[0].livenessProbe.tcpSocket.host)"),
        "{m}"
    );
}

#[test]
fn a_malformed_manifest_fails_naming_the_file_and_position() {
    let (_dir, root) = broken_copy(
        "half-written.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [oops\n",
    );
    let run = run_static(&root, &[]);
    assert_eq!(run.code(), 1, "{}", run.explain());
    let m = message(&run.case(PSS));
    assert!(
        m.contains("/etc/kubernetes/manifests/half-written.yaml"),
        "{m}"
    );
    assert!(m.contains("line"), "{m}");
    // The other manifests are still judged.
    assert!(system_out(&run.case(PSS)).contains("[ok]   log-collector"));
}

#[test]
fn without_a_static_pod_directory_the_tests_skip_saying_where_they_looked() {
    let run = run_static(&fixture("healthy-v2"), &[]);
    assert_eq!(run.code(), 0, "{}", run.explain());
    for t in [PSS, LIMITS, EVENTS] {
        let c = run.case(t);
        assert!(matches!(status(&c), Status::Skipped));
        assert!(
            message(&c).contains("no static pod directory at /etc/kubernetes/manifests"),
            "{}",
            message(&c)
        );
    }
}

#[test]
fn the_directory_can_be_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    copy_tree(&fixture("kubeadm-node"), &root);
    std::fs::rename(
        root.join("etc/kubernetes/manifests"),
        root.join("manifests"),
    )
    .unwrap();
    let run = run_static(&root, &["--pod-manifest-path", "/manifests"]);
    assert_eq!(run.code(), 0, "{}", run.explain());
    assert!(system_out(&run.case(PSS)).contains("static pod directory /manifests"));
}
