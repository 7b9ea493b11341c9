//! Pod Security Standards as a pure function: a pod in, every violated control out, each with
//! the field path that violates it. No I/O, so the static pod tests and the local control
//! plane's admission share it.

use std::fmt;

use k8s_openapi::api::core::v1::{
    Capabilities, ContainerPort, Pod, PodSecurityContext, PodSpec, SecurityContext, Volume,
};

/// The three levels, each allowing less than the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "privileged" => Some(Self::Privileged),
            "baseline" => Some(Self::Baseline),
            "restricted" => Some(Self::Restricted),
            _ => None,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Privileged => "privileged",
            Self::Baseline => "baseline",
            Self::Restricted => "restricted",
        })
    }
}

/// One violated control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The level whose control this breaks (Baseline or Restricted).
    pub level: Level,
    /// The control's name in the standard: `Privileged Containers`, `Host Namespaces`, ...
    pub control: &'static str,
    /// The offending field: `spec.containers[0].securityContext.privileged`.
    pub path: String,
    /// What the field holds and what is allowed.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}: {}",
            self.control, self.level, self.path, self.detail
        )
    }
}

/// Every violation of the baseline and restricted levels.
pub fn evaluate(pod: &Pod) -> Vec<Violation> {
    let mut v = Vec::new();
    if let Some(spec) = &pod.spec {
        Checker {
            spec,
            annotations: pod.metadata.annotations.as_ref(),
            out: &mut v,
        }
        .run();
    }
    v
}

/// The violations that matter at `level`.
pub fn violations_at(violations: &[Violation], level: Level) -> Vec<&Violation> {
    violations.iter().filter(|v| v.level <= level).collect()
}

/// The highest level a pod with these violations satisfies.
pub fn highest_level(violations: &[Violation]) -> Level {
    if violations.iter().any(|v| v.level == Level::Baseline) {
        Level::Privileged
    } else if violations.is_empty() {
        Level::Restricted
    } else {
        Level::Baseline
    }
}

const BASELINE_CAPS: &[&str] = &[
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
const SELINUX_TYPES: &[&str] = &[
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const RESTRICTED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];
const APPARMOR_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/";

/// A container of any kind, with where it sits in the pod.
struct ContainerView<'a> {
    path: String,
    sc: Option<&'a SecurityContext>,
    ports: &'a [ContainerPort],
}

fn containers(spec: &PodSpec) -> Vec<ContainerView<'_>> {
    let mut out = Vec::new();
    for (i, c) in spec.containers.iter().enumerate() {
        out.push(ContainerView {
            path: format!("spec.containers[{i}]"),
            sc: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
        });
    }
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        out.push(ContainerView {
            path: format!("spec.initContainers[{i}]"),
            sc: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
        });
    }
    for (i, c) in spec.ephemeral_containers.iter().flatten().enumerate() {
        out.push(ContainerView {
            path: format!("spec.ephemeralContainers[{i}]"),
            sc: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
        });
    }
    out
}

struct Checker<'a> {
    spec: &'a PodSpec,
    annotations: Option<&'a std::collections::BTreeMap<String, String>>,
    out: &'a mut Vec<Violation>,
}

impl Checker<'_> {
    fn add(
        &mut self,
        level: Level,
        control: &'static str,
        path: String,
        detail: impl Into<String>,
    ) {
        self.out.push(Violation {
            level,
            control,
            path,
            detail: detail.into(),
        });
    }

    fn run(&mut self) {
        let spec = self.spec;
        let psc = spec.security_context.as_ref();
        let containers = containers(spec);
        self.host_namespaces();
        self.volumes(spec.volumes.as_deref().unwrap_or_default());
        if let Some(psc) = psc {
            self.pod_context(psc);
        }
        for c in &containers {
            self.container(c);
        }
        self.pod_wide_restricted(psc, &containers);
        self.apparmor_annotations();
    }

    fn host_namespaces(&mut self) {
        for (field, set) in [
            ("hostNetwork", self.spec.host_network),
            ("hostPID", self.spec.host_pid),
            ("hostIPC", self.spec.host_ipc),
        ] {
            if set == Some(true) {
                self.add(
                    Level::Baseline,
                    "Host Namespaces",
                    format!("spec.{field}"),
                    "true, must be unset or false",
                );
            }
        }
    }

    fn volumes(&mut self, volumes: &[Volume]) {
        for (i, vol) in volumes.iter().enumerate() {
            let path = format!("spec.volumes[{i}]");
            if vol.host_path.is_some() {
                self.add(
                    Level::Baseline,
                    "HostPath Volumes",
                    format!("{path}.hostPath"),
                    format!("volume {:?} mounts a host path", vol.name),
                );
                continue;
            }
            // The volume's source is whichever field besides `name` is set.
            let kind = serde_json::to_value(vol).ok().and_then(|v| {
                v.as_object()
                    .and_then(|o| o.keys().find(|k| *k != "name").cloned())
            });
            if let Some(kind) = kind
                && !RESTRICTED_VOLUMES.contains(&kind.as_str())
            {
                self.add(
                    Level::Restricted,
                    "Volume Types",
                    format!("{path}.{kind}"),
                    format!(
                        "volume {:?} is of type {kind}; allowed: {}",
                        vol.name,
                        RESTRICTED_VOLUMES.join(", ")
                    ),
                );
            }
        }
    }

    fn pod_context(&mut self, psc: &PodSecurityContext) {
        let base = "spec.securityContext";
        if psc.windows_options.as_ref().and_then(|w| w.host_process) == Some(true) {
            self.add(
                Level::Baseline,
                "HostProcess",
                format!("{base}.windowsOptions.hostProcess"),
                "true, must be unset or false",
            );
        }
        if let Some(t) = psc.app_armor_profile.as_ref().map(|p| p.type_.as_str()) {
            self.apparmor(format!("{base}.appArmorProfile.type"), t);
        }
        if let Some(se) = &psc.se_linux_options {
            self.selinux(base, se);
        }
        if let Some(t) = psc.seccomp_profile.as_ref().map(|p| p.type_.as_str())
            && t == "Unconfined"
        {
            self.add(
                Level::Baseline,
                "Seccomp",
                format!("{base}.seccompProfile.type"),
                "Unconfined, must not be",
            );
        }
        for (i, s) in psc.sysctls.iter().flatten().enumerate() {
            if !SAFE_SYSCTLS.contains(&s.name.as_str()) {
                self.add(
                    Level::Baseline,
                    "Sysctls",
                    format!("{base}.sysctls[{i}].name"),
                    format!("{} is not in the safe set", s.name),
                );
            }
        }
        if psc.run_as_user == Some(0) {
            self.add(
                Level::Restricted,
                "Running as Non-root user",
                format!("{base}.runAsUser"),
                "0, must not be",
            );
        }
    }

    fn apparmor(&mut self, path: String, kind: &str) {
        if !matches!(kind, "RuntimeDefault" | "Localhost") {
            self.add(
                Level::Baseline,
                "AppArmor",
                path,
                format!("{kind}, must be unset, RuntimeDefault or Localhost"),
            );
        }
    }

    fn selinux(&mut self, base: &str, se: &k8s_openapi::api::core::v1::SELinuxOptions) {
        if let Some(t) = se.type_.as_deref()
            && !t.is_empty()
            && !SELINUX_TYPES.contains(&t)
        {
            self.add(
                Level::Baseline,
                "SELinux",
                format!("{base}.seLinuxOptions.type"),
                format!("{t}, allowed: {}", SELINUX_TYPES.join(", ")),
            );
        }
        for (field, value) in [("user", &se.user), ("role", &se.role)] {
            if value.as_deref().is_some_and(|v| !v.is_empty()) {
                self.add(
                    Level::Baseline,
                    "SELinux",
                    format!("{base}.seLinuxOptions.{field}"),
                    "set, must be unset",
                );
            }
        }
    }

    fn container(&mut self, c: &ContainerView<'_>) {
        for (j, p) in c.ports.iter().enumerate() {
            if p.host_port.is_some_and(|hp| hp != 0) {
                self.add(
                    Level::Baseline,
                    "Host Ports",
                    format!("{}.ports[{j}].hostPort", c.path),
                    format!("{}, must be unset or 0", p.host_port.unwrap_or_default()),
                );
            }
        }
        let base = format!("{}.securityContext", c.path);
        let Some(sc) = c.sc else {
            self.add(
                Level::Restricted,
                "Privilege Escalation",
                format!("{base}.allowPrivilegeEscalation"),
                "unset, must be false",
            );
            self.add(
                Level::Restricted,
                "Capabilities",
                format!("{base}.capabilities.drop"),
                "must include ALL",
            );
            return;
        };
        if sc.windows_options.as_ref().and_then(|w| w.host_process) == Some(true) {
            self.add(
                Level::Baseline,
                "HostProcess",
                format!("{base}.windowsOptions.hostProcess"),
                "true, must be unset or false",
            );
        }
        if sc.privileged == Some(true) {
            self.add(
                Level::Baseline,
                "Privileged Containers",
                format!("{base}.privileged"),
                "true, must be unset or false",
            );
        }
        self.capabilities(&base, sc.capabilities.as_ref());
        if let Some(t) = sc.app_armor_profile.as_ref().map(|p| p.type_.as_str()) {
            self.apparmor(format!("{base}.appArmorProfile.type"), t);
        }
        if let Some(se) = &sc.se_linux_options {
            self.selinux(&base, se);
        }
        if let Some(pm) = sc.proc_mount.as_deref()
            && pm != "Default"
        {
            self.add(
                Level::Baseline,
                "/proc Mount Type",
                format!("{base}.procMount"),
                format!("{pm}, must be unset or Default"),
            );
        }
        if sc
            .seccomp_profile
            .as_ref()
            .is_some_and(|p| p.type_ == "Unconfined")
        {
            self.add(
                Level::Baseline,
                "Seccomp",
                format!("{base}.seccompProfile.type"),
                "Unconfined, must not be",
            );
        }
        if sc.allow_privilege_escalation != Some(false) {
            let found = if sc.allow_privilege_escalation.is_some() {
                "true"
            } else {
                "unset"
            };
            self.add(
                Level::Restricted,
                "Privilege Escalation",
                format!("{base}.allowPrivilegeEscalation"),
                format!("{found}, must be false"),
            );
        }
        if sc.run_as_non_root == Some(false) {
            self.add(
                Level::Restricted,
                "Running as Non-root",
                format!("{base}.runAsNonRoot"),
                "false, must be true or unset",
            );
        }
        if sc.run_as_user == Some(0) {
            self.add(
                Level::Restricted,
                "Running as Non-root user",
                format!("{base}.runAsUser"),
                "0, must not be",
            );
        }
    }

    fn capabilities(&mut self, base: &str, caps: Option<&Capabilities>) {
        let added = caps.and_then(|c| c.add.as_deref()).unwrap_or_default();
        for (k, cap) in added.iter().enumerate() {
            let path = format!("{base}.capabilities.add[{k}]");
            if !BASELINE_CAPS.contains(&cap.as_str()) {
                self.add(
                    Level::Baseline,
                    "Capabilities",
                    path,
                    format!("{cap} is not in the baseline set"),
                );
            } else if cap != "NET_BIND_SERVICE" {
                self.add(
                    Level::Restricted,
                    "Capabilities",
                    path,
                    format!("{cap}; only NET_BIND_SERVICE may be added"),
                );
            }
        }
        let drops_all = caps
            .and_then(|c| c.drop.as_ref())
            .is_some_and(|d| d.iter().any(|c| c == "ALL"));
        if !drops_all {
            self.add(
                Level::Restricted,
                "Capabilities",
                format!("{base}.capabilities.drop"),
                "must include ALL",
            );
        }
    }

    /// Controls satisfied either on the pod or on every container.
    fn pod_wide_restricted(
        &mut self,
        psc: Option<&PodSecurityContext>,
        containers: &[ContainerView<'_>],
    ) {
        let pod_non_root = psc.and_then(|p| p.run_as_non_root) == Some(true);
        if !pod_non_root {
            for c in containers {
                if c.sc.and_then(|s| s.run_as_non_root).is_none() {
                    self.add(
                        Level::Restricted,
                        "Running as Non-root",
                        format!("{}.securityContext.runAsNonRoot", c.path),
                        "unset, and spec.securityContext.runAsNonRoot is not true",
                    );
                }
            }
        }
        let confined = |t: Option<&str>| matches!(t, Some("RuntimeDefault" | "Localhost"));
        let pod_seccomp = confined(
            psc.and_then(|p| p.seccomp_profile.as_ref())
                .map(|p| p.type_.as_str()),
        );
        if !pod_seccomp {
            for c in containers {
                let t =
                    c.sc.and_then(|s| s.seccomp_profile.as_ref())
                        .map(|p| p.type_.as_str());
                if t.is_none() {
                    self.add(
                        Level::Restricted,
                        "Seccomp",
                        format!("{}.securityContext.seccompProfile.type", c.path),
                        "unset, and spec.securityContext.seccompProfile.type is not RuntimeDefault or Localhost",
                    );
                }
            }
        }
    }

    fn apparmor_annotations(&mut self) {
        let Some(annotations) = self.annotations else {
            return;
        };
        for (key, value) in annotations {
            if let Some(container) = key.strip_prefix(APPARMOR_ANNOTATION)
                && value != "runtime/default"
                && !value.starts_with("localhost/")
            {
                self.add(
                    Level::Baseline,
                    "AppArmor",
                    format!("metadata.annotations[{key:?}]"),
                    format!("{value} for container {container}, must be runtime/default or localhost/<profile>"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
