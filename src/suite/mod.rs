//! What the node is TESTED for. A test is data: a name, tags, the services it needs and a
//! function of the node view. Tests decide; they read the node only through `crate::node`.

pub mod common;
pub mod e2e_node;
pub mod functional;
pub mod kubelet;
pub mod pki;
pub mod runtime;
pub mod staticpods;
pub mod system;
pub mod zones;

use std::time::Duration;

use serde::Serialize;

use crate::node::Node;
use crate::spec::SysSpec;

/// A service some tests need, started once on first use and torn down after the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Service {
    /// The node's Docker Engine, with the test image loaded.
    Docker,
    /// The local control plane, for the kubelet's functional tests.
    ControlPlane,
    /// The run's image registry on 127.0.0.1, for the image pull tests.
    Registry,
}

/// Everything a test may look at.
#[derive(Debug)]
pub struct Context {
    pub node: Node,
    pub spec: SysSpec,
    pub services: crate::runtime::Services,
    /// For progress while a test waits.
    pub console: std::sync::Arc<crate::report::console::Console>,
    pub waits: functional::Waits,
}

/// A registered test.
#[derive(Debug, Clone)]
pub struct Test {
    /// The area, as it appears after `[sig-node]`: `System Verification`.
    pub area: &'static str,
    /// What the node is expected to do or have, as a phrase.
    pub behaviour: &'static str,
    /// Tags without brackets: `NodeConformance`, `Serial`, `Feature:X`.
    pub tags: &'static [&'static str],
    pub needs: &'static [Service],
    pub run: fn(&Context) -> Outcome,
    /// Reads the facts the test will need, on another thread as soon as the test is selected,
    /// so the reading overlaps with the tests before it. The facts are cached in the node view.
    pub read_ahead: Option<fn(&Context)>,
    /// The longest the test's waits on the node can take one after another, from the
    /// configured waits; the runner gives the test at least this plus a margin, so a wait
    /// that runs out reports what it saw before the per-test timeout cuts the test off.
    pub budget: Option<fn(&functional::Waits) -> Duration>,
}

impl Test {
    /// A test that needs no service.
    pub fn plain(
        area: &'static str,
        tags: &'static [&'static str],
        behaviour: &'static str,
        run: fn(&Context) -> Outcome,
    ) -> Self {
        Self {
            area,
            behaviour,
            tags,
            needs: &[],
            run,
            read_ahead: None,
            budget: None,
        }
    }

    /// The same test, with facts read ahead.
    pub fn reading_ahead(self, read_ahead: fn(&Context)) -> Self {
        Self {
            read_ahead: Some(read_ahead),
            ..self
        }
    }

    /// The full name FOCUS and SKIP are matched against:
    /// `[sig-node] <Area> <behaviour> [Tag] [Tag]`.
    pub fn name(&self) -> String {
        let mut name = format!("[sig-node] {} {}", self.area, self.behaviour);
        for tag in self.tags {
            name.push_str(" [");
            name.push_str(tag);
            name.push(']');
        }
        name
    }
}

/// Every test the harness knows, in the order they are reported.
pub fn registry() -> Vec<Test> {
    let mut tests = system::tests();
    tests.extend(runtime::tests());
    tests.extend(kubelet::tests());
    tests.extend(staticpods::tests());
    tests.extend(pki::tests());
    tests.extend(zones::tests());
    tests.extend(functional::tests());
    tests.extend(common::tests());
    tests.extend(e2e_node::tests());
    tests
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Passed,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    Warn,
    Fail,
    Info,
}

/// One thing a test looked at, with what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub item: String,
    pub status: CheckStatus,
    pub detail: String,
}

/// What a test concluded. `message` is the failure message or the skip reason.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub verdict: Verdict,
    pub message: Option<String>,
    pub notes: Vec<String>,
    pub checks: Vec<Check>,
    /// Time spent waiting on the node (the kubelet) rather than working; the rest of the
    /// duration is the harness's own.
    #[serde(skip_serializing_if = "Duration::is_zero", serialize_with = "secs")]
    pub waited: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

thread_local! {
    static WAITED: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::ZERO) };
}

/// Counts time the running test spent waiting on the node.
pub fn add_waited(d: Duration) {
    WAITED.with(|w| w.set(w.get() + d));
}

/// The waiting counted on this thread since the last call.
pub fn take_waited() -> Duration {
    WAITED.with(|w| w.replace(Duration::ZERO))
}

/// What a test thread is waiting for and the state it last saw, for the runner to quote when
/// it gives up on the thread: the thread itself cannot say anything once abandoned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// As the wait's messages name it: `pod x to be Running`.
    pub what: String,
    /// The state the last look found, as the wait would report it.
    pub state: String,
}

type WaitingMap = std::collections::HashMap<std::thread::ThreadId, Waiting>;

static WAITING: std::sync::LazyLock<std::sync::Mutex<WaitingMap>> =
    std::sync::LazyLock::new(Default::default);

fn waiting_map() -> std::sync::MutexGuard<'static, WaitingMap> {
    // A panic while the lock was held leaves the map whole: every update is one insert or
    // remove.
    WAITING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Records, for this thread, what it waits for and the state it saw last.
pub fn note_waiting(what: &str, state: &str) {
    let mut map = waiting_map();
    match map.get_mut(&std::thread::current().id()) {
        Some(w) if w.what == what => {
            if w.state != state {
                state.clone_into(&mut w.state);
            }
        }
        _ => {
            map.insert(
                std::thread::current().id(),
                Waiting {
                    what: what.to_string(),
                    state: state.to_string(),
                },
            );
        }
    }
}

/// Forgets this thread's wait: it ended, one way or the other.
pub fn done_waiting() {
    waiting_map().remove(&std::thread::current().id());
}

/// What `thread` was waiting for when last seen, if it was waiting; forgotten here, as the
/// runner asks once, when it abandons the thread.
pub fn take_waiting(thread: std::thread::ThreadId) -> Option<Waiting> {
    waiting_map().remove(&thread)
}

impl Outcome {
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Failed,
            message: Some(message.into()),
            notes: Vec::new(),
            checks: Vec::new(),
            waited: Duration::ZERO,
        }
    }

    pub fn skipped(reason: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Skipped,
            message: Some(reason.into()),
            notes: Vec::new(),
            checks: Vec::new(),
            waited: Duration::ZERO,
        }
    }

    pub fn warnings(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.status == CheckStatus::Warn)
            .count()
    }

    /// The test's own account, one line per note and check: the JUnit system-out.
    pub fn log(&self) -> String {
        let mut out = String::new();
        for n in &self.notes {
            out.push_str(n);
            out.push('\n');
        }
        for c in &self.checks {
            let tag = match c.status {
                CheckStatus::Ok => "[ok]  ",
                CheckStatus::Warn => "[warn]",
                CheckStatus::Fail => "[FAIL]",
                CheckStatus::Info => "[info]",
            };
            out.push_str(&format!("{tag} {}: {}\n", c.item, c.detail));
        }
        out
    }
}

/// How many failed checks, and how many other checks, a test lists; the rest are counted in
/// a note. A node can hold any number of things to check (a manifest of 30,000 containers):
/// the results stay readable and the harness's memory bounded whatever it holds.
pub const LISTED_CHECKS: usize = 200;

/// The longest failure message or skip reason kept, in bytes; a longer one is cut at a
/// character boundary and says how much was cut.
pub const MESSAGE_CAP: usize = 16 << 10;

/// Collects a test's checks and notes, then concludes.
#[derive(Debug, Default)]
pub struct Recorder {
    notes: Vec<String>,
    checks: Vec<Check>,
    /// Checks past [`LISTED_CHECKS`], by status: ok, warn, fail, info.
    unlisted: [usize; 4],
    listed_failures: usize,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, status: CheckStatus, item: impl Into<String>, detail: impl Into<String>) {
        let failed = status == CheckStatus::Fail;
        let listed = if failed {
            self.listed_failures
        } else {
            self.checks.len() - self.listed_failures
        };
        if listed >= LISTED_CHECKS {
            self.unlisted[status as usize] += 1;
            return;
        }
        self.listed_failures += usize::from(failed);
        self.checks.push(Check {
            item: item.into(),
            status,
            detail: detail.into(),
        });
    }

    /// Whether any check failed (failures are listed first, so one is listed if any).
    fn any_failed(&self) -> bool {
        self.listed_failures > 0
    }

    /// The notes, with one saying how many checks were not listed, if any.
    fn all_notes(mut self) -> (Vec<String>, Vec<Check>) {
        let [ok, warn, fail, info] = self.unlisted;
        let total = ok + warn + fail + info;
        if total > 0 {
            self.notes.push(format!(
                "{total} more checks not listed ({fail} failed, {warn} warned, {ok} ok, {info} for \
                 information): a test lists {LISTED_CHECKS} failed checks and {LISTED_CHECKS} others"
            ));
        }
        (self.notes, self.checks)
    }
    pub fn ok(&mut self, item: impl Into<String>, detail: impl Into<String>) {
        self.push(CheckStatus::Ok, item, detail);
    }
    pub fn warn(&mut self, item: impl Into<String>, detail: impl Into<String>) {
        self.push(CheckStatus::Warn, item, detail);
    }
    pub fn fail(&mut self, item: impl Into<String>, detail: impl Into<String>) {
        self.push(CheckStatus::Fail, item, detail);
    }
    pub fn info(&mut self, item: impl Into<String>, detail: impl Into<String>) {
        self.push(CheckStatus::Info, item, detail);
    }
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// The checks that failed so far.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .collect()
    }

    /// Passes unless a check failed; then fails with `message`, which should say what was
    /// expected, what was found, where, and how to fix it.
    pub fn finish(self, message: impl FnOnce(&[&Check]) -> String) -> Outcome {
        let (verdict, message) = if self.any_failed() {
            (
                Verdict::Failed,
                Some(cap_message(message(&self.failures()))),
            )
        } else {
            (Verdict::Passed, None)
        };
        let (notes, checks) = self.all_notes();
        Outcome {
            verdict,
            message,
            notes,
            checks,
            waited: Duration::ZERO,
        }
    }

    /// Fails at once, keeping what was recorded.
    pub fn fail_now(self, message: impl Into<String>) -> Outcome {
        let message = Some(cap_message(message.into()));
        let (notes, checks) = self.all_notes();
        Outcome {
            verdict: Verdict::Failed,
            message,
            notes,
            checks,
            waited: Duration::ZERO,
        }
    }
}

/// `message` cut to [`MESSAGE_CAP`] bytes at a character boundary, saying how much was cut.
pub fn cap_message(mut message: String) -> String {
    if message.len() > MESSAGE_CAP {
        let cut = message.floor_char_boundary(MESSAGE_CAP);
        let rest = message.len() - cut;
        message.truncate(cut);
        message.push_str(&format!(" ... ({rest} more bytes not shown)"));
    }
    message
}

/// The failed checks, `item detail; item detail`, for a failure message.
pub fn describe(failed: &[&Check]) -> String {
    let described: Vec<String> = failed
        .iter()
        .map(|c| format!("{} {}", c.item, c.detail))
        .collect();
    join_listed(&described, "; ")
}

/// A comma-separated list for messages.
pub fn join_items<S: AsRef<str>>(items: &[S]) -> String {
    join_listed(items, ", ")
}

/// How many items a message lists before saying how many more there are.
pub const LISTED_ITEMS: usize = 20;

/// The first [`LISTED_ITEMS`] of `items` joined by `sep`, then `and N more` for the rest: a
/// message names what to fix without growing with what the node holds.
pub fn join_listed<S: AsRef<str>>(items: &[S], sep: &str) -> String {
    let mut out = items
        .iter()
        .take(LISTED_ITEMS)
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(sep);
    if items.len() > LISTED_ITEMS {
        out.push_str(&format!("{sep}and {} more", items.len() - LISTED_ITEMS));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_follow_the_upstream_convention_and_are_unique() {
        let mut seen = HashSet::new();
        for t in registry() {
            let name = t.name();
            assert!(name.starts_with("[sig-node] "), "{name}");
            // Upstream's names carry their tags in brackets, not always at the end:
            // `[sig-node] PodOSRejection [NodeConformance] Kubelet should ...`.
            assert!(
                name[11..].contains('[') && name.ends_with(|c: char| c != ' '),
                "{name}"
            );
            assert!(seen.insert(name.clone()), "duplicate test name {name}");
        }
        assert!(!seen.is_empty());
    }

    #[test]
    fn a_test_lists_a_bounded_number_of_checks_and_counts_the_rest() {
        let mut r = Recorder::new();
        for i in 0..1000 {
            r.ok(format!("ok {i}"), "fine");
        }
        for i in 0..300 {
            r.fail(format!("bad {i}"), "missing");
        }
        let o = r.finish(|f| describe(f).repeat(200));
        assert_eq!(o.verdict, Verdict::Failed);
        assert_eq!(o.checks.len(), 2 * LISTED_CHECKS);
        assert!(
            o.notes.iter().any(|n| n.starts_with(
                "900 more checks not listed (100 failed, 0 warned, 800 ok, 0 for information)"
            )),
            "{:?}",
            o.notes
        );
        let message = o.message.unwrap();
        assert!(message.len() < MESSAGE_CAP + 100, "{}", message.len());
        assert!(message.ends_with("more bytes not shown)"), "{message}");

        assert_eq!(join_listed(&["a", "b"], "; "), "a; b");
        let many: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        assert!(join_listed(&many, ", ").ends_with("19, and 5 more"));
    }

    #[test]
    fn recorder_fails_only_on_failed_checks() {
        let mut r = Recorder::new();
        r.ok("A", "enabled");
        r.warn("B", "not set");
        let o = r.finish(|_| unreachable!());
        assert_eq!(o.verdict, Verdict::Passed);
        assert_eq!(o.warnings(), 1);
        assert!(o.log().contains("[warn] B: not set"));

        let mut r = Recorder::new();
        r.fail("C", "missing");
        let o = r.finish(|f| format!("bad: {}", f[0].item));
        assert_eq!(o.verdict, Verdict::Failed);
        assert_eq!(o.message.as_deref(), Some("bad: C"));
    }
}
