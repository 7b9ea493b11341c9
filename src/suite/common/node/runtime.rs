//! test/e2e/common/node/runtime.go (v1.30.2): "Container Runtime blackbox test", the tests
//! tagged NodeConformance. Upstream's busybox shell scripts are the harness's workload actions
//! (`--count-start`, `--exit-on-start`, `--print`, `--termination-message`), which do the
//! same to the files and streams the kubelet reads.
//!
//! "when running a container with a new image" pulls, where upstream pulls agnhost from
//! registry.k8s.io and alpine from a private repository of gcr.io, the test image from the
//! run's own registry on 127.0.0.1 (`crate::runtime::registry`): a public repository, and a
//! private one that wants the run's Basic credentials, which the kubelet gets from a
//! `kubernetes.io/dockerconfigjson` image pull Secret. The invalid registry is upstream's
//! `invalid.registry.k8s.io`, which never resolves.

use std::time::Duration;

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, EmptyDirVolumeSource, LocalObjectReference, Pod, PodSpec, Secret,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::runtime::Unavailable;
use crate::suite::common::kit::{container, create, typed, unique};
use crate::suite::functional::{ApiPod, Session, Waits, removal, session, summary};
use crate::suite::{Context, Outcome, Recorder, Service, Test, describe};

const TAGS: &[&str] = &["NodeConformance"];
const CONFORMANCE: &[&str] = &["NodeConformance", "Conformance"];
const NEEDS: &[Service] = &[Service::ControlPlane];
const PULLS: &[Service] = &[Service::ControlPlane, Service::Registry];

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
    let pull = |behaviour, needs, run| Test {
        area: AREA,
        behaviour,
        tags: TAGS,
        needs,
        run,
        read_ahead: None,
        budget: Some(pull_budget),
    };
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
        pull(
            "blackbox test when running a container with a new image should not be able to pull image from invalid registry",
            NEEDS,
            pull_invalid_registry,
        ),
        pull(
            "blackbox test when running a container with a new image should be able to pull image",
            PULLS,
            pull_public,
        ),
        pull(
            "blackbox test when running a container with a new image should not be able to pull from private registry without secret",
            PULLS,
            pull_private_without_secret,
        ),
        pull(
            "blackbox test when running a container with a new image should be able to pull from private registry with secret",
            PULLS,
            pull_private_with_secret,
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

/// Upstream's ContainerStatusRetryTimeout: how long one attempt of an image pull test looks
/// at the container's status (5 minutes), here no longer than the configured pod start wait.
fn status_retry(w: &Waits) -> Duration {
    Duration::from_secs(300).min(w.pod_start)
}

/// Upstream's `flakeRetry`: an image pull test makes its pod up to three times.
const PULL_ATTEMPTS: usize = 3;

/// Upstream's InvalidRegistryImage: a registry host that never resolves.
const INVALID_REGISTRY_IMAGE: &str = "invalid.registry.k8s.io/invalid/alpine:3.1";

fn pull_budget(w: &Waits) -> Duration {
    (status_retry(w) + removal(w)) * PULL_ATTEMPTS as u32
}

/// What an image pull test expects of its container: upstream's `expectedPullStatus` (the
/// pull fails: Waiting with ErrImagePull or ImagePullBackOff, phase Pending) or not (the
/// container Running, phase Running).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pull {
    Fails,
    Runs,
}

/// What one look at the pod says of an image pull attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    /// As expected: upstream's `checkContainerStatus` passes.
    Reached(String),
    /// Not yet: looked at again until the attempt's time is up.
    Pending(String),
    /// A pull that must succeed failed: the kubelet pulls again after its back-off (it may not
    /// have had the pull Secret yet), so it is looked at again, for [`PULL_FAILING`] at most.
    Failing(String),
    /// Never as expected any more, so the attempt ends at once: an image that was pulled where
    /// the pull must fail, an image name or pull policy refused, or a container that ended
    /// (restart policy Never).
    Wrong(String),
}

/// How long a pull that must succeed may go on failing before its attempt ends: the registry
/// is on this node, so a failure that outlasts the kubelet's first back-offs (10, 20 and 40 s)
/// is not one waiting brings right, as it may for upstream's remote registries.
const PULL_FAILING: Duration = Duration::from_secs(90);

/// The waiting reasons the kubelet gives an image it could not pull (pkg/kubelet/images).
const PULL_FAILED: [&str; 2] = ["ErrImagePull", "ImagePullBackOff"];
/// Other reasons that no waiting ends: the image name or pull policy is refused.
const PULL_REFUSED: [&str; 3] = ["InvalidImageName", "ErrImageNeverPull", "ErrImageInspect"];

/// Upstream's `checkContainerStatus` of an image pull test: the container's state first
/// (Waiting for an image pull failure, else Running), then the pod's phase (Pending, else
/// Running); with [`Attempt::Wrong`] for what can no longer turn out as expected. `manifest`
/// (`sha256:<hex>`) is the digest of the manifest the running container's `imageID` must end
/// with (`<repository>@<digest>`, Docker's prefixed with `docker-pullable://`), when known.
fn pull_status(pod: &Pod, expect: Pull, manifest: Option<&str>) -> Attempt {
    let Some(status) = first_status(pod) else {
        return Attempt::Pending(format!("phase {:?}, no container status yet", phase(pod)));
    };
    let state = status.state.as_ref();
    let waiting = state.and_then(|s| s.waiting.as_ref());
    let reason = waiting.and_then(|w| w.reason.as_deref()).unwrap_or("");
    let message = waiting.and_then(|w| w.message.as_deref()).unwrap_or("");
    let said = if message.is_empty() {
        reason.to_string()
    } else {
        format!("{reason}: {message}")
    };
    let phase = phase(pod);
    if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
        return Attempt::Wrong(format!(
            "the container ran and ended (exit code {}{}), phase {phase}",
            t.exit_code,
            t.reason
                .as_deref()
                .map(|r| format!(", {r}"))
                .unwrap_or_default()
        ));
    }
    match expect {
        Pull::Fails => {
            if state.and_then(|s| s.running.as_ref()).is_some() {
                return Attempt::Wrong(format!(
                    "the image was pulled and the container is Running (image {}, imageID {}), phase {phase}",
                    status.image, status.image_id
                ));
            }
            if waiting.is_none() {
                return Attempt::Pending(format!(
                    "container state {:?}, want Waiting",
                    state_of(state)
                ));
            }
            if !PULL_FAILED.contains(&reason) {
                return Attempt::Pending(format!(
                    "waiting reason {said:?}, want ErrImagePull or ImagePullBackOff"
                ));
            }
            if phase != "Pending" {
                return Attempt::Pending(format!("phase {phase:?}, want Pending ({said})"));
            }
            Attempt::Reached(format!("Waiting ({said}), phase Pending"))
        }
        Pull::Runs => {
            if PULL_REFUSED.contains(&reason) {
                return Attempt::Wrong(format!("the image is refused: {said}"));
            }
            if PULL_FAILED.contains(&reason) {
                return Attempt::Failing(format!("the image was not pulled: {said}"));
            }
            if state.and_then(|s| s.running.as_ref()).is_none() {
                return Attempt::Pending(format!(
                    "container state {:?}{}, want Running",
                    state_of(state),
                    if said.is_empty() {
                        String::new()
                    } else {
                        format!(" ({said})")
                    }
                ));
            }
            if let Some(d) = manifest
                && !status.image_id.ends_with(d)
            {
                return Attempt::Wrong(format!(
                    "the container runs imageID {:?}, not the image of manifest {d}",
                    status.image_id
                ));
            }
            if phase != "Running" {
                return Attempt::Pending(format!("phase {phase:?}, want Running"));
            }
            Attempt::Reached(format!(
                "Running (image {}, imageID {}), phase Running",
                status.image, status.image_id
            ))
        }
    }
}

/// A `.dockerconfigjson` (the `kubernetes.io/dockerconfigjson` Secret's key) that gives
/// `user`:`password` for the registry at `host` (`127.0.0.1:<port>`).
fn docker_config_json(host: &str, user: &str, password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    serde_json::json!({"auths": {host: {"auth": auth}}}).to_string()
}

/// Which image an image pull test pulls, and what it expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Upstream's invalid registry: the pull fails.
    InvalidRegistry,
    /// The run's public repository: the container runs.
    Public,
    /// The run's private repository without a pull Secret: the pull fails.
    PrivateWithoutSecret,
    /// The run's private repository with a pull Secret: the container runs.
    PrivateWithSecret,
}

/// Upstream's `imagePullTest`: a pod of one container `image-pull-test` of the image `source`
/// names (pull policy Always, restart policy Never, with an image pull Secret of the run's
/// credentials for [`Source::PrivateWithSecret`]) is made, looked at until [`pull_status`] is
/// reached, wrong, or the attempt's time is up, and deleted; up to [`PULL_ATTEMPTS`] times
/// while it fails. The run's registry is started once the kubelet is there to pull from it;
/// a failure reports the requests it saw.
fn pull_test(ctx: &Context, source: Source) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let registry = match source {
        Source::InvalidRegistry => None,
        _ => match ctx.services.registry(&ctx.node) {
            Ok(reg) => Some(reg),
            Err(Unavailable::Absent(m)) => return Outcome::skipped(m),
            Err(Unavailable::Broken(m)) => return Outcome::failed(m),
        },
    };
    let (image, expect, manifest) = match (source, registry) {
        (Source::Public, Some(reg)) => (reg.public_image(), Pull::Runs, Some(reg.public_digest())),
        (Source::PrivateWithoutSecret, Some(reg)) => (reg.private_image(), Pull::Fails, None),
        (Source::PrivateWithSecret, Some(reg)) => {
            (reg.private_image(), Pull::Runs, Some(reg.private_digest()))
        }
        _ => (INVALID_REGISTRY_IMAGE.to_string(), Pull::Fails, None),
    };
    let secret_name = (source == Source::PrivateWithSecret).then(|| unique("image-pull-secret"));
    let secret = secret_name.as_deref();
    let image = image.as_str();
    let mut r = Recorder::new();
    r.info("image", image);
    let secret_path = match (secret, registry) {
        (Some(name), Some(registry)) => {
            let (user, password) = registry.credentials();
            let config = docker_config_json(&registry.private_host(), user, password);
            let object = Secret {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    ..Default::default()
                },
                type_: Some("kubernetes.io/dockerconfigjson".into()),
                data: Some(
                    [(
                        ".dockerconfigjson".to_string(),
                        ByteString(config.into_bytes()),
                    )]
                    .into(),
                ),
                ..Default::default()
            };
            if let Err(e) = create(&s, "secrets", &object) {
                return r.fail_now(e);
            }
            r.ok(
                "image pull secret",
                format!(
                    "{name} (kubernetes.io/dockerconfigjson for {})",
                    registry.private_host()
                ),
            );
            Some(format!("/api/v1/namespaces/{}/secrets/{name}", s.namespace))
        }
        _ => None,
    };
    let mut last = String::new();
    let mut passed = false;
    for attempt in 1..=PULL_ATTEMPTS {
        let pod = ApiPod::create_spec(
            &s,
            "image-pull-test",
            PodSpec {
                restart_policy: Some("Never".into()),
                containers: vec![Container {
                    name: "image-pull-test".into(),
                    image: Some(image.to_string()),
                    image_pull_policy: Some("Always".into()),
                    ..Default::default()
                }],
                image_pull_secrets: secret.map(|name| {
                    vec![LocalObjectReference {
                        name: name.to_string(),
                    }]
                }),
                ..Default::default()
            },
        );
        let pod = match pod {
            Ok(p) => p,
            Err(e) => return r.fail_now(e),
        };
        let failing_since = std::cell::Cell::new(None::<std::time::Instant>);
        let seen = pod
            .wait_within(
                match expect {
                    Pull::Fails => "to fail to pull its image",
                    Pull::Runs => "to pull its image and run",
                },
                status_retry(&s.waits),
                |p| match pull_status(&typed(p)?, expect, manifest) {
                    Attempt::Pending(why) => {
                        failing_since.set(None);
                        Err(why)
                    }
                    Attempt::Failing(why) => {
                        let since = failing_since.get().unwrap_or_else(std::time::Instant::now);
                        failing_since.set(Some(since));
                        if since.elapsed() < PULL_FAILING {
                            Err(why)
                        } else {
                            Ok(())
                        }
                    }
                    Attempt::Reached(_) | Attempt::Wrong(_) => Ok(()),
                },
            )
            .and_then(|p| typed(&p))
            .map(|p| match (pull_status(&p, expect, manifest), registry) {
                // A pull from the run's registry that fails must fail there, not on the way.
                (Attempt::Reached(d), Some(reg)) if expect == Pull::Fails && reg.refused() == 0 => {
                    Attempt::Wrong(format!(
                        "{d}, but the registry refused no request: the pull failed before it asked the registry"
                    ))
                }
                (a, _) => a,
            });
        let item = format!("attempt {attempt} of {PULL_ATTEMPTS}");
        match seen {
            Ok(Attempt::Reached(d)) => {
                r.ok(&item, d);
                passed = true;
            }
            Ok(Attempt::Failing(e)) => {
                let e = format!("{e} (failing for {}s)", PULL_FAILING.as_secs());
                r.info(&item, e.clone());
                last = e;
            }
            Ok(Attempt::Wrong(e) | Attempt::Pending(e)) | Err(e) => {
                r.info(&item, e.clone());
                last = e;
            }
        }
        if let Err(e) = pod.delete_at_once() {
            r.fail(format!("pod of {item} deleted"), e);
        }
        if passed {
            break;
        }
    }
    if let Some(path) = secret_path {
        match s.api.delete(&path, &serde_json::json!({})) {
            Ok(()) => s.cp.untrack_object(&path),
            Err(e) => r.fail("image pull secret deleted", e.to_string()),
        }
    }
    if let (Some(registry), Pull::Fails) = (registry, expect) {
        r.info(
            "registry",
            format!(
                "the private site refused {} requests without the run's credentials",
                registry.refused()
            ),
        );
    }
    if !passed {
        if let Some(registry) = registry {
            let requests = registry.requests();
            let shown = requests.len().saturating_sub(20);
            r.info(
                "registry requests",
                if requests.is_empty() {
                    "none: the runtime never reached the run's registry (it must pull plain HTTP from 127.0.0.1, as containerd's CRI and Docker do by default)".to_string()
                } else {
                    requests[shown..].join("; ")
                },
            );
        }
        r.fail(
            "image pull",
            format!("all {PULL_ATTEMPTS} attempts failed, the last: {last}"),
        );
    }
    r.finish(describe)
}

fn pull_invalid_registry(ctx: &Context) -> Outcome {
    pull_test(ctx, Source::InvalidRegistry)
}

fn pull_public(ctx: &Context) -> Outcome {
    pull_test(ctx, Source::Public)
}

fn pull_private_without_secret(ctx: &Context) -> Outcome {
    pull_test(ctx, Source::PrivateWithoutSecret)
}

fn pull_private_with_secret(ctx: &Context) -> Outcome {
    pull_test(ctx, Source::PrivateWithSecret)
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

    fn pulled(phase: &str, state: Value) -> Pod {
        pod(
            serde_json::json!({"metadata": {"name": "image-pull-test-1"},
            "status": {"phase": phase, "containerStatuses": [{"name": "image-pull-test",
                "image": "127.0.0.1:40000/node-conformance/public:r1",
                "imageID": "127.0.0.1:40000/node-conformance/public@sha256:ab",
                "ready": false, "restartCount": 0, "state": state}]}}),
        )
    }

    fn running_state() -> Value {
        serde_json::json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}})
    }

    fn waiting(reason: &str, message: &str) -> Value {
        serde_json::json!({"waiting": {"reason": reason, "message": message}})
    }

    #[test]
    fn a_pull_that_must_fail_wants_a_pull_error_and_pending() {
        // As kubelet 1.20 on containerd 1.6 reports a pull refused 401 and its back-off.
        let unauthorized = waiting(
            "ErrImagePull",
            "rpc error: code = Unknown desc = failed to pull and unpack image \"127.0.0.1:40001/node-conformance/private:r1\": failed to resolve reference \"127.0.0.1:40001/node-conformance/private:r1\": pulling from host 127.0.0.1:40001 failed with status code [manifests r1]: 401 Unauthorized",
        );
        let back_off = waiting(
            "ImagePullBackOff",
            "Back-off pulling image \"invalid.registry.k8s.io/invalid/alpine:3.1\"",
        );
        for state in [unauthorized, back_off] {
            let got = pull_status(&pulled("Pending", state), Pull::Fails, None);
            assert!(
                matches!(&got, Attempt::Reached(d) if d.contains("phase Pending")),
                "{got:?}"
            );
        }
        // Not yet: no status, being created, or a pull error in a phase not Pending.
        let none = pod(serde_json::json!({"status": {"phase": "Pending"}}));
        assert!(matches!(
            pull_status(&none, Pull::Fails, None),
            Attempt::Pending(_)
        ));
        let creating = pulled("Pending", waiting("ContainerCreating", ""));
        let got = pull_status(&creating, Pull::Fails, None);
        assert!(
            matches!(&got, Attempt::Pending(e) if e.contains("\"ContainerCreating\"")),
            "{got:?}"
        );
        let got = pull_status(
            &pulled("Unknown", waiting("ErrImagePull", "x")),
            Pull::Fails,
            None,
        );
        assert!(
            matches!(&got, Attempt::Pending(e) if e.contains("want Pending")),
            "{got:?}"
        );
        // Wrong for good: pulled and running, or ran and ended.
        let running = serde_json::json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}});
        let got = pull_status(&pulled("Running", running), Pull::Fails, None);
        assert!(
            matches!(&got, Attempt::Wrong(e) if e.contains("was pulled")),
            "{got:?}"
        );
        let ended = serde_json::json!({"terminated": {"exitCode": 0, "reason": "Completed"}});
        let got = pull_status(&pulled("Succeeded", ended), Pull::Fails, None);
        assert!(
            matches!(&got, Attempt::Wrong(e) if e.contains("exit code 0, Completed")),
            "{got:?}"
        );
    }

    #[test]
    fn a_pull_that_must_succeed_wants_running_and_ends_at_a_pull_error() {
        let running = serde_json::json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}});
        let got = pull_status(&pulled("Running", running.clone()), Pull::Runs, None);
        assert!(
            matches!(&got, Attempt::Reached(d) if d.contains("imageID 127.0.0.1:40000/node-conformance/public@sha256:ab")),
            "{got:?}"
        );
        // The container runs before the kubelet's next status says the pod does.
        let got = pull_status(&pulled("Pending", running), Pull::Runs, None);
        assert!(
            matches!(&got, Attempt::Pending(e) if e.contains("want Running")),
            "{got:?}"
        );
        let got = pull_status(
            &pulled("Pending", waiting("ContainerCreating", "")),
            Pull::Runs,
            None,
        );
        assert!(
            matches!(&got, Attempt::Pending(e) if e.contains("Waiting (ContainerCreating)")),
            "{got:?}"
        );
        // A runtime that will not pull plain HTTP from 127.0.0.1 says so: looked at again (the
        // kubelet pulls again after its back-off), for a while.
        let https = waiting(
            "ErrImagePull",
            "rpc error: code = Unknown desc = failed to pull and unpack image \"127.0.0.1:40000/node-conformance/public:r1\": failed to resolve reference: failed to do request: Head \"https://127.0.0.1:40000/v2/node-conformance/public/manifests/r1\": http: server gave HTTP response to HTTPS client",
        );
        let got = pull_status(&pulled("Pending", https), Pull::Runs, None);
        assert!(
            matches!(&got, Attempt::Failing(e) if e.contains("not pulled: ErrImagePull: ") && e.contains("HTTPS client")),
            "{got:?}"
        );
        let got = pull_status(
            &pulled("Pending", waiting("ImagePullBackOff", "")),
            Pull::Runs,
            None,
        );
        assert!(matches!(got, Attempt::Failing(_)), "{got:?}");
        let got = pull_status(
            &pulled("Pending", waiting("InvalidImageName", "")),
            Pull::Runs,
            None,
        );
        assert!(
            matches!(&got, Attempt::Wrong(e) if e.contains("refused")),
            "{got:?}"
        );
        // The image of the expected manifest, or another one (Docker's imageID has a scheme).
        let ours = pulled("Running", running_state());
        assert!(matches!(
            pull_status(&ours, Pull::Runs, Some("sha256:ab")),
            Attempt::Reached(_)
        ));
        let mut docker = ours.clone();
        if let Some(c) = docker
            .status
            .as_mut()
            .and_then(|s| s.container_statuses.as_mut())
        {
            c[0].image_id =
                "docker-pullable://127.0.0.1:40000/node-conformance/public@sha256:ab".into();
        }
        assert!(matches!(
            pull_status(&docker, Pull::Runs, Some("sha256:ab")),
            Attempt::Reached(_)
        ));
        let got = pull_status(&ours, Pull::Runs, Some("sha256:cd"));
        assert!(
            matches!(&got, Attempt::Wrong(e) if e.contains("not the image of manifest sha256:cd")),
            "{got:?}"
        );
        let ended = serde_json::json!({"terminated": {"exitCode": 127, "reason": "Error"}});
        let got = pull_status(&pulled("Failed", ended), Pull::Runs, None);
        assert!(
            matches!(&got, Attempt::Wrong(e) if e.contains("exit code 127")),
            "{got:?}"
        );
    }

    #[test]
    fn the_pull_secret_gives_the_registrys_host_its_credentials() {
        let config = docker_config_json("127.0.0.1:40001", "node-conformance", "pw");
        let v: Value = serde_json::from_str(&config).unwrap();
        let auth = v["auths"]["127.0.0.1:40001"]["auth"].as_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .unwrap();
        assert_eq!(decoded, b"node-conformance:pw");
        assert_eq!(v["auths"].as_object().unwrap().len(), 1);
    }
}
