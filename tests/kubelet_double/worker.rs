//! One pod's containers: started, watched, restarted per restartPolicy, stopped; and the pod
//! status they add up to. Each pod has its own thread, so one pod's slow stop holds up no
//! other pod and no API call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use crate::runtime::{Instance, Runtime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    /// Replaces the image's entrypoint when given.
    pub command: Option<Vec<String>>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub termination_path: String,
    pub fallback_to_logs: bool,
    /// Its emptyDir mounts: (mount path, volume name). Other volumes are not supported.
    pub empty_dirs: Vec<(String, String)>,
    /// imagePullPolicy Always: the image is pulled before each start.
    pub pull_always: bool,
}

/// What running a pod takes, read once from the pod (or static manifest).
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// For a static pod, its static UID (the manifest hash), which its containers see.
    pub uid: String,
    pub name: String,
    pub namespace: String,
    pub restart: Policy,
    pub containers: Vec<ContainerSpec>,
    /// The names of its image pull Secrets.
    pub pull_secrets: Vec<String>,
    /// Their credentials, read when the pod is started.
    pub pull_auths: crate::pull::Auths,
}

impl PodInfo {
    pub fn parse(pod: &Value, uid: &str, name: &str, node: &str) -> Result<Self, String> {
        let meta: ObjectMeta = serde_json::from_value(pod["metadata"].clone())
            .map_err(|e| format!("metadata: {e}"))?;
        let spec: PodSpec =
            serde_json::from_value(pod["spec"].clone()).map_err(|e| format!("spec: {e}"))?;
        let namespace = meta.namespace.as_deref().unwrap_or("default");
        let restart = match spec.restart_policy.as_deref() {
            None | Some("Always") => Policy::Always,
            Some("OnFailure") => Policy::OnFailure,
            Some("Never") => Policy::Never,
            Some(other) => return Err(format!("unknown restartPolicy {other:?}")),
        };
        // The downward API.
        let field = |path: &str| -> Option<String> {
            let entry = |map: &Option<std::collections::BTreeMap<String, String>>, rest: &str| {
                let key = rest.strip_prefix("['")?.strip_suffix("']")?;
                Some(map.as_ref()?.get(key).cloned().unwrap_or_default())
            };
            Some(match path {
                "metadata.name" => name.to_string(),
                "metadata.namespace" => namespace.to_string(),
                "metadata.uid" => uid.to_string(),
                "spec.nodeName" => node.to_string(),
                "spec.serviceAccountName" => spec.service_account_name.clone().unwrap_or_default(),
                "status.hostIP" | "status.podIP" | "status.hostIPs" | "status.podIPs" => {
                    "127.0.0.1".to_string()
                }
                p => match p.strip_prefix("metadata.labels") {
                    Some(rest) => entry(&meta.labels, rest)?,
                    None => entry(&meta.annotations, p.strip_prefix("metadata.annotations")?)?,
                },
            })
        };
        let empty_dir_volumes: Vec<&str> = spec
            .volumes
            .iter()
            .flatten()
            .filter(|v| v.empty_dir.is_some())
            .map(|v| v.name.as_str())
            .collect();
        let mut containers = Vec::new();
        for c in &spec.containers {
            let mut env: Vec<(String, String)> = Vec::new();
            for e in c.env.iter().flatten() {
                let field_path = e.value_from.as_ref().and_then(|v| v.field_ref.as_ref());
                let value = match (&e.value, field_path) {
                    (Some(v), _) => expand(v, &env),
                    (None, Some(f)) => field(&f.field_path).ok_or_else(|| {
                        format!("env {}: unsupported fieldPath {:?}", e.name, f.field_path)
                    })?,
                    (None, None) if e.value_from.is_some() => {
                        return Err(format!("env {}: only fieldRef is supported", e.name));
                    }
                    (None, None) => String::new(),
                };
                env.push((e.name.clone(), value));
            }
            let expand_all = |v: &Vec<String>| v.iter().map(|s| expand(s, &env)).collect();
            containers.push(ContainerSpec {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                command: c.command.as_ref().map(expand_all),
                args: c.args.as_ref().map(expand_all).unwrap_or_default(),
                termination_path: (c.termination_message_path.as_deref())
                    .unwrap_or("/dev/termination-log")
                    .to_string(),
                fallback_to_logs: c.termination_message_policy.as_deref()
                    == Some("FallbackToLogsOnError"),
                empty_dirs: c
                    .volume_mounts
                    .iter()
                    .flatten()
                    .filter(|m| empty_dir_volumes.contains(&m.name.as_str()))
                    .map(|m| (m.mount_path.clone(), m.name.clone()))
                    .collect(),
                env,
                pull_always: c.image_pull_policy.as_deref() == Some("Always"),
            });
        }
        if containers.is_empty() {
            return Err("the pod has no containers".into());
        }
        Ok(Self {
            uid: uid.to_string(),
            name: name.to_string(),
            namespace: namespace.to_string(),
            restart,
            containers,
            pull_secrets: spec
                .image_pull_secrets
                .iter()
                .flatten()
                .map(|s| s.name.clone())
                .collect(),
            pull_auths: Vec::new(),
        })
    }
}

/// `$(VAR)` from the variables defined so far, `$$` for a literal `$`; an unknown `$(VAR)`
/// stays as written, as Kubernetes leaves it.
fn expand(s: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some((name, after)) = rest.strip_prefix('(').and_then(|a| a.split_once(')')) {
            match vars.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&format!("$({name})")),
            }
            rest = after;
        } else {
            out.push('$');
        }
    }
    out + rest
}

/// Kubernetes' bound on a termination message.
const MESSAGE_LIMIT: usize = 4096;

struct Container {
    spec: ContainerSpec,
    restarts: u32,
    instance: Option<Box<dyn Instance>>,
    started_at: String,
    state: Value,
    last_state: Value,
    /// When to start it (again); None once it is done for good.
    next_start: Option<Instant>,
    exit: Option<i32>,
    /// The runtime's id of its latest instance; empty until it first starts.
    id: String,
    image_id: String,
}

/// The handle the pod sync keeps.
pub struct Worker {
    stop: Arc<Mutex<Option<Duration>>>,
    shared: Arc<Mutex<Value>>,
    thread: JoinHandle<()>,
}

impl Worker {
    /// Starts the pod's containers; `restarts` are the counts to start from (a static pod
    /// whose manifest came back).
    pub fn start(
        pod: PodInfo,
        label: String,
        rt: Arc<Runtime>,
        restarts: &HashMap<String, u32>,
        tick: Duration,
    ) -> Self {
        let stop = Arc::new(Mutex::new(None));
        let shared = Arc::new(Mutex::new(Value::Null));
        let containers = pod
            .containers
            .iter()
            .map(|spec| Container {
                restarts: restarts.get(&spec.name).copied().unwrap_or(0),
                spec: spec.clone(),
                instance: None,
                started_at: String::new(),
                state: json!({"waiting": {"reason": "ContainerCreating"}}),
                last_state: json!({}),
                next_start: Some(Instant::now()),
                exit: None,
                id: String::new(),
                image_id: String::new(),
            })
            .collect();
        let mut pod_run = PodRun {
            pod,
            label,
            rt,
            containers,
            start_time: crate::now(),
            transitions: HashMap::new(),
            phase: String::new(),
            shared: Arc::clone(&shared),
        };
        let stop_flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || pod_run.run(&stop_flag, tick));
        Self {
            stop,
            shared,
            thread,
        }
    }

    /// Asks the thread to kill the containers: SIGTERM, SIGKILL after `grace`.
    pub fn stop(&self, grace: Duration) {
        if let Ok(mut s) = self.stop.lock() {
            s.get_or_insert(grace);
        }
    }

    /// Whether the thread is done: every container stopped for good.
    pub fn finished(&self) -> bool {
        self.thread.is_finished()
    }

    pub fn wait(self) {
        let _ = self.thread.join();
    }

    /// The pod status the containers add up to; null until the first is ready.
    pub fn status(&self) -> Value {
        self.shared.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

struct PodRun {
    pod: PodInfo,
    /// ns/name, for the log.
    label: String,
    rt: Arc<Runtime>,
    containers: Vec<Container>,
    start_time: String,
    /// Each condition's last status and when it took it.
    transitions: HashMap<&'static str, (bool, String)>,
    phase: String,
    shared: Arc<Mutex<Value>>,
}

impl PodRun {
    fn run(&mut self, stop: &Mutex<Option<Duration>>, tick: Duration) {
        loop {
            if let Some(grace) = stop.lock().ok().and_then(|s| *s) {
                self.kill_all(grace);
                self.publish();
                return;
            }
            for i in 0..self.containers.len() {
                self.step(i);
            }
            self.publish();
            if self
                .containers
                .iter()
                .all(|c| c.instance.is_none() && c.next_start.is_none())
            {
                return;
            }
            std::thread::sleep(tick);
        }
    }

    fn step(&mut self, i: usize) {
        let c = &mut self.containers[i];
        if let Some(inst) = c.instance.as_mut() {
            if let Some(code) = inst.poll() {
                self.exited(i, code, false);
            }
        } else if c.next_start.is_some_and(|t| Instant::now() >= t) {
            self.start(i);
        }
    }

    fn start(&mut self, i: usize) {
        let c = &mut self.containers[i];
        let started_before = !c.id.is_empty();
        let attempt = c.restarts + u32::from(started_before);
        let mut spec = c.spec.clone();
        let pulled = if spec.pull_always {
            match crate::pull::pull(&spec.image, &self.pod.pull_auths) {
                Ok(pulled) => pulled,
                Err(message) => {
                    if c.state.pointer("/waiting/reason").and_then(Value::as_str)
                        != Some("ErrImagePull")
                    {
                        log!("pod {}: {message}", self.label);
                    }
                    c.state = json!({"waiting": {"reason": "ErrImagePull", "message": message}});
                    c.next_start = Some(Instant::now() + Duration::from_secs(5));
                    return;
                }
            }
        } else {
            None
        };
        // A pulled image is the test image: its default arguments are `--pause`.
        if pulled.is_some() && spec.command.is_none() && spec.args.is_empty() {
            spec.args = vec!["--pause".into()];
        }
        match self.rt.start(&self.pod, &spec, attempt) {
            Ok(inst) => {
                if started_before {
                    c.restarts += 1;
                    c.last_state = std::mem::take(&mut c.state);
                }
                c.id = inst.id();
                c.image_id = pulled.unwrap_or_else(|| inst.image_id());
                c.started_at = crate::now();
                c.state = json!({"running": {"startedAt": c.started_at}});
                c.next_start = None;
                log!(
                    "pod {}: started container {} as {} (restartCount {})",
                    self.label,
                    c.spec.name,
                    c.id,
                    c.restarts
                );
                c.instance = Some(inst);
            }
            Err((reason, message)) => {
                if c.state.pointer("/waiting/message").and_then(Value::as_str) != Some(&message) {
                    log!(
                        "pod {}: cannot start container {}: {reason}: {message}",
                        self.label,
                        c.spec.name
                    );
                }
                c.state = json!({"waiting": {"reason": reason, "message": message}});
                c.next_start = Some(Instant::now() + Duration::from_secs(2));
            }
        }
    }

    /// Records the exit, with the termination message, and decides on a restart.
    fn exited(&mut self, i: usize, code: i32, stopping: bool) {
        let c = &mut self.containers[i];
        let Some(mut inst) = c.instance.take() else {
            return;
        };
        let mut message = inst.termination_message();
        message.truncate(floor_char_boundary(&message, MESSAGE_LIMIT));
        if message.is_empty() && c.spec.fallback_to_logs && code != 0 {
            message = inst.log_tail();
        }
        inst.remove();
        c.exit = Some(code);
        c.state = json!({"terminated": {"exitCode": code,
            "reason": if code == 0 { "Completed" } else { "Error" },
            "message": message, "startedAt": c.started_at, "finishedAt": crate::now(), "containerID": c.id}});
        let again = !stopping
            && match self.pod.restart {
                Policy::Always => true,
                Policy::OnFailure => code != 0,
                Policy::Never => false,
            };
        c.next_start = again.then(|| Instant::now() + Duration::from_secs(1));
        log!(
            "pod {}: container {} exited with {code}{}",
            self.label,
            c.spec.name,
            if again { "; restarting in 1s" } else { "" }
        );
    }

    /// SIGTERM to every container, SIGKILL to those still running after `grace`.
    fn kill_all(&mut self, grace: Duration) {
        for c in &mut self.containers {
            c.next_start = None;
            if let Some(inst) = c.instance.as_mut() {
                inst.signal(false);
            }
        }
        let deadline = Instant::now() + grace;
        let mut killed = false;
        let give_up = deadline + Duration::from_secs(5);
        while self.containers.iter().any(|c| c.instance.is_some()) && Instant::now() < give_up {
            for i in 0..self.containers.len() {
                let code = self.containers[i].instance.as_mut().and_then(|x| x.poll());
                if let Some(code) = code {
                    self.exited(i, code, true);
                }
            }
            if !killed && Instant::now() >= deadline {
                for inst in self
                    .containers
                    .iter_mut()
                    .filter_map(|c| c.instance.as_mut())
                {
                    inst.signal(true);
                }
                killed = true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for c in &self.containers {
            if c.instance.is_some() {
                log!(
                    "pod {}: container {} would not die",
                    self.label,
                    c.spec.name
                );
            }
        }
    }

    fn publish(&mut self) {
        let status = self.status();
        if let Ok(mut s) = self.shared.lock() {
            *s = status;
        }
    }

    fn status(&mut self) -> Value {
        let done = self
            .containers
            .iter()
            .all(|c| c.instance.is_none() && c.next_start.is_none() && c.exit.is_some());
        let phase = if done {
            if self.containers.iter().all(|c| c.exit == Some(0)) {
                "Succeeded"
            } else {
                "Failed"
            }
        } else if self.containers.iter().any(|c| !c.id.is_empty()) {
            "Running"
        } else {
            "Pending"
        };
        if self.phase != phase {
            log!("pod {}: phase {phase}", self.label);
            self.phase = phase.to_string();
        }
        let ready = self.containers.iter().all(|c| c.instance.is_some());
        let not_ready_reason = if done {
            "PodCompleted"
        } else {
            "ContainersNotReady"
        };
        let mut conditions = Vec::new();
        for (kind, ok) in [
            ("PodScheduled", true),
            ("Initialized", true),
            ("ContainersReady", ready),
            ("Ready", ready),
        ] {
            let since = match self.transitions.get(kind) {
                Some((was, at)) if *was == ok => at.clone(),
                _ => {
                    let at = crate::now();
                    self.transitions.insert(kind, (ok, at.clone()));
                    at
                }
            };
            let mut cond = json!({"type": kind, "status": if ok { "True" } else { "False" }, "lastTransitionTime": since});
            if !ok {
                cond["reason"] = json!(not_ready_reason);
            }
            conditions.push(cond);
        }
        let statuses: Vec<Value> = self
            .containers
            .iter()
            .map(|c| {
                let running = c.instance.is_some();
                let mut s = json!({"name": c.spec.name, "image": c.spec.image, "imageID": c.image_id,
                    "ready": running, "started": running, "restartCount": c.restarts,
                    "state": c.state, "lastState": c.last_state});
                if !c.id.is_empty() {
                    s["containerID"] = json!(c.id);
                }
                s
            })
            .collect();
        let ip = json!([{"ip": "127.0.0.1"}]);
        json!({"phase": phase, "conditions": conditions, "hostIP": "127.0.0.1", "hostIPs": ip,
            "podIP": "127.0.0.1", "podIPs": ip, "startTime": self.start_time, "qosClass": "BestEffort",
            "containerStatuses": statuses})
    }
}

/// The largest char boundary at or below `at`.
pub fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}
