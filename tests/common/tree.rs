//! Copying fixture roots.

use std::path::Path;

/// Copies a fixture root (symlinks as symlinks) so a test can alter it.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().expect("file type");
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).expect("readlink"), &dst)
                .expect("symlink");
        } else if kind.is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// The modes kubeadm gives the kubelet's files (git keeps only 644 and 755).
pub fn set_kubeadm_modes(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for f in [
        "etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
        "etc/kubernetes/kubelet.conf",
        "var/lib/kubelet/config.yaml",
    ] {
        std::fs::set_permissions(root.join(f), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
}
