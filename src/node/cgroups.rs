//! cgroup facts: which version the node runs and which controllers it offers.

use std::fmt;

use super::rootfs::{FileKind, FsError, RootFs};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Cgroups {
    pub version: CgroupVersion,
    /// Available controllers, including those cgroup v2 provides implicitly.
    pub controllers: Vec<String>,
    /// How the facts were found (files read, inferences made).
    pub notes: Vec<String>,
}

impl Cgroups {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

const UNIFIED: &str = "/sys/fs/cgroup";

/// Reads the cgroup layout. The unified hierarchy counts only when it is mounted at
/// /sys/fs/cgroup itself: a hybrid node (v2 at /sys/fs/cgroup/unified, controllers on v1)
/// runs its containers on v1.
pub fn read(root: &RootFs, kernel_release: Option<&str>) -> Result<Cgroups, FsError> {
    let controllers_file = format!("{UNIFIED}/cgroup.controllers");
    match root.read_to_string(&controllers_file, FileKind::Kernel) {
        Ok(text) => Ok(read_v2(root, &controllers_file, &text, kernel_release)),
        Err(e) if e.is_not_found() => read_v1(root),
        Err(e) => Err(e),
    }
}

fn read_v2(root: &RootFs, file: &str, text: &str, kernel_release: Option<&str>) -> Cgroups {
    let mut controllers: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    let mut notes = vec![format!(
        "cgroup v2: controllers listed in {file}: {}",
        text.trim()
    )];
    // devices is enforced with BPF programs on v2 and never listed.
    controllers.push("devices".into());
    notes.push("devices: provided by BPF on cgroup v2".into());
    // The freezer is part of every non-root v2 cgroup (cgroup.freeze) from Linux 5.2 on. Look
    // for an existing one rather than create a cgroup: the harness leaves the node as it was.
    let children = root.read_dir(UNIFIED).unwrap_or_default();
    let witness = children.iter().find_map(|name| {
        let p = format!("{UNIFIED}/{}/cgroup.freeze", name.to_string_lossy());
        root.exists(&p).then_some(p)
    });
    match witness {
        Some(p) => {
            controllers.push("freezer".into());
            notes.push(format!("freezer: {p} exists"));
        }
        None => {
            let new_enough = kernel_release
                .and_then(super::kernel::major_minor)
                .is_some_and(|v| v >= (5, 2));
            if new_enough {
                controllers.push("freezer".into());
                notes.push("freezer: no child cgroup to look at; kernel 5.2 or later provides cgroup.freeze".into());
            } else {
                notes
                    .push("freezer: no cgroup.freeze in any child cgroup of /sys/fs/cgroup".into());
            }
        }
    }
    Cgroups {
        version: CgroupVersion::V2,
        controllers,
        notes,
    }
}

fn read_v1(root: &RootFs) -> Result<Cgroups, FsError> {
    let text = root.read_to_string("/proc/cgroups", FileKind::Kernel)?;
    let controllers = parse_proc_cgroups(&text);
    let mut notes = vec![format!(
        "cgroup v1: enabled controllers in /proc/cgroups: {}",
        controllers.join(" ")
    )];
    if root.exists(format!("{UNIFIED}/unified/cgroup.controllers")) {
        notes.push("hybrid layout: cgroup v2 is mounted at /sys/fs/cgroup/unified, but the controllers are on v1".into());
    }
    Ok(Cgroups {
        version: CgroupVersion::V1,
        controllers,
        notes,
    })
}

/// `#subsys_name hierarchy num_cgroups enabled`: the controllers whose enabled column is not 0.
pub fn parse_proc_cgroups(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[3] != "0").then(|| f[0].to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_cgroups_enabled_column() {
        let text = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\nhugetlb\t0\t1\t0\nmemory\t4\t9\t1\nshort 1\n";
        assert_eq!(parse_proc_cgroups(text), vec!["cpuset", "memory"]);
    }

    fn root_with(files: &[(&str, &str)]) -> (tempfile::TempDir, RootFs) {
        let t = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let p = t.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, c).unwrap();
        }
        let r = RootFs::open(t.path()).unwrap();
        (t, r)
    }

    #[test]
    fn v2_with_freezer_witness() {
        let (_t, r) = root_with(&[
            (
                "sys/fs/cgroup/cgroup.controllers",
                "cpuset cpu io memory pids\n",
            ),
            ("sys/fs/cgroup/init.scope/cgroup.freeze", "0\n"),
        ]);
        let c = read(&r, Some("4.19.0")).unwrap();
        assert_eq!(c.version, CgroupVersion::V2);
        for want in [
            "cpu", "cpuset", "io", "memory", "pids", "devices", "freezer",
        ] {
            assert!(c.has(want), "{want}: {c:?}");
        }
    }

    #[test]
    fn v2_freezer_by_kernel_version_only_when_no_child_cgroup() {
        let files = [("sys/fs/cgroup/cgroup.controllers", "cpu memory\n")];
        let (_t, r) = root_with(&files);
        assert!(!read(&r, Some("4.19.0")).unwrap().has("freezer"));
        assert!(read(&r, Some("6.1.0")).unwrap().has("freezer"));
    }

    #[test]
    fn hybrid_counts_as_v1() {
        let (_t, r) = root_with(&[
            ("sys/fs/cgroup/unified/cgroup.controllers", ""),
            (
                "proc/cgroups",
                "#subsys_name hierarchy num_cgroups enabled\ncpu 1 1 1\n",
            ),
        ]);
        let c = read(&r, None).unwrap();
        assert_eq!(c.version, CgroupVersion::V1);
        assert_eq!(c.controllers, vec!["cpu"]);
        assert!(c.notes.iter().any(|n| n.contains("hybrid")));
    }

    #[test]
    fn nothing_at_all_is_an_error() {
        let (_t, r) = root_with(&[]);
        assert!(read(&r, None).unwrap_err().is_not_found());
    }
}
