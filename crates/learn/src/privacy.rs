//! Differential privacy for federated learning: DP-FedAvg clipping and noise, and the Rényi-DP accountant.
//!
//! This module owns two things.
//!
//! - **The accountant** ([`RdpAccountant`], [`epsilon`], [`noise_multiplier_for`]): Rényi differential
//!   privacy (RDP) of the Poisson-subsampled Gaussian mechanism, composed over many steps and converted to an
//!   `(ε, δ)` guarantee. It reproduces Google's `dp-accounting` 0.6.0 `RdpAccountant` fed with
//!   `PoissonSampledDpEvent(q, GaussianDpEvent(σ))` composed `T` times, under the add-or-remove-one
//!   neighbouring relation: the same default orders, the same log-space series for integer and fractional
//!   orders (Mironov, Talwar and Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism")
//!   and the same RDP-to-DP conversion (Balle et al. 2020, "Hypothesis Testing Interpretations and Rényi
//!   Differential Privacy", Proposition 12, with the KL-divergence shortcut for tiny divergences).
//! - **DP-FedAvg helpers** ([`clip_l2`], [`add_gaussian_noise`], [`distributed_noise_standard_deviation`],
//!   [`effective_noise_multiplier`], [`DpConfig`]): each client clips its update to L2 norm `S` and adds its
//!   share of Gaussian noise before secure aggregation, so that the *sum* the aggregator unmasks carries noise
//!   of standard deviation `σ·S`. The aggregator never sees a noiseless individual update, and the sum is
//!   protected as the Gaussian mechanism with noise multiplier `σ`.
//!
//! For federated learning the accountant's sampling rate `q` is the probability that a given contributor
//! takes part in a round (clients per round / population, with Poisson sampling), the noise multiplier is
//! `σ` (the noise standard deviation of the sum divided by the clip norm) and the steps are rounds. When
//! clients drop out after adding their noise, feed the accountant [`effective_noise_multiplier`].
//!
//! An infinite epsilon is a legitimate answer (for instance no noise, `σ = 0`, with `q > 0`): it is returned as
//! `f64::INFINITY`, never replaced by a large finite number.

use std::f64::consts::{PI, SQRT_2};

use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::limits::{
    CLIENTS_MAX, MODEL_PARAMETERS_MAX, NOISE_MULTIPLIER_SEARCH_MAX, PRIVACY_STEPS_MAX,
    RENYI_ORDER_COUNT_MAX, RENYI_ORDER_VALUE_MAX,
};

/// What went wrong in privacy accounting or in clipping and noising an update.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PrivacyError {
    /// The sampling rate is not a probability.
    #[error(
        "sampling rate {sampling_rate} is not in [0, 1]; pass the probability that one record or client takes part in a step"
    )]
    SamplingRateOutOfRange {
        /// The rejected sampling rate.
        sampling_rate: f64,
    },
    /// The noise multiplier is negative, infinite or NaN.
    #[error(
        "noise multiplier {noise_multiplier} must be finite and at least 0; pass the noise standard deviation divided by the clip norm"
    )]
    InvalidNoiseMultiplier {
        /// The rejected noise multiplier.
        noise_multiplier: f64,
    },
    /// δ is outside the open interval (0, 1).
    #[error(
        "delta {delta} must lie strictly between 0 and 1; a usual choice is below 1 / number of records"
    )]
    DeltaOutOfRange {
        /// The rejected δ.
        delta: f64,
    },
    /// The target ε of a noise search is not a positive finite number.
    #[error("target epsilon {target_epsilon} must be finite and greater than 0")]
    InvalidTargetEpsilon {
        /// The rejected target.
        target_epsilon: f64,
    },
    /// No noise multiplier up to the search limit reaches the target ε.
    #[error(
        "even noise multiplier {noise_multiplier_max} gives epsilon {epsilon_at_max} above the target {target_epsilon}; raise the target, lower the sampling rate or run fewer steps"
    )]
    TargetEpsilonUnreachable {
        /// The requested ε.
        target_epsilon: f64,
        /// The largest noise multiplier tried.
        noise_multiplier_max: f64,
        /// The ε that noise multiplier gives.
        epsilon_at_max: f64,
    },
    /// Too many steps composed at once.
    #[error("{steps} steps exceed the limit of {limit}; compose fewer steps")]
    TooManySteps {
        /// The rejected step count.
        steps: u64,
        /// [`PRIVACY_STEPS_MAX`].
        limit: u64,
    },
    /// An accountant needs at least one Rényi order.
    #[error(
        "no Rényi orders given; pass at least one order greater than 1, or use the default orders"
    )]
    NoOrders,
    /// Too many Rényi orders.
    #[error("{count} Rényi orders exceed the limit of {limit}; pass fewer orders")]
    TooManyOrders {
        /// The number of orders passed.
        count: usize,
        /// [`RENYI_ORDER_COUNT_MAX`].
        limit: usize,
    },
    /// A Rényi order is not a finite number in (1, [`RENYI_ORDER_VALUE_MAX`]].
    #[error("Rényi order {order} must be finite, greater than 1 and at most {limit}")]
    InvalidOrder {
        /// The rejected order.
        order: f64,
        /// [`RENYI_ORDER_VALUE_MAX`].
        limit: f64,
    },
    /// The clip norm is not a positive finite number.
    #[error("clip norm {clip_norm} must be finite and greater than 0")]
    InvalidClipNorm {
        /// The rejected clip norm.
        clip_norm: f32,
    },
    /// An update to clip has no coordinates.
    #[error("the update is empty; pass the flat parameter vector to clip")]
    EmptyUpdate,
    /// An update or noise vector is longer than any model may be.
    #[error("length {length} exceeds the limit of {limit} parameters")]
    UpdateTooLong {
        /// The rejected length.
        length: usize,
        /// [`MODEL_PARAMETERS_MAX`].
        limit: usize,
    },
    /// An update holds NaN or an infinity.
    #[error(
        "update coordinate {coordinate} is {value}; updates must be finite (check the local training for divergence)"
    )]
    NonFiniteUpdate {
        /// Index of the first offending coordinate.
        coordinate: usize,
        /// Its value.
        value: f32,
    },
    /// A noise standard deviation is negative, infinite or NaN.
    #[error("noise standard deviation {standard_deviation} must be finite and at least 0")]
    InvalidStandardDeviation {
        /// The rejected standard deviation.
        standard_deviation: f32,
    },
    /// A client count is 0 or above [`CLIENTS_MAX`].
    #[error("client count {clients} must be between 1 and {limit}")]
    ClientCountOutOfRange {
        /// The rejected count.
        clients: usize,
        /// [`CLIENTS_MAX`].
        limit: usize,
    },
    /// More clients survived than were planned.
    #[error(
        "{surviving} surviving clients exceed the {planned} planned; pass the planned count the noise was sized for"
    )]
    SurvivorsExceedPlanned {
        /// Clients that were planned (and sized their noise for).
        planned: usize,
        /// Clients whose noisy updates reached the sum.
        surviving: usize,
    },
}

// ---------------------------------------------------------------------------------------------------------
// The accountant
// ---------------------------------------------------------------------------------------------------------

/// The Rényi orders `dp-accounting` uses by default: 1.1, 1.2, …, 10.9, then 11, 12, …, 63, then 128, 256,
/// 512 and 1024 (156 orders).
pub fn default_orders() -> Vec<f64> {
    let mut orders = Vec::with_capacity(156);
    orders.extend((1..100u32).map(|tenths| 1.0 + f64::from(tenths) / 10.0));
    orders.extend((11..64u32).map(f64::from));
    orders.extend([128.0, 256.0, 512.0, 1024.0]);
    orders
}

/// An `(ε, δ)` guarantee read off the accountant, with the Rényi order that gave the tightest ε.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpsilonReport {
    /// The privacy loss ε at the requested δ; `f64::INFINITY` when no order bounds it (no noise, say).
    pub epsilon: f64,
    /// The Rényi order at which ε was attained.
    pub order: f64,
}

/// A Rényi-DP accountant: the RDP of everything composed so far, at a fixed set of orders.
///
/// Composition adds RDP order by order; [`RdpAccountant::epsilon`] converts to `(ε, δ)`-DP by minimising over
/// the orders. An order whose series does not converge is treated as giving no bound (infinite RDP), exactly
/// as `dp-accounting` does.
#[derive(Debug, Clone, PartialEq)]
pub struct RdpAccountant {
    orders: Vec<f64>,
    rdp: Vec<f64>,
}

impl Default for RdpAccountant {
    fn default() -> Self {
        Self::new()
    }
}

impl RdpAccountant {
    /// An accountant over [`default_orders`], with nothing composed yet.
    pub fn new() -> Self {
        let orders = default_orders();
        let rdp = vec![0.0; orders.len()];
        Self { orders, rdp }
    }

    /// An accountant over the given Rényi orders, each finite, above 1 and at most
    /// [`RENYI_ORDER_VALUE_MAX`]; at most [`RENYI_ORDER_COUNT_MAX`] of them.
    pub fn with_orders(orders: Vec<f64>) -> Result<Self, PrivacyError> {
        if orders.is_empty() {
            return Err(PrivacyError::NoOrders);
        }
        if orders.len() > RENYI_ORDER_COUNT_MAX {
            return Err(PrivacyError::TooManyOrders {
                count: orders.len(),
                limit: RENYI_ORDER_COUNT_MAX,
            });
        }
        if let Some(&order) = orders
            .iter()
            .find(|order| !(order.is_finite() && **order > 1.0 && **order <= RENYI_ORDER_VALUE_MAX))
        {
            return Err(PrivacyError::InvalidOrder {
                order,
                limit: RENYI_ORDER_VALUE_MAX,
            });
        }
        let rdp = vec![0.0; orders.len()];
        Ok(Self { orders, rdp })
    }

    /// The Rényi orders tracked.
    pub fn orders(&self) -> &[f64] {
        &self.orders
    }

    /// The Rényi divergence bound accumulated so far at each order (same indexing as
    /// [`RdpAccountant::orders`]); `f64::INFINITY` where an order gives no bound.
    pub fn rdp(&self) -> &[f64] {
        &self.rdp
    }

    /// Composes `steps` runs of the Gaussian mechanism with noise multiplier `noise_multiplier` applied to a
    /// Poisson sample of rate `sampling_rate` (`PoissonSampledDpEvent(q, GaussianDpEvent(σ))` self-composed
    /// `steps` times).
    ///
    /// `sampling_rate = 1` is the Gaussian mechanism without subsampling; `sampling_rate = 0` touches no data
    /// and costs nothing; `noise_multiplier = 0` with `sampling_rate > 0` makes every order infinite.
    /// Composing zero steps changes nothing. Arguments are checked before anything is changed.
    pub fn compose_poisson_subsampled_gaussian(
        &mut self,
        sampling_rate: f64,
        noise_multiplier: f64,
        steps: u64,
    ) -> Result<(), PrivacyError> {
        validate_sampling_rate(sampling_rate)?;
        validate_noise_multiplier(noise_multiplier)?;
        if steps > PRIVACY_STEPS_MAX {
            return Err(PrivacyError::TooManySteps {
                steps,
                limit: PRIVACY_STEPS_MAX,
            });
        }
        if steps == 0 {
            return Ok(());
        }
        // Exact: steps <= PRIVACY_STEPS_MAX < 2^53.
        let count = steps as f64;
        for (order, rdp) in self.orders.iter().zip(self.rdp.iter_mut()) {
            let one_step = rdp_poisson_subsampled_gaussian(sampling_rate, noise_multiplier, *order);
            if one_step != 0.0 {
                *rdp += count * one_step;
            }
        }
        Ok(())
    }

    /// The smallest ε, over the tracked orders, such that everything composed so far is `(ε, δ)`-DP.
    ///
    /// Uses the conversion of Balle et al. 2020 (Proposition 12),
    /// `ε = rdp + ln(1 − 1/α) − ln(δ·α) / (α − 1)` for orders `α > 1.01`, and `ε = 0` at any order whose RDP is so
    /// small that `δ ≥ sqrt(1 − exp(−rdp))` (the KL-divergence bound), as `dp-accounting` 0.6.0 does. The result
    /// is at least 0 and may be `f64::INFINITY`.
    pub fn epsilon(&self, delta: f64) -> Result<EpsilonReport, PrivacyError> {
        if !(delta > 0.0 && delta < 1.0) {
            return Err(PrivacyError::DeltaOutOfRange { delta });
        }
        let mut best = EpsilonReport {
            epsilon: f64::INFINITY,
            order: self.orders.first().copied().unwrap_or(f64::NAN),
        };
        let mut found = false;
        for (&order, &rdp) in self.orders.iter().zip(&self.rdp) {
            let epsilon = epsilon_at_order(order, rdp, delta);
            if !found || epsilon < best.epsilon {
                best = EpsilonReport { epsilon, order };
                found = true;
            }
        }
        best.epsilon = best.epsilon.max(0.0);
        Ok(best)
    }
}

/// ε at one order for a given δ, as `dp-accounting`'s `compute_epsilon` computes it.
fn epsilon_at_order(order: f64, rdp: f64, delta: f64) -> f64 {
    if rdp < 0.0 {
        // A negative divergence can only be rounding error around a true value of (nearly) zero.
        tracing::warn!(
            order,
            rdp,
            "negative Rényi divergence from rounding; taking epsilon 0 at this order"
        );
        0.0
    } else if delta * delta + (-rdp).exp_m1() > 0.0 {
        // δ ≥ sqrt(1 − exp(−KL)) already holds with ε = 0.
        0.0
    } else if order > 1.01 {
        // Not numerically stable as the order approaches 1, and useless there anyway.
        rdp + (-1.0 / order).ln_1p() - (delta * order).ln() / (order - 1.0)
    } else {
        f64::INFINITY
    }
}

/// ε after composing `steps` Poisson-subsampled Gaussian steps over the default orders, at δ = `delta`.
///
/// A shortcut for [`RdpAccountant::new`], [`RdpAccountant::compose_poisson_subsampled_gaussian`] and
/// [`RdpAccountant::epsilon`].
pub fn epsilon(
    sampling_rate: f64,
    noise_multiplier: f64,
    steps: u64,
    delta: f64,
) -> Result<EpsilonReport, PrivacyError> {
    let mut accountant = RdpAccountant::new();
    accountant.compose_poisson_subsampled_gaussian(sampling_rate, noise_multiplier, steps)?;
    accountant.epsilon(delta)
}

/// The smallest noise multiplier (to a relative precision of 1e-6, rounded up) for which `steps`
/// Poisson-subsampled Gaussian steps at `sampling_rate` stay within `(target_epsilon, delta)`-DP over the
/// default orders.
///
/// Returns 0 when no noise is needed (`sampling_rate = 0` or `steps = 0`), and
/// [`PrivacyError::TargetEpsilonUnreachable`] when even [`NOISE_MULTIPLIER_SEARCH_MAX`] is not enough.
pub fn noise_multiplier_for(
    target_epsilon: f64,
    delta: f64,
    sampling_rate: f64,
    steps: u64,
) -> Result<f64, PrivacyError> {
    if !(target_epsilon.is_finite() && target_epsilon > 0.0) {
        return Err(PrivacyError::InvalidTargetEpsilon { target_epsilon });
    }
    // Validates every argument, and settles the cases where any noise multiplier will do.
    if epsilon(sampling_rate, 0.0, steps, delta)?.epsilon <= target_epsilon {
        return Ok(0.0);
    }
    let epsilon_for = |noise_multiplier: f64| -> Result<f64, PrivacyError> {
        Ok(epsilon(sampling_rate, noise_multiplier, steps, delta)?.epsilon)
    };
    // Double until the target is met; the answer then lies in (low, high].
    let mut low = 0.0;
    let mut high = 1.0;
    loop {
        let epsilon_at_high = epsilon_for(high)?;
        if epsilon_at_high <= target_epsilon {
            break;
        }
        if high >= NOISE_MULTIPLIER_SEARCH_MAX {
            return Err(PrivacyError::TargetEpsilonUnreachable {
                target_epsilon,
                noise_multiplier_max: high,
                epsilon_at_max: epsilon_at_high,
            });
        }
        low = high;
        high = (high * 2.0).min(NOISE_MULTIPLIER_SEARCH_MAX);
    }
    while high - low > NOISE_SEARCH_RELATIVE_PRECISION * high {
        let middle = 0.5 * (low + high);
        if epsilon_for(middle)? <= target_epsilon {
            high = middle;
        } else {
            low = middle;
        }
    }
    Ok(high)
}

/// Relative width at which [`noise_multiplier_for`] stops bisecting.
const NOISE_SEARCH_RELATIVE_PRECISION: f64 = 1e-6;

/// Terms summed, at most, for one fractional order before giving up on it (as `dp-accounting` does).
const FRACTIONAL_ORDER_TERMS_MAX: u32 = 1_000;

/// Above this argument `ln(erfc(x))` comes from its asymptotic series rather than from `erfc` itself, which
/// would soon underflow (`erfc(20) ≈ 5e-176`, still a normal number).
const LOG_ERFC_ASYMPTOTIC_FROM: f64 = 20.0;

fn validate_sampling_rate(sampling_rate: f64) -> Result<(), PrivacyError> {
    if (0.0..=1.0).contains(&sampling_rate) {
        Ok(())
    } else {
        Err(PrivacyError::SamplingRateOutOfRange { sampling_rate })
    }
}

fn validate_noise_multiplier(noise_multiplier: f64) -> Result<(), PrivacyError> {
    if noise_multiplier.is_finite() && noise_multiplier >= 0.0 {
        Ok(())
    } else {
        Err(PrivacyError::InvalidNoiseMultiplier { noise_multiplier })
    }
}

/// RDP at `order` of one step of the Poisson-subsampled Gaussian mechanism (arguments already validated).
fn rdp_poisson_subsampled_gaussian(sampling_rate: f64, noise_multiplier: f64, order: f64) -> f64 {
    if sampling_rate == 0.0 {
        return 0.0;
    }
    // With 2σ² rounding to zero every term of the series is infinite (or 0/0): no bound.
    if noise_multiplier == 0.0 || 2.0 * (noise_multiplier * noise_multiplier) == 0.0 {
        return f64::INFINITY;
    }
    if sampling_rate == 1.0 {
        return order / (2.0 * (noise_multiplier * noise_multiplier));
    }
    let log_a = if order.fract() == 0.0 {
        // Integral and at most RENYI_ORDER_VALUE_MAX, so the conversion is exact.
        log_a_integer_order(sampling_rate, noise_multiplier, order as u32)
    } else {
        log_a_fractional_order(sampling_rate, noise_multiplier, order)
    };
    let rdp = log_a / (order - 1.0);
    if rdp.is_nan() { f64::INFINITY } else { rdp }
}

/// `ln(A_α)` for integer `α` and `0 < q < 1` (`_compute_log_a_int`): the binomial expansion
/// `A_α = Σ_i C(α, i) q^i (1−q)^(α−i) exp((i² − i) / (2σ²))`, summed in log space.
fn log_a_integer_order(sampling_rate: f64, noise_multiplier: f64, order: u32) -> f64 {
    let order_value = f64::from(order);
    let log_sampling_rate = sampling_rate.ln();
    let log_complement = (-sampling_rate).ln_1p();
    let two_variance = 2.0 * (noise_multiplier * noise_multiplier);
    let mut log_a = f64::NEG_INFINITY;
    for term in 0..=order {
        let i = f64::from(term);
        let log_coefficient = log_binomial(order_value, i)
            + i * log_sampling_rate
            + (order_value - i) * log_complement;
        log_a = log_add(log_a, log_coefficient + (i * i - i) / two_variance);
    }
    log_a
}

/// `ln(A_α)` for fractional `α` and `0 < q < 1` (`_compute_log_a_frac`, Mironov et al. 2019 §3.3): the two
/// halves of the integral, split at `z0`, each a series summed in log space until both series decrease and
/// their terms fall 30 nats below the total. Infinite (no bound) when that does not happen within
/// [`FRACTIONAL_ORDER_TERMS_MAX`] terms.
fn log_a_fractional_order(sampling_rate: f64, noise_multiplier: f64, order: f64) -> f64 {
    let variance = noise_multiplier * noise_multiplier;
    let two_variance = 2.0 * variance;
    let erfc_scale = SQRT_2 * noise_multiplier;
    let z0 = variance * (1.0 / sampling_rate - 1.0).ln() + 0.5;
    let log_sampling_rate = sampling_rate.ln();
    let log_complement = (-sampling_rate).ln_1p();
    let log_half = 0.5f64.ln();

    let mut log_a0 = f64::NEG_INFINITY;
    let mut log_a1 = f64::NEG_INFINITY;
    let mut last_s0 = f64::NEG_INFINITY;
    let mut last_s1 = f64::NEG_INFINITY;
    for term in 0..FRACTIONAL_ORDER_TERMS_MAX {
        let i = f64::from(term);
        let j = order - i;
        let log_coefficient = log_binomial(order, i);
        let log_t0 = log_coefficient + i * log_sampling_rate + j * log_complement;
        let log_t1 = log_coefficient + j * log_sampling_rate + i * log_complement;
        let log_e0 = log_half + log_erfc((i - z0) / erfc_scale);
        let log_e1 = log_half + log_erfc((z0 - j) / erfc_scale);
        let log_s0 = log_t0 + (i * i - i) / two_variance + log_e0;
        let log_s1 = log_t1 + (j * j - j) / two_variance + log_e1;
        log_a0 = log_add(log_a0, log_s0);
        log_a1 = log_add(log_a1, log_s1);
        let total = log_add(log_a0, log_a1);
        if log_s0 < last_s0 && log_s1 < last_s1 && log_s0.max(log_s1) < total - 30.0 {
            return total;
        }
        last_s0 = log_s0;
        last_s1 = log_s1;
    }
    // Expected for small orders with little noise (dp-accounting logs it too); the other orders still bound ε.
    tracing::debug!(
        sampling_rate,
        noise_multiplier,
        order,
        terms = FRACTIONAL_ORDER_TERMS_MAX,
        "fractional-order RDP series did not converge; this order gives no bound"
    );
    f64::INFINITY
}

/// `ln(exp(x) + exp(y))` without overflow.
fn log_add(x: f64, y: f64) -> f64 {
    let (smaller, larger) = if x < y { (x, y) } else { (y, x) };
    if smaller == f64::NEG_INFINITY {
        return larger;
    }
    if larger == f64::INFINITY {
        return f64::INFINITY;
    }
    (smaller - larger).exp().ln_1p() + larger
}

/// `ln |C(n, k)|` for real `n` and `k`, through `ln |Γ|`.
fn log_binomial(n: f64, k: f64) -> f64 {
    libm::lgamma(n + 1.0) - libm::lgamma(k + 1.0) - libm::lgamma(n - k + 1.0)
}

/// `ln(erfc(x))`, accurate far into the upper tail where `erfc(x)` itself underflows.
fn log_erfc(x: f64) -> f64 {
    if x.is_nan() || x < LOG_ERFC_ASYMPTOTIC_FROM {
        // NaN propagates through erfc.
        return libm::erfc(x).ln();
    }
    // Laurent series at infinity: erfc(x) ~ exp(−x² − 1/(2x²) + 5/(8x⁴) − …) / (x√π).
    let square = x * x;
    let inverse_square = 1.0 / square;
    -0.5 * PI.ln() - x.ln() - square
        + inverse_square
            * (-0.5
                + inverse_square
                    * (0.625 + inverse_square * (-37.0 / 24.0 + inverse_square * 353.0 / 64.0)))
}

// ---------------------------------------------------------------------------------------------------------
// DP-FedAvg: clipping and noise
// ---------------------------------------------------------------------------------------------------------

/// Clips `update` in place to L2 norm at most `clip_norm` and returns its norm before clipping.
///
/// An update already within the norm is left untouched; a longer one is scaled towards zero, keeping its
/// direction, to a norm a hair (about 1e-7 relative) below `clip_norm` so that float rounding can never leave it
/// above. The norm is accumulated in `f64`. Rejects an empty or over-long update, NaN or infinite values and a
/// clip norm that is not positive and finite; on error the update is unchanged.
pub fn clip_l2(update: &mut [f32], clip_norm: f32) -> Result<f32, PrivacyError> {
    if !(clip_norm.is_finite() && clip_norm > 0.0) {
        return Err(PrivacyError::InvalidClipNorm { clip_norm });
    }
    validate_update(update)?;
    let norm = update
        .iter()
        .map(|&value| f64::from(value) * f64::from(value))
        .sum::<f64>()
        .sqrt();
    let clip = f64::from(clip_norm);
    if norm > clip {
        // Each coordinate is rounded to f32 with relative error at most 2^-24, so scaling 2^-23 short of the
        // exact factor keeps the result's norm at or below the clip norm.
        let scale = clip / norm * (1.0 - f64::from(f32::EPSILON));
        for value in update.iter_mut() {
            *value = (f64::from(*value) * scale) as f32;
        }
    }
    Ok(norm as f32)
}

/// Adds independent Gaussian noise of mean 0 and standard deviation `standard_deviation` to every coordinate of
/// `update`, drawn from `rng` (pass a seeded [`rand_chacha::ChaCha20Rng`] for replayable runs).
///
/// A standard deviation of 0 leaves the update unchanged. Rejects a negative or non-finite standard deviation
/// and an update longer than [`MODEL_PARAMETERS_MAX`].
pub fn add_gaussian_noise<R: Rng + ?Sized>(
    update: &mut [f32],
    standard_deviation: f32,
    rng: &mut R,
) -> Result<(), PrivacyError> {
    let normal = normal_distribution(standard_deviation)?;
    check_length(update.len())?;
    if standard_deviation == 0.0 {
        return Ok(());
    }
    for value in update.iter_mut() {
        *value = (f64::from(*value) + normal.sample(rng)) as f32;
    }
    Ok(())
}

/// A fresh vector of `length` independent Gaussian draws of mean 0 and standard deviation
/// `standard_deviation` (see [`add_gaussian_noise`]).
pub fn gaussian_noise<R: Rng + ?Sized>(
    length: usize,
    standard_deviation: f32,
    rng: &mut R,
) -> Result<Vec<f32>, PrivacyError> {
    check_length(length)?;
    let mut noise = vec![0.0; length];
    add_gaussian_noise(&mut noise, standard_deviation, rng)?;
    Ok(noise)
}

/// The noise standard deviation each of `clients` clients adds, `σ·S/√n`, so that the sum of their
/// independent noises has standard deviation `σ·S` (noise multiplier times clip norm).
///
/// Each client adds its share *before* secure aggregation, so the noise survives into the unmasked sum and no
/// party ever sees a noiseless update. If some clients drop out after being planned, the sum carries less noise
/// than planned: account for it with [`effective_noise_multiplier`].
pub fn distributed_noise_standard_deviation(
    noise_multiplier: f64,
    clip_norm: f32,
    clients: usize,
) -> Result<f32, PrivacyError> {
    validate_noise_multiplier(noise_multiplier)?;
    if !(clip_norm.is_finite() && clip_norm > 0.0) {
        return Err(PrivacyError::InvalidClipNorm { clip_norm });
    }
    check_clients(clients)?;
    // Exact: clients <= CLIENTS_MAX.
    let standard_deviation = noise_multiplier * f64::from(clip_norm) / (clients as f64).sqrt();
    let standard_deviation = standard_deviation as f32;
    if standard_deviation.is_finite() {
        Ok(standard_deviation)
    } else {
        Err(PrivacyError::InvalidStandardDeviation { standard_deviation })
    }
}

/// The noise multiplier actually protecting a sum when only `surviving_clients` of the `planned_clients`
/// (each of which sized its noise by [`distributed_noise_standard_deviation`] for `planned_clients`)
/// contributed to it: `σ·√(surviving / planned)`. Feed this, not the planned `σ`, to the accountant.
///
/// Zero survivors give 0 (no noise, but also no data).
pub fn effective_noise_multiplier(
    noise_multiplier: f64,
    planned_clients: usize,
    surviving_clients: usize,
) -> Result<f64, PrivacyError> {
    validate_noise_multiplier(noise_multiplier)?;
    check_clients(planned_clients)?;
    if surviving_clients > planned_clients {
        return Err(PrivacyError::SurvivorsExceedPlanned {
            planned: planned_clients,
            surviving: surviving_clients,
        });
    }
    // Exact: both counts are at most CLIENTS_MAX.
    Ok(noise_multiplier * (surviving_clients as f64 / planned_clients as f64).sqrt())
}

/// DP-FedAvg settings: every client clips its update to `clip_norm` and the sum of all clients' updates
/// carries Gaussian noise of standard deviation `noise_multiplier · clip_norm`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DpConfig {
    /// L2 norm every client update is clipped to (`S`).
    pub clip_norm: f32,
    /// Noise standard deviation of the aggregated sum divided by the clip norm (`σ`).
    pub noise_multiplier: f64,
}

impl DpConfig {
    /// Checked settings: a positive finite clip norm and a finite non-negative noise multiplier.
    pub fn new(clip_norm: f32, noise_multiplier: f64) -> Result<Self, PrivacyError> {
        let config = Self {
            clip_norm,
            noise_multiplier,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks settings built directly or deserialized.
    pub fn validate(&self) -> Result<(), PrivacyError> {
        if !(self.clip_norm.is_finite() && self.clip_norm > 0.0) {
            return Err(PrivacyError::InvalidClipNorm {
                clip_norm: self.clip_norm,
            });
        }
        validate_noise_multiplier(self.noise_multiplier)
    }

    /// The noise standard deviation each of `clients` clients adds (see
    /// [`distributed_noise_standard_deviation`]).
    pub fn client_noise_standard_deviation(&self, clients: usize) -> Result<f32, PrivacyError> {
        distributed_noise_standard_deviation(self.noise_multiplier, self.clip_norm, clients)
    }

    /// A client's side of DP-FedAvg: clips `update` to the clip norm, then adds this client's share of the
    /// noise for a round of `clients` clients. Returns the norm before clipping (worth logging, never
    /// publishing: it is not private). On error the update is unchanged.
    pub fn privatize<R: Rng + ?Sized>(
        &self,
        update: &mut [f32],
        clients: usize,
        rng: &mut R,
    ) -> Result<f32, PrivacyError> {
        self.validate()?;
        let standard_deviation = self.client_noise_standard_deviation(clients)?;
        let norm = clip_l2(update, self.clip_norm)?;
        add_gaussian_noise(update, standard_deviation, rng)?;
        Ok(norm)
    }
}

fn normal_distribution(standard_deviation: f32) -> Result<Normal<f64>, PrivacyError> {
    if !(standard_deviation.is_finite() && standard_deviation >= 0.0) {
        return Err(PrivacyError::InvalidStandardDeviation { standard_deviation });
    }
    Normal::new(0.0, f64::from(standard_deviation))
        .map_err(|_| PrivacyError::InvalidStandardDeviation { standard_deviation })
}

fn check_length(length: usize) -> Result<(), PrivacyError> {
    if length > MODEL_PARAMETERS_MAX {
        Err(PrivacyError::UpdateTooLong {
            length,
            limit: MODEL_PARAMETERS_MAX,
        })
    } else {
        Ok(())
    }
}

fn check_clients(clients: usize) -> Result<(), PrivacyError> {
    if clients == 0 || clients > CLIENTS_MAX {
        Err(PrivacyError::ClientCountOutOfRange {
            clients,
            limit: CLIENTS_MAX,
        })
    } else {
        Ok(())
    }
}

fn validate_update(update: &[f32]) -> Result<(), PrivacyError> {
    if update.is_empty() {
        return Err(PrivacyError::EmptyUpdate);
    }
    check_length(update.len())?;
    match update.iter().position(|value| !value.is_finite()) {
        Some(coordinate) => Err(PrivacyError::NonFiniteUpdate {
            coordinate,
            value: update[coordinate],
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    const DELTA: f64 = 1e-5;

    /// Asserts `actual` is within `relative` of `expected`.
    fn assert_close(actual: f64, expected: f64, relative: f64) {
        assert!(
            (actual - expected).abs() <= relative * expected.abs(),
            "got {actual}, expected {expected} (relative tolerance {relative})"
        );
    }

    /// Figures from dp-accounting 0.6.0: `RdpAccountant()` composed with
    /// `PoissonSampledDpEvent(q, GaussianDpEvent(σ))` T times, `get_epsilon_and_optimal_order(1e-5)`.
    fn assert_matches_dp_accounting(
        sampling_rate: f64,
        noise_multiplier: f64,
        steps: u64,
        expected_epsilon: f64,
        expected_order: f64,
    ) {
        let report =
            epsilon(sampling_rate, noise_multiplier, steps, DELTA).expect("valid arguments");
        assert_close(report.epsilon, expected_epsilon, 1e-6);
        assert_eq!(report.order, expected_order);
    }

    #[test]
    fn epsilon_matches_dp_accounting_mnist_dp_sgd() {
        // q = 256/60000, σ = 1.1, T = 14062: ε ≈ 2.5966.
        assert_matches_dp_accounting(256.0 / 60_000.0, 1.1, 14_062, 2.5965558697943036, 8.1);
    }

    #[test]
    fn epsilon_matches_dp_accounting_small_sampling_rate() {
        // q = 0.01, σ = 1, T = 1000: ε ≈ 2.1014.
        assert_matches_dp_accounting(0.01, 1.0, 1_000, 2.101366525420273, 7.8);
    }

    #[test]
    fn epsilon_matches_dp_accounting_large_sampling_rate() {
        // q = 0.1, σ = 1, T = 100: ε ≈ 7.9039; orders 1.1 to 1.5 do not converge and are skipped.
        assert_matches_dp_accounting(0.1, 1.0, 100, 7.903850223578231, 3.2);
    }

    #[test]
    fn epsilon_matches_dp_accounting_federated_rounds() {
        // q = 64/1437, σ = 2, T = 673: ε ≈ 2.8530.
        assert_matches_dp_accounting(64.0 / 1437.0, 2.0, 673, 2.852977231775906, 7.5);
    }

    #[test]
    fn epsilon_matches_dp_accounting_other_regimes() {
        // No subsampling: the plain Gaussian mechanism.
        assert_matches_dp_accounting(1.0, 1.0, 1, 4.728507067217623, 5.4);
        assert_matches_dp_accounting(1.0, 5.0, 10, 2.8136532471298397, 7.9);
        // Tiny privacy loss, optimum at the largest default order.
        assert_matches_dp_accounting(0.001, 10.0, 1, 0.0035066090798109165, 1024.0);
        // Little noise: large epsilons at small fractional orders.
        assert_matches_dp_accounting(0.01, 0.5, 10_000, 49.43426631343529, 1.6);
        assert_matches_dp_accounting(0.3, 0.7, 50, 31.65517455917027, 1.8);
        assert_matches_dp_accounting(0.02, 0.8, 3_000, 12.522888029431353, 2.7);
    }

    #[test]
    fn log_a_matches_dp_accounting() {
        // _compute_log_a_frac and _compute_log_a_int from dp-accounting 0.6.0.
        assert_close(
            log_a_fractional_order(0.01, 1.0, 1.5),
            6.618425146996524e-05,
            1e-9,
        );
        assert_close(log_a_integer_order(0.01, 1.0, 20), 97.8966073738725, 1e-12);
        assert_close(
            log_a_fractional_order(0.1, 2.0, 3.3),
            0.01116548482346307,
            1e-9,
        );
        assert_eq!(log_a_fractional_order(0.1, 1.0, 1.1), f64::INFINITY);
    }

    #[test]
    fn log_erfc_matches_scipy_across_regimes() {
        // math.log(2) + scipy.special.log_ndtr(-x * 2**0.5).
        assert_close(log_erfc(-3.0), 0.6931361352504468, 1e-14);
        assert_close(log_erfc(1e-3), -0.001129015889621443, 1e-12);
        assert_close(log_erfc(0.5), -0.7350111298370848, 1e-14);
        assert_close(log_erfc(10.0), -102.87988902484493, 1e-14);
        assert_close(log_erfc(30.0), -903.9741171106442, 1e-14);
        // Both sides of the switch to the asymptotic series, against mpmath at 40 digits.
        assert_close(log_erfc(19.0), -364.5181842002409, 1e-14);
        assert_close(log_erfc(20.0), -403.5693433341042, 1e-14);
        assert_close(log_erfc(25.0), -628.7920391740717, 1e-14);
        assert_eq!(log_erfc(f64::INFINITY), f64::NEG_INFINITY);
    }

    #[test]
    fn default_orders_match_dp_accounting() {
        let orders = default_orders();
        assert_eq!(orders.len(), 156);
        assert_eq!(orders[0], 1.1);
        assert_eq!(orders[9], 2.0);
        assert_eq!(orders[98], 10.9);
        assert_eq!(orders[99], 11.0);
        assert_eq!(orders[151], 63.0);
        assert_eq!(orders[152..], [128.0, 256.0, 512.0, 1024.0]);
    }

    #[test]
    fn no_sampling_costs_nothing_and_no_noise_is_infinite() {
        let report = epsilon(0.0, 1.0, 10, DELTA).expect("valid");
        assert_eq!(
            report,
            EpsilonReport {
                epsilon: 0.0,
                order: 1.1
            }
        );
        let report = epsilon(0.0, 0.0, 10, DELTA).expect("valid");
        assert_eq!(report.epsilon, 0.0);
        let report = epsilon(0.5, 0.0, 1, DELTA).expect("valid");
        assert_eq!(report.epsilon, f64::INFINITY);
        // A noise multiplier so small that 2σ² underflows is no noise at all.
        let report = epsilon(0.5, 1e-170, 1, DELTA).expect("valid");
        assert_eq!(report.epsilon, f64::INFINITY);
        let report = epsilon(0.5, 1.0, 0, DELTA).expect("valid");
        assert_eq!(report.epsilon, 0.0);
    }

    #[test]
    fn composition_adds_up_across_calls() {
        let mut split = RdpAccountant::new();
        split
            .compose_poisson_subsampled_gaussian(0.01, 1.0, 400)
            .expect("valid");
        split
            .compose_poisson_subsampled_gaussian(0.01, 1.0, 600)
            .expect("valid");
        let whole = epsilon(0.01, 1.0, 1_000, DELTA).expect("valid");
        assert_close(
            split.epsilon(DELTA).expect("valid").epsilon,
            whole.epsilon,
            1e-12,
        );
        // Heterogeneous composition: an unsubsampled step on top costs more.
        split
            .compose_poisson_subsampled_gaussian(1.0, 5.0, 1)
            .expect("valid");
        assert!(split.epsilon(DELTA).expect("valid").epsilon > whole.epsilon);
    }

    #[test]
    fn custom_orders_are_checked_and_used() {
        assert_eq!(
            RdpAccountant::with_orders(vec![]),
            Err(PrivacyError::NoOrders)
        );
        for bad in [
            1.0,
            0.5,
            f64::NAN,
            f64::INFINITY,
            RENYI_ORDER_VALUE_MAX * 2.0,
        ] {
            assert!(matches!(
                RdpAccountant::with_orders(vec![2.0, bad]),
                Err(PrivacyError::InvalidOrder { .. })
            ));
        }
        assert!(matches!(
            RdpAccountant::with_orders(vec![2.0; RENYI_ORDER_COUNT_MAX + 1]),
            Err(PrivacyError::TooManyOrders { .. })
        ));
        let mut accountant = RdpAccountant::with_orders(vec![8.0, 8.1]).expect("valid orders");
        accountant
            .compose_poisson_subsampled_gaussian(256.0 / 60_000.0, 1.1, 14_062)
            .expect("valid");
        let report = accountant.epsilon(DELTA).expect("valid");
        assert_close(report.epsilon, 2.5965558697943036, 1e-6);
        assert_eq!(accountant.orders(), [8.0, 8.1]);
        assert_eq!(accountant.rdp().len(), 2);
    }

    #[test]
    fn bad_accountant_arguments_are_rejected_without_change() {
        let mut accountant = RdpAccountant::new();
        for sampling_rate in [-0.1, 1.5, f64::NAN] {
            assert!(matches!(
                accountant.compose_poisson_subsampled_gaussian(sampling_rate, 1.0, 1),
                Err(PrivacyError::SamplingRateOutOfRange { .. })
            ));
        }
        for noise_multiplier in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                accountant.compose_poisson_subsampled_gaussian(0.1, noise_multiplier, 1),
                Err(PrivacyError::InvalidNoiseMultiplier { .. })
            ));
        }
        assert!(matches!(
            accountant.compose_poisson_subsampled_gaussian(0.1, 1.0, PRIVACY_STEPS_MAX + 1),
            Err(PrivacyError::TooManySteps { .. })
        ));
        assert_eq!(accountant, RdpAccountant::new());
        for delta in [0.0, 1.0, -1e-5, f64::NAN] {
            assert!(matches!(
                accountant.epsilon(delta),
                Err(PrivacyError::DeltaOutOfRange { .. })
            ));
        }
    }

    #[test]
    fn noise_multiplier_search_inverts_epsilon() {
        let sampling_rate = 256.0 / 60_000.0;
        let steps = 14_062;
        let noise_multiplier =
            noise_multiplier_for(2.5965558697943036, DELTA, sampling_rate, steps)
                .expect("reachable");
        assert_close(noise_multiplier, 1.1, 1e-4);
        let achieved = epsilon(sampling_rate, noise_multiplier, steps, DELTA).expect("valid");
        assert!(achieved.epsilon <= 2.5965558697943036);

        // Loose targets need little noise, but some.
        let noise_multiplier = noise_multiplier_for(8.0, DELTA, 0.1, 100).expect("reachable");
        assert!(noise_multiplier > 0.0 && noise_multiplier < 1.0);
        assert!(
            epsilon(0.1, noise_multiplier, 100, DELTA)
                .expect("valid")
                .epsilon
                <= 8.0
        );

        assert_eq!(noise_multiplier_for(1.0, DELTA, 0.0, 100), Ok(0.0));
        assert_eq!(noise_multiplier_for(1.0, DELTA, 0.5, 0), Ok(0.0));
        for target_epsilon in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                noise_multiplier_for(target_epsilon, DELTA, 0.1, 10),
                Err(PrivacyError::InvalidTargetEpsilon { .. })
            ));
        }
        assert!(matches!(
            noise_multiplier_for(1.0, 0.0, 0.1, 10),
            Err(PrivacyError::DeltaOutOfRange { .. })
        ));
        // A billion unsubsampled steps cannot reach ε = 1e-6 with any noise up to the search limit.
        assert!(matches!(
            noise_multiplier_for(1e-6, DELTA, 1.0, PRIVACY_STEPS_MAX),
            Err(PrivacyError::TargetEpsilonUnreachable { noise_multiplier_max, .. })
                if noise_multiplier_max == NOISE_MULTIPLIER_SEARCH_MAX
        ));
    }

    #[test]
    fn clipping_keeps_direction_and_bounds_norm() {
        let mut update = vec![3.0f32, -4.0, 0.0, 12.0];
        let norm = clip_l2(&mut update, 1.0).expect("valid");
        assert_eq!(norm, 13.0);
        let clipped_norm = update
            .iter()
            .map(|&v| f64::from(v).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(clipped_norm <= 1.0 && clipped_norm > 1.0 - 1e-6);
        for (clipped, original) in update.iter().zip([3.0f32, -4.0, 0.0, 12.0]) {
            assert!((clipped - original / 13.0).abs() < 1e-6);
        }

        // Within the norm: untouched.
        let mut short = vec![0.3f32, 0.4];
        assert_eq!(clip_l2(&mut short, 1.0), Ok(0.5));
        assert_eq!(short, [0.3, 0.4]);
    }

    #[test]
    fn clipping_rejects_bad_input_without_change() {
        let mut update = vec![1.0f32, f32::NAN, 2.0];
        assert!(matches!(
            clip_l2(&mut update, 1.0),
            Err(PrivacyError::NonFiniteUpdate { coordinate: 1, .. })
        ));
        let mut update = vec![1.0f32, f32::INFINITY];
        assert!(matches!(
            clip_l2(&mut update, 1.0),
            Err(PrivacyError::NonFiniteUpdate { coordinate: 1, .. })
        ));
        let mut update = vec![10.0f32];
        for clip_norm in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert!(matches!(
                clip_l2(&mut update, clip_norm),
                Err(PrivacyError::InvalidClipNorm { .. })
            ));
        }
        assert_eq!(update, [10.0]);
        assert_eq!(clip_l2(&mut [], 1.0), Err(PrivacyError::EmptyUpdate));
    }

    #[test]
    fn distributed_noise_sums_to_the_central_standard_deviation() {
        let noise_multiplier = 1.2;
        let clip_norm = 0.5f32;
        let clients = 25;
        let length = 4_000;
        let per_client = distributed_noise_standard_deviation(noise_multiplier, clip_norm, clients)
            .expect("valid");
        assert!((f64::from(per_client) - 1.2 * 0.5 / 5.0).abs() < 1e-7);

        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let mut sum = vec![0.0f32; length];
        for _ in 0..clients {
            let noise = gaussian_noise(length, per_client, &mut rng).expect("valid");
            for (total, value) in sum.iter_mut().zip(noise) {
                *total += value;
            }
        }
        let mean = sum.iter().map(|&v| f64::from(v)).sum::<f64>() / length as f64;
        let variance = sum
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / (length - 1) as f64;
        let expected = noise_multiplier * f64::from(clip_norm);
        // Standard error of a standard deviation estimate is about σ/√(2n) ≈ 1.1%; allow 5%.
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert_close(variance.sqrt(), expected, 0.05);
    }

    #[test]
    fn noise_is_seeded_and_validated() {
        let draw = |seed| {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            gaussian_noise(16, 1.0, &mut rng).expect("valid")
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));

        let mut rng = ChaCha20Rng::seed_from_u64(0);
        let mut update = vec![1.0f32, 2.0];
        add_gaussian_noise(&mut update, 0.0, &mut rng).expect("valid");
        assert_eq!(update, [1.0, 2.0]);
        for standard_deviation in [-1.0, f32::NAN, f32::INFINITY] {
            assert!(matches!(
                add_gaussian_noise(&mut update, standard_deviation, &mut rng),
                Err(PrivacyError::InvalidStandardDeviation { .. })
            ));
        }
        assert!(matches!(
            gaussian_noise(MODEL_PARAMETERS_MAX + 1, 1.0, &mut rng),
            Err(PrivacyError::UpdateTooLong { .. })
        ));
        for clients in [0, CLIENTS_MAX + 1] {
            assert!(matches!(
                distributed_noise_standard_deviation(1.0, 1.0, clients),
                Err(PrivacyError::ClientCountOutOfRange { .. })
            ));
        }
    }

    #[test]
    fn effective_noise_multiplier_accounts_for_dropouts() {
        assert_eq!(effective_noise_multiplier(2.0, 100, 100), Ok(2.0));
        assert_close(
            effective_noise_multiplier(2.0, 100, 25).expect("valid"),
            1.0,
            1e-15,
        );
        assert_close(
            effective_noise_multiplier(1.0, 10, 5).expect("valid"),
            0.5f64.sqrt(),
            1e-15,
        );
        assert_eq!(effective_noise_multiplier(1.0, 10, 0), Ok(0.0));
        assert_eq!(
            effective_noise_multiplier(1.0, 10, 11),
            Err(PrivacyError::SurvivorsExceedPlanned {
                planned: 10,
                surviving: 11
            })
        );
        assert!(matches!(
            effective_noise_multiplier(1.0, 0, 0),
            Err(PrivacyError::ClientCountOutOfRange { .. })
        ));
        // The survivors' noises sum to exactly the effective multiplier times the clip norm.
        let per_client = distributed_noise_standard_deviation(2.0, 1.0, 100).expect("valid");
        let surviving_sum = f64::from(per_client) * 25f64.sqrt();
        assert_close(
            surviving_sum,
            effective_noise_multiplier(2.0, 100, 25).expect("valid"),
            1e-6,
        );
    }

    #[test]
    fn dp_config_privatizes_an_update() {
        assert!(matches!(
            DpConfig::new(0.0, 1.0),
            Err(PrivacyError::InvalidClipNorm { .. })
        ));
        assert!(matches!(
            DpConfig::new(1.0, -1.0),
            Err(PrivacyError::InvalidNoiseMultiplier { .. })
        ));
        let config = DpConfig::new(1.0, 0.0).expect("valid");
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut update = vec![6.0f32, 8.0];
        // No noise: just clipping.
        assert_eq!(config.privatize(&mut update, 10, &mut rng), Ok(10.0));
        assert!((update[0] - 0.6).abs() < 1e-6 && (update[1] - 0.8).abs() < 1e-6);

        let config = DpConfig::new(1.0, 1.0).expect("valid");
        let mut update = vec![6.0f32, 8.0];
        assert_eq!(config.privatize(&mut update, 4, &mut rng), Ok(10.0));
        assert!(update.iter().all(|v| v.is_finite()));
        assert!((update[0] - 0.6).abs() > 1e-6);
    }

    proptest! {
        #[test]
        fn clipped_norm_never_exceeds_the_clip_norm(
            update in proptest::collection::vec(-1e6f32..1e6, 1..64),
            clip_norm in 1e-3f32..1e3,
        ) {
            let mut clipped = update.clone();
            let norm = clip_l2(&mut clipped, clip_norm).expect("finite input");
            let clipped_norm = clipped.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
            prop_assert!(clipped_norm <= f64::from(clip_norm));
            if norm < clip_norm {
                prop_assert_eq!(clipped, update);
            } else if norm > clip_norm {
                // Same direction: every coordinate scaled by one positive factor.
                let scale = f64::from(clip_norm) / f64::from(norm);
                for (&clipped_value, &original) in clipped.iter().zip(&update) {
                    let expected = f64::from(original) * scale;
                    prop_assert!((f64::from(clipped_value) - expected).abs() <= 1e-6 * f64::from(clip_norm));
                }
            }
        }
    }

    proptest! {
        // Each case runs the accountant twice over all 156 orders; a few dozen cases suffice.
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn epsilon_falls_as_noise_rises(
            sampling_rate in 1e-4f64..0.5,
            noise_multiplier in 0.6f64..5.0,
            steps in 1u64..2_000,
        ) {
            let less_noise =
                epsilon(sampling_rate, noise_multiplier, steps, DELTA).expect("valid").epsilon;
            let more_noise =
                epsilon(sampling_rate, noise_multiplier * 1.5, steps, DELTA).expect("valid").epsilon;
            prop_assert!(more_noise <= less_noise * (1.0 + 1e-9));
            prop_assert!(less_noise >= 0.0);
        }
    }
}
