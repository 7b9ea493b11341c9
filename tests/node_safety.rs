//! Nothing on the node can use the harness to act as root. Each way an ordinary account was
//! once able to, tried again as that account would:
//!
//! 1. requests to the control plane without valid credentials (none, a wrong token, a client
//!    certificate of another CA), sent by the user `nobody` where the test runs as root: each
//!    is answered 401 as kube-apiserver answers, and nothing is created;
//! 2. a run's "state" planted in world-writable /var/tmp by `nobody`, and malformed state in
//!    the root-only runs directory: ignored and reported, nothing written, killed or removed;
//! 3. a `--rootfs DIR` run traced with strace: no open, stat, write or removal outside DIR,
//!    the result dir and the harness's own process (`/proc/self`, its cgroup's CPU limits),
//!    even where the node's static pod directory names a path that exists on this machine
//!    with what looks like a dead run's files in it.
//!
//! What needs root (planting in /var/lib, switching to `nobody`) and strace is required in CI
//! (`NODE_CONFORMANCE_REQUIRE_ROOT=1`, `NODE_CONFORMANCE_REQUIRE_STRACE=1`); elsewhere those
//! tests say what they skip. The same attempts against a real kubelet the harness started are
//! in tests/real_kubelet.rs.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ControlPlane, command, fixture};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether a test needing root can run; without root it is skipped, or fails where CI
/// requires it.
fn root_or_skip(what: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var_os("NODE_CONFORMANCE_REQUIRE_ROOT").is_none(),
        "{what} needs root, which CI requires"
    );
    eprintln!("SKIPPED: {what} needs root");
    false
}

/// curl as `nobody` when the test runs as root (else as this user): `(HTTP status, body)`.
fn curl_as_nobody(args: &[&str]) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"])
        .args(args);
    if is_root() {
        use std::os::unix::process::CommandExt;
        c.uid(NOBODY).gid(NOBODY);
    }
    let out = c.output().expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn has(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_control_plane_answers_401_to_whoever_has_no_valid_credentials() {
    if !has("curl") {
        eprintln!("SKIPPED: no curl");
        return;
    }
    let cp = ControlPlane::start_secure();
    let secure = cp.secure.clone().expect("TLS");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, &secure.ca).unwrap();
    // A client certificate of another CA, with a name the API would otherwise accept.
    let other = rcgen::CertifiedIssuer::self_signed(
        {
            let mut p = rcgen::CertificateParams::default();
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            p
        },
        rcgen::KeyPair::generate().unwrap(),
    )
    .unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "system:node:node1");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:masters");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &other).unwrap();
    let (cert_file, key_file) = (dir.path().join("c.crt"), dir.path().join("c.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    for f in [&ca, &cert_file, &key_file] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let base = cp.url();
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"root"},"spec":{"containers":[{"name":"c","image":"pause","command":["/bin/sh"],"volumeMounts":[{"name":"host","mountPath":"/host"}]}],"volumes":[{"name":"host","hostPath":{"path":"/"}}]}}"#;
    let ca_arg = ca.display().to_string();
    let attempts: Vec<(&str, Vec<String>)> = vec![
        (
            "no credentials, a pod",
            vec![
                "-X".into(),
                "POST".into(),
                "-H".into(),
                "Content-Type: application/json".into(),
                "-d".into(),
                pod.into(),
                format!("{base}/api/v1/namespaces/default/pods"),
            ],
        ),
        ("no credentials, discovery", vec![format!("{base}/api")]),
        ("no credentials, healthz", vec![format!("{base}/healthz")]),
        ("no credentials, readyz", vec![format!("{base}/readyz")]),
        ("no credentials, version", vec![format!("{base}/version")]),
        (
            "no credentials, a watch",
            vec![format!("{base}/api/v1/pods?watch=true&timeoutSeconds=1")],
        ),
        (
            "no credentials, a node proxy",
            vec![format!("{base}/api/v1/nodes/node1/proxy/pods")],
        ),
        (
            "no credentials, a pod's exec",
            vec![
                "-X".into(),
                "POST".into(),
                format!("{base}/api/v1/namespaces/default/pods/x/exec?command=id"),
            ],
        ),
        (
            "a wrong token",
            vec![
                "-H".into(),
                "Authorization: Bearer 0123456789abcdef".into(),
                format!("{base}/api/v1/namespaces/default/pods"),
            ],
        ),
        (
            "a token in another scheme",
            vec![
                "-H".into(),
                format!("Authorization: Basic {}", secure.token),
                format!("{base}/api/v1/namespaces/default/pods"),
            ],
        ),
        (
            "another CA's client certificate",
            vec![
                "--cert".into(),
                cert_file.display().to_string(),
                "--key".into(),
                key_file.display().to_string(),
                format!("{base}/api/v1/namespaces/default/pods"),
            ],
        ),
    ];
    for (what, args) in &attempts {
        let mut all = vec!["--cacert", ca_arg.as_str()];
        all.extend(args.iter().map(String::as_str));
        let (code, body) = curl_as_nobody(&all);
        assert_eq!(code, 401, "{what}: {body}");
        let status: serde_json::Value = serde_json::from_str(&body).expect("a Status");
        assert_eq!(
            status,
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized",
                "code": 401}),
            "{what}"
        );
    }
    // Plain HTTP to the TLS port gets nowhere either.
    let (code, _) = curl_as_nobody(&[&format!("http://127.0.0.1:{}/api", cp.port)]);
    assert_ne!(code, 200);
    // The admin kubeconfig's token works, and nothing was created.
    let (code, body) = curl_as_nobody(&[
        "--cacert",
        &ca_arg,
        "-H",
        &format!("Authorization: Bearer {}", secure.token),
        &format!("{base}/api/v1/namespaces/default/pods"),
    ]);
    assert_eq!(code, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["items"], serde_json::json!([]), "{body}");
    // The admin kubeconfig is the user's alone.
    let mode = std::fs::metadata(&secure.kubeconfig)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// A run id no live run has.
fn dead_id(tag: u32) -> String {
    format!("dead{:x}{tag:x}", std::process::id())
}

#[test]
fn state_planted_by_another_user_or_of_a_foreign_form_is_ignored_and_said() {
    if !root_or_skip("planting state as nobody and in /var/lib/node-conformance") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // What the planted state aims at: a root-owned file, a root process naming the state's
    // directory, another namespace's pod logs.
    let victim = scratch.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    let planted_id = dead_id(1);
    let planted = PathBuf::from(format!("/var/tmp/node-conformance-{planted_id}"));
    let victim_ns = format!("victim-{}", std::process::id());
    let victim_logs = PathBuf::from(format!("/var/log/pods/{victim_ns}_pod_uid"));
    std::fs::create_dir_all(&victim_logs).unwrap();
    let mut sleeper = Command::new("sh")
        .args(["-c", "sleep 600; true"])
        .arg(format!("{}/", planted.display()))
        .spawn()
        .unwrap();
    let state = serde_json::json!({
        "endpoint": "/run/containerd/containerd.sock",
        "tunables": [["../../../..".to_string() + &victim.display().to_string(), "pwned"],
                     [victim.display().to_string(), "pwned"]],
        "new_log_dirs": ["/etc"],
        "namespace": victim_ns,
    });
    // As nobody, as an ordinary account can in /var/tmp.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
        ])
        .arg(format!(
            "mkdir {p} && printf '%s' '{s}' > {p}/state.json",
            p = planted.display(),
            s = state
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Root-owned but not of the form this harness writes, and a group-writable one, in the
    // runs directory itself.
    let runs = Path::new("/var/lib/node-conformance/runs");
    let malformed_id = dead_id(2);
    let shared_id = dead_id(3);
    let made_runs = !runs.exists();
    std::fs::create_dir_all(runs).unwrap();
    for d in [
        "/var/lib/node-conformance",
        "/var/lib/node-conformance/runs",
    ] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let malformed = runs.join(&malformed_id);
    std::fs::create_dir(&malformed).unwrap();
    std::fs::set_permissions(&malformed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut bad = state.clone();
    bad["run_id"] = serde_json::json!(malformed_id);
    bad["kubelet"] = serde_json::Value::Null;
    bad["tunables"] = serde_json::json!([["kernel/core_pattern", "|/bin/sh"]]);
    bad["namespace"] = serde_json::json!(format!("node-conformance-{malformed_id}"));
    bad["new_log_dirs"] = serde_json::json!([]);
    std::fs::write(malformed.join("state.json"), bad.to_string()).unwrap();
    std::fs::set_permissions(
        malformed.join("state.json"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let shared = runs.join(&shared_id);
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o770)).unwrap();
    let core_pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();

    let result = tempfile::tempdir().unwrap();
    let out = command()
        .args(["run", "--rootfs", "/", "--focus", "System Verification OS"])
        .arg("--result-dir")
        .arg(result.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let cleanup = || {
        let _ = std::fs::remove_dir_all(&planted);
        let _ = std::fs::remove_dir_all(format!("/var/log/pods/{victim_ns}_pod_uid"));
        let _ = std::fs::remove_dir_all(&malformed);
        let _ = std::fs::remove_dir_all(&shared);
        if made_runs {
            let _ = std::fs::remove_dir_all("/var/lib/node-conformance");
        }
    };
    let alive = sleeper.try_wait().unwrap().is_none();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let checks = (
        std::fs::read_to_string(&victim).unwrap(),
        victim_logs.exists(),
        planted.join("state.json").exists(),
        malformed.join("state.json").exists(),
        shared.exists(),
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
    );
    cleanup();
    assert_ne!(out.status.code(), Some(2), "{stdout}");
    assert_eq!(checks.0, "untouched", "{stdout}");
    assert!(checks.1, "another namespace's logs were removed: {stdout}");
    assert!(
        alive,
        "a root process naming the planted directory was killed: {stdout}"
    );
    assert!(checks.2 && checks.3 && checks.4, "{stdout}");
    assert_eq!(checks.5, core_pattern);
    assert!(
        stdout.contains(&format!("ignored {}", planted.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "ignored {}: {}/state.json: tunable \"kernel/core_pattern\" is not one a kubelet sets",
            malformed.display(),
            malformed.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "ignored {}: mode 0770: writable by its group or by others",
            shared.display()
        )),
        "{stdout}"
    );
}

/// Kills a process when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_process_another_user_names_kubelet_is_not_taken_for_the_nodes() {
    if !root_or_skip("starting a process as nobody") || !has("python3") {
        return;
    }
    // A root-only directory nobody would like root to write into, and nobody's directory
    // with a symlink to it, named as the static pod directory of nobody's "kubelet".
    let scratch = tempfile::tempdir().unwrap();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let target = scratch.path().join("root-only");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
    let theirs = scratch.path().join("nobody");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();
    let pods = theirs.join("pods");
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "ln",
            "-s",
        ])
        .arg(&target)
        .arg(&pods)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let decoy = Killed(
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "bash",
                "-c",
            ])
            .arg(format!(
                "exec -a kubelet python3 -c 'import time; time.sleep(600)' \
                 --pod-manifest-path={} --config=/etc/shadow --hostname-override=evil",
                pods.display()
            ))
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let result = tempfile::tempdir().unwrap();
    let out = command()
        .args([
            "run",
            "--rootfs",
            "/",
            "--focus",
            r"Kubelet (config file|anonymous)|MirrorPod",
        ])
        .args(["--node-ready-timeout", "5", "--mirror-pod-timeout", "5"])
        .args(["--api-server-port", &common::free_port().to_string()])
        .arg("--result-dir")
        .arg(result.path())
        .output()
        .unwrap();
    let pid = decoy.0.id();
    drop(decoy);
    let junit = std::fs::read_to_string(result.path().join("junit_01.xml")).unwrap_or_default();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(2), "{stdout}");
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        0,
        "root wrote into the directory nobody chose: {stdout}"
    );
    assert!(
        junit.contains(&format!("process {pid} named kubelet runs as uid 65534")),
        "{junit}"
    );
    assert!(!junit.contains("/etc/shadow"), "{junit}");
    assert!(!junit.contains("evil"), "{junit}");
}

/// One system call of an strace log that names a path, as the kernel resolved it.
#[derive(Debug)]
struct Access {
    call: String,
    path: String,
    writes: bool,
    line: String,
}

/// The calls of `strace -f -y` output that name a path: the path made absolute from the
/// directory descriptor it is relative to (`3</root>`, `AT_FDCWD</cwd>`), and whether the call
/// creates, changes or removes anything.
fn accesses(trace: &str) -> Vec<Access> {
    const CALLS: &[&str] = &[
        "open",
        "openat",
        "openat2",
        "stat",
        "lstat",
        "newfstatat",
        "statx",
        "access",
        "faccessat",
        "faccessat2",
        "readlink",
        "readlinkat",
        "unlink",
        "unlinkat",
        "rmdir",
        "mkdir",
        "mkdirat",
        "rename",
        "renameat",
        "renameat2",
        "chmod",
        "fchmodat",
        "chown",
        "fchownat",
        "truncate",
        "execve",
        "symlink",
        "symlinkat",
        "link",
        "linkat",
        "creat",
        "chdir",
        "mknod",
        "mknodat",
        "utimensat",
    ];
    const WRITING: &[&str] = &[
        "unlink",
        "unlinkat",
        "rmdir",
        "mkdir",
        "mkdirat",
        "rename",
        "renameat",
        "renameat2",
        "chmod",
        "fchmodat",
        "chown",
        "fchownat",
        "truncate",
        "symlink",
        "symlinkat",
        "link",
        "linkat",
        "creat",
        "mknod",
        "mknodat",
        "utimensat",
    ];
    let mut out = Vec::new();
    for line in trace.lines() {
        // `PID call(args...` or `PID <... call resumed>` (the latter carries no path).
        let Some((_, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        let Some((call, args)) = rest.split_once('(') else {
            continue;
        };
        if !CALLS.contains(&call) {
            continue;
        }
        // The directory descriptor, if the call names one first: `3</dir>` or `AT_FDCWD</dir>`.
        let (base, args) = match args.split_once('<') {
            Some((fd, after))
                if fd == "AT_FDCWD"
                    || (!fd.is_empty() && fd.bytes().all(|b| b.is_ascii_digit())) =>
            {
                match after.split_once(">, ") {
                    Some((dir, more)) => (Some(dir.to_string()), more),
                    None => (None, args),
                }
            }
            _ => (None, args),
        };
        let Some(quoted) = args.strip_prefix('"') else {
            continue;
        };
        let Some(end) = quoted.find('"') else {
            continue;
        };
        let named = &quoted[..end];
        let in_root = call == "openat2" && args.contains("RESOLVE_IN_ROOT");
        let path = match (&base, named.starts_with('/')) {
            (Some(b), true) if in_root => format!("{b}{named}"),
            (_, true) => named.to_string(),
            (Some(b), false) if named.is_empty() => b.clone(),
            (Some(b), false) => format!("{b}/{named}"),
            (None, false) => named.to_string(),
        };
        let writes = WRITING.contains(&call)
            || (call.starts_with("open")
                && ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
                    .iter()
                    .any(|f| args.contains(f)));
        // `/proc/./thread-self` is `/proc/thread-self`.
        let path = path.replace("/./", "/");
        out.push(Access {
            call: call.to_string(),
            path,
            writes,
            line: line.to_string(),
        });
    }
    out
}

fn under(path: &str, dir: &Path) -> bool {
    let d = dir.display().to_string();
    path == d || path.starts_with(&format!("{d}/"))
}

#[test]
fn a_run_on_another_root_touches_nothing_outside_it() {
    if !has("strace") {
        assert!(
            std::env::var_os("NODE_CONFORMANCE_REQUIRE_STRACE").is_none(),
            "strace is required in CI"
        );
        eprintln!("SKIPPED: no strace");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let work_dir = std::fs::canonicalize(work.path()).unwrap();
    let root = work_dir.join("root");
    common::tree::copy_tree(&fixture("healthy-v2"), &root);
    // A static pod directory whose path also exists on this machine, holding what looks like
    // a dead run's files there and in the root.
    let machine = work_dir.join("machine-manifests");
    let dead = "deadbeef1";
    let plant = |dir: &Path| {
        std::fs::create_dir_all(dir.join(format!(".node-conformance-{dead}"))).unwrap();
        std::fs::write(
            dir.join(format!("node-conformance-{dead}-static-pod-1.yaml")),
            "kind: Pod\n",
        )
        .unwrap();
    };
    plant(&machine);
    let in_root = root.join(machine.strip_prefix("/").unwrap());
    plant(&in_root);
    std::fs::create_dir_all(root.join("var/lib/kubelet")).unwrap();
    std::fs::write(
        root.join("var/lib/kubelet/config.yaml"),
        format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nstaticPodPath: {}\n",
            machine.display()
        ),
    )
    .unwrap();
    let results = work_dir.join("results");
    let trace = work_dir.join("trace");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-y", "-s", "4096", "-o"])
        .arg(&trace)
        .args(["-e", "trace=%file,%desc,%process"])
        .arg(common::BIN)
        .arg("run")
        .arg("--rootfs")
        .arg(&root)
        .arg("--result-dir")
        .arg(&results)
        .env_remove("FOCUS")
        .env_remove("SKIP")
        .env_remove("ROOTFS")
        .env_remove("POD_MANIFEST_PATH")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(2), "{stdout}");
    assert!(results.join("junit_01.xml").exists());
    // The machine's files are where they were.
    assert!(
        machine
            .join(format!("node-conformance-{dead}-static-pod-1.yaml"))
            .exists()
            && machine.join(format!(".node-conformance-{dead}")).exists(),
        "{stdout}"
    );
    if is_root() {
        // Inside the root, what a dead run left is removed.
        assert!(
            !in_root
                .join(format!("node-conformance-{dead}-static-pod-1.yaml"))
                .exists(),
            "{stdout}"
        );
    }
    let text = std::fs::read_to_string(&trace).unwrap();
    let pids: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    // The harness's own process, and /proc itself, which pathrs opens to reach it.
    let own_proc = |p: &str| {
        p == "/proc"
            || p == "/proc/self"
            || p == "/proc/thread-self"
            || p.starts_with("/proc/self/")
            || p.starts_with("/proc/thread-self/")
            || pids
                .iter()
                .any(|pid| p == format!("/proc/{pid}") || p.starts_with(&format!("/proc/{pid}/")))
    };
    // The directories above the root and the result dir, looked up on the way to them.
    let ancestors: Vec<String> = [&root, &results]
        .iter()
        .flat_map(|p| p.ancestors().skip(1).map(|a| a.display().to_string()))
        .collect();
    let mut outside = Vec::new();
    for a in accesses(&text) {
        let allowed = under(&a.path, &root)
            || under(&a.path, &results)
            || a.path == "/dev/null"
            || (!a.writes
                && (own_proc(&a.path)
                    || ancestors.contains(&a.path)
                    // std's available_parallelism: this process's own CPU quota.
                    || a.path.starts_with("/sys/fs/cgroup/")
                    || a.path == "/sys/devices/system/cpu/online"
                    || (a.call == "execve" && a.path == common::BIN)));
        if !allowed {
            outside.push(a.line);
        }
    }
    assert!(
        outside.is_empty(),
        "{} accesses outside the root and result dir:\n{}",
        outside.len(),
        outside.join("\n")
    );
}

#[test]
fn the_trace_reader_resolves_paths_as_the_kernel_did() {
    let t = "12 openat2(3</r>, \"/etc/x\", {flags=O_RDONLY, resolve=RESOLVE_NO_MAGICLINKS|RESOLVE_IN_ROOT}, 24) = 4</r/etc/x>\n\
             12 openat(AT_FDCWD</home>, \"/etc/kubernetes/manifests\", O_RDONLY) = -1 ENOENT\n\
             12 unlinkat(5</r/m>, \"f.yaml\", 0) = 0\n\
             12 statx(4</proc/12/maps>, \"\", AT_EMPTY_PATH, STATX_ALL, {}) = 0\n\
             12 <... openat resumed>) = 3\n\
             13 openat(AT_FDCWD</home>, \"rel\", O_WRONLY|O_CREAT, 0600) = 3\n";
    let a = accesses(t);
    let got: Vec<(&str, bool)> = a.iter().map(|a| (a.path.as_str(), a.writes)).collect();
    assert_eq!(
        got,
        [
            ("/r/etc/x", false),
            ("/etc/kubernetes/manifests", false),
            ("/r/m/f.yaml", true),
            ("/proc/12/maps", false),
            ("/home/rel", true),
        ]
    );
}
