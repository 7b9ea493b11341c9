//! Pod Security evaluation of any pod a client may send (JSON, as the API receives it) or a
//! node may hold (a static pod manifest), at every level and every policy version.
#![no_main]

use k8s_openapi::api::core::v1::Pod;
use libfuzzer_sys::fuzz_target;
use node_conformance::node::staticpods;
use node_conformance::podsecurity::{self, Level, Version};

fuzz_target!(|data: &[u8]| {
    let pods = match serde_json::from_slice::<Pod>(data) {
        Ok(pod) => vec![pod],
        Err(_) => match std::str::from_utf8(data).map(staticpods::parse) {
            Ok(Ok(pods)) => pods,
            _ => return,
        },
    };
    let versions = (0..=podsecurity::NEWEST + 1)
        .map(Version::V1)
        .chain([Version::Latest, Version::V1(u32::MAX)]);
    for pod in &pods {
        for version in versions.clone() {
            for level in [Level::Privileged, Level::Baseline, Level::Restricted] {
                let e = podsecurity::evaluate_at(pod, level, version);
                if !e.allowed() {
                    let _ = e.forbidden_detail();
                }
                let _ = e.policy();
            }
            let violations = podsecurity::evaluate_version(pod, version);
            let _ = podsecurity::highest_level(&violations);
            let _ = podsecurity::violations_at(&violations, Level::Baseline);
        }
        // A pod's labels stand in for a namespace's: the same map type, any keys and values.
        let _ = podsecurity::namespace_policy(pod.metadata.labels.as_ref());
    }
});
