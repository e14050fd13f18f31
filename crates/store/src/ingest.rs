//! Ingest: from a contributor's file to a manifest, a fresh data key and `k + m` shards.
//!
//! Ingest is deterministic given the data key and the cipher: chunk boundaries depend only on the
//! bytes, and every chunk's nonce is derived from its index (its associated data from the asset id
//! and the index), so [`ingest_with_key`] with the key (and [`IngestOptions::cipher`]) an earlier
//! ingest of the same file used gives the same manifest and shards, bit for bit. That is how an
//! interrupted upload is resumed: the shard roots already recorded on the ledger still match.
//!
//! The pipeline, over the file held in memory:
//!
//! 1. **Check** the format ([`crate::validate`]).
//! 2. **Hash** the plaintext (BLAKE3, the asset id) on all cores. The asset id is part of every chunk's
//!    associated data, so hashing finishes before encryption starts. A caller that needed the id first
//!    hashes once, with [`HashedBytes`], and passes that to [`ingest_hashed`].
//! 3. **Chunk** it (FastCDC) on one thread, which is sequential by nature, while the other threads
//!    **encrypt** each chunk as soon as it is cut ([`crate::cipher`]) and scatter its ciphertext straight
//!    into its place in the data shards (data shards are columns of the ciphertext stream, so no stream
//!    is ever built).
//! 4. **Erasure-code** the parity shards stripe by stripe ([`crate::erasure`]), in parallel.
//! 5. **Root** every shard (BLAKE3), in parallel, and write the manifest.
//!
//! Peak memory is about the file and the shards: `asset × (1 + (k + m) / k)`.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::chunking::{ChunkSpan, chunk_spans_iter};
use crate::cipher::{ChunkCipher, CipherKind, DataKey};
use crate::erasure;
use crate::error::{Result, StoreError};
use crate::limits::{
    ASSET_BYTES_MAX, CHUNK_BYTES_MIN, PIECE_ALIGN_BYTES, PIECE_BYTES_MAX, TAG_BYTES,
};
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

/// The result of ingesting an asset: hand the shards to storage providers, keep the key secret (wrap it
/// to licensees with [`crate::keywrap::wrap`]), publish the manifest.
#[derive(Debug)]
pub struct Ingested {
    /// What was stored, and how.
    pub manifest: Manifest,
    /// The asset's data key: fresh, or the one given to [`ingest_with_key`].
    pub key: DataKey,
    /// The `k + m` shards, in index order.
    pub shards: Vec<Vec<u8>>,
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
    ingest_bytes_with_key(&path.display().to_string(), &bytes, options, key)
}

/// Reads the file at `path` for [`ingest_bytes`], after checking that its name is a known format
/// and that it is within [`ASSET_BYTES_MAX`] (before reading anything).
pub fn read_asset(path: &Path) -> Result<Vec<u8>> {
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
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    let length = usize::try_from(length).map_err(std::io::Error::other)?;
    let mut file = std::fs::File::open(path)?;
    let parts = rayon::current_num_threads().clamp(1, 8);
    if length < READ_PART_BYTES_MIN * 2 || parts < 2 {
        let mut bytes = Vec::with_capacity(length);
        file.read_to_end(&mut bytes)?;
        return Ok(bytes);
    }
    let mut bytes = vec![0u8; length];
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
fn read_in_parallel(path: &Path, _length: u64) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
}

/// Below this many bytes per part a file is read by one thread.
#[cfg(unix)]
const READ_PART_BYTES_MIN: usize = 16 << 20;

/// Checks and stores `bytes`, the contents of a file called `name` (whose extension picks the
/// format), under a fresh data key.
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
    ingest_hashed(name, &HashedBytes::new(bytes), options, key)
}

/// An asset's bytes with their BLAKE3 root (the asset id), hashed once. A caller that needs the id
/// before ingesting (to look the asset up, or to find the key an earlier run saved) hands this to
/// [`ingest_hashed`], which then does not hash the bytes again; the id cannot disagree with the
/// bytes, as only [`HashedBytes::new`] makes one.
#[derive(Clone, Copy)]
pub struct HashedBytes<'a> {
    bytes: &'a [u8],
    id: ContentHash,
}

impl<'a> HashedBytes<'a> {
    /// Hashes `bytes` on every core.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            id: ContentHash::of_large(bytes),
        }
    }

    /// The bytes' BLAKE3 root: the asset id.
    pub fn id(&self) -> ContentHash {
        self.id
    }
}

/// The length and id, not the bytes (an asset may be gigabytes).
impl std::fmt::Debug for HashedBytes<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("HashedBytes")
            .field("len", &self.bytes.len())
            .field("id", &self.id)
            .finish()
    }
}

/// [`ingest_bytes_with_key`] of bytes already hashed.
pub fn ingest_hashed(
    name: &str,
    asset: &HashedBytes<'_>,
    options: &IngestOptions,
    key: DataKey,
) -> Result<Ingested> {
    let bytes = asset.bytes;
    erasure::check_geometry(
        options.data_shards,
        options.parity_shards,
        (options.data_shards as u64) * PIECE_ALIGN_BYTES,
    )?;
    check_size(name, bytes.len() as u64)?;
    let format = validate::check(name, bytes)?;
    let cipher = options.cipher.unwrap_or_else(CipherKind::preferred);
    let (manifest, shards) = seal(bytes, asset.id, format, cipher, &key, options)?;
    Ok(Ingested {
        manifest,
        key,
        shards,
    })
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

/// The piece size ingest uses for a stream of `ciphertext_bytes` and `k` data shards: the stream split in
/// `k`, rounded up to [`PIECE_ALIGN_BYTES`], capped at [`PIECE_BYTES_MAX`].
pub fn piece_bytes_for(ciphertext_bytes: u64, data_shards: usize) -> u64 {
    let share = ciphertext_bytes.div_ceil(data_shards.max(1) as u64);
    share
        .div_ceil(PIECE_ALIGN_BYTES)
        .saturating_mul(PIECE_ALIGN_BYTES)
        .clamp(PIECE_ALIGN_BYTES, PIECE_BYTES_MAX)
}

/// Steps 2–5 of the pipeline.
fn seal(
    bytes: &[u8],
    asset_id: ContentHash,
    format: DataFormat,
    cipher: CipherKind,
    key: &DataKey,
    options: &IngestOptions,
) -> Result<(Manifest, Vec<Vec<u8>>)> {
    let data_shards = options.data_shards;
    // The stripe geometry is fixed before chunking, from an upper bound on the ciphertext's length (every
    // chunk but the last is at least CHUNK_BYTES_MIN); the shards are trimmed to the real length after.
    let chunks_bound = bytes.len() as u64 / u64::from(CHUNK_BYTES_MIN) + 1;
    let ciphertext_bound = bytes.len() as u64 + chunks_bound * u64::from(TAG_BYTES);
    let piece_bytes = piece_bytes_for(ciphertext_bound, data_shards);
    let stripe_bytes = piece_bytes * data_shards as u64;
    let stripes_bound = ciphertext_bound.div_ceil(stripe_bytes);
    let shard_bytes_bound = (stripes_bound * piece_bytes) as usize;
    let mut data: Vec<Vec<u8>> = (0..data_shards)
        .map(|_| vec![0u8; shard_bytes_bound])
        .collect();

    let spans = chunk_and_encrypt(
        bytes,
        cipher,
        key,
        asset_id,
        &mut data,
        piece_bytes as usize,
    )?;

    let ciphertext_bytes: u64 = spans
        .iter()
        .map(|span| span.len as u64 + u64::from(TAG_BYTES))
        .sum();
    let shard_bytes = (ciphertext_bytes.div_ceil(stripe_bytes) * piece_bytes) as usize;
    for shard in &mut data {
        shard.truncate(shard_bytes);
    }
    let parity = erasure::encode_parity(&data, options.parity_shards, piece_bytes as usize)?;
    let mut shards = data;
    shards.extend(parity);
    let roots: Vec<ContentHash> = shards
        .par_iter()
        .map(|shard| ContentHash::of(shard))
        .collect();
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        format,
        asset_id,
        byte_size: bytes.len() as u64,
        cipher,
        chunks: spans
            .iter()
            .map(|span| ChunkEntry {
                plaintext_offset: span.offset as u64,
                plaintext_len: span.len as u64,
                ciphertext_len: span.len as u64 + u64::from(TAG_BYTES),
            })
            .collect(),
        data_shards: data_shards as u32,
        parity_shards: options.parity_shards as u32,
        stripe_bytes,
        shards: shards
            .iter()
            .zip(roots)
            .enumerate()
            .map(|(index, (shard, root))| ShardEntry {
                index: index as u32,
                byte_size: shard.len() as u64,
                root,
            })
            .collect(),
    };
    // What we write, we could read: a failure here is a bug, reported rather than stored.
    manifest.validate()?;
    Ok((manifest, shards))
}

/// Chunks `bytes` on this thread while other workers seal each chunk as soon as it is cut, straight into
/// its place in the data shards (the ciphertext stream cut into pieces of `piece_bytes`, `k` per
/// stripe). Returns the chunks.
fn chunk_and_encrypt(
    bytes: &[u8],
    cipher: CipherKind,
    key: &DataKey,
    asset_id: ContentHash,
    data: &mut [Vec<u8>],
    piece_bytes: usize,
) -> Result<Vec<ChunkSpan>> {
    let chunk_cipher = ChunkCipher::new(cipher, key, asset_id)?;
    let chunk_cipher = &chunk_cipher;
    // The data shards' pieces in stream order: stripe by stripe, shard by shard.
    let mut columns: Vec<_> = data
        .iter_mut()
        .map(|shard| shard.chunks_exact_mut(piece_bytes))
        .collect();
    let mut pieces: Vec<&mut [u8]> = Vec::new();
    'stripes: loop {
        for column in &mut columns {
            match column.next() {
                Some(piece) => pieces.push(piece),
                None => break 'stripes,
            }
        }
    }
    let mut cursor = StreamCursor {
        pieces: pieces.into_iter(),
        current: &mut [],
    };
    let failure: Mutex<Option<StoreError>> = Mutex::new(None);
    let failure = &failure;
    let mut spans = Vec::new();
    rayon::scope(|scope| {
        for (index, span) in chunk_spans_iter(bytes).enumerate() {
            let Some(targets) = cursor.take(span.len + TAG_BYTES as usize) else {
                record(
                    failure,
                    StoreError::Encrypt {
                        chunk: index as u64,
                    },
                );
                return;
            };
            spans.push(span);
            let plaintext = &bytes[span.offset..span.offset + span.len];
            scope.spawn(move |_| {
                if let Err(error) = seal_scattered(chunk_cipher, index as u64, plaintext, targets) {
                    record(failure, error);
                }
            });
        }
    });
    if let Some(error) = failure.lock().ok().and_then(|mut slot| slot.take()) {
        return Err(error);
    }
    Ok(spans)
}

fn record(failure: &Mutex<Option<StoreError>>, error: StoreError) {
    if let Ok(mut slot) = failure.lock() {
        slot.get_or_insert(error);
    }
}

thread_local! {
    /// Per-thread buffer a chunk is sealed into before it is scattered over shard pieces.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn seal_scattered(
    cipher: &ChunkCipher,
    index: u64,
    plaintext: &[u8],
    targets: Vec<&mut [u8]>,
) -> Result<()> {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        scratch.resize(plaintext.len() + TAG_BYTES as usize, 0);
        cipher.seal(index, plaintext, &mut scratch)?;
        let mut from = 0;
        for target in targets {
            target.copy_from_slice(&scratch[from..from + target.len()]);
            from += target.len();
        }
        Ok(())
    })
}

/// Hands out consecutive, disjoint ranges of the stream as lists of piece segments.
struct StreamCursor<'a> {
    pieces: std::vec::IntoIter<&'a mut [u8]>,
    current: &'a mut [u8],
}

impl<'a> StreamCursor<'a> {
    /// The next `len` bytes of the stream, or `None` past its end.
    fn take(&mut self, mut len: usize) -> Option<Vec<&'a mut [u8]>> {
        let mut segments = Vec::new();
        while len > 0 {
            if self.current.is_empty() {
                self.current = self.pieces.next()?;
            }
            let take = len.min(self.current.len());
            let (head, tail) = std::mem::take(&mut self.current).split_at_mut(take);
            segments.push(head);
            self.current = tail;
            len -= take;
        }
        Some(segments)
    }
}

/// Seals every chunk in parallel into one contiguous ciphertext stream (for measuring the encryption
/// stage alone; ingest seals straight into the shards).
pub fn encrypt_chunks(
    bytes: &[u8],
    spans: &[ChunkSpan],
    cipher: CipherKind,
    key: &DataKey,
    asset_id: ContentHash,
) -> Result<Vec<u8>> {
    let chunk_cipher = ChunkCipher::new(cipher, key, asset_id)?;
    let total: usize = spans.iter().map(|span| span.len + TAG_BYTES as usize).sum();
    let mut stream = vec![0u8; total];
    let mut targets: Vec<(usize, &ChunkSpan, &mut [u8])> = Vec::with_capacity(spans.len());
    let mut rest = stream.as_mut_slice();
    for (index, span) in spans.iter().enumerate() {
        let (target, tail) = rest.split_at_mut(span.len + TAG_BYTES as usize);
        targets.push((index, span, target));
        rest = tail;
    }
    targets
        .into_par_iter()
        .try_for_each(|(index, span, target)| {
            chunk_cipher.seal(
                index as u64,
                &bytes[span.offset..span.offset + span.len],
                target,
            )
        })?;
    Ok(stream)
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
            assert_eq!(again.shards, first.shards, "{cipher:?}");
            assert_eq!(again.key.as_bytes(), first.key.as_bytes());

            // From a file too.
            let directory = tempfile::tempdir().unwrap();
            let path = directory.path().join("table.csv");
            std::fs::write(&path, &bytes).unwrap();
            let from_file =
                ingest_with_key(&path, &options, DataKey::from_bytes(*first.key.as_bytes()))
                    .unwrap();
            assert_eq!(from_file.manifest, first.manifest);
            assert_eq!(from_file.shards, first.shards);

            // A fresh key gives other shards (the roots a ledger records would not match).
            let fresh = ingest_bytes("table.csv", &bytes, &options).unwrap();
            assert_eq!(fresh.manifest.asset_id, first.manifest.asset_id);
            assert_ne!(fresh.shards, first.shards);
        }
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
