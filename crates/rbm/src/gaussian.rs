//! The Gaussian-Bernoulli RBM, for real-valued data: real visible units with
//! standard deviations sigma, binary hidden units. Its energy, pinned so that
//! other tools read a model the same way (b = vbias, c = hbias):
//!
//!   E(v, h) = Σ_i (v_i - b_i)² / (2 σ_i²) - Σ_ij (v_i / σ_i) W_ij h_j - Σ_j c_j h_j
//!   p(h_j = 1 | v) = sigm(c_j + Σ_i (v_i / σ_i) W_ij)
//!   p(v_i | h)     = Normal(b_i + σ_i Σ_j W_ij h_j, σ_i²)
//!   F(v)           = Σ_i (v_i - b_i)² / (2 σ_i²) - Σ_j softplus(c_j + Σ_i (v_i / σ_i) W_ij)
//!
//! These functions run on one thread: the reference that the parallel
//! trainer will be tested against, as `model.rs` is for binary units.

use crate::error::{RbmError, Result};
use crate::math::{gemm, log_sum_exp, sigmoid_ref, softplus_ref};
use crate::model::Rbm;
use crate::rng::Stream;

/// A Gaussian-Bernoulli RBM: `rbm` holds W `[n_visible, n_hidden]`, hbias (c)
/// and vbias (b); `sigma` `[n_visible]` the visible units' standard deviations.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianRbm {
    pub rbm: Rbm,
    pub sigma: Vec<f32>,
}

/// The gradient of mean F(v_data) - mean F(v_model), shaped like the
/// parameters, with log σ² in place of σ (Cho, Ilin & Raiko 2011 learn it so).
#[derive(Clone, Debug)]
pub struct GaussianGrads {
    pub w: Vec<f64>,
    pub hbias: Vec<f64>,
    pub vbias: Vec<f64>,
    pub log_var: Vec<f64>,
}

impl GaussianRbm {
    /// A model over existing parameters; every sigma must be positive and finite.
    pub fn new(rbm: Rbm, sigma: Vec<f32>) -> Result<Self> {
        if sigma.len() != rbm.n_visible {
            return Err(RbmError::Shape(format!("sigma has {} values, expected {}", sigma.len(), rbm.n_visible)));
        }
        if let Some(i) = sigma.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(RbmError::param("sigma", format!("sigma[{i}] is {}, not a positive finite number", sigma[i])));
        }
        Ok(GaussianRbm { rbm, sigma })
    }

    /// The hidden pre-activations c_j + Σ_i (v_i / σ_i) W_ij for the rows of
    /// `v` (`[n, n_visible]`), `[n, n_hidden]`, in f64.
    pub fn pre_hidden(&self, v: &[f32]) -> Vec<f64> {
        let (nv, nh) = (self.rbm.n_visible, self.rbm.n_hidden);
        let scaled: Vec<f32> = v.iter().enumerate().map(|(k, &x)| x / self.sigma[k % nv]).collect();
        let n = v.len() / nv;
        let mut pre = vec![0f32; n * nh];
        gemm(&mut pre, n, nh, nv, &scaled, false, &self.rbm.w, false, 1.0, false);
        pre.iter().enumerate().map(|(k, &a)| a as f64 + self.rbm.hbias[k % nh] as f64).collect()
    }

    /// p(h = 1 | v) for the rows of `v`, `[n, n_hidden]`.
    pub fn prob_h_given_v(&self, v: &[f32]) -> Vec<f64> {
        self.pre_hidden(v).into_iter().map(sigmoid_ref).collect()
    }

    /// The mean of p(v | h), b_i + σ_i Σ_j W_ij h_j, for the rows of `h`
    /// (`[n, n_hidden]`), `[n, n_visible]`.
    pub fn mean_v_given_h(&self, h: &[f32]) -> Vec<f64> {
        let (nv, nh) = (self.rbm.n_visible, self.rbm.n_hidden);
        let n = h.len() / nh;
        let mut a = vec![0f32; n * nv];
        gemm(&mut a, n, nv, nh, h, false, &self.rbm.w, true, 1.0, false);
        a.iter()
            .enumerate()
            .map(|(k, &x)| self.rbm.vbias[k % nv] as f64 + self.sigma[k % nv] as f64 * x as f64)
            .collect()
    }

    /// v ~ p(v | h) for the rows of `h`: the mean plus σ_i times a standard
    /// normal draw (Box-Muller on the stream's uniforms).
    pub fn sample_v_given_h(&self, h: &[f32], rng: &mut Stream) -> Vec<f32> {
        let nv = self.rbm.n_visible;
        let mean = self.mean_v_given_h(h);
        let mut z = vec![0f32; mean.len()];
        standard_normals(rng, &mut z);
        mean.iter().zip(&z).enumerate().map(|(k, (&m, &z))| (m + self.sigma[k % nv] as f64 * z as f64) as f32).collect()
    }

    /// Eq. above: F(v) for each row of `v`, in f64.
    pub fn free_energy(&self, v: &[f32]) -> Vec<f64> {
        let nv = self.rbm.n_visible;
        let pre = self.pre_hidden(v);
        let nh = self.rbm.n_hidden;
        v.chunks_exact(nv)
            .zip(pre.chunks_exact(nh))
            .map(|(row, a)| {
                let quad: f64 = (0..nv)
                    .map(|i| {
                        let d = row[i] as f64 - self.rbm.vbias[i] as f64;
                        d * d / (2.0 * (self.sigma[i] as f64).powi(2))
                    })
                    .sum();
                quad - a.iter().map(|&x| softplus_ref(x)).sum::<f64>()
            })
            .collect()
    }

    /// E(v, h) for one pair of states, in f64.
    pub fn energy(&self, v: &[f32], h: &[f32]) -> f64 {
        let (nv, nh) = (self.rbm.n_visible, self.rbm.n_hidden);
        let mut e = 0f64;
        for i in 0..nv {
            let (x, b, s) = (v[i] as f64, self.rbm.vbias[i] as f64, self.sigma[i] as f64);
            e += (x - b).powi(2) / (2.0 * s * s);
            for j in 0..nh {
                e -= x / s * self.rbm.w[i * nh + j] as f64 * h[j] as f64;
            }
        }
        for j in 0..nh {
            e -= self.rbm.hbias[j] as f64 * h[j] as f64;
        }
        e
    }

    /// log Z exactly, by enumerating the 2^n_hidden hidden states and
    /// integrating v in closed form: with a_i = Σ_j W_ij h_j, completing the
    /// square gives ∫ exp(-E) dv = exp(c·h + Σ_i [b_i a_i / σ_i + a_i² / 2]) Π_i sqrt(2π) σ_i, so
    ///
    ///   log Z = LSE_h [ c·h + Σ_i (b_i a_i / σ_i + a_i² / 2) ] + Σ_i log(sqrt(2π) σ_i).
    pub fn exact_log_z(&self) -> f64 {
        let (nv, nh) = (self.rbm.n_visible, self.rbm.n_hidden);
        assert!(nh <= 30, "2^{nh} hidden states are too many to enumerate");
        let terms: Vec<f64> = (0..1u64 << nh)
            .map(|code| {
                let h = |j: usize| ((code >> j) & 1) as f64;
                let mut t: f64 = (0..nh).map(|j| self.rbm.hbias[j] as f64 * h(j)).sum();
                for i in 0..nv {
                    let a: f64 = (0..nh).map(|j| self.rbm.w[i * nh + j] as f64 * h(j)).sum();
                    t += self.rbm.vbias[i] as f64 * a / self.sigma[i] as f64 + a * a / 2.0;
                }
                t
            })
            .collect();
        let norm: f64 = self.sigma.iter().map(|&s| (2.0 * std::f64::consts::PI).sqrt().ln() + (s as f64).ln()).sum();
        log_sum_exp(&terms) + norm
    }

    /// The gradient of mean F(v_data) - mean F(v_model) (both `[n, n_visible]`),
    /// from F's closed form, with q = p(h = 1 | v):
    ///
    ///   dF/dW_ij     = -(v_i / σ_i) q_j
    ///   dF/dc_j      = -q_j
    ///   dF/db_i      = -(v_i - b_i) / σ_i²
    ///   dF/dlog σ_i² = -(v_i - b_i)² / (2 σ_i²) + v_i Σ_j W_ij q_j / (2 σ_i)
    pub fn free_energy_gradient(&self, v_data: &[f32], v_model: &[f32]) -> GaussianGrads {
        let (nv, nh) = (self.rbm.n_visible, self.rbm.n_hidden);
        let mut g =
            GaussianGrads { w: vec![0.0; nv * nh], hbias: vec![0.0; nh], vbias: vec![0.0; nv], log_var: vec![0.0; nv] };
        for (v, sign) in [(v_data, 1.0), (v_model, -1.0)] {
            let n = v.len() / nv;
            let q = self.prob_h_given_v(v);
            let scale = sign / n as f64;
            for (row, q) in v.chunks_exact(nv).zip(q.chunks_exact(nh)) {
                for i in 0..nv {
                    let (x, b, s) = (row[i] as f64, self.rbm.vbias[i] as f64, self.sigma[i] as f64);
                    let mut wq = 0f64;
                    for j in 0..nh {
                        g.w[i * nh + j] -= scale * x / s * q[j];
                        wq += self.rbm.w[i * nh + j] as f64 * q[j];
                    }
                    g.vbias[i] -= scale * (x - b) / (s * s);
                    g.log_var[i] += scale * (-(x - b).powi(2) / (2.0 * s * s) + x * wq / (2.0 * s));
                }
                for j in 0..nh {
                    g.hbias[j] -= scale * q[j];
                }
            }
        }
        g
    }
}

/// Fills `out` with standard normal draws: Box-Muller on pairs of the
/// stream's uniforms, z = sqrt(-2 ln(1 - u1)) cos(2π u2) and its sin partner
/// (1 - u1 lies in (0, 1], so the logarithm is finite).
pub fn standard_normals(rng: &mut Stream, out: &mut [f32]) {
    let mut u = vec![0f32; out.len().div_ceil(2) * 2];
    rng.fill_uniform(&mut u);
    for (pair, u) in out.chunks_mut(2).zip(u.chunks_exact(2)) {
        let r = (-2.0 * (1.0 - u[0] as f64).ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * u[1] as f64;
        pair[0] = (r * t.cos()) as f32;
        if pair.len() > 1 {
            pair[1] = (r * t.sin()) as f32;
        }
    }
}
