//! Deterministic simulation of the storage market: deals, per-epoch challenges, slashing and
//! repair, driven by a seed.
//!
//! The production [`StorageProvider`]s run against a [`SimChain`] (the production [`Ledger`]
//! executing one block per step, with a beacon derived from the seed) and reach each other through
//! a [`MemoryTransport`], with a simulated clock: no sockets, no wall clock, so a seed replays the
//! same run and the same final state root. An owner ingests real bytes with the production
//! pipeline (chunk, encrypt, erasure-code), records the layout and places each shard with a
//! distinct provider. Faults strike chosen providers at chosen epochs:
//! - [`FaultKind::Delete`]: the shard file disappears from the provider's disk;
//! - [`FaultKind::Corrupt`]: a byte of it flips;
//! - [`FaultKind::Crash`]: the provider stops (no more duties, unreachable to others).
//!
//! [`StorageReport::check`] then verifies: every faulty provider was slashed, every deal is
//! active again with a provider that holds its shard, no provider holds two shards of one asset,
//! the asset decodes from live providers to its original bytes, and the supply is conserved.

use commonware_cryptography::{Signer, ed25519};
use rand::{RngExt, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha20Rng;
use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};
use tributary_ledger::Ledger;
use tributary_node::provider::{
    ChainError, Clock, MemoryTransport, Offer, ProviderChain, ReadRequest, ShardTransport,
    StorageProvider,
};
use tributary_store::{CipherKind, DataKey, IngestOptions};
use tributary_types::{
    Address, Amount, AssetId, AssetKind, AssetView, BlockInput, Call, DealId, DealView, Genesis,
    GenesisBond, Hash32, Params, ProviderView, ReceiptStatus, RegisterAsset, Role,
    SignedTransaction, StorageLayout, Terms, Transaction, TxHash, limits::QUERY_PAGE_MAX,
};

/// The simulated storage chain's id.
pub const STORAGE_CHAIN_ID: &str = "tributary-storage-sim";
/// Simulated milliseconds per block.
pub const BLOCK_MS: u64 = 100;
/// Each provider's genesis bond.
pub const PROVIDER_BOND: Amount = 1_000_000;
/// Epochs after the last fault the run goes on for, so repairs can finish.
pub const SETTLE_EPOCHS: u64 = 6;

/// What happens to a provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Its shard file is deleted.
    Delete,
    /// A byte of its shard file flips.
    Corrupt,
    /// It stops: no duties, unreachable.
    Crash,
}

/// A fault striking the provider of `shard` at the start of `epoch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The shard whose provider is struck (at the time of the fault).
    pub shard: u8,
    /// When.
    pub epoch: u64,
    /// What.
    pub kind: FaultKind,
}

/// A storage scenario.
#[derive(Clone, Debug)]
pub struct StorageScenario {
    /// Drives placement, beacons and fault choice.
    pub seed: u64,
    /// Registered providers (at least `k + m`; with a spare per fault, repairs keep every shard on
    /// its own provider).
    pub providers: usize,
    /// `k`.
    pub data_shards: usize,
    /// `m`.
    pub parity_shards: usize,
    /// The faults, in epoch order.
    pub faults: Vec<Fault>,
    /// The asset's bytes (a CSV, checked like any upload).
    pub data: Vec<u8>,
}

impl StorageScenario {
    /// `faults` random faults (one per shard at most, two epochs apart) on 4+2 over 8 providers.
    pub fn random(seed: u64, faults: usize, data: Vec<u8>) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut shards: Vec<u8> = (0..6).collect();
        shards.shuffle(&mut rng);
        let kinds = [FaultKind::Delete, FaultKind::Corrupt, FaultKind::Crash];
        let faults = shards
            .into_iter()
            .take(faults)
            .enumerate()
            .map(|(position, shard)| Fault {
                shard,
                epoch: 2 + 3 * position as u64,
                kind: kinds[rng.random_range(0..kinds.len())],
            })
            .collect();
        Self {
            seed,
            providers: 8,
            data_shards: 4,
            parity_shards: 2,
            faults,
            data,
        }
    }
}

/// The chain as the simulation runs it: the production ledger, one block per [`SimChain::step`].
pub struct SimChain {
    ledger: Mutex<Ledger>,
    mempool: Mutex<Vec<SignedTransaction>>,
    finalized: Mutex<BTreeSet<TxHash>>,
    seed: u64,
}

impl SimChain {
    fn new(genesis: &Genesis, seed: u64) -> Result<Self, String> {
        Ok(Self {
            ledger: Mutex::new(Ledger::from_genesis(genesis).map_err(|e| e.to_string())?),
            mempool: Mutex::new(Vec::new()),
            finalized: Mutex::new(BTreeSet::new()),
            seed,
        })
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Executes the pending transactions as the next block; returns its failed receipts' reasons.
    fn step(&self) -> Result<Vec<String>, String> {
        let transactions =
            std::mem::take(&mut *self.mempool.lock().unwrap_or_else(|p| p.into_inner()));
        let mut ledger = self.ledger();
        let height = ledger.height() + 1;
        let mut beacon = blake3::Hasher::new();
        beacon.update(&self.seed.to_be_bytes());
        beacon.update(&height.to_be_bytes());
        let outcome = ledger
            .execute_block(&BlockInput {
                height,
                proposer: Address::from_public_key(&ed25519::PrivateKey::from_seed(0).public_key()),
                transactions,
                beacon: Some(Hash32(*beacon.finalize().as_bytes())),
            })
            .map_err(|error| format!("block {height}: {error}"))?;
        let mut finalized = self.finalized.lock().unwrap_or_else(|p| p.into_inner());
        let mut failures = Vec::new();
        for receipt in outcome.receipts {
            finalized.insert(receipt.tx_hash);
            if receipt.status != ReceiptStatus::Success {
                failures.push(format!("{:?}", receipt.status));
            }
        }
        Ok(failures)
    }

    fn epoch(&self) -> u64 {
        let ledger = self.ledger();
        ledger.height() / ledger.params().epoch_blocks.max(1)
    }
}

impl ProviderChain for SimChain {
    fn params(&self) -> Result<Params, ChainError> {
        Ok(self.ledger().params().clone())
    }

    fn height(&self) -> Result<u64, ChainError> {
        Ok(self.ledger().height())
    }

    fn deal(&self, id: DealId) -> Result<Option<DealView>, ChainError> {
        Ok(self.ledger().deal(id))
    }

    fn provider_deals(&self, provider: &Address) -> Result<Vec<DealView>, ChainError> {
        Ok(self.ledger().provider_deals(provider))
    }

    fn failed_deals(&self) -> Result<Vec<DealView>, ChainError> {
        Ok(self
            .ledger()
            .deals_with_status("failed", 0, QUERY_PAGE_MAX, None))
    }

    fn asset_deals(&self, asset: &AssetId) -> Result<Vec<DealView>, ChainError> {
        Ok(self.ledger().deals(0, QUERY_PAGE_MAX, Some(asset)))
    }

    fn provider(&self, address: &Address) -> Result<Option<ProviderView>, ChainError> {
        Ok(self.ledger().provider(address))
    }

    fn providers(&self) -> Result<Vec<ProviderView>, ChainError> {
        Ok(self.ledger().providers(None, QUERY_PAGE_MAX))
    }

    fn asset(&self, asset: &AssetId) -> Result<Option<AssetView>, ChainError> {
        Ok(self.ledger().asset(asset))
    }

    fn storage_layout(&self, asset: &AssetId) -> Result<Option<StorageLayout>, ChainError> {
        Ok(self.ledger().storage_layout(asset))
    }

    fn may_read(&self, reader: &Address, asset: &AssetId) -> Result<bool, ChainError> {
        Ok(self.ledger().may_read(reader, asset))
    }

    fn transaction_known(&self, hash: &TxHash) -> Result<bool, ChainError> {
        let pending = self
            .mempool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|transaction| transaction.hash() == *hash);
        Ok(pending
            || self
                .finalized
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(hash))
    }

    fn submit(&self, signer: &ed25519::PrivateKey, call: Call) -> Result<TxHash, ChainError> {
        let sender = Address::from_public_key(&signer.public_key());
        let (chain_id, fee, finalized_nonce) = {
            let ledger = self.ledger();
            (
                ledger.params().chain_id.clone(),
                ledger.params().min_fee,
                ledger.nonce(&sender),
            )
        };
        let mut mempool = self.mempool.lock().unwrap_or_else(|p| p.into_inner());
        let pending = mempool
            .iter()
            .filter(|transaction| transaction.transaction.sender == sender)
            .count() as u64;
        let signed = SignedTransaction::sign(
            signer,
            Transaction {
                chain_id,
                sender,
                nonce: finalized_nonce + pending,
                fee,
                call,
            },
        );
        let hash = signed.hash();
        mempool.push(signed);
        Ok(hash)
    }
}

/// The simulated clock: block height × [`BLOCK_MS`].
struct SimClock(AtomicU64);

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One simulated provider.
struct SimProvider {
    provider: Arc<StorageProvider>,
    endpoint: String,
    directory: PathBuf,
    crashed: bool,
}

/// What a run did.
#[derive(Debug)]
pub struct StorageReport {
    /// The scenario's seed.
    pub seed: u64,
    /// The faults, with the provider each struck.
    pub struck: Vec<(Fault, Address)>,
    /// Stake lost per provider.
    pub slashed: BTreeMap<Address, Amount>,
    /// Deals repaired (taken over by another provider).
    pub repairs: usize,
    /// Each deal's final status and provider.
    pub deals: Vec<DealView>,
    /// Shards a live provider served with the right root, read back as the owner.
    pub serving: usize,
    /// Whether the asset decoded from live providers to its original bytes.
    pub readable: bool,
    /// Total supply before and after.
    pub supply: (Amount, Amount),
    /// The final state root, hex.
    pub state_root: String,
    /// Transactions the ledger refused, by reason (expected: repairs claimed by a second
    /// candidate).
    pub refused: Vec<String>,
    /// Providers whose open deals by the ledger's per-provider index differ from a scan of
    /// every deal (expected: none).
    pub index_mismatches: Vec<String>,
}

impl StorageReport {
    /// The invariants every run must hold; the seed is in every message.
    pub fn check(&self) -> Result<(), String> {
        let seed = self.seed;
        if self.supply.0 != self.supply.1 {
            return Err(format!(
                "seed {seed}: supply {} became {}",
                self.supply.0, self.supply.1
            ));
        }
        for (fault, provider) in &self.struck {
            if self.slashed.get(provider).copied().unwrap_or(0) == 0 {
                return Err(format!(
                    "seed {seed}: {provider} ({fault:?}) was not slashed"
                ));
            }
        }
        for deal in &self.deals {
            if deal.status != "active" {
                return Err(format!(
                    "seed {seed}: deal {} of shard {} is {} with {}",
                    deal.id, deal.shard_index, deal.status, deal.provider
                ));
            }
        }
        let holders: BTreeSet<Address> = self.deals.iter().map(|deal| deal.provider).collect();
        if holders.len() != self.deals.len() {
            return Err(format!(
                "seed {seed}: a provider holds two shards of the asset"
            ));
        }
        if self.repairs < self.struck.len() {
            return Err(format!(
                "seed {seed}: {} repairs for {} faults",
                self.repairs,
                self.struck.len()
            ));
        }
        if self.serving != self.deals.len() {
            return Err(format!(
                "seed {seed}: {} of {} shards are served by live providers: the asset would not survive m more losses",
                self.serving,
                self.deals.len()
            ));
        }
        if !self.readable {
            return Err(format!("seed {seed}: the asset no longer decodes"));
        }
        if !self.index_mismatches.is_empty() {
            return Err(format!(
                "seed {seed}: the per-provider deal index is wrong: {}",
                self.index_mismatches.join("; ")
            ));
        }
        Ok(())
    }
}

fn key(seed: u64) -> ed25519::PrivateKey {
    ed25519::PrivateKey::from_seed(seed)
}

fn address(seed: u64) -> Address {
    Address::from_public_key(&key(seed).public_key())
}

/// Runs `scenario`; shard stores live under `directory`.
pub fn run_storage(
    scenario: &StorageScenario,
    directory: &std::path::Path,
) -> Result<StorageReport, String> {
    let seed = scenario.seed;
    let shard_count = scenario.data_shards + scenario.parity_shards;
    let owner_seed = 1_000;
    let provider_seeds: Vec<u64> = (0..scenario.providers as u64)
        .map(|index| 2_000 + index)
        .collect();
    let mut genesis = Genesis::devnet(
        STORAGE_CHAIN_ID,
        std::iter::once((address(owner_seed), 1_000_000_000_000)).chain(
            provider_seeds
                .iter()
                .map(|seed| (address(*seed), 1_000_000_000)),
        ),
    );
    for provider in &provider_seeds {
        genesis.bonds.push(GenesisBond {
            address: address(*provider),
            role: Role::StorageProvider,
            amount: PROVIDER_BOND,
        });
    }
    let chain = Arc::new(SimChain::new(&genesis, seed)?);
    let supply_before = chain.ledger().total_supply();
    let clock = Arc::new(SimClock(AtomicU64::new(0)));
    let transport = MemoryTransport::new(clock.clone());
    let mut providers = Vec::new();
    for (index, provider_seed) in provider_seeds.iter().enumerate() {
        let endpoint = format!("mem://provider-{index}");
        let directory = directory.join(format!("provider-{index}"));
        let provider = StorageProvider::open_with(
            key(*provider_seed),
            &directory,
            chain.clone(),
            Offer {
                capacity_bytes: 1 << 30,
                price_per_gib_epoch: 1 << 30,
                endpoint: endpoint.clone(),
            },
            Arc::new(transport.clone()),
            clock.clone(),
        )
        .map_err(|error| error.to_string())?;
        transport.connect(&endpoint, provider.clone());
        providers.push(SimProvider {
            provider,
            endpoint,
            directory,
            crashed: false,
        });
    }
    let mut refused = Vec::new();
    let step = |providers: &[SimProvider], refused: &mut Vec<String>| -> Result<(), String> {
        for provider in providers.iter().filter(|provider| !provider.crashed) {
            provider.provider.tick();
        }
        refused.extend(chain.step()?);
        let height = chain.ledger().height();
        clock.0.store(height * BLOCK_MS, Ordering::Relaxed);
        Ok(())
    };
    // Providers register.
    step(&providers, &mut refused)?;
    step(&providers, &mut refused)?;

    // The owner ingests and places the asset.
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let owner = key(owner_seed);
    // The data key comes from the seed (and the cipher is fixed), so a seed replays the same
    // shards, roots and state.
    let mut options = IngestOptions::new(scenario.data_shards, scenario.parity_shards);
    options.cipher = Some(CipherKind::XChaCha20Poly1305);
    let mut data_key = [0u8; 32];
    rng.fill(&mut data_key[..]);
    let ingested = tributary_store::ingest_bytes_with_key(
        "asset.csv",
        &scenario.data,
        &options,
        DataKey::from_bytes(data_key),
    )
    .map_err(|error| error.to_string())?;
    let asset = Hash32(ingested.manifest.asset_id.0);
    let manifest_json = ingested
        .manifest
        .to_json()
        .map_err(|error| error.to_string())?;
    let shard_bytes = ingested.shard_bytes();
    chain
        .submit(
            &owner,
            Call::RegisterAsset(RegisterAsset {
                content_root: asset,
                kind: AssetKind::Dataset,
                name: "sim".into(),
                byte_size: scenario.data.len() as u64,
                owners: vec![],
                parents: vec![],
                terms: Terms::default(),
            }),
        )
        .map_err(|error| error.to_string())?;
    chain
        .submit(
            &owner,
            Call::StoreAsset {
                asset,
                layout: StorageLayout {
                    manifest_root: Hash32::blake3(manifest_json.as_bytes()),
                    data_shards: u8::try_from(scenario.data_shards).map_err(|e| e.to_string())?,
                    parity_shards: u8::try_from(scenario.parity_shards)
                        .map_err(|e| e.to_string())?,
                    shard_bytes,
                    shard_roots: ingested
                        .manifest
                        .shards
                        .iter()
                        .map(|shard| Hash32(shard.root.0))
                        .collect(),
                },
            },
        )
        .map_err(|error| error.to_string())?;
    let mut order: Vec<usize> = (0..providers.len()).collect();
    order.shuffle(&mut rng);
    for (shard, provider) in order.iter().take(shard_count).enumerate() {
        chain
            .submit(
                &owner,
                Call::CreateDeal {
                    asset,
                    shard_index: u8::try_from(shard).map_err(|e| e.to_string())?,
                    provider: providers[*provider].provider.address(),
                    epochs: 1_000,
                },
            )
            .map_err(|error| error.to_string())?;
    }
    step(&providers, &mut refused)?;
    let deals = chain.asset_deals(&asset).map_err(|e| e.to_string())?;
    if deals.len() != shard_count {
        return Err(format!(
            "seed {seed}: {} deals, expected {shard_count}: {refused:?}",
            deals.len()
        ));
    }
    for deal in &deals {
        let holder = providers
            .iter()
            .find(|provider| provider.provider.address() == deal.provider)
            .ok_or("a deal with an unknown provider")?;
        let shard = ingested
            .shard(usize::from(deal.shard_index))
            .ok_or("a deal for a shard past the last")?;
        holder
            .provider
            .upload(deal.id, &shard.to_vec())
            .map_err(|error| error.to_string())?;
    }

    let placed: BTreeMap<u8, Address> = deals
        .iter()
        .map(|deal| (deal.shard_index, deal.provider))
        .collect();
    // Epochs pass; faults strike.
    let bonds_before: Vec<Amount> = provider_seeds
        .iter()
        .map(|seed| {
            chain
                .ledger()
                .bonded(&address(*seed), Role::StorageProvider)
        })
        .collect();
    let last_epoch = scenario
        .faults
        .iter()
        .map(|fault| fault.epoch)
        .max()
        .unwrap_or(0)
        + SETTLE_EPOCHS;
    let mut pending: Vec<Fault> = scenario.faults.clone();
    let mut struck = Vec::new();
    while chain.epoch() <= last_epoch {
        let epoch = chain.epoch();
        let due: Vec<Fault> = pending
            .iter()
            .copied()
            .filter(|fault| fault.epoch <= epoch)
            .collect();
        pending.retain(|fault| fault.epoch > epoch);
        for fault in due {
            let deal = chain
                .asset_deals(&asset)
                .map_err(|e| e.to_string())?
                .into_iter()
                .find(|deal| deal.shard_index == fault.shard)
                .ok_or("no deal for a faulted shard")?;
            let Some(victim) = providers
                .iter_mut()
                .find(|provider| provider.provider.address() == deal.provider)
            else {
                return Err("a deal with an unknown provider".into());
            };
            let file = shard_file(&victim.directory, fault.shard)?;
            match fault.kind {
                FaultKind::Delete => std::fs::remove_file(&file).map_err(|e| e.to_string())?,
                FaultKind::Corrupt => {
                    let mut bytes = std::fs::read(&file).map_err(|e| e.to_string())?;
                    let position = rng.random_range(0..bytes.len());
                    bytes[position] ^= 0x55;
                    std::fs::write(&file, bytes).map_err(|e| e.to_string())?;
                }
                FaultKind::Crash => {
                    victim.crashed = true;
                    transport.disconnect(&victim.endpoint);
                }
            }
            struck.push((fault, deal.provider));
        }
        step(&providers, &mut refused)?;
    }

    // The outcome.
    let deals = chain.asset_deals(&asset).map_err(|e| e.to_string())?;
    let slashed = provider_seeds
        .iter()
        .zip(&bonds_before)
        .filter_map(|(seed, before)| {
            let after = chain
                .ledger()
                .bonded(&address(*seed), Role::StorageProvider);
            (after < *before).then_some((address(*seed), before - after))
        })
        .collect();
    let repairs = deals
        .iter()
        .filter(|deal| placed.get(&deal.shard_index) != Some(&deal.provider))
        .count();
    // Read every shard back as the owner, through the transport, from live providers only.
    let now = clock.now_ms();
    let mut shards: Vec<Option<Vec<u8>>> = vec![None; shard_count];
    for deal in &deals {
        let Some(holder) = providers
            .iter()
            .find(|provider| provider.provider.address() == deal.provider && !provider.crashed)
        else {
            continue;
        };
        let request =
            ReadRequest::sign(&owner, asset, deal.shard_index, deal.provider, now + 60_000);
        if let Ok(bytes) = transport.read_shard(
            &holder.endpoint,
            &request,
            &deal.shard_root.0,
            deal.shard_bytes,
        ) {
            shards[usize::from(deal.shard_index)] = Some(bytes);
        }
    }
    let serving = shards.iter().filter(|shard| shard.is_some()).count();
    let readable = tributary_store::reassemble(&ingested.manifest, &ingested.key, &shards)
        .is_ok_and(|bytes| bytes == scenario.data);
    let ledger = chain.ledger();
    let every_deal = ledger.deals(0, tributary_types::limits::QUERY_PAGE_MAX, None);
    let index_mismatches = provider_seeds
        .iter()
        .filter_map(|seed| {
            let provider = address(*seed);
            let indexed: Vec<DealId> = ledger
                .provider_deals(&provider)
                .iter()
                .map(|deal| deal.id)
                .collect();
            let scanned: Vec<DealId> = every_deal
                .iter()
                .filter(|deal| deal.provider == provider && deal.status != "closed")
                .map(|deal| deal.id)
                .collect();
            (indexed != scanned)
                .then(|| format!("{provider}: indexed {indexed:?}, scanned {scanned:?}"))
        })
        .collect();
    Ok(StorageReport {
        seed,
        struck,
        slashed,
        repairs,
        deals,
        serving,
        readable,
        supply: (supply_before, ledger.total_supply()),
        state_root: ledger.state_root().to_string(),
        refused,
        index_mismatches,
    })
}

/// The file of shard `index` under a provider's store directory.
fn shard_file(directory: &std::path::Path, index: u8) -> Result<PathBuf, String> {
    let name = format!("{index}.shard");
    let mut pending = vec![directory.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).map_err(|e| e.to_string())? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|file| file == name.as_str()) {
                return Ok(path);
            }
        }
    }
    Err(format!("no {name} under {}", directory.display()))
}
