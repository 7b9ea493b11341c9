//! `fleet.html`: one self-contained page (inline CSS and script, nothing fetched) that shows
//! the failures grouped by test then node, a node-by-area matrix, filters by architecture,
//! kernel and runtime, and the slowest tests.
//!
//! The fleet is embedded once, compactly (one JSON blob: each distinct string once, nodes as
//! rows of numbers), and the page renders only what is on screen: a page of the matrix at a
//! time, the first nodes of each failed test. 5,000 nodes make a page of about 1.3 MB; messages
//! are shortened (to at least [`MIN_MESSAGE`] characters) when their total would pass
//! [`MESSAGE_BUDGET`], and fleet.json keeps them whole.
//!
//! Filters live in the URL's fragment (`fleet.html#arch=arm64&kernel=6.1.0-18-amd64`,
//! also `runtime=` and `host=` for a part of the hostname), so a filtered view can be linked.

use std::collections::HashMap;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::{Value, json};

use super::{Fleet, Interner, NodeRun, Verdict};

const TEMPLATE: &str = include_str!("fleet.html");
const DATA_MARK: &str = "/*FLEET-DATA*/";

/// The most bytes of failure messages the page holds.
pub const MESSAGE_BUDGET: usize = 2_500_000;
/// The fewest characters a message is cut to when the budget is short.
pub const MIN_MESSAGE: usize = 160;
/// How many of its slowest tests each node contributes to the page's slowest tests.
const SLOWEST_PER_NODE: usize = 5;

/// A cell of the matrix: the worst verdict of a node's tests in an area.
fn cell(verdicts: [bool; 3]) -> char {
    match verdicts {
        [_, true, _] => 'F',
        [true, false, _] => 'P',
        [false, false, true] => 'S',
        [false, false, false] => '-',
    }
}

fn runtime(node: &NodeRun) -> String {
    node.facts
        .container_runtime
        .as_ref()
        .map(|r| match &r.version {
            Some(v) => format!("{} {v}", r.name),
            None => r.name.clone(),
        })
        .unwrap_or_default()
}

/// `s` cut to at most `max` characters, with an ellipsis when cut.
fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// The page's data: see the script in fleet.html for how it reads it.
fn data(fleet: &Fleet) -> Value {
    let mut strings = Interner::default();
    let mut areas: Vec<&str> = Vec::new();
    let mut area_of: HashMap<&str, usize> = HashMap::new();
    let test_area: Vec<usize> = fleet
        .tests
        .iter()
        .map(|t| {
            *area_of.entry(t.area.as_str()).or_insert_with(|| {
                areas.push(&t.area);
                areas.len() - 1
            })
        })
        .collect();

    // Failures by test: (node, message) pairs.
    let mut fails: Vec<Vec<(usize, u32)>> = vec![Vec::new(); fleet.tests.len()];
    for (n, node) in fleet.nodes.iter().enumerate() {
        for case in node.cases.iter().filter(|c| c.verdict == Verdict::Failed) {
            fails[case.test as usize].push((n, case.message));
        }
    }
    let mut used: Vec<u32> = fails.iter().flatten().map(|&(_, m)| m).collect();
    used.sort_unstable();
    used.dedup();
    let total: usize = used.iter().map(|&m| fleet.strings.get(m).len()).sum();
    let cap = if total > MESSAGE_BUDGET {
        (MESSAGE_BUDGET / used.len().max(1)).max(MIN_MESSAGE)
    } else {
        usize::MAX
    };
    let mut message_ids: HashMap<u32, u32> = HashMap::new();
    let mut message = |strings: &mut Interner, m: u32| {
        *message_ids
            .entry(m)
            .or_insert_with(|| strings.intern(&shorten(fleet.strings.get(m), cap)))
    };

    let mut nodes = Vec::with_capacity(fleet.nodes.len());
    let mut slow = Vec::new();
    for (n, node) in fleet.nodes.iter().enumerate() {
        let f = &node.facts;
        let mut matrix = vec![[false; 3]; areas.len()];
        for case in &node.cases {
            let v = match case.verdict {
                Verdict::Passed => 0,
                Verdict::Failed => 1,
                Verdict::Skipped => 2,
            };
            matrix[test_area[case.test as usize]][v] = true;
        }
        let matrix: String = matrix.into_iter().map(cell).collect();
        let mut own: Vec<_> = node
            .cases
            .iter()
            .filter(|c| c.verdict != Verdict::Skipped)
            .collect();
        own.sort_by(|a, b| b.duration.total_cmp(&a.duration));
        for case in own.into_iter().take(SLOWEST_PER_NODE) {
            slow.extend([
                json!(n),
                json!(case.test),
                json!((f64::from(case.duration) * 1000.0).round() as u64),
            ]);
        }
        nodes.push(json!([
            node.hostname,
            strings.intern(f.kernel_release.as_deref().unwrap_or("")),
            strings.intern(f.os.as_deref().unwrap_or("")),
            strings.intern(&runtime(node)),
            strings.intern(f.kubelet_version.as_deref().unwrap_or("")),
            strings.intern(f.architecture.as_deref().unwrap_or("")),
            node.counts.passed,
            node.counts.failed,
            node.counts.skipped,
            (node.duration * 1000.0).round() as u64,
            matrix,
        ]));
    }
    let fails: Vec<Value> = fails
        .into_iter()
        .enumerate()
        .filter(|(_, f)| !f.is_empty())
        .map(|(t, f)| {
            let flat: Vec<u32> = f
                .into_iter()
                .flat_map(|(n, m)| [n as u32, message(&mut strings, m)])
                .collect();
            json!([t, flat])
        })
        .collect();
    let all: Vec<&str> = (0..strings.len() as u32).map(|i| strings.get(i)).collect();
    json!({
        "version": crate::version(),
        "generated": chrono::Utc::now().to_rfc3339(),
        "inputsSkipped": fleet.skipped.len(),
        "messageCap": if cap == usize::MAX { Value::Null } else { json!(cap) },
        "s": all,
        "areas": areas,
        "tests": fleet.tests.iter().zip(&test_area).map(|(t, a)| json!([t.name, a])).collect::<Vec<_>>(),
        "nodes": nodes,
        "fails": fails,
        "slow": slow,
    })
}

/// Writes JSON so that it cannot end the `<script>` element it sits in: `<`, `>` and `&`
/// (only ever inside strings in JSON) become `\u003c`, `\u003e`, `\u0026`.
struct ScriptSafe<W: Write>(W);

impl<W: Write> Write for ScriptSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut start = 0;
        for (i, b) in buf.iter().enumerate() {
            let r: &[u8] = match b {
                b'<' => b"\\u003c",
                b'>' => b"\\u003e",
                b'&' => b"\\u0026",
                _ => continue,
            };
            self.0.write_all(&buf[start..i])?;
            self.0.write_all(r)?;
            start = i + 1;
        }
        self.0.write_all(&buf[start..])?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Writes the page to `w`. Errors are `w`'s.
pub fn write(fleet: &Fleet, w: &mut impl Write) -> io::Result<()> {
    let (head, tail) = TEMPLATE
        .split_once(DATA_MARK)
        .ok_or_else(|| io::Error::other("the page template lacks its data mark"))?;
    w.write_all(head.as_bytes())?;
    let data = data(fleet);
    data.serialize(&mut serde_json::Serializer::new(ScriptSafe(&mut *w)))
        .map_err(io::Error::other)?;
    w.write_all(tail.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_data_cannot_close_its_script() {
        let mut out = Vec::new();
        ScriptSafe(&mut out)
            .write_all(br#"{"m":"</script><b>&"}"#)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('<') && !text.contains('&'));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["m"], "</script><b>&");
    }

    #[test]
    fn long_messages_are_cut_at_a_character() {
        assert_eq!(shorten("ééé", 2), "éé…");
        assert_eq!(shorten("ab", 2), "ab");
    }
}
