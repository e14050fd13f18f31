//! Named limits on every size and count this crate accepts.
//!
//! Proofs travel in ledger transactions and are decoded from untrusted bytes, so every dimension has a
//! maximum that is checked before anything is allocated from it. The relations between the limits are
//! checked at compile time at the bottom of this file.

/// Bytes in one BLAKE3 chunk, the unit a challenge names. Fixed by BLAKE3; not a tunable.
pub const CHUNK_BYTES: u64 = blake3::CHUNK_LEN as u64;

/// Bytes of one BLAKE3 chaining value (a subtree's non-root hash), the unit of a proof's sibling list.
pub const CHAINING_VALUE_BYTES: usize = blake3::OUT_LEN;

/// Chunks per outboard group: an outboard stores one chaining value per 16 KiB of shard (0.2% of the
/// shard's size), and proving one chunk from disk reads that chunk's 16 KiB group plus the outboard.
pub const OUTBOARD_GROUP_CHUNKS: u64 = 16;

/// Largest shard a proof can be made or checked for, in bytes (1 TiB: a tree of 2^30 chunks).
pub const SHARD_BYTES_MAX: u64 = 1 << 40;

/// Depth of the BLAKE3 tree of the largest shard: the most siblings on one chunk's path to the root.
pub const TREE_DEPTH_MAX: usize = (SHARD_BYTES_MAX / CHUNK_BYTES).ilog2() as usize;

/// Most chunks one challenge (and so one proof) may name.
pub const CHALLENGE_CHUNKS_MAX: usize = 16;

/// Most sibling chaining values in one proof: every challenged chunk's path, with nothing shared.
pub const SIBLINGS_MAX: usize = CHALLENGE_CHUNKS_MAX * TREE_DEPTH_MAX;

/// Bytes of an encoded proof before its chunks: the format version (1) and the chunk count (2).
pub const STORAGE_PROOF_HEADER_BYTES: usize = 1 + 2;

/// Bytes of one encoded chunk: its length (2) and at most [`CHUNK_BYTES`] of data.
pub const ENCODED_CHUNK_BYTES_MAX: usize = 2 + CHUNK_BYTES as usize;

/// Largest encoded [`crate::StorageProof`], in bytes: [`CHALLENGE_CHUNKS_MAX`] full chunks and
/// [`SIBLINGS_MAX`] siblings. Decoding rejects anything longer before reading it.
pub const STORAGE_PROOF_BYTES_MAX: usize = STORAGE_PROOF_HEADER_BYTES
    + CHALLENGE_CHUNKS_MAX * ENCODED_CHUNK_BYTES_MAX
    + 2
    + SIBLINGS_MAX * CHAINING_VALUE_BYTES;

/// Largest encoded proof of ONE chunk of the largest shard, in bytes (1,991). A 1 GiB shard's one-chunk
/// proof is 1,671 bytes (20 siblings).
pub const ONE_CHUNK_PROOF_BYTES_MAX: usize = STORAGE_PROOF_HEADER_BYTES
    + ENCODED_CHUNK_BYTES_MAX
    + 2
    + TREE_DEPTH_MAX * CHAINING_VALUE_BYTES;

/// Budget for a proof inside a 4 KiB ledger transaction, leaving room for its header. A challenge
/// names no more chunks than a proof can carry within it ([`crate::challenge_chunks`]); one chunk of
/// the largest shard always fits.
pub const PROOF_BUDGET_BYTES: usize = 3 * 1024;

/// Most outboard chaining values read (and held) at once while proving from disk: 1 MiB.
pub const OUTBOARD_READ_VALUES_MAX: usize = 32 * 1024;

const _: () = assert!(CHUNK_BYTES == 1024);
const _: () = assert!(OUTBOARD_GROUP_CHUNKS.is_power_of_two() && OUTBOARD_GROUP_CHUNKS >= 1);
const _: () = assert!(SHARD_BYTES_MAX.is_power_of_two() && SHARD_BYTES_MAX >= CHUNK_BYTES);
// A one-chunk proof of the largest shard fits the transaction budget.
const _: () = assert!(ONE_CHUNK_PROOF_BYTES_MAX <= PROOF_BUDGET_BYTES);
// Counts are encoded as u16.
const _: () = assert!(CHALLENGE_CHUNKS_MAX <= u16::MAX as usize);
const _: () = assert!(SIBLINGS_MAX <= u16::MAX as usize);
const _: () = assert!(CHUNK_BYTES <= u16::MAX as u64);
// The proving buffer holds at least two groups' worth of values, so splitting always makes progress.
const _: () = assert!(OUTBOARD_READ_VALUES_MAX >= 2);
