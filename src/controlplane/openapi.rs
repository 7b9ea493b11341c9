//! `/openapi/v2` and `/openapi/v3`, served from the schema ([`super::schema`]) as
//! kube-apiserver serves them (k8s.io/kube-openapi handler and handler3):
//!
//! - `/openapi/v2`: the OpenAPI v2 document, as JSON, or as the protobuf
//!   (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, gnostic's
//!   openapi_v2.Document) that client-go's discovery asks for; 406 for any other Accept.
//! - `/openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}}}`
//!   and `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`: OpenAPI 3.0 documents of one
//!   group-version each, converted from the v2 one.
//!
//! An ETag (the document's SHA-512, as kube-openapi computes it) comes with each; a matching
//! If-None-Match gets 304.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use super::resources::RESOURCES;
use super::schema;

/// The media type of the protobuf OpenAPI v2 document.
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

struct Served {
    bytes: Vec<u8>,
    etag: String,
}

impl Served {
    fn new(bytes: Vec<u8>) -> Self {
        let etag = format!("\"{}\"", hex_upper(&Sha512::digest(&bytes)));
        Self { bytes, etag }
    }
}

struct Documents {
    v2_json: Served,
    v2_proto: Served,
    v3_index: Served,
    /// By group-version path: `api/v1`, `apis/coordination.k8s.io/v1`.
    v3: BTreeMap<String, Served>,
}

static DOCS: OnceLock<Result<Documents, String>> = OnceLock::new();

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn build() -> Result<Documents, String> {
    let s = schema::get()?;
    let doc = s.document();
    let v2_json = Served::new(doc.to_string().into_bytes());
    let v2_proto = Served::new(v2_protobuf(doc));
    let mut v3 = BTreeMap::new();
    for (gv, prefix) in group_versions() {
        let d = v3_document(doc, &prefix);
        v3.insert(gv, Served::new(d.to_string().into_bytes()));
    }
    let mut index = Map::new();
    for (gv, served) in &v3 {
        let hash = served.etag.trim_matches('"');
        index.insert(
            gv.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={hash}")}),
        );
    }
    let v3_index = Served::new(json!({"paths": index}).to_string().into_bytes());
    Ok(Documents {
        v2_json,
        v2_proto,
        v3_index,
        v3,
    })
}

/// Each served group-version's v3 name and the path prefix of its paths; `api` and `apis`
/// (discovery) and `version` as kube-apiserver lists them.
fn group_versions() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![
        ("api".into(), "/api/".into()),
        ("apis".into(), "/apis/".into()),
        ("version".into(), "/version/".into()),
    ];
    for r in RESOURCES {
        let gv = if r.group.is_empty() {
            format!("api/{}", r.version)
        } else {
            format!("apis/{}/{}", r.group, r.version)
        };
        if !out.iter().any(|(g, _)| *g == gv) {
            out.push((gv.clone(), format!("/{gv}/")));
        }
    }
    out
}

/// Answers `/openapi/...` requests; `None` for any other path.
pub fn serve(path: &str, headers: &HeaderMap) -> Option<Response> {
    let path = path.trim_end_matches('/');
    if path != "/openapi/v2" && path != "/openapi/v3" && !path.starts_with("/openapi/v3/") {
        return None;
    }
    let docs = match DOCS.get_or_init(build) {
        Ok(d) => d,
        Err(e) => {
            return Some(error(500, "InternalError", e));
        }
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (served, ctype) = if path == "/openapi/v2" {
        // kube-openapi's handler leaves the Content-Type to http.ServeContent, which sniffs
        // the bytes: text for the JSON, octet-stream for the protobuf; 406 has no body.
        match negotiate_v2(accept) {
            Some(V2::Json) => (&docs.v2_json, "text/plain; charset=utf-8"),
            Some(V2::Protobuf) => (&docs.v2_proto, "application/octet-stream"),
            None => {
                let mut resp = StatusCode::NOT_ACCEPTABLE.into_response();
                resp.headers_mut()
                    .insert(header::VARY, header::HeaderValue::from_static("Accept"));
                return Some(resp);
            }
        }
    } else if path == "/openapi/v3" {
        (&docs.v3_index, "application/json")
    } else {
        let gv = path.trim_start_matches("/openapi/v3/");
        match docs.v3.get(gv) {
            Some(d) => (d, "application/json"),
            None => {
                return Some(error(
                    404,
                    "NotFound",
                    &format!("the server could not find the requested resource ({path})"),
                ));
            }
        }
    };
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == served.etag);
    let mut resp = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, ctype)],
            served.bytes.clone(),
        )
            .into_response()
    };
    if let Ok(v) = header::HeaderValue::from_str(&served.etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp.headers_mut()
        .insert(header::VARY, header::HeaderValue::from_static("Accept"));
    Some(resp)
}

fn error(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[derive(Debug, PartialEq, Eq)]
enum V2 {
    Json,
    Protobuf,
}

/// The first acceptable media type of the Accept header, in its order (no header: JSON).
fn negotiate_v2(accept: &str) -> Option<V2> {
    if accept.trim().is_empty() {
        return Some(V2::Json);
    }
    for part in accept.split(',') {
        let mut params = part.split(';');
        let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let q_zero = params.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                == Some(0.0)
        });
        if q_zero {
            continue;
        }
        match media.as_str() {
            "application/json" | "application/*" | "*/*" => return Some(V2::Json),
            m if m == V2_PROTOBUF => return Some(V2::Protobuf),
            _ => {}
        }
    }
    None
}

// ---- OpenAPI v3 ----

/// The OpenAPI 3.0 document of the paths under `prefix`, with the schemas they reach, as
/// kube-openapi's builder3 lays them out: bodies in `requestBody`, response schemas per media
/// type, parameter types under `schema`, `$ref`s with siblings wrapped in `allOf`.
pub fn v3_document(v2: &Value, prefix: &str) -> Value {
    let mut paths = Map::new();
    for (p, item) in v2
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        // `/api/` and `/apis/` are the discovery paths themselves; `/api/v1/` belongs to
        // api/v1.
        let mine = if prefix == "/api/" || prefix == "/apis/" || prefix == "/version/" {
            p == prefix
        } else {
            p.starts_with(prefix) || format!("{p}/") == prefix
        };
        if mine {
            paths.insert(p.clone(), v3_path_item(item));
        }
    }
    let mut todo = Vec::new();
    super::schema::collect_refs(&Value::Object(paths.clone()), &mut todo);
    let mut schemas = Map::new();
    while let Some(name) = todo.pop() {
        if schemas.contains_key(&name) {
            continue;
        }
        let Some(def) = v2.get("definitions").and_then(|d| d.get(&name)) else {
            continue;
        };
        let converted = v3_schema(def, true);
        super::schema::collect_refs(&converted, &mut todo);
        schemas.insert(name, converted);
    }
    let mut components = Map::new();
    components.insert("schemas".into(), Value::Object(schemas));
    if let Some(sec) = v2.get("securityDefinitions").and_then(Value::as_object) {
        let schemes: Map<String, Value> = sec
            .iter()
            .map(|(k, v)| {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    o.remove("name");
                    o.remove("in");
                    if o.get("type").and_then(Value::as_str) == Some("apiKey") {
                        o.insert("type".into(), json!("http"));
                        o.insert("scheme".into(), json!("bearer"));
                    }
                }
                (k.clone(), v)
            })
            .collect();
        components.insert("securitySchemes".into(), Value::Object(schemes));
    }
    let mut doc = json!({
        "openapi": "3.0.0",
        "info": v2.get("info").cloned().unwrap_or(json!({})),
        "paths": paths,
        "components": components,
    });
    if let Some(s) = v2.get("security") {
        doc["security"] = s.clone();
    }
    doc
}

fn v3_ref(r: &str) -> String {
    match r.strip_prefix("#/definitions/") {
        Some(name) => format!("#/components/schemas/{name}"),
        None => r.to_string(),
    }
}

/// A v2 schema in v3 form. `top` is a definition itself (never wrapped).
fn v3_schema(v: &Value, top: bool) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        let converted = match k.as_str() {
            "$ref" => Value::String(v3_ref(v.as_str().unwrap_or(""))),
            "properties" => Value::Object(
                v.as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, p)| (name.clone(), v3_schema(p, false)))
                    .collect(),
            ),
            "items" | "additionalProperties" if v.is_object() => v3_schema(v, false),
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                v.as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| v3_schema(s, false))
                    .collect(),
            ),
            _ => v.clone(),
        };
        out.insert(k.clone(), converted);
    }
    // A `$ref` with siblings: OpenAPI 3.0 ignores siblings of `$ref`, so they go beside an
    // `allOf` holding the reference.
    if !top
        && out.len() > 1
        && let Some(r) = out.remove("$ref")
    {
        out.insert("allOf".into(), json!([{"$ref": r}]));
    }
    Value::Object(out)
}

fn v3_path_item(item: &Value) -> Value {
    let Value::Object(m) = item else {
        return item.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        match k.as_str() {
            "parameters" => {
                out.insert(k.clone(), v3_parameters(v).0);
            }
            "get" | "put" | "post" | "delete" | "options" | "head" | "patch" => {
                out.insert(k.clone(), v3_operation(v));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The non-body parameters in v3 form, and the body parameter if any.
fn v3_parameters(v: &Value) -> (Value, Option<Value>) {
    let mut params = Vec::new();
    let mut body = None;
    for p in v.as_array().into_iter().flatten() {
        if p.get("in").and_then(Value::as_str) == Some("body") {
            body = Some(p.clone());
            continue;
        }
        let Value::Object(m) = p else { continue };
        let mut out = Map::new();
        let mut schema = Map::new();
        for (k, v) in m {
            match k.as_str() {
                "type" | "format" | "items" | "uniqueItems" | "default" | "enum" => {
                    schema.insert(k.clone(), v.clone());
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        if !schema.is_empty() {
            out.insert("schema".into(), Value::Object(schema));
        }
        params.push(Value::Object(out));
    }
    (Value::Array(params), body)
}

fn v3_operation(op: &Value) -> Value {
    let Value::Object(m) = op else {
        return op.clone();
    };
    let media = |key: &str| -> Vec<String> {
        m.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let consumes = media("consumes");
    let produces = media("produces");
    let mut out = Map::new();
    for (k, v) in m {
        match k.as_str() {
            "consumes" | "produces" | "schemes" => {}
            "parameters" => {
                let (params, body) = v3_parameters(v);
                if params.as_array().is_some_and(|a| !a.is_empty()) {
                    out.insert("parameters".into(), params);
                }
                if let Some(body) = body {
                    let schema = v3_schema(body.get("schema").unwrap_or(&json!({})), false);
                    let types = if consumes.is_empty() || consumes == ["*/*"] {
                        vec!["*/*".to_string()]
                    } else {
                        consumes.clone()
                    };
                    let content: Map<String, Value> = types
                        .into_iter()
                        .map(|t| (t, json!({"schema": schema})))
                        .collect();
                    let mut rb = json!({"content": content});
                    if body.get("required").and_then(Value::as_bool) == Some(true) {
                        rb["required"] = json!(true);
                    }
                    out.insert("requestBody".into(), rb);
                }
            }
            "responses" => {
                let responses: Map<String, Value> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(code, r)| {
                        let mut resp = Map::new();
                        if let Some(d) = r.get("description") {
                            resp.insert("description".into(), d.clone());
                        }
                        if let Some(s) = r.get("schema") {
                            let schema = v3_schema(s, false);
                            let content: Map<String, Value> = produces
                                .iter()
                                .map(|t| (t.clone(), json!({"schema": schema})))
                                .collect();
                            resp.insert("content".into(), Value::Object(content));
                        }
                        (code.clone(), Value::Object(resp))
                    })
                    .collect();
                out.insert("responses".into(), Value::Object(responses));
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

// ---- OpenAPI v2 as protobuf (gnostic's openapiv2/OpenAPIv2.proto) ----

/// A protobuf message being written: fields in the order given.
#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    /// A string field; proto3 leaves out the empty one.
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    /// A message field, written even when empty (its presence is information).
    fn message(&mut self, field: u32, m: Pb) {
        self.bytes(field, &m.0);
    }

    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }
}

fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

/// `Any{yaml}`: gnostic keeps free-form values as YAML text. A plain word (`merge`, `atomic`,
/// `merge,retainKeys`) is written bare, as kube-apiserver's YAML has it; anything else as JSON,
/// which is YAML too.
fn any(v: &Value) -> Pb {
    let mut pb = Pb::default();
    let text = match v {
        Value::String(s) if plain_yaml(s) => format!("{s}\n"),
        other => format!("{other}\n"),
    };
    pb.string(2, &text);
    pb
}

/// A string YAML reads back as the same string without quotes.
fn plain_yaml(s: &str) -> bool {
    let reserved = [
        "true", "false", "yes", "no", "on", "off", "null", "y", "n", "~",
    ];
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ','))
        && !reserved.contains(&s.to_ascii_lowercase().as_str())
}

/// `NamedAny` vendor extensions (`x-...` keys) of an object, written as field `field`.
fn vendor_extensions(pb: &mut Pb, field: u32, m: &Map<String, Value>) {
    for (k, v) in m.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut named = Pb::default();
        named.string(1, k);
        named.message(2, any(v));
        pb.message(field, named);
    }
}

/// The whole document as gnostic's `openapi.v2.Document`.
pub fn v2_protobuf(doc: &Value) -> Vec<u8> {
    let empty = Map::new();
    let m = doc.as_object().unwrap_or(&empty);
    let mut pb = Pb::default();
    pb.string(1, str_of(m, "swagger"));
    if let Some(Value::Object(info)) = m.get("info") {
        let mut i = Pb::default();
        i.string(1, str_of(info, "title"));
        i.string(2, str_of(info, "version"));
        i.string(3, str_of(info, "description"));
        vendor_extensions(&mut i, 7, info);
        pb.message(2, i);
    }
    if let Some(Value::Object(paths)) = m.get("paths") {
        let mut ps = Pb::default();
        vendor_extensions(&mut ps, 1, paths);
        for (p, item) in paths.iter().filter(|(k, _)| !k.starts_with("x-")) {
            let mut named = Pb::default();
            named.string(1, p);
            named.message(2, path_item(item));
            ps.message(2, named);
        }
        pb.message(8, ps);
    }
    if let Some(Value::Object(defs)) = m.get("definitions") {
        let mut ds = Pb::default();
        for (name, s) in defs {
            let mut named = Pb::default();
            named.string(1, name);
            named.message(2, schema_pb(s));
            ds.message(1, named);
        }
        pb.message(9, ds);
    }
    for req in m
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut r = Pb::default();
        for (name, scopes) in req.as_object().into_iter().flatten() {
            let mut named = Pb::default();
            named.string(1, name);
            let mut arr = Pb::default();
            for s in scopes
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                arr.bytes(1, s.as_bytes());
            }
            named.message(2, arr);
            r.message(1, named);
        }
        pb.message(12, r);
    }
    if let Some(Value::Object(sec)) = m.get("securityDefinitions") {
        let mut sd = Pb::default();
        for (name, def) in sec {
            let Value::Object(d) = def else { continue };
            let mut named = Pb::default();
            named.string(1, name);
            let mut item = Pb::default();
            match str_of(d, "type") {
                "basic" => {
                    let mut b = Pb::default();
                    b.string(1, "basic");
                    b.string(2, str_of(d, "description"));
                    vendor_extensions(&mut b, 3, d);
                    item.message(1, b);
                }
                _ => {
                    let mut k = Pb::default();
                    k.string(1, str_of(d, "type"));
                    k.string(2, str_of(d, "name"));
                    k.string(3, str_of(d, "in"));
                    k.string(4, str_of(d, "description"));
                    vendor_extensions(&mut k, 5, d);
                    item.message(2, k);
                }
            }
            named.message(2, item);
            sd.message(1, named);
        }
        pb.message(13, sd);
    }
    vendor_extensions(&mut pb, 16, m);
    pb.0
}

fn path_item(item: &Value) -> Pb {
    let empty = Map::new();
    let m = item.as_object().unwrap_or(&empty);
    let mut pb = Pb::default();
    pb.string(1, str_of(m, "$ref"));
    for (field, op) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(o) = m.get(op) {
            pb.message(field, operation(o));
        }
    }
    for p in m
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        pb.message(9, parameters_item(p));
    }
    vendor_extensions(&mut pb, 10, m);
    pb
}

fn strings(pb: &mut Pb, field: u32, v: Option<&Value>) {
    for s in v
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        pb.bytes(field, s.as_bytes());
    }
}

fn operation(op: &Value) -> Pb {
    let empty = Map::new();
    let m = op.as_object().unwrap_or(&empty);
    let mut pb = Pb::default();
    strings(&mut pb, 1, m.get("tags"));
    pb.string(2, str_of(m, "summary"));
    pb.string(3, str_of(m, "description"));
    pb.string(5, str_of(m, "operationId"));
    strings(&mut pb, 6, m.get("produces"));
    strings(&mut pb, 7, m.get("consumes"));
    for p in m
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        pb.message(8, parameters_item(p));
    }
    if let Some(Value::Object(responses)) = m.get("responses") {
        let mut rs = Pb::default();
        for (code, r) in responses.iter().filter(|(k, _)| !k.starts_with("x-")) {
            let Value::Object(r) = r else { continue };
            let mut resp = Pb::default();
            resp.string(1, str_of(r, "description"));
            if let Some(s) = r.get("schema") {
                let mut item = Pb::default();
                item.message(1, schema_pb(s));
                resp.message(2, item);
            }
            vendor_extensions(&mut resp, 5, r);
            let mut value = Pb::default();
            value.message(1, resp);
            let mut named = Pb::default();
            named.string(1, code);
            named.message(2, value);
            rs.message(1, named);
        }
        vendor_extensions(&mut rs, 2, responses);
        pb.message(9, rs);
    }
    strings(&mut pb, 10, m.get("schemes"));
    pb.boolean(
        11,
        m.get("deprecated").and_then(Value::as_bool) == Some(true),
    );
    vendor_extensions(&mut pb, 13, m);
    pb
}

fn parameters_item(p: &Value) -> Pb {
    let empty = Map::new();
    let m = p.as_object().unwrap_or(&empty);
    let mut item = Pb::default();
    if let Some(r) = m.get("$ref").and_then(Value::as_str) {
        let mut j = Pb::default();
        j.string(1, r);
        j.string(2, str_of(m, "description"));
        item.message(2, j);
        return item;
    }
    let mut param = Pb::default();
    if str_of(m, "in") == "body" {
        let mut b = Pb::default();
        b.string(1, str_of(m, "description"));
        b.string(2, str_of(m, "name"));
        b.string(3, str_of(m, "in"));
        b.boolean(4, m.get("required").and_then(Value::as_bool) == Some(true));
        if let Some(s) = m.get("schema") {
            b.message(5, schema_pb(s));
        }
        vendor_extensions(&mut b, 6, m);
        param.message(1, b);
    } else {
        // Header, form data, query and path sub-schemas share their first fields; after
        // `name`, query and form data have allow_empty_value (5) and the rest move up by one.
        let (which, shift) = match str_of(m, "in") {
            "header" => (1, 0),
            "formData" => (2, 1),
            "query" => (3, 1),
            _ => (4, 0),
        };
        let mut s = Pb::default();
        s.boolean(1, m.get("required").and_then(Value::as_bool) == Some(true));
        s.string(2, str_of(m, "in"));
        s.string(3, str_of(m, "description"));
        s.string(4, str_of(m, "name"));
        if shift == 1 {
            s.boolean(
                5,
                m.get("allowEmptyValue").and_then(Value::as_bool) == Some(true),
            );
        }
        s.string(5 + shift, str_of(m, "type"));
        s.string(6 + shift, str_of(m, "format"));
        s.boolean(
            19 + shift,
            m.get("uniqueItems").and_then(Value::as_bool) == Some(true),
        );
        vendor_extensions(&mut s, 22 + shift, m);
        let mut nb = Pb::default();
        nb.message(which, s);
        param.message(2, nb);
    }
    item.message(1, param);
    item
}

fn schema_pb(v: &Value) -> Pb {
    let empty = Map::new();
    let m = v.as_object().unwrap_or(&empty);
    let mut pb = Pb::default();
    pb.string(1, str_of(m, "$ref"));
    pb.string(2, str_of(m, "format"));
    pb.string(3, str_of(m, "title"));
    pb.string(4, str_of(m, "description"));
    if let Some(d) = m.get("default") {
        pb.message(5, any(d));
    }
    let num = |k: &str| m.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let int = |k: &str| m.get(k).and_then(Value::as_i64).unwrap_or(0);
    let flag = |k: &str| m.get(k).and_then(Value::as_bool) == Some(true);
    pb.double(6, num("multipleOf"));
    pb.double(7, num("maximum"));
    pb.boolean(8, flag("exclusiveMaximum"));
    pb.double(9, num("minimum"));
    pb.boolean(10, flag("exclusiveMinimum"));
    pb.int64(11, int("maxLength"));
    pb.int64(12, int("minLength"));
    pb.string(13, str_of(m, "pattern"));
    pb.int64(14, int("maxItems"));
    pb.int64(15, int("minItems"));
    pb.boolean(16, flag("uniqueItems"));
    pb.int64(17, int("maxProperties"));
    pb.int64(18, int("minProperties"));
    strings(&mut pb, 19, m.get("required"));
    for e in m
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        pb.message(20, any(e));
    }
    match m.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut a = Pb::default();
            a.key(2, 0);
            a.varint(u64::from(*b));
            pb.message(21, a);
        }
        Some(s @ Value::Object(_)) => {
            let mut a = Pb::default();
            a.message(1, schema_pb(s));
            pb.message(21, a);
        }
        _ => {}
    }
    match m.get("type") {
        Some(Value::String(t)) => {
            let mut t_pb = Pb::default();
            t_pb.bytes(1, t.as_bytes());
            pb.message(22, t_pb);
        }
        Some(Value::Array(ts)) => {
            let mut t_pb = Pb::default();
            for t in ts.iter().filter_map(Value::as_str) {
                t_pb.bytes(1, t.as_bytes());
            }
            pb.message(22, t_pb);
        }
        _ => {}
    }
    match m.get("items") {
        Some(s @ Value::Object(_)) => {
            let mut i = Pb::default();
            i.message(1, schema_pb(s));
            pb.message(23, i);
        }
        Some(Value::Array(ss)) => {
            let mut i = Pb::default();
            for s in ss {
                i.message(1, schema_pb(s));
            }
            pb.message(23, i);
        }
        _ => {}
    }
    for s in m
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        pb.message(24, schema_pb(s));
    }
    if let Some(Value::Object(props)) = m.get("properties") {
        let mut ps = Pb::default();
        for (name, s) in props {
            let mut named = Pb::default();
            named.string(1, name);
            named.message(2, schema_pb(s));
            ps.message(1, named);
        }
        pb.message(25, ps);
    }
    pb.string(26, str_of(m, "discriminator"));
    pb.boolean(27, flag("readOnly"));
    if let Some(e) = m.get("example") {
        pb.message(30, any(e));
    }
    vendor_extensions(&mut pb, 31, m);
    pb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert_eq!(negotiate_v2(""), Some(V2::Json));
        assert_eq!(negotiate_v2(V2_PROTOBUF), Some(V2::Protobuf));
        assert_eq!(
            negotiate_v2(&format!("{V2_PROTOBUF}, application/json")),
            Some(V2::Protobuf)
        );
        assert_eq!(negotiate_v2("application/json;q=0.9"), Some(V2::Json));
        assert_eq!(negotiate_v2("text/html"), None);
    }

    #[test]
    fn v3_wraps_refs_with_siblings() {
        let s = v3_schema(
            &json!({"properties": {"metadata": {"$ref": "#/definitions/M", "description": "d"},
                "items": {"type": "array", "items": {"$ref": "#/definitions/I"}}}}),
            true,
        );
        assert_eq!(
            s["properties"]["metadata"],
            json!({"allOf": [{"$ref": "#/components/schemas/M"}], "description": "d"})
        );
        assert_eq!(
            s["properties"]["items"]["items"],
            json!({"$ref": "#/components/schemas/I"})
        );
    }

    #[test]
    fn protobuf_varints_and_strings() {
        let mut pb = Pb::default();
        pb.string(1, "2.0");
        pb.int64(11, 300);
        assert_eq!(pb.0, vec![0x0a, 3, b'2', b'.', b'0', 0x58, 0xac, 0x02]);
    }
}
