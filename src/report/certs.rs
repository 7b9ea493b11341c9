//! `node-conformance certs`: a kubeadm-like expiration table of the node's certificates.

use std::path::Path;

use crate::node::pki::{self, Cert};
use crate::node::rootfs::RootFs;
use crate::suite::pki::{Kind, ROWS};

const KUBECONFIGS: &[&str] = &[
    "admin.conf",
    "super-admin.conf",
    "controller-manager.conf",
    "scheduler.conf",
];

fn expires(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0).map_or_else(
        || ts.to_string(),
        |d| d.format("%b %d, %Y %H:%M UTC").to_string(),
    )
}

/// kubeadm's residual time: `364d`, `9y`, or `<invalid>` once expired.
fn residual(ts: i64, now: i64) -> String {
    let left = ts - now;
    if left <= 0 {
        return "<invalid>".into();
    }
    let days = left / 86_400;
    if days >= 365 {
        format!("{}y", days / 365)
    } else if days > 0 {
        format!("{days}d")
    } else {
        format!("{}h", left / 3600)
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The CA's short name: `ca`, `etcd-ca`, `front-proxy-ca`.
fn ca_name(file: &str) -> String {
    file.trim_end_matches(".crt").replace('/', "-")
}

fn kubeconfig_cert(root: &RootFs, path: &Path) -> Option<Result<Cert, String>> {
    match crate::node::kubeconfig::read(root, path) {
        Ok(None) => None,
        Ok(Some(k)) => Some(
            k.client_cert
                .unwrap_or_else(|| Err("no client certificate".to_string()))
                .and_then(|p| pki::parse_cert(&p.bytes)),
        ),
        Err(e) => Some(Err(e)),
    }
}

/// The two tables, as text.
pub fn render(root: &RootFs, pki_dir: &Path) -> String {
    let now = chrono::Utc::now().timestamp();
    let ca_key_present = |ca_file: &str| root.exists(pki_dir.join(ca_file).with_extension("key"));
    let mut leaves = Vec::new();
    let mut missing = Vec::new();
    for conf in KUBECONFIGS {
        let path = Path::new("/etc/kubernetes").join(conf);
        match kubeconfig_cert(root, &path) {
            Some(Ok(c)) => leaves.push(vec![
                (*conf).to_string(),
                expires(c.not_after),
                residual(c.not_after, now),
                "ca".into(),
                yes_no(!ca_key_present("ca.crt")).into(),
            ]),
            Some(Err(e)) => leaves.push(vec![
                (*conf).to_string(),
                format!("!UNREADABLE! {e}"),
                String::new(),
                "ca".into(),
                String::new(),
            ]),
            None => {}
        }
    }
    let mut cas = Vec::new();
    for row in ROWS {
        let path = pki_dir.join(row.file);
        let name = row.file.trim_end_matches(".crt").replace('/', "-");
        match pki::load_cert(root, &path).map(|f| f.cert) {
            None => missing.push(path.display().to_string()),
            Some(Err(e)) => leaves.push(vec![
                name,
                format!("!UNREADABLE! {e}"),
                String::new(),
                String::new(),
                String::new(),
            ]),
            Some(Ok(c)) if row.kind == Kind::Ca => cas.push(vec![
                ca_name(row.file),
                expires(c.not_after),
                residual(c.not_after, now),
                yes_no(!ca_key_present(row.file)).into(),
            ]),
            Some(Ok(c)) => {
                let parent = row.parent.unwrap_or("ca.crt");
                leaves.push(vec![
                    name,
                    expires(c.not_after),
                    residual(c.not_after, now),
                    ca_name(parent),
                    yes_no(!ca_key_present(parent)).into(),
                ]);
            }
        }
    }
    leaves.sort();
    let mut out = table(
        &[
            "CERTIFICATE",
            "EXPIRES",
            "RESIDUAL TIME",
            "CERTIFICATE AUTHORITY",
            "EXTERNALLY MANAGED",
        ],
        &leaves,
    );
    out.push('\n');
    out.push_str(&table(
        &[
            "CERTIFICATE AUTHORITY",
            "EXPIRES",
            "RESIDUAL TIME",
            "EXTERNALLY MANAGED",
        ],
        &cas,
    ));
    if !missing.is_empty() {
        out.push_str(&format!("\nnot on this node: {}\n", missing.join(", ")));
    }
    out
}

fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s: String = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}   "))
            .collect();
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(head.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residual_time_like_kubeadm() {
        assert_eq!(residual(100, 200), "<invalid>");
        assert_eq!(residual(86_400 * 364 + 10, 0), "364d");
        assert_eq!(residual(86_400 * 3650, 0), "10y");
        assert_eq!(residual(7200, 0), "2h");
    }
}
