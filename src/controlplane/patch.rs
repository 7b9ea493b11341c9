//! Strategic merge patch, applied (`apply`, what kube-apiserver does with an
//! `application/strategic-merge-patch+json` PATCH) and made (`two_way`, what clients such as
//! the kubelet send), following k8s.io/apimachinery/pkg/util/strategicpatch (patch.go):
//!
//! - every field's `x-kubernetes-patch-strategy` (`merge`, `replace`, `retainKeys`,
//!   `merge,retainKeys`) and `x-kubernetes-patch-merge-key` come from the schema
//!   ([`super::schema`]), starting at the kind's definition and following `$ref`s;
//! - lists without strategy `merge` are replaced whole; lists of objects with it merge by
//!   their merge key; lists of scalars with it are unions;
//! - the directives `$patch: replace|delete|merge`, `$retainKeys`,
//!   `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>`.
//!
//! Where upstream changed the semantics after 1.20 the current behaviour is kept: a
//! `$deleteFromPrimitiveList` deletes whatever the field's strategy (1.25, kubernetes#110472),
//! directives inside a value taken whole are dropped (1.28, kubernetes#117568), and so are
//! nulls inside a value taken whole (1.30, kubernetes#123304).
//!
//! Errors carry the HTTP status, reason and message kube-apiserver answers with for the same
//! patch (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go,
//! interpretStrategicMergePatchError): 400 BadRequest for malformed directives, 422 Invalid for
//! lists of lists and for a result that does not decode into the kind's type, 500 with no
//! reason for the rest. tests/fixtures/strategic-merge-patch holds the cases checked against a
//! real kube-apiserver.

use serde_json::{Map, Value};

use super::schema::Schema;

type Obj = Map<String, Value>;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_PREFIX: &str = "$deleteFromPrimitiveList";
const ORDER_PREFIX: &str = "$setElementOrder";

/// A patch kube-apiserver refuses: the Status it answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    /// HTTP status: 400, 422 or 500.
    pub code: u16,
    /// The Status reason (`BadRequest`, `Invalid`), empty where kube-apiserver gives none.
    pub reason: &'static str,
    pub message: String,
    /// The Status details, where kube-apiserver gives some.
    pub details: Option<Value>,
}

impl std::fmt::Display for PatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl PatchError {
    fn bad_request(message: &str) -> Self {
        Self {
            code: 400,
            reason: "BadRequest",
            message: message.to_string(),
            details: None,
        }
    }

    fn internal(message: String) -> Self {
        Self {
            code: 500,
            reason: "",
            message,
            details: None,
        }
    }

    /// The metav1.Status object kube-apiserver sends for it.
    pub fn status(&self) -> Value {
        let mut s = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "code": self.code});
        if !self.reason.is_empty() {
            s["reason"] = Value::from(self.reason);
        }
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }

    /// The merged object does not decode into the kind's type: kube-apiserver's 422 for the
    /// patch (apiserver's strategicPatchObject, FromUnstructured's error).
    fn undecodable(patch: &Value, err: &str) -> Self {
        let value = Value::String(go_fmt(patch)).to_string();
        let cause = format!("Invalid value: {value}: {err}");
        Self {
            code: 422,
            reason: "Invalid",
            message: format!(" \"\" is invalid: patch: {cause}"),
            details: Some(serde_json::json!({"causes": [
                {"reason": "FieldValueInvalid", "message": cause, "field": "patch"}]})),
        }
    }
}

// mergepatch's errors, with kube-apiserver's status for each.
fn err_bad_json_doc() -> PatchError {
    PatchError::bad_request("invalid JSON document")
}
fn err_primitive_list() -> PatchError {
    PatchError::bad_request("invalid patch format of primitive list")
}
fn err_retain_keys() -> PatchError {
    PatchError::bad_request("invalid patch format of retainKeys")
}
fn err_set_element_order() -> PatchError {
    PatchError::bad_request("invalid patch format of setElementOrder list")
}
fn err_list_of_lists() -> PatchError {
    PatchError {
        code: 422,
        reason: "Invalid",
        message: "lists of lists are not supported".into(),
        details: Some(serde_json::json!({})),
    }
}
fn err_no_merge_key(m: &Value, key: &str) -> PatchError {
    PatchError::internal(format!(
        "map: {} does not contain declared merge key: {key}",
        go_fmt(m)
    ))
}
fn err_bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    PatchError::internal(format!(
        "expected a {expected}, but received a {}",
        go_type(actual)
    ))
}
fn err_bad_patch_type(t: &Value, m: &Value) -> PatchError {
    let t = match t {
        Value::String(s) => s.clone(),
        other => format!("%!s({}={})", go_type(other), go_fmt(other)),
    };
    PatchError::internal(format!("unknown patch type: {t} in map: {}", go_fmt(m)))
}

const MAP_TYPE: &str = "map[string]interface {}";
const SLICE_TYPE: &str = "[]interface {}";

/// Go's name for the type a JSON value decodes to.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "%!s(<nil>)",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => SLICE_TYPE,
        Value::Object(_) => MAP_TYPE,
    }
}

/// A value as Go's `%v` prints the decoded JSON: `map[k:v]`, `[a b]`, `<nil>`, floats as
/// strconv's shortest `%g`.
pub fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_fmt).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_fmt(&m[k.as_str()])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// strconv.FormatFloat(f, 'g', -1, 64): the shortest digits, exponent form from 1e+06 and
/// below 1e-04.
fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits, d.ddd e X.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let neg = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let point = exp + 1;
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        format!(
            "{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    };
    if neg { format!("-{body}") } else { body }
}

/// Go's `==` on two decoded JSON values; maps and slices (which Go cannot compare) are never
/// equal.
fn go_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(_), _) | (Value::Object(_), _) => false,
        _ => a == b,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Float,
    String,
    Slice,
    Map,
}

fn kind_of(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(_) => Kind::Float,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::Slice,
        Value::Object(_) => Kind::Map,
    }
}

/// The one element type of the given lists; lists of lists, mixed lists and lists without
/// elements are errors (sliceElementType).
fn slice_element_type(lists: &[&[Value]]) -> Result<Kind, PatchError> {
    let mut seen: Option<Kind> = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let k = kind_of(v);
        match seen {
            None => {
                if k == Kind::Slice {
                    return Err(err_list_of_lists());
                }
                if k == Kind::Null {
                    return Err(PatchError::internal(
                        "runtime error: invalid memory address or nil pointer dereference".into(),
                    ));
                }
                seen = Some(k);
            }
            Some(prev) if prev != k => {
                let all: Vec<String> = lists
                    .iter()
                    .map(|l| go_fmt(&Value::Array(l.to_vec())))
                    .collect();
                return Err(PatchError::internal(format!(
                    "list element types are not identical: [{}]",
                    all.join(" ")
                )));
            }
            Some(_) => {}
        }
    }
    seen.ok_or_else(|| PatchError::internal("no elements in any of the given slices".into()))
}

/// The key a `$deleteFromPrimitiveList/<key>` or `$setElementOrder/<key>` names.
fn extract_key(s: &str, prefix: &str) -> Result<String, PatchError> {
    match s.split_once('/') {
        Some((p, key)) if p == prefix => Ok(key.to_string()),
        _ if prefix == DELETE_PREFIX => Err(err_primitive_list()),
        _ => Err(err_set_element_order()),
    }
}

/// Applies a strategic merge patch to the stored object of a kind, as kube-apiserver does.
/// `group`, `version`, `kind` pick the kind's definition in the schema; a kind the schema does
/// not know merges without metadata (maps merge, lists are replaced).
pub fn apply_to_kind(
    group: &str,
    version: &str,
    kind: &str,
    target: &mut Value,
    patch: &Value,
) -> Result<(), PatchError> {
    let schema = super::schema::get().map_err(PatchError::internal)?;
    apply(schema, schema.kind(group, version, kind), target, patch)
}

/// Applies `patch` to `target`, whose schema is `node` (a definition of `schema`). The patch
/// must be a JSON object, as kube-apiserver requires.
pub fn apply(
    schema: &Schema,
    node: Option<&Value>,
    target: &mut Value,
    patch: &Value,
) -> Result<(), PatchError> {
    let Value::Object(p) = patch else {
        return Err(PatchError::bad_request(&format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            match patch {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "bool",
                _ => "null",
            }
        )));
    };
    let original = match target {
        Value::Object(o) => o.clone(),
        Value::Null => Map::new(),
        _ => return Err(err_bad_json_doc()),
    };
    let merger = Merger { schema };
    let mut merged = merger.merge_map(original, p.clone(), node)?;
    clean(schema, &mut merged, node);
    if let Err(e) = decodable(schema, &merged, node) {
        return Err(PatchError::undecodable(patch, &e));
    }
    *target = Value::Object(merged);
    Ok(())
}

/// The name of the Go kind a JSON value has once unstructured: integers are int64.
fn unstructured_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "invalid",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

/// Whether a patched object decodes into its kind's type, as runtime.DefaultUnstructuredConverter
/// checks it: an object where a struct or map belongs, a list where a list belongs, a string
/// for an inline string field. Fields the schema does not know, and types that decode
/// themselves (quantities, times, int-or-string, raw objects), are not checked.
fn decodable(schema: &Schema, m: &Obj, node: Option<&Value>) -> Result<(), String> {
    for (k, v) in m {
        let Some(node) = node else { return Ok(()) };
        let resolved = schema.resolve(node);
        let prop = match resolved.get("properties").and_then(|p| p.get(k)) {
            Some(p) => p,
            None => match resolved.get("additionalProperties") {
                Some(a) if a.is_object() => a,
                _ => continue,
            },
        };
        check_value(schema, prop, v)?;
    }
    Ok(())
}

fn check_value(schema: &Schema, prop: &Value, v: &Value) -> Result<(), String> {
    let inline_string = prop.get("$ref").is_none()
        && prop.get("type").and_then(Value::as_str) == Some("string")
        && prop.get("format").is_none();
    let s = schema.resolve(prop);
    let ty = s.get("type").and_then(Value::as_str).unwrap_or("");
    let is_struct = s.get("properties").is_some();
    let is_map = !is_struct && s.get("additionalProperties").is_some();
    match v {
        Value::Object(o) if is_struct || is_map => decodable(schema, o, Some(s)),
        Value::Array(items) if ty == "array" => match s.get("items") {
            Some(item) => items.iter().try_for_each(|i| check_value(schema, item, i)),
            None => Ok(()),
        },
        Value::Null => Ok(()),
        other if is_struct => Err(format!(
            "cannot restore struct from: {}",
            unstructured_kind(other)
        )),
        other if is_map => Err(format!(
            "cannot restore map from {}",
            unstructured_kind(other)
        )),
        other if ty == "array" => Err(format!(
            "cannot restore slice from {}",
            unstructured_kind(other)
        )),
        Value::Number(_) | Value::Bool(_) if inline_string => {
            Err(format!("cannot convert {} to string", unstructured_kind(v)))
        }
        _ => Ok(()),
    }
}

/// Removes what kube-apiserver's typed decode and encode drop from a patched object: `$`-keys
/// (never field names), nulls, and the empty maps and lists of known fields (all
/// `omitempty`). An empty object of a struct field stays: it is a set pointer.
fn clean(schema: &Schema, m: &mut Obj, node: Option<&Value>) {
    m.retain(|k, v| !k.starts_with('$') && !v.is_null());
    for (k, v) in m.iter_mut() {
        let field = schema.field(node, k);
        clean_value(schema, v, field.schema);
    }
    m.retain(|k, v| {
        let field = schema.field(node, k);
        let Some(s) = field.schema else { return true };
        match v {
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty() || !is_map_type(s),
            _ => true,
        }
    });
}

fn is_map_type(s: &Value) -> bool {
    s.get("additionalProperties").is_some() && s.get("properties").is_none()
}

fn clean_value(schema: &Schema, v: &mut Value, node: Option<&Value>) {
    match v {
        Value::Object(m) => clean(schema, m, node),
        Value::Array(a) => a.iter_mut().for_each(|v| clean_value(schema, v, node)),
        _ => {}
    }
}

/// Drops nulls from a value taken whole (discardNullValuesFromPatch).
fn discard_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// Drops directives from a value taken whole: an object with `$patch` goes, with its key or
/// list slot (removeDirectives).
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE) {
                return None;
            }
            Some(Value::Object(
                m.into_iter()
                    .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                    .collect(),
            ))
        }
        Value::Array(a) => Some(Value::Array(
            a.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

struct Merger<'a> {
    schema: &'a Schema,
}

impl Merger<'_> {
    /// mergeMap, with the server's options: parallel lists are merged, unmatched nulls ignored.
    fn merge_map(
        &self,
        mut original: Obj,
        mut patch: Obj,
        node: Option<&Value>,
    ) -> Result<Obj, PatchError> {
        if let Some(d) = patch.get(DIRECTIVE).cloned() {
            return directive_in_map(&d, patch);
        }
        apply_retain_keys(&mut original, &mut patch)?;
        self.merge_set_element_order(&mut original, &mut patch, node)?;
        for (k, patch_v) in patch {
            let (key, is_delete_list) = if k.starts_with(DELETE_PREFIX) {
                (extract_key(&k, DELETE_PREFIX)?, true)
            } else {
                (k, false)
            };
            if patch_v.is_null() {
                original.remove(&key);
                continue;
            }
            let same_kind = original
                .get(&key)
                .is_some_and(|o| kind_of(o) == kind_of(&patch_v));
            if !same_kind {
                if !is_delete_list {
                    let mut v = patch_v;
                    discard_nulls(&mut v);
                    match remove_directives(v) {
                        Some(v) => original.insert(key, v),
                        None => original.remove(&key),
                    };
                }
                continue;
            }
            let orig_v = original.remove(&key).unwrap_or(Value::Null);
            let field = self.schema.field(node, &key);
            let merged = match (orig_v, patch_v) {
                (Value::Object(o), Value::Object(p)) => {
                    if field.strategy == "replace" {
                        Value::Object(p)
                    } else {
                        Value::Object(self.merge_map(o, p, field.schema)?)
                    }
                }
                (Value::Array(o), Value::Array(p)) => {
                    if field.strategy == "merge" || is_delete_list {
                        Value::Array(self.merge_slice(
                            o,
                            p,
                            field.schema,
                            field.merge_key,
                            is_delete_list,
                        )?)
                    } else {
                        Value::Array(p)
                    }
                }
                (_, p) => p,
            };
            original.insert(key, merged);
        }
        Ok(original)
    }

    /// mergePatchIntoOriginal: each `$setElementOrder/<key>` with the list it orders.
    fn merge_set_element_order(
        &self,
        original: &mut Obj,
        patch: &mut Obj,
        node: Option<&Value>,
    ) -> Result<(), PatchError> {
        let keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(ORDER_PREFIX))
            .cloned()
            .collect();
        for key in keys {
            let Some(order_v) = patch.remove(&key) else {
                continue;
            };
            let Value::Array(order) = &order_v else {
                return Err(err_bad_arg_type(SLICE_TYPE, &order_v));
            };
            let orig_key = extract_key(&key, ORDER_PREFIX)?;
            let orig_list = match original.get(&orig_key) {
                Some(Value::Array(a)) => Some(a.clone()),
                Some(other) => return Err(err_bad_arg_type(SLICE_TYPE, other)),
                None => None,
            };
            let patch_list = match patch.get(&orig_key) {
                Some(Value::Array(a)) => Some(a.clone()),
                Some(other) => return Err(err_bad_arg_type(SLICE_TYPE, other)),
                None => None,
            };
            let field = self.schema.field(node, &orig_key);
            let merge_key = field.merge_key;
            validate_patch_with_set_order_list(
                patch_list.as_deref().unwrap_or(&[]),
                order,
                merge_key,
            )?;
            let merged = match (&orig_list, &patch_list) {
                (Some(o), None) => o.clone(),
                (None, Some(p)) => match remove_directives(Value::Array(p.clone())) {
                    Some(Value::Array(a)) => a,
                    _ => continue,
                },
                (Some(o), Some(p)) => {
                    if field.strategy == "merge" {
                        self.merge_slice(o.clone(), p.clone(), field.schema, merge_key, false)?
                    } else {
                        p.clone()
                    }
                }
                (None, None) => continue,
            };
            let (patch_items, server_only) = if merge_key.is_empty() {
                partition_primitives(merged, order)
            } else {
                partition_maps(merged, order, merge_key)?
            };
            let orig_slice = orig_list.as_deref().unwrap_or(&[]);
            let kind = slice_element_type(&[orig_slice, patch_list.as_deref().unwrap_or(&[])])?;
            let both = normalize_element_order(
                patch_items,
                server_only,
                order,
                orig_slice,
                merge_key,
                kind,
            )?;
            original.insert(orig_key.clone(), Value::Array(both));
            patch.remove(&orig_key);
        }
        Ok(())
    }

    /// mergeSlice: a list with strategy merge (or a `$deleteFromPrimitiveList`).
    fn merge_slice(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        node: Option<&Value>,
        merge_key: &str,
        is_delete_list: bool,
    ) -> Result<Vec<Value>, PatchError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        let kind = slice_element_type(&[&original, &patch])?;
        let (original, patch, merged) = if kind != Kind::Map {
            if is_delete_list {
                return Ok(original
                    .into_iter()
                    .filter(|v| !patch.iter().any(|d| go_eq(d, v)))
                    .collect());
            }
            let mut both = original.clone();
            both.extend(patch.iter().cloned());
            (original, patch, deduplicate_scalars(both))
        } else {
            if merge_key.is_empty() {
                return Err(PatchError::internal(
                    "cannot merge lists without merge key for struct".into(),
                ));
            }
            let (original, patch) = merge_slice_with_special_elements(original, patch, merge_key)?;
            let merged = self.merge_slice_without_special_elements(
                original.clone(),
                &patch,
                merge_key,
                node,
            )?;
            (original, patch, merged)
        };
        let (patch_items, server_only) = if merge_key.is_empty() {
            partition_primitives(merged, &patch)
        } else {
            partition_maps(merged, &patch, merge_key)?
        };
        normalize_element_order(patch_items, server_only, &patch, &original, merge_key, kind)
    }

    fn merge_slice_without_special_elements(
        &self,
        mut original: Vec<Value>,
        patch: &[Value],
        merge_key: &str,
        node: Option<&Value>,
    ) -> Result<Vec<Value>, PatchError> {
        for v in patch {
            let Some(value) = v.get(merge_key) else {
                return Err(err_no_merge_key(v, merge_key));
            };
            match find_map(&original, merge_key, value)? {
                Some(i) => {
                    let Value::Object(o) = std::mem::take(&mut original[i]) else {
                        continue;
                    };
                    let Value::Object(p) = v.clone() else {
                        continue;
                    };
                    original[i] = Value::Object(self.merge_map(o, p, node)?);
                }
                None => original.push(v.clone()),
            }
        }
        Ok(original)
    }
}

/// `$patch` in an object: `replace` takes the patch as it is, `delete` leaves an empty object.
fn directive_in_map(d: &Value, mut patch: Obj) -> Result<Obj, PatchError> {
    match d.as_str() {
        Some("replace") => {
            patch.remove(DIRECTIVE);
            Ok(patch)
        }
        Some("delete") => Ok(Map::new()),
        _ => Err(err_bad_patch_type(d, &Value::Object(patch))),
    }
}

/// applyRetainKeysDirective: the keys the patch lists are kept, the others cleared; a patch
/// that sets a key it does not list is malformed.
fn apply_retain_keys(original: &mut Obj, patch: &mut Obj) -> Result<(), PatchError> {
    let Some(keep) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(keep) = keep else {
        return Err(err_retain_keys());
    };
    let listed = |k: &str| keep.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null() || k.starts_with(DELETE_PREFIX) || k.starts_with(ORDER_PREFIX) {
            continue;
        }
        if !listed(k) {
            return Err(err_retain_keys());
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// Splits a merge list's `$patch` elements off: `delete` removes the elements with that key
/// from `original`, `replace` makes the rest of the patch the whole list.
fn merge_slice_with_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::new();
    let mut replace = false;
    for v in patch {
        let Some(d) = v.get(DIRECTIVE) else {
            plain.push(v);
            continue;
        };
        match d.as_str() {
            Some("delete") => {
                let Some(value) = v.get(merge_key) else {
                    return Err(err_no_merge_key(&v, merge_key));
                };
                while let Some(i) = find_map(&original, merge_key, value)? {
                    original.remove(i);
                }
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(PatchError::internal(
                    "merging lists cannot yet be specified in the patch".into(),
                ));
            }
            _ => return Err(err_bad_patch_type(d, &v)),
        }
    }
    if replace {
        return Ok((plain, Vec::new()));
    }
    Ok((original, plain))
}

/// The first element whose merge key equals `value`.
fn find_map(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>, PatchError> {
    for (i, v) in list.iter().enumerate() {
        let Value::Object(m) = v else {
            return Err(PatchError::internal(format!(
                "value for key {i} is not a map"
            )));
        };
        if m.get(key).is_some_and(|x| go_eq(x, value)) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// deduplicateScalars, whose order (a duplicate's slot takes the last element) shows in the
/// result.
fn deduplicate_scalars(mut s: Vec<Value>) -> Vec<Value> {
    if s.is_empty() {
        return s;
    }
    let mut length = s.len() - 1;
    let mut i = 0;
    while i < length {
        let mut j = i + 1;
        while j <= length {
            if go_eq(&s[i], &s[j]) {
                s[j] = s[length].clone();
                s.truncate(length);
                length -= 1;
            } else {
                j += 1;
            }
        }
        i += 1;
    }
    s
}

fn partition_primitives(merged: Vec<Value>, by: &[Value]) -> (Vec<Value>, Vec<Value>) {
    merged
        .into_iter()
        .partition(|v| by.iter().any(|b| go_eq(b, v)))
}

fn partition_maps(
    merged: Vec<Value>,
    by: &[Value],
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut in_patch = Vec::new();
    let mut server_only = Vec::new();
    for v in merged {
        if !v.is_object() {
            return Err(err_bad_arg_type(MAP_TYPE, &v));
        }
        let Some(value) = v.get(key) else {
            return Err(err_no_merge_key(&v, key));
        };
        if find_map(by, key, value)?.is_some() {
            in_patch.push(v);
        } else {
            server_only.push(v);
        }
    }
    Ok((in_patch, server_only))
}

/// The position of `v` in `list`, by merge key for objects.
fn index(list: &[Value], v: &Value, key: &str, kind: Kind) -> Option<usize> {
    let get = |item: &Value| -> Value {
        if kind == Kind::Map {
            item.get(key).cloned().unwrap_or(Value::Null)
        } else {
            item.clone()
        }
    };
    let want = get(v);
    list.iter().position(|item| {
        let have = get(item);
        // Go compares the two interfaces: nil equals nil.
        (have.is_null() && want.is_null()) || go_eq(&have, &want)
    })
}

fn validate_merge_key_in_lists(key: &str, lists: &[&[Value]]) -> Result<(), PatchError> {
    for v in lists.iter().flat_map(|l| l.iter()) {
        if !v.is_object() {
            return Err(err_bad_arg_type(MAP_TYPE, v));
        }
        if v.get(key).is_none() {
            return Err(err_no_merge_key(v, key));
        }
    }
    Ok(())
}

fn extract_to_delete_items(l: Vec<Value>) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut keep = Vec::new();
    let mut delete = Vec::new();
    for v in l {
        if !v.is_object() {
            return Err(err_bad_arg_type(MAP_TYPE, &v));
        }
        if v.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
            delete.push(v);
        } else {
            keep.push(v);
        }
    }
    Ok((keep, delete))
}

/// normalizeSliceOrder: `to_sort` in the order of `order` (Go's sort.SliceStable with
/// upstream's comparator, which calls anything it cannot place "less"), deletions last.
fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    key: &str,
    kind: Kind,
) -> Result<Vec<Value>, PatchError> {
    let (mut to_sort, to_delete) = if kind == Kind::Map {
        validate_merge_key_in_lists(key, &[&to_sort, order])?;
        extract_to_delete_items(to_sort)?
    } else {
        (to_sort, Vec::new())
    };
    let less = |a: &Value, b: &Value| match index(order, a, key, kind) {
        Some(ia) => match index(order, b, key, kind) {
            Some(ib) => ia < ib,
            None => true,
        },
        None => true,
    };
    go_stable_sort(&mut to_sort, &less);
    to_sort.extend(to_delete);
    Ok(to_sort)
}

fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: &str,
    kind: Kind,
) -> Result<Vec<Value>, PatchError> {
    let patch = normalize_slice_order(patch, patch_order, key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, key, kind)?;
    Ok(merge_sorted_slice(
        server_only,
        patch,
        server_order,
        key,
        kind,
    ))
}

/// mergeSortedSlice: interleaves the server-only elements into the patch's by the order the
/// live list had them.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    key: &str,
    kind: Kind,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    index(server_order, l, key, kind),
                    index(server_order, r, key, kind),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

fn contains_directive(v: &Value) -> bool {
    v.get(DIRECTIVE).is_some()
}

/// mergeKeyValueEqual: the same merge key value (Go `==` of the elements for scalars).
fn merge_key_value_equal(l: &Value, r: &Value, key: &str) -> Result<bool, PatchError> {
    if key.is_empty() {
        return Ok(go_eq(l, r));
    }
    let (Some(lv), Some(rv)) = (l.as_object(), r.as_object()) else {
        let bad = if l.is_object() { r } else { l };
        return Err(err_bad_arg_type(MAP_TYPE, bad));
    };
    let Some(a) = lv.get(key) else {
        return Err(err_no_merge_key(l, key));
    };
    let Some(b) = rv.get(key) else {
        return Err(err_no_merge_key(r, key));
    };
    Ok(go_eq(a, b))
}

/// validatePatchWithSetOrderList: the patch list's elements appear in the order list, in its
/// order.
fn validate_patch_with_set_order_list(
    patch: &[Value],
    order: &[Value],
    key: &str,
) -> Result<(), PatchError> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let non_delete = if key.is_empty() {
        patch.to_vec()
    } else {
        extract_to_delete_items(patch.to_vec())?.0
    };
    let (mut pi, mut oi) = (0, 0);
    while pi < non_delete.len() && oi < order.len() {
        if contains_directive(&non_delete[pi]) {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(&non_delete[pi], &order[oi], key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < non_delete.len() && oi >= order.len() {
        return Err(PatchError::internal(format!(
            "The order in patch list:\n{}\n doesn't match {ORDER_PREFIX} list:\n{}\n",
            go_fmt(&Value::Array(patch.to_vec())),
            go_fmt(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

/// Go's sort.SliceStable (insertion sort in blocks of 20, then SymMerge), step for step: the
/// comparator upstream uses is not an order, so only the same algorithm gives the same result.
fn go_stable_sort(v: &mut [Value], less: &dyn Fn(&Value, &Value) -> bool) {
    let n = v.len();
    let mut block = 20;
    let (mut a, mut b) = (0, block);
    while b <= n {
        insertion_sort(v, a, b, less);
        a = b;
        b += block;
    }
    insertion_sort(v, a, n, less);
    while block < n {
        a = 0;
        b = 2 * block;
        while b <= n {
            sym_merge(v, a, a + block, b, less);
            a = b;
            b += 2 * block;
        }
        let m = a + block;
        if m < n {
            sym_merge(v, a, m, n, less);
        }
        block *= 2;
    }
}

fn insertion_sort(v: &mut [Value], a: usize, b: usize, less: &dyn Fn(&Value, &Value) -> bool) {
    for i in a + 1..b {
        let mut j = i;
        while j > a && less(&v[j], &v[j - 1]) {
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn sym_merge(v: &mut [Value], a: usize, m: usize, b: usize, less: &dyn Fn(&Value, &Value) -> bool) {
    if m - a == 1 {
        let (mut i, mut j) = (m, b);
        while i < j {
            let h = (i + j) / 2;
            if less(&v[h], &v[a]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = a;
        while k + 1 < i {
            v.swap(k, k + 1);
            k += 1;
        }
        return;
    }
    if b - m == 1 {
        let (mut i, mut j) = (a, m);
        while i < j {
            let h = (i + j) / 2;
            if !less(&v[m], &v[h]) {
                i = h + 1;
            } else {
                j = h;
            }
        }
        let mut k = m;
        while k > i {
            v.swap(k, k - 1);
            k -= 1;
        }
        return;
    }
    let mid = (a + b) / 2;
    let n = mid + m;
    let (mut start, mut r) = if m > mid { (n - b, mid) } else { (a, m) };
    let p = n - 1;
    while start < r {
        let c = (start + r) / 2;
        if !less(&v[p - c], &v[c]) {
            start = c + 1;
        } else {
            r = c;
        }
    }
    let end = n - start;
    if start < m && m < end {
        rotate(v, start, m, end);
    }
    if a < start && start < mid {
        sym_merge(v, a, start, mid, less);
    }
    if mid < end && end < b {
        sym_merge(v, mid, end, b, less);
    }
}

fn rotate(v: &mut [Value], a: usize, m: usize, b: usize) {
    let mut i = m - a;
    let mut j = b - m;
    while i != j {
        if i > j {
            swap_range(v, m - i, m, j);
            i -= j;
        } else {
            swap_range(v, m - i, m + j - i, i);
            j -= i;
        }
    }
    swap_range(v, m - i, m, i);
}

fn swap_range(v: &mut [Value], a: usize, b: usize, n: usize) {
    for i in 0..n {
        v.swap(a + i, b + i);
    }
}

/// Makes the strategic merge patch that turns `original` into `modified`, as upstream's
/// CreateTwoWayMergePatch does (with `$setElementOrder` lists): what a kubelet sends for a
/// pod's status. `node` is the kind's definition in `schema`.
pub fn two_way(
    schema: &Schema,
    node: Option<&Value>,
    original: &Value,
    modified: &Value,
) -> Result<Value, PatchError> {
    let empty = Map::new();
    let o = original.as_object().unwrap_or(&empty);
    let m = modified.as_object().unwrap_or(&empty);
    let differ = Differ { schema };
    Ok(Value::Object(differ.diff_maps(o, m, node, false)?))
}

/// [`two_way`] for a kind the schema knows by group, version and kind.
pub fn two_way_for_kind(
    group: &str,
    version: &str,
    kind: &str,
    original: &Value,
    modified: &Value,
) -> Result<Value, PatchError> {
    let schema = super::schema::get().map_err(PatchError::internal)?;
    two_way(
        schema,
        schema.kind(group, version, kind),
        original,
        modified,
    )
}

struct Differ<'a> {
    schema: &'a Schema,
}

/// `%v` of a scalar, as upstream sorts and compares list elements and merge keys.
fn sort_string(v: &Value) -> String {
    go_fmt(v)
}

impl Differ<'_> {
    fn diff_maps(
        &self,
        original: &Obj,
        modified: &Obj,
        node: Option<&Value>,
        retain_keys: bool,
    ) -> Result<Obj, PatchError> {
        let mut patch = Map::new();
        let mut retain: Vec<Value> = Vec::new();
        for (key, mod_v) in modified {
            if retain_keys && !mod_v.is_null() {
                retain.push(Value::from(key.clone()));
            }
            let Some(orig_v) = original.get(key) else {
                patch.insert(key.clone(), mod_v.clone());
                continue;
            };
            if key == DIRECTIVE {
                let (Some(a), Some(b)) = (orig_v.as_str(), mod_v.as_str()) else {
                    return Err(PatchError::internal(format!(
                        "invalid value for special key: {DIRECTIVE}"
                    )));
                };
                if a != b {
                    patch.insert(key.clone(), mod_v.clone());
                }
                continue;
            }
            if kind_of(orig_v) != kind_of(mod_v) {
                patch.insert(key.clone(), mod_v.clone());
                continue;
            }
            let field = self.schema.field(node, key);
            match (orig_v, mod_v) {
                (Value::Object(o), Value::Object(m)) => {
                    if field.strategy == "replace" {
                        patch.insert(key.clone(), mod_v.clone());
                    } else {
                        let p = self.diff_maps(o, m, field.schema, field.retain_keys)?;
                        if !p.is_empty() {
                            patch.insert(key.clone(), Value::Object(p));
                        }
                    }
                }
                (Value::Array(o), Value::Array(m)) => {
                    if field.strategy == "merge" {
                        let (add, delete, order) = self.diff_lists(
                            o,
                            m,
                            field.schema,
                            field.merge_key,
                            field.retain_keys,
                        )?;
                        if !add.is_empty() {
                            patch.insert(key.clone(), Value::Array(add));
                        }
                        if !delete.is_empty() {
                            patch.insert(format!("{DELETE_PREFIX}/{key}"), Value::Array(delete));
                        }
                        if !order.is_empty() {
                            patch.insert(format!("{ORDER_PREFIX}/{key}"), Value::Array(order));
                        }
                    } else if o != m {
                        patch.insert(key.clone(), mod_v.clone());
                    }
                }
                _ => {
                    if !go_eq(orig_v, mod_v) && orig_v != mod_v {
                        patch.insert(key.clone(), mod_v.clone());
                    }
                }
            }
        }
        for key in original.keys() {
            if !modified.contains_key(key) {
                patch.insert(key.clone(), Value::Null);
            }
        }
        let additional = original
            .iter()
            .any(|(k, v)| !v.is_null() && !modified.contains_key(k));
        if !retain.is_empty() && (!patch.is_empty() || additional) {
            retain.sort_by_key(sort_string);
            patch.insert(RETAIN_KEYS.into(), Value::Array(retain));
        }
        Ok(patch)
    }

    /// diffLists: the patch list, the `$deleteFromPrimitiveList` list and the
    /// `$setElementOrder` list of a merge list.
    #[allow(clippy::type_complexity)]
    fn diff_lists(
        &self,
        original: &[Value],
        modified: &[Value],
        node: Option<&Value>,
        key: &str,
        retain_keys: bool,
    ) -> Result<(Vec<Value>, Vec<Value>, Vec<Value>), PatchError> {
        if original.is_empty() {
            return Ok((modified.to_vec(), Vec::new(), Vec::new()));
        }
        let kind = slice_element_type(&[original, modified])?;
        if kind == Kind::Map {
            let (patch, deletions) =
                self.diff_lists_of_maps(original, modified, node, key, retain_keys)?;
            let mut patch = normalize_slice_order(patch, modified, key, kind)?;
            let order_same = original.len() == modified.len()
                && original
                    .iter()
                    .zip(modified)
                    .try_fold(true, |same, (a, b)| {
                        Ok::<bool, PatchError>(same && merge_key_value_equal(a, b, key)?)
                    })?;
            patch.extend(deletions);
            let order = if !patch.is_empty() || !order_same {
                modified
                    .iter()
                    .map(|v| {
                        let mut m = Map::new();
                        m.insert(key.to_string(), v.get(key).cloned().unwrap_or(Value::Null));
                        Value::Object(m)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            return Ok((patch, Vec::new(), order));
        }
        let (add, delete) = diff_lists_of_scalars(original, modified);
        let add = normalize_slice_order(add, modified, key, kind)?;
        let order = if !delete.is_empty() || original != modified {
            modified.to_vec()
        } else {
            Vec::new()
        };
        Ok((add, delete, order))
    }

    fn diff_lists_of_maps(
        &self,
        original: &[Value],
        modified: &[Value],
        node: Option<&Value>,
        key: &str,
        retain_keys: bool,
    ) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
        let sorted = |l: &[Value]| -> Result<Vec<(String, Value)>, PatchError> {
            let mut out = Vec::with_capacity(l.len());
            for v in l {
                if !v.is_object() {
                    return Err(err_bad_arg_type(MAP_TYPE, v));
                }
                let Some(k) = v.get(key) else {
                    return Err(err_no_merge_key(v, key));
                };
                out.push((sort_string(k), v.clone()));
            }
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(out)
        };
        let (o, m) = (sorted(original)?, sorted(modified)?);
        let (mut oi, mut mi) = (0, 0);
        let mut patch = Vec::new();
        let mut deletions = Vec::new();
        while oi < o.len() || mi < m.len() {
            let both = oi < o.len() && mi < m.len();
            if both && o[oi].0 == m[mi].0 {
                if let (Some(ov), Some(mv)) = (o[oi].1.as_object(), m[mi].1.as_object()) {
                    let mut p = self.diff_maps(ov, mv, node, retain_keys)?;
                    if !p.is_empty() {
                        p.insert(key.to_string(), mv.get(key).cloned().unwrap_or(Value::Null));
                        patch.push(Value::Object(p));
                    }
                }
                oi += 1;
                mi += 1;
            } else if oi >= o.len() || (both && o[oi].0 > m[mi].0) {
                patch.push(m[mi].1.clone());
                mi += 1;
            } else {
                let mut d = Map::new();
                d.insert(
                    key.to_string(),
                    o[oi].1.get(key).cloned().unwrap_or(Value::Null),
                );
                d.insert(DIRECTIVE.into(), Value::from("delete"));
                deletions.push(Value::Object(d));
                oi += 1;
            }
        }
        Ok((patch, deletions))
    }
}

/// diffListsOfScalars: what `modified` adds and what it drops, by `%v`.
fn diff_lists_of_scalars(original: &[Value], modified: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let sorted = |l: &[Value]| {
        let mut v: Vec<(String, Value)> = l.iter().map(|x| (sort_string(x), x.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let (o, m) = (sorted(original), sorted(modified));
    let (mut oi, mut mi) = (0, 0);
    let mut add = Vec::new();
    let mut delete: Vec<Value> = Vec::new();
    while oi < o.len() || mi < m.len() {
        let both = oi < o.len() && mi < m.len();
        if both && o[oi].0 == m[mi].0 {
            oi += 1;
            mi += 1;
        } else if oi >= o.len() || (both && o[oi].0 > m[mi].0) {
            add.push(m[mi].1.clone());
            mi += 1;
        } else {
            delete.push(o[oi].1.clone());
            oi += 1;
        }
    }
    (add, deduplicate_scalars(delete))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(patch: &Value, target: &mut Value) -> Result<(), PatchError> {
        apply_to_kind("", "v1", "Pod", target, patch)
    }

    #[test]
    fn container_statuses_are_replaced_whole() {
        let mut p = json!({"status": {"containerStatuses": [
            {"name": "a", "state": {"running": {"startedAt": "t0"}}, "restartCount": 0}]}});
        pod(
            &json!({"status": {"containerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 1}}, "restartCount": 1}]}}),
            &mut p,
        )
        .unwrap();
        assert_eq!(
            p["status"]["containerStatuses"],
            json!([{"name": "a", "state": {"terminated": {"exitCode": 1}}, "restartCount": 1}])
        );
    }

    #[test]
    fn merge_keys_come_from_the_schema() {
        let mut p = json!({"spec": {"containers": [{"name": "c", "image": "i",
            "volumeMounts": [{"name": "v", "mountPath": "/a"}],
            "ports": [{"containerPort": 80, "name": "http"}]}],
            "hostAliases": [{"ip": "1.1.1.1", "hostnames": ["a"]}]}});
        pod(
            &json!({"spec": {"containers": [{"name": "c",
                "volumeMounts": [{"name": "v", "mountPath": "/b"}],
                "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
                "hostAliases": [{"ip": "1.1.1.1", "hostnames": ["b"]}]}}),
            &mut p,
        )
        .unwrap();
        let c = &p["spec"]["containers"][0];
        assert_eq!(c["image"], "i");
        // volumeMounts merge by mountPath: a second mount of the same volume.
        assert_eq!(c["volumeMounts"].as_array().unwrap().len(), 2);
        assert_eq!(
            c["ports"],
            json!([{"containerPort": 80, "name": "http", "protocol": "TCP"}])
        );
        // hostnames has no strategy: replaced.
        assert_eq!(
            p["spec"]["hostAliases"],
            json!([{"ip": "1.1.1.1", "hostnames": ["b"]}])
        );
    }

    #[test]
    fn node_status_heartbeat() {
        let mut node = json!({"metadata": {"name": "n1", "labels": {"a": "1"}}, "status": {
            "conditions": [{"type": "Ready", "status": "False", "reason": "Starting"}, {"type": "MemoryPressure", "status": "False"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}});
        let patch = json!({"metadata": {"labels": {"b": "2"}}, "status": {
            "$setElementOrder/conditions": [{"type": "MemoryPressure"}, {"type": "Ready"}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "addresses": [{"$patch": "replace"}, {"type": "Hostname", "address": "n1"}]}});
        apply_to_kind("", "v1", "Node", &mut node, &patch).unwrap();
        assert_eq!(node["metadata"]["labels"], json!({"a": "1", "b": "2"}));
        assert_eq!(
            node["status"]["conditions"],
            json!([{"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True", "reason": "KubeletReady"}])
        );
        assert_eq!(
            node["status"]["addresses"],
            json!([{"type": "Hostname", "address": "n1"}])
        );
    }

    #[test]
    fn finalizers_are_a_union_and_delete_from_primitive_list() {
        let mut p = json!({"metadata": {"finalizers": ["a", "b"]}});
        pod(
            &json!({"metadata": {"finalizers": ["c", "a"], "$deleteFromPrimitiveList/finalizers": ["b"]}}),
            &mut p,
        )
        .unwrap();
        assert_eq!(p["metadata"]["finalizers"], json!(["c", "a"]));
    }

    #[test]
    fn errors_carry_the_api_status() {
        let mut p =
            json!({"metadata": {"finalizers": ["a"]}, "spec": {"containers": [{"name": "a"}]}});
        let e = pod(&json!({"spec": {"containers": [{"image": "x"}]}}), &mut p).unwrap_err();
        assert_eq!((e.code, e.reason), (500, ""));
        assert_eq!(
            e.message,
            "map: map[image:x] does not contain declared merge key: name"
        );
        let e = pod(&json!({"spec": {"$retainKeys": "x"}}), &mut p).unwrap_err();
        assert_eq!((e.code, e.reason), (400, "BadRequest"));
        let e = pod(
            &json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["x"]}}),
            &mut p,
        )
        .unwrap_err();
        assert_eq!(e.message, "invalid patch format of primitive list");
    }

    #[test]
    fn two_way_makes_what_the_kubelet_sends() {
        let old = json!({"status": {"phase": "Pending", "conditions": [
            {"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "a", "ready": false, "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        let new = json!({"metadata": {"uid": "u1"}, "status": {"phase": "Running", "conditions": [
            {"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {"startedAt": "t"}}}]}});
        let p = two_way_for_kind("", "v1", "Pod", &old, &new).unwrap();
        assert_eq!(
            p,
            json!({"metadata": {"uid": "u1"}, "status": {
                "$setElementOrder/conditions": [{"type": "Initialized"}, {"type": "Ready"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {"startedAt": "t"}}}],
                "phase": "Running"}})
        );
        let mut applied = old.clone();
        pod(&p, &mut applied).unwrap();
        assert_eq!(applied, new);
    }

    #[test]
    fn go_formats() {
        assert_eq!(go_float(8080.0), "8080");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(
            go_fmt(&json!({"b": [1, "x"], "a": null})),
            "map[a:<nil> b:[1 x]]"
        );
    }
}
