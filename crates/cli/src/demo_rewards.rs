//! The demo's "paid by value" part: contributors hold shards of the digits dataset (one with
//! noisy labels, one a copy of another's), a trainer funds a reward pool, a dishonest evaluator
//! posts a valuation that favours one contributor, an honest challenger disputes it with the
//! real KNN-Shapley report, a committee of staked verifiers drawn from the chain's beacon
//! recomputes both and votes, and the pool pays each contributor's asset by the honest shares.
//! The shards are stored with `asset add`; alice reads hers back, and the trainer, a licensee in a
//! home of its own, reads bob's through bob's key agent (`asset serve-keys`, run as a process of
//! its own with only bob's key).

use crate::{
    Cli,
    client::{Client, poll_until},
    commands::hash_file,
    output,
    rewards::{allocations, created_pool, decide, report_claim},
};
use anyhow::{Context, Result, anyhow, ensure};
use serde::Serialize;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};
use tributary_node::{api::TransactionResponse, keystore::Keystore};
use tributary_types::{
    Address, Amount, AssetId, Call, CreateRewardPool, Event, RewardPoolView, Role, Terms,
};
use tributary_valuation::{
    Method, Parameters,
    report::{ValuationRequest, value_files},
    split::{flip_labels, stratified_split},
};

/// The reward the trainer puts in the pool.
const POOL_AMOUNT: Amount = 1_000_000;
/// The stake of an evaluator and of a challenger.
const EVALUATOR_STAKE: Amount = 20_000;
/// Blocks a valuation stays open to challenge.
const CHALLENGE_WINDOW_BLOCKS: u64 = 6;
/// Each verifier's bond.
const VERIFIER_BOND: Amount = 5_000;
/// Verifiers that bond (the chain draws a committee of `committee_size` from them).
const VERIFIERS: usize = 4;
/// Share of dave's labels flipped.
const NOISY_FRACTION: f64 = 0.4;
/// Seed of the split and of the label noise.
const DATA_SEED: u64 = 7;
/// How long to wait for the chain to reach a height or draw a committee.
const CHAIN_WAIT_MS_MAX: u64 = 60_000;

/// Who holds which shard.
/// Royalty on what is derived from a contributor's shard (e.g. a model trained on it), in bps.
pub const SHARD_ROYALTY_BPS: u16 = 1_000;

pub const CONTRIBUTORS: [(&str, &str); 5] = [
    ("alice", "clean"),
    ("bob", "clean"),
    ("carol", "clean"),
    ("dave", "40% of labels flipped"),
    ("erin", "bob's rows, reordered"),
];

/// One contributor's line of the report.
#[derive(Serialize)]
pub struct ContributorOutcome {
    contributor: String,
    shard: String,
    rows: usize,
    asset: AssetId,
    value: f64,
    share_bps: u16,
    payout: String,
}

/// What the rewards part did.
#[derive(Serialize)]
pub struct RewardsOutcome {
    pool: u64,
    amount: String,
    dishonest_report_root: String,
    honest_report_root: String,
    committee: Vec<Address>,
    challenger_won: bool,
    contributors: Vec<ContributorOutcome>,
    storage: StorageOutcome,
    pub problems: Vec<String>,
    /// Each contributor's shard file and asset (for the federated part of the demo).
    #[serde(skip)]
    pub shards: BTreeMap<String, (PathBuf, AssetId)>,
    /// The trainer's held-out digits.
    #[serde(skip)]
    pub test_file: PathBuf,
}

/// A folder asset stored and read back.
#[derive(Serialize)]
pub struct FolderRead {
    /// The asset (the folder bundle's BLAKE3).
    asset: AssetId,
    /// Files in the folder.
    files: usize,
    /// Storage deals holding its shards.
    deals: usize,
    /// Whether every file read back equals the one stored.
    identical: bool,
}

/// The trainer publishes its evaluation set as one folder asset (`asset add DIR`): the held-out
/// rows and a JSON Lines count of rows per label, stored like any asset and read back (`asset
/// get` writes the folder), file for file.
fn store_evaluation_folder(
    demo_cli: &Cli,
    client: &Client,
    home: &Path,
    test_path: &Path,
) -> Result<FolderRead> {
    let folder = home.join("evaluation");
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    std::fs::copy(test_path, folder.join("test.csv"))
        .with_context(|| format!("copying {}", test_path.display()))?;
    let test = std::fs::read_to_string(test_path)
        .with_context(|| format!("reading {}", test_path.display()))?;
    let mut counts: BTreeMap<u32, u64> = BTreeMap::new();
    for line in test.lines().skip(1) {
        if let Some(label) = line
            .rsplit_once(',')
            .and_then(|(_, label)| label.parse().ok())
        {
            *counts.entry(label).or_default() += 1;
        }
    }
    let lines: String = counts
        .iter()
        .map(|(label, rows)| format!("{{\"label\":{label},\"rows\":{rows}}}\n"))
        .collect();
    std::fs::write(folder.join("labels.jsonl"), lines)
        .with_context(|| format!("writing {}", folder.display()))?;
    let added = crate::data::add(
        demo_cli,
        client,
        crate::data::AddRequest {
            name: Some("digits evaluation set (folder)"),
            ..crate::data::AddRequest::new(&folder, "trainer", Terms::default())
        },
    )?;
    let out = home.join("evaluation.read");
    let read = crate::data::get(demo_cli, client, added.asset_id, "trainer", &out)?;
    let files = read.folder_files.unwrap_or_default();
    let mut identical = files == ["labels.jsonl", "test.csv"];
    for file in &files {
        identical &= std::fs::read(out.join(file)).ok() == std::fs::read(folder.join(file)).ok();
    }
    eprintln!(
        "  ✓ the trainer stores its evaluation set as one folder asset ({} files: held-out rows and per-label counts; {} deals) and reads the folder back: {}",
        files.len(),
        added.shards.len(),
        if identical {
            "identical files"
        } else {
            "DIFFERENT FILES"
        }
    );
    Ok(FolderRead {
        asset: added.asset_id,
        files: files.len(),
        deals: added.shards.len(),
        identical,
    })
}

/// What the shards' storage showed.
#[derive(Serialize)]
pub struct StorageOutcome {
    /// Storage deals made (6 per contributor's shard).
    deals: usize,
    /// Distinct providers holding them.
    providers: usize,
    /// Epochs proven across those deals (each a challenge answered and paid).
    proven_epochs: u64,
    /// Whether alice's shard read back from the providers equals her file.
    read_back_identical: bool,
    /// The trainer's evaluation set, stored as one folder asset and read back.
    evaluation_folder: FolderRead,
    /// The licensee's read of bob's shard through bob's key agent.
    licensee: LicenseeRead,
    /// A provider that lost a shard: caught by a challenge, slashed, repaired elsewhere.
    repair: RepairOutcome,
}

/// A lost shard, caught and repaired (issue 4: proofs of storage, slashing and repair).
#[derive(Serialize)]
pub struct RepairOutcome {
    /// The deal whose shard was lost.
    deal: u64,
    /// The shard's index.
    shard: u8,
    /// The provider that lost it.
    lost_by: Address,
    /// Stake it lost, base units.
    slashed: String,
    /// The provider that rebuilt the shard from k others and took the deal over.
    repaired_by: Address,
    /// Whether carol's dataset still reads back identical afterwards.
    read_back_identical: bool,
}

/// Deletes shard 0 of `asset` from its provider's disk, waits for the next challenge to catch
/// it (the deal fails, the provider is slashed) and for a provider holding no shard of the asset
/// to rebuild it from four others and take the deal over; then the owner reads the asset back.
fn lose_and_repair(
    demo_cli: &Cli,
    client: &Client,
    home: &Path,
    asset: AssetId,
    original: &Path,
) -> Result<RepairOutcome> {
    let deals: Vec<tributary_types::DealView> = client.get(&format!("/v1/deals?asset={asset}"))?;
    let deal = deals
        .iter()
        .find(|deal| deal.shard_index == 0 && deal.status == "active")
        .ok_or_else(|| anyhow!("carol's shard 0 has no active deal"))?
        .clone();
    let providers_dir = home.join("devnet").join("data").join("providers");
    let lost = std::fs::read_dir(&providers_dir)
        .with_context(|| format!("listing {}", providers_dir.display()))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path().join(asset.to_string()).join("0.shard"))
        .find(|path| path.exists())
        .ok_or_else(|| anyhow!("no provider directory holds shard 0 of {asset}"))?;
    let stake_before = crate::storage::provider_stake(client, &deal.provider)?;
    std::fs::remove_file(&lost).with_context(|| format!("deleting {}", lost.display()))?;
    eprintln!(
        "  ✗ provider {} loses shard 0 of carol's dataset (its file is deleted behind its back)",
        deal.provider
    );
    let repaired: tributary_types::DealView = poll_until(
        "the lost shard to be caught and repaired",
        CHAIN_WAIT_MS_MAX,
        || {
            let view: tributary_types::DealView = client.get(&format!("/v1/deals/{}", deal.id))?;
            Ok((view.status == "active" && view.provider != deal.provider).then_some(view))
        },
    )?;
    let slashed =
        stake_before.saturating_sub(crate::storage::provider_stake(client, &deal.provider)?);
    eprintln!(
        "  ✓ the next challenge caught it: slashed {slashed}; {} rebuilt shard 0 from 4 other shards and took deal {} over",
        repaired.provider, deal.id
    );
    let read_path = home.join("carol.read.csv");
    crate::data::get(demo_cli, client, asset, "carol", &read_path)?;
    let read_back_identical = std::fs::read(&read_path)? == std::fs::read(original)?;
    eprintln!(
        "  ✓ carol reads her dataset back after the repair: {}",
        if read_back_identical {
            "identical bytes"
        } else {
            "DIFFERENT BYTES"
        }
    );
    Ok(RepairOutcome {
        deal: deal.id,
        shard: deal.shard_index,
        lost_by: deal.provider,
        slashed: slashed.to_string(),
        repaired_by: repaired.provider,
        read_back_identical,
    })
}

/// A licensee's read of a dataset it licensed (issue 4: license-gated key delivery).
#[derive(Serialize)]
pub struct LicenseeRead {
    /// The licensee.
    reader: String,
    /// The dataset's owner, whose key agent delivered the key.
    owner: String,
    /// The asset read.
    asset: AssetId,
    /// Whether the providers refused it a key before it bought a license.
    refused_without_license: bool,
    /// Providers that took its key envelope from the owner's agent.
    envelope_providers: usize,
    /// Whether the bytes it read equal the owner's file.
    read_back_identical: bool,
    /// Shards it read, and how many of them came over iroh-blobs (verified as they streamed,
    /// from endpoints whose id is the provider's address).
    shards_read: usize,
    shards_over_iroh: usize,
    /// Whether the owner, from a home holding only its account key (as if the home `asset
    /// add` wrote were lost), read its dataset back through its own envelope.
    owner_reads_with_key_alone: bool,
}

/// The trainer (in a home holding only its own key) reads bob's shard: refused without a
/// license, it buys one, bob's key agent (`tributary asset serve-keys --once`, a process of its
/// own whose home holds only bob's key and the manifest and key `asset add` saved) wraps the
/// data key to it, and it reads the shard back through the providers.
fn licensee_reads(
    demo_cli: &Cli,
    client: &Client,
    home: &Path,
    asset: AssetId,
    original: &Path,
) -> Result<LicenseeRead> {
    let keystore = Keystore::new(home);
    let (owner, reader) = (keystore.load("bob")?, keystore.load("trainer")?);
    let agent_home = home.join("bob-key-agent");
    Keystore::new(&agent_home).insert("bob", &owner.signer)?;
    let saved = home.join("assets").join(asset.to_string());
    let agent_saved = agent_home.join("assets").join(asset.to_string());
    std::fs::create_dir_all(&agent_saved)
        .with_context(|| format!("creating {}", agent_saved.display()))?;
    for name in ["manifest.json", "key.json"] {
        std::fs::copy(saved.join(name), agent_saved.join(name))
            .with_context(|| format!("copying {name} to {}", agent_saved.display()))?;
    }
    let reader_home = home.join("trainer-reader");
    Keystore::new(&reader_home).insert("trainer", &reader.signer)?;
    let reader_cli = Cli {
        node: demo_cli.node.clone(),
        home: Some(reader_home.clone()),
        json: true,
        command: crate::Command::Status,
    };
    let out = reader_home.join("bob.read.csv");
    let refused_without_license =
        match crate::data::get(&reader_cli, client, asset, "trainer", &out) {
            Ok(_) => false,
            Err(error) => format!("{error:#}").contains("holds no license"),
        };
    eprintln!(
        "  ✓ the trainer asks bob's storage providers for the key of bob's shard without a license: {}",
        if refused_without_license {
            "refused"
        } else {
            "NOT REFUSED"
        }
    );
    let response = client.send(&reader, Call::BuyLicense { asset }, None)?;
    expect_finalized("the trainer buys a license to bob's shard", &response)?;
    let executable = std::env::current_exe().context("finding the tributary executable")?;
    let agent = std::process::Command::new(executable)
        .arg("--node")
        .arg(&demo_cli.node)
        .arg("--home")
        .arg(&agent_home)
        .args(["--json", "asset", "serve-keys", "--from", "bob", "--once"])
        .output()
        .context("running bob's key agent")?;
    ensure!(
        agent.status.success(),
        "bob's key agent failed: {}",
        String::from_utf8_lossy(&agent.stderr).trim()
    );
    let served: serde_json::Value =
        serde_json::from_slice(&agent.stdout).context("bob's key agent printed no JSON report")?;
    let envelope_providers = served["deliveries"]
        .as_array()
        .and_then(|deliveries| {
            deliveries
                .iter()
                .find(|delivery| delivery["reader"] == reader.address().to_string())
        })
        .and_then(|delivery| delivery["providers"].as_array())
        .map_or(0, Vec::len);
    eprintln!(
        "  ✓ bob's key agent (its own process, only bob's key) wraps the data key to the trainer and delivers it to {envelope_providers} providers"
    );
    let read = crate::data::get(&reader_cli, client, asset, "trainer", &out)?;
    let read_back_identical = std::fs::read(&out)? == std::fs::read(original)?;
    eprintln!(
        "  ✓ the trainer reads bob's shard back with its own key ({} of {} shards over iroh-blobs): {}",
        read.shards_over_iroh,
        read.shards_used.len(),
        if read_back_identical {
            "identical bytes"
        } else {
            "DIFFERENT BYTES"
        }
    );
    // Bob, from a home holding only his account key: his agent delivered his own envelope too.
    let owner_home = home.join("bob-key-only");
    Keystore::new(&owner_home).insert("bob", &owner.signer)?;
    let owner_cli = Cli {
        home: Some(owner_home.clone()),
        ..reader_cli
    };
    let owner_out = owner_home.join("bob.read.csv");
    let owner_read = crate::data::get(&owner_cli, client, asset, "bob", &owner_out)?;
    let owner_reads_with_key_alone = owner_read.key_from.starts_with("provider")
        && std::fs::read(&owner_out)? == std::fs::read(original)?;
    eprintln!(
        "  ✓ bob reads it back from a home holding only his account key (his envelope at the providers): {}",
        if owner_reads_with_key_alone {
            "identical bytes"
        } else {
            "NOT READ THROUGH HIS ENVELOPE"
        }
    );
    Ok(LicenseeRead {
        owner_reads_with_key_alone,
        reader: "trainer".into(),
        owner: "bob".into(),
        asset,
        refused_without_license,
        envelope_providers,
        read_back_identical,
        shards_read: read.shards_used.len(),
        shards_over_iroh: read.shards_over_iroh,
    })
}

/// Each contributor's shard file and its row count.
type Shards = BTreeMap<String, (PathBuf, usize)>;

/// Writes the shards and the test set; returns the shards and the test set's path.
fn write_shards(data: &Path, out: &Path) -> Result<(Shards, PathBuf)> {
    let text = std::fs::read_to_string(data.join("digits.csv"))
        .with_context(|| format!("reading {}", data.join("digits.csv").display()))?;
    let mut lines = text.lines();
    let header = lines.next().ok_or_else(|| anyhow!("digits.csv is empty"))?;
    let rows: Vec<(&str, u32)> = lines
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (features, label) = line
                .rsplit_once(',')
                .ok_or_else(|| anyhow!("digits.csv: a row without a label"))?;
            Ok((features, label.trim().parse::<u32>()?))
        })
        .collect::<Result<_>>()?;
    let labels: Vec<u32> = rows.iter().map(|(_, label)| *label).collect();
    let (train, test) = stratified_split(&labels, 0.2, DATA_SEED);
    let write = |path: &Path, rows: &[(&str, u32)]| -> Result<()> {
        let mut body = String::with_capacity(rows.len() * 200);
        body.push_str(header);
        body.push('\n');
        for (features, label) in rows {
            body.push_str(features);
            body.push(',');
            body.push_str(&label.to_string());
            body.push('\n');
        }
        std::fs::write(path, body).with_context(|| format!("writing {}", path.display()))
    };
    let test_path = out.join("test.csv");
    write(
        &test_path,
        &test.iter().map(|index| rows[*index]).collect::<Vec<_>>(),
    )?;
    let mut shards = BTreeMap::new();
    let distinct = ["alice", "bob", "carol", "dave"];
    for (slot, name) in distinct.iter().enumerate() {
        let mut shard: Vec<(&str, u32)> = train
            .iter()
            .skip(slot)
            .step_by(distinct.len())
            .map(|index| rows[*index])
            .collect();
        if *name == "dave" {
            let mut shard_labels: Vec<u32> = shard.iter().map(|(_, label)| *label).collect();
            flip_labels(&mut shard_labels, 10, NOISY_FRACTION, DATA_SEED);
            for (row, label) in shard.iter_mut().zip(shard_labels) {
                row.1 = label;
            }
        }
        let path = out.join(format!("{name}.csv"));
        write(&path, &shard)?;
        shards.insert(name.to_string(), (path, shard.len()));
    }
    // Erin copies bob's rows in reverse order: a different file (an exact copy could not even
    // be registered, the ledger refuses content it already has), the same rows.
    let mut copied: Vec<(&str, u32)> = train
        .iter()
        .skip(1)
        .step_by(distinct.len())
        .map(|index| rows[*index])
        .collect();
    copied.reverse();
    let erin_path = out.join("erin.csv");
    write(&erin_path, &copied)?;
    shards.insert("erin".to_string(), (erin_path, copied.len()));
    Ok((shards, test_path))
}

fn expect_finalized(step: &str, response: &TransactionResponse) -> Result<()> {
    ensure!(
        response.status == "finalized",
        "{step}: transaction {} {}: {}",
        response.tx_hash,
        response.status,
        response.reason.as_deref().unwrap_or("")
    );
    eprintln!("  ✓ {step} (height {})", response.block.unwrap_or_default());
    Ok(())
}

fn pool_view(client: &Client, pool: u64) -> Result<RewardPoolView> {
    client.get(&format!("/v1/pools/{pool}"))
}

/// Polls the pool until `ready` holds.
fn wait_for_pool(
    client: &Client,
    pool: u64,
    what: &str,
    ready: impl Fn(&RewardPoolView) -> bool,
) -> Result<RewardPoolView> {
    poll_until(what, CHAIN_WAIT_MS_MAX, || {
        let view = pool_view(client, pool)?;
        Ok(ready(&view).then_some(view))
    })
}

fn wait_for_height(client: &Client, height: u64) -> Result<()> {
    poll_until(&format!("height {height}"), CHAIN_WAIT_MS_MAX, || {
        Ok((client.status()?.height >= height).then_some(()))
    })
}

/// Runs the rewards part on the demo's devnet. `demo_cli` points at it and its home.
pub fn walk(demo_cli: &Cli, client: &Client, data: &Path, home: &Path) -> Result<RewardsOutcome> {
    let keystore = Keystore::new(home);
    eprintln!("Paid by value: shards → valuation → challenge → committee → payout");
    let (shards, test_path) = write_shards(data, home)?;

    // Accounts beyond the dev ones: a trainer, a dishonest evaluator, and verifiers, funded by
    // alice.
    let alice = keystore.load("alice")?;
    let trainer = keystore.create("trainer")?;
    let mallory = keystore.create("mallory")?;
    let fund = |to: Address, amount: Amount, step: &str| -> Result<()> {
        let response = client.send(&alice, Call::Transfer { to, amount }, None)?;
        expect_finalized(step, &response)
    };
    fund(
        trainer.address(),
        POOL_AMOUNT + EVALUATOR_STAKE + 1_000,
        "alice funds the trainer",
    )?;
    fund(
        mallory.address(),
        EVALUATOR_STAKE + 1_000,
        "alice funds mallory, an evaluator",
    )?;
    let mut verifiers = Vec::new();
    for index in 1..=VERIFIERS {
        let verifier = keystore.create(&format!("verifier-{index}"))?;
        fund(
            verifier.address(),
            VERIFIER_BOND + 1_000,
            &format!("alice funds verifier-{index}"),
        )?;
        let response = client.send(
            &verifier,
            Call::Bond {
                role: Role::Verifier,
                amount: VERIFIER_BOND,
            },
            None,
        )?;
        expect_finalized(
            &format!("verifier-{index} bonds {VERIFIER_BOND}"),
            &response,
        )?;
        verifiers.push(verifier);
    }

    // Contributors store their shards on the network (`asset add`): each becomes an asset whose
    // encrypted, erasure-coded shards sit with six providers under deals.
    let mut assets: BTreeMap<String, AssetId> = BTreeMap::new();
    let mut deals: Vec<u64> = Vec::new();
    for (name, description) in CONTRIBUTORS {
        let (path, rows) = &shards[name];
        let added = crate::data::add(
            demo_cli,
            client,
            crate::data::AddRequest {
                name: Some(&format!("digits shard ({name})")),
                ..crate::data::AddRequest::new(
                    path,
                    name,
                    // Training and derivatives allowed (so the shard can join a federated
                    // session), with a 10% royalty on what is derived from it.
                    Terms {
                        ai_training: true,
                        derivatives: true,
                        royalty_bps: SHARD_ROYALTY_BPS,
                        ..Terms::default()
                    },
                )
            },
        )?;
        eprintln!(
            "  ✓ {name} stores a shard of {rows} digits rows ({description}): encrypted, 4+2 shards, {} deals",
            added.shards.len()
        );
        let asset = added.asset_id;
        deals.extend(added.shards.iter().map(|placement| placement.deal));
        assets.insert(name.to_string(), asset);
    }

    // The trainer funds a pool for the five assets against its test set.
    let (test_root, _) = hash_file(&test_path)?;
    let mut pool_assets: Vec<AssetId> = assets.values().copied().collect();
    pool_assets.sort();
    let response = client.send(
        &trainer,
        Call::CreateRewardPool(CreateRewardPool {
            task: "digits classification, exact KNN-Shapley K=5".into(),
            test_set_root: test_root,
            assets: pool_assets,
            amount: POOL_AMOUNT,
            evaluator_stake: EVALUATOR_STAKE,
            challenge_window_blocks: CHALLENGE_WINDOW_BLOCKS,
        }),
        None,
    )?;
    expect_finalized("the trainer funds a reward pool of 1_000_000", &response)?;
    let pool = created_pool(&response).ok_or_else(|| anyhow!("no pool id in the receipt"))?;

    // The honest valuation, one file per contributor (file order decides duplicates: bob's
    // rows come before erin's copy).
    let request = ValuationRequest {
        train: CONTRIBUTORS
            .iter()
            .map(|(name, _)| shards[*name].0.clone())
            .collect(),
        test: test_path.clone(),
        parameters: Parameters::new(Method::Knn, "label"),
    };
    let honest =
        value_files(&request, &tributary_valuation::NoProgress).context("valuing the shards")?;
    let honest_path = home.join("valuation-honest.json");
    honest.write(&honest_path)?;
    // Mallory's report claims dave's noisy shard is worth half the pool.
    let mut dishonest = honest.clone();
    let dave = dishonest.shares_bps.get("dave").copied().unwrap_or(0);
    let others: u32 = 10_000 - dave;
    let target_others: u32 = 5_000;
    let mut assigned = 0u32;
    let names: Vec<String> = dishonest.shares_bps.keys().cloned().collect();
    for name in &names {
        if name != "dave" {
            let share = dishonest.shares_bps[name];
            let scaled = (share * target_others).checked_div(others).unwrap_or(0);
            dishonest.shares_bps.insert(name.clone(), scaled);
            assigned += scaled;
        }
    }
    dishonest
        .shares_bps
        .insert("dave".into(), 10_000 - assigned);
    let dishonest_path = home.join("valuation-mallory.json");
    dishonest.write(&dishonest_path)?;

    let mappings: BTreeMap<String, AssetId> = assets.clone();
    let view = pool_view(client, pool)?;
    let dishonest_claim = report_claim(&dishonest_path, &mappings, &view)?;
    let honest_claim = report_claim(&honest_path, &mappings, &view)?;
    let response = client.send(
        &mallory,
        Call::SubmitValuation {
            pool,
            valuation: dishonest_claim.clone(),
        },
        None,
    )?;
    expect_finalized(
        "mallory submits a valuation giving dave's noisy shard 50%",
        &response,
    )?;
    let response = client.send(
        &trainer,
        Call::ChallengeValuation {
            pool,
            valuation: honest_claim.clone(),
        },
        None,
    )?;
    expect_finalized(
        "the trainer challenges it with the recomputed KNN-Shapley report",
        &response,
    )?;

    // The committee is drawn from the next block's beacon; its members recompute and vote.
    let view = wait_for_pool(client, pool, "the committee draw", |view| {
        view.challenge
            .as_ref()
            .is_some_and(|challenge| !challenge.committee.is_empty())
    })?;
    let committee = view
        .challenge
        .as_ref()
        .map(|challenge| challenge.committee.clone())
        .unwrap_or_default();
    eprintln!(
        "  ✓ committee of {} drawn from the beacon: {}",
        committee.len(),
        committee
            .iter()
            .filter_map(|member| verifiers
                .iter()
                .position(|v| v.address() == *member)
                .map(|index| format!("verifier-{}", index + 1)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let reports = [dishonest_path.clone(), honest_path.clone()];
    for member in &committee {
        let view = pool_view(client, pool)?;
        if view.challenge.is_none() {
            break; // decided by a majority already
        }
        let index = verifiers
            .iter()
            .position(|v| v.address() == *member)
            .ok_or_else(|| anyhow!("committee member {member} is not a demo verifier"))?;
        let decision = decide(&view, &reports, &mappings)?;
        let response = client.send(
            &verifiers[index],
            Call::VoteValuation {
                pool,
                for_challenger: decision.for_challenger,
            },
            None,
        )?;
        expect_finalized(
            &format!(
                "verifier-{} recomputes both reports and votes for the {}",
                index + 1,
                if decision.for_challenger {
                    "challenger"
                } else {
                    "standing valuation"
                }
            ),
            &response,
        )?;
    }
    let view = wait_for_pool(client, pool, "the challenge's resolution", |view| {
        view.challenge.is_none()
    })?;
    let standing = view
        .valuation
        .as_ref()
        .ok_or_else(|| anyhow!("the pool lost its valuation"))?;
    let challenger_won = standing.evaluator == trainer.address();
    let deadline = standing.challenge_deadline_height.unwrap_or_default();
    wait_for_height(client, deadline + 1)?;
    let response = client.send(&trainer, Call::ClaimRewards { pool }, None)?;
    expect_finalized("the pool pays out by the honest shares", &response)?;

    // What each contributor earned.
    let allocated: BTreeMap<AssetId, (u16, Amount)> = allocations(&response)
        .into_iter()
        .map(|(asset, bps, amount)| (asset, (bps, amount)))
        .collect();
    let receipt_events = response
        .receipt
        .as_ref()
        .map(|receipt| receipt.events.clone())
        .unwrap_or_default();
    let mut contributors = Vec::new();
    let mut problems = Vec::new();
    for (name, description) in CONTRIBUTORS {
        let asset = assets[name];
        let address = keystore.load(name)?.address();
        let payout: Amount = receipt_events
            .iter()
            .map(|event| match event {
                Event::RevenuePaid { to, amount, .. } if *to == address => *amount,
                _ => 0,
            })
            .sum();
        let (share_bps, allocated_amount) = allocated.get(&asset).copied().unwrap_or((0, 0));
        if payout != allocated_amount {
            problems.push(format!(
                "{name} was paid {payout} but allocated {allocated_amount}"
            ));
        }
        contributors.push(ContributorOutcome {
            contributor: name.to_string(),
            shard: description.to_string(),
            rows: shards[name].1,
            asset,
            value: honest.contributor_values.get(name).copied().unwrap_or(0.0),
            share_bps,
            payout: payout.to_string(),
        });
    }
    let total: Amount = contributors
        .iter()
        .map(|c| c.payout.parse::<Amount>().unwrap_or(0))
        .sum();
    if total != POOL_AMOUNT {
        problems.push(format!("the pool paid {total}, not {POOL_AMOUNT}"));
    }
    if !challenger_won {
        problems.push("the dishonest valuation survived its challenge".into());
    }
    let clean_lowest = contributors
        .iter()
        .filter(|c| c.shard == "clean")
        .map(|c| c.share_bps)
        .min()
        .unwrap_or(0);
    for contributor in &contributors {
        if contributor.shard != "clean" && contributor.share_bps >= clean_lowest {
            problems.push(format!(
                "{} ({}) earned {} bps, not less than every clean shard",
                contributor.contributor, contributor.shard, contributor.share_bps
            ));
        }
    }
    // Storage: alice reads her shard back from the providers, and every deal proves an epoch.
    let read_path = home.join("alice.read.csv");
    crate::data::get(demo_cli, client, assets["alice"], "alice", &read_path)?;
    let read_back_identical = std::fs::read(&read_path)? == std::fs::read(&shards["alice"].0)?;
    eprintln!(
        "  ✓ alice reads her shard back from 4 of its 6 providers: {}",
        if read_back_identical {
            "identical bytes"
        } else {
            "DIFFERENT BYTES"
        }
    );
    if !read_back_identical {
        problems.push("alice's shard read back differs from her file".into());
    }
    let evaluation_folder = store_evaluation_folder(demo_cli, client, home, &test_path)?;
    if !evaluation_folder.identical {
        problems
            .push("the trainer's evaluation folder read back differs from what it stored".into());
    }
    let licensee = licensee_reads(demo_cli, client, home, assets["bob"], &shards["bob"].0)?;
    if !licensee.refused_without_license {
        problems.push("the trainer was not refused bob's key without a license".into());
    }
    if !licensee.read_back_identical {
        problems.push("the trainer's read of bob's shard differs from his file".into());
    }
    if licensee.shards_over_iroh < licensee.shards_read {
        problems.push(format!(
            "only {} of the trainer's {} shards came over iroh-blobs",
            licensee.shards_over_iroh, licensee.shards_read
        ));
    }
    let (proven_epochs, providers) = poll_until(
        "every storage deal to prove an epoch",
        CHAIN_WAIT_MS_MAX,
        || {
            let mut proven = 0u64;
            let mut providers = std::collections::BTreeSet::new();
            let mut all_proven = true;
            for deal in &deals {
                let view: tributary_types::DealView = client.get(&format!("/v1/deals/{deal}"))?;
                proven += u64::from(view.epochs_paid);
                all_proven &= view.epochs_paid > 0;
                providers.insert(view.provider);
            }
            Ok(all_proven.then_some((proven, providers.len())))
        },
    )?;
    eprintln!(
        "  ✓ each of the {} storage deals answered a beacon-drawn challenge with a proof ({proven_epochs} epochs proven)",
        deals.len()
    );
    let repair = lose_and_repair(demo_cli, client, home, assets["carol"], &shards["carol"].0)?;
    if !repair.read_back_identical {
        problems.push("carol's shard read back after the repair differs from her file".into());
    }
    Ok(RewardsOutcome {
        pool,
        amount: POOL_AMOUNT.to_string(),
        dishonest_report_root: dishonest_claim.report_root.to_string(),
        honest_report_root: honest_claim.report_root.to_string(),
        committee,
        challenger_won,
        contributors,
        storage: StorageOutcome {
            deals: deals.len(),
            providers,
            proven_epochs,
            read_back_identical,
            evaluation_folder,
            licensee,
            repair,
        },
        problems,
        shards: shards
            .iter()
            .filter_map(|(name, (path, _))| {
                assets
                    .get(name)
                    .map(|asset| (name.clone(), (path.clone(), *asset)))
            })
            .collect(),
        test_file: test_path,
    })
}

/// Prints the rewards part as tables.
pub fn print(outcome: &RewardsOutcome) {
    println!(
        "Paid by value: reward pool {} ({} base units), exact KNN-Shapley (K=5) on digits",
        outcome.pool,
        output::units(outcome.amount.parse().unwrap_or(0))
    );
    let mut table = output::table(&[
        "contributor",
        "shard",
        "rows",
        "value",
        "share bps",
        "payout",
    ]);
    for contributor in &outcome.contributors {
        table.add_row(vec![
            contributor.contributor.clone(),
            contributor.shard.clone(),
            contributor.rows.to_string(),
            format!("{:.4}", contributor.value),
            contributor.share_bps.to_string(),
            output::units(contributor.payout.parse().unwrap_or(0)),
        ]);
    }
    println!("{table}");
    println!(
        "mallory's valuation (report {}) was {} by a committee of {} drawn from the beacon; the pool paid by the honest report {}",
        &outcome.dishonest_report_root[..12],
        if outcome.challenger_won {
            "voided"
        } else {
            "upheld"
        },
        outcome.committee.len(),
        &outcome.honest_report_root[..12],
    );
    println!(
        "Storage: {} deals across {} providers (encrypted, 4+2 shards per contributor), {} epochs proven; alice read hers back: {}",
        outcome.storage.deals,
        outcome.storage.providers,
        outcome.storage.proven_epochs,
        if outcome.storage.read_back_identical {
            "identical"
        } else {
            "DIFFERENT"
        }
    );
    let repair = &outcome.storage.repair;
    println!(
        "Repair: the provider of deal {} lost shard {}; a challenge caught it, {} of its stake was slashed, and {} rebuilt the shard and took the deal over; carol's read afterwards: {}",
        repair.deal,
        repair.shard,
        repair.slashed,
        repair.repaired_by,
        if repair.read_back_identical {
            "identical"
        } else {
            "DIFFERENT"
        }
    );
    let licensee = &outcome.storage.licensee;
    println!(
        "Licensed read: the {} was {} without a license; with one, {}'s key agent delivered the data key, wrapped to the trainer's own key, to {} providers and it read {}'s shard back ({} of {} shards over iroh-blobs): {}",
        licensee.reader,
        if licensee.refused_without_license {
            "refused"
        } else {
            "NOT refused"
        },
        licensee.owner,
        licensee.envelope_providers,
        licensee.owner,
        licensee.shards_over_iroh,
        licensee.shards_read,
        if licensee.read_back_identical {
            "identical"
        } else {
            "DIFFERENT"
        }
    );
}
