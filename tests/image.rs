//! End to end: build the amd64 image with `docker build` and run it the way the README says.

mod common;

use std::process::Command;

use common::{Status, docker_available, message, static_binary, status};

const PRIVILEGED: &[&str] = &["--privileged"];
// Where the bounding set lacks CAP_SYS_RESOURCE, --privileged fails with "unable to apply
// caps"; this is the closest the machine allows (the README says so too).
const FALLBACK: &[&str] = &[
    "--cap-add=ALL",
    "--cap-drop=SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "--pid=host",
];

#[test]
fn the_amd64_image_builds_offline_and_runs_as_documented() {
    if !docker_available() {
        return;
    }
    let Some(bin) = static_binary() else { return };
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(&bin, context.path().join("node-conformance")).unwrap();
    let tag = format!("node-conformance-amd64:e2e-{}", std::process::id());
    let dockerfile = concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile.amd64");
    let build = Command::new("docker")
        .args([
            "build",
            "-q",
            "-f",
            dockerfile,
            "--build-arg",
            "VERSION=e2e",
            "--build-arg",
            "REVISION=test",
            "-t",
            &tag,
        ])
        .arg(context.path())
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );

    let inspect = common::docker(&["image", "inspect", "-f", "{{json .Config}}", &tag]);
    assert!(
        inspect.contains(r#""org.opencontainers.image.version":"e2e""#),
        "{inspect}"
    );
    assert!(
        inspect.contains(r#""org.opencontainers.image.revision":"test""#),
        "{inspect}"
    );
    assert!(
        inspect.contains("org.opencontainers.image.source"),
        "{inspect}"
    );
    assert!(
        inspect.contains(r#""SKIP=\\[Flaky\\]|\\[Serial\\]|\\[Disruptive\\]""#),
        "{inspect}"
    );
    assert!(
        inspect.contains(r#""REPORT_PATH=/var/result""#),
        "{inspect}"
    );
    assert!(
        inspect.contains(r#""Entrypoint":["/node-conformance","run"]"#),
        "{inspect}"
    );

    let results = tempfile::tempdir().unwrap();
    let volume = format!("{}:/var/result", results.path().display());
    let run = |caps: &[&str]| {
        Command::new("docker")
            .args(["run", "--rm", "--net=host"])
            .args(caps)
            .args(["-v", "/:/rootfs:ro", "-v", &volume])
            .args([
                "-e",
                "FOCUS=System Verification|Container Runtime Docker a container exits",
                &tag,
            ])
            .output()
            .unwrap()
    };
    let mut out = run(PRIVILEGED);
    if String::from_utf8_lossy(&out.stderr).contains("unable to apply caps") {
        out = run(FALLBACK);
    }
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    let explain = format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{explain}");
    let xml = std::fs::read_to_string(results.path().join("junit_01.xml"))
        .expect("junit_01.xml in the result dir");
    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let suite = &report.test_suites[0];
    assert!(
        suite
            .properties
            .iter()
            .any(|p| p.name.as_str() == "rootfs" && p.value.as_str() == "/rootfs"),
        "{xml}"
    );
    let case = |part: &str| {
        suite
            .test_cases
            .iter()
            .find(|c| c.name.as_str().contains(part))
            .unwrap()
            .clone()
    };
    // Through /rootfs the harness sees the host, not the scratch image.
    let os = case("operating system");
    assert!(matches!(status(&os), Status::Passed), "{}", message(&os));
    let exits = case("a container exits with the expected code");
    assert!(
        matches!(status(&exits), Status::Passed),
        "{}\n{explain}",
        message(&exits)
    );
    assert!(results.path().join("results.json").exists());
    assert_eq!(common::leftovers(&common::run_id_of(&report)), "");
}
