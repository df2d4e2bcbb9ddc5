//! Parallel tempering against exact answers on an enumerable model: each
//! temperature's chains sample its tempered distribution, the exchanges are
//! accepted as often as the product of those distributions says, and the
//! gradient reads the chains at inverse temperature 1 only.

// Index loops mirror the formulas' subscripts.
#![allow(clippy::needless_range_loop)]

mod common;
use common::*;
use rbm::{Method, Rbm, RowMatrix, TrainConfig, Trainer};

const NV: usize = 5;
const NH: usize = 3;

/// E(v, h) = -b·v - c·h - v W h, in f64.
fn energy(rbm: &Rbm, v: &[f32], h: &[f32]) -> f64 {
    let mut e = 0f64;
    for i in 0..NV {
        e -= (rbm.vbias[i] * v[i]) as f64;
        for j in 0..NH {
            e -= (v[i] * rbm.w[i * NH + j] * h[j]) as f64;
        }
    }
    e - (0..NH).map(|j| (rbm.hbias[j] * h[j]) as f64).sum::<f64>()
}

/// p_beta(v, h) over every joint state, in the order of `all_states(NV + NH)`.
fn tempered(rbm: &Rbm, beta: f64) -> Vec<f64> {
    let w: Vec<f64> = all_states(NV + NH).iter().map(|s| (-beta * energy(rbm, &s[..NV], &s[NV..])).exp()).collect();
    let z: f64 = w.iter().sum();
    w.iter().map(|x| x / z).collect()
}

/// PCD-1 with 3 temperatures (1, 0.65, 0.3) of 40 chains each; the rate is so
/// small that no parameter moves.
fn config() -> TrainConfig {
    let mut cfg = train_config(Method::Pcd, 1, 1e-30, 4, 100_000, NH, 3, 8);
    (cfg.chains, cfg.temperatures, cfg.beta_min) = (Some(40), 3, 0.3);
    cfg
}

fn model() -> Rbm {
    random_rbm(NV, NH, 2.0, 23)
}

#[test]
fn each_temperatures_chains_sample_its_tempered_distribution_and_exchange_at_the_exact_rate() {
    let rbm = model();
    let data: Vec<f32> = (0..8 * NV).map(|k| (k % 3 == 0) as u8 as f32).collect();
    let rows = RowMatrix::new(&data, NV).unwrap();
    let mut t = Trainer::new(&rbm, checked(&config())).unwrap();
    let betas = [1.0, 0.65, 0.3];
    // histograms of v per temperature over 3,000 updates after 200 of burn-in
    let mut counts = vec![vec![0f64; 1 << NV]; 3];
    for u in 0..3200 {
        t.run(&rows, 1, 2).unwrap();
        if u < 200 {
            continue;
        }
        let v = t.chain_visible();
        for (r, row) in v.chunks_exact(NV).enumerate() {
            let code = row.iter().enumerate().map(|(i, &x)| (x as usize) << i).sum::<usize>();
            counts[r / 40][code] += 1.0;
        }
    }
    assert_eq!(t.rbm().w, rbm.w, "the parameters must not move");
    for (k, &beta) in betas.iter().enumerate() {
        // the exact marginal of v at beta, summed from the joint
        let joint = tempered(&rbm, beta);
        let mut exact = vec![0f64; 1 << NV];
        for (s, p) in joint.iter().enumerate() {
            exact[s & ((1 << NV) - 1)] += p; // bit i of a state's index is unit i, v first
        }
        let n: f64 = counts[k].iter().sum();
        // total variation over 32 states from 120,000 draws of 40 chains, one
        // Gibbs step apart: even at an effective 10,000 draws its noise is
        // about sqrt(32 / 10,000) / 2 ~ 0.03; 0.05 leaves room for the correlation
        let tv: f64 = counts[k].iter().zip(&exact).map(|(c, e)| (c / n - e).abs()).sum::<f64>() / 2.0;
        assert!(tv < 0.05, "beta {beta}: total variation {tv}");
    }
    // the exchange rate: E[min(1, exp((beta_a - beta_b)(E_a - E_b)))] under
    // p_a x p_b; ~60,000 proposals per pair, correlated: 0.02
    let energies: Vec<f64> = all_states(NV + NH).iter().map(|s| energy(&rbm, &s[..NV], &s[NV..])).collect();
    for (pair, &rate) in t.swap_rates().iter().enumerate() {
        let (ba, bb) = (betas[pair], betas[pair + 1]);
        let (pa, pb) = (tempered(&rbm, ba), tempered(&rbm, bb));
        let mut exact = 0f64;
        for (x, &px) in pa.iter().enumerate() {
            for (y, &py) in pb.iter().enumerate() {
                exact += px * py * ((ba - bb) * (energies[x] - energies[y])).min(0.0).exp();
            }
        }
        assert!((rate - exact).abs() < 0.02, "pair {pair}: rate {rate}, exact {exact}");
    }
}

#[test]
fn tempering_is_the_same_on_any_thread_count_and_resumes_bit_for_bit() {
    let data: Vec<f32> = (0..8 * NV).map(|k| (k % 3 == 0) as u8 as f32).collect();
    let rows = RowMatrix::new(&data, NV).unwrap();
    let mut cfg = config();
    (cfg.lr, cfg.epochs) = (0.05, 4);
    let run = |threads: usize| {
        let mut t = Trainer::new(&model(), checked(&cfg)).unwrap();
        rbm::fit(&mut t, &rows, &rbm::FitOptions::new(threads), &mut ()).unwrap();
        (t.rbm(), t.chain_visible())
    };
    let (one, three) = (run(1), run(3));
    assert_eq!(one, three);
    let path = tmpdir("tempering-resume").join("ck.safetensors");
    let mut t = Trainer::new(&model(), checked(&cfg)).unwrap();
    t.run(&rows, 3, 2).unwrap();
    rbm::modelfile::save_checkpoint(&path, &mut t, "").unwrap();
    let mut resumed = rbm::modelfile::load_checkpoint(&path).unwrap().trainer;
    rbm::fit(&mut resumed, &rows, &rbm::FitOptions::new(2), &mut ()).unwrap();
    assert_eq!(resumed.rbm(), one.0);
    // tempering runs PCD's chains only
    let mut cd = config();
    (cd.method, cd.chains) = (Method::Cd, None);
    assert!(cd.check(8).unwrap_err().to_string().contains("PCD"));
}

#[test]
fn the_gradient_reads_the_chains_at_inverse_temperature_one() {
    // one update from W0 with minibatches of 4 rows and 40 chains per
    // temperature: ΔW = lr/4 Σ_rows v h_pos^T - lr/40 Σ_(first 40 chains) v_neg h_neg^T,
    // h = sigm(v W0 + c0), v_neg the states the update left in those rows
    let data: Vec<f32> = (0..8 * NV).map(|k| (k % 3 == 0) as u8 as f32).collect();
    let rows = RowMatrix::new(&data, NV).unwrap();
    let mut cfg = config();
    cfg.lr = 0.1;
    let w0 = model();
    let mut t = Trainer::new(&w0, checked(&cfg)).unwrap();
    t.run(&rows, 1, 2).unwrap();
    let (w1, chains) = (t.rbm(), t.chain_visible());
    assert_eq!(chains.len(), 3 * 40 * NV);
    let (v, v_neg) = (&data[..4 * NV], &chains[..40 * NV]);
    let (hp, hn) = (w0.propup(v).mean, w0.propup(v_neg).mean);
    for i in 0..NV {
        for j in 0..NH {
            let pos: f64 = (0..4).map(|r| (v[r * NV + i] * hp[r * NH + j]) as f64).sum();
            let neg: f64 = (0..40).map(|c| (v_neg[c * NV + i] * hn[c * NH + j]) as f64).sum();
            let want = 0.1 * (pos / 4.0 - neg / 40.0);
            let got = (w1.w[i * NH + j] - w0.w[i * NH + j]) as f64;
            assert!((got - want).abs() < 2e-6, "W[{i}, {j}]: {got} vs {want}");
        }
    }
}

#[test]
fn gaussian_units_temper_too() {
    // Gaussian visible units (x = v / σ): integrating x out,
    // p_beta(h) ∝ exp(beta [c·h + Σ_i ((b_i/σ_i + (W h)_i)² - (b_i/σ_i)²) / 2]);
    // the chains' hidden states at each temperature must follow it
    let rbm = random_rbm(NV, NH, 1.0, 29);
    let sigma = vec![0.8f32; NV];
    let g = rbm::gaussian::GaussianRbm::new(rbm.clone(), sigma.clone()).unwrap();
    let data: Vec<f32> = (0..8 * NV).map(|k| (k % 7) as f32 / 3.0 - 1.0).collect();
    let rows = RowMatrix::new(&data, NV).unwrap();
    let mut cfg = config();
    cfg.visible = rbm::train::Visible::Gaussian;
    let mut t = Trainer::new_gaussian(&g, checked(&cfg)).unwrap();
    let betas = [1.0f64, 0.65, 0.3];
    let mut counts = vec![vec![0f64; 1 << NH]; 3];
    let mut x2 = vec![vec![0f64; NV]; 3];
    for u in 0..3200 {
        t.run(&rows, 1, 2).unwrap();
        if u >= 200 {
            let (_, chain) = t.state();
            for (r, h) in chain.chunks_exact(NH).enumerate() {
                counts[r / 40][h.iter().enumerate().map(|(j, &x)| (x as usize) << j).sum::<usize>()] += 1.0;
            }
            for (r, v) in t.chain_visible().chunks_exact(NV).enumerate() {
                for i in 0..NV {
                    x2[r / 40][i] += ((v[i] / sigma[i]) as f64).powi(2);
                }
            }
        }
    }
    for (k, &beta) in betas.iter().enumerate() {
        let log_p: Vec<f64> = all_states(NH)
            .iter()
            .map(|h| {
                let mut lp = (0..NH).map(|j| (rbm.hbias[j] * h[j]) as f64).sum::<f64>();
                for i in 0..NV {
                    let bs = (rbm.vbias[i] / sigma[i]) as f64;
                    let wh: f64 = (0..NH).map(|j| (rbm.w[i * NH + j] * h[j]) as f64).sum();
                    lp += ((bs + wh).powi(2) - bs * bs) / 2.0;
                }
                beta * lp
            })
            .collect();
        let z: f64 = log_p.iter().map(|l| l.exp()).sum();
        let n: f64 = counts[k].iter().sum();
        // 8 states, 120,000 correlated draws: total variation under 0.05 (as above)
        let tv: f64 = counts[k].iter().zip(&log_p).map(|(c, l)| (c / n - l.exp() / z).abs()).sum::<f64>() / 2.0;
        assert!(tv < 0.05, "beta {beta}: total variation {tv}");
        // E_beta[x_i²] = Σ_h p_beta(h) (b_i/σ_i + (W h)_i)² + 1 / beta: x² has
        // variance below 2 (3.4)² + 4 (3.4) (2)² ~ 80 here, so 120,000 draws
        // (10,000 effective) leave a standard error under 0.1; 0.3 is 3 of them,
        // and an untempered variance (1 in place of 1 / beta) misses by 0.5 or more
        for i in 0..NV {
            let bs = (rbm.vbias[i] / sigma[i]) as f64;
            let exact: f64 = all_states(NH)
                .iter()
                .zip(&log_p)
                .map(|(h, l)| {
                    let wh: f64 = (0..NH).map(|j| (rbm.w[i * NH + j] * h[j]) as f64).sum();
                    l.exp() / z * ((bs + wh).powi(2) + 1.0 / beta)
                })
                .sum();
            let got = x2[k][i] / n;
            assert!((got - exact).abs() < 0.3, "beta {beta}, unit {i}: E[x²] {got} vs {exact}");
        }
    }
}
