//! test/e2e_node/container_lifecycle_test.go (kubernetes c1cf94e9): "Containers Lifecycle",
//! the order in which the kubelet runs init containers, regular containers, their postStart and
//! preStop hooks and their restarts, read back from what each of them logged.
//!
//! Upstream's busybox shell of `ExecCommand` (container_lifecycle_pod_construction.go) is the
//! workload's `--lifecycle NAME SPEC` (src/workload/lifecycle.rs): the same lines, to the same
//! per-container log on the pod's `/persistent` emptyDir and to the container's output. As
//! upstream's `preparePod` does, every container gets that volume and 15Mi/35Mi of memory;
//! upstream leaves the grace period at its default, 30 s, and so do these pods. Upstream's
//! `sh -c "exit 1"` probe is the workload's `--exit 1`, its `test -f started` is `--cat
//! started`, and its `sleep 10000` container (PID 1 without a SIGTERM handler, so it ignores
//! the signal) is `--sleep 10000`. The three tests upstream runs in order on one pod with an
//! image from a registry that does not exist make a pod each, so each stands alone.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, ExecAction, Lifecycle, LifecycleHandler, Pod, PodSpec, Probe,
    ResourceRequirements, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::json;

use crate::suite::common::kit::{failed_for, typed, with_command};
use crate::suite::functional::{ApiPod, Session, Waits, removal, session, summary};
use crate::suite::{Context, Outcome, Recorder, Service, Test, describe};

const AREA: &str = "[NodeConformance] Containers Lifecycle";
/// Upstream's `imageutils.InvalidRegistryImage`.
const INVALID_REGISTRY_IMAGE: &str = "invalid.registry.k8s.io/invalid/alpine:3.1";
/// A pod's grace period when its spec names none.
const DEFAULT_GRACE: i64 = 30;
/// Upstream's waits for a pod to finish, and for a container's restarts. Upstream counts
/// them from the pod's creation on a node that starts a few pods at a time; here the whole
/// group's pods start side by side and a pod may wait its turn in the kubelet, so each wait
/// also gets upstream's PodStartTimeout (the pod-start wait) for the pod to start.
const FINISH: Duration = Duration::from_secs(60);
const RESTARTS: Duration = Duration::from_secs(120);
/// Upstream's `bufferSeconds` beyond the grace period for a deleted pod to go.
const GRACE_BUFFER: i64 = 30;

pub fn tests() -> Vec<Test> {
    let t = |behaviour, tags, run| Test {
        area: AREA,
        behaviour,
        tags,
        needs: &[Service::ControlPlane],
        run,
        read_ahead: None,
        budget: Some(|w: &Waits| 2 * w.pod_start + RESTARTS + removal(w)),
    };
    vec![
        t(
            "should launch init container serially before a regular container",
            &[],
            serially,
        ),
        t(
            "should not launch regular containers if an init container fails",
            &[],
            init_fails,
        ),
        t(
            "should run Init container to completion before call to PostStart of regular container",
            &[],
            init_before_post_start,
        ),
        t(
            "should restart failing container when pod restartPolicy is Always",
            &[],
            restarts_failing,
        ),
        t(
            "should not launch second container before PostStart of the first container completed",
            &[],
            post_start_blocks,
        ),
        t(
            "when have init container in a Pod with restartPolicy=Never when an init container fails to start because of a bad image should mark a Pod as failed and produce log",
            &[],
            |ctx| bad_image_test(ctx, BadImage::ProducesLog),
        ),
        t(
            "when have init container in a Pod with restartPolicy=Never when an init container fails to start because of a bad image should not start an init container",
            &[],
            |ctx| bad_image_test(ctx, BadImage::InitNotStarted),
        ),
        t(
            "when have init container in a Pod with restartPolicy=Never when an init container fails to start because of a bad image should not start a regular container",
            &[],
            |ctx| bad_image_test(ctx, BadImage::RegularNotStarted),
        ),
        t(
            "shouldn't restart init containers upon regular container restart",
            &[],
            init_not_restarted,
        ),
        t(
            "when a pod cannot terminate gracefully should respect termination grace period seconds",
            &["NodeConformance"],
            |ctx| grace_respected(ctx, false),
        ),
        t(
            "when a pod cannot terminate gracefully should respect termination grace period seconds with long-running preStop hook",
            &["NodeConformance"],
            |ctx| grace_respected(ctx, true),
        ),
        t(
            "should call the container's preStop hook and terminate it if its startup probe fails",
            &[],
            |ctx| pre_stop_on_probe(ctx, ProbeKind::Startup),
        ),
        t(
            "should call the container's preStop hook and terminate it if its liveness probe fails",
            &[],
            |ctx| pre_stop_on_probe(ctx, ProbeKind::Liveness),
        ),
    ]
}

/// One line a container, hook or probe logged: upstream's `containerOutput`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub at: DateTime<FixedOffset>,
    pub name: String,
    pub event: String,
}

/// Every line of every container's log, in time order: upstream's `containerOutputList`,
/// which its `parseOutput` makes. Its checks are upstream's, with upstream's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline(pub Vec<Entry>);

impl fmt::Display for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            writeln!(
                f,
                "{i}) {} {} {}",
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                e.name,
                e.event
            )?;
        }
        Ok(())
    }
}

impl Timeline {
    /// Parses the logs (`<RFC 3339 time> <name> <event> ...` a line) and sorts the lines by
    /// time, stably. `Err` names a line that is not such a line.
    pub fn parse(logs: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for line in logs.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [at, name, event, ..] = fields[..] else {
                return Err(format!("{fields:?} should have at least length 3"));
            };
            let at = DateTime::parse_from_rfc3339(at)
                .map_err(|e| format!("line {line:?}: time {at:?}: {e}"))?;
            entries.push(Entry {
                at,
                name: name.to_string(),
                event: event.to_string(),
            });
        }
        entries.sort_by_key(|e| e.at);
        Ok(Self(entries))
    }

    fn find(&self, name: &str, event: &str, from: usize) -> Option<usize> {
        self.0
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, e)| e.name == name && e.event == event)
            .map(|(i, _)| i)
    }

    fn started(&self, name: &str) -> Result<usize, String> {
        self.find(name, "Started", 0)
            .ok_or_else(|| format!("couldn't find that {name} ever started, got\n{self}"))
    }

    /// Both ran at once, whichever started first.
    pub fn run_together(&self, lhs: &str, rhs: &str) -> Result<(), String> {
        self.run_together_lhs_first(lhs, rhs)
            .or_else(|_| self.run_together_lhs_first(rhs, lhs))
    }

    fn run_together_lhs_first(&self, lhs: &str, rhs: &str) -> Result<(), String> {
        let lhs_start = self.started(lhs)?;
        let rhs_start = self
            .find(rhs, "Started", lhs_start + 1)
            .ok_or_else(|| format!("couldn't find that {rhs} ever started, got\n{self}"))?;
        let lhs_exit = self
            .find(lhs, "Exiting", lhs_start + 1)
            .ok_or_else(|| format!("couldn't find that {lhs} ever exited, got\n{self}"))?;
        if rhs_start > lhs_exit {
            return Err(format!(
                "expected {rhs} to start before exiting {lhs}, got\n{self}"
            ));
        }
        let rhs_exit = self
            .find(rhs, "Exiting", rhs_start + 1)
            .ok_or_else(|| format!("couldn't find that {rhs} ever exited, got\n{self}"))?;
        if lhs_start > rhs_exit {
            return Err(format!(
                "expected {lhs} to start before exiting {rhs}, got\n{self}"
            ));
        }
        Ok(())
    }

    /// `rhs` began starting after `lhs` started (the same name: it started again).
    pub fn starts_before(&self, lhs: &str, rhs: &str) -> Result<(), String> {
        let lhs_start = self.started(lhs)?;
        self.find(rhs, "Starting", lhs_start + 1)
            .map(|_| ())
            .ok_or_else(|| format!("couldn't find that {rhs} started after {lhs}, got\n{self}"))
    }

    /// `rhs` exited after `lhs` did (the same name: it exited again).
    pub fn exits_before(&self, lhs: &str, rhs: &str) -> Result<(), String> {
        let lhs_exit = self
            .find(lhs, "Exiting", 0)
            .ok_or_else(|| format!("couldn't find that {lhs} ever exited, got\n{self}"))?;
        self.find(rhs, "Exiting", lhs_exit + 1)
            .map(|_| ())
            .ok_or_else(|| {
                format!(
                    "couldn't find that {rhs} starting before {lhs} exited (starting at idx {}), got\n{self}",
                    lhs_exit + 1
                )
            })
    }

    pub fn starts(&self, name: &str) -> Result<(), String> {
        self.started(name).map(|_| ())
    }

    pub fn doesnt_start(&self, name: &str) -> Result<(), String> {
        match self.find(name, "Started", 0) {
            Some(_) => Err(format!(
                "find {name} started, but didn't expect to, got\n{self}"
            )),
            None => Ok(()),
        }
    }

    pub fn exits(&self, name: &str) -> Result<(), String> {
        self.find(name, "Exiting", 0)
            .map(|_| ())
            .ok_or_else(|| format!("couldn't find that {name} ever exited, got\n{self}"))
    }

    fn starting_twice(&self, name: &str) -> Result<bool, String> {
        let first = self
            .find(name, "Starting", 0)
            .ok_or_else(|| format!("couldn't find that {name} ever started, got\n{self}"))?;
        Ok(self.find(name, "Starting", first + 1).is_some())
    }

    pub fn has_restarted(&self, name: &str) -> Result<(), String> {
        match self.starting_twice(name)? {
            true => Ok(()),
            false => Err(format!(
                "couldn't find that {name} ever restarted, got\n{self}"
            )),
        }
    }

    pub fn has_not_restarted(&self, name: &str) -> Result<(), String> {
        match self.starting_twice(name)? {
            false => Ok(()),
            true => Err(format!(
                "found that {name} restarted but wasn't expected to, got\n{self}"
            )),
        }
    }
}

/// The name upstream gives a hook's or probe's lines: `PostStart-regular-1`.
fn prefixed(prefix: &str, name: &str) -> String {
    format!("{prefix}-{name}")
}

/// A container whose command is upstream's `ExecCommand(name, spec)`.
fn logging(s: &Session<'_>, name: &str, spec: &str) -> Result<Container, String> {
    with_command(s, name, &["--lifecycle", name, spec])
}

/// The workload running `actions`, as a hook's or exec probe's command.
fn exec(s: &Session<'_>, actions: &[&str]) -> ExecAction {
    let mut command = s.workload.command();
    command.extend(actions.iter().map(|a| (*a).to_string()));
    ExecAction {
        command: Some(command),
    }
}

/// A hook that logs as `ExecCommand(<prefix>-<container>, {delay, ContainerName: container})`.
fn logging_hook(s: &Session<'_>, prefix: &str, container: &str, delay: u64) -> LifecycleHandler {
    let name = prefixed(prefix, container);
    LifecycleHandler {
        exec: Some(exec(
            s,
            &[
                "--lifecycle",
                &name,
                &format!("delay={delay},container={container}"),
            ],
        )),
        ..Default::default()
    }
}

/// Upstream's `sh -c "exit 1"` probe, first run after `initial_delay` s, failing once.
fn failing_probe(s: &Session<'_>, initial_delay: i32) -> Probe {
    Probe {
        exec: Some(exec(s, &["--exit", "1"])),
        initial_delay_seconds: Some(initial_delay),
        failure_threshold: Some(1),
        ..Default::default()
    }
}

/// Upstream's `preparePod`: the `/persistent` emptyDir in every container, 15Mi of memory
/// requested and 35Mi the limit; and upstream's default grace period where none is set.
fn prepare(spec: &mut PodSpec) {
    let resources = ResourceRequirements {
        requests: Some([("memory".to_string(), Quantity("15Mi".into()))].into()),
        limits: Some([("memory".to_string(), Quantity("35Mi".into()))].into()),
        ..Default::default()
    };
    let containers = spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten());
    for c in containers {
        c.resources = Some(resources.clone());
        c.volume_mounts
            .get_or_insert_with(Vec::new)
            .push(VolumeMount {
                name: "persistent".into(),
                mount_path: crate::workload::lifecycle::LOG_DIR.into(),
                ..Default::default()
            });
    }
    spec.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: "persistent".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    });
    spec.termination_grace_period_seconds
        .get_or_insert(DEFAULT_GRACE);
}

/// A prepared pod of `containers` (and `init`) with `restart_policy`.
fn pod_spec(restart_policy: &str, init: Vec<Container>, containers: Vec<Container>) -> PodSpec {
    let mut spec = PodSpec {
        restart_policy: Some(restart_policy.into()),
        init_containers: (!init.is_empty()).then_some(init),
        containers,
        ..Default::default()
    };
    prepare(&mut spec);
    spec
}

/// Upstream's `parseOutput`: the log of every container the pod's status lists (its previous
/// log where the current one cannot be read, none where neither can), as one timeline.
fn timeline(pod: &ApiPod<'_>, status: &Pod) -> Result<Timeline, String> {
    let st = status.status.as_ref();
    let names = st
        .and_then(|s| s.init_container_statuses.as_ref())
        .into_iter()
        .flatten()
        .chain(
            st.and_then(|s| s.container_statuses.as_ref())
                .into_iter()
                .flatten(),
        )
        .map(|c| c.name.clone());
    let mut logs = String::new();
    for name in names {
        let log = pod
            .logs(&name)
            .or_else(|_| pod.logs_with(&name, &[("previous", "true")]))
            .unwrap_or_default();
        logs.push_str(&log);
    }
    Timeline::parse(&logs)
}

/// Upstream's `WaitForPodNoLongerRunningInNamespace`: the pod Succeeded or Failed.
pub fn no_longer_running(pod: &Pod) -> Result<(), String> {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Succeeded" | "Failed") => Ok(()),
        other => Err(format!("phase {}", other.unwrap_or("unknown"))),
    }
}

/// Upstream's `WaitForPodContainerRestartCount`: the container at `index` restarted at least
/// `count` times.
pub fn restarted(pod: &Pod, index: usize, count: i32) -> Result<(), String> {
    let got = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.get(index))
        .map(|c| c.restart_count);
    match got {
        Some(n) if n >= count => Ok(()),
        Some(n) => Err(format!("container {index}: restartCount {n}, want {count}")),
        None => Err(format!("container {index}: no status yet")),
    }
}

/// Upstream's `WaitForPodInitContainerToFail`: the pod Pending, its init container at `index`
/// waiting for `reason`. `Err((fatal, state))`: fatal when the pod left Pending, which
/// upstream takes as the test's failure at once.
pub fn init_waiting(pod: &Pod, index: usize, reason: &str) -> Result<String, (bool, String)> {
    let status = pod.status.as_ref();
    match status.and_then(|s| s.phase.as_deref()) {
        Some("Pending") => {}
        Some(phase @ ("Failed" | "Running" | "Succeeded")) => {
            return Err((
                true,
                format!("pod was expected to be pending, but it is in the state: {phase}"),
            ));
        }
        other => return Err((false, format!("phase {}", other.unwrap_or("unknown")))),
    }
    let waiting = status
        .and_then(|s| s.init_container_statuses.as_ref())
        .and_then(|c| c.get(index))
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.waiting.as_ref());
    match waiting.and_then(|w| w.reason.as_deref()) {
        Some(r) if r == reason => Ok(format!(
            "init container {index} waiting: {reason}{}",
            waiting
                .and_then(|w| w.message.as_deref())
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        )),
        Some(r) => Err((false, format!("init container {index} waiting: {r}"))),
        None => Err((false, format!("init container {index} not waiting"))),
    }
}

/// Creates the pod, waits for `done` (at most `limit`), reads the timeline and runs
/// `checks` on it.
fn logged_test(
    ctx: &Context,
    prefix: &str,
    build: impl FnOnce(&Session<'_>) -> Result<PodSpec, String>,
    waiting_for: &str,
    limit: impl FnOnce(&Waits) -> Duration,
    done: impl Fn(&Pod) -> Result<(), String>,
    checks: impl FnOnce(&Timeline) -> Vec<(String, Result<(), String>)>,
) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let pod = match build(&s).and_then(|spec| ApiPod::create_spec(&s, prefix, spec)) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    let end = match pod.wait_within(waiting_for, limit(&s.waits), |p| done(&typed(p)?)) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    r.ok("pod", summary(&end));
    let results = match typed(&end).and_then(|p| timeline(&pod, &p)) {
        Ok(t) => t,
        Err(e) => return r.fail_now(format!("parsing the containers' logs: {e}")),
    };
    for (what, check) in checks(&results) {
        match check {
            Ok(()) => r.ok(what, "yes"),
            Err(e) => r.fail(what, e),
        }
    }
    r.finish(describe)
}

/// Each of `pairs` started and exited in that order.
fn in_order(t: &Timeline, pairs: &[(&str, &str)]) -> Vec<(String, Result<(), String>)> {
    pairs
        .iter()
        .flat_map(|(a, b)| {
            [
                (format!("{a} starts before {b}"), t.starts_before(a, b)),
                (format!("{a} exits before {b}"), t.exits_before(a, b)),
            ]
        })
        .collect()
}

fn serially(ctx: &Context) -> Outcome {
    logged_test(
        ctx,
        "initcontainer-test-pod",
        |s| {
            let mut regular = logging(s, "regular-1", "start-delay=5,delay=1")?;
            regular.startup_probe = Some(Probe {
                exec: Some(exec(s, &["--cat", "started"])),
                ..Default::default()
            });
            Ok(pod_spec(
                "Never",
                vec![
                    logging(s, "init-1", "delay=1")?,
                    logging(s, "init-2", "delay=1")?,
                    logging(s, "init-3", "delay=1")?,
                ],
                vec![regular],
            ))
        },
        "to finish",
        |w| w.pod_start + FINISH,
        no_longer_running,
        |t| {
            in_order(
                t,
                &[
                    ("init-1", "init-2"),
                    ("init-2", "init-3"),
                    ("init-3", "regular-1"),
                ],
            )
        },
    )
}

fn init_fails(ctx: &Context) -> Outcome {
    logged_test(
        ctx,
        "initcontainer-test-pod-failure",
        |s| {
            Ok(pod_spec(
                "Never",
                vec![logging(s, "init-1", "delay=1,exit=1")?],
                vec![logging(s, "regular-1", "delay=1")?],
            ))
        },
        "to fail",
        |w| w.pod_start + FINISH,
        |p| failed_for(p, "").map(|_| ()),
        |t| {
            vec![
                ("init-1 starts".into(), t.starts("init-1")),
                ("init-1 exits".into(), t.exits("init-1")),
                (
                    "regular-1 does not start".into(),
                    t.doesnt_start("regular-1"),
                ),
            ]
        },
    )
}

/// A regular container that runs 10 s (time for its postStart hook, as upstream allows).
fn with_post_start(s: &Session<'_>, name: &str) -> Result<Container, String> {
    let mut c = logging(s, name, "delay=10")?;
    c.lifecycle = Some(Lifecycle {
        post_start: Some(logging_hook(s, "PostStart", name, 1)),
        ..Default::default()
    });
    Ok(c)
}

fn init_before_post_start(ctx: &Context) -> Outcome {
    let hook = prefixed("PostStart", "regular-1");
    logged_test(
        ctx,
        "initcontainer-test-pod-with-post-start",
        |s| {
            Ok(pod_spec(
                "Never",
                vec![logging(s, "init-1", "delay=1")?],
                vec![with_post_start(s, "regular-1")?],
            ))
        },
        "to finish",
        |w| w.pod_start + FINISH,
        no_longer_running,
        |t| in_order(t, &[("init-1", &hook)]),
    )
}

fn restarts_failing(ctx: &Context) -> Outcome {
    logged_test(
        ctx,
        "container-must-be-restarted",
        |s| {
            Ok(pod_spec(
                "Always",
                vec![],
                vec![logging(s, "regular-1", "delay=1,exit=1")?],
            ))
        },
        "to restart its container 3 times",
        |w| w.pod_start + RESTARTS,
        |p| restarted(p, 0, 3),
        |t| {
            let mut checks = vec![("regular-1 starts".into(), t.starts("regular-1"))];
            checks.extend(in_order(t, &[("regular-1", "regular-1")]));
            checks
        },
    )
}

fn post_start_blocks(ctx: &Context) -> Outcome {
    let hook = prefixed("PostStart", "regular-1");
    logged_test(
        ctx,
        "post-start-blocks-second-container",
        |s| {
            Ok(pod_spec(
                "Never",
                vec![],
                vec![
                    with_post_start(s, "regular-1")?,
                    logging(s, "regular-2", "delay=1")?,
                ],
            ))
        },
        "to finish",
        |w| w.pod_start + FINISH,
        no_longer_running,
        |t| in_order(t, &[(&hook, "regular-2")]),
    )
}

#[derive(Clone, Copy)]
enum BadImage {
    ProducesLog,
    InitNotStarted,
    RegularNotStarted,
}

fn bad_image_test(ctx: &Context, part: BadImage) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let spec = logging(&s, "init1-1", "delay=600").and_then(|mut init| {
        init.image = Some(INVALID_REGISTRY_IMAGE.into());
        // Upstream's pull policy for a tagged image: the kubelet must try the registry.
        init.image_pull_policy = Some("IfNotPresent".into());
        // The workload's own volume, if any, means nothing to an image that never runs, but
        // the container keeps it: the pod is otherwise upstream's.
        Ok(pod_spec(
            "Never",
            vec![init],
            vec![logging(&s, "regular-1", "delay=1")?],
        ))
    });
    let pod = match spec.and_then(|spec| ApiPod::create_spec(&s, "bad-image", spec)) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    // A pod that left Pending can never pass: the wait ends there, as upstream's does.
    let fatal = std::cell::RefCell::new(None);
    let waited = pod.wait(
        "init container 0 to fail with reason ImagePullBackOff",
        |p| match init_waiting(&typed(p)?, 0, "ImagePullBackOff") {
            Ok(_) => Ok(()),
            Err((true, e)) => {
                *fatal.borrow_mut() = Some(e);
                Ok(())
            }
            Err((false, e)) => Err(e),
        },
    );
    let end = match (waited, fatal.into_inner()) {
        (Err(e), _) | (Ok(_), Some(e)) => return r.fail_now(e),
        (Ok(p), None) => p,
    };
    let pod_now = match typed(&end) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    match init_waiting(&pod_now, 0, "ImagePullBackOff") {
        Ok(d) => r.ok("init container", d),
        Err((_, e)) => return r.fail_now(e),
    }
    let results = match timeline(&pod, &pod_now) {
        Ok(t) => t,
        Err(e) => return r.fail_now(format!("parsing the containers' logs: {e}")),
    };
    match part {
        BadImage::ProducesLog => r.ok("log", format!("{} lines", results.0.len())),
        BadImage::InitNotStarted => match results.doesnt_start("init1-1") {
            Ok(()) => r.ok("init1-1 does not start", "yes"),
            Err(e) => r.fail("init1-1 does not start", e),
        },
        BadImage::RegularNotStarted => match results.doesnt_start("regular-1") {
            Ok(()) => r.ok("regular-1 does not start", "yes"),
            Err(e) => r.fail("regular-1 does not start", e),
        },
    }
    r.finish(describe)
}

fn init_not_restarted(ctx: &Context) -> Outcome {
    logged_test(
        ctx,
        "initcontainer-test-pod",
        |s| {
            Ok(pod_spec(
                "Always",
                vec![
                    logging(s, "init-1", "delay=1")?,
                    logging(s, "init-2", "delay=1")?,
                    logging(s, "init-3", "delay=1")?,
                ],
                vec![logging(s, "regular-1", "delay=10,exit=-1")?],
            ))
        },
        "to restart its container 3 times",
        |w| w.pod_start + RESTARTS,
        |p| restarted(p, 0, 3),
        |t| {
            let mut checks = in_order(
                t,
                &[
                    ("init-1", "init-2"),
                    ("init-2", "init-3"),
                    ("init-3", "regular-1"),
                ],
            );
            for init in ["init-1", "init-2", "init-3"] {
                checks.push((
                    format!("{init} has not restarted"),
                    t.has_not_restarted(init),
                ));
            }
            checks.push((
                "regular-1 has restarted".into(),
                t.has_restarted("regular-1"),
            ));
            checks
        },
    )
}

/// A container that ignores SIGTERM, with a 30 s grace period (and a preStop hook that never
/// ends): deleted gracefully, the pod must be gone within the grace period and 30 s.
fn grace_respected(ctx: &Context, pre_stop: bool) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let grace = 30;
    let spec = with_command(&s, "busybox", &["--sleep", "10000"]).map(|mut c| {
        if pre_stop {
            c.lifecycle = Some(Lifecycle {
                pre_stop: Some(LifecycleHandler {
                    exec: Some(exec(&s, &["--sleep", "10000"])),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        PodSpec {
            containers: vec![c],
            termination_grace_period_seconds: Some(grace),
            ..Default::default()
        }
    });
    let pod =
        match spec.and_then(|spec| ApiPod::create_spec(&s, "pod-termination-grace-period", spec)) {
            Ok(p) => p,
            Err(e) => return r.fail_now(e),
        };
    if let Err(e) = pod.wait_running() {
        return r.fail_now(e);
    }
    // Upstream's `Delete` with no options: the pod's own grace period.
    if let Err(e) = s.api.delete(&pod.path(), &json!({})) {
        return r.fail_now(format!("deleting the pod: {e}"));
    }
    let limit = Duration::from_secs((grace + GRACE_BUFFER).unsigned_abs());
    match pod.wait_gone(limit) {
        Ok(()) => r.ok(
            "deletion",
            format!("gone within the grace period ({grace} s) and {GRACE_BUFFER} s"),
        ),
        Err(e) => r.fail("deletion", e),
    }
    r.finish(describe)
}

#[derive(Clone, Copy)]
enum ProbeKind {
    Startup,
    Liveness,
}

fn pre_stop_on_probe(ctx: &Context, kind: ProbeKind) -> Outcome {
    let hook = prefixed("PreStop", "regular-1");
    logged_test(
        ctx,
        "test-pod",
        |s| {
            let mut c = logging(s, "regular-1", "delay=100,termination=15")?;
            let probe = failing_probe(s, 10);
            match kind {
                ProbeKind::Startup => c.startup_probe = Some(probe),
                ProbeKind::Liveness => c.liveness_probe = Some(probe),
            }
            c.lifecycle = Some(Lifecycle {
                pre_stop: Some(logging_hook(s, "PreStop", "regular-1", 1)),
                ..Default::default()
            });
            Ok(pod_spec("Never", vec![], vec![c]))
        },
        "to complete",
        |w| w.pod_start,
        no_longer_running,
        |t| {
            vec![
                (
                    format!("regular-1 and {hook} run together"),
                    t.run_together("regular-1", &hook),
                ),
                (format!("{hook} starts"), t.starts(&hook)),
                ("regular-1 exits".into(), t.exits("regular-1")),
            ]
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn timeline(lines: &[(&str, &str, &str)]) -> Timeline {
        let text: String = lines
            .iter()
            .map(|(at, name, event)| format!("2024-04-21T10:00:{at}Z {name} {event}\n"))
            .collect();
        Timeline::parse(&text).unwrap()
    }

    /// What the serial test logged on a kubelet: each init container after the one before.
    fn serial() -> Timeline {
        timeline(&[
            ("01.000", "init-1", "Starting 0"),
            ("01.001", "init-1", "Started"),
            ("01.002", "init-1", "Delaying 1"),
            ("02.003", "init-1", "Exiting"),
            ("03.100", "init-2", "Starting 0"),
            ("03.101", "init-2", "Started"),
            ("03.102", "init-2", "Delaying 1"),
            ("04.103", "init-2", "Exiting"),
            ("05.000", "regular-1", "Starting 5"),
            ("10.001", "regular-1", "Started"),
            ("10.002", "regular-1", "Delaying 1"),
            ("11.003", "regular-1", "Exiting"),
        ])
    }

    #[test]
    fn parses_and_sorts_by_time_whatever_the_log_order() {
        // Container logs are read one after another: regular-1's first here.
        let t = Timeline::parse(
            "2024-04-21T10:00:05.000Z regular-1 Starting 0\n\
             2024-04-21T10:00:01.000Z init-1 Starting 0\n\
             2024-04-21T10:00:01.500Z init-1 Exiting\n",
        )
        .unwrap();
        let order: Vec<_> =
            t.0.iter()
                .map(|e| (e.name.as_str(), e.event.as_str()))
                .collect();
        assert_eq!(
            order,
            [
                ("init-1", "Starting"),
                ("init-1", "Exiting"),
                ("regular-1", "Starting")
            ]
        );
        assert!(Timeline::parse("").unwrap().0.is_empty());
        assert!(
            Timeline::parse("Paused\n")
                .unwrap_err()
                .contains("length 3")
        );
        assert!(
            Timeline::parse("yesterday init-1 Started\n")
                .unwrap_err()
                .contains("yesterday")
        );
    }

    #[test]
    fn order_of_starts_and_exits() {
        let t = serial();
        assert!(t.starts_before("init-1", "init-2").is_ok());
        assert!(t.exits_before("init-1", "init-2").is_ok());
        assert!(t.starts_before("init-2", "regular-1").is_ok());
        // The wrong order, and a container that never ran.
        let e = t.starts_before("regular-1", "init-1").unwrap_err();
        assert!(
            e.contains("couldn't find that init-1 started after regular-1"),
            "{e}"
        );
        assert!(t.exits_before("regular-1", "init-2").is_err());
        assert!(t.starts_before("init-3", "regular-1").is_err());
        assert!(t.exits_before("init-2", "init-3").is_err());
        assert!(t.starts("init-3").is_err());
        assert!(t.doesnt_start("init-3").is_ok());
        assert!(t.doesnt_start("init-1").is_err());
        assert!(t.exits("regular-1").is_ok());
    }

    #[test]
    fn init_containers_run_in_parallel_fail_the_order() {
        // A kubelet that started init-2 before init-1 ended.
        let t = timeline(&[
            ("01.000", "init-1", "Starting 0"),
            ("01.001", "init-1", "Started"),
            ("01.100", "init-2", "Starting 0"),
            ("01.101", "init-2", "Started"),
            ("02.000", "init-2", "Exiting"),
            ("02.003", "init-1", "Exiting"),
        ]);
        assert!(t.starts_before("init-1", "init-2").is_ok());
        assert!(t.exits_before("init-1", "init-2").is_err());
    }

    #[test]
    fn restarts_are_told_by_a_second_start() {
        let t = timeline(&[
            ("01.000", "init-1", "Starting 0"),
            ("01.001", "init-1", "Started"),
            ("02.000", "init-1", "Exiting"),
            ("03.000", "regular-1", "Starting 0"),
            ("03.001", "regular-1", "Started"),
            ("13.000", "regular-1", "Exiting"),
            ("24.000", "regular-1", "Starting 0"),
            ("24.001", "regular-1", "Started"),
            ("34.000", "regular-1", "Exiting"),
        ]);
        assert!(t.has_restarted("regular-1").is_ok());
        assert!(t.has_not_restarted("init-1").is_ok());
        assert!(t.starts_before("regular-1", "regular-1").is_ok());
        assert!(t.exits_before("regular-1", "regular-1").is_ok());
        assert!(t.has_restarted("init-1").is_err());
        assert!(t.has_not_restarted("regular-1").is_err());
        assert!(t.has_not_restarted("init-9").is_err());
        // One run only: no second start, no second exit.
        assert!(serial().starts_before("regular-1", "regular-1").is_err());
        assert!(serial().exits_before("regular-1", "regular-1").is_err());
    }

    #[test]
    fn a_hook_runs_together_with_its_container_or_not() {
        let t = timeline(&[
            ("01.000", "regular-1", "Starting 0"),
            ("01.001", "regular-1", "Started"),
            ("01.002", "regular-1", "Delaying 100"),
            ("11.000", "PreStop-regular-1", "Starting 0"),
            ("11.001", "PreStop-regular-1", "Started"),
            ("12.001", "PreStop-regular-1", "Exiting"),
            ("27.100", "regular-1", "Exiting"),
        ]);
        assert!(t.run_together("regular-1", "PreStop-regular-1").is_ok());
        assert!(t.run_together("PreStop-regular-1", "regular-1").is_ok());
        // A hook run after its container had exited.
        let late = timeline(&[
            ("01.001", "regular-1", "Started"),
            ("02.000", "regular-1", "Exiting"),
            ("11.001", "PreStop-regular-1", "Started"),
            ("12.001", "PreStop-regular-1", "Exiting"),
        ]);
        // Upstream's message is that of the second order tried: the hook first.
        let e = late
            .run_together("regular-1", "PreStop-regular-1")
            .unwrap_err();
        assert!(
            e.contains("couldn't find that regular-1 ever started"),
            "{e}"
        );
        assert!(
            late.run_together_lhs_first("regular-1", "PreStop-regular-1")
                .unwrap_err()
                .contains("expected PreStop-regular-1 to start before exiting regular-1")
        );
        // No hook at all.
        assert!(
            serial()
                .run_together("regular-1", "PreStop-regular-1")
                .is_err()
        );
    }

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn waits_end_on_upstreams_conditions() {
        assert!(no_longer_running(&pod(json!({"status": {"phase": "Succeeded"}}))).is_ok());
        assert!(no_longer_running(&pod(json!({"status": {"phase": "Failed"}}))).is_ok());
        assert!(no_longer_running(&pod(json!({"status": {"phase": "Running"}}))).is_err());
        assert!(no_longer_running(&pod(json!({}))).is_err());

        let counted = |n: i32| {
            pod(json!({"status": {"phase": "Running", "containerStatuses": [
                {"name": "regular-1", "ready": false, "restartCount": n, "image": "i",
                 "imageID": ""}]}}))
        };
        assert!(restarted(&counted(3), 0, 3).is_ok());
        assert!(restarted(&counted(4), 0, 3).is_ok());
        assert!(
            restarted(&counted(2), 0, 3)
                .unwrap_err()
                .contains("restartCount 2")
        );
        assert!(restarted(&counted(3), 1, 3).is_err());

        let init = |phase: &str, reason: &str| {
            pod(json!({"status": {"phase": phase, "initContainerStatuses": [
                {"name": "init1-1", "ready": false, "restartCount": 0, "image": "i",
                 "imageID": "", "state": {"waiting": {"reason": reason}}}]}}))
        };
        assert!(init_waiting(&init("Pending", "ImagePullBackOff"), 0, "ImagePullBackOff").is_ok());
        assert!(
            !init_waiting(&init("Pending", "ErrImagePull"), 0, "ImagePullBackOff")
                .unwrap_err()
                .0,
            "ErrImagePull comes first: wait on"
        );
        let (fatal, e) =
            init_waiting(&init("Running", "ImagePullBackOff"), 0, "ImagePullBackOff").unwrap_err();
        assert!(fatal && e.contains("Running"), "{e}");
        assert!(
            !init_waiting(&pod(json!({"status": {"phase": "Pending"}})), 0, "X")
                .unwrap_err()
                .0
        );
    }

    #[test]
    fn prepared_pods_are_upstreams() {
        let c = |name: &str| Container {
            name: name.into(),
            ..Default::default()
        };
        let spec = pod_spec(
            "Never",
            vec![c("init-1")],
            vec![c("regular-1"), c("regular-2")],
        );
        assert_eq!(spec.termination_grace_period_seconds, Some(30));
        assert_eq!(spec.init_containers.as_ref().map(Vec::len), Some(1));
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            let mounts = c.volume_mounts.as_ref().unwrap();
            assert!(
                mounts
                    .iter()
                    .any(|m| m.name == "persistent" && m.mount_path == "/persistent")
            );
            let limits = c
                .resources
                .as_ref()
                .and_then(|r| r.limits.as_ref())
                .unwrap();
            assert_eq!(limits["memory"], Quantity("35Mi".into()));
        }
        assert!(
            spec.volumes
                .unwrap()
                .iter()
                .any(|v| v.name == "persistent" && v.empty_dir.is_some())
        );
        assert_eq!(
            pod_spec("Always", vec![], vec![c("r")]).init_containers,
            None
        );
    }
}
