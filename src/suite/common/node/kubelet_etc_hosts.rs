//! test/e2e/common/node/kubelet_etc_hosts.go (v1.30.2): "KubeletManagedEtcHosts".
//!
//! A pod of three containers (two see the kubelet's `/etc/hosts`, the third mounts the node's
//! over it) and a hostNetwork pod of two; each container also has the node's file at
//! `/etc/hosts-original`. Both files are read in each container through `pods/exec` (agnhost's
//! `cat` is the workload's `--cat`, its `pause` the workload's `--sleep`): the kubelet manages
//! the first pod's file unless the container mounts its own, and never the hostNetwork pod's.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    Container, HostPathVolumeSource, PodSecurityContext, PodSpec, Volume, VolumeMount,
};

use crate::suite::common::exec::succeeded;
use crate::suite::common::kit::container;
use crate::suite::functional::{ApiPod, Session, removal, session};
use crate::suite::{Context, Outcome, Recorder, Service, Test, describe};

const TAGS: &[&str] = &["LinuxOnly", "NodeConformance", "Conformance"];

const ETC_HOSTS: &str = "/etc/hosts";
const ETC_HOSTS_ORIGINAL: &str = "/etc/hosts-original";
/// What the kubelet's own `/etc/hosts` begins with.
const MANAGED_HEADER: &str = "# Kubernetes-managed hosts file.";
/// Upstream's workaround for files that show up late: retried for 30 s, every 100 ms.
const RETRY: Duration = Duration::from_secs(30);
const RETRY_EVERY: Duration = Duration::from_millis(100);

pub fn tests() -> Vec<Test> {
    vec![Test {
        area: "KubeletManagedEtcHosts",
        behaviour: "should test kubelet managed /etc/hosts file",
        tags: TAGS,
        needs: &[Service::ControlPlane],
        run: managed_etc_hosts,
        read_ahead: None,
        // Two pods started, five containers checked, two pods removed.
        budget: Some(|w| 2 * w.pod_start + 5 * RETRY + 2 * removal(w)),
    }]
}

/// Whether the kubelet manages a container's `/etc/hosts`, from it and the node's file as the
/// container sees them: it begins with the kubelet's header and differs from the node's.
/// `None` while either is still empty.
pub fn is_managed(hosts: &str, original: &str) -> Option<bool> {
    if hosts.is_empty() || original.is_empty() {
        return None;
    }
    Some(hosts.starts_with(MANAGED_HEADER) && hosts != original)
}

/// Upstream's failure when the retries run out without the expected answer.
pub fn failure(expected_managed: bool, container: &str, retries: u32, hosts: &str) -> String {
    if expected_managed {
        format!(
            "/etc/hosts file should be kubelet managed (name: {container}, retries: {retries}). /etc/hosts contains {hosts:?}"
        )
    } else {
        format!(
            "/etc/hosts file should no be kubelet managed (name: {container}, retries: {retries}). /etc/hosts contains {hosts:?}"
        )
    }
}

/// An agnhost `pause` container: the workload sleeping, with `mounts` of the node's file.
fn pausing(s: &Session<'_>, name: &str, mounts: &[&str]) -> Result<Container, String> {
    let mut c = container(s, name, &["--sleep", "3600"])?;
    let extra = mounts.iter().map(|path| VolumeMount {
        name: "host-etc-hosts".into(),
        mount_path: (*path).to_string(),
        ..Default::default()
    });
    c.volume_mounts.get_or_insert_with(Vec::new).extend(extra);
    Ok(c)
}

fn node_etc_hosts() -> Volume {
    Volume {
        name: "host-etc-hosts".into(),
        host_path: Some(HostPathVolumeSource {
            path: ETC_HOSTS.into(),
            type_: Some("FileOrCreate".into()),
        }),
        ..Default::default()
    }
}

/// Created and Running (`CreateSync`).
fn create_sync<'a>(s: &'a Session<'a>, prefix: &str, spec: PodSpec) -> Result<ApiPod<'a>, String> {
    let pod = ApiPod::create_spec(s, prefix, spec)?;
    pod.wait_running()?;
    Ok(pod)
}

/// Reads both files in `name` of `pod` until the kubelet's management of `/etc/hosts` is
/// `expected`, for up to 30 s; an exec that fails fails at once, as upstream's does.
fn assert_managed(pod: &ApiPod<'_>, name: &str, expected: bool) -> Result<String, String> {
    let read = |path: &str| {
        succeeded(
            pod.exec(name, &["--cat", path]),
            &format!("cat {path} in pod {}, container {name}", pod.name),
        )
    };
    let start = Instant::now();
    let mut retries = 0;
    let mut hosts;
    loop {
        hosts = read(ETC_HOSTS)?;
        let original = read(ETC_HOSTS_ORIGINAL)?;
        if is_managed(&hosts, &original) == Some(expected) {
            let how = if expected { "managed" } else { "not managed" };
            return Ok(format!("{}/{name}: {how}", pod.name));
        }
        retries += 1;
        if start.elapsed() >= RETRY {
            return Err(failure(expected, name, retries, &hosts));
        }
        std::thread::sleep(RETRY_EVERY);
    }
}

fn managed_etc_hosts(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let pod = [
        ("busybox-1", &[ETC_HOSTS_ORIGINAL][..]),
        ("busybox-2", &[ETC_HOSTS_ORIGINAL][..]),
        ("busybox-3", &[ETC_HOSTS_ORIGINAL, ETC_HOSTS][..]),
    ]
    .iter()
    .map(|(name, mounts)| pausing(&s, name, mounts))
    .collect::<Result<Vec<_>, _>>()
    .and_then(|containers| {
        create_sync(
            &s,
            "test-pod",
            PodSpec {
                containers,
                volumes: Some(vec![node_etc_hosts()]),
                ..Default::default()
            },
        )
    });
    let pod = match pod {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    let host_network = ["busybox-1", "busybox-2"]
        .iter()
        .map(|name| pausing(&s, name, &[ETC_HOSTS_ORIGINAL]))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|containers| {
            create_sync(
                &s,
                "test-host-network-pod",
                PodSpec {
                    containers,
                    host_network: Some(true),
                    security_context: Some(PodSecurityContext::default()),
                    volumes: Some(vec![node_etc_hosts()]),
                    ..Default::default()
                },
            )
        });
    let host_network = match host_network {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    for (p, name, expected, step) in [
        (&pod, "busybox-1", true, "hostNetwork=false"),
        (&pod, "busybox-2", true, "hostNetwork=false"),
        (&pod, "busybox-3", false, "own /etc/hosts mount"),
        (&host_network, "busybox-1", false, "hostNetwork=true"),
        (&host_network, "busybox-2", false, "hostNetwork=true"),
    ] {
        match assert_managed(p, name, expected) {
            Ok(d) => r.ok(step, d),
            Err(e) => return r.fail_now(e),
        }
    }
    r.finish(describe)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "127.0.0.1 localhost\n";
    const KUBELET: &str =
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n10.88.0.5\ttest-pod\n";

    #[test]
    fn the_kubelets_file_is_told_from_the_nodes() {
        assert_eq!(is_managed(KUBELET, NODE), Some(true));
        assert_eq!(is_managed(NODE, NODE), Some(false));
        // The header alone is not enough: the node's own file may carry it.
        assert_eq!(is_managed(KUBELET, KUBELET), Some(false));
        assert_eq!(is_managed("", NODE), None);
        assert_eq!(is_managed(KUBELET, ""), None);
    }

    #[test]
    fn the_failure_says_which_way_it_was_wrong() {
        assert!(failure(true, "busybox-1", 3, NODE).starts_with(
            "/etc/hosts file should be kubelet managed (name: busybox-1, retries: 3)"
        ));
        assert!(failure(false, "busybox-3", 1, KUBELET).contains("should no be kubelet managed"));
    }
}
