//! Chain parameters and the genesis file (JSON).

use crate::{
    address::Address,
    amount::{Amount, amount_string},
    transaction::Role,
};
use serde::{Deserialize, Serialize};

/// Parameters of the state machine, fixed at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// The chain id every transaction must carry.
    pub chain_id: String,
    /// Smallest fee a transaction may pay.
    #[serde(with = "amount_string")]
    pub min_fee: Amount,
    /// Blocks between an `Unbond` and the release of its amount to the balance.
    pub unbonding_delay_blocks: u64,
    /// Rewards: verifiers drawn to decide a valuation challenge (at most
    /// [`crate::limits::COMMITTEE_SIZE_MAX`]).
    #[serde(default = "defaults::committee_size")]
    pub committee_size: u16,
    /// Rewards: blocks a drawn committee has to vote, counted from the draw.
    #[serde(default = "defaults::vote_window_blocks")]
    pub vote_window_blocks: u64,
    /// Rewards: smallest `verifier` bond that makes an account eligible for committees.
    #[serde(with = "amount_string", default = "defaults::verifier_bond_min")]
    pub verifier_bond_min: Amount,
    /// Rewards: taken from the `verifier` bond of a committee member who does not vote, and paid
    /// to the side that wins.
    #[serde(with = "amount_string", default = "defaults::verifier_absence_slash")]
    pub verifier_absence_slash: Amount,
    /// Conduct: share of a validator's stake (`validator` bond plus pending unbondings), in basis
    /// points, taken for each proven misbehaviour and paid to whoever reported it.
    #[serde(default = "defaults::misbehaviour_slash_bps")]
    pub misbehaviour_slash_bps: u16,
    /// Storage: blocks per epoch. Challenges are issued at each epoch's first block and must be
    /// answered before the next epoch starts.
    #[serde(default = "defaults::epoch_blocks")]
    pub epoch_blocks: u64,
    /// Storage: 1 KiB chunks challenged per deal per epoch.
    #[serde(default = "defaults::challenges_per_deal")]
    pub challenges_per_deal: u16,
    /// Storage: smallest `storage_provider` bond that may register and hold deals.
    #[serde(with = "amount_string", default = "defaults::provider_bond_min")]
    pub provider_bond_min: Amount,
    /// Storage: share of a provider's stake, in basis points, taken for a missed challenge.
    #[serde(default = "defaults::storage_slash_bps")]
    pub storage_slash_bps: u16,
    /// Storage: share of that slash, in basis points, held as the bounty for whoever repairs
    /// the deal (the rest compensates the client).
    #[serde(default = "defaults::repair_bounty_bps")]
    pub repair_bounty_bps: u16,
}

/// Documented defaults of the parameters added after the first genesis files were written.
mod defaults {
    use crate::amount::Amount;

    pub fn committee_size() -> u16 {
        3
    }
    pub fn vote_window_blocks() -> u64 {
        20
    }
    pub fn verifier_bond_min() -> Amount {
        1_000
    }
    pub fn verifier_absence_slash() -> Amount {
        100
    }
    pub fn misbehaviour_slash_bps() -> u16 {
        5_000
    }
    pub fn epoch_blocks() -> u64 {
        10
    }
    pub fn challenges_per_deal() -> u16 {
        1
    }
    pub fn provider_bond_min() -> Amount {
        1_000
    }
    pub fn storage_slash_bps() -> u16 {
        1_000
    }
    pub fn repair_bounty_bps() -> u16 {
        5_000
    }
}

impl Params {
    /// Parameters for tests and local devnets.
    pub fn devnet(chain_id: impl Into<String>) -> Self {
        Params {
            chain_id: chain_id.into(),
            min_fee: 1,
            unbonding_delay_blocks: 10,
            committee_size: defaults::committee_size(),
            vote_window_blocks: defaults::vote_window_blocks(),
            verifier_bond_min: defaults::verifier_bond_min(),
            verifier_absence_slash: defaults::verifier_absence_slash(),
            misbehaviour_slash_bps: defaults::misbehaviour_slash_bps(),
            epoch_blocks: defaults::epoch_blocks(),
            challenges_per_deal: defaults::challenges_per_deal(),
            provider_bond_min: defaults::provider_bond_min(),
            storage_slash_bps: defaults::storage_slash_bps(),
            repair_bounty_bps: defaults::repair_bounty_bps(),
        }
    }
}

/// One genesis balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// The account.
    pub address: Address,
    /// Its starting balance.
    #[serde(with = "amount_string")]
    pub amount: Amount,
}

/// The genesis state: parameters and starting balances.
///
/// JSON form: `{"chain_id": "...", "params": {...}, "allocations": [{"address": "trib1...", "amount": "100"}]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// The chain id (must equal `params.chain_id`).
    pub chain_id: String,
    /// Parameters.
    pub params: Params,
    /// Starting balances; an address may appear once.
    pub allocations: Vec<Allocation>,
    /// Starting bonds (validators' stake); an address may appear once per role.
    #[serde(default)]
    pub bonds: Vec<GenesisBond>,
}

/// One genesis bond.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisBond {
    /// The account.
    pub address: Address,
    /// The role bonded for.
    pub role: Role,
    /// The bond.
    #[serde(with = "amount_string")]
    pub amount: Amount,
}

impl Genesis {
    /// A genesis with devnet parameters and the given allocations.
    pub fn devnet(
        chain_id: impl Into<String>,
        allocations: impl IntoIterator<Item = (Address, Amount)>,
    ) -> Self {
        let chain_id = chain_id.into();
        Genesis {
            params: Params::devnet(chain_id.clone()),
            chain_id,
            allocations: allocations
                .into_iter()
                .map(|(address, amount)| Allocation { address, amount })
                .collect(),
            bonds: Vec::new(),
        }
    }
}
