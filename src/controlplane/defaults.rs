//! What kube-apiserver does to an object between decoding a write and storing it: the decode
//! into the kind's type (unknown fields dropped, wrong types refused), the defaulting functions
//! of k8s.io/kubernetes pkg/apis/core/v1/defaults.go in the order zz_generated.defaults.go
//! calls them, and the registry strategies' PrepareForCreate (pod status, namespace phase and
//! finalizer). A kubelet defaults nothing it reads: it relies on these (a probe without
//! `periodSeconds` makes its prober panic on a zero ticker; a fieldRef without `apiVersion` is
//! refused as "unsupported pod version").

use serde_json::{Map, Value, json};

use super::resources::Resource;

/// Decodes a write's body as kube-apiserver does (see [`super::gotypes`]): into the kind's Go
/// type, with its defaults applied, and encoded again. A value of the wrong type is an error
/// naming the field, as Go's `json: cannot unmarshal ...` does.
pub fn decode(res: &Resource, obj: Value) -> Result<Value, String> {
    let ty = super::gotypes::root_type(res.group, res.kind);
    let mut out = super::gotypes::round_trip(&ty, &obj)?;
    apply(res, &mut out);
    // What the defaults added is encoded as Go writes it too.
    let mut out = super::gotypes::round_trip(&ty, &out)?;
    // Stored without apiVersion and kind, as list items are written; single answers and watch
    // events add them back.
    if let Some(o) = out.as_object_mut() {
        o.remove("apiVersion");
        o.remove("kind");
    }
    Ok(out)
}

/// Applies the kind's defaulting functions to a decoded object, as every write (create,
/// update, patch, status) does upstream before validation.
pub fn apply(res: &Resource, obj: &mut Value) {
    match (res.group, res.kind) {
        ("", "Pod") => pod(obj),
        ("", "Service") => service(obj),
        ("", "Secret") => secret(obj),
        ("", "Endpoints") => endpoints(obj),
        ("", "Namespace") => {
            let status = object_at(obj, "status");
            status.entry("phase").or_insert(json!("Active"));
        }
        ("", "Node") => {
            let status = object_at(obj, "status");
            if !status.contains_key("allocatable")
                && let Some(capacity) = status.get("capacity").cloned()
            {
                status.insert("allocatable".into(), capacity);
            }
        }
        ("storage.k8s.io", "CSIDriver") => {
            // k8s.io/kubernetes pkg/apis/storage/v1/defaults.go, with 1.20's feature gates
            // (CSIVolumeFSGroupPolicy on, CSIStorageCapacity and CSIServiceAccountToken off).
            if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
                default_ptr(spec, "attachRequired", json!(true));
                default_ptr(spec, "podInfoOnMount", json!(false));
                default_ptr(spec, "volumeLifecycleModes", json!(["Persistent"]));
                default_ptr(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
            }
        }
        _ => {}
    }
}

/// What a create sets besides defaults (the strategies' PrepareForCreate): a new pod's status
/// is `Pending` with its QoS class, whatever the client sent; a new namespace is `Active` and
/// carries the `kubernetes` finalizer.
pub fn prepare_for_create(res: &Resource, obj: &mut Value) {
    match (res.group, res.kind) {
        ("", "Pod") => {
            let qos = qos_class(obj);
            if let Some(o) = obj.as_object_mut() {
                o.insert(
                    "status".into(),
                    json!({"phase": "Pending", "qosClass": qos}),
                );
            }
        }
        // Active, with the `kubernetes` finalizer: the namespace lifecycle's own rule.
        ("", "Namespace") => super::namespaces::prepare_create(obj),
        _ => {}
    }
}

/// The object at `key` of `v`, made an object (and `v` too) if it is not one.
fn object_at<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let Value::Object(m) = v else {
        unreachable!("made an object above")
    };
    let entry = m
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(inner) => inner,
        _ => unreachable!("made an object above"),
    }
}

fn each<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    v.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

fn default(v: &mut Value, key: &str, value: Value) {
    if let Some(o) = v.as_object_mut() {
        let empty = match o.get(key) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Number(n)) => n.as_f64() == Some(0.0),
            _ => false,
        };
        if empty {
            o.insert(key.to_string(), value);
        }
    }
}

/// Defaults a pointer field: only when absent (0 and "" are values).
fn default_ptr(v: &mut Value, key: &str, value: Value) {
    if let Some(o) = v.as_object_mut()
        && matches!(o.get(key), None | Some(Value::Null))
    {
        o.insert(key.to_string(), value);
    }
}

/// SetObjectDefaults_Pod.
fn pod(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    // SetDefaults_Pod: requests from limits, per container, then enableServiceLinks.
    for list in ["containers", "initContainers"] {
        for c in each(spec, list) {
            let Some(limits) = c.pointer("/resources/limits").and_then(Value::as_object) else {
                continue;
            };
            let limits = limits.clone();
            let resources = object_at(c, "resources");
            let requests = resources
                .entry("requests")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(requests) = requests.as_object_mut() {
                for (k, v) in limits {
                    requests.entry(k).or_insert(v);
                }
            }
        }
    }
    default_ptr(spec, "enableServiceLinks", json!(true));
    // SetDefaults_PodSpec.
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "restartPolicy", json!("Always"));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for list in ["containers", "initContainers"] {
            for c in each(spec, list) {
                for port in each(c, "ports") {
                    let container_port = port.get("containerPort").cloned();
                    if let Some(p) = container_port {
                        default(port, "hostPort", p);
                    }
                }
            }
        }
    }
    default_ptr(spec, "securityContext", json!({}));
    default_ptr(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "schedulerName", json!("default-scheduler"));
    for volume in each(spec, "volumes") {
        volume_defaults(volume);
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in each(spec, list) {
            container(c);
        }
    }
}

const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn volume_defaults(v: &mut Value) {
    let has_source = VOLUME_SOURCES
        .iter()
        .any(|s| v.get(*s).is_some_and(|x| !x.is_null()));
    if !has_source && let Some(o) = v.as_object_mut() {
        o.insert("emptyDir".into(), json!({}));
    }
    if let Some(h) = v.get_mut("hostPath") {
        default_ptr(h, "type", json!(""));
    }
    if let Some(s) = v.get_mut("secret") {
        default_ptr(s, "defaultMode", json!(420));
    }
    if let Some(s) = v.get_mut("iscsi") {
        default(s, "iscsiInterface", json!("default"));
    }
    if let Some(s) = v.get_mut("rbd") {
        default(s, "pool", json!("rbd"));
        default(s, "user", json!("admin"));
        default(s, "keyring", json!("/etc/ceph/keyring"));
    }
    if let Some(s) = v.get_mut("downwardAPI") {
        default_ptr(s, "defaultMode", json!(420));
        for item in each(s, "items") {
            if let Some(f) = item.get_mut("fieldRef") {
                default(f, "apiVersion", json!("v1"));
            }
        }
    }
    if let Some(s) = v.get_mut("configMap") {
        default_ptr(s, "defaultMode", json!(420));
    }
    if let Some(s) = v.get_mut("azureDisk") {
        default_ptr(s, "cachingMode", json!("ReadWrite"));
        default_ptr(s, "kind", json!("Shared"));
        default_ptr(s, "fsType", json!("ext4"));
        default_ptr(s, "readOnly", json!(false));
    }
    if let Some(s) = v.get_mut("projected") {
        default_ptr(s, "defaultMode", json!(420));
        for source in each(s, "sources") {
            if let Some(d) = source.get_mut("downwardAPI") {
                for item in each(d, "items") {
                    if let Some(f) = item.get_mut("fieldRef") {
                        default(f, "apiVersion", json!("v1"));
                    }
                }
            }
            if let Some(t) = source.get_mut("serviceAccountToken") {
                default_ptr(t, "expirationSeconds", json!(3600));
            }
        }
    }
    if let Some(s) = v.get_mut("scaleIO") {
        default(s, "storageMode", json!("ThinProvisioned"));
        default(s, "fsType", json!("xfs"));
    }
    if let Some(spec) = v.pointer_mut("/ephemeral/volumeClaimTemplate/spec") {
        default_ptr(spec, "volumeMode", json!("Filesystem"));
    }
}

/// SetDefaults_Container and what the generated defaulters call inside a container.
fn container(c: &mut Value) {
    if c.get("imagePullPolicy")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
        let policy = if image_tag(image) == "latest" {
            "Always"
        } else {
            "IfNotPresent"
        };
        if let Some(o) = c.as_object_mut() {
            o.insert("imagePullPolicy".into(), json!(policy));
        }
    }
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    for port in each(c, "ports") {
        default(port, "protocol", json!("TCP"));
    }
    for env in each(c, "env") {
        if let Some(f) = env.pointer_mut("/valueFrom/fieldRef") {
            default(f, "apiVersion", json!("v1"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) {
            default(p, "timeoutSeconds", json!(1));
            default(p, "periodSeconds", json!(10));
            default(p, "successThreshold", json!(1));
            default(p, "failureThreshold", json!(3));
            if let Some(h) = p.get_mut("httpGet") {
                http_get(h);
            }
        }
    }
    for hook in ["postStart", "preStop"] {
        if let Some(h) = c
            .get_mut("lifecycle")
            .and_then(|l| l.get_mut(hook))
            .and_then(|h| h.get_mut("httpGet"))
        {
            http_get(h);
        }
    }
}

fn http_get(h: &mut Value) {
    default(h, "path", json!("/"));
    default(h, "scheme", json!("HTTP"));
}

/// The tag of an image reference as docker/distribution's parser reads it: after the last `:`
/// of the last path component, `latest` when there is neither tag nor digest.
fn image_tag(image: &str) -> &str {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.rsplit_once(':') {
        Some((_, tag)) => tag,
        None if image.contains('@') => "",
        None => "latest",
    }
}

/// SetDefaults_Service, for the fields that do not depend on the cluster's IP allocation.
fn service(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    default(spec, "sessionAffinity", json!("None"));
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("None")
        && let Some(o) = spec.as_object_mut()
    {
        o.remove("sessionAffinityConfig");
    }
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP")
        && spec
            .pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
            .is_none()
        && let Some(o) = spec.as_object_mut()
    {
        o.insert(
            "sessionAffinityConfig".into(),
            json!({"clientIP": {"timeoutSeconds": 10800}}),
        );
    }
    default(spec, "type", json!("ClusterIP"));
    for port in each(spec, "ports") {
        default(port, "protocol", json!("TCP"));
        let target_unset = match port.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if target_unset && let Some(p) = port.get("port").cloned() {
            port["targetPort"] = p;
        }
    }
    let ty = spec.get("type").and_then(Value::as_str).unwrap_or_default();
    if matches!(ty, "NodePort" | "LoadBalancer") {
        default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
}

/// Secret: `stringData` folded into `data` (base64), as the v1 to internal conversion does,
/// then the type defaults to Opaque.
fn secret(obj: &mut Value) {
    use base64::Engine as _;
    if let Some(o) = obj.as_object_mut()
        && let Some(Value::Object(strings)) = o.remove("stringData")
    {
        let data = o.entry("data").or_insert_with(|| Value::Object(Map::new()));
        if !data.is_object() {
            *data = Value::Object(Map::new());
        }
        if let Some(data) = data.as_object_mut() {
            for (k, v) in strings {
                let text = v.as_str().unwrap_or_default();
                data.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(text)),
                );
            }
        }
    }
    default(obj, "type", json!("Opaque"));
}

fn endpoints(obj: &mut Value) {
    let Some(subsets) = obj.get_mut("subsets").and_then(Value::as_array_mut) else {
        return;
    };
    for subset in subsets {
        for port in each(subset, "ports") {
            default(port, "protocol", json!("TCP"));
        }
    }
}

/// A resource quantity in units of 10^-9 (`500m` is 500_000_000, `1Ki` is 1024 * 10^9), or
/// None when it does not parse as k8s.io/apimachinery's resource.Quantity.
pub fn quantity_nanos(s: &str) -> Option<i128> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let negative = int.starts_with('-');
    let int = int.trim_start_matches(['+', '-']);
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut value: i128 = 0;
    for d in int.bytes() {
        value = value.checked_mul(10)?.checked_add(i128::from(d - b'0'))?;
    }
    // Nine fractional digits are kept; finer ones round up, as Quantity rounds to nano.
    let mut scaled = value.checked_mul(1_000_000_000)?;
    let mut unit: i128 = 100_000_000;
    let mut rest_nonzero = false;
    for (i, d) in frac.bytes().enumerate() {
        if !d.is_ascii_digit() {
            return None;
        }
        if i < 9 {
            scaled += i128::from(d - b'0') * unit;
            unit /= 10;
        } else if d != b'0' {
            rest_nonzero = true;
        }
    }
    if rest_nonzero {
        scaled += 1;
    }
    let multiply = |v: i128, base: i128, exp: u32| v.checked_mul(base.checked_pow(exp)?);
    let scaled = match suffix {
        "" => Some(scaled),
        "n" => Some(scaled / 1_000_000_000),
        "u" => Some(scaled / 1_000_000),
        "m" => Some(scaled / 1_000),
        "k" => multiply(scaled, 1000, 1),
        "M" => multiply(scaled, 1000, 2),
        "G" => multiply(scaled, 1000, 3),
        "T" => multiply(scaled, 1000, 4),
        "P" => multiply(scaled, 1000, 5),
        "E" => multiply(scaled, 1000, 6),
        "Ki" => multiply(scaled, 1024, 1),
        "Mi" => multiply(scaled, 1024, 2),
        "Gi" => multiply(scaled, 1024, 3),
        "Ti" => multiply(scaled, 1024, 4),
        "Pi" => multiply(scaled, 1024, 5),
        "Ei" => multiply(scaled, 1024, 6),
        e if e.starts_with(['e', 'E']) => {
            let exp: i32 = e[1..].parse().ok()?;
            if exp >= 0 {
                multiply(scaled, 10, exp.unsigned_abs())
            } else {
                Some(scaled / 10i128.checked_pow(exp.unsigned_abs())?)
            }
        }
        _ => None,
    }?;
    Some(if negative { -scaled } else { scaled })
}

/// The pod's QoS class as k8s.io/kubernetes pkg/apis/core/helper/qos GetPodQOS computes it from
/// the containers' and init containers' cpu and memory requests and limits.
pub fn qos_class(pod: &Value) -> &'static str {
    use std::collections::BTreeMap;
    let mut requests: BTreeMap<String, i128> = BTreeMap::new();
    let mut limits: BTreeMap<String, i128> = BTreeMap::new();
    let mut guaranteed = true;
    let spec = pod.get("spec");
    let containers = ["containers", "initContainers"].into_iter().flat_map(|l| {
        spec.and_then(|s| s.get(l))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    });
    for c in containers {
        let list = |which: &str| -> Vec<(String, i128)> {
            c.pointer(&format!("/resources/{which}"))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter(|(k, _)| *k == "cpu" || *k == "memory")
                .filter_map(|(k, v)| Some((k.clone(), quantity_nanos(v.as_str()?)?)))
                .filter(|(_, q)| *q > 0)
                .collect()
        };
        for (k, q) in list("requests") {
            *requests.entry(k).or_default() += q;
        }
        let found = list("limits");
        if !(found.iter().any(|(k, _)| k == "cpu") && found.iter().any(|(k, _)| k == "memory")) {
            guaranteed = false;
        }
        for (k, q) in found {
            *limits.entry(k).or_default() += q;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.iter().all(|(k, r)| limits.get(k) == Some(r))
        && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controlplane::resources::RESOURCES;

    fn res(kind: &str) -> &'static Resource {
        RESOURCES.iter().find(|r| r.kind == kind).unwrap()
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity_nanos("500m"), Some(500_000_000));
        assert_eq!(quantity_nanos("1"), Some(1_000_000_000));
        assert_eq!(quantity_nanos("0.5"), Some(500_000_000));
        assert_eq!(quantity_nanos("1Ki"), Some(1_024_000_000_000));
        assert_eq!(quantity_nanos("1e3"), Some(1_000_000_000_000));
        assert_eq!(
            quantity_nanos("128Mi"),
            Some(128 * 1024 * 1024 * 1_000_000_000)
        );
        assert_eq!(quantity_nanos("abc"), None);
        assert_eq!(quantity_nanos("1Zi"), None);
        assert_eq!(quantity_nanos(""), None);
    }

    #[test]
    fn qos() {
        let pod = |c: Value| json!({"spec": {"containers": [c]}});
        assert_eq!(qos_class(&pod(json!({"name": "a"}))), "BestEffort");
        assert_eq!(
            qos_class(&pod(
                json!({"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1Gi"}}})
            )),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&pod(json!({"resources": {"requests": {"cpu": "100m"}}}))),
            "Burstable"
        );
    }

    #[test]
    fn pod_defaults_a_kubelet_relies_on() {
        let p = decode(
            res("Pod"),
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i",
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "livenessProbe": {"httpGet": {"port": 80}}, "ports": [{"containerPort": 80}],
            "resources": {"limits": {"cpu": "1"}}}],
            "volumes": [{"name": "s", "secret": {"secretName": "s"}}, {"name": "e"}]}}),
        )
        .unwrap();
        let c = &p["spec"]["containers"][0];
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(c["livenessProbe"]["periodSeconds"], 10);
        assert_eq!(c["livenessProbe"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["resources"]["requests"]["cpu"], "1");
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(p["spec"]["volumes"][0]["secret"]["defaultMode"], 420);
        assert_eq!(p["spec"]["volumes"][1]["emptyDir"], json!({}));
        assert!(p.get("apiVersion").is_none());
    }

    #[test]
    fn decode_drops_unknown_fields_and_names_a_wrong_type() {
        let out = decode(
            res("ConfigMap"),
            json!({"metadata": {"name": "x"}, "bogus": 1, "data": {"a": "b"}}),
        )
        .unwrap();
        assert!(out.get("bogus").is_none());
        assert_eq!(out["data"]["a"], "b");
        let err = decode(
            res("Pod"),
            json!({"metadata": {"name": "x"}, "spec": {"containers": "none"}}),
        )
        .unwrap_err();
        assert!(err.contains("spec.containers"), "{err}");
    }

    #[test]
    fn secret_string_data_and_image_tags() {
        let mut s = json!({"stringData": {"a": "hi"}, "data": {"b": "eA=="}});
        secret(&mut s);
        assert_eq!(
            s,
            json!({"data": {"a": "aGk=", "b": "eA=="}, "type": "Opaque"})
        );
        assert_eq!(image_tag("busybox"), "latest");
        assert_eq!(image_tag("registry:5000/busybox"), "latest");
        assert_eq!(image_tag("registry:5000/busybox:1.2"), "1.2");
        assert_eq!(image_tag("busybox@sha256:00"), "");
    }
}
