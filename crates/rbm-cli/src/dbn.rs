//! `rbm dbn`: deep belief networks, as the tutorial series' DBN.py: its
//! flags, and evaluation, prediction and sampling (training, with its
//! checkpoints, is in `dbn_train.rs`).

use crate::*;
use rbm::modelfile::load_dbn;

#[derive(Subcommand)]
pub(crate) enum DbnCommand {
    /// Pretrain a stack of RBMs on MNIST's grey training images, then fine-tune
    /// it as a classifier (DBN.py's defaults), and write dbn.safetensors and
    /// metrics.csv into the output directory.
    Train(DbnTrainArgs),
    /// A DBN's error rate and confusion matrix on an MNIST split.
    Eval(DbnEvalArgs),
    /// Class probabilities of the rows of a .npy file, as float32 `[rows, classes]`.
    Predict(DbnPredictArgs),
    /// Generate from the pretrained DBN: Gibbs sampling in the top RBM (started
    /// at test images taken up), then one down pass of p(v|h) through the
    /// lower layers, drawn as samples.png.
    Sample(DbnSampleArgs),
}

#[derive(Args)]
pub(crate) struct DbnSampleArgs {
    /// The DBN file (dbn.safetensors).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Output directory.
    #[arg(long, value_name = "DIR", default_value = "dbn")]
    out: PathBuf,
    /// Directory with the MNIST files.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Chains (columns of samples.png).
    #[arg(long, default_value_t = 20)]
    chains: usize,
    /// Plotted rows.
    #[arg(long, default_value_t = 10)]
    samples: usize,
    /// Gibbs steps in the top RBM between two rows.
    #[arg(long, default_value_t = 1000)]
    plot_every: usize,
    /// Seed of the chains and of the test-image offset.
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args, Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct DbnTrainArgs {
    /// Hidden layer sizes, bottom first.
    #[arg(long, value_delimiter = ',', default_value = "1000,1000,1000")]
    pub(crate) layers: Vec<usize>,
    /// Pretraining epochs per layer.
    #[arg(long, default_value_t = 100)]
    pub(crate) pretrain_epochs: usize,
    /// Pretraining learning rate.
    #[arg(long, default_value_t = 0.01)]
    pub(crate) pretrain_lr: f32,
    /// Gibbs steps of pretraining's CD-k.
    #[arg(short = 'k', default_value_t = 1)]
    pub(crate) k: usize,
    /// Minibatch size of both phases.
    #[arg(long, default_value_t = 10)]
    pub(crate) batch_size: usize,
    /// Fine-tuning learning rate.
    #[arg(long, default_value_t = 0.1)]
    pub(crate) finetune_lr: f32,
    /// Fine-tuning epochs at most (early stopping usually ends it sooner).
    #[arg(long, default_value_t = 1000)]
    pub(crate) max_epochs: usize,
    /// Fine-tuning's dropout: the probability of dropping an input unit in a step.
    #[arg(long, value_name = "P", default_value_t = 0.0, allow_negative_numbers = true)]
    #[serde(default)]
    pub(crate) dropout_input: f32,
    /// A named recipe that sets the layers and both phases' flags at once
    /// (see the README); it conflicts with the flags it sets.
    #[arg(long, value_enum, conflicts_with_all = ["layers", "pretrain_epochs", "pretrain_lr", "k", "batch_size", "finetune_lr", "max_epochs", "dropout_input", "dropout_hidden"])]
    #[serde(default)]
    pub(crate) preset: Option<DbnPreset>,
    /// Fine-tune the layers of this DBN file (a run's pretrained.safetensors)
    /// instead of pretraining; its sizes replace --layers.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["layers", "pretrain_epochs", "pretrain_lr", "k"])]
    #[serde(default)]
    pub(crate) pretrained: Option<PathBuf>,
    /// Fine-tuning's dropout: the probability of dropping a hidden unit in a step.
    #[arg(long, value_name = "P", default_value_t = 0.0, allow_negative_numbers = true)]
    #[serde(default)]
    pub(crate) dropout_hidden: f32,
    /// Use only the first N training images (quick runs).
    #[arg(long)]
    pub(crate) train_size: Option<usize>,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 1234)]
    pub(crate) seed: u64,
    /// Directory with the MNIST files, or a .npy or .csv file of rows with
    /// values in [0, 1] (then with --labels or --label-column).
    #[arg(long, value_name = "DIR|FILE")]
    pub(crate) data: Option<PathBuf>,
    /// A --data file's class labels: a 1-D integer .npy, one per row.
    #[arg(long, value_name = "FILE", requires = "data")]
    pub(crate) labels: Option<PathBuf>,
    /// A --data CSV's label column (by its header name).
    #[arg(long, value_name = "NAME", requires = "data", conflicts_with = "labels")]
    pub(crate) label_column: Option<String>,
    /// The fraction of a --data file's rows held out for validation, drawn with --seed.
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    pub(crate) valid_fraction: f64,
    /// Output directory.
    #[arg(long, value_name = "DIR", default_value = "dbn")]
    #[serde(skip)]
    pub(crate) out: PathBuf,
    /// Worker threads of both phases (default: all cores); results do not depend on it.
    #[arg(long)]
    #[serde(skip)]
    pub(crate) threads: Option<usize>,
    /// Continue the interrupted run in DIR from its checkpoint, with the
    /// run's own settings (the other flags, but --threads, are refused).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["layers", "pretrain_epochs", "pretrain_lr", "k", "batch_size", "finetune_lr", "max_epochs", "dropout_input", "dropout_hidden", "preset", "pretrained", "train_size", "seed", "data", "labels", "label_column", "valid_fraction", "out"])]
    #[serde(skip)]
    pub(crate) resume: Option<PathBuf>,
}

/// The DBN presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DbnPreset {
    /// DBN.py's network and pretraining, then fine-tuning with dropout (input
    /// 0.1, hidden 0.2) for at most 120 epochs
    Dropout,
}

impl DbnTrainArgs {
    /// Sets the flags the preset names (a run without one keeps its flags).
    pub(crate) fn apply_preset(&mut self) {
        if let Some(DbnPreset::Dropout) = self.preset {
            (self.layers, self.pretrain_epochs, self.pretrain_lr, self.k) = (vec![1000, 1000, 1000], 100, 0.01, 1);
            (self.batch_size, self.finetune_lr, self.max_epochs) = (10, 0.1, 120);
            (self.dropout_input, self.dropout_hidden) = (0.1, 0.2);
        }
    }
}

#[derive(Args)]
pub(crate) struct DbnEvalArgs {
    /// The DBN file (dbn.safetensors).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// The images to classify.
    #[arg(long, value_enum, default_value = "test")]
    split: Split,
    /// Directory with the MNIST files.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The picture of the misclassified digits (up to 100, in order)
    /// [default: misclassified_<split>.png beside the model].
    #[arg(long, value_name = "FILE")]
    picture: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct DbnPredictArgs {
    /// The DBN file (dbn.safetensors).
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// The rows to classify: a 2-D .npy file (uint8 read as value / 255, or floats).
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Output .npy file: float32 `[rows, classes]`.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub(crate) fn run_dbn(c: DbnCommand) -> Result<()> {
    match c {
        DbnCommand::Train(a) => crate::dbn_train::run_dbn_train(a),
        DbnCommand::Eval(a) => run_dbn_eval(a),
        DbnCommand::Predict(a) => run_dbn_predict(a),
        DbnCommand::Sample(a) => run_dbn_sample(a),
    }
}

fn run_dbn_eval(a: DbnEvalArgs) -> Result<()> {
    let (net, _) = load_dbn(&a.model)?;
    // with --json, stdout holds the JSON object alone
    let mnist = if a.json { load_mnist(&data_dir(&a.data))? } else { load_data(&a.data)? };
    let (images, labels) = split_images(&mnist, a.split);
    if net.layers[0].n_visible != images.dim() || net.n_classes() != 10 {
        bail!(
            "{}: a DBN of {} inputs and {} classes; MNIST needs 784 and 10",
            a.model.display(),
            net.layers[0].n_visible,
            net.n_classes()
        );
    }
    let x = images.to_f32();
    let p = net.predict_proba(&x);
    let mut confusion = vec![vec![0usize; 10]; 10];
    for (row, &y) in p.chunks_exact(10).zip(labels) {
        confusion[y as usize][rbm::dbn::most_probable(row)] += 1;
    }
    let wrong: usize = (0..10).map(|k| confusion[k].iter().sum::<usize>() - confusion[k][k]).sum();
    let error = wrong as f64 / labels.len() as f64;
    let split = format!("{:?}", a.split).to_lowercase();
    let picture = a.picture.clone().unwrap_or_else(|| a.model.with_file_name(format!("misclassified_{split}.png")));
    let y: Vec<usize> = labels.iter().map(|&k| k as usize).collect();
    crate::dbn_train::misclassified_image(&net, &x, &y, 28).save_png(&picture)?;
    if a.json {
        say!(
            "{}",
            serde_json::json!({"error_rate": error, "n_images": labels.len(), "confusion": confusion, "picture": picture})
        );
    } else {
        say!("{split} error: {:.3} % ({wrong} of {} images)", 100.0 * error, labels.len());
        say!("confusion (rows: true class, columns: predicted):");
        for row in &confusion {
            say!("{}", row.iter().map(|c| format!("{c:5}")).collect::<String>());
        }
        say!("the misclassified digits: {}", picture.display());
    }
    Ok(())
}

fn run_dbn_predict(a: DbnPredictArgs) -> Result<()> {
    let (net, _) = load_dbn(&a.model)?;
    let f = rbm::npy::NpyFile::open(&a.data)?;
    f.check_values(false)?;
    if f.n_cols() != net.layers[0].n_visible {
        bail!("{}: rows of {} values; the DBN takes {}", a.data.display(), f.n_cols(), net.layers[0].n_visible);
    }
    let (n, c) = (f.n_rows(), net.n_classes());
    let mut probs = Vec::with_capacity(n * c);
    let mut chunk = vec![0f32; 1000 * f.n_cols()];
    for start in (0..n).step_by(1000) {
        let rows = &mut chunk[..1000.min(n - start) * f.n_cols()];
        f.copy_rows(start, rows)?;
        probs.extend(net.predict_proba(rows));
    }
    write_atomic(&a.out, &rbm::modelfile::npy_bytes(&probs, &[n, c]))?;
    say!("wrote {} ({n} x {c} float32)", a.out.display());
    Ok(())
}

fn run_dbn_sample(a: DbnSampleArgs) -> Result<()> {
    let (net, _) = load_dbn(&a.model)?;
    let n_threads = threads(a.threads)?;
    let mnist = load_data(&a.data)?;
    if net.layers[0].n_visible != mnist.test.dim() {
        bail!("{}: a DBN of {} inputs; MNIST has 784", a.model.display(), net.layers[0].n_visible);
    }
    if a.chains == 0 || a.chains > mnist.test.n || a.samples == 0 || a.plot_every == 0 {
        bail!("--chains (1..={}), --samples and --plot-every: at least 1", mnist.test.n);
    }
    prepare_out(&a.out)?;
    let offset = Stream::new(a.seed, 1).below((mnist.test.n - a.chains + 1) as u64) as usize;
    let top = net.layers.last().expect("a layer");
    let init = net.up_to_top(&mnist.test.slice(offset..offset + a.chains).to_f32());
    let rows = sample_rows(top, None, &init, a.samples, a.plot_every, a.seed, n_threads, |r| {
        say!(" ... plotting sample  {r}")
    });
    let pixels: Vec<Vec<f32>> = rows.iter().map(|r| net.down(r)).collect();
    let path = a.out.join("samples.png");
    samples_image(&pixels, a.chains, 28).save_png(&path)?;
    say!("wrote {}", path.display());
    Ok(())
}
