//! Reports of a run: the console as tests finish, `junit_01.xml` and `results.json`.

pub mod certs;
pub mod console;
pub mod facts;
pub mod json;
pub mod junit;

use std::fs;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use serde::Serialize;

/// Facts about the run itself, carried into every report.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub version: String,
    /// The value of the `node-conformance.run` label on everything the run creates.
    pub run_id: String,
    pub hostname: String,
    pub rootfs: String,
    pub focus: String,
    pub skip: String,
    /// `built-in`, or the spec file's path.
    pub system_spec: String,
}

pub const JUNIT_FILE: &str = "junit_01.xml";
pub const JSON_FILE: &str = "results.json";

/// The result directory, resolved and opened once: every result file is created, renamed and
/// removed relative to this handle, so nothing written can land outside it whatever the
/// directory holds or becomes.
#[derive(Debug)]
pub struct ResultDir {
    /// Where the files are, symlinks resolved: what messages name.
    pub path: PathBuf,
    /// Set when the directory given is a symlink: says where it leads.
    pub note: Option<String>,
    fd: OwnedFd,
}

impl ResultDir {
    /// Creates the directory if missing and makes sure this process may create files in it
    /// (which also answers no on a read-only mount). A result dir that is a symlink is
    /// resolved here, once, and [`ResultDir::note`] says so; a dangling one is an error naming
    /// its target. Errors are one line naming the directory.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let fail = |e: &dyn std::fmt::Display| {
            format!("result dir {} is not writable: {e}", dir.display())
        };
        let mut note = None;
        let mut real = dir.to_path_buf();
        if fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
            let target = fs::read_link(dir).map_err(|e| fail(&e))?;
            real = match fs::canonicalize(dir) {
                Ok(real) => real,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(format!(
                        "result dir {} is a symlink to {}, which does not exist (a dangling symlink); \
                         create the target or name another directory",
                        dir.display(),
                        target.display()
                    ));
                }
                Err(e) => return Err(fail(&e)),
            };
            note = Some(format!(
                "result dir {} is a symlink to {}: results go to {}",
                dir.display(),
                target.display(),
                real.display()
            ));
        }
        fs::create_dir_all(&real).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                fail(&format!("{} exists and is not a directory", real.display()))
            } else {
                fail(&e)
            }
        })?;
        let fd = rustix::fs::open(
            &real,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail(&io::Error::from(e)))?;
        rustix::fs::accessat(
            &fd,
            ".",
            rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
            rustix::fs::AtFlags::empty(),
        )
        .map_err(|e| fail(&io::Error::from(e)))?;
        Ok(Self {
            path: real,
            note,
            fd,
        })
    }

    /// Moves an earlier run's results out of the way, so a run that dies cannot leave them
    /// looking like its own. Returns the names they now have; [`ResultDir::remove`] them
    /// before the run ends (freeing a file costs more than many tests, so that is done on the
    /// side while the tests run).
    pub fn set_aside_stale(&self) -> Vec<String> {
        [JUNIT_FILE, JSON_FILE]
            .into_iter()
            .filter_map(|file| {
                let aside = format!(".{file}.old{}", std::process::id());
                rustix::fs::renameat(&self.fd, file, &self.fd, aside.as_str())
                    .is_ok()
                    .then_some(aside)
            })
            .collect()
    }

    /// Removes a file of this directory; a missing one is not an error.
    pub fn remove(&self, name: &str) {
        let _ = rustix::fs::unlinkat(&self.fd, name, rustix::fs::AtFlags::empty());
    }

    /// Writes `name` whole, as [`write_atomically`] does, in this directory.
    pub fn write(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        write_in(&self.fd, name, |w| w.write_all(bytes))
    }

    /// Writes `name` as [`ResultDir::write`] does, from what `fill` writes into a buffered
    /// writer: a large file is never held whole. An error from `fill` is returned, and the
    /// temporary file removed.
    pub fn write_with(
        &self,
        name: &str,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        write_in(&self.fd, name, |w| {
            let mut buffered = io::BufWriter::with_capacity(1 << 16, w);
            fill(&mut buffered)?;
            buffered.flush()
        })
    }
}

/// Writes a file through a temporary name (`.<stem>.tmp<PID>`) and a rename, so a reader never
/// sees half of it. The temporary file is created exclusively, never through a symlink (one
/// planted at that name is removed, not followed), and removed again if writing or renaming
/// fails (a full disk).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file name in a directory",
        ));
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    write_in(&fd, name, |w| w.write_all(bytes))
}

fn write_in(
    dir: &OwnedFd,
    name: &str,
    fill: impl FnOnce(&mut fs::File) -> io::Result<()>,
) -> io::Result<()> {
    // A dotfile: a kubelet watching the directory (static pod manifests are written this way)
    // skips hidden files, so it never sees the file before its rename.
    let tmp = match name.rsplit_once('.') {
        Some((stem, _)) => format!(".{stem}.tmp{}", std::process::id()),
        None => format!(".{name}.tmp{}", std::process::id()),
    };
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mode = Mode::from_raw_mode(0o644);
    let fd = match rustix::fs::openat(dir, tmp.as_str(), flags, mode) {
        // Left by an earlier process with this pid, or planted: not ours to follow.
        Err(rustix::io::Errno::EXIST) => {
            rustix::fs::unlinkat(dir, tmp.as_str(), rustix::fs::AtFlags::empty())?;
            rustix::fs::openat(dir, tmp.as_str(), flags, mode)?
        }
        other => other?,
    };
    let unlink = || {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), rustix::fs::AtFlags::empty());
    };
    let mut file = fs::File::from(fd);
    if let Err(e) = fill(&mut file) {
        unlink();
        return Err(e);
    }
    drop(file);
    rustix::fs::renameat(dir, tmp.as_str(), dir, name).map_err(|e| {
        unlink();
        io::Error::from(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_symlink_at_the_temporary_name_is_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let dir = ResultDir::open(t.path()).unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let tmp = format!(".junit_01.tmp{}", std::process::id());
        std::os::unix::fs::symlink(&victim, t.path().join(&tmp)).unwrap();
        dir.write(JUNIT_FILE, b"<testsuites/>").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let written = std::fs::symlink_metadata(t.path().join(JUNIT_FILE)).unwrap();
        assert!(written.file_type().is_file());
        assert!(!t.path().join(&tmp).exists());
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_file() {
        let t = tempfile::tempdir().unwrap();
        let dir = ResultDir::open(t.path()).unwrap();
        // A directory in the way: the rename fails after the temporary file is written.
        std::fs::create_dir_all(t.path().join("results.json/x")).unwrap();
        assert!(dir.write(JSON_FILE, b"{}").is_err());
        let names: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["results.json"]);
    }

    #[test]
    fn a_symlinked_result_dir_is_resolved_once_and_reported() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("real")).unwrap();
        std::os::unix::fs::symlink(t.path().join("real"), t.path().join("link")).unwrap();
        let dir = ResultDir::open(&t.path().join("link")).unwrap();
        assert_eq!(dir.path, t.path().join("real").canonicalize().unwrap());
        assert!(dir.note.unwrap().contains("is a symlink to"));
        std::os::unix::fs::symlink(t.path().join("gone"), t.path().join("dangling")).unwrap();
        let err = ResultDir::open(&t.path().join("dangling")).unwrap_err();
        assert!(err.contains("which does not exist"), "{err}");
        assert!(!err.contains("File exists"), "{err}");
        std::fs::write(t.path().join("file"), "").unwrap();
        std::os::unix::fs::symlink(t.path().join("file"), t.path().join("to-file")).unwrap();
        let err = ResultDir::open(&t.path().join("to-file")).unwrap_err();
        assert!(err.contains("exists and is not a directory"), "{err}");
    }
}
