//! Accepting and serving HTTP/1.1 connections, with bounds on what one client can hold: how
//! long a request's header and body may take to arrive, how long a connection may sit idle, how
//! many connections are served at once, and how long stopping waits.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use super::api::{self, MAX_BODY};
use super::auth::{self, Secure};

/// Bounds on what clients can hold of the control plane. The defaults are far above what a
/// kubelet (a handful of connections, a request every few seconds) and kubectl need.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a request's header may take to arrive, counted from its first byte, or from the
    /// accept for a connection's first request. Default 10 s; past it the connection is closed
    /// without an answer.
    pub header_read: Duration,
    /// How long a request's body may take to arrive once its header has. Default 30 s; past it
    /// the answer is a 408 Status and the connection is closed.
    pub body_read: Duration,
    /// How long a connection may wait for its next request. Default 90 s, kube-apiserver's idle
    /// timeout; a connection still answering (a watch streaming) is not waiting.
    pub idle: Duration,
    /// Connections served at once. Default 256; beyond it new connections wait in the listen
    /// backlog until one closes.
    pub max_connections: usize,
    /// How long stopping waits for the requests being answered. Default 2 s; then every
    /// connection is dropped, half-sent requests and all.
    pub shutdown_grace: Duration,
    /// Request body bytes held at once, all connections together (a body is counted from its
    /// `Content-Length`, or as `MAX_BODY` when chunked, until its request is answered). Default
    /// 16 MiB; a request that would pass it is answered 429 at once with `Retry-After: 1`, as
    /// kube-apiserver's max-in-flight filter answers (client-go retries it).
    pub body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(30),
            idle: Duration::from_secs(90),
            max_connections: 256,
            shutdown_grace: Duration::from_secs(2),
            body_bytes: 16 << 20,
        }
    }
}

/// Serves `app` on `listener` until `stop` fires or its sender is dropped, then stops accepting,
/// lets connections finish their requests for `limits.shutdown_grace`, and drops the rest.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    secure: Option<Secure>,
    mut stop: oneshot::Receiver<()>,
) {
    // Counted in KiB: a semaphore holds fewer permits than a large budget has bytes.
    let bodies = Arc::new(Semaphore::new(
        limits
            .body_bytes
            .div_ceil(1024)
            .clamp(1, Semaphore::MAX_PERMITS),
    ));
    let app = app.layer(axum::middleware::from_fn_with_state(
        (limits, bodies),
        bound_body,
    ));
    // Outermost: a request is authenticated before its body is bounded, read or counted, as
    // kube-apiserver's authentication filter runs before its max-in-flight one.
    let (app, tls) = match secure {
        Some(s) => (
            app.layer(axum::middleware::from_fn_with_state(
                Arc::clone(&s.authenticator),
                auth::authenticate,
            )),
            Some((tokio_rustls::TlsAcceptor::from(s.tls), s.authenticator)),
        ),
        None => (app, None),
    };
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let (stopping, stopped) = watch::channel(false);
    let mut connections = accept_until(listener, &slots, &mut stop, |stream, slot| {
        connection(
            stream,
            tls.clone(),
            app.clone(),
            limits,
            stopped.clone(),
            slot,
        )
    })
    .await;
    let _ = stopping.send(true);
    let _ = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.shutdown().await;
}

/// Accepts connections on `listener`, at most as many at once as `slots` has permits, and
/// serves each with `serve` as a task, until `stop` fires or its sender is dropped; the listener
/// is then closed and the connections still open returned, for the caller to drain or end.
pub(crate) async fn accept_until<F, Fut>(
    listener: TcpListener,
    slots: &Arc<Semaphore>,
    stop: &mut oneshot::Receiver<()>,
    mut serve: F,
) -> JoinSet<()>
where
    F: FnMut(TcpStream, OwnedSemaphorePermit) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut *stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = accept(&listener, slots) => match accepted {
                Ok((stream, slot)) => {
                    connections.spawn(serve(stream, slot));
                }
                // Out of file descriptors, or a connection reset before it was accepted: retrying
                // at once would spin on the same error.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
        }
    }
    drop(listener);
    connections
}

async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> io::Result<(TcpStream, OwnedSemaphorePermit)> {
    // The semaphore is never closed, so acquiring only waits.
    let slot = Arc::clone(slots)
        .acquire_owned()
        .await
        .map_err(io::Error::other)?;
    let (stream, _) = listener.accept().await?;
    // As Go's net package (kube-apiserver's) does: a TLS handshake's small writes would
    // otherwise wait on the client's delayed ACK, 40 ms each time.
    let _ = stream.set_nodelay(true);
    Ok((stream, slot))
}

/// One connection, served until the client closes it, it outstays `limits`, or the server stops.
/// The slot is held until then.
async fn connection(
    stream: TcpStream,
    tls: Option<(tokio_rustls::TlsAcceptor, Arc<auth::Authenticator>)>,
    app: Router,
    limits: Limits,
    stopped: watch::Receiver<bool>,
    slot: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let watched = Watched {
        stream,
        activity: Arc::clone(&activity),
    };
    let Some((acceptor, authenticator)) = tls else {
        return serve_connection(watched, None, activity, app, limits, stopped, slot).await;
    };
    // The handshake is part of the first request's header: it has the header's time.
    let Ok(Ok(stream)) = tokio::time::timeout(limits.header_read, acceptor.accept(watched)).await
    else {
        return;
    };
    let user =
        auth::PeerUser(authenticator.certificate_user(stream.get_ref().1.peer_certificates()));
    serve_connection(stream, Some(user), activity, app, limits, stopped, slot).await;
}

/// Serves HTTP/1.1 on an accepted (and, for a secure API, handshaken) connection; `user` is
/// set on each request of a secure one.
async fn serve_connection<S>(
    io: S,
    user: Option<auth::PeerUser>,
    activity: Arc<Activity>,
    app: Router,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let requests = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let busy = Busy::begin(&requests);
        let mut req = req.map(Body::new);
        if let Some(user) = &user {
            req.extensions_mut().insert(user.clone());
        }
        let answer = app.clone().oneshot(req);
        async move {
            answer.await.map(|resp| {
                resp.map(|body| {
                    Body::new(Tracked {
                        body,
                        busy: Some(busy),
                    })
                })
            })
        }
    });
    // hyper's own header_read_timeout also runs while a kept-alive connection waits for its next
    // request, so it would close idle connections at the header bound, racing a kubelet's
    // 10-second heartbeats; the header and idle bounds are kept here instead.
    // A connection's read buffer grows to hyper's default of about 400 KiB while a body
    // streams in faster than it is consumed: 256 connections would hold 100 MiB. 64 KiB holds
    // any header a kubelet or kubectl sends.
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(MAX_READ_BUFFER)
        .serve_connection(io, service)
        // pods/exec, pods/attach and websocket logs switch protocols; the connection is then
        // the relay's, and its future here ends.
        .with_upgrades();
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        let deadline = activity.deadline(&limits);
        tokio::select! {
            _ = conn.as_mut() => return,
            () = sleep_until(deadline) => {
                if activity.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    return;
                }
            }
            () = activity.changed.notified() => {}
            _ = stopped.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Where a connection is: waiting for a request (since when, and since when its header has
/// been arriving), or answering some.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Waiting {
        idle_since: Instant,
        head_since: Option<Instant>,
    },
    Answering(usize),
}

#[derive(Debug)]
struct Activity {
    phase: Mutex<Phase>,
    /// Woken on every change of phase, so the connection's deadline is recomputed.
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        let now = Instant::now();
        // A client connects to send a request: the first header is due from the accept on.
        Activity {
            phase: Mutex::new(Phase::Waiting {
                idle_since: now,
                head_since: Some(now),
            }),
            changed: Notify::new(),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Phase)) {
        f(&mut self.phase.lock().unwrap_or_else(PoisonError::into_inner));
        self.changed.notify_one();
    }

    /// When the connection outstays its bounds; none while a request is being answered.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        match *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            Phase::Waiting {
                idle_since,
                head_since,
            } => {
                let idle = idle_since + limits.idle;
                Some(head_since.map_or(idle, |h| idle.min(h + limits.header_read)))
            }
            Phase::Answering(_) => None,
        }
    }

    fn bytes_arrived(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        // Bytes read while answering are the body or a pipelined request; the latter's header
        // is then bounded by the idle timeout only.
        if let Phase::Waiting {
            head_since: head_since @ None,
            ..
        } = &mut *phase
        {
            *head_since = Some(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }
}

/// A request being answered, from its header until its response's last byte or its drop.
struct Busy(Arc<Activity>);

impl Busy {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.update(|phase| {
            *phase = match *phase {
                Phase::Answering(n) => Phase::Answering(n.saturating_add(1)),
                Phase::Waiting { .. } => Phase::Answering(1),
            }
        });
        Busy(Arc::clone(activity))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.update(|phase| {
            *phase = match *phase {
                Phase::Answering(n) if n > 1 => Phase::Answering(n - 1),
                _ => Phase::Waiting {
                    idle_since: Instant::now(),
                    head_since: None,
                },
            }
        });
    }
}

/// A response body that ends its request's `Busy` when its last frame is out.
struct Tracked {
    body: Body,
    busy: Option<Busy>,
}

impl HttpBody for Tracked {
    type Data = <Body as HttpBody>::Data;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) {
            self.busy = None;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A TCP stream that tells its connection's `Activity` when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        read
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// How much of a refused body is read and thrown away before the connection is closed.
const DRAIN_MAX: usize = 4 * MAX_BODY;

/// Reads a request's body before the API sees it: a `Content-Length` over `MAX_BODY` is a 413
/// before any of it is read, a longer chunked body a 413 at the limit, and a body not complete
/// within `limits.body_read` a 408. Each closes the connection. A body that would take the
/// bodies held at once past `limits.body_bytes` is a 429 before any of it is read.
async fn bound_body(
    State((limits, bodies)): State<(Limits, Arc<Semaphore>)>,
    req: Request,
    next: Next,
) -> Response {
    let max = u64::try_from(MAX_BODY).unwrap_or(u64::MAX);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let expects_continue = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if declared.is_some_and(|n| n > max) {
        // Reading the body would tell a client waiting on `Expect: 100-continue` to send it.
        if !expects_continue {
            drain(req.into_body(), limits.body_read);
        }
        return too_large();
    }
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let size = declared.map_or(MAX_BODY, |n| usize::try_from(n).unwrap_or(MAX_BODY));
    let kib = u32::try_from(size.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    // Held until the request is answered: the body lives as long as its handler runs.
    let Ok(_held) = bodies.try_acquire_many_owned(kib) else {
        if !expects_continue {
            drain(req.into_body(), limits.body_read);
        }
        return too_many_requests();
    };
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(limits.body_read, read_body(body)).await {
        Ok(Read::Whole(body)) => next.run(Request::from_parts(parts, Body::from(body))).await,
        Ok(Read::TooLarge(rest)) => {
            drain(rest, limits.body_read);
            too_large()
        }
        Ok(Read::Broken(e)) => closing(api::status(
            400,
            "BadRequest",
            &format!("the request body could not be read: {e}"),
            None,
        )),
        Err(_) => closing(api::status(
            408,
            "Timeout",
            &format!(
                "the request body did not arrive within {}s",
                limits.body_read.as_secs_f64()
            ),
            None,
        )),
    }
}

enum Read {
    Whole(Vec<u8>),
    /// Over `MAX_BODY`: the body with the part not yet read.
    TooLarge(Body),
    Broken(axum::Error),
}

async fn read_body(mut body: Body) -> Read {
    let mut whole = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    if whole.len().saturating_add(data.len()) > MAX_BODY {
                        return Read::TooLarge(body);
                    }
                    whole.extend_from_slice(data);
                }
            }
            Err(e) => return Read::Broken(e),
        }
    }
    Read::Whole(whole)
}

/// Reads and throws away the rest of a refused body, up to `DRAIN_MAX` bytes and for at most
/// `within`, so that a client that sends its whole body before reading the answer reads the
/// 413 rather than a connection reset by unread data.
fn drain(mut body: Body, within: Duration) {
    tokio::spawn(tokio::time::timeout(within, async move {
        let mut left = DRAIN_MAX;
        while let Some(Ok(frame)) = body.frame().await {
            left = left.saturating_sub(frame.data_ref().map_or(0, |d| d.len()));
            if left == 0 {
                break;
            }
        }
    }));
}

/// The most a connection buffers of what its client sent and the server has not read yet,
/// headers included (bytes).
const MAX_READ_BUFFER: usize = 64 << 10;

/// kube-apiserver's answer to a body over its limit.
fn too_large() -> Response {
    closing(api::status(
        413,
        "RequestEntityTooLarge",
        &format!("Request entity too large: limit is {MAX_BODY}"),
        None,
    ))
}

/// kube-apiserver's answer when its requests in flight are at their limit
/// (k8s.io/apiserver/pkg/server/filters/maxinflight.go, `tooManyRequests`): plain text, with
/// `Retry-After: 1`. The connection is closed, as the body is not read.
fn too_many_requests() -> Response {
    use axum::response::IntoResponse;
    let mut resp = (
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "Too many requests, please try again later.\n",
    )
        .into_response();
    // As Go's http.Error writes it.
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    closing(resp)
}

fn closing(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}
