//! Sonobuoy's worker contract, for `run` in a Sonobuoy plugin pod.
//!
//! Sonobuoy gives a plugin container `SONOBUOY=true` and `SONOBUOY_RESULTS_DIR` (the
//! plugin's `ResultsDir`, `/tmp/sonobuoy/results` by default; also `RESULTS_DIR` for older
//! plugins), and its worker sidecar waits for a file named `done` in that directory, whose
//! content is the path of the one result file to send to the aggregator
//! (vmware-tanzu/sonobuoy `pkg/worker` GatherResults, `pkg/client/gen.go` for the variables;
//! sonobuoy-plugins' `plugin-helper` Done writes a tarball of the directory and its path). A
//! `.tar.gz` is extracted by the aggregator, where `result-format: junit` reads the XML files.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::deploy::SONOBUOY_RESULTS_DIR;

/// The tarball the done file names.
pub const TARBALL: &str = "node-conformance.tar.gz";
/// What the done file names when the run made no results: the error, in a text file.
pub const ERROR_FILE: &str = "error.txt";
/// The file Sonobuoy's worker waits for.
pub const DONE_FILE: &str = "done";

/// The results directory when running under Sonobuoy: `SONOBUOY_RESULTS_DIR` when set and not
/// empty, else Sonobuoy's default when `SONOBUOY=true`; `None` outside Sonobuoy.
pub fn results_dir(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    match env("SONOBUOY_RESULTS_DIR") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => (env("SONOBUOY").as_deref() == Some("true")).then(|| SONOBUOY_RESULTS_DIR.into()),
    }
}

/// Writes `name` in `dir` whole or not at all (a temporary name, then a rename): the worker
/// polls for the done file and must never read it half written.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write {}: {e}", path.display())
        })?;
    Ok(path)
}

/// Ends the contract: a gzip tarball of `files` (name and content, at the tarball's top level)
/// in `dir`, then `dir/done` naming it; with no files, `error` in [`ERROR_FILE`] and `done`
/// naming that. Returns the path the done file holds.
///
/// Errors: a file that cannot be written, named with its path.
pub fn done(dir: &Path, files: &[(&str, &[u8])], error: Option<&str>) -> Result<PathBuf, String> {
    let result = if files.is_empty() {
        write_atomic(
            dir,
            ERROR_FILE,
            error.unwrap_or("the run made no results").as_bytes(),
        )?
    } else {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (name, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            );
            tar.append_data(&mut header, name, *bytes)
                .map_err(|e| format!("tarball: {e}"))?;
        }
        let mut gz = tar.into_inner().map_err(|e| format!("tarball: {e}"))?;
        gz.flush().map_err(|e| format!("tarball: {e}"))?;
        let bytes = gz.finish().map_err(|e| format!("tarball: {e}"))?;
        write_atomic(dir, TARBALL, &bytes)?
    };
    let absolute = if result.is_absolute() {
        result
    } else {
        std::env::current_dir()
            .map_err(|e| format!("current directory: {e}"))?
            .join(result)
    };
    write_atomic(dir, DONE_FILE, absolute.display().to_string().as_bytes())?;
    Ok(absolute)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_results_dir_comes_from_sonobuoys_variables() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_string())
            }
        };
        assert_eq!(
            results_dir(env(&[("SONOBUOY_RESULTS_DIR", "/x")])),
            Some("/x".into())
        );
        assert_eq!(
            results_dir(env(&[("SONOBUOY", "true")])),
            Some(SONOBUOY_RESULTS_DIR.into())
        );
        assert_eq!(results_dir(env(&[("SONOBUOY_RESULTS_DIR", "")])), None);
        assert_eq!(results_dir(env(&[])), None);
    }

    #[test]
    fn done_names_a_tarball_of_the_results() {
        let dir = tempfile::tempdir().unwrap();
        let path = done(
            dir.path(),
            &[("junit_01.xml", b"<testsuites/>"), ("results.json", b"{}")],
            None,
        )
        .unwrap();
        assert_eq!(path, dir.path().join(TARBALL));
        let named = std::fs::read_to_string(dir.path().join(DONE_FILE)).unwrap();
        assert_eq!(named, path.display().to_string());
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(
            std::fs::File::open(&path).unwrap(),
        ));
        let mut seen = Vec::new();
        for entry in tar.entries().unwrap() {
            let mut e = entry.unwrap();
            let mut text = String::new();
            e.read_to_string(&mut text).unwrap();
            seen.push((e.path().unwrap().display().to_string(), text));
        }
        assert_eq!(
            seen,
            [
                ("junit_01.xml".to_string(), "<testsuites/>".to_string()),
                ("results.json".into(), "{}".into())
            ]
        );
        let other = tempfile::tempdir().unwrap();
        let path = done(other.path(), &[], Some("bad FOCUS")).unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), "bad FOCUS");
    }
}
