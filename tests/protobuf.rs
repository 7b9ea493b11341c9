//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), as a kubelet with its
//! default content type and kubectl send them: decoded to the JSON kube-apiserver stores,
//! accepted by the local control plane on create, update, status update and delete, and,
//! when NODE_CONFORMANCE_APISERVER="URL TOKEN" names a real kube-apiserver, stored by both
//! alike.

mod common;

use common::protobuf::{self as pb, Fixture, NS, PROTOBUF};
use node_conformance::controlplane::protobuf::decode;
use prost::Message;
use serde_json::{Value, json};

#[test]
fn every_served_kind_decodes_to_the_json_kube_apiserver_stores() {
    let fixtures = pb::fixtures();
    let mut kinds: Vec<&str> = fixtures.iter().map(|f| f.kind).collect();
    kinds.sort();
    kinds.dedup();
    let mut served: Vec<&str> = node_conformance::controlplane::resources::RESOURCES
        .iter()
        .map(|r| r.kind)
        .collect();
    served.sort();
    assert_eq!(kinds, served, "a fixture for every served kind");
    for f in &fixtures {
        let got =
            decode(&f.body, f.api_version, f.kind).unwrap_or_else(|e| panic!("{}: {e}", f.kind));
        assert_eq!(got, f.json, "{} {}", f.kind, f.name);
        if let Some((body, status)) = &f.status {
            let got = decode(body, f.api_version, f.kind).unwrap();
            assert_eq!(&got["status"], status, "{} status", f.kind);
        }
    }
}

#[test]
fn delete_options_decode_with_their_preconditions() {
    let got = decode(&pb::delete_options(0, Some("u-1")), "v1", "DeleteOptions").unwrap();
    assert_eq!(
        got,
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
            "preconditions": {"uid": "u-1"}, "propagationPolicy": "Background"})
    );
    // Old clients send DeleteOptions in their own group.
    let msg = k8s_pb::apimachinery::pkg::apis::meta::v1::DeleteOptions {
        dry_run: vec!["All".into()],
        ..Default::default()
    };
    let body = pb::envelope("policy/v1", "DeleteOptions", &msg);
    assert_eq!(
        decode(&body, "v1", "DeleteOptions").unwrap(),
        json!({"apiVersion": "policy/v1", "kind": "DeleteOptions", "dryRun": ["All"]})
    );
}

/// The raw object message of a fixture, to build bodies by hand.
fn raw(f: &Fixture) -> Vec<u8> {
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(&f.body[4..]).unwrap();
    unknown.raw.unwrap()
}

/// A fixture's body with metadata.resourceVersion set: a second metadata field, which
/// protobuf merges into the first.
fn with_resource_version(f: &Fixture, rv: &str) -> Vec<u8> {
    let mut bytes = raw(f);
    let version = [&[0x32, rv.len() as u8][..], rv.as_bytes()].concat();
    bytes.extend([0x0a, version.len() as u8]);
    bytes.extend(version);
    wrap(f.api_version, f.kind, bytes)
}

fn wrap(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        ..Default::default()
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

#[test]
fn the_wire_rules_are_those_of_the_generated_go_code() {
    let cm = pb::configmap();
    // Unknown fields are skipped; a later scalar wins; a later message merges into the first.
    let mut bytes = raw(&cm);
    bytes.extend([0xfa, 0x06, 0x02, b'h', b'i']); // field 111, length-delimited: unknown
    let later = k8s_pb::api::core::v1::ConfigMap {
        metadata: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            labels: [("more".to_string(), "x".to_string())]
                .into_iter()
                .collect(),
            ..Default::default()
        }),
        immutable: Some(true),
        ..Default::default()
    };
    bytes.extend(later.encode_to_vec());
    let got = decode(&wrap("v1", "ConfigMap", bytes), "v1", "ConfigMap").unwrap();
    assert_eq!(got["immutable"], true);
    assert_eq!(got["metadata"]["name"], "pb-cm");
    assert_eq!(got["metadata"]["labels"], json!({"app": "pb", "more": "x"}));

    // Repeated numbers, packed (as prost writes them) or one by one (as gogo does).
    let ctx = k8s_pb::api::core::v1::PodSecurityContext {
        supplemental_groups: vec![1, 2],
        ..Default::default()
    };
    let spec = k8s_pb::api::core::v1::PodSpec {
        security_context: Some(ctx),
        ..Default::default()
    };
    let packed = k8s_pb::api::core::v1::Pod {
        spec: Some(spec),
        ..Default::default()
    }
    .encode_to_vec();
    // spec (2) { securityContext (14) { supplementalGroups (4) 1, 4 3 } }
    let mut unpacked = packed.clone();
    unpacked.extend([0x12, 0x06, 0x72, 0x04, 0x20, 0x03, 0x20, 0x04]);
    let got = decode(&wrap("v1", "Pod", unpacked), "v1", "Pod").unwrap();
    assert_eq!(
        got["spec"]["securityContext"]["supplementalGroups"],
        json!([1, 2, 3, 4])
    );
    // A pod without a spec still has one, with its non-omitempty fields.
    let got = decode(&wrap("v1", "Pod", vec![]), "v1", "Pod").unwrap();
    assert_eq!(
        got,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {"containers": null}, "status": {}})
    );
}

#[test]
fn times_print_as_upstream_prints_them() {
    use k8s_pb::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
    let event = |first: Option<Time>, at: Option<MicroTime>| {
        let msg = k8s_pb::api::core::v1::Event {
            first_timestamp: first,
            event_time: at,
            ..Default::default()
        };
        let got = decode(&pb::envelope("v1", "Event", &msg), "v1", "Event").unwrap();
        (got["firstTimestamp"].clone(), got["eventTime"].clone())
    };
    // The zero time, as Go's encoder writes it, and an empty message are null.
    let zero = Time {
        seconds: Some(-62_135_596_800),
        nanos: None,
    };
    assert_eq!(
        event(Some(zero), Some(MicroTime::default())),
        (Value::Null, Value::Null)
    );
    // The epoch is a time like any other.
    let epoch = Time {
        seconds: Some(0),
        nanos: None,
    };
    let micro = MicroTime {
        seconds: Some(0),
        nanos: Some(1_999),
    };
    assert_eq!(
        event(Some(epoch), Some(micro)),
        (
            json!("1970-01-01T00:00:00Z"),
            json!("1970-01-01T00:00:00.000001Z")
        )
    );
}

#[test]
fn bad_bodies_are_refused_with_upstreams_words() {
    let err = |body: &[u8]| decode(body, "v1", "ConfigMap").unwrap_err();
    assert_eq!(
        err(b""),
        "the object provided is unrecognized (must be of type ConfigMap): empty data (<empty>)"
    );
    assert_eq!(
        err(b"k8s\0"),
        "the object provided is unrecognized (must be of type ConfigMap): empty body (6b387300)"
    );
    assert_eq!(
        err(b"{\"kind\": \"ConfigMap\"}"),
        "the object provided is unrecognized (must be of type ConfigMap): provided data does not appear to be a protobuf message, expected prefix [107 56 115 0] ({\"kind\": \"ConfigMap\"})"
    );
    assert_eq!(
        decode(b"k8s", "v1", "DeleteOptions").unwrap_err(),
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    );
    // Truncated, and a string field sent as a number.
    let cm = pb::configmap();
    assert!(
        err(&cm.body[..cm.body.len() - 3]).contains("unexpected EOF"),
        "{}",
        err(&cm.body[..cm.body.len() - 3])
    );
    let e = decode(
        &wrap("v1", "ConfigMap", vec![0x0a, 0x02, 0x08, 0x01]),
        "v1",
        "ConfigMap",
    )
    .unwrap_err();
    assert_eq!(
        e,
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: proto: wrong wireType = 0 for field Name"
    );
    // Another API version than the endpoint's, and a kind nobody serves.
    let lease = pb::lease();
    let e = decode(&lease.body, "v1", "ConfigMap").unwrap_err();
    assert_eq!(
        e,
        "Lease in version \"v1\" cannot be handled as a ConfigMap: converting (v1.Lease) to (core.ConfigMap): unknown conversion"
    );
    let e = decode(&pb::secret().body, "v1", "ConfigMap").unwrap_err();
    assert_eq!(
        e,
        "Secret in version \"v1\" cannot be handled as a ConfigMap: converting (v1.Secret) to (core.ConfigMap): unknown conversion"
    );
    let e = decode(&lease.body, "coordination.k8s.io/v2", "Lease").unwrap_err();
    assert_eq!(
        e,
        "the API version in the data (coordination.k8s.io/v1) does not match the expected API version (coordination.k8s.io/v2)"
    );
    let e = decode(&wrap("v1", "Widget", vec![]), "v1", "ConfigMap").unwrap_err();
    assert!(
        e.starts_with(
            "Widget in version \"v1\" cannot be handled as a ConfigMap: no kind \"Widget\""
        ),
        "{e}"
    );
    // A quantity that does not parse, an IntOrString of no known type.
    let node = k8s_pb::api::core::v1::Node {
        status: Some(k8s_pb::api::core::v1::NodeStatus {
            capacity: [(
                "cpu".to_string(),
                k8s_pb::apimachinery::pkg::api::resource::Quantity {
                    string: Some("2 cores".into()),
                },
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = decode(&pb::envelope("v1", "Node", &node), "v1", "Node").unwrap_err();
    assert!(
        e.contains("quantities must match the regular expression"),
        "{e}"
    );
    let svc = k8s_pb::api::core::v1::Service {
        spec: Some(k8s_pb::api::core::v1::ServiceSpec {
            ports: vec![k8s_pb::api::core::v1::ServicePort {
                target_port: Some(k8s_pb::apimachinery::pkg::util::intstr::IntOrString {
                    r#type: Some(7),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = decode(&pb::envelope("v1", "Service", &svc), "v1", "Service").unwrap_err();
    assert!(e.contains("impossible IntOrString.Type"), "{e}");
    // An envelope without a kind takes the endpoint's, as upstream defaults it.
    let mut unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(&cm.body[4..]).unwrap();
    unknown.type_meta = None;
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    assert_eq!(decode(&body, "v1", "ConfigMap").unwrap(), cm.json);
}

// ---------------------------------------------------------------------------------------
// Over HTTP.

/// An API server to send bodies to: ours, or a real one with a bearer token.
struct Api {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Api {
    fn ours(port: u16) -> Api {
        Api {
            base: format!("http://127.0.0.1:{port}"),
            token: None,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into(),
        }
    }

    fn real(spec: &str) -> Api {
        let mut parts = spec.split_whitespace();
        let (base, token) = (parts.next().unwrap(), parts.next().unwrap());
        let tls = ureq::tls::TlsConfig::builder()
            .disable_verification(true)
            .build();
        Api {
            base: base.trim_end_matches('/').to_string(),
            token: Some(token.to_string()),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .tls_config(tls)
                .build()
                .into(),
        }
    }

    fn send(&self, method: &str, path: &str, ctype: &str, body: &[u8]) -> (u16, Value) {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Accept", "application/json");
        if !ctype.is_empty() {
            req = req.header("Content-Type", ctype);
        }
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = self.agent.run(req.body(body.to_vec()).unwrap()).unwrap();
        let code = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, "", b"")
    }

    /// Deletes what an earlier run left, and waits until it is gone.
    fn remove(&self, path: &str) {
        self.send("DELETE", &format!("{path}?gracePeriodSeconds=0"), "", b"");
        // Without a namespace controller a namespace stays Terminating until its finalizers
        // are cleared by hand.
        if let Some(name) = path
            .strip_prefix("/api/v1/namespaces/")
            .filter(|n| !n.contains('/'))
        {
            let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "spec": {"finalizers": []}});
            self.send(
                "PUT",
                &format!("{path}/finalize"),
                "application/json",
                ns.to_string().as_bytes(),
            );
        }
        for _ in 0..100 {
            if self.get(path).0 == 404 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("{path} is still there");
    }

    fn namespace(&self) {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}});
        let (code, body) = self.send(
            "POST",
            "/api/v1/namespaces",
            "application/json",
            ns.to_string().as_bytes(),
        );
        assert!(code == 201 || code == 409, "{code} {body}");
    }
}

/// A stored object without what the server assigns: identity, versions, times of creation
/// and the field manager's records.
fn comparable(mut v: Value) -> Value {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "generation",
        ] {
            m.remove(k);
        }
    }
    v
}

#[test]
fn the_control_plane_accepts_protobuf_on_create_update_status_and_delete() {
    let server = common::ControlPlane::start();
    let api = Api::ours(server.port);
    api.namespace();
    for f in pb::fixtures() {
        let (code, created) = api.send("POST", &f.collection, PROTOBUF, &f.body);
        assert_eq!(code, 201, "{} {}: {created}", f.kind, f.name);
        let (code, stored) = api.get(&f.path());
        assert_eq!(code, 200);
        let mut want = f.json.clone();
        if f.kind == "Pod" {
            // A new pod's status is the server's: Pending, with the QoS class of its resources.
            want["status"] = json!({"phase": "Pending", "qosClass": "Burstable"});
        }
        assert_eq!(comparable(stored.clone()), want, "{} {}", f.kind, f.name);
        if let Some((body, status)) = &f.status {
            let (code, body) = api.send("PUT", &format!("{}/status", f.path()), PROTOBUF, body);
            assert_eq!(code, 200, "{} status: {body}", f.kind);
            assert_eq!(&api.get(&f.path()).1["status"], status, "{} status", f.kind);
        }
        // An update in protobuf: the same object with one more label.
        let mut changed = f.json.clone();
        changed["metadata"]["labels"]["updated"] = json!("yes");
        let (code, body) = api.send(
            "PUT",
            &f.path(),
            "application/json",
            changed.to_string().as_bytes(),
        );
        assert_eq!(code, 200, "{} update: {body}", f.kind);
        let (code, body) = api.send("PUT", &f.path(), PROTOBUF, &f.body);
        assert_eq!(code, 200, "{} protobuf update: {body}", f.kind);
        assert_eq!(
            api.get(&f.path()).1["metadata"]["labels"],
            json!({"app": "pb"}),
            "{}",
            f.kind
        );
    }

    let pod = pb::pod();
    // DeleteOptions in protobuf: a precondition that does not hold, then kubectl drain's.
    let (code, body) = api.send(
        "DELETE",
        &pod.path(),
        PROTOBUF,
        &pb::delete_options(0, Some("not-the-uid")),
    );
    assert_eq!(code, 409, "{body}");
    let (code, body) = api.send(
        "DELETE",
        &pod.path(),
        PROTOBUF,
        &pb::delete_options(0, None),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(api.get(&pod.path()).0, 404);
    // In YAML and JSON too.
    let cm = pb::configmap();
    let yaml = "apiVersion: v1\nkind: DeleteOptions\ngracePeriodSeconds: 0\n";
    assert_eq!(
        api.send("DELETE", &cm.path(), "application/yaml", yaml.as_bytes())
            .0,
        200
    );
    let secret = pb::secret();
    let json_opts =
        json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"});
    assert_eq!(
        api.send(
            "DELETE",
            &secret.path(),
            "application/json",
            json_opts.to_string().as_bytes()
        )
        .0,
        200
    );

    // A body that cannot be read is kube-apiserver's reason-less 500 (its delete handler passes
    // the decoder's error on as it is), whatever its type; an unknown type a 415.
    let svc = pb::service();
    for (ctype, body) in [
        ("application/json", b"{\"gracePeriodSeconds\": " as &[u8]),
        ("application/json", b"{\"gracePeriodSeconds\": \"soon\"}"),
        (
            "application/json",
            b"{\"kind\": \"Pod\", \"apiVersion\": \"v1\"}",
        ),
        ("application/yaml", b"gracePeriodSeconds: [1"),
        (PROTOBUF, b"k8s\0\x0a\xff"),
        (PROTOBUF, b"not protobuf"),
    ] {
        let (code, status) = api.send("DELETE", &svc.path(), ctype, body);
        assert_eq!(
            (code, status["reason"].as_str(), status["kind"].as_str()),
            (500, None, Some("Status")),
            "{ctype} {body:?}: {status}"
        );
    }
    assert_eq!(api.send("DELETE", &svc.path(), "text/plain", b"x").0, 415);
    assert_eq!(api.get(&svc.path()).0, 200);
    // Creates with bad protobuf are 400 too.
    let (code, status) = api.send("POST", &svc.collection, PROTOBUF, b"k8s\0\x12\x05abc");
    assert_eq!(
        (code, status["reason"].as_str()),
        (400, Some("BadRequest")),
        "{status}"
    );
    let (code, status) = api.send("POST", &svc.collection, PROTOBUF, &pb::lease().body);
    assert_eq!(code, 400, "{status}");
}

/// The same protobuf bodies to a real kube-apiserver and to ours: what each stores must be
/// the same, apart from what the server assigns.
#[test]
fn a_real_kube_apiserver_stores_the_same() {
    let Ok(spec) = std::env::var("NODE_CONFORMANCE_APISERVER") else {
        eprintln!("NODE_CONFORMANCE_APISERVER is not set: not compared with a real kube-apiserver");
        return;
    };
    let real = Api::real(&spec);
    let server = common::ControlPlane::start();
    let ours = Api::ours(server.port);
    let mut differences = Vec::new();
    let mut compare = |what: &str, a: (u16, Value), b: (u16, Value)| {
        let (a, b) = ((a.0, comparable(a.1)), (b.0, comparable(b.1)));
        if a != b {
            differences.push(format!(
                "{what}:\n  real: {} {}\n  ours: {} {}",
                a.0, a.1, b.0, b.1
            ));
        }
    };
    for api in [&real, &ours] {
        api.namespace();
    }
    let fixtures = pb::fixtures();
    for f in fixtures.iter().rev() {
        real.remove(&f.path());
    }
    for f in &fixtures {
        let mut created = Vec::new();
        for api in [&real, &ours] {
            let (code, body) = api.send("POST", &f.collection, PROTOBUF, &f.body);
            created.push((
                code,
                if code == 201 {
                    api.get(&f.path()).1
                } else {
                    body
                },
            ));
        }
        let ours_created = created.pop().unwrap();
        let real_created = created.pop().unwrap();
        compare(
            &format!("create {} {}", f.kind, f.name),
            real_created,
            ours_created,
        );
        if let Some((body, _)) = &f.status {
            let put = |api: &Api| {
                let (code, b) = api.send("PUT", &format!("{}/status", f.path()), PROTOBUF, body);
                (code, if code == 200 { api.get(&f.path()).1 } else { b })
            };
            compare(
                &format!("status {} {}", f.kind, f.name),
                put(&real),
                put(&ours),
            );
        }
        // kube-apiserver wants the version updated for most kinds: the body names it.
        let update = |api: &Api| {
            let rv = api.get(&f.path()).1["metadata"]["resourceVersion"].clone();
            let body = with_resource_version(f, rv.as_str().unwrap_or(""));
            let (code, b) = api.send("PUT", &f.path(), PROTOBUF, &body);
            (code, if code == 200 { api.get(&f.path()).1 } else { b })
        };
        compare(
            &format!("update {} {}", f.kind, f.name),
            update(&real),
            update(&ours),
        );
    }
    // Deletes with protobuf DeleteOptions: a failed precondition, then with grace 0.
    let pod = pb::pod();
    let del = |api: &Api, uid: Option<&str>| {
        let (code, b) = api.send("DELETE", &pod.path(), PROTOBUF, &pb::delete_options(0, uid));
        (code, json!({"reason": b["reason"], "kind": b["kind"]}))
    };
    compare(
        "delete with a wrong uid",
        del(&real, Some("x")),
        del(&ours, Some("x")),
    );
    compare("delete", del(&real, None), del(&ours, None));
    compare(
        "gone",
        (real.get(&pod.path()).0, Value::Null),
        (ours.get(&pod.path()).0, Value::Null),
    );
    // Bodies either refuses: the answer's code and reason must agree.
    let cm = pb::configmap();
    let answer = |api: &Api, method: &str, path: &str, ctype: &str, body: &[u8]| {
        let (code, b) = api.send(method, path, ctype, body);
        eprintln!("{method} {path} {ctype}: {code} {}", b["message"]);
        (code, json!({"reason": b["reason"]}))
    };
    let cases: Vec<(&str, String, &str, Vec<u8>)> = vec![
        ("POST", cm.collection.clone(), PROTOBUF, pb::secret().body),
        ("POST", cm.collection.clone(), PROTOBUF, pb::lease().body),
        (
            "POST",
            cm.collection.clone(),
            PROTOBUF,
            b"k8s\0\x12\x05abc".to_vec(),
        ),
        ("POST", cm.collection.clone(), PROTOBUF, b"{}".to_vec()),
        (
            "POST",
            cm.collection.clone(),
            PROTOBUF,
            wrap("v1", "ConfigMap", vec![0x0a, 0x02, 0x08, 0x01]),
        ),
        (
            "POST",
            cm.collection.clone(),
            PROTOBUF,
            wrap("v1", "Widget", vec![]),
        ),
        ("POST", cm.collection.clone(), "text/plain", b"x".to_vec()),
        ("DELETE", cm.path(), "text/plain", b"x".to_vec()),
        ("DELETE", cm.path(), "application/json", b"null".to_vec()),
    ];
    for api in [&real, &ours] {
        api.send("POST", &cm.collection, PROTOBUF, &cm.body);
    }
    for (method, path, ctype, body) in &cases {
        compare(
            &format!("{method} {path} {ctype} {}", String::from_utf8_lossy(body)),
            answer(&real, method, path, ctype, body),
            answer(&ours, method, path, ctype, body),
        );
    }
    // Quantities as written and as upstream rewrites them, in a field no defaulting touches.
    let pod = pb::pod();
    for q in [
        "1",
        "01",
        "+1",
        "1.5",
        ".5",
        "1.",
        "1000m",
        "100m",
        "0.0000000001",
        "1.0000000001",
        "1e3",
        "1E3",
        "1e2",
        "1.5e3",
        "1000E",
        "1000",
        "1024",
        "1024Ki",
        "8Ki",
        "0.5Ki",
        "1.5Ki",
        "2.5Mi",
        "0.1Gi",
        "9223372036854775808",
        "99999999999999999999Ki",
        "8Ei",
        "1e100",
        "1e-10",
        "12345678901234567890m",
        "1000u",
        "1000n",
        "1e-4",
        "1.23e-5",
        "Gi",
        "e3",
        "1e+3",
        "5e00",
    ] {
        let mut msg = k8s_pb::api::core::v1::Pod::decode(raw(&pod).as_slice()).unwrap();
        if let Some(m) = msg.metadata.as_mut() {
            m.name = Some("pb-quantity".into());
            m.owner_references.clear();
        }
        let spec = msg.spec.as_mut().unwrap();
        spec.node_name = None;
        let empty_dir = spec.volumes[1]
            .volume_source
            .as_mut()
            .unwrap()
            .empty_dir
            .as_mut()
            .unwrap();
        empty_dir.size_limit = Some(k8s_pb::apimachinery::pkg::api::resource::Quantity {
            string: Some(q.into()),
        });
        let body = pb::envelope("v1", "Pod", &msg);
        let path = format!("{}/pb-quantity", pod.collection);
        let stored = |api: &Api| {
            api.remove(&path);
            let (code, b) = api.send("POST", &pod.collection, PROTOBUF, &body);
            let v = if code == 201 {
                api.get(&path).1["spec"]["volumes"][1]["emptyDir"]["sizeLimit"].clone()
            } else {
                b["reason"].clone()
            };
            (code, v)
        };
        compare(&format!("sizeLimit {q}"), stored(&real), stored(&ours));
        real.remove(&path);
    }
    for f in fixtures.iter().rev() {
        real.remove(&f.path());
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
