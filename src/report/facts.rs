//! What the node is, in a few words, for `results.json`'s `node` object and the fleet report:
//! kernel release, distribution, container runtime, kubelet version, architecture.
//!
//! Taken first from what the run's tests found (their checks), so a fact costs nothing more
//! and says what the tests saw; what no test found is read from cheap files inside the root
//! (through the node's bounded reader), or left unknown. Nothing here connects to a runtime or
//! runs a binary.

use serde::{Deserialize, Serialize};

use crate::node::Node;
use crate::node::host;
use crate::runner::TestRecord;
use crate::suite::{CheckStatus, Verdict};

/// A container runtime as it names itself: `containerd` `1.7.24`, `docker` `27.5.1`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runtime {
    pub name: String,
    /// `None` when only the runtime's name is known.
    pub version: Option<String>,
}

/// The node's facts; each is `None` (`null` in JSON) when neither a test nor a cheap read told.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFacts {
    /// `uname -r`: `6.1.0-18-amd64`.
    pub kernel_release: Option<String>,
    /// os-release's `PRETTY_NAME`: `Debian GNU/Linux 12 (bookworm)`.
    pub os: Option<String>,
    pub container_runtime: Option<Runtime>,
    /// As the kubelet reports it in its Node object: `v1.33.2`.
    pub kubelet_version: Option<String>,
    /// As Kubernetes (GOARCH) names it: `amd64`, `arm64`, `arm`.
    pub architecture: Option<String>,
}

impl NodeFacts {
    /// Every fact known.
    pub fn complete(&self) -> bool {
        self.kernel_release.is_some()
            && self.os.is_some()
            && self.container_runtime.is_some()
            && self.kubelet_version.is_some()
            && self.architecture.is_some()
    }

    /// Fills what `self` lacks from `other`.
    pub fn or(mut self, other: NodeFacts) -> NodeFacts {
        self.kernel_release = self.kernel_release.or(other.kernel_release);
        self.os = self.os.or(other.os);
        self.container_runtime = self.container_runtime.or(other.container_runtime);
        self.kubelet_version = self.kubelet_version.or(other.kubelet_version);
        self.architecture = self.architecture.or(other.architecture);
        self
    }
}

// The tests and check items the facts come from (src/suite): a test's wording changing here
// without the other is caught by the unit tests below and tests/fleet_report.rs.
const KERNEL_TEST: &str = "the kernel release is a supported version";
const OS_TEST: &str = "the operating system is the one the spec names";
const CRI_TEST: &str = "the CRI runtime is ready";
const DOCKER_TEST: &str = "the Docker Engine reports its configuration";

/// The facts the run's tests found. A test that ran and recorded the fact counts, whatever
/// its verdict; skipped tests found nothing.
pub fn from_checks(records: &[TestRecord]) -> NodeFacts {
    let mut facts = NodeFacts::default();
    let (mut docker, mut managed_kubelet) = (None, None);
    for rec in records
        .iter()
        .filter(|r| r.outcome.verdict != Verdict::Skipped)
    {
        let name = rec.name.as_str();
        for check in &rec.outcome.checks {
            let (item, detail) = (check.item.as_str(), check.detail.as_str());
            if name.contains(KERNEL_TEST) && item == "KERNEL_VERSION" {
                facts.kernel_release = facts
                    .kernel_release
                    .or_else(|| first_word(detail).map(str::to_string));
            } else if name.contains(OS_TEST) && item == "DISTRIBUTION" && !detail.is_empty() {
                facts.os = facts.os.or_else(|| Some(detail.to_string()));
            } else if name.contains(CRI_TEST) && check.status == CheckStatus::Ok {
                // `<path>: <runtime name> <runtime version> (CRI ...)`, one per endpoint; the
                // condition checks (`... RuntimeReady`) say `true`.
                if let Some(rt) = cri_runtime(detail) {
                    facts.container_runtime = facts.container_runtime.or(Some(rt));
                }
            } else if name.contains(DOCKER_TEST) && item == "version" {
                // The kubelet's runtime is the CRI one when both answer; Docker otherwise.
                docker = docker.or_else(|| first_word(detail).map(str::to_string));
            } else if item == "kubelet version" {
                facts.kubelet_version = facts
                    .kubelet_version
                    .or_else(|| first_word(detail).map(str::to_string));
            } else if item == "kubelet" && detail.starts_with("kubelet ") {
                // A managed kubelet's description: `kubelet v1.20.2 (pid ...) from ...`.
                managed_kubelet = managed_kubelet.or_else(|| {
                    first_word(&detail["kubelet ".len()..])
                        .filter(|v| v.starts_with('v'))
                        .map(str::to_string)
                });
            } else if item == "kubernetes.io/arch" && check.status == CheckStatus::Ok {
                facts.architecture = Some(detail.to_string());
            }
        }
    }
    facts.container_runtime = facts.container_runtime.or_else(|| {
        docker.map(|v| Runtime {
            name: "docker".into(),
            version: Some(v),
        })
    });
    facts.kubelet_version = facts.kubelet_version.or(managed_kubelet);
    facts
}

fn first_word(text: &str) -> Option<&str> {
    text.split_whitespace().next()
}

fn cri_runtime(detail: &str) -> Option<Runtime> {
    let (_, rest) = detail.rsplit_once(": ")?;
    let mut words = rest.split_whitespace();
    let name = words.next()?;
    let version = words.next().filter(|v| !v.starts_with('('));
    Some(Runtime {
        name: name.to_string(),
        version: version.map(str::to_string),
    })
}

/// What the node's cheap files and the kernel say, for the facts `wanted` lacks: the kernel
/// release (`/proc/sys/kernel/osrelease` in the root, read once per run), os-release's
/// `PRETTY_NAME`, the installed kubelet package's version (dpkg's database) and the machine's
/// architecture (`uname`, a system call: the harness runs on the node it tests). The runtime
/// in use needs a connection to tell, so it is left unknown here.
pub fn from_node(node: &Node, wanted: &NodeFacts) -> NodeFacts {
    NodeFacts {
        kernel_release: match wanted.kernel_release {
            Some(_) => None,
            None => node.kernel_release().ok().map(str::to_string),
        },
        os: match wanted.os {
            Some(_) => None,
            None => host::distribution(&node.root),
        },
        container_runtime: None,
        kubelet_version: match wanted.kubelet_version {
            Some(_) => None,
            None => host::package_version(&node.root, "kubelet")
                .and_then(|(v, _)| kubernetes_version(&v)),
        },
        architecture: Some(
            go_arch(&rustix::system::uname().machine().to_string_lossy()).to_string(),
        ),
    }
}

/// A package's version as Kubernetes prints its own: `1.35.0-1.1` (or `1:1.35.0-1`) is
/// `v1.35.0`; `None` when it does not start with a number.
fn kubernetes_version(package: &str) -> Option<String> {
    let without_epoch = package.split_once(':').map_or(package, |(_, v)| v);
    let upstream = without_epoch.split('-').next()?;
    upstream
        .starts_with(|c: char| c.is_ascii_digit())
        .then(|| format!("v{upstream}"))
}

/// The architecture as Kubernetes labels it, from `uname -m`.
pub fn go_arch(machine: &str) -> &str {
    match machine {
        "x86_64" => "amd64",
        "aarch64" | "arm64" => "arm64",
        m if m.starts_with("arm") => "arm",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "i386" | "i486" | "i586" | "i686" => "386",
        m => m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::{Check, Outcome};
    use std::time::Duration;

    fn rec(name: &str, checks: &[(&str, CheckStatus, &str)]) -> TestRecord {
        TestRecord {
            name: format!("[sig-node] Area {name} [NodeConformance]"),
            area: "Area".into(),
            tags: vec![],
            selected: true,
            duration: Duration::ZERO,
            outcome: Outcome {
                verdict: Verdict::Passed,
                message: None,
                notes: vec![],
                checks: checks
                    .iter()
                    .map(|(item, status, detail)| Check {
                        item: item.to_string(),
                        status: *status,
                        detail: detail.to_string(),
                    })
                    .collect(),
                waited: Duration::ZERO,
            },
        }
    }

    #[test]
    fn facts_come_from_the_checks_tests_made() {
        let records = [
            rec(
                KERNEL_TEST,
                &[(
                    "KERNEL_VERSION",
                    CheckStatus::Ok,
                    r"6.1.0-18-amd64 (matches ^6\..*$)",
                )],
            ),
            rec(
                OS_TEST,
                &[
                    (
                        "DISTRIBUTION",
                        CheckStatus::Info,
                        "Debian GNU/Linux 12 (bookworm)",
                    ),
                    ("OS", CheckStatus::Ok, "Linux"),
                ],
            ),
            rec(
                DOCKER_TEST,
                &[("version", CheckStatus::Ok, "27.5.1 (API 1.47)")],
            ),
            rec(
                CRI_TEST,
                &[
                    (
                        "containerd",
                        CheckStatus::Ok,
                        "/run/containerd/containerd.sock: containerd 1.7.24 (CRI v1, v1)",
                    ),
                    ("containerd RuntimeReady", CheckStatus::Ok, "true"),
                ],
            ),
            rec(
                "a node registers and becomes Ready",
                &[
                    ("kubernetes.io/arch", CheckStatus::Ok, "arm64"),
                    ("kubelet version", CheckStatus::Info, "v1.33.2"),
                ],
            ),
        ];
        let facts = from_checks(&records);
        assert_eq!(facts.kernel_release.as_deref(), Some("6.1.0-18-amd64"));
        assert_eq!(facts.os.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(
            facts.container_runtime,
            Some(Runtime {
                name: "containerd".into(),
                version: Some("1.7.24".into())
            })
        );
        assert_eq!(facts.kubelet_version.as_deref(), Some("v1.33.2"));
        assert_eq!(facts.architecture.as_deref(), Some("arm64"));
    }

    #[test]
    fn docker_is_the_runtime_without_a_cri_one_and_a_managed_kubelet_gives_its_version() {
        let records = [
            rec(
                DOCKER_TEST,
                &[("version", CheckStatus::Ok, "27.5.1 (API 1.47)")],
            ),
            rec(
                "a mirror pod is created",
                &[(
                    "kubelet",
                    CheckStatus::Info,
                    "kubelet v1.20.2 (pid 42) from /usr/bin/kubelet, CRI endpoint ...",
                )],
            ),
        ];
        let facts = from_checks(&records);
        assert_eq!(
            facts.container_runtime,
            Some(Runtime {
                name: "docker".into(),
                version: Some("27.5.1".into())
            })
        );
        assert_eq!(facts.kubelet_version.as_deref(), Some("v1.20.2"));
        assert_eq!(facts.kernel_release, None);
    }

    #[test]
    fn skipped_tests_and_warnings_of_unlisted_kernels() {
        let mut skipped = rec(OS_TEST, &[("DISTRIBUTION", CheckStatus::Info, "X")]);
        skipped.outcome.verdict = Verdict::Skipped;
        let unlisted = rec(
            KERNEL_TEST,
            &[(
                "KERNEL_VERSION",
                CheckStatus::Warn,
                "4.18.0-553.el8 matches none of the supported versions",
            )],
        );
        let facts = from_checks(&[skipped, unlisted]);
        assert_eq!(facts.os, None);
        assert_eq!(facts.kernel_release.as_deref(), Some("4.18.0-553.el8"));
    }

    #[test]
    fn package_versions_are_written_as_kubernetes_writes_its_own() {
        assert_eq!(kubernetes_version("1.35.0-1.1").as_deref(), Some("v1.35.0"));
        assert_eq!(kubernetes_version("1:1.20.2-1").as_deref(), Some("v1.20.2"));
        assert_eq!(kubernetes_version("garbage"), None);
    }

    #[test]
    fn architectures_are_named_as_kubernetes_names_them() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("armv7l"), "arm");
    }
}
