//! What the node IS: read-only facts, every path resolved inside the node's root file system.
//! Nothing here decides pass or fail.

pub mod cgroups;
pub mod host;
pub mod kernel;
pub mod rootfs;
pub mod runtime;

use std::sync::OnceLock;

use rootfs::{FsError, RootFs};

/// The node as the tests see it. Facts several tests share are read once, on first use.
#[derive(Debug)]
pub struct Node {
    pub root: RootFs,
    release: OnceLock<Result<String, FsError>>,
}

impl Node {
    pub fn new(root: RootFs) -> Self {
        Self {
            root,
            release: OnceLock::new(),
        }
    }

    pub fn kernel_release(&self) -> Result<&str, &FsError> {
        self.release
            .get_or_init(|| kernel::release(&self.root))
            .as_deref()
    }
}
