//! The checks and their revisions, after `k8s.io/pod-security-admission/policy/check_*.go`.
//! Reasons and details are worded as upstream words them, since the admission messages quote
//! them.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    ContainerPort, Lifecycle, LifecycleHandler, PodSpec, Probe, SELinuxOptions, SecurityContext,
};

use super::{CheckFailure, Level, Violation};

/// A container of any kind, in upstream's visiting order (init containers, containers,
/// ephemeral containers), with where it sits in the pod.
pub(super) struct Ctr<'a> {
    name: &'a str,
    path: String,
    sc: Option<&'a SecurityContext>,
    ports: &'a [ContainerPort],
    probes: [(&'static str, Option<&'a Probe>); 3],
    lifecycle: Option<&'a Lifecycle>,
}

pub(super) struct PodView<'a> {
    annotations: Option<&'a BTreeMap<String, String>>,
    spec: &'a PodSpec,
    ctrs: Vec<Ctr<'a>>,
}

impl<'a> PodView<'a> {
    pub(super) fn new(
        annotations: Option<&'a BTreeMap<String, String>>,
        spec: &'a PodSpec,
    ) -> Self {
        let mut ctrs = Vec::new();
        for (i, c) in spec.init_containers.iter().flatten().enumerate() {
            ctrs.push(Ctr {
                name: &c.name,
                path: format!("spec.initContainers[{i}]"),
                sc: c.security_context.as_ref(),
                ports: c.ports.as_deref().unwrap_or_default(),
                probes: [
                    ("livenessProbe", c.liveness_probe.as_ref()),
                    ("readinessProbe", c.readiness_probe.as_ref()),
                    ("startupProbe", c.startup_probe.as_ref()),
                ],
                lifecycle: c.lifecycle.as_ref(),
            });
        }
        for (i, c) in spec.containers.iter().enumerate() {
            ctrs.push(Ctr {
                name: &c.name,
                path: format!("spec.containers[{i}]"),
                sc: c.security_context.as_ref(),
                ports: c.ports.as_deref().unwrap_or_default(),
                probes: [
                    ("livenessProbe", c.liveness_probe.as_ref()),
                    ("readinessProbe", c.readiness_probe.as_ref()),
                    ("startupProbe", c.startup_probe.as_ref()),
                ],
                lifecycle: c.lifecycle.as_ref(),
            });
        }
        for (i, c) in spec.ephemeral_containers.iter().flatten().enumerate() {
            ctrs.push(Ctr {
                name: &c.name,
                path: format!("spec.ephemeralContainers[{i}]"),
                sc: c.security_context.as_ref(),
                ports: c.ports.as_deref().unwrap_or_default(),
                probes: [
                    ("livenessProbe", c.liveness_probe.as_ref()),
                    ("readinessProbe", c.readiness_probe.as_ref()),
                    ("startupProbe", c.startup_probe.as_ref()),
                ],
                lifecycle: c.lifecycle.as_ref(),
            });
        }
        Self {
            annotations,
            spec,
            ctrs,
        }
    }

    fn psc(&self) -> Option<&'a k8s_openapi::api::core::v1::PodSecurityContext> {
        self.spec.security_context.as_ref()
    }

    fn annotation(&self, key: &str) -> Option<&'a str> {
        self.annotations
            .and_then(|a| a.get(key))
            .map(String::as_str)
    }

    /// `spec.os.name: windows`, which the 1.25 revisions of the Linux-only restricted checks
    /// exempt.
    fn windows(&self) -> bool {
        self.spec.os.as_ref().is_some_and(|os| os.name == "windows")
    }

    /// `spec.hostUsers: false` (a user namespace), which the 1.35 revisions relax for.
    fn user_namespace(&self) -> bool {
        self.spec.host_users == Some(false)
    }
}

/// A failed check before it is named: upstream's reason and detail, and the fields.
struct Fail {
    reason: String,
    detail: String,
    fields: Vec<(String, String)>,
}

type CheckFn = fn(&PodView<'_>) -> Option<Fail>;

struct Revision {
    since: u32,
    check: CheckFn,
    /// Baseline check IDs this restricted revision replaces.
    overrides: &'static [&'static str],
}

struct Check {
    id: &'static str,
    level: Level,
    control: &'static str,
    revisions: &'static [Revision],
}

const fn rev(since: u32, check: CheckFn) -> Revision {
    Revision {
        since,
        check,
        overrides: &[],
    }
}

const fn rev_over(since: u32, check: CheckFn, overrides: &'static [&'static str]) -> Revision {
    Revision {
        since,
        check,
        overrides,
    }
}

const CHECKS: &[Check] = &[
    Check {
        id: "appArmorProfile",
        level: Level::Baseline,
        control: "AppArmor",
        revisions: &[rev(0, apparmor_1_0)],
    },
    Check {
        id: "capabilities_baseline",
        level: Level::Baseline,
        control: "Capabilities",
        revisions: &[rev(0, capabilities_baseline_1_0)],
    },
    Check {
        id: "hostNamespaces",
        level: Level::Baseline,
        control: "Host Namespaces",
        revisions: &[rev(0, host_namespaces_1_0)],
    },
    Check {
        id: "hostPathVolumes",
        level: Level::Baseline,
        control: "HostPath Volumes",
        revisions: &[rev(0, host_path_volumes_1_0)],
    },
    Check {
        id: "hostPorts",
        level: Level::Baseline,
        control: "Host Ports",
        revisions: &[rev(0, host_ports_1_0)],
    },
    Check {
        id: "hostProbesAndHostLifecycle",
        level: Level::Baseline,
        control: "Host Probes / Lifecycle Hooks",
        revisions: &[rev(34, host_probes_1_34)],
    },
    Check {
        id: "privileged",
        level: Level::Baseline,
        control: "Privileged Containers",
        revisions: &[rev(0, privileged_1_0)],
    },
    Check {
        id: "procMount",
        level: Level::Baseline,
        control: "/proc Mount Type",
        revisions: &[rev(0, proc_mount_1_0), rev(35, proc_mount_baseline_1_35)],
    },
    Check {
        id: "seLinuxOptions",
        level: Level::Baseline,
        control: "SELinux",
        revisions: &[rev(0, selinux_1_0), rev(31, selinux_1_31)],
    },
    Check {
        id: "seccompProfile_baseline",
        level: Level::Baseline,
        control: "Seccomp",
        revisions: &[rev(0, seccomp_baseline_1_0), rev(19, seccomp_baseline_1_19)],
    },
    Check {
        id: "sysctls",
        level: Level::Baseline,
        control: "Sysctls",
        revisions: &[
            rev(0, sysctls_1_0),
            rev(27, sysctls_1_27),
            rev(29, sysctls_1_29),
            rev(32, sysctls_1_32),
            rev(37, sysctls_1_37),
        ],
    },
    Check {
        id: "windowsHostProcess",
        level: Level::Baseline,
        control: "HostProcess",
        revisions: &[rev(0, windows_host_process_1_0)],
    },
    Check {
        id: "allowPrivilegeEscalation",
        level: Level::Restricted,
        control: "Privilege Escalation",
        revisions: &[
            rev(8, allow_privilege_escalation_1_8),
            rev(25, allow_privilege_escalation_1_25),
        ],
    },
    Check {
        id: "capabilities_restricted",
        level: Level::Restricted,
        control: "Capabilities",
        revisions: &[
            rev_over(22, capabilities_restricted_1_22, &["capabilities_baseline"]),
            rev_over(25, capabilities_restricted_1_25, &["capabilities_baseline"]),
        ],
    },
    Check {
        id: "procMount_restricted",
        level: Level::Restricted,
        control: "/proc Mount Type",
        revisions: &[rev_over(35, proc_mount_1_0, &["procMount"])],
    },
    Check {
        id: "restrictedVolumes",
        level: Level::Restricted,
        control: "Volume Types",
        revisions: &[rev_over(0, restricted_volumes_1_0, &["hostPathVolumes"])],
    },
    Check {
        id: "runAsNonRoot",
        level: Level::Restricted,
        control: "Running as Non-root",
        revisions: &[rev(0, run_as_non_root_1_0), rev(35, run_as_non_root_1_35)],
    },
    Check {
        id: "runAsUser",
        level: Level::Restricted,
        control: "Running as Non-root user",
        revisions: &[rev(23, run_as_user_1_23), rev(35, run_as_user_1_35)],
    },
    Check {
        id: "seccompProfile_restricted",
        level: Level::Restricted,
        control: "Seccomp",
        revisions: &[
            rev_over(19, seccomp_restricted_1_19, &["seccompProfile_baseline"]),
            rev_over(25, seccomp_restricted_1_25, &["seccompProfile_baseline"]),
        ],
    },
];

/// Every failed check at `level` under policy minor version `minor` (already clamped to
/// [`super::NEWEST`]), in upstream's order: baseline check IDs sorted, then restricted ones.
pub(super) fn run(pod: &PodView<'_>, level: Level, minor: u32) -> Vec<CheckFailure> {
    let revision = |c: &'static Check| c.revisions.iter().rev().find(|r| r.since <= minor);
    let selected: Vec<(&Check, &Revision)> = CHECKS
        .iter()
        .filter(|c| c.level <= level)
        .filter_map(|c| revision(c).map(|r| (c, r)))
        .collect();
    let overridden: BTreeSet<&str> = selected
        .iter()
        .flat_map(|(_, r)| r.overrides.iter().copied())
        .collect();
    let mut order: Vec<&(&Check, &Revision)> = selected
        .iter()
        .filter(|(c, _)| !overridden.contains(c.id))
        .collect();
    order.sort_by_key(|(c, _)| (c.level, c.id));
    order
        .into_iter()
        .filter_map(|(c, r)| {
            (r.check)(pod).map(|f| CheckFailure {
                id: c.id,
                level: c.level,
                reason: f.reason,
                detail: f.detail,
                violations: f
                    .fields
                    .into_iter()
                    .map(|(path, detail)| Violation {
                        level: c.level,
                        control: c.control,
                        path,
                        detail,
                    })
                    .collect(),
            })
        })
        .collect()
}

fn pluralize<'a>(singular: &'a str, plural: &'a str, n: usize) -> &'a str {
    if n == 1 { singular } else { plural }
}

/// `"a", "b"`, as upstream's `joinQuote`.
fn join_quote<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let items: Vec<String> = items
        .into_iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect();
    items.join(", ")
}

/// `container "a"` / `containers "a", "b"`.
fn containers_phrase(names: &[&str]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

fn fail(reason: &str, detail: String, fields: Vec<(String, String)>) -> Option<Fail> {
    Some(Fail {
        reason: reason.to_string(),
        detail,
        fields,
    })
}

fn host_namespaces_1_0(pod: &PodView<'_>) -> Option<Fail> {
    let mut set = Vec::new();
    let mut fields = Vec::new();
    for (name, value) in [
        ("hostNetwork", pod.spec.host_network),
        ("hostPID", pod.spec.host_pid),
        ("hostIPC", pod.spec.host_ipc),
    ] {
        if value == Some(true) {
            set.push(format!("{name}=true"));
            fields.push((
                format!("spec.{name}"),
                "true, must be unset or false".into(),
            ));
        }
    }
    if set.is_empty() {
        return None;
    }
    fail("host namespaces", set.join(", "), fields)
}

fn privileged_1_0(pod: &PodView<'_>) -> Option<Fail> {
    let bad: Vec<&Ctr<'_>> = pod
        .ctrs
        .iter()
        .filter(|c| c.sc.and_then(|s| s.privileged) == Some(true))
        .collect();
    if bad.is_empty() {
        return None;
    }
    let names: Vec<&str> = bad.iter().map(|c| c.name).collect();
    fail(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&names)
        ),
        bad.iter()
            .map(|c| {
                (
                    format!("{}.securityContext.privileged", c.path),
                    "true, must be unset or false".into(),
                )
            })
            .collect(),
    )
}

const CAPABILITIES_ALLOWED_1_0: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn capabilities_baseline_1_0(pod: &PodView<'_>) -> Option<Fail> {
    let mut names = Vec::new();
    let mut caps = BTreeSet::new();
    let mut fields = Vec::new();
    for c in &pod.ctrs {
        let added =
            c.sc.and_then(|s| s.capabilities.as_ref())
                .and_then(|c| c.add.as_deref())
                .unwrap_or_default();
        let mut bad = false;
        for (k, cap) in added.iter().enumerate() {
            if !CAPABILITIES_ALLOWED_1_0.contains(&cap.as_str()) {
                bad = true;
                caps.insert(cap.as_str());
                fields.push((
                    format!("{}.securityContext.capabilities.add[{k}]", c.path),
                    format!("{cap} is not in the baseline set"),
                ));
            }
        }
        if bad {
            names.push(c.name);
        }
    }
    if names.is_empty() {
        return None;
    }
    fail(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&names),
            join_quote(&caps)
        ),
        fields,
    )
}

fn host_path_volumes_1_0(pod: &PodView<'_>) -> Option<Fail> {
    let mut names = Vec::new();
    let mut fields = Vec::new();
    for (i, v) in pod.spec.volumes.iter().flatten().enumerate() {
        if v.host_path.is_some() {
            names.push(v.name.as_str());
            fields.push((
                format!("spec.volumes[{i}].hostPath"),
                format!("volume {:?} mounts a host path", v.name),
            ));
        }
    }
    if names.is_empty() {
        return None;
    }
    fail(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", names.len()),
            join_quote(&names)
        ),
        fields,
    )
}

fn host_ports_1_0(pod: &PodView<'_>) -> Option<Fail> {
    let mut names = Vec::new();
    // Sorted as strings, as upstream's sets.String lists them.
    let mut ports = BTreeSet::new();
    let mut fields = Vec::new();
    for c in &pod.ctrs {
        let mut bad = false;
        for (j, p) in c.ports.iter().enumerate() {
            let hp = p.host_port.unwrap_or(0);
            if hp != 0 {
                bad = true;
                ports.insert(hp.to_string());
                fields.push((
                    format!("{}.ports[{j}].hostPort", c.path),
                    format!("{hp}, must be unset or 0"),
                ));
            }
        }
        if bad {
            names.push(c.name);
        }
    }
    if names.is_empty() {
        return None;
    }
    fail(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&names),
            pluralize("uses", "use", names.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.into_iter().collect::<Vec<_>>().join(", ")
        ),
        fields,
    )
}

const APPARMOR_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/";

fn apparmor_1_0(pod: &PodView<'_>) -> Option<Fail> {
    let allowed_type = |t: &str| matches!(t, "RuntimeDefault" | "Localhost");
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    let mut fields = Vec::new();
    if let Some(p) = pod.psc().and_then(|p| p.app_armor_profile.as_ref())
        && !allowed_type(&p.type_)
    {
        setters.push("pod".to_string());
        values.insert(p.type_.clone());
        fields.push((
            "spec.securityContext.appArmorProfile.type".into(),
            format!("{}, must be unset, RuntimeDefault or Localhost", p.type_),
        ));
    }
    let mut names = Vec::new();
    for c in &pod.ctrs {
        if let Some(p) = c.sc.and_then(|s| s.app_armor_profile.as_ref())
            && !allowed_type(&p.type_)
        {
            names.push(c.name);
            values.insert(p.type_.clone());
            fields.push((
                format!("{}.securityContext.appArmorProfile.type", c.path),
                format!("{}, must be unset, RuntimeDefault or Localhost", p.type_),
            ));
        }
    }
    if !names.is_empty() {
        setters.push(containers_phrase(&names));
    }
    let mut values: Vec<String> = values.into_iter().collect();
    let mut annotations = Vec::new();
    for (k, v) in pod.annotations.into_iter().flatten() {
        let allowed = v.is_empty() || v == "runtime/default" || v.starts_with("localhost/");
        if k.starts_with(APPARMOR_ANNOTATION) && !allowed {
            annotations.push(format!("{k}={v:?}"));
            fields.push((
                format!("metadata.annotations[{k:?}]"),
                format!("{v}, must be runtime/default or localhost/<profile>"),
            ));
        }
    }
    if !annotations.is_empty() {
        annotations.sort();
        setters.push(pluralize("annotation", "annotations", annotations.len()).to_string());
        values.extend(annotations);
    }
    if setters.is_empty() {
        return None;
    }
    fail(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            values.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            join_quote(&values)
        ),
        fields,
    )
}

const SELINUX_TYPES_1_0: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t"];
const SELINUX_TYPES_1_31: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

fn selinux_1_0(pod: &PodView<'_>) -> Option<Fail> {
    selinux(pod, SELINUX_TYPES_1_0)
}

fn selinux_1_31(pod: &PodView<'_>) -> Option<Fail> {
    selinux(pod, SELINUX_TYPES_1_31)
}

fn selinux(pod: &PodView<'_>, allowed: &[&str]) -> Option<Fail> {
    let mut types = BTreeSet::new();
    let (mut user, mut role) = (false, false);
    let mut fields = Vec::new();
    let mut valid = |base: &str, o: &SELinuxOptions| {
        let mut ok = true;
        let t = o.type_.as_deref().unwrap_or_default();
        if !allowed.contains(&t) {
            ok = false;
            types.insert(t.to_string());
            fields.push((
                format!("{base}.seLinuxOptions.type"),
                format!("{t}, allowed: {}", allowed[1..].join(", ")),
            ));
        }
        for (name, value, flag) in [("user", &o.user, &mut user), ("role", &o.role, &mut role)] {
            if value.as_deref().is_some_and(|v| !v.is_empty()) {
                ok = false;
                *flag = true;
                fields.push((
                    format!("{base}.seLinuxOptions.{name}"),
                    "set, must be unset".into(),
                ));
            }
        }
        ok
    };
    let mut setters = Vec::new();
    if let Some(o) = pod.psc().and_then(|p| p.se_linux_options.as_ref())
        && !valid("spec.securityContext", o)
    {
        setters.push("pod".to_string());
    }
    let mut names = Vec::new();
    for c in &pod.ctrs {
        if let Some(o) = c.sc.and_then(|s| s.se_linux_options.as_ref())
            && !valid(&format!("{}.securityContext", c.path), o)
        {
            names.push(c.name);
        }
    }
    if !names.is_empty() {
        setters.push(containers_phrase(&names));
    }
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !types.is_empty() {
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
    }
    if user {
        data.push("user may not be set".to_string());
    }
    if role {
        data.push("role may not be set".to_string());
    }
    fail(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
        fields,
    )
}

fn proc_mount_1_0(pod: &PodView<'_>) -> Option<Fail> {
    let mut names = Vec::new();
    let mut kinds = BTreeSet::new();
    let mut fields = Vec::new();
    for c in &pod.ctrs {
        if let Some(pm) = c.sc.and_then(|s| s.proc_mount.as_deref())
            && pm != "Default"
        {
            names.push(c.name);
            kinds.insert(pm);
            fields.push((
                format!("{}.securityContext.procMount", c.path),
                format!("{pm}, must be unset or Default"),
            ));
        }
    }
    if names.is_empty() {
        return None;
    }
    fail(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&names),
            join_quote(&kinds)
        ),
        fields,
    )
}

fn proc_mount_baseline_1_35(pod: &PodView<'_>) -> Option<Fail> {
    if pod.user_namespace() {
        return None;
    }
    proc_mount_1_0(pod)
}

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// Before 1.19 seccomp was set through annotations.
fn seccomp_baseline_1_0(pod: &PodView<'_>) -> Option<Fail> {
    let valid =
        |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
    let mut forbidden = BTreeSet::new();
    let mut fields = Vec::new();
    let mut keys = vec![SECCOMP_POD_ANNOTATION.to_string()];
    keys.extend(
        pod.ctrs
            .iter()
            .map(|c| format!("{SECCOMP_CONTAINER_ANNOTATION}{}", c.name)),
    );
    for key in keys {
        if let Some(v) = pod.annotation(&key)
            && !valid(v)
            && forbidden.insert(format!("{key}={v:?}"))
        {
            fields.push((
                format!("metadata.annotations[{key:?}]"),
                format!("{v}, must be runtime/default, docker/default or localhost/<profile>"),
            ));
        }
    }
    if forbidden.is_empty() {
        return None;
    }
    fail(
        "seccompProfile",
        format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", forbidden.len()),
            forbidden.into_iter().collect::<Vec<_>>().join(", ")
        ),
        fields,
    )
}

fn valid_seccomp(t: &str) -> bool {
    matches!(t, "RuntimeDefault" | "Localhost")
}

fn seccomp_baseline_1_19(pod: &PodView<'_>) -> Option<Fail> {
    seccomp_fields(pod, false)
}

fn seccomp_restricted_1_19(pod: &PodView<'_>) -> Option<Fail> {
    seccomp_fields(pod, true)
}

fn seccomp_restricted_1_25(pod: &PodView<'_>) -> Option<Fail> {
    if pod.windows() {
        return None;
    }
    seccomp_fields(pod, true)
}

/// The seccomp profile fields: never a type other than RuntimeDefault or Localhost, and when
/// `required`, one of those on the pod or on every container.
fn seccomp_fields(pod: &PodView<'_>, required: bool) -> Option<Fail> {
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    let mut fields = Vec::new();
    let mut pod_set = false;
    if let Some(p) = pod.psc().and_then(|p| p.seccomp_profile.as_ref()) {
        if valid_seccomp(&p.type_) {
            pod_set = true;
        } else {
            setters.push("pod".to_string());
            values.insert(p.type_.clone());
            fields.push((
                "spec.securityContext.seccompProfile.type".into(),
                format!("{}, must be RuntimeDefault or Localhost", p.type_),
            ));
        }
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in &pod.ctrs {
        let path = format!("{}.securityContext.seccompProfile.type", c.path);
        match c.sc.and_then(|s| s.seccomp_profile.as_ref()) {
            Some(p) if !valid_seccomp(&p.type_) => {
                explicit.push(c.name);
                values.insert(p.type_.clone());
                fields.push((
                    path,
                    format!("{}, must be RuntimeDefault or Localhost", p.type_),
                ));
            }
            Some(_) => {}
            None if required && !pod_set => {
                implicit.push(c.name);
                fields.push((
                    path,
                    "unset, and spec.securityContext.seccompProfile.type is not RuntimeDefault or Localhost"
                        .into(),
                ));
            }
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return fail(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote(&values)
            ),
            fields,
        );
    }
    if !implicit.is_empty() {
        return fail(
            "seccompProfile",
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_phrase(&implicit)
            ),
            fields,
        );
    }
    None
}

const SYSCTLS_1_0: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
const SYSCTLS_1_27: &[&str] = &["net.ipv4.ip_local_reserved_ports"];
const SYSCTLS_1_29: &[&str] = &[
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const SYSCTLS_1_32: &[&str] = &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];
const SYSCTLS_1_37: &[&str] = &[
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
];

/// The safe sysctls under the revision of policy version `minor`, each revision adding to the
/// one before.
pub(super) fn safe_sysctls(minor: u32) -> Vec<&'static str> {
    [
        (0, SYSCTLS_1_0),
        (27, SYSCTLS_1_27),
        (29, SYSCTLS_1_29),
        (32, SYSCTLS_1_32),
        (37, SYSCTLS_1_37),
    ]
    .into_iter()
    .filter(|(since, _)| *since <= minor)
    .flat_map(|(_, names)| names.iter().copied())
    .collect()
}

fn sysctls_1_0(pod: &PodView<'_>) -> Option<Fail> {
    sysctls(pod, 0)
}
fn sysctls_1_27(pod: &PodView<'_>) -> Option<Fail> {
    sysctls(pod, 27)
}
fn sysctls_1_29(pod: &PodView<'_>) -> Option<Fail> {
    sysctls(pod, 29)
}
fn sysctls_1_32(pod: &PodView<'_>) -> Option<Fail> {
    sysctls(pod, 32)
}
fn sysctls_1_37(pod: &PodView<'_>) -> Option<Fail> {
    sysctls(pod, 37)
}

fn sysctls(pod: &PodView<'_>, minor: u32) -> Option<Fail> {
    let safe = safe_sysctls(minor);
    let mut names = Vec::new();
    let mut fields = Vec::new();
    for (i, s) in pod
        .psc()
        .and_then(|p| p.sysctls.as_deref())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if !safe.contains(&s.name.as_str()) {
            names.push(s.name.as_str());
            fields.push((
                format!("spec.securityContext.sysctls[{i}].name"),
                format!("{} is not in the safe set of policy v1.{minor}", s.name),
            ));
        }
    }
    if names.is_empty() {
        return None;
    }
    fail("forbidden sysctls", names.join(", "), fields)
}

fn windows_host_process_1_0(pod: &PodView<'_>) -> Option<Fail> {
    let host_process = |w: Option<&k8s_openapi::api::core::v1::WindowsSecurityContextOptions>| {
        w.and_then(|w| w.host_process) == Some(true)
    };
    let mut setters = Vec::new();
    let mut fields = Vec::new();
    if host_process(pod.psc().and_then(|p| p.windows_options.as_ref())) {
        setters.push("pod".to_string());
        fields.push((
            "spec.securityContext.windowsOptions.hostProcess".into(),
            "true, must be unset or false".into(),
        ));
    }
    let mut names = Vec::new();
    for c in &pod.ctrs {
        if host_process(c.sc.and_then(|s| s.windows_options.as_ref())) {
            names.push(c.name);
            fields.push((
                format!("{}.securityContext.windowsOptions.hostProcess", c.path),
                "true, must be unset or false".into(),
            ));
        }
    }
    if !names.is_empty() {
        setters.push(containers_phrase(&names));
    }
    if setters.is_empty() {
        return None;
    }
    fail(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
        fields,
    )
}

fn host_probes_1_34(pod: &PodView<'_>) -> Option<Fail> {
    let mut names = Vec::new();
    let mut hosts = BTreeSet::new();
    let mut fields = Vec::new();
    for c in &pod.ctrs {
        let mut bad = false;
        let mut handler =
            |path: String,
             http: Option<&k8s_openapi::api::core::v1::HTTPGetAction>,
             tcp: Option<&k8s_openapi::api::core::v1::TCPSocketAction>| {
                let found = [
                    ("httpGet", http.and_then(|h| h.host.as_deref())),
                    ("tcpSocket", tcp.and_then(|t| t.host.as_deref())),
                ];
                for (kind, host) in found {
                    if let Some(h) = host.filter(|h| !h.is_empty()) {
                        bad = true;
                        hosts.insert(h.to_string());
                        fields.push((
                            format!("{path}.{kind}.host"),
                            format!("{h}, must be unset or empty"),
                        ));
                    }
                }
            };
        for (name, probe) in c.probes {
            if let Some(p) = probe {
                handler(
                    format!("{}.{name}", c.path),
                    p.http_get.as_ref(),
                    p.tcp_socket.as_ref(),
                );
            }
        }
        let hooks: [(&str, Option<&LifecycleHandler>); 2] = [
            ("postStart", c.lifecycle.and_then(|l| l.post_start.as_ref())),
            ("preStop", c.lifecycle.and_then(|l| l.pre_stop.as_ref())),
        ];
        for (name, hook) in hooks {
            if let Some(h) = hook {
                handler(
                    format!("{}.lifecycle.{name}", c.path),
                    h.http_get.as_ref(),
                    h.tcp_socket.as_ref(),
                );
            }
        }
        if bad {
            names.push(c.name);
        }
    }
    if names.is_empty() {
        return None;
    }
    // Upstream collects the containers in a set, so each name once, sorted.
    let names: BTreeSet<&str> = names.into_iter().collect();
    let names: Vec<&str> = names.into_iter().collect();
    fail(
        "probe or lifecycle host",
        format!(
            "{} {} {} {}",
            containers_phrase(&names),
            pluralize("uses", "use", names.len()),
            pluralize(
                "probe or lifecycle host",
                "probe or lifecycle hosts",
                hosts.len()
            ),
            join_quote(&hosts)
        ),
        fields,
    )
}

fn allow_privilege_escalation_1_8(pod: &PodView<'_>) -> Option<Fail> {
    let mut names = Vec::new();
    let mut fields = Vec::new();
    for c in &pod.ctrs {
        let value = c.sc.and_then(|s| s.allow_privilege_escalation);
        if value != Some(false) {
            names.push(c.name);
            fields.push((
                format!("{}.securityContext.allowPrivilegeEscalation", c.path),
                format!(
                    "{}, must be false",
                    if value.is_some() { "true" } else { "unset" }
                ),
            ));
        }
    }
    if names.is_empty() {
        return None;
    }
    fail(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&names)
        ),
        fields,
    )
}

fn allow_privilege_escalation_1_25(pod: &PodView<'_>) -> Option<Fail> {
    if pod.windows() {
        return None;
    }
    allow_privilege_escalation_1_8(pod)
}

fn capabilities_restricted_1_22(pod: &PodView<'_>) -> Option<Fail> {
    let mut missing_drop = Vec::new();
    let mut adding = Vec::new();
    let mut caps = BTreeSet::new();
    let mut fields = Vec::new();
    for c in &pod.ctrs {
        let capabilities = c.sc.and_then(|s| s.capabilities.as_ref());
        let drops_all = capabilities
            .and_then(|c| c.drop.as_ref())
            .is_some_and(|d| d.iter().any(|c| c == "ALL"));
        if !drops_all {
            missing_drop.push(c.name);
            fields.push((
                format!("{}.securityContext.capabilities.drop", c.path),
                "must include ALL".into(),
            ));
        }
        let mut bad = false;
        for (k, cap) in capabilities
            .and_then(|c| c.add.as_deref())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if cap != "NET_BIND_SERVICE" {
                bad = true;
                caps.insert(cap.as_str());
                fields.push((
                    format!("{}.securityContext.capabilities.add[{k}]", c.path),
                    format!("{cap}; only NET_BIND_SERVICE may be added"),
                ));
            }
        }
        if bad {
            adding.push(c.name);
        }
    }
    let mut details = Vec::new();
    if !missing_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop)
        ));
    }
    if !adding.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding),
            join_quote(&caps)
        ));
    }
    if details.is_empty() {
        return None;
    }
    fail("unrestricted capabilities", details.join("; "), fields)
}

fn capabilities_restricted_1_25(pod: &PodView<'_>) -> Option<Fail> {
    if pod.windows() {
        return None;
    }
    capabilities_restricted_1_22(pod)
}

const VOLUMES_ALLOWED: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The restricted sources in the order upstream names the first one a volume sets.
const VOLUMES_RESTRICTED: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

fn restricted_volumes_1_0(pod: &PodView<'_>) -> Option<Fail> {
    let mut names = Vec::new();
    let mut kinds = BTreeSet::new();
    let mut fields = Vec::new();
    for (i, v) in pod.spec.volumes.iter().flatten().enumerate() {
        // The volume's sources are the fields besides `name` it sets.
        let set: Vec<String> = serde_json::to_value(v)
            .ok()
            .and_then(|j| {
                j.as_object()
                    .map(|o| o.keys().filter(|k| *k != "name").cloned().collect())
            })
            .unwrap_or_default();
        // No source at all is an emptyDir: the API server defaults it so before admission.
        if set.is_empty() || set.iter().any(|k| VOLUMES_ALLOWED.contains(&k.as_str())) {
            continue;
        }
        let kind = VOLUMES_RESTRICTED
            .iter()
            .find(|r| set.iter().any(|k| k == *r))
            .copied()
            .unwrap_or("unknown");
        names.push(v.name.as_str());
        kinds.insert(kind);
        fields.push((
            format!("spec.volumes[{i}].{kind}"),
            format!(
                "volume {:?} is of type {kind}; allowed: {}",
                v.name,
                VOLUMES_ALLOWED.join(", ")
            ),
        ));
    }
    if names.is_empty() {
        return None;
    }
    fail(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", names.len()),
            join_quote(&names),
            pluralize("uses", "use", names.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                kinds.len()
            ),
            join_quote(&kinds)
        ),
        fields,
    )
}

fn run_as_non_root_1_0(pod: &PodView<'_>) -> Option<Fail> {
    let mut setters = Vec::new();
    let mut fields = Vec::new();
    let mut pod_true = false;
    match pod.psc().and_then(|p| p.run_as_non_root) {
        Some(false) => {
            // An explicit false on the pod fails whatever the containers set.
            setters.push("pod".to_string());
            fields.push((
                "spec.securityContext.runAsNonRoot".into(),
                "false, must be true".into(),
            ));
        }
        Some(true) => pod_true = true,
        None => {}
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in &pod.ctrs {
        let path = format!("{}.securityContext.runAsNonRoot", c.path);
        match c.sc.and_then(|s| s.run_as_non_root) {
            Some(false) => {
                explicit.push(c.name);
                fields.push((path, "false, must be true or unset".into()));
            }
            Some(true) => {}
            None if !pod_true => {
                implicit.push(c.name);
                fields.push((
                    path,
                    "unset, and spec.securityContext.runAsNonRoot is not true".into(),
                ));
            }
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return fail(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
            fields,
        );
    }
    if !implicit.is_empty() {
        return fail(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&implicit)
            ),
            fields,
        );
    }
    None
}

fn run_as_non_root_1_35(pod: &PodView<'_>) -> Option<Fail> {
    if pod.user_namespace() {
        return None;
    }
    run_as_non_root_1_0(pod)
}

fn run_as_user_1_23(pod: &PodView<'_>) -> Option<Fail> {
    let mut setters = Vec::new();
    let mut fields = Vec::new();
    if pod.psc().and_then(|p| p.run_as_user) == Some(0) {
        setters.push("pod".to_string());
        fields.push((
            "spec.securityContext.runAsUser".into(),
            "0, must not be".into(),
        ));
    }
    let mut names = Vec::new();
    for c in &pod.ctrs {
        if c.sc.and_then(|s| s.run_as_user) == Some(0) {
            names.push(c.name);
            fields.push((
                format!("{}.securityContext.runAsUser", c.path),
                "0, must not be".into(),
            ));
        }
    }
    if !names.is_empty() {
        setters.push(containers_phrase(&names));
    }
    if setters.is_empty() {
        return None;
    }
    fail(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters.join(" and ")),
        fields,
    )
}

fn run_as_user_1_35(pod: &PodView<'_>) -> Option<Fail> {
    if pod.user_namespace() {
        return None;
    }
    run_as_user_1_23(pod)
}
