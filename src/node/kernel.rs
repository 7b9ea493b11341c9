//! Kernel facts: its name, release and build configuration.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use super::rootfs::{FileKind, FsError, RootFs};

/// The kernel's name (`Linux`), as `uname -s` reports it.
pub fn os_type(root: &RootFs) -> Result<String, FsError> {
    Ok(root
        .read_to_string("/proc/sys/kernel/ostype", FileKind::Kernel)?
        .trim()
        .to_string())
}

/// The kernel release (`6.1.0-18-amd64`), as `uname -r` reports it.
pub fn release(root: &RootFs) -> Result<String, FsError> {
    Ok(root
        .read_to_string("/proc/sys/kernel/osrelease", FileKind::Kernel)?
        .trim()
        .to_string())
}

/// Where a kernel's build configuration may be found, in the order upstream tries them.
pub fn config_locations(release: &str) -> Vec<PathBuf> {
    let r = release;
    [
        "/proc/config.gz".to_string(),
        format!("/boot/config-{r}"),
        format!("/usr/src/linux-{r}/.config"),
        "/usr/src/linux/.config".to_string(),
        format!("/usr/lib/modules/{r}/config"),
        format!("/usr/lib/ostree-boot/config-{r}"),
        format!("/usr/lib/kernel/config-{r}"),
        format!("/usr/src/linux-headers-{r}/.config"),
        format!("/lib/modules/{r}/build/.config"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

/// The state of one option in a kernel configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tristate {
    BuiltIn,
    Module,
    /// `=n`, or `# CONFIG_X is not set`.
    Disabled,
}

/// A parsed kernel configuration and where it came from.
#[derive(Debug, Clone)]
pub struct KernelConfig {
    pub source: PathBuf,
    /// Keyed by the full name, `CONFIG_` included: the tristate options the caller asked to
    /// keep. A kernel config holds thousands; a spec asks for a few dozen.
    pub options: HashMap<String, Tristate>,
}

impl KernelConfig {
    pub fn get(&self, name: &str) -> Option<Tristate> {
        self.options.get(name).copied()
    }
}

/// What happened at one place a kernel config was looked for.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub path: PathBuf,
    pub problem: String,
}

/// No usable kernel config: every place tried, with what was wrong at each.
#[derive(Debug, Clone)]
pub struct ConfigNotFound {
    pub attempts: Vec<Attempt>,
}

/// The first kernel configuration that exists and decodes, in upstream's order: where it
/// was found, and its text.
pub fn find_config(root: &RootFs, release: &str) -> Result<(PathBuf, Vec<u8>), ConfigNotFound> {
    let mut attempts = Vec::new();
    for path in config_locations(release) {
        let problem = match root.read(&path, FileKind::KernelConfig) {
            Ok(bytes) => match decode(bytes) {
                Ok(text) => return Ok((path, text)),
                Err(e) => e,
            },
            Err(e) if e.is_not_found() => "not present".to_string(),
            Err(e) => e.reason().to_string(),
        };
        attempts.push(Attempt { path, problem });
    }
    Err(ConfigNotFound { attempts })
}

/// Plain text, or gzip when the bytes say so (whatever the file is called).
pub fn decode(bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    decode_capped(bytes, FileKind::KernelConfig.cap())
}

/// [`decode`] with the decompressed size capped at `cap` bytes.
fn decode_capped(bytes: Vec<u8>, cap: u64) -> Result<Vec<u8>, String> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    // The gzip trailer's last four bytes are the uncompressed size (mod 4 GiB): one allocation
    // instead of a doubling series, bounded in case the trailer lies.
    let size = bytes
        .len()
        .checked_sub(4)
        .and_then(|at| bytes.get(at..))
        .and_then(|t| t.try_into().ok())
        .map_or(0, |t: [u8; 4]| u32::from_le_bytes(t) as usize);
    // The cap holds for the decompressed text too: a small gzip bomb must not cost gigabytes.
    let mut out = Vec::with_capacity(size.clamp(bytes.len(), cap as usize) + 1);
    flate2::read::GzDecoder::new(bytes.as_slice())
        .take(cap + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("not a readable gzip file: {e}"))?;
    if out.len() as u64 > cap {
        return Err(format!(
            "decompresses to more than {} MiB, the most the harness reads of a kernel config; not read",
            cap >> 20
        ));
    }
    Ok(out)
}

/// Parses `CONFIG_X=y|m|n` and `# CONFIG_X is not set` lines, keeping the options `keep`
/// accepts; everything else is ignored. Bytes, not text: a stray non-UTF-8 comment must not
/// cost the whole config.
pub fn parse_config(text: &[u8], keep: impl Fn(&str) -> bool) -> HashMap<String, Tristate> {
    let mut options = HashMap::new();
    for line in text.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        let (name, state) = if let Some(rest) = line.strip_prefix(b"# ") {
            match rest.strip_suffix(b" is not set") {
                Some(name) => (name, Tristate::Disabled),
                None => continue,
            }
        } else {
            let Some(eq) = line.iter().position(|&b| b == b'=') else {
                continue;
            };
            let state = match line.get(eq + 1) {
                Some(b'y') => Tristate::BuiltIn,
                Some(b'm') => Tristate::Module,
                Some(b'n') => Tristate::Disabled,
                _ => continue,
            };
            (&line[..eq], state)
        };
        if let Some(name) = option_name(name)
            && keep(name)
        {
            options.insert(name.to_string(), state);
        }
    }
    options
}

fn option_name(name: &[u8]) -> Option<&str> {
    let rest = name.strip_prefix(b"CONFIG_")?;
    let valid = !rest.is_empty()
        && rest
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_');
    // All ASCII, so this cannot fail.
    valid.then(|| std::str::from_utf8(name).ok()).flatten()
}

/// The leading `major.minor` of a kernel release, when it has one.
pub fn major_minor(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parses_tristates_and_ignores_the_rest() {
        let text = "#\n# comment\nCONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D=n\n\
                    CONFIG_E=\"str\"\nCONFIG_F=42\n  CONFIG_G=y  \nconfig_h=y\nCONFIG_=y\n";
        let o = parse_config(text.as_bytes(), |_| true);
        assert!(parse_config(text.as_bytes(), |n| n == "CONFIG_B").len() == 1);
        assert_eq!(o.get("CONFIG_A"), Some(&Tristate::BuiltIn));
        assert_eq!(o.get("CONFIG_B"), Some(&Tristate::Module));
        assert_eq!(o.get("CONFIG_C"), Some(&Tristate::Disabled));
        assert_eq!(o.get("CONFIG_D"), Some(&Tristate::Disabled));
        assert_eq!(o.get("CONFIG_G"), Some(&Tristate::BuiltIn));
        assert_eq!(o.len(), 5, "{o:?}");
    }

    #[test]
    fn decodes_gzip_by_content() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"CONFIG_A=y\n").unwrap();
        let bytes = gz.finish().unwrap();
        assert_eq!(decode(bytes).unwrap(), b"CONFIG_A=y\n");
        assert_eq!(decode(b"CONFIG_A=m\n".to_vec()).unwrap(), b"CONFIG_A=m\n");
        assert!(
            decode(vec![0x1f, 0x8b, 0, 1, 2])
                .unwrap_err()
                .contains("gzip")
        );
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_cap() {
        // 4 MiB of zeros is a few KiB of gzip; the trailer's size is also a lie here. The
        // cap is lowered to 1 MiB so the test stays fast; `decode` uses the kind's 16 MiB.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&vec![0u8; 4 << 20]).unwrap();
        let honest = gz.finish().unwrap();
        assert!(honest.len() < 64 << 10);
        assert_eq!(
            decode_capped(honest.clone(), 4 << 20).unwrap().len(),
            4 << 20
        );
        let mut lying = honest;
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = decode_capped(lying, 1 << 20).unwrap_err();
        assert!(err.contains("decompresses to more than 1 MiB"), "{err}");
    }

    #[test]
    fn locations_follow_upstream_order() {
        let l = config_locations("6.1.0");
        assert_eq!(l.len(), 9);
        assert_eq!(l[0], PathBuf::from("/proc/config.gz"));
        assert_eq!(l[1], PathBuf::from("/boot/config-6.1.0"));
        assert_eq!(l[8], PathBuf::from("/lib/modules/6.1.0/build/.config"));
    }

    #[test]
    fn major_minor_of_releases() {
        assert_eq!(major_minor("6.18.44-fc-v657"), Some((6, 18)));
        assert_eq!(major_minor("5.4.0"), Some((5, 4)));
        assert_eq!(major_minor("garbage"), None);
    }
}
