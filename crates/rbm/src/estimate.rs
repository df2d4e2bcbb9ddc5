//! Log-likelihoods: the exact partition function of small RBMs, annealed
//! importance sampling (AIS, Salakhutdinov & Murray 2008) for large ones, and
//! the conservative reverse estimate RAISE (Burda, Grosse & Salakhutdinov 2015).
//!
//! Everything works with the unnormalised marginal of the visible units at
//! inverse temperature β, between a base-rate model A (W = 0, hidden biases 0,
//! visible biases b_A) and the model B itself:
//!
//!   log f_β(v) = ((1 - β) b_A + β b_B)·v + Σ_j softplus(β (c_j + v W_j))
//!
//! f_0 = exp(b_A·v) 2^n_hidden, whose normaliser is known in closed form
//! (`base_log_z`); f_1 is the model's exp(-F(v)).

use crate::data::Images;
use crate::engine::{groups, run_team, split, Engine, Own, Rows, Slab, DEFAULT_PARTS};
use crate::gaussian::GaussianRbm;
use crate::math::{sigmoid_sample_groups, softplus_beta_diff_groups, sum_softplus_biased};
use crate::model::Rbm;
use std::sync::Mutex;

/// Largest smaller layer that [`exact_log_z`] enumerates by default (2^25 states).
pub const EXACT_MAX_UNITS: usize = 25;

/// log Z = log Σ_v Σ_h exp(-E(v, h)), exactly, by enumerating the smaller
/// layer's 2^n states and summing the other layer out in closed form:
///
///   over h:  log Z = LSE_h [ c·h + Σ_i softplus(b_i + W_i·h) ]
///   over v:  log Z = LSE_v [ b·v + Σ_j softplus(c_j + v·W_j) ]
///
/// States are processed in blocks of 1,024 (one matrix product each) and
/// split between threads in fixed chunks; the result does not depend on threads.
pub fn exact_log_z(rbm: &Rbm, n_threads: usize) -> f64 {
    let over_hidden = rbm.n_hidden <= rbm.n_visible;
    exact_log_z_over(rbm, over_hidden, n_threads)
}

/// [`exact_log_z`] enumerating the hidden layer (`over_hidden`) or the visible one.
pub fn exact_log_z_over(rbm: &Rbm, over_hidden: bool, n_threads: usize) -> f64 {
    let (n, other) = if over_hidden { (rbm.n_hidden, rbm.n_visible) } else { (rbm.n_visible, rbm.n_hidden) };
    assert!(n <= 40, "2^{n} states are too many to enumerate");
    let (own_bias, other_bias) = if over_hidden { (&rbm.hbias, &rbm.vbias) } else { (&rbm.vbias, &rbm.hbias) };
    let total = 1u64 << n;
    const BLOCK: u64 = 1024;
    let n_blocks = total.div_ceil(BLOCK) as usize;
    // one (max, sum) pair per block, combined in block order afterwards
    let results: Vec<Mutex<(f64, f64)>> = (0..n_blocks).map(|_| Mutex::new((f64::NEG_INFINITY, 0.0))).collect();
    let n_threads = n_threads.clamp(1, n_blocks);
    run_team(n_threads, |ctx| {
        let mut states = vec![0f32; BLOCK as usize * n];
        let mut pre = vec![0f32; BLOCK as usize * other];
        let mut terms = vec![0f64; BLOCK as usize];
        {
            for blk in split(n_blocks, n_threads, ctx.tid) {
                let first = blk as u64 * BLOCK;
                let count = (total - first).min(BLOCK) as usize;
                for s in 0..count {
                    let code = first + s as u64;
                    for j in 0..n {
                        states[s * n + j] = ((code >> j) & 1) as f32;
                    }
                }
                let st = &states[..count * n];
                let pr = &mut pre[..count * other];
                // other-layer pre-activations without bias: s W^T (over h) or s W (over v)
                crate::math::gemm(pr, count, other, n, st, false, &rbm.w, over_hidden, 1.0, false);
                for s in 0..count {
                    let mut t = 0f64;
                    for (x, c) in st[s * n..(s + 1) * n].iter().zip(own_bias) {
                        t += (*x * *c) as f64;
                    }
                    t += sum_softplus_biased(&pr[s * other..(s + 1) * other], other_bias);
                    terms[s] = t;
                }
                let m = terms[..count].iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum = terms[..count].iter().map(|t| (t - m).exp()).sum::<f64>();
                *results[blk].lock().unwrap() = (m, sum);
            }
        }
    });
    let pairs: Vec<(f64, f64)> = results.into_iter().map(|r| r.into_inner().unwrap()).collect();
    let m = pairs.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    m + pairs.iter().map(|&(bm, s)| s * (bm - m).exp()).sum::<f64>().ln()
}

/// Mean of log f_1(v) = -F(v) over the rows of `v` (`[n, n_visible]`), in f64.
pub fn mean_neg_free_energy(rbm: &Rbm, v: &[f32]) -> f64 {
    let nfe = neg_free_energies(rbm, v);
    nfe.iter().sum::<f64>() / nfe.len() as f64
}

/// -F(v) for each row of `v`, in f64 sums.
pub fn neg_free_energies(rbm: &Rbm, v: &[f32]) -> Vec<f64> {
    let n = v.len() / rbm.n_visible;
    (0..n)
        .step_by(1000)
        .flat_map(|s| {
            rbm.free_energy(&v[s * rbm.n_visible..(s + 1000).min(n) * rbm.n_visible]).into_iter().map(|f| -(f as f64))
        })
        .collect()
}

/// The base-rate model's visible biases: logit of each pixel's mean over
/// `images`, with a pseudo-count of 5 per 100 images on both sides
/// (p = (Σ x + α) / (N + 2α), α = 0.05 N), so no bias is infinite.
pub fn base_rate_vbias(images: &Images) -> Vec<f32> {
    let (n, d) = (images.n, images.dim());
    let mut sums = vec![0f64; d];
    for i in 0..n {
        for (s, &p) in sums.iter_mut().zip(images.image(i)) {
            *s += p as f64 / 255.0;
        }
    }
    base_rate_from_sums(&sums, n)
}

/// The base-rate visible biases from column sums `sums` (`[n_visible]`) of
/// `n` rows in [0, 1]: b_i = logit(p_i), with p_i the column's mean smoothed
/// towards 1/2 as if 5% of n extra rows held 0 and as many held 1, so that no
/// bias is infinite for a column that is always 0 or always 1.
pub fn base_rate_from_sums(sums: &[f64], n: usize) -> Vec<f32> {
    let alpha = 0.05 * n as f64;
    sums.iter()
        .map(|s| {
            let p = (s + alpha) / (n as f64 + 2.0 * alpha);
            (p / (1.0 - p)).ln() as f32
        })
        .collect()
}

/// log Z of the base-rate model: n_hidden log 2 + Σ_i softplus(b_A,i).
pub fn base_log_z(vb_a: &[f32], n_hidden: usize) -> f64 {
    n_hidden as f64 * std::f64::consts::LN_2 + vb_a.iter().map(|&b| crate::math::softplus_ref(b as f64)).sum::<f64>()
}

/// The inverse temperatures 0 = β_0 < ... < β_steps = 1: Salakhutdinov &
/// Murray's schedule, 500 steps in [0, 0.5), 4,000 in [0.5, 0.9) and 10,000 in
/// [0.9, 1] for 14,500 steps; other lengths keep those proportions.
pub fn ais_schedule(steps: usize) -> Vec<f64> {
    assert!(steps >= 3, "an annealing schedule needs at least 3 steps");
    let n1 = (steps * 500 / 14_500).max(1);
    let n2 = (steps * 4000 / 14_500).max(1);
    let n3 = steps - n1 - n2;
    let mut b = Vec::with_capacity(steps + 1);
    b.extend((0..n1).map(|k| 0.5 * k as f64 / n1 as f64));
    b.extend((0..n2).map(|k| 0.5 + 0.4 * k as f64 / n2 as f64));
    b.extend((0..=n3).map(|k| 0.9 + 0.1 * k as f64 / n3 as f64));
    b
}

/// An estimate of log Z with its ±3σ bracket.
#[derive(Clone, Debug)]
pub struct LogZ {
    pub log_z: f64,
    /// log(Ẑ - 3σ̂); -inf when 3σ̂ exceeds Ẑ
    pub lo: f64,
    /// log(Ẑ + 3σ̂)
    pub hi: f64,
    /// the runs' log importance weights
    pub log_w: Vec<f64>,
    /// the weights' effective sample size, (Σ w)² / Σ w², in 1..=runs
    pub ess: f64,
}

impl LogZ {
    /// Ẑ = Z_A · mean(w); σ̂ = Z_A · sd(w) / sqrt(runs); all in the log domain.
    pub fn from_log_weights(log_z_base: f64, log_w: Vec<f64>) -> Self {
        let n = log_w.len() as f64;
        let m = log_w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let r: Vec<f64> = log_w.iter().map(|w| (w - m).exp()).collect();
        let mean = r.iter().sum::<f64>() / n;
        let var = r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        let se = (var / n).sqrt();
        let shift = log_z_base + m;
        LogZ {
            log_z: shift + mean.ln(),
            lo: if mean > 3.0 * se { shift + (mean - 3.0 * se).ln() } else { f64::NEG_INFINITY },
            hi: shift + (mean + 3.0 * se).ln(),
            ess: effective_sample_size(&log_w),
            log_w,
        }
    }
}

/// The effective sample size of importance weights given by their logs:
/// (Σ w)² / Σ w² (Kish), computed with the largest weight factored out
/// (w_r = e^(log w_r - max) scales both sums alike). It is the number of
/// equally weighted runs that would be as informative: runs when all weights
/// are equal, 1 when one run carries all the weight.
pub fn effective_sample_size(log_w: &[f64]) -> f64 {
    let m = log_w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (s1, s2) = log_w.iter().fold((0.0, 0.0), |(a, b), &l| {
        let w = (l - m).exp();
        (a + w, b + w * w)
    });
    s1 * s1 / s2
}

/// The visible units' share of d log f_β(v) / dβ, per unit i and state x
/// (as the engine holds it).
enum VisibleTerm {
    /// binary units: (b_B - b_A)_i x
    Binary { gap: Vec<f64> },
    /// Gaussian units, x = v / σ: [(v - b_A)² - (v - b_B)²]_i / (2 σ_i²)
    /// = [(x - b_A / σ)² - (x - b_B / σ)²]_i / 2
    Gaussian { a: Vec<f64>, b: Vec<f64> },
}

impl VisibleTerm {
    fn binary(rbm: &Rbm, vb_a: &[f32]) -> Self {
        VisibleTerm::Binary { gap: rbm.vbias.iter().zip(vb_a).map(|(&b, &a)| b as f64 - a as f64).collect() }
    }

    fn gaussian(g: &GaussianRbm, vb_a: &[f32]) -> Self {
        let over_sigma = |v: &[f32]| v.iter().zip(&g.sigma).map(|(&b, &s)| b as f64 / s as f64).collect();
        VisibleTerm::Gaussian { a: over_sigma(vb_a), b: over_sigma(&g.rbm.vbias) }
    }

    #[inline]
    fn at(&self, i: usize, x: f32) -> f64 {
        match self {
            VisibleTerm::Binary { gap } => x as f64 * gap[i],
            VisibleTerm::Gaussian { a, b } => ((x as f64 - a[i]).powi(2) - (x as f64 - b[i]).powi(2)) / 2.0,
        }
    }
}

/// Stream ids of the annealing chains.
const ANNEAL_STREAMS: u64 = 300;

/// Per-row log-weight accumulators of an annealing run: one vector per
/// 8-unit group of hidden units for their terms, one per group of visible
/// units for theirs, summed in group order (so the split into parts and
/// threads does not matter).
struct Weights {
    hidden: Vec<Mutex<Vec<f64>>>,
    visible: Vec<Mutex<Vec<f64>>>,
}

impl Weights {
    fn new(rows: usize, n_hidden: usize, n_visible: usize) -> Self {
        let v = |n: usize| (0..n.div_ceil(8)).map(|_| Mutex::new(vec![0f64; rows])).collect();
        Weights { hidden: v(n_hidden), visible: v(n_visible) }
    }
    /// Row r's total.
    fn totals(self, rows: usize) -> Vec<f64> {
        let all: Vec<Vec<f64>> = self.hidden.into_iter().chain(self.visible).map(|m| m.into_inner().unwrap()).collect();
        (0..rows).map(|r| all.iter().map(|g| g[r]).sum()).collect()
    }
}

/// Hidden phase of an annealing step for the slab's units: (when
/// `recompute`) a = x W + c for the chains' visible states, then (optionally)
/// the weight term Σ_j softplus(b1 a) - softplus(b0 a) per row and group, then
/// (optionally) h ~ sigm(β_s a).
fn anneal_hidden(
    eng: &Engine,
    slab: &Slab,
    own: &mut Own,
    weight: Option<(f32, f32)>,
    sample_beta: Option<f32>,
    weights: &Weights,
    recompute: bool,
) {
    let (b, m) = (eng.batch, slab.cols.len());
    if recompute {
        eng.propup(slab, own, Rows::Chain, 1.0, 0, false);
    }
    if let Some((b0, b1)) = weight {
        softplus_beta_diff_groups(&own.pre_h, m, m, b, b0, b1, &mut own.group_sums);
        add_group_sums(&own.group_sums, b, &weights.hidden[groups(&slab.cols)], 1.0);
    }
    if let Some(beta) = sample_beta {
        let Own { pre_h, h_mean, hid_streams, noise, .. } = own;
        sigmoid_sample_groups(pre_h, m, m, beta, h_mean, &mut slab.h.write().unwrap(), hid_streams, b, noise);
    }
}

/// `acc[k][r] += scale · sums[r, k]` for every row and group (f64 accumulators).
fn add_group_sums(sums: &[f32], rows: usize, acc: &[Mutex<Vec<f64>>], scale: f64) {
    let g = acc.len();
    for (k, a) in acc.iter().enumerate() {
        let mut a = a.lock().unwrap();
        for r in 0..rows {
            a[r] += scale * sums[r * g + k] as f64;
        }
    }
}

/// Visible phase for the slab's units: (optionally) x ~ p_β(v|h), then
/// (optionally) the weight term (b1 - b0) Σ_i term_i(x_i) per row and group
/// (for binary units (b1 - b0)(b_B - b_A)·x).
#[allow(clippy::too_many_arguments)]
fn anneal_visible(
    eng: &Engine,
    slab: &Slab,
    own: &mut Own,
    sample_beta: Option<f32>,
    weight: Option<(f32, f32)>,
    term: &VisibleTerm,
    vb_a: &[f32],
    weights: &Weights,
) {
    if let Some(beta) = sample_beta {
        eng.visible(slab, own, beta, Some(vb_a));
    }
    if let Some((b0, b1)) = weight {
        let (mv, v0) = (slab.vcols.len(), slab.vcols.start);
        let x = slab.v.read().unwrap();
        for (k, g) in groups(&slab.vcols).enumerate() {
            let (j0, w) = (8 * k, 8.min(mv - 8 * k));
            let mut lw = weights.visible[g].lock().unwrap();
            for r in 0..eng.batch {
                let row = &x[r * mv + j0..r * mv + j0 + w];
                let dot: f64 = row.iter().enumerate().map(|(l, &x)| term.at(v0 + j0 + l, x)).sum();
                lw[r] += (b1 as f64 - b0 as f64) * dot;
            }
        }
    }
}

/// Forward AIS from the base-rate model (`vb_a`) to `rbm` over `betas`
/// (from 0 to 1) with `runs` independent runs, one Gibbs transition per
/// intermediate temperature. Returns log Z with its ±3σ bracket.
pub fn ais(rbm: &Rbm, vb_a: &[f32], runs: usize, betas: &[f64], seed: u64, n_threads: usize) -> LogZ {
    let nv = rbm.n_visible;
    let mut eng = Engine::new(rbm, runs, seed, ANNEAL_STREAMS, DEFAULT_PARTS, n_threads);
    // v_0 ~ the base-rate model: pixel i is on with probability sigm(b_A,i).
    let mut u = vec![0f32; runs * nv];
    crate::rng::Stream::new(seed, ANNEAL_STREAMS - 1).fill_uniform(&mut u);
    let v0: Vec<f32> =
        u.iter().enumerate().map(|(k, &u)| if u < crate::math::sigmoid(vb_a[k % nv]) { 1.0 } else { 0.0 }).collect();
    eng.set_chain_visible(&v0);
    let weights = anneal_forward(&mut eng, &VisibleTerm::binary(rbm, vb_a), vb_a, betas, n_threads);
    LogZ::from_log_weights(base_log_z(vb_a, rbm.n_hidden), weights.totals(runs))
}

/// Forward AIS for a Gaussian-Bernoulli RBM, from the base model of
/// independent Gaussians at `vb_a` (the data's means, say) with the model's
/// σ (W = 0, hidden biases 0), whose log Z is n_hidden log 2 + Σ_i log(sqrt(2π) σ_i).
/// Along the way, p_β(v | h) = Normal(β σ W h + β b + (1 - β) b_A, σ²).
pub fn ais_gaussian(g: &GaussianRbm, vb_a: &[f32], runs: usize, betas: &[f64], seed: u64, n_threads: usize) -> LogZ {
    let nv = g.rbm.n_visible;
    let mut eng = Engine::new(&g.rbm, runs, seed, ANNEAL_STREAMS, DEFAULT_PARTS, n_threads);
    eng.set_sigma(&g.sigma);
    // v_0 ~ the base model: b_A + σ z
    let mut z = vec![0f32; runs * nv];
    crate::gaussian::standard_normals(&mut crate::rng::Stream::new(seed, ANNEAL_STREAMS - 1), &mut z);
    let v0: Vec<f32> = z.iter().enumerate().map(|(k, &z)| vb_a[k % nv] + g.sigma[k % nv] * z).collect();
    eng.set_chain_visible(&v0);
    let weights = anneal_forward(&mut eng, &VisibleTerm::gaussian(g, vb_a), vb_a, betas, n_threads);
    LogZ::from_log_weights(gaussian_base_log_z(g), weights.totals(runs))
}

/// The forward annealing runs from the engine's chains (drawn from the base
/// model) to the model, accumulating each run's log weight.
fn anneal_forward(eng: &mut Engine, term: &VisibleTerm, vb_a: &[f32], betas: &[f64], n_threads: usize) -> Weights {
    let (runs, k) = (eng.batch, betas.len() - 1);
    let weights = Weights::new(runs, eng.n_hidden, eng.n_visible);
    eng.relayout(n_threads);
    let eng = &*eng;
    eng.team(|ctx, slab, own| {
        for t in 1..=k {
            let (b0, b1) = (betas[t - 1] as f32, betas[t] as f32);
            let transition = (t < k).then_some(b1);
            anneal_hidden(eng, slab, own, Some((b0, b1)), transition, &weights, true);
            ctx.sync();
            // the weight of the states sampled at β_t-1, then the transition at β_t
            anneal_visible(eng, slab, own, None, Some((b0, b1)), term, vb_a, &weights);
            anneal_visible(eng, slab, own, transition, None, term, vb_a, &weights);
            ctx.sync();
        }
    });
    weights
}

/// RAISE: for each row of `v` (binary, `[n, n_visible]`), a stochastic lower
/// bound on log p(v) in expectation: start at v under the model (β = 1),
/// anneal backwards to the base-rate model along `betas` (given from 0 to 1),
/// and weigh the path:
///
///   log p̂(v) = log f_1(v) + Σ_{j=K-1..0} [log f_βj(x_j) - log f_βj+1(x_j)] - log Z_A,
///   x_j ~ T_βj+1(· | x_j+1),
///
/// an unbiased estimate of the annealing model's own p(v), so E[log p̂] does
/// not exceed it. Returns log p̂ for each row.
pub fn raise(rbm: &Rbm, vb_a: &[f32], v: &[f32], betas: &[f64], seed: u64, n_threads: usize) -> Vec<f64> {
    let n = v.len() / rbm.n_visible;
    let mut eng = Engine::new(rbm, n, seed, ANNEAL_STREAMS + 100, DEFAULT_PARTS, n_threads);
    eng.set_chain_visible(v);
    // log f_1(v) = b_B·v + Σ_j softplus(a_j), in f64.
    let start = neg_free_energies(rbm, v);
    let weights = anneal_reverse(&mut eng, &VisibleTerm::binary(rbm, vb_a), vb_a, betas, n_threads);
    let log_z_a = base_log_z(vb_a, rbm.n_hidden);
    weights.totals(n).iter().zip(&start).map(|(w, s)| s + w - log_z_a).collect()
}

/// [`raise`] for a Gaussian-Bernoulli RBM, annealing back to the base model
/// of [`ais_gaussian`] (independent Gaussians at `vb_a` with the model's σ).
pub fn raise_gaussian(
    g: &GaussianRbm,
    vb_a: &[f32],
    v: &[f32],
    betas: &[f64],
    seed: u64,
    n_threads: usize,
) -> Vec<f64> {
    let n = v.len() / g.rbm.n_visible;
    let mut eng = Engine::new(&g.rbm, n, seed, ANNEAL_STREAMS + 100, DEFAULT_PARTS, n_threads);
    eng.set_sigma(&g.sigma);
    eng.set_chain_visible(v);
    let start: Vec<f64> = g.free_energy(v).iter().map(|f| -f).collect();
    let weights = anneal_reverse(&mut eng, &VisibleTerm::gaussian(g, vb_a), vb_a, betas, n_threads);
    weights.totals(n).iter().zip(&start).map(|(w, s)| s + w - gaussian_base_log_z(g)).collect()
}

/// log Z of the Gaussian base model: n_hidden log 2 + Σ_i log(sqrt(2π) σ_i).
fn gaussian_base_log_z(g: &GaussianRbm) -> f64 {
    g.rbm.n_hidden as f64 * std::f64::consts::LN_2
        + g.sigma.iter().map(|&s| (2.0 * std::f64::consts::PI).sqrt().ln() + (s as f64).ln()).sum::<f64>()
}

/// The reverse annealing runs from the engine's chains (the data) at β = 1
/// back to the base model, accumulating each path's log weight.
fn anneal_reverse(eng: &mut Engine, term: &VisibleTerm, vb_a: &[f32], betas: &[f64], n_threads: usize) -> Weights {
    let rev: Vec<f64> = betas.iter().rev().cloned().collect();
    let weights = Weights::new(eng.batch, eng.n_hidden, eng.n_visible);
    let k = rev.len() - 1;
    eng.relayout(n_threads);
    let eng = &*eng;
    eng.team(|ctx, slab, own| {
        anneal_hidden(eng, slab, own, None, None, &weights, true);
        for t in 1..=k {
            let (b_prev, b_next) = (rev[t - 1] as f32, rev[t] as f32);
            // transition at β_prev from the current states (their a is in pre_h)
            anneal_hidden(eng, slab, own, None, Some(b_prev), &weights, false);
            ctx.sync();
            anneal_visible(eng, slab, own, Some(b_prev), Some((b_prev, b_next)), term, vb_a, &weights);
            ctx.sync();
            // weight of the new states between β_next and β_prev
            anneal_hidden(eng, slab, own, Some((b_prev, b_next)), None, &weights, true);
        }
    });
    weights
}

/// Mean and standard error of some values.
pub fn mean_se(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

/// Which estimator [`evaluate`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Estimator {
    /// exact when the smaller layer has at most 25 units, else AIS and RAISE side by side
    Auto,
    /// enumerate the smaller layer
    Exact,
    /// annealed importance sampling
    Ais,
    /// reverse annealing from the data (conservative)
    Raise,
}

/// Settings of [`evaluate`]; start from [`EvalOptions::default`].
#[non_exhaustive]
#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub estimator: Estimator,
    pub ais_runs: usize,
    pub ais_steps: usize,
    /// RAISE runs on this many images, a random subset (all when larger)
    pub raise_images: usize,
    pub raise_steps: usize,
    pub seed: u64,
    /// AIS: while the weights' effective sample size is under this fraction
    /// of the runs, run again with twice the temperatures, up to
    /// `ais_max_steps` (a budget in work, so the result does not depend on
    /// the machine's speed); 0 turns this off
    pub ais_target_ess: f64,
    pub ais_max_steps: usize,
}

impl Default for EvalOptions {
    /// Exact when possible, else AIS (100 runs, 14,500 temperatures) and RAISE
    /// (1,000 images, 14,500 temperatures); seed 1234.
    fn default() -> Self {
        EvalOptions {
            estimator: Estimator::Auto,
            ais_runs: 100,
            ais_steps: 14_500,
            raise_images: 1000,
            raise_steps: 14_500,
            seed: 1234,
            ais_target_ess: 0.0,
            ais_max_steps: 0,
        }
    }
}

/// The validation figure during training: the average log-likelihood of
/// `v` (binary rows), exact for small models, else AIS with 16 runs of
/// 14,500 temperatures. Returns it with the estimator's name.
pub fn quick_log_likelihood(rbm: &Rbm, v: &[f32], vb_a: &[f32], seed: u64, n_threads: usize) -> (f64, String) {
    let small = rbm.n_hidden.min(rbm.n_visible) <= EXACT_MAX_UNITS;
    let (opts, name) = quick_options(small, seed);
    (evaluate(rbm, v, vb_a, &opts, n_threads).avg_ll, name)
}

/// [`quick_log_likelihood`] for a Gaussian-Bernoulli model: the average
/// log-density of `v` (rows as the model sees them), exact up to
/// [`GAUSSIAN_EXACT_MAX_HIDDEN`] hidden units, else AIS with 16 runs of
/// 14,500 temperatures from independent Gaussians at `base` (`[n_visible]`).
pub fn quick_log_likelihood_gaussian(
    g: &GaussianRbm,
    v: &[f32],
    base: &[f32],
    seed: u64,
    n_threads: usize,
) -> crate::Result<(f64, String)> {
    let (opts, name) = quick_options(g.rbm.n_hidden <= GAUSSIAN_EXACT_MAX_HIDDEN, seed);
    Ok((evaluate_gaussian(g, v, base, &opts, n_threads)?.avg_ll, name))
}

/// The settings of the quick figures: exact, or AIS with 16 x 14,500 and no RAISE.
fn quick_options(exact: bool, seed: u64) -> (EvalOptions, String) {
    // few runs over the full schedule: on the tutorial's model 16 x 14,500 reads
    // 0.7 nats above 100 x 14,500 on the validation images, 100 x 1,450 2.6 nats
    let (estimator, runs, steps) = if exact { (Estimator::Exact, 0, 0) } else { (Estimator::Ais, 16, 14_500) };
    let opts = EvalOptions {
        estimator,
        ais_runs: runs,
        ais_steps: steps,
        raise_images: 0,
        raise_steps: 0,
        seed,
        ais_target_ess: 0.0,
        ais_max_steps: 0,
    };
    let name = if exact { "exact".to_string() } else { format!("ais-{runs}x{steps}") };
    (opts, name)
}

/// AIS with `opts.ais_steps` temperatures, then, while the effective sample
/// size is under `opts.ais_target_ess` of the runs and twice the
/// temperatures are at most `opts.ais_max_steps`, again with twice the
/// temperatures (the same seed: the longer schedule replaces the shorter).
/// Returns the last estimate and its number of temperatures.
fn ais_until_even(opts: &EvalOptions, run: impl Fn(usize) -> LogZ) -> (LogZ, usize) {
    let mut steps = opts.ais_steps;
    let mut z = run(steps);
    while z.ess < opts.ais_target_ess * opts.ais_runs as f64 && 2 * steps <= opts.ais_max_steps {
        steps *= 2;
        z = run(steps);
    }
    (z, steps)
}

/// RAISE's part of a [`Report`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct RaiseReport {
    pub n_images: usize,
    pub steps: usize,
    /// mean of log p̂ over the subset, and ± 3 standard errors of that mean
    pub avg_ll: f64,
    pub avg_ll_lo: f64,
    pub avg_ll_hi: f64,
    /// the exact or AIS average on the same images, when computed
    pub reference_avg_ll: Option<f64>,
    /// the mean over the same images of (reference log p(v) - RAISE's log p̂(v)),
    /// paired image by image, and its standard error: AIS overestimates
    /// log-likelihoods in expectation and RAISE underestimates them, so a
    /// gap well above 0 says how far apart the sandwich's sides still are
    pub paired_gap: Option<f64>,
    pub paired_gap_se: Option<f64>,
}

/// The outcome of [`evaluate`]: average log-likelihood per image in nats.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// "exact", "ais", "raise"
    pub estimator: String,
    pub logz: Option<f64>,
    pub logz_lo: Option<f64>,
    pub logz_hi: Option<f64>,
    pub avg_ll: f64,
    pub avg_ll_lo: f64,
    pub avg_ll_hi: f64,
    pub n_images: usize,
    pub ais_runs: Option<usize>,
    pub ais_steps: Option<usize>,
    /// AIS: the effective sample size of the runs' weights (see
    /// [`effective_sample_size`]); under 10% of the runs, the estimate rests
    /// on a few runs and its bracket is not to be trusted
    pub ais_ess: Option<f64>,
    /// AIS: a bound that holds with probability at least 95%: the average
    /// log-likelihood is at most avg_ll + ln 20 (Markov's inequality on
    /// Ẑ / Z, whose mean is 1: P(log Ẑ < log Z - t) ≤ e^-t, t = ln 20)
    pub avg_ll_upper_95: Option<f64>,
    pub raise: Option<RaiseReport>,
}

impl Report {
    /// Adds `by` to every log-likelihood figure (not to log Z): a change of
    /// units, such as a standardisation's log-determinant.
    pub fn shift(&mut self, by: f64) {
        self.avg_ll += by;
        self.avg_ll_lo += by;
        self.avg_ll_hi += by;
        self.avg_ll_upper_95 = self.avg_ll_upper_95.map(|x| x + by);
        if let Some(q) = &mut self.raise {
            q.avg_ll += by;
            q.avg_ll_lo += by;
            q.avg_ll_hi += by;
            q.reference_avg_ll = q.reference_avg_ll.map(|x| x + by);
        }
    }
}

/// The average log-likelihood of the binary rows `v` (`[n, n_visible]`):
/// exact, by AIS, or by RAISE, as `opts` says; `vb_a` is the base-rate model's
/// visible biases (from the training images).
pub fn evaluate(rbm: &Rbm, v: &[f32], vb_a: &[f32], opts: &EvalOptions, n_threads: usize) -> Report {
    let n = v.len() / rbm.n_visible;
    let nfe = neg_free_energies(rbm, v);
    let mean_nfe = nfe.iter().sum::<f64>() / n as f64;
    let small = rbm.n_hidden.min(rbm.n_visible) <= EXACT_MAX_UNITS;
    let (estimator, with_raise) = match opts.estimator {
        Estimator::Auto if small => (Estimator::Exact, false),
        Estimator::Auto => (Estimator::Ais, true),
        e => (e, e == Estimator::Raise),
    };
    let mut report = Report {
        estimator: format!("{estimator:?}").to_lowercase(),
        logz: None,
        logz_lo: None,
        logz_hi: None,
        avg_ll: f64::NAN,
        avg_ll_lo: f64::NAN,
        avg_ll_hi: f64::NAN,
        n_images: n,
        ais_runs: None,
        ais_steps: None,
        ais_ess: None,
        avg_ll_upper_95: None,
        raise: None,
    };
    let mut reference_log_z = None;
    match estimator {
        Estimator::Exact => {
            let lz = exact_log_z(rbm, n_threads);
            reference_log_z = Some(lz);
            report.logz = Some(lz);
            report.logz_lo = Some(lz);
            report.logz_hi = Some(lz);
            report.avg_ll = mean_nfe - lz;
            report.avg_ll_lo = report.avg_ll;
            report.avg_ll_hi = report.avg_ll;
        }
        Estimator::Ais => {
            let (z, steps) =
                ais_until_even(opts, |steps| ais(rbm, vb_a, opts.ais_runs, &ais_schedule(steps), opts.seed, n_threads));
            reference_log_z = Some(z.log_z);
            report.logz = Some(z.log_z);
            report.logz_lo = Some(z.lo);
            report.logz_hi = Some(z.hi);
            report.avg_ll = mean_nfe - z.log_z;
            report.avg_ll_lo = mean_nfe - z.hi;
            report.avg_ll_hi = mean_nfe - z.lo;
            report.ais_runs = Some(opts.ais_runs);
            report.ais_steps = Some(steps);
            report.ais_ess = Some(z.ess);
            report.avg_ll_upper_95 = Some(report.avg_ll + 20f64.ln());
        }
        _ => {}
    }
    if with_raise {
        let nv = rbm.n_visible;
        add_raise(&mut report, estimator, &nfe, reference_log_z, v, nv, opts, |sub| {
            raise(rbm, vb_a, sub, &ais_schedule(opts.raise_steps), opts.seed, n_threads)
        });
    }
    report
}

/// RAISE on a random subset of the rows of `v` (`opts.raise_images` of
/// them, chosen with the seed; `run` gives log p̂ for each row it is given),
/// added to `report` beside the reference estimate (the exact or AIS log Z,
/// on the same rows, from their -F(v), `nfe`), or as the report's figure
/// when `estimator` is RAISE.
#[allow(clippy::too_many_arguments)]
fn add_raise(
    report: &mut Report,
    estimator: Estimator,
    nfe: &[f64],
    reference_log_z: Option<f64>,
    v: &[f32],
    nv: usize,
    opts: &EvalOptions,
    run: impl FnOnce(&[f32]) -> Vec<f64>,
) {
    let n = v.len() / nv;
    let mut rows: Vec<usize> = (0..n).collect();
    let mut rng = crate::rng::Stream::new(opts.seed, ANNEAL_STREAMS + 50);
    for i in (1..n).rev() {
        rows.swap(i, rng.below(i as u64 + 1) as usize);
    }
    rows.truncate(opts.raise_images.min(n));
    rows.sort_unstable();
    let sub: Vec<f32> = rows.iter().flat_map(|&r| v[r * nv..(r + 1) * nv].iter().cloned()).collect();
    let per_row = run(&sub);
    let (mean, se) = mean_se(&per_row);
    let reference_avg_ll = reference_log_z.map(|lz| rows.iter().map(|&r| nfe[r]).sum::<f64>() / rows.len() as f64 - lz);
    let gaps: Option<Vec<f64>> =
        reference_log_z.map(|lz| rows.iter().zip(&per_row).map(|(&r, &l)| nfe[r] - lz - l).collect());
    let (paired_gap, paired_gap_se) = match gaps.as_deref().map(mean_se) {
        Some((g, s)) => (Some(g), Some(s)),
        None => (None, None),
    };
    report.raise = Some(RaiseReport {
        n_images: rows.len(),
        steps: opts.raise_steps,
        avg_ll: mean,
        avg_ll_lo: mean - 3.0 * se,
        avg_ll_hi: mean + 3.0 * se,
        reference_avg_ll,
        paired_gap,
        paired_gap_se,
    });
    if estimator == Estimator::Raise {
        report.avg_ll = mean;
        report.avg_ll_lo = mean - 3.0 * se;
        report.avg_ll_hi = mean + 3.0 * se;
        report.n_images = rows.len();
    }
}

/// Largest hidden layer that [`evaluate_gaussian`] enumerates (2^20 states, each
/// a pass over the visible units).
pub const GAUSSIAN_EXACT_MAX_HIDDEN: usize = 20;

/// The average log-density of the rows of `v` (`[n, n_visible]`, in the units
/// the model sees) under a Gaussian-Bernoulli model: exact when the hidden
/// layer is small enough to enumerate (and `opts.estimator` allows), else by
/// AIS from independent Gaussians at `base` with the model's σ, with RAISE on
/// a subset of the rows beside it (or alone, when asked for).
pub fn evaluate_gaussian(
    g: &GaussianRbm,
    v: &[f32],
    base: &[f32],
    opts: &EvalOptions,
    n_threads: usize,
) -> crate::Result<Report> {
    let n = v.len() / g.rbm.n_visible;
    let nfe: Vec<f64> = g.free_energy(v).iter().map(|f| -f).collect();
    let mean_nfe = nfe.iter().sum::<f64>() / n as f64;
    let small = g.rbm.n_hidden <= GAUSSIAN_EXACT_MAX_HIDDEN;
    let (estimator, with_raise) = match opts.estimator {
        Estimator::Auto if small => (Estimator::Exact, false),
        Estimator::Auto => (Estimator::Ais, true),
        Estimator::Exact if !small => {
            return Err(crate::RbmError::param(
                "estimator",
                format!(
                    "exact needs at most {GAUSSIAN_EXACT_MAX_HIDDEN} hidden units, the model has {}",
                    g.rbm.n_hidden
                ),
            ))
        }
        e => (e, e == Estimator::Raise),
    };
    let (logz, lo, hi, runs, steps, ess) = match estimator {
        Estimator::Exact => {
            let lz = g.exact_log_z();
            (Some(lz), lz, lz, None, None, None)
        }
        Estimator::Ais => {
            let (z, steps) = ais_until_even(opts, |steps| {
                ais_gaussian(g, base, opts.ais_runs, &ais_schedule(steps), opts.seed, n_threads)
            });
            (Some(z.log_z), z.lo, z.hi, Some(opts.ais_runs), Some(steps), Some(z.ess))
        }
        _ => (None, f64::NAN, f64::NAN, None, None, None),
    };
    let avg_ll = logz.map_or(f64::NAN, |lz| mean_nfe - lz);
    let mut report = Report {
        estimator: format!("{estimator:?}").to_lowercase(),
        logz,
        logz_lo: logz.map(|_| lo),
        logz_hi: logz.map(|_| hi),
        avg_ll,
        avg_ll_lo: mean_nfe - hi,
        avg_ll_hi: mean_nfe - lo,
        n_images: n,
        ais_runs: runs,
        ais_steps: steps,
        ais_ess: ess,
        avg_ll_upper_95: ess.map(|_| avg_ll + 20f64.ln()),
        raise: None,
    };
    if with_raise {
        add_raise(&mut report, estimator, &nfe, logz, v, g.rbm.n_visible, opts, |sub| {
            raise_gaussian(g, base, sub, &ais_schedule(opts.raise_steps), opts.seed, n_threads)
        });
    }
    Ok(report)
}
