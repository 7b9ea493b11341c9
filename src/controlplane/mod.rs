//! The local control plane: an in-memory Kubernetes API server for the kubelet tests. Objects
//! live in the store as JSON, under one resourceVersion counter; selectors filter lists and
//! watches.

pub mod api;
pub mod client;
pub mod defaults;
pub mod delete;
pub mod gotypes;
pub mod invalid;
pub mod namespaces;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod quantity;
pub mod query;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod server;
pub mod store;
pub mod table;
pub mod validation;
pub mod watch;

pub use server::Limits;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// A control plane serving on a tokio runtime; stopped when dropped or by `stop`.
pub struct Running {
    pub addr: SocketAddr,
    pub store: Arc<store::Store>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// The base URL clients use.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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
pub async fn start(ip: IpAddr, port: u16) -> Result<Running, String> {
    start_with(ip, port, Limits::default()).await
}

/// `start` with other bounds on what clients can hold (port 0 picks a free one).
pub async fn start_with(ip: IpAddr, port: u16, limits: Limits) -> Result<Running, String> {
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
    let app = api::router(Arc::clone(&store));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(listener, app, limits, stopped));
    Ok(Running {
        addr,
        store,
        stop: Some(stop),
        task: Some(task),
    })
}

/// Serves the API until SIGINT or SIGTERM. `bind` defaults to 127.0.0.1: the API has no
/// authentication, and with --net=host any other address would open it to the network.
pub fn serve(port: u16, bind: Option<IpAddr>) -> Result<(), String> {
    let ip = bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    if !ip.is_loopback() {
        eprintln!(
            "node-conformance: warning: serving the Kubernetes API on {ip}:{port} WITHOUT AUTHENTICATION: anyone who can reach it controls this node's pods"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async move {
        let running = start(ip, port).await?;
        println!("serving the Kubernetes API on {} (no authentication)", running.url());
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        running.stop().await
    })
}

/// What a node needs to point its kubelet at the local control plane: a kubeconfig, and the
/// KubeletConfiguration settings the API requires.
pub fn kubelet_config(port: u16, static_pod_path: &std::path::Path) -> String {
    format!(
        "# A kubeconfig for the kubelet (--kubeconfig): the local control plane, no credentials.\n\
         apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: node-conformance\n  cluster:\n    server: http://127.0.0.1:{port}\n\
         contexts:\n\
         - name: node-conformance\n  context:\n    cluster: node-conformance\n    user: kubelet\n\
         current-context: node-conformance\n\
         users:\n\
         - name: kubelet\n  user: {{}}\n\
         ---\n\
         # Set in the kubelet's KubeletConfiguration (--config), then restart the kubelet.\n\
         apiVersion: kubelet.config.k8s.io/v1beta1\n\
         kind: KubeletConfiguration\n\
         staticPodPath: {}\n",
        static_pod_path.display()
    )
}
