//! test/e2e/common/node/downwardapi.go (v1.30.2): "Downward API", the environment-variable
//! tests tagged NodeConformance. Upstream's `sh -c env` is the workload's `--env`.
//!
//! Not here: "should provide host IP and pod IP as an env var if pod uses host network"
//! (not NodeConformance), the hugepages tests ([Serial] [Disruptive], a feature gate).

use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec, ResourceFieldSelector,
    ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::suite::common::kit::container;
use crate::suite::common::output::{Matching, container_output};
use crate::suite::functional::{ApiPod, Session, Waits, removal, session};
use crate::suite::{Context, Outcome, Recorder, Service, Test, describe};

const CONFORMANCE: &[&str] = &["NodeConformance", "Conformance"];
const NEEDS: &[Service] = &[Service::ControlPlane];

/// e2enetwork.RegexIPv4 (test/e2e/framework/network/utils.go).
pub const REGEX_IPV4: &str = "(?:\\d+)\\.(?:\\d+)\\.(?:\\d+)\\.(?:\\d+)";
/// e2enetwork.RegexIPv6 (test/e2e/framework/network/utils.go), as upstream writes it.
pub const REGEX_IPV6: &str = "(?:(?:(?:(?:(?:(?:(?:[0-9a-fA-F]{1,4})):){6})(?:(?:(?:(?:(?:[0-9a-fA-F]{1,4})):(?:(?:[0-9a-fA-F]{1,4})))|(?:(?:(?:(?:(?:25[0-5]|(?:[1-9]|1[0-9]|2[0-4])?[0-9]))\\.){3}(?:(?:25[0-5]|(?:[1-9]|1[0-9]|2[0-4])?[0-9])))))))|(?:(?:::(?:(?:(?:[0-9a-fA-F]{1,4})):){5})(?:(?:(?:(?:(?:[0-9a-fA-F]{1,4})):(?:(?:[0-9a-fA-F]{1,4})))|(?:(?:(?:(?:(?:25[0-5]|(?:[1-9]|1[0-9]|2[0-4])?[0-9]))\\.){3}(?:(?:25[0-5]|(?:[1-9]|1[0-9]|2[0-4])?[0-9])))))))|(?:(?:(?:(?:(?:[0-9a-fA-F]{1,4})))?::(?:(?:(?:[0-9a-fA-F]{1,4})):){4})(?:(?:(?:(?:(?:[0-9a-fA-F]{1,4})):(?:(?:[0-9a-fA-F]{1,4})))|(?:(?:(?:(?:(?:25[0-5]|(?:[1-9]|1[0-9]|2[0-4])?[0-9]))\\.){3}(?:(?:25[0-5]|(?:[1-9]|1[0-9]|2[0-4])?[0-9])))))))|(?:(?:(?:(?:(?:(?:[0-9a-fA-F]{1,4})):){0,1}(?:(?:[0-9a-fA-F]{1,4})))?::(?:(?:(?:[0-9a-fA-F]{1,4})):){3})(?:(?:(?:(?:(?:[0-9a-fA-F]{1,4})):(?:(?:[0-9a-fA-F]{1,4})))|(?:(?:(?:(?:(?:25[0-5]|(?:[1-9]|1[0-9]|2[0-4])?[0-9]))\\.){3}(?:(?:25[0-5]|(?:[1-9]|1[0-9]|2[0-4])?[0-9])))))))|(?:(?:(?:(?:(?:(?:[0-9a-fA-F]{1,4})):){0,2}(?:(?:[0-9a-fA-F]{1,4})))?::(?:(?:(?:[0-9a-fA-F]{1,4})):){2})(?:(?:(?:(?:(?:[0-9a-fA-F]{1,4})):(?:(?:[0-9a-fA-F]{1,4})))|(?:(?:(?:(?:(?:25[0-5]|(?:[1-9]|1[0-9]|2[0-4])?[0-9]))\\.){3}(?:(?:25[0-5]|(?:[1-9]|1[0-9]|2[0-4])?[0-9])))))))|(?:(?:(?:(?:(?:(?:[0-9a-fA-F]{1,4})):){0,3}(?:(?:[0-9a-fA-F]{1,4})))?::(?:(?:[0-9a-fA-F]{1,4})):)(?:(?:(?:(?:(?:[0-9a-fA-F]{1,4})):(?:(?:[0-9a-fA-F]{1,4})))|(?:(?:(?:(?:(?:25[0-5]|(?:[1-9]|1[0-9]|2[0-4])?[0-9]))\\.){3}(?:(?:25[0-5]|(?:[1-9]|1[0-9]|2[0-4])?[0-9])))))))|(?:(?:(?:(?:(?:(?:[0-9a-fA-F]{1,4})):){0,4}(?:(?:[0-9a-fA-F]{1,4})))?::)(?:(?:(?:(?:(?:[0-9a-fA-F]{1,4})):(?:(?:[0-9a-fA-F]{1,4})))|(?:(?:(?:(?:(?:25[0-5]|(?:[1-9]|1[0-9]|2[0-4])?[0-9]))\\.){3}(?:(?:25[0-5]|(?:[1-9]|1[0-9]|2[0-4])?[0-9])))))))|(?:(?:(?:(?:(?:(?:[0-9a-fA-F]{1,4})):){0,5}(?:(?:[0-9a-fA-F]{1,4})))?::)(?:(?:[0-9a-fA-F]{1,4})))|(?:(?:(?:(?:(?:(?:[0-9a-fA-F]{1,4})):){0,6}(?:(?:[0-9a-fA-F]{1,4})))?::))))";

pub fn tests() -> Vec<Test> {
    let t = |behaviour, run| Test {
        area: "Downward API",
        behaviour,
        tags: CONFORMANCE,
        needs: NEEDS,
        run,
        read_ahead: None,
        budget: Some(|w: &Waits| w.pod_start + removal(w)),
    };
    vec![
        t(
            "should provide pod name, namespace and IP address as env vars",
            pod_name_namespace_ip,
        ),
        t("should provide host IP as an env var", host_ip),
        t(
            "should provide container's limits.cpu/memory and requests.cpu/memory as env vars",
            limits_and_requests,
        ),
        t(
            "should provide default limits.cpu/memory from node allocatable",
            default_limits,
        ),
        t("should provide pod UID as env vars", pod_uid),
    ]
}

fn field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: path.into(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn resource(name: &str, resource: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            resource_field_ref: Some(ResourceFieldSelector {
                resource: resource.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Upstream's `testDownwardAPI`: container `dapi-container` printing its environment, with
/// requests (250m CPU, 32Mi) and limits (1250m CPU, 64Mi) unless `with_resources` is false
/// (`testDownwardAPIUsingPod` with a pod of none). `expected` may name the pod as `{pod}`
/// and the namespace as `{namespace}`.
fn downward(ctx: &Context, env: Vec<EnvVar>, with_resources: bool, expected: &[&str]) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let pod = dapi_container(&s, env, with_resources).and_then(|c| {
        ApiPod::create_spec(
            &s,
            "downward-api",
            PodSpec {
                restart_policy: Some("Never".into()),
                containers: vec![c],
                ..Default::default()
            },
        )
    });
    let pod = match pod {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    let expected: Vec<String> = expected
        .iter()
        .map(|e| {
            e.replace("{pod}", &pod.name)
                .replace("{namespace}", &s.namespace)
        })
        .collect();
    match container_output(&pod, "dapi-container", &expected, Matching::Regexp) {
        Ok(d) => r.ok("downward api env vars", d),
        Err(e) => r.fail("downward api env vars", e),
    }
    r.finish(describe)
}

fn dapi_container(
    s: &Session<'_>,
    env: Vec<EnvVar>,
    with_resources: bool,
) -> Result<Container, String> {
    let mut c = container(s, "dapi-container", &["--env"])?;
    c.env = Some(env);
    if with_resources {
        let q = |v: &str| Quantity(v.to_string());
        c.resources = Some(ResourceRequirements {
            requests: Some([("cpu".into(), q("250m")), ("memory".into(), q("32Mi"))].into()),
            limits: Some([("cpu".into(), q("1250m")), ("memory".into(), q("64Mi"))].into()),
            ..Default::default()
        });
    }
    Ok(c)
}

fn pod_name_namespace_ip(ctx: &Context) -> Outcome {
    let ip = format!("POD_IP={REGEX_IPV4}|{REGEX_IPV6}");
    downward(
        ctx,
        vec![
            field("POD_NAME", "metadata.name"),
            field("POD_NAMESPACE", "metadata.namespace"),
            field("POD_IP", "status.podIP"),
        ],
        true,
        &["POD_NAME={pod}", "POD_NAMESPACE={namespace}", &ip],
    )
}

fn host_ip(ctx: &Context) -> Outcome {
    let ip = format!("HOST_IP={REGEX_IPV4}|{REGEX_IPV6}");
    downward(ctx, vec![field("HOST_IP", "status.hostIP")], true, &[&ip])
}

fn limits_and_requests(ctx: &Context) -> Outcome {
    downward(
        ctx,
        vec![
            resource("CPU_LIMIT", "limits.cpu"),
            resource("MEMORY_LIMIT", "limits.memory"),
            resource("CPU_REQUEST", "requests.cpu"),
            resource("MEMORY_REQUEST", "requests.memory"),
        ],
        true,
        &[
            "CPU_LIMIT=2",
            "MEMORY_LIMIT=67108864",
            "CPU_REQUEST=1",
            "MEMORY_REQUEST=33554432",
        ],
    )
}

fn default_limits(ctx: &Context) -> Outcome {
    downward(
        ctx,
        vec![
            resource("CPU_LIMIT", "limits.cpu"),
            resource("MEMORY_LIMIT", "limits.memory"),
        ],
        false,
        &["CPU_LIMIT=[1-9]", "MEMORY_LIMIT=[1-9]"],
    )
}

fn pod_uid(ctx: &Context) -> Outcome {
    downward(
        ctx,
        vec![field("POD_UID", "metadata.uid")],
        true,
        &["POD_UID=[a-z0-9]{8}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{12}"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::common::output::unmatched;

    #[test]
    fn upstreams_ip_expressions_match_what_a_kubelet_prints() {
        let v4 = format!("POD_IP={REGEX_IPV4}|{REGEX_IPV6}");
        assert!(
            unmatched("POD_IP=10.88.0.12\n", std::slice::from_ref(&v4))
                .unwrap()
                .is_empty()
        );
        assert!(
            unmatched("POD_IP=fd00::12\n", std::slice::from_ref(&v4))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            unmatched("POD_IP=\n", std::slice::from_ref(&v4)).unwrap(),
            [v4]
        );
    }
}
