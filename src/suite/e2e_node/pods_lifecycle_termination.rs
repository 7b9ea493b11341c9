//! test/e2e_node/pods_lifecycle_termination_test.go (kubernetes c1cf94e9): "Pod SIGKILL", a
//! container that outlives its grace period is killed, exit code 137, reason Error. The pod
//! keeps a finalizer so its end state can be read after the deletion, and the test waits for
//! the kubelet to give it the Failed phase: kubelets before 1.27 do not (see deleted_pods.rs)
//! and skip. Upstream's shell, which traps SIGTERM but sleeps on through it, is the workload
//! as PID 1 without a handler: `--create /tmp/healthy '' --sleep 1000`.

use k8s_openapi::api::core::v1::{Pod, PodSpec, Probe};
use serde_json::json;

use super::deleted_pods::{
    FEATURE, MIN_KUBELET, container_ended_with, ready_on_marker, with_finalizer,
};
use crate::suite::common::kit::{container, failed_for, typed};
use crate::suite::common::version::require_kubelet;
use crate::suite::functional::{Waits, removal, session};
use crate::suite::{Context, Outcome, Recorder, Service, Test, describe};

const CONTAINER: &str = "sigkill-target-container";
const GRACE: i64 = 5;
const HEALTHY: &str = "/tmp/healthy";

pub fn tests() -> Vec<Test> {
    vec![Test {
        area: "Pod SIGKILL [LinuxOnly] [NodeConformance] ",
        behaviour: "The containers terminated forcefully by Sigkill should have the correct exit code(137) and reason (Error)",
        tags: &[],
        needs: &[Service::ControlPlane],
        run: sigkill,
        read_ahead: None,
        budget: Some(|w: &Waits| w.node_ready + 2 * w.pod_start + removal(w)),
    }]
}

/// The container's end upstream expects: 137 (killed) and the runtime's reason `Error`.
pub fn killed_with_error(pod: &Pod) -> Result<String, String> {
    container_ended_with(pod, 137)?;
    let reason = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.reason.as_deref())
        .unwrap_or("");
    if reason == "Error" {
        Ok("exit code 137, reason Error".into())
    } else {
        Err(format!(
            "container terminated by SIGKILL: want reason Error, got {reason:?}"
        ))
    }
}

fn sigkill(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(skip) = require_kubelet(&s, MIN_KUBELET, FEATURE) {
        return skip;
    }
    let mut r = Recorder::new();
    let spec =
        container(&s, CONTAINER, &["--create", HEALTHY, "", "--sleep", "1000"]).map(|mut c| {
            let tmp = ready_on_marker(
                &s,
                &mut c,
                HEALTHY,
                Probe {
                    initial_delay_seconds: Some(1),
                    timeout_seconds: Some(2),
                    ..Default::default()
                },
            );
            PodSpec {
                restart_policy: Some("Never".into()),
                termination_grace_period_seconds: Some(GRACE),
                containers: vec![c],
                volumes: Some(vec![tmp]),
                ..Default::default()
            }
        });
    let (pod, _finalized) = match spec.and_then(|spec| with_finalizer(&s, "sigkill-pod", spec)) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    if let Err(e) = pod.wait_ready() {
        return r.fail_now(e);
    }
    if let Err(e) = s.api.delete(&pod.path(), &json!({})) {
        return r.fail_now(format!("failed to delete the pod: {e}"));
    }
    let end = match pod.wait("to be Failed", |p| failed_for(&typed(p)?, "").map(|_| ())) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    match typed(&end).and_then(|p| killed_with_error(&p)) {
        Ok(d) => r.ok("container", d),
        Err(e) => r.fail("container", e),
    }
    r.finish(describe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn pod(state: Value) -> Pod {
        serde_json::from_value(json!({"status": {"phase": "Failed", "containerStatuses": [
            {"name": CONTAINER, "ready": false, "restartCount": 0, "image": "i", "imageID": "",
             "state": state}]}}))
        .unwrap()
    }

    #[test]
    fn killed_means_137_and_error() {
        assert!(
            killed_with_error(&pod(
                json!({"terminated": {"exitCode": 137, "reason": "Error"}})
            ))
            .is_ok()
        );
        let oom = killed_with_error(&pod(
            json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}),
        ))
        .unwrap_err();
        assert!(oom.contains("OOMKilled"), "{oom}");
        assert!(
            killed_with_error(&pod(
                json!({"terminated": {"exitCode": 0, "reason": "Completed"}})
            ))
            .is_err()
        );
    }
}
