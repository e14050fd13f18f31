//! Ingest → shards → reassemble, across sizes, ciphers, lost and corrupt shards, wrong keys, and the
//! repository's own data files.

use std::path::PathBuf;

use proptest::prelude::*;
use tributary_store::manifest::ManifestError;
use tributary_store::{
    CipherKind, ContentHash, DataKey, IngestOptions, Ingested, Manifest, ShardCheck, StoreError,
    ingest, ingest_bytes, reassemble, reassemble_to,
};

mod common;

use common::random_bytes;

/// Wraps arbitrary bytes as a structurally valid Parquet file (magic, body, footer length, magic).
fn parquet_like(body: &[u8]) -> Vec<u8> {
    let mut file = b"PAR1".to_vec();
    file.extend_from_slice(body);
    file.push(0);
    file.extend_from_slice(&(body.len() as u32 + 1).to_le_bytes());
    file.extend_from_slice(b"PAR1");
    file
}

fn all_present(ingested: &Ingested) -> Vec<Option<Vec<u8>>> {
    ingested.shard_vecs().into_iter().map(Some).collect()
}

fn options(k: usize, m: usize, cipher: CipherKind) -> IngestOptions {
    IngestOptions {
        data_shards: k,
        parity_shards: m,
        cipher: Some(cipher),
    }
}

#[test]
fn sizes_round_trip_with_both_ciphers() {
    // Exactly one stripe with k = 4: one chunk of 4096 bytes = 4 pieces of 1024 (the tag is in the
    // manifest, so the stream is as long as the file).
    let one_stripe_body = 4096 - 12 - 1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.jsonl", Vec::new()),
        ("one.jsonl", b"7".to_vec()),
        (
            "stripe.parquet",
            parquet_like(&random_bytes(1, one_stripe_body)),
        ),
        ("small.parquet", parquet_like(&random_bytes(2, 70_000))),
        (
            "many.parquet",
            parquet_like(&random_bytes(3, 5 * 1024 * 1024 + 3)),
        ),
    ];
    for cipher in [CipherKind::Aes256Gcm, CipherKind::XChaCha20Poly1305] {
        for (name, bytes) in &cases {
            let ingested = ingest_bytes(name, bytes, &options(4, 2, cipher)).unwrap();
            let manifest = &ingested.manifest;
            manifest.validate().unwrap();
            assert_eq!(manifest.cipher, cipher);
            assert_eq!(manifest.byte_size, bytes.len() as u64);
            assert_eq!(manifest.shards.len(), 6);
            if *name == "stripe.parquet" {
                assert_eq!(manifest.stripe_count(), 1, "{name}");
                assert_eq!(manifest.byte_size, manifest.stripe_bytes, "{name}");
            }
            if *name == "many.parquet" {
                assert!(manifest.stripe_count() > 4 && manifest.chunks.len() > 1);
            }
            for (shard, entry) in ingested.shards().zip(&manifest.shards) {
                assert_eq!(*blake3::hash(&shard.to_vec()).as_bytes(), entry.root.0);
                assert_eq!(shard.root(), entry.root);
                let mut read = Vec::new();
                std::io::Read::read_to_end(&mut shard.reader(), &mut read).unwrap();
                assert!(read == shard.to_vec(), "{name}: a shard reads as it copies");
            }
            let back = reassemble(manifest, &ingested.key, &all_present(&ingested)).unwrap();
            assert_eq!(&back, bytes, "{name} with {cipher:?}");
            // Through JSON, as a licensee would receive the manifest.
            let parsed = Manifest::from_json(&manifest.to_json().unwrap()).unwrap();
            assert_eq!(&parsed, manifest);
        }
    }
}

#[test]
fn any_two_of_six_shards_may_be_lost() {
    let bytes = parquet_like(&random_bytes(4, 3 * 1024 * 1024 + 17));
    let ingested = ingest_bytes("lossy.parquet", &bytes, &IngestOptions::new(4, 2)).unwrap();
    let mut combinations = 0;
    for first in 0..6 {
        for second in first..6 {
            let mut shards = all_present(&ingested);
            shards[first] = None;
            shards[second] = None;
            let back = reassemble(&ingested.manifest, &ingested.key, &shards).unwrap();
            assert_eq!(back, bytes, "lost {first} and {second}");
            combinations += 1;
        }
    }
    assert_eq!(combinations, 21);
    // Three lost is too many.
    let mut shards = all_present(&ingested);
    for index in [0, 3, 5] {
        shards[index] = None;
    }
    assert!(matches!(
        reassemble(&ingested.manifest, &ingested.key, &shards),
        Err(StoreError::NotEnoughShards {
            present: 3,
            needed: 4
        })
    ));
}

#[test]
fn shards_verified_by_the_caller_are_not_hashed_again_but_corruption_still_fails() {
    let bytes = parquet_like(&random_bytes(6, 2 * 1024 * 1024 + 5));
    let ingested = ingest_bytes("trusted.parquet", &bytes, &IngestOptions::new(4, 2)).unwrap();
    let reassembled = |shards: &[Option<Vec<u8>>]| {
        reassemble_to(
            &ingested.manifest,
            &ingested.key,
            shards,
            ShardCheck::VerifiedByCaller,
            "output",
            Vec::new(),
        )
    };
    // A data shard missing: rebuilt from parity.
    let mut shards = all_present(&ingested);
    shards[2] = None;
    assert_eq!(reassembled(&shards).unwrap(), bytes);
    // A shard of the wrong length is named without hashing.
    let mut shards = all_present(&ingested);
    shards[1].as_mut().unwrap().pop();
    assert!(matches!(
        reassembled(&shards),
        Err(StoreError::CorruptShards { indices }) if indices == vec![1]
    ));
    // A flipped byte the caller failed to catch is still refused (a chunk's tag fails).
    let mut shards = all_present(&ingested);
    shards[0].as_mut().unwrap()[100] ^= 1;
    assert!(reassembled(&shards).is_err());
}

#[test]
fn corrupt_shard_is_named_and_a_retry_without_it_succeeds() {
    let bytes = parquet_like(&random_bytes(5, 600_000));
    let ingested = ingest_bytes("corrupt.parquet", &bytes, &IngestOptions::new(4, 2)).unwrap();
    let mut shards = all_present(&ingested);
    if let Some(shard) = shards[2].as_mut() {
        shard[100] ^= 1;
    }
    if let Some(shard) = shards[5].as_mut() {
        shard.pop();
    }
    let error = reassemble(&ingested.manifest, &ingested.key, &shards).unwrap_err();
    match &error {
        StoreError::CorruptShards { indices } => assert_eq!(indices, &vec![2, 5]),
        other => panic!("expected CorruptShards, got {other}"),
    }
    assert!(error.to_string().contains("[2, 5]"), "{error}");
    shards[2] = None;
    shards[5] = None;
    assert_eq!(
        reassemble(&ingested.manifest, &ingested.key, &shards).unwrap(),
        bytes
    );
}

#[test]
fn wrong_key_or_altered_manifest_fails() {
    let bytes = parquet_like(&random_bytes(6, 100_000));
    let ingested = ingest_bytes("key.parquet", &bytes, &IngestOptions::new(3, 2)).unwrap();
    let shards = all_present(&ingested);
    let wrong = DataKey::generate().unwrap();
    assert!(matches!(
        reassemble(&ingested.manifest, &wrong, &shards),
        Err(StoreError::Decrypt { chunk: 0 })
    ));
    // Another asset id: chunks are bound to it.
    let mut manifest = ingested.manifest.clone();
    manifest.asset_id.0[0] ^= 1;
    assert!(matches!(
        reassemble(&manifest, &ingested.key, &shards),
        Err(StoreError::Decrypt { .. })
    ));
    // An altered tag: the chunk fails to open.
    let mut manifest = ingested.manifest.clone();
    manifest.chunks[0].tag.0[7] ^= 1;
    assert!(matches!(
        reassemble(&manifest, &ingested.key, &shards),
        Err(StoreError::Decrypt { chunk: 0 })
    ));
    // The other cipher than the one recorded.
    let mut manifest = ingested.manifest.clone();
    manifest.cipher = match manifest.cipher {
        CipherKind::Aes256Gcm => CipherKind::XChaCha20Poly1305,
        CipherKind::XChaCha20Poly1305 => CipherKind::Aes256Gcm,
    };
    assert!(reassemble(&manifest, &ingested.key, &shards).is_err());
    // A wrong slot count.
    assert!(matches!(
        reassemble(&ingested.manifest, &ingested.key, &shards[..4]),
        Err(StoreError::ShardSlotCount {
            expected: 5,
            found: 4
        })
    ));
}

#[test]
fn manifest_validation_names_the_problem() {
    let bytes = parquet_like(&random_bytes(7, 2 * 1024 * 1024));
    let ingested = ingest_bytes("m.parquet", &bytes, &IngestOptions::new(4, 2)).unwrap();
    let good = ingested.manifest;
    assert!(good.chunks.len() >= 2);
    let check = |edit: &dyn Fn(&mut Manifest)| {
        let mut manifest = good.clone();
        edit(&mut manifest);
        manifest.validate().unwrap_err()
    };
    assert!(matches!(
        check(&|m| m.version = 1),
        ManifestError::Version { found: 1, .. }
    ));
    assert!(matches!(
        check(&|m| m.chunks[1].plaintext_offset += 1),
        ManifestError::ChunkOffset { chunk: 1, .. }
    ));
    assert!(matches!(
        check(&|m| m.byte_size += 1),
        ManifestError::ChunksTotal { .. }
    ));
    assert!(matches!(
        check(&|m| m.shards[3].byte_size -= 64),
        ManifestError::ShardSize { index: 3, .. }
    ));
    assert!(matches!(
        check(&|m| m.shards[2].index = 7),
        ManifestError::ShardIndex {
            position: 2,
            found: 7
        }
    ));
    assert!(matches!(
        check(&|m| {
            m.shards.pop();
        }),
        ManifestError::ShardCount {
            expected: 6,
            found: 5
        }
    ));
    assert!(matches!(
        check(&|m| m.parity_shards = 30),
        ManifestError::OutOfRange {
            what: "data_shards + parity_shards",
            ..
        }
    ));
    assert!(matches!(
        check(&|m| m.parity_shards = 0),
        ManifestError::OutOfRange {
            what: "parity_shards",
            ..
        }
    ));
    assert!(matches!(
        check(&|m| m.stripe_bytes += 4),
        ManifestError::StripeGeometry { .. }
    ));
    let message = check(&|m| m.chunks[1].plaintext_offset += 1).to_string();
    assert!(message.contains("chunk 1"), "{message}");

    // Untrusted JSON: unknown fields, bad hex, and oversize text are refused.
    let json = good.to_json().unwrap();
    assert!(Manifest::from_json(&json.replacen('{', "{\"extra\":1,", 1)).is_err());
    let bad_hex = json.replacen(&good.asset_id.to_hex(), &"G".repeat(64), 1);
    assert!(Manifest::from_json(&bad_hex).is_err());
    let huge = " ".repeat(tributary_store::limits::MANIFEST_BYTES_MAX + 1);
    assert!(matches!(
        Manifest::from_json(&huge),
        Err(ManifestError::TooLarge { .. })
    ));
}

#[test]
fn format_checks_run_before_storing() {
    let error = ingest_bytes(
        "table.csv",
        b"a,b,c\n1,2,3\n4,5\n",
        &IngestOptions::new(2, 1),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::CsvRaggedRow {
                line: 3,
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().starts_with("table.csv: line 3"),
        "{error}"
    );
    let error = ingest_bytes("photo.png", b"\x89PNG", &IngestOptions::new(2, 1)).unwrap_err();
    assert!(matches!(error, StoreError::UnsupportedFormat { .. }));
    assert!(error.to_string().contains("photo.png"), "{error}");
    assert!(matches!(
        ingest_bytes("x.jsonl", b"{}\nnot json\n", &IngestOptions::new(2, 1)),
        Err(StoreError::JsonLineMalformed { line: 2, .. })
    ));
    assert!(matches!(
        ingest_bytes("x.jsonl", b"{}", &IngestOptions::new(0, 1)),
        Err(StoreError::InvalidOption { .. })
    ));
    assert!(matches!(
        ingest_bytes("x.jsonl", b"{}", &IngestOptions::new(30, 3)),
        Err(StoreError::InvalidOption { .. })
    ));
}

#[test]
fn repository_data_files_round_trip() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let mut files = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|extension| extension.to_str()) != Some("csv") {
            continue;
        }
        let ingested = ingest(&path, &IngestOptions::new(4, 2)).unwrap();
        assert_eq!(ingested.manifest.format, tributary_store::DataFormat::Csv);
        let original = std::fs::read(&path).unwrap();
        assert_eq!(
            ingested.manifest.asset_id.0,
            *blake3::hash(&original).as_bytes()
        );
        let mut shards = all_present(&ingested);
        shards[1] = None;
        shards[4] = None;
        let mut written = Vec::new();
        reassemble_to(
            &ingested.manifest,
            &ingested.key,
            &shards,
            ShardCheck::Hash,
            "output",
            &mut written,
        )
        .unwrap();
        assert_eq!(written, original, "{}", path.display());
        files += 1;
    }
    assert!(files >= 1, "no CSV files in {}", data.display());
    assert!(matches!(
        ingest(&data.join("missing.csv"), &IngestOptions::new(4, 2)),
        Err(StoreError::Io { .. })
    ));
}

/// A folder of the repository's CSV files is one asset: ingested as its bundle, rebuilt from any
/// four shards and unpacked into the same files.
#[test]
fn a_folder_round_trips_as_one_asset() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let folder = tempfile::tempdir().unwrap();
    std::fs::create_dir(folder.path().join("more")).unwrap();
    std::fs::copy(data.join("iris.csv"), folder.path().join("iris.csv")).unwrap();
    std::fs::copy(data.join("wine.csv"), folder.path().join("more/wine.csv")).unwrap();
    let ingested = ingest(folder.path(), &IngestOptions::new(4, 2)).unwrap();
    assert_eq!(
        ingested.manifest.format,
        tributary_store::DataFormat::Folder
    );
    let bundle = tributary_store::folder::bundle(folder.path(), 0).unwrap();
    assert_eq!(
        ingested.manifest.asset_id.0,
        *blake3::hash(&bundle).as_bytes()
    );
    let mut shards = all_present(&ingested);
    shards[0] = None;
    shards[3] = None;
    let rebuilt = tributary_store::reassemble(&ingested.manifest, &ingested.key, &shards).unwrap();
    assert_eq!(rebuilt, bundle);
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join("bundle"), &rebuilt).unwrap();
    let out = scratch.path().join("out");
    tributary_store::folder::unpack(&scratch.path().join("bundle"), &out).unwrap();
    for path in ["iris.csv", "more/wine.csv"] {
        assert_eq!(
            std::fs::read(out.join(path)).unwrap(),
            std::fs::read(folder.path().join(path)).unwrap(),
            "{path}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn reassemble_inverts_ingest(
        len in 0usize..400_000,
        seed in any::<u64>(),
        k in 1usize..=8,
        m in 1usize..=4,
        lost in proptest::collection::vec(any::<usize>(), 0..4),
        xchacha in any::<bool>(),
    ) {
        let bytes = parquet_like(&random_bytes(seed, len));
        let cipher = if xchacha { CipherKind::XChaCha20Poly1305 } else { CipherKind::Aes256Gcm };
        let ingested = ingest_bytes("p.parquet", &bytes, &options(k, m, cipher)).unwrap();
        let mut shards = all_present(&ingested);
        for pick in lost.iter().take(m) {
            shards[pick % (k + m)] = None;
        }
        let back = reassemble(&ingested.manifest, &ingested.key, &shards).unwrap();
        prop_assert_eq!(back, bytes);
    }
}

#[test]
fn erasure_encode_lays_out_columns_and_checks_geometry() {
    use tributary_store::erasure;
    let stream = random_bytes(8, 3 * 4096 + 100);
    let shards = erasure::encode(&stream, 3, 2, 3 * 1024).unwrap();
    assert_eq!(shards.len(), 5);
    // Five stripes of 3 KiB, the last one zero-padded.
    assert!(shards.iter().all(|shard| shard.len() == 5 * 1024));
    assert!(shards[2][4 * 1024..].iter().all(|&byte| byte == 0));
    // A manifest-free check of the layout: data shard j is piece j of every stripe.
    assert_eq!(&shards[1][..1024], &stream[1024..2048]);
    assert_eq!(&shards[0][1024..2048], &stream[3072..4096]);
    assert!(erasure::encode(&stream, 3, 2, 3 * 1000).is_err());
    assert!(erasure::encode(&stream, 0, 2, 1024).is_err());
}

#[test]
fn parity_and_roots_of_a_padded_stream_match_whole_shards() {
    use tributary_store::erasure;
    // Pieces of 1 KiB over five stripes (roots merged from the pieces' values as each stripe is
    // coded), of 1 KiB over one stripe and of 960 bytes (roots hashed after): every root is the
    // BLAKE3 hash of the whole shard, and the parity is what `encode` gives.
    for (piece_bytes, stripes) in [(1024, 5), (1024, 1), (960, 5), (4096, 9)] {
        let (k, m) = (3, 2);
        let stream = random_bytes(9, k * piece_bytes * stripes);
        let shards = erasure::encode(&stream, k, m, (k * piece_bytes) as u64).unwrap();
        let (parity, roots) = erasure::encode_parity_and_roots(&stream, k, m, piece_bytes).unwrap();
        assert_eq!(parity, shards[k..], "{piece_bytes} × {stripes}");
        let expected: Vec<ContentHash> =
            shards.iter().map(|shard| ContentHash::of(shard)).collect();
        assert_eq!(roots, expected, "{piece_bytes} × {stripes}");
        assert_eq!(
            erasure::encode_parity(&stream, k, m, piece_bytes).unwrap(),
            parity
        );
    }
    // A stream that is not whole stripes, or a bad geometry, is refused.
    let stream = random_bytes(10, 3 * 1024 + 1);
    assert!(erasure::encode_parity_and_roots(&stream, 3, 2, 1024).is_err());
    assert!(erasure::encode_parity(&stream[..3072], 3, 2, 1000).is_err());
    assert!(erasure::encode_parity(&stream[..3072], 3, 0, 1024).is_err());
    let (parity, roots) = erasure::encode_parity_and_roots(&[], 3, 2, 1024).unwrap();
    assert!(parity.iter().all(Vec::is_empty));
    assert!(roots.iter().all(|root| *root == ContentHash::of(&[])));
}
