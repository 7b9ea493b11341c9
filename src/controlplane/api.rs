//! The HTTP API: discovery, and get, list, watch, create, update, patch and delete of the
//! served resources, with errors as metav1.Status objects.

// Helpers answer early with the finished response as their error: one per request, not a hot
// path worth boxing for.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::patch;
use super::resources::{RESOURCES, Resource, groups};
use super::selector::Selector;
use super::store::{Preconditions, Store, StoreError};
use crate::podsecurity;

pub const MAX_BODY: usize = 3 << 20;

pub const NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// A new API with the default namespaces in place.
pub fn router(store: Arc<Store>) -> Router {
    for ns in NAMESPACES {
        // Only fails when it already exists.
        let _ = store.create("namespaces", "", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}));
    }
    // kube-apiserver's own limit on a request body (3 MiB); larger ones get 413.
    Router::new()
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(store)
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn status(code: u16, reason: &str, message: &str, details: Option<(&str, &str)>) -> Response {
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    if let Some((kind, name)) = details {
        s["details"] = json!({"name": name, "kind": kind});
    }
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &s,
    )
}

fn store_error(e: StoreError, kind: &str, name: &str) -> Response {
    match e {
        StoreError::NotFound(m) => status(
            404,
            "NotFound",
            &format!("{m} not found"),
            Some((kind, name)),
        ),
        StoreError::AlreadyExists(m) => status(
            409,
            "AlreadyExists",
            &format!("{m} already exists"),
            Some((kind, name)),
        ),
        StoreError::Conflict(m) => status(409, "Conflict", &m, Some((kind, name))),
        StoreError::Invalid(m) => status(422, "Invalid", &m, Some((kind, name))),
        StoreError::Expired(m) => status(410, "Expired", &m, None),
    }
}

fn bad_request(m: &str) -> Response {
    status(400, "BadRequest", m, None)
}

/// Where a request points: a resource, maybe a namespace, name and subresource.
struct Target {
    res: &'static Resource,
    namespace: String,
    name: Option<String>,
    subresource: Option<String>,
}

/// `/api/v1/...` or `/apis/g/v/...` to a target, or a discovery document.
fn route(path: &str) -> Result<Target, Response> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api"] => {
            return Err(json_response(
                StatusCode::OK,
                &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
            ));
        }
        ["apis"] => return Err(json_response(StatusCode::OK, &group_list())),
        ["api", "v1"] => return Err(json_response(StatusCode::OK, &resource_list("", "v1"))),
        ["apis", g, v] if RESOURCES.iter().any(|r| r.group == *g && r.version == *v) => {
            return Err(json_response(StatusCode::OK, &resource_list(g, v)));
        }
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => {
            return Err(status(
                404,
                "NotFound",
                &format!("the server could not find the requested resource ({path})"),
                None,
            ));
        }
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, rest @ ..] => (
            ns.to_string(),
            std::iter::once(*plural)
                .chain(rest.iter().copied())
                .collect::<Vec<_>>(),
        ),
        ["namespaces", ns] => (String::new(), vec!["namespaces", ns]),
        other => (String::new(), other.to_vec()),
    };
    let not_found = || {
        status(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({path})"),
            None,
        )
    };
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return Err(not_found()),
    };
    let res = Resource::find(group, version, plural).ok_or_else(not_found)?;
    if !res.namespaced && !namespace.is_empty() {
        return Err(not_found());
    }
    if subresource
        .as_deref()
        .is_some_and(|s| s != "status" || !res.status)
    {
        return Err(not_found());
    }
    Ok(Target {
        res,
        namespace,
        name,
        subresource,
    })
}

fn group_list() -> Value {
    let gs: Vec<Value> = groups()
        .into_iter()
        .map(|g| json!({"name": g, "versions": [{"groupVersion": format!("{g}/v1"), "version": "v1"}], "preferredVersion": {"groupVersion": format!("{g}/v1"), "version": "v1"}}))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs})
}

fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resources.push(json!({"name": r.plural, "singularName": r.kind.to_lowercase(), "namespaced": r.namespaced, "kind": r.kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": r.short_names}));
        if !r.categories.is_empty()
            && let Some(last) = resources.last_mut()
        {
            last["categories"] = json!(r.categories);
        }
        if r.status {
            resources.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

async fn handle(
    State(store): State<Arc<Store>>,
    method: Method,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    match path {
        "/healthz" | "/livez" | "/readyz" => return (StatusCode::OK, "ok").into_response(),
        "/version" => {
            return json_response(
                StatusCode::OK,
                &json!({"major": "1", "minor": "31", "gitVersion": format!("v1.31.0-node-conformance.{}", env!("CARGO_PKG_VERSION")), "platform": format!("linux/{}", crate::runtime::image::oci_arch())}),
            );
        }
        _ => {}
    }
    if let Some(resp) = super::openapi::serve(path, &headers) {
        return resp;
    }
    let t = match route(path) {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let name = t.name.clone().unwrap_or_default();
    let kind = t.res.kind;
    let body_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let parse_body = || match body_type.as_str() {
        "application/yaml" => serde_saphyr::from_slice::<Value>(&body)
            .map_err(|e| bad_request(&format!("the body is not YAML: {e}"))),
        "" | "application/json" => serde_json::from_slice::<Value>(&body)
            .map_err(|e| bad_request(&format!("the body is not JSON: {e}"))),
        other => Err(status(
            415,
            "UnsupportedMediaType",
            &format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {other:?}; a kubelet needs contentType: application/json)"
            ),
            None,
        )),
    };
    match (method, t.name.is_some()) {
        (Method::GET, false) if q.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            watch(&store, &t, &q)
        }
        (Method::GET, false) => list(&store, &t, &q),
        (Method::GET, true) => match store.get(&t.res.key(), &t.namespace, &name) {
            Ok(o) => json_response(StatusCode::OK, &o),
            Err(e) => store_error(e, kind, &name),
        },
        (Method::POST, false) => {
            let mut obj = match parse_body() {
                Ok(o) => o,
                Err(r) => return r,
            };
            stamp(&mut obj, t.res);
            let mut warnings = Vec::new();
            if t.res.plural == "pods" {
                pod_defaults(&mut obj);
                // As kube-apiserver: a new pod's status is the server's, not the client's.
                if let Some(o) = obj.as_object_mut() {
                    o.insert("status".into(), json!({"phase": "Pending"}));
                }
                match admit(&store, &t.namespace, &obj) {
                    Ok(w) => warnings = w,
                    Err(resp) => return resp,
                }
            }
            match store.create(&t.res.key(), &t.namespace, obj) {
                Ok(o) => {
                    let mut resp = json_response(StatusCode::CREATED, &o);
                    for w in warnings {
                        if let Ok(v) = header::HeaderValue::from_str(&format!(
                            "299 - \"{}\"",
                            w.replace('"', "'")
                        )) {
                            resp.headers_mut().append(header::WARNING, v);
                        }
                    }
                    resp
                }
                Err(e) => store_error(e, kind, &name),
            }
        }
        (Method::PUT, true) => {
            let obj = match parse_body() {
                Ok(o) => o,
                Err(r) => return r,
            };
            let current = store.get(&t.res.key(), &t.namespace, &name).ok();
            write(&store, &t, obj, current)
        }
        (Method::PATCH, true) => {
            let current = match store.get(&t.res.key(), &t.namespace, &name) {
                Ok(o) => o,
                Err(e) => return store_error(e, kind, &name),
            };
            let p = match serde_json::from_slice::<Value>(&body) {
                Ok(o) => o,
                Err(e) => return bad_request(&format!("the patch is not JSON: {e}")),
            };
            let mut next = current.clone();
            let applied = match body_type.as_str() {
                "application/merge-patch+json" => {
                    json_patch::merge(&mut next, &p);
                    Ok(())
                }
                "application/strategic-merge-patch+json" => {
                    let r = t.res;
                    if let Err(e) = patch::apply_to_kind(r.group, r.version, r.kind, &mut next, &p)
                    {
                        let code = StatusCode::from_u16(e.code)
                            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                        return json_response(code, &e.status());
                    }
                    Ok(())
                }
                "application/json-patch+json" => serde_json::from_value::<json_patch::Patch>(p)
                    .map_err(|e| e.to_string())
                    .and_then(|ops| json_patch::patch(&mut next, &ops).map_err(|e| e.to_string())),
                other => {
                    return status(
                        415,
                        "UnsupportedMediaType",
                        &format!(
                            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {other:?})"
                        ),
                        None,
                    );
                }
            };
            if let Err(e) = applied {
                return status(422, "Invalid", &e, Some((kind, &name)));
            }
            // A patch does not carry the version it was made against: it applies to the latest.
            if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert(
                    "resourceVersion".into(),
                    current["metadata"]["resourceVersion"].clone(),
                );
            }
            write(&store, &t, next, Some(current))
        }
        (Method::DELETE, true) => delete(&store, &t, &q, &body),
        (m, _) => status(
            405,
            "MethodNotAllowed",
            &format!("the server does not allow this method on the requested resource ({m})"),
            None,
        ),
    }
}

/// Pod Security Admission from the namespace's `pod-security.kubernetes.io/<mode>` labels:
/// enforce rejects (403), warn answers with warnings, audit logs.
fn admit(store: &Store, namespace: &str, obj: &Value) -> Result<Vec<String>, Response> {
    let Ok(ns) = store.get("namespaces", "", namespace) else {
        return Err(status(
            404,
            "NotFound",
            &format!("namespaces \"{namespace}\" not found"),
            Some(("Namespace", namespace)),
        ));
    };
    let label = |mode: &str| {
        ns.pointer("/metadata/labels")
            .and_then(|l| l.get(format!("pod-security.kubernetes.io/{mode}")))
            .and_then(Value::as_str)
            .and_then(podsecurity::Level::parse)
    };
    let (enforce, warn, audit) = (label("enforce"), label("warn"), label("audit"));
    if enforce.is_none() && warn.is_none() && audit.is_none() {
        return Ok(Vec::new());
    }
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(obj.clone())
        .map_err(|e| status(400, "BadRequest", &format!("not a Pod: {e}"), None))?;
    let violations = podsecurity::evaluate(&pod);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let summary = |level: podsecurity::Level| {
        let v: Vec<String> = podsecurity::violations_at(&violations, level)
            .iter()
            .map(|v| format!("{} ({})", v.control, v.path))
            .collect();
        (!v.is_empty())
            .then(|| format!("violates PodSecurity \"{level}:latest\": {}", v.join(", ")))
    };
    if let Some(msg) = enforce.and_then(summary) {
        return Err(status(
            403,
            "Forbidden",
            &format!("pods \"{name}\" is forbidden: {msg}"),
            Some(("Pod", name)),
        ));
    }
    if let Some(msg) = audit.and_then(summary) {
        eprintln!("audit: namespace {namespace}: pod {name} {msg}");
    }
    Ok(warn
        .and_then(summary)
        .map(|m| format!("would violate: {m}"))
        .into_iter()
        .collect())
}

/// apiVersion and kind, as every stored object and watch event carries them.
fn stamp(obj: &mut Value, res: &Resource) {
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), json!(res.api_version()));
        o.insert("kind".into(), json!(res.kind));
    }
}

/// The defaults the kubelet expects the API server to have filled in a pod.
fn pod_defaults(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for (k, v) in [
        ("dnsPolicy", json!("ClusterFirst")),
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("schedulerName", json!("default-scheduler")),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
        ("priority", json!(0)),
    ] {
        spec.entry(k).or_insert(v);
    }
    for list in ["containers", "initContainers"] {
        for c in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(c) = c.as_object_mut() else { continue };
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            let last = image.rsplit('/').next().unwrap_or(image);
            let pull = if !last.contains(':') || image.ends_with(":latest") {
                "Always"
            } else {
                "IfNotPresent"
            };
            c.entry("imagePullPolicy").or_insert(json!(pull));
            c.entry("terminationMessagePath")
                .or_insert(json!("/dev/termination-log"));
            c.entry("terminationMessagePolicy").or_insert(json!("File"));
        }
    }
    if let Some(p) = pod.as_object_mut() {
        p.entry("status").or_insert(json!({"phase": "Pending"}));
    }
}

/// PUT or the result of a PATCH: a /status write keeps the spec, a main write keeps the status.
/// A PUT or a patched object: `current` is the stored object it replaces, if any.
fn write(store: &Store, t: &Target, mut obj: Value, current: Option<Value>) -> Response {
    let name = t.name.clone().unwrap_or_default();
    // A uid in the body is a precondition: the kubelet's status patches carry one so they
    // never land on a pod recreated under the same name.
    let uid_of = |o: &Value| {
        o.pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if let (Some(want), Some(have)) = (uid_of(&obj), current.as_ref().and_then(uid_of))
        && want != have
    {
        return status(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {want}, UID in object meta: {have}",
                t.res.plural
            ),
            Some((t.res.kind, &name)),
        );
    }
    if t.res.status
        && let Some(current) = current
    {
        let keep = if t.subresource.is_some() {
            "spec"
        } else {
            "status"
        };
        if let Some(o) = obj.as_object_mut() {
            match current.get(keep) {
                Some(v) => o.insert(keep.into(), v.clone()),
                None => o.remove(keep),
            };
        }
    }
    stamp(&mut obj, t.res);
    match store.update(&t.res.key(), &t.namespace, &name, obj) {
        Ok(o) => json_response(StatusCode::OK, &o),
        Err(e) => store_error(e, t.res.kind, &name),
    }
}

fn list(store: &Store, t: &Target, q: &HashMap<String, String>) -> Response {
    let sel = match Selector::parse(
        q.get("labelSelector").map(String::as_str),
        q.get("fieldSelector").map(String::as_str),
    ) {
        Ok(s) => s,
        Err(e) => return bad_request(&e),
    };
    let ns = (!t.namespace.is_empty()).then_some(t.namespace.as_str());
    let (items, rv) = store.list(&t.res.key(), ns, &sel);
    // Lists come from the current state. A version the client names must not be newer than
    // it; one it asks for exactly must be it, since no older snapshot is kept.
    let asked = q
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0");
    if let Some(asked) = asked {
        let Ok(asked) = asked.parse::<u64>() else {
            return bad_request("resourceVersion: not a number");
        };
        if asked > rv {
            return status(
                504,
                "Timeout",
                &format!("Too large resource version: {asked}, current: {rv}"),
                None,
            );
        }
        if asked < rv && q.get("resourceVersionMatch").is_some_and(|m| m == "Exact") {
            return status(
                410,
                "Expired",
                &format!("too old resource version: {asked} ({rv})"),
                None,
            );
        }
    }
    // The stored text goes out as it is: parsing thousands of objects to print them again
    // would be most of the work.
    let head = json!({"kind": format!("{}List", t.res.kind), "apiVersion": t.res.api_version(), "metadata": {"resourceVersion": rv.to_string()}}).to_string();
    let mut body =
        String::with_capacity(head.len() + items.iter().map(|i| i.len() + 1).sum::<usize>() + 16);
    body.push_str(&head[..head.len() - 1]);
    body.push_str(",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(item);
    }
    body.push_str("]}");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

fn delete(store: &Store, t: &Target, q: &HashMap<String, String>, body: &Bytes) -> Response {
    let name = t.name.clone().unwrap_or_default();
    // As kube-apiserver's NamespaceLifecycle admission: the system namespaces stay.
    if t.res.plural == "namespaces" && NAMESPACES.contains(&name.as_str()) {
        return status(
            403,
            "Forbidden",
            &format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
            Some(("Namespace", &name)),
        );
    }
    let opts: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).unwrap_or(json!({}))
    };
    let pre = Preconditions {
        uid: opts
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        resource_version: opts
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    let key = t.res.key();
    let current = match store.get(&key, &t.namespace, &name) {
        Ok(o) => o,
        Err(e) => return store_error(e, t.res.kind, &name),
    };
    // A pod on a node is deleted gracefully: marked first, removed when its kubelet (or a
    // grace-0 delete) says so.
    if t.res.plural == "pods"
        && current
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty())
    {
        let grace = q
            .get("gracePeriodSeconds")
            .and_then(|g| g.parse::<i64>().ok())
            .or_else(|| opts.get("gracePeriodSeconds").and_then(Value::as_i64))
            .or_else(|| {
                current
                    .pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(30);
        if grace > 0 {
            if current.pointer("/metadata/deletionTimestamp").is_some() {
                return json_response(StatusCode::OK, &current);
            }
            let mut marked = current.clone();
            marked["metadata"]["deletionTimestamp"] = json!(
                (chrono::Utc::now() + chrono::Duration::seconds(grace))
                    .format("%Y-%m-%dT%H:%M:%SZ")
                    .to_string()
            );
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            return match store.update(&key, &t.namespace, &name, marked) {
                Ok(o) => json_response(StatusCode::OK, &o),
                Err(e) => store_error(e, t.res.kind, &name),
            };
        }
    }
    match store.delete(&key, &t.namespace, &name, &pre) {
        Ok(o) => json_response(StatusCode::OK, &o),
        Err(e) => store_error(e, t.res.kind, &name),
    }
}

/// A chunked stream of watch events, one JSON object per line.
fn watch(store: &Arc<Store>, t: &Target, q: &HashMap<String, String>) -> Response {
    let sel = match Selector::parse(
        q.get("labelSelector").map(String::as_str),
        q.get("fieldSelector").map(String::as_str),
    ) {
        Ok(s) => s,
        Err(e) => return bad_request(&e),
    };
    let since = q
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
        .map(|v| v.parse::<u64>());
    let since = match since {
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return bad_request("resourceVersion: not a number"),
        None => None,
    };
    let (key, ns) = (t.res.key(), t.namespace.clone());
    let ns_filter = (!ns.is_empty()).then_some(ns.as_str());
    // From now: the current objects as ADDED, then changes.
    let (initial, since) = match since {
        Some(v) => (Vec::new(), Some(v)),
        None => {
            let (items, rv) = store.list(&key, ns_filter, &sel);
            (
                items
                    .iter()
                    .map(|o| event_line("ADDED", o))
                    .collect::<Vec<_>>(),
                Some(rv),
            )
        }
    };
    let (backlog, mut rx) = match store.watch(since) {
        Ok(w) => w,
        Err(e) => return store_error(e, t.res.kind, ""),
    };
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let res = t.res;
    let store = Arc::clone(store);
    let relevant = move |e: &super::store::Event| {
        e.resource == key && (ns.is_empty() || e.namespace == ns) && sel.matches_stored(&e.object)
    };
    let first: Vec<_> = initial
        .into_iter()
        .chain(
            backlog
                .iter()
                .filter(|e| relevant(e))
                .map(|e| event_line(e.kind.as_str(), &e.object.json)),
        )
        .collect();
    let closed = store.closed();
    let live = async_stream(move |yield_| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        tokio::pin!(closed);
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                () = &mut closed => return,
                _ = tick.tick(), if bookmarks => {
                    let bookmark = json!({"type": "BOOKMARK", "object": {"kind": res.kind, "apiVersion": res.api_version(),
                        "metadata": {"resourceVersion": store.resource_version().to_string()}}});
                    if yield_(value_line(&bookmark)).await.is_err() { return; }
                }
                got = rx.recv() => match got {
                    Ok(e) if relevant(&e) => {
                        if yield_(event_line(e.kind.as_str(), &e.object.json)).await.is_err() { return; }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let _ = yield_(value_line(&json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired", "code": 410, "message": "the watch fell behind; relist"}}))).await;
                        return;
                    }
                    Err(_) => return,
                },
            }
        }
    });
    let stream = futures_util::stream::iter(first)
        .chain(live)
        .map(Ok::<Bytes, std::convert::Infallible>);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| status(500, "InternalError", "cannot start the watch", None))
}

/// One watch event, a line of JSON, with the stored object's text as it is.
fn event_line(kind: &str, object: &str) -> Bytes {
    Bytes::from(format!("{{\"type\":\"{kind}\",\"object\":{object}}}\n"))
}

fn value_line(v: &Value) -> Bytes {
    Bytes::from(format!("{v}\n"))
}

/// A stream fed by an async producer through a bounded channel.
fn async_stream<F, Fut>(producer: F) -> impl futures_util::Stream<Item = Bytes>
where
    F: FnOnce(
        Box<dyn Fn(Bytes) -> futures_util::future::BoxFuture<'static, Result<(), ()>> + Send + Sync>,
    ) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let send = Box::new(move |v: Bytes| {
        let tx = tx.clone();
        let f: futures_util::future::BoxFuture<'static, Result<(), ()>> =
            Box::pin(async move { tx.send(v).await.map_err(|_| ()) });
        f
    });
    tokio::spawn(producer(send));
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}
