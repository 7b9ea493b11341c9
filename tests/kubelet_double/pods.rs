//! The pod sync, once per --sync-ms: static pods from the manifest directory with their mirror
//! pods, and the API pods bound to this node. Containers run in a worker per pod; the sync
//! reports the workers' status and carries out deletions.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use node_conformance::controlplane::patch;

use crate::api::{Api, message};
use crate::runtime::Runtime;
use crate::worker::{PodInfo, Worker};
use crate::{Break, Cli};

const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";
const CONFIG_HASH: &str = "kubernetes.io/config.hash";
/// The most a stopped container gets between SIGTERM and SIGKILL, whatever its pod asks: tests
/// should not wait out 30-second grace periods.
const MAX_GRACE_SECONDS: u64 = 2;

struct StaticPod {
    hash: String,
    pod: Value,
    namespace: String,
    mirror_name: String,
    seen: String,
    worker: Worker,
    /// The API UID of the mirror pod made for it, while that should exist.
    mirror_uid: Option<String>,
    /// A mirror pod of it was deleted through the API.
    mirror_deleted: bool,
    reported: Option<Value>,
}

struct ApiPod {
    namespace: String,
    name: String,
    worker: Worker,
    stopping: bool,
    reported: Option<Value>,
}

pub struct Kubelet {
    api: Api,
    node: String,
    dir: PathBuf,
    breaks: Vec<Break>,
    rt: Arc<Runtime>,
    node_uid: Arc<Mutex<String>>,
    tick: Duration,
    /// By static UID (the manifest hash).
    statics: HashMap<String, StaticPod>,
    /// Static pods whose manifest went away, until their containers have stopped.
    retiring: Vec<StaticPod>,
    /// The restart counts a static UID's containers had when its manifest went away: a
    /// manifest that comes back restarts them.
    restarts: HashMap<String, HashMap<String, u32>>,
    /// The file (device, inode) each static UID was last read from. A manifest removed and
    /// written again between two syncs is a new file with the same content: the kubelet sees
    /// the removal through inotify, as this double does, with a changed inode as the fallback.
    files: HashMap<String, (u64, u64)>,
    /// Removals and renames in the manifest directory; `None` where inotify is not available.
    removals: Option<inotify::Inotify>,
    /// By API UID.
    api_pods: HashMap<String, ApiPod>,
    /// Workers of pods that vanished from the API, until they have stopped.
    draining: Vec<Worker>,
    /// What was complained about already: each complaint is logged once.
    complained: HashSet<String>,
    api_down: bool,
}

/// The static UID: the manifest's bytes and the node name, hashed.
fn static_hash(bytes: &[u8], node: &str) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    h.update(node.as_bytes());
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_manifest(path: &Path, bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let pod: Value = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else {
        // Its first line: the rest draws the spot in the file, over several lines.
        serde_saphyr::from_str(text)
            .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string())?
    };
    if pod.get("kind").and_then(Value::as_str).unwrap_or("Pod") != "Pod" {
        return Err("not a Pod".into());
    }
    if pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_none()
    {
        return Err("the pod has no metadata.name".into());
    }
    Ok(pod)
}

/// Each container's restartCount in a pod status.
fn restart_counts(status: &Value) -> HashMap<String, u32> {
    let list = status.get("containerStatuses").and_then(Value::as_array);
    list.into_iter()
        .flatten()
        .filter_map(|c| {
            let count = u32::try_from(c.get("restartCount")?.as_u64()?).ok()?;
            Some((str_at(c, "/name")?.to_string(), count))
        })
        .collect()
}

fn annotation<'a>(pod: &'a Value, key: &str) -> Option<&'a str> {
    pod.pointer("/metadata/annotations")?.get(key)?.as_str()
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The final delete of a pod: grace 0, and only the pod with that UID. True when the pod is
/// gone (or was replaced by another of the same name) afterwards.
fn delete_pod(api: &Api, ns: &str, name: &str, uid: &str) -> bool {
    let body = json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
        "preconditions": {"uid": uid}});
    match api.delete(&format!("/api/v1/namespaces/{ns}/pods/{name}"), &body) {
        Ok((200, _)) => {
            log!("deleted pod {ns}/{name} (uid {uid})");
            true
        }
        Ok((404 | 409, _)) => true,
        Ok((code, b)) => {
            log!("cannot delete pod {ns}/{name}: {code} {}", message(&b));
            false
        }
        Err(e) => {
            log!("cannot delete pod {ns}/{name}: {e}");
            false
        }
    }
}

/// The pod conditions the kubelet owns (pkg/kubelet/types PodConditionsByKubelet): a status
/// update keeps the API's others.
const KUBELET_CONDITIONS: &[&str] = &[
    "PodScheduled",
    "Ready",
    "Initialized",
    "ContainersReady",
    "PodReadyToStartContainers",
];

/// The status to write over the API's: the API's conditions the kubelet does not own, then
/// the kubelet's (pkg/kubelet/status mergePodStatus).
fn merge_pod_status(old: &Value, new: &Value) -> Value {
    let owned = |c: &&Value| {
        c.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| KUBELET_CONDITIONS.contains(&t))
    };
    let conditions = |s: &Value| -> Vec<Value> {
        s.get("conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let old_conditions = conditions(old);
    let new_conditions = conditions(new);
    let merged: Vec<Value> = old_conditions
        .iter()
        .filter(|c| !owned(c))
        .chain(new_conditions.iter().filter(owned))
        .cloned()
        .collect();
    let mut status = new.clone();
    if let Some(m) = status.as_object_mut() {
        m.insert("conditions".into(), Value::Array(merged));
    }
    status
}

/// Patches the pod's status when the worker's differs from what was last reported, as the
/// kubelet does (pkg/util/pod PatchPodStatus): the strategic merge patch from the API's
/// current status to the new one, with the pod's UID as a precondition.
fn report(api: &Api, ns: &str, name: &str, uid: &str, status: Value, reported: &mut Option<Value>) {
    if status.is_null() || reported.as_ref() == Some(&status) {
        return;
    }
    let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
    let current = match api.get(&path) {
        Ok((200, pod)) => pod,
        // Deleted meanwhile: the next sync sees it.
        Ok((404, _)) => return,
        Ok((code, b)) => {
            log!("status of pod {ns}/{name}: {code} {}", message(&b));
            return;
        }
        Err(e) => {
            log!("status of pod {ns}/{name}: {e}");
            return;
        }
    };
    if current.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid) {
        return;
    }
    let old_status = current.get("status").cloned().unwrap_or(json!({}));
    let merged = merge_pod_status(&old_status, &status);
    let patch = match patch::two_way_for_kind(
        "",
        "v1",
        "Pod",
        &json!({"status": old_status}),
        &json!({"metadata": {"uid": uid}, "status": merged}),
    ) {
        Ok(p) => p,
        Err(e) => {
            log!("status of pod {ns}/{name}: cannot make the patch: {e}");
            return;
        }
    };
    match api.patch(&format!("{path}/status"), &patch) {
        Ok((200, _)) => *reported = Some(status),
        Ok((404, _)) => {}
        Ok((code, b)) => log!("status of pod {ns}/{name}: {code} {}", message(&b)),
        Err(e) => log!("status of pod {ns}/{name}: {e}"),
    }
}

impl Kubelet {
    pub fn new(
        api: Api,
        cli: &Cli,
        rt: Arc<Runtime>,
        node_uid: Arc<Mutex<String>>,
        tick: Duration,
    ) -> Self {
        Self {
            api,
            node: cli.node_name.clone(),
            dir: cli.pod_manifest_path.clone(),
            breaks: cli.breaks.clone(),
            rt,
            node_uid,
            tick,
            statics: HashMap::new(),
            retiring: Vec::new(),
            restarts: HashMap::new(),
            files: HashMap::new(),
            removals: inotify::Inotify::init().ok().and_then(|i| {
                let mask = inotify::WatchMask::DELETE | inotify::WatchMask::MOVED_FROM;
                i.watches().add(&cli.pod_manifest_path, mask).ok()?;
                Some(i)
            }),
            api_pods: HashMap::new(),
            draining: Vec::new(),
            complained: HashSet::new(),
            api_down: false,
        }
    }

    fn complain(&mut self, key: String, what: &str) {
        if self.complained.insert(key) {
            log!("{what}");
        }
    }

    pub fn sync(&mut self) {
        let manifests = self.read_manifests();
        self.retire_static(&manifests);
        let path = format!("/api/v1/pods?fieldSelector=spec.nodeName%3D{}", self.node);
        let pods = match self.api.get(&path) {
            Ok((200, list)) => {
                if std::mem::take(&mut self.api_down) {
                    log!("the API server answers again");
                }
                list.get("items").and_then(Value::as_array).cloned()
            }
            Ok((code, b)) => {
                log!("cannot list this node's pods: {code} {}", message(&b));
                None
            }
            Err(e) => {
                if !std::mem::replace(&mut self.api_down, true) {
                    log!("cannot list this node's pods: {e}");
                }
                None
            }
        };
        // Static pods run whether the API server answers or not, as the kubelet's do.
        self.start_static(manifests);
        if let Some(pods) = pods {
            self.sync_mirrors(&pods);
            self.sync_api_pods(&pods);
        }
        self.draining.retain(|w| !w.finished());
    }

    /// The pod manifests in the directory, by static UID.
    fn read_manifests(&mut self) -> HashMap<String, Value> {
        let mut out = HashMap::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                let what = format!("cannot read {}: {e}", self.dir.display());
                self.complain(what.clone(), &what);
                return out;
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or(".");
                !name.starts_with('.')
                    && [".yaml", ".yml", ".json"].iter().any(|x| name.ends_with(x))
                    && p.is_file()
            })
            .collect();
        paths.sort();
        // Names removed (or renamed away) since the last sync.
        let mut removed = HashSet::new();
        if let Some(i) = self.removals.as_mut() {
            let mut buffer = [0u8; 4096];
            while let Ok(events) = i.read_events(&mut buffer) {
                let mut any = false;
                for e in events {
                    any = true;
                    if let Some(name) = e.name {
                        removed.insert(name.to_os_string());
                    }
                }
                if !any {
                    break;
                }
            }
        }
        for path in paths {
            // A file removed while being listed is just gone.
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let hash = static_hash(&bytes, &self.node);
            let file = (meta.dev(), meta.ino());
            let replaced = path.file_name().is_some_and(|n| removed.contains(n));
            if self
                .files
                .insert(hash.clone(), file)
                .is_some_and(|f| f != file)
                || replaced
            {
                // Removed and written again: absent for this sync, back at the next.
                continue;
            }
            match parse_manifest(&path, &bytes) {
                Ok(pod) => {
                    out.insert(hash, pod);
                }
                Err(e) => self.complain(
                    format!("{}:{hash}", path.display()),
                    &format!("ignoring {}: {e}", path.display()),
                ),
            }
        }
        out
    }

    /// Stops static pods whose manifest is gone or changed; once their containers have
    /// stopped, deletes their mirror pods.
    fn retire_static(&mut self, manifests: &HashMap<String, Value>) {
        let gone: Vec<String> = self
            .statics
            .keys()
            .filter(|h| !manifests.contains_key(*h))
            .cloned()
            .collect();
        for hash in gone {
            if let Some(sp) = self.statics.remove(&hash) {
                log!(
                    "static pod {}/{}: its manifest was removed or changed: stopping it",
                    sp.namespace,
                    sp.mirror_name
                );
                sp.worker.stop(Duration::from_secs(MAX_GRACE_SECONDS));
                self.retiring.push(sp);
            }
        }
        for sp in std::mem::take(&mut self.retiring) {
            let deleted = sp.worker.finished()
                && sp
                    .mirror_uid
                    .as_ref()
                    .is_none_or(|uid| delete_pod(&self.api, &sp.namespace, &sp.mirror_name, uid));
            if deleted {
                self.restarts
                    .insert(sp.hash.clone(), restart_counts(&sp.worker.status()));
                sp.worker.wait();
            } else {
                self.retiring.push(sp);
            }
        }
    }

    /// Starts the static pods new in the directory.
    fn start_static(&mut self, manifests: HashMap<String, Value>) {
        for (hash, pod) in manifests {
            if self.statics.contains_key(&hash) {
                continue;
            }
            let name = str_at(&pod, "/metadata/name").unwrap_or_default();
            let namespace = str_at(&pod, "/metadata/namespace").unwrap_or("default");
            let mirror_name = format!("{name}-{}", self.node);
            // A new version waits for the old one to be gone: they share the mirror pod's name.
            if self.retiring.iter().any(|r| {
                r.hash == hash || (r.namespace == namespace && r.mirror_name == mirror_name)
            }) {
                continue;
            }
            let same_name =
                |s: &StaticPod| s.namespace == namespace && s.mirror_name == mirror_name;
            if self.statics.values().any(same_name) {
                self.complain(
                    hash.clone(),
                    &format!(
                        "two manifests name static pod {namespace}/{mirror_name}: running only one"
                    ),
                );
                continue;
            }
            let info = match PodInfo::parse(&pod, &hash, &mirror_name, &self.node) {
                Ok(i) => i,
                Err(e) => {
                    self.complain(
                        hash.clone(),
                        &format!("cannot run static pod {namespace}/{mirror_name}: {e}"),
                    );
                    continue;
                }
            };
            let restarts: HashMap<String, u32> = self
                .restarts
                .get(&hash)
                .map(|r| r.iter().map(|(k, v)| (k.clone(), v + 1)).collect())
                .unwrap_or_default();
            log!("static pod {namespace}/{mirror_name}: new manifest, static UID {hash}");
            let label = format!("{namespace}/{mirror_name}");
            let worker = Worker::start(info, label, Arc::clone(&self.rt), &restarts, self.tick);
            let sp = StaticPod {
                hash: hash.clone(),
                namespace: namespace.to_string(),
                mirror_name,
                pod,
                seen: crate::now(),
                worker,
                mirror_uid: None,
                mirror_deleted: false,
                reported: None,
            };
            self.statics.insert(hash, sp);
        }
    }

    fn sync_mirrors(&mut self, pods: &[Value]) {
        // Mirror pods of no static pod this double knows, such as those of a manifest removed
        // while it was not running, go as the kubelet's orphaned mirror pods go.
        for p in pods
            .iter()
            .filter(|p| annotation(p, CONFIG_MIRROR).is_some())
        {
            let (ns, name) = (
                str_at(p, "/metadata/namespace"),
                str_at(p, "/metadata/name"),
            );
            let known = |s: &StaticPod| Some(&*s.namespace) == ns && Some(&*s.mirror_name) == name;
            if !self.statics.values().chain(&self.retiring).any(known)
                && let (Some(ns), Some(name), Some(uid)) = (ns, name, str_at(p, "/metadata/uid"))
            {
                log!("mirror pod {ns}/{name} has no static pod: deleting it");
                delete_pod(&self.api, ns, name, uid);
            }
        }
        let hashes: Vec<String> = self.statics.keys().cloned().collect();
        for hash in hashes {
            if let Some(mut sp) = self.statics.remove(&hash) {
                self.sync_mirror(&mut sp, pods);
                self.statics.insert(hash, sp);
            }
        }
    }

    /// Keeps one mirror pod of the static pod in the API, reporting its status.
    fn sync_mirror(&mut self, sp: &mut StaticPod, pods: &[Value]) {
        let (ns, name) = (sp.namespace.clone(), sp.mirror_name.clone());
        let found = pods.iter().find(|p| {
            str_at(p, "/metadata/namespace") == Some(&ns)
                && str_at(p, "/metadata/name") == Some(&name)
        });
        if let Some(p) = found {
            let uid = str_at(p, "/metadata/uid").unwrap_or_default();
            let node_uid = self.node_uid.lock().map(|u| u.clone()).unwrap_or_default();
            // Made for another version of the manifest, or for an earlier Node object of this
            // name (a restarted control plane): replaced, as the kubelet replaces it.
            let current = annotation(p, CONFIG_HASH) == Some(&sp.hash)
                && (self.breaks.contains(&Break::OwnerReference)
                    || str_at(p, "/metadata/ownerReferences/0/uid") == Some(&node_uid));
            let deleting = p.pointer("/metadata/deletionTimestamp").is_some();
            if current && !deleting {
                if sp.mirror_uid.as_deref() != Some(uid) {
                    sp.mirror_uid = Some(uid.to_string());
                    sp.reported = None;
                }
                report(
                    &self.api,
                    &ns,
                    &name,
                    uid,
                    sp.worker.status(),
                    &mut sp.reported,
                );
                return;
            }
            if deleting {
                log!("mirror pod {ns}/{name} is being deleted: finishing the deletion");
            } else {
                log!("mirror pod {ns}/{name} is stale: replacing it");
            }
            if !delete_pod(&self.api, &ns, &name, uid) {
                return;
            }
            sp.mirror_deleted |= deleting;
        } else if sp.mirror_uid.is_some() {
            log!("mirror pod {ns}/{name} was deleted");
            sp.mirror_deleted = true;
        }
        sp.mirror_uid = None;
        if sp.mirror_deleted && self.breaks.contains(&Break::MirrorRecreate) {
            self.complain(
                format!("recreate:{}", sp.hash),
                &format!("--break mirror-recreate: not recreating mirror pod {ns}/{name}"),
            );
            return;
        }
        if let Some(uid) = self.create_mirror(sp) {
            sp.mirror_uid = Some(uid.clone());
            sp.reported = None;
            report(
                &self.api,
                &ns,
                &name,
                &uid,
                sp.worker.status(),
                &mut sp.reported,
            );
        }
    }

    /// The mirror pod: the manifest's pod on this node, annotated with the static UID and
    /// owned by the Node.
    fn create_mirror(&mut self, sp: &StaticPod) -> Option<String> {
        let mut pod = sp.pod.clone();
        let node_uid = self.node_uid.lock().map(|u| u.clone()).unwrap_or_default();
        let mirror = if self.breaks.contains(&Break::Hash) {
            static_hash(sp.hash.as_bytes(), "--break hash")
        } else {
            sp.hash.clone()
        };
        let meta = pod
            .as_object_mut()?
            .entry("metadata")
            .or_insert_with(|| json!({}));
        for server_set in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
        ] {
            meta.as_object_mut()?.remove(server_set);
        }
        meta["name"] = json!(sp.mirror_name);
        meta["namespace"] = json!(sp.namespace);
        if !meta.get("annotations").is_some_and(Value::is_object) {
            meta["annotations"] = json!({});
        }
        for (k, v) in [
            (CONFIG_HASH, sp.hash.as_str()),
            (CONFIG_MIRROR, mirror.as_str()),
            ("kubernetes.io/config.source", "file"),
            ("kubernetes.io/config.seen", sp.seen.as_str()),
        ] {
            meta["annotations"][k] = json!(v);
        }
        if self.breaks.contains(&Break::OwnerReference) {
            meta.as_object_mut()?.remove("ownerReferences");
        } else {
            meta["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Node", "name": self.node,
                "uid": node_uid, "controller": true}]);
        }
        pod["spec"]["nodeName"] = json!(self.node);
        pod.as_object_mut()?.remove("status");
        let path = format!("/api/v1/namespaces/{}/pods", sp.namespace);
        match self.api.post(&path, &pod) {
            Ok((201 | 200, created)) => {
                let uid = str_at(&created, "/metadata/uid")?.to_string();
                log!(
                    "created mirror pod {}/{} (uid {uid})",
                    sp.namespace,
                    sp.mirror_name
                );
                Some(uid)
            }
            Ok((code, b)) => {
                self.complain(
                    format!("mirror:{}:{code}", sp.hash),
                    &format!(
                        "cannot create mirror pod {}/{}: {code} {}",
                        sp.namespace,
                        sp.mirror_name,
                        message(&b)
                    ),
                );
                None
            }
            Err(e) => {
                log!(
                    "cannot create mirror pod {}/{}: {e}",
                    sp.namespace,
                    sp.mirror_name
                );
                None
            }
        }
    }

    /// Runs the API pods bound to this node, reports their status, and finishes their
    /// deletion.
    fn sync_api_pods(&mut self, pods: &[Value]) {
        let mut seen = HashSet::new();
        for p in pods {
            if annotation(p, CONFIG_MIRROR).is_some() {
                continue;
            }
            let (Some(uid), Some(ns), Some(name)) = (
                str_at(p, "/metadata/uid"),
                str_at(p, "/metadata/namespace"),
                str_at(p, "/metadata/name"),
            ) else {
                continue;
            };
            seen.insert(uid.to_string());
            let deleting = p.pointer("/metadata/deletionTimestamp").is_some();
            if !self.api_pods.contains_key(uid) {
                if deleting {
                    delete_pod(&self.api, ns, name, uid);
                    continue;
                }
                // Finished before this double started: not to be run again.
                if matches!(str_at(p, "/status/phase"), Some("Succeeded" | "Failed")) {
                    continue;
                }
                let info = match PodInfo::parse(p, uid, name, &self.node) {
                    Ok(mut i) => {
                        i.pull_auths = crate::pull::auths(&self.api, ns, &i.pull_secrets);
                        if self.breaks.contains(&Break::NoPull) {
                            for c in &mut i.containers {
                                c.pull_always = false;
                            }
                        }
                        i
                    }
                    Err(e) => {
                        self.complain(uid.to_string(), &format!("cannot run pod {ns}/{name}: {e}"));
                        continue;
                    }
                };
                log!("pod {ns}/{name} (uid {uid}) is bound to this node: starting it");
                let label = format!("{ns}/{name}");
                let worker = Worker::start(
                    info,
                    label,
                    Arc::clone(&self.rt),
                    &HashMap::new(),
                    self.tick,
                );
                self.api_pods.insert(
                    uid.to_string(),
                    ApiPod {
                        namespace: ns.to_string(),
                        name: name.to_string(),
                        worker,
                        stopping: false,
                        reported: None,
                    },
                );
            }
            let Some(ap) = self.api_pods.get_mut(uid) else {
                continue;
            };
            if !deleting {
                report(
                    &self.api,
                    ns,
                    name,
                    uid,
                    ap.worker.status(),
                    &mut ap.reported,
                );
                continue;
            }
            if !ap.stopping {
                let grace = p
                    .pointer("/metadata/deletionGracePeriodSeconds")
                    .or_else(|| p.pointer("/spec/terminationGracePeriodSeconds"))
                    .and_then(Value::as_u64)
                    .unwrap_or(30)
                    .min(MAX_GRACE_SECONDS);
                log!("pod {ns}/{name} is being deleted: stopping its containers");
                ap.worker.stop(Duration::from_secs(grace));
                ap.stopping = true;
            }
            if ap.worker.finished()
                && delete_pod(&self.api, ns, name, uid)
                && let Some(ap) = self.api_pods.remove(uid)
            {
                ap.worker.wait();
            }
        }
        let gone: Vec<String> = self
            .api_pods
            .keys()
            .filter(|u| !seen.contains(*u))
            .cloned()
            .collect();
        for uid in gone {
            if let Some(ap) = self.api_pods.remove(&uid) {
                log!(
                    "pod {}/{} is gone from the API: stopping its containers",
                    ap.namespace,
                    ap.name
                );
                ap.worker.stop(Duration::from_secs(MAX_GRACE_SECONDS));
                self.draining.push(ap.worker);
            }
        }
    }

    /// Stops every container of every pod and waits for them.
    pub fn shutdown(&mut self) {
        let grace = Duration::from_secs(MAX_GRACE_SECONDS);
        let statics = self.statics.drain().map(|(_, s)| s.worker);
        let retiring = self.retiring.drain(..).map(|s| s.worker);
        let api = self.api_pods.drain().map(|(_, p)| p.worker);
        let workers: Vec<Worker> = statics
            .chain(retiring)
            .chain(api)
            .chain(self.draining.drain(..))
            .collect();
        for w in &workers {
            w.stop(grace);
        }
        for w in workers {
            w.wait();
        }
    }
}
