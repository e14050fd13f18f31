//! Sampling estimators over a retrained [`Utility`]: TMC Shapley, Beta Shapley, Data Banzhaf (MSR) and
//! leave-one-out.
//!
//! Every sample (a permutation or a subset) draws from its own random stream, derived from the seed and the
//! sample's index ([`crate::rng`]). Samples are evaluated in parallel a fixed number at a time and their
//! contributions are added in sample order, so the values are bit-identical for any thread count.
//!
//! * **TMC Shapley** (Ghorbani & Zou 2019): marginal contributions along random permutations; once a prefix
//!   scores within `tolerance · |U(D)|` of the full set, the rest of the permutation is taken to contribute 0.
//! * **Beta Shapley** (Kwon & Zou 2022), Beta(α, β), e.g. (16, 1): the same permutations, with the marginal
//!   contribution at position `j` (1-based) weighted by `ρ(j) = n·C(n−1, j−1)·B(j+β−1, n−j+α)/B(α, β)`, which
//!   averages to 1 over positions; Beta(16, 1) favours small coalitions. Computed in log space.
//! * **Data Banzhaf** (Wang & Jia 2023), maximum-sample-reuse: each sample includes every point with
//!   probability ½; the value is the mean score of samples containing the point minus the mean of those
//!   that do not.
//! * **Leave-one-out**: `U(D) − U(D \ {i})`.

use rayon::prelude::*;

use crate::Progress;
use crate::error::{Result, ValuationError};
use crate::limits;
use crate::rng::Stream;
use crate::utility::Utility;

/// Samples evaluated in parallel before their contributions are folded in order.
const SAMPLES_IN_FLIGHT: usize = 32;

fn check(utility: &dyn Utility, samples: usize) -> Result<()> {
    if utility.is_empty() {
        return Err(ValuationError::invalid(
            "train",
            "the training set has no rows",
        ));
    }
    if utility.len() > limits::RETRAIN_ROWS_MAX {
        return Err(ValuationError::LimitExceeded {
            context: "retraining methods".into(),
            what: "training rows",
            value: utility.len(),
            max: limits::RETRAIN_ROWS_MAX,
        });
    }
    if samples == 0 || samples > limits::SAMPLES_MAX {
        return Err(ValuationError::invalid(
            "samples",
            format!("must be in 1..={}", limits::SAMPLES_MAX),
        ));
    }
    Ok(())
}

/// Permutation sampling with position weights; `weights[j]` multiplies the marginal at 0-based position `j`.
fn permutation_sampling(
    utility: &dyn Utility,
    samples: usize,
    seed: u64,
    tolerance: f64,
    weights: Option<&[f64]>,
    domain: &str,
    progress: &dyn Progress,
) -> Result<Vec<f64>> {
    check(utility, samples)?;
    if !(tolerance.is_finite() && tolerance >= 0.0) {
        return Err(ValuationError::invalid(
            "tolerance",
            "must be non-negative and finite",
        ));
    }
    let n = utility.len();
    let all: Vec<usize> = (0..n).collect();
    let full = utility.score(&all);
    let empty = utility.score(&[]);
    progress.start(samples as u64);
    let mut total = vec![0.0_f64; n];
    let indices: Vec<usize> = (0..samples).collect();
    for wave in indices.chunks(SAMPLES_IN_FLIGHT) {
        let contributions: Vec<Vec<(usize, f64)>> = wave
            .par_iter()
            .map(|&sample| {
                let order = Stream::new(domain, seed, sample as u64).permutation(n);
                let mut stop =
                    |score: f64| tolerance > 0.0 && (full - score).abs() <= tolerance * full.abs();
                let scores = utility.prefix_scores(&order, &mut stop);
                let mut previous = empty;
                let mut out = Vec::with_capacity(scores.len());
                for (position, (&index, &score)) in order.iter().zip(&scores).enumerate() {
                    let weight = weights.map_or(1.0, |w| w[position]);
                    out.push((index, weight * (score - previous)));
                    previous = score;
                }
                progress.advance(1);
                out
            })
            .collect();
        for contribution in contributions {
            for (index, value) in contribution {
                total[index] += value;
            }
        }
    }
    Ok(total
        .into_iter()
        .map(|value| value / samples as f64)
        .collect())
}

/// Truncated Monte Carlo Shapley over `permutations` random permutations.
///
/// # Errors
///
/// An empty or too large training set, or `permutations`/`tolerance` out of range.
pub fn tmc_shapley(
    utility: &dyn Utility,
    permutations: usize,
    tolerance: f64,
    seed: u64,
    progress: &dyn Progress,
) -> Result<Vec<f64>> {
    permutation_sampling(
        utility,
        permutations,
        seed,
        tolerance,
        None,
        "tmc-shapley",
        progress,
    )
}

/// The Beta(α, β) position weights `ρ(1..=n)`, normalised to average exactly 1 (as the exact ones do).
///
/// # Errors
///
/// `alpha` or `beta` not positive and finite.
pub fn beta_weights(n: usize, alpha: f64, beta: f64) -> Result<Vec<f64>> {
    if !(alpha.is_finite() && alpha > 0.0 && beta.is_finite() && beta > 0.0) {
        return Err(ValuationError::invalid(
            "beta",
            "alpha and beta must be positive and finite",
        ));
    }
    // log ρ(j) = log C(n−1, j−1) + log Γ(j+β−1) + log Γ(n−j+α) + const; the Γ terms relative to Γ(β) and
    // Γ(α) are running sums of logs, so no log-gamma function is needed.
    let mut log_choose = vec![0.0_f64; n]; // log C(n-1, j) for j = 0..n-1
    for j in 1..n {
        log_choose[j] = log_choose[j - 1] + ((n - j) as f64).ln() - (j as f64).ln();
    }
    let mut log_gamma_low = vec![0.0_f64; n]; // log Γ(β + j) − log Γ(β), j = 0..n-1
    for j in 1..n {
        log_gamma_low[j] = log_gamma_low[j - 1] + (beta + (j - 1) as f64).ln();
    }
    let mut log_gamma_high = vec![0.0_f64; n]; // log Γ(α + j) − log Γ(α), j = 0..n-1
    for j in 1..n {
        log_gamma_high[j] = log_gamma_high[j - 1] + (alpha + (j - 1) as f64).ln();
    }
    // Position j (1-based) = index p = j − 1: coalition of size p; Γ(p + β) and Γ(n − 1 − p + α).
    let logs: Vec<f64> = (0..n)
        .map(|p| log_choose[p] + log_gamma_low[p] + log_gamma_high[n - 1 - p])
        .collect();
    let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let raw: Vec<f64> = logs.iter().map(|log| (log - max).exp()).collect();
    let sum: f64 = raw.iter().sum();
    Ok(raw
        .into_iter()
        .map(|value| value * n as f64 / sum)
        .collect())
}

/// Beta(α, β) Shapley by permutation sampling with position weights.
///
/// # Errors
///
/// As [`tmc_shapley`], or invalid α, β.
pub fn beta_shapley(
    utility: &dyn Utility,
    permutations: usize,
    tolerance: f64,
    alpha: f64,
    beta: f64,
    seed: u64,
    progress: &dyn Progress,
) -> Result<Vec<f64>> {
    let weights = beta_weights(utility.len(), alpha, beta)?;
    permutation_sampling(
        utility,
        permutations,
        seed,
        tolerance,
        Some(&weights),
        "beta-shapley",
        progress,
    )
}

/// Data Banzhaf values by the maximum-sample-reuse estimator over `samples` random subsets.
///
/// # Errors
///
/// An empty or too large training set, or `samples` out of range.
pub fn banzhaf_msr(
    utility: &dyn Utility,
    samples: usize,
    seed: u64,
    progress: &dyn Progress,
) -> Result<Vec<f64>> {
    check(utility, samples)?;
    let n = utility.len();
    let mut sum_in = vec![0.0_f64; n];
    let mut sum_out = vec![0.0_f64; n];
    let mut count_in = vec![0_u64; n];
    progress.start(samples as u64);
    let indices: Vec<usize> = (0..samples).collect();
    for wave in indices.chunks(SAMPLES_IN_FLIGHT) {
        let drawn: Vec<(Vec<bool>, f64)> = wave
            .par_iter()
            .map(|&sample| {
                let mut stream = Stream::new("data-banzhaf", seed, sample as u64);
                let member: Vec<bool> = (0..n).map(|_| stream.coin()).collect();
                let subset: Vec<usize> = (0..n).filter(|&index| member[index]).collect();
                let score = utility.score(&subset);
                progress.advance(1);
                (member, score)
            })
            .collect();
        for (member, score) in drawn {
            for index in 0..n {
                if member[index] {
                    sum_in[index] += score;
                    count_in[index] += 1;
                } else {
                    sum_out[index] += score;
                }
            }
        }
    }
    let samples = samples as u64;
    Ok((0..n)
        .map(|index| {
            let inside = count_in[index];
            let outside = samples - inside;
            let mean_in = if inside > 0 {
                sum_in[index] / inside as f64
            } else {
                0.0
            };
            let mean_out = if outside > 0 {
                sum_out[index] / outside as f64
            } else {
                0.0
            };
            mean_in - mean_out
        })
        .collect())
}

/// Leave-one-out values `U(D) − U(D \ {i})`.
///
/// # Errors
///
/// An empty or too large training set.
pub fn leave_one_out(utility: &dyn Utility, progress: &dyn Progress) -> Result<Vec<f64>> {
    check(utility, 1)?;
    let n = utility.len();
    let all: Vec<usize> = (0..n).collect();
    let full = utility.score(&all);
    progress.start(n as u64);
    Ok((0..n)
        .into_par_iter()
        .map(|left_out| {
            let rest: Vec<usize> = (0..n).filter(|&index| index != left_out).collect();
            let value = full - utility.score(&rest);
            progress.advance(1);
            value
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beta_one_one_is_shapley() {
        let weights = beta_weights(50, 1.0, 1.0).unwrap();
        assert!(weights.iter().all(|w| (w - 1.0).abs() < 1e-9));
    }

    #[test]
    fn beta_sixteen_one_favours_small_coalitions() {
        let n = 100;
        let weights = beta_weights(n, 16.0, 1.0).unwrap();
        assert!((weights.iter().sum::<f64>() / n as f64 - 1.0).abs() < 1e-12);
        assert!(weights.windows(2).all(|pair| pair[0] >= pair[1]));
        // Exact first weight for β = 1: n·α/(n−1+α).
        assert!((weights[0] - n as f64 * 16.0 / (n as f64 - 1.0 + 16.0)).abs() < 1e-9);
    }
}
