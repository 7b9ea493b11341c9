//! test/e2e_node/pod_hostnamefqdn_test.go (kubernetes c1cf94e9): "Hostname of Pod", what a
//! pod's `hostname` and `hostname -f` say with and without `subdomain` and
//! `setHostnameAsFQDN`, and a FQDN too long for the kernel's host name refused when the
//! sandbox is made. Upstream's busybox `echo $(hostname)';'$(hostname -f)';'` is the
//! workload's `--hostname-fqdn`.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, PodSpec};
use serde_json::Value;

use crate::suite::common::kit::container;
use crate::suite::common::output::{Matching, container_output};
use crate::suite::functional::{ApiPod, Session, Waits, removal, session, summary};
use crate::suite::{Context, Outcome, Recorder, Service, Test, describe};

const AREA: &str = "Hostname of Pod [NodeConformance]";
/// Upstream's `framework.PodEventTimeout`.
const EVENT_WAIT: Duration = Duration::from_secs(120);
/// Upstream's `fetchPodTimeout` for the pod to show Pending once the event was seen.
const PENDING_WAIT: Duration = Duration::from_secs(30);
/// The longest host name the kernel takes (HOST_NAME_MAX).
const HOST_NAME_MAX: usize = 64;
/// The domain a kubelet without `clusterDomain` is tested with: upstream's
/// `TestContext.ClusterDNSDomain` default, kubeadm's `networking.dnsDomain`.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";
/// The start of the event message of a refused FQDN (pkg/kubelet/kuberuntime).
const TOO_LONG: &str = "Failed to create pod sandbox: failed to construct FQDN from pod hostname and cluster domain, FQDN ";

pub fn tests() -> Vec<Test> {
    let t = |behaviour, run| Test {
        area: AREA,
        behaviour,
        tags: &[],
        needs: &[Service::ControlPlane],
        run,
        read_ahead: None,
        budget: Some(|w: &Waits| w.pod_start + removal(w)),
    };
    vec![
        t(
            "a pod without subdomain field does not have FQDN",
            no_subdomain,
        ),
        t(
            "a pod without FQDN is not affected by SetHostnameAsFQDN field",
            no_subdomain_as_fqdn,
        ),
        t(
            "a pod with subdomain field has FQDN, hostname is shortname",
            subdomain,
        ),
        t(
            "a pod with subdomain field has FQDN, when setHostnameAsFQDN is set to true, the FQDN is set as hostname",
            subdomain_as_fqdn,
        ),
        Test {
            budget: Some(|w: &Waits| EVENT_WAIT + PENDING_WAIT + removal(w)),
            ..t(
                "a pod configured to set FQDN as hostname will remain in Pending state generating FailedCreatePodSandBox events when the FQDN is longer than 64 bytes",
                too_long,
            )
        },
    ]
}

/// The cluster domain the kubelet under test puts in FQDNs: the managed kubelet's, or the
/// node's kubelet's `clusterDomain`, or upstream's default.
fn cluster_domain(s: &Session<'_>) -> String {
    if s.managed.is_some() {
        return crate::runtime::kubelet::CLUSTER_DOMAIN.to_string();
    }
    s.ctx
        .node
        .kubelet()
        .ok()
        .and_then(|k| k.str("clusterDomain").map(str::to_string))
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| DEFAULT_CLUSTER_DOMAIN.to_string())
}

/// The pod's FQDN as the kubelet makes it: `<hostname>.<subdomain>.<namespace>.svc.<domain>`.
pub fn fqdn(name: &str, subdomain: &str, namespace: &str, domain: &str) -> String {
    format!("{name}.{subdomain}.{namespace}.svc.{domain}")
}

/// What upstream's command prints for a pod: `<hostname>;<hostname -f>;`.
pub fn expected_line(
    name: &str,
    subdomain: Option<&str>,
    as_fqdn: bool,
    namespace: &str,
    domain: &str,
) -> String {
    match subdomain {
        None => format!("{name};{name};"),
        Some(sub) => {
            let full = fqdn(name, sub, namespace, domain);
            if as_fqdn {
                format!("{full};{full};")
            } else {
                format!("{name};{full};")
            }
        }
    }
}

/// The longest start of upstream's `hostfqdn` that keeps the pod's FQDN within the kernel's
/// 64 bytes once the pod's name gets its `-<8 hex>`: the run's namespace is longer than
/// upstream's, which would otherwise leave no room. At least one character, so a domain that
/// leaves none fails as upstream fails, naming the length.
pub fn fitting_prefix(subdomain: &str, namespace: &str, domain: &str) -> &'static str {
    let rest = fqdn("", subdomain, namespace, domain).len() + "-01234567".len();
    &"hostfqdn"[..HOST_NAME_MAX.saturating_sub(rest).clamp(1, 8)]
}

fn spec(s: &Session<'_>, subdomain: Option<&str>, as_fqdn: bool) -> Result<PodSpec, String> {
    Ok(PodSpec {
        containers: vec![container(s, "test-container", &["--hostname-fqdn"])?],
        restart_policy: Some("Never".into()),
        subdomain: subdomain.map(str::to_string),
        set_hostname_as_fqdn: as_fqdn.then_some(true),
        ..Default::default()
    })
}

fn output_case(ctx: &Context, subdomain: Option<&str>, as_fqdn: bool) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let domain = cluster_domain(&s);
    let prefix = match subdomain {
        Some(sub) if as_fqdn => fitting_prefix(sub, &s.namespace, &domain),
        _ => "hostfqdn",
    };
    let pod = match spec(&s, subdomain, as_fqdn).and_then(|p| ApiPod::create_spec(&s, prefix, p)) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    let want = expected_line(&pod.name, subdomain, as_fqdn, &s.namespace, &domain);
    if as_fqdn && let Some(sub) = subdomain {
        // Upstream refuses to run a case whose FQDN the kernel could not take.
        let full = fqdn(&pod.name, sub, &s.namespace, &domain);
        if full.len() > HOST_NAME_MAX {
            return r.fail_now(format!(
                "the FQDN of the Pod cannot be longer than {HOST_NAME_MAX} characters, requested {full} which is {} characters long",
                full.len()
            ));
        }
    }
    match container_output(&pod, "test-container", &[want], Matching::Substring) {
        Ok(d) => r.ok("output", d),
        Err(e) => r.fail("output", e),
    }
    r.finish(describe)
}

fn no_subdomain(ctx: &Context) -> Outcome {
    output_case(ctx, None, false)
}

fn no_subdomain_as_fqdn(ctx: &Context) -> Outcome {
    output_case(ctx, None, true)
}

fn subdomain(ctx: &Context) -> Outcome {
    output_case(ctx, Some("t"), false)
}

fn subdomain_as_fqdn(ctx: &Context) -> Outcome {
    output_case(ctx, Some("t"), true)
}

/// The refused sandbox's event: reason FailedCreatePodSandBox with upstream's message.
pub fn sandbox_refused(events: &[Value]) -> Result<String, String> {
    events
        .iter()
        .filter(|e| e.get("reason").and_then(Value::as_str) == Some("FailedCreatePodSandBox"))
        .filter_map(|e| e.get("message").and_then(Value::as_str))
        .find(|m| m.contains(TOO_LONG))
        .map(str::to_string)
        .ok_or_else(|| {
            let seen: Vec<String> = events
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.get("reason").and_then(Value::as_str).unwrap_or("?"),
                        e.get("message").and_then(Value::as_str).unwrap_or("")
                    )
                })
                .collect();
            format!(
                "no FailedCreatePodSandBox event saying {TOO_LONG:?}...; events: {}",
                if seen.is_empty() {
                    "none".to_string()
                } else {
                    seen.join("; ")
                }
            )
        })
}

/// Upstream's `checkPodIsPending`: Pending and scheduled; `Err` for a pod that started or
/// ended, `Ok(false)` while it may still show.
pub fn pending_and_scheduled(pod: &Pod) -> Result<bool, String> {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    match phase {
        "Pending" => Ok(status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "PodScheduled" && c.status == "True")),
        "Running" | "Succeeded" | "Failed" => {
            Err(format!("expected the pod to be Pending, but it is {phase}"))
        }
        _ => Ok(false),
    }
}

fn too_long(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let pod = match spec(&s, Some("t"), true).and_then(|p| {
        ApiPod::create_spec(
            &s,
            "hostfqdnveryveryveryverylongforfqdntobemorethan64bytes",
            p,
        )
    }) {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    let events_path = format!(
        "/api/v1/namespaces/{}/events?fieldSelector=involvedObject.kind%3DPod%2CinvolvedObject.name%3D{}%2CinvolvedObject.namespace%3D{}%2Creason%3DFailedCreatePodSandBox",
        s.namespace, pod.name, s.namespace
    );
    let until = Instant::now() + EVENT_WAIT;
    loop {
        let verdict = s
            .api
            .list(&events_path)
            .map_err(|e| e.to_string())
            .and_then(|events| sandbox_refused(&events));
        match verdict {
            Ok(m) => {
                r.ok("event", m);
                break;
            }
            Err(e) if Instant::now() >= until => {
                return r.fail_now(format!("within {}s: {e}", EVENT_WAIT.as_secs()));
            }
            Err(_) => std::thread::sleep(Duration::from_secs(2)),
        }
    }
    let until = Instant::now() + PENDING_WAIT;
    loop {
        let seen = s
            .api
            .get(&pod.path())
            .map_err(|e| e.to_string())
            .and_then(|p| p.ok_or_else(|| "the pod is gone".to_string()));
        let verdict = seen.as_ref().map_err(String::clone).and_then(|p| {
            let typed: Pod = serde_json::from_value(p.clone()).map_err(|e| e.to_string())?;
            pending_and_scheduled(&typed)
        });
        match verdict {
            Ok(true) => {
                r.ok("phase", "Pending, PodScheduled True");
                break;
            }
            Err(e) => {
                r.fail("phase", e);
                break;
            }
            Ok(false) if Instant::now() >= until => {
                let state = seen.map(|p| summary(&p)).unwrap_or_default();
                r.fail(
                    "phase",
                    format!(
                        "not Pending and scheduled within {}s: {state}",
                        PENDING_WAIT.as_secs()
                    ),
                );
                break;
            }
            Ok(false) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
    r.finish(describe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_expected_names_follow_subdomain_and_set_hostname_as_fqdn() {
        assert_eq!(
            expected_line("hostfqdn-1", None, false, "ns", "cluster.local"),
            "hostfqdn-1;hostfqdn-1;"
        );
        assert_eq!(
            expected_line("hostfqdn-1", None, true, "ns", "cluster.local"),
            "hostfqdn-1;hostfqdn-1;"
        );
        assert_eq!(
            expected_line("hostfqdn-1", Some("t"), false, "ns", "cluster.local"),
            "hostfqdn-1;hostfqdn-1.t.ns.svc.cluster.local;"
        );
        assert_eq!(
            expected_line("hostfqdn-1", Some("t"), true, "ns", "cluster.local"),
            "hostfqdn-1.t.ns.svc.cluster.local;hostfqdn-1.t.ns.svc.cluster.local;"
        );
    }

    #[test]
    fn the_name_leaves_room_for_the_fqdn() {
        let ns = "node-conformance-bc1bf8209f43f7b";
        let prefix = fitting_prefix("t", ns, "cluster.local");
        assert_eq!(prefix, "ho");
        assert_eq!(
            fqdn("ho-16d2b7df", "t", ns, "cluster.local").len(),
            HOST_NAME_MAX
        );
        assert_eq!(fitting_prefix("t", "ns", "cluster.local"), "hostfqdn");
        // No room at all: one character, and the length check names the FQDN.
        assert_eq!(
            fitting_prefix("t", ns, "a-much-longer.cluster.example"),
            "h"
        );
    }

    #[test]
    fn only_the_fqdn_refusal_event_counts() {
        let refused = json!({"reason": "FailedCreatePodSandBox",
            "message": format!("{TOO_LONG}hostfqdnvery....svc.cluster.local is too long (64 characters is the max, 98 characters requested)")});
        assert!(sandbox_refused(&[refused]).is_ok());
        let other = json!({"reason": "FailedCreatePodSandBox",
            "message": "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network"});
        let e = sandbox_refused(&[other]).unwrap_err();
        assert!(e.contains("failed to setup network"), "{e}");
        assert!(sandbox_refused(&[]).unwrap_err().contains("none"));
    }

    #[test]
    fn pending_means_scheduled_and_not_started() {
        let pod = |v: Value| -> Pod { serde_json::from_value(v).unwrap() };
        let pending = pod(json!({"status": {"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True"}]}}));
        assert_eq!(pending_and_scheduled(&pending), Ok(true));
        assert_eq!(
            pending_and_scheduled(&pod(json!({"status": {"phase": "Pending"}}))),
            Ok(false)
        );
        assert!(pending_and_scheduled(&pod(json!({"status": {"phase": "Running"}}))).is_err());
    }
}
