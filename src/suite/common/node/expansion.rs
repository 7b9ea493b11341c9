//! test/e2e/common/node/expansion.go (v1.30.2): "Variable Expansion", the tests tagged
//! NodeConformance: `$(VAR)` in an env var's value, a command and args is the kubelet's to
//! expand. Upstream's `sh -c 'TEST_VAR=wrong echo "$(TEST_VAR)"'` would print `wrong` if the
//! shell expanded it instead; the workload has no shell, so it prints what the kubelet gave.

use k8s_openapi::api::core::v1::EnvVar;

use crate::suite::common::kit::{container, output_test, with_command};
use crate::suite::common::output::Matching;
use crate::suite::functional::{Waits, removal};
use crate::suite::{Context, Outcome, Service, Test};

const CONFORMANCE: &[&str] = &["NodeConformance", "Conformance"];

pub fn tests() -> Vec<Test> {
    let t = |behaviour, run| Test {
        area: "Variable Expansion",
        behaviour,
        tags: CONFORMANCE,
        needs: &[Service::ControlPlane],
        run,
        read_ahead: None,
        budget: Some(|w: &Waits| w.pod_start + removal(w)),
    };
    vec![
        t(
            "should allow composing env vars into new env vars",
            composing,
        ),
        t(
            "should allow substituting values in a container's command",
            in_command,
        ),
        t(
            "should allow substituting values in a container's args",
            in_args,
        ),
    ]
}

fn var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn composing(ctx: &Context) -> Outcome {
    output_test(ctx, "var-expansion", Matching::Substring, |s| {
        let mut c = container(s, "dapi-container", &["--env"])?;
        c.env = Some(vec![
            var("FOO", "foo-value"),
            var("BAR", "bar-value"),
            var("FOOBAR", "$(FOO);;$(BAR)"),
        ]);
        Ok((
            c,
            vec![
                "FOO=foo-value".into(),
                "BAR=bar-value".into(),
                "FOOBAR=foo-value;;bar-value".into(),
            ],
        ))
    })
}

fn in_command(ctx: &Context) -> Outcome {
    output_test(ctx, "var-expansion", Matching::Substring, |s| {
        let mut c = with_command(s, "dapi-container", &["--stdout", "$(TEST_VAR)"])?;
        c.env = Some(vec![var("TEST_VAR", "test-value")]);
        Ok((c, vec!["test-value".into()]))
    })
}

fn in_args(ctx: &Context) -> Outcome {
    output_test(ctx, "var-expansion", Matching::Substring, |s| {
        let mut c = container(s, "dapi-container", &["--stdout", "$(TEST_VAR)"])?;
        c.env = Some(vec![var("TEST_VAR", "test-value")]);
        Ok((c, vec!["test-value".into()]))
    })
}
