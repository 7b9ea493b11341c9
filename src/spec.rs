//! The system spec: what a node's OS, kernel, cgroups and tools must provide.
//!
//! The field names follow the YAML spec files of k8s.io/system-validators (`os`, `kernelSpec`,
//! `cgroups`, `cgroupsV2`, ...) so a spec written for kubeadm's preflight check loads here too.
//! `kernelSpec.requiredCgroupsV1|V2` and `optionalCgroupsV1|V2` (options needed only under one
//! cgroup version) and `versionsNote` are upstream's since system-validators v1.11.1; one
//! extension: `executables`.

use std::path::Path;

use regex_lite::Regex;
use serde::{Deserialize, Serialize};

/// One named requirement: a kernel option (without `CONFIG_`) or an executable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

impl Item {
    fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            aliases: Vec::new(),
            description: String::new(),
        }
    }
    fn with(name: &str, aliases: &[&str], description: &str) -> Self {
        Self {
            name: name.into(),
            aliases: aliases.iter().map(|a| (*a).into()).collect(),
            description: description.into(),
        }
    }
    /// The name followed by its aliases, in the order they are tried.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KernelSpec {
    /// Regular expressions; a kernel release matching none is warned about.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Said with that warning.
    #[serde(
        default,
        rename = "versionsNote",
        skip_serializing_if = "String::is_empty"
    )]
    pub versions_note: String,
    #[serde(default)]
    pub required: Vec<Item>,
    #[serde(default)]
    pub optional: Vec<Item>,
    #[serde(default)]
    pub forbidden: Vec<Item>,
    /// Required only on a node whose cgroups are version 1.
    #[serde(default, rename = "requiredCgroupsV1")]
    pub required_cgroups_v1: Vec<Item>,
    /// Required only on a node whose cgroups are version 2.
    #[serde(default, rename = "requiredCgroupsV2")]
    pub required_cgroups_v2: Vec<Item>,
    /// Optional only on a node whose cgroups are version 1.
    #[serde(default, rename = "optionalCgroupsV1")]
    pub optional_cgroups_v1: Vec<Item>,
    /// Optional only on a node whose cgroups are version 2.
    #[serde(default, rename = "optionalCgroupsV2")]
    pub optional_cgroups_v2: Vec<Item>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutableSpec {
    #[serde(default)]
    pub required: Vec<Item>,
    #[serde(default)]
    pub optional: Vec<Item>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SysSpec {
    /// The kernel's name as uname reports it (`Linux`).
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub kernel_spec: KernelSpec,
    #[serde(default)]
    pub cgroups: Vec<String>,
    #[serde(default)]
    pub cgroups_optional: Vec<String>,
    #[serde(default, rename = "cgroupsV2")]
    pub cgroups_v2: Vec<String>,
    #[serde(default, rename = "cgroupsV2Optional")]
    pub cgroups_v2_optional: Vec<String>,
    #[serde(default)]
    pub executables: ExecutableSpec,
    // Accepted so upstream spec files load; not checked, since the kubelet talks CRI and package
    // versions are the distribution's business.
    #[serde(default, skip_serializing)]
    runtime_spec: Option<serde::de::IgnoredAny>,
    #[serde(default, skip_serializing)]
    package_specs: Option<serde::de::IgnoredAny>,
    #[serde(default, skip_serializing)]
    package_spec_overrides: Option<serde::de::IgnoredAny>,
}

/// A spec file that could not be used; the message names the file and the field.
#[derive(Debug, thiserror::Error)]
#[error("system spec {file}: {message}")]
pub struct SpecError {
    pub file: String,
    pub message: String,
}

impl SysSpec {
    /// The k8s.io/system-validators release whose defaults [`SysSpec::builtin`] follows.
    pub const SYSTEM_VALIDATORS: &'static str = "v1.12.1";

    /// The built-in spec: the defaults of k8s.io/system-validators v1.12.1 (`DefaultSysSpec` in
    /// validators/types_unix.go, the release kubeadm 1.35 vendors) plus kubeadm's executables.
    /// Since v1.11.1 the cgroup options are split by cgroup version (`requiredCgroupsV1|V2`,
    /// with upstream's descriptions) and `CGROUP_HUGETLB` is no longer among the optional
    /// options. Upstream's nftables validator (`nftables: true`, not part of any release up to
    /// v1.12.1 and off in `DefaultSysSpec`) is not followed.
    pub fn builtin() -> Self {
        let items = |names: &[&str]| names.iter().map(|n| Item::new(n)).collect::<Vec<_>>();
        let strings = |names: &[&str]| names.iter().map(|n| (*n).to_string()).collect::<Vec<_>>();
        let mut required = items(&[
            "NAMESPACES",
            "NET_NS",
            "PID_NS",
            "IPC_NS",
            "UTS_NS",
            "CPUSETS",
            "MEMCG",
            "INET",
            "EXT4_FS",
            "PROC_FS",
        ]);
        required.push(Item::with(
            "NETFILTER_XT_TARGET_REDIRECT",
            &["IP_NF_TARGET_REDIRECT"],
            "",
        ));
        required.extend(items(&["NETFILTER_XT_MATCH_COMMENT", "FAIR_GROUP_SCHED"]));
        Self {
            os: "Linux".into(),
            kernel_spec: KernelSpec {
                versions: strings(&[
                    r"^5\.4.*$",
                    r"^5\.10.*$",
                    r"^5\.15.*$",
                    r"^([6-9]|[1-9][0-9]+)\.([0-9]+)\.([0-9]+).*$",
                ]),
                versions_note:
                    "Supported LTS versions from the 5.x series are 5.4, 5.10 and 5.15. \
                                Any 6.x version is also supported. For cgroups v2 support, the \
                                recommended version is 5.10 or newer"
                        .into(),
                required,
                optional: vec![
                    Item::with("OVERLAY_FS", &["OVERLAYFS_FS"], "Required for overlayfs."),
                    Item::with("AUFS_FS", &[], "Required for aufs."),
                    Item::with("BLK_DEV_DM", &[], "Required for devicemapper."),
                    Item::with("CFS_BANDWIDTH", &[], "Required for CPU quota."),
                    Item::with("SECCOMP", &[], "Required for seccomp."),
                    Item::with("SECCOMP_FILTER", &[], "Required for seccomp mode 2."),
                ],
                forbidden: Vec::new(),
                required_cgroups_v1: vec![
                    Item::with("CGROUPS", &[], "Required for cgroups."),
                    Item::with(
                        "CGROUP_CPUACCT",
                        &[],
                        "Required for cpuacct controller, used in simple CPU accounting controller.",
                    ),
                    Item::with("CGROUP_DEVICE", &[], "Required for device controller."),
                    Item::with("CGROUP_FREEZER", &[], "Required for freezer controller."),
                    Item::with("CGROUP_PIDS", &[], "Required for PIDs controller."),
                    Item::with("CGROUP_SCHED", &[], "Required for CPU controller."),
                ],
                required_cgroups_v2: vec![
                    Item::with("CGROUPS", &[], "Required for cgroups."),
                    Item::with(
                        "CGROUP_BPF",
                        &[],
                        "Required for eBPF programs attached to cgroups, used in device controller.",
                    ),
                    Item::with("CGROUP_PIDS", &[], "Required for PIDs controller."),
                    Item::with("CGROUP_SCHED", &[], "Required for CPU controller."),
                ],
                optional_cgroups_v1: Vec::new(),
                optional_cgroups_v2: Vec::new(),
            },
            cgroups: strings(&[
                "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids",
            ]),
            cgroups_optional: strings(&["hugetlb", "blkio"]),
            cgroups_v2: strings(&["cpu", "cpuset", "devices", "freezer", "memory", "pids"]),
            cgroups_v2_optional: strings(&["hugetlb", "io"]),
            executables: ExecutableSpec {
                required: items(&["ip", "iptables", "mount", "nsenter"]),
                optional: vec![
                    Item::with(
                        "conntrack",
                        &[],
                        "Required by kube-proxy and kubeadm before 1.32.",
                    ),
                    Item::with("ebtables", &[], "Used by some network plugins."),
                    Item::with("ethtool", &[], "Used by some network plugins."),
                    Item::with(
                        "socat",
                        &[],
                        "Required for kubectl port-forward on some runtimes.",
                    ),
                    Item::with("tc", &[], "Used for bandwidth shaping."),
                    Item::with("touch", &[], "Used by kubeadm."),
                ],
            },
            runtime_spec: None,
            package_specs: None,
            package_spec_overrides: None,
        }
    }

    /// Reads a YAML (or JSON) spec file that replaces the built-in spec.
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let file = path.display().to_string();
        let text =
            crate::node::rootfs::read_local_string(path, crate::node::rootfs::FileKind::Config)
                .map_err(|e| SpecError {
                    file: file.clone(),
                    message: format!("cannot read: {}", e.reason()),
                })?;
        Self::parse(&text, &file)
    }

    /// Parses spec text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, SpecError> {
        let err = |message: String| SpecError {
            file: file.to_string(),
            message,
        };
        if text.trim().is_empty() {
            return Err(err("the file is empty".into()));
        }
        // serde_path_to_error names the field (`kernelSpec.required[2].name`); serde-saphyr
        // gives the line and column.
        let mut field = String::new();
        let options = crate::node::yaml::options(crate::node::yaml::CONFIG_NODES);
        let spec: Self =
            serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
                serde_path_to_error::deserialize(de).map_err(|e| {
                    field = e.path().to_string();
                    e.into_inner()
                })
            })
            .map_err(|e| {
                let detail = one_line(&e.without_snippet().to_string());
                let detail = detail.strip_prefix("error: ").unwrap_or(&detail);
                match field.as_str() {
                    "" | "." => err(detail.to_string()),
                    f => err(format!("{f}: {detail}")),
                }
            })?;
        spec.validate().map_err(err)?;
        Ok(spec)
    }

    fn validate(&self) -> Result<(), String> {
        for (i, v) in self.kernel_spec.versions.iter().enumerate() {
            Regex::new(v).map_err(|e| {
                format!(
                    "kernelSpec.versions[{i}]: {v:?} is not a valid regular expression: {}",
                    one_line(&e.to_string())
                )
            })?;
        }
        let k = &self.kernel_spec;
        let lists = [
            ("kernelSpec.required", &k.required),
            ("kernelSpec.optional", &k.optional),
            ("kernelSpec.forbidden", &k.forbidden),
            ("kernelSpec.requiredCgroupsV1", &k.required_cgroups_v1),
            ("kernelSpec.requiredCgroupsV2", &k.required_cgroups_v2),
            ("executables.required", &self.executables.required),
            ("executables.optional", &self.executables.optional),
        ];
        for (field, items) in lists {
            for (i, item) in items.iter().enumerate() {
                if item.names().any(|n| n.trim().is_empty()) {
                    return Err(format!("{field}[{i}]: names and aliases must not be empty"));
                }
                if field.starts_with("kernelSpec") && item.names().any(|n| n.starts_with("CONFIG_"))
                {
                    return Err(format!(
                        "{field}[{i}].name: write {:?} without the CONFIG_ prefix",
                        item.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// The compiled kernel version patterns (validated on load).
    pub fn kernel_versions(&self) -> Vec<Regex> {
        self.kernel_spec
            .versions
            .iter()
            .filter_map(|v| Regex::new(v).ok())
            .collect()
    }

    /// Sections of an upstream spec file that were read but are not checked here.
    pub fn ignored_sections(&self) -> Vec<&'static str> {
        [
            ("runtimeSpec", self.runtime_spec.is_some()),
            ("packageSpecs", self.package_specs.is_some()),
            (
                "packageSpecOverrides",
                self.package_spec_overrides.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
    }

    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).unwrap_or_else(|e| format!("# cannot render the spec: {e}\n"))
    }
}

/// Error texts from parsers span lines (snippets with carets); a usage error is one line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_cgroup_version_fields_load() {
        let spec = SysSpec::parse(
            "os: Linux\nkernelSpec:\n  versions: ['^6\\..*$']\n  versionsNote: Any 6.x.\n  \
             requiredCgroupsV2:\n  - name: CGROUP_BPF\n  optionalCgroupsV1:\n  - name: CGROUP_HUGETLB\n  \
             optionalCgroupsV2:\n  - name: CGROUP_HUGETLB\n",
            "upstream.yaml",
        )
        .unwrap();
        assert_eq!(spec.kernel_spec.versions_note, "Any 6.x.");
        assert_eq!(
            spec.kernel_spec.optional_cgroups_v2[0].name,
            "CGROUP_HUGETLB"
        );
        assert_eq!(SysSpec::SYSTEM_VALIDATORS, "v1.12.1");
    }

    /// Every default of system-validators v1.12.1's `DefaultSysSpec` (validators/types_unix.go).
    #[test]
    fn builtin_is_system_validators_default_sys_spec() {
        let spec = SysSpec::builtin();
        let names = |items: &[Item]| items.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
        let k = &spec.kernel_spec;
        assert_eq!(spec.os, "Linux");
        assert_eq!(
            k.versions,
            [
                r"^5\.4.*$",
                r"^5\.10.*$",
                r"^5\.15.*$",
                r"^([6-9]|[1-9][0-9]+)\.([0-9]+)\.([0-9]+).*$"
            ]
        );
        assert_eq!(
            names(&k.required),
            [
                "NAMESPACES",
                "NET_NS",
                "PID_NS",
                "IPC_NS",
                "UTS_NS",
                "CPUSETS",
                "MEMCG",
                "INET",
                "EXT4_FS",
                "PROC_FS",
                "NETFILTER_XT_TARGET_REDIRECT",
                "NETFILTER_XT_MATCH_COMMENT",
                "FAIR_GROUP_SCHED"
            ]
        );
        assert_eq!(k.required[10].aliases, ["IP_NF_TARGET_REDIRECT"]);
        assert_eq!(
            names(&k.required_cgroups_v1),
            [
                "CGROUPS",
                "CGROUP_CPUACCT",
                "CGROUP_DEVICE",
                "CGROUP_FREEZER",
                "CGROUP_PIDS",
                "CGROUP_SCHED"
            ]
        );
        assert_eq!(
            names(&k.required_cgroups_v2),
            ["CGROUPS", "CGROUP_BPF", "CGROUP_PIDS", "CGROUP_SCHED"]
        );
        assert_eq!(
            k.required_cgroups_v2[1].description,
            "Required for eBPF programs attached to cgroups, used in device controller."
        );
        assert_eq!(
            names(&k.optional),
            [
                "OVERLAY_FS",
                "AUFS_FS",
                "BLK_DEV_DM",
                "CFS_BANDWIDTH",
                "SECCOMP",
                "SECCOMP_FILTER"
            ]
        );
        assert!(k.forbidden.is_empty() && k.optional_cgroups_v1.is_empty());
        assert!(k.optional_cgroups_v2.is_empty());
        assert_eq!(
            spec.cgroups,
            [
                "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids"
            ]
        );
        assert_eq!(spec.cgroups_optional, ["hugetlb", "blkio"]);
        assert_eq!(
            spec.cgroups_v2,
            ["cpu", "cpuset", "devices", "freezer", "memory", "pids"]
        );
        assert_eq!(spec.cgroups_v2_optional, ["hugetlb", "io"]);
    }

    #[test]
    fn builtin_round_trips_through_yaml() {
        let spec = SysSpec::builtin();
        let yaml = spec.to_yaml();
        let back = SysSpec::parse(&yaml, "default.yaml").unwrap();
        assert_eq!(back, spec);
        assert_eq!(spec.kernel_versions().len(), 4);
    }

    #[test]
    fn upstream_spec_files_load() {
        let text = r#"
os: Linux
kernelSpec:
  versions: ['^4\.19.*$']
  required:
  - name: NAMESPACES
  - name: NETFILTER_XT_TARGET_REDIRECT
    aliases: [IP_NF_TARGET_REDIRECT]
  optional:
  - {name: AUFS_FS, description: Required for aufs.}
  forbidden: []
cgroups: [cpu, memory]
cgroupsOptional: [hugetlb]
runtimeSpec:
  dockerSpec:
    version: ['18\.09\..*']
packageSpecs:
- name: containerd
  versionRange: '>=1.2'
"#;
        let spec = SysSpec::parse(text, "gke.yaml").unwrap();
        assert_eq!(
            spec.kernel_spec.required[1].aliases,
            vec!["IP_NF_TARGET_REDIRECT"]
        );
        assert_eq!(spec.cgroups, vec!["cpu", "memory"]);
        assert_eq!(spec.ignored_sections(), vec!["runtimeSpec", "packageSpecs"]);
        assert!(spec.executables.required.is_empty());
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let cases = [
            ("os: Linux\nkernelSpec:\n  versionz: []\n", "versionz"),
            ("kernelSpec:\n  required:\n  - nam: X\n", "nam"),
            ("kernelSpec:\n  versions: ['(']\n", "kernelSpec.versions[0]"),
            (
                "kernelSpec:\n  required:\n  - name: CONFIG_X\n",
                "kernelSpec.required[0].name",
            ),
            ("cgroups: 5\n", "cgroups: expected sequence"),
            ("", "empty"),
            ("os: [\n", "spec.yaml"),
        ];
        for (text, want) in cases {
            let err = SysSpec::parse(text, "spec.yaml").unwrap_err().to_string();
            assert!(err.starts_with("system spec spec.yaml: "), "{err}");
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
