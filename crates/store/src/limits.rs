//! Named limits on every size and count the data plane accepts.
//!
//! Manifests, shards and wrapped keys arrive from other nodes, so each dimension has a maximum checked
//! before anything is allocated from it. The relations between the limits (and with the libraries'
//! own bounds) are checked at compile time at the bottom of this file.

/// Largest asset (plaintext file) accepted, in bytes. Ingest seals the asset where it lies and holds it
/// with its parity shards (about `asset × (1 + m / k)` bytes at the peak), so the practical limit is
/// the machine.
pub const ASSET_BYTES_MAX: u64 = 64 * 1024 * 1024 * 1024;

/// Most files in a folder asset ([`crate::folder`]).
pub const FOLDER_FILES_MAX: usize = 10_000;

/// Longest path of a file in a folder asset, relative to the folder, in bytes.
pub const FOLDER_PATH_BYTES_MAX: usize = 1_024;

/// Largest index (the folder's manifest) of a folder asset, in bytes.
pub const FOLDER_INDEX_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Smallest content-defined chunk (except an asset's last chunk), in bytes.
pub const CHUNK_BYTES_MIN: u32 = 256 * 1024;

/// Target average content-defined chunk, in bytes.
pub const CHUNK_BYTES_AVERAGE: u32 = 1024 * 1024;

/// Largest content-defined chunk, in bytes.
pub const CHUNK_BYTES_MAX: u32 = 4 * 1024 * 1024;

/// Bytes of each encrypted chunk's authentication tag (AES-256-GCM and XChaCha20-Poly1305), which the
/// manifest records beside the chunk.
pub const TAG_BYTES: u32 = 16;

/// Most chunks in one asset: every chunk but the last is at least [`CHUNK_BYTES_MIN`].
pub const CHUNKS_MAX: u64 = ASSET_BYTES_MAX / CHUNK_BYTES_MIN as u64 + 1;

/// Fewest data shards (`k`).
pub const DATA_SHARDS_MIN: usize = 1;

/// Fewest parity shards (`m`): at least one shard may always be lost.
pub const PARITY_SHARDS_MIN: usize = 1;

/// Most shards in all (`k + m`).
pub const SHARDS_MAX: usize = 32;

/// Piece sizes (a shard's share of one stripe) are multiples of this many bytes, the Reed-Solomon
/// library's SIMD width.
pub const PIECE_ALIGN_BYTES: u64 = 64;

/// Largest piece (one shard's share of one stripe) ingest makes, in bytes; small assets get smaller
/// pieces so that padding stays under `k × 64` bytes.
pub const PIECE_BYTES_MAX: u64 = 256 * 1024;

/// Largest stripe (`k` pieces), in bytes.
pub const STRIPE_BYTES_MAX: u64 = SHARDS_MAX as u64 * PIECE_BYTES_MAX;

/// Largest encoded manifest (JSON), in bytes.
pub const MANIFEST_BYTES_MAX: usize = 48 * 1024 * 1024;

/// Generous bound on one chunk entry's JSON (two numbers of up to 20 digits, a 32-digit hex tag and
/// their names).
pub const CHUNK_ENTRY_JSON_BYTES_MAX: usize = 160;

/// Generous bound on one shard entry's JSON (an index, a size and a 64-digit hex root).
pub const SHARD_ENTRY_JSON_BYTES_MAX: usize = 192;

/// Bound on the rest of a manifest's JSON (version, format, asset id, cipher, counts).
pub const MANIFEST_HEADER_JSON_BYTES_MAX: usize = 1024;

/// Longest context string bound into a wrapped key, in bytes.
pub const WRAP_CONTEXT_BYTES_MAX: usize = 1024;

/// Largest record (a small file about an asset kept beside its shards, such as a provider's copy of
/// the manifest or its key envelopes) a shard store holds, in bytes.
pub const RECORD_BYTES_MAX: usize = MANIFEST_BYTES_MAX + 16 * 1024 * 1024;

/// Longest record name, in bytes (lowercase ASCII letters and `-`).
pub const RECORD_NAME_BYTES_MAX: usize = 32;

/// Largest shard a store may hold: the largest asset with `k = 1` and a stripe of padding.
pub const SHARD_BYTES_MAX: u64 = ASSET_BYTES_MAX + STRIPE_BYTES_MAX;

const _: () =
    assert!(CHUNK_BYTES_MIN < CHUNK_BYTES_AVERAGE && CHUNK_BYTES_AVERAGE < CHUNK_BYTES_MAX);
// FastCDC 2020's own bounds on its parameters.
const _: () = assert!(CHUNK_BYTES_MIN as usize >= fastcdc::v2020::MINIMUM_MIN);
const _: () = assert!(CHUNK_BYTES_MIN as usize <= fastcdc::v2020::MINIMUM_MAX);
const _: () = assert!(CHUNK_BYTES_AVERAGE as usize >= fastcdc::v2020::AVERAGE_MIN);
const _: () = assert!(CHUNK_BYTES_AVERAGE as usize <= fastcdc::v2020::AVERAGE_MAX);
const _: () = assert!(CHUNK_BYTES_MAX as usize >= fastcdc::v2020::MAXIMUM_MIN);
const _: () = assert!(CHUNK_BYTES_MAX as usize <= fastcdc::v2020::MAXIMUM_MAX);
const _: () = assert!(
    CHUNK_BYTES_MIN.is_multiple_of(2)
        && CHUNK_BYTES_AVERAGE.is_multiple_of(2)
        && CHUNK_BYTES_MAX.is_multiple_of(2)
);
// Chunk indices fit the 64-bit nonce counter; chunk sizes fit u32.
const _: () = assert!(CHUNKS_MAX < u32::MAX as u64);
const _: () = assert!(DATA_SHARDS_MIN >= 1 && PARITY_SHARDS_MIN >= 1);
const _: () = assert!(DATA_SHARDS_MIN + PARITY_SHARDS_MIN <= SHARDS_MAX);
// Reed-Solomon pieces must be a non-zero even number of bytes.
const _: () = assert!(
    PIECE_ALIGN_BYTES.is_multiple_of(2) && PIECE_BYTES_MAX.is_multiple_of(PIECE_ALIGN_BYTES)
);
// A manifest fits in a record.
const _: () = assert!(MANIFEST_BYTES_MAX <= RECORD_BYTES_MAX);
// Every shard can be proven with `tributary-proof`.
const _: () = assert!(SHARD_BYTES_MAX <= tributary_proof::limits::SHARD_BYTES_MAX);
// The largest well-formed manifest fits the manifest limit.
const _: () = assert!(
    CHUNKS_MAX as usize * CHUNK_ENTRY_JSON_BYTES_MAX
        + SHARDS_MAX * SHARD_ENTRY_JSON_BYTES_MAX
        + MANIFEST_HEADER_JSON_BYTES_MAX
        <= MANIFEST_BYTES_MAX
);

// Every entry of a full folder index fits: its path (escaped, at most six bytes per byte) and its
// other fields (a size, a format and a hash in hex, with their names).
const _: () =
    assert!(FOLDER_FILES_MAX * (6 * FOLDER_PATH_BYTES_MAX + 160) <= FOLDER_INDEX_BYTES_MAX);
const _: () = assert!(FOLDER_INDEX_BYTES_MAX <= u32::MAX as usize);
