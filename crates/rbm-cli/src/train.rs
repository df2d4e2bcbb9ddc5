//! `rbm train`: the run's data, its observer (progress bars, pictures,
//! checkpoints, Ctrl-C), and the files it writes.

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
    let data = open_train_data(
        a.io.data.as_ref().or(stored.and_then(|e| e.data.as_ref())),
        label_column.as_deref(),
        !is_gaussian,
    )?;
    let (n_rows, n_visible) = (data.rows().n_rows(), data.rows().n_cols());
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
                valid: a.valid.clone(),
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
    // the free-energy gap between up to 1,000 training and as many validation
    // rows (MNIST's, or --valid's), as the model sees them
    let valid_rows = match &extra.valid {
        Some(path) => {
            let v = open_train_data(Some(path), label_column.as_deref(), !is_gaussian)?;
            let rows = v.rows();
            if rows.n_cols() != n_visible {
                bail!("--valid {}: rows of {} values; the data's have {n_visible}", path.display(), rows.n_cols());
            }
            let mut out = vec![0f32; rows.n_rows().min(1000) * n_visible];
            rows.copy_rows(0, &mut out)?;
            Some(out)
        }
        None => mnist.map(|m| m.valid.slice(0..1000).to_f32()),
    };
    let gap_rows = match valid_rows {
        Some(mut valid) => {
            let n = (valid.len() / n_visible).min(cfg.train_size);
            valid.truncate(n * n_visible);
            let mut train = vec![0f32; n * n_visible];
            data.rows().copy_rows(0, &mut train)?;
            if let Some(z) = &standardize {
                z.apply(&mut train);
                z.apply(&mut valid);
            }
            Some((train, valid))
        }
        None => None,
    };
    opts.free_energy_gap = gap_rows.as_ref().map(|(t, v)| (&t[..], &v[..]));
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
pub(crate) enum TrainData {
    Mnist(Box<Mnist>),
    File { path: PathBuf, rows: Box<dyn DataRows> },
}

/// --data: a .npy or .csv file (whose values must be finite, and for binary
/// units lie in [0, 1]: checked here, before anything is written), else an
/// MNIST directory.
pub(crate) fn open_train_data(
    flag: Option<&PathBuf>,
    label_column: Option<&str>,
    unit_interval: bool,
) -> Result<TrainData> {
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
