//! Path resolution inside the node's root file system.
//!
//! The harness runs in a container with the host mounted at `/rootfs`. A host path such as
//! `/etc/kubernetes/pki/ca.crt` may be an absolute symlink; resolved naively it would point
//! into the container. Every lookup here resolves the way the kernel's `RESOLVE_IN_ROOT` does:
//! absolute symlinks restart at the root, `..` stops at the root, and symlink loops end in
//! `ELOOP`.
//!
//! Where the kernel has openat2 (5.6+), a lookup is that one system call. pathrs does the same
//! there, but describes every failed lookup through procfs (a dozen system calls), and most
//! lookups here are expected to fail: a PATH search, the list of kernel config locations. On
//! older kernels, or where a seccomp profile refuses openat2, pathrs's emulation takes over.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pathrs::Root;
use pathrs::error::ErrorKind;
use pathrs::flags::OpenFlags;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Why a host path could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsErrorKind {
    NotFound,
    /// Too many symlinks on the way: a loop, as the kernel reports with ELOOP.
    SymlinkLoop,
    NotADirectory,
    PermissionDenied,
    /// Something other than a regular file where one was expected: its type.
    NotRegular(&'static str),
    /// Larger than the cap for its kind of file.
    TooLarge {
        what: &'static str,
        cap: u64,
    },
    Other(String),
}

/// A failed lookup, naming the host path (as seen on the node, not in the container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsError {
    pub path: PathBuf,
    pub kind: FsErrorKind,
}

impl FsError {
    pub fn is_not_found(&self) -> bool {
        self.kind == FsErrorKind::NotFound
    }
}

impl FsError {
    /// What went wrong, without the path.
    pub fn reason(&self) -> String {
        match &self.kind {
            FsErrorKind::NotFound => "no such file or directory".into(),
            FsErrorKind::SymlinkLoop => "too many levels of symbolic links (a symlink loop)".into(),
            FsErrorKind::NotADirectory => "a path component is not a directory".into(),
            FsErrorKind::PermissionDenied => "permission denied".into(),
            FsErrorKind::NotRegular(t) => format!("is {t}, not a regular file; not read"),
            FsErrorKind::TooLarge { what, cap } => format!(
                "larger than {} MiB, the most the harness reads of {what}; not read",
                cap >> 20
            ),
            FsErrorKind::Other(msg) => msg.clone(),
        }
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason())
    }
}

impl std::error::Error for FsError {}

fn errno_kind(errno: i32) -> FsErrorKind {
    match errno {
        libc_errno::ENOENT => FsErrorKind::NotFound,
        libc_errno::ELOOP => FsErrorKind::SymlinkLoop,
        libc_errno::ENOTDIR => FsErrorKind::NotADirectory,
        libc_errno::EACCES | libc_errno::EPERM => FsErrorKind::PermissionDenied,
        other => FsErrorKind::Other(io::Error::from_raw_os_error(other).to_string()),
    }
}

/// errno values, named through rustix so no libc dependency is needed.
mod libc_errno {
    use rustix::io::Errno;
    pub const ENOENT: i32 = Errno::NOENT.raw_os_error();
    pub const ELOOP: i32 = Errno::LOOP.raw_os_error();
    pub const ENOTDIR: i32 = Errno::NOTDIR.raw_os_error();
    pub const EACCES: i32 = Errno::ACCESS.raw_os_error();
    pub const EPERM: i32 = Errno::PERM.raw_os_error();
}

/// What `stat` says of a resolved path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfo {
    pub is_file: bool,
    pub is_dir: bool,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
}

impl FileInfo {
    pub fn is_executable(&self) -> bool {
        self.is_file && self.mode & 0o111 != 0
    }
}

/// The node's root file system, opened once.
#[derive(Debug)]
pub struct RootFs {
    dir: PathBuf,
    root: Root,
    /// Whether openat2 with RESOLVE_IN_ROOT works here.
    kernel_resolves: bool,
    /// The root is the harness's own `/` (run on the host, not in a container): resolving
    /// inside it is ordinary resolution, and a stat needs one system call instead of three.
    host_root: bool,
    /// What [`RootFs::read_shared`] read, by path as asked.
    shared: Mutex<HashMap<PathBuf, SharedRead>>,
}

/// A file's bytes as [`RootFs::read_shared`] read them, or why it could not.
pub type SharedRead = Result<Arc<[u8]>, FsError>;

impl RootFs {
    /// Opens the root directory. Fails when it does not exist or is not a directory.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, FsError> {
        let given = dir.as_ref();
        let io_err = |e: io::Error| FsError {
            path: given.to_path_buf(),
            kind: e
                .raw_os_error()
                .map_or_else(|| FsErrorKind::Other(e.to_string()), errno_kind),
        };
        // pathrs wants a path without symlinks for the root itself.
        let dir = std::fs::canonicalize(given).map_err(io_err)?;
        let meta = std::fs::metadata(&dir).map_err(io_err)?;
        if !meta.is_dir() {
            return Err(FsError {
                path: given.to_path_buf(),
                kind: FsErrorKind::NotADirectory,
            });
        }
        let root = Root::open(&dir).map_err(|e| FsError {
            path: given.to_path_buf(),
            kind: FsErrorKind::Other(e.to_string()),
        })?;
        let kernel_resolves = !matches!(
            openat2_in_root(&root, Path::new("."), OFlags::PATH | OFlags::DIRECTORY),
            Err(Errno::NOSYS | Errno::PERM)
        );
        let host_root = dir == Path::new("/");
        Ok(Self {
            dir,
            root,
            kernel_resolves,
            host_root,
            shared: Mutex::new(HashMap::new()),
        })
    }

    /// Opens a host path inside the root with `flags` (`O_PATH` for a handle).
    fn open_in_root(&self, path: &Path, flags: OFlags) -> Result<OwnedFd, FsError> {
        if self.kernel_resolves {
            return openat2_in_root(&self.root, path, flags).map_err(|e| FsError {
                path: path.to_path_buf(),
                kind: errno_kind(e.raw_os_error()),
            });
        }
        let result = if flags.contains(OFlags::PATH | OFlags::NOFOLLOW) {
            self.root.resolve_nofollow(path).map(OwnedFd::from)
        } else if flags.contains(OFlags::PATH) {
            self.root.resolve(path).map(OwnedFd::from)
        } else {
            let mut pflags = OpenFlags::O_RDONLY;
            if flags.contains(OFlags::DIRECTORY) {
                pflags |= OpenFlags::O_DIRECTORY;
            }
            self.root.open_subpath(path, pflags).map(OwnedFd::from)
        };
        result.map_err(|e| self.error(path, &e))
    }

    /// The directory this root was opened at, as the harness sees it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn error(&self, path: &Path, err: &pathrs::error::Error) -> FsError {
        let kind = match err.kind() {
            ErrorKind::OsError(Some(errno)) => errno_kind(errno),
            _ => FsErrorKind::Other(err.to_string()),
        };
        FsError {
            path: path.to_path_buf(),
            kind,
        }
    }

    /// Reads a host path, following symlinks inside the root: a regular file of at most
    /// `kind`'s cap. FIFOs, sockets and devices are refused without being opened for reading
    /// ([`FsErrorKind::NotRegular`]); a larger file is [`FsErrorKind::TooLarge`].
    pub fn read(&self, path: impl AsRef<Path>, kind: FileKind) -> Result<Vec<u8>, FsError> {
        let path = path.as_ref();
        let handle = self.open_in_root(path, OFlags::PATH)?;
        read_handle(path, &handle, kind, |flags| self.open_in_root(path, flags))
    }

    /// [`RootFs::read`] once per path for the life of this root: files several tests read
    /// (the cluster CA, a kubeconfig's certificate) are read once per run, and every test
    /// judges the same bytes. For small files only (certificates, keys, tokens).
    pub fn read_shared(&self, path: impl AsRef<Path>, kind: FileKind) -> SharedRead {
        let path = path.as_ref();
        // Held across the read so two tests asking at once do not both read; reads are bounded.
        let mut shared = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        shared
            .entry(path.to_path_buf())
            .or_insert_with(|| self.read(path, kind).map(Arc::from))
            .clone()
    }

    /// [`RootFs::read`] as UTF-8 text.
    pub fn read_to_string(
        &self,
        path: impl AsRef<Path>,
        kind: FileKind,
    ) -> Result<String, FsError> {
        let path = path.as_ref();
        utf8(path, self.read(path, kind)?)
    }

    /// `stat` of a host path, following symlinks inside the root.
    pub fn metadata(&self, path: impl AsRef<Path>) -> Result<FileInfo, FsError> {
        let path = path.as_ref();
        if self.host_root {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(Path::new("/").join(path)).map_err(|e| io_error(path, &e))?;
            return Ok(FileInfo {
                is_file: m.is_file(),
                is_dir: m.is_dir(),
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                size: m.size(),
            });
        }
        let handle = self.open_in_root(path, OFlags::PATH)?;
        let st = rustix::fs::fstat(&handle).map_err(|e| FsError {
            path: path.to_path_buf(),
            kind: errno_kind(e.raw_os_error()),
        })?;
        let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
        Ok(FileInfo {
            is_file: kind == rustix::fs::FileType::RegularFile,
            is_dir: kind == rustix::fs::FileType::Directory,
            mode: std::fs::Permissions::from_mode(st.st_mode).mode() & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            size: u64::try_from(st.st_size).unwrap_or(0),
        })
    }

    /// `lstat` of a host path: its directories resolved inside the root, a symlink at its
    /// end described, not followed.
    pub fn lstat(&self, path: impl AsRef<Path>) -> Result<FileInfo, FsError> {
        let path = path.as_ref();
        let handle = self.open_in_root(path, OFlags::PATH | OFlags::NOFOLLOW)?;
        let st = rustix::fs::fstat(&handle).map_err(|e| FsError {
            path: path.to_path_buf(),
            kind: errno_kind(e.raw_os_error()),
        })?;
        let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
        Ok(FileInfo {
            is_file: kind == rustix::fs::FileType::RegularFile,
            is_dir: kind == rustix::fs::FileType::Directory,
            mode: std::fs::Permissions::from_mode(st.st_mode).mode() & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            size: u64::try_from(st.st_size).unwrap_or(0),
        })
    }

    /// Whether a host path resolves to something; loops and other errors count as absent.
    pub fn exists(&self, path: impl AsRef<Path>) -> bool {
        if self.host_root {
            return std::fs::metadata(Path::new("/").join(path.as_ref())).is_ok();
        }
        self.open_in_root(path.as_ref(), OFlags::PATH).is_ok()
    }

    /// A Unix socket at a host path, held open so a client can connect to it.
    pub fn socket(&self, path: impl AsRef<Path>) -> Result<SocketHandle, FsError> {
        let path = path.as_ref();
        let fd = self.open_in_root(path, OFlags::PATH)?;
        let st = rustix::fs::fstat(&fd).map_err(|e| FsError {
            path: path.to_path_buf(),
            kind: errno_kind(e.raw_os_error()),
        })?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Socket {
            return Err(FsError {
                path: path.to_path_buf(),
                kind: FsErrorKind::Other("exists but is not a socket".into()),
            });
        }
        Ok(SocketHandle {
            fd,
            host_path: path.to_path_buf(),
        })
    }

    /// A symlink's target as written (not followed), such as `/proc/<pid>/cwd`'s.
    pub fn read_link(&self, path: impl AsRef<Path>) -> Result<PathBuf, FsError> {
        let path = path.as_ref();
        if self.host_root {
            return std::fs::read_link(Path::new("/").join(path)).map_err(|e| io_error(path, &e));
        }
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(FsError {
                path: path.to_path_buf(),
                kind: FsErrorKind::Other("not a link".into()),
            });
        };
        let dir = self.open_in_root(parent, OFlags::PATH | OFlags::DIRECTORY)?;
        let target = rustix::fs::readlinkat(&dir, name, Vec::new()).map_err(|e| FsError {
            path: path.to_path_buf(),
            kind: errno_kind(e.raw_os_error()),
        })?;
        Ok(PathBuf::from(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(target.as_bytes()),
        ))
    }

    /// A handle (`O_PATH`) on a host directory, resolved inside the root.
    pub fn open_dir(&self, path: impl AsRef<Path>) -> Result<OwnedFd, FsError> {
        let path = path.as_ref();
        let fd = self.open_in_root(path, OFlags::PATH | OFlags::DIRECTORY)?;
        let st = rustix::fs::fstat(&fd).map_err(|e| FsError {
            path: path.to_path_buf(),
            kind: errno_kind(e.raw_os_error()),
        })?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
            return Err(FsError {
                path: path.to_path_buf(),
                kind: FsErrorKind::NotADirectory,
            });
        }
        Ok(fd)
    }

    /// `/proc/<pid>/<name>` of the node's procfs opened with `flags`, following that last link (a
    /// process's `root` or one of its `ns/` files, which resolution inside the root never
    /// follows). Fails unless the node's `/proc` is a procfs.
    pub fn open_proc_entry(&self, pid: u32, name: &str, flags: OFlags) -> Result<OwnedFd, FsError> {
        let shown = PathBuf::from(format!("/proc/{pid}/{name}"));
        let fail = |e: Errno| FsError {
            path: shown.clone(),
            kind: errno_kind(e.raw_os_error()),
        };
        let proc = self.open_in_root(Path::new("/proc"), OFlags::RDONLY | OFlags::DIRECTORY)?;
        // PROC_SUPER_MAGIC: a directory that only looks like /proc has no processes' links.
        if rustix::fs::fstatfs(&proc).map_err(fail)?.f_type as i64 != 0x9fa0 {
            return Err(FsError {
                path: PathBuf::from("/proc"),
                kind: FsErrorKind::Other("not a procfs".into()),
            });
        }
        let dir = rustix::fs::openat(
            &proc,
            pid.to_string(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(fail)?;
        rustix::fs::openat(&dir, name, flags | OFlags::CLOEXEC, Mode::empty()).map_err(fail)
    }

    /// The names in a host directory, sorted, without `.` and `..`.
    pub fn read_dir(&self, path: impl AsRef<Path>) -> Result<Vec<OsString>, FsError> {
        let path = path.as_ref();
        let dir = self.open_in_root(path, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let to_err = |e: rustix::io::Errno| FsError {
            path: path.to_path_buf(),
            kind: errno_kind(e.raw_os_error()),
        };
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&dir).map_err(to_err)? {
            let entry = entry.map_err(to_err)?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(
                    <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name)
                        .to_os_string(),
                );
            }
        }
        names.sort();
        Ok(names)
    }
}

/// A socket found inside the root. Clients connect through the harness's own
/// `/proc/self/fd/N` link to it: the socket's path as the harness sees it may run through
/// symlinks that only make sense on the host (`/var/run -> /run`).
#[derive(Debug)]
pub struct SocketHandle {
    fd: OwnedFd,
    host_path: PathBuf,
}

impl SocketHandle {
    /// The path to connect to; valid while this handle lives.
    pub fn connect_path(&self) -> String {
        use std::os::fd::AsRawFd;
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }

    /// The socket's path on the node, for messages.
    pub fn host_path(&self) -> &Path {
        &self.host_path
    }
}

/// What a file is, for the size it may have. Every read of a node file or a user file names
/// one; the caps are far above any real file of the kind (see the README), so reaching one
/// means the node is broken or hostile, and the read fails instead of exhausting memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A kernel interface file under /proc or /sys: a sysctl, /proc/swaps, a process's
    /// cmdline. They report size 0, so only the cap bounds the read.
    Kernel,
    /// A configuration file: kubelet config, kubeconfig, os-release, a system spec.
    Config,
    /// A static pod manifest. etcd stores an object of at most 1.5 MiB, so a larger manifest
    /// could never be mirrored; a real one is a few KiB.
    Manifest,
    /// A kernel build configuration, as stored and (for gzip) once decompressed.
    KernelConfig,
    /// A certificate, key or public key.
    Pki,
    /// The static harness binary the test image is made from.
    WorkloadBinary,
    /// A node's `results.json`, read by `report` (a few hundred KiB for a full run).
    Results,
}

impl FileKind {
    /// The largest file of this kind the harness reads, in bytes.
    pub const fn cap(self) -> u64 {
        match self {
            FileKind::Kernel => 4 << 20,
            FileKind::Config | FileKind::KernelConfig => 16 << 20,
            FileKind::Pki | FileKind::Manifest => 1 << 20,
            // A debug build of the harness, with its debug info, is about 200 MiB.
            FileKind::WorkloadBinary => 512 << 20,
            FileKind::Results => 32 << 20,
        }
    }

    pub const fn describe(self) -> &'static str {
        match self {
            FileKind::Kernel => "a kernel interface file",
            FileKind::Config => "a configuration file",
            FileKind::KernelConfig => "a kernel config",
            FileKind::Pki => "a certificate or key",
            FileKind::Manifest => "a static pod manifest",
            FileKind::WorkloadBinary => "the workload binary",
            FileKind::Results => "a results.json",
        }
    }
}

/// The name of a file type that is not a regular file, for messages.
fn type_name(t: rustix::fs::FileType) -> &'static str {
    use rustix::fs::FileType;
    match t {
        FileType::Fifo => "a FIFO (named pipe)",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        _ => "not a regular file",
    }
}

fn size_error(kind: FileKind) -> FsErrorKind {
    FsErrorKind::TooLarge {
        what: kind.describe(),
        cap: kind.cap(),
    }
}

/// Reads the regular file behind `handle` (an `O_PATH` descriptor or an open one) with the
/// cap of `kind`. Anything else is refused before it is opened for reading, so a FIFO cannot
/// block the open and a device is never opened at all: the read opens the same inode again
/// through `/proc/self/fd`, non-blocking, and checks that it still is that regular file.
/// Without a `/proc` to do that through, `by_path` opens the path again (non-blocking, so a
/// FIFO swapped in meanwhile cannot block it either; the inode check refuses it). `shown`
/// names the file in errors.
fn read_handle(
    shown: &Path,
    handle: &OwnedFd,
    kind: FileKind,
    by_path: impl FnOnce(OFlags) -> Result<OwnedFd, FsError>,
) -> Result<Vec<u8>, FsError> {
    let fail = |kind: FsErrorKind| FsError {
        path: shown.to_path_buf(),
        kind,
    };
    let errno = |e: Errno| fail(errno_kind(e.raw_os_error()));
    let st = rustix::fs::fstat(handle).map_err(errno)?;
    let file_type = rustix::fs::FileType::from_raw_mode(st.st_mode);
    if file_type != rustix::fs::FileType::RegularFile {
        return Err(fail(FsErrorKind::NotRegular(type_name(file_type))));
    }
    let cap = kind.cap();
    if u64::try_from(st.st_size).unwrap_or(0) > cap {
        return Err(fail(size_error(kind)));
    }
    use std::os::fd::AsRawFd;
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let reopened = match rustix::fs::open(
        format!("/proc/self/fd/{}", handle.as_raw_fd()),
        flags,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) if !Path::new("/proc/self/fd").exists() => by_path(flags)?,
        Err(e) => return Err(errno(e)),
    };
    let again = rustix::fs::fstat(&reopened).map_err(errno)?;
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
        return Err(fail(FsErrorKind::Other(
            "changed while it was being opened".into(),
        )));
    }
    read_capped(File::from(reopened), kind).map_err(|e| FsError {
        path: shown.to_path_buf(),
        kind: e,
    })
}

/// At most the cap of `kind` bytes from `r`; more is an error, not a truncation.
pub fn read_capped(r: impl Read, kind: FileKind) -> Result<Vec<u8>, FsErrorKind> {
    let cap = kind.cap();
    let mut buf = Vec::new();
    r.take(cap + 1).read_to_end(&mut buf).map_err(|e| {
        e.raw_os_error()
            .map_or_else(|| FsErrorKind::Other(e.to_string()), errno_kind)
    })?;
    if buf.len() as u64 > cap {
        return Err(size_error(kind));
    }
    Ok(buf)
}

/// Reads a file of the harness's own file system (a `--system-spec`, the
/// `--workload-binary`), with the same checks as a node file: a regular file, at most the
/// cap of `kind`. Symlinks are followed, as a path given on the command line would be.
pub fn read_local(path: &Path, kind: FileKind) -> Result<Vec<u8>, FsError> {
    let handle =
        rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
            FsError {
                path: path.to_path_buf(),
                kind: errno_kind(e.raw_os_error()),
            }
        })?;
    read_handle(path, &handle, kind, |flags| {
        rustix::fs::open(path, flags, Mode::empty()).map_err(|e| FsError {
            path: path.to_path_buf(),
            kind: errno_kind(e.raw_os_error()),
        })
    })
}

/// `read_local` as UTF-8 text.
pub fn read_local_string(path: &Path, kind: FileKind) -> Result<String, FsError> {
    utf8(path, read_local(path, kind)?)
}

fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String, FsError> {
    String::from_utf8(bytes).map_err(|_| FsError {
        path: path.to_path_buf(),
        kind: FsErrorKind::Other("not valid UTF-8 text".into()),
    })
}

/// One openat2 call resolving `path` as if `root` were `/`. A rename elsewhere on the file
/// system can make the kernel answer EAGAIN; it is safe to ask again.
fn openat2_in_root(root: &Root, path: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(root, path, flags | OFlags::CLOEXEC, Mode::empty(), resolve) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            other => return other,
        }
    }
}

fn io_error(path: &Path, e: &io::Error) -> FsError {
    FsError {
        path: path.to_path_buf(),
        kind: e
            .raw_os_error()
            .map_or_else(|| FsErrorKind::Other(e.to_string()), errno_kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A small root; `kernel` picks openat2 or the pathrs emulation older kernels get.
    fn tree(kernel: bool) -> (tempfile::TempDir, RootFs) {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir_all(r.join("etc/alternatives")).unwrap();
        std::fs::create_dir_all(r.join("usr/sbin")).unwrap();
        std::fs::write(r.join("etc/hostname"), "node1\n").unwrap();
        std::fs::write(r.join("usr/sbin/iptables-legacy"), "#!/bin/sh\n").unwrap();
        let mut root = RootFs::open(r).unwrap();
        assert!(root.kernel_resolves, "this kernel has openat2");
        root.kernel_resolves = kernel;
        (tmp, root)
    }

    #[test]
    fn reads_a_plain_file() {
        for kernel in [true, false] {
            let (_t, root) = tree(kernel);
            assert_eq!(
                root.read_to_string("/etc/hostname", FileKind::Config)
                    .unwrap(),
                "node1\n"
            );
            assert_eq!(
                root.read_to_string("etc/hostname", FileKind::Config)
                    .unwrap(),
                "node1\n"
            );
        }
    }

    #[test]
    fn absolute_symlinks_resolve_inside_the_root() {
        for kernel in [true, false] {
            let (t, root) = tree(kernel);
            // On the host this chain ends in /usr/sbin/iptables-legacy; the container's own /usr
            // must never be consulted.
            symlink(
                "/etc/alternatives/iptables",
                t.path().join("usr/sbin/iptables"),
            )
            .unwrap();
            symlink(
                "/usr/sbin/iptables-legacy",
                t.path().join("etc/alternatives/iptables"),
            )
            .unwrap();
            assert_eq!(
                root.read_to_string("/usr/sbin/iptables", FileKind::Config)
                    .unwrap(),
                "#!/bin/sh\n"
            );
            // A link to a path that exists only outside the root must not be found.
            let outside = tempfile::NamedTempFile::new().unwrap();
            symlink(outside.path(), t.path().join("etc/escape")).unwrap();
            assert!(
                root.read("/etc/escape", FileKind::Config)
                    .unwrap_err()
                    .is_not_found()
            );
        }
    }

    #[test]
    fn dotdot_cannot_climb_out() {
        for kernel in [true, false] {
            let (t, root) = tree(kernel);
            assert_eq!(
                root.read_to_string("/../../../etc/hostname", FileKind::Config)
                    .unwrap(),
                "node1\n"
            );
            symlink(
                "../../../../../../etc/hostname",
                t.path().join("usr/sbin/up"),
            )
            .unwrap();
            assert_eq!(
                root.read_to_string("/usr/sbin/up", FileKind::Config)
                    .unwrap(),
                "node1\n"
            );
            // The file outside, next to the root directory, is out of reach.
            let parent_name = t.path().file_name().unwrap().to_string_lossy().to_string();
            let climbed = format!("/../{parent_name}/etc/hostname");
            assert!(
                root.read(&climbed, FileKind::Config)
                    .unwrap_err()
                    .is_not_found()
            );
        }
    }

    #[test]
    fn symlink_loops_are_reported() {
        for kernel in [true, false] {
            let (t, root) = tree(kernel);
            symlink("/etc/b", t.path().join("etc/a")).unwrap();
            symlink("/etc/a", t.path().join("etc/b")).unwrap();
            symlink("self", t.path().join("etc/self")).unwrap();
            for p in ["/etc/a", "/etc/self"] {
                let err = root.read(p, FileKind::Config).unwrap_err();
                assert_eq!(err.kind, FsErrorKind::SymlinkLoop, "{p}");
                assert!(err.to_string().contains("symlink loop"), "{err}");
            }
            assert!(!root.exists("/etc/a"));
        }
    }

    #[test]
    fn the_host_root_answers_as_in_root_resolution_does() {
        let fast = RootFs::open("/").unwrap();
        assert!(fast.host_root);
        let mut slow = RootFs::open("/").unwrap();
        slow.host_root = false;
        for p in [
            "/etc",
            "/proc/self/status",
            "/usr/bin/env",
            "/no/such/file",
            "/etc/passwd/x",
        ] {
            let facts = |i: FileInfo| (i.is_file, i.is_dir, i.mode, i.uid, i.gid, i.size);
            match (fast.metadata(p), slow.metadata(p)) {
                (Ok(a), Ok(b)) => assert_eq!(facts(a), facts(b), "{p}"),
                (Err(a), Err(b)) => assert_eq!(a.kind, b.kind, "{p}"),
                other => panic!("{p}: {other:?}"),
            }
            assert_eq!(fast.exists(p), slow.exists(p), "{p}");
        }
    }

    #[test]
    fn metadata_and_read_dir() {
        for kernel in [true, false] {
            let (t, root) = tree(kernel);
            std::fs::set_permissions(
                t.path().join("usr/sbin/iptables-legacy"),
                std::fs::Permissions::from_mode(0o755),
            )
            .unwrap();
            let info = root.metadata("/usr/sbin/iptables-legacy").unwrap();
            assert!(info.is_executable());
            assert_eq!(info.mode, 0o755);
            assert!(root.metadata("/usr/sbin").unwrap().is_dir);
            assert!(!root.metadata("/etc/hostname").unwrap().is_executable());
            assert_eq!(
                root.read_dir("/etc").unwrap(),
                vec![OsString::from("alternatives"), "hostname".into()]
            );
            assert!(root.read_dir("/nope").unwrap_err().is_not_found());
        }
    }

    #[test]
    fn only_regular_files_are_read_and_opening_never_blocks() {
        for kernel in [true, false] {
            let (t, root) = tree(kernel);
            // A FIFO with no writer: a blocking open would wait for one forever.
            rustix::fs::mknodat(
                rustix::fs::CWD,
                t.path().join("etc/fifo"),
                rustix::fs::FileType::Fifo,
                Mode::from_raw_mode(0o644),
                0,
            )
            .unwrap();
            let _listener =
                std::os::unix::net::UnixListener::bind(t.path().join("etc/sock")).unwrap();
            // A device reached through an absolute symlink: /dev/zero would never end.
            std::fs::create_dir_all(t.path().join("dev")).unwrap();
            symlink("/dev/zero", t.path().join("etc/zero")).unwrap();
            let dev_in_root = t.path().join("dev/zero");
            let devnode = rustix::fs::mknodat(
                rustix::fs::CWD,
                &dev_in_root,
                rustix::fs::FileType::CharacterDevice,
                Mode::from_raw_mode(0o666),
                rustix::fs::makedev(1, 5),
            );
            for (p, what) in [
                ("/etc/fifo", "a FIFO (named pipe)"),
                ("/etc/sock", "a socket"),
                ("/etc", "a directory"),
            ] {
                let err = root.read(p, FileKind::Config).unwrap_err();
                assert_eq!(err.kind, FsErrorKind::NotRegular(what), "{p}");
                let shown = err.to_string();
                assert!(shown.contains(p) && shown.contains(what), "{shown}");
            }
            // Creating a device node needs CAP_MKNOD; where the tests run without it, the
            // FIFO and the socket above cover the refusal.
            if devnode.is_ok() {
                let err = root.read("/etc/zero", FileKind::Config).unwrap_err();
                assert_eq!(err.kind, FsErrorKind::NotRegular("a character device"));
            }
        }
    }

    #[test]
    fn reads_stop_at_the_cap_of_their_kind() {
        for kernel in [true, false] {
            let (t, root) = tree(kernel);
            let big = vec![b'x'; (FileKind::Pki.cap() + 1) as usize];
            std::fs::write(t.path().join("etc/big"), &big).unwrap();
            let err = root.read("/etc/big", FileKind::Pki).unwrap_err();
            assert!(matches!(err.kind, FsErrorKind::TooLarge { .. }), "{err}");
            assert!(
                err.to_string().starts_with("/etc/big: larger than 1 MiB"),
                "{err}"
            );
            assert_eq!(
                root.read("/etc/big", FileKind::Config).unwrap().len(),
                big.len()
            );
        }
        // /proc reports size 0 for what it holds: the cap bounds the read, not the size.
        let host = RootFs::open("/").unwrap();
        assert!(host.metadata("/proc/self/status").unwrap().size == 0);
        let status = host
            .read_to_string("/proc/self/status", FileKind::Kernel)
            .unwrap();
        assert!(status.contains("VmRSS"), "{status}");
        let err = read_capped(std::io::repeat(0), FileKind::Kernel).unwrap_err();
        assert!(matches!(err, FsErrorKind::TooLarge { cap, .. } if cap == 4 << 20));
    }

    #[test]
    fn local_files_are_checked_as_node_files_are() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("spec.yaml");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let err = read_local(&fifo, FileKind::Config).unwrap_err();
        assert_eq!(err.kind, FsErrorKind::NotRegular("a FIFO (named pipe)"));
        let err = read_local(Path::new("/dev/null"), FileKind::Config).unwrap_err();
        assert_eq!(err.kind, FsErrorKind::NotRegular("a character device"));
        // The default workload binary: the magic link leads to the running executable, a
        // regular file (a debug test binary is over the cap; a release build is not).
        match read_local(Path::new("/proc/self/exe"), FileKind::WorkloadBinary) {
            Ok(bytes) => assert!(bytes.starts_with(b"\x7fELF")),
            Err(e) => assert!(matches!(e.kind, FsErrorKind::TooLarge { .. }), "{e}"),
        }
        std::fs::write(t.path().join("ok"), "a: 1\n").unwrap();
        assert_eq!(
            read_local_string(&t.path().join("ok"), FileKind::Config).unwrap(),
            "a: 1\n"
        );
    }

    #[test]
    fn shared_reads_read_once() {
        let (t, root) = tree(true);
        let first = root.read_shared("/etc/hostname", FileKind::Pki).unwrap();
        std::fs::write(t.path().join("etc/hostname"), "changed\n").unwrap();
        let again = root.read_shared("/etc/hostname", FileKind::Pki).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert!(
            root.read_shared("/nope", FileKind::Pki)
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn a_missing_root_is_an_error() {
        let err = RootFs::open("/definitely/not/here").unwrap_err();
        assert!(err.is_not_found());
    }
}
