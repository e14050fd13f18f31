//! Typed errors.
//!
//! A proof that fails to verify says why in terms a provider can act on (which chunk, what was
//! expected); none of them panics on any input, however malformed.

/// Why a proof could not be made, decoded or verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The shard is larger than [`crate::limits::SHARD_BYTES_MAX`].
    #[error("shard is {shard_len} bytes, more than the limit of {max}")]
    ShardTooLarge {
        /// The shard's length.
        shard_len: u64,
        /// The limit.
        max: u64,
    },
    /// The challenge names no chunk.
    #[error("the challenge names no chunk")]
    NoChunks,
    /// The challenge names more than [`crate::limits::CHALLENGE_CHUNKS_MAX`] chunks.
    #[error("the challenge names {count} chunks, more than the limit of {max}")]
    TooManyChunks {
        /// How many were named.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The challenged chunk indices are not strictly increasing.
    #[error(
        "challenged chunk {chunk} at position {position} is not greater than the one before it"
    )]
    ChunksNotIncreasing {
        /// Position in the list.
        position: usize,
        /// The index found there.
        chunk: u64,
    },
    /// A challenged chunk is past the end of the shard.
    #[error("chunk {chunk} is out of range: the shard has {chunk_count} chunks")]
    ChunkOutOfRange {
        /// The index.
        chunk: u64,
        /// Chunks in the shard.
        chunk_count: u64,
    },
    /// The encoded proof is longer than [`crate::limits::STORAGE_PROOF_BYTES_MAX`].
    #[error("proof is {bytes} bytes, more than the limit of {max}")]
    ProofTooLarge {
        /// Its length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The encoded proof ends before a field it announced.
    #[error(
        "proof is truncated: {field} needs {needed} bytes at offset {offset}, {available} left"
    )]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Where.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// The encoded proof has bytes after its last field.
    #[error("proof has {extra} bytes after its end")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// The encoded proof's version byte is not one this crate reads.
    #[error("proof format version {found} is not supported (expected {expected})")]
    UnsupportedVersion {
        /// The version byte.
        found: u8,
        /// The one supported.
        expected: u8,
    },
    /// A count or length in the encoded proof is over its limit.
    #[error("proof field {field} is {value}, more than the limit of {max}")]
    FieldOverLimit {
        /// The field.
        field: &'static str,
        /// Its value.
        value: usize,
        /// The limit.
        max: usize,
    },
    /// The proof has a different number of chunks or siblings from what the challenge needs.
    #[error("proof has {found} {what}, the challenge needs {expected}")]
    ShapeMismatch {
        /// "chunks" or "siblings".
        what: &'static str,
        /// What the challenge needs.
        expected: usize,
        /// What the proof has.
        found: usize,
    },
    /// A chunk in the proof has the wrong length for its place in the shard.
    #[error(
        "chunk {chunk} in the proof is {found} bytes, but that chunk of the shard is {expected}"
    )]
    ChunkLengthMismatch {
        /// The chunk's index.
        chunk: u64,
        /// Its length in the shard.
        expected: usize,
        /// Its length in the proof.
        found: usize,
    },
    /// The proof's chunks and siblings hash to a different root: the prover does not hold the challenged
    /// bytes (or proved another shard, chunk or challenge).
    #[error("proof does not hash to the shard's root")]
    RootMismatch,
    /// Reading the shard or its outboard failed.
    #[error("reading the {what} at offset {offset}: {source}")]
    Io {
        /// "shard" or "outboard".
        what: &'static str,
        /// Byte offset of the read.
        offset: u64,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A proof made from the local shard and outboard does not hash to the root the caller expects: the
    /// copy on disk (shard or outboard) is corrupt, or belongs to another shard. Repair it before proving.
    #[error("the local shard or outboard does not hash to the expected root: the copy is corrupt")]
    LocalCopyCorrupt,
    /// A shard read for an outboard was shorter or longer than the length given.
    #[error("the shard is {found} bytes, but {expected} were given as its length")]
    ShardLengthMismatch {
        /// The length given.
        expected: u64,
        /// What was read.
        found: u64,
    },
}
