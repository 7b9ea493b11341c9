//! Server-side tables and field selectors of the local control plane, against kube-apiserver
//! 1.20.2 on the same objects and requests: tests/fixtures/tables/objects.json is what is
//! created (then status written, some pods deleted gracefully), requests.json what is asked,
//! and kube-apiserver-1.20.2.json what the real server answered, normalised (ages masked,
//! rows sorted, row objects reduced to kind and name, Status to code, reason and message).
//!
//! With NODE_CONFORMANCE_APISERVER="URL TOKEN" (a real kube-apiserver, e.g. from
//! ../shared/peers/kubernetes/apiserver.sh) the objects are also created there and every
//! answer is compared live; NODE_CONFORMANCE_WRITE_GOLDEN=1 then rewrites the answers file
//! from that server.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

const KUBECTL_TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

/// Columns whose cells are times relative to now.
const AGES: &[&str] = &["Age", "Last Seen", "First Seen", "Created At"];

struct Api {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Api {
    fn ours(port: u16) -> Self {
        Self::new(format!("http://127.0.0.1:{port}"), None)
    }

    fn new(base: String, token: Option<String>) -> Self {
        let tls = ureq::tls::TlsConfig::builder()
            .disable_verification(true)
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .into();
        Self { base, token, agent }
    }

    fn send(&self, method: &str, path: &str, accept: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Accept", accept)
            .header("Content-Type", "application/json");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut resp = self.agent.run(req.body(body).unwrap()).unwrap();
        let code = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        // A watch answers with one event per line: the first is enough here.
        let first = text.lines().next().unwrap_or("");
        let value = serde_json::from_str(&text)
            .or_else(|_| serde_json::from_str(first))
            .unwrap_or(Value::String(text));
        (code, value)
    }
}

fn fixture(name: &str) -> PathBuf {
    common::fixture("tables").join(name)
}

fn load(name: &str, ns: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    serde_json::from_str(&text.replace("{ns}", ns)).unwrap()
}

/// Creates the fixture objects, writes their status, deletes what is to be deleted.
fn setup(api: &Api, ns: &str) {
    for step in load("objects.json", ns).as_array().unwrap() {
        if let Some(path) = step["delete"].as_str() {
            let (code, resp) = api.send("DELETE", path, "application/json", Some(&step["body"]));
            assert!(code < 300, "DELETE {path}: {code} {resp}");
            continue;
        }
        let path = step["create"].as_str().unwrap();
        let mut obj = step["object"].clone();
        if let Some(of) = step["involved_uid_of"].as_str() {
            obj["involvedObject"]["uid"] =
                api.send("GET", of, "application/json", None).1["metadata"]["uid"].clone();
        }
        let (code, mut created) = api.send("POST", path, "application/json", Some(&obj));
        assert!(code < 300, "POST {path}: {code} {created}");
        if let Some(status) = step.get("status") {
            created["status"] = status.clone();
            let name = created["metadata"]["name"].as_str().unwrap().to_string();
            let put = format!("{path}/{name}/status");
            let (code, resp) = api.send("PUT", &put, "application/json", Some(&created));
            assert!(code < 300, "PUT {put}: {code} {resp}");
        }
    }
}

/// What a real server keeps across runs, removed before and after: cluster-scoped objects,
/// and the services holding cluster IPs (a namespace is never gone without its controller).
fn clean(api: &Api, ns: &str) {
    for step in load("objects.json", ns).as_array().unwrap() {
        let Some(path) = step["create"].as_str() else {
            continue;
        };
        let cluster_scoped = !path.contains("/namespaces/") && !path.ends_with("/namespaces");
        if cluster_scoped || path.ends_with("/services") {
            let name = step["object"]["metadata"]["name"].as_str().unwrap();
            api.send(
                "DELETE",
                &format!("{path}/{name}"),
                "application/json",
                None,
            );
        }
    }
}

fn accept(kind: &str) -> &'static str {
    match kind {
        "table" => KUBECTL_TABLE,
        "table-v1beta1" => "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
        "table-v2" => "application/json;as=Table;v=v2;g=meta.k8s.io",
        _ => "application/json",
    }
}

/// The parts of an answer that must agree, with the namespace written `{ns}` again.
fn normalize(code: u16, v: &Value, ns: &str) -> Value {
    let unname = |s: &str| json!(s.replace(ns, "{ns}"));
    match v["kind"].as_str() {
        Some("Table") => {
            let names: Vec<String> = v["columnDefinitions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c["name"].as_str().unwrap_or("").to_string())
                .collect();
            // Each column as name:type:format:priority; the long descriptions by a digest.
            let columns = match v["columnDefinitions"].as_array() {
                None => Value::Null,
                Some(cols) => json!({
                    "columns": cols.iter().map(|c| format!("{}:{}:{}:{}", c["name"].as_str().unwrap_or(""),
                        c["type"].as_str().unwrap_or(""), c["format"].as_str().unwrap_or(""), c["priority"])).collect::<Vec<_>>(),
                    "descriptions": fnv1a(cols.iter().map(|c| c["description"].as_str().unwrap_or(""))),
                }),
            };
            let mut rows: Vec<Value> = v["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let cells: Vec<Value> = r["cells"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .enumerate()
                        .map(|(i, c)| match c.as_str() {
                            Some(s)
                                if s != "<unknown>"
                                    && names.get(i).is_some_and(|n| AGES.contains(&n.as_str())) =>
                            {
                                json!("<age>")
                            }
                            Some(s) => unname(s),
                            None => c.clone(),
                        })
                        .collect();
                    let object = match &r["object"] {
                        Value::Null => Value::Null,
                        o => json!({"kind": o["kind"], "apiVersion": o["apiVersion"],
                            "name": unname(o["metadata"]["name"].as_str().unwrap_or(""))}),
                    };
                    json!({"cells": cells, "conditions": r["conditions"], "object": object})
                })
                .collect();
            rows.sort_by_key(|r| r["cells"].to_string());
            json!({"code": code, "kind": "Table", "apiVersion": v["apiVersion"],
                "resourceVersion": v["metadata"]["resourceVersion"].is_string(),
                "columnDefinitions": columns, "rows": rows})
        }
        Some("Status") => json!({"code": code, "kind": "Status", "reason": v["reason"],
            "message": unname(v["message"].as_str().unwrap_or(""))}),
        Some(kind) => {
            let mut names: Vec<Value> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| unname(i["metadata"]["name"].as_str().unwrap_or("")))
                .collect();
            names.sort_by_key(Value::to_string);
            json!({"code": code, "kind": kind, "names": names})
        }
        None => json!({"code": code, "body": v}),
    }
}

/// FNV-1a (64 bits) of the strings, each ended by a NUL: a digest that stays the same across
/// Rust releases.
fn fnv1a<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Every request of requests.json, normalised, by `path accept`.
fn answers(api: &Api, ns: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for r in load("requests.json", ns).as_array().unwrap() {
        let (path, kind) = (r["path"].as_str().unwrap(), r["accept"].as_str().unwrap());
        let (code, v) = api.send("GET", path, accept(kind), None);
        out.insert(
            format!("{} {kind}", path.replace(ns, "{ns}")),
            normalize(code, &v, ns),
        );
    }
    out
}

/// The differences between two sets of answers, one line each.
fn differences(want: &BTreeMap<String, Value>, got: &BTreeMap<String, Value>) -> Vec<String> {
    let mut diffs = Vec::new();
    for (k, w) in want {
        match got.get(k) {
            Some(g) if g == w => {}
            Some(g) => diffs.push(format!("{k}\n  want {w}\n  got  {g}")),
            None => diffs.push(format!("{k}: not asked")),
        }
    }
    for k in got.keys().filter(|k| !want.contains_key(*k)) {
        diffs.push(format!("{k}: not in the expected answers"));
    }
    diffs
}

#[test]
fn tables_and_field_selectors_answer_as_kube_apiserver() {
    let cp = common::ControlPlane::start();
    let ours = Api::ours(cp.port);
    let ns = "tables";
    setup(&ours, ns);
    let got = answers(&ours, ns);

    let golden_path = fixture("kube-apiserver-1.20.2.json");
    if let Ok(peer) = std::env::var("NODE_CONFORMANCE_APISERVER") {
        let (url, token) = peer
            .split_once(' ')
            .expect("NODE_CONFORMANCE_APISERVER=\"URL TOKEN\"");
        let real = Api::new(url.to_string(), Some(token.trim().to_string()));
        // A namespace of its own each run: the real one is never deleted without a controller.
        let peer_ns = format!("tables-{}", common::free_port());
        clean(&real, &peer_ns);
        setup(&real, &peer_ns);
        let theirs = answers(&real, &peer_ns);
        clean(&real, &peer_ns);
        if std::env::var("NODE_CONFORMANCE_WRITE_GOLDEN").as_deref() == Ok("1") {
            // One answer a line: a changed answer is a changed line.
            let lines: Vec<String> = theirs
                .iter()
                .map(|(k, v)| format!("{}: {v}", serde_json::to_string(k).unwrap()))
                .collect();
            std::fs::write(&golden_path, format!("{{\n{}\n}}\n", lines.join(",\n"))).unwrap();
        }
        let diffs = differences(&theirs, &got);
        assert!(
            diffs.is_empty(),
            "{} answers differ from {url}:\n{}",
            diffs.len(),
            diffs.join("\n")
        );
    }
    let golden: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(&golden_path).unwrap()).unwrap();
    let diffs = differences(&golden, &got);
    assert!(
        diffs.is_empty(),
        "{} answers differ from kube-apiserver 1.20.2's:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// Field selectors added after 1.20, which the version the control plane reports (1.31) has.
#[test]
fn later_releases_field_selectors() {
    let cp = common::ControlPlane::start();
    let api = Api::ours(cp.port);
    let json = "application/json";
    for (path, obj) in [
        (
            "/api/v1/namespaces/default/pods",
            json!({"metadata": {"name": "host"}, "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "i"}]}}),
        ),
        (
            "/api/v1/namespaces/default/pods",
            json!({"metadata": {"name": "pod"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
        ),
        (
            "/api/v1/namespaces/default/services",
            json!({"metadata": {"name": "headless"}, "spec": {"type": "ClusterIP", "clusterIP": "None"}}),
        ),
        (
            "/api/v1/namespaces/default/services",
            json!({"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "example.com"}}),
        ),
    ] {
        assert_eq!(api.send("POST", path, json, Some(&obj)).0, 201);
    }
    let names = |path: &str| {
        let (code, v) = api.send("GET", path, json, None);
        assert_eq!(code, 200, "{path}: {v}");
        normalize(code, &v, "default")["names"].clone()
    };
    assert_eq!(
        names("/api/v1/namespaces/default/pods?fieldSelector=spec.hostNetwork%3Dtrue"),
        json!(["host"])
    );
    assert_eq!(
        names("/api/v1/namespaces/default/pods?fieldSelector=spec.hostNetwork%3Dfalse"),
        json!(["pod"])
    );
    assert_eq!(
        names("/api/v1/namespaces/default/services?fieldSelector=spec.clusterIP%3DNone"),
        json!(["headless"])
    );
    assert_eq!(
        names("/api/v1/namespaces/default/services?fieldSelector=spec.type!%3DClusterIP"),
        json!(["ext"])
    );
    let (code, v) = api.send(
        "GET",
        "/api/v1/namespaces/default/services?fieldSelector=spec.ports%3D1",
        json,
        None,
    );
    assert_eq!(
        (code, v["message"].as_str()),
        (400, Some("field label not supported: spec.ports"))
    );
}

/// A watch asked for a Table streams one Table per event; only the first has the columns.
#[test]
fn watch_streams_tables() {
    let cp = common::ControlPlane::start();
    let api = Api::ours(cp.port);
    for name in ["a", "b"] {
        let cm = json!({"metadata": {"name": name}, "data": {"k": "v"}});
        api.send(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            Some(&cm),
        );
    }
    let url = format!(
        "http://127.0.0.1:{}/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1&includeObject=None",
        cp.port
    );
    let mut resp = api
        .agent
        .get(&url)
        .header("Accept", KUBECTL_TABLE)
        .call()
        .unwrap();
    let text = resp.body_mut().read_to_string().unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    assert_eq!(events[0]["type"], "ADDED");
    let first = &events[0]["object"];
    assert_eq!(first["kind"], "Table");
    assert_eq!(first["columnDefinitions"][1]["name"], "Data");
    assert_eq!(first["rows"][0]["cells"][0], "a");
    assert_eq!(first["rows"][0]["cells"][1], 1);
    assert_eq!(first["rows"][0]["object"], Value::Null);
    assert_eq!(events[1]["object"]["columnDefinitions"], Value::Null);
    assert_eq!(events[1]["object"]["rows"][0]["cells"][0], "b");

    let (code, v) = api.send(
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&includeObject=All",
        KUBECTL_TABLE,
        None,
    );
    assert_eq!(code, 400, "{v}");
}
