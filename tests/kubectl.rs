//! kubectl, a client nobody here wrote, against `node-conformance control-plane`. Skips when
//! kubectl is not on PATH, unless NODE_CONFORMANCE_REQUIRE_KUBECTL=1 (CI installs it).

mod common;

use std::io::Read;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

struct Server {
    _control_plane: common::ControlPlane,
    kubeconfig: tempfile::NamedTempFile,
    dir: tempfile::TempDir,
}

fn kubectl_present() -> bool {
    let present = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present && std::env::var("NODE_CONFORMANCE_REQUIRE_KUBECTL").as_deref() == Ok("1") {
        panic!("kubectl is required (NODE_CONFORMANCE_REQUIRE_KUBECTL=1) but is not on PATH");
    }
    present
}

fn start() -> Server {
    let control_plane = common::ControlPlane::start();
    let port = control_plane.port;
    // What `kubelet-config` prints, up to the KubeletConfiguration, is the kubeconfig.
    let out = common::command()
        .args(["kubelet-config", "--api-server-port", &port.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let kubeconfig_text = text.split("\n---\n").next().unwrap().to_string();
    let kubeconfig = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(kubeconfig.path(), kubeconfig_text).unwrap();
    Server {
        _control_plane: control_plane,
        kubeconfig,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Server {
    fn kubectl(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.env("KUBECONFIG", self.kubeconfig.path())
            // kubectl caches discovery under HOME; keep each test's apart.
            .env("HOME", self.dir.path())
            .args(args);
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out: Output = self.kubectl(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  nodeName: node1
  containers:
  - name: c
    image: registry.example/web:1
";

#[test]
fn kubectl_reads_creates_applies_patches_watches_and_deletes() {
    if !kubectl_present() {
        eprintln!("kubectl is not on PATH: skipped");
        return;
    }
    let s = start();
    let version = s.ok(&["version", "-o", "json"]);
    assert!(version.contains("\"serverVersion\""), "{version}");

    let empty = s.ok(&["get", "nodes,pods", "-A"]);
    assert!(!empty.contains("web"), "{empty}");
    let ns = s.ok(&["get", "namespaces", "-o", "name"]);
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(&format!("namespace/{n}")), "{ns}");
    }

    // kubectl validates against the served OpenAPI (v2, protobuf): an unknown field is refused.
    let bad = s.file("bad.yaml", &POD.replace("    image:", "    imagee:"));
    let refused = s.kubectl(&["create", "-f", &bad]).output().unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains(r#"unknown field "imagee""#), "{stderr}");
    let pod = s.file("pod.yaml", POD);
    let created = s.ok(&["create", "-f", &pod]);
    assert!(created.contains("pod/web created"), "{created}");

    let mut watch = s
        .kubectl(&["get", "pods", "-w", "-o", "json", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));

    let applied = s.file("applied.yaml", &POD.replace("web:1", "web:2"));
    let out = s.ok(&["apply", "-f", &applied]);
    assert!(out.contains("pod/web configured"), "{out}");
    let image = s.ok(&[
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.spec.containers[0].image}",
    ]);
    assert_eq!(image, "registry.example/web:2");

    s.ok(&[
        "patch",
        "pod",
        "web",
        "--type=strategic",
        "-p",
        r#"{"metadata":{"labels":{"s":"1"}}}"#,
    ]);
    s.ok(&[
        "patch",
        "pod",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"m":"1"}}}"#,
    ]);
    s.ok(&[
        "patch",
        "pod",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/j","value":"1"}]"#,
    ]);
    let labels = s.ok(&["get", "pod", "web", "-o", "jsonpath={.metadata.labels}"]);
    for l in [r#""s":"1""#, r#""m":"1""#, r#""j":"1""#, r#""app":"web""#] {
        assert!(labels.contains(l), "{labels}");
    }

    let deleted = s.ok(&["delete", "pod", "web", "--grace-period=0", "--force"]);
    assert!(deleted.contains("\"web\" force deleted"), "{deleted}");
    let gone = s.kubectl(&["get", "pod", "web"]).output().unwrap();
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("NotFound"));

    std::thread::sleep(Duration::from_millis(500));
    let _ = watch.kill();
    let mut seen = String::new();
    watch
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut seen)
        .unwrap();
    let _ = watch.wait();
    // One WatchEvent document per change: its type and the pod's name.
    let events: Vec<String> = serde_json::Deserializer::from_str(&seen)
        .into_iter::<serde_json::Value>()
        .map(|e| {
            let e = e.unwrap();
            format!(
                "{} {}",
                e["type"].as_str().unwrap(),
                e["object"]["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        events.first().map(String::as_str),
        Some("ADDED web"),
        "{events:?}"
    );
    // apply, three patches: four changes, then the deletion.
    let modified = events.iter().filter(|e| *e == "MODIFIED web").count();
    assert!(modified >= 4, "{events:?}");
    assert_eq!(
        events.last().map(String::as_str),
        Some("DELETED web"),
        "{events:?}"
    );
}

#[test]
fn kubectl_explains_from_the_served_openapi() {
    if !kubectl_present() {
        eprintln!("kubectl is not on PATH: skipped");
        return;
    }
    let s = start();
    let containers = s.ok(&["explain", "pod.spec.containers"]);
    assert!(
        containers.contains("FIELD: containers <[]Container>"),
        "{containers}"
    );
    assert!(containers.contains("volumeMounts"), "{containers}");
    // A field later releases added, from the overlay.
    let host_ips = s.ok(&["explain", "pod.status.hostIPs"]);
    assert!(host_ips.contains("<[]HostIP>"), "{host_ips}");
    // Discovery puts pods in the `all` category, as kube-apiserver does.
    s.ok(&["create", "-f", &s.file("pod.yaml", POD)]);
    let all = s.ok(&["get", "all", "-o", "name"]);
    assert!(all.contains("pod/web"), "{all}");
}
