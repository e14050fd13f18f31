//! Reassembly: from any `k` shards, the manifest and the data key back to the original file.
//!
//! Every supplied shard is checked against its manifest root first ([`crate::erasure::verify_shards`]:
//! a corrupt one is named by index, so the caller can fetch it elsewhere and retry), the stream is
//! missing data shards are rebuilt ([`crate::erasure::data_shards`]), every chunk is gathered from the
//! data shards and opened in parallel (its tag authenticates it, its
//! index and the asset id), and the output's BLAKE3 hash must equal the manifest's asset id.

use std::io::Write;

use rayon::prelude::*;

use crate::cipher::{ChunkCipher, DataKey};
use crate::erasure;
use crate::error::{Result, StoreError};
use crate::limits::TAG_BYTES;
use crate::manifest::{ContentHash, Manifest};

/// Rebuilds the asset from `shards` (`k + m` slots, `None` for a missing shard; at least `k` present).
pub fn reassemble(
    manifest: &Manifest,
    key: &DataKey,
    shards: &[Option<Vec<u8>>],
) -> Result<Vec<u8>> {
    let data = erasure::data_shards(manifest, shards)?;
    let piece_bytes = manifest.piece_bytes() as usize;
    let cipher = ChunkCipher::new(manifest.cipher, key, manifest.asset_id)?;
    let mut output = vec![0u8; manifest.byte_size as usize];
    let mut targets: Vec<(usize, usize, &mut [u8])> = Vec::with_capacity(manifest.chunks.len());
    let mut rest = output.as_mut_slice();
    let mut ciphertext_offset = 0usize;
    for (index, entry) in manifest.chunks.iter().enumerate() {
        // The manifest was validated: lengths add up to `byte_size` and fit in the shards.
        let (target, tail) = rest.split_at_mut(entry.plaintext_len as usize);
        targets.push((index, ciphertext_offset, target));
        rest = tail;
        ciphertext_offset += entry.ciphertext_len as usize;
    }
    targets
        .into_par_iter()
        .try_for_each_init(Vec::new, |scratch, (index, offset, target)| {
            scratch.resize(target.len() + TAG_BYTES as usize, 0);
            erasure::read_stream(&data, piece_bytes, offset, scratch);
            cipher.open(index as u64, scratch, target)
        })?;
    let actual = ContentHash(
        *blake3::Hasher::new()
            .update_rayon(&output)
            .finalize()
            .as_bytes(),
    );
    if actual != manifest.asset_id {
        return Err(StoreError::AssetHashMismatch {
            expected: manifest.asset_id.to_hex(),
            actual: actual.to_hex(),
        });
    }
    Ok(output)
}

/// [`reassemble`], writing the asset to `writer` (only once it is complete and checked). `name` names the
/// destination in errors.
pub fn reassemble_to(
    manifest: &Manifest,
    key: &DataKey,
    shards: &[Option<Vec<u8>>],
    name: &str,
    mut writer: impl Write,
) -> Result<()> {
    let output = reassemble(manifest, key, shards)?;
    writer
        .write_all(&output)
        .and_then(|()| writer.flush())
        .map_err(|error| StoreError::io(name, error))
}
