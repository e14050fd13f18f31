//! JSON views served by the API and parsed by the CLI. Amounts are decimal strings.

use crate::{
    address::Address,
    amount::{Amount, amount_string},
    hash::AssetId,
    transaction::{AssetKind, LicenseTokenId, Role, Terms},
};
use serde::{Deserialize, Serialize};

/// An account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// Address.
    pub address: Address,
    /// Spendable balance.
    #[serde(with = "amount_string")]
    pub balance: Amount,
    /// Next nonce.
    pub nonce: u64,
}

/// One owner's share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerView {
    /// Owner.
    pub address: Address,
    /// Share in basis points.
    pub bps: u16,
}

/// One parent link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentView {
    /// Parent asset.
    pub asset: AssetId,
    /// Royalty rate owed to it (snapshot from the consumed license).
    pub royalty_bps: u16,
    /// The license token consumed.
    pub license_token: LicenseTokenId,
}

/// An asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetView {
    /// Id (content root).
    pub id: AssetId,
    /// Kind.
    pub kind: AssetKind,
    /// Name.
    pub name: String,
    /// Size in bytes.
    pub byte_size: u64,
    /// Owners, ordered by address.
    pub owners: Vec<OwnerView>,
    /// Parents, in registration order.
    pub parents: Vec<ParentView>,
    /// Current terms for new licenses.
    pub terms: Terms,
    /// Who registered it.
    pub registrant: Address,
    /// Height of registration.
    pub registered_height: u64,
    /// Licenses minted so far.
    pub licenses_minted: u64,
}

/// A license token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseTokenView {
    /// Id.
    pub id: LicenseTokenId,
    /// Licensed asset.
    pub asset: AssetId,
    /// Terms at mint time (never changes).
    pub terms: Terms,
    /// Holder.
    pub holder: Address,
    /// Height minted.
    pub minted_height: u64,
    /// The derivative registered with this token, once consumed.
    pub consumed_by: Option<AssetId>,
}

/// An asset's lineage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineageView {
    /// The asset.
    pub asset: AssetId,
    /// All transitive ancestors, ordered by id (bounded by `ASSET_ANCESTORS_MAX`).
    pub ancestors: Vec<AssetId>,
    /// Transitive descendants, ordered by id, at most `LINEAGE_DESCENDANTS_MAX`.
    pub descendants: Vec<AssetId>,
    /// Whether descendants were cut at the limit.
    pub descendants_truncated: bool,
}

/// One bond.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondView {
    /// Account.
    pub account: Address,
    /// Role.
    pub role: Role,
    /// Bonded amount.
    #[serde(with = "amount_string")]
    pub amount: Amount,
}
