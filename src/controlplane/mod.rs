//! The local control plane: an in-memory Kubernetes API server for the kubelet tests. Objects
//! live in the store as JSON, under one resourceVersion counter; selectors filter lists and
//! watches.

pub mod api;
pub mod auth;
pub mod client;
pub mod defaults;
pub mod delete;
pub mod gotypes;
pub mod invalid;
pub mod logs;
pub mod namespaces;
pub mod openapi;
pub mod paging;
pub mod patch;
pub mod protobuf;
pub mod quantity;
pub mod query;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod server;
pub mod services;
pub mod store;
pub mod streams;
pub mod table;
pub mod validation;
pub mod watch;

pub use auth::{Security, Serving};
pub use logs::KubeletClient;
pub use server::Limits;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// A control plane serving on a tokio runtime; stopped when dropped or by `stop`.
pub struct Running {
    pub addr: SocketAddr,
    pub store: Arc<store::Store>,
    secure: bool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// The base URL clients use: `https://` unless served [`Serving::Insecure`].
    pub fn url(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting connections and ends open watches; waits until the requests being
    /// answered are done, at most `Limits::shutdown_grace`, then drops every connection.
    /// Errors only if the serving task panicked.
    pub async fn stop(mut self) -> Result<(), String> {
        self.store.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| format!("the API server task failed: {e}")),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.store.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Binds and starts serving on the current tokio runtime, with the default `Limits`. A taken
/// port is an error naming it.
pub async fn start(ip: IpAddr, port: u16, serving: Serving) -> Result<Running, String> {
    start_with(ip, port, Limits::default(), serving).await
}

/// `start` with other bounds on what clients can hold (port 0 picks a free one). A secure API
/// whose certificate or key cannot be used is an error naming it.
pub async fn start_with(
    ip: IpAddr,
    port: u16,
    limits: Limits,
    serving: Serving,
) -> Result<Running, String> {
    let (secure, kubelets) = match &serving {
        Serving::Insecure => (None, None),
        Serving::Secure(security) => (
            Some(auth::Secure::new(security)?),
            security
                .kubelet_client
                .as_ref()
                .map(logs::Kubelets::new)
                .transpose()?,
        ),
    };
    let addr = SocketAddr::new(ip, port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                format!("port {port} on {ip} is already in use (--api-server-port)")
            }
            _ => format!("cannot listen on {addr}: {e}"),
        })?;
    let addr = listener.local_addr().unwrap_or(addr);
    let store = Arc::new(store::Store::new());
    let app = api::router_with(Arc::clone(&store), kubelets);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let is_secure = secure.is_some();
    let task = tokio::spawn(server::serve(listener, app, limits, secure, stopped));
    Ok(Running {
        addr,
        store,
        secure: is_secure,
        stop: Some(stop),
        task: Some(task),
    })
}

/// The default address: loopback. Authenticated or not, nothing but this node needs the API.
pub const DEFAULT_BIND: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
