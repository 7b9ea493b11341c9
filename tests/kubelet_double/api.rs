//! The double's client of the API server: the project's own client, every answer (error
//! statuses included) as (HTTP status, body).

use node_conformance::controlplane::client::{Client, Credentials};
use serde_json::Value;

pub use node_conformance::controlplane::client::message;

pub const STRATEGIC: &str = "application/strategic-merge-patch+json";
const JSON: &str = "application/json";

#[derive(Clone)]
pub struct Api(Client);

pub type Answer = Result<(u16, Value), String>;

impl Api {
    pub fn new(server: &str, credentials: &Credentials) -> Self {
        Self(Client::with_credentials(server, credentials))
    }

    pub fn get(&self, path: &str) -> Answer {
        self.0.request("GET", path, JSON, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Answer {
        self.0.request("POST", path, JSON, Some(body))
    }

    pub fn put(&self, path: &str, body: &Value) -> Answer {
        self.0.request("PUT", path, JSON, Some(body))
    }

    pub fn patch(&self, path: &str, body: &Value) -> Answer {
        self.0.request("PATCH", path, STRATEGIC, Some(body))
    }

    pub fn delete(&self, path: &str, body: &Value) -> Answer {
        self.0.request("DELETE", path, JSON, Some(body))
    }
}

/// The server and credentials of a JSON kubeconfig with everything inline (`*-data`).
pub fn from_kubeconfig(path: &std::path::Path) -> Result<(String, Credentials), String> {
    use base64::Engine;
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let k: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let pem = |v: &Value| -> Option<String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.as_str()?)
            .ok()?;
        String::from_utf8(bytes).ok()
    };
    let cluster = &k["clusters"][0]["cluster"];
    let user = &k["users"][0]["user"];
    let server = cluster["server"].as_str().ok_or("no server")?.to_string();
    let certificate = pem(&user["client-certificate-data"]).zip(pem(&user["client-key-data"]));
    Ok((
        server,
        Credentials {
            ca: pem(&cluster["certificate-authority-data"]),
            token: user["token"].as_str().map(str::to_string),
            certificate,
        },
    ))
}
