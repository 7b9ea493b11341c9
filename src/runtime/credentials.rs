//! Credentials made for a run: a certificate authority of its own, the certificates it issues
//! (the control plane's and the kubelet's serving certificates, client certificates for the
//! kubelet and for the harness), and bearer tokens. Nothing here is read from the node; what a
//! kubelet needs of it is written into root-only files by the caller.
//!
//! Keys are ECDSA P-256 (kubeadm's default is RSA 2048; kubelets and client-go read both, and a
//! P-256 key is made in microseconds where an RSA one takes tens of milliseconds). Certificates
//! follow kubeadm's profiles (pkiutil.NewCertificateAuthority, NewCertAndKey): the CA may sign
//! certificates, a server certificate has `serverAuth` and its names, a client certificate has
//! `clientAuth` and the user and groups Kubernetes reads from CN and O.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use ring::rand::SecureRandom;

/// A certificate and its private key, PEM (PKCS #8 for the key) and DER.
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_pem: String,
    /// PKCS #8.
    pub key_der: Vec<u8>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").finish_non_exhaustive()
    }
}

/// What a certificate is for.
#[derive(Debug, Clone)]
pub enum Profile {
    /// A TLS server answering at these names and addresses.
    Server { dns: Vec<String>, ips: Vec<IpAddr> },
    /// A TLS client: the user (CN) and groups (O) Kubernetes authenticates it as.
    Client { user: String, groups: Vec<String> },
}

/// A certificate authority: its certificate, and its key to sign with.
pub struct Authority {
    cert: Issued,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

/// How long what a run issues is valid, in days from yesterday (a node's clock may lag).
pub const RUN_VALIDITY_DAYS: i64 = 30;
/// How long the credentials `kubelet-config` makes for an attached kubelet are valid.
pub const ATTACH_VALIDITY_DAYS: i64 = 365;

impl Authority {
    /// A new CA named `name` (its CN), valid for `days`.
    pub fn generate(name: &str, days: i64) -> Result<Self, String> {
        let key = new_key()?;
        let mut params = base_params(days)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).map_err(|e| failed("a CA", &e))?;
        let issued = Issued {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        };
        Ok(Self {
            cert: issued,
            issuer: Issuer::new(params, key),
        })
    }

    /// A CA from its certificate and key (PEM, as [`Authority::generate`] made them).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, String> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| format!("the CA key: {e}"))?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| format!("the CA certificate: {e}"))?;
        let der = pem_der(cert_pem, "CERTIFICATE")
            .ok_or_else(|| "the CA certificate: no CERTIFICATE block".to_string())?;
        let key_der = issuer.key().serialize_der();
        Ok(Self {
            cert: Issued {
                cert_pem: cert_pem.to_string(),
                cert_der: der,
                key_pem: key_pem.to_string(),
                key_der,
            },
            issuer,
        })
    }

    /// The CA's own certificate and key.
    pub fn cert(&self) -> &Issued {
        &self.cert
    }

    /// A new key and a certificate for it, signed by this CA, valid for `days`.
    pub fn issue(&self, profile: &Profile, days: i64) -> Result<Issued, String> {
        let key = new_key()?;
        let mut params = base_params(days)?;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        match profile {
            Profile::Server { dns, ips } => {
                let first = dns.first().map_or_else(
                    || ips.first().map(ToString::to_string).unwrap_or_default(),
                    Clone::clone,
                );
                params.distinguished_name.push(DnType::CommonName, first);
                for name in dns {
                    let name = name
                        .clone()
                        .try_into()
                        .map_err(|e| format!("the name {name:?}: {e}"))?;
                    params.subject_alt_names.push(SanType::DnsName(name));
                }
                params
                    .subject_alt_names
                    .extend(ips.iter().copied().map(SanType::IpAddress));
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            }
            Profile::Client { user, groups } => {
                for group in groups {
                    params
                        .distinguished_name
                        .push(DnType::OrganizationName, group.as_str());
                }
                params
                    .distinguished_name
                    .push(DnType::CommonName, user.as_str());
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
        }
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| failed("a certificate", &e))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        })
    }
}

fn failed(what: &str, e: &rcgen::Error) -> String {
    format!("cannot make {what}: {e}")
}

fn new_key() -> Result<KeyPair, String> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| failed("a key", &e))
}

/// Validity from yesterday to `days` from now, and a random serial number (RFC 5280: positive,
/// at most 20 octets).
fn base_params(days: i64) -> Result<CertificateParams, String> {
    let mut params = CertificateParams::default();
    let ymd = |d: chrono::DateTime<chrono::Utc>| {
        use chrono::Datelike;
        rcgen::date_time_ymd(
            d.year(),
            u8::try_from(d.month()).unwrap_or(1),
            u8::try_from(d.day()).unwrap_or(1),
        )
    };
    let now = chrono::Utc::now();
    params.not_before = ymd(now - chrono::Duration::days(1));
    params.not_after = ymd(now + chrono::Duration::days(days));
    let mut serial = [0u8; 16];
    random(&mut serial)?;
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(params)
}

fn random(buf: &mut [u8]) -> Result<(), String> {
    ring::rand::SystemRandom::new()
        .fill(buf)
        .map_err(|_| "the system's random number generator failed".to_string())
}

/// A bearer token: 32 random bytes, hex (64 characters, as kubeadm's bootstrap tokens are
/// lowercase hex).
pub fn token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    random(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The DER of the first PEM block labelled `label`.
pub fn pem_der(pem: &str, label: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let body: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// The credentials of a run: its CA and what it issued, made when the control plane starts.
#[derive(Debug)]
pub struct RunCredentials {
    pub ca: Authority,
    /// The control plane's serving certificate (127.0.0.1, ::1, localhost).
    pub server: Issued,
    /// The bearer token of the harness's own client (and of kubectl with `control-plane`).
    pub admin_token: String,
    /// The client certificate the control plane (and the harness) presents to kubelets: user
    /// `node-conformance`, group `system:masters`.
    pub kubelet_client: Issued,
    /// Whether kubelets serve certificates of this CA: a kubelet the harness starts does; an
    /// attached one serves its own, which is taken as kube-apiserver takes it without a CA for
    /// kubelets.
    pub kubelets_serve_ours: bool,
}

impl RunCredentials {
    /// A new CA and the control plane's serving certificate (for loopback and `ips`), or those
    /// of `ca` when given (an attached kubelet trusts the CA `kubelet-config` made).
    pub fn new(ca: Option<Authority>, ips: &[IpAddr]) -> Result<Self, String> {
        let kubelets_serve_ours = ca.is_none();
        let ca = match ca {
            Some(ca) => ca,
            None => Authority::generate("node-conformance-ca", RUN_VALIDITY_DAYS)?,
        };
        let kubelet_client = ca.issue(
            &Profile::Client {
                user: "node-conformance".into(),
                groups: vec!["system:masters".into()],
            },
            RUN_VALIDITY_DAYS,
        )?;
        let server = ca.issue(
            &Profile::Server {
                dns: vec!["localhost".into()],
                ips: [
                    IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                    IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                ]
                .into_iter()
                .chain(ips.iter().copied())
                .collect(),
            },
            RUN_VALIDITY_DAYS,
        )?;
        Ok(Self {
            ca,
            server,
            admin_token: token()?,
            kubelet_client,
            kubelets_serve_ours,
        })
    }

    /// What the control plane serves with: the serving certificate, client certificates of
    /// the CA, and the admin token.
    pub fn security(&self) -> crate::controlplane::Security {
        crate::controlplane::Security {
            cert_chain: vec![self.server.cert_der.clone()],
            key: self.server.key_der.clone(),
            client_ca: vec![self.ca.cert().cert_der.clone()],
            tokens: vec![self.admin_token.clone()],
            kubelet_client: Some(crate::controlplane::KubeletClient {
                cert: self.kubelet_client.cert_der.clone(),
                key: self.kubelet_client.key_der.clone(),
                ca: self
                    .kubelets_serve_ours
                    .then(|| self.ca.cert().cert_der.clone()),
            }),
        }
    }
}

/// Who a kubeconfig authenticates as.
#[derive(Debug, Clone, Copy)]
pub enum User<'a> {
    Token(&'a str),
    Certificate { cert_pem: &'a str, key_pem: &'a str },
}

/// A kubeconfig (as JSON, which every kubeconfig reader takes) for `server`, trusting only
/// `ca_pem`, with the credentials inline: one file holds everything, so it can be kept where
/// only its user reads it.
pub fn kubeconfig(server: &str, ca_pem: &str, user: &User<'_>) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let user = match user {
        User::Token(t) => serde_json::json!({"token": t}),
        User::Certificate { cert_pem, key_pem } => serde_json::json!({
            "client-certificate-data": b64(cert_pem),
            "client-key-data": b64(key_pem),
        }),
    };
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "node-conformance", "cluster": {
            "server": server,
            "certificate-authority-data": b64(ca_pem),
        }}],
        "users": [{"name": "node-conformance", "user": user}],
        "contexts": [{"name": "node-conformance", "context": {
            "cluster": "node-conformance", "user": "node-conformance"}}],
        "current-context": "node-conformance",
    });
    let mut text = serde_json::to_string_pretty(&config).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    #[test]
    fn what_a_ca_issues_verifies_against_it_and_says_who_it_is() {
        let ca = Authority::generate("test-ca", 1).unwrap();
        let client = ca
            .issue(
                &Profile::Client {
                    user: "system:node:n1".into(),
                    groups: vec!["system:nodes".into()],
                },
                1,
            )
            .unwrap();
        let (_, c) = X509Certificate::from_der(&client.cert_der).unwrap();
        let (_, issuer) = X509Certificate::from_der(&ca.cert().cert_der).unwrap();
        c.verify_signature(Some(issuer.public_key())).unwrap();
        let cn: Vec<_> = c.subject().iter_common_name().collect();
        assert_eq!(cn[0].as_str().unwrap(), "system:node:n1");
        let o: Vec<_> = c.subject().iter_organization().collect();
        assert_eq!(o[0].as_str().unwrap(), "system:nodes");
        assert!(issuer.is_ca());
        assert!(c.validity().is_valid());

        // The same CA read back from its PEM issues certificates that verify against it.
        let again = Authority::from_pem(&ca.cert().cert_pem, &ca.cert().key_pem).unwrap();
        let server = again
            .issue(
                &Profile::Server {
                    dns: vec!["localhost".into()],
                    ips: vec!["127.0.0.1".parse().unwrap()],
                },
                1,
            )
            .unwrap();
        let (_, s) = X509Certificate::from_der(&server.cert_der).unwrap();
        s.verify_signature(Some(issuer.public_key())).unwrap();
        let sans = s.subject_alternative_name().unwrap().unwrap();
        assert_eq!(sans.value.general_names.len(), 2);
    }

    #[test]
    fn tokens_are_new_each_time() {
        let (a, b) = (token().unwrap(), token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn pem_blocks_are_found_by_label() {
        let ca = Authority::generate("x", 1).unwrap();
        assert_eq!(
            pem_der(&ca.cert().cert_pem, "CERTIFICATE").unwrap(),
            ca.cert().cert_der
        );
        assert_eq!(pem_der("nothing", "CERTIFICATE"), None);
    }
}
