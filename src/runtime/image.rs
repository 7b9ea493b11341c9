//! The test image, made from the harness binary itself: one layer holding the binary, whose
//! entrypoint is `node-conformance workload`. Its layer and config are made once, labelled
//! with the run id, and then either assembled as a `docker save` archive loaded into the
//! runtime for the run, or served by the run's registry (`super::registry`) for the image
//! pull tests; nothing of it outlives the run.

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

/// The test image's parts, made once from the binary and shared by the `docker save` archive
/// and the registry: the layer as chunks (the binary is shared, not copied, so the harness
/// holds it once), the config, and their digests.
#[derive(Debug, Clone)]
pub struct TestImage {
    /// The uncompressed layer tar, as chunks to stream: header, binary, padding, end blocks.
    layer: Vec<Bytes>,
    /// `sha256:<hex>` of the layer: its digest as a blob and its diff id alike, as it is not
    /// compressed.
    pub layer_digest: String,
    /// Bytes.
    pub layer_size: u64,
    /// The image config (JSON).
    pub config: Bytes,
    /// `sha256:<hex>` of [`TestImage::config`]: the image id.
    pub config_digest: String,
}

impl TestImage {
    /// The image of `binary`, labelled with `run_id`.
    pub fn new(binary: Bytes, run_id: &str) -> std::io::Result<Self> {
        let mut layer = entry(BINARY, 0o755, vec![binary])?;
        layer.push(Bytes::from(vec![0u8; 2 * BLOCK]));
        let mut hasher = Sha256::new();
        for chunk in &layer {
            hasher.update(chunk);
        }
        let layer_hex: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let layer_digest = format!("sha256:{layer_hex}");
        let config = json!({
            "architecture": oci_arch(),
            "os": "linux",
            "config": {
                "Entrypoint": [format!("/{BINARY}"), "workload"],
                // agnhost's default `pause`: what a container of the image does unless told.
                "Cmd": ["--pause"],
                "Labels": { LABEL: run_id },
            },
            "rootfs": { "type": "layers", "diff_ids": [&layer_digest] },
        });
        let config = Bytes::from(serde_json::to_vec(&config)?);
        Ok(Self {
            layer_size: layer.iter().map(|c| c.len() as u64).sum(),
            layer,
            layer_digest,
            config_digest: format!("sha256:{}", sha256_hex(&config)),
            config,
        })
    }

    /// The same image with the label `key`=`value` added to its config: another image id,
    /// the same layer.
    pub fn with_label(&self, key: &str, value: &str) -> std::io::Result<Self> {
        let mut config: serde_json::Value = serde_json::from_slice(&self.config)?;
        let labels = config
            .pointer_mut("/config/Labels")
            .and_then(serde_json::Value::as_object_mut)
            .ok_or_else(|| std::io::Error::other("the config has no labels"))?;
        labels.insert(key.to_string(), value.into());
        let config = Bytes::from(serde_json::to_vec(&config)?);
        Ok(Self {
            layer: self.layer.clone(),
            layer_digest: self.layer_digest.clone(),
            layer_size: self.layer_size,
            config_digest: digest(&config),
            config,
        })
    }

    /// The layer tar as chunks; cheap to clone.
    pub fn layer(&self) -> Vec<Bytes> {
        self.layer.clone()
    }

    fn layer_hex(&self) -> &str {
        self.layer_digest.trim_start_matches("sha256:")
    }

    /// A `docker load` archive of the image, tagged `tag`, as chunks to stream.
    pub fn archive(&self, tag: &str) -> std::io::Result<Vec<Bytes>> {
        let layer_name = format!("{}/layer.tar", self.layer_hex());
        let config_name = format!("{}.json", self.config_digest.trim_start_matches("sha256:"));
        let manifest = serde_json::to_vec(&json!([{
            "Config": config_name,
            "RepoTags": [tag],
            "Layers": [layer_name],
        }]))?;
        let mut out = entry(&layer_name, 0o644, self.layer())?;
        out.extend(entry(&config_name, 0o644, vec![self.config.clone()])?);
        out.extend(entry("manifest.json", 0o644, vec![Bytes::from(manifest)])?);
        out.push(Bytes::from(vec![0u8; 2 * BLOCK]));
        Ok(out)
    }

    /// The image's OCI manifest (image-spec v1.0, schemaVersion 2), which a registry serves
    /// with the media type [`OCI_MANIFEST`]: the config and the one uncompressed layer.
    pub fn manifest(&self) -> std::io::Result<Bytes> {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": self.config_digest, "size": self.config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": self.layer_digest, "size": self.layer_size}],
        });
        Ok(Bytes::from(serde_json::to_vec(&manifest)?))
    }
}

/// The media type of an OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// `sha256:<hex>` of `data`, as registries and image ids name content.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// A `docker load` archive of the test image made from `binary`, tagged `tag`, labelled with
/// the run id, as chunks to stream ([`TestImage::archive`]).
pub fn archive(binary: Bytes, tag: &str, run_id: &str) -> std::io::Result<Vec<Bytes>> {
    TestImage::new(binary, run_id)?.archive(tag)
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
