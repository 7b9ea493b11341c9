//! The Docker Engine, through bollard: facts about the daemon, the test image, and test
//! containers that are labelled with the run id and removed afterwards.

use std::collections::HashMap;
use std::io::Read;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, ImportImageOptions,
    ListContainersOptions, LogsOptions, RemoveContainerOptions, RemoveImageOptions,
    WaitContainerOptions,
};
use futures_util::StreamExt;

use super::image::{self, LABEL};
use crate::node::rootfs::SocketHandle;

/// What the daemon says about itself.
#[derive(Debug, Clone, Default)]
pub struct DaemonFacts {
    pub version: String,
    pub api_version: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    pub storage_driver: String,
}

/// A connection to the node's Docker Engine for one run.
pub struct Docker {
    client: bollard::Docker,
    // Keeps the /proc/self/fd link the client dials alive.
    socket: SocketHandle,
    run_id: String,
    /// True once clean-up began. Creations hold it for reading, clean-up takes it for
    /// writing: no container can appear after the sweep that would remove it.
    closed: tokio::sync::RwLock<bool>,
}

fn text<T: std::fmt::Display>(e: T) -> String {
    e.to_string()
}

fn enum_text<T: serde::Serialize>(v: &Option<T>) -> String {
    v.as_ref()
        .and_then(|v| serde_json::to_value(v).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// What to run in a test container.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// Arguments to `node-conformance workload`.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub read_only_root: bool,
    pub memory_bytes: Option<i64>,
    /// `on-failure` with this many retries.
    pub restart_on_failure: Option<i64>,
    /// A file to read out of the container after it exits.
    pub fetch_file: Option<String>,
}

/// A test container after it exited, and what it left behind.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    pub exit_code: i64,
    pub oom_killed: bool,
    pub restart_count: i64,
    pub stdout: String,
    pub stderr: String,
    pub fetched: Option<Result<String, String>>,
}

impl Docker {
    /// Connects and agrees on an API version with the daemon.
    pub async fn connect(socket: SocketHandle, run_id: &str) -> Result<Self, String> {
        let client = bollard::Docker::connect_with_unix(
            &socket.connect_path(),
            60,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(text)?
        .negotiate_version()
        .await
        .map_err(|e| format!("{}: {e}", socket.host_path().display()))?;
        Ok(Self {
            client,
            socket,
            run_id: run_id.to_string(),
            closed: tokio::sync::RwLock::new(false),
        })
    }

    pub fn socket_path(&self) -> &std::path::Path {
        self.socket.host_path()
    }

    pub fn image_tag(&self) -> String {
        format!("node-conformance-workload:{}", self.run_id)
    }

    pub async fn facts(&self) -> Result<DaemonFacts, String> {
        let info = self.client.info().await.map_err(text)?;
        let version = self.client.version().await.map_err(text)?;
        Ok(DaemonFacts {
            version: info.server_version.unwrap_or_default(),
            api_version: version.api_version.unwrap_or_default(),
            cgroup_driver: enum_text(&info.cgroup_driver),
            cgroup_version: enum_text(&info.cgroup_version),
            storage_driver: info.driver.unwrap_or_default(),
        })
    }

    /// Loads the test image, tagged for this run.
    pub async fn load_workload(&self, test_image: &image::TestImage) -> Result<(), String> {
        // Held through the load, so the clean-up waits for it: an image loaded after the
        // clean-up (a test abandoned at its deadline mid-load) would be left on the node.
        let closed = self.closed.read().await;
        if *closed {
            return Err("the run is over: the test image is not loaded".into());
        }
        let tag = self.image_tag();
        // Loads of the same layer by two runs at once can collide in the Engine's layer store;
        // a second attempt after a pause settles it.
        let mut last = String::new();
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let chunks = test_image.archive(&tag).map_err(text)?;
            let body = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
            let mut stream = self.client.import_image_stream(
                ImportImageOptions {
                    quiet: true,
                    ..Default::default()
                },
                body,
                None,
            );
            let mut failed = None;
            while let Some(item) = stream.next().await {
                if let Err(e) = item {
                    failed = Some(e.to_string());
                }
            }
            match failed {
                None => return Ok(()),
                Some(e) => last = e,
            }
        }
        Err(format!("docker load of the test image failed: {last}"))
    }

    fn labels(&self) -> HashMap<String, String> {
        HashMap::from([(LABEL.to_string(), self.run_id.clone())])
    }

    /// Runs a test container to its end and removes it, whatever happens in between.
    pub async fn run(&self, spec: &ContainerSpec) -> Result<Finished, String> {
        let host_config = HostConfig {
            readonly_rootfs: Some(spec.read_only_root),
            memory: spec.memory_bytes,
            // Equal to the memory limit: no swap to escape into.
            memory_swap: spec.memory_bytes,
            restart_policy: spec.restart_on_failure.map(|n| RestartPolicy {
                name: Some(RestartPolicyNameEnum::ON_FAILURE),
                maximum_retry_count: Some(n),
            }),
            network_mode: Some("none".into()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(self.image_tag()),
            cmd: Some(spec.args.clone()),
            env: Some(spec.env.clone()),
            user: spec.user.clone(),
            labels: Some(self.labels()),
            host_config: Some(host_config),
            ..Default::default()
        };
        let id = {
            let closed = self.closed.read().await;
            if *closed {
                return Err("the run is ending: no new containers".into());
            }
            self.client
                .create_container(None::<CreateContainerOptions>, body)
                .await
                .map_err(|e| format!("create container: {e}"))?
                .id
        };
        let result = self.run_created(&id, spec).await;
        let removed = self
            .client
            .remove_container(
                &id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await;
        match (result, removed) {
            (Ok(f), Ok(())) => Ok(f),
            (Ok(_), Err(e)) => Err(format!("remove container {id}: {e}")),
            (Err(e), _) => Err(e),
        }
    }

    async fn run_created(&self, id: &str, spec: &ContainerSpec) -> Result<Finished, String> {
        self.client
            .start_container(id, None)
            .await
            .map_err(|e| format!("start container: {e}"))?;
        match spec.restart_on_failure {
            // With a restart policy the first exit is not the end: wait for the retries.
            Some(retries) => self.wait_for_restarts(id, retries).await?,
            None => {
                let mut wait = self.client.wait_container(
                    id,
                    Some(WaitContainerOptions {
                        condition: "not-running".into(),
                    }),
                );
                // A non-zero exit arrives as an error carrying the code; inspect tells it below.
                let _ = wait.next().await;
            }
        }
        let inspect = self.inspect(id).await?;
        let state = inspect.state.unwrap_or_default();
        let mut finished = Finished {
            exit_code: state.exit_code.unwrap_or(-1),
            oom_killed: state.oom_killed.unwrap_or(false),
            restart_count: inspect.restart_count.unwrap_or(0),
            ..Default::default()
        };
        let mut logs = self.client.logs(
            id,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        );
        while let Some(chunk) = logs.next().await {
            match chunk.map_err(|e| format!("logs: {e}"))? {
                LogOutput::StdOut { message } => {
                    finished.stdout.push_str(&String::from_utf8_lossy(&message))
                }
                LogOutput::StdErr { message } => {
                    finished.stderr.push_str(&String::from_utf8_lossy(&message))
                }
                _ => {}
            }
        }
        if let Some(path) = &spec.fetch_file {
            finished.fetched = Some(self.read_file(id, path).await);
        }
        Ok(finished)
    }

    async fn inspect(&self, id: &str) -> Result<bollard::models::ContainerInspectResponse, String> {
        self.client
            .inspect_container(id, None)
            .await
            .map_err(|e| format!("inspect: {e}"))
    }

    async fn wait_for_restarts(&self, id: &str, retries: i64) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let inspect = self.inspect(id).await?;
            let state = inspect.state.unwrap_or_default();
            let settled = !state.running.unwrap_or(false) && !state.restarting.unwrap_or(false);
            if settled && inspect.restart_count.unwrap_or(0) >= retries {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "after 60s the container had restarted {} of {retries} times",
                    inspect.restart_count.unwrap_or(0)
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reads one file out of a stopped container (the archive endpoint, as `docker cp` does).
    async fn read_file(&self, id: &str, path: &str) -> Result<String, String> {
        let mut stream = self
            .client
            .download_from_container(id, Some(DownloadFromContainerOptions { path: path.into() }));
        // The file is a termination message the workload wrote (a few bytes); an engine that
        // streams without end must not fill the harness's memory.
        const CAP: usize = 1 << 20;
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| format!("{path}: {e}"))?);
            if bytes.len() > CAP {
                return Err(format!("{path}: the archive is larger than 1 MiB"));
            }
        }
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut entries = archive.entries().map_err(text)?;
        let mut entry = entries
            .next()
            .ok_or_else(|| format!("{path}: empty archive"))?
            .map_err(text)?;
        let mut content = String::new();
        entry.read_to_string(&mut content).map_err(text)?;
        Ok(content)
    }

    /// Removes every container and image labelled with this run; returns what it removed and
    /// what it could not.
    pub async fn cleanup(&self) -> (Vec<String>, Vec<String>) {
        *self.closed.write().await = true;
        self.remove_run(&self.run_id).await
    }

    /// The run ids on the containers and images of this Engine that carry the run label.
    pub async fn labelled_runs(&self) -> Result<std::collections::BTreeSet<String>, String> {
        let filters = || HashMap::from([("label".to_string(), vec![LABEL.to_string()])]);
        let mut runs = std::collections::BTreeSet::new();
        let containers = self
            .client
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters()),
                ..Default::default()
            }))
            .await
            .map_err(text)?;
        runs.extend(
            containers
                .into_iter()
                .filter_map(|c| c.labels?.remove(LABEL)),
        );
        let images = self
            .client
            .list_images(Some(bollard::query_parameters::ListImagesOptions {
                all: false,
                filters: Some(filters()),
                ..Default::default()
            }))
            .await
            .map_err(text)?;
        runs.extend(
            images
                .into_iter()
                .filter_map(|mut i| i.labels.remove(LABEL)),
        );
        Ok(runs)
    }

    /// Removes every container and image labelled with `run_id`; returns what it removed and
    /// what it could not.
    pub async fn remove_run(&self, run_id: &str) -> (Vec<String>, Vec<String>) {
        let (mut removed, mut failed) = (Vec::new(), Vec::new());
        let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL}={run_id}")])]);
        match self
            .client
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
        {
            Ok(list) => {
                for c in list {
                    let id = c.id.unwrap_or_default();
                    let opts = RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    };
                    match self.client.remove_container(&id, Some(opts)).await {
                        Ok(()) => removed.push(format!("container {id}")),
                        Err(e) => failed.push(format!("container {id}: {e}")),
                    }
                }
            }
            Err(e) => failed.push(format!("listing containers: {e}")),
        }
        let tag = format!("node-conformance-workload:{run_id}");
        match self
            .client
            .remove_image(
                &tag,
                Some(RemoveImageOptions {
                    force: true,
                    ..Default::default()
                }),
                None,
            )
            .await
        {
            Ok(_) => removed.push(format!("image {tag}")),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => failed.push(format!("image {tag}: {e}")),
        }
        // What the Engine pulled from the run's registry (for a kubelet on Docker) carries the
        // run label of the test image's config, under other names.
        let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL}={run_id}")])]);
        match self
            .client
            .list_images(Some(bollard::query_parameters::ListImagesOptions {
                all: false,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
        {
            Ok(list) => {
                for image in list {
                    let opts = RemoveImageOptions {
                        force: true,
                        ..Default::default()
                    };
                    let name = image.repo_tags.join(", ");
                    match self.client.remove_image(&image.id, Some(opts), None).await {
                        Ok(_) => removed.push(format!("image {name} ({})", image.id)),
                        Err(bollard::errors::Error::DockerResponseServerError {
                            status_code: 404,
                            ..
                        }) => {}
                        Err(e) => failed.push(format!("image {name}: {e}")),
                    }
                }
            }
            Err(e) => failed.push(format!("listing images: {e}")),
        }
        (removed, failed)
    }
}
