//! test/e2e/common/node/secrets.go (v1.30.2): "Secrets", the tests tagged NodeConformance: a
//! Secret's data reaches a container's environment, one key (`secretKeyRef`) or all of them,
//! with and without a prefix (`envFrom`).

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    EnvFromSource, EnvVar, EnvVarSource, Secret, SecretEnvSource, SecretKeySelector,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::suite::common::kit::{container, create, output_test, unique};
use crate::suite::common::output::Matching;
use crate::suite::functional::{Session, Waits, removal};
use crate::suite::{Context, Outcome, Service, Test};

const CONFORMANCE: &[&str] = &["NodeConformance", "Conformance"];

pub fn tests() -> Vec<Test> {
    let t = |behaviour, run| Test {
        area: "Secrets",
        behaviour,
        tags: CONFORMANCE,
        needs: &[Service::ControlPlane],
        run,
        read_ahead: None,
        budget: Some(|w: &Waits| w.pod_start + removal(w)),
    };
    vec![
        t("should be consumable from pods in env vars", in_env_vars),
        t("should be consumable via the environment", via_environment),
    ]
}

/// Upstream's `secretForTest`: data-1..3 = "value-1\n".. (with the newline).
fn secret(s: &Session<'_>) -> Result<String, String> {
    let name = unique("secret-test");
    create(
        s,
        "secrets",
        &Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            data: Some(
                (1..=3)
                    .map(|i| {
                        (
                            format!("data-{i}"),
                            ByteString(format!("value-{i}\n").into_bytes()),
                        )
                    })
                    .collect(),
            ),
            ..Default::default()
        },
    )?;
    Ok(name)
}

fn in_env_vars(ctx: &Context) -> Outcome {
    output_test(ctx, "pod-secrets", Matching::Substring, |s| {
        let name = secret(s)?;
        let mut c = container(s, "secret-env-test", &["--env"])?;
        c.env = Some(vec![EnvVar {
            name: "SECRET_DATA".into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name,
                    key: "data-1".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        Ok((c, vec!["SECRET_DATA=value-1".into()]))
    })
}

fn via_environment(ctx: &Context) -> Outcome {
    output_test(ctx, "pod-configmaps", Matching::Substring, |s| {
        let name = secret(s)?;
        let mut c = container(s, "env-test", &["--env"])?;
        let from = |prefix: Option<&str>| EnvFromSource {
            prefix: prefix.map(str::to_string),
            secret_ref: Some(SecretEnvSource {
                name: name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        c.env_from = Some(vec![from(None), from(Some("p-"))]);
        let expected = ["", "p-"]
            .iter()
            .flat_map(|p| (1..=3).map(move |i| format!("{p}data-{i}=value-{i}")))
            .collect();
        Ok((c, expected))
    })
}
