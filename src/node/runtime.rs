//! Where the node's container runtimes listen.

use std::borrow::Cow;
use std::path::PathBuf;

use super::rootfs::{FsError, RootFs, SocketHandle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A CRI runtime service (gRPC), as the kubelet uses.
    Cri,
    /// The Docker Engine API.
    Docker,
}

/// An endpoint: its name and socket path on the node.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: Cow<'static, str>,
    pub kind: Kind,
    pub path: Cow<'static, str>,
}

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        name: Cow::Borrowed("containerd"),
        kind: Kind::Cri,
        path: Cow::Borrowed("/run/containerd/containerd.sock"),
    },
    Endpoint {
        name: Cow::Borrowed("CRI-O"),
        kind: Kind::Cri,
        path: Cow::Borrowed("/var/run/crio/crio.sock"),
    },
    Endpoint {
        name: Cow::Borrowed("cri-dockerd"),
        kind: Kind::Cri,
        path: Cow::Borrowed("/run/cri-dockerd.sock"),
    },
    Endpoint {
        name: Cow::Borrowed("Docker"),
        kind: Kind::Docker,
        path: Cow::Borrowed("/var/run/docker.sock"),
    },
];

/// An endpoint as found on the node: its socket, or why it is not usable.
#[derive(Debug)]
pub struct Found {
    pub endpoint: Endpoint,
    pub socket: Result<SocketHandle, FsError>,
}

impl Found {
    pub fn path(&self) -> PathBuf {
        PathBuf::from(self.endpoint.path.as_ref())
    }
}

/// Looks for every well-known endpoint of `kind` under the root.
pub fn discover(root: &RootFs, kind: Kind) -> Vec<Found> {
    discover_with(root, kind, None)
}

/// Like [`discover`], with the CRI endpoint the kubelet is configured with
/// (`--container-runtime-endpoint` or `containerRuntimeEndpoint`: `unix:///path` or, as older
/// kubelets accept, a bare path) first, then the well-known ones it is not. An endpoint that is
/// not a Unix socket (`tcp://`, `npipe://`) is listed with why it cannot be used.
pub fn discover_with(root: &RootFs, kind: Kind, kubelet: Option<&str>) -> Vec<Found> {
    let mut out = Vec::new();
    let configured = kubelet.filter(|e| kind == Kind::Cri && !e.is_empty());
    let mut configured_path = None;
    if let Some(e) = configured {
        let path = e.strip_prefix("unix://").unwrap_or(e);
        let name = ENDPOINTS
            .iter()
            .find(|k| k.path == path)
            .map_or(Cow::Borrowed("the kubelet's runtime"), |k| k.name.clone());
        let socket = if path.starts_with('/') {
            configured_path = Some(path.to_string());
            root.socket(path)
        } else {
            Err(FsError {
                path: PathBuf::from(e),
                kind: super::rootfs::FsErrorKind::Other(
                    "not a unix:// endpoint, which this harness can reach".into(),
                ),
            })
        };
        out.push(Found {
            endpoint: Endpoint {
                name,
                kind,
                path: Cow::Owned(path.to_string()),
            },
            socket,
        });
    }
    out.extend(
        ENDPOINTS
            .iter()
            .filter(|e| e.kind == kind && configured_path.as_deref() != Some(e.path.as_ref()))
            .map(|e| Found {
                endpoint: e.clone(),
                socket: root.socket(e.path.as_ref()),
            }),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubelets_endpoint_comes_first() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("run/k3s/containerd")).unwrap();
        let _listener =
            std::os::unix::net::UnixListener::bind(r.join("run/k3s/containerd/containerd.sock"))
                .unwrap();
        let root = RootFs::open(r).unwrap();
        let found = discover_with(
            &root,
            Kind::Cri,
            Some("unix:///run/k3s/containerd/containerd.sock"),
        );
        assert_eq!(found.len(), 4);
        assert_eq!(found[0].endpoint.name, "the kubelet's runtime");
        assert!(found[0].socket.is_ok());
        // A well-known path is named as such and not listed twice.
        let found = discover_with(&root, Kind::Cri, Some("/var/run/crio/crio.sock"));
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].endpoint.name, "CRI-O");
        let found = discover_with(&root, Kind::Cri, Some("tcp://10.0.0.1:1234"));
        assert!(
            found[0]
                .socket
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("unix://")
        );
        assert_eq!(discover_with(&root, Kind::Docker, Some("/x.sock")).len(), 1);
    }

    #[test]
    fn finds_sockets_and_names_what_is_not_one() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("run/containerd")).unwrap();
        std::fs::create_dir_all(r.join("var/run/crio")).unwrap();
        let _listener =
            std::os::unix::net::UnixListener::bind(r.join("run/containerd/containerd.sock"))
                .unwrap();
        std::fs::write(r.join("var/run/crio/crio.sock"), "").unwrap();
        let root = RootFs::open(r).unwrap();
        let found = discover(&root, Kind::Cri);
        assert_eq!(found.len(), 3);
        let sock = found[0].socket.as_ref().unwrap();
        assert_eq!(
            sock.host_path(),
            std::path::Path::new("/run/containerd/containerd.sock")
        );
        // The link through the harness's own fd table reaches the socket.
        std::os::unix::net::UnixStream::connect(sock.connect_path()).unwrap();
        assert!(
            found[1]
                .socket
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("not a socket")
        );
        assert!(found[2].socket.as_ref().unwrap_err().is_not_found());
    }
}
