//! System verification: what kubeadm's SystemVerification preflight check asks of a node.

use super::{Context, Outcome, Recorder, Test, join_items};
use crate::node::cgroups::{self, CgroupVersion};
use crate::node::host;
use crate::node::kernel::{self, Tristate};
use crate::spec::Item;

const AREA: &str = "System Verification";
const TAGS: &[&str] = &["NodeConformance"];

pub fn tests() -> Vec<Test> {
    let t = |behaviour, run| Test::plain(AREA, TAGS, behaviour, run);
    vec![
        t("the operating system is the one the spec names", os),
        t("the kernel release is a supported version", kernel_release),
        t(
            "the kernel config enables the required options",
            kernel_config,
        )
        // Reading and inflating /proc/config.gz is most of this test's time.
        .reading_ahead(|ctx| {
            let _ = ctx.node.kernel_config();
        }),
        t(
            "cgroups provide the required controllers",
            cgroup_controllers,
        ),
        t("the required executables are on the host PATH", executables),
        t("IPv4 forwarding is enabled", ip_forward),
        t("swap is off or tolerated", swap),
    ]
}

fn os(ctx: &Context) -> Outcome {
    let mut r = Recorder::new();
    if let Some(d) = host::distribution(&ctx.node.root) {
        r.info("DISTRIBUTION", d);
    }
    let found = match kernel::os_type(&ctx.node.root) {
        Ok(f) => f,
        Err(e) => return r.fail_now(format!("cannot tell the operating system: {e}")),
    };
    let want = ctx.spec.os.as_str();
    if want.is_empty() {
        r.note("the spec names no operating system; nothing to compare");
        r.info("OS", &found);
    } else if found == want {
        r.ok("OS", &found);
    } else {
        r.fail("OS", format!("{found}, expected {want}"));
    }
    r.finish(|_| {
        format!("the node's kernel is {found} (/proc/sys/kernel/ostype), the spec requires {want}")
    })
}

fn kernel_release(ctx: &Context) -> Outcome {
    let mut r = Recorder::new();
    let release = match ctx.node.kernel_release() {
        Ok(v) => v,
        Err(e) => return r.fail_now(format!("cannot tell the kernel release: {e}")),
    };
    let patterns = &ctx.spec.kernel_spec.versions;
    if patterns.is_empty() {
        r.note("the spec lists no kernel versions; any release is accepted");
        r.info("KERNEL_VERSION", release);
        return r.finish(|_| String::new());
    }
    match ctx
        .spec
        .kernel_versions()
        .iter()
        .find(|re| re.is_match(release))
    {
        Some(re) => r.ok(
            "KERNEL_VERSION",
            format!("{release} (matches {})", re.as_str()),
        ),
        // system-validators v1.10.1 on (kubeadm 1.33.2 on) reports an unlisted release as a
        // warning: long-lived distribution kernels such as RHEL's 4.18.0-553.el8 and
        // 5.14.0-585.el9 carry the features under an old number.
        None => r.warn(
            "KERNEL_VERSION",
            format!(
                "{release} matches none of the supported versions ({}){}; a warning, as in \
                 system-validators: make sure the kernel has the features the runtime and network \
                 plugin need, or pass a spec that lists it with --system-spec",
                join_items(patterns),
                if ctx.spec.kernel_spec.versions_note.is_empty() {
                    String::new()
                } else {
                    format!(". {}", ctx.spec.kernel_spec.versions_note)
                }
            ),
        ),
    }
    r.finish(|_| String::new())
}

/// How one spec item fares against the kernel config: the name that was found (or the primary
/// name when none was) and its state.
fn lookup(config: &kernel::KernelConfig, item: &Item) -> (String, Option<Tristate>) {
    for name in item.names() {
        let full = format!("CONFIG_{name}");
        if let Some(state) = config.get(&full) {
            return (full, Some(state));
        }
    }
    (format!("CONFIG_{}", item.name), None)
}

fn described(text: &str, item: &Item) -> String {
    let mut out = text.to_string();
    if !item.aliases.is_empty() {
        let aliases: Vec<String> = item.aliases.iter().map(|a| format!("CONFIG_{a}")).collect();
        out.push_str(&format!(" (nor its alias {})", join_items(&aliases)));
    }
    if !item.description.is_empty() {
        out.push_str(" - ");
        out.push_str(&item.description);
    }
    out
}

fn kernel_config(ctx: &Context) -> Outcome {
    let mut r = Recorder::new();
    let release = match ctx.node.kernel_release() {
        Ok(v) => v,
        Err(e) => {
            return r.fail_now(format!(
                "cannot tell the kernel release, which names the kernel config files: {e}"
            ));
        }
    };
    let spec = &ctx.spec.kernel_spec;
    let mut required: Vec<&Item> = spec.required.iter().collect();
    let mut optional: Vec<&Item> = spec.optional.iter().collect();
    match cgroups::read(&ctx.node.root, Some(release)) {
        Ok(c) => {
            r.note(format!(
                "cgroup {}: adding the options that version needs",
                c.version
            ));
            let (req, opt) = match c.version {
                CgroupVersion::V1 => (&spec.required_cgroups_v1, &spec.optional_cgroups_v1),
                CgroupVersion::V2 => (&spec.required_cgroups_v2, &spec.optional_cgroups_v2),
            };
            required.extend(req);
            optional.extend(opt);
        }
        Err(e) => {
            r.note(format!(
                "cgroup version unknown ({e}): requiring the options of both versions"
            ));
            required.extend(&spec.required_cgroups_v1);
            required.extend(&spec.required_cgroups_v2);
            optional.extend(&spec.optional_cgroups_v1);
            optional.extend(&spec.optional_cgroups_v2);
        }
    }
    let mut seen = std::collections::HashSet::new();
    required.retain(|i| seen.insert(i.name.as_str()));
    optional.retain(|i| seen.insert(i.name.as_str()));
    let wanted: std::collections::HashSet<String> = required
        .iter()
        .copied()
        .chain(optional.iter().copied())
        .chain(&spec.forbidden)
        .flat_map(Item::names)
        .map(|n| format!("CONFIG_{n}"))
        .collect();
    let Some(found) = ctx.node.kernel_config() else {
        return r.fail_now("cannot tell the kernel release, which names the kernel config files");
    };
    let config = match found {
        Ok((source, text)) => kernel::KernelConfig {
            options: kernel::parse_config(text, |name| wanted.contains(name)),
            source: source.clone(),
        },
        Err(nf) => {
            let tried: Vec<String> = nf
                .attempts
                .iter()
                .map(|a| format!("{} ({})", a.path.display(), a.problem))
                .collect();
            for a in &nf.attempts {
                r.info(a.path.display().to_string(), &a.problem);
            }
            return r.fail_now(format!(
                "no kernel config found for kernel {release}; looked at: {}; load the configs \
                 module on the host (modprobe configs) to get /proc/config.gz, or install the \
                 kernel's config as /boot/config-{release}",
                join_items(&tried)
            ));
        }
    };
    r.note(format!(
        "kernel config read from {}",
        config.source.display()
    ));

    let mut bad_required = Vec::new();
    for item in required {
        match lookup(&config, item) {
            (name, Some(Tristate::BuiltIn)) => r.ok(name, "enabled"),
            (name, Some(Tristate::Module)) => r.ok(name, "enabled (as module)"),
            (name, Some(Tristate::Disabled)) => {
                bad_required.push(format!("{name} (disabled)"));
                r.fail(name, described("disabled", item));
            }
            (name, None) => {
                bad_required.push(format!("{name} (not set)"));
                r.fail(name, described("not set", item));
            }
        }
    }
    for item in optional {
        match lookup(&config, item) {
            (name, Some(Tristate::BuiltIn)) => r.ok(name, "enabled"),
            (name, Some(Tristate::Module)) => r.ok(name, "enabled (as module)"),
            (name, Some(Tristate::Disabled)) => r.warn(name, described("disabled", item)),
            (name, None) => r.warn(name, described("not set", item)),
        }
    }
    let mut bad_forbidden = Vec::new();
    for item in &spec.forbidden {
        match lookup(&config, item) {
            (name, Some(Tristate::BuiltIn | Tristate::Module)) => {
                bad_forbidden.push(name.clone());
                r.fail(name, described("enabled, but forbidden", item));
            }
            (name, _) => r.ok(name, "not enabled"),
        }
    }
    let source = config.source.display().to_string();
    r.finish(|_| {
        let mut parts = Vec::new();
        if !bad_required.is_empty() {
            parts.push(format!("required options not enabled: {}", join_items(&bad_required)));
        }
        if !bad_forbidden.is_empty() {
            parts.push(format!("forbidden options enabled: {}", join_items(&bad_forbidden)));
        }
        format!(
            "kernel config {source}: {}; run a kernel built with the required options set to y or m \
             and the forbidden ones unset",
            parts.join("; ")
        )
    })
}

fn cgroup_controllers(ctx: &Context) -> Outcome {
    let mut r = Recorder::new();
    let release = ctx.node.kernel_release().ok();
    let cg = match cgroups::read(&ctx.node.root, release) {
        Ok(c) => c,
        Err(e) => {
            return r.fail_now(format!(
                "cannot read the cgroup layout: neither /sys/fs/cgroup/cgroup.controllers (v2) nor \
                 /proc/cgroups (v1) is readable ({e}); mount /sys and /proc of the host into the root"
            ))
        }
    };
    for n in &cg.notes {
        r.note(n);
    }
    let spec = &ctx.spec;
    let (required, optional) = match cg.version {
        CgroupVersion::V1 => {
            let (version, from) = kubelet_version(ctx);
            match cgroups_v1_disabled_in_kubelet(version.as_deref().unwrap_or("")) {
                Ok(true) => r.fail(
                    "CGROUPS_VERSION",
                    format!(
                        "v1, refused for kubelet {} ({from}): {CGROUPS_V1_DEPRECATED}",
                        version.as_deref().unwrap_or_default()
                    ),
                ),
                Ok(false) => r.warn(
                    "CGROUPS_VERSION",
                    format!(
                        "v1, deprecated{}: {CGROUPS_V1_DEPRECATED}; the kubelet refuses cgroup v1 \
                         from 1.35 on; boot with systemd.unified_cgroup_hierarchy=1 to move to v2",
                        version
                            .as_deref()
                            .map_or(String::new(), |v| format!(" (kubelet {v}, {from})"))
                    ),
                ),
                Err(e) => r.fail("CGROUPS_VERSION", format!("v1, and {e} ({from})")),
            }
            (&spec.cgroups, &spec.cgroups_optional)
        }
        CgroupVersion::V2 => {
            r.ok("CGROUPS_VERSION", "v2");
            (&spec.cgroups_v2, &spec.cgroups_v2_optional)
        }
    };
    let mut missing = Vec::new();
    for c in required {
        let item = format!("CGROUPS_{}", c.to_uppercase());
        if cg.has(c) {
            r.ok(item, "enabled");
        } else {
            missing.push(c.clone());
            r.fail(item, "missing");
        }
    }
    for c in optional {
        let item = format!("CGROUPS_{}", c.to_uppercase());
        if cg.has(c) {
            r.ok(item, "enabled");
        } else {
            r.warn(item, "missing (optional)");
        }
    }
    let version = cg.version;
    r.finish(|f| {
        if missing.is_empty() {
            return format!(
                "{}; move the node to cgroup v2 (boot with systemd.unified_cgroup_hierarchy=1)",
                super::describe(f)
            );
        }
        let fix = match version {
            CgroupVersion::V1 => "enable them on the kernel command line (cgroup_enable=...)",
            CgroupVersion::V2 => {
                "enable them in the kernel, and in the root's cgroup.subtree_control for the kubelet's slice"
            }
        };
        format!(
            "cgroup {version} is missing required controllers: {}; found {}; {fix}",
            join_items(&missing),
            join_items(&cg.controllers)
        )
    })
}

/// What system-validators v1.12.1 says of a cgroup v1 node (`CgroupsValidator.Validate`,
/// validators/cgroup_validator_linux.go): a warning for an older or unknown kubelet, an error
/// for kubelet 1.35 or newer.
const CGROUPS_V1_DEPRECATED: &str = "cgroups v1 support is deprecated and will be removed in a \
     future release. Please migrate to cgroups v2. To explicitly enable cgroups v1 support for \
     kubelet v1.35 or newer, you must set the kubelet configuration option 'FailCgroupV1' to \
     'false'. You must also explicitly skip this validation. For more information, see \
     https://git.k8s.io/enhancements/keps/sig-node/5573-remove-cgroup-v1";

/// The kubelet's version and where it was read: the managed kubelet's `--version`
/// (`--kubelet-binary`), else the node's `kubelet` package; `None` when neither is known.
fn kubelet_version(ctx: &Context) -> (Option<String>, String) {
    if let Some(v) = ctx.services.managed_kubelet_version() {
        return (Some(v.to_string()), "--kubelet-binary --version".into());
    }
    match host::package_version(&ctx.node.root, "kubelet") {
        Some((v, file)) => (Some(v), format!("package kubelet in {file}")),
        None => (None, "the kubelet's version is unknown".into()),
    }
}

/// Whether kubelet `version` refuses cgroup v1 by default, as system-validators v1.12.1's
/// `isCgroupsV1DisabledInKubelet` decides: an empty version is `false`, a version at or above
/// `1.35.0-0` (pre-releases of 1.35.0 included) is `true`; a leading `v` is allowed. `Err`
/// names a version that is not `MAJOR.MINOR.PATCH[-pre][+build]`.
pub fn cgroups_v1_disabled_in_kubelet(version: &str) -> Result<bool, String> {
    if version.is_empty() {
        return Ok(false);
    }
    let core = version
        .strip_prefix('v')
        .unwrap_or(version)
        .split(['-', '+'])
        .next()
        .unwrap_or_default();
    let parts: Vec<Option<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
    match parts[..] {
        [Some(major), Some(minor), Some(_)] => Ok((major, minor) >= (1, 35)),
        _ => Err(format!(
            "could not parse kubelet version {version:?}: not MAJOR.MINOR.PATCH"
        )),
    }
}

/// The package that usually provides an executable, for the remediation text.
fn package_of(name: &str) -> &'static str {
    match name {
        "ip" | "tc" => "iproute2",
        "mount" | "nsenter" => "util-linux",
        "iptables" => "iptables",
        "conntrack" => "conntrack",
        "ebtables" => "ebtables",
        "ethtool" => "ethtool",
        "socat" => "socat",
        "touch" => "coreutils",
        _ => "",
    }
}

fn executables(ctx: &Context) -> Outcome {
    let mut r = Recorder::new();
    r.note(format!(
        "searched the host PATH {} inside the root",
        host::HOST_PATH
    ));
    // The first name or alias found, or why none was: "not found", with the near misses.
    let find = |item: &Item| {
        let mut near_misses = Vec::new();
        for n in item.names() {
            match host::find_executable(&ctx.node.root, n, host::HOST_PATH) {
                Ok(p) => return Ok(p),
                Err(m) => near_misses.extend(m),
            }
        }
        let mut why = described("not found", item);
        if !near_misses.is_empty() {
            why.push_str(&format!("; {}", near_misses.join("; ")));
        }
        Err(why)
    };
    let mut missing = Vec::new();
    for item in &ctx.spec.executables.required {
        match find(item) {
            Ok(p) => r.ok(&item.name, format!("found at {}", p.display())),
            Err(why) => {
                missing.push(item.name.clone());
                r.fail(&item.name, why);
            }
        }
    }
    for item in &ctx.spec.executables.optional {
        match find(item) {
            Ok(p) => r.ok(&item.name, format!("found at {}", p.display())),
            Err(why) => r.warn(&item.name, why),
        }
    }
    r.finish(|_| {
        let install: Vec<String> = missing
            .iter()
            .map(|m| match package_of(m) {
                "" => m.clone(),
                pkg => format!("{m} (package {pkg})"),
            })
            .collect();
        format!(
            "required executables not found on the host PATH ({}): {}; install {}",
            host::HOST_PATH,
            join_items(&missing),
            join_items(&install)
        )
    })
}

fn ip_forward(ctx: &Context) -> Outcome {
    let mut r = Recorder::new();
    const NAME: &str = "net.ipv4.ip_forward";
    let path = host::sysctl_path(NAME);
    match host::sysctl(&ctx.node.root, NAME) {
        Ok(v) if v == "1" => r.ok(NAME, "1"),
        Ok(v) => r.fail(NAME, format!("{v}, expected 1")),
        Err(e) => {
            return r.fail_now(format!(
                "cannot read {NAME}: {e}; the node needs IPv4 forwarding for pod traffic"
            ));
        }
    }
    // Only dual-stack and IPv6 clusters need it, so it is reported, not required.
    match host::sysctl(&ctx.node.root, "net.ipv6.conf.default.forwarding") {
        Ok(v) => r.info(
            "net.ipv6.conf.default.forwarding",
            format!("{v} (needed as 1 for IPv6 clusters only)"),
        ),
        Err(e) => r.info(
            "net.ipv6.conf.default.forwarding",
            format!("not readable: {e}"),
        ),
    }
    r.finish(|_| {
        format!(
            "{NAME} ({}) is not 1, so pod traffic cannot be routed; set it with \
             `sysctl -w {NAME}=1` and persist it in /etc/sysctl.d/",
            path.display()
        )
    })
}

fn swap(ctx: &Context) -> Outcome {
    let mut r = Recorder::new();
    let devices = match host::swaps(&ctx.node.root) {
        Ok(d) => d,
        Err(e) => return r.fail_now(format!("cannot tell whether swap is on: {e}")),
    };
    if devices.is_empty() {
        r.ok("SWAP", "off");
    }
    for d in &devices {
        r.warn(
            "SWAP",
            format!(
                "{} ({}, {} KiB) is active: the kubelet needs failSwapOn: false, and the NodeSwap \
                 feature on cgroup v2 to use it; or turn it off with swapoff -a",
                d.name, d.kind, d.size_kib
            ),
        );
    }
    r.finish(|_| String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// system-validators v1.12.1's `TestIsCgroupsV1DisabledInKubelet`, and the forms the node
    /// gives (`kubelet --version`, a dpkg version).
    #[test]
    fn cgroups_v1_is_refused_from_kubelet_1_35_on() {
        assert!(cgroups_v1_disabled_in_kubelet("foo").is_err());
        assert_eq!(cgroups_v1_disabled_in_kubelet(""), Ok(false));
        assert_eq!(cgroups_v1_disabled_in_kubelet("1.34.7"), Ok(false));
        assert_eq!(cgroups_v1_disabled_in_kubelet("1.35.0-alpha.1"), Ok(true));
        assert_eq!(cgroups_v1_disabled_in_kubelet("1.35.1"), Ok(true));
        assert_eq!(cgroups_v1_disabled_in_kubelet("v1.36.0"), Ok(true));
        assert_eq!(cgroups_v1_disabled_in_kubelet("1.35.0-1.1"), Ok(true));
        assert_eq!(cgroups_v1_disabled_in_kubelet("v1.9.11"), Ok(false));
        assert!(cgroups_v1_disabled_in_kubelet("1.35").is_err());
    }
}
