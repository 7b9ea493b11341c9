//! The Node and its Lease: registration, the status heartbeat, lease renewal.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::api::{Api, message};
use crate::{Break, Cli};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";

pub struct NodeAgent {
    api: Api,
    name: String,
    not_ready: bool,
    runtime_version: String,
    /// Shared with the pod sync, which needs it for mirror pods' ownerReferences.
    uid: Arc<Mutex<String>>,
    lease: Option<Value>,
    /// When the conditions last changed: never, once registered.
    since: String,
    ready_logged: bool,
    last_error: Option<String>,
}

impl NodeAgent {
    pub fn new(api: Api, cli: &Cli, runtime_version: String) -> Self {
        Self {
            api,
            name: cli.node_name.clone(),
            not_ready: cli.breaks.contains(&Break::Ready),
            runtime_version,
            uid: Arc::default(),
            lease: None,
            since: crate::now(),
            ready_logged: false,
            last_error: None,
        }
    }

    pub fn uid_handle(&self) -> Arc<Mutex<String>> {
        Arc::clone(&self.uid)
    }

    fn set_uid(&self, node: &Value) {
        let uid = node.pointer("/metadata/uid").and_then(Value::as_str);
        if let (Some(uid), Ok(mut mine)) = (uid, self.uid.lock()) {
            *mine = uid.to_string();
        }
    }

    /// Creates the Node, or adopts the one already there.
    pub fn register(&mut self) -> Result<(), String> {
        let arch = node_conformance::runtime::image::oci_arch();
        let node = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.name, "labels": {
                "kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch}},
            "spec": {}});
        let (code, body) = self.api.post("/api/v1/nodes", &node)?;
        let node = match code {
            201 | 200 => {
                log!("registered node {}", self.name);
                body
            }
            409 => {
                let (code, body) = self.api.get(&format!("/api/v1/nodes/{}", self.name))?;
                if code != 200 {
                    return Err(format!("GET node: {code} {}", message(&body)));
                }
                log!("node {} already registered: using it", self.name);
                body
            }
            _ => return Err(format!("POST node: {code} {}", message(&body))),
        };
        self.set_uid(&node);
        Ok(())
    }

    /// The status patch and the lease renewal. A failure is logged once until it changes or
    /// the next success, and tried again next beat.
    pub fn heartbeat(&mut self) {
        match self.patch_status().and_then(|()| self.renew_lease()) {
            Ok(()) => self.last_error = None,
            Err(e) => {
                if self.last_error.as_ref() != Some(&e) {
                    log!("heartbeat: {e}");
                }
                self.last_error = Some(e);
            }
        }
    }

    fn patch_status(&mut self) -> Result<(), String> {
        let now = crate::now();
        let (ready, reason, msg) = if self.not_ready {
            (
                "False",
                "KubeletNotReady",
                "kubelet-double --break ready: never Ready",
            )
        } else {
            (
                "True",
                "KubeletReady",
                "kubelet-double is posting ready status",
            )
        };
        let mut conditions = vec![
            json!({"type": "Ready", "status": ready, "reason": reason, "message": msg,
            "lastHeartbeatTime": now, "lastTransitionTime": self.since}),
        ];
        for (kind, reason) in [
            ("MemoryPressure", "KubeletHasSufficientMemory"),
            ("DiskPressure", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "KubeletHasSufficientPID"),
        ] {
            conditions.push(json!({"type": kind, "status": "False", "reason": reason,
                "message": format!("kubelet-double: no {kind}"), "lastHeartbeatTime": now, "lastTransitionTime": self.since}));
        }
        let order: Vec<Value> = conditions
            .iter()
            .map(|c| json!({"type": c["type"]}))
            .collect();
        let patch = json!({"status": {
            "$setElementOrder/conditions": order,
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": self.name}],
            "nodeInfo": {"kubeletVersion": "v1.31.0-double", "operatingSystem": "linux",
                "architecture": node_conformance::runtime::image::oci_arch(),
                "containerRuntimeVersion": self.runtime_version}}});
        let (code, body) = self
            .api
            .patch(&format!("/api/v1/nodes/{}/status", self.name), &patch)?;
        match code {
            200 => {
                if !self.ready_logged {
                    log!("node {} status posted: Ready={ready}", self.name);
                    self.ready_logged = true;
                }
                Ok(())
            }
            // Deleted, or a new control plane: the kubelet registers again.
            404 => {
                log!("node {} is gone: registering again", self.name);
                self.register()
            }
            _ => Err(format!("PATCH node status: {code} {}", message(&body))),
        }
    }

    /// PUT of the lease kept from the last renewal; a conflict or a missing lease reads it
    /// again, as the kubelet does.
    fn renew_lease(&mut self) -> Result<(), String> {
        let path = format!("{LEASES}/{}", self.name);
        for _ in 0..3 {
            let mut lease = match self.lease.take() {
                Some(l) => l,
                None => match self.api.get(&path)? {
                    (200, l) => l,
                    (404, _) => return self.create_lease(),
                    (code, body) => return Err(format!("GET lease: {code} {}", message(&body))),
                },
            };
            lease["spec"]["holderIdentity"] = json!(self.name);
            lease["spec"]["leaseDurationSeconds"] = json!(40);
            lease["spec"]["renewTime"] = json!(micro_now());
            match self.api.put(&path, &lease)? {
                (200, l) => {
                    self.lease = Some(l);
                    return Ok(());
                }
                (409 | 404, _) => continue,
                (code, body) => return Err(format!("PUT lease: {code} {}", message(&body))),
            }
        }
        Err("the lease kept changing under us; trying again next beat".into())
    }

    fn create_lease(&mut self) -> Result<(), String> {
        let uid = self.uid.lock().map(|u| u.clone()).unwrap_or_default();
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.name, "namespace": "kube-node-lease",
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": uid}]},
            "spec": {"holderIdentity": self.name, "leaseDurationSeconds": 40, "renewTime": micro_now()}});
        match self.api.post(LEASES, &lease)? {
            (201 | 200, l) => {
                log!("created lease kube-node-lease/{}", self.name);
                self.lease = Some(l);
                Ok(())
            }
            (code, body) => Err(format!("POST lease: {code} {}", message(&body))),
        }
    }
}

/// A metav1.MicroTime, as a Lease's renewTime is.
fn micro_now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}
