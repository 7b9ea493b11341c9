//! A read-only image registry of the run (Docker Registry HTTP API v2, the subset a pull
//! uses), serving the test image ([`TestImage`]) on 127.0.0.1 for the image pull tests of
//! upstream's test/e2e/common/node/runtime.go ("when running a container with a new image"),
//! which upstream runs against registry.k8s.io and a private repository of gcr.io. The node's
//! runtime pulls from it over plain HTTP: containerd's CRI does so for localhost hosts
//! (127.0.0.1 included), and Docker treats 127.0.0.0/8 as an insecure registry.
//!
//! Two sites, each on a port of its own: the public one serves the repository
//! [`PUBLIC_REPOSITORY`] to anyone; the private one serves [`PRIVATE_REPOSITORY`] only with
//! HTTP Basic credentials made for the run, and asks for them on every path, `/v2/` included.
//! A site of its own, because Docker (and so cri-dockerd) learns how to authenticate from its
//! first `GET /v2/` only: a host that answers it without a challenge never gets credentials,
//! and one that challenges it gets no anonymous pull.
//!
//! Served, for the site's repository: `GET /v2/`, `GET`/`HEAD /v2/<name>/manifests/<tag or
//! digest>` and `GET`/`HEAD /v2/<name>/blobs/<digest>`, with the Content-Type,
//! Docker-Content-Digest and Content-Length a registry sends; anything else is answered with
//! the registry's JSON error body (`{"errors": [{"code": ..., "message": ...}]}`). Requests are
//! read with bounded headers and time; connections are bounded in number and in life.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::image::{OCI_MANIFEST, TestImage, digest};

/// The repository anyone may pull from.
pub const PUBLIC_REPOSITORY: &str = "node-conformance/public";
/// The repository that needs the run's credentials.
pub const PRIVATE_REPOSITORY: &str = "node-conformance/private";
/// The user name of the run's credentials; the password is random.
pub const USER: &str = "node-conformance";
/// The realm of the private site's Basic challenge.
const REALM: &str = "node-conformance";

/// Connections served at once, per site; more wait in the listen backlog. A pull opens a few.
const MAX_CONNECTIONS: usize = 32;
/// How long a request's header may take; also how long a connection may wait for its next
/// request (hyper counts both).
const HEADER_READ: Duration = Duration::from_secs(10);
/// The longest a connection lives: the layer (the harness binary, tens of MiB) streams over
/// loopback in well under a second.
const CONNECTION_LIFE: Duration = Duration::from_secs(300);
/// hyper's read buffer: a request header longer than this is refused (431).
const MAX_READ_BUFFER: usize = 16 * 1024;
/// Requests remembered for a test's report.
const LOG_LINES: usize = 200;

/// What one site serves and to whom.
#[derive(Debug)]
struct Site {
    repository: &'static str,
    tag: String,
    /// `Some(expected Authorization header value)` on the private site.
    authorization: Option<String>,
    manifest: Bytes,
    manifest_digest: String,
    image: Arc<TestImage>,
    log: Mutex<VecDeque<String>>,
    /// Requests answered 401.
    refused: std::sync::atomic::AtomicUsize,
}

/// The registry while it runs; stopped by [`Registry::stop`] or when dropped.
#[derive(Debug)]
pub struct Registry {
    public: SocketAddr,
    private: SocketAddr,
    tag: String,
    password: String,
    sites: [Arc<Site>; 2],
    stop: Mutex<Vec<oneshot::Sender<()>>>,
}

impl Registry {
    /// Binds both sites on 127.0.0.1 (ports the system picks) and serves `image` tagged `tag`
    /// (the run id: the references are unique to the run): as it is on the public site, and
    /// on the private site with the label `node-conformance.repository=private` added to its
    /// config, so that a runtime holds two images and says which one a container runs (the
    /// layer is the same). Must be called on a Tokio runtime, which then serves the sites
    /// until [`Registry::stop`]. Errors: the manifests cannot be made, or a port cannot be
    /// bound.
    pub async fn start(image: Arc<TestImage>, tag: &str) -> Result<Self, String> {
        let private_image = Arc::new(
            image
                .with_label("node-conformance.repository", "private")
                .map_err(|e| format!("cannot make the private image: {e}"))?,
        );
        let password = uuid::Uuid::new_v4().simple().to_string();
        let site = |repository, authorization, image: Arc<TestImage>| {
            let manifest = image
                .manifest()
                .map_err(|e| format!("cannot make the manifest: {e}"))?;
            Ok::<_, String>(Arc::new(Site {
                repository,
                tag: tag.to_string(),
                authorization,
                manifest_digest: digest(&manifest),
                manifest,
                image,
                log: Mutex::new(VecDeque::new()),
                refused: std::sync::atomic::AtomicUsize::new(0),
            }))
        };
        let public = site(PUBLIC_REPOSITORY, None, image)?;
        let private = site(
            PRIVATE_REPOSITORY,
            Some(basic(USER, &password)),
            private_image,
        )?;
        let mut stop = Vec::new();
        let mut addrs = Vec::new();
        for s in [&public, &private] {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
            addrs.push(
                listener
                    .local_addr()
                    .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?,
            );
            let (tx, rx) = oneshot::channel();
            stop.push(tx);
            tokio::spawn(serve(listener, Arc::clone(s), rx));
        }
        let (Some(&public_addr), Some(&private_addr)) = (addrs.first(), addrs.get(1)) else {
            return Err("no address to serve on".into());
        };
        Ok(Self {
            public: public_addr,
            private: private_addr,
            tag: tag.to_string(),
            password,
            sites: [public, private],
            stop: Mutex::new(stop),
        })
    }

    /// `127.0.0.1:<port>`, the public site.
    pub fn public_host(&self) -> String {
        self.public.to_string()
    }

    /// `127.0.0.1:<port>`, the private site: the key of a dockerconfigjson's `auths`.
    pub fn private_host(&self) -> String {
        self.private.to_string()
    }

    /// `127.0.0.1:<port>/node-conformance/public:<run id>`.
    pub fn public_image(&self) -> String {
        format!("{}/{PUBLIC_REPOSITORY}:{}", self.public, self.tag)
    }

    /// `127.0.0.1:<port>/node-conformance/private:<run id>`.
    pub fn private_image(&self) -> String {
        format!("{}/{PRIVATE_REPOSITORY}:{}", self.private, self.tag)
    }

    /// The digest of the public repository's manifest: `sha256:<hex>`, which a runtime's
    /// image id of it ends with.
    pub fn public_digest(&self) -> &str {
        &self.sites[0].manifest_digest
    }

    /// The digest of the private repository's manifest.
    pub fn private_digest(&self) -> &str {
        &self.sites[1].manifest_digest
    }

    /// The private site's credentials: (user, password).
    pub fn credentials(&self) -> (&str, &str) {
        (USER, &self.password)
    }

    /// The requests each site answered, oldest first (at most the last 200 of each):
    /// `public: GET /v2/.../manifests/... 200`.
    pub fn requests(&self) -> Vec<String> {
        self.sites
            .iter()
            .flat_map(|s| {
                let who = if s.authorization.is_some() {
                    "private"
                } else {
                    "public"
                };
                lock(&s.log)
                    .iter()
                    .map(|l| format!("{who}: {l}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// How many requests the private site refused for want of the run's credentials.
    pub fn refused(&self) -> usize {
        self.sites[1]
            .refused
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops accepting and drops every connection.
    pub fn stop(&self) {
        for tx in std::mem::take(&mut *lock(&self.stop)) {
            let _ = tx.send(());
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a runtime's image of these references (tags and digests, as CRI ListImages gives
/// them) was pulled from the registry of run `run_id`: one is
/// `127.0.0.1:<port>/node-conformance/{public,private}:<run id>`.
pub fn pulled_in_run(references: &[String], run_id: &str) -> bool {
    references.iter().any(|r| {
        r.strip_prefix("127.0.0.1:")
            .and_then(|r| r.split_once('/'))
            .is_some_and(|(port, rest)| {
                port.parse::<u16>().is_ok()
                    && [PUBLIC_REPOSITORY, PRIVATE_REPOSITORY]
                        .iter()
                        .any(|repo| rest.strip_prefix(repo) == Some(&format!(":{run_id}")))
            })
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The value of an `Authorization` header of HTTP Basic (RFC 7617).
fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Whether `given` is `expected`, in a time that does not depend on where they differ.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    Sha256::digest(given) == Sha256::digest(expected)
}

/// Serves `site` on `listener`, at most [`MAX_CONNECTIONS`] at once, until `stop`; open
/// connections are then dropped.
async fn serve(listener: TcpListener, site: Arc<Site>, mut stop: oneshot::Receiver<()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections =
        crate::controlplane::server::accept_until(listener, &slots, &mut stop, |stream, slot| {
            connection(stream, Arc::clone(&site), slot)
        })
        .await;
    connections.shutdown().await;
}

/// One connection, until the client closes it or it outlives its bounds; the slot is held
/// until then.
async fn connection(stream: tokio::net::TcpStream, site: Arc<Site>, _slot: OwnedSemaphorePermit) {
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let site = Arc::clone(&site);
        async move { Ok::<_, Infallible>(respond(&site, &req)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ)
        .max_buf_size(MAX_READ_BUFFER)
        .serve_connection(TokioIo::new(stream), service);
    let _ = tokio::time::timeout(CONNECTION_LIFE, conn).await;
}

/// An answer's body: nothing, bytes, or the layer's chunks.
#[derive(Debug)]
struct Chunks {
    chunks: VecDeque<Bytes>,
    remaining: u64,
}

impl Chunks {
    fn new(chunks: Vec<Bytes>) -> Self {
        Self {
            remaining: chunks.iter().map(|c| c.len() as u64).sum(),
            chunks: chunks.into(),
        }
    }
}

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.chunks.pop_front();
        if let Some(c) = &next {
            self.remaining = self.remaining.saturating_sub(c.len() as u64);
        }
        Poll::Ready(next.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Answers one request and remembers it in the site's log.
fn respond<B>(site: &Site, req: &Request<B>) -> Response<Chunks> {
    let authorization = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let path = req.uri().path();
    let answer = answer(site, req.method(), path, authorization);
    if answer.status == StatusCode::UNAUTHORIZED {
        site.refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    {
        let mut log = lock(&site.log);
        if log.len() >= LOG_LINES {
            log.pop_front();
        }
        // The path is the client's: cut, so a log line stays a line.
        let shown: String = path.chars().take(300).filter(|c| !c.is_control()).collect();
        log.push_back(format!(
            "{} {shown}{} {}",
            req.method(),
            if authorization.is_some() {
                " (with credentials)"
            } else {
                ""
            },
            answer.status.as_u16()
        ));
    }
    answer.into_response(req.method() == Method::HEAD)
}

/// What a request is answered, before it is put on the wire.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: Vec<Bytes>,
}

impl Answer {
    fn content(content_type: &str, digest: &str, body: Vec<Bytes>) -> Self {
        Self {
            status: StatusCode::OK,
            headers: vec![
                ("content-type", content_type.to_string()),
                ("docker-content-digest", digest.to_string()),
            ],
            body,
        }
    }

    /// The registry's error body (distribution-spec "Error Codes").
    fn error(status: StatusCode, code: &str, message: &str) -> Self {
        let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: vec![Bytes::from(body.to_string())],
        }
    }

    /// As it is sent: a HEAD answer has the length of the body it leaves out.
    fn into_response(self, head: bool) -> Response<Chunks> {
        let length: usize = self.body.iter().map(Bytes::len).sum();
        let mut builder = Response::builder()
            .status(self.status)
            .header("docker-distribution-api-version", "registry/2.0")
            .header("content-length", length);
        for (name, value) in &self.headers {
            builder = builder.header(*name, value.as_str());
        }
        let body = Chunks::new(if head { Vec::new() } else { self.body });
        builder.body(body).unwrap_or_else(|_| {
            // Only a header value with a control character fails; none is made from input.
            let mut r = Response::new(Chunks::new(Vec::new()));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }
}

/// The answer to `method path` on `site`, given the request's `Authorization` header.
fn answer(site: &Site, method: &Method, path: &str, authorization: Option<&[u8]>) -> Answer {
    if method != Method::GET && method != Method::HEAD {
        return Answer::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "the operation is unsupported: this registry is read-only",
        );
    }
    if let Some(expected) = &site.authorization {
        let ok = authorization.is_some_and(|given| same_secret(given, expected.as_bytes()));
        if !ok {
            let mut a = Answer::error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
            a.headers
                .push(("www-authenticate", format!("Basic realm=\"{REALM}\"")));
            return a;
        }
    }
    if path == "/v2/" || path == "/v2" {
        return Answer {
            status: StatusCode::OK,
            headers: vec![("content-type", "application/json".into())],
            body: vec![Bytes::from_static(b"{}")],
        };
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Answer::error(StatusCode::NOT_FOUND, "NOT_FOUND", "not a registry path");
    };
    let (name, kind, reference) =
        match (rest.rsplit_once("/manifests/"), rest.rsplit_once("/blobs/")) {
            (Some((name, r)), _) => (name, "manifests", r),
            (None, Some((name, r))) => (name, "blobs", r),
            (None, None) => {
                return Answer::error(StatusCode::NOT_FOUND, "NOT_FOUND", "not a registry path");
            }
        };
    if name != site.repository {
        return Answer::error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        );
    }
    let image = &site.image;
    match kind {
        "manifests" if reference == site.tag || reference == site.manifest_digest => {
            Answer::content(
                OCI_MANIFEST,
                &site.manifest_digest,
                vec![site.manifest.clone()],
            )
        }
        "manifests" => Answer::error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
        ),
        _ if reference == image.config_digest => Answer::content(
            "application/octet-stream",
            &image.config_digest,
            vec![image.config.clone()],
        ),
        _ if reference == image.layer_digest => Answer::content(
            "application/octet-stream",
            &image.layer_digest,
            image.layer(),
        ),
        _ => Answer::error(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            "blob unknown to registry",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn image() -> Arc<TestImage> {
        Arc::new(TestImage::new(Bytes::from_static(b"\x7fELF fake binary"), "r1").unwrap())
    }

    /// One request on a connection of its own: (status, headers lowercased, body).
    async fn ask(addr: SocketAddr, request: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        (status, headers, raw[split + 4..].to_vec())
    }

    fn get(method: &str, path: &str, auth: Option<&str>) -> String {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{}\r\n",
            auth.map(|a| format!("Authorization: {a}\r\n"))
                .unwrap_or_default()
        )
    }

    fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
        h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn the_public_site_serves_manifest_and_blobs_whose_digests_match_their_content() {
        rt().block_on(async {
            let img = image();
            let r = Registry::start(Arc::clone(&img), "r1").await.unwrap();
            let addr = r.public;
            let (status, h, body) = ask(addr, &get("GET", "/v2/", None)).await;
            assert_eq!(status, 200);
            assert_eq!(
                header(&h, "docker-distribution-api-version"),
                Some("registry/2.0")
            );
            assert_eq!(body, b"{}");
            let path = format!("/v2/{PUBLIC_REPOSITORY}/manifests/r1");
            let (status, h, manifest) = ask(addr, &get("GET", &path, None)).await;
            assert_eq!(status, 200);
            assert_eq!(header(&h, "content-type"), Some(OCI_MANIFEST));
            let manifest_digest = digest(&manifest);
            assert_eq!(
                header(&h, "docker-content-digest"),
                Some(manifest_digest.as_str())
            );
            assert_eq!(
                header(&h, "content-length"),
                Some(manifest.len().to_string().as_str())
            );
            // By digest too, and the manifest names blobs that are served with that content.
            let by_digest = format!("/v2/{PUBLIC_REPOSITORY}/manifests/{manifest_digest}");
            assert_eq!(ask(addr, &get("GET", &by_digest, None)).await.2, manifest);
            let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
            assert_eq!(m["schemaVersion"], 2);
            let blobs = [&m["config"], &m["layers"][0]];
            for blob in blobs {
                let d = blob["digest"].as_str().unwrap();
                let path = format!("/v2/{PUBLIC_REPOSITORY}/blobs/{d}");
                let (status, h, content) = ask(addr, &get("GET", &path, None)).await;
                assert_eq!(status, 200);
                assert_eq!(digest(&content), d);
                assert_eq!(blob["size"].as_u64(), Some(content.len() as u64));
                assert_eq!(header(&h, "docker-content-digest"), Some(d));
                assert_eq!(
                    header(&h, "content-length"),
                    Some(content.len().to_string().as_str())
                );
            }
            // The layer's digest is the config's diff id: the layer is not compressed.
            let config = ask(
                addr,
                &get(
                    "GET",
                    &format!("/v2/{PUBLIC_REPOSITORY}/blobs/{}", img.config_digest),
                    None,
                ),
            )
            .await
            .2;
            let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
            assert_eq!(config["rootfs"]["diff_ids"][0], m["layers"][0]["digest"]);
            r.stop();
        });
    }

    #[test]
    fn head_gives_the_length_and_digest_without_the_body() {
        rt().block_on(async {
            let img = image();
            let r = Registry::start(Arc::clone(&img), "r1").await.unwrap();
            let path = format!("/v2/{PUBLIC_REPOSITORY}/blobs/{}", img.layer_digest);
            let (status, h, body) = ask(r.public, &get("HEAD", &path, None)).await;
            assert_eq!(status, 200);
            assert!(body.is_empty());
            assert_eq!(
                header(&h, "content-length"),
                Some(img.layer_size.to_string().as_str())
            );
            assert_eq!(
                header(&h, "docker-content-digest"),
                Some(img.layer_digest.as_str())
            );
            let path = format!("/v2/{PUBLIC_REPOSITORY}/manifests/r1");
            let (status, h, body) = ask(r.public, &get("HEAD", &path, None)).await;
            assert_eq!(status, 200);
            assert!(body.is_empty());
            assert_eq!(header(&h, "content-type"), Some(OCI_MANIFEST));
        });
    }

    #[test]
    fn the_private_site_wants_the_runs_credentials_everywhere() {
        rt().block_on(async {
            let img = image();
            let r = Registry::start(Arc::clone(&img), "r1").await.unwrap();
            let (user, password) = r.credentials();
            let good = basic(user, password);
            let manifest = format!("/v2/{PRIVATE_REPOSITORY}/manifests/r1");
            let blob = format!("/v2/{PRIVATE_REPOSITORY}/blobs/{}", img.layer_digest);
            for path in ["/v2/", manifest.as_str(), blob.as_str()] {
                for auth in [None, Some("Basic bm9ib2R5Om5vdGhpbmc="), Some("Bearer x")] {
                    let (status, h, body) = ask(r.private, &get("GET", path, auth)).await;
                    assert_eq!(status, 401, "{path} {auth:?}");
                    assert_eq!(
                        header(&h, "www-authenticate"),
                        Some("Basic realm=\"node-conformance\"")
                    );
                    let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(e["errors"][0]["code"], "UNAUTHORIZED");
                }
                let (status, _, _) = ask(r.private, &get("GET", path, Some(&good))).await;
                assert_eq!(status, 200, "{path}");
            }
            assert_eq!(r.refused(), 9);
            // The public repository is not on the private site, nor the private on the public.
            let public = format!("/v2/{PUBLIC_REPOSITORY}/manifests/r1");
            assert_eq!(
                ask(r.private, &get("GET", &public, Some(&good))).await.0,
                404
            );
            assert_eq!(ask(r.public, &get("GET", &manifest, None)).await.0, 404);
            assert!(r.private_image().ends_with("/node-conformance/private:r1"));
            assert!(r.private_image().starts_with(&r.private_host()));
            let seen = r.requests();
            assert!(
                seen.iter()
                    .any(|l| l.starts_with("private: GET /v2/ (with credentials) 200")),
                "{seen:?}"
            );
        });
    }

    #[test]
    fn unknown_names_references_and_methods_get_the_registrys_errors() {
        rt().block_on(async {
            let r = Registry::start(image(), "r1").await.unwrap();
            let code = |body: Vec<u8>| -> String {
                let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
                e["errors"][0]["code"].as_str().unwrap().to_string()
            };
            let cases = [
                (
                    "GET",
                    "/v2/other/manifests/r1".to_string(),
                    404,
                    "NAME_UNKNOWN",
                ),
                (
                    "GET",
                    format!("/v2/{PUBLIC_REPOSITORY}/manifests/r2"),
                    404,
                    "MANIFEST_UNKNOWN",
                ),
                (
                    "GET",
                    format!(
                        "/v2/{PUBLIC_REPOSITORY}/manifests/sha256:{}",
                        "0".repeat(64)
                    ),
                    404,
                    "MANIFEST_UNKNOWN",
                ),
                (
                    "GET",
                    format!("/v2/{PUBLIC_REPOSITORY}/blobs/sha256:00"),
                    404,
                    "BLOB_UNKNOWN",
                ),
                (
                    "GET",
                    format!("/v2/{PUBLIC_REPOSITORY}/tags/list"),
                    404,
                    "NOT_FOUND",
                ),
                ("GET", "/".to_string(), 404, "NOT_FOUND"),
                (
                    "PUT",
                    format!("/v2/{PUBLIC_REPOSITORY}/manifests/r1"),
                    405,
                    "UNSUPPORTED",
                ),
                (
                    "DELETE",
                    format!("/v2/{PUBLIC_REPOSITORY}/blobs/x"),
                    405,
                    "UNSUPPORTED",
                ),
            ];
            for (method, path, status, want) in cases {
                let (got, h, body) = ask(r.public, &get(method, &path, None)).await;
                assert_eq!(got, status, "{method} {path}");
                assert_eq!(header(&h, "content-type"), Some("application/json"));
                assert_eq!(code(body), want, "{method} {path}");
            }
        });
    }

    #[test]
    fn the_private_image_is_another_image_of_the_same_layer() {
        rt().block_on(async {
            let img = image();
            let r = Registry::start(Arc::clone(&img), "r1").await.unwrap();
            let (user, password) = r.credentials();
            let good = basic(user, password);
            let path = format!("/v2/{PRIVATE_REPOSITORY}/manifests/r1");
            let (_, h, manifest) = ask(r.private, &get("GET", &path, Some(&good))).await;
            assert_eq!(digest(&manifest), r.private_digest());
            assert_eq!(
                header(&h, "docker-content-digest"),
                Some(r.private_digest())
            );
            assert_ne!(r.private_digest(), r.public_digest());
            let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
            assert_eq!(m["layers"][0]["digest"], img.layer_digest.as_str());
            let config_digest = m["config"]["digest"].as_str().unwrap();
            assert_ne!(config_digest, img.config_digest);
            let path = format!("/v2/{PRIVATE_REPOSITORY}/blobs/{config_digest}");
            let (status, _, config) = ask(r.private, &get("GET", &path, Some(&good))).await;
            assert_eq!(status, 200);
            assert_eq!(digest(&config), config_digest);
            let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
            let labels = &config["config"]["Labels"];
            assert_eq!(labels["node-conformance.repository"], "private");
            // Still the run's: what Docker removes by label at the end of the run.
            assert_eq!(labels[super::super::image::LABEL], "r1");
            // The public site does not serve the private config.
            let path = format!("/v2/{PUBLIC_REPOSITORY}/blobs/{config_digest}");
            assert_eq!(ask(r.public, &get("GET", &path, None)).await.0, 404);
        });
    }

    #[test]
    fn only_this_runs_pulls_are_its_own() {
        let refs = |r: &[&str]| r.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let ours = refs(&[
            "127.0.0.1:41234/node-conformance/private:abc1",
            "127.0.0.1:41234/node-conformance/private@sha256:00",
        ]);
        assert!(pulled_in_run(&ours, "abc1"));
        assert!(pulled_in_run(
            &refs(&["127.0.0.1:1/node-conformance/public:abc1"]),
            "abc1"
        ));
        for other in [
            &["127.0.0.1:41234/node-conformance/private:abc12"][..],
            &["127.0.0.1:41234/node-conformance/private:abc"],
            &["127.0.0.1:41234/node-conformance/other:abc1"],
            &["10.0.0.1:41234/node-conformance/public:abc1"],
            &["127.0.0.1:port/node-conformance/public:abc1"],
            &["127.0.0.1:41234/node-conformance/public@sha256:00"],
            &["k8s.gcr.io/pause:3.2"],
            &[],
        ] {
            assert!(!pulled_in_run(&refs(other), "abc1"), "{other:?}");
        }
    }

    #[test]
    fn garbage_and_oversized_requests_get_an_error_not_a_crash() {
        rt().block_on(async {
            let r = Registry::start(image(), "r1").await.unwrap();
            let long = format!("GET /v2/{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(40_000));
            let (status, _, _) = ask(r.public, &long).await;
            assert!(status == 414 || status == 431, "{status}");
            for junk in [
                "\0\0\0\r\n\r\n",
                "GET / HTTP/9.9\r\n\r\n",
                "GET /v2/%ff%00 HTTP/1.1\r\nConnection: close\r\n\r\n",
            ] {
                let mut s = tokio::net::TcpStream::connect(r.public).await.unwrap();
                s.write_all(junk.as_bytes()).await.unwrap();
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out).await;
            }
            // Still serving.
            assert_eq!(ask(r.public, &get("GET", "/v2/", None)).await.0, 200);
            r.stop();
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(tokio::net::TcpStream::connect(r.public).await.is_err());
        });
    }
}
