//! Fast fine-tuning of a [`Dbn`]: the same SGD step as [`Dbn::sgd_step`]
//! (its naive reference, kept beside it and tested against it), with every
//! buffer allocated once, and each layer's update added straight into its
//! weights: W_l += -lr h_(l-1)^T δ_l is one product accumulated into W_l,
//! where the reference writes a gradient the size of W_l and then adds it,
//! two more passes over memory per layer and minibatch. With DBN.py's
//! minibatches of 10, those passes cost as much as the products.
//!
//! The order of one step: the forward pass; then, from the classifier down,
//! δ_(l-1) = (δ_l W_l^T) ⊙ h_(l-1) (1 - h_(l-1)) from W_l as it stands, and
//! only then W_l's update.

use crate::dbn::{softmax_rows, Dbn};
use crate::error::{RbmError, Result};
use crate::math::{bias_sigmoid, gemm};

/// The buffers of [`FineTuner::step`] for minibatches of `batch` rows.
pub struct FineTuner {
    batch: usize,
    /// `acts[l]` `[batch, n_l]`: acts[0] = x, then h_1 .. h_L
    acts: Vec<Vec<f32>>,
    /// `[batch, max n_l]`: pre-sigmoid activations of the layer in hand
    pre: Vec<f32>,
    /// `[batch, n_classes]`: softmax outputs
    probs: Vec<f32>,
    /// `[batch, max n_l]`: δ of the layer in hand, and of the one below
    delta: Vec<f32>,
    back: Vec<f32>,
}

impl FineTuner {
    /// Buffers for `net` and minibatches of `batch` rows.
    pub fn new(net: &Dbn, batch: usize) -> Self {
        let mut widths = vec![net.layers[0].n_visible];
        widths.extend(net.layers.iter().map(|r| r.n_hidden));
        let widest = widths.iter().copied().max().unwrap_or(0).max(net.n_classes());
        FineTuner {
            batch,
            acts: widths.iter().map(|&n| vec![0f32; batch * n]).collect(),
            pre: vec![0f32; batch * widest],
            probs: vec![0f32; batch * net.n_classes()],
            delta: vec![0f32; batch * widest],
            back: vec![0f32; batch * widest],
        }
    }

    /// One SGD step on the minibatch (`x` `[batch, n_in]`, labels `y`
    /// `[batch]`) at rate `lr`; returns its mean cross-entropy before the
    /// step. The same update as [`Dbn::sgd_step`], up to rounding.
    pub fn step(&mut self, net: &mut Dbn, x: &[f32], y: &[usize], lr: f32) -> Result<f64> {
        let (b, c) = (self.batch, net.n_classes());
        if y.len() != b || x.len() != b * net.layers[0].n_visible {
            return Err(RbmError::Shape(format!(
                "a minibatch of {} labels and {} values; the fine-tuner takes {b} rows of {}",
                y.len(),
                x.len(),
                net.layers[0].n_visible
            )));
        }
        if let Some(&bad) = y.iter().find(|&&k| k >= c) {
            return Err(RbmError::param("labels", format!("label {bad} of {c} classes")));
        }
        // forward: h_l = sigm(h_(l-1) W_l + hbias_l), p = softmax(h_L W_c + b_c)
        self.acts[0].copy_from_slice(x);
        for (l, rbm) in net.layers.iter().enumerate() {
            let (below, above) = self.acts.split_at_mut(l + 1);
            let (n_in, n_out) = (rbm.n_visible, rbm.n_hidden);
            let pre = &mut self.pre[..b * n_out];
            gemm(pre, b, n_out, n_in, &below[l], false, &rbm.w, false, 1.0, false);
            bias_sigmoid(pre, n_out, &rbm.hbias, &mut above[0]);
        }
        let top = self.acts.last().expect("a layer");
        let n_top = top.len() / b;
        gemm(&mut self.probs, b, c, n_top, top, false, &net.classifier_w, false, 1.0, false);
        softmax_rows(&mut self.probs, &net.classifier_b);
        // δ_out = (p - onehot(y)) / b, and the loss -(1/b) Σ_r log p[r, y_r]
        let mut loss = 0f64;
        let delta = &mut self.delta[..b * c];
        for (r, &k) in y.iter().enumerate() {
            loss -= (self.probs[r * c + k].max(f32::MIN_POSITIVE) as f64).ln();
            for j in 0..c {
                delta[r * c + j] = (self.probs[r * c + j] - if j == k { 1.0 } else { 0.0 }) / b as f32;
            }
        }
        // backward, top down: the classifier, then each layer
        let layers = net.layers.len();
        for l in (0..=layers).rev() {
            let (w, bias, n_out) = if l == layers {
                (&mut net.classifier_w, &mut net.classifier_b, c)
            } else {
                let r = &mut net.layers[l];
                (&mut r.w, &mut r.hbias, r.n_hidden)
            };
            let below = &self.acts[l];
            let n_in = below.len() / b;
            let delta = &self.delta[..b * n_out];
            if l > 0 {
                // back = δ_l W_l^T, from W_l before its update
                gemm(&mut self.back[..b * n_in], b, n_in, n_out, delta, false, w, true, 1.0, false);
            }
            // W_l += -lr h_(l-1)^T δ_l
            gemm(w, n_in, n_out, b, below, true, delta, false, -lr, true);
            // hbias -= lr Σ_r δ[r, :]
            for row in delta.chunks_exact(n_out) {
                for (p, &d) in bias.iter_mut().zip(row) {
                    *p -= lr * d;
                }
            }
            if l > 0 {
                // δ_(l-1) = (δ_l W_l^T) ⊙ h_(l-1) (1 - h_(l-1))
                for (d, &a) in self.back[..b * n_in].iter_mut().zip(below) {
                    *d *= a * (1.0 - a);
                }
                std::mem::swap(&mut self.delta, &mut self.back);
            }
        }
        Ok(loss / b as f64)
    }
}
