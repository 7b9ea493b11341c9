//! Facts about the host's user space: sysctls, swap, the distribution, executables.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};

use super::rootfs::{FileInfo, FileKind, FsError, RootFs};

/// The PATH a root login shell has on the common distributions; the host's own environment is
/// not visible from the harness's container.
pub const HOST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A sysctl by its dotted name (`net.ipv4.ip_forward`), read from /proc/sys.
pub fn sysctl(root: &RootFs, name: &str) -> Result<String, FsError> {
    Ok(root
        .read_to_string(sysctl_path(name), FileKind::Kernel)?
        .trim()
        .to_string())
}

pub fn sysctl_path(name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/{}", name.replace('.', "/")))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapDevice {
    pub name: String,
    pub kind: String,
    pub size_kib: u64,
}

/// The active swap devices, from /proc/swaps.
pub fn swaps(root: &RootFs) -> Result<Vec<SwapDevice>, FsError> {
    Ok(parse_swaps(
        &root.read_to_string("/proc/swaps", FileKind::Kernel)?,
    ))
}

pub fn parse_swaps(text: &str) -> Vec<SwapDevice> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3).then(|| SwapDevice {
                name: f[0].to_string(),
                kind: f[1].to_string(),
                size_kib: f[2].parse().unwrap_or(0),
            })
        })
        .collect()
}

/// The distribution's name (`PRETTY_NAME` of os-release), when the node has one.
pub fn distribution(root: &RootFs) -> Option<String> {
    let text = root
        .read_to_string("/etc/os-release", FileKind::Config)
        .or_else(|_| root.read_to_string("/usr/lib/os-release", FileKind::Config))
        .ok()?;
    pretty_name(&text)
}

/// `PRETTY_NAME` of an os-release text, its quotes removed.
pub fn pretty_name(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix("PRETTY_NAME=")?;
        Some(v.trim().trim_matches('"').trim_matches('\'').to_string())
    })
}

/// dpkg's database of installed packages.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// The version of package `name` as dpkg records it on the node (`1.35.0-1.1`), with the
/// file it came from; `None` without a dpkg database or without the package installed. An
/// rpm database is binary and not read.
pub fn package_version(root: &RootFs, name: &str) -> Option<(String, &'static str)> {
    let text = root.read_to_string(DPKG_STATUS, FileKind::Config).ok()?;
    dpkg_version(&text, name).map(|v| (v, DPKG_STATUS))
}

/// `Version:` of the stanza of a dpkg status text whose `Package:` is `name` and whose
/// `Status:` says it is installed.
pub fn dpkg_version(status: &str, name: &str) -> Option<String> {
    status.split("\n\n").find_map(|stanza| {
        let field = |key: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(key).map(str::trim))
        };
        (field("Package:")? == name && field("Status:")?.ends_with(" installed"))
            .then(|| field("Version:").map(str::to_string))
            .flatten()
    })
}

/// Finds an executable on `path_list` (host paths, `:`-separated) inside the root. Returns
/// the host path of the first match, or why each near miss did not count (a symlink loop, a
/// file without execute permission); an empty list means nothing of that name exists.
pub fn find_executable(root: &RootFs, name: &str, path_list: &str) -> Result<PathBuf, Vec<String>> {
    let found = which::WhichConfig::new_with_sys(RootSys(root))
        .binary_name(name.into())
        .custom_path_list(path_list.into())
        .first_result();
    if let Ok(path) = found {
        return Ok(path);
    }
    let near_misses = std::env::split_paths(path_list)
        .filter_map(|dir| {
            let candidate = dir.join(name);
            match root.metadata(&candidate) {
                Err(e) if e.is_not_found() => None,
                Err(e) => Some(e.to_string()),
                Ok(info) if !info.is_executable() => Some(format!(
                    "{} is not an executable file (mode {:o})",
                    candidate.display(),
                    info.mode
                )),
                Ok(_) => None,
            }
        })
        .collect();
    Err(near_misses)
}

/// Lets the which crate search the node's file system instead of the container's.
struct RootSys<'a>(&'a RootFs);

struct Entry {
    name: OsString,
    path: PathBuf,
}

impl which::sys::SysReadDirEntry for Entry {
    fn file_name(&self) -> OsString {
        self.name.clone()
    }
    fn path(&self) -> PathBuf {
        self.path.clone()
    }
}

struct Meta(FileInfo);

impl which::sys::SysMetadata for Meta {
    fn is_symlink(&self) -> bool {
        // Resolution already followed every link inside the root.
        false
    }
    fn is_file(&self) -> bool {
        self.0.is_file
    }
}

fn to_io(e: FsError) -> io::Error {
    let kind = if e.is_not_found() {
        io::ErrorKind::NotFound
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, e.to_string())
}

impl which::sys::Sys for RootSys<'_> {
    type ReadDirEntry = Entry;
    type Metadata = Meta;

    fn is_windows(&self) -> bool {
        false
    }
    fn current_dir(&self) -> io::Result<PathBuf> {
        Ok(PathBuf::from("/"))
    }
    fn home_dir(&self) -> Option<PathBuf> {
        None
    }
    fn env_split_paths(&self, paths: &OsStr) -> Vec<PathBuf> {
        std::env::split_paths(paths).collect()
    }
    fn env_path(&self) -> Option<OsString> {
        Some(HOST_PATH.into())
    }
    fn env_path_ext(&self) -> Option<OsString> {
        None
    }
    fn metadata(&self, path: &Path) -> io::Result<Meta> {
        self.0.metadata(path).map(Meta).map_err(to_io)
    }
    fn symlink_metadata(&self, path: &Path) -> io::Result<Meta> {
        self.metadata(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Box<dyn Iterator<Item = io::Result<Entry>>>> {
        let base = path.to_path_buf();
        let names = self.0.read_dir(path).map_err(to_io)?;
        Ok(Box::new(names.into_iter().map(move |name| {
            Ok(Entry {
                path: base.join(&name),
                name,
            })
        })))
    }
    fn is_valid_executable(&self, path: &Path) -> io::Result<bool> {
        Ok(self
            .0
            .metadata(path)
            .map(|m| m.is_executable())
            .unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn dpkg_versions_of_installed_packages_only() {
        let status = "Package: kubeadm\nStatus: install ok installed\nVersion: 1.35.0-1.1\n\n\
                      Package: kubelet\nStatus: deinstall ok config-files\nVersion: 1.33.1-1.1\n\n\
                      Package: kubelet\nStatus: install ok installed\nVersion: 1.34.2-1.1\n";
        assert_eq!(
            dpkg_version(status, "kubelet").as_deref(),
            Some("1.34.2-1.1")
        );
        assert_eq!(dpkg_version(status, "kubectl"), None);
    }

    #[test]
    fn swaps_parse() {
        let text = "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1048572 0 -2\n";
        assert_eq!(
            parse_swaps(text),
            vec![SwapDevice {
                name: "/swapfile".into(),
                kind: "file".into(),
                size_kib: 1_048_572
            }]
        );
        assert!(parse_swaps("Filename\tType\tSize\tUsed\tPriority\n").is_empty());
    }

    #[test]
    fn executables_are_found_inside_the_root_only() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in ["usr/sbin", "usr/bin", "etc/alternatives"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        let exe = r.join("usr/sbin/iptables-nft");
        std::fs::write(&exe, "").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink("/etc/alternatives/iptables", r.join("usr/sbin/iptables")).unwrap();
        symlink(
            "/usr/sbin/iptables-nft",
            r.join("etc/alternatives/iptables"),
        )
        .unwrap();
        std::fs::write(r.join("usr/bin/notexec"), "").unwrap();
        symlink("/usr/bin/loop", r.join("usr/bin/loop")).unwrap();
        let root = RootFs::open(r).unwrap();
        assert_eq!(
            find_executable(&root, "iptables", HOST_PATH),
            Ok(PathBuf::from("/usr/sbin/iptables"))
        );
        assert_eq!(
            find_executable(&root, "notexec", HOST_PATH),
            Err(vec![
                "/usr/bin/notexec is not an executable file (mode 644)".to_string()
            ])
        );
        let loop_err = find_executable(&root, "loop", HOST_PATH).unwrap_err();
        assert!(
            loop_err[0].contains("/usr/bin/loop") && loop_err[0].contains("symlink loop"),
            "{loop_err:?}"
        );
        // `sh` exists in the harness's own file system, never inside this root.
        assert_eq!(find_executable(&root, "sh", HOST_PATH), Err(vec![]));
    }

    #[test]
    fn sysctl_paths() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward"),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
    }
}
