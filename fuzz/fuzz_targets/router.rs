//! The local control plane's HTTP API, in process: a sequence of requests against a fresh
//! store, each `METHOD PATH?QUERY` on its first line, its Content-Type on the second and its
//! Accept on the third (either may be empty), then the body; requests are separated by
//! [`common::SEPARATOR`]. A sequence, so that an update, a patch or a watch finds an object
//! an earlier request created. A 500 is counted and shown, not a crash; a panic is.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, Uri, header};
use libfuzzer_sys::fuzz_target;
use node_conformance::controlplane::{api, store::Store};
use tower::ServiceExt;

/// More requests add little that a sequence of this many does not reach.
const MAX_REQUESTS: usize = 12;

static SERVER_ERRORS: AtomicU64 = AtomicU64::new(0);

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        // The clock is paused and jumps ahead whenever every task waits: a watch's timeout
        // or a wait for a future resourceVersion ends at once, in virtual time.
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a tokio runtime")
    })
}

fn request(raw: &[u8]) -> Option<Request<Body>> {
    let mut lines = raw.splitn(4, |&b| b == b'\n');
    let first = lines.next()?;
    let content_type = lines.next().unwrap_or_default();
    let accept = lines.next().unwrap_or_default();
    let body = lines.next().unwrap_or_default();
    let at = first.iter().position(|&b| b == b' ')?;
    let method = Method::from_bytes(&first[..at]).ok()?;
    let uri = Uri::try_from(&first[at + 1..]).ok()?;
    let mut req = Request::builder().method(method).uri(uri);
    if !content_type.is_empty() {
        req = req.header(header::CONTENT_TYPE, content_type);
    }
    if !accept.is_empty() {
        req = req.header(header::ACCEPT, accept);
    }
    // A header value the http crate refuses never reaches a server either.
    req.body(Body::from(body.to_vec())).ok()
}

fuzz_target!(|data: &[u8]| {
    let requests: Vec<_> = common::split(data)
        .into_iter()
        .take(MAX_REQUESTS)
        .filter_map(request)
        .collect();
    if requests.is_empty() {
        return;
    }
    runtime().block_on(async {
        // A fixed starting version: an input replays the same way every time.
        let store = Arc::new(Store::starting_at(1_000_000));
        let app = api::router(Arc::clone(&store));
        for req in requests {
            let what = format!("{} {}", req.method(), req.uri());
            let answer = async {
                let resp = app
                    .clone()
                    .oneshot(req)
                    .await
                    .expect("the router is infallible");
                let status = resp.status();
                let body = axum::body::to_bytes(resp.into_body(), 64 << 20).await;
                (status, body.map(|b| b.len()))
            };
            // Watches stream until their timeout (virtual time, so this is quick); one that
            // would never end is cut off here rather than hang the run.
            match tokio::time::timeout(Duration::from_secs(3600), answer).await {
                Ok((status, _)) if status.is_server_error() => {
                    let n = SERVER_ERRORS.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_power_of_two() {
                        eprintln!("router: {n} answers {status} so far, the last to {what}");
                    }
                }
                Ok(_) => {}
                Err(_) => eprintln!("router: no end to the answer to {what} after an hour"),
            }
        }
        store.close();
    });
});
