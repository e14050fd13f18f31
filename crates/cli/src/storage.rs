//! `tributary storage`: storage providers and deals, as the ledger records them.

use crate::client::Client;
use crate::{Cli, commands::client, commands::parse_asset_id, output};
use anyhow::Result;
use clap::Subcommand;
use tributary_types::{Address, Amount, DealView, ProviderView, Role};

#[derive(Subcommand, Debug)]
pub enum StorageCommand {
    /// Run a storage provider as its own process: bond stake, register an offer, take and prove
    /// shards, serve readers, repair failed deals. Runs until Ctrl-C.
    Provide(crate::provide::ProvideArgs),
    /// List the registered storage providers: capacity, committed bytes, price, endpoint.
    Providers,
    /// List storage deals (optionally of one asset): status, escrow, open challenge.
    Deals {
        /// Only deals of this asset.
        #[arg(long)]
        asset: Option<String>,
    },
    /// Summarise storage: providers, deals by status, proven epochs.
    Status,
}

/// Stake `account` holds bonded as a storage provider.
pub(crate) fn provider_stake(client: &Client, account: &Address) -> Result<Amount> {
    let bonds: Vec<tributary_types::BondView> =
        client.get(&format!("/v1/accounts/{account}/bonds"))?;
    Ok(bonds
        .iter()
        .filter(|bond| bond.role == Role::StorageProvider)
        .map(|bond| bond.amount)
        .sum())
}

fn deals(cli: &Cli, asset: Option<&str>) -> Result<Vec<DealView>> {
    let path = match asset {
        Some(asset) => format!("/v1/deals?asset={}", parse_asset_id(asset)?),
        None => "/v1/deals".to_string(),
    };
    client(cli).get(&path)
}

pub fn storage(cli: &Cli, command: &StorageCommand) -> Result<()> {
    match command {
        StorageCommand::Provide(args) => crate::provide::provide(cli, args),
        StorageCommand::Providers => {
            let providers: Vec<ProviderView> = client(cli).get("/v1/providers")?;
            if cli.json {
                return output::json(&providers);
            }
            let mut table = output::table(&[
                "provider",
                "capacity",
                "committed",
                "price/GiB-epoch",
                "endpoint",
            ]);
            for provider in providers {
                table.add_row(vec![
                    provider.address.to_string(),
                    format!("{} MiB", provider.capacity_bytes >> 20),
                    format!("{} B", provider.committed_bytes),
                    output::units(provider.price_per_gib_epoch),
                    provider.endpoint,
                ]);
            }
            println!("{table}");
            Ok(())
        }
        StorageCommand::Deals { asset } => {
            let deals = deals(cli, asset.as_deref())?;
            if cli.json {
                return output::json(&deals);
            }
            let mut table = output::table(&[
                "deal",
                "asset",
                "shard",
                "provider",
                "status",
                "escrow",
                "paid epochs",
                "challenge",
            ]);
            for deal in deals {
                table.add_row(vec![
                    deal.id.to_string(),
                    deal.asset.to_string()[..12].to_string(),
                    deal.shard_index.to_string(),
                    deal.provider.to_string(),
                    deal.status,
                    output::units(deal.escrow),
                    format!("{}/{}", deal.epochs_paid, deal.epochs),
                    match (deal.challenge_epoch, deal.challenge_answered) {
                        (Some(epoch), true) => format!("epoch {epoch}: proven"),
                        (Some(epoch), false) => format!("epoch {epoch}: open"),
                        (None, _) => String::new(),
                    },
                ]);
            }
            println!("{table}");
            Ok(())
        }
        StorageCommand::Status => {
            let providers: Vec<ProviderView> = client(cli).get("/v1/providers")?;
            let deals = deals(cli, None)?;
            let count = |status: &str| deals.iter().filter(|deal| deal.status == status).count();
            let summary = serde_json::json!({
                "providers": providers.len(),
                "capacity_bytes": providers.iter().map(|p| p.capacity_bytes).sum::<u64>(),
                "committed_bytes": providers.iter().map(|p| p.committed_bytes).sum::<u64>(),
                "deals": {
                    "proposed": count("proposed"),
                    "active": count("active"),
                    "failed": count("failed"),
                    "closed": count("closed"),
                },
                "proven_epochs": deals.iter().map(|deal| u64::from(deal.epochs_paid)).sum::<u64>(),
            });
            if cli.json {
                return output::json(&summary);
            }
            println!(
                "{} providers offering {} MiB ({} B committed)",
                summary["providers"],
                summary["capacity_bytes"].as_u64().unwrap_or(0) >> 20,
                summary["committed_bytes"]
            );
            println!(
                "deals: {} proposed, {} active, {} failed, {} closed; {} epochs proven",
                summary["deals"]["proposed"],
                summary["deals"]["active"],
                summary["deals"]["failed"],
                summary["deals"]["closed"],
                summary["proven_epochs"]
            );
            Ok(())
        }
    }
}
