//! What the node IS: read-only facts, every path resolved inside the node's root file system.
//! Nothing here decides pass or fail.

pub mod cgroups;
pub mod host;
pub mod kernel;
pub mod rootfs;
pub mod runtime;
pub mod staticpods;

use std::path::PathBuf;
use std::sync::OnceLock;

use rootfs::{FsError, RootFs};

/// kubeadm's static pod directory, where no other is given.
pub const DEFAULT_POD_MANIFEST_DIR: &str = "/etc/kubernetes/manifests";

/// The node as the tests see it. Facts several tests share are read once, on first use.
#[derive(Debug)]
pub struct Node {
    pub root: RootFs,
    /// The kubelet's static pod directory, as a host path.
    pub pod_manifest_dir: PathBuf,
    release: OnceLock<Result<String, FsError>>,
    static_pods: OnceLock<Result<Vec<staticpods::Manifest>, FsError>>,
}

impl Node {
    pub fn new(root: RootFs, pod_manifest_dir: PathBuf) -> Self {
        Self {
            root,
            pod_manifest_dir,
            release: OnceLock::new(),
            static_pods: OnceLock::new(),
        }
    }

    pub fn kernel_release(&self) -> Result<&str, &FsError> {
        self.release
            .get_or_init(|| kernel::release(&self.root))
            .as_deref()
    }

    /// The static pod manifests, read once.
    pub fn static_pods(&self) -> Result<&[staticpods::Manifest], &FsError> {
        self.static_pods
            .get_or_init(|| staticpods::read(&self.root, &self.pod_manifest_dir))
            .as_deref()
    }
}
