//! What the ported tests share: the workload as a typed container, objects a pod consumes,
//! and upstream's most common shape of test (a pod of one container run to success, its
//! output read back and matched).

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use serde_json::Value;

use super::output::{Matching, container_output};
use crate::suite::functional::{ApiPod, Session, session};
use crate::suite::{Context, Outcome, Recorder, describe};

/// The workload container named `name`, running `args` (as the container's args).
pub(crate) fn container(s: &Session<'_>, name: &str, args: &[&str]) -> Result<Container, String> {
    let mut c: Container =
        serde_json::from_value(s.workload.container(args)).map_err(|e| e.to_string())?;
    c.name = name.to_string();
    Ok(c)
}

/// The workload container named `name` whose command (not args) runs `actions`, for tests
/// where upstream sets the command.
pub(crate) fn with_command(
    s: &Session<'_>,
    name: &str,
    actions: &[&str],
) -> Result<Container, String> {
    let mut c = container(s, name, &[])?;
    let mut command = s.workload.command();
    command.extend(actions.iter().map(|a| (*a).to_string()));
    c.command = Some(command);
    c.args = None;
    Ok(c)
}

/// A name unique to this test: `<prefix>-<8 hex>`.
pub(crate) fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Creates an object of the test namespace (`configmaps`, `secrets`), removed at the end of
/// the run with what the tests made.
pub(crate) fn create(
    s: &Session<'_>,
    plural: &str,
    object: &impl serde::Serialize,
) -> Result<Value, String> {
    let body = serde_json::to_value(object).map_err(|e| e.to_string())?;
    let name = body
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .ok_or("the object has no name")?
        .to_string();
    let collection = format!("/api/v1/namespaces/{}/{plural}", s.namespace);
    s.cp.track_object(&format!("{collection}/{name}"));
    s.api
        .create(&collection, &body)
        .map_err(|e| format!("cannot create {plural} {name}: {e}"))
}

/// Upstream's `TestContainerOutput` and `TestContainerOutputRegexp`: `build` makes what the
/// pod consumes and its one container, and says what its output must hold; the pod (restart
/// policy Never) runs to success, and the container's output is read through `pods/log` and
/// matched.
pub(crate) fn output_test(
    ctx: &Context,
    pod_prefix: &str,
    how: Matching,
    build: impl FnOnce(&Session<'_>) -> Result<(Container, Vec<String>), String>,
) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let (container, expected) = match build(&s) {
        Ok(b) => b,
        Err(e) => return r.fail_now(e),
    };
    let name = container.name.clone();
    let pod = match ApiPod::create_spec(
        &s,
        pod_prefix,
        PodSpec {
            restart_policy: Some("Never".into()),
            containers: vec![container],
            ..Default::default()
        },
    ) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    match container_output(&pod, &name, &expected, how) {
        Ok(d) => r.ok("output", d),
        Err(e) => r.fail("output", e),
    }
    r.finish(describe)
}

/// A pod as the API answered it, typed.
pub fn typed(pod: &Value) -> Result<Pod, String> {
    serde_json::from_value(pod.clone()).map_err(|e| format!("not a Pod: {e}"))
}

/// Upstream's `WaitForPodFailedReason` and `WaitForPodTerminatedInNamespace`: the pod Failed
/// with status reason `reason` (`""` for none). `Err` says what it is instead.
pub fn failed_for(pod: &Pod, reason: &str) -> Result<String, String> {
    let status = pod.status.as_ref().ok_or("no status")?;
    let phase = status.phase.as_deref().unwrap_or("");
    let got = status.reason.as_deref().unwrap_or("");
    match phase {
        "Failed" if got == reason => Ok(format!(
            "Failed ({}{})",
            if got.is_empty() { "no reason" } else { got },
            status
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        )),
        "Failed" => Err(format!("Failed with reason {got:?}, want {reason:?}")),
        other => Err(format!("phase {other:?}, want Failed ({reason:?})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_a_failure_for_the_reason_counts() {
        let rejected = pod(
            json!({"status": {"phase": "Failed", "reason": "PodOSNotSupported",
            "message": "Pod was rejected: Failed to admit pod as the OS field doesn't match node OS"}}),
        );
        assert!(failed_for(&rejected, "PodOSNotSupported").is_ok());
        let exceeded = pod(json!({"status": {"phase": "Failed", "reason": "DeadlineExceeded"}}));
        assert!(failed_for(&exceeded, "DeadlineExceeded").is_ok());
        let e = failed_for(&exceeded, "PodOSNotSupported").unwrap_err();
        assert!(e.contains("DeadlineExceeded"), "{e}");
        assert!(failed_for(&pod(json!({"status": {"phase": "Failed"}})), "").is_ok());
        // Succeeded is no failure: upstream waits on for a Failed pod.
        assert!(failed_for(&pod(json!({"status": {"phase": "Succeeded"}})), "").is_err());
        assert!(failed_for(&pod(json!({"status": {"phase": "Running"}})), "").is_err());
        assert!(failed_for(&pod(json!({})), "").is_err());
    }
}
