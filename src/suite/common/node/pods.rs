//! test/e2e/common/node/pods.go (v1.30.2): "Pods", the tests tagged NodeConformance.
//!
//! The websocket tests: a command run through `pods/exec` and a container's log read through
//! `pods/log`, both over a websocket to the control plane, which relays the first to the
//! kubelet and streams the second from it. Busybox's `echo container is alive; sleep N` is
//! the workload's `--stdout 'container is alive' --sleep N`, and the exec'd
//! `echo 'remote execution test'` the workload binary with `--stdout`.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::PodSpec;
use serde_json::Value;

use crate::suite::common::kit::with_command;
use crate::suite::functional::{ApiPod, Session, removal, session, summary};
use crate::suite::{Context, Outcome, Recorder, Service, Test, describe};

const CONFORMANCE: &[&str] = &["NodeConformance", "Conformance"];

/// Upstream's `Eventually(..., time.Minute, 10*time.Second)` around the exec.
const EXEC_WAIT: Duration = Duration::from_secs(60);
const EXEC_POLL: Duration = Duration::from_secs(10);
/// How long one websocket session may take before it counts as hung.
const SESSION: Duration = Duration::from_secs(30);

/// The websocket tests of pods.go.
pub fn websocket_tests() -> Vec<Test> {
    let t = |behaviour, run, budget| Test {
        area: "Pods",
        behaviour,
        tags: CONFORMANCE,
        needs: &[Service::ControlPlane],
        run,
        read_ahead: None,
        budget: Some(budget),
    };
    vec![
        t(
            "should support remote command execution over websockets",
            exec_over_websockets,
            |w| w.pod_start + EXEC_WAIT + SESSION + removal(w),
        ),
        t(
            "should support retrieving logs from the container over websockets",
            logs_over_websockets,
            |w| w.pod_start + SESSION + removal(w),
        ),
    ]
}

/// Upstream's pod: one container `main` that says it is alive and sleeps; created and waited
/// for until Running (`CreateSync`).
fn alive_pod<'a>(s: &'a Session<'a>, prefix: &str, sleep: &str) -> Result<ApiPod<'a>, String> {
    let c = with_command(
        s,
        "main",
        &["--stdout", "container is alive", "--sleep", sleep],
    )?;
    let pod = ApiPod::create_spec(
        s,
        prefix,
        PodSpec {
            containers: vec![c],
            ..Default::default()
        },
    )?;
    pod.wait("to be Running", |p| {
        match p.pointer("/status/phase").and_then(Value::as_str) {
            Some("Running") => Ok(()),
            _ => Err(summary(p)),
        }
    })?;
    Ok(pod)
}

/// What upstream's exec test reads from a `channel.k8s.io` session: stdout's messages (the
/// first byte is the channel); a message of another channel with data fails the test, an
/// empty one is skipped. `Err` is upstream's message.
pub fn exec_stdout(messages: &[Vec<u8>]) -> Result<String, String> {
    let mut out = Vec::new();
    for m in messages {
        match m.split_first() {
            None => {}
            Some((1, data)) => out.extend_from_slice(data),
            Some((_, [])) => {}
            Some(_) => {
                return Err(format!(
                    "Got message from server that didn't start with channel 1 (STDOUT): {m:?}"
                ));
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Upstream's check of that output, retried: it must hold `remote execution test`.
pub fn exec_output_verdict(out: &str) -> Result<(), String> {
    if out.is_empty() {
        return Err("unexpected output from server".into());
    }
    if !out.contains("remote execution test") {
        return Err(format!(
            "expected to find 'remote execution test' in {out:?}"
        ));
    }
    Ok(())
}

fn exec_over_websockets(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let pod = match alive_pod(&s, "pod-exec-websocket", "600") {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("stderr", "1");
    query.append_pair("stdout", "1");
    query.append_pair("container", "main");
    for c in s.workload.command() {
        query.append_pair("command", &c);
    }
    query.append_pair("command", "--stdout");
    query.append_pair("command", "remote execution test");
    let path = format!("{}/exec?{}", pod.path(), query.finish());
    let until = Instant::now() + EXEC_WAIT;
    let seen = loop {
        // Upstream fails at once when the socket cannot be opened or read.
        let messages = match s
            .api
            .websocket_messages(&path, &["channel.k8s.io"], SESSION)
        {
            Ok(ws) => ws.messages,
            Err(e) => return r.fail_now(format!("Failed to open websocket to {path}: {e}")),
        };
        let attempt = exec_stdout(&messages)
            .and_then(|out| exec_output_verdict(&out).map(|()| format!("stdout {out:?}")));
        match attempt {
            Ok(d) => break Ok(d),
            Err(e) if e.starts_with("Got message") => break Err(e),
            Err(e) if Instant::now() + EXEC_POLL > until => break Err(e),
            Err(_) => std::thread::sleep(EXEC_POLL),
        }
    };
    match seen {
        Ok(d) => r.ok("exec", d),
        Err(e) => r.fail("exec", e),
    }
    r.finish(describe)
}

/// What upstream's log test keeps of a `binary.k8s.io` session: every message that is not
/// whitespace alone, joined.
pub fn websocket_log(messages: &[Vec<u8>]) -> String {
    let mut out = Vec::new();
    for m in messages {
        if !String::from_utf8_lossy(m).trim().is_empty() {
            out.extend_from_slice(m);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn logs_over_websockets(ctx: &Context) -> Outcome {
    let s = match session(ctx) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut r = Recorder::new();
    let pod = match alive_pod(&s, "pod-logs-websocket", "10000") {
        Ok(p) => p,
        Err(e) => return r.fail_now(e),
    };
    let path = format!("{}/log?container=main", pod.path());
    match s.api.websocket_messages(&path, &["binary.k8s.io"], SESSION) {
        Ok(ws) => match websocket_log(&ws.messages) {
            log if log == "container is alive\n" => r.ok("log", format!("{log:?}")),
            log => r.fail("log", format!("Unexpected websocket logs:\n{log}")),
        },
        Err(e) => r.fail("log", format!("Failed to open websocket to {path}: {e}")),
    }
    r.finish(describe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_output_is_stdout_alone() {
        let ok = exec_stdout(&[
            vec![],
            vec![2],
            vec![3],
            b"\x01remote execution test\n".to_vec(),
        ])
        .unwrap();
        assert_eq!(ok, "remote execution test\n");
        assert!(exec_output_verdict(&ok).is_ok());
        assert!(
            exec_stdout(&[b"\x02sh: not found".to_vec()])
                .unwrap_err()
                .contains("channel 1")
        );
        assert_eq!(
            exec_output_verdict("").unwrap_err(),
            "unexpected output from server"
        );
        assert!(exec_output_verdict("something else\n").is_err());
    }

    #[test]
    fn the_log_is_its_messages_without_blank_ones() {
        let log = websocket_log(&[vec![], b"container is alive\n".to_vec(), b"\n".to_vec()]);
        assert_eq!(log, "container is alive\n");
        let twice = websocket_log(&[
            b"container is alive\n".to_vec(),
            b"container is alive\n".to_vec(),
        ]);
        assert_ne!(twice, "container is alive\n");
    }
}
