//! licensing: `BuyLicense` pays the asset's current price (revenue for the asset, split by the royalty
//! module) and mints a token holding a snapshot of the terms. Token ids are sequential from 1.
//!
//! Buying is refused when the asset's license cap is reached or its terms' expiry height has passed. There
//! is no separate "not offered" flag: the default terms allow nothing and cost 0, so a token under them
//! grants no rights.
//!
//! The training module mints through the same [`offered`] / [`mint`] path when an asset joins a
//! session (no price: the session's reward pays for it), so session tokens count against the cap too.

use crate::{
    error::ExecutionError,
    royalty,
    state::{Asset, LicenseToken, State},
};
use tributary_types::{Address, Amount, AssetId, Event, LicenseTokenId};

/// The asset, when a license for it can be minted now: its cap is not reached and its terms have not
/// expired.
pub(crate) fn offered(state: &State, asset_id: AssetId) -> Result<Asset, ExecutionError> {
    let asset = state
        .assets
        .get(&asset_id)
        .ok_or(ExecutionError::AssetNotFound(asset_id))?
        .clone();
    if let Some(cap) = asset.terms.license_cap
        && asset.licenses_minted >= cap
    {
        return Err(ExecutionError::LicenseCapReached {
            asset: asset_id,
            cap,
        });
    }
    if let Some(expiry_height) = asset.terms.expiry_height
        && state.height > expiry_height
    {
        return Err(ExecutionError::LicenseOfferExpired {
            asset: asset_id,
            expiry_height,
        });
    }
    Ok(asset)
}

/// Mints a token for `asset` (as returned by [`offered`]) to `holder` under a snapshot of its terms,
/// counting it against the license cap; `price` is what was paid, for the event.
pub(crate) fn mint(
    state: &mut State,
    asset: Asset,
    holder: Address,
    price: Amount,
    events: &mut Vec<Event>,
) -> Result<LicenseTokenId, ExecutionError> {
    let id = state.next_license_id;
    let next = id.checked_add(1).ok_or(ExecutionError::Overflow)?;
    state.set_next_license_id(next);
    let licenses_minted = asset
        .licenses_minted
        .checked_add(1)
        .ok_or(ExecutionError::Overflow)?;
    let asset_id = asset.id;
    let terms = asset.terms.clone();
    state.set_asset(Asset {
        licenses_minted,
        ..asset
    });
    state.set_license(LicenseToken {
        id,
        asset: asset_id,
        terms,
        holder,
        minted_height: state.height,
        consumed_by: None,
    });
    events.push(Event::LicenseMinted {
        token: id,
        asset: asset_id,
        holder,
        price,
    });
    Ok(id)
}

/// `BuyLicense`.
pub(crate) fn buy(
    state: &mut State,
    buyer: Address,
    asset_id: AssetId,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let asset = offered(state, asset_id)?;
    let price = asset.terms.price;
    // Paying moves balances only; the asset record read above is still current.
    royalty::pay(state, buyer, asset_id, price, events)?;
    mint(state, asset, buyer, price, events)?;
    Ok(())
}
