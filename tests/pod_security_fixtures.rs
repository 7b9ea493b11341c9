//! Upstream's Pod Security fixtures (`testdata/<level>/<version>/{pass,fail}/*.yaml` from
//! k8s.io/pod-security-admission) through the library: every pod must be allowed or denied at
//! its level and policy version as upstream's library does. The fixtures live outside the
//! project (`../shared/peers/pod-security-admission/testdata`); without them the test says so
//! and passes, unless NODE_CONFORMANCE_REQUIRE_PSA_FIXTURES=1.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use node_conformance::podsecurity::{self, Level, Version};

fn fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/peers/pod-security-admission/testdata");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("NODE_CONFORMANCE_REQUIRE_PSA_FIXTURES").as_deref() != Ok("1"),
        "NODE_CONFORMANCE_REQUIRE_PSA_FIXTURES=1 but {} is missing",
        dir.display()
    );
    eprintln!(
        "skipped: no Pod Security fixtures at {} (set NODE_CONFORMANCE_REQUIRE_PSA_FIXTURES=1 to require them)",
        dir.display()
    );
    None
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn every_upstream_fixture_agrees_at_its_level_and_version() {
    let Some(root) = fixtures() else { return };
    let (mut agreed, mut total) = (0, 0);
    let mut disagreements = Vec::new();
    let mut newest = 0;
    // The library's own time, without reading and parsing the files (scripts/bench.sh prints
    // it from a release build; the target there is under 0.5 s for all fixtures).
    let mut evaluating = std::time::Duration::ZERO;
    for level_dir in entries(&root).into_iter().filter(|p| p.is_dir()) {
        let level_name = level_dir.file_name().unwrap().to_string_lossy().to_string();
        let level = Level::parse(&level_name).unwrap();
        for version_dir in entries(&level_dir) {
            let version_name = version_dir
                .file_name()
                .unwrap()
                .to_string_lossy()
                .to_string();
            let version = Version::parse(&version_name).unwrap();
            if let Version::V1(m) = version {
                newest = newest.max(m);
            }
            for (outcome, allowed) in [("pass", true), ("fail", false)] {
                let dir = version_dir.join(outcome);
                if !dir.is_dir() {
                    continue;
                }
                for file in entries(&dir) {
                    total += 1;
                    let text = std::fs::read_to_string(&file).unwrap();
                    let pod: Pod = match serde_saphyr::from_str(&text) {
                        Ok(p) => p,
                        Err(e) => {
                            disagreements.push(format!("{}: unreadable: {e}", file.display()));
                            continue;
                        }
                    };
                    let started = std::time::Instant::now();
                    let eval = podsecurity::evaluate_at(&pod, level, version);
                    evaluating += started.elapsed();
                    if eval.allowed() == allowed {
                        agreed += 1;
                    } else {
                        disagreements.push(format!(
                            "{level_name}/{version_name}/{outcome}/{}: {}",
                            file.file_name().unwrap().to_string_lossy(),
                            if allowed {
                                eval.forbidden_detail()
                            } else {
                                "allowed".to_string()
                            }
                        ));
                    }
                }
            }
        }
    }
    println!(
        "Pod Security fixtures: {agreed} of {total} agree with upstream; evaluating them took {:.1} ms",
        evaluating.as_secs_f64() * 1000.0
    );
    assert!(
        disagreements.is_empty(),
        "{} of {total} disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    assert!(total > 0, "no fixtures under {}", root.display());
    // `latest` is the newest version the fixtures have.
    assert_eq!(newest, podsecurity::NEWEST);
}
