//! The namespace lifecycle: what kube-apiserver's namespace registry and NamespaceLifecycle
//! admission do (pkg/registry/core/namespace, plugin/pkg/admission/namespace/lifecycle), and,
//! since this control plane is the whole cluster, what kube-controller-manager's namespace
//! controller does (pkg/controller/namespace/deletion).
//!
//! - A new namespace is `status.phase: Active` with `spec.finalizers` holding `kubernetes`.
//! - Creating a namespaced object in a namespace that does not exist is 404; in one being
//!   deleted, 403.
//! - Deleting a namespace marks it (`deletionTimestamp`, `status.phase: Terminating`) and
//!   answers it; then its content is deleted as a client would delete it (pods gracefully:
//!   one on a node stays until its kubelet removes it), and once nothing is left the
//!   `kubernetes` finalizer is taken off and the namespace removed. The controller's
//!   `status.conditions` are not written.
//! - The system namespaces cannot be deleted.

use serde_json::{Value, json};

use super::api::NAMESPACES;
use super::delete::{self, DeleteOptions};
use super::invalid::{self, BadValue, FieldError};
use super::resources::{RESOURCES, Resource};
use super::store::{Preconditions, Store};

/// The finalizer the namespace controller owns (`v1.FinalizerKubernetes`).
pub const FINALIZER: &str = "kubernetes";

fn phase(ns: &Value) -> Option<&str> {
    ns.pointer("/status/phase").and_then(Value::as_str)
}

fn failure(code: u16, reason: &str, message: String, details: Value) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "details": details, "code": code})
}

/// NamespaceLifecycle admission of a create of `obj` (a `res`) in `namespace`: 404 when the
/// namespace does not exist, 403 when it is being deleted.
pub fn admit_create(
    store: &Store,
    res: &Resource,
    namespace: &str,
    obj: &Value,
) -> Result<(), Value> {
    if !res.namespaced || namespace.is_empty() {
        return Ok(());
    }
    let Ok(ns) = store.get("namespaces", "", namespace) else {
        return Err(failure(
            404,
            "NotFound",
            format!("namespaces {} not found", invalid::go_quote(namespace)),
            json!({"name": namespace, "kind": "namespaces"}),
        ));
    };
    if phase(&ns) != Some("Terminating") {
        return Ok(());
    }
    // Admission sees the name the client gave, or its generateName.
    let name = ["/metadata/name", "/metadata/generateName"]
        .iter()
        .filter_map(|p| obj.pointer(p).and_then(Value::as_str))
        .find(|n| !n.is_empty())
        .unwrap_or("");
    let qualified = if res.group.is_empty() {
        res.plural.to_string()
    } else {
        format!("{}.{}", res.plural, res.group)
    };
    let mut details = delete::details(res, name);
    details["causes"] = json!([{"reason": "NamespaceTerminating",
        "message": format!("namespace {namespace} is being terminated"), "field": "metadata.namespace"}]);
    Err(failure(
        403,
        "Forbidden",
        format!(
            "{qualified} {} is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
            invalid::go_quote(name)
        ),
        details,
    ))
}

/// The namespace strategy's `PrepareForCreate`: the status is the server's (Active), and
/// `spec.finalizers` gains `kubernetes`.
pub fn prepare_create(ns: &mut Value) {
    let Some(o) = ns.as_object_mut() else { return };
    o.insert("status".into(), json!({"phase": "Active"}));
    let spec = o.entry("spec").or_insert_with(|| json!({}));
    if !spec.is_object() {
        *spec = json!({});
    }
    let finalizers = spec
        .as_object_mut()
        .map(|s| s.entry("finalizers").or_insert_with(|| json!([])));
    if let Some(list) = finalizers {
        if !list.is_array() {
            *list = json!([]);
        }
        if let Some(items) = list.as_array_mut()
            && !items.iter().any(|f| f == FINALIZER)
        {
            items.push(json!(FINALIZER));
        }
    }
}

/// The namespace strategies' `PrepareForUpdate` and status validation: an update keeps
/// `spec.finalizers` (only the namespace controller's finalize takes them off); a status
/// update must keep the phase consistent with `deletionTimestamp` (422 otherwise).
pub fn prepare_update(current: &Value, next: &mut Value, status_write: bool) -> Result<(), Value> {
    if let Some(o) = next.as_object_mut()
        && let Some(f) = current.pointer("/spec/finalizers")
        && let Some(s) = o.entry("spec").or_insert_with(|| json!({})).as_object_mut()
    {
        s.insert("finalizers".into(), f.clone());
    }
    if !status_write {
        return Ok(());
    }
    let deleting = next.pointer("/metadata/deletionTimestamp").is_some();
    let p = phase(next).unwrap_or("");
    let problem = match (deleting, p) {
        (false, "Active") | (true, "Terminating") => return Ok(()),
        (false, _) => "may only be 'Active' if `deletionTimestamp` is empty",
        (true, _) => "may only be 'Terminating' if `deletionTimestamp` is not empty",
    };
    let name = next
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    Err(invalid::status(
        "",
        "Namespace",
        name,
        &[FieldError::invalid(
            "status.Phase",
            BadValue::Str(p.to_string()),
            problem,
        )],
    ))
}

/// DELETE of a namespace (`namespace/storage.REST.Delete`): the first marks it Terminating
/// and starts removing its content; later ones answer it as it is while finalizers remain.
pub fn delete(
    store: &Store,
    res: &'static Resource,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Value, Value> {
    if NAMESPACES.contains(&name) {
        return Err(failure(
            403,
            "Forbidden",
            format!(
                "namespaces {} is forbidden: this namespace may not be deleted",
                invalid::go_quote(name)
            ),
            json!({"name": name, "kind": "namespaces"}),
        ));
    }
    let current = store
        .get("namespaces", "", name)
        .map_err(|e| delete::store_status(e, res, name))?;
    let have = |f: &str| {
        current
            .pointer(&format!("/metadata/{f}"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let conflict = |why: String| {
        failure(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on namespaces {}: {why}",
                invalid::go_quote(name)
            ),
            json!({"name": name, "kind": "namespaces"}),
        )
    };
    let pre = &opts.preconditions;
    if let Some(uid) = pre.uid.as_deref().filter(|u| *u != have("uid")) {
        return Err(conflict(format!(
            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
            have("uid")
        )));
    }
    if let Some(rv) = pre
        .resource_version
        .as_deref()
        .filter(|v| *v != have("resourceVersion"))
    {
        return Err(conflict(format!(
            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
            have("resourceVersion")
        )));
    }
    if current.pointer("/metadata/deletionTimestamp").is_none() {
        let mut marked = current;
        marked["metadata"]["deletionTimestamp"] =
            json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
        marked["status"]["phase"] = json!("Terminating");
        let marked = store
            .update("namespaces", "", name, marked, opts.dry_run)
            .map_err(|e| delete::store_status(e, res, name))?;
        if !opts.dry_run {
            sweep(store, name);
        }
        return Ok(marked);
    }
    let finalizers_left = current
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if finalizers_left {
        return Ok(current);
    }
    store
        .delete("namespaces", "", name, pre, opts.dry_run)
        .map_err(|e| delete::store_status(e, res, name))
}

/// Called after an object in `namespace` was removed: a namespace being deleted is finished
/// once its last object is gone.
pub fn content_removed(store: &Store, namespace: &str) {
    let terminating = store
        .get("namespaces", "", namespace)
        .is_ok_and(|ns| phase(&ns) == Some("Terminating"));
    if terminating {
        sweep(store, namespace);
    }
}

/// The namespace controller's pass over a namespace being deleted: deletes what is in it (as
/// a client would, so pods on a node wait for their kubelet), and when nothing is left,
/// removes the `kubernetes` finalizer; with no finalizer left the namespace goes.
fn sweep(store: &Store, namespace: &str) {
    for (key, name) in store.contents(namespace) {
        let Some(res) = RESOURCES.iter().find(|r| r.key() == key) else {
            continue;
        };
        // Gone meanwhile, or waiting for its kubelet: either is fine here.
        let _ = delete::delete_object(store, res, namespace, &name, &DeleteOptions::default());
    }
    if !store.contents(namespace).is_empty() {
        return;
    }
    let Ok(mut ns) = store.get("namespaces", "", namespace) else {
        return;
    };
    let left: Vec<Value> = ns
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter(|f| *f != FINALIZER).cloned().collect())
        .unwrap_or_default();
    if left.is_empty() {
        // Finalized and deleted in one step, as the registry deletes a namespace whose last
        // finalizer an update removes.
        let _ = store.delete(
            "namespaces",
            "",
            namespace,
            &Preconditions::default(),
            false,
        );
        return;
    }
    let has_ours = ns
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER));
    if has_ours {
        ns["spec"]["finalizers"] = Value::Array(left);
        let _ = store.update("namespaces", "", namespace, ns, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_namespaces_are_active_with_the_kubernetes_finalizer() {
        let mut ns = json!({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}});
        prepare_create(&mut ns);
        assert_eq!(ns["status"], json!({"phase": "Active"}));
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        let mut custom = json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["x.io/y"]}});
        prepare_create(&mut custom);
        assert_eq!(
            custom["spec"]["finalizers"],
            json!(["x.io/y", "kubernetes"])
        );
    }

    #[test]
    fn updates_keep_finalizers_and_a_consistent_phase() {
        let current = json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        let mut next = json!({"metadata": {"name": "a"}, "spec": {"finalizers": []}, "status": {"phase": "Active"}});
        prepare_update(&current, &mut next, false).unwrap();
        assert_eq!(next["spec"]["finalizers"], json!(["kubernetes"]));
        next["status"]["phase"] = json!("Terminating");
        let st = prepare_update(&current, &mut next, true).unwrap_err();
        assert_eq!(
            st["message"],
            "Namespace \"a\" is invalid: status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"
        );
    }
}
