//! The manifest: everything needed to fetch, check, decode and decrypt an asset except its data key.
//!
//! A manifest is JSON ([`Manifest::to_json`], [`Manifest::from_json`]). It records the plaintext's BLAKE3
//! hash (the asset id), the cipher, every content-defined chunk's place in the plaintext (the ciphertext
//! stream has the same layout) and its authentication tag, the erasure-coding geometry and every shard's size and BLAKE3 root. Anything
//! read from the network is checked by [`Manifest::validate`] before use: sizes add up, indices are in
//! order, every count is within [`crate::limits`]. [`Manifest::from_json`] validates too.
//!
//! The asset id is public (the ledger records it): like any unsalted hash it lets someone who can guess
//! the whole plaintext confirm the guess; it reveals nothing else.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cipher::{ChunkTag, CipherKind};
use crate::error::StoreError;
use crate::limits::{
    ASSET_BYTES_MAX, CHUNK_BYTES_MAX, CHUNKS_MAX, DATA_SHARDS_MIN, MANIFEST_BYTES_MAX,
    PARITY_SHARDS_MIN, PIECE_ALIGN_BYTES, SHARDS_MAX, STRIPE_BYTES_MAX,
};
use crate::validate::DataFormat;

/// The manifest format this crate writes and reads.
///
/// Version 2 keeps each chunk's tag in its entry, so the ciphertext stream has the plaintext's layout
/// (version 1 appended the tags to the chunks in the stream).
pub const MANIFEST_VERSION: u32 = 2;

/// A BLAKE3 hash: an asset id (of the plaintext) or a shard root. Written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// BLAKE3 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// BLAKE3 of `bytes`, hashed on every core: for assets and shards of up to gigabytes.
    pub fn of_large(bytes: &[u8]) -> Self {
        Self(
            *blake3::Hasher::new()
                .update_rayon(bytes)
                .finalize()
                .as_bytes(),
        )
    }

    /// The 64-digit lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ContentHash({})", self.to_hex())
    }
}

impl FromStr for ContentHash {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, StoreError> {
        let mut bytes = [0u8; 32];
        if text.len() != 64 || text.bytes().any(|byte| byte.is_ascii_uppercase()) {
            return Err(StoreError::Malformed {
                what: "BLAKE3 hash",
                reason: format!("expected 64 lowercase hex digits, got {:?}", truncate(text)),
            });
        }
        hex::decode_to_slice(text, &mut bytes).map_err(|error| StoreError::Malformed {
            what: "BLAKE3 hash",
            reason: error.to_string(),
        })?;
        Ok(Self(bytes))
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(80).collect()
}

impl Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One content-defined chunk: where it lies in the plaintext (and so in the ciphertext stream, which
/// has the same layout) and its authentication tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkEntry {
    /// Byte offset of the chunk in the plaintext and in the ciphertext stream.
    pub plaintext_offset: u64,
    /// Bytes in the chunk (plaintext and ciphertext alike).
    pub plaintext_len: u64,
    /// The chunk's AEAD tag.
    pub tag: ChunkTag,
}

/// One erasure-coded shard: its index, size and BLAKE3 root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardEntry {
    /// Position: `0..k` are data shards, `k..k + m` parity shards.
    pub index: u32,
    /// Bytes in the shard: the number of stripes times the piece size.
    pub byte_size: u64,
    /// `blake3::hash` of the shard; what storage deals commit to and proofs of storage check.
    pub root: ContentHash,
}

/// Everything about a stored asset except its data key. See the module docs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// The file format the asset was checked as.
    pub format: DataFormat,
    /// BLAKE3 of the plaintext file.
    pub asset_id: ContentHash,
    /// Plaintext bytes.
    pub byte_size: u64,
    /// The AEAD every chunk is sealed with.
    pub cipher: CipherKind,
    /// The chunks, in plaintext order.
    pub chunks: Vec<ChunkEntry>,
    /// `k`: data shards; any `k` shards reconstruct the asset.
    pub data_shards: u32,
    /// `m`: parity shards; any `m` shards may be lost.
    pub parity_shards: u32,
    /// Bytes per stripe of the ciphertext stream: `k` pieces of `stripe_bytes / k` bytes.
    pub stripe_bytes: u64,
    /// The `k + m` shards, in index order.
    pub shards: Vec<ShardEntry>,
}

/// How a manifest breaks its invariants.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestError {
    /// The version is not [`MANIFEST_VERSION`].
    #[error("version {found} is not supported (expected {expected})")]
    Version {
        /// The version found.
        found: u32,
        /// The version supported.
        expected: u32,
    },
    /// The JSON text is longer than [`MANIFEST_BYTES_MAX`].
    #[error("manifest is {bytes} bytes, more than the limit of {max}")]
    TooLarge {
        /// Its length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The JSON does not parse as a manifest.
    #[error("not a manifest: {0}")]
    Json(String),
    /// A count or size is outside its limits.
    #[error("{what} is {value}, outside {min}..={max}")]
    OutOfRange {
        /// What was counted.
        what: &'static str,
        /// The value.
        value: u64,
        /// The least allowed.
        min: u64,
        /// The most allowed.
        max: u64,
    },
    /// A chunk does not start where the previous one ended.
    #[error("chunk {chunk} starts at byte {found}, but the chunks before it end at {expected}")]
    ChunkOffset {
        /// The chunk.
        chunk: usize,
        /// Where it should start.
        expected: u64,
        /// Where it starts.
        found: u64,
    },
    /// The chunks do not add up to the asset's size.
    #[error("chunks cover {found} bytes, but the asset is {expected} bytes")]
    ChunksTotal {
        /// `byte_size`.
        expected: u64,
        /// The sum of the chunks.
        found: u64,
    },
    /// The stripe does not split into `k` aligned pieces.
    #[error(
        "stripe of {stripe_bytes} bytes does not split into {data_shards} pieces of a multiple of {align} bytes"
    )]
    StripeGeometry {
        /// `stripe_bytes`.
        stripe_bytes: u64,
        /// `k`.
        data_shards: u32,
        /// [`PIECE_ALIGN_BYTES`].
        align: u64,
    },
    /// The shard list's length is not `k + m`.
    #[error("{found} shards listed, expected k + m = {expected}")]
    ShardCount {
        /// `k + m`.
        expected: usize,
        /// Listed.
        found: usize,
    },
    /// A shard's index is not its position.
    #[error("shard at position {position} has index {found}")]
    ShardIndex {
        /// Position in the list.
        position: usize,
        /// Its index.
        found: u32,
    },
    /// A shard's size is not the number of stripes times the piece size.
    #[error("shard {index} is {found} bytes, expected {expected}")]
    ShardSize {
        /// The shard.
        index: u32,
        /// Stripes × piece bytes.
        expected: u64,
        /// Listed.
        found: u64,
    },
}

impl Manifest {
    /// Checks every invariant: version, limits, contiguous chunks adding up to `byte_size`,
    /// stripe geometry, and shard indices and sizes consistent with it.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.version != MANIFEST_VERSION {
            return Err(ManifestError::Version {
                found: self.version,
                expected: MANIFEST_VERSION,
            });
        }
        in_range("byte_size", self.byte_size, 0, ASSET_BYTES_MAX)?;
        in_range("chunk count", self.chunks.len() as u64, 0, CHUNKS_MAX)?;
        in_range(
            "data_shards",
            u64::from(self.data_shards),
            DATA_SHARDS_MIN as u64,
            (SHARDS_MAX - PARITY_SHARDS_MIN) as u64,
        )?;
        in_range(
            "parity_shards",
            u64::from(self.parity_shards),
            PARITY_SHARDS_MIN as u64,
            (SHARDS_MAX - DATA_SHARDS_MIN) as u64,
        )?;
        let shard_count = self.data_shards as usize + self.parity_shards as usize;
        in_range(
            "data_shards + parity_shards",
            shard_count as u64,
            (DATA_SHARDS_MIN + PARITY_SHARDS_MIN) as u64,
            SHARDS_MAX as u64,
        )?;
        let mut plaintext_end = 0u64;
        for (chunk, entry) in self.chunks.iter().enumerate() {
            if entry.plaintext_offset != plaintext_end {
                return Err(ManifestError::ChunkOffset {
                    chunk,
                    expected: plaintext_end,
                    found: entry.plaintext_offset,
                });
            }
            in_range(
                "chunk plaintext_len",
                entry.plaintext_len,
                1,
                u64::from(CHUNK_BYTES_MAX),
            )?;
            // Bounded: at most CHUNKS_MAX chunks of at most CHUNK_BYTES_MAX bytes.
            plaintext_end += entry.plaintext_len;
        }
        if plaintext_end != self.byte_size {
            return Err(ManifestError::ChunksTotal {
                expected: self.byte_size,
                found: plaintext_end,
            });
        }
        in_range("stripe_bytes", self.stripe_bytes, 1, STRIPE_BYTES_MAX)?;
        let piece_bytes = self.stripe_bytes / u64::from(self.data_shards);
        if !self
            .stripe_bytes
            .is_multiple_of(u64::from(self.data_shards))
            || !piece_bytes.is_multiple_of(PIECE_ALIGN_BYTES)
        {
            return Err(ManifestError::StripeGeometry {
                stripe_bytes: self.stripe_bytes,
                data_shards: self.data_shards,
                align: PIECE_ALIGN_BYTES,
            });
        }
        if self.shards.len() != shard_count {
            return Err(ManifestError::ShardCount {
                expected: shard_count,
                found: self.shards.len(),
            });
        }
        let expected_size = self.byte_size.div_ceil(self.stripe_bytes) * piece_bytes;
        for (position, shard) in self.shards.iter().enumerate() {
            if shard.index as usize != position {
                return Err(ManifestError::ShardIndex {
                    position,
                    found: shard.index,
                });
            }
            if shard.byte_size != expected_size {
                return Err(ManifestError::ShardSize {
                    index: shard.index,
                    expected: expected_size,
                    found: shard.byte_size,
                });
            }
        }
        Ok(())
    }

    /// Bytes of one shard's piece of each stripe.
    pub fn piece_bytes(&self) -> u64 {
        self.stripe_bytes / u64::from(self.data_shards.max(1))
    }

    /// Number of stripes.
    pub fn stripe_count(&self) -> u64 {
        self.byte_size.div_ceil(self.stripe_bytes.max(1))
    }

    /// Compact JSON.
    pub fn to_json(&self) -> Result<String, ManifestError> {
        serde_json::to_string(self).map_err(|error| ManifestError::Json(error.to_string()))
    }

    /// Parses and validates untrusted JSON, rejecting text over [`MANIFEST_BYTES_MAX`] before parsing.
    pub fn from_json(text: &str) -> Result<Self, ManifestError> {
        if text.len() > MANIFEST_BYTES_MAX {
            return Err(ManifestError::TooLarge {
                bytes: text.len(),
                max: MANIFEST_BYTES_MAX,
            });
        }
        let manifest: Self =
            serde_json::from_str(text).map_err(|error| ManifestError::Json(error.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }
}

fn in_range(what: &'static str, value: u64, min: u64, max: u64) -> Result<(), ManifestError> {
    if value < min || value > max {
        return Err(ManifestError::OutOfRange {
            what,
            value,
            min,
            max,
        });
    }
    Ok(())
}
