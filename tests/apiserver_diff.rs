//! The local control plane against a real kube-apiserver, request by request.
//!
//! Every sequence in tests/apiserver/corpus is replayed against both servers: the local control
//! plane (`node-conformance control-plane`) and the kube-apiserver named by
//! `NODE_CONFORMANCE_APISERVER="URL TOKEN"` (../shared/peers/kubernetes/apiserver.sh start
//! prints exactly that). Each answer is normalized (tests/apiserver/ignored.yaml lists what may
//! differ and why) and compared: status code, the Status reason and causes, the returned object,
//! the events of a watch. Differences that are right on our side are recorded with the upstream
//! change that justifies them in tests/apiserver/justified.yaml. The test prints
//! `N requests, D differences` and fails unless D is 0.
//!
//! Without the peer the test says so and passes, unless `NODE_CONFORMANCE_REQUIRE_APISERVER=1`
//! (CI), where a missing peer fails.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// One request of a sequence: exactly one method key with the path as its value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    #[serde(rename = "GET")]
    get: Option<String>,
    #[serde(rename = "POST")]
    post: Option<String>,
    #[serde(rename = "PUT")]
    put: Option<String>,
    #[serde(rename = "PATCH")]
    patch: Option<String>,
    #[serde(rename = "DELETE")]
    delete: Option<String>,
    /// A watch: GET with `watch=true&timeoutSeconds=1` added; the events until the server
    /// ends it are compared.
    #[serde(rename = "WATCH")]
    watch: Option<String>,
    /// The request body, sent as JSON (or as YAML with `type: application/yaml`).
    body: Option<Value>,
    /// A body sent byte for byte, valid or not.
    raw: Option<String>,
    /// A binary body (a Kubernetes protobuf one), base64.
    raw_base64: Option<String>,
    /// Content-Type; JSON by default, the strategic merge patch type for PATCH.
    #[serde(rename = "type")]
    content_type: Option<String>,
    accept: Option<String>,
    /// Remember the answer's `metadata.resourceVersion` as `$NAME` for later steps.
    save: Option<String>,
    /// Why this step is here, when the sequence does not say it already.
    #[serde(default, rename = "why")]
    _why: Option<String>,
    /// Wait this many milliseconds before the request (for what happens in the background).
    sleep: Option<u64>,
    /// Send the request without the server's credentials: `none` (no Authorization header)
    /// or `wrong` (a bearer token neither server issued). Both servers must refuse it alike.
    credentials: Option<Credentials>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Credentials {
    None,
    Wrong,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sequence {
    /// What the sequence exercises, and who sends such requests.
    about: String,
    /// Whether the sequence starts by creating its namespace `$ns` (the default).
    #[serde(default = "yes")]
    namespace: bool,
    steps: Vec<Step>,
}

fn yes() -> bool {
    true
}

/// A path ignored in every compared object, with the reason it must differ.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ignored {
    /// Path from the object's root, `/` between keys (`~1` for a `/` in a key, as in a JSON
    /// pointer); `*` matches any key or index.
    path: String,
    /// Only for objects of this kind (any kind when absent).
    kind: Option<String>,
    why: String,
}

/// A difference that is right on our side.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Justified {
    sequence: String,
    /// The step's index, from 0 counting the implicit namespace creation as -1.
    step: i64,
    why: String,
    upstream: String,
}

struct Server {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Server {
    fn new(base: &str, token: Option<String>) -> Self {
        let tls = ureq::tls::TlsConfig::builder()
            .disable_verification(true)
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Server {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent,
        }
    }

    /// The status code and the body (JSON when it parses, else the text). `credentials`
    /// replaces the server's token.
    fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        accept: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        self.send_as(method, path, content_type, accept, body, None)
    }

    fn send_as(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        accept: Option<&str>,
        body: Option<Vec<u8>>,
        credentials: Option<Credentials>,
    ) -> (u16, Value) {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        let token = match credentials {
            None => self.token.clone(),
            Some(Credentials::None) => None,
            Some(Credentials::Wrong) => Some("0123456789abcdef0123456789abcdef".to_string()),
        };
        if let Some(t) = &token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(c) = content_type {
            req = req.header("Content-Type", c);
        }
        req = req.header("Accept", accept.unwrap_or("application/json"));
        let req = req.body(body.unwrap_or_default()).expect("a request");
        match self.agent.run(req) {
            Ok(mut resp) => {
                let code = resp.status().as_u16();
                let text = resp
                    .body_mut()
                    .with_config()
                    .limit(64 << 20)
                    .read_to_string()
                    .unwrap_or_default();
                (code, parse_body(&text))
            }
            Err(e) => (0, Value::String(format!("no answer: {e}"))),
        }
    }
}

/// JSON, or a watch stream (one JSON object a line) as an array, or the text.
fn parse_body(text: &str) -> Value {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return v;
    }
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if !lines.is_empty() {
        return Value::Array(lines);
    }
    Value::String(text.to_string())
}

fn substitute(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = s.to_string();
    // Longest names first, so `$rv10` is not read as `$rv1` followed by `0`.
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        out = out.replace(&format!("${name}"), &vars[name]);
    }
    out
}

fn substitute_value(v: &Value, vars: &BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) => Value::String(substitute(s, vars)),
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute_value(x, vars)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (substitute(k, vars), substitute_value(x, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The method, the path and what is sent.
fn request_of(step: &Step, vars: &BTreeMap<String, String>) -> (String, String, bool) {
    let pairs = [
        ("GET", &step.get),
        ("POST", &step.post),
        ("PUT", &step.put),
        ("PATCH", &step.patch),
        ("DELETE", &step.delete),
        ("WATCH", &step.watch),
    ];
    let set: Vec<_> = pairs.iter().filter(|(_, p)| p.is_some()).collect();
    assert_eq!(set.len(), 1, "a step names exactly one method: {step:?}");
    let (method, path) = (set[0].0, set[0].1.as_deref().unwrap_or_default());
    let path = substitute(path, vars);
    if method == "WATCH" {
        let sep = if path.contains('?') { '&' } else { '?' };
        let path = if path.contains("timeoutSeconds=") {
            format!("{path}{sep}watch=true")
        } else {
            format!("{path}{sep}watch=true&timeoutSeconds=1")
        };
        ("GET".into(), path, true)
    } else {
        (method.into(), path, false)
    }
}

struct Normalizer {
    ignored: Vec<Ignored>,
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_time(s: &str) -> bool {
    // RFC 3339 as Kubernetes writes Time and MicroTime: 2024-01-02T03:04:05Z, .000000Z.
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (s.ends_with('Z') || s.contains('+'))
        && b[..4].iter().all(u8::is_ascii_digit)
}

impl Normalizer {
    fn object(&self, v: &Value) -> Value {
        let kind = v
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut v = v.clone();
        // Lists: each item is an object of the list's item kind.
        if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
            for item in items.iter_mut() {
                *item = self.object(item);
            }
            // Order of a list is the store's key order on both, but names may collate
            // differently under generated names: sort by namespace/name.
            items.sort_by_key(|i| {
                (
                    i.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    i.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                )
            });
        }
        for ig in &self.ignored {
            if ig.kind.as_deref().is_some_and(|k| k != kind) {
                continue;
            }
            let parts: Vec<String> = ig
                .path
                .split('/')
                .map(|p| p.replace("~1", "/").replace("~0", "~"))
                .collect();
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            remove_path(&mut v, &parts);
        }
        scrub(&mut v);
        v
    }

    /// What of an answer is compared.
    fn answer(&self, code: u16, body: &Value, watch: bool) -> Value {
        if watch && code == 200 {
            let events = match body {
                Value::Array(a) => a.clone(),
                Value::Object(_) => vec![body.clone()],
                _ => Vec::new(),
            };
            let events: Vec<Value> = events
                .iter()
                .filter(|e| {
                    e.get("type").and_then(Value::as_str) != Some("BOOKMARK")
                        || e.pointer("/object/metadata/annotations/k8s.io~1initial-events-end")
                            .is_some()
                })
                .map(|e| json!({"type": e["type"], "object": self.object(&e["object"])}))
                .collect();
            return json!({"code": code, "events": events});
        }
        if body.get("kind").and_then(Value::as_str) == Some("Status") {
            let mut causes: Vec<Value> = body
                .pointer("/details/causes")
                .and_then(Value::as_array)
                .map(|c| {
                    c.iter()
                        .map(|c| json!({"reason": c.get("reason"), "field": c.get("field")}))
                        .collect()
                })
                .unwrap_or_default();
            causes.sort_by_key(|c| c.to_string());
            // Whether `details` is there at all counts: clients read `details.causes` without
            // checking for it (kubectl debug's nil pointer on a 404 without details).
            return json!({"code": code, "status": body.get("status"), "reason": body.get("reason"),
                "has_details": body.get("details").is_some(),
                "details": {"name": body.pointer("/details/name"), "kind": body.pointer("/details/kind"),
                    "group": body.pointer("/details/group"), "causes": causes}});
        }
        json!({"code": code, "body": self.object(body)})
    }
}

fn remove_path(v: &mut Value, parts: &[&str]) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    match v {
        Value::Object(m) => {
            if rest.is_empty() {
                if *first == "*" {
                    m.clear();
                } else {
                    m.remove(*first);
                }
                return;
            }
            if *first == "*" {
                for x in m.values_mut() {
                    remove_path(x, rest);
                }
            } else if let Some(x) = m.get_mut(*first) {
                remove_path(x, rest);
            }
        }
        Value::Array(a) if *first == "*" => {
            for x in a.iter_mut() {
                remove_path(x, rest);
            }
        }
        _ => {}
    }
}

/// Values that are generated on each server: uids, times, resource versions, the random part
/// of a name made from generateName.
fn scrub(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut)
                && let Some(prefix) = meta
                    .get("generateName")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                && meta
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.starts_with(&prefix))
            {
                meta.insert("name".into(), json!(format!("{prefix}<generated>")));
            }
            for (k, x) in m.iter_mut() {
                match (k.as_str(), &x) {
                    ("resourceVersion", Value::String(_)) => *x = json!("<rv>"),
                    ("continue", Value::String(t)) if continue_token(t).is_some() => {
                        *x = continue_token(t).unwrap_or_default();
                    }
                    // Both servers pick a Service's address at random in the same range.
                    ("clusterIP", Value::String(s)) if allocated(s) => *x = json!("<cluster ip>"),
                    ("clusterIPs", Value::Array(a))
                        if a.iter().all(|i| i.as_str().is_some_and(allocated)) =>
                    {
                        *x = json!(["<cluster ip>"]);
                    }
                    (_, Value::String(s)) if is_uuid(s) => *x = json!("<uid>"),
                    (_, Value::String(s)) if is_time(s) => *x = json!("<time>"),
                    _ => scrub(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// An address of the service range (10.96.0.0/16) but the `kubernetes` Service's first one:
/// one each server allocated at random.
fn allocated(s: &str) -> bool {
    s.parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.octets()[..2] == [10, 96] && ip.octets()[2..] != [0, 1])
}

/// A list's continue token as kube-apiserver's etcd3 storage makes it (base64url of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"KEY"}`), its version scrubbed as every
/// resourceVersion is: what is compared is the format and the key the next page starts at.
fn continue_token(text: &str) -> Option<Value> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    let mut token: serde_json::Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    let rv = token.get_mut("rv")?;
    if rv.as_i64().is_some_and(|v| v > 0) {
        *rv = json!("<rv>");
    }
    Some(json!({"continue token": token}))
}

/// The first few paths where two values differ.
fn differences(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
    if out.len() >= 8 {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let here = format!("{at}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => differences(p, q, &here, out),
                    (Some(p), None) => out.push(format!("{here}: ours {p}, upstream none")),
                    (None, Some(q)) => out.push(format!("{here}: ours none, upstream {q}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differences(p, q, &format!("{at}[{i}]"), out);
            }
        }
        _ if a != b => {
            let short = |v: &Value| {
                let s = v.to_string();
                if s.len() > 300 {
                    format!("{}...", &s[..300])
                } else {
                    s
                }
            };
            out.push(format!("{at}: ours {}, upstream {}", short(a), short(b)));
        }
        _ => {}
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apiserver")
}

fn load_corpus() -> Vec<(String, Sequence)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir().join("corpus"))
        .expect("the corpus directory")
        .map(|e| e.expect("a corpus entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("a corpus file");
            let seq: Sequence =
                serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let stem = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            (stem, seq)
        })
        .collect()
}

struct Outcome {
    requests: usize,
    differences: Vec<String>,
    justified: Vec<String>,
}

fn body_bytes(step: &Step, vars: &BTreeMap<String, String>) -> Option<Vec<u8>> {
    if let Some(b64) = &step.raw_base64 {
        use base64::Engine as _;
        return Some(
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .expect("raw_base64 is base64"),
        );
    }
    if let Some(raw) = &step.raw {
        return Some(substitute(raw, vars).into_bytes());
    }
    let body = substitute_value(step.body.as_ref()?, vars);
    if step.content_type.as_deref() == Some("application/yaml") {
        return Some(serde_saphyr::to_string(&body).ok()?.into_bytes());
    }
    Some(body.to_string().into_bytes())
}

fn run_sequence(
    name: &str,
    seq: &Sequence,
    ours: &Server,
    theirs: &Server,
    suffix: &str,
    norm: &Normalizer,
    justified: &[Justified],
) -> Outcome {
    let ns = format!("{}-{suffix}", name.replace('_', "-"));
    let base: BTreeMap<String, String> = [
        ("ns".to_string(), ns.clone()),
        ("u".to_string(), suffix.to_string()),
    ]
    .into();
    let mut vars = [base.clone(), base];
    let mut out = Outcome {
        requests: 0,
        differences: Vec::new(),
        justified: Vec::new(),
    };
    let mut steps: Vec<(i64, Step)> = Vec::new();
    if seq.namespace {
        steps.push((
            -1,
            Step {
                get: None,
                post: Some("/api/v1/namespaces".into()),
                put: None,
                patch: None,
                delete: None,
                watch: None,
                body: Some(
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "$ns"}}),
                ),
                raw: None,
                raw_base64: None,
                content_type: None,
                accept: None,
                save: None,
                _why: None,
                sleep: None,
                credentials: None,
            },
        ));
    }
    let own: Vec<(i64, &Step)> = seq
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (i as i64, s))
        .collect();
    let all: Vec<(i64, &Step)> = steps.iter().map(|(i, s)| (*i, s)).chain(own).collect();
    for (index, step) in all {
        if let Some(ms) = step.sleep {
            std::thread::sleep(Duration::from_millis(ms));
        }
        let mut answers = Vec::new();
        let mut shown = String::new();
        for (side, server) in [ours, theirs].into_iter().enumerate() {
            let v = &vars[side];
            let (method, path, watch) = request_of(step, v);
            let default_type = match method.as_str() {
                "PATCH" => "application/strategic-merge-patch+json",
                _ => "application/json",
            };
            let has_body = step.body.is_some() || step.raw.is_some() || step.raw_base64.is_some();
            let ctype = step
                .content_type
                .as_deref()
                .or(has_body.then_some(default_type));
            let (code, body) = server.send_as(
                &method,
                &path,
                ctype,
                step.accept.as_deref(),
                body_bytes(step, v),
                step.credentials,
            );
            if let Some(save) = &step.save {
                let rv = body
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                vars[side].insert(save.clone(), rv);
                let uid = body
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                vars[side].insert(format!("{save}_uid"), uid);
                let next = body
                    .pointer("/metadata/continue")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                vars[side].insert(format!("{save}_continue"), next);
            }
            shown = format!("{method} {path}");
            answers.push(norm.answer(code, &body, watch));
        }
        out.requests += 1;
        if answers[0] != answers[1] {
            let mut paths = Vec::new();
            differences(&answers[0], &answers[1], "", &mut paths);
            let line = format!("{name} step {index} ({shown}): {}", paths.join("; "));
            match justified
                .iter()
                .find(|j| j.sequence == name && j.step == index)
            {
                Some(j) => out
                    .justified
                    .push(format!("{line}\n    justified: {} ({})", j.why, j.upstream)),
                None => out.differences.push(line),
            }
        }
    }
    out
}

#[test]
fn corpus_loads_and_every_step_names_one_method() {
    let corpus = load_corpus();
    assert!(!corpus.is_empty());
    let vars = BTreeMap::new();
    let mut requests = 0;
    for (_, seq) in &corpus {
        assert!(!seq.about.is_empty());
        for step in &seq.steps {
            request_of(step, &vars);
            requests += 1;
        }
        requests += usize::from(seq.namespace);
    }
    assert!(requests >= 300, "the corpus holds {requests} requests");
    let ignored: Vec<Ignored> = serde_saphyr::from_str(
        &std::fs::read_to_string(corpus_dir().join("ignored.yaml")).expect("ignored.yaml"),
    )
    .expect("ignored.yaml parses");
    assert!(ignored.iter().all(|i| !i.why.is_empty()));
    let justified: Vec<Justified> = serde_saphyr::from_str(
        &std::fs::read_to_string(corpus_dir().join("justified.yaml")).expect("justified.yaml"),
    )
    .expect("justified.yaml parses");
    for j in &justified {
        assert!(
            corpus.iter().any(|(n, _)| *n == j.sequence),
            "justified.yaml names no sequence {}",
            j.sequence
        );
        assert!(!j.upstream.is_empty() && !j.why.is_empty());
    }
}

#[test]
fn normalizer_tells_a_difference_and_ignores_generated_values() {
    let norm = Normalizer {
        ignored: vec![Ignored {
            path: "metadata/managedFields".into(),
            kind: None,
            why: String::new(),
        }],
    };
    let a = json!({"kind": "Pod", "metadata": {"name": "p", "uid": "0b0c0d0e-1111-2222-3333-444455556666",
        "resourceVersion": "12", "creationTimestamp": "2026-01-02T03:04:05Z", "managedFields": [1]},
        "spec": {"restartPolicy": "Always"}});
    let b = json!({"kind": "Pod", "metadata": {"name": "p", "uid": "aaaaaaaa-1111-2222-3333-444455556666",
        "resourceVersion": "99", "creationTimestamp": "2020-01-02T03:04:05Z"},
        "spec": {"restartPolicy": "Always"}});
    assert_eq!(norm.answer(200, &a, false), norm.answer(200, &b, false));
    let c = json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"restartPolicy": "Never"}});
    let (x, y) = (norm.answer(200, &a, false), norm.answer(200, &c, false));
    assert_ne!(x, y);
    let mut paths = Vec::new();
    differences(&x, &y, "", &mut paths);
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with(".body.spec.restartPolicy")),
        "{paths:?}"
    );
    // Status answers: the reason and causes count, the message does not.
    let s1 = json!({"kind": "Status", "status": "Failure", "reason": "Invalid", "message": "one",
        "details": {"causes": [{"reason": "FieldValueRequired", "field": "spec.containers", "message": "x"}]}});
    let s2 = json!({"kind": "Status", "status": "Failure", "reason": "Invalid", "message": "two",
        "details": {"causes": [{"reason": "FieldValueRequired", "field": "spec.containers", "message": "y"}]}});
    assert_eq!(norm.answer(422, &s1, false), norm.answer(422, &s2, false));
    let s3 = json!({"kind": "Status", "status": "Failure", "reason": "Invalid", "message": "two"});
    assert_ne!(norm.answer(422, &s1, false), norm.answer(422, &s3, false));
    // A Status with empty details is not one without.
    let n1 = json!({"kind": "Status", "status": "Failure", "reason": "NotFound", "details": {}});
    let n2 = json!({"kind": "Status", "status": "Failure", "reason": "NotFound"});
    assert_ne!(norm.answer(404, &n1, false), norm.answer(404, &n2, false));
    // Continue tokens: the versions in them are generated, the start key is compared.
    let token = |rv: i64, start: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start}).to_string())
    };
    let list = |t: String| json!({"kind": "PodList", "metadata": {"continue": t}, "items": []});
    assert_eq!(
        norm.answer(200, &list(token(12, "a\u{0}")), false),
        norm.answer(200, &list(token(99, "a\u{0}")), false)
    );
    assert_ne!(
        norm.answer(200, &list(token(12, "a\u{0}")), false),
        norm.answer(200, &list(token(12, "b\u{0}")), false)
    );
    assert_ne!(
        norm.answer(200, &list(token(12, "a\u{0}")), false),
        norm.answer(200, &list(token(-1, "a\u{0}")), false)
    );
}

#[test]
fn against_kube_apiserver() {
    let peer = std::env::var("NODE_CONFORMANCE_APISERVER").unwrap_or_default();
    let required = std::env::var("NODE_CONFORMANCE_REQUIRE_APISERVER").is_ok_and(|v| v == "1");
    let mut parts = peer.split_whitespace();
    let (Some(url), token) = (parts.next(), parts.next()) else {
        assert!(
            !required,
            "NODE_CONFORMANCE_REQUIRE_APISERVER=1 but NODE_CONFORMANCE_APISERVER is not set"
        );
        eprintln!(
            "skipped: NODE_CONFORMANCE_APISERVER=\"URL TOKEN\" names no kube-apiserver to compare with"
        );
        return;
    };
    let theirs = Server::new(url, token.map(str::to_string));
    let (code, _) = theirs.send("GET", "/readyz", None, None, None);
    assert_eq!(code, 200, "the kube-apiserver at {url} is not ready");
    // Ours as a user runs it: over TLS, every request authenticated, with the token of the
    // admin kubeconfig it wrote (the reference uses a token of its --token-auth-file).
    let plane = common::ControlPlane::start_secure();
    let ours = Server::new(&plane.url(), plane.secure.as_ref().map(|s| s.token.clone()));
    let norm = Normalizer {
        ignored: serde_saphyr::from_str(
            &std::fs::read_to_string(corpus_dir().join("ignored.yaml")).expect("ignored.yaml"),
        )
        .expect("ignored.yaml parses"),
    };
    let justified: Vec<Justified> = serde_saphyr::from_str(
        &std::fs::read_to_string(corpus_dir().join("justified.yaml")).expect("justified.yaml"),
    )
    .expect("justified.yaml parses");
    let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..6].to_string();
    let only = std::env::var("DIFF_ONLY").unwrap_or_default();
    let corpus: Vec<(String, Sequence)> = load_corpus()
        .into_iter()
        .filter(|(n, _)| only.is_empty() || n.contains(&only))
        .collect();
    // Sequences are independent (a namespace each, names suffixed): run them side by side.
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let chunks: Vec<&[(String, Sequence)]> =
            corpus.chunks(corpus.len().div_ceil(6).max(1)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let (ours, theirs, norm, justified, suffix) =
                    (&ours, &theirs, &norm, &justified, &suffix);
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|(name, seq)| {
                            run_sequence(name, seq, ours, theirs, suffix, norm, justified)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a sequence thread"))
            .collect()
    });
    let requests: usize = outcomes.iter().map(|o| o.requests).sum();
    let diffs: Vec<&String> = outcomes.iter().flat_map(|o| &o.differences).collect();
    let just: Vec<&String> = outcomes.iter().flat_map(|o| &o.justified).collect();
    for d in &diffs {
        eprintln!("DIFFERENCE {d}");
    }
    for j in &just {
        eprintln!("JUSTIFIED {j}");
    }
    eprintln!(
        "{requests} requests, {} differences ({} justified: tests/apiserver/justified.yaml)",
        diffs.len(),
        just.len()
    );
    if only.is_empty() {
        assert!(requests >= 300, "{requests} requests");
    }
    assert!(diffs.is_empty(), "{} differences", diffs.len());
}
