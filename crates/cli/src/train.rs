//! `tributary train`: train a model locally (and register it as an asset), and the privacy accountant.

use crate::commands::{RegisterRequest, client, register};
use crate::{Cli, output};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use tributary_learn::{
    Architecture, Dataset, Model, ModelSpec, OptimizerSpec, Standardizer, TrainConfig,
};
use tributary_types::{AssetKind, Terms};

#[derive(Subcommand, Debug)]
pub enum TrainCommand {
    /// Train a classifier on one table (CSV or Parquet with a label column) and save its weights as
    /// safetensors; with --register, register the weights file as a model asset.
    Local(LocalArgs),
    /// The privacy spent by DP-SGD / DP-FedAvg: ε at δ after T Poisson-subsampled Gaussian steps
    /// (a Rényi-DP accountant matching Google's dp-accounting RdpAccountant).
    Privacy(PrivacyArgs),
    /// Open a federated session on the ledger from a spec file (TOML) and run its aggregator:
    /// contributors' rows never leave them; updates are combined with secure aggregation (and DP);
    /// the model is registered with its bill of materials and the reward paid by contribution.
    Federated {
        /// The session spec (TOML; see the README's "Federated training" section).
        #[arg(long)]
        spec: PathBuf,
        /// The trainer's key (it opens, aggregates and finalizes the session).
        #[arg(long)]
        from: String,
        /// Where to write the model's weights (default: federated-session-ID.safetensors).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Join a federated session as a contributor: joins with your asset on the ledger, then trains
    /// locally and sends only masked updates to the aggregator named in the session.
    Join {
        /// The session id.
        session: u64,
        /// The owner's key of the asset.
        #[arg(long)]
        from: String,
        /// The asset joining (its terms must allow AI training and derivatives).
        #[arg(long)]
        asset: String,
        /// The asset's rows (CSV or Parquet with the label column).
        #[arg(long)]
        data: PathBuf,
        /// The label column.
        #[arg(long, default_value = "label")]
        label: String,
    },
}

/// `tributary train privacy` options.
#[derive(Args, Debug)]
pub struct PrivacyArgs {
    /// Probability q that each record (or client) takes part in a step.
    #[arg(long)]
    pub sampling_rate: f64,
    /// Noise standard deviation over the clipping norm (σ).
    #[arg(long)]
    pub noise_multiplier: f64,
    /// Steps (or rounds) composed.
    #[arg(long)]
    pub steps: u64,
    /// δ of the (ε, δ) guarantee.
    #[arg(long, default_value_t = 1e-5)]
    pub delta: f64,
}

/// What `train privacy --json` prints.
#[derive(Serialize)]
struct PrivacyOutput {
    /// ε, or null when unbounded (no noise).
    epsilon: Option<f64>,
    /// The Rényi order that gave the tightest ε.
    order: f64,
    delta: f64,
    sampling_rate: f64,
    noise_multiplier: f64,
    steps: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModelArg {
    /// Multinomial logistic regression.
    Softmax,
    /// A multi-layer perceptron (hidden widths from --hidden).
    Mlp,
    /// A small CNN for square single-channel images (the features are the pixels).
    Cnn,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OptimizerArg {
    /// SGD with momentum.
    Sgd,
    /// Adam.
    Adam,
}

/// `tributary train local` options.
#[derive(Args, Debug)]
pub struct LocalArgs {
    /// The training table.
    #[arg(long)]
    pub data: PathBuf,
    /// A held-out table with the same columns (default: a seeded stratified 20% of --data).
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// The label column.
    #[arg(long, default_value = "label")]
    pub label: String,
    /// The model.
    #[arg(long, value_enum, default_value = "softmax")]
    pub model: ModelArg,
    /// Hidden layer widths of the MLP (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub hidden: Vec<usize>,
    /// Passes over the training data.
    #[arg(long, default_value_t = 30)]
    pub epochs: u32,
    /// Rows per mini-batch.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// The optimizer.
    #[arg(long, value_enum, default_value = "sgd")]
    pub optimizer: OptimizerArg,
    /// Step size (default: 0.01 for SGD with momentum, 0.005 for Adam).
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// L2 weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Seed of the initial weights, the split and the shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the weights (default: MODEL-DATA.safetensors in the current directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Register the weights file as a model asset (needs --from).
    #[arg(long, requires = "from")]
    pub register: bool,
    /// The registering key.
    #[arg(long)]
    pub from: Option<String>,
    /// A display name for the registered model (default: the file name).
    #[arg(long)]
    pub name: Option<String>,
}

/// What `train local --json` prints.
#[derive(Serialize)]
struct LocalOutput {
    /// Held-out accuracy, 0..1.
    accuracy: f64,
    /// Held-out mean cross-entropy.
    loss: f64,
    /// The model asset's id, or null when not registered.
    model: Option<String>,
    file: PathBuf,
    parameters: usize,
    train_rows: usize,
    test_rows: usize,
    epochs: Vec<EpochLine>,
}

#[derive(Serialize)]
struct EpochLine {
    epoch: u32,
    loss: f32,
    accuracy: f64,
}

pub fn train(cli: &Cli, command: &TrainCommand) -> Result<()> {
    match command {
        TrainCommand::Local(args) => local(cli, args),
        TrainCommand::Privacy(args) => privacy(cli, args),
        TrainCommand::Federated { spec, from, out } => {
            crate::federated::federated(cli, spec, from, out.as_deref())
        }
        TrainCommand::Join {
            session,
            from,
            asset,
            data,
            label,
        } => crate::federated::join(cli, *session, from, asset, data, label),
    }
}

fn privacy(cli: &Cli, args: &PrivacyArgs) -> Result<()> {
    let report = tributary_learn::privacy::epsilon(
        args.sampling_rate,
        args.noise_multiplier,
        args.steps,
        args.delta,
    )?;
    let epsilon = report.epsilon.is_finite().then_some(report.epsilon);
    if cli.json {
        return output::json(&PrivacyOutput {
            epsilon,
            order: report.order,
            delta: args.delta,
            sampling_rate: args.sampling_rate,
            noise_multiplier: args.noise_multiplier,
            steps: args.steps,
        });
    }
    match epsilon {
        Some(epsilon) => println!(
            "ε = {epsilon:.4} at δ = {} (Rényi order {}) after {} steps at q = {}, σ = {}",
            args.delta, report.order, args.steps, args.sampling_rate, args.noise_multiplier
        ),
        None => println!(
            "ε is unbounded: with σ = {} nothing hides a record (add noise)",
            args.noise_multiplier
        ),
    }
    Ok(())
}

fn local(cli: &Cli, args: &LocalArgs) -> Result<()> {
    let data = Dataset::read(&args.data, &args.label, None)
        .with_context(|| format!("cannot load {}", args.data.display()))?;
    let (mut training, mut test) = match &args.test {
        Some(path) => {
            let test = Dataset::read(path, &args.label, Some(data.classes()))
                .with_context(|| format!("cannot load {}", path.display()))?;
            if test.feature_count() != data.feature_count() {
                bail!(
                    "{} has {} features; {} has {}",
                    path.display(),
                    test.feature_count(),
                    args.data.display(),
                    data.feature_count()
                );
            }
            (data, test)
        }
        None => data.stratified_split(0.2, args.seed)?,
    };
    let standardizer = Standardizer::fit(&training)?;
    training.standardize(&standardizer)?;
    test.standardize(&standardizer)?;

    let architecture = match args.model {
        ModelArg::Softmax => Architecture::Softmax,
        ModelArg::Mlp => Architecture::Mlp {
            hidden: args.hidden.clone(),
        },
        ModelArg::Cnn => Architecture::named("cnn", training.feature_count())?,
    };
    let spec = ModelSpec {
        architecture,
        features: training.feature_count(),
        classes: training.classes().len(),
    };
    let model = Model::new(spec, args.seed)?;
    let optimizer = match args.optimizer {
        OptimizerArg::Sgd => OptimizerSpec::Sgd {
            learning_rate: args.learning_rate.unwrap_or(0.01),
            momentum: args.momentum,
            weight_decay: args.weight_decay,
        },
        OptimizerArg::Adam => OptimizerSpec::Adam {
            learning_rate: args.learning_rate.unwrap_or(0.005),
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: args.weight_decay,
        },
    };
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        optimizer,
        proximal_mu: 0.0,
        seed: args.seed,
    };
    config.validate()?;

    let bar = progress(cli.json, u64::from(args.epochs));
    let mut lines = Vec::new();
    let mut failure = None;
    tributary_learn::train(&model, &training, &config, |report| {
        match model.evaluate(&test) {
            Ok(evaluation) => {
                bar.set_message(format!(
                    "loss {:.4} · held-out accuracy {:.4}",
                    report.loss, evaluation.accuracy
                ));
                lines.push(EpochLine {
                    epoch: report.epoch,
                    loss: report.loss,
                    accuracy: evaluation.accuracy,
                });
            }
            Err(error) => failure = Some(error),
        }
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    if let Some(error) = failure {
        return Err(error.into());
    }
    let evaluation = model.evaluate(&test)?;

    let file = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&args.data, args.model));
    model
        .save(&file, training.classes(), &standardizer)
        .with_context(|| format!("cannot save the model to {}", file.display()))?;

    let mut model_id = None;
    if args.register {
        let from = args.from.as_deref().unwrap_or_default();
        let (response, asset_id) = register(
            cli,
            &client(cli),
            RegisterRequest {
                file: &file,
                from,
                kind: AssetKind::Model,
                name: args.name.as_deref(),
                owners: Vec::new(),
                parents: Vec::new(),
                terms: Terms::default(),
                fee: None,
            },
        )?;
        if response.status != "finalized" {
            bail!(
                "registering the model failed: {}",
                response.reason.as_deref().unwrap_or("unknown reason")
            );
        }
        model_id = Some(asset_id.to_string());
    }

    if cli.json {
        return output::json(&LocalOutput {
            accuracy: evaluation.accuracy,
            loss: evaluation.loss,
            model: model_id,
            file,
            parameters: model.parameter_count(),
            train_rows: training.rows(),
            test_rows: test.rows(),
            epochs: lines,
        });
    }
    let mut table = output::table(&["epoch", "train loss", "held-out accuracy"]);
    let shown = lines.len().min(10);
    let step = lines.len().div_ceil(shown.max(1)).max(1);
    for (index, line) in lines.iter().enumerate() {
        if index % step == 0 || index + 1 == lines.len() {
            table.add_row(vec![
                line.epoch.to_string(),
                format!("{:.4}", line.loss),
                format!("{:.4}", line.accuracy),
            ]);
        }
    }
    println!("{table}");
    println!(
        "{} parameters trained on {} rows; held-out accuracy {:.4} on {} rows (loss {:.4})",
        model.parameter_count(),
        training.rows(),
        evaluation.accuracy,
        test.rows(),
        evaluation.loss
    );
    println!("weights written to {}", file.display());
    if let Some(id) = model_id {
        println!("registered as model asset {id}");
    }
    Ok(())
}

fn default_out(data: &Path, model: ModelArg) -> PathBuf {
    let stem = data
        .file_stem()
        .map(|stem| stem.to_string_lossy().to_string())
        .unwrap_or_else(|| "data".into());
    let name = match model {
        ModelArg::Softmax => "softmax",
        ModelArg::Mlp => "mlp",
        ModelArg::Cnn => "cnn",
    };
    PathBuf::from(format!("{name}-{stem}.safetensors"))
}

fn progress(json: bool, length: u64) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length);
    if let Ok(style) = ProgressStyle::with_template("training [{bar:30}] epoch {pos}/{len} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Show a model's bill of materials: which data (and their roots and licenses), which rounds,
    /// the privacy spent and each contributor's share.
    Show {
        /// The model asset id.
        id: String,
    },
}

pub fn model(cli: &Cli, command: &ModelCommand) -> Result<()> {
    match command {
        ModelCommand::Show { id } => {
            let id = crate::commands::parse_asset_id(id)?;
            let bill: tributary_types::views::BillOfMaterialsView =
                crate::commands::client(cli).get(&format!("/v1/models/{id}/bom"))?;
            if cli.json {
                return output::json(&bill);
            }
            println!("model {}", bill.model);
            println!(
                "  trained in session {} by {} (aggregator {}) for {:?}",
                bill.session, bill.trainer, bill.aggregator, bill.task
            );
            println!(
                "  aggregation {:?}, secure aggregation {}, {} rounds committed, spec root {}",
                bill.aggregation,
                if bill.secure_aggregation { "on" } else { "off" },
                bill.rounds.len(),
                bill.model_spec_root
            );
            match bill.epsilon_milli {
                Some(epsilon) => println!(
                    "  differential privacy: ε = {:.3} at δ = {:e}",
                    epsilon as f64 / 1_000.0,
                    bill.delta_atto as f64 / tributary_types::limits::ATTO_PER_UNIT as f64
                ),
                None => println!("  differential privacy: off"),
            }
            let mut table = output::table(&[
                "input asset",
                "contributor",
                "license",
                "royalty (bps)",
                "share (bps)",
            ]);
            for input in &bill.inputs {
                table.add_row(vec![
                    input.asset.to_string(),
                    input.contributor.to_string(),
                    input.license_token.to_string(),
                    input.royalty_bps.to_string(),
                    input.share_bps.to_string(),
                ]);
            }
            println!("{table}");
            println!("  reward pool {} pays the contributors by share", bill.pool);
            Ok(())
        }
    }
}
