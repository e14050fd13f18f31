//! `tributary storage provide`: a storage provider as its own process.
//!
//! It bonds the provider's stake (up to the ledger's `provider_bond_min`, or `--stake`),
//! registers its offer, and then runs the same duties as a node's built-in providers, through the
//! node's HTTP API ([`RemoteChain`]): take shards for deals proposed to it, accept them, answer
//! every epoch's challenge with a proof from disk, serve shards and key envelopes to readers the
//! ledger allows, and repair failed deals of other providers. Shards live in a crash-safe store
//! under `--dir` (default `HOME/providers/NAME`), so a restarted provider carries on where it
//! stopped. It serves the provider routes of the node API (`/v1/storage/ADDRESS/...`) on
//! `--listen`, and its shards over iroh-blobs on `--blobs-listen` (UDP; readers learn the address
//! from `/v1/storage/ADDRESS/blobs`).

use crate::{Cli, commands::keystore, output};
use anyhow::{Context, Result, bail};
use clap::Args;
use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tributary_node::{
    api::storage_router,
    provider::{BlobOptions, Offer, ProviderChain, RemoteChain, StorageProvider},
};
use tributary_types::{Address, Amount, Call, Role};

/// Arguments of `storage provide`.
#[derive(Args, Debug)]
pub struct ProvideArgs {
    /// The provider's account key (in the home): it bonds the stake and earns the deals' payments.
    #[arg(long)]
    pub from: String,
    /// Address to serve shards and keys on.
    #[arg(long, default_value = "127.0.0.1:8700")]
    pub listen: SocketAddr,
    /// UDP address of the iroh endpoint that serves shards (default: LISTEN's IP, any port).
    #[arg(long)]
    pub blobs_listen: Option<SocketAddr>,
    /// Address readers dial the iroh endpoint at, if not the bound one (behind NAT or a
    /// port forward); may be given more than once.
    #[arg(long)]
    pub blobs_announce: Vec<SocketAddr>,
    /// URL clients and readers reach this provider at (default `http://LISTEN`).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Directory of the shard store (default `HOME/providers/NAME`).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Capacity offered, in GiB.
    #[arg(long, default_value_t = 64)]
    pub capacity_gib: u64,
    /// Price per GiB per epoch, in base units.
    #[arg(long, default_value_t = 1_000_000)]
    pub price_per_gib_epoch: Amount,
    /// Stake to hold bonded for the storage provider role (default: the ledger's minimum).
    #[arg(long)]
    pub stake: Option<Amount>,
    /// How often to look for deals, challenges and repairs, in milliseconds (several times per
    /// epoch: a challenge must be answered within the epoch it is drawn in).
    #[arg(long, default_value_t = 100)]
    pub tick_ms: u64,
}

/// Longest allowed tick interval, so challenges are answered within an epoch.
const TICK_MS_MAX: u64 = 10_000;

/// Runs the provider until Ctrl-C.
pub fn provide(cli: &Cli, args: &ProvideArgs) -> Result<()> {
    if args.tick_ms == 0 || args.tick_ms > TICK_MS_MAX {
        bail!("--tick-ms must be between 1 and {TICK_MS_MAX}");
    }
    let capacity_bytes = args
        .capacity_gib
        .checked_mul(1 << 30)
        .context("--capacity-gib is too large")?;
    let key = keystore(cli).load(&args.from)?;
    let address = key.address();
    let client = crate::commands::client(cli);
    let chain = Arc::new(RemoteChain::new(&cli.node));
    let params = chain
        .params()
        .context("cannot read the ledger's parameters; is the node running? (set --node)")?;

    // Bond up to the stake asked for (or the ledger's minimum).
    let target = args.stake.unwrap_or(params.provider_bond_min);
    if target < params.provider_bond_min {
        bail!(
            "--stake {target} is below the ledger's provider_bond_min of {}",
            params.provider_bond_min
        );
    }
    let bonded = crate::storage::provider_stake(&client, &address)?;
    if bonded < target {
        let response = client.send(
            &key,
            Call::Bond {
                role: Role::StorageProvider,
                amount: target - bonded,
            },
            None,
        )?;
        if response.status != "finalized" {
            bail!(
                "bonding {} for the storage provider role failed: {}; fund {address} first (`tributary tx transfer`)",
                target - bonded,
                response.reason.unwrap_or_default()
            );
        }
    }

    let directory = args
        .dir
        .clone()
        .unwrap_or_else(|| cli.home().join("providers").join(&args.from));
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let bound = listener.local_addr()?;
    let endpoint = format!(
        "{}/v1/storage/{address}",
        args.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
            .trim_end_matches('/')
    );
    let provider = StorageProvider::open(
        key.signer.clone(),
        &directory,
        chain,
        Offer {
            capacity_bytes,
            price_per_gib_epoch: args.price_per_gib_epoch,
            endpoint: endpoint.clone(),
        },
        BlobOptions {
            bind: args
                .blobs_listen
                .unwrap_or_else(|| SocketAddr::new(bound.ip(), 0)),
            announce: args.blobs_announce.clone(),
        },
    )
    .with_context(|| {
        format!(
            "cannot open the provider (shard store in {})",
            directory.display()
        )
    })?;
    let blobs = provider.blob_address();

    let stopping = Arc::new(AtomicBool::new(false));
    let ticker = {
        let provider = provider.clone();
        let stopping = stopping.clone();
        let interval = Duration::from_millis(args.tick_ms);
        std::thread::Builder::new()
            .name("provider-duties".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    provider.tick();
                    std::thread::sleep(interval);
                }
            })?
    };
    let providers: std::collections::BTreeMap<Address, Arc<StorageProvider>> =
        [(address, provider)].into_iter().collect();
    let router = storage_router(Arc::new(providers));
    if cli.json {
        output::json(&serde_json::json!({
            "provider": address,
            "endpoint": endpoint,
            "blobs": blobs,
            "directory": directory,
            "node": cli.node,
        }))?;
    } else {
        // A long-running process: a closed stdout must not stop it.
        use std::io::Write as _;
        let mut stdout = std::io::stdout();
        let _ = writeln!(
            stdout,
            "storage provider {address} serving on {endpoint}\n  iroh-blobs on {}\n  shards in {}; node {}\nPress Ctrl-C to stop.",
            blobs
                .as_ref()
                .map(|blobs| format!("{:?}", blobs.addresses))
                .unwrap_or_default(),
            directory.display(),
            cli.node
        );
        let _ = stdout.flush();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let served = runtime.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    });
    stopping.store(true, Ordering::Relaxed);
    let _ = ticker.join();
    served.context("the provider's HTTP server stopped")
}
