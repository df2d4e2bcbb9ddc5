//! `rbm dbn train`: greedy layer-wise pretraining by CD-k (each layer an RBM
//! on p(h|v) of the layers below), then supervised fine-tuning of the
//! unrolled network with DBN.py's early stopping, with checkpoints after
//! every epoch of both phases, exact resume, and Ctrl-C.
//!
//! A run's directory holds `checkpoint.safetensors` (the finished layers, or
//! the network being fine-tuned and the best one so far, with the run's
//! settings, position and metrics) and, while a layer is being pretrained,
//! `layer_checkpoint.safetensors` (that layer's RBM trainer, as `rbm train`
//! writes it, tagged with the layer's index). Resume reads both and goes on
//! as if never stopped: the same bits in every file.

use crate::dbn::DbnTrainArgs;
use crate::*;
use rbm::data::OwnedRows;
use rbm::dbn::{Dbn, Dropout, LayerFeatures, Patience};
use rbm::finetune::FineTuner;
use rbm::modelfile::{load_dbn, load_dbn_checkpoint, save_dbn, save_dbn_checkpoint, DbnCheckpoint};
use serde::{Deserialize, Serialize};

const DBN_CHECKPOINT: &str = "checkpoint.safetensors";
const LAYER_CHECKPOINT: &str = "layer_checkpoint.safetensors";

/// Minibatches between two looks at the stop flag (and the progress bar).
const CHUNK: usize = 100;

/// Fine-tuning minibatches between two progress and Ctrl-C checks: one run
/// of [`FineTuner::steps`], whose team copies the network in and out.
const FT_CHUNK: usize = 500;

/// One row of metrics.csv: a pretraining epoch of a layer, or a fine-tuning
/// epoch with its validation error (and the test error when it improved).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Metric {
    layer: Option<usize>,
    epoch: usize,
    cost: f64,
    valid_error: Option<f64>,
    test_error: Option<f64>,
}

/// Where fine-tuning stands: the next minibatch's epoch and index, the
/// iteration count, the epoch's cost so far, the stopping rule, and the
/// test error of the best network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Tuning {
    epoch: usize,
    batch: usize,
    iter: usize,
    cost: f64,
    patience: usize,
    frequency: usize,
    /// the best validation error ("inf" before the first validation)
    best: String,
    best_iter: Option<usize>,
    best_test: Option<f64>,
    /// early stopping or the last epoch ended the run
    finished: bool,
}

/// Everything a checkpoint's metadata holds besides the tensors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RunState {
    args: DbnTrainArgs,
    metrics: Vec<Metric>,
    pretrain_seconds: f64,
    finetune_seconds: f64,
    tuning: Option<Tuning>,
}

impl RunState {
    fn checkpoint(&self, layers: &[Rbm], tuning: Option<(&Dbn, &Dbn)>) -> DbnCheckpoint {
        DbnCheckpoint {
            layers: if tuning.is_some() { Vec::new() } else { layers.to_vec() },
            tuning: tuning.map(|(n, b)| (n.clone(), b.clone())),
            metadata: HashMap::from([("run".to_string(), serde_json::to_string(self).expect("state serialises"))]),
        }
    }
}

fn read_state(path: &Path, ck: &DbnCheckpoint) -> Result<RunState> {
    let run = ck.metadata.get("run").with_context(|| format!("{}: metadata `run` is missing", path.display()))?;
    serde_json::from_str(run).with_context(|| format!("{}: metadata `run` is unreadable", path.display()))
}

pub(crate) fn run_dbn_train(flags: DbnTrainArgs) -> Result<()> {
    let n_threads = threads(flags.threads)?;
    // --pretrained FILE: the stack to fine-tune, in place of pretraining
    let mut stack: Option<Vec<Rbm>> = None;
    // --resume DIR: the run's settings, position and metrics from its checkpoint
    let (a, resumed) = match &flags.resume {
        Some(dir) => {
            let path = dir.join(DBN_CHECKPOINT);
            if !path.is_file() {
                bail!("--resume {}: no {DBN_CHECKPOINT} there to resume from", dir.display());
            }
            let ck = load_dbn_checkpoint(&path)?;
            let mut st = read_state(&path, &ck)?;
            if st.tuning.as_ref().is_some_and(|t| t.finished) {
                bail!(
                    "--resume {}: that run is complete; its network is {}",
                    dir.display(),
                    dir.join("dbn.safetensors").display()
                );
            }
            st.args.out = dir.clone();
            (st.args.clone(), Some((ck, st)))
        }
        None => {
            let mut a = flags;
            a.apply_preset();
            if let Some(file) = &a.pretrained {
                // the stack's sizes are the run's layers (recorded with its settings)
                let layers = load_dbn(file)?.0.layers;
                a.layers = layers.iter().map(|r| r.n_hidden).collect();
                stack = Some(layers);
            }
            (a, None)
        }
    };
    check_flags(&a)?;
    let d = dbn_data(&a)?;
    let n = a.train_size.unwrap_or(d.train.n_rows());
    if n > d.train.n_rows() || n < a.batch_size {
        bail!("--train-size: {n} rows; the data has {}, and a minibatch takes {}", d.train.n_rows(), a.batch_size);
    }
    let (ck, mut st) = match resumed {
        Some((ck, st)) => (Some(ck), st),
        None => {
            prepare_out(&a.out)?;
            refuse_other_run(&a)?;
            let _ = std::fs::remove_file(a.out.join(LAYER_CHECKPOINT));
            let st = RunState {
                args: a.clone(),
                metrics: Vec::new(),
                pretrain_seconds: 0.0,
                finetune_seconds: 0.0,
                tuning: None,
            };
            (None, st)
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }
    let side = square_side(d.train.n_cols());
    let run = Run { a: &a, d: &d, n, stop: &stop, n_threads, side, resuming: ck.is_some() };
    let (mut net, mut best) = match ck {
        Some(DbnCheckpoint { tuning: Some((net, best)), .. }) => (net, best),
        None if stack.is_some() => {
            let (file, layers) = (a.pretrained.as_ref().expect("--pretrained"), stack.expect("a stack"));
            if layers[0].n_visible != d.train.n_cols() {
                bail!(
                    "--pretrained {}: its first layer takes {} values; the data's rows have {}",
                    file.display(),
                    layers[0].n_visible,
                    d.train.n_cols()
                );
            }
            let net = Dbn::new(layers, d.n_classes)?;
            (net.clone(), net)
        }
        pretraining => {
            let mut layers = pretraining.map_or(Vec::new(), |c| c.layers);
            for l in layers.len()..a.layers.len() {
                run.pretrain_layer(l, &mut layers, &mut st)?;
            }
            let _ = std::fs::remove_file(a.out.join(LAYER_CHECKPOINT));
            let net = Dbn::new(layers, d.n_classes)?;
            // the stack alone, for fine-tuning again with other settings (--pretrained)
            let meta = HashMap::from([("args".to_string(), serde_json::to_string(&a).expect("args serialise"))]);
            save_dbn(&a.out.join("pretrained.safetensors"), &net, meta)?;
            (net.clone(), net)
        }
    };
    if let Some(side) = side {
        filters_image(&net.layers[0], side).save_png(&a.out.join("filters_layer_0.png"))?;
    }
    run.fine_tune(&mut net, &mut best, &mut st)?;
    let tu = st.tuning.as_ref().expect("fine-tuning ran");
    let mut meta = HashMap::from([
        ("layers".to_string(), format!("{:?}", a.layers)),
        ("best_valid_error".to_string(), tu.best.clone()),
        ("args".to_string(), serde_json::to_string(&a).expect("args serialise")),
    ]);
    let test = match (&d.test, tu.best_test) {
        (Some((tx, ty)), Some(t)) => {
            meta.insert("test_error".to_string(), t.to_string());
            if let Some(side) = side {
                misclassified_image(&best, tx, ty, side).save_png(&a.out.join("misclassified.png"))?;
            }
            format!(", with test error {:.3} %", 100.0 * t)
        }
        _ => " (the data has no test split)".to_string(),
    };
    save_dbn(&a.out.join("dbn.safetensors"), &best, meta)?;
    write_outputs(&a.out, &st, side.is_some(), true)?;
    say!(
        "Optimization complete with best validation error of {:.3} %{test}",
        100.0 * tu.best.parse::<f64>().unwrap_or(f64::NAN)
    );
    say!(
        "The pretraining ran for {:.2} min, the fine-tuning for {:.2} min; wrote {}",
        st.pretrain_seconds / 60.0,
        st.finetune_seconds / 60.0,
        a.out.display()
    );
    Ok(())
}

fn check_flags(a: &DbnTrainArgs) -> Result<()> {
    if a.layers.is_empty() || a.layers.contains(&0) {
        bail!("--layers: sizes of at least 1, e.g. 1000,1000,1000");
    }
    if !(a.finetune_lr.is_finite() && a.finetune_lr > 0.0) {
        bail!("--finetune-lr: must be a positive finite number, got {}", a.finetune_lr);
    }
    if a.max_epochs == 0 {
        bail!("--max-epochs: must be at least 1");
    }
    Dropout::new(a.dropout_input, a.dropout_hidden, a.seed).map_err(flagged)?;
    Ok(())
}

/// A fresh run must not overwrite the checkpoint of a different run.
fn refuse_other_run(a: &DbnTrainArgs) -> Result<()> {
    let path = a.out.join(DBN_CHECKPOINT);
    if !path.exists() {
        return Ok(());
    }
    let ck = load_dbn_checkpoint(&path).with_context(|| {
        format!("--out {}: holds an unreadable checkpoint; remove it or choose another --out", a.out.display())
    })?;
    let st = read_state(&path, &ck)?;
    if st.args != *a && !st.tuning.as_ref().is_some_and(|t| t.finished) {
        bail!(
            "{}: checkpoint of a different run ({}); continue it with --resume {}, or choose another --out",
            path.display(),
            serde_json::to_string(&st.args).expect("args serialise"),
            a.out.display()
        );
    }
    Ok(())
}

/// What both phases read: the settings, the data, the stop flag.
struct Run<'a> {
    a: &'a DbnTrainArgs,
    d: &'a DbnData,
    /// training rows used
    n: usize,
    stop: &'a AtomicBool,
    n_threads: usize,
    /// the side of the square images the rows are, when they are (pictures)
    side: Option<usize>,
    resuming: bool,
}

impl Run<'_> {
    /// Pretrains layer `l` on p(h|v) of `layers` (its input held in memory
    /// when it fits, else computed a minibatch at a time), resuming from the
    /// layer checkpoint when it is this layer's; appends the RBM to `layers`.
    fn pretrain_layer(&self, l: usize, layers: &mut Vec<Rbm>, st: &mut RunState) -> Result<()> {
        let (a, out, t_layer) = (self.a, &self.a.out, Instant::now());
        let features = LayerFeatures { data: self.d.train.as_ref(), layers };
        let held = if l > 0 && features.n_rows() * features.n_cols() * 4 <= HELD_FEATURES_BYTES {
            Some(OwnedRows::new(features.to_matrix()?, features.n_cols())?)
        } else {
            None
        };
        let rows: &dyn DataRows = match &held {
            Some(h) => h,
            None => &features,
        };
        let mut cfg = TrainConfig::default();
        (cfg.method, cfg.k, cfg.lr, cfg.batch_size) = (Method::Cd, a.k, a.pretrain_lr, a.batch_size);
        (cfg.epochs, cfg.n_hidden, cfg.seed, cfg.train_size) =
            (a.pretrain_epochs, a.layers[l], a.seed + l as u64, self.n);
        let checked = cfg.check(rows.n_rows()).map_err(flagged).context(format!("layer {l}"))?;
        let layer_ck = out.join(LAYER_CHECKPOINT);
        // the layer checkpoint continues this layer; one of another layer is stale
        let kept = match self.resuming && layer_ck.is_file() {
            true => Some(load_checkpoint(&layer_ck)?).filter(|c| c.extra == l.to_string()),
            false => None,
        };
        let mut trainer = match kept {
            Some(c) => c.trainer,
            None => Trainer::new(&Rbm::init(rows.n_cols(), a.layers[l], cfg.seed)?, checked)?,
        };
        let per_epoch = cfg.batches_per_epoch();
        let pb = progress_bar((a.pretrain_epochs * per_epoch) as u64, format!("pretraining layer {l}"));
        let mut since = Instant::now();
        while !trainer.done() {
            let ended = trainer.run(rows, CHUNK, self.n_threads).map_err(flagged)?;
            pb.set_position((trainer.epoch() * per_epoch + trainer.batch_index()) as u64);
            let stopping = self.stop.load(Ordering::Relaxed) && !trainer.done();
            if let Some(cost) = ended {
                st.metrics.push(Metric {
                    layer: Some(l),
                    epoch: trainer.epoch() - 1,
                    cost,
                    valid_error: None,
                    test_error: None,
                });
            }
            if ended.is_some() || stopping {
                st.pretrain_seconds += since.elapsed().as_secs_f64();
                since = Instant::now();
                save_checkpoint(&layer_ck, &mut trainer, &l.to_string())?;
                save_dbn_checkpoint(&out.join(DBN_CHECKPOINT), &st.checkpoint(layers, None))?;
                write_outputs(out, st, false, false)?;
            }
            if stopping {
                pb.finish_and_clear();
                interrupted(
                    out,
                    &format!("pretraining layer {l}, epoch {}, minibatch {}", trainer.epoch(), trainer.batch_index()),
                );
            }
        }
        pb.finish_and_clear();
        st.pretrain_seconds += since.elapsed().as_secs_f64();
        let cost = trainer.history().last().map_or(f64::NAN, |r| r.cost);
        say!(
            "Pre-training layer {l}: {} epochs, cost {cost:.4}, {:.2} min",
            a.pretrain_epochs,
            t_layer.elapsed().as_secs_f64() / 60.0
        );
        layers.push(trainer.rbm());
        save_dbn_checkpoint(&out.join(DBN_CHECKPOINT), &st.checkpoint(layers, None))?;
        Ok(())
    }

    /// Fine-tunes `net` by minibatch SGD on the cross-entropy, validating
    /// once per epoch and keeping the best network in `best`, until DBN.py's
    /// patience runs out or the epochs do; a checkpoint after every epoch.
    fn fine_tune(&self, net: &mut Dbn, best: &mut Dbn, st: &mut RunState) -> Result<()> {
        let (a, d, out) = (self.a, self.d, &self.a.out);
        let b = a.batch_size;
        let batches = self.n / b;
        let mut tu = st.tuning.clone().unwrap_or_else(|| {
            let p = Patience::new(batches);
            Tuning {
                epoch: 0,
                batch: 0,
                iter: 0,
                cost: 0.0,
                patience: p.patience,
                frequency: p.frequency,
                best: p.best.to_string(),
                best_iter: None,
                best_test: None,
                finished: false,
            }
        });
        let mut patience = Patience {
            patience: tu.patience,
            frequency: tu.frequency,
            best: tu.best.parse().context("the checkpoint's best validation error")?,
            best_iter: tu.best_iter,
        };
        let dropout = Dropout::new(a.dropout_input, a.dropout_hidden, a.seed).map_err(flagged)?;
        let mut tuner = FineTuner::new(net, b).with_dropout(dropout);
        // dropout's masks go on from step `iter` (the same after a resume); each run of steps advances it
        tuner.set_step_index(tu.iter as u64);
        let mut since = Instant::now();
        let mut save = |tu: &Tuning, patience: &Patience, st: &mut RunState, net: &Dbn, best: &Dbn| -> Result<()> {
            let mut tu = tu.clone();
            (tu.patience, tu.best, tu.best_iter) = (patience.patience, patience.best.to_string(), patience.best_iter);
            st.tuning = Some(tu);
            st.finetune_seconds += since.elapsed().as_secs_f64();
            since = Instant::now();
            save_dbn_checkpoint(&out.join(DBN_CHECKPOINT), &st.checkpoint(&[], Some((net, best))))?;
            write_outputs(out, st, self.side.is_some(), false)
        };
        while tu.epoch < a.max_epochs && !tu.finished {
            let pb = progress_bar(batches as u64, format!("fine-tuning epoch {}", tu.epoch));
            while tu.batch < batches {
                let (iter, batch) = (tu.iter, tu.batch);
                // a run of minibatches up to the next thing to do after one: a
                // validation, the end of patience, a progress and Ctrl-C check, the epoch's end
                let run = [
                    FT_CHUNK - batch % FT_CHUNK,
                    batches - batch,
                    patience.frequency - iter % patience.frequency,
                    patience.patience.max(iter) - iter + 1,
                ]
                .into_iter()
                .min()
                .unwrap_or(1);
                let fill = |i: usize, xb: &mut [f32], yb: &mut [usize]| -> rbm::Result<()> {
                    let at = batch + i;
                    d.train.copy_rows(at * b, xb)?;
                    yb.copy_from_slice(&d.train_y[at * b..(at + 1) * b]);
                    Ok(())
                };
                tu.cost += tuner.steps(net, run, a.finetune_lr, self.n_threads, &fill)?;
                (tu.iter, tu.batch) = (iter + run, batch + run);
                let last = iter + run - 1;
                if patience.validates_after(last) {
                    pb.finish_and_clear();
                    let valid = net.error_rate(&d.valid_x, &d.valid_y, self.n_threads);
                    let improved = patience.observe(last, valid);
                    let test = match &d.test {
                        Some((tx, ty)) if improved => Some(net.error_rate(tx, ty, self.n_threads)),
                        _ => None,
                    };
                    if improved {
                        (*best, tu.best_test) = (net.clone(), test);
                    }
                    st.metrics.push(Metric {
                        layer: None,
                        epoch: tu.epoch,
                        cost: tu.cost / tu.batch as f64,
                        valid_error: Some(valid),
                        test_error: test,
                    });
                    say!(
                        "epoch {}, minibatch {}/{batches}, validation error {:.3} %{}",
                        tu.epoch,
                        tu.batch,
                        100.0 * valid,
                        test.map_or(String::new(), |t| format!(", test error of the best model {:.3} %", 100.0 * t))
                    );
                }
                if patience.done(last) {
                    tu.finished = true;
                    break;
                }
                if tu.batch.is_multiple_of(FT_CHUNK) {
                    pb.set_position(tu.batch as u64);
                    if self.stop.load(Ordering::Relaxed) && tu.batch < batches {
                        pb.finish_and_clear();
                        save(&tu, &patience, st, net, best)?;
                        interrupted(out, &format!("fine-tuning epoch {}, minibatch {}", tu.epoch, tu.batch));
                    }
                }
            }
            pb.finish_and_clear();
            if !tu.finished {
                (tu.epoch, tu.batch, tu.cost) = (tu.epoch + 1, 0, 0.0);
                tu.finished = tu.epoch == a.max_epochs;
            }
            save(&tu, &patience, st, net, best)?;
            if self.stop.load(Ordering::Relaxed) && !tu.finished {
                interrupted(out, &format!("fine-tuning epoch {}, minibatch 0", tu.epoch));
            }
        }
        Ok(())
    }
}

/// Says where the run stopped and how to go on, and exits with 130 (as a
/// shell does after Ctrl-C); the checkpoint is already written.
fn interrupted(out: &Path, at: &str) -> ! {
    eprintln!(
        "interrupted in {at}: checkpoint written to {}\nresume with: rbm dbn train --resume {}",
        out.join(DBN_CHECKPOINT).display(),
        out.display()
    );
    std::process::exit(130);
}

/// metrics.csv, learning_curves.svg and index.html from the metrics so far.
fn write_outputs(out: &Path, st: &RunState, has_filters: bool, has_misclassified: bool) -> Result<()> {
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    let mut csv = String::from("phase,layer,epoch,cost,valid_error,test_error\n");
    for m in &st.metrics {
        let phase = if m.layer.is_some() { "pretrain" } else { "finetune" };
        let layer = m.layer.map_or(String::new(), |l| l.to_string());
        csv += &format!("{phase},{layer},{},{},{},{}\n", m.epoch, m.cost, opt(m.valid_error), opt(m.test_error));
    }
    write_atomic(&out.join("metrics.csv"), csv.as_bytes())?;
    let pretrain: Vec<(usize, usize, f64)> =
        st.metrics.iter().filter_map(|m| m.layer.map(|l| (l, m.epoch, m.cost))).collect();
    let tuning: Vec<(usize, f64, Option<f64>)> = st
        .metrics
        .iter()
        .filter(|m| m.layer.is_none())
        .map(|m| (m.epoch, m.valid_error.unwrap_or(f64::NAN), m.test_error))
        .collect();
    write_atomic(&out.join("learning_curves.svg"), report::dbn_curves_svg(&pretrain, &tuning).as_bytes())?;
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&serde_json::to_string(&st.args).expect("args serialise")).expect("args parse");
    let config: Vec<(String, String)> =
        json.iter().map(|(k, v)| (k.clone(), v.to_string().trim_matches('"').to_string())).collect();
    let title = format!("DBN run: layers {:?}, CD-{}", st.args.layers, st.args.k);
    let page = report::dbn_index_html(&title, &config, &csv, has_filters, has_misclassified);
    write_atomic(&out.join("index.html"), page.as_bytes())?;
    Ok(())
}

/// The side of square images of `n` pixels, when `n` is a square.
fn square_side(n: usize) -> Option<usize> {
    let side = (n as f64).sqrt().round() as usize;
    (side * side == n).then_some(side)
}

/// Up to 100 misclassified rows of `x` (`[n, side²]`), 10 to a row, in order.
pub(crate) fn misclassified_image(net: &Dbn, x: &[f32], y: &[usize], side: usize) -> rbm::images::Grey {
    let (p, c, nv) = (net.predict_proba(x), net.n_classes(), side * side);
    let wrong: Vec<f32> = p
        .chunks_exact(c)
        .zip(y)
        .enumerate()
        .filter(|(_, (row, &k))| rbm::dbn::most_probable(row) != k)
        .take(100)
        .flat_map(|(r, _)| x[r * nv..(r + 1) * nv].iter().copied())
        .collect();
    let n = wrong.len() / nv;
    rbm::images::tile_raster_images(&wrong, (side, side), (n.div_ceil(10).max(1), 10))
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
                train: Box::new(OwnedRows::new(train_x, rows.n_cols())?),
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
