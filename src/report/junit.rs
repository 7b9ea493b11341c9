//! `junit_01.xml`, written with quick-junit: one testsuite in which every registered test is a
//! testcase, passed, failed or skipped with its reason.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::RunInfo;
use crate::runner::RunRecord;
use crate::suite::{CheckStatus, Verdict};

pub fn render(run: &RunRecord, info: &RunInfo) -> Result<String, String> {
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
        suite.add_test_case(case);
    }
    let mut report = Report::new("node-conformance");
    report.set_timestamp(run.started.fixed_offset());
    report.set_time(run.duration);
    report.add_test_suite(suite);
    report
        .to_string()
        .map_err(|e| format!("cannot render {}: {e}", super::JUNIT_FILE))
}

/// The body of a `<failure>`: the message, then each failed check.
fn failure_details(record: &crate::runner::TestRecord) -> String {
    let o = &record.outcome;
    let mut out = o.message.clone().unwrap_or_default();
    for c in o.checks.iter().filter(|c| c.status == CheckStatus::Fail) {
        out.push_str(&format!("\n{}: {}", c.item, c.detail));
    }
    out
}
