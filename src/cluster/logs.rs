//! The results in a pod's log: what `run --keep-running` prints when the run ends, and what
//! `collect` reads back through the API server's pod log endpoint.
//!
//! A block of lines, so it survives the runtime's line-based log files (CRI splits lines over
//! 16 KiB; the kubelet joins them when it serves the log):
//!
//! ```text
//! node-conformance-results begin run=<run id> exit=<code> files=<n>
//! node-conformance-results error <one line>             (exit 2: no results)
//! node-conformance-results file <name> bytes=<n> sha256=<hex of the file>
//! <the file, gzip, base64 (standard alphabet), in lines of at most 4,096 characters>
//! node-conformance-results end
//! ```
//!
//! The last complete block in a log is the one read; the digest proves each file arrived whole.

use std::io::{Read, Write};

use base64::Engine;
use sha2::Digest;

const MARK: &str = "node-conformance-results";
const LINE: usize = 4096;
/// The largest file a block may carry once decompressed (results.json of a full run is a few
/// hundred KiB).
pub const MAX_FILE: u64 = 64 * 1024 * 1024;

/// A block read back from a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub run_id: String,
    /// The run's exit code: 0 all passed, 1 a test failed, 2 no results (see `error`).
    pub exit: i32,
    pub error: Option<String>,
    /// Each file's name and content, in the order written.
    pub files: Vec<(String, Vec<u8>)>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The block for a finished run. `error` is said on one line (line breaks become spaces).
pub fn encode(run_id: &str, exit: i32, error: Option<&str>, files: &[(&str, &[u8])]) -> String {
    let mut out = format!(
        "{MARK} begin run={run_id} exit={exit} files={}\n",
        files.len()
    );
    if let Some(e) = error {
        let one_line: String = e
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        out.push_str(&format!("{MARK} error {one_line}\n"));
    }
    for (name, bytes) in files {
        out.push_str(&format!(
            "{MARK} file {name} bytes={} sha256={}\n",
            bytes.len(),
            sha256_hex(bytes)
        ));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        // Writing to a Vec cannot fail.
        let compressed = gz
            .write_all(bytes)
            .and_then(|()| gz.finish())
            .unwrap_or_default();
        let text = base64::engine::general_purpose::STANDARD.encode(compressed);
        for chunk in text.as_bytes().chunks(LINE) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
    }
    out.push_str(&format!("{MARK} end\n"));
    out
}

fn field<'a>(words: &[&'a str], key: &str) -> Option<&'a str> {
    words
        .iter()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// The last complete block in a log: `None` when there is none (the run has not ended, or the
/// log was rotated away), an error when the last one is damaged (a digest or size that does not
/// match, base64 or gzip that does not decode, a file over [`MAX_FILE`]).
pub fn decode(log: &str) -> Option<Result<Block, String>> {
    let lines: Vec<&str> = log.lines().map(|l| l.trim_end_matches('\r')).collect();
    let end = lines.iter().rposition(|l| *l == format!("{MARK} end"))?;
    let begin_prefix = format!("{MARK} begin ");
    let begin = lines[..end]
        .iter()
        .rposition(|l| l.starts_with(&begin_prefix))?;
    Some(parse(&lines[begin..end]))
}

fn parse(lines: &[&str]) -> Result<Block, String> {
    let head: Vec<&str> = lines[0].split(' ').collect();
    let run_id = field(&head, "run").unwrap_or_default().to_string();
    let exit = field(&head, "exit")
        .and_then(|e| e.parse().ok())
        .ok_or_else(|| format!("no exit code in {:?}", lines[0]))?;
    let mut block = Block {
        run_id,
        exit,
        error: None,
        files: Vec::new(),
    };
    let error_prefix = format!("{MARK} error ");
    let file_prefix = format!("{MARK} file ");
    let mut i = 1;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if let Some(e) = line.strip_prefix(&error_prefix) {
            block.error = Some(e.to_string());
        } else if let Some(rest) = line.strip_prefix(&file_prefix) {
            let words: Vec<&str> = rest.split(' ').collect();
            let name = words.first().copied().unwrap_or_default().to_string();
            let bytes: u64 = field(&words, "bytes")
                .and_then(|b| b.parse().ok())
                .ok_or_else(|| format!("{name}: no size"))?;
            let digest = field(&words, "sha256").unwrap_or_default();
            let mut text = String::new();
            while i < lines.len() && !lines[i].starts_with(MARK) {
                text.push_str(lines[i].trim());
                i += 1;
            }
            let compressed = base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|e| format!("{name}: not base64: {e}"))?;
            let mut content = Vec::new();
            flate2::read::GzDecoder::new(compressed.as_slice())
                .take(MAX_FILE + 1)
                .read_to_end(&mut content)
                .map_err(|e| format!("{name}: not gzip: {e}"))?;
            if content.len() as u64 != bytes {
                return Err(format!(
                    "{name}: {} bytes where {bytes} were written",
                    content.len()
                ));
            }
            if sha256_hex(&content) != digest {
                return Err(format!("{name}: the sha256 digest does not match"));
            }
            block.files.push((name, content));
        }
    }
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_reads_back_from_a_log_with_other_lines() {
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let block = encode(
            "r1",
            1,
            None,
            &[("results.json", b"{\"a\": 1}\n"), ("junit_01.xml", &big)],
        );
        assert!(block.lines().all(|l| l.len() <= LINE));
        let log = format!("console line\n{}more console\n", block);
        let b = decode(&log).unwrap().unwrap();
        assert_eq!(
            (b.run_id.as_str(), b.exit, b.error.as_deref()),
            ("r1", 1, None)
        );
        assert_eq!(
            b.files[0],
            ("results.json".into(), b"{\"a\": 1}\n".to_vec())
        );
        assert_eq!(b.files[1].1, big);
        // CRLF line ends and a later block: the last one counts.
        let later = encode("r2", 2, Some("bad\nregex"), &[]);
        let b = decode(&format!("{}{later}", log.replace('\n', "\r\n")))
            .unwrap()
            .unwrap();
        assert_eq!((b.run_id.as_str(), b.exit), ("r2", 2));
        assert_eq!(b.error.as_deref(), Some("bad regex"));
        assert!(b.files.is_empty());
    }

    #[test]
    fn no_block_and_damaged_blocks_are_told_apart() {
        assert!(decode("just a console\n").is_none());
        let block = encode("r1", 0, None, &[("results.json", b"hello")]);
        // Cut before its end: not finished yet.
        let cut = &block[..block.len() - 30];
        assert!(decode(cut).is_none());
        let digest = sha256_hex(b"hello");
        let damaged = block.replace(&digest, &sha256_hex(b"other"));
        let e = decode(&damaged).unwrap().unwrap_err();
        assert!(e.contains("digest does not match"), "{e}");
        let lines: Vec<&str> = block.lines().collect();
        let bad_base64 = block.replace(lines[2], "!!!");
        assert!(
            decode(&bad_base64)
                .unwrap()
                .unwrap_err()
                .contains("not base64")
        );
    }
}
