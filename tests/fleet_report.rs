//! `node-conformance report` as an operator runs it: over the result dirs of a fleet, made from
//! genuine runs against the fixture roots and varied, with broken inputs among them. The page
//! is loaded in a real headless browser (Debian's chromium) where one is installed; with
//! NODE_CONFORMANCE_REQUIRE_BROWSER=1 (CI) it must be.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::{command, fixture, run_on};
use quick_junit::{Report, TestCaseStatus};
use serde_json::{Value, json};

/// `uname -m` as Kubernetes names it.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    }
}

/// Genuine results.json of the System Verification group on two fixture roots: a healthy one
/// and one whose kernel lacks required options. Made once for all the tests here.
fn genuine() -> &'static (Value, Value) {
    static RESULTS: OnceLock<(Value, Value)> = OnceLock::new();
    RESULTS.get_or_init(|| {
        let healthy = run_on(&fixture("healthy-v2"), &["--focus", "System Verification"]);
        assert_eq!(healthy.code(), 0, "{}", healthy.explain());
        let lacking = run_on(
            &fixture("missing-options"),
            &["--focus", "System Verification"],
        );
        assert_eq!(lacking.code(), 1, "{}", lacking.explain());
        (healthy.json(), lacking.json())
    })
}

fn write_node(dir: &Path, name: &str, results: &Value) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("results.json"),
        serde_json::to_string_pretty(results).unwrap(),
    )
    .unwrap();
    d
}

fn counts(results: &Value) -> (usize, usize, usize) {
    let tests = results["tests"].as_array().unwrap();
    let n = |v: &str| tests.iter().filter(|t| t["verdict"] == v).count();
    (n("passed"), n("failed"), n("skipped"))
}

/// A message a node could write: markup, quotes, an escape sequence, a bell, a newline.
const HOSTILE: &str = "bad <script>alert(1)</script> & \"quoted\" \u{1b}[31mred\u{7} line\nnext";

/// A fleet of four nodes and the broken inputs beside them:
/// node-a (healthy, amd64), node-b (kernel options missing: fails), node-c (healthy but arm64 with
/// containerd, one test failed with [`HOSTILE`]), node-d (healthy, results of an earlier version,
/// without the node object).
struct Fleet {
    _dir: tempfile::TempDir,
    root: PathBuf,
    nodes: PathBuf,
    out: PathBuf,
}

fn fleet() -> Fleet {
    let (healthy, lacking) = genuine();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let nodes = root.join("nodes");
    let mut a = healthy.clone();
    a["hostname"] = json!("node-a");
    write_node(&nodes, "a", &a);
    let mut b = lacking.clone();
    b["hostname"] = json!("node-b");
    write_node(&nodes, "b", &b);
    let mut c = healthy.clone();
    c["hostname"] = json!("node-c");
    c["node"]["architecture"] = json!("arm64");
    c["node"]["container_runtime"] = json!({"name": "containerd", "version": "1.7.24"});
    let test = c["tests"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["name"].as_str().unwrap().contains("IPv4 forwarding"))
        .unwrap();
    test["verdict"] = json!("failed");
    test["message"] = json!(HOSTILE);
    test["duration"] = json!(7.25);
    write_node(&nodes, "c", &c);
    let mut d = healthy.clone();
    d["hostname"] = json!("node-d");
    d.as_object_mut().unwrap().remove("node");
    write_node(&nodes, "d", &d);

    // Broken inputs.
    let text = serde_json::to_string_pretty(healthy).unwrap();
    let bad = |name: &str, body: &str| {
        let d = nodes.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("results.json"), body).unwrap();
    };
    bad("truncated", &text[..text.len() / 2]);
    bad("garbage", "<html>not json</html>");
    bad(
        "foreign",
        r#"{"tool": "sonobuoy", "version": "1", "run_id": "x", "hostname": "h",
            "started": "", "duration": 1, "tests": []}"#,
    );
    bad("other-json", r#"{"apiVersion": "v1", "kind": "Pod"}"#);
    std::fs::create_dir_all(nodes.join("empty")).unwrap();
    let fifo = nodes.join("fifo");
    std::fs::create_dir_all(&fifo).unwrap();
    let made = Command::new("mkfifo")
        .arg(fifo.join("results.json"))
        .status()
        .unwrap();
    assert!(made.success());
    let huge = nodes.join("huge");
    std::fs::create_dir_all(&huge).unwrap();
    std::fs::File::create(huge.join("results.json"))
        .unwrap()
        .set_len(33 << 20)
        .unwrap();
    let out = root.join("out");
    Fleet {
        _dir: dir,
        root,
        nodes,
        out,
    }
}

fn report(args: &[&Path], out: &Path) -> std::process::Output {
    command()
        .arg("report")
        .arg("--output")
        .arg(out)
        .args(args)
        .output()
        .unwrap()
}

fn explain(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn results_json_says_what_the_node_is() {
    let (healthy, lacking) = genuine();
    let node = &healthy["node"];
    assert_eq!(node["kernel_release"], "6.1.0-18-amd64", "{node}");
    assert_eq!(node["os"], "Fixture Linux (healthy-v2)");
    assert_eq!(node["architecture"], arch());
    assert_eq!(node["container_runtime"], Value::Null);
    assert_eq!(node["kubelet_version"], Value::Null);
    assert_eq!(lacking["node"]["kernel_release"], "6.6.0-test");
    assert_eq!(lacking["node"]["os"], "Fixture Linux (missing-options)");
    // The fields other tools read are all still there.
    for field in [
        "tool",
        "version",
        "run_id",
        "hostname",
        "rootfs",
        "focus",
        "skip",
        "system_spec",
        "started",
        "duration",
        "peak_rss_kib",
        "cpu_seconds",
        "counts",
        "tests",
    ] {
        assert!(healthy.get(field).is_some(), "{field} missing");
    }

    // Without the tests that find them, the kernel and the distribution are read from the
    // root's files.
    let run = run_on(&fixture("old-kernel"), &["--focus", "IPv4 forwarding"]);
    let node = &run.json()["node"];
    assert_eq!(
        node["kernel_release"],
        "4.19.0-26-amd64",
        "{}",
        run.explain()
    );
    assert_eq!(node["os"], "Fixture Linux (old-kernel)");
    assert_eq!(node["kubelet_version"], Value::Null);
    // The kubelet package's version, from dpkg's database in the root.
    let run = run_on(
        &fixture("cgroup-v1-kubelet-1.35"),
        &["--focus", "IPv4 forwarding"],
    );
    assert_eq!(
        run.json()["node"]["kubelet_version"],
        "v1.35.0",
        "{}",
        run.explain()
    );
}

#[test]
fn one_report_for_the_fleet_with_broken_inputs_named_and_skipped() {
    let f = fleet();
    let missing = f.root.join("missing");
    let out = report(&[&f.nodes, &missing], &f.out);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (name, why) in [
        ("truncated", "truncated"),
        ("garbage", "not valid JSON"),
        ("foreign", "its tool is \"sonobuoy\""),
        ("other-json", "not a node-conformance results.json"),
        ("empty", "holds no results.json"),
        ("fifo", "FIFO"),
        ("huge", "larger than 32 MiB"),
        ("missing", "does not exist"),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&format!("/{name}")) && l.contains(why)),
            "{name}: {why}\n{}",
            explain(&out)
        );
    }
    assert_eq!(stderr.lines().count(), 8, "{}", explain(&out));

    // fleet.xml: one suite per node, by hostname, with its counts; messages escaped.
    let xml = std::fs::read_to_string(f.out.join("fleet.xml")).unwrap();
    let junit = Report::deserialize_from_str(&xml).expect("fleet.xml parses");
    let names: Vec<&str> = junit.test_suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["node-a", "node-b", "node-c", "node-d"]);
    let (healthy, lacking) = genuine();
    let (p, fl, s) = counts(healthy);
    let (op, ofl, os) = counts(lacking);
    for (suite, (passed, failed, skipped)) in
        junit
            .test_suites
            .iter()
            .zip([(p, fl, s), (op, ofl, os), (p - 1, fl + 1, s), (p, fl, s)])
    {
        assert_eq!(
            suite.test_cases.len(),
            passed + failed + skipped,
            "{}",
            suite.name.as_str()
        );
        let failures = suite
            .test_cases
            .iter()
            .filter(|c| matches!(c.status, TestCaseStatus::NonSuccess { .. }))
            .count();
        let skips = suite
            .test_cases
            .iter()
            .filter(|c| matches!(c.status, TestCaseStatus::Skipped { .. }))
            .count();
        assert_eq!(
            (failures, skips),
            (failed, skipped),
            "{}",
            suite.name.as_str()
        );
    }
    let c = &junit.test_suites[2];
    let forwarding = c
        .test_cases
        .iter()
        .find(|t| t.name.as_str().contains("IPv4 forwarding"))
        .unwrap();
    match &forwarding.status {
        TestCaseStatus::NonSuccess { message, .. } => {
            let m = message.as_ref().unwrap().as_str();
            assert_eq!(
                m,
                "bad <script>alert(1)</script> & \"quoted\" [31mred line\nnext"
            );
        }
        other => panic!("{other:?}"),
    }
    let b = &junit.test_suites[1];
    assert!(
        b.test_cases.iter().any(|t| {
            t.name.as_str().contains("kernel config")
                && matches!(t.status, TestCaseStatus::NonSuccess { .. })
        }) || b.test_cases.iter().any(|t| {
            t.name.as_str().contains("kernel release")
                && matches!(t.status, TestCaseStatus::NonSuccess { .. })
        }),
        "node-b fails a kernel test"
    );

    // fleet.json: per node its facts, per test who failed it.
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(f.out.join("fleet.json")).unwrap()).unwrap();
    assert_eq!(doc["counts"]["nodes"], 4);
    assert_eq!(doc["counts"]["nodes_failed"], 2);
    assert_eq!(doc["counts"]["inputs_skipped"], 8);
    let nodes = doc["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["hostname"], "node-a");
    assert_eq!(nodes[0]["kernel_release"], "6.1.0-18-amd64");
    assert_eq!(nodes[0]["os"], "Fixture Linux (healthy-v2)");
    assert_eq!(nodes[0]["architecture"], arch());
    assert_eq!(nodes[0]["counts"]["passed"], p);
    assert_eq!(nodes[1]["kernel_release"], "6.6.0-test");
    assert_eq!(nodes[1]["counts"]["failed"], ofl);
    assert_eq!(
        nodes[2]["container_runtime"],
        json!({"name": "containerd", "version": "1.7.24"})
    );
    assert_eq!(nodes[2]["architecture"], "arm64");
    assert_eq!(nodes[3]["kernel_release"], Value::Null);
    assert!(nodes[0]["run_id"].is_string() && nodes[0]["duration"].is_number());
    let tests = doc["tests"].as_array().unwrap();
    let forwarding = tests
        .iter()
        .find(|t| t["name"].as_str().unwrap().contains("IPv4 forwarding"))
        .unwrap();
    assert_eq!(
        forwarding["failures"],
        json!([{"node": "node-c", "message": HOSTILE}])
    );
    assert_eq!(forwarding["passed"], 3);
    let failed_by_b: usize = tests
        .iter()
        .filter(|t| {
            t["failures"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["node"] == "node-b")
        })
        .count();
    assert_eq!(failed_by_b, ofl);

    // A second report over the same output replaces the files, leaving no temporary ones.
    let again = report(&[&f.nodes], &f.out);
    assert_eq!(again.status.code(), Some(0), "{}", explain(&again));
    let mut names: Vec<String> = std::fs::read_dir(&f.out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["fleet.html", "fleet.json", "fleet.xml"]);

    // An output dir kept beside the nodes' dirs is not taken for a node's.
    let inside = f.nodes.join("report");
    for _ in 0..2 {
        let out = report(&[&f.nodes], &inside);
        assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 7, "{}", explain(&out));
        assert!(!stderr.contains("/report"), "{}", explain(&out));
    }
}

#[test]
fn a_node_dir_a_results_file_and_nothing_readable() {
    let f = fleet();
    // A node's own dir, and a results.json named directly.
    let out = report(
        &[&f.nodes.join("a"), &f.nodes.join("b").join("results.json")],
        &f.out,
    );
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    assert!(out.stderr.is_empty(), "{}", explain(&out));
    let xml = std::fs::read_to_string(f.out.join("fleet.xml")).unwrap();
    let junit = Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(junit.test_suites.len(), 2);

    // Nothing readable: exit 2, the inputs named, nothing written.
    let none = f.root.join("none");
    let out = report(&[&f.nodes.join("garbage"), &f.root.join("missing")], &none);
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("garbage") && stderr.contains("missing"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing to report"), "{stderr}");
    assert!(!none.exists());

    // No DIR at all is a usage error.
    let out = command().arg("report").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
}

/// Debian's chromium, when installed.
fn browser() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
    })
}

/// The page's DOM after its script ran, as chromium shows it at `url`.
fn dump_dom(chromium: &Path, url: &str, profile: &Path) -> String {
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).map(|_| s)
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap().unwrap()
}

/// Every value of `attr` on the elements whose opening tag contains `marker`, in order.
fn attrs(dom: &str, marker: &str, attr: &str) -> Vec<String> {
    let re = regex_lite::Regex::new(&format!(
        r#"<[a-z]+ [^>]*{}[^>]*>"#,
        regex_lite::escape(marker)
    ))
    .unwrap();
    let value = regex_lite::Regex::new(&format!(r#" {attr}="([^"]*)""#)).unwrap();
    re.find_iter(dom)
        .filter_map(|m| value.captures(m.as_str()).map(|c| c[1].to_string()))
        .collect()
}

#[test]
fn the_page_in_a_real_browser() {
    let Some(chromium) = browser() else {
        if std::env::var_os("NODE_CONFORMANCE_REQUIRE_BROWSER").is_some_and(|v| v == "1") {
            panic!("NODE_CONFORMANCE_REQUIRE_BROWSER=1 but no chromium on PATH");
        }
        eprintln!(
            "SKIPPED the_page_in_a_real_browser: no chromium on PATH \
             (apt-get install chromium; CI sets NODE_CONFORMANCE_REQUIRE_BROWSER=1)"
        );
        return;
    };
    let f = fleet();
    let out = report(&[&f.nodes], &f.out);
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let page = f.out.join("fleet.html");
    let html = std::fs::read_to_string(&page).unwrap();
    for remote in ["http://", "https://", "<link", "src=", "@import", "url("] {
        assert!(!html.contains(remote), "the page loads nothing: {remote}");
    }
    let url = format!("file://{}", page.display());
    let profile = f.root.join("profile");

    let dom = dump_dom(&chromium, &url, &profile);
    assert!(dom.contains("data-ready=\"1\""), "the script ran:\n{dom}");
    // Failures grouped by test, then node, with the message as text (never as markup).
    let tests = attrs(&dom, "class=\"fail-test\"", "data-test");
    assert!(
        tests.iter().any(|t| t.contains("IPv4 forwarding")),
        "{tests:?}"
    );
    assert!(
        tests.iter().any(|t| t.contains("kernel")),
        "node-b's kernel failures: {tests:?}"
    );
    let failing: Vec<String> = attrs(&dom, "class=\"fail-node\"", "data-node");
    assert!(
        failing.iter().all(|n| n == "node-b" || n == "node-c"),
        "{failing:?}"
    );
    assert!(failing.contains(&"node-c".to_string()));
    assert!(
        dom.contains("bad &lt;script&gt;alert(1)&lt;/script&gt; &amp; \"quoted\""),
        "the message is shown as text"
    );
    assert!(!dom.contains("<script>alert(1)"), "no markup from a node");
    // The matrix: a row per node, a cell per area.
    let rows = attrs(&dom, "class=\"node-row\"", "data-node");
    let mut sorted = rows.clone();
    sorted.sort();
    assert_eq!(sorted, ["node-a", "node-b", "node-c", "node-d"]);
    assert_eq!(rows[0], "node-b", "the node with the most failures first");
    let statuses = attrs(&dom, "data-status=", "data-status");
    assert!(statuses.contains(&"fail".to_string()) && statuses.contains(&"pass".to_string()));
    assert!(dom.contains("data-area=\"System Verification\""));
    // The slowest tests, slowest first: node-c's 7.25 s forwarding test leads.
    let slow = attrs(&dom, "class=\"slow-row\"", "data-ms");
    let ms: Vec<u64> = slow.iter().map(|s| s.parse().unwrap()).collect();
    assert_eq!(ms[0], 7250, "{slow:?}");
    assert!(ms.windows(2).all(|w| w[0] >= w[1]), "{ms:?}");
    assert_eq!(attrs(&dom, "class=\"slow-row\"", "data-node")[0], "node-c");
    assert!(dom.contains("data-shown=\"4\""));

    // Filtered through the URL: only the arm64 node (node-d's results predate the node
    // object: its architecture is unknown), and only its failures.
    let dom = dump_dom(&chromium, &format!("{url}#arch=arm64"), &profile);
    assert!(dom.contains("data-ready=\"1\""));
    assert_eq!(attrs(&dom, "class=\"node-row\"", "data-node"), ["node-c"]);
    assert!(dom.contains("data-shown=\"1\""));
    assert_eq!(attrs(&dom, "class=\"fail-node\"", "data-node"), ["node-c"]);
    let dom = dump_dom(&chromium, &format!("{url}#kernel=6.1.0-18-amd64"), &profile);
    let mut rows = attrs(&dom, "class=\"node-row\"", "data-node");
    rows.sort();
    assert_eq!(rows, ["node-a", "node-c"]);
    assert!(
        attrs(&dom, "class=\"node-row\"", "data-kernel")
            .iter()
            .all(|k| k == "6.1.0-18-amd64")
    );
    let dom = dump_dom(&chromium, &format!("{url}#arch=(unknown)"), &profile);
    assert_eq!(attrs(&dom, "class=\"node-row\"", "data-node"), ["node-d"]);

    // By kernel and runtime together.
    let dom = dump_dom(
        &chromium,
        &format!("{url}#kernel=6.6.0-test&runtime=(unknown)"),
        &profile,
    );
    assert_eq!(attrs(&dom, "class=\"node-row\"", "data-node"), ["node-b"]);
    let dom = dump_dom(
        &chromium,
        &format!("{url}#runtime=containerd%201.7.24"),
        &profile,
    );
    assert_eq!(attrs(&dom, "class=\"node-row\"", "data-node"), ["node-c"]);
}
