//! test/e2e_node/log_path_test.go (kubernetes c1cf94e9): "ContainerLogPath", a container's
//! log is where the kubelet promises it: the symlink in /var/log/containers named
//! `<pod>_<namespace>_<container>-<container id>.log` and the CRI log file
//! `/var/log/pods/<namespace>_<pod>_<pod uid>/<container>/0.log`. A second pod mounts the
//! expected path from the node and waits until it holds the first pod's output.
//!
//! Upstream mounts the path with type FileOrCreate, which leaves an empty file on the node
//! where the kubelet wrote none; here the type is File, so a missing log fails the mount
//! (and the test) without creating anything.

use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, PodSpec, SELinuxOptions, SecurityContext, Volume, VolumeMount,
};
use serde_json::Value;

use crate::suite::common::kit::container;
use crate::suite::common::output::{Matching, container_output};
use crate::suite::functional::{ApiPod, Session, Waits, removal, session};
use crate::suite::{Context, Outcome, Recorder, Service, Test, describe};

const AREA: &str = "ContainerLogPath [NodeConformance]";
const LOG: &str = "This is the expected log content of this node e2e test";
const LOG_CONTAINER: &str = "logger";
/// The kubelet's `ContainerLogsDir` and the CRI's pod log root (pkg/kubelet).
const CONTAINER_LOGS_DIR: &str = "/var/log/containers";
const POD_LOGS_DIR: &str = "/var/log/pods";

pub fn tests() -> Vec<Test> {
    let t = |behaviour, run| Test {
        area: AREA,
        behaviour,
        tags: &[],
        needs: &[Service::ControlPlane],
        run,
        read_ahead: None,
        budget: Some(|w: &Waits| 2 * w.pod_start + 2 * removal(w)),
    };
    vec![
        t(
            "Pod with a container printed log to stdout should print log to correct log path",
            log_path,
        ),
        t(
            "Pod with a container printed log to stdout should print log to correct cri log path",
            cri_log_path,
        ),
    ]
}

/// The symlink the kubelet makes for a container's log.
pub fn container_log_path(
    pod: &str,
    namespace: &str,
    container: &str,
    container_id: &str,
) -> Result<String, String> {
    // kubecontainer.ParseContainerID: `<runtime>://<id>`.
    let id = container_id
        .split_once("://")
        .map(|(_, id)| id)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| format!("containerID {container_id:?} is not <runtime>://<id>"))?;
    Ok(format!(
        "{CONTAINER_LOGS_DIR}/{pod}_{namespace}_{container}-{id}.log"
    ))
}

/// The CRI log file of a container's first run.
pub fn cri_log_file(namespace: &str, pod: &str, uid: &str, container: &str) -> String {
    format!("{POD_LOGS_DIR}/{namespace}_{pod}_{uid}/{container}/0.log")
}

/// Upstream's BeforeEach: the pod that logs, run to success; its object.
fn log_pod<'a>(s: &'a Session<'a>) -> Result<(ApiPod<'a>, Value), String> {
    let c = container(s, LOG_CONTAINER, &["--stdout", LOG])?;
    let pod = ApiPod::create_spec(
        s,
        "log-pod",
        PodSpec {
            restart_policy: Some("Never".into()),
            containers: vec![c],
            ..Default::default()
        },
    )?;
    container_output(&pod, LOG_CONTAINER, &[LOG.to_string()], Matching::Substring)
        .map_err(|e| format!("the log pod: {e}"))?;
    let object = s
        .api
        .get(&pod.path())
        .map_err(|e| e.to_string())?
        .ok_or("the log pod is gone")?;
    Ok((pod, object))
}

/// The pod that mounts `path` from the node and succeeds once it holds the log.
fn check(s: &Session<'_>, prefix: &str, path: &str) -> Result<String, String> {
    let name = crate::suite::common::kit::unique(prefix);
    let mut c = container(s, &name, &["--await-content", path, LOG])?;
    c.security_context = Some(SecurityContext {
        se_linux_options: Some(SELinuxOptions {
            type_: Some("container_logreader_t".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    c.volume_mounts
        .get_or_insert_with(Vec::new)
        .push(VolumeMount {
            name: "logdir".into(),
            mount_path: path.into(),
            read_only: Some(true),
            ..Default::default()
        });
    let pod = ApiPod::create_spec(
        s,
        prefix,
        PodSpec {
            restart_policy: Some("Never".into()),
            containers: vec![c],
            volumes: Some(vec![Volume {
                name: "logdir".into(),
                host_path: Some(HostPathVolumeSource {
                    path: path.into(),
                    type_: Some("File".into()),
                }),
                ..Default::default()
            }]),
            ..Default::default()
        },
    )?;
    container_output(&pod, &name, &[format!("{path} holds")], Matching::Substring)
        .map(|_| format!("{path} holds the log"))
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Result<&'v str, String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the log pod has no {pointer}"))
}

/// Upstream's BeforeEach and one It: the log pod, then the check of the path `expected` makes
/// of the log pod's name and object, reported as `item`.
fn logged_at(
    ctx: &Context,
    prefix: &str,
    item: &str,
    expected: impl FnOnce(&str, &str, &Value) -> Result<String, String>,
) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let (pod, object) = match log_pod(&s) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    match expected(&pod.name, &s.namespace, &object).and_then(|p| check(&s, prefix, &p)) {
        Ok(d) => r.ok(item, d),
        Err(e) => r.fail(item, e),
    }
    r.finish(describe)
}

fn log_path(ctx: &Context) -> Outcome {
    logged_at(ctx, "log-check", "log path", |pod, ns, object| {
        str_at(object, "/status/containerStatuses/0/containerID")
            .and_then(|id| container_log_path(pod, ns, LOG_CONTAINER, id))
    })
}

fn cri_log_path(ctx: &Context) -> Outcome {
    logged_at(ctx, "log-cri-check", "CRI log path", |pod, ns, object| {
        str_at(object, "/metadata/uid").map(|uid| cri_log_file(ns, pod, uid, LOG_CONTAINER))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_the_kubelets() {
        assert_eq!(
            container_log_path("log-pod-1", "ns", "logger", "containerd://abc123").unwrap(),
            "/var/log/containers/log-pod-1_ns_logger-abc123.log"
        );
        assert_eq!(
            container_log_path("p", "ns", "c", "docker://f00").unwrap(),
            "/var/log/containers/p_ns_c-f00.log"
        );
        assert!(container_log_path("p", "ns", "c", "abc123").is_err());
        assert!(container_log_path("p", "ns", "c", "containerd://").is_err());
        assert_eq!(
            cri_log_file("ns", "log-pod-1", "0b5e-uid", "logger"),
            "/var/log/pods/ns_log-pod-1_0b5e-uid/logger/0.log"
        );
    }
}
