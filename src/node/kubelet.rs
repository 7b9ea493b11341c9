//! The kubelet: its process, flags, KubeletConfiguration and kubeconfig, merged the way the
//! kubelet merges them (flags win over the config file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::rootfs::{FileKind, RootFs};

/// kubeadm's paths, used when no kubelet process names others.
pub const KUBEADM_CONFIG: &str = "/var/lib/kubelet/config.yaml";
pub const KUBEADM_KUBECONFIG: &str = "/etc/kubernetes/kubelet.conf";
pub const KUBEADM_FLAGS_ENV: &str = "/var/lib/kubelet/kubeadm-flags.env";
pub const SERVICE_FILES: &[&str] = &[
    "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
    "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
    "/etc/systemd/system/kubelet.service",
    "/lib/systemd/system/kubelet.service",
    "/usr/lib/systemd/system/kubelet.service",
];

/// Where the facts came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A running process, by pid.
    Process(u32),
    /// No process; kubeadm's files (or the files named on the harness's command line).
    Files,
}

/// The kubelet as far as the node shows it.
#[derive(Debug, Clone)]
pub struct Kubelet {
    pub source: Source,
    /// Command-line flags without the leading dashes; a flag given twice keeps the last value.
    pub flags: BTreeMap<String, String>,
    pub config_path: Option<PathBuf>,
    /// The KubeletConfiguration with the flags that override it applied.
    pub config: Value,
    /// Why the config file could not be used, when it could not.
    pub config_error: Option<String>,
    pub kubeconfig_path: Option<PathBuf>,
}

/// Explicit files from the harness's command line.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    pub config: Option<PathBuf>,
    pub kubeconfig: Option<PathBuf>,
}

/// Finds the kubelet: a process named kubelet under the root's /proc, else kubeadm's files.
/// `Err` says where it looked.
pub fn discover(root: &RootFs, hints: &Hints) -> Result<Kubelet, String> {
    let (source, flags) = match find_process(root) {
        Some((pid, args)) => (Source::Process(pid), parse_flags(&args)),
        None => {
            let env = root
                .read_to_string(KUBEADM_FLAGS_ENV, FileKind::Config)
                .ok();
            (
                Source::Files,
                env.map(|e| parse_flags_env(&e)).unwrap_or_default(),
            )
        }
    };
    let config_path = hints
        .config
        .clone()
        .or_else(|| flags.get("config").map(PathBuf::from))
        .or_else(|| {
            root.exists(KUBEADM_CONFIG)
                .then(|| PathBuf::from(KUBEADM_CONFIG))
        });
    let kubeconfig_path = hints
        .kubeconfig
        .clone()
        .or_else(|| flags.get("kubeconfig").map(PathBuf::from))
        .or_else(|| {
            root.exists(KUBEADM_KUBECONFIG)
                .then(|| PathBuf::from(KUBEADM_KUBECONFIG))
        });
    if source == Source::Files
        && config_path.is_none()
        && kubeconfig_path.is_none()
        && flags.is_empty()
    {
        return Err(format!(
            "no kubelet on this node: no process named kubelet under /proc, and none of {KUBEADM_CONFIG}, \
             {KUBEADM_KUBECONFIG}, {KUBEADM_FLAGS_ENV} (name the files with --kubelet-config and --kubeconfig)"
        ));
    }
    let (mut config, config_error) = match &config_path {
        Some(p) => match root
            .read_to_string(p, FileKind::Config)
            .map_err(|e| e.to_string())
            .and_then(|t| parse_config(&t, p))
        {
            Ok(v) => (v, None),
            Err(e) => (Value::Object(Map::new()), Some(e)),
        },
        None => (Value::Object(Map::new()), None),
    };
    apply_flags(&mut config, &flags);
    Ok(Kubelet {
        source,
        flags,
        config_path,
        config,
        config_error,
        kubeconfig_path,
    })
}

fn find_process(root: &RootFs) -> Option<(u32, Vec<String>)> {
    let mut pids: Vec<u32> = root
        .read_dir("/proc")
        .ok()?
        .iter()
        .filter_map(|n| n.to_str().and_then(|s| s.parse().ok()))
        .collect();
    pids.sort_unstable();
    pids.into_iter().find_map(|pid| {
        let raw = root
            .read(format!("/proc/{pid}/cmdline"), FileKind::Kernel)
            .ok()?;
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let exe = args.first().map(|a| a.rsplit('/').next().unwrap_or(a))?;
        match exe {
            "kubelet" => Some((pid, args[1..].to_vec())),
            "hyperkube" if args.get(1).is_some_and(|a| a == "kubelet") => {
                Some((pid, args[2..].to_vec()))
            }
            _ => None,
        }
    })
}

/// `--a=b`, `--a b` and bare `--a` (true).
pub fn parse_flags(args: &[String]) -> BTreeMap<String, String> {
    let mut flags = BTreeMap::new();
    let mut i = 0;
    while i < args.len() {
        let Some(flag) = args[i]
            .strip_prefix("--")
            .or_else(|| args[i].strip_prefix('-'))
        else {
            i += 1;
            continue;
        };
        if let Some((k, v)) = flag.split_once('=') {
            flags.insert(k.to_string(), v.to_string());
        } else if let Some(next) = args.get(i + 1).filter(|n| !n.starts_with('-')) {
            flags.insert(flag.to_string(), next.clone());
            i += 1;
        } else {
            flags.insert(flag.to_string(), "true".to_string());
        }
        i += 1;
    }
    flags
}

/// kubeadm-flags.env: `KUBELET_KUBEADM_ARGS="--a=b --c=d"`.
fn parse_flags_env(text: &str) -> BTreeMap<String, String> {
    let args: Vec<String> = text
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(_, v)| v.trim().trim_matches('"').to_string())
        })
        .flat_map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    parse_flags(&args)
}

fn parse_config(text: &str, path: &Path) -> Result<Value, String> {
    let v: Value = serde_saphyr::from_str(text).map_err(|e| {
        let msg = e.without_snippet().to_string();
        format!(
            "{}: {}",
            path.display(),
            msg.split_whitespace().collect::<Vec<_>>().join(" ")
        )
    })?;
    match v.get("kind").and_then(Value::as_str) {
        Some("KubeletConfiguration") => Ok(v),
        other => Err(format!(
            "{}: kind {other:?}, expected KubeletConfiguration",
            path.display()
        )),
    }
}

/// Flags that override KubeletConfiguration fields, by JSON path.
const FLAG_FIELDS: &[(&str, &str)] = &[
    ("anonymous-auth", "authentication.anonymous.enabled"),
    ("authorization-mode", "authorization.mode"),
    ("client-ca-file", "authentication.x509.clientCAFile"),
    ("read-only-port", "readOnlyPort"),
    (
        "streaming-connection-idle-timeout",
        "streamingConnectionIdleTimeout",
    ),
    ("make-iptables-util-chains", "makeIPTablesUtilChains"),
    ("event-qps", "eventRecordQPS"),
    ("tls-cert-file", "tlsCertFile"),
    ("tls-private-key-file", "tlsPrivateKeyFile"),
    ("rotate-certificates", "rotateCertificates"),
    ("pod-max-pids", "podPidsLimit"),
    ("seccomp-default", "seccompDefault"),
    ("max-pods", "maxPods"),
    ("cgroup-driver", "cgroupDriver"),
    ("pod-manifest-path", "staticPodPath"),
    ("healthz-port", "healthzPort"),
    ("healthz-bind-address", "healthzBindAddress"),
    ("protect-kernel-defaults", "protectKernelDefaults"),
];

fn flag_value(v: &str) -> Value {
    if let Ok(b) = v.parse::<bool>() {
        return Value::Bool(b);
    }
    if let Ok(n) = v.parse::<i64>() {
        return Value::from(n);
    }
    Value::String(v.to_string())
}

fn apply_flags(config: &mut Value, flags: &BTreeMap<String, String>) {
    for (flag, path) in FLAG_FIELDS {
        if let Some(v) = flags.get(*flag) {
            set(config, path, flag_value(v));
        }
    }
    if let Some(v) = flags.get("tls-cipher-suites") {
        set(
            config,
            "tlsCipherSuites",
            Value::from(v.split(',').map(str::trim).collect::<Vec<_>>()),
        );
    }
    if let Some(v) = flags.get("feature-gates") {
        for gate in v.split(',') {
            if let Some((k, b)) = gate.split_once('=') {
                set(
                    config,
                    &format!("featureGates.{}", k.trim()),
                    flag_value(b.trim()),
                );
            }
        }
    }
}

fn set(config: &mut Value, path: &str, value: Value) {
    let mut cur = config;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Some(obj) = cur.as_object_mut() else {
            return;
        };
        if i == parts.len() - 1 {
            obj.insert((*part).to_string(), value);
            return;
        }
        cur = obj
            .entry((*part).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

impl Kubelet {
    /// A config field by dotted path.
    pub fn get(&self, path: &str) -> Option<&Value> {
        path.split('.').try_fold(&self.config, |v, p| v.get(p))
    }

    pub fn bool(&self, path: &str) -> Option<bool> {
        self.get(path).and_then(Value::as_bool)
    }

    pub fn str(&self, path: &str) -> Option<&str> {
        self.get(path).and_then(Value::as_str)
    }

    pub fn int(&self, path: &str) -> Option<i64> {
        self.get(path).and_then(Value::as_i64)
    }

    /// Where a field's value came from, for messages.
    pub fn origin(&self, path: &str) -> String {
        let flag = FLAG_FIELDS
            .iter()
            .find(|(_, p)| *p == path)
            .map(|(f, _)| *f);
        match flag {
            Some(f) if self.flags.contains_key(f) => format!("flag --{f}"),
            _ => match &self.config_path {
                Some(p) => format!("{path} in {}", p.display()),
                None => format!("{path} (no config file)"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn flags_in_every_form() {
        let f = parse_flags(&args(
            "--config=/c.yaml --kubeconfig /k.conf --v=2 --anonymous-auth --x",
        ));
        assert_eq!(f["config"], "/c.yaml");
        assert_eq!(f["kubeconfig"], "/k.conf");
        assert_eq!(f["anonymous-auth"], "true");
        assert_eq!(f["x"], "true");
    }

    #[test]
    fn kubeadm_flags_env() {
        let f = parse_flags_env(
            "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10\"\n",
        );
        assert_eq!(
            f["container-runtime-endpoint"],
            "unix:///run/containerd/containerd.sock"
        );
    }

    #[test]
    fn flags_win_over_the_config_file() {
        let mut c = parse_config(
            "kind: KubeletConfiguration\nauthentication:\n  anonymous:\n    enabled: false\nmaxPods: 110\n",
            Path::new("/c.yaml"),
        )
        .unwrap();
        let flags = parse_flags(&args(
            "--anonymous-auth=true --feature-gates=RotateKubeletServerCertificate=false,Foo=true --tls-cipher-suites=A,B",
        ));
        apply_flags(&mut c, &flags);
        let k = Kubelet {
            source: Source::Files,
            flags,
            config_path: Some("/c.yaml".into()),
            config: c,
            config_error: None,
            kubeconfig_path: None,
        };
        assert_eq!(k.bool("authentication.anonymous.enabled"), Some(true));
        assert_eq!(
            k.origin("authentication.anonymous.enabled"),
            "flag --anonymous-auth"
        );
        assert_eq!(k.int("maxPods"), Some(110));
        assert_eq!(k.origin("maxPods"), "maxPods in /c.yaml");
        assert_eq!(
            k.bool("featureGates.RotateKubeletServerCertificate"),
            Some(false)
        );
        assert_eq!(
            k.get("tlsCipherSuites"),
            Some(&serde_json::json!(["A", "B"]))
        );
    }

    #[test]
    fn a_config_of_another_kind_is_refused() {
        assert!(
            parse_config("kind: Pod\n", Path::new("/x"))
                .unwrap_err()
                .contains("KubeletConfiguration")
        );
        assert!(
            parse_config("kind: [\n", Path::new("/x"))
                .unwrap_err()
                .contains("/x")
        );
    }
}
