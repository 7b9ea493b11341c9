//! A small JSON client of the API server: every answer, error statuses included, as
//! (HTTP status, body).

use std::time::Duration;

use serde_json::Value;

pub const STRATEGIC: &str = "application/strategic-merge-patch+json";
const JSON: &str = "application/json";

#[derive(Clone)]
pub struct Api {
    base: String,
    agent: ureq::Agent,
}

pub type Answer = Result<(u16, Value), String>;

impl Api {
    pub fn new(server: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Self {
            base: server.trim_end_matches('/').to_string(),
            agent,
        }
    }

    fn read(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
        let mut resp = resp.map_err(|e| e.to_string())?;
        let code = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok((
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    pub fn get(&self, path: &str) -> Answer {
        Self::read(self.agent.get(format!("{}{path}", self.base)).call())
    }

    fn send(&self, method: &str, path: &str, ctype: &str, body: &Value) -> Answer {
        let req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Content-Type", ctype)
            .header("Accept", JSON)
            .body(body.to_string())
            .map_err(|e| e.to_string())?;
        Self::read(self.agent.run(req))
    }

    pub fn post(&self, path: &str, body: &Value) -> Answer {
        self.send("POST", path, JSON, body)
    }

    pub fn put(&self, path: &str, body: &Value) -> Answer {
        self.send("PUT", path, JSON, body)
    }

    pub fn patch(&self, path: &str, body: &Value) -> Answer {
        self.send("PATCH", path, STRATEGIC, body)
    }

    pub fn delete(&self, path: &str, body: &Value) -> Answer {
        self.send("DELETE", path, JSON, body)
    }
}

/// A Status body's message, or the whole body.
pub fn message(body: &Value) -> String {
    body.get("message")
        .and_then(Value::as_str)
        .map_or_else(|| body.to_string(), str::to_string)
}
