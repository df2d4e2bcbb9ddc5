//! The binary RBM (tutorial Eqs. 6-9) and its batched operations.
//!
//! Orientation, stated once for the whole crate: `W` is `[n_visible, n_hidden]`,
//! row-major, so row i holds the weights of visible unit i and column j those
//! of hidden unit j. Minibatches are `[batch, n_visible]` and `[batch, n_hidden]`.
//! Hence propup is `v W + hbias` and propdown is `h W^T + vbias`.
//!
//! These functions run on one thread; the trainer (`train.rs`) and the chain
//! engine (`engine.rs`) run the same mathematics split across threads.

use crate::error::{RbmError, Result};
use crate::math::{bias_sigmoid, bias_sigmoid_sample, gemm, sum_softplus_biased};
use crate::rng::Stream;

/// A binary-binary restricted Boltzmann machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Rbm {
    pub n_visible: usize,
    pub n_hidden: usize,
    /// `[n_visible, n_hidden]`
    pub w: Vec<f32>,
    /// `[n_hidden]`, c in the tutorial
    pub hbias: Vec<f32>,
    /// `[n_visible]`, b in the tutorial
    pub vbias: Vec<f32>,
}

/// One layer's conditional: pre-sigmoid activation, mean, and (when drawn) sample.
#[derive(Clone, Debug)]
pub struct Layer {
    /// `[batch, width]`
    pub pre_sigmoid: Vec<f32>,
    /// `[batch, width]`, probabilities
    pub mean: Vec<f32>,
    /// `[batch, width]`, 0/1 states (empty when not drawn)
    pub sample: Vec<f32>,
}

/// The closed-form gradient of a free-energy difference, shaped like the parameters.
#[derive(Clone, Debug)]
pub struct Grads {
    /// `[n_visible, n_hidden]`
    pub w: Vec<f32>,
    /// `[n_hidden]`
    pub hbias: Vec<f32>,
    /// `[n_visible]`
    pub vbias: Vec<f32>,
}

/// The stream id of the weights' initialisation (of the run's seed).
pub const INIT_STREAM: u64 = 0;

impl Rbm {
    /// A new RBM initialised as the tutorial, from the stream
    /// (seed, [`INIT_STREAM`]); see [`Rbm::new`].
    pub fn init(n_visible: usize, n_hidden: usize, seed: u64) -> Result<Self> {
        Self::new(n_visible, n_hidden, &mut Stream::new(seed, INIT_STREAM))
    }

    /// A new RBM initialised as the tutorial: W uniform in
    /// ±4·sqrt(6/(n_visible+n_hidden)), zero biases, from the seeded stream.
    pub fn new(n_visible: usize, n_hidden: usize, rng: &mut Stream) -> Result<Self> {
        if n_visible == 0 || n_hidden == 0 {
            return Err(RbmError::param("shape", "n_visible and n_hidden must be positive"));
        }
        let bound = 4.0 * (6.0 / (n_visible + n_hidden) as f64).sqrt();
        let mut u = vec![0f32; n_visible * n_hidden];
        rng.fill_uniform(&mut u);
        let w = u.iter().map(|&x| ((2.0 * x as f64 - 1.0) * bound) as f32).collect();
        Ok(Rbm { n_visible, n_hidden, w, hbias: vec![0.0; n_hidden], vbias: vec![0.0; n_visible] })
    }

    /// An RBM over existing parameters (a DBN layer shares them this way).
    /// `w` is `[n_visible, n_hidden]`; all values must be finite.
    pub fn from_params(
        n_visible: usize,
        n_hidden: usize,
        w: Vec<f32>,
        hbias: Vec<f32>,
        vbias: Vec<f32>,
    ) -> Result<Self> {
        if n_visible == 0 || n_hidden == 0 {
            return Err(RbmError::Shape("n_visible and n_hidden must be positive".into()));
        }
        if w.len() != n_visible * n_hidden {
            return Err(RbmError::Shape(format!("W has {} values, expected {n_visible} x {n_hidden}", w.len())));
        }
        if hbias.len() != n_hidden || vbias.len() != n_visible {
            return Err(RbmError::Shape(format!(
                "hbias has {} values and vbias {}, expected {n_hidden} and {n_visible}",
                hbias.len(),
                vbias.len()
            )));
        }
        for (name, v) in [("W", &w), ("hbias", &hbias), ("vbias", &vbias)] {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(RbmError::Shape(format!("{name}[{i}] is not finite ({})", v[i])));
            }
        }
        Ok(Rbm { n_visible, n_hidden, w, hbias, vbias })
    }

    fn batch_of(&self, len: usize, width: usize) -> usize {
        assert_eq!(len % width, 0, "buffer of {len} is not a whole number of rows of {width}");
        len / width
    }

    /// v W without the bias: `v` `[n, n_visible]` → `[n, n_hidden]`.
    fn times_w(&self, v: &[f32], n: usize) -> Vec<f32> {
        let mut out = vec![0f32; n * self.n_hidden];
        gemm(&mut out, n, self.n_hidden, self.n_visible, v, false, &self.w, false, 1.0, false);
        out
    }

    /// h W^T without the bias: `h` `[n, n_hidden]` → `[n, n_visible]`.
    fn times_w_t(&self, h: &[f32], n: usize) -> Vec<f32> {
        let mut out = vec![0f32; n * self.n_visible];
        gemm(&mut out, n, self.n_visible, self.n_hidden, h, false, &self.w, true, 1.0, false);
        out
    }

    /// Eq. 7: pre_sigmoid_h = v W + hbias and h_mean = sigm(pre_sigmoid_h).
    /// `v` is `[batch, n_visible]`; the result is `[batch, n_hidden]` (no sample).
    pub fn propup(&self, v: &[f32]) -> Layer {
        let n = self.batch_of(v.len(), self.n_visible);
        let mut pre = self.times_w(v, n);
        let mut mean = vec![0f32; pre.len()];
        bias_sigmoid(&mut pre, self.n_hidden, &self.hbias, &mut mean);
        Layer { pre_sigmoid: pre, mean, sample: Vec::new() }
    }

    /// Eq. 8: pre_sigmoid_v = h W^T + vbias and v_mean = sigm(pre_sigmoid_v).
    /// `h` is `[batch, n_hidden]`; the result is `[batch, n_visible]` (no sample).
    pub fn propdown(&self, h: &[f32]) -> Layer {
        let n = self.batch_of(h.len(), self.n_hidden);
        let mut pre = self.times_w_t(h, n);
        let mut mean = vec![0f32; pre.len()];
        bias_sigmoid(&mut pre, self.n_visible, &self.vbias, &mut mean);
        Layer { pre_sigmoid: pre, mean, sample: Vec::new() }
    }

    fn sample_layer(pre: Vec<f32>, bias: &[f32], rng: &mut Stream) -> Layer {
        // `pre` holds the product without the bias; the fused pass adds it.
        let mut pre = pre;
        let mut u = vec![0f32; pre.len()];
        rng.fill_uniform(&mut u);
        let mut mean = vec![0f32; pre.len()];
        let mut sample = vec![0f32; pre.len()];
        bias_sigmoid_sample(&mut pre, bias.len(), bias, &mut mean, &mut sample, &u);
        Layer { pre_sigmoid: pre, mean, sample }
    }

    /// h ~ p(h|v) (Eq. 7): `v` `[batch, n_visible]` → `[batch, n_hidden]`.
    pub fn sample_h_given_v(&self, v: &[f32], rng: &mut Stream) -> Layer {
        let n = self.batch_of(v.len(), self.n_visible);
        let pre = self.times_w(v, n);
        Self::sample_layer(pre, &self.hbias, rng)
    }

    /// v ~ p(v|h) (Eq. 8): `h` `[batch, n_hidden]` → `[batch, n_visible]`.
    pub fn sample_v_given_h(&self, h: &[f32], rng: &mut Stream) -> Layer {
        let n = self.batch_of(h.len(), self.n_hidden);
        let pre = self.times_w_t(h, n);
        Self::sample_layer(pre, &self.vbias, rng)
    }

    /// One Gibbs step from the hidden states: h0 → v1 → h1. Returns (v1, h1).
    pub fn gibbs_hvh(&self, h0_sample: &[f32], rng: &mut Stream) -> (Layer, Layer) {
        let v1 = self.sample_v_given_h(h0_sample, rng);
        let h1 = self.sample_h_given_v(&v1.sample, rng);
        (v1, h1)
    }

    /// One Gibbs step from the visible states: v0 → h1 → v1. Returns (h1, v1).
    pub fn gibbs_vhv(&self, v0_sample: &[f32], rng: &mut Stream) -> (Layer, Layer) {
        let h1 = self.sample_h_given_v(v0_sample, rng);
        let v1 = self.sample_v_given_h(&h1.sample, rng);
        (h1, v1)
    }

    /// Eq. 9: F(v) = -vbias·v - Σ_j softplus(hbias_j + v W_j), one value per row.
    /// `v` is `[batch, n_visible]`; returns `[batch]`. Softplus keeps it finite.
    pub fn free_energy(&self, v: &[f32]) -> Vec<f32> {
        let n = self.batch_of(v.len(), self.n_visible);
        let pre = self.times_w(v, n);
        (0..n)
            .map(|b| {
                let row = &v[b * self.n_visible..(b + 1) * self.n_visible];
                let vb: f64 = row.iter().zip(&self.vbias).map(|(&x, &c)| x as f64 * c as f64).sum();
                let hid = sum_softplus_biased(&pre[b * self.n_hidden..(b + 1) * self.n_hidden], &self.hbias);
                (-vb - hid) as f32
            })
            .collect()
    }

    /// Eq. 6: E(v, h) = -vbias·v - hbias·h - h^T W^T v, for one pair of states
    /// (`v` `[n_visible]`, `h` `[n_hidden]`), in f64. Used by exact enumeration.
    pub fn energy(&self, v: &[f32], h: &[f32]) -> f64 {
        let mut e = 0f64;
        for i in 0..self.n_visible {
            e -= self.vbias[i] as f64 * v[i] as f64;
        }
        for j in 0..self.n_hidden {
            e -= self.hbias[j] as f64 * h[j] as f64;
        }
        for i in 0..self.n_visible {
            if v[i] != 0.0 {
                let row = &self.w[i * self.n_hidden..(i + 1) * self.n_hidden];
                for j in 0..self.n_hidden {
                    e -= v[i] as f64 * row[j] as f64 * h[j] as f64;
                }
            }
        }
        e
    }

    /// The gradient of mean F(v_data) - mean F(v_model) with v_model held
    /// constant (Eq. 4, closed form from Eq. 9; the tutorial gets it from T.grad):
    ///
    ///   dW     = -(v_data^T sigm(v_data W + c) - v_model^T sigm(v_model W + c)) / batch
    ///   dhbias = -(Σ sigm(v_data W + c) - Σ sigm(v_model W + c)) / batch
    ///   dvbias = -(Σ v_data - Σ v_model) / batch
    ///
    /// `v_data` and `v_model` are `[batch, n_visible]` with the same batch.
    /// SGD steps against it: θ ← θ - lr · grad.
    pub fn free_energy_gradient(&self, v_data: &[f32], v_model: &[f32]) -> Grads {
        let n = self.batch_of(v_data.len(), self.n_visible);
        assert_eq!(v_model.len(), v_data.len(), "v_data and v_model differ in batch");
        let h_pos = self.propup(v_data).mean;
        let h_neg = self.propup(v_model).mean;
        let inv = 1.0 / n as f32;
        let mut w = vec![0f32; self.w.len()];
        gemm(&mut w, self.n_visible, self.n_hidden, n, v_data, true, &h_pos, false, -inv, false);
        gemm(&mut w, self.n_visible, self.n_hidden, n, v_model, true, &h_neg, false, inv, true);
        let col_sum = |m: &[f32], width: usize| -> Vec<f64> {
            let mut s = vec![0f64; width];
            for row in m.chunks_exact(width) {
                for (a, &x) in s.iter_mut().zip(row) {
                    *a += x as f64;
                }
            }
            s
        };
        let (hp, hn) = (col_sum(&h_pos, self.n_hidden), col_sum(&h_neg, self.n_hidden));
        let (vp, vn) = (col_sum(v_data, self.n_visible), col_sum(v_model, self.n_visible));
        Grads {
            w,
            hbias: hp.iter().zip(&hn).map(|(p, q)| (-(p - q) / n as f64) as f32).collect(),
            vbias: vp.iter().zip(&vn).map(|(p, q)| (-(p - q) / n as f64) as f32).collect(),
        }
    }
}
