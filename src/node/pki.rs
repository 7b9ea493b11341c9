//! Certificates and keys as the node holds them: parsed, never judged.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use pkcs8::der::Decode;
use x509_parser::prelude::*;

use super::rootfs::{FileKind, RootFs};

/// kubeadm's certificate directory.
pub const DEFAULT_PKI_DIR: &str = "/etc/kubernetes/pki";

/// A certificate's facts.
#[derive(Debug, Clone)]
pub struct Cert {
    pub der: Vec<u8>,
    pub subject: String,
    pub issuer: String,
    pub common_name: String,
    pub organizations: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
    pub digital_signature: bool,
    pub key_encipherment: bool,
    pub key_cert_sign: bool,
    pub server_auth: bool,
    pub client_auth: bool,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub public_key: PublicKeyId,
    /// The certificates after the first in the same file: a chain of intermediates.
    pub intermediates: Vec<Cert>,
}

/// Enough of a public key to tell whether a private key belongs to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKeyId {
    Rsa {
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
    /// An elliptic curve or Edwards point, as encoded in the certificate.
    Point(Vec<u8>),
    Other(String),
}

impl PublicKeyId {
    pub fn is_rsa(&self) -> bool {
        matches!(self, Self::Rsa { .. })
    }
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b[start..].to_vec()
}

/// Parses the first certificate of a PEM text (or DER), with any further CERTIFICATE blocks
/// of the text as its intermediates.
pub fn parse_cert(bytes: &[u8]) -> Result<Cert, String> {
    let mut blocks = Pem::iter_from_buffer(bytes);
    let der = match blocks.next() {
        Some(Ok(pem)) if pem.label == "CERTIFICATE" => pem.contents,
        Some(Ok(pem)) => return Err(format!("PEM block {:?}, expected CERTIFICATE", pem.label)),
        Some(Err(e)) => return Err(format!("not PEM: {e}")),
        None => bytes.to_vec(),
    };
    let mut intermediates = Vec::new();
    for block in blocks {
        match block {
            Ok(pem) if pem.label == "CERTIFICATE" => {
                let mut c = parse_one(pem.contents).map_err(|e| {
                    format!("certificate {} of the file: {e}", intermediates.len() + 2)
                })?;
                c.intermediates = Vec::new();
                intermediates.push(c);
            }
            // A key after the certificate (kubelet-client-current.pem) ends the chain.
            _ => break,
        }
    }
    let mut cert = parse_one(der)?;
    cert.intermediates = intermediates;
    Ok(cert)
}

fn parse_one(der: Vec<u8>) -> Result<Cert, String> {
    let (_, x) =
        X509Certificate::from_der(&der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let names = |n: &X509Name<'_>, f: fn(&X509Name<'_>) -> Vec<String>| f(n);
    let cn = |n: &X509Name<'_>| {
        n.iter_common_name()
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect()
    };
    let org = |n: &X509Name<'_>| {
        n.iter_organization()
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect()
    };
    let ku = x.key_usage().ok().flatten().map(|e| *e.value);
    let eku = x
        .extended_key_usage()
        .ok()
        .flatten()
        .map(|e| e.value.clone());
    let mut dns_names = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = x.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => dns_names.push((*d).to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())),
                    16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let public_key = match x.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(k)) => PublicKeyId::Rsa {
            modulus: strip_zeros(k.modulus),
            exponent: strip_zeros(k.exponent),
        },
        Ok(x509_parser::public_key::PublicKey::EC(p)) => PublicKeyId::Point(p.data().to_vec()),
        Ok(_) => PublicKeyId::Point(x.public_key().subject_public_key.data.to_vec()),
        Err(e) => PublicKeyId::Other(e.to_string()),
    };
    let cn_list: Vec<String> = names(x.subject(), cn);
    Ok(Cert {
        subject: x.subject().to_string(),
        issuer: x.issuer().to_string(),
        common_name: cn_list.into_iter().next().unwrap_or_default(),
        organizations: names(x.subject(), org),
        not_before: x.validity().not_before.timestamp(),
        not_after: x.validity().not_after.timestamp(),
        is_ca: x
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|b| b.value.ca),
        digital_signature: ku.is_some_and(|k| k.digital_signature()),
        key_encipherment: ku.is_some_and(|k| k.key_encipherment()),
        key_cert_sign: ku.is_some_and(|k| k.key_cert_sign()),
        server_auth: eku.as_ref().is_some_and(|e| e.server_auth || e.any),
        client_auth: eku.as_ref().is_some_and(|e| e.client_auth || e.any),
        dns_names,
        ips,
        public_key,
        der,
        intermediates: Vec::new(),
    })
}

impl Cert {
    /// Whether `ca` issued this certificate, directly or through the intermediates the file
    /// carries (each named by its issuer DN and proven by signature, as Go's `x509.Verify`
    /// builds a path from an intermediate pool). `Ok` gives the path's subjects, leaf's issuer
    /// first.
    pub fn verify_to(&self, ca: &Cert) -> Result<Vec<String>, String> {
        let mut path = Vec::new();
        let mut current = self;
        for _ in 0..=self.intermediates.len() {
            if current.issuer == ca.subject && current.signed_by(ca).is_ok() {
                path.push(ca.subject.clone());
                return Ok(path);
            }
            let Some(next) = self
                .intermediates
                .iter()
                .find(|i| i.subject == current.issuer && current.signed_by(i).is_ok())
            else {
                break;
            };
            path.push(next.subject.clone());
            current = next;
        }
        if current.issuer != ca.subject {
            return Err(format!(
                "issuer {}, expected {}{}",
                current.issuer,
                ca.subject,
                if self.intermediates.is_empty() {
                    String::new()
                } else {
                    " (no chain in the file reaches it)".to_string()
                }
            ));
        }
        current.signed_by(ca).map(|()| {
            path.push(ca.subject.clone());
            path
        })
    }

    /// Whether `issuer`'s key signed this certificate.
    pub fn signed_by(&self, issuer: &Cert) -> Result<(), String> {
        let (_, me) = X509Certificate::from_der(&self.der).map_err(|e| e.to_string())?;
        let (_, ca) = X509Certificate::from_der(&issuer.der).map_err(|e| e.to_string())?;
        me.verify_signature(Some(ca.public_key()))
            .map_err(|e| format!("signature does not verify: {e}"))
    }
}

/// The public half of a private key file (PKCS#1, SEC1 or PKCS#8 PEM).
pub fn parse_key(bytes: &[u8]) -> Result<PublicKeyId, String> {
    let pem = match Pem::iter_from_buffer(bytes).next() {
        Some(Ok(p)) => p,
        Some(Err(e)) => return Err(format!("not PEM: {e}")),
        None => return Err("no PEM block".into()),
    };
    parse_key_block(&pem)
}

/// The client certificate's key and the client key's public half, from PEM texts that may
/// each hold both (kubeadm's `kubelet-client-current.pem` does): `Err` says why they are not
/// a pair. A key whose public half cannot be derived is not judged.
pub fn check_key_pair(cert_pem: &[u8], key_pem: &[u8]) -> Result<(), String> {
    let blocks = |bytes: &[u8]| -> Vec<Pem> { Pem::iter_from_buffer(bytes).flatten().collect() };
    let cert = blocks(cert_pem)
        .into_iter()
        .find(|p| p.label == "CERTIFICATE")
        .ok_or("no CERTIFICATE block")?;
    let cert = parse_cert(&cert.contents)?;
    let key = blocks(key_pem)
        .into_iter()
        .find(|p| p.label.ends_with("PRIVATE KEY"))
        .ok_or("no PRIVATE KEY block")?;
    match parse_key_block(&key)? {
        PublicKeyId::Other(_) => Ok(()),
        public if public == cert.public_key => Ok(()),
        _ => Err(format!(
            "the private key does not belong to the certificate ({})",
            cert.subject
        )),
    }
}

fn parse_key_block(pem: &Pem) -> Result<PublicKeyId, String> {
    match pem.label.as_str() {
        "RSA PRIVATE KEY" => rsa(&pem.contents),
        "EC PRIVATE KEY" => ec(&pem.contents),
        "PRIVATE KEY" => {
            let info = pkcs8::PrivateKeyInfoRef::from_der(&pem.contents)
                .map_err(|e| format!("PKCS#8: {e}"))?;
            let inner = info.private_key.as_bytes();
            match info.algorithm.oid.to_string().as_str() {
                "1.2.840.113549.1.1.1" => rsa(inner),
                "1.2.840.10045.2.1" => ec(inner),
                oid => match info.public_key.and_then(|p| p.as_bytes()) {
                    Some(p) => Ok(PublicKeyId::Point(p.to_vec())),
                    None => Ok(PublicKeyId::Other(format!(
                        "a {oid} key without its public part"
                    ))),
                },
            }
        }
        other => Err(format!("PEM block {other:?} is not a private key")),
    }
}

fn rsa(der: &[u8]) -> Result<PublicKeyId, String> {
    let k = pkcs1::RsaPrivateKeyRef::try_from(der).map_err(|e| format!("PKCS#1: {e}"))?;
    Ok(PublicKeyId::Rsa {
        modulus: strip_zeros(k.modulus.as_bytes()),
        exponent: strip_zeros(k.public_exponent.as_bytes()),
    })
}

fn ec(der: &[u8]) -> Result<PublicKeyId, String> {
    let k = sec1::EcPrivateKey::from_der(der).map_err(|e| format!("SEC1: {e}"))?;
    Ok(match k.public_key {
        Some(p) => PublicKeyId::Point(p.to_vec()),
        None => PublicKeyId::Other("an EC key without its public part".into()),
    })
}

/// A public key file (`PUBLIC KEY` PEM, as sa.pub).
pub fn parse_public_key(bytes: &[u8]) -> Result<PublicKeyId, String> {
    let pem = match Pem::iter_from_buffer(bytes).next() {
        Some(Ok(p)) if p.label == "PUBLIC KEY" || p.label == "RSA PUBLIC KEY" => p,
        Some(Ok(p)) => return Err(format!("PEM block {:?} is not a public key", p.label)),
        Some(Err(e)) => return Err(format!("not PEM: {e}")),
        None => return Err("no PEM block".into()),
    };
    if pem.label == "RSA PUBLIC KEY" {
        let (_, k) = x509_parser::public_key::RSAPublicKey::from_der(&pem.contents)
            .map_err(|e| e.to_string())?;
        return Ok(PublicKeyId::Rsa {
            modulus: strip_zeros(k.modulus),
            exponent: strip_zeros(k.exponent),
        });
    }
    let (_, spki) = SubjectPublicKeyInfo::from_der(&pem.contents)
        .map_err(|e| format!("not a public key: {e}"))?;
    Ok(match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(k)) => PublicKeyId::Rsa {
            modulus: strip_zeros(k.modulus),
            exponent: strip_zeros(k.exponent),
        },
        Ok(x509_parser::public_key::PublicKey::EC(p)) => PublicKeyId::Point(p.data().to_vec()),
        _ => PublicKeyId::Point(spki.subject_public_key.data.to_vec()),
    })
}

/// A certificate file as found under the root.
#[derive(Debug, Clone)]
pub struct CertFile {
    pub path: PathBuf,
    pub cert: Result<Cert, String>,
}

pub fn load_cert(root: &RootFs, path: &Path) -> Option<CertFile> {
    match root.read_shared(path, FileKind::Pki) {
        Ok(bytes) => Some(CertFile {
            path: path.to_path_buf(),
            cert: parse_cert(&bytes),
        }),
        Err(e) if e.is_not_found() => None,
        Err(e) => Some(CertFile {
            path: path.to_path_buf(),
            cert: Err(e.reason().to_string()),
        }),
    }
}

/// A private key file: its public half and its mode.
#[derive(Debug, Clone)]
pub struct KeyFile {
    pub path: PathBuf,
    pub mode: u32,
    pub public: Result<PublicKeyId, String>,
}

pub fn load_key(root: &RootFs, path: &Path) -> Option<KeyFile> {
    let meta = match root.metadata(path) {
        Ok(m) => m,
        Err(e) if e.is_not_found() => return None,
        Err(e) => {
            return Some(KeyFile {
                path: path.to_path_buf(),
                mode: 0,
                public: Err(e.reason().to_string()),
            });
        }
    };
    let public = root
        .read_shared(path, FileKind::Pki)
        .map_err(|e| e.reason().to_string())
        .and_then(|b| parse_key(&b));
    Some(KeyFile {
        path: path.to_path_buf(),
        mode: meta.mode,
        public,
    })
}

/// A value read from the node and where: `--advertise-address
/// (/etc/kubernetes/manifests/kube-apiserver.yaml)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced {
    pub value: String,
    pub from: String,
}

/// The parts of kubeadm's `InitConfiguration` that decide a control-plane node's certificate
/// SANs, recovered from what kubeadm wrote on the node (its ClusterConfiguration is kept in
/// the cluster, not on the node). Each is `None` where the node does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeadmInputs {
    /// `nodeRegistration.name`: the name the kubelet registers with.
    pub node_name: String,
    /// `localAPIEndpoint.advertiseAddress`: kube-apiserver's `--advertise-address`, unless the
    /// host of the `kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint`
    /// annotation, which kubeadm always writes from `localAPIEndpoint`
    /// (cmd/kubeadm/app/phases/controlplane/manifests.go), names another address; else that
    /// annotation's host; else the host of etcd's first `--advertise-client-urls`.
    pub advertise_address: Option<Sourced>,
    /// kube-apiserver's `--advertise-address` where it is not the annotation's address:
    /// `apiServer.extraArgs` overrode it, and kubeadm still takes the SANs from
    /// `localAPIEndpoint` (`GetAPIServerAltNames`, `getAltNames`).
    pub advertise_address_flag: Option<Sourced>,
    /// `networking.serviceSubnet`, comma-separated CIDRs: `--service-cluster-ip-range` of
    /// kube-apiserver, else of kube-controller-manager.
    pub service_subnet: Option<Sourced>,
    /// `networking.dnsDomain`: the kubelet's `clusterDomain`, which kubeadm sets from it.
    pub dns_domain: Option<Sourced>,
    /// The host of `controlPlaneEndpoint`: the server of admin.conf (else super-admin.conf),
    /// which kubeadm points there when it is set and at the advertise address otherwise.
    pub control_plane_endpoint: Option<Sourced>,
}

/// The annotation kubeadm puts on the kube-apiserver static pod: `<address>:<port>`.
const APISERVER_ENDPOINT_ANNOTATION: &str =
    "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint";

type StaticPod<'a> = (&'a Path, &'a k8s_openapi::api::core::v1::Pod);

/// The node's static pods, each with its file.
fn static_pods(node: &super::Node) -> Vec<StaticPod<'_>> {
    let (_, manifests) = node.static_pods();
    manifests
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m.pods.as_ref().ok().map(|p| (m.file.as_path(), p)))
                .flat_map(|(file, pods)| pods.iter().map(move |p| (file, p)))
                .collect()
        })
        .unwrap_or_default()
}

/// `--<name>=` of the first container of `component`'s static pod.
fn component_flag(pods: &[StaticPod<'_>], component: &str, name: &str) -> Option<Sourced> {
    pods.iter().find_map(|(file, pod)| {
        if !is_component(pod, component) {
            return None;
        }
        let c = pod.spec.as_ref()?.containers.first()?;
        let prefix = format!("--{name}=");
        c.command
            .iter()
            .flatten()
            .chain(c.args.iter().flatten())
            .find_map(|a| a.strip_prefix(&prefix))
            .map(|v| Sourced {
                value: v.to_string(),
                from: format!("--{name} of {} ({})", component, file.display()),
            })
    })
}

/// kubeadm's `CACertName`: the cluster CA's file in `certificatesDir`.
const CA_CERT_NAME: &str = "ca.crt";

/// kubeadm's `certificatesDir` as the node shows it: the directory of kube-apiserver's
/// `--client-ca-file`, else of the kubelet's `authentication.x509.clientCAFile`, which kubeadm
/// sets to `<certificatesDir>/ca.crt` (cmd/kubeadm/app/phases/controlplane/manifests.go,
/// cmd/kubeadm/app/componentconfigs/kubelet.go; on workers too, from the cluster's
/// ClusterConfiguration). `None` where neither names a `ca.crt` by an absolute path.
pub fn kubeadm_cert_dir(node: &super::Node) -> Option<PathBuf> {
    let dir_of = |file: &str| -> Option<PathBuf> {
        let path = Path::new(file);
        if !path.is_absolute() || path.file_name()? != CA_CERT_NAME {
            return None;
        }
        path.parent().map(Path::to_path_buf)
    };
    component_flag(&static_pods(node), "kube-apiserver", "client-ca-file")
        .and_then(|f| dir_of(&f.value))
        .or_else(|| {
            node.kubelet()
                .ok()?
                .str("authentication.x509.clientCAFile")
                .and_then(dir_of)
        })
}

/// Reads [`KubeadmInputs`] from the node's static pods, kubelet configuration and
/// kubeconfigs. Never fails: what cannot be read is `None`.
pub fn kubeadm_inputs(node: &super::Node) -> KubeadmInputs {
    let pods = static_pods(node);
    let flag = |component: &str, name: &str| component_flag(&pods, component, name);
    let annotation = || {
        pods.iter().find_map(|(file, pod)| {
            if !is_component(pod, "kube-apiserver") {
                return None;
            }
            let endpoint = pod
                .metadata
                .annotations
                .as_ref()?
                .get(APISERVER_ENDPOINT_ANNOTATION)?;
            Some(Sourced {
                value: split_host_port(endpoint).to_string(),
                from: format!(
                    "annotation {APISERVER_ENDPOINT_ANNOTATION} ({})",
                    file.display()
                ),
            })
        })
    };
    let etcd_url = || {
        flag("etcd", "advertise-client-urls").and_then(|s| {
            let first = s.value.split(',').next()?.to_string();
            Some(Sourced {
                value: url_host(&first)?.to_string(),
                from: s.from,
            })
        })
    };
    let advertise_flag = flag("kube-apiserver", "advertise-address");
    // Where the two agree the flag is named, as the operator knows it.
    let (advertise_address, advertise_address_flag) = match (annotation(), advertise_flag) {
        (Some(a), Some(f)) if !same_address(&a.value, &f.value) => (Some(a), Some(f)),
        (a, f) => (f.or(a).or_else(etcd_url), None),
    };
    let service_subnet = flag("kube-apiserver", "service-cluster-ip-range")
        .or_else(|| flag("kube-controller-manager", "service-cluster-ip-range"));
    let dns_domain = node.kubelet().ok().and_then(|k| {
        k.str("clusterDomain").map(|d| Sourced {
            value: d.trim_end_matches('.').to_string(),
            from: k.origin("clusterDomain"),
        })
    });
    let control_plane_endpoint = ["admin.conf", "super-admin.conf"].iter().find_map(|f| {
        let path = Path::new("/etc/kubernetes").join(f);
        let read = node.kubeconfig(&path);
        let k = read.as_ref().as_ref().ok()?.as_ref()?;
        Some(Sourced {
            value: url_host(&k.server)?.to_string(),
            from: format!("server of {}", path.display()),
        })
    });
    KubeadmInputs {
        node_name: node.name().to_string(),
        advertise_address,
        advertise_address_flag,
        service_subnet,
        dns_domain,
        control_plane_endpoint,
    }
}

fn is_component(pod: &k8s_openapi::api::core::v1::Pod, component: &str) -> bool {
    super::staticpods::component(pod) == Some(component)
}

/// Whether two textual addresses name the same IP (`fd00:10:0:0:0:0:0:a` is `fd00:10::a`);
/// text that is not an IP compares as written.
fn same_address(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x.to_canonical() == y.to_canonical(),
        _ => a == b,
    }
}

/// The host of `host:port`, `[v6]:port` or a bare host, brackets removed.
fn split_host_port(s: &str) -> &str {
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match s.rsplit_once(':') {
        // One colon: host:port. More: a bare IPv6 address.
        Some((host, _)) if !host.contains(':') => host,
        _ => s,
    }
}

/// The host of a URL such as `https://[fd00::1]:2379/path`.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = split_host_port(authority);
    (!host.is_empty()).then_some(host)
}
