//! The epoch loop: [`fit`] drives a [`Trainer`] through its epochs, with the
//! validation figure, checkpoint cadence and stop requests that every
//! caller needs, and hands each event to an [`Observer`] (the command line
//! draws progress bars and pictures and writes checkpoints there).

use crate::data::DataRows;
use crate::error::Result;
use crate::estimate::{quick_log_likelihood, quick_log_likelihood_gaussian};
use crate::train::Trainer;

/// What an observer wants after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Continue,
    /// stop after writing a checkpoint; the run can be resumed from it
    Stop,
}

/// How [`fit`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FitOutcome {
    /// every configured epoch is done
    Finished,
    /// an observer asked to stop; a checkpoint was written first
    Stopped,
}

/// The validation figure during training: the average log-likelihood of
/// `rows` (`[n, n_visible]`: binary for binary units, as the model sees them
/// for Gaussian ones), every `every` epochs, exact for small models, else a
/// short AIS from a base model (see [`quick_log_likelihood`] and
/// [`quick_log_likelihood_gaussian`]).
#[derive(Clone, Copy, Debug)]
pub struct Validation<'a> {
    pub rows: &'a [f32],
    /// `[n_visible]`: the base-rate model's visible biases (binary units,
    /// [`crate::estimate::base_rate_from_sums`]), or the base Gaussians'
    /// means (Gaussian units: the training rows' means)
    pub base: &'a [f32],
    /// added to each figure: 0, or for standardised rows
    /// [`crate::data::Standardize::log_density_shift`], so that the figure is in
    /// the data's units
    pub shift: f64,
    pub every: usize,
    pub seed: u64,
}

/// Settings of [`fit`]; start from [`FitOptions::new`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug)]
pub struct FitOptions<'a> {
    /// worker threads; results do not depend on it
    pub n_threads: usize,
    /// minibatches between two [`Observer::progress`] calls
    pub chunk: usize,
    /// also call [`Observer::checkpoint`] every this many minibatches of an epoch
    pub checkpoint_every: Option<usize>,
    pub validation: Option<Validation<'a>>,
    /// (training rows, validation rows), `[n, n_visible]` each, as the model
    /// sees them: the free-energy gap between them, and the training rows'
    /// reconstruction error, after every epoch
    pub free_energy_gap: Option<(&'a [f32], &'a [f32])>,
}

impl FitOptions<'_> {
    /// `n_threads` threads, progress every 25 minibatches, checkpoints after
    /// each epoch only, no validation.
    pub fn new(n_threads: usize) -> Self {
        FitOptions {
            n_threads: n_threads.max(1),
            chunk: 25,
            checkpoint_every: None,
            validation: None,
            free_energy_gap: None,
        }
    }
}

/// The callbacks of [`fit`]. Every method has a default that does nothing.
pub trait Observer {
    /// After every chunk of minibatches and after every epoch (progress bars,
    /// stop requests).
    fn progress(&mut self, _trainer: &Trainer) -> Control {
        Control::Continue
    }
    /// After every epoch, whose record (with the validation figure, when due)
    /// is the last of `trainer.history()`.
    fn epoch_end(&mut self, _trainer: &mut Trainer) -> Result<()> {
        Ok(())
    }
    /// When a checkpoint is due: after every epoch, every
    /// `checkpoint_every` minibatches, and before stopping on request.
    fn checkpoint(&mut self, _trainer: &mut Trainer) -> Result<()> {
        Ok(())
    }
}

/// The observer that observes nothing.
impl Observer for () {}

/// Trains until every configured epoch is done or `observer` asks to stop.
/// Fails when training diverges (the trainer then holds the state after the
/// bad update, and the last checkpoint the state before it).
pub fn fit(
    trainer: &mut Trainer,
    data: &dyn DataRows,
    opts: &FitOptions,
    observer: &mut dyn Observer,
) -> Result<FitOutcome> {
    let mut since_checkpoint = 0;
    while !trainer.done() {
        let mut n = opts.chunk.max(1);
        if let Some(every) = opts.checkpoint_every {
            n = n.min(every.max(1) - since_checkpoint);
        }
        if trainer.run(data, n, opts.n_threads)?.is_some() {
            since_checkpoint = 0;
            if let Some(v) = &opts.validation {
                if trainer.epoch().is_multiple_of(v.every.max(1)) {
                    let (ll, name) = match trainer.gaussian_model() {
                        Some(g) => quick_log_likelihood_gaussian(&g, v.rows, v.base, v.seed, opts.n_threads)?,
                        None => quick_log_likelihood(&trainer.rbm(), v.rows, v.base, v.seed, opts.n_threads),
                    };
                    trainer.record_log_likelihood(ll + v.shift, name);
                }
            }
            if let Some((train, valid)) = opts.free_energy_gap {
                let (gap, mse) = (trainer.free_energy_gap(train, valid), trainer.reconstruction_mse(train));
                trainer.record_monitors(gap, mse);
            }
            observer.epoch_end(trainer)?;
            observer.checkpoint(trainer)?;
        } else {
            since_checkpoint += n;
            if opts.checkpoint_every == Some(since_checkpoint) {
                observer.checkpoint(trainer)?;
                since_checkpoint = 0;
            }
        }
        if !trainer.done() && observer.progress(trainer) == Control::Stop {
            observer.checkpoint(trainer)?;
            return Ok(FitOutcome::Stopped);
        }
    }
    Ok(FitOutcome::Finished)
}
