//! What a run that died without cleaning up (SIGKILL, the OOM killer, `docker kill`, a reboot)
//! left on the node, found and removed by the next run.
//!
//! Every run holds an abstract Unix socket named after its run id for as long as its process
//! lives: the kernel releases it however the process ends, so a run whose name can be bound
//! again is dead, and what carries its id (Docker containers and images with the run label,
//! static pod files, the workload directory, a run's directory and its kubelet's pods) is
//! removed, through the node's root, and only what no one but root can have made
//! (super::state). An ordinary user can hold a dead run's name and so keep it from being
//! removed, but cannot make anything be removed that root did not make. Runs share the name space through the host's network namespace
//! (`docker run --net=host`, as documented); a harness in a network namespace of its own sees
//! no other run as alive, so it leaves the node's other network namespaces' runs alone only
//! when they are labelled by a run it can see.

use std::os::linux::net::SocketAddrExt;
use std::path::{Path, PathBuf};

use rustix::fs::FileType;

use super::nodefs::Writable;
use crate::node::rootfs::RootFs;
use std::os::unix::net::{SocketAddr, UnixListener};

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
    super::state::is_run_id(id).then(|| id.to_string())
}

/// What dead runs left in the static pod directory `dir` (a node path), read through the root:
/// their static pod manifests (`node-conformance-<id>-static-pod-*.yaml`) and workload
/// directories (`.node-conformance-<id>`), with the run id. Nothing is opened for writing.
pub fn dead_static_pod_files(fs: &RootFs, dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(names) = fs.read_dir(dir) else {
        return Vec::new();
    };
    names
        .iter()
        .filter_map(|n| {
            let name = n.to_str()?;
            let id = run_id_in(name, "node-conformance-", "-static-pod-")
                .or_else(|| run_id_in(&format!("{name}/"), ".node-conformance-", "/"))?;
            (!is_alive(&id)).then(|| (id, dir.join(name)))
        })
        .collect()
}

/// Removes `found` ([`dead_static_pod_files`]) through `w`, the static pod directory writable:
/// only from a directory only root writes in, only what root owns, following no link. One
/// line each.
pub fn remove_static_pod_files(
    fs: &RootFs,
    w: &Writable,
    found: &[(String, PathBuf)],
) -> Vec<String> {
    let dir = w.base().to_path_buf();
    if let Err(why) = fs
        .open_dir("/")
        .map_err(|e| e.to_string())
        .and_then(|root| super::nodefs::trusted_dir(&root, &dir))
    {
        return vec![format!(
            "left what dead runs left in {}: {why}",
            dir.display()
        )];
    }
    found
        .iter()
        .map(|(id, path)| {
            let gone = match w.lstat(path) {
                Ok(st) if st.uid != 0 => Err(std::io::Error::other(format!(
                    "owned by uid {}, not root: not made by this harness",
                    st.uid
                ))),
                Ok(st) if st.file_type == FileType::Directory => w.remove_all(path),
                Ok(_) => w.remove_file(path),
                Err(e) => Err(e),
            };
            match gone {
                Ok(()) => format!(
                    "removed {} (left by run {id}, no longer running)",
                    path.display()
                ),
                Err(err) => format!(
                    "could not remove {} (left by run {id}): {err}",
                    path.display()
                ),
            }
        })
        .collect()
}

/// The dead runs whose directories are in the runs directory, read through the root, and one
/// line for each entry there that is no run's.
pub fn dead_runs(fs: &RootFs) -> (Vec<String>, Vec<String>) {
    let Ok(names) = fs.read_dir(super::state::RUNS_DIR) else {
        return (Vec::new(), Vec::new());
    };
    let mut dead = Vec::new();
    let mut lines = Vec::new();
    for n in &names {
        match n.to_str() {
            Some(id) if super::state::is_run_id(id) => {
                if !is_alive(id) {
                    dead.push(id.to_string());
                }
            }
            _ => lines.push(format!(
                "ignored {}: not a run's directory",
                Path::new(super::state::RUNS_DIR).join(n).display()
            )),
        }
    }
    (dead, lines)
}

/// Where earlier versions kept a run's state: `/var/tmp`, which any user can write in. What is
/// there is never acted on; each is named once, so that a planted one is seen.
pub fn ignored_legacy_state(fs: &RootFs) -> Vec<String> {
    let Ok(names) = fs.read_dir("/var/tmp") else {
        return Vec::new();
    };
    let found: Vec<String> = names
        .iter()
        .filter_map(|n| {
            let name = n.to_str()?;
            run_id_in(&format!("{name}/"), "node-conformance-", "/")
                .map(|_| format!("/var/tmp/{name}"))
        })
        .collect();
    if found.is_empty() {
        return Vec::new();
    }
    let shown: Vec<&str> = found.iter().take(5).map(String::as_str).collect();
    vec![format!(
        "ignored {}{}: a run's state is never taken from /var/tmp, where any user can write; \
         if an earlier version of the harness left it, remove it",
        shown.join(", "),
        if found.len() > shown.len() {
            format!(" and {} more", found.len() - shown.len())
        } else {
            String::new()
        }
    )]
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
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("etc/kubernetes/manifests");
        std::fs::create_dir_all(&dir).unwrap();
        let live = format!("cd{:x}", std::process::id());
        let _lock = hold(&live).unwrap();
        let dead = "deadbeef1";
        let files = [
            format!("node-conformance-{dead}-static-pod-1.yaml"),
            format!("node-conformance-{live}-static-pod-2.yaml"),
            "kube-apiserver.yaml".to_string(),
            "node-conformance-notes.yaml".to_string(),
            "node-conformance-../x-static-pod-1.yaml".replace('/', "_"),
        ];
        for f in &files {
            std::fs::write(dir.join(f), "x").unwrap();
        }
        std::fs::create_dir(dir.join(format!(".node-conformance-{dead}"))).unwrap();
        std::fs::write(
            dir.join(format!(".node-conformance-{dead}/node-conformance")),
            "bin",
        )
        .unwrap();
        std::fs::create_dir(dir.join(format!(".node-conformance-{live}"))).unwrap();
        let fs = RootFs::open(root.path()).unwrap();
        let node_dir = Path::new("/etc/kubernetes/manifests");
        let found = dead_static_pod_files(&fs, node_dir);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|(id, _)| id == dead), "{found:?}");
        if rustix::process::geteuid().as_raw() != 0 {
            return;
        }
        let w = Writable::node_dir(&fs, node_dir).unwrap();
        let lines = remove_static_pod_files(&fs, &w, &found);
        assert!(lines.iter().all(|l| l.starts_with("removed")), "{lines:?}");
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = vec![
            format!(".node-conformance-{live}"),
            "kube-apiserver.yaml".to_string(),
            format!("node-conformance-{live}-static-pod-2.yaml"),
            "node-conformance-notes.yaml".to_string(),
            "node-conformance-.._x-static-pod-1.yaml".to_string(),
        ];
        want.sort();
        assert_eq!(left, want);
    }
}
