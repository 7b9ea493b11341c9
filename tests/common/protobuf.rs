//! Protobuf request bodies of every kind the local control plane serves, encoded with the
//! k8s-pb crate's messages (an encoder independent of the decoder under test), each with the
//! JSON kube-apiserver stores from it. Shared by the decoding tests and the comparison with a
//! real kube-apiserver.
#![allow(dead_code)]

use std::collections::BTreeMap;

use k8s_pb::api::coordination::v1 as coordination;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::node::v1 as nodev1;
use k8s_pb::api::storage::v1 as storage;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{Value, json};

pub const NS: &str = "pb-test";
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// One request body and what it must be stored as.
pub struct Fixture {
    /// The collection it is created in, e.g. `/api/v1/namespaces/pb-test/pods`.
    pub collection: String,
    pub name: &'static str,
    pub api_version: &'static str,
    pub kind: &'static str,
    pub body: Vec<u8>,
    pub json: Value,
    /// A PUT to /status after the create: its body and the status it stores.
    pub status: Option<(Vec<u8>, Value)>,
}

impl Fixture {
    pub fn path(&self) -> String {
        format!("{}/{}", self.collection, self.name)
    }
}

/// `k8s\0` and a runtime.Unknown holding the message, as client-go's protobuf serializer
/// writes it (empty contentEncoding and contentType included).
pub fn envelope(api_version: &str, kind: &str, msg: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(msg.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn map(v: &[(&str, &str)]) -> BTreeMap<String, String> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn quantities(v: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    v.iter()
        .map(|(k, v)| (k.to_string(), Quantity { string: s(v) }))
        .collect()
}

/// 2023-11-14T22:13:20Z, with nanoseconds a Time drops and a MicroTime keeps to the µs.
pub const T0: i64 = 1_700_000_000;

fn time(offset: i64) -> Option<meta::Time> {
    Some(meta::Time {
        seconds: Some(T0 + offset),
        nanos: Some(123_456_789),
    })
}

fn micro(offset: i64) -> Option<meta::MicroTime> {
    Some(meta::MicroTime {
        seconds: Some(T0 + offset),
        nanos: Some(123_456_789),
    })
}

fn meta(name: &str, namespace: Option<&str>) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: s(name),
        namespace: namespace.map(str::to_string),
        labels: map(&[("app", "pb")]),
        annotations: map(&[("note", "from protobuf")]),
        ..Default::default()
    })
}

fn meta_json(name: &str, namespace: Option<&str>) -> Value {
    let mut m =
        json!({"name": name, "labels": {"app": "pb"}, "annotations": {"note": "from protobuf"}});
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    m
}

fn int(i: i32) -> Option<IntOrString> {
    Some(IntOrString {
        r#type: Some(0),
        int_val: Some(i),
        str_val: Some(String::new()),
    })
}

fn text(v: &str) -> Option<IntOrString> {
    Some(IntOrString {
        r#type: Some(1),
        int_val: Some(0),
        str_val: s(v),
    })
}

fn collection(group_version: &str, plural: &str, namespaced: bool) -> String {
    let base = if group_version == "v1" {
        "/api/v1".to_string()
    } else {
        format!("/apis/{group_version}")
    };
    if namespaced {
        format!("{base}/namespaces/{NS}/{plural}")
    } else {
        format!("{base}/{plural}")
    }
}

fn fixture(
    plural: &str,
    namespaced: bool,
    name: &'static str,
    api_version: &'static str,
    kind: &'static str,
    msg: &impl Message,
    mut json: Value,
) -> Fixture {
    json["apiVersion"] = json!(api_version);
    json["kind"] = json!(kind);
    Fixture {
        collection: collection(api_version, plural, namespaced),
        name,
        api_version,
        kind,
        body: envelope(api_version, kind, msg),
        json,
        status: None,
    }
}

/// Every served kind, in an order that creates what later ones refer to first.
pub fn fixtures() -> Vec<Fixture> {
    vec![
        namespace(),
        configmap(),
        secret(),
        event(),
        event_series(),
        node(),
        pod(),
        service(),
        endpoints(),
        service_account(),
        lease(),
        csinode(),
        csidriver(),
        runtimeclass(),
    ]
}

pub fn namespace() -> Fixture {
    let msg = core::Namespace {
        metadata: meta("pb-ns", None),
        spec: Some(core::NamespaceSpec {
            finalizers: strings(&["kubernetes"]),
        }),
        status: Some(core::NamespaceStatus {
            phase: s("Active"),
            conditions: vec![],
        }),
    };
    fixture(
        "namespaces",
        false,
        "pb-ns",
        "v1",
        "Namespace",
        &msg,
        json!({"metadata": meta_json("pb-ns", None), "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
    )
}

pub fn configmap() -> Fixture {
    let msg = core::ConfigMap {
        metadata: meta("pb-cm", Some(NS)),
        // A pointer to false prints; a value false would not.
        immutable: Some(false),
        data: map(&[("a", "1"), ("empty", "")]),
        binary_data: [("bin".to_string(), vec![0u8, 1, 2, 255])]
            .into_iter()
            .collect(),
    };
    fixture(
        "configmaps",
        true,
        "pb-cm",
        "v1",
        "ConfigMap",
        &msg,
        json!({"metadata": meta_json("pb-cm", Some(NS)), "immutable": false,
            "data": {"a": "1", "empty": ""}, "binaryData": {"bin": "AAEC/w=="}}),
    )
}

pub fn secret() -> Fixture {
    let msg = core::Secret {
        metadata: meta("pb-secret", Some(NS)),
        data: [
            ("password".to_string(), b"s3cr3t".to_vec()),
            ("empty".to_string(), vec![]),
        ]
        .into_iter()
        .collect(),
        r#type: s("Opaque"),
        ..Default::default()
    };
    fixture(
        "secrets",
        true,
        "pb-secret",
        "v1",
        "Secret",
        &msg,
        json!({"metadata": meta_json("pb-secret", Some(NS)), "data": {"password": "czNjcjN0", "empty": ""}, "type": "Opaque"}),
    )
}

fn pod_ref() -> Option<core::ObjectReference> {
    Some(core::ObjectReference {
        kind: s("Pod"),
        namespace: s(NS),
        name: s("pb-pod"),
        uid: s("6a0a3bde-2f4c-4a1e-9d1c-2b1a3c4d5e6f"),
        api_version: s("v1"),
        field_path: s("spec.containers{web}"),
        ..Default::default()
    })
}

const POD_REF_JSON: &str = r#"{"kind": "Pod", "namespace": "pb-test", "name": "pb-pod", "uid": "6a0a3bde-2f4c-4a1e-9d1c-2b1a3c4d5e6f", "apiVersion": "v1", "fieldPath": "spec.containers{web}"}"#;

/// An event as the kubelet's recorder posts it: the legacy fields, no eventTime.
pub fn event() -> Fixture {
    let msg = core::Event {
        metadata: meta("pb-pod.1", Some(NS)),
        involved_object: pod_ref(),
        reason: s("Pulled"),
        message: s("Container image \"busybox:1.36\" already present on machine"),
        source: Some(core::EventSource {
            component: s("kubelet"),
            host: s("pb-node"),
        }),
        first_timestamp: time(0),
        last_timestamp: time(5),
        count: Some(2),
        r#type: s("Normal"),
        ..Default::default()
    };
    let involved: Value = serde_json::from_str(POD_REF_JSON).unwrap();
    // A value MicroTime prints null when zero; the two reporting strings have no omitempty.
    fixture(
        "events",
        true,
        "pb-pod.1",
        "v1",
        "Event",
        &msg,
        json!({"metadata": meta_json("pb-pod.1", Some(NS)), "involvedObject": involved,
            "reason": "Pulled", "message": "Container image \"busybox:1.36\" already present on machine",
            "source": {"component": "kubelet", "host": "pb-node"},
            "firstTimestamp": "2023-11-14T22:13:20Z", "lastTimestamp": "2023-11-14T22:13:25Z",
            "count": 2, "type": "Normal", "eventTime": null, "reportingComponent": "", "reportingInstance": ""}),
    )
}

/// An event in the newer form: eventTime, series, action, reporting controller.
pub fn event_series() -> Fixture {
    let msg = core::Event {
        metadata: meta("pb-pod.2", Some(NS)),
        involved_object: pod_ref(),
        reason: s("Started"),
        message: s("Started container web"),
        event_time: micro(0),
        series: Some(core::EventSeries {
            count: Some(3),
            last_observed_time: micro(7),
        }),
        action: s("Starting"),
        r#type: s("Normal"),
        reporting_component: s("kubelet"),
        reporting_instance: s("pb-node"),
        ..Default::default()
    };
    let involved: Value = serde_json::from_str(POD_REF_JSON).unwrap();
    // Absent value structs still print: source as {}, the two Times as null.
    fixture(
        "events",
        true,
        "pb-pod.2",
        "v1",
        "Event",
        &msg,
        json!({"metadata": meta_json("pb-pod.2", Some(NS)), "involvedObject": involved,
            "reason": "Started", "message": "Started container web", "source": {},
            "firstTimestamp": null, "lastTimestamp": null, "type": "Normal",
            "eventTime": "2023-11-14T22:13:20.123456Z",
            "series": {"count": 3, "lastObservedTime": "2023-11-14T22:13:27.123456Z"},
            "action": "Starting", "reportingComponent": "kubelet", "reportingInstance": "pb-node"}),
    )
}

pub fn node() -> Fixture {
    let capacity = quantities(&[
        ("cpu", "2"),
        ("memory", "8140148Ki"),
        ("pods", "110"),
        ("ephemeral-storage", "101445540Ki"),
        ("hugepages-2Mi", "0"),
    ]);
    let allocatable = quantities(&[
        ("cpu", "1900m"),
        ("memory", "7935348Ki"),
        ("pods", "110"),
        ("ephemeral-storage", "93492209510"),
        ("hugepages-2Mi", "0"),
    ]);
    let msg = core::Node {
        metadata: meta("pb-node", None),
        spec: Some(core::NodeSpec {
            pod_cidr: s("10.244.0.0/24"),
            pod_cid_rs: strings(&["10.244.0.0/24"]),
            taints: vec![core::Taint {
                key: s("node.kubernetes.io/not-ready"),
                effect: s("NoSchedule"),
                ..Default::default()
            }],
            unschedulable: Some(false),
            ..Default::default()
        }),
        status: Some(core::NodeStatus {
            capacity,
            allocatable,
            conditions: vec![core::NodeCondition {
                r#type: s("Ready"),
                status: s("True"),
                last_heartbeat_time: time(10),
                last_transition_time: time(0),
                reason: s("KubeletReady"),
                message: s("kubelet is posting ready status"),
            }],
            addresses: vec![
                core::NodeAddress {
                    r#type: s("InternalIP"),
                    address: s("10.0.0.1"),
                },
                core::NodeAddress {
                    r#type: s("Hostname"),
                    address: s("pb-node"),
                },
            ],
            daemon_endpoints: Some(core::NodeDaemonEndpoints {
                kubelet_endpoint: Some(core::DaemonEndpoint { port: Some(10250) }),
            }),
            node_info: Some(core::NodeSystemInfo {
                machine_id: s("0123456789abcdef"),
                system_uuid: s("4c4c4544-0000-1000-8000-000000000000"),
                boot_id: s("b0070000-0000-4000-8000-000000000000"),
                kernel_version: s("6.1.0-18-amd64"),
                os_image: s("Debian GNU/Linux 12 (bookworm)"),
                container_runtime_version: s("containerd://1.6.20"),
                kubelet_version: s("v1.20.2"),
                kube_proxy_version: s("v1.20.2"),
                operating_system: s("linux"),
                architecture: s("amd64"),
                swap: None,
            }),
            images: vec![core::ContainerImage {
                names: strings(&["k8s.gcr.io/pause:3.2"]),
                size_bytes: Some(682_696),
            }],
            ..Default::default()
        }),
    };
    fixture(
        "nodes",
        false,
        "pb-node",
        "v1",
        "Node",
        &msg,
        json!({"metadata": meta_json("pb-node", None),
            "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"],
                "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]},
            "status": {
                "capacity": {"cpu": "2", "memory": "8140148Ki", "pods": "110", "ephemeral-storage": "101445540Ki", "hugepages-2Mi": "0"},
                "allocatable": {"cpu": "1900m", "memory": "7935348Ki", "pods": "110", "ephemeral-storage": "93492209510", "hugepages-2Mi": "0"},
                "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2023-11-14T22:13:30Z",
                    "lastTransitionTime": "2023-11-14T22:13:20Z", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "pb-node"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"machineID": "0123456789abcdef", "systemUUID": "4c4c4544-0000-1000-8000-000000000000",
                    "bootID": "b0070000-0000-4000-8000-000000000000", "kernelVersion": "6.1.0-18-amd64",
                    "osImage": "Debian GNU/Linux 12 (bookworm)", "containerRuntimeVersion": "containerd://1.6.20",
                    "kubeletVersion": "v1.20.2", "kubeProxyVersion": "v1.20.2", "operatingSystem": "linux", "architecture": "amd64"},
                "images": [{"names": ["k8s.gcr.io/pause:3.2"], "sizeBytes": 682696}]}}),
    )
}

fn probe(handler: core::ProbeHandler, initial: i32) -> Option<core::Probe> {
    Some(core::Probe {
        handler: Some(handler),
        initial_delay_seconds: Some(initial),
        timeout_seconds: Some(1),
        period_seconds: Some(10),
        success_threshold: Some(1),
        failure_threshold: Some(3),
        termination_grace_period_seconds: None,
    })
}

/// A pod with every default kube-apiserver would fill already filled, so what it stores is
/// what was sent.
pub fn pod() -> Fixture {
    let container = core::Container {
        name: s("web"),
        image: s("busybox:1.36"),
        command: strings(&["sh", "-c"]),
        args: strings(&["sleep 3600"]),
        ports: vec![core::ContainerPort {
            name: s("http"),
            container_port: Some(8080),
            protocol: s("TCP"),
            host_port: Some(0),
            ..Default::default()
        }],
        env: vec![
            core::EnvVar {
                name: s("A"),
                value: s("1"),
                value_from: None,
            },
            core::EnvVar {
                name: s("POD"),
                value: None,
                value_from: Some(core::EnvVarSource {
                    field_ref: Some(core::ObjectFieldSelector {
                        api_version: s("v1"),
                        field_path: s("metadata.name"),
                    }),
                    ..Default::default()
                }),
            },
        ],
        resources: Some(core::ResourceRequirements {
            limits: quantities(&[("cpu", "500m"), ("memory", "128Mi")]),
            requests: quantities(&[("cpu", "250m"), ("memory", "64Mi")]),
            claims: vec![],
        }),
        volume_mounts: vec![core::VolumeMount {
            name: s("cfg"),
            read_only: Some(true),
            mount_path: s("/etc/cfg"),
            ..Default::default()
        }],
        liveness_probe: probe(
            core::ProbeHandler {
                http_get: Some(core::HttpGetAction {
                    path: s("/healthz"),
                    port: int(8080),
                    scheme: s("HTTP"),
                    ..Default::default()
                }),
                ..Default::default()
            },
            3,
        ),
        readiness_probe: probe(
            core::ProbeHandler {
                tcp_socket: Some(core::TcpSocketAction {
                    port: text("http"),
                    host: None,
                }),
                ..Default::default()
            },
            0,
        ),
        termination_message_path: s("/dev/termination-log"),
        termination_message_policy: s("File"),
        image_pull_policy: s("IfNotPresent"),
        security_context: Some(core::SecurityContext {
            privileged: Some(false),
            run_as_user: Some(0),
            ..Default::default()
        }),
        stdin: Some(false),
        ..Default::default()
    };
    let volumes = vec![
        core::Volume {
            name: s("cfg"),
            volume_source: Some(core::VolumeSource {
                config_map: Some(core::ConfigMapVolumeSource {
                    local_object_reference: Some(core::LocalObjectReference { name: s("pb-cm") }),
                    items: vec![core::KeyToPath {
                        key: s("a"),
                        path: s("a.txt"),
                        mode: None,
                    }],
                    default_mode: Some(420),
                    optional: None,
                }),
                ..Default::default()
            }),
        },
        core::Volume {
            name: s("scratch"),
            volume_source: Some(core::VolumeSource {
                empty_dir: Some(core::EmptyDirVolumeSource {
                    medium: None,
                    size_limit: Some(Quantity { string: s("1Gi") }),
                }),
                ..Default::default()
            }),
        },
        core::Volume {
            name: s("host"),
            volume_source: Some(core::VolumeSource {
                host_path: Some(core::HostPathVolumeSource {
                    path: s("/tmp"),
                    r#type: s(""),
                }),
                ..Default::default()
            }),
        },
    ];
    let mut metadata = meta("pb-pod", Some(NS));
    if let Some(m) = metadata.as_mut() {
        m.owner_references = vec![meta::OwnerReference {
            api_version: s("v1"),
            kind: s("Node"),
            name: s("pb-node"),
            uid: s("0b6f2e1c-1111-4222-8333-444455556666"),
            controller: Some(true),
            block_owner_deletion: None,
        }];
    }
    let msg = core::Pod {
        metadata,
        spec: Some(core::PodSpec {
            volumes,
            containers: vec![container],
            restart_policy: s("Always"),
            termination_grace_period_seconds: Some(0),
            dns_policy: s("ClusterFirst"),
            node_name: s("pb-node"),
            host_network: Some(false),
            security_context: Some(core::PodSecurityContext::default()),
            scheduler_name: s("default-scheduler"),
            tolerations: vec![core::Toleration {
                operator: s("Exists"),
                effect: s("NoExecute"),
                toleration_seconds: Some(300),
                ..Default::default()
            }],
            priority: Some(0),
            enable_service_links: Some(true),
            ..Default::default()
        }),
        status: None,
    };
    let mut meta_json = meta_json("pb-pod", Some(NS));
    meta_json["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Node", "name": "pb-node",
        "uid": "0b6f2e1c-1111-4222-8333-444455556666", "controller": true}]);
    let probe_json = |handler: Value, initial: i32| {
        let mut p = json!({"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3});
        if initial != 0 {
            p["initialDelaySeconds"] = json!(initial);
        }
        for (k, v) in handler.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    let mut f = fixture(
        "pods",
        true,
        "pb-pod",
        "v1",
        "Pod",
        &msg,
        json!({"metadata": meta_json,
            "spec": {
                "volumes": [
                    {"name": "cfg", "configMap": {"name": "pb-cm", "items": [{"key": "a", "path": "a.txt"}], "defaultMode": 420}},
                    {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
                    {"name": "host", "hostPath": {"path": "/tmp", "type": ""}}],
                "containers": [{"name": "web", "image": "busybox:1.36", "command": ["sh", "-c"], "args": ["sleep 3600"],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": "A", "value": "1"}, {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}},
                    "volumeMounts": [{"name": "cfg", "readOnly": true, "mountPath": "/etc/cfg"}],
                    "livenessProbe": probe_json(json!({"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}}), 3),
                    "readinessProbe": probe_json(json!({"tcpSocket": {"port": "http"}}), 0),
                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent", "securityContext": {"privileged": false, "runAsUser": 0}}],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 0, "dnsPolicy": "ClusterFirst",
                "nodeName": "pb-node", "securityContext": {}, "schedulerName": "default-scheduler",
                "tolerations": [{"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
                "priority": 0, "enableServiceLinks": true},
            // The zero PodStatus, since the message had none.
            "status": {}}),
    );
    let mut with_status = msg.clone();
    with_status.status = Some(core::PodStatus {
        phase: s("Running"),
        conditions: vec![core::PodCondition {
            r#type: s("Ready"),
            status: s("True"),
            last_transition_time: time(1),
            ..Default::default()
        }],
        host_ip: s("10.0.0.1"),
        pod_ip: s("10.88.0.5"),
        pod_ips: vec![core::PodIp { ip: s("10.88.0.5") }],
        start_time: time(0),
        container_statuses: vec![core::ContainerStatus {
            name: s("web"),
            state: Some(core::ContainerState {
                running: Some(core::ContainerStateRunning {
                    started_at: time(1),
                }),
                ..Default::default()
            }),
            ready: Some(true),
            restart_count: Some(0),
            image: s("docker.io/library/busybox:1.36"),
            image_id: s("docker.io/library/busybox@sha256:0123"),
            container_id: s("containerd://0123"),
            started: Some(true),
            ..Default::default()
        }],
        qos_class: s("Burstable"),
        ..Default::default()
    });
    f.status = Some((
        envelope("v1", "Pod", &with_status),
        json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2023-11-14T22:13:21Z"}],
            "hostIP": "10.0.0.1", "podIP": "10.88.0.5", "podIPs": [{"ip": "10.88.0.5"}], "startTime": "2023-11-14T22:13:20Z",
            "containerStatuses": [{"name": "web", "state": {"running": {"startedAt": "2023-11-14T22:13:21Z"}}, "lastState": {},
                "ready": true, "restartCount": 0, "image": "docker.io/library/busybox:1.36",
                "imageID": "docker.io/library/busybox@sha256:0123", "containerID": "containerd://0123", "started": true}],
            "qosClass": "Burstable"}),
    ));
    f
}

pub fn service() -> Fixture {
    let msg = core::Service {
        metadata: meta("pb-svc", Some(NS)),
        spec: Some(core::ServiceSpec {
            ports: vec![
                core::ServicePort {
                    name: s("http"),
                    protocol: s("TCP"),
                    port: Some(80),
                    target_port: int(8080),
                    ..Default::default()
                },
                core::ServicePort {
                    name: s("dns"),
                    protocol: s("UDP"),
                    port: Some(53),
                    target_port: text("dns"),
                    ..Default::default()
                },
            ],
            selector: map(&[("app", "pb")]),
            cluster_ip: s("None"),
            cluster_ips: strings(&["None"]),
            r#type: s("ClusterIP"),
            session_affinity: s("None"),
            ..Default::default()
        }),
        status: None,
    };
    let mut f = fixture(
        "services",
        true,
        "pb-svc",
        "v1",
        "Service",
        &msg,
        json!({"metadata": meta_json("pb-svc", Some(NS)),
            "spec": {"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": "dns"}],
                "selector": {"app": "pb"}, "clusterIP": "None", "clusterIPs": ["None"], "type": "ClusterIP",
                "sessionAffinity": "None"},
            "status": {"loadBalancer": {}}}),
    );
    let mut with_status = msg.clone();
    with_status.status = Some(core::ServiceStatus {
        load_balancer: Some(core::LoadBalancerStatus {
            ingress: vec![core::LoadBalancerIngress {
                ip: s("192.0.2.10"),
                ..Default::default()
            }],
        }),
        conditions: vec![],
    });
    f.status = Some((
        envelope("v1", "Service", &with_status),
        json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}}),
    ));
    f
}

pub fn endpoints() -> Fixture {
    let mut target = pod_ref();
    if let Some(t) = target.as_mut() {
        t.field_path = None;
        t.uid = None;
        t.api_version = None;
    }
    let msg = core::Endpoints {
        metadata: meta("pb-svc", Some(NS)),
        subsets: vec![core::EndpointSubset {
            addresses: vec![core::EndpointAddress {
                ip: s("10.88.0.5"),
                node_name: s("pb-node"),
                target_ref: target,
                ..Default::default()
            }],
            not_ready_addresses: vec![],
            ports: vec![core::EndpointPort {
                name: s("http"),
                port: Some(8080),
                protocol: s("TCP"),
                app_protocol: None,
            }],
        }],
    };
    fixture(
        "endpoints",
        true,
        "pb-svc",
        "v1",
        "Endpoints",
        &msg,
        json!({"metadata": meta_json("pb-svc", Some(NS)),
            "subsets": [{"addresses": [{"ip": "10.88.0.5", "nodeName": "pb-node",
                    "targetRef": {"kind": "Pod", "namespace": "pb-test", "name": "pb-pod"}}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]}),
    )
}

pub fn service_account() -> Fixture {
    let msg = core::ServiceAccount {
        metadata: meta("pb-sa", Some(NS)),
        secrets: vec![core::ObjectReference {
            name: s("pb-secret"),
            ..Default::default()
        }],
        image_pull_secrets: vec![core::LocalObjectReference { name: s("pb-pull") }],
        automount_service_account_token: Some(false),
    };
    fixture(
        "serviceaccounts",
        true,
        "pb-sa",
        "v1",
        "ServiceAccount",
        &msg,
        json!({"metadata": meta_json("pb-sa", Some(NS)), "secrets": [{"name": "pb-secret"}],
            "imagePullSecrets": [{"name": "pb-pull"}], "automountServiceAccountToken": false}),
    )
}

/// The kubelet's node lease: renewTime a MicroTime, leaseTransitions a pointer to 0.
pub fn lease() -> Fixture {
    let mut metadata = meta("pb-node", Some(NS));
    if let Some(m) = metadata.as_mut() {
        m.owner_references = vec![meta::OwnerReference {
            api_version: s("v1"),
            kind: s("Node"),
            name: s("pb-node"),
            uid: s("0b6f2e1c-1111-4222-8333-444455556666"),
            controller: None,
            block_owner_deletion: None,
        }];
    }
    let msg = coordination::Lease {
        metadata,
        spec: Some(coordination::LeaseSpec {
            holder_identity: s("pb-node"),
            lease_duration_seconds: Some(40),
            renew_time: micro(3),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    };
    let mut m = meta_json("pb-node", Some(NS));
    m["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Node", "name": "pb-node",
        "uid": "0b6f2e1c-1111-4222-8333-444455556666"}]);
    fixture(
        "leases",
        true,
        "pb-node",
        "coordination.k8s.io/v1",
        "Lease",
        &msg,
        json!({"metadata": m, "spec": {"holderIdentity": "pb-node", "leaseDurationSeconds": 40,
            "renewTime": "2023-11-14T22:13:23.123456Z", "leaseTransitions": 0}}),
    )
}

pub fn csinode() -> Fixture {
    let msg = storage::CSINode {
        metadata: meta("pb-node", None),
        spec: Some(storage::CSINodeSpec {
            drivers: vec![storage::CSINodeDriver {
                name: s("csi.example.com"),
                node_id: s("pb-node"),
                topology_keys: strings(&["topology.example.com/zone"]),
                allocatable: Some(storage::VolumeNodeResources { count: Some(10) }),
            }],
        }),
    };
    fixture(
        "csinodes",
        false,
        "pb-node",
        "storage.k8s.io/v1",
        "CSINode",
        &msg,
        json!({"metadata": meta_json("pb-node", None), "spec": {"drivers": [{"name": "csi.example.com",
            "nodeID": "pb-node", "topologyKeys": ["topology.example.com/zone"], "allocatable": {"count": 10}}]}}),
    )
}

pub fn csidriver() -> Fixture {
    let msg = storage::CSIDriver {
        metadata: meta("csi.example.com", None),
        spec: Some(storage::CSIDriverSpec {
            attach_required: Some(true),
            pod_info_on_mount: Some(false),
            volume_lifecycle_modes: strings(&["Persistent", "Ephemeral"]),
            fs_group_policy: s("ReadWriteOnceWithFSType"),
            ..Default::default()
        }),
    };
    fixture(
        "csidrivers",
        false,
        "csi.example.com",
        "storage.k8s.io/v1",
        "CSIDriver",
        &msg,
        json!({"metadata": meta_json("csi.example.com", None), "spec": {"attachRequired": true,
            "podInfoOnMount": false, "volumeLifecycleModes": ["Persistent", "Ephemeral"],
            "fsGroupPolicy": "ReadWriteOnceWithFSType"}}),
    )
}

pub fn runtimeclass() -> Fixture {
    let msg = nodev1::RuntimeClass {
        metadata: meta("pb-runc", None),
        handler: s("runc"),
        overhead: Some(nodev1::Overhead {
            pod_fixed: quantities(&[("cpu", "100m"), ("memory", "32Mi")]),
        }),
        scheduling: Some(nodev1::Scheduling {
            node_selector: map(&[("runtime", "runc")]),
            tolerations: vec![core::Toleration {
                key: s("runtime"),
                operator: s("Equal"),
                value: s("runc"),
                effect: s("NoSchedule"),
                toleration_seconds: None,
            }],
        }),
    };
    fixture(
        "runtimeclasses",
        false,
        "pb-runc",
        "node.k8s.io/v1",
        "RuntimeClass",
        &msg,
        json!({"metadata": meta_json("pb-runc", None), "handler": "runc",
            "overhead": {"podFixed": {"cpu": "100m", "memory": "32Mi"}},
            "scheduling": {"nodeSelector": {"runtime": "runc"},
                "tolerations": [{"key": "runtime", "operator": "Equal", "value": "runc", "effect": "NoSchedule"}]}}),
    )
}

/// DeleteOptions as `kubectl drain --grace-period=0` sends them, in protobuf.
pub fn delete_options(grace: i64, uid: Option<&str>) -> Vec<u8> {
    let msg = meta::DeleteOptions {
        grace_period_seconds: Some(grace),
        preconditions: uid.map(|u| meta::Preconditions {
            uid: s(u),
            resource_version: None,
        }),
        propagation_policy: s("Background"),
        ..Default::default()
    };
    envelope("v1", "DeleteOptions", &msg)
}
