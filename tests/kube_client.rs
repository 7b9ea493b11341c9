//! The kube crate's client, a Rust client nobody here wrote, against
//! `node-conformance control-plane`: list, watch, create, and patch of the status subresource.

mod common;

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "kube-client"}},
        "spec": {"nodeName": "node1", "containers": [{"name": "c", "image": "registry.example/c:1"}]}
    }))
    .unwrap()
}

#[test]
fn the_kube_client_lists_watches_creates_and_patches_status() {
    // As a user starts it: over TLS, and the client configured from the admin kubeconfig it
    // wrote, as kubectl would be.
    let server = common::ControlPlane::start_secure();
    let kubeconfig = server.secure.clone().expect("TLS").kubeconfig;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();

        let namespaces: Api<Namespace> = Api::all(client.clone());
        let names: Vec<String> = namespaces
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            assert!(names.iter().any(|x| x == n), "{names:?}");
        }

        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let list = pods.list(&ListParams::default()).await.unwrap();
        let rv = list.metadata.resource_version.clone().unwrap();
        let mut events = pods
            .watch(&WatchParams::default().labels("app=kube-client"), &rv)
            .await
            .unwrap()
            .boxed();

        let created = pods.create(&PostParams::default(), &pod("p1")).await.unwrap();
        assert!(created.metadata.uid.is_some());
        // The server fills in the defaults a kubelet relies on.
        let spec = created.spec.clone().unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));

        let status = serde_json::json!({"status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]}});
        let patched = pods
            .patch_status("p1", &PatchParams::default(), &Patch::Strategic(&status))
            .await
            .unwrap();
        assert_eq!(patched.status.unwrap().phase.as_deref(), Some("Running"));
        // A status patch leaves the spec alone.
        let spec_change = serde_json::json!({"spec": {"nodeName": "elsewhere"}, "status": {"phase": "Succeeded"}});
        let patched = pods
            .patch_status("p1", &PatchParams::default(), &Patch::Merge(&spec_change))
            .await
            .unwrap();
        assert_eq!(patched.spec.unwrap().node_name.as_deref(), Some("node1"));
        assert_eq!(patched.status.unwrap().phase.as_deref(), Some("Succeeded"));

        let mut seen = Vec::new();
        while seen.len() < 3 {
            let next = tokio::time::timeout(Duration::from_secs(10), events.try_next())
                .await
                .expect("watch events arrive")
                .unwrap()
                .expect("the watch stays open");
            match next {
                WatchEvent::Added(p) => seen.push(format!("ADDED {}", p.metadata.name.unwrap())),
                WatchEvent::Modified(p) => seen.push(format!(
                    "MODIFIED {}",
                    p.status.and_then(|s| s.phase).unwrap_or_default()
                )),
                WatchEvent::Bookmark(_) => {}
                other => panic!("unexpected watch event {other:?}"),
            }
        }
        assert_eq!(seen, ["ADDED p1", "MODIFIED Running", "MODIFIED Succeeded"]);
    });
}
