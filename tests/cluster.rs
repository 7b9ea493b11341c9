//! The harness on every node of a cluster, through Kubernetes itself.
//!
//! The cluster test brings up a real one-node cluster on this machine: kube-apiserver 1.20.2
//! over etcd (as ../shared/peers/kubernetes/apiserver.sh starts it, privileged pods allowed),
//! kube-controller-manager (its DaemonSet
//! controller) and kube-scheduler from the same build, and the real kubelet 1.20.2 registered
//! to it, on a containerd of its own (node-env.sh) into which the harness's image, built here
//! from the static binary, is imported. It applies what `deploy daemonset` prints with
//! kubectl, has `collect` wait for the pod's run and read the results back through the API
//! server, checks the node's directory and counts (and `report`, where the binary has it),
//! then removes everything. The Sonobuoy plugin is validated by that API server as the
//! DaemonSet Sonobuoy would make of it (`kubectl apply --dry-run=server`).
//!
//! node-env.sh runs one environment at a time on a machine, and others use it too: the test
//! holds `flock /tmp/node-env.lock` from start to end, waiting while someone else holds it.
//!
//! Needs root, Docker, kubectl and the peers; skipped otherwise, unless
//! NODE_CONFORMANCE_REQUIRE_CLUSTER=1 (CI), which makes their absence a failure.
//!
//! The Sonobuoy worker contract is checked without a cluster, with the variables Sonobuoy sets.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use node_conformance::cluster::logs;
use serde_json::{Value, json};

const FOCUS: &str = "System Verification";
const NODE: &str = "nc-cluster-node";
const NAMESPACE: &str = "nc-cluster-e2e";

fn required() -> bool {
    std::env::var("NODE_CONFORMANCE_REQUIRE_CLUSTER").as_deref() == Ok("1")
}

fn peers() -> Option<PathBuf> {
    let dir = std::env::var_os("NODE_CONFORMANCE_KUBELET_PEERS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peers/kubernetes"),
        PathBuf::from,
    );
    let root = rustix::process::geteuid().is_root();
    let docker = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    let kubectl = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    let usable = root
        && docker
        && kubectl
        && ["build.sh", "node-env.sh"]
            .iter()
            .all(|s| dir.join(s).exists());
    if !usable {
        assert!(
            !required(),
            "a cluster is required (NODE_CONFORMANCE_REQUIRE_CLUSTER=1) but cannot be made here \
             (root: {root}, docker: {docker}, kubectl: {kubectl}, peers: {})",
            dir.display()
        );
        eprintln!("skipped: no cluster environment ({})", dir.display());
        return None;
    }
    Some(dir)
}

/// Runs a command to its end; its stdout, or a panic with all it said.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn last_line(text: &str) -> String {
    text.lines().last().unwrap_or_default().trim().to_string()
}

/// A port nothing listens on, with the next two free as well (for etcd, as apiserver.sh does).
fn free_port_triple() -> u16 {
    for _ in 0..50 {
        let p = common::free_port();
        if p < 65000 && (1..3).all(|i| std::net::TcpListener::bind(("127.0.0.1", p + i)).is_ok()) {
            return p;
        }
    }
    panic!("no three free ports in a row");
}

fn spawn(bin: &Path, args: &[String], log: &Path) -> Child {
    let log_file = std::fs::File::create(log).expect("log file");
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log file"))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()))
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Everything the cluster is made of; dropped in reverse order of making, whatever happened.
struct Cluster {
    peers: PathBuf,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    processes: Vec<(String, Child)>,
    env_started: bool,
    image: Option<String>,
    tunables: Vec<(PathBuf, String)>,
    host_results: Option<PathBuf>,
    _lock: common::NodeEnvLock,
}

impl Cluster {
    fn kubectl(&self, args: &[&str]) -> Command {
        let mut c = Command::new("kubectl");
        c.env("KUBECONFIG", &self.kubeconfig).args(args);
        c
    }

    fn kubectl_stdin(&self, args: &[&str], input: &str) -> std::process::Output {
        let mut child = self
            .kubectl(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("kubectl reads");
        child.wait_with_output().expect("kubectl ends")
    }

    fn logs(&self) -> String {
        self.processes
            .iter()
            .map(|(name, _)| {
                format!(
                    "--- {name}\n{}\n",
                    tail(&self.dir.path().join(format!("{name}.log")))
                )
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The pods first, through the kubelet, so it stops their containers and removes
        // their logs; the DaemonSet is orphaned first, so it makes no new ones.
        if self.processes.iter().any(|(n, _)| n == "kubelet") {
            let _ = self
                .kubectl(&[
                    "delete",
                    "daemonset",
                    "--all",
                    "-n",
                    NAMESPACE,
                    "--cascade=orphan",
                    "--timeout=20s",
                ])
                .output();
            let _ = self
                .kubectl(&[
                    "delete",
                    "pods",
                    "--all",
                    "-n",
                    NAMESPACE,
                    "--grace-period=5",
                    "--timeout=60s",
                ])
                .output();
        }
        for (_, child) in self.processes.iter_mut().rev() {
            let pid = rustix::process::Pid::from_child(child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let began = Instant::now();
            while began.elapsed() < Duration::from_secs(15) {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.env_started {
            let _ = Command::new("bash")
                .arg(self.peers.join("node-env.sh"))
                .arg("stop")
                .arg(self.dir.path().join("env"))
                .output();
        }
        for dir in ["/var/log/pods", "/var/log/containers"] {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy().contains(NAMESPACE) {
                        let _ = std::fs::remove_dir_all(e.path());
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
        for (path, value) in &self.tunables {
            let _ = std::fs::write(path, value);
        }
        if let Some(dir) = &self.host_results {
            let _ = std::fs::remove_dir_all(dir);
            // The parent only if this run made it and nothing else is in it.
            if let Some(parent) = dir.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
        if let Some(image) = &self.image {
            let _ = Command::new("docker").args(["rmi", "-f", image]).output();
        }
    }
}

/// The harness's image, from this build's static binary and Dockerfile.amd64.
fn build_image(dir: &Path) -> String {
    let context = dir.join("image");
    std::fs::create_dir_all(&context).expect("image context");
    std::fs::copy(common::BIN, context.join("node-conformance")).expect("binary copied");
    let tag = format!("node-conformance-cluster:e2e-{}", std::process::id());
    run(Command::new("docker")
        .args(["build", "-q", "-f"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile.amd64"))
        .args(["-t", &tag])
        .arg(&context));
    let _ = std::fs::remove_dir_all(&context);
    tag
}

fn write_kubeconfig(path: &Path, url: &str, token: &str) {
    // The apiserver's certificate is self-signed for its advertised address: not verified,
    // which collect reads as client-go does.
    std::fs::write(
        path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {url}\n    insecure-skip-tls-verify: true\n\
             contexts:\n- name: c\n  context:\n    cluster: c\n    user: admin\ncurrent-context: c\n\
             users:\n- name: admin\n  user:\n    token: {token}\n"
        ),
    )
    .expect("kubeconfig");
}

/// etcd and kube-apiserver as apiserver.sh starts them, plus `--allow-privileged=true`, which
/// a cluster that runs node daemons has (kubeadm sets it) and apiserver.sh, a reference for
/// API semantics, leaves at its default (false). The service account key is made here.
fn start_apiserver(c: &mut Cluster, bin: &Path) {
    if Command::new("etcd").arg("--version").output().is_err() {
        run(Command::new("bash").arg("-c").arg(
            "apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null",
        ));
    }
    let port = free_port_triple();
    let dir = c.dir.path().join("api");
    std::fs::create_dir_all(&dir).expect("api dir");
    let etcd_url = format!("http://127.0.0.1:{}", port + 1);
    let etcd = spawn(
        Path::new("etcd"),
        &[
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls=http://127.0.0.1:{}", port + 2),
        ],
        &c.dir.path().join("etcd.log"),
    );
    c.processes.push(("etcd".into(), etcd));
    let token = format!("{:032x}", rand_u128());
    std::fs::write(
        dir.join("tokens.csv"),
        format!("{token},admin,admin,\"system:masters\"\n"),
    )
    .expect("tokens");
    let key = rcgen::KeyPair::generate().expect("key");
    std::fs::write(dir.join("sa.key"), key.serialize_pem()).expect("sa.key");
    // The API server reaches the kubelet (pod logs) with a client certificate of a CA the
    // kubelet trusts, as kubeadm sets them up.
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca");
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "nc-kubelet-client-ca");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().expect("key"))
        .expect("ca");
    let mut client = rcgen::CertificateParams::new(Vec::<String>::new()).expect("client");
    client
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-apiserver-kubelet-client");
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = rcgen::KeyPair::generate().expect("key");
    let client = client.signed_by(&client_key, &ca).expect("client");
    std::fs::write(dir.join("kubelet-ca.crt"), ca.pem()).expect("ca");
    std::fs::write(dir.join("kubelet-client.crt"), client.pem()).expect("client");
    std::fs::write(dir.join("kubelet-client.key"), client_key.serialize_pem()).expect("key");
    std::fs::write(dir.join("sa.pub"), key.public_key_pem()).expect("sa.pub");
    let args = vec![
        format!("--etcd-servers={etcd_url}"),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={port}"),
        format!("--cert-dir={}", dir.join("certs").display()),
        format!("--token-auth-file={}", dir.join("tokens.csv").display()),
        format!("--service-account-key-file={}", dir.join("sa.pub").display()),
        format!(
            "--service-account-signing-key-file={}",
            dir.join("sa.key").display()
        ),
        "--service-account-issuer=https://kubernetes.default.svc".into(),
        "--service-cluster-ip-range=10.96.0.0/16".into(),
        "--authorization-mode=AlwaysAllow".into(),
        "--allow-privileged=true".into(),
        // As kubeadm sets it: the node's name need not resolve.
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname".into(),
        format!(
            "--kubelet-client-certificate={}",
            dir.join("kubelet-client.crt").display()
        ),
        format!(
            "--kubelet-client-key={}",
            dir.join("kubelet-client.key").display()
        ),
        "--enable-admission-plugins=NamespaceLifecycle".into(),
        "--disable-admission-plugins=ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ResourceQuota,StorageObjectInUseProtection,Priority,RuntimeClass,PersistentVolumeClaimResize,CertificateApproval,CertificateSigning,CertificateSubjectRestriction,LimitRanger,TaintNodesByCondition".into(),
    ];
    let apiserver = spawn(
        &bin.join("kube-apiserver"),
        &args,
        &c.dir.path().join("kube-apiserver.log"),
    );
    c.processes.push(("kube-apiserver".into(), apiserver));
    write_kubeconfig(&c.kubeconfig, &format!("https://127.0.0.1:{port}"), &token);
    let began = Instant::now();
    while !c
        .kubectl(&["get", "--raw", "/readyz"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "kube-apiserver not ready in 60 s\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn rand_u128() -> u128 {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("/dev/urandom");
    u128::from_le_bytes(bytes)
}

fn start_cluster(peers: &Path) -> Cluster {
    let lock = common::NodeEnvLock::take();
    let up = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("nc-cluster")
        .tempdir()
        .expect("dir");
    let mut c = Cluster {
        peers: peers.to_path_buf(),
        kubeconfig: dir.path().join("kubeconfig"),
        dir,
        processes: Vec::new(),
        env_started: false,
        image: None,
        tunables: Vec::new(),
        host_results: None,
        _lock: lock,
    };
    let bin = PathBuf::from(last_line(&run(
        Command::new("bash").arg(peers.join("build.sh"))
    )));
    start_apiserver(&mut c, &bin);
    let kubeconfig = c.kubeconfig.display().to_string();
    let image = build_image(c.dir.path());
    c.image = Some(image.clone());
    c.env_started = true;
    let endpoint = last_line(&run(Command::new("bash")
        .arg(peers.join("node-env.sh"))
        .arg("start")
        .arg(c.dir.path().join("env"))
        .arg(&image)));
    assert!(
        endpoint.starts_with("unix://"),
        "node-env.sh printed {endpoint:?}"
    );
    // Only the DaemonSet controller: the pods need no service account (the API server runs
    // without that admission plugin), and nothing else is exercised.
    for (name, args) in [
        (
            "kube-controller-manager",
            vec![
                format!("--kubeconfig={kubeconfig}"),
                "--controllers=daemonset".into(),
                "--leader-elect=false".into(),
                "--port=0".into(),
                "--secure-port=0".into(),
            ],
        ),
        (
            "kube-scheduler",
            vec![
                format!("--kubeconfig={kubeconfig}"),
                "--leader-elect=false".into(),
                "--port=0".into(),
                "--secure-port=0".into(),
            ],
        ),
    ] {
        let log = c.dir.path().join(format!("{name}.log"));
        let child = spawn(&bin.join(name), &args, &log);
        c.processes.push((name.to_string(), child));
    }
    for t in node_conformance::runtime::kubelet::KERNEL_TUNABLES {
        let path = Path::new("/proc/sys").join(t);
        if let Ok(v) = std::fs::read_to_string(&path) {
            c.tunables.push((path, v));
        }
    }
    // The kubelet serves on the machine's address (a kubelet refuses a loopback node IP) at a
    // free port, to clients with a certificate of the API server's kubelet client CA only.
    let kubelet_port = common::free_port();
    let route = run(Command::new("ip").args(["-4", "route", "get", "1.1.1.1"]));
    let words: Vec<&str> = route.split_whitespace().collect();
    let node_ip = words
        .iter()
        .position(|w| *w == "src")
        .and_then(|i| words.get(i + 1))
        .expect("the machine's address")
        .to_string();
    let root = c.dir.path().join("env/kubelet");
    std::fs::create_dir_all(&root).expect("kubelet root");
    let config = c.dir.path().join("kubelet-config.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
             cgroupDriver: cgroupfs\naddress: {node_ip}\nport: {kubelet_port}\nhealthzPort: 0\nreadOnlyPort: 0\n\
             authentication:\n  anonymous:\n    enabled: false\n  webhook:\n    enabled: false\n  x509:\n    clientCAFile: {}\n\
             authorization:\n  mode: AlwaysAllow\n\
             cgroupsPerQOS: false\nenforceNodeAllocatable: []\nmakeIPTablesUtilChains: false\n\
             failSwapOn: false\nsyncFrequency: 10s\n\
             evictionHard:\n  memory.available: 100Mi\n  nodefs.available: 1%\n  imagefs.available: 1%\n  nodefs.inodesFree: 1%\n",
            c.dir.path().join("api/kubelet-ca.crt").display()
        ),
    )
    .expect("kubelet config");
    let args = vec![
        format!("--config={}", config.display()),
        format!("--kubeconfig={kubeconfig}"),
        format!("--root-dir={}", root.display()),
        format!("--cert-dir={}", root.join("pki").display()),
        format!("--hostname-override={NODE}"),
        format!("--node-ip={node_ip}"),
        "--container-runtime=remote".into(),
        format!("--container-runtime-endpoint={endpoint}"),
        "--v=2".into(),
    ];
    let log = c.dir.path().join("kubelet.log");
    let child = spawn(&bin.join("kubelet"), &args, &log);
    c.processes.push(("kubelet".into(), child));
    // The node Ready before anything is applied.
    let began = Instant::now();
    loop {
        let out = c
            .kubectl(&[
                "get",
                "node",
                NODE,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ])
            .output()
            .expect("kubectl");
        if String::from_utf8_lossy(&out.stdout).trim() == "True" {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "node {NODE} not Ready in 120 s\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!("cluster up in {} s", up.elapsed().as_secs());
    c
}

/// The DaemonSet Sonobuoy makes of a plugin definition (its daemonset driver): the plugin's
/// podSpec with the plugin's container, Sonobuoy's worker beside it and the `results`
/// emptyDir they share.
fn sonobuoy_daemonset(plugin: &Value) -> Value {
    let mut pod = plugin["podSpec"].clone();
    let results_mount = json!({"name": "results", "mountPath": "/tmp/sonobuoy/results"});
    pod["containers"] = json!([
        plugin["spec"],
        {"name": "sonobuoy-worker", "image": "sonobuoy/sonobuoy:v0.57.3",
         "command": ["/sonobuoy"], "args": ["worker", "global", "-v", "5"],
         "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                 {"name": "RESULTS_DIR", "value": "/tmp/sonobuoy/results"}],
         "volumeMounts": [results_mount]}
    ]);
    pod["volumes"]
        .as_array_mut()
        .expect("volumes")
        .push(json!({"name": "results", "emptyDir": {}}));
    let labels = json!({"sonobuoy-plugin": "node-conformance", "sonobuoy-run": "e2e"});
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "sonobuoy-node-conformance-daemon-set", "namespace": NAMESPACE},
        "spec": {"selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": pod}}
    })
}

#[test]
fn every_node_of_a_real_cluster_runs_the_daemonset_and_is_collected() {
    let Some(peers) = peers() else { return };
    let cluster = start_cluster(&peers);
    let began = Instant::now();
    let image = cluster.image.clone().expect("image");
    let run_id = format!("e2e{}", std::process::id());

    // The Sonobuoy plugin, as Sonobuoy would deploy it: valid for this API server.
    let plugin_yaml = run(common::command().args([
        "deploy",
        "sonobuoy-plugin",
        "--image",
        &image,
        "--focus",
        FOCUS,
    ]));
    let plugin: Value = serde_saphyr::from_str(&plugin_yaml).expect("plugin YAML");
    assert_eq!(plugin["sonobuoy-config"]["driver"], "DaemonSet");
    assert_eq!(plugin["sonobuoy-config"]["result-format"], "junit");

    let manifest = run(common::command().args([
        "deploy",
        "daemonset",
        "--image",
        &image,
        "--namespace",
        NAMESPACE,
        "--focus",
        FOCUS,
        "--node-selector",
        &format!("kubernetes.io/hostname={NODE}"),
        "--run-id",
        &run_id,
    ]));
    let docs: Vec<Value> = serde_saphyr::from_multiple(&manifest).expect("manifest YAML");
    assert_eq!(docs.len(), 2, "{manifest}");
    // The whole manifest as printed is valid for this API server, privileged included. A dry
    // run of the DaemonSet needs its namespace: that one is applied as printed first.
    let ns_yaml = serde_json::to_string(&docs[0]).expect("JSON");
    let out = cluster.kubectl_stdin(&["apply", "-f", "-"], &ns_yaml);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dry = cluster.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &manifest);
    assert!(
        dry.status.success(),
        "the printed manifest is refused: {}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let sonobuoy = serde_json::to_string(&sonobuoy_daemonset(&plugin)).expect("JSON");
    let dry = cluster.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &sonobuoy);
    assert!(
        dry.status.success(),
        "the Sonobuoy plugin's DaemonSet is refused: {}",
        String::from_utf8_lossy(&dry.stderr)
    );

    let mut cluster = cluster;
    cluster.host_results = Some(Path::new("/var/log/node-conformance").join(&run_id));
    // Applied as printed: privileged, the host's namespaces, the hostPath results.
    let out = cluster.kubectl_stdin(&["apply", "-f", "-"], &manifest);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // collect waits for the run and reads it back through the API server.
    let out_dir = cluster.dir.path().join("collected");
    let collect = common::command()
        .args(["collect", "--namespace", NAMESPACE, "--timeout", "240"])
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("collect runs");
    let said = String::from_utf8_lossy(&collect.stdout).into_owned();
    let pods = cluster
        .kubectl(&["get", "pods", "-n", NAMESPACE, "-o", "yaml"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(
        collect.status.success(),
        "collect: {said}\n{}\npods: {pods}\n{}",
        String::from_utf8_lossy(&collect.stderr),
        cluster.logs()
    );
    assert!(said.contains(&format!("{NODE}: collected")), "{said}");
    assert!(said.contains("1 of 1 node(s) collected"), "{said}");

    let node_dir = out_dir.join(NODE);
    let results: Value = serde_json::from_slice(
        &std::fs::read(node_dir.join("results.json")).expect("results.json collected"),
    )
    .expect("results.json parses");
    let junit = std::fs::read_to_string(node_dir.join("junit_01.xml")).expect("junit collected");
    quick_junit::Report::deserialize_from_str(&junit).expect("junit parses");
    let selected = run(common::command().args(["list", "--focus", FOCUS]))
        .lines()
        .count();
    let counts = &results["counts"];
    assert_eq!(
        counts["passed"].as_u64().unwrap() + counts["failed"].as_u64().unwrap(),
        selected as u64,
        "{counts}"
    );
    assert_eq!(results["focus"], FOCUS);
    // The same results on the node's hostPath, and the pod Ready once its run ended.
    let host = cluster.host_results.clone().expect("host results");
    assert_eq!(
        std::fs::read(host.join("results.json")).expect("results on the node"),
        std::fs::read(node_dir.join("results.json")).expect("collected")
    );
    // The readiness probe runs every 10 s: Ready follows the results within one period.
    let began_ready = Instant::now();
    let ready = loop {
        let ready = run(&mut cluster.kubectl(&[
            "get",
            "pods",
            "-n",
            NAMESPACE,
            "-o",
            "jsonpath={.items[0].status.conditions[?(@.type==\"Ready\")].status}",
        ]));
        if ready.trim() == "True" || began_ready.elapsed() > Duration::from_secs(30) {
            break ready;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(ready.trim(), "True");
    eprintln!(
        "the pod's run: peak RSS {} KiB, {} CPU seconds; {counts}",
        results["peak_rss_kib"], results["cpu_seconds"]
    );

    // `report`, once the binary has it: it reads the per-node directories collect wrote.
    let has_report = common::command()
        .args(["report", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_report {
        let report = common::command()
            .arg("report")
            .arg(&node_dir)
            .current_dir(&out_dir)
            .output()
            .expect("report runs");
        assert!(
            report.status.code().is_some_and(|c| c <= 1),
            "report: {}",
            String::from_utf8_lossy(&report.stderr)
        );
    }
    drop(cluster);
    assert!(
        !Path::new("/var/log/node-conformance")
            .join(&run_id)
            .exists()
    );
    eprintln!(
        "cluster test: {:.0} s after the cluster was up",
        began.elapsed().as_secs_f64()
    );
}

/// `run` as Sonobuoy starts it: SONOBUOY_RESULTS_DIR set, the done file naming a tarball of
/// the results, the block in the output, and the process idle until SIGTERM.
#[test]
fn under_sonobuoy_the_done_file_names_the_results_and_the_run_stays() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    let mut child = common::command()
        .args(["run", "--rootfs", "/", "--focus", FOCUS])
        .env("SONOBUOY", "true")
        .env("SONOBUOY_RESULTS_DIR", &results)
        .env("SONOBUOY_K8S_VERSION", "v1.20.2")
        .env("REPORT_PATH", dir.path().join("elsewhere"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let done = results.join("done");
    let began = Instant::now();
    while !done.exists() {
        assert!(began.elapsed() < Duration::from_secs(60), "no done file");
        std::thread::sleep(Duration::from_millis(100));
    }
    let named = std::fs::read_to_string(&done).unwrap();
    assert_eq!(
        named,
        results
            .join("node-conformance.tar.gz")
            .display()
            .to_string()
    );
    let mut names = Vec::new();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&named).unwrap(),
    ));
    for entry in tar.entries().unwrap() {
        let mut e = entry.unwrap();
        let mut text = String::new();
        e.read_to_string(&mut text).unwrap();
        names.push(e.path().unwrap().display().to_string());
        assert!(!text.is_empty());
    }
    assert_eq!(names, ["junit_01.xml", "results.json"]);
    assert!(
        !dir.path().join("elsewhere").exists(),
        "REPORT_PATH was used"
    );
    // It stays: a DaemonSet's container that exits is started again.
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "the run exited");
    assert_eq!(
        common::command()
            .args(["finished", "--result-dir"])
            .arg(&results)
            .status()
            .unwrap()
            .code(),
        Some(0)
    );
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let stopped = Instant::now();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(stopped.elapsed() < Duration::from_secs(5));
    assert!(status.code().is_some_and(|c| c <= 1), "{status}");
    let block = logs::decode(&out).expect("a block").expect("whole");
    assert_eq!(block.files.len(), 2);
    assert_eq!(
        block.files[1].1,
        std::fs::read(results.join("results.json")).unwrap()
    );
    assert!(out.contains("has ended (exit code"), "{out}");
}

/// A run with no results still ends the contract: done names the error.
#[test]
fn under_sonobuoy_a_usage_error_is_what_done_names() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = common::command()
        .args(["run", "--rootfs", "/", "--focus", "("])
        .env("SONOBUOY_RESULTS_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let done = dir.path().join("done");
    let began = Instant::now();
    while !done.exists() {
        assert!(began.elapsed() < Duration::from_secs(30), "no done file");
        std::thread::sleep(Duration::from_millis(50));
    }
    let named = std::fs::read_to_string(&done).unwrap();
    assert_eq!(named, dir.path().join("error.txt").display().to_string());
    assert!(
        std::fs::read_to_string(&named)
            .unwrap()
            .contains("regular expression")
    );
    assert_eq!(
        common::command()
            .args(["finished", "--result-dir"])
            .arg(dir.path())
            .status()
            .unwrap()
            .code(),
        Some(1)
    );
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(2));
    let block = logs::decode(&out).expect("a block").expect("whole");
    assert_eq!(block.exit, 2);
    assert!(block.error.unwrap().contains("regular expression"));
}

/// A fake API server for `collect`: answers each GET by its path (the query dropped), 404
/// otherwise, and records the paths asked.
fn fake_api(
    answers: Vec<(String, u16, String)>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&asked);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf).into_owned();
            let target = head.split(' ').nth(1).unwrap_or_default().to_string();
            seen.lock().unwrap().push(target.clone());
            let path = target.split('?').next().unwrap_or_default();
            let (status, body) = answers
                .iter()
                .find(|(p, _, _)| p == path)
                .map(|(_, s, b)| (*s, b.clone()))
                .unwrap_or((404, r#"{"kind":"Status","message":"not found"}"#.into()));
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, asked)
}

/// `collect` names each node: collected, not done (with its pod's state), failed (with why),
/// and the pods the DaemonSet has yet to make; only the collected node gets a directory.
#[test]
fn collect_names_nodes_not_done_and_failed() {
    let dir = tempfile::tempdir().unwrap();
    let results = br#"{"counts": {"tests": 72, "passed": 7, "failed": 0, "skipped": 65}}"#;
    let block = logs::encode(
        "r1",
        0,
        None,
        &[
            ("junit_01.xml", b"<testsuites/>"),
            ("results.json", results),
        ],
    );
    let pod = |name: &str, node: &str, phase: &str, waiting: Value| {
        json!({"metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
               "spec": {"nodeName": node},
               "status": {"phase": phase, "containerStatuses": [
                   {"name": "node-conformance", "state": waiting}]}})
    };
    let pods = json!({"items": [
        pod("p1", "n1", "Running", json!({"running": {}})),
        pod("p2", "n2", "Running", json!({"running": {}})),
        pod("p3", "n3", "Pending", json!({"waiting": {"reason": "ImagePullBackOff", "message": "pull access denied"}})),
        pod("p4", "../n4", "Running", json!({"running": {}})),
    ]});
    let ns = "/api/v1/namespaces/nc";
    let (url, asked) = fake_api(vec![
        (format!("{ns}/pods"), 200, pods.to_string()),
        (
            "/apis/apps/v1/namespaces/nc/daemonsets/node-conformance".into(),
            200,
            json!({"status": {"desiredNumberScheduled": 5}}).to_string(),
        ),
        (
            format!("{ns}/pods/p1/log"),
            200,
            format!("console\n{block}idle\n"),
        ),
        (
            format!("{ns}/pods/p2/log"),
            200,
            "running the tests\n".into(),
        ),
        (
            format!("{ns}/pods/p3/log"),
            400,
            r#"{"kind":"Status","message":"container is waiting to start"}"#.into(),
        ),
        (format!("{ns}/pods/p4/log"), 200, block.clone()),
    ]);
    let kubeconfig = dir.path().join("kubeconfig");
    write_kubeconfig(&kubeconfig, &url, "t0ken");
    let out = dir.path().join("out");
    let collect = common::command()
        .args(["collect", "--namespace", "nc", "--run-id", "r1"])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&collect.stdout).into_owned();
    assert_eq!(collect.status.code(), Some(1), "{said}");
    for line in [
        "n1: collected, passed (72 tests: 7 passed, 0 failed, 65 skipped)",
        "n2: not done: pod p2 Running, its run has not ended",
        "n3: failed: pod p3: ImagePullBackOff: pull access denied",
        "../n4: failed: node name \"../n4\" cannot be a directory name",
        "1 pod(s) of the DaemonSet not created yet",
        "1 of 5 node(s) collected",
    ] {
        assert!(said.contains(line), "{line:?} not in:\n{said}");
    }
    assert_eq!(std::fs::read(out.join("n1/results.json")).unwrap(), results);
    assert_eq!(
        std::fs::read_to_string(out.join("n1/junit_01.xml")).unwrap(),
        "<testsuites/>"
    );
    let mut made: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    assert_eq!(made, ["n1"]);
    assert!(!dir.path().join("n4").exists());
    let asked = asked.lock().unwrap().clone();
    assert!(
        asked.iter().any(|p| p.contains(
            "labelSelector=app.kubernetes.io%2Fname%3Dnode-conformance%2Cnode-conformance.run%3Dr1"
        )),
        "{asked:?}"
    );
}
