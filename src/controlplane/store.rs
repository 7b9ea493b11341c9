//! The local control plane's object store: every object in memory, one resourceVersion counter
//! for all of them, and a window of recent events so watches can resume.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::selector::{Selector, fields_of};

/// How many past events a watch may resume from; older resourceVersions answer 410 Expired.
pub const HISTORY: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// A change to one object.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventType,
    pub resource: String,
    pub namespace: String,
    pub rv: u64,
    pub object: Stored,
    /// The object as it was before a MODIFIED change: a watch with a selector turns a change
    /// into ADDED or DELETED when the object starts or stops matching, as kube-apiserver's
    /// watch cache does (k8s.io/apiserver/pkg/storage/cacher/cache_watcher.go,
    /// convertToWatchEvent).
    pub prev: Option<Stored>,
}

/// An object as kept: its JSON text, shared by the store and the events that carry it, and
/// the labels and fields selectors look at. A parsed object takes several times the memory of
/// its text, and every stored object is also in the event history.
#[derive(Debug, Clone)]
pub struct Stored {
    pub json: Arc<str>,
    /// The labels, `key\0value\0` after one another: one allocation per object (label keys
    /// and values are validated and hold no NUL).
    labels: Arc<str>,
    /// The kind's selectable fields with a value, `path\0value\0` likewise.
    fields: Arc<str>,
}

/// `key\0value\0...` of pairs, for [`Stored`]'s compact lists.
fn packed<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Arc<str> {
    let mut out = String::new();
    for (k, v) in pairs {
        out.push_str(k);
        out.push('\0');
        out.push_str(v);
        out.push('\0');
    }
    out.into()
}

/// The value of `key` in a packed list.
fn unpacked<'a>(list: &'a str, key: &str) -> Option<&'a str> {
    let mut parts = list.split('\0');
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        if k == key {
            return Some(v);
        }
    }
    None
}

impl Stored {
    /// `resource` is the store's key for the object's resource: it decides the fields kept.
    pub(super) fn new(resource: &str, obj: &Value) -> Self {
        let labels = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|l| {
                packed(
                    l.iter()
                        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?))),
                )
            })
            .unwrap_or_else(|| Arc::from(""));
        // An empty value is kept as absent: a selector reads both as "".
        let fields = fields_of(resource, obj);
        let fields = packed(
            fields
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (*k, v.as_str())),
        );
        Self {
            json: obj.to_string().into(),
            labels,
            fields,
        }
    }

    /// The object, parsed.
    pub fn value(&self) -> Value {
        // The text was made from a Value, so it parses.
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        unpacked(&self.labels, key)
    }

    /// A field selectors may name for the object's kind (`spec.nodeName` of a pod), with the
    /// value upstream's field set gives it; `None` when it is empty or not in the kind's set.
    pub fn field(&self, path: &str) -> Option<&str> {
        unpacked(&self.fields, path)
    }
}

/// Why a store operation failed; each maps to a metav1.Status reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    NotFound(String),
    AlreadyExists(String),
    Conflict(String),
    Invalid(String),
    /// The resourceVersion asked for is older than the history kept.
    Expired(String),
    /// What kube-apiserver's storage answers with a bare 500 (no reason).
    Internal(String),
}

/// What a delete must find: the object's uid and resourceVersion, when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

type Key = (String, String, String);

/// A watch's start: the events it missed, then a receiver for the rest.
pub type Watch = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

#[derive(Debug, Default)]
struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Stored>,
    history: VecDeque<Arc<Event>>,
}

impl Inner {
    /// The stored object under `key`, parsed, or NotFound naming it.
    fn parsed(&self, key: &Key, resource: &str, name: &str) -> Result<Value, StoreError> {
        self.objects
            .get(key)
            .map(Stored::value)
            .ok_or_else(|| StoreError::NotFound(describe(resource, name)))
    }
}

#[derive(Debug)]
pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Event>>,
    /// The latest resourceVersion, for async waiters (a list or watch at a version the store
    /// has not reached yet waits for it, as kube-apiserver's watch cache does).
    rv_seen: tokio::sync::watch::Sender<u64>,
    /// True once the server stops: open watches end instead of holding the shutdown up.
    closed: tokio::sync::watch::Sender<bool>,
    /// Woken on every change, for in-process waiters that are not async.
    changed: std::sync::Condvar,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

fn key(resource: &str, namespace: &str, name: &str) -> Key {
    (
        resource.to_string(),
        namespace.to_string(),
        name.to_string(),
    )
}

fn name_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

fn describe(resource: &str, name: &str) -> String {
    format!("{resource} \"{name}\"")
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

impl Store {
    /// A store whose versions carry on from any earlier control plane's: they start at the
    /// current time in microseconds. A client that kept a version from a control plane that
    /// ran before this one (a kubelet that outlived it) then finds it older than anything
    /// here, is told 410 Expired and lists again, as with a kube-apiserver, whose versions
    /// (etcd's revisions) never go back. Starting at 1 instead, such a version would be ahead
    /// of the store, and a watch from it silently skips everything up to it.
    pub fn new() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2));
        Self::starting_at(now)
    }

    /// A store whose first write gets resourceVersion `base + 1`.
    pub fn starting_at(base: u64) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            inner: Mutex::new(Inner {
                rv: base,
                ..Inner::default()
            }),
            tx,
            rv_seen: tokio::sync::watch::Sender::new(base),
            closed: tokio::sync::watch::Sender::new(false),
            changed: std::sync::Condvar::new(),
        }
    }

    /// Ends every open watch, now and from now on.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Resolves once the store is closed.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closed.subscribe();
        async move {
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the map half-written: every change is one insert.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Waits until the store has reached resourceVersion `rv` or `timeout` passed; whether it
    /// has.
    pub async fn reached(&self, rv: u64, timeout: std::time::Duration) -> bool {
        let mut seen = self.rv_seen.subscribe();
        tokio::time::timeout(timeout, seen.wait_for(|now| *now >= rv))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Blocks until an object of `resource` named `name` changes (is created, modified or
    /// deleted) after `rv`, or `timeout` passes; whether it changed. Other writes (the many a
    /// kubelet makes to other objects) do not wake it. When the history kept no longer reaches
    /// back to `rv`, it answers true: it cannot tell.
    pub fn wait_for_change_of(
        &self,
        rv: u64,
        timeout: std::time::Duration,
        resource: &str,
        name: &str,
    ) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut guard = self.lock();
        loop {
            if guard.history.front().is_some_and(|e| e.rv > rv + 1) {
                return true;
            }
            let changed = guard
                .history
                .iter()
                .rev()
                .take_while(|e| e.rv > rv)
                .any(|e| e.resource == resource && e.object.field("metadata.name") == Some(name));
            if changed {
                return true;
            }
            let seen = guard.rv;
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
                return false;
            };
            guard = match self
                .changed
                .wait_timeout_while(guard, left, |inner| inner.rv <= seen)
            {
                Ok((g, _)) => g,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    fn record(
        &self,
        inner: &mut Inner,
        kind: EventType,
        resource: &str,
        namespace: &str,
        object: Stored,
        prev: Option<Stored>,
    ) {
        let event = Arc::new(Event {
            kind,
            resource: resource.into(),
            namespace: namespace.into(),
            rv: inner.rv,
            object,
            prev,
        });
        if inner.history.len() == HISTORY {
            inner.history.pop_front();
        }
        inner.history.push_back(Arc::clone(&event));
        self.changed.notify_all();
        self.rv_seen.send_replace(inner.rv);
        // No receiver is fine: nobody watches.
        let _ = self.tx.send(event);
    }

    /// Stores a new object: a name from generateName if needed, uid, creationTimestamp and
    /// resourceVersion. A resourceVersion from the client is an error (Internal). A dry run
    /// (`dryRun=All`) makes the same checks and the same object but keeps nothing: as
    /// kube-apiserver's DryRunnableStorage, its answer has no resourceVersion of the store's
    /// (the client's, if it sent one), the store's version stays, and no watch hears of it.
    pub fn create(
        &self,
        resource: &str,
        namespace: &str,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Value, StoreError> {
        let mut inner = self.lock();
        let meta = obj
            .as_object_mut()
            .ok_or_else(|| StoreError::Invalid("the body is not an object".into()))?
            .entry("metadata")
            .or_insert_with(|| json!({}));
        let Some(meta) = meta.as_object_mut() else {
            return Err(StoreError::Invalid("metadata is not an object".into()));
        };
        let name = match meta
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            Some(n) => n.to_string(),
            None => match meta.get("generateName").and_then(Value::as_str) {
                Some(prefix) => format!("{prefix}{}", random_suffix()),
                None => {
                    return Err(StoreError::Invalid(
                        "metadata.name: Required value: name or generateName is required".into(),
                    ));
                }
            },
        };
        // As etcd3's store: a version on a new object is refused, before looking for the
        // name. A dry run does not get there and keeps what the client sent.
        let given = meta
            .get("resourceVersion")
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if given != 0 && !dry_run {
            return Err(StoreError::Internal(
                "resourceVersion should not be set on objects to be created".into(),
            ));
        }
        let key = key(resource, namespace, &name);
        if inner.objects.contains_key(&key) {
            return Err(StoreError::AlreadyExists(describe(resource, &name)));
        }
        meta.insert("name".into(), json!(name));
        if !namespace.is_empty() {
            meta.insert("namespace".into(), json!(namespace));
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert(
            "creationTimestamp".into(),
            json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        );
        if dry_run {
            return Ok(obj);
        }
        inner.rv += 1;
        meta.insert("resourceVersion".into(), json!(inner.rv.to_string()));
        let stored = Stored::new(resource, &obj);
        inner.objects.insert(key, stored.clone());
        self.record(
            &mut inner,
            EventType::Added,
            resource,
            namespace,
            stored,
            None,
        );
        Ok(obj)
    }

    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Result<Value, StoreError> {
        // Cloned (two Arcs) under the lock, parsed after it.
        let stored = self
            .lock()
            .objects
            .get(&key(resource, namespace, name))
            .cloned()
            .ok_or_else(|| StoreError::NotFound(describe(resource, name)))?;
        Ok(stored.value())
    }

    /// The objects of a resource (in one namespace, or all with `None`) that match, as JSON
    /// text, and the resourceVersion the list is consistent with.
    pub fn list(
        &self,
        resource: &str,
        namespace: Option<&str>,
        selector: &Selector,
    ) -> (Vec<Arc<str>>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|((r, ns, _), _)| r == resource && namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v)
            .filter(|v| selector.matches_stored(v))
            .map(|v| Arc::clone(&v.json))
            .collect();
        (items, inner.rv)
    }

    /// Every object of a resource (in one namespace, or all with `None`) as it was at
    /// resourceVersion `at` (now with `None`, or with a version not older than the store's),
    /// in etcd's key order, each with its key relative to the resource's prefix (`name`, or
    /// `namespace/name` across namespaces); and the version the list is consistent with. A
    /// version older than the history kept reaches is Expired, as a compacted revision is.
    pub fn list_at(
        &self,
        resource: &str,
        namespace: Option<&str>,
        at: Option<u64>,
    ) -> Result<(Vec<(String, Stored)>, u64), StoreError> {
        let inner = self.lock();
        let wanted = |r: &str, ns: &str| r == resource && namespace.is_none_or(|n| n == ns);
        let mut objects: BTreeMap<(String, String), Stored> = inner
            .objects
            .iter()
            .filter(|((r, ns, _), _)| wanted(r, ns))
            .map(|((_, ns, name), v)| ((ns.clone(), name.clone()), v.clone()))
            .collect();
        let mut rv = inner.rv;
        if let Some(at) = at.filter(|at| *at < inner.rv) {
            let oldest = inner.history.front().map_or(inner.rv + 1, |e| e.rv);
            if oldest > at + 1 {
                return Err(StoreError::Expired(
                    "The resourceVersion for the provided list is too old.".into(),
                ));
            }
            // Undo what happened since, newest first.
            for e in inner.history.iter().rev().take_while(|e| e.rv > at) {
                if !wanted(&e.resource, &e.namespace) {
                    continue;
                }
                let name = e.object.field("metadata.name").unwrap_or_default();
                let k = (e.namespace.clone(), name.to_string());
                match (e.kind, &e.prev) {
                    (EventType::Added, _) => {
                        objects.remove(&k);
                    }
                    (_, Some(prev)) => {
                        objects.insert(k, prev.clone());
                    }
                    (_, None) => {}
                }
            }
            rv = at;
        }
        let mut items: Vec<(String, Stored)> = objects
            .into_iter()
            .map(|((ns, name), v)| match namespace {
                None if !ns.is_empty() => (format!("{ns}/{name}"), v),
                _ => (name, v),
            })
            .collect();
        items.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Ok((items, rv))
    }

    /// What is stored in `namespace`, of every resource: (resource, name) pairs.
    pub fn contents(&self, namespace: &str) -> Vec<(String, String)> {
        self.lock()
            .objects
            .keys()
            .filter(|(_, ns, _)| ns == namespace)
            .map(|(r, _, n)| (r.clone(), n.clone()))
            .collect()
    }

    /// Replaces an object. A resourceVersion in the new object must be the current one (409
    /// otherwise); uid and creationTimestamp are kept. An object equal to the stored one is
    /// not written (same version, no event). A dry run makes the same checks and answers the
    /// object as it would be stored, at the current resourceVersion, keeping nothing.
    pub fn update(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Value, StoreError> {
        let mut inner = self.lock();
        let key = key(resource, namespace, name);
        let current = inner.parsed(&key, resource, name)?;
        if name_of(&obj).is_some_and(|n| n != name) {
            return Err(StoreError::Invalid(format!(
                "metadata.name: the name of the object ({}) does not match the name in the URL ({name})",
                name_of(&obj).unwrap_or_default()
            )));
        }
        let current_rv = current
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(rv) = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && !rv.is_empty()
            && rv != current_rv
        {
            return Err(StoreError::Conflict(format!(
                "Operation cannot be fulfilled on {}: the object has been modified; please apply your changes to the latest version and try again",
                describe(resource, name)
            )));
        }
        let keep: Vec<(String, Value)> = ["uid", "creationTimestamp"]
            .iter()
            .filter_map(|f| {
                current
                    .pointer(&format!("/metadata/{f}"))
                    .map(|v| ((*f).to_string(), v.clone()))
            })
            .collect();
        let Some(meta) = obj
            .as_object_mut()
            .map(|o| o.entry("metadata").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut)
        else {
            return Err(StoreError::Invalid("metadata is not an object".into()));
        };
        for (k, v) in keep {
            meta.insert(k, v);
        }
        meta.insert("name".into(), json!(name));
        if !namespace.is_empty() {
            meta.insert("namespace".into(), json!(namespace));
        }
        meta.insert("resourceVersion".into(), json!(current_rv));
        // As etcd3's GuaranteedUpdate: an update that changes nothing is not written, and
        // nobody hears of it.
        if dry_run || obj == current {
            return Ok(obj);
        }
        let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
            return Err(StoreError::Invalid("metadata is not an object".into()));
        };
        inner.rv += 1;
        meta.insert("resourceVersion".into(), json!(inner.rv.to_string()));
        let stored = Stored::new(resource, &obj);
        let prev = inner.objects.insert(key, stored.clone());
        self.record(
            &mut inner,
            EventType::Modified,
            resource,
            namespace,
            stored,
            prev,
        );
        Ok(obj)
    }

    /// Removes an object if the preconditions hold; returns it as it was last stored, at its
    /// own resourceVersion, as kube-apiserver's etcd3 store answers a delete (the DELETED
    /// event carries the version of the deletion). A dry run checks and answers the same but
    /// removes nothing.
    pub fn delete(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        pre: &Preconditions,
        dry_run: bool,
    ) -> Result<Value, StoreError> {
        let mut inner = self.lock();
        let key = key(resource, namespace, name);
        let current = inner.parsed(&key, resource, name)?;
        for (field, want) in [
            ("uid", &pre.uid),
            ("resourceVersion", &pre.resource_version),
        ] {
            let have = current
                .pointer(&format!("/metadata/{field}"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if let Some(want) = want
                && want != have
            {
                return Err(StoreError::Conflict(format!(
                    "Precondition failed: {field}: {want}, stored {field}: {have} ({})",
                    describe(resource, name)
                )));
            }
        }
        if dry_run {
            return Ok(current);
        }
        let mut gone = current.clone();
        inner.rv += 1;
        if let Some(meta) = gone.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), json!(inner.rv.to_string()));
        }
        // The object as it was goes with the event, so a list at an earlier version can
        // bring it back (`list_at`).
        let prev = inner.objects.remove(&key);
        self.record(
            &mut inner,
            EventType::Deleted,
            resource,
            namespace,
            Stored::new(resource, &gone),
            prev,
        );
        Ok(current)
    }

    /// Starts a watch: the events after `since` (or none for `None`, meaning from now) and a
    /// receiver for what follows, with no gap between the two.
    pub fn watch(&self, since: Option<u64>) -> Result<Watch, StoreError> {
        let inner = self.lock();
        let rx = self.tx.subscribe();
        let Some(since) = since else {
            return Ok((Vec::new(), rx));
        };
        let oldest_kept = inner.history.front().map_or(inner.rv + 1, |e| e.rv);
        if since + 1 < oldest_kept && since < inner.rv {
            return Err(StoreError::Expired(format!(
                "too old resource version: {since} ({})",
                oldest_kept - 1
            )));
        }
        let backlog = inner
            .history
            .iter()
            .filter(|e| e.rv > since)
            .cloned()
            .collect();
        Ok((backlog, rx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}}, "spec": {"nodeName": node}})
    }

    #[test]
    fn create_fills_identity_and_refuses_duplicates() {
        let s = Store::starting_at(0);
        let a = s.create("pods", "default", pod("a", "n1"), false).unwrap();
        assert_eq!(a["metadata"]["resourceVersion"], "1");
        assert_eq!(a["metadata"]["namespace"], "default");
        assert_eq!(a["metadata"]["uid"].as_str().unwrap().len(), 36);
        assert!(
            a["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap()
                .ends_with('Z')
        );
        assert_eq!(
            s.create("pods", "default", pod("a", "n1"), false),
            Err(StoreError::AlreadyExists("pods \"a\"".into()))
        );
        let g = s
            .create(
                "pods",
                "default",
                json!({"metadata": {"generateName": "web-"}}),
                false,
            )
            .unwrap();
        assert!(g["metadata"]["name"].as_str().unwrap().starts_with("web-"));
        assert!(matches!(
            s.create("pods", "default", json!({"metadata": {}}), false),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn a_wait_wakes_for_its_object_only() {
        let s = std::sync::Arc::new(Store::starting_at(0));
        s.create("pods", "ns", pod("a", "n1"), false).unwrap();
        let rv = s.resource_version();
        let short = std::time::Duration::from_millis(50);
        assert!(!s.wait_for_change_of(rv, short, "pods", "a"));
        // Writes to other objects, of the same kind or not, do not wake it.
        s.create("pods", "ns", pod("b", "n1"), false).unwrap();
        s.create("leases", "kube-node-lease", pod("a", ""), false)
            .unwrap();
        assert!(!s.wait_for_change_of(rv, short, "pods", "a"));
        // A change made while it waits does.
        let writer = std::sync::Arc::clone(&s);
        let write = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let mut a = writer.get("pods", "ns", "a").unwrap();
            a["spec"]["nodeName"] = json!("n2");
            writer.update("pods", "ns", "a", a, false).unwrap();
        });
        assert!(s.wait_for_change_of(rv, std::time::Duration::from_secs(10), "pods", "a"));
        write.join().unwrap();
    }

    #[test]
    fn update_is_optimistic() {
        let s = Store::starting_at(0);
        let a = s
            .create("leases", "kube-node-lease", pod("n1", ""), false)
            .unwrap();
        let uid = a["metadata"]["uid"].clone();
        let mut b = a.clone();
        b["spec"] = json!({"renewTime": "x"});
        let b = s
            .update("leases", "kube-node-lease", "n1", b, false)
            .unwrap();
        assert_eq!(b["metadata"]["resourceVersion"], "2");
        assert_eq!(b["metadata"]["uid"], uid);
        // The first version is stale now.
        assert!(matches!(
            s.update("leases", "kube-node-lease", "n1", a, false),
            Err(StoreError::Conflict(_))
        ));
        // The same object again is no change.
        assert_eq!(
            s.update("leases", "kube-node-lease", "n1", b.clone(), false)
                .unwrap()["metadata"]["resourceVersion"],
            "2"
        );
        assert_eq!(s.resource_version(), 2);
        // Without a resourceVersion the write wins.
        let mut c = b.clone();
        c["spec"]["renewTime"] = json!("y");
        c["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("resourceVersion");
        assert_eq!(
            s.update("leases", "kube-node-lease", "n1", c, false)
                .unwrap()["metadata"]["resourceVersion"],
            "3"
        );
        assert!(matches!(
            s.update("leases", "kube-node-lease", "nope", b, false),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn delete_checks_preconditions() {
        let s = Store::starting_at(0);
        let a = s.create("pods", "ns", pod("a", "n1"), false).unwrap();
        let wrong = Preconditions {
            uid: Some("other".into()),
            resource_version: None,
        };
        assert!(matches!(
            s.delete("pods", "ns", "a", &wrong, false),
            Err(StoreError::Conflict(_))
        ));
        let right = Preconditions {
            uid: a["metadata"]["uid"].as_str().map(str::to_string),
            resource_version: Some("1".into()),
        };
        let gone = s.delete("pods", "ns", "a", &right, false).unwrap();
        // The answer is the object as last stored; the DELETED event has the new version.
        assert_eq!(gone["metadata"]["resourceVersion"], "1");
        let (events, _) = s.watch(Some(1)).unwrap();
        assert_eq!(events[0].object.value()["metadata"]["resourceVersion"], "2");
        assert!(matches!(
            s.get("pods", "ns", "a"),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn list_filters_by_namespace_and_selector() {
        let s = Store::starting_at(0);
        s.create("pods", "a", pod("p1", "n1"), false).unwrap();
        s.create("pods", "b", pod("p2", "n2"), false).unwrap();
        s.create("nodes", "", json!({"metadata": {"name": "n1"}}), false)
            .unwrap();
        let all = Selector::default();
        assert_eq!(s.list("pods", None, &all).0.len(), 2);
        assert_eq!(s.list("pods", Some("a"), &all).0.len(), 1);
        let on_n2 = Selector::parse("pods", None, Some("spec.nodeName=n2")).unwrap();
        let (items, rv) = s.list("pods", None, &on_n2);
        assert_eq!((items.len(), rv), (1, 3));
        let p2: Value = serde_json::from_str(&items[0]).unwrap();
        assert_eq!(p2["metadata"]["name"], "p2");
    }

    #[test]
    fn a_list_at_an_older_version_undoes_what_came_after() {
        let s = Store::starting_at(0);
        s.create("pods", "a", pod("p2", "n1"), false).unwrap();
        s.create("pods", "b", pod("p1", "n1"), false).unwrap();
        let at = s.resource_version();
        let mut p2 = s.get("pods", "a", "p2").unwrap();
        p2["spec"]["nodeName"] = json!("n9");
        s.update("pods", "a", "p2", p2, false).unwrap();
        s.delete("pods", "b", "p1", &Preconditions::default(), false)
            .unwrap();
        s.create("pods", "a", pod("p0", "n1"), false).unwrap();
        let names = |items: &[(String, Stored)]| -> Vec<String> {
            items.iter().map(|(k, _)| k.clone()).collect()
        };
        let (now, rv) = s.list_at("pods", None, None).unwrap();
        assert_eq!((names(&now), rv), (vec!["a/p0".into(), "a/p2".into()], 5));
        let (then, rv) = s.list_at("pods", None, Some(at)).unwrap();
        assert_eq!((names(&then), rv), (vec!["a/p2".into(), "b/p1".into()], at));
        assert_eq!(then[0].1.value()["spec"]["nodeName"], "n1");
        assert_eq!(then[1].1.value()["metadata"]["resourceVersion"], "2");
        // In one namespace the key is the name; a version ahead is now.
        let (in_a, _) = s.list_at("pods", Some("a"), Some(99)).unwrap();
        assert_eq!(names(&in_a), vec!["p0".to_string(), "p2".into()]);
        // Beyond the history kept: Expired.
        let old = Store::starting_at(100);
        old.create("pods", "a", pod("p", "n"), false).unwrap();
        assert!(matches!(
            old.list_at("pods", None, Some(50)),
            Err(StoreError::Expired(_))
        ));
        assert!(old.list_at("pods", None, Some(100)).is_ok());
    }

    #[test]
    fn watch_resumes_without_gaps_and_expires() {
        let s = Store::starting_at(0);
        s.create("pods", "ns", pod("a", "n1"), false).unwrap();
        let (backlog, mut rx) = s.watch(Some(0)).unwrap();
        assert_eq!(backlog.len(), 1);
        s.delete("pods", "ns", "a", &Preconditions::default(), false)
            .unwrap();
        let e = rx.try_recv().unwrap();
        assert_eq!((e.kind, e.rv), (EventType::Deleted, 2));
        let (backlog, _) = s.watch(Some(2)).unwrap();
        assert!(backlog.is_empty());
        for i in 0..HISTORY + 5 {
            s.create("pods", "ns", pod(&format!("p{i}"), "n"), false)
                .unwrap();
        }
        assert!(matches!(s.watch(Some(1)), Err(StoreError::Expired(_))));
        let now = s.resource_version();
        assert!(s.watch(Some(now)).unwrap().0.is_empty());
    }

    #[test]
    fn a_dry_run_checks_everything_and_keeps_nothing() {
        let s = Store::starting_at(0);
        let a = s.create("pods", "ns", pod("a", "n1"), false).unwrap();
        let (_, mut rx) = s.watch(Some(1)).unwrap();
        let dry = s.create("pods", "ns", pod("b", "n1"), true).unwrap();
        assert!(dry["metadata"].get("resourceVersion").is_none());
        assert_eq!(dry["metadata"]["uid"].as_str().map(str::len), Some(36));
        assert!(matches!(
            s.create("pods", "ns", pod("a", "n1"), true),
            Err(StoreError::AlreadyExists(_))
        ));
        let mut versioned = pod("c", "n1");
        versioned["metadata"]["resourceVersion"] = json!("5");
        assert_eq!(
            s.create("pods", "ns", versioned.clone(), true).unwrap()["metadata"]["resourceVersion"],
            "5"
        );
        assert!(matches!(
            s.create("pods", "ns", versioned, false),
            Err(StoreError::Internal(_))
        ));
        let mut changed = a.clone();
        changed["spec"]["nodeName"] = json!("n2");
        let dry = s.update("pods", "ns", "a", changed.clone(), true).unwrap();
        assert_eq!(
            (
                dry["metadata"]["resourceVersion"].as_str(),
                dry["spec"]["nodeName"].as_str()
            ),
            (Some("1"), Some("n2"))
        );
        changed["metadata"]["resourceVersion"] = json!("7");
        assert!(matches!(
            s.update("pods", "ns", "a", changed, true),
            Err(StoreError::Conflict(_))
        ));
        let wrong = Preconditions {
            uid: Some("other".into()),
            resource_version: None,
        };
        assert!(matches!(
            s.delete("pods", "ns", "a", &wrong, true),
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            s.delete("pods", "ns", "a", &Preconditions::default(), true)
                .unwrap(),
            a
        );
        assert_eq!(s.get("pods", "ns", "a").unwrap(), a);
        assert!(matches!(
            s.get("pods", "ns", "b"),
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(s.resource_version(), 1);
        assert!(rx.try_recv().is_err(), "no event for a dry run");
    }

    #[test]
    fn versions_carry_on_from_earlier_control_planes() {
        let earlier = Store::new();
        earlier.create("pods", "ns", pod("a", "n1"), false).unwrap();
        let seen = earlier.resource_version();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = Store::new();
        later.create("pods", "ns", pod("b", "n1"), false).unwrap();
        assert!(later.resource_version() > seen + 1);
        // A version from before is too old here: the client lists again.
        assert!(matches!(
            later.watch(Some(seen)),
            Err(StoreError::Expired(_))
        ));
    }
}
