//! `fleet.xml`: JUnit, one `<testsuite>` per node (named by its hostname), every test a
//! `<testcase>`: passed, failed with its message and failed checks, or skipped with the
//! reason. Written as it goes: a fleet's file is tens of MB, never held whole.

use std::io::{self, Write};

use super::{Fleet, NodeRun, Verdict};

/// Writes the whole document to `w`. Errors are `w`'s.
pub fn write(fleet: &Fleet, w: &mut impl Write) -> io::Result<()> {
    let (mut tests, mut failures, mut skipped, mut time) = (0, 0, 0, 0.0);
    for n in &fleet.nodes {
        tests += n.counts.tests;
        failures += n.counts.failed;
        skipped += n.counts.skipped;
        time += n.duration;
    }
    write!(
        w,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"node-conformance fleet\" \
         tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\">\n"
    )?;
    // Every node runs the same tests and most share their messages: each is escaped once.
    let mut escaped = Escaped {
        tests: fleet
            .tests
            .iter()
            .map(|t| {
                let mut out = b"    <testcase name=\"".to_vec();
                escape(&mut out, &t.name, true)?;
                out.extend_from_slice(b"\" classname=\"");
                escape(&mut out, &t.area, true)?;
                Ok(out)
            })
            .collect::<io::Result<_>>()?,
        attr: vec![None; fleet.strings.len()],
        text: vec![None; fleet.strings.len()],
    };
    for node in &fleet.nodes {
        suite(fleet, node, &mut escaped, w)?;
    }
    w.write_all(b"</testsuites>\n")
}

/// Escaped forms, made on first use: each test's `<testcase name=".." classname=".."`
/// opening, and interned strings as attribute values and as text.
struct Escaped {
    tests: Vec<Vec<u8>>,
    attr: Vec<Option<Box<[u8]>>>,
    text: Vec<Option<Box<[u8]>>>,
}

fn cached<'c>(
    cache: &'c mut [Option<Box<[u8]>>],
    fleet: &Fleet,
    id: u32,
    attr: bool,
) -> io::Result<&'c [u8]> {
    let Some(slot) = cache.get_mut(id as usize) else {
        return Ok(b"");
    };
    if slot.is_none() {
        let mut out = Vec::new();
        escape(&mut out, fleet.strings.get(id), attr)?;
        *slot = Some(out.into_boxed_slice());
    }
    Ok(slot.as_deref().unwrap_or_default())
}

fn suite(
    fleet: &Fleet,
    node: &NodeRun,
    escaped: &mut Escaped,
    w: &mut impl Write,
) -> io::Result<()> {
    let c = node.counts;
    w.write_all(b"  <testsuite name=\"")?;
    escape(w, &node.hostname, true)?;
    write!(
        w,
        "\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\" timestamp=\"",
        c.tests, c.failed, c.skipped, node.duration
    )?;
    escape(w, &node.started, true)?;
    w.write_all(b"\" hostname=\"")?;
    escape(w, &node.hostname, true)?;
    w.write_all(b"\">\n    <properties>\n")?;
    let f = &node.facts;
    let runtime = f.container_runtime.as_ref().map(|r| match &r.version {
        Some(v) => format!("{} {v}", r.name),
        None => r.name.clone(),
    });
    let source = node.source.display().to_string();
    for (name, value) in [
        ("results", Some(source.as_str())),
        ("run-id", Some(node.run_id.as_str())),
        ("version", Some(node.version.as_str())),
        ("kernel-release", f.kernel_release.as_deref()),
        ("os", f.os.as_deref()),
        ("container-runtime", runtime.as_deref()),
        ("kubelet-version", f.kubelet_version.as_deref()),
        ("architecture", f.architecture.as_deref()),
    ] {
        let Some(value) = value else { continue };
        write!(w, "      <property name=\"{name}\" value=\"")?;
        escape(w, value, true)?;
        w.write_all(b"\"/>\n")?;
    }
    w.write_all(b"    </properties>\n")?;
    for case in &node.cases {
        if let Some(open) = escaped.tests.get(case.test as usize) {
            w.write_all(open)?;
        }
        write!(w, "\" time=\"{:.3}\"", case.duration)?;
        match case.verdict {
            Verdict::Passed => w.write_all(b"/>\n")?,
            Verdict::Failed => {
                w.write_all(b">\n      <failure type=\"Failure\" message=\"")?;
                w.write_all(cached(&mut escaped.attr, fleet, case.message, true)?)?;
                w.write_all(b"\">")?;
                w.write_all(cached(&mut escaped.text, fleet, case.message, false)?)?;
                if case.checks != 0 {
                    w.write_all(b"\n")?;
                    w.write_all(cached(&mut escaped.text, fleet, case.checks, false)?)?;
                }
                w.write_all(b"</failure>\n    </testcase>\n")?;
            }
            Verdict::Skipped => {
                w.write_all(b">\n      <skipped message=\"")?;
                w.write_all(cached(&mut escaped.attr, fleet, case.message, true)?)?;
                w.write_all(b"\"/>\n    </testcase>\n")?;
            }
        }
    }
    w.write_all(b"  </testsuite>\n")
}

/// Writes `s` as XML text (`attr`: as an attribute value in double quotes). Markup characters
/// are escaped; characters XML 1.0 cannot hold (controls other than tab, newline and carriage
/// return; U+FFFE, U+FFFF) are dropped, so the file stays well-formed whatever a node wrote.
/// In attributes, tab, newline and carriage return are written as references, which keeps them
/// through attribute normalisation; in text, a carriage return is, which keeps it through
/// end-of-line normalisation.
pub fn escape(w: &mut impl Write, s: &str, attr: bool) -> io::Result<()> {
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    // Most text needs nothing: skip to the next byte that may.
    while let Some(next) = b[i..]
        .iter()
        .position(|&c| c < 0x20 || matches!(c, b'&' | b'<' | b'>' | b'"' | 0xEF))
    {
        i += next;
        let c = b[i];
        let (skip, replacement): (usize, Option<&[u8]>) = match c {
            b'&' => (1, Some(b"&amp;")),
            b'<' => (1, Some(b"&lt;")),
            b'>' => (1, Some(b"&gt;")),
            b'"' if attr => (1, Some(b"&quot;")),
            b'\r' => (1, Some(b"&#13;")),
            b'\n' if attr => (1, Some(b"&#10;")),
            b'\t' if attr => (1, Some(b"&#9;")),
            b'\n' | b'\t' => (0, None),
            0..0x20 => (1, Some(b"")),
            // U+FFFE and U+FFFF are EF BF BE and EF BF BF in UTF-8.
            0xEF if b.get(i + 1) == Some(&0xBF) && matches!(b.get(i + 2), Some(0xBE | 0xBF)) => {
                (3, Some(b""))
            }
            _ => (0, None),
        };
        match replacement {
            Some(r) => {
                w.write_all(&b[start..i])?;
                w.write_all(r)?;
                i += skip;
                start = i;
            }
            None => i += 1,
        }
    }
    w.write_all(&b[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str, attr: bool) -> String {
        let mut out = Vec::new();
        escape(&mut out, s, attr).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn markup_is_escaped_and_what_xml_cannot_hold_dropped() {
        assert_eq!(
            esc("a<b>&\"c\" ]]> \x1b[31m\x07é\u{fffe}\u{ffff}\u{fffd}", true),
            "a&lt;b&gt;&amp;&quot;c&quot; ]]&gt; [31mé\u{fffd}"
        );
        assert_eq!(esc("l1\nl2\r\n\tx\"", false), "l1\nl2&#13;\n\tx\"");
        assert_eq!(esc("l1\nl2\t", true), "l1&#10;l2&#9;");
    }
}
