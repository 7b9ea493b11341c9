//! Beyond one node: the harness on every node of a cluster, with Kubernetes as the engine.
//!
//! `deploy` prints the manifests (a DaemonSet, or a Sonobuoy plugin) that run the image on each
//! node; `run --keep-running` prints the results into the pod's log when the run ends and stays
//! up, so the pod is Ready and its log holds the results; `collect` reads them back through the
//! API server's pod log endpoint. No agent, scheduler or transport of our own.

pub mod collect;
pub mod deploy;
pub mod logs;
pub mod sonobuoy;

/// The label every object and pod of a deployment carries, with the deployment's run id.
pub const RUN_LABEL: &str = "node-conformance.run";
/// The label that names the harness's pods (`app.kubernetes.io/name: node-conformance`).
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// The app name, the DaemonSet's name, its container's name and the default namespace.
pub const APP: &str = "node-conformance";
/// Where the container writes its results (the image's `REPORT_PATH`).
pub const CONTAINER_RESULT_DIR: &str = "/var/result";
