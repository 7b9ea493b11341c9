//! Where the node's container runtimes listen.

use std::path::PathBuf;

use super::rootfs::{FsError, RootFs, SocketHandle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A CRI runtime service (gRPC), as the kubelet uses.
    Cri,
    /// The Docker Engine API.
    Docker,
}

/// A well-known endpoint: its name and socket path on the node.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub name: &'static str,
    pub kind: Kind,
    pub path: &'static str,
}

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        name: "containerd",
        kind: Kind::Cri,
        path: "/run/containerd/containerd.sock",
    },
    Endpoint {
        name: "CRI-O",
        kind: Kind::Cri,
        path: "/var/run/crio/crio.sock",
    },
    Endpoint {
        name: "cri-dockerd",
        kind: Kind::Cri,
        path: "/run/cri-dockerd.sock",
    },
    Endpoint {
        name: "Docker",
        kind: Kind::Docker,
        path: "/var/run/docker.sock",
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
        PathBuf::from(self.endpoint.path)
    }
}

/// Looks for every well-known endpoint of `kind` under the root.
pub fn discover(root: &RootFs, kind: Kind) -> Vec<Found> {
    ENDPOINTS
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| Found {
            endpoint: *e,
            socket: root.socket(e.path),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
