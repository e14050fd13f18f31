//! The node's view of the chain: the finalized ledger, executed-but-unfinalized forks, the mempool
//! and the finalized-history index the API reads.
//!
//! Everything here sits behind one mutex in [`ChainState`]; no lock is ever held across an
//! `.await`. The ledger is cheap to clone (persistent maps), so a fork keeps a full post-state per
//! executed block and finalization just swaps it in.

use crate::{
    block::{Block, Digest, Seed},
    mempool::{Mempool, MempoolError},
};
use commonware_consensus::Heightable;
use commonware_cryptography::Digestible;
use serde::Serialize;
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
};
use tributary_ledger::{AdmissionError, BlockError, Ledger, SignatureCheck};
use tributary_types::{
    Address, BlockInput, BlockOutcome, Receipt, SignedTransaction, TxHash, limits,
};

/// The post-state of an executed block that is not finalized yet.
#[derive(Clone)]
pub struct Fork {
    /// The block's height.
    pub height: u64,
    /// The ledger after the block.
    pub ledger: Ledger,
    /// Receipts and root the block produced.
    pub outcome: BlockOutcome,
}

/// What the API shows of a finalized block.
#[derive(Clone, Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BlockRecord {
    /// Height (genesis is 0).
    pub height: u64,
    /// Block digest, hex.
    pub hash: String,
    /// Parent digest, hex.
    pub parent: String,
    /// The proposing validator's account address.
    pub proposer: String,
    /// Consensus view the block was proposed in.
    pub view: u64,
    /// State root after the block, hex.
    pub state_root: String,
    /// Hashes of the block's transactions, in order.
    pub transactions: Vec<String>,
    /// The threshold-BLS seed of the block's finalization certificate (the chain's beacon), hex.
    pub seed: Option<String>,
}

/// A transaction's place in the chain, as the API reports it.
#[derive(Clone, Debug)]
pub enum TransactionStatus {
    /// Admitted and waiting in the mempool.
    Pending,
    /// Finalized in a block (the receipt says whether its call succeeded).
    Finalized(Receipt),
}

/// Why the node refused a submitted transaction.
/// Why a block's parent seed was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeedError {
    /// The parent is not genesis, so the block must carry the parent round's seed.
    #[error("the block carries no seed for its parent's round")]
    Missing,
    /// The parent is genesis, which has no round, yet the block carries a seed.
    #[error("the block carries a seed although its parent is genesis")]
    Unexpected,
    /// The seed is for another round than the block's parent.
    #[error("the seed is for another round than the block's parent")]
    WrongRound,
    /// The seed's threshold signature does not verify under the validator set's group key.
    #[error("the seed's signature does not verify")]
    BadSignature,
    /// The node has no validator set to check against yet.
    #[error("no validator set to check the seed against")]
    NoValidatorSet,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The ledger's admission rules refused it.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// The mempool refused it.
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    /// It is already finalized.
    #[error("transaction {0} is already finalized")]
    AlreadyFinalized(TxHash),
    /// Its misbehaviour proof does not hold.
    #[error(transparent)]
    Evidence(#[from] crate::evidence::EvidenceError),
}

impl SubmitError {
    /// A stable, machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Admission(error) => error.code(),
            Self::Mempool(MempoolError::Duplicate(_)) => "duplicate_transaction",
            Self::Mempool(MempoolError::NonceTaken(_)) => "wrong_nonce",
            Self::Mempool(MempoolError::Full(_)) => "mempool_full",
            Self::AlreadyFinalized(_) => "already_finalized",
            Self::Evidence(_) => "invalid_evidence",
        }
    }
}

/// Why a finalized block could not be applied: the local ledger diverged from consensus.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Execution failed for a block the network finalized.
    #[error("finalized block {height} does not execute locally: {reason}")]
    Execution {
        /// Height of the block.
        height: u64,
        /// What went wrong.
        reason: String,
    },
    /// Execution produced another state root than the block commits to.
    #[error("finalized block {height} commits to state root {expected} but executes to {actual}")]
    StateRoot {
        /// Height of the block.
        height: u64,
        /// Root in the block.
        expected: String,
        /// Root computed locally.
        actual: String,
    },
}

/// Shared chain state: one per node, read by the API, written by consensus callbacks.
#[derive(Clone)]
pub struct ChainState {
    inner: Arc<Mutex<Inner>>,
}

/// The state behind [`ChainState`]'s lock.
pub struct Inner {
    /// The ledger at the last finalized block.
    pub finalized: Ledger,
    /// Digest of the last finalized block.
    pub finalized_digest: Digest,
    /// Executed blocks above the finalized height, by digest.
    pub forks: BTreeMap<Digest, Fork>,
    /// Admitted transactions.
    pub mempool: Mempool,
    /// Finalized blocks by height.
    pub blocks: BTreeMap<u64, BlockRecord>,
    /// Receipts of finalized transactions.
    pub receipts: BTreeMap<TxHash, Receipt>,
    /// Proven validator faults this node saw, oldest first.
    pub evidence: std::collections::VecDeque<crate::evidence::Evidence>,
    /// The validator set's verifier, for checking misbehaviour proofs and parent seeds (set by
    /// the engine).
    pub scheme: Option<crate::application::Scheme>,
    /// Seeds of notarized or finalized rounds by view, from consensus certificates (newest
    /// [`limits::CONSENSUS_SEEDS_KEPT_MAX`] kept): what a proposer puts in its block.
    pub seeds: BTreeMap<u64, Seed>,
    /// Where transactions admitted through this node's API are sent to be gossiped to peers.
    pub gossip: Option<futures::channel::mpsc::UnboundedSender<SignedTransaction>>,
}

impl ChainState {
    /// State at genesis.
    pub fn new(genesis_ledger: Ledger, genesis: &Block) -> Self {
        let mut blocks = BTreeMap::new();
        blocks.insert(0, record(genesis, None));
        Self {
            inner: Arc::new(Mutex::new(Inner {
                finalized: genesis_ledger,
                finalized_digest: genesis.digest(),
                forks: BTreeMap::new(),
                mempool: Mempool::default(),
                blocks,
                receipts: BTreeMap::new(),
                gossip: None,
                scheme: None,
                seeds: BTreeMap::new(),
                evidence: std::collections::VecDeque::new(),
            })),
        }
    }

    /// Locks the state. A poisoned lock (a panic elsewhere) is recovered: the state is only ever
    /// mutated by whole-value swaps, so it is consistent.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets the verifier misbehaviour proofs and parent seeds are checked with.
    pub fn set_scheme(&self, scheme: crate::application::Scheme) {
        self.lock().scheme = Some(scheme);
    }

    /// Keeps the seed of a certified round (from a verified notarization or finalization).
    pub fn record_seed(&self, seed: Seed) {
        let mut inner = self.lock();
        inner.seeds.insert(seed.round.view().get(), seed);
        while inner.seeds.len() > limits::CONSENSUS_SEEDS_KEPT_MAX {
            inner.seeds.pop_first();
        }
    }

    /// The seed of the round at `view`, if a certificate for it reached this node.
    pub fn seed(&self, view: u64) -> Option<Seed> {
        self.lock().seeds.get(&view).cloned()
    }

    /// The block-validity rule for a block's parent seed: absent exactly when the parent is
    /// genesis; otherwise the threshold signature of the parent's round (the context's parent
    /// view, in the block's epoch), checked against the validator set's group key. Seeds are
    /// unique signatures, so a proposer has no choice of beacon.
    pub fn check_parent_seed(&self, block: &Block) -> Result<(), SeedError> {
        let parent_is_genesis = block.height().get() == 1;
        match (&block.parent_seed, parent_is_genesis) {
            (None, true) => Ok(()),
            (Some(_), true) => Err(SeedError::Unexpected),
            (None, false) => Err(SeedError::Missing),
            (Some(seed), false) => {
                let expected = commonware_consensus::types::Round::new(
                    block.context.round.epoch(),
                    block.context.parent.0,
                );
                if seed.round != expected {
                    return Err(SeedError::WrongRound);
                }
                let scheme = self
                    .lock()
                    .scheme
                    .clone()
                    .ok_or(SeedError::NoValidatorSet)?;
                if seed.verify(&scheme) {
                    Ok(())
                } else {
                    Err(SeedError::BadSignature)
                }
            }
        }
    }

    /// Checks every `ReportMisbehaviour` among `transactions` against the validator set: a
    /// block-validity rule (the ledger trusts it). Without a verifier (no engine yet) such a
    /// transaction is refused.
    pub fn check_misbehaviour_proofs(
        &self,
        transactions: &[SignedTransaction],
    ) -> Result<(), crate::evidence::EvidenceError> {
        let scheme = self.lock().scheme.clone();
        for transaction in transactions {
            if let tributary_types::Call::ReportMisbehaviour {
                validator,
                view,
                proof,
            } = &transaction.transaction.call
            {
                let scheme = scheme.as_ref().ok_or_else(|| {
                    crate::evidence::EvidenceError::Malformed(
                        "no validator set to check against".into(),
                    )
                })?;
                crate::evidence::verify_misbehaviour(scheme, validator, *view, proof)?;
            }
        }
        Ok(())
    }

    /// Keeps a proven fault (bounded: the oldest is dropped beyond the limit; duplicates once).
    pub fn record_evidence(&self, evidence: crate::evidence::Evidence) {
        let mut inner = self.lock();
        if inner.evidence.contains(&evidence) {
            return;
        }
        if inner.evidence.len() >= limits::EVIDENCE_RECORDS_MAX {
            inner.evidence.pop_front();
        }
        inner.evidence.push_back(evidence);
    }

    /// Sends transactions admitted through [`Self::submit`] to `gossip` for relay to peers.
    pub fn set_gossip(&self, gossip: futures::channel::mpsc::UnboundedSender<SignedTransaction>) {
        self.lock().gossip = Some(gossip);
    }

    /// Admits a transaction from a client into the mempool (after the ledger's admission checks
    /// against the finalized state plus this sender's pending transactions) and gossips it to
    /// peers, so whichever validator proposes next can include it.
    pub fn submit(&self, transaction: SignedTransaction) -> Result<TxHash, SubmitError> {
        let hash = self.admit(transaction.clone())?;
        if let Some(gossip) = &self.lock().gossip {
            let _ = gossip.unbounded_send(transaction);
        }
        Ok(hash)
    }

    /// Admits a transaction a peer gossiped; it is not relayed again (every validator is
    /// connected to every other, so the sender's broadcast already reached everyone).
    pub fn submit_from_peer(&self, transaction: SignedTransaction) -> Result<TxHash, SubmitError> {
        self.admit(transaction)
    }

    fn admit(&self, transaction: SignedTransaction) -> Result<TxHash, SubmitError> {
        self.check_misbehaviour_proofs(std::slice::from_ref(&transaction))?;
        let hash = transaction.hash();
        let mut inner = self.lock();
        if inner.receipts.contains_key(&hash) {
            return Err(SubmitError::AlreadyFinalized(hash));
        }
        if inner.mempool.contains(&hash) {
            return Err(MempoolError::Duplicate(hash).into());
        }
        let sender = transaction.transaction.sender;
        let finalized_nonce = inner.finalized.nonce(&sender);
        let expected = finalized_nonce + inner.mempool.pending_from(&sender, finalized_nonce);
        inner.finalized.check_admission(&transaction, expected)?;
        inner.mempool.insert(hash, transaction)?;
        tracing::debug!(target: "tributary::chain", %hash, %sender, "admitted transaction");
        Ok(hash)
    }

    /// The nonce `sender`'s next transaction must carry: its finalized nonce plus its
    /// transactions waiting in the mempool.
    pub fn next_nonce(&self, sender: &Address) -> u64 {
        let inner = self.lock();
        let finalized = inner.finalized.nonce(sender);
        finalized + inner.mempool.pending_from(sender, finalized)
    }

    /// Where a transaction stands, if the node knows it.
    pub fn transaction_status(&self, hash: &TxHash) -> Option<TransactionStatus> {
        let inner = self.lock();
        if let Some(receipt) = inner.receipts.get(hash) {
            return Some(TransactionStatus::Finalized(receipt.clone()));
        }
        inner
            .mempool
            .contains(hash)
            .then_some(TransactionStatus::Pending)
    }

    /// The post-state of block `digest`, if it is the finalized tip or an executed fork.
    pub fn state_of(&self, digest: &Digest) -> Option<Ledger> {
        let inner = self.lock();
        if *digest == inner.finalized_digest {
            return Some(inner.finalized.clone());
        }
        inner.forks.get(digest).map(|fork| fork.ledger.clone())
    }

    /// Whether the block with `digest` at `height` is on the finalized chain.
    pub fn is_finalized(&self, digest: &Digest, height: u64) -> bool {
        self.lock()
            .blocks
            .get(&height)
            .is_some_and(|record| record.hash == hex::encode(digest))
    }

    /// The finalized height.
    pub fn finalized_height(&self) -> u64 {
        self.lock().finalized.height()
    }

    /// Records an executed block's post-state.
    pub fn insert_fork(&self, digest: Digest, fork: Fork) {
        let mut inner = self.lock();
        if fork.height > inner.finalized.height() {
            inner.forks.insert(digest, fork);
        }
    }

    /// Whether a block's signatures still need checking. Every transaction in the mempool had its
    /// signature verified at admission (the hash covers the signature bytes), so a block made
    /// only of such transactions skips the check; any other block is verified in full.
    pub fn signature_check(&self, transactions: &[SignedTransaction]) -> SignatureCheck {
        signature_check_locked(&self.lock(), transactions)
    }

    /// Picks transactions for a block on top of `parent_state` and executes them.
    ///
    /// Takes waiting transactions in arrival order, keeping each sender's nonces contiguous. A
    /// transaction the ledger refuses at block level (say, its fee is no longer covered) is left
    /// out and the selection retried without it.
    pub fn build(
        &self,
        parent_state: &Ledger,
        proposer: Address,
        beacon: Option<tributary_types::Hash32>,
    ) -> (Vec<SignedTransaction>, Ledger, BlockOutcome) {
        let mut candidates = {
            let inner = self.lock();
            select(&inner.mempool, parent_state)
        };
        let mut attempts = 0usize;
        loop {
            attempts += 1;
            let mut ledger = parent_state.clone();
            let input = BlockInput {
                height: parent_state.height() + 1,
                proposer,
                transactions: candidates.clone(),
                beacon,
            };
            // Every candidate came from the mempool, so its signature is already verified.
            match ledger.execute_block_with(&input, SignatureCheck::Skip) {
                Ok(outcome) => return (candidates, ledger, outcome),
                Err(BlockError::InvalidTransaction { index, .. }) if index < candidates.len() => {
                    tracing::debug!(target: "tributary::chain", index, "dropping a transaction from the proposal");
                    if attempts < limits::PROPOSAL_BUILD_ATTEMPTS_MAX {
                        // Drop it and the sender's later transactions (their nonces now skip).
                        let sender = candidates[index].transaction.sender;
                        let mut position = 0usize;
                        candidates.retain(|transaction| {
                            let keep = position < index || transaction.transaction.sender != sender;
                            position += 1;
                            keep
                        });
                    } else {
                        // The prefix before the failure executed: propose just that, so a
                        // flood of transactions that fail in a block cannot cost more than
                        // PROPOSAL_BUILD_ATTEMPTS_MAX + 1 executions.
                        candidates.truncate(index);
                    }
                }
                Err(error) => {
                    tracing::warn!(target: "tributary::chain", %error, "proposing an empty block");
                    candidates.clear();
                }
            }
        }
    }

    /// Applies the next finalized block, reusing its fork state when this node executed it.
    pub fn apply_finalized(&self, block: &Block, seed: Option<String>) -> Result<(), ApplyError> {
        let digest = block.digest();
        let height = block.height().get();
        let mut inner = self.lock();
        if height != inner.finalized.height() + 1 {
            return Ok(());
        }
        let fork = match inner.forks.remove(&digest) {
            Some(fork) => fork,
            None => {
                let mut ledger = inner.finalized.clone();
                let check = signature_check_locked(&inner, &block.transactions);
                let outcome = ledger
                    .execute_block_with(&block_input(block), check)
                    .map_err(|error| ApplyError::Execution {
                        height,
                        reason: error.to_string(),
                    })?;
                Fork {
                    height,
                    ledger,
                    outcome,
                }
            }
        };
        if fork.outcome.state_root.0 != block.state_root {
            return Err(ApplyError::StateRoot {
                height,
                expected: hex::encode(block.state_root),
                actual: fork.outcome.state_root.to_string(),
            });
        }
        for receipt in &fork.outcome.receipts {
            inner.mempool.remove(&receipt.tx_hash);
            inner.receipts.insert(receipt.tx_hash, receipt.clone());
        }
        inner.finalized = fork.ledger;
        inner.finalized_digest = digest;
        inner.forks.retain(|_, fork| fork.height > height);
        let finalized = inner.finalized.clone();
        // Drop what can never execute now: nonces already used, and fees the sender can no
        // longer pay (a proposer would otherwise retry them in every block).
        inner.mempool.retain(|tx| {
            let sender = &tx.transaction.sender;
            tx.transaction.nonce >= finalized.nonce(sender)
                && tx.transaction.fee <= finalized.balance(sender)
        });
        inner.blocks.insert(height, record(block, seed));
        tracing::info!(
            target: "tributary::chain",
            height,
            transactions = block.transactions.len(),
            state_root = %hex::encode(block.state_root),
            "finalized block"
        );
        Ok(())
    }
}

fn signature_check_locked(inner: &Inner, transactions: &[SignedTransaction]) -> SignatureCheck {
    if transactions
        .iter()
        .all(|transaction| inner.mempool.contains(&transaction.hash()))
    {
        SignatureCheck::Skip
    } else {
        SignatureCheck::Verify
    }
}

/// The ledger's view of a consensus block.
pub fn block_input(block: &Block) -> BlockInput {
    BlockInput {
        height: block.height().get(),
        proposer: Address::from_public_key(block.proposer()),
        transactions: block.transactions.clone(),
        beacon: block.beacon(),
    }
}

fn select(mempool: &Mempool, state: &Ledger) -> Vec<SignedTransaction> {
    let mut next_nonce: BTreeMap<Address, u64> = BTreeMap::new();
    let mut selected = Vec::new();
    for (_, transaction) in mempool.iter() {
        if selected.len() >= limits::BLOCK_TRANSACTIONS_MAX {
            break;
        }
        let sender = transaction.transaction.sender;
        let expected = *next_nonce
            .entry(sender)
            .or_insert_with(|| state.nonce(&sender));
        if transaction.transaction.nonce == expected {
            next_nonce.insert(sender, expected + 1);
            selected.push(transaction.clone());
        }
    }
    selected
}

fn record(block: &Block, seed: Option<String>) -> BlockRecord {
    BlockRecord {
        height: block.height().get(),
        hash: hex::encode(block.digest()),
        parent: hex::encode(block.parent),
        proposer: Address::from_public_key(block.proposer()).to_string(),
        view: block.context.round.view().get(),
        state_root: hex::encode(block.state_root),
        transactions: block
            .transactions
            .iter()
            .map(|tx| tx.hash().to_string())
            .collect(),
        seed,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::block::Context;
    use commonware_consensus::types::{Epoch, Round, View};
    use commonware_cryptography::{Signer, ed25519};
    use tributary_types::{Call, Genesis, Transaction};

    pub(crate) struct Fixture {
        pub(crate) state: ChainState,
        pub(crate) genesis: Block,
        pub(crate) key: ed25519::PrivateKey,
        pub(crate) leader: ed25519::PublicKey,
    }

    pub(crate) fn fixture() -> Fixture {
        let key = ed25519::PrivateKey::from_seed(7);
        let leader = ed25519::PrivateKey::from_seed(99).public_key();
        let genesis = Genesis::devnet(
            "test-chain",
            [(Address::from_public_key(&key.public_key()), 1_000_000)],
        );
        let ledger = Ledger::from_genesis(&genesis).unwrap();
        let block = Block::genesis(ledger.state_root().0, leader.clone());
        Fixture {
            state: ChainState::new(ledger, &block),
            genesis: block,
            key,
            leader,
        }
    }

    fn transfer(key: &ed25519::PrivateKey, nonce: u64, amount: u128) -> SignedTransaction {
        let sender = Address::from_public_key(&key.public_key());
        SignedTransaction::sign(
            key,
            Transaction {
                chain_id: "test-chain".into(),
                sender,
                nonce,
                fee: 1,
                call: Call::Transfer { to: sender, amount },
            },
        )
    }

    pub(crate) fn child(
        fixture: &Fixture,
        parent: &Block,
        transactions: Vec<SignedTransaction>,
        root: [u8; 32],
    ) -> Block {
        let height = parent.height().next();
        Block::new(
            Context {
                round: Round::new(Epoch::zero(), View::new(height.get())),
                leader: fixture.leader.clone(),
                parent: (View::new(height.get() - 1), parent.digest()),
            },
            parent.digest(),
            height,
            None,
            transactions,
            root,
        )
    }

    #[test]
    fn submit_admits_in_nonce_order_and_refuses_replays() {
        let fixture = fixture();
        let first = transfer(&fixture.key, 0, 5);
        let hash = fixture.state.submit(first.clone()).unwrap();
        assert!(matches!(
            fixture.state.submit(first),
            Err(SubmitError::Mempool(MempoolError::Duplicate(_)))
        ));
        let skipped = transfer(&fixture.key, 5, 5);
        let error = fixture.state.submit(skipped).unwrap_err();
        assert_eq!(error.code(), "wrong_nonce");
        fixture.state.submit(transfer(&fixture.key, 1, 5)).unwrap();
        assert!(matches!(
            fixture.state.transaction_status(&hash),
            Some(TransactionStatus::Pending)
        ));
    }

    #[test]
    fn build_then_finalize_indexes_receipts_and_empties_the_mempool() {
        let fixture = fixture();
        let first = fixture.state.submit(transfer(&fixture.key, 0, 5)).unwrap();
        fixture.state.submit(transfer(&fixture.key, 1, 6)).unwrap();
        let parent = fixture.state.state_of(&fixture.genesis.digest()).unwrap();
        let proposer = Address::from_public_key(&fixture.leader);
        let (transactions, _, outcome) = fixture.state.build(&parent, proposer, None);
        assert_eq!(transactions.len(), 2);
        let block = child(
            &fixture,
            &fixture.genesis,
            transactions,
            outcome.state_root.0,
        );
        fixture.state.apply_finalized(&block, None).unwrap();
        assert_eq!(fixture.state.finalized_height(), 1);
        assert!(fixture.state.lock().mempool.is_empty());
        assert!(matches!(
            fixture.state.transaction_status(&first),
            Some(TransactionStatus::Finalized(_))
        ));
        // A redelivered block is ignored.
        fixture.state.apply_finalized(&block, None).unwrap();
        assert_eq!(fixture.state.finalized_height(), 1);
        assert_eq!(fixture.state.lock().finalized.balance(&proposer), 2);
        let replay = transfer(&fixture.key, 0, 5);
        assert!(matches!(
            fixture.state.submit(replay),
            Err(SubmitError::AlreadyFinalized(_))
        ));
    }

    #[test]
    fn build_drops_a_transaction_whose_fee_an_earlier_one_spent() {
        let fixture = fixture();
        // The first transfer sends away everything but its own fee; the next cannot pay its fee.
        let sender = Address::from_public_key(&fixture.key.public_key());
        let drain = SignedTransaction::sign(
            &fixture.key,
            Transaction {
                chain_id: "test-chain".into(),
                sender,
                nonce: 0,
                fee: 1,
                call: Call::Transfer {
                    to: Address([5; 32]),
                    amount: 999_999,
                },
            },
        );
        fixture.state.submit(drain).unwrap();
        fixture.state.submit(transfer(&fixture.key, 1, 1)).unwrap();
        let parent = fixture.state.state_of(&fixture.genesis.digest()).unwrap();
        let proposer = Address::from_public_key(&fixture.leader);
        let (transactions, _, outcome) = fixture.state.build(&parent, proposer, None);
        assert_eq!(transactions.len(), 1);
        assert_eq!(transactions[0].transaction.nonce, 0);
        assert_eq!(outcome.receipts.len(), 1);
        // Once that block is final, the unpayable transaction leaves the mempool.
        let block = child(
            &fixture,
            &fixture.genesis,
            transactions,
            outcome.state_root.0,
        );
        fixture.state.apply_finalized(&block, None).unwrap();
        assert!(fixture.state.lock().mempool.is_empty());
    }

    #[test]
    fn a_finalized_block_with_the_wrong_root_is_refused_and_changes_nothing() {
        let fixture = fixture();
        let root_before = fixture.state.lock().finalized.state_root();
        let block = child(
            &fixture,
            &fixture.genesis,
            vec![transfer(&fixture.key, 0, 5)],
            [9u8; 32],
        );
        let error = fixture.state.apply_finalized(&block, None).unwrap_err();
        assert!(matches!(error, ApplyError::StateRoot { height: 1, .. }));
        assert_eq!(fixture.state.finalized_height(), 0);
        assert_eq!(fixture.state.lock().finalized.state_root(), root_before);
    }
}
