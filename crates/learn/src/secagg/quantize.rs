//! Fixed-point quantisation of `f32` updates into the integers secure aggregation sums, and back.
//!
//! A value `v` is clipped to `[−range, range]`, shifted to `v + range ∈ [0, 2·range]` and divided by
//! the step `Δ = 2·range / levels`, then rounded *stochastically*: up with probability equal to the
//! fractional part, down otherwise. So each quantised value is an integer in `0..=levels`, and
//! `levels = ⌊(2^bits − 1) / clients⌋` (at most [`QUANTIZATION_LEVELS_MAX`]) makes the sum of up to
//! `clients` of them fit below the modulus `2^bits`: it can never wrap.
//!
//! Error: stochastic rounding is unbiased (`E[Δ·q − (v + range)] = 0` for unclipped values) and its
//! variance per value is `Δ²·f(1 − f) ≤ Δ²/4`, where `f` is the fractional part. A decoded sum of `n`
//! values is therefore unbiased with standard deviation at most `√n·Δ/2` (plus any clipping).
//!
//! Weighted averages: each client uploads `[w, w·u_1, …, w·u_d]` ([`Quantizer::quantize_weighted`]);
//! the server decodes the sum and divides the rest by the first element ([`weighted_average`]), which
//! gives `Σ w·u / Σ w` without learning any single `w` or `u`. The range must cover the weights and the
//! weighted values: `range ≥ max(w, w·|u|)`.

use super::{MODULUS_BITS_MAX, Result, SecAggError, modulus_mask};
use crate::limits::{CLIENTS_MAX, SECAGG_VECTOR_LENGTH_MAX};

/// Most quantisation levels: `2^40` steps across the range are already far finer than `f32` inputs
/// (24-bit mantissas), and keep the `f64` arithmetic of rounding and decoding exact to better than
/// `2^-13` of a step.
pub const QUANTIZATION_LEVELS_MAX: u64 = 1 << 40;

/// Maps `f32` values to integers modulo `2^bits` for secure aggregation, and decodes sums.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantizer {
    range: f64,
    clients: usize,
    modulus_bits: u32,
    levels: u64,
    step: f64,
}

impl Quantizer {
    /// The quantizer for values in `[−range, range]` summed over up to `clients` clients modulo
    /// `2^modulus_bits`. It picks the finest step whose sums cannot wrap; fails if there would be
    /// fewer than two levels (use more bits or fewer clients).
    pub fn new(range: f32, clients: usize, modulus_bits: u32) -> Result<Self> {
        let invalid = |reason: String| Err(SecAggError::Quantization { reason });
        if !range.is_finite() || range <= 0.0 {
            return invalid(format!("range {range} must be finite and positive"));
        }
        if clients == 0 || clients > CLIENTS_MAX {
            return invalid(format!("{clients} clients; must be 1 to {CLIENTS_MAX}"));
        }
        if modulus_bits == 0 || modulus_bits > MODULUS_BITS_MAX {
            return invalid(format!(
                "modulus bits {modulus_bits} must be 1 to {MODULUS_BITS_MAX}"
            ));
        }
        let levels = (modulus_mask(modulus_bits) / clients as u64).min(QUANTIZATION_LEVELS_MAX);
        if levels < 2 {
            return invalid(format!(
                "{clients} clients leave fewer than 2 levels per value under a 2^{modulus_bits} \
                 modulus; use at least {} modulus bits",
                (2 * clients as u64).ilog2() + 1
            ));
        }
        let range = f64::from(range);
        Ok(Self {
            range,
            clients,
            modulus_bits,
            levels,
            step: 2.0 * range / levels as f64,
        })
    }

    /// The step `Δ` between adjacent quantised values: the per-value error has variance at most `Δ²/4`.
    pub fn step(&self) -> f64 {
        self.step
    }

    /// Quantised values lie in `0..=levels`.
    pub fn levels(&self) -> u64 {
        self.levels
    }

    /// The clipping range.
    pub fn range(&self) -> f64 {
        self.range
    }

    /// The most clients whose sum cannot wrap.
    pub fn clients(&self) -> usize {
        self.clients
    }

    /// The modulus' bits.
    pub fn modulus_bits(&self) -> u32 {
        self.modulus_bits
    }

    /// Clips and stochastically rounds `values`; fails on a non-finite value or too long a vector.
    pub fn quantize(&self, values: &[f32], rng: &mut impl rand_core::Rng) -> Result<Vec<u64>> {
        if values.len() > SECAGG_VECTOR_LENGTH_MAX {
            return Err(SecAggError::Quantization {
                reason: format!(
                    "{} values, more than the limit of {SECAGG_VECTOR_LENGTH_MAX}",
                    values.len()
                ),
            });
        }
        values
            .iter()
            .enumerate()
            .map(|(index, &value)| self.quantize_one(index, f64::from(value), rng))
            .collect()
    }

    /// `[weight, weight·update…]`, quantised: the upload of the weighted-average pattern.
    pub fn quantize_weighted(
        &self,
        weight: f32,
        update: &[f32],
        rng: &mut impl rand_core::Rng,
    ) -> Result<Vec<u64>> {
        if !weight.is_finite() || weight < 0.0 {
            return Err(SecAggError::Quantization {
                reason: format!("weight {weight} must be finite and not negative"),
            });
        }
        if update.len() >= SECAGG_VECTOR_LENGTH_MAX {
            return Err(SecAggError::Quantization {
                reason: format!(
                    "{} values plus the weight, more than the limit of {SECAGG_VECTOR_LENGTH_MAX}",
                    update.len()
                ),
            });
        }
        let weight = f64::from(weight);
        let mut out = Vec::with_capacity(update.len() + 1);
        out.push(self.quantize_one(0, weight, rng)?);
        for (index, &value) in update.iter().enumerate() {
            out.push(self.quantize_one(index + 1, weight * f64::from(value), rng)?);
        }
        Ok(out)
    }

    fn quantize_one(&self, index: usize, value: f64, rng: &mut impl rand_core::Rng) -> Result<u64> {
        if !value.is_finite() {
            return Err(SecAggError::Quantization {
                reason: format!("value {value} at index {index} is not finite"),
            });
        }
        let scaled = (value.clamp(-self.range, self.range) + self.range) / self.step;
        let floor = scaled.floor();
        let fraction = scaled - floor;
        // A uniform draw in [0, 1) with 53 random bits.
        let uniform = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        let rounded = floor as u64 + u64::from(uniform < fraction);
        Ok(rounded.min(self.levels))
    }

    /// Decodes a sum of `contributors` quantised vectors back to the sum of their (clipped) values.
    /// Fails if there are more contributors than the quantizer was built for, or a value is larger than
    /// `contributors` quantised values can sum to (a wrong count, or not a sum of this quantizer's
    /// output).
    pub fn decode_sum(&self, sum: &[u64], contributors: usize) -> Result<Vec<f64>> {
        if contributors == 0 || contributors > self.clients {
            return Err(SecAggError::Quantization {
                reason: format!(
                    "{contributors} contributors; this quantizer decodes sums of 1 to {}",
                    self.clients
                ),
            });
        }
        let most = self.levels * contributors as u64;
        if let Some((index, &value)) = sum.iter().enumerate().find(|&(_, &value)| value > most) {
            return Err(SecAggError::Quantization {
                reason: format!(
                    "sum {value} at index {index} exceeds {most}, the most {contributors} \
                     contributors can reach; check the contributor count"
                ),
            });
        }
        let offset = contributors as f64 * self.range;
        Ok(sum
            .iter()
            .map(|&value| value as f64 * self.step - offset)
            .collect())
    }
}

/// The weighted average from a decoded sum of `[w, w·u…]` uploads: the rest divided by the first
/// element (the total weight), which must be positive.
pub fn weighted_average(decoded_sum: &[f64]) -> Result<Vec<f64>> {
    let Some((&total_weight, weighted)) = decoded_sum.split_first() else {
        return Err(SecAggError::Quantization {
            reason: "empty sum: expected the total weight first".into(),
        });
    };
    if !total_weight.is_finite() || total_weight <= 0.0 {
        return Err(SecAggError::Quantization {
            reason: format!(
                "total weight {total_weight} must be positive; did every client upload a zero weight?"
            ),
        });
    }
    Ok(weighted.iter().map(|&value| value / total_weight).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn levels_leave_room_for_every_client() {
        let quantizer = Quantizer::new(1.0, 10, 32).unwrap();
        assert_eq!(quantizer.levels(), u64::from(u32::MAX) / 10);
        assert!(quantizer.levels() * 10 < 1 << 32);
        assert_eq!(
            Quantizer::new(1.0, 1000, 64).unwrap().levels(),
            QUANTIZATION_LEVELS_MAX
        );
        assert!(Quantizer::new(1.0, 1000, 10).is_err());
        assert!(Quantizer::new(1.0, 100, 7).is_err());
        assert!(Quantizer::new(1.0, 100, 8).is_ok());
        assert!(Quantizer::new(0.0, 10, 32).is_err());
        assert!(Quantizer::new(f32::NAN, 10, 32).is_err());
        assert!(Quantizer::new(1.0, 0, 32).is_err());
        assert!(Quantizer::new(1.0, 10, 65).is_err());
    }

    #[test]
    fn extremes_and_clipping() {
        let quantizer = Quantizer::new(2.0, 4, 16).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let quantized = quantizer
            .quantize(&[-2.0, 2.0, -100.0, 100.0, 0.0], &mut rng)
            .unwrap();
        assert_eq!(quantized[0], 0);
        assert_eq!(quantized[1], quantizer.levels());
        assert_eq!(quantized[2], 0);
        assert_eq!(quantized[3], quantizer.levels());
        assert!(quantized.iter().all(|&value| value < 1 << 16));
        assert!(quantizer.quantize(&[f32::NAN], &mut rng).is_err());
        assert!(quantizer.quantize(&[f32::INFINITY], &mut rng).is_err());
        // Four clients at the top cannot wrap 2^16.
        let top = quantizer.decode_sum(&[4 * quantizer.levels()], 4).unwrap();
        assert!((top[0] - 8.0).abs() < 1e-9);
        assert!(
            quantizer
                .decode_sum(&[4 * quantizer.levels() + 1], 4)
                .is_err()
        );
        assert!(quantizer.decode_sum(&[0], 5).is_err());
    }

    #[test]
    fn stochastic_rounding_is_unbiased() {
        // Few levels, so the rounding is coarse: the mean of many roundings still lands on the value.
        let quantizer = Quantizer::new(1.0, 1, 2).unwrap();
        assert_eq!(quantizer.levels(), 3);
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let value = 0.1f32;
        let draws = 100_000;
        let values = vec![value; draws];
        let quantized = quantizer.quantize(&values, &mut rng).unwrap();
        let total: u64 = quantized.iter().sum();
        let mean = total as f64 * quantizer.step() / draws as f64 - quantizer.range();
        // Standard error: Δ/2/√draws ≈ 0.0011; allow 6 of them.
        assert!((mean - f64::from(value)).abs() < 0.007, "mean {mean}");
    }

    #[test]
    fn quantize_sum_decode_round_trip_within_the_documented_error() {
        let clients = 50;
        let length = 1_000;
        let quantizer = Quantizer::new(1.0, clients, 32).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut exact = vec![0f64; length];
        let mut sum = vec![0u64; length];
        for client in 0..clients {
            let values: Vec<f32> = (0..length)
                .map(|index| (((client * 31 + index * 17) % 200) as f32 / 100.0) - 1.0)
                .collect();
            for (total, &value) in exact.iter_mut().zip(&values) {
                *total += f64::from(value);
            }
            let quantized = quantizer.quantize(&values, &mut rng).unwrap();
            for (total, value) in sum.iter_mut().zip(quantized) {
                *total = (*total + value) & (u64::from(u32::MAX));
            }
        }
        let decoded = quantizer.decode_sum(&sum, clients).unwrap();
        // Standard deviation per decoded sum at most √n·Δ/2; allow 6 of them.
        let bound = 6.0 * (clients as f64).sqrt() * quantizer.step() / 2.0;
        for (decoded, exact) in decoded.iter().zip(&exact) {
            assert!(
                (decoded - exact).abs() <= bound,
                "{decoded} vs {exact}, bound {bound}"
            );
        }
    }

    #[test]
    fn weighted_average_of_quantized_uploads() {
        let quantizer = Quantizer::new(4.0, 3, 48).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let uploads = [
            (1.0f32, vec![0.5f32, -1.0]),
            (2.0, vec![1.5, 0.0]),
            (0.5, vec![-2.0, 3.0]),
        ];
        let mut sum = vec![0u64; 3];
        for (weight, update) in &uploads {
            let quantized = quantizer
                .quantize_weighted(*weight, update, &mut rng)
                .unwrap();
            for (total, value) in sum.iter_mut().zip(quantized) {
                *total += value;
            }
        }
        let average = weighted_average(&quantizer.decode_sum(&sum, 3).unwrap()).unwrap();
        let total_weight: f64 = uploads.iter().map(|(weight, _)| f64::from(*weight)).sum();
        let expected: Vec<f64> = (0..2)
            .map(|coordinate| {
                uploads
                    .iter()
                    .map(|(weight, update)| f64::from(*weight) * f64::from(update[coordinate]))
                    .sum::<f64>()
                    / total_weight
            })
            .collect();
        for (got, want) in average.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert!(weighted_average(&[0.0, 1.0]).is_err());
        assert!(weighted_average(&[]).is_err());
        assert!(quantizer.quantize_weighted(-1.0, &[0.0], &mut rng).is_err());
    }
}
