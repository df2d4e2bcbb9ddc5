//! The Gaussian-Bernoulli RBM's reference against exact answers on tiny
//! models: sums over every hidden state, and numerical integration over v.

#![allow(clippy::needless_range_loop)] // subscripts as in the formulas

mod common;
use common::*;
use rbm::gaussian::{standard_normals, GaussianRbm};
use rbm::Stream;

/// A small model: weights and biases uniform in ±scale, sigmas in [0.5, 1.5].
fn model(nv: usize, nh: usize, scale: f64, seed: u64) -> GaussianRbm {
    let rbm = random_rbm(nv, nh, scale, seed);
    let mut rng = Stream::new(seed, 11);
    let sigma = (0..nv).map(|_| (0.5 + rng.uniform()) as f32).collect();
    GaussianRbm::new(rbm, sigma).unwrap()
}

#[test]
fn free_energy_equals_minus_log_sum_over_hidden_states() {
    let g = model(3, 4, 1.0, 1);
    let v = [0.3f32, -1.2, 2.5, 1.0, 0.0, -0.5];
    let f = g.free_energy(&v);
    for (r, row) in v.chunks(3).enumerate() {
        let terms: Vec<f64> = all_states(4).iter().map(|h| -g.energy(row, h)).collect();
        let want = -rbm::math::log_sum_exp(&terms);
        assert!((f[r] - want).abs() < 1e-5, "F = {}, want {want}", f[r]);
    }
}

#[test]
fn exact_log_z_equals_numerical_integration_over_v() {
    // Z = ∫∫ exp(-F(v)) dv over a 2-D grid: the trapezoid rule on a smooth,
    // Gaussian-tailed integrand, step 0.01 over ±12 around the biases (more
    // than 7 sigma past every mode), is accurate far below the 1e-6 allowed.
    let g = model(2, 3, 1.0, 2);
    let (w, c, b, s) = (&g.rbm.w, &g.rbm.hbias, &g.rbm.vbias, &g.sigma);
    let free = |v0: f64, v1: f64| {
        let mut f = (v0 - b[0] as f64).powi(2) / (2.0 * (s[0] as f64).powi(2))
            + (v1 - b[1] as f64).powi(2) / (2.0 * (s[1] as f64).powi(2));
        for j in 0..3 {
            let a = c[j] as f64 + v0 / s[0] as f64 * w[j] as f64 + v1 / s[1] as f64 * w[3 + j] as f64;
            f -= rbm::math::softplus_ref(a);
        }
        f
    };
    let (step, half) = (0.01, 1200i32);
    let mut z = 0f64;
    for x in -half..=half {
        for y in -half..=half {
            let (v0, v1) = (b[0] as f64 + x as f64 * step, b[1] as f64 + y as f64 * step);
            let edge = if x.abs() == half { 0.5 } else { 1.0 } * if y.abs() == half { 0.5 } else { 1.0 };
            z += edge * (-free(v0, v1)).exp();
        }
    }
    let numeric = (z * step * step).ln();
    let exact = g.exact_log_z();
    assert!((numeric - exact).abs() < 1e-6, "numerical {numeric}, exact {exact}");
}

#[test]
fn p_h_given_v_equals_the_brute_force_marginal() {
    let g = model(3, 4, 1.5, 3);
    let v = [0.7f32, -0.4, 1.9];
    let q = g.prob_h_given_v(&v);
    let states = all_states(4);
    let weights: Vec<f64> = states.iter().map(|h| (-g.energy(&v, h)).exp()).collect();
    let total: f64 = weights.iter().sum();
    for j in 0..4 {
        let on: f64 = states.iter().zip(&weights).filter(|(h, _)| h[j] == 1.0).map(|(_, w)| w).sum();
        assert!((q[j] - on / total).abs() < 1e-6, "unit {j}: {} vs {}", q[j], on / total);
    }
}

#[test]
fn p_v_given_h_has_the_stated_mean_and_variance() {
    // 200,000 draws for one hidden state: the mean's standard error is
    // sigma / sqrt(n) <= 0.0034 and the variance's sigma^2 sqrt(2 / n) <= 0.0071;
    // we allow 5 of each.
    let g = model(3, 4, 1.0, 4);
    let h = [1f32, 0., 1., 1.];
    let n = 200_000;
    let hs: Vec<f32> = h.iter().cycle().take(4 * n).cloned().collect();
    let v = g.sample_v_given_h(&hs, &mut Stream::new(5, 0));
    for i in 0..3 {
        let want_mean = g.rbm.vbias[i] as f64
            + g.sigma[i] as f64 * (0..4).map(|j| g.rbm.w[i * 4 + j] as f64 * h[j] as f64).sum::<f64>();
        let xs: Vec<f64> = v.iter().skip(i).step_by(3).map(|&x| x as f64).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let s2 = (g.sigma[i] as f64).powi(2);
        assert!((mean - want_mean).abs() < 5.0 * (s2 / n as f64).sqrt(), "unit {i}: mean {mean}, want {want_mean}");
        assert!((var - s2).abs() < 5.0 * s2 * (2.0 / n as f64).sqrt(), "unit {i}: variance {var}, want {s2}");
    }
}

#[test]
fn standard_normal_draws_have_the_normal_moments() {
    // n = 400,000: standard errors 0.0016 (mean), 0.0022 (variance), 0.0039 (skew), 0.0077 (kurtosis)
    let mut z = vec![0f32; 400_000];
    standard_normals(&mut Stream::new(6, 0), &mut z);
    let n = z.len() as f64;
    let m = |k: i32| z.iter().map(|&x| (x as f64).powi(k)).sum::<f64>() / n;
    assert!(m(1).abs() < 5.0 * 0.0016 && (m(2) - 1.0).abs() < 5.0 * 0.0022, "{} {}", m(1), m(2));
    assert!(m(3).abs() < 5.0 * 0.0039 && (m(4) - 3.0).abs() < 5.0 * 0.0077, "{} {}", m(3), m(4));
    assert!(z.iter().all(|x| x.is_finite()));
}

#[test]
fn the_closed_form_gradient_equals_finite_differences() {
    let g = model(3, 2, 1.0, 7);
    let v_data = [0.5f32, -1.0, 2.0, 1.5, 0.2, -0.3];
    let v_model = [-0.5f32, 0.8, 1.0, 0.1, -1.1, 0.9];
    let objective = |m: &GaussianRbm| {
        let mean = |v: &[f32]| m.free_energy(v).iter().sum::<f64>() / 2.0;
        mean(&v_data) - mean(&v_model)
    };
    let grad = g.free_energy_gradient(&v_data, &v_model);
    // central differences with eps = 1e-3 on f32 parameters: truncation
    // ~1e-6, rounding ~1e-7 / 1e-3 = 1e-4, hence the tolerance
    let eps = 1e-3f32;
    let check = |name: &str, k: usize, analytic: f64, bump: &dyn Fn(&mut GaussianRbm, f32)| {
        let (mut up, mut down) = (g.clone(), g.clone());
        bump(&mut up, eps);
        bump(&mut down, -eps);
        let fd = (objective(&up) - objective(&down)) / (2.0 * eps as f64);
        assert!((fd - analytic).abs() < 1e-3, "{name}[{k}]: finite difference {fd}, closed form {analytic}");
    };
    for k in 0..6 {
        check("W", k, grad.w[k], &|m, e| m.rbm.w[k] += e);
    }
    for k in 0..2 {
        check("hbias", k, grad.hbias[k], &|m, e| m.rbm.hbias[k] += e);
    }
    for k in 0..3 {
        check("vbias", k, grad.vbias[k], &|m, e| m.rbm.vbias[k] += e);
        // log sigma^2 moves by e: sigma by a factor exp(e / 2)
        check("log_var", k, grad.log_var[k], &|m, e| m.sigma[k] *= (e / 2.0).exp());
    }
}

#[test]
fn bad_sigmas_are_refused() {
    let rbm = random_rbm(2, 2, 1.0, 8);
    for bad in [vec![1.0, 0.0], vec![1.0, -1.0], vec![f32::NAN, 1.0], vec![1.0]] {
        assert!(GaussianRbm::new(rbm.clone(), bad).is_err());
    }
}

/// Real-valued rows: a mixture of two clusters at ±1.5 on alternate
/// coordinates, with noise of standard deviation 0.3 (deterministic).
fn clusters(n: usize, nv: usize, seed: u64) -> Vec<f32> {
    let mut z = vec![0f32; n * nv];
    standard_normals(&mut Stream::new(seed, 3), &mut z);
    (0..n * nv)
        .map(|k| {
            let (r, i) = (k / nv, k % nv);
            let centre = if (r % 2 == 0) == (i % 2 == 0) { 1.5 } else { -1.5 };
            centre + 0.3 * z[k]
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn gaussian_trainer(
    method: rbm::Method,
    k: usize,
    lr: f32,
    batch: usize,
    epochs: usize,
    g: &GaussianRbm,
    rows: usize,
    learn_sigma: bool,
) -> rbm::Trainer {
    let mut cfg = train_config(method, k, lr, batch, epochs, g.rbm.n_hidden, 19, rows);
    (cfg.visible, cfg.learn_sigma) = (rbm::train::Visible::Gaussian, learn_sigma);
    rbm::Trainer::new_gaussian(g, checked(&cfg)).unwrap()
}

#[test]
fn one_gaussian_update_is_sgd_on_the_closed_form_gradient_at_its_chain_end() {
    for method in [rbm::Method::Cd, rbm::Method::Pcd] {
        let g = model(5, 4, 0.5, 9);
        let values = clusters(6, 5, 1);
        let data = rbm::RowMatrix::new(&values, 5).unwrap();
        let lr = 0.01;
        let mut t = gaussian_trainer(method, 3, lr, 6, 1, &g, 6, false);
        t.run(&data, 1, 2).unwrap();
        let v_neg = t.chain_visible();
        let grad = g.free_energy_gradient(&values, &v_neg);
        let after = t.gaussian_model().unwrap();
        assert_eq!(after.sigma, g.sigma, "sigma is fixed");
        let check = |name: &str, before: &[f32], grad: &[f64], after: &[f32]| {
            for i in 0..before.len() {
                let want = before[i] as f64 - lr as f64 * grad[i];
                assert!((after[i] as f64 - want).abs() < 1e-5, "{method:?} {name}[{i}]: {} vs {want}", after[i]);
            }
        };
        check("W", &g.rbm.w, &grad.w, &after.rbm.w);
        check("hbias", &g.rbm.hbias, &grad.hbias, &after.rbm.hbias);
        check("vbias", &g.rbm.vbias, &grad.vbias, &after.rbm.vbias);
        // the chain's visible states are real-valued, not 0/1
        assert!(v_neg.iter().any(|&v| v != 0.0 && v != 1.0));
    }
}

#[test]
fn gaussian_training_raises_the_exact_log_likelihood() {
    for method in [rbm::Method::Cd, rbm::Method::Pcd] {
        let g = GaussianRbm::new(rbm::Rbm::init(4, 3, 5).unwrap(), vec![1.0; 4]).unwrap();
        let values = clusters(200, 4, 2);
        let data = rbm::RowMatrix::new(&values, 4).unwrap();
        let ll = |m: &GaussianRbm| -m.free_energy(&values).iter().sum::<f64>() / 200.0 - m.exact_log_z();
        let mut t = gaussian_trainer(method, 1, 0.01, 10, 30, &g, 200, false);
        rbm::fit(&mut t, &data, &rbm::FitOptions::new(2), &mut ()).unwrap();
        let (before, after) = (ll(&g), ll(&t.gaussian_model().unwrap()));
        // a clear gain (the two clusters are far apart), not a rounding effect
        assert!(after > before + 0.5, "{method:?}: {before} -> {after}");
        eprintln!("{method:?}: exact log-likelihood {before:.3} -> {after:.3}");
        assert!(t.history().iter().all(|r| r.cost.is_finite() && r.cost <= 0.0));
    }
}

#[test]
fn gaussian_training_does_not_depend_on_threads_and_resumes_exactly() {
    let g = model(20, 12, 0.3, 10);
    let values = clusters(40, 20, 3);
    let data = rbm::RowMatrix::new(&values, 20).unwrap();
    let run = |threads: usize| {
        let mut t = gaussian_trainer(rbm::Method::Pcd, 2, 0.01, 5, 2, &g, 40, false);
        while !t.done() {
            t.run(&data, 3, threads).unwrap();
        }
        (t.gaussian_model().unwrap(), t.chain_visible())
    };
    let one = run(1);
    assert_eq!(one, run(3));
    // checkpointed mid-epoch and resumed: the same model
    let mut t = gaussian_trainer(rbm::Method::Pcd, 2, 0.01, 5, 2, &g, 40, false);
    t.run(&data, 5, 2).unwrap();
    let p = tmpdir("gaussian-ck").join("ck.safetensors");
    rbm::modelfile::save_checkpoint(&p, &mut t, "").unwrap();
    let mut resumed = rbm::modelfile::load_checkpoint(&p).unwrap().trainer;
    while !resumed.done() {
        resumed.run(&data, 3, 2).unwrap();
    }
    assert_eq!(resumed.gaussian_model().unwrap(), one.0);
}

#[test]
fn gaussian_ais_agrees_with_the_exact_log_z_on_a_30_x_12_model() {
    // 100 runs over 3,000 temperatures from independent Gaussians at 0.5: the
    // estimate must land within 0.1 nat of the exact log Z (2^12 hidden
    // states, v integrated in closed form) and its ±3σ bracket contain it.
    let g = model(30, 12, 0.3, 12);
    let exact = g.exact_log_z();
    let z = rbm::estimate::ais_gaussian(&g, &[0.5; 30], 100, &rbm::estimate::ais_schedule(3000), 13, 2);
    assert!((z.log_z - exact).abs() < 0.1, "AIS {} against exact {exact}", z.log_z);
    assert!(z.lo <= exact && exact <= z.hi, "exact {exact} outside [{}, {}]", z.lo, z.hi);
    // and it does not depend on the thread count
    let z1 = rbm::estimate::ais_gaussian(&g, &[0.5; 30], 100, &rbm::estimate::ais_schedule(3000), 13, 1);
    assert_eq!(z.log_z, z1.log_z);
}

#[test]
fn the_fast_box_muller_matches_the_libm_formula_and_the_normal_moments() {
    // against the same transform in f64 with libm, on 100,000 draws of eight
    // uniforms (including u = 0 and u close to 1): within 2e-5 (the polynomial
    // logarithm and sine/cosine are good to about 1e-7, relative)
    let mut rng = Stream::new(21, 0);
    let mut u = vec![0f32; 800_000];
    rng.fill_uniform(&mut u);
    u[0] = 0.0;
    u[1] = 1.0 - f32::EPSILON / 2.0;
    u[4] = 0.0;
    u[5] = 0.999_999_9;
    let mut z = Vec::with_capacity(u.len());
    for chunk in u.chunks_exact(8) {
        let got = rbm::math::box_muller8(chunk.try_into().unwrap());
        for p in 0..4 {
            let r = (-2.0 * (1.0 - chunk[p] as f64).ln()).sqrt();
            let t = 2.0 * std::f64::consts::PI * chunk[4 + p] as f64;
            for (g, want) in [(got[p], r * t.cos()), (got[4 + p], r * t.sin())] {
                assert!((g as f64 - want).abs() < 2e-5 * want.abs().max(1.0), "{chunk:?}: {g} vs {want}");
            }
        }
        z.extend(got);
    }
    // moments of 800,000 draws: standard errors 0.0011 (mean), 0.0016 (variance), 0.0027 (skew), 0.0055 (kurtosis)
    let n = z.len() as f64;
    let m = |k: i32| z.iter().map(|&x| (x as f64).powi(k)).sum::<f64>() / n;
    assert!(m(1).abs() < 5.0 * 0.0011 && (m(2) - 1.0).abs() < 5.0 * 0.0016, "{} {}", m(1), m(2));
    assert!(m(3).abs() < 5.0 * 0.0027 && (m(4) - 3.0).abs() < 5.0 * 0.0055, "{} {}", m(3), m(4));
}

#[test]
fn gaussian_raise_stays_below_the_exact_log_likelihood_and_near_it() {
    // RAISE's estimate does not exceed log p(v) in expectation: over 100 rows
    // its mean must be at most the exact mean plus 3 standard errors, and on
    // this easy model (1,000 temperatures) within 0.5 nat of it
    let g = model(30, 12, 0.3, 12);
    let v: Vec<f32> = clusters(100, 30, 4).iter().map(|x| 0.3 * x).collect();
    let lz = g.exact_log_z();
    let exact = -g.free_energy(&v).iter().sum::<f64>() / 100.0 - lz;
    let lp = rbm::estimate::raise_gaussian(&g, &[0.0; 30], &v, &rbm::estimate::ais_schedule(1000), 14, 2);
    let (mean, se) = rbm::estimate::mean_se(&lp);
    assert!(mean <= exact + 3.0 * se, "RAISE {mean} ± {se} above exact {exact}");
    assert!(mean > exact - 0.5, "RAISE {mean} far below exact {exact}");
}

#[test]
fn a_learned_sigma_moves_by_sgd_on_the_closed_form_log_variance_gradient() {
    // one update on 3 threads: log σ² -= lr dL/dlog σ², with the reference
    // gradient at the update's own chain end, and W, b, c as without it
    for method in [rbm::Method::Cd, rbm::Method::Pcd] {
        let g = model(10, 6, 0.5, 15);
        let values = clusters(8, 10, 5);
        let data = rbm::RowMatrix::new(&values, 10).unwrap();
        let lr = 0.01;
        let mut t = gaussian_trainer(method, 2, lr, 8, 1, &g, 8, true);
        t.run(&data, 1, 3).unwrap();
        let after = t.gaussian_model().unwrap();
        // the chain was drawn in units of the old sigma; chain_visible reads it in the new one
        let v_neg: Vec<f32> =
            t.chain_visible().iter().enumerate().map(|(k, &v)| v / after.sigma[k % 10] * g.sigma[k % 10]).collect();
        let grad = g.free_energy_gradient(&values, &v_neg);
        for i in 0..10 {
            let want = g.sigma[i] as f64 * (-(lr as f64) * grad.log_var[i] / 2.0).exp();
            assert!((after.sigma[i] as f64 - want).abs() < 1e-5, "{method:?} sigma[{i}]: {} vs {want}", after.sigma[i]);
            assert!(after.sigma[i] != g.sigma[i], "sigma[{i}] did not move");
        }
        for k in 0..60 {
            let want = g.rbm.w[k] as f64 - lr as f64 * grad.w[k];
            assert!((after.rbm.w[k] as f64 - want).abs() < 1e-5, "{method:?} W[{k}]");
        }
    }
    // and it does not depend on the thread count
    let g = model(20, 12, 0.3, 16);
    let values = clusters(40, 20, 6);
    let data = rbm::RowMatrix::new(&values, 20).unwrap();
    let run = |threads: usize| {
        let mut t = gaussian_trainer(rbm::Method::Pcd, 2, 0.01, 5, 2, &g, 40, true);
        while !t.done() {
            t.run(&data, 3, threads).unwrap();
        }
        t.gaussian_model().unwrap()
    };
    let one = run(1);
    assert_eq!(one, run(3));
    assert!(one.sigma.iter().zip(&g.sigma).all(|(a, b)| a != b));
    // only Gaussian units have a sigma to learn
    let mut cfg = rbm::TrainConfig::default();
    cfg.learn_sigma = true;
    assert!(cfg.check(50_000).unwrap_err().to_string().starts_with("learn_sigma:"));
}
