//! Training recipes beyond the tutorial's plain SGD at a constant rate, as
//! pure functions of the configuration and the position in the run: the
//! learning-rate schedule, the momentum ramp, and the practical guide's
//! initialisation. The update they enter (with weight decay and the sparsity
//! target) is in `train.rs`:
//!
//!   g      = (1/batch) Σ_rows [v_pos h_pos^T - v_neg h_neg^T] - λ W          (λ: weight decay)
//!   Δ_t    = μ_t Δ_{t-1} + lr_t g                                           (μ_t: momentum)
//!   W     += Δ_t
//!   Δc_t   = μ_t Δc_{t-1} + lr_t [(1/batch) Σ_rows (h_pos - h_neg) - s (q - p)]
//!   Δb_t   = μ_t Δb_{t-1} + lr_t (1/batch) Σ_rows (v_pos - v_neg)
//!
//! with q_j the minibatch's mean of p(h_j = 1 | v_pos), p the sparsity target
//! and s its cost (the practical guide's sparsity penalty, on the hidden
//! biases). With μ = 0, λ = 0, s = 0 and a constant rate this is exactly the
//! tutorial's update.

use crate::model::Rbm;
use crate::rng::Stream;
use serde::{Deserialize, Serialize};

/// How the learning rate moves from `lr` (first update) to `final_lr` (last).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// lr throughout (the tutorial)
    #[default]
    Constant,
    /// lr_t = lr + (final_lr - lr) t / (T - 1)
    Linear,
    /// lr_t = lr (final_lr / lr)^(t / (T - 1))
    Exponential,
}

/// The learning rate of update `t` (counted from 0 over the whole run) of
/// `total`, as `schedule` says.
pub fn learning_rate(schedule: LrSchedule, lr: f32, final_lr: f32, t: usize, total: usize) -> f32 {
    let frac = if total > 1 { t.min(total - 1) as f64 / (total - 1) as f64 } else { 0.0 };
    let (lr, fin) = (lr as f64, final_lr as f64);
    (match schedule {
        LrSchedule::Constant => lr,
        LrSchedule::Linear => lr + (fin - lr) * frac,
        LrSchedule::Exponential => lr * (fin / lr).powf(frac),
    }) as f32
}

/// The momentum of epoch `epoch`: `momentum` for the first `momentum_epochs`
/// epochs, then `final_momentum` (the practical guide: 0.5, then 0.9 after 5).
pub fn momentum_at(momentum: f32, final_momentum: f32, momentum_epochs: usize, epoch: usize) -> f32 {
    if epoch < momentum_epochs {
        momentum
    } else {
        final_momentum
    }
}

/// How the weights and biases start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// the tutorial's: W uniform in ±4 sqrt(6 / (n_visible + n_hidden)), biases 0
    #[default]
    Tutorial,
    /// the practical guide's: W ~ Normal(0, 0.01²), hidden biases 0, visible
    /// biases log(p_i / (1 - p_i)) with p_i the training data's mean of unit i
    /// (binary units), or the data's mean (Gaussian units)
    Guide,
}

/// The practical guide's initial visible biases for binary units from the
/// training rows' column sums `sums` over `n` rows: log(p / (1 - p)), p the
/// column's mean clamped to [1e-3, 1 - 1e-3] so that a column that is always
/// 0 or 1 gets a finite bias (±6.9).
pub fn guide_vbias(sums: &[f64], n: usize) -> Vec<f32> {
    sums.iter()
        .map(|s| {
            let p = (s / n.max(1) as f64).clamp(1e-3, 1.0 - 1e-3);
            (p / (1.0 - p)).ln() as f32
        })
        .collect()
}

/// An RBM initialised as the practical guide says: W ~ Normal(0, 0.01²)
/// drawn from the stream (seed, [`crate::model::INIT_STREAM`]), hidden biases
/// 0, visible biases `vbias` (`[n_visible]`; see [`guide_vbias`]).
pub fn guide_init(n_hidden: usize, vbias: Vec<f32>, seed: u64) -> crate::Result<Rbm> {
    let n_visible = vbias.len();
    let mut w = vec![0f32; n_visible * n_hidden];
    crate::gaussian::standard_normals(&mut Stream::new(seed, crate::model::INIT_STREAM), &mut w);
    w.iter_mut().for_each(|x| *x *= 0.01);
    Rbm::from_params(n_visible, n_hidden, w, vec![0.0; n_hidden], vbias)
}

/// Centring (Melchior, Fischer & Wiskott 2016), one slab's hidden side. In
/// place, with μ `[n_visible]` and λ `[m]` the offsets, b minibatch rows and
/// c chains, s = b / c:
///
///   x_c = x - μ                            x = [v_pos; v_neg]     `[b + c, n_visible]`
///   y_c = [h_pos - λ; -s (h_neg - λ)]      y = [h_pos; -s h_neg]  `[b + c, m]`
///
/// so that x_c^T y_c is the centred RBM's weight gradient (times b); the
/// μ λ^T terms cancel between the positive rows and the weighted negative
/// ones. The centred gradient moves the uncentred biases by
/// Δc = Σ_rows y - (x_c^T y_c)^T μ and Δb = Σ_rows x_pos - s Σ x_neg - (x_c^T y_c) λ:
/// this fills `corr` `[m]` with the first correction, Σ_r (x_c[r] · μ) y_c[r, j],
/// using `d` `[b + c]` for the dot products.
pub fn centre_hidden(
    x: &mut [f32],
    y: &mut [f32],
    mu: &[f32],
    lambda: &[f32],
    (b, s): (usize, f32),
    d: &mut [f32],
    corr: &mut [f32],
) {
    let (nv, m, rows) = (mu.len(), lambda.len(), d.len());
    for (r, (xr, dr)) in x.chunks_exact_mut(nv).zip(d.iter_mut()).enumerate().take(rows) {
        let mut dot = 0f32;
        for (xi, &mi) in xr.iter_mut().zip(mu) {
            *xi -= mi;
            dot += *xi * mi;
        }
        *dr = dot;
        let yr = &mut y[r * m..(r + 1) * m];
        let shift = if r < b { -1.0 } else { s };
        for (yj, &lj) in yr.iter_mut().zip(lambda) {
            *yj += shift * lj;
        }
    }
    corr.iter_mut().for_each(|c| *c = 0.0);
    for r in 0..rows {
        for (c, &yj) in corr.iter_mut().zip(&y[r * m..(r + 1) * m]) {
            *c += d[r] * yj;
        }
    }
}

/// Per row of y_c `[b + c, m]` (see [`centre_hidden`]), the partial dot
/// product with λ `[m]` over the 8 units of group `cols` (relative to the
/// slab): t[r] = Σ_{j in cols} y_c[r, j] λ_j, summed in unit order.
pub fn offset_dot_group(y: &[f32], lambda: &[f32], cols: std::ops::Range<usize>, t: &mut [f32]) {
    let m = lambda.len();
    for (r, tr) in t.iter_mut().enumerate() {
        *tr = cols.clone().map(|j| y[r * m + j] * lambda[j]).sum();
    }
}

/// The moving averages of the offsets after an update:
/// o ← (1 - ν) o + ν mean, for μ with the data's mean and λ with h_pos's.
pub fn move_offsets(offset: &mut [f32], mean: &[f32], rate: f32) {
    for (o, &m) in offset.iter_mut().zip(mean) {
        *o = (1.0 - rate) * *o + rate * m;
    }
}
