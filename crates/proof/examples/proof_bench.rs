//! Proof size and timings for one challenged chunk of a large shard.
//!
//! ```text
//! cargo run --release -p tributary-proof --example proof_bench -- [SHARD_MIB, default 1024]
//! ```
//!
//! Generates the shard in memory (pseudo-random bytes), then reports: the root (`blake3::hash`), building
//! the outboard, proving from memory (hashes the whole shard), proving from the outboard, verifying.
//! Benchmarks are named `proof::operation/parameter=value`.

use std::time::{Duration, Instant};

use tributary_proof::{
    StorageProof, challenge_chunks, outboard, outboard_bytes, prove, prove_from_outboard,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shard_mib: u64 = match std::env::args().nth(1) {
        Some(argument) => argument.parse()?,
        None => 1024,
    };
    let shard_len = shard_mib << 20;
    let mut shard = vec![0u8; shard_len as usize];
    blake3::Hasher::new()
        .update(b"proof bench")
        .finalize_xof()
        .fill(&mut shard);
    let parameter = format!("shard_mib={shard_mib}");

    let started = Instant::now();
    let root = *blake3::hash(&shard).as_bytes();
    report(
        "proof::root",
        &parameter,
        started.elapsed(),
        Some(shard_len),
    );

    let started = Instant::now();
    let mut outboard_file = Vec::with_capacity(outboard_bytes(shard_len) as usize);
    let outboard_root = outboard(&shard[..], shard_len, &mut outboard_file)?;
    report(
        "proof::outboard",
        &parameter,
        started.elapsed(),
        Some(shard_len),
    );
    assert_eq!(outboard_root, root);
    println!("outboard size: {} bytes", outboard_file.len());

    let chunks = challenge_chunks([7; 32], 1, 1, shard_len, 1);
    let started = Instant::now();
    let proof = prove(&shard, &chunks)?;
    report(
        "proof::prove_memory",
        &parameter,
        started.elapsed(),
        Some(shard_len),
    );

    let iterations = 20u32;
    let started = Instant::now();
    for epoch in 0..iterations {
        let chunks = challenge_chunks([7; 32], 1, u64::from(epoch), shard_len, 1);
        prove_from_outboard(&shard, &outboard_file, shard_len, &root, &chunks)?;
    }
    report(
        "proof::prove_outboard",
        &parameter,
        started.elapsed() / iterations,
        None,
    );

    let bytes = proof.encode();
    let iterations = 10_000u32;
    let started = Instant::now();
    for _ in 0..iterations {
        StorageProof::decode(&bytes)?.verify(&root, shard_len, &chunks)?;
    }
    report(
        "proof::decode_verify",
        &parameter,
        started.elapsed() / iterations,
        None,
    );
    println!(
        "proof of one chunk: {} bytes ({} siblings)",
        bytes.len(),
        proof.sibling_count()
    );
    Ok(())
}

fn report(name: &str, parameter: &str, elapsed: Duration, bytes: Option<u64>) {
    let rate = bytes
        .map(|bytes| format!("  {:8.0} MB/s", bytes as f64 / elapsed.as_secs_f64() / 1e6))
        .unwrap_or_default();
    println!("{name}/{parameter}: {:>12.3?}{rate}", elapsed);
}
