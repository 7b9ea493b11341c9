//! Label and field selectors, as list and watch requests carry them.

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Label {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// One requirement of a field selector: `field=value` or `field!=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    path: String,
    value: String,
    negated: bool,
}

/// Fields a selector may name; the API server refuses others.
pub const FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.phase",
    "spec.clusterIP",
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    labels: Vec<Label>,
    fields: Vec<Field>,
}

/// Splits on commas outside parentheses: `a in (x,y),b`.
fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn set(values: &str) -> Result<Vec<String>, String> {
    let inner = values
        .trim()
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(|| format!("{values:?}: a set is written (a,b)"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

impl Selector {
    /// Parses `labelSelector` and `fieldSelector` query values.
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Self, String> {
        let mut sel = Self::default();
        for req in labels.map(split_top).unwrap_or_default() {
            sel.labels.push(if let Some((k, v)) = req.split_once("!=") {
                Label::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
                Label::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = req.split_once(" notin ") {
                Label::NotIn(k.trim().into(), set(v)?)
            } else if let Some((k, v)) = req.split_once(" in ") {
                Label::In(k.trim().into(), set(v)?)
            } else if let Some(k) = req.strip_prefix('!') {
                Label::NotExists(k.trim().into())
            } else {
                Label::Exists(req.into())
            });
        }
        for req in fields.map(split_top).unwrap_or_default() {
            let (path, value, negated) = if let Some((k, v)) = req.split_once("!=") {
                (k, v, true)
            } else if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
                (k, v, false)
            } else {
                return Err(format!(
                    "invalid field selector {req:?}: expected field=value or field!=value"
                ));
            };
            let path = path.trim();
            if !FIELDS.contains(&path) {
                return Err(format!("field label not supported: {path}"));
            }
            sel.fields.push(Field {
                path: path.into(),
                value: value.trim().into(),
                negated,
            });
        }
        Ok(sel)
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.matches_by(
            |k| {
                obj.pointer("/metadata/labels")
                    .and_then(|l| l.get(k))
                    .and_then(Value::as_str)
            },
            |path| {
                obj.pointer(&format!("/{}", path.replace('.', "/")))
                    .and_then(Value::as_str)
            },
        )
    }

    /// The same answer as `matches`, from what the store keeps of an object.
    pub fn matches_stored(&self, obj: &super::store::Stored) -> bool {
        self.matches_by(|k| obj.label(k), |path| obj.field(path))
    }

    fn matches_by<'a>(
        &self,
        label: impl Fn(&str) -> Option<&'a str>,
        field: impl Fn(&str) -> Option<&'a str>,
    ) -> bool {
        let labels_ok = self.labels.iter().all(|req| match req {
            Label::Equals(k, v) => label(k) == Some(v),
            Label::NotEquals(k, v) => label(k) != Some(v),
            Label::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Label::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Label::Exists(k) => label(k).is_some(),
            Label::NotExists(k) => label(k).is_none(),
        });
        labels_ok
            && self.fields.iter().all(|f| {
                let actual = field(&f.path).unwrap_or("");
                (actual == f.value) != f.negated
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web", "tier": "fe"}},
               "spec": {"nodeName": "node1"}, "status": {"phase": "Running"}})
    }

    #[test]
    fn labels() {
        for (sel, want) in [
            ("app=web", true),
            ("app==web,tier=fe", true),
            ("app!=web", false),
            ("app in (web, api)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("missing!=x", true),
            ("", true),
        ] {
            assert_eq!(
                Selector::parse(Some(sel), None).unwrap().matches(&pod()),
                want,
                "{sel}"
            );
        }
    }

    #[test]
    fn fields() {
        for (sel, want) in [
            ("metadata.name=p", true),
            ("spec.nodeName=node1,status.phase=Running", true),
            ("spec.nodeName!=node1", false),
            ("spec.clusterIP!=None", true),
            ("metadata.namespace=other", false),
        ] {
            assert_eq!(
                Selector::parse(None, Some(sel)).unwrap().matches(&pod()),
                want,
                "{sel}"
            );
        }
        assert!(
            Selector::parse(None, Some("spec.bogus=x"))
                .unwrap_err()
                .contains("not supported")
        );
        assert!(Selector::parse(None, Some("metadata.name")).is_err());
        assert!(Selector::parse(Some("a in x"), None).is_err());
    }
}
