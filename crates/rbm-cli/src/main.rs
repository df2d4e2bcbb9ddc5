//! The `rbm` command line: thin glue over the library.

mod bench;
mod report;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rbm::data::{load_mnist, Binarize, Mnist};
use rbm::data::{Standardize, Standardized};
use rbm::engine::{sample_rows, DEFAULT_PARTS};
use rbm::estimate::{base_rate_vbias, evaluate, Estimator, EvalOptions, Report};
use rbm::fit::{fit, Control, FitOptions, FitOutcome, Observer, Validation};
use rbm::gaussian::GaussianRbm;
use rbm::images::{filters_image, samples_image};
use rbm::modelfile::save_gaussian_model;
use rbm::modelfile::{load_checkpoint, load_model, save_checkpoint, save_model, write_atomic};
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
    const FLAGS: [(&str, &str); 7] = [
        ("k", "-k"),
        ("lr", "--lr"),
        ("batch_size", "--batch-size"),
        ("epochs", "--epochs"),
        ("n_hidden", "--hidden"),
        ("train_size", "--train-size"),
        ("n_parts", "--parts"),
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
    /// Train an RBM on MNIST (defaults: the tutorial's PCD-15 run) and write
    /// filters, samples, metrics and the model into the output directory.
    Train(TrainArgs),
    /// Draw the samples picture from a saved model.
    Sample(SampleArgs),
    /// Measure training and sampling speed against the matrix products' own speed.
    Bench(BenchArgs),
    /// Write the hidden units' probabilities p(h|v) for every image of a split as .npy.
    Features(FeaturesArgs),
    /// Draw a model's filters (the first 100 hidden units' weights) as a PNG.
    Filters(FiltersArgs),
    /// Estimate a model's average log-likelihood per image, in nats, on binarised MNIST.
    Eval(EvalArgs),
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
    /// AIS schedule length (intermediate temperatures).
    #[arg(long, default_value_t = 14_500)]
    ais_steps: usize,
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
    /// The images to transform.
    #[arg(long, value_enum, default_value = "test")]
    split: Split,
    /// Output .npy file: float32, shape [images, n_hidden].
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Directory with the MNIST files.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Args)]
struct FiltersArgs {
    /// The model file (model.safetensors).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Output PNG file.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
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
    /// Scale each column to zero mean and unit variance (Gaussian units); the
    /// means and deviations are stored in the model, and samples come back in
    /// the data's units.
    #[arg(long)]
    standardize: bool,
    /// Parts the units are split into: the grain of the parallel work, so
    /// that up to this many threads have work (results depend neither on it
    /// nor on --threads).
    #[arg(long, default_value_t = DEFAULT_PARTS)]
    parts: usize,
    /// Continue the interrupted run in DIR from its checkpoint, with the
    /// configuration stored there, to its configured number of epochs.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["method", "k", "lr", "batch_size", "epochs", "hidden", "seed", "train_size", "parts", "visible", "sigma", "standardize", "out", "chains", "samples", "plot_every"])]
    resume: Option<PathBuf>,
    /// Also write a checkpoint every N minibatches (one is always written after each epoch).
    #[arg(long, value_name = "N")]
    checkpoint_every: Option<usize>,
    /// Every N epochs, add the validation images' log-likelihood to the metrics
    /// (exact for small models, else AIS with 100 runs of 1,450 temperatures).
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    eval_every: Option<usize>,
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
    fn n_chains(&self, rows: usize) -> usize {
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
        Command::Train(a) => run_train(a),
        Command::Sample(a) => run_sample(a),
        Command::Bench(a) => bench::run_bench(a),
        Command::Features(a) => run_features(a),
        Command::Filters(a) => run_filters(a),
        Command::Eval(a) => run_eval(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// The checkpoint's name in a run's directory.
const CHECKPOINT: &str = "checkpoint.safetensors";

/// What a checkpoint stores for the command line besides the trainer.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunExtra {
    sampling: SamplingArgs,
    /// the --data file the run trains on (MNIST when none)
    #[serde(default)]
    data: Option<PathBuf>,
    /// --standardize (the statistics are computed again from the data on resume)
    #[serde(default)]
    standardize: bool,
    /// --label-column
    #[serde(default)]
    label_column: Option<String>,
    /// --eval-every
    #[serde(default)]
    eval_every: Option<usize>,
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

/// Draws samples.png as the tutorial: `chains` chains from `init`
/// (`[chains, n_visible]`, images of `side` x `side`), `samples` rows,
/// `plot_every` steps before each.
#[allow(clippy::too_many_arguments)]
fn draw_samples(
    rbm: &Rbm,
    gaussian: Option<(&[f32], Option<&Standardize>)>,
    init: &[f32],
    side: usize,
    s: &SamplingArgs,
    seed: u64,
    n_threads: usize,
    out: &Path,
) -> Result<f64> {
    let t = Instant::now();
    let sigma = gaussian.map(|g| g.0);
    let mut rows =
        sample_rows(rbm, sigma, init, s.samples, s.plot_every, seed, n_threads, |r| say!(" ... plotting sample  {r}"));
    if let Some((_, Some(z))) = gaussian {
        rows.iter_mut().for_each(|r| z.undo(r));
    }
    let secs = t.elapsed().as_secs_f64();
    samples_image(&rows, init.len() / rbm.n_visible, side).save_png(&out.join("samples.png"))?;
    Ok(secs)
}

fn config_metadata(cfg: &TrainConfig, epochs_done: usize) -> HashMap<String, String> {
    HashMap::from([
        ("config".to_string(), serde_json::to_string(cfg).expect("config serialises")),
        ("epochs_done".to_string(), epochs_done.to_string()),
        ("seed".to_string(), cfg.seed.to_string()),
    ])
}

/// The command line's side of a training run: progress bars, the
/// per-epoch pictures and report, checkpoints, and Ctrl-C.
struct TrainView<'a> {
    out: &'a Path,
    extra: &'a RunExtra,
    stop: Arc<AtomicBool>,
    bar: Option<(usize, ProgressBar)>,
    /// the side of the square images the rows are, when they are (pictures)
    side: Option<usize>,
}

impl TrainView<'_> {
    fn bar(&mut self, trainer: &Trainer) -> &ProgressBar {
        let epoch = trainer.epoch();
        if self.bar.as_ref().is_none_or(|(e, _)| *e != epoch) {
            if let Some((_, old)) = self.bar.take() {
                old.finish_and_clear();
            }
            let pb = progress_bar(trainer.config().batches_per_epoch() as u64, format!("epoch {epoch}"));
            self.bar = Some((epoch, pb));
        }
        &self.bar.as_ref().unwrap().1
    }
}

impl Observer for TrainView<'_> {
    fn progress(&mut self, trainer: &Trainer) -> Control {
        self.bar(trainer).set_position(trainer.batch_index() as u64);
        if self.stop.load(Ordering::Relaxed) {
            Control::Stop
        } else {
            Control::Continue
        }
    }

    fn epoch_end(&mut self, trainer: &mut Trainer) -> rbm::Result<()> {
        if let Some((_, pb)) = self.bar.take() {
            pb.finish_and_clear();
        }
        let r = trainer.history().last().expect("an epoch ended").clone();
        say!("Training epoch {}, cost is  {}", r.epoch, r.cost);
        if let (Some(ll), Some(name)) = (r.log_likelihood, &r.ll_estimator) {
            say!("  validation log-likelihood {ll:.4} nats per image ({name})");
        }
        if let Some(side) = self.side {
            filters_image(&trainer.rbm(), side)
                .save_png(&self.out.join(format!("filters_at_epoch_{}.png", r.epoch)))?;
        }
        write_report(self.out, trainer.config(), trainer.history(), false, self.side.is_some())
    }

    fn checkpoint(&mut self, trainer: &mut Trainer) -> rbm::Result<()> {
        let json = serde_json::to_string(self.extra).expect("extra serialises");
        save_checkpoint(&self.out.join(CHECKPOINT), trainer, &json)
    }
}

fn run_train(a: TrainArgs) -> Result<()> {
    let n_threads = threads(a.threads)?;
    if a.checkpoint_every == Some(0) {
        bail!("--checkpoint-every: must be at least 1");
    }
    if a.eval_every == Some(0) {
        bail!("--eval-every: must be at least 1");
    }
    let stored = match &a.resume {
        Some(dir) => {
            load_checkpoint(&dir.join(CHECKPOINT)).ok().and_then(|ck| serde_json::from_str::<RunExtra>(&ck.extra).ok())
        }
        None => None,
    };
    let gaussian = match &stored {
        Some(_) => None, // from the checkpoint below
        None => Some(a.visible == VisibleArg::Gaussian),
    };
    let resumed_gaussian = match &a.resume {
        Some(dir) => {
            load_checkpoint(&dir.join(CHECKPOINT)).ok().map(|ck| ck.trainer.config().visible == Visible::Gaussian)
        }
        None => None,
    };
    let is_gaussian = gaussian.or(resumed_gaussian).unwrap_or(false);
    if !is_gaussian && (a.standardize || a.sigma != 1.0) {
        bail!("--standardize and --sigma: for Gaussian visible units (--visible gaussian)");
    }
    if !(a.sigma.is_finite() && a.sigma > 0.0) {
        bail!("--sigma: must be a positive finite number, got {}", a.sigma);
    }
    let label_column = a.io.label_column.clone().or(stored.as_ref().and_then(|e| e.label_column.clone()));
    let data = open_train_data(
        a.io.data.as_ref().or(stored.as_ref().and_then(|e| e.data.as_ref())),
        label_column.as_deref(),
        !is_gaussian,
    )?;
    let (n_rows, n_visible) = (data.rows().n_rows(), data.rows().n_cols());
    let (mut trainer, extra, out) = match &a.resume {
        Some(dir) => {
            let path = dir.join(CHECKPOINT);
            if !path.is_file() {
                bail!("--resume {}: no {CHECKPOINT} there to resume from", dir.display());
            }
            let ck = load_checkpoint(&path)?;
            let extra: RunExtra = serde_json::from_str(&ck.extra)
                .with_context(|| format!("{}: metadata `extra` is unreadable", path.display()))?;
            ck.trainer
                .config()
                .check(n_rows)
                .map_err(flagged)
                .with_context(|| format!("{}: stored configuration", path.display()))?;
            prepare_out(dir)?;
            say!("resuming {} at epoch {}, minibatch {}", dir.display(), ck.trainer.epoch(), ck.trainer.batch_index());
            if ck.trainer.streams_rederived() {
                eprintln!(
                    "note: {} was written by rbm 0.1; the run continues with fresh random streams (deterministic, but not the draws rbm 0.1 would have made)",
                    path.display()
                );
            }
            (ck.trainer, extra, dir.clone())
        }
        None => {
            let mut cfg = TrainConfig::default();
            cfg.method = a.method.into();
            if is_gaussian {
                cfg.visible = Visible::Gaussian;
            }
            (cfg.k, cfg.lr, cfg.batch_size, cfg.epochs) = (a.k, a.lr, a.batch_size, a.epochs);
            (cfg.n_hidden, cfg.seed, cfg.n_parts) = (a.hidden, a.seed, a.parts);
            cfg.train_size = a.train_size.unwrap_or(n_rows);
            if a.eval_every.is_some() && (data.file().is_some() || is_gaussian) {
                bail!(
                    "--eval-every: needs binary validation images, which only MNIST brings for now, for binary units"
                );
            }
            let checked = cfg.check(n_rows).map_err(flagged)?;
            check_sampling(&a.sampling, data.sample_rows())?;
            let out = a.io.out.clone();
            prepare_out(&out)?;
            refuse_other_run(&out, &cfg)?;
            let rbm = Rbm::init(n_visible, cfg.n_hidden, cfg.seed)?;
            let extra = RunExtra {
                sampling: a.sampling.clone(),
                data: data.file().map(Path::to_path_buf),
                standardize: a.standardize,
                label_column: label_column.clone(),
                eval_every: a.eval_every,
            };
            let trainer = if is_gaussian {
                Trainer::new_gaussian(&GaussianRbm::new(rbm, vec![a.sigma; n_visible])?, checked)?
            } else {
                Trainer::new(&rbm, checked)?
            };
            (trainer, extra, out)
        }
    };
    check_sampling(&extra.sampling, data.sample_rows())?;
    let cfg = trainer.config().clone();

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }
    // the validation images, stochastically binarised with the run's seed
    let mnist = match &data {
        TrainData::Mnist(mnist) => Some(mnist),
        TrainData::File { .. } => None,
    };
    let valid = extra.eval_every.and(mnist).map(|m| m.valid.binarize(Binarize::Stochastic, cfg.seed).to_f32());
    let base_vbias = mnist.map(|m| base_rate_vbias(&m.train)).unwrap_or_default();
    let mut opts = FitOptions::new(n_threads);
    opts.checkpoint_every = a.checkpoint_every;
    opts.validation = valid.as_ref().map(|rows| Validation {
        rows,
        base_vbias: &base_vbias,
        every: extra.eval_every.unwrap_or(1),
        seed: cfg.seed,
    });
    let side = data.image_side();
    let standardize = match extra.standardize {
        true => Some(Standardize::of(data.rows(), cfg.train_size)?),
        false => None,
    };
    let standardized = standardize.as_ref().map(|by| Standardized { data: data.rows(), by });
    let rows: &dyn DataRows = match &standardized {
        Some(s) => s,
        None => data.rows(),
    };
    let mut view = TrainView { out: &out, extra: &extra, stop, bar: None, side };
    let outcome = fit(&mut trainer, rows, &opts, &mut view).map_err(|e| {
        let kept = out.join(CHECKPOINT);
        let e = flagged(e);
        if kept.is_file() {
            e.context(format!("the last good checkpoint is {}", kept.display()))
        } else {
            e
        }
    })?;
    if let Some((_, pb)) = view.bar.take() {
        pb.finish_and_clear();
    }
    if outcome == FitOutcome::Stopped {
        eprintln!(
            "interrupted at epoch {}, minibatch {}: checkpoint written to {}\nresume with: rbm train --resume {}",
            trainer.epoch(),
            trainer.batch_index(),
            out.join(CHECKPOINT).display(),
            out.display()
        );
        std::process::exit(130);
    }
    say!("Training took {:.6} minutes", trainer.training_seconds() / 60.0);
    let rbm = trainer.rbm();
    let model_path = out.join("model.safetensors");
    let gaussian_model = trainer.gaussian_model();
    match &gaussian_model {
        Some(g) => save_gaussian_model(&model_path, g, standardize.as_ref(), config_metadata(&cfg, trainer.epoch()))?,
        None => save_model(&model_path, &rbm, config_metadata(&cfg, trainer.epoch()))?,
    }
    match side {
        Some(side) => {
            let mut init = data.sample_start(extra.sampling.n_chains(data.sample_rows()), cfg.seed)?;
            if let Some(z) = &standardize {
                z.apply(&mut init);
            }
            let gaussian = gaussian_model.as_ref().map(|g| (&g.sigma[..], standardize.as_ref()));
            let secs = draw_samples(&rbm, gaussian, &init, side, &extra.sampling, cfg.seed, n_threads, &out)?;
            write_report(&out, &cfg, trainer.history(), true, true)?;
            say!("Sampling took {secs:.2} seconds; wrote {} (open index.html)", out.display());
        }
        None => {
            write_report(&out, &cfg, trainer.history(), false, false)?;
            say!("{n_visible} visible units are no square image: no filters or samples pictures; wrote {} (open index.html)", out.display());
        }
    }
    Ok(())
}

/// What `rbm train` learns from: MNIST's tutorial split, or a file's rows.
enum TrainData {
    Mnist(Box<Mnist>),
    File { path: PathBuf, rows: Box<dyn DataRows> },
}

/// --data: a .npy or .csv file (whose values must be finite, and for binary
/// units lie in [0, 1]: checked here, before anything is written), else an
/// MNIST directory.
fn open_train_data(flag: Option<&PathBuf>, label_column: Option<&str>, unit_interval: bool) -> Result<TrainData> {
    if label_column.is_some() && flag.and_then(|p| p.extension()).is_none_or(|e| !e.eq_ignore_ascii_case("csv")) {
        bail!("--label-column: for a .csv --data file");
    }
    let ext = flag.and_then(|p| p.extension()).map(|e| e.to_string_lossy().to_lowercase());
    match (flag, ext.as_deref()) {
        (Some(path), Some("npy")) => {
            let f = rbm::npy::NpyFile::open(path)?;
            f.check_values(unit_interval)?;
            Ok(TrainData::File { path: path.clone(), rows: Box::new(f) })
        }
        (Some(path), Some("csv")) => {
            let mut t = rbm::csv::read_csv(path, None)?;
            if let Some(name) = label_column {
                t.take_column(name)?;
            }
            if unit_interval {
                t.check_unit_interval()?;
            }
            Ok(TrainData::File { path: path.clone(), rows: Box::new(t) })
        }
        _ => Ok(TrainData::Mnist(Box::new(load_data(&flag.cloned())?))),
    }
}

impl TrainData {
    fn rows(&self) -> &dyn DataRows {
        match self {
            TrainData::Mnist(mnist) => &mnist.train,
            TrainData::File { rows, .. } => rows.as_ref(),
        }
    }

    fn file(&self) -> Option<&Path> {
        match self {
            TrainData::Mnist(_) => None,
            TrainData::File { path, .. } => Some(path),
        }
    }

    /// The rows sampling chains may start at: MNIST's test images, or the file's rows.
    fn sample_rows(&self) -> usize {
        match self {
            TrainData::Mnist(mnist) => mnist.test.n,
            TrainData::File { rows, .. } => rows.n_rows(),
        }
    }

    /// The side of the square images the rows are, if they are.
    fn image_side(&self) -> Option<usize> {
        let n = self.rows().n_cols();
        let side = (n as f64).sqrt().round() as usize;
        (side * side == n).then_some(side)
    }

    /// `chains` consecutive rows at a random offset, `[chains, n_visible]`:
    /// where the sampling chains start, as the tutorial (MNIST's test images).
    fn sample_start(&self, chains: usize, seed: u64) -> Result<Vec<f32>> {
        let offset = Stream::new(seed, 1).below((self.sample_rows() - chains + 1) as u64) as usize;
        match self {
            TrainData::Mnist(mnist) => Ok(mnist.test.slice(offset..offset + chains).to_f32()),
            TrainData::File { rows, .. } => {
                let mut init = vec![0f32; chains * rows.n_cols()];
                rows.copy_rows(offset, &mut init)?;
                Ok(init)
            }
        }
    }
}

/// metrics.csv, learning_curve.svg and index.html of a run.
fn write_report(
    out: &Path,
    cfg: &TrainConfig,
    history: &[rbm::train::EpochRecord],
    has_samples: bool,
    has_filters: bool,
) -> rbm::Result<()> {
    let mut csv = String::from("epoch,cost,seconds,valid_log_likelihood,ll_estimator\n");
    for r in history {
        let ll = r.log_likelihood.map_or(String::new(), |l| l.to_string());
        csv += &format!("{},{},{:.3},{},{}\n", r.epoch, r.cost, r.seconds, ll, r.ll_estimator.as_deref().unwrap_or(""));
    }
    write_atomic(&out.join("metrics.csv"), csv.as_bytes())?;
    let cost_name = match (cfg.visible, cfg.method) {
        (Visible::Gaussian, _) => "minus the reconstruction's squared error",
        (_, Method::Pcd) => "stochastic pseudo-likelihood",
        (_, Method::Cd) => "reconstruction log-probability",
    };
    write_atomic(&out.join("learning_curve.svg"), report::learning_curve_svg(history, cost_name).as_bytes())?;
    // through the JSON text, so that f32 fields print as written (0.1, not 0.10000000149011612)
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&serde_json::to_string(cfg).expect("config serialises")).expect("config parses");
    let config: Vec<(String, String)> =
        json.iter().map(|(k, v)| (k.clone(), v.to_string().trim_matches('"').to_string())).collect();
    let title =
        format!("RBM run: {} hidden units, {}-{}", cfg.n_hidden, format!("{:?}", cfg.method).to_uppercase(), cfg.k);
    write_atomic(
        &out.join("index.html"),
        report::index_html(&title, &config, history, has_samples, has_filters).as_bytes(),
    )
}

/// A fresh run must not overwrite the checkpoint of a different run.
fn refuse_other_run(out: &Path, cfg: &TrainConfig) -> Result<()> {
    let path = out.join(CHECKPOINT);
    if !path.exists() {
        return Ok(());
    }
    let ck = load_checkpoint(&path).with_context(|| {
        format!("--out {}: holds an unreadable checkpoint; remove it or choose another --out", out.display())
    })?;
    if ck.trainer.config() != cfg {
        bail!(
            "{}: checkpoint of a different configuration ({}); continue it with --resume {}, or choose another --out",
            path.display(),
            serde_json::to_string(ck.trainer.config()).expect("config serialises"),
            out.display()
        );
    }
    Ok(())
}

fn run_sample(a: SampleArgs) -> Result<()> {
    let (rbm, meta) = load_model(&a.model)?;
    let gaussian = match meta.get("visible").map(String::as_str) {
        Some("gaussian") => Some(rbm::modelfile::load_gaussian_model(&a.model)?),
        _ => None,
    };
    let n_threads = threads(a.threads)?;
    let data = open_train_data(a.io.data.as_ref(), a.io.label_column.as_deref(), gaussian.is_none())?;
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

fn run_features(a: FeaturesArgs) -> Result<()> {
    let rbm = load_mnist_model(&a.model)?;
    let data = load_data(&a.data)?;
    let images = split_images(&data, a.split);
    let mut features = Vec::with_capacity(images.n * rbm.n_hidden);
    for start in (0..images.n).step_by(1000) {
        let chunk = images.slice(start..(start + 1000).min(images.n)).to_f32();
        features.extend(rbm.propup(&chunk).mean);
    }
    write_atomic(&a.out, &rbm::modelfile::npy_bytes(&features, &[images.n, rbm.n_hidden]))?;
    say!("wrote {} ({} x {} float32)", a.out.display(), images.n, rbm.n_hidden);
    Ok(())
}

fn run_filters(a: FiltersArgs) -> Result<()> {
    let (rbm, _) = load_model(&a.model)?;
    let side = (rbm.n_visible as f64).sqrt().round() as usize;
    if side * side != rbm.n_visible {
        bail!("{}: {} visible units do not form a square image", a.model.display(), rbm.n_visible);
    }
    filters_image(&rbm, side).save_png(&a.out)?;
    say!("wrote {}", a.out.display());
    Ok(())
}

fn split_images(data: &Mnist, split: Split) -> &rbm::data::Images {
    match split {
        Split::Train => &data.train,
        Split::Valid => &data.valid,
        Split::Test => &data.test,
    }
}

fn run_eval(a: EvalArgs) -> Result<()> {
    if a.binarize == BinarizeArg::None {
        bail!("--binarize none: the likelihood is of binary images; use stochastic or threshold");
    }
    if a.ais_runs < 2 {
        bail!("--ais-runs: at least 2 runs are needed for an error bar");
    }
    if a.ais_steps < 3 || a.raise_steps < 3 {
        bail!("--ais-steps and --raise-steps: at least 3");
    }
    if a.raise_images == 0 {
        bail!("--raise-images: must be at least 1");
    }
    let n_threads = threads(a.threads)?;
    let (_, meta) = load_model(&a.model)?;
    if meta.get("visible").map(String::as_str) == Some("gaussian") {
        return eval_gaussian(&a, n_threads);
    }
    let rbm = load_mnist_model(&a.model)?;
    let data = if a.json { load_mnist(&data_dir(&a.data))? } else { load_data(&a.data)? };
    let images = split_images(&data, a.split).binarize(a.binarize.into(), a.seed).to_f32();
    let vb_a = base_rate_vbias(&data.train);
    let mut opts = EvalOptions::default();
    opts.estimator = a.estimator.into();
    (opts.ais_runs, opts.ais_steps, opts.raise_images, opts.raise_steps) =
        (a.ais_runs, a.ais_steps, a.raise_images, a.raise_steps);
    opts.seed = a.seed;
    let t = Instant::now();
    let report = evaluate(&rbm, &images, &vb_a, &opts, n_threads);
    let secs = t.elapsed().as_secs_f64();
    let split = format!("{:?}", a.split).to_lowercase();
    let binarize = format!("{:?}", a.binarize).to_lowercase();
    if a.json {
        let mut v = serde_json::to_value(&report).expect("report serialises");
        let extra = serde_json::json!({"split": split, "binarize": binarize, "seed": a.seed, "seconds": secs, "model": a.model.display().to_string()});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        say!("{v}");
    } else {
        print_report(&report, &split, &binarize, a.seed, secs);
    }
    Ok(())
}

/// `rbm eval` of a Gaussian-Bernoulli model on the rows of a `--data` file:
/// standardised as the model was trained, its log-density there, reported in
/// the data's units (the log-determinant of the standardisation, -Σ log
/// data_std, added).
fn eval_gaussian(a: &EvalArgs, n_threads: usize) -> Result<()> {
    let (g, z) = rbm::modelfile::load_gaussian_model(&a.model)?;
    let Some(path) = a.data.as_ref().filter(|p| p.is_file()) else {
        bail!("--data: a Gaussian model is evaluated on the rows of a .npy or .csv file");
    };
    let data = open_train_data(Some(path), a.label_column.as_deref(), false)?;
    let rows = data.rows();
    if rows.n_cols() != g.rbm.n_visible {
        bail!("{}: rows of {} values; the model has {} visible units", path.display(), rows.n_cols(), g.rbm.n_visible);
    }
    let mut v = vec![0f32; rows.n_rows() * rows.n_cols()];
    rows.copy_rows(0, &mut v)?;
    let log_det = match &z {
        Some(z) => {
            z.apply(&mut v);
            -z.std.iter().map(|&s| (s as f64).ln()).sum::<f64>()
        }
        None => 0.0,
    };
    // the base model: independent Gaussians at the rows' means, with the model's sigma
    let nv = g.rbm.n_visible;
    let mut base = vec![0f32; nv];
    for row in v.chunks_exact(nv) {
        for (b, &x) in base.iter_mut().zip(row) {
            *b += x / rows.n_rows() as f32;
        }
    }
    let mut opts = EvalOptions::default();
    opts.estimator = a.estimator.into();
    (opts.ais_runs, opts.ais_steps, opts.seed) = (a.ais_runs, a.ais_steps, a.seed);
    let t = Instant::now();
    let mut report = rbm::estimate::evaluate_gaussian(&g, &v, &base, &opts, n_threads)?;
    let secs = t.elapsed().as_secs_f64();
    report.avg_ll += log_det;
    report.avg_ll_lo += log_det;
    report.avg_ll_hi += log_det;
    if a.json {
        let mut j = serde_json::to_value(&report).expect("report serialises");
        let extra = serde_json::json!({"data": path.display().to_string(), "visible": "gaussian", "seed": a.seed, "seconds": secs, "model": a.model.display().to_string()});
        j.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        say!("{j}");
    } else {
        say!("data: {} rows of {}, real-valued (Gaussian visible units)", report.n_images, path.display());
        match report.estimator.as_str() {
            "exact" => say!("estimator: exact (hidden states enumerated, v integrated in closed form)"),
            _ => say!(
                "estimator: AIS, {} runs, {} temperatures, from independent Gaussians at the data's means",
                report.ais_runs.unwrap_or(0),
                report.ais_steps.unwrap_or(0)
            ),
        }
        say!("log Z = {:.4} (in the units the model sees)", report.logz.unwrap_or(f64::NAN));
        say!(
            "average log-density: {:.4} nats per row in the data's units, bracket [{:.4}, {:.4}]",
            report.avg_ll,
            report.avg_ll_lo,
            report.avg_ll_hi
        );
        say!("took {secs:.1} s");
    }
    Ok(())
}

fn print_report(r: &Report, split: &str, binarize: &str, seed: u64, secs: f64) {
    say!("data: {} {split} images, binarised {binarize} (seed {seed})", r.n_images);
    match r.estimator.as_str() {
        "exact" => {
            say!("estimator: exact (enumeration of the smaller layer)");
            say!("log Z = {:.4}", r.logz.unwrap());
            say!("average log-likelihood: {:.4} nats per image (exact)", r.avg_ll);
        }
        "ais" => {
            say!(
                "estimator: AIS, {} runs, {} temperatures, from the base-rate model",
                r.ais_runs.unwrap(),
                r.ais_steps.unwrap()
            );
            say!("log Z = {:.4}, ±3σ: [{:.4}, {:.4}]", r.logz.unwrap(), r.logz_lo.unwrap(), r.logz_hi.unwrap());
            say!(
                "average log-likelihood: {:.4} nats per image, bracket [{:.4}, {:.4}]",
                r.avg_ll,
                r.avg_ll_lo,
                r.avg_ll_hi
            );
        }
        _ => {}
    }
    if let Some(q) = &r.raise {
        say!("RAISE (conservative), {} random {split} images, {} temperatures:", q.n_images, q.steps);
        say!(
            "  average log-likelihood: {:.4} nats per image, ±3 s.e. [{:.4}, {:.4}]",
            q.avg_ll,
            q.avg_ll_lo,
            q.avg_ll_hi
        );
        if let Some(x) = q.reference_avg_ll {
            say!("  {} on the same images: {:.4}", r.estimator, x);
        }
    }
    say!("took {secs:.1} s");
}
