//! Asking an API server about this node, with the credentials of a kubeconfig.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use super::kubeconfig::{Kubeconfig, Pem};

/// Why the API server could not be asked.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Nothing answered: the test skips.
    Unreachable(String),
    /// It answered, but not with the Node.
    Refused(String),
}

fn pem(
    p: &Option<Result<Pem, String>>,
    what: &str,
) -> Result<Option<Vec<PemItem<'static>>>, String> {
    match p {
        None => Ok(None),
        Some(Err(e)) => Err(e.clone()),
        Some(Ok(p)) => ureq::tls::parse_pem(&p.bytes)
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
            .map_err(|e| format!("{what} ({}): {e}", p.from)),
    }
}

fn tls(k: &Kubeconfig) -> Result<TlsConfig, String> {
    let mut tls = TlsConfig::builder();
    if let Some(items) = pem(&k.ca, "certificate authority")? {
        let roots: Vec<Certificate<'static>> = items
            .into_iter()
            .filter_map(|i| {
                if let PemItem::Certificate(c) = i {
                    Some(c)
                } else {
                    None
                }
            })
            .collect();
        tls = tls.root_certs(RootCerts::Specific(Arc::new(roots)));
    }
    let mut chain = Vec::new();
    let mut key: Option<PrivateKey<'static>> = None;
    for item in pem(&k.client_cert, "client certificate")?
        .into_iter()
        .chain(pem(&k.client_key, "client key")?)
        .flatten()
    {
        match item {
            PemItem::Certificate(c) => chain.push(c),
            PemItem::PrivateKey(p) => key = Some(p),
            _ => {}
        }
    }
    if let Some(key) = key
        && !chain.is_empty()
    {
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(tls.build())
}

/// GET /api/v1/nodes/<name>.
pub fn get_node(k: &Kubeconfig, name: &str) -> Result<Value, Failure> {
    let tls = tls(k).map_err(Failure::Refused)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}/api/v1/nodes/{name}", k.server.trim_end_matches('/'));
    let mut resp = agent
        .get(&url)
        .header("Accept", "application/json")
        .call()
        .map_err(|e| match e {
            ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Timeout(_) => Failure::Unreachable(format!("{url}: {e}")),
            other => Failure::Refused(format!("{url}: {other}")),
        })?;
    let status = resp.status();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| Failure::Refused(format!("{url}: {e}")))?;
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| body.chars().take(200).collect());
        return Err(Failure::Refused(format!("{url}: {status}: {message}")));
    }
    serde_json::from_str(&body).map_err(|e| Failure::Refused(format!("{url}: not JSON: {e}")))
}
