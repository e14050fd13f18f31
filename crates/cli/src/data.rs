//! `tributary asset add` and `asset get`: the client side of the data plane.
//!
//! `add` checks and ingests a file (chunk, encrypt with a fresh data key, erasure-code into k + m
//! shards), registers the asset, records its layout (`StoreAsset`), proposes one deal per shard
//! with distinct providers, uploads each shard to its provider and waits until every provider has
//! accepted. The manifest and the data key, wrapped to the owner's own key, are kept in the home
//! (`assets/ID/`). `get` reads them back, checks the manifest against the layout on the ledger,
//! fetches shards from the providers with signed read requests (any k suffice; a corrupt or
//! missing one is replaced by another), decodes, decrypts, and writes bytes whose BLAKE3 is the
//! asset id.

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
use tributary_node::{api::TransactionResponse, provider::ReadRequest};
use tributary_store::{IngestOptions, Manifest, WrappedKey};
use tributary_types::{
    Address, AssetId, AssetKind, Call, DealView, Event, Hash32, ProviderView, StorageLayout, Terms,
};

/// How long `add` waits for providers to accept their deals.
const ACCEPT_WAIT_MS_MAX: u64 = 60_000;
/// How long a read request stays valid.
const READ_REQUEST_TTL_MS: u64 = 60_000;
/// Largest shard `get` accepts from a provider, in bytes.
const SHARD_DOWNLOAD_BYTES_MAX: u64 = tributary_types::limits::API_SHARD_BYTES_MAX as u64;

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

/// The context a data key is wrapped under: the asset id.
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
    let text = response.body_mut().read_to_string().unwrap_or_default();
    crate::client::error_message(&text).unwrap_or(text)
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
}

pub fn get(
    cli: &Cli,
    client: &Client,
    asset: AssetId,
    from: &str,
    out: &Path,
) -> Result<GetOutcome> {
    let key = keystore(cli).load(from)?;
    let saved = asset_dir(&cli.home(), &asset);
    let manifest_json = std::fs::read_to_string(saved.join("manifest.json")).with_context(|| {
        format!(
            "no manifest for asset {asset} in {}: `asset get` reads assets added from this home (licensees' key delivery comes with `asset serve-keys`)",
            saved.display()
        )
    })?;
    let manifest = Manifest::from_json(&manifest_json)?;
    let layout: StorageLayout = client.get(&format!("/v1/assets/{asset}/storage"))?;
    ensure!(
        Hash32::blake3(manifest_json.as_bytes()) == layout.manifest_root,
        "the saved manifest is not the one recorded on the ledger for {asset}"
    );
    let wrapped: WrappedKey = serde_json::from_str(
        &std::fs::read_to_string(saved.join("key.json"))
            .with_context(|| format!("reading {}", saved.join("key.json").display()))?,
    )?;
    let seed: [u8; 32] = key
        .signer
        .encode()
        .as_ref()
        .try_into()
        .map_err(|_| anyhow!("unexpected key encoding"))?;
    let data_key = tributary_store::unwrap(&wrapped, &seed, &wrap_context(&asset))
        .map_err(|error| anyhow!("the data key does not open with {from}'s key: {error}"))?;

    let providers: Vec<ProviderView> = client.get("/v1/providers")?;
    let endpoints: BTreeMap<Address, String> = providers
        .into_iter()
        .map(|provider| (provider.address, provider.endpoint))
        .collect();
    let deals: Vec<DealView> = client.get(&format!("/v1/deals?asset={asset}"))?;
    let agent = agent();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
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
    })
}
