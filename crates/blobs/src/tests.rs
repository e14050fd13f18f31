//! Two nodes on loopback: verified fetches, gating, size checks, corruption detected in flight.

use super::*;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn config(seed: u8) -> BlobConfig {
    BlobConfig {
        secret_key: [seed; 32],
        bind: loopback(),
        announce: Vec::new(),
    }
}

/// Allows only the listed readers.
struct Readers(Vec<[u8; 32]>);

impl Gate for Readers {
    fn allow(&self, reader: &[u8; 32], _root: &[u8; 32]) -> Result<(), String> {
        if self.0.contains(reader) {
            Ok(())
        } else {
            Err("not a reader".into())
        }
    }
}

/// A node serving bytes from memory to anyone.
fn memory_server(seed: u8) -> BlobNode {
    BlobNode::start(
        config(seed),
        Serving::Memory {
            gate: Arc::new(OpenGate),
        },
    )
    .unwrap()
}

fn pattern(length: usize) -> Vec<u8> {
    (0..length).map(|index| (index * 31 % 251) as u8).collect()
}

#[test]
fn a_served_file_is_fetched_verified_and_only_by_allowed_readers() {
    let directory = tempfile::tempdir().unwrap();
    let reader = BlobNode::start(config(2), Serving::Nothing).unwrap();
    let stranger = BlobNode::start(config(3), Serving::Nothing).unwrap();
    let provider = BlobNode::start(
        config(1),
        Serving::Files {
            directory: directory.path().join("iroh"),
            gate: Arc::new(Readers(vec![reader.id()])),
        },
    )
    .unwrap();
    // The endpoint id is the ed25519 public key of the secret.
    let expected_id = iroh::SecretKey::from_bytes(&[1; 32]).public();
    assert_eq!(provider.id(), *expected_id.as_bytes());

    let shard = pattern(1_000_003);
    let path = directory.path().join("0.shard");
    std::fs::write(&path, &shard).unwrap();
    let root = *blake3::hash(&shard).as_bytes();
    provider.serve_file(&path, &root).unwrap();
    provider.serve_file(&path, &root).unwrap(); // idempotent

    let address = provider.address();
    let fetched = reader
        .fetch_to_vec(&address, &root, shard.len() as u64)
        .unwrap();
    assert_eq!(fetched, shard);

    let refused = stranger
        .fetch_to_vec(&address, &root, shard.len() as u64)
        .unwrap_err();
    assert!(matches!(refused, BlobsError::Transfer { .. }), "{refused}");

    let wrong_size = reader
        .fetch_to_vec(&address, &root, shard.len() as u64 - 1)
        .unwrap_err();
    assert!(
        matches!(wrong_size, BlobsError::SizeMismatch { .. }),
        "{wrong_size}"
    );

    // Not the root the file hashes to: refused, nothing served under it.
    let other = [9u8; 32];
    let mismatch = provider.serve_file(&path, &other).unwrap_err();
    assert!(
        matches!(mismatch, BlobsError::RootMismatch { .. }),
        "{mismatch}"
    );
    let missing = reader.fetch_to_vec(&address, &other, 10).unwrap_err();
    assert!(!matches!(missing, BlobsError::Connect { .. }), "{missing}");
}

#[test]
fn a_file_corrupted_after_it_was_served_fails_verification_in_flight() {
    let directory = tempfile::tempdir().unwrap();
    let reader = BlobNode::start(config(5), Serving::Nothing).unwrap();
    let provider = BlobNode::start(
        config(4),
        Serving::Files {
            directory: directory.path().join("iroh"),
            gate: Arc::new(OpenGate),
        },
    )
    .unwrap();
    // Small files too: nothing is copied into the store, so what is served is what is on disk.
    for (name, length) in [("small.shard", 100usize), ("large.shard", 300_000)] {
        let shard = pattern(length);
        let path = directory.path().join(name);
        std::fs::write(&path, &shard).unwrap();
        let root = *blake3::hash(&shard).as_bytes();
        provider.serve_file(&path, &root).unwrap();
        // Rot one byte in the middle, in place.
        let mut rotten = shard.clone();
        rotten[length / 2] ^= 0xff;
        std::fs::write(&path, &rotten).unwrap();
        let mut received = Vec::new();
        let error = reader
            .fetch(
                &provider.address(),
                &root,
                shard.len() as u64,
                &mut received,
            )
            .unwrap_err();
        assert!(
            matches!(error, BlobsError::Transfer { .. }),
            "{name}: {error}"
        );
        // What did arrive is a verified prefix of the original.
        assert!(received.len() < shard.len());
        assert_eq!(received, shard[..received.len()]);
    }
}

#[test]
fn a_fetch_from_an_offset_gets_exactly_the_rest_of_the_blob() {
    let reader = BlobNode::start(config(11), Serving::Nothing).unwrap();
    let server = memory_server(12);
    // Several 16 KiB pieces and a short last one.
    let bytes = pattern(5 * 16 * 1024 + 700);
    let size = bytes.len() as u64;
    let root = server.serve_bytes(bytes.clone().into()).unwrap();
    // At the start, on a piece boundary, inside a piece, inside a 1 KiB chunk, in the last
    // piece, and at the very end.
    for offset in [0, 32 * 1024, 20_000, 16 * 1024 + 5, size - 3, size] {
        let mut sink = Vec::new();
        let stats = reader
            .fetch_from(&server.address(), &root, size, offset, &mut sink)
            .unwrap();
        assert_eq!(sink, bytes[offset as usize..], "offset {offset}");
        assert_eq!(stats.bytes, size - offset);
    }
    let error = reader
        .fetch_from(&server.address(), &root, size, size + 1, &mut Vec::new())
        .unwrap_err();
    assert!(error.to_string().contains("past the blob's end"), "{error}");
}

#[test]
fn memory_serving_and_forgetting() {
    let reader = BlobNode::start(config(7), Serving::Nothing).unwrap();
    let server = memory_server(6);
    let bytes = pattern(70_000);
    let root = server.serve_bytes(bytes.clone().into()).unwrap();
    assert_eq!(root, *blake3::hash(&bytes).as_bytes());
    let stats = {
        let mut sink = Vec::new();
        let stats = reader
            .fetch(&server.address(), &root, bytes.len() as u64, &mut sink)
            .unwrap();
        assert_eq!(sink, bytes);
        stats
    };
    assert_eq!(stats.bytes, bytes.len() as u64);
    server.forget(&root).unwrap();
    // A fetch-only node serves nothing.
    assert!(matches!(
        reader.serve_bytes(bytes.into()),
        Err(BlobsError::NotServing)
    ));
}

#[test]
fn bad_addresses_are_refused_before_dialing() {
    let node = BlobNode::start(config(8), Serving::Nothing).unwrap();
    let no_sockets = BlobAddress {
        id: hex::encode([1u8; 32]),
        addresses: Vec::new(),
    };
    assert!(matches!(
        node.fetch_to_vec(&no_sockets, &[0; 32], 1),
        Err(BlobsError::BadAddress(_))
    ));
    let bad_id = BlobAddress {
        id: "zz".into(),
        addresses: vec![loopback()],
    };
    assert!(matches!(
        node.fetch_to_vec(&bad_id, &[0; 32], 1),
        Err(BlobsError::BadAddress(_))
    ));
    let json = serde_json::to_string(&node.address()).unwrap();
    let back: BlobAddress = serde_json::from_str(&json).unwrap();
    assert_eq!(back, node.address());
}

#[test]
fn a_node_starts_and_stops_inside_another_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let node = BlobNode::start(config(10), Serving::Nothing).unwrap();
        assert_eq!(node.address().addresses.len(), 1);
        drop(node);
    });
}
