//! The kubelet as the harness finds it on a node: its flags (a /proc/<pid>/cmdline when the
//! input's first part holds a NUL, else kubeadm-flags.env), its KubeletConfiguration (YAML or
//! JSON) and a `--config-dir` drop-in, merged as the kubelet merges them, then read through the
//! typed accessors the tests use.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use node_conformance::node::kubelet;
use node_conformance::node::rootfs::RootFs;

/// Fields the tests read, of every type the accessors know.
const FIELDS: &[&str] = &[
    "authentication.anonymous.enabled",
    "authentication.x509.clientCAFile",
    "authorization.mode",
    "readOnlyPort",
    "streamingConnectionIdleTimeout",
    "rotateCertificates",
    "staticPodPath",
    "featureGates.SeccompDefault",
    "tlsCipherSuites",
    "nodeStatusUpdateFrequency",
];

fuzz_target!(|data: &[u8]| {
    let [flags, config, drop_in] = common::parts::<3>(data);
    let dir = common::scratch_root();
    let (cmdline, env) = if flags.contains(&0) {
        (flags, &b""[..])
    } else {
        (&b""[..], flags)
    };
    common::put(dir, "/proc/4242/cmdline", cmdline);
    common::put(dir, kubelet::KUBEADM_FLAGS_ENV, env);
    common::put(dir, kubelet::KUBEADM_CONFIG, config);
    common::put(dir, "/etc/kubernetes/kubelet.conf.d/10-fuzz.conf", drop_in);
    let Ok(root) = RootFs::open(dir) else {
        return;
    };
    let Ok(k) = kubelet::discover(&root, &kubelet::Hints::default()) else {
        return;
    };
    for field in FIELDS {
        let _ = k.get(field);
        let _ = k.bool(field);
        let _ = k.str(field);
        let _ = k.int(field);
        if let Some(Ok(d)) = k.duration(field) {
            let _ = d.to_string();
        }
        let _ = k.origin(field);
    }
    for path in k.drop_in_fields.keys() {
        let _ = k.origin(path);
    }
});
