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
