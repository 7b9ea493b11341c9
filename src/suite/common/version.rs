//! Kubelet versions, for tests of features newer than the kubelet under test: such a test
//! skips, naming the version it needs and the version it found, as upstream's
//! `[MinimumKubeletVersion:X]` tag and feature gates make a test skip (test/e2e/framework
//! `SkipUnlessKubeletVersionAtLeast`-style checks compare the node's
//! `status.nodeInfo.kubeletVersion`).

use std::fmt;

use serde_json::Value;

use crate::suite::Outcome;
use crate::suite::functional::Session;

/// A kubelet's release as major.minor.patch; pre-release and build suffixes (`-rc.1`,
/// `+k3s1`, `-gke.100`) are ignored, as a feature lands in a minor release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubeletVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KubeletVersion {
    /// Reads `v1.20.2`, `1.27`, `v1.30.0-alpha.1+abc`. Errors name what was given.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a kubelet version (want v<major>.<minor>[.<patch>])");
        let core = text.strip_prefix('v').unwrap_or(text);
        let core = core.split(['-', '+']).next().unwrap_or(core);
        let mut parts = core.split('.');
        let mut number = |required: bool| -> Result<u32, String> {
            match parts.next() {
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                    p.parse().map_err(|_| bad())
                }
                None if !required => Ok(0),
                _ => Err(bad()),
            }
        };
        let v = Self {
            major: number(true)?,
            minor: number(true)?,
            patch: number(false)?,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(v)
    }
}

impl fmt::Display for KubeletVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The skip a test of `feature` gives when it needs kubelet `min` and runs against `found`;
/// `None` when `found` is new enough.
pub fn too_old(found: KubeletVersion, min: KubeletVersion, feature: &str) -> Option<String> {
    (found < min).then(|| {
        format!(
            "needs kubelet v{}.{} or newer ({feature}); the kubelet under test is {found}",
            min.major, min.minor
        )
    })
}

/// The version the node's kubelet reports in its Node object (`status.nodeInfo.kubeletVersion`),
/// once the kubelet has registered it.
pub(crate) fn kubelet_version(s: &Session<'_>) -> Result<KubeletVersion, String> {
    let node = crate::suite::functional::registered_node(s)?;
    let text = node
        .pointer("/status/nodeInfo/kubeletVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("node {} reports no kubeletVersion", s.node))?;
    KubeletVersion::parse(text)
}

/// Skips (as an `Err` outcome) when the kubelet under test is older than `min`
/// (`"1.27"`); a version that cannot be read fails, naming why.
pub(crate) fn require_kubelet(s: &Session<'_>, min: &str, feature: &str) -> Result<(), Outcome> {
    let min = KubeletVersion::parse(min).map_err(Outcome::failed)?;
    let found = kubelet_version(s).map_err(Outcome::failed)?;
    match too_old(found, min, feature) {
        Some(why) => Err(Outcome::skipped(why)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> KubeletVersion {
        KubeletVersion::parse(s).unwrap()
    }

    #[test]
    fn reads_what_kubelets_report() {
        assert_eq!(
            v("v1.20.2"),
            KubeletVersion {
                major: 1,
                minor: 20,
                patch: 2
            }
        );
        assert_eq!(v("v1.30.0-alpha.1+abc").minor, 30);
        assert_eq!(v("v1.27.3-gke.100").patch, 3);
        assert_eq!(v("v1.28.2+k3s1").minor, 28);
        assert_eq!(v("1.27"), v("v1.27.0"));
        for bad in ["", "v", "v1", "vx.y", "v1.2.3.4", "v1..2", "v1.-2", "1.2a"] {
            assert!(KubeletVersion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_older_kubelet_skips_naming_both_versions() {
        let why = too_old(
            v("v1.20.2"),
            v("1.27"),
            "pods deleted with a terminal phase",
        )
        .unwrap();
        assert_eq!(
            why,
            "needs kubelet v1.27 or newer (pods deleted with a terminal phase); the kubelet under test is v1.20.2"
        );
        assert_eq!(too_old(v("v1.27.0"), v("1.27"), "x"), None);
        assert_eq!(too_old(v("v1.30.2"), v("1.27"), "x"), None);
        assert!(too_old(v("v1.26.15"), v("1.27"), "x").is_some());
        assert!(too_old(v("v0.99.0"), v("1.1"), "x").is_some());
    }
}
