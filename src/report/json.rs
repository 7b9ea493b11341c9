//! `results.json`: the same facts as the JUnit file, with every check, for machines.

use serde::Serialize;

use super::RunInfo;
use super::facts::NodeFacts;
use crate::runner::{RunRecord, TestRecord};
use crate::suite::Verdict;

#[derive(Serialize)]
struct Counts {
    tests: usize,
    passed: usize,
    failed: usize,
    skipped: usize,
}

#[derive(Serialize)]
struct Results<'a> {
    tool: &'static str,
    #[serde(flatten)]
    info: &'a RunInfo,
    started: String,
    duration: f64,
    /// The harness's own peak resident set size so far, for sizing the container it runs in.
    peak_rss_kib: Option<u64>,
    /// The harness's own CPU time so far, user and system, all its threads (seconds; a kubelet
    /// or container it started is not counted): its overhead beside the run's duration.
    cpu_seconds: f64,
    counts: Counts,
    /// What the node is: kernel, distribution, runtime, kubelet, architecture.
    node: &'a NodeFacts,
    tests: &'a [TestRecord],
}

/// VmHWM of the harness's own process (its /proc, not the node's).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The whole file, pretty-printed, ending in a newline; the error names the file.
pub fn render(run: &RunRecord, info: &RunInfo, node: &NodeFacts) -> Result<String, String> {
    let results = Results {
        tool: "node-conformance",
        info,
        started: run.started.to_rfc3339(),
        duration: run.duration.as_secs_f64(),
        peak_rss_kib: peak_rss_kib(),
        cpu_seconds: {
            let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
            t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
        },
        counts: Counts {
            tests: run.records.len(),
            passed: run.count(Verdict::Passed),
            failed: run.count(Verdict::Failed),
            skipped: run.count(Verdict::Skipped),
        },
        node,
        tests: &run.records,
    };
    serde_json::to_string_pretty(&results)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| format!("cannot render {}: {e}", super::JSON_FILE))
}
