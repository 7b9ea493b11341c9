//! Durations exactly as Go's `time.ParseDuration` reads them and `time.Duration.String` writes
//! them: the one parser for every duration in kubelet flags and the KubeletConfiguration
//! (`metav1.Duration` fields are parsed with `time.ParseDuration`, flags with pflag's
//! `DurationVar`, which calls it too).

use std::fmt;

/// A Go `time.Duration`: signed nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoDuration(pub i64);

const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

const LIMIT: u64 = 1 << 63;

/// Parses `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` or a bare `0`, with Go's overflow rules (at most
/// 2^63-1 ns, or 2^63 ns when negative) and its float64 rounding of fractions. Errors are
/// Go's messages: `time: invalid duration "x"`, `time: missing unit in duration "1"`,
/// `time: unknown unit "d" in duration "1d"`.
pub fn parse(orig: &str) -> Result<GoDuration, String> {
    let invalid = || format!("time: invalid duration {orig:?}");
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(GoDuration(0));
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // The integer part; Go refuses more than 2^63.
        let mut v: u64 = 0;
        let start = s.len();
        while let Some(&c) = s.first().filter(|c| c.is_ascii_digit()) {
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(c - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
            s = &s[1..];
        }
        let pre = s.len() != start;
        // The fraction; digits past what fits are dropped, as Go's leadingFraction does.
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let start = s.len();
            let mut overflow = false;
            while let Some(&c) = s.first().filter(|c| c.is_ascii_digit()) {
                s = &s[1..];
                if overflow {
                    continue;
                }
                if f > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(c - b'0');
                if y > LIMIT {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            post = s.len() != start;
        }
        if !pre && !post {
            return Err(invalid());
        }
        let unit_len = s
            .iter()
            .position(|c| *c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {orig:?}"));
        }
        let unit_text = String::from_utf8_lossy(&s[..unit_len]).into_owned();
        s = &s[unit_len..];
        let Some(&(_, unit)) = UNITS.iter().find(|(name, _)| *name == unit_text) else {
            return Err(format!(
                "time: unknown unit {unit_text:?} in duration {orig:?}"
            ));
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            // Go computes the fraction in float64 and truncates.
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        // Go adds in uint64, which wraps: two units of 2^63 ns each sum to 0 there, and the
        // kubelet reads what Go reads. Checked addition would panic on such a value.
        total = total.wrapping_add(v);
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok(GoDuration((total as i64).wrapping_neg()));
    }
    if total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(GoDuration(total as i64))
}

impl GoDuration {
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// Go's `Duration.String`: `4h0m0s`, `1.5s`, `300ms`, `0s`.
impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let u = self.0.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        if u == 0 {
            return f.write_str("0s");
        }
        // Below a second: one unit with a fraction.
        let frac = |v: u64, digits: u32| {
            let unit = 10u64.pow(digits);
            let whole = v / unit;
            let rest = v % unit;
            if rest == 0 {
                whole.to_string()
            } else {
                let r = format!("{rest:0width$}", width = digits as usize);
                format!("{whole}.{}", r.trim_end_matches('0'))
            }
        };
        if u < 1_000 {
            return write!(f, "{sign}{u}ns");
        }
        if u < 1_000_000 {
            return write!(f, "{sign}{}\u{b5}s", frac(u, 3));
        }
        if u < 1_000_000_000 {
            return write!(f, "{sign}{}ms", frac(u, 6));
        }
        let secs = frac(u % 60_000_000_000, 9);
        let mins = u / 60_000_000_000;
        if mins == 0 {
            return write!(f, "{sign}{secs}s");
        }
        let hours = mins / 60;
        if hours == 0 {
            return write!(f, "{sign}{}m{secs}s", mins % 60);
        }
        write!(f, "{sign}{hours}h{}m{secs}s", mins % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> i64 {
        parse(s).unwrap().0
    }

    #[test]
    fn parses_as_go_does() {
        // Cases from Go's time/time_test.go parseDurationTests.
        for (s, want) in [
            ("0", 0),
            ("5s", 5_000_000_000),
            ("30s", 30_000_000_000),
            ("1478s", 1_478_000_000_000),
            ("-5s", -5_000_000_000),
            ("+5s", 5_000_000_000),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5_000_000_000),
            ("5.6s", 5_600_000_000),
            ("5.s", 5_000_000_000),
            (".5s", 500_000_000),
            ("1.0s", 1_000_000_000),
            ("1.00s", 1_000_000_000),
            ("1.004s", 1_004_000_000),
            ("1.0040s", 1_004_000_000),
            ("100.00100s", 100_001_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12\u{b5}s", 12_000),
            ("12\u{3bc}s", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14_000_000_000),
            ("15m", 900_000_000_000),
            ("16h", 57_600_000_000_000),
            ("3h30m", 12_600_000_000_000),
            ("10.5s4m", 250_500_000_000),
            ("-2m3.4s", -123_400_000_000),
            ("1h2m3s4ms5us6ns", 3_723_004_005_006),
            ("39h9m14.425s", 140_954_425_000_000),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 1_200_000_000_000),
            ("9007199254740993ns", 9_007_199_254_740_993),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036.854775807s", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036.854775808s", i64::MIN),
            ("0.100000000000000000000h", 360_000_000_000),
            ("0.830103483285477580700h", 2_988_372_539_827),
            ("0s", 0),
            ("0h0m", 0),
            ("0.0h", 0),
        ] {
            assert_eq!(ns(s), want, "{s}");
        }
    }

    #[test]
    fn sums_wrap_as_in_go_instead_of_panicking() {
        // 2^63 + 2^63 overflowed u64, a panic under overflow checks (the duration fuzz
        // target). Go's uint64 sum wraps to 0, which ParseDuration then accepts.
        assert_eq!(ns("9223372036854775808ns9223372036854775808ns"), 0);
        assert_eq!(ns("-9223372036854775808ns9223372036854775808ns"), 0);
    }

    #[test]
    fn refuses_what_go_refuses() {
        for s in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "\u{85}\u{85}",
            "\u{ffff}",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "9223372036854ms775us808ns",
            "-9223372036854775809ns",
            "4h 0m",
            " 4h",
        ] {
            assert!(parse(s).is_err(), "{s:?} parsed");
        }
        assert_eq!(
            parse("1d").unwrap_err(),
            "time: unknown unit \"d\" in duration \"1d\""
        );
        assert_eq!(
            parse("3").unwrap_err(),
            "time: missing unit in duration \"3\""
        );
    }

    #[test]
    fn prints_as_go_does() {
        for (d, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1\u{b5}s"),
            (2_200_000, "2.2ms"),
            (3_300_000_000, "3.3s"),
            (240_000_000_000, "4m0s"),
            (14_400_000_000_000, "4h0m0s"),
            (4_500_000_000 + 60_000_000_000 * 61, "1h1m4.5s"),
            (-1, "-1ns"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(GoDuration(d).to_string(), want, "{d}");
        }
    }
}
