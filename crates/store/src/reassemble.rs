//! Reassembly: from any `k` shards, the manifest and the data key back to the original file.
//!
//! [`Reassembler`] does the work a batch of stripes at a time, so a reader can decode while its
//! shards are still arriving: it takes the same run of stripes from any `k` shards, rebuilds
//! missing data columns ([`crate::erasure`]), opens every chunk the run completes in parallel
//! (its tag, from the manifest, authenticates it, its index and the asset id), writes and hashes the plaintext while
//! the next batch is opened, and at the end checks the output's BLAKE3 hash against the
//! manifest's asset id. At most two batches of plaintext and one of ciphertext are in memory.
//!
//! [`reassemble`] and [`reassemble_to`] drive it over whole shards, which are checked against
//! their manifest roots first ([`crate::erasure::verify_shards`]: a corrupt one is named by
//! index, so the caller can fetch it elsewhere and retry), unless the caller's transport verified
//! them as they arrived ([`ShardCheck`]).

use std::io::Write;
use std::ops::Range;

use rayon::prelude::*;

use crate::cipher::{ChunkCipher, ChunkTag, DataKey};
use crate::erasure;
use crate::error::{Result, StoreError};
use crate::manifest::{ContentHash, Manifest};

/// How many bytes [`Reassembler`] hands its writer at a time.
const WRITE_PIECE_BYTES: usize = 1 << 20;
/// About how many ciphertext bytes [`Reassembler`] decodes per batch (whole stripes).
const BATCH_BYTES: u64 = 32 << 20;

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

/// Rebuilds an asset batch by batch from runs of stripes of any `k` of its shards, writing it
/// as it goes. Ask [`Reassembler::next_range`] which bytes of each shard the next batch needs,
/// hand them to [`Reassembler::push`], and call [`Reassembler::finish`] when no range is left.
///
/// The asset hash is known only at the end: on an error, what was written is not the asset, so
/// write to a temporary file and keep it only once `finish` succeeds.
pub struct Reassembler<'a, W: Write + Send> {
    manifest: &'a Manifest,
    cipher: ChunkCipher,
    name: String,
    writer: W,
    hasher: blake3::Hasher,
    stripes_per_batch: u64,
    /// The first stripe not yet decoded.
    next_stripe: u64,
    /// Ciphertext decoded but not yet opened: the stream from the first unopened chunk on.
    stream: Vec<u8>,
    /// The first chunk not yet opened.
    next_chunk: usize,
    /// Plaintext opened and waiting to be written (while the next batch is opened).
    ready: Vec<u8>,
    spare: Vec<u8>,
}

impl<'a, W: Write + Send> Reassembler<'a, W> {
    /// Starts reassembling `manifest`'s asset into `writer` (named `name` in errors).
    pub fn new(manifest: &'a Manifest, key: &DataKey, name: &str, writer: W) -> Result<Self> {
        Self::with_batch_bytes(manifest, key, name, writer, BATCH_BYTES)
    }

    /// [`Reassembler::new`] with batches of about `batch_bytes` of ciphertext (at least a stripe).
    pub fn with_batch_bytes(
        manifest: &'a Manifest,
        key: &DataKey,
        name: &str,
        writer: W,
        batch_bytes: u64,
    ) -> Result<Self> {
        manifest.validate()?;
        Ok(Self {
            manifest,
            cipher: ChunkCipher::new(manifest.cipher, key, manifest.asset_id)?,
            name: name.to_string(),
            writer,
            hasher: blake3::Hasher::new(),
            stripes_per_batch: (batch_bytes / manifest.stripe_bytes).max(1),
            next_stripe: 0,
            stream: Vec::new(),
            next_chunk: 0,
            ready: Vec::new(),
            spare: Vec::new(),
        })
    }

    /// Bytes of each shard in a full batch: the ranges [`Reassembler::next_range`] names are
    /// consecutive runs of this length from offset 0 (the last one may be shorter).
    pub fn batch_shard_bytes(&self) -> u64 {
        self.stripes_per_batch * self.manifest.piece_bytes()
    }

    /// The byte range of every shard the next batch needs, or `None` once every stripe is in.
    pub fn next_range(&self) -> Option<Range<u64>> {
        let stripes = self.manifest.stripe_count();
        if self.next_stripe >= stripes {
            return None;
        }
        let end = (self.next_stripe + self.stripes_per_batch).min(stripes);
        let piece_bytes = self.manifest.piece_bytes();
        Some(self.next_stripe * piece_bytes..end * piece_bytes)
    }

    /// Decodes the batch [`Reassembler::next_range`] names from `pieces`: one slot per shard
    /// (`k + m`), holding that range of the shard for at least `k` of them and `None` for the
    /// rest. Opens every chunk the stream now holds whole and writes the previous batch's
    /// plaintext meanwhile.
    pub fn push(&mut self, pieces: &[Option<&[u8]>]) -> Result<()> {
        let Some(range) = self.next_range() else {
            return Err(StoreError::Erasure {
                stripe: self.next_stripe,
                message: "every stripe is already decoded".into(),
            });
        };
        if pieces.len() != self.manifest.shards.len() {
            return Err(StoreError::ShardSlotCount {
                expected: self.manifest.shards.len(),
                found: pieces.len(),
            });
        }
        let run_bytes = (range.end - range.start) as usize;
        let short: Vec<usize> = (0..pieces.len())
            .filter(|&index| pieces[index].is_some_and(|piece| piece.len() != run_bytes))
            .collect();
        if !short.is_empty() {
            return Err(StoreError::CorruptShards { indices: short });
        }
        let data = erasure::data_pieces(self.manifest, pieces)?;
        let piece_bytes = self.manifest.piece_bytes() as usize;
        let start = self.stream.len();
        self.stream.resize(start + run_bytes * data.len(), 0);
        erasure::read_stream(&data, piece_bytes, 0, &mut self.stream[start..]);
        self.next_stripe = range.end / self.manifest.piece_bytes();
        self.open_whole_chunks()
    }

    /// Opens the chunks whose ciphertext the stream holds whole into `spare`, while `ready` is
    /// written and hashed; then `spare` becomes `ready`.
    fn open_whole_chunks(&mut self) -> Result<()> {
        let chunks = &self.manifest.chunks;
        let (first, mut end, mut ciphertext) = (self.next_chunk, self.next_chunk, 0);
        // The stream has the plaintext's layout (the tags are in the manifest).
        while end < chunks.len()
            && ciphertext + chunks[end].plaintext_len as usize <= self.stream.len()
        {
            ciphertext += chunks[end].plaintext_len as usize;
            end += 1;
        }
        self.spare.resize(ciphertext, 0);
        let mut targets: Vec<(usize, &[u8], &ChunkTag, &mut [u8])> =
            Vec::with_capacity(end - first);
        let (mut sealed, mut open) = (&self.stream[..ciphertext], self.spare.as_mut_slice());
        for (index, entry) in chunks.iter().enumerate().take(end).skip(first) {
            let (chunk, rest) = sealed.split_at(entry.plaintext_len as usize);
            let (target, tail) = open.split_at_mut(entry.plaintext_len as usize);
            targets.push((index, chunk, &entry.tag, target));
            (sealed, open) = (rest, tail);
        }
        let cipher = &self.cipher;
        let (writer, hasher, ready) = (&mut self.writer, &mut self.hasher, &self.ready);
        let (opened, written) = rayon::join(
            || {
                targets
                    .into_par_iter()
                    .try_for_each(|(index, chunk, tag, target)| {
                        cipher.open(index as u64, chunk, tag, target)
                    })
            },
            || write_and_hash(writer, hasher, ready),
        );
        opened?;
        written.map_err(|error| StoreError::io(&self.name, error))?;
        std::mem::swap(&mut self.ready, &mut self.spare);
        self.stream.drain(..ciphertext);
        self.next_chunk = end;
        Ok(())
    }

    /// Writes the last batch, flushes, and checks the written bytes' BLAKE3 hash against the
    /// asset id; fails if stripes or chunks are left.
    pub fn finish(mut self) -> Result<W> {
        if self.next_stripe < self.manifest.stripe_count()
            || self.next_chunk < self.manifest.chunks.len()
        {
            return Err(StoreError::Erasure {
                stripe: self.next_stripe,
                message: format!(
                    "reassembly ended at stripe {} of {} (chunk {} of {})",
                    self.next_stripe,
                    self.manifest.stripe_count(),
                    self.next_chunk,
                    self.manifest.chunks.len()
                ),
            });
        }
        write_and_hash(&mut self.writer, &mut self.hasher, &self.ready)
            .and_then(|()| self.writer.flush())
            .map_err(|error| StoreError::io(&self.name, error))?;
        let actual = ContentHash(*self.hasher.finalize().as_bytes());
        if actual != self.manifest.asset_id {
            return Err(StoreError::AssetHashMismatch {
                expected: self.manifest.asset_id.to_hex(),
                actual: actual.to_hex(),
            });
        }
        Ok(self.writer)
    }
}

/// Writes `bytes` a piece at a time (one huge write made the kernel copy it all in one go, which
/// was slower here than the same bytes a mebibyte at a time) and hashes them on every core.
fn write_and_hash(
    writer: &mut impl Write,
    hasher: &mut blake3::Hasher,
    bytes: &[u8],
) -> std::io::Result<()> {
    bytes
        .chunks(WRITE_PIECE_BYTES)
        .try_for_each(|piece| writer.write_all(piece))?;
    hasher.update_rayon(bytes);
    Ok(())
}

/// Rebuilds the asset from `shards` (`k + m` slots, `None` for a missing shard; at least `k`
/// present), each hashed against its root first.
pub fn reassemble(
    manifest: &Manifest,
    key: &DataKey,
    shards: &[Option<Vec<u8>>],
) -> Result<Vec<u8>> {
    let output = Vec::with_capacity(usize::try_from(manifest.byte_size).unwrap_or(0));
    reassemble_whole(
        manifest,
        key,
        shards,
        ShardCheck::Hash,
        "output",
        output,
        BATCH_BYTES,
    )
}

/// [`reassemble`], writing the asset to `writer` as it is decrypted; `check` says whether the
/// shards are hashed first, `name` names the destination in errors. On an error, what was
/// written is not the asset (see [`Reassembler`]).
pub fn reassemble_to<W: Write + Send>(
    manifest: &Manifest,
    key: &DataKey,
    shards: &[Option<Vec<u8>>],
    check: ShardCheck,
    name: &str,
    writer: W,
) -> Result<W> {
    reassemble_whole(manifest, key, shards, check, name, writer, BATCH_BYTES)
}

/// Checks whole shards as `check` says and runs a [`Reassembler`] with batches of about
/// `batch_bytes` over them.
fn reassemble_whole<W: Write + Send>(
    manifest: &Manifest,
    key: &DataKey,
    shards: &[Option<Vec<u8>>],
    check: ShardCheck,
    name: &str,
    writer: W,
    batch_bytes: u64,
) -> Result<W> {
    // Validates the manifest, which the shard checks rely on.
    let mut reassembler = Reassembler::with_batch_bytes(manifest, key, name, writer, batch_bytes)?;
    match check {
        ShardCheck::Hash => erasure::verify_shards(manifest, shards)?,
        ShardCheck::VerifiedByCaller => erasure::check_shard_sizes(manifest, shards)?,
    }
    while let Some(range) = reassembler.next_range() {
        let range = range.start as usize..range.end as usize;
        let pieces: Vec<Option<&[u8]>> = shards
            .iter()
            .map(|shard| shard.as_deref().map(|shard| &shard[range.clone()]))
            .collect();
        reassembler.push(&pieces)?;
    }
    reassembler.finish()
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
        let mut shards: Vec<Option<Vec<u8>>> =
            ingested.shard_vecs().into_iter().map(Some).collect();
        shards[1] = None;
        for batch_bytes in [1, 3 << 20, u64::MAX] {
            let written = reassemble_whole(
                &ingested.manifest,
                &ingested.key,
                &shards,
                ShardCheck::Hash,
                "output",
                Vec::new(),
                batch_bytes,
            )
            .unwrap();
            assert!(written == bytes, "batches of {batch_bytes} bytes");
        }
    }
}
