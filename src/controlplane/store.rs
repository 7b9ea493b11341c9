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
}

/// An object as kept: its JSON text, shared by the store and the events that carry it, and
/// the labels and fields selectors look at. A parsed object takes several times the memory of
/// its text, and every stored object is also in the event history.
#[derive(Debug, Clone)]
pub struct Stored {
    pub json: Arc<str>,
    labels: Arc<[(String, String)]>,
    fields: Arc<[(&'static str, String)]>,
}

impl Stored {
    /// `resource` is the store's key for the object's resource: it decides the fields kept.
    fn new(resource: &str, obj: &Value) -> Self {
        let labels = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        // An empty value is kept as absent: a selector reads both as "".
        let fields = fields_of(resource, obj)
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
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
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A field selectors may name for the object's kind (`spec.nodeName` of a pod), with the
    /// value upstream's field set gives it; `None` when it is empty or not in the kind's set.
    pub fn field(&self, path: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(f, _)| *f == path)
            .map(|(_, v)| v.as_str())
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
}

/// What a delete must find: the object's uid and resourceVersion, when given.
#[derive(Debug, Clone, Default)]
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
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            inner: Mutex::new(Inner::default()),
            tx,
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

    /// Blocks until the store changes after `rv`, or `timeout` passes.
    pub fn wait_for_change(&self, rv: u64, timeout: std::time::Duration) {
        let guard = self.lock();
        let _ = self
            .changed
            .wait_timeout_while(guard, timeout, |inner| inner.rv <= rv);
    }

    fn record(
        &self,
        inner: &mut Inner,
        kind: EventType,
        resource: &str,
        namespace: &str,
        object: Stored,
    ) {
        let event = Arc::new(Event {
            kind,
            resource: resource.into(),
            namespace: namespace.into(),
            rv: inner.rv,
            object,
        });
        if inner.history.len() == HISTORY {
            inner.history.pop_front();
        }
        inner.history.push_back(Arc::clone(&event));
        self.changed.notify_all();
        // No receiver is fine: nobody watches.
        let _ = self.tx.send(event);
    }

    /// Stores a new object: a name from generateName if needed, uid, creationTimestamp and
    /// resourceVersion.
    pub fn create(
        &self,
        resource: &str,
        namespace: &str,
        mut obj: Value,
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
        let key = key(resource, namespace, &name);
        if inner.objects.contains_key(&key) {
            return Err(StoreError::AlreadyExists(describe(resource, &name)));
        }
        inner.rv += 1;
        meta.insert("name".into(), json!(name));
        if !namespace.is_empty() {
            meta.insert("namespace".into(), json!(namespace));
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert(
            "creationTimestamp".into(),
            json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        );
        meta.insert("resourceVersion".into(), json!(inner.rv.to_string()));
        let stored = Stored::new(resource, &obj);
        inner.objects.insert(key, stored.clone());
        self.record(&mut inner, EventType::Added, resource, namespace, stored);
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

    /// Replaces an object. A resourceVersion in the new object must be the current one (409
    /// otherwise); uid and creationTimestamp are kept.
    pub fn update(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        mut obj: Value,
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
        inner.rv += 1;
        let rv = inner.rv;
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
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        let stored = Stored::new(resource, &obj);
        inner.objects.insert(key, stored.clone());
        self.record(&mut inner, EventType::Modified, resource, namespace, stored);
        Ok(obj)
    }

    /// Removes an object if the preconditions hold; returns it as it was.
    pub fn delete(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        pre: &Preconditions,
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
        let mut obj = current;
        inner.objects.remove(&key);
        inner.rv += 1;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), json!(inner.rv.to_string()));
        }
        self.record(
            &mut inner,
            EventType::Deleted,
            resource,
            namespace,
            Stored::new(resource, &obj),
        );
        Ok(obj)
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
        let s = Store::new();
        let a = s.create("pods", "default", pod("a", "n1")).unwrap();
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
            s.create("pods", "default", pod("a", "n1")),
            Err(StoreError::AlreadyExists("pods \"a\"".into()))
        );
        let g = s
            .create(
                "pods",
                "default",
                json!({"metadata": {"generateName": "web-"}}),
            )
            .unwrap();
        assert!(g["metadata"]["name"].as_str().unwrap().starts_with("web-"));
        assert!(matches!(
            s.create("pods", "default", json!({"metadata": {}})),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn update_is_optimistic() {
        let s = Store::new();
        let a = s
            .create("leases", "kube-node-lease", pod("n1", ""))
            .unwrap();
        let uid = a["metadata"]["uid"].clone();
        let mut b = a.clone();
        b["spec"] = json!({"renewTime": "x"});
        let b = s.update("leases", "kube-node-lease", "n1", b).unwrap();
        assert_eq!(b["metadata"]["resourceVersion"], "2");
        assert_eq!(b["metadata"]["uid"], uid);
        // The first version is stale now.
        assert!(matches!(
            s.update("leases", "kube-node-lease", "n1", a),
            Err(StoreError::Conflict(_))
        ));
        // Without a resourceVersion the write wins.
        let mut c = b.clone();
        c["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("resourceVersion");
        assert_eq!(
            s.update("leases", "kube-node-lease", "n1", c).unwrap()["metadata"]["resourceVersion"],
            "3"
        );
        assert!(matches!(
            s.update("leases", "kube-node-lease", "nope", b),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn delete_checks_preconditions() {
        let s = Store::new();
        let a = s.create("pods", "ns", pod("a", "n1")).unwrap();
        let wrong = Preconditions {
            uid: Some("other".into()),
            resource_version: None,
        };
        assert!(matches!(
            s.delete("pods", "ns", "a", &wrong),
            Err(StoreError::Conflict(_))
        ));
        let right = Preconditions {
            uid: a["metadata"]["uid"].as_str().map(str::to_string),
            resource_version: Some("1".into()),
        };
        let gone = s.delete("pods", "ns", "a", &right).unwrap();
        assert_eq!(gone["metadata"]["resourceVersion"], "2");
        assert!(matches!(
            s.get("pods", "ns", "a"),
            Err(StoreError::NotFound(_))
        ));
    }

    #[test]
    fn list_filters_by_namespace_and_selector() {
        let s = Store::new();
        s.create("pods", "a", pod("p1", "n1")).unwrap();
        s.create("pods", "b", pod("p2", "n2")).unwrap();
        s.create("nodes", "", json!({"metadata": {"name": "n1"}}))
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
    fn watch_resumes_without_gaps_and_expires() {
        let s = Store::new();
        s.create("pods", "ns", pod("a", "n1")).unwrap();
        let (backlog, mut rx) = s.watch(Some(0)).unwrap();
        assert_eq!(backlog.len(), 1);
        s.delete("pods", "ns", "a", &Preconditions::default())
            .unwrap();
        let e = rx.try_recv().unwrap();
        assert_eq!((e.kind, e.rv), (EventType::Deleted, 2));
        let (backlog, _) = s.watch(Some(2)).unwrap();
        assert!(backlog.is_empty());
        for i in 0..HISTORY + 5 {
            s.create("pods", "ns", pod(&format!("p{i}"), "n")).unwrap();
        }
        assert!(matches!(s.watch(Some(1)), Err(StoreError::Expired(_))));
        let now = s.resource_version();
        assert!(s.watch(Some(now)).unwrap().0.is_empty());
    }
}
