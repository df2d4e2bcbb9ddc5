//! Deep belief networks, as the tutorial series' DBN.py builds them: a stack
//! of RBMs pretrained greedily (the first on the data, each later one on
//! p(h | v) of the layer below, [`LayerFeatures`]), then unrolled into a
//! sigmoid network with a softmax output layer and fine-tuned by minibatch
//! SGD on the cross-entropy ([`Dbn::sgd_step`]), stopped early by DBN.py's
//! patience rule ([`Patience`]).
//!
//! The prediction rule, for rows x `[n, n_in]` (W_l `[n_(l-1), n_l]`):
//!
//!   h_0 = x,  h_l = sigm(h_(l-1) W_l + hbias_l),  p = softmax(h_L W_c + b_c)
//!
//! The fast fine-tuning step is [`crate::finetune`]; the command line's
//! `rbm dbn` trains, checkpoints, evaluates and samples with these pieces.

use crate::data::DataRows;
use crate::error::{RbmError, Result};
use crate::math::gemm;
use crate::model::Rbm;

/// A pretrained stack of RBMs with a softmax classifier on top.
#[derive(Clone, Debug, PartialEq)]
pub struct Dbn {
    /// the RBMs, bottom first; layer l's n_visible is layer l-1's n_hidden
    pub layers: Vec<Rbm>,
    /// `[n_last, n_classes]`
    pub classifier_w: Vec<f32>,
    /// `[n_classes]`
    pub classifier_b: Vec<f32>,
}

/// Every layer's activations for a minibatch: `acts[0]` = x `[n, n_in]`,
/// `acts[l]` = h_l `[n, n_l]`, and the softmax output `[n, n_classes]`.
pub struct Forward {
    pub acts: Vec<Vec<f32>>,
    pub probs: Vec<f32>,
}

impl Dbn {
    /// The unrolled network of `layers` (checked to chain) with a zero
    /// classifier of `n_classes` outputs (DBN.py's logistic layer starts at 0).
    pub fn new(layers: Vec<Rbm>, n_classes: usize) -> Result<Self> {
        if layers.is_empty() || n_classes < 2 {
            return Err(RbmError::param("layers", "a DBN needs at least one layer and two classes"));
        }
        for (l, pair) in layers.windows(2).enumerate() {
            if pair[0].n_hidden != pair[1].n_visible {
                return Err(RbmError::Shape(format!(
                    "layer {l} has {} hidden units, layer {} {} visible ones",
                    pair[0].n_hidden,
                    l + 1,
                    pair[1].n_visible
                )));
            }
        }
        let last = layers.last().expect("a layer").n_hidden;
        Ok(Dbn { layers, classifier_w: vec![0.0; last * n_classes], classifier_b: vec![0.0; n_classes] })
    }

    /// The number of classes.
    pub fn n_classes(&self) -> usize {
        self.classifier_b.len()
    }

    /// The forward pass over rows `x` `[n, n_in]` (see the module's rule).
    pub fn forward(&self, x: &[f32]) -> Forward {
        self.forward_dropped(x, None)
    }

    /// The forward pass of a training step with dropout: `drop` = (the
    /// dropout, the step's index) masks the input and every hidden layer,
    /// h̃_l = m_l ⊙ sigm(h̃_(l-1) W_l + hbias_l) / q_l ([`Dropout::apply`]).
    pub fn forward_dropped(&self, x: &[f32], drop: Option<(&Dropout, u64)>) -> Forward {
        let n = x.len() / self.layers[0].n_visible;
        let mut acts = vec![x.to_vec()];
        if let Some((d, step)) = drop {
            d.apply(&mut acts[0], 0..self.layers[0].n_visible, 0, step);
        }
        for (l, rbm) in self.layers.iter().enumerate() {
            let mut h = rbm.propup(acts.last().expect("an input")).mean;
            if let Some((d, step)) = drop {
                d.apply(&mut h, 0..rbm.n_hidden, l + 1, step);
            }
            acts.push(h);
        }
        let (h, k, c) =
            (acts.last().expect("a layer"), self.layers.last().expect("a layer").n_hidden, self.n_classes());
        let mut probs = vec![0f32; n * c];
        gemm(&mut probs, n, c, k, h, false, &self.classifier_w, false, 1.0, false);
        softmax_rows(&mut probs, &self.classifier_b);
        Forward { acts, probs }
    }

    /// Class probabilities `[n, n_classes]` of rows `x` `[n, n_in]`.
    pub fn predict_proba(&self, x: &[f32]) -> Vec<f32> {
        self.forward(x).probs
    }

    /// The mean cross-entropy -(1/n) Σ_r log p[r, y_r] of rows `x` with
    /// labels `y`, and its gradient with respect to every parameter, in the
    /// network's shapes: `(loss, grads)` with `grads.layers[l]` holding
    /// dW_l and dhbias_l (vbias unused: zero) and the classifier's beside.
    ///
    /// Backpropagation: δ_out = (p - onehot(y)) / n; dW_c = h_L^T δ_out,
    /// db_c = Σ_rows δ_out; δ_L = δ_out W_c^T ⊙ h_L (1 - h_L); then for each
    /// layer l from the top, dW_l = h_(l-1)^T δ_l, dhbias_l = Σ_rows δ_l and
    /// δ_(l-1) = δ_l W_l^T ⊙ h_(l-1) (1 - h_(l-1)).
    pub fn gradients(&self, x: &[f32], y: &[usize]) -> Result<(f64, Dbn)> {
        self.gradients_dropped(x, y, None)
    }

    /// [`Dbn::gradients`] of the network thinned by dropout's masks for step
    /// `drop.1` (none when `drop` is None): the loss of
    /// [`Dbn::forward_dropped`], and its gradient, where a hidden layer's
    /// h̃ = m ⊙ sigm(a) / q has dh̃/da = m sigm(a) (1 - sigm(a)) / q = h̃ (1 - q h̃).
    pub fn gradients_dropped(&self, x: &[f32], y: &[usize], drop: Option<(&Dropout, u64)>) -> Result<(f64, Dbn)> {
        let f = self.forward_dropped(x, drop);
        let (n, c) = (y.len(), self.n_classes());
        if n * self.layers[0].n_visible != x.len() {
            return Err(RbmError::Shape(format!("{} labels for {} rows", n, x.len() / self.layers[0].n_visible)));
        }
        if let Some(&bad) = y.iter().find(|&&k| k >= c) {
            return Err(RbmError::param("labels", format!("label {bad} of {c} classes")));
        }
        let mut loss = 0f64;
        let mut delta = f.probs.clone();
        for (r, &k) in y.iter().enumerate() {
            loss -= (f.probs[r * c + k].max(f32::MIN_POSITIVE) as f64).ln();
            delta[r * c + k] -= 1.0;
        }
        delta.iter_mut().for_each(|d| *d /= n as f32);
        let mut g = self.zeros_like();
        let top = f.acts.last().expect("a layer");
        let k = self.layers.last().expect("a layer").n_hidden;
        gemm(&mut g.classifier_w, k, c, n, top, true, &delta, false, 1.0, false);
        column_sums(&delta, c, &mut g.classifier_b);
        // δ_L = δ_out W_c^T ⊙ h_L (1 - h_L)
        let mut back = vec![0f32; n * k];
        gemm(&mut back, n, k, c, &delta, false, &self.classifier_w, true, 1.0, false);
        for l in (0..self.layers.len()).rev() {
            let (rbm, h, below) = (&self.layers[l], &f.acts[l + 1], &f.acts[l]);
            let q = drop.map_or(1.0, |(d, _)| d.keep(l + 1));
            for (d, &a) in back.iter_mut().zip(h) {
                *d *= a * (1.0 - q * a);
            }
            let gl = &mut g.layers[l];
            gemm(&mut gl.w, rbm.n_visible, rbm.n_hidden, n, below, true, &back, false, 1.0, false);
            column_sums(&back, rbm.n_hidden, &mut gl.hbias);
            if l > 0 {
                let mut next = vec![0f32; n * rbm.n_visible];
                gemm(&mut next, n, rbm.n_visible, rbm.n_hidden, &back, false, &rbm.w, true, 1.0, false);
                back = next;
            }
        }
        Ok((loss / n as f64, g))
    }

    /// One step of SGD on the minibatch (`x`, `y`) at rate `lr`; returns the
    /// minibatch's mean cross-entropy before the step.
    pub fn sgd_step(&mut self, x: &[f32], y: &[usize], lr: f32) -> Result<f64> {
        self.sgd_step_dropped(x, y, lr, None)
    }

    /// [`Dbn::sgd_step`] on the network thinned by dropout's masks for step
    /// `drop.1` ([`Dbn::gradients_dropped`]).
    pub fn sgd_step_dropped(&mut self, x: &[f32], y: &[usize], lr: f32, drop: Option<(&Dropout, u64)>) -> Result<f64> {
        let (loss, g) = self.gradients_dropped(x, y, drop)?;
        for (rbm, gl) in self.layers.iter_mut().zip(&g.layers) {
            axpy(&mut rbm.w, &gl.w, -lr);
            axpy(&mut rbm.hbias, &gl.hbias, -lr);
        }
        axpy(&mut self.classifier_w, &g.classifier_w, -lr);
        axpy(&mut self.classifier_b, &g.classifier_b, -lr);
        Ok(loss)
    }

    /// The generative down pass (Hinton, Osindero & Teh 2006): states of the
    /// top RBM's visible layer `top` `[n, n_(L-1)]` taken down through the
    /// lower layers' p(v | h) means, h_(l-1) = sigm(h_l W_l^T + vbias_l), to
    /// the input units `[n, n_in]`.
    pub fn down(&self, top: &[f32]) -> Vec<f32> {
        let below = &self.layers[..self.layers.len() - 1];
        below.iter().rev().fold(top.to_vec(), |h, rbm| rbm.propdown(&h).mean)
    }

    /// The top RBM's visible states for rows `x` `[n, n_in]`: p(h | v) of
    /// every layer below it, h_(L-1).
    pub fn up_to_top(&self, x: &[f32]) -> Vec<f32> {
        let below = &self.layers[..self.layers.len() - 1];
        below.iter().fold(x.to_vec(), |v, rbm| rbm.propup(&v).mean)
    }

    /// The fraction of rows `x` `[n, n_in]` whose most probable class is not
    /// `y`'s, on `n_threads` threads, each taking a run of rows (two at
    /// least: a row's products are then the same whatever the split).
    pub fn error_rate(&self, x: &[f32], y: &[usize], n_threads: usize) -> f64 {
        let (n_in, c) = (self.layers[0].n_visible, self.n_classes());
        let n = y.len();
        let t = n_threads.clamp(1, (n / 2).max(1));
        let wrong = |rows: std::ops::Range<usize>| {
            let p = self.predict_proba(&x[rows.start * n_in..rows.end * n_in]);
            p.chunks_exact(c).zip(&y[rows]).filter(|(row, &k)| most_probable(row) != k).count()
        };
        let wrong: usize = std::thread::scope(|s| {
            let runs: Vec<_> = (1..t).map(|p| s.spawn(move || wrong(n * p / t..n * (p + 1) / t))).collect();
            wrong(0..n / t) + runs.into_iter().map(|h| h.join().expect("a thread of error_rate")).sum::<usize>()
        });
        wrong as f64 / n.max(1) as f64
    }

    fn zeros_like(&self) -> Dbn {
        let layers = self
            .layers
            .iter()
            .map(|r| Rbm {
                n_visible: r.n_visible,
                n_hidden: r.n_hidden,
                w: vec![0.0; r.w.len()],
                hbias: vec![0.0; r.n_hidden],
                vbias: vec![0.0; r.n_visible],
            })
            .collect();
        Dbn { layers, classifier_w: vec![0.0; self.classifier_w.len()], classifier_b: vec![0.0; self.n_classes()] }
    }
}

/// Dropout in fine-tuning (Srivastava et al. 2014), inverted: in a training
/// step each input unit is dropped with probability `input` and each hidden
/// unit with probability `hidden`, and the units kept are scaled by 1/q
/// (q = 1 - p, the probability of keeping), h̃ = m ⊙ h / q with m ~
/// Bernoulli(q), so that E[h̃] = h and the network predicts with its weights
/// as they are. A mask is a pure function of (seed, step, layer, row, unit):
/// any thread computes any unit's mask, and a resumed run draws the same.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    /// the probability of dropping an input unit, in [0, 1)
    pub input: f32,
    /// the probability of dropping a hidden unit, in [0, 1)
    pub hidden: f32,
    pub seed: u64,
}

impl Dropout {
    /// No unit dropped.
    pub fn none() -> Self {
        Dropout { input: 0.0, hidden: 0.0, seed: 0 }
    }

    /// Checked: both probabilities in [0, 1).
    pub fn new(input: f32, hidden: f32, seed: u64) -> Result<Self> {
        for (name, p) in [("dropout_input", input), ("dropout_hidden", hidden)] {
            if !(0.0..1.0).contains(&p) {
                return Err(RbmError::param(name, format!("a probability in [0, 1), got {p}")));
            }
        }
        Ok(Dropout { input, hidden, seed })
    }

    /// The probability of dropping a unit of layer `layer` (0: the input).
    pub fn rate(&self, layer: usize) -> f32 {
        if layer == 0 {
            self.input
        } else {
            self.hidden
        }
    }

    /// q = 1 - p, the probability of keeping a unit of layer `layer`.
    pub fn keep(&self, layer: usize) -> f32 {
        1.0 - self.rate(layer)
    }

    /// Whether unit `unit` of row `row` of layer `layer` is kept in step
    /// `step`: the top 24 bits of a SplitMix64 word, as u in [0, 1), at
    /// least p. The row's key is mixed from (seed, step, layer, row); its
    /// units take consecutive SplitMix64 outputs from there.
    pub fn kept(&self, step: u64, layer: usize, row: usize, unit: usize) -> bool {
        let p = self.rate(layer);
        p == 0.0 || unit_uniform(self.row_key(step, layer, row), unit) >= p
    }

    fn row_key(&self, step: u64, layer: usize, row: usize) -> u64 {
        use crate::rng::mix64;
        mix64(mix64(self.seed ^ mix64(step)) ^ ((layer as u64) << 40 | row as u64))
    }

    /// Applies step `step`'s masks to a block `a` `[rows, cols.len()]`
    /// holding units `cols` of layer `layer` (row r of the block is the
    /// minibatch's row r): a = m ⊙ a / q. Nothing when the layer's rate is 0.
    pub fn apply(&self, a: &mut [f32], cols: std::ops::Range<usize>, layer: usize, step: u64) {
        let p = self.rate(layer);
        if p == 0.0 || cols.is_empty() {
            return;
        }
        let q = 1.0 - p;
        for (r, row) in a.chunks_exact_mut(cols.len()).enumerate() {
            let key = self.row_key(step, layer, r);
            for (v, j) in row.iter_mut().zip(cols.clone()) {
                *v = if unit_uniform(key, j) >= p { *v / q } else { 0.0 };
            }
        }
    }
}

/// u in [0, 1) for unit `j` of the row keyed `key`: the top 24 bits of
/// SplitMix64's output (j + 1) steps on from `key`.
fn unit_uniform(key: u64, j: usize) -> f32 {
    let z = crate::rng::mix64(key.wrapping_add((j as u64 + 1).wrapping_mul(crate::rng::GOLDEN_GAMMA)));
    (z >> 40) as f32 * (1.0 / 16_777_216.0)
}

/// Each row of `a` `[n, c]` replaced by softmax(a_row + bias), `bias` `[c]`:
/// exp(a - max a) / Σ exp(a - max a), so no exponential overflows.
pub fn softmax_rows(a: &mut [f32], bias: &[f32]) {
    for row in a.chunks_exact_mut(bias.len()) {
        for (p, &b) in row.iter_mut().zip(bias) {
            *p += b;
        }
        let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for p in row.iter_mut() {
            *p = (*p - m).exp();
            sum += *p;
        }
        row.iter_mut().for_each(|p| *p /= sum);
    }
}

/// The index of the largest of `probs` (the first, on ties): the predicted class.
pub fn most_probable(probs: &[f32]) -> usize {
    probs.iter().enumerate().fold(0, |best, (j, &q)| if q > probs[best] { j } else { best })
}

/// y += a x
fn axpy(y: &mut [f32], x: &[f32], a: f32) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// out[j] = Σ_rows m[r, j] for `m` `[rows, width]`.
fn column_sums(m: &[f32], width: usize, out: &mut [f32]) {
    out.iter_mut().for_each(|o| *o = 0.0);
    for row in m.chunks_exact(width) {
        for (o, &x) in out.iter_mut().zip(row) {
            *o += x;
        }
    }
}

/// The training rows of the layer above `layers`: each row of `data`
/// propagated up through every RBM of `layers` as p(h = 1 | v) (DBN.py
/// feeds each layer the sigmoid output of the one below), a minibatch at a
/// time, so nothing the size of the data set is held.
pub struct LayerFeatures<'a> {
    pub data: &'a dyn DataRows,
    pub layers: &'a [Rbm],
}

impl LayerFeatures<'_> {
    /// Every row at once, `[n_rows, n_cols]`, computed 1,000 rows at a time
    /// (each layer a matrix product over the block): for data that fits in
    /// memory, this spares the pretraining of the layer above a propagation
    /// per minibatch.
    pub fn to_matrix(&self) -> Result<Vec<f32>> {
        let (n, w) = (self.n_rows(), self.n_cols());
        let mut out = vec![0f32; n * w];
        for (block, rows) in out.chunks_mut(1000 * w.max(1)).enumerate() {
            self.copy_rows(block * 1000, rows)?;
        }
        Ok(out)
    }
}

impl DataRows for LayerFeatures<'_> {
    fn n_rows(&self) -> usize {
        self.data.n_rows()
    }
    fn n_cols(&self) -> usize {
        self.layers.last().map_or(self.data.n_cols(), |r| r.n_hidden)
    }
    fn copy_rows(&self, start: usize, out: &mut [f32]) -> Result<()> {
        let n = out.len() / self.n_cols().max(1);
        let mut x = vec![0f32; n * self.data.n_cols()];
        self.data.copy_rows(start, &mut x)?;
        for rbm in self.layers {
            x = rbm.propup(&x).mean;
        }
        out.copy_from_slice(&x);
        Ok(())
    }
}

/// DBN.py's early stopping: validation every `frequency` minibatches
/// (min(minibatches per epoch, patience / 2)), patience starting at 4
/// epochs' worth of minibatches and raised to max(patience, 2 · iteration)
/// whenever the validation error falls below 0.995 of the best; training
/// stops once patience ≤ iteration. The reported test error is the one
/// measured at the best validation error.
#[derive(Clone, Debug, PartialEq)]
pub struct Patience {
    pub patience: usize,
    pub frequency: usize,
    pub best: f64,
    pub best_iter: Option<usize>,
}

impl Patience {
    pub fn new(batches_per_epoch: usize) -> Self {
        let patience = 4 * batches_per_epoch;
        Patience {
            patience,
            frequency: batches_per_epoch.min(patience / 2).max(1),
            best: f64::INFINITY,
            best_iter: None,
        }
    }

    /// Whether minibatch `iter` (counted from 0 over the run) is followed by a validation.
    pub fn validates_after(&self, iter: usize) -> bool {
        (iter + 1).is_multiple_of(self.frequency)
    }

    /// Records the validation error after minibatch `iter`; returns whether it is the best so far.
    pub fn observe(&mut self, iter: usize, error: f64) -> bool {
        if error >= self.best {
            return false;
        }
        if error < self.best * 0.995 {
            self.patience = self.patience.max(2 * iter);
        }
        (self.best, self.best_iter) = (error, Some(iter));
        true
    }

    /// Whether training stops after minibatch `iter`.
    pub fn done(&self, iter: usize) -> bool {
        self.patience <= iter
    }
}
