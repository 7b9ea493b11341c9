//! The HTTP API: discovery, and get, list, watch, create, update, patch and delete of the
//! served resources, with errors as metav1.Status objects.

// Helpers answer early with the finished response as their error: one per request, not a hot
// path worth boxing for.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::patch;
use super::resources::{RESOURCES, Resource, groups};
use super::selector::Selector;
use super::store::{Store, StoreError};
use super::{delete, namespaces, query, watch};
use crate::podsecurity;

pub const MAX_BODY: usize = 3 << 20;

pub const NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// A new API with the default namespaces in place.
pub fn router(store: Arc<Store>) -> Router {
    for ns in NAMESPACES {
        // Only fails when it already exists.
        let _ = store.create("namespaces", "", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}), false);
    }
    // kube-apiserver's own limit on a request body (3 MiB); larger ones get 413.
    Router::new()
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(store)
}

pub(super) fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub(super) fn status(
    code: u16,
    reason: &str,
    message: &str,
    details: Option<(&str, &str)>,
) -> Response {
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

/// A store error about `name` of `res`, worded as kube-apiserver words it (details name the
/// resource, not the kind, except for Invalid).
fn store_error(e: StoreError, res: &Resource, name: &str) -> Response {
    match e {
        StoreError::Invalid(m) => status(422, "Invalid", &m, Some((res.kind, name))),
        e => answer_status(&delete::store_status(e, res, name)),
    }
}

fn bad_request(m: &str) -> Response {
    status(400, "BadRequest", m, None)
}

/// A Status built elsewhere, answered with its code.
fn answer_status(st: &Value) -> Response {
    let code = st
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, st)
}

/// `dryRun` of a write: whether it is one, or the 422 of a value other than `All`.
fn dry_run(uri: &Uri, options_kind: &str) -> Result<bool, Response> {
    let values = query::all_values(uri.query(), "dryRun");
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    query::dry_run(&values, options_kind).map_err(|st| answer_status(&st))
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
        // A namespace's own subresource, not a resource in it.
        ["namespaces", ns, "status"] => (String::new(), vec!["namespaces", ns, "status"]),
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
        (Method::GET, false) if query::flag(&q, "watch") == Some(true) => {
            watch::serve(&store, t.res, &t.namespace, &q).await
        }
        (Method::GET, false) => list(&store, &t, &q).await,
        (Method::GET, true) => match store.get(&t.res.key(), &t.namespace, &name) {
            Ok(o) => json_response(StatusCode::OK, &o),
            Err(e) => store_error(e, t.res, &name),
        },
        (Method::POST, false) => {
            let dry = match dry_run(&uri, "CreateOptions") {
                Ok(d) => d,
                Err(r) => return r,
            };
            let mut obj = match parse_body() {
                Ok(o) => o,
                Err(r) => return r,
            };
            stamp(&mut obj, t.res);
            if let Err(st) = namespaces::admit_create(&store, t.res, &t.namespace, &obj) {
                return answer_status(&st);
            }
            if t.res.plural == "namespaces" {
                namespaces::prepare_create(&mut obj);
            }
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
            let created = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            match store.create(&t.res.key(), &t.namespace, obj, dry) {
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
                Err(e) => store_error(e, t.res, &created),
            }
        }
        (Method::PUT, true) => {
            let dry = match dry_run(&uri, "UpdateOptions") {
                Ok(d) => d,
                Err(r) => return r,
            };
            let obj = match parse_body() {
                Ok(o) => o,
                Err(r) => return r,
            };
            let current = store.get(&t.res.key(), &t.namespace, &name).ok();
            write(&store, &t, obj, current, dry)
        }
        (Method::PATCH, true) => {
            let dry = match dry_run(&uri, "PatchOptions") {
                Ok(d) => d,
                Err(r) => return r,
            };
            let current = match store.get(&t.res.key(), &t.namespace, &name) {
                Ok(o) => o,
                Err(e) => return store_error(e, t.res, &name),
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
                "application/strategic-merge-patch+json" => patch::strategic(&mut next, &p),
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
            write(&store, &t, next, Some(current), dry)
        }
        (Method::DELETE, true) => {
            let dry = query::all_values(uri.query(), "dryRun");
            let dry: Vec<&str> = dry.iter().map(String::as_str).collect();
            let answer = delete::options(&q, &dry, &body)
                .and_then(|o| delete::delete(&store, t.res, &t.namespace, &name, &o));
            match answer {
                Ok(body) => json_response(StatusCode::OK, &body),
                Err(st) => answer_status(&st),
            }
        }
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
/// A PUT or a patched object: `current` is the stored object it replaces, if any. A dry run
/// answers the same and keeps nothing.
fn write(store: &Store, t: &Target, mut obj: Value, current: Option<Value>, dry: bool) -> Response {
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
    if let Some(current) = &current {
        delete::keep_deletion_marks(current, &mut obj);
        if t.res.plural == "namespaces"
            && let Err(st) = namespaces::prepare_update(current, &mut obj, t.subresource.is_some())
        {
            return answer_status(&st);
        }
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
    match store.update(&t.res.key(), &t.namespace, &name, obj, dry) {
        Ok(o) => json_response(StatusCode::OK, &o),
        Err(e) => store_error(e, t.res, &name),
    }
}

async fn list(store: &Store, t: &Target, q: &HashMap<String, String>) -> Response {
    for number in ["limit", "timeoutSeconds"] {
        if let Err(e) = query::int64(q, number) {
            return bad_request(&e.0);
        }
    }
    let sel = match Selector::parse(
        q.get("labelSelector").map(String::as_str),
        q.get("fieldSelector").map(String::as_str),
    ) {
        Ok(s) => s,
        Err(e) => return bad_request(&e),
    };
    let errs = query::list_options_errors(q, false);
    if !errs.is_empty() {
        return answer_status(&query::list_options_status(&errs));
    }
    let asked = match query::resource_version(q.get("resourceVersion").map_or("", String::as_str)) {
        Ok(v) => v,
        Err(e) => return answer_status(&query::bad_resource_version(&e)),
    };
    // Lists come from the current state. A version the client names that the store has not
    // reached is waited for a while, as the watch cache waits; one asked for exactly must be
    // the current one, since no older snapshot is kept.
    if let Some(asked) = asked
        && !store.reached(asked, watch::TOO_LARGE_WAIT).await
    {
        return answer_status(&watch::too_large(asked, store.resource_version()));
    }
    let ns = (!t.namespace.is_empty()).then_some(t.namespace.as_str());
    let (items, rv) = store.list(&t.res.key(), ns, &sel);
    if let Some(asked) = asked
        && asked < rv
        && q.get("resourceVersionMatch").is_some_and(|m| m == "Exact")
    {
        return status(
            410,
            "Expired",
            &format!("too old resource version: {asked} ({rv})"),
            None,
        );
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
