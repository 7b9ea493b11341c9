//! Watch requests: their options, checked as kube-apiserver checks them, and the stream of
//! events, shaped as its watch cache shapes them
//! (k8s.io/apiserver/pkg/storage/cacher/cacher.go, cache_watcher.go).
//!
//! - Without `sendInitialEvents` (every client before WatchList), a watch from no version or
//!   `0` starts with the current objects as ADDED; a watch from version N sends the changes
//!   after N (one ERROR event, 410 Expired, when N is older than the history kept), and
//!   nothing at or before N when N is ahead of the store, as kube-apiserver 1.20 does.
//! - `sendInitialEvents=true` (WatchList, KEP-3157: alpha in Kubernetes 1.27, beta from 1.32,
//!   on by default in client-go's reflector from 1.35): the current objects as ADDED, then,
//!   when `allowWatchBookmarks=true`, a BOOKMARK annotated `k8s.io/initial-events-end: "true"`
//!   at the version they reflect, then the changes. It needs `resourceVersionMatch=NotOlderThan`
//!   (422 otherwise). Kubernetes 1.20 ignores the parameter; following the newer contract is
//!   deliberate, since current clients depend on the bookmark.
//! - A label or field selector turns a change into ADDED when the object starts to match and
//!   into DELETED (the old object at the new version) when it stops.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::api::{json_response, status};
use super::query::{self, Query};
use super::resources::Resource;
use super::selector::Selector;
use super::store::{Event, EventType, Store, StoreError};
use super::table;

/// How long a request for a version the store has not reached waits for it before the
/// 504 "Too large resource version" (the watch cache's `blockTimeout`).
pub const TOO_LARGE_WAIT: Duration = Duration::from_secs(3);

/// The watch's length when the client names none (kube-apiserver's `--min-request-timeout`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// The annotation that marks the end of the initial events (`metav1.InitialEventsAnnotationKey`).
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// The Status of `storage.NewTooLargeResourceVersionError(asked, current, 1)`: 504 Timeout
/// with the ResourceVersionTooLarge cause clients (client-go's reflector) look for.
pub fn too_large(asked: u64, current: u64) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("Timeout: Too large resource version: {asked}, current: {current}"),
        "reason": "Timeout",
        "details": {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1},
        "code": 504})
}

/// A watch's options, decoded and checked.
struct Options {
    /// The version to start after; `None` for none or `0`.
    since: Option<u64>,
    send_initial: Option<bool>,
    bookmarks: bool,
    timeout: Duration,
    selector: Selector,
}

fn bad_request(message: &str) -> Response {
    status(400, "BadRequest", message, None)
}

// The error is the finished answer: one per request, not worth boxing.
#[allow(clippy::result_large_err)]
fn options(res: &Resource, q: &Query) -> Result<Options, Response> {
    let timeout = query::int64(q, "timeoutSeconds").map_err(|e| bad_request(&e.0))?;
    let selector = Selector::parse(
        &res.key(),
        q.get("labelSelector").map(String::as_str),
        q.get("fieldSelector").map(String::as_str),
    )
    .map_err(|e| bad_request(&e))?;
    let send_initial = query::flag(q, "sendInitialEvents");
    let errs = query::list_options_errors(q, true);
    if !errs.is_empty() {
        return Err(json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &query::list_options_status(&errs),
        ));
    }
    let since = query::resource_version(q.get("resourceVersion").map_or("", String::as_str))
        .map_err(|e| {
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &query::bad_resource_version(&e),
            )
        })?;
    // Negative ends the watch at once, as a deadline in the past does; 0 is the default.
    let timeout = match timeout {
        None | Some(0) => DEFAULT_TIMEOUT,
        Some(s) if s < 0 => Duration::ZERO,
        Some(s) => Duration::from_secs(s.unsigned_abs()),
    };
    Ok(Options {
        since,
        send_initial,
        bookmarks: query::flag(q, "allowWatchBookmarks").unwrap_or(false),
        timeout,
        selector,
    })
}

/// What one store event is to a watch with this selector: the line to send, if any
/// (`cacheWatcher.convertToWatchEvent`).
fn translate(e: &Event, sel: &Selector, event_line: &Line) -> Option<Bytes> {
    let now = e.kind != EventType::Deleted && sel.matches_stored(&e.object);
    let before = match (e.kind, &e.prev) {
        (EventType::Added, _) => false,
        (EventType::Deleted, _) => sel.matches_stored(&e.object),
        (EventType::Modified, Some(prev)) => sel.matches_stored(prev),
        (EventType::Modified, None) => now,
    };
    match (now, before) {
        (true, false) => Some(event_line("ADDED", &e.object.json)),
        (true, true) => Some(event_line("MODIFIED", &e.object.json)),
        (false, true) => {
            if e.kind == EventType::Deleted {
                return Some(event_line("DELETED", &e.object.json));
            }
            // It stopped matching: its last matching state, at the version of the change.
            let mut old = e.prev.as_ref().map_or(Value::Null, |p| p.value());
            if let Some(meta) = old.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("resourceVersion".into(), json!(e.rv.to_string()));
            }
            Some(event_line("DELETED", &old.to_string()))
        }
        (false, false) => None,
    }
}

/// Makes a watch event's line from its type and the stored object's text.
type Line = dyn Fn(&str, &str) -> Bytes + Send + Sync;

/// One watch event, a line of JSON: the stored object's text as it is, after the apiVersion
/// and kind every event's object carries (stored objects leave them out, as list items do).
/// Tables and bookmarks carry their own.
pub fn event_line(kind: &str, res: &Resource, object: &str) -> Bytes {
    if object.starts_with("{\"apiVersion\"") {
        return Bytes::from(format!("{{\"type\":\"{kind}\",\"object\":{object}}}\n"));
    }
    let rest = object.strip_prefix('{').unwrap_or(object);
    let sep = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    Bytes::from(format!(
        "{{\"type\":\"{kind}\",\"object\":{{\"apiVersion\":\"{}\",\"kind\":\"{}\"{sep}{rest}}}\n",
        res.api_version(),
        res.kind
    ))
}

fn value_line(v: &Value) -> Bytes {
    Bytes::from(format!("{v}\n"))
}

fn bookmark(res: &Resource, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({INITIAL_EVENTS_END: "true"});
    }
    value_line(
        &json!({"type": "BOOKMARK", "object": {"kind": res.kind, "apiVersion": res.api_version(), "metadata": meta}}),
    )
}

fn error_event(status: &Value) -> Bytes {
    value_line(&json!({"type": "ERROR", "object": status}))
}

fn stream_response(stream: impl futures_util::Stream<Item = Bytes> + Send + 'static) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(
            stream.map(Ok::<Bytes, std::convert::Infallible>),
        ))
        .unwrap_or_else(|_| status(500, "InternalError", "cannot start the watch", None))
}

/// Serves `?watch=true` on a collection: the resource `res`, in `namespace` (empty: all).
pub async fn serve(
    store: &Arc<Store>,
    res: &'static Resource,
    namespace: &str,
    q: &Query,
    printer: Option<table::Printer>,
) -> Response {
    let o = match options(res, q) {
        Ok(o) => o,
        Err(r) => return r,
    };
    // Asked for Tables (`kubectl get -w`), each event's object is a Table of one row.
    let objects =
        match table::WatchObjects::new(printer, res, q.get("includeObject").map(String::as_str)) {
            Ok(o) => o,
            Err(m) => return bad_request(&m),
        };
    let line: Arc<Line> =
        Arc::new(move |kind: &str, object: &str| event_line(kind, res, &objects.object(object)));
    let key = res.key();
    let ns_filter = (!namespace.is_empty()).then_some(namespace);
    // The initial events, when there are: the current objects, and the version they reflect.
    let initial_state = match (o.send_initial, o.since) {
        (Some(true), Some(asked)) => {
            if !store.reached(asked, TOO_LARGE_WAIT).await {
                // The watch was accepted; its one event says why it ends.
                let current = store.resource_version();
                return stream_response(futures_util::stream::iter([error_event(&too_large(
                    asked, current,
                ))]));
            }
            Some(store.list(&key, ns_filter, &o.selector))
        }
        (Some(true), None) | (None, None) => Some(store.list(&key, ns_filter, &o.selector)),
        (Some(false), _) | (None, Some(_)) => None,
    };
    // Changes after this version are sent; with a version ahead of the store, the ones up to
    // it are not.
    let (start, skip_through) = match (&initial_state, o.since) {
        (Some((_, rv)), _) => (Some(*rv), *rv),
        (None, Some(asked)) => {
            let now = store.resource_version();
            (Some(asked.min(now)), asked)
        }
        (None, None) => {
            let now = store.resource_version();
            (Some(now), now)
        }
    };
    let (backlog, mut rx) = match store.watch(start) {
        Ok(w) => w,
        // As kube-apiserver's watch cache: once the request is accepted, a version too old is
        // the watch's one ERROR event.
        Err(StoreError::Expired(m)) => {
            let st = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": m, "reason": "Expired", "code": 410});
            return stream_response(futures_util::stream::iter([error_event(&st)]));
        }
        Err(e) => return status(500, "InternalError", &format!("{e:?}"), None),
    };
    let ns = namespace.to_string();
    let sel = o.selector;
    let relevant = move |e: &Event| {
        e.rv > skip_through && e.resource == key && (ns.is_empty() || e.namespace == ns)
    };
    let mut first: Vec<Bytes> = Vec::new();
    if let Some((items, rv)) = &initial_state {
        first.extend(items.iter().map(|o| line("ADDED", o)));
        if o.send_initial == Some(true) && o.bookmarks {
            first.push(bookmark(res, *rv, true));
        }
    }
    first.extend(
        backlog
            .iter()
            .filter(|e| relevant(e))
            .filter_map(|e| translate(e, &sel, &*line)),
    );
    let bookmarks = o.bookmarks;
    let timeout = o.timeout;
    let store = Arc::clone(store);
    let closed = store.closed();
    let live = async_stream(move |yield_| async move {
        // A deadline past what the clock can hold is no deadline: kube-apiserver multiplies
        // the seconds into nanoseconds and wraps around instead.
        let deadline = tokio::time::Instant::now().checked_add(timeout);
        let until_deadline = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::pin!(closed);
        tokio::pin!(until_deadline);
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tokio::select! {
                () = &mut until_deadline => return,
                () = &mut closed => return,
                _ = tick.tick(), if bookmarks => {
                    let rv = store.resource_version().max(skip_through);
                    if yield_(bookmark(res, rv, false)).await.is_err() { return; }
                }
                got = rx.recv() => match got {
                    Ok(e) if relevant(&e) => {
                        if let Some(event) = translate(&e, &sel, &*line)
                            && yield_(event).await.is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let _ = yield_(error_event(&json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Expired", "code": 410, "message": "the watch fell behind; relist"}))).await;
                        return;
                    }
                    Err(_) => return,
                },
            }
        }
    });
    stream_response(futures_util::stream::iter(first).chain(live))
}

type Yield =
    Box<dyn Fn(Bytes) -> futures_util::future::BoxFuture<'static, Result<(), ()>> + Send + Sync>;

/// A stream fed by an async producer through a bounded channel.
fn async_stream<F, Fut>(producer: F) -> impl futures_util::Stream<Item = Bytes>
where
    F: FnOnce(Yield) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let send: Yield = Box::new(move |v: Bytes| {
        let tx = tx.clone();
        let f: futures_util::future::BoxFuture<'static, Result<(), ()>> =
            Box::pin(async move { tx.send(v).await.map_err(|_| ()) });
        f
    });
    tokio::spawn(producer(send));
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controlplane::store::Preconditions;

    fn event_of(store: &Store, since: u64) -> Vec<Arc<Event>> {
        store.watch(Some(since)).unwrap().0
    }

    #[test]
    fn a_selector_sees_objects_come_and_go() {
        let res = crate::controlplane::resources::Resource::find("", "v1", "configmaps").unwrap();
        let plain = move |kind: &str, object: &str| event_line(kind, res, object);
        let s = Store::starting_at(0);
        let cm = |v: &str| json!({"metadata": {"name": "c", "labels": {"app": v}}});
        s.create("configmaps", "ns", cm("a"), false).unwrap();
        let change = |f: &dyn Fn(&mut Value)| {
            let mut c = s.get("configmaps", "ns", "c").unwrap();
            f(&mut c);
            s.update("configmaps", "ns", "c", c, false).unwrap();
        };
        change(&|c| c["metadata"]["labels"]["app"] = json!("b"));
        change(&|c| c["metadata"]["labels"]["app"] = json!("a"));
        change(&|c| c["data"] = json!({"k": "v"}));
        s.delete("configmaps", "ns", "c", &Preconditions::default(), false)
            .unwrap();
        let sel = Selector::parse("configmaps", Some("app=a"), None).unwrap();
        let seen: Vec<(String, String, Value)> = event_of(&s, 0)
            .iter()
            .filter_map(|e| translate(e, &sel, &plain))
            .map(|line| {
                let v: Value = serde_json::from_slice(&line).unwrap();
                (
                    v["type"].as_str().unwrap().to_string(),
                    v["object"]["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    v["object"]["metadata"]["labels"]["app"].clone(),
                )
            })
            .collect();
        let rv = |n: u64| n.to_string();
        assert_eq!(
            seen,
            vec![
                ("ADDED".into(), rv(1), json!("a")),
                // Stopped matching: the last matching object, at the version of the change.
                ("DELETED".into(), rv(2), json!("a")),
                ("ADDED".into(), rv(3), json!("a")),
                ("MODIFIED".into(), rv(4), json!("a")),
                ("DELETED".into(), rv(5), json!("a")),
            ]
        );
        let everything = Selector::default();
        let kinds: Vec<String> = event_of(&s, 0)
            .iter()
            .filter_map(|e| translate(e, &everything, &plain))
            .map(|l| {
                serde_json::from_slice::<Value>(&l).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            kinds,
            ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]
        );
    }

    #[test]
    fn too_large_reads_as_the_watch_cache_answers() {
        let st = too_large(10, 3);
        assert_eq!(st["code"], 504);
        assert_eq!(st["reason"], "Timeout");
        assert_eq!(
            st["message"],
            "Timeout: Too large resource version: 10, current: 3"
        );
        assert_eq!(
            st["details"]["causes"][0],
            json!({"reason": "ResourceVersionTooLarge", "message": "Too large resource version"})
        );
        assert_eq!(st["details"]["retryAfterSeconds"], 1);
    }
}
