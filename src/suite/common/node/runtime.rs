//! test/e2e/common/node/runtime.go (v1.30.2): "Container Runtime blackbox test", the tests
//! tagged NodeConformance. Upstream's busybox shell scripts are the harness's workload actions
//! (`--count-start`, `--exit-on-start`, `--print`, `--termination-message`), which do the
//! same to the files and streams the kubelet reads.
//!
//! Not ported here: "when running a container with a new image" (four tests pulling from
//! gcr.io and a private registry), which need a registry the node can reach.

use k8s_openapi::api::core::v1::{
    Container, ContainerState, EmptyDirVolumeSource, Pod, PodSpec, SecurityContext, Volume,
    VolumeMount,
};

use crate::suite::common::kit::{container, typed};
use crate::suite::functional::{ApiPod, Session, Waits, removal, session, summary};
use crate::suite::{Context, Outcome, Recorder, Service, Test, describe};

const TAGS: &[&str] = &["NodeConformance"];
const CONFORMANCE: &[&str] = &["NodeConformance", "Conformance"];
const NEEDS: &[Service] = &[Service::ControlPlane];

/// The area and the describe path, as upstream names them.
const AREA: &str = "Container Runtime";

pub fn tests() -> Vec<Test> {
    let t = |behaviour, tags, run, budget| Test {
        area: AREA,
        behaviour,
        tags,
        needs: NEEDS,
        run,
        read_ahead: None,
        budget: Some(budget),
    };
    let one_pod = |w: &Waits| w.pod_start + removal(w);
    vec![
        t(
            "blackbox test when starting a container that exits should run with the expected status",
            CONFORMANCE,
            expected_status,
            // Three pods side by side, each waited for and deleted.
            |w| w.pod_start + removal(w) * 2,
        ),
        t(
            "blackbox test on terminated container should report termination message if TerminationMessagePath is set",
            TAGS,
            message_path_set,
            one_pod,
        ),
        t(
            "blackbox test on terminated container should report termination message if TerminationMessagePath is set as non-root user and at a non-default path",
            CONFORMANCE,
            message_path_non_root,
            one_pod,
        ),
        t(
            "blackbox test on terminated container should report termination message from log output if TerminationMessagePolicy FallbackToLogsOnError is set",
            CONFORMANCE,
            message_from_logs,
            one_pod,
        ),
        t(
            "blackbox test on terminated container should report termination message as empty when pod succeeds and TerminationMessagePolicy FallbackToLogsOnError is set",
            CONFORMANCE,
            message_empty_on_success,
            one_pod,
        ),
        t(
            "blackbox test on terminated container should report termination message from file when pod succeeds and TerminationMessagePolicy FallbackToLogsOnError is set",
            CONFORMANCE,
            message_from_file,
            one_pod,
        ),
    ]
}

/// What a container's state is, as upstream's `GetContainerState` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Terminated,
    Unknown,
}

fn state_of(state: Option<&ContainerState>) -> State {
    match state {
        Some(s) if s.running.is_some() => State::Running,
        Some(s) if s.terminated.is_some() => State::Terminated,
        Some(s) if s.waiting.is_some() => State::Waiting,
        _ => State::Unknown,
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The pod's `Ready` condition is True (upstream's `podutil.IsPodReady`).
fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

fn first_status(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::ContainerStatus> {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
}

/// One case of "should run with the expected status": the container fails at its first
/// start, succeeds at its second and runs on from its third.
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    restart_policy: &'static str,
    phase: &'static str,
    state: State,
    restart_count: i32,
    ready: bool,
}

const CASES: [Case; 3] = [
    Case {
        name: "terminate-cmd-rpa",
        restart_policy: "Always",
        phase: "Running",
        state: State::Running,
        restart_count: 2,
        ready: true,
    },
    Case {
        name: "terminate-cmd-rpof",
        restart_policy: "OnFailure",
        phase: "Succeeded",
        state: State::Terminated,
        restart_count: 1,
        ready: false,
    },
    Case {
        name: "terminate-cmd-rpn",
        restart_policy: "Never",
        phase: "Failed",
        state: State::Terminated,
        restart_count: 0,
        ready: false,
    },
];

/// What upstream waits for (`Eventually`): the restart count, then the phase.
fn reached(pod: &Pod, case: &Case) -> Result<(), String> {
    let restarts = first_status(pod).map_or(0, |c| c.restart_count);
    if restarts != case.restart_count {
        return Err(format!(
            "restartCount {restarts}, want {}",
            case.restart_count
        ));
    }
    if phase(pod) != case.phase {
        return Err(format!("phase {}, want {}", phase(pod), case.phase));
    }
    Ok(())
}

/// What upstream then expects at once: the Ready condition and the container's state.
fn expected(pod: &Pod, case: &Case) -> Result<String, String> {
    reached(pod, case)?;
    let ready = is_ready(pod);
    if ready != case.ready {
        return Err(format!("Ready is {ready}, want {}", case.ready));
    }
    let state = state_of(first_status(pod).and_then(|c| c.state.as_ref()));
    if state != case.state {
        return Err(format!("state {state:?}, want {:?}", case.state));
    }
    Ok(format!(
        "restartCount {}, phase {}, ready {ready}, state {state:?}",
        case.restart_count, case.phase
    ))
}

fn expected_status(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    // Upstream runs the cases one after the other; they are independent and wait on the
    // kubelet's back-off, so here they run side by side.
    let mut pods = Vec::new();
    for case in &CASES {
        let pod = container(
            &s,
            case.name,
            &[
                "--count-start",
                "/restart-count/restartCount",
                "--exit-on-start",
                "1",
                "1",
                "--exit-on-start",
                "2",
                "0",
                "--sleep",
                "31536000",
            ],
        )
        .and_then(|mut c| {
            c.volume_mounts
                .get_or_insert_with(Vec::new)
                .push(VolumeMount {
                    name: "restart-count".into(),
                    mount_path: "/restart-count".into(),
                    ..Default::default()
                });
            ApiPod::create_spec(
                &s,
                case.name,
                PodSpec {
                    restart_policy: Some(case.restart_policy.into()),
                    containers: vec![c],
                    volumes: Some(vec![Volume {
                        name: "restart-count".into(),
                        empty_dir: Some(EmptyDirVolumeSource {
                            medium: Some("Memory".into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
            )
        });
        match pod {
            Ok(p) => pods.push((case, p)),
            Err(e) => return r.fail_now(e),
        }
    }
    for (case, pod) in &pods {
        let item = format!("container '{}' ({})", case.name, case.restart_policy);
        let seen = pod.wait(
            &format!(
                "to reach restartCount {} and phase {}",
                case.restart_count, case.phase
            ),
            |p| typed(p).and_then(|p| reached(&p, case)),
        );
        match seen
            .and_then(|p| typed(&p))
            .and_then(|p| expected(&p, case))
        {
            Ok(d) => r.ok(&item, d),
            Err(e) => {
                r.fail(&item, e);
                continue;
            }
        }
        match pod.delete_and_wait() {
            Ok(()) => r.ok(format!("{item} deleted"), "gone"),
            Err(e) => r.fail(format!("{item} deleted"), e),
        }
    }
    r.finish(describe)
}

/// Upstream's `matchTerminationMessage`: a container of restart policy Never that ends in
/// `phase`, terminated, with `message` as its termination message.
fn terminated_with(pod: &Pod, phase_wanted: &str, message: &str) -> Result<String, String> {
    if phase(pod) != phase_wanted {
        return Err(format!("phase {}, want {phase_wanted}", phase(pod)));
    }
    let terminated = first_status(pod)
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .ok_or_else(|| {
            format!(
                "the container is {:?}, not terminated",
                state_of(first_status(pod).and_then(|c| c.state.as_ref()))
            )
        })?;
    let got = terminated.message.as_deref().unwrap_or("");
    if got != message {
        return Err(format!("termination message {got:?}, want {message:?}"));
    }
    Ok(format!("phase {phase_wanted}, termination message {got:?}"))
}

/// Runs one termination-message case: the container `c` (restart policy Never) is waited for
/// until its pod is in `phase`, then judged by [`terminated_with`], then deleted.
fn message_case(
    ctx: &Context,
    build: fn(&Session<'_>) -> Result<Container, String>,
    phase_wanted: &str,
    message: &str,
) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let pod = build(&s).and_then(|mut c| {
        c.name = "termination-message-container".into();
        ApiPod::create_spec(
            &s,
            "termination-message",
            PodSpec {
                restart_policy: Some("Never".into()),
                containers: vec![c],
                ..Default::default()
            },
        )
    });
    let pod = match pod {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    let seen = pod.wait(&format!("to reach {phase_wanted}"), |p| {
        if phase(&typed(p)?) == phase_wanted {
            Ok(())
        } else {
            Err(summary(p))
        }
    });
    match seen
        .and_then(|p| typed(&p))
        .and_then(|p| terminated_with(&p, phase_wanted, message))
    {
        Ok(d) => r.ok("termination message", d),
        Err(e) => return r.fail_now(e),
    }
    match pod.delete_and_wait() {
        Ok(()) => r.ok("deleted", "gone"),
        Err(e) => r.fail("deleted", e),
    }
    r.finish(describe)
}

fn run_as(mut c: Container, uid: i64) -> Container {
    c.security_context = Some(SecurityContext {
        run_as_user: Some(uid),
        ..Default::default()
    });
    c
}

fn message_path_set(ctx: &Context) -> Outcome {
    message_case(
        ctx,
        |s| {
            let mut c = container(
                s,
                "c",
                &["--termination-message", "/dev/termination-log", "DONE"],
            )?;
            c.termination_message_path = Some("/dev/termination-log".into());
            Ok(run_as(c, 0))
        },
        "Succeeded",
        "DONE",
    )
}

fn message_path_non_root(ctx: &Context) -> Outcome {
    message_case(
        ctx,
        |s| {
            let mut c = container(
                s,
                "c",
                &[
                    "--termination-message",
                    "/dev/termination-custom-log",
                    "DONE",
                ],
            )?;
            c.termination_message_path = Some("/dev/termination-custom-log".into());
            Ok(run_as(c, 10000))
        },
        "Succeeded",
        "DONE",
    )
}

fn fallback(mut c: Container) -> Container {
    c.termination_message_path = Some("/dev/termination-log".into());
    c.termination_message_policy = Some("FallbackToLogsOnError".into());
    c
}

fn message_from_logs(ctx: &Context) -> Outcome {
    message_case(
        ctx,
        |s| {
            Ok(fallback(container(
                s,
                "c",
                &["--print", "DONE", "--exit", "1"],
            )?))
        },
        "Failed",
        "DONE",
    )
}

fn message_empty_on_success(ctx: &Context) -> Outcome {
    message_case(
        ctx,
        |s| {
            Ok(fallback(container(
                s,
                "c",
                &["--print", "DONE", "--exit", "0"],
            )?))
        },
        "Succeeded",
        "",
    )
}

fn message_from_file(ctx: &Context) -> Outcome {
    message_case(
        ctx,
        |s| {
            Ok(fallback(container(
                s,
                "c",
                &[
                    "--termination-message",
                    "/dev/termination-log",
                    "OK",
                    "--stdout",
                    "DONE",
                    "--exit",
                    "0",
                ],
            )?))
        },
        "Succeeded",
        "OK",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn status(phase: &str, restarts: i32, state: Value, ready: bool) -> Pod {
        pod(
            serde_json::json!({"metadata": {"name": "p"}, "status": {"phase": phase,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": ready,
                "restartCount": restarts, "state": state}]}}),
        )
    }

    #[test]
    fn the_expected_status_is_each_policys_and_nothing_else() {
        let running = serde_json::json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}});
        let done = |code: i32| serde_json::json!({"terminated": {"exitCode": code}});
        let [always, on_failure, never] = CASES;
        assert!(expected(&status("Running", 2, running.clone(), true), &always).is_ok());
        assert!(expected(&status("Succeeded", 1, done(0), false), &on_failure).is_ok());
        assert!(expected(&status("Failed", 0, done(1), false), &never).is_ok());
        // Wrong ones: a count not reached yet, a phase, readiness or state off.
        let e = expected(&status("Running", 1, running.clone(), true), &always).unwrap_err();
        assert!(e.contains("restartCount 1, want 2"), "{e}");
        let e = expected(&status("Running", 2, running.clone(), false), &always).unwrap_err();
        assert!(e.contains("Ready is false"), "{e}");
        let e = expected(&status("Running", 1, running, false), &on_failure).unwrap_err();
        assert!(e.contains("phase Running, want Succeeded"), "{e}");
        let e = expected(
            &status("Failed", 0, serde_json::json!({"waiting": {}}), false),
            &never,
        )
        .unwrap_err();
        assert!(e.contains("state Waiting, want Terminated"), "{e}");
    }

    #[test]
    fn a_termination_message_must_be_exactly_the_expected_one() {
        let done = |code: i32, msg: &str| serde_json::json!({"terminated": {"exitCode": code, "message": msg}});
        assert!(
            terminated_with(
                &status("Succeeded", 0, done(0, "DONE"), false),
                "Succeeded",
                "DONE"
            )
            .is_ok()
        );
        assert!(
            terminated_with(&status("Succeeded", 0, done(0, ""), false), "Succeeded", "").is_ok()
        );
        // A trailing newline is another message: `echo -n` prints none.
        let e = terminated_with(
            &status("Failed", 0, done(1, "DONE\n"), false),
            "Failed",
            "DONE",
        )
        .unwrap_err();
        assert!(e.contains("\"DONE\\n\""), "{e}");
        let e = terminated_with(
            &status("Failed", 0, done(1, "DONE"), false),
            "Succeeded",
            "DONE",
        )
        .unwrap_err();
        assert!(e.contains("phase Failed"), "{e}");
        let running = serde_json::json!({"running": {}});
        let e = terminated_with(&status("Succeeded", 0, running, false), "Succeeded", "DONE")
            .unwrap_err();
        assert!(e.contains("not terminated"), "{e}");
    }
}
