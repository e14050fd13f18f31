//! `tributary rewards`: reward pools that pay assets by a valuation of their data.
//!
//! A valuation report (`tributary value --report`) names contributors; the ledger pays assets. Each
//! command that reads a report maps contributors to assets with `--asset NAME=ASSET_ID` (a
//! contributor already named by an asset id needs no mapping); contributors mapped to one asset
//! have their shares added. The report's commitment on chain is the BLAKE3 of the report file.

use crate::{
    Cli,
    commands::{client, finish, hash_file, keystore, parse_asset_id},
    output,
};
use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};
use tributary_node::api::TransactionResponse;
use tributary_types::{
    Amount, AssetId, Call, CreateRewardPool, Event, RewardPoolView, ValuationClaim,
    limits::BASIS_POINTS_TOTAL,
};
use tributary_valuation::report::{InputRole, ValuationReport, verify};

#[derive(Subcommand, Debug)]
pub enum RewardsCommand {
    /// Fund a reward pool that pays the listed assets by a valuation against a test set.
    Create {
        /// The funding key.
        #[arg(long)]
        from: String,
        /// An eligible asset id (repeat for each).
        #[arg(long = "asset", required = true)]
        assets: Vec<String>,
        /// The test set valuations must use (its BLAKE3 root is recorded).
        #[arg(long)]
        test_set: PathBuf,
        /// The reward, in base units.
        #[arg(long)]
        amount: Amount,
        /// What an evaluator, and a challenger, must put up.
        #[arg(long, default_value_t = 10_000)]
        stake: Amount,
        /// Blocks during which a valuation can be challenged.
        #[arg(long, default_value_t = 20)]
        window: u64,
        /// What the data is valued for.
        #[arg(long, default_value = "data valuation")]
        task: String,
        /// Fee in base units (default: the chain's minimum).
        #[arg(long)]
        fee: Option<Amount>,
    },
    /// Post a valuation report's shares to a pool, putting up the pool's stake.
    Submit(ClaimArgs),
    /// Dispute a pool's valuation with a different report, putting up the same stake.
    Challenge(ClaimArgs),
    /// As a drawn committee member: re-run both reports and vote for the one that holds.
    Vote {
        /// The pool id.
        pool: u64,
        /// The voting key (a verifier on the committee).
        #[arg(long)]
        from: String,
        /// Report files to check (the standing valuation's and the challenger's); each is matched
        /// to its side by its BLAKE3 root.
        #[arg(long = "report", required = true)]
        reports: Vec<PathBuf>,
        /// Contributor → asset mappings, as in `submit`.
        #[arg(long = "asset")]
        assets: Vec<String>,
        /// Fee in base units (default: the chain's minimum).
        #[arg(long)]
        fee: Option<Amount>,
    },
    /// Pay out a pool whose challenge window has passed (anyone may).
    Claim {
        /// The pool id.
        pool: u64,
        /// The key that signs and pays the fee.
        #[arg(long)]
        from: String,
        /// Fee in base units (default: the chain's minimum).
        #[arg(long)]
        fee: Option<Amount>,
    },
    /// Show a pool: valuation, challenge, committee and votes.
    Show {
        /// The pool id.
        pool: u64,
    },
    /// List reward pools.
    List,
}

#[derive(clap::Args, Debug)]
pub struct ClaimArgs {
    /// The pool id.
    pub pool: u64,
    /// The valuation report (`tributary value --contributor ... --report FILE`).
    #[arg(long)]
    pub report: PathBuf,
    /// Map a contributor in the report to an asset: NAME=ASSET_ID (repeat for each).
    #[arg(long = "asset")]
    pub assets: Vec<String>,
    /// The key that posts it and puts up the stake.
    #[arg(long)]
    pub from: String,
    /// Fee in base units (default: the chain's minimum).
    #[arg(long)]
    pub fee: Option<Amount>,
}

/// Parses `NAME=ASSET_ID` mappings.
fn parse_mappings(mappings: &[String]) -> Result<BTreeMap<String, AssetId>> {
    mappings
        .iter()
        .map(|mapping| {
            let (name, id) = mapping.rsplit_once('=').ok_or_else(|| {
                anyhow!("--asset `{mapping}` must look like CONTRIBUTOR=ASSET_ID")
            })?;
            Ok((name.to_string(), parse_asset_id(id)?))
        })
        .collect()
}

/// Reads `path`, maps its contributors to assets and checks it against `pool`: the test set's
/// root must be the pool's, every asset eligible, and the shares sum to 10000. Returns what goes
/// on chain: the report file's root and the per-asset shares.
pub fn report_claim(
    path: &Path,
    mappings: &BTreeMap<String, AssetId>,
    pool: &RewardPoolView,
) -> Result<ValuationClaim> {
    let report = ValuationReport::read(path)
        .with_context(|| format!("cannot read the valuation report {}", path.display()))?;
    let (report_root, _) = hash_file(path)?;
    if report.shares_bps.is_empty() {
        bail!(
            "{} has no per-contributor shares: run `tributary value` with --contributor COLUMN or one --train file per contributor",
            path.display()
        );
    }
    let test_root = report
        .inputs
        .iter()
        .find(|input| input.role == InputRole::Test)
        .map(|input| input.blake3.clone())
        .unwrap_or_default();
    if test_root != pool.test_set_root.to_string() {
        bail!(
            "{} was computed on test set {test_root}, but pool {} requires {}",
            path.display(),
            pool.id,
            pool.test_set_root
        );
    }
    let mut by_asset: BTreeMap<AssetId, u32> = BTreeMap::new();
    for (contributor, bps) in &report.shares_bps {
        let asset = match mappings.get(contributor) {
            Some(asset) => *asset,
            None => contributor.parse().map_err(|_| {
                anyhow!(
                    "contributor `{contributor}` in {} has no asset: pass --asset {contributor}=ASSET_ID",
                    path.display()
                )
            })?,
        };
        if pool.assets.binary_search(&asset).is_err() {
            bail!(
                "contributor `{contributor}` maps to asset {asset}, which pool {} does not pay",
                pool.id
            );
        }
        *by_asset.entry(asset).or_default() += bps;
    }
    let total: u32 = by_asset.values().sum();
    if total != u32::from(BASIS_POINTS_TOTAL) {
        bail!(
            "the shares in {} sum to {total} bps, not 10000",
            path.display()
        );
    }
    let shares = by_asset
        .into_iter()
        .map(|(asset, bps)| Ok((asset, u16::try_from(bps)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(ValuationClaim {
        report_root,
        shares,
    })
}

fn fetch_pool(cli: &Cli, pool: u64) -> Result<RewardPoolView> {
    client(cli).get(&format!("/v1/pools/{pool}"))
}

pub fn rewards(cli: &Cli, command: &RewardsCommand) -> Result<()> {
    match command {
        RewardsCommand::Create {
            from,
            assets,
            test_set,
            amount,
            stake,
            window,
            task,
            fee,
        } => {
            let key = keystore(cli).load(from)?;
            let mut ids = assets
                .iter()
                .map(|asset| parse_asset_id(asset))
                .collect::<Result<Vec<_>>>()?;
            ids.sort();
            ids.dedup();
            let (test_set_root, _) = hash_file(test_set)?;
            let response = client(cli).send(
                &key,
                Call::CreateRewardPool(CreateRewardPool {
                    task: task.clone(),
                    test_set_root,
                    assets: ids,
                    amount: *amount,
                    evaluator_stake: *stake,
                    challenge_window_blocks: *window,
                }),
                *fee,
            )?;
            let pool = created_pool(&response);
            finish(
                cli,
                &response,
                serde_json::json!({ "pool": pool }),
                &format!(
                    "created reward pool {} holding {}",
                    pool.map(|p| p.to_string()).unwrap_or_default(),
                    output::units(*amount)
                ),
            )
        }
        RewardsCommand::Submit(args) | RewardsCommand::Challenge(args) => {
            let challenge = matches!(command, RewardsCommand::Challenge(_));
            let key = keystore(cli).load(&args.from)?;
            let pool = fetch_pool(cli, args.pool)?;
            let claim = report_claim(&args.report, &parse_mappings(&args.assets)?, &pool)?;
            let call = if challenge {
                Call::ChallengeValuation {
                    pool: args.pool,
                    valuation: claim.clone(),
                }
            } else {
                Call::SubmitValuation {
                    pool: args.pool,
                    valuation: claim.clone(),
                }
            };
            let response = client(cli).send(&key, call, args.fee)?;
            let verb = if challenge { "challenged" } else { "submitted" };
            finish(
                cli,
                &response,
                serde_json::json!({ "pool": args.pool, "report_root": claim.report_root }),
                &format!(
                    "{verb} a valuation of pool {} (report {})",
                    args.pool, claim.report_root
                ),
            )
        }
        RewardsCommand::Vote {
            pool,
            from,
            reports,
            assets,
            fee,
        } => {
            let key = keystore(cli).load(from)?;
            let view = fetch_pool(cli, *pool)?;
            let decision = decide(&view, reports, &parse_mappings(assets)?)?;
            if !cli.json {
                println!("{}", decision.explanation);
            }
            let response = client(cli).send(
                &key,
                Call::VoteValuation {
                    pool: *pool,
                    for_challenger: decision.for_challenger,
                },
                *fee,
            )?;
            finish(
                cli,
                &response,
                serde_json::json!({
                    "pool": pool,
                    "for_challenger": decision.for_challenger,
                    "explanation": decision.explanation,
                }),
                &format!(
                    "voted for the {} on pool {pool}",
                    if decision.for_challenger {
                        "challenger's valuation"
                    } else {
                        "standing valuation"
                    }
                ),
            )
        }
        RewardsCommand::Claim { pool, from, fee } => {
            let key = keystore(cli).load(from)?;
            let response = client(cli).send(&key, Call::ClaimRewards { pool: *pool }, *fee)?;
            let allocations = allocations(&response);
            if !cli.json && response.status == "finalized" {
                let mut table = output::table(&["asset", "share bps", "paid"]);
                for (asset, bps, amount) in &allocations {
                    table.add_row(vec![
                        asset.to_string(),
                        bps.to_string(),
                        output::units(*amount),
                    ]);
                }
                println!("{table}");
            }
            finish(
                cli,
                &response,
                serde_json::json!({
                    "pool": pool,
                    "allocations": allocations.iter().map(|(asset, bps, amount)| serde_json::json!({
                        "asset": asset, "share_bps": bps, "amount": amount.to_string(),
                    })).collect::<Vec<_>>(),
                }),
                &format!("paid out reward pool {pool}"),
            )
        }
        RewardsCommand::Show { pool } => {
            let view = fetch_pool(cli, *pool)?;
            if cli.json {
                return output::json(&view);
            }
            print_pool(&view);
            Ok(())
        }
        RewardsCommand::List => {
            let pools: Vec<RewardPoolView> = client(cli).get("/v1/pools")?;
            if cli.json {
                return output::json(&pools);
            }
            let mut table = output::table(&["pool", "status", "amount", "assets", "task"]);
            for pool in pools {
                table.add_row(vec![
                    pool.id.to_string(),
                    pool.status,
                    output::units(pool.amount),
                    pool.assets.len().to_string(),
                    pool.task,
                ]);
            }
            println!("{table}");
            Ok(())
        }
    }
}

fn print_pool(view: &RewardPoolView) {
    println!(
        "pool {} ({}): {} for {} assets, task {:?}",
        view.id,
        view.status,
        output::units(view.amount),
        view.assets.len(),
        view.task
    );
    if let Some(valuation) = &view.valuation {
        println!(
            "valuation by {} (report {}), challengeable until height {}",
            valuation.evaluator,
            valuation.report_root,
            valuation.challenge_deadline_height.unwrap_or_default()
        );
        let mut table = output::table(&["asset", "share bps"]);
        for share in &valuation.shares {
            table.add_row(vec![share.asset.to_string(), share.bps.to_string()]);
        }
        println!("{table}");
    }
    if let Some(challenge) = &view.challenge {
        println!(
            "challenged by {} (report {}); committee: {}; votes: {}",
            challenge.valuation.evaluator,
            challenge.valuation.report_root,
            if challenge.committee.is_empty() {
                "not drawn yet".to_string()
            } else {
                challenge
                    .committee
                    .iter()
                    .map(|member| member.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            challenge.votes.len()
        );
    }
}

/// A committee member's decision and why.
pub struct Decision {
    /// The vote.
    pub for_challenger: bool,
    /// One line per side.
    pub explanation: String,
}

/// Checks each side's report: the file must be the one committed to, recompute to its own
/// shares (`tributary value verify`), and map to exactly the shares on chain (±1 bps). Votes for
/// the challenger only when its side holds and the standing one does not.
pub fn decide(
    view: &RewardPoolView,
    reports: &[PathBuf],
    mappings: &BTreeMap<String, AssetId>,
) -> Result<Decision> {
    let valuation = view
        .valuation
        .as_ref()
        .ok_or_else(|| anyhow!("pool {} has no valuation", view.id))?;
    let challenge = view
        .challenge
        .as_ref()
        .ok_or_else(|| anyhow!("pool {} has no open challenge to vote on", view.id))?;
    let mut lines = Vec::new();
    let mut holds = |side: &str, expected: &tributary_types::ValuationView| -> Result<bool> {
        let mut file = None;
        for report in reports {
            if hash_file(report)?.0 == expected.report_root {
                file = Some(report);
            }
        }
        let Some(path) = file else {
            lines.push(format!(
                "{side}: no --report file has root {}; counted as not holding",
                expected.report_root
            ));
            return Ok(false);
        };
        let outcome =
            verify(path).with_context(|| format!("cannot recompute {}", path.display()))?;
        if !outcome.matches {
            lines.push(format!(
                "{side}: {} does not recompute: {}",
                path.display(),
                outcome.reason.unwrap_or_default()
            ));
            return Ok(false);
        }
        let claim = report_claim(path, mappings, view)?;
        let on_chain: BTreeMap<AssetId, u16> = expected
            .shares
            .iter()
            .map(|share| (share.asset, share.bps))
            .collect();
        let recomputed: BTreeMap<AssetId, u16> = claim.shares.into_iter().collect();
        let assets: std::collections::BTreeSet<&AssetId> =
            on_chain.keys().chain(recomputed.keys()).collect();
        let differs = assets.into_iter().any(|asset| {
            let a = on_chain.get(asset).copied().unwrap_or(0);
            let b = recomputed.get(asset).copied().unwrap_or(0);
            a.abs_diff(b) > 1
        });
        if differs {
            lines.push(format!(
                "{side}: {} recomputes, but the shares on chain are not the report's",
                path.display()
            ));
            return Ok(false);
        }
        lines.push(format!(
            "{side}: {} recomputes to the shares on chain",
            path.display()
        ));
        Ok(true)
    };
    let standing_holds = holds("standing valuation", valuation)?;
    let challenger_holds = holds("challenger", &challenge.valuation)?;
    Ok(Decision {
        for_challenger: challenger_holds && !standing_holds,
        explanation: lines.join("\n"),
    })
}

/// The pool id a `CreateRewardPool` receipt announces.
pub fn created_pool(response: &TransactionResponse) -> Option<u64> {
    response
        .receipt
        .as_ref()?
        .events
        .iter()
        .find_map(|event| match event {
            Event::RewardPoolCreated { pool, .. } => Some(*pool),
            _ => None,
        })
}

/// Per-asset allocations a `ClaimRewards` receipt announces.
pub fn allocations(response: &TransactionResponse) -> Vec<(AssetId, u16, Amount)> {
    response
        .receipt
        .as_ref()
        .map(|receipt| {
            receipt
                .events
                .iter()
                .filter_map(|event| match event {
                    Event::RewardAllocated {
                        asset,
                        share_bps,
                        amount,
                        ..
                    } => Some((*asset, *share_bps, *amount)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}
