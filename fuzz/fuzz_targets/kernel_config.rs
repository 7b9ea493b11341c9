//! A kernel config as the node holds it: plain text or gzip (by content), then its tristates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_conformance::node::kernel;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = kernel::decode(data.to_vec()) else {
        return;
    };
    let all = kernel::parse_config(&text, |_| true);
    let some = kernel::parse_config(&text, |n| n.ends_with('A'));
    // Keeping fewer options can only drop entries, never add or change them.
    for (name, state) in &some {
        assert_eq!(all.get(name), Some(state));
    }
});
