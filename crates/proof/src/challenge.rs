//! Deterministic challenges: which chunks of a shard a provider must prove in an epoch.
//!
//! The chunks are drawn from a BLAKE3 extendable output keyed by a derive-key context, over the chain's
//! randomness (`seed`), the deal, the epoch and the shard's length. Anyone holding those inputs (a
//! validator replaying a block) draws the same chunks; a provider cannot predict them before the seed is
//! known. No random-number crate, no floats, a bounded number of steps.

use crate::limits::{
    CHAINING_VALUE_BYTES, CHALLENGE_CHUNKS_MAX, ENCODED_CHUNK_BYTES_MAX, PROOF_BUDGET_BYTES,
    STORAGE_PROOF_HEADER_BYTES,
};
use crate::tree::chunk_count;

/// The BLAKE3 derive-key context of challenges; changing it changes every challenge.
pub const CHALLENGE_CONTEXT: &str = "tributary-proof 2026 storage challenge v1";

/// The `count` distinct chunk indices, sorted, that a provider must prove for `deal_id` in `epoch`, drawn
/// uniformly from `0..chunk_count(shard_len)` (that is `0..ceil(shard_len / 1024)`, and `0..1` for an
/// empty shard).
///
/// Returns `min(count, CHALLENGE_CHUNKS_MAX, chunk_count(shard_len), challenge_chunks_fitting(shard_len))`
/// indices: a shard with fewer chunks than asked is challenged on all of them, and no challenge asks for
/// more than a proof can carry within [`PROOF_BUDGET_BYTES`], so an honest prover's answer always fits
/// its transaction.
pub fn challenge_chunks(
    seed: [u8; 32],
    deal_id: u64,
    epoch: u64,
    shard_len: u64,
    count: usize,
) -> Vec<u64> {
    let total = chunk_count(shard_len);
    let wanted = (count.min(CHALLENGE_CHUNKS_MAX) as u64)
        .min(total)
        .min(challenge_chunks_fitting(shard_len));
    let mut hasher = blake3::Hasher::new_derive_key(CHALLENGE_CONTEXT);
    hasher.update(&seed);
    hasher.update(&deal_id.to_le_bytes());
    hasher.update(&epoch.to_le_bytes());
    hasher.update(&shard_len.to_le_bytes());
    let mut stream = hasher.finalize_xof();
    // Floyd's sampling: exactly `wanted` draws, each uniform over a growing range, always distinct.
    let mut chosen: Vec<u64> = Vec::with_capacity(wanted as usize);
    for bound in (total - wanted)..total {
        let mut word = [0u8; 8];
        stream.fill(&mut word);
        let candidate = below(u64::from_le_bytes(word), bound + 1);
        if chosen.contains(&candidate) {
            chosen.push(bound);
        } else {
            chosen.push(candidate);
        }
    }
    chosen.sort_unstable();
    chosen
}

/// Most challenged chunks of a shard of `shard_len` bytes whose proof surely fits
/// [`PROOF_BUDGET_BYTES`]: each chunk counted whole with a full path of siblings (a chunk's path in
/// BLAKE3's tree of `n` chunks has at most `ceil(log2 n)` of them), none shared. At least 1.
pub fn challenge_chunks_fitting(shard_len: u64) -> u64 {
    let total = chunk_count(shard_len);
    let depth = u64::from(total.next_power_of_two().trailing_zeros());
    let per_chunk = ENCODED_CHUNK_BYTES_MAX as u64 + depth * CHAINING_VALUE_BYTES as u64;
    let room = (PROOF_BUDGET_BYTES - STORAGE_PROOF_HEADER_BYTES - 2) as u64;
    (room / per_chunk).max(1)
}

/// Maps a uniform 64-bit word onto `0..range` by multiply-and-shift. The bias is below
/// `range / 2^64` (under 2^-34 for the largest shard), which no prover can steer.
fn below(word: u64, range: u64) -> u64 {
    ((u128::from(word) * u128::from(range)) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_distinct_sorted_in_range() {
        for shard_len in [0u64, 1, 1024, 1025, 16 * 1024, 1 << 30] {
            for count in [0usize, 1, 4, 16, 100] {
                let first = challenge_chunks([7; 32], 3, 9, shard_len, count);
                let again = challenge_chunks([7; 32], 3, 9, shard_len, count);
                assert_eq!(first, again);
                let total = chunk_count(shard_len);
                let expected = (count.min(CHALLENGE_CHUNKS_MAX) as u64)
                    .min(total)
                    .min(challenge_chunks_fitting(shard_len))
                    as usize;
                assert_eq!(first.len(), expected, "len {shard_len} count {count}");
                assert!(first.windows(2).all(|pair| pair[0] < pair[1]));
                assert!(first.iter().all(|&chunk| chunk < total));
            }
        }
    }

    #[test]
    fn every_input_changes_the_draw() {
        let base = challenge_chunks([1; 32], 1, 1, 1 << 30, 4);
        assert_ne!(base, challenge_chunks([2; 32], 1, 1, 1 << 30, 4));
        assert_ne!(base, challenge_chunks([1; 32], 2, 1, 1 << 30, 4));
        assert_ne!(base, challenge_chunks([1; 32], 1, 2, 1 << 30, 4));
        assert_ne!(base, challenge_chunks([1; 32], 1, 1, (1 << 30) - 1024, 4));
    }

    #[test]
    fn small_shard_gets_every_chunk_that_fits_a_proof() {
        assert_eq!(challenge_chunks([0; 32], 0, 0, 2000, 16), vec![0, 1]);
        assert_eq!(challenge_chunks([0; 32], 0, 0, 0, 16), vec![0]);
        // Three whole chunks (3,083 bytes encoded) would not fit the budget: two of them do.
        assert_eq!(challenge_chunks([0; 32], 0, 0, 3000, 16).len(), 2);
    }

    #[test]
    fn draws_cover_the_range() {
        // Every chunk of a 64-chunk shard is drawn at least once over a few hundred epochs.
        let mut seen = [false; 64];
        for epoch in 0..400 {
            for chunk in challenge_chunks([5; 32], 11, epoch, 64 * 1024, 2) {
                seen[chunk as usize] = true;
            }
        }
        assert!(seen.iter().all(|&hit| hit));
    }
}
