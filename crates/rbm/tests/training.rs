//! CD-k and PCD-k updates against exact answers on tiny models.

#![allow(clippy::needless_range_loop)] // subscripts as in the formulas

mod common;
use common::*;
use rbm::math::softplus_ref;
use rbm::train::{Method, TrainConfig, Trainer};
use rbm::CheckedConfig;
use rbm::Rbm;

fn config(
    method: Method,
    k: usize,
    lr: f32,
    batch: usize,
    epochs: usize,
    n_hidden: usize,
    train_size: usize,
) -> CheckedConfig {
    checked(&train_config(method, k, lr, batch, epochs, n_hidden, 77, train_size))
}

/// Six 6-pixel patterns, two bars and their mixtures.
fn patterns() -> Vec<Vec<f32>> {
    vec![
        vec![1., 1., 1., 0., 0., 0.],
        vec![0., 0., 0., 1., 1., 1.],
        vec![1., 1., 0., 0., 0., 0.],
        vec![0., 0., 0., 0., 1., 1.],
        vec![1., 1., 1., 1., 1., 1.],
        vec![1., 0., 1., 0., 1., 0.],
    ]
}

#[test]
fn one_update_is_sgd_on_the_closed_form_gradient_at_its_chain_end() {
    // The parallel trainer's update equals θ - lr · grad(mean F(v_pos) - mean F(v_neg)),
    // computed by the one-thread reference, for the chain end it drew.
    for method in [Method::Cd, Method::Pcd] {
        let rbm = random_rbm(6, 5, 1.0, 11);
        let data = images_of(&patterns());
        let lr = 0.05;
        let mut t = Trainer::new(&rbm, config(method, 3, lr, 6, 1, 5, 6)).unwrap();
        t.run(&data, 1, 2).unwrap();
        let v_neg = t.chain_visible();
        let v_pos: Vec<f32> = data.to_f32();
        let g = rbm.free_energy_gradient(&v_pos, &v_neg);
        let after = t.rbm();
        let check = |name: &str, before: &[f32], grad: &[f32], after: &[f32]| {
            for i in 0..before.len() {
                let want = before[i] - lr * grad[i];
                assert!((after[i] - want).abs() < 1e-5, "{method:?} {name}[{i}]: {} vs {want}", after[i]);
            }
        };
        check("W", &rbm.w, &g.w, &after.w);
        check("hbias", &rbm.hbias, &g.hbias, &after.hbias);
        check("vbias", &rbm.vbias, &g.vbias, &after.vbias);
        assert!(v_neg.iter().all(|&x| x == 0.0 || x == 1.0));
    }
}

#[test]
fn cd_with_large_k_approaches_the_exact_log_likelihood_gradient() {
    // A fast-mixing 6 x 4 model (weights within ±0.5). One CD-50 update with
    // lr = 1 on a batch of 24,000 rows (4,000 copies of each pattern) moves W
    // by the CD-50 gradient estimate. Each entry's negative term is a mean of
    // 24,000 values in [0, 1], standard error <= 0.5 / sqrt(24000) = 0.0032;
    // we allow 0.02 (over 6 standard errors) plus CD-50's own bias, tiny here.
    let rbm = random_rbm(6, 4, 0.5, 12);
    let rows: Vec<Vec<f32>> = patterns().into_iter().flat_map(|p| std::iter::repeat_n(p, 4000)).collect();
    let data = images_of(&rows);
    let mut t = Trainer::new(&rbm, config(Method::Cd, 50, 1.0, rows.len(), 1, 4, rows.len())).unwrap();
    t.run(&data, 1, 2).unwrap();
    let after = t.rbm();
    let exact = exact_ll_grad_w(&rbm, &patterns());
    let mut worst = 0f64;
    for k in 0..exact.len() {
        let step = (after.w[k] - rbm.w[k]) as f64;
        worst = worst.max((step - exact[k]).abs());
    }
    assert!(worst < 0.02, "largest gap between the CD-50 step and the exact gradient: {worst}");
    // and the update is not trivially zero
    assert!(exact.iter().any(|g| g.abs() > 0.05));
}

#[test]
fn training_raises_the_exact_log_likelihood() {
    for method in [Method::Pcd, Method::Cd] {
        let rows: Vec<Vec<f32>> = patterns().into_iter().cycle().take(60).collect();
        let data = images_of(&rows);
        let rbm = Rbm::new(6, 4, &mut rbm::Stream::new(5, 0)).unwrap();
        let before = mean_log_likelihood(&rbm, &patterns());
        let mut t = Trainer::new(&rbm, config(method, 1, 0.1, 6, 30, 4, 60)).unwrap();
        while !t.done() {
            t.run(&data, 1000, 2).unwrap();
        }
        let after = mean_log_likelihood(&t.rbm(), &patterns());
        assert!(after > before + 0.5, "{method:?}: log-likelihood {before} -> {after}");
    }
}

#[test]
fn pseudo_likelihood_cost_equals_its_definition() {
    // cost = mean_rows n_visible · log sigm(F(x flipped at bit i) - F(x)), x = round(v),
    // with the parameters before the update; i is 0 for the first update, 1 for the next.
    let rows = [
        vec![0.9, 0.1, 0.6, 0.0, 1.0, 0.3],
        vec![0.2, 0.8, 0.4, 1.0, 0.0, 0.7],
        vec![1.0; 6],
        vec![0.0; 6],
        vec![0.5; 6],
        vec![0.3, 0.7, 0.3, 0.7, 0.3, 0.7],
    ];
    let data = rbm::data::Images {
        n: 6,
        rows: 1,
        cols: 6,
        pixels: rows.iter().flatten().map(|&x: &f64| (x * 255.0).round() as u8).collect(),
    };
    let rbm0 = random_rbm(6, 5, 1.0, 13);
    let mut t = Trainer::new(&rbm0, config(Method::Pcd, 2, 0.1, 2, 1, 5, 6)).unwrap();
    let mut params = rbm0.clone();
    for u in 0..2 {
        t.run(&data, 1, 2).unwrap();
        let mut want = 0f64;
        for r in 0..2 {
            let x: Vec<f32> = data.image(2 * u + r).iter().map(|&p| if p >= 128 { 1.0 } else { 0.0 }).collect();
            let mut flipped = x.clone();
            flipped[u] = 1.0 - flipped[u];
            let delta = free_energy_f64(&params, &flipped) - free_energy_f64(&params, &x);
            want += 6.0 * -(1.0 + (-delta).exp()).ln() / 2.0;
        }
        let got = t.epoch_costs()[u];
        assert!((got - want).abs() < 1e-4 * want.abs().max(1.0), "update {u}: {got} vs {want}");
        params = t.rbm();
    }
}

#[test]
fn reconstruction_cost_equals_its_definition() {
    // CD-1's cost is mean_rows Σ_i x_i log sigm(a_i) + (1 - x_i) log(1 - sigm(a_i)),
    // a = h W^T + b for the hidden sample h of the data. With hidden biases of +60,
    // sigm(60) rounds to 1 in f32, so h = 1 surely and a_i = Σ_j W_ij + b_i exactly.
    let data = images_of(&patterns());
    let mut rbm = random_rbm(6, 5, 1.0, 14);
    rbm.hbias = vec![60.0; 5];
    let mut t = Trainer::new(&rbm, config(Method::Cd, 1, 0.1, 3, 1, 5, 6)).unwrap();
    t.run(&data, 1, 2).unwrap();
    let mut want = 0f64;
    for r in 0..3 {
        for (i, &p) in data.image(r).iter().enumerate() {
            let x = p as f64 / 255.0;
            let a: f64 = rbm.w[i * 5..(i + 1) * 5].iter().map(|&w| w as f64).sum::<f64>() + rbm.vbias[i] as f64;
            want += x * -softplus_ref(-a) + (1.0 - x) * -softplus_ref(a);
        }
    }
    want /= 3.0;
    let got = t.epoch_costs()[0];
    assert!((got - want).abs() < 1e-5 * want.abs().max(1.0), "{got} vs {want}");
}

fn train_params(threads: usize, method: Method, seed: u64) -> Rbm {
    let rows: Vec<Vec<f32>> = patterns().into_iter().cycle().take(40).collect();
    let mut data = images_of(&rows);
    // grey levels, so the data path is exercised too
    for (i, p) in data.pixels.iter_mut().enumerate() {
        *p = p.saturating_sub((i % 7) as u8 * 20);
    }
    let cfg = checked(&train_config(method, 3, 0.1, 5, 3, 7, seed, 40));
    let rbm = Rbm::new(6, 7, &mut rbm::Stream::new(seed, 0)).unwrap();
    let mut t = Trainer::new(&rbm, cfg).unwrap();
    while !t.done() {
        t.run(&data, 3, threads).unwrap();
    }
    t.rbm()
}

#[test]
fn the_same_seed_gives_identical_parameters() {
    for method in [Method::Pcd, Method::Cd] {
        assert_eq!(train_params(2, method, 9), train_params(2, method, 9));
        assert_ne!(train_params(2, method, 9), train_params(2, method, 10));
    }
}

/// A 100 x 40 model trained for 2 epochs on 60 random grey rows (half of
/// them zeros) with `n_parts` parts on `threads` threads: the parameters, the
/// chain's visible states and the epochs' costs.
fn train_wide(method: Method, n_parts: usize, threads: usize) -> (Rbm, Vec<f32>, Vec<f64>) {
    let mut rng = rbm::Stream::new(5, 3);
    let values: Vec<f32> =
        (0..60 * 100).map(|_| if rng.uniform() < 0.5 { 0.0 } else { rng.uniform() as f32 }).collect();
    let data = rbm::RowMatrix::new(&values, 100).unwrap();
    let mut cfg = train_config(method, 2, 0.05, 10, 2, 40, 31, 60);
    cfg.n_parts = n_parts;
    let mut t = Trainer::new(&Rbm::init(100, 40, 31).unwrap(), checked(&cfg)).unwrap();
    let mut costs = Vec::new();
    while !t.done() {
        costs.extend(t.run(&data, 4, threads).unwrap());
    }
    (t.rbm(), t.chain_visible(), costs)
}

#[test]
fn parameters_do_not_depend_on_the_thread_count() {
    // 16 parts on 1, 2, 3 and 8 threads (none clamped: every thread owns
    // parts), and 5, 2 and 1 parts (uneven slabs); dense and sparse products
    // both occur (grey rows half zeros, hidden states near 50% early).
    for method in [Method::Pcd, Method::Cd] {
        let one = train_wide(method, 16, 1);
        for threads in [2, 3, 8] {
            let other = train_wide(method, 16, threads);
            assert_eq!(one.0.w, other.0.w, "{method:?}: W differs between 1 and {threads} threads");
            assert_eq!(one, other, "{method:?}: 1 and {threads} threads");
        }
        // nor on the number of parts: the random streams belong to 8-unit groups
        for (parts, threads) in [(5, 3), (2, 1), (2, 2), (1, 1)] {
            assert_eq!(one, train_wide(method, parts, threads), "{method:?}: {parts} parts, {threads} threads");
        }
        let small = (train_params(1, method, 21), train_params(2, method, 21), train_params(8, method, 21));
        assert_eq!(small.0, small.1);
        assert_eq!(small.0, small.2);
    }
}

#[test]
fn a_slab_one_unit_wide_does_not_change_the_parameters() {
    // 97 x 17: each layer's last 8-unit group is one unit wide, and 16 threads
    // on 16 parts give it a slab of its own; dense grey rows (no zeros) and
    // hidden states near 50% make every product a dense one, a matrix-vector
    // product for that slab
    let run = |threads: usize| {
        let mut rng = rbm::Stream::new(8, 1);
        let values: Vec<f32> = (0..40 * 97).map(|_| 0.05 + 0.9 * rng.uniform() as f32).collect();
        let data = rbm::RowMatrix::new(&values, 97).unwrap();
        let mut cfg = train_config(Method::Cd, 1, 0.05, 10, 2, 17, 31, 40);
        cfg.n_parts = 16;
        let mut t = Trainer::new(&Rbm::init(97, 17, 31).unwrap(), checked(&cfg)).unwrap();
        let mut costs = Vec::new();
        while !t.done() {
            costs.extend(t.run(&data, 4, threads).unwrap());
        }
        (t.rbm(), costs)
    };
    let one = run(1);
    for threads in [2, 16] {
        assert_eq!(one, run(threads), "1 and {threads} threads");
    }
}

#[test]
fn large_preactivations_give_finite_costs_and_updates() {
    // Weights of ±1000 put every pre-activation near ±1000.
    for method in [Method::Pcd, Method::Cd] {
        let mut rbm = random_rbm(6, 4, 1.0, 15);
        for (i, w) in rbm.w.iter_mut().enumerate() {
            *w = if i % 2 == 0 { 1000.0 } else { -1000.0 };
        }
        rbm.vbias = vec![1000.0, -1000.0, 1000.0, -1000.0, 0.0, 0.0];
        let data = images_of(&patterns());
        let mut t = Trainer::new(&rbm, config(method, 2, 1e-6, 3, 1, 4, 6)).unwrap();
        let cost = t.run(&data, 10, 2).unwrap().unwrap();
        assert!(cost.is_finite(), "{method:?}: {cost}");
        let r = t.rbm();
        assert!(r.w.iter().chain(&r.hbias).chain(&r.vbias).all(|x| x.is_finite()));
    }
}

#[test]
fn divergence_is_reported_with_epoch_and_minibatch() {
    // Weights near f32::MAX overflow the pre-activations to infinity.
    let rows: Vec<Vec<f32>> = patterns().into_iter().cycle().take(60).collect();
    let data = images_of(&rows);
    let mut rbm = random_rbm(6, 4, 1.0, 16);
    rbm.w.iter_mut().for_each(|w| *w = 3e38);
    let mut t = Trainer::new(&rbm, config(Method::Pcd, 1, 0.1, 3, 1, 4, 60)).unwrap();
    let err = t.run(&data, 20, 2).unwrap_err().to_string();
    assert!(err.contains("diverged at epoch 0, minibatch") && err.contains("learning rate (lr)"), "{err}");
}

#[test]
fn bad_configurations_name_the_parameter() {
    let base = TrainConfig::default();
    let with = |f: &dyn Fn(&mut TrainConfig)| {
        let mut c = base.clone();
        f(&mut c);
        c
    };
    let cases: Vec<(TrainConfig, &str)> = vec![
        (with(&|c| c.batch_size = 0), "batch_size:"),
        (with(&|c| c.k = 0), "k:"),
        (with(&|c| c.lr = 0.0), "lr:"),
        (with(&|c| c.lr = f32::NAN), "lr:"),
        (with(&|c| c.train_size = 0), "train_size:"),
        (with(&|c| c.train_size = 50_001), "train_size:"),
        (with(&|c| c.n_hidden = 0), "n_hidden:"),
        (with(&|c| c.epochs = 0), "epochs:"),
        (with(&|c| c.n_parts = 0), "n_parts:"),
        (with(&|c| c.n_parts = 257), "n_parts:"),
    ];
    for (cfg, name) in cases {
        let err = cfg.check(50_000).unwrap_err().to_string();
        assert!(err.starts_with(name), "{err}");
    }
    assert!(base.check(50_000).is_ok());
}

#[test]
fn a_part_with_no_hidden_units_or_no_rows_does_not_hang_or_panic() {
    // Regression: with 1 hidden unit (or a batch of 1) one of the two parts is
    // empty; that once panicked in one thread and left the other spinning.
    let data = images_of(&patterns());
    for (n_hidden, batch) in [(1, 3), (4, 1), (1, 1)] {
        for method in [Method::Pcd, Method::Cd] {
            let rbm = random_rbm(6, n_hidden, 1.0, 17);
            let mut t = Trainer::new(&rbm, config(method, 2, 0.1, batch, 2, n_hidden, 6)).unwrap();
            while !t.done() {
                t.run(&data, 4, 2).unwrap();
            }
            let one = t.rbm();
            let mut t1 = Trainer::new(&rbm, config(method, 2, 0.1, batch, 2, n_hidden, 6)).unwrap();
            while !t1.done() {
                t1.run(&data, 4, 1).unwrap();
            }
            assert_eq!(one, t1.rbm(), "{method:?}, {n_hidden} hidden, batch {batch}");
        }
    }
    let mut engine = rbm::engine::Engine::new(&random_rbm(6, 1, 1.0, 18), 1, 3, 0, 16, 2);
    engine.set_chain_visible(&[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
    engine.gibbs_vhv(5, 2);
}

#[test]
fn pcd_without_its_monitor_learns_the_same_parameters() {
    // the pseudo-likelihood only reads the parameters: switched off (as the
    // Python package does when it prints nothing), every bit is the same, and
    // the epoch's cost reads 0
    let values: Vec<f32> = patterns().into_iter().flatten().collect();
    let data = rbm::RowMatrix::new(&values, 6).unwrap();
    let rbm0 = random_rbm(6, 5, 1.0, 13);
    let mut cfg = train_config(Method::Pcd, 1, 0.1, 2, 3, 5, 77, 6);
    let mut on = Trainer::new(&rbm0, checked(&cfg)).unwrap();
    cfg.monitor = false;
    let mut off = Trainer::new(&rbm0, checked(&cfg)).unwrap();
    let (mut cost_on, mut cost_off) = (None, None);
    while !on.done() {
        cost_on = on.run(&data, usize::MAX, 2).unwrap();
        cost_off = off.run(&data, usize::MAX, 2).unwrap();
    }
    assert_eq!(on.rbm(), off.rbm());
    assert!(cost_on.unwrap() < 0.0 && cost_off == Some(0.0), "{cost_on:?} {cost_off:?}");
}
