//! The client commands: keys, accounts, transfers, assets, licenses, status and blocks.

use crate::{Cli, client::Client, output};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use std::{
    io::Read,
    net::SocketAddr,
    path::{Path, PathBuf},
};
use tributary_chain::BlockRecord;
use tributary_node::{
    api::{StatusResponse, TransactionResponse},
    devnet::{self, DevnetOptions},
    keystore::{Key, Keystore},
};
use tributary_types::{
    AccountView, Address, Amount, AssetId, AssetKind, AssetView, Call, Event, LicenseTokenView,
    LineageView, RegisterAsset, Terms, limits,
};

/// `tributary devnet` options.
#[derive(Args, Debug)]
pub struct DevnetArgs {
    /// Number of validators (used when the chain is created).
    #[arg(long, default_value_t = 1)]
    pub validators: usize,
    /// The API's listen address.
    #[arg(long, default_value = devnet::DEFAULT_HTTP)]
    pub http: SocketAddr,
    /// Delete the devnet's chain data and genesis first (account keys are kept).
    #[arg(long)]
    pub reset: bool,
    /// Run each validator as its own `tributary node run` process, and each storage provider
    /// as its own `tributary storage provide` process (all listed in devnet.json).
    #[arg(long)]
    pub processes: bool,
    /// Storage providers to run, used when the chain is created: funded (and, in one process,
    /// bonded) at genesis; in one process they serve on the devnet's API, with --processes each
    /// bonds its stake and serves on an API of its own.
    #[arg(long, default_value_t = 6)]
    pub storage_providers: usize,
    /// Blocks per storage epoch, the window a provider has to answer a challenge (default: the
    /// ledger's, 10), used when the chain is created. Longer epochs suit providers that run as
    /// their own processes on a busy machine.
    #[arg(long)]
    pub epoch_blocks: Option<u64>,
    /// With --processes: also run this many full (non-voting) nodes that follow the chain
    /// (used when the chain is created).
    #[arg(long, default_value_t = 0, requires = "processes")]
    pub followers: usize,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a new random key.
    New {
        /// The key's name.
        name: String,
    },
    /// List keys.
    List,
    /// Show a key's address.
    Show {
        /// The key's name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Show an account's balance and nonce.
    Show {
        /// A key name or a trib1... address.
        account: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TxCommand {
    /// Transfer tokens.
    Transfer {
        /// The sending key.
        #[arg(long)]
        from: String,
        /// A key name or a trib1... address.
        #[arg(long)]
        to: String,
        /// Amount in base units.
        #[arg(long)]
        amount: Amount,
        /// Fee in base units (default: the chain's minimum).
        #[arg(long)]
        fee: Option<Amount>,
    },
}

/// License terms a command can set.
#[derive(Args, Debug, Default)]
pub struct TermsArgs {
    /// License price in base units.
    #[arg(long, default_value_t = 0)]
    pub price: Amount,
    /// Royalty rate in basis points that derivatives pay this asset.
    #[arg(long, default_value_t = 0)]
    pub royalty_bps: u16,
    /// What licensees may do: commercial, ai-training, derivatives, attribution (comma separated).
    #[arg(long, value_delimiter = ',')]
    pub terms: Vec<TermFlag>,
    /// Licenses expire at this height.
    #[arg(long)]
    pub expiry_height: Option<u64>,
    /// At most this many licenses may be sold.
    #[arg(long)]
    pub license_cap: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TermFlag {
    Commercial,
    AiTraining,
    Derivatives,
    Attribution,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KindArg {
    Dataset,
    Model,
}

/// The file an asset comes from and who registers it.
#[derive(clap::Args, Debug)]
pub struct AssetSource {
    /// The file (for `add`: CSV, Parquet or JSONL), or a folder of such files (stored as one
    /// asset; `asset get` writes the folder back).
    pub file: PathBuf,
    /// The registering (owner's) key.
    #[arg(long)]
    pub from: String,
    /// What the file is.
    #[arg(long, value_enum, default_value = "dataset")]
    pub kind: KindArg,
    /// A display name (default: the file name).
    #[arg(long)]
    pub name: Option<String>,
}

impl AssetSource {
    fn asset_kind(&self) -> AssetKind {
        match self.kind {
            KindArg::Dataset => AssetKind::Dataset,
            KindArg::Model => AssetKind::Model,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum AssetCommand {
    /// Register a file as an IP asset (its id is the file's BLAKE3 hash, as `b3sum` prints).
    Register {
        #[command(flatten)]
        source: AssetSource,
        /// An owner and its share, NAME:BPS or ADDRESS:BPS (repeat; shares sum to 10000).
        #[arg(long = "owner")]
        owners: Vec<String>,
        /// A parent asset this one derives from (repeat, each with a --license).
        #[arg(long = "parent")]
        parents: Vec<String>,
        /// The license token allowing derivatives of the matching --parent.
        #[arg(long = "license")]
        licenses: Vec<u64>,
        #[command(flatten)]
        terms: TermsArgs,
        /// Fee in base units (default: the chain's minimum).
        #[arg(long)]
        fee: Option<Amount>,
    },
    /// Store a file (or a folder of files, as one asset) on the network: check its format,
    /// chunk, encrypt with a fresh data key, erasure-code into k + m shards, register it, and
    /// place each shard with its own storage provider under a deal (waits until every provider
    /// has accepted).
    Add {
        #[command(flatten)]
        source: AssetSource,
        #[command(flatten)]
        terms: TermsArgs,
        /// Data shards (k): any k rebuild the file.
        #[arg(long, default_value_t = 4)]
        data_shards: usize,
        /// Parity shards (m): the file survives the loss of any m providers.
        #[arg(long, default_value_t = 2)]
        parity_shards: usize,
        /// Epochs each storage deal pays for.
        #[arg(long, default_value_t = 100)]
        epochs: u32,
        /// Give up an upload to a provider that takes no bytes, or once it has them all does not
        /// answer, for this long (its shard then goes to another provider).
        #[arg(long, default_value_t = crate::data::UPLOAD_IDLE_TIMEOUT_MS,
            value_parser = clap::value_parser!(u64).range(1..=crate::data::UPLOAD_IDLE_TIMEOUT_MS_MAX))]
        upload_idle_timeout_ms: u64,
        /// Give a provider this long to accept its deal once it has its shard; one that has not
        /// loses the deal and the shard goes to another provider.
        #[arg(long, default_value_t = crate::data::ACCEPT_TIMEOUT_MS,
            value_parser = clap::value_parser!(u64).range(1..=crate::data::ACCEPT_TIMEOUT_MS_MAX))]
        accept_timeout_ms: u64,
    },
    /// Fetch an asset: any k shards, verified, decoded and decrypted. Its owner reads with the
    /// key `asset add` saved in this home; a licensee with the key the owner's agent
    /// (`asset serve-keys`) delivered to the asset's storage providers.
    Get {
        /// The asset id.
        id: String,
        /// The reading key (an owner or a licensee).
        #[arg(long)]
        from: String,
        /// Where to write the file (for a folder asset: the folder, which must not exist yet).
        #[arg(long)]
        out: PathBuf,
    },
    /// Run the owner's key agent: for each asset added from this home with this key, wrap the
    /// data key to every license holder the ledger lets read it and deliver the envelopes to
    /// the asset's storage providers. Needs only the owner's key; providers never see the data
    /// key. Loops until Ctrl-C unless --once.
    ServeKeys {
        /// The owner's key.
        #[arg(long)]
        from: String,
        /// Do one pass and exit (non-zero if a delivery failed).
        #[arg(long)]
        once: bool,
        /// Milliseconds between passes.
        #[arg(long, default_value_t = 2_000)]
        interval_ms: u64,
    },
    /// Change an asset's terms for future licenses (owners only).
    Terms {
        /// The asset id.
        id: String,
        /// An owner's key.
        #[arg(long)]
        from: String,
        #[command(flatten)]
        terms: TermsArgs,
        /// Fee in base units (default: the chain's minimum).
        #[arg(long)]
        fee: Option<Amount>,
    },
    /// Show an asset.
    Show {
        /// The asset id.
        id: String,
    },
    /// Show an asset's ancestors and descendants.
    Lineage {
        /// The asset id.
        id: String,
    },
    /// List assets.
    List {
        /// Assets to skip.
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Assets to show.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Pay revenue to an asset: it flows to its owners and up its lineage as royalties.
    Pay {
        /// The asset id.
        id: String,
        /// Amount in base units.
        #[arg(long)]
        amount: Amount,
        /// The paying key.
        #[arg(long)]
        from: String,
        /// Fee in base units (default: the chain's minimum).
        #[arg(long)]
        fee: Option<Amount>,
    },
}

#[derive(Subcommand, Debug)]
pub enum LicenseCommand {
    /// Buy a license to an asset: pays its price and mints a license token.
    Buy {
        /// The asset id.
        asset: String,
        /// The buying key.
        #[arg(long)]
        from: String,
        /// Fee in base units (default: the chain's minimum).
        #[arg(long)]
        fee: Option<Amount>,
    },
    /// List an account's license tokens.
    List {
        /// A key name or a trib1... address.
        account: String,
    },
    /// Show a license token.
    Show {
        /// The token id.
        token: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum EvidenceCommand {
    /// List validator misbehaviour the node has proof of.
    List,
    /// Put every proof the node holds on chain as `ReportMisbehaviour` transactions.
    Submit {
        /// The key that signs and pays for the reports.
        #[arg(long)]
        from: String,
        /// Fee in base units (default: the chain's minimum).
        #[arg(long)]
        fee: Option<Amount>,
    },
}

#[derive(Subcommand, Debug)]
pub enum BlockCommand {
    /// Show a finalized block (default: the latest).
    Show {
        /// The height.
        height: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Finalized throughput and finality latency of validators as real processes on loopback,
    /// against this machine's ed25519 verification rate.
    Load(crate::load::LoadArgs),
    /// Ledger throughput (signed transfers, signature checks included) against this machine's
    /// single-core ed25519 verification rate.
    Ledger {
        /// Transactions per block.
        #[arg(long, default_value_t = 1_000)]
        transactions_per_block: usize,
        /// Blocks to execute.
        #[arg(long, default_value_t = 10)]
        blocks: usize,
    },
    /// Federated training over loopback HTTP with secure aggregation (100 rounds × 10 contributors
    /// on digits), beside Flower's simulation of the same task when --flower-python is given.
    Federated(crate::federated::FederatedBenchArgs),
    /// End-to-end `asset add` and `asset get` of a generated CSV (default 1 GiB) across six local
    /// storage providers, beside raw HTTP transfers of the same shards.
    Storage(crate::bench_storage::StorageBenchArgs),
}

pub(crate) fn keystore(cli: &Cli) -> Keystore {
    Keystore::new(&cli.home())
}

pub(crate) fn client(cli: &Cli) -> Client {
    Client::new(&cli.node)
}

/// Resolves a key name or an address.
pub(crate) fn resolve_address(cli: &Cli, text: &str) -> Result<Address> {
    if text.starts_with("trib1") {
        return text
            .parse()
            .map_err(|error| anyhow!("`{text}` is not a valid address: {error}"));
    }
    Ok(keystore(cli).load(text)?.address())
}

pub(crate) fn parse_asset_id(text: &str) -> Result<AssetId> {
    text.parse().map_err(|_| {
        anyhow!(
            "`{text}` is not an asset id: expected 64 lowercase hex characters (as b3sum prints)"
        )
    })
}

pub fn devnet(cli: &Cli, args: &DevnetArgs) -> Result<()> {
    if args.processes {
        return crate::processes::devnet_processes(cli, args);
    }
    let options = DevnetOptions {
        home: cli.home(),
        validators: args.validators,
        http: args.http,
        reset: args.reset,
        storage_providers: args.storage_providers,
        epoch_blocks: args.epoch_blocks,
    };
    let info = devnet::prepare(&options)?;
    let json = cli.json;
    devnet::run(
        info,
        move |info| {
            if json {
                let accounts: Vec<_> = info
                    .accounts
                    .iter()
                    .map(|(name, address)| serde_json::json!({"name": name, "address": address}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "api": format!("http://{}", info.http),
                        "home": info.home,
                        "genesis": info.genesis_path,
                        "chain_id": info.genesis.ledger.chain_id,
                        "validators": info.genesis.validators.len(),
                        "resumed": info.resumed,
                        "accounts": accounts,
                    })
                );
            } else {
                println!(
                    "Tributary devnet {} ({} validator{}, chain {})",
                    if info.resumed { "resumed" } else { "started" },
                    info.genesis.validators.len(),
                    if info.genesis.validators.len() == 1 {
                        ""
                    } else {
                        "s"
                    },
                    info.genesis.ledger.chain_id
                );
                println!("  API       http://{}", info.http);
                println!("  home      {}", info.home.display());
                println!("  genesis   {}", info.genesis_path.display());
                println!("  data      {}", info.data_dir.display());
                let mut table = output::table(&["account", "address"]);
                for (name, address) in &info.accounts {
                    table.add_row(vec![name.clone(), address.to_string()]);
                }
                println!("{table}");
                println!("Press Ctrl-C to stop; run again with the same --home to resume.");
            }
        },
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )?;
    Ok(())
}

#[derive(Serialize)]
struct KeyOutput {
    name: String,
    address: Address,
}

pub fn keys(cli: &Cli, command: &KeysCommand) -> Result<()> {
    let store = keystore(cli);
    match command {
        KeysCommand::New { name } => {
            let key = store.create(name)?;
            print_key(cli, &key)
        }
        KeysCommand::Show { name } => print_key(cli, &store.load(name)?),
        KeysCommand::List => {
            let keys: Vec<KeyOutput> = store
                .list()?
                .into_iter()
                .map(|key| KeyOutput {
                    address: key.address(),
                    name: key.name,
                })
                .collect();
            if cli.json {
                return output::json(&keys);
            }
            let mut table = output::table(&["name", "address"]);
            for key in keys {
                table.add_row(vec![key.name, key.address.to_string()]);
            }
            println!("{table}");
            Ok(())
        }
    }
}

fn print_key(cli: &Cli, key: &Key) -> Result<()> {
    if cli.json {
        return output::json(&KeyOutput {
            name: key.name.clone(),
            address: key.address(),
        });
    }
    println!("{}  {}", key.name, key.address());
    Ok(())
}

pub fn account(cli: &Cli, command: &AccountCommand) -> Result<()> {
    let AccountCommand::Show { account } = command;
    let address = resolve_address(cli, account)?;
    let view: AccountView = client(cli).get(&format!("/v1/accounts/{address}"))?;
    if cli.json {
        return output::json(&view);
    }
    let mut table = output::table(&["address", "balance", "nonce"]);
    table.add_row(vec![
        view.address.to_string(),
        output::units(view.balance),
        view.nonce.to_string(),
    ]);
    println!("{table}");
    Ok(())
}

/// What every transaction command prints with `--json`.
#[derive(Serialize)]
struct TxOutput<'a> {
    tx_hash: &'a str,
    status: &'a str,
    reason: Option<&'a str>,
    block: Option<u64>,
    #[serde(flatten)]
    extra: serde_json::Value,
}

/// Prints a transaction's outcome; fails (non-zero exit) if its call failed.
pub(crate) fn finish(
    cli: &Cli,
    response: &TransactionResponse,
    extra: serde_json::Value,
    line: &str,
) -> Result<()> {
    if cli.json {
        output::json(&TxOutput {
            tx_hash: &response.tx_hash,
            status: &response.status,
            reason: response.reason.as_deref(),
            block: response.block,
            extra,
        })?;
    } else if response.status == "finalized" {
        println!("{line}");
        println!(
            "  tx {} finalized at height {}",
            response.tx_hash,
            response.block.unwrap_or_default()
        );
    }
    if response.status != "finalized" {
        bail!(
            "transaction {} failed: {}",
            response.tx_hash,
            response.reason.as_deref().unwrap_or("unknown reason")
        );
    }
    Ok(())
}

pub fn tx(cli: &Cli, command: &TxCommand) -> Result<()> {
    let TxCommand::Transfer {
        from,
        to,
        amount,
        fee,
    } = command;
    let key = keystore(cli).load(from)?;
    let to_address = resolve_address(cli, to)?;
    let response = client(cli).send_retrying_nonce(
        &key,
        Call::Transfer {
            to: to_address,
            amount: *amount,
        },
        *fee,
    )?;
    finish(
        cli,
        &response,
        serde_json::json!({}),
        &format!("transferred {} from {from} to {to}", output::units(*amount)),
    )
}

fn terms_from(args: &TermsArgs) -> Terms {
    Terms {
        commercial_use: args.terms.contains(&TermFlag::Commercial),
        ai_training: args.terms.contains(&TermFlag::AiTraining),
        derivatives: args.terms.contains(&TermFlag::Derivatives),
        attribution_required: args.terms.contains(&TermFlag::Attribution),
        royalty_bps: args.royalty_bps,
        price: args.price,
        expiry_height: args.expiry_height,
        license_cap: args.license_cap,
    }
}

/// BLAKE3 of a file (the same hash `b3sum` prints) and its size, streamed. A directory is hashed
/// as the bundle `asset add` stores it as (`tributary_store::folder`), so both give one id.
pub fn hash_file(path: &Path) -> Result<(AssetId, u64)> {
    if path.is_dir() {
        let bundle = tributary_store::folder::bundle(path, 0)
            .and_then(|bundle| {
                let name = tributary_store::asset_name(path);
                tributary_store::folder::check(&name, &bundle).map(|_| bundle)
            })
            .with_context(|| format!("cannot read the folder {}", path.display()))?;
        return Ok((
            tributary_types::Hash32(*blake3::hash(&bundle).as_bytes()),
            bundle.len() as u64,
        ));
    }
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size: u64 = 0;
    loop {
        let read = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((tributary_types::Hash32(*hasher.finalize().as_bytes()), size))
}

/// Parses `--owner NAME:BPS` values.
fn parse_owners(cli: &Cli, owners: &[String]) -> Result<Vec<(Address, u16)>> {
    owners
        .iter()
        .map(|owner| {
            let (who, bps) = owner.rsplit_once(':').ok_or_else(|| {
                anyhow!("--owner `{owner}` must look like NAME:BPS, e.g. alice:5000")
            })?;
            let bps: u16 = bps
                .parse()
                .map_err(|_| anyhow!("--owner `{owner}`: `{bps}` is not a basis-point share"))?;
            Ok((resolve_address(cli, who)?, bps))
        })
        .collect()
}

/// Registers a file; returns the transaction outcome and the asset id.
pub struct RegisterRequest<'a> {
    pub file: &'a Path,
    pub from: &'a str,
    pub kind: AssetKind,
    pub name: Option<&'a str>,
    pub owners: Vec<(Address, u16)>,
    pub parents: Vec<(AssetId, u64)>,
    pub terms: Terms,
    pub fee: Option<Amount>,
}

pub fn register(
    cli: &Cli,
    client: &Client,
    request: RegisterRequest<'_>,
) -> Result<(TransactionResponse, AssetId)> {
    let key = keystore(cli).load(request.from)?;
    let (content_root, byte_size) = hash_file(request.file)?;
    let fee = request.fee;
    let call = register_call(request, content_root, byte_size)?;
    let response = client.send(&key, call, fee)?;
    Ok((response, content_root))
}

/// The `RegisterAsset` call for `request`'s file, whose BLAKE3 root and size the caller has
/// computed.
pub fn register_call(
    request: RegisterRequest<'_>,
    content_root: AssetId,
    byte_size: u64,
) -> Result<Call> {
    let name = match request.name {
        Some(name) => name.to_string(),
        None => request
            .file
            .file_name()
            .map(|name| name.to_string_lossy().to_string())
            .unwrap_or_else(|| "asset".into()),
    };
    if name.len() > limits::ASSET_NAME_BYTES_MAX {
        bail!(
            "--name is longer than {} bytes",
            limits::ASSET_NAME_BYTES_MAX
        );
    }
    Ok(Call::RegisterAsset(RegisterAsset {
        content_root,
        kind: request.kind,
        name,
        byte_size,
        owners: request.owners,
        parents: request.parents,
        terms: request.terms,
    }))
}

pub fn asset(cli: &Cli, command: &AssetCommand) -> Result<()> {
    let client = client(cli);
    match command {
        AssetCommand::Add {
            source,
            terms,
            data_shards,
            parity_shards,
            epochs,
            upload_idle_timeout_ms,
            accept_timeout_ms,
        } => {
            let outcome = crate::data::add(
                cli,
                &client,
                crate::data::AddRequest {
                    kind: source.asset_kind(),
                    name: source.name.as_deref(),
                    data_shards: *data_shards,
                    parity_shards: *parity_shards,
                    epochs: *epochs,
                    upload_idle_timeout_ms: *upload_idle_timeout_ms,
                    accept_timeout_ms: *accept_timeout_ms,
                    ..crate::data::AddRequest::new(&source.file, &source.from, terms_from(terms))
                },
            )?;
            if cli.json {
                return output::json(&outcome);
            }
            println!(
                "{} stored as {} shards with {} providers; manifest and key in {}",
                outcome.asset_id,
                outcome.shards.len(),
                outcome.shards.len(),
                outcome.saved.display()
            );
            for moved in &outcome.replaced {
                println!(
                    "  shard {} moved from {} (deal {} cancelled: {}) to {} (deal {})",
                    moved.shard,
                    moved.provider,
                    moved.cancelled_deal,
                    moved.reason,
                    moved.replacement,
                    moved.deal
                );
            }
            Ok(())
        }
        AssetCommand::Get { id, from, out } => {
            let outcome = crate::data::get(cli, &client, parse_asset_id(id)?, from, out)?;
            if cli.json {
                return output::json(&outcome);
            }
            let written = match &outcome.folder_files {
                Some(files) => format!("a folder of {} files", files.len()),
                None => format!("{} bytes", outcome.bytes),
            };
            println!(
                "{written} written to {} (BLAKE3 {} verified) from shards {:?} ({} over iroh-blobs); data key from {}",
                outcome.out.display(),
                outcome.asset_id,
                outcome.shards_used,
                outcome.shards_over_iroh,
                outcome.key_from
            );
            Ok(())
        }
        AssetCommand::ServeKeys {
            from,
            once,
            interval_ms,
        } => crate::data::key_agent::serve(cli, &client, from, *once, *interval_ms),
        AssetCommand::Register {
            source,
            owners,
            parents,
            licenses,
            terms,
            fee,
        } => {
            if parents.len() != licenses.len() {
                bail!(
                    "every --parent needs a matching --license token ({} parents, {} licenses)",
                    parents.len(),
                    licenses.len()
                );
            }
            let parents = parents
                .iter()
                .zip(licenses)
                .map(|(parent, license)| Ok((parse_asset_id(parent)?, *license)))
                .collect::<Result<Vec<_>>>()?;
            let (response, asset_id) = register(
                cli,
                &client,
                RegisterRequest {
                    file: &source.file,
                    from: &source.from,
                    kind: source.asset_kind(),
                    name: source.name.as_deref(),
                    owners: parse_owners(cli, owners)?,
                    parents,
                    terms: terms_from(terms),
                    fee: *fee,
                },
            )?;
            finish(
                cli,
                &response,
                serde_json::json!({"asset_id": asset_id.to_string()}),
                &format!("{asset_id}"),
            )
        }
        AssetCommand::Terms {
            id,
            from,
            terms,
            fee,
        } => {
            let key = keystore(cli).load(from)?;
            let asset = parse_asset_id(id)?;
            let response = client.send(
                &key,
                Call::UpdateTerms {
                    asset,
                    terms: terms_from(terms),
                },
                *fee,
            )?;
            finish(
                cli,
                &response,
                serde_json::json!({"asset_id": id}),
                &format!("updated the terms of {id}"),
            )
        }
        AssetCommand::Show { id } => {
            let asset: AssetView = client.get(&format!("/v1/assets/{}", parse_asset_id(id)?))?;
            if cli.json {
                return output::json(&asset);
            }
            print_asset(&asset);
            Ok(())
        }
        AssetCommand::Lineage { id } => {
            let lineage: LineageView =
                client.get(&format!("/v1/assets/{}/lineage", parse_asset_id(id)?))?;
            if cli.json {
                return output::json(&lineage);
            }
            let mut table = output::table(&["relation", "asset"]);
            for ancestor in &lineage.ancestors {
                table.add_row(vec!["ancestor".to_string(), ancestor.to_string()]);
            }
            for descendant in &lineage.descendants {
                table.add_row(vec!["descendant".to_string(), descendant.to_string()]);
            }
            println!("lineage of {}", lineage.asset);
            println!("{table}");
            Ok(())
        }
        AssetCommand::List { offset, limit } => {
            let assets: Vec<AssetView> =
                client.get(&format!("/v1/assets?offset={offset}&limit={limit}"))?;
            if cli.json {
                return output::json(&assets);
            }
            let mut table = output::table(&[
                "asset",
                "kind",
                "name",
                "bytes",
                "price",
                "royalty bps",
                "parents",
            ]);
            for asset in assets {
                table.add_row(vec![
                    asset.id.to_string(),
                    format!("{:?}", asset.kind).to_lowercase(),
                    asset.name,
                    asset.byte_size.to_string(),
                    output::units(asset.terms.price),
                    asset.terms.royalty_bps.to_string(),
                    asset.parents.len().to_string(),
                ]);
            }
            println!("{table}");
            Ok(())
        }
        AssetCommand::Pay {
            id,
            amount,
            from,
            fee,
        } => {
            let key = keystore(cli).load(from)?;
            let asset = parse_asset_id(id)?;
            let response = client.send(
                &key,
                Call::PayRevenue {
                    asset,
                    amount: *amount,
                },
                *fee,
            )?;
            let payouts = payouts(&response);
            finish(
                cli,
                &response,
                serde_json::json!({"payouts": payouts.iter().map(|(to, amount)| serde_json::json!({"to": to, "amount": amount.to_string()})).collect::<Vec<_>>()}),
                &format!("paid {} to {id}", output::units(*amount)),
            )?;
            if !cli.json {
                let mut table = output::table(&["paid to", "amount"]);
                for (to, amount) in payouts {
                    table.add_row(vec![to.to_string(), output::units(amount)]);
                }
                println!("{table}");
            }
            Ok(())
        }
    }
}

/// Who received what in a transaction's receipt.
pub fn payouts(response: &TransactionResponse) -> Vec<(Address, Amount)> {
    response
        .receipt
        .iter()
        .flat_map(|receipt| receipt.events.iter())
        .filter_map(|event| match event {
            Event::RevenuePaid { to, amount, .. } => Some((*to, *amount)),
            _ => None,
        })
        .collect()
}

fn print_asset(asset: &AssetView) {
    let mut table = output::table(&["field", "value"]);
    table.add_row(vec!["id".to_string(), asset.id.to_string()]);
    table.add_row(vec!["name".to_string(), asset.name.clone()]);
    table.add_row(vec![
        "kind".to_string(),
        format!("{:?}", asset.kind).to_lowercase(),
    ]);
    table.add_row(vec!["bytes".to_string(), asset.byte_size.to_string()]);
    table.add_row(vec!["registrant".to_string(), asset.registrant.to_string()]);
    table.add_row(vec![
        "registered at".to_string(),
        asset.registered_height.to_string(),
    ]);
    for owner in &asset.owners {
        table.add_row(vec![
            "owner".to_string(),
            format!("{} ({} bps)", owner.address, owner.bps),
        ]);
    }
    for parent in &asset.parents {
        table.add_row(vec![
            "parent".to_string(),
            format!(
                "{} (royalty {} bps, license {})",
                parent.asset, parent.royalty_bps, parent.license_token
            ),
        ]);
    }
    let terms = &asset.terms;
    table.add_row(vec!["price".to_string(), output::units(terms.price)]);
    table.add_row(vec![
        "royalty bps".to_string(),
        terms.royalty_bps.to_string(),
    ]);
    table.add_row(vec![
        "allows".to_string(),
        [
            (terms.commercial_use, "commercial"),
            (terms.ai_training, "ai-training"),
            (terms.derivatives, "derivatives"),
            (terms.attribution_required, "attribution required"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(", "),
    ]);
    table.add_row(vec![
        "licenses sold".to_string(),
        asset.licenses_minted.to_string(),
    ]);
    println!("{table}");
}

/// The token minted by a license purchase.
pub fn minted_token(response: &TransactionResponse) -> Option<u64> {
    response
        .receipt
        .iter()
        .flat_map(|receipt| receipt.events.iter())
        .find_map(|event| match event {
            Event::LicenseMinted { token, .. } => Some(*token),
            _ => None,
        })
}

pub fn license(cli: &Cli, command: &LicenseCommand) -> Result<()> {
    let client = client(cli);
    match command {
        LicenseCommand::Buy { asset, from, fee } => {
            let key = keystore(cli).load(from)?;
            let asset_id = parse_asset_id(asset)?;
            let response = client.send(&key, Call::BuyLicense { asset: asset_id }, *fee)?;
            let token = minted_token(&response);
            finish(
                cli,
                &response,
                serde_json::json!({"token_id": token.map(|t| t.to_string())}),
                &token.map(|t| t.to_string()).unwrap_or_default(),
            )
        }
        LicenseCommand::List { account } => {
            let address = resolve_address(cli, account)?;
            let tokens: Vec<LicenseTokenView> =
                client.get(&format!("/v1/accounts/{address}/licenses"))?;
            if cli.json {
                return output::json(&tokens);
            }
            let mut table = output::table(&[
                "token",
                "asset",
                "price paid",
                "royalty bps",
                "minted at",
                "consumed by",
            ]);
            for token in tokens {
                table.add_row(vec![
                    token.id.to_string(),
                    token.asset.to_string(),
                    output::units(token.terms.price),
                    token.terms.royalty_bps.to_string(),
                    token.minted_height.to_string(),
                    token.consumed_by.map(|a| a.to_string()).unwrap_or_default(),
                ]);
            }
            println!("{table}");
            Ok(())
        }
        LicenseCommand::Show { token } => {
            let view: LicenseTokenView = client.get(&format!("/v1/licenses/{token}"))?;
            output::json(&view)
        }
    }
}

pub fn status(cli: &Cli) -> Result<()> {
    let status: StatusResponse = client(cli).status()?;
    if cli.json {
        return output::json(&status);
    }
    let mut table = output::table(&["field", "value"]);
    table.add_row(vec!["chain id", &status.chain_id]);
    table.add_row(vec!["height".to_string(), status.height.to_string()]);
    table.add_row(vec!["last block", &status.last_block_hash]);
    table.add_row(vec!["state root", &status.state_root]);
    table.add_row(vec!["min fee".to_string(), status.min_fee.clone()]);
    table.add_row(vec![
        "total supply".to_string(),
        status.total_supply.clone(),
    ]);
    table.add_row(vec![
        "validators".to_string(),
        status.validators.to_string(),
    ]);
    table.add_row(vec!["mempool".to_string(), status.mempool.to_string()]);
    println!("{table}");
    Ok(())
}

pub fn block(cli: &Cli, command: &BlockCommand) -> Result<()> {
    let BlockCommand::Show { height } = command;
    let path = match height {
        Some(height) => format!("/v1/blocks/{height}"),
        None => "/v1/blocks/latest".to_string(),
    };
    let record: BlockRecord = client(cli).get(&path)?;
    if cli.json {
        return output::json(&record);
    }
    let mut table = output::table(&["field", "value"]);
    table.add_row(vec!["height".to_string(), record.height.to_string()]);
    table.add_row(vec!["hash".to_string(), record.hash.clone()]);
    table.add_row(vec!["parent".to_string(), record.parent.clone()]);
    table.add_row(vec!["proposer".to_string(), record.proposer.clone()]);
    table.add_row(vec!["view".to_string(), record.view.to_string()]);
    table.add_row(vec!["state root".to_string(), record.state_root.clone()]);
    table.add_row(vec![
        "beacon seed".to_string(),
        record.seed.clone().unwrap_or_default(),
    ]);
    table.add_row(vec![
        "transactions".to_string(),
        record.transactions.len().to_string(),
    ]);
    for hash in &record.transactions {
        table.add_row(vec!["  tx".to_string(), hash.clone()]);
    }
    println!("{table}");
    Ok(())
}

pub fn bench(cli: &Cli, command: &BenchCommand) -> Result<()> {
    let (transactions_per_block, blocks) = match command {
        BenchCommand::Load(args) => return crate::load::run(cli, args),
        BenchCommand::Federated(args) => return crate::federated::bench(cli, args),
        BenchCommand::Storage(args) => return crate::bench_storage::bench(cli, args),
        BenchCommand::Ledger {
            transactions_per_block,
            blocks,
        } => (transactions_per_block, blocks),
    };
    let report = tributary_ledger::bench::run_transfer_bench(*transactions_per_block, *blocks);
    if cli.json {
        return output::json(&serde_json::json!({
            "ledger_tps": report.ledger_tps,
            "single_verify_per_second": report.single_verify_per_second,
            "ratio": report.ratio,
            "transactions_per_block": report.transactions_per_block,
            "blocks": report.blocks,
            "accounts": report.accounts,
        }));
    }
    let mut table = output::table(&["measure", "value"]);
    table.add_row(vec![
        "ed25519 single verify (1 core)".to_string(),
        format!("{:.0} /s", report.single_verify_per_second),
    ]);
    table.add_row(vec![
        "ledger transfers (1 core, signatures checked)".to_string(),
        format!("{:.0} tx/s", report.ledger_tps),
    ]);
    table.add_row(vec![
        "ratio (target >= 0.50)".to_string(),
        format!("{:.2}", report.ratio),
    ]);
    println!("{table}");
    Ok(())
}

pub fn evidence(cli: &Cli, command: &EvidenceCommand) -> Result<()> {
    let client = client(cli);
    let evidence: Vec<tributary_chain::evidence::Evidence> = client.get("/v1/evidence")?;
    match command {
        EvidenceCommand::List => {
            if cli.json {
                return output::json(&evidence);
            }
            let mut table = output::table(&["kind", "view", "validator"]);
            for item in &evidence {
                table.add_row(vec![
                    item.kind.clone(),
                    item.view.to_string(),
                    item.validator.clone(),
                ]);
            }
            println!("{table}");
            Ok(())
        }
        EvidenceCommand::Submit { from, fee } => {
            let key = keystore(cli).load(from)?;
            let mut outcomes = Vec::new();
            for item in &evidence {
                let validator: Address = item
                    .validator
                    .parse()
                    .map_err(|error| anyhow!("the node reported a bad address: {error}"))?;
                let proof = hex::decode(&item.proof).context("the node reported a bad proof")?;
                let response = client.send(
                    &key,
                    Call::ReportMisbehaviour {
                        validator,
                        view: item.view,
                        proof,
                    },
                    *fee,
                )?;
                outcomes.push(serde_json::json!({
                    "validator": item.validator,
                    "view": item.view,
                    "tx_hash": response.tx_hash,
                    "status": response.status,
                    "reason": response.reason,
                }));
                if !cli.json {
                    println!(
                        "{} in view {}: {}{}",
                        item.validator,
                        item.view,
                        response.status,
                        response
                            .reason
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    );
                }
            }
            if cli.json {
                output::json(&outcomes)?;
            } else if evidence.is_empty() {
                println!("the node holds no proof of misbehaviour");
            }
            Ok(())
        }
    }
}
