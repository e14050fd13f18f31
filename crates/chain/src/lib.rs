//! Consensus and networking for Tributary: the ledger run as a commonware simplex application.
//!
//! - [`block`]: the consensus block (context, parent, height, transactions, state root).
//! - [`application`]: propose/verify by executing the ledger; finalized blocks applied in order.
//! - [`state`]: the node's chain state (finalized ledger, forks, mempool, history index).
//! - [`mempool`]: admitted transactions waiting for a block.
//! - [`engine`]: wiring of p2p, broadcast, marshal and simplex for one validator.
//! - [`genesis`]: the genesis file, validator key files and the trusted-dealer key setup.
//!
//! # Design
//!
//! Blocks commit to the post-execution state root, so a block is valid only if every honest
//! validator re-executes it to the same root; `Deferred` verification lets that re-execution run
//! while votes are collected. Finalized blocks are persisted by marshal's archives (commonware
//! storage) before they are delivered, and the ledger is rebuilt on start by replaying them: the
//! documented alternative to keeping authenticated state in qmdb, chosen because replay is simple,
//! exercises the same execution path as consensus, and the devnet's history is small. Snapshots
//! (or qmdb) are the way to bound replay time as history grows.
//!
//! The certificate scheme is threshold BLS (`bls12381_threshold::vrf`): each finalization carries
//! a unique threshold signature over its round, the chain's unbiasable randomness beacon.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod application;
pub mod block;
pub mod engine;
pub mod evidence;
pub mod genesis;
pub mod mempool;
pub mod state;

pub use application::Scheme;
pub use block::Block;
pub use engine::{EngineConfig, EngineError, NodeIdentity, ValidatorSet, start_validator};
pub use genesis::{ChainGenesis, GenesisFollower, GenesisValidator, ValidatorKeyFile};
pub use state::{BlockRecord, ChainState, SubmitError, TransactionStatus};
