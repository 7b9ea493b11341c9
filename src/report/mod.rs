//! Reports of a run: the console as tests finish, `junit_01.xml` and `results.json`.

pub mod certs;
pub mod console;
pub mod json;
pub mod junit;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Facts about the run itself, carried into every report.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub version: String,
    /// The value of the `node-conformance.run` label on everything the run creates.
    pub run_id: String,
    pub hostname: String,
    pub rootfs: String,
    pub focus: String,
    pub skip: String,
    /// `built-in`, or the spec file's path.
    pub system_spec: String,
}

pub const JUNIT_FILE: &str = "junit_01.xml";
pub const JSON_FILE: &str = "results.json";

/// Makes sure results can be written before any test runs: creates the directory and writes
/// and removes a probe file.
pub fn check_writable(dir: &Path) -> Result<(), String> {
    let fail = |e: io::Error| format!("result dir {} is not writable: {e}", dir.display());
    fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(format!(".node-conformance-probe-{}", std::process::id()));
    fs::write(&probe, b"").map_err(fail)?;
    fs::remove_file(&probe).map_err(fail)
}

/// Writes a file through a temporary name and a rename, so a reader never sees half of it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = PathBuf::from(path);
    tmp.set_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}
