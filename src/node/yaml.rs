//! YAML (and JSON, which is YAML) from the node and the user, parsed within a budget: what a
//! file expands to once parsed (aliases expanded, nesting) is bounded, not only its size.

/// The most YAML nodes (mappings, sequences and scalars, aliases expanded) a configuration
/// file may hold: a KubeletConfiguration holds a few hundred, a kubeconfig with a thousand
/// clusters about ten thousand.
pub const CONFIG_NODES: usize = 50_000;

/// Parser options allowing at most `max_nodes` nodes (and the events and anchor copies that
/// many nodes need), 64 levels of nesting (serde-saphyr's default), with the scalars of YAML 1.1
/// as Kubernetes reads node files (sigs.k8s.io/yaml over go-yaml v2, whose resolve.go gives
/// `yes`/`no`/`on`/`off`/`y`/`n` as booleans, serde-saphyr's default too, and a leading `0` as
/// octal: `0644` is 420).
pub fn options(max_nodes: usize) -> serde_saphyr::Options {
    serde_saphyr::options! {
        legacy_octal_numbers: true,
        budget: serde_saphyr::budget! {
            max_nodes: max_nodes,
            // Every node is an event or two; aliases replay their anchor's events.
            max_events: max_nodes.saturating_mul(4),
            max_recorded_anchor_events: max_nodes.saturating_mul(4),
            max_recorded_anchor_bytes: 4 << 20,
        },
    }
}

/// The same reading of scalars without a node budget beyond serde-saphyr's own: for the
/// control plane's request bodies, which kube-apiserver decodes with sigs.k8s.io/yaml too
/// (a body's size is bounded where it is read).
pub fn kubernetes() -> serde_saphyr::Options {
    serde_saphyr::options! {
        legacy_octal_numbers: true,
    }
}

/// A parser error on one line, without the source snippet; a breached budget says which
/// limit it was, as `over_budget` words it.
pub fn error(e: &serde_saphyr::Error, over_budget: impl FnOnce() -> String) -> String {
    let text = e.without_snippet().to_string();
    if text.contains("budget") {
        over_budget()
    } else {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// The message for a configuration file over [`CONFIG_NODES`].
pub fn config_over_budget() -> String {
    format!(
        "more than {CONFIG_NODES} YAML nodes (aliases expanded), more than a configuration file \
         holds in reason; not read"
    )
}

/// A configuration file's text as a JSON value, within [`CONFIG_NODES`].
pub fn config_value(text: &str) -> Result<serde_json::Value, String> {
    serde_saphyr::from_str_with_options(text, options(CONFIG_NODES))
        .map_err(|e| error(&e, config_over_budget))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alias_bomb_is_refused_within_the_budget() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = config_value(&bomb).unwrap_err();
        assert!(e.starts_with("more than 50000 YAML nodes"), "{e}");
        assert_eq!(
            config_value("kind: KubeletConfiguration\n").unwrap()["kind"],
            "KubeletConfiguration"
        );
        assert!(config_value("a: [\n").unwrap_err().contains("line"));
    }

    #[test]
    fn scalars_are_read_as_kubernetes_reads_them() {
        // go-yaml v2's resolution, which sigs.k8s.io/yaml hands the kubelet, kubeadm and the
        // static pod file source.
        let v = config_value(
            "failSwapOn: no\nserializeImagePulls: on\nprotectKernelDefaults: Yes\n\
             mode: 0644\nhex: 0x1F\nmany: 1_000\nplain: '0644'\nname: kubelet\n",
        )
        .unwrap();
        assert_eq!(v["failSwapOn"], false);
        assert_eq!(v["serializeImagePulls"], true);
        assert_eq!(v["protectKernelDefaults"], true);
        assert_eq!(v["mode"], 420);
        assert_eq!(v["hex"], 31);
        assert_eq!(v["many"], 1000);
        assert_eq!(v["plain"], "0644");
        assert_eq!(v["name"], "kubelet");
    }
}
