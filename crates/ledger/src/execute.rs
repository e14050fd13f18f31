//! Admission and block execution.

use crate::{
    Ledger, bank, conduct,
    error::{AdmissionError, BlockError, ExecutionError},
    licensing, registry, rewards, royalty, stake,
    state::State,
    storage, training,
};
use commonware_cryptography::{BatchEntry, BatchVerifier, Verifier, ed25519::PublicKey};
use commonware_parallel::Sequential;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tributary_types::{
    Address, BlockInput, BlockOutcome, Call, Event, Hash32, Receipt, ReceiptStatus,
    SignedTransaction, TRANSACTION_NAMESPACE, TxHash,
    codec::EncodeSize,
    limits::{BLOCK_TRANSACTIONS_MAX, TRANSACTION_BYTES_MAX},
};

/// Domain tag of the seed for batch signature verification.
const BATCH_SEED_DOMAIN: &[u8] = b"tributary-batch-verify-v1";

/// Whether `execute_block` checks signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Verify every signature (one batch verification per block). The default.
    Verify,
    /// Trust that every signature was verified before (for example at mempool admission by this same
    /// node). Only for transactions this node has itself verified: a block from a peer must be verified.
    Skip,
}

/// A transaction's signing payload, encoded once per block.
struct Prepared<'a> {
    tx: &'a SignedTransaction,
    payload: Vec<u8>,
    hash: TxHash,
}

fn prepare(tx: &SignedTransaction) -> Prepared<'_> {
    let payload = tx.transaction.signing_payload();
    let mut hasher = blake3::Hasher::new();
    hasher.update(&payload);
    hasher.update(tx.signature.as_ref());
    Prepared {
        tx,
        payload,
        hash: Hash32(*hasher.finalize().as_bytes()),
    }
}

impl Ledger {
    /// Checks `tx` against the admission rules: size, chain id, nonce (must equal `expected_nonce`: the
    /// account's nonce plus the sender's transactions already pending in the mempool), minimum fee, the
    /// sender's balance covering the fee, and the signature (checked last, being the costliest).
    pub fn check_admission(
        &self,
        tx: &SignedTransaction,
        expected_nonce: u64,
    ) -> Result<(), AdmissionError> {
        let prepared = prepare(tx);
        self.check_stateless(&prepared)?;
        let balance = self.state.account(&tx.transaction.sender).balance;
        check_stateful(&self.params.min_fee, tx, expected_nonce, balance)?;
        if !verify_one(&prepared) {
            return Err(AdmissionError::BadSignature);
        }
        Ok(())
    }

    fn check_stateless(&self, prepared: &Prepared<'_>) -> Result<(), AdmissionError> {
        let size = prepared.tx.encode_size();
        if size > TRANSACTION_BYTES_MAX {
            return Err(AdmissionError::TooLarge {
                size,
                max: TRANSACTION_BYTES_MAX,
            });
        }
        if prepared.tx.transaction.chain_id != self.params.chain_id {
            return Err(AdmissionError::WrongChainId {
                expected: self.params.chain_id.clone(),
                got: prepared.tx.transaction.chain_id.clone(),
            });
        }
        Ok(())
    }

    /// Executes a block, verifying every signature. See [`Ledger::execute_block_with`].
    pub fn execute_block(&mut self, block: &BlockInput) -> Result<BlockOutcome, BlockError> {
        self.execute_block_with(block, SignatureCheck::Verify)
    }

    /// Executes a block without verifying signatures: for a node that verified every one of these
    /// transactions itself at admission. Blocks from peers must go through [`Ledger::execute_block`].
    pub fn execute_block_unchecked_signatures(
        &mut self,
        block: &BlockInput,
    ) -> Result<BlockOutcome, BlockError> {
        self.execute_block_with(block, SignatureCheck::Skip)
    }

    /// Executes a block.
    ///
    /// The height must be the ledger's height plus one. Any transaction that breaks an admission rule (bad
    /// signature, wrong chain id, nonce out of sequence, fee below the minimum, fee not covered by the
    /// balance at its turn, too large) makes the whole block invalid: a [`BlockError`], and the ledger is
    /// unchanged. Otherwise, after releasing matured unbondings, each transaction pays its fee to the
    /// proposer and uses its nonce, then its call runs atomically: on failure its effects are rolled back
    /// and its receipt says `Failed` with the reason.
    pub fn execute_block_with(
        &mut self,
        block: &BlockInput,
        check: SignatureCheck,
    ) -> Result<BlockOutcome, BlockError> {
        let expected = self.state.height.saturating_add(1);
        if block.height != expected {
            return Err(BlockError::WrongHeight {
                expected,
                got: block.height,
            });
        }
        if block.transactions.len() > BLOCK_TRANSACTIONS_MAX {
            return Err(BlockError::TooManyTransactions {
                count: block.transactions.len(),
                max: BLOCK_TRANSACTIONS_MAX,
            });
        }
        let prepared: Vec<Prepared<'_>> = block.transactions.iter().map(prepare).collect();
        for (index, item) in prepared.iter().enumerate() {
            self.check_stateless(item)
                .map_err(|error| BlockError::InvalidTransaction {
                    index,
                    tx_hash: item.hash,
                    error,
                })?;
        }
        if check == SignatureCheck::Verify {
            verify_block_signatures(&prepared)?;
        }

        let mut work = self.state.clone();
        work.set_height(block.height);
        work.beacon = block.beacon;
        let mut block_events = Vec::new();
        stake::release_matured(&mut work, &mut block_events).map_err(|_| BlockError::Overflow)?;
        rewards::begin_block(&mut work, &self.params, &mut block_events);
        storage::begin_block(&mut work, &self.params, &mut block_events);

        let mut receipts = Vec::with_capacity(prepared.len());
        for (index, item) in prepared.iter().enumerate() {
            let tx = &item.tx.transaction;
            let invalid = |error| BlockError::InvalidTransaction {
                index,
                tx_hash: item.hash,
                error,
            };
            let mut sender = work.account(&tx.sender);
            check_stateful(&self.params.min_fee, item.tx, sender.nonce, sender.balance)
                .map_err(invalid)?;
            sender.balance -= tx.fee; // checked by check_stateful
            sender.nonce = sender.nonce.saturating_add(1);
            work.set_account(tx.sender, sender);
            bank::credit(&mut work, block.proposer, tx.fee).map_err(|_| BlockError::Overflow)?;

            let mut events = Vec::new();
            let status = match work.atomically(&mut events, |state, events| {
                apply_call(state, &self.params, tx.sender, &tx.call, events)
            }) {
                Ok(()) => ReceiptStatus::Success,
                Err(error) => ReceiptStatus::Failed {
                    reason: error.reason(),
                },
            };
            receipts.push(Receipt {
                tx_hash: item.hash,
                height: block.height,
                index: u32::try_from(index).unwrap_or(u32::MAX),
                status,
                fee_paid: tx.fee,
                events,
            });
        }
        work.flush();
        let state_root = work.root();
        self.state = work;
        Ok(BlockOutcome {
            height: block.height,
            block_events,
            receipts,
            state_root,
        })
    }
}

fn check_stateful(
    min_fee: &tributary_types::Amount,
    tx: &SignedTransaction,
    expected_nonce: u64,
    balance: tributary_types::Amount,
) -> Result<(), AdmissionError> {
    let tx = &tx.transaction;
    if tx.nonce != expected_nonce {
        return Err(AdmissionError::WrongNonce {
            expected: expected_nonce,
            got: tx.nonce,
        });
    }
    if tx.fee < *min_fee {
        return Err(AdmissionError::FeeBelowMinimum {
            fee: tx.fee,
            min: *min_fee,
        });
    }
    if balance < tx.fee {
        return Err(AdmissionError::InsufficientFeeBalance {
            balance,
            fee: tx.fee,
        });
    }
    Ok(())
}

fn verify_one(item: &Prepared<'_>) -> bool {
    match item.tx.transaction.sender.public_key() {
        Ok(key) => key.verify(TRANSACTION_NAMESPACE, &item.payload, &item.tx.signature),
        Err(_) => false,
    }
}

/// One batch verification for the block, with randomness seeded from the transaction hashes (so every
/// node does the same work); on failure, single checks name the first bad signature.
fn verify_block_signatures(prepared: &[Prepared<'_>]) -> Result<(), BlockError> {
    if prepared.is_empty() {
        return Ok(());
    }
    let mut keys: Vec<(PublicKey, &Prepared<'_>)> = Vec::with_capacity(prepared.len());
    for (index, item) in prepared.iter().enumerate() {
        match item.tx.transaction.sender.public_key() {
            Ok(key) => keys.push((key, item)),
            Err(_) => {
                return Err(BlockError::InvalidTransaction {
                    index,
                    tx_hash: item.hash,
                    error: AdmissionError::BadSignature,
                });
            }
        }
    }
    let mut seed_hasher = blake3::Hasher::new();
    seed_hasher.update(BATCH_SEED_DOMAIN);
    for item in prepared {
        seed_hasher.update(item.hash.as_bytes());
    }
    let mut rng = ChaCha20Rng::from_seed(*seed_hasher.finalize().as_bytes());
    let valid = PublicKey::verify_batch(
        &mut rng,
        &keys,
        |_, (key, item)| BatchEntry {
            namespace: TRANSACTION_NAMESPACE,
            message: &item.payload,
            public_key: key,
            signature: &item.tx.signature,
        },
        &Sequential,
    );
    if valid {
        return Ok(());
    }
    for (index, item) in prepared.iter().enumerate() {
        if !verify_one(item) {
            return Err(BlockError::InvalidTransaction {
                index,
                tx_hash: item.hash,
                error: AdmissionError::BadSignature,
            });
        }
    }
    // The batch failed but every single check passed: treat the block as invalid all the same.
    Err(BlockError::InvalidTransaction {
        index: 0,
        tx_hash: prepared[0].hash,
        error: AdmissionError::BadSignature,
    })
}

/// Runs one call against `state`. On error the caller restores the state from before the call.
pub(crate) fn apply_call(
    state: &mut State,
    params: &tributary_types::Params,
    sender: Address,
    call: &Call,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    match call {
        Call::Transfer { to, amount } => bank::transfer(state, sender, *to, *amount, events),
        Call::Bond { role, amount } => stake::bond(state, sender, *role, *amount, events),
        Call::Unbond { role, amount } => stake::unbond(
            state,
            sender,
            *role,
            *amount,
            params.unbonding_delay_blocks,
            events,
        ),
        Call::RegisterAsset(register) => registry::register(state, sender, register, events),
        Call::UpdateTerms { asset, terms } => {
            registry::update_terms(state, sender, *asset, terms, events)
        }
        Call::BuyLicense { asset } => licensing::buy(state, sender, *asset, events),
        Call::PayRevenue { asset, amount } => royalty::pay(state, sender, *asset, *amount, events),
        Call::ReportMisbehaviour {
            validator, view, ..
        } => conduct::report(state, params, sender, *validator, *view, events),
        Call::CreateRewardPool(create) => {
            rewards::create(state, sender, create, events).map(|_| ())
        }
        Call::SubmitValuation { pool, valuation } => {
            rewards::submit(state, sender, *pool, valuation, events)
        }
        Call::ChallengeValuation { pool, valuation } => {
            rewards::challenge(state, params, sender, *pool, valuation, events)
        }
        Call::VoteValuation {
            pool,
            for_challenger,
        } => rewards::vote(state, params, sender, *pool, *for_challenger, events),
        Call::ClaimRewards { pool } => rewards::claim(state, *pool, events),
        Call::RegisterProvider {
            capacity_bytes,
            price_per_gib_epoch,
            endpoint,
        } => storage::register_provider(
            state,
            params,
            sender,
            *capacity_bytes,
            *price_per_gib_epoch,
            endpoint,
            events,
        ),
        Call::StoreAsset { asset, layout } => {
            storage::store_asset(state, sender, *asset, layout, events)
        }
        Call::CreateDeal {
            asset,
            shard_index,
            provider,
            epochs,
        } => storage::create_deal(
            state,
            params,
            sender,
            *asset,
            *shard_index,
            *provider,
            *epochs,
            events,
        ),
        Call::AcceptDeal { deal } => storage::accept_deal(state, params, sender, *deal, events),
        Call::CancelDeal { deal } => storage::cancel_deal(state, sender, *deal, events),
        Call::SubmitProof { deal, epoch, proof } => {
            storage::submit_proof(state, params, sender, *deal, *epoch, proof, events)
        }
        Call::ClaimRepair { deal } => storage::claim_repair(state, params, sender, *deal, events),
        Call::OpenSession(open) => training::open(state, sender, open, events),
        Call::JoinSession { session, asset } => {
            training::join(state, sender, *session, *asset, events)
        }
        Call::CommitRound {
            session,
            round,
            aggregate_root,
            participants,
        } => training::commit_round(
            state,
            sender,
            *session,
            *round,
            *aggregate_root,
            participants,
            events,
        ),
        Call::FinalizeSession(finalize) => training::finalize(state, sender, finalize, events),
        #[allow(unreachable_patterns)]
        _ => Err(ExecutionError::UnsupportedCall),
    }
}
