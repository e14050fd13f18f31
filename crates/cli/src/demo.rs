//! `tributary demo`: the main job. Starts a devnet in a temporary home and walks the chain
//! register → license → derivative → revenue through the real HTTP API with the datasets shipped
//! in `data/`, then prints who paid and who was paid what and checks that the books balance to
//! the last base unit. Then the paid-by-value part ([`crate::demo_rewards`]): shards of digits
//! valued by KNN-Shapley, a dishonest valuation voided by a beacon-drawn committee, and a reward
//! pool paid by the honest shares.

use crate::{
    Cli,
    client::Client,
    commands::{RegisterRequest, minted_token, payouts, register},
    output,
};
use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::Args;
use serde::Serialize;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};
use tributary_node::{
    api::{StatusResponse, TransactionResponse},
    keystore::Keystore,
};
use tributary_types::{AccountView, Address, Amount, AssetKind, Call, Terms};

/// `tributary demo` options.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the shipped datasets are (default: `data/` of this checkout).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Number of validators.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Keep the demo's home directory instead of deleting it.
    #[arg(long)]
    pub keep: bool,
}

/// One line of the report.
#[derive(Serialize)]
struct Step {
    step: String,
    tx_hash: String,
    height: u64,
}

/// One account in the books.
#[derive(Serialize)]
struct Books {
    account: String,
    address: Address,
    paid: String,
    received: String,
    fees: String,
    balance_change: String,
}

fn data_dir(args: &DemoArgs) -> Result<PathBuf> {
    if let Some(dir) = &args.data {
        return Ok(dir.clone());
    }
    let candidates = [
        PathBuf::from("data"),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"),
    ];
    candidates
        .into_iter()
        .find(|dir| dir.join("iris.csv").is_file())
        .ok_or_else(|| anyhow!("cannot find the shipped datasets (data/iris.csv); run from the repository root or pass --data DIR"))
}

/// Writes a dataset derived from iris and wine: iris with each wine class's mean alcohol joined
/// on the class label. Returns its path.
fn derive_dataset(data: &Path, out: &Path) -> Result<PathBuf> {
    let mut wine = csv::Reader::from_path(data.join("wine.csv")).context("reading wine.csv")?;
    let mut sums: BTreeMap<String, (f64, u32)> = BTreeMap::new();
    for record in wine.records() {
        let record = record.context("reading wine.csv")?;
        let alcohol: f64 = record.get(0).unwrap_or("0").parse().unwrap_or(0.0);
        let label = record.get(record.len() - 1).unwrap_or("").to_string();
        let entry = sums.entry(label).or_insert((0.0, 0));
        entry.0 += alcohol;
        entry.1 += 1;
    }
    let mut iris = csv::Reader::from_path(data.join("iris.csv")).context("reading iris.csv")?;
    let path = out.join("iris_with_wine_alcohol.csv");
    let mut writer = csv::Writer::from_path(&path).context("writing the derived dataset")?;
    let mut header: Vec<String> = iris.headers()?.iter().map(str::to_string).collect();
    header.insert(header.len() - 1, "wine_mean_alcohol".into());
    writer.write_record(&header)?;
    for record in iris.records() {
        let record = record.context("reading iris.csv")?;
        let mut fields: Vec<String> = record.iter().map(str::to_string).collect();
        let label = fields.last().cloned().unwrap_or_default();
        let mean = sums
            .get(&label)
            .map(|(sum, count)| sum / f64::from(*count))
            .unwrap_or(0.0);
        fields.insert(fields.len() - 1, format!("{mean:.4}"));
        writer.write_record(&fields)?;
    }
    writer.flush()?;
    Ok(path)
}

pub fn run(cli: &Cli, args: &DemoArgs) -> Result<()> {
    let data = data_dir(args)?;
    // Six providers hold each contributor's 4+2 shards; the seventh is there to repair a lost one.
    let devnet = crate::local_devnet::LocalDevnet::start("tributary-demo-", args.validators, 7)?;
    let result = walk(
        cli,
        &Client::new(&devnet.url()),
        &data,
        devnet.home(),
        devnet.validators(),
    );
    devnet.stop(args.keep);
    result
}

struct Ledgerbook {
    paid: BTreeMap<String, Amount>,
    received: BTreeMap<String, Amount>,
    fees: BTreeMap<String, Amount>,
    steps: Vec<Step>,
}

impl Ledgerbook {
    fn record(
        &mut self,
        step: &str,
        payer: &str,
        response: &TransactionResponse,
        names: &BTreeMap<Address, String>,
    ) -> Result<()> {
        ensure!(
            response.status == "finalized",
            "{step}: transaction {} {}: {}",
            response.tx_hash,
            response.status,
            response.reason.as_deref().unwrap_or("")
        );
        let receipt = response
            .receipt
            .as_ref()
            .ok_or_else(|| anyhow!("{step}: no receipt"))?;
        *self.fees.entry(payer.to_string()).or_default() += receipt.fee_paid;
        // What the payer spent: a license's price, or else the revenue it paid in (the first
        // revenue event; later ones are royalties forwarded up the lineage from that payment).
        let minted = receipt.events.iter().find_map(|event| match event {
            tributary_types::Event::LicenseMinted { price, .. } => Some(*price),
            _ => None,
        });
        let revenue = receipt.events.iter().find_map(|event| match event {
            tributary_types::Event::RevenueReceived { amount, .. } => Some(*amount),
            _ => None,
        });
        *self.paid.entry(payer.to_string()).or_default() += minted.or(revenue).unwrap_or(0);
        for (to, amount) in payouts(response) {
            let name = names.get(&to).cloned().unwrap_or_else(|| to.to_string());
            *self.received.entry(name).or_default() += amount;
        }
        self.steps.push(Step {
            step: step.to_string(),
            tx_hash: response.tx_hash.clone(),
            height: response.block.unwrap_or_default(),
        });
        eprintln!("  ✓ {step} (height {})", response.block.unwrap_or_default());
        Ok(())
    }
}

fn walk(
    cli: &Cli,
    client: &Client,
    data: &Path,
    home: &Path,
    validators: &[Address],
) -> Result<()> {
    let demo_cli = Cli {
        node: client_base(client),
        home: Some(home.to_path_buf()),
        json: true,
        command: crate::Command::Status,
    };
    let keystore = Keystore::new(home);
    let accounts = ["alice", "bob", "carol", "dave", "erin"];
    let mut names: BTreeMap<Address, String> = BTreeMap::new();
    for name in accounts {
        names.insert(keystore.load(name)?.address(), name.to_string());
    }
    for (index, validator) in validators.iter().enumerate() {
        names.insert(*validator, format!("validator-{index}"));
    }
    let balances = |client: &Client| -> Result<BTreeMap<String, Amount>> {
        names
            .iter()
            .map(|(address, name)| {
                let view: AccountView = client.get(&format!("/v1/accounts/{address}"))?;
                Ok((name.clone(), view.balance))
            })
            .collect()
    };
    // The storage providers register themselves as the devnet starts: wait for them, so the
    // books below see only the demo's own transactions.
    crate::client::poll_until("the storage providers to register", 60_000, || {
        let providers: Vec<tributary_types::ProviderView> = client.get("/v1/providers")?;
        Ok((providers.len() >= 7).then_some(()))
    })?;
    let start_status: StatusResponse = client.status()?;
    let before = balances(client)?;
    let mut book = Ledgerbook {
        paid: BTreeMap::new(),
        received: BTreeMap::new(),
        fees: BTreeMap::new(),
        steps: Vec::new(),
    };
    eprintln!(
        "Tributary demo: register → license → derivative → revenue on a {}-validator devnet",
        validators.len()
    );
    let open_terms = |price: Amount, royalty_bps: u16| Terms {
        commercial_use: true,
        ai_training: true,
        derivatives: true,
        attribution_required: true,
        royalty_bps,
        price,
        expiry_height: None,
        license_cap: None,
    };
    // 1. Contributors register their datasets.
    let (response, iris) = register(
        &demo_cli,
        client,
        RegisterRequest {
            file: &data.join("iris.csv"),
            from: "alice",
            kind: AssetKind::Dataset,
            name: Some("iris"),
            owners: Vec::new(),
            parents: Vec::new(),
            terms: open_terms(50_000, 1_000),
            fee: None,
        },
    )?;
    book.record(
        "alice registers iris.csv (price 50_000, royalty 10%)",
        "alice",
        &response,
        &names,
    )?;
    let (response, wine) = register(
        &demo_cli,
        client,
        RegisterRequest {
            file: &data.join("wine.csv"),
            from: "bob",
            kind: AssetKind::Dataset,
            name: Some("wine"),
            owners: Vec::new(),
            parents: Vec::new(),
            terms: open_terms(30_000, 500),
            fee: None,
        },
    )?;
    book.record(
        "bob registers wine.csv (price 30_000, royalty 5%)",
        "bob",
        &response,
        &names,
    )?;
    // 2. A trainer licenses both.
    let carol = keystore.load("carol")?;
    let response = client.send(&carol, Call::BuyLicense { asset: iris }, None)?;
    let iris_token = minted_token(&response).ok_or_else(|| anyhow!("no license token minted"))?;
    book.record("carol buys a license to iris", "carol", &response, &names)?;
    let response = client.send(&carol, Call::BuyLicense { asset: wine }, None)?;
    let wine_token = minted_token(&response).ok_or_else(|| anyhow!("no license token minted"))?;
    book.record("carol buys a license to wine", "carol", &response, &names)?;
    // 3. She registers a derivative, co-owned with dave, consuming both licenses.
    let derived = derive_dataset(data, home)?;
    let (response, derivative) = register(
        &demo_cli,
        client,
        RegisterRequest {
            file: &derived,
            from: "carol",
            kind: AssetKind::Dataset,
            name: Some("iris+wine features"),
            owners: vec![
                (keystore.load("carol")?.address(), 7_000),
                (keystore.load("dave")?.address(), 3_000),
            ],
            parents: vec![(iris, iris_token), (wine, wine_token)],
            terms: open_terms(100_000, 0),
            fee: None,
        },
    )?;
    book.record(
        "carol registers the derivative (carol 70%, dave 30%)",
        "carol",
        &response,
        &names,
    )?;
    // 4. Revenue on the derivative flows to its owners and up to the parents.
    let erin = keystore.load("erin")?;
    let response = client.send(&erin, Call::BuyLicense { asset: derivative }, None)?;
    book.record(
        "erin buys a license to the derivative (100_000)",
        "erin",
        &response,
        &names,
    )?;
    let response = client.send(
        &erin,
        Call::PayRevenue {
            asset: derivative,
            amount: 1_000_001,
        },
        None,
    )?;
    book.record(
        "erin pays 1_000_001 revenue to the derivative",
        "erin",
        &response,
        &names,
    )?;

    // The books.
    let after = balances(client)?;
    let total_fees: Amount = book.fees.values().sum();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    // Fees go to whichever validator proposed each block; together they must get all of them.
    let mut validator_income: i128 = 0;
    let mut ordered: Vec<String> = accounts.iter().map(|name| name.to_string()).collect();
    ordered.extend((0..validators.len()).map(|index| format!("validator-{index}")));
    for name in &ordered {
        let paid = book.paid.get(name).copied().unwrap_or(0);
        let received = book.received.get(name).copied().unwrap_or(0);
        let fees = book.fees.get(name).copied().unwrap_or(0);
        let change = after[name] as i128 - before[name] as i128;
        let expected = received as i128 - paid as i128 - fees as i128;
        if name.starts_with("validator-") {
            validator_income += change;
        } else if change != expected {
            problems.push(format!(
                "{name}: balance changed by {change}, expected {expected}"
            ));
        }
        rows.push(Books {
            account: name.clone(),
            address: *names
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(a, _)| a)
                .ok_or_else(|| anyhow!("missing"))?,
            paid: paid.to_string(),
            received: received.to_string(),
            fees: if name.starts_with("validator-") {
                // Proposers collect the fees (with one validator, all of them).
                output::delta(change)
            } else {
                output::delta(-(fees as i128))
            },
            balance_change: change.to_string(),
        });
    }
    if validator_income != total_fees as i128 {
        problems.push(format!(
            "validators gained {validator_income} but {total_fees} was paid in fees"
        ));
    }
    let total_change: i128 = names
        .values()
        .map(|name| after[name] as i128 - before[name] as i128)
        .sum();
    if total_change != 0 {
        problems.push(format!(
            "balances of all accounts changed by {total_change} in total"
        ));
    }
    // Paid by value: shards, valuation, a challenged dishonest report, payout.
    let rewards = crate::demo_rewards::walk(&demo_cli, client, data, home)?;
    problems.extend(rewards.problems.iter().cloned());
    // Private collaboration: federated training over the same shards, paid by contribution.
    let training = crate::demo_training::walk(client, home, &rewards)?;
    problems.extend(training.problems.iter().cloned());
    let final_status: StatusResponse = client.status()?;
    if start_status.total_supply != final_status.total_supply {
        problems.push(format!(
            "total supply changed from {} to {}",
            start_status.total_supply, final_status.total_supply
        ));
    }
    let balanced = problems.is_empty();
    if cli.json {
        output::json(&serde_json::json!({
            "chain_id": final_status.chain_id,
            "validators": validators.len(),
            "height": final_status.height,
            "state_root": final_status.state_root,
            "assets": {"iris": iris.to_string(), "wine": wine.to_string(), "derivative": derivative.to_string()},
            "steps": book.steps,
            "books": rows,
            "rewards": rewards,
            "training": training,
            "total_supply": final_status.total_supply,
            "balanced": balanced,
            "problems": problems,
        }))?;
    } else {
        println!();
        println!("Assets");
        let mut table = output::table(&["asset", "id", "parents"]);
        table.add_row(vec![
            "iris (alice)".to_string(),
            iris.to_string(),
            String::new(),
        ]);
        table.add_row(vec![
            "wine (bob)".to_string(),
            wine.to_string(),
            String::new(),
        ]);
        table.add_row(vec![
            "derivative (carol 70%, dave 30%)".to_string(),
            derivative.to_string(),
            "iris @10%, wine @5%".to_string(),
        ]);
        println!("{table}");
        println!("Who paid and who was paid (base units)");
        let mut table = output::table(&["account", "paid", "received", "fees", "balance change"]);
        for row in &rows {
            table.add_row(vec![
                row.account.clone(),
                output::units(row.paid.parse().unwrap_or(0)),
                output::units(row.received.parse().unwrap_or(0)),
                row.fees.clone(),
                output::delta(row.balance_change.parse().unwrap_or(0)),
            ]);
        }
        println!("{table}");
        crate::demo_rewards::print(&rewards);
        crate::demo_training::print(&training);
        println!(
            "chain {} · {} validator(s) · height {} · state root {}",
            final_status.chain_id,
            validators.len(),
            final_status.height,
            final_status.state_root
        );
        println!(
            "total supply {} before and {} after: {}",
            start_status.total_supply,
            final_status.total_supply,
            if balanced {
                "the books balance to the unit"
            } else {
                "THE BOOKS DO NOT BALANCE"
            }
        );
    }
    if !balanced {
        bail!("the books do not balance: {}", problems.join("; "));
    }
    Ok(())
}

fn client_base(client: &Client) -> String {
    client.base().to_string()
}
