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
//!
//! [`FineTuner::step`] runs on one thread; [`FineTuner::steps`] runs a
//! sequence of steps on a team of threads, with the same bits. Either may
//! thin the network by dropout ([`FineTuner::with_dropout`]): step i masks
//! its units as [`Dropout::apply`] does for step i, whichever thread runs it.

use crate::dbn::{softmax_rows, Dbn, Dropout};
use crate::engine::{gather_cols, run_team, scatter_cols, transpose_rows, unit_split};
use crate::error::{RbmError, Result};
use crate::math::{bias_sigmoid, gemm};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

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
    dropout: Dropout,
    /// the index of the next step (the dropout masks' step)
    next_step: u64,
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
            dropout: Dropout::none(),
            next_step: 0,
        }
    }

    /// The same fine-tuner, with dropout in every step from now on.
    pub fn with_dropout(mut self, dropout: Dropout) -> Self {
        self.dropout = dropout;
        self
    }

    /// The index of the next step: dropout's masks depend on it.
    pub fn step_index(&self) -> u64 {
        self.next_step
    }

    /// Sets the index of the next step (a resumed run goes on from its own).
    pub fn set_step_index(&mut self, step: u64) {
        self.next_step = step;
    }

    /// One SGD step on the minibatch (`x` `[batch, n_in]`, labels `y`
    /// `[batch]`) at rate `lr`; returns its mean cross-entropy before the
    /// step. The same update as [`Dbn::sgd_step`] (with dropout,
    /// [`Dbn::sgd_step_dropped`] of the step's index), up to rounding.
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
        let (drop, step) = (self.dropout, self.next_step);
        self.next_step += 1;
        // forward: h_l = sigm(h_(l-1) W_l + hbias_l), p = softmax(h_L W_c + b_c)
        // (with dropout, x and each h_l masked: h̃ = m ⊙ h / q)
        self.acts[0].copy_from_slice(x);
        drop.apply(&mut self.acts[0], 0..x.len() / b, 0, step);
        for (l, rbm) in net.layers.iter().enumerate() {
            let (below, above) = self.acts.split_at_mut(l + 1);
            let (n_in, n_out) = (rbm.n_visible, rbm.n_hidden);
            let pre = &mut self.pre[..b * n_out];
            gemm(pre, b, n_out, n_in, &below[l], false, &rbm.w, false, 1.0, false);
            bias_sigmoid(pre, n_out, &rbm.hbias, &mut above[0]);
            drop.apply(&mut above[0], 0..n_out, l + 1, step);
        }
        let top = self.acts.last().expect("a layer");
        let (cw, cb) = (&net.classifier_w, &net.classifier_b);
        let loss = output_delta(top, cw, cb, y, &mut self.probs, &mut self.delta[..b * c]);
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
                // δ_(l-1) = (δ_l W_l^T) ⊙ h_(l-1) (1 - h_(l-1)); with dropout h̃ (1 - q h̃)
                let q = drop.keep(l);
                for (d, &a) in self.back[..b * n_in].iter_mut().zip(below) {
                    *d *= a * (1.0 - q * a);
                }
                std::mem::swap(&mut self.delta, &mut self.back);
            }
        }
        Ok(loss)
    }
}

/// What a minibatch source gives [`FineTuner::steps`]: minibatch i's rows
/// into `x` `[batch, n_in]` and labels into `y` `[batch]`.
pub type Minibatches<'a> = dyn Fn(usize, &mut [f32], &mut [usize]) -> Result<()> + Sync + 'a;

impl FineTuner {
    /// The threads [`FineTuner::steps`] runs `net` on when given `n_threads`:
    /// at most one per 8-unit group of the narrowest layer.
    pub fn team_size(net: &Dbn, n_threads: usize) -> usize {
        let narrowest = net.layers.iter().map(|r| r.n_visible.min(r.n_hidden).div_ceil(8)).min().unwrap_or(1);
        n_threads.clamp(1, narrowest.max(1))
    }

    /// `n` SGD steps at rate `lr` on minibatches 0..n of `fill`, on
    /// `n_threads` threads; returns the sum of their losses (each as
    /// [`FineTuner::step`] returns it). The same bits as `step` in a loop,
    /// on any number of threads: thread t owns the output units C_t of each
    /// layer and the rows R_t of its backward product, and holds W_l[:, C_t]
    /// `[n_in, |C_t|]` and W_l[R_t, :]^T `[n_out, |R_t|]`, so that each of its
    /// products is one product over the whole sum, as one thread's is; both
    /// copies take the same update, h^T δ summed in the same order, so they
    /// stay exact transposes. Threads exchange only activations and deltas.
    /// The classifier (`[n_L, n_classes]`) is small: every thread runs it on
    /// a copy, updated alike.
    pub fn steps(&mut self, net: &mut Dbn, n: usize, lr: f32, n_threads: usize, fill: &Minibatches) -> Result<f64> {
        let b = self.batch;
        let n_in = net.layers[0].n_visible;
        let (mut x, mut y) = (vec![0f32; b * n_in], vec![0usize; b]);
        let t = Self::team_size(net, n_threads);
        let (drop, first) = (self.dropout, self.next_step);
        if t == 1 {
            let mut loss = 0.0;
            for i in 0..n {
                fill(i, &mut x, &mut y)?;
                loss += self.step(net, &x, &y, lr)?;
            }
            return Ok(loss);
        }
        let shares: Vec<Share> = (0..t).map(|s| Share::new(net, b, t, s)).collect();
        let batch = RwLock::new((x, y));
        let failure: Mutex<Option<RbmError>> = Mutex::new(None);
        let failed = AtomicBool::new(false);
        // the steps taken: n, or the index of the minibatch that failed
        let taken = AtomicUsize::new(n);
        let loss = Mutex::new(0f64);
        run_team(t, |ctx| {
            let me = &shares[ctx.tid];
            let mut local = me.local.lock().unwrap();
            let local = &mut *local;
            let (layers, c) = (net.layers.len(), net.n_classes());
            // the parity of the publish / barrier / gather cycle (see Share)
            let mut cycle = 0usize;
            for i in 0..n {
                if ctx.tid == 0 {
                    let mut data = batch.write().unwrap();
                    let (x, y) = &mut *data;
                    let outcome = fill(i, x, y).and_then(|_| match y.iter().find(|&&k| k >= c) {
                        Some(&bad) => Err(RbmError::param("labels", format!("label {bad} of {c} classes"))),
                        None => Ok(()),
                    });
                    drop.apply(x, 0..n_in, 0, first + i as u64);
                    if let Err(e) = outcome {
                        failure.lock().unwrap().get_or_insert(e);
                        taken.store(i, Ordering::Relaxed);
                        failed.store(true, Ordering::Relaxed);
                    }
                }
                ctx.sync();
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                {
                    let (x, y) = &*batch.read().unwrap();
                    local.acts[0].copy_from_slice(x);
                    local.labels.copy_from_slice(y);
                }
                // forward: h_l[:, C_t] = sigm(h_(l-1) W_l[:, C_t] + hbias_l[C_t])
                for l in 0..layers {
                    let m = me.cols[l].len();
                    let n_in = local.acts[l].len() / b;
                    {
                        let Local { wc, pre, acts, hbias, .. } = &mut *local;
                        let pre = &mut pre[..b * m];
                        gemm(pre, b, m, n_in, &acts[l], false, &wc[l], false, 1.0, false);
                        let mut out = me.published[cycle % 2].write().unwrap();
                        bias_sigmoid(pre, m, &hbias[l], &mut out[..b * m]);
                        drop.apply(&mut out[..b * m], me.cols[l].clone(), l + 1, first + i as u64);
                    }
                    ctx.sync();
                    let n_out = local.acts[l + 1].len() / b;
                    for s in &shares {
                        let part = s.published[cycle % 2].read().unwrap();
                        gather_cols(&mut local.acts[l + 1], &part[..b * s.cols[l].len()], n_out, &s.cols[l]);
                    }
                    cycle += 1;
                }
                let step_loss = local.classifier(lr, drop.keep(layers));
                if ctx.tid == 0 {
                    *loss.lock().unwrap() += step_loss;
                }
                // backward, top down: local.delta holds δ_l whole `[b, n_out]`
                for l in (0..layers).rev() {
                    let (n_in, n_out) = (local.acts[l].len() / b, local.acts[l + 1].len() / b);
                    let (ct, r) = (&me.cols[l], &me.rows[l]);
                    let Local { wc, wr, hbias, acts, delta, back, dcols, .. } = &mut *local;
                    let delta = &delta[..b * n_out];
                    if l > 0 {
                        // back[:, R_t] = δ W_l[R_t, :]^T, from W_l before its update;
                        // δ_(l-1)[:, R_t] = back ⊙ h (1 - h); with dropout h̃ (1 - q h̃)
                        let q = drop.keep(l);
                        let back = &mut back[..b * r.len()];
                        gemm(back, b, r.len(), n_out, delta, false, &wr[l], false, 1.0, false);
                        let mut out = me.published[cycle % 2].write().unwrap();
                        let width = r.len().max(1);
                        for (row, (o, bk)) in
                            out.chunks_exact_mut(width).zip(back.chunks_exact(width)).enumerate().take(b)
                        {
                            let h = &acts[l][row * n_in + r.start..row * n_in + r.end];
                            for ((o, &d), &a) in o.iter_mut().zip(bk).zip(h) {
                                *o = d * (a * (1.0 - q * a));
                            }
                        }
                        // W_l[R_t, :]^T += -lr δ^T h[:, R_t]
                        let hr = &mut dcols[..b * r.len()];
                        scatter_cols(hr, &acts[l], n_in, r);
                        gemm(&mut wr[l], n_out, r.len(), b, delta, true, hr, false, -lr, true);
                    }
                    // W_l[:, C_t] += -lr h^T δ[:, C_t], hbias_l[C_t] -= lr Σ_r δ[r, C_t]
                    let dc = &mut dcols[..b * ct.len()];
                    scatter_cols(dc, delta, n_out, ct);
                    gemm(&mut wc[l], n_in, ct.len(), b, &acts[l], true, dc, false, -lr, true);
                    for row in dc.chunks_exact(ct.len().max(1)) {
                        for (p, &d) in hbias[l].iter_mut().zip(row) {
                            *p -= lr * d;
                        }
                    }
                    if l > 0 {
                        ctx.sync();
                        for s in &shares {
                            let part = s.published[cycle % 2].read().unwrap();
                            gather_cols(&mut local.delta[..b * n_in], &part[..b * s.rows[l].len()], n_in, &s.rows[l]);
                        }
                        cycle += 1;
                    }
                }
            }
        });
        // the steps taken stay taken, even when the data failed part way
        for (k, s) in shares.into_iter().enumerate() {
            s.write_into(net, k == 0);
        }
        self.next_step = first + taken.into_inner() as u64;
        match failure.into_inner().unwrap() {
            Some(e) => Err(e),
            None => Ok(loss.into_inner().unwrap()),
        }
    }
}

/// One thread's share of a network in [`FineTuner::steps`]. Threads
/// exchange activations and deltas through `published`, in cycles of
/// "compute and publish, barrier, gather" (as the engine's phases); it
/// alternates between two buffers from one cycle to the next, so a block is
/// never rewritten before every thread has read it (a barrier lies between).
struct Share {
    /// per layer: this thread's output units C_t, and its rows R_t of the backward product
    cols: Vec<Range<usize>>,
    rows: Vec<Range<usize>>,
    /// `[batch, widest block]` twice: h_l[:, C_t] (forward) or δ_l[:, R_t] (backward)
    published: [RwLock<Vec<f32>>; 2],
    local: Mutex<Local>,
}

/// What only a share's own thread touches.
struct Local {
    batch: usize,
    /// per layer `[n_in, |C_t|]`: W_l[:, C_t]
    wc: Vec<Vec<f32>>,
    /// per layer `[n_out, |R_t|]`: W_l[R_t, :]^T (empty for the first layer, which has no backward product)
    wr: Vec<Vec<f32>>,
    /// per layer `[|C_t|]`: hbias_l[C_t]
    hbias: Vec<Vec<f32>>,
    /// this thread's copy of the classifier: `[n_L, n_classes]`, `[n_classes]`
    cw: Vec<f32>,
    cb: Vec<f32>,
    /// `acts[l]` `[batch, n_l]`, gathered whole; acts[0] = x
    acts: Vec<Vec<f32>>,
    /// `[batch]`
    labels: Vec<usize>,
    /// `[batch, widest]` scratch: pre-activations, δ whole, the backward
    /// product's rows, and columns of δ or h made contiguous
    pre: Vec<f32>,
    delta: Vec<f32>,
    back: Vec<f32>,
    dcols: Vec<f32>,
    /// `[batch, n_classes]`
    probs: Vec<f32>,
}

impl Share {
    /// Thread `s` of `t`'s share of `net`, for minibatches of `b` rows.
    fn new(net: &Dbn, b: usize, t: usize, s: usize) -> Self {
        let cols: Vec<_> = net.layers.iter().map(|r| unit_split(r.n_hidden, t, s)).collect();
        let rows: Vec<_> = net.layers.iter().map(|r| unit_split(r.n_visible, t, s)).collect();
        let wc = net
            .layers
            .iter()
            .zip(&cols)
            .map(|(r, c)| {
                let mut block = vec![0f32; r.n_visible * c.len()];
                scatter_cols(&mut block, &r.w, r.n_hidden, c);
                block
            })
            .collect();
        let wr = net
            .layers
            .iter()
            .zip(&rows)
            .enumerate()
            .map(|(l, (r, rr))| {
                if l == 0 {
                    return Vec::new();
                }
                let mut block = vec![0f32; r.n_hidden * rr.len()];
                transpose_rows(&mut block, rr.len(), &r.w, r.n_hidden, rr);
                block
            })
            .collect();
        let mut widths = vec![net.layers[0].n_visible];
        widths.extend(net.layers.iter().map(|r| r.n_hidden));
        let widest = widths.iter().copied().max().unwrap_or(0).max(net.n_classes());
        let block = cols.iter().chain(&rows).map(|r| r.len()).max().unwrap_or(0);
        let local = Local {
            batch: b,
            wc,
            wr,
            hbias: net.layers.iter().zip(&cols).map(|(r, c)| r.hbias[c.clone()].to_vec()).collect(),
            cw: net.classifier_w.clone(),
            cb: net.classifier_b.clone(),
            acts: widths.iter().map(|&n| vec![0f32; b * n]).collect(),
            labels: vec![0; b],
            pre: vec![0f32; b * widest],
            delta: vec![0f32; b * widest],
            back: vec![0f32; b * widest],
            dcols: vec![0f32; b * widest],
            probs: vec![0f32; b * net.n_classes()],
        };
        Share {
            cols,
            rows,
            published: [RwLock::new(vec![0f32; b * block]), RwLock::new(vec![0f32; b * block])],
            local: Mutex::new(local),
        }
    }

    /// Writes this share's blocks back into `net` (and, from `classifier`'s
    /// share, the classifier: every copy is the same).
    fn write_into(self, net: &mut Dbn, classifier: bool) {
        let local = self.local.into_inner().unwrap();
        for (l, w) in local.wc.iter().enumerate() {
            let r = &mut net.layers[l];
            gather_cols(&mut r.w, w, r.n_hidden, &self.cols[l]);
            r.hbias[self.cols[l].clone()].copy_from_slice(&local.hbias[l]);
        }
        if classifier {
            (net.classifier_w, net.classifier_b) = (local.cw, local.cb);
        }
    }
}

impl Local {
    /// The classifier's part of a step, on this thread's copy: p =
    /// softmax(h_L W_c + b_c), δ_out = (p - onehot(y)) / b, then δ_L =
    /// (δ_out W_c^T) ⊙ h_L (1 - h_L) whole into `delta` (from W_c before its
    /// update), and W_c's update. Returns the minibatch's mean cross-entropy.
    /// `q`: dropout's probability of keeping a unit of h_L (1 without dropout).
    fn classifier(&mut self, lr: f32, q: f32) -> f64 {
        let b = self.batch;
        let c = self.cb.len();
        let top = self.acts.last().expect("a layer");
        let n_top = top.len() / b;
        let d_out = &mut self.dcols[..b * c];
        let loss = output_delta(top, &self.cw, &self.cb, &self.labels, &mut self.probs, d_out);
        let back = &mut self.back[..b * n_top];
        gemm(back, b, n_top, c, d_out, false, &self.cw, true, 1.0, false);
        gemm(&mut self.cw, n_top, c, b, top, true, d_out, false, -lr, true);
        for row in d_out.chunks_exact(c) {
            for (p, &d) in self.cb.iter_mut().zip(row) {
                *p -= lr * d;
            }
        }
        for ((d, &bk), &a) in self.delta[..b * n_top].iter_mut().zip(back.iter()).zip(top) {
            *d = bk * (a * (1.0 - q * a));
        }
        loss
    }
}

/// The classifier's forward pass and output delta for a minibatch of b rows:
/// p = softmax(h_L W_c + b_c) into `probs` `[b, c]`, δ_out = (p - onehot(y)) / b
/// into `d_out` `[b, c]`; returns the mean cross-entropy -(1/b) Σ_r log p[r, y_r].
/// Shapes: `top` h_L `[b, n_L]`, `cw` `[n_L, c]`, `cb` `[c]`, `y` `[b]`.
fn output_delta(top: &[f32], cw: &[f32], cb: &[f32], y: &[usize], probs: &mut [f32], d_out: &mut [f32]) -> f64 {
    let (b, c) = (y.len(), cb.len());
    gemm(probs, b, c, top.len() / b, top, false, cw, false, 1.0, false);
    softmax_rows(probs, cb);
    let mut loss = 0f64;
    for (r, &k) in y.iter().enumerate() {
        loss -= (probs[r * c + k].max(f32::MIN_POSITIVE) as f64).ln();
        for j in 0..c {
            d_out[r * c + j] = (probs[r * c + j] - if j == k { 1.0 } else { 0.0 }) / b as f32;
        }
    }
    loss / b as f64
}
