//! A kubeconfig and the files it names, read inside a node root: the kubeconfig itself and a
//! file at pki/ca.crt next to it, which the kubeconfig may name (relatively or not).
#![no_main]

#[path = "common.rs"]
mod common;

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use node_conformance::node::rootfs::RootFs;
use node_conformance::node::{kubeconfig, pki};

const KUBECONFIG: &str = "/etc/kubernetes/kubelet.conf";

fuzz_target!(|data: &[u8]| {
    let [config, named] = common::parts::<2>(data);
    let dir = common::scratch_root();
    common::put(dir, KUBECONFIG, config);
    common::put(dir, "/etc/kubernetes/pki/ca.crt", named);
    // A root per input: a root caches what it has read.
    let Ok(root) = RootFs::open(dir) else {
        return;
    };
    let _ = kubeconfig::resolve(Path::new(KUBECONFIG), &String::from_utf8_lossy(named));
    let Ok(Some(k)) = kubeconfig::read(&root, Path::new(KUBECONFIG)) else {
        return;
    };
    for pem in [&k.ca, &k.client_cert].into_iter().flatten().flatten() {
        let _ = pki::parse_cert(&pem.bytes);
    }
    if let Some(Ok(key)) = &k.client_key {
        let _ = pki::parse_key(&key.bytes);
        if let Some(Ok(cert)) = &k.client_cert {
            let _ = pki::check_key_pair(&cert.bytes, &key.bytes);
        }
    }
});
