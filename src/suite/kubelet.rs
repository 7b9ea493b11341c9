//! The kubelet's configuration: the CIS Kubernetes Benchmark's worker node items and the
//! seed's envelope for large clusters. Every failure carries its remediation.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use super::{Context, Outcome, Recorder, Service, Test, join_items};
use crate::node::kubelet::{Kubelet, SERVICE_FILES, Source};
use crate::runtime::Unavailable;

const AREA: &str = "Kubelet";
const TAGS: &[&str] = &["NodeBestPractice"];

pub fn tests() -> Vec<Test> {
    let t = |behaviour, run| Test::plain(AREA, TAGS, behaviour, run);
    vec![
        t(
            "service file is mode 600 or stricter and owned by root (CIS 4.1.1, 4.1.2)",
            service_file,
        ),
        t(
            "kubeconfig is mode 600 or stricter and owned by root (CIS 4.1.5, 4.1.6)",
            kubeconfig_file,
        ),
        t(
            "client CA file is mode 644 or stricter and owned by root (CIS 4.1.7, 4.1.8)",
            client_ca_file,
        ),
        t(
            "config file is mode 600 or stricter and owned by root (CIS 4.1.9, 4.1.10)",
            config_file,
        ),
        t(
            "anonymous authentication is disabled (CIS 4.2.1)",
            anonymous_auth,
        ),
        t(
            "authorization mode is not AlwaysAllow (CIS 4.2.2)",
            authorization_mode,
        ),
        t("client CA file is set (CIS 4.2.3)", client_ca_set),
        t("read-only port is disabled (CIS 4.2.4)", read_only_port),
        t(
            "streaming connection idle timeout is not 0 (CIS 4.2.5)",
            streaming_timeout,
        ),
        t("iptables util chains are made (CIS 4.2.6)", iptables_chains),
        t("hostname is not overridden (CIS 4.2.7)", hostname_override),
        t("event QPS keeps events recorded (CIS 4.2.8)", event_qps),
        t("TLS certificate and key are set (CIS 4.2.9)", tls_files),
        t(
            "client certificate rotation is on (CIS 4.2.10)",
            rotate_certificates,
        ),
        t(
            "server certificate rotation is on (CIS 4.2.11)",
            rotate_server_certificates,
        ),
        t("TLS cipher suites are strong (CIS 4.2.12)", cipher_suites),
        t("pod PIDs limit is set (CIS 4.2.13)", pod_pids_limit),
        t("seccomp default is on (CIS 4.2.14)", seccomp_default),
        t("maxPods is within the tested envelope of 110", max_pods),
        Test {
            area: AREA,
            behaviour: "cgroup driver matches the container runtime's",
            tags: TAGS,
            needs: &[Service::Docker],
            run: cgroup_driver,
            read_ahead: None,
            budget: None,
        },
        t("static pod path is set and present", static_pod_path),
        t("healthz endpoint answers", healthz),
    ]
}

/// The kubelet, or the outcome for a node without one.
fn kubelet(ctx: &Context) -> Result<(&Kubelet, Recorder), Outcome> {
    let k = ctx.node.kubelet().map_err(Outcome::skipped)?;
    let mut r = Recorder::new();
    r.note(match k.source {
        Source::Process(pid) => format!("kubelet process {pid}"),
        Source::Files => "no kubelet process; kubeadm's files".to_string(),
    });
    for why in &k.ignored {
        r.note(why.clone());
    }
    if let Some(p) = &k.config_path {
        r.note(format!("config {}", p.display()));
    }
    if !k.drop_ins.is_empty() {
        let names: Vec<String> = k.drop_ins.iter().map(|p| p.display().to_string()).collect();
        r.note(format!(
            "drop-ins, merged in this order: {}",
            join_items(&names)
        ));
    }
    Ok((k, r))
}

/// Like `kubelet`, for checks that read the config: a config that does not parse fails them.
fn config(ctx: &Context) -> Result<(&Kubelet, Recorder), Outcome> {
    let (k, r) = kubelet(ctx)?;
    if let Some(e) = &k.config_error {
        return Err(r.fail_now(format!("the kubelet's configuration cannot be read: {e}")));
    }
    Ok((k, r))
}

macro_rules! get_or_return {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(o) => return o,
        }
    };
}

/// A field's value with the kubelet's default when unset: a config file's defaults differ from
/// the flags' for some fields.
fn defaulted<'a>(k: &Kubelet, file_default: &'a str, flag_default: &'a str) -> &'a str {
    if k.config_path.is_some() {
        file_default
    } else {
        flag_default
    }
}

fn file_check(
    ctx: &Context,
    what: &str,
    path: Option<&Path>,
    max_mode: u32,
    fix_mode: &str,
) -> Outcome {
    let (_, mut r) = get_or_return!(kubelet(ctx));
    let Some(path) = path else {
        return Outcome::skipped(format!("the kubelet names no {what}"));
    };
    let info = match ctx.node.root.metadata(path) {
        Ok(i) => i,
        Err(e) if e.is_not_found() => {
            return r.fail_now(format!("the {what} {} does not exist", path.display()));
        }
        Err(e) => return r.fail_now(format!("cannot stat the {what}: {e}")),
    };
    let p = path.display();
    if info.mode & !max_mode == 0 {
        r.ok("mode", format!("{:o} ({p})", info.mode));
    } else {
        r.fail(
            "mode",
            format!("{:o} ({p}), allowed {max_mode:o} or stricter", info.mode),
        );
    }
    if info.uid == 0 && info.gid == 0 {
        r.ok("owner", format!("root:root ({p})"));
    } else {
        r.fail(
            "owner",
            format!("{}:{} ({p}), expected root:root", info.uid, info.gid),
        );
    }
    r.finish(|f| {
        let found = super::describe(f);
        format!(
            "the {what}: {}; fix: chmod {fix_mode} {p}; chown root:root {p}",
            found
        )
    })
}

fn service_file(ctx: &Context) -> Outcome {
    let found = SERVICE_FILES
        .iter()
        .map(Path::new)
        .find(|p| ctx.node.root.exists(p));
    if found.is_none() && ctx.node.kubelet().is_ok() {
        return Outcome::skipped(format!(
            "no kubelet service file at {}",
            SERVICE_FILES.join(", ")
        ));
    }
    file_check(ctx, "service file", found, 0o600, "600")
}

fn kubeconfig_file(ctx: &Context) -> Outcome {
    let path = ctx
        .node
        .kubelet()
        .ok()
        .and_then(|k| k.kubeconfig_path.clone());
    file_check(ctx, "kubeconfig", path.as_deref(), 0o600, "600")
}

fn client_ca_file(ctx: &Context) -> Outcome {
    let path = ctx
        .node
        .kubelet()
        .ok()
        .and_then(|k| k.str("authentication.x509.clientCAFile").map(Path::new));
    file_check(ctx, "client CA file", path, 0o644, "644")
}

fn config_file(ctx: &Context) -> Outcome {
    let path = ctx.node.kubelet().ok().and_then(|k| k.config_path.clone());
    file_check(ctx, "config file", path.as_deref(), 0o600, "600")
}

/// One setting: `judge` gives what the kubelet runs with, as shown, and whether that passes,
/// from the same effective value, so the verdict never contradicts the detail; the failure
/// message says what was found and how to fix it.
fn setting(
    ctx: &Context,
    field: &str,
    judge: impl Fn(&Kubelet) -> (String, bool),
    fix: &str,
) -> Outcome {
    let (k, mut r) = get_or_return!(config(ctx));
    let (value, ok) = judge(k);
    let origin = k.origin(field);
    if ok {
        r.ok(field, format!("{value} ({origin})"));
    } else {
        r.fail(field, format!("{value} ({origin})"));
    }
    r.finish(|_| format!("{field} is {value} ({origin}); {fix}"))
}

/// A boolean setting that passes when it is `want`; unset means `default`; a value that is
/// not a boolean (a flag the kubelet would refuse) fails.
fn bool_setting(
    ctx: &Context,
    field: &str,
    default: impl Fn(&Kubelet) -> bool,
    want: bool,
    fix: &str,
) -> Outcome {
    setting(
        ctx,
        field,
        |k| match k.get(field) {
            None => {
                let d = default(k);
                (format!("unset, so {d}"), d == want)
            }
            Some(serde_json::Value::Bool(b)) => (b.to_string(), *b == want),
            Some(other) => (format!("{other}, not a boolean"), false),
        },
        fix,
    )
}

/// An integer setting: unset means `default`; a value that is not an integer fails.
fn int_setting(
    ctx: &Context,
    field: &str,
    default: impl Fn(&Kubelet) -> Option<i64>,
    unset_shown: &str,
    ok: impl Fn(Option<i64>) -> bool,
    fix: &str,
) -> Outcome {
    setting(
        ctx,
        field,
        |k| match k.get(field) {
            None => {
                let d = default(k);
                let shown = d.map_or_else(
                    || format!("unset, so {unset_shown}"),
                    |d| format!("unset, so {d}"),
                );
                (shown, ok(d))
            }
            Some(v) => match v.as_i64() {
                Some(n) => (n.to_string(), ok(Some(n))),
                None => (format!("{v}, not an integer"), false),
            },
        },
        fix,
    )
}

fn anonymous_auth(ctx: &Context) -> Outcome {
    // The config file defaults to false, the flag to true.
    bool_setting(
        ctx,
        "authentication.anonymous.enabled",
        |k| k.config_path.is_none(),
        false,
        "set authentication.anonymous.enabled: false in the kubelet config (or --anonymous-auth=false) and restart the kubelet",
    )
}

fn authorization_mode(ctx: &Context) -> Outcome {
    const F: &str = "authorization.mode";
    setting(
        ctx,
        F,
        |k| {
            let mode = k.str(F).unwrap_or(defaulted(k, "Webhook", "AlwaysAllow"));
            let shown = k
                .str(F)
                .map_or_else(|| format!("unset, so {mode}"), str::to_string);
            (shown, mode != "AlwaysAllow")
        },
        "set authorization.mode: Webhook in the kubelet config (or --authorization-mode=Webhook)",
    )
}

fn client_ca_set(ctx: &Context) -> Outcome {
    const F: &str = "authentication.x509.clientCAFile";
    setting(
        ctx,
        F,
        |k| match k.str(F) {
            Some(s) if !s.is_empty() => (s.to_string(), true),
            Some(_) => ("empty".to_string(), false),
            None => ("unset".to_string(), false),
        },
        "set authentication.x509.clientCAFile to the cluster CA (kubeadm: /etc/kubernetes/pki/ca.crt)",
    )
}

fn read_only_port(ctx: &Context) -> Outcome {
    int_setting(
        ctx,
        "readOnlyPort",
        |k| Some(if k.config_path.is_some() { 0 } else { 10255 }),
        "",
        |p| p == Some(0),
        "set readOnlyPort: 0 in the kubelet config (or --read-only-port=0): the port serves pod data unauthenticated",
    )
}

fn streaming_timeout(ctx: &Context) -> Outcome {
    const F: &str = "streamingConnectionIdleTimeout";
    setting(
        ctx,
        F,
        |k| match k.duration(F) {
            None => ("unset, so 4h0m0s".to_string(), true),
            Some(Ok(d)) => {
                let raw = k.str(F).unwrap_or_default();
                let shown = if raw == d.to_string() {
                    raw.to_string()
                } else {
                    format!("{raw:?} ({d})")
                };
                (shown, !d.is_zero())
            }
            Some(Err(e)) => (format!("invalid: {e}; the kubelet refuses to start"), false),
        },
        "set streamingConnectionIdleTimeout to a non-zero duration such as 4h0m0s, so idle exec and port-forward sessions end",
    )
}

fn iptables_chains(ctx: &Context) -> Outcome {
    bool_setting(
        ctx,
        "makeIPTablesUtilChains",
        |_| true,
        true,
        "remove makeIPTablesUtilChains: false from the kubelet config (or set it true)",
    )
}

fn hostname_override(ctx: &Context) -> Outcome {
    let (k, mut r) = get_or_return!(kubelet(ctx));
    match k.flags.get("hostname-override") {
        Some(h) => r.fail("--hostname-override", h.clone()),
        None => r.ok("--hostname-override", "not set"),
    }
    r.finish(|_| {
        "the kubelet runs with --hostname-override, which breaks TLS between the API server and the \
         kubelet; remove the flag from the kubelet's service file or kubeadm-flags.env"
            .to_string()
    })
}

fn event_qps(ctx: &Context) -> Outcome {
    const F: &str = "eventRecordQPS";
    let (k, mut r) = get_or_return!(config(ctx));
    let qps = k.int(F).unwrap_or(50);
    let origin = k.origin(F);
    match qps {
        q if q < 0 => r.fail(F, format!("{q} ({origin})")),
        0 => r.warn(
            F,
            format!("0 ({origin}): unlimited; a flood of events can overwhelm the API server"),
        ),
        q => r.ok(F, format!("{q} ({origin})")),
    }
    r.finish(|_| format!("{F} is {qps} ({origin}); set it to 0 or more (default 50)"))
}

fn tls_files(ctx: &Context) -> Outcome {
    let (k, mut r) = get_or_return!(config(ctx));
    if k.bool("serverTLSBootstrap") == Some(true) {
        r.ok(
            "serverTLSBootstrap",
            "true: the serving certificate is requested from the cluster",
        );
        return r.finish(|_| String::new());
    }
    for f in ["tlsCertFile", "tlsPrivateKeyFile"] {
        match k.str(f) {
            Some(v) if !v.is_empty() => r.ok(f, format!("{v} ({})", k.origin(f))),
            _ => r.fail(f, "unset"),
        }
    }
    r.finish(|f| {
        let names: Vec<&str> = f.iter().map(|c| c.item.as_str()).collect();
        format!(
            "{} unset: the kubelet serves with a self-signed certificate; set tlsCertFile and \
             tlsPrivateKeyFile, or serverTLSBootstrap: true",
            join_items(&names)
        )
    })
}

fn rotate_certificates(ctx: &Context) -> Outcome {
    // The kubelet's default is false (the flag's and KubeletConfiguration's), so unset does not
    // rotate.
    bool_setting(
        ctx,
        "rotateCertificates",
        |_| false,
        true,
        "set rotateCertificates: true (kubeadm sets it) so the client certificate renews itself",
    )
}

fn rotate_server_certificates(ctx: &Context) -> Outcome {
    bool_setting(
        ctx,
        "featureGates.RotateKubeletServerCertificate",
        |_| true,
        true,
        "remove RotateKubeletServerCertificate=false from the kubelet's feature gates",
    )
}

const STRONG_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

fn cipher_suites(ctx: &Context) -> Outcome {
    const F: &str = "tlsCipherSuites";
    let (k, mut r) = get_or_return!(config(ctx));
    let suites: Vec<&str> = k
        .get(F)
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
        .unwrap_or_default();
    if suites.is_empty() {
        r.warn(F, "unset: Go's defaults, which include CBC suites");
    }
    let weak: Vec<&str> = suites
        .iter()
        .copied()
        .filter(|s| !STRONG_SUITES.contains(s))
        .collect();
    for s in &suites {
        if weak.contains(s) {
            r.fail(F, format!("{s} is not a strong suite"));
        } else {
            r.ok(F, *s);
        }
    }
    r.finish(|_| {
        format!(
            "weak TLS cipher suites ({}): {}; list only {}",
            k.origin(F),
            join_items(&weak),
            join_items(&STRONG_SUITES[..4])
        )
    })
}

fn pod_pids_limit(ctx: &Context) -> Outcome {
    int_setting(
        ctx,
        "podPidsLimit",
        |_| None,
        "unlimited",
        |v| v.is_some_and(|v| v > 0),
        "set podPidsLimit (for example 4096) so one pod cannot exhaust the node's PIDs",
    )
}

fn seccomp_default(ctx: &Context) -> Outcome {
    bool_setting(
        ctx,
        "seccompDefault",
        |_| false,
        true,
        "set seccompDefault: true so containers without a profile get RuntimeDefault",
    )
}

fn max_pods(ctx: &Context) -> Outcome {
    int_setting(
        ctx,
        "maxPods",
        |_| Some(110),
        "",
        |v| v.unwrap_or(110) <= 110,
        "Kubernetes is designed and tested for at most 110 pods per node; lower maxPods to 110 or add nodes",
    )
}

/// The runtime's cgroup driver: Docker's, or containerd's from its config.
fn runtime_cgroup_driver(ctx: &Context) -> Result<(String, String), String> {
    match ctx.services.docker(&ctx.node.root) {
        Ok(d) => {
            let facts = ctx
                .services
                .block_on(Duration::from_secs(15), d.facts())
                .and_then(|f| f)?;
            return Ok((
                facts.cgroup_driver,
                format!("Docker Engine at {}", d.socket_path().display()),
            ));
        }
        Err(Unavailable::Broken(e)) => return Err(e),
        Err(Unavailable::Absent(_)) => {}
    }
    const CONTAINERD: &str = "/etc/containerd/config.toml";
    let text = ctx
        .node
        .root
        .read_to_string(CONTAINERD, crate::node::rootfs::FileKind::Config)
        .map_err(|e| format!("no Docker Engine, and {e}"))?;
    let systemd = text.lines().any(|l| {
        let l: String = l.chars().filter(|c| !c.is_whitespace()).collect();
        l == "SystemdCgroup=true"
    });
    Ok((
        if systemd { "systemd" } else { "cgroupfs" }.to_string(),
        format!("SystemdCgroup in {CONTAINERD}"),
    ))
}

fn cgroup_driver(ctx: &Context) -> Outcome {
    const F: &str = "cgroupDriver";
    let (k, mut r) = get_or_return!(config(ctx));
    let ours = k.str(F).unwrap_or("cgroupfs").to_string();
    let origin = k.origin(F);
    let (theirs, from) = match runtime_cgroup_driver(ctx) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::skipped(format!(
                "the container runtime's cgroup driver is unknown: {e}"
            ));
        }
    };
    r.info("runtime", format!("{theirs} ({from})"));
    if ours == theirs {
        r.ok(F, format!("{ours} ({origin})"));
    } else {
        r.fail(F, format!("{ours} ({origin}), the runtime uses {theirs}"));
    }
    r.finish(|_| {
        format!(
            "the kubelet's cgroupDriver is {ours} ({origin}) but the runtime's is {theirs} ({from}); \
             make them equal (systemd on systemd hosts), or pods fail to start under resource pressure"
        )
    })
}

fn static_pod_path(ctx: &Context) -> Outcome {
    const F: &str = "staticPodPath";
    let (k, mut r) = get_or_return!(config(ctx));
    let Some(p) = k.str(F) else {
        return r.fail_now(format!(
            "{F} is unset ({}): the kubelet runs no static pods; kubeadm sets /etc/kubernetes/manifests",
            k.origin(F)
        ));
    };
    match ctx.node.root.metadata(p) {
        Ok(i) if i.is_dir => r.ok(F, format!("{p} ({})", k.origin(F))),
        Ok(_) => r.fail(F, format!("{p} is not a directory")),
        Err(e) => r.fail(F, e.to_string()),
    }
    r.finish(|f| {
        format!(
            "{F}: {}; create the directory or point staticPodPath at it",
            f[0].detail
        )
    })
}

fn healthz(ctx: &Context) -> Outcome {
    let (k, mut r) = get_or_return!(kubelet(ctx));
    if k.source == Source::Files {
        return Outcome::skipped("no running kubelet process to ask");
    }
    let port = k.int("healthzPort").unwrap_or(10248);
    if port == 0 {
        r.warn("healthzPort", "0: the healthz endpoint is disabled");
        return r.finish(|_| String::new());
    }
    let url = format!("http://127.0.0.1:{port}/healthz");
    match get(port) {
        Ok(body) if body.trim() == "ok" => r.ok("healthz", format!("{url}: ok")),
        Ok(body) => r.fail("healthz", format!("{url}: {}", body.trim())),
        Err(e) => r.fail("healthz", format!("{url}: {e}")),
    }
    r.finish(|f| {
        format!(
            "the kubelet is not healthy: {}; see journalctl -u kubelet",
            f[0].detail
        )
    })
}

/// A plain HTTP/1.0 GET of /healthz on 127.0.0.1; the body.
fn get(port: i64) -> Result<String, String> {
    let port = u16::try_from(port).map_err(|_| format!("port {port} is out of range"))?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.take(64 * 1024)
        .read_to_string(&mut resp)
        .map_err(|e| e.to_string())?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head.lines().next().unwrap_or("");
    if !status.contains(" 200") {
        return Err(status.to_string());
    }
    Ok(body.to_string())
}
