//! kubectl, a client nobody here wrote, against `node-conformance control-plane`. Skips when
//! kubectl is not on PATH, unless NODE_CONFORMANCE_REQUIRE_KUBECTL=1 (CI installs it).

mod common;

use std::io::Read;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

struct Server {
    control_plane: common::ControlPlane,
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

/// The control plane as a user starts it, and kubectl with the admin kubeconfig it wrote:
/// over TLS, the token and CA from that file.
fn start() -> Server {
    Server {
        control_plane: common::ControlPlane::start_secure(),
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Server {
    fn kubectl(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        let kubeconfig = &self
            .control_plane
            .secure
            .as_ref()
            .expect("served over TLS")
            .kubeconfig;
        c.env("KUBECONFIG", kubeconfig)
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

/// `kubectl get` prints the columns the server's Table has (as against kube-apiserver), and
/// `kubectl describe` finds a pod's events through the events' field selectors.
#[test]
fn kubectl_prints_server_columns_and_finds_events() {
    if !kubectl_present() {
        eprintln!("kubectl is not on PATH: skipped");
        return;
    }
    let s = start();
    let node = s.file(
        "node.yaml",
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: node1\n  labels: {node-role.kubernetes.io/control-plane: \"\"}\n",
    );
    s.ok(&["create", "--validate=false", "-f", &node]);
    s.ok(&[
        "patch",
        "node",
        "node1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True"}],"addresses":[{"type":"InternalIP","address":"10.0.0.1"}],"nodeInfo":{"kubeletVersion":"v1.31.0"}}}"#,
    ]);
    s.ok(&["cordon", "node1"]);
    let pod = s.file("pod.yaml", POD);
    s.ok(&["create", "--validate=false", "-f", &pod]);
    s.ok(&[
        "patch",
        "pod",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Running","podIP":"10.1.0.7","containerStatuses":[{"name":"c","image":"registry.example/web:1","imageID":"","ready":false,"restartCount":2,"state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}}"#,
    ]);
    let uid = s.ok(&["get", "pod", "web", "-o", "jsonpath={.metadata.uid}"]);
    let event = s.file(
        "event.yaml",
        &format!(
            "apiVersion: v1\nkind: Event\nmetadata: {{name: web.1, namespace: default}}\n\
             involvedObject: {{kind: Pod, namespace: default, name: web, uid: {uid}, apiVersion: v1}}\n\
             reason: BackOff\nmessage: Back-off restarting failed container\ntype: Warning\n\
             source: {{component: kubelet, host: node1}}\ncount: 4\n"
        ),
    );
    s.ok(&["create", "--validate=false", "-f", &event]);
    let other = s.file(
        "other.yaml",
        "apiVersion: v1\nkind: Event\nmetadata: {name: other.1, namespace: default}\n\
         involvedObject: {kind: Pod, namespace: default, name: other, apiVersion: v1}\n\
         reason: Pulled\nmessage: pulled\ntype: Normal\n",
    );
    s.ok(&["create", "--validate=false", "-f", &other]);

    // Columns split on runs of spaces; AGE is left out.
    let table = |args: &[&str]| -> Vec<Vec<String>> {
        s.ok(args)
            .lines()
            .map(|l| {
                l.split("  ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect()
            })
            .collect()
    };
    let pods = table(&["get", "pods", "-o", "wide"]);
    assert_eq!(
        pods[0],
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES"
        ]
    );
    assert_eq!(
        [&pods[1][..4], &pods[1][5..]].concat(),
        [
            "web",
            "0/1",
            "CrashLoopBackOff",
            "2",
            "10.1.0.7",
            "node1",
            "<none>",
            "<none>"
        ]
    );
    let nodes = table(&["get", "nodes"]);
    assert_eq!(nodes[0], ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    assert_eq!(
        [&nodes[1][..3], &nodes[1][4..]].concat(),
        [
            "node1",
            "Ready,SchedulingDisabled",
            "control-plane",
            "v1.31.0"
        ]
    );
    let events = table(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=web",
    ]);
    assert_eq!(
        events[0],
        ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    );
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[1][1..],
        [
            "Warning",
            "BackOff",
            "pod/web",
            "Back-off restarting failed container"
        ]
    );
    let lease = s.file(
        "lease.yaml",
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: node1, namespace: kube-node-lease}\nspec: {holderIdentity: node1}\n",
    );
    s.ok(&["create", "--validate=false", "-f", &lease]);
    let leases = table(&["get", "leases", "-A"]);
    assert_eq!(leases[0], ["NAMESPACE", "NAME", "HOLDER", "AGE"]);
    assert_eq!(leases[1][..3], ["kube-node-lease", "node1", "node1"]);

    let described = s.ok(&["describe", "pod", "web"]);
    let events_at = described.find("Events:").expect("an Events section");
    let events_part = &described[events_at..];
    assert!(
        events_part.contains("Warning  BackOff")
            && events_part.contains("Back-off restarting failed container")
            && !events_part.contains("pulled"),
        "{described}"
    );
}

/// `kubectl explain` and `kubectl apply` read the served OpenAPI documents.
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

/// kubectl's paged lists (`--chunk-size`, which follows `metadata.continue` of lists and
/// Tables alike), `delete --all` with a selector, an object kept by its finalizer until a patch
/// removes it, and `kubectl debug` against a server without ephemeral containers (1.20):
/// refused with kube-apiserver's 404, not a crash.
#[test]
fn kubectl_pages_lists_keeps_finalized_objects_and_survives_debug() {
    if !kubectl_present() {
        eprintln!("kubectl is not on PATH: skipped");
        return;
    }
    let s = start();
    for i in 0..5 {
        let team = if i % 2 == 0 { "a" } else { "b" };
        s.ok(&[
            "create",
            "configmap",
            &format!("c{i}"),
            "--from-literal=k=v",
        ]);
        s.ok(&[
            "label",
            "configmap",
            &format!("c{i}"),
            &format!("team={team}"),
        ]);
    }
    let names = s.ok(&["get", "configmaps", "--chunk-size=2", "-o", "name"]);
    let listed: Vec<&str> = names
        .lines()
        .filter(|l| l.starts_with("configmap/c"))
        .collect();
    assert_eq!(listed.len(), 5, "{names}");
    let table = s.ok(&["get", "configmaps", "--chunk-size=2", "-l", "team=a"]);
    for c in ["c0", "c2", "c4"] {
        assert!(table.contains(c), "{table}");
    }
    assert!(!table.contains("c1"), "{table}");

    let deleted = s.ok(&["delete", "configmaps", "-l", "team=b"]);
    assert!(
        deleted.contains("\"c1\" deleted") && deleted.contains("\"c3\" deleted"),
        "{deleted}"
    );

    s.ok(&[
        "patch",
        "configmap",
        "c0",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/keep"]}}"#,
    ]);
    s.ok(&["delete", "configmap", "c0", "--wait=false"]);
    let kept = s.ok(&[
        "get",
        "configmap",
        "c0",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert!(
        !kept.trim().is_empty(),
        "c0 is marked for deletion: {kept:?}"
    );
    s.ok(&[
        "patch",
        "configmap",
        "c0",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    let gone = s.kubectl(&["get", "configmap", "c0"]).output().unwrap();
    assert!(!gone.status.success(), "c0 is gone once its finalizer is");

    s.file("pod.yaml", POD);
    s.ok(&[
        "create",
        "-f",
        &s.dir.path().join("pod.yaml").display().to_string(),
    ]);
    let debug = s
        .kubectl(&["debug", "web", "--image=busybox", "--container=debugger"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&debug.stderr);
    eprintln!("kubectl debug: {err}");
    assert!(!debug.status.success(), "{err}");
    assert!(
        !err.contains("panic") && !err.contains("nil pointer"),
        "{err}"
    );
}
