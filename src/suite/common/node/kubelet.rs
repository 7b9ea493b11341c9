//! test/e2e/common/node/kubelet.go (v1.30.2): "Kubelet", the tests tagged NodeConformance.
//! Upstream's busybox and agnhost commands are the workload's actions: `echo 'Hello World'`
//! is `--stdout`, `/bin/false` is `--exit 1`, agnhost's `etc-hosts` is `--cat /etc/hosts`, and
//! `echo test > /file` is `--create`, which on failure says what busybox's shell says.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{HostAlias, Pod, PodSpec, SecurityContext};
use serde_json::Value;

use crate::suite::common::kit::{container, typed, with_command};
use crate::suite::functional::{ApiPod, Session, Waits, removal, session, summary};
use crate::suite::{Context, Outcome, Recorder, Service, Test, describe};

const CONFORMANCE: &[&str] = &["NodeConformance", "Conformance"];
const LINUX_CONFORMANCE: &[&str] = &["LinuxOnly", "NodeConformance", "Conformance"];
const NODE_CONFORMANCE: &[&str] = &["NodeConformance"];

/// How long upstream reads the log again for the output it wants, and how often.
const LOG_WAIT: Duration = Duration::from_secs(60);
const LOG_POLL: Duration = Duration::from_secs(4);

pub fn tests() -> Vec<Test> {
    let t = |behaviour, tags, run, budget| Test {
        area: "Kubelet",
        behaviour,
        tags,
        needs: &[Service::ControlPlane],
        run,
        read_ahead: None,
        budget: Some(budget),
    };
    let with_log = |w: &Waits| w.pod_start + LOG_WAIT + removal(w);
    let one_pod = |w: &Waits| w.pod_start + removal(w);
    vec![
        t(
            "when scheduling a busybox command in a pod should print the output to logs",
            CONFORMANCE,
            prints_to_logs,
            with_log,
        ),
        t(
            "when scheduling a busybox command that always fails in a pod should have an terminated reason",
            CONFORMANCE,
            terminated_reason,
            one_pod,
        ),
        t(
            "when scheduling a busybox command that always fails in a pod should be possible to delete",
            CONFORMANCE,
            failing_deleted,
            one_pod,
        ),
        t(
            "when scheduling an agnhost Pod with hostAliases should write entries to /etc/hosts",
            CONFORMANCE,
            host_aliases,
            one_pod,
        ),
        t(
            "with pods in a privileged namespace when scheduling an agnhost Pod with hostAliases and hostNetwork should write entries to /etc/hosts when hostNetwork is enabled",
            NODE_CONFORMANCE,
            host_aliases_host_network,
            one_pod,
        ),
        t(
            "when scheduling a read only busybox container should not write to root filesystem",
            LINUX_CONFORMANCE,
            read_only_root,
            with_log,
        ),
    ]
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A pod of `spec` with restart policy Never, named `<prefix>-<8 hex>`.
fn never<'a>(s: &'a Session<'a>, prefix: &str, mut spec: PodSpec) -> Result<ApiPod<'a>, String> {
    spec.restart_policy = Some("Never".into());
    ApiPod::create_spec(s, prefix, spec)
}

/// Reads the container's log again every 4 s for a minute until it is exactly `want`
/// (upstream's `Eventually(...).Should(Equal(want))`); `since` asks only for the last hour,
/// as upstream's first test does.
fn log_becomes(
    pod: &ApiPod<'_>,
    container: &str,
    since: bool,
    want: &str,
) -> Result<String, String> {
    let until = Instant::now() + LOG_WAIT;
    loop {
        let read = if since {
            let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
            pod.logs_with(
                container,
                &[(
                    "sinceTime",
                    &hour_ago.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                )],
            )
        } else {
            pod.logs(container)
        };
        let last = match read {
            Ok(text) if text == want => return Ok(format!("the log is {want:?}")),
            Ok(text) => format!("the log is {text:?}"),
            Err(e) => e,
        };
        if Instant::now() + LOG_POLL > until {
            return Err(format!(
                "the log is not {want:?} within {}s; {last}",
                LOG_WAIT.as_secs()
            ));
        }
        std::thread::sleep(LOG_POLL);
    }
}

fn prints_to_logs(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let name = "busybox-scheduling";
    let pod = container(&s, name, &["--stdout", "Hello World", "--sleep", "240"]).and_then(|c| {
        never(
            &s,
            name,
            PodSpec {
                containers: vec![c],
                ..Default::default()
            },
        )
    });
    let pod = match pod {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    // Upstream's CreateSync: created and Running.
    if let Err(e) = pod.wait_running() {
        return r.fail_now(e);
    }
    match log_becomes(&pod, name, true, "Hello World\n") {
        Ok(d) => r.ok("log", d),
        Err(e) => r.fail("log", e),
    }
    r.finish(describe)
}

/// The pod upstream's BeforeEach makes: `/bin/false`, restart policy Never.
fn bin_false<'a>(s: &'a Session<'a>) -> Result<ApiPod<'a>, String> {
    let c = container(s, "bin-false", &["--exit", "1"])?;
    never(
        s,
        "bin-false",
        PodSpec {
            containers: vec![c],
            ..Default::default()
        },
    )
}

/// What upstream waits for: one container, terminated with a nonzero exit code and a reason.
fn has_terminated_reason(pod: &Pod) -> Result<String, String> {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or(&[]);
    let [status] = statuses else {
        return Err(format!(
            "expected only one container in the pod, it has {} statuses",
            statuses.len()
        ));
    };
    let Some(t) = status.state.as_ref().and_then(|s| s.terminated.as_ref()) else {
        return Err("expected state to be terminated".into());
    };
    let reason = t.reason.as_deref().unwrap_or("");
    if t.exit_code == 0 || reason.is_empty() {
        return Err(format!(
            "expected non-zero exitCode and non-empty terminated state reason, got exitCode {} and reason {reason:?}",
            t.exit_code
        ));
    }
    Ok(format!("exit code {}, reason {reason}", t.exit_code))
}

fn terminated_reason(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let pod = match bin_false(&s) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    let seen = pod.wait("to have a terminated reason", |p| {
        typed(p).and_then(|p| has_terminated_reason(&p).map(|_| ()))
    });
    match seen
        .and_then(|p| typed(&p))
        .and_then(|p| has_terminated_reason(&p))
    {
        Ok(d) => r.ok("terminated", d),
        Err(e) => r.fail("terminated", e),
    }
    r.finish(describe)
}

fn failing_deleted(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let pod = match bin_false(&s) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    // Upstream deletes it at once and asks only that the delete succeeds.
    match s
        .api
        .delete(&pod.path(), &serde_json::json!({}))
        .map_err(|e| e.to_string())
    {
        Ok(()) => r.ok("deleted", "the delete succeeded"),
        Err(e) => r.fail("deleted", e),
    }
    r.finish(describe)
}

/// Upstream's hostAliases tests: an `etc-hosts` container (restart policy Never) of a pod with
/// the alias 123.45.67.89 foo bar runs to its end, and its output, `/etc/hosts`, must hold
/// `123.45.67.89\tfoo\tbar`.
fn aliases(ctx: &Context, host_network: bool) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let name = "agnhost-host-aliases";
    let pod = container(&s, "agnhost-container", &["--cat", "/etc/hosts"]).and_then(|c| {
        never(
            &s,
            name,
            PodSpec {
                containers: vec![c],
                host_network: host_network.then_some(true),
                host_aliases: Some(vec![HostAlias {
                    ip: "123.45.67.89".into(),
                    hostnames: Some(vec!["foo".into(), "bar".into()]),
                }]),
                ..Default::default()
            },
        )
    });
    let pod = match pod {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    // WaitForPodNoLongerRunningInNamespace.
    if let Err(e) = pod.wait("to finish", |p| match phase(p) {
        "Succeeded" | "Failed" => Ok(()),
        _ => Err(summary(p)),
    }) {
        return r.fail_now(e);
    }
    match pod.logs("agnhost-container") {
        Ok(hosts) if hosts.contains("123.45.67.89\tfoo\tbar") => {
            r.ok("/etc/hosts", "holds 123.45.67.89\\tfoo\\tbar")
        }
        Ok(hosts) => r.fail(
            "/etc/hosts",
            format!("expected hosts file to contain entries from HostAliases. Got:\n{hosts}"),
        ),
        Err(e) => r.fail("/etc/hosts", e),
    }
    r.finish(describe)
}

fn host_aliases(ctx: &Context) -> Outcome {
    aliases(ctx, false)
}

fn host_aliases_host_network(ctx: &Context) -> Outcome {
    aliases(ctx, true)
}

fn read_only_root(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let name = "busybox-readonly-fs";
    let pod = with_command(&s, name, &["--create", "/file", "test", "--sleep", "240"]).and_then(
        |mut c| {
            c.security_context = Some(SecurityContext {
                read_only_root_filesystem: Some(true),
                ..Default::default()
            });
            never(
                &s,
                name,
                PodSpec {
                    containers: vec![c],
                    ..Default::default()
                },
            )
        },
    );
    let pod = match pod {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    if let Err(e) = pod.wait_running() {
        return r.fail_now(e);
    }
    match log_becomes(
        &pod,
        name,
        false,
        "/bin/sh: can't create /file: Read-only file system\n",
    ) {
        Ok(d) => r.ok("log", d),
        Err(e) => r.fail("log", e),
    }
    r.finish(describe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(statuses: Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p"},
            "status": {"phase": "Failed", "containerStatuses": statuses}}))
        .unwrap()
    }

    #[test]
    fn a_failed_container_must_say_why_and_how_it_ended() {
        let status = |t: Value| {
            serde_json::json!([{"name": "c", "image": "i", "imageID": "", "ready": false,
                "restartCount": 0, "state": t}])
        };
        let ok = pod(status(
            serde_json::json!({"terminated": {"exitCode": 1, "reason": "Error"}}),
        ));
        assert_eq!(
            has_terminated_reason(&ok).unwrap(),
            "exit code 1, reason Error"
        );
        let no_reason = pod(status(serde_json::json!({"terminated": {"exitCode": 1}})));
        assert!(
            has_terminated_reason(&no_reason)
                .unwrap_err()
                .contains("non-empty")
        );
        let zero = pod(status(
            serde_json::json!({"terminated": {"exitCode": 0, "reason": "Completed"}}),
        ));
        assert!(has_terminated_reason(&zero).is_err());
        let running = pod(status(serde_json::json!({"running": {}})));
        assert!(
            has_terminated_reason(&running)
                .unwrap_err()
                .contains("terminated")
        );
        assert!(has_terminated_reason(&pod(serde_json::json!([]))).is_err());
    }
}
