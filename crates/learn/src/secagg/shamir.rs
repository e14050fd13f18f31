//! Shamir secret sharing of 32-byte secrets over the Goldilocks field `p = 2^64 − 2^32 + 1`
//! (commonware-math's `fields::goldilocks`, with its `Poly` and `Interpolator`).
//!
//! A secret's 256 bits are packed into five 63-bit limbs (commonware's `F::stream_from_u64s`; every limb is
//! below `p`), and each limb is shared with its own random polynomial of degree `t − 1` whose constant is
//! the limb. The holder with client id `c` gets the five evaluations at the point `c + 1` (never zero, and
//! distinct for distinct clients since ids are `u32`).
//!
//! Hiding: the non-constant coefficients are uniform in the field, so for any `t − 1` distinct non-zero
//! points the map from those coefficients to the `t − 1` evaluations is a bijection, for every value of the
//! constant. Any `t − 1` shares are therefore uniformly distributed whatever the secret: they reveal nothing
//! about it, information-theoretically.
//!
//! Recovery interpolates the constant from the first `t` shares (by holder id). Every further share is
//! checked against the polynomial those `t` define, and the result must be a canonical encoding of 32
//! bytes; a wrong share makes recovery fail with [`SecAggError::InconsistentShares`] instead of
//! producing a wrong secret.

use std::collections::{BTreeMap, BTreeSet};

use commonware_math::algebra::{Additive, Ring};
use commonware_math::fields::goldilocks::F;
use commonware_math::poly::{Interpolator, Poly};
use commonware_parallel::Sequential;
use commonware_utils::ordered::Map;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::{ClientId, Result, SecAggError};

/// Bytes of a shared secret.
pub const SECRET_BYTES: usize = 32;

/// Field elements per share: 256 bits in 63-bit limbs.
pub const SHARE_LIMBS: usize = 5;

/// Bytes of a share in its binary form (little-endian limbs).
pub const SHARE_BYTES: usize = SHARE_LIMBS * 8;

/// The Goldilocks prime `2^64 − 2^32 + 1`; share limbs are below it.
pub const FIELD_MODULUS: u64 = 0xFFFF_FFFF_0000_0001;

/// One holder's share of one secret: five field elements. The holder (and so the evaluation point) is
/// implied by who holds it. Zeroized on drop; `Debug` does not print it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "[u64; SHARE_LIMBS]", into = "[u64; SHARE_LIMBS]")]
pub struct Share {
    limbs: [u64; SHARE_LIMBS],
}

impl Share {
    /// A share from its limbs; each must be below [`FIELD_MODULUS`].
    pub fn new(limbs: [u64; SHARE_LIMBS]) -> Result<Self> {
        if let Some(limb) = limbs.iter().find(|&&limb| limb >= FIELD_MODULUS) {
            return Err(SecAggError::Malformed {
                what: "share",
                reason: format!("limb {limb:#x} is not below the field modulus {FIELD_MODULUS:#x}"),
            });
        }
        Ok(Self { limbs })
    }

    /// The limbs.
    pub fn limbs(&self) -> &[u64; SHARE_LIMBS] {
        &self.limbs
    }

    /// Writes the binary form into `out` ([`SHARE_BYTES`] bytes).
    pub(crate) fn write_bytes(&self, out: &mut [u8]) {
        for (chunk, limb) in out.chunks_exact_mut(8).zip(&self.limbs) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
    }

    /// Parses the binary form ([`SHARE_BYTES`] bytes).
    pub(crate) fn read_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != SHARE_BYTES {
            return Err(SecAggError::WrongLength {
                what: "share",
                expected: SHARE_BYTES,
                got: bytes.len(),
            });
        }
        let mut limbs = [0u64; SHARE_LIMBS];
        let (chunks, _) = bytes.as_chunks::<8>();
        for (limb, chunk) in limbs.iter_mut().zip(chunks) {
            *limb = u64::from_le_bytes(*chunk);
        }
        let share = Self::new(limbs);
        limbs.zeroize();
        share
    }
}

impl TryFrom<[u64; SHARE_LIMBS]> for Share {
    type Error = SecAggError;

    fn try_from(limbs: [u64; SHARE_LIMBS]) -> Result<Self> {
        Self::new(limbs)
    }
}

impl From<Share> for [u64; SHARE_LIMBS] {
    fn from(share: Share) -> Self {
        share.limbs
    }
}

impl std::fmt::Debug for Share {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Share(..)")
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.limbs.zeroize();
    }
}

/// The evaluation point of `holder`: `holder + 1`.
fn point(holder: ClientId) -> F {
    F::from(u64::from(holder) + 1)
}

fn to_u64(element: F) -> u64 {
    u64::from_le_bytes(element.to_le_bytes())
}

/// The five limbs of a secret.
fn pack(secret: &[u8; SECRET_BYTES]) -> Zeroizing<[u64; SHARE_LIMBS]> {
    let mut words = Zeroizing::new([0u64; SECRET_BYTES / 8]);
    for (word, chunk) in words.iter_mut().zip(secret.as_chunks::<8>().0) {
        *word = u64::from_le_bytes(*chunk);
    }
    let mut limbs = Zeroizing::new([0u64; SHARE_LIMBS]);
    for (limb, element) in limbs
        .iter_mut()
        .zip(F::stream_from_u64s(words.iter().copied()))
    {
        *limb = to_u64(element);
    }
    limbs
}

/// The secret whose limbs these are, if they are a canonical packing of 32 bytes.
fn unpack(limbs: &[u64; SHARE_LIMBS]) -> Option<Zeroizing<[u8; SECRET_BYTES]>> {
    let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
    let words = F::stream_to_u64s(limbs.iter().map(|&limb| F::from(limb)));
    for (chunk, word) in secret.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    // Limbs with bits the packing never sets (above bit 62, or past bit 255 overall) are not a packing.
    (*pack(&secret) == *limbs).then_some(secret)
}

/// Splits `secret` among `holders` so that any `threshold` of them recover it and fewer learn nothing.
pub fn split(
    secret: &[u8; SECRET_BYTES],
    holders: &BTreeSet<ClientId>,
    threshold: usize,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<BTreeMap<ClientId, Share>> {
    if threshold == 0 || threshold > holders.len() {
        return Err(SecAggError::InvalidConfig {
            reason: format!(
                "cannot split a secret {threshold}-of-{}: the threshold must be 1 to the number of \
                 holders",
                holders.len()
            ),
        });
    }
    let degree = u32::try_from(threshold - 1).map_err(|_| SecAggError::InvalidConfig {
        reason: format!("threshold {threshold} does not fit a polynomial degree"),
    })?;
    let limbs = pack(secret);
    let mut values: BTreeMap<ClientId, [u64; SHARE_LIMBS]> = holders
        .iter()
        .map(|&holder| (holder, [0; SHARE_LIMBS]))
        .collect();
    for (index, &limb) in limbs.iter().enumerate() {
        let mut polynomial = Poly::new_with_constant(&mut *rng, degree, F::from(limb));
        for (&holder, value) in values.iter_mut() {
            value[index] = to_u64(polynomial.eval(&point(holder)));
        }
        // The coefficients are secret: overwrite them before the polynomial is freed (best effort,
        // `Poly` has no zeroize of its own).
        polynomial *= &F::zero();
        std::hint::black_box(&polynomial);
    }
    let shares = values
        .iter()
        .map(|(&holder, value)| Ok((holder, Share::new(*value)?)))
        .collect();
    for value in values.values_mut() {
        value.zeroize();
    }
    shares
}

/// Recovers the secret of `owner` (named in errors, with `secret`, its kind) from shares by holder.
/// Needs at least `threshold` shares; checks every share beyond the first `threshold`.
pub fn recover(
    owner: ClientId,
    secret: &'static str,
    shares: &BTreeMap<ClientId, Share>,
    threshold: usize,
) -> Result<Zeroizing<[u8; SECRET_BYTES]>> {
    if threshold == 0 || shares.len() < threshold {
        return Err(SecAggError::NotEnoughShares {
            client: owner,
            secret,
            have: shares.len(),
            need: threshold,
        });
    }
    let inconsistent = |reason| SecAggError::InconsistentShares {
        client: owner,
        secret,
        reason,
    };
    let basis: Vec<(ClientId, &Share)> = shares
        .iter()
        .take(threshold)
        .map(|(&h, s)| (h, s))
        .collect();
    let interpolator = Interpolator::new(basis.iter().map(|&(holder, _)| (holder, point(holder))));
    let mut limbs = Zeroizing::new([0u64; SHARE_LIMBS]);
    for (index, limb) in limbs.iter_mut().enumerate() {
        let evaluations = Map::from_iter_dedup(
            basis
                .iter()
                .map(|&(holder, share)| (holder, F::from(share.limbs[index]))),
        );
        let constant =
            interpolator
                .interpolate(&evaluations, &Sequential)
                .ok_or(SecAggError::Crypto {
                    reason: "Lagrange interpolation of shares",
                })?;
        *limb = to_u64(constant);
    }
    if shares.len() > threshold {
        let checker = Barycentric::new(basis.iter().map(|&(holder, _)| point(holder)).collect());
        let ordinates: Vec<[u64; SHARE_LIMBS]> =
            basis.iter().map(|&(_, share)| share.limbs).collect();
        for (&holder, share) in shares.iter().skip(threshold) {
            let expected = checker.evaluate(point(holder), &ordinates);
            if expected != share.limbs {
                return Err(inconsistent(
                    "a share does not lie on the polynomial the others define",
                ));
            }
        }
    }
    unpack(&limbs).ok_or_else(|| inconsistent("they reconstruct to no valid 32-byte secret"))
}

/// Evaluates the polynomial of degree `< t` through `t` points anywhere else, in O(t) per point (the
/// barycentric Lagrange form).
struct Barycentric {
    abscissas: Vec<F>,
    /// `1 / Π_{j≠i} (x_i − x_j)`.
    weights: Vec<F>,
}

impl Barycentric {
    fn new(abscissas: Vec<F>) -> Self {
        let denominators: Vec<F> = abscissas
            .iter()
            .enumerate()
            .map(|(i, &x_i)| {
                abscissas
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .fold(F::one(), |product, (_, &x_j)| product * (x_i - x_j))
            })
            .collect();
        let weights = batch_inverse(&denominators);
        Self { abscissas, weights }
    }

    /// The polynomial through `(abscissas[i], ordinates[i][limb])` at `x`, for every limb; `x` must not
    /// be one of the abscissas.
    fn evaluate(&self, x: F, ordinates: &[[u64; SHARE_LIMBS]]) -> [u64; SHARE_LIMBS] {
        let differences: Vec<F> = self.abscissas.iter().map(|&x_i| x - x_i).collect();
        let inverses = batch_inverse(&differences);
        let node = differences
            .iter()
            .fold(F::one(), |product, &difference| product * difference);
        let mut out = [0u64; SHARE_LIMBS];
        for (index, value) in out.iter_mut().enumerate() {
            let sum = self.weights.iter().zip(&inverses).zip(ordinates).fold(
                F::zero(),
                |sum, ((&weight, &inverse), ordinate)| {
                    sum + weight * inverse * F::from(ordinate[index])
                },
            );
            *value = to_u64(node * sum);
        }
        out
    }
}

/// The inverses of non-zero elements with one field inversion (Montgomery's trick).
fn batch_inverse(elements: &[F]) -> Vec<F> {
    let mut prefix = Vec::with_capacity(elements.len());
    let mut product = F::one();
    for &element in elements {
        prefix.push(product);
        product = product * element;
    }
    let mut inverse = product.inv();
    let mut out = vec![F::zero(); elements.len()];
    for index in (0..elements.len()).rev() {
        out[index] = inverse * prefix[index];
        inverse = inverse * elements[index];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn holders(count: u32) -> BTreeSet<ClientId> {
        (0..count).map(|index| index * 7 + 3).collect()
    }

    fn subset(shares: &BTreeMap<ClientId, Share>, keep: &[usize]) -> BTreeMap<ClientId, Share> {
        shares
            .iter()
            .enumerate()
            .filter(|(index, _)| keep.contains(index))
            .map(|(_, (&holder, share))| (holder, share.clone()))
            .collect()
    }

    #[test]
    fn packing_round_trips_and_limbs_fit_the_field() {
        for byte in [0u8, 1, 0x7f, 0x80, 0xff] {
            let secret = [byte; SECRET_BYTES];
            let limbs = pack(&secret);
            assert!(limbs.iter().all(|&limb| limb < 1 << 63));
            assert_eq!(*unpack(&limbs).unwrap(), secret);
        }
        // Bits the packing never sets are refused.
        let mut limbs = *pack(&[0xff; SECRET_BYTES]);
        limbs[SHARE_LIMBS - 1] |= 1 << 10;
        assert!(unpack(&limbs).is_none());
    }

    #[test]
    fn any_threshold_shares_recover_and_fewer_do_not() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let secret: [u8; SECRET_BYTES] =
            std::array::from_fn(|index| (index as u8).wrapping_mul(11));
        let shares = split(&secret, &holders(7), 4, &mut rng).unwrap();
        assert_eq!(shares.len(), 7);
        for keep in [[0, 1, 2, 3], [3, 4, 5, 6], [0, 2, 4, 6], [1, 3, 5, 6]] {
            let recovered = recover(1, "test secret", &subset(&shares, &keep), 4).unwrap();
            assert_eq!(*recovered, secret);
        }
        // All seven, checking the three beyond the threshold.
        assert_eq!(*recover(1, "test secret", &shares, 4).unwrap(), secret);
        assert!(matches!(
            recover(1, "test secret", &subset(&shares, &[0, 1, 2]), 4),
            Err(SecAggError::NotEnoughShares {
                have: 3,
                need: 4,
                ..
            })
        ));
    }

    #[test]
    fn a_wrong_share_is_detected() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let secret = [42u8; SECRET_BYTES];
        let shares = split(&secret, &holders(6), 3, &mut rng).unwrap();
        for victim in 0..6 {
            let mut altered = shares.clone();
            let holder = *altered.keys().nth(victim).unwrap();
            let mut limbs = *altered[&holder].limbs();
            limbs[2] = (limbs[2] + 1) % FIELD_MODULUS;
            altered.insert(holder, Share::new(limbs).unwrap());
            assert!(
                matches!(
                    recover(1, "test secret", &altered, 3),
                    Err(SecAggError::InconsistentShares { .. })
                ),
                "altered share {victim}"
            );
        }
    }

    #[test]
    fn fewer_than_threshold_shares_are_consistent_with_every_secret() {
        // Perfect hiding, constructively: for t − 1 shares of one secret and ANY other secret, there is
        // a t-th share that makes the t of them recover the other secret. So the t − 1 shares rule out
        // nothing, and (the map from random coefficients to them being a bijection for every secret)
        // they are identically distributed whatever the secret.
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let threshold = 4;
        let holders = holders(6);
        let shares = split(&[1u8; SECRET_BYTES], &holders, threshold, &mut rng).unwrap();
        let known: Vec<(ClientId, &Share)> = shares
            .iter()
            .take(threshold - 1)
            .map(|(&h, s)| (h, s))
            .collect();
        let forger: ClientId = *holders.iter().last().unwrap();
        for other_secret in [[0u8; SECRET_BYTES], [0xee; SECRET_BYTES], [9; SECRET_BYTES]] {
            // The polynomial through (0, other secret's limbs) and the t − 1 known shares, at the
            // forger's point.
            let mut abscissas = vec![F::zero()];
            let mut ordinates = vec![*pack(&other_secret)];
            for &(holder, share) in &known {
                abscissas.push(point(holder));
                ordinates.push(*share.limbs());
            }
            let forged = Barycentric::new(abscissas).evaluate(point(forger), &ordinates);
            let mut mixed: BTreeMap<ClientId, Share> = known
                .iter()
                .map(|&(holder, share)| (holder, share.clone()))
                .collect();
            mixed.insert(forger, Share::new(forged).unwrap());
            assert_eq!(
                *recover(1, "test secret", &mixed, threshold).unwrap(),
                other_secret
            );
        }
    }

    #[test]
    fn fewer_than_threshold_shares_look_uniform_for_different_secrets() {
        // Statistically: the top three bits of the limbs of t − 1 = 2 shares, over many splits, are
        // uniform for an all-zero and an all-ones secret alike (chi-square with 7 degrees of freedom;
        // 40 is past the 1e-5 quantile).
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let holders = holders(4);
        for secret in [[0u8; SECRET_BYTES], [0xff; SECRET_BYTES]] {
            let mut counts = [0u64; 8];
            let splits = 2_000;
            for _ in 0..splits {
                let shares = split(&secret, &holders, 3, &mut rng).unwrap();
                for share in shares.values().take(2) {
                    for &limb in share.limbs() {
                        // Uniform below p ≈ 2^64: the top three bits are uniform up to 2^-32.
                        counts[(limb >> 61) as usize] += 1;
                    }
                }
            }
            let total: u64 = counts.iter().sum();
            let expected = total as f64 / 8.0;
            let chi_square: f64 = counts
                .iter()
                .map(|&count| (count as f64 - expected).powi(2) / expected)
                .sum();
            assert!(chi_square < 40.0, "chi-square {chi_square} for {counts:?}");
        }
    }

    #[test]
    fn share_parsing_refuses_bad_input() {
        assert!(Share::new([FIELD_MODULUS, 0, 0, 0, 0]).is_err());
        assert!(Share::read_bytes(&[0u8; SHARE_BYTES - 1]).is_err());
        let json = serde_json::to_string(&[u64::MAX, 0, 0, 0, 0]).unwrap();
        assert!(serde_json::from_str::<Share>(&json).is_err());
        let share = Share::new([1, 2, 3, 4, 5]).unwrap();
        let back: Share = serde_json::from_str(&serde_json::to_string(&share).unwrap()).unwrap();
        assert_eq!(back, share);
        assert_eq!(format!("{share:?}"), "Share(..)");
    }

    #[test]
    fn split_refuses_impossible_thresholds() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        assert!(split(&[0; SECRET_BYTES], &holders(3), 0, &mut rng).is_err());
        assert!(split(&[0; SECRET_BYTES], &holders(3), 4, &mut rng).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn split_then_recover(
            secret in prop::array::uniform32(any::<u8>()),
            holder_count in 2u32..20,
            threshold_seed in any::<u32>(),
            keep_seed in any::<u64>(),
            rng_seed in any::<u64>(),
        ) {
            let threshold = 1 + (threshold_seed as usize) % holder_count as usize;
            let mut rng = ChaCha20Rng::seed_from_u64(rng_seed);
            let shares = split(&secret, &holders(holder_count), threshold, &mut rng).unwrap();
            // A pseudo-random subset of at least `threshold` holders.
            let mut keep: Vec<usize> = (0..holder_count as usize).collect();
            let mut state = keep_seed;
            for index in (1..keep.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                keep.swap(index, (state >> 33) as usize % (index + 1));
            }
            let size = threshold + (keep_seed as usize) % (holder_count as usize - threshold + 1);
            keep.truncate(size);
            let recovered = recover(1, "test secret", &subset(&shares, &keep), threshold).unwrap();
            prop_assert_eq!(*recovered, secret);
            if threshold > 1 {
                keep.truncate(threshold - 1);
                let too_few = recover(1, "test secret", &subset(&shares, &keep), threshold);
                let is_not_enough = matches!(too_few, Err(SecAggError::NotEnoughShares { .. }));
                prop_assert!(is_not_enough);
            }
        }
    }
}
