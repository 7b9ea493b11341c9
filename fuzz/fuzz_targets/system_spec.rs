//! A system spec (--system-spec), YAML or JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_conformance::spec::SysSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = SysSpec::parse(text, "fuzz.yaml") {
        let _ = spec.kernel_versions();
        let _ = spec.ignored_sections();
        // `node-conformance spec` prints a spec for users to edit and load again.
        let yaml = spec.to_yaml();
        match SysSpec::parse(&yaml, "printed.yaml") {
            Ok(again) => assert_eq!(again.to_yaml(), yaml),
            Err(e) => panic!("a loaded spec prints as YAML that does not load: {e}\n{yaml}"),
        }
    }
});
