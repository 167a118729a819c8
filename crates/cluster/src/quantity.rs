//! Kubernetes resource quantities (`500m`, `1.5`, `128Mi`, `1e3`, `2G`) as exact numbers, so
//! `1` and `1000m`, or `1Gi` and `1024Mi`, compare equal as the API server compares them.
//! A value is held in billionths (Kubernetes' smallest unit is the nano, `n`).

/// A parsed quantity, in billionths of its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(i128);

const NANO: i128 = 1_000_000_000;

impl Quantity {
    /// Parses `text` as Kubernetes does: a signed decimal number, then a binary suffix (`Ki` …
    /// `Ei`), a decimal one (`n`, `u`, `m`, `k`, `M` … `E`) or an exponent (`e3`, `E-2`).
    /// `None` for anything else, or a value too large to hold.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        let (negative, digits) = match number.as_bytes().first()? {
            b'-' => (true, &number[1..]),
            b'+' => (false, &number[1..]),
            _ => (false, number),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && fraction.is_empty()
            || !whole
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        // The number as an integer with a decimal exponent: digits × 10^exponent.
        let mut mantissa: i128 = 0;
        for b in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add(i128::from(b - b'0'))?;
        }
        let mut exponent = -i32::try_from(fraction.len()).ok()?;
        let mut factor: i128 = 1;
        match suffix {
            "" => {}
            "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
                let power = "KMGTPE".find(&suffix[..1])? as u32 + 1;
                factor = 1i128 << (10 * power);
            }
            "n" => exponent -= 9,
            "u" => exponent -= 6,
            "m" => exponent -= 3,
            "k" => exponent += 3,
            "M" => exponent += 6,
            "G" => exponent += 9,
            "T" => exponent += 12,
            "P" => exponent += 15,
            "E" => exponent += 18,
            _ => {
                let power = suffix.strip_prefix(['e', 'E'])?;
                exponent += power.parse::<i32>().ok()?;
            }
        }
        // To billionths: digits × factor × 10^(exponent + 9), rounding up what is finer, as
        // Kubernetes rounds quantities below a nano.
        let mut value = mantissa.checked_mul(factor)?;
        let shift = exponent + 9;
        if shift >= 0 {
            value = value.checked_mul(10i128.checked_pow(u32::try_from(shift).ok()?)?)?;
        } else {
            let divisor = 10i128.checked_pow(u32::try_from(-shift).ok()?)?;
            value = (value + divisor - 1) / divisor;
        }
        Some(Self(if negative { -value } else { value }))
    }

    /// The value in whole units, rounded up (cores for cpu, bytes for memory).
    pub fn ceil_units(self) -> i128 {
        (self.0 + NANO - 1).div_euclid(NANO)
    }

    /// The value in thousandths, rounded up (millicores for cpu).
    pub fn ceil_millis(self) -> i128 {
        (self.0 + 999_999).div_euclid(1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Quantity {
        Quantity::parse(text).unwrap_or_else(|| panic!("{text}"))
    }

    #[test]
    fn equal_values_in_any_notation_compare_equal() {
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("0.5"), q("500m"));
        assert_eq!(q("1Gi"), q("1024Mi"));
        assert_eq!(q("1k"), q("1e3"));
        assert_eq!(q("1.5G"), q("1500M"));
        assert_eq!(q("+2"), q("2"));
        assert_eq!(q("100n"), q("0.1u"));
        assert!(q("100m") < q("0.2"));
        assert!(q("-1") < q("0"));
        assert_eq!(q("128Mi").ceil_units(), 134_217_728);
        assert_eq!(q("250m").ceil_millis(), 250);
        assert_eq!(q("1.0001m").ceil_millis(), 2);
        assert_eq!(q("2").ceil_units(), 2);
    }

    #[test]
    fn malformed_quantities_are_refused() {
        for bad in [
            "",
            "abc",
            "1.2.3",
            "1Qi",
            ".",
            "1e",
            "--1",
            "1 Mi",
            "99999999999999999999999999999999999E",
        ] {
            assert_eq!(Quantity::parse(bad), None, "{bad}");
        }
    }
}
