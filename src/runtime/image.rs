//! The test image, made from the harness binary itself: one layer holding the binary, whose
//! entrypoint is `node-conformance workload`. It is assembled here as a `docker save` archive
//! and loaded into the runtime for the run, labelled with the run id, so no registry is needed
//! and nothing of it outlives the run.

use std::path::Path;

use bytes::Bytes;
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
pub fn read_static_binary(path: &Path) -> Result<Bytes, String> {
    let bytes =
        crate::node::rootfs::read_local(path, crate::node::rootfs::FileKind::WorkloadBinary)
            .map_err(|e| {
                format!(
                    "cannot read the workload binary {}: {}",
                    path.display(),
                    e.reason()
                )
            })?;
    let elf = elf::ElfBytes::<elf::endian::AnyEndian>::minimal_parse(&bytes)
        .map_err(|e| format!("{} is not an ELF binary: {e}", path.display()))?;
    let dynamic = elf
        .segments()
        .is_some_and(|segs| segs.iter().any(|p| p.p_type == elf::abi::PT_INTERP));
    if dynamic {
        return Err(format!(
            "{} is dynamically linked and cannot run in the scratch test image; build the static \
             binary (every build with this project's cargo configuration is) and pass it with \
             --workload-binary",
            path.display()
        ));
    }
    Ok(Bytes::from(bytes))
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const BLOCK: usize = 512;

/// A tar header for a regular file, as 512 bytes.
fn header(path: &str, size: usize, mode: u32) -> std::io::Result<Bytes> {
    let mut h = tar::Header::new_gnu();
    h.set_path(path)?;
    h.set_size(size as u64);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(Bytes::copy_from_slice(h.as_bytes()))
}

/// Zeros up to the next block boundary after `size` bytes.
fn padding(size: usize) -> Bytes {
    Bytes::from(vec![0u8; (BLOCK - size % BLOCK) % BLOCK])
}

/// One tar entry as chunks: header, data, padding.
fn entry(path: &str, mode: u32, data: Vec<Bytes>) -> std::io::Result<Vec<Bytes>> {
    let size: usize = data.iter().map(Bytes::len).sum();
    let mut out = vec![header(path, size, mode)?];
    out.extend(data);
    out.push(padding(size));
    Ok(out)
}

/// A `docker load` archive of the test image, tagged `tag`, labelled with the run id, as
/// chunks to stream: the binary is shared, not copied, so the harness holds it once.
pub fn archive(binary: Bytes, tag: &str, run_id: &str) -> std::io::Result<Vec<Bytes>> {
    let mut layer = entry(BINARY, 0o755, vec![binary])?;
    layer.push(Bytes::from(vec![0u8; 2 * BLOCK]));
    let mut hasher = Sha256::new();
    for chunk in &layer {
        hasher.update(chunk);
    }
    let layer_id: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let config = json!({
        "architecture": oci_arch(),
        "os": "linux",
        "config": {
            "Entrypoint": [format!("/{BINARY}"), "workload"],
            // agnhost's default `pause`: what a container of the image does unless told.
            "Cmd": ["--pause"],
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
    let mut out = entry(&format!("{layer_id}/layer.tar"), 0o644, layer)?;
    out.extend(entry(&config_name, 0o644, vec![Bytes::from(config)])?);
    out.extend(entry("manifest.json", 0o644, vec![Bytes::from(manifest)])?);
    out.push(Bytes::from(vec![0u8; 2 * BLOCK]));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn archive_holds_manifest_config_and_layer() {
        let chunks = archive(
            Bytes::from_static(b"\x7fELF fake"),
            "node-conformance-workload:abc",
            "abc",
        )
        .unwrap();
        let bytes: Vec<u8> = chunks.concat();
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
        // The system's own tools are dynamically linked.
        let dynamic = Path::new("/bin/true");
        if let Err(e) = read_static_binary(dynamic) {
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
