//! What a run that died without cleaning up (SIGKILL, the OOM killer, `docker kill`, a reboot)
//! left on the node, found and removed by the next run.
//!
//! Every run holds an abstract Unix socket named after its run id for as long as its process
//! lives: the kernel releases it however the process ends, so a run whose name can be bound
//! again is dead, and what carries its id (Docker containers and images with the run label,
//! static pod files, the workload directory, a managed kubelet's work dir, its pods) is
//! removed. Runs share the name space through the host's network namespace
//! (`docker run --net=host`, as documented); a harness in a network namespace of its own sees
//! no other run as alive, so it leaves the node's other network namespaces' runs alone only
//! when they are labelled by a run it can see.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};

/// This run, held alive in the abstract socket name space until the process ends.
#[derive(Debug)]
pub struct RunLock {
    _socket: UnixListener,
}

fn name(run_id: &str) -> std::io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(format!("node-conformance/run/{run_id}").as_bytes())
}

/// Marks `run_id` as alive for as long as the returned lock lives (the whole run).
pub fn hold(run_id: &str) -> std::io::Result<RunLock> {
    Ok(RunLock {
        _socket: UnixListener::bind_addr(&name(run_id)?)?,
    })
}

/// Whether the run `run_id` is still running (its name is held): a name that cannot even be
/// tried counts as alive, so nothing is removed on a guess.
pub fn is_alive(run_id: &str) -> bool {
    name(run_id)
        .and_then(|n| UnixListener::bind_addr(&n))
        .is_err()
}

/// A run id as it appears in names: lowercase hex.
fn run_id_in(name: &str, prefix: &str, suffix: &str) -> Option<String> {
    let rest = name.strip_prefix(prefix)?;
    let end = rest.find(suffix)?;
    let id = &rest[..end];
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
}

/// The dead runs' files in the static pod directory (a local path): their static pod
/// manifests (`node-conformance-<id>-static-pod-*.yaml`) and workload directories
/// (`.node-conformance-<id>`). Removes them; one line each.
pub fn static_pod_dir(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let id = run_id_in(&name, "node-conformance-", "-static-pod-")
            .or_else(|| run_id_in(&format!("{name}/"), ".node-conformance-", "/"));
        let Some(id) = id.filter(|id| !is_alive(id)) else {
            continue;
        };
        let path = e.path();
        let gone = if e.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        lines.push(match gone {
            Ok(()) => format!(
                "removed {} (left by run {id}, no longer running)",
                path.display()
            ),
            Err(err) => format!(
                "could not remove {} (left by run {id}): {err}",
                path.display()
            ),
        });
    }
    lines
}

/// A dead run's managed kubelet work dir: `/var/tmp/node-conformance-<id>` (node paths), with
/// the run id.
pub fn dead_work_dirs(host: &super::kubelet::Host) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(host.local(Path::new("/var/tmp"))) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = run_id_in(&format!("{name}/"), "node-conformance-", "/")?;
            (!is_alive(&id)).then(|| (id, Path::new("/var/tmp").join(name)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_run_is_alive_and_a_released_one_is_not() {
        let id = format!("ab{:x}", std::process::id());
        assert!(!is_alive(&id));
        let lock = hold(&id).unwrap();
        assert!(is_alive(&id));
        drop(lock);
        assert!(!is_alive(&id));
    }

    #[test]
    fn only_dead_runs_files_are_removed_from_the_static_pod_dir() {
        let dir = tempfile::tempdir().unwrap();
        let live = format!("cd{:x}", std::process::id());
        let _lock = hold(&live).unwrap();
        let dead = "deadbeef1";
        let files = [
            format!("node-conformance-{dead}-static-pod-1.yaml"),
            format!("node-conformance-{live}-static-pod-2.yaml"),
            "kube-apiserver.yaml".to_string(),
            "node-conformance-notes.yaml".to_string(),
        ];
        for f in &files {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join(format!(".node-conformance-{dead}"))).unwrap();
        std::fs::write(
            dir.path()
                .join(format!(".node-conformance-{dead}/node-conformance")),
            "bin",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join(format!(".node-conformance-{live}"))).unwrap();
        let lines = static_pod_dir(dir.path());
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines.iter().all(|l| l.contains(dead)), "{lines:?}");
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = vec![
            format!(".node-conformance-{live}"),
            "kube-apiserver.yaml".to_string(),
            format!("node-conformance-{live}-static-pod-2.yaml"),
            "node-conformance-notes.yaml".to_string(),
        ];
        want.sort();
        assert_eq!(left, want);
    }
}
