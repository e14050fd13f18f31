//! Issue 4's faults through real processes: storage providers each run as their own
//! `tributary storage provide` process against a devnet. A provider that deletes its shard is
//! caught by the next challenge, slashed, and the shard is rebuilt onto another provider; after
//! that, killing m = 2 of the asset's providers still leaves `asset get` returning identical bytes.
//! A provider that is down when `asset add` uploads, one that is up but stops reading (its
//! process stopped), and one that takes its shard but cannot accept its deal (it has no funds
//! for the fee) each lose their deal (cancelled, escrow back) and the shard goes to another
//! provider in the same run.

use serde_json::Value;
use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};
use tributary_types::Address;

mod common;

use common::{BIN, Process, asset_get, free_port, ok};

fn get(url: &str, path: &str) -> Option<Value> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut response = agent.get(&format!("{url}{path}")).call().ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.body_mut().read_json::<Value>().ok()
}

/// Polls `check` every 200 ms for up to `seconds`; `None` (with `what` on stderr) if it never
/// holds.
fn wait_until<T>(seconds: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            eprintln!("waited {seconds} s for {what}");
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn shard_files(directory: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .is_some_and(|extension| extension == "shard")
            {
                files.push(path);
            }
        }
    }
    files
}

fn bonded(url: &str, address: &str) -> u128 {
    get(url, &format!("/v1/accounts/{address}/bonds"))
        .and_then(|bonds| {
            bonds.as_array().map(|bonds| {
                bonds
                    .iter()
                    .filter(|bond| bond["role"] == "storage_provider")
                    .map(|bond| bond["amount"].as_str().unwrap().parse::<u128>().unwrap())
                    .sum()
            })
        })
        .unwrap_or(0)
}

#[test]
fn provider_processes_survive_kills_and_a_deleting_provider_is_slashed_and_repaired() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _devnet = Process(
        Command::new(BIN)
            // Epochs of 30 blocks: seven provider processes polling a node on a busy two-core
            // machine must not miss challenges they can answer.
            .args([
                "devnet",
                "--storage-providers",
                "0",
                "--epoch-blocks",
                "30",
                "--home",
            ])
            .arg(home.path())
            .args(["--http", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the devnet"),
    );
    wait_until(60, "the devnet", || {
        get(&url, "/v1/status").filter(|status| status["height"].as_u64() >= Some(1))
    })
    .expect("the devnet did not come up");

    let transfer = |from: &str, to: &str, amount: u128| {
        ok(
            &url,
            home.path(),
            &[
                "tx",
                "transfer",
                "--from",
                from,
                "--to",
                to,
                "--amount",
                &amount.to_string(),
            ],
        );
    };
    // Nine providers, each its own process with its own key, funds and shard directory.
    let names: Vec<String> = (0..9).map(|index| format!("store-{index}")).collect();
    let mut providers: Vec<(String, String, PathBuf, Option<Process>)> = Vec::new();
    for name in &names {
        let key = ok(&url, home.path(), &["keys", "new", name]);
        let address = key["address"].as_str().unwrap().to_string();
        transfer("alice", &address, 1_000_000_000);
        let directory = home.path().join("stores").join(name);
        let mut child = Command::new(BIN)
            .args(["--node", &url, "--home"])
            .arg(home.path())
            .args(["storage", "provide", "--from", name, "--tick-ms", "250"])
            .args(["--listen", &format!("127.0.0.1:{}", free_port())])
            .arg("--dir")
            .arg(&directory)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(home.path().join(format!("{name}.log"))).unwrap())
            .spawn()
            .expect("starting a provider");
        // The first line says where it serves: it is up.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.contains("serving on"), "{name}: {line}");
        providers.push((name.clone(), address, directory, Some(Process(child))));
    }
    wait_until(60, "nine registered providers", || {
        get(&url, "/v1/providers").filter(|list| list.as_array().map(Vec::len) == Some(9))
    })
    .expect("the providers did not register");

    // `asset add` proposes deals to the least committed providers, ties by address: the three
    // lowest addresses get one each. The lowest goes down first, so its upload cannot connect;
    // the next is stopped (SIGSTOP), so the kernel accepts its connection but nothing reads it;
    // the third gives all its funds away, so it stores its shard but cannot pay to accept.
    let mut by_address: Vec<usize> = (0..providers.len()).collect();
    by_address.sort_by_key(|&index| providers[index].1.parse::<Address>().unwrap());
    let (down, stalled, broke) = (by_address[0], by_address[1], by_address[2]);
    providers[down].3 = None;
    let funds = get(&url, &format!("/v1/accounts/{}", providers[broke].1)).unwrap()["balance"]
        .as_str()
        .unwrap()
        .parse::<u128>()
        .unwrap();
    // Everything but the minimum fee of 1, which pays for this transfer.
    transfer(&providers[broke].0, "alice", funds - 1);
    let stalled_pid = providers[stalled].3.as_ref().unwrap().0.id() as libc::pid_t;
    // SAFETY: signals a child this test started and still owns.
    assert_eq!(unsafe { libc::kill(stalled_pid, libc::SIGSTOP) }, 0);

    let wine = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/wine.csv");
    let started = Instant::now();
    let added = ok(
        &url,
        home.path(),
        &[
            "asset",
            "add",
            wine.to_str().unwrap(),
            "--from",
            "alice",
            "--upload-idle-timeout-ms",
            "3000",
            "--accept-timeout-ms",
            "6000",
        ],
    );
    eprintln!("asset add took {:?}", started.elapsed());
    // SAFETY: as above; the stopped provider runs again (it has no deal left) and is a spare.
    assert_eq!(unsafe { libc::kill(stalled_pid, libc::SIGCONT) }, 0);
    let asset = added["asset_id"].as_str().unwrap().to_string();
    let placements = added["shards"].as_array().unwrap().clone();
    assert_eq!(placements.len(), 6);
    // The shards meant for the provider that is down, the one that stalled and the one that could
    // not accept went to others; their deals were cancelled.
    let replaced = added["replaced"].as_array().unwrap();
    assert_eq!(replaced.len(), 3, "{added}");
    for failed in [down, stalled, broke] {
        let replacement = replaced
            .iter()
            .find(|entry| entry["provider"] == providers[failed].1.as_str())
            .unwrap_or_else(|| panic!("{} was not replaced: {added}", providers[failed].0));
        if failed == stalled {
            // The shard is small: the kernel's socket buffers take all of it, then no answer.
            let reason = replacement["reason"].as_str().unwrap();
            assert!(reason.contains("did not answer for 3000 ms"), "{reason}");
        }
        if failed == broke {
            let reason = replacement["reason"].as_str().unwrap();
            assert!(reason.contains("did not accept deal"), "{reason}");
        }
        assert!(
            placements
                .iter()
                .all(|placement| placement["provider"] != providers[failed].1.as_str())
        );
        let cancelled = get(
            &url,
            &format!("/v1/deals/{}", replacement["cancelled_deal"]),
        )
        .unwrap();
        assert_eq!(cancelled["status"], "closed", "{cancelled}");
    }
    let holder_of = |shard: u64| {
        let address = placements
            .iter()
            .find(|placement| placement["shard"] == shard)
            .unwrap()["provider"]
            .as_str()
            .unwrap()
            .to_string();
        providers
            .iter()
            .position(|(_, provider, _, _)| *provider == address)
            .unwrap()
    };
    // The stalled provider runs again and holds nothing: the spare (the broke one cannot pay
    // for a repair claim).
    let spare = (0..providers.len())
        .find(|index| {
            ![down, broke].contains(index) && (0..6).all(|shard| holder_of(shard) != *index)
        })
        .unwrap();
    assert_eq!(spare, stalled);

    // The provider of shard 0 loses it (deleted behind its back, while it keeps running).
    let deleter = holder_of(0);
    let stake_before = bonded(&url, &providers[deleter].1);
    let files = shard_files(&providers[deleter].2);
    assert_eq!(files.len(), 1, "{files:?}");
    std::fs::remove_file(&files[0]).unwrap();

    // The next challenge catches it: the deal fails, the provider is slashed, and the spare
    // provider rebuilds the shard from four others and takes the deal over.
    let deal_zero = placements[0]["deal"].as_u64().unwrap();
    let repaired = wait_until(90, "the lost shard to be repaired", || {
        get(&url, &format!("/v1/deals/{deal_zero}")).filter(|deal| {
            deal["status"] == "active" && deal["provider"] != providers[deleter].1.as_str()
        })
    })
    .unwrap_or_else(|| {
        // Say what the providers were doing.
        for name in &names {
            let log = std::fs::read_to_string(home.path().join(format!("{name}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            eprintln!("--- {name} (last lines, newest first)\n{}", tail.join("\n"));
        }
        panic!(
            "the lost shard was not repaired within 90 s; deal {deal_zero}: {:?}; spare {}",
            get(&url, &format!("/v1/deals/{deal_zero}")),
            providers[spare].0
        )
    });
    assert_eq!(repaired["provider"], providers[spare].1.as_str());
    assert!(
        bonded(&url, &providers[deleter].1) < stake_before,
        "the deleting provider was not slashed"
    );
    assert_eq!(shard_files(&providers[spare].2).len(), 1);

    // Now any two of the asset's providers may go: kill two that were not involved.
    let doomed = [holder_of(1), holder_of(2)];
    for index in doomed {
        providers[index].3 = None;
    }
    let out = home.path().join("wine.out");
    let fetched = asset_get(&url, home.path(), &asset, "alice", &out);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&wine).unwrap());
    assert_eq!(fetched["shards_used"].as_array().unwrap().len(), 4);
}
