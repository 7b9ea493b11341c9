//! Field errors and the 422 Invalid Status that carries them, worded as k8s.io/apimachinery's
//! `field.Error` and `errors.NewInvalid` word them, so clients that read `details.causes` (and
//! people who read messages) see what kube-apiserver would say.

use serde_json::{Value, json};

/// A value as a field error prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadValue {
    /// A string, printed quoted as Go's `%q` does.
    Str(String),
    /// A value printed as it is written here (Go's `%#v` of a slice: `[]string{"x"}`).
    Raw(String),
}

/// One problem with one field (`field.Error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    /// `field.Forbidden(path, detail)`.
    Forbidden { field: String, detail: String },
    /// `field.NotSupported(path, value, supported)`.
    NotSupported {
        field: String,
        value: BadValue,
        supported: Vec<String>,
    },
    /// `field.Invalid(path, value, detail)`.
    Invalid {
        field: String,
        value: BadValue,
        detail: String,
    },
}

/// A string quoted as Go's `%q` quotes it, for the characters a query or name can hold.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl BadValue {
    fn print(&self) -> String {
        match self {
            Self::Str(s) => go_quote(s),
            Self::Raw(s) => s.clone(),
        }
    }
}

impl FieldError {
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self::Forbidden {
            field: field.into(),
            detail: detail.into(),
        }
    }

    pub fn not_supported(field: &str, value: BadValue, supported: &[&str]) -> Self {
        Self::NotSupported {
            field: field.into(),
            value,
            supported: supported.iter().map(|s| (*s).to_string()).collect(),
        }
    }

    pub fn invalid(field: &str, value: BadValue, detail: &str) -> Self {
        Self::Invalid {
            field: field.into(),
            value,
            detail: detail.into(),
        }
    }

    fn field(&self) -> &str {
        match self {
            Self::Forbidden { field, .. }
            | Self::NotSupported { field, .. }
            | Self::Invalid { field, .. } => field,
        }
    }

    /// `metav1.CauseType` of the cause.
    fn reason(&self) -> &'static str {
        match self {
            Self::Forbidden { .. } => "FieldValueForbidden",
            Self::NotSupported { .. } => "FieldValueNotSupported",
            Self::Invalid { .. } => "FieldValueInvalid",
        }
    }

    /// `field.Error.ErrorBody()`: the message without the field.
    pub fn body(&self) -> String {
        match self {
            Self::Forbidden { detail, .. } => format!("Forbidden: {detail}"),
            Self::NotSupported {
                value, supported, ..
            } => {
                let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
                format!(
                    "Unsupported value: {}: supported values: {}",
                    value.print(),
                    quoted.join(", ")
                )
            }
            Self::Invalid { value, detail, .. } => {
                format!("Invalid value: {}: {detail}", value.print())
            }
        }
    }

    /// `field.Error.Error()`: `field: body`.
    pub fn message(&self) -> String {
        format!("{}: {}", self.field(), self.body())
    }
}

/// The Status of `errors.NewInvalid(GroupKind{group, kind}, name, errs)`: 422, with one cause
/// per error. Messages of several errors are joined as an aggregate error prints them.
pub fn status(group: &str, kind: &str, name: &str, errs: &[FieldError]) -> Value {
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let mut messages: Vec<String> = Vec::new();
    for e in errs {
        let m = e.message();
        // An aggregate drops repeats of the same message.
        if !messages.contains(&m) {
            messages.push(m);
        }
    }
    let message = match messages.as_slice() {
        [] => format!("{qualified} {} is invalid", go_quote(name)),
        [one] => format!("{qualified} {} is invalid: {one}", go_quote(name)),
        many => format!(
            "{qualified} {} is invalid: [{}]",
            go_quote(name),
            many.join(", ")
        ),
    };
    let causes: Vec<Value> = errs
        .iter()
        .map(|e| json!({"reason": e.reason(), "message": e.body(), "field": e.field()}))
        .collect();
    let mut details = json!({"kind": kind, "causes": causes});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    if !name.is_empty() {
        details["name"] = json!(name);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "Invalid", "details": details, "code": 422})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_upstreams() {
        let one = status(
            "meta.k8s.io",
            "ListOptions",
            "",
            &[FieldError::forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            )],
        );
        assert_eq!(
            one["message"],
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
        );
        assert_eq!(one["details"]["causes"][0]["reason"], "FieldValueForbidden");
        assert!(one["details"].get("name").is_none());
        let two = status(
            "meta.k8s.io",
            "ListOptions",
            "",
            &[
                FieldError::forbidden("a", "x"),
                FieldError::not_supported(
                    "resourceVersionMatch",
                    BadValue::Str("Exact".into()),
                    &["NotOlderThan"],
                ),
            ],
        );
        assert_eq!(
            two["message"],
            "ListOptions.meta.k8s.io \"\" is invalid: [a: Forbidden: x, resourceVersionMatch: Unsupported value: \"Exact\": supported values: \"NotOlderThan\"]"
        );
        assert_eq!(go_quote("a\"b\\"), "\"a\\\"b\\\\\"");
    }
}
