//! Kubeconfigs: the current context's server, CA and client credentials, with files named in
//! them read inside the root.

use std::path::{Component, Path, PathBuf};

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
    /// The user's bearer token: `token`, else the trimmed content of `tokenFile`.
    pub token: Option<Result<String, String>>,
    /// How the user authenticates that the harness does not: an `exec` credential plugin
    /// (`exec plugin "aws"`) or an `auth-provider`. Such a user is not impersonated.
    pub unsupported_auth: Option<String>,
    pub user: String,
    /// The cluster's `insecure-skip-tls-verify`: the server's certificate is not verified, as
    /// client-go does when it is set.
    pub insecure: bool,
}

/// A path named in a kubeconfig, as client-go resolves it (clientcmd.ResolvePaths): a
/// relative one is joined to the kubeconfig's directory and cleaned lexically
/// (`filepath.Join`). The result is a host path, read inside the root.
pub fn resolve(kubeconfig: &Path, named: &str) -> PathBuf {
    let named = Path::new(named);
    if named.is_absolute() {
        return named.to_path_buf();
    }
    let joined = kubeconfig.parent().unwrap_or(Path::new("/")).join(named);
    let mut clean = PathBuf::new();
    for c in joined.components() {
        match c {
            // As Go's filepath.Clean: `..` at the root stays at the root.
            Component::ParentDir => {
                if clean.parent().is_some() {
                    clean.pop();
                } else if !clean.has_root() {
                    clean.push("..");
                }
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    clean
}

/// Reads a kubeconfig; `Ok(None)` when the file does not exist.
pub fn read(root: &RootFs, path: &Path) -> Result<Option<Kubeconfig>, String> {
    let text = match root.read_to_string(path, FileKind::Config) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let at = |e: String| format!("{}: {e}", path.display());
    let v = super::yaml::config_value(&text).map_err(at)?;
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
        let f = obj
            .get(file)
            .and_then(Value::as_str)
            .filter(|f| !f.is_empty())?;
        let f = resolve(path, f);
        Some(
            root.read_shared(&f, FileKind::Pki)
                .map(|bytes| Pem {
                    bytes: bytes.to_vec(),
                    from: f.display().to_string(),
                })
                .map_err(|e| at(format!("{file}: {e}"))),
        )
    };
    // client-go: a token wins over a token file, which is read whole and trimmed.
    let token = match user.get("token").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => Some(Ok(t.to_string())),
        _ => user
            .get("tokenFile")
            .and_then(Value::as_str)
            .filter(|f| !f.is_empty())
            .map(|f| {
                let f = resolve(path, f);
                root.read_to_string(&f, FileKind::Pki)
                    .map(|t| t.trim().to_string())
                    .map_err(|e| at(format!("tokenFile: {e}")))
            }),
    };
    let unsupported_auth = if let Some(exec) = user.get("exec").filter(|e| !e.is_null()) {
        let command = exec.get("command").and_then(Value::as_str).unwrap_or("");
        Some(format!("an exec credential plugin ({command:?})"))
    } else {
        user.get("auth-provider").filter(|a| !a.is_null()).map(|a| {
            let name = a.get("name").and_then(Value::as_str).unwrap_or("");
            format!("an auth-provider ({name:?})")
        })
    };
    Ok(Some(Kubeconfig {
        ca: material(
            &cluster,
            "certificate-authority-data",
            "certificate-authority",
        ),
        client_cert: material(&user, "client-certificate-data", "client-certificate"),
        client_key: material(&user, "client-key-data", "client-key"),
        token,
        unsupported_auth,
        server,
        user: user_name,
        insecure: cluster
            .get("insecure-skip-tls-verify")
            .and_then(Value::as_bool)
            .unwrap_or(false),
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

    #[test]
    fn relative_paths_resolve_against_the_kubeconfig_directory() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc/kubernetes/pki")).unwrap();
        std::fs::write(t.path().join("etc/kubernetes/pki/client.crt"), "CERT").unwrap();
        std::fs::write(t.path().join("etc/kubernetes/pki/client.key"), "KEY").unwrap();
        std::fs::write(t.path().join("etc/ca.crt"), "CA").unwrap();
        std::fs::write(t.path().join("etc/kubernetes/token"), "  s3cret\n").unwrap();
        let conf = "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:6443', certificate-authority: ../ca.crt}\n\
                    contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n\
                    users:\n- name: u\n  user: {client-certificate: pki/client.crt, client-key: ./pki/client.key, tokenFile: token}\n";
        std::fs::write(t.path().join("etc/kubernetes/kubelet.conf"), conf).unwrap();
        let root = RootFs::open(t.path()).unwrap();
        let k = read(&root, Path::new("/etc/kubernetes/kubelet.conf"))
            .unwrap()
            .unwrap();
        let cert = k.client_cert.unwrap().unwrap();
        assert_eq!(cert.bytes, b"CERT");
        assert_eq!(cert.from, "/etc/kubernetes/pki/client.crt");
        assert_eq!(
            k.client_key.unwrap().unwrap().from,
            "/etc/kubernetes/pki/client.key"
        );
        assert_eq!(k.ca.unwrap().unwrap().from, "/etc/ca.crt");
        assert_eq!(k.token.unwrap().unwrap(), "s3cret");
        assert!(k.unsupported_auth.is_none());
        // `..` past `/` stays at `/`, as filepath.Join cleans it.
        assert_eq!(
            resolve(Path::new("/k.conf"), "../../etc/ca.crt"),
            Path::new("/etc/ca.crt")
        );
        assert_eq!(
            resolve(Path::new("/etc/kubernetes/k.conf"), "a/./../b"),
            Path::new("/etc/kubernetes/b")
        );
    }

    #[test]
    fn a_token_wins_over_a_token_file_and_exec_plugins_are_named() {
        let t = tempfile::tempdir().unwrap();
        let conf = |user: &str| {
            format!(
                "clusters:\n- name: c\n  cluster: {{server: 'https://h:6443'}}\n\
                 contexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n\
                 users:\n- name: u\n  user: {user}\n"
            )
        };
        std::fs::write(
            t.path().join("a.conf"),
            conf("{token: abc, tokenFile: /missing}"),
        )
        .unwrap();
        std::fs::write(
            t.path().join("b.conf"),
            conf("{exec: {apiVersion: client.authentication.k8s.io/v1beta1, command: aws}}"),
        )
        .unwrap();
        std::fs::write(t.path().join("c.conf"), conf("{tokenFile: /missing}")).unwrap();
        let root = RootFs::open(t.path()).unwrap();
        let a = read(&root, Path::new("/a.conf")).unwrap().unwrap();
        assert_eq!(a.token.unwrap().unwrap(), "abc");
        let b = read(&root, Path::new("/b.conf")).unwrap().unwrap();
        assert_eq!(
            b.unsupported_auth.as_deref(),
            Some("an exec credential plugin (\"aws\")")
        );
        let c = read(&root, Path::new("/c.conf")).unwrap().unwrap();
        let e = c.token.unwrap().unwrap_err();
        assert!(e.contains("tokenFile: /missing: no such file"), "{e}");
    }
}
