//! A local network in one process: validators on loopback, the HTTP API, dev accounts.
//!
//! Home layout (`--home`, default `~/.tributary`):
//! - `keys/NAME.json`: account keys; the dev accounts `alice`, `bob`, `carol`, `dave`, `erin`
//!   are created and funded at genesis.
//! - `devnet/genesis.json`: the chain's genesis (ledger genesis, validators, group key).
//! - `devnet/validators/N/validator.json`: validator N's ed25519 key and BLS share (validators
//!   have keys of their own, not the dev accounts').
//! - `devnet/data/`: every validator's storage (commonware storage partitions).
//!
//! Starting again with the same home resumes the same chain from its stored blocks.

use crate::{
    api::{self, ApiState},
    keystore::{Keystore, KeystoreError, write_private},
};
use commonware_cryptography::Signer;
use commonware_runtime::{Clock, Runner, Spawner, Supervisor, tokio as runtime};
use std::{
    fs,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
};
use tributary_chain::{
    Block, ChainGenesis, ChainState, EngineConfig, GenesisValidator, ValidatorKeyFile,
    genesis::{deal, new_validator_key},
    start_validator,
};
use tributary_ledger::Ledger;
use tributary_types::{Address, Amount, Genesis, GenesisBond, Role, limits};

/// The dev accounts funded at genesis.
pub const DEV_ACCOUNTS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
/// Each dev account's starting balance, base units.
pub const DEV_ACCOUNT_BALANCE: Amount = 1_000_000_000_000;
/// Each validator's genesis stake (its `validator` bond, slashed for proven misbehaviour).
pub const VALIDATOR_BOND: Amount = 10_000_000_000;
/// Each devnet storage provider's starting balance, base units.
pub const PROVIDER_BALANCE: Amount = 1_000_000_000;
/// Each devnet storage provider's genesis `storage_provider` bond.
pub const PROVIDER_BOND: Amount = 1_000_000;
/// What each devnet storage provider offers: capacity in bytes and price per GiB-epoch.
pub const PROVIDER_CAPACITY_BYTES: u64 = 64 << 30;
/// Price per GiB per epoch each devnet provider asks, base units.
pub const PROVIDER_PRICE_PER_GIB_EPOCH: Amount = 1_000_000;
/// How often a provider looks for deals to accept and challenges to answer. A devnet finalizes
/// empty blocks within milliseconds of each other, so a 10-block epoch can last as little as
/// about 300 ms: a provider must look several times per epoch to answer its challenge in time
/// (a round against the in-process chain costs microseconds).
pub const PROVIDER_TICK_MS: u64 = 50;
/// The devnet's chain id.
pub const DEVNET_CHAIN_ID: &str = "tributary-devnet";
/// The default API address.
pub const DEFAULT_HTTP: &str = "127.0.0.1:8645";

/// Errors setting up or running a devnet.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A stored file is damaged.
    #[error("{path} is damaged: {reason}; start afresh with --reset")]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Keystore error.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// Bad options.
    #[error("{0}")]
    Options(String),
    /// Genesis error.
    #[error(transparent)]
    Genesis(#[from] tributary_chain::genesis::GenesisError),
    /// The ledger refused the genesis.
    #[error("the ledger refused the genesis: {0}")]
    Ledger(String),
    /// A validator failed to start.
    #[error("validator {index} failed to start: {reason}")]
    Validator {
        /// Which.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The API could not listen.
    #[error("cannot serve the API on {address}: {source}; pick another with --http")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DevnetError + '_ {
    move |source| DevnetError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What `tributary devnet` was asked for.
#[derive(Clone, Debug)]
pub struct DevnetOptions {
    /// The home directory.
    pub home: PathBuf,
    /// Number of validators (used when the genesis is created).
    pub validators: usize,
    /// API address.
    pub http: SocketAddr,
    /// Delete the devnet's chain data and genesis first (keys are kept).
    pub reset: bool,
    /// Storage providers to run (used when the genesis is created): accounts `provider-0`…,
    /// funded and bonded at genesis, serving on this node's API.
    pub storage_providers: usize,
    /// Blocks per storage epoch (the challenge window), used when the genesis is created;
    /// `None` keeps the ledger's default.
    pub epoch_blocks: Option<u64>,
}

/// Where a prepared devnet lives.
#[derive(Clone, Debug)]
pub struct DevnetInfo {
    /// The home directory.
    pub home: PathBuf,
    /// The genesis file.
    pub genesis_path: PathBuf,
    /// The storage directory.
    pub data_dir: PathBuf,
    /// The genesis.
    pub genesis: ChainGenesis,
    /// Dev accounts: name and address.
    pub accounts: Vec<(String, Address)>,
    /// Storage provider accounts (keys `provider-0`… in the home): name and address.
    pub providers: Vec<(String, Address)>,
    /// The API address.
    pub http: SocketAddr,
    /// Whether an existing chain is resumed.
    pub resumed: bool,
}

fn devnet_dir(home: &Path) -> PathBuf {
    home.join("devnet")
}

pub(crate) fn free_loopback_port() -> Result<SocketAddr, DevnetError> {
    crate::ports::free_loopback_port().map_err(io(Path::new("127.0.0.1")))
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, DevnetError> {
    let text = fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text).map_err(|error| DevnetError::Damaged {
        path: path.display().to_string(),
        reason: error.to_string(),
    })
}

/// The dev accounts' names and addresses, creating their keys in `home` where missing.
pub fn dev_accounts(home: &Path) -> Result<Vec<(String, Address)>, DevnetError> {
    named_accounts(home, DEV_ACCOUNTS.iter().map(|name| name.to_string()))
}

/// Sets a devnet's storage epoch length (`--epoch-blocks`), if given; it must be at least 1.
pub fn set_epoch_blocks(
    params: &mut tributary_types::Params,
    epoch_blocks: Option<u64>,
) -> Result<(), DevnetError> {
    if let Some(epoch_blocks) = epoch_blocks {
        if epoch_blocks == 0 {
            return Err(DevnetError::Options(
                "--epoch-blocks must be at least 1".into(),
            ));
        }
        params.epoch_blocks = epoch_blocks;
    }
    Ok(())
}

/// The storage provider accounts `provider-0`… `provider-{count - 1}`: names and addresses,
/// creating their keys in `home` where missing.
pub fn provider_accounts(home: &Path, count: usize) -> Result<Vec<(String, Address)>, DevnetError> {
    named_accounts(home, (0..count).map(|index| format!("provider-{index}")))
}

/// Keys `names` in `home`'s keystore (created where missing): name and address.
fn named_accounts(
    home: &Path,
    names: impl IntoIterator<Item = String>,
) -> Result<Vec<(String, Address)>, DevnetError> {
    let keystore = Keystore::new(home);
    let mut accounts = Vec::new();
    for name in names {
        let name = name.as_str();
        let key = match keystore.load(name) {
            Ok(key) => key,
            Err(KeystoreError::NotFound { .. }) => keystore.create(name)?,
            Err(error) => return Err(error.into()),
        };
        accounts.push((name.to_string(), key.address()));
    }
    Ok(accounts)
}

/// Creates (or finds) the devnet in `options.home`: dev account keys, validator keys, genesis.
pub fn prepare(options: &DevnetOptions) -> Result<DevnetInfo, DevnetError> {
    if options.validators == 0 || options.validators > limits::VALIDATORS_MAX {
        return Err(DevnetError::Options(format!(
            "--validators must be between 1 and {}",
            limits::VALIDATORS_MAX
        )));
    }
    let dir = devnet_dir(&options.home);
    if options.reset && dir.exists() {
        fs::remove_dir_all(&dir).map_err(io(&dir))?;
    }
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    let accounts = dev_accounts(&options.home)?;
    let genesis_path = dir.join("genesis.json");
    let resumed = genesis_path.exists();
    // A resumed chain keeps the providers its genesis bonded.
    let provider_count = if resumed {
        read_json::<ChainGenesis>(&genesis_path)?
            .ledger
            .bonds
            .iter()
            .filter(|bond| bond.role == Role::StorageProvider)
            .count()
    } else {
        options.storage_providers
    };
    let providers = provider_accounts(&options.home, provider_count)?;
    let genesis = if resumed {
        read_json::<ChainGenesis>(&genesis_path)?
    } else {
        let signers: Vec<_> = (0..options.validators)
            .map(|_| new_validator_key())
            .collect();
        let public_keys: Vec<_> = signers.iter().map(|s| s.public_key()).collect();
        let (polynomial, shares) = deal(rand::rng(), &public_keys)?;
        let mut validators = Vec::new();
        for (index, (signer, share)) in signers.iter().zip(&shares).enumerate() {
            let validator_dir = dir.join("validators").join(index.to_string());
            fs::create_dir_all(&validator_dir).map_err(io(&validator_dir))?;
            let key_file = ValidatorKeyFile::new(signer, share);
            let text = serde_json::to_string_pretty(&key_file)
                .map_err(|error| DevnetError::Options(error.to_string()))?;
            write_private(&validator_dir.join("validator.json"), text.as_bytes())?;
            validators.push(GenesisValidator {
                name: format!("validator-{index}"),
                public_key: key_file.public_key.clone(),
                address: Address::from_public_key(&signer.public_key()),
                p2p: free_loopback_port()?,
            });
        }
        let mut ledger = Genesis::devnet(
            DEVNET_CHAIN_ID,
            accounts
                .iter()
                .map(|(_, address)| (*address, DEV_ACCOUNT_BALANCE)),
        );
        set_epoch_blocks(&mut ledger.params, options.epoch_blocks)?;
        ledger.bonds = validators
            .iter()
            .map(|validator| GenesisBond {
                address: validator.address,
                role: Role::Validator,
                amount: VALIDATOR_BOND,
            })
            .collect();
        for (_, address) in &providers {
            ledger.allocations.push(tributary_types::Allocation {
                address: *address,
                amount: PROVIDER_BALANCE,
            });
            ledger.bonds.push(GenesisBond {
                address: *address,
                role: Role::StorageProvider,
                amount: PROVIDER_BOND,
            });
        }
        let genesis = ChainGenesis {
            ledger,
            validators,
            followers: Vec::new(),
            polynomial,
        };
        let text = serde_json::to_string_pretty(&genesis)
            .map_err(|error| DevnetError::Options(error.to_string()))?;
        fs::write(&genesis_path, text).map_err(io(&genesis_path))?;
        genesis
    };
    Ok(DevnetInfo {
        home: options.home.clone(),
        genesis_path,
        data_dir: dir.join("data"),
        genesis,
        accounts,
        providers,
        http: options.http,
        resumed,
    })
}

/// The genesis ledger and block of a chain.
pub fn genesis_state(genesis: &ChainGenesis) -> Result<(Ledger, Block), DevnetError> {
    let ledger = Ledger::from_genesis(&genesis.ledger)
        .map_err(|error| DevnetError::Ledger(error.to_string()))?;
    let block = Block::genesis(ledger.state_root().0, genesis.genesis_leader()?);
    Ok((ledger, block))
}

/// Runs the prepared devnet until `shutdown` completes (the CLI passes Ctrl-C). `on_ready` is
/// called once the API listens.
pub fn run(
    info: DevnetInfo,
    on_ready: impl FnOnce(&DevnetInfo) + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DevnetError> {
    let mut identities = Vec::new();
    for index in 0..info.genesis.validators.len() {
        let path = devnet_dir(&info.home)
            .join("validators")
            .join(index.to_string())
            .join("validator.json");
        let key_file: ValidatorKeyFile = read_json(&path)?;
        identities.push((Seat::Validator(index), key_file.identity()?));
    }
    let keystore = Keystore::new(&info.home);
    let mut providers = Vec::new();
    for (index, (name, _)) in info.providers.iter().enumerate() {
        providers.push(LocalProvider {
            signer: keystore.load(name)?.signer,
            directory: info.data_dir.join("providers").join(index.to_string()),
        });
    }
    let genesis = info.genesis.clone();
    let data_dir = info.data_dir.clone();
    let http = info.http;
    run_validators(
        &genesis,
        identities,
        providers,
        &data_dir,
        http,
        move || on_ready(&info),
        shutdown,
    )
}

/// A storage provider run by this process: its account key and its shard directory.
pub struct LocalProvider {
    /// The provider's account key.
    pub signer: commonware_cryptography::ed25519::PrivateKey,
    /// Where its shards live.
    pub directory: PathBuf,
}

/// Which genesis entry a locally run node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seat {
    /// Validator `index` of the genesis.
    Validator(usize),
    /// Follower (full node) `index` of the genesis.
    Follower(usize),
}

/// Runs the given nodes (validators and followers) of `genesis` in this process (one tokio
/// runtime, storage under `data_dir`) with the API of the first on `http`, until `shutdown`
/// completes.
pub fn run_validators(
    genesis: &ChainGenesis,
    identities: Vec<(Seat, tributary_chain::NodeIdentity)>,
    local_providers: Vec<LocalProvider>,
    data_dir: &Path,
    http: SocketAddr,
    on_ready: impl FnOnce() + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DevnetError> {
    let set = genesis.validator_set()?;
    let (ledger, genesis_block) = genesis_state(genesis)?;
    let seat_of = |seat: Seat| match seat {
        Seat::Validator(index) => set.validators.get(index).cloned(),
        Seat::Follower(index) => set.followers.get(index).cloned(),
    };
    for (seat, identity) in &identities {
        let expected = seat_of(*seat).map(|(key, _)| key);
        if expected != Some(identity.signer.public_key()) {
            return Err(DevnetError::Options(format!(
                "the node key does not match {seat:?} of the genesis"
            )));
        }
    }
    // Bind the API before starting anything, so a taken port fails fast and clearly.
    let listener = TcpListener::bind(http).map_err(|source| DevnetError::Listen {
        address: http,
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| DevnetError::Listen {
            address: http,
            source,
        })?;
    let config = runtime::Config::new()
        .with_storage_directory(data_dir)
        .with_tcp_nodelay(Some(true));
    let runner = runtime::Runner::new(config);
    runner.start(move |context| async move {
        let mut api_state = None;
        for (seat, identity) in identities {
            let state = ChainState::new(ledger.clone(), &genesis_block);
            let (listen, prefix, index) = match seat {
                Seat::Validator(index) => (set.validators[index].1, "validator", index),
                Seat::Follower(index) => (set.followers[index].1, "follower", index),
            };
            let engine = EngineConfig {
                identity,
                set: set.clone(),
                listen,
                partition_prefix: format!("{prefix}-{index}"),
                genesis: genesis_block.clone(),
                state: state.clone(),
                proposal_fault: None,
            };
            start_validator(context.child(prefix).with_attribute("index", index), engine)
                .await
                .map_err(|error| DevnetError::Validator {
                    index,
                    reason: error.to_string(),
                })?;
            if api_state.is_none() {
                api_state = Some(state);
            }
        }
        let Some(chain) = api_state else {
            return Err(DevnetError::Options("no validators".into()));
        };
        // Storage providers serve on this API and act through node 0's chain state.
        let mut providers = std::collections::BTreeMap::new();
        for local in local_providers {
            let address = Address::from_public_key(&local.signer.public_key());
            let offer = crate::provider::Offer {
                capacity_bytes: PROVIDER_CAPACITY_BYTES,
                price_per_gib_epoch: PROVIDER_PRICE_PER_GIB_EPOCH,
                endpoint: format!("http://{http}/v1/storage/{address}"),
            };
            let provider = crate::provider::StorageProvider::open(
                local.signer,
                &local.directory,
                std::sync::Arc::new(chain.clone()),
                offer,
                crate::provider::BlobOptions::loopback(),
            )
            .map_err(|error| {
                DevnetError::Options(format!("storage provider {address}: {error}"))
            })?;
            let ticking = provider.clone();
            // Provider work reads and hashes shards on disk: give it its own thread, off the
            // ones that drive consensus.
            context
                .child("provider")
                .dedicated()
                .spawn(move |context| async move {
                    loop {
                        ticking.tick();
                        context
                            .sleep(std::time::Duration::from_millis(PROVIDER_TICK_MS))
                            .await;
                    }
                });
            providers.insert(address, provider);
        }
        let router = api::router(ApiState {
            chain,
            validators: set.validators.len(),
            providers: std::sync::Arc::new(providers),
        });
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|source| DevnetError::Listen {
                address: http,
                source,
            })?;
        on_ready();
        let server = axum::serve(listener, router).with_graceful_shutdown(shutdown);
        if let Err(error) = server.await {
            tracing::error!(target: "tributary::node", %error, "API server stopped");
        }
        tracing::info!(target: "tributary::node", "shutting down");
        Ok(())
    })
}
