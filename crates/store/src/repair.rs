//! Shard repair: rebuilding one lost shard of an asset from any `k` of its other shards, knowing only
//! what the ledger records (`k`, `m`, the shard length and every shard's BLAKE3 root), not the stripe
//! geometry (piece size) that [`crate::erasure`] coded it with.
//!
//! # Why the geometry is not needed
//!
//! `reed-solomon-simd` works on 64-byte blocks, each holding 32 GF(2^16) symbols (low bytes, then high
//! bytes), and codes every block position independently: byte `b` of a block at offset `64·i` of a
//! piece depends only on the blocks at offset `64·i` of the other pieces. The code it uses (high or low
//! rate) depends on `k` and `m` alone. Shard `j` is piece `j` of every stripe, concatenated, and every
//! piece is a multiple of 64 bytes ([`PIECE_ALIGN_BYTES`], checked at compile time below), so each
//! 64-byte block of a shard lies inside one piece and lines up with the same block of every other
//! shard. Coding the whole shards as one stripe therefore gives exactly what per-stripe coding gave,
//! and so does coding them in segments of any multiple of 64 bytes, whether or not segments line up with
//! stripes.
//!
//! # How
//!
//! The shard is rebuilt in segments of [`SEGMENT_BYTES`], in parallel (rayon), each worker reusing one
//! decoder and one encoder, so working memory is bounded per segment, not per shard. A lost data shard
//! comes straight out of the decoder; a lost parity shard is re-encoded from the data shards, after
//! decoding whichever of them are missing too. [`rebuild_shard_checked`] also checks the result against
//! the root the caller expects (the ledger's), so a corrupt source shard is caught before the rebuilt
//! shard is stored or served.

use rayon::prelude::*;
use reed_solomon_simd::{DecoderResult, ReedSolomonDecoder, ReedSolomonEncoder};

use crate::erasure;
use crate::error::{Result, StoreError};
use crate::limits::{PIECE_ALIGN_BYTES, SHARD_BYTES_MAX, SHARDS_MAX};
use crate::manifest::ContentHash;

/// Bytes of a Reed-Solomon block in `reed-solomon-simd`: 32 GF(2^16) symbols, coded independently of
/// every other block position.
pub const BLOCK_BYTES: usize = 64;

/// Bytes of each shard coded at once: each worker's decoder and encoder hold a few dozen buffers of this
/// size at most (`k + m <= 32`), the same working set as coding a stripe of the largest pieces ingest
/// makes ([`crate::limits::PIECE_BYTES_MAX`]). Smaller segments pay the decoder's fixed cost per call
/// (its error locator) more often; larger ones fall out of cache: 256 KiB was the fastest of 64 KiB to
/// 4 MiB for `(k, m)` of `(4, 2)` and `(10, 4)`, for data and parity repairs alike.
pub const SEGMENT_BYTES: usize = 256 * 1024;

// Whole shards can be coded as one stripe only if every piece is made of whole blocks.
const _: () = assert!(PIECE_ALIGN_BYTES.is_multiple_of(BLOCK_BYTES as u64));
const _: () = assert!(SEGMENT_BYTES > 0 && SEGMENT_BYTES.is_multiple_of(BLOCK_BYTES));

/// Rebuilds shard `index` of a k + m coding from any k of the others, without the stripe geometry.
///
/// `shards` holds the `k + m` shards in index order, `None` for missing ones; `shards[index]` is ignored
/// (it is the one being rebuilt, and may be corrupt). The others supplied must have one length, a
/// multiple of [`BLOCK_BYTES`] (as every shard [`crate::erasure`] makes is), and at least `k` of them
/// must be supplied. They are used as given: check them against their roots first, or use
/// [`rebuild_shard_checked`], which checks the result.
///
/// Fails with [`StoreError::InvalidOption`] for a bad `k`/`m` or an `index` out of range,
/// [`StoreError::ShardSlotCount`] if `shards` does not have `k + m` entries,
/// [`StoreError::ShardLength`] naming a shard whose length differs from the others' or is not whole
/// blocks, and [`StoreError::NotEnoughShards`] if fewer than `k` others are supplied.
pub fn rebuild_shard(
    data_shards: usize,
    parity_shards: usize,
    shards: &[Option<&[u8]>],
    index: usize,
) -> Result<Vec<u8>> {
    let plan = Plan::new(data_shards, parity_shards, shards, index)?;
    plan.rebuild(SEGMENT_BYTES)
}

/// [`rebuild_shard`], then checks that the rebuilt shard's BLAKE3 root is `expected_root` (the ledger's
/// root for shard `index`), failing with [`StoreError::RebuiltShardMismatch`] if not: some supplied shard
/// was corrupt (or `expected_root` is not this shard's).
pub fn rebuild_shard_checked(
    data_shards: usize,
    parity_shards: usize,
    shards: &[Option<&[u8]>],
    index: usize,
    expected_root: &ContentHash,
) -> Result<Vec<u8>> {
    let shard = rebuild_shard(data_shards, parity_shards, shards, index)?;
    let actual = ContentHash::of_large(&shard);
    if actual != *expected_root {
        return Err(StoreError::RebuiltShardMismatch {
            index,
            expected: expected_root.to_hex(),
            actual: actual.to_hex(),
        });
    }
    Ok(shard)
}

/// A checked repair: which shards feed the decoder, and whether the encoder runs after it.
struct Plan<'a> {
    data_shards: usize,
    parity_shards: usize,
    index: usize,
    shard_bytes: usize,
    /// The `k + m` shards with `index` removed.
    sources: Vec<Option<&'a [u8]>>,
    /// Parity shards fed to the decoder (with every present data shard): just enough to make `k`.
    recovery: Vec<(usize, &'a [u8])>,
    /// Whether some data shard (perhaps `index` itself) must be decoded.
    decode: bool,
}

impl<'a> Plan<'a> {
    fn new(
        data_shards: usize,
        parity_shards: usize,
        shards: &[Option<&'a [u8]>],
        index: usize,
    ) -> Result<Self> {
        // The same bounds on k and m as ingest (whose pieces of one block are always a valid geometry).
        let count = data_shards
            .checked_add(parity_shards)
            .filter(|&count| count <= SHARDS_MAX)
            .ok_or_else(|| {
                StoreError::invalid_option(
                    "data_shards/parity_shards",
                    format!(
                        "k = {data_shards}, m = {parity_shards}: need k >= 1, m >= 1 and k + m <= {SHARDS_MAX}"
                    ),
                )
            })?;
        erasure::check_geometry(
            data_shards,
            parity_shards,
            data_shards as u64 * PIECE_ALIGN_BYTES,
        )?;
        if shards.len() != count {
            return Err(StoreError::ShardSlotCount {
                expected: count,
                found: shards.len(),
            });
        }
        if index >= count {
            return Err(StoreError::invalid_option(
                "index",
                format!("shard {index} is out of range: there are {count} shards (k + m)"),
            ));
        }
        let mut sources = shards.to_vec();
        sources[index] = None;

        let mut first: Option<(usize, usize)> = None;
        for (slot, shard) in sources.iter().enumerate() {
            let Some(shard) = shard else { continue };
            let bytes = shard.len();
            let reason = match first {
                Some((first_index, first_bytes)) if bytes != first_bytes => Some(format!(
                    "shard {first_index} is {first_bytes}; supplied shards must have one length"
                )),
                Some(_) => None,
                None if !bytes.is_multiple_of(BLOCK_BYTES) => Some(format!(
                    "not a multiple of the {BLOCK_BYTES}-byte Reed-Solomon block"
                )),
                None if bytes as u64 > SHARD_BYTES_MAX => {
                    Some(format!("more than the shard limit of {SHARD_BYTES_MAX}"))
                }
                None => None,
            };
            if let Some(reason) = reason {
                return Err(StoreError::ShardLength {
                    index: slot,
                    bytes: bytes as u64,
                    reason,
                });
            }
            first.get_or_insert((slot, bytes));
        }

        let present = sources.iter().filter(|shard| shard.is_some()).count();
        if present < data_shards {
            return Err(StoreError::NotEnoughShards {
                present,
                needed: data_shards,
            });
        }
        let data_present = sources[..data_shards]
            .iter()
            .filter(|shard| shard.is_some())
            .count();
        let recovery = sources[data_shards..]
            .iter()
            .enumerate()
            .filter_map(|(parity, shard)| shard.map(|shard| (parity, shard)))
            .take(data_shards - data_present)
            .collect();
        Ok(Self {
            data_shards,
            parity_shards,
            index,
            shard_bytes: first.map_or(0, |(_, bytes)| bytes),
            sources,
            recovery,
            decode: data_present < data_shards,
        })
    }

    /// The rebuilt shard, coded `segment_bytes` (a non-zero multiple of [`BLOCK_BYTES`]) at a time.
    fn rebuild(&self, segment_bytes: usize) -> Result<Vec<u8>> {
        let mut shard = vec![0u8; self.shard_bytes];
        shard
            .par_chunks_mut(segment_bytes)
            .enumerate()
            .try_for_each_init(Coders::default, |coders, (segment, target)| {
                let start = segment * segment_bytes;
                self.rebuild_segment(coders, segment, start..start + target.len(), target)
            })?;
        Ok(shard)
    }

    /// Writes bytes `range` of the rebuilt shard (segment number `segment`) into `target`.
    fn rebuild_segment(
        &self,
        coders: &mut Coders,
        segment: usize,
        range: std::ops::Range<usize>,
        target: &mut [u8],
    ) -> Result<()> {
        // A segment is coded as a stripe of its own: errors name it as the stripe.
        let coding_error = |error: reed_solomon_simd::Error| StoreError::Erasure {
            stripe: segment as u64,
            message: format!("repairing shard {}: {error}", self.index),
        };
        let not_restored = |what: &str, index: usize| StoreError::Erasure {
            stripe: segment as u64,
            message: format!(
                "repairing shard {}: {what} {index} was not restored",
                self.index
            ),
        };
        let (k, m, bytes) = (self.data_shards, self.parity_shards, target.len());
        let Coders { encoder, decoder } = coders;

        let decoded: Option<DecoderResult<'_>> = if self.decode {
            let decoder = reset_decoder(decoder, k, m, bytes).map_err(coding_error)?;
            for (index, shard) in self.sources[..k].iter().enumerate() {
                if let Some(shard) = shard {
                    decoder
                        .add_original_shard(index, &shard[range.clone()])
                        .map_err(coding_error)?;
                }
            }
            for &(parity, shard) in &self.recovery {
                decoder
                    .add_recovery_shard(parity, &shard[range.clone()])
                    .map_err(coding_error)?;
            }
            Some(decoder.decode().map_err(coding_error)?)
        } else {
            None
        };
        let data = |index: usize| -> Result<&[u8]> {
            match self.sources[index] {
                Some(shard) => Ok(&shard[range.clone()]),
                None => decoded
                    .as_ref()
                    .and_then(|result| result.restored_original(index))
                    .ok_or_else(|| not_restored("data shard", index)),
            }
        };

        if self.index < k {
            target.copy_from_slice(data(self.index)?);
            return Ok(());
        }
        let encoder = reset_encoder(encoder, k, m, bytes).map_err(coding_error)?;
        for index in 0..k {
            encoder
                .add_original_shard(data(index)?)
                .map_err(coding_error)?;
        }
        let parity = self.index - k;
        let result = encoder.encode().map_err(coding_error)?;
        let recovered = result
            .recovery(parity)
            .ok_or_else(|| not_restored("parity shard", self.index))?;
        target.copy_from_slice(recovered);
        Ok(())
    }
}

/// One worker's coders, made on first use and reset for each segment (a no-op unless its size differs).
#[derive(Default)]
struct Coders {
    encoder: Option<ReedSolomonEncoder>,
    decoder: Option<ReedSolomonDecoder>,
}

fn reset_encoder(
    slot: &mut Option<ReedSolomonEncoder>,
    data_shards: usize,
    parity_shards: usize,
    bytes: usize,
) -> Result<&mut ReedSolomonEncoder, reed_solomon_simd::Error> {
    let encoder = match slot.take() {
        Some(mut encoder) => {
            encoder.reset(data_shards, parity_shards, bytes)?;
            encoder
        }
        None => ReedSolomonEncoder::new(data_shards, parity_shards, bytes)?,
    };
    Ok(slot.insert(encoder))
}

fn reset_decoder(
    slot: &mut Option<ReedSolomonDecoder>,
    data_shards: usize,
    parity_shards: usize,
    bytes: usize,
) -> Result<&mut ReedSolomonDecoder, reed_solomon_simd::Error> {
    let decoder = match slot.take() {
        Some(mut decoder) => {
            decoder.reset(data_shards, parity_shards, bytes)?;
            decoder
        }
        None => ReedSolomonDecoder::new(data_shards, parity_shards, bytes)?,
    };
    Ok(slot.insert(decoder))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::erasure::encode;
    use crate::limits::PIECE_BYTES_MAX;
    use crate::{IngestOptions, ingest_bytes};

    /// Deterministic pseudo-random bytes (BLAKE3's output stream), so failures reproduce.
    fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        blake3::Hasher::new()
            .update(&seed.to_le_bytes())
            .finalize_xof()
            .fill(&mut bytes);
        bytes
    }

    /// The shards with those in `lost` replaced by `None`.
    fn erase<'a>(shards: &'a [Vec<u8>], lost: &[usize]) -> Vec<Option<&'a [u8]>> {
        shards
            .iter()
            .enumerate()
            .map(|(index, shard)| (!lost.contains(&index)).then_some(shard.as_slice()))
            .collect()
    }

    /// Rebuilds every shard in `lost` (with all of `lost` missing) at each segment size and through
    /// [`rebuild_shard_checked`] (segments of [`SEGMENT_BYTES`]), and checks each against the original.
    fn check_rebuilds(k: usize, m: usize, shards: &[Vec<u8>], lost: &[usize], segments: &[usize]) {
        let supplied = erase(shards, lost);
        for &index in lost {
            for &segment_bytes in segments {
                let plan = Plan::new(k, m, &supplied, index).unwrap();
                let rebuilt = plan.rebuild(segment_bytes).unwrap();
                assert!(
                    rebuilt == shards[index],
                    "k = {k}, m = {m}, lost {lost:?}: shard {index} differs (segments of {segment_bytes})"
                );
            }
            let root = ContentHash::of(&shards[index]);
            let rebuilt = rebuild_shard_checked(k, m, &supplied, index, &root).unwrap();
            assert!(rebuilt == shards[index]);
        }
    }

    /// Every subset of `0..n` with `size` elements, in lexicographic order.
    fn subsets(n: usize, size: usize) -> Vec<Vec<usize>> {
        let mut all = Vec::new();
        let mut current = Vec::with_capacity(size);
        fn walk(
            start: usize,
            n: usize,
            size: usize,
            current: &mut Vec<usize>,
            all: &mut Vec<Vec<usize>>,
        ) {
            if current.len() == size {
                all.push(current.clone());
                return;
            }
            for next in start..n {
                current.push(next);
                walk(next + 1, n, size, current, all);
                current.pop();
            }
        }
        walk(0, n, size, &mut current, &mut all);
        all
    }

    const GEOMETRIES: [(usize, usize); 5] = [(1, 1), (4, 2), (3, 3), (10, 4), (2, 5)];

    #[test]
    fn rebuilds_erasure_patterns_of_small_shards() {
        // Pieces of 1 and 3 blocks, several stripes, the last one zero-padded; segments smaller than,
        // straddling and larger than the pieces all give the per-stripe coding back.
        for (k, m) in GEOMETRIES {
            for piece_bytes in [64, 192] {
                let stripe_bytes = k * piece_bytes;
                let stream = random_bytes((k * 100 + m) as u64, 3 * stripe_bytes + 37);
                let shards = encode(&stream, k, m, stripe_bytes as u64).unwrap();
                assert_eq!(shards[0].len(), 4 * piece_bytes);
                // Every single loss, and every way of losing the most that may be lost (every fifth
                // way where there are hundreds: each decode has a fixed cost of about a millisecond).
                let most = subsets(k + m, m);
                let step = if most.len() > 200 { 5 } else { 1 };
                let patterns = subsets(k + m, 1)
                    .into_iter()
                    .chain(most.into_iter().step_by(step));
                for lost in patterns {
                    check_rebuilds(k, m, &shards, &lost, &[128, 320]);
                }
            }
        }
    }

    #[test]
    fn rebuilds_shards_spanning_many_segments() {
        // Pieces that do not divide the segment (and the largest pieces), shards over two segments long.
        for (k, m) in GEOMETRIES {
            for piece_bytes in [3 * 64 * 1024 + 64, PIECE_BYTES_MAX as usize] {
                let stripe_bytes = k * piece_bytes;
                let stripes = (2 * SEGMENT_BYTES).div_ceil(piece_bytes) + 1;
                let stream = random_bytes(k as u64, stripes * stripe_bytes - 1000);
                let shards = encode(&stream, k, m, stripe_bytes as u64).unwrap();
                assert!(shards[0].len() > 2 * SEGMENT_BYTES);
                let n = k + m;
                // Lose m shards: all data first, then all parity, then a mix.
                let first: Vec<usize> = (0..m).collect();
                let last: Vec<usize> = (n - m..n).collect();
                let mixed: Vec<usize> = (0..m).map(|i| (i * 2 + 1) % n).collect();
                for lost in [first, last, mixed] {
                    check_rebuilds(k, m, &shards, &lost, &[SEGMENT_BYTES, 64 * 1000]);
                }
            }
        }
    }

    #[test]
    fn rebuilds_ingested_shards_to_their_manifest_roots() {
        let mut jsonl = String::new();
        for row in 0..90_000 {
            jsonl.push_str(&format!(
                "{{\"row\":{row},\"name\":\"item-{}\"}}\n",
                row * 7919
            ));
        }
        for (k, m) in [(4, 2), (3, 3), (10, 4)] {
            let ingested =
                ingest_bytes("rows.jsonl", jsonl.as_bytes(), &IngestOptions::new(k, m)).unwrap();
            let manifest = &ingested.manifest;
            assert!(manifest.stripe_count() > 1);
            let n = k + m;
            let shards = ingested.shard_vecs();
            for index in 0..n {
                // Lose this shard and m - 1 after it.
                let lost: Vec<usize> = (0..m).map(|i| (index + i) % n).collect();
                let supplied = erase(&shards, &lost);
                let entry = &manifest.shards[index];
                let rebuilt = rebuild_shard_checked(k, m, &supplied, index, &entry.root).unwrap();
                assert_eq!(rebuilt.len() as u64, entry.byte_size);
                assert!(rebuilt == shards[index]);
            }
        }
    }

    #[test]
    fn empty_shards_rebuild_empty() {
        let shards = encode(&[], 4, 2, 4 * 64).unwrap();
        let supplied = erase(&shards, &[0, 5]);
        assert_eq!(rebuild_shard(4, 2, &supplied, 0).unwrap(), Vec::<u8>::new());
        assert_eq!(rebuild_shard(4, 2, &supplied, 5).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn the_shard_being_rebuilt_is_ignored_if_supplied() {
        let shards = encode(&random_bytes(9, 5000), 3, 2, 3 * 128).unwrap();
        let mut corrupt = shards.clone();
        corrupt[1] = vec![0xff; 64];
        let supplied = erase(&corrupt, &[4]);
        let rebuilt = rebuild_shard(3, 2, &supplied, 1).unwrap();
        assert!(rebuilt == shards[1]);
    }

    #[test]
    fn too_few_shards_are_rejected() {
        let shards = encode(&random_bytes(1, 4000), 4, 2, 4 * 64).unwrap();
        // Three lost besides none: only 3 of the 4 needed remain.
        let supplied = erase(&shards, &[0, 2, 5]);
        assert!(matches!(
            rebuild_shard(4, 2, &supplied, 0),
            Err(StoreError::NotEnoughShards {
                present: 3,
                needed: 4
            })
        ));
        // The shard being rebuilt does not count, even if supplied.
        let supplied = erase(&shards, &[2, 5]);
        assert!(matches!(
            rebuild_shard(4, 2, &supplied, 0),
            Err(StoreError::NotEnoughShards {
                present: 3,
                needed: 4
            })
        ));
    }

    #[test]
    fn mismatched_and_unaligned_lengths_are_rejected() {
        let shards = encode(&random_bytes(2, 4000), 4, 2, 4 * 64).unwrap();
        let mut short = shards.clone();
        let shortened = short[3].len() - 64;
        short[3].truncate(shortened);
        let error = rebuild_shard(4, 2, &erase(&short, &[0]), 0).unwrap_err();
        assert!(
            matches!(error, StoreError::ShardLength { index: 3, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("one length"), "{error}");

        let mut unaligned = shards.clone();
        for shard in &mut unaligned {
            shard.truncate(shard.len() - 2);
        }
        let error = rebuild_shard(4, 2, &erase(&unaligned, &[0]), 0).unwrap_err();
        assert!(
            matches!(error, StoreError::ShardLength { index: 1, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("64-byte"), "{error}");
    }

    #[test]
    fn bad_index_slots_and_geometry_are_rejected() {
        let shards = encode(&random_bytes(3, 1000), 4, 2, 4 * 64).unwrap();
        let supplied = erase(&shards, &[]);
        assert!(matches!(
            rebuild_shard(4, 2, &supplied, 6),
            Err(StoreError::InvalidOption { name: "index", .. })
        ));
        assert!(matches!(
            rebuild_shard(4, 2, &supplied[..5], 0),
            Err(StoreError::ShardSlotCount {
                expected: 6,
                found: 5
            })
        ));
        assert!(matches!(
            rebuild_shard(6, 0, &supplied, 0),
            Err(StoreError::InvalidOption { .. })
        ));
        assert!(matches!(
            rebuild_shard(0, 6, &supplied, 0),
            Err(StoreError::InvalidOption { .. })
        ));
        assert!(matches!(
            rebuild_shard(usize::MAX, 2, &supplied, 0),
            Err(StoreError::InvalidOption { .. })
        ));
    }

    #[test]
    fn wrong_expected_root_is_rejected() {
        let shards = encode(&random_bytes(4, 3000), 3, 3, 3 * 64).unwrap();
        let supplied = erase(&shards, &[1, 4]);
        let wrong = ContentHash::of(&shards[0]);
        let error = rebuild_shard_checked(3, 3, &supplied, 1, &wrong).unwrap_err();
        match error {
            StoreError::RebuiltShardMismatch {
                index,
                expected,
                actual,
            } => {
                assert_eq!(index, 1);
                assert_eq!(expected, wrong.to_hex());
                assert_eq!(actual, ContentHash::of(&shards[1]).to_hex());
            }
            other => panic!("unexpected error: {other}"),
        }
        // A corrupt source shard gives a wrong shard, which the check catches.
        let mut corrupt = shards.clone();
        corrupt[0][10] ^= 1;
        let supplied = erase(&corrupt, &[1, 4]);
        let root = ContentHash::of(&shards[1]);
        assert!(matches!(
            rebuild_shard_checked(3, 3, &supplied, 1, &root),
            Err(StoreError::RebuiltShardMismatch { index: 1, .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn rebuilds_random_geometries_and_erasures(
            k in 1usize..=12,
            m in 1usize..=8,
            piece_blocks in 1usize..=6,
            stream_len in 0usize..12_000,
            seed in any::<u64>(),
            erasure_order in prop::collection::vec(any::<u32>(), 20),
            lost_count in 1usize..=8,
            segment_blocks in 1usize..=9,
        ) {
            let piece_bytes = piece_blocks * BLOCK_BYTES;
            let stream = random_bytes(seed, stream_len);
            let shards = encode(&stream, k, m, (k * piece_bytes) as u64).unwrap();
            // Up to m distinct shards, chosen by sorting indices by random keys.
            let mut order: Vec<usize> = (0..k + m).collect();
            order.sort_by_key(|&index| erasure_order[index]);
            let lost = &order[..lost_count.min(m)];
            check_rebuilds(k, m, &shards, lost, &[segment_blocks * BLOCK_BYTES, SEGMENT_BYTES]);
            // One more lost is one too many.
            let too_many = &order[..m + 1];
            let supplied = erase(&shards, too_many);
            let is_not_enough = matches!(
                rebuild_shard(k, m, &supplied, too_many[0]),
                Err(StoreError::NotEnoughShards { .. })
            );
            prop_assert!(is_not_enough);
        }
    }
}
