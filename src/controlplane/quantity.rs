//! resource.Quantity as kube-apiserver prints it after reading it: upstream's ParseQuantity
//! followed by its MarshalJSON (k8s.io/apimachinery/pkg/api/resource, quantity.go, amount.go,
//! suffix.go), quirks included: a string already in canonical form is kept as written (`+1`,
//! `01`, `1E3`), others are printed canonically (`1000m` as `1`, `1024Ki` as `1Mi`, `1.5` as
//! `1500m`), fractions below a nano are rounded up, binary-SI values are capped at 2^63-1, and a
//! decimal-SI exponent beyond the suffix table prints without a suffix (`1000E` as `1`).

use num_bigint::BigUint;

const FORMAT: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const SUFFIX: &str = "unable to parse quantity's suffix";
const NUMERIC: &str = "unable to parse numeric part of quantity";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalExponent,
    BinarySI,
    DecimalSI,
}

/// The JSON string kube-apiserver stores for a quantity it was sent as `s`, or upstream's
/// parse error (quantities must match the regular expression ..., unable to parse quantity's
/// suffix, unable to parse numeric part of quantity).
pub fn canonical(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err(FORMAT.into());
    }
    if s == "0" {
        return Ok(s.into());
    }
    let p = parse_string(s)?;
    let (base, exponent, format) = interpret(p.suffix).ok_or(SUFFIX)?;

    // Upstream's int64 fast path, which alone keeps the string as written when it is already
    // canonical.
    let (mut scale, mut precision, mut mantissa) = (0i64, -1i64, 1i64);
    match format {
        Format::DecimalExponent | Format::DecimalSI => {
            scale = i64::from(exponent);
            precision = 18 - (p.num.len() + p.denom.len()) as i64;
        }
        Format::BinarySI if exponent >= 0 && p.denom.is_empty() => {
            mantissa <<= exponent;
            precision = 15 - p.num.len() as i64 - (exponent as f32 * 3.0 / 10.0) as i64 - 1;
        }
        Format::BinarySI => {}
    }
    if precision >= 0 {
        scale -= p.denom.len() as i64;
        if scale >= -9 {
            let shifted = format!("{}{}", p.num, p.denom);
            let value: i64 = shifted.parse().map_err(|_| NUMERIC)?;
            if let Some(result) = value.checked_mul(mantissa) {
                let kept = match format {
                    Format::BinarySI => exponent % 10 == 0 && value & 0x07 != 0,
                    _ => scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0'),
                };
                if kept {
                    return Ok(s.into());
                }
                let q = Decimal {
                    negative: !p.positive && result != 0,
                    digits: BigUint::from(result.unsigned_abs()),
                    exponent: scale,
                };
                return Ok(q.print(format));
            }
        }
    }

    // The arbitrary-precision path.
    let mut q = Decimal::parse(p.value).ok_or(NUMERIC)?;
    if base == 10 {
        q.exponent += i64::from(exponent);
    } else {
        q.digits <<= exponent as usize;
    }
    let mut format = format;
    if q.digits != BigUint::ZERO && q.exponent < -9 {
        // Rounded up to a nano, away from zero: asking for a little gets a little. A divisor
        // longer than the digits leaves just that nano, without computing a power of ten as
        // large as the exponent says (upstream does, and never answers `1e-9999999999`).
        let places = (-9 - q.exponent) as u64;
        if places > q.digits.to_string().len() as u64 {
            q.digits = BigUint::from(1u32);
        } else {
            let div = BigUint::from(10u32).pow(places as u32);
            let rest = &q.digits % &div;
            q.digits /= &div;
            if rest != BigUint::ZERO {
                q.digits += 1u32;
            }
        }
        q.exponent = -9;
    }
    if format == Format::BinarySI {
        let max = Decimal {
            negative: false,
            digits: BigUint::from(i64::MAX as u64),
            exponent: 0,
        };
        if q.cmp_magnitude(&max) == std::cmp::Ordering::Greater {
            q.digits = max.digits;
            q.exponent = 0;
        }
        let one = Decimal {
            negative: false,
            digits: BigUint::from(1u32),
            exponent: 0,
        };
        if q.digits != BigUint::ZERO && q.cmp_magnitude(&one) == std::cmp::Ordering::Less {
            format = Format::DecimalSI;
        }
    }
    if q.digits == BigUint::ZERO {
        q.negative = false;
    }
    Ok(q.print(format))
}

struct Parsed<'a> {
    positive: bool,
    /// The number as written, sign included, without the suffix.
    value: &'a str,
    /// The integer digits without leading zeros ("0" when none).
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

/// Upstream's parseQuantityString, character by character.
fn parse_string(s: &str) -> Result<Parsed<'_>, String> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    let done = |num, value, denom, suffix| {
        Ok(Parsed {
            positive,
            value,
            num,
            denom,
            suffix,
        })
    };
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return done("0", "0", "", "");
    }
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos >= end {
        return done(&s[start..], s, "", "");
    }
    let num = if pos == start { "0" } else { &s[start..pos] };
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let d = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos >= end {
            return done(num, s, &s[d..], "");
        }
        denom = &s[d..pos];
    }
    let value = &s[..pos];
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(FORMAT.into());
    }
    done(num, value, denom, &s[suffix_start..])
}

/// A suffix's base, exponent and format.
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    let decimal = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(e) = decimal {
        return Some((10, e, Format::DecimalSI));
    }
    if let Some(i) = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
        .iter()
        .position(|b| *b == suffix)
    {
        return Some((2, 10 * (i as i32 + 1), Format::BinarySI));
    }
    let rest = suffix
        .strip_prefix('e')
        .or_else(|| suffix.strip_prefix('E'))?;
    // Go's ParseInt, then a conversion to int32 that wraps.
    let e: i64 = rest.parse().ok()?;
    Some((10, e as i32, Format::DecimalExponent))
}

/// ±digits × 10^exponent.
struct Decimal {
    negative: bool,
    digits: BigUint,
    exponent: i64,
}

impl Decimal {
    fn parse(value: &str) -> Option<Decimal> {
        let (negative, unsigned) = match value.as_bytes().first() {
            Some(b'-') => (true, &value[1..]),
            Some(b'+') => (false, &value[1..]),
            _ => (false, value),
        };
        let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let all = format!("{int}{frac}");
        if all.is_empty() || !all.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some(Decimal {
            negative,
            digits: all.parse().ok()?,
            exponent: -(frac.len() as i64),
        })
    }

    fn cmp_magnitude(&self, other: &Decimal) -> std::cmp::Ordering {
        let e = self.exponent.min(other.exponent);
        let scaled = |d: &Decimal| &d.digits * BigUint::from(10u32).pow((d.exponent - e) as u32);
        scaled(self).cmp(&scaled(other))
    }

    /// Upstream's CanonicalizeBytes.
    fn print(mut self, format: Format) -> String {
        let (ten, k) = (BigUint::from(10u32), BigUint::from(1024u32));
        if self.digits == BigUint::ZERO {
            return "0".into();
        }
        let sign = if self.negative { "-" } else { "" };
        let mut format = format;
        if format == Format::BinarySI {
            let small = self.cmp_magnitude(&Decimal {
                negative: false,
                digits: k.clone(),
                exponent: 0,
            }) == std::cmp::Ordering::Less;
            // An integer or not: only integers print in base 1024.
            let integer = if self.exponent >= 0 {
                Some(&self.digits * ten.pow(self.exponent as u32))
            } else {
                let div = ten.pow((-self.exponent) as u32);
                (&self.digits % &div == BigUint::ZERO).then(|| &self.digits / &div)
            };
            match integer {
                Some(mut n) if !small => {
                    let mut times = 0;
                    while &n % &k == BigUint::ZERO {
                        n /= &k;
                        times += 1;
                    }
                    let suffix = match times {
                        1 => "Ki",
                        2 => "Mi",
                        3 => "Gi",
                        4 => "Ti",
                        5 => "Pi",
                        6 => "Ei",
                        _ => "",
                    };
                    return format!("{sign}{n}{suffix}");
                }
                _ => format = Format::DecimalSI,
            }
        }
        while &self.digits % &ten == BigUint::ZERO {
            self.digits /= &ten;
            self.exponent += 1;
        }
        while self.exponent.rem_euclid(3) != 0 {
            self.digits *= &ten;
            self.exponent -= 1;
        }
        let suffix = match (format, self.exponent) {
            (Format::DecimalExponent, 0) => String::new(),
            (Format::DecimalExponent, e) => format!("e{e}"),
            (_, -9) => "n".into(),
            (_, -6) => "u".into(),
            (_, -3) => "m".into(),
            (_, 3) => "k".into(),
            (_, 6) => "M".into(),
            (_, 9) => "G".into(),
            (_, 12) => "T".into(),
            (_, 15) => "P".into(),
            (_, 18) => "E".into(),
            // Upstream finds no suffix here and prints none.
            _ => String::new(),
        };
        format!("{sign}{}{suffix}", self.digits)
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    /// What kube-apiserver 1.20.2 stored for each, sent as an emptyDir's sizeLimit.
    #[test]
    fn as_kube_apiserver_prints_them() {
        for (sent, stored) in [
            ("0", "0"),
            ("00", "0"),
            ("01", "01"),
            ("+1", "+1"),
            ("1.5", "1500m"),
            (".5", "500m"),
            ("1.", "1."),
            (".", "0"),
            ("0.5", "500m"),
            ("1000m", "1"),
            ("100m", "100m"),
            ("0.0000000001", "1n"),
            ("1.0000000001", "1000000001n"),
            ("1e3", "1e3"),
            ("1E3", "1E3"),
            ("1e2", "100"),
            ("1.5e3", "1500"),
            ("1000E", "1"),
            ("1000000E", "1"),
            ("1k", "1k"),
            ("1000", "1k"),
            ("1024", "1024"),
            ("1024Ki", "1Mi"),
            ("8Ki", "8Ki"),
            ("0.5Ki", "512"),
            ("1.5Ki", "1536"),
            ("9223372036854775808", "9223372036854775808"),
            ("99999999999999999999Ki", "9223372036854775807"),
            ("1e100", "10e99"),
            ("1e-10", "1e-9"),
            ("1e-9", "1e-9"),
            ("12345678901234567890m", "12345678901234567890m"),
            ("8Ei", "9223372036854775807"),
            ("1n", "1n"),
            ("1u", "1u"),
            ("1000u", "1m"),
            ("1000n", "1u"),
            ("100n", "100n"),
            ("1500n", "1500n"),
            ("1e-2", "10e-3"),
            ("1e-3", "1e-3"),
            ("1e-4", "100e-6"),
            ("0.000001", "1u"),
            ("2.5Mi", "2560Ki"),
            ("100Mi", "100Mi"),
            ("0.1Gi", "107374182400m"),
            ("1e1000", "10e999"),
            ("1.23e-5", "12300e-9"),
            ("1e+3", "1e+3"),
            ("5e00", "5e00"),
        ] {
            assert_eq!(canonical(sent).as_deref(), Ok(stored), "{sent}");
        }
    }

    #[test]
    fn negative_values_keep_their_sign() {
        assert_eq!(canonical("-1.5").as_deref(), Ok("-1500m"));
        assert_eq!(canonical("-1000m").as_deref(), Ok("-1"));
        assert_eq!(canonical("-2048Ki").as_deref(), Ok("-2Mi"));
        assert_eq!(canonical("-0").as_deref(), Ok("0"));
    }

    #[test]
    fn what_does_not_parse_says_why() {
        assert!(
            canonical("")
                .unwrap_err()
                .starts_with("quantities must match")
        );
        assert!(
            canonical("1 Gi")
                .unwrap_err()
                .starts_with("quantities must match")
        );
        assert!(
            canonical("1Gi2x")
                .unwrap_err()
                .starts_with("quantities must match")
        );
        assert_eq!(
            canonical("1e").unwrap_err(),
            "unable to parse quantity's suffix"
        );
        assert_eq!(
            canonical("1KiB").unwrap_err(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        assert_eq!(
            canonical("1m5").unwrap_err(),
            "unable to parse quantity's suffix"
        );
        // Upstream reads a missing number as zero.
        for zero in ["Gi", "-", "+", "e3", ".e3"] {
            assert_eq!(canonical(zero).as_deref(), Ok("0"), "{zero}");
        }
        assert_eq!(canonical("1e-9999999999").as_deref(), Ok("1e-9"));
    }
}
