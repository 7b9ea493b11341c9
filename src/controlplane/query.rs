//! Query parameters as kube-apiserver decodes them into its option structs
//! (k8s.io/apimachinery/pkg/runtime/conversion.go): flags, numbers and `dryRun`. Every number
//! is parsed with checked arithmetic; a value out of range is the same 400 a non-number is.

use std::collections::HashMap;

use serde_json::Value;

use super::invalid::{self, BadValue, FieldError};

pub type Query = HashMap<String, String>;

/// A boolean parameter (`watch`, `allowWatchBookmarks`, `sendInitialEvents`): `None` when
/// absent; present, only `0` and `false` (any case) are false, even an empty value is true
/// (`Convert_Slice_string_To_bool`).
pub fn flag(q: &Query, name: &str) -> Option<bool> {
    q.get(name)
        .map(|v| !(v == "0" || v.eq_ignore_ascii_case("false")))
}

/// Why a parameter could not be decoded: the text of kube-apiserver's 400 BadRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadParameter(pub String);

/// A signed 64-bit parameter (`timeoutSeconds`, `limit`, `gracePeriodSeconds`), as
/// `strconv.ParseInt(s, 10, 64)` reads it: an optional sign and decimal digits, within i64.
pub fn int64(q: &Query, name: &str) -> Result<Option<i64>, BadParameter> {
    let Some(text) = q.get(name) else {
        return Ok(None);
    };
    parse_int64(text).map(Some).map_err(|why| {
        BadParameter(format!(
            "strconv.ParseInt: parsing {}: {why}",
            invalid::go_quote(text)
        ))
    })
}

/// `strconv.ParseInt(s, 10, 64)`; the error is Go's wording of why.
fn parse_int64(text: &str) -> Result<i64, &'static str> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid syntax");
    }
    let mut n: i64 = 0;
    for b in digits.bytes() {
        let d = i64::from(b - b'0');
        n = n
            .checked_mul(10)
            .and_then(|n| {
                if negative {
                    n.checked_sub(d)
                } else {
                    n.checked_add(d)
                }
            })
            .ok_or("value out of range")?;
    }
    Ok(n)
}

/// `dryRun`: whether the request is a dry run. Every value must be `All`
/// (`ValidateDryRun`); anything else is kube-apiserver's 422 Invalid on the request's
/// options kind (`CreateOptions`, `UpdateOptions`, `PatchOptions`, `DeleteOptions`).
pub fn dry_run(values: &[&str], options_kind: &str) -> Result<bool, Value> {
    if values.iter().all(|v| *v == "All") {
        return Ok(!values.is_empty());
    }
    let printed: Vec<String> = values.iter().map(|v| invalid::go_quote(v)).collect();
    Err(invalid::status(
        "meta.k8s.io",
        options_kind,
        "",
        &[FieldError::not_supported(
            "dryRun",
            BadValue::Raw(format!("[]string{{{}}}", printed.join(", "))),
            &["All"],
        )],
    ))
}

/// Every value of `name` in a raw query string, repeats included (`dryRun=All&dryRun=All`).
pub fn all_values(raw_query: Option<&str>, name: &str) -> Vec<String> {
    form_urlencoded::parse(raw_query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// The ListOptions checks of kube-apiserver (`ValidateListOptions`, k8s.io/apimachinery/pkg/
/// apis/meta/internalversion/validation), as of the WatchList feature (on), without the
/// defaulting that turns a legacy watch into a WatchList one (`SetListOptionsDefaults`):
/// Kubernetes 1.20 knows neither `sendInitialEvents` nor `resourceVersionMatch` on a watch.
pub fn list_options_errors(q: &Query, watch: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let text = |name: &str| q.get(name).map(String::as_str).unwrap_or("");
    let matching = text("resourceVersionMatch");
    let continuing = !text("continue").is_empty();
    let send_initial = flag(q, "sendInitialEvents");
    let rvm = "resourceVersionMatch";
    if watch {
        if send_initial.is_some() && matching != "NotOlderThan" {
            errs.push(FieldError::forbidden(
                rvm,
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !matching.is_empty() {
            if send_initial.is_none() {
                errs.push(FieldError::forbidden(
                    rvm,
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            if matching != "NotOlderThan" {
                errs.push(FieldError::not_supported(
                    rvm,
                    BadValue::Str(matching.to_string()),
                    &["NotOlderThan"],
                ));
            }
            if continuing {
                errs.push(FieldError::forbidden(
                    rvm,
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
        }
        return errs;
    }
    if !matching.is_empty() {
        if text("resourceVersion").is_empty() {
            errs.push(FieldError::forbidden(
                rvm,
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if continuing {
            errs.push(FieldError::forbidden(
                rvm,
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if matching != "Exact" && matching != "NotOlderThan" {
            errs.push(FieldError::not_supported(
                rvm,
                BadValue::Str(matching.to_string()),
                &["Exact", "NotOlderThan", ""],
            ));
        }
        if matching == "Exact" && text("resourceVersion") == "0" {
            errs.push(FieldError::forbidden(
                rvm,
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if send_initial.is_some() {
        errs.push(FieldError::forbidden(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        ));
    }
    errs
}

/// The 422 of ListOptions errors.
pub fn list_options_status(errs: &[FieldError]) -> Value {
    invalid::status("meta.k8s.io", "ListOptions", "", errs)
}

/// The answer kube-apiserver gives a `resourceVersion` its storage cannot parse: a 500
/// whose Status has no reason (the storage layer's invalid error, not interpreted).
pub fn bad_resource_version(e: &FieldError) -> Value {
    serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": e.message(), "code": 500})
}

/// A `resourceVersion` as kube-apiserver's storage versioner parses it: empty and `0` mean
/// "any" (`None`), else an unsigned 64-bit decimal.
pub fn resource_version(text: &str) -> Result<Option<u64>, FieldError> {
    if text.is_empty() || text == "0" {
        return Ok(None);
    }
    // ParseUint takes digits only: no sign.
    let parsed = if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>()
            .map_err(|_| "value out of range".to_string())
    } else {
        Err("invalid syntax".to_string())
    };
    parsed.map(Some).map_err(|why| {
        FieldError::invalid(
            "resourceVersion",
            BadValue::Str(text.to_string()),
            &format!(
                "strconv.ParseUint: parsing {}: {why}",
                invalid::go_quote(text)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Query {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn flags_are_true_unless_zero_or_false() {
        let q = q(&[
            ("a", ""),
            ("b", "0"),
            ("c", "FALSE"),
            ("d", "yes"),
            ("e", "1"),
        ]);
        assert_eq!(
            ["a", "b", "c", "d", "e", "f"].map(|n| flag(&q, n)),
            [
                Some(true),
                Some(false),
                Some(false),
                Some(true),
                Some(true),
                None
            ]
        );
    }

    #[test]
    fn numbers_never_overflow() {
        assert_eq!(parse_int64("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_int64("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(
            parse_int64("9223372036854775808"),
            Err("value out of range")
        );
        assert_eq!(
            parse_int64("18446744073709551616"),
            Err("value out of range")
        );
        assert_eq!(parse_int64("+7"), Ok(7));
        for bad in ["", "-", "1.5", "abc", " 1", "0x10"] {
            assert_eq!(parse_int64(bad), Err("invalid syntax"), "{bad:?}");
        }
        assert_eq!(resource_version("18446744073709551615"), Ok(Some(u64::MAX)));
        assert!(resource_version("18446744073709551616").is_err());
        assert!(resource_version("-1").is_err());
        assert_eq!(resource_version("0"), Ok(None));
    }

    #[test]
    fn dry_run_takes_all_only() {
        assert_eq!(dry_run(&[], "CreateOptions"), Ok(false));
        assert_eq!(dry_run(&["All", "All"], "CreateOptions"), Ok(true));
        let st = dry_run(&["All", "Some"], "PatchOptions").unwrap_err();
        assert_eq!(st["code"], 422);
        assert_eq!(
            st["message"],
            "PatchOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"All\", \"Some\"}: supported values: \"All\""
        );
    }

    fn messages(pairs: &[(&str, &str)], watch: bool) -> Vec<String> {
        list_options_errors(&q(pairs), watch)
            .iter()
            .map(FieldError::message)
            .collect()
    }

    #[test]
    fn list_options_are_checked_as_upstream() {
        assert!(
            messages(
                &[("resourceVersion", "5"), ("resourceVersionMatch", "Exact")],
                false
            )
            .is_empty()
        );
        assert_eq!(
            messages(&[("resourceVersionMatch", "Exact")], false),
            [
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
            ]
        );
        assert_eq!(
            messages(
                &[("resourceVersionMatch", "Foo"), ("resourceVersion", "5")],
                false
            ),
            [
                "resourceVersionMatch: Unsupported value: \"Foo\": supported values: \"Exact\", \"NotOlderThan\", \"\""
            ]
        );
        assert_eq!(
            messages(
                &[("resourceVersionMatch", "Exact"), ("resourceVersion", "0")],
                false
            ),
            [
                "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""
            ]
        );
        assert_eq!(
            messages(&[("sendInitialEvents", "true")], false),
            ["sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"]
        );
    }

    #[test]
    fn watch_list_options_are_checked_as_upstream() {
        assert!(messages(&[], true).is_empty());
        assert!(
            messages(
                &[
                    ("sendInitialEvents", "true"),
                    ("resourceVersionMatch", "NotOlderThan")
                ],
                true
            )
            .is_empty()
        );
        assert_eq!(
            messages(&[("sendInitialEvents", "true")], true),
            [
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
            ]
        );
        assert_eq!(
            messages(&[("resourceVersionMatch", "NotOlderThan")], true),
            [
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
            ]
        );
        assert_eq!(
            messages(
                &[
                    ("sendInitialEvents", "false"),
                    ("resourceVersionMatch", "Exact")
                ],
                true
            ),
            [
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                "resourceVersionMatch: Unsupported value: \"Exact\": supported values: \"NotOlderThan\""
            ]
        );
        assert_eq!(
            messages(
                &[
                    ("sendInitialEvents", "true"),
                    ("resourceVersionMatch", "NotOlderThan"),
                    ("continue", "x")
                ],
                true
            ),
            [
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided"
            ]
        );
        assert_eq!(
            all_values(Some("dryRun=All&x=1&dryRun=Other"), "dryRun"),
            ["All", "Other"]
        );
    }
}
