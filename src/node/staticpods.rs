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

/// The most YAML nodes (mappings, sequences and scalars, aliases expanded) one manifest may
/// hold. A kubeadm kube-apiserver manifest holds about 300; each node costs the harness up to a
/// few hundred bytes once parsed into a pod.
pub const MANIFEST_NODES: usize = 20_000;

/// The most YAML nodes, and bytes, the manifests of one directory may hold together; the
/// manifests past either are reported as not read. A kubeadm control-plane node's four hold
/// about 1,200 nodes in 12 KiB; twenty add-ons beside them, about 6,000 more.
pub const DIRECTORY_NODES: usize = 30_000;
pub const DIRECTORY_BYTES: u64 = 4 << 20;

/// Reads every manifest the kubelet would read from `dir`: regular files not starting with a
/// dot, each YAML (one or more documents) or JSON, in the kubelet's order (by name). Each is at
/// most [`FileKind::Manifest`]'s cap and [`MANIFEST_NODES`]; together at most
/// [`DIRECTORY_NODES`] and [`DIRECTORY_BYTES`], so what a node holds cannot exhaust the
/// harness's memory.
pub fn read(root: &RootFs, dir: &Path) -> Result<Vec<Manifest>, FsError> {
    let mut out = Vec::new();
    let mut names = root.read_dir(dir)?;
    names.sort();
    let (mut nodes, mut bytes) = (0usize, 0u64);
    for name in names {
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let file = dir.join(&name);
        let Ok(meta) = root.metadata(&file) else {
            continue;
        };
        if !meta.is_file {
            continue;
        }
        let over = if nodes >= DIRECTORY_NODES {
            Some(format!("{DIRECTORY_NODES} YAML nodes"))
        } else if bytes.saturating_add(meta.size) > DIRECTORY_BYTES {
            Some(format!("{} MiB", DIRECTORY_BYTES >> 20))
        } else {
            None
        };
        if let Some(over) = over {
            out.push(Manifest {
                file,
                pods: Err(format!(
                    "not read: the directory's manifests before it already hold {over}, more \
                     than a static pod directory can hold in reason"
                )),
            });
            continue;
        }
        let pods = root
            .read_to_string(&file, FileKind::Manifest)
            .map_err(|e| e.reason().to_string())
            .and_then(|text| {
                bytes += text.len() as u64;
                let left = DIRECTORY_NODES - nodes;
                let (pods, used) = if left < MANIFEST_NODES {
                    parse_within(&text, left, || {
                        format!(
                            "not read: with the directory's manifests before it, more than \
                             {DIRECTORY_NODES} YAML nodes, more than a static pod directory can \
                             hold in reason"
                        )
                    })?
                } else {
                    parse_within(&text, MANIFEST_NODES, too_many_nodes)?
                };
                nodes += used;
                Ok(pods)
            });
        out.push(Manifest { file, pods });
    }
    Ok(out)
}

/// Parses a manifest; errors give the line and column.
pub fn parse(text: &str) -> Result<Vec<Pod>, String> {
    parse_within(text, MANIFEST_NODES, too_many_nodes).map(|(pods, _)| pods)
}

fn too_many_nodes() -> String {
    format!(
        "not read: more than {MANIFEST_NODES} YAML nodes (aliases expanded), more than a pod \
         manifest can hold in reason"
    )
}

/// Parses a manifest of at most `limit` YAML nodes; gives its pods and how many nodes it held.
/// Over the limit, the error is `over()`.
fn parse_within(
    text: &str,
    limit: usize,
    over: impl FnOnce() -> String,
) -> Result<(Vec<Pod>, usize), String> {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_str_multiple_with_options(text, super::yaml::options(limit))
            .map_err(|e| super::yaml::error(&e, over))?;
    let used = docs.iter().map(count_nodes).sum();
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
    Ok((pods, used))
}

/// The nodes of a parsed document, as the parser's budget counts them.
fn count_nodes(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(m) => m.values().map(|v| 1 + count_nodes(v)).sum(),
        _ => 0,
    }
}

/// The components a node runs as static pods that are privileged by design (host network, host
/// paths): kubeadm's control plane and etcd, and kube-proxy where a node runs it from a file.
pub const COMPONENTS: &[&str] = &[
    "kube-apiserver",
    "etcd",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
];

/// The component of [`COMPONENTS`] a static pod runs, told by what it runs: the program its
/// first container's command starts (kubeadm's `ComponentPod` and its manifests, cmd/kubeadm/
/// app/phases/controlplane and etcd: one container whose command begins with the component's
/// binary, `kube-apiserver` or `/usr/local/bin/kube-apiserver`; hyperkube's `hyperkube
/// kube-apiserver` and `hyperkube apiserver` too). The pod's name and labels do not decide:
/// `etcd-backup` running `etcdctl` is no etcd, and a pod named `kube-apiserver` running a shell
/// is no API server. A container without a command runs its image's entrypoint, which the
/// manifest does not show: `None`.
pub fn component(pod: &Pod) -> Option<&'static str> {
    let container = pod.spec.as_ref()?.containers.first()?;
    let mut words = container.command.iter().flatten();
    let program = words.next()?;
    let base = program.rsplit('/').next().unwrap_or(program);
    let name = if base == "hyperkube" {
        let sub = words.next()?;
        match sub.as_str() {
            "apiserver" => "kube-apiserver",
            "controller-manager" => "kube-controller-manager",
            "scheduler" => "kube-scheduler",
            "proxy" => "kube-proxy",
            other => other,
        }
    } else {
        base
    };
    COMPONENTS.iter().copied().find(|c| *c == name)
}

/// Whether the pod runs a control-plane component ([`component`]).
pub fn is_control_plane(pod: &Pod) -> bool {
    component(pod).is_some()
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

    fn containers(name: &str, n: usize) -> String {
        let list: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"name":"c{i}","image":"i"}}"#))
            .collect();
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"containers":[{}]}}}}"#,
            list.join(",")
        )
    }

    #[test]
    fn a_manifest_of_too_many_nodes_is_not_read() {
        // Five nodes a container: the mapping, two keys, two values.
        assert!(parse(&containers("fits", MANIFEST_NODES / 5 - 10)).is_ok());
        let e = parse(&containers("over", MANIFEST_NODES / 5 + 10)).unwrap_err();
        assert!(e.starts_with("not read: more than 20000 YAML nodes"), "{e}");
        // Aliases count as what they expand to: 10 bytes a container.
        let bomb = format!(
            "kind: Pod\nmetadata: {{name: b}}\nspec:\n  containers:\n  - &c {{name: c, image: i}}\n{}",
            "  - *c\n".repeat(MANIFEST_NODES)
        );
        let e = parse(&bomb).unwrap_err();
        assert!(e.starts_with("not read: more than"), "{e}");
    }

    #[test]
    fn a_directory_holds_a_bounded_number_of_nodes_in_the_kubelets_order() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("manifests");
        std::fs::create_dir(&dir).unwrap();
        let each = MANIFEST_NODES / 5 - 10;
        for name in ["c", "a", "b"] {
            std::fs::write(dir.join(format!("{name}.json")), containers(name, each)).unwrap();
        }
        std::fs::write(dir.join("d.yaml"), "kind: Pod\nmetadata: {name: d}\n").unwrap();
        let root = RootFs::open(t.path()).unwrap();
        let read = read(&root, Path::new("/manifests")).unwrap();
        let names: Vec<String> = read.iter().map(|m| m.file.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "/manifests/a.json",
                "/manifests/b.json",
                "/manifests/c.json",
                "/manifests/d.yaml"
            ]
        );
        assert!(read[0].pods.is_ok());
        for m in &read[1..3] {
            let e = m.pods.as_ref().unwrap_err();
            assert!(e.contains("more than 30000 YAML nodes"), "{e}");
        }
        // What still fits is read.
        assert!(read[3].pods.is_ok());
    }

    #[test]
    fn a_manifest_reads_as_the_kubelet_reads_it() {
        // YAML 1.1, as the kubelet's file source decodes it: octal modes, yes/no booleans.
        let pod = parse(
            "kind: Pod\nmetadata: {name: a}\nspec:\n  hostNetwork: yes\n  containers: [{name: c}]\n\
             \x20 volumes: [{name: s, secret: {secretName: s, defaultMode: 0644}}]\n",
        )
        .unwrap()
        .remove(0);
        let spec = pod.spec.unwrap();
        assert_eq!(spec.host_network, Some(true));
        let mode = spec.volumes.unwrap()[0]
            .secret
            .as_ref()
            .and_then(|s| s.default_mode);
        assert_eq!(mode, Some(420));
    }

    #[test]
    fn control_plane_by_what_it_runs() {
        let p = |y: &str| parse(y).unwrap().remove(0);
        let runs = |name: &str, command: &str| {
            p(&format!(
                "kind: Pod\nmetadata: {{name: {name}}}\nspec: {{containers: [{{name: c, command: {command}}}]}}\n"
            ))
        };
        assert_eq!(
            component(&runs(
                "kube-apiserver",
                "[kube-apiserver, --secure-port=6443]"
            )),
            Some("kube-apiserver")
        );
        assert_eq!(
            component(&runs(
                "x",
                "[/usr/local/bin/etcd, --data-dir=/var/lib/etcd]"
            )),
            Some("etcd")
        );
        assert_eq!(
            component(&runs("m", "[/hyperkube, controller-manager]")),
            Some("kube-controller-manager")
        );
        assert_eq!(
            component(&runs("m", "[hyperkube, kube-scheduler]")),
            Some("kube-scheduler")
        );
        // Names and labels do not make a component.
        assert!(!is_control_plane(&runs(
            "etcd-backup",
            "[etcdctl, snapshot, save]"
        )));
        assert!(!is_control_plane(&runs(
            "kube-apiserver",
            "[sh, -c, sleep 1]"
        )));
        assert!(!is_control_plane(&p(
            "kind: Pod\nmetadata: {name: x, labels: {component: etcd}}\nspec: {containers: [{name: c, command: [nginx]}]}\n"
        )));
        assert!(!is_control_plane(&p(
            "kind: Pod\nmetadata: {name: kube-apiserver}\n"
        )));
        assert!(!is_control_plane(&runs("etcdviewer", "[etcdviewer]")));
        assert!(!is_control_plane(&runs("h", "[hyperkube]")));
    }
}
