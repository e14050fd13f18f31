//! `tributary value`: value training rows and contributors, and `tributary value verify REPORT`.
//!
//! Thin glue over `tributary_valuation`: arguments are validated by clap, turned into a
//! `ValuationRequest`, and the library does the work (reading, valuation, duplicates, shares, report).
//! This module only prints (a table, or JSON with `--json`) and shows a progress bar on a terminal.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use comfy_table::Table;
use indicatif::{ProgressBar, ProgressStyle};
use tributary_valuation::Progress;
use tributary_valuation::report::{
    Method, ModelKind, Parameters, ValuationReport, ValuationRequest, value_files,
    verify_with_progress,
};

/// Value the rows of training files (and their contributors) against a test file.
#[derive(clap::Args, Clone, Debug)]
#[command(subcommand_negates_reqs = true, args_conflicts_with_subcommands = true)]
pub struct ValueArgs {
    #[command(subcommand)]
    pub command: Option<ValueCommand>,
    /// Training file(s), CSV or Parquet (`.parquet`); repeat for one file per contributor (in order:
    /// earlier files win duplicates).
    #[arg(long, required = true, num_args = 1..)]
    pub train: Vec<PathBuf>,
    /// Test file, CSV or Parquet (`.parquet`) (defines the utility).
    #[arg(long, required = true)]
    pub test: Option<PathBuf>,
    /// The label column.
    #[arg(long, required = true)]
    pub label: Option<String>,
    /// A column naming each row's contributor.
    #[arg(long)]
    pub contributor: Option<String>,
    /// Valuation method.
    #[arg(long, value_enum, default_value_t = MethodArg::Knn)]
    pub method: MethodArg,
    /// Number of neighbours.
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    /// Seed for the sampling methods.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Model retrained by tmc, banzhaf, beta and loo.
    #[arg(long, value_enum, default_value_t = ModelArg::Knn)]
    pub model: ModelArg,
    /// Permutations (tmc, beta) or subsets (banzhaf).
    #[arg(long, default_value_t = 200)]
    pub samples: usize,
    /// Truncated KNN-Shapley: error bound per test point (knn only).
    #[arg(long)]
    pub epsilon: Option<f64>,
    /// Threshold KNN-Shapley radius (required for tknn).
    #[arg(long)]
    pub tau: Option<f64>,
    /// Flag rows whose cosine similarity to an earlier row with the same label is at least this.
    #[arg(long)]
    pub near_duplicate_cosine: Option<f64>,
    /// Write the full report (JSON) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(clap::Subcommand, Clone, Debug)]
pub enum ValueCommand {
    /// Recompute a report from its inputs and check it (shares within ±1 bps).
    Verify {
        /// The report file.
        report: PathBuf,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum MethodArg {
    Knn,
    SoftKnn,
    Tknn,
    Tmc,
    Banzhaf,
    Beta,
    Loo,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ModelArg {
    Knn,
    Logistic,
}

impl From<MethodArg> for Method {
    fn from(method: MethodArg) -> Self {
        match method {
            MethodArg::Knn => Method::Knn,
            MethodArg::SoftKnn => Method::SoftKnn,
            MethodArg::Tknn => Method::Tknn,
            MethodArg::Tmc => Method::Tmc,
            MethodArg::Banzhaf => Method::Banzhaf,
            MethodArg::Beta => Method::Beta,
            MethodArg::Loo => Method::Loo,
        }
    }
}

impl From<ModelArg> for ModelKind {
    fn from(model: ModelArg) -> Self {
        match model {
            ModelArg::Knn => ModelKind::Knn,
            ModelArg::Logistic => ModelKind::Logistic,
        }
    }
}

/// A progress bar on stderr, hidden when stderr is not a terminal or output is JSON.
struct Bar(ProgressBar);

impl Bar {
    fn new(json: bool, message: &'static str) -> Self {
        if json || !std::io::stderr().is_terminal() {
            return Self(ProgressBar::hidden());
        }
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta})") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message);
        Self(bar)
    }
}

impl Progress for Bar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
        self.0.set_position(0);
    }

    fn advance(&self, done: u64) {
        self.0.inc(done);
    }
}

/// Runs `tributary value ...`.
pub fn run(args: ValueArgs, json: bool) -> Result<()> {
    if let Some(ValueCommand::Verify { report }) = args.command {
        return run_verify(&report, json);
    }
    // Stage 1: validate arguments.
    let test = args.test.context("--test is required")?;
    let label = args.label.context("--label is required")?;
    if args.train.is_empty() {
        bail!("--train is required");
    }
    let method = Method::from(args.method);
    if args.epsilon.is_some() && method != Method::Knn {
        bail!("--epsilon applies to --method knn only");
    }
    if method == Method::Tknn && args.tau.is_none() {
        bail!("--method tknn needs --tau RADIUS");
    }
    let mut parameters = Parameters::new(method, label);
    parameters.k = args.k;
    parameters.seed = args.seed;
    parameters.model = args.model.into();
    parameters.samples = args.samples;
    parameters.epsilon = args.epsilon;
    parameters.tau = args.tau;
    parameters.near_duplicate_cosine = args.near_duplicate_cosine;
    parameters.contributor_column = args.contributor.clone();
    let request = ValuationRequest {
        train: args.train,
        test,
        parameters,
    };

    // Stage 2: compute.
    let bar = Bar::new(json, "valuing");
    let report = value_files(&request, &bar).context("valuation failed")?;
    bar.0.finish_and_clear();
    if let Some(path) = &args.report {
        report
            .write(path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if json {
        print_json(&report, args.report.as_deref())?;
    } else {
        print_table(&report);
        if let Some(path) = &args.report {
            println!("report written to {}", path.display());
        }
    }
    Ok(())
}

fn print_json(report: &ValuationReport, report_path: Option<&Path>) -> Result<()> {
    let contributors: BTreeMap<&String, u32> = report
        .shares_bps
        .iter()
        .map(|(name, &bps)| (name, bps))
        .collect();
    let output = serde_json::json!({
        "method": report.parameters.method,
        "values": report.values(),
        "contributors": contributors,
        "duplicates": report.rows.iter().filter(|row| row.duplicate_of.is_some()).count(),
        "report": report_path.map(|path| path.display().to_string()),
    });
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}

fn print_table(report: &ValuationReport) {
    let duplicates = report
        .rows
        .iter()
        .filter(|row| row.duplicate_of.is_some())
        .count();
    if !report.shares_bps.is_empty() {
        let mut rows: Vec<(&String, u32)> = report
            .shares_bps
            .iter()
            .map(|(name, &bps)| (name, bps))
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut table = Table::new();
        table.set_header(vec![
            "contributor",
            "rows",
            "duplicates",
            "value",
            "share (bps)",
            "share",
        ]);
        for (name, bps) in rows {
            let mine = report
                .rows
                .iter()
                .filter(|row| row.contributor.as_ref() == Some(name));
            let (count, copies) = mine.fold((0, 0), |(count, copies), row| {
                (count + 1, copies + usize::from(row.duplicate_of.is_some()))
            });
            let value = report.contributor_values.get(name).copied().unwrap_or(0.0);
            table.add_row(vec![
                name.clone(),
                count.to_string(),
                copies.to_string(),
                format!("{value:.6}"),
                bps.to_string(),
                format!("{:.2}%", f64::from(bps) / 100.0),
            ]);
        }
        println!("{table}");
    } else {
        // No contributors: the ten highest and lowest rows.
        let mut order: Vec<usize> = (0..report.rows.len()).collect();
        order.sort_by(|&a, &b| {
            report.rows[b]
                .value
                .total_cmp(&report.rows[a].value)
                .then(a.cmp(&b))
        });
        let shown = 10.min(order.len());
        let mut table = Table::new();
        table.set_header(vec!["rank", "file", "line", "value", "duplicate of"]);
        let mut add = |rank: usize, index: usize| {
            let row = &report.rows[index];
            let file = report
                .inputs
                .get(row.file)
                .map_or("?", |input| input.path.as_str());
            let duplicate = row
                .duplicate_of
                .map_or(String::new(), |d| format!("row {}", d.original + 1));
            table.add_row(vec![
                (rank + 1).to_string(),
                file.to_owned(),
                row.line.to_string(),
                format!("{:.6}", row.value),
                duplicate,
            ]);
        };
        for (rank, &index) in order.iter().enumerate().take(shown) {
            add(rank, index);
        }
        for (rank, &index) in order
            .iter()
            .enumerate()
            .skip(order.len().saturating_sub(shown).max(shown))
        {
            add(rank, index);
        }
        println!("{table}");
    }
    println!(
        "method {:?}, K = {}, {} training rows, {} duplicates",
        report.parameters.method,
        report.parameters.k,
        report.rows.len(),
        duplicates
    );
}

fn run_verify(report: &Path, json: bool) -> Result<()> {
    let bar = Bar::new(json, "verifying");
    let outcome = verify_with_progress(report, &bar)
        .with_context(|| format!("verifying {}", report.display()))?;
    bar.0.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        let mut table = Table::new();
        table.set_header(vec!["input", "BLAKE3", "unchanged"]);
        for input in &outcome.inputs {
            table.add_row(vec![
                input.path.clone(),
                input.actual.chars().take(16).collect::<String>(),
                if input.matches {
                    "yes".to_owned()
                } else {
                    "NO".to_owned()
                },
            ]);
        }
        println!("{table}");
        println!(
            "shares: max difference {} bps; values: max difference {:e}",
            outcome.share_difference_bps_max, outcome.value_difference_max
        );
    }
    if !outcome.matches {
        bail!(
            "report does not verify: {}",
            outcome.reason.unwrap_or_default()
        );
    }
    if !json {
        println!("report verifies");
    }
    Ok(())
}
