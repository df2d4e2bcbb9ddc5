//! `rbm eval`: log-likelihood estimates of a saved model, binary (MNIST) or
//! Gaussian (a data file).

use crate::*;

pub(crate) fn run_eval(a: EvalArgs) -> Result<()> {
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
    if !(0.0..=1.0).contains(&a.ais_target_ess) {
        bail!("--ais-target-ess: a fraction in [0, 1], got {}", a.ais_target_ess);
    }
    let n_threads = threads(a.threads)?;
    let (_, meta) = load_model(&a.model)?;
    if meta.get("visible").map(String::as_str) == Some("gaussian") {
        return eval_gaussian(&a, n_threads);
    }
    let rbm = load_mnist_model(&a.model)?;
    let data = if a.json { load_mnist(&data_dir(&a.data))? } else { load_data(&a.data)? };
    let images = split_images(&data, a.split).0.binarize(a.binarize.into(), a.seed).to_f32();
    let vb_a = base_rate_vbias(&data.train);
    let mut opts = EvalOptions::default();
    opts.estimator = a.estimator.into();
    (opts.ais_runs, opts.ais_steps, opts.raise_images, opts.raise_steps) =
        (a.ais_runs, a.ais_steps, a.raise_images, a.raise_steps);
    opts.seed = a.seed;
    (opts.ais_target_ess, opts.ais_max_steps) = (a.ais_target_ess, a.ais_max_betas);
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
pub(crate) fn eval_gaussian(a: &EvalArgs, n_threads: usize) -> Result<()> {
    let (g, z) = rbm::modelfile::load_gaussian_model(&a.model)?;
    let Some(path) = a.data.as_ref().filter(|p| p.is_file()) else {
        bail!("--data: a Gaussian model is evaluated on the rows of a .npy or .csv file");
    };
    let data =
        open_train_data(DataSource { data: Some(path), label_column: a.label_column.as_deref(), labels: None }, false)?;
    let rows = data.rows();
    if rows.n_cols() != g.rbm.n_visible {
        bail!("{}: rows of {} values; the model has {} visible units", path.display(), rows.n_cols(), g.rbm.n_visible);
    }
    let mut v = vec![0f32; rows.n_rows() * rows.n_cols()];
    rows.copy_rows(0, &mut v)?;
    let log_det = match &z {
        Some(z) => {
            z.apply(&mut v);
            z.log_density_shift()
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
    (opts.ais_target_ess, opts.ais_max_steps) = (a.ais_target_ess, a.ais_max_betas);
    (opts.raise_images, opts.raise_steps) = (a.raise_images, a.raise_steps);
    let t = Instant::now();
    let mut report = rbm::estimate::evaluate_gaussian(&g, &v, &base, &opts, n_threads)?;
    let secs = t.elapsed().as_secs_f64();
    report.shift(log_det);
    if a.json {
        let mut j = serde_json::to_value(&report).expect("report serialises");
        let extra = serde_json::json!({"data": path.display().to_string(), "visible": "gaussian", "seed": a.seed, "seconds": secs, "model": a.model.display().to_string()});
        j.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        say!("{j}");
    } else {
        say!("data: {} rows of {}, real-valued (Gaussian visible units)", report.n_images, path.display());
        match report.estimator.as_str() {
            "exact" => say!("estimator: exact (hidden states enumerated, v integrated in closed form)"),
            "ais" => say!(
                "estimator: AIS, {} runs, {} temperatures, from independent Gaussians at the data's means",
                report.ais_runs.unwrap_or(0),
                report.ais_steps.unwrap_or(0)
            ),
            _ => {}
        }
        if let Some(lz) = report.logz {
            say!("log Z = {lz:.4} (in the units the model sees)");
            say!(
                "average log-density: {:.4} nats per row in the data's units, bracket [{:.4}, {:.4}]",
                report.avg_ll,
                report.avg_ll_lo,
                report.avg_ll_hi
            );
            print_ais_trust(&report, "log-density");
        }
        if let Some(q) = &report.raise {
            print_raise(q, "rows", "log-density", "row", &report.estimator);
        }
        say!("took {secs:.1} s");
    }
    Ok(())
}

pub(crate) fn print_report(r: &Report, split: &str, binarize: &str, seed: u64, secs: f64) {
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
            print_ais_trust(r, "log-likelihood");
        }
        _ => {}
    }
    if let Some(q) = &r.raise {
        print_raise(q, &format!("{split} images"), "log-likelihood", "image", &r.estimator);
    }
    say!("took {secs:.1} s");
}

/// How far an AIS figure can be trusted: the weights' effective sample size
/// (warned about under 10% of the runs) and the one-sided bound AIS does give.
fn print_ais_trust(r: &Report, quantity: &str) {
    let (Some(ess), Some(runs), Some(upper)) = (r.ais_ess, r.ais_runs, r.avg_ll_upper_95) else {
        return;
    };
    say!("  effective sample size of the AIS weights: {ess:.1} of {runs} runs ({:.0}%)", 100.0 * ess / runs as f64);
    say!("  with probability at least 95%, the average {quantity} is at most {upper:.4} (AIS's one-sided bound)");
    if ess < 0.1 * runs as f64 {
        eprintln!(
            "warning: the AIS estimate rests on {ess:.1} of {runs} runs' weight (under 10%): its ±3σ bracket is not to be trusted; give it more temperatures (--ais-betas, or a larger --ais-max-betas for the doubling) or runs (--ais-runs)"
        );
    }
}

/// RAISE's lines of a report: its figure on `what` (e.g. "test images"), and
/// the reference estimator's on the same rows.
fn print_raise(q: &rbm::estimate::RaiseReport, what: &str, quantity: &str, per: &str, reference: &str) {
    say!("RAISE (conservative), {} random {what}, {} temperatures:", q.n_images, q.steps);
    say!("  average {quantity}: {:.4} nats per {per}, ±3 s.e. [{:.4}, {:.4}]", q.avg_ll, q.avg_ll_lo, q.avg_ll_hi);
    if let Some(x) = q.reference_avg_ll {
        say!("  {reference} on the same {}: {x:.4}", what.split(' ').next_back().unwrap_or(what));
    }
    if let (Some(g), Some(se)) = (q.paired_gap, q.paired_gap_se) {
        say!("  {reference} - RAISE, paired {per} by {per}: {g:.4} nats, standard error {se:.4}");
    }
}
