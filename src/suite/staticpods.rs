//! The node's static pods against the Pod Security Standards and the seed's limits.

use k8s_openapi::api::core::v1::Pod;

use super::{Context, Outcome, Recorder, Test, join_items, join_listed};
use crate::node::staticpods::{Manifest, component, is_control_plane};
use crate::podsecurity::{self, Level};

const AREA: &str = "Static Pods";
const TAGS: &[&str] = &["NodeBestPractice"];

pub fn tests() -> Vec<Test> {
    let t = |behaviour, run| Test::plain(AREA, TAGS, behaviour, run);
    vec![
        t("satisfy the baseline Pod Security Standard", pod_security),
        t("declare CPU and memory limits", limits),
        t(
            "kube-apiserver keeps Events in a dedicated etcd",
            events_etcd,
        ),
    ]
}

/// The manifests, or the outcome for a node without a static pod directory.
fn manifests(ctx: &Context) -> Result<&[Manifest], Outcome> {
    let (dir, read) = ctx.node.static_pods();
    read.map_err(|e| {
        if e.is_not_found() {
            Outcome::skipped(format!(
                "no static pod directory at {} (set it with --pod-manifest-path)",
                dir.display()
            ))
        } else {
            Recorder::new().fail_now(format!("cannot read the static pod directory: {e}"))
        }
    })
}

fn pod_name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("(unnamed)")
}

/// Each pod with the file it came from; malformed files recorded as failures.
fn pods<'a>(
    manifests: &'a [Manifest],
    r: &mut Recorder,
    broken: &mut Vec<String>,
) -> Vec<(String, &'a Pod)> {
    let mut out = Vec::new();
    for m in manifests {
        let file = m.file.display().to_string();
        match &m.pods {
            Ok(pods) => out.extend(pods.iter().map(|p| (file.clone(), p))),
            Err(e) => {
                let why = if e.starts_with("not read") {
                    e.clone()
                } else {
                    format!("malformed, so the kubelet will not run it: {e}")
                };
                broken.push(format!("{file}: {why}"));
                r.fail(&file, why);
            }
        }
    }
    out
}

fn pod_security(ctx: &Context) -> Outcome {
    let manifests = match manifests(ctx) {
        Ok(m) => m,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    r.note(format!(
        "static pod directory {}",
        ctx.node.static_pods().0.display()
    ));
    // The kubelet admits static pods with no namespace labels, so the newest policy is the
    // one a cluster's `latest` would apply to them once mirrored.
    r.note(format!(
        "evaluated against Pod Security Standards policy version latest (v1.{}, the newest this build knows)",
        podsecurity::NEWEST
    ));
    let mut broken = Vec::new();
    let mut offenders = Vec::new();
    for (file, pod) in pods(manifests, &mut r, &mut broken) {
        let name = pod_name(pod);
        let violations = podsecurity::evaluate(pod);
        let level = podsecurity::highest_level(&violations);
        let baseline = podsecurity::violations_at(&violations, Level::Baseline);
        let item = format!("{name} ({file})");
        if baseline.is_empty() {
            r.ok(&item, format!("highest level: {level}"));
        } else if is_control_plane(pod) {
            r.info(
                &item,
                format!("highest level: {level}; a control-plane component, privileged by design"),
            );
        } else {
            offenders.push(format!(
                "{name} ({})",
                join_items(&baseline.iter().map(|v| v.path.clone()).collect::<Vec<_>>())
            ));
            r.fail(&item, format!("highest level: {level}, below baseline"));
        }
        for v in &violations {
            r.info(
                format!("{name} {}", v.path),
                format!("{}: {}", v.control, v.detail),
            );
        }
    }
    r.finish(|_| {
        let mut parts = Vec::new();
        if !offenders.is_empty() {
            parts.push(format!(
                "static pods below the baseline Pod Security Standard (policy v1.{}): {}; drop those settings, or run \
                 the workload as a DaemonSet in a namespace labelled for the privilege it needs",
                podsecurity::NEWEST,
                join_listed(&offenders, "; ")
            ));
        }
        if !broken.is_empty() {
            parts.push(format!("manifests not evaluated: {}", join_listed(&broken, "; ")));
        }
        parts.join("; ")
    })
}

fn limits(ctx: &Context) -> Outcome {
    let manifests = match manifests(ctx) {
        Ok(m) => m,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let mut broken = Vec::new();
    let mut missing = Vec::new();
    for (file, pod) in pods(manifests, &mut r, &mut broken) {
        let name = pod_name(pod);
        if is_control_plane(pod) {
            r.info(name, "control-plane component: not an add-on");
            continue;
        }
        let containers = pod
            .spec
            .as_ref()
            .map(|s| s.containers.as_slice())
            .unwrap_or_default();
        for (i, c) in containers.iter().enumerate() {
            let limits = c.resources.as_ref().and_then(|res| res.limits.as_ref());
            let lacking: Vec<&str> = ["cpu", "memory"]
                .into_iter()
                .filter(|k| !limits.is_some_and(|l| l.contains_key(*k)))
                .collect();
            let item = format!("{name} container {}", c.name);
            if lacking.is_empty() {
                let l = limits.map(|l| {
                    l.iter()
                        .map(|(k, v)| format!("{k}={}", v.0))
                        .collect::<Vec<_>>()
                        .join(", ")
                });
                r.ok(item, format!("limits {}", l.unwrap_or_default()));
            } else {
                let path = format!("spec.containers[{i}].resources.limits");
                missing.push(format!(
                    "{file}: {name} {path} lacks {}",
                    lacking.join(" and ")
                ));
                r.fail(item, format!("{path} lacks {}", lacking.join(" and ")));
            }
        }
    }
    r.finish(|_| {
        let mut msg = String::new();
        if !missing.is_empty() {
            msg = format!(
                "add-on static pods without CPU and memory limits: {}; declare them (a log collector, \
                 for example: limits: {{cpu: 100m, memory: 200Mi}}) so a busy node cannot be starved",
                join_listed(&missing, "; ")
            );
        }
        if !broken.is_empty() {
            msg.push_str(&format!("{}manifests not evaluated: {}", if msg.is_empty() { "" } else { "; " }, join_listed(&broken, "; ")));
        }
        msg
    })
}

fn events_etcd(ctx: &Context) -> Outcome {
    let manifests = match manifests(ctx) {
        Ok(m) => m,
        Err(o) => return o,
    };
    let apiserver = manifests
        .iter()
        .filter_map(|m| m.pods.as_ref().ok().map(|p| (m, p)))
        .find_map(|(m, pods)| {
            pods.iter()
                .find(|p| component(p) == Some("kube-apiserver"))
                .map(|p| (m, p))
        });
    let Some((manifest, pod)) = apiserver else {
        return Outcome::skipped("no kube-apiserver static pod: not a control-plane node");
    };
    let mut r = Recorder::new();
    let args: Vec<&String> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.command.iter().flatten().chain(c.args.iter().flatten()))
        .collect();
    let overrides = args
        .iter()
        .find_map(|a| a.strip_prefix("--etcd-servers-overrides="));
    let file = manifest.file.display();
    match overrides {
        Some(o) if o.split(',').any(|g| g.starts_with("/events#")) => {
            r.ok("--etcd-servers-overrides", format!("{o} ({file}): Events go to their own etcd"))
        }
        Some(o) => r.info("--etcd-servers-overrides", format!("{o} ({file}): no override for /events")),
        None => r.info(
            "--etcd-servers-overrides",
            format!("not set ({file}): Events share the main etcd; large clusters give them their own with --etcd-servers-overrides=/events#<urls>"),
        ),
    }
    r.finish(|_| String::new())
}
