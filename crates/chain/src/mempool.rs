//! The mempool: admitted transactions waiting for a block.
//!
//! Transactions are kept in arrival order and indexed by `(sender, nonce)`, so a proposer takes
//! them in the order they came while respecting each sender's nonce sequence, and a replayed or
//! duplicate transaction is refused at admission. A transaction leaves the mempool when a block
//! that includes it is finalized, or when it can no longer execute (its nonce is used, or its
//! sender can no longer pay its fee).
//! Its size is capped by [`tributary_types::limits::MEMPOOL_TRANSACTIONS_MAX`].

use std::collections::BTreeMap;
use tributary_types::{Address, SignedTransaction, TxHash, limits};

/// Why the mempool refused a transaction.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MempoolError {
    /// The same transaction is already waiting.
    #[error("transaction {0} is already pending")]
    Duplicate(TxHash),
    /// Another transaction with this sender and nonce is already waiting.
    #[error("another transaction from this sender with nonce {0} is already pending")]
    NonceTaken(u64),
    /// The mempool is full.
    #[error("the mempool is full ({0} transactions); retry later")]
    Full(usize),
}

/// Admitted, not yet finalized transactions.
#[derive(Default, Debug)]
pub struct Mempool {
    next_sequence: u64,
    by_sequence: BTreeMap<u64, (TxHash, SignedTransaction)>,
    by_hash: BTreeMap<TxHash, u64>,
    by_sender: BTreeMap<(Address, u64), u64>,
}

impl Mempool {
    /// Number of waiting transactions.
    pub fn len(&self) -> usize {
        self.by_sequence.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.by_sequence.is_empty()
    }

    /// Whether a transaction is waiting.
    pub fn contains(&self, hash: &TxHash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// How many transactions from `sender` with a nonce at or above `from_nonce` are waiting.
    pub fn pending_from(&self, sender: &Address, from_nonce: u64) -> u64 {
        self.by_sender
            .range((*sender, from_nonce)..=(*sender, u64::MAX))
            .count() as u64
    }

    /// Adds an admitted transaction.
    pub fn insert(
        &mut self,
        hash: TxHash,
        transaction: SignedTransaction,
    ) -> Result<(), MempoolError> {
        if self.by_hash.contains_key(&hash) {
            return Err(MempoolError::Duplicate(hash));
        }
        let key = (
            transaction.transaction.sender,
            transaction.transaction.nonce,
        );
        if self.by_sender.contains_key(&key) {
            return Err(MempoolError::NonceTaken(key.1));
        }
        if self.by_sequence.len() >= limits::MEMPOOL_TRANSACTIONS_MAX {
            return Err(MempoolError::Full(self.by_sequence.len()));
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.by_sequence.insert(sequence, (hash, transaction));
        self.by_hash.insert(hash, sequence);
        self.by_sender.insert(key, sequence);
        Ok(())
    }

    /// Removes a transaction, if present.
    pub fn remove(&mut self, hash: &TxHash) {
        if let Some(sequence) = self.by_hash.remove(hash)
            && let Some((_, transaction)) = self.by_sequence.remove(&sequence)
        {
            self.by_sender.remove(&(
                transaction.transaction.sender,
                transaction.transaction.nonce,
            ));
        }
    }

    /// Keeps only the transactions `keep` accepts.
    pub fn retain(&mut self, keep: impl Fn(&SignedTransaction) -> bool) {
        let dropped: Vec<TxHash> = self
            .by_sequence
            .values()
            .filter(|(_, tx)| !keep(tx))
            .map(|(hash, _)| *hash)
            .collect();
        for hash in dropped {
            self.remove(&hash);
        }
    }

    /// Waiting transactions in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&TxHash, &SignedTransaction)> {
        self.by_sequence.values().map(|(hash, tx)| (hash, tx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::{Signer, ed25519};
    use tributary_types::{Call, Transaction};

    fn transaction(seed: u64, nonce: u64) -> (TxHash, SignedTransaction) {
        let key = ed25519::PrivateKey::from_seed(seed);
        let sender = Address::from_public_key(&key.public_key());
        let signed = SignedTransaction::sign(
            &key,
            Transaction {
                chain_id: "test".into(),
                sender,
                nonce,
                fee: 1,
                call: Call::Transfer {
                    to: sender,
                    amount: 1,
                },
            },
        );
        (signed.hash(), signed)
    }

    #[test]
    fn refuses_duplicates_and_taken_nonces() {
        let mut mempool = Mempool::default();
        let (hash, tx) = transaction(1, 0);
        mempool.insert(hash, tx.clone()).unwrap();
        assert_eq!(mempool.insert(hash, tx), Err(MempoolError::Duplicate(hash)));
        let mut other = transaction(1, 0).1;
        other.transaction.fee = 2;
        assert_eq!(
            mempool.insert(other.hash(), other),
            Err(MempoolError::NonceTaken(0))
        );
        assert_eq!(mempool.len(), 1);
    }

    #[test]
    fn counts_pending_per_sender_and_prunes_stale() {
        let mut mempool = Mempool::default();
        for nonce in 0..3 {
            let (hash, tx) = transaction(1, nonce);
            mempool.insert(hash, tx).unwrap();
        }
        let (hash, tx) = transaction(2, 0);
        mempool.insert(hash, tx.clone()).unwrap();
        let sender = tx.transaction.sender;
        let first = transaction(1, 0).1.transaction.sender;
        assert_eq!(mempool.pending_from(&first, 0), 3);
        assert_eq!(mempool.pending_from(&first, 2), 1);
        assert_eq!(mempool.pending_from(&sender, 0), 1);
        // Sender 1's finalized nonce is now 2: its nonces 0 and 1 can never execute.
        mempool.retain(|tx| tx.transaction.sender != first || tx.transaction.nonce >= 2);
        assert_eq!(mempool.len(), 2);
        assert_eq!(mempool.pending_from(&first, 0), 1);
        mempool.remove(&hash);
        assert_eq!(mempool.pending_from(&sender, 0), 0);
        let order: Vec<u64> = mempool.iter().map(|(_, tx)| tx.transaction.nonce).collect();
        assert_eq!(order, vec![2]);
    }
}
