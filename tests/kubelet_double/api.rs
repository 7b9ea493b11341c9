//! The double's client of the API server: the project's own client, every answer (error
//! statuses included) as (HTTP status, body).

use node_conformance::controlplane::client::Client;
use serde_json::Value;

pub use node_conformance::controlplane::client::message;

pub const STRATEGIC: &str = "application/strategic-merge-patch+json";
const JSON: &str = "application/json";

#[derive(Clone)]
pub struct Api(Client);

pub type Answer = Result<(u16, Value), String>;

impl Api {
    pub fn new(server: &str) -> Self {
        Self(Client::new(server))
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
