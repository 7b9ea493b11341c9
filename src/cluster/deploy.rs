//! The manifests that run the harness on every selected node: a DaemonSet in a namespace of its
//! own, or a Sonobuoy plugin definition (`driver: DaemonSet`, `result-format: junit`).
//!
//! Each runs the image as the README's `docker run` does: privileged, in the host's PID and
//! network namespaces, the host's root read-only at `/rootfs`. Objects are k8s-openapi types,
//! printed as YAML.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, ExecAction, HostPathVolumeSource, Namespace,
    ObjectFieldSelector, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SecurityContext,
    Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::{Value, json};

use super::{APP, CONTAINER_RESULT_DIR, NAME_LABEL, RUN_LABEL};

/// Resources of the harness's container, after the seed's add-on advice (`limits: {cpu: 100m,
/// memory: 200Mi}` for a log collector). Measured: a run of the default suite peaks at 28 MiB
/// resident without the Docker tests; the Docker tests read the workload binary to make their
/// image, adding about twice its size (a release binary is about 15 MiB; a debug one 200 MiB,
/// which is why the image is built from a release binary). Idle after the run it holds a few
/// MiB. The request is what it needs to run the file checks; the CPU limit only slows the
/// Docker tests' image build, the rest waits on services.
pub const CPU_REQUEST: &str = "50m";
pub const MEMORY_REQUEST: &str = "64Mi";
pub const CPU_LIMIT: &str = "100m";
pub const MEMORY_LIMIT: &str = "200Mi";

/// The control-plane taints tolerated unless `--exclude-control-plane`: the current one and the
/// one kubeadm set before 1.24 (`node-role.kubernetes.io/master`).
pub const CONTROL_PLANE_TAINTS: [&str; 2] = [
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
];

/// Where Sonobuoy's worker sidecar reads results from (the default of its `ResultsDir`; the
/// `results` volume is added by Sonobuoy).
pub const SONOBUOY_RESULTS_DIR: &str = "/tmp/sonobuoy/results";

/// What a deployment runs and where.
#[derive(Debug, Clone)]
pub struct Options {
    pub image: String,
    pub namespace: String,
    /// FOCUS and SKIP for the pods; `None` leaves the image's default.
    pub focus: Option<String>,
    pub skip: Option<String>,
    /// `key=value` pairs every selected node carries.
    pub node_selector: Vec<String>,
    /// Whether control-plane nodes (tainted NoSchedule) run it too.
    pub control_plane: bool,
    /// The directory on each node under which the run's results are kept
    /// (`<dir>/<run id>`); `None` keeps them in the pod only (an emptyDir).
    pub host_result_dir: Option<PathBuf>,
    pub run_id: String,
}

fn quantity(s: &str) -> Quantity {
    Quantity(s.to_string())
}

fn labels(o: &Options) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_string(), APP.to_string()),
        (RUN_LABEL.to_string(), o.run_id.clone()),
    ])
}

/// `key=value` pairs as a map; an entry without `=` or with an empty key is an error naming it.
pub fn node_selector(pairs: &[String]) -> Result<BTreeMap<String, String>, String> {
    pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("--node-selector {p:?}: expected key=value")),
        })
        .collect()
}

fn tolerations(o: &Options) -> Option<Vec<Toleration>> {
    o.control_plane.then(|| {
        CONTROL_PLANE_TAINTS
            .iter()
            .map(|key| Toleration {
                key: Some((*key).to_string()),
                operator: Some("Exists".into()),
                effect: Some("NoSchedule".into()),
                ..Default::default()
            })
            .collect()
    })
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

/// The harness's container: `run --keep-running`, privileged, the host's root read-only at
/// `/rootfs`, mounted as `docker run -v /:/rootfs:ro` does (no propagation from the host:
/// `HostToContainer` needs the host's `/` to be a shared or slave mount, which not every node
/// has, and the run reads files, not mounts made after it started).
fn container(o: &Options, name: &str, result_dir: &str) -> Container {
    let mut env_vars = vec![
        env("ROOTFS", "/rootfs"),
        env("REPORT_PATH", result_dir),
        EnvVar {
            name: "NODE_NAME".into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: "spec.nodeName".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    if let Some(f) = &o.focus {
        env_vars.push(env("FOCUS", f));
    }
    if let Some(s) = &o.skip {
        env_vars.push(env("SKIP", s));
    }
    Container {
        name: name.into(),
        image: Some(o.image.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec![
            "/node-conformance".into(),
            "run".into(),
            "--keep-running".into(),
        ]),
        env: Some(env_vars),
        security_context: Some(SecurityContext {
            privileged: Some(true),
            ..Default::default()
        }),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".into(), quantity(CPU_REQUEST)),
                ("memory".into(), quantity(MEMORY_REQUEST)),
            ])),
            limits: Some(BTreeMap::from([
                ("cpu".into(), quantity(CPU_LIMIT)),
                ("memory".into(), quantity(MEMORY_LIMIT)),
            ])),
            ..Default::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "rootfs".into(),
                mount_path: "/rootfs".into(),
                read_only: Some(true),
                ..Default::default()
            },
            VolumeMount {
                name: "results".into(),
                mount_path: result_dir.into(),
                ..Default::default()
            },
        ]),
        ..Default::default()
    }
}

fn host_path(name: &str, path: &Path, kind: &str) -> Volume {
    Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource {
            path: path.display().to_string(),
            type_: Some(kind.into()),
        }),
        ..Default::default()
    }
}

/// The pod spec both manifests share: the host's PID and network namespaces (the kubelet tests
/// start a kubelet in the host's namespaces and reach it on loopback; runs see each other's
/// abstract sockets there), no API credentials (the results leave through the pod's log).
fn pod_spec(o: &Options, containers: Vec<Container>, volumes: Vec<Volume>) -> PodSpec {
    let selector = node_selector(&o.node_selector).unwrap_or_default();
    PodSpec {
        containers,
        host_pid: Some(true),
        host_network: Some(true),
        dns_policy: Some("ClusterFirstWithHostNet".into()),
        automount_service_account_token: Some(false),
        // A run stopped by SIGTERM writes its results and removes what it made (a managed
        // kubelet gets 10 s to stop): the default 30 s covers it.
        termination_grace_period_seconds: Some(30),
        node_selector: (!selector.is_empty()).then_some(selector),
        tolerations: tolerations(o),
        volumes: Some(volumes),
        ..Default::default()
    }
}

fn check(o: &Options) -> Result<(), String> {
    if o.image.is_empty() {
        return Err("--image is empty".into());
    }
    if o.namespace.is_empty() {
        return Err("--namespace is empty".into());
    }
    // A label value (at most 63 characters, alphanumeric at both ends, `-_.` inside) that is
    // also one path component on the node.
    let id = &o.run_id;
    let inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let valid = !id.is_empty()
        && id.len() <= 63
        && id.chars().all(inner)
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid {
        return Err(format!(
            "--run-id {id:?}: expected at most 63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit"
        ));
    }
    node_selector(&o.node_selector).map(|_| ())
}

fn yaml<T: serde::Serialize>(docs: &[T]) -> Result<String, String> {
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(doc).map_err(|e| format!("YAML: {e}"))?);
    }
    Ok(out)
}

/// The namespace (Pod Security `privileged` enforced, warned and audited, as the pods need)
/// and the DaemonSet, as one YAML stream for `kubectl apply -f -`.
///
/// Results go to `/var/result` in the container, a hostPath
/// `<host_result_dir>/<run id>` (created when missing) or an emptyDir, and into the pod's log
/// when the run ends. The pod is Ready once the run has ended (`node-conformance finished`,
/// an exec probe); it then idles until deleted, so the DaemonSet does not start it again.
///
/// Errors: an empty image or namespace, a node selector entry without `=`.
pub fn daemonset(o: &Options) -> Result<String, String> {
    check(o)?;
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(o.namespace.clone()),
            labels: Some(BTreeMap::from([
                (
                    "pod-security.kubernetes.io/enforce".into(),
                    "privileged".into(),
                ),
                (
                    "pod-security.kubernetes.io/warn".into(),
                    "privileged".into(),
                ),
                (
                    "pod-security.kubernetes.io/audit".into(),
                    "privileged".into(),
                ),
            ])),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut c = container(o, APP, CONTAINER_RESULT_DIR);
    c.readiness_probe = Some(Probe {
        exec: Some(ExecAction {
            command: Some(vec![
                "/node-conformance".into(),
                "finished".into(),
                "--result-dir".into(),
                CONTAINER_RESULT_DIR.into(),
            ]),
        }),
        period_seconds: Some(10),
        ..Default::default()
    });
    let results = match &o.host_result_dir {
        Some(dir) => host_path("results", &dir.join(&o.run_id), "DirectoryOrCreate"),
        None => Volume {
            name: "results".into(),
            empty_dir: Some(Default::default()),
            ..Default::default()
        },
    };
    let volumes = vec![host_path("rootfs", Path::new("/"), "Directory"), results];
    let ds = DaemonSet {
        metadata: ObjectMeta {
            name: Some(APP.into()),
            namespace: Some(o.namespace.clone()),
            labels: Some(labels(o)),
            ..Default::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(labels(o)),
                ..Default::default()
            },
            // A changed manifest must not restart runs in progress: pods are replaced only
            // when deleted.
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                ..Default::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(o)),
                    ..Default::default()
                }),
                spec: Some(pod_spec(o, vec![c], volumes)),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let docs = [
        serde_json::to_value(&ns).map_err(|e| e.to_string())?,
        serde_json::to_value(&ds).map_err(|e| e.to_string())?,
    ];
    yaml(&docs)
}

/// A Sonobuoy plugin definition (`sonobuoy run --plugin FILE`): `driver: DaemonSet`,
/// `result-format: junit`, the container as `spec` and the pod's privileges as `podSpec`
/// (Sonobuoy adds its worker sidecar and the `results` volume at
/// [`SONOBUOY_RESULTS_DIR`]). In the pod, `run` sees `SONOBUOY_RESULTS_DIR` and follows the
/// worker contract ([`super::sonobuoy`]). Sonobuoy's own namespace is labelled
/// Pod Security `privileged` by default (`sonobuoy run --pod-security-enforce-level`).
///
/// Errors: as [`daemonset`].
pub fn sonobuoy_plugin(o: &Options, plugin_name: &str) -> Result<String, String> {
    check(o)?;
    if plugin_name.is_empty() {
        return Err("--plugin-name is empty".into());
    }
    let c = container(o, "plugin", SONOBUOY_RESULTS_DIR);
    let mut spec = pod_spec(
        o,
        Vec::new(),
        vec![host_path("rootfs", Path::new("/"), "Directory")],
    );
    // Sonobuoy's worker reports to its aggregator with the run's service account.
    spec.service_account_name = Some("sonobuoy-serviceaccount".into());
    spec.automount_service_account_token = None;
    let plugin: Value = json!({
        "sonobuoy-config": {
            "driver": "DaemonSet",
            "plugin-name": plugin_name,
            "result-format": "junit",
            "description": "Kubernetes node conformance tests on every node (node-conformance)",
        },
        "spec": serde_json::to_value(&c).map_err(|e| e.to_string())?,
        "podSpec": serde_json::to_value(&spec).map_err(|e| e.to_string())?,
    });
    yaml(&[plugin])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options {
            image: "registry.example.com/node-conformance:0.1.0".into(),
            namespace: "nc".into(),
            focus: Some(r"\[sig-node\] System".into()),
            skip: None,
            node_selector: vec!["kubernetes.io/os=linux".into()],
            control_plane: true,
            host_result_dir: Some("/var/log/node-conformance".into()),
            run_id: "r1".into(),
        }
    }

    fn docs(text: &str) -> Vec<Value> {
        serde_saphyr::from_multiple::<Value>(text).unwrap()
    }

    #[test]
    fn the_daemonset_runs_privileged_on_every_selected_node() {
        let text = daemonset(&options()).unwrap();
        let d = docs(&text);
        assert_eq!(d.len(), 2, "{text}");
        assert_eq!(d[0]["kind"], "Namespace");
        assert_eq!(
            d[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "privileged"
        );
        let ds = &d[1];
        assert_eq!(
            (&ds["apiVersion"], &ds["kind"]),
            (&json!("apps/v1"), &json!("DaemonSet"))
        );
        assert_eq!(ds["metadata"]["namespace"], "nc");
        let pod = &ds["spec"]["template"]["spec"];
        assert_eq!(pod["hostPID"], true);
        assert_eq!(pod["hostNetwork"], true);
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
        let keys: Vec<_> = pod["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, CONTROL_PLANE_TAINTS);
        let c = &pod["containers"][0];
        assert_eq!(c["securityContext"]["privileged"], true);
        assert_eq!(
            c["command"],
            json!(["/node-conformance", "run", "--keep-running"])
        );
        assert_eq!(
            c["resources"]["limits"],
            json!({"cpu": "100m", "memory": "200Mi"})
        );
        assert_eq!(
            c["resources"]["requests"],
            json!({"cpu": "50m", "memory": "64Mi"})
        );
        let env: BTreeMap<_, _> = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["name"].as_str().unwrap(), e.get("value").cloned()))
            .collect();
        // The regex survives YAML as it was given.
        assert_eq!(env["FOCUS"], Some(json!(r"\[sig-node\] System")));
        assert!(!env.contains_key("SKIP"));
        assert_eq!(env["REPORT_PATH"], Some(json!("/var/result")));
        assert_eq!(
            c["readinessProbe"]["exec"]["command"],
            json!([
                "/node-conformance",
                "finished",
                "--result-dir",
                "/var/result"
            ])
        );
        let volumes = pod["volumes"].as_array().unwrap();
        assert_eq!(
            volumes[0]["hostPath"],
            json!({"path": "/", "type": "Directory"})
        );
        assert_eq!(
            volumes[1]["hostPath"],
            json!({"path": "/var/log/node-conformance/r1", "type": "DirectoryOrCreate"})
        );
        let mounts = c["volumeMounts"].as_array().unwrap();
        assert_eq!(mounts[0]["readOnly"], true);
        assert_eq!(ds["spec"]["selector"]["matchLabels"][RUN_LABEL], "r1");
        assert_eq!(
            ds["spec"]["template"]["metadata"]["labels"],
            ds["spec"]["selector"]["matchLabels"]
        );
    }

    #[test]
    fn options_change_the_manifest() {
        let mut o = options();
        o.control_plane = false;
        o.host_result_dir = None;
        o.node_selector.clear();
        o.skip = Some(String::new());
        let d = docs(&daemonset(&o).unwrap());
        let pod = &d[1]["spec"]["template"]["spec"];
        assert!(pod.get("tolerations").is_none());
        assert!(pod.get("nodeSelector").is_none());
        assert_eq!(pod["volumes"][1]["emptyDir"], json!({}));
        let env = &pod["containers"][0]["env"];
        assert!(
            env.as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == "SKIP" && e["value"] == "")
        );
        o.node_selector = vec!["novalue".into()];
        assert!(
            daemonset(&o)
                .unwrap_err()
                .contains("\"novalue\": expected key=value")
        );
        o.node_selector = vec!["=x".into()];
        assert!(daemonset(&o).is_err());
        o.node_selector = vec!["k=".into()];
        assert!(daemonset(&o).is_ok());
        for bad in ["", "../x", "-a", &"a".repeat(64)] {
            o.run_id = bad.to_string();
            assert!(daemonset(&o).unwrap_err().contains("--run-id"), "{bad}");
        }
    }

    #[test]
    fn the_sonobuoy_plugin_follows_the_plugin_format() {
        let text = sonobuoy_plugin(&options(), "node-conformance").unwrap();
        let d = docs(&text);
        assert_eq!(d.len(), 1, "{text}");
        let p = &d[0];
        assert_eq!(p["sonobuoy-config"]["driver"], "DaemonSet", "{text}");
        assert_eq!(p["sonobuoy-config"]["result-format"], "junit");
        assert_eq!(p["spec"]["name"], "plugin");
        assert_eq!(p["spec"]["securityContext"]["privileged"], true);
        let mounts = p["spec"]["volumeMounts"].as_array().unwrap();
        assert!(
            mounts
                .iter()
                .any(|m| m["name"] == "results" && m["mountPath"] == SONOBUOY_RESULTS_DIR)
        );
        assert_eq!(p["podSpec"]["containers"], json!([]));
        assert_eq!(p["podSpec"]["hostPID"], true);
        assert_eq!(p["podSpec"]["volumes"].as_array().unwrap().len(), 1);
        assert!(p["spec"].get("readinessProbe").is_none());
    }
}
