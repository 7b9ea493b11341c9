//! A small blocking JSON client of the local control plane, for the kubelet tests: they drive
//! the kubelet through the API exactly as any other client would.

use std::time::Duration;

use serde_json::Value;

#[derive(Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
    /// `Bearer <token>`, sent with every request when the client has a token.
    authorization: Option<String>,
    /// What websockets, which do not go through the agent, connect with.
    credentials: Credentials,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// How a client proves who it is to a secure API, and which server it trusts.
#[derive(Clone, Default)]
pub struct Credentials {
    /// The CA (PEM) the server's certificate must chain to; `None` trusts no one, so only
    /// plain HTTP works.
    pub ca: Option<String>,
    /// A bearer token.
    pub token: Option<String>,
    /// A client certificate and its key (PEM).
    pub certificate: Option<(String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("ca", &self.ca.is_some())
            .field("token", &self.token.is_some())
            .field("certificate", &self.certificate.is_some())
            .finish()
    }
}

/// An answer that is not a success: its HTTP code and the Status message.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.code == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "{} ({})", self.message, self.code)
        }
    }
}

impl Client {
    /// A client without credentials: for an API served over plain HTTP.
    pub fn new(base: &str) -> Self {
        Self::with_credentials(base, &Credentials::default())
    }

    /// A client of `base` that trusts only `credentials.ca` (with no CA, the system's roots
    /// are not used either: nothing verifies) and authenticates with its token or certificate.
    pub fn with_credentials(base: &str, credentials: &Credentials) -> Self {
        use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
        // A CA or certificate that does not parse leaves nothing to trust or present: every
        // request then fails, naming the TLS error.
        let roots = RootCerts::new_with_certs(
            &credentials
                .ca
                .as_ref()
                .and_then(|ca| Certificate::from_pem(ca.as_bytes()).ok())
                .into_iter()
                .collect::<Vec<_>>(),
        );
        let client_cert = credentials.certificate.as_ref().and_then(|(cert, key)| {
            Some(ClientCert::new_with_certs(
                &[Certificate::from_pem(cert.as_bytes()).ok()?],
                PrivateKey::from_pem(key.as_bytes()).ok()?,
            ))
        });
        let tls = TlsConfig::builder()
            .root_certs(roots)
            .client_cert(client_cert)
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .tls_config(tls)
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_string(),
            agent,
            authorization: credentials.token.as_ref().map(|t| format!("Bearer {t}")),
            credentials: credentials.clone(),
        }
    }

    /// The API's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Any request; every answer, error statuses included, as (HTTP status, body). The body
    /// is JSON where it parses, else its text.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        ctype: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let url = format!("{}{path}", self.base);
        let failed = |e: &dyn std::fmt::Display| format!("{method} {url}: {e}");
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Content-Type", ctype)
            .header("Accept", "application/json");
        if let Some(a) = &self.authorization {
            builder = builder.header("Authorization", a);
        }
        let request = builder
            .body(body.map(Value::to_string).unwrap_or_default())
            .map_err(|e| failed(&e))?;
        let mut response = self.agent.run(request).map_err(|e| failed(&e))?;
        let code = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| failed(&e))?;
        Ok((
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// A GET answered with text (a container's log): the body as text, or the Status's
    /// message with the code for an answer that is not a success.
    pub fn get_text(&self, path: &str) -> Result<String, ApiError> {
        let url = format!("{}{path}", self.base);
        let failed = |e: &dyn std::fmt::Display| ApiError {
            code: 0,
            message: format!("GET {url}: {e}"),
        };
        let mut builder = ureq::http::Request::builder()
            .method("GET")
            .uri(&url)
            .header("Accept", "*/*");
        if let Some(a) = &self.authorization {
            builder = builder.header("Authorization", a);
        }
        let request = builder.body(String::new()).map_err(|e| failed(&e))?;
        let mut response = self.agent.run(request).map_err(|e| failed(&e))?;
        let code = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .map_err(|e| failed(&e))?;
        if (200..300).contains(&code) {
            Ok(text)
        } else {
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            Err(ApiError {
                code,
                message: format!("GET {path}: {}", message(&body)),
            })
        }
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        ctype: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let (code, value) = self
            .request(method, path, ctype, body)
            .map_err(|message| ApiError { code: 0, message })?;
        if (200..300).contains(&code) {
            Ok(value)
        } else {
            Err(ApiError {
                code,
                message: format!("{method} {path}: {}", message(&value)),
            })
        }
    }

    /// The object, or None when it does not exist.
    pub fn get(&self, path: &str) -> Result<Option<Value>, ApiError> {
        match self.send("GET", path, "application/json", None) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The items of a list.
    pub fn list(&self, path: &str) -> Result<Vec<Value>, ApiError> {
        let list = self.send("GET", path, "application/json", None)?;
        Ok(list
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    pub fn create(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.send("POST", path, "application/json", Some(body))
    }

    /// Replaces the object (PUT); a 409 Conflict is an error with code 409, for the caller to
    /// read the object again and retry, as client-go's `RetryOnConflict` does.
    pub fn update(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.send("PUT", path, "application/json", Some(body))
    }

    /// Patches the object with a patch of content type `ctype`
    /// (`application/strategic-merge-patch+json`, `application/merge-patch+json`, ...).
    pub fn patch(&self, path: &str, ctype: &str, patch: &Value) -> Result<Value, ApiError> {
        self.send("PATCH", path, ctype, Some(patch))
    }

    /// Opens a watch (`path` carries `watch=true` and its options) that ends at the latest
    /// after `limit`; its events are read with [`Watch::next_event`].
    pub fn watch(&self, path: &str, limit: Duration) -> Result<Watch, ApiError> {
        let url = format!("{}{path}", self.base);
        let failed = |e: &dyn std::fmt::Display| ApiError {
            code: 0,
            message: format!("GET {url}: {e}"),
        };
        let mut builder = ureq::http::Request::builder()
            .method("GET")
            .uri(&url)
            .header("Accept", "application/json");
        if let Some(a) = &self.authorization {
            builder = builder.header("Authorization", a);
        }
        let request = builder.body(()).map_err(|e| failed(&e))?;
        let request = self
            .agent
            .configure_request(request)
            .timeout_global(Some(limit))
            .build();
        let mut response = self.agent.run(request).map_err(|e| failed(&e))?;
        let code = response.status().as_u16();
        if !(200..300).contains(&code) {
            let text = response
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_string()
                .unwrap_or_default();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            return Err(ApiError {
                code,
                message: format!("GET {path}: {}", message(&body)),
            });
        }
        Ok(Watch {
            lines: std::io::BufReader::new(response.into_body().into_reader()),
        })
    }

    /// Deletes with the given DeleteOptions; a missing object is not an error.
    pub fn delete(&self, path: &str, options: &Value) -> Result<(), ApiError> {
        match self.send("DELETE", path, "application/json", Some(options)) {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// An open watch: one event per line, as the API streams them.
pub struct Watch {
    lines: std::io::BufReader<ureq::BodyReader<'static>>,
}

/// The longest line of a watch the client reads: an event larger than this ends the watch.
const MAX_EVENT: u64 = 16 << 20;

impl Watch {
    /// The next event as (type, object): `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or
    /// `ERROR` (with a Status). `Ok(None)` when the server ended the watch; `Err` when the time
    /// ran out or the stream broke.
    pub fn next_event(&mut self) -> Result<Option<(String, Value)>, String> {
        use std::io::{BufRead, Read};
        loop {
            let mut line = Vec::new();
            let n = (&mut self.lines)
                .take(MAX_EVENT)
                .read_until(b'\n', &mut line)
                .map_err(|e| format!("the watch broke: {e}"))?;
            if n == 0 {
                return Ok(None);
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let event: Value = serde_json::from_slice(&line)
                .map_err(|e| format!("the watch sent what is not an event: {e}"))?;
            let kind = event
                .get("type")
                .and_then(Value::as_str)
                .ok_or("a watch event without a type")?
                .to_string();
            let object = event.get("object").cloned().unwrap_or(Value::Null);
            return Ok(Some((kind, object)));
        }
    }
}

/// Every message of a websocket, in order, until the server closed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebSocketMessages {
    /// The subprotocol the server chose (`Sec-WebSocket-Protocol`), empty when none.
    pub protocol: String,
    /// Each text or binary message's payload.
    pub messages: Vec<Vec<u8>>,
}

/// A byte stream a websocket runs over: TCP, or TLS over it.
trait Stream: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> Stream for T {}

impl Client {
    /// Opens a websocket to `path` (with its query) offering `protocols`, authenticated as
    /// every request of this client is, and reads every message until the server closes the
    /// socket (a close frame, or the connection's end). `deadline` bounds it all; a server
    /// that refuses the upgrade gives its HTTP code and body.
    pub fn websocket_messages(
        &self,
        path: &str,
        protocols: &[&str],
        deadline: Duration,
    ) -> Result<WebSocketMessages, ApiError> {
        let until = std::time::Instant::now() + deadline;
        let failed = |e: &dyn std::fmt::Display| ApiError {
            code: 0,
            message: format!("websocket {path}: {e}"),
        };
        let (secure, authority) = match self.base.split_once("://") {
            Some(("https", a)) => (true, a),
            Some(("http", a)) => (false, a),
            _ => return Err(failed(&format!("the API {} is no http(s) URL", self.base))),
        };
        let left = || until.saturating_duration_since(std::time::Instant::now());
        let addr = std::net::ToSocketAddrs::to_socket_addrs(authority)
            .map_err(|e| failed(&e))?
            .next()
            .ok_or_else(|| failed(&format!("{authority} has no address")))?;
        let tcp = std::net::TcpStream::connect_timeout(&addr, left().max(Duration::from_millis(1)))
            .map_err(|e| failed(&e))?;
        let _ = tcp.set_nodelay(true);
        // The clock's handle: read and write timeouts are the socket's, whatever wraps it.
        let clock = tcp.try_clone().map_err(|e| failed(&e))?;
        let stream: Box<dyn Stream> = if secure {
            Box::new(self.tls(authority, tcp).map_err(|e| failed(&e))?)
        } else {
            Box::new(tcp)
        };
        let scheme = if secure { "wss" } else { "ws" };
        let mut request = tungstenite::client::IntoClientRequest::into_client_request(format!(
            "{scheme}://{authority}{path}"
        ))
        .map_err(|e| failed(&e))?;
        if let Some(a) = &self.authorization
            && let Ok(v) = a.parse()
        {
            request.headers_mut().insert("Authorization", v);
        }
        if !protocols.is_empty()
            && let Ok(v) = protocols.join(", ").parse()
        {
            request.headers_mut().insert("Sec-WebSocket-Protocol", v);
        }
        let timeout = |left: Duration| {
            let t = Some(left.max(Duration::from_millis(1)));
            let _ = clock.set_read_timeout(t);
            let _ = clock.set_write_timeout(t);
        };
        timeout(left());
        let (mut socket, response) = match tungstenite::client::client(request, stream) {
            Ok(s) => s,
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
                let code = r.status().as_u16();
                let text =
                    String::from_utf8_lossy(r.body().as_deref().unwrap_or_default()).to_string();
                let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
                return Err(ApiError {
                    code,
                    message: format!("websocket {path}: {}", message(&body)),
                });
            }
            Err(e) => return Err(failed(&e)),
        };
        let protocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let mut messages = Vec::new();
        loop {
            if left().is_zero() {
                return Err(failed(&format!(
                    "not closed within {}s",
                    deadline.as_secs_f64()
                )));
            }
            timeout(left());
            match socket.read() {
                Ok(tungstenite::Message::Binary(b)) => messages.push(b.to_vec()),
                Ok(tungstenite::Message::Text(t)) => messages.push(t.as_bytes().to_vec()),
                Ok(tungstenite::Message::Close(_)) => break,
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    break;
                }
                // The server's end without a closing handshake is an end too, as Go's
                // x/net/websocket reads it (io.EOF).
                Err(tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                )) => break,
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    break;
                }
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(failed(&format!(
                        "not closed within {}s",
                        deadline.as_secs_f64()
                    )));
                }
                Err(e) => return Err(failed(&e)),
            }
        }
        // Answering the server's close is a courtesy: it has said all it had to.
        let _ = socket.close(None);
        let _ = socket.flush();
        Ok(WebSocketMessages { protocol, messages })
    }

    /// TLS to the API at `authority` (`host:port`), trusting only the client's CA and
    /// presenting its certificate, if it has one.
    fn tls(
        &self,
        authority: &str,
        tcp: std::net::TcpStream,
    ) -> Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &self.credentials.ca {
            for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                let cert = cert.map_err(|e| format!("the API's CA: {e}"))?;
                roots.add(cert).map_err(|e| format!("the API's CA: {e}"))?;
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots);
        let config = match &self.credentials.certificate {
            Some((cert, key)) => {
                let cert = CertificateDer::from_pem_slice(cert.as_bytes())
                    .map_err(|e| format!("the client certificate: {e}"))?;
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                    .map_err(|e| format!("the client key: {e}"))?;
                builder
                    .with_client_auth_cert(vec![cert], key)
                    .map_err(|e| format!("the client certificate: {e}"))?
            }
            None => builder.with_no_client_auth(),
        };
        let host = authority
            .rsplit_once(':')
            .map_or(authority, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))?;
        let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
            .map_err(|e| format!("TLS: {e}"))?;
        Ok(rustls::StreamOwned::new(conn, tcp))
    }
}

/// A Status body's message, or the whole body.
pub fn message(body: &Value) -> String {
    body.get("message")
        .and_then(Value::as_str)
        .map_or_else(|| body.to_string(), str::to_string)
}
