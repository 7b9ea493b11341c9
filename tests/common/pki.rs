//! A kubeadm-style PKI made at test time with rcgen, and the ways to break it.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, date_time_ymd,
};

/// One defect, planted in one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Break {
    None,
    /// apiserver-kubelet-client.crt gets another CN.
    WrongCn,
    /// apiserver.crt lacks kubernetes.default.svc.
    MissingSan,
    /// front-proxy-client.crt expired.
    Expired,
    /// apiserver-etcd-client.crt is signed by the cluster CA, not the etcd CA.
    WrongIssuer,
    /// etcd/healthcheck-client.key belongs to another certificate.
    MismatchedKey,
    /// apiserver.crt is a client certificate.
    ClientInServerSlot,
    /// Not a defect: apiserver.crt names the IPv6 address fd00:10::a, which the manifest's
    /// --advertise-address writes out as fd00:10:0:0:0:0:0:a.
    Ipv6Advertise,
    /// Not a defect: apiserver.crt is issued by an intermediate CA (signed by the cluster CA)
    /// that follows it in the same file.
    ChainedLeaf,
}

fn write(root: &Path, rel: &str, text: &str, mode: u32) {
    let p = root.join(rel.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn params(cn: &str, orgs: &[&str], sans: &[&str]) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    for o in orgs {
        dn.push(DnType::OrganizationName, *o);
    }
    p.distinguished_name = dn;
    p.not_before = date_time_ymd(2020, 1, 1);
    p.not_after = date_time_ymd(2099, 1, 1);
    for s in sans {
        p.subject_alt_names.push(match s.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName((*s).try_into().unwrap()),
        });
    }
    p
}

fn ca(root: &Path, file: &str, cn: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = params(cn, &[], &[]);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    let key = KeyPair::generate().unwrap();
    write(
        root,
        &format!("etc/kubernetes/pki/{file}.key"),
        &key.serialize_pem(),
        0o600,
    );
    let issuer = CertifiedIssuer::self_signed(p, key).unwrap();
    write(
        root,
        &format!("etc/kubernetes/pki/{file}.crt"),
        &issuer.pem(),
        0o644,
    );
    issuer
}

/// A leaf certificate and its key, PEM.
fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    mut p: CertificateParams,
    server: bool,
    client: bool,
) -> (String, String) {
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    if server {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    if client {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn kubeconfig(server: &str, user: &str, cert: &str, key: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster:\n    server: {server}\n\
         contexts:\n- name: {user}@kubernetes\n  context: {{cluster: kubernetes, user: {user}}}\n\
         current-context: {user}@kubernetes\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(cert),
        b64(key)
    )
}

/// The SANs the generated serving certificates carry, and the server the kubeconfigs name.
#[derive(Debug, Clone)]
pub struct Sans {
    pub apiserver: Vec<String>,
    /// etcd/server and etcd/peer.
    pub etcd: Vec<String>,
    pub server: String,
}

impl Sans {
    /// What kubeadm writes for node `node` advertising `advertise`, with the default service
    /// subnet and DNS domain and no controlPlaneEndpoint.
    pub fn kubeadm(node: &str, advertise: &str) -> Self {
        let host = if advertise.contains(':') {
            format!("[{advertise}]")
        } else {
            advertise.to_string()
        };
        Self {
            apiserver: [
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                node,
                "10.96.0.1",
                advertise,
            ]
            .map(String::from)
            .to_vec(),
            etcd: [node, "localhost", "127.0.0.1", "::1", advertise]
                .map(String::from)
                .to_vec(),
            server: format!("https://{host}:6443"),
        }
    }
}

/// Writes the PKI of control-plane node `node` (advertising 10.0.0.10) under `root`.
pub fn write_kubeadm_pki(root: &Path, node: &str, brk: Break) {
    let sans = if brk == Break::Ipv6Advertise {
        Sans::kubeadm(node, "fd00:10::a")
    } else {
        Sans::kubeadm(node, "10.0.0.10")
    };
    write_kubeadm_pki_with(root, node, brk, &sans);
}

/// [`write_kubeadm_pki`] with the SANs given. A root that already holds
/// etc/kubernetes/admin.conf (a fixture's, without credentials) keeps its server.
pub fn write_kubeadm_pki_with(root: &Path, node: &str, brk: Break, sans: &Sans) {
    let server_url = std::fs::read_to_string(root.join("etc/kubernetes/admin.conf"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.trim().strip_prefix("server: ").map(str::to_string))
        })
        .unwrap_or_else(|| sans.server.clone());
    write(root, "etc/hostname", &format!("{node}\n"), 0o644);
    let cluster = ca(root, "ca", "kubernetes");
    let etcd = ca(root, "etcd/ca", "etcd-ca");
    let proxy = ca(root, "front-proxy-ca", "front-proxy-ca");
    let put = |rel: &str, (cert, key): (String, String)| {
        write(root, &format!("etc/kubernetes/pki/{rel}.crt"), &cert, 0o644);
        write(root, &format!("etc/kubernetes/pki/{rel}.key"), &key, 0o600);
    };
    let etcd_sans: Vec<&str> = sans.etcd.iter().map(String::as_str).collect();
    put(
        "etcd/server",
        leaf(&etcd, params(node, &[], &etcd_sans), true, true),
    );
    put(
        "etcd/peer",
        leaf(&etcd, params(node, &[], &etcd_sans), true, true),
    );
    let health = leaf(
        &etcd,
        params("kube-etcd-healthcheck-client", &[], &[]),
        false,
        true,
    );
    let health = if brk == Break::MismatchedKey {
        (health.0, KeyPair::generate().unwrap().serialize_pem())
    } else {
        health
    };
    put("etcd/healthcheck-client", health);
    let etcd_client_issuer = if brk == Break::WrongIssuer {
        &cluster
    } else {
        &etcd
    };
    put(
        "apiserver-etcd-client",
        leaf(
            etcd_client_issuer,
            params("kube-apiserver-etcd-client", &[], &[]),
            false,
            true,
        ),
    );
    let mut apiserver_sans: Vec<&str> = sans.apiserver.iter().map(String::as_str).collect();
    if brk == Break::MissingSan {
        apiserver_sans.retain(|s| *s != "kubernetes.default.svc");
    }
    if brk == Break::Ipv6Advertise {
        let manifest = root.join("etc/kubernetes/manifests/kube-apiserver.yaml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(text.contains("--advertise-address=10.0.0.10"));
        std::fs::write(
            &manifest,
            text.replace(
                "--advertise-address=10.0.0.10",
                "--advertise-address=fd00:10:0:0:0:0:0:a",
            ),
        )
        .unwrap();
    }
    let server = brk != Break::ClientInServerSlot;
    let apiserver_issuer = if brk == Break::ChainedLeaf {
        let mut p = params("kubernetes-intermediate", &[], &[]);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
        Some(CertifiedIssuer::signed_by(p, KeyPair::generate().unwrap(), &cluster).unwrap())
    } else {
        None
    };
    let (cert, key) = leaf(
        apiserver_issuer.as_ref().unwrap_or(&cluster),
        params("kube-apiserver", &[], &apiserver_sans),
        server,
        !server,
    );
    let cert = match &apiserver_issuer {
        Some(i) => format!("{cert}{}", i.pem()),
        None => cert,
    };
    put("apiserver", (cert, key));
    let kubelet_client_cn = if brk == Break::WrongCn {
        "kube-apiserver-kubelet"
    } else {
        "kube-apiserver-kubelet-client"
    };
    put(
        "apiserver-kubelet-client",
        leaf(
            &cluster,
            params(kubelet_client_cn, &["kubeadm:cluster-admins"], &[]),
            false,
            true,
        ),
    );
    let mut proxy_client = params("front-proxy-client", &[], &[]);
    if brk == Break::Expired {
        proxy_client.not_before = date_time_ymd(2019, 1, 1);
        proxy_client.not_after = date_time_ymd(2020, 1, 1);
    }
    put(
        "front-proxy-client",
        leaf(&proxy, proxy_client, false, true),
    );
    let sa = KeyPair::generate().unwrap();
    write(
        root,
        "etc/kubernetes/pki/sa.key",
        &sa.serialize_pem(),
        0o600,
    );
    write(
        root,
        "etc/kubernetes/pki/sa.pub",
        &sa.public_key_pem(),
        0o644,
    );
    for (file, user, cn, orgs) in [
        (
            "admin.conf",
            "kubernetes-admin",
            "kubernetes-admin",
            vec!["kubeadm:cluster-admins"],
        ),
        (
            "controller-manager.conf",
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            vec![],
        ),
        (
            "scheduler.conf",
            "system:kube-scheduler",
            "system:kube-scheduler",
            vec![],
        ),
    ] {
        let (cert, key) = leaf(&cluster, params(cn, &orgs, &[]), false, true);
        write(
            root,
            &format!("etc/kubernetes/{file}"),
            &kubeconfig(&server_url, user, &cert, &key),
            0o600,
        );
    }
    // The kubelet's client certificate lives in a file its kubeconfig names, as after rotation.
    let (cert, key) = leaf(
        &cluster,
        params(&format!("system:node:{node}"), &["system:nodes"], &[]),
        false,
        true,
    );
    write(
        root,
        "var/lib/kubelet/pki/kubelet-client-current.pem",
        &format!("{cert}{key}"),
        0o600,
    );
}
