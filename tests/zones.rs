//! The zone labels test against a small API server double answering GET of one Node over
//! plain HTTP on 127.0.0.1 (the kubeconfig names it).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use common::{Status, fixture, message, run_on, status, system_out};

const TEST: &str = "the Node carries hostname, os, arch and topology labels";

/// Serves `labels` as Node node1 for a while; returns the port.
fn api_double(labels: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten().take(4) {
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let (status, body) = if req.starts_with("GET /api/v1/nodes/node1 ") {
                (
                    "200 OK",
                    format!(
                        r#"{{"kind":"Node","apiVersion":"v1","metadata":{{"name":"node1","labels":{labels}}}}}"#
                    ),
                )
            } else {
                (
                    "404 Not Found",
                    r#"{"kind":"Status","message":"nodes \"other\" not found"}"#.to_string(),
                )
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn root_with_server(server: &str, node: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc/kubernetes")).unwrap();
    std::fs::write(root.join("etc/hostname"), format!("{node}\n")).unwrap();
    std::fs::write(
        root.join("etc/kubernetes/kubelet.conf"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster: {{server: '{server}'}}\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n"
        ),
    )
    .unwrap();
    (dir, root)
}

fn run_zones(root: &Path) -> common::Run {
    run_on(root, &["--focus", "Zones"])
}

#[test]
fn required_labels_pass_and_missing_zones_warn() {
    let port = api_double(
        r#"{"kubernetes.io/hostname":"node1","kubernetes.io/os":"linux","kubernetes.io/arch":"amd64","topology.kubernetes.io/region":"eu-west"}"#,
    );
    let (_d, root) = root_with_server(&format!("http://127.0.0.1:{port}"), "node1");
    let run = run_zones(&root);
    assert_eq!(run.code(), 0, "{}", run.explain());
    let out = system_out(&run.case(TEST));
    assert!(out.contains("[ok]   kubernetes.io/arch: amd64"), "{out}");
    assert!(
        out.contains("[ok]   topology.kubernetes.io/region: eu-west"),
        "{out}"
    );
    assert!(
        out.contains("[warn] topology.kubernetes.io/zone: absent"),
        "{out}"
    );
}

#[test]
fn a_missing_required_label_fails() {
    let port = api_double(r#"{"kubernetes.io/hostname":"node1","kubernetes.io/arch":"amd64"}"#);
    let (_d, root) = root_with_server(&format!("http://127.0.0.1:{port}"), "node1");
    let run = run_zones(&root);
    assert_eq!(run.code(), 1, "{}", run.explain());
    assert!(
        message(&run.case(TEST)).contains("Node node1 lacks kubernetes.io/os"),
        "{}",
        message(&run.case(TEST))
    );
}

#[test]
fn an_unknown_node_fails_with_the_api_servers_words() {
    let port = api_double("{}");
    let (_d, root) = root_with_server(&format!("http://127.0.0.1:{port}"), "other");
    let run = run_zones(&root);
    let m = message(&run.case(TEST));
    assert!(
        m.contains("did not return Node other") && m.contains("404") && m.contains("not found"),
        "{m}"
    );
}

#[test]
fn without_an_api_server_the_test_skips() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_d, root) = root_with_server(&format!("http://127.0.0.1:{port}"), "node1");
    let c = run_zones(&root).case(TEST);
    assert!(matches!(status(&c), Status::Skipped));
    assert!(
        message(&c).contains("no API server answers"),
        "{}",
        message(&c)
    );
    let c = run_zones(&fixture("healthy-v2")).case(TEST);
    assert!(matches!(status(&c), Status::Skipped));
}
