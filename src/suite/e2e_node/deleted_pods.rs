//! test/e2e_node/deleted_pods_test.go (kubernetes c1cf94e9): "Deleted pods handling", a pod
//! deleted while a finalizer keeps its object must still be given a terminal phase by the
//! kubelet: Failed when it was pending or its container was killed, Succeeded when its
//! container stopped with 0 on SIGTERM. Kubelets before 1.27 leave such pods in their last
//! phase (kubernetes#115331 gave them the terminal phase): those skip, naming the version.
//!
//! Upstream's `sleep 1800` is the workload's `--sleep 1800` (as PID 1 it ignores SIGTERM and
//! is killed at the end of the grace period, exit 137); its shell that traps SIGTERM and
//! exits 0 is `--pause`, whose handler is in place before the readiness marker is written.

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, ExecAction, Pod, PodSpec, Probe, Volume, VolumeMount,
};
use serde_json::{Value, json};

use crate::suite::common::kit::{container, failed_for, typed};
use crate::suite::common::version::require_kubelet;
use crate::suite::functional::{ApiPod, Session, Waits, removal, session, summary};
use crate::suite::{Context, Outcome, Recorder, Service, Test, describe};

const AREA: &str = "Deleted pods handling [NodeConformance]";
pub(crate) const FINALIZER: &str = "example.com/test-finalizer";
pub(crate) const MIN_KUBELET: &str = "1.27";
pub(crate) const FEATURE: &str = "a terminal phase for deleted pods, kubernetes#115331";
const MARKER: &str = "/tmp/trap-marker";

pub fn tests() -> Vec<Test> {
    let t = |behaviour, run| Test {
        area: AREA,
        behaviour,
        tags: &[],
        needs: &[Service::ControlPlane],
        run,
        read_ahead: None,
        budget: Some(|w: &Waits| w.node_ready + 2 * w.pod_start + removal(w)),
    };
    vec![
        t(
            "Should transition to Failed phase a pod which is deleted while pending",
            pending,
        ),
        t(
            "Should transition to Failed phase a deleted pod if non-zero exit codes Restart policy Always",
            |ctx| killed(ctx, "Always"),
        ),
        t(
            "Should transition to Failed phase a deleted pod if non-zero exit codes Restart policy OnFailure",
            |ctx| killed(ctx, "OnFailure"),
        ),
        t(
            "Should transition to Failed phase a deleted pod if non-zero exit codes Restart policy Never",
            |ctx| killed(ctx, "Never"),
        ),
        t(
            "Should transition to Succeeded phase a deleted pod when containers complete with 0 exit code Restart policy Always",
            |ctx| stopped(ctx, "Always"),
        ),
        t(
            "Should transition to Succeeded phase a deleted pod when containers complete with 0 exit code Restart policy OnFailure",
            |ctx| stopped(ctx, "OnFailure"),
        ),
        t(
            "Should transition to Succeeded phase a deleted pod when containers complete with 0 exit code Restart policy Never",
            |ctx| stopped(ctx, "Never"),
        ),
    ]
}

/// Upstream's `RemoveFinalizer`, run when the test ends however it ends: the pod can then
/// go. Declared after the pod, so it runs before the pod's own clean-up.
pub(crate) struct Finalized<'a> {
    s: &'a Session<'a>,
    path: String,
}

impl Drop for Finalized<'_> {
    fn drop(&mut self) {
        let Ok(Some(pod)) = self.s.api.get(&self.path) else {
            return;
        };
        let rest: Vec<&str> = pod
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|f| *f != FINALIZER)
            .collect();
        let _ = self.s.api.patch(
            &self.path,
            "application/merge-patch+json",
            &json!({"metadata": {"finalizers": if rest.is_empty() { Value::Null } else { json!(rest) },
                "resourceVersion": pod.pointer("/metadata/resourceVersion")}}),
        );
    }
}

/// Creates the pod with upstream's finalizer, the guard that removes it, or the error.
pub(crate) fn with_finalizer<'a>(
    s: &'a Session<'a>,
    prefix: &str,
    spec: PodSpec,
) -> Result<(ApiPod<'a>, Finalized<'a>), String> {
    let pod = ApiPod::create_finalized(s, prefix, &[FINALIZER], spec)?;
    let guard = Finalized {
        s,
        path: pod.path(),
    };
    Ok((pod, guard))
}

/// Makes `c` Ready once the file `marker` exists (upstream's exec probe `cat <marker>`, with
/// `timing`'s delays), `marker` lying in /tmp; returns the emptyDir volume for /tmp the pod
/// needs, since the workload's image has no /tmp of its own.
pub(crate) fn ready_on_marker(
    s: &Session<'_>,
    c: &mut Container,
    marker: &str,
    timing: Probe,
) -> Volume {
    let mut probe = s.workload.command();
    probe.extend(["--cat".to_string(), marker.to_string()]);
    c.readiness_probe = Some(Probe {
        exec: Some(ExecAction {
            command: Some(probe),
        }),
        ..timing
    });
    c.volume_mounts
        .get_or_insert_with(Vec::new)
        .push(VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        });
    Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }
}

/// The end upstream expects: one container, terminated with `code`.
pub fn container_ended_with(pod: &Pod, code: i32) -> Result<String, String> {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let [status] = statuses else {
        return Err(format!("{} container statuses, want 1", statuses.len()));
    };
    let terminated = status
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .ok_or_else(|| format!("container {} is not in the Terminated state", status.name))?;
    if terminated.exit_code == code {
        Ok(format!("container {} exited {code}", status.name))
    } else {
        Err(format!(
            "container {} exited {}, want {code}",
            status.name, terminated.exit_code
        ))
    }
}

/// Upstream's `WaitForPodSuccessInNamespace`: Succeeded; a Failed pod ends the wait.
pub fn succeeded(pod: &Pod) -> Result<(), String> {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Succeeded") => Ok(()),
        other => Err(format!("phase {other:?}, want Succeeded")),
    }
}

fn pending(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(skip) = require_kubelet(&s, MIN_KUBELET, FEATURE) {
        return skip;
    }
    let mut r = Recorder::new();
    let spec = PodSpec {
        restart_policy: Some("Always".into()),
        containers: vec![Container {
            name: "deleted-pending".into(),
            image: Some("non-existing-repo/non-existing-image:v1.0".into()),
            image_pull_policy: Some("Always".into()),
            command: Some(vec!["bash".into()]),
            args: Some(vec!["-c".into(), "echo \"Hello world\"".into()]),
            ..Default::default()
        }],
        ..Default::default()
    };
    let (pod, _finalized) = match with_finalizer(&s, "deleted-pending", spec) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    if let Err(e) = s.api.delete(&pod.path(), &json!({})) {
        return r.fail_now(format!("failed to delete the pod: {e}"));
    }
    match pod.wait("to be Failed", |p| failed_for(&typed(p)?, "").map(|_| ())) {
        Ok(p) => r.ok("phase", summary(&p)),
        Err(e) => r.fail("phase", e),
    }
    r.finish(describe)
}

fn killed(ctx: &Context, policy: &str) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(skip) = require_kubelet(&s, MIN_KUBELET, FEATURE) {
        return skip;
    }
    let mut r = Recorder::new();
    let prefix = format!("deleted-running-{}", policy.to_lowercase());
    let spec = container(&s, &prefix, &["--sleep", "1800"]).map(|c| PodSpec {
        restart_policy: Some(policy.into()),
        containers: vec![c],
        ..Default::default()
    });
    let (pod, _finalized) = match spec.and_then(|spec| with_finalizer(&s, &prefix, spec)) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    if let Err(e) = pod.wait_running() {
        return r.fail_now(e);
    }
    if let Err(e) = s.api.delete(&pod.path(), &json!({"gracePeriodSeconds": 1})) {
        return r.fail_now(format!("failed to delete the pod: {e}"));
    }
    let end = match pod.wait("to be Failed", |p| failed_for(&typed(p)?, "").map(|_| ())) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    r.ok("phase", "Failed");
    match typed(&end).and_then(|p| container_ended_with(&p, 137)) {
        Ok(d) => r.ok("container", d),
        Err(e) => r.fail("container", e),
    }
    r.finish(describe)
}

fn stopped(ctx: &Context, policy: &str) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(skip) = require_kubelet(&s, MIN_KUBELET, FEATURE) {
        return skip;
    }
    let mut r = Recorder::new();
    let prefix = format!("deleted-running-{}", policy.to_lowercase());
    let spec = container(&s, &prefix, &["--create", MARKER, "", "--pause"]).map(|mut c| {
        let tmp = ready_on_marker(
            &s,
            &mut c,
            MARKER,
            Probe {
                period_seconds: Some(1),
                ..Default::default()
            },
        );
        PodSpec {
            restart_policy: Some(policy.into()),
            containers: vec![c],
            volumes: Some(vec![tmp]),
            ..Default::default()
        }
    });
    let (pod, _finalized) = match spec.and_then(|spec| with_finalizer(&s, &prefix, spec)) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    if let Err(e) = pod.wait_ready() {
        return r.fail_now(e);
    }
    if let Err(e) = s.api.delete(&pod.path(), &json!({})) {
        return r.fail_now(format!("failed to delete the pod: {e}"));
    }
    let end = match pod.wait("to be Succeeded", |p| succeeded(&typed(p)?)) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    r.ok("phase", "Succeeded");
    match typed(&end).and_then(|p| container_ended_with(&p, 0)) {
        Ok(d) => r.ok("container", d),
        Err(e) => r.fail("container", e),
    }
    r.finish(describe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_container_must_have_ended_with_the_code() {
        let killed = pod(json!({"status": {"phase": "Failed", "containerStatuses": [
            {"name": "c", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
             "state": {"terminated": {"exitCode": 137, "reason": "Error"}}}]}}));
        assert!(container_ended_with(&killed, 137).is_ok());
        assert!(
            container_ended_with(&killed, 0)
                .unwrap_err()
                .contains("exited 137")
        );
        let running = pod(json!({"status": {"phase": "Running", "containerStatuses": [
            {"name": "c", "ready": true, "restartCount": 0, "image": "i", "imageID": "",
             "state": {"running": {}}}]}}));
        assert!(
            container_ended_with(&running, 0)
                .unwrap_err()
                .contains("not in the Terminated")
        );
        assert!(container_ended_with(&pod(json!({"status": {}})), 0).is_err());
        assert!(succeeded(&pod(json!({"status": {"phase": "Succeeded"}}))).is_ok());
        assert!(succeeded(&pod(json!({"status": {"phase": "Failed"}}))).is_err());
    }
}
