//! Writing on the node. Every file the harness makes, removes or changes on the node (a
//! managed kubelet's work dir, static pod files, the workload binary, kernel tunables, pod log
//! directories) is reached through the node's root, as its reads are: paths are resolved
//! inside a directory handle (pathrs, openat2's `RESOLVE_IN_ROOT` where the kernel has it), so
//! neither a symlink on the node nor a `--rootfs` that is not this machine's root can lead a
//! write to the harness's own machine.
//!
//! The node's root fs is usually mounted read-only into the harness's container
//! (`-v /:/rootfs:ro`). Writes then go through the root of a host process instead
//! (`<rootfs>/proc/<pid>/root`, the same directory, writable), which needs the host's PID
//! namespace; or, for the static pod directory alone, through the directory mounted into the
//! container at its node path (`-v $CONFIG_DIR:$CONFIG_DIR`), once it is proven to be the
//! node's directory (same device and inode).

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use pathrs::flags::OpenFlags;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::node::rootfs::RootFs;

/// What `lstat` says of a path on the node (symlinks not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub file_type: FileType,
    /// Permission bits, `0o7777` at most.
    pub mode: u32,
    pub uid: u32,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
}

impl Stat {
    fn of(st: &rustix::fs::Stat) -> Self {
        Stat {
            file_type: FileType::from_raw_mode(st.st_mode),
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            dev: st.st_dev,
            ino: st.st_ino,
            size: u64::try_from(st.st_size).unwrap_or(0),
        }
    }

    /// Owned by root and writable by no one else: only root can have made what is in it.
    pub fn is_roots_alone(&self) -> bool {
        self.uid == 0 && self.mode & 0o022 == 0
    }

    /// Why a file or directory is not [`Stat::is_roots_alone`], if it is not.
    pub fn not_roots_alone(&self) -> Option<String> {
        if self.uid != 0 {
            Some(format!("owned by uid {}, not root", self.uid))
        } else if self.mode & 0o022 != 0 {
            Some(format!(
                "mode {:04o}: writable by its group or by others",
                self.mode
            ))
        } else {
            None
        }
    }
}

/// A directory on the node the harness may write in, and its node path: every operation takes
/// a node path under it and resolves it inside it.
#[derive(Debug)]
pub struct Writable {
    root: pathrs::Root,
    /// The directory's node path.
    base: PathBuf,
    /// How the harness reaches it, for messages.
    pub via: String,
}

fn io_err(e: pathrs::error::Error) -> io::Error {
    match e.kind() {
        pathrs::error::ErrorKind::OsError(Some(errno)) => io::Error::from_raw_os_error(errno),
        _ => io::Error::other(e.to_string()),
    }
}

fn errno(e: rustix::io::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

fn is_read_only(fd: impl AsFd) -> bool {
    rustix::fs::fstatvfs(fd).is_ok_and(|s| s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

fn same_inode(a: impl AsFd, b: impl AsFd) -> bool {
    match (rustix::fs::fstat(a), rustix::fs::fstat(b)) {
        (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
        _ => false,
    }
}

impl Writable {
    /// The node's `/`, writable: the root fs itself where it is writable (the harness on the
    /// node, or a root fs that is a directory of this machine), else the root of a host
    /// process that has the same root (the harness in a container in the host's PID
    /// namespace). `Err` says what to change.
    pub fn node_root(fs: &RootFs) -> Result<Self, String> {
        let root = fs
            .open_dir("/")
            .map_err(|e| format!("the root fs {}: {e}", fs.dir().display()))?;
        if !is_read_only(&root) {
            return Ok(Self {
                root: pathrs::Root::from_fd(root),
                base: PathBuf::from("/"),
                via: fs.dir().display().to_string(),
            });
        }
        let host = super::kubelet::Host::detect(fs).map_err(|e| {
            format!(
                "the root fs {} is read-only here, and no host process's root can be written \
                 through instead ({e})",
                fs.dir().display()
            )
        })?;
        let super::kubelet::Host::Process(pid) = host else {
            return Err(format!("the root fs {} is read-only", fs.dir().display()));
        };
        let theirs = fs
            .open_proc_entry(pid, "root", OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| format!("the root of host process {pid}: {e}"))?;
        if !same_inode(&theirs, &root) {
            return Err(format!(
                "the root of host process {pid} is not the root fs {}",
                fs.dir().display()
            ));
        }
        if is_read_only(&theirs) {
            return Err(format!(
                "the node's root fs is read-only, also as host process {pid} sees it"
            ));
        }
        Ok(Self {
            root: pathrs::Root::from_fd(theirs),
            base: PathBuf::from("/"),
            via: format!("/proc/{pid}/root"),
        })
    }

    /// The node directory `dir`, writable: through [`Writable::node_root`], else through the
    /// directory mounted into the harness's container at the same path, when that is the
    /// node's directory (same device and inode as `dir` in the root fs).
    pub fn node_dir(fs: &RootFs, dir: &Path) -> Result<Self, String> {
        let through_root = Self::node_root(fs)
            .and_then(|r| r.subdir(dir).map_err(|e| format!("{}: {e}", dir.display())));
        let why = match through_root {
            Ok(w) => return Ok(w),
            Err(why) => why,
        };
        let on_node = fs
            .open_dir(dir)
            .map_err(|e| format!("{}: {e}", e.path.display()))?;
        let here = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            format!(
                "{}: {why}; and it is not mounted into the harness at the same path ({e})",
                dir.display()
            )
        })?;
        if !same_inode(&here, &on_node) {
            return Err(format!(
                "{}: {why}; and what is mounted into the harness at that path is another \
                 directory than the node's",
                dir.display()
            ));
        }
        Ok(Self {
            root: pathrs::Root::from_fd(here),
            base: dir.to_path_buf(),
            via: format!("{} (mounted at the same path)", dir.display()),
        })
    }

    /// The node path `dir` under this one, as a writable directory of its own.
    pub fn subdir(&self, dir: &Path) -> io::Result<Self> {
        let rel = self.rel(dir)?;
        let handle = self.root.resolve(&rel).map_err(io_err)?;
        let fd = OwnedFd::from(handle);
        let st = rustix::fs::fstat(&fd).map_err(errno)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(io::Error::from_raw_os_error(
                rustix::io::Errno::NOTDIR.raw_os_error(),
            ));
        }
        Ok(Self {
            root: pathrs::Root::from_fd(fd),
            base: dir.to_path_buf(),
            via: self.via.clone(),
        })
    }

    /// The node path this directory is at.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// `path` (a node path under the base) relative to the base; `..` and paths elsewhere are
    /// refused.
    fn rel(&self, path: &Path) -> io::Result<PathBuf> {
        let rest = path.strip_prefix(&self.base).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not under {}", path.display(), self.base.display()),
            )
        })?;
        if rest
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: only plain names below {}",
                    path.display(),
                    self.base.display()
                ),
            ));
        }
        Ok(Path::new(".").join(rest))
    }

    /// The parent directory's handle and the last name of `path`, the parent resolved inside
    /// the root and the name not followed.
    fn parent(&self, path: &Path) -> io::Result<(OwnedFd, OsString)> {
        let rel = self.rel(path)?;
        let name = rel
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no name"))?
            .to_os_string();
        let parent = rel.parent().unwrap_or(Path::new("."));
        let handle = self.root.resolve(parent).map_err(io_err)?;
        Ok((OwnedFd::from(handle), name))
    }

    /// `lstat` of a node path: a symlink is described, not followed.
    pub fn lstat(&self, path: &Path) -> io::Result<Stat> {
        if path == self.base {
            return self.lstat_base();
        }
        let (dir, name) = self.parent(path)?;
        let st =
            rustix::fs::statat(&dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(errno)?;
        Ok(Stat::of(&st))
    }

    /// Makes the directory `path` with `mode`; an existing one is an error.
    pub fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        let (dir, name) = self.parent(path)?;
        rustix::fs::mkdirat(&dir, name.as_os_str(), Mode::from_raw_mode(mode)).map_err(errno)?;
        // The umask may have taken bits away; set exactly what was asked.
        let made = rustix::fs::openat(
            &dir,
            name.as_os_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        rustix::fs::fchmod(&made, Mode::from_raw_mode(mode)).map_err(errno)
    }

    /// Creates a new file with `mode`, open for reading and writing: never through a file or
    /// symlink already at the name.
    pub fn create(&self, path: &Path, mode: u32) -> io::Result<File> {
        let rel = self.rel(path)?;
        let file = self
            .root
            .create_file(
                &rel,
                OpenFlags::O_RDWR
                    | OpenFlags::O_EXCL
                    | OpenFlags::O_NOFOLLOW
                    | OpenFlags::O_CLOEXEC,
                &std::fs::Permissions::from_mode(mode),
            )
            .map_err(io_err)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        Ok(file)
    }

    /// Writes a new file with `mode`: never through a file or symlink already at the name.
    pub fn write_new(&self, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
        let rel = self.rel(path)?;
        let mut file = self
            .root
            .create_file(
                &rel,
                OpenFlags::O_WRONLY
                    | OpenFlags::O_EXCL
                    | OpenFlags::O_NOFOLLOW
                    | OpenFlags::O_CLOEXEC,
                &std::fs::Permissions::from_mode(mode),
            )
            .map_err(io_err)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()
    }

    /// Replaces a file whole: written as a new file beside it, then renamed over it, so a
    /// reader (the kubelet, a later run) never sees half of it.
    pub fn write_replace(&self, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
        let (dir, name) = self.parent(path)?;
        let mut tmp = OsString::from(".");
        tmp.push(&name);
        tmp.push(format!(".tmp{}", std::process::id()));
        let _ = rustix::fs::unlinkat(&dir, tmp.as_os_str(), AtFlags::empty());
        let fd = rustix::fs::openat(
            &dir,
            tmp.as_os_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .map_err(errno)?;
        let mut file = File::from(fd);
        let written = file
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .and_then(|()| file.write_all(bytes))
            .and_then(|()| file.sync_all());
        let renamed = written.and_then(|()| {
            rustix::fs::renameat(&dir, tmp.as_os_str(), &dir, name.as_os_str()).map_err(errno)
        });
        if renamed.is_err() {
            let _ = rustix::fs::unlinkat(&dir, tmp.as_os_str(), AtFlags::empty());
        }
        renamed
    }

    /// Writes into an existing file (a kernel tunable under /proc/sys), not following a
    /// symlink at its name.
    pub fn write_existing(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent(path)?;
        let fd = rustix::fs::openat(
            &dir,
            name.as_os_str(),
            OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        File::from(fd).write_all(bytes)
    }

    /// Reads a regular file of at most `cap` bytes, not following a symlink at its name, with
    /// what `lstat` says of it (for its owner and mode).
    pub fn read(&self, path: &Path, cap: u64) -> io::Result<(Vec<u8>, Stat)> {
        let (dir, name) = self.parent(path)?;
        let fd = rustix::fs::openat(
            &dir,
            name.as_os_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        let st = Stat::of(&rustix::fs::fstat(&fd).map_err(errno)?);
        if st.file_type != FileType::RegularFile {
            return Err(io::Error::other("not a regular file"));
        }
        let mut bytes = Vec::new();
        File::from(fd).take(cap + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > cap {
            return Err(io::Error::other(format!("larger than {cap} bytes")));
        }
        Ok((bytes, st))
    }

    /// The entries of a directory with what `lstat` says of each, sorted by name.
    pub fn entries(&self, path: &Path) -> io::Result<Vec<(OsString, Stat)>> {
        let rel = self.rel(path)?;
        let dir = rustix::fs::openat(
            OwnedFd::from(self.root.resolve(&rel).map_err(io_err)?),
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        let mut out = Vec::new();
        for entry in rustix::fs::Dir::read_from(&dir).map_err(errno)? {
            let entry = entry.map_err(errno)?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let Ok(st) = rustix::fs::statat(&dir, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
            else {
                continue;
            };
            out.push((
                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name).to_os_string(),
                Stat::of(&st),
            ));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Removes a file or symlink (not what it points to).
    pub fn remove_file(&self, path: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(path)?;
        rustix::fs::unlinkat(&dir, name.as_os_str(), AtFlags::empty()).map_err(errno)
    }

    /// Removes an empty directory.
    pub fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(path)?;
        rustix::fs::unlinkat(&dir, name.as_os_str(), AtFlags::REMOVEDIR).map_err(errno)
    }

    /// Removes a file or a directory and everything in it, following no symlink.
    pub fn remove_all(&self, path: &Path) -> io::Result<()> {
        let rel = self.rel(path)?;
        self.root.remove_all(&rel).map_err(io_err)
    }

    /// Makes sure `dir` (a node path under the base) is a directory only root can write in,
    /// and every directory above it too, so that nothing in it can have been made by another
    /// user: each existing one must be a real directory (not a symlink) owned by root and not
    /// group- or world-writable; missing ones are made with mode 0700. `Err` names the first
    /// that is not.
    pub fn private_dir(&self, dir: &Path) -> Result<(), String> {
        let rel = self
            .rel(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let top = self
            .lstat_base()
            .map_err(|e| format!("{}: {e}", self.base.display()))?;
        if let Some(why) = top.not_roots_alone() {
            return Err(format!("{}: {why}", self.base.display()));
        }
        let mut at = self.base.clone();
        for c in rel.components().skip(1) {
            at.push(c);
            match self.lstat(&at) {
                Ok(st) if st.file_type == FileType::Directory => {
                    if let Some(why) = st.not_roots_alone() {
                        return Err(format!("{}: {why}", at.display()));
                    }
                }
                Ok(st) => {
                    return Err(format!(
                        "{}: {}, not a directory",
                        at.display(),
                        describe(st.file_type)
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.mkdir(&at, 0o700)
                        .map_err(|e| format!("cannot make {}: {e}", at.display()))?;
                }
                Err(e) => return Err(format!("{}: {e}", at.display())),
            }
        }
        Ok(())
    }

    fn lstat_base(&self) -> io::Result<Stat> {
        Ok(Stat::of(&rustix::fs::fstat(&self.root).map_err(errno)?))
    }
}

/// Checks that the node directory `dir`, and everything on the way to it from the node's root
/// `root` (a directory handle), can only have been made by root (or by the harness's own user):
/// each directory passed through is theirs and writable by no one else, or sticky (as /tmp)
/// with the entry taken from it theirs; each symlink followed is theirs, its target checked in
/// turn; `dir` itself is theirs and writable by no one else. What the harness then writes into
/// `dir` as root cannot be redirected by another user, nor land where they chose. `Err` names
/// the first place another user could have chosen.
pub fn trusted_dir(root: &OwnedFd, dir: &Path) -> Result<(), String> {
    use std::collections::VecDeque;
    let me = rustix::process::geteuid().as_raw();
    let theirs = |uid: u32| uid == 0 || uid == me;
    let describe_at = |names: &[String]| {
        if names.is_empty() {
            "/".to_string()
        } else {
            format!("/{}", names.join("/"))
        }
    };
    let dup = |fd: &OwnedFd| {
        rustix::fs::openat(
            fd,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("{}: {e}", dir.display()))
    };
    let mut stack: Vec<OwnedFd> = vec![dup(root)?];
    let mut names: Vec<String> = Vec::new();
    let mut queue: VecDeque<OsString> = dir
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(name) = queue.pop_front() {
        if name == ".." {
            if stack.len() > 1 {
                stack.pop();
                names.pop();
            }
            continue;
        }
        if name == "." {
            continue;
        }
        let Some(cur) = stack.last() else {
            return Err(format!("{}: no directory to resolve in", dir.display()));
        };
        let here = describe_at(&names);
        let cur_st = Stat::of(&rustix::fs::fstat(cur).map_err(|e| format!("{here}: {e}"))?);
        let st = rustix::fs::statat(cur, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map(|s| Stat::of(&s))
            .map_err(|e| format!("{here}/{}: {e}", name.to_string_lossy()))?;
        let shown = format!("{}/{}", here.trim_end_matches('/'), name.to_string_lossy());
        let guarded = theirs(cur_st.uid) && cur_st.mode & 0o022 == 0;
        let sticky = cur_st.mode & 0o1000 != 0 && theirs(st.uid);
        if !guarded && !sticky {
            return Err(format!(
                "{shown}: in {here}, which another user may write (owner uid {}, mode {:04o})",
                cur_st.uid, cur_st.mode
            ));
        }
        match st.file_type {
            FileType::Symlink => {
                links += 1;
                if links > 40 {
                    return Err(format!("{shown}: too many symbolic links"));
                }
                if !theirs(st.uid) {
                    return Err(format!("{shown}: a symbolic link of uid {}", st.uid));
                }
                let target = rustix::fs::readlinkat(cur, name.as_os_str(), Vec::new())
                    .map_err(|e| format!("{shown}: {e}"))?;
                let target = PathBuf::from(
                    <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
                        target.as_bytes(),
                    ),
                );
                if target.is_absolute() {
                    stack.truncate(1);
                    names.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => queue.push_front(n.to_os_string()),
                        Component::ParentDir => queue.push_front(OsString::from("..")),
                        _ => {}
                    }
                }
            }
            FileType::Directory => {
                let fd = rustix::fs::openat(
                    cur,
                    name.as_os_str(),
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| format!("{shown}: {e}"))?;
                stack.push(fd);
                names.push(name.to_string_lossy().into_owned());
            }
            other => return Err(format!("{shown}: {}, not a directory", describe(other))),
        }
    }
    let last = stack
        .last()
        .ok_or_else(|| format!("{}: nothing resolved", dir.display()))?;
    let st = Stat::of(&rustix::fs::fstat(last).map_err(|e| format!("{}: {e}", dir.display()))?);
    if !theirs(st.uid) || st.mode & 0o022 != 0 {
        return Err(format!(
            "{}: another user may write in it (owner uid {}, mode {:04o})",
            describe_at(&names),
            st.uid,
            st.mode
        ));
    }
    Ok(())
}

/// Checks that a Unix socket on the node (a CRI endpoint the harness would talk to as root,
/// and start a kubelet against) is root's (or the harness's own user's) in a directory
/// [`trusted_dir`] trusts: a socket another user made is a server another user runs.
pub fn trusted_socket(fs: &RootFs, socket: &Path) -> Result<(), String> {
    let root = fs.open_dir("/").map_err(|e| e.to_string())?;
    if let Some(parent) = socket.parent() {
        trusted_dir(&root, parent)?;
    }
    let me = rustix::process::geteuid().as_raw();
    let st = fs.lstat(socket).map_err(|e| e.to_string())?;
    if st.uid != 0 && st.uid != me {
        return Err(format!(
            "{}: owned by uid {}, not root: another user's server",
            socket.display(),
            st.uid
        ));
    }
    Ok(())
}

/// A file type, for messages.
pub fn describe(t: FileType) -> &'static str {
    match t {
        FileType::Symlink => "a symbolic link",
        FileType::Directory => "a directory",
        FileType::RegularFile => "a regular file",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Unknown => "of an unknown type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_of(t: &tempfile::TempDir) -> (RootFs, Writable) {
        let fs = RootFs::open(t.path()).unwrap();
        let w = Writable::node_root(&fs).unwrap();
        (fs, w)
    }

    #[test]
    fn writes_stay_inside_the_root_whatever_the_symlinks_say() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        // An absolute symlink on the node means the node's own /victim, inside the root.
        std::os::unix::fs::symlink("/victim", t.path().join("etc/link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("out")).unwrap();
        let (_fs, w) = root_of(&t);
        // A symlink at the name is never written through.
        assert!(w.write_new(Path::new("/etc/link"), b"x", 0o600).is_err());
        assert!(w.write_existing(Path::new("/etc/link"), b"x").is_err());
        // A directory symlink leads inside the root: `out` is `<root>/<outside's path>`.
        let _ = w.write_new(&Path::new("/out").join("f"), b"x", 0o600);
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert!(w.write_new(Path::new("/etc/../../x"), b"x", 0o600).is_err());
        assert!(w.rel(Path::new("/etc/../x")).is_err());
        w.write_new(Path::new("/etc/new"), b"hello", 0o640).unwrap();
        let (bytes, st) = w.read(Path::new("/etc/new"), 16).unwrap();
        assert_eq!(bytes, b"hello");
        assert_eq!(st.mode, 0o640);
        assert!(w.read(Path::new("/etc/new"), 2).is_err());
        w.write_replace(Path::new("/etc/new"), b"again", 0o600)
            .unwrap();
        assert_eq!(std::fs::read(t.path().join("etc/new")).unwrap(), b"again");
        w.remove_file(Path::new("/etc/link")).unwrap();
        assert!(t.path().join("etc/new").exists());
        w.remove_all(Path::new("/etc")).unwrap();
        assert!(!t.path().join("etc").exists());
    }

    #[test]
    fn a_private_dir_is_made_and_a_shared_one_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("var/lib")).unwrap();
        let (_fs, w) = root_of(&t);
        if rustix::process::geteuid().as_raw() != 0 {
            // Owned by this user, not root: refused, and said so.
            let e = w.private_dir(Path::new("/var/lib/x")).unwrap_err();
            assert!(e.contains("not root"), "{e}");
            return;
        }
        w.private_dir(Path::new("/var/lib/node-conformance/runs"))
            .unwrap();
        let st = w
            .lstat(Path::new("/var/lib/node-conformance/runs"))
            .unwrap();
        assert_eq!(st.mode, 0o700);
        std::fs::set_permissions(
            t.path().join("var/lib"),
            std::fs::Permissions::from_mode(0o1777),
        )
        .unwrap();
        let e = w
            .private_dir(Path::new("/var/lib/node-conformance/runs"))
            .unwrap_err();
        assert!(e.contains("/var/lib: mode 1777"), "{e}");
        std::fs::set_permissions(
            t.path().join("var/lib"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::remove_dir(t.path().join("var/lib/node-conformance/runs")).unwrap();
        std::os::unix::fs::symlink("/tmp", t.path().join("var/lib/node-conformance/runs")).unwrap();
        let e = w
            .private_dir(Path::new("/var/lib/node-conformance/runs"))
            .unwrap_err();
        assert!(e.contains("a symbolic link"), "{e}");
    }

    #[test]
    fn a_directory_another_user_could_have_chosen_is_not_trusted() {
        use std::os::unix::fs::PermissionsExt;
        if rustix::process::geteuid().as_raw() != 0 {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in ["etc/kubernetes/manifests", "tmp/theirs", "data/manifests"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::set_permissions(r.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        std::os::unix::fs::chown(r.join("tmp/theirs"), Some(65534), Some(65534)).unwrap();
        std::os::unix::fs::symlink("/data/manifests", r.join("etc/kubernetes/linked")).unwrap();
        std::os::unix::fs::symlink("../../data/manifests", r.join("etc/kubernetes/rel")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("tmp/theirs/etc")).unwrap();
        std::os::unix::fs::lchown(r.join("tmp/theirs/etc"), Some(65534), Some(65534)).unwrap();
        let root = RootFs::open(r).unwrap().open_dir("/").unwrap();
        let ok = |p: &str| trusted_dir(&root, Path::new(p));
        ok("/etc/kubernetes/manifests").unwrap();
        // Root's symlinks are followed, inside the root.
        ok("/etc/kubernetes/linked").unwrap();
        ok("/etc/kubernetes/rel").unwrap();
        // Root's own directory in a sticky, world-writable one is root's alone.
        std::fs::create_dir(r.join("tmp/mine")).unwrap();
        ok("/tmp/mine").unwrap();
        // Another user's, or through another user's symlink, is not.
        let e = ok("/tmp/theirs").unwrap_err();
        assert!(
            e.contains("/tmp/theirs: in /tmp, which another user may write"),
            "{e}"
        );
        assert!(ok("/tmp/theirs/etc/kubernetes/manifests").is_err());
        std::fs::set_permissions(
            r.join("data/manifests"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let e = ok("/etc/kubernetes/linked").unwrap_err();
        assert!(
            e.contains("/data/manifests: another user may write in it"),
            "{e}"
        );
    }
}
