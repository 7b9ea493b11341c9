//! Writes a kubeadm-like node root for benchmarks: the kubeadm-node fixture, a full PKI made
//! with rcgen, and `--pods` add-on static pods (default 10) beside the fixture's five.
//!
//!     cargo run --example kubeadm_root -- DIR [--pods N]

#[path = "../tests/common/pki.rs"]
mod pki;
#[path = "../tests/common/tree.rs"]
mod tree;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: kubeadm_root DIR [--pods N]");
        return ExitCode::from(2);
    };
    let pods: usize = match args
        .iter()
        .position(|a| a == "--pods")
        .map(|i| args.get(i + 1).map(|n| n.parse()))
    {
        None => 10,
        Some(Some(Ok(n))) => n,
        Some(_) => {
            eprintln!("--pods takes a number");
            return ExitCode::from(2);
        }
    };
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubeadm-node");
    tree::copy_tree(&fixture, &dir);
    tree::set_kubeadm_modes(&dir);
    pki::write_kubeadm_pki(&dir, "node1", pki::Break::None);
    let manifests = dir.join("etc/kubernetes/manifests");
    for i in 0..pods {
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: add-on-{i}, namespace: kube-system}}\nspec:\n  containers:\n  - name: agent\n    image: example.com/agent:1.0\n    resources:\n      limits: {{cpu: 100m, memory: 200Mi}}\n"
        );
        if let Err(e) = std::fs::write(manifests.join(format!("add-on-{i}.yaml")), pod) {
            eprintln!("{}: {e}", manifests.display());
            return ExitCode::from(1);
        }
    }
    println!("{}", dir.display());
    ExitCode::SUCCESS
}
