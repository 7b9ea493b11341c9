//! Validation of writes, as k8s.io/kubernetes pkg/apis/core/validation (and the storage, node
//! and coordination groups' validation) answers them: each problem a cause with its reason
//! (`FieldValueRequired`, `FieldValueInvalid`, `FieldValueDuplicate`, `FieldValueNotFound`,
//! `FieldValueNotSupported`, `FieldValueForbidden`), the field path and a message in upstream's
//! words, so kubectl prints the same lines. The checks cover what clients of a node send:
//! object names and labels, pods, configmaps, secrets, services, events, nodes, runtime classes,
//! and updates to what cannot change.

use std::fmt;

use serde_json::Value;

use super::resources::Resource;

/// One problem with a write: `details.causes[]` of the 422 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn required(field: impl Into<String>, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired",
        field: field.into(),
        message: if detail.is_empty() {
            "Required value".into()
        } else {
            format!("Required value: {detail}")
        },
    }
}

fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Cause {
    let shown = match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    Cause {
        reason: "FieldValueInvalid",
        field: field.into(),
        message: format!("Invalid value: {shown}: {detail}"),
    }
}

fn duplicate(field: impl Into<String>, value: &Value) -> Cause {
    Cause {
        reason: "FieldValueDuplicate",
        field: field.into(),
        message: format!("Duplicate value: {value}"),
    }
}

fn not_found(field: impl Into<String>, value: &Value) -> Cause {
    Cause {
        reason: "FieldValueNotFound",
        field: field.into(),
        message: format!("Not found: {value}"),
    }
}

fn not_supported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    Cause {
        reason: "FieldValueNotSupported",
        field: field.into(),
        message: format!(
            "Unsupported value: {value}: supported values: {}",
            list.join(", ")
        ),
    }
}

fn forbidden(field: impl Into<String>, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden",
        field: field.into(),
        message: format!("Forbidden: {detail}"),
    }
}

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_dns1123_subdomain_format(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// The messages of k8s.io/apimachinery's IsDNS1123Subdomain for `s` (empty when valid).
fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 253 {
        out.push("must be no more than 253 characters".to_string());
    }
    if !is_dns1123_subdomain_format(s) {
        out.push(DNS1123_SUBDOMAIN_MSG.to_string());
    }
    out
}

fn dns1123_label(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    let b = s.as_bytes();
    let format = !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-';
    if !format {
        out.push(DNS1123_LABEL_MSG.to_string());
    }
    out
}

fn dns1035_label(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    let b = s.as_bytes();
    let format = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-';
    if !format {
        out.push(DNS1035_LABEL_MSG.to_string());
    }
    out
}

fn name_part_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// IsQualifiedName: `[prefix/]name`, the prefix a DNS subdomain.
pub(super) fn qualified_name(s: &str) -> Vec<String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    let mut out = Vec::new();
    if let Some(p) = prefix {
        if p.is_empty() {
            out.push("prefix part must be non-empty".to_string());
        } else {
            out.extend(
                dns1123_subdomain(p)
                    .into_iter()
                    .map(|m| format!("prefix part {m}")),
            );
        }
    }
    if name.is_empty() {
        out.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        out.push("name part must be no more than 63 characters".to_string());
    } else if !name_part_ok(name) {
        out.push(QUALIFIED_NAME_MSG.to_string());
    }
    out
}

/// IsValidLabelValue: empty, or at most 63 characters of a name part.
pub(super) fn label_value(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    if !s.is_empty() && !name_part_ok(s) {
        out.push(LABEL_VALUE_MSG.to_string());
    }
    out
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// How a kind's names are checked upstream (ValidateNameFunc of its registry).
fn name_rule(res: &Resource) -> fn(&str) -> Vec<String> {
    match (res.group, res.kind) {
        ("", "Namespace") => dns1123_label,
        ("", "Service") => dns1035_label,
        _ => dns1123_subdomain,
    }
}

/// ValidateObjectMeta: name (or generateName), namespace, labels, annotations.
fn object_meta(res: &Resource, obj: &Value, causes: &mut Vec<Cause>) {
    let name = str_at(obj, "/metadata/name");
    let generate = str_at(obj, "/metadata/generateName");
    if name.is_empty() && generate.is_empty() {
        causes.push(required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else if !name.is_empty() {
        for m in name_rule(res)(name) {
            causes.push(invalid("metadata.name", &Value::from(name), &m));
        }
    }
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            for m in qualified_name(k) {
                causes.push(invalid("metadata.labels", &Value::from(k.as_str()), &m));
            }
            for m in label_value(v.as_str().unwrap_or_default()) {
                causes.push(invalid("metadata.labels", v, &m));
            }
        }
    }
    if let Some(annotations) = obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        let mut total = 0usize;
        for (k, v) in annotations {
            for m in qualified_name(&k.to_lowercase()) {
                causes.push(invalid(
                    "metadata.annotations",
                    &Value::from(k.as_str()),
                    &m,
                ));
            }
            total += k.len() + v.as_str().map_or(0, str::len);
        }
        if total > 256 * 1024 {
            causes.push(Cause {
                reason: "FieldValueTooLong",
                field: "metadata.annotations".into(),
                message: "Too long: must have at most 262144 bytes".into(),
            });
        }
    }
}

/// `ValidateFinalizers` (k8s.io/apimachinery pkg/api/validation/objectmeta.go): each finalizer
/// a qualified name, and not both of the garbage collector's `orphan` and
/// `foregroundDeletion`; every cause on `metadata.finalizers` itself.
fn finalizers(obj: &Value, causes: &mut Vec<Cause>) {
    let Some(list) = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
    else {
        return;
    };
    let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
    for name in &names {
        for m in qualified_name(name) {
            causes.push(invalid("metadata.finalizers", &Value::from(*name), &m));
        }
    }
    if names.contains(&"orphan") && names.contains(&"foregroundDeletion") {
        causes.push(invalid(
            "metadata.finalizers",
            &Value::from(format!("{names:?}")),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
}

/// The core group's extra rule on finalizer names (`validateKubeFinalizerName`, applied to
/// every kind the control plane serves): a name without a `/` is one of the standard ones
/// (`kubernetes`, `orphan`, `foregroundDeletion`); each cause on `metadata.finalizers[i]`.
fn kube_finalizer_names(obj: &Value, causes: &mut Vec<Cause>) {
    let Some(list) = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
    else {
        return;
    };
    for (i, f) in list.iter().enumerate() {
        let name = f.as_str().unwrap_or_default();
        if !name.contains('/') && !["kubernetes", "orphan", "foregroundDeletion"].contains(&name) {
            causes.push(invalid(
                format!("metadata.finalizers[{i}]"),
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
}

/// `ValidateNoNewFinalizers`: an object being deleted (with a `deletionTimestamp`) may lose
/// finalizers but not gain any.
fn no_new_finalizers(obj: &Value, old: &Value, causes: &mut Vec<Cause>) {
    if old
        .pointer("/metadata/deletionTimestamp")
        .is_none_or(Value::is_null)
    {
        return;
    }
    let of = |o: &Value| -> Vec<String> {
        o.pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let was = of(old);
    let mut extra: Vec<String> = of(obj).into_iter().filter(|f| !was.contains(f)).collect();
    extra.sort();
    extra.dedup();
    if !extra.is_empty() {
        let shown: Vec<String> = extra.iter().map(|f| format!("{f:?}")).collect();
        causes.push(forbidden(
            "metadata.finalizers",
            &format!(
                "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                shown.join(", ")
            ),
        ));
    }
}

/// Validates a create (`old` is None) or an update of `obj`, as the kind's strategy
/// Validate / ValidateUpdate does. `status` is true for a write to the /status subresource.
pub fn validate(res: &Resource, obj: &Value, old: Option<&Value>, status: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    object_meta(res, obj, &mut causes);
    kube_finalizer_names(obj, &mut causes);
    // The generic finalizer checks run once on a create; on an update twice, as
    // rest.BeforeUpdate's validateCommonFields runs them before the strategy's ValidateUpdate
    // runs them again.
    match old {
        None => finalizers(obj, &mut causes),
        Some(old) => {
            for _ in 0..2 {
                finalizers(obj, &mut causes);
                no_new_finalizers(obj, old, &mut causes);
            }
        }
    }
    if let Some(old) = old {
        meta_update(obj, old, &mut causes);
        if res.kind == "Pod" && status {
            // ValidatePodStatusUpdate validates the metadata update a second time.
            meta_update(obj, old, &mut causes);
        }
    }
    match (res.group, res.kind) {
        ("", "Pod") if !status => {
            pod_spec(obj.get("spec").unwrap_or(&Value::Null), &mut causes);
            if let Some(old) = old {
                pod_update(obj, old, &mut causes);
            }
        }
        ("", "ConfigMap") => {
            config_map(obj, &mut causes);
            if let Some(old) = old
                && old.get("immutable").and_then(Value::as_bool) == Some(true)
            {
                if obj.get("data") != old.get("data")
                    || obj.get("binaryData") != old.get("binaryData")
                {
                    causes.push(forbidden(
                        "data",
                        "field is immutable when `immutable` is set",
                    ));
                }
                if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
                    causes.push(forbidden(
                        "immutable",
                        "field is immutable when `immutable` is set",
                    ));
                }
            }
        }
        ("", "Secret") => secret(obj, &mut causes),
        ("", "Service") => service(obj, &mut causes),
        ("", "Event") => event(obj, &mut causes),
        ("", "Node") => {
            node(obj, &mut causes);
            // ValidateNodeUpdate validates the new node again.
            if old.is_some() {
                node(obj, &mut causes);
            }
        }
        ("node.k8s.io", "RuntimeClass") => {
            let handler = str_at(obj, "/handler");
            if handler.is_empty() {
                causes.push(required("handler", ""));
            } else {
                for m in dns1123_label(handler) {
                    causes.push(invalid("handler", &Value::from(handler), &m));
                }
            }
        }
        _ => {}
    }
    causes
}

/// ValidateObjectMetaUpdate: what an update cannot change.
fn meta_update(obj: &Value, old: &Value, causes: &mut Vec<Cause>) {
    for field in ["name", "namespace", "uid"] {
        let new = obj.pointer(&format!("/metadata/{field}"));
        let was = old.pointer(&format!("/metadata/{field}"));
        if new != was {
            causes.push(invalid(
                format!("metadata.{field}"),
                new.unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
    }
}

fn pod_spec(spec: &Value, causes: &mut Vec<Cause>) {
    let volumes: Vec<&str> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| str_at(v, "/name"))
        .collect();
    let mut seen_volumes = std::collections::HashSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let field = format!("spec.volumes[{i}].name");
        if v.is_empty() {
            causes.push(required(field, ""));
        } else if !is_dns1123_label(v) {
            for m in dns1123_label(v) {
                causes.push(invalid(field.clone(), &Value::from(*v), &m));
            }
        } else if !seen_volumes.insert(*v) {
            causes.push(duplicate(field, &Value::from(*v)));
        }
    }
    let containers = spec.get("containers").and_then(Value::as_array);
    if containers.is_none_or(Vec::is_empty) {
        causes.push(required("spec.containers", ""));
    }
    let mut names = std::collections::HashSet::new();
    for list in ["initContainers", "containers"] {
        for (i, c) in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("spec.{list}[{i}]");
            container(c, &at, &volumes, &mut names, causes);
        }
    }
    let restart = str_at(spec, "/restartPolicy");
    if !["Always", "OnFailure", "Never"].contains(&restart) {
        if restart.is_empty() {
            causes.push(required("spec.restartPolicy", ""));
        } else {
            causes.push(not_supported(
                "spec.restartPolicy",
                &Value::from(restart),
                &["Always", "OnFailure", "Never"],
            ));
        }
    }
    let dns = str_at(spec, "/dnsPolicy");
    let dns_policies = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
    if !dns.is_empty() && !dns_policies.contains(&dns) {
        causes.push(not_supported(
            "spec.dnsPolicy",
            &Value::from(dns),
            &dns_policies,
        ));
    }
    if let Some(g) = spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        && g < 0
    {
        causes.push(invalid(
            "spec.terminationGracePeriodSeconds",
            &Value::from(g),
            "must be greater than or equal to 0",
        ));
    }
}

fn container<'a>(
    c: &'a Value,
    at: &str,
    volumes: &[&str],
    names: &mut std::collections::HashSet<&'a str>,
    causes: &mut Vec<Cause>,
) {
    let name = str_at(c, "/name");
    if name.is_empty() {
        causes.push(required(format!("{at}.name"), ""));
    } else if !is_dns1123_label(name) {
        for m in dns1123_label(name) {
            causes.push(invalid(format!("{at}.name"), &Value::from(name), &m));
        }
    } else if !names.insert(name) {
        causes.push(duplicate(format!("{at}.name"), &Value::from(name)));
    }
    if str_at(c, "/image").trim().is_empty() {
        causes.push(required(format!("{at}.image"), ""));
    }
    let policy = str_at(c, "/imagePullPolicy");
    let policies = ["Always", "IfNotPresent", "Never"];
    if !policy.is_empty() && !policies.contains(&policy) {
        causes.push(not_supported(
            format!("{at}.imagePullPolicy"),
            &Value::from(policy),
            &policies,
        ));
    }
    let tmp = str_at(c, "/terminationMessagePolicy");
    let tmps = ["File", "FallbackToLogsOnError"];
    if !tmp.is_empty() && !tmps.contains(&tmp) {
        causes.push(not_supported(
            format!("{at}.terminationMessagePolicy"),
            &Value::from(tmp),
            &tmps,
        ));
    }
    for (j, m) in c
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let mname = str_at(m, "/name");
        if mname.is_empty() {
            causes.push(required(format!("{at}.volumeMounts[{j}].name"), ""));
        } else if !volumes.contains(&mname) {
            causes.push(not_found(
                format!("{at}.volumeMounts[{j}].name"),
                &Value::from(mname),
            ));
        }
        if str_at(m, "/mountPath").is_empty() {
            causes.push(required(format!("{at}.volumeMounts[{j}].mountPath"), ""));
        }
    }
    for (j, p) in c
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let port = p.get("containerPort").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=65535).contains(&port) {
            causes.push(invalid(
                format!("{at}.ports[{j}].containerPort"),
                &Value::from(port),
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
    // Requests may not exceed limits.
    let limits = c.pointer("/resources/limits").and_then(Value::as_object);
    if let Some(requests) = c.pointer("/resources/requests").and_then(Value::as_object) {
        for (k, r) in requests {
            let Some(l) = limits.and_then(|l| l.get(k)) else {
                continue;
            };
            let (Some(rq), Some(lq)) = (
                r.as_str().and_then(super::defaults::quantity_nanos),
                l.as_str().and_then(super::defaults::quantity_nanos),
            ) else {
                continue;
            };
            if rq > lq {
                causes.push(invalid(
                    format!("{at}.resources.requests"),
                    r,
                    &format!("must be less than or equal to {k} limit"),
                ));
            }
        }
    }
}

/// ValidatePodUpdate: only images, activeDeadlineSeconds, tolerations (additions) and
/// terminationGracePeriodSeconds may change in a pod's spec.
fn pod_update(obj: &Value, old: &Value, causes: &mut Vec<Cause>) {
    let count = |v: &Value, list: &str| {
        v.pointer(list)
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    };
    for list in ["containers", "initContainers"] {
        if count(obj, &format!("/spec/{list}")) != count(old, &format!("/spec/{list}")) {
            causes.push(forbidden(
                format!("spec.{list}"),
                "pod updates may not add or remove containers",
            ));
            return;
        }
    }
    // Tolerations may only be added; an existing one may change only its tolerationSeconds
    // (validateOnlyAddedTolerations).
    let tolerations = |v: &Value| -> Vec<Value> {
        v.pointer("/spec/tolerations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|mut t| {
                if let Some(o) = t.as_object_mut() {
                    o.remove("tolerationSeconds");
                }
                t
            })
            .collect()
    };
    let now = tolerations(obj);
    for was in tolerations(old) {
        if !now.contains(&was) {
            causes.push(forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    let mut new_spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let old_spec = old.get("spec").cloned().unwrap_or(Value::Null);
    // What may change is copied from the old spec; anything else left different is forbidden.
    for list in ["containers", "initContainers"] {
        let old_list = old_spec.get(list).and_then(Value::as_array);
        if let (Some(new_items), Some(old_items)) = (
            new_spec.get_mut(list).and_then(Value::as_array_mut),
            old_list,
        ) && new_items.len() == old_items.len()
        {
            for (n, o) in new_items.iter_mut().zip(old_items) {
                if let (Some(n), Some(img)) = (n.as_object_mut(), o.get("image")) {
                    n.insert("image".into(), img.clone());
                }
            }
        }
    }
    if let Some(n) = new_spec.as_object_mut() {
        for field in [
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
        ] {
            match old_spec.get(field) {
                Some(v) => n.insert(field.into(), v.clone()),
                None => n.remove(field),
            };
        }
    }
    if new_spec != old_spec {
        causes.push(forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds` or `spec.tolerations` (only additions to existing tolerations)",
        ));
    }
}

fn config_key(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    if key.len() > 253 {
        out.push("must be no more than 253 characters".to_string());
    }
    if key.is_empty()
        || !key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        out.push(CONFIG_KEY_MSG.to_string());
    }
    if key == "." || key == ".." || key.starts_with("..") {
        out.push(format!("must not be '{key}'"));
    }
    out
}

fn config_map(obj: &Value, causes: &mut Vec<Cause>) {
    let data = obj.get("data").and_then(Value::as_object);
    let binary = obj.get("binaryData").and_then(Value::as_object);
    for (k, _) in data.into_iter().flatten() {
        for m in config_key(k) {
            causes.push(invalid(format!("data[{k}]"), &Value::from(k.as_str()), &m));
        }
    }
    for (k, _) in binary.into_iter().flatten() {
        for m in config_key(k) {
            causes.push(invalid(
                format!("binaryData[{k}]"),
                &Value::from(k.as_str()),
                &m,
            ));
        }
        if data.is_some_and(|d| d.contains_key(k)) {
            causes.push(invalid(
                format!("data[{k}]"),
                &Value::from(k.as_str()),
                "duplicate of key present in binaryData",
            ));
        }
    }
}

fn secret(obj: &Value, causes: &mut Vec<Cause>) {
    let data = obj.get("data").and_then(Value::as_object);
    for (k, _) in data.into_iter().flatten() {
        for m in config_key(k) {
            causes.push(invalid(format!("data[{k}]"), &Value::from(k.as_str()), &m));
        }
    }
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    match str_at(obj, "/type") {
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !has(key) {
                    causes.push(required(format!("data[{key}]"), ""));
                }
            }
        }
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            causes.push(required("data[.dockerconfigjson]", ""));
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            causes.push(required("data[username]", ""));
            causes.push(required("data[password]", ""));
        }
        "kubernetes.io/ssh-auth" if !has("ssh-privatekey") => {
            causes.push(required("data[ssh-privatekey]", ""));
        }
        _ => {}
    }
}

fn service(obj: &Value, causes: &mut Vec<Cause>) {
    let ports = obj
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let headless = str_at(obj, "/spec/clusterIP") == "None";
    let ty = str_at(obj, "/spec/type");
    if ports.is_empty() && !(headless || ty == "ExternalName") {
        causes.push(required("spec.ports", ""));
    }
    let multiple = ports.len() > 1;
    let mut seen = std::collections::HashSet::new();
    let mut names = std::collections::HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let at = format!("spec.ports[{i}]");
        let name = str_at(p, "/name");
        if multiple && name.is_empty() {
            causes.push(required(format!("{at}.name"), ""));
        } else if !name.is_empty() && !names.insert(name.to_string()) {
            causes.push(duplicate(format!("{at}.name"), &Value::from(name)));
        }
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=65535).contains(&port) {
            causes.push(invalid(
                format!("{at}.port"),
                &Value::from(port),
                "must be between 1 and 65535, inclusive",
            ));
        }
        if let Some(target) = p.get("targetPort").and_then(Value::as_i64)
            && !(1..=65535).contains(&target)
        {
            causes.push(invalid(
                format!("{at}.targetPort"),
                &Value::from(target),
                "must be between 1 and 65535, inclusive",
            ));
        }
        let key = (port, str_at(p, "/protocol").to_string());
        if !seen.insert(key) {
            causes.push(duplicate(at, p));
        }
    }
}

/// legacyValidateEvent, for events without an eventTime (what kubelets write): the involved
/// object's namespace must be the event's, and one without a namespace is allowed only in
/// `default` (for old clients).
fn event(obj: &Value, causes: &mut Vec<Cause>) {
    let ns = str_at(obj, "/metadata/namespace");
    let involved = str_at(obj, "/involvedObject/namespace");
    let mismatch = if involved.is_empty() {
        !ns.is_empty() && ns != "default"
    } else {
        involved != ns
    };
    if mismatch {
        causes.push(invalid(
            "involvedObject.namespace",
            &Value::from(involved),
            "does not match event.namespace",
        ));
    }
}

fn node(obj: &Value, causes: &mut Vec<Cause>) {
    let effects = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
    for (i, t) in obj
        .pointer("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        // Upstream (1.20) names the path metadata.taints, not spec.taints.
        let effect = str_at(t, "/effect");
        if effect.is_empty() {
            causes.push(required(format!("metadata.taints[{i}].effect"), ""));
        } else if !effects.contains(&effect) {
            causes.push(not_supported(
                format!("metadata.taints[{i}].effect"),
                &Value::from(effect),
                &effects,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controlplane::resources::RESOURCES;
    use serde_json::json;

    fn res(kind: &str) -> &'static Resource {
        RESOURCES.iter().find(|r| r.kind == kind).unwrap()
    }

    fn fields(c: &[Cause]) -> Vec<(&str, &str)> {
        c.iter().map(|c| (c.reason, c.field.as_str())).collect()
    }

    #[test]
    fn finalizer_names_and_no_new_ones_on_an_object_being_deleted() {
        let cm = |f: Value| json!({"metadata": {"name": "c", "finalizers": f}});
        let ok = validate(
            res("ConfigMap"),
            &cm(json!(["kubernetes", "x.io/y"])),
            None,
            false,
        );
        assert!(ok.is_empty(), "{ok:?}");
        let bad = validate(
            res("ConfigMap"),
            &cm(json!(["no way", "orphan", "foregroundDeletion"])),
            None,
            false,
        );
        assert_eq!(
            fields(&bad),
            vec![
                ("FieldValueInvalid", "metadata.finalizers[0]"),
                ("FieldValueInvalid", "metadata.finalizers"),
                ("FieldValueInvalid", "metadata.finalizers"),
            ]
        );
        let mut old = cm(json!(["x.io/a"]));
        let added = cm(json!(["x.io/a", "x.io/b"]));
        assert!(validate(res("ConfigMap"), &added, Some(&old), false).is_empty());
        old["metadata"]["deletionTimestamp"] = json!("2030-01-01T00:00:00Z");
        // Refused twice, as upstream's update validation runs the check twice.
        assert_eq!(
            fields(&validate(res("ConfigMap"), &added, Some(&old), false)),
            vec![("FieldValueForbidden", "metadata.finalizers"); 2]
        );
        let removed = cm(json!([]));
        assert!(validate(res("ConfigMap"), &removed, Some(&old), false).is_empty());
    }

    #[test]
    fn names_and_labels() {
        let c = validate(
            res("ConfigMap"),
            &json!({"metadata": {"labels": {"bad key!": "v"}}}),
            None,
            false,
        );
        assert_eq!(
            fields(&c),
            [
                ("FieldValueRequired", "metadata.name"),
                ("FieldValueInvalid", "metadata.labels")
            ]
        );
        assert!(
            validate(
                res("Namespace"),
                &json!({"metadata": {"name": "has.dot"}}),
                None,
                false
            )
            .iter()
            .any(|c| c.field == "metadata.name")
        );
        assert!(
            validate(
                res("ConfigMap"),
                &json!({"metadata": {"name": "a.b"}}),
                None,
                false
            )
            .is_empty()
        );
    }

    #[test]
    fn pods() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": "Always", "containers": [{}, {"name": "a", "image": "i"}, {"name": "a", "image": "i"}]}});
        assert_eq!(
            fields(&validate(res("Pod"), &pod, None, false)),
            [
                ("FieldValueRequired", "spec.containers[0].name"),
                ("FieldValueRequired", "spec.containers[0].image"),
                ("FieldValueDuplicate", "spec.containers[2].name")
            ]
        );
        let old = json!({"metadata": {"name": "p"}, "spec": {"restartPolicy": "Always", "containers": [{"name": "a", "image": "i"}]}});
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("j");
        assert!(validate(res("Pod"), &new, Some(&old), false).is_empty());
        new["spec"]["restartPolicy"] = json!("Never");
        assert_eq!(
            fields(&validate(res("Pod"), &new, Some(&old), false)),
            [("FieldValueForbidden", "spec")]
        );
    }
}
