//! `fleet.json`: per node its counts and facts, per test the nodes that failed it with their
//! messages, and the inputs left out.

use std::io::{self, Write};

use serde::Serialize;

use super::{Counts, Fleet, Verdict};
use crate::report::facts::NodeFacts;

#[derive(Serialize)]
struct Document<'a> {
    tool: &'static str,
    kind: &'static str,
    version: String,
    generated: String,
    counts: Totals,
    skipped_inputs: Vec<SkippedInput<'a>>,
    nodes: Vec<Node<'a>>,
    tests: Vec<Test<'a>>,
}

#[derive(Serialize)]
struct Totals {
    nodes: usize,
    nodes_failed: usize,
    inputs_skipped: usize,
}

#[derive(Serialize)]
struct SkippedInput<'a> {
    path: String,
    reason: &'a str,
}

#[derive(Serialize)]
struct Node<'a> {
    hostname: &'a str,
    results: String,
    run_id: &'a str,
    version: &'a str,
    started: &'a str,
    duration: f64,
    counts: Counts,
    #[serde(flatten)]
    facts: &'a NodeFacts,
}

#[derive(Serialize)]
struct Test<'a> {
    name: &'a str,
    area: &'a str,
    /// How many nodes passed, failed and skipped it.
    passed: usize,
    failed: usize,
    skipped: usize,
    failures: Vec<Failure<'a>>,
}

#[derive(Serialize)]
struct Failure<'a> {
    node: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    checks: &'a str,
}

/// Writes the document, pretty-printed, to `w`. Errors are `w`'s.
pub fn write(fleet: &Fleet, w: &mut impl Write) -> io::Result<()> {
    let mut tests: Vec<Test<'_>> = fleet
        .tests
        .iter()
        .map(|t| Test {
            name: &t.name,
            area: &t.area,
            passed: 0,
            failed: 0,
            skipped: 0,
            failures: Vec::new(),
        })
        .collect();
    for node in &fleet.nodes {
        for case in &node.cases {
            let t = &mut tests[case.test as usize];
            match case.verdict {
                Verdict::Passed => t.passed += 1,
                Verdict::Skipped => t.skipped += 1,
                Verdict::Failed => {
                    t.failed += 1;
                    t.failures.push(Failure {
                        node: &node.hostname,
                        message: fleet.strings.get(case.message),
                        checks: fleet.strings.get(case.checks),
                    });
                }
            }
        }
    }
    let doc = Document {
        tool: "node-conformance",
        kind: "fleet",
        version: crate::version(),
        generated: chrono::Utc::now().to_rfc3339(),
        counts: Totals {
            nodes: fleet.nodes.len(),
            nodes_failed: fleet.nodes_failed(),
            inputs_skipped: fleet.skipped.len(),
        },
        skipped_inputs: fleet
            .skipped
            .iter()
            .map(|s| SkippedInput {
                path: s.path.display().to_string(),
                reason: &s.reason,
            })
            .collect(),
        nodes: fleet
            .nodes
            .iter()
            .map(|n| Node {
                hostname: &n.hostname,
                results: n.source.display().to_string(),
                run_id: &n.run_id,
                version: &n.version,
                started: &n.started,
                duration: n.duration,
                counts: n.counts,
                facts: &n.facts,
            })
            .collect(),
        tests,
    };
    serde_json::to_writer_pretty(&mut *w, &doc).map_err(io::Error::other)?;
    w.write_all(b"\n")
}
