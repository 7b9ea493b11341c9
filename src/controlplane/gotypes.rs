//! Objects as kube-apiserver's JSON round trip through Go structs leaves them: a request body is
//! decoded into the kind's Go type and encoded again, so unknown fields are dropped, a value of
//! the wrong JSON type is refused, a field without `omitempty` is always written (its zero
//! value when unset: `""`, `0`, `false`, `null`, or the zero struct), `omitempty` drops empty
//! strings, numbers, booleans, lists and maps but never a struct (an unset metav1.Time is
//! written as `null`), and times are written in UTC to the second (MicroTime: microsecond).
//!
//! The field table (`gotypes.json`) is generated from the Go API types by
//! `scripts/gotypes.py`, for the kinds the control plane serves; it names the Kubernetes
//! release it was read from (the reference kube-apiserver's). Fields newer than that release
//! are kept, as they came, where the newest Go types have them (the protobuf schema, generated
//! from a later k8s.io/api): clients up to that release send them.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize)]
struct Table {
    types: HashMap<String, Vec<(String, String, bool)>>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    serde_json::from_str(include_str!("gotypes.json")).unwrap_or(Table {
        types: HashMap::new(),
    })
});

/// The Go type name of a served kind's root (`core.Pod`), from its API group and kind.
pub fn root_type(group: &str, kind: &str) -> String {
    let pkg = match group {
        "" => "core",
        "coordination.k8s.io" => "coordination",
        "storage.k8s.io" => "storage",
        "node.k8s.io" => "node",
        "meta.k8s.io" => "meta",
        other => other,
    };
    format!("{pkg}.{kind}")
}

/// Decodes `input` as Go type `ty` and encodes it again; fields the table does not know are
/// kept where the newest Go types have them (see [`super::protobuf::has_field`]). The error
/// reads as Go's: `cannot unmarshal string into Go
/// struct field PodSpec.spec.containers of type []v1.Container`.
pub fn round_trip(ty: &str, input: &Value) -> Result<Value, String> {
    if !TABLE.types.contains_key(ty) {
        return Ok(input.clone());
    }
    convert(ty, input, &Context::root(ty))
}

struct Context {
    /// The struct whose field is being decoded, as Go names it in errors.
    owner: String,
    path: String,
}

impl Context {
    fn root(ty: &str) -> Self {
        Context {
            owner: short(ty).to_string(),
            path: String::new(),
        }
    }
    fn field(&self, owner: &str, name: &str) -> Self {
        Context {
            owner: short(owner).to_string(),
            path: if self.path.is_empty() {
                name.to_string()
            } else {
                format!("{}.{name}", self.path)
            },
        }
    }
    fn error(&self, got: &Value, ty: &str) -> String {
        let kind = match got {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        format!(
            "cannot unmarshal {kind} into Go struct field {}.{} of type {}",
            self.owner,
            self.path,
            go_name(ty)
        )
    }
}

fn short(ty: &str) -> &str {
    ty.rsplit('.').next().unwrap_or(ty)
}

/// How Go prints a type in an unmarshal error.
fn go_name(ty: &str) -> String {
    if let Some(t) = ty.strip_prefix('*') {
        return format!("*{}", go_name(t));
    }
    if let Some(t) = ty.strip_prefix("[]") {
        return format!("[]{}", go_name(t));
    }
    if let Some(t) = ty.strip_prefix("map[]") {
        return format!("map[string]{}", go_name(t));
    }
    match ty {
        "int" => "int32".into(),
        "float" => "float64".into(),
        "bytes" => "[]uint8".into(),
        "time" => "v1.Time".into(),
        "microtime" => "v1.MicroTime".into(),
        "quantity" => "resource.Quantity".into(),
        "intorstring" => "intstr.IntOrString".into(),
        other => match other.split_once('.') {
            Some((_, name)) => format!("v1.{name}"),
            None => other.into(),
        },
    }
}

fn convert(ty: &str, v: &Value, at: &Context) -> Result<Value, String> {
    if let Some(inner) = ty.strip_prefix('*') {
        return match v {
            Value::Null => Ok(Value::Null),
            _ => convert(inner, v, at),
        };
    }
    if let Some(item) = ty.strip_prefix("[]") {
        return match v {
            Value::Null => Ok(Value::Null),
            Value::Array(items) => items
                .iter()
                .map(|x| convert(item, x, at))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            _ => Err(at.error(v, ty)),
        };
    }
    if let Some(item) = ty.strip_prefix("map[]") {
        return match v {
            Value::Null => Ok(Value::Null),
            Value::Object(m) => m
                .iter()
                .map(|(k, x)| Ok((k.clone(), convert(item, x, at)?)))
                .collect::<Result<Map<_, _>, String>>()
                .map(Value::Object),
            _ => Err(at.error(v, ty)),
        };
    }
    match ty {
        "string" => match v {
            Value::Null => Ok(Value::String(String::new())),
            Value::String(_) => Ok(v.clone()),
            _ => Err(at.error(v, ty)),
        },
        "int" => match v {
            Value::Null => Ok(Value::from(0)),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
            _ => Err(at.error(v, ty)),
        },
        "float" => match v {
            Value::Null => Ok(Value::from(0)),
            Value::Number(_) => Ok(v.clone()),
            _ => Err(at.error(v, ty)),
        },
        "bool" => match v {
            Value::Null => Ok(Value::Bool(false)),
            Value::Bool(_) => Ok(v.clone()),
            _ => Err(at.error(v, ty)),
        },
        "bytes" => match v {
            Value::Null | Value::String(_) => Ok(v.clone()),
            _ => Err(at.error(v, ty)),
        },
        "time" | "microtime" => match v {
            Value::Null => Ok(Value::Null),
            Value::String(s) if s.is_empty() => Ok(Value::Null),
            Value::String(s) => {
                let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| {
                    format!(
                        "{}.{}: parsing time {s:?} as RFC 3339: {e}",
                        at.owner, at.path
                    )
                })?;
                let utc = t.with_timezone(&chrono::Utc);
                let format = if ty == "time" {
                    "%Y-%m-%dT%H:%M:%SZ"
                } else {
                    "%Y-%m-%dT%H:%M:%S%.6fZ"
                };
                Ok(Value::String(utc.format(format).to_string()))
            }
            _ => Err(at.error(v, ty)),
        },
        // resource.Quantity's UnmarshalJSON parses the string (or the number's text) and its
        // MarshalJSON prints the canonical form, so a quantity is stored as `1`, not `1000m`.
        "quantity" => {
            let text = match v {
                Value::Null => return Ok(Value::String("0".into())),
                Value::String(s) => s.trim().to_string(),
                Value::Number(n) => n.to_string(),
                _ => return Err(at.error(v, ty)),
            };
            super::quantity::canonical(&text)
                .map(Value::String)
                .map_err(|e| format!("{}.{}: {e}", at.owner, at.path))
        }
        "intorstring" => match v {
            Value::Null => Ok(Value::from(0)),
            Value::String(_) => Ok(v.clone()),
            Value::Number(n) if n.is_i64() => Ok(v.clone()),
            _ => Err(at.error(v, ty)),
        },
        "raw" | "any" => Ok(v.clone()),
        name => match TABLE.types.get(name) {
            Some(_) => match v {
                Value::Null => Ok(zero_struct(name)),
                Value::Object(m) => encode_struct(name, m, at),
                _ => Err(at.error(v, ty)),
            },
            None => Ok(v.clone()),
        },
    }
}

/// The newest Go types' name of a table type: `core.PodSpec` is `core.v1.PodSpec`.
fn newer_name(name: &str) -> String {
    match name.split_once('.') {
        Some((pkg, ty)) => format!("{pkg}.v1.{ty}"),
        None => name.to_string(),
    }
}

/// The fields of a struct, its inline (embedded) structs' fields in their place.
fn fields(name: &str) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for (field, ty, omit) in TABLE.types.get(name).into_iter().flatten() {
        if field.is_empty() {
            out.extend(fields(ty));
        } else {
            out.push((field.clone(), ty.clone(), *omit));
        }
    }
    out
}

fn encode_struct(name: &str, m: &Map<String, Value>, at: &Context) -> Result<Value, String> {
    let fields = fields(name);
    let mut out = Map::new();
    for (field, ty, omit) in &fields {
        let value = match m.get(field) {
            Some(v) => convert(ty, v, &at.field(name, field))?,
            None => zero(ty),
        };
        if *omit && empty(ty, &value) {
            continue;
        }
        out.insert(field.clone(), value);
    }
    // Fields newer than the table: kept as they came where the newest Go types have them
    // (the protobuf schema's, generated from a later k8s.io/api), so what clients up to that
    // release send survives; anything else is dropped as unknown.
    let newer = newer_name(name);
    for (key, value) in m {
        if !value.is_null()
            && !fields.iter().any(|(f, _, _)| f == key)
            && super::protobuf::has_field(&newer, key)
        {
            out.insert(key.clone(), value.clone());
        }
    }
    Ok(Value::Object(out))
}

/// The encoding of a zero value of `ty`.
fn zero(ty: &str) -> Value {
    if ty.starts_with('*') || ty.starts_with("[]") || ty.starts_with("map[]") {
        return Value::Null;
    }
    match ty {
        "string" => Value::String(String::new()),
        "int" | "float" | "intorstring" => Value::from(0),
        "bool" => Value::Bool(false),
        "quantity" => Value::String("0".into()),
        "bytes" | "time" | "microtime" | "raw" | "any" => Value::Null,
        name if TABLE.types.contains_key(name) => zero_struct(name),
        _ => Value::Null,
    }
}

fn zero_struct(name: &str) -> Value {
    let mut out = Map::new();
    for (field, ty, omit) in fields(name) {
        let value = zero(&ty);
        if omit && empty(&ty, &value) {
            continue;
        }
        out.insert(field, value);
    }
    Value::Object(out)
}

/// What `omitempty` drops: false, 0, "", nil and empty lists and maps; never a struct.
fn empty(ty: &str, v: &Value) -> bool {
    let is_struct = TABLE.types.contains_key(ty)
        || matches!(ty, "time" | "microtime" | "quantity" | "intorstring");
    if is_struct {
        return false;
    }
    if ty.starts_with('*') || matches!(ty, "raw" | "any") {
        return v.is_null();
    }
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_without_omitempty_are_written_and_structs_never_dropped() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null}]}});
        let out = round_trip("core.Pod", &pod).unwrap();
        assert_eq!(out["spec"]["containers"][0]["resources"], json!({}));
        assert_eq!(out["status"]["conditions"][0]["lastProbeTime"], Value::Null);
        assert_eq!(out["metadata"]["creationTimestamp"], Value::Null);
        let node = round_trip("core.Node", &json!({"metadata": {"name": "n"}})).unwrap();
        assert_eq!(
            node["status"]["daemonEndpoints"],
            json!({"kubeletEndpoint": {"Port": 0}})
        );
        assert_eq!(node["spec"], json!({}));
    }

    #[test]
    fn unknown_fields_dropped_unless_the_newer_model_knows_them() {
        let cm = json!({"metadata": {"name": "x"}, "bogus": 1, "data": {"a": "b"}});
        let out = round_trip("core.ConfigMap", &cm).unwrap();
        assert!(out.get("bogus").is_none());
        // hostUsers (1.25) and a container's restartPolicy (1.28) are newer than the table.
        let pod = json!({"spec": {"hostUsers": false, "bogus": 1,
            "initContainers": [{"name": "s", "image": "i", "restartPolicy": "Always", "nope": 2}]}});
        let out = round_trip("core.Pod", &pod).unwrap();
        assert_eq!(out["spec"]["hostUsers"], false);
        assert!(out["spec"].get("bogus").is_none());
        assert_eq!(out["spec"]["initContainers"][0]["restartPolicy"], "Always");
        assert!(out["spec"]["initContainers"][0].get("nope").is_none());
    }

    #[test]
    fn quantities_are_stored_in_canonical_form_wherever_the_types_have_one() {
        let pod = json!({"spec": {"overhead": {"cpu": "0.25"},
            "containers": [{"name": "c", "image": "i",
                "resources": {"limits": {"cpu": "1000m", "memory": "1024Mi"}, "requests": {"cpu": 0.5, "memory": " 1Gi "}}}],
            "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "2048Ki"}}]}});
        let out = round_trip("core.Pod", &pod).unwrap();
        let c = &out["spec"]["containers"][0]["resources"];
        assert_eq!(c["limits"], json!({"cpu": "1", "memory": "1Gi"}));
        assert_eq!(c["requests"], json!({"cpu": "500m", "memory": "1Gi"}));
        assert_eq!(out["spec"]["overhead"]["cpu"], "250m");
        assert_eq!(out["spec"]["volumes"][0]["emptyDir"]["sizeLimit"], "2Mi");
        let node = json!({"status": {"capacity": {"memory": "24609408Ki", "cpu": "2000m"},
            "allocatable": {"pods": "110", "cpu": "0.0000000001"}}});
        let out = round_trip("core.Node", &node).unwrap();
        assert_eq!(
            out["status"]["capacity"],
            json!({"memory": "24609408Ki", "cpu": "2"})
        );
        // Below a nano it is rounded up, never to nothing.
        assert_eq!(out["status"]["allocatable"]["cpu"], "1n");
        let err = round_trip(
            "core.Pod",
            &json!({"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1 core"}}}]}}),
        )
        .unwrap_err();
        assert!(err.contains("quantities must match"), "{err}");
    }

    #[test]
    fn wrong_types_are_errors_naming_the_field_and_times_are_normalized() {
        let err = round_trip("core.Pod", &json!({"spec": {"containers": "none"}})).unwrap_err();
        assert_eq!(
            err,
            "cannot unmarshal string into Go struct field PodSpec.spec.containers of type []v1.Container"
        );
        let out = round_trip(
            "core.Event",
            &json!({"firstTimestamp": "2026-01-02T03:04:05.678+01:00", "eventTime": "2026-01-02T03:04:05.5Z"}),
        )
        .unwrap();
        assert_eq!(out["firstTimestamp"], "2026-01-02T02:04:05Z");
        assert_eq!(out["eventTime"], "2026-01-02T03:04:05.500000Z");
        assert_eq!(out["reportingComponent"], "");
    }
}
