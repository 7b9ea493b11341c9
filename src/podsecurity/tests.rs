use super::*;

fn pod(yaml: &str) -> Pod {
    serde_saphyr::from_str(yaml).unwrap()
}

fn paths(v: &[Violation], level: Level) -> Vec<String> {
    v.iter()
        .filter(|x| x.level == level)
        .map(|x| x.path.clone())
        .collect()
}

const RESTRICTED: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: ok}
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: app
    image: x
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}
  volumes:
  - {name: cfg, configMap: {name: c}}
  - {name: tmp, emptyDir: {}}
"#;

#[test]
fn a_restricted_pod_has_no_violations() {
    let v = evaluate(&pod(RESTRICTED));
    assert!(v.is_empty(), "{v:#?}");
    assert_eq!(highest_level(&v), Level::Restricted);
}

#[test]
fn a_default_pod_is_baseline_but_not_restricted() {
    let v = evaluate(&pod("spec:\n  containers:\n  - {name: app, image: x}\n"));
    assert_eq!(highest_level(&v), Level::Baseline);
    let p = paths(&v, Level::Restricted);
    for want in [
        "spec.containers[0].securityContext.allowPrivilegeEscalation",
        "spec.containers[0].securityContext.capabilities.drop",
        "spec.containers[0].securityContext.runAsNonRoot",
        "spec.containers[0].securityContext.seccompProfile.type",
    ] {
        assert!(p.contains(&want.to_string()), "{want} in {p:?}");
    }
}

#[test]
fn baseline_controls_each_name_their_field() {
    let v = evaluate(&pod(r#"
metadata:
  annotations:
    container.apparmor.security.beta.kubernetes.io/app: unconfined
spec:
  hostNetwork: true
  hostPID: true
  hostIPC: true
  securityContext:
    sysctls: [{name: kernel.msgmax, value: "1"}, {name: net.ipv4.tcp_syncookies, value: "1"}]
    seccompProfile: {type: Unconfined}
    seLinuxOptions: {type: spc_t, user: root}
  volumes:
  - {name: host, hostPath: {path: /}}
  initContainers:
  - name: init
    image: x
    securityContext: {privileged: true}
  containers:
  - name: app
    image: x
    ports: [{containerPort: 80, hostPort: 8080}, {containerPort: 81}]
    securityContext:
      capabilities: {add: [SYS_ADMIN, CHOWN]}
      procMount: Unmasked
      appArmorProfile: {type: Unconfined}
      windowsOptions: {hostProcess: true}
  ephemeralContainers:
  - name: debug
    image: x
    securityContext: {privileged: true}
"#));
    assert_eq!(highest_level(&v), Level::Privileged);
    let p = paths(&v, Level::Baseline);
    let want = [
        "spec.hostNetwork",
        "spec.hostPID",
        "spec.hostIPC",
        "spec.volumes[0].hostPath",
        "spec.securityContext.seLinuxOptions.type",
        "spec.securityContext.seLinuxOptions.user",
        "spec.securityContext.seccompProfile.type",
        "spec.securityContext.sysctls[0].name",
        "spec.containers[0].ports[0].hostPort",
        "spec.containers[0].securityContext.windowsOptions.hostProcess",
        "spec.containers[0].securityContext.capabilities.add[0]",
        "spec.containers[0].securityContext.appArmorProfile.type",
        "spec.containers[0].securityContext.procMount",
        "spec.initContainers[0].securityContext.privileged",
        "spec.ephemeralContainers[0].securityContext.privileged",
        "metadata.annotations[\"container.apparmor.security.beta.kubernetes.io/app\"]",
    ];
    for w in want {
        assert!(p.contains(&w.to_string()), "{w} missing from {p:#?}");
    }
    assert_eq!(p.len(), want.len(), "{p:#?}");
    // CHOWN is allowed at baseline but not at restricted.
    assert!(
        paths(&v, Level::Restricted)
            .contains(&"spec.containers[0].securityContext.capabilities.add[1]".to_string())
    );
    let privileged = v
        .iter()
        .find(|x| x.path == "spec.initContainers[0].securityContext.privileged")
        .unwrap();
    assert_eq!(privileged.control, "Privileged Containers");
}

#[test]
fn restricted_controls_on_pod_or_every_container() {
    let v = evaluate(&pod(r#"
spec:
  securityContext: {runAsUser: 0}
  containers:
  - name: a
    image: x
    securityContext:
      allowPrivilegeEscalation: true
      runAsNonRoot: false
      runAsUser: 0
      seccompProfile: {type: RuntimeDefault}
      capabilities: {drop: [ALL]}
  volumes:
  - {name: nfs, nfs: {server: s, path: /}}
"#));
    assert_eq!(highest_level(&v), Level::Baseline);
    let p = paths(&v, Level::Restricted);
    for w in [
        "spec.securityContext.runAsUser",
        "spec.containers[0].securityContext.allowPrivilegeEscalation",
        "spec.containers[0].securityContext.runAsNonRoot",
        "spec.containers[0].securityContext.runAsUser",
        "spec.volumes[0].nfs",
    ] {
        assert!(p.contains(&w.to_string()), "{w} missing from {p:#?}");
    }
    // Seccomp is satisfied by the container's own profile.
    assert!(!p.iter().any(|x| x.contains("seccompProfile")), "{p:#?}");
}

#[test]
fn allowed_values_pass() {
    let v = evaluate(&pod(r#"
metadata:
  annotations:
    container.apparmor.security.beta.kubernetes.io/app: runtime/default
spec:
  securityContext:
    sysctls: [{name: net.ipv4.ip_local_port_range, value: "1024 65535"}]
    seLinuxOptions: {type: container_t, level: "s0:c1"}
  containers:
  - name: app
    image: x
    ports: [{containerPort: 80, hostPort: 0}]
    securityContext: {procMount: Default, appArmorProfile: {type: Localhost, localhostProfile: p}}
"#));
    assert!(paths(&v, Level::Baseline).is_empty(), "{v:#?}");
    assert_eq!(violations_at(&v, Level::Baseline).len(), 0);
    assert!(!violations_at(&v, Level::Restricted).is_empty());
}

#[test]
fn levels_parse_and_print() {
    for l in [Level::Privileged, Level::Baseline, Level::Restricted] {
        assert_eq!(Level::parse(&l.to_string()), Some(l));
    }
    assert_eq!(Level::parse("strict"), None);
    assert!(Level::Baseline < Level::Restricted);
}

fn allowed(yaml: &str, level: Level, version: &str) -> bool {
    evaluate_at(&pod(yaml), level, Version::parse(version).unwrap()).allowed()
}

#[test]
fn versions_parse_as_upstream() {
    assert_eq!(Version::parse("latest"), Some(Version::Latest));
    assert_eq!(Version::parse("v1.0"), Some(Version::V1(0)));
    assert_eq!(Version::parse("v1.30"), Some(Version::V1(30)));
    for bad in ["v1.030", "1.30", "v2.0", "v1.", "v1.x", "Latest", ""] {
        assert_eq!(Version::parse(bad), None, "{bad}");
    }
    assert_eq!(Version::V1(99).effective_minor(), NEWEST);
    assert_eq!(Version::Latest.effective_minor(), NEWEST);
    assert_eq!(Version::V1(30).to_string(), "v1.30");
}

#[test]
fn a_default_pod_is_denied_at_restricted_in_upstreams_words() {
    let e = evaluate_at(
        &pod("metadata: {name: p}\nspec:\n  containers:\n  - {name: app, image: x}\n"),
        Level::Restricted,
        Version::V1(30),
    );
    assert_eq!(e.policy(), "restricted:v1.30");
    assert_eq!(
        e.forbidden_detail(),
        "allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false), \
         unrestricted capabilities (container \"app\" must set securityContext.capabilities.drop=[\"ALL\"]), \
         runAsNonRoot != true (pod or container \"app\" must set securityContext.runAsNonRoot=true), \
         seccompProfile (pod or container \"app\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
}

const PROBE_HOST: &str = r#"
spec:
  containers:
  - name: app
    image: x
    readinessProbe: {httpGet: {host: 10.0.0.1, port: 80}}
    lifecycle: {preStop: {tcpSocket: {host: example.com, port: 81}}}
"#;

#[test]
fn host_probes_and_lifecycle_hosts_fail_baseline_from_v1_34() {
    assert!(allowed(PROBE_HOST, Level::Baseline, "v1.33"));
    assert!(!allowed(PROBE_HOST, Level::Baseline, "v1.34"));
    let e = evaluate_at(&pod(PROBE_HOST), Level::Baseline, Version::Latest);
    assert_eq!(
        e.forbidden_detail(),
        "probe or lifecycle host (container \"app\" uses probe or lifecycle hosts \"10.0.0.1\", \"example.com\")"
    );
    let paths: Vec<&str> = e.failures[0]
        .violations
        .iter()
        .map(|v| v.path.as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "spec.containers[0].readinessProbe.httpGet.host",
            "spec.containers[0].lifecycle.preStop.tcpSocket.host"
        ]
    );
    assert!(allowed(
        "spec:\n  containers:\n  - {name: a, image: x, livenessProbe: {httpGet: {host: '', port: 80}}}\n",
        Level::Baseline,
        "latest"
    ));
}

fn sysctl(name: &str) -> String {
    format!(
        "spec:\n  securityContext:\n    sysctls: [{{name: {name}, value: '1'}}]\n  containers:\n  - {{name: a, image: x}}\n"
    )
}

#[test]
fn safe_sysctls_grow_with_the_policy_version() {
    for (name, since) in [
        ("kernel.shm_rmid_forced", 0),
        ("net.ipv4.ip_local_reserved_ports", 27),
        ("net.ipv4.tcp_keepalive_time", 29),
        ("net.ipv4.tcp_rmem", 32),
        ("net.ipv4.tcp_wmem", 32),
        ("net.ipv4.tcp_notsent_lowat", 37),
        ("net.ipv4.tcp_slow_start_after_idle", 37),
    ] {
        let y = sysctl(name);
        if since > 0 {
            assert!(
                !allowed(&y, Level::Baseline, &format!("v1.{}", since - 1)),
                "{name}"
            );
        }
        assert!(
            allowed(&y, Level::Baseline, &format!("v1.{since}")),
            "{name}"
        );
        assert!(allowed(&y, Level::Baseline, "latest"), "{name}");
    }
    assert!(!allowed(
        &sysctl("kernel.msgmax"),
        Level::Baseline,
        "latest"
    ));
}

const WINDOWS: &str = r#"
spec:
  os: {name: windows}
  securityContext: {runAsNonRoot: true}
  containers:
  - {name: app, image: x}
"#;

#[test]
fn windows_pods_are_exempt_from_linux_only_restricted_checks_from_v1_25() {
    assert!(!allowed(WINDOWS, Level::Restricted, "v1.24"));
    assert!(allowed(WINDOWS, Level::Restricted, "v1.25"));
    assert!(allowed(WINDOWS, Level::Restricted, "latest"));
    // Not from runAsNonRoot.
    let no_root = WINDOWS.replace("runAsNonRoot: true", "runAsNonRoot: false");
    assert!(!allowed(&no_root, Level::Restricted, "latest"));
}

const USER_NAMESPACE: &str = r#"
spec:
  hostUsers: false
  securityContext: {seccompProfile: {type: RuntimeDefault}, runAsUser: 0}
  containers:
  - name: app
    image: x
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
      procMount: Unmasked
"#;

#[test]
fn user_namespaces_relax_run_as_checks_and_baseline_proc_mount_from_v1_35() {
    let plain = USER_NAMESPACE.replace("      procMount: Unmasked\n", "");
    assert!(!allowed(&plain, Level::Restricted, "v1.34"));
    assert!(allowed(&plain, Level::Restricted, "v1.35"));
    assert!(!allowed(USER_NAMESPACE, Level::Baseline, "v1.34"));
    assert!(allowed(USER_NAMESPACE, Level::Baseline, "v1.35"));
    // Restricted keeps forbidding an unmasked /proc.
    let e = evaluate_at(&pod(USER_NAMESPACE), Level::Restricted, Version::Latest);
    assert_eq!(
        e.failures.iter().map(|f| f.id).collect::<Vec<_>>(),
        ["procMount_restricted"]
    );
    let host_users = USER_NAMESPACE.replace("hostUsers: false", "hostUsers: true");
    assert!(!allowed(&host_users, Level::Baseline, "latest"));
}

#[test]
fn a_pod_level_run_as_non_root_false_fails_whatever_the_containers_say() {
    let y = r#"
spec:
  securityContext: {runAsNonRoot: false, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: app
    image: x
    securityContext: {runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"#;
    let e = evaluate_at(&pod(y), Level::Restricted, Version::Latest);
    assert_eq!(
        e.forbidden_detail(),
        "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)"
    );
    assert!(!allowed(y, Level::Restricted, "v1.0"));
}

#[test]
fn seccomp_is_read_from_annotations_before_v1_19_and_from_fields_after() {
    let annotated = r#"
metadata:
  annotations: {seccomp.security.alpha.kubernetes.io/pod: unconfined}
spec:
  containers:
  - {name: app, image: x}
"#;
    assert!(!allowed(annotated, Level::Baseline, "v1.18"));
    assert!(allowed(annotated, Level::Baseline, "v1.19"));
    let field = "spec:\n  securityContext: {seccompProfile: {type: Unconfined}}\n  containers:\n  - {name: app, image: x}\n";
    assert!(allowed(field, Level::Baseline, "v1.18"));
    assert!(!allowed(field, Level::Baseline, "v1.19"));
}

#[test]
fn restricted_volumes_allow_image_and_sourceless_volumes() {
    let y =
        |v: &str| format!("spec:\n  containers:\n  - {{name: a, image: x}}\n  volumes:\n  - {v}\n");
    let restricted_ok = |v: &str| {
        evaluate_at(&pod(&y(v)), Level::Restricted, Version::Latest)
            .failures
            .iter()
            .all(|f| f.id != "restrictedVolumes")
    };
    assert!(restricted_ok("{name: v}"));
    assert!(restricted_ok("{name: v, image: {reference: r}}"));
    assert!(!restricted_ok("{name: v, nfs: {server: s, path: /}}"));
    // hostPath is reported once at restricted, by the volume types check.
    let e = evaluate_at(
        &pod(&y("{name: h, hostPath: {path: /}}")),
        Level::Restricted,
        Version::Latest,
    );
    assert!(
        e.failures
            .iter()
            .any(|f| f.detail == "volume \"h\" uses restricted volume type \"hostPath\"")
    );
    assert!(!e.failures.iter().any(|f| f.id == "hostPathVolumes"));
}

#[test]
fn namespace_labels_resolve_as_upstream() {
    let labels: std::collections::BTreeMap<String, String> = [
        ("pod-security.kubernetes.io/enforce", "baseline"),
        ("pod-security.kubernetes.io/enforce-version", "v1.30"),
        ("pod-security.kubernetes.io/warn", "nonsense"),
        ("pod-security.kubernetes.io/audit-version", "v1.2.3"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let [enforce, audit, warn] = namespace_policy(Some(&labels));
    assert_eq!(enforce.1.to_string(), "baseline:v1.30");
    assert_eq!(audit.1.to_string(), "privileged:latest");
    assert_eq!(warn.1.level, Level::Privileged);
    let bad: std::collections::BTreeMap<String, String> = [(
        "pod-security.kubernetes.io/enforce".to_string(),
        "strict".to_string(),
    )]
    .into();
    assert_eq!(
        namespace_policy(Some(&bad))[0].1.to_string(),
        "restricted:latest"
    );
}
