//! Repair: a provider rebuilds the shard of a failed deal from any k others and takes the deal
//! over (`ClaimRepair`); its first accepted proof collects the bounty.
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
use std::collections::BTreeMap;
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
    pub(super) fn repair_one(&self) -> Result<Option<TxHash>, ProviderError> {
        let failed = self.chain.failed_deals()?;
        if failed.is_empty() {
            return Ok(None);
        }
        let params = self.chain.params()?;
        let epoch = self.chain.height()? / params.epoch_blocks.max(1);
        let mut providers: Option<Vec<ProviderView>> = None;
        for deal in failed {
            if deal.provider == self.address {
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
                    Ok(()) => {
                        // Held for a claim that may lose to another repairer's: look again.
                        self.recheck_held_shards();
                        Some(Call::ClaimRepair { deal: deal.id })
                    }
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
                || index == usize::from(deal.shard_index)
                || index >= shard_count
                || shards[index].is_some()
            {
                continue;
            }
            // A shard of the asset this provider holds itself (when every provider holds one)
            // is read from its own store, checked against its root.
            if source.provider == self.address {
                if let Ok(Some(bytes)) = self.store.get(
                    &ContentHash(source.asset.0),
                    u32::from(source.shard_index),
                    &ContentHash(source.shard_root.0),
                ) {
                    shards[index] = Some(bytes);
                    held += 1;
                }
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
/// shard of the asset, ordered by `BLAKE3(deal id ‖ address)`. When every registered provider
/// already holds one (as many providers as shards, the devnet's default), the others are in line
/// instead, fewest live shards of the asset first: the asset then has two shards on one provider,
/// which is better than staying one shard short. The failed deal's provider is never in line.
/// `None` if `provider` is not a candidate.
fn repair_rank(
    deal: &DealView,
    asset_deals: &[DealView],
    providers: &[ProviderView],
    provider: &Address,
) -> Option<u64> {
    let mut held: BTreeMap<Address, u64> = BTreeMap::new();
    for other in asset_deals
        .iter()
        .filter(|other| other.status == "proposed" || other.status == "active")
    {
        *held.entry(other.provider).or_default() += 1;
    }
    let mut candidates: Vec<(u64, [u8; 32], Address)> = providers
        .iter()
        .filter(|candidate| candidate.address != deal.provider)
        .map(|candidate| {
            let mut hasher = blake3::Hasher::new();
            hasher.update(&deal.id.to_be_bytes());
            hasher.update(candidate.address.as_bytes());
            (
                held.get(&candidate.address).copied().unwrap_or(0),
                *hasher.finalize().as_bytes(),
                candidate.address,
            )
        })
        .collect();
    candidates.sort();
    // Only the least loaded are in line: free providers if there are any.
    let fewest = candidates.first()?.0;
    candidates
        .iter()
        .take_while(|(count, _, _)| *count == fewest)
        .position(|(_, _, address)| address == provider)
        .map(|position| position as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_types::Hash32;

    fn address(seed: u8) -> Address {
        Address([seed; 32])
    }

    fn provider(seed: u8) -> ProviderView {
        ProviderView {
            address: address(seed),
            capacity_bytes: 1 << 30,
            committed_bytes: 0,
            price_per_gib_epoch: 1,
            endpoint: format!("http://127.0.0.1:{seed}"),
        }
    }

    /// Deal `index + 1` stores shard `index` of one asset on provider `index + 1`.
    fn deal(index: u8, status: &str) -> DealView {
        DealView {
            id: u64::from(index) + 1,
            asset: Hash32([9; 32]),
            shard_index: index,
            client: address(200),
            provider: address(index + 1),
            shard_root: Hash32([index; 32]),
            shard_bytes: 1024,
            price_per_epoch: 1,
            epochs: 10,
            escrow: 10,
            bounty: 0,
            status: status.to_string(),
            first_epoch: 1,
            epochs_paid: 0,
            challenge_epoch: Some(3),
            challenge_seed: None,
            challenge_answered: false,
        }
    }

    #[test]
    fn free_providers_repair_first_and_holders_when_there_are_none() {
        // Six shards on six providers; shard 3's provider (4) failed.
        let deals: Vec<DealView> = (0..6)
            .map(|index| deal(index, if index == 3 { "failed" } else { "active" }))
            .collect();
        let failed = &deals[3];
        let six: Vec<ProviderView> = (1..=6).map(provider).collect();
        // No free provider: the five others are in line, the failed one never.
        let ranks: Vec<Option<u64>> = (1..=6)
            .map(|seed| repair_rank(failed, &deals, &six, &address(seed)))
            .collect();
        assert_eq!(ranks[3], None, "the failed provider");
        let mut in_line: Vec<u64> = ranks.iter().flatten().copied().collect();
        in_line.sort_unstable();
        assert_eq!(in_line, vec![0, 1, 2, 3, 4]);
        // A seventh provider holding nothing is the only one in line.
        let seven: Vec<ProviderView> = (1..=7).map(provider).collect();
        assert_eq!(repair_rank(failed, &deals, &seven, &address(7)), Some(0));
        for seed in 1..=6 {
            assert_eq!(repair_rank(failed, &deals, &seven, &address(seed)), None);
        }
    }
}
