//! Ingest: from a contributor's file to a manifest, a fresh data key and `k + m` shards.
//!
//! Ingest is deterministic given the data key and the cipher: chunk boundaries depend only on the
//! bytes, and every chunk's nonce is derived from its index (its associated data from the asset id
//! and the index), so [`ingest_with_key`] with the key (and [`IngestOptions::cipher`]) an earlier
//! ingest of the same file used gives the same manifest and shards, bit for bit. That is how an
//! interrupted upload is resumed: the shard roots already recorded on the ledger still match.
//!
//! The pipeline, over the file held in memory, which it consumes:
//!
//! 1. **Check** the format ([`crate::validate`]).
//! 2. **Chunk** it (FastCDC) on one thread, which is sequential by nature, while the other threads
//!    **hash** it (BLAKE3, the asset id; [`HashedAsset::new`]). A caller that needs the id first (to
//!    look the asset up) does this step itself and passes the result to [`ingest_hashed`].
//! 3. **Encrypt** every chunk where it lies, in parallel ([`crate::cipher`]; the asset id is part of
//!    each chunk's associated data, and the tags go to the manifest). The file's buffer becomes the
//!    ciphertext stream, zero-padded to whole stripes, and the data shards are its columns
//!    ([`ShardView`]): no byte of the asset is copied, and no fresh memory is written but the parity.
//! 4. **Erasure-code** the parity shards stripe by stripe ([`crate::erasure`]), in parallel, and
//!    **root** every shard (BLAKE3): each stripe's pieces are hashed as soon as it is coded, while
//!    in cache, and each shard's root merged from its pieces' values. Then write the manifest.
//!
//! Peak memory is about the file and the parity shards: `asset × (1 + m / k)`.

use std::io::Read;
use std::path::Path;

use rayon::prelude::*;

use crate::chunking::{ChunkSpan, chunk_spans};
use crate::cipher::{ChunkCipher, ChunkTag, CipherKind, DataKey};
use crate::erasure::{self, ShardView};
use crate::error::{Result, StoreError};
use crate::limits::{ASSET_BYTES_MAX, PIECE_ALIGN_BYTES, PIECE_BYTES_MAX, STRIPE_BYTES_MAX};
use crate::manifest::{ChunkEntry, ContentHash, MANIFEST_VERSION, Manifest, ShardEntry};
use crate::validate::{self, DataFormat};

/// How to store an asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestOptions {
    /// `k`: data shards; any `k` shards rebuild the asset.
    pub data_shards: usize,
    /// `m`: parity shards; up to `m` shards may be lost.
    pub parity_shards: usize,
    /// The AEAD to use; `None` picks [`CipherKind::preferred`] for this CPU.
    pub cipher: Option<CipherKind>,
}

impl IngestOptions {
    /// `k` data and `m` parity shards, cipher chosen for this CPU.
    pub fn new(data_shards: usize, parity_shards: usize) -> Self {
        Self {
            data_shards,
            parity_shards,
            cipher: None,
        }
    }
}

impl Default for IngestOptions {
    /// 4 data + 2 parity shards: 1.5× the size, survives the loss of any 2 of 6 providers.
    fn default() -> Self {
        Self::new(4, 2)
    }
}

/// The result of ingesting an asset: hand the shards to storage providers ([`Ingested::shard`]),
/// keep the key secret (wrap it to licensees with [`crate::keywrap::wrap`]), publish the manifest.
pub struct Ingested {
    /// What was stored, and how.
    pub manifest: Manifest,
    /// The asset's data key: fresh, or the one given to [`ingest_with_key`].
    pub key: DataKey,
    /// The ciphertext stream, zero-padded to whole stripes: the data shards are its columns.
    stream: Vec<u8>,
    /// The `m` parity shards.
    parity: Vec<Vec<u8>>,
    /// `k` and the piece size the views are cut by, kept apart from the public manifest (which a
    /// caller may edit) so a view never reaches past its buffer.
    data_shards: usize,
    piece_bytes: usize,
}

impl Ingested {
    /// `k + m`.
    pub fn shard_count(&self) -> usize {
        self.data_shards + self.parity.len()
    }

    /// Bytes in each shard.
    pub fn shard_bytes(&self) -> u64 {
        (self.stream.len() / self.data_shards) as u64
    }

    /// Shard `index` (`0..k` data, `k..k + m` parity), or `None` past the last.
    pub fn shard(&self, index: usize) -> Option<ShardView<'_>> {
        if index < self.data_shards {
            Some(ShardView::column(
                &self.stream,
                self.data_shards,
                self.piece_bytes,
                index,
            ))
        } else {
            self.parity
                .get(index - self.data_shards)
                .map(|shard| ShardView::whole(shard, self.piece_bytes))
        }
    }

    /// Every shard, in index order.
    pub fn shards(&self) -> impl Iterator<Item = ShardView<'_>> + '_ {
        (0..self.shard_count()).filter_map(|index| self.shard(index))
    }

    /// Every shard copied out, in index order (for tests and in-memory transports; a real upload
    /// reads a [`ShardView`] where it lies).
    pub fn shard_vecs(&self) -> Vec<Vec<u8>> {
        self.shards().map(|shard| shard.to_vec()).collect()
    }
}

/// The manifest and the shards' sizes, not their bytes (an asset may be gigabytes); the key is
/// never printed.
impl std::fmt::Debug for Ingested {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Ingested")
            .field("manifest", &self.manifest)
            .field("key", &self.key)
            .field("shard_count", &self.shard_count())
            .field("shard_bytes", &self.shard_bytes())
            .finish()
    }
}

/// Reads, checks and stores the file at `path` (see the module docs) under a fresh data key. The
/// file's name picks the format.
pub fn ingest(path: &Path, options: &IngestOptions) -> Result<Ingested> {
    ingest_with_key(path, options, DataKey::generate()?)
}

/// [`ingest`] under a given data key: the key an earlier ingest of the same file returned, to get
/// the same shards again (pass that ingest's cipher in `options` too; see the module docs).
///
/// Never pass another asset's key: the nonces are chunk indexes, so two different files under one
/// key would reuse (key, nonce) pairs on different plaintexts. The same file again only repeats
/// the same ciphertext.
pub fn ingest_with_key(path: &Path, options: &IngestOptions, key: DataKey) -> Result<Ingested> {
    let bytes = read_asset(path)?;
    ingest_hashed(
        &validate::asset_name(path),
        HashedAsset::new(bytes),
        options,
        key,
    )
}

/// Reads the file at `path` for [`HashedAsset::new`] and [`ingest_hashed`], after checking that its
/// name is a known format and that it is within [`ASSET_BYTES_MAX`] (before reading anything). The
/// buffer has room for the padding ingest adds, so sealing it where it lies never moves it. A
/// directory is read as a folder's bundle ([`crate::folder::bundle`]); ingest it under
/// [`validate::asset_name`].
pub fn read_asset(path: &Path) -> Result<Vec<u8>> {
    if path.is_dir() {
        return crate::folder::bundle(path, PADDING_BYTES_MAX);
    }
    let name = path.display().to_string();
    DataFormat::from_name(&name)?;
    let bytes_on_disk = std::fs::metadata(path)
        .map_err(|error| StoreError::io(path, error))?
        .len();
    check_size(&name, bytes_on_disk)?;
    read_in_parallel(path, bytes_on_disk).map_err(|error| StoreError::io(path, error))
}

/// Reads a file of `length` bytes into memory, a part per core at once (on this project's
/// virtual machines, faulting in the fresh pages a read fills cost more than the copy, and
/// both parallelise), checking that its length did not change.
#[cfg(unix)]
fn read_in_parallel(path: &Path, length: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let length = usize::try_from(length).map_err(std::io::Error::other)?;
    let mut file = std::fs::File::open(path)?;
    let parts = rayon::current_num_threads().clamp(1, 8);
    if length < READ_PART_BYTES_MIN * 2 || parts < 2 {
        let mut bytes = Vec::with_capacity(length.saturating_add(PADDING_BYTES_MAX));
        file.read_to_end(&mut bytes)?;
        return Ok(bytes);
    }
    // Zeroed lazily; the tail past `length` stays untouched until padding needs it.
    let mut bytes = vec![0u8; length.saturating_add(PADDING_BYTES_MAX)];
    bytes.truncate(length);
    let part_bytes = length.div_ceil(parts);
    std::thread::scope(|scope| {
        let readers: Vec<_> = bytes
            .chunks_mut(part_bytes)
            .enumerate()
            .map(|(index, part)| {
                let file = &file;
                scope.spawn(move || file.read_exact_at(part, (index * part_bytes) as u64))
            })
            .collect();
        readers.into_iter().try_for_each(|reader| {
            reader
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("a reading thread panicked")))
        })
    })?;
    // Nothing may follow: the file must not have grown since its size was read.
    if file.read_at(&mut [0u8; 1], length as u64)? != 0 {
        return Err(std::io::Error::other("the file grew while it was read"));
    }
    Ok(bytes)
}

/// [`read_in_parallel`] where positioned reads are not at hand: one read front to back.
#[cfg(not(unix))]
fn read_in_parallel(path: &Path, length: u64) -> std::io::Result<Vec<u8>> {
    let length = usize::try_from(length).map_err(std::io::Error::other)?;
    let mut bytes = Vec::with_capacity(length.saturating_add(PADDING_BYTES_MAX));
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Below this many bytes per part a file is read by one thread.
#[cfg(unix)]
const READ_PART_BYTES_MIN: usize = 16 << 20;

/// Most bytes of padding ingest adds to the ciphertext stream (less than one stripe).
const PADDING_BYTES_MAX: usize = STRIPE_BYTES_MAX as usize;

/// Checks and stores a copy of `bytes`, the contents of a file called `name` (whose extension
/// picks the format), under a fresh data key.
pub fn ingest_bytes(name: &str, bytes: &[u8], options: &IngestOptions) -> Result<Ingested> {
    ingest_bytes_with_key(name, bytes, options, DataKey::generate()?)
}

/// [`ingest_bytes`] under a given data key (see [`ingest_with_key`] for when, and what never to
/// pass).
pub fn ingest_bytes_with_key(
    name: &str,
    bytes: &[u8],
    options: &IngestOptions,
    key: DataKey,
) -> Result<Ingested> {
    let mut owned = Vec::with_capacity(bytes.len().saturating_add(PADDING_BYTES_MAX));
    owned.extend_from_slice(bytes);
    ingest_hashed(name, HashedAsset::new(owned), options, key)
}

/// An asset's bytes with their BLAKE3 root (the asset id) and their content-defined chunks, found
/// at once. A caller that needs the id before ingesting (to look the asset up, or to find the key
/// an earlier run saved) hands this to [`ingest_hashed`], which then does not hash or chunk the
/// bytes again; the id and chunks cannot disagree with the bytes, as only [`HashedAsset::new`]
/// makes one.
pub struct HashedAsset {
    bytes: Vec<u8>,
    id: ContentHash,
    spans: Vec<ChunkSpan>,
}

impl HashedAsset {
    /// Chunks `bytes` on one thread (FastCDC is sequential) while the others hash them. Give the
    /// buffer [`read_asset`] returns: it has room for ingest's padding.
    pub fn new(bytes: Vec<u8>) -> Self {
        let (spans, id) = rayon::join(|| chunk_spans(&bytes), || ContentHash::of_large(&bytes));
        Self { bytes, id, spans }
    }

    /// The bytes' BLAKE3 root: the asset id.
    pub fn id(&self) -> ContentHash {
        self.id
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The length and id, not the bytes (an asset may be gigabytes).
impl std::fmt::Debug for HashedAsset {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("HashedAsset")
            .field("len", &self.bytes.len())
            .field("id", &self.id)
            .finish()
    }
}

/// Checks and stores an asset already hashed, a file called `name`, under `key`; its buffer
/// becomes the ciphertext stream (see the module docs).
pub fn ingest_hashed(
    name: &str,
    asset: HashedAsset,
    options: &IngestOptions,
    key: DataKey,
) -> Result<Ingested> {
    erasure::check_geometry(
        options.data_shards,
        options.parity_shards,
        (options.data_shards as u64) * PIECE_ALIGN_BYTES,
    )?;
    check_size(name, asset.bytes.len() as u64)?;
    let format = validate::check(name, &asset.bytes)?;
    let cipher = options.cipher.unwrap_or_else(CipherKind::preferred);
    seal(asset, format, cipher, key, options)
}

fn check_size(name: &str, bytes: u64) -> Result<()> {
    if bytes > ASSET_BYTES_MAX {
        return Err(StoreError::AssetTooLarge {
            name: name.to_string(),
            bytes,
            max: ASSET_BYTES_MAX,
        });
    }
    Ok(())
}

/// The piece size ingest uses for a stream of `stream_bytes` and `k` data shards: the stream split in
/// `k`, rounded up to [`PIECE_ALIGN_BYTES`], capped at [`PIECE_BYTES_MAX`].
pub fn piece_bytes_for(stream_bytes: u64, data_shards: usize) -> u64 {
    let share = stream_bytes.div_ceil(data_shards.max(1) as u64);
    share
        .div_ceil(PIECE_ALIGN_BYTES)
        .saturating_mul(PIECE_ALIGN_BYTES)
        .clamp(PIECE_ALIGN_BYTES, PIECE_BYTES_MAX)
}

/// Steps 3–5 of the pipeline.
fn seal(
    asset: HashedAsset,
    format: DataFormat,
    cipher: CipherKind,
    key: DataKey,
    options: &IngestOptions,
) -> Result<Ingested> {
    let HashedAsset {
        bytes: mut stream,
        id: asset_id,
        spans,
    } = asset;
    let data_shards = options.data_shards;
    let byte_size = stream.len() as u64;
    let piece_bytes = piece_bytes_for(byte_size, data_shards);
    let stripe_bytes = piece_bytes * data_shards as u64;
    let tags = encrypt_chunks_in_place(&mut stream, &spans, cipher, &key, asset_id)?;
    let chunks = spans
        .iter()
        .zip(tags)
        .map(|(span, tag)| ChunkEntry {
            plaintext_offset: span.offset as u64,
            plaintext_len: span.len as u64,
            tag,
        })
        .collect();
    // Whole stripes, the padding zeroed (within the buffer's spare room when read by read_asset).
    let stripes = byte_size.div_ceil(stripe_bytes);
    stream.resize((stripes * stripe_bytes) as usize, 0);
    let (parity, roots) = erasure::encode_parity_and_roots(
        &stream,
        data_shards,
        options.parity_shards,
        piece_bytes as usize,
    )?;
    let shard_bytes = stripes * piece_bytes;
    let ingested = Ingested {
        manifest: Manifest {
            version: MANIFEST_VERSION,
            format,
            asset_id,
            byte_size,
            cipher,
            chunks,
            data_shards: data_shards as u32,
            parity_shards: options.parity_shards as u32,
            stripe_bytes,
            shards: roots
                .into_iter()
                .enumerate()
                .map(|(index, root)| ShardEntry {
                    index: index as u32,
                    byte_size: shard_bytes,
                    root,
                })
                .collect(),
        },
        key,
        stream,
        parity,
        data_shards,
        piece_bytes: piece_bytes as usize,
    };
    // What we write, we could read: a failure here is a bug, reported rather than stored.
    ingested.manifest.validate()?;
    Ok(ingested)
}

/// Seals every chunk of `bytes` where it lies, in parallel. `spans` must cover `bytes` from its
/// start, in order. Returns the tags.
pub fn encrypt_chunks_in_place(
    bytes: &mut [u8],
    spans: &[ChunkSpan],
    cipher: CipherKind,
    key: &DataKey,
    asset_id: ContentHash,
) -> Result<Vec<ChunkTag>> {
    let chunk_cipher = ChunkCipher::new(cipher, key, asset_id)?;
    let mut targets: Vec<&mut [u8]> = Vec::with_capacity(spans.len());
    let mut rest = bytes;
    let mut offset = 0;
    for (index, span) in spans.iter().enumerate() {
        if span.offset != offset || span.len > rest.len() {
            return Err(StoreError::Encrypt {
                chunk: index as u64,
            });
        }
        let (target, tail) = std::mem::take(&mut rest).split_at_mut(span.len);
        targets.push(target);
        rest = tail;
        offset += span.len;
    }
    targets
        .into_par_iter()
        .enumerate()
        .map(|(index, target)| chunk_cipher.seal_in_place(index as u64, target))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Enough CSV for several chunks and stripes.
    fn csv_bytes() -> Vec<u8> {
        let mut text = String::from("id,value,label\n");
        for row in 0..240_000u64 {
            text.push_str(&format!(
                "{row},{},{}\n",
                row.wrapping_mul(2_654_435_761) % 1_000_003,
                row % 7
            ));
        }
        text.into_bytes()
    }

    #[test]
    fn the_same_key_gives_the_same_manifest_and_shards() {
        let bytes = csv_bytes();
        for cipher in [CipherKind::Aes256Gcm, CipherKind::XChaCha20Poly1305] {
            let options = IngestOptions {
                cipher: Some(cipher),
                ..IngestOptions::new(4, 2)
            };
            let first = ingest_bytes("table.csv", &bytes, &options).unwrap();
            assert!(first.manifest.chunks.len() > 1, "{cipher:?}");
            let again = ingest_bytes_with_key(
                "table.csv",
                &bytes,
                &options,
                DataKey::from_bytes(*first.key.as_bytes()),
            )
            .unwrap();
            assert_eq!(again.manifest, first.manifest, "{cipher:?}");
            assert_eq!(
                again.manifest.to_json().unwrap(),
                first.manifest.to_json().unwrap()
            );
            assert_eq!(again.shard_vecs(), first.shard_vecs(), "{cipher:?}");
            assert_eq!(again.key.as_bytes(), first.key.as_bytes());

            // From a file too.
            let directory = tempfile::tempdir().unwrap();
            let path = directory.path().join("table.csv");
            std::fs::write(&path, &bytes).unwrap();
            let from_file =
                ingest_with_key(&path, &options, DataKey::from_bytes(*first.key.as_bytes()))
                    .unwrap();
            assert_eq!(from_file.manifest, first.manifest);
            assert_eq!(from_file.shard_vecs(), first.shard_vecs());

            // A fresh key gives other shards (the roots a ledger records would not match).
            let fresh = ingest_bytes("table.csv", &bytes, &options).unwrap();
            assert_eq!(fresh.manifest.asset_id, first.manifest.asset_id);
            assert_ne!(fresh.shard_vecs(), first.shard_vecs());
        }
    }

    #[test]
    fn the_shards_are_the_chunks_sealed_where_they_lie_then_erasure_coded() {
        let bytes = csv_bytes();
        for (k, m) in [(4, 2), (3, 1), (10, 4)] {
            let ingested = ingest_bytes("table.csv", &bytes, &IngestOptions::new(k, m)).unwrap();
            let manifest = &ingested.manifest;
            assert!(manifest.chunks.len() > 1 && manifest.stripe_count() > 1);
            // The same chunks, sealed where they lie by the stage measured alone.
            let spans = crate::chunking::chunk_spans(&bytes);
            let mut stream = bytes.clone();
            let tags = encrypt_chunks_in_place(
                &mut stream,
                &spans,
                manifest.cipher,
                &ingested.key,
                manifest.asset_id,
            )
            .unwrap();
            let recorded: Vec<ChunkTag> = manifest.chunks.iter().map(|chunk| chunk.tag).collect();
            assert_eq!(tags, recorded);
            let expected = erasure::encode(&stream, k, m, manifest.stripe_bytes).unwrap();
            assert_eq!(ingested.shard_vecs(), expected, "k = {k}, m = {m}");
            assert_eq!(ingested.shard_bytes(), expected[0].len() as u64);
            // The views keep ingest's layout whatever a caller does to the public manifest.
            let mut edited = ingested;
            edited.manifest.stripe_bytes *= 64;
            edited.manifest.data_shards = 1;
            edited.manifest.shards.clear();
            assert_eq!(edited.shard_count(), k + m);
            assert_eq!(edited.shard_vecs(), expected);
            assert!(edited.shard(k + m).is_none());
        }
        // Spans that do not cover the bytes from the start are refused.
        let spans = crate::chunking::chunk_spans(&bytes);
        let key = DataKey::generate().unwrap();
        let id = ContentHash::of(&bytes);
        let mut copy = bytes.clone();
        let cipher = CipherKind::preferred();
        assert!(encrypt_chunks_in_place(&mut copy, &spans[1..], cipher, &key, id).is_err());
        assert!(encrypt_chunks_in_place(&mut copy[..10], &spans, cipher, &key, id).is_err());
    }

    #[test]
    fn the_cipher_follows_the_options() {
        let bytes = csv_bytes();
        for cipher in [CipherKind::Aes256Gcm, CipherKind::XChaCha20Poly1305] {
            let options = IngestOptions {
                cipher: Some(cipher),
                ..IngestOptions::new(2, 1)
            };
            let ingested = ingest_bytes("table.csv", &bytes, &options).unwrap();
            assert_eq!(ingested.manifest.cipher, cipher);
        }
        let preferred = ingest_bytes("table.csv", &bytes, &IngestOptions::new(2, 1)).unwrap();
        assert_eq!(preferred.manifest.cipher, CipherKind::preferred());
    }

    #[cfg(unix)]
    #[test]
    fn a_large_file_is_read_in_parts_and_a_changed_length_is_an_error() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("large.csv");
        let bytes: Vec<u8> = (0..(READ_PART_BYTES_MIN * 2 + 12_345))
            .map(|index| (index * 131 % 253) as u8)
            .collect();
        std::fs::write(&path, &bytes).unwrap();
        let length = bytes.len() as u64;
        assert!(read_in_parallel(&path, length).unwrap() == bytes);
        // The size was read before the file grew, or shrank.
        assert!(read_in_parallel(&path, length - 1).is_err());
        assert!(read_in_parallel(&path, length + 1).is_err());
    }
}
