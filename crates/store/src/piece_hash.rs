//! Shard roots from pieces hashed apart, while each stripe is still in cache.
//!
//! A shard is one piece from every stripe. When pieces are a power-of-two number of BLAKE3 chunks
//! (1 KiB) and a shard has at least two, every piece is a complete BLAKE3 subtree at its own offset,
//! so the coder can take each piece's chaining value right after coding its stripe
//! ([`piece_value`]) and the shard's root is those values merged the way BLAKE3 merges its tree
//! ([`root_of`]): the same hash as [`crate::ContentHash::of`] over the whole shard, without reading
//! the shards again.

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};

use crate::manifest::ContentHash;

/// Whether shards of `pieces` pieces of `piece_bytes` can be rooted from their pieces' values.
pub(crate) fn applies(piece_bytes: usize, pieces: usize) -> bool {
    piece_bytes >= blake3::CHUNK_LEN && piece_bytes.is_power_of_two() && pieces >= 2
}

/// The chaining value of `piece`, the piece at `index` of a shard whose pieces are all this long
/// (see [`applies`]).
pub(crate) fn piece_value(piece: &[u8], index: usize) -> ChainingValue {
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset((index * piece.len()) as u64);
    hasher.update(piece);
    hasher.finalize_non_root()
}

/// The root of a shard from its pieces' values, in order (at least two; see [`applies`]).
pub(crate) fn root_of(values: &[ChainingValue]) -> Option<ContentHash> {
    if values.len() < 2 {
        return None;
    }
    let (left, right) = values.split_at(left_count(values.len()));
    Some(ContentHash(
        *merge_subtrees_root(&merge(left), &merge(right), Mode::Hash).as_bytes(),
    ))
}

/// The chaining value of the subtree over `values` (at least one).
fn merge(values: &[ChainingValue]) -> ChainingValue {
    match values {
        [only] => *only,
        _ => {
            let (left, right) = values.split_at(left_count(values.len()));
            merge_subtrees_non_root(&merge(left), &merge(right), Mode::Hash)
        }
    }
}

/// How many of `count` equal complete subtrees (`count >= 2`) BLAKE3 puts on the left: the largest
/// power of two below `count`.
fn left_count(count: usize) -> usize {
    1 << (usize::BITS - 1 - (count - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_from_piece_values_match_hashing_the_whole_shard() {
        assert_eq!(
            (2..=9).map(left_count).collect::<Vec<_>>(),
            [1, 2, 2, 4, 4, 4, 4, 8]
        );
        let mut bytes = vec![0u8; 37 * 4096];
        blake3::Hasher::new().finalize_xof().fill(&mut bytes);
        for piece_bytes in [1024, 4096] {
            for pieces in 2..=bytes.len() / piece_bytes {
                let shard = &bytes[..pieces * piece_bytes];
                let values: Vec<ChainingValue> = shard
                    .chunks(piece_bytes)
                    .enumerate()
                    .map(|(index, piece)| piece_value(piece, index))
                    .collect();
                assert!(applies(piece_bytes, pieces));
                assert_eq!(
                    root_of(&values),
                    Some(ContentHash::of(shard)),
                    "{pieces} pieces of {piece_bytes}"
                );
            }
        }
        assert!(!applies(1024, 1) && !applies(3072, 4) && !applies(512, 4));
        assert_eq!(root_of(&[]), None);
    }
}
