//! The node's static pods: the manifests in the kubelet's static pod directory.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;

use super::rootfs::{FileKind, FsError, RootFs};

/// One manifest file: its pods, or why it could not be read.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file's host path.
    pub file: PathBuf,
    pub pods: Result<Vec<Pod>, String>,
}

/// Reads every manifest the kubelet would read from `dir`: regular files not starting with a
/// dot, each YAML (one or more documents) or JSON.
pub fn read(root: &RootFs, dir: &Path) -> Result<Vec<Manifest>, FsError> {
    let mut out = Vec::new();
    for name in root.read_dir(dir)? {
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let file = dir.join(&name);
        if !root.metadata(&file).is_ok_and(|m| m.is_file) {
            continue;
        }
        let pods = root
            .read_to_string(&file, FileKind::Config)
            .map_err(|e| e.reason().to_string())
            .and_then(|text| parse(&text));
        out.push(Manifest { file, pods });
    }
    Ok(out)
}

/// Parses a manifest; errors give the line and column.
pub fn parse(text: &str) -> Result<Vec<Pod>, String> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(text).map_err(|e| {
        e.without_snippet()
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    })?;
    let mut pods = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let kind = doc.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        if kind != "Pod" {
            return Err(format!(
                "document {}: kind {kind:?}, a static pod manifest holds kind Pod",
                i + 1
            ));
        }
        let pod: Pod = serde_path_to_error::deserialize(doc)
            .map_err(|e| format!("document {}: {}: {}", i + 1, e.path(), e.inner()))?;
        pods.push(pod);
    }
    if pods.is_empty() {
        return Err("no pod in the file".into());
    }
    Ok(pods)
}

/// Control-plane components run privileged by design (host network, host paths).
pub fn is_control_plane(pod: &Pod) -> bool {
    const COMPONENTS: &[&str] = &[
        "kube-apiserver",
        "etcd",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
    ];
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let component = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("component"))
        .map(String::as_str);
    COMPONENTS
        .iter()
        .any(|c| name == *c || name.starts_with(&format!("{c}-")) || component == Some(*c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_multi_document_and_json() {
        let two = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n---\n\
                   apiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {containers: [{name: c}]}\n";
        assert_eq!(parse(two).unwrap().len(), 2);
        let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"},"spec":{"containers":[{"name":"c"}]}}"#;
        assert_eq!(parse(json).unwrap()[0].metadata.name.as_deref(), Some("j"));
    }

    #[test]
    fn errors_say_where() {
        let e = parse("apiVersion: v1\nkind: Pod\nspec:\n  containers: [\n").unwrap_err();
        assert!(e.contains("line"), "{e}");
        let e = parse("kind: Deployment\n").unwrap_err();
        assert!(e.contains("kind \"Deployment\""), "{e}");
        let e = parse("kind: Pod\nspec:\n  containers: 5\n").unwrap_err();
        assert!(e.contains("spec.containers"), "{e}");
        assert!(parse("").unwrap_err().contains("no pod"));
    }

    #[test]
    fn control_plane_by_name_or_label() {
        let p = |y: &str| parse(y).unwrap().remove(0);
        assert!(is_control_plane(&p(
            "kind: Pod\nmetadata: {name: kube-apiserver}\n"
        )));
        assert!(is_control_plane(&p(
            "kind: Pod\nmetadata: {name: x, labels: {component: etcd}}\n"
        )));
        assert!(!is_control_plane(&p(
            "kind: Pod\nmetadata: {name: fluentd}\n"
        )));
        assert!(!is_control_plane(&p(
            "kind: Pod\nmetadata: {name: etcdviewer}\n"
        )));
    }
}
