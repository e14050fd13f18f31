//! The demo's federated part: the five contributors' shards train one model together over HTTP with
//! secure aggregation and DP, without any shard leaving its contributor; the model is registered with
//! its bill of materials, the reward is paid by contribution, a buyer licenses the model, and royalties
//! flow back up to the contributors' shards.
//!
//! In the demo the contributors are threads of the demo's process talking to the aggregator through
//! loopback sockets; `crates/cli/tests/federated.rs` runs each as its own process.

use crate::client::{Client, poll_until};
use crate::demo_rewards::RewardsOutcome;
use crate::federated::{SessionSpec, join_session, run_session};
use crate::output;
use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use tributary_learn::Dataset;
use tributary_node::keystore::Keystore;
use tributary_types::views::TrainingSessionView;
use tributary_types::{AccountView, Address, Amount, Call};

/// Reward of the training session, in base units.
const TRAINING_REWARD: Amount = 500_000;
/// Stake backing the posted contribution shares.
const SHARES_STAKE: Amount = 1_000;
/// Price of a license to the trained model.
const MODEL_PRICE: Amount = 200_000;
/// Longest wait for a chain height, in milliseconds.
const CHAIN_WAIT_MS_MAX: u64 = 60_000;

/// One contributor's line of the federated part.
#[derive(Debug, Serialize)]
pub struct TrainingContributor {
    name: String,
    share_bps: u16,
    reward: String,
    royalty: String,
}

/// What the federated part showed.
#[derive(Debug, Serialize)]
pub struct TrainingOutcome {
    session: u64,
    model: String,
    accuracy_by_round: Vec<Option<f64>>,
    accuracy: Option<f64>,
    epsilon: Option<f64>,
    delta: f64,
    contributors: Vec<TrainingContributor>,
    buyer: String,
    model_price: String,
    trainer_royalty_share: String,
    /// Anything that did not add up.
    pub problems: Vec<String>,
}

fn balance(client: &Client, address: &Address) -> Result<Amount> {
    Ok(client
        .get::<AccountView>(&format!("/v1/accounts/{address}"))?
        .balance)
}

/// Runs the federated part on the demo's devnet.
pub fn walk(client: &Client, home: &Path, rewards: &RewardsOutcome) -> Result<TrainingOutcome> {
    eprintln!(
        "Private collaboration: federated training → model asset → reward by contribution → royalties"
    );
    let keystore = Keystore::new(home);
    let alice = keystore.load("alice")?;
    let trainer = keystore.load("trainer")?;
    let buyer = keystore.create("model-buyer")?;
    for (to, amount, step) in [
        (
            trainer.address(),
            TRAINING_REWARD + SHARES_STAKE + 100_000,
            "alice funds the trainer's training session",
        ),
        (
            buyer.address(),
            MODEL_PRICE + 10_000,
            "alice funds a model buyer",
        ),
    ] {
        let response = client.send(&alice, Call::Transfer { to, amount }, None)?;
        if response.status != "finalized" {
            bail!("{step}: {}", response.reason.unwrap_or_default());
        }
    }

    let test = rewards
        .test_file
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| anyhow!("no test file"))?;
    let eligible: Vec<String> = rewards
        .shards
        .values()
        .map(|(_, asset)| format!("{:?}", asset.to_string()))
        .collect();
    let text = format!(
        r#"task = "digits, federated softmax regression"
model = "softmax"
test = "{test}"
eligible = [{eligible}]
reward = {TRAINING_REWARD}
evaluator_stake = {SHARES_STAKE}
challenge_window_blocks = 3
participants_min = 3
participants_max = 5
endpoint = "127.0.0.1:0"
join_wait_ms = 10000
model_price = {MODEL_PRICE}
name = "digits federated softmax"

[training]
rounds = 20
clients_per_round = 3
seed = 7

[training.local]
epochs = 5
batch_size = 32
optimizer = {{ kind = "sgd", learning_rate = 0.05 }}

[training.privacy]
clip_norm = 2.0
noise_multiplier = 0.1
"#,
        eligible = eligible.join(", ")
    );
    let directory = rewards
        .test_file
        .parent()
        .ok_or_else(|| anyhow!("the test file has no directory"))?;
    std::fs::write(directory.join("session.toml"), &text)?;
    let spec: SessionSpec = toml::from_str(&text).context("the demo's session spec")?;

    let names: Vec<String> = rewards.shards.keys().cloned().collect();
    let mut contributors = BTreeMap::new();
    for name in &names {
        contributors.insert(name.clone(), keystore.load(name)?);
    }

    let mut workers = Vec::new();
    let base = client.base().to_string();
    let output = run_session(
        client,
        &trainer,
        &spec,
        &text,
        directory,
        Some(&directory.join("federated-model.safetensors")),
        |session, address| {
            eprintln!(
                "  ✓ the trainer opens session {session} on the ledger (reward {TRAINING_REWARD} escrowed); aggregator at {address}"
            );
            for (name, (path, asset)) in &rewards.shards {
                let key = contributors[name].clone();
                let path = path.clone();
                let asset = *asset;
                let node = Client::new(&base);
                workers.push(std::thread::spawn(move || {
                    let load = |classes: &[String]| {
                        Dataset::read(&path, "label", Some(classes))
                            .with_context(|| format!("cannot load {}", path.display()))
                    };
                    join_session(&node, &key, session, asset, load, |_| {})
                }));
            }
        },
        |line| {
            if line.starts_with("round")
                && !line.starts_with("round   1:")
                && !line.contains(" 20:")
                && !line.contains(" 10:")
            {
                return;
            }
            eprintln!("  ✓ {line}");
        },
    )?;
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow!("a contributor thread panicked"))??;
    }
    eprintln!(
        "  ✓ the model is registered with its bill of materials (model {}), ε = {}",
        output.model,
        output
            .epsilon
            .map_or("-".into(), |epsilon| format!("{epsilon:.1}"))
    );

    // The challenge window passes; anyone claims; the pool pays each shard by its share.
    let session: TrainingSessionView =
        client.get(&format!("/v1/training/sessions/{}", output.session))?;
    let finalized = session.finalized_height.unwrap_or_default();
    poll_until("the challenge window", CHAIN_WAIT_MS_MAX, || {
        Ok((client.status()?.height > finalized + 3).then_some(()))
    })?;
    let claim = client.send(&trainer, Call::ClaimRewards { pool: session.pool }, None)?;
    if claim.status != "finalized" {
        bail!(
            "claiming the session's reward: {}",
            claim.reason.unwrap_or_default()
        );
    }
    let paid: BTreeMap<tributary_types::AssetId, Amount> = crate::rewards::allocations(&claim)
        .into_iter()
        .map(|(asset, _, amount)| (asset, amount))
        .collect();
    let after_reward: BTreeMap<String, Amount> = contributors
        .iter()
        .map(|(name, key)| Ok((name.clone(), balance(client, &key.address())?)))
        .collect::<Result<_>>()?;
    eprintln!(
        "  ✓ the challenge window passes; the session's pool pays each contributor by contribution share"
    );

    // A buyer licenses the model; royalties flow up to the shards it was trained on.
    let model = crate::commands::parse_asset_id(&output.model)?;
    let trainer_before = balance(client, &trainer.address())?;
    let bought = client.send(&buyer, Call::BuyLicense { asset: model }, None)?;
    if bought.status != "finalized" {
        bail!(
            "buying a license to the model: {}",
            bought.reason.unwrap_or_default()
        );
    }
    let trainer_after = balance(client, &trainer.address())?;
    let after_license: BTreeMap<String, Amount> = contributors
        .iter()
        .map(|(name, key)| Ok((name.clone(), balance(client, &key.address())?)))
        .collect::<Result<_>>()?;
    eprintln!(
        "  ✓ a buyer licenses the model for {MODEL_PRICE}; royalties flow up to the five shards"
    );

    let mut problems = Vec::new();
    let shares_by_asset = &output.shares;
    let mut lines = Vec::new();
    let mut reward_total: Amount = 0;
    let mut royalty_total: Amount = 0;
    for (name, (_, asset)) in &rewards.shards {
        let reward = paid.get(asset).copied().unwrap_or(0);
        let royalty = after_license[name].saturating_sub(after_reward[name]);
        reward_total += reward;
        royalty_total += royalty;
        lines.push(TrainingContributor {
            name: name.clone(),
            share_bps: shares_by_asset
                .get(&asset.to_string())
                .copied()
                .unwrap_or(0),
            reward: reward.to_string(),
            royalty: royalty.to_string(),
        });
    }
    // The trainer paid claim fees only after the license, so its gain is the model's own part.
    let trainer_part = trainer_after.saturating_sub(trainer_before);
    if reward_total != TRAINING_REWARD {
        problems.push(format!(
            "the contributors received {reward_total} from the session's pool, not {TRAINING_REWARD}"
        ));
    }
    if royalty_total + trainer_part != MODEL_PRICE {
        problems.push(format!(
            "the model's license price {MODEL_PRICE} split into {royalty_total} of royalties and {trainer_part} for the trainer"
        ));
    }
    Ok(TrainingOutcome {
        session: output.session,
        model: output.model,
        accuracy: output.accuracy,
        accuracy_by_round: output.rounds,
        epsilon: output.epsilon,
        delta: output.delta,
        contributors: lines,
        buyer: buyer.address().to_string(),
        model_price: MODEL_PRICE.to_string(),
        trainer_royalty_share: trainer_part.to_string(),
        problems,
    })
}

/// Prints the federated part as tables.
pub fn print(outcome: &TrainingOutcome) {
    println!();
    println!(
        "Private collaboration: session {} trained model {} over secure aggregation with DP",
        outcome.session, outcome.model
    );
    let mut table = output::table(&["round", "held-out accuracy"]);
    for (round, accuracy) in outcome.accuracy_by_round.iter().enumerate() {
        if round % 4 == 0 || round + 1 == outcome.accuracy_by_round.len() {
            table.add_row(vec![
                (round + 1).to_string(),
                accuracy.map_or("-".into(), |accuracy| format!("{accuracy:.4}")),
            ]);
        }
    }
    println!("{table}");
    println!(
        "privacy spent: ε = {} at δ = {} (client-level DP over 5 contributors, 3 per round)",
        outcome
            .epsilon
            .map_or("-".into(), |epsilon| format!("{epsilon:.2}")),
        outcome.delta
    );
    let mut table = output::table(&[
        "contributor",
        "contribution (bps)",
        "reward from the session",
        "royalty from the model's license",
    ]);
    for line in &outcome.contributors {
        table.add_row(vec![
            line.name.clone(),
            line.share_bps.to_string(),
            output::units(line.reward.parse().unwrap_or(0)),
            output::units(line.royalty.parse().unwrap_or(0)),
        ]);
    }
    println!("{table}");
    println!(
        "the model's license sold for {}: {} to the trainer, the rest up the lineage to the shards",
        output::units(outcome.model_price.parse().unwrap_or(0)),
        output::units(outcome.trainer_royalty_share.parse().unwrap_or(0))
    );
}
