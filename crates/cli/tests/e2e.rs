//! End to end through the real `tributary` binary and its HTTP API: a devnet on a free loopback
//! port in a temporary home, the CLI commands against it, balances checked to the unit, bad input
//! refused with JSON 4xx errors, then SIGKILL and a restart that must lose nothing finalized.

use serde_json::Value;
use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

mod common;

use common::{BIN, free_port};

struct Devnet {
    child: Child,
    url: String,
}

impl Devnet {
    fn start(home: &Path, port: u16) -> Self {
        let child = Command::new(BIN)
            .args(["devnet", "--home"])
            .arg(home)
            .args(["--http", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the devnet");
        let url = format!("http://127.0.0.1:{port}");
        let devnet = Self { child, url };
        wait_for_height(&devnet.url, 1, "devnet did not come up");
        // Its six storage providers register with their first transactions, a block or two
        // after the devnet is up.
        let started = std::time::Instant::now();
        while get(&devnet.url, "/v1/providers")
            .ok()
            .and_then(|providers| providers.as_array().map(Vec::len))
            < Some(6)
        {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "the devnet's storage providers did not register"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        devnet
    }

    fn kill(mut self) {
        // SIGKILL: no chance to flush anything.
        self.child.kill().expect("killing the devnet");
        self.child.wait().expect("reaping the devnet");
    }

    fn cli(&self, home: &Path, args: &[&str]) -> (bool, Value, String) {
        common::cli(&self.url, home, args)
    }

    fn ok(&self, home: &Path, args: &[&str]) -> Value {
        common::ok(&self.url, home, args)
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (up to 60 s) until the node at `url` has finalized `height`.
fn wait_for_height(url: &str, height: u64, failure: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(url, "/v1/status")
        .map(|status| status["height"].as_u64().unwrap_or(0))
        .unwrap_or(0)
        < height
    {
        assert!(Instant::now() < deadline, "{failure}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn get(url: &str, path: &str) -> Result<Value, String> {
    let mut response = agent()
        .get(&format!("{url}{path}"))
        .call()
        .map_err(|e| e.to_string())?;
    response
        .body_mut()
        .read_json::<Value>()
        .map_err(|e| e.to_string())
}

fn post_raw(url: &str, body: Vec<u8>, content_type: &str) -> (u16, Value) {
    let mut response = agent()
        .post(&format!("{url}/v1/transactions"))
        .header("content-type", content_type)
        .send(&body[..])
        .expect("posting");
    let status = response.status().as_u16();
    let value = response
        .body_mut()
        .read_json::<Value>()
        .unwrap_or(Value::Null);
    (status, value)
}

fn balance(value: &Value) -> u128 {
    value["balance"].as_str().unwrap().parse().unwrap()
}

#[test]
fn devnet_cli_bad_input_and_crash_recovery() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let devnet = Devnet::start(home.path(), port);

    let status = devnet.ok(home.path(), &["status"]);
    let min_fee: u128 = status["min_fee"].as_str().unwrap().parse().unwrap();
    assert_eq!(status["chain_id"], "tributary-devnet");
    let alice = devnet.ok(home.path(), &["account", "show", "alice"]);
    let bob = devnet.ok(home.path(), &["account", "show", "bob"]);
    let alice_start = balance(&alice);
    let bob_start = balance(&bob);
    let key = devnet.ok(home.path(), &["keys", "show", "alice"]);
    assert_eq!(key["address"], alice["address"]);

    // The devnet's six storage providers register themselves on the ledger.
    let deadline = Instant::now() + Duration::from_secs(30);
    while devnet.ok(home.path(), &["storage", "status"])["providers"] != 6 {
        assert!(
            Instant::now() < deadline,
            "storage providers did not register"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let providers = devnet.ok(home.path(), &["storage", "providers"]);
    assert!(providers.as_array().unwrap().iter().all(|provider| {
        provider["endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&format!("http://127.0.0.1:{port}/v1/storage/trib1"))
    }));

    // A transfer, to the unit.
    let transfer = devnet.ok(
        home.path(),
        &[
            "tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "12345",
        ],
    );
    assert_eq!(transfer["status"], "finalized");
    assert_eq!(transfer["tx_hash"].as_str().unwrap().len(), 64);
    let alice_now = balance(&devnet.ok(home.path(), &["account", "show", "alice"]));
    let bob_now = balance(&devnet.ok(home.path(), &["account", "show", "bob"]));
    assert_eq!(alice_now, alice_start - 12345 - min_fee);
    assert_eq!(bob_now, bob_start + 12345);

    // Register, license, derive, pay.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let iris = data.join("iris.csv");
    let registered = devnet.ok(
        home.path(),
        &[
            "asset",
            "register",
            iris.to_str().unwrap(),
            "--from",
            "alice",
            "--price",
            "5000",
            "--royalty-bps",
            "1000",
            "--terms",
            "commercial,ai-training,derivatives,attribution",
        ],
    );
    let asset_id = registered["asset_id"].as_str().unwrap().to_string();
    assert_eq!(
        asset_id,
        blake3::hash(&std::fs::read(&iris).unwrap())
            .to_hex()
            .to_string()
    );
    let (success, _, stderr) = devnet.cli(
        home.path(),
        &["asset", "register", iris.to_str().unwrap(), "--from", "bob"],
    );
    assert!(
        !success && stderr.contains(&asset_id),
        "duplicate registration must name the existing asset: {stderr}"
    );
    let bought = devnet.ok(
        home.path(),
        &["license", "buy", &asset_id, "--from", "carol"],
    );
    let token = bought["token_id"].as_str().unwrap().to_string();
    let wine = data.join("wine.csv");
    let derived = devnet.ok(
        home.path(),
        &[
            "asset",
            "register",
            wine.to_str().unwrap(),
            "--from",
            "carol",
            "--parent",
            &asset_id,
            "--license",
            &token,
            "--owner",
            "carol:6000",
            "--owner",
            "dave:4000",
        ],
    );
    let derived_id = derived["asset_id"].as_str().unwrap().to_string();
    let lineage = devnet.ok(home.path(), &["asset", "lineage", &asset_id]);
    assert_eq!(lineage["descendants"][0], derived_id.as_str());
    let alice_before_pay = balance(&devnet.ok(home.path(), &["account", "show", "alice"]));
    let dave_before_pay = balance(&devnet.ok(home.path(), &["account", "show", "dave"]));
    devnet.ok(
        home.path(),
        &[
            "asset",
            "pay",
            &derived_id,
            "--amount",
            "100001",
            "--from",
            "erin",
        ],
    );
    // 10% of 100001 = 10000 to iris's owner; 90001 split 60/40: 54000.6 / 36000.4 → 54001 / 36000.
    assert_eq!(
        balance(&devnet.ok(home.path(), &["account", "show", "alice"])),
        alice_before_pay + 10_000
    );
    assert_eq!(
        balance(&devnet.ok(home.path(), &["account", "show", "dave"])),
        dave_before_pay + 36_000
    );
    let licenses = devnet.ok(home.path(), &["license", "list", "carol"]);
    assert_eq!(licenses.as_array().unwrap().len(), 1);
    let assets = devnet.ok(home.path(), &["asset", "list"]);
    assert_eq!(assets.as_array().unwrap().len(), 2);
    let block = devnet.ok(home.path(), &["block", "show"]);
    assert!(block["height"].as_u64().unwrap() >= 1);

    // A failing transaction exits non-zero and says why.
    let (success, value, _) = devnet.cli(
        home.path(),
        &["license", "buy", &asset_id, "--from", "nobody"],
    );
    assert!(!success && value.is_null());

    // Bad input through the API: each a JSON 4xx, the node stays up, the state root unchanged.
    let root_before = get(&devnet.url, "/v1/status").unwrap()["state_root"].clone();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"\x00\x01garbage\xff".to_vec(), "application/json"),
        (b"{\"transaction\": \"zz\"}".to_vec(), "application/json"),
        (b"{\"transaction\": \"0102\"}".to_vec(), "application/json"),
        (b"{\"transaction\":".to_vec(), "application/json"),
        // Just over the body limit: small enough that the loopback socket buffers hold it all,
        // so the client reads the 413 rather than a reset from a server that stopped reading.
        (
            vec![b'a'; tributary_types::limits::API_BODY_BYTES_MAX + 1024],
            "application/json",
        ),
        (b"{}".to_vec(), "application/json"),
        (b"{\"transaction\": \"00\"}".to_vec(), "text/plain"),
    ];
    for (body, content_type) in cases {
        let (status, value) = post_raw(&devnet.url, body, content_type);
        assert!((400..500).contains(&status), "status {status} for bad body");
        assert!(
            value["error"]["code"].is_string(),
            "JSON error expected, got {value}"
        );
    }
    for path in [
        "/v1/accounts/nonsense",
        "/v1/assets/xyz",
        "/v1/blocks/abc",
        "/v1/licenses/-1",
        "/v1/transactions/12",
    ] {
        let mut response = agent()
            .get(&format!("{}{path}", devnet.url))
            .call()
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{path}");
        let value: Value = response.body_mut().read_json().unwrap();
        assert!(value["error"]["code"].is_string());
    }
    assert_eq!(
        get(&devnet.url, "/v1/status").unwrap()["state_root"],
        root_before
    );

    // Signed but unacceptable transactions: wrong chain id, bad signature, a fee that no balance
    // covers (and would overflow), and a replay of a finalized transaction.
    let key = tributary_node::keystore::Keystore::new(home.path())
        .load("erin")
        .unwrap();
    let nonce = devnet.ok(home.path(), &["account", "show", "erin"])["nonce"]
        .as_u64()
        .unwrap();
    let make = |chain_id: &str, nonce: u64, fee: u128| {
        tributary_types::SignedTransaction::sign(
            &key.signer,
            tributary_types::Transaction {
                chain_id: chain_id.to_string(),
                sender: key.address(),
                nonce,
                fee,
                call: tributary_types::Call::Transfer {
                    to: key.address(),
                    amount: 1,
                },
            },
        )
    };
    let submit = |signed: &tributary_types::SignedTransaction| {
        let body = serde_json::json!({"transaction": hex::encode(signed.to_bytes())}).to_string();
        post_raw(&devnet.url, body.into_bytes(), "application/json")
    };
    let (status, value) = submit(&make("another-chain", nonce, min_fee));
    assert_eq!(
        (status, value["error"]["code"].as_str()),
        (422, Some("wrong_chain_id"))
    );
    let mut forged = make("tributary-devnet", nonce, min_fee);
    let mut bytes = forged.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    forged = tributary_types::SignedTransaction::from_bytes(&bytes).unwrap_or(forged);
    let (status, value) = submit(&forged);
    assert!(
        (400..500).contains(&status),
        "bad signature: {status} {value}"
    );
    let (status, _) = submit(&make("tributary-devnet", nonce, u128::MAX));
    assert!((400..500).contains(&status), "unpayable fee: {status}");
    let good = make("tributary-devnet", nonce, min_fee);
    let (status, value) = submit(&good);
    assert_eq!(status, 202, "{value}");
    let hash = value["tx_hash"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&devnet.url, &format!("/v1/transactions/{hash}")).unwrap()["status"] == "pending" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    let root_before = get(&devnet.url, "/v1/status").unwrap()["state_root"].clone();
    let (status, value) = submit(&good);
    assert!((400..500).contains(&status), "replay: {status} {value}");
    assert_eq!(
        get(&devnet.url, "/v1/status").unwrap()["state_root"],
        root_before
    );
    assert!(get(&devnet.url, "/v1/openapi.json").unwrap()["paths"]["/v1/transactions"].is_object());

    // SIGKILL and restart: everything finalized is still there.
    let height_before = get(&devnet.url, "/v1/status").unwrap()["height"]
        .as_u64()
        .unwrap();
    let alice_before_kill = balance(&devnet.ok(home.path(), &["account", "show", "alice"]));
    devnet.kill();
    let devnet = Devnet::start(home.path(), port);
    let status = get(&devnet.url, "/v1/status").unwrap();
    assert!(
        status["height"].as_u64().unwrap() >= height_before,
        "height went back after restart"
    );
    assert_eq!(
        balance(&devnet.ok(home.path(), &["account", "show", "alice"])),
        alice_before_kill
    );
    let shown = devnet.ok(home.path(), &["asset", "show", &derived_id]);
    assert_eq!(shown["owners"].as_array().unwrap().len(), 2);
    // And it keeps finalizing.
    devnet.ok(
        home.path(),
        &[
            "tx", "transfer", "--from", "bob", "--to", "alice", "--amount", "1",
        ],
    );
}

#[test]
fn demo_balances_the_books_on_four_validators() {
    let output = Command::new(BIN)
        .args(["--json", "demo", "--validators", "4"])
        .output()
        .expect("running the demo");
    assert!(
        output.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("demo prints JSON");
    assert_eq!(report["balanced"], true, "{report}");
    assert_eq!(report["validators"], 4);
    assert_eq!(report["steps"].as_array().unwrap().len(), 7);
    let dave = report["books"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["account"] == "dave")
        .unwrap();
    // 30% of the derivative's revenue after royalties: 25_500 of the license, 255_000 of the payment.
    assert_eq!(dave["received"], "280500");
    // Paid by value: the dishonest valuation is voided and the pool pays exactly by value; the
    // noisy shard and the reordered copy earn the least.
    let rewards = &report["rewards"];
    assert_eq!(rewards["challenger_won"], true, "{rewards}");
    assert_eq!(rewards["committee"].as_array().unwrap().len(), 3);
    let contributors = rewards["contributors"].as_array().unwrap();
    let paid: u128 = contributors
        .iter()
        .map(|c| c["payout"].as_str().unwrap().parse::<u128>().unwrap())
        .sum();
    assert_eq!(paid, 1_000_000);
    let bps: u64 = contributors
        .iter()
        .map(|c| c["share_bps"].as_u64().unwrap())
        .sum();
    assert_eq!(bps, 10_000);
    let share = |name: &str| {
        contributors
            .iter()
            .find(|c| c["contributor"] == name)
            .unwrap()["share_bps"]
            .as_u64()
            .unwrap()
    };
    for clean in ["alice", "bob", "carol"] {
        assert!(
            share("dave") < share(clean) && share("erin") < share(clean),
            "{rewards}"
        );
    }
    // The shards were stored with `asset add` (4+2 with six of the seven providers each), alice
    // read hers back, and every deal proved at least one epoch.
    let storage = &rewards["storage"];
    assert_eq!(storage["deals"], 30, "{storage}");
    assert_eq!(storage["providers"], 7, "{storage}");
    assert_eq!(storage["read_back_identical"], true, "{storage}");
    // A licensee, refused without a license, reads bob's shard with the key bob's agent
    // delivered to all six of its providers.
    let licensee = &storage["licensee"];
    assert_eq!(licensee["refused_without_license"], true, "{licensee}");
    assert_eq!(licensee["envelope_providers"], 6, "{licensee}");
    assert_eq!(licensee["read_back_identical"], true, "{licensee}");
    // Its shards came over iroh-blobs, from endpoints keyed by the providers' addresses.
    assert_eq!(licensee["shards_read"], 4, "{licensee}");
    assert_eq!(licensee["shards_over_iroh"], 4, "{licensee}");
    // Bob, from a home holding only his account key, reads it through his own envelope.
    assert_eq!(licensee["owner_reads_with_key_alone"], true, "{licensee}");
    assert!(
        storage["proven_epochs"].as_u64().unwrap() >= 30,
        "{storage}"
    );
    // A provider lost carol's shard 0: slashed, and another provider repaired it; carol's
    // dataset still reads back identical.
    let repair = &storage["repair"];
    assert_ne!(repair["lost_by"], repair["repaired_by"], "{repair}");
    assert!(
        repair["slashed"].as_str().unwrap().parse::<u128>().unwrap() > 0,
        "{repair}"
    );
    assert_eq!(repair["read_back_identical"], true, "{repair}");
}

#[test]
fn four_validator_devnet_finalizes_a_transfer_sent_to_node_zero() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(BIN)
        .args(["devnet", "--validators", "4", "--home"])
        .arg(home.path())
        .args(["--http", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let devnet = Devnet {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    wait_for_height(&devnet.url, 2, "4-validator devnet did not finalize");
    assert_eq!(get(&devnet.url, "/v1/status").unwrap()["validators"], 4);
    // Several transfers, so that blocks proposed by every validator include gossiped ones.
    for _ in 0..4 {
        let sent = devnet.ok(
            home.path(),
            &[
                "tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "7",
            ],
        );
        assert_eq!(sent["status"], "finalized");
    }
    let block = get(&devnet.url, "/v1/blocks/latest").unwrap();
    assert!(
        block["seed"].is_string(),
        "finalized blocks carry the threshold beacon: {block}"
    );
}

/// What the nodes of the process devnet log: enough to see views, proposals and finalizations
/// when the test fails.
const NODE_LOG_FILTER: &str = "info";

/// The node processes of a `devnet --processes` run, by pid: all killed when dropped, and when
/// the test is failing, the tail of every node's log is printed first, so a failure on CI says
/// what the nodes saw.
struct ProcessNodes {
    devnet: Child,
    nodes: Vec<Value>,
    /// The storage provider processes (`providers` in devnet.json).
    providers: Vec<Value>,
    restarted: Vec<Child>,
}

impl ProcessNodes {
    const LOG_TAIL_LINES: usize = 60;

    /// Starts `tributary devnet --processes ARGS` in `home` on a free port and waits (up to
    /// 90 s) until it lists its processes; returns node 0's API URL and the processes.
    fn start(home: &Path, args: &[&str]) -> (String, Self) {
        let port = free_port();
        let devnet = Command::new(BIN)
            .args(["devnet", "--processes"])
            .args(args)
            .arg("--home")
            .arg(home)
            .args(["--http", &format!("127.0.0.1:{port}")])
            .env("TRIBUTARY_LOG", NODE_LOG_FILTER)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let listing_path = home.join("devnet/devnet.json");
        let deadline = Instant::now() + Duration::from_secs(90);
        while !listing_path.exists() {
            assert!(Instant::now() < deadline, "the devnet listed no processes");
            std::thread::sleep(Duration::from_millis(50));
        }
        let listing: Value =
            serde_json::from_str(&std::fs::read_to_string(&listing_path).unwrap()).unwrap();
        let processes = Self {
            devnet,
            nodes: listing["nodes"].as_array().unwrap().clone(),
            providers: listing["providers"].as_array().unwrap().clone(),
            restarted: Vec::new(),
        };
        (format!("http://127.0.0.1:{port}"), processes)
    }

    fn kill(&self, index: usize) {
        kill_listed(&self.nodes[index]);
    }

    /// Starts node `index` again from its own home, logging beside its first log.
    fn restart(&mut self, index: usize) {
        let home = Path::new(self.nodes[index]["home"].as_str().unwrap());
        let log = std::fs::File::create(home.join("node-restarted.log")).unwrap();
        let child = Command::new(BIN)
            .arg("--home")
            .arg(home)
            .args(["node", "run"])
            .env("TRIBUTARY_LOG", NODE_LOG_FILTER)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.restarted.push(child);
    }

    fn api(&self, index: usize) -> &str {
        self.nodes[index]["api"].as_str().unwrap()
    }

    /// kill -9 storage provider `index`.
    fn kill_provider(&self, index: usize) {
        kill_listed(&self.providers[index]);
    }

    /// Starts storage provider `index` again as before (same account, listen address and
    /// store), talking to `url`, logging beside its first log.
    fn restart_provider(&mut self, index: usize, home: &Path, url: &str) {
        let provider = &self.providers[index];
        let dir = Path::new(provider["dir"].as_str().unwrap());
        let listen = provider["api"]
            .as_str()
            .unwrap()
            .trim_start_matches("http://");
        let log = std::fs::File::create(dir.join("provider-restarted.log")).unwrap();
        let child = Command::new(BIN)
            .arg("--home")
            .arg(home)
            .args(["--node", url, "storage", "provide", "--from"])
            .arg(provider["name"].as_str().unwrap())
            .args(["--listen", listen, "--dir"])
            .arg(dir)
            .env("TRIBUTARY_LOG", NODE_LOG_FILTER)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.restarted.push(child);
    }
}

impl Drop for ProcessNodes {
    fn drop(&mut self) {
        for child in &mut self.restarted {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.devnet.kill();
        let _ = self.devnet.wait();
        for process in self.nodes.iter().chain(&self.providers) {
            if let Some(pid) = process["pid"].as_u64() {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        if !std::thread::panicking() {
            return;
        }
        for provider in &self.providers {
            let dir = Path::new(provider["dir"].as_str().unwrap_or_default());
            for name in ["provider.log", "provider-restarted.log"] {
                print_log_tail(
                    &dir.join(name),
                    &format!("storage provider {} {name}", provider["name"]),
                );
            }
        }
        for (index, node) in self.nodes.iter().enumerate() {
            let home = Path::new(node["home"].as_str().unwrap_or_default());
            for name in ["node.log", "node-restarted.log"] {
                print_log_tail(
                    &home.join(name),
                    &format!("node {index} ({}) {name}", node["role"]),
                );
            }
        }
    }
}

/// kill -9 a process listed in devnet.json.
fn kill_listed(process: &Value) {
    let pid = process["pid"].as_u64().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// Prints the last [`ProcessNodes::LOG_TAIL_LINES`] lines of the log at `path`, if there is one,
/// under a heading naming `what` it is.
fn print_log_tail(path: &Path, what: &str) {
    let Ok(log) = std::fs::read_to_string(path) else {
        return;
    };
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(ProcessNodes::LOG_TAIL_LINES)..];
    eprintln!("--- {what}, last {} lines:", tail.len());
    for line in tail {
        eprintln!("{line}");
    }
}

#[test]
fn validators_as_processes_survive_a_kill_and_catch_up() {
    let home = tempfile::tempdir().unwrap();
    let (url, mut nodes) = ProcessNodes::start(
        home.path(),
        &[
            "--validators",
            "4",
            "--followers",
            "1",
            "--storage-providers",
            "0",
        ],
    );
    wait_for_height(&url, 2, "process devnet did not finalize");
    assert_eq!(nodes.nodes.len(), 5);
    assert_eq!(nodes.nodes[3]["role"], "validator");
    assert_eq!(nodes.nodes[4]["role"], "follower");
    let transfer = |node: &str, amount: &str| {
        let (success, _, stderr) = common::cli(
            node,
            home.path(),
            &[
                "tx", "transfer", "--from", "alice", "--to", "bob", "--amount", amount,
            ],
        );
        assert!(success, "transfer through {node} failed: {stderr}");
    };
    transfer(&url, "3");
    // kill -9 validator 3: the other three keep finalizing.
    nodes.kill(3);
    transfer(&url, "4");
    // Restart it from its own home: it recovers from disk and catches up to the same root.
    nodes.restart(3);
    transfer(&url, "5");
    catches_up(&url, nodes.api(3), "restarted validator");
    // The full node follows the chain, and a transaction sent to it reaches the validators.
    catches_up(&url, nodes.api(4), "follower");
    transfer(nodes.api(4), "6");
    // kill -9 the follower while blocks keep coming; restarted, it catches up from its peers.
    nodes.kill(4);
    transfer(&url, "7");
    nodes.restart(4);
    catches_up(&url, nodes.api(4), "restarted follower");
}

/// `devnet --processes` runs each storage provider as a `tributary storage provide` process:
/// each bonds and registers by itself, and `asset add` and `asset get` work against them as
/// against the devnet's built-in providers.
#[test]
fn storage_providers_as_processes_store_and_serve_an_asset() {
    let home = tempfile::tempdir().unwrap();
    let (url, mut processes) = ProcessNodes::start(
        home.path(),
        &[
            "--validators",
            "1",
            "--storage-providers",
            "6",
            // About 6 s an epoch here (idle, a process devnet finalizes ~3 blocks a second):
            // room for the restarted provider to answer the challenge of the epoch it comes
            // back in.
            "--epoch-blocks",
            "20",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    assert_eq!(processes.nodes.len(), 1);
    assert_eq!(processes.providers.len(), 6);
    while common::ok(&url, home.path(), &["storage", "status"])["providers"] != 6 {
        assert!(
            Instant::now() < deadline,
            "the provider processes did not register"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let iris = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/iris.csv");
    let added = common::ok(
        &url,
        home.path(),
        &["asset", "add", iris.to_str().unwrap(), "--from", "alice"],
    );
    let asset = added["asset_id"].as_str().unwrap();
    let listed: Vec<&str> = processes
        .providers
        .iter()
        .map(|provider| provider["address"].as_str().unwrap())
        .collect();
    let shards = added["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 6, "{added}");
    for shard in shards {
        assert!(
            listed.contains(&shard["provider"].as_str().unwrap()),
            "{shard} is not with a provider process"
        );
    }
    let out = home.path().join("iris.out");
    let (success, fetched, stderr) = common::try_asset_get(&url, home.path(), asset, "alice", &out);
    assert!(success, "asset get: {stderr}");
    assert_eq!(
        fetched["shards_used"].as_array().unwrap().len(),
        4,
        "{fetched}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&iris).unwrap());

    // kill -9 the provider of shard 0 once it has proven an epoch, and start it again on its
    // own store: it keeps its deal, goes on proving from what it stored before the crash, and
    // serves its shard again (a read asks for shards in index order, so shard 0 first).
    let deal = shards[0]["deal"].as_u64().unwrap();
    let index = listed
        .iter()
        .position(|address| *address == shards[0]["provider"].as_str().unwrap())
        .unwrap();
    let wait_for_proofs = |at_least: u64, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let view = get(&url, &format!("/v1/deals/{deal}")).unwrap();
            assert_eq!(view["status"], "active", "{what}: {view}");
            let proven = view["epochs_paid"].as_u64().unwrap();
            if proven >= at_least {
                return proven;
            }
            assert!(Instant::now() < deadline, "{what}: {view}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let before = wait_for_proofs(1, "the first proof");
    processes.kill_provider(index);
    processes.restart_provider(index, home.path(), &url);
    wait_for_proofs(before + 2, "proofs after the restart");
    let reread = home.path().join("iris.reread");
    let (success, fetched, stderr) =
        common::try_asset_get(&url, home.path(), asset, "alice", &reread);
    assert!(success, "asset get after the restart: {stderr}");
    assert!(
        fetched["shards_used"]
            .as_array()
            .unwrap()
            .contains(&Value::from(0))
            && fetched["shards_skipped"].as_array().unwrap().is_empty(),
        "{fetched}"
    );
    assert_eq!(
        std::fs::read(&reread).unwrap(),
        std::fs::read(&iris).unwrap()
    );
}

/// Waits (up to 60 s) until the node at `api` has reached `url`'s height, then checks both
/// finalized the same block with the same state root there.
fn catches_up(url: &str, api: &str, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ours = get(url, "/v1/status").unwrap();
        if let Ok(theirs) = get(api, "/v1/status")
            && theirs["height"].as_u64() >= ours["height"].as_u64()
        {
            let height = ours["height"].as_u64().unwrap();
            let block_ours = get(url, &format!("/v1/blocks/{height}")).unwrap();
            let block_theirs = get(api, &format!("/v1/blocks/{height}")).unwrap();
            assert_eq!(
                block_ours["state_root"], block_theirs["state_root"],
                "{who}"
            );
            assert_eq!(block_ours["hash"], block_theirs["hash"], "{who}");
            return;
        }
        assert!(Instant::now() < deadline, "{who} did not catch up");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Writes an iris training set with a `contributor` column (every third training row from
/// "noisy" with a wrong label, the rest from "honest") and a test set; returns their paths.
fn iris_with_contributors(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let iris =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/iris.csv"))
            .unwrap();
    let mut lines = iris.lines();
    let header = lines.next().unwrap();
    let mut train = format!("{header},contributor\n");
    let mut test = format!("{header}\n");
    for (index, line) in lines.enumerate() {
        if index % 5 == 0 {
            test.push_str(&format!("{line}\n"));
        } else {
            let (features, label) = line.rsplit_once(',').unwrap();
            if index % 3 == 0 {
                let wrong = (label.parse::<u8>().unwrap() + 1) % 3;
                train.push_str(&format!("{features},{wrong},noisy\n"));
            } else {
                train.push_str(&format!("{line},honest\n"));
            }
        }
    }
    let train_path = dir.join("train.csv");
    let test_path = dir.join("test.csv");
    std::fs::write(&train_path, train).unwrap();
    std::fs::write(&test_path, test).unwrap();
    (train_path, test_path)
}

/// Runs `tributary --json value` by contributor with a report; asserts it succeeded.
fn value_with_report(train: &Path, test: &Path, report: &Path) -> std::process::Output {
    let output = Command::new(BIN)
        .args(["--json", "value", "--train"])
        .arg(train)
        .arg("--test")
        .arg(test)
        .args([
            "--label",
            "label",
            "--contributor",
            "contributor",
            "--report",
        ])
        .arg(report)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn value_command_shares_sum_to_10000_and_reports_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (train_path, test_path) = iris_with_contributors(dir.path());
    let report_path = dir.path().join("report.json");
    let output = value_with_report(&train_path, &test_path, &report_path);
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    let shares = result["contributors"].as_object().unwrap();
    let total: u64 = shares.values().map(|bps| bps.as_u64().unwrap()).sum();
    assert_eq!(total, 10_000);
    assert!(shares["honest"].as_u64().unwrap() > shares["noisy"].as_u64().unwrap());
    let verified = Command::new(BIN)
        .arg("value")
        .arg("verify")
        .arg(&report_path)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    // A missing label column is a clear error, not a panic.
    let bad = Command::new(BIN)
        .arg("value")
        .arg("--train")
        .arg(&train_path)
        .arg("--test")
        .arg(&test_path)
        .args(["--label", "nonexistent"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nonexistent"));
}

#[test]
fn rewards_pool_pays_by_a_valuation_report_through_the_cli() {
    let home = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(home.path(), free_port());
    let (train_path, test_path) = iris_with_contributors(home.path());
    let report_path = home.path().join("report.json");
    value_with_report(&train_path, &test_path, &report_path);
    // Two assets stand for the two contributors.
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let asset = |file: &str, from: &str| {
        devnet.ok(
            home.path(),
            &[
                "asset",
                "register",
                data.join(file).to_str().unwrap(),
                "--from",
                from,
            ],
        )["asset_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let honest = asset("iris.csv", "alice");
    let noisy = asset("wine.csv", "bob");
    let created = devnet.ok(
        home.path(),
        &[
            "rewards",
            "create",
            "--from",
            "carol",
            "--asset",
            &honest,
            "--asset",
            &noisy,
            "--test-set",
            test_path.to_str().unwrap(),
            "--amount",
            "1001",
            "--stake",
            "100",
            "--window",
            "15",
        ],
    );
    let pool = created["pool"].as_u64().unwrap().to_string();
    let report = report_path.to_str().unwrap();
    // A contributor without an asset is a clear error before anything is sent.
    let (success, _, stderr) = devnet.cli(
        home.path(),
        &[
            "rewards",
            "submit",
            &pool,
            "--report",
            report,
            "--asset",
            &format!("honest={honest}"),
            "--from",
            "dave",
        ],
    );
    assert!(
        !success && stderr.contains("--asset noisy=ASSET_ID"),
        "{stderr}"
    );
    devnet.ok(
        home.path(),
        &[
            "rewards",
            "submit",
            &pool,
            "--report",
            report,
            "--asset",
            &format!("honest={honest}"),
            "--asset",
            &format!("noisy={noisy}"),
            "--from",
            "dave",
        ],
    );
    let (success, _, stderr) =
        devnet.cli(home.path(), &["rewards", "claim", &pool, "--from", "carol"]);
    assert!(
        !success && stderr.contains("challenge_window_open"),
        "{stderr}"
    );
    let shown = devnet.ok(home.path(), &["rewards", "show", &pool]);
    assert_eq!(shown["status"], "valuated");
    let deadline = shown["valuation"]["challenge_deadline_height"]
        .as_u64()
        .unwrap();
    wait_for_height(
        &devnet.url,
        deadline + 1,
        "the chain did not pass the challenge window",
    );
    let claimed = devnet.ok(home.path(), &["rewards", "claim", &pool, "--from", "carol"]);
    let allocations = claimed["allocations"].as_array().unwrap();
    let paid: u128 = allocations
        .iter()
        .map(|a| a["amount"].as_str().unwrap().parse::<u128>().unwrap())
        .sum();
    assert_eq!(paid, 1001);
    let by_asset = |id: &str| {
        allocations.iter().find(|a| a["asset"] == id).unwrap()["share_bps"]
            .as_u64()
            .unwrap()
    };
    assert!(by_asset(&honest) > by_asset(&noisy));
    assert_eq!(
        devnet.ok(home.path(), &["rewards", "show", &pool])["status"],
        "paid"
    );
    assert_eq!(
        devnet
            .ok(home.path(), &["rewards", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn asset_add_places_shards_and_get_survives_corrupt_shards() {
    let home = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(home.path(), free_port());
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let wine = data.join("wine.csv");
    let added = devnet.ok(
        home.path(),
        &["asset", "add", wine.to_str().unwrap(), "--from", "alice"],
    );
    let asset = added["asset_id"].as_str().unwrap().to_string();
    assert_eq!(added["shards"].as_array().unwrap().len(), 6);
    let status = devnet.ok(home.path(), &["storage", "status"]);
    assert_eq!(status["deals"]["active"], 6, "{status}");

    let out = home.path().join("wine.out");
    let get = |from: &str| common::try_asset_get(&devnet.url, home.path(), &asset, from, &out);
    let (success, fetched, stderr) = get("alice");
    assert!(success, "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&wine).unwrap());
    assert_eq!(fetched["shards_used"].as_array().unwrap().len(), 4);
    assert_eq!(fetched["shards_over_iroh"], 4, "{fetched}");

    // Corrupt data shards 0 and 1 on their providers' disks: the reader skips them and uses
    // the parity shards instead.
    let mut corrupted = 0;
    for entry in walk(&home.path().join("devnet/data/providers")) {
        let name = entry.file_name().unwrap().to_string_lossy().to_string();
        if name == "0.shard" || name == "1.shard" {
            let mut bytes = std::fs::read(&entry).unwrap();
            bytes[0] ^= 0xff;
            std::fs::write(&entry, bytes).unwrap();
            corrupted += 1;
        }
    }
    assert_eq!(corrupted, 2);
    std::fs::remove_file(&out).unwrap();
    let (success, fetched, stderr) = get("alice");
    assert!(success, "{stderr}");
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&wine).unwrap());
    assert_eq!(fetched["shards_skipped"].as_array().unwrap().len(), 2);

    // Someone without the data key gets a clear error; so does an unsupported file.
    let (success, _, stderr) = get("bob");
    assert!(!success && stderr.contains("does not open"), "{stderr}");
    let binary = home.path().join("blob.bin");
    std::fs::write(&binary, [0u8, 159, 146, 150]).unwrap();
    let (success, _, stderr) = devnet.cli(
        home.path(),
        &["asset", "add", binary.to_str().unwrap(), "--from", "alice"],
    );
    assert!(!success && stderr.contains("blob.bin"), "{stderr}");

    // Every epoch the providers prove their shards.
    let deadline = Instant::now() + Duration::from_secs(60);
    while devnet.ok(home.path(), &["storage", "status"])["proven_epochs"]
        .as_u64()
        .unwrap()
        == 0
    {
        assert!(Instant::now() < deadline, "no storage challenge was proven");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A folder of data files is one asset: `asset register` and `asset add` give it the same id, and
/// `asset get` writes the folder back, file for file. A folder with a file of no known format is
/// refused with that file named, and an existing output is not overwritten.
#[test]
fn a_folder_is_one_asset_registered_added_and_read_back() {
    let home = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(home.path(), free_port());
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let folder = home.path().join("tables");
    std::fs::create_dir_all(folder.join("more")).unwrap();
    std::fs::copy(data.join("iris.csv"), folder.join("iris.csv")).unwrap();
    std::fs::copy(data.join("wine.csv"), folder.join("more/wine.csv")).unwrap();
    std::fs::write(folder.join(".notes"), "hidden files are left out").unwrap();
    let folder_arg = folder.to_str().unwrap();

    let registered = devnet.ok(
        home.path(),
        &["asset", "register", folder_arg, "--from", "alice"],
    );
    let added = devnet.ok(
        home.path(),
        &["asset", "add", folder_arg, "--from", "alice"],
    );
    let asset = added["asset_id"].as_str().unwrap().to_string();
    assert_eq!(registered["asset_id"], asset.as_str());
    assert_eq!(added["shards"].as_array().unwrap().len(), 6);

    let out = home.path().join("tables.out");
    let get = || common::try_asset_get(&devnet.url, home.path(), &asset, "alice", &out);
    let (success, fetched, stderr) = get();
    assert!(success, "{stderr}");
    assert_eq!(
        fetched["folder_files"],
        serde_json::json!(["iris.csv", "more/wine.csv"])
    );
    for path in ["iris.csv", "more/wine.csv"] {
        assert_eq!(
            std::fs::read(out.join(path)).unwrap(),
            std::fs::read(folder.join(path)).unwrap(),
            "{path}"
        );
    }
    assert!(!out.join(".notes").exists());
    let (success, _, stderr) = get();
    assert!(!success && stderr.contains("already exists"), "{stderr}");

    std::fs::write(folder.join("more/photo.png"), [137u8, 80, 78, 71]).unwrap();
    let (success, _, stderr) = devnet.cli(
        home.path(),
        &["asset", "add", folder_arg, "--from", "alice"],
    );
    assert!(!success && stderr.contains("photo.png"), "{stderr}");
}

/// A shard that goes bad part way through is caught where it goes bad: the reader has decoded
/// the stripes before it, drops that provider's stream when iroh-blobs' verification fails, and
/// goes on from the batch it was in with a parity shard. The asset spans two batches of stripes.
#[test]
fn a_shard_corrupt_part_way_is_replaced_mid_read() {
    let home = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(home.path(), free_port());
    // About 45 MB of CSV: shards of 11 MiB, past the first batch of 32 stripes (8 MiB a shard).
    let csv = home.path().join("large.csv");
    {
        use std::io::Write as _;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        writeln!(file, "id,reading,station,label").unwrap();
        for row in 0u64..2_000_000 {
            writeln!(
                file,
                "{row},{}.{:03},{},{}",
                row * 7919 % 100_000,
                row % 997,
                row % 61,
                row % 3
            )
            .unwrap();
        }
    }
    let added = devnet.ok(
        home.path(),
        &["asset", "add", csv.to_str().unwrap(), "--from", "alice"],
    );
    let asset = added["asset_id"].as_str().unwrap().to_string();
    let shard_bytes = added["shards"][0]["bytes"].as_u64().unwrap();
    assert!(shard_bytes > 9 << 20, "{added}");

    // Data shard 0 rots at 9 MiB, in the second batch: its first 8 MiB are still good.
    let corrupt_at = 9usize << 20;
    let shard_zero: Vec<_> = walk(&home.path().join("devnet/data/providers"))
        .into_iter()
        .filter(|path| path.file_name().is_some_and(|name| name == "0.shard"))
        .collect();
    assert_eq!(shard_zero.len(), 1, "{shard_zero:?}");
    let mut bytes = std::fs::read(&shard_zero[0]).unwrap();
    bytes[corrupt_at] ^= 0x01;
    std::fs::write(&shard_zero[0], bytes).unwrap();

    let out = home.path().join("large.out");
    let output = Command::new(BIN)
        .args(["--node", &devnet.url, "--home"])
        .arg(home.path())
        .args(["--json", "asset", "get", &asset, "--from", "alice", "--out"])
        .arg(&out)
        .env("TRIBUTARY_LOG", "tributary::get=debug")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    let fetched: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        blake3::hash(&std::fs::read(&out).unwrap())
            .to_hex()
            .to_string(),
        blake3::hash(&std::fs::read(&csv).unwrap())
            .to_hex()
            .to_string()
    );
    let skipped = fetched["shards_skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{fetched}");
    assert_eq!(skipped[0][0], 0, "{fetched}");
    let used: Vec<u64> = fetched["shards_used"]
        .as_array()
        .unwrap()
        .iter()
        .map(|index| index.as_u64().unwrap())
        .collect();
    assert_eq!(used.len(), 4, "{fetched}");
    assert!(
        !used.contains(&0) && used.iter().any(|&index| index >= 4),
        "{fetched}"
    );
    // Shard 0 streamed from the start; the parity shard that replaced it, from the second batch.
    let started: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("streaming a shard"))
        .collect();
    assert_eq!(started.len(), 5, "{log}");
    assert!(
        started.iter().any(|line| line.contains("shard=0 offset=0")),
        "{log}"
    );
    let replacement = started
        .iter()
        .filter(|line| line.contains(&format!("offset={}", 8u64 << 20)))
        .count();
    assert_eq!(replacement, 1, "{log}");
}

/// Every file under `directory`, recursively, sorted.
fn walk(directory: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Issue 4: a licensee in its own home reads an asset with the data key the owner's key agent
/// (its own process, with the owner's home and only the owner's key) wrapped to it; without a
/// license it gets a clear error, and no provider holds the data key or plaintext.
#[test]
fn licensee_reads_an_asset_through_the_owners_key_agent() {
    let home = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(home.path(), free_port());
    let deadline = Instant::now() + Duration::from_secs(30);
    while devnet.ok(home.path(), &["storage", "status"])["providers"] != 6 {
        assert!(
            Instant::now() < deadline,
            "storage providers did not register"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let iris = data.join("iris.csv");
    let added = devnet.ok(
        home.path(),
        &[
            "asset",
            "add",
            iris.to_str().unwrap(),
            "--from",
            "alice",
            "--price",
            "700",
        ],
    );
    let asset = added["asset_id"].as_str().unwrap().to_string();

    // The licensee has its own home with only its own key, and some tokens from alice.
    let licensee_home = tempfile::tempdir().unwrap();
    let licensee = devnet.ok(licensee_home.path(), &["keys", "new", "licensee"]);
    let licensee_address = licensee["address"].as_str().unwrap().to_string();
    devnet.ok(
        home.path(),
        &[
            "tx",
            "transfer",
            "--from",
            "alice",
            "--to",
            &licensee_address,
            "--amount",
            "100000",
        ],
    );
    let out = licensee_home.path().join("iris.out");
    let get = || common::try_asset_get(&devnet.url, licensee_home.path(), &asset, "licensee", &out);
    // Without a license: refused, with what to do.
    let (success, _, stderr) = get();
    assert!(!success, "read without a license");
    assert!(
        stderr.contains("holds no license")
            && stderr.contains(&format!("tributary license buy {asset} --from licensee")),
        "{stderr}"
    );
    assert!(!out.exists());
    devnet.ok(
        licensee_home.path(),
        &["license", "buy", &asset, "--from", "licensee"],
    );
    // Licensed, but the owner's agent has not run yet.
    let (success, _, stderr) = get();
    assert!(
        !success && stderr.contains("asset serve-keys"),
        "before delivery: {stderr}"
    );

    // The owner's key agent, its own process with a home of its own holding only the owner's
    // key and what `asset add` saved: one pass delivers the licensee's envelope, and the
    // owner's, to all six providers; a second pass has nothing to do.
    // A home holding alice's account key and nothing else.
    let alice_only_home = || {
        let key_only = tempfile::tempdir().unwrap();
        std::fs::create_dir(key_only.path().join("keys")).unwrap();
        std::fs::copy(
            home.path().join("keys/alice.json"),
            key_only.path().join("keys/alice.json"),
        )
        .unwrap();
        key_only
    };
    let agent_home = alice_only_home();
    let saved = home.path().join("assets").join(&asset);
    let agent_saved = agent_home.path().join("assets").join(&asset);
    std::fs::create_dir_all(&agent_saved).unwrap();
    for name in ["manifest.json", "key.json"] {
        std::fs::copy(saved.join(name), agent_saved.join(name)).unwrap();
    }
    let serve_keys = || {
        devnet.ok(
            agent_home.path(),
            &["asset", "serve-keys", "--from", "alice", "--once"],
        )
    };
    let served = serve_keys();
    let mut deliveries = served["deliveries"].as_array().unwrap().clone();
    deliveries.sort_by_key(|delivery| delivery["reader"] != licensee_address.as_str());
    assert_eq!(deliveries.len(), 2, "{served}");
    assert_eq!(deliveries[0]["reader"], licensee_address.as_str());
    let alice_address = devnet.ok(home.path(), &["keys", "show", "alice"])["address"].clone();
    assert_eq!(deliveries[1]["reader"], alice_address);
    for delivery in &deliveries {
        assert_eq!(delivery["asset"], asset.as_str());
        assert_eq!(
            delivery["providers"].as_array().unwrap().len(),
            6,
            "{served}\n{}",
            devnet.ok(home.path(), &["storage", "deals", "--asset", &asset])
        );
    }
    let again = serve_keys();
    assert!(
        again["deliveries"].as_array().unwrap().is_empty(),
        "{again}"
    );

    // The owner, from a home that holds only its account key (the home `asset add` wrote is
    // lost), still reads its asset: through its own envelope at the providers.
    let recovered_home = alice_only_home();
    let recovered_out = recovered_home.path().join("iris.out");
    let (success, recovered, stderr) = common::try_asset_get(
        &devnet.url,
        recovered_home.path(),
        &asset,
        "alice",
        &recovered_out,
    );
    assert!(success, "owner's read without its home: {stderr}");
    assert!(
        recovered["key_from"]
            .as_str()
            .unwrap()
            .starts_with("provider"),
        "{recovered}"
    );
    assert_eq!(
        std::fs::read(&recovered_out).unwrap(),
        std::fs::read(&iris).unwrap()
    );

    let (success, fetched, stderr) = get();
    assert!(success, "licensed read: {stderr}");
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(blake3::hash(&bytes).to_hex().to_string(), asset);
    assert!(
        fetched["key_from"]
            .as_str()
            .unwrap()
            .starts_with("provider"),
        "{fetched}"
    );

    // No provider file holds the data key (raw or hex) or a run of the plaintext.
    let alice = tributary_node::keystore::Keystore::new(home.path())
        .load("alice")
        .unwrap();
    let seed: [u8; 32] = commonware_codec::Encode::encode(&alice.signer)
        .as_ref()
        .try_into()
        .unwrap();
    let wrapped: tributary_store::WrappedKey = serde_json::from_str(
        &std::fs::read_to_string(home.path().join("assets").join(&asset).join("key.json")).unwrap(),
    )
    .unwrap();
    let mut context = b"tributary-data-key-v1".to_vec();
    context.extend_from_slice(&hex::decode(&asset).unwrap());
    let data_key = tributary_store::unwrap(&wrapped, &seed, &context).unwrap();
    let key_hex = hex::encode(data_key.as_bytes());
    let plaintext = std::fs::read(&iris).unwrap();
    let sample = &plaintext[plaintext.len() / 2..plaintext.len() / 2 + 48];
    let contains = |haystack: &[u8], needle: &[u8]| {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    };
    let files = walk(&home.path().join("devnet/data/providers"));
    assert!(
        files
            .iter()
            .any(|file| file.ends_with("key-envelopes.record")),
        "providers keep envelopes"
    );
    for file in files {
        let stored = std::fs::read(&file).unwrap();
        assert!(
            !contains(&stored, data_key.as_bytes()) && !contains(&stored, key_hex.as_bytes()),
            "{} holds the data key",
            file.display()
        );
        assert!(
            !contains(&stored, sample),
            "{} holds plaintext",
            file.display()
        );
    }
}

/// Issue: `asset add` is resumable. A run killed (SIGKILL) wherever it happens to be leaves no
/// half-stored asset: running it again completes it, with one deal per shard and no duplicates;
/// running it once more is a no-op. Someone else's asset, or a lost data key, is a clear error.
#[test]
fn asset_add_resumes_after_a_kill() {
    let home = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(home.path(), free_port());
    let deadline = Instant::now() + Duration::from_secs(30);
    while devnet.ok(home.path(), &["storage", "status"])["providers"] != 6 {
        assert!(
            Instant::now() < deadline,
            "storage providers did not register"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A few MB, so that placing it takes a moment.
    let file = home.path().join("readings.csv");
    let mut text = String::from("sensor,reading,quality,label\n");
    for row in 0..160_000u64 {
        text.push_str(&format!(
            "{},{},{},{}\n",
            row % 97,
            row.wrapping_mul(2_654_435_761) % 10_000_019,
            row.wrapping_mul(40_503) % 1_009,
            row % 3
        ));
    }
    std::fs::write(&file, &text).unwrap();
    let asset = blake3::hash(text.as_bytes()).to_hex().to_string();
    let add = |from: &str| {
        devnet.cli(
            home.path(),
            &["asset", "add", file.to_str().unwrap(), "--from", from],
        )
    };
    let deals_of = || -> Vec<Value> {
        get(&devnet.url, &format!("/v1/deals?asset={asset}"))
            .ok()
            .and_then(|deals| deals.as_array().cloned())
            .unwrap_or_default()
    };

    // Interrupted: killed once its first deal is on the ledger (or wherever it is by then).
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["--node", &devnet.url, "--home"])
        .arg(home.path())
        .args([
            "--json",
            "asset",
            "add",
            file.to_str().unwrap(),
            "--from",
            "alice",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting asset add");
    let deadline = Instant::now() + Duration::from_secs(120);
    let finished_first = loop {
        if child.try_wait().unwrap().is_some() {
            break true;
        }
        if !deals_of().is_empty() {
            break false;
        }
        assert!(Instant::now() < deadline, "no deal appeared");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    eprintln!(
        "killed after {:?} (finished already: {finished_first}) with {} deals",
        started.elapsed(),
        deals_of().len()
    );
    let saved = home.path().join("assets").join(&asset);
    assert!(saved.join("key.json").is_file() && saved.join("manifest.json").is_file());

    // Run again: it completes.
    let (success, resumed, stderr) = add("alice");
    assert!(success, "resumed add: {stderr}");
    assert_eq!(resumed["asset_id"], asset.as_str());
    let steps = resumed["resumed"].as_array().unwrap();
    assert!(steps.contains(&Value::from("data_key")), "{resumed}");
    assert!(steps.contains(&Value::from("registration")), "{resumed}");
    let placed = resumed["shards"].as_array().unwrap();
    assert_eq!(placed.len(), 6);
    let deals = deals_of();
    assert_eq!(
        deals.len(),
        6,
        "one deal per shard, none duplicated: {deals:?}"
    );
    let mut indexes: Vec<u64> = deals
        .iter()
        .map(|deal| deal["shard_index"].as_u64().unwrap())
        .collect();
    indexes.sort();
    assert_eq!(indexes, (0..6).collect::<Vec<_>>());
    assert!(
        deals.iter().all(|deal| deal["status"] == "active"),
        "{deals:?}"
    );
    let mut providers: Vec<&str> = deals
        .iter()
        .map(|deal| deal["provider"].as_str().unwrap())
        .collect();
    providers.sort();
    providers.dedup();
    assert_eq!(providers.len(), 6, "{deals:?}");

    // The bytes come back whole.
    let out = home.path().join("readings.out");
    common::asset_get(&devnet.url, home.path(), &asset, "alice", &out);
    assert_eq!(
        blake3::hash(&std::fs::read(&out).unwrap())
            .to_hex()
            .to_string(),
        asset
    );

    // Once more: nothing left to do, the same deals.
    let (success, again, stderr) = add("alice");
    assert!(success, "no-op add: {stderr}");
    assert_eq!(
        again["resumed"],
        serde_json::json!(["data_key", "registration", "layout", "deals", "uploads"])
    );
    assert_eq!(again["shards"], resumed["shards"]);
    assert_eq!(deals_of().len(), 6);

    // Someone else's asset: refused, saying whose it is.
    let (success, _, stderr) = add("bob");
    assert!(
        !success && stderr.contains("already registered, owned by"),
        "{stderr}"
    );
    // A lost data key: refused, saying what to do.
    let key = saved.join("key.json");
    let aside = saved.join("key.json.aside");
    std::fs::rename(&key, &aside).unwrap();
    let (success, _, stderr) = add("alice");
    assert!(
        !success && stderr.contains("data key is not in") && stderr.contains("--home"),
        "{stderr}"
    );
    assert!(!key.exists(), "a fresh key must not replace the lost one");
    std::fs::rename(&aside, &key).unwrap();
    assert_eq!(deals_of().len(), 6);
}
