//! Repair: a provider rebuilds the shard of a failed deal from any k others and takes the deal
//! over (`ClaimRepair`), collecting its bounty.
//!
//! When a provider misses a challenge the ledger slashes it and marks the deal failed. Every
//! other registered provider that holds no shard of that asset is a candidate repairer. To keep
//! them from all rebuilding the same shard at once, candidates are ranked by
//! `BLAKE3(deal id ‖ address)`: the first tries in the epoch after the failure, the r-th from r
//! epochs later (so a dead or slow first candidate delays repair by an epoch, not forever).
//!
//! A repairer reads k shards of the asset from the providers of its active deals with signed read
//! requests (providers serve a registered provider the shards of an asset with a failed deal:
//! shards are ciphertext, so this reveals nothing), checks each against its root on the ledger,
//! rebuilds the missing shard with [`tributary_store::rebuild_shard_checked`] (which needs only k,
//! m and the shard roots the ledger records), stores it and claims the deal. Challenges resume
//! with the repairer at the next epoch.

use super::{Duty, ProviderError, ReadRequest, StorageProvider};
use std::collections::{BTreeMap, BTreeSet};
use tributary_store::ContentHash;
use tributary_types::{Address, AssetId, Call, DealView, ProviderView, TxHash};

/// How long a repair read request stays valid.
const REPAIR_READ_TTL_MS: u64 = 60_000;

impl StorageProvider {
    /// Whether `reader` may read `asset`'s shards to repair it: a registered provider, while a
    /// deal of the asset is failed.
    pub(super) fn may_repair(
        &self,
        reader: &Address,
        asset: &AssetId,
    ) -> Result<bool, ProviderError> {
        if self.chain.provider(reader)?.is_none() {
            return Ok(false);
        }
        Ok(self
            .chain
            .asset_deals(asset)?
            .iter()
            .any(|deal| deal.status == "failed"))
    }

    /// Repairs at most one failed deal this provider is first in line for; returns the claim sent.
    pub(super) fn repair_one(&self, own: &[DealView]) -> Result<Option<TxHash>, ProviderError> {
        let failed = self.chain.failed_deals()?;
        if failed.is_empty() {
            return Ok(None);
        }
        let params = self.chain.params()?;
        let epoch = self.chain.height()? / params.epoch_blocks.max(1);
        let held: BTreeSet<AssetId> = own
            .iter()
            .filter(|deal| deal.status != "failed")
            .map(|deal| deal.asset)
            .collect();
        let mut providers: Option<Vec<ProviderView>> = None;
        for deal in failed {
            if deal.provider == self.address || held.contains(&deal.asset) {
                continue;
            }
            let providers = match &providers {
                Some(providers) => providers,
                None => providers.insert(self.chain.providers()?),
            };
            let asset_deals = self.chain.asset_deals(&deal.asset)?;
            let rank = repair_rank(&deal, &asset_deals, providers, &self.address);
            let failed_epoch = deal
                .challenge_epoch
                .map_or(0, |epoch| epoch.saturating_add(1));
            let Some(rank) = rank else { continue };
            if epoch < failed_epoch.saturating_add(rank) {
                continue;
            }
            let sent = self.send(Duty::Repair(deal.id), || {
                match self.rebuild(&deal, &asset_deals, providers) {
                    Ok(()) => Some(Call::ClaimRepair { deal: deal.id }),
                    Err(error) => {
                        tracing::warn!(target: "tributary::provider", provider = %self.address, deal = deal.id, %error, "cannot repair a failed deal yet");
                        None
                    }
                }
            });
            if sent.is_some() {
                tracing::info!(target: "tributary::provider", provider = %self.address, deal = deal.id, shard = deal.shard_index, "rebuilt a lost shard; claiming the repair");
                return Ok(sent);
            }
        }
        Ok(None)
    }

    /// Fetches k verified shards of the deal's asset from other providers, rebuilds the deal's
    /// shard and stores it.
    fn rebuild(
        &self,
        deal: &DealView,
        asset_deals: &[DealView],
        providers: &[ProviderView],
    ) -> Result<(), ProviderError> {
        let layout = self
            .chain
            .storage_layout(&deal.asset)?
            .ok_or(ProviderError::NotStored(deal.asset))?;
        let data_shards = usize::from(layout.data_shards);
        let shard_count = data_shards + usize::from(layout.parity_shards);
        let endpoints: BTreeMap<Address, &str> = providers
            .iter()
            .map(|provider| (provider.address, provider.endpoint.as_str()))
            .collect();
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; shard_count];
        let mut held = 0;
        for source in asset_deals {
            if held == data_shards {
                break;
            }
            let index = usize::from(source.shard_index);
            if source.status != "active"
                || source.provider == self.address
                || index == usize::from(deal.shard_index)
                || index >= shard_count
                || shards[index].is_some()
            {
                continue;
            }
            let Some(endpoint) = endpoints.get(&source.provider) else {
                continue;
            };
            match self.fetch_shard(endpoint, source) {
                Ok(bytes) => {
                    shards[index] = Some(bytes);
                    held += 1;
                }
                Err(reason) => {
                    tracing::warn!(target: "tributary::provider", provider = %self.address, source = %source.provider, shard = index, %reason, "a repair source failed");
                }
            }
        }
        if held < data_shards {
            return Err(ProviderError::RepairSources {
                deal: deal.id,
                held,
                needed: data_shards,
            });
        }
        let views: Vec<Option<&[u8]>> = shards.iter().map(|shard| shard.as_deref()).collect();
        let root = ContentHash(deal.shard_root.0);
        let bytes = tributary_store::repair::rebuild_shard_checked(
            data_shards,
            usize::from(layout.parity_shards),
            &views,
            usize::from(deal.shard_index),
            &root,
        )?;
        self.store.put(
            &ContentHash(deal.asset.0),
            u32::from(deal.shard_index),
            &bytes,
            &root,
        )?;
        self.serve_shard(&deal.asset, u32::from(deal.shard_index), &root);
        Ok(())
    }

    /// Reads one shard from the provider at `endpoint`, checked by the transport against the
    /// deal's root and size.
    fn fetch_shard(&self, endpoint: &str, source: &DealView) -> Result<Vec<u8>, String> {
        let request = ReadRequest::sign(
            &self.signer,
            source.asset,
            source.shard_index,
            source.provider,
            self.clock.now_ms().saturating_add(REPAIR_READ_TTL_MS),
        );
        self.transport
            .read_shard(endpoint, &request, &source.shard_root.0, source.shard_bytes)
    }
}

/// `provider`'s place in line to repair `deal`: among registered providers holding no live
/// shard of the asset, ordered by `BLAKE3(deal id ‖ address)`; `None` if it is not a candidate.
fn repair_rank(
    deal: &DealView,
    asset_deals: &[DealView],
    providers: &[ProviderView],
    provider: &Address,
) -> Option<u64> {
    let holders: BTreeSet<Address> = asset_deals
        .iter()
        .filter(|other| other.status == "proposed" || other.status == "active")
        .map(|other| other.provider)
        .chain(std::iter::once(deal.provider))
        .collect();
    let mut candidates: Vec<([u8; 32], Address)> = providers
        .iter()
        .filter(|candidate| !holders.contains(&candidate.address))
        .map(|candidate| {
            let mut hasher = blake3::Hasher::new();
            hasher.update(&deal.id.to_be_bytes());
            hasher.update(candidate.address.as_bytes());
            (*hasher.finalize().as_bytes(), candidate.address)
        })
        .collect();
    candidates.sort();
    candidates
        .iter()
        .position(|(_, address)| address == provider)
        .map(|position| position as u64)
}
