//! The `rbm` command line: thin glue over the library.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rbm::data::{load_mnist, Mnist};
use rbm::engine::sample_rows;
use rbm::images::{filters_image, samples_image};
use rbm::modelfile::{load_model, save_model, write_atomic};
use rbm::train::{EpochRecord, Method, TrainConfig, Trainer};
use rbm::{Rbm, Stream};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
}

#[derive(Args)]
struct BenchArgs {
    /// Minibatch updates per timing.
    #[arg(long, default_value_t = 400)]
    updates: usize,
    /// Timings per figure (best and median are reported).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Directory with the MNIST files.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct TrainArgs {
    /// Training algorithm: persistent CD (pcd) or contrastive divergence (cd).
    #[arg(long, value_enum, default_value = "pcd")]
    method: Method,
    /// Gibbs steps per update (the k of CD-k / PCD-k).
    #[arg(short = 'k', default_value_t = 15)]
    k: usize,
    /// Learning rate of plain SGD.
    #[arg(long, default_value_t = 0.1)]
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
    /// Use only the first N of the 50,000 training images (quick runs).
    #[arg(long, default_value_t = 50_000)]
    train_size: usize,
    #[command(flatten)]
    io: DataOut,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Worker threads (default: all cores); results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct DataOut {
    /// Directory with the four MNIST IDX files (.gz or plain).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Output directory for pictures, metrics and the model.
    #[arg(long, value_name = "DIR", default_value = "rbm_plots")]
    out: PathBuf,
}

#[derive(Args)]
struct SamplingArgs {
    /// Number of sampling chains (columns of samples.png).
    #[arg(long, default_value_t = 20)]
    chains: usize,
    /// Number of plotted sample rows.
    #[arg(long, default_value_t = 10)]
    samples: usize,
    /// Gibbs steps between two plotted rows.
    #[arg(long, default_value_t = 1000)]
    plot_every: usize,
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
        Command::Bench(a) => run_bench(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn threads(flag: Option<usize>) -> Result<usize> {
    match flag {
        Some(0) => bail!("--threads: must be at least 1"),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// The data directory: --data, else ./data/mnist, else the one in this crate's source tree.
fn data_dir(flag: &Option<PathBuf>) -> PathBuf {
    if let Some(d) = flag {
        return d.clone();
    }
    let local = PathBuf::from("data/mnist");
    if local.is_dir() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist")
}

fn load_data(flag: &Option<PathBuf>) -> Result<Mnist> {
    println!("... loading data");
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
    if s.chains == 0 || s.chains > n_test {
        bail!("--chains: must be in 1..={n_test} (the chains start at test images), got {}", s.chains);
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
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
}

/// Draws samples.png as the tutorial: `chains` chains from consecutive test
/// images at a random offset, `samples` rows, `plot_every` steps before each.
fn draw_samples(rbm: &Rbm, data: &Mnist, s: &SamplingArgs, seed: u64, n_threads: usize, out: &Path) -> Result<f64> {
    let n_test = data.test.n;
    let offset = Stream::new(seed, 1).below((n_test - s.chains + 1) as u64) as usize;
    let init = data.test.slice(offset..offset + s.chains).to_f32();
    let t = Instant::now();
    let rows = sample_rows(rbm, &init, s.samples, s.plot_every, seed, n_threads, |r| println!(" ... plotting sample  {r}"));
    let secs = t.elapsed().as_secs_f64();
    samples_image(&rows, s.chains, 28).save_png(&out.join("samples.png"))?;
    Ok(secs)
}

fn config_metadata(cfg: &TrainConfig, epochs_done: usize) -> HashMap<String, String> {
    HashMap::from([
        ("config".to_string(), serde_json::to_string(cfg).expect("config serialises")),
        ("epochs_done".to_string(), epochs_done.to_string()),
        ("seed".to_string(), cfg.seed.to_string()),
    ])
}

fn write_metrics(out: &Path, history: &[EpochRecord]) -> Result<()> {
    let mut csv = String::from("epoch,cost,seconds\n");
    for r in history {
        csv += &format!("{},{},{:.3}\n", r.epoch, r.cost, r.seconds);
    }
    Ok(write_atomic(&out.join("metrics.csv"), csv.as_bytes())?)
}

fn run_train(a: TrainArgs) -> Result<()> {
    let cfg = TrainConfig {
        method: a.method,
        k: a.k,
        lr: a.lr,
        batch_size: a.batch_size,
        epochs: a.epochs,
        n_hidden: a.hidden,
        seed: a.seed,
        train_size: a.train_size,
    };
    cfg.check(50_000)?;
    let n_threads = threads(a.threads)?;
    let data = load_data(&a.io.data)?;
    check_sampling(&a.sampling, data.test.n)?;
    prepare_out(&a.io.out)?;
    let out = &a.io.out;

    let rbm = Rbm::new(784, cfg.n_hidden, &mut Stream::new(cfg.seed, 0))?;
    let mut trainer = Trainer::new(&rbm, cfg.clone())?;
    let train = data.train.slice(0..cfg.train_size);
    let nb = cfg.batches_per_epoch();
    let mut training_secs = 0f64;
    while !trainer.done() {
        let epoch = trainer.epoch;
        let pb = progress_bar(nb as u64, format!("epoch {epoch}"));
        let t = Instant::now();
        let cost = loop {
            let done = trainer.run(&train, 25, n_threads)?;
            pb.set_position(trainer.batch_index as u64);
            if let Some(c) = done {
                break c;
            }
        };
        let secs = t.elapsed().as_secs_f64();
        pb.finish_and_clear();
        training_secs += secs;
        trainer.history.push(EpochRecord { epoch, cost, seconds: secs });
        println!("Training epoch {epoch}, cost is  {cost}");
        let rbm = trainer.rbm();
        filters_image(&rbm, 28).save_png(&out.join(format!("filters_at_epoch_{epoch}.png")))?;
        write_metrics(out, &trainer.history)?;
    }
    println!("Training took {:.6} minutes", training_secs / 60.0);
    let rbm = trainer.rbm();
    save_model(&out.join("model.safetensors"), &rbm, config_metadata(&cfg, trainer.epoch))?;
    let secs = draw_samples(&rbm, &data, &a.sampling, cfg.seed, n_threads, out)?;
    println!("Sampling took {secs:.2} seconds; wrote {}", out.display());
    Ok(())
}

fn run_sample(a: SampleArgs) -> Result<()> {
    let (rbm, _) = load_model(&a.model)?;
    if rbm.n_visible != 784 {
        bail!("{}: the model has {} visible units; MNIST sampling needs 784", a.model.display(), rbm.n_visible);
    }
    let n_threads = threads(a.threads)?;
    let data = load_data(&a.io.data)?;
    check_sampling(&a.sampling, data.test.n)?;
    prepare_out(&a.io.out)?;
    let secs = draw_samples(&rbm, &data, &a.sampling, a.seed, n_threads, &a.io.out)?;
    println!("Sampling took {secs:.2} seconds; wrote {}", a.io.out.join("samples.png").display());
    Ok(())
}

/// Best and median of some timings.
fn best_median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[0], v[v.len() / 2])
}

fn run_bench(a: BenchArgs) -> Result<()> {
    if a.updates == 0 || a.repeat == 0 {
        bail!("--updates and --repeat must be at least 1");
    }
    let n_threads = threads(a.threads)?;
    let data = load_data(&a.data)?;
    println!("threads: {n_threads}; each figure: best and median of {} timings", a.repeat);
    let mut sampled_model = None;
    for (name, method, k, batch) in [("PCD-15, batch 20 (the tutorial)", Method::Pcd, 15, 20), ("CD-1, batch 100", Method::Cd, 1, 100)] {
        let cfg = TrainConfig { method, k, batch_size: batch, train_size: 50_000, ..TrainConfig::default() };
        let rbm = Rbm::new(784, cfg.n_hidden, &mut Stream::new(cfg.seed, 0))?;
        let monitor = method == Method::Pcd;
        let flops = rbm::engine::update_flops(784, cfg.n_hidden, batch, k, monitor);
        let n = a.updates.min(cfg.batches_per_epoch());
        let (mut loop_t, mut prod_t) = (Vec::new(), Vec::new());
        let mut trainer = Trainer::new(&rbm, cfg.clone())?;
        for _ in 0..a.repeat {
            prod_t.push(rbm::engine::products_only(&rbm, batch, k, monitor, n, n_threads) / n as f64);
            if trainer.batch_index + n > cfg.batches_per_epoch() {
                trainer = Trainer::new(&rbm, cfg.clone())?;
            }
            let t = Instant::now();
            trainer.run(&data.train, n, n_threads)?;
            loop_t.push(t.elapsed().as_secs_f64() / n as f64);
        }
        let (lb, lm) = best_median(loop_t);
        let (pb, pm) = best_median(prod_t);
        println!("{name}: {:.1} MFLOP per update", flops / 1e6);
        println!("  (a) training loop:   {:8.1} updates/s best, {:8.1} median  ({:.1} / {:.1} GFLOP/s)", 1.0 / lb, 1.0 / lm, flops / lb / 1e9, flops / lm / 1e9);
        println!("  (b) products alone:  {:8.1} updates/s best, {:8.1} median  ({:.1} / {:.1} GFLOP/s)", 1.0 / pb, 1.0 / pm, flops / pb / 1e9, flops / pm / 1e9);
        println!("  (c) efficiency (a)/(b): {:.1}% best, {:.1}% median", 100.0 * pb / lb, 100.0 * pm / lm);
        if method == Method::Pcd {
            sampled_model = Some(trainer.rbm());
            let epoch = cfg.batches_per_epoch() as f64;
            println!("  one epoch of {} updates: {:.1} s at the best speed; 15 epochs: {:.2} min", epoch, epoch * lb, 15.0 * epoch * lb / 60.0);
        }
    }
    // the PCD-15 model as trained above: (d) samples a model that has learned something
    let rbm = sampled_model.expect("the PCD benchmark ran");
    let init = data.test.slice(0..20).to_f32();
    let mut times = Vec::new();
    let mut prod = Vec::new();
    for _ in 0..a.repeat.min(3) {
        let t = Instant::now();
        sample_rows(&rbm, &init, 10, 1000, 1234, n_threads, |_| {});
        times.push(t.elapsed().as_secs_f64());
        prod.push(rbm::engine::products_only(&rbm, 20, 15, true, 100, n_threads) / 100.0);
    }
    let (sb, sm) = best_median(times);
    let (pb, _) = best_median(prod);
    let flops = rbm::engine::update_flops(784, 500, 20, 15, true);
    println!("(d) sampling phase (10 rows x 1,000 gibbs_vhv steps, 20 chains): {sb:.2} s best, {sm:.2} s median (products alone meanwhile: {:.1} GFLOP/s)", flops / pb / 1e9);
    Ok(())
}
