//! The API's schema: kube-apiserver 1.20.2's own OpenAPI v2 document, cut to what the served
//! resources reach (`openapi/kube-apiserver-v1.20.2.json.gz`, written by
//! `scripts/openapi-from-peer.sh`), plus the fields later Kubernetes releases added that
//! clients of this control plane send (`openapi/overlay.json`, each entry naming the release
//! that added it, taken from upstream's api/openapi-spec).
//!
//! Strategic merge patch reads its list strategies and merge keys from here
//! (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key` on a property), the way
//! upstream's strategicpatch.PatchMetaFromOpenAPI does, and `/openapi/v2` and `/openapi/v3`
//! serve it.

use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

use serde_json::{Map, Value};

/// kube-apiserver 1.20.2's `/openapi/v2`, trimmed and gzipped.
pub const UPSTREAM_V2_GZ: &[u8] = include_bytes!("openapi/kube-apiserver-v1.20.2.json.gz");
/// Definitions and properties added after 1.20, as a JSON list of
/// `{"definition", "property"?, "since", "schema"}`.
pub const OVERLAY: &str = include_str!("openapi/overlay.json");

/// The merged document and an index of the definitions by group, version and kind.
#[derive(Debug)]
pub struct Schema {
    doc: Value,
    kinds: HashMap<(String, String, String), String>,
}

/// One level of patch metadata: how the field at a key of an object merges, and the schema of
/// what it holds (of its items, for a list).
#[derive(Debug, Clone, Copy, Default)]
pub struct Field<'a> {
    /// The schema of the value (for an array, of its items); `None` where the field is unknown.
    pub schema: Option<&'a Value>,
    /// `merge` or `replace` (`x-kubernetes-patch-strategy` without `retainKeys`); empty for none.
    pub strategy: &'a str,
    /// The strategy carries `retainKeys`.
    pub retain_keys: bool,
    /// `x-kubernetes-patch-merge-key`; empty for none.
    pub merge_key: &'a str,
}

static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();

/// The schema, read once. An error means the data compiled into the binary is broken.
pub fn get() -> Result<&'static Schema, String> {
    SCHEMA
        .get_or_init(|| Schema::load(UPSTREAM_V2_GZ, OVERLAY))
        .as_ref()
        .map_err(Clone::clone)
}

/// The gzipped upstream document, unpacked, as it was served by kube-apiserver 1.20.2.
pub fn upstream_v2() -> Result<Value, String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(UPSTREAM_V2_GZ)
        .read_to_string(&mut text)
        .map_err(|e| format!("the compiled-in OpenAPI document does not unpack: {e}"))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("the compiled-in OpenAPI document is not JSON: {e}"))
}

/// Adds the overlay's entries to an OpenAPI v2 document: new definitions whole, new
/// properties into existing ones. An entry for something the document already has is an
/// error: the overlay is for what 1.20 lacks only.
pub fn apply_overlay(doc: &mut Value, overlay: &str) -> Result<(), String> {
    let entries: Vec<Value> =
        serde_json::from_str(overlay).map_err(|e| format!("overlay.json: {e}"))?;
    let Some(defs) = doc.get_mut("definitions").and_then(Value::as_object_mut) else {
        return Err("the OpenAPI document has no definitions".into());
    };
    for e in entries {
        let def = e.get("definition").and_then(Value::as_str).unwrap_or("");
        let since = e.get("since").and_then(Value::as_str).unwrap_or("");
        let schema = e.get("schema").cloned().unwrap_or(Value::Null);
        if def.is_empty() || since.is_empty() || !schema.is_object() {
            return Err(format!(
                "overlay.json: an entry lacks definition, since or schema: {e}"
            ));
        }
        match e.get("property").and_then(Value::as_str) {
            None => {
                if defs.contains_key(def) {
                    return Err(format!("overlay.json: {def} is already defined"));
                }
                defs.insert(def.to_string(), schema);
            }
            Some(prop) => {
                let props = defs
                    .get_mut(def)
                    .and_then(|d| d.as_object_mut())
                    .map(|d| {
                        d.entry("properties")
                            .or_insert_with(|| Value::Object(Map::new()))
                    })
                    .and_then(Value::as_object_mut)
                    .ok_or_else(|| format!("overlay.json: no definition {def} for {prop}"))?;
                if props.contains_key(prop) {
                    return Err(format!("overlay.json: {def}.{prop} is already defined"));
                }
                props.insert(prop.to_string(), schema);
            }
        }
    }
    Ok(())
}

impl Schema {
    /// The upstream document with the overlay applied, indexed.
    pub fn load(gz: &[u8], overlay: &str) -> Result<Self, String> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_string(&mut text)
            .map_err(|e| format!("the OpenAPI document does not unpack: {e}"))?;
        let mut doc: Value = serde_json::from_str(&text)
            .map_err(|e| format!("the OpenAPI document is not JSON: {e}"))?;
        apply_overlay(&mut doc, overlay)?;
        Ok(Self::new(doc))
    }

    /// Indexes a (merged) OpenAPI v2 document.
    pub fn new(doc: Value) -> Self {
        let mut kinds = HashMap::new();
        for (name, def) in doc
            .get("definitions")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            for gvk in def
                .get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let part = |k: &str| gvk.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                kinds.insert((part("group"), part("version"), part("kind")), name.clone());
            }
        }
        Self { doc, kinds }
    }

    /// The whole document (OpenAPI v2), overlay included.
    pub fn document(&self) -> &Value {
        &self.doc
    }

    /// A definition by its name, `io.k8s.api.core.v1.Pod`.
    pub fn definition(&self, name: &str) -> Option<&Value> {
        self.doc.get("definitions")?.get(name)
    }

    /// The definition of a kind (`""`, `"v1"`, `"Pod"`), by its x-kubernetes-group-version-kind.
    pub fn kind(&self, group: &str, version: &str, kind: &str) -> Option<&Value> {
        let name = self
            .kinds
            .get(&(group.to_string(), version.to_string(), kind.to_string()))?;
        self.definition(name)
    }

    /// Follows `$ref` (also a lone `$ref` inside `allOf`, as OpenAPI v3 documents write it).
    pub fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        let mut v = v;
        for _ in 0..16 {
            let next = match v.get("$ref").and_then(Value::as_str) {
                Some(r) => r,
                None => match v.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
                    Some([only]) => match only.get("$ref").and_then(Value::as_str) {
                        Some(r) => r,
                        None => return v,
                    },
                    _ => return v,
                },
            };
            let name = next
                .strip_prefix("#/definitions/")
                .or_else(|| next.strip_prefix("#/components/schemas/"))
                .unwrap_or(next);
            match self.definition(name) {
                Some(d) => v = d,
                None => return v,
            }
        }
        v
    }

    /// What the key `key` of an object with schema `node` holds, and how it merges. A map
    /// (`additionalProperties`) gives every key its value schema; an unknown key, or an
    /// unknown `node`, gives no metadata: maps merge, lists are replaced.
    pub fn field<'a>(&'a self, node: Option<&'a Value>, key: &str) -> Field<'a> {
        let Some(node) = node.map(|n| self.resolve(n)) else {
            return Field::default();
        };
        let prop = match node.get("properties").and_then(|p| p.get(key)) {
            Some(p) => p,
            None => match node.get("additionalProperties") {
                Some(a) if a.is_object() => {
                    return Field {
                        schema: Some(self.items_or_self(a)),
                        ..Field::default()
                    };
                }
                _ => return Field::default(),
            },
        };
        let strategies = prop
            .get("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut strategy = "";
        let mut retain_keys = false;
        for s in strategies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if s == "retainKeys" {
                retain_keys = true;
            } else {
                strategy = s;
            }
        }
        Field {
            schema: Some(self.items_or_self(prop)),
            strategy,
            retain_keys,
            merge_key: prop
                .get("x-kubernetes-patch-merge-key")
                .and_then(Value::as_str)
                .unwrap_or(""),
        }
    }

    /// For an array its items' schema, else the schema itself; `$ref`s followed.
    fn items_or_self<'a>(&'a self, v: &'a Value) -> &'a Value {
        let v = self.resolve(v);
        match v.get("items") {
            Some(items) if v.get("type").and_then(Value::as_str) == Some("array") => {
                self.resolve(items)
            }
            _ => v,
        }
    }
}

/// The paths of kube-apiserver's OpenAPI document this control plane serves: discovery, and
/// for each served resource its collection, its objects and their /status (no watch paths, no
/// other subresources).
pub fn served_paths() -> Vec<String> {
    let mut paths = vec![
        "/api/".to_string(),
        "/api/v1/".to_string(),
        "/apis/".to_string(),
        "/version/".to_string(),
    ];
    for r in super::resources::RESOURCES {
        let base = if r.group.is_empty() {
            format!("/api/{}", r.version)
        } else {
            format!("/apis/{}/{}", r.group, r.version)
        };
        paths.push(format!("{base}/"));
        let collection = if r.namespaced {
            paths.push(format!("{base}/{}", r.plural));
            format!("{base}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{base}/{}", r.plural)
        };
        paths.push(format!("{collection}/{{name}}"));
        if r.status {
            paths.push(format!("{collection}/{{name}}/status"));
        }
        paths.push(collection);
    }
    paths.sort();
    paths.dedup();
    paths
}

/// kube-apiserver's whole `/openapi/v2` cut to the served paths and the definitions they
/// reach, transitively: what `openapi/kube-apiserver-v1.20.2.json.gz` holds.
pub fn trim(full: &Value) -> Value {
    let mut out = Map::new();
    if let Some(o) = full.as_object() {
        for (k, v) in o {
            if k != "paths" && k != "definitions" {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    let mut paths = Map::new();
    for p in served_paths() {
        if let Some(item) = full.get("paths").and_then(|ps| ps.get(&p)) {
            paths.insert(p, item.clone());
        }
    }
    let mut todo: Vec<String> = Vec::new();
    collect_refs(&Value::Object(paths.clone()), &mut todo);
    let mut defs = Map::new();
    while let Some(name) = todo.pop() {
        if defs.contains_key(&name) {
            continue;
        }
        if let Some(d) = full.get("definitions").and_then(|ds| ds.get(&name)) {
            collect_refs(d, &mut todo);
            defs.insert(name, d.clone());
        }
    }
    out.insert("paths".into(), Value::Object(paths));
    out.insert("definitions".into(), Value::Object(defs));
    Value::Object(out)
}

/// The definition names every `$ref` below `v` points at, in the order met.
pub(super) fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        out.push(r.rsplit('/').next().unwrap_or(r).to_string());
                    }
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
