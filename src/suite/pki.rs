//! The cluster's certificates as a node holds them: one test per certificate of a kubeadm-style
//! PKI, and one per kubeconfig.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::{Context, Outcome, Recorder, Test, join_items};
use crate::node::pki::{self, Cert, load_cert, load_key};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sans {
    None,
    Etcd,
    Apiserver,
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
        sans: Sans::Etcd,
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
        sans: Sans::Etcd,
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
        sans: Sans::Apiserver,
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

fn sans(r: &mut Recorder, ctx: &Context, cert: &Cert, which: Sans) {
    let node = ctx.node.name().to_string();
    let mut missing: Vec<String> = Vec::new();
    let has_dns = |d: &str| cert.dns_names.iter().any(|n| n.eq_ignore_ascii_case(d));
    match which {
        Sans::None => return,
        Sans::Etcd => {
            for d in ["localhost", node.as_str()] {
                if !has_dns(d) {
                    missing.push(d.to_string());
                }
            }
            if !has_ip(cert, IpAddr::from([127, 0, 0, 1])) {
                missing.push("127.0.0.1".into());
            }
        }
        Sans::Apiserver => {
            for d in [
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                node.as_str(),
            ] {
                if !has_dns(d) {
                    missing.push(d.to_string());
                }
            }
            if !cert
                .dns_names
                .iter()
                .any(|n| n.starts_with("kubernetes.default.svc."))
            {
                missing.push("kubernetes.default.svc.<cluster domain>".into());
            }
            if let Some(ip) = advertise_address(ctx) {
                match ip.parse::<IpAddr>() {
                    Ok(addr) if has_ip(cert, addr) => {}
                    Ok(_) => missing.push(format!("{ip} (--advertise-address)")),
                    Err(_) => missing.push(format!(
                        "{ip} (--advertise-address, which is not an IP address)"
                    )),
                }
            }
        }
    }
    let listed = cert
        .dns_names
        .iter()
        .cloned()
        .chain(cert.ips.iter().map(|i| i.to_string()))
        .collect::<Vec<_>>();
    if missing.is_empty() {
        r.ok("SANs", join_items(&listed));
    } else {
        r.fail(
            "SANs",
            format!(
                "missing {}; has {}",
                join_items(&missing),
                join_items(&listed)
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

fn advertise_address(ctx: &Context) -> Option<String> {
    let (_, manifests) = ctx.node.static_pods();
    manifests
        .ok()?
        .iter()
        .filter_map(|m| m.pods.as_ref().ok())
        .flatten()
        .find_map(|p| {
            let c = p.spec.as_ref()?.containers.first()?;
            c.command
                .iter()
                .flatten()
                .find_map(|a| a.strip_prefix("--advertise-address=").map(str::to_string))
        })
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
