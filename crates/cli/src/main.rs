//! `tributary`: the node and the command-line client of the Tributary network.
//!
//! Arguments are parsed and validated first (clap), then resources are built (keystore, HTTP
//! client). Library errors are typed; here they become `anyhow` errors with context, printed as
//! one line, and a non-zero exit code.

mod bench_storage;
mod client;
mod commands;
mod data;
mod demo;
mod demo_rewards;
mod demo_training;
mod federated;
mod load;
mod local_devnet;
mod output;
mod processes;
mod provide;
mod rewards;
mod storage;
mod train;
mod value;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Tributary: a decentralized data and compute layer for AI. Register datasets and models as IP
/// assets, license them, and route royalties up their lineage.
#[derive(Parser, Debug)]
#[command(name = "tributary", version, about, long_about = None)]
pub struct Cli {
    /// The node's API URL.
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_NODE",
        default_value = "http://127.0.0.1:8645"
    )]
    pub node: String,
    /// The home directory (keys, devnet data).
    #[arg(long, global = true, env = "TRIBUTARY_HOME")]
    pub home: Option<PathBuf>,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a local network in one process (validators, API, funded dev accounts) until Ctrl-C.
    Devnet(commands::DevnetArgs),
    /// Make and run a validator node as its own process.
    #[command(subcommand)]
    Node(processes::NodeCommand),
    /// Build a shared genesis file for validators run as separate processes.
    #[command(subcommand)]
    Genesis(processes::GenesisCommand),
    /// Run the whole chain end to end on a temporary devnet and print who paid whom.
    Demo(demo::DemoArgs),
    /// Manage account keys in the home directory.
    #[command(subcommand)]
    Keys(commands::KeysCommand),
    /// Show accounts.
    #[command(subcommand)]
    Account(commands::AccountCommand),
    /// Send transactions.
    #[command(subcommand)]
    Tx(commands::TxCommand),
    /// Register, inspect and pay IP assets.
    #[command(subcommand)]
    Asset(commands::AssetCommand),
    /// Buy and list license tokens.
    #[command(subcommand)]
    License(commands::LicenseCommand),
    /// Show the chain's status.
    Status,
    /// Proven validator misbehaviour: list it, or report it on chain.
    #[command(subcommand)]
    Evidence(commands::EvidenceCommand),
    /// Show finalized blocks.
    #[command(subcommand)]
    Block(commands::BlockCommand),
    /// Value training data by how much it improves a model (KNN-Shapley and friends).
    Value(value::ValueArgs),
    /// Reward pools that pay data by its value: create, submit or challenge a valuation, vote,
    /// claim.
    #[command(subcommand)]
    Rewards(rewards::RewardsCommand),
    /// Train models: locally on a table, or federated across contributors.
    #[command(subcommand)]
    Train(train::TrainCommand),
    /// Models trained on the network: their bills of materials.
    #[command(subcommand)]
    Model(train::ModelCommand),
    /// Storage providers and deals on the ledger.
    #[command(subcommand)]
    Storage(storage::StorageCommand),
    /// Run benchmarks on this machine.
    #[command(subcommand)]
    Bench(commands::BenchCommand),
}

impl Cli {
    /// The home directory: `--home`, `TRIBUTARY_HOME`, or `~/.tributary`.
    pub fn home(&self) -> PathBuf {
        if let Some(home) = &self.home {
            return home.clone();
        }
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".tributary")
    }
}

fn main() {
    let cli = Cli::parse();
    // The demo stops its network when it is done; the p2p actors' complaints about closed
    // mailboxes during that shutdown are expected, so the demo's default filter leaves them out.
    let default_filter = match cli.command {
        Command::Demo(_) => {
            "warn,commonware_resolver=off,commonware_p2p=off,commonware_broadcast=off"
        }
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRIBUTARY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal: logs sent to files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(error) = run(cli) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Devnet(args) => commands::devnet(&cli, args),
        Command::Demo(args) => demo::run(&cli, args),
        Command::Node(command) => processes::node(&cli, command),
        Command::Genesis(command) => processes::genesis(&cli, command),
        Command::Keys(command) => commands::keys(&cli, command),
        Command::Account(command) => commands::account(&cli, command),
        Command::Tx(command) => commands::tx(&cli, command),
        Command::Asset(command) => commands::asset(&cli, command),
        Command::License(command) => commands::license(&cli, command),
        Command::Rewards(command) => rewards::rewards(&cli, command),
        Command::Storage(command) => storage::storage(&cli, command),
        Command::Train(command) => train::train(&cli, command),
        Command::Model(command) => train::model(&cli, command),
        Command::Status => commands::status(&cli),
        Command::Evidence(command) => commands::evidence(&cli, command),
        Command::Block(command) => commands::block(&cli, command),
        Command::Bench(command) => commands::bench(&cli, command),
        Command::Value(args) => value::run(args.clone(), cli.json),
    }
}
