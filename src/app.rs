//! The subcommands, from parsed arguments to an outcome; `main` maps it to an exit code.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::cli::{CollectArgs, ControlPlaneArgs, DeployTarget, ReportArgs, RunArgs, SelectArgs};
use crate::cluster;
use crate::fleet;
use crate::node::Node;
use crate::node::rootfs::RootFs;
use crate::report::{self, RunInfo, console::Console};
use crate::runner::{self, DEFAULT_SKIP, RunRecord, RunState, Selection};
use crate::runtime::{self, Services};
use crate::spec::SysSpec;
use crate::suite::{self, Context};

/// Bad input or an unusable environment: exit code 2, one line naming what is wrong.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn selection(args: &SelectArgs) -> Result<Selection, UsageError> {
    let skip = args.skip.as_deref().unwrap_or(DEFAULT_SKIP);
    Selection::new(args.focus.as_deref(), Some(skip)).map_err(UsageError)
}

/// `list`: the selected names, one per line.
pub fn list(args: &SelectArgs) -> Result<Vec<String>, UsageError> {
    let sel = selection(args)?;
    Ok(runner::selected_names(&suite::registry(), &sel))
}

fn default_rootfs() -> PathBuf {
    let mounted = Path::new("/rootfs");
    if mounted.is_dir() {
        mounted.to_path_buf()
    } else {
        PathBuf::from("/")
    }
}

/// `certs`: the expiration table of the node's certificates.
pub fn certs(rootfs: Option<&Path>, pki_dir: &Path) -> Result<String, UsageError> {
    let rootfs = rootfs.map_or_else(default_rootfs, Path::to_path_buf);
    let root = RootFs::open(&rootfs)
        .map_err(|e| UsageError(format!("root fs {}: {e}", rootfs.display())))?;
    Ok(report::certs::render(&root, pki_dir))
}

/// `run`: returns whether every selected test passed.
pub fn run(args: &RunArgs) -> Result<bool, UsageError> {
    let sel = selection(&args.select)?;
    let rootfs = args.rootfs.clone().unwrap_or_else(default_rootfs);
    let root = RootFs::open(&rootfs)
        .map_err(|e| UsageError(format!("root fs {}: {e}", rootfs.display())))?;
    let (spec, spec_name) = match &args.system_spec {
        Some(path) => (
            SysSpec::load(path).map_err(|e| UsageError(e.to_string()))?,
            path.display().to_string(),
        ),
        None => (SysSpec::builtin(), "built-in".to_string()),
    };
    let parallelism = args.parallelism.map(usize::from);

    let run_id = runtime::new_run_id();
    let info = RunInfo {
        version: crate::version(),
        run_id: run_id.clone(),
        hostname: rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
        rootfs: rootfs.display().to_string(),
        focus: sel.focus().to_string(),
        skip: sel.skip().to_string(),
        system_spec: spec_name,
    };
    let tests = suite::registry();
    let options = crate::node::Options {
        pod_manifest_path: args.pod_manifest_path.clone(),
        pki_dir: args.pki_dir.clone(),
        kubelet: crate::node::kubelet::Hints {
            config: args.kubelet_config.clone(),
            kubeconfig: args.kubeconfig.clone(),
        },
    };
    let node = Node::new(root, options);
    // Checked before anything runs: a kubelet that cannot be started is a usage error, and
    // the node's own kubelet is read now, before this run's kubelet is there to be found.
    let needs_kubelet = tests.iter().any(|t| {
        t.needs.contains(&suite::Service::ControlPlane)
            && sel.reason_unselected(&t.name()).is_none()
    });
    let managed = match &args.kubelet_binary {
        Some(binary) if needs_kubelet => Some(
            runtime::kubelet::preflight(
                &node.root,
                binary,
                args.container_runtime_endpoint.as_deref(),
                node.kubelet().ok(),
            )
            .map_err(UsageError)?,
        ),
        _ => None,
    };
    // An attached kubelet trusts the CA `kubelet-config` made: the control plane serves with
    // it. One that cannot be believed is refused here, before anything runs.
    let ca = if needs_kubelet && managed.is_none() && !args.insecure_http {
        runtime::state::load_attach_ca(&node.root).map_err(|e| {
            UsageError(format!(
                "the credentials kubelet-config made cannot be used: {e}; run `node-conformance kubelet-config` again"
            ))
        })?
    } else {
        None
    };
    let services = Services::new(
        run_id,
        args.workload_binary.clone(),
        runtime::ApiOptions {
            port: args.api_server_port,
            insecure_http: args.insecure_http,
            ca,
            bind: None,
        },
        args.pod_image.clone(),
        managed,
    );
    let console = Arc::new(Console::new());
    let ctx = Arc::new(Context {
        node,
        spec,
        services,
        console: Arc::clone(&console),
        waits: suite::functional::Waits {
            node_ready: Duration::from_secs(args.node_ready_timeout),
            mirror_pod: Duration::from_secs(args.mirror_pod_timeout),
            pod_start: Duration::from_secs(args.pod_start_timeout),
            ..suite::functional::Waits::default()
        },
    });
    let state = RunState::new(&tests);
    let finisher = Arc::new(Finisher {
        done: Mutex::new(false),
        aside: Mutex::new(None),
        stale: Mutex::new(Vec::new()),
        state: Arc::clone(&state),
        ctx: Arc::clone(&ctx),
        info,
        dir: args.result_dir.clone(),
        results: OnceLock::new(),
        console: Arc::clone(&console),
    });
    // Nothing on disk has changed yet; from here on a signal is answered with results.
    let signals = watch_signals(Arc::clone(&finisher));
    let results = report::ResultDir::open(&args.result_dir).map_err(UsageError)?;
    if let Some(note) = &results.note {
        console.line(note);
    }
    // Alive from here to the process's end, however it ends: what a later run may not remove.
    let _alive = runtime::recovery::hold(&finisher.info.run_id);
    let stale = results.set_aside_stale();
    if let Ok(mut slot) = finisher.stale.lock() {
        slot.clone_from(&stale);
    }
    let _ = finisher.results.set(results);
    // What dead runs left is removed beside the tests, not before them: a runtime that does
    // not answer must not hold the run up, and a run that ends first leaves the rest to the
    // next one.
    let (recovered, recovery) = std::sync::mpsc::channel::<()>();
    {
        let (ctx, console) = (Arc::clone(&ctx), Arc::clone(&console));
        let _ = std::thread::Builder::new()
            .name("recovery".into())
            .spawn(move || {
                for line in ctx.services.recover(&ctx.node) {
                    console.line(&line);
                }
                let _ = recovered.send(());
            });
    }
    let timeout = Duration::from_secs(args.test_timeout);
    // Once the tests are selected, one thread on the side: the facts they read ahead first
    // (a test may be waiting for them), then the JUnit cases of the unselected tests, then
    // the earlier results set aside.
    let selected = |reads: Vec<fn(&suite::Context)>| {
        let (ctx, records) = (Arc::clone(&ctx), state.snapshot(None).records);
        let side_finisher = Arc::clone(&finisher);
        let (tx, rx) = std::sync::mpsc::channel();
        let side = std::thread::Builder::new().spawn(move || {
            for read in reads {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&ctx)));
            }
            let prepared = report::junit::prepare(&records);
            side_finisher.remove_stale();
            let _ = tx.send(prepared);
        });
        match (side, finisher.aside.lock()) {
            (Ok(_), Ok(mut slot)) => *slot = Some(rx),
            // No thread to spare: the earlier results go now, the rest is done in line.
            (Err(_), _) | (Ok(_), Err(_)) => finisher.remove_stale(),
        }
    };
    let run = runner::run(
        &tests,
        &ctx,
        &sel,
        (parallelism, timeout),
        &console,
        &state,
        selected,
    );
    // A run that ends normally lets the recovery finish (its steps are bounded); a signal does
    // not wait for it.
    let _ = recovery.recv_timeout(RECOVERY_WAIT);
    if let Some(handle) = signals {
        handle.close();
    }
    finisher.finish(run, None)
}

/// `report`: fleet.xml, fleet.json and fleet.html from the nodes' results. Inputs that cannot
/// be read are named on stderr and left out; the report is written when at least one node's
/// results were read (`Ok(true)`, whatever the nodes' verdicts). No readable node, or an
/// output dir or file that cannot be written, is a usage error.
pub fn report(args: &ReportArgs) -> Result<bool, UsageError> {
    let (files, skipped) = fleet::discover(&args.dirs, &args.output);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let fleet = fleet::load(&files, skipped, threads);
    for s in &fleet.skipped {
        eprintln!(
            "node-conformance: skipped {}: {}",
            s.path.display(),
            s.reason
        );
    }
    if fleet.nodes.is_empty() {
        return Err(UsageError(format!(
            "no node's results could be read from {}: nothing to report",
            args.dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let out = report::ResultDir::open(&args.output).map_err(UsageError)?;
    if let Some(note) = &out.note {
        println!("{note}");
    }
    // fleet.xml, the largest by far, is streamed to disk while the other two are made beside
    // it in memory (a few MB for 5,000 nodes).
    let (xml, side) = std::thread::scope(|scope| {
        let side = scope.spawn(|| {
            let render = |write: fn(&fleet::Fleet, &mut Vec<u8>) -> std::io::Result<()>| {
                let mut bytes = Vec::new();
                write(&fleet, &mut bytes).map(|()| bytes)
            };
            (render(fleet::json::write), render(fleet::html::write))
        });
        let xml = out.write_with(fleet::FLEET_XML, |mut w| {
            fleet::junit::write(&fleet, &mut w)
        });
        (xml, side.join())
    });
    let mut written = Vec::new();
    let mut errors = Vec::new();
    let mut record = |name: &str, result: std::io::Result<()>| {
        let path = out.path.join(name).display().to_string();
        match result {
            Ok(()) => written.push(path),
            Err(e) => errors.push(format!("cannot write {path}: {e}")),
        }
    };
    record(fleet::FLEET_XML, xml);
    let (json, html) = side.unwrap_or_else(|_| {
        let failed = || Err(std::io::Error::other("its rendering failed"));
        (failed(), failed())
    });
    for (name, rendered) in [(fleet::FLEET_JSON, json), (fleet::FLEET_HTML, html)] {
        record(name, rendered.and_then(|bytes| out.write(name, &bytes)));
    }
    println!(
        "fleet of {} nodes, {} with failures; {} inputs skipped",
        fleet.nodes.len(),
        fleet.nodes_failed(),
        fleet.skipped.len()
    );
    for w in &written {
        println!("wrote {w}");
    }
    if errors.is_empty() {
        Ok(true)
    } else {
        Err(UsageError(errors.join("; ")))
    }
}

/// `run`, and with `--keep-running` or under Sonobuoy (`SONOBUOY_RESULTS_DIR` set) what a
/// pod on each node of a cluster does after it: under Sonobuoy the results go to Sonobuoy's
/// dir, a tarball of them is made and the `done` file names it ([`cluster::sonobuoy`]); the
/// results are printed as a block ([`cluster::logs`]) for `collect` to read from the pod's
/// log, then a line says the run ended, and the process waits for SIGTERM or SIGINT: a
/// DaemonSet's pod restarts a container that exits, which would run the tests again.
pub fn run_in_cluster(args: &RunArgs) -> Result<bool, UsageError> {
    let sonobuoy = cluster::sonobuoy::results_dir(|k| std::env::var(k).ok());
    if !args.keep_running && sonobuoy.is_none() {
        return run(args);
    }
    let mut args = args.clone();
    if let Some(dir) = &sonobuoy {
        println!(
            "Sonobuoy: the results go to {} and {} names them",
            dir.display(),
            dir.join(cluster::sonobuoy::DONE_FILE).display()
        );
        args.result_dir.clone_from(dir);
    }
    let outcome = run(&args);
    let exit = match &outcome {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(_) => 2,
    };
    let mut error = outcome.as_ref().err().map(|e| e.0.clone());
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();
    if error.is_none() {
        for name in [report::JUNIT_FILE, report::JSON_FILE] {
            match read_result(&args.result_dir.join(name)) {
                Ok(bytes) => files.push((name, bytes)),
                Err(e) => error = Some(e),
            }
        }
    }
    if error.is_some() {
        files.clear();
    }
    let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    if let Some(dir) = &sonobuoy {
        match cluster::sonobuoy::done(dir, &borrowed, error.as_deref()) {
            Ok(path) => println!("Sonobuoy: done, {}", path.display()),
            Err(e) => eprintln!("node-conformance: error: Sonobuoy's done file: {e}"),
        }
    }
    let run_id = files
        .iter()
        .find(|(n, _)| *n == report::JSON_FILE)
        .and_then(|(_, b)| serde_json::from_slice::<serde_json::Value>(b).ok())
        .and_then(|v| v["run_id"].as_str().map(str::to_string))
        .unwrap_or_else(|| "none".into());
    let node = std::env::var("NODE_NAME").unwrap_or_else(|_| {
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned()
    });
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(
            cluster::logs::encode(&run_id, exit, error.as_deref(), &borrowed).as_bytes(),
        );
        let _ = writeln!(
            out,
            "node-conformance: the run on node {node} has ended (exit code {exit}); idle until SIGTERM"
        );
        let _ = out.flush();
    }
    match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) {
        Ok(mut signals) => {
            let _ = signals.forever().next();
        }
        // No way to hear a signal: its default action ends the process.
        Err(_) => loop {
            std::thread::park();
        },
    }
    outcome
}

/// A result file of this run, at most as large as a log block may carry.
fn read_result(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(cluster::logs::MAX_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > cluster::logs::MAX_FILE {
        return Err(format!(
            "{} is over {} bytes",
            path.display(),
            cluster::logs::MAX_FILE
        ));
    }
    Ok(bytes)
}

/// `finished`: whether the result dir holds a finished run's results (`results.json` is
/// written last, when the run ends; a run moves an earlier one aside when it starts).
pub fn finished(result_dir: &Path) -> bool {
    result_dir.join(report::JSON_FILE).is_file()
}

/// `deploy daemonset` and `deploy sonobuoy-plugin`: the manifest, as YAML.
pub fn deploy(target: &DeployTarget) -> Result<String, UsageError> {
    let (args, plugin) = match target {
        DeployTarget::Daemonset(args) => (args, None),
        DeployTarget::SonobuoyPlugin {
            deploy,
            plugin_name,
        } => (deploy, Some(plugin_name)),
    };
    // A bad regex is refused here, not on every node.
    selection(&args.select)?;
    let options = cluster::deploy::Options {
        image: args.image.clone(),
        namespace: args.namespace.clone(),
        focus: args.select.focus.clone(),
        skip: args.select.skip.clone(),
        node_selector: args.node_selector.clone(),
        control_plane: !args.exclude_control_plane,
        host_result_dir: (!args.host_result_dir.is_empty())
            .then(|| PathBuf::from(&args.host_result_dir)),
        run_id: args.run_id.clone().unwrap_or_else(runtime::new_run_id),
    };
    match plugin {
        None => cluster::deploy::daemonset(&options),
        Some(name) => cluster::deploy::sonobuoy_plugin(&options, name),
    }
    .map_err(UsageError)
}

/// `collect`: true when every node's results were collected.
pub fn collect(args: &CollectArgs) -> Result<bool, UsageError> {
    let k = cluster::collect::kubeconfig(args.kubeconfig.as_deref()).map_err(UsageError)?;
    let options = cluster::collect::Options {
        namespace: args.namespace.clone(),
        run_id: args.run_id.clone(),
        out: args.out.clone(),
        timeout: Duration::from_secs(args.timeout),
    };
    let summary =
        cluster::collect::collect(&k, &options, &|line| println!("{line}")).map_err(UsageError)?;
    for (node, state) in &summary.nodes {
        if matches!(state, cluster::collect::NodeState::NotDone(_)) {
            println!("{}", cluster::collect::line(node, state));
        }
    }
    if summary.missing_pods > 0 {
        println!(
            "{} pod(s) of the DaemonSet not created yet",
            summary.missing_pods
        );
    }
    if summary.nodes.is_empty() {
        println!("no pod of {} in namespace {}", cluster::APP, args.namespace);
    }
    let collected = summary
        .nodes
        .iter()
        .filter(|(_, s)| matches!(s, cluster::collect::NodeState::Collected { .. }))
        .count();
    println!(
        "{collected} of {} node(s) collected into {}",
        summary.nodes.len() + summary.missing_pods,
        args.out.display()
    );
    Ok(summary.all_collected())
}

/// `control-plane`: the local control plane on this machine until SIGINT or SIGTERM, over TLS
/// with credentials made for the run (an admin kubeconfig for kubectl is written where only its
/// user reads it), or over plain HTTP with `--insecure-http`; with `--kubelet-binary`, also a
/// kubelet started as `run` starts one: a one-node cluster. At the end the kubelet is stopped
/// and everything the run made removed, the kubeconfig included.
pub fn control_plane(args: &ControlPlaneArgs) -> Result<(), UsageError> {
    let bind = args
        .api_server_bind_address
        .unwrap_or(crate::controlplane::DEFAULT_BIND);
    if args.kubelet_binary.is_some() && !bind.is_loopback() {
        return Err(UsageError(
            "--kubelet-binary serves on 127.0.0.1 only: drop --api-server-bind-address".into(),
        ));
    }
    if args.kubelet_binary.is_some() && args.insecure_http {
        return Err(UsageError(
            "--kubelet-binary needs the authenticated control plane: drop --insecure-http".into(),
        ));
    }
    if args.insecure_http && !bind.is_loopback() {
        eprintln!(
            "node-conformance: warning: serving the Kubernetes API on {bind} WITHOUT AUTHENTICATION: anyone who can reach it controls this node's pods"
        );
    }
    let root = RootFs::open("/").map_err(|e| UsageError(format!("root fs /: {e}")))?;
    let node = Node::new(root, crate::node::Options::default());
    let plan = match &args.kubelet_binary {
        Some(binary) => Some(
            runtime::kubelet::preflight(
                &node.root,
                binary,
                args.container_runtime_endpoint.as_deref(),
                node.kubelet().ok(),
            )
            .map_err(UsageError)?,
        ),
        None => None,
    };
    let run_id = runtime::new_run_id();
    let _alive = runtime::recovery::hold(&run_id);
    let services = Services::new(
        run_id.clone(),
        PathBuf::from("/proc/self/exe"),
        runtime::ApiOptions {
            port: args.api_server_port,
            insecure_http: args.insecure_http,
            ca: None,
            bind: Some(bind),
        },
        None,
        plan,
    );
    // Registered before anything starts: a signal from here on stops it.
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| UsageError(format!("cannot watch signals: {e}")))?;
    let namespace = runtime::state::namespace(&run_id);
    let mut kubeconfig = None;
    let started = (|| -> Result<String, String> {
        let cp = services.control_plane().map_err(unavailable)?;
        let with = match services.managed_kubelet(&node, &namespace) {
            Some(m) => format!(", with {}", m.map_err(unavailable)?.description),
            None => String::new(),
        };
        let Some(creds) = &cp.credentials else {
            return Ok(format!(
                "serving the Kubernetes API on {} (plain HTTP, no authentication){with}",
                cp.url
            ));
        };
        let text = runtime::credentials::kubeconfig(
            &cp.url,
            &creds.ca.cert().cert_pem,
            &runtime::credentials::User::Token(&creds.admin_token),
        );
        let written =
            AdminKubeconfig::write(&node.root, &run_id, args.admin_kubeconfig.as_deref(), &text)?;
        let line = format!(
            "serving the Kubernetes API on {} (TLS, authenticated){with}; admin kubeconfig: {}",
            cp.url,
            written.path.display()
        );
        kubeconfig = Some(written);
        Ok(line)
    })();
    if let Ok(line) = &started {
        println!("{line}");
        let mut signals = signals;
        let _ = signals.forever().next();
    }
    if let Some(k) = kubeconfig {
        for line in k.remove() {
            println!("{line}");
        }
    }
    for line in services.shutdown(&node.root) {
        println!("{line}");
    }
    started.map(|_| ()).map_err(UsageError)
}

fn unavailable(e: runtime::Unavailable) -> String {
    match e {
        runtime::Unavailable::Absent(m) | runtime::Unavailable::Broken(m) => m,
    }
}

/// The admin kubeconfig `control-plane` writes, and what to remove at the end.
struct AdminKubeconfig {
    path: PathBuf,
    /// The file named by `--admin-kubeconfig`, on this machine.
    local: bool,
    /// The run's directory, when this made it (no kubelet made it first).
    run_dir: Option<(runtime::nodefs::Writable, PathBuf)>,
}

impl AdminKubeconfig {
    /// Writes `text` as a new file of mode 0600: at `explicit`; else as root in the run's
    /// directory on the node (made if no kubelet made it), else in `$XDG_RUNTIME_DIR`.
    fn write(
        fs: &RootFs,
        run_id: &str,
        explicit: Option<&Path>,
        text: &str,
    ) -> Result<Self, String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let local = |path: PathBuf| -> Result<Self, String> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&path)
                .and_then(|mut f| f.write_all(text.as_bytes()).map(|()| f))
                .map_err(|e| {
                    format!("cannot write the admin kubeconfig {}: {e}", path.display())
                })?;
            let _ = f.flush();
            Ok(Self {
                path,
                local: true,
                run_dir: None,
            })
        };
        if let Some(path) = explicit {
            return local(path.to_path_buf());
        }
        if !rustix::process::geteuid().is_root() {
            let dir = std::env::var_os("XDG_RUNTIME_DIR").ok_or_else(|| {
                "as a user other than root, give --admin-kubeconfig FILE (a path only you can \
                 read): there is no XDG_RUNTIME_DIR to write it in"
                    .to_string()
            })?;
            return local(Path::new(&dir).join(format!("node-conformance-{run_id}.kubeconfig")));
        }
        let w = runtime::nodefs::Writable::node_root(fs)?;
        let dir = runtime::state::run_dir(run_id);
        let made = match w.lstat(&dir) {
            Ok(_) => false,
            Err(_) => {
                w.private_dir(Path::new(runtime::state::RUNS_DIR))?;
                w.mkdir(&dir, 0o700)
                    .map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
                true
            }
        };
        let path = dir.join("admin.kubeconfig");
        w.write_new(&path, text.as_bytes(), 0o600)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(Self {
            path,
            local: false,
            run_dir: made.then_some((w, dir)),
        })
    }

    /// Removes what [`AdminKubeconfig::write`] made. One line per thing not removed.
    fn remove(self) -> Vec<String> {
        let done = if self.local {
            std::fs::remove_file(&self.path).map(|()| self.path.clone())
        } else {
            match &self.run_dir {
                Some((w, dir)) => w.remove_all(dir).map(|()| dir.clone()),
                // In a kubelet's run directory: removed with it.
                None => return Vec::new(),
            }
        };
        match done {
            Ok(p) => vec![format!("removed {}", p.display())],
            Err(e) => vec![format!("could not remove {}: {e}", self.path.display())],
        }
    }
}

/// `kubelet-config`: the credentials an attached kubelet needs, made once and kept in
/// [`runtime::state::ATTACH_DIR`] on the node (root-only; the CA `run` then serves with), and
/// what to tell the kubelet. With `insecure_http`, an http:// kubeconfig without credentials,
/// and nothing written.
pub fn kubelet_config(
    rootfs: Option<&Path>,
    port: u16,
    static_pod_path: &Path,
    insecure_http: bool,
) -> Result<String, UsageError> {
    let settings = format!(
        "# Set in the kubelet's KubeletConfiguration (--config), then restart the kubelet.\n\
         apiVersion: kubelet.config.k8s.io/v1beta1\n\
         kind: KubeletConfiguration\n\
         staticPodPath: {}\n",
        static_pod_path.display()
    );
    if insecure_http {
        return Ok(format!(
            "# A kubeconfig for the kubelet (--kubeconfig): the local control plane served with\n\
             # --insecure-http, no credentials. While it runs, anyone on this node can use it.\n\
             apiVersion: v1\nkind: Config\nclusters:\n- name: node-conformance\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             contexts:\n- name: node-conformance\n  context:\n    cluster: node-conformance\n    user: kubelet\n\
             current-context: node-conformance\nusers:\n- name: kubelet\n  user: {{}}\n---\n{settings}"
        ));
    }
    let rootfs = rootfs.map_or_else(default_rootfs, Path::to_path_buf);
    let root = RootFs::open(&rootfs)
        .map_err(|e| UsageError(format!("root fs {}: {e}", rootfs.display())))?;
    let node = Node::new(root, crate::node::Options::default());
    let fail = |e: String| UsageError(format!("cannot make the kubelet's credentials: {e}"));
    let w = runtime::nodefs::Writable::node_root(&node.root).map_err(fail)?;
    let dir = Path::new(runtime::state::ATTACH_DIR);
    w.private_dir(dir).map_err(fail)?;
    let ca = match runtime::state::load_attach_ca(&node.root).map_err(fail)? {
        Some(ca) => ca,
        None => {
            let ca = runtime::credentials::Authority::generate(
                "node-conformance-attach-ca",
                runtime::credentials::ATTACH_VALIDITY_DAYS,
            )
            .map_err(fail)?;
            w.write_replace(&dir.join("ca.key"), ca.cert().key_pem.as_bytes(), 0o600)
                .and_then(|()| {
                    w.write_replace(&dir.join("ca.crt"), ca.cert().cert_pem.as_bytes(), 0o644)
                })
                .map_err(|e| fail(e.to_string()))?;
            ca
        }
    };
    let client = ca
        .issue(
            &runtime::credentials::Profile::Client {
                user: format!("system:node:{}", node.name()),
                groups: vec!["system:nodes".into()],
            },
            runtime::credentials::ATTACH_VALIDITY_DAYS,
        )
        .map_err(fail)?;
    let path = dir.join("kubelet.kubeconfig");
    let text = runtime::credentials::kubeconfig(
        &format!("https://127.0.0.1:{port}"),
        &ca.cert().cert_pem,
        &runtime::credentials::User::Certificate {
            cert_pem: &client.cert_pem,
            key_pem: &client.key_pem,
        },
    );
    w.write_replace(&path, text.as_bytes(), 0o600)
        .map_err(|e| fail(e.to_string()))?;
    Ok(format!(
        "# Wrote {path} (root only): the kubeconfig to give the kubelet (--kubeconfig={path}).\n\
         # It points at https://127.0.0.1:{port}, trusts only the CA in {dir}/ca.crt, which the\n\
         # control plane of `run` serves with, and authenticates as system:node:{node} with a\n\
         # client certificate of that CA. Remove {dir} once the kubelet is pointed back.\n\
         ---\n{settings}\
         # So that the tests can read containers' logs through the control plane (pods/log), the\n\
         # kubelet's server must accept the control plane's client certificate, of that CA:\n\
         authentication:\n  x509:\n    clientCAFile: {dir}/ca.crt\n",
        path = path.display(),
        dir = dir.display(),
        node = node.name(),
    ))
}

/// The managed kubelet's log, in the result dir.
const KUBELET_LOG: &str = "kubelet.log";

/// How long a run's end waits for the removal of what dead runs left.
const RECOVERY_WAIT: Duration = Duration::from_secs(120);

/// How long the results wait for the work done on the side; past it they are made without it.
const ASIDE_WAIT: Duration = Duration::from_millis(300);

/// Writes the reports and removes what the run created, once: at the end of the run, or
/// when a signal cuts it short.
struct Finisher {
    done: Mutex<bool>,
    /// The work done on the side while tests run; it ends with the JUnit cases of the
    /// unselected tests. Waited for [`ASIDE_WAIT`] at most: a read ahead may be stuck on the
    /// node for good, and the results must not wait on it.
    aside: Mutex<Option<std::sync::mpsc::Receiver<report::junit::Prepared>>>,
    /// The earlier results set aside, deleted before the run ends (on the side when the
    /// side thread gets to it, else here).
    stale: Mutex<Vec<String>>,
    state: Arc<RunState>,
    ctx: Arc<Context>,
    info: RunInfo,
    /// The result dir as given, for messages before it is opened.
    dir: PathBuf,
    /// Set once the result dir is checked and opened.
    results: OnceLock<report::ResultDir>,
    console: Arc<Console>,
}

impl Finisher {
    /// Deletes the earlier results set aside; each is deleted once, whoever gets to it first.
    fn remove_stale(&self) {
        let stale = self
            .stale
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        if let Some(results) = self.results.get() {
            for file in &stale {
                results.remove(file);
            }
        }
    }

    /// The node's facts for results.json: what the tests found, the rest from cheap reads of
    /// the node's files, made on the side and waited for [`ASIDE_WAIT`] at most (a read can
    /// hang on a dead mount; the results must not).
    fn node_facts(&self, run: &RunRecord) -> report::facts::NodeFacts {
        let found = report::facts::from_checks(&run.records);
        if found.complete() {
            return found;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (ctx, wanted) = (Arc::clone(&self.ctx), found.clone());
        let spawned = std::thread::Builder::new()
            .name("node-facts".into())
            .spawn(move || {
                let _ = tx.send(report::facts::from_node(&ctx.node, &wanted));
            });
        match spawned.ok().and_then(|_| rx.recv_timeout(ASIDE_WAIT).ok()) {
            Some(read) => found.or(read),
            None => found,
        }
    }

    fn finish(&self, run: RunRecord, interrupted: Option<&str>) -> Result<bool, UsageError> {
        let Ok(mut done) = self.done.lock() else {
            return Err(UsageError("the run's state was poisoned".into()));
        };
        if *done {
            return Ok(!run.failed());
        }
        *done = true;
        // Results first: a signal's sender may not wait long for the clean-up.
        let prepared = self
            .aside
            .lock()
            .ok()
            .and_then(|mut a| a.take())
            .and_then(|rx| rx.recv_timeout(ASIDE_WAIT).ok());
        self.remove_stale();
        let facts = self.node_facts(&run);
        let mut written = Vec::new();
        let mut errors = Vec::new();
        for (file, rendered) in [
            (
                report::JUNIT_FILE,
                report::junit::render(&run, &self.info, prepared),
            ),
            (
                report::JSON_FILE,
                report::json::render(&run, &self.info, &facts),
            ),
        ] {
            let Some(results) = self.results.get() else {
                errors.push(format!(
                    "{file} not written: the run ended before the result dir {} was ready",
                    self.dir.display()
                ));
                continue;
            };
            let path = results.path.join(file);
            match rendered.and_then(|text| {
                results
                    .write(file, text.as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))
            }) {
                Ok(()) => written.push(path.display().to_string()),
                Err(e) => errors.push(e),
            }
        }
        let mut cleanup = self.ctx.services.shutdown(&self.ctx.node.root);
        // The kubelet's log, from the handle the run kept: its directory is gone by now.
        if let (Some(log), Some(results)) = (self.ctx.services.kubelet_log(), self.results.get())
            && let Err(e) = results.write(KUBELET_LOG, &log)
        {
            cleanup.push(format!("cannot write {KUBELET_LOG} in the result dir: {e}"));
        }
        if let Some(why) = interrupted {
            self.console.line(&format!(
                "\ninterrupted by {why}: running tests are marked failed, tests not started skipped"
            ));
        }
        for line in &cleanup {
            self.console.line(line);
        }
        self.console.summary(&run, &written);
        if errors.is_empty() {
            Ok(!run.failed())
        } else {
            Err(UsageError(errors.join("; ")))
        }
    }
}

/// On SIGINT or SIGTERM: record the run as it stands, clean up, exit 1.
fn watch_signals(finisher: Arc<Finisher>) -> Option<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    // A file size limit (ulimit -f) must fail a write, as a full disk does, and let the
    // error be reported, instead of killing the harness with SIGXFSZ.
    let _ = signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).ok()?;
    let handle = signals.handle();
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
            finisher.state.interrupt();
            let run = finisher.state.snapshot(Some(name));
            let code = match finisher.finish(run, Some(name)) {
                Ok(_) => 1,
                Err(e) => {
                    eprintln!("node-conformance: error: {e}");
                    2
                }
            };
            std::process::exit(code);
        }
    });
    Some(handle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn results_do_not_wait_on_a_stuck_read_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let tests = suite::registry();
        let state = RunState::new(&tests);
        let console = Arc::new(Console::new());
        let ctx = Arc::new(Context {
            node: Node::new(RootFs::open("/").unwrap(), crate::node::Options::default()),
            spec: SysSpec::builtin(),
            services: Services::new(
                "t".into(),
                "/nonexistent".into(),
                runtime::ApiOptions::default(),
                None,
                None,
            ),
            console: Arc::clone(&console),
            waits: suite::functional::Waits::default(),
        });
        let stale = dir.path().join(".junit_01.xml.old1");
        std::fs::write(&stale, "earlier").unwrap();
        let results = OnceLock::new();
        let _ = results.set(report::ResultDir::open(dir.path()).unwrap());
        // The side thread never answers, as when a read ahead hangs on a dead mount.
        let (_never, rx) = std::sync::mpsc::channel();
        let finisher = Finisher {
            done: Mutex::new(false),
            aside: Mutex::new(Some(rx)),
            stale: Mutex::new(vec![".junit_01.xml.old1".into()]),
            state: Arc::clone(&state),
            ctx,
            info: RunInfo {
                version: "test".into(),
                run_id: "t".into(),
                hostname: "h".into(),
                rootfs: "/".into(),
                focus: String::new(),
                skip: String::new(),
                system_spec: "built-in".into(),
            },
            dir: dir.path().to_path_buf(),
            results,
            console,
        };
        let began = Instant::now();
        let passed = finisher.finish(state.snapshot(Some("SIGTERM")), Some("SIGTERM"));
        assert!(
            began.elapsed() < Duration::from_secs(1),
            "{:?}",
            began.elapsed()
        );
        assert!(passed.is_ok());
        let junit = std::fs::read_to_string(dir.path().join(report::JUNIT_FILE)).unwrap();
        assert!(junit.contains("not run: the run was interrupted by SIGTERM"));
        assert!(dir.path().join(report::JSON_FILE).exists());
        assert!(!stale.exists());
    }
}
