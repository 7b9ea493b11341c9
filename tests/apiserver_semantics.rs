//! The local control plane's watch, dry run and namespace lifecycle, against what
//! kube-apiserver answers (1.20.2, the peer in ../shared/peers, and upstream's current
//! WatchList contract where 1.20 predates it). With NODE_CONFORMANCE_APISERVER="URL TOKEN"
//! set, `the_same_requests_get_the_same_answers_as_kube_apiserver` also sends each request to
//! that real server and compares the answers.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// A server to talk to: ours, or the real one.
struct Api {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Api {
    fn ours(cp: &common::ControlPlane) -> Self {
        Self {
            base: format!("http://127.0.0.1:{}", cp.port),
            token: None,
            agent: agent(),
        }
    }

    /// The real kube-apiserver of NODE_CONFORMANCE_APISERVER, when set.
    fn peer() -> Option<Self> {
        let spec = std::env::var("NODE_CONFORMANCE_APISERVER").ok()?;
        let (url, token) = spec.trim().split_once(' ')?;
        let tls = ureq::tls::TlsConfig::builder()
            .disable_verification(true)
            .build();
        Some(Self {
            base: url.trim_end_matches('/').to_string(),
            token: Some(token.trim().to_string()),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .tls_config(tls)
                .build()
                .into(),
        })
    }

    fn call(&self, method: &str, path: &str, ctype: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if body.is_some() {
            req = req.header("Content-Type", ctype);
        }
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let req = req
            .body(body.map(Value::to_string).unwrap_or_default())
            .unwrap();
        let mut resp = self.agent.run(req).unwrap();
        let code = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, JSON, None)
    }
    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, JSON, Some(&body))
    }
    fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, JSON, Some(&body))
    }
    fn patch(&self, path: &str, ctype: &str, body: Value) -> (u16, Value) {
        self.call("PATCH", path, ctype, Some(&body))
    }
    fn delete(&self, path: &str) -> (u16, Value) {
        self.call("DELETE", path, JSON, None)
    }
    fn delete_with(&self, path: &str, options: Value) -> (u16, Value) {
        self.call("DELETE", path, JSON, Some(&options))
    }

    /// The store's current resourceVersion, as a list reports it.
    fn rv(&self) -> u64 {
        self.get("/api/v1/namespaces").1["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

fn rv_of(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap()
}

/// A watch's events, read from a raw connection until `count` arrived or the stream ended.
struct Watch {
    reader: BufReader<TcpStream>,
    status: u16,
}

impl Watch {
    fn open(port: u16, path: &str) -> Self {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        let status = first
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Self { reader, status }
    }

    fn events(&mut self, count: usize) -> Vec<Value> {
        let mut events = Vec::new();
        let mut line = String::new();
        while events.len() < count {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            // Chunk sizes and headers are not JSON objects; events and Statuses are.
            if let Ok(v) = serde_json::from_str::<Value>(line.trim())
                && v.is_object()
            {
                events.push(v);
            }
        }
        events
    }
}

/// (type, name, resourceVersion, label app) of each event.
fn summary(events: &[Value]) -> Vec<(String, String, u64, String)> {
    events
        .iter()
        .map(|e| {
            let o = &e["object"];
            (
                e["type"].as_str().unwrap_or("").to_string(),
                o["metadata"]["name"].as_str().unwrap_or("").to_string(),
                rv_of(o),
                o["metadata"]["labels"]["app"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn a_dry_run_answers_as_the_write_would_and_keeps_nothing() {
    let cp = common::ControlPlane::start();
    let api = Api::ours(&cp);
    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, cm) = api.post(
        cms,
        json!({"metadata": {"name": "c", "labels": {"app": "a"}}, "data": {"x": "1"}}),
    );
    assert_eq!(code, 201, "{cm}");
    let pods = "/api/v1/namespaces/default/pods";
    let (code, pod) = api.post(
        pods,
        json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i:1"}]}}),
    );
    assert_eq!(code, 201, "{pod}");
    let before = api.rv();
    let mut watch = Watch::open(
        cp.port,
        &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={before}"),
    );
    let mut pod_watch = Watch::open(
        cp.port,
        &format!("/api/v1/namespaces/default/pods?watch=true&resourceVersion={before}"),
    );

    // Create: the object as it would be stored, with a uid and no resourceVersion.
    let (code, dry) = api.post(
        &format!("{cms}?dryRun=All"),
        json!({"metadata": {"generateName": "g-"}}),
    );
    assert_eq!(code, 201, "{dry}");
    assert!(dry["metadata"]["name"].as_str().unwrap().starts_with("g-"));
    assert!(dry["metadata"]["uid"].is_string());
    assert!(dry["metadata"].get("resourceVersion").is_none(), "{dry}");
    // Every check of the write runs: a name taken is 409, as it would be.
    let (code, st) = api.post(
        &format!("{cms}?dryRun=All"),
        json!({"metadata": {"name": "c"}}),
    );
    assert_eq!((code, st["reason"].as_str()), (409, Some("AlreadyExists")));
    // Namespace admission too.
    let (code, _) = api.post(
        "/api/v1/namespaces/nowhere/configmaps?dryRun=All",
        json!({"metadata": {"name": "c"}}),
    );
    assert_eq!(code, 404);

    // Update and every patch type: the changed object, at the version it has now.
    let cm_path = format!("{cms}/c");
    let (code, put) = api.put(
        &format!("{cm_path}?dryRun=All"),
        json!({"metadata": {"name": "c", "resourceVersion": cm["metadata"]["resourceVersion"]}, "data": {"x": "2"}}),
    );
    assert_eq!((code, put["data"]["x"].as_str()), (200, Some("2")));
    assert_eq!(rv_of(&put), rv_of(&cm));
    let (code, _) = api.put(
        &format!("{cm_path}?dryRun=All"),
        json!({"metadata": {"name": "c", "resourceVersion": "1"}, "data": {"x": "2"}}),
    );
    assert_eq!(
        code, 409,
        "a stale resourceVersion is a conflict, dry or not"
    );
    for (ctype, body) in [
        (MERGE, json!({"data": {"y": "3"}})),
        (
            "application/strategic-merge-patch+json",
            json!({"data": {"y": "3"}}),
        ),
        (
            "application/json-patch+json",
            json!([{"op": "add", "path": "/data/y", "value": "3"}]),
        ),
    ] {
        let (code, patched) = api.patch(&format!("{cm_path}?dryRun=All"), ctype, body);
        assert_eq!(
            (code, patched["data"]["y"].as_str()),
            (200, Some("3")),
            "{ctype}"
        );
        assert_eq!(rv_of(&patched), rv_of(&cm));
    }
    let (code, patched) = api.patch(
        &format!("{pods}/p/status?dryRun=All"),
        "application/strategic-merge-patch+json",
        json!({"status": {"phase": "Running"}}),
    );
    assert_eq!(
        (code, patched["status"]["phase"].as_str()),
        (200, Some("Running"))
    );

    // Delete: a configmap answers a Success Status; a pod on a node is marked, not removed.
    let (code, st) = api.delete(&format!("{cm_path}?dryRun=All"));
    assert_eq!(
        (code, st["status"].as_str()),
        (200, Some("Success")),
        "{st}"
    );
    assert_eq!(st["details"]["uid"], cm["metadata"]["uid"]);
    let (code, marked) = api.delete(&format!("{pods}/p?dryRun=All"));
    assert_eq!(code, 200, "{marked}");
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(rv_of(&marked), rv_of(&pod));
    let (code, zero) = api.delete(&format!("{pods}/p?dryRun=All&gracePeriodSeconds=0"));
    assert_eq!(
        (
            code,
            zero["metadata"]["deletionGracePeriodSeconds"].as_i64()
        ),
        (200, Some(0))
    );
    // In the body too.
    let (code, _) = api.delete_with(&cm_path, json!({"dryRun": ["All"]}));
    assert_eq!(code, 200);
    // A namespace.
    let (code, ns) = api.delete("/api/v1/namespaces/kube-public?dryRun=All");
    assert_eq!(code, 403, "{ns}");

    // An unknown value is kube-apiserver's 422 on the options.
    let (code, st) = api.post(
        &format!("{cms}?dryRun=Some"),
        json!({"metadata": {"name": "d"}}),
    );
    assert_eq!(code, 422);
    assert_eq!(
        st["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Some\"}: supported values: \"All\""
    );
    for (method, path, kind) in [
        ("PUT", cm_path.clone(), "UpdateOptions"),
        ("PATCH", cm_path.clone(), "PatchOptions"),
        ("DELETE", cm_path.clone(), "DeleteOptions"),
    ] {
        let ctype = if method == "PATCH" { MERGE } else { JSON };
        let body = (method != "DELETE").then(|| json!({"metadata": {"name": "c"}}));
        let (code, st) = api.call(
            method,
            &format!("{path}?dryRun=All&dryRun=x"),
            ctype,
            body.as_ref(),
        );
        assert_eq!(
            (code, st["details"]["kind"].as_str()),
            (422, Some(kind)),
            "{method}"
        );
    }

    // Nothing was kept: the same objects, the same version, and no event.
    assert_eq!(api.rv(), before);
    assert_eq!(api.get(&cm_path).1, cm);
    assert_eq!(api.get(&format!("{pods}/p")).1, pod);
    let (code, real) = api.patch(&cm_path, MERGE, json!({"data": {"z": "1"}}));
    assert_eq!(code, 200);
    assert_eq!(rv_of(&real), before + 1);
    let seen = watch.events(1);
    assert_eq!(
        summary(&seen),
        [("MODIFIED".into(), "c".into(), before + 1, "a".into())]
    );
    api.delete(&format!("{pods}/p?gracePeriodSeconds=0"));
    let seen = summary(&pod_watch.events(2));
    assert_eq!(
        seen.iter().map(|e| (e.0.as_str(), e.2)).collect::<Vec<_>>(),
        [("MODIFIED", before + 2), ("DELETED", before + 3)],
        "the real delete of a pod marks it, then removes it"
    );
}

#[test]
fn a_selector_watch_sees_objects_start_and_stop_matching() {
    let cp = common::ControlPlane::start();
    let api = Api::ours(&cp);
    let cms = "/api/v1/namespaces/default/configmaps";
    let from = api.rv();
    let mut by_label = Watch::open(
        cp.port,
        &format!("{cms}?watch=true&resourceVersion={from}&labelSelector=app%3Da"),
    );
    let mut by_name = Watch::open(
        cp.port,
        &format!("{cms}?watch=true&resourceVersion={from}&fieldSelector=metadata.name%3Dw"),
    );
    let relabel = |app: &str| {
        api.patch(
            &format!("{cms}/w"),
            MERGE,
            json!({"metadata": {"labels": {"app": app}}}),
        )
    };
    api.post(
        cms,
        json!({"metadata": {"name": "w", "labels": {"app": "a"}}}),
    );
    relabel("b");
    relabel("a");
    api.patch(&format!("{cms}/w"), MERGE, json!({"data": {"k": "v"}}));
    relabel("b");
    api.delete(&format!("{cms}/w"));
    api.post(
        cms,
        json!({"metadata": {"name": "w", "labels": {"app": "a"}}}),
    );
    api.delete(&format!("{cms}/w"));
    let e =
        |t: &str, n: u64, app: &str| (t.to_string(), "w".to_string(), from + n, app.to_string());
    // As kube-apiserver 1.20.2 answered the same writes: a change that makes the object stop
    // matching is DELETED, with the object as it last matched, at the version of the change.
    assert_eq!(
        summary(&by_label.events(7)),
        [
            e("ADDED", 1, "a"),
            e("DELETED", 2, "a"),
            e("ADDED", 3, "a"),
            e("MODIFIED", 4, "a"),
            e("DELETED", 5, "a"),
            e("ADDED", 7, "a"),
            e("DELETED", 8, "a"),
        ]
    );
    assert_eq!(
        summary(&by_name.events(8)),
        [
            e("ADDED", 1, "a"),
            e("MODIFIED", 2, "b"),
            e("MODIFIED", 3, "a"),
            e("MODIFIED", 4, "a"),
            e("MODIFIED", 5, "b"),
            e("DELETED", 6, "b"),
            e("ADDED", 7, "a"),
            e("DELETED", 8, "a"),
        ]
    );
}

#[test]
fn a_watch_list_sends_the_objects_then_the_initial_events_end_bookmark() {
    let cp = common::ControlPlane::start();
    let api = Api::ours(&cp);
    let cms = "/api/v1/namespaces/default/configmaps";
    for (name, app) in [("a1", "a"), ("b1", "b"), ("a2", "a")] {
        api.post(
            cms,
            json!({"metadata": {"name": name, "labels": {"app": app}}}),
        );
    }
    let at = api.rv();
    let list = "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan";
    let mut w = Watch::open(
        cp.port,
        &format!("{cms}?{list}&allowWatchBookmarks=true&labelSelector=app%3Da"),
    );
    assert_eq!(w.status, 200);
    let initial = w.events(3);
    assert_eq!(
        summary(&initial[..2])
            .iter()
            .map(|e| (e.0.as_str(), e.1.as_str()))
            .collect::<Vec<_>>(),
        [("ADDED", "a1"), ("ADDED", "a2")]
    );
    let bookmark = &initial[2];
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(bookmark["object"]["kind"], "ConfigMap");
    assert_eq!(
        bookmark["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(rv_of(&bookmark["object"]), at);
    // Then the changes after it.
    api.post(
        cms,
        json!({"metadata": {"name": "a3", "labels": {"app": "a"}}}),
    );
    assert_eq!(
        summary(&w.events(1)),
        [("ADDED".into(), "a3".into(), at + 1, "a".into())]
    );
    // From a version: the state at least as new; without bookmarks, none is sent.
    let mut w = Watch::open(
        cp.port,
        &format!("{cms}?{list}&resourceVersion={at}&timeoutSeconds=1"),
    );
    let names: Vec<String> = summary(&w.events(10)).into_iter().map(|e| e.1).collect();
    assert_eq!(names, ["a1", "a2", "a3", "b1"]);
    // sendInitialEvents=false: no initial events, the changes after the version.
    let mut w = Watch::open(
        cp.port,
        &format!(
            "{cms}?watch=1&sendInitialEvents=false&resourceVersionMatch=NotOlderThan&resourceVersion={at}&timeoutSeconds=1"
        ),
    );
    assert_eq!(
        summary(&w.events(10)),
        [("ADDED".into(), "a3".into(), at + 1, "a".into())]
    );

    // The options kube-apiserver refuses (upstream's ValidateListOptions).
    let (code, st) = api.get(&format!("{cms}?watch=1&sendInitialEvents=true"));
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["details"]["causes"][0],
        json!({"reason": "FieldValueForbidden", "field": "resourceVersionMatch",
            "message": "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"})
    );
    let (code, st) = api.get(&format!(
        "{cms}?watch=1&sendInitialEvents=true&resourceVersionMatch=Exact"
    ));
    assert_eq!(code, 422);
    assert_eq!(st["details"]["causes"].as_array().map(Vec::len), Some(2));
    let (code, st) = api.get(&format!("{cms}?watch=1&resourceVersionMatch=NotOlderThan"));
    assert_eq!(code, 422);
    assert_eq!(
        st["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
    );
    let (code, st) = api.get(&format!("{cms}?sendInitialEvents=true"));
    assert_eq!(code, 422);
    assert_eq!(
        st["details"]["causes"][0]["message"],
        "Forbidden: sendInitialEvents is forbidden for list"
    );
}

#[test]
fn versions_ahead_of_the_store_and_from_before_it() {
    let cp = common::ControlPlane::start();
    let api = Api::ours(&cp);
    let cms = "/api/v1/namespaces/default/configmaps";
    let now = api.rv();
    // A list waits for a version ahead (3 s), then answers what kube-apiserver answers.
    let begin = Instant::now();
    let (code, st) = api.get(&format!("{cms}?resourceVersion={}", now + 10));
    assert!(begin.elapsed() >= Duration::from_millis(2900));
    assert_eq!(code, 504, "{st}");
    assert_eq!(st["reason"], "Timeout");
    assert_eq!(
        st["message"],
        format!(
            "Timeout: Too large resource version: {}, current: {now}",
            now + 10
        )
    );
    assert_eq!(
        st["details"],
        json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1})
    );
    // A version reached while waiting is served.
    let waiting = {
        let base = api.base.clone();
        std::thread::spawn(move || {
            let api = Api {
                base,
                token: None,
                agent: agent(),
            };
            api.get(&format!(
                "/api/v1/namespaces/default/configmaps?resourceVersion={}",
                now + 1
            ))
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    api.post(cms, json!({"metadata": {"name": "late"}}));
    let (code, list) = waiting.join().unwrap();
    assert_eq!(
        (code, list["items"][0]["metadata"]["name"].as_str()),
        (200, Some("late"))
    );

    // A legacy watch from a version ahead is accepted and skips everything up to it, as
    // kube-apiserver 1.20.2 does.
    let now = api.rv();
    let mut w = Watch::open(
        cp.port,
        &format!("{cms}?watch=1&resourceVersion={}&timeoutSeconds=2", now + 2),
    );
    for name in ["s1", "s2", "s3"] {
        api.post(cms, json!({"metadata": {"name": name}}));
    }
    assert_eq!(
        summary(&w.events(5)),
        [("ADDED".into(), "s3".into(), now + 3, String::new())]
    );
    // A watch list from a version ahead ends with the same error, as its one ERROR event.
    let now = api.rv();
    let begin = Instant::now();
    let mut w = Watch::open(
        cp.port,
        &format!(
            "{cms}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion={}",
            now + 5
        ),
    );
    let events = w.events(5);
    assert!(begin.elapsed() >= Duration::from_millis(2900));
    assert_eq!(w.status, 200);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 504);
    assert_eq!(
        events[0]["object"]["details"]["causes"][0]["reason"],
        "ResourceVersionTooLarge"
    );

    // A version from before this control plane (a kubelet that outlived an earlier one) is
    // older than anything here: the watch's one event is 410 Expired and the client lists
    // again, as after a kube-apiserver restart.
    let mut w = Watch::open(cp.port, &format!("{cms}?watch=1&resourceVersion=5"));
    let events = w.events(5);
    assert_eq!(w.status, 200);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["reason"], "Expired");
    assert_eq!(events[0]["object"]["code"], 410);
    let (code, list) = api.get(&format!("{cms}?resourceVersion=5"));
    assert_eq!(code, 200);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(4));
}

#[test]
fn numbers_from_clients_are_checked_not_overflowed() {
    let cp = common::ControlPlane::start();
    let api = Api::ours(&cp);
    let cms = "/api/v1/namespaces/default/configmaps";
    for (query, code, message) in [
        (
            "?watch=1&timeoutSeconds=abc",
            400,
            "strconv.ParseInt: parsing \"abc\": invalid syntax",
        ),
        (
            "?watch=1&timeoutSeconds=18446744073709551616",
            400,
            "strconv.ParseInt: parsing \"18446744073709551616\": value out of range",
        ),
        (
            "?limit=99999999999999999999",
            400,
            "strconv.ParseInt: parsing \"99999999999999999999\": value out of range",
        ),
        (
            "?resourceVersion=18446744073709551616",
            500,
            "resourceVersion: Invalid value: \"18446744073709551616\": strconv.ParseUint: parsing \"18446744073709551616\": value out of range",
        ),
        (
            "?watch=1&resourceVersion=-1",
            500,
            "resourceVersion: Invalid value: \"-1\": strconv.ParseUint: parsing \"-1\": invalid syntax",
        ),
    ] {
        let (got, st) = api.get(&format!("{cms}{query}"));
        assert_eq!(
            (got, st["message"].as_str()),
            (code, Some(message)),
            "{query}"
        );
    }
    // The largest timeouts are held, not overflowed; a negative one ends the watch at once.
    let mut w = Watch::open(
        cp.port,
        &format!("{cms}?watch=1&timeoutSeconds=9223372036854775807"),
    );
    assert_eq!(w.status, 200);
    api.post(cms, json!({"metadata": {"name": "t"}}));
    assert_eq!(summary(&w.events(1))[0].1, "t");
    let begin = Instant::now();
    let mut w = Watch::open(
        cp.port,
        &format!(
            "{cms}?watch=1&resourceVersion={}&timeoutSeconds=-5",
            api.rv()
        ),
    );
    assert!(w.events(1).is_empty());
    assert!(begin.elapsed() < Duration::from_secs(5));
    // The largest grace period is a timestamp at the end of what one can hold.
    let pods = "/api/v1/namespaces/default/pods";
    api.post(
        pods,
        json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i:1"}]}}),
    );
    let (code, marked) = api.delete(&format!("{pods}/p?gracePeriodSeconds=9223372036854775807"));
    assert_eq!(code, 200, "{marked}");
    assert_eq!(
        marked["metadata"]["deletionTimestamp"],
        "9999-12-31T23:59:59Z"
    );
    assert_eq!(
        marked["metadata"]["deletionGracePeriodSeconds"],
        json!(9_223_372_036_854_775_807_i64)
    );
    let (code, st) = api.delete(&format!("{pods}/p?gracePeriodSeconds=9223372036854775808"));
    assert_eq!((code, st["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(api.get("/healthz").0, 200);
}

#[test]
fn a_deleted_namespace_terminates_empties_and_goes() {
    let cp = common::ControlPlane::start();
    let api = Api::ours(&cp);
    // A namespace that does not exist takes nothing (NamespaceLifecycle).
    let (code, st) = api.post(
        "/apis/coordination.k8s.io/v1/namespaces/gone/leases",
        json!({"metadata": {"name": "l"}, "spec": {}}),
    );
    assert_eq!(code, 404);
    assert_eq!(
        (st["message"].as_str(), &st["details"]),
        (
            Some("namespaces \"gone\" not found"),
            &json!({"name": "gone", "kind": "namespaces"})
        )
    );
    // A new namespace is Active with the kubernetes finalizer, whatever the client sent.
    let (code, ns) = api.post(
        "/api/v1/namespaces",
        json!({"metadata": {"name": "t"}, "status": {"phase": "Terminating"}}),
    );
    assert_eq!(code, 201);
    assert_eq!(ns["spec"], json!({"finalizers": ["kubernetes"]}));
    assert_eq!(ns["status"], json!({"phase": "Active"}));
    api.post(
        "/api/v1/namespaces/t/configmaps",
        json!({"metadata": {"name": "c"}}),
    );
    api.post(
        "/api/v1/namespaces/t/pods",
        json!({"metadata": {"name": "on-node"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i:1"}]}}),
    );
    api.post(
        "/api/v1/namespaces/t/pods",
        json!({"metadata": {"name": "unscheduled"}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}),
    );
    // A dry run changes nothing.
    let (code, dry) = api.delete("/api/v1/namespaces/t?dryRun=All");
    assert_eq!(
        (code, dry["status"]["phase"].as_str()),
        (200, Some("Terminating"))
    );
    assert_eq!(
        api.get("/api/v1/namespaces/t").1["status"]["phase"],
        "Active"
    );
    assert_eq!(api.get("/api/v1/namespaces/t/configmaps/c").0, 200);

    let mut watch = Watch::open(
        cp.port,
        &format!(
            "/api/v1/namespaces?watch=1&resourceVersion={}&fieldSelector=metadata.name%3Dt",
            api.rv()
        ),
    );
    let (code, deleted) = api.delete("/api/v1/namespaces/t");
    assert_eq!(code, 200, "{deleted}");
    assert_eq!(deleted["status"]["phase"], "Terminating");
    assert!(deleted["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(deleted["spec"]["finalizers"], json!(["kubernetes"]));
    // Nothing new goes in, as kube-apiserver words it.
    let (code, st) = api.post(
        "/api/v1/namespaces/t/configmaps",
        json!({"metadata": {"generateName": "x-"}}),
    );
    assert_eq!(code, 403, "{st}");
    assert_eq!(
        st["message"],
        "configmaps \"x-\" is forbidden: unable to create new content in namespace t because it is being terminated"
    );
    assert_eq!(
        st["details"],
        json!({"name": "x-", "kind": "configmaps", "causes": [{"reason": "NamespaceTerminating",
            "message": "namespace t is being terminated", "field": "metadata.namespace"}]})
    );
    // The content goes as the namespace controller removes it: the pod on a node waits for
    // its kubelet, marked.
    assert_eq!(api.get("/api/v1/namespaces/t/configmaps/c").0, 404);
    assert_eq!(api.get("/api/v1/namespaces/t/pods/unscheduled").0, 404);
    let (code, pod) = api.get("/api/v1/namespaces/t/pods/on-node");
    assert_eq!(code, 200);
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30);
    let (code, again) = api.delete("/api/v1/namespaces/t");
    assert_eq!(
        (code, again["status"]["phase"].as_str()),
        (200, Some("Terminating"))
    );
    // An update keeps the finalizers, and the phase must match the deletion.
    let (code, kept) = api.patch(
        "/api/v1/namespaces/t",
        MERGE,
        json!({"spec": {"finalizers": []}, "metadata": {"labels": {"x": "y"}}}),
    );
    assert_eq!(
        (code, &kept["spec"]["finalizers"]),
        (200, &json!(["kubernetes"]))
    );
    let (code, st) = api.patch(
        "/api/v1/namespaces/t/status",
        MERGE,
        json!({"status": {"phase": "Active"}}),
    );
    assert_eq!(code, 422, "{st}");
    // The kubelet's final delete of the pod finishes the namespace.
    let (code, _) = api.delete("/api/v1/namespaces/t/pods/on-node?gracePeriodSeconds=0");
    assert_eq!(code, 200);
    assert_eq!(api.get("/api/v1/namespaces/t").0, 404);
    let kinds: Vec<String> = summary(&watch.events(3)).into_iter().map(|e| e.0).collect();
    assert_eq!(kinds, ["MODIFIED", "MODIFIED", "DELETED"]);

    // A finalizer of someone else's keeps the namespace, Terminating, once it is empty.
    api.post(
        "/api/v1/namespaces",
        json!({"metadata": {"name": "held"}, "spec": {"finalizers": ["example.com/hold"]}}),
    );
    api.delete("/api/v1/namespaces/held");
    let (code, held) = api.get("/api/v1/namespaces/held");
    assert_eq!(code, 200);
    assert_eq!(held["spec"]["finalizers"], json!(["example.com/hold"]));
    assert_eq!(held["status"]["phase"], "Terminating");
    // The system namespaces stay.
    let (code, st) = api.delete("/api/v1/namespaces/kube-system");
    assert_eq!(
        (code, st["message"].as_str()),
        (
            403,
            Some("namespaces \"kube-system\" is forbidden: this namespace may not be deleted")
        )
    );
}

/// Sends the same requests to our control plane and to kube-apiserver; their answers must
/// be the same but for what differs by nature (uids, times, versions: compared relative to
/// each server's version before the run). Runs only with NODE_CONFORMANCE_APISERVER set.
#[test]
fn the_same_requests_get_the_same_answers_as_kube_apiserver() {
    let Some(peer) = Api::peer() else {
        eprintln!("skipped: NODE_CONFORMANCE_APISERVER is not set");
        return;
    };
    let cp = common::ControlPlane::start();
    let ours = Api::ours(&cp);
    let run = format!("sem-{}", std::process::id());
    let ns = format!("/api/v1/namespaces/{run}");
    let cms = format!("{ns}/configmaps");
    let pods = format!("{ns}/pods");
    let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i:1"}]}});
    let steps: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            cms.clone(),
            Some(json!({"metadata": {"name": "c"}})),
        ),
        (
            "POST",
            "/api/v1/namespaces?dryRun=All".into(),
            Some(json!({"metadata": {"name": run}})),
        ),
        (
            "POST",
            "/api/v1/namespaces".into(),
            Some(json!({"metadata": {"name": run}})),
        ),
        (
            "POST",
            format!("{cms}?dryRun=All"),
            Some(json!({"metadata": {"name": "c"}})),
        ),
        (
            "POST",
            format!("{cms}?dryRun=Foo"),
            Some(json!({"metadata": {"name": "c"}})),
        ),
        (
            "POST",
            cms.clone(),
            Some(json!({"metadata": {"name": "c", "labels": {"app": "a"}}, "data": {"x": "1"}})),
        ),
        (
            "POST",
            format!("{cms}?dryRun=All"),
            Some(json!({"metadata": {"name": "c"}})),
        ),
        (
            "PUT",
            format!("{cms}/c?dryRun=All"),
            Some(json!({"metadata": {"name": "c"}, "data": {"x": "2"}})),
        ),
        (
            "PUT",
            format!("{cms}/c?dryRun=All"),
            Some(json!({"metadata": {"name": "c", "resourceVersion": "1"}})),
        ),
        (
            "PATCH",
            format!("{cms}/c?dryRun=All"),
            Some(json!({"data": {"y": "1"}})),
        ),
        (
            "PATCH",
            format!("{cms}/c?dryRun=All&dryRun=x"),
            Some(json!({"data": {"y": "1"}})),
        ),
        ("GET", format!("{cms}/c"), None),
        ("DELETE", format!("{cms}/c?dryRun=All"), None),
        ("DELETE", format!("{cms}/c?dryRun=Foo"), None),
        (
            "DELETE",
            format!("{cms}/c"),
            Some(json!({"preconditions": {"uid": "nope"}})),
        ),
        ("POST", pods.clone(), Some(pod)),
        ("DELETE", format!("{pods}/p?dryRun=All"), None),
        (
            "DELETE",
            format!("{pods}/p?dryRun=All&gracePeriodSeconds=0"),
            None,
        ),
        ("DELETE", format!("{pods}/p?gracePeriodSeconds=abc"), None),
        ("DELETE", format!("{pods}/p"), None),
        ("DELETE", format!("{pods}/p"), None),
        ("DELETE", format!("{ns}?dryRun=All"), None),
        (
            "DELETE",
            ns.clone(),
            Some(json!({"preconditions": {"uid": "nope"}})),
        ),
        ("DELETE", ns.clone(), None),
        (
            "POST",
            cms.clone(),
            Some(json!({"metadata": {"name": "d"}})),
        ),
        (
            "POST",
            format!("{cms}?dryRun=All"),
            Some(json!({"metadata": {"generateName": "g-"}})),
        ),
        (
            "POST",
            "/api/v1/namespaces/nowhere/configmaps".into(),
            Some(json!({"metadata": {"name": "c"}})),
        ),
        (
            "DELETE",
            "/api/v1/namespaces/kube-system?dryRun=All".into(),
            None,
        ),
        ("GET", format!("{cms}?resourceVersion=abc"), None),
        (
            "GET",
            format!("{cms}?watch=1&timeoutSeconds=99999999999999999999"),
            None,
        ),
        ("GET", format!("{cms}?resourceVersionMatch=Exact"), None),
        (
            "GET",
            format!("{cms}?resourceVersionMatch=Foo&resourceVersion=5"),
            None,
        ),
    ];
    let volatile = [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "managedFields",
    ];
    fn clean(v: &Value, base: u64, volatile: &[&str]) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| !volatile.contains(&k.as_str()))
                    // Pod defaults are not what this compares.
                    .filter(|(k, _)| !["resources", "priority", "qosClass"].contains(&k.as_str()))
                    .map(|(k, x)| {
                        let x = match (k.as_str(), x.as_str().and_then(|s| s.parse::<u64>().ok())) {
                            ("resourceVersion", Some(n)) => json!(n as i128 - base as i128),
                            _ => clean(x, base, volatile),
                        };
                        (k.clone(), x)
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(|x| clean(x, base, volatile)).collect()),
            Value::String(s) => {
                // Uids and versions inside messages.
                let mut out = String::new();
                for word in s.split_inclusive([' ', '(', ')']) {
                    let core = word.trim_end_matches([' ', '(', ')', '.', ',']);
                    if core.len() == 36 && core.matches('-').count() == 4 {
                        out.push_str(&word.replacen(core, "<uid>", 1));
                    } else if !core.is_empty()
                        && core.bytes().all(|b| b.is_ascii_digit())
                        && core.len() > 2
                    {
                        out.push_str(&word.replacen(core, "<n>", 1));
                    } else {
                        out.push_str(word);
                    }
                }
                Value::String(out)
            }
            other => other.clone(),
        }
    }
    // Versions are compared relative to the namespace's creation on each server: the real
    // one writes on its own now and then (leases, endpoints), so its global version moves.
    let (mut base_peer, mut base_ours) = (0, 0);
    let mut differ = Vec::new();
    for (method, path, body) in &steps {
        let ctype = if *method == "PATCH" { MERGE } else { JSON };
        let (pc, pb) = peer.call(method, path, ctype, body.as_ref());
        let (oc, ob) = ours.call(method, path, ctype, body.as_ref());
        if *method == "POST" && path == "/api/v1/namespaces" {
            (base_peer, base_ours) = (rv_of(&pb) - 1, rv_of(&ob) - 1);
        }
        let (pb, ob) = (
            clean(&pb, base_peer, &volatile),
            clean(&ob, base_ours, &volatile),
        );
        if (pc, &pb) != (oc, &ob) {
            differ.push(format!(
                "{method} {path}\n  kube-apiserver: {pc} {pb}\n  ours: {oc} {ob}"
            ));
        }
    }
    // Leave the peer as it was, as far as it lets us (it runs no namespace controller).
    peer.delete(&format!("{pods}/p?gracePeriodSeconds=0"));
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
