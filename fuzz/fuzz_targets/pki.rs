//! Certificates and keys: PEM or DER, chains, private keys in PKCS#1, SEC1 and PKCS#8, public
//! keys, and whether a key belongs to a certificate. Two files per input: what a certificate
//! path holds, and what a key path holds.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use node_conformance::node::pki;

fuzz_target!(|data: &[u8]| {
    let [cert_file, key_file] = common::parts::<2>(data);
    let cert = pki::parse_cert(cert_file);
    let _ = pki::parse_key(key_file);
    let _ = pki::parse_public_key(cert_file);
    let _ = pki::parse_public_key(key_file);
    let _ = pki::check_key_pair(cert_file, key_file);
    // kubeadm's kubelet-client-current.pem holds both in one file.
    let _ = pki::check_key_pair(data, data);
    if let Ok(cert) = &cert {
        let _ = cert.verify_to(cert);
        if let Ok(ca) = pki::parse_cert(key_file) {
            let _ = cert.verify_to(&ca);
            let _ = ca.verify_to(cert);
        }
    }
});
