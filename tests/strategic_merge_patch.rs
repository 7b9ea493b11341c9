//! Strategic merge patch against a corpus (tests/fixtures/strategic-merge-patch/*.json, each
//! `{description, kind, subresource?, object, patch, expected | error, peer?}`): the library
//! must give `expected` (or the `error` status) for each.
//!
//! With NODE_CONFORMANCE_APISERVER="URL TOKEN" (a real kube-apiserver, see
//! ../shared/peers/kubernetes/apiserver.sh) every case is also sent to both servers: the object
//! is created on the real one, the same object (as the real one stored it) on ours, the patch
//! is sent to both, and the results (or error statuses) must be the same, uid,
//! resourceVersion, creationTimestamp, managedFields and generation aside. Cases with
//! `"peer": "podtemplate"` patch a pod's spec, which a real pod refuses to change: the real
//! server gets them on a PodTemplate, whose template.spec is the same PodSpec. Cases whose
//! `peer` says how 1.20 differs (upstream fixed it since) are not sent.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use node_conformance::controlplane::patch;
use node_conformance::controlplane::resources::RESOURCES;
use serde_json::{Value, json};

struct Case {
    name: String,
    c: Value,
}

fn corpus() -> Vec<Case> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/strategic-merge-patch");
    let mut cases: Vec<Case> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| Case {
            name: p.file_stem().unwrap().to_string_lossy().into_owned(),
            c: serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(cases.len() >= 30, "the corpus is there");
    cases
}

fn kind_of(c: &Value) -> &str {
    c["kind"].as_str().unwrap()
}

/// With NODE_CONFORMANCE_WRITE_CORPUS=1 each case's `expected` (or `error`) is rewritten with
/// what the library gives: for after the comparison with the real server has passed.
#[test]
fn corpus_gives_what_it_expects() {
    let write = std::env::var("NODE_CONFORMANCE_WRITE_CORPUS").as_deref() == Ok("1");
    let mut failures = Vec::new();
    for Case { name, mut c } in corpus() {
        let res = RESOURCES.iter().find(|r| r.kind == kind_of(&c)).unwrap();
        let mut obj = c["object"].clone();
        let got = patch::apply_to_kind(res.group, res.version, res.kind, &mut obj, &c["patch"]);
        if write {
            let m = c.as_object_mut().unwrap();
            match &got {
                Ok(()) => {
                    m.remove("error");
                    m.insert("expected".into(), obj.clone());
                }
                Err(e) => {
                    m.remove("expected");
                    m.insert(
                        "error".into(),
                        json!({"code": e.code, "reason": e.reason, "message": e.message}),
                    );
                }
            }
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/fixtures/strategic-merge-patch/{name}.json"));
            std::fs::write(path, serde_json::to_string_pretty(&c).unwrap() + "\n").unwrap();
            continue;
        }
        match (got, c.get("error")) {
            (Ok(()), None) => {
                if obj != c["expected"] {
                    failures.push(format!(
                        "{name}: got\n{}\nexpected\n{}",
                        serde_json::to_string_pretty(&obj).unwrap(),
                        serde_json::to_string_pretty(&c["expected"]).unwrap()
                    ));
                }
            }
            (Err(e), Some(want)) => {
                let got = json!({"code": e.code, "reason": e.reason, "message": e.message});
                if &got != want {
                    failures.push(format!("{name}: error {got}, expected {want}"));
                }
            }
            (Ok(()), Some(want)) => failures.push(format!("{name}: no error, expected {want}")),
            (Err(e), None) => failures.push(format!("{name}: error {e:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A blocking client of one server: every answer as (status, JSON body).
struct Server {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Server {
    fn new(base: &str, token: Option<&str>) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .disable_verification(true)
                    .build(),
            )
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_string(),
            token: token.map(str::to_string),
            agent,
        }
    }

    fn call(&self, method: &str, path: &str, ctype: &str, body: Option<&Value>) -> (u16, Value) {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Content-Type", ctype)
            .header("Accept", "application/json");
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
}

/// What the two servers may differ in: identity and bookkeeping; what admission and defaults
/// add to a pod (the real one here runs without the Priority admission plugin, and defaults
/// enableServiceLinks on pods only); nulls, which the real server's typed encoding writes for
/// unset times (`lastProbeTime: null`).
fn normalize(mut v: Value) -> Value {
    drop_nulls(&mut v);
    if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("priority");
        spec.remove("enableServiceLinks");
    }
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
            "selfLink",
        ] {
            m.remove(k);
        }
    }
    v
}

fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

fn outcome(code: u16, body: &Value) -> Value {
    if code < 300 {
        normalize(body.clone())
    } else {
        json!({"code": code, "reason": body.get("reason"), "message": body.get("message")})
    }
}

#[test]
fn corpus_on_the_real_server_and_ours() {
    let Ok(peer) = std::env::var("NODE_CONFORMANCE_APISERVER") else {
        eprintln!("NODE_CONFORMANCE_APISERVER is not set: skipped");
        return;
    };
    let (url, token) = peer
        .split_once(' ')
        .expect("NODE_CONFORMANCE_APISERVER=\"URL TOKEN\"");
    let real = Server::new(url, Some(token));
    let cp = common::ControlPlane::start();
    let ours = Server::new(&format!("http://127.0.0.1:{}", cp.port), None);
    let run = format!("smp-{}", std::process::id());
    for s in [&real, &ours] {
        let (code, body) = s.call(
            "POST",
            "/api/v1/namespaces",
            "application/json",
            Some(&json!({"metadata": {"name": run}})),
        );
        assert!(code == 201 || code == 409, "{code} {body}");
    }
    const JSON: &str = "application/json";
    const SMP: &str = "application/strategic-merge-patch+json";
    let mut failures = Vec::new();
    let mut compared = 0;
    for (i, Case { name, c }) in corpus().into_iter().enumerate() {
        let via = c.get("peer").and_then(Value::as_str).unwrap_or("");
        if !via.is_empty() && via != "podtemplate" {
            eprintln!("{name}: not sent to the real server: {via}");
            continue;
        }
        let res = RESOURCES.iter().find(|r| r.kind == kind_of(&c)).unwrap();
        let obj_name = format!("{}-{i}", run);
        let collection = |plural: &str, namespaced: bool| {
            let base = if res.group.is_empty() {
                "/api/v1".to_string()
            } else {
                format!("/apis/{}/{}", res.group, res.version)
            };
            if namespaced {
                format!("{base}/namespaces/{run}/{plural}")
            } else {
                format!("{base}/{plural}")
            }
        };
        let ours_path = format!("{}/{obj_name}", collection(res.plural, res.namespaced));
        let sub = c
            .get("subresource")
            .and_then(Value::as_str)
            .map(|s| format!("/{s}"))
            .unwrap_or_default();
        let mut object = c["object"].clone();
        object["metadata"]["name"] = json!(obj_name);
        let status = object.as_object_mut().unwrap().remove("status");

        // The object on the real server, as it stores it.
        let (real_path, real_object, real_patch) = if via == "podtemplate" {
            let tmpl = json!({"apiVersion": "v1", "kind": "PodTemplate",
                "metadata": {"name": obj_name},
                "template": {"metadata": {"labels": {"app": "a"}}, "spec": object["spec"]}});
            (
                format!("{}/{obj_name}", collection("podtemplates", true)),
                tmpl,
                json!({"template": {"spec": c["patch"]["spec"]}}),
            )
        } else {
            (ours_path.clone(), object.clone(), c["patch"].clone())
        };
        let real_collection = real_path.rsplit_once('/').unwrap().0.to_string();
        let (code, created) = real.call("POST", &real_collection, JSON, Some(&real_object));
        assert_eq!(code, 201, "{name}: create on the real server: {created}");
        let mut before = created;
        if let Some(st) = &status {
            let mut with = before.clone();
            with["status"] = st.clone();
            let (code, b) = real.call("PUT", &format!("{real_path}/status"), JSON, Some(&with));
            assert_eq!(code, 200, "{name}: status on the real server: {b}");
            before = b;
        }
        // The same object on ours.
        let mut mine = normalize(if via == "podtemplate" {
            let mut p = object.clone();
            p["spec"] = before["template"]["spec"].clone();
            p
        } else {
            before.clone()
        });
        let mine_status = mine.as_object_mut().unwrap().remove("status");
        let (code, b) = ours.call(
            "POST",
            &collection(res.plural, res.namespaced),
            JSON,
            Some(&mine),
        );
        assert_eq!(code, 201, "{name}: create on ours: {b}");
        if let Some(st) = mine_status {
            let mut with = b.clone();
            with["status"] = st;
            let (code, b) = ours.call("PUT", &format!("{ours_path}/status"), JSON, Some(&with));
            assert_eq!(code, 200, "{name}: status on ours: {b}");
        }

        let (rc, rb) = real.call(
            "PATCH",
            &format!("{real_path}{sub}"),
            SMP,
            Some(&real_patch),
        );
        // A real pod refuses most spec changes (validation, checked elsewhere): for the cases
        // the real server gets on a PodTemplate, the patch is applied to our stored pod by the
        // control plane's patcher itself.
        let (oc, ob) = if via == "podtemplate" {
            let (_, mut stored) = ours.call("GET", &ours_path, JSON, None);
            match node_conformance::controlplane::patch::apply_to_kind(
                res.group,
                res.version,
                res.kind,
                &mut stored,
                &c["patch"],
            ) {
                Ok(()) => (200, stored),
                Err(e) => (e.code, e.status()),
            }
        } else {
            ours.call(
                "PATCH",
                &format!("{ours_path}{sub}"),
                SMP,
                Some(&c["patch"]),
            )
        };
        let (r, o) = if via == "podtemplate" && rc < 300 && oc < 300 {
            let spec = |v: &Value| normalize(json!({"spec": v}))["spec"].take();
            (spec(&rb["template"]["spec"]), spec(&ob["spec"]))
        } else {
            (outcome(rc, &rb), outcome(oc, &ob))
        };
        // Nothing is left on the real server: other tests list its cluster-scoped objects.
        real.call("DELETE", &real_path, JSON, None);
        compared += 1;
        if r != o {
            failures.push(format!(
                "{name}: the real server gave\n{}\nours gave\n{}",
                serde_json::to_string_pretty(&r).unwrap(),
                serde_json::to_string_pretty(&o).unwrap()
            ));
        }
    }
    eprintln!("{compared} cases compared with the real server");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
