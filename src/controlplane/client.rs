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

/// A Status body's message, or the whole body.
pub fn message(body: &Value) -> String {
    body.get("message")
        .and_then(Value::as_str)
        .map_or_else(|| body.to_string(), str::to_string)
}
