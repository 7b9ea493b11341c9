//! The cluster's certificates as a node holds them: one test per certificate of a kubeadm-style
//! PKI, and one per kubeconfig.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::{Context, Outcome, Recorder, Test, join_items};
use crate::node::pki::{self, Cert, KubeadmInputs, load_cert, load_key};

const AREA: &str = "PKI";
const TAGS: &[&str] = &["NodeBestPractice"];
const DAY: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ca,
    Server,
    Client,
    ServerClient,
}

/// The kubeadm rule a certificate's SANs follow (cmd/kubeadm/app/phases/certs/certlist.go
/// names one per certificate; the rules are in cmd/kubeadm/app/util/pkiutil/pki_helpers.go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sans {
    /// CAs and client certificates carry none.
    None,
    /// `GetAPIServerAltNames`: the node's name, `kubernetes`, `kubernetes.default`,
    /// `kubernetes.default.svc`, `kubernetes.default.svc.<dnsDomain>`, the kubernetes service IP
    /// (the first IP of the first service CIDR only, also on a dual-stack cluster), the
    /// advertise address, the controlPlaneEndpoint's host (an IP or a DNS name), then
    /// `apiServer.certSANs`.
    ApiServer,
    /// `GetEtcdAltNames`, that is `getAltNames` for etcd/server: the node's name, `localhost`,
    /// the advertise address, 127.0.0.1 and ::1, then `etcd.local.serverCertSANs`.
    EtcdServer,
    /// `GetEtcdPeerAltNames`, that is `getAltNames` for etcd/peer: as [`Sans::EtcdServer`],
    /// then `etcd.local.peerCertSANs`.
    EtcdPeer,
}

/// kubeadm's default `networking.serviceSubnet` (cmd/kubeadm/app/constants:
/// `DefaultServicesSubnet`), assumed where the node names none.
pub const DEFAULT_SERVICE_SUBNET: &str = "10.96.0.0/12";
/// kubeadm's default `networking.dnsDomain` (`DefaultServiceDNSDomain`).
pub const DEFAULT_DNS_DOMAIN: &str = "cluster.local";

/// A SAN kubeadm writes: a DNS name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AltName {
    Dns(String),
    Ip(IpAddr),
}

impl std::fmt::Display for AltName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dns(d) => f.write_str(d),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// The SANs kubeadm would write into one certificate on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectedAltNames {
    /// Each SAN with where it comes from (empty for a fixed name such as `kubernetes`).
    pub names: Vec<(AltName, String)>,
    /// Inputs the node does not hold, and the default assumed or the SAN left unchecked.
    pub notes: Vec<String>,
    /// Inputs kubeadm would refuse (it would not have generated the certificate).
    pub refused: Vec<String>,
}

/// The SANs kubeadm generates for a certificate of rule `which` from `inputs`, in kubeadm's
/// order. User-given extras (`apiServer.certSANs`, `etcd.local.serverCertSANs`,
/// `etcd.local.peerCertSANs`) are not known on the node and are not listed: a certificate may
/// carry them (see [`is_valid_cert_san`]).
pub fn expected_alt_names(which: Sans, inputs: &KubeadmInputs) -> ExpectedAltNames {
    let mut e = ExpectedAltNames::default();
    if which == Sans::None {
        return e;
    }
    let dns = |e: &mut ExpectedAltNames, d: &str, why: &str| {
        e.names.push((AltName::Dns(d.to_string()), why.to_string()))
    };
    let node = inputs.node_name.as_str();
    let advertise = match &inputs.advertise_address {
        None => {
            e.notes.push(
                "the advertise address is unknown (no --advertise-address of kube-apiserver, no \
                 advertise-address annotation, no --advertise-client-urls of etcd): not checked"
                    .into(),
            );
            None
        }
        Some(a) => match a.value.parse::<IpAddr>() {
            Ok(ip) => {
                if let Some(f) = &inputs.advertise_address_flag {
                    e.notes.push(format!(
                        "{} is {}, not kubeadm's localAPIEndpoint {} ({}): apiServer.extraArgs \
                         overrode it, and kubeadm takes the SANs from localAPIEndpoint",
                        f.from, f.value, a.value, a.from
                    ));
                }
                Some((ip, a.from.clone()))
            }
            Err(_) => {
                e.refused.push(format!(
                    "advertise address {:?} ({}) is not a valid textual representation of an IP \
                     address",
                    a.value, a.from
                ));
                None
            }
        },
    };
    match which {
        Sans::None => {}
        Sans::ApiServer => {
            let (domain, domain_from) = match &inputs.dns_domain {
                Some(d) => (d.value.clone(), d.from.clone()),
                None => {
                    e.notes.push(format!(
                        "no clusterDomain in the kubelet's configuration: kubeadm's default dnsDomain \
                         {DEFAULT_DNS_DOMAIN} assumed"
                    ));
                    (
                        DEFAULT_DNS_DOMAIN.to_string(),
                        "kubeadm's default".to_string(),
                    )
                }
            };
            dns(&mut e, node, "the node's name");
            for d in ["kubernetes", "kubernetes.default", "kubernetes.default.svc"] {
                dns(&mut e, d, "");
            }
            dns(
                &mut e,
                &format!("kubernetes.default.svc.{domain}"),
                &format!("dnsDomain {domain}, {domain_from}"),
            );
            let (subnets, subnets_from) = match &inputs.service_subnet {
                Some(s) => (s.value.clone(), s.from.clone()),
                None => {
                    e.notes.push(format!(
                        "no --service-cluster-ip-range: kubeadm's default serviceSubnet \
                         {DEFAULT_SERVICE_SUBNET} assumed"
                    ));
                    (
                        DEFAULT_SERVICE_SUBNET.to_string(),
                        "kubeadm's default".to_string(),
                    )
                }
            };
            match kubernetes_service_ip(&subnets) {
                Ok((ip, cidr)) => e.names.push((
                    AltName::Ip(ip),
                    format!("the kubernetes service: first IP of {cidr}, {subnets_from}"),
                )),
                Err(why) => e.refused.push(format!("{why} ({subnets_from})")),
            }
            if let Some((ip, from)) = &advertise {
                e.names
                    .push((AltName::Ip(*ip), format!("the advertise address, {from}")));
            }
            if let Some(cpe) = &inputs.control_plane_endpoint {
                let why = format!("the controlPlaneEndpoint, {}", cpe.from);
                match cpe.value.parse::<IpAddr>() {
                    Ok(ip) => e.names.push((AltName::Ip(ip), why)),
                    Err(_) => dns(&mut e, &cpe.value, &why),
                }
            }
        }
        Sans::EtcdServer | Sans::EtcdPeer => {
            dns(&mut e, node, "the node's name");
            dns(&mut e, "localhost", "");
            if let Some((ip, from)) = &advertise {
                e.names
                    .push((AltName::Ip(*ip), format!("the advertise address, {from}")));
            }
            e.names
                .push((AltName::Ip(IpAddr::from([127, 0, 0, 1])), String::new()));
            e.names.push((
                AltName::Ip(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
                String::new(),
            ));
        }
    }
    // kubeadm's RemoveDuplicateAltNames: a name given twice is written once.
    let mut seen = Vec::new();
    e.names.retain(|(n, _)| {
        let key = match n {
            AltName::Dns(d) => AltName::Dns(d.to_ascii_lowercase()),
            AltName::Ip(ip) => AltName::Ip(ip.to_canonical()),
        };
        let fresh = !seen.contains(&key);
        seen.push(key);
        fresh
    });
    e
}

/// The kubernetes service's IP: the first IP (network + 1) of the first CIDR of a
/// comma-separated service subnet list, as kubeadm's `GetAPIServerVirtualIP`
/// (cmd/kubeadm/app/constants/constants.go) takes it; the other CIDRs of a dual-stack list
/// give no SAN. Returns the IP and the CIDR it came from; `Err` as kubeadm refuses the list.
pub fn kubernetes_service_ip(subnets: &str) -> Result<(IpAddr, String), String> {
    let first = subnets.split(',').next().unwrap_or_default().trim();
    let bad = || format!("unable to parse ServiceSubnet {subnets:?}");
    let (addr, prefix) = first.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let prefix: u32 = prefix.parse().map_err(|_| bad())?;
    let ip = match addr {
        IpAddr::V4(a) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            if prefix == 32 {
                None
            } else {
                Some(IpAddr::V4(std::net::Ipv4Addr::from(
                    (u32::from(a) & mask) + 1,
                )))
            }
        }
        IpAddr::V6(a) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            if prefix == 128 {
                None
            } else {
                Some(IpAddr::V6(std::net::Ipv6Addr::from(
                    (u128::from(a) & mask) + 1,
                )))
            }
        }
        _ => return Err(bad()),
    };
    let ip = ip.ok_or_else(|| {
        format!("unable to get the first IP address from the given CIDR: {first}")
    })?;
    Ok((ip, first.to_string()))
}

/// Whether kubeadm would accept `name` as a certSANs entry (`ValidateCertSANs`,
/// cmd/kubeadm/app/apis/kubeadm/validation/validation.go): an IP address, a DNS-1123
/// subdomain, or a wildcard one (`*.example.com`).
pub fn is_valid_cert_san(name: &str) -> bool {
    name.parse::<IpAddr>().is_ok()
        || is_dns1123_subdomain(name)
        || name.strip_prefix("*.").is_some_and(is_dns1123_subdomain)
}

/// apimachinery's `IsDNS1123Subdomain`: at most 253 characters, dot-separated labels of
/// lower-case alphanumerics and `-`, each starting and ending alphanumeric.
fn is_dns1123_subdomain(name: &str) -> bool {
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    name.len() <= 253 && name.split('.').all(label_ok)
}

/// A certificate of the table: where it lives and what it must be.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub title: &'static str,
    /// Relative to the PKI directory; the key is the same with `.key`.
    pub file: &'static str,
    pub kind: Kind,
    /// Accepted CNs, the documented form first; `<node>` stands for the node's name.
    pub cns: &'static [&'static str],
    /// Accepted O sets, the documented form first.
    pub orgs: &'static [&'static [&'static str]],
    /// The CA that signs it, a file relative to the PKI directory.
    pub parent: Option<&'static str>,
    pub sans: Sans,
    /// Absent on a worker: the test skips there.
    pub control_plane: bool,
    /// `kubeadm certs renew` names it so.
    pub renew: &'static str,
}

const NO_O: &[&[&str]] = &[&[]];

/// kubeadm's certificates, as `GetDefaultCertList` in cmd/kubeadm/app/phases/certs/certlist.go
/// defines them (kubeadm 1.35): file (`BaseName`), CA (`CAName`), CN, organization, usages
/// and SAN rule (its alt-names mutator). The CN and O lists put the documented form first and
/// accept kubeadm's current and older ones: in current kubeadm apiserver-kubelet-client is in
/// `kubeadm:cluster-admins` and apiserver-etcd-client and etcd/healthcheck-client carry no
/// organization (older releases put all three in `system:masters`);
/// etcd/server and etcd/peer take the node's name as CN (`setCommonNameToNodeName`).
pub const ROWS: &[Row] = &[
    Row {
        title: "the cluster CA",
        file: "ca.crt",
        kind: Kind::Ca,
        cns: &["kubernetes-ca", "kubernetes"],
        orgs: NO_O,
        parent: None,
        sans: Sans::None,
        control_plane: false,
        renew: "",
    },
    Row {
        title: "the etcd CA",
        file: "etcd/ca.crt",
        kind: Kind::Ca,
        cns: &["etcd-ca"],
        orgs: NO_O,
        parent: None,
        sans: Sans::None,
        control_plane: true,
        renew: "",
    },
    Row {
        title: "the front proxy CA",
        file: "front-proxy-ca.crt",
        kind: Kind::Ca,
        cns: &["kubernetes-front-proxy-ca", "front-proxy-ca"],
        orgs: NO_O,
        parent: None,
        sans: Sans::None,
        control_plane: true,
        renew: "",
    },
    Row {
        title: "the etcd server certificate",
        file: "etcd/server.crt",
        kind: Kind::ServerClient,
        cns: &["kube-etcd", "<node>"],
        orgs: NO_O,
        parent: Some("etcd/ca.crt"),
        sans: Sans::EtcdServer,
        control_plane: true,
        renew: "etcd-server",
    },
    Row {
        title: "the etcd peer certificate",
        file: "etcd/peer.crt",
        kind: Kind::ServerClient,
        cns: &["kube-etcd-peer", "<node>"],
        orgs: NO_O,
        parent: Some("etcd/ca.crt"),
        sans: Sans::EtcdPeer,
        control_plane: true,
        renew: "etcd-peer",
    },
    Row {
        title: "the etcd healthcheck client certificate",
        file: "etcd/healthcheck-client.crt",
        kind: Kind::Client,
        cns: &["kube-etcd-healthcheck-client"],
        orgs: &[&[], &["system:masters"]],
        parent: Some("etcd/ca.crt"),
        sans: Sans::None,
        control_plane: true,
        renew: "etcd-healthcheck-client",
    },
    Row {
        title: "the API server's etcd client certificate",
        file: "apiserver-etcd-client.crt",
        kind: Kind::Client,
        cns: &["kube-apiserver-etcd-client"],
        orgs: &[&["system:masters"], &[]],
        parent: Some("etcd/ca.crt"),
        sans: Sans::None,
        control_plane: true,
        renew: "apiserver-etcd-client",
    },
    Row {
        title: "the API server's serving certificate",
        file: "apiserver.crt",
        kind: Kind::Server,
        cns: &["kube-apiserver"],
        orgs: NO_O,
        parent: Some("ca.crt"),
        sans: Sans::ApiServer,
        control_plane: true,
        renew: "apiserver",
    },
    Row {
        title: "the API server's kubelet client certificate",
        file: "apiserver-kubelet-client.crt",
        kind: Kind::Client,
        cns: &["kube-apiserver-kubelet-client"],
        orgs: &[&["system:masters"], &["kubeadm:cluster-admins"]],
        parent: Some("ca.crt"),
        sans: Sans::None,
        control_plane: true,
        renew: "apiserver-kubelet-client",
    },
    Row {
        title: "the front proxy client certificate",
        file: "front-proxy-client.crt",
        kind: Kind::Client,
        cns: &["front-proxy-client"],
        orgs: NO_O,
        parent: Some("front-proxy-ca.crt"),
        sans: Sans::None,
        control_plane: true,
        renew: "front-proxy-client",
    },
];

macro_rules! row_tests {
    ($($f:ident = $i:expr),* $(,)?) => {
        $(fn $f(ctx: &Context) -> Outcome { check_row(ctx, &ROWS[$i]) })*
        const ROW_FNS: &[fn(&Context) -> Outcome] = &[$($f),*];
    };
}
row_tests!(
    r0 = 0,
    r1 = 1,
    r2 = 2,
    r3 = 3,
    r4 = 4,
    r5 = 5,
    r6 = 6,
    r7 = 7,
    r8 = 8,
    r9 = 9
);

const BEHAVIOURS: &[&str] = &[
    "the cluster CA (ca.crt) is valid",
    "the etcd CA (etcd/ca.crt) is valid",
    "the front proxy CA (front-proxy-ca.crt) is valid",
    "the etcd server certificate (etcd/server.crt) is valid",
    "the etcd peer certificate (etcd/peer.crt) is valid",
    "the etcd healthcheck client certificate (etcd/healthcheck-client.crt) is valid",
    "the API server's etcd client certificate (apiserver-etcd-client.crt) is valid",
    "the API server's serving certificate (apiserver.crt) is valid",
    "the API server's kubelet client certificate (apiserver-kubelet-client.crt) is valid",
    "the front proxy client certificate (front-proxy-client.crt) is valid",
];

pub fn tests() -> Vec<Test> {
    let mut tests: Vec<Test> = BEHAVIOURS
        .iter()
        .zip(ROW_FNS)
        .map(|(behaviour, run)| Test {
            area: AREA,
            behaviour,
            tags: TAGS,
            needs: &[],
            run: *run,
            read_ahead: None,
            budget: None,
        })
        .collect();
    let t = |behaviour, run| Test::plain(AREA, TAGS, behaviour, run);
    tests.extend([
        t(
            "the service account key pair (sa.key, sa.pub) matches",
            service_account,
        ),
        t(
            "admin.conf carries the cluster admin's certificate",
            admin_conf,
        ),
        t("kubelet.conf carries the node's certificate", kubelet_conf),
        t(
            "controller-manager.conf carries the controller manager's certificate",
            controller_manager_conf,
        ),
        t(
            "scheduler.conf carries the scheduler's certificate",
            scheduler_conf,
        ),
    ]);
    tests
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn when(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0).map_or_else(
        || ts.to_string(),
        |d| d.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// Validity: expired and not yet valid fail, under 30 days warns.
fn validity(r: &mut Recorder, cert: &Cert) {
    let now = now();
    if now < cert.not_before {
        r.fail(
            "validity",
            format!("not valid before {}", when(cert.not_before)),
        );
    } else if now > cert.not_after {
        r.fail("validity", format!("expired {}", when(cert.not_after)));
    } else if cert.not_after - now < 30 * DAY {
        r.warn(
            "validity",
            format!(
                "expires {}, in {} days",
                when(cert.not_after),
                (cert.not_after - now) / DAY
            ),
        );
    } else {
        r.ok(
            "validity",
            format!(
                "until {} ({} days)",
                when(cert.not_after),
                (cert.not_after - now) / DAY
            ),
        );
    }
}

/// CN and O against the accepted forms, saying which was seen.
fn identity(r: &mut Recorder, cert: &Cert, cns: &[String], orgs: &[&[&str]]) {
    match cns.iter().position(|c| *c == cert.common_name) {
        Some(0) => r.ok("CN", format!("{} (documented form)", cert.common_name)),
        Some(_) => r.ok("CN", format!("{} (kubeadm's form)", cert.common_name)),
        None => r.fail(
            "CN",
            format!("{:?}, expected {}", cert.common_name, join_items(cns)),
        ),
    }
    let mut seen: Vec<&str> = cert.organizations.iter().map(String::as_str).collect();
    seen.sort_unstable();
    let shown = |o: &[&str]| {
        if o.is_empty() {
            "none".to_string()
        } else {
            o.join("+")
        }
    };
    match orgs.iter().position(|o| {
        let mut o = o.to_vec();
        o.sort_unstable();
        o == seen
    }) {
        Some(0) => r.ok("O", format!("{} (documented form)", shown(&seen))),
        Some(_) => r.ok("O", format!("{} (kubeadm's form)", shown(&seen))),
        None => r.fail(
            "O",
            format!(
                "{}, expected {}",
                shown(&seen),
                orgs.iter()
                    .map(|o| shown(o))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        ),
    }
}

fn usages(r: &mut Recorder, cert: &Cert, kind: Kind) {
    if kind == Kind::Ca {
        if cert.is_ca {
            r.ok("basic constraints", "CA")
        } else {
            r.fail("basic constraints", "not a CA")
        }
        if cert.key_cert_sign {
            r.ok("key usage", "certificate signing")
        } else {
            r.fail("key usage", "lacks certificate signing")
        }
        return;
    }
    if cert.is_ca {
        r.fail(
            "basic constraints",
            "a CA, where a leaf certificate belongs",
        );
    } else {
        r.ok("basic constraints", "not a CA");
    }
    let mut missing = Vec::new();
    if !cert.digital_signature {
        missing.push("digital signature");
    }
    if cert.public_key.is_rsa() && !cert.key_encipherment {
        missing.push("key encipherment");
    }
    if missing.is_empty() {
        r.ok("key usage", "fits")
    } else {
        r.fail("key usage", format!("lacks {}", missing.join(" and ")))
    }
    let (server, client) = match kind {
        Kind::Server => (true, false),
        Kind::Client => (false, true),
        _ => (true, true),
    };
    let mut eku = Vec::new();
    if server && !cert.server_auth {
        eku.push("server auth");
    }
    if client && !cert.client_auth {
        eku.push("client auth");
    }
    if eku.is_empty() {
        r.ok(
            "extended key usage",
            if server && client {
                "server and client auth"
            } else if server {
                "server auth"
            } else {
                "client auth"
            },
        );
    } else {
        r.fail("extended key usage", format!("lacks {}", eku.join(" and ")));
    }
}

/// The certificate's SANs against kubeadm's for this node ([`expected_alt_names`]): a missing
/// one fails, as does an extra DNS name kubeadm's certSANs validation refuses; other extras
/// (certSANs, or names added by hand) are reported.
fn sans(r: &mut Recorder, ctx: &Context, cert: &Cert, which: Sans) {
    if which == Sans::None {
        return;
    }
    let inputs = pki::kubeadm_inputs(&ctx.node);
    let expected = expected_alt_names(which, &inputs);
    check_sans(r, cert, &expected);
}

fn check_sans(r: &mut Recorder, cert: &Cert, expected: &ExpectedAltNames) {
    for n in &expected.notes {
        r.info("SAN inputs", n);
    }
    for n in &expected.refused {
        r.fail("SAN inputs", format!("kubeadm would refuse: {n}"));
    }
    let has = |n: &AltName| match n {
        AltName::Dns(d) => cert.dns_names.iter().any(|c| c.eq_ignore_ascii_case(d)),
        AltName::Ip(ip) => has_ip(cert, *ip),
    };
    let missing: Vec<String> = expected
        .names
        .iter()
        .filter(|(n, _)| !has(n))
        .map(|(n, why)| {
            if why.is_empty() {
                n.to_string()
            } else {
                format!("{n} ({why})")
            }
        })
        .collect();
    let wanted = |n: &AltName| {
        expected.names.iter().any(|(e, _)| match (e, n) {
            (AltName::Dns(a), AltName::Dns(b)) => a.eq_ignore_ascii_case(b),
            (AltName::Ip(a), AltName::Ip(b)) => a.to_canonical() == b.to_canonical(),
            _ => false,
        })
    };
    let listed: Vec<AltName> = cert
        .dns_names
        .iter()
        .map(|d| AltName::Dns(d.clone()))
        .chain(cert.ips.iter().map(|i| AltName::Ip(*i)))
        .collect();
    let extra: Vec<&AltName> = listed.iter().filter(|n| !wanted(n)).collect();
    let refused: Vec<String> = extra
        .iter()
        .filter_map(|n| match n {
            AltName::Dns(d) if !is_valid_cert_san(d) => Some(format!("{d:?}")),
            _ => None,
        })
        .collect();
    let shown = |v: &[AltName]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    if missing.is_empty() {
        r.ok("SANs", join_items(&shown(&listed)));
    } else {
        r.fail(
            "SANs",
            format!(
                "missing {}; has {}",
                join_items(&missing),
                join_items(&shown(&listed))
            ),
        );
    }
    if !refused.is_empty() {
        r.fail(
            "extra SANs",
            format!(
                "{}: not an IP address, DNS-1123 subdomain or wildcard one, which kubeadm's \
                 certSANs validation refuses",
                join_items(&refused)
            ),
        );
    } else if !extra.is_empty() {
        r.info(
            "extra SANs",
            format!(
                "{}: beyond kubeadm's own, from certSANs or added by hand (accepted)",
                join_items(&extra.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            ),
        );
    }
}

/// Whether the certificate names `ip` among its IP SANs, compared as addresses
/// (`fd00:10:0:0:0:0:0:a` is `fd00:10::a`; an IPv4-mapped IPv6 SAN is its IPv4 address, as Go's
/// `net.IP.Equal` has it).
fn has_ip(cert: &Cert, ip: IpAddr) -> bool {
    cert.ips
        .iter()
        .any(|a| a.to_canonical() == ip.to_canonical())
}

fn pki_dir(ctx: &Context) -> PathBuf {
    ctx.node.pki_dir()
}

/// Private keys are mode 600 or stricter.
fn key_mode(r: &mut Recorder, key: &pki::KeyFile) {
    if key.mode & 0o077 == 0 {
        r.ok("key mode", format!("{:o}", key.mode));
    } else {
        r.fail(
            "key mode",
            format!(
                "{:o} ({}), must be 600 or stricter",
                key.mode,
                key.path.display()
            ),
        );
    }
}

fn check_row(ctx: &Context, row: &Row) -> Outcome {
    let dir = pki_dir(ctx);
    let cert_path = dir.join(row.file);
    let mut r = Recorder::new();
    let Some(file) = load_cert(&ctx.node.root, &cert_path) else {
        if row.control_plane {
            return Outcome::skipped(format!(
                "not a control-plane node: no {}",
                cert_path.display()
            ));
        }
        if let Err(why) = ctx.node.kubelet() {
            return Outcome::skipped(format!(
                "not a Kubernetes node yet: no {} and {why}",
                cert_path.display()
            ));
        }
        return r.fail_now(format!(
            "the cluster CA {} is missing; every node needs it to trust the API server (kubeadm join writes it)",
            cert_path.display()
        ));
    };
    let cert = match file.cert {
        Ok(c) => c,
        Err(e) => return r.fail_now(format!("{} does not parse: {e}", cert_path.display())),
    };
    r.note(format!("{}: {}", cert_path.display(), cert.subject));
    let cns: Vec<String> = row
        .cns
        .iter()
        .map(|c| {
            if *c == "<node>" {
                ctx.node.name().to_string()
            } else {
                (*c).to_string()
            }
        })
        .collect();
    identity(&mut r, &cert, &cns, row.orgs);
    usages(&mut r, &cert, row.kind);
    validity(&mut r, &cert);
    sans(&mut r, ctx, &cert, row.sans);
    // The issuer: named by DN and proven by signature.
    match row.parent {
        None => {
            if cert.issuer == cert.subject {
                match cert.signed_by(&cert) {
                    Ok(()) => r.ok("issuer", "self-signed"),
                    Err(e) => r.fail("issuer", format!("claims to be self-signed, but its {e}")),
                }
            } else {
                r.info("issuer", format!("{} (an intermediate CA)", cert.issuer));
            }
        }
        Some(parent) => {
            let parent_path = dir.join(parent);
            match load_cert(&ctx.node.root, &parent_path).map(|f| f.cert) {
                None => r.fail(
                    "issuer",
                    format!("its CA {} is missing", parent_path.display()),
                ),
                Some(Err(e)) => r.fail(
                    "issuer",
                    format!("its CA {} does not parse: {e}", parent_path.display()),
                ),
                Some(Ok(ca)) if ca.subject != cert.issuer && cert.intermediates.is_empty() => r
                    .fail(
                        "issuer",
                        format!(
                            "{}, expected {} ({})",
                            cert.issuer,
                            ca.subject,
                            parent_path.display()
                        ),
                    ),
                Some(Ok(ca)) => match cert.verify_to(&ca) {
                    Ok(path) if path.len() == 1 => r.ok(
                        "issuer",
                        format!(
                            "{} ({}), signature verified",
                            ca.subject,
                            parent_path.display()
                        ),
                    ),
                    Ok(path) => r.ok(
                        "issuer",
                        format!(
                            "{} ({}) through {} in the file, signatures verified",
                            ca.subject,
                            parent_path.display(),
                            join_items(&path[..path.len() - 1])
                        ),
                    ),
                    Err(e) if ca.subject == cert.issuer => {
                        r.fail("issuer", format!("names {} but its {e}", ca.subject))
                    }
                    Err(e) => r.fail("issuer", e),
                },
            }
        }
    }
    // The private key: present (for leaves), matching, and private.
    let key_path = cert_path.with_extension("key");
    match load_key(&ctx.node.root, &key_path) {
        None if row.kind == Kind::Ca => r.info(
            "key",
            format!(
                "{} absent: externally managed, or a worker",
                key_path.display()
            ),
        ),
        None => r.fail("key", format!("{} is missing", key_path.display())),
        Some(key) => {
            match &key.public {
                Ok(k) if *k == cert.public_key => {
                    r.ok("key", format!("{} matches", key_path.display()))
                }
                Ok(_) => r.fail(
                    "key",
                    format!("{} does not match the certificate", key_path.display()),
                ),
                Err(e) => r.fail("key", format!("{} does not parse: {e}", key_path.display())),
            }
            key_mode(&mut r, &key);
        }
    }
    let renew = row.renew;
    let title = row.title;
    let shown = cert_path.display().to_string();
    r.finish(|f| {
        let found = super::describe(f);
        let fix = if renew.is_empty() {
            "replace the CA and the certificates it signed".to_string()
        } else {
            format!("renew it with `kubeadm certs renew {renew}`")
        };
        format!("{title} {shown}: {}; {fix}", found)
    })
}

fn service_account(ctx: &Context) -> Outcome {
    let dir = pki_dir(ctx);
    let (key_path, pub_path) = (dir.join("sa.key"), dir.join("sa.pub"));
    let mut r = Recorder::new();
    let Some(key) = load_key(&ctx.node.root, &key_path) else {
        return Outcome::skipped(format!(
            "not a control-plane node: no {}",
            key_path.display()
        ));
    };
    let public = ctx
        .node
        .root
        .read_shared(&pub_path, crate::node::rootfs::FileKind::Pki)
        .map_err(|e| e.to_string())
        .and_then(|b| pki::parse_public_key(&b));
    match (&key.public, &public) {
        (Ok(a), Ok(b)) if a == b => r.ok("sa.key", format!("matches {}", pub_path.display())),
        (Ok(_), Ok(_)) => r.fail("sa.key", format!("does not match {}", pub_path.display())),
        (Err(e), _) => r.fail("sa.key", format!("does not parse: {e}")),
        (_, Err(e)) => r.fail("sa.pub", e.clone()),
    }
    key_mode(&mut r, &key);
    r.finish(|f| {
        let found = super::describe(f);
        format!(
            "the service account key pair in {}: {}; service account tokens cannot be verified",
            dir.display(),
            found
        )
    })
}

/// A kubeconfig's client certificate: the current context's user, embedded or by file.
fn kubeconfig_cert(ctx: &Context, path: &Path) -> Result<Option<(Cert, String)>, String> {
    let read = ctx.node.kubeconfig(path);
    let Some(k) = read.as_ref().as_ref().map_err(Clone::clone)? else {
        return Ok(None);
    };
    let pem = k.client_cert.clone().ok_or_else(|| {
        let how = match (&k.unsupported_auth, &k.token) {
            (Some(how), _) => format!("it authenticates with {how}"),
            (None, Some(_)) => "it authenticates with a bearer token".to_string(),
            (None, None) => "it names no credentials".to_string(),
        };
        format!(
            "{}: user {:?} has no client certificate: {how}",
            path.display(),
            k.user
        )
    })??;
    pki::parse_cert(&pem.bytes)
        .map(|c| Some((c, pem.from)))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn check_kubeconfig(
    ctx: &Context,
    file: &str,
    cns: &[String],
    orgs: &[&[&str]],
    control_plane: bool,
) -> Outcome {
    let path = Path::new("/etc/kubernetes").join(file);
    let mut r = Recorder::new();
    let (cert, from) = match kubeconfig_cert(ctx, &path) {
        Ok(Some(c)) => c,
        Ok(None) if control_plane => {
            return Outcome::skipped(format!("not a control-plane node: no {}", path.display()));
        }
        Ok(None) => {
            return Outcome::skipped(format!(
                "no {}: the kubelet has not joined a cluster",
                path.display()
            ));
        }
        Err(e) => return r.fail_now(e),
    };
    r.note(format!(
        "{}: client certificate {from}: {}",
        path.display(),
        cert.subject
    ));
    identity(&mut r, &cert, cns, orgs);
    validity(&mut r, &cert);
    if let Some(Ok(ca)) = load_cert(&ctx.node.root, &pki_dir(ctx).join("ca.crt")).map(|f| f.cert) {
        match cert.verify_to(&ca) {
            Ok(_) => r.ok("issuer", format!("{}, signature verified", ca.subject)),
            Err(e) => r.fail("issuer", format!("not the cluster CA's: {e}")),
        }
    }
    let shown = path.display().to_string();
    r.finish(|f| {
        let found = super::describe(f);
        format!("{shown}: {}; regenerate it with `kubeadm init phase kubeconfig` or `kubeadm certs renew`", found)
    })
}

fn admin_conf(ctx: &Context) -> Outcome {
    check_kubeconfig(
        ctx,
        "admin.conf",
        &["kubernetes-admin".into()],
        &[&["system:masters"], &["kubeadm:cluster-admins"]],
        true,
    )
}

fn kubelet_conf(ctx: &Context) -> Outcome {
    let cn = format!("system:node:{}", ctx.node.name());
    check_kubeconfig(ctx, "kubelet.conf", &[cn], &[&["system:nodes"]], false)
}

fn controller_manager_conf(ctx: &Context) -> Outcome {
    check_kubeconfig(
        ctx,
        "controller-manager.conf",
        &["system:kube-controller-manager".into()],
        NO_O,
        true,
    )
}

fn scheduler_conf(ctx: &Context) -> Outcome {
    check_kubeconfig(
        ctx,
        "scheduler.conf",
        &["system:kube-scheduler".into()],
        NO_O,
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::pki::Sourced;

    fn sourced(v: &str) -> Option<Sourced> {
        Some(Sourced {
            value: v.into(),
            from: "test".into(),
        })
    }

    fn names(e: &ExpectedAltNames) -> Vec<String> {
        e.names.iter().map(|(n, _)| n.to_string()).collect()
    }

    #[test]
    fn the_kubernetes_service_ip_is_the_first_of_the_first_cidr() {
        let ip = |s: &str| kubernetes_service_ip(s).map(|(ip, _)| ip.to_string());
        assert_eq!(ip("10.96.0.0/12").as_deref(), Ok("10.96.0.1"));
        // Host bits are masked, as net.ParseCIDR does.
        assert_eq!(ip("10.96.7.9/12").as_deref(), Ok("10.96.0.1"));
        assert_eq!(
            ip("10.96.0.0/16,fd00:10:96::/112").as_deref(),
            Ok("10.96.0.1")
        );
        assert_eq!(
            ip("fd00:10:96::/112,10.96.0.0/16").as_deref(),
            Ok("fd00:10:96::1")
        );
        assert!(ip("10.96.0.1/32").is_err());
        assert!(ip("10.96.0.0").is_err());
        assert!(ip("nonsense/12").is_err());
    }

    #[test]
    fn apiserver_alt_names_follow_get_apiserver_alt_names() {
        let inputs = KubeadmInputs {
            node_name: "cp1".into(),
            advertise_address: sourced("192.168.0.10"),
            advertise_address_flag: None,
            service_subnet: sourced("10.96.0.0/16,fd00:10:96::/112"),
            dns_domain: sourced("corp.example"),
            control_plane_endpoint: sourced("k8s-api.corp.example"),
        };
        let e = expected_alt_names(Sans::ApiServer, &inputs);
        assert_eq!(
            names(&e),
            [
                "cp1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.corp.example",
                "10.96.0.1",
                "192.168.0.10",
                "k8s-api.corp.example"
            ]
        );
        assert!(e.notes.is_empty() && e.refused.is_empty());
        // An endpoint that is the advertise address adds nothing.
        let same = KubeadmInputs {
            control_plane_endpoint: sourced("192.168.0.10"),
            service_subnet: None,
            dns_domain: None,
            ..inputs
        };
        let e = expected_alt_names(Sans::ApiServer, &same);
        assert_eq!(names(&e).len(), 7);
        assert!(names(&e).contains(&"kubernetes.default.svc.cluster.local".to_string()));
        assert_eq!(e.notes.len(), 2, "{:?}", e.notes);
    }

    #[test]
    fn an_overridden_advertise_address_is_noted_and_local_api_endpoint_required() {
        let inputs = KubeadmInputs {
            node_name: "cp1".into(),
            advertise_address: sourced("10.0.0.10"),
            advertise_address_flag: sourced("10.0.0.20"),
            ..KubeadmInputs::default()
        };
        for which in [Sans::ApiServer, Sans::EtcdServer, Sans::EtcdPeer] {
            let e = expected_alt_names(which, &inputs);
            assert!(names(&e).contains(&"10.0.0.10".to_string()));
            assert!(!names(&e).contains(&"10.0.0.20".to_string()));
            assert!(
                e.notes[0].starts_with("test is 10.0.0.20, not kubeadm's localAPIEndpoint"),
                "{:?}",
                e.notes
            );
        }
    }

    #[test]
    fn etcd_alt_names_follow_get_alt_names() {
        let inputs = KubeadmInputs {
            node_name: "cp1".into(),
            advertise_address: sourced("fd00:10::a"),
            ..KubeadmInputs::default()
        };
        for which in [Sans::EtcdServer, Sans::EtcdPeer] {
            let e = expected_alt_names(which, &inputs);
            assert_eq!(
                names(&e),
                ["cp1", "localhost", "fd00:10::a", "127.0.0.1", "::1"]
            );
        }
        let bad = KubeadmInputs {
            advertise_address: sourced("cp1.example"),
            ..inputs
        };
        assert_eq!(expected_alt_names(Sans::EtcdServer, &bad).refused.len(), 1);
    }

    #[test]
    fn cert_sans_kubeadm_accepts() {
        for ok in [
            "10.0.0.1",
            "fd00::1",
            "a.example",
            "*.example.com",
            "host-1",
        ] {
            assert!(is_valid_cert_san(ok), "{ok}");
        }
        for bad in ["Upper.example", "-a.example", "a_b", "*", "a..b", ""] {
            assert!(!is_valid_cert_san(bad), "{bad}");
        }
    }
}
