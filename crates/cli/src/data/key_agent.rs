//! `tributary asset serve-keys`: an owner's key agent.
//!
//! It holds one key, the owner's, and the home's `assets/ID/` directories that `asset add` wrote
//! (the manifest and the data key wrapped to the owner). Each pass it
//!
//! 1. opens the data key of every asset saved in the home whose key opens with the owner's key
//!    and of which the ledger lists the owner as an owner;
//! 2. pages the ledger's license tokens (`GET /v1/licenses`) for holders of those assets (and
//!    adds the assets' co-owners and the owner itself, so that losing this home does not lose
//!    the owner's access: `asset get` from a home holding only the owner's key reads through
//!    its envelope);
//! 3. asks each provider of an active deal of the asset which readers it has an envelope for;
//! 4. for each reader missing somewhere whom the ledger lets read (`GET
//!    /v1/assets/{id}/readers/{address}`: the same rule providers apply, so a training session's
//!    license or an expired one gets nothing), wraps the data key to the reader's address
//!    (X25519 + HKDF + XChaCha20-Poly1305, [`tributary_store::wrap`]) and delivers the envelopes,
//!    signed by the owner, with the manifest when the provider lacks it.
//!
//! Passes are idempotent: what the providers already hold is not sent again, so a restarted agent
//! picks up where it left off. Providers never see a data key, only envelopes they cannot open.

use super::{agent, asset_dir, error_text, now_ms, seed_of, wrap_context};
use crate::{
    Cli,
    client::Client,
    commands::{keystore, parse_asset_id},
    output,
};
use anyhow::{Result, anyhow, bail};
use serde::Serialize;
use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::Duration,
};
use tributary_node::{
    api::ReaderResponse,
    keystore::Key,
    provider::{DeliveryReceipt, EnvelopeListing, KeyDelivery},
};
use tributary_store::{DataKey, WrappedKey};
use tributary_types::{
    Address, AssetId, AssetView, DealView, LicenseTokenView, ProviderView,
    limits::{KEY_ENVELOPES_PER_DELIVERY_MAX, QUERY_PAGE_MAX},
};

/// Fewest milliseconds between passes.
pub const INTERVAL_MS_MIN: u64 = 100;
/// How long a signed delivery stays valid.
const DELIVERY_TTL_MS: u64 = 60_000;

/// An asset the agent serves.
struct OwnedAsset {
    asset: AssetId,
    manifest_json: String,
    data_key: DataKey,
    /// Its other owners (they read with an envelope too).
    co_owners: Vec<Address>,
}

/// One reader's key delivered in a pass.
#[derive(Serialize)]
pub struct Delivery {
    /// The asset.
    pub asset: AssetId,
    /// The reader.
    pub reader: Address,
    /// The license token that lets it read (none for a co-owner).
    pub license_token: Option<u64>,
    /// Providers that took its envelope in this pass.
    pub providers: Vec<Address>,
}

/// What one pass did.
#[derive(Serialize, Default)]
pub struct PassOutcome {
    /// Assets served (saved in the home, opened with the owner's key, owned on the ledger).
    pub assets: usize,
    /// New deliveries.
    pub deliveries: Vec<Delivery>,
    /// Deliveries that failed this pass (retried on the next).
    pub failures: Vec<String>,
}

/// The agent's state across passes.
pub struct KeyAgent<'a> {
    client: &'a Client,
    home: PathBuf,
    key: Key,
    seed: [u8; 32],
    http: ureq::Agent,
    /// The last license token id read.
    license_cursor: u64,
    /// Assets served as of the last pass (a new one rereads the tokens from the start).
    served: BTreeSet<AssetId>,
    /// Holders of licenses to served assets: asset → reader → a token id.
    holders: BTreeMap<AssetId, BTreeMap<Address, u64>>,
    /// Readers the ledger did not let read (until they get another token).
    unreadable: BTreeSet<(AssetId, Address)>,
}

impl<'a> KeyAgent<'a> {
    /// The agent of key `from` in `cli`'s home, talking to the node through `client`.
    pub fn new(cli: &Cli, client: &'a Client, from: &str) -> Result<Self> {
        let key = keystore(cli).load(from)?;
        let seed = seed_of(&key)?;
        Ok(Self {
            client,
            home: cli.home(),
            key,
            seed,
            http: agent(),
            license_cursor: 0,
            served: BTreeSet::new(),
            holders: BTreeMap::new(),
            unreadable: BTreeSet::new(),
        })
    }

    /// The assets saved in the home that this owner serves.
    fn owned_assets(&self) -> Result<Vec<OwnedAsset>> {
        let directory = self.home.join("assets");
        let entries = match std::fs::read_dir(&directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(anyhow!("reading {}: {error}", directory.display())),
        };
        let owner = self.key.address();
        let mut owned = Vec::new();
        for entry in entries.flatten() {
            let Some(asset) = entry
                .file_name()
                .to_str()
                .and_then(|name| parse_asset_id(name).ok())
            else {
                continue;
            };
            let saved = asset_dir(&self.home, &asset);
            let read = |name: &str| std::fs::read_to_string(saved.join(name));
            let (Ok(manifest_json), Ok(key_json)) = (read("manifest.json"), read("key.json"))
            else {
                tracing::warn!(target: "tributary::key_agent", %asset, "skipping an asset directory without manifest.json and key.json");
                continue;
            };
            let Ok(wrapped) = serde_json::from_str::<WrappedKey>(&key_json) else {
                tracing::warn!(target: "tributary::key_agent", %asset, "skipping an asset whose key.json is not a wrapped key");
                continue;
            };
            let Ok(data_key) = tributary_store::unwrap(&wrapped, &self.seed, &wrap_context(&asset))
            else {
                // Added from this home by another account: not this agent's to serve.
                tracing::debug!(target: "tributary::key_agent", %asset, "the saved key is wrapped to another account");
                continue;
            };
            let view: AssetView = self.client.get(&format!("/v1/assets/{asset}"))?;
            if !view.owners.iter().any(|listed| listed.address == owner) {
                tracing::warn!(target: "tributary::key_agent", %asset, %owner, "the ledger does not list this key as an owner; skipping");
                continue;
            }
            owned.push(OwnedAsset {
                asset,
                manifest_json,
                data_key,
                co_owners: view
                    .owners
                    .iter()
                    .map(|listed| listed.address)
                    .filter(|address| *address != owner)
                    .collect(),
            });
        }
        Ok(owned)
    }

    /// Reads license tokens minted since the last pass, keeping the holders of served assets.
    fn read_new_licenses(&mut self) -> Result<()> {
        loop {
            let page: Vec<LicenseTokenView> = self.client.get(&format!(
                "/v1/licenses?after={}&limit={QUERY_PAGE_MAX}",
                self.license_cursor
            ))?;
            for token in &page {
                self.license_cursor = self.license_cursor.max(token.id);
                if !self.served.contains(&token.asset) {
                    continue;
                }
                // A new token may let a reader read where an earlier one did not.
                self.unreadable.remove(&(token.asset, token.holder));
                self.holders
                    .entry(token.asset)
                    .or_default()
                    .entry(token.holder)
                    .or_insert(token.id);
            }
            if page.len() < QUERY_PAGE_MAX {
                return Ok(());
            }
        }
    }

    /// Whether the ledger lets `reader` read `asset` (remembering a refusal).
    fn may_read(&mut self, asset: &AssetId, reader: &Address) -> Result<bool> {
        if self.unreadable.contains(&(*asset, *reader)) {
            return Ok(false);
        }
        let answer: ReaderResponse = self
            .client
            .get(&format!("/v1/assets/{asset}/readers/{reader}"))?;
        if !answer.may_read {
            self.unreadable.insert((*asset, *reader));
        }
        Ok(answer.may_read)
    }

    /// One pass (see the module docs).
    pub fn pass(&mut self) -> Result<PassOutcome> {
        let owned = self.owned_assets()?;
        let served: BTreeSet<AssetId> = owned.iter().map(|owned| owned.asset).collect();
        if !served.is_subset(&self.served) {
            // Tokens of a newly served asset may predate the cursor.
            self.license_cursor = 0;
        }
        self.served = served;
        self.read_new_licenses()?;
        let providers: Vec<ProviderView> = self.client.get("/v1/providers")?;
        let endpoints: BTreeMap<Address, String> = providers
            .into_iter()
            .map(|provider| (provider.address, provider.endpoint))
            .collect();
        let mut outcome = PassOutcome {
            assets: owned.len(),
            ..PassOutcome::default()
        };
        for asset in &owned {
            self.serve_asset(asset, &endpoints, &mut outcome)?;
        }
        Ok(outcome)
    }

    fn serve_asset(
        &mut self,
        owned: &OwnedAsset,
        endpoints: &BTreeMap<Address, String>,
        outcome: &mut PassOutcome,
    ) -> Result<()> {
        let asset = owned.asset;
        let mut readers: BTreeMap<Address, Option<u64>> = self
            .holders
            .get(&asset)
            .map(|holders| {
                holders
                    .iter()
                    .map(|(reader, token)| (*reader, Some(*token)))
                    .collect()
            })
            .unwrap_or_default();
        for co_owner in &owned.co_owners {
            readers.entry(*co_owner).or_insert(None);
        }
        // The owner too: with an envelope at the providers, the owner reads the asset with its
        // account key alone, even if this home (and the key `asset add` saved in it) is lost.
        readers.entry(self.key.address()).or_insert(None);
        let deals: Vec<DealView> = self.client.get(&format!("/v1/deals?asset={asset}"))?;
        let mut providers: Vec<Address> = deals
            .iter()
            .filter(|deal| deal.status == "active")
            .map(|deal| deal.provider)
            .collect();
        providers.sort();
        providers.dedup();
        // Envelopes made this pass, shared by every provider; and who got them where.
        let mut envelopes: BTreeMap<Address, WrappedKey> = BTreeMap::new();
        let mut delivered: BTreeMap<Address, Vec<Address>> = BTreeMap::new();
        for provider in providers {
            let Some(endpoint) = endpoints.get(&provider) else {
                outcome.failures.push(format!(
                    "provider {provider} of asset {asset} is not registered"
                ));
                continue;
            };
            let url = format!("{endpoint}/assets/{asset}/envelopes");
            let listing: EnvelopeListing = match self.http.get(&url).call() {
                Ok(mut response) if response.status().is_success() => {
                    match response.body_mut().read_json() {
                        Ok(listing) => listing,
                        Err(error) => {
                            outcome.failures.push(format!(
                                "provider {provider}: unreadable envelope listing of asset {asset}: {error}"
                            ));
                            continue;
                        }
                    }
                }
                Ok(mut response) => {
                    outcome.failures.push(format!(
                        "provider {provider} did not list the envelopes of asset {asset}: {}",
                        error_text(&mut response)
                    ));
                    continue;
                }
                Err(error) => {
                    outcome
                        .failures
                        .push(format!("provider {provider} at {url}: {error}"));
                    continue;
                }
            };
            let held: BTreeSet<Address> = listing.readers.into_iter().collect();
            let mut missing = Vec::new();
            for reader in readers.keys() {
                if !held.contains(reader) && self.may_read(&asset, reader)? {
                    missing.push(*reader);
                }
            }
            let mut manifest_stored = listing.manifest_stored;
            for batch in missing.chunks(KEY_ENVELOPES_PER_DELIVERY_MAX) {
                let mut sealed = BTreeMap::new();
                for reader in batch {
                    if !envelopes.contains_key(reader) {
                        let wrapped = tributary_store::wrap(
                            &owned.data_key,
                            &reader.0,
                            &wrap_context(&asset),
                        )
                        .map_err(|error| {
                            anyhow!("wrapping the data key of {asset} to {reader}: {error}")
                        })?;
                        envelopes.insert(*reader, wrapped);
                    }
                    sealed.insert(*reader, envelopes[reader].clone());
                }
                let delivery = KeyDelivery::sign(
                    &self.key.signer,
                    asset,
                    provider,
                    (!manifest_stored).then(|| owned.manifest_json.clone()),
                    sealed,
                    now_ms() + DELIVERY_TTL_MS,
                );
                match self.http.put(&url).send_json(&delivery) {
                    Ok(mut response) if response.status().is_success() => {
                        let receipt: Option<DeliveryReceipt> = response.body_mut().read_json().ok();
                        tracing::info!(target: "tributary::key_agent", %asset, %provider, stored = batch.len(), total = receipt.map(|receipt| receipt.total), "delivered key envelopes");
                        manifest_stored = true;
                        for reader in batch {
                            delivered.entry(*reader).or_default().push(provider);
                        }
                    }
                    Ok(mut response) => {
                        outcome.failures.push(format!(
                            "provider {provider} refused the key envelopes of asset {asset}: {}",
                            error_text(&mut response)
                        ));
                        break;
                    }
                    Err(error) => {
                        outcome
                            .failures
                            .push(format!("provider {provider} at {url}: {error}"));
                        break;
                    }
                }
            }
        }
        for (reader, providers) in delivered {
            outcome.deliveries.push(Delivery {
                asset,
                reader,
                license_token: readers.get(&reader).copied().flatten(),
                providers,
            });
        }
        Ok(())
    }
}

/// One line for a delivery.
fn describe(delivery: &Delivery) -> String {
    format!(
        "delivered the data key of {} to {} ({}) at {} provider{}",
        delivery.asset,
        delivery.reader,
        delivery
            .license_token
            .map_or_else(|| "owner".to_string(), |token| format!("license {token}")),
        delivery.providers.len(),
        if delivery.providers.len() == 1 {
            ""
        } else {
            "s"
        }
    )
}

/// `tributary asset serve-keys --from NAME [--once] [--interval-ms N]`.
pub fn serve(cli: &Cli, client: &Client, from: &str, once: bool, interval_ms: u64) -> Result<()> {
    if interval_ms < INTERVAL_MS_MIN {
        bail!("--interval-ms must be at least {INTERVAL_MS_MIN}, got {interval_ms}");
    }
    let mut agent = KeyAgent::new(cli, client, from)?;
    if once {
        let outcome = agent.pass()?;
        if cli.json {
            output::json(&outcome)?;
        } else {
            for delivery in &outcome.deliveries {
                println!("{}", describe(delivery));
            }
            println!(
                "{from}'s key agent: {} asset{} served, {} new deliver{}",
                outcome.assets,
                if outcome.assets == 1 { "" } else { "s" },
                outcome.deliveries.len(),
                if outcome.deliveries.len() == 1 {
                    "y"
                } else {
                    "ies"
                }
            );
        }
        if !outcome.failures.is_empty() {
            bail!(
                "some keys could not be delivered (run again to retry): {}",
                outcome.failures.join("; ")
            );
        }
        return Ok(());
    }
    if !cli.json {
        eprintln!(
            "serving the data keys of {from}'s assets in {} to their licensees every {interval_ms} ms; Ctrl-C to stop",
            cli.home().join("assets").display()
        );
    }
    loop {
        match agent.pass() {
            Ok(outcome) => {
                for delivery in &outcome.deliveries {
                    if cli.json {
                        println!("{}", serde_json::to_string(delivery)?);
                    } else {
                        println!("{}", describe(delivery));
                    }
                }
                for failure in &outcome.failures {
                    eprintln!("warning: {failure}; retrying");
                }
            }
            Err(error) => eprintln!("warning: {error:#}; retrying"),
        }
        std::thread::sleep(Duration::from_millis(interval_ms));
    }
}
