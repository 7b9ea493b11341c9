//! Multiple zones: the labels topology spread constraints and zonal volumes rely on.

use std::path::PathBuf;

use super::{Context, Outcome, Recorder, Test};
use crate::node::apiserver::{self, Failure};

pub fn tests() -> Vec<Test> {
    vec![Test {
        area: "Zones",
        behaviour: "the Node carries hostname, os, arch and topology labels",
        tags: &["NodeBestPractice"],
        needs: &[],
        run: node_labels,
        read_ahead: None,
        budget: None,
    }]
}

const REQUIRED: &[&str] = &[
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "kubernetes.io/arch",
];
const TOPOLOGY: &[(&str, &str)] = &[
    (
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/zone",
    ),
    (
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/region",
    ),
];

fn node_labels(ctx: &Context) -> Outcome {
    let path: Option<PathBuf> = ctx
        .node
        .kubelet()
        .ok()
        .and_then(|k| k.kubeconfig_path.clone());
    let Some(path) = path else {
        return Outcome::skipped(
            "no kubeconfig to reach an API server with (--kubeconfig names one)",
        );
    };
    let mut r = Recorder::new();
    let read = ctx.node.kubeconfig(&path);
    let k = match read.as_ref() {
        Ok(Some(k)) => k,
        Ok(None) => return Outcome::skipped(format!("no kubeconfig at {}", path.display())),
        Err(e) => return r.fail_now(e.clone()),
    };
    let name = ctx.node.name().to_string();
    let node = match apiserver::get_node(k, &name) {
        Ok(n) => n,
        Err(Failure::Unreachable(e)) => {
            return Outcome::skipped(format!("no API server answers ({e})"));
        }
        Err(Failure::Unsupported(e)) => {
            return Outcome::skipped(format!("{e} ({})", path.display()));
        }
        Err(Failure::Refused(e)) => {
            return r.fail_now(format!("the API server did not return Node {name}: {e}"));
        }
    };
    r.note(format!(
        "Node {name} from {} ({})",
        k.server,
        path.display()
    ));
    let labels = node
        .pointer("/metadata/labels")
        .and_then(|l| l.as_object())
        .cloned()
        .unwrap_or_default();
    let value = |k: &str| labels.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let mut missing = Vec::new();
    for key in REQUIRED {
        match value(key) {
            Some(v) => r.ok(*key, v),
            None => {
                missing.push(*key);
                r.fail(*key, "absent");
            }
        }
    }
    for (key, legacy) in TOPOLOGY {
        match (value(key), value(legacy)) {
            (Some(v), _) => r.ok(*key, v),
            (None, Some(v)) => r.warn(*key, format!("absent; only the deprecated {legacy}={v}")),
            (None, None) => r.warn(
                *key,
                "absent: topology spread and zonal volumes cannot place pods by zone",
            ),
        }
    }
    r.finish(|_| {
        format!(
            "Node {name} lacks {}; the kubelet sets these itself: check that it registered this node \
             and that nothing removed them",
            missing.join(", ")
        )
    })
}
