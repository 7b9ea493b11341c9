//! Where a run keeps what it must put back, and what a later run may believe of it.
//!
//! A run that starts a kubelet or serves the control plane for kubectl keeps its files in
//! `/var/lib/node-conformance/runs/<run id>` on the node: a directory only root can create
//! entries in, made 0700, every directory above it owned by root and writable by no one else
//! ([`super::nodefs::Writable::private_dir`]). What a dead run left there is acted on only
//! when its directory and `state.json` are root's and not group- or world-writable (opened
//! without following links), and only as far as each field has the form this harness writes:
//! the kernel tunables of [`super::kubelet::KERNEL_TUNABLES`] with integer values, the run's
//! own namespace, plain absolute paths. A run never takes state from a world-writable directory
//! such as `/var/tmp`, where earlier versions kept it.

use std::path::{Component, Path, PathBuf};

/// The harness's directory on the node.
pub const STATE_DIR: &str = "/var/lib/node-conformance";
/// Where each run's directory is, `<run id>` by name.
pub const RUNS_DIR: &str = "/var/lib/node-conformance/runs";
/// The credentials `kubelet-config` makes for an attached kubelet.
pub const ATTACH_DIR: &str = "/var/lib/node-conformance/attach";
/// A run's state file in its directory.
pub const STATE_FILE: &str = "state.json";
/// The most a state file may be: a real one is a few hundred bytes.
pub const STATE_FILE_CAP: u64 = 64 << 10;

/// A run's directory on the node.
pub fn run_dir(run_id: &str) -> PathBuf {
    Path::new(RUNS_DIR).join(run_id)
}

/// Whether `id` has the form of a run id: lowercase hex, at most 32 characters.
pub fn is_run_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What a run changed on the node and must put back, written before it changes anything and
/// again once its kubelet runs, so that a later run can if this one is killed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunState {
    pub run_id: String,
    /// The CRI socket its kubelet used, a node path.
    pub endpoint: Option<PathBuf>,
    /// The kernel tunables as they were before its kubelet started (`kernel/panic`, value).
    pub tunables: Vec<(String, String)>,
    /// The pod log directories that did not exist before its kubelet started.
    pub new_log_dirs: Vec<PathBuf>,
    /// The namespace of its pods: `node-conformance-<run id>`.
    pub namespace: String,
    /// Its kubelet, once started.
    pub kubelet: Option<KubeletProcess>,
}

/// A started kubelet, as a later run recognizes it: the same process (pid and start time), the
/// same executable, and `--root-dir` inside the run's directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeletProcess {
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat`: clock ticks from boot to its start.
    pub start_time: u64,
    /// Its executable, a node path.
    pub binary: PathBuf,
}

/// The pod log directories a kubelet makes, which a run may remove entries of.
pub const LOG_DIRS: [&str; 2] = ["/var/log/pods", "/var/log/containers"];

/// The namespace of a run's pods.
pub fn namespace(run_id: &str) -> String {
    format!("node-conformance-{run_id}")
}

/// A plain absolute path: `/` then names, no `.`, `..` or empty component, at most 4 KiB.
fn is_plain_absolute(p: &Path) -> bool {
    let mut c = p.components();
    c.next() == Some(Component::RootDir)
        && c.all(|c| matches!(c, Component::Normal(_)))
        && p.as_os_str().len() <= 4096
        && p.components().count() > 1
}

impl RunState {
    /// Checks every field has the form this harness writes for run `run_id`; `Err` names
    /// the first that does not.
    pub fn validate(&self, run_id: &str) -> Result<(), String> {
        if self.run_id != run_id {
            return Err(format!(
                "run_id {:?} is not its directory's name {run_id}",
                self.run_id
            ));
        }
        if self.namespace != namespace(run_id) {
            return Err(format!(
                "namespace {:?} is not the run's, {}",
                self.namespace,
                namespace(run_id)
            ));
        }
        let mut seen = Vec::new();
        for (name, value) in &self.tunables {
            if !super::kubelet::KERNEL_TUNABLES.contains(&name.as_str()) {
                return Err(format!(
                    "tunable {name:?} is not one a kubelet sets ({})",
                    super::kubelet::KERNEL_TUNABLES.join(", ")
                ));
            }
            if seen.contains(&name) {
                return Err(format!("tunable {name:?} is listed twice"));
            }
            seen.push(name);
            let digits = value.strip_prefix('-').unwrap_or(value);
            if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(format!("tunable {name}: value {value:?} is not an integer"));
            }
        }
        for dir in &self.new_log_dirs {
            if !LOG_DIRS.iter().any(|d| Path::new(d) == dir) {
                return Err(format!(
                    "new_log_dirs: {} is not one of {}",
                    dir.display(),
                    LOG_DIRS.join(", ")
                ));
            }
        }
        if let Some(e) = &self.endpoint
            && !is_plain_absolute(e)
        {
            return Err(format!(
                "endpoint {:?} is not a plain absolute path",
                e.display()
            ));
        }
        if let Some(k) = &self.kubelet
            && !is_plain_absolute(&k.binary)
        {
            return Err(format!(
                "kubelet binary {:?} is not a plain absolute path",
                k.binary.display()
            ));
        }
        Ok(())
    }
}

/// A dead run's `state.json`, if it has one and it can be believed: `Ok(None)` when there is
/// none, `Err` saying why it is not believed.
pub fn read(w: &super::nodefs::Writable, run_id: &str) -> Result<Option<RunState>, String> {
    let path = run_dir(run_id).join(STATE_FILE);
    let (bytes, st) = match w.read(&path, STATE_FILE_CAP) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if let Some(why) = st.not_roots_alone() {
        return Err(format!("{}: {why}", path.display()));
    }
    let state: RunState = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a state this harness writes: {e}", path.display()))?;
    state
        .validate(run_id)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(state))
}

/// The CA `kubelet-config` made for an attached kubelet (`ca.crt`, `ca.key` in
/// [`ATTACH_DIR`]), read through the root: `Ok(None)` when there is none; `Err` when what is
/// there is not root's alone (the directories above it included), is a symlink, or does not
/// parse, since a CA anyone else could have written would let them in.
pub fn load_attach_ca(
    fs: &crate::node::rootfs::RootFs,
) -> Result<Option<super::credentials::Authority>, String> {
    use crate::node::rootfs::FileKind;
    let dir = Path::new(ATTACH_DIR);
    match fs.lstat(dir) {
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.to_string()),
        Ok(_) => {}
    }
    let private = |path: &Path, secret: bool| -> Result<(), String> {
        let st = fs.lstat(path).map_err(|e| e.to_string())?;
        let shared = if secret { 0o077 } else { 0o022 };
        if st.uid != 0 || st.mode & shared != 0 || !(st.is_dir || st.is_file) {
            return Err(format!(
                "{}: must be root's {} and {} by others (uid {}, mode {:04o})",
                path.display(),
                if st.is_dir {
                    "directory"
                } else {
                    "regular file"
                },
                if secret {
                    "not readable or writable"
                } else {
                    "not writable"
                },
                st.uid,
                st.mode
            ));
        }
        Ok(())
    };
    for p in ["/", "/var", "/var/lib", STATE_DIR] {
        private(Path::new(p), false)?;
    }
    private(dir, true)?;
    let ca = dir.join("ca.crt");
    let key = dir.join("ca.key");
    if fs.lstat(&ca).is_err_and(|e| e.is_not_found()) {
        return Ok(None);
    }
    private(&ca, false)?;
    private(&key, true)?;
    let read = |p: &Path| {
        fs.read_to_string(p, FileKind::Pki)
            .map_err(|e| e.to_string())
    };
    super::credentials::Authority::from_pem(&read(&ca)?, &read(&key)?)
        .map(Some)
        .map_err(|e| format!("{}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> RunState {
        RunState {
            run_id: "abc123".into(),
            endpoint: Some("/run/containerd/containerd.sock".into()),
            tunables: vec![
                ("vm/overcommit_memory".into(), "0".into()),
                ("kernel/panic".into(), "-1".into()),
            ],
            new_log_dirs: vec!["/var/log/pods".into()],
            namespace: "node-conformance-abc123".into(),
            kubelet: Some(KubeletProcess {
                pid: 42,
                start_time: 1000,
                binary: "/usr/bin/kubelet".into(),
            }),
        }
    }

    #[test]
    fn only_what_this_harness_writes_is_believed() {
        assert_eq!(good().validate("abc123"), Ok(()));
        let refused = |f: &dyn Fn(&mut RunState), want: &str| {
            let mut s = good();
            f(&mut s);
            let e = s.validate("abc123").unwrap_err();
            assert!(e.contains(want), "{e}");
        };
        refused(&|s| s.run_id = "other".into(), "directory's name");
        refused(&|s| s.namespace = "kube-system".into(), "not the run's");
        refused(
            &|s| s.tunables[0].0 = "../../../etc/passwd".into(),
            "not one a kubelet sets",
        );
        refused(
            &|s| s.tunables[0].0 = "kernel/core_pattern".into(),
            "not one",
        );
        refused(&|s| s.tunables[0].1 = "|/tmp/x".into(), "not an integer");
        refused(
            &|s| s.tunables[1].0 = "vm/overcommit_memory".into(),
            "twice",
        );
        refused(&|s| s.new_log_dirs = vec!["/etc".into()], "not one of");
        refused(
            &|s| s.endpoint = Some("/run/../etc/x.sock".into()),
            "plain absolute",
        );
        refused(
            &|s| s.endpoint = Some("run/x.sock".into()),
            "plain absolute",
        );
        refused(
            &|s| {
                if let Some(k) = &mut s.kubelet {
                    k.binary = "/usr/bin/../../tmp/k".into();
                }
            },
            "plain absolute",
        );
        // Fields this harness does not write are refused whole.
        let mut v = serde_json::to_value(good()).unwrap();
        v["extra"] = serde_json::json!("x");
        assert!(serde_json::from_value::<RunState>(v).is_err());
    }

    #[test]
    fn run_ids_are_lowercase_hex() {
        assert!(is_run_id("19af3c2b10a0f3"));
        assert!(!is_run_id(""));
        assert!(!is_run_id("ABC"));
        assert!(!is_run_id("../x"));
        assert!(!is_run_id(&"a".repeat(33)));
    }
}
