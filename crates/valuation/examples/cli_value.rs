//! Compiles the CLI glue `crates/cli/src/value.rs` exactly as the `tributary` binary embeds it, so this crate
//! can check it builds and run it end to end: `cargo run -p tributary-valuation --example cli_value -- value
//! --train data/iris.csv --test data/iris.csv --label label`.

#[path = "../../cli/src/value.rs"]
mod value;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "tributary")]
struct Cli {
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Value training rows and contributors.
    Value(value::ValueArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Value(args) => value::run(args, cli.json),
    }
}
