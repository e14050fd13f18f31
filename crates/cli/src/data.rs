//! `tributary asset add`, `asset get` and `asset serve-keys`: the client side of the data plane.
//!
//! `add` checks and ingests a file (chunk, encrypt with a fresh data key, erasure-code into k + m
//! shards), registers the asset, records its layout (`StoreAsset`), proposes one deal per shard
//! with distinct providers, uploads each shard to its provider and waits until every provider has
//! accepted. The manifest and the data key, wrapped to the owner's own key, are kept in the home
//! (`assets/ID/`). `serve-keys` ([`key_agent`]) is the owner's key agent: it wraps that data key
//! to each licensee and delivers the envelopes, with the manifest, to the asset's providers.
//! `get` takes the manifest and the data key from the home when they were saved there for the
//! reader's key (the owner), and otherwise asks the asset's providers for the reader's envelope
//! (a licensee); it checks the manifest against the layout on the ledger, fetches shards with
//! signed read requests (any k suffice; a corrupt or missing one is replaced by another),
//! decodes, decrypts, and writes bytes whose BLAKE3 is the asset id.

pub mod key_agent;

use crate::{
    Cli,
    client::{Client, poll_until},
    commands::{RegisterRequest, keystore, register},
};
use anyhow::{Context, Result, anyhow, bail, ensure};
use commonware_codec::Encode;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tributary_node::{
    api::{ErrorBody, TransactionResponse},
    keystore::Key,
    provider::{KeyRequest, KeyResponse, ReadRequest},
};
use tributary_store::{DataKey, IngestOptions, Manifest, WrappedKey};
use tributary_types::{
    Address, AssetId, AssetKind, Call, DealView, Event, Hash32, ProviderView, StorageLayout, Terms,
};

/// How long `add` waits for providers to accept their deals.
const ACCEPT_WAIT_MS_MAX: u64 = 60_000;
/// How long a read request stays valid.
const READ_REQUEST_TTL_MS: u64 = 60_000;
/// Largest shard `get` accepts from a provider, in bytes.
const SHARD_DOWNLOAD_BYTES_MAX: u64 = tributary_types::limits::API_SHARD_BYTES_MAX as u64;
/// Largest key response (the manifest and an envelope) `get` accepts from a provider, in bytes.
const KEY_DOWNLOAD_BYTES_MAX: u64 = tributary_types::limits::API_KEY_DELIVERY_BODY_BYTES_MAX as u64;
/// Largest error response read from a provider, in bytes.
const ERROR_DOWNLOAD_BYTES_MAX: u64 = 64 * 1024;

/// What `asset add` was asked to do.
pub struct AddRequest<'a> {
    /// The file.
    pub file: &'a Path,
    /// The owner's key name.
    pub from: &'a str,
    /// Dataset or model.
    pub kind: AssetKind,
    /// Display name.
    pub name: Option<&'a str>,
    /// License terms.
    pub terms: Terms,
    /// Data shards (k).
    pub data_shards: usize,
    /// Parity shards (m).
    pub parity_shards: usize,
    /// Epochs each deal pays for.
    pub epochs: u32,
}

/// One placed shard.
#[derive(serde::Serialize)]
pub struct Placement {
    /// Shard index.
    pub shard: u8,
    /// The deal.
    pub deal: u64,
    /// The provider.
    pub provider: Address,
    /// Bytes.
    pub bytes: u64,
}

/// What `asset add` did.
#[derive(serde::Serialize)]
pub struct AddOutcome {
    /// The asset id.
    pub asset_id: AssetId,
    /// Where the manifest and the wrapped key were saved.
    pub saved: PathBuf,
    /// Each shard's deal and provider.
    pub shards: Vec<Placement>,
}

fn asset_dir(home: &Path, asset: &AssetId) -> PathBuf {
    home.join("assets").join(asset.to_string())
}

/// Unix time in milliseconds (0 if the clock is before 1970).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The 32-byte ed25519 seed of a key (what unwrapping a data key needs).
fn seed_of(key: &Key) -> Result<[u8; 32]> {
    key.signer
        .encode()
        .as_ref()
        .try_into()
        .map_err(|_| anyhow!("unexpected encoding of key `{}`", key.name))
}

/// The context a data key is wrapped under: the asset id. The same for the owner's own copy and
/// for every licensee's envelope (the recipient's key is bound in by the wrap itself).
fn wrap_context(asset: &AssetId) -> Vec<u8> {
    let mut context = b"tributary-data-key-v1".to_vec();
    context.extend_from_slice(asset.as_bytes());
    context
}

fn expect_success(what: &str, response: &TransactionResponse) -> Result<()> {
    ensure!(
        response.status == "finalized",
        "{what}: transaction {} {}: {}",
        response.tx_hash,
        response.status,
        response.reason.as_deref().unwrap_or("")
    );
    Ok(())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// A provider's error response as one line (see [`crate::client::error_message`]).
fn error_text(response: &mut ureq::http::Response<ureq::Body>) -> String {
    let (code, message) = error_parts(response);
    match code {
        Some(code) => format!("{message} ({code})"),
        None => message,
    }
}

/// A provider's error response as its stable code (when it is a JSON error) and message.
fn error_parts(response: &mut ureq::http::Response<ureq::Body>) -> (Option<String>, String) {
    let status = response.status();
    let text = response
        .body_mut()
        .with_config()
        .limit(ERROR_DOWNLOAD_BYTES_MAX)
        .read_to_string()
        .unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => (Some(body.error.code), body.error.message),
        Err(_) => (None, format!("HTTP {status}: {text}")),
    }
}

pub fn add(cli: &Cli, client: &Client, request: AddRequest<'_>) -> Result<AddOutcome> {
    let key = keystore(cli).load(request.from)?;
    let options = IngestOptions::new(request.data_shards, request.parity_shards);
    let ingested = tributary_store::ingest(request.file, &options)
        .with_context(|| format!("cannot ingest {}", request.file.display()))?;
    let manifest = &ingested.manifest;
    let shard_count = ingested.shards.len();
    let shard_bytes = ingested
        .shards
        .first()
        .map_or(0, |shard| shard.len() as u64);
    ensure!(
        ingested
            .shards
            .iter()
            .all(|shard| shard.len() as u64 == shard_bytes),
        "the shards differ in size"
    );
    let providers: Vec<ProviderView> = client.get("/v1/providers")?;
    if providers.len() < shard_count {
        bail!(
            "{shard_count} shards need {shard_count} storage providers, the chain has {}; run the devnet with --storage-providers {shard_count} or lower --data-shards/--parity-shards",
            providers.len()
        );
    }
    // Spread: the least committed providers first (ties by address).
    let mut chosen = providers;
    chosen.sort_by(|a, b| {
        a.committed_bytes
            .cmp(&b.committed_bytes)
            .then(a.address.cmp(&b.address))
    });
    chosen.truncate(shard_count);

    let (response, asset) = register(
        cli,
        client,
        RegisterRequest {
            file: request.file,
            from: request.from,
            kind: request.kind,
            name: request.name,
            owners: Vec::new(),
            parents: Vec::new(),
            terms: request.terms,
            fee: None,
        },
    )?;
    expect_success("registering the asset", &response)?;
    ensure!(
        asset.0 == manifest.asset_id.0,
        "the registered id differs from the manifest's"
    );
    // Keep the manifest and the wrapped key before anything is placed, so an interrupted add
    // can be resumed or cleaned up from them.
    let manifest_json = manifest.to_json()?;
    let wrapped = tributary_store::wrap(
        &ingested.key,
        &key_public(&key.signer),
        &wrap_context(&asset),
    )?;
    let saved = asset_dir(&cli.home(), &asset);
    std::fs::create_dir_all(&saved).with_context(|| format!("creating {}", saved.display()))?;
    std::fs::write(saved.join("manifest.json"), &manifest_json)?;
    std::fs::write(
        saved.join("key.json"),
        serde_json::to_string_pretty(&wrapped)?,
    )?;

    let layout = StorageLayout {
        manifest_root: Hash32::blake3(manifest_json.as_bytes()),
        data_shards: u8::try_from(manifest.data_shards)?,
        parity_shards: u8::try_from(manifest.parity_shards)?,
        shard_bytes,
        shard_roots: manifest
            .shards
            .iter()
            .map(|shard| Hash32(shard.root.0))
            .collect(),
    };
    let response = client.send(&key, Call::StoreAsset { asset, layout }, None)?;
    expect_success("recording the layout", &response)?;

    let agent = agent();
    let mut shards = Vec::new();
    for (index, (shard, provider)) in ingested.shards.iter().zip(&chosen).enumerate() {
        let shard_index = u8::try_from(index)?;
        let response = client.send(
            &key,
            Call::CreateDeal {
                asset,
                shard_index,
                provider: provider.address,
                epochs: request.epochs,
            },
            None,
        )?;
        expect_success("proposing a deal", &response)?;
        let deal = response
            .receipt
            .as_ref()
            .and_then(|receipt| {
                receipt.events.iter().find_map(|event| match event {
                    Event::DealCreated { deal, .. } => Some(*deal),
                    _ => None,
                })
            })
            .ok_or_else(|| anyhow!("no deal in the receipt"))?;
        let url = format!("{}/deals/{deal}/shard", provider.endpoint);
        let mut uploaded = agent
            .put(&url)
            .header("content-type", "application/octet-stream")
            .send(&shard[..])
            .with_context(|| format!("uploading shard {index} to {url}"))?;
        if !uploaded.status().is_success() {
            bail!(
                "provider {} refused shard {index}: {}",
                provider.address,
                error_text(&mut uploaded)
            );
        }
        if !cli.json {
            eprintln!(
                "  shard {index}: {} bytes → deal {deal} with {}",
                shard.len(),
                provider.address
            );
        }
        shards.push(Placement {
            shard: shard_index,
            deal,
            provider: provider.address,
            bytes: shard.len() as u64,
        });
    }
    // Every provider accepts once it holds its shard.
    poll_until(
        &format!("every provider to accept (see `tributary storage deals --asset {asset}`)"),
        ACCEPT_WAIT_MS_MAX,
        || {
            let deals: Vec<DealView> = client.get(&format!("/v1/deals?asset={asset}"))?;
            let accepted = shards.iter().all(|placement| {
                deals
                    .iter()
                    .any(|deal| deal.id == placement.deal && deal.status == "active")
            });
            Ok(accepted.then_some(()))
        },
    )?;
    Ok(AddOutcome {
        asset_id: asset,
        saved,
        shards,
    })
}

/// The ed25519 public key of `signer`, as bytes.
fn key_public(signer: &commonware_cryptography::ed25519::PrivateKey) -> [u8; 32] {
    use commonware_cryptography::Signer;
    let encoded = signer.public_key().encode();
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(&encoded[..32.min(encoded.len())]);
    bytes
}

/// What `asset get` did.
#[derive(serde::Serialize)]
pub struct GetOutcome {
    /// The asset id.
    pub asset_id: AssetId,
    /// Where the bytes were written.
    pub out: PathBuf,
    /// Bytes written.
    pub bytes: u64,
    /// Shards used, by index.
    pub shards_used: Vec<u8>,
    /// Shards refused or failing (index and why).
    pub shards_skipped: Vec<(u8, String)>,
    /// Where the data key came from: `home` (saved by `asset add`) or the provider that served
    /// the reader's envelope.
    pub key_from: String,
}

/// What the home holds for an asset and a reader.
enum SavedKey {
    /// The manifest and the data key, which opened with the reader's key.
    Opened {
        manifest_json: String,
        data_key: DataKey,
    },
    /// A manifest and a key wrapped to someone else (another account added it from this home).
    OtherKey,
    /// Nothing (the asset was not added from this home).
    Absent,
}

fn saved_key(home: &Path, asset: &AssetId, seed: &[u8; 32]) -> Result<SavedKey> {
    let saved = asset_dir(home, asset);
    let manifest_path = saved.join("manifest.json");
    if !manifest_path.is_file() {
        return Ok(SavedKey::Absent);
    }
    let manifest_json = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let key_path = saved.join("key.json");
    let wrapped: WrappedKey = serde_json::from_str(
        &std::fs::read_to_string(&key_path)
            .with_context(|| format!("reading {}", key_path.display()))?,
    )
    .with_context(|| format!("{} is not a wrapped key", key_path.display()))?;
    Ok(
        match tributary_store::unwrap(&wrapped, seed, &wrap_context(asset)) {
            Ok(data_key) => SavedKey::Opened {
                manifest_json,
                data_key,
            },
            Err(_) => SavedKey::OtherKey,
        },
    )
}

/// The providers of an asset's deals to ask, active deals first, each once.
fn providers_to_ask(deals: &[DealView]) -> Vec<Address> {
    let mut providers: Vec<Address> = Vec::new();
    for status in ["active", "failed"] {
        for deal in deals.iter().filter(|deal| deal.status == status) {
            if !providers.contains(&deal.provider) {
                providers.push(deal.provider);
            }
        }
    }
    providers
}

/// Asks the asset's providers, one after another, for the reader's key envelope and the
/// manifest; checks the manifest against the ledger's root and opens the envelope with the
/// reader's key. Returns the manifest, the data key and the provider that served them.
fn delivered_key(
    agent: &ureq::Agent,
    key: &Key,
    asset: AssetId,
    layout: &StorageLayout,
    deals: &[DealView],
    endpoints: &BTreeMap<Address, String>,
) -> Result<(String, DataKey, Address)> {
    let from = &key.name;
    let seed = seed_of(key)?;
    let providers = providers_to_ask(deals);
    if providers.is_empty() {
        bail!(
            "no storage provider holds asset {asset} under an active deal (see `tributary storage deals --asset {asset}`)"
        );
    }
    let mut refusals = Vec::new();
    let mut unlicensed = false;
    let mut undelivered = false;
    for provider in providers {
        let Some(endpoint) = endpoints.get(&provider) else {
            refusals.push(format!("{provider}: not registered"));
            continue;
        };
        let request =
            KeyRequest::sign(&key.signer, asset, provider, now_ms() + READ_REQUEST_TTL_MS);
        let url = format!("{endpoint}/assets/{asset}/key");
        let mut response = match agent.post(&url).send_json(&request) {
            Ok(response) => response,
            Err(error) => {
                refusals.push(format!("{provider}: {error}"));
                continue;
            }
        };
        if !response.status().is_success() {
            let (code, message) = error_parts(&mut response);
            match code.as_deref() {
                Some("not_authorised") => unlicensed = true,
                Some("no_key_envelope") => undelivered = true,
                _ => {}
            }
            refusals.push(format!("{provider}: {message}"));
            continue;
        }
        let served: Result<KeyResponse> = response
            .body_mut()
            .with_config()
            .limit(KEY_DOWNLOAD_BYTES_MAX)
            .read_to_string()
            .map_err(anyhow::Error::from)
            .and_then(|text| serde_json::from_str(&text).map_err(anyhow::Error::from));
        let served = match served {
            Ok(served) => served,
            Err(error) => {
                refusals.push(format!("{provider}: unreadable key response: {error}"));
                continue;
            }
        };
        if served.asset != asset
            || Hash32::blake3(served.manifest.as_bytes()) != layout.manifest_root
        {
            refusals.push(format!(
                "{provider}: served a manifest that is not the one on the ledger"
            ));
            continue;
        }
        match tributary_store::unwrap(&served.envelope, &seed, &wrap_context(&asset)) {
            Ok(data_key) => return Ok((served.manifest, data_key, provider)),
            Err(_) => refusals.push(format!(
                "{provider}: the envelope it keeps for {from} does not open with {from}'s key"
            )),
        }
    }
    if unlicensed {
        bail!(
            "{from} holds no license for asset {asset}, so its storage providers refuse to hand over a key; buy one with `tributary license buy {asset} --from {from}`, then, once the owner's key agent (`tributary asset serve-keys`) has delivered the key, run this again"
        );
    }
    if undelivered {
        bail!(
            "{from} may read asset {asset}, but the owner's key agent has not delivered a key for {from} yet; ask the owner to run `tributary asset serve-keys --from OWNER`, then run this again"
        );
    }
    bail!(
        "no provider of asset {asset} gave {from} its key: {}",
        refusals.join("; ")
    )
}

pub fn get(
    cli: &Cli,
    client: &Client,
    asset: AssetId,
    from: &str,
    out: &Path,
) -> Result<GetOutcome> {
    let key = keystore(cli).load(from)?;
    let seed = seed_of(&key)?;
    let layout: StorageLayout = client.get(&format!("/v1/assets/{asset}/storage"))?;
    let providers: Vec<ProviderView> = client.get("/v1/providers")?;
    let endpoints: BTreeMap<Address, String> = providers
        .into_iter()
        .map(|provider| (provider.address, provider.endpoint))
        .collect();
    let deals: Vec<DealView> = client.get(&format!("/v1/deals?asset={asset}"))?;
    let agent = agent();
    // The owner who added the asset from this home has the key; anyone else asks the providers
    // for the envelope the owner's key agent delivered to them.
    let (manifest_json, data_key, key_from) = match saved_key(&cli.home(), &asset, &seed)? {
        SavedKey::Opened {
            manifest_json,
            data_key,
        } => (manifest_json, data_key, "home".to_string()),
        saved => match delivered_key(&agent, &key, asset, &layout, &deals, &endpoints) {
            Ok((manifest_json, data_key, provider)) => {
                (manifest_json, data_key, format!("provider {provider}"))
            }
            Err(error) if matches!(saved, SavedKey::OtherKey) => {
                return Err(error.context(format!(
                        "the data key saved in this home for {asset} does not open with {from}'s key (another account added it)"
                    )));
            }
            Err(error) => return Err(error),
        },
    };
    ensure!(
        Hash32::blake3(manifest_json.as_bytes()) == layout.manifest_root,
        "the saved manifest is not the one recorded on the ledger for {asset}"
    );
    let manifest = Manifest::from_json(&manifest_json)?;
    let now_ms = now_ms();
    let total = manifest.shards.len();
    let needed = usize::try_from(manifest.data_shards)?;
    let mut shards: Vec<Option<Vec<u8>>> = vec![None; total];
    let mut used = Vec::new();
    let mut skipped = Vec::new();
    // Active deals first; a failed deal's provider missed a challenge but may still hold its
    // shard (every shard is checked against its root anyway).
    let candidates = deals
        .iter()
        .filter(|deal| deal.status == "active")
        .chain(deals.iter().filter(|deal| deal.status == "failed"));
    for deal in candidates {
        if used.len() >= needed {
            break;
        }
        let index = usize::from(deal.shard_index);
        if index >= total || shards[index].is_some() {
            continue;
        }
        let Some(endpoint) = endpoints.get(&deal.provider) else {
            skipped.push((deal.shard_index, "provider not registered".to_string()));
            continue;
        };
        let request = ReadRequest::sign(
            &key.signer,
            asset,
            deal.shard_index,
            deal.provider,
            now_ms + READ_REQUEST_TTL_MS,
        );
        let url = format!("{endpoint}/read");
        let fetched = agent
            .post(&url)
            .send_json(&request)
            .map_err(|error| error.to_string());
        let bytes = match fetched {
            Ok(mut response) if response.status().is_success() => response
                .body_mut()
                .with_config()
                .limit(SHARD_DOWNLOAD_BYTES_MAX)
                .read_to_vec()
                .map_err(|error| error.to_string()),
            Ok(mut response) => Err(error_text(&mut response)),
            Err(error) => Err(error),
        };
        match bytes {
            // Checked against the manifest's root: a corrupt shard is skipped, not used.
            Ok(bytes) if blake3::hash(&bytes).as_bytes() == &manifest.shards[index].root.0 => {
                shards[index] = Some(bytes);
                used.push(deal.shard_index);
            }
            Ok(_) => skipped.push((deal.shard_index, "corrupt: root mismatch".to_string())),
            Err(reason) => skipped.push((deal.shard_index, reason)),
        }
    }
    if used.len() < needed {
        bail!(
            "only {} of the {needed} shards needed could be fetched; skipped: {skipped:?}",
            used.len()
        );
    }
    let bytes = tributary_store::reassemble(&manifest, &data_key, &shards)?;
    let temporary = out.with_extension("partial");
    std::fs::write(&temporary, &bytes)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(GetOutcome {
        asset_id: asset,
        out: out.to_path_buf(),
        bytes: bytes.len() as u64,
        shards_used: used,
        shards_skipped: skipped,
        key_from,
    })
}
