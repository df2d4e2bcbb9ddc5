//! Training by CD-k and PCD-k with minibatch SGD, monitored as the tutorial:
//! the stochastic pseudo-likelihood for PCD, the reconstruction cross-entropy
//! for CD.
//!
//! One update, for a minibatch v_pos `[batch, n_visible]` (Eq. 4-5, 9):
//!
//!   h_pos  = sigm(v_pos W + c)                     positive phase
//!   chain  = h_pos sample (CD) or the persistent hidden states (PCD)
//!   k x:   v ~ p(v|h), h ~ p(h|v)                  gibbs_hvh
//!   v_neg  = the last v sample, h_neg = sigm(v_neg W + c)
//!   W     += lr/batch (v_pos^T h_pos - v_neg^T h_neg)
//!   c     += lr/batch Σ_rows (h_pos - h_neg)
//!   b     += lr/batch Σ_rows (v_pos - v_neg)
//!
//! which is SGD on mean F(v_pos) - mean F(v_neg) with v_neg held constant.
//! The two W terms are one product of inner size 2 batch:
//! [v_pos; v_neg]^T [h_pos; -h_neg].
//!
//! The work runs on the [`Engine`]'s parts; see `engine.rs` for the phases.

use crate::data::{Images, PIXEL};
use crate::engine::{run_team, split, Engine, Rows, Shared, N_PARTS};
use crate::error::{RbmError, Result};
use crate::math::{log_sigmoid, softplus, sum_softplus_diff, xw_product};
use crate::model::Rbm;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// CD-k or PCD-k.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// contrastive divergence: each chain starts at the data's hidden sample
    Cd,
    /// persistent CD: the chains carry over from one update to the next
    Pcd,
}

/// The training configuration as given (unchecked). [`TrainConfig::check`]
/// validates it against the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub method: Method,
    /// Gibbs steps per update
    pub k: usize,
    /// learning rate
    pub lr: f32,
    pub batch_size: usize,
    pub epochs: usize,
    pub n_hidden: usize,
    pub seed: u64,
    /// training images used (the first ones)
    pub train_size: usize,
}

impl Default for TrainConfig {
    /// The tutorial's run: PCD-15, lr 0.1, batches of 20, 15 epochs, 500 hidden
    /// units, all 50,000 training images.
    fn default() -> Self {
        TrainConfig {
            method: Method::Pcd,
            k: 15,
            lr: 0.1,
            batch_size: 20,
            epochs: 15,
            n_hidden: 500,
            seed: 1234,
            train_size: 50_000,
        }
    }
}

impl TrainConfig {
    /// Checks every field; the error names the flag that is wrong.
    pub fn check(&self, n_available: usize) -> Result<()> {
        if self.k == 0 {
            return Err(RbmError::param("-k", "must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(RbmError::param("--lr", format!("must be a positive finite number, got {}", self.lr)));
        }
        if self.batch_size == 0 {
            return Err(RbmError::param("--batch-size", "must be at least 1"));
        }
        if self.epochs == 0 {
            return Err(RbmError::param("--epochs", "must be at least 1"));
        }
        if self.n_hidden == 0 {
            return Err(RbmError::param("--hidden", "must be at least 1"));
        }
        if self.train_size == 0 || self.train_size > n_available {
            return Err(RbmError::param(
                "--train-size",
                format!("must be in 1..={n_available}, got {}", self.train_size),
            ));
        }
        if self.batch_size > self.train_size {
            return Err(RbmError::param(
                "--batch-size",
                format!("{} is larger than the training set ({})", self.batch_size, self.train_size),
            ));
        }
        Ok(())
    }

    /// Minibatches per epoch (a final partial batch is dropped, as the tutorial).
    pub fn batches_per_epoch(&self) -> usize {
        self.train_size / self.batch_size
    }
}

/// One finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// mean of the epoch's minibatch costs
    pub cost: f64,
    /// training seconds (plotting and evaluation excluded)
    pub seconds: f64,
    /// average log-likelihood of the validation images, when evaluated
    #[serde(default)]
    pub log_likelihood: Option<f64>,
    /// how it was estimated, e.g. "exact" or "ais-100x1450"
    #[serde(default)]
    pub ll_estimator: Option<String>,
}

/// The stream ids the trainer's engine uses (the model's init uses id 0).
pub const TRAIN_STREAMS: u64 = 100;

/// A training run in progress: parameters in engine form, the persistent
/// chain, the random streams and the position in the data.
pub struct Trainer {
    pub config: TrainConfig,
    pub engine: Engine,
    /// `[batch, n_visible]` the minibatch rounded to 0/1 (pseudo-likelihood)
    xi: Shared<f32>,
    /// `[N_PARTS, batch]` each part's share of Σ_j softplus(flipped) - softplus(unflipped)
    pl_diff: Shared<f32>,
    /// per part: the cost summed over its batch rows, one value per update so far this segment
    costs: Vec<Mutex<Vec<f64>>>,
    /// the visible unit whose flip the pseudo-likelihood uses next
    pub bit_i: usize,
    /// epochs done
    pub epoch: usize,
    /// minibatches done in the current epoch
    pub batch_index: usize,
    /// costs of the current epoch's minibatches so far
    pub epoch_costs: Vec<f64>,
    /// finished epochs
    pub history: Vec<EpochRecord>,
}

impl Trainer {
    /// Starts training `rbm` (which must have `config.n_hidden` hidden units).
    pub fn new(rbm: &Rbm, config: TrainConfig) -> Result<Self> {
        if rbm.n_hidden != config.n_hidden {
            return Err(RbmError::Shape(format!(
                "model has {} hidden units, config {}",
                rbm.n_hidden, config.n_hidden
            )));
        }
        let b = config.batch_size;
        let engine = Engine::new(rbm, b, config.seed, TRAIN_STREAMS);
        Ok(Trainer {
            xi: Shared::new(vec![0.0; b * rbm.n_visible]),
            pl_diff: Shared::new(vec![0.0; N_PARTS * b]),
            costs: (0..N_PARTS).map(|_| Mutex::new(Vec::new())).collect(),
            bit_i: 0,
            epoch: 0,
            batch_index: 0,
            epoch_costs: Vec::new(),
            history: Vec::new(),
            config,
            engine,
        })
    }

    /// Whether all configured epochs are done.
    pub fn done(&self) -> bool {
        self.epoch >= self.config.epochs
    }

    /// The current parameters as an [`Rbm`].
    pub fn rbm(&mut self) -> Rbm {
        self.engine.to_rbm()
    }

    /// Runs up to `max_updates` minibatches, stopping at the end of the epoch,
    /// on `n_threads` threads. Returns the epoch's mean cost when it finished it.
    /// Fails (leaving the state as it was after the bad update) when a cost or
    /// parameter stops being finite.
    pub fn run(&mut self, data: &Images, max_updates: usize, n_threads: usize) -> Result<Option<f64>> {
        assert!(!self.done(), "training is already complete");
        let nb = self.config.batches_per_epoch();
        let n = max_updates.min(nb - self.batch_index);
        if data.dim() != self.engine.n_visible || data.n < self.config.train_size {
            return Err(RbmError::Shape(format!(
                "data has {} images of {} pixels; the run needs {} of {}",
                data.n,
                data.dim(),
                self.config.train_size,
                self.engine.n_visible
            )));
        }
        for c in &mut self.costs {
            c.get_mut().unwrap().clear();
        }
        let (start, bit0) = (self.batch_index, self.bit_i);
        let this = &*self;
        run_team(n_threads, |ctx| {
            for u in 0..n {
                this.update(ctx, data, start + u, (bit0 + u) % this.engine.n_visible);
            }
        });
        self.bit_i = (bit0 + n) % self.engine.n_visible;
        let b = self.config.batch_size as f64;
        for u in 0..n {
            let cost = self.costs.iter_mut().map(|c| c.get_mut().unwrap()[u]).sum::<f64>() / b;
            if !cost.is_finite() {
                return Err(RbmError::Diverged { epoch: self.epoch, batch: start + u, what: "the cost".into() });
            }
            self.epoch_costs.push(cost);
        }
        self.batch_index += n;
        if let Some(what) = self.non_finite_parameter() {
            return Err(RbmError::Diverged { epoch: self.epoch, batch: self.batch_index - 1, what });
        }
        if self.batch_index < nb {
            return Ok(None);
        }
        let mean = self.epoch_costs.iter().sum::<f64>() / self.epoch_costs.len() as f64;
        self.epoch += 1;
        self.batch_index = 0;
        self.epoch_costs.clear();
        Ok(Some(mean))
    }

    fn non_finite_parameter(&mut self) -> Option<String> {
        for part in &mut self.engine.parts {
            let part = part.get_mut().unwrap();
            if part.w.iter().any(|x| !x.is_finite()) {
                return Some("a weight".into());
            }
            if part.hbias.iter().any(|x| !x.is_finite()) {
                return Some("a hidden bias".into());
            }
        }
        if self.engine.vbias.whole().iter().any(|x| !x.is_finite()) {
            return Some("a visible bias".into());
        }
        None
    }

    /// One SGD update on minibatch `batch_index`, as one thread of the team.
    fn update(&self, ctx: &crate::engine::Ctx, data: &Images, batch_index: usize, bit: usize) {
        let eng = &self.engine;
        let (b, nv) = (eng.batch, eng.n_visible);
        let cfg = &self.config;
        let pcd = cfg.method == Method::Pcd;

        // Phase 0, rows of part q: load the minibatch; round it for the monitor.
        for q in ctx.parts() {
            let rows = split(b, N_PARTS, q);
            // SAFETY: part q writes only its rows of x's data half and of xi.
            let (x, xi) = unsafe {
                (eng.x.get_mut(rows.start * nv..rows.end * nv), self.xi.get_mut(rows.start * nv..rows.end * nv))
            };
            let first = batch_index * b + rows.start;
            let src = &data.pixels[first * nv..(first + rows.len()) * nv];
            for ((x, xi), &p) in x.iter_mut().zip(xi.iter_mut()).zip(src) {
                *x = PIXEL[p as usize];
                *xi = if p >= 128 { 1.0 } else { 0.0 };
            }
        }
        ctx.sync();

        for p in ctx.parts() {
            let mut part = eng.parts[p].lock().unwrap();
            // Positive phase: h_pos means (and, for CD, the chain's start sample).
            eng.propup(&mut part, Rows::Data, 1.0, 0, !pcd);
            if pcd {
                // Pseudo-likelihood, this part's hidden units: pre = xi W_p + c_p; flipping
                // bit i moves it by d W[i, C_p], d = 1 - 2 xi_i, so no second product.
                let m = part.cols.len();
                // SAFETY: nobody writes xi now; part p writes only its row of pl_diff.
                let (xi, diff) = unsafe { (self.xi.get(0..b * nv), self.pl_diff.get_mut(p * b..(p + 1) * b)) };
                let mut pre = std::mem::take(&mut part.pre_h);
                let part = &mut *part;
                xw_product(&mut pre, b, m, nv, xi, &part.w, part.ldw, 1.0, &mut part.nonzeros);
                let wi = &part.w[bit * part.ldw..bit * part.ldw + m];
                for r in 0..b {
                    let row = &mut pre[r * m..(r + 1) * m];
                    for (a, &c) in row.iter_mut().zip(&part.hbias) {
                        *a += c;
                    }
                    diff[r] = sum_softplus_diff(row, wi, 1.0 - 2.0 * xi[r * nv + bit]);
                }
                part.pre_h = pre;
            }
        }

        for step in 1..=cfg.k {
            for p in ctx.parts() {
                eng.propdown(&mut eng.parts[p].lock().unwrap(), p);
            }
            ctx.sync();
            for q in ctx.parts() {
                let mut part = eng.parts[q].lock().unwrap();
                eng.visible(&mut part, 1.0, None);
                let rows = part.rows.clone();
                if pcd && step == 1 {
                    self.costs[q].lock().unwrap().push(self.pseudo_likelihood_rows(rows, bit));
                } else if !pcd && step == cfg.k {
                    self.costs[q].lock().unwrap().push(self.reconstruction_rows(rows));
                }
            }
            ctx.sync();
            for p in ctx.parts() {
                eng.propup(&mut eng.parts[p].lock().unwrap(), Rows::Chain, 1.0, 1, true);
            }
        }

        // Gradient step, part p: W_p += lr/b [v_pos; v_neg]^T [h_pos; -h_neg].
        let alpha = cfg.lr / b as f32;
        for p in ctx.parts() {
            let mut part = eng.parts[p].lock().unwrap();
            let m = part.cols.len();
            let part = &mut *part;
            for h in &mut part.h_mean[b * m..] {
                *h = -*h;
            }
            // SAFETY: nobody writes x in this phase.
            let x = unsafe { eng.x.get(0..2 * b * nv) };
            let y = std::mem::take(&mut part.h_mean);
            Engine::add_to_weights(part, nv, 2 * b, x, &y, alpha);
            part.h_mean = y;
            // c += lr/b Σ_rows y, summed row by row (vectorises along j).
            let sum = &mut part.hb_eff;
            sum.iter_mut().for_each(|s| *s = 0.0);
            for row in part.h_mean.chunks_exact(m.max(1)) {
                for (s, &y) in sum.iter_mut().zip(row) {
                    *s += y;
                }
            }
            for (c, &s) in part.hbias.iter_mut().zip(sum.iter()) {
                *c += alpha * s;
            }
            // The visible biases, split by visible units: b_i += lr/b Σ_rows (v_pos - v_neg).
            let vc = split(nv, N_PARTS, p);
            let sum = &mut part.vb_eff[..vc.len()];
            sum.iter_mut().for_each(|s| *s = 0.0);
            for r in 0..b {
                let (pos, neg) =
                    (&x[r * nv + vc.start..r * nv + vc.end], &x[(b + r) * nv + vc.start..(b + r) * nv + vc.end]);
                for ((s, &p), &q) in sum.iter_mut().zip(pos).zip(neg) {
                    *s += p - q;
                }
            }
            // SAFETY: part p alone writes these visible biases; nobody reads vbias now.
            let vb = unsafe { eng.vbias.get_mut(vc) };
            for (c, &s) in vb.iter_mut().zip(sum.iter()) {
                *c += alpha * s;
            }
        }
        ctx.sync();
    }

    /// The stochastic pseudo-likelihood summed over `rows`:
    /// Σ_rows n_visible · log sigm(F(xi flipped at bit) - F(xi)), with
    /// F(x~) - F(x) = -d b_i - Σ_j [softplus(pre_j + d W_ij) - softplus(pre_j)].
    fn pseudo_likelihood_rows(&self, rows: std::ops::Range<usize>, bit: usize) -> f64 {
        let (b, nv) = (self.engine.batch, self.engine.n_visible);
        // SAFETY: nobody writes xi, pl_diff or vbias during the visible phase.
        let (xi, diff, vbias) =
            unsafe { (self.xi.get(0..b * nv), self.pl_diff.get(0..N_PARTS * b), self.engine.vbias.get(0..nv)) };
        let mut total = 0f64;
        for r in rows {
            let d = 1.0 - 2.0 * xi[r * nv + bit];
            let mut hid = 0f32;
            for p in 0..N_PARTS {
                hid += diff[p * b + r];
            }
            let delta = -d * vbias[bit] - hid;
            total += nv as f64 * log_sigmoid(delta) as f64;
        }
        total
    }

    /// The tutorial's reconstruction cost summed over `rows`, from the last
    /// Gibbs step's visible pre-activations a:
    /// Σ_i x_i log sigm(a_i) + (1 - x_i) log(1 - sigm(a_i)) = -Σ_i x_i softplus(-a_i) + (1 - x_i) softplus(a_i).
    fn reconstruction_rows(&self, rows: std::ops::Range<usize>) -> f64 {
        let nv = self.engine.n_visible;
        let r = rows.start * nv..rows.end * nv;
        // SAFETY: these rows of pre_v were written by this part in this phase; x's data half is read-only now.
        let (pre, x) = unsafe { (self.engine.pre_v.get(r.clone()), self.engine.x.get(r)) };
        let mut total = 0f32;
        for (&a, &x) in pre.iter().zip(x) {
            total -= x * softplus(-a) + (1.0 - x) * softplus(a);
        }
        total as f64
    }
}

/// Everything of a [`Trainer`] besides its parameters and chain, as saved in
/// a checkpoint's metadata.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainerState {
    pub epoch: usize,
    pub batch_index: usize,
    pub bit_i: usize,
    pub epoch_costs: Vec<f64>,
    pub history: Vec<EpochRecord>,
    /// per part: the hidden units' stream and the visible rows' stream
    pub streams: Vec<(crate::rng::Stream, crate::rng::Stream)>,
}

impl Trainer {
    /// The state to checkpoint, with the persistent chain `[batch, n_hidden]`.
    pub fn state(&mut self) -> (TrainerState, Vec<f32>) {
        let state = TrainerState {
            epoch: self.epoch,
            batch_index: self.batch_index,
            bit_i: self.bit_i,
            epoch_costs: self.epoch_costs.clone(),
            history: self.history.clone(),
            streams: self.engine.streams(),
        };
        (state, self.engine.chain_hidden())
    }

    /// A trainer continuing exactly where [`Trainer::state`] left off.
    pub fn restore(rbm: &Rbm, config: TrainConfig, state: TrainerState, chain: &[f32]) -> Result<Self> {
        let mut t = Trainer::new(rbm, config)?;
        let nb = t.config.batches_per_epoch();
        if state.streams.len() != N_PARTS
            || chain.len() != t.config.batch_size * rbm.n_hidden
            || state.batch_index >= nb.max(1)
            || state.epoch > t.config.epochs
            || state.bit_i >= rbm.n_visible
            || state.epoch_costs.len() != state.batch_index
        {
            return Err(RbmError::Shape("the checkpoint's state does not fit its configuration".into()));
        }
        t.engine.set_chain_hidden(chain);
        t.engine.set_streams(&state.streams);
        t.epoch = state.epoch;
        t.batch_index = state.batch_index;
        t.bit_i = state.bit_i;
        t.epoch_costs = state.epoch_costs;
        t.history = state.history;
        Ok(t)
    }
}
