//! The BLAKE3 tree over a shard's 1 KiB chunks: chunk counts and ranges, subtree splits, and chaining values.
//!
//! BLAKE3 hashes its input as a binary tree whose leaves are 1 KiB chunks. A subtree of `n > 1` chunks
//! splits into a left subtree of the largest power of two chunks smaller than `n` and a right subtree of
//! the rest; every non-root node is summarised by a 32-byte chaining value, and the root node's output
//! (with the ROOT flag) is `blake3::hash` of the whole input. This module is the only place that knows
//! that shape; it uses `blake3::hazmat` for the flags, and its tests compare against `blake3::hash`.
//!
//! An empty shard has one empty chunk, as in BLAKE3 itself, so every shard has at least one chunk.

use blake3::hazmat::{self, ChainingValue, HasherExt, Mode};

use crate::limits::CHUNK_BYTES;

/// Number of 1 KiB chunks in a shard of `shard_len` bytes: `ceil(shard_len / 1024)`, and 1 for an empty
/// shard (BLAKE3 hashes the empty input as one empty chunk).
pub const fn chunk_count(shard_len: u64) -> u64 {
    if shard_len == 0 {
        1
    } else {
        shard_len.div_ceil(CHUNK_BYTES)
    }
}

/// Byte range `[start, end)` of chunk `chunk` in a shard of `shard_len` bytes (the last chunk may be short;
/// an empty shard's only chunk is empty). The caller ensures `chunk < chunk_count(shard_len)`.
pub(crate) fn chunk_byte_range(shard_len: u64, chunk: u64) -> (u64, u64) {
    let start = chunk.saturating_mul(CHUNK_BYTES).min(shard_len);
    let end = start.saturating_add(CHUNK_BYTES).min(shard_len);
    (start, end)
}

/// Chunks in the left child of a subtree of `chunks > 1` chunks: the largest power of two below `chunks`.
pub(crate) fn left_chunks(chunks: u64) -> u64 {
    debug_assert!(chunks > 1);
    1 << (chunks - 1).ilog2()
}

/// Chaining value of the subtree whose bytes are `bytes`, starting at byte `offset` of the shard.
///
/// The caller ensures the range is a subtree of the shard's tree (a whole left-aligned subtree, or one on
/// the right edge) and is not the whole shard (whose hash is the root, not a chaining value), and that
/// `bytes` is not empty (only an empty shard has an empty chunk, and that chunk is the root).
pub(crate) fn subtree_chaining_value(offset: u64, bytes: &[u8]) -> ChainingValue {
    debug_assert!(!bytes.is_empty() && offset.is_multiple_of(CHUNK_BYTES));
    blake3::Hasher::new()
        .set_input_offset(offset)
        .update(bytes)
        .finalize_non_root()
}

/// Chaining value of a non-root parent node.
pub(crate) fn parent_chaining_value(left: &ChainingValue, right: &ChainingValue) -> ChainingValue {
    hazmat::merge_subtrees_non_root(left, right, Mode::Hash)
}

/// Root hash of a tree of more than one chunk, from its two children.
pub(crate) fn root_hash(left: &ChainingValue, right: &ChainingValue) -> blake3::Hash {
    hazmat::merge_subtrees_root(left, right, Mode::Hash)
}

/// Chaining value of a subtree made of consecutive leaves whose chaining values are `values`, merged in
/// the BLAKE3 shape. Leaves are chunks or, for an outboard, groups of a power-of-two number of chunks.
pub(crate) fn merge_chaining_values(values: &[ChainingValue]) -> Option<ChainingValue> {
    match values {
        [] => None,
        [single] => Some(*single),
        _ => {
            let split = left_chunks(values.len() as u64) as usize;
            let left = merge_chaining_values(&values[..split])?;
            let right = merge_chaining_values(&values[split..])?;
            Some(parent_chaining_value(&left, &right))
        }
    }
}

/// The challenged chunks that fall in `[start, start + count)`, given all challenged chunks sorted.
pub(crate) fn chunks_within(chunks: &[u64], start: u64, count: u64) -> &[u64] {
    let end = start.saturating_add(count);
    let low = chunks.partition_point(|&chunk| chunk < start);
    let high = chunks.partition_point(|&chunk| chunk < end);
    &chunks[low..high]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_chunks_matches_blake3() {
        for chunks in 2..5000u64 {
            let bytes = chunks * CHUNK_BYTES;
            assert_eq!(
                left_chunks(chunks) * CHUNK_BYTES,
                hazmat::left_subtree_len(bytes),
                "{chunks} chunks"
            );
            // A short last chunk does not change the split.
            assert_eq!(
                left_chunks(chunks) * CHUNK_BYTES,
                hazmat::left_subtree_len(bytes - 1),
                "{chunks} chunks, short last"
            );
        }
    }

    #[test]
    fn chunk_counts_and_ranges() {
        assert_eq!(chunk_count(0), 1);
        assert_eq!(chunk_count(1), 1);
        assert_eq!(chunk_count(1024), 1);
        assert_eq!(chunk_count(1025), 2);
        assert_eq!(chunk_byte_range(0, 0), (0, 0));
        assert_eq!(chunk_byte_range(1025, 1), (1024, 1025));
        assert_eq!(chunk_byte_range(2048, 1), (1024, 2048));
    }

    #[test]
    fn merged_chunk_values_give_the_blake3_root() {
        for len in [1025usize, 2048, 3000, 5 * 1024, 17 * 1024 + 3] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let count = chunk_count(len as u64);
            let values: Vec<ChainingValue> = (0..count)
                .map(|chunk| {
                    let (start, end) = chunk_byte_range(len as u64, chunk);
                    subtree_chaining_value(start, &data[start as usize..end as usize])
                })
                .collect();
            let split = left_chunks(count) as usize;
            let left = merge_chaining_values(&values[..split]).unwrap();
            let right = merge_chaining_values(&values[split..]).unwrap();
            assert_eq!(root_hash(&left, &right), blake3::hash(&data), "len {len}");
        }
    }
}
