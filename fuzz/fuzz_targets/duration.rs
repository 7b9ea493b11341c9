//! Go durations, as kubelet flags and KubeletConfiguration fields hold them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_conformance::node::duration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = duration::parse(text) {
        // What Go's Duration.String writes, Go's ParseDuration reads back unchanged.
        let written = d.to_string();
        assert_eq!(
            duration::parse(&written),
            Ok(d),
            "{text:?} written as {written:?}"
        );
    }
});
