//! `tributary bench load`: finalized throughput and finality latency of a network of real
//! validator processes on loopback, beside this machine's single-core ed25519 verification rate
//! measured in the same run.
//!
//! It starts `tributary devnet --processes` in a temporary home, pre-signs transfers from the dev
//! accounts (each account's nonces in sequence, each account pinned to one node so its nonces
//! arrive in order), submits them in batches through `POST /v1/transactions/batch` while keeping
//! a bounded number in flight, and follows node 0's finalized blocks to time each transaction from
//! submission to the first poll that sees it finalized (so latencies include up to one poll
//! interval).

use crate::{Cli, client::Client, output};
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde::Serialize;
use std::{
    collections::{BTreeMap, VecDeque},
    process::{Command, Stdio},
    time::{Duration, Instant},
};
use tributary_chain::BlockRecord;
use tributary_node::{
    api::{BatchRequest, BatchResponse, StatusResponse},
    keystore::Keystore,
};
use tributary_types::{Call, SignedTransaction, Transaction};

/// `tributary bench load` options.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Validators, each its own process.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// How long to submit load, in seconds.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Transactions per batch request.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Most submitted but not yet finalized transactions at any time.
    #[arg(long, default_value_t = 20_000)]
    pub in_flight: usize,
}

#[derive(Serialize)]
struct LoadReport {
    validators: usize,
    cores: usize,
    duration_s: f64,
    submitted: usize,
    finalized: usize,
    finalized_per_second: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    single_verify_per_second: f64,
    target_per_second: f64,
    ratio_to_target: f64,
}

/// Kills the devnet (and its node processes) however the bench ends.
struct DevnetGuard {
    child: std::process::Child,
    home: std::path::PathBuf,
}

impl Drop for DevnetGuard {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(self.home.join("devnet/devnet.json"))
            && let Ok(listing) = serde_json::from_str::<serde_json::Value>(&text)
        {
            for node in listing["nodes"].as_array().into_iter().flatten() {
                if let Some(pid) = node["pid"].as_u64() {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

pub fn run(cli: &Cli, args: &LoadArgs) -> Result<()> {
    if args.batch == 0 || args.batch > tributary_types::limits::API_BATCH_TRANSACTIONS_MAX {
        bail!(
            "--batch must be between 1 and {}",
            tributary_types::limits::API_BATCH_TRANSACTIONS_MAX
        );
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let verify_rate = tributary_ledger::bench::single_verify_rate(5_000);
    let home = tempfile::Builder::new()
        .prefix("tributary-load-")
        .tempdir()?;
    let port = tributary_node::ports::free_loopback_port()?.port();
    let exe = std::env::current_exe()?;
    let child = Command::new(&exe)
        .arg("--home")
        .arg(home.path())
        .args([
            "devnet",
            "--processes",
            "--validators",
            &args.validators.to_string(),
            "--storage-providers",
            "0",
        ])
        .args(["--http", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the devnet")?;
    let _guard = DevnetGuard {
        child,
        home: home.path().to_path_buf(),
    };
    let node0 = Client::new(&format!("http://127.0.0.1:{port}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(status) = node0.status()
            && status.height >= 1
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("the devnet did not start within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let listing: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        home.path().join("devnet/devnet.json"),
    )?)?;
    let apis: Vec<String> = listing["nodes"]
        .as_array()
        .ok_or_else(|| anyhow!("devnet.json lists no nodes"))?
        .iter()
        .filter_map(|node| node["api"].as_str().map(str::to_string))
        .collect();
    let clients: Vec<Client> = apis.iter().map(|api| Client::new(api)).collect();
    let status: StatusResponse = node0.status()?;
    let min_fee: u128 = status.min_fee.parse()?;

    // Pre-sign enough transfers for the whole run (signing is not what is measured).
    let keystore = Keystore::new(home.path());
    let keys = tributary_node::devnet::DEV_ACCOUNTS
        .iter()
        .map(|name| keystore.load(name))
        .collect::<Result<Vec<_>, _>>()?;
    let budget = (verify_rate as usize).max(1_000) * args.duration as usize / 2;
    let per_account = budget / keys.len() + args.batch;
    eprintln!(
        "pre-signing {} transfers from {} accounts…",
        per_account * keys.len(),
        keys.len()
    );
    let progress = indicatif::ProgressBar::new((per_account * keys.len()) as u64);
    if cli.json {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut queues: Vec<VecDeque<(String, String)>> = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        let to = keys[(index + 1) % keys.len()].address();
        let mut queue = VecDeque::with_capacity(per_account);
        for nonce in 0..per_account as u64 {
            let signed = SignedTransaction::sign(
                &key.signer,
                Transaction {
                    chain_id: status.chain_id.clone(),
                    sender: key.address(),
                    nonce,
                    fee: min_fee,
                    call: Call::Transfer { to, amount: 1 },
                },
            );
            queue.push_back((signed.hash().to_string(), hex::encode(signed.to_bytes())));
            progress.inc(1);
        }
        queues.push(queue);
    }
    progress.finish_and_clear();

    // Submit for `duration`, following finalized blocks.
    let mut submitted_at: BTreeMap<String, Instant> = BTreeMap::new();
    let mut latencies_ms: Vec<f64> = Vec::new();
    let mut next_height = node0.status()?.height + 1;
    let started = Instant::now();
    let run_for = Duration::from_secs(args.duration);
    let mut submitted = 0usize;
    let mut account = 0usize;
    let mut first_finalized: Option<Instant> = None;
    let mut last_finalized = started;
    while started.elapsed() < run_for {
        if submitted_at.len() < args.in_flight {
            let queue = &mut queues[account];
            let take = args.batch.min(queue.len());
            if take > 0 {
                let batch: Vec<(String, String)> = queue.drain(..take).collect();
                let now = Instant::now();
                let client = &clients[account % clients.len()];
                let response: BatchResponse = client.post(
                    "/v1/transactions/batch",
                    &BatchRequest {
                        transactions: batch.iter().map(|(_, hex)| hex.clone()).collect(),
                    },
                )?;
                for ((hash, _), result) in batch.iter().zip(&response.results) {
                    if result.status == "pending" {
                        submitted_at.insert(hash.clone(), now);
                        submitted += 1;
                    }
                }
            }
            account = (account + 1) % queues.len();
        }
        // Follow finalized blocks on node 0.
        loop {
            let Ok(block) = node0.get::<BlockRecord>(&format!("/v1/blocks/{next_height}")) else {
                break;
            };
            let seen = Instant::now();
            for hash in &block.transactions {
                if let Some(at) = submitted_at.remove(hash) {
                    latencies_ms.push(seen.duration_since(at).as_secs_f64() * 1_000.0);
                    first_finalized.get_or_insert(seen);
                    last_finalized = seen;
                }
            }
            next_height += 1;
        }
        if submitted_at.len() >= args.in_flight {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let finalized = latencies_ms.len();
    let measured = match first_finalized {
        Some(first) if last_finalized > first => last_finalized.duration_since(started),
        _ => started.elapsed(),
    };
    latencies_ms.sort_by(f64::total_cmp);
    let finalized_per_second = finalized as f64 / measured.as_secs_f64().max(1e-9);
    let target_per_second = 0.3 * cores as f64 * verify_rate / args.validators.max(1) as f64;
    let report = LoadReport {
        validators: args.validators,
        cores,
        duration_s: measured.as_secs_f64(),
        submitted,
        finalized,
        finalized_per_second,
        latency_p50_ms: percentile(&latencies_ms, 0.5),
        latency_p99_ms: percentile(&latencies_ms, 0.99),
        single_verify_per_second: verify_rate,
        target_per_second,
        ratio_to_target: finalized_per_second / target_per_second.max(1e-9),
    };
    if cli.json {
        return output::json(&report);
    }
    let mut table = output::table(&["measure", "value"]);
    table.add_row(vec![
        "validators (processes)".to_string(),
        report.validators.to_string(),
    ]);
    table.add_row(vec!["cores".to_string(), report.cores.to_string()]);
    table.add_row(vec![
        "ed25519 single verify (1 core)".to_string(),
        format!("{:.0} /s", report.single_verify_per_second),
    ]);
    table.add_row(vec![
        "finalized transfers".to_string(),
        format!(
            "{} of {} in {:.1} s",
            report.finalized, report.submitted, report.duration_s
        ),
    ]);
    table.add_row(vec![
        "finalized throughput".to_string(),
        format!("{:.0} tx/s", report.finalized_per_second),
    ]);
    table.add_row(vec![
        "target: 30% of cores × verify ÷ validators".to_string(),
        format!(
            "{:.0} tx/s (ratio {:.2})",
            report.target_per_second, report.ratio_to_target
        ),
    ]);
    table.add_row(vec![
        "finality latency p50 / p99".to_string(),
        format!(
            "{:.0} ms / {:.0} ms",
            report.latency_p50_ms, report.latency_p99_ms
        ),
    ]);
    println!("{table}");
    Ok(())
}
