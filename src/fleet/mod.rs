//! `report`: one report for a fleet of nodes, from each node's `results.json`.
//!
//! Inputs are found ([`discover`]), read through the bounded reader and parsed on every core
//! ([`load`]), and kept compactly: each distinct string (test name, message, kernel...) once,
//! each node's test cases as a few integers. The writers ([`junit`], [`json`], [`html`]) then
//! stream from that model, so memory grows with the fleet's distinct facts, not with the size
//! of its files.

pub mod html;
pub mod json;
pub mod junit;

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;

use crate::node::rootfs::{self, FileKind};
use crate::report::facts::NodeFacts;

pub const FLEET_XML: &str = "fleet.xml";
pub const FLEET_JSON: &str = "fleet.json";
pub const FLEET_HTML: &str = "fleet.html";

/// What a node's result dir holds: the file `report` reads.
pub const RESULTS: &str = crate::report::JSON_FILE;

/// An input left out of the report, and why (one line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// The `results.json` files named by `dirs`, in order, and the inputs that name none. Each
/// entry is a node's result dir (holding `results.json`), a directory of such dirs (its
/// subdirectories, one level down, in name order; a subdirectory without `results.json` is
/// reported), or a `results.json` itself. A subdirectory that is `output` (the report's own
/// directory, kept beside the nodes' ones) is passed over.
pub fn discover(dirs: &[PathBuf], output: &Path) -> (Vec<PathBuf>, Vec<Skipped>) {
    let output = std::fs::canonicalize(output).ok();
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let skip = |path: &Path, reason: &str| Skipped {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    for dir in dirs {
        let meta = match std::fs::metadata(dir) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                skipped.push(skip(dir, "does not exist"));
                continue;
            }
            Err(e) => {
                skipped.push(skip(dir, &e.to_string()));
                continue;
            }
        };
        if !meta.is_dir() {
            found.push(dir.clone());
            continue;
        }
        let own = dir.join(RESULTS);
        if std::fs::symlink_metadata(&own).is_ok() {
            found.push(own);
            continue;
        }
        let mut subdirs: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .filter(|p| output.is_none() || std::fs::canonicalize(p).ok() != output)
                .collect(),
            Err(e) => {
                skipped.push(skip(dir, &e.to_string()));
                continue;
            }
        };
        subdirs.sort();
        let before = found.len();
        for sub in &subdirs {
            let file = sub.join(RESULTS);
            if std::fs::symlink_metadata(&file).is_ok() {
                found.push(file);
            } else {
                skipped.push(skip(sub, "holds no results.json"));
            }
        }
        if subdirs.is_empty() && found.len() == before {
            skipped.push(skip(
                dir,
                "holds no results.json, nor any directory that could hold one",
            ));
        }
    }
    (found, skipped)
}

/// A test's verdict, as results.json spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Passed,
    Failed,
    Skipped,
}

/// Every distinct string once; index 0 is the empty string, which stands for "none".
#[derive(Debug)]
pub struct Interner {
    map: HashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
}

impl Default for Interner {
    fn default() -> Self {
        let empty: Arc<str> = Arc::from("");
        Self {
            map: HashMap::from([(Arc::clone(&empty), 0)]),
            strings: vec![empty],
        }
    }
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.map.get(s) {
            return i;
        }
        let i = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
        let s: Arc<str> = Arc::from(s);
        self.strings.push(Arc::clone(&s));
        self.map.insert(s, i);
        i
    }
    pub fn get(&self, i: u32) -> &str {
        self.strings.get(i as usize).map_or("", |s| s)
    }
    pub fn len(&self) -> usize {
        self.strings.len()
    }
    pub fn is_empty(&self) -> bool {
        self.strings.len() <= 1
    }
}

/// One test on one node.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Index into [`Fleet::tests`].
    pub test: u32,
    pub verdict: Verdict,
    /// Seconds.
    pub duration: f32,
    /// The failure message or skip reason (interned; 0: none).
    pub message: u32,
    /// A failure's failed checks, one `item: detail` a line (interned; 0: none).
    pub checks: u32,
}

/// Passed, failed and skipped test counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub tests: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Counts {
    fn add(&mut self, v: Verdict) {
        self.tests += 1;
        match v {
            Verdict::Passed => self.passed += 1,
            Verdict::Failed => self.failed += 1,
            Verdict::Skipped => self.skipped += 1,
        }
    }
}

/// One node's run.
#[derive(Debug)]
pub struct NodeRun {
    /// The results.json it came from.
    pub source: PathBuf,
    pub hostname: String,
    pub run_id: String,
    /// The harness version that made it.
    pub version: String,
    /// RFC 3339.
    pub started: String,
    /// Seconds.
    pub duration: f64,
    pub facts: NodeFacts,
    pub counts: Counts,
    pub cases: Vec<Case>,
}

/// A test known to some node.
#[derive(Debug, Clone)]
pub struct TestInfo {
    pub name: String,
    pub area: String,
}

/// The fleet: every node read, the tests they ran, and the inputs left out.
#[derive(Debug, Default)]
pub struct Fleet {
    pub strings: Interner,
    pub tests: Vec<TestInfo>,
    test_index: HashMap<String, u32>,
    /// Sorted by hostname, then source.
    pub nodes: Vec<NodeRun>,
    pub skipped: Vec<Skipped>,
}

// results.json as read here: what the report needs, borrowed from the file's bytes where no
// escape forces a copy; everything else is skipped by the parser.
#[derive(Deserialize)]
struct RawResults<'a> {
    #[serde(borrow)]
    tool: Cow<'a, str>,
    #[serde(borrow)]
    version: Cow<'a, str>,
    #[serde(borrow)]
    run_id: Cow<'a, str>,
    #[serde(borrow)]
    hostname: Cow<'a, str>,
    #[serde(borrow)]
    started: Cow<'a, str>,
    duration: f64,
    /// Absent from results of harness versions before it was added.
    #[serde(default)]
    node: Option<NodeFacts>,
    #[serde(borrow)]
    tests: Vec<RawTest<'a>>,
}

#[derive(Deserialize)]
struct RawTest<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    area: Cow<'a, str>,
    duration: f64,
    verdict: Verdict,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    checks: Vec<RawCheck<'a>>,
}

#[derive(Deserialize)]
struct RawCheck<'a> {
    #[serde(borrow)]
    item: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    detail: Cow<'a, str>,
}

/// A node's results as parsed on a worker: owned, ready to be interned.
struct Parsed {
    hostname: String,
    run_id: String,
    version: String,
    started: String,
    duration: f64,
    facts: NodeFacts,
    tests: Vec<ParsedTest>,
}

struct ParsedTest {
    name: String,
    area: String,
    verdict: Verdict,
    duration: f32,
    message: Option<String>,
    /// A failure's failed checks, `item: detail` a line.
    checks: Option<String>,
}

/// Reads and checks one results.json; the error is one line saying what is wrong with it.
fn parse(path: &Path) -> Result<Parsed, String> {
    let bytes = rootfs::read_local(path, FileKind::Results).map_err(|e| e.reason())?;
    let raw: RawResults<'_> = serde_json::from_slice(&bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Eof => format!("truncated: {e}"),
            Category::Syntax | Category::Io => format!("not valid JSON: {e}"),
            Category::Data => format!("not a node-conformance results.json: {e}"),
        }
    })?;
    if raw.tool != "node-conformance" {
        return Err(format!(
            "not a node-conformance results.json: its tool is {:?}",
            raw.tool
        ));
    }
    let tests = raw
        .tests
        .into_iter()
        .map(|t| {
            let checks = (t.verdict == Verdict::Failed)
                .then(|| {
                    let mut lines = String::new();
                    for c in t.checks.iter().filter(|c| c.status == "fail") {
                        if !lines.is_empty() {
                            lines.push('\n');
                        }
                        lines.push_str(&c.item);
                        lines.push_str(": ");
                        lines.push_str(&c.detail);
                    }
                    lines
                })
                .filter(|l| !l.is_empty());
            ParsedTest {
                name: t.name.into_owned(),
                area: t.area.into_owned(),
                verdict: t.verdict,
                duration: t.duration as f32,
                message: t.message.map(Cow::into_owned),
                checks,
            }
        })
        .collect();
    Ok(Parsed {
        hostname: raw.hostname.into_owned(),
        run_id: raw.run_id.into_owned(),
        version: raw.version.into_owned(),
        started: raw.started.into_owned(),
        duration: raw.duration,
        facts: raw.node.unwrap_or_default(),
        tests,
    })
}

impl Fleet {
    fn test(&mut self, name: String, area: String) -> u32 {
        if let Some(&i) = self.test_index.get(&name) {
            return i;
        }
        let i = u32::try_from(self.tests.len()).unwrap_or(u32::MAX);
        self.test_index.insert(name.clone(), i);
        self.tests.push(TestInfo { name, area });
        i
    }

    fn add(&mut self, source: PathBuf, p: Parsed) {
        let mut counts = Counts::default();
        let mut cases = Vec::with_capacity(p.tests.len());
        for (at, t) in p.tests.into_iter().enumerate() {
            counts.add(t.verdict);
            // Nodes list their tests in the same order, mostly with the same messages: the
            // previous node's case at this position is a cheaper guess than a hash lookup.
            let guess = self.nodes.last().and_then(|n| n.cases.get(at)).copied();
            let test = match guess {
                Some(g) if self.tests[g.test as usize].name == t.name => g.test,
                _ => self.test(t.name, t.area),
            };
            let message = match (t.message, guess) {
                (None, _) => 0,
                (Some(m), Some(g)) if g.message != 0 && self.strings.get(g.message) == m => {
                    g.message
                }
                (Some(m), _) => self.strings.intern(&m),
            };
            cases.push(Case {
                test,
                verdict: t.verdict,
                duration: t.duration,
                message,
                checks: t.checks.map_or(0, |c| self.strings.intern(&c)),
            });
        }
        self.nodes.push(NodeRun {
            source,
            hostname: p.hostname,
            run_id: p.run_id,
            version: p.version,
            started: p.started,
            duration: p.duration,
            facts: p.facts,
            counts,
            cases,
        });
    }

    /// How many nodes failed at least one test.
    pub fn nodes_failed(&self) -> usize {
        self.nodes.iter().filter(|n| n.counts.failed > 0).count()
    }
}

/// Reads every file of `files` on up to `threads` threads (at least one), skipping (and
/// recording in [`Fleet::skipped`], after `skipped`) those that cannot be read or are not a
/// node-conformance results.json. Nodes come out sorted by hostname, then file.
pub fn load(files: &[PathBuf], skipped: Vec<Skipped>, threads: usize) -> Fleet {
    let mut fleet = Fleet {
        skipped,
        ..Fleet::default()
    };
    let next = AtomicUsize::new(0);
    let mut errors: Vec<(usize, Skipped)> = Vec::new();
    // Bounded: a worker ahead of the interning waits instead of piling up parsed files.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Result<Parsed, String>)>(64);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            let (tx, next) = (tx.clone(), &next);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    if tx.send((i, parse(path))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, parsed) in rx {
            match parsed {
                Ok(p) => fleet.add(files[i].clone(), p),
                Err(reason) => errors.push((
                    i,
                    Skipped {
                        path: files[i].clone(),
                        reason,
                    },
                )),
            }
        }
    });
    errors.sort_by_key(|(i, _)| *i);
    fleet.skipped.extend(errors.into_iter().map(|(_, s)| s));
    fleet
        .nodes
        .sort_by(|a, b| (&a.hostname, &a.source).cmp(&(&b.hostname, &b.source)));
    fleet
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(host: &str, tool: &str) -> String {
        serde_json::json!({
            "tool": tool, "version": "0.1.0", "run_id": "r1", "hostname": host,
            "rootfs": "/", "focus": "", "skip": "", "system_spec": "built-in",
            "started": "2025-01-01T00:00:00Z", "duration": 1.5, "peak_rss_kib": 1, "cpu_seconds": 0.1,
            "counts": {"tests": 2, "passed": 1, "failed": 1, "skipped": 0},
            "node": {"kernel_release": "6.1.0", "os": "Debian", "container_runtime": null,
                     "kubelet_version": null, "architecture": "amd64"},
            "tests": [
                {"name": "a", "area": "A", "tags": [], "selected": true, "duration": 0.5,
                 "verdict": "passed", "message": null, "notes": [], "checks": []},
                {"name": "b \"q\"", "area": "B", "tags": [], "selected": true, "duration": 0.25,
                 "verdict": "failed", "message": "bad", "notes": [],
                 "checks": [{"item": "x", "status": "fail", "detail": "y"},
                            {"item": "z", "status": "ok", "detail": "w"}]}
            ]
        })
        .to_string()
    }

    #[test]
    fn nodes_are_read_and_bad_inputs_named() {
        let t = tempfile::tempdir().unwrap();
        let all = t.path().join("all");
        for (name, body) in [
            ("n2", results("node-2", "node-conformance")),
            ("n1", results("node-1", "node-conformance")),
            ("foreign", results("x", "other-tool")),
            (
                "truncated",
                results("x", "node-conformance")[..100].to_string(),
            ),
            ("garbage", "{not json".to_string()),
            ("array", "[1, 2]".to_string()),
        ] {
            std::fs::create_dir_all(all.join(name)).unwrap();
            std::fs::write(all.join(name).join(RESULTS), body).unwrap();
        }
        std::fs::create_dir_all(all.join("empty")).unwrap();
        std::fs::create_dir_all(all.join("report")).unwrap();
        let (files, skipped) = discover(
            &[all.clone(), t.path().join("missing")],
            &all.join("report"),
        );
        assert_eq!(files.len(), 6);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        let fleet = load(&files, skipped, 2);
        let hosts: Vec<_> = fleet.nodes.iter().map(|n| n.hostname.as_str()).collect();
        assert_eq!(hosts, ["node-1", "node-2"]);
        let reasons: Vec<String> = fleet
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.path.display(), s.reason))
            .collect();
        let has = |part: &str, why: &str| {
            assert!(
                reasons.iter().any(|r| r.contains(part) && r.contains(why)),
                "{part} {why}: {reasons:?}"
            )
        };
        has("missing", "does not exist");
        has("empty", "holds no results.json");
        has("foreign", "its tool is \"other-tool\"");
        has("truncated", "truncated");
        has("garbage", "not valid JSON");
        has("array", "not a node-conformance results.json");
        let n = &fleet.nodes[0];
        assert_eq!(
            n.counts,
            Counts {
                tests: 2,
                passed: 1,
                failed: 1,
                skipped: 0
            }
        );
        assert_eq!(n.facts.kernel_release.as_deref(), Some("6.1.0"));
        let failed = n.cases[1];
        assert_eq!(fleet.strings.get(failed.message), "bad");
        assert_eq!(fleet.strings.get(failed.checks), "x: y");
        assert_eq!(fleet.tests[failed.test as usize].name, "b \"q\"");
    }
}
