//! Conversion of real-valued contributions to fixed-point shares in basis points.
//!
//! This module is deliberately small and free of the rest of the crate so that the federated-learning crate
//! can reuse it for per-participant contributions.
//!
//! # Rule
//!
//! 1. A contributor whose value is zero or negative gets 0 bps (it is still listed).
//! 2. The positive values are converted to integers exactly once: `units = round(value / max · 2^52)`, where
//!    `max` is the largest value. From there on everything is integer arithmetic, so the outcome does not
//!    depend on summation order or on the platform's rounding.
//! 3. Each positive contributor gets `floor(units · 10000 / Σ units)` bps; the remaining bps (fewer than the
//!    number of positive contributors) go one each to the largest remainders, ties to the lowest key
//!    (`Ord` of the key, i.e. the lowest name).
//! 4. If no contributor has a positive value, the conversion fails with [`SharesError::NoPositiveValue`]:
//!    there is nothing to pay by, and the caller (the ledger) must decide, e.g. return the pool.
//!
//! The result always sums to exactly [`BASIS_POINTS_TOTAL`], and a larger value never gets fewer bps than a
//! smaller one.

use std::collections::BTreeMap;

pub use crate::limits::BASIS_POINTS_TOTAL;

/// Why values could not be turned into shares.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SharesError {
    /// Every value is zero or negative (or there are no contributors).
    #[error("no contributor has a positive value; shares are undefined")]
    NoPositiveValue,
    /// A value is NaN or infinite.
    #[error("contributor value {value} is not finite")]
    NonFinite {
        /// The offending value.
        value: f64,
    },
}

/// Scale of the integer units the positive values are rounded to (2^52: every unit count is exact in f64).
const UNITS_SCALE: f64 = 4_503_599_627_370_496.0;

/// Converts contributor values to basis points summing to exactly [`BASIS_POINTS_TOTAL`].
///
/// Every key of `values` appears in the result; see the module documentation for the rule.
///
/// # Errors
///
/// [`SharesError::NonFinite`] for a NaN or infinite value, [`SharesError::NoPositiveValue`] when no value is
/// positive.
pub fn basis_points<K: Ord + Clone>(
    values: &BTreeMap<K, f64>,
) -> Result<BTreeMap<K, u32>, SharesError> {
    let mut max = 0.0_f64;
    for &value in values.values() {
        if !value.is_finite() {
            return Err(SharesError::NonFinite { value });
        }
        max = max.max(value);
    }
    if max <= 0.0 {
        return Err(SharesError::NoPositiveValue);
    }
    // Integer units; zero and negative values get none.
    let units: Vec<(&K, u64)> = values
        .iter()
        .map(|(key, &value)| {
            let unit = if value > 0.0 {
                (value / max * UNITS_SCALE).round() as u64
            } else {
                0
            };
            (key, unit)
        })
        .collect();
    let total: u128 = units.iter().map(|&(_, unit)| u128::from(unit)).sum();
    // `max` itself maps to 2^52 units, so total > 0.
    debug_assert!(total > 0);
    let bps_total = u128::from(BASIS_POINTS_TOTAL);
    let mut shares: Vec<(&K, u32, u128)> = units
        .iter()
        .map(|&(key, unit)| {
            let numerator = u128::from(unit) * bps_total;
            // floor(unit / total * 10000) <= 10000, so the cast cannot truncate.
            ((key), (numerator / total) as u32, numerator % total)
        })
        .collect();
    let assigned: u32 = shares.iter().map(|&(_, bps, _)| bps).sum();
    assert!(
        assigned <= BASIS_POINTS_TOTAL,
        "floors never exceed the total"
    );
    let left = (BASIS_POINTS_TOTAL - assigned) as usize;
    if left > 0 {
        // Largest remainder first; ties to the lowest key. Only contributors with units take part.
        let mut order: Vec<usize> = (0..shares.len())
            .filter(|&index| units[index].1 > 0)
            .collect();
        order.sort_by(|&a, &b| {
            shares[b]
                .2
                .cmp(&shares[a].2)
                .then_with(|| shares[a].0.cmp(shares[b].0))
        });
        assert!(
            left <= order.len(),
            "fewer leftover bps than positive contributors"
        );
        for &index in order.iter().take(left) {
            shares[index].1 += 1;
        }
    }
    let result: BTreeMap<K, u32> = shares
        .into_iter()
        .map(|(key, bps, _)| (key.clone(), bps))
        .collect();
    debug_assert_eq!(result.values().sum::<u32>(), BASIS_POINTS_TOTAL);
    Ok(result)
}

/// Whether two share tables agree: the same keys, and every entry within `tolerance_bps`.
///
/// The ledger compares valuation results this way (±1 bps), never as raw floats.
#[must_use]
pub fn shares_match<K: Ord>(
    a: &BTreeMap<K, u32>,
    b: &BTreeMap<K, u32>,
    tolerance_bps: u32,
) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((key_a, &bps_a), (key_b, &bps_b))| {
                key_a == key_b && bps_a.abs_diff(bps_b) <= tolerance_bps
            })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(entries: &[(&str, f64)]) -> BTreeMap<String, f64> {
        entries
            .iter()
            .map(|&(key, value)| (key.to_owned(), value))
            .collect()
    }

    #[test]
    fn equal_thirds_give_the_extra_bp_to_the_lowest_name() {
        let shares = basis_points(&map(&[("carol", 1.0), ("alice", 1.0), ("bob", 1.0)])).unwrap();
        assert_eq!(shares["alice"], 3334);
        assert_eq!(shares["bob"], 3333);
        assert_eq!(shares["carol"], 3333);
    }

    #[test]
    fn non_positive_values_get_zero() {
        let shares =
            basis_points(&map(&[("a", 3.0), ("b", 0.0), ("c", -2.0), ("d", 1.0)])).unwrap();
        assert_eq!(shares["a"], 7500);
        assert_eq!(shares["b"], 0);
        assert_eq!(shares["c"], 0);
        assert_eq!(shares["d"], 2500);
    }

    #[test]
    fn all_non_positive_is_an_error() {
        assert_eq!(
            basis_points(&map(&[("a", 0.0), ("b", -1.0)])),
            Err(SharesError::NoPositiveValue)
        );
        assert_eq!(
            basis_points::<String>(&BTreeMap::new()),
            Err(SharesError::NoPositiveValue)
        );
    }

    #[test]
    fn non_finite_is_an_error() {
        assert!(matches!(
            basis_points(&map(&[("a", f64::NAN)])),
            Err(SharesError::NonFinite { .. })
        ));
        assert!(matches!(
            basis_points(&map(&[("a", f64::INFINITY)])),
            Err(SharesError::NonFinite { .. })
        ));
    }

    #[test]
    fn tolerance_comparison() {
        let a: BTreeMap<&str, u32> = [("x", 5000), ("y", 5000)].into_iter().collect();
        let b: BTreeMap<&str, u32> = [("x", 5001), ("y", 4999)].into_iter().collect();
        let c: BTreeMap<&str, u32> = [("x", 5002), ("y", 4998)].into_iter().collect();
        assert!(shares_match(&a, &b, 1));
        assert!(!shares_match(&a, &c, 1));
    }

    proptest! {
        #[test]
        fn shares_sum_to_exactly_ten_thousand(values in proptest::collection::vec(-1.0e6_f64..1.0e6, 1..64)) {
            let input: BTreeMap<usize, f64> = values.iter().copied().enumerate().collect();
            match basis_points(&input) {
                Ok(shares) => {
                    prop_assert_eq!(shares.values().sum::<u32>(), BASIS_POINTS_TOTAL);
                    prop_assert_eq!(shares.len(), input.len());
                    let positive_total: f64 = values.iter().filter(|v| **v > 0.0).sum();
                    for (key, &bps) in &shares {
                        let value = input[key];
                        if value <= 0.0 {
                            prop_assert_eq!(bps, 0);
                        } else {
                            // Never more than one bp away from the exact quota.
                            let quota = value / positive_total * 10_000.0;
                            prop_assert!((f64::from(bps) - quota).abs() < 1.0 + 1e-6, "bps {} quota {}", bps, quota);
                        }
                    }
                    // Monotone: a larger value never gets fewer bps.
                    for (a, &bps_a) in &shares {
                        for (b, &bps_b) in &shares {
                            // (Values within 1e-9 of the largest may round to the same integer units.)
                            if input[a] > input[b] + 1e-9 * values.iter().fold(0.0_f64, |m, v| m.max(v.abs())) {
                                prop_assert!(bps_a >= bps_b);
                            }
                        }
                    }
                }
                Err(SharesError::NoPositiveValue) => prop_assert!(values.iter().all(|v| *v <= 0.0)),
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }

        #[test]
        fn order_of_insertion_does_not_matter(values in proptest::collection::vec(0.0_f64..10.0, 1..32)) {
            let forward: BTreeMap<usize, f64> = values.iter().copied().enumerate().collect();
            let mut backward = BTreeMap::new();
            for (index, value) in values.iter().copied().enumerate().rev() {
                backward.insert(index, value);
            }
            prop_assert_eq!(basis_points(&forward).ok(), basis_points(&backward).ok());
        }
    }
}
