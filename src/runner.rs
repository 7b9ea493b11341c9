//! Selection, running and recording: FOCUS/SKIP over the registry, the selected tests run as
//! libtest-mimic trials, every registered test recorded with its outcome and duration.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use regex_lite::Regex;
use serde::Serialize;

use crate::report::console::Console;
use crate::suite::{Context, Outcome, Test, Verdict};

pub const DEFAULT_SKIP: &str = r"\[Flaky\]|\[Serial\]|\[Disruptive\]";

/// Which tests run: those matching FOCUS and not matching SKIP.
#[derive(Debug, Clone)]
pub struct Selection {
    focus: Option<Regex>,
    skip: Option<Regex>,
}

impl Selection {
    /// `None` or an empty pattern selects everything (focus) or nothing (skip). The error
    /// names the flag and the pattern.
    pub fn new(focus: Option<&str>, skip: Option<&str>) -> Result<Self, String> {
        let compile = |flag: &str, pat: Option<&str>| -> Result<Option<Regex>, String> {
            match pat {
                None | Some("") => Ok(None),
                Some(p) => Regex::new(p).map(Some).map_err(|e| {
                    let detail = e
                        .to_string()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    format!("invalid {flag} regular expression {p:?}: {detail}")
                }),
            }
        };
        Ok(Self {
            focus: compile("--focus (FOCUS)", focus)?,
            skip: compile("--skip (SKIP)", skip)?,
        })
    }

    /// Why a test is not selected, or `None` when it runs.
    pub fn reason_unselected(&self, name: &str) -> Option<String> {
        if let Some(f) = &self.focus
            && !f.is_match(name)
        {
            return Some(format!(
                "not selected: does not match FOCUS {:?}",
                f.as_str()
            ));
        }
        if let Some(s) = &self.skip
            && s.is_match(name)
        {
            return Some(format!("not selected: matches SKIP {:?}", s.as_str()));
        }
        None
    }

    pub fn focus(&self) -> &str {
        self.focus.as_ref().map_or("", Regex::as_str)
    }
    pub fn skip(&self) -> &str {
        self.skip.as_ref().map_or("", Regex::as_str)
    }
}

/// One registered test and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct TestRecord {
    pub name: String,
    pub area: String,
    pub tags: Vec<String>,
    /// False when FOCUS/SKIP left it out.
    pub selected: bool,
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    #[serde(flatten)]
    pub outcome: Outcome,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub started: DateTime<Utc>,
    pub duration: Duration,
    pub records: Vec<TestRecord>,
}

impl RunRecord {
    pub fn count(&self, verdict: Verdict) -> usize {
        self.records
            .iter()
            .filter(|r| r.outcome.verdict == verdict)
            .count()
    }
    pub fn failed(&self) -> bool {
        self.count(Verdict::Failed) > 0
    }
}

/// The names of the selected tests, in registry order.
pub fn selected_names(tests: &[Test], selection: &Selection) -> Vec<String> {
    tests
        .iter()
        .map(Test::name)
        .filter(|n| selection.reason_unselected(n).is_none())
        .collect()
}

/// Runs the selected tests on up to `parallelism` threads; unselected ones are recorded as
/// skipped with the reason.
pub fn run(
    tests: &[Test],
    ctx: Arc<Context>,
    selection: &Selection,
    parallelism: usize,
    console: &Arc<Console>,
) -> RunRecord {
    let started = Utc::now();
    let clock = Instant::now();
    let slots: Arc<Mutex<Vec<Option<TestRecord>>>> = Arc::new(Mutex::new(vec![None; tests.len()]));
    let mut trials = Vec::new();
    for (index, test) in tests.iter().enumerate() {
        let name = test.name();
        let tags: Vec<String> = test.tags.iter().map(|t| (*t).to_string()).collect();
        if let Some(reason) = selection.reason_unselected(&name) {
            store(
                &slots,
                index,
                TestRecord {
                    name,
                    area: test.area.to_string(),
                    tags,
                    selected: false,
                    duration: Duration::ZERO,
                    outcome: Outcome::skipped(reason),
                },
            );
            continue;
        }
        let (ctx, slots, console, run_fn) = (
            Arc::clone(&ctx),
            Arc::clone(&slots),
            Arc::clone(console),
            test.run,
        );
        let trial_name = name.clone();
        let area = test.area.to_string();
        trials.push(Trial::ignorable_test(trial_name, move || {
            let begin = Instant::now();
            let outcome = catch_unwind(AssertUnwindSafe(|| run_fn(&ctx))).unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown cause".into());
                Outcome {
                    verdict: Verdict::Failed,
                    message: Some(format!(
                        "the test panicked ({what}); this is a harness bug, please report it"
                    )),
                    notes: Vec::new(),
                    checks: Vec::new(),
                }
            });
            let record = TestRecord {
                name,
                area,
                tags,
                selected: true,
                duration: begin.elapsed(),
                outcome,
            };
            console.finished(&record);
            let result = match record.outcome.verdict {
                Verdict::Passed => Ok(Completion::Completed),
                Verdict::Skipped => Ok(Completion::ignored_with(
                    record.outcome.message.clone().unwrap_or_default(),
                )),
                Verdict::Failed => Err(Failed::from(
                    record.outcome.message.clone().unwrap_or_default(),
                )),
            };
            store(&slots, index, record);
            result
        }));
    }
    console.started(trials.len(), tests.len());
    if !trials.is_empty() {
        // The conclusion only counts what the slots already hold.
        let _ = libtest_mimic::run(&trial_arguments(parallelism), trials);
    }
    let records = slots
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default()
        .into_iter()
        .zip(tests)
        .map(|(slot, test)| {
            slot.unwrap_or_else(|| TestRecord {
                name: test.name(),
                area: test.area.to_string(),
                tags: test.tags.iter().map(|t| (*t).to_string()).collect(),
                selected: true,
                duration: Duration::ZERO,
                outcome: Outcome {
                    verdict: Verdict::Failed,
                    message: Some("the test did not report an outcome".into()),
                    notes: Vec::new(),
                    checks: Vec::new(),
                },
            })
        })
        .collect();
    RunRecord {
        started,
        duration: clock.elapsed(),
        records,
    }
}

fn store(slots: &Mutex<Vec<Option<TestRecord>>>, index: usize, record: TestRecord) {
    if let Ok(mut s) = slots.lock()
        && let Some(slot) = s.get_mut(index)
    {
        *slot = Some(record);
    }
}

/// libtest-mimic schedules the trials; the console reporter prints them (libtest's own lines
/// carry no durations), so its printer writes to /dev/null.
fn trial_arguments(parallelism: usize) -> Arguments {
    let mut args = Arguments {
        test_threads: Some(parallelism.max(1)),
        ..Arguments::default()
    };
    if Path::new("/dev/null").exists() {
        args.logfile = Some("/dev/null".into());
    } else {
        args.quiet = true;
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_reasons() {
        let s = Selection::new(Some("System"), Some(DEFAULT_SKIP)).unwrap();
        assert!(
            s.reason_unselected("[sig-node] System Verification x [NodeConformance]")
                .is_none()
        );
        assert!(
            s.reason_unselected("[sig-node] Kubelet y")
                .unwrap()
                .contains("does not match FOCUS")
        );
        assert!(
            s.reason_unselected("[sig-node] System z [Serial]")
                .unwrap()
                .contains("matches SKIP")
        );
        let all = Selection::new(None, Some("")).unwrap();
        assert!(
            all.reason_unselected("[sig-node] anything [Serial]")
                .is_none()
        );
    }

    #[test]
    fn invalid_patterns_name_the_flag() {
        let e = Selection::new(Some("("), None).unwrap_err();
        assert!(e.contains("--focus") && e.contains("\"(\""), "{e}");
        assert!(!e.contains('\n'));
        assert!(
            Selection::new(None, Some("["))
                .unwrap_err()
                .contains("--skip")
        );
    }
}
