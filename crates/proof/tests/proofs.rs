//! End-to-end tests of proving and verifying: many shard lengths, wrong inputs, tampered and truncated
//! encodings, and proving from an outboard.

use proptest::prelude::*;
use tributary_proof::limits::{CHALLENGE_CHUNKS_MAX, PROOF_BUDGET_BYTES, STORAGE_PROOF_BYTES_MAX};
use tributary_proof::{
    ProofError, StorageProof, challenge_chunks, challenge_chunks_fitting, chunk_count, outboard,
    outboard_bytes, prove, prove_from_outboard, storage_proof_bytes,
};

/// Deterministic pseudo-random bytes (BLAKE3's output stream), so failures reproduce.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut bytes);
    bytes
}

fn root_of(shard: &[u8]) -> [u8; 32] {
    *blake3::hash(shard).as_bytes()
}

const LENGTHS: &[usize] = &[
    0,
    1,
    1023,
    1024,
    1025,
    2048,
    3 * 1024 + 7,
    16 * 1024,
    16 * 1024 + 1,
    33 * 1024,
    64 * 1024 + 1,
    100_000,
    1 << 20,
    3 * (1 << 20) + 12_345,
];

#[test]
fn round_trip_for_many_lengths() {
    for (index, &len) in LENGTHS.iter().enumerate() {
        let shard = random_bytes(index as u64, len);
        let root = root_of(&shard);
        let shard_len = len as u64;
        let mut outboard_file = Vec::new();
        let outboard_root = outboard(&shard[..], shard_len, &mut outboard_file).unwrap();
        assert_eq!(outboard_root, root, "outboard root, len {len}");
        assert_eq!(outboard_file.len() as u64, outboard_bytes(shard_len));
        for count in [1usize, 2, 5, CHALLENGE_CHUNKS_MAX] {
            let chunks = challenge_chunks([9; 32], index as u64, 1, shard_len, count);
            let proof = prove(&shard, &chunks).unwrap();
            let bytes = proof.encode();
            assert_eq!(bytes.len(), proof.encoded_len());
            assert_eq!(
                bytes.len(),
                storage_proof_bytes(shard_len, &chunks).unwrap()
            );
            assert!(bytes.len() <= STORAGE_PROOF_BYTES_MAX);
            let decoded = StorageProof::decode(&bytes).unwrap();
            assert_eq!(decoded, proof);
            decoded
                .verify(&root, shard_len, &chunks)
                .unwrap_or_else(|error| panic!("len {len} chunks {chunks:?}: {error}"));
            // The outboard prover gives the very same proof.
            let from_disk =
                prove_from_outboard(&shard, &outboard_file, shard_len, &root, &chunks).unwrap();
            assert_eq!(
                from_disk, proof,
                "outboard proof, len {len} chunks {chunks:?}"
            );
        }
    }
}

#[test]
fn every_chunk_of_a_small_shard_proves() {
    let shard = random_bytes(77, 40 * 1024 + 300);
    let root = root_of(&shard);
    let mut outboard_file = Vec::new();
    outboard(&shard[..], shard.len() as u64, &mut outboard_file).unwrap();
    for chunk in 0..chunk_count(shard.len() as u64) {
        let proof = prove(&shard, &[chunk]).unwrap();
        proof.verify(&root, shard.len() as u64, &[chunk]).unwrap();
        let from_disk =
            prove_from_outboard(&shard, &outboard_file, shard.len() as u64, &root, &[chunk])
                .unwrap();
        assert_eq!(from_disk, proof, "chunk {chunk}");
    }
}

#[test]
fn proof_for_another_chunk_epoch_or_root_fails() {
    let shard = random_bytes(1, 200 * 1024 + 5);
    let shard_len = shard.len() as u64;
    let root = root_of(&shard);
    let chunks = challenge_chunks([3; 32], 5, 10, shard_len, 1);
    let proof = prove(&shard, &chunks).unwrap();
    proof.verify(&root, shard_len, &chunks).unwrap();

    // Another chunk.
    let other = [(chunks[0] + 1) % chunk_count(shard_len)];
    assert!(proof.verify(&root, shard_len, &other).is_err());
    // Another epoch's challenge.
    let later = challenge_chunks([3; 32], 5, 11, shard_len, 1);
    assert_ne!(later, chunks);
    assert!(proof.verify(&root, shard_len, &later).is_err());
    // Another root.
    let mut wrong_root = root;
    wrong_root[0] ^= 1;
    assert!(matches!(
        proof.verify(&wrong_root, shard_len, &chunks),
        Err(ProofError::RootMismatch)
    ));
    // Another shard length whose tree has another shape. (A length that leaves the challenged chunk's path
    // unchanged is not detected by that proof: the deal must record the length the root was computed
    // over, which is why `outboard` and the store check both.)
    assert!(proof.verify(&root, shard_len * 2, &chunks).is_err());
    // Another length of the challenged (last) chunk.
    let last = [chunk_count(shard_len) - 1];
    let last_proof = prove(&shard, &last).unwrap();
    last_proof.verify(&root, shard_len, &last).unwrap();
    assert!(matches!(
        last_proof.verify(&root, shard_len + 1, &last),
        Err(ProofError::ChunkLengthMismatch { .. })
    ));
    // Another shard of the same length.
    let other_shard = random_bytes(2, shard.len());
    assert!(
        proof
            .verify(&root_of(&other_shard), shard_len, &chunks)
            .is_err()
    );
}

#[test]
fn every_single_byte_flip_is_rejected() {
    for (seed, len) in [(10u64, 0usize), (11, 700), (12, 5000), (13, 70 * 1024 + 9)] {
        let shard = random_bytes(seed, len);
        let shard_len = len as u64;
        let root = root_of(&shard);
        let chunks = challenge_chunks([seed as u8; 32], seed, 0, shard_len, 2);
        let bytes = prove(&shard, &chunks).unwrap().encode();
        for position in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut tampered = bytes.clone();
                tampered[position] ^= flip;
                let accepted = StorageProof::decode(&tampered)
                    .and_then(|proof| proof.verify(&root, shard_len, &chunks));
                assert!(
                    accepted.is_err(),
                    "len {len}: flipping byte {position} with {flip:#x} was accepted"
                );
            }
        }
    }
}

#[test]
fn truncated_or_extended_bytes_are_errors() {
    let shard = random_bytes(20, 50 * 1024);
    let shard_len = shard.len() as u64;
    let root = root_of(&shard);
    let chunks = challenge_chunks([1; 32], 1, 1, shard_len, 3);
    let bytes = prove(&shard, &chunks).unwrap().encode();
    for cut in 0..bytes.len() {
        let result = StorageProof::decode(&bytes[..cut])
            .and_then(|proof| proof.verify(&root, shard_len, &chunks));
        assert!(result.is_err(), "truncated to {cut} bytes was accepted");
    }
    let mut extended = bytes.clone();
    extended.push(0);
    assert!(matches!(
        StorageProof::decode(&extended),
        Err(ProofError::TrailingBytes { extra: 1 })
    ));
    let oversized = vec![1u8; STORAGE_PROOF_BYTES_MAX + 1];
    assert!(matches!(
        StorageProof::decode(&oversized),
        Err(ProofError::ProofTooLarge { .. })
    ));
}

#[test]
fn bad_challenges_are_rejected() {
    let shard = random_bytes(30, 10 * 1024);
    let shard_len = shard.len() as u64;
    assert!(matches!(prove(&shard, &[]), Err(ProofError::NoChunks)));
    assert!(matches!(
        prove(&shard, &[3, 3]),
        Err(ProofError::ChunksNotIncreasing {
            position: 1,
            chunk: 3
        })
    ));
    assert!(matches!(
        prove(&shard, &[4, 2]),
        Err(ProofError::ChunksNotIncreasing { .. })
    ));
    assert!(matches!(
        prove(&shard, &[10]),
        Err(ProofError::ChunkOutOfRange {
            chunk: 10,
            chunk_count: 10
        })
    ));
    let too_many: Vec<u64> = (0..=CHALLENGE_CHUNKS_MAX as u64).collect();
    let big = random_bytes(31, 64 * 1024);
    assert!(matches!(
        prove(&big, &too_many),
        Err(ProofError::TooManyChunks { .. })
    ));
    // A proof for chunks [1, 2] does not verify a challenge of [1].
    let proof = prove(&shard, &[1, 2]).unwrap();
    assert!(matches!(
        proof.verify(&root_of(&shard), shard_len, &[1]),
        Err(ProofError::ShapeMismatch { what: "chunks", .. })
    ));
}

#[test]
fn corrupt_local_copy_is_reported_by_the_outboard_prover() {
    let shard = random_bytes(40, 100 * 1024);
    let shard_len = shard.len() as u64;
    let root = root_of(&shard);
    let mut outboard_file = Vec::new();
    outboard(&shard[..], shard_len, &mut outboard_file).unwrap();
    let chunks = [3u64];
    // A flipped byte in the challenged chunk, in a sibling subtree's data, or in the outboard.
    let mut bad_chunk = shard.clone();
    bad_chunk[3 * 1024 + 5] ^= 1;
    let mut bad_group = shard.clone();
    bad_group[5 * 1024] ^= 1;
    let mut bad_outboard = outboard_file.clone();
    bad_outboard[40] ^= 1;
    for (shard, outboard_file) in [
        (&bad_chunk, &outboard_file),
        (&bad_group, &outboard_file),
        (&shard, &bad_outboard),
    ] {
        assert!(matches!(
            prove_from_outboard(shard, outboard_file, shard_len, &root, &chunks),
            Err(ProofError::LocalCopyCorrupt)
        ));
    }
    // A truncated outboard is an I/O error, not a panic.
    assert!(matches!(
        prove_from_outboard(&shard, &outboard_file[..64], shard_len, &root, &[90]),
        Err(ProofError::Io {
            what: "outboard",
            ..
        })
    ));
}

#[test]
fn outboard_rejects_a_wrong_length() {
    let shard = random_bytes(50, 40_000);
    let mut sink = Vec::new();
    assert!(matches!(
        outboard(&shard[..], 40_001, &mut sink),
        Err(ProofError::ShardLengthMismatch {
            expected: 40_001,
            found: 40_000
        })
    ));
    assert!(matches!(
        outboard(&shard[..], 39_999, &mut sink),
        Err(ProofError::ShardLengthMismatch {
            expected: 39_999,
            ..
        })
    ));
}

#[test]
fn outboard_proving_works_from_a_file() {
    let directory = tempfile::tempdir().unwrap();
    let shard = random_bytes(60, 300 * 1024 + 1);
    let shard_len = shard.len() as u64;
    let shard_path = directory.path().join("shard");
    let outboard_path = directory.path().join("shard.outboard");
    std::fs::write(&shard_path, &shard).unwrap();
    let mut outboard_file = std::fs::File::create(&outboard_path).unwrap();
    let root = outboard(
        std::fs::File::open(&shard_path).unwrap(),
        shard_len,
        &mut outboard_file,
    )
    .unwrap();
    drop(outboard_file);
    let shard_file = std::fs::File::open(&shard_path).unwrap();
    let outboard_file = std::fs::File::open(&outboard_path).unwrap();
    let chunks = challenge_chunks([4; 32], 1, 2, shard_len, 4);
    let proof =
        prove_from_outboard(&shard_file, &outboard_file, shard_len, &root, &chunks).unwrap();
    assert_eq!(proof, prove(&shard, &chunks).unwrap());
}

#[test]
fn one_chunk_proof_sizes() {
    // Sizes follow from the tree depth alone, so they are checked without building large shards.
    let gib = 1u64 << 30;
    let chunks = challenge_chunks([0; 32], 0, 0, gib, 1);
    let bytes = storage_proof_bytes(gib, &chunks).unwrap();
    assert_eq!(bytes, 3 + 2 + 1024 + 2 + 20 * 32);
    assert!(bytes <= PROOF_BUDGET_BYTES);
}

/// Whatever a ledger asks (`challenges_per_deal` up to the most a challenge may name), the proof of a
/// shard of any size fits the transaction budget: large shards get fewer chunks, never a proof an
/// honest provider cannot send.
#[test]
fn every_challenge_proof_fits_the_transaction_budget() {
    let mut shard_lengths = vec![0u64, 1, 1024, 1025, 16 * 1024, 100_000];
    shard_lengths.extend((10..=40).map(|power| 1u64 << power));
    shard_lengths.extend((10..40).map(|power| (1u64 << power) + 1));
    for shard_len in shard_lengths {
        let fitting = challenge_chunks_fitting(shard_len);
        assert!(fitting >= 1);
        for count in [1, 2, 3, 4, 8, CHALLENGE_CHUNKS_MAX] {
            for seed in 0..8u8 {
                let chunks = challenge_chunks([seed; 32], 7, 3, shard_len, count);
                let bytes = storage_proof_bytes(shard_len, &chunks).unwrap();
                assert!(
                    bytes <= PROOF_BUDGET_BYTES,
                    "{shard_len} bytes, {count} asked, {} drawn: {bytes} bytes",
                    chunks.len()
                );
            }
        }
    }
    // Small shards still get several chunks; a 1 GiB shard one.
    assert!(challenge_chunks_fitting(1 << 20) >= 2);
    assert_eq!(challenge_chunks_fitting(1 << 30), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_lengths_and_chunks_round_trip(
        len in 0usize..300_000,
        seed in any::<u64>(),
        picks in proptest::collection::vec(any::<u64>(), 1..8),
    ) {
        let shard = random_bytes(seed, len);
        let shard_len = len as u64;
        let root = root_of(&shard);
        let total = chunk_count(shard_len);
        let mut chunks: Vec<u64> = picks.iter().map(|pick| pick % total).collect();
        chunks.sort_unstable();
        chunks.dedup();
        let proof = prove(&shard, &chunks).unwrap();
        let decoded = StorageProof::decode(&proof.encode()).unwrap();
        prop_assert!(decoded.verify(&root, shard_len, &chunks).is_ok());
        let mut outboard_file = Vec::new();
        prop_assert_eq!(outboard(&shard[..], shard_len, &mut outboard_file).unwrap(), root);
        let from_disk = prove_from_outboard(&shard, &outboard_file, shard_len, &root, &chunks).unwrap();
        prop_assert_eq!(from_disk, proof);
    }

    #[test]
    fn arbitrary_bytes_never_verify_or_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let shard = random_bytes(1, 5000);
        let root = root_of(&shard);
        if let Ok(proof) = StorageProof::decode(&bytes) {
            prop_assert!(proof.verify(&root, 5000, &[2]).is_err());
        }
    }
}
