//! The small text files of the host read as facts: os-release, /proc/swaps, the kernel
//! release, a process's /proc/<pid>/stat.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_conformance::node::{host, kernel, kubelet};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = host::pretty_name(&text);
    let _ = host::parse_swaps(&text);
    let _ = kernel::major_minor(&text);
    let _ = kubelet::start_ticks(&text);
});
