//! A CRI client: Version and Status for the presence test; images, pod sandboxes and the
//! runtime's configuration for the kubelet tests (which pause image pods run in, which cgroup
//! driver a kubelet must use, and removing what a run's pods left).
//!
//! The messages are declared here with prost derives (field numbers from the CRI API's
//! api.proto) rather than generated, so the build needs no protoc.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Endpoint, Uri};

#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionRequest {
    #[prost(string, tag = "1")]
    pub version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionResponse {
    #[prost(string, tag = "1")]
    pub version: String,
    #[prost(string, tag = "2")]
    pub runtime_name: String,
    #[prost(string, tag = "3")]
    pub runtime_version: String,
    #[prost(string, tag = "4")]
    pub runtime_api_version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusRequest {
    #[prost(bool, tag = "1")]
    pub verbose: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RuntimeCondition {
    #[prost(string, tag = "1")]
    pub r#type: String,
    #[prost(bool, tag = "2")]
    pub status: bool,
    #[prost(string, tag = "3")]
    pub reason: String,
    #[prost(string, tag = "4")]
    pub message: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RuntimeStatus {
    #[prost(message, repeated, tag = "1")]
    pub conditions: Vec<RuntimeCondition>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<RuntimeStatus>,
    /// With `verbose`: runtime-specific facts; containerd's `config` is its CRI plugin's
    /// configuration as JSON.
    #[prost(map = "string, string", tag = "2")]
    pub info: std::collections::HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageSpec {
    #[prost(string, tag = "1")]
    pub image: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RemoveImageRequest {
    #[prost(message, optional, tag = "1")]
    pub image: Option<ImageSpec>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageFilter {
    #[prost(message, optional, tag = "1")]
    pub image: Option<ImageSpec>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListImagesRequest {
    #[prost(message, optional, tag = "1")]
    pub filter: Option<ImageFilter>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, repeated, tag = "2")]
    pub repo_tags: Vec<String>,
    #[prost(string, repeated, tag = "3")]
    pub repo_digests: Vec<String>,
    /// Bytes.
    #[prost(uint64, tag = "4")]
    pub size: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListImagesResponse {
    #[prost(message, repeated, tag = "1")]
    pub images: Vec<Image>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandboxFilter {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(map = "string, string", tag = "3")]
    pub label_selector: std::collections::HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPodSandboxRequest {
    #[prost(message, optional, tag = "1")]
    pub filter: Option<PodSandboxFilter>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandboxMetadata {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub uid: String,
    #[prost(string, tag = "3")]
    pub namespace: String,
    #[prost(uint32, tag = "4")]
    pub attempt: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandbox {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<PodSandboxMetadata>,
    /// 0 ready, 1 not ready.
    #[prost(int32, tag = "3")]
    pub state: i32,
    /// Nanoseconds since the Unix epoch.
    #[prost(int64, tag = "4")]
    pub created_at: i64,
    #[prost(map = "string, string", tag = "5")]
    pub labels: std::collections::HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPodSandboxResponse {
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<PodSandbox>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerFilter {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(map = "string, string", tag = "4")]
    pub label_selector: std::collections::HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContainersRequest {
    #[prost(message, optional, tag = "1")]
    pub filter: Option<ContainerFilter>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Container {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub pod_sandbox_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContainersResponse {
    #[prost(message, repeated, tag = "1")]
    pub containers: Vec<Container>,
}

/// StopContainerRequest (with `timeout`, seconds) and RemoveContainerRequest (without).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerIdRequest {
    #[prost(string, tag = "1")]
    pub container_id: String,
    #[prost(int64, tag = "2")]
    pub timeout: i64,
}

/// StopPodSandboxRequest and RemovePodSandboxRequest alike.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandboxIdRequest {
    #[prost(string, tag = "1")]
    pub pod_sandbox_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LinuxRuntimeConfiguration {
    /// 0 systemd, 1 cgroupfs.
    #[prost(int32, tag = "1")]
    pub cgroup_driver: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RuntimeConfigResponse {
    #[prost(message, optional, tag = "1")]
    pub linux: Option<LinuxRuntimeConfiguration>,
}

/// What a CRI runtime said about itself.
#[derive(Debug, Clone)]
pub struct Report {
    /// `runtime.v1`, or `runtime.v1alpha2` for runtimes that predate v1.
    pub api: &'static str,
    pub version: VersionResponse,
    pub conditions: Vec<RuntimeCondition>,
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// Label the kubelet puts on every pod sandbox: the pod's namespace.
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";

/// A connection to a CRI runtime, speaking the newest API version it implements.
#[derive(Clone)]
pub struct Cri {
    channel: tonic::transport::Channel,
    /// `runtime.v1`, or `runtime.v1alpha2` for runtimes that predate v1.
    pub api: &'static str,
    pub version: VersionResponse,
}

impl std::fmt::Debug for Cri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cri")
            .field("api", &self.api)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Connects to a CRI socket and asks for Version and Status.
pub async fn query(connect_path: &str) -> Result<Report, String> {
    let cri = Cri::connect(connect_path).await?;
    let status = cri
        .call::<_, StatusResponse>("RuntimeService", "Status", StatusRequest { verbose: false })
        .await
        .map_err(|s| format!("{}: {} ({:?})", cri.api, s.message(), s.code()))?;
    Ok(Report {
        api: cri.api,
        version: cri.version,
        conditions: status.status.map(|s| s.conditions).unwrap_or_default(),
    })
}

impl Cri {
    /// Dials the socket (a path as the harness reaches it) and finds the API version: v1,
    /// else v1alpha2.
    pub async fn connect(connect_path: &str) -> Result<Self, String> {
        let path = connect_path.to_string();
        // The URI is required by the API and unused: the connector always dials the socket.
        let channel = Endpoint::from_static("http://cri.invalid")
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { UnixStream::connect(path).await.map(TokioIo::new) }
            }))
            .await
            .map_err(|e| format!("cannot connect: {}", source_chain(&e)))?;
        let mut last_err = String::new();
        for api in ["runtime.v1", "runtime.v1alpha2"] {
            let mut cri = Cri {
                channel: channel.clone(),
                api,
                version: VersionResponse::default(),
            };
            let asked = VersionRequest {
                version: "v1".into(),
            };
            match cri.call("RuntimeService", "Version", asked).await {
                Ok(version) => {
                    cri.version = version;
                    return Ok(cri);
                }
                Err(status) if status.code() == tonic::Code::Unimplemented => {
                    last_err = format!("{api}: {}", status.message());
                }
                Err(status) => {
                    return Err(format!("{api}: {} ({:?})", status.message(), status.code()));
                }
            }
        }
        Err(format!(
            "the runtime implements no CRI version this harness speaks: {last_err}"
        ))
    }

    async fn call<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        request: Req,
    ) -> Result<Resp, tonic::Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let path = PathAndQuery::try_from(format!("/{}.{service}/{method}", self.api))
            .map_err(|e| tonic::Status::internal(e.to_string()))?;
        Ok(grpc
            .unary(
                tonic::Request::new(request),
                path,
                tonic_prost::ProstCodec::default(),
            )
            .await?
            .into_inner())
    }

    fn failed(&self, method: &str, status: &tonic::Status) -> String {
        format!(
            "{} {method}: {} ({:?})",
            self.api,
            status.message(),
            status.code()
        )
    }

    /// The runtime's CRI configuration as JSON, where it reports one in its verbose Status
    /// (containerd does: its `config`); `None` otherwise.
    pub async fn config(&self) -> Result<Option<serde_json::Value>, String> {
        let status: StatusResponse = self
            .call("RuntimeService", "Status", StatusRequest { verbose: true })
            .await
            .map_err(|s| self.failed("Status", &s))?;
        Ok(status
            .info
            .get("config")
            .and_then(|c| serde_json::from_str(c).ok()))
    }

    /// The images the runtime holds.
    pub async fn images(&self) -> Result<Vec<Image>, String> {
        let listed: ListImagesResponse = self
            .call(
                "ImageService",
                "ListImages",
                ListImagesRequest { filter: None },
            )
            .await
            .map_err(|s| self.failed("ListImages", &s))?;
        Ok(listed.images)
    }

    /// Removes an image (by id or reference) with all its references, as the CRI defines
    /// RemoveImage; one already gone is no error.
    pub async fn remove_image(&self, image: &str) -> Result<(), String> {
        let request = RemoveImageRequest {
            image: Some(ImageSpec {
                image: image.to_string(),
            }),
        };
        self.call::<_, Empty>("ImageService", "RemoveImage", request)
            .await
            .map(|_| ())
            .map_err(|s| self.failed("RemoveImage", &s))
    }

    /// The cgroup driver the runtime uses (`systemd` or `cgroupfs`) and where that was read:
    /// the RuntimeConfig call (CRI v1, Kubernetes 1.28+), else containerd's configuration of
    /// its default runtime (`SystemdCgroup`); `None` when the runtime tells neither.
    pub async fn cgroup_driver(&self) -> Result<Option<(&'static str, &'static str)>, String> {
        if self.api == "runtime.v1" {
            match self
                .call::<_, RuntimeConfigResponse>("RuntimeService", "RuntimeConfig", Empty {})
                .await
            {
                Ok(r) => {
                    let driver = match r.linux.map_or(0, |l| l.cgroup_driver) {
                        1 => "cgroupfs",
                        _ => "systemd",
                    };
                    return Ok(Some((driver, "the runtime's RuntimeConfig")));
                }
                Err(s) if s.code() == tonic::Code::Unimplemented => {}
                Err(s) => return Err(self.failed("RuntimeConfig", &s)),
            }
        }
        Ok(self.config().await?.as_ref().and_then(|c| {
            containerd_systemd_cgroup(c).map(|systemd| {
                let driver = if systemd { "systemd" } else { "cgroupfs" };
                (driver, "SystemdCgroup in containerd's configuration")
            })
        }))
    }

    /// The pod sandboxes whose labels include every one of `labels`.
    pub async fn sandboxes(
        &self,
        labels: std::collections::HashMap<String, String>,
    ) -> Result<Vec<PodSandbox>, String> {
        let request = ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                id: String::new(),
                label_selector: labels,
            }),
        };
        let listed: ListPodSandboxResponse = self
            .call("RuntimeService", "ListPodSandbox", request)
            .await
            .map_err(|s| self.failed("ListPodSandbox", &s))?;
        Ok(listed.items)
    }

    /// The containers whose labels include every one of `labels` (the kubelet labels each
    /// with its pod's namespace, name and UID).
    pub async fn containers(
        &self,
        labels: std::collections::HashMap<String, String>,
    ) -> Result<Vec<Container>, String> {
        let request = ListContainersRequest {
            filter: Some(ContainerFilter {
                id: String::new(),
                label_selector: labels,
            }),
        };
        let listed: ListContainersResponse = self
            .call("RuntimeService", "ListContainers", request)
            .await
            .map_err(|s| self.failed("ListContainers", &s))?;
        Ok(listed.containers)
    }

    /// Stops a container at once and removes it: one whose pod sandbox was removed while
    /// its kubelet was still creating it is not removed with the sandbox.
    pub async fn remove_container(&self, id: &str) -> Result<(), String> {
        let request = |timeout| ContainerIdRequest {
            container_id: id.to_string(),
            timeout,
        };
        // Stopping one that is not running is no error; removing is what must succeed.
        let _ = self
            .call::<_, Empty>("RuntimeService", "StopContainer", request(0))
            .await;
        self.call::<_, Empty>("RuntimeService", "RemoveContainer", request(0))
            .await
            .map(|_| ())
            .map_err(|s| self.failed("RemoveContainer", &s))
    }

    /// Stops a pod sandbox and removes it with its containers, as the CRI defines
    /// RemovePodSandbox.
    /// A container still being started (its kubelet was stopped mid-way) cannot be removed
    /// until it is: the removal is tried again for up to 10 s.
    pub async fn remove_sandbox(&self, id: &str) -> Result<(), String> {
        let request = || PodSandboxIdRequest {
            pod_sandbox_id: id.to_string(),
        };
        let mut tries = 0;
        loop {
            let done = async {
                self.call::<_, Empty>("RuntimeService", "StopPodSandbox", request())
                    .await
                    .map_err(|s| self.failed("StopPodSandbox", &s))?;
                self.call::<_, Empty>("RuntimeService", "RemovePodSandbox", request())
                    .await
                    .map_err(|s| self.failed("RemovePodSandbox", &s))
            }
            .await;
            match done {
                Ok(_) => return Ok(()),
                Err(e) if tries >= 10 => return Err(e),
                Err(_) => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// The sandbox (pause) image a runtime configures: containerd 1.x's `sandboxImage`, 2.x's
/// `pinnedImages.sandbox`.
pub fn configured_sandbox_image(config: &serde_json::Value) -> Option<&str> {
    ["/sandboxImage", "/pinnedImages/sandbox", "/pause_image"]
        .iter()
        .find_map(|p| config.pointer(p).and_then(serde_json::Value::as_str))
        .filter(|s| !s.is_empty())
}

/// containerd's `SystemdCgroup` for its default runtime, from the CRI plugin's configuration.
fn containerd_systemd_cgroup(config: &serde_json::Value) -> Option<bool> {
    let containerd = config.get("containerd")?;
    let name = containerd
        .get("defaultRuntimeName")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("runc");
    containerd
        .pointer(&format!("/runtimes/{name}/options/SystemdCgroup"))
        .and_then(serde_json::Value::as_bool)
        .or(Some(false))
}

/// Which of `images` is the pause image pods are built around: the one the runtime
/// configures when it holds it, else the newest tag of any `pause` repository. `Err` says why
/// none can be used.
pub fn pause_image(images: &[Image], configured: Option<&str>) -> Result<String, String> {
    let tags: Vec<&str> = images
        .iter()
        .flat_map(|i| i.repo_tags.iter().map(String::as_str))
        .collect();
    if let Some(want) = configured {
        if tags.contains(&want) {
            return Ok(want.to_string());
        }
        return Err(format!(
            "the runtime's sandbox image {want} is not on the node: without it no pod starts \
             (import it, for example `ctr -n k8s.io images import pause.tar`)"
        ));
    }
    let mut pauses: Vec<&str> = tags
        .into_iter()
        .filter(|t| {
            let repo = t.rsplit_once(':').map_or(*t, |(r, _)| r);
            repo.rsplit('/').next() == Some("pause")
        })
        .collect();
    pauses.sort_by_key(|t| std::cmp::Reverse(version_key(t)));
    pauses.first().map(|t| (*t).to_string()).ok_or_else(|| {
        "the runtime holds no pause image (none is configured and no image is named pause)".into()
    })
}

/// `registry.k8s.io/pause:3.10` sorts after `...:3.9`.
fn version_key(tag: &str) -> Vec<u64> {
    tag.rsplit_once(':')
        .map(|(_, v)| v)
        .unwrap_or("")
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn image(tags: &[&str]) -> Image {
        Image {
            repo_tags: tags.iter().map(|t| (*t).to_string()).collect(),
            ..Image::default()
        }
    }

    #[test]
    fn the_configured_pause_image_wins_and_must_be_there() {
        let images = [
            image(&["registry.k8s.io/pause:3.9"]),
            image(&["k8s.gcr.io/pause:3.2"]),
            image(&["docker.io/library/busybox:1"]),
        ];
        assert_eq!(
            pause_image(&images, Some("k8s.gcr.io/pause:3.2")).unwrap(),
            "k8s.gcr.io/pause:3.2"
        );
        let missing = pause_image(&images, Some("registry.k8s.io/pause:3.10")).unwrap_err();
        assert!(
            missing.contains("registry.k8s.io/pause:3.10 is not on the node"),
            "{missing}"
        );
        let more = [image(&["registry.k8s.io/pause:3.10"]), images[0].clone()];
        assert_eq!(
            pause_image(&more, None).unwrap(),
            "registry.k8s.io/pause:3.10"
        );
        assert!(pause_image(&images[2..], None).is_err());
    }

    #[test]
    fn containerds_configuration_names_the_sandbox_image_and_cgroup_driver() {
        // containerd 1.6's verbose Status `config`, cut down.
        let c = json!({"sandboxImage": "k8s.gcr.io/pause:3.2", "containerd": {
            "defaultRuntimeName": "runc",
            "runtimes": {"runc": {"options": {"SystemdCgroup": true}}}}});
        assert_eq!(configured_sandbox_image(&c), Some("k8s.gcr.io/pause:3.2"));
        assert_eq!(containerd_systemd_cgroup(&c), Some(true));
        let v2 = json!({"pinnedImages": {"sandbox": "registry.k8s.io/pause:3.10"},
            "containerd": {"runtimes": {"runc": {"options": {}}}}});
        assert_eq!(
            configured_sandbox_image(&v2),
            Some("registry.k8s.io/pause:3.10")
        );
        assert_eq!(containerd_systemd_cgroup(&v2), Some(false));
        assert_eq!(containerd_systemd_cgroup(&json!({})), None);
    }
}
