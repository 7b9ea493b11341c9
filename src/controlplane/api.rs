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

use super::defaults;
use super::patch;
use super::resources::{RESOURCES, Resource, groups};
use super::selector::Selector;
use super::store::{Preconditions, Store, StoreError};
use super::validation;
use crate::podsecurity;

pub const MAX_BODY: usize = 3 << 20;

pub const NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// A new API with the default namespaces in place.
pub fn router(store: Arc<Store>) -> Router {
    for ns in NAMESPACES {
        // Only fails when it already exists.
        let _ = store.create("namespaces", "", json!({"metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}));
    }
    // kube-apiserver's own limit on a request body (3 MiB); larger ones get 413.
    Router::new()
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(store)
}

/// A stored object as a single-object answer carries it: with its apiVersion and kind.
fn object_response(code: StatusCode, res: &Resource, mut obj: Value) -> Response {
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), json!(res.api_version()));
        o.insert("kind".into(), json!(res.kind));
    }
    json_response(code, &obj)
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
    status_with_causes(code, reason, message, details, &[])
}

/// A metav1.Status as kube-apiserver writes it: `details.kind` is the resource (`pods`) for
/// lookups and conflicts, the kind (`Pod`) for validation errors; `group` outside the core
/// group; each cause with its reason, field and message.
fn status_with_causes(
    code: u16,
    reason: &str,
    message: &str,
    details: Option<(&str, &str)>,
    causes: &[validation::Cause],
) -> Response {
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    if reason.is_empty()
        && let Some(o) = s.as_object_mut()
    {
        o.remove("reason");
    }
    if let Some((kind, name)) = details {
        let mut d = serde_json::Map::new();
        if !name.is_empty() {
            d.insert("name".into(), json!(name));
        }
        if matches!(kind, "DeleteOptions" | "ListOptions" | "PatchOptions") {
            d.insert("group".into(), json!("meta.k8s.io"));
        }
        match RESOURCES
            .iter()
            .find(|r| r.kind == kind || r.plural == kind)
        {
            Some(r) => {
                if !r.group.is_empty() {
                    d.insert("group".into(), json!(r.group));
                }
                let shown = if code == 422 { r.kind } else { r.plural };
                d.insert("kind".into(), json!(shown));
            }
            None => {
                d.insert("kind".into(), json!(kind));
            }
        }
        if !causes.is_empty() {
            d.insert(
                "causes".into(),
                causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect(),
            );
        }
        s["details"] = Value::Object(d);
    }
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &s,
    )
}

/// A failure whose `details.kind` is the kind as given (rest.BeforeDelete's precondition
/// conflicts name the Kind where other lookups name the resource).
fn status_exact_kind(
    code: u16,
    reason: &str,
    message: &str,
    details: Option<(&str, &str)>,
) -> Response {
    let mut resp = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    if let Some((kind, name)) = details {
        resp["details"] = json!({"name": name, "kind": kind});
        if let Some(r) = RESOURCES.iter().find(|r| r.kind == kind)
            && !r.group.is_empty()
        {
            resp["details"]["group"] = json!(r.group);
        }
    }
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &resp,
    )
}

/// A 422 Invalid answer listing every cause, with kube-apiserver's message:
/// `Pod "x" is invalid: [spec.containers: Required value, ...]`.
fn invalid(kind: &str, name: &str, causes: &[validation::Cause]) -> Response {
    let listed: Vec<String> = causes.iter().map(validation::Cause::to_string).collect();
    let joined = if listed.len() == 1 {
        listed[0].clone()
    } else {
        format!("[{}]", listed.join(", "))
    };
    status_with_causes(
        422,
        "Invalid",
        &format!("{kind} \"{name}\" is invalid: {joined}"),
        Some((kind, name)),
        causes,
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
        ["apis", g, v, rest @ ..] if RESOURCES.iter().any(|r| r.group == *g && r.version == *v) => {
            (*g, *v, rest)
        }
        // A group-version nothing serves falls through to the mux's plain 404.
        ["apis", ..] => {
            return Err((
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "404 page not found\n",
            )
                .into_response());
        }
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
        (Method::GET, false) if q.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            watch(&store, &t, &q)
        }
        (Method::GET, false) => list(&store, &t, &q),
        (Method::GET, true) => match store.get(&t.res.key(), &t.namespace, &name) {
            Ok(o) => object_response(StatusCode::OK, t.res, o),
            Err(e) => store_error(e, kind, &name),
        },
        (Method::POST, false) => match parse_body() {
            Ok(obj) => create(&store, &t, obj),
            Err(r) => r,
        },
        (Method::PUT, true) => {
            let obj = match parse_body() {
                Ok(o) => o,
                Err(r) => return r,
            };
            let current = store.get(&t.res.key(), &t.namespace, &name).ok();
            write(&store, &t, obj, current, true)
        }
        (Method::PATCH, true) => {
            const PATCH_TYPES: &[&str] = &[
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
                "application/json-patch+json",
                "application/apply-patch+yaml",
            ];
            if !PATCH_TYPES.contains(&body_type.as_str()) {
                return status(
                    415,
                    "UnsupportedMediaType",
                    &format!(
                        "the body of the request was in an unknown format - accepted media types include: {} (got {body_type:?})",
                        PATCH_TYPES.join(", ")
                    ),
                    None,
                );
            }
            if body_type == "application/apply-patch+yaml" {
                return apply_patch(&store, &t, &q, &body);
            }
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
                "application/strategic-merge-patch+json" => patch::strategic(&mut next, &p),
                "application/json-patch+json" => {
                    let ops = match serde_json::from_value::<json_patch::Patch>(p) {
                        Ok(ops) => ops,
                        Err(e) => {
                            return bad_request(&format!(
                                "the JSON patch is not a list of operations: {e}"
                            ));
                        }
                    };
                    json_patch::patch(&mut next, &ops).map_err(|e| e.to_string())
                }
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
            // A patch that does not apply is 422 without details, as the patcher answers.
            if let Err(e) = applied {
                return status(422, "Invalid", &e, None);
            }
            // A patch does not carry the version it was made against: it applies to the latest.
            if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert(
                    "resourceVersion".into(),
                    current["metadata"]["resourceVersion"].clone(),
                );
            }
            write(&store, &t, next, Some(current), false)
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

/// POST: decode with defaults, the name and namespace checked against the URL, what a create
/// sets (PrepareForCreate), a name from generateName, validation, admission, then the store.
fn create(store: &Store, t: &Target, obj: Value) -> Response {
    let kind = t.res.kind;
    let mut obj = match decode(t.res, obj) {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Err(r) = check_identity(t, &obj) {
        return r;
    }
    defaults::prepare_for_create(t.res, &mut obj);
    generate_name(&mut obj);
    let name = obj_name(&obj).to_string();
    let causes = validation::validate(t.res, &obj, None, false);
    if !causes.is_empty() {
        return invalid(kind, &name, &causes);
    }
    let mut warnings = Vec::new();
    if t.res.plural == "pods" {
        match admit(store, &t.namespace, &obj) {
            Ok(w) => warnings = w,
            Err(resp) => return resp,
        }
    }
    match store.create(&t.res.key(), &t.namespace, obj) {
        Ok(o) => {
            let mut resp = object_response(StatusCode::CREATED, t.res, o);
            for w in warnings {
                if let Ok(v) =
                    header::HeaderValue::from_str(&format!("299 - \"{}\"", w.replace('"', "'")))
                {
                    resp.headers_mut().append(header::WARNING, v);
                }
            }
            resp
        }
        Err(e) => store_error(e, kind, &name),
    }
}

/// Server-side apply (`application/apply-patch+yaml`): the applied configuration creates the
/// object when it is missing, else it is merged into the stored object by the type's merge
/// rules, as a single field manager's apply does. Field ownership is not tracked: a field
/// dropped from a later configuration stays, and no conflict between managers is reported.
fn apply_patch(store: &Store, t: &Target, q: &HashMap<String, String>, body: &Bytes) -> Response {
    let name = t.name.clone().unwrap_or_default();
    if q.get("fieldManager").is_none_or(String::is_empty) {
        let causes = [validation::Cause {
            reason: "FieldValueRequired",
            field: "fieldManager".into(),
            message: "Required value: is required for apply patch".into(),
        }];
        return status_with_causes(
            422,
            "Invalid",
            &format!("PatchOptions.meta.k8s.io \"\" is invalid: {}", causes[0]),
            Some(("PatchOptions", "")),
            &causes,
        );
    }
    let config = match serde_saphyr::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return bad_request("the apply patch is not an object"),
        Err(e) => return bad_request(&format!("error decoding YAML: {e}")),
    };
    match store.get(&t.res.key(), &t.namespace, &name) {
        Err(StoreError::NotFound(_)) => create(store, t, config),
        Err(e) => store_error(e, t.res.kind, &name),
        Ok(current) => {
            let mut next = current.clone();
            if let Err(e) = patch::strategic(&mut next, &config) {
                return status(422, "Invalid", &e, Some((t.res.kind, &name)));
            }
            if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert(
                    "resourceVersion".into(),
                    current["metadata"]["resourceVersion"].clone(),
                );
            }
            write(store, t, next, Some(current), false)
        }
    }
}

/// Pod Security Admission from the namespace's `pod-security.kubernetes.io/<mode>` and
/// `<mode>-version` labels (version default `latest`), as upstream's admission: enforce rejects
/// (403, `violates PodSecurity "restricted:v1.30": ...`), audit logs, warn answers with
/// `would violate PodSecurity "...": ...` unless the request is rejected.
fn admit(store: &Store, namespace: &str, obj: &Value) -> Result<Vec<String>, Response> {
    let Ok(ns) = store.get("namespaces", "", namespace) else {
        return Err(status(
            404,
            "NotFound",
            &format!("namespaces \"{namespace}\" not found"),
            Some(("Namespace", namespace)),
        ));
    };
    let labels: Option<std::collections::BTreeMap<String, String>> = ns
        .pointer("/metadata/labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok());
    let policies = podsecurity::namespace_policy(labels.as_ref());
    if policies
        .iter()
        .all(|(_, p)| p.level == podsecurity::Level::Privileged)
    {
        return Ok(Vec::new());
    }
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(obj.clone())
        .map_err(|e| status(400, "BadRequest", &format!("not a Pod: {e}"), None))?;
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut warnings = Vec::new();
    for (mode, policy) in policies {
        let e = podsecurity::evaluate_at(&pod, policy.level, policy.version);
        if e.allowed() {
            continue;
        }
        let detail = e.forbidden_detail();
        match mode {
            "enforce" => {
                return Err(status(
                    403,
                    "Forbidden",
                    &format!(
                        "pods \"{name}\" is forbidden: violates PodSecurity \"{policy}\": {detail}"
                    ),
                    Some(("Pod", name)),
                ));
            }
            "audit" => eprintln!(
                "audit: namespace {namespace}: pod {name} violates PodSecurity \"{policy}\": {detail}"
            ),
            _ => warnings.push(format!("would violate PodSecurity \"{policy}\": {detail}")),
        }
    }
    Ok(warnings)
}

/// The name in a body, for messages.
fn obj_name(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A body's name and namespace must agree with the URL's (400 BadRequest otherwise, as
/// kube-apiserver's handlers check before anything else); an unset namespace takes the URL's.
fn check_identity(t: &Target, obj: &Value) -> Result<(), Response> {
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if t.res.namespaced && !ns.is_empty() && ns != t.namespace {
        return Err(bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if let Some(url_name) = &t.name {
        let name = obj_name(obj);
        if name != url_name {
            return Err(bad_request(&format!(
                "the name of the object ({name}) does not match the name on the URL ({url_name})"
            )));
        }
    }
    Ok(())
}

/// A name from `metadata.generateName`: the prefix and five characters from the alphabet
/// k8s.io/apiserver's names.SimpleNameGenerator uses, when no name is given.
fn generate_name(obj: &mut Value) {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let has_name = meta
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let prefix = meta
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if has_name || prefix.is_empty() {
        return;
    }
    let random = uuid::Uuid::new_v4();
    let suffix: String = random
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    // MaxGeneratedNameLength: the prefix is cut so the whole name stays within 63 characters.
    let cut: String = prefix.chars().take(58).collect();
    meta.insert("name".into(), json!(format!("{cut}{suffix}")));
}

/// The body of a write as kube-apiserver decodes it: the kind's type (400 when a field has
/// the wrong type), then its defaults.
fn decode(res: &'static Resource, obj: Value) -> Result<Value, Response> {
    // A body of another kind or group-version is not converted (400, as the codec answers).
    let field = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or_default();
    let (api_version, body_kind) = (field("apiVersion"), field("kind"));
    if !body_kind.is_empty() && body_kind != res.kind {
        return Err(bad_request(&format!(
            "{body_kind} in version \"{}\" cannot be handled as a {}: converting ({}.{body_kind}) to ({}.{}): unknown conversion",
            res.version, res.kind, res.version, res.group, res.kind
        )));
    }
    if !api_version.is_empty() && api_version != res.api_version() {
        return Err(bad_request(&format!(
            "{} in version \"{}\" cannot be handled as a {}: no kind \"{}\" is registered for version \"{api_version}\"",
            res.kind, res.version, res.kind, res.kind
        )));
    }
    let obj = defaults::decode(res, obj).map_err(|e| {
        bad_request(&format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            res.kind, res.version, res.kind
        ))
    })?;
    Ok(obj)
}

/// PUT or the result of a PATCH: a /status write keeps the spec, a main write keeps the status.
/// A PUT or a patched object: `current` is the stored object it replaces, if any.
fn write(store: &Store, t: &Target, mut obj: Value, current: Option<Value>, put: bool) -> Response {
    let name = t.name.clone().unwrap_or_default();
    if let Err(r) = check_identity(t, &obj) {
        return r;
    }
    // A uid in the body of a PUT is a precondition (rest.DefaultUpdatedObjectInfo); in a
    // patch it is a change of the uid, which validation refuses.
    let uid_of = |o: &Value| {
        o.pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let conflict = |m: &str| {
        status(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} \"{name}\": {m}",
                t.res.plural
            ),
            Some((t.res.kind, &name)),
        )
    };
    if let (true, Some(want)) = (put, uid_of(&obj)) {
        let have = current.as_ref().and_then(uid_of).unwrap_or_default();
        if want != have {
            return conflict(&format!(
                "Precondition failed: UID in precondition: {want}, UID in object meta: {have}"
            ));
        }
    }
    let Some(current) = current else {
        return store_error(
            StoreError::NotFound(format!("{} \"{name}\"", t.res.plural)),
            t.res.kind,
            &name,
        );
    };
    // A resourceVersion in the body must be the stored one; none is an unconditional update.
    let version = |o: &Value| {
        o.pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let asked = version(&obj);
    if !asked.is_empty() && asked != version(&current) {
        return conflict(
            "the object has been modified; please apply your changes to the latest version and try again",
        );
    }
    // What a client cannot change is taken from the stored object (rest.BeforeUpdate): the
    // uid when none is given, the creation time, the deletion mark, the generation, and the
    // namespace from the request.
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if m.get("uid")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            && let Some(uid) = current.pointer("/metadata/uid")
        {
            m.insert("uid".into(), uid.clone());
        }
        for field in [
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match current.pointer(&format!("/metadata/{field}")) {
                Some(v) => m.insert(field.into(), v.clone()),
                None => m.remove(field),
            };
        }
        if t.res.namespaced {
            m.insert("namespace".into(), json!(t.namespace));
        }
    }
    let current = Some(current);
    if t.res.status
        && let Some(current) = &current
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
        // A pod's status writes keep its owners (old kubelets corrupt them) and its deletion
        // mark (podStatusStrategy.PrepareForUpdate).
        if t.subresource.is_some() && t.res.kind == "Pod" {
            for field in ["ownerReferences", "deletionTimestamp"] {
                let was = current.pointer(&format!("/metadata/{field}")).cloned();
                if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    match was {
                        Some(v) => m.insert(field.into(), v),
                        None => m.remove(field),
                    };
                }
            }
        }
    }
    let obj = match decode(t.res, obj) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let old = match &current {
        Some(c) => Some(match decode(t.res, c.clone()) {
            Ok(o) => o,
            Err(r) => return r,
        }),
        None => None,
    };
    let causes = validation::validate(t.res, &obj, old.as_ref(), t.subresource.is_some());
    if !causes.is_empty() {
        return invalid(t.res.kind, &name, &causes);
    }
    match store.update(&t.res.key(), &t.namespace, &name, obj) {
        Ok(o) => object_response(StatusCode::OK, t.res, o),
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
    if q.get("resourceVersionMatch").is_some_and(|m| !m.is_empty())
        && q.get("resourceVersion").is_none_or(String::is_empty)
    {
        let causes = [validation::Cause {
            reason: "FieldValueForbidden",
            field: "resourceVersionMatch".into(),
            message:
                "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
                    .into(),
        }];
        return status_with_causes(
            422,
            "Invalid",
            &format!("ListOptions.meta.k8s.io \"\" is invalid: {}", causes[0]),
            Some(("ListOptions", "")),
            &causes,
        );
    }
    if let Some(asked) = asked {
        // kube-apiserver 1.20 answers a version that is not a number with 500 (no reason).
        let Ok(asked) = asked.parse::<u64>() else {
            return status(
                500,
                "",
                &format!(
                    "resourceVersion: Invalid value: {asked:?}: strconv.ParseUint: parsing {asked:?}: invalid syntax"
                ),
                None,
            );
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

/// DELETE, as k8s.io/apiserver's registry store and rest.BeforeDelete do it: DeleteOptions from
/// the body (JSON or YAML; 500 when it does not decode, as kube-apiserver 1.20 answers) and the
/// query, validated (422 on an unknown propagation policy); preconditions; pods deleted
/// gracefully when bound to a node and not finished (podStrategy.CheckGracefulDelete), marked
/// with a deletionTimestamp until their kubelet or a shorter grace period ends them; the answer
/// is the pod (with its deletion mark) or, for other kinds, a Success Status.
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
    let opts: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        let parsed = serde_json::from_slice::<Value>(body)
            .map_err(|e| format!("couldn't get version/kind; json parse error: {e}"))
            .or_else(|json_err| serde_saphyr::from_slice::<Value>(body).map_err(|_| json_err));
        match parsed {
            Ok(v @ Value::Object(_)) => {
                let kind = v
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("DeleteOptions");
                if kind != "DeleteOptions" {
                    return status(
                        500,
                        "",
                        &format!("no kind \"{kind}\" is registered for version \"v1\""),
                        None,
                    );
                }
                v
            }
            Ok(_) => {
                return status(500, "", "couldn't get version/kind; json parse error", None);
            }
            Err(e) => return status(500, "", &e, None),
        }
    };
    let policy = q
        .get("propagationPolicy")
        .map(|p| json!(p))
        .or_else(|| opts.get("propagationPolicy").cloned());
    if let Some(p) = policy.as_ref().and_then(Value::as_str)
        && !["Foreground", "Background", "Orphan"].contains(&p)
    {
        let causes = [validation::Cause {
            reason: "FieldValueNotSupported",
            field: "propagationPolicy".into(),
            message: format!(
                "Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
            ),
        }];
        return status_with_causes(
            422,
            "Invalid",
            &format!("DeleteOptions.meta.k8s.io \"\" is invalid: {}", causes[0]),
            Some(("DeleteOptions", "")),
            &causes,
        );
    }
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
    for (field, want) in [
        ("uid", &pre.uid),
        ("resourceVersion", &pre.resource_version),
    ] {
        let have = current
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(want) = want
            && want != have
        {
            let what = if field == "uid" {
                "UID"
            } else {
                "ResourceVersion"
            };
            // rest.BeforeDelete names the kind, not the resource, in this conflict.
            return status_exact_kind(
                409,
                "Conflict",
                &format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the {what} in the precondition ({want}) does not match the {what} in record ({have}). The object might have been deleted and then recreated",
                    t.res.plural
                ),
                Some((t.res.kind, &name)),
            );
        }
    }
    // A grace period from the query wins over the body's; out of range is read as absent.
    let asked = q
        .get("gracePeriodSeconds")
        .and_then(|g| g.parse::<i64>().ok())
        .or_else(|| opts.get("gracePeriodSeconds").and_then(Value::as_i64));
    let now = chrono::Utc::now();
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    if t.res.plural == "pods" {
        let marked_period = current
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64);
        let already = current.pointer("/metadata/deletionTimestamp").is_some();
        let period = if already {
            match (marked_period, asked) {
                (None | Some(0), _) => 0,
                (Some(m), Some(p)) if p < m => p,
                // Graceful deletion is pending: nothing changes.
                (Some(_), _) => return object_response(StatusCode::OK, t.res, current),
            }
        } else {
            let phase = current
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let bound = current
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            if !bound || phase == "Failed" || phase == "Succeeded" {
                0
            } else {
                asked
                    .or_else(|| {
                        current
                            .pointer("/spec/terminationGracePeriodSeconds")
                            .and_then(Value::as_i64)
                    })
                    .unwrap_or(0)
            }
        };
        let deadline = match chrono::TimeDelta::try_seconds(period)
            .and_then(|d| now.checked_add_signed(d))
        {
            Some(d) => d,
            None => return bad_request(&format!("gracePeriodSeconds: {period} is out of range")),
        };
        let mut marked = current.clone();
        marked["metadata"]["deletionTimestamp"] = json!(stamp(deadline));
        marked["metadata"]["deletionGracePeriodSeconds"] = json!(period);
        if period > 0 {
            return match store.update(&key, &t.namespace, &name, marked) {
                Ok(o) => object_response(StatusCode::OK, t.res, o),
                Err(e) => store_error(e, t.res.kind, &name),
            };
        }
        return match store.delete(&key, &t.namespace, &name, &pre) {
            Ok(mut o) => {
                if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.insert(
                        "deletionTimestamp".into(),
                        marked["metadata"]["deletionTimestamp"].clone(),
                    );
                    m.insert("deletionGracePeriodSeconds".into(), json!(period));
                }
                mark_dependents_policy(&mut o, policy.as_ref());
                object_response(StatusCode::OK, t.res, o)
            }
            Err(e) => store_error(e, t.res.kind, &name),
        };
    }
    match store.delete(&key, &t.namespace, &name, &pre) {
        Ok(o) if returns_deleted_object(t.res) => object_response(StatusCode::OK, t.res, o),
        // Foreground and Orphan deletion answer the object carrying the garbage collector's
        // finalizer; this control plane is also the collector (it owns no dependents to wait
        // for or orphan), so the object is gone at once.
        Ok(mut o) if finalizer_for(policy.as_ref()).is_some() => {
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("deletionTimestamp".into(), json!(stamp(now)));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            mark_dependents_policy(&mut o, policy.as_ref());
            object_response(StatusCode::OK, t.res, o)
        }
        Ok(o) => {
            let mut details = json!({"name": name, "kind": t.res.plural,
                "uid": o.pointer("/metadata/uid").cloned().unwrap_or(Value::Null)});
            if !t.res.group.is_empty() {
                details["group"] = json!(t.res.group);
            }
            json_response(
                StatusCode::OK,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
            )
        }
        Err(e) => store_error(e, t.res.kind, &name),
    }
}

/// Whether a DELETE answers the deleted object rather than a Status: the registries that set
/// ReturnDeletedObject in kube-apiserver (pods, namespaces, services, service accounts, CSI
/// nodes and drivers, among the kinds served here).
fn returns_deleted_object(res: &Resource) -> bool {
    matches!(
        res.plural,
        "pods" | "namespaces" | "services" | "serviceaccounts" | "csinodes" | "csidrivers"
    )
}

/// The garbage collector's finalizer for a propagation policy.
fn finalizer_for(policy: Option<&Value>) -> Option<&'static str> {
    match policy.and_then(Value::as_str) {
        Some("Foreground") => Some("foregroundDeletion"),
        Some("Orphan") => Some("orphan"),
        _ => None,
    }
}

fn mark_dependents_policy(obj: &mut Value, policy: Option<&Value>) {
    let Some(finalizer) = finalizer_for(policy) else {
        return;
    };
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let list = m.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut()
            && !list.iter().any(|f| f == finalizer)
        {
            list.push(json!(finalizer));
        }
    }
}

/// A chunked stream of watch events, one JSON object per line.
fn watch(store: &Arc<Store>, t: &Target, q: &HashMap<String, String>) -> Response {
    let res_of: &'static Resource = t.res;
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
                    .map(|o| event_line("ADDED", res_of, o))
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
                .map(|e| event_line(e.kind.as_str(), res_of, &e.object.json)),
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
                        if yield_(event_line(e.kind.as_str(), res, &e.object.json)).await.is_err() { return; }
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

/// One watch event, a line of JSON: the stored object's text as it is, after the apiVersion
/// and kind every event's object carries (stored objects leave them out, as list items do).
fn event_line(kind: &str, res: &Resource, object: &str) -> Bytes {
    let rest = object.strip_prefix('{').unwrap_or(object);
    let sep = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    Bytes::from(format!(
        "{{\"type\":\"{kind}\",\"object\":{{\"apiVersion\":\"{}\",\"kind\":\"{}\"{sep}{rest}}}\n",
        res.api_version(),
        res.kind
    ))
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
