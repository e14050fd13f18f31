//! `tributary bench storage`: end-to-end `asset add` and `asset get` of a large CSV across six
//! local storage providers on loopback, beside a raw HTTP transfer of the same bytes with the same
//! fan-out (6 shards up, 4 shards down, concurrently) to a server that only moves bytes, in the
//! same run. (The issue names iroh-blobs' raw transfer as the baseline; shards move over HTTP
//! until the iroh transport is built, so HTTP is the honest baseline for now.)
//!
//! `add` is measured from the file on disk to every deal accepted (ingest: chunk, hash, encrypt,
//! erasure-code; registration and deals, each waiting for finality; uploads, each verified and
//! stored crash-safely with its proof outboard). `get` from the first request to the file written
//! and verified against the asset id. Wire bytes are the shard bytes moved: `(k + m) / k` of the
//! payload up, the k shards read down.

use crate::{
    Cli,
    client::Client,
    data::{AddRequest, add, get},
    local_devnet::LocalDevnet,
    output,
};
use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;
use std::{
    io::Write as _,
    time::{Duration, Instant},
};
use tributary_types::{AssetKind, Terms};

/// Largest payload the bench writes, in MiB.
const SIZE_MIB_MAX: u64 = 4096;

/// Arguments of `bench storage`.
#[derive(Args, Debug)]
pub struct StorageBenchArgs {
    /// Payload size in MiB (a CSV of this size is generated).
    #[arg(long, default_value_t = 1024)]
    pub size_mib: u64,
    /// Validators of the in-process devnet.
    #[arg(long, default_value_t = 1)]
    pub validators: usize,
}

/// One direction's figures.
#[derive(Serialize)]
struct Direction {
    seconds: f64,
    payload_mb_per_s: f64,
    wire_mb_per_s: f64,
    raw_wire_mb_per_s: f64,
    wire_vs_raw: f64,
}

#[derive(Serialize)]
struct Report {
    payload_bytes: u64,
    shard_bytes: u64,
    data_shards: usize,
    parity_shards: usize,
    add: Direction,
    get: Direction,
}

/// Writes a CSV of about `bytes` bytes (deterministic rows of numbers and a label).
fn write_payload(path: &std::path::Path, bytes: u64) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
    let header = "row,a,b,c,d,label\n";
    writer.write_all(header.as_bytes())?;
    let mut written = header.len() as u64;
    let mut row: u64 = 0;
    while written < bytes {
        let line = format!(
            "{row},{},{},{},{},{}\n",
            row.wrapping_mul(2_654_435_761) % 1_000_003,
            row.wrapping_mul(40_503) % 65_537,
            row % 977,
            row.wrapping_mul(7) % 10_007,
            row % 3
        );
        writer.write_all(line.as_bytes())?;
        written += line.len() as u64;
        row += 1;
    }
    writer.flush()?;
    Ok(())
}

/// Raw transfers of `bytes`-sized bodies over loopback HTTP to a server that only moves bytes:
/// `uploads` concurrent PUTs, then `downloads` concurrent GETs. Returns the seconds each direction
/// took.
fn raw_transfers(bytes: usize, uploads: usize, downloads: usize) -> Result<(f64, f64)> {
    use axum::{Router, body::Bytes, routing::get as get_route};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let body = Bytes::from(vec![7u8; bytes]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || -> Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let served = body.clone();
            let router = Router::new()
                .route(
                    "/shard",
                    get_route(move || {
                        let served = served.clone();
                        async move { served }
                    })
                    .put(|body: Bytes| async move { body.len().to_string() }),
                )
                .layer(axum::extract::DefaultBodyLimit::disable());
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await?;
            Ok(())
        })
    });
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let url = format!("http://{address}/shard");
    let upload = vec![9u8; bytes];
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let sends: Vec<_> = (0..uploads)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    agent
                        .put(&url)
                        .header("content-type", "application/octet-stream")
                        .send(&upload[..])
                        .context("raw upload")?
                        .body_mut()
                        .read_to_string()?;
                    Ok(())
                })
            })
            .collect();
        for send in sends {
            send.join()
                .map_err(|_| anyhow::anyhow!("a raw upload panicked"))??;
        }
        Ok(())
    })?;
    let up = started.elapsed().as_secs_f64();
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let fetches: Vec<_> = (0..downloads)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    let received = agent
                        .get(&url)
                        .call()
                        .context("raw download")?
                        .body_mut()
                        .with_config()
                        .limit(bytes as u64 + 1)
                        .read_to_vec()?;
                    if received.len() != bytes {
                        bail!(
                            "the raw download returned {} bytes, not {bytes}",
                            received.len()
                        );
                    }
                    Ok(())
                })
            })
            .collect();
        for fetch in fetches {
            fetch
                .join()
                .map_err(|_| anyhow::anyhow!("a raw download panicked"))??;
        }
        Ok(())
    })?;
    let down = started.elapsed().as_secs_f64();
    let _ = stop.send(());
    server
        .join()
        .map_err(|_| anyhow::anyhow!("the raw server panicked"))??;
    Ok((up, down))
}

fn megabytes_per_second(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / 1e6 / seconds.max(1e-9)
}

/// Runs the bench.
pub fn bench(cli: &Cli, args: &StorageBenchArgs) -> Result<()> {
    if args.size_mib == 0 || args.size_mib > SIZE_MIB_MAX {
        bail!("--size-mib must be between 1 and {SIZE_MIB_MAX}");
    }
    let (data_shards, parity_shards) = (4usize, 2usize);
    let devnet = LocalDevnet::start(
        "tributary-bench-",
        args.validators,
        data_shards + parity_shards,
    )?;
    let client = Client::new(&devnet.url());
    crate::client::poll_until("the storage providers to register", 60_000, || {
        let providers: Vec<tributary_types::ProviderView> = client.get("/v1/providers")?;
        Ok((providers.len() >= data_shards + parity_shards).then_some(()))
    })?;
    let bench_cli = Cli {
        node: devnet.url(),
        home: Some(devnet.home().to_path_buf()),
        json: true,
        command: crate::Command::Status,
    };
    let payload = devnet.home().join("payload.csv");
    eprintln!("writing a {} MiB CSV…", args.size_mib);
    write_payload(&payload, args.size_mib << 20)?;
    let payload_bytes = std::fs::metadata(&payload)?.len();

    eprintln!(
        "asset add across {} providers…",
        data_shards + parity_shards
    );
    let started = Instant::now();
    let added = add(
        &bench_cli,
        &client,
        AddRequest {
            file: &payload,
            from: "alice",
            kind: AssetKind::Dataset,
            name: Some("bench payload"),
            terms: Terms::default(),
            data_shards,
            parity_shards,
            epochs: 10,
        },
    )?;
    let add_seconds = started.elapsed().as_secs_f64();
    let shard_bytes = added.shards.first().map_or(0, |shard| shard.bytes);

    eprintln!("asset get…");
    let out = devnet.home().join("payload.out");
    let started = Instant::now();
    get(&bench_cli, &client, added.asset_id, "alice", &out)?;
    let get_seconds = started.elapsed().as_secs_f64();
    std::fs::remove_file(&out).ok();
    std::fs::remove_file(&payload).ok();

    eprintln!("raw HTTP transfers of the same shards…");
    let shard_size = usize::try_from(shard_bytes)?;
    let (raw_up, raw_down) = raw_transfers(shard_size, data_shards + parity_shards, data_shards)?;
    devnet.stop(false);

    let wire_up = shard_bytes * (data_shards + parity_shards) as u64;
    let wire_down = shard_bytes * data_shards as u64;
    let direction = |seconds: f64, wire: u64, raw_seconds: f64| {
        let wire_rate = megabytes_per_second(wire, seconds);
        let raw_rate = megabytes_per_second(wire, raw_seconds);
        Direction {
            seconds,
            payload_mb_per_s: megabytes_per_second(payload_bytes, seconds),
            wire_mb_per_s: wire_rate,
            raw_wire_mb_per_s: raw_rate,
            wire_vs_raw: wire_rate / raw_rate.max(1e-9),
        }
    };
    let report = Report {
        payload_bytes,
        shard_bytes,
        data_shards,
        parity_shards,
        add: direction(add_seconds, wire_up, raw_up),
        get: direction(get_seconds, wire_down, raw_down),
    };
    if cli.json {
        return output::json(&report);
    }
    let mut table = output::table(&[
        "",
        "seconds",
        "payload MB/s",
        "wire MB/s",
        "raw HTTP wire MB/s",
        "wire / raw",
    ]);
    for (name, figures) in [("asset add", &report.add), ("asset get", &report.get)] {
        table.add_row(vec![
            name.to_string(),
            format!("{:.2}", figures.seconds),
            format!("{:.0}", figures.payload_mb_per_s),
            format!("{:.0}", figures.wire_mb_per_s),
            format!("{:.0}", figures.raw_wire_mb_per_s),
            format!("{:.0}%", figures.wire_vs_raw * 100.0),
        ]);
    }
    println!(
        "{} MB payload, {} + {} shards of {} MB over loopback HTTP",
        payload_bytes / 1_000_000,
        data_shards,
        parity_shards,
        shard_bytes / 1_000_000
    );
    println!("{table}");
    Ok(())
}
