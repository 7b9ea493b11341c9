//! Static pod manifests: YAML (one or more documents) or JSON, as the kubelet reads them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_conformance::node::staticpods;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(pods) = staticpods::parse(text) {
        for pod in &pods {
            let _ = staticpods::is_control_plane(pod);
        }
    }
});
