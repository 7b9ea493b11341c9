//! `results.json`: the same facts as the JUnit file, with every check, for machines.

use serde::Serialize;

use super::RunInfo;
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
    counts: Counts,
    tests: &'a [TestRecord],
}

pub fn render(run: &RunRecord, info: &RunInfo) -> Result<String, String> {
    let results = Results {
        tool: "node-conformance",
        info,
        started: run.started.to_rfc3339(),
        duration: run.duration.as_secs_f64(),
        counts: Counts {
            tests: run.records.len(),
            passed: run.count(Verdict::Passed),
            failed: run.count(Verdict::Failed),
            skipped: run.count(Verdict::Skipped),
        },
        tests: &run.records,
    };
    serde_json::to_string_pretty(&results)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| format!("cannot render {}: {e}", super::JSON_FILE))
}
