//! Reassembly: from any `k` shards, the manifest and the data key back to the original file.
//!
//! Every supplied shard is checked against its manifest root first ([`crate::erasure::verify_shards`]:
//! a corrupt one is named by index, so the caller can fetch it elsewhere and retry), unless the caller's
//! transport verified them as they arrived ([`ShardCheck`]). Missing data shards are rebuilt
//! ([`crate::erasure::data_shards`]), every chunk is gathered from the data shards and opened in
//! parallel (its tag authenticates it, its index and the asset id), and the output's BLAKE3 hash must
//! equal the manifest's asset id.

use std::borrow::Cow;
use std::io::Write;

use rayon::prelude::*;

use crate::cipher::{ChunkCipher, DataKey};
use crate::erasure;
use crate::error::{Result, StoreError};
use crate::limits::TAG_BYTES;
use crate::manifest::{ContentHash, Manifest};

/// How many bytes [`reassemble_to`] hands its writer at a time.
const WRITE_PIECE_BYTES: usize = 1 << 20;
/// About how many plaintext bytes [`reassemble_to`] decrypts per batch (whole chunks, so a batch
/// may be up to one chunk larger).
const WRITE_BATCH_BYTES: usize = 32 << 20;

/// Whether reassembly hashes the shards it is given against their manifest roots first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardCheck {
    /// Hash every shard first; corrupt ones are named ([`StoreError::CorruptShards`]), so the
    /// caller can fetch them elsewhere.
    Hash,
    /// The caller's transport verified every shard against its manifest root as it arrived
    /// (iroh-blobs' verified streaming), so hashing them again would only repeat that work. A
    /// corrupt shard passed anyway still fails its chunks' tags or the asset hash.
    VerifiedByCaller,
}

/// The data shards of `shards`, checked as `check` says.
fn checked_data_shards<'a>(
    manifest: &Manifest,
    shards: &'a [Option<Vec<u8>>],
    check: ShardCheck,
) -> Result<Vec<Cow<'a, [u8]>>> {
    match check {
        ShardCheck::Hash => erasure::data_shards(manifest, shards),
        ShardCheck::VerifiedByCaller => erasure::data_shards_verified_by_caller(manifest, shards),
    }
}

/// Opens chunks `chunks` (indexes into the manifest) into `output`, which holds exactly their
/// plaintext, in parallel; the first chunk's ciphertext starts at `ciphertext_offset` in the
/// stream. Every chunk's tag is checked.
fn open_range(
    manifest: &Manifest,
    cipher: &ChunkCipher,
    data: &[Cow<'_, [u8]>],
    chunks: std::ops::Range<usize>,
    mut ciphertext_offset: usize,
    output: &mut [u8],
) -> Result<()> {
    let piece_bytes = manifest.piece_bytes() as usize;
    let mut targets: Vec<(usize, usize, &mut [u8])> = Vec::with_capacity(chunks.len());
    let mut rest = output;
    for index in chunks {
        // The manifest was validated: lengths add up to `byte_size` and fit in the shards.
        let entry = &manifest.chunks[index];
        let (target, tail) = rest.split_at_mut(entry.plaintext_len as usize);
        targets.push((index, ciphertext_offset, target));
        rest = tail;
        ciphertext_offset += entry.ciphertext_len as usize;
    }
    targets
        .into_par_iter()
        .try_for_each_init(Vec::new, |scratch, (index, offset, target)| {
            scratch.resize(target.len() + TAG_BYTES as usize, 0);
            erasure::read_stream(data, piece_bytes, offset, scratch);
            cipher.open(index as u64, scratch, target)
        })
}

/// Checks `output`'s BLAKE3 hash (on every core) against the manifest's asset id.
fn check_asset_hash(manifest: &Manifest, output: &[u8]) -> Result<()> {
    let actual = ContentHash::of_large(output);
    if actual != manifest.asset_id {
        return Err(StoreError::AssetHashMismatch {
            expected: manifest.asset_id.to_hex(),
            actual: actual.to_hex(),
        });
    }
    Ok(())
}

/// Rebuilds the asset from `shards` (`k + m` slots, `None` for a missing shard; at least `k` present).
pub fn reassemble(
    manifest: &Manifest,
    key: &DataKey,
    shards: &[Option<Vec<u8>>],
) -> Result<Vec<u8>> {
    let data = checked_data_shards(manifest, shards, ShardCheck::Hash)?;
    let cipher = ChunkCipher::new(manifest.cipher, key, manifest.asset_id)?;
    let mut output = vec![0u8; manifest.byte_size as usize];
    open_range(
        manifest,
        &cipher,
        &data,
        0..manifest.chunks.len(),
        0,
        &mut output,
    )?;
    check_asset_hash(manifest, &output)?;
    Ok(output)
}

/// [`reassemble`], writing the asset to `writer` as it is decrypted, in batches of about
/// [`WRITE_BATCH_BYTES`]: while one batch is written and hashed, the next is decrypted, and
/// only two batches are ever in memory. `check` says whether the shards are hashed first.
/// `name` names the destination in errors.
///
/// The asset hash is known only at the end: on an error, what was written is not the asset, so
/// write to a temporary file and keep it only on success.
pub fn reassemble_to(
    manifest: &Manifest,
    key: &DataKey,
    shards: &[Option<Vec<u8>>],
    check: ShardCheck,
    name: &str,
    writer: impl Write + Send,
) -> Result<()> {
    reassemble_in_batches(
        manifest,
        key,
        shards,
        check,
        name,
        writer,
        WRITE_BATCH_BYTES,
    )
}

/// [`reassemble_to`] with batches of about `batch_bytes`.
fn reassemble_in_batches(
    manifest: &Manifest,
    key: &DataKey,
    shards: &[Option<Vec<u8>>],
    check: ShardCheck,
    name: &str,
    mut writer: impl Write + Send,
    batch_bytes: usize,
) -> Result<()> {
    let data = checked_data_shards(manifest, shards, check)?;
    let cipher = ChunkCipher::new(manifest.cipher, key, manifest.asset_id)?;
    // Batches of whole chunks: (chunk range, ciphertext offset, plaintext bytes).
    let mut batches = Vec::new();
    let (mut first, mut offset, mut plaintext, mut ciphertext) = (0usize, 0usize, 0usize, 0usize);
    for (index, entry) in manifest.chunks.iter().enumerate() {
        plaintext += entry.plaintext_len as usize;
        ciphertext += entry.ciphertext_len as usize;
        if plaintext >= batch_bytes || index + 1 == manifest.chunks.len() {
            batches.push((first..index + 1, offset, plaintext));
            first = index + 1;
            offset += ciphertext;
            plaintext = 0;
            ciphertext = 0;
        }
    }
    let mut hasher = blake3::Hasher::new();
    let write_error = |error| StoreError::io(name, error);
    let (mut ready, mut spare) = (Vec::new(), Vec::new());
    let mut have_ready = false;
    for (chunks, offset, plaintext) in batches {
        spare.resize(plaintext, 0);
        // Decrypt this batch while the previous one is written and hashed.
        let (opened, written) = rayon::join(
            || open_range(manifest, &cipher, &data, chunks, offset, &mut spare),
            || -> std::io::Result<()> {
                if have_ready {
                    write_pieces(&mut writer, &ready)?;
                    hasher.update_rayon(&ready);
                }
                Ok(())
            },
        );
        opened?;
        written.map_err(write_error)?;
        std::mem::swap(&mut ready, &mut spare);
        have_ready = true;
    }
    if have_ready {
        write_pieces(&mut writer, &ready).map_err(write_error)?;
        hasher.update_rayon(&ready);
    }
    writer.flush().map_err(write_error)?;
    let actual = ContentHash(*hasher.finalize().as_bytes());
    if actual != manifest.asset_id {
        return Err(StoreError::AssetHashMismatch {
            expected: manifest.asset_id.to_hex(),
            actual: actual.to_hex(),
        });
    }
    Ok(())
}

/// Writes `bytes` a piece at a time: one huge write makes the kernel copy it all in one go,
/// which was slower here than the same bytes a mebibyte at a time.
fn write_pieces(writer: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    bytes
        .chunks(WRITE_PIECE_BYTES)
        .try_for_each(|piece| writer.write_all(piece))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IngestOptions, ingest_bytes};

    #[test]
    fn batches_of_any_size_write_the_asset() {
        // Several chunks (FastCDC cuts at 256 KiB to 4 MiB), so batches of one chunk, a few
        // chunks and all of them are all exercised.
        let mut bytes = b"PAR1".to_vec();
        let mut state = 7u64;
        while bytes.len() < 9 * 1024 * 1024 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            bytes.extend_from_slice(&state.to_le_bytes());
        }
        bytes.push(0);
        bytes.extend_from_slice(&(bytes.len() as u32 - 4).to_le_bytes());
        bytes.extend_from_slice(b"PAR1");
        let ingested = ingest_bytes("batches.parquet", &bytes, &IngestOptions::new(4, 2)).unwrap();
        assert!(ingested.manifest.chunks.len() > 2);
        let mut shards: Vec<Option<Vec<u8>>> = ingested.shards.iter().cloned().map(Some).collect();
        shards[1] = None;
        for batch_bytes in [1, 3 << 20, usize::MAX] {
            let mut written = Vec::new();
            reassemble_in_batches(
                &ingested.manifest,
                &ingested.key,
                &shards,
                ShardCheck::Hash,
                "output",
                &mut written,
                batch_bytes,
            )
            .unwrap();
            assert!(written == bytes, "batches of {batch_bytes} bytes");
        }
    }
}
