//! A dead run's `state.json`, as a later run reads it: whatever the bytes, reading and
//! checking them never panics, and what is believed has only the forms this harness writes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_conformance::runtime::kubelet::KERNEL_TUNABLES;
use node_conformance::runtime::state::{LOG_DIRS, RunState};

fuzz_target!(|data: &[u8]| {
    let Ok(state) = serde_json::from_slice::<RunState>(data) else {
        return;
    };
    let id = state.run_id.clone();
    if state.validate(&id).is_ok() {
        assert_eq!(state.namespace, format!("node-conformance-{id}"));
        for (name, value) in &state.tunables {
            assert!(KERNEL_TUNABLES.contains(&name.as_str()), "{name:?}");
            assert!(value.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit()));
        }
        for dir in &state.new_log_dirs {
            assert!(LOG_DIRS.iter().any(|d| std::path::Path::new(d) == dir));
        }
        for path in state.endpoint.iter().chain(state.kubelet.as_ref().map(|k| &k.binary)) {
            assert!(path.is_absolute());
            assert!(!path.components().any(|c| c == std::path::Component::ParentDir));
        }
    }
});
