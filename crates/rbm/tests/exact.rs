//! The RBM's mathematics against exact answers on tiny models, found by
//! enumerating every state.
#![allow(clippy::needless_range_loop)] // subscripts as in the formulas

mod common;
use common::*;
use rbm::{Rbm, Stream};

#[test]
fn free_energy_equals_minus_log_sum_over_hidden_states() {
    let rbm = random_rbm(5, 4, 1.5, 1);
    let states = all_states(5);
    let flat: Vec<f32> = states.iter().flatten().cloned().collect();
    let fast = rbm.free_energy(&flat);
    for (v, f) in states.iter().zip(fast) {
        let want = free_energy_brute(&rbm, v);
        assert!((f as f64 - want).abs() < 1e-5 * want.abs().max(1.0), "F({v:?}) = {f}, brute force {want}");
    }
}

#[test]
fn conditionals_equal_brute_force_marginals() {
    let rbm = random_rbm(4, 3, 1.5, 2);
    let hs = all_states(3);
    let vs = all_states(4);
    for v in &vs {
        // p(h_j = 1 | v) = Σ_h h_j e^{-E(v,h)} / Σ_h e^{-E(v,h)}
        let w: Vec<f64> = hs.iter().map(|h| (-rbm.energy(v, h)).exp()).collect();
        let z: f64 = w.iter().sum();
        let got = rbm.propup(v).mean;
        for j in 0..3 {
            let want: f64 = hs.iter().zip(&w).map(|(h, w)| h[j] as f64 * w).sum::<f64>() / z;
            assert!((got[j] as f64 - want).abs() < 1e-6, "p(h{j}|v={v:?}) = {}, brute force {want}", got[j]);
        }
    }
    for h in &hs {
        let w: Vec<f64> = vs.iter().map(|v| (-rbm.energy(v, h)).exp()).collect();
        let z: f64 = w.iter().sum();
        let got = rbm.propdown(h).mean;
        for i in 0..4 {
            let want: f64 = vs.iter().zip(&w).map(|(v, w)| v[i] as f64 * w).sum::<f64>() / z;
            assert!((got[i] as f64 - want).abs() < 1e-6, "p(v{i}|h={h:?}) = {}, brute force {want}", got[i]);
        }
    }
}

#[test]
fn closed_form_gradient_equals_finite_differences() {
    let rbm = random_rbm(5, 3, 1.0, 3);
    let v_data: Vec<f32> = vec![1., 0., 1., 1., 0., 0.3, 0.9, 0.0, 1.0, 0.5];
    let v_model: Vec<f32> = vec![0., 1., 1., 0., 1., 1., 1., 0., 0., 0.];
    let g = rbm.free_energy_gradient(&v_data, &v_model);
    // objective: mean F(v_data) - mean F(v_model), in f64
    let objective = |r: &Rbm| -> f64 {
        let f = |v: &[f32]| v.chunks(5).map(|x| free_energy_f64(r, x)).sum::<f64>() / 2.0;
        f(&v_data) - f(&v_model)
    };
    let eps = 1e-3f32;
    let fd = |set: &dyn Fn(&mut Rbm, f32)| -> f64 {
        let (mut a, mut b) = (rbm.clone(), rbm.clone());
        set(&mut a, eps);
        set(&mut b, -eps);
        (objective(&a) - objective(&b)) / (2.0 * eps as f64)
    };
    for k in 0..15 {
        let want = fd(&|r: &mut Rbm, d| r.w[k] += d);
        assert!((g.w[k] as f64 - want).abs() < 2e-4, "dW[{k}] = {}, finite difference {want}", g.w[k]);
    }
    for j in 0..3 {
        let want = fd(&|r: &mut Rbm, d| r.hbias[j] += d);
        assert!((g.hbias[j] as f64 - want).abs() < 2e-4, "dhbias[{j}]");
    }
    for i in 0..5 {
        let want = fd(&|r: &mut Rbm, d| r.vbias[i] += d);
        assert!((g.vbias[i] as f64 - want).abs() < 2e-4, "dvbias[{i}]");
    }
}

#[test]
fn gibbs_vhv_samples_the_exact_distribution() {
    // 40,000 independent chains of a 4 x 3 model after 30 steps of gibbs_vhv,
    // on two threads. Each state's frequency has standard error
    // sqrt(p (1 - p) / 40000) <= 0.0025; we allow 5 of them.
    let rbm = random_rbm(4, 3, 1.0, 4);
    let n = 40_000;
    let init = vec![0f32; n * 4];
    let mut engine = rbm::engine::Engine::new(&rbm, n, 7, 500, 16, 2);
    engine.set_chain_visible(&init);
    engine.gibbs_vhv(30, 2);
    let v = engine.chain_visible();
    let mut counts = [0f64; 16];
    for row in v.chunks(4) {
        let s: usize = row.iter().enumerate().map(|(j, &x)| (x as usize) << j).sum();
        counts[s] += 1.0;
    }
    for (s, p) in p_visible(&rbm).iter().enumerate() {
        let f = counts[s] / n as f64;
        let se = (p * (1.0 - p) / n as f64).sqrt();
        assert!((f - p).abs() < 5.0 * se + 1e-4, "state {s}: frequency {f}, exact {p}");
    }
}

#[test]
fn model_level_gibbs_steps_sample_the_conditionals() {
    // sample_h_given_v on 20,000 copies of one v: the frequency of h_j = 1
    // has standard error <= 0.5 / sqrt(20000) = 0.0035; we allow 5 of them.
    let rbm = random_rbm(4, 3, 1.5, 5);
    let v: Vec<f32> = [1f32, 0., 1., 1.].repeat(20_000);
    let mut rng = Stream::new(3, 3);
    let h = rbm.sample_h_given_v(&v, &mut rng);
    let p = rbm.propup(&v[..4]).mean;
    for j in 0..3 {
        let f = h.sample.iter().skip(j).step_by(3).sum::<f32>() / 20_000.0;
        assert!((f - p[j]).abs() < 0.0175, "h{j}: {f} vs {}", p[j]);
    }
    let (v1, h1) = rbm.gibbs_hvh(&h.sample, &mut rng);
    assert_eq!(v1.sample.len(), 80_000);
    assert_eq!(h1.sample.len(), 60_000);
    assert!(v1.sample.iter().chain(&h1.sample).all(|&x| x == 0.0 || x == 1.0));
}

#[test]
fn large_preactivations_give_finite_free_energies_and_gradients() {
    let mut rbm = random_rbm(3, 2, 1.0, 6);
    rbm.hbias = vec![1000.0, -1000.0];
    rbm.vbias = vec![1000.0, -1000.0, 0.0];
    let v = vec![1f32, 0., 1., 0., 1., 0.];
    let f = rbm.free_energy(&v);
    assert!(f.iter().all(|x| x.is_finite()), "{f:?}");
    let g = rbm.free_energy_gradient(&v[..3], &v[3..]);
    assert!(g.w.iter().chain(&g.hbias).chain(&g.vbias).all(|x| x.is_finite()));
    let l = rbm.propdown(&[1.0, 1.0]);
    assert!(l.mean.iter().all(|x| x.is_finite()));
    // and right, not merely finite: against the closed form in f64. A
    // pre-activation near 1000 is rounded to f32 within half an ulp (3.1e-5),
    // once per hidden unit: 2 units, so within 1e-4 of the exact value.
    for (row, &got) in v.chunks(3).zip(&f) {
        let want = free_energy_f64(&rbm, row);
        assert!((got as f64 - want).abs() <= 1e-4, "F = {got}, want {want}");
    }
}

#[test]
fn tutorial_initialisation_is_bounded_and_seeded() {
    let a = Rbm::new(784, 500, &mut Stream::new(1234, 0)).unwrap();
    let b = Rbm::new(784, 500, &mut Stream::new(1234, 0)).unwrap();
    assert_eq!(a, b);
    let bound = 4.0 * (6.0f32 / 1284.0).sqrt();
    assert!(a.w.iter().all(|x| x.abs() <= bound));
    let max = a.w.iter().cloned().fold(0f32, |m, x| m.max(x.abs()));
    assert!(max > 0.99 * bound, "draws should fill the range");
    assert!(a.hbias.iter().chain(&a.vbias).all(|&x| x == 0.0));
}
