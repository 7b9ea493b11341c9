//! A CRI client for the two calls the presence test makes: Version and Status.
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

/// Connects to a CRI socket and asks for Version and Status.
pub async fn query(connect_path: &str) -> Result<Report, String> {
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
        match ask(channel.clone(), api).await {
            Ok((version, conditions)) => {
                return Ok(Report {
                    api,
                    version,
                    conditions,
                });
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

async fn ask(
    channel: tonic::transport::Channel,
    api: &str,
) -> Result<(VersionResponse, Vec<RuntimeCondition>), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let version = grpc
        .unary(
            tonic::Request::new(VersionRequest {
                version: "v1".into(),
            }),
            call_path(api, "Version")?,
            tonic_prost::ProstCodec::default(),
        )
        .await?
        .into_inner();
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let status: StatusResponse = grpc
        .unary(
            tonic::Request::new(StatusRequest { verbose: false }),
            call_path(api, "Status")?,
            tonic_prost::ProstCodec::default(),
        )
        .await?
        .into_inner();
    Ok((
        version,
        status.status.map(|s| s.conditions).unwrap_or_default(),
    ))
}

fn call_path(api: &str, method: &str) -> Result<PathAndQuery, tonic::Status> {
    PathAndQuery::try_from(format!("/{api}.RuntimeService/{method}"))
        .map_err(|e| tonic::Status::internal(e.to_string()))
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
