//! Running a command in a container as upstream's e2epod `ExecWithOptions` and
//! `ExecCommandInContainer` do: through `pods/exec` on the control plane, which hands the
//! stream to the kubelet. The harness speaks the websocket form, subprotocol
//! `v4.channel.k8s.io`: each message's first byte is its channel (0 stdin, 1 stdout,
//! 2 stderr, 3 error), and the error channel carries, once the command has ended, a
//! metav1.Status giving its exit code (staging/src/k8s.io/apiserver/pkg/util/wsstream and
//! kubelet's remotecommand `v4WriteStatusFunc`).

use std::time::Duration;

use serde_json::Value;

use crate::controlplane::client::Client;

/// The subprotocol of channels with an exit status.
pub const V4_CHANNELS: &str = "v4.channel.k8s.io";

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

/// The exit code a v4 error channel's Status gives: 0 for `Success`, the `ExitCode` cause's
/// number for `NonZeroExitCode`; `Err` is any other failure's message (the command could not
/// be started, the container is gone).
pub fn exit_code(status: &[u8]) -> Result<i32, String> {
    let s: Value = serde_json::from_slice(status).map_err(|e| {
        format!(
            "the error channel holds no Status ({e}): {:?}",
            String::from_utf8_lossy(status)
        )
    })?;
    match s.get("status").and_then(Value::as_str) {
        Some("Success") => return Ok(0),
        Some("Failure") => {}
        _ => return Err(format!("the error channel holds no Status: {s}")),
    }
    let message = s.get("message").and_then(Value::as_str).unwrap_or("");
    if s.get("reason").and_then(Value::as_str) == Some("NonZeroExitCode") {
        let code = s
            .pointer("/details/causes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| c.get("reason").and_then(Value::as_str) == Some("ExitCode"))
            .and_then(|c| c.get("message").and_then(Value::as_str))
            .and_then(|m| m.parse::<i32>().ok());
        return code.ok_or_else(|| format!("a nonzero exit without its code: {message}"));
    }
    Err(message.to_string())
}

/// The command's output and exit from a v4 session's messages, in order. An empty message,
/// or one of a channel byte alone, carries nothing (the server opens each channel so).
pub fn v4_output(messages: &[Vec<u8>]) -> Result<ExecOutput, String> {
    let (mut stdout, mut stderr, mut error) = (Vec::new(), Vec::new(), Vec::new());
    for m in messages {
        let Some((channel, data)) = m.split_first() else {
            continue;
        };
        match channel {
            1 => stdout.extend_from_slice(data),
            2 => stderr.extend_from_slice(data),
            3 => error.extend_from_slice(data),
            other => return Err(format!("a message on channel {other}, which is not output")),
        }
    }
    if error.is_empty() {
        return Err("the stream ended without the command's exit status".into());
    }
    Ok(ExecOutput {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        exit_code: exit_code(&error)?,
    })
}

/// Runs `command` in `container` of the pod at `pod_path` (`/api/v1/namespaces/ns/pods/p`),
/// stdout and stderr captured, no stdin, no tty; `deadline` bounds the whole session.
pub fn exec(
    api: &Client,
    pod_path: &str,
    container: &str,
    command: &[String],
    deadline: Duration,
) -> Result<ExecOutput, String> {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("container", container);
    query.append_pair("stdout", "true");
    query.append_pair("stderr", "true");
    for c in command {
        query.append_pair("command", c);
    }
    let ws = api
        .websocket_messages(
            &format!("{pod_path}/exec?{}", query.finish()),
            &[V4_CHANNELS],
            deadline,
        )
        .map_err(|e| e.to_string())?;
    if ws.protocol != V4_CHANNELS {
        return Err(format!(
            "the server chose subprotocol {:?}, not {V4_CHANNELS}",
            ws.protocol
        ));
    }
    v4_output(&ws.messages)
}

/// Upstream's `ExecCommandInContainer`: the command must succeed; its stdout, trimmed as
/// `ExecWithOptions` trims it, is the answer. `Err` says how it failed, with its stderr.
pub fn succeeded(out: Result<ExecOutput, String>, what: &str) -> Result<String, String> {
    match out {
        Ok(o) if o.exit_code == 0 => Ok(o.stdout.trim().to_string()),
        Ok(o) => Err(format!(
            "failed to execute {what}: command terminated with exit code {}; stderr {:?}",
            o.exit_code,
            o.stderr.trim()
        )),
        Err(e) => Err(format!("failed to execute {what}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(channel: u8, text: &str) -> Vec<u8> {
        let mut m = vec![channel];
        m.extend_from_slice(text.as_bytes());
        m
    }

    #[test]
    fn a_finished_command_gives_its_output_and_exit_code() {
        let ok = v4_output(&[
            vec![],
            vec![1],
            vec![2],
            vec![3],
            msg(1, "hello "),
            msg(2, "warn"),
            msg(1, "world\n"),
            msg(3, r#"{"metadata":{},"status":"Success"}"#),
        ])
        .unwrap();
        assert_eq!(
            ok,
            ExecOutput {
                stdout: "hello world\n".into(),
                stderr: "warn".into(),
                exit_code: 0
            }
        );
        let failed = v4_output(&[msg(
            3,
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [cat /x], exit code 1","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"1"}]}}"#,
        )])
        .unwrap();
        assert_eq!(failed.exit_code, 1);
    }

    #[test]
    fn a_session_without_a_status_or_with_a_failure_is_an_error() {
        assert!(
            v4_output(&[msg(1, "partial")])
                .unwrap_err()
                .contains("exit status")
        );
        assert_eq!(
            v4_output(&[msg(
                3,
                r#"{"status":"Failure","message":"container not found (\"c\")"}"#
            )])
            .unwrap_err(),
            "container not found (\"c\")"
        );
        assert!(v4_output(&[msg(3, "not json")]).is_err());
        assert!(v4_output(&[msg(7, "x")]).unwrap_err().contains("channel 7"));
        assert!(
            exit_code(br#"{"status":"Failure","reason":"NonZeroExitCode"}"#)
                .unwrap_err()
                .contains("without its code")
        );
    }

    #[test]
    fn only_a_zero_exit_is_success() {
        let out = |code, stdout: &str| {
            Ok(ExecOutput {
                stdout: stdout.into(),
                stderr: " oops\n".into(),
                exit_code: code,
            })
        };
        assert_eq!(succeeded(out(0, " a\n"), "cat").unwrap(), "a");
        assert!(
            succeeded(out(1, "a"), "cat")
                .unwrap_err()
                .contains("exit code 1; stderr \"oops\"")
        );
        assert!(succeeded(Err("refused".into()), "cat").is_err());
    }
}
