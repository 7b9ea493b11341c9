//! `pods/exec`, `pods/attach` and `pods/log` over a websocket: the API's streaming
//! subresources, as kube-apiserver 1.20 serves them.
//!
//! Exec and attach (pkg/registry/core/pod/rest/subresources.go, pod/strategy.go
//! `ExecLocation`/`AttachLocation`): the options are decoded from the query, the pod looked up,
//! its container chosen, and the client's upgrade request (SPDY/3.1 or websocket, with its
//! `X-Stream-Protocol-Version` or `Sec-WebSocket-Protocol`) sent on to the kubelet's
//! `/exec/<namespace>/<pod>/<container>?...` (`/attach/...`); once the kubelet switches
//! protocols, bytes are relayed both ways until either side closes (apimachinery's
//! `UpgradeAwareHandler`). The kubelet answers the upgrade itself, so SPDY (kubectl) and
//! websocket clients work alike.
//!
//! A websocket request for `pods/log` gets the log as websocket messages
//! (k8s.io/apiserver/pkg/util/wsstream `Reader`): subprotocol `binary.k8s.io` or none gives
//! binary messages of the log's bytes, `base64.binary.k8s.io` text messages of their base64;
//! an empty message comes first, at most 2048 bytes go in each message, and the socket is
//! closed (status 1000) at the log's end.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::api::status;
use super::logs::{self, Kubelets, container_of};
use super::store::Store;

/// Which streaming subresource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Exec,
    Attach,
}

impl Verb {
    /// The kubelet's path segment, which is also the subresource's name.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Exec => "exec",
            Verb::Attach => "attach",
        }
    }
}

/// PodExecOptions or PodAttachOptions decoded from a query as kube-apiserver decodes them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamOptions {
    pub container: Option<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    /// Exec only: argv, not run in a shell.
    pub command: Vec<String>,
}

/// A query boolean as apimachinery's `Convert_Slice_string_To_bool` reads its first value:
/// `0`, `f` and `false` (any case) are false, anything else true.
fn query_bool(v: &str) -> bool {
    !(v == "0" || v.eq_ignore_ascii_case("f") || v.eq_ignore_ascii_case("false"))
}

/// Decodes the options: each field from its parameter's first value, `command` from all of
/// them. Nothing is defaulted: kube-apiserver 1.20 sends the kubelet only what the query set
/// (its `SetDefaults_PodExecOptions` does not run on a decoded query), and leaves refusing
/// options that ask for no stream to the kubelet.
pub fn stream_options(verb: Verb, query: &[(String, String)]) -> StreamOptions {
    let first = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let flag = |k: &str| first(k).is_some_and(query_bool);
    StreamOptions {
        container: first("container").map(str::to_string),
        stdin: flag("stdin"),
        stdout: flag("stdout"),
        stderr: flag("stderr"),
        tty: flag("tty"),
        command: match verb {
            Verb::Exec => query
                .iter()
                .filter(|(k, _)| k == "command")
                .map(|(_, v)| v.clone())
                .collect(),
            Verb::Attach => Vec::new(),
        },
    }
}

/// The kubelet's query for the options (pod/strategy.go `streamParams`, encoded as Go's
/// `url.Values` encodes, keys sorted): each `command`, then the kubelet's names for the
/// streams (core/v1 `ExecStderrParam` `error`, `ExecStdinParam` `input`, `ExecStdoutParam`
/// `output`, `ExecTTYParam` `tty`) as `1` when set.
pub fn kubelet_query(o: &StreamOptions) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for c in &o.command {
        out.append_pair("command", c);
    }
    for (k, on) in [
        ("error", o.stderr),
        ("input", o.stdin),
        ("output", o.stdout),
        ("tty", o.tty),
    ] {
        if on {
            out.append_pair(k, "1");
        }
    }
    out.finish()
}

/// Whether the request asks for a protocol switch (`Connection: Upgrade` with an `Upgrade`
/// header), as apimachinery's `httpstream.IsUpgradeRequest` tells.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
        })
}

/// Whether the request is a websocket upgrade (wsstream `IsWebSocketRequest`).
pub fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
        && is_upgrade(headers)
}

/// `GET`/`POST .../pods/<name>/exec|attach`.
pub(super) async fn serve(
    store: &Store,
    kubelets: Option<&Kubelets>,
    verb: Verb,
    namespace: &str,
    name: &str,
    req: Request,
) -> Response {
    if req.method() != Method::GET && req.method() != Method::POST {
        return super::api::no_route(405, "");
    }
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let options = stream_options(verb, &query);
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
    let container = match container_of(&pod, name, options.container.as_deref()) {
        Ok(c) => c,
        Err(m) => return status(400, "BadRequest", &m, None),
    };
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node.is_empty() {
        return status(
            400,
            "BadRequest",
            &format!("pod {name} does not have a host assigned"),
            None,
        );
    }
    let port = match logs::kubelet_port(store, node) {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    // UpgradeAwareHandler with upgradeRequired: a plain request is refused before any
    // kubelet is asked.
    if !is_upgrade(req.headers()) {
        return status(400, "BadRequest", "Upgrade request required", None);
    }
    let Some(kubelets) = kubelets else {
        return logs::no_kubelet_credentials();
    };
    let mut path = format!("/{}/{namespace}/{name}/{container}", verb.name());
    let q = kubelet_query(&options);
    if !q.is_empty() {
        path.push('?');
        path.push_str(&q);
    }
    match proxy_upgrade(kubelets, port, &path, req).await {
        Ok(resp) => resp,
        Err(e) => status(
            500,
            "InternalError",
            &format!(
                "Internal error occurred: error dialing backend: the kubelet of node {node} (127.0.0.1:{port}): {e}"
            ),
            None,
        ),
    }
}

/// Headers a hop does not pass on as they are: the API's own credentials (kube-apiserver's
/// authentication filter removes them) and the host, which names the kubelet instead.
fn forwarded(name: &header::HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "authorization" | "host" | "content-length" | "transfer-encoding"
    )
}

/// Sends the client's upgrade request to the kubelet; a 101 is answered to the client with
/// the kubelet's headers and both connections are then relayed until either closes. Any
/// other answer of the kubelet is passed back as it is, as `UpgradeAwareHandler` passes the
/// backend's raw response.
async fn proxy_upgrade(
    kubelets: &Kubelets,
    port: u16,
    path: &str,
    mut req: Request,
) -> Result<Response, String> {
    let client_upgrade = hyper::upgrade::on(&mut req);
    let mut out = hyper::Request::builder()
        .method(req.method().clone())
        .uri(path)
        .header(header::HOST, format!("127.0.0.1:{port}"));
    for (k, v) in req.headers() {
        if forwarded(k) {
            out = out.header(k, v);
        }
    }
    let out = out
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let mut answer = tokio::time::timeout(logs::CONNECT, async {
        let tls = logs::connect(kubelets, port).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn.with_upgrades());
        sender.send_request(out).await.map_err(|e| e.to_string())
    })
    .await
    .map_err(|_| format!("no answer within {}s", logs::CONNECT.as_secs()))??;
    if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (parts, body) = answer.into_parts();
        let mut resp = Body::new(body.map_err(axum::Error::new)).into_response();
        *resp.status_mut() = parts.status;
        *resp.headers_mut() = parts.headers;
        return Ok(resp);
    }
    let kubelet_upgrade = hyper::upgrade::on(&mut answer);
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    for (k, v) in answer.headers() {
        resp.headers_mut().append(k, v.clone());
    }
    tokio::spawn(async move {
        let (Ok(client), Ok(kubelet)) = tokio::join!(client_upgrade, kubelet_upgrade) else {
            return;
        };
        relay(TokioIo::new(client), TokioIo::new(kubelet)).await;
    });
    Ok(resp)
}

/// Copies bytes both ways until either side closes; what the kubelet sent last reaches the
/// client, whose connection is then shut down.
async fn relay<C, K>(client: C, kubelet: K)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite,
    K: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let (mut client_in, mut client_out) = tokio::io::split(client);
    let (mut kubelet_in, mut kubelet_out) = tokio::io::split(kubelet);
    let up = async {
        let _ = tokio::io::copy(&mut client_in, &mut kubelet_out).await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut kubelet_in, &mut client_out).await;
        let _ = client_out.shutdown().await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// The subprotocols a websocket log reader speaks, and whether each sends base64 text.
const READER_PROTOCOLS: &[(&str, bool)] = &[
    ("", false),
    ("binary.k8s.io", false),
    ("base64.binary.k8s.io", true),
];

/// The subprotocol chosen for `Sec-WebSocket-Protocol` (its comma-separated list, the first
/// the reader speaks), with whether it is base64; `Err` lists what was asked for, as wsstream's
/// handshake refuses.
pub fn reader_protocol(asked: Option<&str>) -> Result<(&'static str, bool), String> {
    let asked: Vec<&str> = match asked.map(str::trim).filter(|a| !a.is_empty()) {
        Some(a) => a.split(',').map(str::trim).collect(),
        None => vec![""],
    };
    asked
        .iter()
        .find_map(|a| READER_PROTOCOLS.iter().find(|(p, _)| p == a).copied())
        .ok_or_else(|| format!("requested protocol(s) are not supported: {asked:?}"))
}

/// The largest piece of the log one message carries (wsstream's buffer).
const MESSAGE_BYTES: usize = 2048;

/// One websocket frame from the server (unmasked, final): `opcode` 1 text, 2 binary, 8 close.
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// The websocket messages the log's bytes make, as wsstream's `messageCopy` sends them for
/// one read of up to 2048 bytes.
pub fn log_frames(chunk: &[u8], base64: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in chunk.chunks(MESSAGE_BYTES) {
        if base64 {
            let text = base64::engine::general_purpose::STANDARD.encode(piece);
            out.extend(frame(1, text.as_bytes()));
        } else {
            out.extend(frame(2, piece));
        }
    }
    out
}

/// Answers a websocket request for a log with the log (`log`, the answer `pods/log` made)
/// as messages. Anything but a 200 is answered as it is: it is the log's error.
pub(super) fn websocket_log(mut req: Request, log: Response) -> Response {
    if log.status() != StatusCode::OK {
        return log;
    }
    let headers = req.headers();
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return (StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key").into_response();
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let asked = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok());
    // x/net/websocket answers a refused handshake 403 with no body.
    let Ok((protocol, base64)) = reader_protocol(asked) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let upgrade = hyper::upgrade::on(&mut req);
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if !protocol.is_empty() {
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(protocol),
        );
    }
    let mut body = log.into_body();
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let (mut from_client, mut to_client) = tokio::io::split(TokioIo::new(upgraded));
        // The client sends nothing that matters; its closing ends the stream early.
        let closed = async {
            let mut sink = [0u8; 1024];
            while matches!(from_client.read(&mut sink).await, Ok(n) if n > 0) {}
        };
        let copy = async {
            let first = if base64 { frame(1, b"") } else { frame(2, b"") };
            if to_client.write_all(&first).await.is_err() {
                return;
            }
            while let Some(Ok(f)) = body.frame().await {
                if let Some(d) = f.data_ref()
                    && !d.is_empty()
                    && to_client.write_all(&log_frames(d, base64)).await.is_err()
                {
                    return;
                }
            }
        };
        tokio::select! {
            () = closed => {}
            () = copy => {}
        }
        // Close status 1000, normal closure, as x/net/websocket's Close sends.
        let _ = to_client.write_all(&frame(8, &1000u16.to_be_bytes())).await;
        let _ = to_client.shutdown().await;
    });
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn exec_options_reach_the_kubelet_as_the_api_sends_them() {
        // What kube-apiserver 1.20 sent a kubelet for `?command=ls&command=-l&tty=true`:
        // `command=ls&command=-l&tty=1`, no stream defaulted on.
        let o = stream_options(
            Verb::Exec,
            &q(&[
                ("command", "ls"),
                ("command", "-l"),
                ("tty", "true"),
                ("container", "c"),
            ]),
        );
        assert_eq!(kubelet_query(&o), "command=ls&command=-l&tty=1");
        assert_eq!(o.container.as_deref(), Some("c"));
        let o = stream_options(
            Verb::Exec,
            &q(&[
                ("stdout", "1"),
                ("command", "echo"),
                ("command", "a b"),
                ("stdin", "true"),
                ("stderr", "0"),
            ]),
        );
        assert_eq!(o.command, ["echo", "a b"]);
        assert!(o.stdin && o.stdout && !o.stderr && !o.tty);
        assert_eq!(
            kubelet_query(&o),
            "command=echo&command=a+b&input=1&output=1"
        );
        // The kubelet's names for the streams, not the API's.
        let both = stream_options(Verb::Exec, &q(&[("stdout", "true"), ("stderr", "1")]));
        assert_eq!(kubelet_query(&both), "error=1&output=1");
        let none = stream_options(Verb::Exec, &[]);
        assert_eq!(none, StreamOptions::default());
        assert_eq!(kubelet_query(&none), "");
        let attach = stream_options(Verb::Attach, &q(&[("command", "x"), ("tty", "F")]));
        assert!(attach.command.is_empty() && !attach.tty);
        assert!(query_bool("yes") && query_bool("") && !query_bool("FALSE"));
    }

    #[test]
    fn upgrades_are_told_from_plain_requests() {
        let mut h = HeaderMap::new();
        assert!(!is_upgrade(&h));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(!is_upgrade(&h));
        h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        assert!(is_upgrade(&h) && !is_websocket(&h));
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(is_websocket(&h));
    }

    #[test]
    fn a_log_reader_speaks_binary_or_base64() {
        assert_eq!(reader_protocol(None).unwrap(), ("", false));
        assert_eq!(
            reader_protocol(Some("nope, base64.binary.k8s.io")).unwrap(),
            ("base64.binary.k8s.io", true)
        );
        assert_eq!(
            reader_protocol(Some("binary.k8s.io")).unwrap(),
            ("binary.k8s.io", false)
        );
        assert!(reader_protocol(Some("channel.k8s.io")).is_err());
    }

    #[test]
    fn log_messages_hold_at_most_2048_bytes() {
        assert_eq!(frame(2, b"hi"), [0x82, 2, b'h', b'i']);
        assert_eq!(frame(8, &1000u16.to_be_bytes()), [0x88, 2, 0x03, 0xe8]);
        let long = vec![b'x'; 3000];
        let frames = log_frames(&long, false);
        // 2048 bytes (126: 16-bit length) then 952.
        assert_eq!(&frames[..4], &[0x82, 126, 0x08, 0x00]);
        assert_eq!(&frames[4 + 2048..4 + 2048 + 4], &[0x82, 126, 0x03, 0xb8]);
        assert_eq!(frames.len(), 4 + 2048 + 4 + 952);
        assert_eq!(log_frames(b"hi", true), frame(1, b"aGk="));
        assert!(frame(2, &vec![0; 70_000]).starts_with(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]));
    }
}
