//! Typed errors.
//!
//! Every error about an input names it: the file (by the name the caller gave), the line, the chunk or
//! the shard index, so a caller can report it or act on it (fetch another copy of a corrupt shard).

use std::path::PathBuf;

use crate::manifest::ManifestError;

/// Why a data-plane operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file's extension names no format this crate checks.
    #[error(
        "{name}: unsupported format (expected .csv, .parquet, .jsonl or .ndjson, or a folder of them)"
    )]
    UnsupportedFormat {
        /// The file.
        name: String,
    },
    /// A folder asset, or a bundle claiming to be one, is not acceptable.
    #[error("folder {name}: {reason}")]
    FolderInvalid {
        /// The folder or bundle.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The file has no header row.
    #[error("{name}: CSV file is empty (no header row)")]
    CsvMissingHeader {
        /// The file.
        name: String,
    },
    /// A CSV row has a different number of fields from the header.
    #[error("{name}: line {line}: row has {found} fields, the header has {expected}")]
    CsvRaggedRow {
        /// The file.
        name: String,
        /// 1-based line of the row's start (the header is line 1).
        line: u64,
        /// Fields in the header.
        expected: usize,
        /// Fields in this row.
        found: usize,
    },
    /// The CSV reader rejected the file.
    #[error("{name}: line {line}: malformed CSV: {message}")]
    CsvMalformed {
        /// The file.
        name: String,
        /// 1-based line.
        line: u64,
        /// What the reader said.
        message: String,
    },
    /// A Parquet file's magic bytes or footer length are wrong.
    #[error("{name}: not a Parquet file: {reason}")]
    ParquetMalformed {
        /// The file.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A JSON Lines line does not parse as JSON (or is blank).
    #[error("{name}: line {line}: not a JSON value: {message}")]
    JsonLineMalformed {
        /// The file.
        name: String,
        /// 1-based line.
        line: u64,
        /// What the parser said.
        message: String,
    },
    /// The asset is larger than [`crate::limits::ASSET_BYTES_MAX`].
    #[error("{name}: {bytes} bytes, more than the limit of {max}")]
    AssetTooLarge {
        /// The file.
        name: String,
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// An option is out of range.
    #[error("invalid option {name}: {reason}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// The manifest breaks one of its invariants.
    #[error("invalid manifest: {0}")]
    Manifest(#[from] ManifestError),
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(getrandom::Error),
    /// Fewer shards were supplied than the manifest's number of data shards.
    #[error("{present} shards supplied, at least {needed} are needed to reconstruct the asset")]
    NotEnoughShards {
        /// Shards supplied.
        present: usize,
        /// Data shards (`k`).
        needed: usize,
    },
    /// The shard list has the wrong length for the manifest.
    #[error("{found} shard slots supplied, the manifest has {expected} shards")]
    ShardSlotCount {
        /// `k + m`.
        expected: usize,
        /// Slots supplied.
        found: usize,
    },
    /// Supplied shards do not match their manifest roots (or sizes): fetch these indices elsewhere and retry.
    #[error("corrupt shards (size or BLAKE3 root differs from the manifest): {indices:?}")]
    CorruptShards {
        /// Indices of the corrupt shards, increasing.
        indices: Vec<usize>,
    },
    /// A shard's bytes do not hash to the root they were stored or fetched under.
    #[error(
        "shard {index} of asset {asset}: BLAKE3 root {actual} differs from the expected {expected}"
    )]
    ShardRootMismatch {
        /// The asset id (hex).
        asset: String,
        /// The shard index.
        index: u32,
        /// The root it should have.
        expected: String,
        /// The root it has.
        actual: String,
    },
    /// Shards handed to repair cannot be decoded together: their lengths differ, or are not whole
    /// Reed-Solomon blocks (see [`crate::repair`]).
    #[error("shard {index} is {bytes} bytes: {reason}")]
    ShardLength {
        /// The shard index.
        index: usize,
        /// Its length.
        bytes: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A rebuilt shard does not hash to the root the caller expected (the ledger's): a shard it was
    /// rebuilt from is corrupt, or the root is another shard's.
    #[error("rebuilt shard {index}: BLAKE3 root {actual} differs from the expected {expected}")]
    RebuiltShardMismatch {
        /// The rebuilt shard's index.
        index: usize,
        /// The root it should have (hex).
        expected: String,
        /// The root it has (hex).
        actual: String,
    },
    /// Reed-Solomon coding failed (a bug or an inconsistent manifest).
    #[error("erasure coding stripe {stripe}: {message}")]
    Erasure {
        /// The stripe.
        stripe: u64,
        /// What the library said.
        message: String,
    },
    /// A chunk failed authentication: the data key is wrong, or the ciphertext or manifest was altered.
    #[error("chunk {chunk} failed to decrypt: wrong data key, or altered ciphertext or manifest")]
    Decrypt {
        /// The chunk index.
        chunk: u64,
    },
    /// Encryption failed (only if a chunk exceeds the cipher's message limit: a bug).
    #[error("chunk {chunk} failed to encrypt")]
    Encrypt {
        /// The chunk index.
        chunk: u64,
    },
    /// The reassembled bytes do not hash to the manifest's asset id.
    #[error("reassembled asset hashes to {actual}, the manifest's asset id is {expected}")]
    AssetHashMismatch {
        /// The manifest's asset id (hex).
        expected: String,
        /// The hash of the output (hex).
        actual: String,
    },
    /// A wrapped key could not be opened: wrong recipient key, wrong context, or altered bytes.
    #[error("the wrapped key does not open with this key and context")]
    Unwrap,
    /// A public key is not a valid ed25519 point, or is of small order.
    #[error("invalid recipient public key: {reason}")]
    InvalidPublicKey {
        /// Why.
        reason: &'static str,
    },
    /// Encoded bytes (hex, a wrapped key) are malformed.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// Another process holds the shard store's lock.
    #[error("{path}: shard store is in use by another process")]
    StoreLocked {
        /// The store's lock file.
        path: PathBuf,
    },
    /// A proof of storage could not be made.
    #[error("proof of storage for shard {index} of asset {asset}: {source}")]
    Proof {
        /// The asset id (hex).
        asset: String,
        /// The shard index.
        index: u32,
        /// The underlying error.
        source: tributary_proof::ProofError,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid_option(name: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidOption {
            name,
            reason: reason.into(),
        }
    }
}
