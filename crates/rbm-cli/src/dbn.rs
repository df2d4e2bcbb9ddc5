//! `rbm dbn`: deep belief networks on MNIST, as the tutorial series' DBN.py:
//! greedy layer-wise pretraining by CD-k, then supervised fine-tuning of the
//! unrolled network with DBN.py's early stopping; evaluation and prediction.
//!
//! Not yet: checkpoints and resume, data files, sampling, presets.

use crate::*;
use rbm::dbn::{Dbn, LayerFeatures, Patience};
use rbm::finetune::FineTuner;
use rbm::modelfile::{load_dbn, save_dbn};

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

#[derive(Args)]
pub(crate) struct DbnTrainArgs {
    /// Hidden layer sizes, bottom first.
    #[arg(long, value_delimiter = ',', default_value = "1000,1000,1000")]
    layers: Vec<usize>,
    /// Pretraining epochs per layer.
    #[arg(long, default_value_t = 100)]
    pretrain_epochs: usize,
    /// Pretraining learning rate.
    #[arg(long, default_value_t = 0.01)]
    pretrain_lr: f32,
    /// Gibbs steps of pretraining's CD-k.
    #[arg(short = 'k', default_value_t = 1)]
    k: usize,
    /// Minibatch size of both phases.
    #[arg(long, default_value_t = 10)]
    batch_size: usize,
    /// Fine-tuning learning rate.
    #[arg(long, default_value_t = 0.1)]
    finetune_lr: f32,
    /// Fine-tuning epochs at most (early stopping usually ends it sooner).
    #[arg(long, default_value_t = 1000)]
    max_epochs: usize,
    /// Use only the first N training images (quick runs).
    #[arg(long)]
    train_size: Option<usize>,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// Directory with the MNIST files, or a .npy or .csv file of rows with
    /// values in [0, 1] (then with --labels or --label-column).
    #[arg(long, value_name = "DIR|FILE")]
    data: Option<PathBuf>,
    /// A --data file's class labels: a 1-D integer .npy, one per row.
    #[arg(long, value_name = "FILE", requires = "data")]
    labels: Option<PathBuf>,
    /// A --data CSV's label column (by its header name).
    #[arg(long, value_name = "NAME", requires = "data", conflicts_with = "labels")]
    label_column: Option<String>,
    /// The fraction of a --data file's rows held out for validation, drawn with --seed.
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    valid_fraction: f64,
    /// Output directory.
    #[arg(long, value_name = "DIR", default_value = "dbn")]
    out: PathBuf,
    /// Worker threads for pretraining (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
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
        DbnCommand::Train(a) => run_dbn_train(a),
        DbnCommand::Eval(a) => run_dbn_eval(a),
        DbnCommand::Predict(a) => run_dbn_predict(a),
        DbnCommand::Sample(a) => run_dbn_sample(a),
    }
}

fn run_dbn_train(a: DbnTrainArgs) -> Result<()> {
    let n_threads = threads(a.threads)?;
    if a.layers.is_empty() || a.layers.contains(&0) {
        bail!("--layers: sizes of at least 1, e.g. 1000,1000,1000");
    }
    if !(a.finetune_lr.is_finite() && a.finetune_lr > 0.0) {
        bail!("--finetune-lr: must be a positive finite number, got {}", a.finetune_lr);
    }
    if a.max_epochs == 0 {
        bail!("--max-epochs: must be at least 1");
    }
    let d = dbn_data(&a)?;
    let n = a.train_size.unwrap_or(d.train.n_rows());
    prepare_out(&a.out)?;
    // pretraining: layer l an RBM by CD-k on p(h|v) of the layers below
    let mut layers: Vec<Rbm> = Vec::new();
    let mut metrics = String::from("phase,layer,epoch,cost,valid_error,test_error\n");
    let t0 = Instant::now();
    for (l, &n_hidden) in a.layers.iter().enumerate() {
        let t_layer = Instant::now();
        let features = LayerFeatures { data: d.train.as_ref(), layers: &layers };
        // the layer's input computed once when it fits in memory, else a minibatch at a time
        let held = if l > 0 && features.n_rows() * features.n_cols() * 4 <= HELD_FEATURES_BYTES {
            Some(OwnedRows(features.to_matrix()?, features.n_cols()))
        } else {
            None
        };
        let rows: &dyn DataRows = match &held {
            Some(h) => h,
            None => &features,
        };
        let mut cfg = TrainConfig::default();
        (cfg.method, cfg.k, cfg.lr, cfg.batch_size) = (Method::Cd, a.k, a.pretrain_lr, a.batch_size);
        (cfg.epochs, cfg.n_hidden, cfg.seed, cfg.train_size) = (a.pretrain_epochs, n_hidden, a.seed + l as u64, n);
        let checked = cfg.check(d.train.n_rows()).map_err(flagged).context(format!("layer {l}"))?;
        let start = Rbm::init(rows.n_cols(), n_hidden, cfg.seed)?;
        let mut trainer = Trainer::new(&start, checked)?;
        let pb = progress_bar(a.pretrain_epochs as u64, format!("pretraining layer {l}"));
        while !trainer.done() {
            if let Some(cost) = trainer.run(rows, usize::MAX, n_threads).map_err(flagged)? {
                metrics.push_str(&format!("pretrain,{l},{},{cost},,\n", trainer.epoch() - 1));
                pb.set_position(trainer.epoch() as u64);
            }
        }
        pb.finish_and_clear();
        say!(
            "Pre-training layer {l}: {} epochs, cost {:.4}, {:.2} min",
            a.pretrain_epochs,
            trainer.history().last().unwrap().cost,
            t_layer.elapsed().as_secs_f64() / 60.0
        );
        layers.push(trainer.rbm());
    }
    let pretrain_min = t0.elapsed().as_secs_f64() / 60.0;
    let nv = d.train.n_cols();
    let side = (nv as f64).sqrt().round() as usize;
    if side * side == nv {
        filters_image(&layers[0], side).save_png(&a.out.join("filters_layer_0.png"))?;
    }
    // fine-tuning: minibatch SGD on the cross-entropy, DBN.py's early stopping
    let mut net = Dbn::new(layers, d.n_classes)?;
    let b = a.batch_size;
    let batches = n / b;
    let (valid_x, valid_y) = (&d.valid_x, &d.valid_y);
    let mut patience = Patience::new(batches);
    let (mut best, mut best_test) = (net.clone(), f64::NAN);
    let (mut x, t1) = (vec![0f32; b * nv], Instant::now());
    let mut tuner = FineTuner::new(&net, b);
    let mut iter = 0;
    'epochs: for epoch in 0..a.max_epochs {
        let mut cost = 0f64;
        let pb = progress_bar(batches as u64, format!("fine-tuning epoch {epoch}"));
        for batch in 0..batches {
            if batch % 100 == 0 {
                pb.set_position(batch as u64);
            }
            d.train.copy_rows(batch * b, &mut x)?;
            cost += tuner.step(&mut net, &x, &d.train_y[batch * b..(batch + 1) * b], a.finetune_lr)?;
            if patience.validates_after(iter) {
                pb.finish_and_clear();
                let valid = net.error_rate(valid_x, valid_y);
                let improved = patience.observe(iter, valid);
                let test = match &d.test {
                    Some((tx, ty)) if improved => net.error_rate(tx, ty),
                    _ => f64::NAN,
                };
                if improved {
                    (best, best_test) = (net.clone(), test);
                }
                metrics.push_str(&format!(
                    "finetune,,{epoch},{},{valid},{}\n",
                    cost / (batch + 1) as f64,
                    if improved { test.to_string() } else { String::new() }
                ));
                say!(
                    "epoch {epoch}, minibatch {}/{batches}, validation error {:.3} %{}",
                    batch + 1,
                    100.0 * valid,
                    if improved {
                        format!(", test error of the best model {:.3} %", 100.0 * test)
                    } else {
                        String::new()
                    }
                );
            }
            if patience.done(iter) {
                pb.finish_and_clear();
                break 'epochs;
            }
            iter += 1;
        }
        pb.finish_and_clear();
    }
    let finetune_min = t1.elapsed().as_secs_f64() / 60.0;
    let mut meta = HashMap::from([
        ("layers".to_string(), format!("{:?}", a.layers)),
        ("best_valid_error".to_string(), patience.best.to_string()),
    ]);
    let test = match d.test {
        Some(_) => {
            meta.insert("test_error".to_string(), best_test.to_string());
            format!(", with test error {:.3} %", 100.0 * best_test)
        }
        None => " (the data has no test split)".to_string(),
    };
    save_dbn(&a.out.join("dbn.safetensors"), &best, meta)?;
    write_atomic(&a.out.join("metrics.csv"), metrics.as_bytes())?;
    say!("Optimization complete with best validation error of {:.3} %{test}", 100.0 * patience.best);
    say!(
        "The pretraining ran for {pretrain_min:.2} min, the fine-tuning for {finetune_min:.2} min; wrote {}",
        a.out.display()
    );
    Ok(())
}

/// The largest layer input that pretraining holds in memory (2 GiB).
const HELD_FEATURES_BYTES: usize = 2 << 30;

/// What `rbm dbn train` learns from: labelled training rows, validation rows,
/// and test rows when the data has them (MNIST's split, or a file split by
/// --valid-fraction).
struct DbnData {
    train: Box<dyn DataRows>,
    train_y: Vec<usize>,
    valid_x: Vec<f32>,
    valid_y: Vec<usize>,
    test: Option<(Vec<f32>, Vec<usize>)>,
    n_classes: usize,
}

/// Rows of f32 values owned in memory, `[n_rows, n_cols]`.
struct OwnedRows(Vec<f32>, usize);

impl DataRows for OwnedRows {
    fn n_rows(&self) -> usize {
        self.0.len() / self.1
    }
    fn n_cols(&self) -> usize {
        self.1
    }
    fn copy_rows(&self, start: usize, out: &mut [f32]) -> rbm::Result<()> {
        out.copy_from_slice(&self.0[start * self.1..start * self.1 + out.len()]);
        Ok(())
    }
}

fn dbn_data(a: &DbnTrainArgs) -> Result<DbnData> {
    let src =
        DataSource { data: a.data.as_ref(), label_column: a.label_column.as_deref(), labels: a.labels.as_deref() };
    match open_train_data(src, true)? {
        TrainData::Mnist(m) => Ok(DbnData {
            train_y: labels_of(&m.train_labels),
            valid_x: m.valid.to_f32(),
            valid_y: labels_of(&m.valid_labels),
            test: Some((m.test.to_f32(), labels_of(&m.test_labels))),
            n_classes: 10,
            train: Box::new(m.train),
        }),
        TrainData::File { path, rows, labels } => {
            let Some(labels) = labels else {
                bail!("--data {}: a DBN learns classes: give --labels FILE or --label-column NAME", path.display());
            };
            if let Some((r, l)) = labels.iter().enumerate().find(|(_, &l)| l < 0) {
                bail!("--labels: label {l} of row {r} is negative; classes are 0, 1, 2, ...");
            }
            let n_classes = labels.iter().max().map_or(0, |&m| m as usize + 1).max(2);
            let (train_idx, valid_idx) = split_rows(rows.n_rows(), a.valid_fraction, a.seed).map_err(flagged)?;
            let take = |idx: &[u32]| -> Result<(Vec<f32>, Vec<usize>)> {
                let sub = Subset::new(rows.as_ref(), idx)?;
                let mut x = vec![0f32; idx.len() * rows.n_cols()];
                sub.copy_rows(0, &mut x)?;
                Ok((x, idx.iter().map(|&i| labels[i as usize] as usize).collect()))
            };
            let ((train_x, train_y), (valid_x, valid_y)) = (take(&train_idx)?, take(&valid_idx)?);
            Ok(DbnData {
                train: Box::new(OwnedRows(train_x, rows.n_cols())),
                train_y,
                valid_x,
                valid_y,
                test: None,
                n_classes,
            })
        }
    }
}

fn labels_of(l: &[u8]) -> Vec<usize> {
    l.iter().map(|&k| k as usize).collect()
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
    let p = net.predict_proba(&images.to_f32());
    let mut confusion = vec![vec![0usize; 10]; 10];
    for (row, &y) in p.chunks_exact(10).zip(labels) {
        confusion[y as usize][rbm::dbn::most_probable(row)] += 1;
    }
    let wrong: usize = (0..10).map(|k| confusion[k].iter().sum::<usize>() - confusion[k][k]).sum();
    let error = wrong as f64 / labels.len() as f64;
    if a.json {
        say!("{}", serde_json::json!({"error_rate": error, "n_images": labels.len(), "confusion": confusion}));
    } else {
        say!(
            "{} error: {:.3} % ({wrong} of {} images)",
            format!("{:?}", a.split).to_lowercase(),
            100.0 * error,
            labels.len()
        );
        say!("confusion (rows: true class, columns: predicted):");
        for row in &confusion {
            say!("{}", row.iter().map(|c| format!("{c:5}")).collect::<String>());
        }
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
