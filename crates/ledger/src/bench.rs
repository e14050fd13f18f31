//! Throughput bench: ledger execution of transfer blocks against raw single-signature verification, both
//! on one thread, in the same run. The CLI exposes it as `tributary bench ledger`. This is the only place
//! the ledger crate reads a clock.

use crate::Ledger;
use commonware_cryptography::{Signer, Verifier, ed25519::PrivateKey};
use std::time::Instant;
use tributary_types::{
    Address, BlockInput, Call, Genesis, SignedTransaction, TRANSACTION_NAMESPACE, Transaction,
};

/// Results of [`run_transfer_bench`].
#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    /// Transactions per second through `execute_block` (signatures batch-verified), one thread.
    pub ledger_tps: f64,
    /// Single ed25519 verifications per second, one thread.
    pub single_verify_per_second: f64,
    /// `ledger_tps / single_verify_per_second`.
    pub ratio: f64,
    /// Transactions per block.
    pub transactions_per_block: usize,
    /// Blocks executed.
    pub blocks: usize,
    /// Distinct sender accounts.
    pub accounts: usize,
}

/// Pre-signs `blocks` blocks of `transactions_per_block` transfers among many accounts, then measures
/// (a) `Verifier::verify` in a loop over those signatures and (b) `execute_block` over the blocks.
pub fn run_transfer_bench(transactions_per_block: usize, blocks: usize) -> BenchReport {
    let transactions_per_block = transactions_per_block.max(1);
    let blocks = blocks.max(1);
    let accounts = transactions_per_block.clamp(2, 4_096);
    let keys: Vec<PrivateKey> = (0..accounts as u64)
        .map(|seed| PrivateKey::from_seed(seed + 1))
        .collect();
    let addresses: Vec<Address> = keys
        .iter()
        .map(|key| Address::from_public_key(&key.public_key()))
        .collect();
    let genesis = Genesis::devnet(
        "bench",
        addresses
            .iter()
            .map(|address| (*address, 1_000_000_000_000u128)),
    );
    let Ok(mut ledger) = Ledger::from_genesis(&genesis) else {
        return BenchReport {
            ledger_tps: 0.0,
            single_verify_per_second: 0.0,
            ratio: 0.0,
            transactions_per_block,
            blocks,
            accounts,
        };
    };
    let proposer = Address([0xfe; 32]);

    let mut nonces = vec![0u64; accounts];
    let mut block_inputs = Vec::with_capacity(blocks);
    let mut counter = 0usize;
    for height in 1..=blocks as u64 {
        let mut transactions = Vec::with_capacity(transactions_per_block);
        for _ in 0..transactions_per_block {
            let from = counter % accounts;
            let to = (counter * 7 + 3) % accounts;
            counter += 1;
            let transaction = Transaction {
                chain_id: "bench".into(),
                sender: addresses[from],
                nonce: nonces[from],
                fee: 1,
                call: Call::Transfer {
                    to: addresses[to],
                    amount: 10,
                },
            };
            nonces[from] += 1;
            transactions.push(SignedTransaction::sign(&keys[from], transaction));
        }
        block_inputs.push(BlockInput {
            height,
            proposer,
            transactions,
            beacon: None,
        });
    }

    // (a) Single verification rate over the same signatures (keys decoded beforehand).
    let samples: Vec<(
        commonware_cryptography::ed25519::PublicKey,
        Vec<u8>,
        &SignedTransaction,
    )> = block_inputs
        .iter()
        .flat_map(|block| block.transactions.iter())
        .take(2_000)
        .filter_map(|tx| {
            Some((
                tx.transaction.sender.public_key().ok()?,
                tx.transaction.signing_payload(),
                tx,
            ))
        })
        .collect();
    let start = Instant::now();
    let mut valid = 0usize;
    for (key, payload, tx) in &samples {
        if key.verify(TRANSACTION_NAMESPACE, payload, &tx.signature) {
            valid += 1;
        }
    }
    let single_seconds = start.elapsed().as_secs_f64();
    let single_verify_per_second = if single_seconds > 0.0 {
        valid as f64 / single_seconds
    } else {
        0.0
    };

    // (b) Ledger execution, signatures included.
    let start = Instant::now();
    let mut executed = 0usize;
    for block in &block_inputs {
        if let Ok(outcome) = ledger.execute_block(block) {
            executed += outcome.receipts.len();
        }
    }
    let ledger_seconds = start.elapsed().as_secs_f64();
    let ledger_tps = if ledger_seconds > 0.0 {
        executed as f64 / ledger_seconds
    } else {
        0.0
    };
    let ratio = if single_verify_per_second > 0.0 {
        ledger_tps / single_verify_per_second
    } else {
        0.0
    };
    BenchReport {
        ledger_tps,
        single_verify_per_second,
        ratio,
        transactions_per_block,
        blocks,
        accounts,
    }
}

/// Single-signature ed25519 verifications per second on one thread (`Verifier::verify` in a loop
/// over `samples` signed transfers), the baseline the throughput benches compare against.
pub fn single_verify_rate(samples: usize) -> f64 {
    let key = PrivateKey::from_seed(7);
    let sender = Address::from_public_key(&key.public_key());
    let signed: Vec<(Vec<u8>, SignedTransaction)> = (0..samples.max(1) as u64)
        .map(|nonce| {
            let transaction = Transaction {
                chain_id: "bench".into(),
                sender,
                nonce,
                fee: 1,
                call: Call::Transfer {
                    to: sender,
                    amount: 1,
                },
            };
            let tx = SignedTransaction::sign(&key, transaction);
            (tx.transaction.signing_payload(), tx)
        })
        .collect();
    let public_key = key.public_key();
    let start = Instant::now();
    let valid = signed
        .iter()
        .filter(|(payload, tx)| public_key.verify(TRANSACTION_NAMESPACE, payload, &tx.signature))
        .count();
    let seconds = start.elapsed().as_secs_f64();
    if seconds > 0.0 {
        valid as f64 / seconds
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    /// `cargo test --release -p tributary-ledger -- --ignored --nocapture transfer_bench`
    #[test]
    #[ignore]
    fn transfer_bench() {
        let report = super::run_transfer_bench(1_000, 20);
        println!("ledger::execute_block/transfers_per_block=1000: {report:?}");
        assert!(report.ledger_tps > 0.0);
    }

    #[test]
    fn transfer_bench_runs_small() {
        let report = super::run_transfer_bench(10, 2);
        assert!(report.ledger_tps > 0.0 && report.single_verify_per_second > 0.0);
    }
}
