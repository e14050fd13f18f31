//! registry: assets, their owners and lineage.
//!
//! The asset id is the content root. Owners default to the registrant at 10000 bps and are stored sorted
//! by address. Every parent must exist and be paid for with a license token that the registrant holds, that
//! licenses that parent, is unconsumed, unexpired and allows derivatives; the token is consumed and its
//! royalty rate is copied onto the parent link, so later term changes never alter the lineage's economics.
//! A token minted when an asset joined a training session is reserved for that session: only its
//! `FinalizeSession`, which registers the model through [`register_for_session`], may consume it.
//!
//! `UpdateTerms` may be sent by **any listed owner** (whatever its share): terms only govern future
//! licenses, and requiring a majority would freeze the terms of assets split evenly. Co-owners who need
//! stronger control can register under a single owner (for example a multisig account) instead.

use crate::{
    error::ExecutionError,
    state::{Asset, LicenseToken, ParentLink, State},
};
use std::collections::{BTreeSet, VecDeque};
use tributary_types::{
    Address, AssetId, Event, RegisterAsset, Terms, TrainingSessionId,
    limits::{
        ASSET_ANCESTORS_MAX, ASSET_NAME_BYTES_MAX, ASSET_OWNERS_MAX, ASSET_PARENTS_MAX,
        BASIS_POINTS_TOTAL,
    },
};

/// Checks terms an owner offers.
pub(crate) fn validate_terms(terms: &Terms) -> Result<(), ExecutionError> {
    if terms.royalty_bps > BASIS_POINTS_TOTAL {
        return Err(ExecutionError::BadRoyaltyRate(terms.royalty_bps));
    }
    Ok(())
}

/// Every transitive ancestor of the assets in `start` (not including them unless they are ancestors of
/// each other), in id order. Walks at most `limit + 1` distinct assets, then stops: callers treat a result
/// longer than `limit` as "too many".
pub(crate) fn ancestors_of(state: &State, start: &[AssetId], limit: usize) -> BTreeSet<AssetId> {
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<AssetId> = VecDeque::new();
    for id in start {
        if let Some(asset) = state.assets.get(id) {
            queue.extend(asset.parents.iter().map(|link| link.asset));
        }
    }
    while let Some(id) = queue.pop_front() {
        if !seen.insert(id) {
            continue;
        }
        if seen.len() > limit {
            break;
        }
        if let Some(asset) = state.assets.get(&id) {
            queue.extend(asset.parents.iter().map(|link| link.asset));
        }
    }
    seen
}

/// `RegisterAsset`.
pub(crate) fn register(
    state: &mut State,
    registrant: Address,
    register: &RegisterAsset,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    register_with(state, registrant, register, None, events)
}

/// Registers the model of training session `session`: the same rules as `RegisterAsset`, except
/// that the license tokens reserved for that session may be consumed.
pub(crate) fn register_for_session(
    state: &mut State,
    registrant: Address,
    register: &RegisterAsset,
    session: TrainingSessionId,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    register_with(state, registrant, register, Some(session), events)
}

/// Registers an asset; `session` names the training session whose reserved tokens it may consume.
fn register_with(
    state: &mut State,
    registrant: Address,
    register: &RegisterAsset,
    session: Option<TrainingSessionId>,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let id = register.content_root;
    if state.assets.contains_key(&id) {
        return Err(ExecutionError::AlreadyRegistered { existing: id });
    }
    if register.name.is_empty() || register.name.len() > ASSET_NAME_BYTES_MAX {
        return Err(ExecutionError::BadName {
            len: register.name.len(),
            max: ASSET_NAME_BYTES_MAX,
        });
    }
    validate_terms(&register.terms)?;

    // Owners.
    let owners = if register.owners.is_empty() {
        vec![(registrant, BASIS_POINTS_TOTAL)]
    } else {
        if register.owners.len() > ASSET_OWNERS_MAX {
            return Err(ExecutionError::TooManyOwners {
                count: register.owners.len(),
                max: ASSET_OWNERS_MAX,
            });
        }
        let mut owners = register.owners.clone();
        owners.sort_by_key(|(owner, _)| *owner);
        let mut sum: u64 = 0;
        for (index, (owner, bps)) in owners.iter().enumerate() {
            if index > 0 && owners[index - 1].0 == *owner {
                return Err(ExecutionError::DuplicateOwner(*owner));
            }
            if *bps == 0 {
                return Err(ExecutionError::ZeroShare(*owner));
            }
            sum += u64::from(*bps);
        }
        if sum != u64::from(BASIS_POINTS_TOTAL) {
            return Err(ExecutionError::SharesNotTotal { sum });
        }
        owners
    };

    // Parents.
    if register.parents.len() > ASSET_PARENTS_MAX {
        return Err(ExecutionError::TooManyParents {
            count: register.parents.len(),
            max: ASSET_PARENTS_MAX,
        });
    }
    let mut parent_ids = BTreeSet::new();
    let mut links = Vec::with_capacity(register.parents.len());
    let mut rate_sum: u64 = 0;
    for (parent, token_id) in &register.parents {
        if !parent_ids.insert(*parent) {
            return Err(ExecutionError::DuplicateParent(*parent));
        }
        if !state.assets.contains_key(parent) {
            return Err(ExecutionError::AssetNotFound(*parent));
        }
        let token = state
            .licenses
            .get(token_id)
            .ok_or(ExecutionError::LicenseNotFound(*token_id))?;
        check_token_for_parent(token, *parent, registrant, state.height)?;
        if let Some(reserved) = state.session_licenses.get(token_id)
            && session != Some(*reserved)
        {
            return Err(ExecutionError::LicenseReserved {
                token: *token_id,
                session: *reserved,
            });
        }
        rate_sum += u64::from(token.terms.royalty_bps);
        links.push(ParentLink {
            asset: *parent,
            royalty_bps: token.terms.royalty_bps,
            license_token: *token_id,
        });
    }
    if rate_sum > u64::from(BASIS_POINTS_TOTAL) {
        return Err(ExecutionError::RoyaltyRatesAboveTotal { sum: rate_sum });
    }
    let parent_list: Vec<AssetId> = parent_ids.iter().copied().collect();
    let mut ancestors = ancestors_of(state, &parent_list, ASSET_ANCESTORS_MAX);
    ancestors.extend(parent_list.iter().copied());
    if ancestors.len() > ASSET_ANCESTORS_MAX {
        return Err(ExecutionError::TooManyAncestors {
            count: ancestors.len(),
            max: ASSET_ANCESTORS_MAX,
        });
    }

    // Apply: consume tokens, link children, store the asset.
    for link in &links {
        if let Some(token) = state.licenses.get(&link.license_token) {
            let consumed = LicenseToken {
                consumed_by: Some(id),
                ..token.clone()
            };
            state.set_license(consumed);
        }
        state.add_child(link.asset, id);
        events.push(Event::LicenseConsumed {
            token: link.license_token,
            asset: link.asset,
            derivative: id,
        });
    }
    let asset = Asset {
        id,
        kind: register.kind,
        name: register.name.clone(),
        byte_size: register.byte_size,
        owners,
        parents: links,
        terms: register.terms.clone(),
        registrant,
        registered_height: state.height,
        licenses_minted: 0,
    };
    state.set_asset(asset);
    events.push(Event::AssetRegistered {
        asset: id,
        kind: register.kind,
        registrant,
        parents: register.parents.iter().map(|(parent, _)| *parent).collect(),
    });
    Ok(())
}

fn check_token_for_parent(
    token: &LicenseToken,
    parent: AssetId,
    registrant: Address,
    height: u64,
) -> Result<(), ExecutionError> {
    if token.asset != parent {
        return Err(ExecutionError::LicenseWrongAsset {
            token: token.id,
            licensed: token.asset,
            parent,
        });
    }
    if token.holder != registrant {
        return Err(ExecutionError::LicenseNotHeld {
            token: token.id,
            holder: token.holder,
        });
    }
    if let Some(derivative) = token.consumed_by {
        return Err(ExecutionError::LicenseConsumed {
            token: token.id,
            derivative,
        });
    }
    if let Some(expiry_height) = token.terms.expiry_height
        && height > expiry_height
    {
        return Err(ExecutionError::LicenseExpired {
            token: token.id,
            expiry_height,
        });
    }
    if !token.terms.derivatives {
        return Err(ExecutionError::DerivativesNotAllowed(token.id));
    }
    Ok(())
}

/// `UpdateTerms`: any listed owner may change the terms offered for future licenses.
/// The asset, when `account` is one of its owners.
pub(crate) fn require_owner(
    state: &State,
    account: Address,
    asset: AssetId,
) -> Result<&Asset, ExecutionError> {
    let record = state
        .assets
        .get(&asset)
        .ok_or(ExecutionError::AssetNotFound(asset))?;
    if !record.owners.iter().any(|(owner, _)| *owner == account) {
        return Err(ExecutionError::NotAnOwner { account, asset });
    }
    Ok(record)
}

pub(crate) fn update_terms(
    state: &mut State,
    sender: Address,
    asset_id: AssetId,
    terms: &Terms,
    events: &mut Vec<Event>,
) -> Result<(), ExecutionError> {
    let asset = require_owner(state, sender, asset_id)?;
    validate_terms(terms)?;
    let updated = Asset {
        terms: terms.clone(),
        ..asset.clone()
    };
    state.set_asset(updated);
    events.push(Event::TermsUpdated {
        asset: asset_id,
        by: sender,
    });
    Ok(())
}
