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
//! The work runs on the [`Engine`]'s slabs; see `engine.rs` for the phases.
//! The epoch loop around [`Trainer::run`] is [`crate::fit::fit`].

use crate::data::DataRows;
use crate::engine::{groups, Engine, Own, Rows, Slab, DEFAULT_PARTS, MAX_PARTS};
use crate::error::{RbmError, Result};
use crate::math::{log_sigmoid, reconstruction_group, softplus_diff_groups};
use crate::model::Rbm;
use crate::recipe::{centre_hidden, learning_rate, momentum_at, move_offsets, offset_dot_group, Init, LrSchedule};
use crate::tempering::{Tempering, TemperingState};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// CD-k or PCD-k.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// contrastive divergence: each chain starts at the data's hidden sample
    Cd,
    /// persistent CD: the chains carry over from one update to the next
    Pcd,
}

/// The kind of the visible units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visible {
    /// binary units, values in [0, 1] (the tutorial's)
    #[default]
    Bernoulli,
    /// real-valued units with fixed standard deviations (see [`crate::gaussian`])
    Gaussian,
}

/// The training configuration as given, unchecked: [`TrainConfig::check`]
/// validates it against the data and returns a [`CheckedConfig`], which is
/// what a [`Trainer`] takes. Start from [`TrainConfig::default`] (the
/// tutorial's run) and set fields.
#[non_exhaustive]
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
    /// training rows used (the first ones)
    pub train_size: usize,
    /// parts the units are split into: the grain of the parallel work (a
    /// thread owns a run of parts). Results depend neither on it nor on the
    /// thread count. (Files written before it existed used 2.)
    #[serde(default = "two_parts")]
    pub n_parts: usize,
    /// the visible units' kind
    #[serde(default)]
    pub visible: Visible,
    /// Gaussian units: learn log σ² by the same SGD (Cho, Ilin & Raiko 2011)
    #[serde(default)]
    pub learn_sigma: bool,
    /// momentum of the first `momentum_epochs` epochs (0: none; see [`crate::recipe`])
    #[serde(default)]
    pub momentum: f32,
    /// momentum after `momentum_epochs` epochs
    #[serde(default)]
    pub final_momentum: f32,
    #[serde(default)]
    pub momentum_epochs: usize,
    /// L2 weight decay λ: the weights' gradient gains -λ W (biases are not decayed)
    #[serde(default)]
    pub weight_decay: f32,
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// the last update's learning rate under a linear or exponential schedule
    #[serde(default)]
    pub final_lr: f32,
    /// the hidden units' target mean activation p (none when absent)
    #[serde(default)]
    pub sparsity_target: Option<f32>,
    /// the sparsity penalty's cost s
    #[serde(default)]
    pub sparsity_cost: f32,
    /// how the parameters were initialised (recorded; the caller initialises)
    #[serde(default)]
    pub init: Init,
    /// the recipe's name, when a preset set it (recorded)
    #[serde(default)]
    pub preset: Option<String>,
    /// persistent chains (PCD), when not one per minibatch row: the negative
    /// statistics average over them, so the gradient's scale is unchanged
    #[serde(default)]
    pub chains: Option<usize>,
    /// centring (Melchior, Fischer & Wiskott 2016): the gradient of the
    /// centred RBM, applied to the uncentred parameters (see [`crate::recipe`])
    #[serde(default)]
    pub centering: bool,
    /// the offsets' moving-average rate ν per update
    #[serde(default)]
    pub offset_rate: f32,
    /// parallel tempering: this many sets of chains (2 or more; 0 or 1: plain
    /// PCD), at inverse temperatures from 1 down to `beta_min` (see [`crate::tempering`])
    #[serde(default)]
    pub temperatures: usize,
    #[serde(default)]
    pub beta_min: f32,
    /// PCD on binary units: compute the pseudo-likelihood, the epoch's cost
    /// (an extra product and a softplus pass per update); without it, the
    /// cost reads 0 and the parameters are the same
    #[serde(default = "yes")]
    pub monitor: bool,
}

fn yes() -> bool {
    true
}

fn two_parts() -> usize {
    2
}

impl Default for TrainConfig {
    /// The tutorial's run: PCD-15, lr 0.1, batches of 20, 15 epochs, 500 hidden
    /// units, all 50,000 training images; [`DEFAULT_PARTS`] parts.
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
            n_parts: DEFAULT_PARTS,
            visible: Visible::Bernoulli,
            learn_sigma: false,
            momentum: 0.0,
            final_momentum: 0.0,
            momentum_epochs: 0,
            weight_decay: 0.0,
            lr_schedule: LrSchedule::Constant,
            final_lr: 0.0,
            sparsity_target: None,
            sparsity_cost: 0.0,
            init: Init::Tutorial,
            preset: None,
            chains: None,
            centering: false,
            offset_rate: 0.0,
            temperatures: 0,
            beta_min: 0.0,
            monitor: true,
        }
    }
}

/// A [`TrainConfig`] whose every field has been checked.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedConfig(TrainConfig);

impl std::ops::Deref for CheckedConfig {
    type Target = TrainConfig;
    fn deref(&self) -> &TrainConfig {
        &self.0
    }
}

impl TrainConfig {
    /// Checks every field against data of `n_rows` rows; the error names the field.
    pub fn check(&self, n_rows: usize) -> Result<CheckedConfig> {
        let positive = |name: &'static str, v: usize| {
            if v == 0 {
                Err(RbmError::param(name, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        positive("k", self.k)?;
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(RbmError::param("lr", format!("must be a positive finite number, got {}", self.lr)));
        }
        positive("batch_size", self.batch_size)?;
        positive("epochs", self.epochs)?;
        positive("n_hidden", self.n_hidden)?;
        if self.train_size == 0 || self.train_size > n_rows {
            return Err(RbmError::param("train_size", format!("must be in 1..={n_rows}, got {}", self.train_size)));
        }
        if self.batch_size > self.train_size {
            return Err(RbmError::param(
                "batch_size",
                format!("{} is larger than the training set ({})", self.batch_size, self.train_size),
            ));
        }
        if self.learn_sigma && self.visible != Visible::Gaussian {
            return Err(RbmError::param("learn_sigma", "only Gaussian visible units have a sigma to learn"));
        }
        if !(1..=MAX_PARTS).contains(&self.n_parts) {
            return Err(RbmError::param("n_parts", format!("must be in 1..={MAX_PARTS}, got {}", self.n_parts)));
        }
        for (name, m) in [("momentum", self.momentum), ("final_momentum", self.final_momentum)] {
            if !(0.0..1.0).contains(&m) {
                return Err(RbmError::param(name, format!("must be in [0, 1), got {m}")));
            }
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(RbmError::param("weight_decay", format!("must be 0 or more, got {}", self.weight_decay)));
        }
        if self.lr_schedule != LrSchedule::Constant && !(self.final_lr.is_finite() && self.final_lr > 0.0) {
            return Err(RbmError::param(
                "final_lr",
                format!("a {:?} schedule needs a positive final rate, got {}", self.lr_schedule, self.final_lr),
            ));
        }
        if let Some(p) = self.sparsity_target {
            if !(p > 0.0 && p < 1.0) {
                return Err(RbmError::param("sparsity_target", format!("must lie strictly between 0 and 1, got {p}")));
            }
            if !(self.sparsity_cost.is_finite() && self.sparsity_cost > 0.0) {
                return Err(RbmError::param("sparsity_cost", format!("must be positive, got {}", self.sparsity_cost)));
            }
        }
        if let Some(c) = self.chains {
            positive("chains", c)?;
            if c != self.batch_size && self.method == Method::Cd {
                return Err(RbmError::param(
                    "chains",
                    "CD starts one chain per minibatch row: use PCD for another number",
                ));
            }
            if c != self.batch_size && self.learn_sigma {
                return Err(RbmError::param("chains", "a learned sigma needs one chain per minibatch row"));
            }
        }
        if self.temperatures >= 2 {
            if self.method != Method::Pcd || self.learn_sigma {
                return Err(RbmError::param(
                    "temperatures",
                    "parallel tempering runs PCD's chains (and not with a learned sigma)",
                ));
            }
            if !(self.beta_min > 0.0 && self.beta_min < 1.0) {
                return Err(RbmError::param(
                    "beta_min",
                    format!("must lie strictly between 0 and 1, got {}", self.beta_min),
                ));
            }
        }
        if self.centering {
            if !(self.offset_rate > 0.0 && self.offset_rate <= 1.0) {
                return Err(RbmError::param("offset_rate", format!("must be in (0, 1], got {}", self.offset_rate)));
            }
            if self.learn_sigma {
                return Err(RbmError::param("centering", "is not available with a learned sigma"));
            }
        }
        Ok(CheckedConfig(self.clone()))
    }

    /// Minibatches per epoch (a final partial batch is dropped, as the tutorial).
    pub fn batches_per_epoch(&self) -> usize {
        self.train_size / self.batch_size
    }

    /// The learning rate of minibatch `batch` of epoch `epoch` (see [`crate::recipe`]).
    pub fn lr_at(&self, epoch: usize, batch: usize) -> f32 {
        let nb = self.batches_per_epoch();
        learning_rate(self.lr_schedule, self.lr, self.final_lr, epoch * nb + batch, self.epochs * nb)
    }

    /// The momentum of epoch `epoch` (see [`crate::recipe`]).
    pub fn momentum_at(&self, epoch: usize) -> f32 {
        momentum_at(self.momentum, self.final_momentum, self.momentum_epochs, epoch)
    }

    /// The number of persistent chains (per temperature, with tempering):
    /// `chains`, else one per minibatch row.
    pub fn n_chains(&self) -> usize {
        self.chains.unwrap_or(self.batch_size)
    }

    /// Whether parallel tempering runs the chains.
    pub fn tempering(&self) -> bool {
        self.temperatures >= 2
    }

    /// The chains in flight: [`TrainConfig::n_chains`] at each temperature.
    pub fn all_chains(&self) -> usize {
        self.n_chains() * if self.tempering() { self.temperatures } else { 1 }
    }

    /// Whether the update keeps velocities (some epoch has momentum).
    pub fn has_momentum(&self) -> bool {
        self.momentum > 0.0 || self.final_momentum > 0.0
    }
}

/// One finished epoch.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// mean of the epoch's minibatch costs
    pub cost: f64,
    /// training seconds (plotting and evaluation excluded)
    pub seconds: f64,
    /// average log-likelihood of the validation rows, when evaluated
    #[serde(default)]
    pub log_likelihood: Option<f64>,
    /// how it was estimated, e.g. "exact" or "ais-16x14500"
    #[serde(default)]
    pub ll_estimator: Option<String>,
    /// mean F(v) of training rows minus mean F(v) of validation rows (the
    /// practical guide's overfitting monitor: it grows as the model overfits)
    #[serde(default)]
    pub free_energy_gap: Option<f64>,
    /// the mean-field reconstruction's squared error per row on the training
    /// rows of the gap: Σ_i (v_i - E[v_i | h = p(h | v)])²
    #[serde(default)]
    pub reconstruction_mse: Option<f64>,
}

impl EpochRecord {
    /// An epoch's record without a log-likelihood.
    pub fn new(epoch: usize, cost: f64, seconds: f64) -> Self {
        EpochRecord {
            epoch,
            cost,
            seconds,
            log_likelihood: None,
            ll_estimator: None,
            free_energy_gap: None,
            reconstruction_mse: None,
        }
    }
}

/// The stream ids the trainer's engine uses.
pub const TRAIN_STREAMS: u64 = 100;

/// A training run in progress: parameters in engine form, the persistent
/// chain, the random streams and the position in the data.
pub struct Trainer {
    config: CheckedConfig,
    engine: Engine,
    /// per hidden 8-unit group: Σ_j softplus(flipped) - softplus(unflipped) over its units, `[batch]`
    pl_diff: Vec<Mutex<Vec<f32>>>,
    /// per visible 8-unit group: its share of each update's summed cost, this segment
    costs: Vec<Mutex<Vec<f64>>>,
    /// per hidden 8-unit group: centring's partial dots, `[batch + chains]`
    offset_dots: Vec<Mutex<Vec<f32>>>,
    /// parallel tempering's shared state, when it runs
    tempering: Option<Tempering>,
    /// the visible unit whose flip the pseudo-likelihood uses next
    bit_i: usize,
    epoch: usize,
    batch_index: usize,
    epoch_costs: Vec<f64>,
    /// training seconds of the current epoch so far
    pub(crate) epoch_seconds: f64,
    history: Vec<EpochRecord>,
    /// restored from a state of rbm 0.1, whose streams could not be kept
    streams_rederived: bool,
}

impl Trainer {
    /// Starts training `rbm` (which must have `config.n_hidden` hidden units)
    /// with binary visible units.
    pub fn new(rbm: &Rbm, config: CheckedConfig) -> Result<Self> {
        if config.visible != Visible::Bernoulli {
            return Err(RbmError::param("visible", "Gaussian visible units need a GaussianRbm: Trainer::new_gaussian"));
        }
        Self::with_units(rbm, config)
    }

    /// Starts training a Gaussian-Bernoulli RBM; its standard deviations
    /// stay fixed. The monitor is the reconstruction's squared error (negated,
    /// so that higher is better, as for the other costs).
    pub fn new_gaussian(model: &crate::gaussian::GaussianRbm, config: CheckedConfig) -> Result<Self> {
        if config.visible != Visible::Gaussian {
            return Err(RbmError::param("visible", "a GaussianRbm trains with visible = Gaussian"));
        }
        let mut t = Self::with_units(&model.rbm, config)?;
        t.engine.set_sigma(&model.sigma);
        Ok(t)
    }

    /// The Gaussian-Bernoulli model being trained, when the units are Gaussian.
    pub fn gaussian_model(&mut self) -> Option<crate::gaussian::GaussianRbm> {
        let sigma = self.engine.sigma.as_ref()?.read().unwrap().clone();
        Some(crate::gaussian::GaussianRbm { rbm: self.engine.to_rbm(), sigma })
    }

    fn with_units(rbm: &Rbm, config: CheckedConfig) -> Result<Self> {
        if rbm.n_hidden != config.n_hidden {
            return Err(RbmError::Shape(format!(
                "model has {} hidden units, config {}",
                rbm.n_hidden, config.n_hidden
            )));
        }
        let (b, c) = (config.batch_size, config.n_chains());
        let (engine, tempering) = train_engine(rbm, &config, config.seed);
        Ok(Trainer {
            tempering,
            pl_diff: (0..rbm.n_hidden.div_ceil(8)).map(|_| Mutex::new(vec![0.0; b])).collect(),
            costs: (0..rbm.n_visible.div_ceil(8)).map(|_| Mutex::new(Vec::new())).collect(),
            offset_dots: (0..rbm.n_hidden.div_ceil(8)).map(|_| Mutex::new(vec![0.0; b + c])).collect(),
            bit_i: 0,
            epoch: 0,
            batch_index: 0,
            epoch_costs: Vec::new(),
            epoch_seconds: 0.0,
            history: Vec::new(),
            streams_rederived: false,
            config,
            engine,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Whether all configured epochs are done.
    pub fn done(&self) -> bool {
        self.epoch >= self.config.epochs
    }

    /// Epochs done.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Minibatches done in the current epoch.
    pub fn batch_index(&self) -> usize {
        self.batch_index
    }

    /// The costs of the current epoch's minibatches so far.
    pub fn epoch_costs(&self) -> &[f64] {
        &self.epoch_costs
    }

    /// The finished epochs.
    pub fn history(&self) -> &[EpochRecord] {
        &self.history
    }

    /// Training seconds of every finished epoch, plus the current one's so far.
    pub fn training_seconds(&self) -> f64 {
        self.history.iter().map(|r| r.seconds).sum::<f64>() + self.epoch_seconds
    }

    /// The current parameters as an [`Rbm`].
    pub fn rbm(&mut self) -> Rbm {
        self.engine.to_rbm()
    }

    /// Parallel tempering: per pair of neighbouring temperatures (t, t + 1),
    /// the fraction of proposed exchanges accepted so far in this trainer's life.
    pub fn swap_rates(&self) -> Vec<f64> {
        self.tempering
            .as_ref()
            .map_or(Vec::new(), |t| t.counts.lock().unwrap().iter().map(|&(n, a)| a as f64 / n.max(1) as f64).collect())
    }

    /// The velocities of W, hbias and vbias (momentum; else the last
    /// update's increments), in an [`Rbm`]'s shapes: a checkpoint keeps them
    /// so that a resumed run with momentum continues bit for bit.
    pub fn velocity(&mut self) -> Rbm {
        self.engine.velocity()
    }

    /// Sets the velocities (see [`Trainer::velocity`]).
    pub fn set_velocity(&mut self, v: &Rbm) -> Result<()> {
        if (v.n_visible, v.n_hidden) != (self.engine.n_visible, self.engine.n_hidden) {
            return Err(RbmError::Shape(format!(
                "velocity of {} x {}, model of {} x {}",
                v.n_visible, v.n_hidden, self.engine.n_visible, self.engine.n_hidden
            )));
        }
        self.engine.set_velocity(v);
        Ok(())
    }

    /// Centring's offsets (μ `[n_visible]`, λ `[n_hidden]`), in the units the
    /// engine holds (x = v / σ for Gaussian units).
    pub fn offsets(&mut self) -> (Vec<f32>, Vec<f32>) {
        self.engine.offsets()
    }

    /// Sets centring's offsets (they start at 0.5; a caller may start μ at
    /// the data's means).
    pub fn set_offsets(&mut self, mu: &[f32], lambda: &[f32]) -> Result<()> {
        if mu.len() != self.engine.n_visible || lambda.len() != self.engine.n_hidden {
            return Err(RbmError::Shape(format!(
                "offsets of {} and {} units, model of {} x {}",
                mu.len(),
                lambda.len(),
                self.engine.n_visible,
                self.engine.n_hidden
            )));
        }
        self.engine.set_offsets(mu, lambda);
        Ok(())
    }

    /// The chains' visible states after the last update (v_neg), `[batch, n_visible]`.
    pub fn chain_visible(&mut self) -> Vec<f32> {
        self.engine.chain_visible()
    }

    /// The persistent chains' hidden states, `[all_chains, n_hidden]`.
    pub fn chain_hidden(&mut self) -> Vec<f32> {
        self.engine.chain_hidden()
    }

    /// Sets the persistent chains' hidden states, `[all_chains, n_hidden]`
    /// (values 0 or 1), as a run that carries chains from an earlier one does.
    pub fn set_chain_hidden(&mut self, h: &[f32]) -> Result<()> {
        let want = self.config.all_chains() * self.engine.n_hidden;
        if h.len() != want {
            return Err(RbmError::Shape(format!("{} chain values; the trainer has {want}", h.len())));
        }
        self.engine.set_chain_hidden(h);
        Ok(())
    }

    /// Runs up to `max_updates` minibatches, stopping at the end of the epoch,
    /// on `n_threads` threads. Returns the epoch's mean cost when it finished it.
    /// Fails (leaving the state as it was after the bad update) when a cost or
    /// parameter stops being finite.
    pub fn run(&mut self, data: &dyn DataRows, max_updates: usize, n_threads: usize) -> Result<Option<f64>> {
        if self.done() {
            return Err(RbmError::param("epochs", "training is already complete"));
        }
        let nb = self.config.batches_per_epoch();
        let n = max_updates.min(nb - self.batch_index);
        if data.n_cols() != self.engine.n_visible || data.n_rows() < self.config.train_size {
            return Err(RbmError::Shape(format!(
                "data has {} rows of {} values; the run needs {} of {}",
                data.n_rows(),
                data.n_cols(),
                self.config.train_size,
                self.engine.n_visible
            )));
        }
        for c in &mut self.costs {
            c.get_mut().unwrap().clear();
        }
        let (start, bit0, nv) = (self.batch_index, self.bit_i, self.engine.n_visible);
        let t = std::time::Instant::now();
        self.engine.relayout(n_threads);
        let Trainer { engine, config, pl_diff, costs, .. } = &*self;
        let load_error = Mutex::new(None);
        let (epoch, offset_dots, tempering) = (self.epoch, &self.offset_dots[..], self.tempering.as_ref());
        let step =
            Update { engine, config, epoch, offset_dots, tempering, pl_diff, costs, data, load_error: &load_error };
        engine.team(|ctx, slab, own| {
            for u in 0..n {
                step.run(ctx, slab, own, start + u, (bit0 + u) % nv);
            }
        });
        self.epoch_seconds += t.elapsed().as_secs_f64();
        if let Some(e) = load_error.into_inner().unwrap() {
            // the data could not be read: the updates since ran on zeros, so
            // the trainer's state is not to be trusted; the last checkpoint is
            return Err(e);
        }
        self.bit_i = (bit0 + n) % nv;
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
        self.history.push(EpochRecord::new(self.epoch, mean, std::mem::take(&mut self.epoch_seconds)));
        self.epoch += 1;
        self.batch_index = 0;
        self.epoch_costs.clear();
        Ok(Some(mean))
    }
}

impl Trainer {
    fn non_finite_parameter(&mut self) -> Option<String> {
        self.engine.non_finite_parameter().map(String::from)
    }
}

/// The trainer's engine for `rbm` under `config`, with streams from `seed`,
/// and tempering's shared state when it runs.
fn train_engine(rbm: &Rbm, config: &CheckedConfig, seed: u64) -> (Engine, Option<Tempering>) {
    let (b, c) = (config.batch_size, config.n_chains());
    let mut engine = Engine::with_chains(rbm, b, config.all_chains(), seed, TRAIN_STREAMS, config.n_parts, 1);
    let tempering = config.tempering().then(|| {
        let t = Tempering::new(config.temperatures, config.beta_min, c, rbm.n_visible, rbm.n_hidden, seed);
        engine.set_tempering(t.row_betas(), c);
        t
    });
    (engine, tempering)
}

/// What one SGD update reads, shared by the threads of the team.
struct Update<'a> {
    engine: &'a Engine,
    config: &'a CheckedConfig,
    /// the epoch the updates belong to (a call of [`Trainer::run`] stays in one)
    epoch: usize,
    /// centring: per hidden 8-unit group, `[2 batch]` partial dots y_c λ
    offset_dots: &'a [Mutex<Vec<f32>>],
    tempering: Option<&'a Tempering>,
    pl_diff: &'a [Mutex<Vec<f32>>],
    costs: &'a [Mutex<Vec<f64>>],
    data: &'a dyn DataRows,
    /// the first failure to read the data
    load_error: &'a Mutex<Option<RbmError>>,
}

impl Update<'_> {
    /// One SGD update on minibatch `batch_index`, as one thread of the team.
    fn run(&self, ctx: &crate::engine::Ctx, slab: &Slab, own: &mut Own, batch_index: usize, bit: usize) {
        let eng = self.engine;
        let (b, nv, m) = (eng.batch, eng.n_visible, slab.cols.len());
        let pcd = self.config.method == Method::Pcd;
        let gaussian = eng.sigma.is_some();

        // Phase 0: every thread loads its own copy of the minibatch (and
        // rounds it for the monitor). Nothing shared is written, so no barrier
        // follows: the last update ended with one.
        let Own { x_data, xi_data, .. } = &mut *own;
        x_data.resize(b * nv, 0.0);
        if let Err(e) = self.data.copy_rows(batch_index * b, x_data) {
            x_data.fill(0.0);
            self.load_error.lock().unwrap().get_or_insert(e);
        }
        if let Some(sigma) = &eng.sigma {
            // Gaussian units are held in units of sigma: x = v / sigma
            let sigma = sigma.read().unwrap();
            for row in x_data.chunks_exact_mut(nv) {
                for (x, &s) in row.iter_mut().zip(sigma.iter()) {
                    *x /= s;
                }
            }
        }
        if pcd && !gaussian && self.config.monitor {
            // only the pseudo-likelihood reads the rounded rows
            xi_data.resize(b * nv, 0.0);
            for (xi, &x) in xi_data.iter_mut().zip(x_data.iter()) {
                *xi = if x >= 0.5 { 1.0 } else { 0.0 };
            }
        }

        // Positive phase: h_pos means (and, for CD, the chain's start sample).
        eng.propup(slab, own, Rows::Data, 1.0, 0, !pcd);
        if pcd && !gaussian && self.config.monitor {
            // Pseudo-likelihood, this slab's hidden units: pre = xi W + c; flipping
            // bit i moves it by d W[i, :], d = 1 - 2 xi_i, so no second product.
            eng.propup(slab, own, Rows::Rounded, 1.0, 0, false);
            let Own { pre_h, hbias, w, ldw, row_sums, group_sums, xi_data: xi, .. } = &mut *own;
            let d = &mut row_sums[..b];
            for (r, d) in d.iter_mut().enumerate() {
                for (a, &h) in pre_h[r * m..(r + 1) * m].iter_mut().zip(hbias.iter()) {
                    *a += h;
                }
                *d = 1.0 - 2.0 * xi[r * nv + bit];
            }
            softplus_diff_groups(pre_h, m, &w[bit * *ldw..bit * *ldw + m], d, group_sums);
            let g = groups(&slab.cols);
            for (k, diff) in self.pl_diff[g.clone()].iter().enumerate() {
                let mut diff = diff.lock().unwrap();
                for (r, x) in diff.iter_mut().enumerate() {
                    *x = group_sums[r * g.len() + k];
                }
            }
        }

        for step in 1..=self.config.k {
            ctx.sync();
            eng.visible(slab, own, 1.0, None);
            // the monitors: one share of the cost per visible group, summed in group order
            let v0 = slab.vcols.start;
            for g in groups(&slab.vcols) {
                let cols = 8 * g - v0..(8 * g + 8).min(slab.vcols.end) - v0;
                let cost = if gaussian && step == self.config.k {
                    Some(self.squared_error(own, slab.vcols.len(), v0, cols))
                } else if gaussian {
                    None
                } else if pcd && step == 1 && !self.config.monitor {
                    Some(0.0)
                } else if pcd && step == 1 {
                    let owns_bit = (cols.start + v0..cols.end + v0).contains(&bit);
                    Some(if owns_bit {
                        self.pseudo_likelihood(own.vbias[bit - v0], bit, &own.xi_data, &mut own.row_sums)
                    } else {
                        0.0
                    })
                } else if !pcd && step == self.config.k {
                    Some(self.reconstruction(own, slab.vcols.len(), v0, cols))
                } else {
                    None
                };
                if let Some(cost) = cost {
                    self.costs[g].lock().unwrap().push(cost);
                }
            }
            if let Some(t) = self.tempering {
                // exchanges of (v, h) between neighbouring temperatures (see crate::tempering)
                eng.energy_parts(slab, own, &t.hid, &t.vis);
                ctx.sync();
                if ctx.tid == 0 {
                    t.decide();
                }
                ctx.sync();
                eng.swap_rows(slab, &t.swaps.read().unwrap());
            }
            ctx.sync();
            eng.propup(slab, own, Rows::Chain, 1.0, 1, true);
        }

        // Gradient step, hidden side: W[:, C_T] += lr/b [v_pos; v_neg]^T [h_pos; -h_neg]
        // (with the recipe's momentum and decay, see crate::recipe).
        let lr = self.config.lr_at(self.epoch, batch_index);
        let (alpha, momentum) = (lr / b as f32, self.config.momentum_at(self.epoch));
        let decay = lr * self.config.weight_decay;
        let learn_sigma = gaussian && self.config.learn_sigma;
        if learn_sigma {
            eng.publish_means(slab, own);
        }
        // y = [h_pos; -(b / chains) h_neg]: the chains' mean counts as much as the
        // minibatch's (the scale is exactly 1 with one chain per row)
        let neg_scale = b as f32 / eng.neg_rows as f32;
        for h in &mut own.h_mean[b * m..(b + eng.neg_rows) * m] {
            *h *= -neg_scale;
        }
        eng.gather_x(own);
        let centering = self.config.centering;
        if centering || self.config.sparsity_target.is_some() {
            // q_j = the minibatch's mean of h_pos
            let Own { q_mean, h_mean, .. } = &mut *own;
            q_mean.iter_mut().for_each(|q| *q = 0.0);
            for row in h_mean[..b * m].chunks_exact(m.max(1)) {
                for (q, &h) in q_mean.iter_mut().zip(row) {
                    *q += h;
                }
            }
            q_mean.iter_mut().for_each(|q| *q /= b as f32);
        }
        if centering {
            let Own { xbuf, h_mean, v_offset, h_offset, d_row, hc_corr, .. } = &mut *own;
            let rows = b + eng.neg_rows;
            let (x, y) = (&mut xbuf[..rows * nv], &mut h_mean[..rows * m]);
            centre_hidden(x, y, v_offset, h_offset, (b, neg_scale), &mut d_row[..rows], hc_corr);
            // y_c λ, by hidden 8-unit group, for the visible side's correction
            for g in groups(&slab.cols) {
                let cols = 8 * g - slab.cols.start..(8 * g + 8).min(slab.cols.end) - slab.cols.start;
                offset_dot_group(h_mean, h_offset, cols, &mut self.offset_dots[g].lock().unwrap());
            }
        }
        eng.add_weights_hidden(slab, own, alpha, momentum, decay);
        // c += lr/b Σ_rows y, summed row by row (vectorises along j).
        let Own { hb_eff: sum, h_mean, hbias, hb_vel, q_mean, hc_corr, .. } = &mut *own;
        sum.iter_mut().for_each(|s| *s = 0.0);
        for row in h_mean[..(b + eng.neg_rows) * m].chunks_exact(m.max(1)) {
            for (s, &y) in sum.iter_mut().zip(row) {
                *s += y;
            }
        }
        if centering {
            for (s, &c) in sum.iter_mut().zip(hc_corr.iter()) {
                *s -= c;
            }
        }
        if let Some(p) = self.config.sparsity_target {
            // Σ_rows y becomes Σ_rows y - batch s (q - p), so that alpha times
            // it is lr [(1/b) Σ_rows y - s (q - p)]
            let cost = self.config.sparsity_cost;
            for (s, &q) in sum.iter_mut().zip(q_mean.iter()) {
                *s -= b as f32 * cost * (q - p);
            }
        }
        if self.config.has_momentum() {
            for ((c, v), &s) in hbias.iter_mut().zip(hb_vel.iter_mut()).zip(sum.iter()) {
                *v = momentum * *v + alpha * s;
                *c += *v;
            }
        } else {
            for (c, &s) in hbias.iter_mut().zip(sum.iter()) {
                *c += alpha * s;
            }
        }
        ctx.sync();

        // Visible side: a learned sigma's step (from the old parameters), W[V_T, :]^T
        // from every slab's dW, and b_i += lr/b Σ_rows (v_pos - v_neg).
        if learn_sigma {
            eng.sigma_step(slab, own, alpha);
        }
        eng.add_weights_visible(slab, own);
        let v = slab.vcols.clone();
        let Own { vb_eff: sum, xbuf: x, sigma, d_row: t, .. } = &mut *own;
        sum.iter_mut().for_each(|s| *s = 0.0);
        if eng.neg_rows == b {
            for r in 0..b {
                let (pos, neg) =
                    (&x[r * nv + v.start..r * nv + v.end], &x[(b + r) * nv + v.start..(b + r) * nv + v.end]);
                for ((s, &p), &q) in sum.iter_mut().zip(pos).zip(neg) {
                    *s += p - q;
                }
            }
        } else {
            // Σ_rows v_pos - (b / chains) Σ_chains v_neg
            for r in 0..b + eng.neg_rows {
                let scale = if r < b { 1.0 } else { -neg_scale };
                for (s, &p) in sum.iter_mut().zip(&x[r * nv + v.start..r * nv + v.end]) {
                    *s += scale * p;
                }
            }
        }
        if centering {
            // Δb -= (x_c^T y_c) λ: Σ_r x_c[r, i] t_r, t_r = y_c[r] · λ summed group by group in order
            t.iter_mut().for_each(|t| *t = 0.0);
            for dots in self.offset_dots {
                for (t, &d) in t.iter_mut().zip(dots.lock().unwrap().iter()) {
                    *t += d;
                }
            }
            for (r, &tr) in t.iter().enumerate() {
                for (s, &xc) in sum.iter_mut().zip(&x[r * nv + v.start..r * nv + v.end]) {
                    *s -= xc * tr;
                }
            }
        }
        if gaussian {
            // dF/db_i = -(v_i - b_i) / sigma_i², and x = v / sigma: one more 1 / sigma
            for (s, &sigma) in sum.iter_mut().zip(sigma.iter()) {
                *s /= sigma;
            }
        }
        if self.config.has_momentum() {
            for ((c, v), &s) in own.vbias.iter_mut().zip(own.vb_vel.iter_mut()).zip(own.vb_eff.iter()) {
                *v = momentum * *v + alpha * s;
                *c += *v;
            }
        } else {
            for (c, &s) in own.vbias.iter_mut().zip(own.vb_eff.iter()) {
                *c += alpha * s;
            }
        }
        if learn_sigma {
            eng.apply_sigma(slab, own);
        }
        if centering {
            // the offsets follow the data: μ with v_pos's mean, λ with h_pos's
            let rate = self.config.offset_rate;
            let Own { v_offset, h_offset, q_mean, data_mean, x_data, .. } = &mut *own;
            data_mean.iter_mut().for_each(|a| *a = 0.0);
            for row in x_data.chunks_exact(nv) {
                for (a, &x) in data_mean.iter_mut().zip(row) {
                    *a += x;
                }
            }
            data_mean.iter_mut().for_each(|a| *a /= b as f32);
            move_offsets(v_offset, data_mean, rate);
            move_offsets(h_offset, q_mean, rate);
        }
        ctx.sync();
    }

    /// Gaussian units' monitor over one group of visible units: minus the
    /// squared distance between the data and the last Gibbs step's mean of
    /// p(v | h), Σ_rows Σ_i -(v_i - E[v_i | h])², in the data's units.
    fn squared_error(&self, own: &Own, mv: usize, v0: usize, cols: std::ops::Range<usize>) -> f64 {
        // data row r against chain r's mean, for the rows both have
        let (b, nv) = (self.engine.batch.min(self.engine.chains), self.engine.n_visible);
        let x = &own.x_data;
        let sigma = self.engine.sigma.as_ref().expect("Gaussian units").read().unwrap();
        let mut total = 0f32;
        for r in 0..b {
            for i in cols.clone() {
                let v = x[r * nv + v0 + i] * sigma[v0 + i];
                let d = v - own.v_mean[r * mv + i];
                total -= d * d;
            }
        }
        total as f64
    }

    /// The stochastic pseudo-likelihood summed over the minibatch:
    /// Σ_rows n_visible · log sigm(F(xi flipped at bit) - F(xi)), with
    /// F(x~) - F(x) = -d b_i - Σ_j [softplus(pre_j + d W_ij) - softplus(pre_j)],
    /// the hidden sums taken part by part in part order. `xi` `[batch, n_visible]`
    /// is the rounded minibatch.
    fn pseudo_likelihood(&self, vbias_bit: f32, bit: usize, xi: &[f32], hid: &mut [f32]) -> f64 {
        let (b, nv) = (self.engine.batch, self.engine.n_visible);
        hid.iter_mut().for_each(|h| *h = 0.0);
        for diff in self.pl_diff {
            for (h, &d) in hid.iter_mut().zip(diff.lock().unwrap().iter()) {
                *h += d;
            }
        }
        let mut total = 0f64;
        for (r, &hid) in hid.iter().enumerate().take(b) {
            let d = 1.0 - 2.0 * xi[r * nv + bit];
            total += nv as f64 * log_sigmoid(-d * vbias_bit - hid) as f64;
        }
        total
    }

    /// The tutorial's reconstruction cost over one group of visible units
    /// (`cols` relative to the slab's `mv` units, `v0` the slab's first unit), from
    /// the last Gibbs step's pre-activations a:
    /// Σ_i x_i log sigm(a_i) + (1 - x_i) log(1 - sigm(a_i)) = -Σ_i x_i softplus(-a_i) + (1 - x_i) softplus(a_i).
    fn reconstruction(&self, own: &Own, mv: usize, v0: usize, cols: std::ops::Range<usize>) -> f64 {
        let (b, nv) = (self.engine.batch, self.engine.n_visible);
        let (pre, x) = (&own.pre_v[cols.start..], &own.x_data[v0 + cols.start..]);
        reconstruction_group(pre, mv, x, nv, cols.len(), b) as f64
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
    /// the random streams of the hidden and of the visible 8-unit groups
    #[serde(default)]
    pub hidden_streams: Vec<crate::rng::Stream>,
    #[serde(default)]
    pub visible_streams: Vec<crate::rng::Stream>,
    /// rbm 0.1's streams, one (hidden, visible) pair per part: read, not used
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<serde_json::Value>,
    /// training seconds of the current epoch so far
    #[serde(default)]
    pub epoch_seconds: f64,
    /// parallel tempering's exchange draws
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tempering: Option<TemperingState>,
}

impl Trainer {
    /// The state to checkpoint, with the persistent chain `[batch, n_hidden]`.
    pub fn state(&mut self) -> (TrainerState, Vec<f32>) {
        let streams = self.engine.streams();
        let state = TrainerState {
            epoch: self.epoch,
            batch_index: self.batch_index,
            bit_i: self.bit_i,
            epoch_costs: self.epoch_costs.clone(),
            history: self.history.clone(),
            hidden_streams: streams.0,
            visible_streams: streams.1,
            streams: Vec::new(),
            epoch_seconds: self.epoch_seconds,
            tempering: self.tempering.as_ref().map(|t| t.state.lock().unwrap().clone()),
        };
        (state, self.engine.chain_hidden())
    }

    /// A trainer continuing exactly where [`Trainer::state`] left off.
    ///
    /// A state of rbm 0.1 holds one pair of streams per part instead of one
    /// stream per 8-unit group: the run continues from its parameters, chain
    /// and position with fresh group streams derived from the seed and the
    /// position (deterministic, but not the draws rbm 0.1 would have made);
    /// [`Trainer::streams_rederived`] then says so.
    /// `sigma` holds Gaussian visible units' standard deviations.
    pub fn restore(
        rbm: &Rbm,
        sigma: Option<&[f32]>,
        config: CheckedConfig,
        state: TrainerState,
        chain: &[f32],
    ) -> Result<Self> {
        let mut t = match sigma {
            Some(sigma) => {
                Trainer::new_gaussian(&crate::gaussian::GaussianRbm::new(rbm.clone(), sigma.to_vec())?, config)?
            }
            None => Trainer::new(rbm, config)?,
        };
        let nb = t.config.batches_per_epoch();
        if chain.len() != t.config.all_chains() * rbm.n_hidden
            || state.batch_index >= nb.max(1)
            || state.epoch > t.config.epochs
            || state.bit_i >= rbm.n_visible
            || state.epoch_costs.len() != state.batch_index
            || state.history.len() != state.epoch
        {
            return Err(RbmError::Shape("the checkpoint's state does not fit its configuration".into()));
        }
        if state.hidden_streams.is_empty() && state.visible_streams.is_empty() && !state.streams.is_empty() {
            let position = (state.epoch as u64) << 32 | state.batch_index as u64;
            let seed = t.config.seed ^ crate::rng::splitmix64(&mut position.clone());
            (t.engine, t.tempering) = train_engine(rbm, &t.config, seed);
            if let Some(sigma) = sigma {
                t.engine.set_sigma(sigma);
            }
            t.streams_rederived = true;
        } else if !t.engine.set_streams(&state.hidden_streams, &state.visible_streams) {
            return Err(RbmError::Shape("the checkpoint's random streams are not one per 8-unit group".into()));
        }
        t.engine.set_chain_hidden(chain);
        if let (Some(tp), Some(st)) = (&t.tempering, state.tempering) {
            *tp.state.lock().unwrap() = st;
        }
        t.epoch = state.epoch;
        t.batch_index = state.batch_index;
        t.bit_i = state.bit_i;
        t.epoch_costs = state.epoch_costs;
        t.epoch_seconds = state.epoch_seconds;
        t.history = state.history;
        Ok(t)
    }

    /// Whether [`Trainer::restore`] had to derive fresh random streams (a
    /// state of rbm 0.1): the continuation is deterministic, but not the one
    /// rbm 0.1 would have drawn.
    pub fn streams_rederived(&self) -> bool {
        self.streams_rederived
    }

    /// Changes the number of epochs the run goes to (to extend a finished
    /// run, say); it cannot end before the epochs already done.
    pub fn set_epochs(&mut self, epochs: usize) -> Result<()> {
        if epochs < self.epoch.max(1) {
            return Err(RbmError::param("epochs", format!("must be at least the {} already done", self.epoch.max(1))));
        }
        let mut c = self.config.0.clone();
        c.epochs = epochs;
        self.config = CheckedConfig(c);
        Ok(())
    }

    /// Mean F(v) of `train` minus mean F(v) of `valid` (rows `[n, n_visible]`,
    /// as the model sees them), with the current parameters, for either unit kind.
    pub fn free_energy_gap(&mut self, train: &[f32], valid: &[f32]) -> f64 {
        let mean = |f: Vec<f64>| f.iter().sum::<f64>() / f.len().max(1) as f64;
        match self.gaussian_model() {
            Some(g) => mean(g.free_energy(train)) - mean(g.free_energy(valid)),
            None => {
                let rbm = self.rbm();
                let f = |v: &[f32]| crate::estimate::neg_free_energies(&rbm, v).iter().map(|x| -x).collect();
                mean(f(train)) - mean(f(valid))
            }
        }
    }

    /// The mean-field reconstruction's squared error per row of `v` (`[n,
    /// n_visible]`, as the model sees them): v → q = p(h | v) → the mean of
    /// p(v | h = q) (sigm(q W^T + b) for binary units, b + σ q W^T for
    /// Gaussian ones), Σ_i (v_i - that)² averaged over the rows.
    pub fn reconstruction_mse(&mut self, v: &[f32]) -> f64 {
        let gaussian = self.gaussian_model();
        let rbm = self.rbm();
        let (recon, n) = match &gaussian {
            Some(g) => {
                let q: Vec<f32> = g.prob_h_given_v(v).into_iter().map(|p| p as f32).collect();
                (g.mean_v_given_h(&q).into_iter().map(|x| x as f32).collect::<Vec<_>>(), v.len() / rbm.n_visible)
            }
            None => (rbm.propdown(&rbm.propup(v).mean).mean, v.len() / rbm.n_visible),
        };
        v.iter().zip(&recon).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum::<f64>() / n.max(1) as f64
    }

    /// Records the free-energy gap and the reconstruction error in the last
    /// finished epoch's record.
    pub fn record_monitors(&mut self, gap: f64, mse: f64) {
        if let Some(r) = self.history.last_mut() {
            r.free_energy_gap = Some(gap);
            r.reconstruction_mse = Some(mse);
        }
    }

    /// Adds the validation log-likelihood to the last finished epoch's record.
    pub fn record_log_likelihood(&mut self, ll: f64, estimator: String) {
        if let Some(r) = self.history.last_mut() {
            r.log_likelihood = Some(ll);
            r.ll_estimator = Some(estimator);
        }
    }
}
