//! `rbm bench`: the training loop's speed against the matrix products' own
//! speed, the default part count against the old 2-part layout, and the
//! sampling and estimation phases. Every figure is the best and the median
//! of repeated timings, taken in turns, so that a busy second core slows
//! every side of a comparison alike.

use crate::{load_data, say, threads, BenchArgs};
use anyhow::{bail, Result};
use rbm::engine::{products_only, sample_rows, update_flops, DEFAULT_PARTS};
use rbm::estimate::{ais, ais_schedule, base_rate_vbias, exact_log_z};
use rbm::train::{Method, TrainConfig, Trainer};
use rbm::Rbm;
use std::time::Instant;

/// Best and median of some timings.
fn best_median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[0], v[v.len() / 2])
}

/// One line of rates: `name`, then `per_s` ("steps" or "updates") per
/// second at the best and median timings `b` and `m` (seconds each), and the
/// GFLOP/s that `flops` per step or update makes of them.
fn say_rates(name: &str, per_s: &str, b: f64, m: f64, flops: f64) {
    say!(
        "    {name:16} {:8.1} {per_s}/s best, {:8.1} median  ({:.1} / {:.1} GFLOP/s)",
        1.0 / b,
        1.0 / m,
        flops / b / 1e9,
        flops / m / 1e9
    );
}

/// Seconds per update of the loop and of the products alone, for one part count.
#[derive(Default)]
struct Timings {
    looped: Vec<f64>,
    products: Vec<f64>,
}

pub(crate) fn run_bench(a: BenchArgs) -> Result<()> {
    if a.updates == 0 || a.repeat == 0 {
        bail!("--updates and --repeat must be at least 1");
    }
    let n_threads = threads(a.threads)?;
    let data = load_data(&a.data)?;
    let isa = if rbm::has_avx2_fma() { "AVX2 + FMA, chosen at run time" } else { "baseline" };
    say!("threads: {n_threads}; kernels: {isa}; each figure: best and median of {} timings", a.repeat);
    if a.gaussian_only {
        return gaussian_against_binary(&a, &data, n_threads);
    }
    if a.dbn_only {
        return dbn_fine_tuning(&a, &data, n_threads);
    }
    let part_counts = [DEFAULT_PARTS, 2];
    let mut sampled_model = None;
    let configs = [("PCD-15, batch 20 (the tutorial)", Method::Pcd, 15, 20), ("CD-1, batch 100", Method::Cd, 1, 100)];
    for &(name, method, k, batch) in &configs[..if a.tutorial_only { 1 } else { 2 }] {
        let mut cfg = TrainConfig::default();
        (cfg.method, cfg.k, cfg.batch_size) = (method, k, batch);
        let rbm = Rbm::init(784, cfg.n_hidden, cfg.seed)?;
        let monitor = method == Method::Pcd;
        let flops = update_flops(784, cfg.n_hidden, batch, k, monitor);
        let n = a.updates.min(cfg.batches_per_epoch());
        let mut timings: Vec<Timings> = part_counts.iter().map(|_| Timings::default()).collect();
        let mut trainers = Vec::new();
        for &parts in &part_counts {
            cfg.n_parts = parts;
            trainers.push((cfg.clone(), Trainer::new(&rbm, cfg.check(50_000)?)?));
        }
        for _ in 0..a.repeat {
            for ((cfg, trainer), t) in trainers.iter_mut().zip(&mut timings) {
                t.products.push(products_only(&rbm, batch, k, monitor, n, cfg.n_parts, n_threads) / n as f64);
                if trainer.batch_index() + n > cfg.batches_per_epoch() {
                    *trainer = Trainer::new(&rbm, cfg.check(50_000)?)?;
                }
                let start = Instant::now();
                trainer.run(&data.train, n, n_threads)?;
                t.looped.push(start.elapsed().as_secs_f64() / n as f64);
            }
        }
        say!("{name}: {:.1} MFLOP per update", flops / 1e6);
        let mut best_loop = Vec::new();
        for (parts, t) in part_counts.iter().zip(timings) {
            let (lb, lm) = best_median(t.looped);
            let (pb, pm) = best_median(t.products);
            say!("  {parts} parts{}:", if *parts == DEFAULT_PARTS { " (the default)" } else { " (the old layout)" });
            say!(
                "    (a) training loop:    {:8.1} updates/s best, {:8.1} median  ({:.1} / {:.1} GFLOP/s)",
                1.0 / lb,
                1.0 / lm,
                flops / lb / 1e9,
                flops / lm / 1e9
            );
            say!(
                "    (b) products alone:   {:8.1} updates/s best, {:8.1} median  ({:.1} / {:.1} GFLOP/s)",
                1.0 / pb,
                1.0 / pm,
                flops / pb / 1e9,
                flops / pm / 1e9
            );
            say!("    (c) efficiency (a)/(b): {:.1}% best, {:.1}% median", 100.0 * pb / lb, 100.0 * pm / lm);
            best_loop.push((lb, lm));
        }
        let ((db, dm), (ob, om)) = (best_loop[0], best_loop[1]);
        say!(
            "  {DEFAULT_PARTS} parts against 2: {:+.1}% time per update (best), {:+.1}% (median)",
            100.0 * (db / ob - 1.0),
            100.0 * (dm / om - 1.0)
        );
        if method == Method::Pcd {
            let epoch = cfg.batches_per_epoch() as f64;
            say!(
                "  one epoch of {epoch} updates: {:.1} s at the best speed; 15 epochs: {:.2} min",
                epoch * db,
                15.0 * epoch * db / 60.0
            );
            sampled_model = Some(trainers[0].1.rbm());
        }
    }
    if a.tutorial_only {
        return Ok(());
    }
    gaussian_against_binary(&a, &data, n_threads)?;
    dbn_fine_tuning(&a, &data, n_threads)?;
    // the PCD-15 model as trained above: (d) samples a model that has learned something
    let rbm = sampled_model.expect("the PCD benchmark ran");
    let flops = update_flops(784, 500, 20, 15, true);
    // the dense products' speed right now, to print beside a timing
    let product_speed = || {
        let secs = products_only(&rbm, 20, 15, true, 100, DEFAULT_PARTS, n_threads) / 100.0;
        flops / secs / 1e9
    };
    let init = data.test.slice(0..20).to_f32();
    let mut times = Vec::new();
    for _ in 0..a.repeat.min(3) {
        let t = Instant::now();
        sample_rows(&rbm, None, &init, 10, 1000, 1234, n_threads, |_| {});
        times.push(t.elapsed().as_secs_f64());
    }
    let (sb, sm) = best_median(times);
    say!(
        "(d) sampling phase (10 rows x 1,000 gibbs_vhv steps, 20 chains): {sb:.2} s best, {sm:.2} s median (products alone meanwhile: {:.1} GFLOP/s)",
        product_speed()
    );
    let vb_a = base_rate_vbias(&data.train);
    let t = Instant::now();
    let z = ais(&rbm, &vb_a, 100, &ais_schedule(14_500), 1234, n_threads);
    say!(
        "(e) AIS, 100 runs x 14,500 temperatures, 784 x 500 (the model of (d)): {:.1} s (log Z {:.2}) (products alone meanwhile: {:.1} GFLOP/s)",
        t.elapsed().as_secs_f64(),
        z.log_z,
        product_speed()
    );
    let small = Rbm::init(784, 20, 1234)?;
    let t = Instant::now();
    let lz = exact_log_z(&small, n_threads);
    say!(
        "(f) exact log Z, 784 x 20 (2^20 hidden states): {:.2} s (log Z {lz:.3}) (products alone meanwhile: {:.1} GFLOP/s)",
        t.elapsed().as_secs_f64(),
        product_speed()
    );
    Ok(())
}

/// (g) Gaussian visible units against binary ones at the tutorial's shape
/// (784 x 500, PCD-15, batch 20; the Gaussian model on standardised pixels,
/// sigma 1, lr 0.001), in turns: time per update, and the loop's speed as a
/// share of the dense products'.
fn gaussian_against_binary(a: &BenchArgs, data: &rbm::data::Mnist, n_threads: usize) -> Result<()> {
    use rbm::data::{Standardize, Standardized};
    use rbm::gaussian::GaussianRbm;
    use rbm::train::Visible;
    let z = Standardize::of(&data.train, data.train.n)?;
    let standardized = Standardized { data: &data.train, by: &z };
    let mut cfg = TrainConfig::default();
    let rbm = Rbm::init(784, cfg.n_hidden, cfg.seed)?;
    let binary_cfg = cfg.check(50_000)?;
    let mut binary = Trainer::new(&rbm, binary_cfg.clone())?;
    (cfg.visible, cfg.lr) = (Visible::Gaussian, 0.001);
    let checked = cfg.check(50_000)?;
    let g = GaussianRbm::new(rbm.clone(), vec![1.0; 784])?;
    let mut gaussian = Trainer::new_gaussian(&g, checked.clone())?;
    let n = a.updates.min(cfg.batches_per_epoch());
    let (mut tb, mut tg, mut tp) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..a.repeat {
        if binary.batch_index() + n > cfg.batches_per_epoch() {
            binary = Trainer::new(&rbm, binary_cfg.clone())?;
            gaussian = Trainer::new_gaussian(&g, checked.clone())?;
        }
        tp.push(products_only(&rbm, 20, 15, false, n, DEFAULT_PARTS, n_threads) / n as f64);
        let t = Instant::now();
        binary.run(&data.train, n, n_threads)?;
        tb.push(t.elapsed().as_secs_f64() / n as f64);
        let t = Instant::now();
        gaussian.run(&standardized, n, n_threads)?;
        tg.push(t.elapsed().as_secs_f64() / n as f64);
    }
    let ((bb, bm), (gb, gm), (pb, _)) = (best_median(tb), best_median(tg), best_median(tp));
    say!("(g) Gaussian visible units, PCD-15, batch 20, standardised pixels, against binary ones:");
    say!(
        "    binary {:.1} updates/s best, {:.1} median; Gaussian {:.1} best, {:.1} median",
        1.0 / bb,
        1.0 / bm,
        1.0 / gb,
        1.0 / gm
    );
    say!(
        "    Gaussian / binary time per update: {:.2}x best, {:.2}x median; Gaussian loop at {:.0}% of the dense products (no monitor product: {:.1} updates/s)",
        gb / bb,
        gm / bm,
        100.0 * pb / gb,
        1.0 / pb
    );
    Ok(())
}

/// (h) One fine-tuning step of DBN.py's network (784-1000-1000-1000-10,
/// minibatches of 10 MNIST images), in turns: the fused step on one thread
/// ([`FineTuner::step`]) and on `n_threads` ([`FineTuner::steps`]), the
/// naive reference ([`Dbn::sgd_step`]), and the step's matrix products
/// alone on one thread (forward, δ W^T, and the gradients x^T δ, without
/// the update or the elementwise passes).
fn dbn_fine_tuning(a: &BenchArgs, data: &rbm::data::Mnist, n_threads: usize) -> Result<()> {
    use rbm::dbn::Dbn;
    use rbm::finetune::FineTuner;
    use rbm::math::gemm;
    const B: usize = 10;
    let sizes = [784, 1000, 1000, 1000];
    let layers = sizes
        .windows(2)
        .enumerate()
        .map(|(l, s)| Rbm::init(s[0], s[1], 1234 + l as u64))
        .collect::<rbm::Result<Vec<_>>>()?;
    let mut net = Dbn::new(layers, 10)?;
    net.classifier_w.iter_mut().enumerate().for_each(|(i, w)| *w = ((i % 7) as f32 - 3.0) * 0.01);
    let mut reference = net.clone();
    let mut tuner = FineTuner::new(&net, B);
    let mut dropped = net.clone();
    let mut thinned = FineTuner::new(&net, B).with_dropout(rbm::dbn::Dropout::new(0.2, 0.5, 1)?);
    let n = a.updates.min(5000);
    let x = data.train.slice(0..B * n).to_f32();
    let y: Vec<usize> = data.train_labels[..B * n].iter().map(|&k| k as usize).collect();
    let widths = [784, 1000, 1000, 1000, 10];
    // forward and gradient products over every layer, δ W^T above the first
    let macs: usize = widths.windows(2).enumerate().map(|(l, s)| s[0] * s[1] * if l > 0 { 3 } else { 2 }).sum();
    let flops = 2.0 * (B * macs) as f64;
    let mut bufs: Vec<Vec<f32>> = widths.iter().map(|&w| vec![0.1f32; B * w]).collect();
    let mut grad: Vec<Vec<f32>> = widths.windows(2).map(|s| vec![0f32; s[0] * s[1]]).collect();
    let (mut tf, mut tt, mut tr, mut tp, mut td) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..a.repeat {
        let batch = |i: usize| (&x[i * B * 784..(i + 1) * B * 784], &y[i * B..(i + 1) * B]);
        let t = Instant::now();
        for i in 0..n {
            let (xb, yb) = batch(i);
            tuner.step(&mut net, xb, yb, 0.1)?;
        }
        tf.push(t.elapsed().as_secs_f64() / n as f64);
        let fill = |i: usize, xb: &mut [f32], yb: &mut [usize]| -> rbm::Result<()> {
            let (xs, ys) = batch(i);
            xb.copy_from_slice(xs);
            yb.copy_from_slice(ys);
            Ok(())
        };
        let t = Instant::now();
        tuner.steps(&mut net, n, 0.1, n_threads, &fill)?;
        tt.push(t.elapsed().as_secs_f64() / n as f64);
        let t = Instant::now();
        thinned.steps(&mut dropped, n, 0.1, n_threads, &fill)?;
        td.push(t.elapsed().as_secs_f64() / n as f64);
        let t = Instant::now();
        for i in 0..n {
            let (xb, yb) = batch(i);
            reference.sgd_step(xb, yb, 0.1)?;
        }
        tr.push(t.elapsed().as_secs_f64() / n as f64);
        let t = Instant::now();
        for _ in 0..n {
            for l in 0..4 {
                let (w, (ni, no)) =
                    (&net.layers.get(l).map_or(&net.classifier_w, |r| &r.w), (widths[l], widths[l + 1]));
                let (lo, hi) = bufs.split_at_mut(l + 1);
                gemm(&mut hi[0], B, no, ni, &lo[l], false, w, false, 1.0, false);
                gemm(&mut grad[l], ni, no, B, &lo[l], true, &hi[0], false, 1.0, false);
                if l > 0 {
                    gemm(&mut lo[l], B, ni, no, &hi[0], false, w, true, 1.0, false);
                }
            }
        }
        tp.push(t.elapsed().as_secs_f64() / n as f64);
    }
    let ((fb, fm), (tb, tm), (rb, rm), (pb, pm)) = (best_median(tf), best_median(tt), best_median(tr), best_median(tp));
    let (db, dm) = best_median(td);
    say!(
        "(h) DBN fine-tuning step, 784-1000-1000-1000-10, minibatches of 10, one thread unless said: {:.1} MFLOP per step",
        flops / 1e6
    );
    let (on_all, thin) = (format!("fused, {n_threads} thr."), format!("dropout, {n_threads} thr."));
    for (name, b, m) in [
        ("fused step", fb, fm),
        (on_all.as_str(), tb, tm),
        (thin.as_str(), db, dm),
        ("naive reference", rb, rm),
        ("products alone", pb, pm),
    ] {
        say_rates(name, "steps", b, m, flops);
    }
    say!(
        "    fused step at {:.0}% of the products' speed (median {:.0}%); {:.2}x the reference's speed; one epoch of 5,000 steps: {:.1} s; on {n_threads} threads {:.2}x one thread's speed (median {:.2}x), an epoch {:.1} s",
        100.0 * pb / fb,
        100.0 * pm / fm,
        rb / fb,
        5000.0 * fb,
        fb / tb,
        fm / tm,
        5000.0 * tb
    );
    say!(
        "    dropout (input 0.2, hidden 0.5) on {n_threads} threads: {:.2}x the step without it's time (median {:.2}x)",
        db / tb,
        dm / tm
    );
    dbn_pretraining(a, data, n_threads)
}

/// (i) One pretraining update of DBN.py's upper layers (a 1000 x 1000 RBM,
/// CD-1, minibatches of 10, rate 0.01) on their kind of input: the grey means
/// p(h | x) of a 784 x 1000 layer on MNIST. The loop against its products
/// alone, in turns.
fn dbn_pretraining(a: &BenchArgs, data: &rbm::data::Mnist, n_threads: usize) -> Result<()> {
    const B: usize = 10;
    let rows = 2000;
    let below = Rbm::init(784, 1000, 1234)?;
    let means = below.propup(&data.train.slice(0..rows).to_f32()).mean;
    let input = rbm::data::OwnedRows::new(means, 1000)?;
    let rbm = Rbm::init(1000, 1000, 1235)?;
    let mut cfg = TrainConfig::default();
    (cfg.method, cfg.k, cfg.lr, cfg.batch_size, cfg.n_hidden, cfg.train_size) = (Method::Cd, 1, 0.01, B, 1000, rows);
    let checked = cfg.check(rows)?;
    let mut trainer = Trainer::new(&rbm, checked.clone())?;
    let n = a.updates.min(rows / B);
    let (mut tl, mut tp) = (Vec::new(), Vec::new());
    for _ in 0..a.repeat {
        tp.push(products_only(&rbm, B, 1, false, n, DEFAULT_PARTS, n_threads) / n as f64);
        if trainer.batch_index() + n > rows / B {
            trainer = Trainer::new(&rbm, checked.clone())?;
        }
        let t = Instant::now();
        trainer.run(&input, n, n_threads)?;
        tl.push(t.elapsed().as_secs_f64() / n as f64);
    }
    let ((lb, lm), (pb, pm)) = (best_median(tl), best_median(tp));
    let flops = update_flops(1000, 1000, B, 1, false);
    say!(
        "(i) DBN pretraining update, 1000 x 1000, CD-1, minibatches of 10, grey inputs: {:.1} MFLOP per update",
        flops / 1e6
    );
    for (name, b, m) in [("training loop", lb, lm), ("products alone", pb, pm)] {
        say_rates(name, "updates", b, m, flops);
    }
    say!(
        "    loop at {:.0}% of the products' speed (median {:.0}%); a layer-epoch of 5,000 updates: {:.1} s",
        100.0 * pb / lb,
        100.0 * pm / lm,
        5000.0 * lb
    );
    Ok(())
}
