//! `tributary bench storage`: end-to-end `asset add` and `asset get` of a large CSV across six
//! local storage providers on loopback, beside raw transfers of the same bytes with the same
//! fan-out (6 shards up, 4 shards down, concurrently), in the same run:
//!
//! * **iroh-blobs** (the baseline): shards served from memory by iroh endpoints on
//!   loopback and fetched with verified streaming into a sink; up is one server to six fetching
//!   endpoints, down is four servers to one endpoint fetching all four at once;
//! * **HTTP**: PUTs and GETs to an axum server that only moves bytes.
//!
//! `get` moves its shards over iroh-blobs; `add` uploads them over HTTP.
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
use tributary_types::Terms;

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
    iroh_wire_mb_per_s: f64,
    wire_vs_iroh: f64,
}

#[derive(Serialize)]
struct Report {
    payload_bytes: u64,
    shard_bytes: u64,
    data_shards: usize,
    parity_shards: usize,
    add: Direction,
    get: Direction,
    /// Where `add`'s time went, step by step.
    add_phases_ms: crate::output::Phases,
    /// Where `get`'s time went.
    get_phases_ms: crate::output::Phases,
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
    // On disk before anything is timed: a gigabyte of dirty pages left to the kernel's writeback
    // slows every later write (the output `get` writes), by how far writeback has got.
    writer
        .into_inner()
        .map_err(|error| error.into_error())?
        .sync_all()?;
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

/// Raw iroh-blobs transfers of `bytes`-sized blobs on loopback, fetched into a sink with
/// verified streaming: one endpoint serving `uploads` blobs to as many fetching endpoints at
/// once, then `downloads` endpoints each serving one blob to a single endpoint fetching them all
/// at once. Returns the seconds each direction took.
fn iroh_transfers(bytes: usize, uploads: usize, downloads: usize) -> Result<(f64, f64)> {
    use tributary_blobs::{BlobConfig, BlobNode, OpenGate, Serving};
    let node = |seed: usize, serving: Serving| -> Result<BlobNode> {
        let mut secret_key = [0u8; 32];
        secret_key[..8].copy_from_slice(&(seed as u64 + 1).to_le_bytes());
        Ok(BlobNode::start(
            BlobConfig {
                secret_key,
                bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                announce: Vec::new(),
            },
            serving,
        )?)
    };
    let memory = || Serving::Memory {
        gate: std::sync::Arc::new(OpenGate),
    };
    // Distinct blobs, so nothing is deduplicated.
    let blob = |index: usize| bytes::Bytes::from(vec![index as u8 + 1; bytes]);
    let fetch_all = |pairs: Vec<(&BlobNode, &BlobNode, [u8; 32])>| -> Result<f64> {
        let started = Instant::now();
        std::thread::scope(|scope| -> Result<()> {
            let fetches: Vec<_> = pairs
                .into_iter()
                .map(|(fetcher, server, root)| {
                    scope.spawn(move || -> Result<()> {
                        let stats = fetcher.fetch(
                            &server.address(),
                            &root,
                            bytes as u64,
                            &mut std::io::sink(),
                        )?;
                        if stats.bytes != bytes as u64 {
                            bail!("a raw iroh fetch returned {} bytes", stats.bytes);
                        }
                        Ok(())
                    })
                })
                .collect();
            for fetch in fetches {
                fetch
                    .join()
                    .map_err(|_| anyhow::anyhow!("a raw iroh fetch panicked"))??;
            }
            Ok(())
        })?;
        Ok(started.elapsed().as_secs_f64())
    };

    let sender = node(100, memory())?;
    let roots = (0..uploads)
        .map(|index| sender.serve_bytes(blob(index)).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    let receivers = (0..uploads)
        .map(|index| node(200 + index, Serving::Nothing))
        .collect::<Result<Vec<_>>>()?;
    let up = fetch_all(
        receivers
            .iter()
            .zip(&roots)
            .map(|(receiver, root)| (receiver, &sender, *root))
            .collect(),
    )?;
    drop((sender, receivers));

    let servers = (0..downloads)
        .map(|index| node(300 + index, memory()))
        .collect::<Result<Vec<_>>>()?;
    let roots = servers
        .iter()
        .enumerate()
        .map(|(index, server)| server.serve_bytes(blob(index)).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    let reader = node(400, Serving::Nothing)?;
    let down = fetch_all(
        servers
            .iter()
            .zip(&roots)
            .map(|(server, root)| (&reader, server, *root))
            .collect(),
    )?;
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
            name: Some("bench payload"),
            data_shards,
            parity_shards,
            epochs: 10,
            ..AddRequest::new(&payload, "alice", Terms::default())
        },
    )?;
    let add_seconds = started.elapsed().as_secs_f64();
    let shard_bytes = added.shards.first().map_or(0, |shard| shard.bytes);

    eprintln!("asset get…");
    let out = devnet.home().join("payload.out");
    let started = Instant::now();
    let got = get(&bench_cli, &client, added.asset_id, "alice", &out)?;
    let get_seconds = started.elapsed().as_secs_f64();
    std::fs::remove_file(&out).ok();
    std::fs::remove_file(&payload).ok();

    eprintln!("raw HTTP transfers of the same shards…");
    let shard_size = usize::try_from(shard_bytes)?;
    let (raw_up, raw_down) = raw_transfers(shard_size, data_shards + parity_shards, data_shards)?;
    eprintln!("raw iroh-blobs transfers of the same shards…");
    let (iroh_up, iroh_down) =
        iroh_transfers(shard_size, data_shards + parity_shards, data_shards)?;
    devnet.stop(false);

    let wire_up = shard_bytes * (data_shards + parity_shards) as u64;
    let wire_down = shard_bytes * data_shards as u64;
    let direction = |seconds: f64, wire: u64, raw_seconds: f64, iroh_seconds: f64| {
        let wire_rate = megabytes_per_second(wire, seconds);
        let raw_rate = megabytes_per_second(wire, raw_seconds);
        let iroh_rate = megabytes_per_second(wire, iroh_seconds);
        Direction {
            seconds,
            payload_mb_per_s: megabytes_per_second(payload_bytes, seconds),
            wire_mb_per_s: wire_rate,
            raw_wire_mb_per_s: raw_rate,
            wire_vs_raw: wire_rate / raw_rate.max(1e-9),
            iroh_wire_mb_per_s: iroh_rate,
            wire_vs_iroh: wire_rate / iroh_rate.max(1e-9),
        }
    };
    let report = Report {
        payload_bytes,
        shard_bytes,
        data_shards,
        parity_shards,
        add: direction(add_seconds, wire_up, raw_up, iroh_up),
        get: direction(get_seconds, wire_down, raw_down, iroh_down),
        add_phases_ms: added.phases_ms,
        get_phases_ms: got.phases_ms,
    };
    if cli.json {
        return output::json(&report);
    }
    let mut table = output::table(&[
        "",
        "seconds",
        "payload MB/s",
        "wire MB/s",
        "raw iroh-blobs wire MB/s",
        "wire / iroh",
        "raw HTTP wire MB/s",
        "wire / HTTP",
    ]);
    for (name, figures) in [("asset add", &report.add), ("asset get", &report.get)] {
        table.add_row(vec![
            name.to_string(),
            format!("{:.2}", figures.seconds),
            format!("{:.0}", figures.payload_mb_per_s),
            format!("{:.0}", figures.wire_mb_per_s),
            format!("{:.0}", figures.iroh_wire_mb_per_s),
            format!("{:.0}%", figures.wire_vs_iroh * 100.0),
            format!("{:.0}", figures.raw_wire_mb_per_s),
            format!("{:.0}%", figures.wire_vs_raw * 100.0),
        ]);
    }
    println!(
        "{} MB payload, {} + {} shards of {} MB on loopback (add uploads over HTTP, get fetches over iroh-blobs)",
        payload_bytes / 1_000_000,
        data_shards,
        parity_shards,
        shard_bytes / 1_000_000
    );
    println!("{table}");
    println!("add: {}", report.add_phases_ms.summary());
    println!("get: {}", report.get_phases_ms.summary());
    Ok(())
}
