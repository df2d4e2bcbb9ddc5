//! `rbm train`: the run's data, its observer (progress bars, pictures,
//! checkpoints, Ctrl-C), and the files it writes.

use crate::recipe::initial_model;
use crate::*;

/// The checkpoint's name in a run's directory.
pub(crate) const CHECKPOINT: &str = "checkpoint.safetensors";

/// What a checkpoint stores for the command line besides the trainer.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct RunExtra {
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
    /// --valid
    #[serde(default)]
    valid: Option<PathBuf>,
    /// --eval-every
    #[serde(default)]
    eval_every: Option<usize>,
    /// --valid-fraction (the split is drawn again from the seed on resume)
    #[serde(default)]
    valid_fraction: Option<f64>,
    /// --labels (checked against the rows again on resume)
    #[serde(default)]
    labels: Option<PathBuf>,
}

/// Draws samples.png as the tutorial: `chains` chains from `init`
/// (`[chains, n_visible]`, images of `side` x `side`), `samples` rows,
/// `plot_every` steps before each.
#[allow(clippy::too_many_arguments)]
pub(crate) fn draw_samples(
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

pub(crate) fn config_metadata(cfg: &TrainConfig, epochs_done: usize) -> HashMap<String, String> {
    HashMap::from([
        ("config".to_string(), serde_json::to_string(cfg).expect("config serialises")),
        ("epochs_done".to_string(), epochs_done.to_string()),
        ("seed".to_string(), cfg.seed.to_string()),
    ])
}

/// The command line's side of a training run: progress bars, the
/// per-epoch pictures and report, checkpoints, and Ctrl-C.
pub(crate) struct TrainView<'a> {
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

pub(crate) fn run_train(a: TrainArgs) -> Result<()> {
    let n_threads = threads(a.threads)?;
    if a.checkpoint_every == Some(0) {
        bail!("--checkpoint-every: must be at least 1");
    }
    if a.eval_every == Some(0) {
        bail!("--eval-every: must be at least 1");
    }
    // a run to resume: its checkpoint, read once, and what the CLI stored beside it
    let resumed = match &a.resume {
        Some(dir) => {
            let path = dir.join(CHECKPOINT);
            if !path.is_file() {
                bail!("--resume {}: no {CHECKPOINT} there to resume from", dir.display());
            }
            let ck = load_checkpoint(&path)?;
            let extra: RunExtra = serde_json::from_str(&ck.extra)
                .with_context(|| format!("{}: metadata `extra` is unreadable", path.display()))?;
            Some((path, ck, extra))
        }
        None => None,
    };
    let stored = resumed.as_ref().map(|(_, _, extra)| extra);
    let is_gaussian = match &resumed {
        Some((_, ck, _)) => ck.trainer.config().visible == Visible::Gaussian,
        None => a.visible == VisibleArg::Gaussian,
    };
    if !is_gaussian && (a.standardize || a.sigma != 1.0 || a.learn_sigma) {
        bail!("--standardize, --sigma and --learn-sigma: for Gaussian visible units (--visible gaussian)");
    }
    if !(a.sigma.is_finite() && a.sigma > 0.0) {
        bail!("--sigma: must be a positive finite number, got {}", a.sigma);
    }
    let label_column = a.io.label_column.clone().or(stored.and_then(|e| e.label_column.clone()));
    let labels = a.io.labels.clone().or(stored.and_then(|e| e.labels.clone()));
    let source = DataSource {
        data: a.io.data.as_ref().or(stored.and_then(|e| e.data.as_ref())),
        label_column: label_column.as_deref(),
        labels: labels.as_deref(),
    };
    let data = open_train_data(source, !is_gaussian)?;
    // --valid-fraction: a seeded split of the file's rows; training sees the rest
    let seed = resumed.as_ref().map_or(a.seed, |(_, ck, _)| ck.trainer.config().seed);
    let valid_fraction = a.valid_fraction.or(stored.and_then(|e| e.valid_fraction));
    let split = match valid_fraction {
        Some(_) if data.file().is_none() => {
            bail!("--valid-fraction: for a --data file (MNIST has its validation images)")
        }
        Some(f) => Some(split_rows(data.rows().n_rows(), f, seed).map_err(flagged)?),
        None => None,
    };
    let parts = match &split {
        Some((t, v)) => Some((Subset::new(data.rows(), t)?, Subset::new(data.rows(), v)?)),
        None => None,
    };
    let train_rows: &dyn DataRows = parts.as_ref().map_or(data.rows(), |(t, _)| t);
    let (n_rows, n_visible) = (train_rows.n_rows(), train_rows.n_cols());
    let (mut trainer, extra, out) = match (resumed, &a.resume) {
        (Some((path, ck, extra)), Some(dir)) => {
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
        _ => {
            let mut cfg = TrainConfig::default();
            cfg.method = a.method.into();
            if is_gaussian {
                (cfg.visible, cfg.learn_sigma) = (Visible::Gaussian, a.learn_sigma);
            }
            (cfg.k, cfg.lr, cfg.batch_size, cfg.epochs) = (a.k, a.lr, a.batch_size, a.epochs);
            (cfg.n_hidden, cfg.seed, cfg.n_parts) = (a.hidden, a.seed, a.parts);
            cfg.train_size = a.train_size.unwrap_or(n_rows);
            a.recipe.apply(&mut cfg);
            if a.eval_every.is_some() && data.file().is_some() && a.valid.is_none() && a.valid_fraction.is_none() {
                bail!("--eval-every: needs validation rows: give --valid FILE or --valid-fraction F");
            }
            let checked = cfg.check(n_rows).map_err(flagged)?;
            check_sampling(&a.sampling, data.sample_rows())?;
            let out = a.io.out.clone();
            prepare_out(&out)?;
            refuse_other_run(&out, &cfg)?;
            // the guide's initialisation and centring's offsets read the rows as the model will see them
            let z = match a.standardize && (cfg.init == rbm::recipe::Init::Guide || cfg.centering) {
                true => Some(Standardize::of(train_rows, cfg.train_size)?),
                false => None,
            };
            let (rbm, offsets) = match &z {
                Some(by) => initial_model(&cfg, &Standardized { data: train_rows, by }, is_gaussian, a.sigma)?,
                None => initial_model(&cfg, train_rows, is_gaussian, a.sigma)?,
            };
            let extra = RunExtra {
                sampling: a.sampling.clone(),
                data: data.file().map(Path::to_path_buf),
                standardize: a.standardize,
                label_column: label_column.clone(),
                valid: a.valid.clone(),
                eval_every: a.eval_every,
                valid_fraction: a.valid_fraction,
                labels: labels.clone(),
            };
            let mut trainer = if is_gaussian {
                Trainer::new_gaussian(&GaussianRbm::new(rbm, vec![a.sigma; n_visible])?, checked)?
            } else {
                Trainer::new(&rbm, checked)?
            };
            if let Some(mu) = offsets {
                trainer.set_offsets(&mu, &vec![0.5; cfg.n_hidden])?;
            }
            (trainer, extra, out)
        }
    };
    check_sampling(&extra.sampling, data.sample_rows())?;
    let cfg = trainer.config().clone();

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }
    let mnist = match &data {
        TrainData::Mnist(mnist) => Some(mnist),
        TrainData::File { .. } => None,
    };
    let standardize = match extra.standardize {
        true => Some(Standardize::of(train_rows, cfg.train_size)?),
        false => None,
    };
    let standardized = standardize.as_ref().map(|by| Standardized { data: train_rows, by });
    let rows: &dyn DataRows = match &standardized {
        Some(s) => s,
        None => train_rows,
    };
    // the validation rows: --valid's, the split's, or MNIST's
    let valid_file = match &extra.valid {
        Some(path) => {
            let src = DataSource { data: Some(path), label_column: label_column.as_deref(), labels: None };
            let v = open_train_data(src, !is_gaussian)?;
            if v.rows().n_cols() != n_visible {
                bail!("--valid {}: rows of {} values; the data's have {n_visible}", path.display(), v.rows().n_cols());
            }
            Some(v)
        }
        None => None,
    };
    let valid_src: Option<&dyn DataRows> = match (&valid_file, &parts, mnist) {
        (Some(v), _, _) => Some(v.rows()),
        (None, Some((_, v)), _) => Some(v),
        (None, None, Some(m)) => Some(&m.valid),
        (None, None, None) => None,
    };
    // the first `n` validation rows as the model sees them
    let first_valid = |n: usize| -> Result<Vec<f32>> {
        let v = valid_src.expect("validation rows");
        let mut out = vec![0f32; v.n_rows().min(n) * n_visible];
        v.copy_rows(0, &mut out)?;
        if let Some(z) = &standardize {
            z.apply(&mut out);
        }
        Ok(out)
    };
    // --eval-every: up to 10,000 validation rows (binary units: binarised
    // with the run's seed) and the base model (binary: the training rows'
    // smoothed base rates; Gaussian: their means)
    let (valid, base) = match (extra.eval_every, valid_src) {
        (Some(_), Some(_)) => {
            let mut v = first_valid(10_000)?;
            let (sums, _) = rbm::data::column_sums(rows, cfg.train_size)?;
            let base = match is_gaussian {
                true => sums.iter().map(|s| (s / cfg.train_size as f64) as f32).collect(),
                false => {
                    rbm::data::binarize_values(&mut v, cfg.seed);
                    base_rate_from_sums(&sums, cfg.train_size)
                }
            };
            (Some(v), base)
        }
        _ => (None, Vec::new()),
    };
    let mut opts = FitOptions::new(n_threads);
    opts.checkpoint_every = a.checkpoint_every;
    opts.validation = valid.as_ref().map(|rows| Validation {
        rows,
        base: &base,
        shift: standardize.as_ref().map_or(0.0, Standardize::log_density_shift),
        every: extra.eval_every.unwrap_or(1),
        seed: cfg.seed,
    });
    let side = data.image_side();
    // the free-energy gap between up to 1,000 training and as many
    // validation rows, as the model sees them
    let gap_rows = match valid_src {
        Some(_) => {
            let mut valid = first_valid(1000)?;
            let n = (valid.len() / n_visible).min(cfg.train_size);
            valid.truncate(n * n_visible);
            let mut train = vec![0f32; n * n_visible];
            rows.copy_rows(0, &mut train)?;
            Some((train, valid))
        }
        None => None,
    };
    opts.free_energy_gap = gap_rows.as_ref().map(|(t, v)| (&t[..], &v[..]));
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

/// What `rbm train` learns from: MNIST's tutorial split, or a file's rows
/// (with their labels, when given).
pub(crate) enum TrainData {
    Mnist(Box<Mnist>),
    File { path: PathBuf, rows: Box<dyn DataRows>, labels: Option<Vec<i64>> },
}

/// Where the data and its labels come from: --data, --label-column, --labels.
#[derive(Clone, Copy, Default)]
pub(crate) struct DataSource<'a> {
    pub data: Option<&'a PathBuf>,
    pub label_column: Option<&'a str>,
    pub labels: Option<&'a Path>,
}

/// --data: a .npy or .csv file (whose values must be finite, and for binary
/// units lie in [0, 1]: checked here, before anything is written), else an
/// MNIST directory; with --labels, one integer label per row.
pub(crate) fn open_train_data(src: DataSource, unit_interval: bool) -> Result<TrainData> {
    let ext = src.data.and_then(|p| p.extension()).map(|e| e.to_string_lossy().to_lowercase());
    if src.label_column.is_some() && ext.as_deref() != Some("csv") {
        bail!("--label-column: for a .csv --data file");
    }
    if src.labels.is_some() && !matches!(ext.as_deref(), Some("npy" | "csv")) {
        bail!("--labels: for a .npy or .csv --data file (MNIST brings its labels)");
    }
    let (path, rows, mut labels): (_, Box<dyn DataRows>, _) = match (src.data, ext.as_deref()) {
        (Some(path), Some("npy")) => {
            let f = rbm::npy::NpyFile::open(path)?;
            f.check_values(unit_interval)?;
            (path, Box::new(f), None)
        }
        (Some(path), Some("csv")) => {
            let mut t = rbm::csv::read_csv(path, None)?;
            let labels = src.label_column.map(|name| t.take_labels(name)).transpose()?;
            if unit_interval {
                t.check_unit_interval()?;
            }
            (path, Box::new(t), labels)
        }
        _ => return Ok(TrainData::Mnist(Box::new(load_data(&src.data.cloned())?))),
    };
    if let Some(file) = src.labels {
        let l = rbm::npy::read_labels(file).context("--labels")?;
        if l.len() != rows.n_rows() {
            bail!(
                "--labels {}: {} labels for the {} rows of {}",
                file.display(),
                l.len(),
                rows.n_rows(),
                path.display()
            );
        }
        labels = Some(l);
    }
    Ok(TrainData::File { path: path.clone(), rows, labels })
}

impl TrainData {
    pub(crate) fn rows(&self) -> &dyn DataRows {
        match self {
            TrainData::Mnist(mnist) => &mnist.train,
            TrainData::File { rows, .. } => rows.as_ref(),
        }
    }

    pub(crate) fn file(&self) -> Option<&Path> {
        match self {
            TrainData::Mnist(_) => None,
            TrainData::File { path, .. } => Some(path),
        }
    }

    /// The rows sampling chains may start at: MNIST's test images, or the file's rows.
    pub(crate) fn sample_rows(&self) -> usize {
        match self {
            TrainData::Mnist(mnist) => mnist.test.n,
            TrainData::File { rows, .. } => rows.n_rows(),
        }
    }

    /// The side of the square images the rows are, if they are.
    pub(crate) fn image_side(&self) -> Option<usize> {
        let n = self.rows().n_cols();
        let side = (n as f64).sqrt().round() as usize;
        (side * side == n).then_some(side)
    }

    /// `chains` consecutive rows at a random offset, `[chains, n_visible]`:
    /// where the sampling chains start, as the tutorial (MNIST's test images).
    pub(crate) fn sample_start(&self, chains: usize, seed: u64) -> Result<Vec<f32>> {
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
pub(crate) fn write_report(
    out: &Path,
    cfg: &TrainConfig,
    history: &[rbm::train::EpochRecord],
    has_samples: bool,
    has_filters: bool,
) -> rbm::Result<()> {
    let mut csv =
        String::from("epoch,cost,seconds,valid_log_likelihood,ll_estimator,free_energy_gap,reconstruction_mse\n");
    for r in history {
        let ll = r.log_likelihood.map_or(String::new(), |l| l.to_string());
        let gap = r.free_energy_gap.map_or(String::new(), |g| g.to_string());
        let mse = r.reconstruction_mse.map_or(String::new(), |m| m.to_string());
        csv += &format!(
            "{},{},{:.3},{},{},{gap},{mse}\n",
            r.epoch,
            r.cost,
            r.seconds,
            ll,
            r.ll_estimator.as_deref().unwrap_or("")
        );
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
pub(crate) fn refuse_other_run(out: &Path, cfg: &TrainConfig) -> Result<()> {
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
