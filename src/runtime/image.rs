//! The test image, made from the harness binary itself: one layer holding the binary, whose
//! entrypoint is `node-conformance workload`. It is assembled here as a `docker save` archive
//! and loaded into the runtime for the run, labelled with the run id, so no registry is needed
//! and nothing of it outlives the run.

use std::io::Read;
use std::path::Path;

use serde_json::json;
use sha2::{Digest, Sha256};

pub const LABEL: &str = "node-conformance.run";
const BINARY: &str = "node-conformance";

/// The architecture as an OCI platform names it.
pub fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    }
}

/// Reads the binary that will run inside containers and checks that it can: a scratch image
/// has no dynamic loader.
pub fn read_static_binary(path: &Path) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read the workload binary {}: {e}", path.display()))?;
    let elf = elf::ElfBytes::<elf::endian::AnyEndian>::minimal_parse(&bytes)
        .map_err(|e| format!("{} is not an ELF binary: {e}", path.display()))?;
    let dynamic = elf
        .segments()
        .is_some_and(|segs| segs.iter().any(|p| p.p_type == elf::abi::PT_INTERP));
    if dynamic {
        return Err(format!(
            "{} is dynamically linked and cannot run in the scratch test image; build the static \
             binary (scripts/build-images.sh, or RUSTFLAGS='-C target-feature=+crt-static') and \
             pass it with --workload-binary",
            path.display()
        ));
    }
    Ok(bytes)
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn append(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &str,
    mode: u32,
    data: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, data)
}

/// A `docker load` archive of the test image, tagged `tag`, labelled with the run id.
pub fn archive(binary: &[u8], tag: &str, run_id: &str) -> std::io::Result<Vec<u8>> {
    let mut layer = tar::Builder::new(Vec::new());
    append(&mut layer, BINARY, 0o755, binary)?;
    let layer = layer.into_inner()?;
    let layer_id = sha256_hex(&layer);
    let config = json!({
        "architecture": oci_arch(),
        "os": "linux",
        "config": {
            "Entrypoint": [format!("/{BINARY}"), "workload"],
            "Labels": { LABEL: run_id },
        },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{layer_id}")] },
    });
    let config = serde_json::to_vec(&config)?;
    let config_name = format!("{}.json", sha256_hex(&config));
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_name,
        "RepoTags": [tag],
        "Layers": [format!("{layer_id}/layer.tar")],
    }]))?;
    let mut out = tar::Builder::new(Vec::with_capacity(layer.len() + 4096));
    append(&mut out, &format!("{layer_id}/layer.tar"), 0o644, &layer)?;
    append(&mut out, &config_name, 0o644, &config)?;
    append(&mut out, "manifest.json", 0o644, &manifest)?;
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_holds_manifest_config_and_layer() {
        let bytes = archive(b"\x7fELF fake", "node-conformance-workload:abc", "abc").unwrap();
        let mut names = Vec::new();
        let mut manifest = String::new();
        let mut config = String::new();
        for entry in tar::Archive::new(bytes.as_slice()).entries().unwrap() {
            let mut e = entry.unwrap();
            let name = e.path().unwrap().to_string_lossy().to_string();
            if name == "manifest.json" {
                e.read_to_string(&mut manifest).unwrap();
            } else if name.ends_with(".json") {
                e.read_to_string(&mut config).unwrap();
            }
            names.push(name);
        }
        assert_eq!(names.len(), 3);
        assert!(manifest.contains("node-conformance-workload:abc"));
        assert!(
            config.contains(r#""node-conformance.run":"abc""#),
            "{config}"
        );
        assert!(
            config.contains(r#""Entrypoint":["/node-conformance","workload"]"#),
            "{config}"
        );
    }

    #[test]
    fn dynamic_binaries_are_refused_with_the_way_out() {
        // The test binary itself is dynamically linked unless built with crt-static.
        let me = std::env::current_exe().unwrap();
        if let Err(e) = read_static_binary(&me) {
            assert!(
                e.contains("dynamically linked") && e.contains("--workload-binary"),
                "{e}"
            );
        }
        let t = tempfile::NamedTempFile::new().unwrap();
        assert!(
            read_static_binary(t.path())
                .unwrap_err()
                .contains("not an ELF")
        );
    }
}
