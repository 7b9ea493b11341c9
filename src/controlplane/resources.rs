//! The resources the local control plane serves, as discovery lists them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// Empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Whether it has a /status subresource whose writes touch status only.
    pub status: bool,
    /// The groups discovery puts it in (`all`: what `kubectl get all` lists), as its
    /// kube-apiserver registry declares them.
    pub categories: &'static [&'static str],
}

const fn r(
    group: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
) -> Resource {
    Resource {
        group,
        version: "v1",
        plural,
        kind,
        namespaced,
        short_names,
        status,
        categories: &[],
    }
}

/// In the `all` category, as kube-apiserver 1.20's pods and services are.
const fn in_all(r: Resource) -> Resource {
    Resource {
        categories: &["all"],
        ..r
    }
}

pub const RESOURCES: &[Resource] = &[
    r("", "namespaces", "Namespace", false, &["ns"], true),
    r("", "nodes", "Node", false, &["no"], true),
    in_all(r("", "pods", "Pod", true, &["po"], true)),
    r("", "events", "Event", true, &["ev"], false),
    r("", "configmaps", "ConfigMap", true, &["cm"], false),
    r("", "secrets", "Secret", true, &[], false),
    in_all(r("", "services", "Service", true, &["svc"], true)),
    r("", "endpoints", "Endpoints", true, &["ep"], false),
    r(
        "",
        "serviceaccounts",
        "ServiceAccount",
        true,
        &["sa"],
        false,
    ),
    r("coordination.k8s.io", "leases", "Lease", true, &[], false),
    r("storage.k8s.io", "csinodes", "CSINode", false, &[], false),
    r(
        "storage.k8s.io",
        "csidrivers",
        "CSIDriver",
        false,
        &[],
        false,
    ),
    r(
        "node.k8s.io",
        "runtimeclasses",
        "RuntimeClass",
        false,
        &[],
        false,
    ),
];

impl Resource {
    /// `v1` or `group/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The store's name for it: the plural, qualified by the group.
    pub fn key(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The resource the store names `key` (see `key`).
    pub fn by_key(key: &str) -> Option<&'static Resource> {
        let (plural, group) = key.split_once('.').unwrap_or((key, ""));
        RESOURCES
            .iter()
            .find(|r| r.plural == plural && r.group == group)
    }

    pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
        RESOURCES
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }
}

/// The groups besides core, in discovery order.
pub fn groups() -> Vec<&'static str> {
    let mut g: Vec<&str> = RESOURCES
        .iter()
        .map(|r| r.group)
        .filter(|g| !g.is_empty())
        .collect();
    g.dedup();
    g
}
