//! test/e2e/common/node/configmap.go (v1.30.2): "ConfigMap", the tests tagged
//! NodeConformance: a ConfigMap's data reaches a container's environment, one key
//! (`configMapKeyRef`) or all of them, with and without a prefix (`envFrom`).

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::suite::common::kit::{container, create, output_test, unique};
use crate::suite::common::output::Matching;
use crate::suite::functional::{Session, Waits, removal};
use crate::suite::{Context, Outcome, Service, Test};

const CONFORMANCE: &[&str] = &["NodeConformance", "Conformance"];

pub fn tests() -> Vec<Test> {
    let t = |behaviour, run| Test {
        area: "ConfigMap",
        behaviour,
        tags: CONFORMANCE,
        needs: &[Service::ControlPlane],
        run,
        read_ahead: None,
        budget: Some(|w: &Waits| w.pod_start + removal(w)),
    };
    vec![
        t("should be consumable via environment variable", via_env_var),
        t("should be consumable via the environment", via_environment),
    ]
}

/// Upstream's `newConfigMap`: data-1..3 = value-1..3.
fn config_map(s: &Session<'_>) -> Result<String, String> {
    let name = unique("configmap-test");
    create(
        s,
        "configmaps",
        &ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            data: Some(
                (1..=3)
                    .map(|i| (format!("data-{i}"), format!("value-{i}")))
                    .collect(),
            ),
            ..Default::default()
        },
    )?;
    Ok(name)
}

fn via_env_var(ctx: &Context) -> Outcome {
    output_test(ctx, "pod-configmaps", Matching::Substring, |s| {
        let name = config_map(s)?;
        let mut c = container(s, "env-test", &["--env"])?;
        c.env = Some(vec![EnvVar {
            name: "CONFIG_DATA_1".into(),
            value_from: Some(EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector {
                    name,
                    key: "data-1".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        Ok((c, vec!["CONFIG_DATA_1=value-1".into()]))
    })
}

fn via_environment(ctx: &Context) -> Outcome {
    output_test(ctx, "pod-configmaps", Matching::Substring, |s| {
        let name = config_map(s)?;
        let mut c = container(s, "env-test", &["--env"])?;
        let from = |prefix: Option<&str>| EnvFromSource {
            prefix: prefix.map(str::to_string),
            config_map_ref: Some(ConfigMapEnvSource {
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
