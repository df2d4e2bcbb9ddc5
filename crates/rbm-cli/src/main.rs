//! The `rbm` command line: thin glue over the library.

mod bench;
mod dbn;
mod dbn_train;
mod eval;
mod recipe;
mod report;
mod train;

use eval::run_eval;
use train::*;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rbm::data::{load_mnist, Binarize, Mnist};
use rbm::data::{Standardize, Standardized};
use rbm::engine::{sample_rows, DEFAULT_PARTS};
use rbm::estimate::{base_rate_from_sums, base_rate_vbias, evaluate, Estimator, EvalOptions, Report};
use rbm::fit::{fit, Control, FitOptions, FitOutcome, Observer, Validation};
use rbm::gaussian::GaussianRbm;
use rbm::images::{filters_image, samples_image};
use rbm::modelfile::save_gaussian_model;
use rbm::modelfile::{load_checkpoint, load_model, save_checkpoint, save_model, write_atomic};
use rbm::split::{split_rows, Subset};
use rbm::train::{Method, TrainConfig, Trainer, Visible};
use rbm::{DataRows, Rbm, RbmError, Stream};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// println! that survives a closed stdout (`rbm train | head`): the run goes
/// on, writing its files; only the printing stops.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
pub(crate) use say;

/// The command line's names for the library's choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum MethodArg {
    /// contrastive divergence: each chain starts at the data's hidden sample
    Cd,
    /// persistent CD: the chains carry over from one update to the next
    Pcd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum VisibleArg {
    /// binary units, values in [0, 1]
    Bernoulli,
    /// real-valued units, N(mean, sigma^2) given the hidden units
    Gaussian,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BinarizeArg {
    /// keep the grey level p / 255
    None,
    /// 1 where p / 255 >= 0.5
    Threshold,
    /// 1 with probability p / 255, drawn once with a seed
    Stochastic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum EstimatorArg {
    /// exact when the smaller layer has at most 25 units, else AIS and RAISE side by side
    Auto,
    /// enumerate the smaller layer
    Exact,
    /// annealed importance sampling
    Ais,
    /// reverse annealing from the data (conservative)
    Raise,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Cd => Method::Cd,
            MethodArg::Pcd => Method::Pcd,
        }
    }
}

impl From<BinarizeArg> for Binarize {
    fn from(b: BinarizeArg) -> Self {
        match b {
            BinarizeArg::None => Binarize::None,
            BinarizeArg::Threshold => Binarize::Threshold,
            BinarizeArg::Stochastic => Binarize::Stochastic,
        }
    }
}

impl From<EstimatorArg> for Estimator {
    fn from(e: EstimatorArg) -> Self {
        match e {
            EstimatorArg::Auto => Estimator::Auto,
            EstimatorArg::Exact => Estimator::Exact,
            EstimatorArg::Ais => Estimator::Ais,
            EstimatorArg::Raise => Estimator::Raise,
        }
    }
}

/// The library's errors in the command line's words: a parameter's name
/// becomes its flag.
fn flagged(e: RbmError) -> anyhow::Error {
    const FLAGS: [(&str, &str); 21] = [
        ("k", "-k"),
        ("lr", "--lr"),
        ("batch_size", "--batch-size"),
        ("epochs", "--epochs"),
        ("n_hidden", "--hidden"),
        ("train_size", "--train-size"),
        ("n_parts", "--parts"),
        ("valid_fraction", "--valid-fraction"),
        ("momentum", "--momentum"),
        ("final_momentum", "--final-momentum"),
        ("weight_decay", "--weight-decay"),
        ("final_lr", "--final-lr"),
        ("sparsity_target", "--sparsity-target"),
        ("sparsity_cost", "--sparsity-cost"),
        ("offset_rate", "--offset-rate"),
        ("chains", "--persistent-chains"),
        ("temperatures", "--temperatures"),
        ("beta_min", "--beta-min"),
        ("centering", "--centering"),
        ("dropout_input", "--dropout-input"),
        ("dropout_hidden", "--dropout-hidden"),
    ];
    match &e {
        RbmError::Param { name, msg } => match FLAGS.iter().find(|(n, _)| n == name) {
            Some((_, flag)) => anyhow::anyhow!("{flag}: {msg}"),
            None => e.into(),
        },
        RbmError::Diverged { .. } => anyhow::anyhow!("{}", e.to_string().replace("(lr)", "(--lr)")),
        _ => e.into(),
    }
}

/// Restricted Boltzmann Machines: train, sample and evaluate binary RBMs on MNIST.
#[derive(Parser)]
#[command(name = "rbm", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train an RBM on MNIST (defaults: the tutorial's PCD-15 run) or on a .npy
    /// or .csv file, and write filters, samples, metrics and the model into
    /// the output directory.
    Train(Box<TrainArgs>),
    /// Draw the samples picture from a saved model.
    Sample(SampleArgs),
    /// Measure training and sampling speed against the matrix products' own speed.
    Bench(BenchArgs),
    /// Write the hidden units' probabilities p(h|v) for every image of a split
    /// (or row of a data file) as .npy.
    Features(FeaturesArgs),
    /// Draw a model's filters (the first 100 hidden units' weights) as a PNG.
    Filters(FiltersArgs),
    /// Estimate a model's average log-likelihood per image, in nats: a binary
    /// model's on binarised MNIST, a Gaussian one's on the rows of a data file.
    Eval(EvalArgs),
    /// Deep belief networks: train (pretraining and fine-tuning), eval, predict.
    #[command(subcommand)]
    Dbn(dbn::DbnCommand),
}

#[derive(Args)]
struct EvalArgs {
    /// The model file (model.safetensors).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// The images whose likelihood is estimated.
    #[arg(long, value_enum, default_value = "test")]
    split: Split,
    /// How grey pixels become binary: stochastic (1 with probability p/255,
    /// drawn once with --seed, as Salakhutdinov & Murray) or threshold (p/255 >= 0.5).
    #[arg(long, value_enum, default_value = "stochastic")]
    binarize: BinarizeArg,
    /// Seed of the binarisation, the annealing chains and RAISE's subset.
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// auto: exact when the smaller layer has at most 25 units, else AIS and RAISE side by side.
    #[arg(long, value_enum, default_value = "auto")]
    estimator: EstimatorArg,
    /// Independent AIS runs.
    #[arg(long, default_value_t = 100)]
    ais_runs: usize,
    /// AIS schedule length (intermediate temperatures, betas).
    #[arg(long, alias = "ais-betas", default_value_t = 14_500)]
    ais_steps: usize,
    /// While the AIS weights' effective sample size is under this fraction of
    /// the runs, run AIS again with twice the temperatures (0: never)...
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    ais_target_ess: f64,
    /// ...up to this many temperatures (116,000: at most three doublings of
    /// the default, about 3.5 minutes in all for 784 x 500 here).
    #[arg(long, value_name = "N", default_value_t = 116_000)]
    ais_max_betas: usize,
    /// RAISE: the number of images (a random subset of the split).
    #[arg(long, default_value_t = 1000)]
    raise_images: usize,
    /// RAISE schedule length.
    #[arg(long, default_value_t = RAISE_STEPS)]
    raise_steps: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Directory with the MNIST files; for a Gaussian model, the .npy or .csv
    /// file whose rows are evaluated.
    #[arg(long, value_name = "DIR|FILE")]
    data: Option<PathBuf>,
    /// A CSV column (by its header name) that holds labels, not data.
    #[arg(long, value_name = "NAME")]
    label_column: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// RAISE's default schedule length: 1,000 images finish in a few minutes here.
const RAISE_STEPS: usize = 14_500;

/// Which part of MNIST (the tutorial's split).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Split {
    /// the first 50,000 training images
    Train,
    /// the last 10,000 training images
    Valid,
    /// the 10,000 test images
    Test,
}

#[derive(Args)]
struct FeaturesArgs {
    /// The model file (model.safetensors).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// The images to transform (MNIST).
    #[arg(long, value_enum, default_value = "test")]
    split: Split,
    /// Output .npy file: float32, shape [rows, n_hidden].
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Directory with the MNIST files, or a .npy or .csv file whose rows are transformed.
    #[arg(long, value_name = "DIR|FILE")]
    data: Option<PathBuf>,
    /// A CSV column (by its header name) that holds labels, not data.
    #[arg(long, value_name = "NAME")]
    label_column: Option<String>,
    /// The rows' class labels: a 1-D integer .npy file, one per row of --data.
    #[arg(long, value_name = "FILE", conflicts_with = "label_column")]
    labels: Option<PathBuf>,
    /// Also write the rows' labels (MNIST's, --labels' or --label-column's)
    /// here: .npy, int64, shape [rows], in the order of the features.
    #[arg(long, value_name = "FILE")]
    labels_out: Option<PathBuf>,
}

#[derive(Args)]
struct FiltersArgs {
    /// The model file (model.safetensors).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Output PNG file.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The image shape HxW of the visible units (default: a square).
    #[arg(long, value_name = "HxW")]
    image_shape: Option<String>,
}

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Minibatch updates per timing.
    #[arg(long, default_value_t = 400)]
    pub updates: usize,
    /// Timings per figure (best and median are reported).
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Directory with the MNIST files.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Only the tutorial's configuration (PCD-15, batch 20), at both part counts.
    #[arg(long)]
    pub tutorial_only: bool,
    /// Only (g): Gaussian visible units against binary ones.
    #[arg(long, conflicts_with = "tutorial_only")]
    pub gaussian_only: bool,
    /// Only (h) and (i): a DBN's fine-tuning step (784-1000-1000-1000-10,
    /// minibatches of 10), fused against the naive reference and against its
    /// products alone; and a pretraining update of its 1000 x 1000 layers.
    #[arg(long, conflicts_with_all = ["tutorial_only", "gaussian_only"])]
    pub dbn_only: bool,
}

#[derive(Args)]
struct TrainArgs {
    /// Training algorithm: persistent CD (pcd) or contrastive divergence (cd).
    #[arg(long, value_enum, default_value = "pcd")]
    method: MethodArg,
    /// Gibbs steps per update (the k of CD-k / PCD-k).
    #[arg(short = 'k', default_value_t = 15)]
    k: usize,
    /// Learning rate of plain SGD.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    lr: f32,
    /// Images per minibatch (also the number of persistent chains for PCD).
    #[arg(long, default_value_t = 20)]
    batch_size: usize,
    /// Passes over the training images.
    #[arg(long, default_value_t = 15)]
    epochs: usize,
    /// Number of hidden units.
    #[arg(long, default_value_t = 500)]
    hidden: usize,
    /// Seed of every random draw (initial weights, chains, sample offset).
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// Use only the first N training rows (quick runs); default: all (MNIST: its 50,000 training images).
    #[arg(long)]
    train_size: Option<usize>,
    #[command(flatten)]
    io: DataOut,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Worker threads (default: all cores); results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// The visible units: binary (bernoulli; values in [0, 1]) or real-valued
    /// (gaussian, with a fixed standard deviation --sigma).
    #[arg(long, value_enum, default_value = "bernoulli")]
    visible: VisibleArg,
    /// Gaussian units' standard deviation (of the data as the model sees it).
    #[arg(long, default_value_t = 1.0, requires = "visible")]
    sigma: f32,
    /// Learn the Gaussian units' standard deviations too (on log sigma^2,
    /// starting from --sigma).
    #[arg(long)]
    learn_sigma: bool,
    /// Scale each column to zero mean and unit variance (Gaussian units); the
    /// means and deviations are stored in the model, and samples come back in
    /// the data's units.
    #[arg(long)]
    standardize: bool,
    /// Validation rows for a --data file (same format and columns): the
    /// free-energy gap and the reconstruction error are measured on them and
    /// on as many training rows (up to 1,000) after every epoch.
    #[arg(long, value_name = "FILE", requires = "data")]
    valid: Option<PathBuf>,
    /// Hold out this fraction of a --data file's rows, drawn with --seed, as
    /// validation rows (instead of --valid); training uses the rest.
    #[arg(long, value_name = "F", requires = "data", conflicts_with = "valid")]
    valid_fraction: Option<f64>,
    /// Parts the units are split into: the grain of the parallel work, so
    /// that up to this many threads have work (results depend neither on it
    /// nor on --threads).
    #[arg(long, default_value_t = DEFAULT_PARTS)]
    parts: usize,
    /// Continue the interrupted run in DIR from its checkpoint, with the
    /// configuration stored there, to its configured number of epochs.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["method", "k", "lr", "batch_size", "epochs", "hidden", "seed", "train_size", "parts", "visible", "sigma", "learn_sigma", "standardize", "valid", "valid_fraction", "labels", "momentum", "final_momentum", "momentum_epochs", "weight_decay", "lr_schedule", "final_lr", "sparsity_target", "sparsity_cost", "init", "centering", "offset_rate", "persistent_chains", "temperatures", "beta_min", "preset", "out", "chains", "samples", "plot_every"])]
    resume: Option<PathBuf>,
    /// Also write a checkpoint every N minibatches (one is always written after each epoch).
    #[arg(long, value_name = "N")]
    checkpoint_every: Option<usize>,
    /// Every N epochs, add the validation rows' log-likelihood to the metrics
    /// (exact for small models, else AIS with 16 runs of 14,500 temperatures):
    /// MNIST's validation images, or up to 10,000 rows of --valid or
    /// --valid-fraction, binarised with --seed for binary units.
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    eval_every: Option<usize>,
    #[command(flatten)]
    recipe: recipe::RecipeArgs,
}

#[derive(Args)]
struct DataOut {
    /// The training data: a directory with the four MNIST IDX files (.gz or
    /// plain; the default), or a .npy file (2-D, uint8 read as value / 255,
    /// float32 or float64) or a .csv file (numbers, optional header) of rows
    /// with values in [0, 1].
    #[arg(long, value_name = "DIR|FILE")]
    data: Option<PathBuf>,
    /// A CSV column (by its header name) that holds labels, not data: it is
    /// left out of the visible units.
    #[arg(long, value_name = "NAME")]
    label_column: Option<String>,
    /// The rows' class labels, a 1-D integer .npy file (checked: one per row).
    #[arg(long, value_name = "FILE", conflicts_with = "label_column")]
    labels: Option<PathBuf>,
    /// Output directory for pictures, metrics and the model.
    #[arg(long, value_name = "DIR", default_value = "rbm_plots")]
    out: PathBuf,
}

#[derive(Args, Clone, serde::Serialize, serde::Deserialize)]
struct SamplingArgs {
    /// Number of sampling chains (columns of samples.png); default 20, or
    /// the number of rows when the data has fewer.
    #[arg(long)]
    chains: Option<usize>,
    /// Number of plotted sample rows.
    #[arg(long, default_value_t = 10)]
    samples: usize,
    /// Gibbs steps between two plotted rows.
    #[arg(long, default_value_t = 1000)]
    plot_every: usize,
}

impl SamplingArgs {
    /// The number of chains for data with `rows` rows to start them at.
    pub(crate) fn n_chains(&self, rows: usize) -> usize {
        self.chains.unwrap_or(20.min(rows))
    }
}

#[derive(Args)]
struct SampleArgs {
    /// The model file (model.safetensors).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    #[command(flatten)]
    io: DataOut,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Seed of the chains and of the test-image offset.
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => run_train(*a),
        Command::Sample(a) => run_sample(a),
        Command::Bench(a) => bench::run_bench(a),
        Command::Features(a) => run_features(a),
        Command::Filters(a) => run_filters(a),
        Command::Eval(a) => run_eval(a),
        Command::Dbn(c) => dbn::run_dbn(c),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

pub(crate) fn threads(flag: Option<usize>) -> Result<usize> {
    match flag {
        Some(0) => bail!("--threads: must be at least 1"),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// The data directory: --data, else ./data/mnist, else the one in this repository.
fn data_dir(flag: &Option<PathBuf>) -> PathBuf {
    if let Some(d) = flag {
        return d.clone();
    }
    let local = PathBuf::from("data/mnist");
    if local.is_dir() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

pub(crate) fn load_data(flag: &Option<PathBuf>) -> Result<Mnist> {
    say!("... loading data");
    Ok(load_mnist(&data_dir(flag))?)
}

/// Creates the output directory and checks that it can be written.
fn prepare_out(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("--out {}: cannot create the directory", out.display()))?;
    let probe = out.join(".rbm-write-test");
    std::fs::write(&probe, b"").with_context(|| format!("--out {}: directory is not writable", out.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn check_sampling(s: &SamplingArgs, n_test: usize) -> Result<()> {
    let chains = s.n_chains(n_test);
    if chains == 0 || chains > n_test {
        bail!("--chains: must be in 1..={n_test} (the chains start at rows of the data: MNIST's test images), got {chains}");
    }
    if s.samples == 0 {
        bail!("--samples: must be at least 1");
    }
    if s.plot_every == 0 {
        bail!("--plot-every: must be at least 1");
    }
    Ok(())
}

fn progress_bar(len: u64, msg: String) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} minibatches, {per_sec}, {eta} left")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
}

fn run_sample(a: SampleArgs) -> Result<()> {
    let (rbm, meta) = load_model(&a.model)?;
    let gaussian = match meta.get("visible").map(String::as_str) {
        Some("gaussian") => Some(rbm::modelfile::load_gaussian_model(&a.model)?),
        _ => None,
    };
    let n_threads = threads(a.threads)?;
    let source = DataSource {
        data: a.io.data.as_ref(),
        label_column: a.io.label_column.as_deref(),
        labels: a.io.labels.as_deref(),
    };
    let data = open_train_data(source, gaussian.is_none())?;
    let n_cols = data.rows().n_cols();
    if n_cols != rbm.n_visible {
        bail!(
            "{}: the model has {} visible units; the data's rows have {n_cols} values",
            a.model.display(),
            rbm.n_visible
        );
    }
    let Some(side) = data.image_side() else {
        bail!(
            "{}: {n_cols} visible units are no square image, so there is no samples picture to draw",
            a.model.display()
        );
    };
    check_sampling(&a.sampling, data.sample_rows())?;
    prepare_out(&a.io.out)?;
    let mut init = data.sample_start(a.sampling.n_chains(data.sample_rows()), a.seed)?;
    if let Some((_, Some(z))) = &gaussian {
        z.apply(&mut init);
    }
    let g = gaussian.as_ref().map(|(g, z)| (&g.sigma[..], z.as_ref()));
    let secs = draw_samples(&rbm, g, &init, side, &a.sampling, a.seed, n_threads, &a.io.out)?;
    say!("Sampling took {secs:.2} seconds; wrote {}", a.io.out.join("samples.png").display());
    Ok(())
}

fn load_mnist_model(path: &Path) -> Result<Rbm> {
    let (rbm, meta) = load_model(path)?;
    if meta.get("visible").map(String::as_str) == Some("gaussian") {
        bail!("{}: a Gaussian-Bernoulli model; this command handles binary models only, for now", path.display());
    }
    if rbm.n_visible != 784 {
        bail!("{}: the model has {} visible units; MNIST needs 784", path.display(), rbm.n_visible);
    }
    Ok(rbm)
}

/// p(h = 1 | v) for every row of an MNIST split or of a data file: for a
/// Gaussian model, of the rows standardised as it was trained.
fn run_features(a: FeaturesArgs) -> Result<()> {
    let (rbm, meta) = load_model(&a.model)?;
    let gaussian = match meta.get("visible").map(String::as_str) {
        Some("gaussian") => Some(rbm::modelfile::load_gaussian_model(&a.model)?),
        _ => None,
    };
    let file = a.data.as_ref().filter(|p| p.is_file());
    let (rows, labels): (Box<dyn DataRows>, Option<Vec<i64>>) = match file {
        Some(path) => {
            let src =
                DataSource { data: Some(path), label_column: a.label_column.as_deref(), labels: a.labels.as_deref() };
            match open_train_data(src, gaussian.is_none())? {
                TrainData::File { rows, labels, .. } => (rows, labels),
                TrainData::Mnist(_) => bail!("--data {}: not a .npy or .csv file", path.display()),
            }
        }
        None => {
            if a.labels.is_some() || a.label_column.is_some() {
                bail!("--labels and --label-column: for a .npy or .csv --data file (MNIST brings its labels)");
            }
            let mnist = load_data(&a.data)?;
            let (images, labels) = split_images(&mnist, a.split);
            (Box::new(images.clone()), Some(labels.iter().map(|&l| l as i64).collect()))
        }
    };
    if a.labels_out.is_some() && labels.is_none() {
        bail!("--labels-out: the rows have no labels; give --labels FILE or --label-column NAME");
    }
    if rows.n_cols() != rbm.n_visible {
        bail!(
            "{}: the model has {} visible units; the rows have {} values",
            a.model.display(),
            rbm.n_visible,
            rows.n_cols()
        );
    }
    let (n, nv) = (rows.n_rows(), rows.n_cols());
    let mut features = Vec::with_capacity(n * rbm.n_hidden);
    let mut chunk = vec![0f32; 1000 * nv];
    for start in (0..n).step_by(1000) {
        let chunk = &mut chunk[..(1000.min(n - start)) * nv];
        rows.copy_rows(start, chunk)?;
        match &gaussian {
            Some((g, z)) => {
                if let Some(z) = z {
                    z.apply(chunk);
                }
                features.extend(g.prob_h_given_v(chunk).into_iter().map(|p| p as f32));
            }
            None => features.extend(rbm.propup(chunk).mean),
        }
    }
    write_atomic(&a.out, &rbm::modelfile::npy_bytes(&features, &[n, rbm.n_hidden]))?;
    say!("wrote {} ({n} x {} float32)", a.out.display(), rbm.n_hidden);
    if let (Some(path), Some(labels)) = (&a.labels_out, &labels) {
        write_atomic(path, &rbm::modelfile::npy_i64_bytes(labels))?;
        say!("wrote {} ({n} int64 labels)", path.display());
    }
    Ok(())
}

fn run_filters(a: FiltersArgs) -> Result<()> {
    let (rbm, _) = load_model(&a.model)?;
    let nv = rbm.n_visible;
    let shape = match &a.image_shape {
        Some(text) => {
            let parsed =
                text.split_once(['x', 'X']).and_then(|(h, w)| Some((h.trim().parse().ok()?, w.trim().parse().ok()?)));
            match parsed {
                Some((h, w)) if h * w == nv && h > 0 => (h, w),
                Some((h, w)) => {
                    bail!("--image-shape {text}: {h} x {w} = {} pixels, the model has {nv} visible units", h * w)
                }
                None => bail!("--image-shape {text}: expected HxW, as 28x28"),
            }
        }
        None => {
            let side = (nv as f64).sqrt().round() as usize;
            if side * side != nv {
                bail!("{}: {nv} visible units do not form a square image; give --image-shape HxW", a.model.display());
            }
            (side, side)
        }
    };
    rbm::images::filters_image_shaped(&rbm, shape).save_png(&a.out)?;
    say!("wrote {}", a.out.display());
    Ok(())
}

/// An MNIST split's images and labels.
fn split_images(data: &Mnist, split: Split) -> (&rbm::data::Images, &[u8]) {
    match split {
        Split::Train => (&data.train, &data.train_labels),
        Split::Valid => (&data.valid, &data.valid_labels),
        Split::Test => (&data.test, &data.test_labels),
    }
}
