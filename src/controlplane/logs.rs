//! `pods/log`: a container's log, read from the kubelet's server as kube-apiserver reads it
//! (pkg/registry/core/pod/rest/log.go and pod/strategy.go `LogLocation`): the pod is looked up,
//! its container chosen, and `GET /containerLogs/<namespace>/<pod>/<container>` sent to the
//! kubelet of its node with the client certificate the API was given for kubelets; the answer
//! is streamed back as it comes (`follow=true` streams until the container's log ends).
//!
//! The control plane runs on the node whose kubelet it talks to, so the kubelet is reached at
//! 127.0.0.1 on its node's `daemonEndpoints.kubeletEndpoint.Port`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde_json::Value;

use super::api::{status, status_with_causes};
use super::store::Store;
use super::validation::Cause;

/// What the API presents to kubelets (kube-apiserver's `--kubelet-client-certificate`,
/// `--kubelet-client-key` and `--kubelet-certificate-authority`).
#[derive(Clone)]
pub struct KubeletClient {
    /// The client certificate (DER) and its PKCS #8 key.
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    /// The CA (DER) a kubelet's serving certificate must chain to; `None` takes any, as
    /// kube-apiserver does without `--kubelet-certificate-authority`.
    pub ca: Option<Vec<u8>>,
}

/// A TLS client configuration for kubelets, made once.
pub(super) struct Kubelets {
    tls: Arc<rustls::ClientConfig>,
}

impl Kubelets {
    pub fn new(client: &KubeletClient) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match &client.ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots
                    .add(CertificateDer::from(ca.clone()))
                    .map_err(|e| format!("the kubelet CA: {e}"))?;
                builder.with_root_certificates(roots)
            }
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyServer(provider))),
        };
        let key = PrivateKeyDer::try_from(client.key.clone())
            .map_err(|e| format!("the kubelet client key: {e}"))?;
        let tls = builder
            .with_client_auth_cert(vec![CertificateDer::from(client.cert.clone())], key)
            .map_err(|e| format!("the kubelet client certificate: {e}"))?;
        Ok(Self { tls: Arc::new(tls) })
    }
}

/// Takes any server certificate (the handshake's signatures are still checked): what
/// kube-apiserver does with a kubelet's when it has no CA for kubelets.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The container whose log is asked for: the one named, else the pod's only container.
/// `Err` is kube-apiserver's message for a BadRequest.
pub fn container_of(pod: &Value, name: &str, asked: Option<&str>) -> Result<String, String> {
    let names = |key: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (containers, init, ephemeral) = (
        names("containers"),
        names("initContainers"),
        names("ephemeralContainers"),
    );
    match asked.filter(|c| !c.is_empty()) {
        Some(c) => {
            if containers
                .iter()
                .chain(&init)
                .chain(&ephemeral)
                .any(|n| n == c)
            {
                Ok(c.to_string())
            } else {
                Err(format!("container {c} is not valid for pod {name}"))
            }
        }
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            if !ephemeral.is_empty() {
                message.push_str(&format!(
                    " or one of the ephemeral containers: [{}]",
                    ephemeral.join(" ")
                ));
            }
            Err(message)
        }
    }
}

/// Why a log request's options are refused: a value that is no number (400, as the query's
/// decoding refuses it), or one `ValidatePodLogOptions` refuses (422 with its cause).
#[derive(Debug, PartialEq, Eq)]
pub enum BadOptions {
    NotANumber(String),
    Invalid(Cause),
}

/// The query the kubelet is sent: PodLogOptions' fields, each checked as kube-apiserver
/// checks it (the query's decoding, then `ValidatePodLogOptions`).
pub fn kubelet_query(query: &[(String, String)]) -> Result<String, BadOptions> {
    let mut out = form_urlencoded::Serializer::new(String::new());
    let int = |k: &str, v: &str, min: i64| -> Result<(), BadOptions> {
        let n: i64 = v.parse().map_err(|_| {
            BadOptions::NotANumber(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))
        })?;
        if n < min {
            let bound = if min == 0 {
                "greater than or equal to 0"
            } else {
                "greater than 0"
            };
            return Err(BadOptions::Invalid(Cause {
                reason: "FieldValueInvalid",
                field: k.to_string(),
                message: format!("Invalid value: {n}: must be {bound}"),
            }));
        }
        Ok(())
    };
    let mut since = 0;
    for (k, v) in query {
        match k.as_str() {
            "follow" | "previous" | "timestamps" => out.append_pair(k, v),
            "tailLines" => {
                int(k, v, 0)?;
                out.append_pair(k, v)
            }
            "limitBytes" | "sinceSeconds" => {
                int(k, v, 1)?;
                since += usize::from(k == "sinceSeconds");
                out.append_pair(k, v)
            }
            "sinceTime" => {
                since += 1;
                out.append_pair(k, v)
            }
            _ => &mut out,
        };
    }
    if since > 1 {
        // Upstream names no field: its path prints as `[]`.
        return Err(BadOptions::Invalid(Cause {
            reason: "FieldValueForbidden",
            field: "[]".into(),
            message: "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
                .into(),
        }));
    }
    Ok(out.finish())
}

/// `GET .../pods/<name>/log`.
pub(super) async fn serve(
    store: &Store,
    kubelets: Option<&Kubelets>,
    namespace: &str,
    name: &str,
    query: &[(String, String)],
) -> Response {
    // As kube-apiserver's LogREST.Get: the options are validated before the pod is looked up.
    let kubelet_query = match kubelet_query(query) {
        Ok(q) => q,
        Err(BadOptions::NotANumber(m)) => return status(400, "BadRequest", &m, None),
        Err(BadOptions::Invalid(cause)) => {
            return status_with_causes(
                422,
                "Invalid",
                &format!("PodLogOptions \"{name}\" is invalid: {cause}"),
                Some(("PodLogOptions", name)),
                std::slice::from_ref(&cause),
            );
        }
    };
    let pod = match store.get("pods", namespace, name) {
        Ok(p) => p,
        Err(_) => {
            return status(
                404,
                "NotFound",
                &format!("pods \"{name}\" not found"),
                Some(("pods", name)),
            );
        }
    };
    let asked = query
        .iter()
        .find(|(k, _)| k == "container")
        .map(|(_, v)| v.as_str());
    let container = match container_of(&pod, name, asked) {
        Ok(c) => c,
        Err(m) => return status(400, "BadRequest", &m, None),
    };
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    // A pod no node runs yet has no log: kube-apiserver streams nothing (LogLocation gives no
    // location, and the streamer an empty body).
    if node.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let port = match kubelet_port(store, node) {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let Some(kubelets) = kubelets else {
        return no_kubelet_credentials();
    };
    let mut path = format!("/containerLogs/{namespace}/{name}/{container}");
    if !kubelet_query.is_empty() {
        path.push('?');
        path.push_str(&kubelet_query);
    }
    match get(kubelets, port, &path).await {
        Ok(resp) => resp,
        Err(e) => status(
            500,
            "InternalError",
            &format!(
                "Internal error occurred: the kubelet of node {node} (127.0.0.1:{port}) could not be asked for the log: {e}"
            ),
            None,
        ),
    }
}

/// How long connecting to a kubelet and its answer's header may take.
pub(super) const CONNECT: std::time::Duration = std::time::Duration::from_secs(10);

/// The port of `node`'s kubelet (`daemonEndpoints.kubeletEndpoint.Port`, 10250 when unset);
/// `Err` is kube-apiserver's answer for a node that does not exist: its node lookup for
/// kubelets answers as if the node were a pod.
// The error is the finished answer, made once per request: not worth boxing.
#[allow(clippy::result_large_err)]
pub(super) fn kubelet_port(store: &Store, node: &str) -> Result<u16, Response> {
    let Ok(node_object) = store.get("nodes", "", node) else {
        return Err(status(
            404,
            "NotFound",
            &format!("pods \"{node}\" not found"),
            Some(("pods", node)),
        ));
    };
    Ok(node_object
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .unwrap_or(10250))
}

/// The answer when the API was given no credentials for kubelets.
pub(super) fn no_kubelet_credentials() -> Response {
    status(
        503,
        "ServiceUnavailable",
        "no client credentials for kubelets: the control plane is served without authentication (--insecure-http)",
        None,
    )
}

/// A TLS connection to the kubelet at 127.0.0.1:`port`, authenticated with the API's client
/// certificate for kubelets. Not bounded in time: callers bound it.
pub(super) async fn connect(
    kubelets: &Kubelets,
    port: u16,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    tokio_rustls::TlsConnector::from(Arc::clone(&kubelets.tls))
        .connect(
            ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
            tcp,
        )
        .await
        .map_err(|e| format!("TLS: {e}"))
}

/// GETs `path` from the kubelet at 127.0.0.1:`port`; a success is streamed back with its
/// content type, anything else becomes the Status kube-apiserver makes of it
/// (`NewGenericServerResponse`: the code, the reason it stands for, the kubelet's text).
async fn get(kubelets: &Kubelets, port: u16, path: &str) -> Result<Response, String> {
    let answer = tokio::time::timeout(CONNECT, async {
        let tls = connect(kubelets, port).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = hyper::Request::get(path)
            .header(header::HOST, format!("127.0.0.1:{port}"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(|e| e.to_string())?;
        sender.send_request(req).await.map_err(|e| e.to_string())
    })
    .await
    .map_err(|_| format!("no answer within {}s", CONNECT.as_secs()))??;
    let code = answer.status();
    if code.is_success() {
        let content_type = answer
            .headers()
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or_else(|| header::HeaderValue::from_static("text/plain"));
        let body = Body::new(answer.into_body().map_err(axum::Error::new));
        let mut resp = (StatusCode::OK, body).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
        return Ok(resp);
    }
    // As much of the kubelet's explanation as a Status message holds.
    let text = tokio::time::timeout(CONNECT, async {
        let mut body = answer.into_body();
        let mut text = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(d) = frame.data_ref() {
                text.extend_from_slice(d);
            }
            if text.len() >= 1024 {
                text.truncate(1024);
                break;
            }
        }
        String::from_utf8_lossy(&text).trim().to_string()
    })
    .await
    .unwrap_or_default();
    let reason = match code.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        _ => "",
    };
    Ok(status(code.as_u16(), reason, &text, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_container_is_the_one_named_or_the_only_one() {
        let one = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(container_of(&one, "p", None).unwrap(), "a");
        assert_eq!(container_of(&one, "p", Some("")).unwrap(), "a");
        assert_eq!(
            container_of(&one, "p", Some("b")).unwrap_err(),
            "container b is not valid for pod p"
        );
        let two = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}],
            "initContainers": [{"name": "i"}]}});
        assert_eq!(
            container_of(&two, "p", None).unwrap_err(),
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        assert_eq!(container_of(&two, "p", Some("i")).unwrap(), "i");
    }

    #[test]
    fn log_options_reach_the_kubelet_checked() {
        let q = |pairs: &[(&str, &str)]| {
            kubelet_query(
                &pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            q(&[("follow", "true"), ("tailLines", "5"), ("container", "c")]).unwrap(),
            "follow=true&tailLines=5"
        );
        assert_eq!(
            q(&[("tailLines", "-1")]).unwrap_err(),
            BadOptions::Invalid(Cause {
                reason: "FieldValueInvalid",
                field: "tailLines".into(),
                message: "Invalid value: -1: must be greater than or equal to 0".into()
            })
        );
        assert!(matches!(
            q(&[("limitBytes", "0")]),
            Err(BadOptions::Invalid(_))
        ));
        assert!(matches!(
            q(&[("sinceSeconds", "x")]),
            Err(BadOptions::NotANumber(_))
        ));
        assert!(matches!(
            q(&[("sinceSeconds", "5"), ("sinceTime", "2026-01-01T00:00:00Z")]),
            Err(BadOptions::Invalid(_))
        ));
    }
}
