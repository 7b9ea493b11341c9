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

/// Makes sure results can be written before any test runs: creates the directory and asks
/// the kernel whether this process may create files in it (which also answers no on a
/// read-only mount).
pub fn check_writable(dir: &Path) -> Result<(), String> {
    let fail = |e: io::Error| format!("result dir {} is not writable: {e}", dir.display());
    fs::create_dir_all(dir).map_err(fail)?;
    rustix::fs::access(
        dir,
        rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
    )
    .map_err(|e| fail(e.into()))
}

/// Moves an earlier run's results out of the way, so a run that dies cannot leave them looking
/// like its own. Returns the names they now have; delete them before the run ends (freeing a
/// file costs more than many tests, so that is done on the side while the tests run).
pub fn set_aside_stale(dir: &Path) -> Vec<PathBuf> {
    [JUNIT_FILE, JSON_FILE]
        .into_iter()
        .filter_map(|file| {
            let aside = dir.join(format!(".{file}.old{}", std::process::id()));
            fs::rename(dir.join(file), &aside).is_ok().then_some(aside)
        })
        .collect()
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
