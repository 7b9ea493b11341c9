//! What only a running kubelet can show, driven through the local control plane: that it
//! registers its Node and keeps it Ready, renews its Lease, mirrors static pods, and runs pods
//! to the right phase. The kubelet must already point at the local control plane; when it does
//! not, these tests skip and say what to change.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Context, Outcome, Recorder, Service, Test, describe};
use crate::controlplane::client::Client;
use crate::report::facts::go_arch;
use crate::runtime::kubelet::Managed;
use crate::runtime::nodefs::Writable;
use crate::runtime::{ControlPlane, PodWorkload, Unavailable};

const TAGS: &[&str] = &["NodeConformance"];
const NEEDS: &[Service] = &[Service::ControlPlane];
/// Every object and static pod file a run creates carries this label with the run id.
pub const RUN_LABEL: &str = "node-conformance.run";

/// How long the kubelet gets, as flags; the defaults are upstream's.
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    /// Node registered and Ready (upstream: 2 minutes).
    pub node_ready: Duration,
    /// A mirror pod appears, changes or goes away (upstream: 2 minutes).
    pub mirror_pod: Duration,
    /// A pod reaches the state a test expects (upstream's PodStartTimeout: 5 minutes).
    pub pod_start: Duration,
    /// The longest a wait goes without looking again when nothing changes in the API.
    pub poll: Duration,
}

impl Default for Waits {
    fn default() -> Self {
        Self {
            node_ready: Duration::from_secs(120),
            mirror_pod: Duration::from_secs(120),
            pod_start: Duration::from_secs(300),
            poll: Duration::from_secs(1),
        }
    }
}

/// What the kubelet gets to remove a pod deleted at the end of a test.
pub(crate) fn removal(w: &Waits) -> Duration {
    Duration::from_secs(60).min(w.pod_start)
}

/// The lease duration a kubelet sets unless configured otherwise, in seconds.
const DEFAULT_LEASE_SECONDS: u64 = 40;

/// How long a renewal of a lease of `duration` seconds is waited for: the kubelet renews
/// every quarter of it, so one full duration and a margin is plenty.
fn lease_renewal(duration: u64) -> Duration {
    Duration::from_secs(duration.max(10) + 10)
}

/// The grace period of the graceful delete test, in seconds.
const GRACE_SECONDS: u64 = 5;
/// What the kubelet gets beyond the grace period to stop the container and remove the pod.
const AFTER_GRACE: Duration = Duration::from_secs(30);
/// Upstream's: a recreated mirror pod must stay Running this long.
const STAY_RUNNING: Duration = Duration::from_secs(30);

/// Every MirrorPod test: the Node, the first mirror pod, the change, and the teardown's wait
/// for the mirror pod to go.
fn mirror_budget(w: &Waits) -> Duration {
    w.node_ready + 3 * w.mirror_pod
}

pub fn tests() -> Vec<Test> {
    let t = |area, behaviour, run, budget| Test {
        area,
        behaviour,
        tags: TAGS,
        needs: NEEDS,
        run,
        read_ahead: None,
        budget: Some(budget),
    };
    vec![
        t(
            "Node",
            "registers and turns Ready with its hostname, os and arch labels",
            node_ready,
            |w| w.node_ready,
        ),
        t(
            "Node",
            "Lease in kube-node-lease is renewed",
            node_lease,
            |w| w.node_ready + lease_renewal(DEFAULT_LEASE_SECONDS),
        ),
        t(
            "MirrorPod",
            "when create a mirror pod  should be updated when static pod updated",
            mirror_updated,
            mirror_budget,
        ),
        t(
            "MirrorPod",
            "when create a mirror pod  should be recreated when mirror pod gracefully deleted",
            mirror_graceful_delete,
            mirror_budget,
        ),
        t(
            "MirrorPod",
            "when create a mirror pod  should be recreated when mirror pod forcibly deleted",
            mirror_forced_delete,
            mirror_budget,
        ),
        t(
            "MirrorPod",
            "when create a mirror pod without changes  should successfully recreate when file is removed and recreated",
            mirror_file_recreated,
            |w| mirror_budget(w) + STAY_RUNNING,
        ),
        t(
            "Pod Lifecycle",
            "environment variables and the downward API reach the container",
            env_and_downward_api,
            |w| w.pod_start + removal(w),
        ),
        t(
            "Pod Lifecycle",
            "a pod deleted gracefully is marked, stopped and removed",
            graceful_delete,
            // The pod is removed again at the end only when the test's own removal failed.
            |w| w.pod_start + Duration::from_secs(GRACE_SECONDS) + AFTER_GRACE + removal(w),
        ),
    ]
}

/// Why the kubelet cannot be tested through the local control plane on `port`, if it cannot:
/// its kubeconfig's server must be the control plane (`https://127.0.0.1:<port>`, or `http://`
/// with `--insecure-http`), trusting its CA (the one `kubelet-config` made), and its
/// staticPodPath the directory given to the harness, writable through the node's root. Its
/// contentType may be either: the API reads protobuf bodies as it reads JSON.
fn kubelet_points_here(ctx: &Context, port: u16) -> Result<(), String> {
    let fix = format!(
        "`node-conformance kubelet-config --api-server-port {port} --pod-manifest-path {}` \
         writes the kubeconfig to give the kubelet and prints the settings; restart it, then run again",
        ctx.node.pod_manifest_dir().display()
    );
    let k = ctx.node.kubelet().map_err(|e| format!("{e}; {fix}"))?;
    let scheme = if ctx.services.insecure_http() {
        "http"
    } else {
        "https"
    };
    let mut wrong = Vec::new();
    match &k.kubeconfig_path {
        None => wrong.push("the kubelet has no kubeconfig (--kubeconfig)".to_string()),
        Some(path) => match ctx.node.kubeconfig(path).as_ref() {
            Ok(Some(kc)) => {
                let server = kc.server.trim_end_matches('/');
                let here = [
                    format!("{scheme}://127.0.0.1:{port}"),
                    format!("{scheme}://localhost:{port}"),
                ];
                if !here.iter().any(|h| h == server) {
                    wrong.push(format!(
                        "its kubeconfig {} has server {server}, not {}",
                        path.display(),
                        here[0]
                    ));
                } else if !ctx.services.insecure_http() {
                    let trusted = match &kc.ca {
                        Some(Ok(pem)) => std::str::from_utf8(&pem.bytes)
                            .ok()
                            .and_then(|p| crate::runtime::credentials::pem_der(p, "CERTIFICATE")),
                        _ => None,
                    };
                    match ctx.services.attach_ca() {
                        None => wrong.push(format!(
                            "there are no credentials for it in {} (kubelet-config makes them)",
                            crate::runtime::state::ATTACH_DIR
                        )),
                        Some(ours) if trusted.as_deref() != Some(ours) => wrong.push(format!(
                            "its kubeconfig {} does not trust the CA kubelet-config made ({}/ca.crt)",
                            path.display(),
                            crate::runtime::state::ATTACH_DIR
                        )),
                        Some(_) => {}
                    }
                }
            }
            Ok(None) => wrong.push(format!("its kubeconfig {} does not exist", path.display())),
            Err(e) => wrong.push(format!("its kubeconfig cannot be read: {e}")),
        },
    }
    let dir = ctx.node.pod_manifest_dir();
    match k.str("staticPodPath") {
        Some(p) if Path::new(p) == dir => {}
        Some(p) => wrong.push(format!(
            "its staticPodPath is {p}, not {} (the directory given to the harness with --pod-manifest-path)",
            dir.display()
        )),
        None => wrong.push(format!("it has no staticPodPath (want {})", dir.display())),
    }
    if wrong.is_empty()
        && let Err(e) = ctx.services.static_pod_dir(&ctx.node)
    {
        let (Unavailable::Absent(e) | Unavailable::Broken(e)) = e;
        wrong.push(format!(
            "{e} (from a container: run it in the host's PID namespace, --pid=host, or mount the directory at the same path, -v $CONFIG_DIR:$CONFIG_DIR)"
        ));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the kubelet does not point at the local control plane: {}; {fix}",
            wrong.join("; ")
        ))
    }
}

/// What every test here works with.
pub(crate) struct Session<'a> {
    pub(crate) ctx: &'a Context,
    pub(crate) cp: &'a ControlPlane,
    pub(crate) api: Client,
    pub(crate) node: String,
    pub(crate) namespace: String,
    /// The static pod directory, writable through the node's root.
    pub(crate) manifests: &'a Writable,
    pub(crate) workload: PodWorkload,
    /// The kubelet the harness started, when it did.
    pub(crate) managed: Option<&'a Managed>,
    pub(crate) waits: Waits,
}

fn unavailable(e: Unavailable) -> Outcome {
    match e {
        Unavailable::Absent(m) => Outcome::skipped(m),
        Unavailable::Broken(m) => Outcome::failed(m),
    }
}

pub(crate) fn session(ctx: &Context) -> Result<Session<'_>, Outcome> {
    let namespace = format!("node-conformance-{}", ctx.services.run_id);
    let managed = match ctx.services.managed_kubelet(&ctx.node, &namespace) {
        Some(Ok(m)) => {
            if let Some(why) = m.exited() {
                return Err(Outcome::failed(why));
            }
            Some(m)
        }
        Some(Err(e)) => return Err(unavailable(e)),
        None => {
            kubelet_points_here(ctx, ctx.services.api_port()).map_err(Outcome::skipped)?;
            None
        }
    };
    let cp = ctx.services.control_plane().map_err(unavailable)?;
    let manifests = ctx
        .services
        .static_pod_dir(&ctx.node)
        .map_err(unavailable)?;
    let workload = ctx
        .services
        .pod_workload(&ctx.node)
        .map_err(unavailable)?
        .clone();
    let s = Session {
        ctx,
        cp,
        api: cp.client(),
        node: ctx.node.name().to_string(),
        namespace,
        manifests,
        workload,
        managed,
        waits: ctx.waits,
    };
    let ns = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": s.namespace, "labels": {RUN_LABEL: ctx.services.run_id}}});
    match s.api.create("/api/v1/namespaces", &ns) {
        Ok(_) => {}
        Err(e) if e.code == 409 => {}
        Err(e) => return Err(Outcome::failed(e.to_string())),
    }
    Ok(s)
}

impl Session<'_> {
    /// What the pods run and, for a kubelet the harness started, which kubelet: for the
    /// report of every test.
    fn describe_setup(&self, r: &mut Recorder) {
        if let Some(m) = self.managed {
            r.info("kubelet", m.description.clone());
        }
        r.info("workload", self.workload.describe());
    }
}

/// The object a wait is about, as the store names it: (resource, name). The wait probes again
/// when that object changes, not at every write of the kubelet.
type About<'a> = (&'a str, &'a str);

/// How long a wait goes without probing when its object does not change: the probe's answer
/// can depend on time alone only through what the object says, so this is a safety net.
const REPROBE: Duration = Duration::from_secs(5);

/// Polls `probe` until it gives a value or the time is up; says what it waits for on the
/// console now and then, with the state it last saw.
fn wait_for<T>(
    s: &Session<'_>,
    what: &str,
    about: About<'_>,
    limit: Duration,
    probe: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    wait_described(s, what, about, limit, probe, || None)
}

/// Clears the thread's record of its wait however the wait ends, a panic included.
struct DoneWaiting;

impl Drop for DoneWaiting {
    fn drop(&mut self) {
        super::done_waiting();
    }
}

/// As [`wait_for`], with `more` appended to the state whenever the wait reports it (on the
/// console, or in its failure): what costs too much to look up at every poll, such as a
/// pod's events.
fn wait_described<T>(
    s: &Session<'_>,
    what: &str,
    about: About<'_>,
    limit: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
    more: impl Fn() -> Option<String>,
) -> Result<T, String> {
    let begin = Instant::now();
    let mut next_report = Duration::from_secs(5);
    let _done = DoneWaiting;
    let mut noted = None;
    let described = |state: &str| match more() {
        Some(more) => format!("{state}; {more}"),
        None => state.to_string(),
    };
    loop {
        // Noted before the probe, so a change made while it runs wakes the wait below.
        let rv = s.cp.store.resource_version();
        let probed = Instant::now();
        let state = match probe() {
            Ok(v) => {
                super::add_waited(begin.elapsed());
                return Ok(v);
            }
            Err(state) => state,
        };
        // For the runner, should the test run past its deadline. Only a change is noted, so
        // what a report added stays until the state moves on.
        if noted.as_ref() != Some(&state) {
            super::note_waiting(what, &state);
            noted = Some(state.clone());
        }
        let waited = begin.elapsed();
        if let Some(why) = s.managed.and_then(Managed::exited) {
            super::add_waited(waited);
            return Err(format!("{what}: {why}"));
        }
        if waited >= limit {
            super::add_waited(waited);
            return Err(format!(
                "{what}: not within {}s; last seen: {}",
                limit.as_secs(),
                described(&state)
            ));
        }
        if waited >= next_report {
            let state = described(&state);
            super::note_waiting(what, &state);
            s.ctx.console.line(&format!(
                "  waiting for {what}: {state}, {}s",
                waited.as_secs()
            ));
            next_report += Duration::from_secs(10);
        }
        // Everything the kubelet does is a write to the store: probe again when it writes the
        // object waited on, but not more often than every 200 ms: a probe is a request, a
        // kubelet writes many times a second (events, statuses, leases), and what a test waits
        // for takes seconds. Every `poll` the kubelet's exit and the limit are looked at.
        let settle = s.waits.poll.min(Duration::from_millis(200));
        if let Some(rest) = settle.checked_sub(probed.elapsed()) {
            std::thread::sleep(rest);
        }
        let (resource, name) = about;
        while !s
            .cp
            .store
            .wait_for_change_of(rv, s.waits.poll, resource, name)
        {
            let waited = begin.elapsed();
            if probed.elapsed() >= REPROBE.max(s.waits.poll)
                || waited >= limit
                || waited >= next_report
                || s.managed.and_then(Managed::exited).is_some()
            {
                break;
            }
        }
    }
}

/// The state of a Node that is not there, with why that usually is. A kubelet registers its
/// Node once, when it starts: one that was already running when this run started (its
/// process is older than the harness's) never registers with this run's control plane.
fn not_registered(s: &Session<'_>) -> String {
    if let Some(m) = s.managed {
        return format!(
            "not registered by the kubelet the harness started (pid {}); its log: {}",
            m.pid,
            m.log_path.display()
        );
    }
    let older = match s.ctx.node.kubelet().map(|k| &k.source) {
        Ok(crate::node::kubelet::Source::Process(pid)) => {
            let start = crate::node::kubelet::start_ticks;
            let theirs = s
                .ctx
                .node
                .root
                .read_to_string(
                    format!("/proc/{pid}/stat"),
                    crate::node::rootfs::FileKind::Kernel,
                )
                .ok();
            let ours = std::fs::read_to_string("/proc/self/stat").ok();
            match (
                theirs.as_deref().and_then(start),
                ours.as_deref().and_then(start),
            ) {
                (Some(t), Some(o)) if t < o => Some(*pid),
                _ => None,
            }
        }
        _ => None,
    };
    match older {
        Some(pid) => format!(
            "not registered: the kubelet (pid {pid}) started before this run, and a kubelet \
             registers its Node only when it starts; restart it while the harness waits \
             (`systemctl restart kubelet`), or let the harness start one (--kubelet-binary)"
        ),
        None => "not registered (a kubelet registers its Node only when it starts: restart it \
                 while the harness waits, for example `systemctl restart kubelet`, or let the \
                 harness start one with --kubelet-binary)"
            .to_string(),
    }
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn condition<'v>(obj: &'v Value, kind: &str) -> Option<&'v Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn node_ready(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let path = format!("/api/v1/nodes/{}", s.node);
    let what = format!("node {} to be Ready", s.node);
    let node = wait_for(&s, &what, ("nodes", &s.node), s.waits.node_ready, || {
        let node = s
            .api
            .get(&path)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| not_registered(&s))?;
        match condition(&node, "Ready") {
            Some(c) if str_at(c, "/status") == Some("True") => Ok(node),
            Some(c) => Err(format!(
                "Ready={} ({})",
                str_at(c, "/status").unwrap_or("?"),
                str_at(c, "/reason").unwrap_or("no reason")
            )),
            None => Err("registered, no Ready condition yet".into()),
        }
    });
    let node = match node {
        Ok(n) => n,
        Err(e) => return Outcome::failed(e),
    };
    let mut r = Recorder::new();
    s.describe_setup(&mut r);
    r.ok("Ready", "True");
    let arch = go_arch(&rustix::system::uname().machine().to_string_lossy()).to_string();
    for (label, want) in [
        ("kubernetes.io/hostname", Some(s.node.clone())),
        ("kubernetes.io/os", Some("linux".to_string())),
        ("kubernetes.io/arch", Some(arch)),
    ] {
        let got = node
            .pointer("/metadata/labels")
            .and_then(|l| l.get(label))
            .and_then(Value::as_str);
        match (got, want) {
            (Some(g), Some(w)) if g == w => r.ok(label, g),
            (Some(g), Some(w)) => r.fail(label, format!("is {g}, want {w}")),
            (None, _) => r.fail(label, "is missing"),
            (Some(g), None) => r.ok(label, g),
        }
    }
    if let Some(v) = str_at(&node, "/status/nodeInfo/kubeletVersion") {
        r.info("kubelet version", v);
    }
    // The kubelet the harness started serves only the harness: its server must refuse a
    // client without a certificate of the run's CA (no anonymous access) and answer the
    // harness's.
    if let Some(m) = s.managed {
        let (anonymous, harness) = m.probe_server();
        let server = "the kubelet's server (https://127.0.0.1:10250/pods)";
        match anonymous {
            Ok(401) => r.ok(
                format!("{server} without a client certificate"),
                "401 Unauthorized",
            ),
            Ok(code) => r.fail(
                format!("{server} without a client certificate"),
                format!("answered {code}, want 401: it serves anonymous clients"),
            ),
            Err(e) => r.fail(format!("{server} without a client certificate"), e),
        }
        match harness {
            Ok(200) => r.ok(format!("{server} with the harness's certificate"), "200"),
            Ok(code) => r.fail(
                format!("{server} with the harness's certificate"),
                format!("answered {code}, want 200"),
            ),
            Err(e) => r.fail(format!("{server} with the harness's certificate"), e),
        }
    }
    r.finish(|f| format!("node {} is Ready but: {}", s.node, describe(f)))
}

fn node_lease(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let path = format!(
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{}",
        s.node
    );
    let first = wait_for(
        &s,
        &format!("lease {} to exist", s.node),
        ("leases", &s.node),
        s.waits.node_ready,
        || {
            s.api
                .get(&path)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "no lease yet".to_string())
        },
    );
    let first = match first {
        Ok(l) => l,
        Err(e) => return Outcome::failed(e),
    };
    let mut r = Recorder::new();
    let renewed_at = str_at(&first, "/spec/renewTime").unwrap_or("").to_string();
    // The kubelet renews every quarter of the lease's duration (10s of 40s by default).
    let duration = first
        .pointer("/spec/leaseDurationSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(40);
    let renewed = wait_for(
        &s,
        &format!("lease {} to be renewed", s.node),
        ("leases", &s.node),
        Duration::from_secs(duration.max(10) + 10),
        || {
            let lease = s
                .api
                .get(&path)
                .map_err(|e| e.to_string())?
                .ok_or("the lease was deleted")?;
            match str_at(&lease, "/spec/renewTime") {
                Some(t) if t != renewed_at => Ok(lease),
                Some(t) => Err(format!("renewTime still {t}")),
                None => Err("no renewTime".into()),
            }
        },
    );
    let lease = match renewed {
        Ok(l) => {
            r.ok(
                "renewTime",
                format!(
                    "{renewed_at} -> {}",
                    str_at(&l, "/spec/renewTime").unwrap_or("")
                ),
            );
            l
        }
        Err(e) => {
            r.fail("renewTime", e);
            first
        }
    };
    match str_at(&lease, "/spec/holderIdentity") {
        Some(h) if h == s.node => r.ok("holderIdentity", h),
        other => r.fail("holderIdentity", format!("is {other:?}, want {}", s.node)),
    }
    let node_uid = s
        .api
        .get(&format!("/api/v1/nodes/{}", s.node))
        .ok()
        .flatten()
        .and_then(|n| str_at(&n, "/metadata/uid").map(str::to_string));
    let owner = lease
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|o| o.first());
    match (owner, node_uid) {
        (Some(o), Some(uid))
            if str_at(o, "/kind") == Some("Node") && str_at(o, "/uid") == Some(uid.as_str()) =>
        {
            r.ok("ownerReference", format!("Node {} ({uid})", s.node));
        }
        (o, _) => r.fail(
            "ownerReference",
            format!(
                "want the Node {} with its UID, got {}",
                s.node,
                o.map_or("none".into(), Value::to_string)
            ),
        ),
    }
    r.finish(|f| format!("lease {}: {}", s.node, describe(f)))
}

/// A static pod file the test wrote, removed when dropped: on success, failure or panic.
/// An interrupted run removes what is left through the control plane's record.
struct StaticPod<'a> {
    s: &'a Session<'a>,
    file: PathBuf,
    name: String,
}

impl<'a> StaticPod<'a> {
    fn create(s: &'a Session<'a>, args: &[&str]) -> Result<Self, String> {
        let name = format!("static-pod-{}", uuid::Uuid::new_v4());
        let file = s
            .manifests
            .base()
            .join(format!("{}-{name}.yaml", s.namespace));
        let pod = StaticPod { s, file, name };
        pod.write(args)?;
        Ok(pod)
    }

    fn mirror_name(&self) -> String {
        format!("{}-{}", self.name, self.s.node)
    }

    fn manifest(&self, args: &[&str]) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": self.name, "namespace": self.s.namespace,
                "labels": {RUN_LABEL: self.s.ctx.services.run_id}},
            "spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 2,
                "containers": [self.s.workload.container(args)],
                "volumes": self.s.workload.volumes()}})
    }

    fn write(&self, args: &[&str]) -> Result<(), String> {
        self.s
            .cp
            .write_static_pod(self.s.manifests, &self.file, &self.manifest(args))
    }

    fn remove(&self) -> Result<(), String> {
        self.s.cp.remove_static_pod(self.s.manifests, &self.file)
    }
}

impl Drop for StaticPod<'_> {
    fn drop(&mut self) {
        let _ = self.remove();
        // Upstream's teardown: the mirror pod goes once the file is gone.
        let path = pod_path(self.s, &self.mirror_name());
        let _ = wait_described(
            self.s,
            &format!("mirror pod {} to be deleted", self.mirror_name()),
            ("pods", &self.mirror_name()),
            self.s.waits.mirror_pod,
            || match self.s.api.get(&path) {
                Ok(None) => Ok(()),
                Ok(Some(p)) => Err(format!("still there: {}", summary(&p))),
                Err(e) => Err(e.to_string()),
            },
            || Some(pod_events(self.s, &self.mirror_name())),
        );
    }
}

fn pod_path(s: &Session<'_>, name: &str) -> String {
    format!("/api/v1/namespaces/{}/pods/{name}", s.namespace)
}

/// Why a mirror pod is not a valid one: upstream's checks, all of them.
fn mirror_problems(pod: &Value, node: &str, node_uid: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let annotation = |k: &str| {
        pod.pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
    };
    let hash = annotation("kubernetes.io/config.hash");
    match (annotation("kubernetes.io/config.mirror"), hash) {
        (Some(m), Some(h)) if m == h => {}
        (m, h) => problems.push(format!(
            "annotation kubernetes.io/config.mirror is {m:?}, want config.hash {h:?}"
        )),
    }
    match annotation("kubernetes.io/config.source") {
        Some("api") => problems.push("annotation kubernetes.io/config.source is api".into()),
        None => problems.push("annotation kubernetes.io/config.source is missing".into()),
        Some(_) => {}
    }
    let owners = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    match owners {
        [o] if str_at(o, "/kind") == Some("Node")
            && str_at(o, "/name") == Some(node)
            && str_at(o, "/uid") == Some(node_uid)
            && o.get("controller").and_then(Value::as_bool) == Some(true) => {}
        _ => problems.push(format!(
            "want exactly one ownerReference, to Node {node} (uid {node_uid}) with controller true; got {}",
            Value::from(owners.to_vec())
        )),
    }
    problems
}

fn pod_phase(pod: &Value) -> &str {
    str_at(pod, "/status/phase").unwrap_or("Pending")
}

/// The first container's status.
fn container_status(pod: &Value) -> Option<&Value> {
    pod.pointer("/status/containerStatuses/0")
}

fn restart_count(pod: &Value) -> u64 {
    container_status(pod)
        .and_then(|c| c.get("restartCount"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// A running, valid mirror pod for `sp`, other than `not_uid`; returns it.
fn wait_mirror_running(
    s: &Session<'_>,
    sp: &StaticPod<'_>,
    node_uid: &str,
    not_uid: Option<&str>,
    extra: impl Fn(&Value) -> Result<(), String>,
) -> Result<Value, String> {
    let name = sp.mirror_name();
    let path = pod_path(s, &name);
    wait_described(
        s,
        &format!("mirror pod {name} to be Running"),
        ("pods", &name),
        s.waits.mirror_pod,
        || {
            let pod = s
                .api
                .get(&path)
                .map_err(|e| e.to_string())?
                .ok_or("not created")?;
            let uid = str_at(&pod, "/metadata/uid").unwrap_or("");
            if not_uid == Some(uid) {
                return Err(format!("still the old one ({uid}): {}", summary(&pod)));
            }
            if pod.pointer("/metadata/deletionTimestamp").is_some() || pod_phase(&pod) != "Running"
            {
                return Err(summary(&pod));
            }
            let invalid = mirror_problems(&pod, &s.node, node_uid);
            if !invalid.is_empty() {
                return Err(format!(
                    "Running but not a valid mirror pod: {}",
                    invalid.join("; ")
                ));
            }
            extra(&pod)?;
            Ok(pod)
        },
        // A kubelet records a static pod's events under its mirror pod's name, created or not.
        || Some(pod_events(s, &name)),
    )
}

/// The Node of the kubelet under test, waited for (up to the node-ready wait) while the
/// kubelet registers: a test that starts with the run may look before the kubelet has.
pub(crate) fn registered_node(s: &Session<'_>) -> Result<Value, String> {
    wait_for(
        s,
        &format!("node {} to register", s.node),
        ("nodes", &s.node),
        s.waits.node_ready,
        || {
            s.api
                .get(&format!("/api/v1/nodes/{}", s.node))
                .map_err(|e| e.to_string())?
                .ok_or_else(|| not_registered(s))
        },
    )
}

fn node_uid(s: &Session<'_>) -> Result<String, String> {
    let node = registered_node(s)?;
    str_at(&node, "/metadata/uid")
        .map(str::to_string)
        .ok_or_else(|| format!("node {} has no UID", s.node))
}

const SLEEP: &[&str] = &["--sleep", "3600"];

/// Runs a MirrorPod test body with a static pod in place; every error fails the test.
fn with_mirror_pod(
    ctx: &Context,
    body: impl FnOnce(&Session<'_>, &StaticPod<'_>, &str, Value, &mut Recorder) -> Result<(), String>,
) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let result = (|| {
        let uid = node_uid(&s)?;
        let sp = StaticPod::create(&s, SLEEP)?;
        r.info("static pod file", sp.file.display().to_string());
        let first = wait_mirror_running(&s, &sp, &uid, None, |_| Ok(()))?;
        r.ok(
            "mirror pod",
            format!(
                "{} Running, uid {}",
                sp.mirror_name(),
                str_at(&first, "/metadata/uid").unwrap_or("")
            ),
        );
        body(&s, &sp, &uid, first, &mut r)
    })();
    match result {
        Ok(()) => r.finish(describe),
        Err(e) => r.fail_now(e),
    }
}

fn mirror_updated(ctx: &Context) -> Outcome {
    with_mirror_pod(ctx, |s, sp, node_uid, first, r| {
        let old = str_at(&first, "/metadata/uid").unwrap_or("").to_string();
        // One test image: the update changes the container's arguments, which changes the
        // static pod's hash as another image would.
        let updated = ["--sleep", "3601"];
        sp.write(&updated)?;
        let pod = wait_mirror_running(s, sp, node_uid, Some(&old), |pod| {
            let args = pod.pointer("/spec/containers/0/args");
            if args == Some(&json!(updated)) {
                Ok(())
            } else {
                Err(format!(
                    "Running with the old spec (args {})",
                    args.map_or("none".into(), Value::to_string)
                ))
            }
        })?;
        r.ok(
            "updated",
            format!(
                "new uid {}, new spec Running",
                str_at(&pod, "/metadata/uid").unwrap_or("")
            ),
        );
        Ok(())
    })
}

fn mirror_deleted(ctx: &Context, grace: u64) -> Outcome {
    with_mirror_pod(ctx, |s, sp, node_uid, first, r| {
        let old = str_at(&first, "/metadata/uid").unwrap_or("").to_string();
        s.api
            .delete(
                &pod_path(s, &sp.mirror_name()),
                &json!({"gracePeriodSeconds": grace}),
            )
            .map_err(|e| e.to_string())?;
        let pod = wait_mirror_running(s, sp, node_uid, Some(&old), |_| Ok(()))?;
        r.ok(
            "recreated",
            format!(
                "deleted with grace {grace}s; new uid {} Running",
                str_at(&pod, "/metadata/uid").unwrap_or("")
            ),
        );
        Ok(())
    })
}

fn mirror_graceful_delete(ctx: &Context) -> Outcome {
    mirror_deleted(ctx, 30)
}

fn mirror_forced_delete(ctx: &Context) -> Outcome {
    mirror_deleted(ctx, 0)
}

fn mirror_file_recreated(ctx: &Context) -> Outcome {
    with_mirror_pod(ctx, |s, sp, node_uid, _, r| {
        sp.remove()?;
        sp.write(SLEEP)?;
        let pod = wait_mirror_running(s, sp, node_uid, None, |pod| match restart_count(pod) {
            0 => Err("Running, restartCount 0".into()),
            _ => Ok(()),
        })?;
        r.ok("restartCount", restart_count(&pod).to_string());
        // Upstream: and it stays Running for 30 seconds.
        let path = pod_path(s, &sp.mirror_name());
        let watched = Instant::now();
        let until = watched + STAY_RUNNING;
        let mut next_report = Instant::now() + Duration::from_secs(10);
        let what = format!("mirror pod {} to stay Running", sp.mirror_name());
        let _done = DoneWaiting;
        while Instant::now() < until {
            let pod = s.api.get(&path).map_err(|e| e.to_string())?;
            match &pod {
                Some(p) if pod_phase(p) == "Running" => {}
                Some(p) => {
                    return Err(format!(
                        "mirror pod {} left Running: {}; {}",
                        sp.mirror_name(),
                        summary(p),
                        pod_events(s, &sp.mirror_name())
                    ));
                }
                None => {
                    return Err(format!(
                        "mirror pod {} left Running: deleted",
                        sp.mirror_name()
                    ));
                }
            }
            super::note_waiting(&what, "Running");
            if Instant::now() >= next_report {
                s.ctx.console.line(&format!(
                    "  watching mirror pod {} stay Running: Running, {}s of {}s",
                    sp.mirror_name(),
                    (STAY_RUNNING - until.saturating_duration_since(Instant::now())).as_secs(),
                    STAY_RUNNING.as_secs()
                ));
                next_report += Duration::from_secs(10);
            }
            std::thread::sleep(s.waits.poll);
        }
        super::add_waited(watched.elapsed());
        r.ok("stays Running", "30s");
        Ok(())
    })
}

/// An API pod on this node, deleted (and waited for) when dropped.
pub(crate) struct ApiPod<'a> {
    s: &'a Session<'a>,
    pub(crate) name: String,
}

impl<'a> ApiPod<'a> {
    fn create(
        s: &'a Session<'a>,
        prefix: &str,
        restart: &str,
        container: Value,
    ) -> Result<Self, String> {
        let name = format!(
            "{prefix}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {RUN_LABEL: s.ctx.services.run_id}},
            "spec": {"nodeName": s.node, "restartPolicy": restart,
                "terminationGracePeriodSeconds": 2, "containers": [container],
                "volumes": s.workload.volumes()}});
        let path = format!("/api/v1/namespaces/{}/pods", s.namespace);
        s.cp.track_object(&pod_path(s, &name));
        s.api.create(&path, &pod).map_err(|e| e.to_string())?;
        Ok(ApiPod { s, name })
    }

    /// A pod of `spec` (typed), named `<prefix>-<8 hex>`, put on this run's node with the
    /// run's label, the workload's volumes added and a grace period of 2 s unless it names
    /// one.
    pub(crate) fn create_spec(
        s: &'a Session<'a>,
        prefix: &str,
        spec: k8s_openapi::api::core::v1::PodSpec,
    ) -> Result<Self, String> {
        Self::create_labelled(s, prefix, &[], spec)
    }

    /// [`ApiPod::create_spec`] with labels of the test's own beside the run's.
    pub(crate) fn create_labelled(
        s: &'a Session<'a>,
        prefix: &str,
        labels: &[(&str, &str)],
        spec: k8s_openapi::api::core::v1::PodSpec,
    ) -> Result<Self, String> {
        Self::create_with(s, prefix, labels, &[], spec)
    }

    /// [`ApiPod::create_spec`] with finalizers; the test removes them before the pod's
    /// clean-up, or the pod stays.
    pub(crate) fn create_finalized(
        s: &'a Session<'a>,
        prefix: &str,
        finalizers: &[&str],
        spec: k8s_openapi::api::core::v1::PodSpec,
    ) -> Result<Self, String> {
        Self::create_with(s, prefix, &[], finalizers, spec)
    }

    fn create_with(
        s: &'a Session<'a>,
        prefix: &str,
        labels: &[(&str, &str)],
        finalizers: &[&str],
        mut spec: k8s_openapi::api::core::v1::PodSpec,
    ) -> Result<Self, String> {
        let name = format!(
            "{prefix}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        spec.node_name = Some(s.node.clone());
        spec.termination_grace_period_seconds.get_or_insert(2);
        let workload: Vec<k8s_openapi::api::core::v1::Volume> =
            serde_json::from_value(s.workload.volumes()).map_err(|e| e.to_string())?;
        spec.volumes.get_or_insert_with(Vec::new).extend(workload);
        let pod = k8s_openapi::api::core::v1::Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.clone()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                        .chain([(RUN_LABEL.to_string(), s.ctx.services.run_id.clone())])
                        .collect(),
                ),
                finalizers: (!finalizers.is_empty())
                    .then(|| finalizers.iter().map(|f| (*f).to_string()).collect()),
                ..Default::default()
            },
            spec: Some(spec),
            status: None,
        };
        let body = serde_json::to_value(&pod).map_err(|e| e.to_string())?;
        let path = format!("/api/v1/namespaces/{}/pods", s.namespace);
        s.cp.track_object(&pod_path(s, &name));
        s.api.create(&path, &body).map_err(|e| e.to_string())?;
        Ok(ApiPod { s, name })
    }

    pub(crate) fn path(&self) -> String {
        pod_path(self.s, &self.name)
    }

    /// The log of its container `container`, read as upstream reads it: `pods/log` through the
    /// control plane, which asks the kubelet.
    pub(crate) fn logs(&self, container: &str) -> Result<String, String> {
        self.logs_with(container, &[])
    }

    /// [`ApiPod::logs`] with PodLogOptions (`sinceTime`, `tailLines`, ...).
    pub(crate) fn logs_with(
        &self,
        container: &str,
        options: &[(&str, &str)],
    ) -> Result<String, String> {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("container", container);
        for (k, v) in options {
            query.append_pair(k, v);
        }
        self.s
            .api
            .get_text(&format!("{}/log?{}", self.path(), query.finish()))
            .map_err(|e| e.to_string())
    }

    /// Runs the workload with `actions` in its container `container` through `pods/exec`
    /// (upstream's `ExecWithOptions`): its output and exit code, within a minute.
    pub(crate) fn exec(
        &self,
        container: &str,
        actions: &[&str],
    ) -> Result<super::common::exec::ExecOutput, String> {
        let mut command = self.s.workload.command();
        command.extend(actions.iter().map(|a| (*a).to_string()));
        super::common::exec::exec(
            &self.s.api,
            &self.path(),
            container,
            &command,
            Duration::from_secs(60),
        )
    }

    /// Deletes the pod (grace 2 s) and waits until it is gone, as upstream's
    /// `should be possible to delete` does: `Err` says what was seen instead.
    pub(crate) fn delete_and_wait(&self) -> Result<(), String> {
        let path = self.path();
        self.s
            .api
            .delete(&path, &json!({"gracePeriodSeconds": 2}))
            .map_err(|e| e.to_string())?;
        self.wait_gone(removal(&self.s.waits))
    }

    /// Waits at most `limit` for the pod to be gone from the API (upstream's
    /// `WaitForPodNotFoundInNamespace`), then forgets it: `Err` says what was seen instead.
    pub(crate) fn wait_gone(&self, limit: Duration) -> Result<(), String> {
        let path = self.path();
        wait_described(
            self.s,
            &format!("pod {} to be removed", self.name),
            ("pods", &self.name),
            limit,
            || match self.s.api.get(&path) {
                Ok(None) => Ok(()),
                Ok(Some(p)) => Err(format!("still there: {}", summary(&p))),
                Err(e) => Err(e.to_string()),
            },
            || Some(pod_events(self.s, &self.name)),
        )?;
        self.s.cp.untrack_object(&path);
        Ok(())
    }

    /// Deletes the pod at once (grace period 0), as upstream's `ConformanceContainer.Delete`
    /// does: the API forgets it without the kubelet's word, and the kubelet then stops what
    /// it runs on its own (one whose container never started, in an image pull back-off,
    /// can take kubelet 1.20 over a minute to confirm). `Err` is the API's answer.
    pub(crate) fn delete_at_once(&self) -> Result<(), String> {
        let path = self.path();
        self.s
            .api
            .delete(&path, &json!({"gracePeriodSeconds": 0}))
            .map_err(|e| e.to_string())?;
        self.s.cp.untrack_object(&path);
        Ok(())
    }

    /// Waits until `check` passes on the pod; its error is the pod's state as the check
    /// sees it, to which the pod's latest events are added when the wait reports.
    pub(crate) fn wait(
        &self,
        what: &str,
        check: impl Fn(&Value) -> Result<(), String>,
    ) -> Result<Value, String> {
        self.wait_within(what, self.s.waits.pod_start, check)
    }

    /// Upstream's `CreateSync` wait: the pod Running.
    pub(crate) fn wait_running(&self) -> Result<Value, String> {
        self.wait("to be Running", |p| match pod_phase(p) {
            "Running" => Ok(()),
            _ => Err(summary(p)),
        })
    }

    /// The pod Ready (podutils.IsPodReady: its Ready condition True).
    pub(crate) fn wait_ready(&self) -> Result<Value, String> {
        self.wait("to be Running and Ready", |p| {
            match condition(p, "Ready").and_then(|c| str_at(c, "/status")) {
                Some("True") => Ok(()),
                _ => Err(summary(p)),
            }
        })
    }

    /// [`ApiPod::wait`] for at most `limit` (an upstream timeout other than PodStartTimeout).
    pub(crate) fn wait_within(
        &self,
        what: &str,
        limit: Duration,
        check: impl Fn(&Value) -> Result<(), String>,
    ) -> Result<Value, String> {
        wait_described(
            self.s,
            &format!("pod {} {what}", self.name),
            ("pods", &self.name),
            limit,
            || {
                let pod = self
                    .s
                    .api
                    .get(&self.path())
                    .map_err(|e| e.to_string())?
                    .ok_or("deleted")?;
                check(&pod).map(|()| pod)
            },
            || Some(pod_events(self.s, &self.name)),
        )
    }
}

impl Drop for ApiPod<'_> {
    fn drop(&mut self) {
        let path = self.path();
        // Gracefully, so the kubelet stops the containers and then removes the pod: nothing
        // runs on after the test. A kubelet that never confirms gets the pod forced away.
        if self
            .s
            .api
            .delete(&path, &json!({"gracePeriodSeconds": 2}))
            .is_err()
        {
            return;
        }
        if self.wait_gone(removal(&self.s.waits)).is_err()
            && self
                .s
                .api
                .delete(&path, &json!({"gracePeriodSeconds": 0}))
                .is_ok()
        {
            self.s.cp.untrack_object(&path);
        }
    }
}

/// The state a container ended in, or the one before its restart.
fn terminated(pod: &Value, last: bool) -> Option<&Value> {
    let state = if last { "lastState" } else { "state" };
    container_status(pod)?.get(state)?.get("terminated")
}

fn exit_code(t: &Value) -> Option<i64> {
    t.get("exitCode").and_then(Value::as_i64)
}

/// A pod's state as `kubectl describe` tells it, on one line: the phase with the pod's reason
/// and message, then each container's state, restart count and last termination:
/// `phase Pending; container workload: waiting (CreateContainerConfigError: ...), restartCount 0`.
pub(crate) fn summary(pod: &Value) -> String {
    let mut out = format!("phase {}", pod_phase(pod));
    let why = [
        str_at(pod, "/status/reason").map(str::to_string),
        str_at(pod, "/status/message").map(one_line),
    ]
    .into_iter()
    .flatten()
    .filter(|p| !p.is_empty())
    .collect::<Vec<_>>()
    .join(": ");
    if !why.is_empty() {
        out.push_str(&format!(" ({why})"));
    }
    if let Some(t) = str_at(pod, "/metadata/deletionTimestamp") {
        out.push_str(&format!(", being deleted (deletionTimestamp {t})"));
    }
    let mut described = 0;
    for (kind, specs, statuses) in [
        (
            "init container",
            "/spec/initContainers",
            "/status/initContainerStatuses",
        ),
        ("container", "/spec/containers", "/status/containerStatuses"),
    ] {
        let statuses = pod
            .pointer(statuses)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        // The spec names every container, those without a status yet too; a pod read back
        // without its spec still has its statuses.
        let mut names: Vec<&str> = pod
            .pointer(specs)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|c| str_at(c, "/name"))
            .collect();
        for c in statuses {
            if let Some(n) = str_at(c, "/name")
                && !names.contains(&n)
            {
                names.push(n);
            }
        }
        for name in names {
            let status = statuses.iter().find(|c| str_at(c, "/name") == Some(name));
            out.push_str(&format!("; {kind} {name}: "));
            out.push_str(&status.map_or("no status yet".into(), container_summary));
            described += 1;
        }
    }
    if described == 0 {
        out.push_str("; no container status yet");
    }
    out
}

/// One container's status: `running since T, restartCount 1, last terminated (Error, exit
/// code 1)`.
fn container_summary(c: &Value) -> String {
    let mut out = c.get("state").map_or("no state".into(), container_state);
    let restarts = c.get("restartCount").and_then(Value::as_u64).unwrap_or(0);
    out.push_str(&format!(", restartCount {restarts}"));
    if let Some(last) = c.get("lastState").filter(|l| l.get("terminated").is_some()) {
        out.push_str(&format!(", last {}", container_state(last)));
    }
    out
}

/// A ContainerState: `waiting (Reason: message)`, `running since T`, `terminated (Reason,
/// exit code N: message)`.
fn container_state(state: &Value) -> String {
    let because = |reason: Option<&str>, message: Option<&str>| {
        let message = message.map(one_line).filter(|m| !m.is_empty());
        match (reason.filter(|r| !r.is_empty()), message) {
            (Some(r), Some(m)) => format!(" ({r}: {m})"),
            (Some(r), None) => format!(" ({r})"),
            (None, Some(m)) => format!(" ({m})"),
            (None, None) => String::new(),
        }
    };
    if let Some(w) = state.get("waiting") {
        format!(
            "waiting{}",
            because(str_at(w, "/reason"), str_at(w, "/message"))
        )
    } else if let Some(r) = state.get("running") {
        match str_at(r, "/startedAt") {
            Some(t) => format!("running since {t}"),
            None => "running".into(),
        }
    } else if let Some(t) = state.get("terminated") {
        let mut what: Vec<String> = str_at(t, "/reason")
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .into_iter()
            .collect();
        match exit_code(t) {
            Some(code) => what.push(format!("exit code {code}")),
            None => what.push("no exit code".into()),
        }
        if let Some(signal) = t.get("signal").and_then(Value::as_i64).filter(|s| *s != 0) {
            what.push(format!("signal {signal}"));
        }
        let mut what = what.join(", ");
        if let Some(m) = str_at(t, "/message")
            .map(one_line)
            .filter(|m| !m.is_empty())
        {
            what.push_str(&format!(": {m}"));
        }
        format!("terminated ({what})")
    } else {
        "no state".into()
    }
}

/// The most characters of a message quoted in a state: a termination message can be a whole
/// log.
const MESSAGE_CHARS: usize = 200;

/// A message on one line and cut to [`MESSAGE_CHARS`], for a state that is one line.
fn one_line(message: &str) -> String {
    let joined = message.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &joined[..at]),
        None => joined,
    }
}

/// How many of a pod's events a state quotes.
const EVENTS: usize = 3;

/// The latest [`EVENTS`] of `events` (Event objects, in any order), newest last:
/// `events, newest last: Pulled: Container image ... | Failed (x3): Error: ...`, or `no events`.
fn recent_events(events: &[Value]) -> String {
    // Timestamps are RFC 3339 in UTC; without the zone letter, whole seconds sort before
    // fractions of the same second as they should.
    let when = |e: &Value| {
        [
            "/lastTimestamp",
            "/eventTime",
            "/firstTimestamp",
            "/metadata/creationTimestamp",
        ]
        .iter()
        .find_map(|p| str_at(e, p))
        .unwrap_or("")
        .trim_end_matches('Z')
        .to_string()
    };
    let mut events: Vec<&Value> = events.iter().collect();
    events.sort_by_cached_key(|e| when(e));
    let latest = &events[events.len().saturating_sub(EVENTS)..];
    if latest.is_empty() {
        return "no events".into();
    }
    let lines: Vec<String> = latest
        .iter()
        .map(|e| {
            let reason = str_at(e, "/reason").unwrap_or("(no reason)");
            let count = e
                .get("count")
                .and_then(Value::as_u64)
                .or_else(|| e.pointer("/series/count").and_then(Value::as_u64))
                .filter(|c| *c > 1)
                .map_or(String::new(), |c| format!(" (x{c})"));
            let message = str_at(e, "/message").map(one_line).unwrap_or_default();
            format!("{reason}{count}: {message}")
        })
        .collect();
    format!("events, newest last: {}", lines.join(" | "))
}

/// The latest events about the pod `name` in the test namespace, as [`recent_events`] tells
/// them; read only when a wait reports, as listing them at every poll would cost too much.
pub(crate) fn pod_events(s: &Session<'_>, name: &str) -> String {
    let path = format!(
        "/api/v1/namespaces/{}/events?fieldSelector=involvedObject.name%3D{name}",
        s.namespace
    );
    match s.api.list(&path) {
        Ok(events) => recent_events(&events),
        Err(e) => format!("events not read: {e}"),
    }
}

/// Runs one pod with restartPolicy Never to its end; returns its terminated state.
fn run_to_end(s: &Session<'_>, prefix: &str, container: Value) -> Result<(Value, Value), String> {
    let pod = ApiPod::create(s, prefix, "Never", container)?;
    let done = pod.wait("to finish", |p| match pod_phase(p) {
        "Succeeded" | "Failed" => Ok(()),
        _ => Err(summary(p)),
    })?;
    let t = terminated(&done, false)
        .cloned()
        .ok_or_else(|| format!("finished without a terminated state: {}", summary(&done)))?;
    Ok((done, t))
}

fn env_and_downward_api(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let field = |path: &str| json!({"valueFrom": {"fieldRef": {"fieldPath": path}}});
    let vars = [
        ("NC_PLAIN", json!({"value": "plain value"})),
        ("NC_POD_NAME", field("metadata.name")),
        ("NC_POD_NAMESPACE", field("metadata.namespace")),
        ("NC_POD_UID", field("metadata.uid")),
        ("NC_NODE_NAME", field("spec.nodeName")),
        ("NC_POD_IP", field("status.podIP")),
        ("NC_HOST_IP", field("status.hostIP")),
    ];
    let mut args = Vec::new();
    for (name, _) in &vars {
        args.extend(["--print-env", name]);
    }
    // The logs become the termination message on a failing exit: the process itself reports
    // what it was given.
    args.extend(["--exit", "1"]);
    let mut c = s.workload.container(&args);
    c["terminationMessagePolicy"] = json!("FallbackToLogsOnError");
    c["env"] = Value::Array(
        vars.iter()
            .map(|(name, source)| {
                let mut e = source.clone();
                e["name"] = json!(name);
                e
            })
            .collect(),
    );
    let (pod, t) = match run_to_end(&s, "env", c) {
        Ok(x) => x,
        Err(e) => return r.fail_now(e),
    };
    let printed = str_at(&t, "/message").unwrap_or("");
    for (name, _) in &vars {
        let want = match *name {
            "NC_PLAIN" => Some("plain value"),
            "NC_POD_NAME" => str_at(&pod, "/metadata/name"),
            "NC_POD_NAMESPACE" => str_at(&pod, "/metadata/namespace"),
            "NC_POD_UID" => str_at(&pod, "/metadata/uid"),
            "NC_NODE_NAME" => Some(s.node.as_str()),
            "NC_POD_IP" => str_at(&pod, "/status/podIP"),
            _ => str_at(&pod, "/status/hostIP"),
        };
        let got = printed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")));
        match (got, want) {
            (Some(g), Some(w)) if g == w => r.ok(*name, g),
            (Some(g), w) => r.fail(*name, format!("is {g:?}, want {w:?}")),
            (None, _) => r.fail(*name, "did not reach the container"),
        }
    }
    r.note(format!("the container printed:\n{printed}"));
    r.finish(describe)
}

fn graceful_delete(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let pod = match ApiPod::create(&s, "graceful", "Always", s.workload.container(SLEEP)) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    if let Err(e) = pod.wait("to be Running", |p| match pod_phase(p) {
        "Running" => Ok(()),
        _ => Err(summary(p)),
    }) {
        return r.fail_now(e);
    }
    let grace = GRACE_SECONDS;
    if let Err(e) = s
        .api
        .delete(&pod.path(), &json!({"gracePeriodSeconds": grace}))
    {
        return r.fail_now(e.to_string());
    }
    match s.api.get(&pod.path()) {
        Ok(Some(p)) if p.pointer("/metadata/deletionTimestamp").is_some() => {
            r.ok(
                "deletionTimestamp",
                str_at(&p, "/metadata/deletionTimestamp").unwrap_or(""),
            );
        }
        Ok(Some(_)) => r.fail("deletionTimestamp", "not set by the graceful delete"),
        Ok(None) => r.fail("deletionTimestamp", "the pod went at once, not gracefully"),
        Err(e) => return r.fail_now(e.to_string()),
    }
    let began = Instant::now();
    let limit = Duration::from_secs(grace) + AFTER_GRACE;
    let gone = wait_described(
        &s,
        &format!("pod {} to be removed", pod.name),
        ("pods", &pod.name),
        limit,
        || match s.api.get(&pod.path()) {
            Ok(None) => Ok(()),
            Ok(Some(p)) => Err(summary(&p)),
            Err(e) => Err(e.to_string()),
        },
        || Some(pod_events(&s, &pod.name)),
    );
    match gone {
        Ok(()) => r.ok(
            "removed",
            format!("{:.1}s after the delete", began.elapsed().as_secs_f64()),
        ),
        Err(e) => r.fail("removed", e),
    }
    r.finish(describe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirror(owner: Value, mirror: &str, source: &str) -> Value {
        json!({"metadata": {"annotations": {"kubernetes.io/config.hash": "h1",
            "kubernetes.io/config.mirror": mirror, "kubernetes.io/config.source": source},
            "ownerReferences": owner}})
    }

    #[test]
    fn mirror_pod_validity_is_upstreams() {
        let owner = json!([{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "u1", "controller": true}]);
        assert!(mirror_problems(&mirror(owner.clone(), "h1", "file"), "n1", "u1").is_empty());
        assert_eq!(
            mirror_problems(&mirror(owner.clone(), "h2", "file"), "n1", "u1").len(),
            1
        );
        assert_eq!(
            mirror_problems(&mirror(owner.clone(), "h1", "api"), "n1", "u1").len(),
            1
        );
        assert_eq!(
            mirror_problems(&mirror(owner.clone(), "h1", "file"), "n1", "u2").len(),
            1
        );
        assert_eq!(
            mirror_problems(&mirror(json!([]), "h1", "file"), "n1", "u1").len(),
            1
        );
        let two = json!([owner[0], owner[0]]);
        assert_eq!(
            mirror_problems(&mirror(two, "h1", "file"), "n1", "u1").len(),
            1
        );
        let not_controller = json!([{"kind": "Node", "name": "n1", "uid": "u1"}]);
        assert_eq!(
            mirror_problems(&mirror(not_controller, "h1", "file"), "n1", "u1").len(),
            1
        );
    }

    /// A pod as a kubelet 1.20 writes its status: `containers` name, status per container.
    fn pod(phase: &str, statuses: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "workload", "image": "i"}]},
            "status": {"phase": phase, "hostIP": "10.0.0.1", "qosClass": "BestEffort",
                "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
                "containerStatuses": statuses}})
    }

    #[test]
    fn a_pod_reads_as_kubectl_describe_tells_it() {
        let waiting = pod(
            "Pending",
            json!([{"name": "workload", "ready": false, "restartCount": 0, "image": "i",
                "imageID": "", "started": false,
                "state": {"waiting": {"reason": "CreateContainerConfigError",
                    "message": "unsupported pod version: "}},
                "lastState": {}}]),
        );
        assert_eq!(
            summary(&waiting),
            "phase Pending; container workload: waiting (CreateContainerConfigError: \
             unsupported pod version:), restartCount 0"
        );

        let failed = pod(
            "Failed",
            json!([{"name": "workload", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "reason": "Error",
                    "startedAt": "2021-02-03T04:05:06Z", "finishedAt": "2021-02-03T04:05:07Z",
                    "containerID": "docker://abc"}},
                "lastState": {}}]),
        );
        assert_eq!(
            summary(&failed),
            "phase Failed; container workload: terminated (Error, exit code 1), restartCount 0"
        );

        let restarted = pod(
            "Running",
            json!([{"name": "workload", "ready": true, "restartCount": 2, "started": true,
                "state": {"running": {"startedAt": "2021-02-03T04:05:08Z"}},
                "lastState": {"terminated": {"exitCode": 137, "signal": 9, "reason": "OOMKilled",
                    "message": "line one\n  line two\n"}}}]),
        );
        assert_eq!(
            summary(&restarted),
            "phase Running; container workload: running since 2021-02-03T04:05:08Z, \
             restartCount 2, last terminated (OOMKilled, exit code 137, signal 9: line one line two)"
        );
    }

    #[test]
    fn a_pods_own_reason_every_container_and_a_deletion_are_told() {
        let mut evicted = pod("Failed", json!([]));
        evicted["status"]["reason"] = json!("Evicted");
        evicted["status"]["message"] = json!("The node was low on resource: memory.");
        evicted["metadata"]["deletionTimestamp"] = json!("2021-02-03T04:05:09Z");
        evicted["spec"]["initContainers"] = json!([{"name": "setup"}]);
        evicted["spec"]["containers"] = json!([{"name": "a"}, {"name": "b"}]);
        evicted["status"]["initContainerStatuses"] = json!([{"name": "setup", "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]);
        evicted["status"]["containerStatuses"] = json!([{"name": "b", "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]);
        assert_eq!(
            summary(&evicted),
            "phase Failed (Evicted: The node was low on resource: memory.), being deleted \
             (deletionTimestamp 2021-02-03T04:05:09Z); init container setup: terminated (Completed, exit code 0), \
             restartCount 0; container a: no status yet; container b: waiting \
             (ContainerCreating), restartCount 0"
        );
        // As the API server creates it, before the kubelet writes any status.
        assert_eq!(
            summary(&json!({"metadata": {"name": "p"}})),
            "phase Pending; no container status yet"
        );
        let long = "x".repeat(MESSAGE_CHARS + 50);
        let cut = container_state(&json!({"waiting": {"reason": "R", "message": long}}));
        assert_eq!(
            cut.chars().count(),
            "waiting (R: )".len() + MESSAGE_CHARS + 1
        );
    }

    #[test]
    fn the_latest_three_events_are_told_newest_last() {
        let event = |reason: &str, message: &str, count: u64, last: &str| {
            json!({"metadata": {"name": format!("p.{reason}"), "namespace": "ns"},
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns"},
                "reason": reason, "message": message, "count": count, "type": "Normal",
                "source": {"component": "kubelet", "host": "n1"},
                "firstTimestamp": "2021-02-03T04:05:00Z", "lastTimestamp": last})
        };
        let events = [
            event(
                "Failed",
                "Error: unsupported pod version: ",
                4,
                "2021-02-03T04:05:40Z",
            ),
            event("Scheduled", "assigned", 1, "2021-02-03T04:05:00Z"),
            event(
                "Pulled",
                "Container image \"i\" already present on machine",
                5,
                "2021-02-03T04:05:41Z",
            ),
            event(
                "SandboxChanged",
                "Pod sandbox changed",
                1,
                "2021-02-03T04:05:10Z",
            ),
        ];
        assert_eq!(
            recent_events(&events),
            "events, newest last: SandboxChanged: Pod sandbox changed | Failed (x4): Error: \
             unsupported pod version: | Pulled (x5): Container image \"i\" already present on machine"
        );
        assert_eq!(recent_events(&[]), "no events");
        // An events.k8s.io-style event: a microsecond eventTime, the count in its series.
        let series = json!({"reason": "BackOff", "message": "Back-off restarting failed container",
            "eventTime": "2021-02-03T04:05:41.000001Z", "series": {"count": 7}});
        assert!(
            recent_events(&[events[2].clone(), series])
                .ends_with("| BackOff (x7): Back-off restarting failed container")
        );
    }

    #[test]
    fn architectures_are_named_as_kubernetes_labels_them() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("armv7l"), "arm");
    }
}
