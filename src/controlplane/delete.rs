//! DELETE of one object, as kube-apiserver's delete handler and generic registry answer it
//! (k8s.io/apiserver/pkg/endpoints/handlers/delete.go, pkg/registry/generic/registry/store.go,
//! pkg/registry/rest/delete.go `BeforeDelete`, pkg/registry/core/pod/strategy.go
//! `CheckGracefulDelete`):
//!
//! - The options come from the body when there is one, else from the query (a body makes the
//!   query's `dryRun` and `gracePeriodSeconds` count for nothing, as upstream).
//! - Preconditions are checked first, worded as `BeforeDelete` words them.
//! - A pod is always deleted gracefully: marked with `deletionTimestamp` and
//!   `deletionGracePeriodSeconds`; with a grace of 0 (a pod on no node, or finished, or a
//!   client's 0) it is then removed at once. A later delete may only shorten the grace.
//! - The answer is the object for the resources whose registry sets `ReturnDeletedObject`,
//!   else a Success Status naming it.
//! - `dryRun=All` takes the same path and answers the same, keeping nothing.

use serde_json::{Value, json};

use super::invalid;
use super::namespaces;
use super::query::{self, Query};
use super::resources::Resource;
use super::store::{Preconditions, Store, StoreError};

/// Resources whose registry answers a delete with the object rather than a Status
/// (`ReturnDeletedObject: true` in Kubernetes 1.20's pkg/registry; checked against
/// kube-apiserver 1.20.2).
const RETURN_DELETED_OBJECT: &[&str] = &["pods", "serviceaccounts", "csinodes", "csidrivers"];

/// A client's DeleteOptions, as far as this API uses them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    pub grace: Option<i64>,
    pub preconditions: Preconditions,
    pub dry_run: bool,
    /// `propagationPolicy`: Foreground, Background or Orphan.
    pub propagation: Option<String>,
}

/// The options of a DELETE: from the body when it has one, else from the query.
/// `query_dry_run` holds every `dryRun` value of the query, repeats included. Errors are the
/// Status to answer: 400 for a query number, 422 for a dryRun value, 500 for a body that
/// does not decode.
pub fn options(q: &Query, query_dry_run: &[&str], body: &[u8]) -> Result<DeleteOptions, Value> {
    if body.is_empty() {
        let grace = query::int64(q, "gracePeriodSeconds").map_err(|e| {
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": e.0, "reason": "BadRequest", "code": 400})
        })?;
        let propagation = q.get("propagationPolicy").cloned();
        check_propagation(propagation.as_deref())?;
        return Ok(DeleteOptions {
            grace,
            preconditions: Preconditions::default(),
            dry_run: query::dry_run(query_dry_run, "DeleteOptions")?,
            propagation,
        });
    }
    let body: Body = decode(body)?;
    let pre = body.preconditions.unwrap_or_default();
    let dry: Vec<&str> = body.dry_run.iter().flatten().map(String::as_str).collect();
    check_propagation(body.propagation_policy.as_deref())?;
    Ok(DeleteOptions {
        grace: body.grace_period_seconds,
        preconditions: Preconditions {
            uid: pre.uid,
            resource_version: pre.resource_version,
        },
        dry_run: query::dry_run(&dry, "DeleteOptions")?,
        propagation: body.propagation_policy,
    })
}

/// ValidateDeleteOptions: a propagation policy is Foreground, Background or Orphan (422 with
/// the DeleteOptions kind otherwise).
fn check_propagation(policy: Option<&str>) -> Result<(), Value> {
    let Some(p) = policy else { return Ok(()) };
    if ["Foreground", "Background", "Orphan"].contains(&p) {
        return Ok(());
    }
    let message = format!(
        "Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
    );
    Err(
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: {message}"),
        "reason": "Invalid", "code": 422,
        "details": {"group": "meta.k8s.io", "kind": "DeleteOptions",
            "causes": [{"reason": "FieldValueNotSupported", "message": message, "field": "propagationPolicy"}]}}),
    )
}

/// The garbage collector's finalizer for a propagation policy: Foreground and Orphan deletion
/// leave the object with it until the collector has dealt with its dependents.
fn collector_finalizer(policy: Option<&str>) -> Option<&'static str> {
    match policy {
        Some("Foreground") => Some("foregroundDeletion"),
        Some("Orphan") => Some("orphan"),
        _ => None,
    }
}

/// The fields of a DeleteOptions body this API reads; others are ignored, as Go's decoder
/// ignores them.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    grace_period_seconds: Option<i64>,
    propagation_policy: Option<String>,
    preconditions: Option<BodyPreconditions>,
    dry_run: Option<Vec<String>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct BodyPreconditions {
    uid: Option<String>,
    resource_version: Option<String>,
}

/// A DeleteOptions body; one kube-apiserver cannot decode is its reason-less 500 (the
/// wording of the decoder's complaint is this decoder's).
fn decode(body: &[u8]) -> Result<Body, Value> {
    let internal = |message: String| {
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "code": 500})
    };
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| internal(format!("couldn't get version/kind; json parse error: {e}")))?;
    if !v.is_object() {
        return Err(internal(
            "couldn't get version/kind; json parse error: the body is not a JSON object".into(),
        ));
    }
    serde_path_to_error::deserialize(v)
        .map_err(|e| internal(format!("v1.DeleteOptions.{}: {}", e.path(), e.inner())))
}

fn failure(code: u16, reason: &str, message: String, details: Value) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "details": details, "code": code})
}

/// `group/resource` details of a Status about `name`.
pub fn details(res: &Resource, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": res.plural});
    if !res.group.is_empty() {
        d["group"] = json!(res.group);
    }
    d
}

/// The Status of a store error about `name` of `res`, as kube-apiserver words it.
pub fn store_status(e: StoreError, res: &Resource, name: &str) -> Value {
    let qualified = if res.group.is_empty() {
        res.plural.to_string()
    } else {
        format!("{}.{}", res.plural, res.group)
    };
    match e {
        StoreError::NotFound(_) => failure(
            404,
            "NotFound",
            format!("{qualified} {} not found", invalid::go_quote(name)),
            details(res, name),
        ),
        StoreError::AlreadyExists(_) => failure(
            409,
            "AlreadyExists",
            format!("{qualified} {} already exists", invalid::go_quote(name)),
            details(res, name),
        ),
        StoreError::Conflict(m) => failure(409, "Conflict", m, details(res, name)),
        StoreError::Invalid(m) => failure(422, "Invalid", m, details(res, name)),
        StoreError::Expired(m) => json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": m, "reason": "Expired", "code": 410}),
        StoreError::Internal(m) => json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": m, "code": 500}),
    }
}

/// `BeforeDelete`'s precondition check: 409 naming the kind, as upstream words it.
pub fn check_preconditions(
    res: &Resource,
    current: &Value,
    pre: &Preconditions,
) -> Result<(), Value> {
    let name = current
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let have = |f: &str| {
        current
            .pointer(&format!("/metadata/{f}"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let why = if let Some(uid) = pre.uid.as_deref().filter(|u| *u != have("uid")) {
        format!(
            "the UID in the precondition ({uid}) does not match the UID in record ({}). The object might have been deleted and then recreated",
            have("uid")
        )
    } else if let Some(rv) = pre
        .resource_version
        .as_deref()
        .filter(|v| *v != have("resourceVersion"))
    {
        format!(
            "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({}). The object might have been modified",
            have("resourceVersion")
        )
    } else {
        return Ok(());
    };
    let qualified = if res.group.is_empty() {
        res.kind.to_string()
    } else {
        format!("{}.{}", res.kind, res.group)
    };
    let mut d = json!({"name": name, "kind": res.kind});
    if !res.group.is_empty() {
        d["group"] = json!(res.group);
    }
    Err(failure(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {qualified} {}: {why}",
            invalid::go_quote(name)
        ),
        d,
    ))
}

/// A time `seconds` from `from`, as RFC 3339. Beyond what a timestamp can hold it stays at
/// the last second of year 9999 (Go wraps the nanoseconds around instead).
fn after(from: chrono::DateTime<chrono::Utc>, seconds: i64) -> String {
    let last = chrono::DateTime::<chrono::Utc>::from_timestamp(253_402_300_799, 0);
    let first = chrono::DateTime::<chrono::Utc>::from_timestamp(-62_135_596_800, 0);
    let at = chrono::TimeDelta::try_seconds(seconds)
        .and_then(|d| from.checked_add_signed(d))
        .or(if seconds < 0 { first } else { last })
        .unwrap_or(from);
    let at = match (first, last) {
        (Some(f), Some(l)) => at.clamp(f, l),
        _ => at,
    };
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// What `BeforeDelete` decides for a pod.
enum Graceful {
    /// Mark it (the object as marked); remove it too when its grace is 0.
    Mark(Value),
    /// A graceful deletion is already under way and stays as it is.
    Pending,
    /// Remove it now, unmarked.
    Now,
}

/// `rest.BeforeDelete` with the pod strategy's `CheckGracefulDelete`.
fn pod_graceful(current: &Value, grace: Option<i64>) -> Graceful {
    let meta = current.get("metadata");
    let deleting = meta.and_then(|m| m.get("deletionTimestamp"));
    let deleting_grace = meta
        .and_then(|m| m.get("deletionGracePeriodSeconds"))
        .and_then(Value::as_i64);
    let mut marked = current.clone();
    if let Some(since) = deleting {
        // Marked before: only a shorter grace changes anything. A mark with no time left (0,
        // or the negative grace a client asked for) is ended by the next delete, as
        // kube-apiserver 1.20 ends it.
        let Some(old) = deleting_grace.filter(|g| *g > 0) else {
            return Graceful::Now;
        };
        let Some(period) = grace else {
            return Graceful::Pending;
        };
        if period >= old {
            return Graceful::Pending;
        }
        let base = since
            .as_str()
            .and_then(parse_time)
            .unwrap_or_else(chrono::Utc::now);
        // deletionTimestamp - old grace + new grace, in checked steps.
        let start = after(base, old.checked_neg().unwrap_or(i64::MAX));
        let start = parse_time(&start).unwrap_or(base);
        marked["metadata"]["deletionTimestamp"] = json!(after(start, period));
        marked["metadata"]["deletionGracePeriodSeconds"] = json!(period);
        return Graceful::Mark(marked);
    }
    let mut period = grace
        .or_else(|| {
            current
                .pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(0);
    let on_node = current
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        current.pointer("/status/phase").and_then(Value::as_str),
        Some("Failed" | "Succeeded")
    );
    if !on_node || finished {
        period = 0;
    }
    if let Some(m) = marked.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert(
            "deletionTimestamp".into(),
            json!(after(chrono::Utc::now(), period)),
        );
        m.insert("deletionGracePeriodSeconds".into(), json!(period));
    }
    Graceful::Mark(marked)
}

/// Deletes `name` of `res` in `namespace` with `opts`; the answer's body, or a failure Status.
/// Namespaces follow their own lifecycle (see `namespaces::delete`); removing the last
/// object of a namespace being deleted finishes that namespace.
pub fn delete(
    store: &Store,
    res: &'static Resource,
    namespace: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Value, Value> {
    if res.plural == "namespaces" {
        return namespaces::delete(store, res, name, opts);
    }
    let (answer, removed) = remove(store, res, namespace, name, opts)?;
    if removed && !namespace.is_empty() {
        namespaces::content_removed(store, namespace);
    }
    Ok(answer)
}

/// `delete` of an object that is not a namespace, without looking at its namespace after.
pub fn delete_object(
    store: &Store,
    res: &'static Resource,
    namespace: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Value, Value> {
    remove(store, res, namespace, name, opts).map(|(answer, _)| answer)
}

/// The answer, and whether the object was removed from the store.
fn remove(
    store: &Store,
    res: &'static Resource,
    namespace: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<(Value, bool), Value> {
    let key = res.key();
    let current = store
        .get(&key, namespace, name)
        .map_err(|e| store_status(e, res, name))?;
    check_preconditions(res, &current, &opts.preconditions)?;
    let dry = opts.dry_run;
    let gc = collector_finalizer(opts.propagation.as_deref());
    // BeforeDelete: only pods delete gracefully; a graceful deletion under way that this one
    // does not shorten is answered as it is (finalizers cannot be changed by it either).
    let graceful = if res.plural == "pods" {
        match pod_graceful(&current, opts.grace) {
            Graceful::Pending => return Ok((with_finalizer(current, gc), false)),
            Graceful::Now => None,
            Graceful::Mark(marked) => Some(marked),
        }
    } else {
        None
    };
    let finalizers = has_finalizers(&current);
    // updateForGracefulDeletionAndFinalizers: the mark is written; the object stays while it
    // has finalizers or time left, else it is removed after the mark.
    let removed = match graceful {
        None if !finalizers => store.delete(&key, namespace, name, &opts.preconditions, dry),
        marked => {
            let (marked, grace) = match marked {
                Some(m) => {
                    let grace = m
                        .pointer("/metadata/deletionGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    (m, grace)
                }
                None => (mark_as_deleting(current), 0),
            };
            let marked = store
                .update(&key, namespace, name, marked, dry)
                .map_err(|e| store_status(e, res, name))?;
            // No time left (0, or a negative grace a client asked for) and no finalizer: removed
            // at once, as kube-apiserver 1.20 removes it, the answer showing the grace asked.
            // A dry run is answered with the marked object, as upstream answers it.
            if finalizers || grace > 0 || dry {
                return Ok((with_finalizer(marked, gc), false));
            }
            store.delete(&key, namespace, name, &Preconditions::default(), false)
        }
    };
    let gone = removed.map_err(|e| store_status(e, res, name))?;
    // Foreground and Orphan deletion answer the object marked for deletion and carrying the
    // garbage collector's finalizer. This control plane is also the collector, with no
    // dependents to wait for or orphan, so the object is gone at once (the finalizer shows
    // only in the answer).
    if gc.is_some() {
        return Ok((with_finalizer(gone, gc), !dry));
    }
    Ok((deleted_answer(res, name, gone), !dry))
}

/// Whether `obj` has `metadata.finalizers`: it is then only marked by a delete, and removed
/// when an update takes the last one away ([`removed_by_update`]).
pub fn has_finalizers(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

/// The registry's `markAsDeleting` for an object with finalizers that is not deleted
/// gracefully: `deletionTimestamp` now (unless an earlier one is set),
/// `deletionGracePeriodSeconds` 0, and the generation bumped on the first mark.
fn mark_as_deleting(mut obj: Value) -> Value {
    let now = after(chrono::Utc::now(), 0);
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let first = meta.get("deletionTimestamp").is_none_or(Value::is_null);
        if first
            && let Some(g) = meta
                .get("generation")
                .and_then(Value::as_i64)
                .filter(|g| *g > 0)
        {
            meta.insert("generation".into(), json!(g.saturating_add(1)));
        }
        let later = meta
            .get("deletionTimestamp")
            .and_then(Value::as_str)
            .and_then(parse_time)
            .is_none_or(|t| parse_time(&now).is_some_and(|n| t > n));
        if later {
            meta.insert("deletionTimestamp".into(), json!(now));
        }
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
    }
    obj
}

/// The answer of a Foreground or Orphan deletion: the object marked, with the collector's
/// finalizer `gc` (when there is one).
fn with_finalizer(mut obj: Value, gc: Option<&str>) -> Value {
    let Some(finalizer) = gc else { return obj };
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.entry("deletionTimestamp")
            .or_insert_with(|| json!(after(chrono::Utc::now(), 0)));
        meta.entry("deletionGracePeriodSeconds")
            .or_insert_with(|| json!(0));
        let list = meta.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut()
            && !list.iter().any(|f| f == finalizer)
        {
            list.push(json!(finalizer));
        }
    }
    obj
}

/// The registry's `shouldDeleteDuringUpdate`: an update that leaves no finalizer on an object
/// marked for deletion with no time left (`deletionGracePeriodSeconds` 0) removes it.
/// `current` is the stored object, `next` the one the update would store.
pub fn removed_by_update(current: &Value, next: &Value) -> bool {
    !has_finalizers(next)
        && has_finalizers(current)
        && current
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            == Some(0)
}

/// `rest.BeforeUpdate`'s rule for a write: an update can never remove or change a
/// `deletionTimestamp`, nor remove a `deletionGracePeriodSeconds`.
pub fn keep_deletion_marks(current: &Value, next: &mut Value) {
    let Some(meta) = next.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(t) = current.pointer("/metadata/deletionTimestamp") {
        meta.insert("deletionTimestamp".into(), t.clone());
    }
    if let Some(g) = current.pointer("/metadata/deletionGracePeriodSeconds")
        && !meta.contains_key("deletionGracePeriodSeconds")
    {
        meta.insert("deletionGracePeriodSeconds".into(), g.clone());
    }
}

/// The body of a successful delete: the object, or a Success Status naming it.
fn deleted_answer(res: &Resource, name: &str, gone: Value) -> Value {
    if RETURN_DELETED_OBJECT.contains(&res.plural) {
        return gone;
    }
    let mut d = details(res, name);
    if let Some(uid) = gone.pointer("/metadata/uid") {
        d["uid"] = uid.clone();
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_saturate_instead_of_overflowing() {
        let now = chrono::DateTime::<chrono::Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(after(now, 30), "2023-11-14T22:13:50Z");
        assert_eq!(after(now, -5), "2023-11-14T22:13:15Z");
        assert_eq!(after(now, i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(after(now, i64::MIN), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn pods_are_marked_then_removed_as_upstream_decides() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n", "terminationGracePeriodSeconds": 30}});
        let Graceful::Mark(m) = pod_graceful(&pod, None) else {
            panic!("marked")
        };
        assert_eq!(m["metadata"]["deletionGracePeriodSeconds"], 30);
        // Pending: a longer or equal grace changes nothing, a shorter one moves the time.
        assert!(matches!(pod_graceful(&m, None), Graceful::Pending));
        assert!(matches!(pod_graceful(&m, Some(30)), Graceful::Pending));
        let mut fixed = m.clone();
        fixed["metadata"]["deletionTimestamp"] = json!("2030-01-01T00:00:30Z");
        let Graceful::Mark(short) = pod_graceful(&fixed, Some(5)) else {
            panic!("shortened")
        };
        assert_eq!(
            short["metadata"]["deletionTimestamp"],
            "2030-01-01T00:00:05Z"
        );
        assert_eq!(short["metadata"]["deletionGracePeriodSeconds"], 5);
        // Unscheduled or finished pods go at once, marked with grace 0.
        let unscheduled =
            json!({"metadata": {"name": "p"}, "spec": {"terminationGracePeriodSeconds": 30}});
        let Graceful::Mark(u) = pod_graceful(&unscheduled, None) else {
            panic!("marked")
        };
        assert_eq!(u["metadata"]["deletionGracePeriodSeconds"], 0);
        let mut zero = m;
        zero["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        assert!(matches!(pod_graceful(&zero, None), Graceful::Now));
        // Huge graces do not overflow.
        let Graceful::Mark(h) = pod_graceful(&pod, Some(i64::MAX)) else {
            panic!("marked")
        };
        assert_eq!(h["metadata"]["deletionTimestamp"], "9999-12-31T23:59:59Z");
    }

    fn setup(obj: Value, plural: &str) -> (Store, &'static Resource) {
        let store = Store::starting_at(0);
        let res = crate::controlplane::resources::RESOURCES
            .iter()
            .find(|r| r.plural == plural)
            .unwrap();
        store.create(&res.key(), "ns", obj, false).unwrap();
        (store, res)
    }

    #[test]
    fn finalizers_keep_a_deleted_object_marked() {
        let cm = json!({"metadata": {"name": "c", "finalizers": ["x.io/keep"]}});
        let (store, res) = setup(cm, "configmaps");
        let opts = DeleteOptions::default();
        let answer = delete(&store, res, "ns", "c", &opts).unwrap();
        // The answer is the marked object, not a Status, and it is still there.
        assert_eq!(answer["metadata"]["deletionGracePeriodSeconds"], 0);
        assert!(answer["metadata"]["deletionTimestamp"].is_string());
        let kept = store.get("configmaps", "ns", "c").unwrap();
        assert_eq!(kept["metadata"]["finalizers"], json!(["x.io/keep"]));
        // A second delete writes nothing.
        let rv = store.resource_version();
        delete(&store, res, "ns", "c", &opts).unwrap();
        assert_eq!(store.resource_version(), rv);
        // An update taking the last finalizer away removes it; one keeping one does not.
        let mut next = kept.clone();
        next["metadata"]["finalizers"] = json!([]);
        assert!(removed_by_update(&kept, &next));
        assert!(!removed_by_update(&kept, &kept));
        // Without finalizers, a delete is at once.
        let (store, res) = setup(json!({"metadata": {"name": "c"}}), "configmaps");
        let answer = delete(&store, res, "ns", "c", &opts).unwrap();
        assert_eq!(answer["status"], "Success");
        assert!(store.get("configmaps", "ns", "c").is_err());
    }

    #[test]
    fn a_pod_with_finalizers_waits_for_its_grace_then_for_them() {
        let pod = json!({"metadata": {"name": "p", "finalizers": ["x.io/keep"]},
            "spec": {"nodeName": "n", "terminationGracePeriodSeconds": 30}});
        let (store, res) = setup(pod, "pods");
        let marked = delete(&store, res, "ns", "p", &DeleteOptions::default()).unwrap();
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);
        // Its finalizers gone while the grace runs, it is not removed by the update.
        let mut next = marked.clone();
        next["metadata"]["finalizers"] = json!(null);
        assert!(!removed_by_update(&marked, &next));
        // The kubelet's final delete leaves it while the finalizer remains.
        let last = DeleteOptions {
            grace: Some(0),
            ..DeleteOptions::default()
        };
        let answer = delete(&store, res, "ns", "p", &last).unwrap();
        assert_eq!(answer["metadata"]["deletionGracePeriodSeconds"], 0);
        let kept = store.get("pods", "ns", "p").unwrap();
        assert!(removed_by_update(&kept, &next));
        // Without finalizers the same final delete removes it.
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n"}});
        let (store, res) = setup(pod, "pods");
        delete(&store, res, "ns", "p", &last).unwrap();
        assert!(store.get("pods", "ns", "p").is_err());
    }

    #[test]
    fn options_come_from_the_body_when_there_is_one() {
        let q: Query = [("dryRun", "All"), ("gracePeriodSeconds", "abc")]
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        let from_body = options(&q, &["All"], b"{}").unwrap();
        assert_eq!(from_body, DeleteOptions::default());
        let bad = options(&q, &["All"], b"").unwrap_err();
        assert_eq!(bad["code"], 400);
        assert_eq!(
            bad["message"],
            "strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        let body =
            br#"{"gracePeriodSeconds": 0, "dryRun": ["All"], "preconditions": {"uid": "u"}}"#;
        let o = options(&Query::new(), &[], body).unwrap();
        assert_eq!(
            (o.grace, o.dry_run, o.preconditions.uid.as_deref()),
            (Some(0), true, Some("u"))
        );
        assert_eq!(
            options(&Query::new(), &[], br#"{"dryRun": ["Bad"]}"#).unwrap_err()["code"],
            422
        );
        for undecodable in [
            &b"not json"[..],
            b"[1]",
            br#"{"dryRun": "All"}"#,
            br#"{"gracePeriodSeconds": 1.5}"#,
            br#"{"preconditions": {"uid": 5}}"#,
        ] {
            let st = options(&Query::new(), &[], undecodable).unwrap_err();
            assert_eq!(st["code"], 500);
            assert!(st.get("reason").is_none());
        }
        // Fields it does not read are ignored, as upstream's decoder ignores them.
        assert!(
            options(
                &Query::new(),
                &[],
                br#"{"metadata": {"name": "x"}, "gracePeriodSeconds": null}"#
            )
            .is_ok()
        );
    }
}
