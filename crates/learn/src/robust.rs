//! Robust aggregation of client updates: weighted mean (FedAvg), coordinate-wise median, trimmed mean, Krum
//! and Multi-Krum, over flat `f32` parameter vectors.
//!
//! This module owns the aggregation rules that decide how much a few bad (faulty or malicious, "Byzantine")
//! updates can move the global model, and [`AggregationRule`], the serializable choice of rule for a session.
//! Every function takes the updates as a slice of equal-length vectors (`&[Vec<f32>]`, `&[&[f32]]`, …), checks
//! them (at least one, equal non-zero lengths, finite values, counts within [`crate::limits`]) and returns the
//! aggregate or a [`RobustError`]; none panics on bad input.
//!
//! | rule | tolerates | cost |
//! |---|---|---|
//! | [`weighted_mean`] | nothing: one update can move it arbitrarily | `O(n·d)` |
//! | [`coordinate_median`] | fewer than half bad values per coordinate | `O(n·d)` |
//! | [`trimmed_mean`] | up to `⌊β·n⌋` bad values per coordinate | `O(n·d)` |
//! | [`krum`], [`multi_krum`] | `f` bad updates when `n ≥ 2f + 3` | `O(n²·d)` |
//!
//! # Combining with secure aggregation and differential privacy
//!
//! With secure aggregation ([`crate::secagg`]) the aggregator only ever learns the *sum* of the updates, never an
//! individual one, so no rule that inspects individual updates — median, trimmed mean, Krum, Multi-Krum — can
//! run over single clients; only the (weighted) mean can, with each client pre-scaling its update by its
//! weight. [`AggregationRule::needs_individual_updates`] says which rules those are. What remains possible:
//!
//! - **Robust rules over groups.** Split the round's clients into `g` groups, securely aggregate each group
//!   separately, and run the median or trimmed mean over the `g` group sums (or means). A bad client can then
//!   spoil only its own group, and the rule tolerates a minority of spoiled groups. The price is privacy: each
//!   group sum hides an update among fewer clients (and DP noise must be sized per group), so groups should
//!   stay large enough for the session's privacy goals.
//! - **Norm clipping.** Clipping every update to an L2 norm `S` ([`crate::privacy::clip_l2`], done by the
//!   client before masking as part of DP-FedAvg) bounds any single client's influence on the sum to `S`
//!   whatever it sends — provided the clipping is enforced, which secure aggregation alone cannot check.
//!   It works with secure aggregation and with the mean.
//!
//! Without secure aggregation (the aggregator sees individual updates) every rule applies directly. The robust
//! rules give every update equal say: they ignore client weights such as dataset sizes, since a weight is
//! itself something a bad client could inflate.

use std::cmp::Ordering;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::limits::{AGGREGATION_UPDATES_MAX, KRUM_PAIRWISE_COORDINATES_MAX, MODEL_PARAMETERS_MAX};

/// What was wrong with the updates or parameters of an aggregation.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RobustError {
    /// No updates to aggregate.
    #[error("no updates to aggregate; pass at least one update")]
    NoUpdates,
    /// More updates than one aggregation takes.
    #[error("{count} updates exceed the limit of {limit}; aggregate fewer updates (or group sums)")]
    TooManyUpdates {
        /// The number of updates passed.
        count: usize,
        /// [`AGGREGATION_UPDATES_MAX`].
        limit: usize,
    },
    /// The updates have no coordinates.
    #[error("updates have no coordinates; pass flat parameter vectors")]
    EmptyUpdates,
    /// The updates are longer than any model may be.
    #[error("update length {length} exceeds the limit of {limit} parameters")]
    UpdateTooLong {
        /// The length of the updates.
        length: usize,
        /// [`MODEL_PARAMETERS_MAX`].
        limit: usize,
    },
    /// An update's length differs from the first update's.
    #[error(
        "update {index} has {length} coordinates but update 0 has {expected}; all updates must be for the same model"
    )]
    LengthMismatch {
        /// Index of the offending update.
        index: usize,
        /// Its length.
        length: usize,
        /// The length of update 0.
        expected: usize,
    },
    /// An update holds NaN or an infinity.
    #[error(
        "update {update} coordinate {coordinate} is {value}; updates must be finite (drop or reject that client)"
    )]
    NonFiniteValue {
        /// Index of the offending update.
        update: usize,
        /// Index of its first non-finite coordinate.
        coordinate: usize,
        /// The value there.
        value: f32,
    },
    /// The trim fraction is outside `[0, 0.5)`.
    #[error(
        "trim fraction {trim_fraction} must be in [0, 0.5); it is the share of values dropped at each end"
    )]
    TrimFractionOutOfRange {
        /// The rejected fraction.
        trim_fraction: f64,
    },
    /// Krum needs `n ≥ 2f + 3` updates.
    #[error(
        "Krum with {byzantine} Byzantine updates needs at least {required} updates but got {updates}; assume fewer Byzantine updates or aggregate more"
    )]
    TooFewUpdatesForKrum {
        /// The number of updates passed.
        updates: usize,
        /// The assumed number of Byzantine updates (`f`).
        byzantine: usize,
        /// `2f + 3`.
        required: usize,
    },
    /// Multi-Krum must select between 1 and `n` updates.
    #[error(
        "Multi-Krum cannot select {selected} of {updates} updates; select between 1 and the number of updates (at most n - f is sensible)"
    )]
    SelectedOutOfRange {
        /// The requested number of selected updates.
        selected: usize,
        /// The number of updates passed.
        updates: usize,
    },
    /// Krum's pairwise distances would cost too much.
    #[error(
        "Krum would compare {pairwise_coordinates} coordinates (pairs × length), over the limit of {limit}; aggregate fewer or shorter updates"
    )]
    KrumTooExpensive {
        /// `n(n−1)/2 · length`.
        pairwise_coordinates: u64,
        /// [`KRUM_PAIRWISE_COORDINATES_MAX`].
        limit: u64,
    },
    /// The number of weights differs from the number of updates.
    #[error("{weights} weights for {updates} updates; pass one weight per update")]
    WeightCountMismatch {
        /// The number of weights.
        weights: usize,
        /// The number of updates.
        updates: usize,
    },
    /// A weight is negative or not finite.
    #[error("weight {index} is {weight}; weights must be finite and at least 0")]
    InvalidWeight {
        /// Index of the offending weight.
        index: usize,
        /// Its value.
        weight: f32,
    },
    /// All weights are zero.
    #[error("all weights are zero; at least one update must have a positive weight")]
    ZeroTotalWeight,
}

/// Coordinates handled by one parallel task of the per-coordinate rules.
const COORDINATE_CHUNK: usize = 4_096;

/// The update Krum chose, and its index among the inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct KrumSelection {
    /// Index of the chosen update.
    pub index: usize,
    /// A copy of the chosen update: the aggregate.
    pub update: Vec<f32>,
}

/// The updates Multi-Krum chose, and their average.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiKrumSelection {
    /// Indices of the chosen updates, best (lowest) score first; ties go to the lower index.
    pub indices: Vec<usize>,
    /// The unweighted mean of the chosen updates.
    pub aggregate: Vec<f32>,
}

/// How a round's updates are combined into one.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum AggregationRule {
    /// The weighted mean (FedAvg): [`weighted_mean`]. The only rule that works on a securely aggregated sum.
    #[default]
    Mean,
    /// The coordinate-wise median: [`coordinate_median`].
    Median,
    /// The coordinate-wise trimmed mean: [`trimmed_mean`].
    TrimmedMean {
        /// Share of values dropped at each end of every coordinate, in `[0, 0.5)`.
        trim_fraction: f64,
    },
    /// Krum: [`krum`].
    Krum {
        /// Number of Byzantine updates to tolerate (`f`); needs `n ≥ 2f + 3`.
        byzantine: usize,
    },
    /// Multi-Krum: [`multi_krum`].
    MultiKrum {
        /// Number of Byzantine updates to tolerate (`f`); needs `n ≥ 2f + 3`.
        byzantine: usize,
        /// Number of best-scoring updates averaged (`m`), between 1 and `n`.
        selected: usize,
    },
}

impl AggregationRule {
    /// Aggregates `updates`.
    ///
    /// [`AggregationRule::Mean`] weights update `i` by `weights[i]` (FedAvg: typically the client's number of
    /// training examples), so `weights` must have one finite non-negative entry per update, not all zero. The
    /// robust rules ignore `weights` entirely (pass `&[]` if you like): each update has an equal say.
    pub fn aggregate<U: AsRef<[f32]> + Sync>(
        &self,
        updates: &[U],
        weights: &[f32],
    ) -> Result<Vec<f32>, RobustError> {
        match *self {
            Self::Mean => weighted_mean(updates, weights),
            Self::Median => coordinate_median(updates),
            Self::TrimmedMean { trim_fraction } => trimmed_mean(updates, trim_fraction),
            Self::Krum { byzantine } => Ok(krum(updates, byzantine)?.update),
            Self::MultiKrum {
                byzantine,
                selected,
            } => Ok(multi_krum(updates, byzantine, selected)?.aggregate),
        }
    }

    /// Whether the rule must see every update individually, which rules it out under secure aggregation
    /// (where only the sum is revealed) unless run over group sums. Only [`AggregationRule::Mean`] does not.
    pub fn needs_individual_updates(&self) -> bool {
        !matches!(self, Self::Mean)
    }
}

/// The weighted mean `Σ wᵢ·uᵢ / Σ wᵢ` (FedAvg), accumulated in `f64`.
///
/// `weights` needs one finite, non-negative weight per update, with a positive total.
pub fn weighted_mean<U: AsRef<[f32]> + Sync>(
    updates: &[U],
    weights: &[f32],
) -> Result<Vec<f32>, RobustError> {
    let length = validate_updates(updates)?;
    if weights.len() != updates.len() {
        return Err(RobustError::WeightCountMismatch {
            weights: weights.len(),
            updates: updates.len(),
        });
    }
    if let Some(index) = weights
        .iter()
        .position(|weight| !(weight.is_finite() && *weight >= 0.0))
    {
        return Err(RobustError::InvalidWeight {
            index,
            weight: weights[index],
        });
    }
    let total: f64 = weights.iter().map(|&weight| f64::from(weight)).sum();
    if total <= 0.0 {
        return Err(RobustError::ZeroTotalWeight);
    }
    let weighted: Vec<(&[f32], f64)> = updates
        .iter()
        .zip(weights)
        .filter(|(_, weight)| **weight > 0.0)
        .map(|(update, &weight)| (update.as_ref(), f64::from(weight) / total))
        .collect();
    Ok(mean_of(&weighted, length))
}

/// The coordinate-wise median; for an even number of updates, the mean of the two middle values.
///
/// Each coordinate of the result lies between that coordinate's smallest and largest input value, and while
/// fewer than half the updates are bad, between the smallest and largest honest value.
pub fn coordinate_median<U: AsRef<[f32]> + Sync>(updates: &[U]) -> Result<Vec<f32>, RobustError> {
    let length = validate_updates(updates)?;
    Ok(per_coordinate(updates, length, median_of))
}

/// The coordinate-wise trimmed mean: at every coordinate, drop the `⌊β·n⌋` largest and the `⌊β·n⌋` smallest
/// values and average the rest (`β = trim_fraction`, in `[0, 0.5)`; `β = 0` is the plain mean).
///
/// Each coordinate of the result lies between that coordinate's smallest and largest input value.
pub fn trimmed_mean<U: AsRef<[f32]> + Sync>(
    updates: &[U],
    trim_fraction: f64,
) -> Result<Vec<f32>, RobustError> {
    if !(0.0..0.5).contains(&trim_fraction) {
        return Err(RobustError::TrimFractionOutOfRange { trim_fraction });
    }
    let length = validate_updates(updates)?;
    // β < 0.5 and n ≤ AGGREGATION_UPDATES_MAX, so 2·trimmed < n: at least one value is kept.
    let trimmed = (trim_fraction * updates.len() as f64).floor() as usize;
    Ok(per_coordinate(updates, length, |column| {
        trimmed_mean_of(column, trimmed)
    }))
}

/// Krum (Blanchard et al. 2017, "Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent"):
/// picks the update whose summed squared L2 distance to its `n − f − 2` nearest other updates is smallest.
///
/// Tolerates `f = byzantine` arbitrary updates when `n ≥ 2f + 3`. Ties go to the lower index. Costs
/// `n(n−1)/2` distance computations, bounded by [`KRUM_PAIRWISE_COORDINATES_MAX`].
pub fn krum<U: AsRef<[f32]> + Sync>(
    updates: &[U],
    byzantine: usize,
) -> Result<KrumSelection, RobustError> {
    let scores = krum_scores(updates, byzantine)?;
    let ranking = rank_by_score(&scores);
    let index = ranking.first().copied().ok_or(RobustError::NoUpdates)?;
    Ok(KrumSelection {
        index,
        update: updates[index].as_ref().to_vec(),
    })
}

/// Multi-Krum: the unweighted mean of the `selected` updates with the best Krum scores (see [`krum`]).
///
/// `selected` may be anything from 1 (Krum itself) to `n` (the plain mean); `m ≤ n − f` is the usual
/// choice, so that the average can be made of honest updates alone.
pub fn multi_krum<U: AsRef<[f32]> + Sync>(
    updates: &[U],
    byzantine: usize,
    selected: usize,
) -> Result<MultiKrumSelection, RobustError> {
    let scores = krum_scores(updates, byzantine)?;
    if selected == 0 || selected > updates.len() {
        return Err(RobustError::SelectedOutOfRange {
            selected,
            updates: updates.len(),
        });
    }
    let mut indices = rank_by_score(&scores);
    indices.truncate(selected);
    let share = 1.0 / selected as f64;
    let chosen: Vec<(&[f32], f64)> = indices
        .iter()
        .map(|&index| (updates[index].as_ref(), share))
        .collect();
    let length = updates[0].as_ref().len();
    Ok(MultiKrumSelection {
        aggregate: mean_of(&chosen, length),
        indices,
    })
}

/// Checks the updates and returns their common length.
fn validate_updates<U: AsRef<[f32]> + Sync>(updates: &[U]) -> Result<usize, RobustError> {
    let first = updates.first().ok_or(RobustError::NoUpdates)?;
    if updates.len() > AGGREGATION_UPDATES_MAX {
        return Err(RobustError::TooManyUpdates {
            count: updates.len(),
            limit: AGGREGATION_UPDATES_MAX,
        });
    }
    let length = first.as_ref().len();
    if length == 0 {
        return Err(RobustError::EmptyUpdates);
    }
    if length > MODEL_PARAMETERS_MAX {
        return Err(RobustError::UpdateTooLong {
            length,
            limit: MODEL_PARAMETERS_MAX,
        });
    }
    if let Some((index, update)) = updates
        .iter()
        .enumerate()
        .find(|(_, update)| update.as_ref().len() != length)
    {
        return Err(RobustError::LengthMismatch {
            index,
            length: update.as_ref().len(),
            expected: length,
        });
    }
    let non_finite = updates
        .par_iter()
        .enumerate()
        .find_map_first(|(index, update)| {
            let update = update.as_ref();
            update
                .iter()
                .position(|value| !value.is_finite())
                .map(|coordinate| (index, coordinate, update[coordinate]))
        });
    match non_finite {
        Some((update, coordinate, value)) => Err(RobustError::NonFiniteValue {
            update,
            coordinate,
            value,
        }),
        None => Ok(length),
    }
}

/// `Σ shareᵢ·uᵢ` over already-validated updates of `length` coordinates, accumulated in `f64`.
fn mean_of(weighted: &[(&[f32], f64)], length: usize) -> Vec<f32> {
    let mut output = vec![0.0f32; length];
    output
        .par_chunks_mut(COORDINATE_CHUNK)
        .enumerate()
        .for_each(|(chunk, output)| {
            let start = chunk * COORDINATE_CHUNK;
            let mut sums = vec![0.0f64; output.len()];
            for (update, share) in weighted {
                let values = &update[start..start + output.len()];
                for (sum, &value) in sums.iter_mut().zip(values) {
                    *sum += share * f64::from(value);
                }
            }
            for (out, sum) in output.iter_mut().zip(sums) {
                *out = sum as f32;
            }
        });
    output
}

/// Applies `reduce` to every coordinate's column of values (one per update), in parallel over chunks of
/// coordinates. `reduce` may reorder the column.
fn per_coordinate<U, F>(updates: &[U], length: usize, reduce: F) -> Vec<f32>
where
    U: AsRef<[f32]> + Sync,
    F: Fn(&mut [f32]) -> f32 + Sync,
{
    let slices: Vec<&[f32]> = updates.iter().map(AsRef::as_ref).collect();
    let mut output = vec![0.0f32; length];
    output
        .par_chunks_mut(COORDINATE_CHUNK)
        .enumerate()
        .for_each(|(chunk, output)| {
            let start = chunk * COORDINATE_CHUNK;
            let mut column = Vec::with_capacity(slices.len());
            for (offset, out) in output.iter_mut().enumerate() {
                let coordinate = start + offset;
                column.clear();
                column.extend(slices.iter().map(|update| update[coordinate]));
                *out = reduce(&mut column);
            }
        });
    output
}

/// Median of a non-empty column of finite values, reordering it.
fn median_of(column: &mut [f32]) -> f32 {
    let count = column.len();
    let middle = count / 2;
    let (lower, upper_middle, _) = column.select_nth_unstable_by(middle, f32::total_cmp);
    if count % 2 == 1 {
        return *upper_middle;
    }
    // Even count: the lower middle value is the largest of the lower half.
    let lower_middle = lower.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    ((f64::from(lower_middle) + f64::from(*upper_middle)) / 2.0) as f32
}

/// Mean of a column of finite values after dropping its `trimmed` smallest and `trimmed` largest, reordering
/// it. Needs `2·trimmed < column.len()`.
fn trimmed_mean_of(column: &mut [f32], trimmed: usize) -> f32 {
    let kept_count = column.len() - 2 * trimmed;
    let kept: &[f32] = if trimmed == 0 {
        column
    } else {
        // The `trimmed` smallest go to the front; of the rest, the `kept_count` smallest to its front.
        let (_, _, rest) = column.select_nth_unstable_by(trimmed - 1, f32::total_cmp);
        let (kept, _, _) = rest.select_nth_unstable_by(kept_count, f32::total_cmp);
        kept
    };
    let sum: f64 = kept.iter().map(|&value| f64::from(value)).sum();
    (sum / kept_count as f64) as f32
}

/// Krum scores after validating everything Krum needs.
fn krum_scores<U: AsRef<[f32]> + Sync>(
    updates: &[U],
    byzantine: usize,
) -> Result<Vec<f64>, RobustError> {
    let length = validate_updates(updates)?;
    let count = updates.len();
    let required = byzantine.saturating_mul(2).saturating_add(3);
    if count < required {
        return Err(RobustError::TooFewUpdatesForKrum {
            updates: count,
            byzantine,
            required,
        });
    }
    // count ≤ AGGREGATION_UPDATES_MAX and length ≤ MODEL_PARAMETERS_MAX: these widenings are exact.
    let pairs = count * (count - 1) / 2;
    let pairwise_coordinates = (pairs as u64).saturating_mul(length as u64);
    if pairwise_coordinates > KRUM_PAIRWISE_COORDINATES_MAX {
        return Err(RobustError::KrumTooExpensive {
            pairwise_coordinates,
            limit: KRUM_PAIRWISE_COORDINATES_MAX,
        });
    }

    let slices: Vec<&[f32]> = updates.iter().map(AsRef::as_ref).collect();
    let pair_list: Vec<(usize, usize)> = (0..count)
        .flat_map(|first| (first + 1..count).map(move |second| (first, second)))
        .collect();
    let pair_distances: Vec<f64> = pair_list
        .par_iter()
        .map(|&(first, second)| squared_distance(slices[first], slices[second]))
        .collect();
    let mut distances = vec![0.0f64; count * count];
    for (&(first, second), &distance) in pair_list.iter().zip(&pair_distances) {
        distances[first * count + second] = distance;
        distances[second * count + first] = distance;
    }

    // n ≥ 2f + 3, so 1 ≤ neighbours ≤ n − 2 < n − 1 (the number of others).
    let neighbours = count - byzantine - 2;
    let scores = (0..count)
        .map(|index| {
            let mut others: Vec<f64> = distances[index * count..(index + 1) * count]
                .iter()
                .enumerate()
                .filter(|&(other, _)| other != index)
                .map(|(_, &distance)| distance)
                .collect();
            let (nearest, _, _) = others.select_nth_unstable_by(neighbours, f64::total_cmp);
            nearest.iter().sum()
        })
        .collect();
    Ok(scores)
}

/// Indices sorted by ascending score, ties by ascending index.
fn rank_by_score(scores: &[f64]) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..scores.len()).collect();
    indices.sort_by(|&a, &b| match scores[a].total_cmp(&scores[b]) {
        Ordering::Equal => a.cmp(&b),
        unequal => unequal,
    });
    indices
}

/// Squared L2 distance in `f64`, with independent partial sums so the loop vectorizes.
fn squared_distance(first: &[f32], second: &[f32]) -> f64 {
    const LANES: usize = 8;
    let mut partial = [0.0f64; LANES];
    let first_chunks = first.chunks_exact(LANES);
    let second_chunks = second.chunks_exact(LANES);
    let tail: f64 = first_chunks
        .remainder()
        .iter()
        .zip(second_chunks.remainder())
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum();
    for (a, b) in first_chunks.zip(second_chunks) {
        for lane in 0..LANES {
            let difference = f64::from(a[lane]) - f64::from(b[lane]);
            partial[lane] += difference * difference;
        }
    }
    partial.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use rand_distr::{Distribution, Normal};

    fn norm(vector: &[f32]) -> f64 {
        vector
            .iter()
            .map(|&v| f64::from(v).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    fn distance(first: &[f32], second: &[f32]) -> f64 {
        squared_distance(first, second).sqrt()
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        let odd = vec![vec![1.0f32, 10.0], vec![3.0, 20.0], vec![2.0, 40.0]];
        assert_eq!(coordinate_median(&odd), Ok(vec![2.0, 20.0]));
        let even = vec![
            vec![1.0f32, 10.0],
            vec![4.0, 20.0],
            vec![2.0, 30.0],
            vec![3.0, 50.0],
        ];
        assert_eq!(coordinate_median(&even), Ok(vec![2.5, 25.0]));
        let single: Vec<&[f32]> = vec![&[7.0, -1.0]];
        assert_eq!(coordinate_median(&single), Ok(vec![7.0, -1.0]));
        let pair: Vec<&[f32]> = vec![&[-1.0], &[1.0]];
        assert_eq!(coordinate_median(&pair), Ok(vec![0.0]));
    }

    #[test]
    fn trimmed_mean_drops_the_extremes() {
        let updates: Vec<Vec<f32>> = [1.0f32, 100.0, 3.0, -50.0, 4.0]
            .iter()
            .map(|&value| vec![value, 2.0 * value])
            .collect();
        // ⌊0.2·5⌋ = 1 dropped at each end: mean of 1, 3, 4.
        let result = trimmed_mean(&updates, 0.2).expect("valid");
        assert!((result[0] - 8.0 / 3.0).abs() < 1e-6 && (result[1] - 16.0 / 3.0).abs() < 1e-6);
        // ⌊0.1·5⌋ = 0: the plain mean.
        assert_eq!(trimmed_mean(&updates, 0.1), Ok(vec![11.6, 23.2]));
        assert_eq!(trimmed_mean(&updates, 0.0), Ok(vec![11.6, 23.2]));
        // ⌊0.4·5⌋ = 2 at each end: the median.
        assert_eq!(trimmed_mean(&updates, 0.4), Ok(vec![3.0, 6.0]));
    }

    #[test]
    fn weighted_mean_is_fedavg() {
        let updates = vec![vec![1.0f32, 2.0], vec![3.0, 4.0], vec![100.0, 100.0]];
        assert_eq!(
            weighted_mean(&updates, &[1.0, 3.0, 0.0]),
            Ok(vec![2.5, 3.5])
        );
        assert_eq!(
            AggregationRule::Mean.aggregate(&updates, &[1.0, 1.0, 1.0]),
            Ok(vec![104.0 / 3.0, 106.0 / 3.0])
        );
    }

    #[test]
    fn krum_and_multi_krum_on_a_line() {
        // Points 0, 1, 2, 3, 100 with f = 1: scores sum the squared distances to the 2 nearest others,
        // 5, 2, 2, 5 and 97² + 98² = 19013.
        let updates: Vec<Vec<f32>> = [0.0f32, 1.0, 2.0, 3.0, 100.0]
            .iter()
            .map(|&v| vec![v])
            .collect();
        assert_eq!(
            krum_scores(&updates, 1),
            Ok(vec![5.0, 2.0, 2.0, 5.0, 19_013.0])
        );
        assert_eq!(
            krum(&updates, 1),
            Ok(KrumSelection {
                index: 1,
                update: vec![1.0]
            })
        );
        let selection = multi_krum(&updates, 1, 3).expect("valid");
        assert_eq!(selection.indices, [1, 2, 0]);
        assert_eq!(selection.aggregate, [1.0]);
        assert_eq!(multi_krum(&updates, 1, 5).expect("valid").aggregate, [21.2]);
        assert_eq!(
            AggregationRule::MultiKrum {
                byzantine: 1,
                selected: 2
            }
            .aggregate(&updates, &[]),
            Ok(vec![1.5])
        );
    }

    /// Ten updates near an honest direction, of which the first two are replaced by the honest direction
    /// flipped and scaled ×10.
    fn sign_flip_round() -> (Vec<Vec<f32>>, Vec<f32>) {
        let length = 200;
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let noise = Normal::new(0.0f32, 0.1).expect("valid");
        let direction: Vec<f32> = (0..length).map(|i| ((i as f32) * 0.37).sin()).collect();
        let mut updates: Vec<Vec<f32>> = (0..10)
            .map(|_| {
                direction
                    .iter()
                    .map(|&d| d + noise.sample(&mut rng))
                    .collect()
            })
            .collect();
        let honest_mean = weighted_mean(&updates[2..], &[1.0; 8]).expect("valid");
        for attacker in &mut updates[..2] {
            for (value, &d) in attacker.iter_mut().zip(&direction) {
                *value = -10.0 * d;
            }
        }
        (updates, honest_mean)
    }

    #[test]
    fn robust_rules_resist_sign_flipped_updates() {
        let (updates, honest_mean) = sign_flip_round();
        let scale = norm(&honest_mean);
        let mean = weighted_mean(&updates, &[1.0; 10]).expect("valid");
        let median = coordinate_median(&updates).expect("valid");
        let trimmed = trimmed_mean(&updates, 0.2).expect("valid");
        // The plain mean is dragged past zero: (8 − 20)/10 of the honest direction.
        assert!(distance(&mean, &honest_mean) > 1.5 * scale);
        assert!(distance(&median, &honest_mean) < 0.3 * scale);
        assert!(distance(&trimmed, &honest_mean) < 0.3 * scale);
        let krum_choice = krum(&updates, 2).expect("valid");
        assert!(
            krum_choice.index >= 2,
            "Krum chose attacker {}",
            krum_choice.index
        );
        let multi = multi_krum(&updates, 2, 8).expect("valid");
        assert!(multi.indices.iter().all(|&index| index >= 2));
        assert!(distance(&multi.aggregate, &honest_mean) < 1e-4 * scale);
    }

    #[test]
    fn bad_input_is_rejected() {
        let empty: Vec<Vec<f32>> = vec![];
        assert_eq!(coordinate_median(&empty), Err(RobustError::NoUpdates));
        assert_eq!(
            coordinate_median(&[Vec::<f32>::new()]),
            Err(RobustError::EmptyUpdates)
        );
        assert_eq!(
            coordinate_median(&[vec![1.0f32, 2.0], vec![1.0]]),
            Err(RobustError::LengthMismatch {
                index: 1,
                length: 1,
                expected: 2
            })
        );
        assert!(matches!(
            trimmed_mean(&[vec![1.0f32], vec![f32::NAN]], 0.0),
            Err(RobustError::NonFiniteValue {
                update: 1,
                coordinate: 0,
                ..
            })
        ));
        assert!(matches!(
            krum(&vec![vec![f32::NEG_INFINITY]; 5], 1),
            Err(RobustError::NonFiniteValue { update: 0, .. })
        ));
        for trim_fraction in [-0.1, 0.5, 0.7, f64::NAN] {
            assert!(matches!(
                trimmed_mean(&[vec![1.0f32]], trim_fraction),
                Err(RobustError::TrimFractionOutOfRange { .. })
            ));
        }
        assert_eq!(
            krum(&vec![vec![1.0f32]; 6], 2),
            Err(RobustError::TooFewUpdatesForKrum {
                updates: 6,
                byzantine: 2,
                required: 7
            })
        );
        assert!(matches!(
            krum(&vec![vec![1.0f32]; 6], usize::MAX),
            Err(RobustError::TooFewUpdatesForKrum { .. })
        ));
        for selected in [0, 6] {
            assert_eq!(
                multi_krum(&vec![vec![1.0f32]; 5], 1, selected),
                Err(RobustError::SelectedOutOfRange {
                    selected,
                    updates: 5
                })
            );
        }
        let too_many = vec![vec![0.0f32]; AGGREGATION_UPDATES_MAX + 1];
        assert!(matches!(
            coordinate_median(&too_many),
            Err(RobustError::TooManyUpdates { .. })
        ));
        // 499 500 pairs × 40 100 coordinates is just over the limit; the rows share one buffer.
        let row = vec![0.0f32; 40_100];
        let wide: Vec<&[f32]> = vec![&row; AGGREGATION_UPDATES_MAX];
        assert!(matches!(
            krum(&wide, 1),
            Err(RobustError::KrumTooExpensive { .. })
        ));
    }

    #[test]
    fn bad_weights_are_rejected() {
        let updates = vec![vec![1.0f32], vec![2.0]];
        assert_eq!(
            weighted_mean(&updates, &[1.0]),
            Err(RobustError::WeightCountMismatch {
                weights: 1,
                updates: 2
            })
        );
        assert_eq!(
            weighted_mean(&updates, &[1.0, -1.0]),
            Err(RobustError::InvalidWeight {
                index: 1,
                weight: -1.0
            })
        );
        assert!(matches!(
            weighted_mean(&updates, &[f32::NAN, 1.0]),
            Err(RobustError::InvalidWeight { index: 0, .. })
        ));
        assert_eq!(
            weighted_mean(&updates, &[0.0, 0.0]),
            Err(RobustError::ZeroTotalWeight)
        );
        // Robust rules ignore the weights altogether.
        assert_eq!(
            AggregationRule::Median.aggregate(&updates, &[]),
            Ok(vec![1.5])
        );
    }

    #[test]
    fn long_updates_span_several_chunks() {
        let length = 3 * COORDINATE_CHUNK + 17;
        let updates: Vec<Vec<f32>> = (0..5)
            .map(|k| (0..length).map(|i| (i * (k + 1)) as f32).collect())
            .collect();
        let median = coordinate_median(&updates).expect("valid");
        let mean = weighted_mean(&updates, &[1.0; 5]).expect("valid");
        for i in [0, COORDINATE_CHUNK - 1, COORDINATE_CHUNK, length - 1] {
            assert_eq!(median[i], (3 * i) as f32);
            assert_eq!(mean[i], (3 * i) as f32);
        }
    }

    #[test]
    fn rules_serialize_with_a_tag_and_dispatch() {
        let rules = [
            AggregationRule::Mean,
            AggregationRule::Median,
            AggregationRule::TrimmedMean { trim_fraction: 0.1 },
            AggregationRule::Krum { byzantine: 1 },
            AggregationRule::MultiKrum {
                byzantine: 1,
                selected: 3,
            },
        ];
        for rule in rules {
            let json = serde_json::to_string(&rule).expect("serializable");
            assert_eq!(
                serde_json::from_str::<AggregationRule>(&json).expect("round trip"),
                rule
            );
            assert_eq!(
                rule.needs_individual_updates(),
                rule != AggregationRule::Mean
            );
        }
        assert_eq!(
            serde_json::to_string(&AggregationRule::TrimmedMean {
                trim_fraction: 0.25
            })
            .expect("serializable"),
            r#"{"rule":"trimmed_mean","trim_fraction":0.25}"#
        );
        assert_eq!(AggregationRule::default(), AggregationRule::Mean);
        let updates = vec![vec![1.0f32], vec![2.0], vec![3.0], vec![4.0], vec![50.0]];
        assert_eq!(
            AggregationRule::Median.aggregate(&updates, &[]),
            Ok(vec![3.0])
        );
        assert_eq!(
            AggregationRule::TrimmedMean { trim_fraction: 0.2 }.aggregate(&updates, &[]),
            Ok(vec![3.0])
        );
        assert_eq!(
            AggregationRule::Krum { byzantine: 1 }.aggregate(&updates, &[]),
            Ok(vec![2.0])
        );
    }

    fn updates_strategy() -> impl Strategy<Value = Vec<Vec<f32>>> {
        (1usize..12, 1usize..8).prop_flat_map(|(count, length)| {
            proptest::collection::vec(proptest::collection::vec(-1e6f32..1e6, length), count)
        })
    }

    fn within_coordinate_range(updates: &[Vec<f32>], aggregate: &[f32]) -> bool {
        aggregate.iter().enumerate().all(|(coordinate, &value)| {
            let column = updates.iter().map(|update| update[coordinate]);
            let low = column.clone().fold(f32::INFINITY, f32::min);
            let high = column.fold(f32::NEG_INFINITY, f32::max);
            low <= value && value <= high
        })
    }

    proptest! {
        #[test]
        fn median_lies_within_coordinate_range(updates in updates_strategy()) {
            let median = coordinate_median(&updates).expect("valid");
            prop_assert!(within_coordinate_range(&updates, &median));
        }

        #[test]
        fn median_matches_sorting(updates in updates_strategy()) {
            let median = coordinate_median(&updates).expect("valid");
            for (coordinate, &value) in median.iter().enumerate() {
                let mut column: Vec<f32> = updates.iter().map(|update| update[coordinate]).collect();
                column.sort_by(f32::total_cmp);
                let n = column.len();
                let expected = if n % 2 == 1 {
                    column[n / 2]
                } else {
                    ((f64::from(column[n / 2 - 1]) + f64::from(column[n / 2])) / 2.0) as f32
                };
                prop_assert_eq!(value, expected);
            }
        }

        #[test]
        fn trimmed_mean_lies_within_coordinate_range(
            updates in updates_strategy(),
            trim_fraction in 0.0f64..0.5,
        ) {
            let trimmed = trimmed_mean(&updates, trim_fraction).expect("valid");
            prop_assert!(within_coordinate_range(&updates, &trimmed));
        }
    }
}
