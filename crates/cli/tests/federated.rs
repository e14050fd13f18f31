//! Federated training end to end through the real binary: a devnet, four contributors each running
//! `tributary train join` as its own process with its own rows, the trainer running
//! `tributary train federated` (which opens the session on the ledger and aggregates over HTTP with
//! secure aggregation), one contributor killed mid-session, and the model registered with its bill
//! of materials.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{BIN, Process as Running, free_port};

fn tributary(home: &Path, node: &str) -> Command {
    let mut command = Command::new(BIN);
    command.arg("--home").arg(home).args(["--node", node]);
    command
}

fn json(home: &Path, node: &str, args: &[&str]) -> Value {
    let output = tributary(home, node)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Splits the shipped digits into a held-out file and `parts` contributor files.
fn split_digits(directory: &Path, parts: usize) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits.csv"),
    )
    .unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let mut files = vec![vec![header]; parts + 1];
    for (index, row) in rows.iter().enumerate() {
        // Every fifth row is held out; the rest are dealt round-robin.
        let file = if index % 5 == 0 { parts } else { index % parts };
        files[file].push(row);
    }
    for (index, lines) in files.iter().enumerate() {
        let name = if index == parts {
            "held-out.csv".to_string()
        } else {
            format!("part{index}.csv")
        };
        std::fs::write(directory.join(name), lines.join("\n") + "\n").unwrap();
    }
}

#[test]
fn federated_session_survives_a_killed_contributor_and_registers_the_model() {
    let home = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let node = format!("http://127.0.0.1:{port}");
    let _devnet = Running(
        tributary(home.path(), &node)
            .args(["devnet", "--storage-providers", "0", "--http"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while tributary(home.path(), &node)
        .args(["--json", "status"])
        .output()
        .map(|output| !output.status.success())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "the devnet did not come up");
        std::thread::sleep(Duration::from_millis(200));
    }

    split_digits(work.path(), 4);
    let contributors = ["alice", "bob", "carol", "erin"];
    let mut assets = Vec::new();
    for (index, name) in contributors.iter().enumerate() {
        let file = work.path().join(format!("part{index}.csv"));
        let registered = json(
            home.path(),
            &node,
            &[
                "asset",
                "register",
                file.to_str().unwrap(),
                "--from",
                name,
                "--terms",
                "ai-training,derivatives",
                "--royalty-bps",
                "500",
            ],
        );
        assets.push(registered["asset_id"].as_str().unwrap().to_string());
    }
    let aggregator_port = free_port();
    let eligible = assets
        .iter()
        .map(|asset| format!("{asset:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        work.path().join("session.toml"),
        format!(
            r#"task = "digits"
model = "softmax"
test = "held-out.csv"
eligible = [{eligible}]
reward = 1000000
evaluator_stake = 1000
participants_min = 3
participants_max = 4
endpoint = "127.0.0.1:{aggregator_port}"
training_timeout_ms = 4000
stage_timeout_ms = 2000

[training]
rounds = 8
seed = 3

[training.local]
epochs = 5
batch_size = 32
optimizer = {{ kind = "sgd", learning_rate = 0.05 }}
"#
        ),
    )
    .unwrap();

    let mut trainer = Running(
        tributary(home.path(), &node)
            .args(["train", "federated", "--from", "dave", "--spec"])
            .arg(work.path().join("session.toml"))
            .arg("--out")
            .arg(work.path().join("model.safetensors"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = trainer.0.stdout.take().unwrap();
    let (lines_sender, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_sender.send(line).is_err() {
                break;
            }
        }
    });
    let first = lines.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(first.starts_with("session 1 open"), "{first}");

    let mut joiners: Vec<Running> = contributors
        .iter()
        .enumerate()
        .map(|(index, name)| {
            Running(
                tributary(home.path(), &node)
                    .args([
                        "train",
                        "join",
                        "1",
                        "--from",
                        name,
                        "--asset",
                        &assets[index],
                    ])
                    .arg("--data")
                    .arg(work.path().join(format!("part{index}.csv")))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();

    // Kill one contributor once round 2 is done; the session goes on without it.
    let mut output = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut killed = false;
    while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if line.starts_with("round   2:") && !killed {
            let victim = joiners.remove(1);
            drop(victim);
            killed = true;
        }
        output.push(line);
    }
    let status = trainer.0.wait().unwrap();
    let mut errors = String::new();
    if let Some(mut stderr) = trainer.0.stderr.take() {
        use std::io::Read;
        let _ = stderr.read_to_string(&mut errors);
    }
    assert!(
        status.success(),
        "trainer failed:\n{}\n{errors}",
        output.join("\n")
    );
    assert!(killed, "round 2 never finished:\n{}", output.join("\n"));
    let rounds: Vec<&String> = output
        .iter()
        .filter(|line| line.starts_with("round"))
        .collect();
    assert_eq!(rounds.len(), 8, "{output:#?}");
    assert!(rounds[0].contains("4 of 4 aggregated"), "{}", rounds[0]);
    assert!(rounds[7].contains("3 of 4 aggregated"), "{}", rounds[7]);
    let accuracy: f64 = rounds[7].rsplit(' ').next().unwrap().parse().unwrap();
    assert!(accuracy > 0.9, "final accuracy {accuracy}");
    let model_line = output
        .iter()
        .find(|line| line.starts_with("model "))
        .unwrap();
    let model = model_line.split(' ').nth(1).unwrap();

    let bill = json(home.path(), &node, &["model", "show", model]);
    assert_eq!(bill["session"], 1);
    assert_eq!(bill["secure_aggregation"], true);
    assert_eq!(bill["rounds"].as_array().unwrap().len(), 8);
    let inputs = bill["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 4);
    let shares: u64 = inputs
        .iter()
        .map(|input| input["share_bps"].as_u64().unwrap())
        .sum();
    assert_eq!(shares, 10_000);
    let asset = json(home.path(), &node, &["asset", "show", model]);
    assert_eq!(asset["kind"], "model");
    assert_eq!(asset["parents"].as_array().unwrap().len(), 4);
}

#[test]
fn train_local_and_privacy_print_json_for_scripts() {
    let work = tempfile::tempdir().unwrap();
    let digits = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits.csv");
    let out = work.path().join("model.safetensors");
    let output = Command::new(BIN)
        .args([
            "--json", "train", "local", "--model", "softmax", "--epochs", "15", "--data",
        ])
        .arg(&digits)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let local: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(local["accuracy"].as_f64().unwrap() > 0.94, "{local}");
    assert!(local["model"].is_null());
    assert_eq!(local["test_rows"], 360);
    assert!(out.exists());

    let output = Command::new(BIN)
        .args([
            "--json",
            "train",
            "privacy",
            "--sampling-rate",
            "0.01",
            "--noise-multiplier",
            "1",
            "--steps",
            "1000",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let privacy: Value = serde_json::from_slice(&output.stdout).unwrap();
    let epsilon = privacy["epsilon"].as_f64().unwrap();
    assert!((epsilon - 2.1014).abs() < 0.001, "{privacy}");
    assert!(privacy["order"].as_f64().is_some());

    // Bad input: a model that does not fit the data, and a sampling rate out of range.
    let output = Command::new(BIN)
        .args(["train", "local", "--model", "cnn", "--data"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/iris.csv"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("CNN"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = Command::new(BIN)
        .args([
            "train",
            "privacy",
            "--sampling-rate",
            "1.5",
            "--noise-multiplier",
            "1",
            "--steps",
            "10",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
}
