//! Server-side printing: the `meta.k8s.io` Table a get, list or watch answers with when the
//! Accept header asks for one, as `kubectl get` does
//! (`application/json;as=Table;v=v1;g=meta.k8s.io,...,application/json`).
//!
//! It follows kube-apiserver 1.20.2: content negotiation from
//! k8s.io/apiserver/pkg/endpoints/handlers/negotiation, the Table and its rows from
//! handlers/response.go (`asTable`: `includeObject` Object, Metadata (the default) or None),
//! the cells from pkg/printers/internalversion/printers.go (every column, priority 1 ones
//! included: the server prints wide), and NAME / CREATED AT from
//! k8s.io/apiserver/pkg/registry/rest/table.go for resources without a printer. The column
//! definitions are the real server's, as it returned them (table_columns.json). Pods with
//! restartable init containers and scheduling gates, which 1.20 cannot hold, are printed as
//! later releases print them.
//!
//! Objects are read as JSON with Go's zero values for what is missing, as kube-apiserver's
//! decoder reads them; a malformed field prints as if it were absent.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::resources::Resource;

/// What a table row carries of its object (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// The whole object.
    Object,
    /// A `PartialObjectMetadata`: its metadata only. The default.
    Metadata,
    /// Nothing (`"object": null`).
    None,
}

/// A request for a Table: the meta.k8s.io version asked for (`v1` or `v1beta1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Printer {
    version: &'static str,
}

/// Reads the Accept header as kube-apiserver's negotiation does: clauses by quality, the first
/// one served wins. `Ok(Some)` for a Table, `Ok(None)` for the object itself (JSON; YAML and
/// protobuf are answered with JSON as before). `Err` is the 406 message when no clause can be
/// served, for instance a Table of a version that does not exist.
pub fn negotiate(accept: Option<&str>) -> Result<Option<Printer>, String> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(None);
    };
    for clause in clauses(accept) {
        let served = matches!(
            (clause.kind.as_str(), clause.sub.as_str()),
            ("*", "*")
                | (
                    "application",
                    "*" | "json" | "yaml" | "vnd.kubernetes.protobuf"
                )
        );
        if !served {
            continue;
        }
        let (as_, g, v) = (clause.param("as"), clause.param("g"), clause.param("v"));
        if as_.is_none() && g.is_none() && v.is_none() {
            return Ok(None);
        }
        // Only Tables of meta.k8s.io v1 and v1beta1, in a text encoding, are served here;
        // a clause asking for another conversion falls to the next one.
        let text = matches!(clause.sub.as_str(), "json" | "yaml" | "*");
        if as_ == Some("Table") && g == Some("meta.k8s.io") && text {
            match v {
                Some("v1") => return Ok(Some(Printer { version: "v1" })),
                Some("v1beta1") => return Ok(Some(Printer { version: "v1beta1" })),
                _ => {}
            }
        }
    }
    Err("only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf".into())
}

/// One media range of an Accept header.
struct Clause {
    kind: String,
    sub: String,
    q: f32,
    params: Vec<(String, String)>,
}

impl Clause {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// goautoneg.ParseAccept: media ranges with their parameters, best first (higher quality,
/// then concrete types before wildcards; otherwise in the client's order).
fn clauses(header: &str) -> Vec<Clause> {
    let mut out = Vec::new();
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let range = pieces.next().unwrap_or("").trim();
        let (kind, sub) = match range.split_once('/') {
            Some((k, s)) if !s.contains('/') => (k.trim(), s.trim()),
            None if range == "*" => ("*", "*"),
            _ => continue,
        };
        let mut clause = Clause {
            kind: kind.to_string(),
            sub: sub.to_string(),
            q: 1.0,
            params: Vec::new(),
        };
        for p in pieces {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            if v.contains('=') {
                continue;
            }
            let (k, v) = (k.trim(), v.trim());
            if k == "q" {
                clause.q = v.parse().unwrap_or(0.0);
            } else {
                clause.params.push((k.to_string(), v.to_string()));
            }
        }
        out.push(clause);
    }
    let wild = |c: &Clause| (c.kind == "*") as u8 + (c.sub == "*") as u8;
    out.sort_by(|a, b| {
        b.q.partial_cmp(&a.q)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(wild(a).cmp(&wild(b)))
    });
    out
}

/// `includeObject` as metav1 ValidateTableOptions reads it; `Err` is the 400 message.
fn include(value: Option<&str>) -> Result<Include, String> {
    match value.unwrap_or("") {
        "" | "Metadata" => Ok(Include::Metadata),
        "Object" => Ok(Include::Object),
        "None" => Ok(Include::None),
        other => Err(format!(
            "Unable to convert to Table as requested: includeObject: Invalid value: {}: must be 'Metadata', 'Object', 'None', or empty",
            serde_json::to_string(other).unwrap_or_default()
        )),
    }
}

impl Printer {
    /// The Table of one object (a get): its resourceVersion in the Table's metadata.
    pub fn object(
        &self,
        res: &Resource,
        obj: &Value,
        include_object: Option<&str>,
    ) -> Result<Value, String> {
        let include = include(include_object)?;
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        Ok(self.table(res, std::slice::from_ref(obj), rv, include, true))
    }

    /// The Table of a list, as JSON text, for the resourceVersion the list is consistent with.
    pub fn list(
        &self,
        res: &Resource,
        items: &[Arc<str>],
        rv: u64,
        include_object: Option<&str>,
    ) -> Result<String, String> {
        let include = include(include_object)?;
        let objects: Vec<Value> = items
            .iter()
            .map(|i| serde_json::from_str(i).unwrap_or(Value::Null))
            .collect();
        Ok(self
            .table(res, &objects, &rv.to_string(), include, true)
            .to_string())
    }

    fn table(
        &self,
        res: &Resource,
        objects: &[Value],
        rv: &str,
        include: Include,
        headers: bool,
    ) -> Value {
        let api_version = format!("meta.k8s.io/{}", self.version);
        let now = now();
        let rows: Vec<Value> = objects
            .iter()
            .map(|obj| {
                let (cells, conditions) = cells(res, obj, now);
                let object = match include {
                    // Stored objects leave out apiVersion and kind; a row's object has them.
                    Include::Object => {
                        let mut o = obj.clone();
                        if let Some(m) = o.as_object_mut() {
                            m.insert("apiVersion".into(), json!(res.api_version()));
                            m.insert("kind".into(), json!(res.kind));
                        }
                        o
                    }
                    Include::Metadata => {
                        json!({"kind": "PartialObjectMetadata", "apiVersion": api_version,
                        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({}))})
                    }
                    Include::None => Value::Null,
                };
                let mut row = json!({"cells": cells, "object": object});
                if let Some(c) = conditions {
                    row["conditions"] = c;
                }
                row
            })
            .collect();
        let mut metadata = json!({});
        if !rv.is_empty() {
            metadata["resourceVersion"] = json!(rv);
        }
        let columns = if headers { columns(res) } else { Value::Null };
        json!({"kind": "Table", "apiVersion": api_version, "metadata": metadata,
            "columnDefinitions": columns, "rows": rows})
    }
}

/// The current time (jiff's clock is not built in: k8s-openapi uses it without std).
fn now() -> Timestamp {
    let t = chrono::Utc::now();
    Timestamp::new(
        t.timestamp(),
        t.timestamp_subsec_nanos().try_into().unwrap_or(0),
    )
    .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The objects a watch's events carry: each as stored, or a Table of it when one was asked
/// for. Only the first Table has column definitions: kube-apiserver's watch sets NoHeaders
/// once it has printed one.
pub struct WatchObjects {
    /// The Table asked for and what its rows carry, if one was.
    table: Option<(Printer, Include)>,
    res: &'static Resource,
    headers: AtomicBool,
}

impl WatchObjects {
    /// `Err` is the 400 message for a bad `includeObject`, answered before the watch starts.
    pub fn new(
        printer: Option<Printer>,
        res: &'static Resource,
        include_object: Option<&str>,
    ) -> Result<Self, String> {
        let table = match printer {
            Some(p) => Some((p, include(include_object)?)),
            None => None,
        };
        Ok(Self {
            table,
            res,
            headers: AtomicBool::new(true),
        })
    }

    /// One event's object, from the stored JSON text.
    pub fn object<'a>(&self, json: &'a str) -> Cow<'a, str> {
        let Some((p, include)) = self.table else {
            return Cow::Borrowed(json);
        };
        let obj: Value = serde_json::from_str(json).unwrap_or(Value::Null);
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let headers = self.headers.swap(false, Ordering::Relaxed);
        Cow::Owned(
            p.table(self.res, std::slice::from_ref(&obj), rv, include, headers)
                .to_string(),
        )
    }
}

/// The column definitions kube-apiserver 1.20.2 gives a resource, or NAME / CREATED AT.
fn columns(res: &Resource) -> Value {
    static COLUMNS: OnceLock<HashMap<String, Value>> = OnceLock::new();
    let all = COLUMNS.get_or_init(|| {
        serde_json::from_str(include_str!("table_columns.json")).unwrap_or_default()
    });
    all.get(&res.key())
        .or_else(|| all.get("default"))
        .cloned()
        .unwrap_or_else(|| json!([]))
}

/// A row's cells, and its conditions (a finished pod's), by resource.
fn cells(res: &Resource, obj: &Value, now: Timestamp) -> (Vec<Value>, Option<Value>) {
    let name = json!(text(obj, "/metadata/name"));
    let age = json!(age(time(obj, "/metadata/creationTimestamp"), now));
    let row = match res.key().as_str() {
        "pods" => return pod(obj, now),
        "nodes" => node(obj, now),
        "events" => event(obj, now),
        "namespaces" => vec![name, json!(text(obj, "/status/phase")), age],
        "configmaps" => {
            let n = object_len(obj, "/data") + object_len(obj, "/binaryData");
            vec![name, json!(n), age]
        }
        "secrets" => secret(obj, name, age),
        "services" => service(obj, name, age),
        "endpoints" => vec![name, json!(endpoints(obj)), age],
        "serviceaccounts" => vec![name, json!(list(obj, "/secrets").len()), age],
        "leases.coordination.k8s.io" => {
            vec![name, json!(text(obj, "/spec/holderIdentity")), age]
        }
        "csinodes.storage.k8s.io" => vec![name, json!(list(obj, "/spec/drivers").len()), age],
        "csidrivers.storage.k8s.io" => csi_driver(obj, name, age),
        "runtimeclasses.node.k8s.io" => vec![name, json!(text(obj, "/handler")), age],
        // rest.defaultTableConvertor: the creation time in RFC 3339, UTC.
        _ => {
            let created = time(obj, "/metadata/creationTimestamp").map_or_else(
                || "0001-01-01T00:00:00Z".to_string(),
                |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            );
            vec![name, json!(created)]
        }
    };
    (row, None)
}

/// The string at a JSON pointer, or "" (Go's zero value).
fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn list<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn object_len(obj: &Value, pointer: &str) -> usize {
    obj.pointer(pointer)
        .and_then(Value::as_object)
        .map_or(0, serde_json::Map::len)
}

/// The object at a pointer, when there is one (a Go pointer that is not nil).
fn present<'a>(obj: &'a Value, pointer: &str) -> Option<&'a Value> {
    obj.pointer(pointer).filter(|v| v.is_object())
}

fn time(obj: &Value, pointer: &str) -> Option<Timestamp> {
    text(obj, pointer).parse().ok()
}

/// translateTimestampSince: the age of a timestamp, or `<unknown>` without one.
fn age(t: Option<Timestamp>, now: Timestamp) -> String {
    t.map_or_else(
        || "<unknown>".to_string(),
        |t| human_duration(now.duration_since(t).as_nanos()),
    )
}

/// k8s.io/apimachinery/pkg/util/duration.HumanDuration: ~2-3 significant figures; a time up
/// to 2 s in the future is "now", further is `<invalid>`.
fn human_duration(nanos: i128) -> String {
    const S: i128 = 1_000_000_000;
    let seconds = nanos / S;
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / (60 * S);
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / (3600 * S);
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        }
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        }
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// printPod: READY, STATUS (the phase or reason, then init containers' and containers'
/// states, Terminating, Unknown for a pod on a lost node), RESTARTS, AGE, and the wide IP,
/// NODE, NOMINATED NODE, READINESS GATES. A finished pod's row has a Completed condition.
fn pod(p: &Value, now: Timestamp) -> (Vec<Value>, Option<Value>) {
    let init_specs = list(p, "/spec/initContainers");
    // A restartable init container (restartPolicy Always) is a sidecar: counted with the
    // containers, and done initialising once started (1.28's printPod).
    let sidecar = |name: &str| {
        init_specs
            .iter()
            .any(|c| text(c, "/name") == name && text(c, "/restartPolicy") == "Always")
    };
    let sidecars = init_specs
        .iter()
        .filter(|c| text(c, "/restartPolicy") == "Always")
        .count();
    let total = list(p, "/spec/containers").len() + sidecars;
    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let phase = text(p, "/status/phase");
    let mut reason = match text(p, "/status/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    let conditions = list(p, "/status/conditions");
    if conditions
        .iter()
        .any(|c| text(c, "/type") == "PodScheduled" && text(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }
    let row_conditions = match phase {
        "Succeeded" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}]),
        ),
        "Failed" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]),
        ),
        _ => None,
    };

    let mut initializing = false;
    for (i, c) in list(p, "/status/initContainerStatuses").iter().enumerate() {
        let count = int(c, "/restartCount");
        restarts += count;
        let is_sidecar = sidecar(text(c, "/name"));
        if is_sidecar {
            sidecar_restarts += count;
        }
        let terminated = present(c, "/state/terminated");
        let waiting = present(c, "/state/waiting");
        if terminated.is_some_and(|t| int(t, "/exitCode") == 0) {
            continue;
        }
        if is_sidecar && c.get("started").and_then(Value::as_bool) == Some(true) {
            if c.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            match text(t, "/reason") {
                "" if int(t, "/signal") != 0 => format!("Init:Signal:{}", int(t, "/signal")),
                "" => format!("Init:ExitCode:{}", int(t, "/exitCode")),
                r => format!("Init:{r}"),
            }
        } else if let Some(w) = waiting.filter(|w| {
            let r = text(w, "/reason");
            !r.is_empty() && r != "PodInitializing"
        }) {
            format!("Init:{}", text(w, "/reason"))
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }
    let initialized = conditions
        .iter()
        .find(|c| text(c, "/type") == "Initialized")
        .is_some_and(|c| text(c, "/status") == "True");
    if !initializing || (sidecars > 0 && initialized) {
        restarts = sidecar_restarts;
        let mut has_running = false;
        for c in list(p, "/status/containerStatuses").iter().rev() {
            restarts += int(c, "/restartCount");
            let waiting = present(c, "/state/waiting");
            let terminated = present(c, "/state/terminated");
            if let Some(w) = waiting.filter(|w| !text(w, "/reason").is_empty()) {
                reason = text(w, "/reason").to_string();
            } else if let Some(t) = terminated {
                reason = match text(t, "/reason") {
                    "" if int(t, "/signal") != 0 => format!("Signal:{}", int(t, "/signal")),
                    "" => format!("ExitCode:{}", int(t, "/exitCode")),
                    r => r.to_string(),
                };
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && present(c, "/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        // A container still running after another completed: the pod runs on.
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| text(c, "/type") == "Ready" && text(c, "/status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.into();
        }
    }
    let deleting = p
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null());
    if deleting && text(p, "/status/reason") == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting {
        reason = "Terminating".into();
    }

    // The internal object's podIPs[0]: podIP wins when the two differ.
    let ip = match text(p, "/status/podIP") {
        "" => text(p, "/status/podIPs/0/ip"),
        ip => ip,
    };
    let gates = list(p, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let met = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .find(|c| text(c, "/type") == text(g, "/conditionType"))
                    .is_some_and(|c| text(c, "/status") == "True")
            })
            .count();
        format!("{met}/{}", gates.len())
    };
    let cells = vec![
        json!(text(p, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        json!(age(time(p, "/metadata/creationTimestamp"), now)),
        json!(or_none(ip)),
        json!(or_none(text(p, "/spec/nodeName"))),
        json!(or_none(text(p, "/status/nominatedNodeName"))),
        json!(readiness_gates),
    ];
    (cells, row_conditions)
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { "<unknown>" } else { s }
}

/// printNode: STATUS from the Ready condition, SchedulingDisabled when cordoned; ROLES from
/// `node-role.kubernetes.io/<role>` labels and a `kubernetes.io/role` label.
fn node(n: &Value, now: Timestamp) -> Vec<Value> {
    // The last Ready condition, as the map upstream builds keeps.
    let ready = list(n, "/status/conditions")
        .iter()
        .rev()
        .find(|c| text(c, "/type") == "Ready");
    let mut status = vec![match ready {
        Some(c) if text(c, "/status") == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if n.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<&str> = n
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => Some(role),
            Some(_) => None,
            None if k == "kubernetes.io/role" => v.as_str().filter(|v| !v.is_empty()),
            None => None,
        })
        .collect();
    roles.sort_unstable();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |kind: &str| {
        list(n, "/status/addresses")
            .iter()
            .find(|a| text(a, "/type") == kind)
            .map_or("<none>", |a| text(a, "/address"))
    };
    vec![
        json!(text(n, "/metadata/name")),
        json!(status.join(",")),
        json!(roles),
        json!(age(time(n, "/metadata/creationTimestamp"), now)),
        json!(text(n, "/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(or_unknown(text(n, "/status/nodeInfo/osImage"))),
        json!(or_unknown(text(n, "/status/nodeInfo/kernelVersion"))),
        json!(or_unknown(text(
            n,
            "/status/nodeInfo/containerRuntimeVersion"
        ))),
    ]
}

/// printEvent: LAST SEEN and FIRST SEEN fall back on each other and on eventTime, a series
/// counts its first event too, OBJECT is `kind/name` in lower case.
fn event(e: &Value, now: Timestamp) -> Vec<Value> {
    let first = match time(e, "/firstTimestamp") {
        Some(t) => age(Some(t), now),
        None => age(time(e, "/eventTime"), now),
    };
    let mut last = match time(e, "/lastTimestamp") {
        Some(t) => age(Some(t), now),
        None => first.clone(),
    };
    let mut count = int(e, "/count");
    if let Some(series) = present(e, "/series") {
        last = age(time(series, "/lastObservedTime"), now);
        count = int(series, "/count") + 1;
    } else if count == 0 {
        count = 1;
    }
    let kind = text(e, "/involvedObject/kind").to_lowercase();
    let target = match text(e, "/involvedObject/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let first_non_empty = |a: &'static str, b: &'static str| match text(e, a) {
        "" => text(e, b),
        v => v,
    };
    let component = first_non_empty("/source/component", "/reportingComponent");
    let source = match first_non_empty("/source/host", "/reportingInstance") {
        "" => component.to_string(),
        instance => format!("{component}, {instance}"),
    };
    vec![
        json!(last),
        json!(text(e, "/type")),
        json!(text(e, "/reason")),
        json!(target),
        json!(text(e, "/involvedObject/fieldPath")),
        json!(source),
        json!(text(e, "/message").trim()),
        json!(first),
        json!(count),
        json!(text(e, "/metadata/name")),
    ]
}

/// printSecret: DATA counts the keys of data and stringData, which kube-apiserver merges
/// into data when it stores a secret.
fn secret(s: &Value, name: Value, age: Value) -> Vec<Value> {
    let mut keys: Vec<&String> = ["/data", "/stringData"]
        .iter()
        .filter_map(|p| s.pointer(p).and_then(Value::as_object))
        .flat_map(serde_json::Map::keys)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    vec![name, json!(text(s, "/type")), json!(keys.len()), age]
}

/// printService: CLUSTER-IP is the first of clusterIPs (clusterIP when they are not set),
/// EXTERNAL-IP depends on the type, PORT(S) `port[:nodePort]/protocol`.
fn service(s: &Value, name: Value, age: Value) -> Vec<Value> {
    let cluster_ip = match text(s, "/spec/clusterIPs/0") {
        "" => or_none(text(s, "/spec/clusterIP")),
        ip => ip,
    };
    let external: Vec<&str> = list(s, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external_ip = match text(s, "/spec/type") {
        "ClusterIP" | "NodePort" if !external.is_empty() => external.join(","),
        "ClusterIP" | "NodePort" => "<none>".into(),
        "LoadBalancer" => {
            let mut ingress: Vec<&str> = list(s, "/status/loadBalancer/ingress")
                .iter()
                .map(|i| match text(i, "/ip") {
                    "" => text(i, "/hostname"),
                    ip => ip,
                })
                .filter(|i| !i.is_empty())
                .collect();
            ingress.sort_unstable();
            ingress.dedup();
            ingress.extend(&external);
            if ingress.is_empty() {
                "<pending>".into()
            } else {
                ingress.join(",")
            }
        }
        "ExternalName" => text(s, "/spec/externalName").to_string(),
        _ => "<unknown>".into(),
    };
    let ports: Vec<String> = list(s, "/spec/ports")
        .iter()
        .map(|p| {
            let (port, protocol) = (int(p, "/port"), text(p, "/protocol"));
            match int(p, "/nodePort") {
                n if n > 0 => format!("{port}:{n}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    // labels.FormatLabels: sorted key=value pairs, `<none>` when empty.
    let mut selector: Vec<String> = s
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    selector.sort_unstable();
    let selector = if selector.is_empty() {
        "<none>".to_string()
    } else {
        selector.join(",")
    };
    vec![
        name,
        json!(text(s, "/spec/type")),
        json!(cluster_ip),
        json!(external_ip),
        json!(ports),
        age,
        json!(selector),
    ]
}

/// formatEndpoints: up to three `ip:port` (or ip for a subset without ports), then
/// ` + N more...`; `<none>` without subsets.
fn endpoints(e: &Value) -> String {
    let subsets = list(e, "/subsets");
    if subsets.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut shown = Vec::new();
    let mut count = 0;
    for ss in subsets {
        let addresses = list(ss, "/addresses");
        let ports = list(ss, "/ports");
        if ports.is_empty() {
            for a in addresses {
                if shown.len() < MAX {
                    shown.push(text(a, "/ip").to_string());
                }
                count += 1;
            }
        } else {
            for port in ports {
                for a in addresses {
                    if shown.len() < MAX {
                        let ip = text(a, "/ip");
                        let port = int(port, "/port");
                        // net.JoinHostPort brackets an IPv6 address.
                        shown.push(if ip.contains(':') {
                            format!("[{ip}]:{port}")
                        } else {
                            format!("{ip}:{port}")
                        });
                    }
                    count += 1;
                }
            }
        }
    }
    let joined = shown.join(",");
    if count > MAX {
        format!("{joined} + {} more...", count - MAX)
    } else {
        joined
    }
}

/// printCSIDriver with 1.20's default feature gates: ATTACHREQUIRED (true when unset),
/// PODINFOONMOUNT, MODES.
fn csi_driver(d: &Value, name: Value, age: Value) -> Vec<Value> {
    let flag = |pointer: &str, default: bool| {
        d.pointer(pointer)
            .and_then(Value::as_bool)
            .unwrap_or(default)
    };
    let modes: Vec<&str> = list(d, "/spec/volumeLifecycleModes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let modes = if modes.is_empty() {
        "<none>".to_string()
    } else {
        modes.join(",")
    };
    vec![
        name,
        json!(flag("/spec/attachRequired", true)),
        json!(flag("/spec/podInfoOnMount", false)),
        json!(modes),
        age,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(key: &str) -> &'static Resource {
        Resource::by_key(key).unwrap()
    }

    fn row(key: &str, obj: Value) -> Vec<Value> {
        cells(res(key), &obj, now()).0
    }

    #[test]
    fn kubectl_gets_a_table_and_others_the_object() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate(Some(kubectl)),
            Ok(Some(Printer { version: "v1" }))
        );
        assert_eq!(
            negotiate(Some("application/json;as=Table;v=v1beta1;g=meta.k8s.io")),
            Ok(Some(Printer { version: "v1beta1" }))
        );
        for plain in [
            None,
            Some(""),
            Some("application/json"),
            Some("*/*"),
            Some("application/vnd.kubernetes.protobuf, */*"),
            // Other conversions are not served: the next clause is.
            Some(
                "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json",
            ),
            // A lower quality comes later, whatever the order.
            Some("application/json;as=Table;v=v1;g=meta.k8s.io;q=0.5,application/json"),
        ] {
            assert_eq!(negotiate(plain), Ok(None), "{plain:?}");
        }
        assert!(negotiate(Some("application/json;as=Table;v=v2;g=meta.k8s.io")).is_err());
        assert!(negotiate(Some("text/html")).is_err());
    }

    #[test]
    fn include_object_is_validated() {
        let p = Printer { version: "v1" };
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "resourceVersion": "7"}, "status": {"phase": "Active"}});
        let t = p.object(res("namespaces"), &ns, None).unwrap();
        assert_eq!(t["metadata"]["resourceVersion"], "7");
        assert_eq!(t["rows"][0]["cells"][0], "default");
        assert_eq!(t["rows"][0]["cells"][1], "Active");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "default");
        let t = p.object(res("namespaces"), &ns, Some("Object")).unwrap();
        assert_eq!(t["rows"][0]["object"], ns);
        let t = p.object(res("namespaces"), &ns, Some("None")).unwrap();
        assert_eq!(t["rows"][0]["object"], Value::Null);
        assert_eq!(
            p.object(res("namespaces"), &ns, Some("foo")).unwrap_err(),
            "Unable to convert to Table as requested: includeObject: Invalid value: \"foo\": must be 'Metadata', 'Object', 'None', or empty"
        );
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Name", "Status", "Age"]);
        let watch = WatchObjects::new(Some(p), res("namespaces"), Some("None")).unwrap();
        let text = ns.to_string();
        let first: Value = serde_json::from_str(&watch.object(&text)).unwrap();
        let next: Value = serde_json::from_str(&watch.object(&text)).unwrap();
        assert_eq!(first["columnDefinitions"][0]["name"], "Name");
        assert_eq!(first["rows"][0]["object"], Value::Null);
        assert_eq!(next["columnDefinitions"], Value::Null);
        assert!(WatchObjects::new(Some(p), res("namespaces"), Some("x")).is_err());
        // Without a printer the stored text goes out as it is.
        let plain = WatchObjects::new(None, res("namespaces"), Some("x")).unwrap();
        assert!(matches!(plain.object(&text), Cow::Borrowed(_)));
    }

    #[test]
    fn every_served_resource_has_columns_matching_its_cells() {
        for r in super::super::resources::RESOURCES {
            let cols = columns(r);
            let n = cols.as_array().map_or(0, Vec::len);
            assert!(n >= 2, "{}", r.key());
            let cells = cells(r, &json!({}), now()).0;
            assert_eq!(cells.len(), n, "{}", r.key());
        }
    }

    #[test]
    fn durations_read_as_kubectls() {
        let s = 1_000_000_000i128;
        for (secs, want) in [
            (-5, "<invalid>"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60 * 5, "3h5m"),
            (9 * 3600, "9h"),
            (50 * 3600, "2d2h"),
            (10 * 86400, "10d"),
            (800 * 86400, "2y70d"),
            (3000 * 86400, "8y"),
        ] {
            assert_eq!(human_duration(secs * s), want, "{secs}");
        }
        assert_eq!(human_duration(-s - s / 2), "0s");
    }

    #[test]
    fn pod_status_follows_print_pod() {
        let base = |status: Value| {
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}],
                "initContainers": [{"name": "i"}]}, "status": status})
        };
        let status = |obj: Value| row("pods", obj)[2].as_str().unwrap().to_string();
        assert_eq!(status(base(json!({"phase": "Pending"}))), "Pending");
        assert_eq!(
            status(base(
                json!({"phase": "Pending", "initContainerStatuses": [{"name": "i", "state": {"waiting": {"reason": "PodInitializing"}}}]})
            )),
            "Init:0/1"
        );
        assert_eq!(
            status(base(
                json!({"phase": "Pending", "initContainerStatuses": [{"name": "i", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]})
            )),
            "Init:ImagePullBackOff"
        );
        assert_eq!(
            status(base(
                json!({"phase": "Pending", "initContainerStatuses": [{"name": "i", "state": {"terminated": {"exitCode": 2}}}]})
            )),
            "Init:ExitCode:2"
        );
        let running = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
            "initContainerStatuses": [{"name": "i", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}, "restartCount": 4}],
            "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 1, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]});
        let r = row("pods", base(running.clone()));
        assert_eq!(r[1], "1/2");
        assert_eq!(r[2], "CrashLoopBackOff");
        // Init containers' restarts count only while initialising.
        assert_eq!(r[3], 3);
        let mut completed = running.clone();
        completed["containerStatuses"][1]["state"] =
            json!({"terminated": {"exitCode": 0, "reason": "Completed"}});
        assert_eq!(status(base(completed.clone())), "Running");
        completed["conditions"] = json!([]);
        assert_eq!(status(base(completed)), "NotReady");
        let mut deleting = base(running.clone());
        deleting["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        assert_eq!(status(deleting.clone()), "Terminating");
        deleting["status"]["reason"] = json!("NodeLost");
        assert_eq!(status(deleting), "Unknown");
        let (cells, conditions) = cells(res("pods"), &base(json!({"phase": "Succeeded"})), now());
        assert_eq!(cells[2], "Succeeded");
        assert_eq!(conditions.unwrap()[0]["reason"], "Succeeded");
        assert_eq!(
            status(base(
                json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]})
            )),
            "SchedulingGated"
        );
    }

    #[test]
    fn pod_wide_columns_and_sidecars() {
        let p = json!({"metadata": {"name": "p", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"nodeName": "n1", "containers": [{"name": "a"}],
                "initContainers": [{"name": "s", "restartPolicy": "Always"}],
                "readinessGates": [{"conditionType": "x/one"}, {"conditionType": "x/two"}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.1.0.5"}],
                "conditions": [{"type": "x/one", "status": "True"}, {"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [{"name": "s", "started": true, "ready": true, "restartCount": 2, "state": {"running": {}}}],
                "containerStatuses": [{"name": "a", "ready": true, "restartCount": 1, "state": {"running": {}}}]}});
        let r = row("pods", p);
        assert_eq!(r[1], "2/2");
        assert_eq!(r[2], "Running");
        assert_eq!(r[3], 3);
        assert!(r[4].as_str().unwrap().ends_with('y') || r[4].as_str().unwrap().contains('y'));
        assert_eq!(
            r[5..],
            [
                json!("10.1.0.5"),
                json!("n1"),
                json!("<none>"),
                json!("1/2")
            ]
        );
    }

    #[test]
    fn node_status_roles_and_addresses() {
        let n = json!({"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/": "x", "kubernetes.io/role": "worker"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "False"}],
                "addresses": [{"type": "Hostname", "address": "h"}, {"type": "InternalIP", "address": "10.0.0.1"}],
                "nodeInfo": {"kubeletVersion": "v1.31.0", "osImage": "Debian"}}});
        assert_eq!(
            row("nodes", n),
            [
                json!("n1"),
                json!("NotReady,SchedulingDisabled"),
                json!("control-plane,worker"),
                json!("<unknown>"),
                json!("v1.31.0"),
                json!("10.0.0.1"),
                json!("<none>"),
                json!("Debian"),
                json!("<unknown>"),
                json!("<unknown>")
            ]
        );
        assert_eq!(
            row("nodes", json!({"metadata": {"name": "n"}}))[1..3],
            [json!("Unknown"), json!("<none>")]
        );
    }

    #[test]
    fn event_columns() {
        let e = json!({"metadata": {"name": "p.1"}, "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{c}"},
            "reason": "Started", "message": " Started container c\n", "type": "Normal",
            "source": {"component": "kubelet", "host": "n1"}, "count": 0});
        let r = row("events", e);
        assert_eq!(
            r[1..7],
            [
                json!("Normal"),
                json!("Started"),
                json!("pod/p"),
                json!("spec.containers{c}"),
                json!("kubelet, n1"),
                json!("Started container c")
            ]
        );
        assert_eq!(
            (r[0].clone(), r[7].clone(), r[8].clone()),
            (json!("<unknown>"), json!("<unknown>"), json!(1))
        );
        let series = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Node"}, "reportingComponent": "c", "reportingInstance": "i", "series": {"count": 4}});
        let r = row("events", series);
        assert_eq!(
            (r[3].clone(), r[5].clone(), r[8].clone()),
            (json!("node"), json!("c, i"), json!(5))
        );
    }

    #[test]
    fn other_kinds() {
        assert_eq!(
            row(
                "services",
                json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.9",
                "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 53, "protocol": "UDP"}], "selector": {"b": "2", "a": "1"}}})
            )[1..],
            [
                json!("NodePort"),
                json!("10.96.0.9"),
                json!("<none>"),
                json!("80:30080/TCP,53/UDP"),
                json!("<unknown>"),
                json!("a=1,b=2")
            ]
        );
        assert_eq!(
            row(
                "services",
                json!({"metadata": {"name": "s"}, "spec": {"type": "LoadBalancer", "externalIPs": ["1.2.3.4"]},
                "status": {"loadBalancer": {"ingress": [{"hostname": "lb"}, {"ip": "5.6.7.8"}]}}})
            )[2..4],
            [json!("<none>"), json!("5.6.7.8,lb,1.2.3.4")]
        );
        let ep = json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}], "ports": [{"port": 80}, {"port": 443}]}]});
        assert_eq!(
            row("endpoints", ep)[1],
            "10.0.0.1:80,[fd00::1]:80,10.0.0.1:443 + 1 more..."
        );
        assert_eq!(
            row("endpoints", json!({"metadata": {"name": "e"}}))[1],
            "<none>"
        );
        assert_eq!(
            row(
                "secrets",
                json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "", "b": ""}, "stringData": {"b": "", "c": ""}})
            )[1..3],
            [json!("Opaque"), json!(3)]
        );
        assert_eq!(
            row(
                "configmaps",
                json!({"metadata": {"name": "c"}, "data": {"a": ""}, "binaryData": {"b": ""}})
            )[1],
            2
        );
        assert_eq!(
            row(
                "serviceaccounts",
                json!({"metadata": {"name": "d"}, "secrets": [{"name": "t"}]})
            )[1],
            1
        );
        assert_eq!(
            row(
                "leases.coordination.k8s.io",
                json!({"metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1"}})
            )[1],
            "n1"
        );
        assert_eq!(
            row(
                "csinodes.storage.k8s.io",
                json!({"metadata": {"name": "n1"}, "spec": {"drivers": [{}, {}]}})
            )[1],
            2
        );
        assert_eq!(
            row(
                "csidrivers.storage.k8s.io",
                json!({"metadata": {"name": "d"}, "spec": {"podInfoOnMount": true, "volumeLifecycleModes": ["Persistent", "Ephemeral"]}})
            )[1..4],
            [json!(true), json!(true), json!("Persistent,Ephemeral")]
        );
        assert_eq!(
            row(
                "runtimeclasses.node.k8s.io",
                json!({"metadata": {"name": "r"}, "handler": "runc"})
            )[1],
            "runc"
        );
    }
}
