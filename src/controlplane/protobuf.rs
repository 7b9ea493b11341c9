//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), decoded to the
//! JSON kube-apiserver would store from them.
//!
//! A body is the magic `k8s\0` and a `runtime.Unknown` envelope: `typeMeta` (apiVersion,
//! kind), `raw` (the object's own protobuf message), `contentEncoding` and `contentType`
//! (upstream: k8s.io/apimachinery/pkg/runtime/serializer/protobuf). The object message is
//! decoded against `protobuf_schema.txt`, which scripts/protobuf-schema generates from the
//! upstream Go types, and printed the way Go's encoding/json prints those types: JSON names,
//! omitempty and omitzero, pointers that print a zero and values that do not, inlined
//! structs (`Volume`'s `VolumeSource`), and the types with their own encodings (Time,
//! MicroTime, Duration, Quantity as quantity.rs prints it, IntOrString, FieldsV1,
//! RawExtension, `[]byte` as base64).
//!
//! Decoding follows the generated gogo-protobuf code: unknown fields are skipped, the last
//! occurrence of a scalar wins, occurrences of a message merge, packed and unpacked repeated
//! numbers are both read, a map entry without a value holds the zero value.

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine;
use serde_json::{Map, Value, json};

use super::resources::RESOURCES;

/// The media type of a protobuf body.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// What every protobuf body starts with.
pub const MAGIC: &[u8] = b"k8s\0";

/// Objects nest a few levels (Pod, spec, volume, projection, item); a body nesting deeper
/// than this is refused rather than followed down the stack.
const MAX_DEPTH: usize = 64;

static SCHEMA: LazyLock<Result<Schema, String>> =
    LazyLock::new(|| Schema::parse(include_str!("protobuf_schema.txt")));

/// Whether the Go type `message` (`core.v1.PodSpec`) of the newest API types this schema was
/// generated from has a field written as `json`, its inlined members' included: which fields of
/// a JSON body a newer kube-apiserver keeps.
pub fn has_field(message: &str, json: &str) -> bool {
    fn find(schema: &Schema, message: &str, json: &str, depth: usize) -> bool {
        let Some(fields) = schema.messages.get(message) else {
            return false;
        };
        fields.iter().any(|f| match (&f.json, &f.ty) {
            (Some(name), _) => name == json,
            (None, Ty::Message(inner)) if depth < 8 => find(schema, inner, json, depth + 1),
            _ => false,
        })
    }
    match &*SCHEMA {
        Ok(schema) => find(schema, message, json, 0),
        Err(_) => false,
    }
}

/// Decodes a protobuf request body meant for an endpoint of `api_version`/`kind` (an
/// envelope without them takes these, as upstream's decoder defaults them) into the JSON
/// object kube-apiserver would store, with `apiVersion` and `kind` set.
///
/// Errors are the message of the 400 BadRequest kube-apiserver answers: a body without the
/// magic, a malformed message, a field of the wrong wire type, a kind in another API version
/// (as upstream's create and update handlers word it), a kind this API does not serve, a
/// Quantity or IntOrString that cannot be read.
pub fn decode(body: &[u8], api_version: &str, kind: &str) -> Result<Value, String> {
    let schema = SCHEMA.as_ref().map_err(Clone::clone)?;
    // An envelope that cannot be read names no kind: upstream's create and update handlers
    // then quote the start of the body.
    let (body_version, body_kind, raw) = envelope(body).map_err(|e| match kind {
        "DeleteOptions" => e,
        _ => format!(
            "the object provided is unrecognized (must be of type {kind}): {e} ({})",
            summary(body)
        ),
    })?;
    let version = if body_version.is_empty() {
        api_version.to_string()
    } else {
        body_version
    };
    let body_kind = if body_kind.is_empty() {
        kind.to_string()
    } else {
        body_kind
    };
    let (group, v) = split(&version);
    let cannot =
        |e: String| format!("{body_kind} in version {v:?} cannot be handled as a {kind}: {e}");
    let no_kind = || format!("no kind {body_kind:?} is registered for version {version:?}");
    let message = if kind == "DeleteOptions" {
        // Any group's DeleteOptions: upstream accepts those old clients send.
        if body_kind != "DeleteOptions" {
            return Err(no_kind());
        }
        format!("meta.{v}.DeleteOptions")
    } else {
        let (want_group, want_version) = split(api_version);
        let package = |g: &str| {
            if g.is_empty() {
                "core".to_string()
            } else {
                g.split('.').next().unwrap_or(g).to_string()
            }
        };
        let served = RESOURCES
            .iter()
            .any(|r| r.group == group && r.version == v && r.kind == body_kind);
        if body_kind == kind && group == want_group && v != want_version {
            return Err(format!(
                "the API version in the data ({version}) does not match the expected API version ({api_version})"
            ));
        }
        if !served {
            return Err(cannot(no_kind()));
        }
        if body_kind != kind || group != want_group {
            return Err(cannot(format!(
                "converting ({v}.{body_kind}) to ({}.{kind}): unknown conversion",
                package(want_group)
            )));
        }
        format!("{}.{v}.{kind}", package(group))
    };
    let mut obj = Map::new();
    obj.insert("kind".into(), json!(body_kind));
    obj.insert("apiVersion".into(), json!(version));
    let fields = Decoder { schema }
        .message(&message, &[raw], 0)
        .map_err(|e| match kind {
            "DeleteOptions" => e,
            _ => cannot(e),
        })?;
    obj.extend(fields);
    Ok(Value::Object(obj))
}

/// Whether a DELETE body, read from JSON, YAML or protobuf, is DeleteOptions as
/// kube-apiserver reads it: an object of kind DeleteOptions (or none) whose fields have their
/// types. The error is the message of the 400 BadRequest it answers otherwise (upstream:
/// k8s.io/apiserver/pkg/endpoints/handlers/delete.go).
pub fn delete_options(opts: &Value) -> Result<(), String> {
    // JSON null reads as empty options.
    if opts.is_null() {
        return Ok(());
    }
    let Some(o) = opts.as_object() else {
        return Err(format!("the body is not DeleteOptions: {opts}"));
    };
    match o.get("kind") {
        None => {}
        Some(Value::String(k)) if k.is_empty() || k == "DeleteOptions" => {}
        Some(k) => {
            let version = o.get("apiVersion").and_then(Value::as_str).unwrap_or("v1");
            return Err(format!(
                "no kind {k} is registered for version {version:?}: only DeleteOptions is accepted"
            ));
        }
    }
    serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions>(
        opts.clone(),
    )
    .map(|_| ())
    .map_err(|e| format!("the body is not DeleteOptions: {e}"))
}

/// The envelope's apiVersion, kind and raw object.
fn envelope(body: &[u8]) -> Result<(String, String, &[u8]), String> {
    if body.is_empty() {
        return Err("empty data".into());
    }
    let Some(data) = body.strip_prefix(MAGIC) else {
        return Err(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
                .into(),
        );
    };
    if data.is_empty() {
        return Err("empty body".into());
    }
    let unknown = last_fields(data)?;
    let type_meta = match unknown.get(&1) {
        Some(w) => last_fields(w.bytes("typeMeta")?)?,
        None => HashMap::new(),
    };
    let text = |m: &HashMap<u32, Wire>, n: u32, name: &str| -> Result<String, String> {
        m.get(&n)
            .map(|w| {
                w.bytes(name)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            })
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let raw = match unknown.get(&2) {
        Some(w) => w.bytes("raw")?,
        None => &[],
    };
    Ok((
        text(&type_meta, 1, "apiVersion")?,
        text(&type_meta, 2, "kind")?,
        raw,
    ))
}

/// The start of a body as upstream's summarizeData quotes it: JSON as text, anything else
/// in hex, 30 bytes at most.
fn summary(body: &[u8]) -> String {
    let head = &body[..body.len().min(30)];
    let more = if body.len() > 30 { " ..." } else { "" };
    match body.first() {
        None => "<empty>".into(),
        Some(b'{') => format!("{}{more}", String::from_utf8_lossy(head)),
        Some(_) => format!(
            "{}{more}",
            head.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
}

/// `group/version` or a core `version` as (group, version).
fn split(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

// ---------------------------------------------------------------------------------------
// The schema.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Value,
    Pointer,
    Slice,
    Map,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ty {
    String,
    Bool,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Float64,
    Bytes,
    Time,
    MicroTime,
    Duration,
    FieldsV1,
    Quantity,
    IntOrString,
    RawExtension,
    Message(String),
}

#[derive(Debug, Clone)]
struct Field {
    number: u32,
    /// None: the members are inlined into the parent object.
    json: Option<String>,
    shape: Shape,
    ty: Ty,
    omitempty: bool,
    omitzero: bool,
}

/// Messages by name (`core.v1.Pod`), each with its fields in Go struct order.
#[derive(Debug)]
struct Schema {
    messages: HashMap<String, Vec<Field>>,
}

impl Schema {
    /// The text scripts/protobuf-schema writes; every message a field names must be in it.
    fn parse(text: &str) -> Result<Schema, String> {
        let mut messages: HashMap<String, Vec<Field>> = HashMap::new();
        let mut current: Option<String> = None;
        for (i, line) in text.lines().enumerate() {
            let bad = |what: &str| format!("protobuf schema line {}: {what}: {line}", i + 1);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix("message ") {
                messages.insert(name.to_string(), Vec::new());
                current = Some(name.to_string());
                continue;
            }
            let Some(fields) = current.as_ref().and_then(|c| messages.get_mut(c)) else {
                return Err(bad("a field outside a message"));
            };
            let t: Vec<&str> = line.split_whitespace().collect();
            let [number, json, shape, ty, flags] = t.as_slice() else {
                return Err(bad("not NUMBER JSON SHAPE TYPE FLAGS"));
            };
            let number = number.parse::<u32>().map_err(|_| bad("the number"))?;
            let shape = match *shape {
                "v" => Shape::Value,
                "p" => Shape::Pointer,
                "s" => Shape::Slice,
                "m" => Shape::Map,
                _ => return Err(bad("the shape")),
            };
            let ty = match *ty {
                "string" => Ty::String,
                "bool" => Ty::Bool,
                "int32" => Ty::Int32,
                "int64" => Ty::Int64,
                "uint32" => Ty::Uint32,
                "uint64" => Ty::Uint64,
                "float64" => Ty::Float64,
                "bytes" => Ty::Bytes,
                "time" => Ty::Time,
                "microtime" => Ty::MicroTime,
                "duration" => Ty::Duration,
                "fieldsv1" => Ty::FieldsV1,
                "quantity" => Ty::Quantity,
                "intorstring" => Ty::IntOrString,
                "rawext" => Ty::RawExtension,
                m if m.contains('.') => Ty::Message(m.to_string()),
                _ => return Err(bad("the type")),
            };
            let json = (*json != "-").then(|| json.to_string());
            if json.is_none() && (shape != Shape::Value || !matches!(ty, Ty::Message(_))) {
                return Err(bad("only a struct value can be inlined"));
            }
            fields.push(Field {
                number,
                json,
                shape,
                ty,
                omitempty: flags.contains('o'),
                omitzero: flags.contains('z'),
            });
        }
        for (name, fields) in &messages {
            for f in fields {
                if let Ty::Message(m) = &f.ty
                    && !messages.contains_key(m)
                {
                    return Err(format!(
                        "protobuf schema: {name} refers to {m}, which it lacks"
                    ));
                }
            }
        }
        Ok(Schema { messages })
    }
}

// ---------------------------------------------------------------------------------------
// The wire format.

#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

impl<'a> Wire<'a> {
    fn number(self) -> u8 {
        match self {
            Wire::Varint(_) => 0,
            Wire::Fixed64(_) => 1,
            Wire::Bytes(_) => 2,
            Wire::Fixed32 => 5,
        }
    }

    /// Upstream names the Go field: the JSON name capitalised, mostly.
    fn wrong(self, field: &str) -> String {
        let mut chars = field.chars();
        let go_name: String = chars
            .next()
            .map(|c| c.to_ascii_uppercase())
            .into_iter()
            .chain(chars)
            .collect();
        format!(
            "proto: wrong wireType = {} for field {go_name}",
            self.number()
        )
    }

    fn bytes(self, field: &str) -> Result<&'a [u8], String> {
        match self {
            Wire::Bytes(b) => Ok(b),
            other => Err(other.wrong(field)),
        }
    }

    fn varint(self, field: &str) -> Result<u64, String> {
        match self {
            Wire::Varint(v) => Ok(v),
            other => Err(other.wrong(field)),
        }
    }
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let Some(&b) = buf.get(*pos) else {
            return Err("unexpected EOF".into());
        };
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err("proto: integer overflow".into())
}

/// The fields of one message, in order.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Wire<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        Some(self.field())
    }
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields { buf, pos: 0 }
    }

    fn field(&mut self) -> Result<(u32, Wire<'a>), String> {
        let key = varint(self.buf, &mut self.pos)?;
        let (number, wire) = (key >> 3, key & 7);
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(format!("proto: illegal tag {number} (wire type {wire})"));
        }
        let take = |pos: &mut usize, n: usize| -> Result<&'a [u8], String> {
            let end = pos
                .checked_add(n)
                .filter(|e| *e <= self.buf.len())
                .ok_or("unexpected EOF")?;
            let b = &self.buf[*pos..end];
            *pos = end;
            Ok(b)
        };
        let w = match wire {
            0 => Wire::Varint(varint(self.buf, &mut self.pos)?),
            1 => {
                let b = take(&mut self.pos, 8)?;
                Wire::Fixed64(u64::from_le_bytes(
                    b.try_into().map_err(|_| "unexpected EOF")?,
                ))
            }
            2 => {
                let n = varint(self.buf, &mut self.pos)?;
                let n = usize::try_from(n)
                    .map_err(|_| "proto: negative length found during unmarshaling")?;
                Wire::Bytes(take(&mut self.pos, n)?)
            }
            // No field of the served kinds is fixed32: read past it.
            5 => {
                take(&mut self.pos, 4)?;
                Wire::Fixed32
            }
            other => return Err(format!("proto: illegal wireType {other}")),
        };
        Ok((number as u32, w))
    }
}

/// Each field's last occurrence, for the small fixed messages (envelope, Time, Quantity...).
fn last_fields(buf: &[u8]) -> Result<HashMap<u32, Wire<'_>>, String> {
    let mut m = HashMap::new();
    for f in Fields::new(buf) {
        let (n, w) = f?;
        m.insert(n, w);
    }
    Ok(m)
}

// ---------------------------------------------------------------------------------------
// Decoding to JSON.

struct Decoder<'s> {
    schema: &'s Schema,
}

/// What arrived for one field: the occurrences, in order.
#[derive(Default)]
struct Slot<'a> {
    seen: Vec<Wire<'a>>,
}

impl<'s> Decoder<'s> {
    /// A message's JSON members from the occurrences of its bytes (merged, as protobuf merges
    /// repeated occurrences of a message field).
    fn message(
        &self,
        name: &str,
        parts: &[&[u8]],
        depth: usize,
    ) -> Result<Map<String, Value>, String> {
        if depth > MAX_DEPTH {
            return Err("proto: the message nests too deep".into());
        }
        let fields = self
            .schema
            .messages
            .get(name)
            .ok_or_else(|| format!("no protobuf schema for {name}"))?;
        let index: HashMap<u32, usize> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.number, i))
            .collect();
        let mut slots: Vec<Slot> = fields.iter().map(|_| Slot::default()).collect();
        for part in parts {
            for f in Fields::new(part) {
                let (n, w) = f?;
                // Unknown fields are skipped, as the generated code skips them.
                if let Some(&i) = index.get(&n) {
                    slots[i].seen.push(w);
                }
            }
        }
        let mut out = Map::new();
        let mut inlined = Vec::new();
        for (f, slot) in fields.iter().zip(&slots) {
            let Some(json_name) = &f.json else {
                let Ty::Message(m) = &f.ty else {
                    continue;
                };
                let parts = message_parts(&slot.seen, "inline")?;
                inlined.push(self.message(m, &parts, depth + 1)?);
                continue;
            };
            if let Some(v) = self.field(f, json_name, &slot.seen, depth)? {
                out.insert(json_name.clone(), v);
            }
        }
        // Go's encoding/json: a field of the outer struct wins over an inlined one's.
        for members in inlined {
            for (k, v) in members {
                out.entry(k).or_insert(v);
            }
        }
        Ok(out)
    }

    /// One field's JSON value, or None when encoding/json leaves it out.
    fn field(
        &self,
        f: &Field,
        name: &str,
        seen: &[Wire],
        depth: usize,
    ) -> Result<Option<Value>, String> {
        let omit = f.omitempty || f.omitzero;
        match f.shape {
            Shape::Slice => {
                let items = self.repeated(f, name, seen, depth)?;
                Ok(match items.is_empty() {
                    true if omit => None,
                    true => Some(Value::Null),
                    false => Some(Value::Array(items)),
                })
            }
            Shape::Map => {
                let mut map = Map::new();
                for w in seen {
                    let entry = last_fields(w.bytes(name)?)?;
                    let key = match entry.get(&1) {
                        Some(k) => String::from_utf8_lossy(k.bytes(name)?).into_owned(),
                        None => String::new(),
                    };
                    let value = match entry.get(&2) {
                        Some(v) => self.one(&f.ty, name, &[*v], depth)?,
                        // gogo's map decoding starts from an empty []byte, not nil.
                        None if f.ty == Ty::Bytes => json!(""),
                        None => self.one(&f.ty, name, &[], depth)?,
                    };
                    map.insert(key, value);
                }
                Ok(match map.is_empty() {
                    true if omit => None,
                    true => Some(Value::Null),
                    false => Some(Value::Object(map)),
                })
            }
            Shape::Pointer if seen.is_empty() => Ok((!omit).then_some(Value::Null)),
            Shape::Pointer => Ok(Some(self.one(&f.ty, name, seen, depth)?)),
            Shape::Value => {
                let v = self.one(&f.ty, name, seen, depth)?;
                // encoding/json: omitempty leaves out an empty string, []byte, bool or
                // number, never a struct; omitzero asks the struct's IsZero.
                let omit_it = match &f.ty {
                    Ty::String | Ty::Bytes => omit && v.as_str().is_none_or(str::is_empty),
                    Ty::Bool => omit && v == json!(false),
                    Ty::Int32 | Ty::Int64 | Ty::Uint32 | Ty::Uint64 | Ty::Float64 => {
                        omit && v.as_f64() == Some(0.0)
                    }
                    Ty::Time | Ty::MicroTime => f.omitzero && v.is_null(),
                    Ty::Message(_) => f.omitzero && seen.is_empty(),
                    _ => false,
                };
                Ok((!omit_it).then_some(v))
            }
        }
    }

    /// The elements of a repeated field: one per occurrence, numbers also packed.
    fn repeated(
        &self,
        f: &Field,
        name: &str,
        seen: &[Wire],
        depth: usize,
    ) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        for w in seen {
            match (&f.ty, w) {
                (Ty::Bool | Ty::Int32 | Ty::Int64 | Ty::Uint32 | Ty::Uint64, Wire::Bytes(b)) => {
                    let mut pos = 0;
                    while pos < b.len() {
                        let v = varint(b, &mut pos)?;
                        items.push(self.one(&f.ty, name, &[Wire::Varint(v)], depth)?);
                    }
                }
                (Ty::Float64, Wire::Bytes(b)) => {
                    if b.len() % 8 != 0 {
                        return Err("unexpected EOF".into());
                    }
                    for c in b.chunks_exact(8) {
                        let v = u64::from_le_bytes(c.try_into().map_err(|_| "unexpected EOF")?);
                        items.push(self.one(&f.ty, name, &[Wire::Fixed64(v)], depth)?);
                    }
                }
                _ => items.push(self.one(&f.ty, name, &[*w], depth)?),
            }
        }
        Ok(items)
    }

    /// A single value of a type from its occurrences (none: the zero value).
    fn one(&self, ty: &Ty, name: &str, seen: &[Wire], depth: usize) -> Result<Value, String> {
        let last = seen.last().copied();
        Ok(match ty {
            Ty::Message(m) => {
                let parts = message_parts(seen, name)?;
                Value::Object(self.message(m, &parts, depth + 1)?)
            }
            Ty::String => match last {
                Some(w) => json!(String::from_utf8_lossy(w.bytes(name)?)),
                None => json!(""),
            },
            Ty::Bytes => match last {
                Some(w) => json!(base64::engine::general_purpose::STANDARD.encode(w.bytes(name)?)),
                None => Value::Null,
            },
            Ty::Bool => json!(last.map(|w| w.varint(name)).transpose()?.unwrap_or(0) != 0),
            // The generated code keeps the low bits of a wider varint.
            Ty::Int32 => json!(last.map(|w| w.varint(name)).transpose()?.unwrap_or(0) as i32),
            Ty::Int64 => json!(last.map(|w| w.varint(name)).transpose()?.unwrap_or(0) as i64),
            Ty::Uint32 => json!(last.map(|w| w.varint(name)).transpose()?.unwrap_or(0) as u32),
            Ty::Uint64 => json!(last.map(|w| w.varint(name)).transpose()?.unwrap_or(0)),
            Ty::Float64 => {
                let bits = match last {
                    Some(Wire::Fixed64(b)) => b,
                    Some(w) => return Err(w.wrong(name)),
                    None => 0,
                };
                let f = f64::from_bits(bits);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| format!("json: unsupported value: {f}"))?
            }
            Ty::Time | Ty::MicroTime => {
                let Some(w) = last else {
                    return Ok(Value::Null);
                };
                let b = w.bytes(name)?;
                if b.is_empty() {
                    return Ok(Value::Null);
                }
                let t = last_fields(b)?;
                let secs = t
                    .get(&1)
                    .map(|w| w.varint("seconds"))
                    .transpose()?
                    .unwrap_or(0) as i64;
                let nanos = t
                    .get(&2)
                    .map(|w| w.varint("nanos"))
                    .transpose()?
                    .unwrap_or(0) as i32;
                time_json(secs, nanos, *ty == Ty::MicroTime)?
            }
            Ty::Duration => {
                let ns = match last {
                    Some(w) => {
                        let d = last_fields(w.bytes(name)?)?;
                        d.get(&1)
                            .map(|w| w.varint("duration"))
                            .transpose()?
                            .unwrap_or(0) as i64
                    }
                    None => 0,
                };
                json!(go_duration(ns))
            }
            Ty::FieldsV1 | Ty::RawExtension => {
                let raw = match last {
                    Some(w) => last_fields(w.bytes(name)?)?
                        .get(&1)
                        .map(|r| r.bytes("raw"))
                        .transpose()?,
                    None => None,
                };
                match raw {
                    // Upstream prints the raw bytes as they are: they must be JSON.
                    Some(r) if !r.is_empty() => serde_json::from_slice(r)
                        .map_err(|e| format!("{name}: the raw bytes are not JSON: {e}"))?,
                    _ => Value::Null,
                }
            }
            Ty::Quantity => {
                let s = match last {
                    Some(w) => match last_fields(w.bytes(name)?)?.get(&1) {
                        Some(s) => String::from_utf8_lossy(s.bytes("string")?).into_owned(),
                        None => String::new(),
                    },
                    // The zero Quantity prints as "0".
                    None => return Ok(json!("0")),
                };
                json!(super::quantity::canonical(&s)?)
            }
            Ty::IntOrString => {
                let parts = message_parts(seen, name)?;
                let mut kind = 0u64;
                let (mut int, mut text) = (0i32, String::new());
                for p in parts {
                    for f in Fields::new(p) {
                        match f? {
                            (1, w) => kind = w.varint("type")?,
                            (2, w) => int = w.varint("intVal")? as i32,
                            (3, w) => {
                                text = String::from_utf8_lossy(w.bytes("strVal")?).into_owned()
                            }
                            _ => {}
                        }
                    }
                }
                match kind {
                    0 => json!(int),
                    1 => json!(text),
                    _ => return Err(format!("{name}: impossible IntOrString.Type")),
                }
            }
        })
    }
}

/// The bytes of each occurrence of a message field.
fn message_parts<'a>(seen: &[Wire<'a>], name: &str) -> Result<Vec<&'a [u8]>, String> {
    seen.iter().map(|w| w.bytes(name)).collect()
}

/// A Time or MicroTime as upstream prints it: null for the zero time (0001-01-01T00:00:00Z,
/// or an empty message), RFC 3339 in UTC otherwise, whole seconds for Time (its decoding
/// drops the nanoseconds) and microseconds for MicroTime.
fn time_json(secs: i64, nanos: i32, micro: bool) -> Result<Value, String> {
    const ZERO: i64 = -62_135_596_800;
    let nanos = if micro {
        i64::from(nanos) / 1000 * 1000
    } else {
        0
    };
    let t = chrono::DateTime::from_timestamp(secs, 0)
        .and_then(|t| t.checked_add_signed(chrono::Duration::nanoseconds(nanos)))
        .ok_or_else(|| format!("time out of range: {secs}s {nanos}ns"))?;
    if t.timestamp() == ZERO && t.timestamp_subsec_nanos() == 0 {
        return Ok(Value::Null);
    }
    use chrono::{Datelike, Timelike};
    // Go writes the year with at least four digits and a sign only when negative.
    let year = t.year();
    let mut s = if year < 0 {
        format!("-{:04}", -i64::from(year))
    } else {
        format!("{year:04}")
    };
    s.push_str(&format!(
        "-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ));
    if micro {
        s.push_str(&format!(".{:06}", t.timestamp_subsec_micros()));
    }
    s.push('Z');
    Ok(json!(s))
}

/// Go's time.Duration.String: `1h2m3.5s`, `1.5ms`, `0s`.
fn go_duration(ns: i64) -> String {
    fn frac(v: u64, digits: u32) -> String {
        let div = 10u64.pow(digits);
        let (int, rest) = (v / div, v % div);
        if rest == 0 {
            return int.to_string();
        }
        let f = format!("{rest:0width$}", width = digits as usize);
        format!("{int}.{}", f.trim_end_matches('0'))
    }
    if ns == 0 {
        return "0s".into();
    }
    let u = ns.unsigned_abs();
    let body = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", frac(u, 3))
    } else if u < 1_000_000_000 {
        format!("{}ms", frac(u, 6))
    } else {
        let secs = u / 1_000_000_000;
        let s = frac(secs % 60 * 1_000_000_000 + u % 1_000_000_000, 9);
        let (m, h) = (secs / 60 % 60, secs / 3600);
        match (h, secs / 60) {
            (0, 0) => format!("{s}s"),
            (0, _) => format!("{m}m{s}s"),
            _ => format!("{h}h{m}m{s}s"),
        }
    };
    if ns < 0 { format!("-{body}") } else { body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_schema_parses_and_has_every_served_kind() {
        let schema = SCHEMA.as_ref().unwrap();
        for r in RESOURCES {
            let package = if r.group.is_empty() {
                "core"
            } else {
                r.group.split('.').next().unwrap()
            };
            let name = format!("{package}.{}.{}", r.version, r.kind);
            assert!(schema.messages.contains_key(&name), "{name}");
        }
        assert!(schema.messages.contains_key("meta.v1.DeleteOptions"));
    }

    #[test]
    fn a_schema_that_names_a_missing_message_is_refused() {
        let e = Schema::parse("message a.v1.X\n1 y v a.v1.Y -\n").unwrap_err();
        assert!(e.contains("refers to a.v1.Y"), "{e}");
        assert!(Schema::parse("1 y v string -\n").is_err());
        assert!(Schema::parse("message a.v1.X\n1 - v string -\n").is_err());
    }

    /// The types no served kind uses yet, through a schema of their own.
    #[test]
    fn durations_and_raw_extensions_print_as_upstream_prints_them() {
        let schema = Schema::parse(
            "message t.v1.T\n1 timeout v duration -\n2 object v rawext -\n3 extra p rawext o\n4 ratio p float64 o\n",
        )
        .unwrap();
        let field = |n: u8, payload: &[u8]| {
            let mut b = vec![(n << 3) | 2, payload.len() as u8];
            b.extend(payload);
            b
        };
        // timeout { duration: 90s } ; object { raw: {"a":1} }
        let mut msg = field(1, &[0x08, 0x80, 0x88, 0xac, 0xa3, 0xcf, 0x02]);
        msg.extend(field(2, &field(1, br#"{"a":1}"#)));
        msg.extend([0x21, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f]);
        let got = Decoder { schema: &schema }
            .message("t.v1.T", &[&msg], 0)
            .unwrap();
        assert_eq!(
            Value::Object(got),
            json!({"timeout": "1m30s", "object": {"a": 1}, "ratio": 1.5})
        );
        let empty = Decoder { schema: &schema }
            .message("t.v1.T", &[], 0)
            .unwrap();
        assert_eq!(
            Value::Object(empty),
            json!({"timeout": "0s", "object": null})
        );
        let bad = field(2, &field(1, b"\x0a\x00not json"));
        assert!(
            Decoder { schema: &schema }
                .message("t.v1.T", &[&bad], 0)
                .is_err()
        );
    }

    #[test]
    fn go_durations() {
        for (ns, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (2_000_000, "2ms"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (-90_000_000_000, "-1m30s"),
        ] {
            assert_eq!(go_duration(ns), want, "{ns}");
        }
    }

    #[test]
    fn times_and_their_zero() {
        assert_eq!(time_json(-62_135_596_800, 0, false).unwrap(), Value::Null);
        assert_eq!(time_json(-62_135_596_800, 999, true).unwrap(), Value::Null);
        assert_eq!(
            time_json(-62_135_596_800, 1_000, true).unwrap(),
            json!("0001-01-01T00:00:00.000001Z")
        );
        assert_eq!(
            time_json(253_402_300_800, 0, false).unwrap(),
            json!("10000-01-01T00:00:00Z")
        );
        assert_eq!(
            time_json(-62_167_219_200, 0, false).unwrap(),
            json!("0000-01-01T00:00:00Z")
        );
        assert!(time_json(i64::MAX, 0, false).is_err());
    }
}
