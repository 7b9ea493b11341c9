//! PKI tests against a kubeadm-style PKI made at test time, and against broken variants, each
//! of which must fail exactly the test of the certificate it breaks.

mod common;

use common::pki::{Break, Sans, write_kubeadm_pki, write_kubeadm_pki_with};
use common::{Run, Status, copy_tree, fixture, message, run_on, status, system_out};

fn pki_node(brk: Break) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    copy_tree(&fixture("kubeadm-node"), &root);
    write_kubeadm_pki(&root, "node1", brk);
    (dir, root)
}

fn failed(run: &Run) -> Vec<String> {
    run.failed()
        .iter()
        .map(|n| {
            n.trim_start_matches("[sig-node] PKI ")
                .trim_end_matches(" [NodeBestPractice]")
                .to_string()
        })
        .collect()
}

fn run_pki(brk: Break) -> Run {
    let (dir, root) = pki_node(brk);
    let run = run_on(&root, &["--focus", "PKI"]);
    drop(dir);
    run
}

#[test]
fn a_kubeadm_pki_passes_every_test() {
    let run = run_pki(Break::None);
    assert_eq!(run.code(), 0, "{}", run.explain());
    assert!(failed(&run).is_empty());
    let out = system_out(&run.case("(apiserver.crt)"));
    assert!(
        out.contains("[ok]   CN: kube-apiserver (documented form)"),
        "{out}"
    );
    assert!(
        out.contains(
            "[ok]   issuer: CN=kubernetes (/etc/kubernetes/pki/ca.crt), signature verified"
        ),
        "{out}"
    );
    assert!(
        out.contains("[ok]   key: /etc/kubernetes/pki/apiserver.key matches"),
        "{out}"
    );
    let out = system_out(&run.case("(etcd/server.crt)"));
    assert!(out.contains("[ok]   CN: node1 (kubeadm's form)"), "{out}");
    let out = system_out(&run.case("(ca.crt)"));
    assert!(
        out.contains("[ok]   CN: kubernetes (kubeadm's form)") && out.contains("self-signed"),
        "{out}"
    );
    let out = system_out(&run.case("apiserver-kubelet-client"));
    assert!(
        out.contains("[ok]   O: kubeadm:cluster-admins (kubeadm's form)"),
        "{out}"
    );
    let out = system_out(&run.case("kubelet.conf"));
    assert!(
        out.contains("client certificate /var/lib/kubelet/pki/kubelet-client-current.pem"),
        "{out}"
    );
    assert!(out.contains("[ok]   CN: system:node:node1"), "{out}");
    assert!(system_out(&run.case("admin.conf")).contains("client certificate embedded"));
}

#[test]
fn an_ipv6_advertise_address_matches_its_san_as_an_address() {
    let run = run_pki(Break::Ipv6Advertise);
    assert!(failed(&run).is_empty(), "{}", run.explain());
    let out = system_out(&run.case("(apiserver.crt)"));
    assert!(
        out.contains("[ok]   SANs:") && out.contains("fd00:10::a"),
        "{out}"
    );
}

/// kubeadm-node with the fixture root `overlay` laid over it, and a PKI with `sans`.
fn pki_node_with(overlay: &str, sans: &Sans) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    copy_tree(&fixture("kubeadm-node"), &root);
    copy_tree(&fixture(overlay), &root);
    write_kubeadm_pki_with(&root, "node1", Break::None, sans);
    (dir, root)
}

fn run_pki_with(overlay: &str, sans: &Sans) -> Run {
    let (dir, root) = pki_node_with(overlay, sans);
    let run = run_on(&root, &["--focus", "PKI"]);
    drop(dir);
    run
}

const APISERVER: &str = "the API server's serving certificate (apiserver.crt) is valid";
const ETCD_SERVER: &str = "the etcd server certificate (etcd/server.crt) is valid";
const ETCD_PEER: &str = "the etcd peer certificate (etcd/peer.crt) is valid";

#[test]
fn dual_stack_service_cidrs_need_the_first_cidrs_service_ip_only() {
    // kubeadm's GetAPIServerVirtualIP: 10.96.0.1 from the first CIDR, nothing from fd00:10:96::/112.
    let sans = Sans::kubeadm("node1", "10.0.0.10");
    let run = run_pki_with("pki-dual-stack-service-cidrs", &sans);
    assert!(failed(&run).is_empty(), "{}", run.explain());
    let out = system_out(&run.case("(apiserver.crt)"));
    assert!(
        out.contains("[ok]   SANs:") && !out.contains("fd00:10:96::1"),
        "{out}"
    );
    // The second family's service IP is an accepted extra.
    let mut extra = sans.clone();
    extra.apiserver.push("fd00:10:96::1".into());
    let run = run_pki_with("pki-dual-stack-service-cidrs", &extra);
    assert!(failed(&run).is_empty(), "{}", run.explain());
    let out = system_out(&run.case("(apiserver.crt)"));
    assert!(
        out.contains("[info] extra SANs: fd00:10:96::1: beyond kubeadm's own"),
        "{out}"
    );
    // Without the first CIDR's service IP, the API server's test fails, naming the CIDR.
    let mut missing = sans.clone();
    missing.apiserver.retain(|s| s != "10.96.0.1");
    missing.apiserver.push("fd00:10:96::1".into());
    let run = run_pki_with("pki-dual-stack-service-cidrs", &missing);
    assert_eq!(
        failed(&run),
        vec![APISERVER.to_string()],
        "{}",
        run.explain()
    );
    let m = message(&run.case("(apiserver.crt)"));
    assert!(
        m.contains(
            "SANs missing 10.96.0.1 (the kubernetes service: first IP of 10.96.0.0/16, \
             --service-cluster-ip-range of kube-apiserver (/etc/kubernetes/manifests/kube-apiserver.yaml))"
        ),
        "{m}"
    );
}

#[test]
fn an_ipv6_control_plane_needs_its_addresses_and_ipv6_loopback() {
    let sans = Sans {
        apiserver: [
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "node1",
            "fd00:10:96::1",
            "fd00:10::a",
        ]
        .map(String::from)
        .to_vec(),
        ..Sans::kubeadm("node1", "fd00:10::a")
    };
    let run = run_pki_with("pki-ipv6-advertise-address", &sans);
    assert!(failed(&run).is_empty(), "{}", run.explain());
    let out = system_out(&run.case("(etcd/server.crt)"));
    assert!(
        out.contains("[ok]   SANs: node1, localhost, 127.0.0.1, ::1, fd00:10::a"),
        "{out}"
    );
    // etcd's getAltNames always adds ::1 and 127.0.0.1.
    let mut no_v6_loopback = sans.clone();
    no_v6_loopback.etcd.retain(|s| s != "::1");
    let run = run_pki_with("pki-ipv6-advertise-address", &no_v6_loopback);
    let mut got = failed(&run);
    got.sort();
    assert_eq!(
        got,
        vec![ETCD_PEER.to_string(), ETCD_SERVER.to_string()],
        "{}",
        run.explain()
    );
    let m = message(&run.case("(etcd/server.crt)"));
    assert!(m.contains("SANs missing ::1; has"), "{m}");
    // The IPv4 service IP of kubeadm's default subnet would be wrong here.
    let out = system_out(&run.case("(apiserver.crt)"));
    assert!(!out.contains("10.96.0.1"), "{out}");
}

#[test]
fn a_control_plane_endpoint_dns_name_is_required_on_the_api_server() {
    let mut sans = Sans::kubeadm("node1", "10.0.0.10");
    let run = run_pki_with("pki-control-plane-endpoint-dns", &sans);
    assert_eq!(
        failed(&run),
        vec![APISERVER.to_string()],
        "{}",
        run.explain()
    );
    let m = message(&run.case("(apiserver.crt)"));
    assert!(
        m.contains(
            "SANs missing k8s-api.example.test (the controlPlaneEndpoint, server of \
             /etc/kubernetes/admin.conf)"
        ),
        "{m}"
    );
    sans.apiserver.push("k8s-api.example.test".into());
    let run = run_pki_with("pki-control-plane-endpoint-dns", &sans);
    assert!(failed(&run).is_empty(), "{}", run.explain());
}

#[test]
fn the_cluster_dns_domain_names_the_fully_qualified_service() {
    // The kubelet's clusterDomain is corp.example: cluster.local is not the name kubeadm writes.
    let sans = Sans::kubeadm("node1", "10.0.0.10");
    let run = run_pki_with("pki-custom-dns-domain", &sans);
    assert_eq!(
        failed(&run),
        vec![APISERVER.to_string()],
        "{}",
        run.explain()
    );
    let m = message(&run.case("(apiserver.crt)"));
    assert!(
        m.contains(
            "SANs missing kubernetes.default.svc.corp.example (dnsDomain corp.example, \
             clusterDomain in /var/lib/kubelet/config.yaml)"
        ),
        "{m}"
    );
    let mut fixed = sans.clone();
    fixed
        .apiserver
        .push("kubernetes.default.svc.corp.example".into());
    let run = run_pki_with("pki-custom-dns-domain", &fixed);
    assert!(failed(&run).is_empty(), "{}", run.explain());
    let out = system_out(&run.case("(apiserver.crt)"));
    assert!(
        out.contains("[info] extra SANs: kubernetes.default.svc.cluster.local"),
        "{out}"
    );
}

#[test]
fn an_advertise_address_overridden_by_extra_args_leaves_kubeadms_sans() {
    // apiServer.extraArgs set --advertise-address to 10.0.0.20; kubeadm's annotation keeps
    // localAPIEndpoint, 10.0.0.10, from which kubeadm made every SAN (as kubeadm 1.20 does in
    // tests/kubeadm_pki.rs).
    let (_dir, root) = pki_node_with("kubeadm-node", &Sans::kubeadm("node1", "10.0.0.10"));
    let manifest = root.join("etc/kubernetes/manifests/kube-apiserver.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text
        .replace(
            "  namespace: kube-system\n",
            "  namespace: kube-system\n  annotations:\n    \
             kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: 10.0.0.10:6443\n",
        )
        .replace(
            "--advertise-address=10.0.0.10",
            "--advertise-address=10.0.0.20",
        );
    std::fs::write(&manifest, text).unwrap();
    let run = run_on(&root, &["--focus", "PKI"]);
    assert!(failed(&run).is_empty(), "{}", run.explain());
    for case in ["(apiserver.crt)", "(etcd/server.crt)", "(etcd/peer.crt)"] {
        let out = system_out(&run.case(case));
        assert!(
            out.contains(
                "[info] SAN inputs: --advertise-address of kube-apiserver \
                 (/etc/kubernetes/manifests/kube-apiserver.yaml) is 10.0.0.20, not kubeadm's \
                 localAPIEndpoint 10.0.0.10"
            ),
            "{out}"
        );
    }
    // The annotation's address is the one required.
    let mut sans = Sans::kubeadm("node1", "10.0.0.10");
    sans.apiserver.retain(|s| s != "10.0.0.10");
    write_kubeadm_pki_with(&root, "node1", Break::None, &sans);
    let run = run_on(&root, &["--focus", "PKI"]);
    assert_eq!(
        failed(&run),
        vec![APISERVER.to_string()],
        "{}",
        run.explain()
    );
    let m = message(&run.case("(apiserver.crt)"));
    assert!(
        m.contains(
            "SANs missing 10.0.0.10 (the advertise address, annotation \
             kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint \
             (/etc/kubernetes/manifests/kube-apiserver.yaml))"
        ),
        "{m}"
    );
}

#[test]
fn the_pki_is_found_where_kubeadms_certificates_dir_put_it() {
    // kubeadm's certificatesDir: /etc/kubernetes/custom-pki, named by the kubelet's clientCAFile.
    let (_dir, root) = pki_node(Break::None);
    std::fs::rename(
        root.join("etc/kubernetes/pki"),
        root.join("etc/kubernetes/custom-pki"),
    )
    .unwrap();
    let config = root.join("var/lib/kubelet/config.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("clientCAFile: /etc/kubernetes/pki/ca.crt"));
    std::fs::write(
        &config,
        text.replace(
            "clientCAFile: /etc/kubernetes/pki/ca.crt",
            "clientCAFile: /etc/kubernetes/custom-pki/ca.crt",
        ),
    )
    .unwrap();
    let run = run_on(&root, &["--focus", "PKI"]);
    assert_eq!(run.code(), 0, "{}", run.explain());
    assert!(
        run.json()["tests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["name"].as_str().unwrap().contains(" PKI "))
            .all(|t| t["verdict"] == "passed"),
        "{}",
        run.explain()
    );
    let out = system_out(&run.case("(apiserver.crt)"));
    assert!(
        out.contains("/etc/kubernetes/custom-pki/apiserver.crt: CN=kube-apiserver"),
        "{out}"
    );
    // --pki-dir still decides.
    let run = run_on(
        &root,
        &["--focus", "PKI", "--pki-dir", "/etc/kubernetes/pki"],
    );
    assert_eq!(
        failed(&run),
        vec!["the cluster CA (ca.crt) is valid".to_string()]
    );
}

#[test]
fn extra_sans_pass_unless_kubeadm_would_refuse_them() {
    let mut sans = Sans::kubeadm("node1", "10.0.0.10");
    sans.apiserver.push("lb.example.test".into());
    sans.apiserver.push("*.apps.example.test".into());
    let (_dir, root) = pki_node_with("kubeadm-node", &sans);
    let run = run_on(&root, &["--focus", "PKI"]);
    assert!(failed(&run).is_empty(), "{}", run.explain());
    let out = system_out(&run.case("(apiserver.crt)"));
    assert!(
        out.contains(
            "[info] extra SANs: lb.example.test, *.apps.example.test: beyond kubeadm's own"
        ),
        "{out}"
    );
    assert!(
        out.contains("kubeadm's default serviceSubnet 10.96.0.0/12 assumed"),
        "{out}"
    );
    sans.apiserver.push("Not_A.Host".into());
    let run = run_pki_with("kubeadm-node", &sans);
    assert_eq!(
        failed(&run),
        vec![APISERVER.to_string()],
        "{}",
        run.explain()
    );
    let m = message(&run.case("(apiserver.crt)"));
    assert!(
        m.contains("extra SANs \"Not_A.Host\": not an IP address"),
        "{m}"
    );
}

#[test]
fn a_leaf_carrying_its_chain_verifies_through_the_intermediate() {
    let run = run_pki(Break::ChainedLeaf);
    assert!(failed(&run).is_empty(), "{}", run.explain());
    let out = system_out(&run.case("(apiserver.crt)"));
    assert!(
        out.contains("[ok]   issuer: CN=kubernetes (/etc/kubernetes/pki/ca.crt) through CN=kubernetes-intermediate in the file, signatures verified"),
        "{out}"
    );
}

#[test]
fn each_defect_fails_exactly_its_certificate() {
    for (brk, want, says) in [
        (
            Break::WrongCn,
            "the API server's kubelet client certificate (apiserver-kubelet-client.crt) is valid",
            "CN \"kube-apiserver-kubelet\"",
        ),
        (
            Break::MissingSan,
            "the API server's serving certificate (apiserver.crt) is valid",
            "SANs missing kubernetes.default.svc;",
        ),
        (
            Break::Expired,
            "the front proxy client certificate (front-proxy-client.crt) is valid",
            "validity expired 2020-01-01",
        ),
        (
            Break::WrongIssuer,
            "the API server's etcd client certificate (apiserver-etcd-client.crt) is valid",
            "issuer CN=kubernetes, expected CN=etcd-ca",
        ),
        (
            Break::MismatchedKey,
            "the etcd healthcheck client certificate (etcd/healthcheck-client.crt) is valid",
            "healthcheck-client.key does not match",
        ),
        (
            Break::ClientInServerSlot,
            "the API server's serving certificate (apiserver.crt) is valid",
            "extended key usage lacks server auth",
        ),
    ] {
        let run = run_pki(brk);
        assert_eq!(
            failed(&run),
            vec![want.to_string()],
            "{brk:?}\n{}",
            run.explain()
        );
        let m = message(
            &run.case(
                want.split('(')
                    .nth(1)
                    .unwrap()
                    .trim_end_matches(") is valid"),
            ),
        );
        assert!(m.contains(says), "{brk:?}: {m}");
        assert!(m.contains("kubeadm certs renew"), "{brk:?}: {m}");
    }
}

#[test]
fn loose_key_modes_fail() {
    let (_dir, root) = pki_node(Break::None);
    std::fs::set_permissions(
        root.join("etc/kubernetes/pki/sa.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("etc/kubernetes/pki/apiserver.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    let run = run_on(&root, &["--focus", "PKI"]);
    let mut got = failed(&run);
    got.sort();
    assert_eq!(
        got,
        vec![
            "the API server's serving certificate (apiserver.crt) is valid".to_string(),
            "the service account key pair (sa.key, sa.pub) matches".to_string(),
        ]
    );
    assert!(message(&run.case("(apiserver.crt)")).contains("key mode 640"));
}

#[test]
fn a_worker_has_only_the_cluster_ca() {
    let (_dir, root) = pki_node(Break::None);
    let pki = root.join("etc/kubernetes/pki");
    for entry in std::fs::read_dir(&pki).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name().unwrap() != "ca.crt" {
            if p.is_dir() {
                std::fs::remove_dir_all(p).unwrap()
            } else {
                std::fs::remove_file(p).unwrap()
            }
        }
    }
    for f in ["admin.conf", "controller-manager.conf", "scheduler.conf"] {
        std::fs::remove_file(root.join("etc/kubernetes").join(f)).unwrap();
    }
    let run = run_on(&root, &["--focus", "PKI"]);
    assert_eq!(run.code(), 0, "{}", run.explain());
    let c = run.case("(apiserver.crt)");
    assert!(matches!(status(&c), Status::Skipped));
    assert_eq!(
        message(&c),
        "not a control-plane node: no /etc/kubernetes/pki/apiserver.crt"
    );
    let out = system_out(&run.case("(ca.crt)"));
    assert!(out.contains("externally managed, or a worker"), "{out}");
    assert!(matches!(status(&run.case("kubelet.conf")), Status::Passed));
    // Without the cluster CA the node cannot trust the API server.
    std::fs::remove_file(pki.join("ca.crt")).unwrap();
    let run = run_on(&root, &["--focus", "PKI"]);
    assert_eq!(
        failed(&run),
        vec!["the cluster CA (ca.crt) is valid".to_string()]
    );
}

#[test]
fn certs_prints_a_kubeadm_like_expiration_table() {
    let (_dir, root) = pki_node(Break::Expired);
    std::fs::remove_file(root.join("etc/kubernetes/pki/front-proxy-ca.key")).unwrap();
    let out = common::command()
        .args(["certs", "--rootfs"])
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("CERTIFICATE") && lines[0].ends_with("EXTERNALLY MANAGED"),
        "{text}"
    );
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .copied()
            .unwrap_or_else(|| panic!("{name} in {text}"))
    };
    assert!(
        row("apiserver").contains("Jan 01, 2099")
            && row("apiserver").contains("ca ")
            && row("apiserver").ends_with("no"),
        "{text}"
    );
    // Expired, and its CA's key is gone: externally managed.
    let proxy = row("front-proxy-client");
    assert!(
        proxy.contains("<invalid>") && proxy.contains("front-proxy-ca") && proxy.ends_with("yes"),
        "{text}"
    );
    assert!(row("admin.conf").contains("Jan 01, 2099"), "{text}");
    assert!(row("etcd-server").contains("etcd-ca"), "{text}");
    assert!(text.contains("CERTIFICATE AUTHORITY   EXPIRES"), "{text}");
    assert!(row("front-proxy-ca").ends_with("yes"), "{text}");
}
