//! test/e2e/common/node/containers.go (v1.30.2): "Containers", a container runs its image's
//! entrypoint and arguments unless the pod overrides them. Upstream's agnhost image (entrypoint
//! `/agnhost`, arguments `pause`, which prints `Paused`) is the workload image (entrypoint
//! `/node-conformance workload`, arguments `--pause`); agnhost's `entrypoint-tester` is the
//! workload's, printing its argv as `[a b c]`.
//!
//! Where the workload runs in the node's pause image instead (no workload image on the node),
//! the image's own entrypoint and arguments are the pause image's, which print nothing: the
//! two tests of the image's defaults skip, saying so, and the two that override the command
//! run with the workload's binary from its hostPath. In the workload image, which holds one
//! copy of the binary, the overriding command names it `/./node-conformance`: only a command
//! that replaced the entrypoint reaches argv[0] spelled that way.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, PodSpec};

use crate::runtime::PodWorkload;
use crate::suite::common::kit::container;
use crate::suite::common::output::{Matching, container_output};
use crate::suite::functional::{ApiPod, Session, Waits, removal, session};
use crate::suite::{Context, Outcome, Recorder, Service, Test, describe};

const CONFORMANCE: &[&str] = &["NodeConformance", "Conformance"];
const NAME: &str = "agnhost-container";
/// Upstream reads the log for "Paused" for 3 s, every 2 s.
const PAUSED_WAIT: Duration = Duration::from_secs(3);

pub fn tests() -> Vec<Test> {
    let t = |behaviour, run| Test {
        area: "Containers",
        behaviour,
        tags: CONFORMANCE,
        needs: &[Service::ControlPlane],
        run,
        read_ahead: None,
        budget: Some(|w: &Waits| w.pod_start + PAUSED_WAIT + removal(w)),
    };
    vec![
        t(
            "should use the image defaults if command and args are blank",
            image_defaults,
        ),
        t(
            "should be able to override the image's default arguments (container cmd)",
            override_arguments,
        ),
        t(
            "should be able to override the image's default command (container entrypoint)",
            override_command,
        ),
        t(
            "should be able to override the image's default command and arguments",
            override_all,
        ),
    ]
}

/// Why the image's defaults cannot be seen, for a workload in the node's pause image.
fn defaults_unseen(w: &PodWorkload) -> Option<Outcome> {
    match w {
        PodWorkload::Image(_) => None,
        PodWorkload::Pause { image, .. } => Some(Outcome::skipped(format!(
            "the workload runs in the node's pause image {image}, whose entrypoint prints \
             nothing; give the harness the workload image (--pod-image) to test an image's defaults"
        ))),
    }
}

/// The command that replaces the image's entrypoint, and how argv[0] then reads.
fn overriding_command(w: &PodWorkload) -> Vec<String> {
    match w {
        PodWorkload::Image(_) => vec!["/./node-conformance".into(), "workload".into()],
        PodWorkload::Pause { .. } => w.command(),
    }
}

/// The line `entrypoint-tester` prints for a process started as `argv`.
pub fn argv_line(argv: &[String]) -> String {
    format!("[{}]", argv.join(" "))
}

/// Upstream's `entrypointTestPod`: restart policy Never, a grace period of 1 s.
fn entrypoint_pod<'a>(s: &'a Session<'a>, c: Container) -> Result<ApiPod<'a>, String> {
    ApiPod::create_spec(
        s,
        "client-containers",
        PodSpec {
            restart_policy: Some("Never".into()),
            termination_grace_period_seconds: Some(1),
            containers: vec![c],
            ..Default::default()
        },
    )
}

/// Upstream's `TestContainerOutput` of a pod of `c`, expecting `want`.
fn output_of(s: &Session<'_>, c: Container, want: String) -> Outcome {
    let mut r = Recorder::new();
    let pod = match entrypoint_pod(s, c) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    match container_output(&pod, NAME, &[want], Matching::Substring) {
        Ok(d) => r.ok("output", d),
        Err(e) => r.fail("output", e),
    }
    r.finish(describe)
}

fn image_defaults(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Some(skip) = defaults_unseen(&s.workload) {
        return skip;
    }
    let mut r = Recorder::new();
    let pod = container(&s, NAME, &[]).and_then(|mut c| {
        c.args = None;
        entrypoint_pod(&s, c)
    });
    let pod = match pod {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    if let Err(e) = pod.wait_running() {
        return r.fail_now(e);
    }
    let until = Instant::now() + PAUSED_WAIT;
    loop {
        match pod.logs(NAME) {
            Ok(log) if log.contains("Paused") => {
                r.ok("log", "the image's default arguments ran: Paused");
                break;
            }
            seen if Instant::now() >= until => {
                r.fail(
                    "log",
                    format!("no \"Paused\" in the log within 3 s: {seen:?}"),
                );
                break;
            }
            _ => std::thread::sleep(Duration::from_secs(2)),
        }
    }
    r.finish(describe)
}

fn override_arguments(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Some(skip) = defaults_unseen(&s.workload) {
        return skip;
    }
    let args = ["entrypoint-tester", "override", "arguments"];
    let c = match container(&s, NAME, &args) {
        Ok(c) => c,
        Err(e) => return Outcome::failed(e),
    };
    // The image's entrypoint with the pod's arguments.
    let mut argv = s.workload.command();
    argv.extend(args.iter().map(|a| (*a).to_string()));
    output_of(&s, c, argv_line(&argv))
}

fn with_command(ctx: &Context, args: &[&str]) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let c = match container(&s, NAME, args) {
        Ok(c) => c,
        Err(e) => return Outcome::failed(e),
    };
    let command = overriding_command(&s.workload);
    let c = Container {
        command: Some(command.clone()),
        ..c
    };
    let mut argv = command;
    argv.extend(args.iter().map(|a| (*a).to_string()));
    output_of(&s, c, argv_line(&argv))
}

fn override_command(ctx: &Context) -> Outcome {
    with_command(ctx, &["entrypoint-tester"])
}

fn override_all(ctx: &Context) -> Outcome {
    with_command(ctx, &["entrypoint-tester", "override", "arguments"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overriding_command_is_told_from_the_entrypoint() {
        let image = PodWorkload::Image("node-conformance-workload:x".into());
        let entrypoint = image.command();
        let overriding = overriding_command(&image);
        assert_ne!(argv_line(&entrypoint), argv_line(&overriding));
        assert_eq!(argv_line(&overriding), "[/./node-conformance workload]");
        let pause = PodWorkload::Pause {
            image: "registry.k8s.io/pause:3.2".into(),
            dir: "/var/lib/x".into(),
        };
        assert!(defaults_unseen(&pause).is_some());
        assert!(defaults_unseen(&image).is_none());
    }
}
