//! `tributary asset add`, `asset get` and `asset serve-keys`: the client side of the data plane.
//!
//! `add` checks and ingests a file (chunk, encrypt with a fresh data key, erasure-code into k + m
//! shards), keeps the manifest and the data key, wrapped to the owner's own key, in the home
//! (`assets/ID/`), registers the asset, records its layout (`StoreAsset`), proposes one deal per
//! shard with distinct providers, uploads each shard to its provider and waits until every
//! provider has accepted; a provider that cannot take its shard (unreachable, refusing, or silent
//! for the upload idle timeout), or takes it but does not accept within the accept timeout, loses
//! the deal (cancelled, the escrow back) and the shard goes to another ([`Placer`]). It is resumable: run again after an
//! interruption, it ingests under the saved key (so the shards match the roots already
//! recorded) and skips every step the ledger shows done, reusing deals and uploading only to
//! deals still waiting. `serve-keys` ([`key_agent`]) is the owner's key agent: it wraps that
//! data key to each licensee and delivers the envelopes, with the manifest, to the asset's
//! providers.
//! `get` takes the manifest and the data key from the home when they were saved there for the
//! reader's key (the owner), and otherwise asks the asset's providers for the reader's envelope
//! (a licensee); it checks the manifest against the layout on the ledger, streams k shards at
//! once with signed read requests ([`stream`]: a corrupt or missing one is replaced by another)
//! and decodes, decrypts and writes them as they arrive, keeping the output only if its BLAKE3
//! is the asset id.

pub mod key_agent;
mod stream;

use crate::{
    Cli,
    client::{Client, FINALITY_WAIT_MS_MAX, poll_until},
    commands::{RegisterRequest, keystore, register_call},
    output::Phases,
};
use anyhow::{Context, Result, anyhow, bail, ensure};
use commonware_codec::Encode;
use indicatif::{ProgressBar, ProgressStyle};
use std::{
    collections::{BTreeMap, BTreeSet},
    io::IsTerminal,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tributary_blobs::{BlobConfig, BlobNode, Serving};
use tributary_node::{
    api::{ErrorBody, TransactionResponse},
    keystore::Key,
    provider::{IrohTransport, KeyRequest, KeyResponse, ReadRequest, secret_seed},
};
use tributary_store::{CipherKind, DataKey, IngestOptions, Manifest, Reassembler, WrappedKey};
use tributary_types::{
    AccountView, Address, AssetId, AssetKind, AssetView, Call, DealView, Hash32, ProviderView,
    StorageLayout, Terms,
};

/// How long, by default, `add` waits for providers to accept their deals once they have their
/// shards; a provider that has not accepted by then loses its deal and the shard goes elsewhere.
pub const ACCEPT_TIMEOUT_MS: u64 = 60_000;
/// Longest accept timeout `asset add` takes (one hour).
pub const ACCEPT_TIMEOUT_MS_MAX: u64 = 3_600_000;
/// How long a read request stays valid.
const READ_REQUEST_TTL_MS: u64 = 60_000;
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
    /// How long an upload may wait for its provider to take more bytes.
    pub upload_idle_timeout_ms: u64,
    /// How long providers have to accept their deals once they have their shards.
    pub accept_timeout_ms: u64,
    /// Largest shard a storage provider takes, in bytes (the API's
    /// [`API_SHARD_BYTES_MAX`](tributary_types::limits::API_SHARD_BYTES_MAX)): a file whose
    /// shards would be larger is refused before anything is registered.
    pub shard_bytes_max: u64,
}

impl<'a> AddRequest<'a> {
    /// Storing `file` from `from` as a dataset under `terms`, with the command's defaults: 4 + 2
    /// shards, deals of 100 epochs and the default timeouts.
    pub fn new(file: &'a Path, from: &'a str, terms: Terms) -> Self {
        Self {
            file,
            from,
            kind: AssetKind::Dataset,
            name: None,
            terms,
            data_shards: 4,
            parity_shards: 2,
            epochs: 100,
            upload_idle_timeout_ms: UPLOAD_IDLE_TIMEOUT_MS,
            accept_timeout_ms: ACCEPT_TIMEOUT_MS,
            shard_bytes_max: tributary_types::limits::API_SHARD_BYTES_MAX as u64,
        }
    }
}

/// Refuses an asset of `asset_bytes` whose shards, one `data_shards`-th of it each (at least),
/// would be larger than `shard_bytes_max`, the most a provider takes: said before the file is
/// read (from its size on disk), and again once ingest knows the exact shard size, so nothing is
/// registered for an asset no provider could take.
fn check_shard_size(
    file: &Path,
    asset_bytes: u64,
    shard_bytes: u64,
    data_shards: usize,
    parity_shards: usize,
    shard_bytes_max: u64,
) -> Result<()> {
    if shard_bytes <= shard_bytes_max {
        return Ok(());
    }
    // The fewest data shards that bring each shard under the limit (with room for a stripe's
    // padding), if the shard count allows it.
    let needed = asset_bytes
        .div_ceil(
            shard_bytes_max
                .saturating_sub(tributary_store::limits::STRIPE_BYTES_MAX)
                .max(1),
        )
        .max(data_shards as u64 + 1);
    let advice = if needed + parity_shards as u64 <= tributary_store::limits::SHARDS_MAX as u64 {
        format!(
            "store it with more data shards (--data-shards {needed}), or split it into several assets"
        )
    } else {
        "split it into several assets".to_string()
    };
    bail!(
        "{} is {asset_bytes} bytes: in {data_shards} data shards each shard would be {shard_bytes} bytes, more than the {shard_bytes_max} a storage provider takes; {advice} (nothing was sent to the ledger)",
        file.display()
    )
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
    /// The steps an earlier, interrupted run had done (or begun), which this run resumed:
    /// `data_key`, `registration`, `layout`, `deals`, `uploads`. Empty for a fresh add.
    pub resumed: Vec<&'static str>,
    /// Shards moved off providers that could not take them (unreachable, or failing on their
    /// side) to others.
    pub replaced: Vec<Replacement>,
    /// How long each step took.
    pub phases_ms: Phases,
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

/// How long connecting to a provider or node may take: a provider whose host is gone is
/// given up on (and its shard placed elsewhere) after this, not after the whole request's limit.
const CONNECT_TIMEOUT_MS: u64 = 10_000;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_millis(CONNECT_TIMEOUT_MS)))
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// How long, by default, an upload waits for its provider: to take more bytes, or, once it has
/// them all, to answer (it syncs the shard to disk and starts serving it first). A provider that
/// accepted the connection and then stopped is given up on (and its shard placed elsewhere)
/// after this, however large the shard.
pub const UPLOAD_IDLE_TIMEOUT_MS: u64 = 30_000;
/// Longest upload idle timeout `asset add` takes (one hour).
pub const UPLOAD_IDLE_TIMEOUT_MS_MAX: u64 = 3_600_000;

/// The agent for shard uploads: no limit on an upload's whole duration, which grows with the
/// shard, but one on every wait for the provider, so a stalled provider fails its upload.
fn upload_agent(idle_timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_millis(CONNECT_TIMEOUT_MS)))
        .timeout_per_write(Some(idle_timeout))
        .timeout_per_read(Some(idle_timeout))
        .build()
        .into()
}

/// Why an upload failed on the way, in words.
fn upload_failure(url: &str, error: &ureq::Error, idle_timeout: Duration) -> String {
    match error {
        ureq::Error::Timeout(ureq::Timeout::PerWrite) => format!(
            "uploading to {url}: the provider took no bytes for {} ms",
            idle_timeout.as_millis()
        ),
        ureq::Error::Timeout(ureq::Timeout::PerRead) => format!(
            "uploading to {url}: the provider took every byte but did not answer for {} ms",
            idle_timeout.as_millis()
        ),
        error => format!("uploading to {url}: {error}"),
    }
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

/// What an earlier `add` of the same file from this home left in `assets/ID/`.
struct PreviousRun {
    /// The data key, opened with the sender's key.
    data_key: DataKey,
    /// The cipher its manifest records (`None` when no readable manifest was saved).
    cipher: Option<CipherKind>,
}

/// The data key (and cipher) an earlier, interrupted `add` of this asset saved in `saved`, if it
/// saved one. A key wrapped to another account is an error: this home's copy is that account's.
fn previous_run(
    saved: &Path,
    asset: &AssetId,
    seed: &[u8; 32],
    from: &str,
) -> Result<Option<PreviousRun>> {
    let key_path = saved.join("key.json");
    let text = match std::fs::read_to_string(&key_path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(error).with_context(|| format!("reading {}", key_path.display()));
        }
    };
    let wrapped: WrappedKey = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a wrapped data key; if no storage layout is recorded for {asset} yet, delete it and run this again",
            key_path.display()
        )
    })?;
    let data_key = tributary_store::unwrap(&wrapped, seed, &wrap_context(asset)).map_err(|_| {
        anyhow!(
            "the data key saved in {} does not open with {from}'s key: another account added this file from this home; run `tributary asset add` again with --from that account",
            key_path.display()
        )
    })?;
    // The manifest only supplies the cipher; a missing or unreadable one is rewritten, and what
    // the ledger recorded is checked against the shards anyway.
    let cipher = std::fs::read_to_string(saved.join("manifest.json"))
        .ok()
        .and_then(|text| Manifest::from_json(&text).ok())
        .map(|manifest| manifest.cipher);
    Ok(Some(PreviousRun { data_key, cipher }))
}

/// Writes `bytes` to `path` whole or not at all (a temporary file, then a rename).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = path.with_extension("partial");
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))
}

/// `GET path` on the node; `None` when it answers 404 with the error code `absent_code`.
fn get_unless_absent<T: serde::de::DeserializeOwned>(
    agent: &ureq::Agent,
    client: &Client,
    path: &str,
    absent_code: &str,
) -> Result<Option<T>> {
    let mut response = agent
        .get(&format!("{}{path}", client.base()))
        .call()
        .with_context(|| {
            format!(
                "cannot reach the node at {}; is `tributary devnet` running? (set --node or TRIBUTARY_NODE)",
                client.base()
            )
        })?;
    if !response.status().is_success() {
        let (code, message) = error_parts(&mut response);
        if code.as_deref() == Some(absent_code) {
            return Ok(None);
        }
        bail!("{path}: {message}");
    }
    let text = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading the response of {path}"))?;
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("unexpected response from {path}: {text}"))
}

/// Every deal of `asset`, in id order.
fn asset_deals(client: &Client, asset: &AssetId) -> Result<Vec<DealView>> {
    let page = tributary_types::limits::QUERY_PAGE_MAX;
    let mut deals: Vec<DealView> = Vec::new();
    loop {
        let after = deals.last().map_or(0, |deal| deal.id);
        let batch: Vec<DealView> = client.get(&format!(
            "/v1/deals?asset={asset}&after={after}&limit={page}"
        ))?;
        let full = batch.len() >= page;
        deals.extend(batch);
        if !full {
            return Ok(deals);
        }
    }
}

/// Whether a deal still places its shard: proposed (waiting for the shard) or active.
fn is_live(deal: &DealView) -> bool {
    deal.status == "proposed" || deal.status == "active"
}

/// The deal that places shard `index`: an active one first, else the oldest proposed one.
fn deal_for(deals: &[DealView], index: u8) -> Option<&DealView> {
    let mut live = deals
        .iter()
        .filter(|deal| deal.shard_index == index && is_live(deal));
    let first = live.clone().find(|deal| deal.status == "active");
    first.or_else(|| live.next())
}

/// How many providers `add` tries for one shard in one run before it gives up.
const PROVIDERS_PER_SHARD_MAX: usize = 3;

/// A shard `add` moved off a provider that could not take it.
#[derive(serde::Serialize)]
pub struct Replacement {
    /// Shard index.
    pub shard: u8,
    /// The provider that failed.
    pub provider: Address,
    /// Why.
    pub reason: String,
    /// Its deal, cancelled (the escrow went back to the owner).
    pub cancelled_deal: u64,
    /// The deal proposed instead.
    pub deal: u64,
    /// The provider of that deal.
    pub replacement: Address,
}

/// What became of a shard whose upload failed.
enum Replaced {
    /// The provider had stored it and accepted its deal after all.
    Held(DealView),
    /// A deal with another provider, waiting for the shard.
    With(DealView),
}

/// Chooses the providers of an asset's shards: the least committed first, never two shards of
/// the asset on one provider, never a provider that failed an upload in this run. A shard whose
/// provider fails is moved: its deal is cancelled and one is proposed with the next provider.
struct Placer<'a> {
    /// Registered providers, in order of preference.
    candidates: &'a [ProviderView],
    /// Epochs each deal pays for.
    epochs: u32,
    /// Providers that failed an upload in this run.
    failed: BTreeSet<Address>,
    /// Per shard, the providers that failed it and why.
    tried: BTreeMap<u8, Vec<String>>,
    /// The shards moved, in order.
    replaced: Vec<Replacement>,
}

impl<'a> Placer<'a> {
    fn new(candidates: &'a [ProviderView], epochs: u32) -> Self {
        Self {
            candidates,
            epochs,
            failed: BTreeSet::new(),
            tried: BTreeMap::new(),
            replaced: Vec::new(),
        }
    }

    /// Proposes a deal for `shard` with the first provider that holds no live deal of the
    /// asset and has not failed in this run. `false` when an interrupted run's proposal turned
    /// out to be on the ledger already.
    fn propose(
        &self,
        client: &Client,
        key: &Key,
        asset: AssetId,
        shard: u8,
        deals: &[DealView],
    ) -> Result<bool> {
        let Some(provider) = self.candidates.iter().find(|candidate| {
            !self.failed.contains(&candidate.address)
                && !deals
                    .iter()
                    .any(|deal| is_live(deal) && deal.provider == candidate.address)
        }) else {
            let tried = self
                .tried
                .get(&shard)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if tried.is_empty() {
                bail!(
                    "no storage provider is left for shard {shard} of {asset}: every provider already holds one of its shards; run the devnet with more --storage-providers or lower --data-shards/--parity-shards"
                );
            }
            bail!(
                "no other storage provider can take shard {shard} of {asset} (failed: {}); its deal is cancelled: run `tributary asset add` again when more providers are up",
                tried.join("; ")
            );
        };
        let call = Call::CreateDeal {
            asset,
            shard_index: shard,
            provider: provider.address,
            epochs: self.epochs,
        };
        let attempt = || client.send(key, call.clone(), None);
        let done = || Ok(deal_for(&asset_deals(client, &asset)?, shard).is_some());
        Ok(send_step(client, key, "proposing a deal", attempt, done)?.is_some())
    }

    /// Moves the shard of `failed`, whose provider could not take it (`reason`): cancels the
    /// deal and proposes one with another provider. Gives up after
    /// [`PROVIDERS_PER_SHARD_MAX`] providers, or when none is left.
    fn replace(
        &mut self,
        client: &Client,
        key: &Key,
        asset: AssetId,
        failed: &DealView,
        reason: String,
    ) -> Result<Replaced> {
        let shard = failed.shard_index;
        self.failed.insert(failed.provider);
        let deal_path = format!("/v1/deals/{}", failed.id);
        let attempt = || client.send(key, Call::CancelDeal { deal: failed.id }, None);
        // The provider may have stored the shard and accepted after all (the upload failed on
        // the way back): then the cancellation fails, and the deal stands.
        let done = || Ok(client.get::<DealView>(&deal_path)?.status != "proposed");
        send_step(
            client,
            key,
            &format!("cancelling deal {}", failed.id),
            attempt,
            done,
        )?;
        let now: DealView = client.get(&deal_path)?;
        if now.status == "active" {
            return Ok(Replaced::Held(now));
        }
        let tried = self.tried.entry(shard).or_default();
        tried.push(format!("{}: {reason}", failed.provider));
        if tried.len() >= PROVIDERS_PER_SHARD_MAX {
            bail!(
                "shard {shard} of {asset} could not be placed with {} providers ({}); its last deal is cancelled: run `tributary asset add` again when providers are back",
                tried.len(),
                tried.join("; ")
            );
        }
        self.propose(client, key, asset, shard, &asset_deals(client, &asset)?)?;
        let deal = deal_for(&asset_deals(client, &asset)?, shard)
            .cloned()
            .ok_or_else(|| anyhow!("shard {shard} of {asset} has no deal after proposing one"))?;
        self.replaced.push(Replacement {
            shard,
            provider: failed.provider,
            reason,
            cancelled_deal: failed.id,
            deal: deal.id,
            replacement: deal.provider,
        });
        Ok(Replaced::With(deal))
    }
}

/// Waits up to `timeout_ms` for the providers of `placed` (one deal per shard, in shard order)
/// to accept; returns the shards whose deals are still only proposed then (none when all were
/// accepted). A deal in any other state is an error.
fn unaccepted_after(
    client: &Client,
    asset: &AssetId,
    placed: &[DealView],
    timeout_ms: u64,
) -> Result<Vec<usize>> {
    let proposed = || -> Result<Vec<usize>> {
        let deals = asset_deals(client, asset)?;
        let mut waiting = Vec::new();
        for (index, placement) in placed.iter().enumerate() {
            let status = deals
                .iter()
                .find(|deal| deal.id == placement.id)
                .map_or("missing", |deal| deal.status.as_str());
            match status {
                "active" => {}
                "proposed" => waiting.push(index),
                other => bail!(
                    "deal {} for shard {} of {asset} is {other}, not accepted; run `tributary asset add` again to place the shard with another provider",
                    placement.id,
                    placement.shard_index
                ),
            }
        }
        Ok(waiting)
    };
    match crate::client::poll(timeout_ms, || Ok(proposed()?.is_empty().then_some(())))? {
        Some(()) => Ok(Vec::new()),
        None => proposed(),
    }
}

/// The node's answer to a transaction when another from the same sender, with the same nonce (an
/// interrupted run's), is still waiting to be finalized.
fn is_pending_conflict(error: &anyhow::Error) -> bool {
    let message = format!("{error:#}");
    [
        "(wrong_nonce)",
        "(duplicate_transaction)",
        "(already_finalized)",
    ]
    .iter()
    .any(|code| message.contains(code))
}

/// How many times one step of `add` is sent while an interrupted run's transactions are in the way.
const STEP_ATTEMPTS_MAX: usize = 5;

/// Runs one step of `add` (`attempt` submits its transaction and waits for it), unless `done`
/// finds it on the ledger. An interrupted run's transaction may still be waiting with the same
/// nonce: then this waits until it is finalized and looks again. Returns `None` when the step
/// turned out to be done already.
fn send_step(
    client: &Client,
    key: &Key,
    what: &str,
    mut attempt: impl FnMut() -> Result<TransactionResponse>,
    mut done: impl FnMut() -> Result<bool>,
) -> Result<Option<TransactionResponse>> {
    let address = key.address();
    for _ in 0..STEP_ATTEMPTS_MAX {
        let account: AccountView = client.get(&format!("/v1/accounts/{address}"))?;
        match attempt() {
            Ok(response) if response.status == "finalized" => return Ok(Some(response)),
            Ok(response) => {
                // It may have failed because an interrupted run's transaction did it first.
                if done()? {
                    return Ok(None);
                }
                expect_success(what, &response)?;
                return Ok(Some(response));
            }
            Err(error) if is_pending_conflict(&error) => {
                poll_until(
                    &format!(
                        "a transaction {address} sent earlier to be finalized (before {what})"
                    ),
                    FINALITY_WAIT_MS_MAX,
                    || {
                        let now: AccountView = client.get(&format!("/v1/accounts/{address}"))?;
                        Ok((now.nonce > account.nonce).then_some(()))
                    },
                )?;
                if done()? {
                    return Ok(None);
                }
            }
            Err(error) => return Err(error.context(format!("{what} failed"))),
        }
    }
    bail!(
        "{what}: {address} kept having other transactions pending; wait until they are finalized and run this again"
    )
}

/// Sends a fresh add's transactions at once ([`Client::send_all`]): the registration, the layout
/// and the deals. `false` if another transaction of the owner was pending (an interrupted run's),
/// so the caller goes step by step instead; an error if one of them failed.
fn send_fresh(
    client: &Client,
    key: &Key,
    registration: Call,
    layout: Call,
    deals: Vec<Call>,
) -> Result<bool> {
    let mut calls = vec![registration, layout];
    calls.extend(deals);
    let responses = match client.send_all(key, calls, None) {
        Ok(responses) => responses,
        Err(error) if is_pending_conflict(&error) => return Ok(false),
        Err(error) => return Err(error),
    };
    for (index, response) in responses.iter().enumerate() {
        let what = match index {
            0 => "registering the asset".to_string(),
            1 => "recording the layout".to_string(),
            deal => format!("proposing the deal for shard {}", deal - 2),
        };
        expect_success(&what, response)?;
    }
    Ok(true)
}

/// How a recorded storage layout differs from the one this file's shards give, one item each.
fn layout_differences(recorded: &StorageLayout, computed: &StorageLayout) -> Vec<String> {
    let mut differences = Vec::new();
    if recorded.data_shards != computed.data_shards {
        differences.push(format!(
            "data shards: {} recorded, {} now",
            recorded.data_shards, computed.data_shards
        ));
    }
    if recorded.parity_shards != computed.parity_shards {
        differences.push(format!(
            "parity shards: {} recorded, {} now",
            recorded.parity_shards, computed.parity_shards
        ));
    }
    if recorded.shard_bytes != computed.shard_bytes {
        differences.push(format!(
            "shard size: {} bytes recorded, {} now",
            recorded.shard_bytes, computed.shard_bytes
        ));
    }
    let roots: Vec<String> = (0..recorded.shard_roots.len().max(computed.shard_roots.len()))
        .filter(|&index| recorded.shard_roots.get(index) != computed.shard_roots.get(index))
        .map(|index| index.to_string())
        .collect();
    if !roots.is_empty() {
        differences.push(format!("roots of shards {}", roots.join(", ")));
    }
    if recorded.manifest_root != computed.manifest_root {
        differences.push("the manifest root".to_string());
    }
    differences
}

/// A progress bar over `total_bytes` of `what`, on stderr; hidden for JSON output or when
/// stderr is not a terminal.
fn byte_bar(json: bool, total_bytes: u64, what: &str) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total_bytes);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{what} [{{bar:30}}] {{bytes}}/{{total_bytes}} ({{eta}}) {{msg}}"
    )) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Stores a file, resuming whatever an interrupted `add` of the same file from this home left.
///
/// Every step is skipped when the ledger shows it done: the data key saved in `assets/ID/`
/// (before anything is registered) gives the same shards again, so their roots match a recorded
/// layout; deals are reused per shard; shards go only to deals still waiting for them.
pub fn add(cli: &Cli, client: &Client, request: AddRequest<'_>) -> Result<AddOutcome> {
    let key = keystore(cli).load(request.from)?;
    let seed = seed_of(&key)?;
    let owner = key.address();
    let from = request.from;
    let note = |message: String| {
        if !cli.json {
            eprintln!("{message}");
        }
    };
    let mut resumed: Vec<&'static str> = Vec::new();
    let mut phases = Phases::start();
    let check_shards = |asset_bytes: u64, shard_bytes: u64| {
        check_shard_size(
            request.file,
            asset_bytes,
            shard_bytes,
            request.data_shards,
            request.parity_shards,
            request.shard_bytes_max,
        )
    };
    let projected_shard_bytes =
        |asset_bytes: u64| asset_bytes.div_ceil(request.data_shards.max(1) as u64);
    // A file too large for the providers is refused before it is read.
    if let Ok(metadata) = std::fs::metadata(request.file)
        && metadata.is_file()
    {
        check_shards(metadata.len(), projected_shard_bytes(metadata.len()))?;
    }
    // Read once: hashed (and chunked) here for the asset id, then sealed where it lies.
    let bytes = tributary_store::read_asset(request.file)
        .with_context(|| format!("cannot read {}", request.file.display()))?;
    let byte_size = bytes.len() as u64;
    check_shards(byte_size, projected_shard_bytes(byte_size))?;
    let hashed = tributary_store::HashedAsset::new(bytes);
    let asset = Hash32(hashed.id().0);
    // A folder is named with a trailing `/`: ingest checks it as a folder's bundle.
    let name = tributary_store::asset_name(request.file);
    phases.lap("read and hash");
    let saved = asset_dir(&cli.home(), &asset);
    let agent = agent();

    // What is on the ledger already, and what this home kept.
    let registered: Option<AssetView> = get_unless_absent(
        &agent,
        client,
        &format!("/v1/assets/{asset}"),
        "asset_not_found",
    )?;
    if let Some(view) = &registered
        && !view.owners.iter().any(|entry| entry.address == owner)
    {
        let owners: Vec<String> = view
            .owners
            .iter()
            .map(|entry| entry.address.to_string())
            .collect();
        bail!(
            "asset {asset} is already registered, owned by {}, not by {from}; only an owner can store it (run `tributary asset add` with --from an owner's key)",
            owners.join(", ")
        );
    }
    let recorded: Option<StorageLayout> = if registered.is_some() {
        get_unless_absent(
            &agent,
            client,
            &format!("/v1/assets/{asset}/storage"),
            "not_stored",
        )?
    } else {
        None
    };
    let previous = previous_run(&saved, &asset, &seed, from)?;
    if previous.is_none() && recorded.is_some() {
        bail!(
            "asset {asset} is registered with a storage layout, but its data key is not in {}: without the key that layout was made with, its shards cannot be made again. Run this from the home that added it (--home), or copy that home's {} directory here, then run this again",
            saved.join("key.json").display(),
            Path::new("assets").join(asset.to_string()).display()
        );
    }

    // The shards: under the saved key and cipher they come out as before, bit for bit.
    let mut options = IngestOptions::new(request.data_shards, request.parity_shards);
    let ingested = match previous {
        Some(previous) => {
            note(format!(
                "resuming: using the data key saved in {}",
                saved.display()
            ));
            resumed.push("data_key");
            options.cipher = previous.cipher;
            tributary_store::ingest_hashed(&name, hashed, &options, previous.data_key)
        }
        None => tributary_store::DataKey::generate()
            .and_then(|key| tributary_store::ingest_hashed(&name, hashed, &options, key)),
    }
    .with_context(|| format!("cannot ingest {}", request.file.display()))?;
    phases.lap("ingest");
    let manifest = &ingested.manifest;
    let shard_count = ingested.shard_count();
    let shard_bytes = ingested.shard_bytes();
    check_shards(byte_size, shard_bytes)?;
    let manifest_json = manifest.to_json()?;
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
    if let Some(recorded) = &recorded
        && *recorded != layout
    {
        let differences = layout_differences(recorded, &layout);
        let geometry = recorded.data_shards != layout.data_shards
            || recorded.parity_shards != layout.parity_shards;
        let advice = if geometry {
            format!(
                "run this again with --data-shards {} --parity-shards {}",
                recorded.data_shards, recorded.parity_shards
            )
        } else {
            format!(
                "the data key in {} is not the one the layout was made with; restore this asset's directory from the home that added it",
                saved.display()
            )
        };
        bail!(
            "asset {asset} already has a storage layout on the ledger that differs from this file's shards ({}); {advice}",
            differences.join("; ")
        );
    }

    // The wrapped key and the manifest are kept before anything is registered, so a run that is
    // interrupted from here on can be resumed with the same key.
    std::fs::create_dir_all(&saved).with_context(|| format!("creating {}", saved.display()))?;
    let key_path = saved.join("key.json");
    if !key_path.is_file() {
        let wrapped = tributary_store::wrap(
            &ingested.key,
            &key_public(&key.signer),
            &wrap_context(&asset),
        )?;
        write_atomically(
            &key_path,
            serde_json::to_string_pretty(&wrapped)?.as_bytes(),
        )?;
    }
    let manifest_path = saved.join("manifest.json");
    if std::fs::read_to_string(&manifest_path).ok().as_deref() != Some(manifest_json.as_str()) {
        write_atomically(&manifest_path, manifest_json.as_bytes())?;
    }

    // Enough providers for the shards that have no deal yet, before anything is registered.
    let providers: Vec<ProviderView> = client.get("/v1/providers")?;
    let mut deals = if registered.is_some() {
        asset_deals(client, &asset)?
    } else {
        Vec::new()
    };
    let missing = (0..shard_count)
        .filter(|&index| {
            u8::try_from(index).map_or(true, |index| deal_for(&deals, index).is_none())
        })
        .count();
    let free = providers
        .iter()
        .filter(|provider| {
            !deals
                .iter()
                .any(|deal| is_live(deal) && deal.provider == provider.address)
        })
        .count();
    if free < missing {
        bail!(
            "{shard_count} shards need {shard_count} storage providers, the chain has {}; run the devnet with --storage-providers {shard_count} or lower --data-shards/--parity-shards",
            providers.len()
        );
    }

    // Deals: one per shard, on distinct providers; shards that have a proposed or active deal
    // keep it.
    let endpoints: BTreeMap<Address, String> = providers
        .iter()
        .map(|provider| (provider.address, provider.endpoint.clone()))
        .collect();
    // Spread: the least committed providers first (ties by address).
    let mut candidates = providers;
    candidates.sort_by(|a, b| {
        a.committed_bytes
            .cmp(&b.committed_bytes)
            .then(a.address.cmp(&b.address))
    });
    let mut placer = Placer::new(&candidates, request.epochs);
    // A fresh add sends its registration, layout and deals at once: one sender's transactions
    // execute in nonce order, so each may rely on the ones before it, and they can share a
    // block. A run resuming an interrupted one goes step by step, checking the ledger first.
    let registration = register_call(
        RegisterRequest {
            file: request.file,
            from,
            kind: request.kind,
            name: request.name,
            owners: Vec::new(),
            parents: Vec::new(),
            terms: request.terms.clone(),
            fee: None,
        },
        asset,
        byte_size,
    )?;
    let store_layout = Call::StoreAsset {
        asset,
        layout: layout.clone(),
    };
    let batched = registered.is_none()
        && send_fresh(
            client,
            &key,
            registration.clone(),
            store_layout.clone(),
            candidates
                .iter()
                .take(shard_count)
                .enumerate()
                .map(|(index, provider)| {
                    Ok(Call::CreateDeal {
                        asset,
                        shard_index: u8::try_from(index)?,
                        provider: provider.address,
                        epochs: request.epochs,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        )?;
    if batched {
        deals = asset_deals(client, &asset)?;
    } else {
        // Registration.
        if registered.is_some() {
            note(format!("resuming: asset {asset} is already registered"));
            resumed.push("registration");
        } else {
            let done = || {
                let view: Option<AssetView> = get_unless_absent(
                    &agent,
                    client,
                    &format!("/v1/assets/{asset}"),
                    "asset_not_found",
                )?;
                Ok(view.is_some_and(|view| view.owners.iter().any(|entry| entry.address == owner)))
            };
            let attempt = || client.send(&key, registration.clone(), None);
            if send_step(client, &key, "registering the asset", attempt, done)?.is_none() {
                note(format!(
                    "resuming: asset {asset} was registered by an earlier run"
                ));
                resumed.push("registration");
            }
        }

        // The layout.
        if recorded.is_some() {
            note("resuming: the storage layout is already recorded".to_string());
            resumed.push("layout");
        } else {
            let done = || {
                let found: Option<StorageLayout> = get_unless_absent(
                    &agent,
                    client,
                    &format!("/v1/assets/{asset}/storage"),
                    "not_stored",
                )?;
                match found {
                    None => Ok(false),
                    Some(found) if found == layout => Ok(true),
                    Some(found) => bail!(
                        "asset {asset} got another storage layout meanwhile ({}); was it added from two places at once?",
                        layout_differences(&found, &layout).join("; ")
                    ),
                }
            };
            let attempt = || client.send(&key, store_layout.clone(), None);
            if send_step(client, &key, "recording the layout", attempt, done)?.is_none() {
                note("resuming: the storage layout was recorded by an earlier run".to_string());
                resumed.push("layout");
            }
        }

        // An interrupted run's last transaction may have landed since the deals were read.
        deals = asset_deals(client, &asset)?;
        let mut kept = Vec::new();
        for index in 0..shard_count {
            let shard_index = u8::try_from(index)?;
            if deal_for(&deals, shard_index).is_some() {
                kept.push(index.to_string());
                continue;
            }
            if !placer.propose(client, &key, asset, shard_index, &deals)? {
                kept.push(index.to_string());
            }
            deals = asset_deals(client, &asset)?;
        }
        if !kept.is_empty() {
            note(format!(
                "resuming: shards {} already have deals",
                kept.join(", ")
            ));
            resumed.push("deals");
        }
    }
    let mut placed: Vec<DealView> = Vec::with_capacity(shard_count);
    for index in 0..shard_count {
        let deal = deal_for(&deals, u8::try_from(index)?)
            .ok_or_else(|| anyhow!("shard {index} of {asset} has no deal on the ledger"))?;
        placed.push(deal.clone());
    }

    phases.lap("register, layout and deals");

    // Uploads, to the deals still waiting for their shard.
    let waiting: Vec<usize> = (0..shard_count)
        .filter(|&index| placed[index].status == "proposed")
        .collect();
    if waiting.len() < shard_count {
        note(format!(
            "resuming: {} of {shard_count} shards are already held by their providers",
            shard_count - waiting.len()
        ));
        resumed.push("uploads");
    }
    let bar = byte_bar(
        cli.json,
        waiting.len() as u64 * shard_bytes,
        "uploading shards",
    );
    // One upload per provider, all at once: each provider hashes and stores its shard while the
    // others receive theirs. `Ok(Err(reason))` when the provider could not take the shard
    // (unreachable, cut off, failing on its side): the shard goes to another provider.
    let upload_idle_timeout = Duration::from_millis(request.upload_idle_timeout_ms);
    let upload_agent = upload_agent(upload_idle_timeout);
    let upload = |index: usize, deal: &DealView| -> Result<Result<(), String>> {
        let shard = ingested
            .shard(index)
            .ok_or_else(|| anyhow!("deal {} names shard {index}, past the last", deal.id))?;
        let Some(endpoint) = endpoints.get(&deal.provider) else {
            return Ok(Err("no longer registered on the ledger".to_string()));
        };
        let url = format!("{endpoint}/deals/{}/shard", deal.id);
        // Data shards are columns of the sealed asset: read where they lie, a piece at a time.
        let mut reader = shard.reader();
        let sent = upload_agent
            .put(&url)
            .header("content-type", "application/octet-stream")
            .header("content-length", shard.len())
            .send(ureq::SendBody::from_reader(&mut reader));
        let mut uploaded = match sent {
            Ok(response) => response,
            Err(error) => return Ok(Err(upload_failure(&url, &error, upload_idle_timeout))),
        };
        if !uploaded.status().is_success() {
            let status = uploaded.status();
            let (code, message) = error_parts(&mut uploaded);
            match code.as_deref() {
                // A provider that took the shard in an interrupted run may have accepted its
                // deal since: then it holds the shard, which is what the upload was for.
                Some("deal_not_proposed") => {}
                // The shard itself does not fit its deal: no other provider would take it.
                Some("wrong_shard" | "shard_too_large") => bail!(
                    "provider {} refused shard {index} (deal {}): {message}",
                    deal.provider,
                    deal.id
                ),
                _ => return Ok(Err(format!("{message} (HTTP {status})"))),
            }
        }
        bar.inc(shard.len() as u64);
        bar.suspend(|| {
            note(format!(
                "  shard {index}: {} bytes → deal {} with {}",
                shard.len(),
                deal.id,
                deal.provider
            ))
        });
        Ok(Ok(()))
    };
    bar.set_message(format!(
        "{} shards → {} providers",
        waiting.len(),
        waiting.len()
    ));
    // Rounds of uploads: a shard whose provider failed is placed with another provider (its
    // deal cancelled, the escrow back) and goes again in the next round. Then every provider
    // accepts once it holds its shard; one that has not within the accept timeout is replaced
    // the same way, and its shard uploaded again.
    let mut pending = waiting;
    loop {
        // Shards whose providers lose their deals: why, and whether the shard's bytes were
        // already counted (its upload succeeded, then the provider did not accept).
        let failures: Vec<(usize, String, bool)> = if pending.is_empty() {
            phases.lap("upload");
            bar.set_message("waiting for every provider to accept its deal");
            let unaccepted = unaccepted_after(client, &asset, &placed, request.accept_timeout_ms)?;
            phases.lap("accept");
            if unaccepted.is_empty() {
                break;
            }
            unaccepted
                .into_iter()
                .map(|index| {
                    let reason = format!(
                        "took its shard but did not accept deal {} within {} ms",
                        placed[index].id, request.accept_timeout_ms
                    );
                    (index, reason, true)
                })
                .collect()
        } else {
            let outcomes: Vec<(usize, Result<(), String>)> =
                std::thread::scope(|scope| -> Result<Vec<_>> {
                    let uploads: Vec<_> = pending
                        .iter()
                        .map(|&index| {
                            let deal = &placed[index];
                            (index, scope.spawn(move || upload(index, deal)))
                        })
                        .collect();
                    uploads
                        .into_iter()
                        .map(|(index, handle)| {
                            let outcome = handle
                                .join()
                                .map_err(|_| anyhow!("a shard upload thread panicked"))??;
                            Ok((index, outcome))
                        })
                        .collect()
                })?;
            outcomes
                .into_iter()
                .filter_map(|(index, outcome)| outcome.err().map(|reason| (index, reason, false)))
                .collect()
        };
        pending = Vec::new();
        for (index, reason, counted) in failures {
            let failed = placed[index].clone();
            let what = if counted {
                reason.clone()
            } else {
                format!("failed ({reason})")
            };
            bar.suspend(|| {
                note(format!(
                    "  shard {index}: provider {} {what}; cancelling deal {} and placing the shard with another provider",
                    failed.provider, failed.id
                ))
            });
            match placer.replace(client, &key, asset, &failed, reason)? {
                Replaced::Held(deal) => placed[index] = deal,
                Replaced::With(deal) => {
                    placed[index] = deal;
                    if counted {
                        bar.inc_length(shard_bytes);
                    }
                    pending.push(index);
                }
            }
        }
    }
    bar.finish_and_clear();
    Ok(AddOutcome {
        asset_id: asset,
        saved,
        shards: placed
            .iter()
            .map(|deal| Placement {
                shard: deal.shard_index,
                deal: deal.id,
                provider: deal.provider,
                bytes: deal.shard_bytes,
            })
            .collect(),
        resumed,
        replaced: placer.replaced,
        phases_ms: phases,
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

/// Where `asset get` writes the decoded asset: a file, beside `--out` until its hash is checked,
/// or a folder, unpacked into `--out` as its bundle arrives.
enum Output {
    File(tributary_store::DirectFile),
    Folder(tributary_store::folder::Unpacker),
}

impl std::io::Write for Output {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::File(file) => file.write(bytes),
            Self::Folder(unpacker) => unpacker.write(bytes),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::File(file) => file.flush(),
            Self::Folder(unpacker) => unpacker.flush(),
        }
    }
}

/// What `asset get` did.
#[derive(serde::Serialize)]
pub struct GetOutcome {
    /// The asset id.
    pub asset_id: AssetId,
    /// Where the bytes were written.
    pub out: PathBuf,
    /// Bytes written (for a folder, its bundle's).
    pub bytes: u64,
    /// For a folder asset, the files written under `out` (relative paths); absent for a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder_files: Option<Vec<String>>,
    /// Shards used, by index.
    pub shards_used: Vec<u8>,
    /// Shards refused or failing (index and why).
    pub shards_skipped: Vec<(u8, String)>,
    /// How many of the shards used came over iroh-blobs (the rest over HTTP).
    pub shards_over_iroh: usize,
    /// Where the data key came from: `home` (saved by `asset add`) or the provider that served
    /// the reader's envelope.
    pub key_from: String,
    /// How long each step took.
    pub phases_ms: Phases,
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
    let mut phases = Phases::start();
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
    if manifest.format == tributary_store::DataFormat::Folder && out.exists() {
        bail!(
            "asset {asset} is a folder and {} already exists; give --out a path that does not exist yet",
            out.display()
        );
    }
    phases.lap("key");
    let total = manifest.shards.len();
    let needed = usize::try_from(manifest.data_shards)?;
    // Active deals first; a failed deal's provider missed a challenge but may still hold its
    // shard (every piece is checked against the shard's root as it arrives anyway).
    let mut skipped = Vec::new();
    let mut candidates: Vec<(usize, &DealView)> = Vec::new();
    for deal in deals
        .iter()
        .filter(|deal| deal.status == "active")
        .chain(deals.iter().filter(|deal| deal.status == "failed"))
    {
        if endpoints.contains_key(&deal.provider) {
            candidates.push((usize::from(deal.shard_index), deal));
        } else {
            skipped.push((deal.shard_index, "provider not registered".to_string()));
        }
    }
    // The reader's own iroh endpoint: its id is the reader's address, which providers check
    // against the ledger before serving.
    let transport = IrohTransport::new(std::sync::Arc::new(
        BlobNode::start(
            BlobConfig {
                secret_key: secret_seed(&key.signer),
                bind: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
                announce: Vec::new(),
            },
            Serving::Nothing,
        )
        .context("cannot start an iroh endpoint to fetch shards")?,
    ));
    // A file is written to a temporary file while its hash is checked, and kept only if it is
    // the asset; around the page cache where the filesystem allows, since it is not read back
    // here. A folder's bundle is unpacked into `out` as it arrives, its files checked one by one
    // and the whole bundle's hash at the end; on any failure the folder is removed.
    let temporary = out.with_extension("partial");
    let folder = manifest.format == tributary_store::DataFormat::Folder;
    let (output, name) = if folder {
        let name = out.display().to_string();
        let unpacker = tributary_store::folder::Unpacker::create(&name, out, manifest.byte_size)?;
        (Output::Folder(unpacker), name)
    } else {
        let file = tributary_store::DirectFile::create(&temporary)
            .with_context(|| format!("writing {}", temporary.display()))?;
        tracing::debug!(target: "tributary::get", path = %temporary.display(), direct = file.is_direct(), "writing the asset");
        (Output::File(file), temporary.display().to_string())
    };
    let bar = byte_bar(
        cli.json,
        manifest.stripe_count() * manifest.stripe_bytes,
        "fetching and decoding shards",
    );
    // k shards stream at once (over iroh-blobs, verified as they arrive, when the provider
    // announces an iroh endpoint, else over HTTP with a signed request) while the stripes they
    // have delivered are decoded, decrypted and written; a failing shard is replaced by the
    // next candidate.
    let streamed = Reassembler::new(&manifest, &data_key, &name, output)
        .map_err(anyhow::Error::from)
        .and_then(|mut reassembler| {
            let streamed = stream::stream_shards(
                &mut reassembler,
                total,
                needed,
                candidates,
                |deal: &&DealView, offset: u64, sink: &mut (dyn std::io::Write + Send)| {
                    let endpoint = &endpoints[&deal.provider];
                    let root = &manifest.shards[usize::from(deal.shard_index)].root.0;
                    // Signed when the fetch starts: a replacement may start well into a
                    // long read.
                    let request = ReadRequest::sign(
                        &key.signer,
                        deal.asset,
                        deal.shard_index,
                        deal.provider,
                        now_ms() + READ_REQUEST_TTL_MS,
                    );
                    transport.fetch_into(endpoint, &request, root, deal.shard_bytes, offset, sink)
                },
                &bar,
            )?;
            let output = reassembler.finish()?;
            Ok((streamed, output))
        });
    bar.finish_and_clear();
    drop(transport);
    let (streamed, output) = match streamed {
        Ok(done) => done,
        Err(error) => {
            // A folder's unpacker removed the folder when it was dropped.
            if !folder {
                std::fs::remove_file(&temporary).ok();
            }
            return Err(error);
        }
    };
    skipped.extend(streamed.skipped);
    let folder_files = match output {
        Output::File(file) => {
            drop(file);
            std::fs::rename(&temporary, out)
                .with_context(|| format!("writing {}", out.display()))?;
            None
        }
        Output::Folder(unpacker) => {
            let index = unpacker
                .finish()
                .with_context(|| format!("writing the folder {}", out.display()))?;
            Some(index.files.into_iter().map(|file| file.path).collect())
        }
    };
    phases.lap("fetch, decode and write");
    Ok(GetOutcome {
        asset_id: asset,
        out: out.to_path_buf(),
        bytes: manifest.byte_size,
        folder_files,
        shards_used: streamed.used,
        shards_skipped: skipped,
        shards_over_iroh: streamed.over_iroh,
        key_from,
        phases_ms: phases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn a_shard_over_the_providers_limit_is_refused_with_what_to_do() {
        let file = Path::new("big.csv");
        let max = tributary_types::limits::API_SHARD_BYTES_MAX as u64;
        check_shard_size(file, 2 << 30, 512 << 20, 4, 2, max).unwrap();
        let error = check_shard_size(file, 3 << 30, 768 << 20, 4, 2, max)
            .unwrap_err()
            .to_string();
        assert!(error.contains("big.csv is 3221225472 bytes"), "{error}");
        assert!(error.contains("more than the 536870912"), "{error}");
        // 3 GiB in shards of at most 504 MiB (the limit less a stripe's padding): 7 of them.
        assert!(error.contains("--data-shards 7"), "{error}");
        // No shard count brings 64 GiB under the limit with two parity shards.
        let error = check_shard_size(file, 64 << 30, 16 << 30, 4, 2, max)
            .unwrap_err()
            .to_string();
        assert!(!error.contains("--data-shards"), "{error}");
        assert!(error.contains("split it into several assets"), "{error}");
    }

    /// Nothing is read or sent for a file or folder whose shards no provider would take: the
    /// node here is not running, so any request would fail with a connection error instead.
    #[test]
    fn an_asset_too_large_for_the_providers_fails_before_any_request() {
        use clap::Parser as _;
        let home = tempfile::tempdir().unwrap();
        let cli = crate::Cli::try_parse_from([
            "tributary",
            "--home",
            home.path().to_str().unwrap(),
            "--json",
            "devnet",
        ])
        .unwrap();
        crate::commands::keystore(&cli).create("alice").unwrap();
        let folder = home.path().join("tables");
        std::fs::create_dir(&folder).unwrap();
        let file = folder.join("table.csv");
        let mut csv = String::from("a,b\n");
        for row in 0..2_000 {
            csv.push_str(&format!("{row},{}\n", row * 2));
        }
        std::fs::write(&file, csv).unwrap();
        let client = Client::new("http://127.0.0.1:9");
        for path in [&file, &folder] {
            let error = add(
                &cli,
                &client,
                AddRequest {
                    shard_bytes_max: 1024,
                    ..AddRequest::new(path, "alice", Terms::default())
                },
            )
            .err()
            .unwrap()
            .to_string();
            assert!(
                error.contains("more than the 1024 a storage provider takes"),
                "{error}"
            );
            assert!(error.contains("nothing was sent to the ledger"), "{error}");
        }
    }

    /// A provider that accepts the connection and then reads nothing: the upload fails after the
    /// idle timeout, not after the whole request's limit, and says why.
    #[test]
    fn an_upload_to_a_provider_that_stops_reading_fails_after_the_idle_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/deals/1/shard", listener.local_addr().unwrap());
        let (gave_up, wait_for_give_up) = std::sync::mpsc::channel::<()>();
        let held = std::thread::spawn(move || {
            let (mut connection, _) = listener.accept().unwrap();
            // A few bytes of the request, then nothing until the client gives up.
            let mut start = [0u8; 16];
            connection.read_exact(&mut start).unwrap();
            let _ = wait_for_give_up.recv();
        });
        let idle = Duration::from_millis(300);
        let agent = upload_agent(idle);
        // More than loopback's socket buffers hold, so writes must wait for the reader.
        let body = vec![0u8; 256 << 20];
        let started = std::time::Instant::now();
        let error = agent
            .put(&url)
            .header("content-length", body.len())
            .send(&body[..])
            .unwrap_err();
        let waited = started.elapsed();
        let reason = upload_failure(&url, &error, idle);
        assert!(
            reason.ends_with("the provider took no bytes for 300 ms"),
            "{reason} ({error:?})"
        );
        assert!(waited < Duration::from_secs(20), "gave up after {waited:?}");
        gave_up.send(()).unwrap();
        held.join().unwrap();
    }
}
