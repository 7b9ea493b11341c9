//! test/e2e/common/node/pod_admission.go (v1.30.2): "PodOSRejection", a pod whose `spec.os`
//! is not the node's is refused by the kubelet's admission (pkg/kubelet/lifecycle
//! predicate.go, `PodOSNotSupported`). The kubelet checks `spec.os` from 1.24 on by default
//! (KEP-2802, IdentifyPodOS beta): an older kubelet skips the test.

use std::time::Duration;

use k8s_openapi::api::core::v1::{PodOS, PodSpec};

use crate::suite::common::kit::{container, failed_for, typed};
use crate::suite::common::version::require_kubelet;
use crate::suite::functional::{ApiPod, Waits, removal, session};
use crate::suite::{Context, Outcome, Recorder, Service, Test, describe};

/// Upstream's `f.Timeouts.PodStartShort`.
const POD_START_SHORT: Duration = Duration::from_secs(120);

pub fn tests() -> Vec<Test> {
    vec![Test {
        area: "PodOSRejection [NodeConformance]",
        behaviour: "Kubelet should reject pod when the node OS doesn't match pod's OS",
        tags: &[],
        needs: &[Service::ControlPlane],
        run: rejects_other_os,
        read_ahead: None,
        budget: Some(|w: &Waits| w.node_ready + POD_START_SHORT + removal(w)),
    }]
}

fn rejects_other_os(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(skip) = require_kubelet(&s, "1.24", "spec.os, IdentifyPodOS") {
        return skip;
    }
    let mut r = Recorder::new();
    let pod = container(&s, "wrong-pod-os", &["--pause"]).and_then(|c| {
        ApiPod::create_spec(
            &s,
            "wrong-pod-os",
            PodSpec {
                os: Some(PodOS {
                    name: "windows".into(),
                }),
                containers: vec![c],
                ..Default::default()
            },
        )
    });
    let pod = match pod {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    match pod.wait_within("to be rejected", POD_START_SHORT, |p| {
        failed_for(&typed(p)?, "PodOSNotSupported").map(|_| ())
    }) {
        Ok(p) => match typed(&p).and_then(|p| failed_for(&p, "PodOSNotSupported")) {
            Ok(d) => r.ok("rejected", d),
            Err(e) => r.fail("rejected", e),
        },
        Err(e) => r.fail("rejected", e),
    }
    r.finish(describe)
}
