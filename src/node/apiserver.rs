//! Asking an API server, with the credentials of a kubeconfig: about this node, and (for
//! `collect`) about the harness's pods.

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
    /// It answered, but not with the Node; or the kubeconfig's credentials are unusable.
    Refused(String),
    /// The kubeconfig's user authenticates in a way the harness does not (an exec credential
    /// plugin, which it will not run on the node): the test skips, naming it.
    Unsupported(String),
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
    let mut tls = TlsConfig::builder().disable_verification(k.insecure);
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
    if let (Some(Ok(cert)), Some(Ok(key_pem))) = (&k.client_cert, &k.client_key) {
        crate::node::pki::check_key_pair(&cert.bytes, &key_pem.bytes).map_err(|e| {
            format!(
                "client key ({}) and client certificate ({}): {e}",
                key_pem.from, cert.from
            )
        })?;
    }
    if let Some(key) = key
        && !chain.is_empty()
    {
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(tls.build())
}

/// GET /api/v1/nodes/<name>.
///
/// The user's credentials as client-go uses them: client certificate and key (checked to be
/// a pair first), `Authorization: Bearer` with `token` or `tokenFile`. A user with an `exec`
/// plugin or an `auth-provider` is [`Failure::Unsupported`]: the plugin is not run.
pub fn get_node(k: &Kubeconfig, name: &str) -> Result<Value, Failure> {
    let body = get(
        k,
        &format!("/api/v1/nodes/{name}"),
        Duration::from_secs(5),
        10 << 20,
    )?;
    serde_json::from_str(&body).map_err(|e| {
        Failure::Refused(format!(
            "{}/api/v1/nodes/{name}: not JSON: {e}",
            k.server.trim_end_matches('/')
        ))
    })
}

/// GET `path` (with its query) on the kubeconfig's server, with its user's credentials (as
/// [`get_node`]), within `timeout` for the whole exchange; the body as text, at most `limit`
/// bytes. A status other than 2xx is [`Failure::Refused`] with the Status message the server
/// gave (or the body's first 200 characters); nothing answering is [`Failure::Unreachable`].
pub fn get(k: &Kubeconfig, path: &str, timeout: Duration, limit: u64) -> Result<String, Failure> {
    if let Some(how) = &k.unsupported_auth {
        return Err(Failure::Unsupported(format!(
            "user {:?} authenticates with {how}, which the harness does not run",
            k.user
        )));
    }
    let token = match &k.token {
        None => None,
        Some(Ok(t)) => Some(t.as_str()),
        Some(Err(e)) => return Err(Failure::Refused(e.clone())),
    };
    let tls = tls(k).map_err(Failure::Refused)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}{path}", k.server.trim_end_matches('/'));
    let mut request = agent.get(&url).header("Accept", "application/json");
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut resp = request.call().map_err(|e| match e {
        ureq::Error::Io(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::HostNotFound
        | ureq::Error::Timeout(_) => Failure::Unreachable(format!("{url}: {e}")),
        other => Failure::Refused(format!("{url}: {other}")),
    })?;
    let status = resp.status();
    let body = resp
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_string()
        .map_err(|e| Failure::Refused(format!("{url}: {e}")))?;
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| body.chars().take(200).collect());
        return Err(Failure::Refused(format!("{url}: {status}: {message}")));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn kubeconfig(server: String) -> Kubeconfig {
        Kubeconfig {
            server,
            ca: None,
            client_cert: None,
            client_key: None,
            token: None,
            unsupported_auth: None,
            user: "u".into(),
            insecure: false,
        }
    }

    /// One HTTP exchange: answers `{}` and hands back the request it read.
    fn server() -> (String, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (url, handle)
    }

    #[test]
    fn a_token_is_sent_as_a_bearer_token() {
        let (url, request) = server();
        let mut k = kubeconfig(url);
        k.token = Some(Ok("s3cret".into()));
        get_node(&k, "n1").unwrap();
        let request = request.join().unwrap().to_lowercase();
        assert!(request.starts_with("get /api/v1/nodes/n1 "), "{request}");
        assert!(
            request.contains("authorization: bearer s3cret\r\n"),
            "{request}"
        );
    }

    #[test]
    fn an_exec_plugin_is_named_and_not_run() {
        let mut k = kubeconfig("http://127.0.0.1:1".into());
        k.unsupported_auth = Some("an exec credential plugin (\"aws\")".into());
        match get_node(&k, "n1") {
            Err(Failure::Unsupported(e)) => {
                assert!(e.contains("exec credential plugin (\"aws\")"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_client_key_of_another_certificate_is_named() {
        let cert_key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["n1".into()])
            .unwrap()
            .self_signed(&cert_key)
            .unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let pem = |bytes: String, from: &str| {
            Some(Ok(Pem {
                bytes: bytes.into_bytes(),
                from: from.into(),
            }))
        };
        let mut k = kubeconfig("https://127.0.0.1:1".into());
        k.client_cert = pem(cert.pem(), "/pki/c.crt");
        k.client_key = pem(other.serialize_pem(), "/pki/c.key");
        match get_node(&k, "n1") {
            Err(Failure::Refused(e)) => assert!(
                e.contains("client key (/pki/c.key) and client certificate (/pki/c.crt): the private key does not belong"),
                "{e}"
            ),
            other => panic!("{other:?}"),
        }
        // Both in one file, as kubeadm's kubelet-client-current.pem: a pair.
        let both = format!("{}{}", cert.pem(), cert_key.serialize_pem());
        assert!(crate::node::pki::check_key_pair(both.as_bytes(), both.as_bytes()).is_ok());
    }
}
