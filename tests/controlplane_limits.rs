//! A hostile or broken client cannot hang, exhaust or stall the local control plane: bounds on
//! header and body reads, idle connections and connections at once, an early 413, and a prompt
//! stop. Bounds are shortened here so the tests take seconds.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use node_conformance::controlplane::{self, Limits};
use serde_json::Value;

/// A control plane on its own runtime, on a free port.
struct Server {
    port: u16,
    running: Option<controlplane::Running>,
    rt: tokio::runtime::Runtime,
}

impl Server {
    fn start(limits: Limits) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let running = rt
            .block_on(controlplane::start_with(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                0,
                limits,
                controlplane::Serving::Insecure,
            ))
            .unwrap();
        Server {
            port: running.addr.port(),
            running: Some(running),
            rt,
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// One request on a new connection: the status code and the body (chunk sizes included,
    /// for chunked answers).
    fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = self.connect();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        answer(&mut s)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = self.rt.block_on(r.stop());
        }
    }
}

/// Reads one answer to its end (the connection closing): status code and body.
fn answer(s: &mut TcpStream) -> (u16, String) {
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// Reads one answer without waiting for the connection to close: its status code and body,
/// read by its Content-Length.
fn keep_alive_answer(r: &mut BufReader<TcpStream>) -> (u16, String) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let code = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut length = 0;
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).unwrap();
    (code, String::from_utf8(body).unwrap())
}

fn status_reason(body: &str) -> Value {
    serde_json::from_str::<Value>(body).unwrap()["reason"].clone()
}

#[test]
fn a_half_sent_header_is_cut_off_while_others_are_served() {
    let s = Server::start(Limits {
        header_read: Duration::from_secs(1),
        ..Limits::default()
    });
    let mut half = s.connect();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
    let begin = Instant::now();
    assert_eq!(s.request("GET", "/healthz", "").0, 200);
    assert!(begin.elapsed() < Duration::from_millis(500));
    // Closed without an answer once the header bound passes.
    let mut got = Vec::new();
    let _ = half.read_to_end(&mut got);
    let waited = begin.elapsed();
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[test]
fn a_trickled_body_is_cut_off_with_408() {
    let s = Server::start(Limits {
        body_read: Duration::from_secs(1),
        ..Limits::default()
    });
    let mut slow = s.connect();
    slow.write_all(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{").unwrap();
    let begin = Instant::now();
    let writer = {
        let mut w = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..40 {
                std::thread::sleep(Duration::from_millis(100));
                if w.write_all(b" ").is_err() {
                    break;
                }
            }
        })
    };
    let (code, body) = answer(&mut slow);
    let waited = begin.elapsed();
    assert_eq!(code, 408, "{body}");
    assert_eq!(status_reason(&body), "Timeout");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    writer.join().unwrap();
    assert_eq!(s.request("GET", "/healthz", "").0, 200);
}

#[test]
fn a_content_length_over_the_limit_is_refused_before_the_body() {
    let s = Server::start(Limits::default());
    let c = s.connect();
    let mut w = c.try_clone().unwrap();
    let begin = Instant::now();
    w.write_all(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\n\r\n").unwrap();
    let (code, body) = keep_alive_answer(&mut BufReader::new(c));
    assert!(begin.elapsed() < Duration::from_secs(1));
    assert_eq!(code, 413, "{body}");
    let st: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            st["kind"].as_str(),
            st["reason"].as_str(),
            st["code"].as_u64()
        ),
        (Some("Status"), Some("RequestEntityTooLarge"), Some(413))
    );
    // A client sending the whole body before reading reads the answer, not a reset.
    let mut c = s.connect();
    c.write_all(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\n\r\n").unwrap();
    c.write_all(&vec![b' '; 4 << 20]).unwrap();
    let (code, body) = answer(&mut c);
    assert_eq!(code, 413, "{body}");
    // A chunked body is cut at the limit, with the same answer.
    let c = s.connect();
    let mut w = c.try_clone().unwrap();
    w.write_all(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..4 {
        write!(w, "{:x}\r\n", chunk.len()).unwrap();
        w.write_all(&chunk).unwrap();
        w.write_all(b"\r\n").unwrap();
    }
    let (code, body) = keep_alive_answer(&mut BufReader::new(c));
    assert_eq!(code, 413, "{body}");
    assert_eq!(status_reason(&body), "RequestEntityTooLarge");
}

#[test]
fn connections_over_the_limit_wait_and_established_ones_are_served() {
    let s = Server::start(Limits {
        header_read: Duration::from_secs(1),
        max_connections: 4,
        ..Limits::default()
    });
    // A well-behaved client, kept alive, then three that never send anything fill the limit.
    let kept = s.connect();
    let mut kept_w = kept.try_clone().unwrap();
    let mut kept_r = BufReader::new(kept);
    let get = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    kept_w.write_all(get).unwrap();
    assert_eq!(keep_alive_answer(&mut kept_r).0, 200);
    let silent: Vec<TcpStream> = (0..3).map(|_| s.connect()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let begin = Instant::now();
    let waiting = std::thread::spawn({
        let port = s.port;
        move || {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .unwrap();
            (answer(&mut c).0, begin.elapsed())
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    // At the limit, the established connection is still answered at once.
    let asked = Instant::now();
    kept_w.write_all(get).unwrap();
    assert_eq!(keep_alive_answer(&mut kept_r).0, 200);
    assert!(asked.elapsed() < Duration::from_millis(500));
    // The new one waits for the silent ones to be closed, then is served.
    let (code, waited) = waiting.join().unwrap();
    assert_eq!(code, 200);
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    drop(silent);
}

#[test]
fn an_idle_connection_is_closed_but_a_watch_keeps_streaming() {
    let s = Server::start(Limits {
        header_read: Duration::from_secs(1),
        idle: Duration::from_secs(1),
        ..Limits::default()
    });
    let cms = "/api/v1/namespaces/default/configmaps";
    let mut idle = s.connect();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut watch = s.connect();
    write!(
        watch,
        "GET {cms}?watch=true HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut events = BufReader::new(watch);
    // Past the idle bound, twice, the watch still gets each change.
    for name in ["a", "b"] {
        std::thread::sleep(Duration::from_millis(2500));
        let (code, body) = s.request(
            "POST",
            cms,
            &format!("{{\"metadata\": {{\"name\": \"{name}\"}}}}"),
        );
        assert_eq!(code, 201, "{body}");
        let mut line = String::new();
        loop {
            line.clear();
            assert_ne!(events.read_line(&mut line).unwrap(), 0, "the watch ended");
            if let Ok(e) = serde_json::from_str::<Value>(line.trim())
                && e.get("type").is_some()
            {
                assert_eq!(
                    (e["type"].as_str(), e["object"]["metadata"]["name"].as_str()),
                    (Some("ADDED"), Some(name))
                );
                break;
            }
        }
    }
    // The connection left idle after its answer was closed long ago: its end is read at once.
    idle.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut text = String::new();
    idle.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[test]
fn the_largest_numbers_a_client_sends_are_answered() {
    let s = Server::start(Limits::default());
    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, body) = s.request(
        "GET",
        &format!("{cms}?watch=true&timeoutSeconds=18446744073709551615"),
        "",
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(status_reason(&body), "BadRequest");
    let pods = "/api/v1/namespaces/default/pods";
    let (code, body) = s.request(
        "POST",
        pods,
        r#"{"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i:1"}]}}"#,
    );
    assert_eq!(code, 201, "{body}");
    for grace in ["9223372036854775808", "18446744073709551615"] {
        let (code, body) = s.request(
            "DELETE",
            &format!("{pods}/p"),
            &format!(r#"{{"gracePeriodSeconds": {grace}}}"#),
        );
        // kube-apiserver's delete handler passes the decoder's error on: a reason-less 500.
        let st: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (code, st["kind"].as_str()),
            (500, Some("Status")),
            "{grace}: {body}"
        );
    }
    let (code, body) = s.request(
        "DELETE",
        &format!("{pods}/p"),
        r#"{"gracePeriodSeconds": 9223372036854775807}"#,
    );
    assert_eq!(code, 200, "{body}");
    let pod: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(pod["metadata"]["deletionTimestamp"], "9999-12-31T23:59:59Z");
    assert_eq!(s.request("GET", "/healthz", "").0, 200);
}

#[test]
fn the_binary_exits_promptly_on_sigterm_with_a_half_sent_request() {
    let cp = common::ControlPlane::start();
    let mut half = TcpStream::connect(("127.0.0.1", cp.port)).unwrap();
    half.write_all(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    let mut header = TcpStream::connect(("127.0.0.1", cp.port)).unwrap();
    header.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut cp = cp;
    assert!(cp.terminate_within(Duration::from_secs(3)));
}

#[test]
fn bodies_held_at_once_are_bounded_and_the_rest_answered_429_at_once() {
    let s = Server::start(Limits {
        body_read: Duration::from_secs(10),
        body_bytes: 4 << 20,
        ..Limits::default()
    });
    let cms = "/api/v1/namespaces/default/configmaps";
    // Two clients that announce 2 MiB bodies and send a byte of each hold the whole budget.
    let announce = |len: usize| {
        let mut c = s.connect();
        write!(
            c,
            "POST {cms} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n{{"
        )
        .unwrap();
        c
    };
    let held: Vec<TcpStream> = (0..2).map(|_| announce(2 << 20)).collect();
    std::thread::sleep(Duration::from_millis(300));
    // A third is refused before its body is read, as kube-apiserver's max-in-flight filter does.
    let begin = Instant::now();
    let third = announce(2 << 20);
    // Read by its length: the connection closes once the unread body is drained or given up.
    let (code, body) = keep_alive_answer(&mut BufReader::new(third));
    assert_eq!(code, 429, "{body}");
    assert_eq!(body, "Too many requests, please try again later.\n");
    assert!(begin.elapsed() < Duration::from_secs(5));
    // A request without a body is still served, and once the held ones go, bodies are again.
    assert_eq!(s.request("GET", "/healthz", "").0, 200);
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"after"}}"#;
    assert_eq!(s.request("POST", cms, cm).0, 201);
}
