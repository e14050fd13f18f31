//! The on-disk shard store: durability rules, verification on read and write, crash leftovers, locking,
//! and proofs of storage from disk.

use tributary_proof::{StorageProof, challenge_chunks};
use tributary_store::{ContentHash, ShardStore, StoreError};

mod common;

use common::random_bytes;

#[test]
fn put_get_list_delete() {
    let directory = tempfile::tempdir().unwrap();
    let store = ShardStore::open(directory.path()).unwrap();
    let asset = ContentHash::of(b"asset");
    let shard = random_bytes(1, 50_000);
    let root = ContentHash::of(&shard);
    store.put(&asset, 3, &shard, &root).unwrap();
    store.put(&asset, 0, &[], &ContentHash::of(&[])).unwrap();
    assert_eq!(store.get(&asset, 3, &root).unwrap(), Some(shard.clone()));
    assert_eq!(store.get(&asset, 9, &root).unwrap(), None);
    assert_eq!(store.list().unwrap(), vec![(asset, 0), (asset, 3)]);
    // Reading under another root is refused.
    assert!(matches!(
        store.get(&asset, 3, &ContentHash::of(b"other")),
        Err(StoreError::ShardRootMismatch { index: 3, .. })
    ));
    assert!(store.delete(&asset, 3).unwrap());
    assert!(!store.delete(&asset, 3).unwrap());
    assert!(store.delete(&asset, 0).unwrap());
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn put_refuses_bytes_that_do_not_match_the_root() {
    let directory = tempfile::tempdir().unwrap();
    let store = ShardStore::open(directory.path()).unwrap();
    let asset = ContentHash::of(b"asset");
    let shard = random_bytes(2, 1000);
    let error = store
        .put(&asset, 1, &shard, &ContentHash::of(b"not it"))
        .unwrap_err();
    assert!(matches!(
        error,
        StoreError::ShardRootMismatch { index: 1, .. }
    ));
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn crash_leftovers_are_invisible_and_cleaned_on_open() {
    let directory = tempfile::tempdir().unwrap();
    let asset = ContentHash::of(b"asset");
    let shard = random_bytes(3, 10_000);
    let root = ContentHash::of(&shard);
    {
        let store = ShardStore::open(directory.path()).unwrap();
        store.put(&asset, 0, &shard, &root).unwrap();
    }
    // A write interrupted by a crash: a half-written temporary file.
    let asset_directory = directory.path().join(asset.to_hex());
    let leftover = asset_directory.join(".tmp-1.shard.999.0");
    std::fs::write(&leftover, &shard[..5000]).unwrap();
    let store = ShardStore::open(directory.path()).unwrap();
    assert!(!leftover.exists());
    assert_eq!(store.list().unwrap(), vec![(asset, 0)]);
    assert_eq!(store.get(&asset, 0, &root).unwrap(), Some(shard));
}

#[test]
fn one_process_at_a_time() {
    let directory = tempfile::tempdir().unwrap();
    let store = ShardStore::open(directory.path()).unwrap();
    assert!(matches!(
        ShardStore::open(directory.path()),
        Err(StoreError::StoreLocked { .. })
    ));
    drop(store);
    ShardStore::open(directory.path()).unwrap();
}

#[test]
fn proves_from_disk_and_repairs_a_stale_outboard() {
    let directory = tempfile::tempdir().unwrap();
    let store = ShardStore::open(directory.path()).unwrap();
    let asset = ContentHash::of(b"asset");
    let shard = random_bytes(4, 700_000 + 5);
    let root = ContentHash::of(&shard);
    store.put(&asset, 2, &shard, &root).unwrap();
    let chunks = challenge_chunks([8; 32], 1, 1, shard.len() as u64, 3);
    let proof = store.prove(&asset, 2, &root, &chunks).unwrap();
    let decoded = StorageProof::decode(&proof.encode()).unwrap();
    decoded
        .verify(&root.0, shard.len() as u64, &chunks)
        .unwrap();

    // A damaged outboard is rebuilt from the shard.
    let outboard_path = directory.path().join(asset.to_hex()).join("2.outboard");
    let mut outboard = std::fs::read(&outboard_path).unwrap();
    outboard[0] ^= 1;
    std::fs::write(&outboard_path, &outboard).unwrap();
    assert_eq!(store.prove(&asset, 2, &root, &chunks).unwrap(), proof);
    assert_ne!(std::fs::read(&outboard_path).unwrap(), outboard);
    // So is a missing one.
    std::fs::remove_file(&outboard_path).unwrap();
    assert_eq!(store.prove(&asset, 2, &root, &chunks).unwrap(), proof);

    // A damaged shard is reported.
    let shard_path = directory.path().join(asset.to_hex()).join("2.shard");
    let mut damaged = shard.clone();
    damaged[chunks[0] as usize * 1024] ^= 1;
    std::fs::write(&shard_path, &damaged).unwrap();
    assert!(matches!(
        store.prove(&asset, 2, &root, &chunks),
        Err(StoreError::ShardRootMismatch { index: 2, .. })
    ));
}

#[test]
fn records_replace_atomically_survive_crash_leftovers_and_go_with_the_last_shard() {
    let directory = tempfile::tempdir().unwrap();
    let asset = ContentHash::of(b"asset");
    let shard = random_bytes(5, 2_000);
    let root = ContentHash::of(&shard);
    {
        let store = ShardStore::open(directory.path()).unwrap();
        store.put(&asset, 1, &shard, &root).unwrap();
        assert!(store.contains(&asset, 1).unwrap());
        assert!(!store.contains(&asset, 0).unwrap());
        assert_eq!(store.record(&asset, "envelopes").unwrap(), None);
        store.put_record(&asset, "envelopes", b"first").unwrap();
        store.put_record(&asset, "envelopes", b"second").unwrap();
        assert_eq!(
            store.record(&asset, "envelopes").unwrap(),
            Some(b"second".to_vec())
        );
        // Records are not shards.
        assert_eq!(store.list().unwrap(), vec![(asset, 1)]);
        // Names cannot leave the asset's directory or be empty.
        for bad in ["", "../escape", "UPPER", "a.b", &"x".repeat(33)] {
            assert!(matches!(
                store.put_record(&asset, bad, b""),
                Err(StoreError::InvalidOption { .. })
            ));
        }
    }
    // A crash while replacing the record leaves a temporary file: the record keeps its previous
    // content and the leftover is removed on open.
    let leftover = directory
        .path()
        .join(asset.to_hex())
        .join(".tmp-envelopes.record.999.0");
    std::fs::write(&leftover, b"thi").unwrap();
    let store = ShardStore::open(directory.path()).unwrap();
    assert!(!leftover.exists());
    assert_eq!(
        store.record(&asset, "envelopes").unwrap(),
        Some(b"second".to_vec())
    );
    // Deleting the last shard deletes the asset's records.
    assert!(store.delete(&asset, 1).unwrap());
    assert_eq!(store.record(&asset, "envelopes").unwrap(), None);
    assert!(!directory.path().join(asset.to_hex()).exists());
}
