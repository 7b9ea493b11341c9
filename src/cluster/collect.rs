//! `collect`: the results of a DaemonSet deployment, read back through the API server.
//!
//! Each pod prints its results into its log when its run ends ([`super::logs`]); the API
//! server's pod log endpoint (`GET /api/v1/namespaces/NS/pods/POD/log`, which it proxies to
//! the pod's kubelet) hands them back. The pods need no credentials and no write access to the
//! API; the reader needs `list` on pods and daemonsets and `get` on `pods/log` in the
//! namespace.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{APP, NAME_LABEL, RUN_LABEL, logs};
use crate::node::apiserver::{self, Failure};
use crate::node::kubeconfig::{self, Kubeconfig};
use crate::node::rootfs::{FileKind, RootFs};

/// The files a block may carry, and the only names written under a node's directory.
pub const FILES: [&str; 2] = [crate::report::JSON_FILE, crate::report::JUNIT_FILE];

/// Where the service account's credentials are in a pod (client-go's `rest.InClusterConfig`).
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// What to collect and where to put it.
#[derive(Debug, Clone)]
pub struct Options {
    pub namespace: String,
    /// Only the pods of this deployment (`node-conformance.run=<id>`); every one otherwise.
    pub run_id: Option<String>,
    pub out: PathBuf,
    /// How long to wait for pods whose run has not ended; zero looks once.
    pub timeout: Duration,
}

/// One node's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeState {
    /// Its results are in `<out>/<node>/`; the run's exit code and a count summary.
    Collected { exit: i32, summary: String },
    /// Its run has not ended (or its log is not readable yet): why.
    NotDone(String),
    /// It will not end with results: why (the run's error, the pod's failure).
    Failed(String),
}

/// Every node's outcome, by node name, and pods the DaemonSet has yet to create.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub nodes: Vec<(String, NodeState)>,
    pub missing_pods: usize,
}

impl Summary {
    pub fn all_collected(&self) -> bool {
        self.missing_pods == 0
            && !self.nodes.is_empty()
            && self
                .nodes
                .iter()
                .all(|(_, s)| matches!(s, NodeState::Collected { .. }))
    }
}

/// The kubeconfig as kubectl finds it: `explicit` (`--kubeconfig`, else `KUBECONFIG`: the
/// first existing file of a `:`-separated list, where client-go would merge them), else
/// `~/.kube/config`, else the pod's service account (`KUBERNETES_SERVICE_HOST` and `_PORT`,
/// the token and CA under `/var/run/secrets/kubernetes.io/serviceaccount`). Files named in a
/// kubeconfig are read as client-go reads them (`node::kubeconfig`).
///
/// Errors: no kubeconfig anywhere, or one that does not parse, named with its path.
pub fn kubeconfig(explicit: Option<&str>) -> Result<Kubeconfig, String> {
    let root = RootFs::open("/").map_err(|e| format!("root fs /: {e}"))?;
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let candidates: Vec<PathBuf> = match explicit {
        Some(list) => list
            .split(':')
            .filter(|p| !p.is_empty())
            .map(|p| cwd.join(p))
            .collect(),
        None => std::env::var_os("HOME")
            .map(|h| vec![Path::new(&h).join(".kube/config")])
            .unwrap_or_default(),
    };
    for path in &candidates {
        if let Some(k) = kubeconfig::read(&root, path)? {
            return Ok(k);
        }
    }
    if explicit.is_some() {
        return Err(format!(
            "no kubeconfig at {}",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    in_cluster(&root).ok_or_else(|| {
        "no kubeconfig: give --kubeconfig or KUBECONFIG, or write ~/.kube/config, or run in a pod with a service account".to_string()
    })
}

fn in_cluster(root: &RootFs) -> Option<Kubeconfig> {
    let host = std::env::var("KUBERNETES_SERVICE_HOST").ok()?;
    let port = std::env::var("KUBERNETES_SERVICE_PORT").ok()?;
    let dir = Path::new(SERVICE_ACCOUNT_DIR);
    // client-go joins them as net.JoinHostPort does: an IPv6 address in brackets.
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let token = root
        .read_to_string(dir.join("token"), FileKind::Pki)
        .map(|t| t.trim().to_string())
        .map_err(|e| format!("{SERVICE_ACCOUNT_DIR}/token: {e}"));
    let ca = root
        .read_shared(dir.join("ca.crt"), FileKind::Pki)
        .map(|b| kubeconfig::Pem {
            bytes: b.to_vec(),
            from: format!("{SERVICE_ACCOUNT_DIR}/ca.crt"),
        })
        .map_err(|e| format!("{SERVICE_ACCOUNT_DIR}/ca.crt: {e}"));
    Some(Kubeconfig {
        server: format!("https://{host}:{port}"),
        ca: Some(ca),
        client_cert: None,
        client_key: None,
        token: Some(token),
        unsupported_auth: None,
        user: "service account".into(),
        insecure: false,
    })
}

fn failure(f: Failure) -> String {
    match f {
        Failure::Unreachable(e) | Failure::Refused(e) | Failure::Unsupported(e) => e,
    }
}

/// Pod logs can be long (a console line per test); results are a fraction of it.
const LOG_LIMIT: u64 = 128 * 1024 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How often pods whose run has not ended are looked at again.
const POLL: Duration = Duration::from_secs(5);

fn get_json(k: &Kubeconfig, path: &str) -> Result<Value, String> {
    let body = apiserver::get(k, path, REQUEST_TIMEOUT, 64 << 20).map_err(failure)?;
    serde_json::from_str(&body).map_err(|e| format!("{path}: not JSON: {e}"))
}

/// A name usable as one directory: a node name is a DNS subdomain, but the API's answer is
/// not trusted to be one.
fn safe_dir_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Why a pod without results will not get there, or `None` while it may.
fn pod_failure(pod: &Value) -> Option<String> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let status = &pod["status"];
    if status["phase"] == "Failed" {
        return Some(format!(
            "pod {name} failed: {} {}",
            status["reason"].as_str().unwrap_or_default(),
            status["message"].as_str().unwrap_or_default()
        ));
    }
    let container = status["containerStatuses"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == APP))?;
    let waiting = &container["state"]["waiting"];
    let reason = waiting["reason"].as_str()?;
    // The waiting reasons the kubelet gives a container that cannot start by itself.
    const STUCK: [&str; 7] = [
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    ];
    STUCK.contains(&reason).then(|| {
        format!(
            "pod {name}: {reason}: {}",
            waiting["message"].as_str().unwrap_or_default()
        )
    })
}

fn pod_progress(pod: &Value) -> String {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let phase = pod["status"]["phase"].as_str().unwrap_or("Unknown");
    let waiting = pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|c| c.first())
        .and_then(|c| c["state"]["waiting"]["reason"].as_str());
    match waiting {
        Some(reason) => format!("pod {name} {phase} ({reason})"),
        None => format!("pod {name} {phase}, its run has not ended"),
    }
}

fn counts(results_json: &[u8]) -> String {
    let v: Value = serde_json::from_slice(results_json).unwrap_or(Value::Null);
    let c = &v["counts"];
    format!(
        "{} tests: {} passed, {} failed, {} skipped",
        c["tests"], c["passed"], c["failed"], c["skipped"]
    )
}

fn write_node(out: &Path, node: &str, block: &logs::Block) -> Result<(), String> {
    let dir = out.join(node);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, bytes) in &block.files {
        if !FILES.contains(&name.as_str()) {
            continue;
        }
        let path = dir.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// One look at the pod of each node.
fn look(
    k: &Kubeconfig,
    o: &Options,
    done: &mut std::collections::BTreeMap<String, NodeState>,
) -> Result<Summary, String> {
    let ns = &o.namespace;
    let mut selector = format!("{NAME_LABEL}={APP}");
    if let Some(id) = &o.run_id {
        selector.push_str(&format!(",{RUN_LABEL}={id}"));
    }
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("labelSelector", &selector)
        .finish();
    let list = get_json(k, &format!("/api/v1/namespaces/{ns}/pods?{query}"))?;
    let mut pods: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
    // A node with pods of several deployments: the newest one counts.
    pods.sort_by(|a, b| {
        a["metadata"]["creationTimestamp"]
            .as_str()
            .cmp(&b["metadata"]["creationTimestamp"].as_str())
    });
    let mut by_node = std::collections::BTreeMap::new();
    for pod in pods {
        let node = pod["spec"]["nodeName"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| {
                format!(
                    "(unscheduled pod {})",
                    pod["metadata"]["name"].as_str().unwrap_or_default()
                )
            });
        by_node.insert(node, pod);
    }
    let desired = get_json(
        k,
        &format!("/apis/apps/v1/namespaces/{ns}/daemonsets/{APP}"),
    )
    .ok()
    .and_then(|d| d["status"]["desiredNumberScheduled"].as_u64())
    .unwrap_or(0);
    let mut summary = Summary {
        missing_pods: usize::try_from(desired)
            .unwrap_or(usize::MAX)
            .saturating_sub(by_node.len()),
        ..Summary::default()
    };
    for (node, pod) in by_node {
        if let Some(state) = done.get(&node) {
            summary.nodes.push((node, state.clone()));
            continue;
        }
        let state = node_state(k, o, &node, &pod);
        if !matches!(state, NodeState::NotDone(_)) {
            done.insert(node.clone(), state.clone());
        }
        summary.nodes.push((node, state));
    }
    Ok(summary)
}

fn node_state(k: &Kubeconfig, o: &Options, node: &str, pod: &Value) -> NodeState {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    if pod["spec"]["nodeName"].as_str().is_none() {
        return NodeState::NotDone(pod_progress(pod));
    }
    let path = format!(
        "/api/v1/namespaces/{}/pods/{name}/log?container={APP}",
        o.namespace
    );
    let log = match apiserver::get(k, &path, REQUEST_TIMEOUT, LOG_LIMIT) {
        Ok(log) => log,
        Err(e) => {
            return match pod_failure(pod) {
                Some(why) => NodeState::Failed(why),
                None => {
                    NodeState::NotDone(format!("{}; its log: {}", pod_progress(pod), failure(e)))
                }
            };
        }
    };
    match logs::decode(&log) {
        Some(Ok(block)) if block.files.is_empty() => NodeState::Failed(format!(
            "the run ended with exit code {} and no results: {}",
            block.exit,
            block.error.as_deref().unwrap_or("no reason given")
        )),
        Some(Ok(block)) => {
            if !safe_dir_name(node) {
                return NodeState::Failed(format!("node name {node:?} cannot be a directory name"));
            }
            match write_node(&o.out, node, &block) {
                Ok(()) => NodeState::Collected {
                    exit: block.exit,
                    summary: block
                        .files
                        .iter()
                        .find(|(n, _)| n == crate::report::JSON_FILE)
                        .map_or_else(|| "no results.json".into(), |(_, b)| counts(b)),
                },
                Err(e) => NodeState::Failed(e),
            }
        }
        Some(Err(e)) => NodeState::Failed(format!("the results in pod {name}'s log: {e}")),
        None => match pod_failure(pod) {
            Some(why) => NodeState::Failed(why),
            None => NodeState::NotDone(pod_progress(pod)),
        },
    }
}

/// Collects every node's results into `<out>/<node>/` (results.json, junit_01.xml), looking
/// again every 5 s while some run has not ended, for at most `timeout`. `say` gets a line
/// whenever a node's state is first known.
///
/// Errors: the API server does not answer or refuses the pod list (the reason, with the URL).
pub fn collect(k: &Kubeconfig, o: &Options, say: &dyn Fn(&str)) -> Result<Summary, String> {
    let deadline = Instant::now() + o.timeout;
    let mut done = std::collections::BTreeMap::new();
    let mut told = std::collections::BTreeSet::new();
    loop {
        let summary = look(k, o, &mut done)?;
        for (node, state) in &summary.nodes {
            if !matches!(state, NodeState::NotDone(_)) && told.insert(node.clone()) {
                say(&line(node, state));
            }
        }
        let pending = summary
            .nodes
            .iter()
            .any(|(_, s)| matches!(s, NodeState::NotDone(_)))
            || summary.missing_pods > 0
            || summary.nodes.is_empty();
        if !pending || Instant::now() + POLL > deadline {
            return Ok(summary);
        }
        std::thread::sleep(POLL);
    }
}

/// A node's state as one line of the report.
pub fn line(node: &str, state: &NodeState) -> String {
    match state {
        NodeState::Collected { exit, summary } => {
            let verdict = if *exit == 0 { "passed" } else { "failed" };
            format!("{node}: collected, {verdict} ({summary})")
        }
        NodeState::NotDone(why) => format!("{node}: not done: {why}"),
        NodeState::Failed(why) => format!("{node}: failed: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stuck_pods_fail_and_starting_ones_wait() {
        let pod = |waiting: Value| {
            json!({"metadata": {"name": "p"}, "status": {"phase": "Pending",
                "containerStatuses": [{"name": APP, "state": {"waiting": waiting}}]}})
        };
        assert_eq!(
            pod_failure(&pod(
                json!({"reason": "ImagePullBackOff", "message": "no such image"})
            )),
            Some("pod p: ImagePullBackOff: no such image".into())
        );
        let starting = pod(json!({"reason": "ContainerCreating"}));
        assert_eq!(pod_failure(&starting), None);
        assert_eq!(pod_progress(&starting), "pod p Pending (ContainerCreating)");
        let failed = json!({"metadata": {"name": "p"}, "status": {"phase": "Failed", "reason": "Evicted", "message": "low memory"}});
        assert_eq!(
            pod_failure(&failed),
            Some("pod p failed: Evicted low memory".into())
        );
    }

    #[test]
    fn only_plain_names_become_directories() {
        for ok in ["node-1", "ip-10-0-0-1.ec2.internal"] {
            assert!(safe_dir_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b"] {
            assert!(!safe_dir_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_summary_is_collected_only_when_every_node_is() {
        let collected = NodeState::Collected {
            exit: 0,
            summary: "1 tests".into(),
        };
        let mut s = Summary {
            nodes: vec![("a".into(), collected.clone())],
            missing_pods: 0,
        };
        assert!(s.all_collected());
        s.missing_pods = 1;
        assert!(!s.all_collected());
        s.missing_pods = 0;
        s.nodes.push(("b".into(), NodeState::NotDone("x".into())));
        assert!(!s.all_collected());
        assert!(!Summary::default().all_collected());
        assert_eq!(line("a", &collected), "a: collected, passed (1 tests)");
    }
}
