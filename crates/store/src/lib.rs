//! The Tributary data plane: how a contributor's file becomes encrypted, erasure-coded shards that
//! storage providers hold, and how a licensee turns shards back into the file.
//!
//! ```text
//! file ──validate──▶ bytes ──FastCDC──▶ chunks ──AEAD(data key), in place──▶ ciphertext stream
//!      ──stripes × Reed-Solomon(k, m)──▶ k + m shards (each committed by its BLAKE3 root)
//!      (tags ──▶ manifest)
//! ```
//!
//! * [`ingest()`] / [`ingest_bytes`] run the whole pipeline and return the [`Manifest`], a fresh
//!   [`DataKey`] and the shards ([`ShardView`]s of the sealed file, and the parity).
//! * [`reassemble()`] takes any `k` shards (each checked against its root first; a corrupt one is named by
//!   index), decodes, decrypts and checks the result against the asset id; [`Reassembler`] does the
//!   same a batch of stripes at a time, for a reader decoding shards as they arrive.
//! * [`keywrap`] seals a data key to an account's ed25519 public key (converted to X25519), so a licensee
//!   can open it with its seed.
//! * [`ShardStore`] keeps shards on a provider's disk, crash-safely, and answers proofs of storage
//!   (`tributary-proof`) from an outboard beside each shard.
//!
//! # Design choices
//!
//! * **One fresh key per asset, derived nonces.** A key never encrypts two assets, so the chunk index is a
//!   safe nonce; no random nonce can collide. The chunk's associated data binds the asset id and the
//!   index.
//! * **Sealed where it lies.** Each chunk is encrypted in the file's own buffer and its tag goes to the
//!   manifest, so the ciphertext stream has the plaintext's layout and the data shards are views of
//!   it: ingest writes no fresh memory but the parity (on this project's machines, faulting in fresh
//!   pages cost more than the cipher).
//! * **AES-256-GCM where the CPU has AES instructions, XChaCha20-Poly1305 elsewhere**, chosen at run time
//!   and recorded in the manifest; readers follow the manifest.
//! * **Systematic erasure code over stripes.** Data shards are columns of the ciphertext stream, so reading
//!   with all data shards present is a copy; any `k` of `k + m` rebuild it. Stripes are coded in parallel.
//! * **Verify before use.** Shards are checked against manifest roots before decoding; manifests are
//!   validated on parse; the output is checked against the asset id.
//! * **Limits everywhere** ([`limits`]), with compile-time checks of how they relate.
//! * **No networking.** Transport (iroh-blobs) lives elsewhere and hands this crate bytes.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

pub mod chunking;
pub mod cipher;
pub mod direct_file;
pub mod erasure;
pub mod error;
pub mod folder;
pub mod ingest;
pub mod keywrap;
pub mod limits;
pub mod manifest;
mod piece_hash;
pub mod reassemble;
pub mod repair;
pub mod shard_store;
pub mod validate;

pub use cipher::{CipherKind, DataKey};
pub use direct_file::DirectFile;
pub use erasure::ShardView;
pub use error::{Result, StoreError};
pub use ingest::{HashedAsset, ingest_bytes_with_key, ingest_hashed, ingest_with_key, read_asset};
pub use ingest::{IngestOptions, Ingested, ingest, ingest_bytes};
pub use keywrap::{WrappedKey, unwrap, wrap};
pub use manifest::{ChunkEntry, ContentHash, Manifest, ManifestError, ShardEntry};
pub use reassemble::{Reassembler, ShardCheck, reassemble, reassemble_to};
pub use repair::rebuild_shard;
pub use shard_store::ShardStore;
pub use validate::{DataFormat, asset_name};
