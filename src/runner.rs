//! Selection, running and recording: FOCUS/SKIP over the registry, the selected tests run as
//! libtest-mimic trials, every registered test recorded with its outcome and duration.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use regex_lite::Regex;
use serde::Serialize;

use crate::report::console::Console;
use crate::suite::{Context, Outcome, Test, Verdict, Waiting};

pub const DEFAULT_SKIP: &str = r"\[Flaky\]|\[Serial\]|\[Disruptive\]";

/// A FOCUS or SKIP expression. Most are plain words or an alternation of them (the default
/// SKIP is); those are matched as substrings, which gives the same answer without running the
/// regex engine once per registered test.
#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    literals: Option<Vec<String>>,
}

impl Pattern {
    fn new(p: &str) -> Result<Self, regex_lite::Error> {
        Ok(Self {
            regex: Regex::new(p)?,
            literals: p.split('|').map(literal).collect(),
        })
    }

    fn is_match(&self, name: &str) -> bool {
        match &self.literals {
            Some(words) => words.iter().any(|w| name.contains(w.as_str())),
            None => self.regex.is_match(name),
        }
    }

    fn as_str(&self) -> &str {
        self.regex.as_str()
    }
}

/// The text a regex piece matches when it is a literal: no metacharacter but escaped
/// punctuation (`\[Flaky\]`). `None` for anything else, which the regex engine answers.
///
/// regex-lite reads an escaped ASCII punctuation character as that character, except `\<`
/// and `\>`, which are word boundaries (start, end) there; Go's regexp, which ginkgo's FOCUS
/// uses, rejects them.
fn literal(piece: &str) -> Option<String> {
    const META: &str = r".^$*+?()[]{}|\";
    let mut out = String::with_capacity(piece.len());
    let mut chars = piece.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() && e != '<' && e != '>' => out.push(e),
                _ => return None,
            },
            c if META.contains(c) => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Which tests run: those matching FOCUS and not matching SKIP.
#[derive(Debug, Clone)]
pub struct Selection {
    focus: Option<Pattern>,
    skip: Option<Pattern>,
}

impl Selection {
    /// `None` or an empty pattern selects everything (focus) or nothing (skip). The error
    /// names the flag and the pattern.
    pub fn new(focus: Option<&str>, skip: Option<&str>) -> Result<Self, String> {
        let compile = |flag: &str, pat: Option<&str>| -> Result<Option<Pattern>, String> {
            match pat {
                None | Some("") => Ok(None),
                Some(p) => Pattern::new(p).map(Some).map_err(|e| {
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
        self.focus.as_ref().map_or("", Pattern::as_str)
    }
    pub fn skip(&self) -> &str {
        self.skip.as_ref().map_or("", Pattern::as_str)
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

/// Where each test stands while a run goes on. Shared with the signal handler, which turns
/// it into a record when the run is cut short.
#[derive(Debug)]
pub struct RunState {
    started: DateTime<Utc>,
    clock: Instant,
    slots: Mutex<Vec<Slot>>,
    /// Set by a signal: no test starts after it, and none that ends is printed (its verdict
    /// in the results is the one the interruption gave it).
    interrupted: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Clone)]
enum Slot {
    Waiting(TestRecord),
    Running(TestRecord, Instant),
    Done(TestRecord),
}

impl RunState {
    /// Every test waiting, with its identity filled in.
    pub fn new(tests: &[Test]) -> Arc<Self> {
        let slots = tests
            .iter()
            .map(|t| {
                Slot::Waiting(TestRecord {
                    name: t.name(),
                    area: t.area.to_string(),
                    tags: t.tags.iter().map(|t| (*t).to_string()).collect(),
                    selected: true,
                    duration: Duration::ZERO,
                    outcome: Outcome::skipped("not run"),
                })
            })
            .collect();
        Arc::new(Self {
            started: Utc::now(),
            clock: Instant::now(),
            slots: Mutex::new(slots),
            interrupted: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Marks the run interrupted; call before the [`RunState::snapshot`] that records it.
    pub fn interrupt(&self) {
        self.interrupted
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn is_interrupted(&self) -> bool {
        self.interrupted.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn update(&self, index: usize, f: impl FnOnce(Slot) -> Slot) {
        if let Ok(mut slots) = self.slots.lock()
            && let Some(slot) = slots.get_mut(index)
        {
            let old = std::mem::replace(slot, Slot::Waiting(placeholder()));
            *slot = f(old);
        }
    }

    fn record_of(slot: &Slot) -> &TestRecord {
        match slot {
            Slot::Waiting(r) | Slot::Running(r, _) | Slot::Done(r) => r,
        }
    }

    /// The run as it stands. With `interrupted`, tests still running are failed and tests not
    /// yet started are skipped, both saying why.
    pub fn snapshot(&self, interrupted: Option<&str>) -> RunRecord {
        let slots = self.slots.lock().map(|s| s.clone()).unwrap_or_default();
        let records = slots
            .into_iter()
            .map(|slot| match slot {
                Slot::Done(r) => r,
                Slot::Running(mut r, since) => {
                    r.duration = since.elapsed();
                    r.outcome = Outcome::failed(match interrupted {
                        Some(why) => format!(
                            "interrupted by {why} after {:.1}s",
                            r.duration.as_secs_f64()
                        ),
                        None => "the test did not report an outcome".into(),
                    });
                    r
                }
                Slot::Waiting(mut r) => {
                    if r.selected {
                        r.outcome = match interrupted {
                            Some(why) => Outcome::skipped(format!(
                                "not run: the run was interrupted by {why}"
                            )),
                            None => Outcome::failed("the test did not report an outcome"),
                        };
                    }
                    r
                }
            })
            .collect();
        RunRecord {
            started: self.started,
            duration: self.clock.elapsed(),
            records,
        }
    }
}

fn placeholder() -> TestRecord {
    TestRecord {
        name: String::new(),
        area: String::new(),
        tags: Vec::new(),
        selected: false,
        duration: Duration::ZERO,
        outcome: Outcome::skipped(""),
    }
}

/// What a test gets beyond the sum of its waits, for its requests and its own work.
pub const BEYOND_WAITS: Duration = Duration::from_secs(30);

/// The deadline of `test`: `timeout` (--test-timeout), raised for a test that waits on the
/// node to the sum of its waits plus [`BEYOND_WAITS`], so a wait that runs out fails the test
/// with what it saw rather than the deadline cutting it off first.
pub fn deadline(
    test: &Test,
    waits: &crate::suite::functional::Waits,
    timeout: Duration,
) -> Duration {
    test.budget
        .map_or(timeout, |budget| timeout.max(budget(waits) + BEYOND_WAITS))
}

/// The failure of a test cut off at `deadline`, with what it was waiting for then, if anything.
fn timed_out(deadline: Duration, timeout: Duration, waiting: Option<Waiting>) -> Outcome {
    let mut message = if deadline == timeout {
        format!("timed out after {}s (--test-timeout)", deadline.as_secs())
    } else {
        format!(
            "timed out after {}s (--test-timeout {}s, raised to the test's waits plus {}s)",
            deadline.as_secs(),
            timeout.as_secs(),
            BEYOND_WAITS.as_secs()
        )
    };
    if let Some(w) = waiting {
        message.push_str(&format!(
            " while waiting for {}; last seen: {}",
            w.what, w.state
        ));
    }
    Outcome::failed(message)
}

/// Runs the selected tests, those that wait on services up to `parallelism` (default: the
/// CPUs) at a time; unselected ones are recorded as skipped with the reason, and `selected` is
/// called once they are, before any test runs, with the selected tests' read-ahead functions.
/// Every test has the deadline `timeout`, or its [`deadline`] when that is later: one that
/// runs past it is failed and left behind on its thread (a read stuck on a hung mount cannot
/// be cancelled); what it created in the runtimes is removed with the rest of the run's.
pub fn run(
    tests: &[Test],
    ctx: &Arc<Context>,
    selection: &Selection,
    (parallelism, timeout): (Option<usize>, Duration),
    console: &Arc<Console>,
    state: &Arc<RunState>,
    selected: impl FnOnce(Vec<fn(&Context)>),
) -> RunRecord {
    // Tests that only read the node take microseconds: they run one after another on this
    // thread, where starting threads for them would cost more than they do. Tests that wait
    // on services run `parallelism` at a time.
    let (mut quick, mut reading, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
    let mut reads = Vec::new();
    let worker = Arc::new(Worker::default());
    for (index, test) in tests.iter().enumerate() {
        let name = test.name();
        if let Some(reason) = selection.reason_unselected(&name) {
            state.update(index, |slot| {
                let mut r = RunState::record_of(&slot).clone();
                r.selected = false;
                r.outcome = Outcome::skipped(reason);
                Slot::Done(r)
            });
            continue;
        }
        reads.extend(test.read_ahead);
        let limit = deadline(test, &ctx.waits, timeout);
        let (ctx, state, console, worker, run_fn) = (
            Arc::clone(ctx),
            Arc::clone(state),
            Arc::clone(console),
            Arc::clone(&worker),
            test.run,
        );
        // Tests that talk to services can hang on them and get a thread of their own; tests that
        // only read the node's files share one, replaced when a test is abandoned on it.
        let abandonable = !test.needs.is_empty();
        // A quick test that reads ahead goes after the others, which its reading overlaps.
        let trials = if abandonable {
            &mut waiting
        } else if test.read_ahead.is_some() {
            &mut reading
        } else {
            &mut quick
        };
        trials.push(Trial::ignorable_test(name, move || {
            if state.is_interrupted() {
                return Ok(Completion::ignored_with("interrupted"));
            }
            let begin = Instant::now();
            state.update(index, |slot| {
                Slot::Running(RunState::record_of(&slot).clone(), begin)
            });
            let outcome = if abandonable {
                run_with_timeout(run_fn, ctx, (limit, timeout))
            } else {
                worker.run(run_fn, ctx, (limit, timeout))
            };
            let mut record = placeholder();
            state.update(index, |slot| {
                let mut r = RunState::record_of(&slot).clone();
                r.duration = begin.elapsed();
                r.outcome = outcome;
                record = r.clone();
                Slot::Done(r)
            });
            if !state.is_interrupted() {
                console.finished(&record);
            }
            match record.outcome.verdict {
                Verdict::Passed => Ok(Completion::Completed),
                Verdict::Skipped => Ok(Completion::ignored_with(
                    record.outcome.message.unwrap_or_default(),
                )),
                Verdict::Failed => Err(Failed::from(record.outcome.message.unwrap_or_default())),
            }
        }));
    }
    selected(reads);
    quick.append(&mut reading);
    console.started(quick.len() + waiting.len(), tests.len());
    // The conclusions only count what the slots already hold.
    if !quick.is_empty() {
        let _ = libtest_mimic::run(&trial_arguments(1), quick);
    }
    if !waiting.is_empty() {
        let parallelism = parallelism.unwrap_or_else(default_parallelism);
        let _ = libtest_mimic::run(&trial_arguments(parallelism), waiting);
    }
    state.snapshot(None)
}

/// How many tests that wait on services run at once unless told: the CPUs, and at least 16,
/// since such a test spends its time waiting on a container or the kubelet, not computing
/// (the 13 kubelet tests then run side by side, as the kubelet allows).
pub fn default_parallelism() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .max(16)
}

/// Runs a test, turning a panic into a failure that says so.
fn run_guarded(run_fn: fn(&Context) -> Outcome, ctx: &Context) -> Outcome {
    crate::suite::take_waited();
    let mut outcome = catch_unwind(AssertUnwindSafe(|| run_fn(ctx))).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        Outcome::failed(format!(
            "the test panicked ({what}); this is a harness bug, please report it"
        ))
    });
    outcome.waited = crate::suite::take_waited();
    // The thread may run another test: nothing of this one's waits may be quoted for it.
    crate::suite::done_waiting();
    outcome
}

/// A unit of work for the [`Worker`].
type Job = Box<dyn FnOnce() + Send>;

/// The thread the quick tests run on, one after another: a thread per test would cost more
/// than most of them do, and the runner's own thread cannot be abandoned.
#[derive(Default)]
struct Worker {
    /// The thread's queue, and its id for what a test cut off on it was waiting for.
    jobs: Mutex<Option<(std::sync::mpsc::Sender<Job>, ThreadId)>>,
}

impl Worker {
    /// Runs a test on the worker thread, waiting at most `deadline`; `timeout` is
    /// --test-timeout, for the message. A test past its deadline keeps the thread; the next
    /// test gets a new one.
    fn run(
        &self,
        run_fn: fn(&Context) -> Outcome,
        ctx: Arc<Context>,
        (deadline, timeout): (Duration, Duration),
    ) -> Outcome {
        let (tx, rx) = std::sync::mpsc::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(run_guarded(run_fn, &ctx));
        });
        let mut slot = self
            .jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (sender, thread) = match slot.take() {
            Some(worker) => worker,
            None => match Self::spawn() {
                Ok(worker) => worker,
                Err(e) => {
                    return Outcome::failed(format!("cannot start a thread for the test: {e}"));
                }
            },
        };
        if sender.send(job).is_err() {
            return Outcome::failed("the test thread is gone");
        }
        match rx.recv_timeout(deadline) {
            Ok(outcome) => {
                *slot = Some((sender, thread));
                outcome
            }
            Err(_) => timed_out(deadline, timeout, crate::suite::take_waiting(thread)),
        }
    }

    fn spawn() -> std::io::Result<(std::sync::mpsc::Sender<Job>, ThreadId)> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let handle = std::thread::Builder::new()
            .name("quick-tests".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })?;
        Ok((tx, handle.thread().id()))
    }
}

/// Runs a test on a thread of its own so a hung one can be abandoned at `deadline`;
/// `timeout` is --test-timeout, for the message.
fn run_with_timeout(
    run_fn: fn(&Context) -> Outcome,
    ctx: Arc<Context>,
    (deadline, timeout): (Duration, Duration),
) -> Outcome {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().spawn(move || {
        let _ = tx.send(run_guarded(run_fn, &ctx));
    });
    let thread = match spawned {
        Ok(handle) => handle.thread().id(),
        Err(e) => return Outcome::failed(format!("cannot start a thread for the test: {e}")),
    };
    rx.recv_timeout(deadline)
        .unwrap_or_else(|_| timed_out(deadline, timeout, crate::suite::take_waiting(thread)))
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
    fn literal_patterns_match_as_the_regex_does() {
        let names = [
            "[sig-node] System Verification kernel [NodeConformance]",
            "[sig-node] Kubelet x [Serial]",
            "[sig-node] Pod Lifecycle a.b [Flaky]",
            "[sig-node] MirrorPod when create a mirror pod should x",
            "[sig-node] NotSystem Verification <System> a-b #1 ~x & y_z",
            "[sig-node] Systemd Kubelets",
        ];
        for p in [
            "System Verification",
            DEFAULT_SKIP,
            r"a\.b",
            "MirrorPod|Kubelet",
            "Kubelet|",
            r"\[Serial\]",
            // Not literals: answered by the regex.
            "Sys.em",
            r"^\[sig-node\] Kubelet",
            "(?i)kubelet",
            r"a\|b",
            r"\d",
            r"\<System",
            r"System\>",
            r"\<Kubelet\>|\[Serial\]",
            r"<System>",
            r"\bSystem\b",
            r"a\-b",
            r"\#1",
            r"\~x \& y\_z",
            r"\ ",
            "",
        ] {
            let pattern = Pattern::new(p).unwrap();
            for n in names {
                assert_eq!(
                    pattern.is_match(n),
                    pattern.regex.is_match(n),
                    "{p:?} on {n:?}"
                );
            }
        }
        assert!(Pattern::new(DEFAULT_SKIP).unwrap().literals.is_some());
        assert!(Pattern::new("Sys.em").unwrap().literals.is_none());
        assert!(Pattern::new(r"a\|b").unwrap().literals.is_none());
        assert!(Pattern::new(r"\d").unwrap().literals.is_none());
        // Word boundaries in regex-lite, not the characters `<` and `>`.
        assert!(Pattern::new(r"\<System").unwrap().literals.is_none());
        let word = Pattern::new(r"\<System\>").unwrap();
        assert!(word.is_match("[sig-node] System Verification"));
        assert!(!word.is_match("[sig-node] NotSystem Verification"));
        assert!(!word.is_match("[sig-node] Systemd"));
        assert!(Pattern::new(r"\~x \& y\_z").unwrap().literals.is_some());
    }

    fn context() -> Arc<Context> {
        Arc::new(Context {
            node: crate::node::Node::new(
                crate::node::rootfs::RootFs::open("/").unwrap(),
                crate::node::Options::default(),
            ),
            spec: crate::spec::SysSpec::builtin(),
            services: crate::runtime::Services::new(
                "t".into(),
                "/nonexistent".into(),
                crate::runtime::ApiOptions::default(),
                None,
                None,
            ),
            console: Arc::new(Console::new()),
            waits: crate::suite::functional::Waits::default(),
        })
    }

    #[test]
    fn a_test_that_only_reads_files_has_a_deadline_too() {
        // As a read stuck on a hung mount would: no deadline, the run never ends.
        fn stuck(_: &Context) -> Outcome {
            std::thread::sleep(Duration::from_secs(3600));
            Outcome::failed("woke up")
        }
        fn passes(_: &Context) -> Outcome {
            let mut o = Outcome::skipped("");
            o.verdict = Verdict::Passed;
            o.message = None;
            o
        }
        let tests = vec![
            Test::plain("Files", &[], "stuck", stuck),
            Test::plain("Files", &[], "after", passes),
            Test::plain("Files", &[], "stuck again", stuck),
            Test::plain("Files", &[], "last", passes),
        ];
        let state = RunState::new(&tests);
        let began = Instant::now();
        let run = run(
            &tests,
            &context(),
            &Selection::new(None, None).unwrap(),
            (Some(1), Duration::from_millis(300)),
            &Arc::new(Console::new()),
            &state,
            |_| {},
        );
        assert!(began.elapsed() < Duration::from_secs(5));
        let verdicts: Vec<_> = run.records.iter().map(|r| r.outcome.verdict).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Failed,
                Verdict::Passed,
                Verdict::Failed,
                Verdict::Passed
            ]
        );
        let message = run.records[0].outcome.message.as_deref().unwrap_or("");
        assert!(message.contains("timed out after"), "{message}");
    }

    #[test]
    fn a_test_cut_off_says_what_it_was_waiting_for() {
        fn waits_past_the_deadline(_: &Context) -> Outcome {
            crate::suite::note_waiting("pod x to be Running", "phase Pending; no events");
            std::thread::sleep(Duration::from_secs(5));
            Outcome::failed("woke up")
        }
        fn cut_off_after_its_wait(_: &Context) -> Outcome {
            crate::suite::note_waiting("pod y to be Running", "phase Pending");
            crate::suite::done_waiting();
            std::thread::sleep(Duration::from_secs(5));
            Outcome::failed("woke up")
        }
        let on_own_thread = |behaviour, run| Test {
            needs: &[crate::suite::Service::ControlPlane],
            ..Test::plain("Kubelet", &[], behaviour, run)
        };
        let tests = vec![
            on_own_thread("waits", waits_past_the_deadline),
            on_own_thread("waited", cut_off_after_its_wait),
            Test::plain("Files", &[], "waits on the worker", waits_past_the_deadline),
        ];
        let state = RunState::new(&tests);
        let run = run(
            &tests,
            &context(),
            &Selection::new(None, None).unwrap(),
            (Some(2), Duration::from_millis(300)),
            &Arc::new(Console::new()),
            &state,
            |_| {},
        );
        let messages: Vec<_> = run
            .records
            .iter()
            .map(|r| r.outcome.message.clone().unwrap_or_default())
            .collect();
        let waiting = "timed out after 0s (--test-timeout) while waiting for pod x to be \
                       Running; last seen: phase Pending; no events";
        assert_eq!(messages[0], waiting);
        assert_eq!(messages[1], "timed out after 0s (--test-timeout)");
        assert_eq!(messages[2], waiting);
    }

    #[test]
    fn a_kubelet_test_outlasts_its_own_waits() {
        use crate::suite::functional::Waits;
        let timeout = Duration::from_secs(300);
        let waits = Waits::default();
        let tests: Vec<Test> = crate::suite::registry()
            .into_iter()
            .filter(|t| t.needs.contains(&crate::suite::Service::ControlPlane))
            .collect();
        assert!(tests.len() >= 14, "{}", tests.len());
        for t in &tests {
            let Some(budget) = t.budget else {
                panic!("{} has no budget", t.name());
            };
            let waited = budget(&waits);
            // Each waits on the node at least once, for its Node or its pod.
            assert!(waited >= waits.node_ready, "{}", t.name());
            assert!(
                deadline(t, &waits, timeout) >= waited + BEYOND_WAITS,
                "{}",
                t.name()
            );
        }
        let budget = |behaviour: &str| {
            let t = tests
                .iter()
                .find(|t| t.behaviour.contains(behaviour))
                .unwrap();
            deadline(t, &waits, timeout).as_secs()
        };
        // Three pods side by side, 300 s, then each removed in up to 60 s in turn.
        assert_eq!(
            budget("should run with the expected status"),
            300 + 2 * 60 + 30
        );
        // The pod, its graceful removal (5 s and 30 s), its teardown.
        assert_eq!(budget("deleted gracefully"), 425);
        // The Node, the mirror pod, its change, its removal, and 30 s Running.
        assert_eq!(
            budget("file is removed and recreated"),
            120 + 3 * 120 + 30 + 30
        );
        assert_eq!(budget("registers and turns Ready"), 300);
        // Short waits leave --test-timeout as it is; a test that waits on nothing keeps it.
        let short = Waits {
            node_ready: Duration::from_secs(5),
            mirror_pod: Duration::from_secs(5),
            pod_start: Duration::from_secs(5),
            poll: Duration::from_secs(1),
        };
        for t in &tests {
            // A [Slow] test waits out the kubelet's own back-off (300 s, several times), which
            // no flag shortens.
            if t.tags.contains(&"Slow") {
                assert!(deadline(t, &short, timeout) > timeout, "{}", t.name());
                continue;
            }
            assert_eq!(deadline(t, &short, timeout), timeout, "{}", t.name());
        }
        let plain = Test::plain("Files", &[], "x", |_| Outcome::failed(""));
        assert_eq!(deadline(&plain, &waits, timeout), timeout);
        assert_eq!(
            timed_out(Duration::from_secs(750), timeout, None)
                .message
                .unwrap_or_default(),
            "timed out after 750s (--test-timeout 300s, raised to the test's waits plus 30s)"
        );
    }

    #[test]
    fn nothing_starts_after_an_interrupt() {
        fn must_not_run(_: &Context) -> Outcome {
            panic!("ran after the interrupt")
        }
        let tests = vec![Test::plain("Files", &[], "later", must_not_run)];
        let state = RunState::new(&tests);
        state.interrupt();
        let written = state.snapshot(Some("SIGTERM"));
        run(
            &tests,
            &context(),
            &Selection::new(None, None).unwrap(),
            (Some(1), Duration::from_secs(5)),
            &Arc::new(Console::new()),
            &state,
            |_| {},
        );
        // Still as the results recorded it: skipped, not a panic's failure.
        let after = state.snapshot(Some("SIGTERM"));
        for r in [&written.records[0], &after.records[0]] {
            assert_eq!(r.outcome.verdict, Verdict::Skipped);
            let message = r.outcome.message.as_deref().unwrap_or("");
            assert!(message.contains("interrupted by SIGTERM"), "{message}");
        }
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
