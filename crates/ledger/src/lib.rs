//! The Tributary ledger: a deterministic state machine over signed transactions.
//!
//! # Shape
//! [`Ledger`] holds the [`state`] (typed ordered maps) and the chain's parameters. Consensus hands it
//! [`BlockInput`](tributary_types::BlockInput)s through [`Ledger::execute_block`]; the mempool asks
//! [`Ledger::check_admission`]; the API reads through the queries in [`query`]. Modules — [`bank`],
//! [`stake`], [`registry`], [`licensing`], [`royalty`], [`conduct`], [`rewards`], [`storage`],
//! [`training`] — each own their rules and touch each other only through narrow functions
//! (`bank::credit`/`debit`, `royalty::pay`, `licensing::mint`, `rewards::post_valuation`).
//!
//! # Design choices
//! - **Persistent maps (`imbl::OrdMap`).** Cloning the state is O(1), so a block executes on a copy that
//!   replaces the ledger only when the block is valid, and a transaction's call runs after a snapshot that
//!   is restored if the call fails: effects land whole or not at all, with no undo log to get wrong.
//!   Ordered maps make every iteration deterministic; there is no `HashMap` anywhere.
//! - **Incremental state root (LtHash).** Each map entry is an element of a multiset hash; a write
//!   subtracts the old element and adds the new one (batched per key until the end of the block, see
//!   [`state`]). The root is BLAKE3 of a domain tag and the LtHash checksum, so it does not depend on the
//!   order of writes, only on the final state, and costs O(keys touched) per block.
//! - **Admission = block validity.** A transaction that breaks an admission rule (signature, chain id,
//!   nonce, minimum fee, fee balance, size) never enters a block: a block containing one is rejected as a
//!   whole. A transaction whose *call* breaks a rule pays its fee, uses its nonce, and changes nothing else.
//! - **Checked arithmetic.** Overflow is an [`ExecutionError`], never a panic; no floats, no clocks (the
//!   only `Instant` is in [`bench`]).
//! - **Signatures** are verified once per block with a batch verification seeded from the transactions'
//!   hashes (deterministic, and not chosen by the block's author), falling back to single checks only to
//!   name the bad transaction.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

pub mod bank;
pub mod bench;
pub mod conduct;
pub mod error;
pub mod execute;
pub mod licensing;
pub mod query;
pub mod registry;
pub mod rewards;
pub mod royalty;
pub mod stake;
pub(crate) mod state;
pub mod storage;
pub mod training;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use error::{AdmissionError, BlockError, ExecutionError, LedgerError};
pub use execute::SignatureCheck;

use state::State;
use std::{collections::BTreeSet, sync::Arc};
use tributary_types::{Genesis, Params, limits::CHAIN_ID_BYTES_MAX};

/// The ledger: state plus parameters. `Clone` is cheap (persistent maps), so forks of the state (a
/// proposer's speculative execution, a test's alternative history) cost nothing until they diverge.
#[derive(Clone)]
pub struct Ledger {
    state: State,
    params: Arc<Params>,
}

impl Ledger {
    /// The state at height 0: the genesis allocations, under the genesis parameters.
    pub fn from_genesis(genesis: &Genesis) -> Result<Ledger, LedgerError> {
        if genesis.chain_id != genesis.params.chain_id {
            return Err(LedgerError::ChainIdMismatch {
                genesis: genesis.chain_id.clone(),
                params: genesis.params.chain_id.clone(),
            });
        }
        let len = genesis.chain_id.len();
        if len == 0 || len > CHAIN_ID_BYTES_MAX {
            return Err(LedgerError::BadChainId {
                len,
                max: CHAIN_ID_BYTES_MAX,
            });
        }
        let mut state = State::new(&genesis.params);
        let mut seen = BTreeSet::new();
        let mut supply: u128 = 0;
        for allocation in &genesis.allocations {
            if !seen.insert(allocation.address) {
                return Err(LedgerError::DuplicateAllocation(allocation.address));
            }
            supply = supply
                .checked_add(allocation.amount)
                .ok_or(LedgerError::SupplyOverflow)?;
            bank::credit(&mut state, allocation.address, allocation.amount)
                .map_err(|_| LedgerError::SupplyOverflow)?;
        }
        let mut bonded = BTreeSet::new();
        for bond in &genesis.bonds {
            if !bonded.insert((bond.address, bond.role)) {
                return Err(LedgerError::DuplicateBond(bond.address));
            }
            supply = supply
                .checked_add(bond.amount)
                .ok_or(LedgerError::SupplyOverflow)?;
            state.set_bond(bond.address, bond.role, bond.amount);
        }
        state.flush();
        Ok(Ledger {
            state,
            params: Arc::new(genesis.params.clone()),
        })
    }
}
