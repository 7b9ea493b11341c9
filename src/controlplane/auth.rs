//! Who may use the API: TLS, then every request authenticated by a bearer token or a client
//! certificate, as kube-apiserver authenticates (k8s.io/apiserver/pkg/endpoints/filters/
//! authentication.go); anything else is answered 401 before it is routed, read or counted.
//!
//! As kube-apiserver does (its `--client-ca-file`), the TLS handshake asks for a client
//! certificate without requiring one and accepts any; the certificate is verified against the
//! client CA afterwards, so a certificate from another CA is a 401, not a failed handshake.
//! kube-apiserver turns anonymous requests off when authorization is AlwaysAllow (its
//! `ApplyAuthorization`), which is how it runs beside this API in the differential suite;
//! here there is no anonymous user at all.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use sha2::Digest;

/// How the API is served to its clients.
#[derive(Clone)]
pub enum Serving {
    /// Plain HTTP, every request answered, whoever sends it. Any local account and any
    /// container on the host network can then create pods that a kubelet runs as root.
    Insecure,
    /// TLS, and only authenticated requests answered.
    Secure(Security),
}

impl std::fmt::Debug for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Insecure => "Insecure",
            Self::Secure(_) => "Secure",
        })
    }
}

/// What a secure API serves with and whom it accepts.
#[derive(Clone)]
pub struct Security {
    /// The serving certificate (DER), first the API's own, then any intermediates.
    pub cert_chain: Vec<Vec<u8>>,
    /// Its key, PKCS #8 DER.
    pub key: Vec<u8>,
    /// The CAs (DER) whose client certificates authenticate (kube-apiserver's
    /// `--client-ca-file`). Empty: no client certificate does.
    pub client_ca: Vec<Vec<u8>>,
    /// The bearer tokens that authenticate (kube-apiserver's `--token-auth-file`).
    pub tokens: Vec<String>,
    /// What it presents to kubelets to read containers' logs; `None`: `pods/log` answers 503.
    pub kubelet_client: Option<super::logs::KubeletClient>,
}

/// The TLS configuration and the authenticator of a secure API.
pub(super) struct Secure {
    pub tls: Arc<ServerConfig>,
    pub authenticator: Arc<Authenticator>,
}

impl Secure {
    pub fn new(security: &Security) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = if security.client_ca.is_empty() {
            None
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for ca in &security.client_ca {
                roots
                    .add(CertificateDer::from(ca.clone()))
                    .map_err(|e| format!("the client CA: {e}"))?;
            }
            Some(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| format!("the client CA: {e}"))?,
            )
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match &verifier {
            Some(v) => builder.with_client_cert_verifier(Arc::new(AnyClientCert {
                inner: Arc::clone(v),
            })),
            None => builder.with_no_client_auth(),
        };
        let chain = security
            .cert_chain
            .iter()
            .map(|c| CertificateDer::from(c.clone()))
            .collect();
        let key = PrivateKeyDer::try_from(security.key.clone())
            .map_err(|e| format!("the serving key: {e}"))?;
        let mut tls = builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("the serving certificate: {e}"))?;
        // HTTP/1.1 only: a client offering h2 falls back to it, as clients of a Go server
        // without HTTP/2 do.
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            tls: Arc::new(tls),
            authenticator: Arc::new(Authenticator {
                tokens: security.tokens.iter().map(|t| digest(t)).collect(),
                client_certs: verifier,
            }),
        })
    }
}

fn digest(token: &str) -> [u8; 32] {
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// Asks for a client certificate and takes whatever is offered: its chain is judged after the
/// handshake ([`Authenticator::certificate_user`]). The handshake's signatures, which prove the
/// client holds the certificate's key, are still checked here.
#[derive(Debug)]
struct AnyClientCert {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Who a request may come from.
pub(super) struct Authenticator {
    /// SHA-256 of each token: compared digest to digest, so the time a comparison takes says
    /// nothing of a token.
    tokens: Vec<[u8; 32]>,
    client_certs: Option<Arc<dyn ClientCertVerifier>>,
}

/// The user a connection's client certificate authenticates, set on each of its requests.
#[derive(Debug, Clone)]
pub(super) struct PeerUser(pub Option<String>);

impl Authenticator {
    /// The user (CN) of a client certificate chain the client CA issued, if it did.
    pub fn certificate_user(&self, chain: Option<&[CertificateDer<'static>]>) -> Option<String> {
        let verifier = self.client_certs.as_ref()?;
        let (end, intermediates) = chain?.split_first()?;
        verifier
            .verify_client_cert(end, intermediates, UnixTime::now())
            .ok()?;
        let (_, cert) = x509_parser::parse_x509_certificate(end).ok()?;
        // As kube-apiserver's CommonNameUserConversion: no CN, no user.
        let user = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())?;
        (!user.is_empty()).then(|| user.to_string())
    }

    /// Whether `Authorization` carries one of the tokens, read as kube-apiserver's bearer token
    /// authenticator reads it: `Bearer` in any case, one space, the token up to the next space.
    fn token_matches(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization.and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let mut parts = value.splitn(3, ' ');
        let (Some(scheme), Some(token)) = (parts.next(), parts.next()) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return false;
        }
        let d = digest(token);
        self.tokens.contains(&d)
    }
}

/// Answers 401 unless the request's connection presented a client certificate of the client
/// CA or the request a valid bearer token.
pub(super) async fn authenticate(
    State(auth): State<Arc<Authenticator>>,
    req: Request,
    next: Next,
) -> Response {
    let by_certificate = req
        .extensions()
        .get::<PeerUser>()
        .is_some_and(|u| u.0.is_some());
    if by_certificate || auth.token_matches(req.headers().get(header::AUTHORIZATION)) {
        return next.run(req).await;
    }
    let unread_body = !hyper::body::Body::is_end_stream(req.body());
    let mut resp = unauthorized();
    if unread_body {
        // The body is never read: the connection cannot carry another request after it.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// kube-apiserver's answer to a request it cannot authenticate (`NewUnauthorized("Unauthorized")`).
pub fn unauthorized() -> Response {
    super::api::status(401, "Unauthorized", "Unauthorized", None)
}
