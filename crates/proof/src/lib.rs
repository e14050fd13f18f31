//! Proofs of storage for Tributary: a storage provider shows, epoch after epoch, that it still holds the
//! shards it is paid to keep.
//!
//! # The protocol
//!
//! A shard is an opaque byte string committed by its BLAKE3 root, exactly `blake3::hash(shard)` (what
//! `b3sum` prints). Each epoch the ledger draws a few of the shard's 1 KiB chunks from the chain's
//! randomness ([`challenge_chunks`]); the provider answers with a [`StorageProof`]: the challenged chunks
//! and the chaining values of the subtrees beside their paths in the BLAKE3 tree. Validators check it
//! against the root recorded in the deal ([`StorageProof::verify`]).
//!
//! # Design choices
//!
//! * **Chunk-granular proofs, no padding.** A proof of one chunk of a 1 GiB shard is 1,671 bytes (1 KiB of
//!   data and 20 chaining values); of one chunk of the largest shard (1 TiB), 1,991 bytes. It fits one
//!   4 KiB ledger transaction with its header ([`limits::ONE_CHUNK_PROOF_BYTES_MAX`], checked at compile
//!   time). A challenge names several chunks only as far as their proof surely still fits
//!   ([`challenge_chunks_fitting`]): two chunks of a shard over 32 MiB would not.
//! * **Our own tree walk on `blake3::hazmat` rather than `bao-tree`.** With bao-tree a 1 KiB proof needs a
//!   block size of one chunk, whose outboard is 64 bytes per KiB (64 MiB per GiB of shard, built one
//!   chunk at a time) and whose encoding carries both children at every level (2,304 bytes for 1 GiB).
//!   Walking the tree ourselves gives single-chunk proofs with an outboard at 16 KiB granularity (2 MiB per
//!   GiB, built at full SIMD speed), smaller proofs, and a dependency set of `blake3` alone for the
//!   ledger. The tree shape lives in one module ([`tree`]) and every test compares against `blake3::hash`.
//! * **Deterministic and bounded.** No floats, no I/O of its own, no randomness except the BLAKE3 output
//!   stream of the challenge; every count and length is bounded by a named limit ([`limits`]) and checked
//!   before allocation when decoding untrusted bytes. Nothing here panics on any input.
//! * **Proving from disk.** [`outboard()`] builds a 0.2% side file in one pass; [`prove_from_outboard`]
//!   then reads 16 KiB of shard plus the outboard, and checks its own proof before returning it.
//!
//! # Example
//!
//! ```
//! use tributary_proof::{StorageProof, challenge_chunks, prove};
//!
//! let shard = vec![7u8; 100_000];
//! let root = *blake3::hash(&shard).as_bytes();
//! let chunks = challenge_chunks([1; 32], 42, 7, shard.len() as u64, 1);
//! let bytes = prove(&shard, &chunks)?.encode();
//! // ... the bytes travel in a transaction ...
//! StorageProof::decode(&bytes)?.verify(&root, shard.len() as u64, &chunks)?;
//! # Ok::<(), tributary_proof::ProofError>(())
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

pub mod challenge;
pub mod error;
pub mod limits;
pub mod outboard;
pub mod proof;
pub mod tree;

pub use challenge::{CHALLENGE_CONTEXT, challenge_chunks, challenge_chunks_fitting};
pub use error::ProofError;
pub use outboard::{ReadAt, outboard, outboard_bytes, prove_from_outboard};
pub use proof::{STORAGE_PROOF_VERSION, StorageProof, prove, storage_proof_bytes};
pub use tree::chunk_count;
