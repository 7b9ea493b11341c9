//! Chunked lists (`limit` and `continue`), as kube-apiserver's etcd3 storage answers them
//! (k8s.io/apiserver pkg/storage/etcd3/store.go `list`, `encodeContinue`, `decodeContinue`):
//!
//! - A page holds at most `limit` matching objects, in key order. The objects that do not
//!   match a selector are skipped without counting, so a page may have read further.
//! - When keys remain after the last one read, the list carries `metadata.continue`: base64
//!   (URL alphabet, no padding) of `{"v":"meta.k8s.io/v1","rv":RV,"start":"KEY\u0000"}`, the
//!   key relative to the resource's prefix (`name`, or `namespace/name` across namespaces),
//!   and, without selectors, `remainingItemCount`: the keys after the page.
//! - Every page of a list is read at the version of the first (`rv` of the token), so the
//!   pages add up to one consistent list; a token whose version is older than the store keeps
//!   is 410 Expired. A token of version -1 continues at the latest version.

use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::selector::Selector;
use super::store::Stored;

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// What a continue token holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    #[serde(rename = "v", default)]
    pub version: String,
    /// The version the list is read at; -1 for the latest.
    #[serde(rename = "rv", default)]
    pub rv: i64,
    /// The first key to read, relative to the resource's prefix.
    #[serde(rename = "start", default)]
    pub start: String,
}

/// The token of a list read at `rv` that continues at key `start` (the last key read and a
/// NUL: the next key there can be).
pub fn encode(start: &str, rv: i64) -> String {
    let token = Token {
        version: TOKEN_VERSION.into(),
        rv,
        start: start.to_string(),
    };
    let text = serde_json::to_string(&token).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// A client's token, or why it is not one (upstream's `continue key is not valid: ...`, which
/// kube-apiserver answers as 400 `invalid continue token: ...`).
pub fn decode(text: &str) -> Result<Token, String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| format!("continue key is not valid: {e}"))?;
    // Go decodes an object into the token's struct, nothing else.
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("continue key is not valid: {e}"))?;
    if !value.is_object() {
        return Err(format!(
            "continue key is not valid: json: cannot unmarshal {value} into Go value of type etcd3.continueToken"
        ));
    }
    let token: Token =
        serde_json::from_value(value).map_err(|e| format!("continue key is not valid: {e}"))?;
    if token.version != TOKEN_VERSION {
        return Err(format!(
            "continue key is not valid: server does not recognize this encoded version {:?}",
            token.version
        ));
    }
    if token.rv == 0 {
        return Err(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
                .into(),
        );
    }
    if token.start.is_empty() {
        return Err(
            "continue key is not valid: encoded start key empty (version meta.k8s.io/v1)".into(),
        );
    }
    // Upstream cleans the key as a path and refuses one that cleaning changes, so a token
    // cannot reach outside the resource's keys (`../`).
    let rooted = if token.start.starts_with('/') {
        token.start.clone()
    } else {
        format!("/{}", token.start)
    };
    if clean(&rooted) != rooted {
        return Err(format!("continue key is not valid: {}", token.start));
    }
    Ok(Token {
        start: rooted[1..].to_string(),
        ..token
    })
}

/// Go's `path.Clean` of a rooted path: no empty, `.` or `..` elements, no trailing slash.
fn clean(rooted: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in rooted.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// One page of a list.
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Arc<str>>,
    /// Where the next page starts (the last key read and a NUL), when keys remain after it.
    pub next_start: Option<String>,
    /// How many keys remain after the page, when the list has no selector.
    pub remaining: Option<i64>,
}

/// The page of `all` (every object of the list, in key order, with its relative key) that
/// starts at key `from` and holds at most `limit` objects matching `sel`.
pub fn page(all: &[(String, Stored)], from: &str, limit: usize, sel: &Selector) -> Page {
    let start = all.partition_point(|(k, _)| k.as_bytes() < from.as_bytes());
    let rest = &all[start..];
    let mut out = Page::default();
    let mut last = None;
    for (i, (_, obj)) in rest.iter().enumerate() {
        if out.items.len() >= limit {
            break;
        }
        last = Some(i);
        if sel.matches_stored(obj) {
            out.items.push(Arc::clone(&obj.json));
        }
    }
    if let Some(i) = last
        && i + 1 < rest.len()
        && out.items.len() >= limit
    {
        out.next_start = Some(format!("{}\0", rest[i].0));
        if sel.is_empty() {
            out.remaining = Some((rest.len() - limit) as i64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_round_trip_and_bad_ones_say_why() {
        let t = encode("ns/p1\0", 42);
        assert!(!t.contains('=') && !t.contains('+') && !t.contains('/'));
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&t)
            .unwrap();
        assert_eq!(
            String::from_utf8(raw).unwrap(),
            r#"{"v":"meta.k8s.io/v1","rv":42,"start":"ns/p1\u0000"}"#
        );
        assert_eq!(
            decode(&t).unwrap(),
            Token {
                version: TOKEN_VERSION.into(),
                rv: 42,
                start: "ns/p1\0".into()
            }
        );
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        for (token, why) in [
            ("!!!".to_string(), "continue key is not valid: Invalid"),
            (enc("[]"), "cannot unmarshal [] into Go value"),
            (
                enc(r#"{"v":"x","rv":1,"start":"a"}"#),
                "encoded version \"x\"",
            ),
            (
                enc(r#"{"v":"meta.k8s.io/v1","start":"a"}"#),
                "incorrect encoded start resourceVersion",
            ),
            (
                enc(r#"{"v":"meta.k8s.io/v1","rv":3}"#),
                "encoded start key empty",
            ),
            (
                enc(r#"{"v":"meta.k8s.io/v1","rv":3,"start":"../x"}"#),
                "not valid: ../x",
            ),
        ] {
            let e = decode(&token).unwrap_err();
            assert!(e.contains(why), "{token}: {e}");
        }
        // Latest-version tokens (-1, from a 410) are tokens.
        assert_eq!(decode(&encode("a\0", -1)).unwrap().rv, -1);
    }

    fn stored(name: &str, app: &str) -> (String, Stored) {
        let obj = json!({"metadata": {"name": name, "labels": {"app": app}}});
        (name.to_string(), Stored::new("pods", &obj))
    }

    #[test]
    fn pages_count_matches_and_continue_while_keys_remain() {
        let all: Vec<_> = [("a", "x"), ("b", "y"), ("c", "x"), ("d", "y"), ("e", "y")]
            .iter()
            .map(|(n, a)| stored(n, a))
            .collect();
        let every = Selector::default();
        let p = page(&all, "", 2, &every);
        assert_eq!(
            (p.items.len(), p.next_start.as_deref(), p.remaining),
            (2, Some("b\0"), Some(3))
        );
        let p = page(&all, "b\0", 2, &every);
        assert_eq!(
            (p.next_start.as_deref(), p.remaining),
            (Some("d\0"), Some(1))
        );
        let p = page(&all, "d\0", 2, &every);
        assert_eq!((p.items.len(), p.next_start, p.remaining), (1, None, None));
        // With a selector: only matches count, no remaining count, and a page that fills on
        // the last key has no continuation.
        let x = Selector::parse("pods", Some("app=x"), None).unwrap();
        let p = page(&all, "", 1, &x);
        assert_eq!(
            (p.items.len(), p.next_start.as_deref(), p.remaining),
            (1, Some("a\0"), None)
        );
        let p = page(&all, "a\0", 1, &x);
        assert_eq!((p.items.len(), p.next_start.as_deref()), (1, Some("c\0")));
        let p = page(&all, "c\0", 1, &x);
        assert_eq!((p.items.len(), p.next_start), (0, None));
        let p = page(&all, "", 5, &every);
        assert_eq!((p.items.len(), p.next_start), (5, None));
    }
}
