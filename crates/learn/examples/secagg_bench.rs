//! Times one full SecAgg+ round (all four stages, every client and the server in one thread, in memory)
//! against a plain sum of the same vectors.
//!
//! ```text
//! CARGO_TARGET_DIR=/tmp/target-B cargo run --release -p tributary-learn --example secagg_bench
//! ```
//!
//! Vector lengths: 651 (softmax regression on 64 features × 10 classes, plus the weight element of the
//! weighted-average pattern) and 100 000. The graph is complete for 10 clients (plain Bonawitz et al.);
//! for 50 and 100 clients it has degree `k = 2·⌈log₂ n⌉` (12 and 14), the logarithmic shape SecAgg+
//! prescribes; the constant is a benchmark choice, production parameters should come from Bell et al.'s
//! bounds for the assumed dropout and corruption rates. The threshold is `t = ⌊k/2⌋ + 1`, the smallest
//! above `k/2`. No client drops out. Each figure is the median of a few repetitions.

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use tributary_learn::secagg::{ClientId, RoundConfig, RoundTag, run_round};

/// Sum modulus bits: room for 2^32 / n levels per value.
const MODULUS_BITS: u32 = 32;

/// `2·⌈log₂ n⌉`, or the complete graph's `n − 1` when that is not smaller.
fn secagg_plus_degree(clients: usize) -> usize {
    let log = usize::BITS - (clients - 1).leading_zeros();
    (2 * log as usize).min(clients - 1)
}

fn median_ms(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "{:>7} {:>8} {:>6} {:>9} {:>12} {:>10} {:>9}",
        "clients", "length", "degree", "threshold", "secagg ms", "plain ms", "ratio"
    );
    for length in [651usize, 100_000] {
        for clients in [10usize, 50, 100] {
            let degree = if clients <= 10 {
                clients - 1
            } else {
                secagg_plus_degree(clients)
            };
            let threshold = degree / 2 + 1;
            let repetitions = if length > 10_000 { 3 } else { 7 };
            let mut rng = ChaCha20Rng::seed_from_u64(clients as u64 * 1_000_003 + length as u64);
            let participants: Vec<ClientId> = (0..clients as ClientId).collect();
            let mask = (1u64 << MODULUS_BITS) - 1;
            let inputs: BTreeMap<ClientId, Vec<u64>> = participants
                .iter()
                .map(|&id| (id, (0..length).map(|_| rng.next_u64() & mask).collect()))
                .collect();
            let mut secagg = Vec::new();
            let mut plain = Vec::new();
            for repetition in 0..repetitions {
                let config = RoundConfig {
                    tag: RoundTag {
                        session: [1; 32],
                        round: repetition,
                    },
                    participants: participants.clone(),
                    threshold,
                    degree,
                    vector_length: length,
                    modulus_bits: MODULUS_BITS,
                };
                let start = Instant::now();
                let sum = run_round(
                    &config,
                    &inputs,
                    &BTreeSet::new(),
                    &BTreeSet::new(),
                    &mut rng,
                )?;
                secagg.push(start.elapsed().as_secs_f64() * 1e3);

                let start = Instant::now();
                let mut expected = vec![0u64; length];
                for vector in black_box(&inputs).values() {
                    for (total, value) in expected.iter_mut().zip(vector) {
                        *total = total.wrapping_add(*value);
                    }
                }
                for total in &mut expected {
                    *total &= mask;
                }
                black_box(&expected);
                plain.push(start.elapsed().as_secs_f64() * 1e3);
                if sum != expected {
                    return Err("secure aggregate differs from the plain sum".into());
                }
            }
            let (secagg, plain) = (median_ms(secagg), median_ms(plain));
            println!(
                "{clients:>7} {length:>8} {degree:>6} {threshold:>9} {secagg:>12.2} {plain:>10.3} {:>9.0}",
                secagg / plain
            );
        }
    }
    Ok(())
}
