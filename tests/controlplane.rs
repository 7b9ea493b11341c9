//! The local control plane served by `node-conformance control-plane`, exercised over HTTP.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};

/// The control plane, with helpers to talk to it.
struct Server(common::ControlPlane);

impl std::ops::Deref for Server {
    type Target = common::ControlPlane;
    fn deref(&self) -> &common::ControlPlane {
        &self.0
    }
}

fn start() -> Server {
    Server(common::ControlPlane::start())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
    fn send(&self, method: &str, path: &str, ctype: &str, body: &Value) -> (u16, Value) {
        self.send_text(method, path, ctype, &body.to_string())
    }
    /// A request whose body is sent as written, valid or not.
    fn send_text(&self, method: &str, path: &str, ctype: &str, body: &str) -> (u16, Value) {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path))
            .header("Content-Type", ctype)
            .body(body.to_string())
            .unwrap();
        let mut resp = agent().run(req).unwrap();
        let code = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    fn get(&self, path: &str) -> (u16, Value) {
        let mut resp = agent().get(&self.url(path)).call().unwrap();
        let code = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

#[test]
fn discovery_version_and_default_namespaces() {
    let s = start();
    let (code, api) = s.get("/api");
    assert_eq!((code, api["versions"][0].as_str()), (200, Some("v1")));
    let (_, v1) = s.get("/api/v1");
    let pods = v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods")
        .unwrap();
    assert_eq!(
        (pods["kind"].as_str(), pods["namespaced"].as_bool()),
        (Some("Pod"), Some(true))
    );
    assert!(
        v1["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "nodes/status")
    );
    let (_, groups) = s.get("/apis");
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["coordination.k8s.io", "storage.k8s.io", "node.k8s.io"]
    );
    let (_, leases) = s.get("/apis/coordination.k8s.io/v1");
    assert_eq!(leases["resources"][0]["kind"], "Lease");
    let version = s.get("/version").1;
    assert_eq!(version["major"], "1");
    // The release /version names is the one Pod Security's `latest` evaluates as.
    assert_eq!(
        version["minor"],
        node_conformance::podsecurity::NEWEST.to_string()
    );
    assert_eq!(s.get("/healthz"), (200, Value::String("ok".into())));
    let (_, ns) = s.get("/api/v1/namespaces");
    let ns: Vec<&str> = ns["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    for want in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(&want), "{ns:?}");
    }
    assert_eq!(s.get("/api/v1/widgets").0, 404);
}

#[test]
fn the_kubelets_calls_work() {
    let s = start();
    let json = "application/json";
    // Registration, and the 409 a second registration gets.
    let (code, node) = s.send("POST", "/api/v1/nodes", json, &json!({"metadata": {"name": "node1"}, "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}}));
    assert_eq!(code, 201, "{node}");
    assert_eq!(node["kind"], "Node");
    let (code, st) = s.send(
        "POST",
        "/api/v1/nodes",
        json,
        &json!({"metadata": {"name": "node1"}}),
    );
    assert_eq!((code, st["reason"].as_str()), (409, Some("AlreadyExists")));
    // Heartbeat: a strategic merge patch of status; spec changes are ignored there.
    let (code, node) = s.send(
        "PATCH",
        "/api/v1/nodes/node1/status",
        "application/strategic-merge-patch+json",
        &json!({"status": {"$setElementOrder/conditions": [{"type": "Ready"}], "conditions": [{"type": "Ready", "status": "True"}]}, "spec": {"podCIDR": "10.0.0.0/24"}}),
    );
    assert_eq!(code, 200, "{node}");
    assert_eq!(node["status"]["conditions"][0]["status"], "True");
    assert!(node["spec"].get("podCIDR").is_none());
    // The lease: optimistic concurrency.
    let lease = json!({"metadata": {"name": "node1"}, "spec": {"holderIdentity": "node1", "renewTime": "2026-11-27T07:00:00.000000Z"}});
    let (_, created) = s.send(
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
        json,
        &lease,
    );
    let mut renewed = created.clone();
    renewed["spec"]["renewTime"] = json!("2026-11-27T07:00:10.000000Z");
    assert_eq!(
        s.send(
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node1",
            json,
            &renewed
        )
        .0,
        200
    );
    let (code, st) = s.send(
        "PUT",
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node1",
        json,
        &created,
    );
    assert_eq!((code, st["reason"].as_str()), (409, Some("Conflict")));
    // A mirror pod, with the defaults the kubelet relies on, found by the node's field selector.
    let pod = json!({"metadata": {"name": "web-node1", "annotations": {"kubernetes.io/config.mirror": "abc"}},
        "spec": {"nodeName": "node1", "containers": [{"name": "c", "image": "example.com/web"}]}});
    let (code, pod) = s.send("POST", "/api/v1/namespaces/default/pods", json, &pod);
    assert_eq!(code, 201, "{pod}");
    assert_eq!(pod["spec"]["restartPolicy"], "Always");
    assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(
        pod["spec"]["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    let (_, list) =
        s.get("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode1&limit=500&resourceVersion=0");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        s.get("/api/v1/pods?fieldSelector=spec.nodeName%3Dother").1["items"],
        json!([])
    );
    assert_eq!(s.get("/api/v1/pods?fieldSelector=spec.bogus%3Dx").0, 400);
    // Graceful deletion: marked first, removed by a grace-0 delete with a uid precondition.
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let (code, marked) = s.send(
        "DELETE",
        "/api/v1/namespaces/default/pods/web-node1",
        json,
        &json!({}),
    );
    assert_eq!(code, 200);
    assert!(
        marked["metadata"]["deletionTimestamp"].is_string(),
        "{marked}"
    );
    let (code, st) = s.send(
        "DELETE",
        "/api/v1/namespaces/default/pods/web-node1",
        json,
        &json!({"gracePeriodSeconds": 0, "preconditions": {"uid": "wrong"}}),
    );
    assert_eq!((code, st["reason"].as_str()), (409, Some("Conflict")));
    let (code, _) = s.send(
        "DELETE",
        "/api/v1/namespaces/default/pods/web-node1",
        json,
        &json!({"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}),
    );
    assert_eq!(code, 200);
    assert_eq!(
        s.get("/api/v1/namespaces/default/pods/web-node1").1["reason"],
        "NotFound"
    );
}

#[test]
fn patches_of_every_kind() {
    let s = start();
    let cm = json!({"metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"x": "1", "y": "2"}});
    s.send(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        &cm,
    );
    let path = "/api/v1/namespaces/default/configmaps/c";
    let (_, c) = s.send(
        "PATCH",
        path,
        "application/merge-patch+json",
        &json!({"data": {"x": null, "z": "3"}}),
    );
    assert_eq!(c["data"], json!({"y": "2", "z": "3"}));
    let (_, c) = s.send(
        "PATCH",
        path,
        "application/json-patch+json",
        &json!([{"op": "add", "path": "/metadata/labels/b", "value": "2"}]),
    );
    assert_eq!(c["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    let (code, st) = s.send(
        "PATCH",
        path,
        "application/json-patch+json",
        &json!([{"op": "remove", "path": "/nope"}]),
    );
    assert_eq!((code, st["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(s.send("PATCH", path, "text/plain", &json!({})).0, 415);
}

#[test]
fn watches_resume_and_stream_changes() {
    let s = start();
    let (_, ns) = s.get("/api/v1/namespaces/default");
    let rv = ns["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    write!(stream, "GET /api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=5 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream);
    s.send(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        &json!({"metadata": {"name": "w"}}),
    );
    s.send(
        "DELETE",
        "/api/v1/namespaces/default/configmaps/w",
        "application/json",
        &json!({}),
    );
    let mut events = Vec::new();
    let mut line = String::new();
    while events.len() < 2 && reader.read_line(&mut line).unwrap_or(0) > 0 {
        if let Ok(v) = serde_json::from_str::<Value>(line.trim()) {
            events.push((
                v["type"].as_str().unwrap_or("").to_string(),
                v["object"]["kind"].as_str().unwrap_or("").to_string(),
            ));
        }
        line.clear();
    }
    assert_eq!(
        events,
        vec![
            ("ADDED".to_string(), "ConfigMap".to_string()),
            ("DELETED".to_string(), "ConfigMap".to_string())
        ]
    );
}

#[test]
fn a_taken_port_is_a_usage_error_naming_it() {
    let s = start();
    let out = common::command()
        .args(["control-plane", "--api-server-port", &s.port.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("port {} on 127.0.0.1 is already in use", s.port)),
        "{err}"
    );
}

#[test]
fn pod_security_admission_follows_namespace_labels() {
    let s = start();
    let json = "application/json";
    for (ns, labels) in [
        (
            "locked",
            json!({"pod-security.kubernetes.io/enforce": "baseline"}),
        ),
        (
            "watched",
            json!({"pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/audit": "restricted"}),
        ),
    ] {
        assert_eq!(
            s.send(
                "POST",
                "/api/v1/namespaces",
                json,
                &json!({"metadata": {"name": ns, "labels": labels}})
            )
            .0,
            201
        );
    }
    let privileged = json!({"metadata": {"name": "p"}, "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "x:1", "securityContext": {"privileged": true}}]}});
    let (code, st) = s.send("POST", "/api/v1/namespaces/locked/pods", json, &privileged);
    assert_eq!(
        (code, st["reason"].as_str()),
        (403, Some("Forbidden")),
        "{st}"
    );
    let m = st["message"].as_str().unwrap();
    assert_eq!(
        m,
        "pods \"p\" is forbidden: violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true), \
         privileged (container \"c\" must not set securityContext.privileged=true)"
    );
    // A baseline pod is admitted there; in the warned namespace it is admitted with warnings.
    let plain =
        json!({"metadata": {"name": "q"}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}});
    assert_eq!(
        s.send("POST", "/api/v1/namespaces/locked/pods", json, &plain)
            .0,
        201
    );
    let req = ureq::http::Request::builder()
        .method("POST")
        .uri(s.url("/api/v1/namespaces/watched/pods"))
        .header("Content-Type", json)
        .body(plain.to_string())
        .unwrap();
    let resp = agent().run(req).unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let warning = resp
        .headers()
        .get("warning")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        warning.starts_with("299 - \"would violate PodSecurity 'restricted:latest': allowPrivilegeEscalation != false"),
        "{warning}"
    );
    assert!(warning.contains("restricted:latest"), "{warning}");
    assert!(warning.contains("allowPrivilegeEscalation"), "{warning}");
    // No labels, no checks.
    assert_eq!(
        s.send("POST", "/api/v1/namespaces/default/pods", json, &privileged)
            .0,
        201
    );
}

#[test]
fn pod_security_admission_evaluates_the_pinned_policy_version() {
    let s = start();
    let json = "application/json";
    for (ns, version) in [
        ("pinned", Some("v1.33")),
        ("current", None),
        ("unparsable", Some("1.33")),
    ] {
        let mut labels = json!({"pod-security.kubernetes.io/enforce": "baseline"});
        if let Some(v) = version {
            labels["pod-security.kubernetes.io/enforce-version"] = json!(v);
        }
        let ns_obj = json!({"metadata": {"name": ns, "labels": labels}});
        assert_eq!(s.send("POST", "/api/v1/namespaces", json, &ns_obj).0, 201);
    }
    // A probe with a host is forbidden from policy v1.34 on.
    let probe = json!({"metadata": {"name": "probe"}, "spec": {"containers": [{"name": "c", "image": "x:1",
        "readinessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}}}]}});
    assert_eq!(
        s.send("POST", "/api/v1/namespaces/pinned/pods", json, &probe)
            .0,
        201
    );
    for (ns, policy) in [
        ("current", "baseline:latest"),
        ("unparsable", "baseline:latest"),
    ] {
        let (code, st) = s.send(
            "POST",
            &format!("/api/v1/namespaces/{ns}/pods"),
            json,
            &probe,
        );
        assert_eq!(code, 403, "{st}");
        assert_eq!(
            st["message"].as_str().unwrap(),
            format!(
                "pods \"probe\" is forbidden: violates PodSecurity \"{policy}\": probe or lifecycle host \
                 (container \"c\" uses probe or lifecycle host \"10.0.0.1\")"
            )
        );
    }
    let privileged = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x:1",
        "securityContext": {"privileged": true}}]}});
    let (code, st) = s.send("POST", "/api/v1/namespaces/pinned/pods", json, &privileged);
    assert_eq!(code, 403, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .contains("violates PodSecurity \"baseline:v1.33\": privileged"),
        "{st}"
    );
}

#[test]
fn kubelet_config_points_at_the_local_control_plane() {
    // For a control plane served with --insecure-http: an http:// kubeconfig, nothing written.
    let out = common::command()
        .args([
            "kubelet-config",
            "--insecure-http",
            "--api-server-port",
            "8089",
            "--pod-manifest-path",
            "/srv/manifests",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text).unwrap();
    assert_eq!(
        docs[0]["clusters"][0]["cluster"]["server"],
        "http://127.0.0.1:8089"
    );
    // The kubelet's default content type, protobuf, is read as well as JSON.
    assert_eq!(docs[1].get("contentType"), None);
    assert_eq!(docs[1]["staticPodPath"], "/srv/manifests");
}

#[test]
fn kubelet_config_makes_root_only_credentials_once_and_refuses_shared_ones() {
    use std::os::unix::fs::PermissionsExt;
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: kubelet-config keeps its credentials as root only");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("var/lib")).unwrap();
    let make = || {
        common::command()
            .arg("kubelet-config")
            .arg("--rootfs")
            .arg(root.path())
            .args([
                "--api-server-port",
                "8089",
                "--pod-manifest-path",
                "/srv/manifests",
            ])
            .output()
            .unwrap()
    };
    let out = make();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let attach = root.path().join("var/lib/node-conformance/attach");
    let kubeconfig = attach.join("kubelet.kubeconfig");
    assert!(
        text.contains("/var/lib/node-conformance/attach/kubelet.kubeconfig"),
        "{text}"
    );
    let settings = text
        .split("\n---\n")
        .nth(1)
        .expect("the KubeletConfiguration");
    let settings: Value = serde_saphyr::from_str(settings).unwrap();
    assert_eq!(settings["staticPodPath"], "/srv/manifests");
    let k: Value = serde_json::from_str(&std::fs::read_to_string(&kubeconfig).unwrap()).unwrap();
    assert_eq!(
        k["clusters"][0]["cluster"]["server"],
        "https://127.0.0.1:8089"
    );
    assert!(k["users"][0]["user"]["client-certificate-data"].is_string());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&attach), 0o700);
    assert_eq!(mode(&kubeconfig), 0o600);
    assert_eq!(mode(&attach.join("ca.key")), 0o600);
    // Made once: a second run keeps the CA the kubelet already trusts.
    let ca = std::fs::read(attach.join("ca.crt")).unwrap();
    assert_eq!(make().status.code(), Some(0));
    assert_eq!(std::fs::read(attach.join("ca.crt")).unwrap(), ca);
    // A key others can read is not used, by kubelet-config or by a run.
    std::fs::set_permissions(
        attach.join("ca.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = make();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ca.key: must be root's"), "{err}");
    let run = common::run_on(root.path(), &["--focus", "MirrorPod"]);
    assert_eq!(run.code(), 2, "{}", run.explain());
    assert!(
        run.stderr()
            .contains("the credentials kubelet-config made cannot be used"),
        "{}",
        run.stderr()
    );
}

#[test]
fn bad_bodies_answer_400_and_oversized_ones_413() {
    let s = start();
    for (ctype, body) in [
        ("application/json", "{\"metadata\": "),
        ("application/json", "not json"),
        ("application/yaml", "metadata: [unclosed"),
    ] {
        let (code, status) = s.send_text("POST", "/api/v1/namespaces/default/pods", ctype, body);
        assert_eq!(code, 400, "{ctype} {body:?}: {status}");
        assert_eq!(status["reason"], "BadRequest");
    }
    // YAML is accepted as kube-apiserver accepts it.
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n";
    let configmaps = "/api/v1/namespaces/default/configmaps";
    assert_eq!(
        s.send_text("POST", configmaps, "application/yaml", yaml).0,
        201
    );
    let patch = "application/merge-patch+json";
    let from_yaml = "/api/v1/namespaces/default/configmaps/from-yaml";
    assert_eq!(s.send_text("PATCH", from_yaml, patch, "{").0, 400);
    let (code, status) = s.send(
        "DELETE",
        "/api/v1/namespaces/default",
        "application/json",
        &json!({}),
    );
    assert_eq!((code, status["reason"].as_str()), (403, Some("Forbidden")));
    let big = json!({"metadata": {"name": "big"}, "data": {"a": "x".repeat(4 << 20)}});
    let (code, _) = s.send(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        &big,
    );
    assert_eq!(code, 413);
    assert_eq!(s.get("/api/v1/namespaces/default/configmaps/big").0, 404);
    assert_eq!(s.get("/healthz").0, 200);
}

/// Reads one watch's events until `count` arrived: (type, name, resourceVersion).
fn read_events(port: u16, path: &str, count: usize) -> Vec<(String, String, u64)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut events = Vec::new();
    let mut line = String::new();
    while events.len() < count {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        // Chunk sizes and headers are not JSON objects; events are, one per line.
        let Ok(e) = serde_json::from_str::<Value>(line.trim()) else {
            continue;
        };
        if !e.is_object() || e.get("type").is_none() {
            continue;
        }
        let o = &e["object"]["metadata"];
        events.push((
            e["type"].as_str().unwrap().to_string(),
            o["name"].as_str().unwrap_or("").to_string(),
            o["resourceVersion"]
                .as_str()
                .unwrap_or("0")
                .parse()
                .unwrap(),
        ));
    }
    events
}

#[test]
fn a_hundred_watchers_each_see_every_event_in_order() {
    let s = start();
    let (_, list) = s.get("/api/v1/namespaces/default/configmaps");
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    const EVENTS: usize = 50;
    let path = format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}");
    let watchers: Vec<_> = (0..100)
        .map(|_| {
            let (port, path) = (s.port, path.clone());
            std::thread::spawn(move || read_events(port, &path, EVENTS))
        })
        .collect();
    // Let every watcher connect before the changes start.
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..EVENTS {
        let (code, _) = s.send(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            &json!({"metadata": {"name": format!("cm-{i:03}")}}),
        );
        assert_eq!(code, 201);
    }
    for w in watchers {
        let events = w.join().unwrap();
        assert_eq!(events.len(), EVENTS);
        for (i, (kind, name, _)) in events.iter().enumerate() {
            assert_eq!(kind, "ADDED");
            assert_eq!(name, &format!("cm-{i:03}"));
        }
        assert!(
            events.windows(2).all(|w| w[0].2 < w[1].2),
            "in resourceVersion order"
        );
    }
}

/// A small deterministic generator: the same inputs every run, so a failure reproduces.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn random_requests_at_every_route_never_break_the_server() {
    let s = start();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    let paths = [
        "/api",
        "/apis",
        "/api/v1",
        "/apis/coordination.k8s.io/v1",
        "/version",
        "/healthz",
        "/api/v1/nodes",
        "/api/v1/nodes/n1",
        "/api/v1/nodes/n1/status",
        "/api/v1/namespaces",
        "/api/v1/namespaces/default",
        "/api/v1/namespaces/default/pods",
        "/api/v1/namespaces/default/pods/p1",
        "/api/v1/namespaces/default/pods/p1/status",
        "/api/v1/pods",
        "/api/v1/namespaces/default/events",
        "/api/v1/namespaces/default/configmaps/c1",
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
        "/apis/storage.k8s.io/v1/csinodes/n1",
        "/apis/node.k8s.io/v1/runtimeclasses",
        "/api/v1/namespaces/default/pods/p1/log",
        "/apis/nope/v9/things",
        "/api/v1/../../etc",
        "/api/v1/namespaces//pods",
        "/api/v1/namespaces/default/pods/p1/status/extra",
    ];
    let queries = [
        "",
        "?watch=true&timeoutSeconds=-1",
        "?labelSelector=a%3Db",
        "?labelSelector=%21%21%21",
        "?fieldSelector=spec.nodeName%3Dn1",
        "?fieldSelector=bogus",
        "?resourceVersion=abc",
        "?resourceVersion=999999999999999999999",
        "?limit=-1",
        "?%zz",
    ];
    let ctypes = [
        "application/json",
        "application/yaml",
        "application/strategic-merge-patch+json",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/vnd.kubernetes.protobuf",
        "text/plain",
        "",
    ];
    let valid = [
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}}),
        json!({"metadata": {"name": "n1", "labels": {"a": "b"}}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        json!({"metadata": {"name": "c1"}, "data": {"k": "v"}}),
        json!([{"op": "replace", "path": "/metadata/labels", "value": {"x": "y"}}]),
        json!({"metadata": {"$patch": "delete"}, "$setElementOrder/conditions": [{"type": "Ready"}]}),
        json!({"gracePeriodSeconds": 0, "preconditions": {"uid": "nope"}}),
        json!({"spec": {"containers": [{"name": "c", "$patch": "replace"}]}, "$retainKeys": ["spec"]}),
    ];
    let mut codes = std::collections::BTreeMap::new();
    for _ in 0..1500 {
        let method = *rng.pick(&methods);
        let path = format!("{}{}", rng.pick(&paths), rng.pick(&queries));
        let ctype = *rng.pick(&ctypes);
        let body = match rng.next() % 4 {
            0 => String::new(),
            1 => rng.pick(&valid).to_string(),
            2 => {
                let v = rng.pick(&valid).to_string();
                let cut = (rng.next() as usize) % (v.len() + 1);
                v[..cut].to_string()
            }
            _ => (0..(rng.next() % 512))
                .map(|_| char::from(b' ' + (rng.next() % 95) as u8))
                .collect(),
        };
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(s.url(&path));
        if !ctype.is_empty() {
            req = req.header("Content-Type", ctype);
        }
        let mut resp = agent()
            .run(req.body(body.clone()).unwrap())
            .unwrap_or_else(|e| panic!("{method} {path} ({ctype}) {body:?}: {e}"));
        let code = resp.status().as_u16();
        // kube-apiserver answers a few malformed inputs (a resourceVersion or DELETE body that
        // does not decode) with a 500 Status without a reason; anything else from 500 up is a
        // broken server.
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let answered_status = serde_json::from_str::<Value>(&text)
            .is_ok_and(|v| v["kind"] == "Status" && v["code"] == 500 && v.get("reason").is_none());
        assert!(
            code < 500 || (code == 500 && answered_status),
            "{method} {path} ({ctype}) {body:?} answered {code}: {text}"
        );
        *codes.entry(code).or_insert(0) += 1;
    }
    // Both successes and refusals were exercised, and the server is still well.
    assert!(
        codes.keys().any(|c| *c < 300) && codes.keys().any(|c| *c >= 400),
        "{codes:?}"
    );
    assert_eq!(s.get("/healthz").0, 200);
    assert_eq!(s.get("/api/v1/namespaces/default").0, 200);
}

#[test]
fn a_uid_in_the_body_is_a_precondition_and_new_pods_start_pending() {
    let s = start();
    let (code, pod) = s.send(
        "POST",
        "/api/v1/namespaces/default/pods",
        "application/json",
        &json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]},
                "status": {"phase": "Succeeded"}}),
    );
    assert_eq!(code, 201);
    assert_eq!(
        pod["status"],
        json!({"phase": "Pending", "qosClass": "BestEffort"})
    );
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let path = "/api/v1/namespaces/default/pods/p/status";
    let ctype = "application/strategic-merge-patch+json";
    // In a patch, another uid is a change of an immutable field (422, as kube-apiserver).
    let (code, status) = s.send(
        "PATCH",
        path,
        ctype,
        &json!({"metadata": {"uid": "not-the-uid"}, "status": {"phase": "Running"}}),
    );
    assert_eq!(
        (
            code,
            status["reason"].as_str(),
            status["details"]["causes"][0]["field"].as_str()
        ),
        (422, Some("Invalid"), Some("metadata.uid")),
        "{status}"
    );
    // In a PUT it is a precondition (409).
    let mut stale = pod.clone();
    stale["metadata"]["uid"] = json!("not-the-uid");
    let (code, status) = s.send("PUT", path, "application/json", &stale);
    assert_eq!(
        (code, status["reason"].as_str()),
        (409, Some("Conflict")),
        "{status}"
    );
    let (code, _) = s.send(
        "PATCH",
        path,
        ctype,
        &json!({"metadata": {"uid": uid}, "status": {"phase": "Running"}}),
    );
    assert_eq!(code, 200);
    assert_eq!(
        s.get("/api/v1/namespaces/default/pods/p").1["status"]["phase"],
        "Running"
    );
}

#[test]
fn lists_honour_the_resource_version_asked_for() {
    let s = start();
    let (_, list) = s.get("/api/v1/namespaces");
    let rv: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let exact =
        |v: u64| format!("/api/v1/namespaces?resourceVersion={v}&resourceVersionMatch=Exact");
    assert_eq!(s.get(&exact(rv)).0, 200);
    let (code, status) = s.get(&exact(rv - 1));
    assert_eq!((code, status["reason"].as_str()), (410, Some("Expired")));
    assert_eq!(
        s.get(&format!("/api/v1/namespaces?resourceVersion={}", rv - 1))
            .0,
        200
    );
    assert_eq!(
        s.get(&format!("/api/v1/namespaces?resourceVersion={}", rv + 5))
            .0,
        504
    );
}
