//! licensing: `BuyLicense` pays the asset's current price (revenue for the asset, split by the royalty
//! module) and mints a token holding a snapshot of the terms. Token ids are sequential from 1.
//!
//! Buying is refused when the asset's license cap is reached or its terms' expiry height has passed. There
//! is no separate "not offered" flag: the default terms allow nothing and cost 0, so a token under them
//! grants no rights.

use crate::{
    error::ExecutionError,
    royalty,
    state::{Asset, LicenseToken, State},
};
use tributary_types::{Address, AssetId, Event};

/// `BuyLicense`.
pub(crate) fn buy(
    state: &mut State,
    buyer: Address,
    asset_id: AssetId,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
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
    let price = asset.terms.price;
    royalty::pay(state, buyer, asset_id, price, events)?;

    let id = state.next_license_id;
    let next = id.checked_add(1).ok_or(ExecutionError::Overflow)?;
    state.set_next_license_id(next);
    let licenses_minted = asset
        .licenses_minted
        .checked_add(1)
        .ok_or(ExecutionError::Overflow)?;
    let terms = asset.terms.clone();
    state.set_asset(Asset {
        licenses_minted,
        ..asset
    });
    state.set_license(LicenseToken {
        id,
        asset: asset_id,
        terms,
        holder: buyer,
        minted_height: state.height,
        consumed_by: None,
    });
    events.push(Event::LicenseMinted {
        token: id,
        asset: asset_id,
        holder: buyer,
        price,
    });
    Ok(())
}
