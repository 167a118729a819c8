//! Values that are a count or a percentage of a total (`maxSurge: 25%`, `minAvailable: 2`), as
//! Kubernetes resolves them.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The count `value` stands for out of `total`: an integer as is, `N%` of `total` rounded up or
/// down. `None` for a string that is not a percentage.
pub fn resolve(value: &IntOrString, total: i32, round_up: bool) -> Option<i32> {
    match value {
        IntOrString::Int(n) => Some(*n),
        IntOrString::String(text) => {
            let percent: f64 = text.strip_suffix('%')?.trim().parse().ok()?;
            let exact = f64::from(total) * percent / 100.0;
            Some(
                (if round_up {
                    exact.ceil()
                } else {
                    exact.floor()
                }) as i32,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_percentages() {
        assert_eq!(resolve(&IntOrString::Int(2), 10, true), Some(2));
        assert_eq!(
            resolve(&IntOrString::String("25%".into()), 10, true),
            Some(3)
        );
        assert_eq!(
            resolve(&IntOrString::String("25%".into()), 10, false),
            Some(2)
        );
        assert_eq!(
            resolve(&IntOrString::String("lots".into()), 10, false),
            None
        );
    }
}
