//! What consensus hands the ledger to execute, and what comes back.

use crate::{
    address::Address,
    event::{Event, Receipt},
    hash::{Hash32, StateRoot},
    transaction::SignedTransaction,
};
use serde::{Deserialize, Serialize};

/// A block's contents as the ledger executes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockInput {
    /// The block's height: the ledger's height plus one.
    pub height: u64,
    /// The proposer, paid every transaction's fee.
    pub proposer: Address,
    /// Transactions, executed in order.
    pub transactions: Vec<SignedTransaction>,
    /// The chain's randomness for this block: a hash of the threshold-BLS seed of the parent's
    /// consensus round, which no single validator can bias and nobody knew before the parent was
    /// notarized. `None` only for the first block (its parent, genesis, has no round).
    pub beacon: Option<Hash32>,
}

/// The result of executing a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockOutcome {
    /// The height executed.
    pub height: u64,
    /// Events from the start of the block (matured unbondings released), before any transaction.
    pub block_events: Vec<Event>,
    /// One receipt per transaction, in order.
    pub receipts: Vec<Receipt>,
    /// The state root after the block.
    pub state_root: StateRoot,
}
