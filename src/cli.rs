//! Command line: every flag has an environment fallback, so the upstream image's
//! `docker run -e FOCUS=... -e SKIP=...` habit carries over.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "node-conformance",
    about = "Tests whether a node is fit to join a Kubernetes cluster",
    disable_version_flag = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the selected tests; write junit_01.xml and results.json to the result dir
    Run(Box<RunArgs>),
    /// Print the names of the selected tests, one per line
    List(SelectArgs),
    /// Print the version
    Version,
    /// Print the built-in system spec as YAML, a starting point for --system-spec
    Spec,
    /// Serve the local control plane's Kubernetes API alone (for kubectl and debugging), over
    /// TLS with credentials made for the run; an admin kubeconfig is written for kubectl
    ControlPlane(ControlPlaneArgs),
    /// Make the credentials an attached kubelet needs (root-only files under
    /// /var/lib/node-conformance/attach on the node), and print how to point the kubelet at the
    /// local control plane
    KubeletConfig {
        /// The node's root file system [default: /rootfs when it exists, else /]
        #[arg(long, env = "ROOTFS", value_name = "DIR")]
        rootfs: Option<PathBuf>,
        /// The local control plane's port
        #[arg(long, env = "API_SERVER_PORT", default_value_t = 8080)]
        api_server_port: u16,
        /// The static pod directory the harness is given ($CONFIG_DIR)
        #[arg(
            long,
            env = "POD_MANIFEST_PATH",
            value_name = "DIR",
            default_value = "/etc/kubernetes/manifests"
        )]
        pod_manifest_path: PathBuf,
        /// For a control plane served with --insecure-http: print an http:// kubeconfig
        /// without credentials, and write nothing
        #[arg(long, env = "INSECURE_HTTP")]
        insecure_http: bool,
    },
    /// Print the expiration of the node's certificates, as `kubeadm certs check-expiration` does
    Certs {
        /// The node's root file system [default: /rootfs when it exists, else /]
        #[arg(long, env = "ROOTFS", value_name = "DIR")]
        rootfs: Option<PathBuf>,
        /// The cluster's certificate directory on the node
        #[arg(
            long,
            env = "PKI_DIR",
            value_name = "DIR",
            default_value = "/etc/kubernetes/pki"
        )]
        pki_dir: PathBuf,
    },
    /// Write one report for a fleet of nodes (fleet.xml, fleet.json, fleet.html) from each
    /// node's results
    Report(ReportArgs),
    /// Print the manifests (YAML) that run the harness on every selected node of a cluster
    #[command(subcommand)]
    Deploy(DeployTarget),
    /// Read each node's results back through the API server (the pods' logs) into one
    /// directory per node: <out>/<node>/results.json and junit_01.xml
    Collect(CollectArgs),
    /// Exit 0 when the result dir holds the results of a finished run, else 1 (the readiness
    /// probe of the DaemonSet's pods)
    Finished {
        /// The result dir of the run
        #[arg(
            long,
            env = "REPORT_PATH",
            value_name = "DIR",
            default_value = "/var/result"
        )]
        result_dir: PathBuf,
    },
    /// Act as the test workload inside a test container (`--stdout T`, `--print T`,
    /// `--stderr T`, `--print-env NAME`, `--env`, `--cat PATH`, `--create PATH TEXT`, `--id`,
    /// `--hostname-fqdn`, `--write PATH`, `--await-content PATH TEXT`,
    /// `--termination-message PATH TEXT`, `--count-start PATH`, `--exit-on-start N CODE`,
    /// `--alloc-mib N`, `--sleep S`, `--pause`, `--serve PORT`, `--exit CODE`, run in order;
    /// `entrypoint-tester ARGS...` prints the argv)
    Workload {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        actions: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeployTarget {
    /// A namespace (Pod Security: privileged) and a DaemonSet running the image on every
    /// selected node; `collect` reads the results back
    Daemonset(DeployArgs),
    /// A Sonobuoy plugin definition (driver: DaemonSet, result-format: junit), for
    /// `sonobuoy run --plugin FILE`
    SonobuoyPlugin {
        #[command(flatten)]
        deploy: DeployArgs,
        /// The plugin's name in Sonobuoy's results
        #[arg(long, env = "PLUGIN_NAME", default_value = "node-conformance")]
        plugin_name: String,
    },
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// The harness's image, as the nodes pull it (a per-arch image, or the manifest list
    /// scripts/build-images.sh --manifest makes)
    #[arg(long, env = "IMAGE", value_name = "IMAGE")]
    pub image: String,
    /// The namespace of the DaemonSet (created, labelled Pod Security privileged)
    #[arg(
        long,
        env = "NAMESPACE",
        value_name = "NAME",
        default_value = "node-conformance"
    )]
    pub namespace: String,
    /// Run only on nodes with this label (key=value; repeat, or comma-separated in the env)
    #[arg(
        long,
        env = "NODE_SELECTOR",
        value_name = "KEY=VALUE",
        value_delimiter = ','
    )]
    pub node_selector: Vec<String>,
    /// Do not tolerate the control-plane taints (node-role.kubernetes.io/control-plane and
    /// node-role.kubernetes.io/master): control-plane nodes are left out
    #[arg(long, env = "EXCLUDE_CONTROL_PLANE")]
    pub exclude_control_plane: bool,
    /// The directory on each node where the results are kept, in a subdirectory named after
    /// the run id (a hostPath); empty keeps them in the pod only (an emptyDir)
    #[arg(
        long,
        env = "HOST_RESULT_DIR",
        value_name = "DIR",
        default_value = "/var/log/node-conformance"
    )]
    pub host_result_dir: String,
    /// The deployment's run id: a label on its objects and the results' subdirectory
    /// [default: a new one]
    #[arg(long, env = "RUN_ID", value_name = "ID")]
    pub run_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// The kubeconfig [default: ~/.kube/config, else the pod's service account]
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<String>,
    /// The namespace of the DaemonSet
    #[arg(
        long,
        env = "NAMESPACE",
        value_name = "NAME",
        default_value = "node-conformance"
    )]
    pub namespace: String,
    /// Only the pods of this deployment [default: every one in the namespace, the newest per
    /// node]
    #[arg(long, env = "RUN_ID", value_name = "ID")]
    pub run_id: Option<String>,
    /// Where the per-node directories are written
    #[arg(
        long,
        env = "COLLECT_DIR",
        value_name = "DIR",
        default_value = "node-conformance-results"
    )]
    pub out: PathBuf,
    /// Seconds to wait for runs that have not ended (0: look once)
    #[arg(
        long,
        env = "COLLECT_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 0
    )]
    pub timeout: u64,
}

#[derive(Debug, Clone, Args)]
pub struct ControlPlaneArgs {
    /// The port to serve on
    #[arg(long, env = "API_SERVER_PORT", default_value_t = 8080)]
    pub api_server_port: u16,
    /// Serve on this address instead of 127.0.0.1 (its serving certificate names it)
    #[arg(long, value_name = "IP", alias = "api-server-insecure-bind-address")]
    pub api_server_bind_address: Option<std::net::IpAddr>,
    /// Serve plain HTTP without authentication: every local account and every container on
    /// the host network can then use the API, and through a kubelet pointed at it run pods as
    /// root on this machine [default: TLS, every request authenticated]
    #[arg(long, env = "INSECURE_HTTP")]
    pub insecure_http: bool,
    /// Where to write the admin kubeconfig (a new file, mode 0600, removed at exit)
    /// [default: /var/lib/node-conformance/runs/<run id>/admin.kubeconfig as root, else
    /// $XDG_RUNTIME_DIR/node-conformance-<run id>.kubeconfig]
    #[arg(long, env = "ADMIN_KUBECONFIG", value_name = "FILE")]
    pub admin_kubeconfig: Option<PathBuf>,
    /// Also start this kubelet (a path on this machine), pointed at the API, as `run
    /// --kubelet-binary` does: a one-node cluster until SIGINT or SIGTERM, then everything
    /// it made is removed
    #[arg(long, env = "KUBELET_BINARY", value_name = "PATH")]
    pub kubelet_binary: Option<PathBuf>,
    /// The CRI endpoint of that kubelet (unix:///path) [default: the node's kubelet
    /// configuration's, else the first well-known socket present]
    #[arg(long, env = "CONTAINER_RUNTIME_ENDPOINT", value_name = "ENDPOINT")]
    pub container_runtime_endpoint: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct SelectArgs {
    /// Regular expression; only tests whose full name matches run [default: every test]
    #[arg(long, env = "FOCUS", value_name = "REGEX")]
    pub focus: Option<String>,
    /// Regular expression; tests whose full name matches do not run (empty: skip none)
    /// [default: \[Flaky\]|\[Serial\]|\[Disruptive\]]
    #[arg(long, env = "SKIP", value_name = "REGEX")]
    pub skip: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// The node's root file system [default: /rootfs when it exists, else /]
    #[arg(long, env = "ROOTFS", value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Where junit_01.xml and results.json are written
    #[arg(
        long,
        env = "REPORT_PATH",
        value_name = "DIR",
        default_value = "/var/result"
    )]
    pub result_dir: PathBuf,
    /// A YAML system spec that replaces the built-in one (`node-conformance spec` prints it)
    #[arg(long, env = "SYSTEM_SPEC_FILE", value_name = "FILE")]
    pub system_spec: Option<PathBuf>,
    /// How many tests that wait on a service (Docker, the kubelet) run at once [default: the
    /// number of CPUs, at least 16]
    #[arg(long, env = "PARALLELISM", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: Option<u16>,
    /// The kubelet's static pod directory on the node [default: /etc/kubernetes/manifests]
    #[arg(long, env = "POD_MANIFEST_PATH", value_name = "DIR")]
    pub pod_manifest_path: Option<PathBuf>,
    /// The cluster's certificate directory on the node [default: kubeadm's certificatesDir, the
    /// directory of kube-apiserver's --client-ca-file or the kubelet's clientCAFile where that
    /// is a ca.crt, else /etc/kubernetes/pki]
    #[arg(long, env = "PKI_DIR", value_name = "DIR")]
    pub pki_dir: Option<PathBuf>,
    /// The kubelet's KubeletConfiguration file on the node [default: from the kubelet process,
    /// else /var/lib/kubelet/config.yaml]
    #[arg(long, env = "KUBELET_CONFIG", value_name = "FILE")]
    pub kubelet_config: Option<PathBuf>,
    /// The kubelet's kubeconfig on the node [default: from the kubelet process, else
    /// /etc/kubernetes/kubelet.conf]
    #[arg(long, env = "KUBECONFIG_PATH", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Seconds a test may run before it is failed and its containers removed; a kubelet test
    /// gets at least the sum of its waits (--node-ready-timeout, --mirror-pod-timeout,
    /// --pod-start-timeout, ...) plus 30 s, so its own waits report first, with what they saw
    #[arg(long, env = "TEST_TIMEOUT", value_name = "SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub test_timeout: u64,
    /// The port of the local control plane started for the kubelet tests (on 127.0.0.1)
    #[arg(long, env = "API_SERVER_PORT", default_value_t = 8080)]
    pub api_server_port: u16,
    /// Serve the local control plane over plain HTTP without authentication. While the kubelet
    /// tests run, every local account and every container on the host network can then create
    /// pods that the kubelet runs as root: root on this node. Only for a kubelet configured by
    /// hand with an http:// kubeconfig [default: TLS, every request authenticated]
    #[arg(long, env = "INSECURE_HTTP")]
    pub insecure_http: bool,
    /// The image of the kubelet tests' pods, present on the node (pull policy Never)
    /// [default: the test image loaded into Docker, else node-conformance-workload:VERSION]
    #[arg(long, env = "POD_IMAGE", value_name = "IMAGE")]
    pub pod_image: Option<String>,
    /// The kubelet binary on the node (a path in the root fs). The harness starts it for the
    /// kubelet tests, pointed at the local control plane with a root dir, static pod dir and
    /// configuration of its own, and stops it and removes what it made at the end. The node's
    /// own kubelet must be stopped [default: test the node's running kubelet]
    #[arg(long, env = "KUBELET_BINARY", value_name = "PATH")]
    pub kubelet_binary: Option<PathBuf>,
    /// The CRI endpoint of the kubelet --kubelet-binary starts (unix:///path) [default: the
    /// node's kubelet configuration's, else the first well-known socket present]
    #[arg(long, env = "CONTAINER_RUNTIME_ENDPOINT", value_name = "ENDPOINT")]
    pub container_runtime_endpoint: Option<String>,
    /// Seconds the kubelet gets to register its Node and make it Ready
    #[arg(
        long,
        env = "NODE_READY_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 120
    )]
    pub node_ready_timeout: u64,
    /// Seconds the kubelet gets to create, update or remove a mirror pod
    #[arg(
        long,
        env = "MIRROR_POD_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 120
    )]
    pub mirror_pod_timeout: u64,
    /// Seconds the kubelet gets to bring a pod to the state a test expects
    #[arg(
        long,
        env = "POD_START_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 300
    )]
    pub pod_start_timeout: u64,
    /// The static node-conformance binary the test image is made from [default: this one]
    #[arg(
        long,
        env = "WORKLOAD_BINARY",
        value_name = "FILE",
        default_value = "/proc/self/exe"
    )]
    pub workload_binary: PathBuf,
    /// After the run, print the results into the output (for `collect`, through the pod's
    /// log) and stay idle until SIGTERM, so a DaemonSet does not start the run again. Under
    /// Sonobuoy (SONOBUOY_RESULTS_DIR set) it is implied, and the results go to that dir
    #[arg(long, env = "KEEP_RUNNING")]
    pub keep_running: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Where fleet.xml, fleet.json and fleet.html are written (created if missing)
    #[arg(
        long,
        env = "FLEET_REPORT_DIR",
        value_name = "DIR",
        default_value = "."
    )]
    pub output: PathBuf,
    /// A node's result dir (holding its results.json), a directory of such dirs, or a
    /// results.json itself
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
}

/// The inputs that are not valid UTF-8, named for a message: the environment variables the
/// command line falls back to (`environment variable FOCUS (--focus)`) and the arguments
/// (`argument 3`). clap only says that one of them is.
pub fn invalid_utf8_inputs(
    args: impl IntoIterator<Item = std::ffi::OsString>,
    env: impl Fn(&std::ffi::OsStr) -> Option<std::ffi::OsString>,
) -> Vec<String> {
    use clap::CommandFactory;
    fn vars(cmd: &clap::Command, out: &mut Vec<(std::ffi::OsString, String)>) {
        for arg in cmd.get_arguments() {
            if let Some(name) = arg.get_env()
                && !out.iter().any(|(n, _)| n == name)
            {
                let flag = arg
                    .get_long()
                    .map_or_else(|| arg.get_id().to_string(), |l| format!("--{l}"));
                out.push((name.to_os_string(), flag));
            }
        }
        for sub in cmd.get_subcommands() {
            vars(sub, out);
        }
    }
    let mut found: Vec<String> = args
        .into_iter()
        .enumerate()
        .skip(1)
        .filter(|(_, a)| a.to_str().is_none())
        .map(|(i, a)| format!("argument {i} ({})", a.to_string_lossy()))
        .collect();
    let mut known = Vec::new();
    vars(&Cli::command(), &mut known);
    for (name, flag) in known {
        if env(&name).is_some_and(|v| v.to_str().is_none()) {
            found.push(format!(
                "environment variable {} ({flag})",
                name.to_string_lossy()
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::{OsStr, OsString};
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn invalid_utf8_inputs_are_named() {
        let bad = || OsString::from_vec(vec![b'a', 0xff]);
        let env = |name: &OsStr| (name == "FOCUS").then(bad);
        let args = [OsString::from("node-conformance"), "list".into(), bad()];
        assert_eq!(
            invalid_utf8_inputs(args, env),
            [
                "argument 2 (a\u{fffd})",
                "environment variable FOCUS (--focus)"
            ]
        );
        assert!(invalid_utf8_inputs([OsString::from("x")], |_| None).is_empty());
    }
}
