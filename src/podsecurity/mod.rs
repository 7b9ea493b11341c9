//! Pod Security Standards as a pure function: a pod, a level and a policy version in, every
//! failed check out, worded as upstream words it, with the fields that fail it. No I/O, so the
//! static pod tests and the local control plane's admission share it.
//!
//! Follows the Pod Security Admission library (`k8s.io/pod-security-admission/policy`, the
//! checks registered up to Kubernetes 1.37): each check has revisions that start at a policy
//! version (`sysctls` at v1.0, v1.27, v1.29, v1.32 and v1.37, `runAsNonRoot` at v1.0 and v1.35,
//! ...); a pod evaluated at `level:vX.Y` runs, for every check of that level or below, the
//! newest revision not newer than vX.Y, minus the baseline checks a restricted revision
//! overrides. `latest` and any version past the newest revision mean the newest revision
//! ([`NEWEST`]), as `checkRegistry.EvaluatePod` clamps them.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::Pod;

mod checks;

/// The three levels, each allowing less than the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    /// `privileged`, `baseline` or `restricted` (upstream's `api.ParseLevel`, without its
    /// fallback: an unknown level is `None` here and the caller picks the fallback).
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

/// A policy version: `latest` or `v1.<minor>` (upstream's `api.Version`; only major version 1
/// exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `v1.<minor>`.
    V1(u32),
    /// The newest policy the library knows, whatever that is.
    Latest,
}

/// The newest policy version any check has a revision for: what `latest` evaluates as.
pub const NEWEST: u32 = 37;

impl Version {
    /// `latest` or `v1.N` with N a decimal without leading zeros (upstream's `api.ParseVersion`
    /// regexp `^v1\.([0-9]|[1-9][0-9]*)$`); anything else is `None` (upstream then falls back
    /// to `latest` and reports the label as invalid).
    pub fn parse(s: &str) -> Option<Self> {
        if s == "latest" {
            return Some(Self::Latest);
        }
        let minor = s.strip_prefix("v1.")?;
        if minor.is_empty()
            || !minor.bytes().all(|b| b.is_ascii_digit())
            || (minor.len() > 1 && minor.starts_with('0'))
        {
            return None;
        }
        minor.parse().ok().map(Self::V1)
    }

    /// The minor version whose checks are run: a version past [`NEWEST`], and `latest`, run
    /// the newest revisions.
    pub fn effective_minor(self) -> u32 {
        match self {
            Self::V1(m) => m.min(NEWEST),
            Self::Latest => NEWEST,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V1(m) => write!(f, "v1.{m}"),
            Self::Latest => f.write_str("latest"),
        }
    }
}

/// One field that fails a control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The level of the check this field fails (Baseline or Restricted).
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

/// One check that does not allow the pod, as upstream's `CheckResult` with `Allowed: false`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    /// Upstream's check ID: `allowPrivilegeEscalation`, `sysctls`, ...
    pub id: &'static str,
    /// The check's level.
    pub level: Level,
    /// Upstream's `ForbiddenReason`: `allowPrivilegeEscalation != false`.
    pub reason: String,
    /// Upstream's `ForbiddenDetail`: `container "app" must set
    /// securityContext.allowPrivilegeEscalation=false`.
    pub detail: String,
    /// The fields behind it.
    pub violations: Vec<Violation>,
}

/// A pod evaluated at one level and policy version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub level: Level,
    /// The version asked for (`latest`, `v1.30`, or a version past [`NEWEST`]).
    pub version: Version,
    /// Failed checks in upstream's order: baseline check IDs sorted, then restricted ones.
    pub failures: Vec<CheckFailure>,
}

impl Evaluation {
    pub fn allowed(&self) -> bool {
        self.failures.is_empty()
    }

    /// `restricted:v1.30`, as the admission messages name the policy.
    pub fn policy(&self) -> String {
        format!("{}:{}", self.level, self.version)
    }

    /// Upstream's `AggregateCheckResult.ForbiddenDetail`: `reason (detail), reason, ...`.
    pub fn forbidden_detail(&self) -> String {
        self.failures
            .iter()
            .map(|f| {
                if f.detail.is_empty() {
                    f.reason.clone()
                } else {
                    format!("{} ({})", f.reason, f.detail)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Evaluates `pod` at `level` under policy `version`, as upstream's `Evaluator.EvaluatePod`
/// with the default checks (privileged allows everything).
pub fn evaluate_at(pod: &Pod, level: Level, version: Version) -> Evaluation {
    let failures = match (&pod.spec, level) {
        (_, Level::Privileged) | (None, _) => Vec::new(),
        (Some(spec), _) => checks::run(
            &checks::PodView::new(pod.metadata.annotations.as_ref(), spec),
            level,
            version.effective_minor(),
        ),
    };
    Evaluation {
        level,
        version,
        failures,
    }
}

/// Every violated field at `latest`: the baseline evaluation's (level Baseline) and the
/// restricted evaluation's restricted checks' (level Restricted), so [`violations_at`] and
/// [`highest_level`] answer for the newest policy.
pub fn evaluate(pod: &Pod) -> Vec<Violation> {
    evaluate_version(pod, Version::Latest)
}

/// [`evaluate`] under a pinned policy version.
pub fn evaluate_version(pod: &Pod, version: Version) -> Vec<Violation> {
    let baseline = evaluate_at(pod, Level::Baseline, version);
    let restricted = evaluate_at(pod, Level::Restricted, version);
    baseline
        .failures
        .into_iter()
        .chain(
            restricted
                .failures
                .into_iter()
                .filter(|f| f.level == Level::Restricted),
        )
        .flat_map(|f| f.violations)
        .collect()
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

/// One mode's policy from a namespace's labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModePolicy {
    pub level: Level,
    pub version: Version,
}

impl fmt::Display for ModePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level, self.version)
    }
}

/// A namespace's `enforce`, `audit` and `warn` policies from its
/// `pod-security.kubernetes.io/<mode>[-version]` labels, as upstream's `api.PolicyToEvaluate`
/// with default `privileged:latest`: an unparsable enforce level is `restricted` (fail
/// closed), an unparsable audit or warn level `privileged` (fail open), an unparsable version
/// `latest`.
pub fn namespace_policy(
    labels: Option<&BTreeMap<String, String>>,
) -> [(&'static str, ModePolicy); 3] {
    let get = |key: String| labels.and_then(|l| l.get(&key)).map(String::as_str);
    ["enforce", "audit", "warn"].map(|mode| {
        let level = match get(format!("pod-security.kubernetes.io/{mode}")) {
            None => Level::Privileged,
            Some(s) => Level::parse(s).unwrap_or(if mode == "enforce" {
                Level::Restricted
            } else {
                Level::Privileged
            }),
        };
        let version = get(format!("pod-security.kubernetes.io/{mode}-version"))
            .map(|s| Version::parse(s).unwrap_or(Version::Latest))
            .unwrap_or(Version::Latest);
        (mode, ModePolicy { level, version })
    })
}

#[cfg(test)]
mod tests;
