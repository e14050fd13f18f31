//! Reed-Solomon erasure coding of the ciphertext stream into `k` data and `m` parity shards.
//!
//! The stream (every chunk's ciphertext, in order: the plaintext's layout) is laid out in stripes of `stripe_bytes`, the last one
//! zero-padded. Each stripe splits into `k` equal pieces and yields `m` parity pieces
//! (`reed-solomon-simd`, a systematic code over GF(2^16)); shard `j` is piece `j` of every stripe,
//! concatenated. Data shards are thus the stream itself, cut into columns: with all of them present,
//! decoding is a copy. Any `k` of the `k + m` shards rebuild every stripe.
//!
//! Stripes are coded in parallel (rayon), each worker reusing one encoder or decoder. Ingest seals the
//! stream where it lies and calls [`encode_parity`] on it (its columns are the data shards); reassembly
//! rebuilds only the missing data columns, a run of stripes at a time as shards arrive
//! ([`data_pieces`]); [`data_shards`] does it for whole shards. [`encode`] and [`decode`] work on a
//! whole stream, for callers that have one.

use std::borrow::Cow;
use std::io::Read;

use rayon::prelude::*;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::error::{Result, StoreError};
use crate::limits::{PIECE_ALIGN_BYTES, SHARDS_MAX, STRIPE_BYTES_MAX};
use crate::manifest::{ContentHash, Manifest};
use crate::piece_hash;

/// Checks a geometry: `1 <= k`, `1 <= m`, `k + m <= SHARDS_MAX`, and `stripe_bytes` splitting into `k`
/// pieces of a non-zero multiple of [`PIECE_ALIGN_BYTES`].
pub fn check_geometry(data_shards: usize, parity_shards: usize, stripe_bytes: u64) -> Result<()> {
    if data_shards == 0
        || parity_shards == 0
        || data_shards.saturating_add(parity_shards) > SHARDS_MAX
    {
        return Err(StoreError::invalid_option(
            "data_shards/parity_shards",
            format!(
                "k = {data_shards}, m = {parity_shards}: need k >= 1, m >= 1 and k + m <= {SHARDS_MAX}"
            ),
        ));
    }
    let piece_bytes = stripe_bytes / data_shards as u64;
    if stripe_bytes == 0
        || stripe_bytes > STRIPE_BYTES_MAX
        || !stripe_bytes.is_multiple_of(data_shards as u64)
        || !piece_bytes.is_multiple_of(PIECE_ALIGN_BYTES)
    {
        return Err(StoreError::invalid_option(
            "stripe_bytes",
            format!(
                "{stripe_bytes} does not split into {data_shards} pieces of a multiple of {PIECE_ALIGN_BYTES} bytes (at most {STRIPE_BYTES_MAX} in all)"
            ),
        ));
    }
    Ok(())
}

/// Encodes `stream` into `k + m` shards of `ceil(stream.len() / stripe_bytes) * stripe_bytes / k` bytes
/// each (the last stripe zero-padded). An empty stream gives empty shards.
pub fn encode(
    stream: &[u8],
    data_shards: usize,
    parity_shards: usize,
    stripe_bytes: u64,
) -> Result<Vec<Vec<u8>>> {
    check_geometry(data_shards, parity_shards, stripe_bytes)?;
    let stripe_bytes = stripe_bytes as usize;
    let piece_bytes = stripe_bytes / data_shards;
    let stripes = stream.len().div_ceil(stripe_bytes);
    let shard_bytes = stripes * piece_bytes;

    // Data shards: columns of the stream.
    let mut shards: Vec<Vec<u8>> = (0..data_shards)
        .into_par_iter()
        .map(|column| {
            let mut shard = vec![0u8; shard_bytes];
            for (stripe, piece) in shard.chunks_exact_mut(piece_bytes).enumerate() {
                let start = (stripe * stripe_bytes + column * piece_bytes).min(stream.len());
                let end = (start + piece_bytes).min(stream.len());
                piece[..end - start].copy_from_slice(&stream[start..end]);
            }
            shard
        })
        .collect();
    let (parity, _) = parity_of(
        stripes,
        data_shards,
        parity_shards,
        piece_bytes,
        |stripe, column| &shards[column][stripe * piece_bytes..(stripe + 1) * piece_bytes],
        |_, _| (),
    )?;
    shards.extend(parity);
    Ok(shards)
}

/// Computes the `m` parity shards of a ciphertext stream already padded to whole stripes of `k`
/// pieces of `piece_bytes` (a non-zero multiple of [`PIECE_ALIGN_BYTES`]); the data shards are the
/// stream's columns, read where they lie.
pub fn encode_parity(
    stream: &[u8],
    data_shards: usize,
    parity_shards: usize,
    piece_bytes: usize,
) -> Result<Vec<Vec<u8>>> {
    let columns = stream_columns(stream, data_shards, parity_shards, piece_bytes)?;
    let (parity, _) = parity_of(
        stream.len() / (data_shards * piece_bytes),
        data_shards,
        parity_shards,
        piece_bytes,
        |stripe, column| columns[column].piece(stripe),
        |_, _| (),
    )?;
    Ok(parity)
}

/// [`encode_parity`], and the BLAKE3 root of every shard (`k` data, then `m` parity). Where pieces
/// are a power of two of 1 KiB and there are at least two stripes, each stripe's pieces are hashed
/// right after the stripe is coded, while they are in cache, and each root is merged from its
/// pieces' chaining values; otherwise the shards are hashed after.
pub fn encode_parity_and_roots(
    stream: &[u8],
    data_shards: usize,
    parity_shards: usize,
    piece_bytes: usize,
) -> Result<(Vec<Vec<u8>>, Vec<ContentHash>)> {
    let columns = stream_columns(stream, data_shards, parity_shards, piece_bytes)?;
    let stripes = stream.len() / (data_shards * piece_bytes);
    let fused = piece_hash::applies(piece_bytes, stripes);
    let (parity, values) = parity_of(
        stripes,
        data_shards,
        parity_shards,
        piece_bytes,
        |stripe, column| columns[column].piece(stripe),
        |stripe, parity: &[&mut [u8]]| {
            fused.then(|| {
                columns
                    .iter()
                    .map(|column| column.piece(stripe))
                    .chain(parity.iter().map(|piece| &**piece))
                    .map(|piece| piece_hash::piece_value(piece, stripe))
                    .collect::<Vec<_>>()
            })
        },
    )?;
    let shards: Vec<ShardView<'_>> = columns
        .iter()
        .copied()
        .chain(
            parity
                .iter()
                .map(|shard| ShardView::whole(shard, piece_bytes)),
        )
        .collect();
    let roots: Option<Vec<ContentHash>> = shards
        .par_iter()
        .enumerate()
        .map(|(index, shard)| {
            if !fused {
                return Some(shard.root());
            }
            let column: Option<Vec<_>> = values
                .iter()
                .map(|stripe| stripe.as_ref().map(|values| values[index]))
                .collect();
            piece_hash::root_of(&column?)
        })
        .collect();
    let roots = roots.ok_or_else(|| StoreError::Erasure {
        stripe: 0,
        message: "a shard's pieces could not be merged into its root".into(),
    })?;
    Ok((parity, roots))
}

/// Checks the geometry and that `stream` is whole stripes; returns its `k` data columns.
fn stream_columns(
    stream: &[u8],
    data_shards: usize,
    parity_shards: usize,
    piece_bytes: usize,
) -> Result<Vec<ShardView<'_>>> {
    let stripe_bytes = data_shards.saturating_mul(piece_bytes);
    check_geometry(data_shards, parity_shards, stripe_bytes as u64)?;
    if !stream.len().is_multiple_of(stripe_bytes) {
        return Err(StoreError::invalid_option(
            "stream",
            format!(
                "{} bytes is not whole stripes of {stripe_bytes} bytes",
                stream.len()
            ),
        ));
    }
    Ok((0..data_shards)
        .map(|column| ShardView::column(stream, data_shards, piece_bytes, column))
        .collect())
}

/// The parity shards of `stripes` stripes whose data pieces `data_piece(stripe, column)` gives,
/// stripe by stripe in parallel, each worker reusing one encoder; with what `after(stripe, parity
/// pieces)` returns for each stripe once it is coded. Callers check the geometry.
fn parity_of<'a, T: Send>(
    stripes: usize,
    data_shards: usize,
    parity_shards: usize,
    piece_bytes: usize,
    data_piece: impl Fn(usize, usize) -> &'a [u8] + Sync,
    after: impl Fn(usize, &[&mut [u8]]) -> T + Sync,
) -> Result<(Vec<Vec<u8>>, Vec<T>)> {
    let shard_bytes = stripes * piece_bytes;
    let mut parity: Vec<Vec<u8>> = (0..parity_shards).map(|_| vec![0u8; shard_bytes]).collect();
    if stripes == 0 {
        return Ok((parity, Vec::new()));
    }
    // Parity pieces, grouped by stripe, written in place.
    let mut outputs: Vec<Vec<&mut [u8]>> = (0..stripes)
        .map(|_| Vec::with_capacity(parity_shards))
        .collect();
    for shard in &mut parity {
        for (stripe, piece) in shard.chunks_exact_mut(piece_bytes).enumerate() {
            outputs[stripe].push(piece);
        }
    }
    let results: Result<Vec<T>> = outputs
        .into_par_iter()
        .enumerate()
        .map_init(
            || ReedSolomonEncoder::new(data_shards, parity_shards, piece_bytes),
            |encoder, (stripe, mut pieces)| {
                let coding_error = |error: reed_solomon_simd::Error| StoreError::Erasure {
                    stripe: stripe as u64,
                    message: error.to_string(),
                };
                let encoder = encoder.as_mut().map_err(|error| coding_error(*error))?;
                for column in 0..data_shards {
                    encoder
                        .add_original_shard(data_piece(stripe, column))
                        .map_err(coding_error)?;
                }
                let result = encoder.encode().map_err(coding_error)?;
                for (target, recovered) in pieces.iter_mut().zip(result.recovery_iter()) {
                    target.copy_from_slice(recovered);
                }
                Ok(after(stripe, &pieces))
            },
        )
        .collect();
    let results = results?;
    Ok((parity, results))
}

/// One shard where it lies: a data shard is a column of the ciphertext stream (every `k`-th piece), a
/// parity shard its own buffer. Read it piece by piece, as a [`Read`]er, or copy it. A view covers
/// only whole pieces of its buffer, so it never reaches past it.
#[derive(Clone, Copy, Debug)]
pub struct ShardView<'a> {
    source: &'a [u8],
    first: usize,
    stride: usize,
    piece_bytes: usize,
    pieces: usize,
}

impl<'a> ShardView<'a> {
    /// Data shard `column` of `stream`, cut into stripes of `data_shards` pieces of `piece_bytes`
    /// (the stream's whole stripes; ingest pads it to whole stripes).
    pub fn column(stream: &'a [u8], data_shards: usize, piece_bytes: usize, column: usize) -> Self {
        let stride = piece_bytes.saturating_mul(data_shards);
        Self {
            source: stream,
            first: column.saturating_mul(piece_bytes),
            stride,
            piece_bytes,
            pieces: if column < data_shards {
                stream.len().checked_div(stride).unwrap_or(0)
            } else {
                0
            },
        }
    }

    /// A shard held whole (a parity shard), in pieces of `piece_bytes`.
    pub fn whole(shard: &'a [u8], piece_bytes: usize) -> Self {
        Self {
            source: shard,
            first: 0,
            stride: piece_bytes,
            piece_bytes,
            pieces: shard.len().checked_div(piece_bytes).unwrap_or(0),
        }
    }

    /// Piece `index`: the shard's share of stripe `index`.
    pub fn piece(&self, index: usize) -> &'a [u8] {
        let start = self.first + index * self.stride;
        &self.source[start..start + self.piece_bytes]
    }

    /// Bytes in the shard.
    pub fn len(&self) -> usize {
        self.pieces * self.piece_bytes
    }

    /// Whether the shard is empty (an empty asset's shards are).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shard's pieces, in order: one per stripe.
    pub fn pieces(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let view = *self;
        (0..view.pieces).map(move |piece| view.piece(piece))
    }

    /// The shard's bytes, copied.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.len());
        self.pieces()
            .for_each(|piece| bytes.extend_from_slice(piece));
        bytes
    }

    /// The shard's BLAKE3 root, hashed piece by piece.
    pub fn root(&self) -> ContentHash {
        let mut hasher = blake3::Hasher::new();
        self.pieces().for_each(|piece| {
            hasher.update(piece);
        });
        ContentHash(*hasher.finalize().as_bytes())
    }

    /// A reader of the shard's bytes, front to back.
    pub fn reader(&self) -> ShardReader<'a> {
        ShardReader {
            view: *self,
            offset: 0,
        }
    }
}

/// Reads a [`ShardView`] front to back without copying it first.
#[derive(Debug)]
pub struct ShardReader<'a> {
    view: ShardView<'a>,
    offset: usize,
}

impl Read for ShardReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let view = &self.view;
        if self.offset >= view.len() || buffer.is_empty() {
            return Ok(0);
        }
        let within = self.offset % view.piece_bytes;
        let piece = &view.piece(self.offset / view.piece_bytes)[within..];
        let take = piece.len().min(buffer.len());
        buffer[..take].copy_from_slice(&piece[..take]);
        self.offset += take;
        Ok(take)
    }
}

/// Checks every supplied shard against the manifest (size and BLAKE3 root), in parallel.
///
/// Fails with [`StoreError::CorruptShards`] listing every bad index, so the caller can fetch those shards
/// from another provider (or drop them, if `k` good ones remain) and retry.
pub fn verify_shards(manifest: &Manifest, shards: &[Option<Vec<u8>>]) -> Result<()> {
    check_shards(manifest, shards, true)
}

/// Fails with [`StoreError::CorruptShards`] naming every supplied shard whose size differs from
/// the manifest's, or (if `hash`) whose BLAKE3 root does, in parallel.
fn check_shards(manifest: &Manifest, shards: &[Option<Vec<u8>>], hash: bool) -> Result<()> {
    let expected = manifest.shards.len();
    if shards.len() != expected {
        return Err(StoreError::ShardSlotCount {
            expected,
            found: shards.len(),
        });
    }
    let mut indices: Vec<usize> = shards
        .par_iter()
        .zip(manifest.shards.par_iter())
        .enumerate()
        .filter_map(|(index, (shard, entry))| {
            let shard = shard.as_ref()?;
            let good = shard.len() as u64 == entry.byte_size
                && (!hash || ContentHash::of(shard) == entry.root);
            (!good).then_some(index)
        })
        .collect();
    if !indices.is_empty() {
        indices.sort_unstable();
        return Err(StoreError::CorruptShards { indices });
    }
    Ok(())
}

/// The `k` data shards of a manifest's asset from any `k` of its shards (`None` for missing ones), after
/// checking every supplied shard with [`verify_shards`]. Present data shards are borrowed; missing ones
/// are rebuilt, stripe by stripe in parallel.
pub fn data_shards<'a>(
    manifest: &Manifest,
    shards: &'a [Option<Vec<u8>>],
) -> Result<Vec<Cow<'a, [u8]>>> {
    manifest.validate()?;
    verify_shards(manifest, shards)?;
    rebuild_data_shards(manifest, shards)
}

/// Checks every supplied shard's size against the manifest, without hashing it: for shards a
/// transport already verified against their manifest roots as they arrived. A corrupt shard passed
/// anyway is caught later by the chunks' tags and the asset hash, only without its index.
pub(crate) fn check_shard_sizes(manifest: &Manifest, shards: &[Option<Vec<u8>>]) -> Result<()> {
    check_shards(manifest, shards, false)
}

/// The data shards from checked shards: present ones borrowed, missing ones rebuilt.
fn rebuild_data_shards<'a>(
    manifest: &Manifest,
    shards: &'a [Option<Vec<u8>>],
) -> Result<Vec<Cow<'a, [u8]>>> {
    let slices: Vec<Option<&[u8]>> = shards.iter().map(Option::as_deref).collect();
    data_pieces(manifest, &slices)
}

/// The `k` data columns of a run of consecutive stripes, from the same run cut out of any `k`
/// shards (`k + m` slots, `None` for a shard not at hand; every present slice the same length, a
/// whole number of pieces): present data columns borrowed, missing ones rebuilt stripe by stripe
/// in parallel. Callers check the slices' lengths; the slices' bytes are taken as they are.
pub(crate) fn data_pieces<'a>(
    manifest: &Manifest,
    shards: &[Option<&'a [u8]>],
) -> Result<Vec<Cow<'a, [u8]>>> {
    let data_shards = manifest.data_shards as usize;
    let parity_shards = manifest.parity_shards as usize;
    let present = shards.iter().filter(|shard| shard.is_some()).count();
    if present < data_shards || shards.len() != data_shards + parity_shards {
        return Err(StoreError::NotEnoughShards {
            present,
            needed: data_shards,
        });
    }
    let piece_bytes = manifest.piece_bytes() as usize;
    // Callers checked the lengths (against the manifest, or the batch); this only guards.
    let run_bytes = shards
        .iter()
        .flatten()
        .map(|shard| shard.len())
        .max()
        .unwrap_or(0);
    let uneven: Vec<usize> = (0..shards.len())
        .filter(|&index| shards[index].is_some_and(|shard| shard.len() != run_bytes))
        .collect();
    if !uneven.is_empty() {
        return Err(StoreError::CorruptShards { indices: uneven });
    }
    if piece_bytes == 0 || !run_bytes.is_multiple_of(piece_bytes) {
        return Err(StoreError::Erasure {
            stripe: 0,
            message: format!("a run of {run_bytes} bytes is not whole pieces of {piece_bytes}"),
        });
    }
    let missing: Vec<usize> = (0..data_shards)
        .filter(|&index| shards[index].is_none())
        .collect();
    let mut rebuilt: Vec<Vec<u8>> = missing.iter().map(|_| vec![0u8; run_bytes]).collect();
    if !missing.is_empty() && run_bytes > 0 {
        // Parity shards to feed the decoder: just enough to replace the missing data shards.
        let parity_used: Vec<usize> = (data_shards..data_shards + parity_shards)
            .filter(|&index| shards[index].is_some())
            .take(missing.len())
            .collect();
        let stripes = run_bytes / piece_bytes;
        let mut outputs: Vec<Vec<&mut [u8]>> = (0..stripes)
            .map(|_| Vec::with_capacity(missing.len()))
            .collect();
        for shard in &mut rebuilt {
            for (stripe, piece) in shard.chunks_exact_mut(piece_bytes).enumerate() {
                outputs[stripe].push(piece);
            }
        }
        outputs.into_par_iter().enumerate().try_for_each_init(
            || ReedSolomonDecoder::new(data_shards, parity_shards, piece_bytes),
            |decoder, (stripe, targets)| {
                let coding_error = |error: reed_solomon_simd::Error| StoreError::Erasure {
                    stripe: stripe as u64,
                    message: error.to_string(),
                };
                let decoder = decoder.as_mut().map_err(|error| coding_error(*error))?;
                let range = stripe * piece_bytes..(stripe + 1) * piece_bytes;
                for (index, shard) in shards.iter().enumerate().take(data_shards) {
                    if let Some(shard) = shard {
                        decoder
                            .add_original_shard(index, &shard[range.clone()])
                            .map_err(coding_error)?;
                    }
                }
                for &index in &parity_used {
                    if let Some(shard) = &shards[index] {
                        decoder
                            .add_recovery_shard(index - data_shards, &shard[range.clone()])
                            .map_err(coding_error)?;
                    }
                }
                let result = decoder.decode().map_err(coding_error)?;
                for (target, &index) in targets.into_iter().zip(&missing) {
                    let restored =
                        result
                            .restored_original(index)
                            .ok_or_else(|| StoreError::Erasure {
                                stripe: stripe as u64,
                                message: format!("data shard {index} was not restored"),
                            })?;
                    target.copy_from_slice(restored);
                }
                Ok::<(), StoreError>(())
            },
        )?;
    }
    let mut rebuilt = rebuilt.into_iter();
    (0..data_shards)
        .map(|index| match shards[index] {
            Some(shard) => Ok(Cow::Borrowed(shard)),
            None => rebuilt
                .next()
                .map(Cow::Owned)
                .ok_or(StoreError::NotEnoughShards {
                    present,
                    needed: data_shards,
                }),
        })
        .collect()
}

/// Copies `out.len()` bytes of the ciphertext stream, from stream offset `offset`, out of the data shards
/// (pieces of `piece_bytes`, `k` per stripe). The range must lie within the shards.
pub(crate) fn read_stream(
    data: &[Cow<'_, [u8]>],
    piece_bytes: usize,
    offset: usize,
    out: &mut [u8],
) {
    let stripe_bytes = piece_bytes * data.len();
    let mut offset = offset;
    let mut filled = 0;
    while filled < out.len() {
        let stripe = offset / stripe_bytes;
        let within = offset % stripe_bytes;
        let column = within / piece_bytes;
        let at = stripe * piece_bytes + within % piece_bytes;
        let take = (piece_bytes - within % piece_bytes).min(out.len() - filled);
        out[filled..filled + take].copy_from_slice(&data[column][at..at + take]);
        filled += take;
        offset += take;
    }
}

/// Rebuilds the padded ciphertext stream (`stripes × stripe_bytes` bytes) from any `k` shards (`None`
/// for missing ones), after checking every supplied shard with [`verify_shards`].
pub fn decode(manifest: &Manifest, shards: &[Option<Vec<u8>>]) -> Result<Vec<u8>> {
    let data = data_shards(manifest, shards)?;
    let mut stream = vec![0u8; (manifest.stripe_count() * manifest.stripe_bytes) as usize];
    read_stream(&data, manifest.piece_bytes() as usize, 0, &mut stream);
    Ok(stream)
}
