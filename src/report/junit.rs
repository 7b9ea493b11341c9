//! `junit_01.xml`, written with quick-junit: one testsuite in which every registered test is a
//! testcase, passed, failed or skipped with its reason.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::RunInfo;
use crate::runner::{RunRecord, TestRecord};
use crate::suite::{CheckStatus, Verdict};

/// The test cases of the tests FOCUS and SKIP left out, made on the side while the selected
/// ones run: they are final once selected, and most of a run's cases.
pub struct Prepared(Vec<Option<TestCase>>);

pub fn prepare(records: &[TestRecord]) -> Prepared {
    Prepared(
        records
            .iter()
            .map(|r| (!r.selected).then(|| case(r)))
            .collect(),
    )
}

pub fn render(
    run: &RunRecord,
    info: &RunInfo,
    prepared: Option<Prepared>,
) -> Result<String, String> {
    let mut prepared = prepared.map(|p| p.0).unwrap_or_default().into_iter();
    let mut suite = TestSuite::new("node-conformance");
    suite.set_timestamp(run.started.fixed_offset());
    suite.set_time(run.duration);
    suite
        .extra
        .insert("hostname".into(), info.hostname.as_str().into());
    for (k, v) in [
        ("version", &info.version),
        ("run-id", &info.run_id),
        ("rootfs", &info.rootfs),
        ("focus", &info.focus),
        ("skip", &info.skip),
        ("system-spec", &info.system_spec),
    ] {
        suite.add_property((k, v.as_str()));
    }
    for record in &run.records {
        match prepared.next().flatten() {
            Some(c) if !record.selected => suite.add_test_case(c),
            _ => suite.add_test_case(case(record)),
        };
    }
    let mut report = Report::new("node-conformance");
    report.set_timestamp(run.started.fixed_offset());
    report.set_time(run.duration);
    report.add_test_suite(suite);
    report
        .to_string()
        .map_err(|e| format!("cannot render {}: {e}", super::JUNIT_FILE))
}

/// One test case: passed, failed with its details, or skipped with the reason.
fn case(record: &TestRecord) -> TestCase {
    let o = &record.outcome;
    let mut status = match o.verdict {
        Verdict::Passed => TestCaseStatus::success(),
        Verdict::Failed => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_type("Failure");
            s.set_description(failure_details(record));
            s
        }
        Verdict::Skipped => TestCaseStatus::skipped(),
    };
    if let Some(m) = &o.message {
        status.set_message(m.as_str());
    }
    let mut case = TestCase::new(record.name.as_str(), status);
    case.set_classname(record.area.as_str());
    case.set_time(record.duration);
    let log = o.log();
    if !log.is_empty() {
        case.set_system_out(log);
    }
    case
}

/// The body of a `<failure>`: the message, then each failed check.
fn failure_details(record: &TestRecord) -> String {
    let o = &record.outcome;
    let mut out = o.message.clone().unwrap_or_default();
    for c in o.checks.iter().filter(|c| c.status == CheckStatus::Fail) {
        out.push_str(&format!("\n{}: {}", c.item, c.detail));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Outcome;
    use std::time::Duration;

    fn record(name: &str, selected: bool, outcome: Outcome) -> TestRecord {
        TestRecord {
            name: name.into(),
            area: "Area".into(),
            tags: Vec::new(),
            selected,
            duration: Duration::from_millis(3),
            outcome,
        }
    }

    #[test]
    fn prepared_cases_render_as_the_others_do() {
        let run = RunRecord {
            started: chrono::Utc::now(),
            duration: Duration::from_millis(9),
            records: vec![
                record(
                    "a \x1b[31mred\x1b[0m",
                    false,
                    Outcome::skipped("not selected: does not match FOCUS \"x\""),
                ),
                record("b", true, Outcome::failed("bad ]]> \x07")),
                record(
                    "c",
                    false,
                    Outcome::skipped("not selected: matches SKIP \"c\""),
                ),
                record("d", true, Outcome::skipped("no kubelet")),
            ],
        };
        let info = RunInfo {
            version: "v".into(),
            run_id: "r".into(),
            hostname: "h".into(),
            rootfs: "/".into(),
            focus: "x".into(),
            skip: String::new(),
            system_spec: "built-in".into(),
        };
        let plain = render(&run, &info, None).unwrap();
        let early = render(&run, &info, Some(prepare(&run.records))).unwrap();
        assert_eq!(plain, early);
        assert!(plain.contains("not selected: matches SKIP"));
    }
}
