//! Label and field selectors, as list and watch requests carry them.

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Label {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// One requirement of a field selector: `field=value` (or `==`) or `field!=value`, with the
/// field as the kind's conversion names it and the value unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    path: &'static str,
    value: String,
    negated: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Selector {
    labels: Vec<Label>,
    fields: Vec<Field>,
    /// The kind whose fields `matches` computes from an object.
    kind: Option<&'static Kind>,
}

/// Splits on commas outside parentheses: `a in (x,y),b`.
fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn set(values: &str) -> Result<Vec<String>, String> {
    let inner = values
        .trim()
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(|| format!("{values:?}: a set is written (a,b)"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

impl Selector {
    /// Parses `labelSelector` and `fieldSelector` query values for a list or watch of
    /// `resource` (the store's key: `pods`, `leases.coordination.k8s.io`). A field the kind
    /// does not select by, or a malformed term, is an error whose text is kube-apiserver's.
    pub fn parse(
        resource: &str,
        labels: Option<&str>,
        fields: Option<&str>,
    ) -> Result<Self, String> {
        let mut sel = Self {
            kind: Some(kind(resource)),
            ..Self::default()
        };
        for req in labels.map(split_top).unwrap_or_default() {
            sel.labels.push(if let Some((k, v)) = req.split_once("!=") {
                Label::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
                Label::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = req.split_once(" notin ") {
                Label::NotIn(k.trim().into(), set(v)?)
            } else if let Some((k, v)) = req.split_once(" in ") {
                Label::In(k.trim().into(), set(v)?)
            } else if let Some(k) = req.strip_prefix('!') {
                Label::NotExists(k.trim().into())
            } else {
                Label::Exists(req.into())
            });
        }
        // As labels.Parse validates each requirement: a key is a qualified name, a value a
        // label value (`app===` is the value `=`, refused).
        for req in &sel.labels {
            let (key, values): (&str, Vec<&str>) = match req {
                Label::Equals(k, v) | Label::NotEquals(k, v) => (k, vec![v.as_str()]),
                Label::In(k, vs) | Label::NotIn(k, vs) => {
                    (k, vs.iter().map(String::as_str).collect())
                }
                Label::Exists(k) | Label::NotExists(k) => (k, Vec::new()),
            };
            if let Some(m) = super::validation::qualified_name(key).first() {
                return Err(format!(
                    "unable to parse requirement: invalid label key {}: {m}",
                    go_quote(key)
                ));
            }
            for v in values {
                if let Some(m) = super::validation::label_value(v).first() {
                    return Err(format!(
                        "unable to parse requirement: invalid label value: {}: at key: {}: {m}",
                        go_quote(v),
                        go_quote(key)
                    ));
                }
            }
        }
        if let Some(fields) = fields {
            sel.fields = parse_fields(fields, kind(resource))?;
        }
        Ok(sel)
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let fields = self.kind.map(|k| (k.fields)(obj)).unwrap_or_default();
        self.matches_by(
            |k| {
                obj.pointer("/metadata/labels")
                    .and_then(|l| l.get(k))
                    .and_then(Value::as_str)
            },
            |path| {
                fields
                    .iter()
                    .find(|(f, _)| *f == path)
                    .map(|(_, v)| v.as_str())
            },
        )
    }

    /// The same answer as `matches`, from what the store keeps of an object.
    /// Whether it selects everything (no label and no field requirement), as
    /// `SelectionPredicate.Empty` tells.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    pub fn matches_stored(&self, obj: &super::store::Stored) -> bool {
        self.matches_by(|k| obj.label(k), |path| obj.field(path))
    }

    fn matches_by<'a>(
        &self,
        label: impl Fn(&str) -> Option<&'a str>,
        field: impl Fn(&str) -> Option<&'a str>,
    ) -> bool {
        let labels_ok = self.labels.iter().all(|req| match req {
            Label::Equals(k, v) => label(k) == Some(v),
            Label::NotEquals(k, v) => label(k) != Some(v),
            Label::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Label::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Label::Exists(k) => label(k).is_some(),
            Label::NotExists(k) => label(k).is_none(),
        });
        // As fields.Set.Get: a field the object's set lacks reads as "".
        labels_ok
            && self.fields.iter().all(|f| {
                let actual = field(f.path).unwrap_or("");
                (actual == f.value) != f.negated
            })
    }
}

/// Parses a field selector as apimachinery's fields.ParseSelector does, then converts each
/// field through the kind's field label conversion (pkg/apis/core/v1/conversion.go), as the
/// list handler does before it reaches the store.
fn parse_fields(selector: &str, kind: &Kind) -> Result<Vec<Field>, String> {
    // Terms are split at commas a backslash does not escape, and sorted: the first bad term
    // in that order is the one reported.
    let mut terms = Vec::new();
    let (mut start, mut in_slash) = (0, false);
    for (i, c) in selector.char_indices() {
        match c {
            _ if in_slash => in_slash = false,
            '\\' => in_slash = true,
            ',' => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&selector[start..]);
    terms.sort_unstable();
    let mut parsed = Vec::new();
    for term in terms.into_iter().filter(|t| !t.is_empty()) {
        // The first operator in the term splits it; names are not trimmed or unescaped.
        let split = term.char_indices().find_map(|(i, _)| {
            let rest = &term[i..];
            ["!=", "==", "="]
                .into_iter()
                .find(|op| rest.starts_with(op))
                .map(|op| (&term[..i], op, &rest[op.len()..]))
        });
        let Some((path, op, value)) = split else {
            return Err(format!(
                "invalid selector: '{selector}'; can't understand '{term}'"
            ));
        };
        parsed.push((path, unescape(value)?, op == "!="));
    }
    parsed
        .into_iter()
        .map(|(path, value, negated)| {
            Ok(Field {
                path: kind.convert(path)?,
                value,
                negated,
            })
        })
        .collect()
}

/// A field selector value with `\\`, `\,` and `\=` unescaped (fields.UnescapeValue).
fn unescape(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{e}"
                    ));
                }
                None => return Err("invalid field selector: invalid escape sequence: \\".into()),
            },
            // Go prints the rune with %v: its number.
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// A string as Go's `%q` prints it, for the messages that quote a field name.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One kind's field selectors: the fields its field label conversion accepts, and the field
/// set its registry strategy computes for an object (`ToSelectableFields`, `GetAttrs`). Both
/// follow upstream: pkg/apis/core/v1/conversion.go and pkg/registry/core/*/strategy.go.
pub struct Kind {
    /// The fields the kind's conversion func accepts and what each becomes (`spec.host` is the
    /// old name of `spec.nodeName`). `None`: upstream registers none for the kind, and the
    /// default conversion accepts `metadata.name` and `metadata.namespace`.
    accepts: Option<&'static [(&'static str, &'static str)]>,
    /// The object's field set: `(field, value)`. A field missing from it reads as "".
    fields: fn(&Value) -> Vec<(&'static str, String)>,
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kind")
            .field("accepts", &self.accepts)
            .finish_non_exhaustive()
    }
}

const META_DEFAULT: &[(&str, &str)] = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
];

impl Kind {
    /// The field a selector's field label names, or kube-apiserver's refusal.
    fn convert(&self, label: &str) -> Result<&'static str, String> {
        let accepts = self.accepts.unwrap_or(META_DEFAULT);
        match accepts.iter().find(|(from, _)| *from == label) {
            Some((_, to)) => Ok(to),
            None if self.accepts.is_some() => Err(format!("field label not supported: {label}")),
            None => Err(format!(
                "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                go_quote(label)
            )),
        }
    }
}

/// The string at a JSON pointer, or "" as Go's zero value.
fn text(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// A bool as Go's `fmt.Sprint` / `strconv.FormatBool` prints it; absent is false.
fn boolean(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .to_string()
}

/// generic.ObjectMetaFieldsSet: the name, and the namespace for namespaced kinds.
fn meta(obj: &Value, namespaced: bool) -> Vec<(&'static str, String)> {
    let mut set = vec![("metadata.name", text(obj, "/metadata/name"))];
    if namespaced {
        set.push(("metadata.namespace", text(obj, "/metadata/namespace")));
    }
    set
}

/// pkg/registry/core/pod/strategy.go ToSelectableFields, over the v1 object: the v1 to
/// internal conversion takes `serviceAccount` when `serviceAccountName` is empty, and
/// `podIP` over `podIPs[0]` when they differ. `status.podIPs` is accepted but not in the set.
fn pod_fields(obj: &Value) -> Vec<(&'static str, String)> {
    let mut set = meta(obj, true);
    let mut service_account = text(obj, "/spec/serviceAccountName");
    if service_account.is_empty() {
        service_account = text(obj, "/spec/serviceAccount");
    }
    let mut pod_ip = text(obj, "/status/podIP");
    if pod_ip.is_empty() {
        pod_ip = text(obj, "/status/podIPs/0/ip");
    }
    set.extend([
        ("spec.nodeName", text(obj, "/spec/nodeName")),
        ("spec.restartPolicy", text(obj, "/spec/restartPolicy")),
        ("spec.schedulerName", text(obj, "/spec/schedulerName")),
        ("spec.serviceAccountName", service_account),
        ("spec.hostNetwork", boolean(obj, "/spec/hostNetwork")),
        ("status.phase", text(obj, "/status/phase")),
        ("status.podIP", pod_ip),
        (
            "status.nominatedNodeName",
            text(obj, "/status/nominatedNodeName"),
        ),
    ]);
    set
}

/// pkg/registry/core/event/strategy.go ToSelectableFields: `source` is the source component,
/// or the reporting controller when that is empty.
fn event_fields(obj: &Value) -> Vec<(&'static str, String)> {
    let mut set = meta(obj, true);
    let mut source = text(obj, "/source/component");
    if source.is_empty() {
        source = text(obj, "/reportingComponent");
    }
    set.extend([
        ("involvedObject.kind", text(obj, "/involvedObject/kind")),
        (
            "involvedObject.namespace",
            text(obj, "/involvedObject/namespace"),
        ),
        ("involvedObject.name", text(obj, "/involvedObject/name")),
        ("involvedObject.uid", text(obj, "/involvedObject/uid")),
        (
            "involvedObject.apiVersion",
            text(obj, "/involvedObject/apiVersion"),
        ),
        (
            "involvedObject.resourceVersion",
            text(obj, "/involvedObject/resourceVersion"),
        ),
        (
            "involvedObject.fieldPath",
            text(obj, "/involvedObject/fieldPath"),
        ),
        ("reason", text(obj, "/reason")),
        ("reportingComponent", text(obj, "/reportingComponent")),
        ("source", source),
        ("type", text(obj, "/type")),
    ]);
    set
}

fn node_fields(obj: &Value) -> Vec<(&'static str, String)> {
    let mut set = meta(obj, false);
    set.push(("spec.unschedulable", boolean(obj, "/spec/unschedulable")));
    set
}

fn namespace_fields(obj: &Value) -> Vec<(&'static str, String)> {
    let mut set = meta(obj, false);
    set.push(("status.phase", text(obj, "/status/phase")));
    set
}

fn secret_fields(obj: &Value) -> Vec<(&'static str, String)> {
    let mut set = meta(obj, true);
    set.push(("type", text(obj, "/type")));
    set
}

fn service_fields(obj: &Value) -> Vec<(&'static str, String)> {
    let mut set = meta(obj, true);
    set.push(("spec.clusterIP", text(obj, "/spec/clusterIP")));
    set.push(("spec.type", text(obj, "/spec/type")));
    set
}

fn namespaced_fields(obj: &Value) -> Vec<(&'static str, String)> {
    meta(obj, true)
}

fn cluster_fields(obj: &Value) -> Vec<(&'static str, String)> {
    meta(obj, false)
}

/// Pods: spec.hostNetwork since 1.28; spec.host is the v1.0 name of spec.nodeName.
const POD: Kind = Kind {
    accepts: Some(&[
        ("metadata.name", "metadata.name"),
        ("metadata.namespace", "metadata.namespace"),
        ("spec.nodeName", "spec.nodeName"),
        ("spec.restartPolicy", "spec.restartPolicy"),
        ("spec.schedulerName", "spec.schedulerName"),
        ("spec.serviceAccountName", "spec.serviceAccountName"),
        ("spec.hostNetwork", "spec.hostNetwork"),
        ("status.phase", "status.phase"),
        ("status.podIP", "status.podIP"),
        ("status.podIPs", "status.podIPs"),
        ("status.nominatedNodeName", "status.nominatedNodeName"),
        ("spec.host", "spec.nodeName"),
    ]),
    fields: pod_fields,
};

const EVENT: Kind = Kind {
    accepts: Some(&[
        ("involvedObject.kind", "involvedObject.kind"),
        ("involvedObject.namespace", "involvedObject.namespace"),
        ("involvedObject.name", "involvedObject.name"),
        ("involvedObject.uid", "involvedObject.uid"),
        ("involvedObject.apiVersion", "involvedObject.apiVersion"),
        (
            "involvedObject.resourceVersion",
            "involvedObject.resourceVersion",
        ),
        ("involvedObject.fieldPath", "involvedObject.fieldPath"),
        ("reason", "reason"),
        ("reportingComponent", "reportingComponent"),
        ("source", "source"),
        ("type", "type"),
        ("metadata.namespace", "metadata.namespace"),
        ("metadata.name", "metadata.name"),
    ]),
    fields: event_fields,
};

const NODE: Kind = Kind {
    accepts: Some(&[
        ("metadata.name", "metadata.name"),
        ("spec.unschedulable", "spec.unschedulable"),
    ]),
    fields: node_fields,
};

const NAMESPACE: Kind = Kind {
    accepts: Some(&[
        ("status.phase", "status.phase"),
        ("metadata.name", "metadata.name"),
    ]),
    fields: namespace_fields,
};

const SECRET: Kind = Kind {
    accepts: Some(&[
        ("type", "type"),
        ("metadata.namespace", "metadata.namespace"),
        ("metadata.name", "metadata.name"),
    ]),
    fields: secret_fields,
};

/// Services: a conversion func of their own since 1.31; before, the default one.
const SERVICE: Kind = Kind {
    accepts: Some(&[
        ("metadata.namespace", "metadata.namespace"),
        ("metadata.name", "metadata.name"),
        ("spec.clusterIP", "spec.clusterIP"),
        ("spec.type", "spec.type"),
    ]),
    fields: service_fields,
};

/// Configmaps, endpoints, service accounts, leases: no conversion func, the generic field set.
const NAMESPACED: Kind = Kind {
    accepts: None,
    fields: namespaced_fields,
};

/// CSINodes, CSIDrivers, RuntimeClasses: the default conversion still accepts
/// metadata.namespace, but the set of a cluster-scoped object has only its name.
const CLUSTER: Kind = Kind {
    accepts: None,
    fields: cluster_fields,
};

/// The field selector table of a resource, by the store's key (`pods`,
/// `leases.coordination.k8s.io`).
pub fn kind(resource: &str) -> &'static Kind {
    match resource {
        "pods" => &POD,
        "events" => &EVENT,
        "nodes" => &NODE,
        "namespaces" => &NAMESPACE,
        "secrets" => &SECRET,
        "services" => &SERVICE,
        other => match super::resources::Resource::by_key(other) {
            Some(r) if !r.namespaced => &CLUSTER,
            _ => &NAMESPACED,
        },
    }
}

/// The fields selectors may name for an object of `resource`, with their values.
pub fn fields_of(resource: &str, obj: &Value) -> Vec<(&'static str, String)> {
    (kind(resource).fields)(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web", "tier": "fe"}},
               "spec": {"nodeName": "node1", "restartPolicy": "Always", "serviceAccount": "old"},
               "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}})
    }

    fn sel(resource: &str, fields: &str) -> Result<Selector, String> {
        Selector::parse(resource, None, Some(fields))
    }

    #[test]
    fn label_selectors_with_a_bad_key_or_value_are_refused() {
        for bad in ["app===", "app=a b", "-x=y", "app in (a,-b)"] {
            assert!(Selector::parse("pods", Some(bad), None).is_err(), "{bad}");
        }
        for good in ["app=x", "app==x", "app!=", "x.io/app in (a,b)", "!app"] {
            assert!(Selector::parse("pods", Some(good), None).is_ok(), "{good}");
        }
    }

    #[test]
    fn labels() {
        for (sel, want) in [
            ("app=web", true),
            ("app==web,tier=fe", true),
            ("app!=web", false),
            ("app in (web, api)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("missing!=x", true),
            ("", true),
        ] {
            assert_eq!(
                Selector::parse("pods", Some(sel), None)
                    .unwrap()
                    .matches(&pod()),
                want,
                "{sel}"
            );
        }
        assert!(Selector::parse("pods", Some("a in x"), None).is_err());
    }

    #[test]
    fn pod_fields_are_upstreams() {
        for (fields, want) in [
            ("metadata.name=p", true),
            ("spec.nodeName=node1,status.phase=Running", true),
            ("spec.nodeName!=node1", false),
            ("spec.host=node1", true),
            ("metadata.namespace=other", false),
            ("spec.restartPolicy=Always", true),
            // The deprecated serviceAccount stands in for an empty serviceAccountName.
            ("spec.serviceAccountName=old", true),
            ("spec.hostNetwork=false", true),
            ("spec.hostNetwork=true", false),
            // podIPs[0] when podIP is not set.
            ("status.podIP=10.0.0.1", true),
            // Accepted, but not in the pod's field set: it only ever equals "".
            ("status.podIPs=10.0.0.1", false),
            ("status.podIPs=", true),
            ("status.nominatedNodeName=", true),
        ] {
            assert_eq!(
                sel("pods", fields).unwrap().matches(&pod()),
                want,
                "{fields}"
            );
        }
    }

    #[test]
    fn each_kind_has_its_own_fields() {
        let node = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}});
        assert!(
            sel("nodes", "spec.unschedulable=true")
                .unwrap()
                .matches(&node)
        );
        assert!(
            !sel("nodes", "spec.unschedulable=false")
                .unwrap()
                .matches(&node)
        );
        let node = json!({"metadata": {"name": "n"}});
        assert!(
            sel("nodes", "spec.unschedulable=false")
                .unwrap()
                .matches(&node)
        );
        assert_eq!(
            sel("nodes", "metadata.namespace=x").unwrap_err(),
            "field label not supported: metadata.namespace"
        );
        assert_eq!(
            sel("nodes", "spec.nodeName=x").unwrap_err(),
            "field label not supported: spec.nodeName"
        );

        let event = json!({"metadata": {"name": "e", "namespace": "ns"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns", "uid": "u1", "fieldPath": "spec.containers{c}"},
            "reason": "Started", "type": "Normal", "reportingComponent": "kubelet"});
        for (fields, want) in [
            (
                "involvedObject.name=p,involvedObject.namespace=ns,involvedObject.kind=Pod,involvedObject.uid=u1",
                true,
            ),
            ("involvedObject.fieldPath=spec.containers{c}", true),
            ("reason=Started,type=Normal", true),
            // No source component: the reporting controller is the source.
            ("source=kubelet", true),
            ("reportingComponent=kubelet", true),
            ("involvedObject.apiVersion=v1", false),
        ] {
            assert_eq!(
                sel("events", fields).unwrap().matches(&event),
                want,
                "{fields}"
            );
        }
        assert!(sel("pods", "involvedObject.name=p").is_err());

        let secret = json!({"metadata": {"name": "s", "namespace": "ns"}, "type": "Opaque"});
        assert!(sel("secrets", "type=Opaque").unwrap().matches(&secret));
        let ns = json!({"metadata": {"name": "default"}, "status": {"phase": "Active"}});
        assert!(
            sel("namespaces", "status.phase=Active")
                .unwrap()
                .matches(&ns)
        );
        assert!(sel("namespaces", "metadata.namespace=x").is_err());
        let svc = json!({"metadata": {"name": "s", "namespace": "ns"}, "spec": {"clusterIP": "None", "type": "ClusterIP"}});
        assert!(
            sel("services", "spec.clusterIP=None,spec.type=ClusterIP")
                .unwrap()
                .matches(&svc)
        );
        assert!(sel("configmaps", "spec.clusterIP=None").is_err());
    }

    #[test]
    fn kinds_without_a_conversion_take_the_defaults_wording() {
        assert_eq!(
            sel("configmaps", "spec.nodeName=x").unwrap_err(),
            r#""spec.nodeName" is not a known field selector: only "metadata.name", "metadata.namespace""#
        );
        assert_eq!(
            sel("leases.coordination.k8s.io", "x\ty=1").unwrap_err(),
            r#""x\ty" is not a known field selector: only "metadata.name", "metadata.namespace""#
        );
        let lease = json!({"metadata": {"name": "n1", "namespace": "kube-node-lease"}});
        assert!(
            sel(
                "leases.coordination.k8s.io",
                "metadata.namespace=kube-node-lease"
            )
            .unwrap()
            .matches(&lease)
        );
        // A cluster-scoped object's set has no namespace: only "" matches it.
        let csinode = json!({"metadata": {"name": "n1"}});
        assert!(
            sel("csinodes.storage.k8s.io", "metadata.namespace=")
                .unwrap()
                .matches(&csinode)
        );
        assert!(
            !sel("csinodes.storage.k8s.io", "metadata.namespace=x")
                .unwrap()
                .matches(&csinode)
        );
    }

    #[test]
    fn syntax_is_apimachinerys() {
        let obj = json!({"metadata": {"name": "a,b=c\\d"}});
        assert!(
            sel("nodes", r"metadata.name=a\,b\=c\\d")
                .unwrap()
                .matches(&obj)
        );
        assert!(sel("nodes", "metadata.name==a").is_ok());
        // Names are not trimmed: the space is part of the field.
        assert_eq!(
            sel("nodes", "metadata.name =a").unwrap_err(),
            "field label not supported: metadata.name "
        );
        assert_eq!(
            sel("nodes", "metadata.name").unwrap_err(),
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
        assert_eq!(
            sel("nodes", "metadata.name=a=b").unwrap_err(),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            sel("nodes", r"metadata.name=a\x").unwrap_err(),
            r"invalid field selector: invalid escape sequence: \x"
        );
        // Terms are checked in sorted order.
        assert_eq!(
            sel("nodes", "zz=1,aa=1").unwrap_err(),
            "field label not supported: aa"
        );
        assert!(sel("nodes", ",,").unwrap().matches(&obj));
    }
}
