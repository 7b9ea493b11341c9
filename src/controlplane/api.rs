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

use super::defaults;
use super::patch;
use super::protobuf;
use super::resources::{RESOURCES, Resource, groups};
use super::selector::Selector;
use super::store::{Store, StoreError};
use super::table;
use super::validation;
use super::{delete, namespaces, query, services, watch};
use crate::podsecurity;

pub const MAX_BODY: usize = 3 << 20;

pub const NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// A new API with the default namespaces in place, that reads no kubelet (`pods/log` answers
/// 503).
pub fn router(store: Arc<Store>) -> Router {
    router_with(store, None)
}

/// What the handlers share: the objects, and how kubelets are reached.
pub(super) struct App {
    store: Arc<Store>,
    kubelets: Option<super::logs::Kubelets>,
}

/// [`router`] that reads containers' logs from kubelets with `kubelets`' credentials.
pub(super) fn router_with(store: Arc<Store>, kubelets: Option<super::logs::Kubelets>) -> Router {
    for ns in NAMESPACES {
        // Only fails when it already exists.
        let _ = store.create("namespaces", "", json!({"metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}), false);
    }
    let app = Arc::new(App { store, kubelets });
    // kube-apiserver's own limit on a request body (3 MiB); larger ones get 413. `server`
    // refuses them before reading; this holds the router to the limit when served otherwise.
    Router::new()
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            streaming,
        ))
        .with_state(app)
}

/// The requests that switch protocols, served with the whole request (its upgrade is in its
/// extensions): `pods/exec`, `pods/attach`, and `pods/log` asked for over a websocket.
async fn streaming(
    State(app): State<Arc<App>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Ok(t) = route(req.uri().path()) else {
        return next.run(req).await;
    };
    let (Some(name), Some(sub)) = (t.name.clone(), t.subresource.as_deref()) else {
        return next.run(req).await;
    };
    let verb = match sub {
        "exec" => super::streams::Verb::Exec,
        "attach" => super::streams::Verb::Attach,
        "log" if req.method() == Method::GET && super::streams::is_websocket(req.headers()) => {
            let query: Vec<(String, String)> =
                form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                    .into_owned()
                    .collect();
            let log = super::logs::serve(
                &app.store,
                app.kubelets.as_ref(),
                &t.namespace,
                &name,
                &query,
            )
            .await;
            return super::streams::websocket_log(req, log);
        }
        _ => return next.run(req).await,
    };
    super::streams::serve(
        &app.store,
        app.kubelets.as_ref(),
        verb,
        &t.namespace,
        &name,
        req,
    )
    .await
}

/// `/version`: the Kubernetes release whose newest behaviour the control plane follows where
/// releases differ, the same one Pod Security's `latest` evaluates as, so a client never reads
/// one release from `/version` and another from admission.
fn version_info() -> Value {
    let minor = podsecurity::NEWEST;
    json!({"major": "1", "minor": minor.to_string(),
        "gitVersion": format!("v1.{minor}.0-node-conformance.{}", env!("CARGO_PKG_VERSION")),
        "platform": format!("linux/{}", crate::runtime::image::oci_arch())})
}

/// A stored object with the apiVersion and kind a single-object answer carries.
fn with_type(res: &Resource, mut obj: Value) -> Value {
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), json!(res.api_version()));
        o.insert("kind".into(), json!(res.kind));
    }
    obj
}

/// A stored object as a single-object answer carries it: with its apiVersion and kind.
fn object_response(code: StatusCode, res: &Resource, obj: Value) -> Response {
    json_response(code, &with_type(res, obj))
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
    status_with_causes(code, reason, message, details, &[])
}

/// A metav1.Status as kube-apiserver writes it: `details.kind` is the resource (`pods`) for
/// lookups and conflicts, the kind (`Pod`) for validation errors; `group` outside the core
/// group; each cause with its reason, field and message.
pub(super) fn status_with_causes(
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

/// The Status of a request no route of the API serves (an unknown resource or subresource, a
/// method a resource does not allow): go-restful's service error, made by kube-apiserver's
/// `ServiceErrorHandler` with `NewGenericServerResponse`, so `details` is there and empty
/// (clients such as kubectl read `details.causes` without checking for it).
pub(super) fn no_route(code: u16, path: &str) -> Response {
    let (reason, message) = match code {
        405 => (
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".to_string(),
        ),
        _ => (
            "NotFound",
            if path.is_empty() {
                "the server could not find the requested resource".to_string()
            } else {
                format!("the server could not find the requested resource ({path})")
            },
        ),
    };
    generic_status(code, reason, &message)
}

/// A Status made by `NewGenericServerResponse` (a go-restful service error, a patch the
/// patcher cannot apply or whose type it does not know): `details` is there and empty.
pub(super) fn generic_status(code: u16, reason: &str, message: &str) -> Response {
    let s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "details": {}, "code": code});
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &s,
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
        // Under /api, go-restful's web service of the legacy API answers what it has no route
        // for.
        ["api", ..] => return Err(no_route(404, path)),
        // Outside the APIs, the mux's not-found handler lists the paths served, with a 404.
        _ => return Err(json_response(StatusCode::NOT_FOUND, &root_paths())),
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
    let not_found = || no_route(404, path);
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return Err(not_found()),
    };
    let res = Resource::find(group, version, plural).ok_or_else(not_found)?;
    // A namespaced resource's objects are only reached through their namespace: the route
    // across namespaces is for lists and watches.
    if (!res.namespaced && !namespace.is_empty())
        || (res.namespaced && namespace.is_empty() && name.is_some())
    {
        return Err(not_found());
    }
    let allowed = |s: &str| {
        (s == "status" && res.status)
            || (matches!(s, "log" | "exec" | "attach") && res.kind == "Pod")
    };
    if subresource.as_deref().is_some_and(|s| !allowed(s)) {
        return Err(not_found());
    }
    Ok(Target {
        res,
        namespace,
        name,
        subresource,
    })
}

/// The index kube-apiserver's mux answers outside the APIs: every root path served.
fn root_paths() -> Value {
    let mut paths: Vec<String> = [
        "/api",
        "/api/v1",
        "/apis",
        "/apis/",
        "/healthz",
        "/livez",
        "/openapi/v2",
        "/readyz",
        "/version",
    ]
    .iter()
    .map(|p| (*p).to_string())
    .collect();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        paths.push(format!("/apis/{}", r.group));
        paths.push(format!("/apis/{}/{}", r.group, r.version));
    }
    paths.sort();
    paths.dedup();
    json!({"paths": paths})
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
        let verbs: Vec<&str> = [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
        .into_iter()
        .filter(|v| *v != "deletecollection" || deletes_collections(r))
        .collect();
        resources.push(json!({"name": r.plural, "singularName": r.kind.to_lowercase(), "namespaced": r.namespaced, "kind": r.kind,
            "verbs": verbs, "shortNames": r.short_names}));
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
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let store = Arc::clone(&app.store);
    let path = uri.path();
    match path {
        "/healthz" | "/livez" | "/readyz" => return (StatusCode::OK, "ok").into_response(),
        "/version" => {
            return json_response(StatusCode::OK, &version_info());
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
    if t.subresource.as_deref() == Some("log") {
        let Some(name) = &t.name else {
            return no_route(404, "");
        };
        if method != Method::GET {
            return no_route(405, "");
        }
        let query: Vec<(String, String)> =
            form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        return super::logs::serve(&store, app.kubelets.as_ref(), &t.namespace, name, &query).await;
    }
    let name = t.name.clone().unwrap_or_default();
    let kind = t.res.kind;
    let body_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let parse_body = |api_version: &str, kind: &str| match body_type.as_str() {
        "application/yaml" => {
            serde_saphyr::from_slice_with_options::<Value>(&body, crate::node::yaml::kubernetes())
                .map_err(|e| bad_request(&format!("the body is not YAML: {e}")))
        }
        "" | "application/json" => serde_json::from_slice::<Value>(&body)
            .map_err(|e| bad_request(&format!("the body is not JSON: {e}"))),
        protobuf::CONTENT_TYPE => {
            protobuf::decode(&body, api_version, kind).map_err(|e| bad_request(&e))
        }
        other => Err(status(
            415,
            "UnsupportedMediaType",
            &format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other:?})"
            ),
            None,
        )),
    };
    // A read answers with a Table when the Accept header asks for one (`kubectl get`).
    let printer = if method == Method::GET {
        match table::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())) {
            Ok(p) => p,
            Err(m) => return status(406, "NotAcceptable", &m, None),
        }
    } else {
        None
    };
    // A subresource is read and written, never created or deleted.
    if t.subresource.is_some() && ![Method::GET, Method::PUT, Method::PATCH].contains(&method) {
        return no_route(405, "");
    }
    let include_object = q.get("includeObject").map(String::as_str);
    let api_version = t.res.api_version();
    match (method, t.name.is_some()) {
        (Method::GET, false) if query::flag(&q, "watch") == Some(true) => {
            watch::serve(&store, t.res, &t.namespace, &q, printer).await
        }
        (Method::GET, false) => list(&store, &t, &q, printer).await,
        (Method::GET, true) => match store.get(&t.res.key(), &t.namespace, &name) {
            Ok(o) => match printer
                .map(|p| p.object(t.res, &with_type(t.res, o.clone()), include_object))
            {
                None => object_response(StatusCode::OK, t.res, o),
                Some(Ok(table)) => json_response(StatusCode::OK, &table),
                Some(Err(m)) => bad_request(&m),
            },
            Err(e) => store_error(e, t.res, &name),
        },
        (Method::POST, false) => {
            let dry = match dry_run(&uri, "CreateOptions") {
                Ok(d) => d,
                Err(r) => return r,
            };
            match parse_body(&api_version, kind) {
                Ok(obj) => create(&store, &t, obj, dry),
                Err(r) => r,
            }
        }
        (Method::PUT, true) => {
            let dry = match dry_run(&uri, "UpdateOptions") {
                Ok(d) => d,
                Err(r) => return r,
            };
            let obj = match parse_body(&api_version, kind) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let current = store.get(&t.res.key(), &t.namespace, &name).ok();
            write(&store, &t, obj, current, true, dry)
        }
        (Method::PATCH, true) => {
            let dry = match dry_run(&uri, "PatchOptions") {
                Ok(d) => d,
                Err(r) => return r,
            };
            const PATCH_TYPES: &[&str] = &[
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
                "application/json-patch+json",
                "application/apply-patch+yaml",
            ];
            if !PATCH_TYPES.contains(&body_type.as_str()) {
                return generic_status(
                    415,
                    "UnsupportedMediaType",
                    &format!(
                        "the body of the request was in an unknown format - accepted media types include: {} (got {body_type:?})",
                        PATCH_TYPES.join(", ")
                    ),
                );
            }
            if body_type == "application/apply-patch+yaml" {
                return apply_patch(&store, &t, &q, &body, dry);
            }
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
                    return generic_status(
                        415,
                        "UnsupportedMediaType",
                        &format!(
                            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {other:?})"
                        ),
                    );
                }
            };
            // A patch that does not apply is the patcher's generic 422, details empty.
            if let Err(e) = applied {
                return generic_status(422, "Invalid", &e);
            }
            // A patch does not carry the version it was made against: it applies to the latest.
            if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert(
                    "resourceVersion".into(),
                    current["metadata"]["resourceVersion"].clone(),
                );
            }
            write(&store, &t, next, Some(current), false, dry)
        }
        (Method::DELETE, true) => {
            let body = match delete_body(&body, &body_type) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let dry = query::all_values(uri.query(), "dryRun");
            let dry: Vec<&str> = dry.iter().map(String::as_str).collect();
            let answer = delete::options(&q, &dry, &body)
                .and_then(|o| delete::delete(&store, t.res, &t.namespace, &name, &o));
            match answer {
                Ok(body) if body.get("kind").and_then(Value::as_str) == Some("Status") => {
                    json_response(StatusCode::OK, &body)
                }
                Ok(body) => object_response(StatusCode::OK, t.res, body),
                Err(st) => answer_status(&st),
            }
        }
        (Method::DELETE, false) => delete_collection(&store, &t, &q, &uri, &body, &body_type).await,
        _ => no_route(405, ""),
    }
}

/// POST: decode with defaults, the name and namespace checked against the URL, what a create
/// sets (PrepareForCreate), a name from generateName, validation, admission, then the store.
fn create(store: &Store, t: &Target, obj: Value, dry: bool) -> Response {
    let kind = t.res.kind;
    let mut obj = match decode(t.res, obj) {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Err(r) = check_identity(t, &obj) {
        return r;
    }
    // The request's namespace is the object's (EnsureObjectNamespaceMatchesRequestNamespace).
    if t.res.namespaced
        && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        m.insert("namespace".into(), json!(t.namespace));
    }
    // NamespaceLifecycle admission: no content in a namespace that is missing or ending.
    if let Err(st) = namespaces::admit_create(store, t.res, &t.namespace, &obj) {
        return answer_status(&st);
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
    let created = if t.res.plural == "services" && t.res.group.is_empty() {
        match services::allocate_and(store, &mut obj, |o| {
            store.create(&t.res.key(), &t.namespace, o.clone(), dry)
        }) {
            Ok(r) => r,
            Err(cause) => return invalid(kind, &name, &[cause]),
        }
    } else {
        store.create(&t.res.key(), &t.namespace, obj, dry)
    };
    match created {
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
        Err(e) => store_error(e, t.res, &name),
    }
}

/// Server-side apply (`application/apply-patch+yaml`): the applied configuration creates the
/// object when it is missing, else it is merged into the stored object by the type's merge
/// rules, as a single field manager's apply does. Field ownership is not tracked: a field
/// dropped from a later configuration stays, and no conflict between managers is reported.
fn apply_patch(
    store: &Store,
    t: &Target,
    q: &HashMap<String, String>,
    body: &Bytes,
    dry: bool,
) -> Response {
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
    let config =
        match serde_saphyr::from_slice_with_options::<Value>(body, crate::node::yaml::kubernetes())
        {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return bad_request("the apply patch is not an object"),
            Err(e) => return bad_request(&format!("error decoding YAML: {e}")),
        };
    match store.get(&t.res.key(), &t.namespace, &name) {
        Err(StoreError::NotFound(_)) => create(store, t, config, dry),
        Err(e) => store_error(e, t.res, &name),
        Ok(current) => {
            let mut next = current.clone();
            let r = t.res;
            if let Err(e) = patch::apply_to_kind(r.group, r.version, r.kind, &mut next, &config) {
                let code =
                    StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return json_response(code, &e.status());
            }
            if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert(
                    "resourceVersion".into(),
                    current["metadata"]["resourceVersion"].clone(),
                );
            }
            write(store, t, next, Some(current), false, dry)
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
/// A PUT or a patched object: `current` is the stored object it replaces, if any. A dry run
/// answers the same and keeps nothing.
fn write(
    store: &Store,
    t: &Target,
    mut obj: Value,
    current: Option<Value>,
    put: bool,
    dry: bool,
) -> Response {
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
            t.res,
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
    if let Some(current) = &current {
        delete::keep_deletion_marks(current, &mut obj);
        if t.res.plural == "namespaces"
            && let Err(st) = namespaces::prepare_update(current, &mut obj, t.subresource.is_some())
        {
            return answer_status(&st);
        }
    }
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
    // The stored object was decoded and defaulted when it was written.
    let causes = validation::validate(t.res, &obj, current.as_ref(), t.subresource.is_some());
    if !causes.is_empty() {
        return invalid(t.res.kind, &name, &causes);
    }
    // The last finalizer of an object marked with no time left is gone: the update deletes it
    // and answers the object as written (the registry's deleteWithoutFinalizers).
    if current
        .as_ref()
        .is_some_and(|c| delete::removed_by_update(c, &obj))
    {
        if !dry {
            let pre = super::store::Preconditions::default();
            match store.delete(&t.res.key(), &t.namespace, &name, &pre, false) {
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return store_error(e, t.res, &name),
            }
            if !t.namespace.is_empty() {
                namespaces::content_removed(store, &t.namespace);
            }
        }
        // An unconditional update takes the stored version (as the registry's Update does).
        let mut obj = obj;
        if obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            && let Some(rv) = current
                .as_ref()
                .and_then(|c| c.pointer("/metadata/resourceVersion"))
                .cloned()
            && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.insert("resourceVersion".into(), rv);
        }
        return object_response(StatusCode::OK, t.res, obj);
    }
    match store.update(&t.res.key(), &t.namespace, &name, obj, dry) {
        Ok(o) => object_response(StatusCode::OK, t.res, o),
        Err(e) => store_error(e, t.res, &name),
    }
}

/// What a list answers: the objects, the version they are consistent with, and for a page
/// that is not the last, its continue token and (without selectors) how many objects remain.
struct Listed {
    items: Vec<Arc<str>>,
    rv: u64,
    next: Option<String>,
    remaining: Option<i64>,
}

impl Listed {
    /// The list's `metadata`, as ListMeta is written.
    fn meta(&self) -> Value {
        let mut m = json!({"resourceVersion": self.rv.to_string()});
        if let Some(c) = &self.next {
            m["continue"] = json!(c);
        }
        if let Some(r) = self.remaining {
            m["remainingItemCount"] = json!(r);
        }
        m
    }
}

/// The objects a list (or a deletecollection) with the query `q` selects: the whole list from
/// the current state, or with `limit` or `continue` a page read as etcd reads it (see
/// [`super::paging`]). A list at `resourceVersion=0` is served from the watch cache upstream,
/// which ignores `limit`.
async fn list_objects(
    store: &Store,
    t: &Target,
    q: &HashMap<String, String>,
) -> Result<Listed, Response> {
    let mut limit = None;
    for number in ["limit", "timeoutSeconds"] {
        match query::int64(q, number) {
            Err(e) => return Err(bad_request(&e.0)),
            Ok(n) if number == "limit" => limit = n.filter(|n| *n > 0),
            Ok(_) => {}
        }
    }
    let sel = Selector::parse(
        &t.res.key(),
        q.get("labelSelector").map(String::as_str),
        q.get("fieldSelector").map(String::as_str),
    )
    .map_err(|e| bad_request(&e))?;
    let errs = query::list_options_errors(q, false);
    if !errs.is_empty() {
        return Err(answer_status(&query::list_options_status(&errs)));
    }
    let rv_text = q.get("resourceVersion").map_or("", String::as_str);
    let token = q.get("continue").filter(|c| !c.is_empty());
    let ns = (!t.namespace.is_empty()).then_some(t.namespace.as_str());
    if token.is_some() || (limit.is_some() && rv_text != "0") {
        // The storage's own reading of the version: a bad one is a 400 here.
        let asked = query::resource_version(rv_text)
            .map_err(|e| bad_request(&format!("invalid resource version: {}", e.message())))?;
        let (at, from) = match token {
            Some(token) => {
                let token = super::paging::decode(token)
                    .map_err(|e| bad_request(&format!("invalid continue token: {e}")))?;
                if asked.is_some() {
                    return Err(bad_request(
                        "specifying resource version is not allowed when using continue",
                    ));
                }
                (u64::try_from(token.rv).ok(), token.start)
            }
            None => {
                let matching = q.get("resourceVersionMatch").map_or("", String::as_str);
                (asked.filter(|_| matching != "NotOlderThan"), String::new())
            }
        };
        let expired = |e: StoreError| match (e, token) {
            // A continued list whose version is gone: 410 with a token that continues at the
            // latest version (handleCompactedErrorForPaging).
            (StoreError::Expired(_), Some(_)) => {
                answer_status(&json!({"kind": "Status", "apiVersion": "v1",
                "metadata": {"continue": super::paging::encode(&from, -1)},
                "status": "Failure", "reason": "Expired", "code": 410,
                "message": "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."}))
            }
            (e, _) => answer_status(&delete::store_status(e, t.res, "")),
        };
        let (all, rv) = store.list_at(&t.res.key(), ns, at).map_err(expired)?;
        let page = super::paging::page(
            &all,
            &from,
            usize::try_from(limit.unwrap_or(i64::MAX)).unwrap_or(usize::MAX),
            &sel,
        );
        let token_rv = i64::try_from(rv).unwrap_or(i64::MAX);
        return Ok(Listed {
            items: page.items,
            rv,
            next: page.next_start.map(|k| super::paging::encode(&k, token_rv)),
            remaining: page.remaining,
        });
    }
    let asked = match query::resource_version(rv_text) {
        Ok(v) => v,
        Err(e) => return Err(answer_status(&query::bad_resource_version(&e))),
    };
    // Lists come from the current state. A version the client names that the store has not
    // reached is waited for a while, as the watch cache waits; one asked for exactly must be
    // the current one, since no older snapshot is kept.
    if let Some(asked) = asked
        && !store.reached(asked, watch::TOO_LARGE_WAIT).await
    {
        return Err(answer_status(&watch::too_large(
            asked,
            store.resource_version(),
        )));
    }
    let (items, rv) = store.list(&t.res.key(), ns, &sel);
    if let Some(asked) = asked
        && asked < rv
        && q.get("resourceVersionMatch").is_some_and(|m| m == "Exact")
    {
        return Err(status(
            410,
            "Expired",
            &format!("too old resource version: {asked} ({rv})"),
            None,
        ));
    }
    Ok(Listed {
        items,
        rv,
        next: None,
        remaining: None,
    })
}

async fn list(
    store: &Store,
    t: &Target,
    q: &HashMap<String, String>,
    printer: Option<table::Printer>,
) -> Response {
    let listed = match list_objects(store, t, q).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let (items, rv) = (&listed.items, listed.rv);
    if let Some(p) = printer {
        return match p.list(t.res, items, rv, q.get("includeObject").map(String::as_str)) {
            Ok(body) if listed.next.is_none() => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response(),
            // A Table carries the page's ListMeta too (`kubectl get` follows its continue).
            Ok(body) => {
                let mut table: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                table["metadata"] = listed.meta();
                json_response(StatusCode::OK, &table)
            }
            Err(m) => bad_request(&m),
        };
    }
    list_response(t.res, &listed)
}

/// A list as kube-apiserver writes it: `<Kind>List` with its ListMeta and the items.
fn list_response(res: &Resource, listed: &Listed) -> Response {
    // The stored text goes out as it is: parsing thousands of objects to print them again
    // would be most of the work.
    let items = &listed.items;
    let head = json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(), "metadata": listed.meta()}).to_string();
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

/// Resources whose kube-apiserver 1.20 storage does not implement deletecollection: their
/// REST types wrap the generic registry without it.
const NO_DELETE_COLLECTION: &[&str] = &["namespaces", "services"];

/// Whether DELETE on the collection is served for `res` (discovery lists the verb).
pub(super) fn deletes_collections(res: &Resource) -> bool {
    !NO_DELETE_COLLECTION.contains(&res.plural)
}

/// DELETE on a collection (the registry's `DeleteCollection`): lists what the query selects
/// (selectors, `limit`, `continue` as a list reads them), deletes each object with the
/// request's DeleteOptions as a DELETE of it would (pods gracefully, objects with finalizers
/// only marked), and answers the list as it was read. Only in a namespace for namespaced
/// resources, as upstream registers the route.
async fn delete_collection(
    store: &Store,
    t: &Target,
    q: &HashMap<String, String>,
    uri: &Uri,
    body: &Bytes,
    body_type: &str,
) -> Response {
    if !deletes_collections(t.res) || (t.res.namespaced && t.namespace.is_empty()) {
        return no_route(405, "");
    }
    let body = match delete_body(body, body_type) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let dry = query::all_values(uri.query(), "dryRun");
    let dry: Vec<&str> = dry.iter().map(String::as_str).collect();
    let opts = match delete::options(q, &dry, &body) {
        Ok(o) => o,
        Err(st) => return answer_status(&st),
    };
    let listed = match list_objects(store, t, q).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    for item in &listed.items {
        let Ok(obj) = serde_json::from_str::<Value>(item) else {
            continue;
        };
        let name = obj_name(&obj);
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Err(st) = delete::delete(store, t.res, ns, name, &opts)
            && st.get("code").and_then(Value::as_u64) != Some(404)
        {
            return answer_status(&st);
        }
    }
    list_response(t.res, &listed)
}

/// A DELETE body as the JSON DeleteOptions decoder reads: a protobuf body is decoded first
/// (kube-apiserver's reason-less 500 when it does not decode, as its delete handler passes
/// the decoder's error on); another media type is a 415.
fn delete_body(body: &Bytes, body_type: &str) -> Result<Vec<u8>, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let failed = |m: String| status(500, "", &m, None);
    let value = match body_type {
        "" | "application/json" => return checked_kind(body.to_vec()),
        "application/yaml" => {
            serde_saphyr::from_slice_with_options::<Value>(body, crate::node::yaml::kubernetes())
                .map_err(|e| failed(format!("couldn't get version/kind; yaml parse error: {e}")))?
        }
        protobuf::CONTENT_TYPE => protobuf::decode(body, "v1", "DeleteOptions").map_err(failed)?,
        other => {
            return Err(status(
                415,
                "UnsupportedMediaType",
                &format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other:?})"
                ),
                None,
            ));
        }
    };
    checked_kind(value.to_string().into_bytes())
}

/// A JSON DeleteOptions body: `null` is none; a body naming another kind is the decoder's 500.
fn checked_kind(body: Vec<u8>) -> Result<Vec<u8>, Response> {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        // Not JSON: the DeleteOptions decoder words that.
        return Ok(body);
    };
    if v.is_null() {
        return Ok(Vec::new());
    }
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
    if !kind.is_empty() && kind != "DeleteOptions" {
        let version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("v1");
        return Err(status(
            500,
            "",
            &format!("no kind \"{kind}\" is registered for version \"{version}\""),
            None,
        ));
    }
    Ok(body)
}
