//! Brute-force references for tiny RBMs: every state enumerated, in f64.
#![allow(clippy::needless_range_loop)] // subscripts as in the formulas
#![allow(dead_code)]

use rbm::data::Images;
use rbm::math::{log_sum_exp, softplus_ref};
use rbm::{Rbm, Stream};

/// All 2^n binary vectors of length n, `[2^n, n]` (bit j of the index is unit j).
pub fn all_states(n: usize) -> Vec<Vec<f32>> {
    (0..1usize << n).map(|s| (0..n).map(|j| ((s >> j) & 1) as f32).collect()).collect()
}

/// A small RBM with weights and biases uniform in ±scale.
pub fn random_rbm(nv: usize, nh: usize, scale: f64, seed: u64) -> Rbm {
    let mut rng = Stream::new(seed, 9);
    let mut draw = |n: usize| (0..n).map(|_| ((2.0 * rng.uniform() - 1.0) * scale) as f32).collect::<Vec<_>>();
    let (w, hb, vb) = (draw(nv * nh), draw(nh), draw(nv));
    Rbm::from_params(nv, nh, w, hb, vb).unwrap()
}

/// F(v) = -log Σ_h exp(-E(v, h)) by enumerating h.
pub fn free_energy_brute(rbm: &Rbm, v: &[f32]) -> f64 {
    let terms: Vec<f64> = all_states(rbm.n_hidden).iter().map(|h| -rbm.energy(v, h)).collect();
    -log_sum_exp(&terms)
}

/// F(v) in closed form (Eq. 9) in f64.
pub fn free_energy_f64(rbm: &Rbm, v: &[f32]) -> f64 {
    let (nv, nh) = (rbm.n_visible, rbm.n_hidden);
    let mut f = 0.0;
    for i in 0..nv {
        f -= rbm.vbias[i] as f64 * v[i] as f64;
    }
    for j in 0..nh {
        let mut a = rbm.hbias[j] as f64;
        for i in 0..nv {
            a += v[i] as f64 * rbm.w[i * nh + j] as f64;
        }
        f -= softplus_ref(a);
    }
    f
}

/// log Z = log Σ_v exp(-F(v)), enumerating v.
pub fn log_z_brute(rbm: &Rbm) -> f64 {
    let terms: Vec<f64> = all_states(rbm.n_visible).iter().map(|v| -free_energy_f64(rbm, v)).collect();
    log_sum_exp(&terms)
}

/// Exact p(v) for every visible state (in `all_states` order).
pub fn p_visible(rbm: &Rbm) -> Vec<f64> {
    let lz = log_z_brute(rbm);
    all_states(rbm.n_visible).iter().map(|v| (-free_energy_f64(rbm, v) - lz).exp()).collect()
}

/// Mean exact log-likelihood of binary rows `data` (`[n, nv]`).
pub fn mean_log_likelihood(rbm: &Rbm, data: &[Vec<f32>]) -> f64 {
    let lz = log_z_brute(rbm);
    data.iter().map(|v| -free_energy_f64(rbm, v) - lz).sum::<f64>() / data.len() as f64
}

/// The exact gradient of the mean log-likelihood of `data` with respect to W,
/// `[nv, nh]`: E_data[v sigm(vW + c)] - E_model[v sigm(vW + c)].
pub fn exact_ll_grad_w(rbm: &Rbm, data: &[Vec<f32>]) -> Vec<f64> {
    let (nv, nh) = (rbm.n_visible, rbm.n_hidden);
    let stat = |v: &[f32]| -> Vec<f64> {
        let mut g = vec![0.0; nv * nh];
        for j in 0..nh {
            let mut a = rbm.hbias[j] as f64;
            for i in 0..nv {
                a += v[i] as f64 * rbm.w[i * nh + j] as f64;
            }
            let p = 1.0 / (1.0 + (-a).exp());
            for i in 0..nv {
                g[i * nh + j] = v[i] as f64 * p;
            }
        }
        g
    };
    let mut g = vec![0.0; nv * nh];
    for v in data {
        for (a, b) in g.iter_mut().zip(stat(v)) {
            *a += b / data.len() as f64;
        }
    }
    for (v, p) in all_states(nv).iter().zip(p_visible(rbm)) {
        for (a, b) in g.iter_mut().zip(stat(v)) {
            *a -= p * b;
        }
    }
    g
}

/// Binary rows as an image set (one row of pixels per image, 0 or 255).
pub fn images_of(rows: &[Vec<f32>]) -> Images {
    let nv = rows[0].len();
    Images {
        n: rows.len(),
        rows: 1,
        cols: nv,
        pixels: rows.iter().flatten().map(|&x| (x * 255.0).round() as u8).collect(),
    }
}

/// A training configuration (the default number of parts), unchecked.
#[allow(clippy::too_many_arguments)]
pub fn train_config(
    method: rbm::Method,
    k: usize,
    lr: f32,
    batch_size: usize,
    epochs: usize,
    n_hidden: usize,
    seed: u64,
    train_size: usize,
) -> rbm::TrainConfig {
    let mut c = rbm::TrainConfig::default();
    (c.method, c.k, c.lr, c.batch_size, c.epochs) = (method, k, lr, batch_size, epochs);
    (c.n_hidden, c.seed, c.train_size) = (n_hidden, seed, train_size);
    c
}

/// `config` checked (against as many rows as it asks for).
pub fn checked(config: &rbm::TrainConfig) -> rbm::CheckedConfig {
    config.check(config.train_size).expect("a valid configuration")
}

/// A fresh empty directory for a test's files.
pub fn tmpdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rbm-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
