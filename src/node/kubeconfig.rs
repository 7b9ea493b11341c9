//! Kubeconfigs: the current context's server, CA and client credentials, with files named in
//! them read inside the root.

use std::path::Path;

use base64::Engine;
use serde_json::Value;

use super::rootfs::{FileKind, RootFs};

/// A credential or CA: its PEM bytes and where they came from (`embedded`, or the file).
#[derive(Debug, Clone)]
pub struct Pem {
    pub bytes: Vec<u8>,
    pub from: String,
}

#[derive(Debug, Clone)]
pub struct Kubeconfig {
    pub server: String,
    /// Each absent when the kubeconfig names none; an error when it names one that cannot be
    /// read, so one missing file does not hide the rest.
    pub ca: Option<Result<Pem, String>>,
    pub client_cert: Option<Result<Pem, String>>,
    pub client_key: Option<Result<Pem, String>>,
    pub user: String,
}

/// Reads a kubeconfig; `Ok(None)` when the file does not exist.
pub fn read(root: &RootFs, path: &Path) -> Result<Option<Kubeconfig>, String> {
    let text = match root.read_to_string(path, FileKind::Config) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let at = |e: String| format!("{}: {e}", path.display());
    let v: Value = serde_saphyr::from_str(&text).map_err(|e| {
        at(e.without_snippet()
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "))
    })?;
    let current = v
        .get("current-context")
        .and_then(Value::as_str)
        .ok_or_else(|| at("no current-context".into()))?;
    let find = |list: &str, name: &str| -> Option<Value> {
        v.get(list)?
            .as_array()?
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
            .cloned()
    };
    let context = find("contexts", current)
        .and_then(|c| c.get("context").cloned())
        .ok_or_else(|| at(format!("no context {current:?}")))?;
    let user_name = context
        .get("user")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let cluster_name = context
        .get("cluster")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let cluster = find("clusters", cluster_name)
        .and_then(|c| c.get("cluster").cloned())
        .ok_or_else(|| at(format!("no cluster {cluster_name:?}")))?;
    let user = find("users", &user_name)
        .and_then(|u| u.get("user").cloned())
        .unwrap_or(Value::Null);
    let server = cluster
        .get("server")
        .and_then(Value::as_str)
        .ok_or_else(|| at("the cluster names no server".into()))?
        .to_string();
    let material = |obj: &Value, data: &str, file: &str| -> Option<Result<Pem, String>> {
        if let Some(d) = obj.get(data).and_then(Value::as_str) {
            return Some(
                base64::engine::general_purpose::STANDARD
                    .decode(d.trim())
                    .map(|bytes| Pem {
                        bytes,
                        from: "embedded".into(),
                    })
                    .map_err(|e| at(format!("{data} is not base64: {e}"))),
            );
        }
        let f = obj.get(file).and_then(Value::as_str)?;
        Some(
            root.read(f, FileKind::Pki)
                .map(|bytes| Pem {
                    bytes,
                    from: f.to_string(),
                })
                .map_err(|e| at(format!("{file}: {e}"))),
        )
    };
    Ok(Some(Kubeconfig {
        ca: material(
            &cluster,
            "certificate-authority-data",
            "certificate-authority",
        ),
        client_cert: material(&user, "client-certificate-data", "client-certificate"),
        client_key: material(&user, "client-key-data", "client-key"),
        server,
        user: user_name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_and_file_material() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("pki")).unwrap();
        std::fs::write(t.path().join("pki/client.pem"), "CERT").unwrap();
        let conf = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443', certificate-authority-data: Q0E=}\n\
                    contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n\
                    users:\n- name: u\n  user: {client-certificate: /pki/client.pem, client-key: /pki/client.pem}\n";
        std::fs::write(t.path().join("k.conf"), conf).unwrap();
        let root = RootFs::open(t.path()).unwrap();
        let k = read(&root, Path::new("/k.conf")).unwrap().unwrap();
        assert_eq!(k.server, "https://127.0.0.1:6443");
        assert_eq!(k.ca.unwrap().unwrap().bytes, b"CA");
        let cert = k.client_cert.unwrap().unwrap();
        assert_eq!(
            (cert.bytes.as_slice(), cert.from.as_str()),
            (&b"CERT"[..], "/pki/client.pem")
        );
        assert!(read(&root, Path::new("/none")).unwrap().is_none());
        std::fs::write(t.path().join("bad.conf"), "kind: Config\n").unwrap();
        assert!(
            read(&root, Path::new("/bad.conf"))
                .unwrap_err()
                .contains("current-context")
        );
    }
}
