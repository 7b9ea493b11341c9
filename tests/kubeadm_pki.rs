//! The PKI tests on node roots the real kubeadm wrote: kubeadm 1.20.2, built from Debian's
//! source package by scripts/peer-kubeadm.sh, runs `init phase certs all`, `kubeconfig all`,
//! `control-plane all`, `etcd local` and `kubelet-start` under `--rootfs` (a chroot into a
//! temporary directory, so nothing of this machine is touched, and no init system is found to
//! start a kubelet with) for several configurations. Every PKI test must pass on what kubeadm
//! wrote; the SANs the harness expected must be exactly those kubeadm put in the certificates
//! (less the user's certSANs, which it reports as accepted extras); and one planted defect per
//! configuration must fail exactly the test of the certificate it breaks, naming the SAN.
//!
//! Needs root (for the chroot), the kubeadm binary (NODE_CONFORMANCE_KUBEADM, else
//! scripts/peer-kubeadm.sh's cache) and openssl (to re-issue a certificate with kubeadm's CA);
//! skipped otherwise, unless NODE_CONFORMANCE_REQUIRE_KUBEADM=1 (CI), which makes their absence
//! a failure.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Run, message, run_on};
use x509_parser::prelude::*;

const DEFAULT_KUBEADM: &str = "/var/cache/node-conformance-peers/kubeadm-1.20.2/kubeadm";
const CONFIG: &str = "kubeadm-config.yaml";
/// kubeadm's default certificatesDir, relative to the root.
const PKI: &str = "etc/kubernetes/pki";

const APISERVER: &str = "the API server's serving certificate (apiserver.crt) is valid";
const ETCD_SERVER: &str = "the etcd server certificate (etcd/server.crt) is valid";
const ETCD_PEER: &str = "the etcd peer certificate (etcd/peer.crt) is valid";

fn kubeadm() -> Option<PathBuf> {
    let path = std::env::var_os("NODE_CONFORMANCE_KUBEADM")
        .map_or_else(|| PathBuf::from(DEFAULT_KUBEADM), PathBuf::from);
    let root = rustix::process::geteuid().is_root();
    let openssl = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !(root && openssl && path.exists()) {
        assert!(
            std::env::var("NODE_CONFORMANCE_REQUIRE_KUBEADM").as_deref() != Ok("1"),
            "the real kubeadm is required (NODE_CONFORMANCE_REQUIRE_KUBEADM=1) but is not usable \
             here: {} exists: {}, root: {root}, openssl: {openssl} (scripts/peer-kubeadm.sh \
             builds it)",
            path.display(),
            path.exists()
        );
        eprintln!(
            "\n*** SKIPPED: the PKI rules are not checked against the real kubeadm here: {} \
             exists: {}, root: {root}, openssl: {openssl}; run scripts/peer-kubeadm.sh as root \
             (NODE_CONFORMANCE_REQUIRE_KUBEADM=1 makes this a failure) ***\n",
            path.display(),
            path.exists()
        );
        return None;
    }
    Some(path)
}

/// One kubeadm configuration and what its user added to kubeadm's own SANs.
struct Case {
    node: &'static str,
    /// kubeadm's certificatesDir, relative to the root.
    pki: &'static str,
    /// InitConfiguration and ClusterConfiguration, kubeadm.k8s.io/v1beta2 (kubeadm 1.20).
    config: String,
    apiserver_cert_sans: &'static [&'static str],
    etcd_server_cert_sans: &'static [&'static str],
    etcd_peer_cert_sans: &'static [&'static str],
}

/// The InitConfiguration for `node` advertising `address`, then `cluster`, the
/// ClusterConfiguration's fields (each line indented as at the top level).
fn config(node: &str, address: &str, cluster: &str) -> String {
    format!(
        "apiVersion: kubeadm.k8s.io/v1beta2\n\
         kind: InitConfiguration\n\
         localAPIEndpoint:\n  advertiseAddress: \"{address}\"\n  bindPort: 6443\n\
         nodeRegistration:\n  name: {node}\n  criSocket: /run/containerd/containerd.sock\n\
         ---\n\
         apiVersion: kubeadm.k8s.io/v1beta2\n\
         kind: ClusterConfiguration\n\
         kubernetesVersion: v1.20.2\n\
         {cluster}"
    )
}

/// Where the real machine keeps what kubeadm writes: the chroot must keep it out of there.
const HOST_PATHS: &[&str] = &[
    "/etc/kubernetes/pki/ca.crt",
    "/etc/kubernetes/admin.conf",
    "/etc/kubernetes/manifests/kube-apiserver.yaml",
    "/var/lib/kubelet/kubeadm-flags.env",
];

/// kubeadm `args` under `--rootfs root`, with the case's configuration; panics with all it
/// said if it fails.
fn run_kubeadm(kubeadm: &Path, root: &Path, args: &[&str]) {
    let out = Command::new(kubeadm)
        .args(args)
        .arg("--config")
        .arg(format!("/{CONFIG}"))
        .arg("--rootfs")
        .arg(root)
        // No PATH inside the chroot: kubeadm finds no systemctl to stop or start a kubelet with.
        .env("PATH", "/nonexistent")
        .output()
        .expect("kubeadm runs");
    assert!(
        out.status.success(),
        "kubeadm {args:?} failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A node root as kubeadm init writes it for `case`: PKI, kubeconfigs, static pods, kubelet
/// configuration and flags.
fn kubeadm_root(kubeadm: &Path, case: &Case) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join(CONFIG), &case.config).unwrap();
    let on_host: Vec<bool> = HOST_PATHS.iter().map(|p| Path::new(p).exists()).collect();
    run_kubeadm(kubeadm, &root, &["init", "phase", "certs", "all"]);
    // kubeadm honoured --rootfs before it is let near the kubelet.
    assert!(root.join(case.pki).join("ca.crt").exists());
    for (p, before) in HOST_PATHS.iter().zip(&on_host) {
        assert_eq!(
            Path::new(p).exists(),
            *before,
            "kubeadm wrote {p} on this machine"
        );
    }
    run_kubeadm(kubeadm, &root, &["init", "phase", "kubeconfig", "all"]);
    run_kubeadm(kubeadm, &root, &["init", "phase", "control-plane", "all"]);
    run_kubeadm(kubeadm, &root, &["init", "phase", "etcd", "local"]);
    run_kubeadm(kubeadm, &root, &["init", "phase", "kubelet-start"]);
    for (p, before) in HOST_PATHS.iter().zip(&on_host) {
        assert_eq!(
            Path::new(p).exists(),
            *before,
            "kubeadm wrote {p} on this machine"
        );
    }
    for f in [
        "etc/kubernetes/kubelet.conf",
        "etc/kubernetes/manifests/kube-apiserver.yaml",
        "etc/kubernetes/manifests/etcd.yaml",
        "var/lib/kubelet/config.yaml",
        "var/lib/kubelet/kubeadm-flags.env",
    ] {
        assert!(root.join(f).exists(), "kubeadm did not write {f}");
    }
    // The configuration is the operator's, not something kubeadm leaves on the node.
    std::fs::remove_file(root.join(CONFIG)).unwrap();
    (dir, root)
}

fn pki_run(root: &Path) -> Run {
    run_on(root, &["--focus", "PKI"])
}

fn short(name: &str) -> String {
    name.trim_start_matches("[sig-node] PKI ")
        .trim_end_matches(" [NodeBestPractice]")
        .to_string()
}

fn failed(run: &Run) -> Vec<String> {
    let mut f: Vec<String> = run.failed().iter().map(|n| short(n)).collect();
    f.sort();
    f
}

/// A SAN as the harness prints it: IPs in Rust's (and Go's) canonical form, DNS names lower
/// case.
fn norm(s: &str) -> String {
    s.parse::<IpAddr>().map_or_else(
        |_| s.to_ascii_lowercase(),
        |ip| ip.to_canonical().to_string(),
    )
}

fn set<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    items.into_iter().map(norm).collect()
}

/// The SANs in a certificate file, as kubeadm wrote them.
fn cert_sans(path: &Path) -> BTreeSet<String> {
    let pem = std::fs::read(path).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let (_, cert) = X509Certificate::from_der(&pem.contents).unwrap();
    let mut out = BTreeSet::new();
    if let Some(san) = cert.subject_alternative_name().unwrap() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => {
                    out.insert(norm(d));
                }
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()),
                        16 => IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()),
                        n => panic!("an IP SAN of {n} bytes"),
                    };
                    out.insert(ip.to_canonical().to_string());
                }
                other => panic!("kubeadm wrote a {other:?} SAN"),
            }
        }
    }
    out
}

/// A test's checks from results.json: (item, status, detail).
fn checks(run: &Run, test: &str) -> Vec<(String, String, String)> {
    let json = run.json();
    let t = json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str().unwrap().contains(test))
        .unwrap_or_else(|| panic!("no test {test} in results.json"))
        .clone();
    t["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("item"), s("status"), s("detail"))
        })
        .collect()
}

fn check(run: &Run, test: &str, item: &str) -> Option<(String, String)> {
    checks(run, test)
        .into_iter()
        .find(|(i, _, _)| i == item)
        .map(|(_, s, d)| (s, d))
}

/// What the harness made of a certificate's SANs: those it listed as the certificate's, and
/// those it expected (the listed ones less the extras it reported beyond kubeadm's own).
fn harness_sans(run: &Run, test: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (status, detail) = check(run, test, "SANs").expect("a SANs check");
    assert_eq!(status, "ok", "{test}: {detail}");
    let listed = set(detail.split(", "));
    let extra = match check(run, test, "extra SANs") {
        None => BTreeSet::new(),
        Some((status, detail)) => {
            assert_eq!(status, "info", "{test}: {detail}");
            let names = detail
                .split_once(": beyond kubeadm's own")
                .unwrap_or_else(|| panic!("{detail}"))
                .0;
            set(names.split(", "))
        }
    };
    assert!(extra.is_subset(&listed), "{extra:?} not in {listed:?}");
    let expected = listed.difference(&extra).cloned().collect();
    (listed, expected)
}

/// Runs the PKI tests on kubeadm's root for `case`: all pass, and for each certificate with
/// SANs the harness expected exactly kubeadm's less the user's extras, which it reported as
/// accepted extras. The root is returned for the case to break.
fn passes_on_kubeadms_output(kubeadm: &Path, case: &Case) -> (tempfile::TempDir, PathBuf, Run) {
    let (dir, root) = kubeadm_root(kubeadm, case);
    let run = pki_run(&root);
    assert_eq!(run.code(), 0, "{}", run.explain());
    let json = run.json();
    let verdicts: Vec<(String, String)> = json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"].as_str().unwrap().starts_with("[sig-node] PKI "))
        .map(|t| {
            (
                short(t["name"].as_str().unwrap()),
                t["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(verdicts.len(), 15, "{verdicts:?}");
    for (name, verdict) in &verdicts {
        assert_eq!(verdict, "passed", "{name}\n{}", run.explain());
    }
    let pki = root.join(case.pki);
    for (test, file, user) in [
        (APISERVER, "apiserver.crt", case.apiserver_cert_sans),
        (ETCD_SERVER, "etcd/server.crt", case.etcd_server_cert_sans),
        (ETCD_PEER, "etcd/peer.crt", case.etcd_peer_cert_sans),
    ] {
        let kubeadms = cert_sans(&pki.join(file));
        let user = set(user.iter().copied());
        assert!(user.is_subset(&kubeadms), "{file}: {user:?} {kubeadms:?}");
        let (listed, expected) = harness_sans(&run, test);
        assert_eq!(listed, kubeadms, "{file}: the SANs the harness read");
        assert_eq!(
            expected,
            kubeadms.difference(&user).cloned().collect::<BTreeSet<_>>(),
            "{file}: the SANs the harness expected, against kubeadm's own"
        );
    }
    // Where kubeadm 1.20 and current kubeadm differ, both forms are accepted (README "PKI"):
    // 1.20 puts apiserver-kubelet-client and admin.conf in system:masters (current:
    // kubeadm:cluster-admins), and apiserver-etcd-client and etcd/healthcheck-client in
    // system:masters too (current: no organization). The CAs' CNs are kubeadm's in both, not
    // the documented kubernetes-ca and kubernetes-front-proxy-ca.
    for (test, item, detail) in [
        ("(ca.crt)", "CN", "kubernetes (kubeadm's form)"),
        (
            "(front-proxy-ca.crt)",
            "CN",
            "front-proxy-ca (kubeadm's form)",
        ),
        ("(etcd/ca.crt)", "CN", "etcd-ca (documented form)"),
        (
            "(apiserver-kubelet-client.crt)",
            "O",
            "system:masters (documented form)",
        ),
        (
            "(apiserver-etcd-client.crt)",
            "O",
            "system:masters (documented form)",
        ),
        (
            "(etcd/healthcheck-client.crt)",
            "O",
            "system:masters (kubeadm's form)",
        ),
        ("admin.conf", "O", "system:masters (documented form)"),
        // kubeadm's setCommonNameToNodeName, in 1.20 as now.
        (
            "(etcd/server.crt)",
            "CN",
            &format!("{} (kubeadm's form)", case.node),
        ),
        (
            "(etcd/peer.crt)",
            "CN",
            &format!("{} (kubeadm's form)", case.node),
        ),
        (
            "kubelet.conf",
            "CN",
            &format!("system:node:{} (documented form)", case.node),
        ),
    ] {
        let (status, got) = check(&run, test, item).unwrap_or_else(|| panic!("{test} {item}"));
        assert_eq!(
            (status.as_str(), got.as_str()),
            ("ok", detail),
            "{test} {item}"
        );
    }
    (dir, root, run)
}

/// Re-issues `file` (relative to the PKI directory `pki`) with its own key, CN and
/// organizations and kubeadm's usages for it, signed by the CA kubeadm made (`ca`), with every
/// SAN but `drop`.
fn reissue_without(pki: &Path, file: &str, ca: &str, drop: &str, client: bool) {
    let crt = pki.join(file);
    let key = crt.with_extension("key");
    let pem = std::fs::read(&crt).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let (_, cert) = X509Certificate::from_der(&pem.contents).unwrap();
    let mut subject = String::new();
    for o in cert.subject().iter_organization() {
        subject.push_str(&format!("/O={}", o.as_str().unwrap()));
    }
    for cn in cert.subject().iter_common_name() {
        subject.push_str(&format!("/CN={}", cn.as_str().unwrap()));
    }
    let sans: Vec<String> = cert_sans(&crt)
        .into_iter()
        .filter(|s| *s != norm(drop))
        .map(|s| match s.parse::<IpAddr>() {
            Ok(_) => format!("IP:{s}"),
            Err(_) => format!("DNS:{s}"),
        })
        .collect();
    let work = tempfile::tempdir().unwrap();
    let csr = work.path().join("csr");
    let ext = work.path().join("ext");
    std::fs::write(
        &ext,
        format!(
            "basicConstraints = critical, CA:FALSE\n\
             keyUsage = critical, digitalSignature, keyEncipherment\n\
             extendedKeyUsage = serverAuth{}\n\
             subjectAltName = {}\n",
            if client { ", clientAuth" } else { "" },
            sans.join(", ")
        ),
    )
    .unwrap();
    let openssl = |args: &[&std::ffi::OsStr]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    openssl(&[
        &os("req"),
        &os("-new"),
        &os("-key"),
        key.as_os_str(),
        &os("-subj"),
        &os(&subject),
        &os("-out"),
        csr.as_os_str(),
    ]);
    let ca_crt = pki.join(ca);
    let ca_key = ca_crt.with_extension("key");
    openssl(&[
        &os("x509"),
        &os("-req"),
        &os("-in"),
        csr.as_os_str(),
        &os("-CA"),
        ca_crt.as_os_str(),
        &os("-CAkey"),
        ca_key.as_os_str(),
        &os("-set_serial"),
        &os("4242"),
        &os("-days"),
        &os("365"),
        &os("-extfile"),
        ext.as_os_str(),
        &os("-out"),
        crt.as_os_str(),
    ]);
    assert!(!cert_sans(&crt).contains(&norm(drop)));
}

/// Replaces `from` with `to` in a file of the root, which must hold it.
fn edit(root: &Path, rel: &str, from: &str, to: &str) {
    let p = root.join(rel);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{rel} has no {from:?}:\n{text}");
    std::fs::write(&p, text.replace(from, to)).unwrap();
}

/// After the break, exactly `want` fails, its message naming `says`.
fn fails_exactly(root: &Path, want: &str, says: &str) {
    let run = pki_run(root);
    assert_eq!(failed(&run), vec![want.to_string()], "{}", run.explain());
    let m = message(&run.case(want));
    assert!(m.contains(says), "{m}");
}

#[test]
fn defaults_with_an_ipv4_advertise_address() {
    let Some(kubeadm) = kubeadm() else { return };
    let case = Case {
        node: "kubeadm-ipv4",
        pki: PKI,
        config: config("kubeadm-ipv4", "10.0.0.10", ""),
        apiserver_cert_sans: &[],
        etcd_server_cert_sans: &[],
        etcd_peer_cert_sans: &[],
    };
    let (_dir, root, run) = passes_on_kubeadms_output(&kubeadm, &case);
    let (_, sans) = harness_sans(&run, APISERVER);
    assert_eq!(
        sans,
        set([
            "kubeadm-ipv4",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "10.96.0.1",
            "10.0.0.10",
        ])
    );
    // kubeadm's default service subnet and DNS domain, read from what it wrote, not assumed.
    assert!(check(&run, APISERVER, "SAN inputs").is_none());
    reissue_without(
        &root.join(PKI),
        "apiserver.crt",
        "ca.crt",
        "10.0.0.10",
        false,
    );
    fails_exactly(
        &root,
        APISERVER,
        "SANs missing 10.0.0.10 (the advertise address, --advertise-address of kube-apiserver \
         (/etc/kubernetes/manifests/kube-apiserver.yaml))",
    );
}

#[test]
fn dual_stack_service_subnets() {
    let Some(kubeadm) = kubeadm() else { return };
    let case = Case {
        node: "kubeadm-dual-stack",
        pki: PKI,
        // kubeadm 1.20 takes a second service CIDR only behind the IPv6DualStack gate.
        config: config(
            "kubeadm-dual-stack",
            "10.0.0.10",
            "featureGates:\n  IPv6DualStack: true\n\
             networking:\n  serviceSubnet: 10.96.0.0/16,fd00:10:96::/112\n",
        ),
        apiserver_cert_sans: &[],
        etcd_server_cert_sans: &[],
        etcd_peer_cert_sans: &[],
    };
    let (_dir, root, run) = passes_on_kubeadms_output(&kubeadm, &case);
    // GetAPIServerVirtualIP: the first CIDR's first IP only.
    let (_, sans) = harness_sans(&run, APISERVER);
    assert!(sans.contains("10.96.0.1") && !sans.contains("fd00:10:96::1"));
    // The manifest now puts the IPv6 subnet first: its service IP is the one required.
    edit(
        &root,
        "etc/kubernetes/manifests/kube-apiserver.yaml",
        "--service-cluster-ip-range=10.96.0.0/16,fd00:10:96::/112",
        "--service-cluster-ip-range=fd00:10:96::/112,10.96.0.0/16",
    );
    fails_exactly(
        &root,
        APISERVER,
        "SANs missing fd00:10:96::1 (the kubernetes service: first IP of fd00:10:96::/112, \
         --service-cluster-ip-range of kube-apiserver",
    );
}

#[test]
fn an_ipv6_advertise_address_and_service_subnet() {
    let Some(kubeadm) = kubeadm() else { return };
    let case = Case {
        node: "kubeadm-ipv6",
        pki: PKI,
        config: config(
            "kubeadm-ipv6",
            "fd00:10::a",
            "networking:\n  serviceSubnet: fd00:10:96::/112\n",
        ),
        apiserver_cert_sans: &[],
        etcd_server_cert_sans: &[],
        etcd_peer_cert_sans: &[],
    };
    let (_dir, root, run) = passes_on_kubeadms_output(&kubeadm, &case);
    let (_, sans) = harness_sans(&run, APISERVER);
    assert!(sans.contains("fd00:10:96::1") && sans.contains("fd00:10::a"));
    assert!(!sans.contains("10.96.0.1"));
    reissue_without(
        &root.join(PKI),
        "etcd/server.crt",
        "etcd/ca.crt",
        "::1",
        true,
    );
    fails_exactly(&root, ETCD_SERVER, "SANs missing ::1; has");
}

#[test]
fn a_control_plane_endpoint_name_cert_sans_and_a_dns_domain() {
    let Some(kubeadm) = kubeadm() else { return };
    let case = Case {
        node: "kubeadm-endpoint",
        pki: PKI,
        config: config(
            "kubeadm-endpoint",
            "10.0.0.10",
            "controlPlaneEndpoint: k8s-api.example.test:6443\n\
             networking:\n  dnsDomain: corp.example\n\
             apiServer:\n  certSANs:\n  - lb.example.test\n  - 192.0.2.50\n  - \"*.apps.example.test\"\n",
        ),
        apiserver_cert_sans: &["lb.example.test", "192.0.2.50", "*.apps.example.test"],
        etcd_server_cert_sans: &[],
        etcd_peer_cert_sans: &[],
    };
    let (_dir, root, run) = passes_on_kubeadms_output(&kubeadm, &case);
    let (_, sans) = harness_sans(&run, APISERVER);
    assert!(sans.contains("k8s-api.example.test"));
    assert!(sans.contains("kubernetes.default.svc.corp.example"));
    assert!(!sans.contains("kubernetes.default.svc.cluster.local"));
    reissue_without(
        &root.join(PKI),
        "apiserver.crt",
        "ca.crt",
        "k8s-api.example.test",
        false,
    );
    fails_exactly(
        &root,
        APISERVER,
        "SANs missing k8s-api.example.test (the controlPlaneEndpoint, server of \
         /etc/kubernetes/admin.conf)",
    );
}

#[test]
fn etcd_server_and_peer_cert_sans() {
    let Some(kubeadm) = kubeadm() else { return };
    let case = Case {
        node: "kubeadm-etcd-sans",
        pki: PKI,
        config: config(
            "kubeadm-etcd-sans",
            "10.0.0.10",
            "etcd:\n  local:\n    serverCertSANs:\n    - etcd.example.test\n    - 10.0.0.60\n\
             \x20   peerCertSANs:\n    - etcd-peer.example.test\n    - 10.0.0.61\n",
        ),
        apiserver_cert_sans: &[],
        etcd_server_cert_sans: &["etcd.example.test", "10.0.0.60"],
        etcd_peer_cert_sans: &["etcd-peer.example.test", "10.0.0.61"],
    };
    let (_dir, root, _run) = passes_on_kubeadms_output(&kubeadm, &case);
    reissue_without(
        &root.join(PKI),
        "etcd/peer.crt",
        "etcd/ca.crt",
        "kubeadm-etcd-sans",
        true,
    );
    fails_exactly(
        &root,
        ETCD_PEER,
        "SANs missing kubeadm-etcd-sans (the node's name)",
    );
}

#[test]
fn an_advertise_address_overridden_by_api_server_extra_args() {
    let Some(kubeadm) = kubeadm() else { return };
    let case = Case {
        node: "kubeadm-extra-args",
        pki: PKI,
        config: config(
            "kubeadm-extra-args",
            "10.0.0.10",
            "apiServer:\n  extraArgs:\n    advertise-address: 10.0.0.20\n",
        ),
        apiserver_cert_sans: &[],
        etcd_server_cert_sans: &[],
        etcd_peer_cert_sans: &[],
    };
    // kubeadm writes the override into the flag, localAPIEndpoint into its annotation and
    // etcd's URLs, and makes every SAN from localAPIEndpoint.
    let (_dir, root, run) = passes_on_kubeadms_output(&kubeadm, &case);
    for test in [APISERVER, ETCD_SERVER, ETCD_PEER] {
        let (status, note) = check(&run, test, "SAN inputs").expect("a note on the override");
        assert_eq!(status, "info");
        assert!(
            note.starts_with(
                "--advertise-address of kube-apiserver \
                 (/etc/kubernetes/manifests/kube-apiserver.yaml) is 10.0.0.20, not kubeadm's \
                 localAPIEndpoint 10.0.0.10"
            ),
            "{note}"
        );
    }
    reissue_without(
        &root.join(PKI),
        "apiserver.crt",
        "ca.crt",
        "10.0.0.10",
        false,
    );
    fails_exactly(
        &root,
        APISERVER,
        "SANs missing 10.0.0.10 (the advertise address, annotation \
         kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint \
         (/etc/kubernetes/manifests/kube-apiserver.yaml))",
    );
}

#[test]
fn a_certificates_dir_of_its_own() {
    let Some(kubeadm) = kubeadm() else { return };
    let case = Case {
        node: "kubeadm-cert-dir",
        pki: "etc/kubernetes/custom-pki",
        config: config(
            "kubeadm-cert-dir",
            "10.0.0.10",
            "certificatesDir: /etc/kubernetes/custom-pki\n",
        ),
        apiserver_cert_sans: &[],
        etcd_server_cert_sans: &[],
        etcd_peer_cert_sans: &[],
    };
    // kubeadm names the directory in kube-apiserver's --client-ca-file and the kubelet's
    // clientCAFile, and writes nothing to /etc/kubernetes/pki.
    let (_dir, root, run) = passes_on_kubeadms_output(&kubeadm, &case);
    assert!(!root.join(PKI).exists());
    let notes = run.json()["tests"].to_string();
    assert!(!notes.contains("/etc/kubernetes/pki/"), "{notes}");
    reissue_without(
        &root.join(case.pki),
        "apiserver.crt",
        "ca.crt",
        "kubeadm-cert-dir",
        false,
    );
    fails_exactly(
        &root,
        APISERVER,
        "/etc/kubernetes/custom-pki/apiserver.crt: SANs missing kubeadm-cert-dir (the node's name)",
    );
}
