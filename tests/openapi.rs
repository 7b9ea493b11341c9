//! `/openapi/v2`, `/openapi/v3` and discovery of the local control plane; with
//! NODE_CONFORMANCE_APISERVER="URL TOKEN" (a real kube-apiserver 1.20.2, see
//! ../shared/peers/kubernetes/apiserver.sh) also that the committed OpenAPI data is what the
//! real server serves and that discovery matches it.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use node_conformance::controlplane::resources::RESOURCES;
use node_conformance::controlplane::schema;
use serde_json::{Value, json};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build(),
        )
        .build()
        .into()
}

/// GET with an Accept header: status, Content-Type and body.
fn get(url: &str, token: Option<&str>, accept: &str) -> (u16, String, Vec<u8>) {
    let mut req = agent().get(url).header("Accept", accept);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.call().unwrap();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let mut body = Vec::new();
    resp.body_mut()
        .with_config()
        .limit(64 << 20)
        .reader()
        .read_to_end(&mut body)
        .unwrap();
    (resp.status().as_u16(), ctype, body)
}

fn json_of(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap()
}

const PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

#[test]
fn openapi_v2_is_served_as_json_and_protobuf() {
    let cp = common::ControlPlane::start();
    let base = format!("http://127.0.0.1:{}", cp.port);
    let (code, _, body) = get(&format!("{base}/openapi/v2"), None, "application/json");
    assert_eq!(code, 200);
    let doc = json_of(&body);
    let pod_status = &doc["definitions"]["io.k8s.api.core.v1.PodStatus"]["properties"];
    assert_eq!(
        pod_status["conditions"]["x-kubernetes-patch-merge-key"],
        "type"
    );
    assert_eq!(
        pod_status["hostIPs"]["x-kubernetes-patch-merge-key"], "ip",
        "the overlay's fields are served"
    );
    assert!(pod_status["hostIPs"].get("since").is_none());
    assert!(doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/status"].is_object());
    assert!(
        doc["paths"]
            .get("/apis/apps/v1/namespaces/{namespace}/deployments")
            .is_none(),
        "only what is served"
    );

    let (code, ctype, pb) = get(&format!("{base}/openapi/v2"), None, PROTOBUF);
    assert_eq!((code, ctype.as_str()), (200, "application/octet-stream"));
    // gnostic's Document: field 1 is `swagger`.
    assert_eq!(&pb[..5], b"\x0a\x032.0");
    assert!(pb.windows(26).any(|w| w == b"io.k8s.api.core.v1.PodSpec"));

    let (code, _, _) = get(&format!("{base}/openapi/v2"), None, "text/html");
    assert_eq!(code, 406);
}

#[test]
fn openapi_v3_serves_each_group_version() {
    let cp = common::ControlPlane::start();
    let base = format!("http://127.0.0.1:{}", cp.port);
    let (code, _, body) = get(&format!("{base}/openapi/v3"), None, "application/json");
    assert_eq!(code, 200);
    let index = json_of(&body);
    for gv in [
        "api/v1",
        "apis/coordination.k8s.io/v1",
        "apis/storage.k8s.io/v1",
        "apis/node.k8s.io/v1",
    ] {
        let url = index["paths"][gv]["serverRelativeURL"]
            .as_str()
            .unwrap_or_else(|| panic!("{gv} in {index}"));
        assert!(url.starts_with(&format!("/openapi/v3/{gv}?hash=")), "{url}");
        let (code, _, body) = get(&format!("{base}{url}"), None, "application/json");
        assert_eq!(code, 200, "{gv}");
        let doc = json_of(&body);
        assert_eq!(doc["openapi"], "3.0.0");
        let paths = doc["paths"].as_object().unwrap();
        assert!(!paths.is_empty(), "{gv}");
        assert!(
            paths.keys().all(|p| p.starts_with(&format!("/{gv}/"))),
            "{gv}: {:?}",
            paths.keys()
        );
        if gv == "api/v1" {
            let pod = &doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
            assert_eq!(
                pod["properties"]["spec"]["allOf"][0]["$ref"],
                "#/components/schemas/io.k8s.api.core.v1.PodSpec"
            );
            let patch = &paths["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
            assert!(
                patch["requestBody"]["content"]["application/strategic-merge-patch+json"]
                    .is_object(),
                "{patch}"
            );
        }
    }
    let (code, _, _) = get(
        &format!("{base}/openapi/v3/apis/apps/v1"),
        None,
        "application/json",
    );
    assert_eq!(code, 404);
}

#[test]
fn discovery_puts_pods_and_services_in_all() {
    let cp = common::ControlPlane::start();
    let (_, _, body) = get(
        &format!("http://127.0.0.1:{}/api/v1", cp.port),
        None,
        "application/json",
    );
    let list = json_of(&body);
    let categories = |name: &str| {
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r.get("categories").cloned().unwrap_or(Value::Null))
            .unwrap()
    };
    assert_eq!(categories("pods"), json!(["all"]));
    assert_eq!(categories("services"), json!(["all"]));
    assert_eq!(categories("configmaps"), Value::Null);
    assert_eq!(categories("pods/status"), Value::Null);
}

fn peer() -> Option<(String, String)> {
    let v = std::env::var("NODE_CONFORMANCE_APISERVER").ok()?;
    let (url, token) = v.split_once(' ')?;
    Some((url.trim_end_matches('/').to_string(), token.to_string()))
}

/// The committed document is the real server's, cut as `schema::trim` cuts it. With
/// NODE_CONFORMANCE_WRITE_OPENAPI=1 it is written instead (scripts/openapi-from-peer.sh).
#[test]
fn committed_openapi_data_is_what_the_real_server_serves() {
    let Some((url, token)) = peer() else {
        eprintln!("NODE_CONFORMANCE_APISERVER is not set: skipped");
        return;
    };
    let (code, _, body) = get(
        &format!("{url}/openapi/v2"),
        Some(&token),
        "application/json",
    );
    assert_eq!(code, 200);
    let served = schema::trim(&json_of(&body));
    assert_eq!(
        served["info"]["version"], "v1.20.2",
        "the data file is named for kube-apiserver v1.20.2"
    );
    if std::env::var("NODE_CONFORMANCE_WRITE_OPENAPI").as_deref() == Ok("1") {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/controlplane/openapi/kube-apiserver-v1.20.2.json.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(served.to_string().as_bytes()).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = schema::upstream_v2().unwrap();
    assert!(
        committed == served,
        "src/controlplane/openapi/kube-apiserver-v1.20.2.json.gz differs from what the real server serves: run scripts/openapi-from-peer.sh"
    );
    // And every overlay entry adds what 1.20 lacks.
    let mut doc = committed;
    schema::apply_overlay(&mut doc, schema::OVERLAY).unwrap();
}

/// Discovery of the served resources matches the real server's: name, kind, namespaced and
/// categories of each resource and subresource (verbs, short names, singular names and storage
/// version hashes aside).
#[test]
fn discovery_matches_the_real_server() {
    let Some((url, token)) = peer() else {
        eprintln!("NODE_CONFORMANCE_APISERVER is not set: skipped");
        return;
    };
    let cp = common::ControlPlane::start();
    let ours = format!("http://127.0.0.1:{}", cp.port);
    let mut gvs: Vec<String> = RESOURCES
        .iter()
        .map(|r| {
            if r.group.is_empty() {
                "/api/v1".to_string()
            } else {
                format!("/apis/{}/{}", r.group, r.version)
            }
        })
        .collect();
    gvs.dedup();
    let served: Vec<&str> = RESOURCES.iter().map(|r| r.plural).collect();
    let pick = |body: &[u8]| -> Vec<Value> {
        let mut v: Vec<Value> = json_of(body)["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                let name = r["name"].as_str().unwrap();
                let (plural, sub) = name.split_once('/').unwrap_or((name, ""));
                served.contains(&plural) && (sub.is_empty() || sub == "status")
            })
            .map(|r| {
                json!({"name": r["name"], "kind": r["kind"], "namespaced": r["namespaced"],
                    "categories": r.get("categories").cloned().unwrap_or(Value::Null)})
            })
            .collect();
        v.sort_by_key(|r| r["name"].as_str().unwrap().to_string());
        v
    };
    for gv in gvs {
        let (_, _, real) = get(&format!("{url}{gv}"), Some(&token), "application/json");
        let (_, _, mine) = get(&format!("{ours}{gv}"), None, "application/json");
        assert_eq!(pick(&mine), pick(&real), "{gv}");
    }
}
