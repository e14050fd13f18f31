//! `tributary devnet --processes` and the node operator commands (`node`, `genesis`).
//!
//! With `--processes`, the devnet makes one node home per validator under `HOME/devnet/nodes/N`
//! through the same genesis flow an operator uses (`node init`, `genesis new|add-validator|
//! add-account|finalize`), spawns a real `tributary node run --home ...` process for each, then
//! one `tributary storage provide` process per storage provider (accounts `provider-N`, funded at
//! genesis; each bonds its stake, registers and serves on an API of its own, its data under
//! `HOME/devnet/providers/N`), waits until they are registered, and writes
//! `HOME/devnet/devnet.json` — `{"nodes": [{"pid", "home", "api", "role"}], "providers":
//! [{"pid", "name", "address", "api", "dir"}]}`, node 0 serving the `--http` address — so a script
//! can kill a node and start it again with `tributary node run`.

use crate::{Cli, commands::DevnetArgs, output};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde::Serialize;
use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use tributary_node::{
    devnet::{
        DEV_ACCOUNT_BALANCE, DEVNET_CHAIN_ID, PROVIDER_BALANCE, dev_accounts, provider_accounts,
        set_epoch_blocks,
    },
    operator,
};
use tributary_types::{Address, Amount};

#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Make a node home: a node key and config.toml with defaults.
    Init {
        /// Human name of the node.
        #[arg(long)]
        moniker: String,
        /// p2p listen address (default: a free loopback port).
        #[arg(long)]
        p2p: Option<SocketAddr>,
        /// API listen address (default 127.0.0.1:8645).
        #[arg(long)]
        api: Option<SocketAddr>,
    },
    /// Run the validator in --home until Ctrl-C.
    Run,
}

#[derive(Subcommand, Debug)]
pub enum GenesisCommand {
    /// Start a draft genesis in --home.
    New {
        /// The chain id.
        #[arg(long, default_value = DEVNET_CHAIN_ID)]
        chain_id: String,
    },
    /// Add the validator whose node home is NODE_HOME to the draft.
    AddValidator {
        /// The node's home (made by `tributary node init`).
        #[arg(long)]
        node_home: PathBuf,
        /// The validator's genesis stake in base units (slashed for proven misbehaviour).
        #[arg(long, default_value_t = tributary_node::devnet::VALIDATOR_BOND)]
        bond: tributary_types::Amount,
    },
    /// Add the full (non-voting) node whose home is NODE_HOME to the draft: validators accept it
    /// as a peer and it follows the chain.
    AddFollower {
        /// The node's home (made by `tributary node init`).
        #[arg(long)]
        node_home: PathBuf,
    },
    /// Fund an account in the draft.
    AddAccount {
        /// The account's address.
        address: Address,
        /// Its balance in base units.
        amount: Amount,
    },
    /// Deal the validators' key shares and write genesis.json into --home and every node home.
    Finalize {
        /// Every validator's node home.
        #[arg(long = "node-home", required = true)]
        node_homes: Vec<PathBuf>,
    },
}

pub fn node(cli: &Cli, command: &NodeCommand) -> Result<()> {
    let home = cli.home();
    match command {
        NodeCommand::Init { moniker, p2p, api } => {
            let config = operator::init(&home, moniker, *p2p, *api)?;
            if cli.json {
                return output::json(&config);
            }
            println!("initialised {} in {}", config.moniker, home.display());
            println!("  p2p {}  api {}", config.p2p_listen, config.api_listen);
            Ok(())
        }
        NodeCommand::Run => {
            let json = cli.json;
            let shown = home.clone();
            operator::run(
                &home,
                move |config| {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({"moniker": config.moniker, "api": format!("http://{}", config.api_listen), "home": shown})
                        );
                    } else {
                        println!(
                            "node {} running: API http://{}, p2p {}",
                            config.moniker, config.api_listen, config.p2p_listen
                        );
                    }
                },
                async {
                    let _ = tokio::signal::ctrl_c().await;
                },
            )?;
            Ok(())
        }
    }
}

pub fn genesis(cli: &Cli, command: &GenesisCommand) -> Result<()> {
    let home = cli.home();
    match command {
        GenesisCommand::New { chain_id } => operator::genesis_new(&home, chain_id, None)?,
        GenesisCommand::AddValidator { node_home, bond } => {
            let validator = operator::genesis_add_validator(&home, node_home, *bond)?;
            println!(
                "added {} ({}) at {}",
                validator.name, validator.address, validator.p2p
            );
        }
        GenesisCommand::AddFollower { node_home } => {
            let follower = operator::genesis_add_follower(&home, node_home)?;
            println!("added follower {} at {}", follower.name, follower.p2p);
        }
        GenesisCommand::AddAccount { address, amount } => {
            operator::genesis_add_account(&home, *address, *amount)?
        }
        GenesisCommand::Finalize { node_homes } => {
            let genesis = operator::genesis_finalize(&home, node_homes)?;
            println!(
                "genesis of {} with {} validators written to {} and every node home",
                genesis.ledger.chain_id,
                genesis.validators.len(),
                home.join("genesis.json").display()
            );
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct DevnetNode {
    pid: u32,
    home: PathBuf,
    api: String,
    /// `validator` or `follower`.
    role: &'static str,
}

/// A storage provider process of the devnet.
#[derive(Serialize)]
struct DevnetProvider {
    pid: u32,
    /// Its account's key name in the devnet's home.
    name: String,
    address: Address,
    /// Its API (shards, reads and key envelopes).
    api: String,
    /// Its shard store and log.
    dir: PathBuf,
}

#[derive(Serialize)]
struct DevnetFile {
    nodes: Vec<DevnetNode>,
    providers: Vec<DevnetProvider>,
}

/// How long `devnet --processes` waits for node 0's API, and then for its storage providers to
/// register.
const PROCESSES_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Named accounts: key name and address.
type Accounts = Vec<(String, Address)>;

/// The storage provider accounts a devnet's genesis funded: `provider-0`, `provider-1`… for as
/// long as the home holds the key and the genesis funds its address.
fn funded_providers(home: &Path, genesis_path: &Path) -> Result<Accounts> {
    let genesis: tributary_chain::ChainGenesis = serde_json::from_str(
        &fs::read_to_string(genesis_path)
            .with_context(|| format!("reading {}", genesis_path.display()))?,
    )
    .with_context(|| format!("reading {}", genesis_path.display()))?;
    let keystore = tributary_node::keystore::Keystore::new(home);
    let mut providers = Vec::new();
    for index in 0.. {
        let name = format!("provider-{index}");
        let Ok(key) = keystore.load(&name) else {
            break;
        };
        let address = key.address();
        if !genesis
            .ledger
            .allocations
            .iter()
            .any(|allocation| allocation.address == address)
        {
            break;
        }
        providers.push((name, address));
    }
    Ok(providers)
}

/// The node homes (validators first) and the storage provider accounts of the devnet in `home`,
/// made through the operator's genesis flow unless they exist.
fn prepare_homes(home: &Path, args: &DevnetArgs) -> Result<(Vec<PathBuf>, Accounts)> {
    let devnet = home.join("devnet");
    if args.reset && devnet.exists() {
        fs::remove_dir_all(&devnet).with_context(|| format!("removing {}", devnet.display()))?;
    }
    let nodes_dir = devnet.join("nodes");
    if nodes_dir.join("0").join("genesis.json").exists() {
        let mut homes: Vec<PathBuf> = fs::read_dir(&nodes_dir)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.join("genesis.json").exists())
            .collect();
        homes.sort_by_key(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(usize::MAX)
        });
        let providers = funded_providers(home, &nodes_dir.join("0").join("genesis.json"))?;
        return Ok((homes, providers));
    }
    if args.validators == 0 {
        bail!("--validators must be at least 1");
    }
    let mut params = tributary_types::Params::devnet(DEVNET_CHAIN_ID);
    set_epoch_blocks(&mut params, args.epoch_blocks)?;
    let accounts = dev_accounts(home)?;
    let providers = provider_accounts(home, args.storage_providers)?;
    let mut homes = Vec::new();
    for index in 0..args.validators {
        let node_home = nodes_dir.join(index.to_string());
        let api = if index == 0 {
            args.http
        } else {
            tributary_node::ports::free_loopback_port()?
        };
        operator::init(&node_home, &format!("validator-{index}"), None, Some(api))?;
        homes.push(node_home);
    }
    operator::genesis_new(&devnet, DEVNET_CHAIN_ID, Some(params))?;
    for node_home in &homes {
        operator::genesis_add_validator(
            &devnet,
            node_home,
            tributary_node::devnet::VALIDATOR_BOND,
        )?;
    }
    for index in 0..args.followers {
        let node_home = nodes_dir.join(format!("follower-{index}"));
        let api = tributary_node::ports::free_loopback_port()?;
        operator::init(&node_home, &format!("follower-{index}"), None, Some(api))?;
        operator::genesis_add_follower(&devnet, &node_home)?;
        homes.push(node_home);
    }
    for (_, address) in accounts {
        operator::genesis_add_account(&devnet, address, DEV_ACCOUNT_BALANCE)?;
    }
    for (_, address) in &providers {
        operator::genesis_add_account(&devnet, *address, PROVIDER_BALANCE)?;
    }
    operator::genesis_finalize(&devnet, &homes)?;
    Ok((homes, providers))
}

/// Kills the node processes when the devnet stops (or fails).
struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn devnet_processes(cli: &Cli, args: &DevnetArgs) -> Result<()> {
    let home = cli.home();
    let (homes, providers) = prepare_homes(&home, args)?;
    let exe = std::env::current_exe().context("finding the tributary binary")?;
    let mut nodes = Nodes(Vec::new());
    let mut listed = Vec::new();
    for node_home in &homes {
        let config = operator::read_config(node_home)?;
        let log = fs::File::create(node_home.join("node.log"))?;
        let child = Command::new(&exe)
            .arg("--home")
            .arg(node_home)
            .args(["node", "run"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting the node in {}", node_home.display()))?;
        listed.push(DevnetNode {
            pid: child.id(),
            home: node_home.clone(),
            api: format!("http://{}", config.api_listen),
            role: if node_home.join("validator.json").exists() {
                "validator"
            } else {
                "follower"
            },
        });
        nodes.0.push(child);
    }
    let validators = homes
        .iter()
        .filter(|home| home.join("validator.json").exists())
        .count();
    // Wait for node 0's API.
    let node_api = format!("http://{}", args.http);
    let client = crate::client::Client::new(&node_api);
    let deadline = Instant::now() + PROCESSES_START_TIMEOUT;
    while client.status().is_err() {
        if Instant::now() > deadline {
            bail!(
                "node 0 did not start within {} s; see {}",
                PROCESSES_START_TIMEOUT.as_secs(),
                homes[0].join("node.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The storage providers, each its own process talking to node 0's API.
    let mut provider_list = Vec::new();
    for (index, (name, address)) in providers.iter().enumerate() {
        let dir = home
            .join("devnet")
            .join("providers")
            .join(index.to_string());
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let listen = tributary_node::ports::free_loopback_port()?;
        let log = fs::File::create(dir.join("provider.log"))?;
        let child = Command::new(&exe)
            .arg("--home")
            .arg(&home)
            .args(["--node", &node_api, "storage", "provide", "--from", name])
            .args(["--listen", &listen.to_string()])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting storage provider {name}"))?;
        provider_list.push(DevnetProvider {
            pid: child.id(),
            name: name.clone(),
            address: *address,
            api: format!("http://{listen}"),
            dir,
        });
        nodes.0.push(child);
    }
    // Written aside and renamed into place, so a script polling for the file never reads half.
    let devnet_file = home.join("devnet").join("devnet.json");
    crate::data::write_atomically(
        &devnet_file,
        serde_json::to_string_pretty(&DevnetFile {
            nodes: listed,
            providers: provider_list,
        })?
        .as_bytes(),
    )?;
    // Wait until every provider has bonded and registered, so `asset add` finds them.
    let deadline = Instant::now() + PROCESSES_START_TIMEOUT;
    while !providers.is_empty() {
        let registered: Vec<tributary_types::views::ProviderView> =
            client.get("/v1/providers").unwrap_or_default();
        if providers
            .iter()
            .all(|(_, address)| registered.iter().any(|view| view.address == *address))
        {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {} storage providers registered within {} s; see {}",
                registered.len(),
                providers.len(),
                PROCESSES_START_TIMEOUT.as_secs(),
                home.join("devnet/providers/N/provider.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if cli.json {
        println!(
            "{}",
            serde_json::json!({"api": format!("http://{}", args.http), "home": home, "devnet": devnet_file, "validators": validators, "followers": homes.len() - validators, "storage_providers": providers.len()})
        );
    } else {
        println!(
            "Tributary devnet running as {} processes ({validators} validators, {} followers, {} storage providers); API http://{}",
            homes.len() + providers.len(),
            homes.len() - validators,
            providers.len(),
            args.http
        );
        println!("  nodes listed in {}", devnet_file.display());
        println!("Press Ctrl-C to stop them.");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    drop(nodes);
    Ok(())
}
