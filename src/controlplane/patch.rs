//! Strategic merge patch, to the extent clients of a node send it: lists of objects merge by
//! their merge key, `$patch: replace|delete`, `$retainKeys`, `$deleteFromPrimitiveList` and
//! `$setElementOrder` (the merged list takes the order it gives).

use serde_json::{Map, Value};

/// The merge key of the lists the kubelet and kubectl patch (from the Kubernetes types'
/// `patchMergeKey` tags).
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "conditions" | "addresses" => Some("type"),
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "volumeMounts"
        | "containerStatuses"
        | "initContainerStatuses"
        | "ephemeralContainerStatuses"
        | "imagePullSecrets" => Some("name"),
        "ports" => Some("containerPort"),
        "podIPs" | "hostIPs" => Some("ip"),
        "ownerReferences" => Some("uid"),
        "images" => None,
        _ => None,
    }
}

/// Applies a strategic merge patch to `target`.
pub fn strategic(target: &mut Value, patch: &Value) -> Result<(), String> {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = Value::Object(strip(p));
        return Ok(());
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(t) = target.as_object_mut() else {
        return Ok(());
    };
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(gone)) = (t.get_mut(field), v) {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        match v {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(_) if v.get("$patch").and_then(Value::as_str) == Some("delete") => {
                t.remove(k);
            }
            Value::Object(_) => strategic(t.entry(k.clone()).or_insert(Value::Null), v)?,
            Value::Array(items) => {
                let merged = match (merge_key(k), t.get(k)) {
                    (Some(key), Some(Value::Array(current))) => merge_list(current, items, key)?,
                    _ => items
                        .iter()
                        .filter(|i| i.get("$patch").is_none())
                        .map(strip_value)
                        .collect(),
                };
                t.insert(k.clone(), Value::Array(merged));
            }
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
    for (k, order) in p {
        if let (Some(field), Value::Array(order)) = (k.strip_prefix("$setElementOrder/"), order)
            && let Some(Value::Array(list)) = t.get_mut(field)
        {
            let key = merge_key(field);
            let rank = |item: &Value| {
                order.iter().position(|o| match key {
                    Some(key) => o.get(key).is_some() && o.get(key) == item.get(key),
                    None => o == item,
                })
            };
            // Stable: what the order does not name keeps its place relative to the rest, after.
            list.sort_by_key(|item| rank(item).unwrap_or(usize::MAX));
        }
    }
    if let Some(Value::Array(keep)) = p.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(())
}

fn strip(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| (k.clone(), strip_value(v)))
        .collect()
}

fn strip_value(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(strip(m)),
        other => other.clone(),
    }
}

fn merge_list(current: &[Value], patch: &[Value], key: &str) -> Result<Vec<Value>, String> {
    if patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .map(strip_value)
            .collect());
    }
    let mut out: Vec<Value> = current.to_vec();
    for item in patch {
        let Some(id) = item.get(key) else {
            return Err(format!("a list element lacks its merge key {key:?}"));
        };
        let pos = out.iter().position(|c| c.get(key) == Some(id));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic(&mut out[i], item)?,
            (None, false) => out.push(strip_value(item)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_status_heartbeat() {
        let mut node = json!({"metadata": {"name": "n1", "labels": {"a": "1"}}, "status": {
            "conditions": [{"type": "Ready", "status": "False", "reason": "Starting"}, {"type": "MemoryPressure", "status": "False"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}});
        let patch = json!({"metadata": {"labels": {"b": "2"}}, "status": {
            "$setElementOrder/conditions": [{"type": "MemoryPressure"}, {"type": "Ready"}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "addresses": [{"$patch": "replace"}, {"type": "Hostname", "address": "n1"}]}});
        strategic(&mut node, &patch).unwrap();
        assert_eq!(node["metadata"]["labels"], json!({"a": "1", "b": "2"}));
        let ready = node["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("True"), Some("KubeletReady"))
        );
        assert_eq!(node["status"]["conditions"].as_array().unwrap().len(), 2);
        assert_eq!(
            node["status"]["addresses"],
            json!([{"type": "Hostname", "address": "n1"}])
        );
        assert!(node["status"].get("$setElementOrder/conditions").is_none());
        let types: Vec<&str> = node["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            ["MemoryPressure", "Ready"],
            "the order $setElementOrder gives"
        );
    }

    #[test]
    fn set_element_order_of_primitives_keeps_the_unnamed_after() {
        let mut pod = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
        let patch = json!({"metadata": {"$setElementOrder/finalizers": ["c", "a"]}});
        strategic(&mut pod, &patch).unwrap();
        assert_eq!(pod["metadata"]["finalizers"], json!(["c", "a", "b"]));
    }

    #[test]
    fn directives() {
        let mut pod = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}],
            "finalizers": ["f1", "f2"], "strategy": {"type": "Recreate", "rollingUpdate": {"x": 1}}}});
        strategic(
            &mut pod,
            &json!({"spec": {
            "containers": [{"name": "a", "$patch": "delete"}, {"name": "c", "image": "z"}],
            "$deleteFromPrimitiveList/finalizers": ["f1"],
            "strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        )
        .unwrap();
        let names: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["b", "c"]);
        assert_eq!(pod["spec"]["finalizers"], json!(["f2"]));
        assert_eq!(pod["spec"]["strategy"], json!({"type": "Recreate"}));
        strategic(
            &mut pod,
            &json!({"spec": {"strategy": null, "nodeName": "n1"}}),
        )
        .unwrap();
        assert!(pod["spec"].get("strategy").is_none());
        assert_eq!(pod["spec"]["nodeName"], "n1");
        assert!(
            strategic(
                &mut pod,
                &json!({"spec": {"containers": [{"image": "no-name"}]}})
            )
            .is_err()
        );
    }
}
