//! The training recipes against their definitions (see `recipe.rs`): each
//! run starts from the same model, data and seed as a plain SGD run, so the
//! first update's random draws are the same, and the difference between the
//! two updates must be exactly the recipe's term.

// Index loops mirror the formulas' subscripts.
#![allow(clippy::needless_range_loop)]

mod common;
use common::*;
use rbm::recipe::{guide_init, guide_vbias, learning_rate, momentum_at, LrSchedule};
use rbm::{Method, Rbm, RowMatrix, TrainConfig, Trainer};

/// 12 rows of 6 binary values.
fn data() -> Vec<f32> {
    (0..72).map(|i| ((i * 7 + i / 6) % 3 == 0) as u8 as f32).collect()
}

fn start() -> Rbm {
    random_rbm(6, 4, 0.5, 17)
}

/// `updates` updates of CD-1 (batch 4, lr 0.1) with `recipe` applied to the config.
fn after(updates: usize, recipe: impl Fn(&mut TrainConfig)) -> Rbm {
    let values = data();
    let mut cfg = train_config(Method::Cd, 1, 0.1, 4, 2, 4, 9, 12);
    recipe(&mut cfg);
    let mut t = Trainer::new(&start(), checked(&cfg)).unwrap();
    t.run(&RowMatrix::new(&values, 6).unwrap(), updates, 1).unwrap();
    t.rbm()
}

fn diff(a: &[f32], b: &[f32]) -> Vec<f64> {
    a.iter().zip(b).map(|(&x, &y)| x as f64 - y as f64).collect()
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() < 2e-6, "{what}[{k}]: {g} vs {w}");
    }
}

#[test]
fn weight_decay_subtracts_lr_lambda_w_from_the_weights_step_only() {
    let (w0, plain) = (start(), after(1, |_| {}));
    let decayed = after(1, |c| c.weight_decay = 0.3);
    let want: Vec<f64> = diff(&plain.w, &w0.w).iter().zip(&w0.w).map(|(d, &w)| d - 0.1 * 0.3 * w as f64).collect();
    assert_close(&diff(&decayed.w, &w0.w), &want, "W step");
    assert_eq!((decayed.hbias, decayed.vbias), (plain.hbias, plain.vbias));
}

#[test]
fn momentum_adds_mu_times_the_last_step() {
    // the first update has no velocity yet: plain SGD's step. The second:
    // mu (W1 - W0) + the plain step from W1 (whose draws are those of the plain run)
    let (w0, plain1, plain2) = (start(), after(1, |_| {}), after(2, |_| {}));
    let mom = |c: &mut TrainConfig| (c.momentum, c.final_momentum, c.momentum_epochs) = (0.5, 0.5, 0);
    let (m1, m2) = (after(1, mom), after(2, mom));
    assert_eq!(m1.w, plain1.w);
    for (name, p0, p1, p2, got) in [
        ("W", &w0.w, &plain1.w, &plain2.w, &m2.w),
        ("hbias", &w0.hbias, &plain1.hbias, &plain2.hbias, &m2.hbias),
        ("vbias", &w0.vbias, &plain1.vbias, &plain2.vbias, &m2.vbias),
    ] {
        let want: Vec<f64> = diff(p1, p0).iter().zip(diff(p2, p1)).map(|(a, b)| 0.5 * a + b).collect();
        assert_close(&diff(got, p1), &want, name);
    }
}

#[test]
fn the_sparsity_target_moves_the_hidden_biases_by_lr_cost_q_minus_p() {
    // q_j = the first minibatch's mean of p(h_j = 1 | v) under the start model
    let (w0, plain) = (start(), after(1, |_| {}));
    let sparse = after(1, |c| (c.sparsity_target, c.sparsity_cost) = (Some(0.05), 0.7));
    let q = w0.propup(&data()[..4 * 6]).mean;
    let want: Vec<f64> = (0..4)
        .map(|j| {
            let qj = (0..4).map(|r| q[r * 4 + j] as f64).sum::<f64>() / 4.0;
            (plain.hbias[j] - w0.hbias[j]) as f64 - 0.1 * 0.7 * (qj - 0.05)
        })
        .collect();
    assert_close(&diff(&sparse.hbias, &w0.hbias), &want, "hbias step");
    assert_eq!((sparse.w, sparse.vbias), (plain.w, plain.vbias));
}

#[test]
fn schedules_and_the_momentum_ramp_follow_their_formulas() {
    let c = LrSchedule::Constant;
    assert_eq!(learning_rate(c, 0.1, 0.01, 7, 10), 0.1);
    let (l, e) = (LrSchedule::Linear, LrSchedule::Exponential);
    assert_eq!((learning_rate(l, 0.1, 0.02, 0, 5), learning_rate(l, 0.1, 0.02, 4, 5)), (0.1, 0.02));
    assert!((learning_rate(l, 0.1, 0.02, 2, 5) - 0.06).abs() < 1e-7);
    // exponential: geometric, so the midpoint is the geometric mean
    assert!((learning_rate(e, 0.1, 0.001, 2, 5) - 0.01).abs() < 1e-8);
    assert!((learning_rate(e, 0.1, 0.001, 4, 5) - 0.001).abs() < 1e-9);
    assert_eq!([0, 4, 5, 9].map(|ep| momentum_at(0.5, 0.9, 5, ep)), [0.5, 0.5, 0.9, 0.9]);
    // and the trainer's first update uses lr itself: a schedule changes nothing there
    let scheduled = after(1, |c| (c.lr_schedule, c.final_lr) = (LrSchedule::Exponential, 0.001));
    assert_eq!(scheduled.w, after(1, |_| {}).w);
}

/// `cfg` trained in one go, and interrupted after `first` updates, saved,
/// loaded and finished on other threads: the same weights, bit for bit.
fn resumes_bit_for_bit(cfg: &TrainConfig, first: usize, name: &str) {
    let values = data();
    let rows = RowMatrix::new(&values, 6).unwrap();
    let straight = {
        let mut t = Trainer::new(&start(), checked(cfg)).unwrap();
        rbm::fit(&mut t, &rows, &rbm::FitOptions::new(1), &mut ()).unwrap();
        t.rbm()
    };
    let path = tmpdir(name).join("ck.safetensors");
    let mut t = Trainer::new(&start(), checked(cfg)).unwrap();
    t.run(&rows, first, 2).unwrap();
    rbm::modelfile::save_checkpoint(&path, &mut t, "").unwrap();
    let mut resumed = rbm::modelfile::load_checkpoint(&path).unwrap().trainer;
    assert_eq!(resumed.velocity().w, t.velocity().w);
    assert_eq!(resumed.offsets(), t.offsets());
    rbm::fit(&mut resumed, &rows, &rbm::FitOptions::new(3), &mut ()).unwrap();
    let r = resumed.rbm();
    assert_eq!((r.w, r.hbias, r.vbias), (straight.w, straight.hbias, straight.vbias));
}

#[test]
fn a_run_with_momentum_resumes_from_its_checkpoint_bit_for_bit() {
    let mut cfg = train_config(Method::Pcd, 2, 0.05, 4, 3, 4, 5, 12);
    (cfg.momentum, cfg.final_momentum, cfg.momentum_epochs, cfg.weight_decay) = (0.5, 0.9, 1, 0.01);
    resumes_bit_for_bit(&cfg, 4, "momentum-resume"); // one epoch (3 minibatches) and one more
}

#[test]
fn the_guides_initialisation_has_its_stated_distribution() {
    // 784 x 500 weights: their mean has standard error 0.01 / sqrt(392,000) =
    // 1.6e-5 and their standard deviation estimate about 0.01 / sqrt(2 x 392,000) = 1.1e-5
    let sums = vec![0.0, 25.0, 50.0, 100.0];
    let vb = guide_vbias(&sums, 100);
    assert!(vb[0] < -6.0 && vb[3] > 6.0 && vb[2].abs() < 1e-6 && (vb[1] - (0.25f32 / 0.75).ln()).abs() < 1e-6);
    let rbm = guide_init(500, vec![0.0; 784], 3).unwrap();
    let n = rbm.w.len() as f64;
    let mean = rbm.w.iter().map(|&x| x as f64).sum::<f64>() / n;
    let sd = (rbm.w.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(mean.abs() < 5.0 * 1.6e-5, "mean {mean}");
    assert!((sd - 0.01).abs() < 5.0 * 1.1e-5, "sd {sd}");
    assert!(rbm.hbias.iter().all(|&c| c == 0.0));
}

/// Offsets μ `[6]` and λ `[4]` away from 0.5, to make centring's terms visible.
fn offsets() -> (Vec<f32>, Vec<f32>) {
    ((0..6).map(|i| 0.2 + 0.1 * i as f32).collect(), (0..4).map(|j| 0.7 - 0.15 * j as f32).collect())
}

fn centred(updates: usize) -> (Rbm, (Vec<f32>, Vec<f32>)) {
    let values = data();
    let mut cfg = train_config(Method::Cd, 1, 0.1, 4, 2, 4, 9, 12);
    (cfg.centering, cfg.offset_rate) = (true, 0.25);
    let mut t = Trainer::new(&start(), checked(&cfg)).unwrap();
    let (mu, lambda) = offsets();
    t.set_offsets(&mu, &lambda).unwrap();
    t.run(&RowMatrix::new(&values, 6).unwrap(), updates, 2).unwrap();
    (t.rbm(), t.offsets())
}

#[test]
fn centring_takes_the_centred_gradient_and_moves_its_offsets() {
    // with plain steps dW, dc, db from the same draws (Melchior et al.):
    //   dW_c = dW - μ dc^T - db λ^T,  dc_c = dc - dW_c^T μ,  db_c = db - dW_c λ
    let (w0, plain) = (start(), after(1, |_| {}));
    let (c, (mu1, lambda1)) = centred(1);
    let (mu, lambda) = offsets();
    let (dw, dc, db) = (diff(&plain.w, &w0.w), diff(&plain.hbias, &w0.hbias), diff(&plain.vbias, &w0.vbias));
    let mut dw_c = vec![0f64; 24];
    for i in 0..6 {
        for j in 0..4 {
            dw_c[i * 4 + j] = dw[i * 4 + j] - mu[i] as f64 * dc[j] - db[i] * lambda[j] as f64;
        }
    }
    let dc_c: Vec<f64> = (0..4).map(|j| dc[j] - (0..6).map(|i| dw_c[i * 4 + j] * mu[i] as f64).sum::<f64>()).collect();
    let db_c: Vec<f64> =
        (0..6).map(|i| db[i] - (0..4).map(|j| dw_c[i * 4 + j] * lambda[j] as f64).sum::<f64>()).collect();
    assert_close(&diff(&c.w, &w0.w), &dw_c, "W step");
    assert_close(&diff(&c.hbias, &w0.hbias), &dc_c, "hbias step");
    assert_close(&diff(&c.vbias, &w0.vbias), &db_c, "vbias step");
    // offsets: o <- (1 - 0.25) o + 0.25 mean, over the first minibatch (rows 0..4)
    let v = data();
    let q = w0.propup(&v[..24]).mean;
    for i in 0..6 {
        let m = (0..4).map(|r| v[r * 6 + i]).sum::<f32>() / 4.0;
        assert!((mu1[i] - (0.75 * mu[i] + 0.25 * m)).abs() < 1e-6, "mu[{i}]");
    }
    for j in 0..4 {
        let m = (0..4).map(|r| q[r * 4 + j]).sum::<f32>() / 4.0;
        assert!((lambda1[j] - (0.75 * lambda[j] + 0.25 * m)).abs() < 1e-6, "lambda[{j}]");
    }
}

#[test]
fn a_centred_rbm_is_its_uncentred_model() {
    // E_c(v, h) = -(v - μ)^T W (h - λ) - (v - μ)^T b' - (h - λ)^T c' with
    // b' = b + W λ and c' = c + W^T μ equals E(v, h) plus a constant, so the
    // trained (uncentred) parameters define the same distribution: checked
    // over every (v, h) of a centred run's model
    let (rbm, (mu, lambda)) = centred(6);
    let (nv, nh) = (6, 4);
    let b_c: Vec<f64> = (0..nv)
        .map(|i| rbm.vbias[i] as f64 + (0..nh).map(|j| (rbm.w[i * nh + j] * lambda[j]) as f64).sum::<f64>())
        .collect();
    let c_c: Vec<f64> = (0..nh)
        .map(|j| rbm.hbias[j] as f64 + (0..nv).map(|i| (rbm.w[i * nh + j] * mu[i]) as f64).sum::<f64>())
        .collect();
    let energy = |v: &[f32], h: &[f32]| {
        let mut e = 0f64;
        for i in 0..nv {
            e -= rbm.vbias[i] as f64 * v[i] as f64;
            for j in 0..nh {
                e -= (v[i] * rbm.w[i * nh + j] * h[j]) as f64;
            }
        }
        e - (0..nh).map(|j| (rbm.hbias[j] * h[j]) as f64).sum::<f64>()
    };
    let energy_c = |v: &[f32], h: &[f32]| {
        let mut e = 0f64;
        for i in 0..nv {
            let vc = v[i] as f64 - mu[i] as f64;
            e -= vc * b_c[i];
            for j in 0..nh {
                e -= vc * rbm.w[i * nh + j] as f64 * (h[j] as f64 - lambda[j] as f64);
            }
        }
        e - (0..nh).map(|j| (h[j] as f64 - lambda[j] as f64) * c_c[j]).sum::<f64>()
    };
    let shift = energy_c(&[0.0; 6], &[0.0; 4]) - energy(&[0.0; 6], &[0.0; 4]);
    for v in all_states(nv) {
        for h in all_states(nh) {
            assert!((energy_c(&v, &h) - energy(&v, &h) - shift).abs() < 1e-5, "v {v:?} h {h:?}");
        }
    }
}

#[test]
fn a_centred_run_resumes_from_its_checkpoint_bit_for_bit() {
    let mut cfg = train_config(Method::Pcd, 1, 0.05, 4, 3, 4, 5, 12);
    (cfg.centering, cfg.offset_rate, cfg.momentum, cfg.final_momentum) = (true, 0.1, 0.5, 0.5);
    cfg.chains = Some(7);
    resumes_bit_for_bit(&cfg, 2, "centred-resume");
}

#[test]
fn chains_beyond_the_batch_average_the_negative_phase_over_the_chains() {
    // PCD-1 with minibatches of 4 rows and 6 chains, from the start model W0:
    //   ΔW = lr/4 Σ_rows v h_pos^T - lr/6 Σ_chains v_neg h_neg^T
    // with h_pos = sigm(v W0 + c0), h_neg = sigm(v_neg W0 + c0), v_neg the
    // chains' states the update left; the same on 1 and 3 threads
    let values = data();
    let rows = RowMatrix::new(&values, 6).unwrap();
    let mut cfg = train_config(Method::Pcd, 1, 0.1, 4, 2, 4, 9, 12);
    cfg.chains = Some(6);
    let w0 = start();
    let run = |threads: usize| {
        let mut t = Trainer::new(&w0, checked(&cfg)).unwrap();
        t.run(&rows, 1, threads).unwrap();
        (t.rbm(), t.chain_visible())
    };
    let ((w1, v_neg), (w1_3, _)) = (run(1), run(3));
    assert_eq!(w1.w, w1_3.w);
    assert_eq!(v_neg.len(), 6 * 6);
    let (hp, hn) = (w0.propup(&values[..24]).mean, w0.propup(&v_neg).mean);
    let v = &values[..24];
    let mut dw = vec![0f64; 24];
    for i in 0..6 {
        for j in 0..4 {
            let pos: f64 = (0..4).map(|r| (v[r * 6 + i] * hp[r * 4 + j]) as f64).sum();
            let neg: f64 = (0..6).map(|c| (v_neg[c * 6 + i] * hn[c * 4 + j]) as f64).sum();
            dw[i * 4 + j] = 0.1 * (pos / 4.0 - neg / 6.0);
        }
    }
    let dc: Vec<f64> = (0..4)
        .map(|j| {
            0.1 * ((0..4).map(|r| hp[r * 4 + j] as f64).sum::<f64>() / 4.0
                - (0..6).map(|c| hn[c * 4 + j] as f64).sum::<f64>() / 6.0)
        })
        .collect();
    let db: Vec<f64> = (0..6)
        .map(|i| {
            0.1 * ((0..4).map(|r| v[r * 6 + i] as f64).sum::<f64>() / 4.0
                - (0..6).map(|c| v_neg[c * 6 + i] as f64).sum::<f64>() / 6.0)
        })
        .collect();
    assert_close(&diff(&w1.w, &w0.w), &dw, "W step");
    assert_close(&diff(&w1.hbias, &w0.hbias), &dc, "hbias step");
    assert_close(&diff(&w1.vbias, &w0.vbias), &db, "vbias step");
    // centring with 6 chains: the same identities as with one chain per row
    // (the weighted negative rows still cancel the offsets' products)
    let (mu, lambda) = offsets();
    let mut centred_cfg = cfg.clone();
    (centred_cfg.centering, centred_cfg.offset_rate) = (true, 0.25);
    let mut t = Trainer::new(&w0, checked(&centred_cfg)).unwrap();
    t.set_offsets(&mu, &lambda).unwrap();
    t.run(&rows, 1, 2).unwrap();
    let c = t.rbm();
    let (dw, dc, db) = (diff(&w1.w, &w0.w), diff(&w1.hbias, &w0.hbias), diff(&w1.vbias, &w0.vbias));
    let dw_c: Vec<f64> =
        (0..24).map(|k| dw[k] - mu[k / 4] as f64 * dc[k % 4] - db[k / 4] * lambda[k % 4] as f64).collect();
    let dc_c: Vec<f64> = (0..4).map(|j| dc[j] - (0..6).map(|i| dw_c[i * 4 + j] * mu[i] as f64).sum::<f64>()).collect();
    let db_c: Vec<f64> =
        (0..6).map(|i| db[i] - (0..4).map(|j| dw_c[i * 4 + j] * lambda[j] as f64).sum::<f64>()).collect();
    assert_close(&diff(&c.w, &w0.w), &dw_c, "centred W step");
    assert_close(&diff(&c.hbias, &w0.hbias), &dc_c, "centred hbias step");
    assert_close(&diff(&c.vbias, &w0.vbias), &db_c, "centred vbias step");
    // CD cannot: its chains start at the minibatch's rows
    let mut cd = train_config(Method::Cd, 1, 0.1, 4, 2, 4, 9, 12);
    cd.chains = Some(6);
    assert!(cd.check(12).unwrap_err().to_string().contains("PCD"));
}

#[test]
fn centring_gaussian_units_takes_the_centred_gradient_in_units_of_sigma() {
    // the engine holds x = v / σ; the identities hold for the x-space visible
    // step dβ = db σ, and the visible biases move by dβ_c / σ
    let values: Vec<f32> = data().iter().enumerate().map(|(k, &v)| 2.0 * v - 0.3 * (k % 5) as f32).collect();
    let rows = RowMatrix::new(&values, 6).unwrap();
    let sigma: Vec<f32> = (0..6).map(|i| 0.5 + 0.1 * i as f32).collect();
    let g0 = rbm::gaussian::GaussianRbm::new(start(), sigma.clone()).unwrap();
    let step = |centering: bool| {
        let mut cfg = train_config(Method::Cd, 1, 0.05, 4, 2, 4, 9, 12);
        cfg.visible = rbm::train::Visible::Gaussian;
        (cfg.centering, cfg.offset_rate) = (centering, 0.25);
        let mut t = Trainer::new_gaussian(&g0, checked(&cfg)).unwrap();
        if centering {
            let (mu, lambda) = offsets();
            t.set_offsets(&mu, &lambda).unwrap();
        }
        t.run(&rows, 1, 2).unwrap();
        t.rbm()
    };
    let (w0, plain, c) = (start(), step(false), step(true));
    let (mu, lambda) = offsets();
    let (dw, dc) = (diff(&plain.w, &w0.w), diff(&plain.hbias, &w0.hbias));
    let dbeta: Vec<f64> = diff(&plain.vbias, &w0.vbias).iter().zip(&sigma).map(|(d, &s)| d * s as f64).collect();
    let dw_c: Vec<f64> =
        (0..24).map(|k| dw[k] - mu[k / 4] as f64 * dc[k % 4] - dbeta[k / 4] * lambda[k % 4] as f64).collect();
    let dc_c: Vec<f64> = (0..4).map(|j| dc[j] - (0..6).map(|i| dw_c[i * 4 + j] * mu[i] as f64).sum::<f64>()).collect();
    let db_c: Vec<f64> = (0..6)
        .map(|i| (dbeta[i] - (0..4).map(|j| dw_c[i * 4 + j] * lambda[j] as f64).sum::<f64>()) / sigma[i] as f64)
        .collect();
    assert_close(&diff(&c.w, &w0.w), &dw_c, "W step");
    assert_close(&diff(&c.hbias, &w0.hbias), &dc_c, "hbias step");
    assert_close(&diff(&c.vbias, &w0.vbias), &db_c, "vbias step");
}
