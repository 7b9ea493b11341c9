//! What the node IS: read-only facts, every path resolved inside the node's root file system.
//! Nothing here decides pass or fail.

pub mod apiserver;
pub mod cgroups;
pub mod duration;
pub mod host;
pub mod kernel;
pub mod kubeconfig;
pub mod kubelet;
pub mod pki;
pub mod rootfs;
pub mod runtime;
pub mod staticpods;
pub mod yaml;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rootfs::{FsError, RootFs};

/// A kernel config's location and text, or every place looked at.
pub type KernelConfigText = Result<(PathBuf, Vec<u8>), kernel::ConfigNotFound>;

/// A kubeconfig as [`kubeconfig::read`] returns it, shared by the tests that use it.
pub type KubeconfigRead = Arc<Result<Option<kubeconfig::Kubeconfig>, String>>;

/// kubeadm's static pod directory, where no other is given.
pub const DEFAULT_POD_MANIFEST_DIR: &str = "/etc/kubernetes/manifests";

/// What the harness's command line says about where things are on the node.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub pod_manifest_path: Option<PathBuf>,
    /// The certificate directory [default: kubeadm's, see [`Node::pki_dir`]].
    pub pki_dir: Option<PathBuf>,
    pub kubelet: kubelet::Hints,
}

/// The node as the tests see it. Facts several tests share are read once, on first use.
#[derive(Debug)]
pub struct Node {
    pub root: RootFs,
    options: Options,
    release: OnceLock<Result<String, FsError>>,
    kernel_config: OnceLock<Option<KernelConfigText>>,
    kubelet: OnceLock<Result<kubelet::Kubelet, String>>,
    name: OnceLock<String>,
    pki_dir: OnceLock<PathBuf>,
    static_pods: OnceLock<(PathBuf, Result<Vec<staticpods::Manifest>, FsError>)>,
    kubeconfigs: Mutex<HashMap<PathBuf, KubeconfigRead>>,
}

impl Node {
    pub fn new(root: RootFs, options: Options) -> Self {
        Self {
            root,
            options,
            release: OnceLock::new(),
            kernel_config: OnceLock::new(),
            kubelet: OnceLock::new(),
            name: OnceLock::new(),
            pki_dir: OnceLock::new(),
            static_pods: OnceLock::new(),
            kubeconfigs: Mutex::new(HashMap::new()),
        }
    }

    pub fn kernel_release(&self) -> Result<&str, &FsError> {
        self.release
            .get_or_init(|| kernel::release(&self.root))
            .as_deref()
    }

    /// The kernel's build configuration as found (where, and its text), read once; `None`
    /// when the kernel release, which names the files, is unknown.
    pub fn kernel_config(&self) -> Option<&KernelConfigText> {
        self.kernel_config
            .get_or_init(|| {
                let release = self.kernel_release().ok()?;
                Some(kernel::find_config(&self.root, release))
            })
            .as_ref()
    }

    /// The kubelet, found on first use; `Err` says where it was looked for.
    pub fn kubelet(&self) -> Result<&kubelet::Kubelet, &str> {
        self.kubelet
            .get_or_init(|| kubelet::discover(&self.root, &self.options.kubelet))
            .as_ref()
            .map_err(String::as_str)
    }

    /// The node's name as the kubelet registers it: its --hostname-override, else the hostname
    /// (lowercased, as the kubelet does). Read once.
    pub fn name(&self) -> &str {
        self.name.get_or_init(|| {
            if let Some(h) = self
                .kubelet()
                .ok()
                .and_then(|k| k.flags.get("hostname-override"))
            {
                return h.to_lowercase();
            }
            self.root
                .read_to_string("/etc/hostname", rootfs::FileKind::Config)
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| {
                    rustix::system::uname()
                        .nodename()
                        .to_string_lossy()
                        .into_owned()
                })
                .to_lowercase()
        })
    }

    /// The static pod directory: --pod-manifest-path, else the kubelet's staticPodPath, else
    /// kubeadm's.
    pub fn pod_manifest_dir(&self) -> PathBuf {
        self.options
            .pod_manifest_path
            .clone()
            .or_else(|| {
                self.kubelet()
                    .ok()
                    .and_then(|k| k.str("staticPodPath"))
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from(DEFAULT_POD_MANIFEST_DIR))
    }

    /// The certificate directory: --pki-dir, else kubeadm's `certificatesDir` as the node
    /// shows it ([`pki::kubeadm_cert_dir`]), else kubeadm's default. Found once.
    pub fn pki_dir(&self) -> PathBuf {
        if let Some(dir) = &self.options.pki_dir {
            return dir.clone();
        }
        self.pki_dir
            .get_or_init(|| {
                pki::kubeadm_cert_dir(self).unwrap_or_else(|| PathBuf::from(pki::DEFAULT_PKI_DIR))
            })
            .clone()
    }

    /// The kubeconfig at `path` (and the files it names), read once per run however many
    /// tests ask: the answer `kubeconfig::read` gave the first time.
    pub fn kubeconfig(&self, path: &Path) -> KubeconfigRead {
        // Held across the read so two tests asking at once do not both read; reads are bounded.
        let mut cache = self
            .kubeconfigs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .entry(path.to_path_buf())
            .or_insert_with(|| Arc::new(kubeconfig::read(&self.root, path)))
            .clone()
    }

    /// The static pod manifests and the directory they came from, read once.
    pub fn static_pods(&self) -> (&std::path::Path, Result<&[staticpods::Manifest], &FsError>) {
        let (dir, manifests) = self.static_pods.get_or_init(|| {
            let dir = self.pod_manifest_dir();
            let read = staticpods::read(&self.root, &dir);
            (dir, read)
        });
        (dir, manifests.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kubeconfig_is_read_once_per_run() {
        let t = tempfile::tempdir().unwrap();
        let conf = "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443'}\n\
                    contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n";
        std::fs::write(t.path().join("k.conf"), conf).unwrap();
        let node = Node::new(RootFs::open(t.path()).unwrap(), Options::default());
        let first = node.kubeconfig(Path::new("/k.conf"));
        // Gone from the node: a second read would say so; the run keeps what it read.
        std::fs::remove_file(t.path().join("k.conf")).unwrap();
        let second = node.kubeconfig(Path::new("/k.conf"));
        assert!(Arc::ptr_eq(&first, &second));
        let server = second
            .as_ref()
            .as_ref()
            .unwrap()
            .as_ref()
            .unwrap()
            .server
            .clone();
        assert_eq!(server, "https://127.0.0.1:6443");
    }
}
