//! Upstream's `TestContainerOutputRegexp` (test/e2e/framework/pod/output): a pod runs to its
//! end, which must be success, and the output of one of its containers, read through
//! `pods/log`, must match each expected regular expression somewhere (Go's
//! `regexp.MatchString`, as gomega's `MatchRegexp` does).

use serde_json::Value;

use crate::suite::functional::{ApiPod, summary};

/// The pod's end: `Ok` once Succeeded, `Err` naming the state once Failed; `None` while it
/// runs.
fn ended(pod: &Value) -> Option<Result<(), String>> {
    match pod.pointer("/status/phase").and_then(Value::as_str) {
        Some("Succeeded") => Some(Ok(())),
        Some("Failed") => Some(Err(format!("the pod failed: {}", summary(pod)))),
        _ => None,
    }
}

/// How an expectation is matched: upstream's `TestContainerOutput` looks for a substring
/// (gomega's `ContainSubstring`), `TestContainerOutputRegexp` for a regular expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matching {
    Substring,
    Regexp,
}

/// Which of `expected` `output` does not contain (`Substring`) or match (`Regexp`); `Err` for
/// one that is not a regular expression.
pub fn missing(output: &str, expected: &[String], how: Matching) -> Result<Vec<String>, String> {
    match how {
        Matching::Regexp => unmatched(output, expected),
        Matching::Substring => Ok(expected
            .iter()
            .filter(|e| !output.contains(e.as_str()))
            .cloned()
            .collect()),
    }
}

/// Which of `expected` (regular expressions) `output` does not match; `Err` for one that is
/// not a regular expression.
pub fn unmatched(output: &str, expected: &[String]) -> Result<Vec<String>, String> {
    let mut missing = Vec::new();
    for e in expected {
        let re = regex_lite::Regex::new(e).map_err(|err| format!("{e:?}: {err}"))?;
        if !re.is_match(output) {
            missing.push(e.clone());
        }
    }
    Ok(missing)
}

/// Waits for `pod` to succeed, then matches the output of its container `container`
/// against `expected`. `Ok` says what matched; `Err` says what did not, with the output.
pub(crate) fn container_output(
    pod: &ApiPod<'_>,
    container: &str,
    expected: &[String],
    how: Matching,
) -> Result<String, String> {
    let done = pod.wait("to succeed", |p| match ended(p) {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(e),
        None => Err(summary(p)),
    })?;
    ended(&done).unwrap_or(Ok(()))?;
    let output = pod.logs(container)?;
    let missing = missing(&output, expected, how)?;
    if missing.is_empty() {
        Ok(format!(
            "the output of {container} matches {}",
            expected.join(", ")
        ))
    } else {
        Err(format!(
            "the output of {container} does not match {}; it was:\n{output}",
            missing.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_expectation_matches_somewhere_in_the_output() {
        let out = "PATH=/bin\nPOD_NAME=downward-api-1\nPOD_IP=10.88.0.4\n";
        let want = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(
            unmatched(
                out,
                &want(&["POD_NAME=downward-api-1", "POD_IP=(?:\\d+)\\.(?:\\d+)"])
            )
            .unwrap()
            .is_empty()
        );
        assert_eq!(
            unmatched(out, &want(&["HOST_IP=.+"])).unwrap(),
            ["HOST_IP=.+"]
        );
        assert!(unmatched(out, &want(&["("])).is_err());
        assert!(
            ended(&serde_json::json!({"status": {"phase": "Failed"}}))
                .unwrap()
                .is_err()
        );
        assert!(ended(&serde_json::json!({"status": {"phase": "Running"}})).is_none());
    }
}
