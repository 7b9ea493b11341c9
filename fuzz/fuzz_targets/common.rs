//! What the targets share: one input holding several files, and a root to put them under.

// Not every target uses every helper.
#![allow(dead_code)]

use std::path::Path;

/// Between the files (or requests) of one input: a line unlikely in any of them, so a seed
/// made by joining real files splits back into those files.
pub const SEPARATOR: &[u8] = b"\n--8<--\n";

/// The first `N - 1` separated parts and the rest; missing parts are empty.
pub fn parts<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut out = [&data[..0]; N];
    let mut rest = data;
    for slot in out.iter_mut().take(N - 1) {
        match find(rest, SEPARATOR) {
            Some(at) => {
                *slot = &rest[..at];
                rest = &rest[at + SEPARATOR.len()..];
            }
            None => {
                *slot = rest;
                rest = &rest[rest.len()..];
                break;
            }
        }
    }
    if let Some(last) = out.last_mut()
        && !rest.is_empty()
    {
        *last = rest;
    }
    out
}

/// Every separated part.
pub fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(at) = find(rest, SEPARATOR) {
        out.push(&rest[..at]);
        rest = &rest[at + SEPARATOR.len()..];
    }
    out.push(rest);
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A scratch node root for this process, reused by every input: files are rewritten, never
/// left from an earlier input unless the target means them to be.
pub fn scratch_root() -> &'static Path {
    static ROOT: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| tempfile::tempdir().expect("a temporary directory for the node root"))
        .path()
}

/// Writes `bytes` at `path` under `root`, or removes the file when `bytes` is empty, so an
/// input can also mean "this file is absent".
pub fn put(root: &Path, path: &str, bytes: &[u8]) {
    let full = root.join(path.trim_start_matches('/'));
    if bytes.is_empty() {
        let _ = std::fs::remove_file(&full);
        return;
    }
    if let Some(dir) = full.parent() {
        std::fs::create_dir_all(dir).expect("the scratch root is writable");
    }
    std::fs::write(&full, bytes).expect("the scratch root is writable");
}
