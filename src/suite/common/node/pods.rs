//! test/e2e/common/node/pods.go (v1.30.2): "Pods", the tests tagged NodeConformance.
//! Upstream's nginx, pause and `sleep 10000` busybox containers are the workload's `--pause`
//! (it prints `Paused` and stops at once on SIGTERM, as they do).
//!
//! The websocket tests: a command run through `pods/exec` and a container's log read through
//! `pods/log`, both over a websocket to the control plane, which relays the first to the
//! kubelet and streams the second from it. Busybox's `echo container is alive; sleep N` is
//! the workload's `--stdout 'container is alive' --sleep N`, and the exec'd
//! `echo 'remote execution test'` the workload binary with `--stdout`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    ContainerPort, Pod, PodReadinessGate, PodSpec, Service as ApiService, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use crate::suite::common::kit::{container, failed_for, typed, with_command};
use crate::suite::common::output::{Matching, container_output};
use crate::suite::functional::{ApiPod, Session, Waits, removal, session};
use crate::suite::{Context, Outcome, Recorder, Service, Test, describe};

const CONFORMANCE: &[&str] = &["NodeConformance", "Conformance"];
const NODE_CONFORMANCE: &[&str] = &["NodeConformance"];
const SLOW_NODE_CONFORMANCE: &[&str] = &["Slow", "NodeConformance"];

/// Upstream's `hostIPTimeout`.
const HOST_IP_WAIT: Duration = Duration::from_secs(120);
/// Upstream's `syncLoopFrequency`: how long a status patch is given to be (wrongly) acted on.
const SYNC_LOOP: Duration = Duration::from_secs(10);
/// Upstream's `validatePodReadiness` polls for a minute.
const READINESS_WAIT: Duration = Duration::from_secs(60);
/// Upstream's `framework.DefaultPodDeletionTimeout`.
const DELETION_WAIT: Duration = Duration::from_secs(180);
/// The grace period upstream deletes its pod with in "should be submitted and removed".
const DELETE_GRACE: i64 = 30;
/// The kubelet's `MaxContainerBackOff`: the longest it waits before restarting a container
/// that keeps exiting.
const MAX_BACK_OFF: Duration = Duration::from_secs(300);
/// Upstream's `maxBackOffTolerance`, 1.3 times the cap, for the sync loop's drift.
const BACK_OFF_TOLERANCE: Duration = Duration::from_secs(390);
/// Upstream's `buildBackOffDuration`: how long a crashing container runs up its back-off
/// before the delays are measured.
const BUILD_BACK_OFF: Duration = Duration::from_secs(60);

pub fn tests() -> Vec<Test> {
    let t = |behaviour, tags, run, budget| Test {
        area: "Pods",
        behaviour,
        tags,
        needs: &[Service::ControlPlane],
        run,
        read_ahead: None,
        budget: Some(budget),
    };
    vec![
        t("should get a host IP", CONFORMANCE, host_ip, |w: &Waits| {
            w.pod_start + HOST_IP_WAIT + removal(w)
        }),
        t(
            "should be submitted and removed",
            CONFORMANCE,
            submitted_and_removed,
            |w: &Waits| w.pod_start + DELETION_WAIT + removal(w),
        ),
        t("should be updated", CONFORMANCE, updated, |w: &Waits| {
            w.pod_start + removal(w)
        }),
        t(
            "should allow activeDeadlineSeconds to be updated",
            CONFORMANCE,
            active_deadline,
            |w: &Waits| 2 * w.pod_start + removal(w),
        ),
        t(
            "should contain environment variables for services",
            CONFORMANCE,
            service_env,
            |w: &Waits| w.pod_start + SERVICE_ENV_TRIES * (w.pod_start + removal(w)) + removal(w),
        ),
        t(
            "should support pod readiness gates",
            NODE_CONFORMANCE,
            readiness_gates,
            |w: &Waits| w.pod_start + SYNC_LOOP + 2 * READINESS_WAIT + removal(w),
        ),
        t(
            "should have their auto-restart back-off timer reset on image update",
            SLOW_NODE_CONFORMANCE,
            back_off_reset_on_image_update,
            |w: &Waits| {
                w.pod_start
                    + BUILD_BACK_OFF
                    + 3 * 2 * BACK_OFF_TOLERANCE
                    + SYNC_LOOP
                    + w.pod_start
                    + 2 * BACK_OFF_TOLERANCE
                    + removal(w)
            },
        ),
        t(
            "should cap back-off at MaxContainerBackOff",
            SLOW_NODE_CONFORMANCE,
            back_off_cap,
            |w: &Waits| w.pod_start + 2 * MAX_BACK_OFF + 4 * 2 * BACK_OFF_TOLERANCE + removal(w),
        ),
    ]
}

/// A pod of one long-running workload container named `name`.
fn paused(s: &Session<'_>, name: &str) -> Result<PodSpec, String> {
    Ok(PodSpec {
        containers: vec![container(s, name, &["--pause"])?],
        ..Default::default()
    })
}

/// A label value unique to the test, as upstream's `time.Now().Nanosecond()`.
fn time_label() -> String {
    chrono::Utc::now().timestamp_subsec_nanos().to_string()
}

/// The pods of the test namespace that carry `time=<value>`, and the list's resourceVersion.
fn list_by_time(s: &Session<'_>, value: &str) -> Result<(Vec<Value>, String), String> {
    let list = s
        .api
        .get(&format!(
            "/api/v1/namespaces/{}/pods?labelSelector=time%3D{value}",
            s.namespace
        ))
        .map_err(|e| format!("failed to query for pods: {e}"))?
        .ok_or("failed to query for pods: no list")?;
    let items = list
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let rv = list
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok((items, rv))
}

/// Upstream's `ExpectEqual(len(pods.Items), want)` on a list by label.
fn count(items: &[Value], want: usize, selector: &str) -> Result<String, String> {
    if items.len() == want {
        Ok(format!("{want} pod(s) with {selector}"))
    } else {
        let names: Vec<&str> = items
            .iter()
            .filter_map(|p| p.pointer("/metadata/name").and_then(Value::as_str))
            .collect();
        Err(format!(
            "{} pod(s) with {selector} ({}), want {want}",
            items.len(),
            names.join(", ")
        ))
    }
}

/// The pod's host IP: set, and an IP address.
pub fn host_ip_of(pod: &Pod) -> Result<IpAddr, String> {
    match pod.status.as_ref().and_then(|s| s.host_ip.as_deref()) {
        None | Some("") => Err("no hostIP yet".into()),
        Some(ip) => ip
            .parse()
            .map_err(|_| format!("hostIP {ip:?} is not an IP address")),
    }
}

fn host_ip(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let pod = match paused(&s, "test").and_then(|spec| ApiPod::create_spec(&s, "pod-hostip", spec))
    {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    if let Err(e) = pod.wait_running() {
        return r.fail_now(e);
    }
    // Upstream polls every 5 s for 2 minutes; the wait looks again whenever the pod changes.
    match pod.wait_within("to get a host IP", HOST_IP_WAIT, |p| {
        host_ip_of(&typed(p)?).map(|_| ())
    }) {
        Ok(p) => match typed(&p).and_then(|p| host_ip_of(&p)) {
            Ok(ip) => r.ok("hostIP", ip.to_string()),
            Err(e) => r.fail("hostIP", e),
        },
        Err(e) => r.fail("hostIP", e),
    }
    r.finish(describe)
}

/// What upstream checks of the pod a watch's DELETED event carries: it was deleted
/// gracefully, with a grace period.
pub fn deleted_gracefully(event: &str, pod: &Pod) -> Result<String, String> {
    if event != "DELETED" {
        return Err(format!("the last event is {event}, not DELETED"));
    }
    let deleted_at = pod
        .metadata
        .deletion_timestamp
        .as_ref()
        .ok_or("the deleted pod has no deletionTimestamp")?;
    match pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
    {
        Some(g) if g != 0 => Ok(format!(
            "DELETED with deletionTimestamp {} and terminationGracePeriodSeconds {g}",
            deleted_at.0
        )),
        other => Err(format!(
            "the deleted pod's terminationGracePeriodSeconds is {other:?}, want non-zero"
        )),
    }
}

fn submitted_and_removed(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let value = time_label();
    let selector = format!("time={value}");
    let rv = match list_by_time(&s, &value).and_then(|(items, rv)| {
        count(&items, 0, &selector)?;
        Ok(rv)
    }) {
        Ok(rv) => rv,
        Err(e) => return r.fail_now(format!("before the pod: {e}")),
    };
    let limit = s.waits.pod_start + DELETION_WAIT;
    let mut watch = match s.api.watch(
        &format!(
            "/api/v1/namespaces/{}/pods?watch=true&labelSelector=time%3D{value}&resourceVersion={rv}",
            s.namespace
        ),
        limit,
    ) {
        Ok(w) => w,
        Err(e) => return r.fail_now(format!("cannot watch: {e}")),
    };
    let pod = match paused(&s, "nginx").and_then(|spec| {
        ApiPod::create_labelled(
            &s,
            "pod-submit-remove",
            &[("name", "foo"), ("time", &value)],
            spec,
        )
    }) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    match list_by_time(&s, &value).and_then(|(items, _)| count(&items, 1, &selector)) {
        Ok(d) => r.ok("submitted", d),
        Err(e) => return r.fail_now(e),
    }
    match watch.next_event() {
        Ok(Some((kind, _))) if kind == "ADDED" => r.ok("watch", "observed ADDED"),
        Ok(Some((kind, obj))) => {
            return r.fail_now(format!("failed to observe pod creation: {kind} {obj}"));
        }
        Ok(None) => return r.fail_now("the watch ended before the pod's creation"),
        Err(e) => return r.fail_now(format!("waiting for the pod's creation: {e}")),
    }
    // Running first, else the deletion may be immediate rather than graceful.
    if let Err(e) = pod.wait_running() {
        return r.fail_now(e);
    }
    if let Err(e) = s
        .api
        .delete(&pod.path(), &json!({"gracePeriodSeconds": DELETE_GRACE}))
    {
        return r.fail_now(format!("failed to delete pod: {e}"));
    }
    let until = Instant::now() + DELETION_WAIT;
    let last = loop {
        if Instant::now() > until {
            return r.fail_now("timed out waiting for pod deletion");
        }
        match watch.next_event() {
            Ok(Some((kind, obj))) if kind == "DELETED" => break obj,
            Ok(Some((kind, obj))) if kind == "ERROR" => {
                return r.fail_now(format!("watch closed with error: {obj}"));
            }
            Ok(Some(_)) => {}
            Ok(None) => return r.fail_now("the watch ended before the pod's deletion"),
            Err(e) => return r.fail_now(format!("timed out waiting for pod deletion: {e}")),
        }
    };
    match typed(&last).and_then(|p| deleted_gracefully("DELETED", &p)) {
        Ok(d) => r.ok("deletion", d),
        Err(e) => r.fail("deletion", e),
    }
    match list_by_time(&s, &value).and_then(|(items, _)| count(&items, 0, &selector)) {
        Ok(d) => r.ok("removed", d),
        Err(e) => r.fail("removed", e),
    }
    r.finish(describe)
}

/// Upstream's `podClient.Update`: read the pod, change it, write it back, again on a conflict
/// (client-go's `RetryOnConflict` tries 5 times).
fn update(s: &Session<'_>, pod: &ApiPod<'_>, change: impl Fn(&mut Pod)) -> Result<Pod, String> {
    let mut last = String::new();
    for _ in 0..5 {
        let current = s
            .api
            .get(&pod.path())
            .map_err(|e| e.to_string())?
            .ok_or("the pod is gone")?;
        let mut p = typed(&current)?;
        change(&mut p);
        let body = serde_json::to_value(&p).map_err(|e| e.to_string())?;
        match s.api.update(&pod.path(), &body) {
            Ok(v) => return typed(&v),
            Err(e) if e.code == 409 => last = e.to_string(),
            Err(e) => return Err(format!("failed to update pod: {e}")),
        }
    }
    Err(format!("failed to update pod after 5 conflicts: {last}"))
}

fn updated(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let value = time_label();
    let pod = match paused(&s, "nginx").and_then(|spec| {
        ApiPod::create_labelled(&s, "pod-update", &[("name", "foo"), ("time", &value)], spec)
    }) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    if let Err(e) = pod.wait_running() {
        return r.fail_now(e);
    }
    match list_by_time(&s, &value).and_then(|(i, _)| count(&i, 1, &format!("time={value}"))) {
        Ok(d) => r.ok("submitted", d),
        Err(e) => return r.fail_now(e),
    }
    let new_value = loop {
        let v = time_label();
        if v != value {
            break v;
        }
    };
    if let Err(e) = update(&s, &pod, |p| {
        p.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("time".into(), new_value.clone());
    }) {
        return r.fail_now(e);
    }
    if let Err(e) = pod.wait_running() {
        return r.fail_now(e);
    }
    match list_by_time(&s, &new_value).and_then(|(i, _)| count(&i, 1, &format!("time={new_value}")))
    {
        Ok(d) => r.ok("updated", d),
        Err(e) => r.fail("updated", e),
    }
    r.finish(describe)
}

fn active_deadline(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let value = time_label();
    let pod = match paused(&s, "nginx").and_then(|spec| {
        ApiPod::create_labelled(
            &s,
            "pod-update-activedeadlineseconds",
            &[("name", "foo"), ("time", &value)],
            spec,
        )
    }) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    if let Err(e) = pod.wait_running() {
        return r.fail_now(e);
    }
    match list_by_time(&s, &value).and_then(|(i, _)| count(&i, 1, &format!("time={value}"))) {
        Ok(d) => r.ok("submitted", d),
        Err(e) => return r.fail_now(e),
    }
    if let Err(e) = update(&s, &pod, |p| {
        if let Some(spec) = p.spec.as_mut() {
            spec.active_deadline_seconds = Some(5);
        }
    }) {
        return r.fail_now(e);
    }
    r.ok("activeDeadlineSeconds", "updated to 5");
    match pod.wait("to be terminated with reason DeadlineExceeded", |p| {
        failed_for(&typed(p)?, "DeadlineExceeded").map(|_| ())
    }) {
        Ok(p) => match typed(&p).and_then(|p| failed_for(&p, "DeadlineExceeded")) {
            Ok(d) => r.ok("terminated", d),
            Err(e) => r.fail("terminated", e),
        },
        Err(e) => r.fail("terminated", e),
    }
    r.finish(describe)
}

/// Upstream's `maxRetries`: the client pod may be made before the kubelet sees the Service.
const SERVICE_ENV_TRIES: u32 = 3;

/// The variables the kubelet gives a pod for the Service `fooservice` on port 8765
/// (pkg/kubelet/envvars), as upstream looks for them.
const SERVICE_VARS: [&str; 7] = [
    "FOOSERVICE_SERVICE_HOST=",
    "FOOSERVICE_SERVICE_PORT=",
    "FOOSERVICE_PORT=",
    "FOOSERVICE_PORT_8765_TCP_PORT=",
    "FOOSERVICE_PORT_8765_TCP_PROTO=",
    "FOOSERVICE_PORT_8765_TCP=",
    "FOOSERVICE_PORT_8765_TCP_ADDR=",
];

fn service_env(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let server_name = crate::suite::common::kit::unique("server-envvars");
    let server = container(&s, "srv", &["--serve", "9376"]).and_then(|mut c| {
        c.ports = Some(vec![ContainerPort {
            container_port: 9376,
            ..Default::default()
        }]);
        ApiPod::create_labelled(
            &s,
            "server-envvars",
            &[("name", &server_name)],
            PodSpec {
                containers: vec![c],
                ..Default::default()
            },
        )
    });
    let server = match server {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    if let Err(e) = server.wait_running() {
        return r.fail_now(e);
    }
    let service = ApiService {
        metadata: ObjectMeta {
            name: Some("fooservice".into()),
            labels: Some([("name".to_string(), "fooservice".to_string())].into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                port: 8765,
                target_port: Some(IntOrString::Int(8080)),
                ..Default::default()
            }]),
            selector: Some([("name".to_string(), server_name.clone())].into()),
            ..Default::default()
        }),
        status: None,
    };
    match crate::suite::common::kit::create(&s, "services", &service) {
        Ok(svc) => r.info(
            "service",
            format!(
                "fooservice, cluster IP {}",
                svc.pointer("/spec/clusterIP")
                    .and_then(Value::as_str)
                    .unwrap_or("none")
            ),
        ),
        Err(e) => return r.fail_now(format!("failed to create service: {e}")),
    }
    let want: Vec<String> = SERVICE_VARS.iter().map(|v| (*v).to_string()).collect();
    let mut last = String::new();
    for attempt in 1..=SERVICE_ENV_TRIES {
        let client = container(&s, "env3cont", &["--env"]).and_then(|c| {
            ApiPod::create_spec(
                &s,
                "client-envvars",
                PodSpec {
                    restart_policy: Some("Never".into()),
                    containers: vec![c],
                    ..Default::default()
                },
            )
        });
        let outcome =
            client.and_then(|pod| container_output(&pod, "env3cont", &want, Matching::Substring));
        match outcome {
            Ok(d) => {
                r.ok("environment", d);
                return r.finish(describe);
            }
            Err(e) => last = format!("attempt {attempt} of {SERVICE_ENV_TRIES}: {e}"),
        }
    }
    r.fail("environment", last);
    r.finish(describe)
}

/// podutils.IsPodReady: the pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

const GATE_1: &str = "k8s.io/test-condition1";
const GATE_2: &str = "k8s.io/test-condition2";

fn readiness_gates(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let pod = match paused(&s, "pod-readiness-gate").and_then(|mut spec| {
        spec.readiness_gates = Some(vec![
            PodReadinessGate {
                condition_type: GATE_1.into(),
            },
            PodReadinessGate {
                condition_type: GATE_2.into(),
            },
        ]);
        ApiPod::create_labelled(&s, "pod-ready", &[("test", "pod-readiness-gate")], spec)
    }) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    if let Err(e) = pod.wait_running() {
        return r.fail_now(e);
    }
    let ready_now = || -> Result<(bool, String), String> {
        let p = s
            .api
            .get(&pod.path())
            .map_err(|e| e.to_string())?
            .ok_or("the pod is gone")?;
        let typed = typed(&p)?;
        Ok((is_ready(&typed), conditions(&typed)))
    };
    let patch = |gate: &str, status: &str| {
        s.api
            .patch(
                &format!("{}/status", pod.path()),
                "application/strategic-merge-patch+json",
                &json!({"status": {"conditions": [{"type": gate, "status": status}]}}),
            )
            .map(|_| ())
            .map_err(|e| format!("patching pod status with condition {gate:?} to {status}: {e}"))
    };
    let expect_now = |r: &mut Recorder, item: &str, want: bool| match ready_now() {
        Ok((got, _)) if got == want => r.ok(item, format!("Ready is {want}")),
        Ok((_, c)) => r.fail(item, format!("Ready should be {want}: {c}")),
        Err(e) => r.fail(item, e),
    };
    let expect_within = |r: &mut Recorder, item: &str, want: bool| {
        let until = Instant::now() + READINESS_WAIT;
        loop {
            match ready_now() {
                Ok((got, _)) if got == want => return r.ok(item, format!("Ready is {want}")),
                Ok((_, c)) if Instant::now() >= until => {
                    return r.fail(
                        item,
                        format!(
                            "Ready is not {want} within {}s: {c}",
                            READINESS_WAIT.as_secs()
                        ),
                    );
                }
                Err(e) if Instant::now() >= until => return r.fail(item, e),
                _ => std::thread::sleep(Duration::from_secs(1)),
            }
        }
    };
    expect_now(&mut r, "initially", false);
    if let Err(e) = patch(GATE_1, "True") {
        return r.fail_now(e);
    }
    std::thread::sleep(SYNC_LOOP);
    expect_now(&mut r, "one gate True", false);
    if let Err(e) = patch(GATE_2, "True") {
        return r.fail_now(e);
    }
    expect_within(&mut r, "both gates True", true);
    if let Err(e) = patch(GATE_1, "False") {
        return r.fail_now(e);
    }
    expect_within(&mut r, "a gate False again", false);
    r.finish(describe)
}

/// The pod's conditions on one line: `Ready=False (ReadinessGatesNotReady), ...`.
fn conditions(pod: &Pod) -> String {
    let list: Vec<String> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .map(|c| match &c.reason {
            Some(reason) => format!("{}={} ({reason})", c.type_, c.status),
            None => format!("{}={}", c.type_, c.status),
        })
        .collect();
    if list.is_empty() {
        "no conditions".into()
    } else {
        list.join(", ")
    }
}

/// Upstream's `getRestartDelay`, as a state fed with the container's successive statuses:
/// the time from the end of one run (its `finishedAt`) to the start of the next (`startedAt`),
/// once the restart count has grown past the one first seen with a finished run.
#[derive(Debug, Default)]
pub struct RestartDelay {
    /// The restart count and end of run first seen.
    first: Option<(i32, k8s_openapi::jiff::Timestamp)>,
}

impl RestartDelay {
    /// Feeds one status; `Some(delay)` once a restart after the first finished run is seen.
    pub fn observe(
        &mut self,
        status: &k8s_openapi::api::core::v1::ContainerStatus,
    ) -> Option<Duration> {
        let state = status.state.as_ref();
        let running = state.and_then(|s| s.running.as_ref());
        let terminated = state.and_then(|s| s.terminated.as_ref());
        let last = status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())?;
        let (count, finished) = match self.first {
            Some(first) => first,
            // Still running: no end of run to measure from yet.
            None if running.is_some() => return None,
            None => {
                let finished = terminated.unwrap_or(last).finished_at.as_ref()?.0;
                *self.first.insert((status.restart_count, finished))
            }
        };
        if status.restart_count <= count {
            return None;
        }
        let started = match (running, terminated) {
            (Some(r), _) => r.started_at.as_ref()?.0,
            (None, Some(t)) => t.started_at.as_ref()?.0,
            (None, None) => last.started_at.as_ref()?.0,
        };
        // A start before the end it follows (clock steps) is no delay.
        Some(Duration::try_from(started.duration_since(finished)).unwrap_or_default())
    }
}

/// Measures one restart delay of the pod's container `name`, as upstream does: within twice
/// the tolerance (a delay at the cap may just have been missed).
fn restart_delay(pod: &ApiPod<'_>, name: &str) -> Result<Duration, String> {
    let state = std::cell::RefCell::new(RestartDelay::default());
    let measured = std::cell::Cell::new(None);
    pod.wait_within("to restart its container", 2 * BACK_OFF_TOLERANCE, |p| {
        let pod = typed(p)?;
        let status = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.iter().find(|c| c.name == name))
            .ok_or("status missing")?;
        match state.borrow_mut().observe(status) {
            Some(d) => {
                measured.set(Some(d));
                Ok(())
            }
            None => Err(format!("restartCount {}", status.restart_count)),
        }
    })?;
    measured
        .get()
        .ok_or_else(|| "timeout getting pod restart delay".to_string())
}

/// Upstream's check of a delay at the cap: at least `MaxContainerBackOff`, at most the
/// tolerance.
pub fn capped(delay: Duration, which: &str) -> Result<String, String> {
    if delay < MAX_BACK_OFF || delay > BACK_OFF_TOLERANCE {
        Err(format!(
            "expected {}s back-off got={}s in {which}",
            MAX_BACK_OFF.as_secs(),
            delay.as_secs_f64()
        ))
    } else {
        Ok(format!("{:.0}s", delay.as_secs_f64()))
    }
}

/// Upstream's check after the image update: the delay is at most twice each earlier one, so
/// the back-off started again rather than doubling on.
pub fn reset(after: Duration, delay1: Duration, delay2: Duration) -> Result<String, String> {
    if after > 2 * delay2 || after > 2 * delay1 {
        Err(format!(
            "updating image did not reset the back-off value: d3={:.1}s d2={:.1}s d1={:.1}s",
            after.as_secs_f64(),
            delay2.as_secs_f64(),
            delay1.as_secs_f64()
        ))
    } else {
        Ok(format!(
            "{:.1}s after the update ({:.1}s and {:.1}s before)",
            after.as_secs_f64(),
            delay1.as_secs_f64(),
            delay2.as_secs_f64()
        ))
    }
}

/// Upstream's `startPodAndGetBackOffs` and the image update: after a minute of restarts three
/// delays are measured, the container's image is changed (upstream's busybox to nginx; here
/// the workload from the node to the same workload from the run's registry, another image to
/// the kubelet), and the next delay must be at most twice the earlier ones.
fn back_off_reset_on_image_update(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let updated = match s.ctx.services.registry(&s.ctx.node) {
        Ok(reg) => reg.public_image(),
        Err(crate::runtime::Unavailable::Absent(m)) => return Outcome::skipped(m),
        Err(crate::runtime::Unavailable::Broken(m)) => {
            return r.fail_now(format!("no second image to update to: {m}"));
        }
    };
    let name = "back-off";
    let spec = container(&s, name, &["--sleep", "5"]).map(|mut c| {
        // The pull policy cannot change with the image: the updated image must be pulled,
        // the first is on the node already.
        c.image_pull_policy = Some("IfNotPresent".into());
        PodSpec {
            containers: vec![c],
            ..Default::default()
        }
    });
    let pod = match spec.and_then(|spec| {
        ApiPod::create_labelled(
            &s,
            "pod-back-off-image",
            &[("test", "back-off-image")],
            spec,
        )
    }) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    if let Err(e) = pod.wait_running() {
        return r.fail_now(e);
    }
    std::thread::sleep(BUILD_BACK_OFF);
    let mut delays = [Duration::ZERO; 3];
    for (i, d) in delays.iter_mut().enumerate() {
        match restart_delay(&pod, name) {
            Ok(m) => *d = m,
            Err(e) => return r.fail_now(format!("getting restart delay-{i}: {e}")),
        }
    }
    let [_, delay1, delay2] = delays;
    let patch = json!({"spec": {"containers": [{"name": name, "image": updated}]}});
    if let Err(e) = s.api.patch(
        &pod.path(),
        "application/strategic-merge-patch+json",
        &patch,
    ) {
        return r.fail_now(format!("updating the image: {e}"));
    }
    std::thread::sleep(SYNC_LOOP);
    if let Err(e) = pod.wait_running() {
        return r.fail_now(e);
    }
    match restart_delay(&pod, name).and_then(|after| reset(after, delay1, delay2)) {
        Ok(d) => r.ok("back-off", d),
        Err(e) => r.fail("back-off", e),
    }
    r.finish(describe)
}

/// A container that exits 0 after 5 s (upstream's `sh -c 'sleep 5'`) restarts with a back-off
/// that doubles up to the kubelet's cap, and stays there.
fn back_off_cap(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let name = "back-off-cap";
    let spec = container(&s, name, &["--sleep", "5"]).map(|c| PodSpec {
        containers: vec![c],
        ..Default::default()
    });
    let pod = match spec
        .and_then(|spec| ApiPod::create_labelled(&s, "back-off-cap", &[("test", "liveness")], spec))
    {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    if let Err(e) = pod.wait_running() {
        return r.fail_now(e);
    }
    // It takes slightly more than twice the cap to reach a back-off at the cap.
    std::thread::sleep(2 * MAX_BACK_OFF);
    // Upstream measures three times and keeps the last.
    let mut delay1 = Duration::ZERO;
    for _ in 0..3 {
        delay1 = match restart_delay(&pod, name) {
            Ok(d) => d,
            Err(e) => {
                return r.fail_now(format!(
                    "timed out waiting for container restart in pod {name}: {e}"
                ));
            }
        };
    }
    match capped(delay1, "delay1") {
        Ok(d) => r.ok("delay1", d),
        Err(e) => return r.fail_now(e),
    }
    match restart_delay(&pod, name).and_then(|d| capped(d, "delay2")) {
        Ok(d) => r.ok("delay2", d),
        Err(e) => r.fail("delay2", e),
    }
    r.finish(describe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(v: Value) -> k8s_openapi::api::core::v1::ContainerStatus {
        serde_json::from_value(v).unwrap()
    }

    fn run(
        count: i32,
        state: Value,
        last: (&str, &str),
    ) -> k8s_openapi::api::core::v1::ContainerStatus {
        status(
            json!({"name": "back-off-cap", "ready": false, "restartCount": count,
            "image": "i", "imageID": "", "state": state,
            "lastState": {"terminated": {"exitCode": 0, "startedAt": last.0,
                "finishedAt": last.1}}}),
        )
    }

    #[test]
    fn a_restart_delay_runs_from_one_end_to_the_next_start() {
        let mut d = RestartDelay::default();
        // The first run, still running: no last state.
        let first = status(
            json!({"name": "back-off-cap", "ready": true, "restartCount": 0,
            "image": "i", "imageID": "", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}),
        );
        assert_eq!(d.observe(&first), None);
        // Waiting in back-off after the 3rd run ended at :40.
        let waiting = run(
            2,
            json!({"waiting": {"reason": "CrashLoopBackOff"}}),
            ("2026-01-01T00:00:35Z", "2026-01-01T00:00:40Z"),
        );
        assert_eq!(d.observe(&waiting), None);
        assert_eq!(d.observe(&waiting), None, "no restart yet");
        // Restarted at 1:20: 40 s of back-off.
        let restarted = run(
            3,
            json!({"running": {"startedAt": "2026-01-01T00:01:20Z"}}),
            ("2026-01-01T00:00:35Z", "2026-01-01T00:00:40Z"),
        );
        assert_eq!(d.observe(&restarted), Some(Duration::from_secs(40)));
        // A first sight while running again is no end to measure from.
        let mut late = RestartDelay::default();
        assert_eq!(late.observe(&restarted), None);
    }

    #[test]
    fn an_image_update_resets_the_back_off() {
        let s = Duration::from_secs;
        assert!(reset(s(10), s(40), s(80)).is_ok());
        assert!(reset(s(80), s(40), s(80)).is_ok());
        // Doubling on from 80 s: not reset.
        let e = reset(s(160), s(40), s(80)).unwrap_err();
        assert!(e.contains("did not reset"), "{e}");
        assert!(reset(s(100), s(40), s(80)).is_err());
    }

    #[test]
    fn only_a_delay_at_the_cap_counts() {
        assert!(capped(Duration::from_secs(300), "delay1").is_ok());
        assert!(capped(Duration::from_secs(389), "delay1").is_ok());
        let short = capped(Duration::from_secs(160), "delay1").unwrap_err();
        assert!(
            short.contains("expected 300s back-off got=160s in delay1"),
            "{short}"
        );
        assert!(capped(Duration::from_secs(400), "delay2").is_err());
    }

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_host_ip_is_an_address() {
        assert_eq!(
            host_ip_of(&pod(json!({"status": {"hostIP": "10.0.2.15"}})))
                .unwrap()
                .to_string(),
            "10.0.2.15"
        );
        assert!(host_ip_of(&pod(json!({"status": {"hostIP": "fd00::1"}}))).is_ok());
        assert!(host_ip_of(&pod(json!({"status": {}}))).is_err());
        assert!(host_ip_of(&pod(json!({"status": {"hostIP": ""}}))).is_err());
        let e = host_ip_of(&pod(json!({"status": {"hostIP": "node-1"}}))).unwrap_err();
        assert!(e.contains("not an IP address"), "{e}");
    }

    #[test]
    fn a_deleted_pod_carries_its_deletion_and_grace() {
        let deleted = pod(json!({"metadata": {"name": "p",
            "deletionTimestamp": "2026-12-07T10:00:00Z"},
            "spec": {"containers": [], "terminationGracePeriodSeconds": 30}}));
        assert!(deleted_gracefully("DELETED", &deleted).is_ok());
        assert!(deleted_gracefully("MODIFIED", &deleted).is_err());
        // Removed at once, without the graceful path.
        let forced = pod(json!({"metadata": {"name": "p"},
            "spec": {"containers": [], "terminationGracePeriodSeconds": 30}}));
        let e = deleted_gracefully("DELETED", &forced).unwrap_err();
        assert!(e.contains("deletionTimestamp"), "{e}");
        let no_grace = pod(json!({"metadata": {"name": "p",
            "deletionTimestamp": "2026-12-07T10:00:00Z"},
            "spec": {"containers": [], "terminationGracePeriodSeconds": 0}}));
        assert!(deleted_gracefully("DELETED", &no_grace).is_err());
    }

    #[test]
    fn ready_is_the_ready_condition_alone() {
        let gated = pod(json!({"status": {"conditions": [
            {"type": "ContainersReady", "status": "True"},
            {"type": GATE_1, "status": "True"},
            {"type": "Ready", "status": "False", "reason": "ReadinessGatesNotReady"}]}}));
        assert!(!is_ready(&gated));
        assert_eq!(
            conditions(&gated),
            format!("ContainersReady=True, {GATE_1}=True, Ready=False (ReadinessGatesNotReady)")
        );
        let ready = pod(json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}));
        assert!(is_ready(&ready));
        assert!(!is_ready(&pod(json!({}))));
    }

    #[test]
    fn counts_name_what_was_found() {
        let items = vec![
            json!({"metadata": {"name": "a"}}),
            json!({"metadata": {"name": "b"}}),
        ];
        assert!(count(&items, 2, "time=1").is_ok());
        let e = count(&items, 1, "time=1").unwrap_err();
        assert_eq!(e, "2 pod(s) with time=1 (a, b), want 1");
    }
}

/// Upstream's `Eventually(..., time.Minute, 10*time.Second)` around the exec.
const EXEC_WAIT: Duration = Duration::from_secs(60);
const EXEC_POLL: Duration = Duration::from_secs(10);
/// How long one websocket session may take before it counts as hung.
const SESSION: Duration = Duration::from_secs(30);

/// The websocket tests of pods.go.
pub fn websocket_tests() -> Vec<Test> {
    let t = |behaviour, run, budget| Test {
        area: "Pods",
        behaviour,
        tags: CONFORMANCE,
        needs: &[Service::ControlPlane],
        run,
        read_ahead: None,
        budget: Some(budget),
    };
    vec![
        t(
            "should support remote command execution over websockets",
            exec_over_websockets,
            |w| w.pod_start + EXEC_WAIT + SESSION + removal(w),
        ),
        t(
            "should support retrieving logs from the container over websockets",
            logs_over_websockets,
            |w| w.pod_start + SESSION + removal(w),
        ),
    ]
}

/// Upstream's pod: one container `main` that says it is alive and sleeps; created and waited
/// for until Running (`CreateSync`).
fn alive_pod<'a>(s: &'a Session<'a>, prefix: &str, sleep: &str) -> Result<ApiPod<'a>, String> {
    let c = with_command(
        s,
        "main",
        &["--stdout", "container is alive", "--sleep", sleep],
    )?;
    let pod = ApiPod::create_spec(
        s,
        prefix,
        PodSpec {
            containers: vec![c],
            ..Default::default()
        },
    )?;
    pod.wait_running()?;
    Ok(pod)
}

/// What upstream's exec test reads from a `channel.k8s.io` session: stdout's messages (the
/// first byte is the channel); a message of another channel with data fails the test, an
/// empty one is skipped. `Err` is upstream's message.
pub fn exec_stdout(messages: &[Vec<u8>]) -> Result<String, String> {
    let mut out = Vec::new();
    for m in messages {
        match m.split_first() {
            None => {}
            Some((1, data)) => out.extend_from_slice(data),
            Some((_, [])) => {}
            Some(_) => {
                return Err(format!(
                    "Got message from server that didn't start with channel 1 (STDOUT): {m:?}"
                ));
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Upstream's check of that output, retried: it must hold `remote execution test`.
pub fn exec_output_verdict(out: &str) -> Result<(), String> {
    if out.is_empty() {
        return Err("unexpected output from server".into());
    }
    if !out.contains("remote execution test") {
        return Err(format!(
            "expected to find 'remote execution test' in {out:?}"
        ));
    }
    Ok(())
}

fn exec_over_websockets(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let pod = match alive_pod(&s, "pod-exec-websocket", "600") {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("stderr", "1");
    query.append_pair("stdout", "1");
    query.append_pair("container", "main");
    for c in s.workload.command() {
        query.append_pair("command", &c);
    }
    query.append_pair("command", "--stdout");
    query.append_pair("command", "remote execution test");
    let path = format!("{}/exec?{}", pod.path(), query.finish());
    let until = Instant::now() + EXEC_WAIT;
    let seen = loop {
        // Upstream fails at once when the socket cannot be opened or read.
        let messages = match s
            .api
            .websocket_messages(&path, &["channel.k8s.io"], SESSION)
        {
            Ok(ws) => ws.messages,
            Err(e) => return r.fail_now(format!("Failed to open websocket to {path}: {e}")),
        };
        let attempt = exec_stdout(&messages)
            .and_then(|out| exec_output_verdict(&out).map(|()| format!("stdout {out:?}")));
        match attempt {
            Ok(d) => break Ok(d),
            Err(e) if e.starts_with("Got message") => break Err(e),
            Err(e) if Instant::now() + EXEC_POLL > until => break Err(e),
            Err(_) => std::thread::sleep(EXEC_POLL),
        }
    };
    match seen {
        Ok(d) => r.ok("exec", d),
        Err(e) => r.fail("exec", e),
    }
    r.finish(describe)
}

/// What upstream's log test keeps of a `binary.k8s.io` session: every message that is not
/// whitespace alone, joined.
pub fn websocket_log(messages: &[Vec<u8>]) -> String {
    let mut out = Vec::new();
    for m in messages {
        if !String::from_utf8_lossy(m).trim().is_empty() {
            out.extend_from_slice(m);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn logs_over_websockets(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let pod = match alive_pod(&s, "pod-logs-websocket", "10000") {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    let path = format!("{}/log?container=main", pod.path());
    match s.api.websocket_messages(&path, &["binary.k8s.io"], SESSION) {
        Ok(ws) => match websocket_log(&ws.messages) {
            log if log == "container is alive\n" => r.ok("log", format!("{log:?}")),
            log => r.fail("log", format!("Unexpected websocket logs:\n{log}")),
        },
        Err(e) => r.fail("log", format!("Failed to open websocket to {path}: {e}")),
    }
    r.finish(describe)
}

#[cfg(test)]
mod websocket {
    use super::*;

    #[test]
    fn exec_output_is_stdout_alone() {
        let ok = exec_stdout(&[
            vec![],
            vec![2],
            vec![3],
            b"\x01remote execution test\n".to_vec(),
        ])
        .unwrap();
        assert_eq!(ok, "remote execution test\n");
        assert!(exec_output_verdict(&ok).is_ok());
        assert!(
            exec_stdout(&[b"\x02sh: not found".to_vec()])
                .unwrap_err()
                .contains("channel 1")
        );
        assert_eq!(
            exec_output_verdict("").unwrap_err(),
            "unexpected output from server"
        );
        assert!(exec_output_verdict("something else\n").is_err());
    }

    #[test]
    fn the_log_is_its_messages_without_blank_ones() {
        let log = websocket_log(&[vec![], b"container is alive\n".to_vec(), b"\n".to_vec()]);
        assert_eq!(log, "container is alive\n");
        let twice = websocket_log(&[
            b"container is alive\n".to_vec(),
            b"container is alive\n".to_vec(),
        ]);
        assert_ne!(twice, "container is alive\n");
    }
}
