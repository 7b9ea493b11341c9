//! The kubelet: its process, flags, KubeletConfiguration and kubeconfig, merged the way the
//! kubelet merges them (flags win over the config file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::duration::{self, GoDuration};
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
    /// The `--config-dir` drop-ins merged over the config file, in the order merged.
    pub drop_ins: Vec<PathBuf>,
    /// The drop-in that last set each field (dotted path), for messages.
    pub drop_in_fields: BTreeMap<String, PathBuf>,
    /// The KubeletConfiguration with the drop-ins and the flags that override it applied.
    pub config: Value,
    /// Why the config file could not be used, when it could not.
    pub config_error: Option<String>,
    pub kubeconfig_path: Option<PathBuf>,
    /// Processes named kubelet that were not believed to be the node's, and why (one run by
    /// another user than root, or from an executable another user could have written).
    pub ignored: Vec<String>,
}

/// Explicit files from the harness's command line.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    pub config: Option<PathBuf>,
    pub kubeconfig: Option<PathBuf>,
}

/// When a process started, in clock ticks since boot, from its `/proc/<pid>/stat` text: field
/// 22, counted after the parenthesized command name, which may itself hold spaces and `)`.
pub fn start_ticks(stat: &str) -> Option<u64> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// Finds the kubelet: a process named kubelet under the root's /proc, else kubeadm's files.
/// `Err` says where it looked.
pub fn discover(root: &RootFs, hints: &Hints) -> Result<Kubelet, String> {
    let (found, not_believed) = find_process(root);
    let (source, (flags, ignored)) = match found {
        Some((pid, cmdline, skip)) => (Source::Process(pid), parse_cmdline(&cmdline, skip)),
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
    // Relative --config, --config-dir and --kubeconfig are the kubelet's own, resolved from
    // its working directory (systemd starts it in /).
    let cwd = match source {
        Source::Process(pid) => root
            .read_link(format!("/proc/{pid}/cwd"))
            .ok()
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| PathBuf::from("/")),
        Source::Files => PathBuf::from("/"),
    };
    let flag_path = |name: &str| {
        flags
            .get(name)
            .filter(|v| !v.is_empty())
            .map(|v| cwd.join(v))
    };
    let config_path = hints
        .config
        .clone()
        .or_else(|| flag_path("config"))
        .or_else(|| {
            root.exists(KUBEADM_CONFIG)
                .then(|| PathBuf::from(KUBEADM_CONFIG))
        });
    let kubeconfig_path = hints
        .kubeconfig
        .clone()
        .or_else(|| flag_path("kubeconfig"))
        .or_else(|| {
            root.exists(KUBEADM_KUBECONFIG)
                .then(|| PathBuf::from(KUBEADM_KUBECONFIG))
        });
    if source == Source::Files
        && config_path.is_none()
        && kubeconfig_path.is_none()
        && flags.is_empty()
    {
        let processes = if not_believed.is_empty() {
            "no process named kubelet under /proc".to_string()
        } else {
            format!("no kubelet process ({})", not_believed.join("; "))
        };
        return Err(format!(
            "no kubelet on this node: {processes}, and none of {KUBEADM_CONFIG}, \
             {KUBEADM_KUBECONFIG}, {KUBEADM_FLAGS_ENV} (name the files with --kubelet-config and --kubeconfig)"
        ));
    }
    let (mut config, mut config_error) = match &config_path {
        Some(p) => match read_config(root, p) {
            Ok(v) => (v, None),
            Err(e) => (Value::Object(Map::new()), Some(e)),
        },
        None => (Value::Object(Map::new()), None),
    };
    if ignored > 0 {
        config_error.get_or_insert(format!(
            "its flags name more than {MAX_FLAGS} different flags (a kubelet defines about 200 and \
             refuses any other); {ignored} past those not read"
        ));
    }
    let mut drop_ins = Vec::new();
    let mut drop_in_fields = BTreeMap::new();
    if let Some(dir) = flag_path("config-dir") {
        let mut files = Vec::new();
        conf_files(root, &dir, &mut files);
        for file in files {
            match read_config(root, &file) {
                Ok(patch) => {
                    let mut fields = Vec::new();
                    leaf_paths(&patch, String::new(), &mut fields);
                    for f in fields {
                        drop_in_fields.insert(f, file.clone());
                    }
                    merge_patch(&mut config, &patch);
                    drop_ins.push(file);
                }
                Err(e) => {
                    config_error.get_or_insert(e);
                }
            }
        }
    }
    apply_flags(&mut config, &flags);
    Ok(Kubelet {
        source,
        flags,
        config_path,
        drop_ins,
        drop_in_fields,
        config,
        config_error,
        kubeconfig_path,
        ignored: not_believed,
    })
}

/// A kubelet process: its pid, its command line (NUL-separated) and how many words name the
/// program.
type Found = (u32, Vec<u8>, usize);

/// The first process named kubelet (or `hyperkube kubelet`) that can be the node's: its pid,
/// its command line as /proc gives it (NUL-separated), and how many words name the program (1,
/// or 2 for `hyperkube kubelet`); and a line for each process so named that was passed over.
///
/// Any user can start a process whose name (argv[0]) is `kubelet`; what the harness reads from
/// the kubelet (its configuration files, its static pod directory, its CRI endpoint) it then
/// reads, writes and connects to as root. So a process is believed only when it runs as root
/// (real and effective uid 0) and its executable, where the harness may look, is root's and
/// writable by no one else.
fn find_process(root: &RootFs) -> (Option<Found>, Vec<String>) {
    let mut pids: Vec<u32> = root
        .read_dir("/proc")
        .ok()
        .unwrap_or_default()
        .iter()
        .filter_map(|n| n.to_str().and_then(|s| s.parse().ok()))
        .collect();
    pids.sort_unstable();
    let mut passed_over = Vec::new();
    for pid in pids {
        let Some((raw, skip)) = kubelet_cmdline(root, pid) else {
            continue;
        };
        match not_the_nodes(root, pid) {
            None => return (Some((pid, raw, skip)), passed_over),
            Some(why) => passed_over.push(format!(
                "process {pid} named kubelet {why}: not taken for the node's kubelet"
            )),
        }
    }
    (None, passed_over)
}

/// A process's command line when it names a kubelet, and how many words name the program.
fn kubelet_cmdline(root: &RootFs, pid: u32) -> Option<(Vec<u8>, usize)> {
    let raw = root
        .read(format!("/proc/{pid}/cmdline"), FileKind::Kernel)
        .ok()?;
    let mut args = raw.split(|b| *b == 0).filter(|a| !a.is_empty());
    let exe = args.next()?;
    let name = exe.rsplit(|b| *b == b'/').next().unwrap_or(exe);
    let skip = match name {
        b"kubelet" => 1,
        b"hyperkube" if args.next() == Some(b"kubelet".as_slice()) => 2,
        _ => return None,
    };
    Some((raw, skip))
}

/// Why process `pid` cannot be the node's kubelet, if it cannot: it runs as another user than
/// root, or its executable is another user's or writable by others. An executable the harness
/// may not see (a harness that is not root) is not held against it.
fn not_the_nodes(root: &RootFs, pid: u32) -> Option<String> {
    let status = root
        .read_to_string(format!("/proc/{pid}/status"), FileKind::Kernel)
        .ok()?;
    let uids: Vec<&str> = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .map(|u| u.split_whitespace().collect())
        .unwrap_or_default();
    match uids.as_slice() {
        [real, effective, ..] if *real == "0" && *effective == "0" => {}
        [real, effective, ..] => {
            return Some(format!(
                "runs as uid {real} (effective {effective}), not root"
            ));
        }
        _ => return Some("has no uid in its /proc status".into()),
    }
    let exe = root.read_link(format!("/proc/{pid}/exe")).ok()?;
    let text = exe.to_string_lossy();
    let exe = PathBuf::from(text.strip_suffix(" (deleted)").unwrap_or(&text));
    let info = root.metadata(&exe).ok()?;
    if info.uid != 0 {
        return Some(format!(
            "runs {} of uid {}, not root's",
            exe.display(),
            info.uid
        ));
    }
    if info.mode & 0o022 != 0 {
        return Some(format!(
            "runs {}, which others may write (mode {:04o})",
            exe.display(),
            info.mode
        ));
    }
    None
}

/// The most different flags read from one command line. A kubelet defines about 200 flags
/// and refuses any other, so a command line naming more is not a kubelet's; bounding them
/// bounds what such a line costs the harness.
pub const MAX_FLAGS: usize = 1_000;

/// `--a=b`, `--a b` and bare `--a` (true).
pub fn parse_flags<S: AsRef<str>>(args: &[S]) -> BTreeMap<String, String> {
    parse_flags_bounded(args.iter().map(AsRef::as_ref)).0
}

/// A NUL-separated command line's flags past its first `skip` words, and how many different
/// flags past [`MAX_FLAGS`] were not read.
fn parse_cmdline(raw: &[u8], skip: usize) -> (BTreeMap<String, String>, usize) {
    let args = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .skip(skip)
        .map(String::from_utf8_lossy);
    parse_flags_bounded(args)
}

/// The flags of `args` (each once: a flag given twice keeps the last value), reading at most
/// [`MAX_FLAGS`] different ones; gives how many others it did not read. Nothing is kept per
/// argument, so a long command line costs no more than its distinct flags.
fn parse_flags_bounded<S: AsRef<str>>(
    args: impl Iterator<Item = S>,
) -> (BTreeMap<String, String>, usize) {
    let mut flags = BTreeMap::new();
    let mut ignored = 0;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let arg = arg.as_ref();
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            continue;
        };
        let (name, value) = if let Some((k, v)) = flag.split_once('=') {
            (k, v.to_string())
        } else if let Some(next) = args.next_if(|n| !n.as_ref().starts_with('-')) {
            (flag, next.as_ref().to_string())
        } else {
            (flag, "true".to_string())
        };
        if let Some(v) = flags.get_mut(name) {
            *v = value;
        } else if flags.len() < MAX_FLAGS {
            flags.insert(name.to_string(), value);
        } else {
            ignored += 1;
        }
    }
    (flags, ignored)
}

/// kubeadm-flags.env: `KUBELET_KUBEADM_ARGS="--a=b --c=d"`.
fn parse_flags_env(text: &str) -> (BTreeMap<String, String>, usize) {
    let args = text
        .lines()
        .filter_map(|l| l.split_once('=').map(|(_, v)| v.trim().trim_matches('"')))
        .flat_map(str::split_whitespace);
    parse_flags_bounded(args)
}

/// KubeletConfiguration fields holding paths, which the kubelet resolves against the directory
/// of the file that set them (upstream's `KubeletConfigurationPathRefs`).
const PATH_FIELDS: &[&str] = &[
    "staticPodPath",
    "authentication.x509.clientCAFile",
    "tlsCertFile",
    "tlsPrivateKeyFile",
    "resolvConf",
    "volumePluginDir",
    "podLogsDir",
];

/// A config file or drop-in, its relative paths resolved against its directory.
fn read_config(root: &RootFs, path: &Path) -> Result<Value, String> {
    let text = root
        .read_to_string(path, FileKind::Config)
        .map_err(|e| e.to_string())?;
    let mut v = parse_config(&text, path)?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    for field in PATH_FIELDS {
        let rel = field
            .split('.')
            .try_fold(&v, |v, p| v.get(p))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && !Path::new(s).is_absolute())
            .map(str::to_string);
        if let Some(rel) = rel {
            set(
                &mut v,
                field,
                Value::String(dir.join(rel).display().to_string()),
            );
        }
    }
    Ok(v)
}

/// The `*.conf` files under a drop-in directory, recursively, in lexical order (the kubelet walks
/// it with `filepath.WalkDir`).
fn conf_files(root: &RootFs, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(names) = root.read_dir(dir) else {
        return;
    };
    for name in names {
        let path = dir.join(&name);
        match root.metadata(&path) {
            Ok(m) if m.is_dir => conf_files(root, &path, out),
            Ok(_) if path.extension().is_some_and(|e| e == "conf") => out.push(path),
            _ => {}
        }
    }
}

/// JSON merge patch (RFC 7386), as the kubelet merges each drop-in over the base config.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// The dotted paths of a patch's leaves (objects are walked; anything else is a leaf).
fn leaf_paths(v: &Value, prefix: String, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_paths(v, p, out);
            }
        }
        _ => out.push(prefix),
    }
}

fn parse_config(text: &str, path: &Path) -> Result<Value, String> {
    let v = super::yaml::config_value(text).map_err(|e| format!("{}: {e}", path.display()))?;
    match v.get("kind").and_then(Value::as_str) {
        Some("KubeletConfiguration") => Ok(v),
        other => Err(format!(
            "{}: kind {other:?}, expected KubeletConfiguration",
            path.display()
        )),
    }
}

/// How a flag's text becomes the config field's value, as the kubelet's flag set types it.
#[derive(Clone, Copy)]
enum Kind {
    /// pflag's `BoolVar`: Go's `strconv.ParseBool`.
    Bool,
    /// pflag's `Int32Var`/`Int64Var`: `strconv.ParseInt` base 0.
    Int,
    /// pflag's `DurationVar`: kept as written, read with [`super::duration::parse`], as the
    /// file's `metav1.Duration` strings are.
    Duration,
    Str,
}

/// Flags that override KubeletConfiguration fields, by JSON path.
const FLAG_FIELDS: &[(&str, &str, Kind)] = &[
    (
        "anonymous-auth",
        "authentication.anonymous.enabled",
        Kind::Bool,
    ),
    ("authorization-mode", "authorization.mode", Kind::Str),
    (
        "client-ca-file",
        "authentication.x509.clientCAFile",
        Kind::Str,
    ),
    ("read-only-port", "readOnlyPort", Kind::Int),
    (
        "streaming-connection-idle-timeout",
        "streamingConnectionIdleTimeout",
        Kind::Duration,
    ),
    (
        "make-iptables-util-chains",
        "makeIPTablesUtilChains",
        Kind::Bool,
    ),
    ("event-qps", "eventRecordQPS", Kind::Int),
    ("tls-cert-file", "tlsCertFile", Kind::Str),
    ("tls-private-key-file", "tlsPrivateKeyFile", Kind::Str),
    ("rotate-certificates", "rotateCertificates", Kind::Bool),
    ("pod-max-pids", "podPidsLimit", Kind::Int),
    ("seccomp-default", "seccompDefault", Kind::Bool),
    ("max-pods", "maxPods", Kind::Int),
    ("cgroup-driver", "cgroupDriver", Kind::Str),
    ("pod-manifest-path", "staticPodPath", Kind::Str),
    ("healthz-port", "healthzPort", Kind::Int),
    ("healthz-bind-address", "healthzBindAddress", Kind::Str),
    (
        "protect-kernel-defaults",
        "protectKernelDefaults",
        Kind::Bool,
    ),
    (
        "container-runtime-endpoint",
        "containerRuntimeEndpoint",
        Kind::Str,
    ),
];

/// Go's `strconv.ParseBool`.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(v, 0, 64)`: a sign, then decimal, `0x`, `0o`, `0b` or a leading-0
/// octal, with `_` between digits.
fn go_int(v: &str) -> Option<i64> {
    let (neg, body) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower)
    };
    // One sign at most: from_str_radix would take a second one (`--5`), Go does not.
    if digits.is_empty()
        || !digits
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let n = i128::from_str_radix(&digits.replace('_', ""), radix).ok()?;
    i64::try_from(if neg { -n } else { n }).ok()
}

/// The field's value for a flag's text; text the flag set would refuse stays a string, which
/// the typed readers report as such.
fn flag_value(v: &str, kind: Kind) -> Value {
    match kind {
        Kind::Bool => go_bool(v).map_or_else(|| Value::String(v.to_string()), Value::Bool),
        Kind::Int => go_int(v).map_or_else(|| Value::String(v.to_string()), Value::from),
        Kind::Duration | Kind::Str => Value::String(v.to_string()),
    }
}

fn apply_flags(config: &mut Value, flags: &BTreeMap<String, String>) {
    for (flag, path, kind) in FLAG_FIELDS {
        if let Some(v) = flags.get(*flag) {
            set(config, path, flag_value(v, *kind));
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
                    flag_value(b.trim(), Kind::Bool),
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

    /// A duration field (`metav1.Duration` in the file, a duration flag on the command line)
    /// read as Go's `time.ParseDuration` reads it: `None` when unset, `Err` with Go's message
    /// when the kubelet would refuse it.
    pub fn duration(&self, path: &str) -> Option<Result<GoDuration, String>> {
        self.get(path).map(|v| match v {
            Value::String(s) => duration::parse(s),
            other => Err(format!(
                "{other} is not a duration string such as \"4h0m0s\""
            )),
        })
    }

    /// Where a field's value came from, for messages.
    pub fn origin(&self, path: &str) -> String {
        let flag = FLAG_FIELDS
            .iter()
            .find(|(_, p, _)| *p == path)
            .map(|(f, _, _)| *f);
        match flag {
            Some(f) if self.flags.contains_key(f) => format!("flag --{f}"),
            _ if self.drop_in_fields.contains_key(path) => {
                format!("{path} in {}", self.drop_in_fields[path].display())
            }
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
    fn a_command_line_is_read_flag_by_flag_within_a_bound() {
        // Repeated flags cost one entry; the last value wins, as in the kubelet's flag set.
        let mut raw = b"/usr/bin/kubelet\0".to_vec();
        raw.extend(b"--v=2\0".repeat(100_000));
        raw.extend(b"--v\x005\0--fail-swap-on\0");
        let (f, ignored) = parse_cmdline(&raw, 1);
        assert_eq!(
            (f["v"].as_str(), f["fail-swap-on"].as_str(), ignored),
            ("5", "true", 0)
        );
        let (f, _) = parse_cmdline(b"hyperkube\0kubelet\0--config=/c.yaml\0", 2);
        assert_eq!(f.keys().collect::<Vec<_>>(), ["config"]);
        // Past MAX_FLAGS different flags, the rest are counted, not kept.
        let many: Vec<String> = (0..MAX_FLAGS + 5).map(|i| format!("--f{i}=x")).collect();
        let (f, ignored) = parse_flags_env(&format!("KUBELET_KUBEADM_ARGS=\"{}\"", many.join(" ")));
        assert_eq!((f.len(), ignored), (MAX_FLAGS, 5));
    }

    #[test]
    fn kubeadm_flags_env() {
        let (f, _) = parse_flags_env(
            "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10\"\n",
        );
        assert_eq!(
            f["container-runtime-endpoint"],
            "unix:///run/containerd/containerd.sock"
        );
    }

    /// A kubelet read from `/c.yaml` holding `config`, started with `flags`.
    fn from_files(config: Value, flags: BTreeMap<String, String>) -> Kubelet {
        Kubelet {
            source: Source::Files,
            flags,
            config_path: Some("/c.yaml".into()),
            drop_ins: Vec::new(),
            drop_in_fields: BTreeMap::new(),
            config,
            config_error: None,
            kubeconfig_path: None,
            ignored: Vec::new(),
        }
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
        let k = from_files(c, flags);
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
    fn flag_text_is_typed_as_the_kubelets_flag_set_types_it() {
        let mut c = parse_config(
            "kind: KubeletConfiguration\nstreamingConnectionIdleTimeout: 4h0m0s\n",
            Path::new("/c.yaml"),
        )
        .unwrap();
        let flags = parse_flags(&args(
            "--anonymous-auth=0 --make-iptables-util-chains=F --read-only-port=0x0 --max-pods=1_10 --streaming-connection-idle-timeout=0 --seccomp-default=yes",
        ));
        apply_flags(&mut c, &flags);
        let k = from_files(c, flags);
        assert_eq!(k.bool("authentication.anonymous.enabled"), Some(false));
        assert_eq!(k.bool("makeIPTablesUtilChains"), Some(false));
        assert_eq!(k.int("readOnlyPort"), Some(0));
        assert_eq!(k.int("maxPods"), Some(110));
        assert_eq!(
            k.duration("streamingConnectionIdleTimeout"),
            Some(Ok(GoDuration(0)))
        );
        // Not a Go boolean: kept as text, for the checks to report.
        assert_eq!(k.str("seccompDefault"), Some("yes"));
        assert_eq!(go_int("08"), None);
        assert_eq!(go_int("-010"), Some(-8));
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

    #[test]
    fn a_process_start_time_is_field_22_of_its_stat() {
        let stat = "4242 (kube let) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 12 0 \
                    987654 123456 789 18446744073709551615";
        assert_eq!(start_ticks(stat), Some(987_654));
        assert_eq!(start_ticks("garbage"), None);
    }

    #[test]
    fn an_integer_flag_takes_one_sign_as_go_parse_int_does() {
        assert_eq!(go_int("-5"), Some(-5));
        assert_eq!(go_int("+5"), Some(5));
        assert_eq!(go_int("--5"), None);
        assert_eq!(go_int("-+5"), None);
        assert_eq!(go_int("0x-5"), None);
    }

    #[test]
    fn only_a_root_process_from_a_root_executable_is_taken_for_the_kubelet() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let process = |pid: u32, uid: u32, exe: &str, args: &str| {
            let dir = r.join(format!("proc/{pid}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("cmdline"), args.replace(' ', "\0")).unwrap();
            std::fs::write(
                dir.join("status"),
                format!("Name:\tkubelet\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"),
            )
            .unwrap();
            std::os::unix::fs::symlink(exe, dir.join("exe")).unwrap();
        };
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::fs::create_dir_all(r.join("tmp")).unwrap();
        std::fs::write(r.join("usr/bin/kubelet"), "").unwrap();
        std::fs::write(r.join("tmp/python3"), "").unwrap();
        std::fs::set_permissions(
            r.join("tmp/python3"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        // Lower pids first: another user's decoy, a root process of a writable executable,
        // then the kubelet.
        process(
            10,
            65534,
            "/usr/bin/kubelet",
            "kubelet --config=/decoy.yaml",
        );
        process(11, 0, "/tmp/python3", "kubelet --config=/writable.yaml");
        process(
            12,
            0,
            "/usr/bin/kubelet",
            "/usr/bin/kubelet --config=/real.yaml",
        );
        let root = RootFs::open(r).unwrap();
        let (found, passed_over) = find_process(&root);
        let me = rustix::process::geteuid().as_raw();
        assert!(passed_over[0].contains("process 10 named kubelet runs as uid 65534"));
        assert!(
            passed_over[1]
                .contains("process 11 named kubelet runs /tmp/python3, which others may write"),
            "{passed_over:?}"
        );
        if me == 0 {
            assert_eq!(found.map(|(pid, _, _)| pid), Some(12));
        } else {
            // This user's own executable is not root's.
            assert!(found.is_none(), "{found:?}");
            assert!(passed_over[2].contains(&format!("of uid {me}, not root's")));
        }
    }
}
