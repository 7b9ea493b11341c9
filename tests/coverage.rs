//! The coverage manifest (src/suite/upstream/nodeconformance.tsv) against the registry, against
//! upstream's own list (../shared/reference/nodeconformance, required in CI with
//! NODE_CONFORMANCE_REQUIRE_REFERENCE=1) and against the README's table. Prints
//! `P of U upstream NodeConformance tests ported (A not applicable, R pending)`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const MANIFEST: &str = include_str!("../src/suite/upstream/nodeconformance.tsv");

#[derive(Debug)]
struct Entry {
    area: String,
    source: String,
    status: Status,
    name: String,
}

#[derive(Debug, PartialEq, Eq)]
enum Status {
    Ported,
    NotApplicable(String),
    Pending(u32),
}

fn entries() -> Vec<Entry> {
    MANIFEST
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 4, "four tab-separated columns: {l:?}");
            let status = match cols[2] {
                "ported" => Status::Ported,
                s if s.starts_with("not applicable: ") && s.len() > 20 => {
                    Status::NotApplicable(s["not applicable: ".len()..].to_string())
                }
                s => Status::Pending(
                    s.strip_prefix("pending #")
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("unknown status {s:?} in {l:?}")),
                ),
            };
            let (file, version) = cols[1]
                .split_once('@')
                .unwrap_or_else(|| panic!("source without @version: {l:?}"));
            assert!(
                file.starts_with("test/e2e/common/") || file.starts_with("test/e2e_node/"),
                "{l:?}"
            );
            if file.starts_with("test/e2e/common/") {
                assert_eq!(version, "v1.30.2", "{l:?}");
            } else {
                assert!(!version.is_empty(), "{l:?}");
            }
            Entry {
                area: cols[0].to_string(),
                source: file.to_string(),
                status,
                name: cols[3].to_string(),
            }
        })
        .collect()
}

#[test]
fn every_ported_test_is_registered_under_upstreams_exact_name() {
    let entries = entries();
    let mut seen = BTreeSet::new();
    for e in &entries {
        assert!(seen.insert(&e.name), "listed twice: {}", e.name);
        assert!(
            e.name.contains("[NodeConformance]"),
            "not a NodeConformance test: {}",
            e.name
        );
    }
    let registered: BTreeSet<String> = node_conformance::suite::registry()
        .iter()
        .map(node_conformance::suite::Test::name)
        .collect();
    for e in &entries {
        let is = registered.contains(&e.name);
        match e.status {
            Status::Ported => assert!(is, "marked ported, not registered: {}", e.name),
            _ => assert!(!is, "registered but marked {:?}: {}", e.status, e.name),
        }
    }
    let (ported, na, pending) = entries
        .iter()
        .fold((0, 0, 0), |(p, n, r), e| match e.status {
            Status::Ported => (p + 1, n, r),
            Status::NotApplicable(_) => (p, n + 1, r),
            Status::Pending(_) => (p, n, r + 1),
        });
    println!(
        "{ported} of {} upstream NodeConformance tests ported ({na} not applicable, {pending} pending)",
        entries.len()
    );
}

#[test]
fn the_manifest_lists_exactly_upstreams_common_tests() {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/nodeconformance/e2e-common-v1.30.2.txt");
    let Ok(text) = std::fs::read_to_string(&reference) else {
        assert!(
            std::env::var_os("NODE_CONFORMANCE_REQUIRE_REFERENCE").is_none(),
            "{} is required",
            reference.display()
        );
        eprintln!("SKIPPED: no {}", reference.display());
        return;
    };
    let upstream: BTreeSet<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let entries = entries();
    let listed: BTreeSet<&str> = entries
        .iter()
        .filter(|e| e.source.starts_with("test/e2e/common/"))
        .map(|e| e.name.as_str())
        .collect();
    let missing: Vec<_> = upstream.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&upstream).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not listed: {missing:#?}\nnot upstream's: {extra:#?}"
    );
}

/// The README's table: per area, its source, how many tests, ported, not applicable, pending.
fn table() -> String {
    let mut areas: BTreeMap<(String, String), [usize; 4]> = BTreeMap::new();
    let mut pending_in: BTreeMap<(String, String), BTreeSet<u32>> = BTreeMap::new();
    for e in entries() {
        let key = (e.area.clone(), e.source.clone());
        let n = areas.entry(key.clone()).or_default();
        n[0] += 1;
        match e.status {
            Status::Ported => n[1] += 1,
            Status::NotApplicable(_) => n[2] += 1,
            Status::Pending(issue) => {
                n[3] += 1;
                pending_in.entry(key).or_default().insert(issue);
            }
        }
    }
    let mut out = String::from(
        "| area | upstream source | tests | ported | not applicable | pending |\n|---|---|---|---|---|---|\n",
    );
    let mut total = [0; 4];
    for ((area, source), n) in &areas {
        for (t, v) in total.iter_mut().zip(n) {
            *t += v;
        }
        let issues: Vec<String> = pending_in
            .get(&(area.clone(), source.clone()))
            .map(|s| s.iter().map(|i| format!("#{i}")).collect())
            .unwrap_or_default();
        let pending = if n[3] == 0 {
            "0".to_string()
        } else {
            format!("{} ({})", n[3], issues.join(", "))
        };
        out.push_str(&format!(
            "| {area} | `{source}` | {} | {} | {} | {pending} |\n",
            n[0], n[1], n[2]
        ));
    }
    out.push_str(&format!(
        "| **all** | | {} | {} | {} | {} |\n",
        total[0], total[1], total[2], total[3]
    ));
    out
}

#[test]
fn the_readme_shows_the_manifest_by_area() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let want = table();
    assert!(
        readme.contains(&want),
        "the README's coverage table is not the manifest's; it should read:\n\n{want}"
    );
}
