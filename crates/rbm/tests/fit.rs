//! The epoch loop: its events, checkpoint cadence, stop requests and
//! validation figure, through a recording observer.

mod common;
use common::*;
use rbm::fit::{fit, Control, FitOptions, FitOutcome, Observer, Validation};
use rbm::{Method, Rbm, RowMatrix, Trainer};

/// Records (event, epoch, minibatch) and asks to stop after `stop_after` progress calls.
#[derive(Default)]
struct Recorder {
    events: Vec<(&'static str, usize, usize)>,
    stop_after: Option<usize>,
    progress_calls: usize,
}

impl Observer for Recorder {
    fn progress(&mut self, t: &Trainer) -> Control {
        self.progress_calls += 1;
        self.events.push(("progress", t.epoch(), t.batch_index()));
        if Some(self.progress_calls) == self.stop_after {
            Control::Stop
        } else {
            Control::Continue
        }
    }
    fn epoch_end(&mut self, t: &mut Trainer) -> rbm::Result<()> {
        self.events.push(("epoch_end", t.epoch(), t.batch_index()));
        Ok(())
    }
    fn checkpoint(&mut self, t: &mut Trainer) -> rbm::Result<()> {
        self.events.push(("checkpoint", t.epoch(), t.batch_index()));
        Ok(())
    }
}

fn rows() -> Vec<f32> {
    (0..40).flat_map(|i| if i % 2 == 0 { [1., 1., 1., 0., 0., 0.] } else { [0., 0., 0., 1., 1., 1.] }).collect()
}

fn trainer(epochs: usize) -> Trainer {
    // 40 rows in batches of 4: 10 minibatches an epoch
    let cfg = train_config(Method::Pcd, 1, 0.1, 4, epochs, 3, 7, 40);
    Trainer::new(&Rbm::init(6, 3, 7).unwrap(), checked(&cfg)).unwrap()
}

#[test]
fn checkpoints_come_every_n_minibatches_and_after_each_epoch() {
    let values = rows();
    let data = RowMatrix::new(&values, 6).unwrap();
    let mut t = trainer(2);
    let mut opts = FitOptions::new(2);
    (opts.chunk, opts.checkpoint_every) = (3, Some(4));
    let mut rec = Recorder::default();
    assert_eq!(fit(&mut t, &data, &opts, &mut rec).unwrap(), FitOutcome::Finished);
    let checkpoints: Vec<(usize, usize)> =
        rec.events.iter().filter(|e| e.0 == "checkpoint").map(|e| (e.1, e.2)).collect();
    // within an epoch at 4 and 8 minibatches; then at its end (epoch counter advanced, minibatch 0)
    assert_eq!(checkpoints, vec![(0, 4), (0, 8), (1, 0), (1, 4), (1, 8), (2, 0)]);
    let ends: Vec<usize> = rec.events.iter().filter(|e| e.0 == "epoch_end").map(|e| e.1).collect();
    assert_eq!(ends, vec![1, 2]);
    assert_eq!(t.history().len(), 2);
    assert!(t.done());
}

#[test]
fn a_stop_request_writes_a_checkpoint_and_the_run_continues_as_if_never_stopped() {
    let values = rows();
    let data = RowMatrix::new(&values, 6).unwrap();
    let mut whole = trainer(2);
    fit(&mut whole, &data, &FitOptions::new(1), &mut ()).unwrap();

    let mut t = trainer(2);
    let mut opts = FitOptions::new(2);
    opts.chunk = 3;
    let mut rec = Recorder { stop_after: Some(2), ..Default::default() };
    assert_eq!(fit(&mut t, &data, &opts, &mut rec).unwrap(), FitOutcome::Stopped);
    assert_eq!(rec.events.last(), Some(&("checkpoint", 0, 6)));
    assert_eq!(fit(&mut t, &data, &opts, &mut ()).unwrap(), FitOutcome::Finished);
    assert_eq!(t.rbm(), whole.rbm());
}

#[test]
fn validation_adds_the_exact_log_likelihood_every_n_epochs() {
    let values = rows();
    let data = RowMatrix::new(&values, 6).unwrap();
    let base = vec![0f32; 6];
    let mut t = trainer(4);
    let mut opts = FitOptions::new(2);
    opts.validation = Some(Validation { rows: &values, base: &base, shift: 0.0, every: 2, seed: 1 });
    fit(&mut t, &data, &opts, &mut ()).unwrap();
    let lls: Vec<Option<f64>> = t.history().iter().map(|r| r.log_likelihood).collect();
    assert!(lls[0].is_none() && lls[2].is_none(), "{lls:?}");
    // epoch 2's figure is the exact one of the model after 2 epochs
    let mut two = trainer(2);
    fit(&mut two, &data, &opts, &mut ()).unwrap();
    let m = two.rbm();
    let exact = rbm::estimate::mean_neg_free_energy(&m, &values) - rbm::estimate::exact_log_z(&m, 1);
    assert!((lls[1].unwrap() - exact).abs() < 1e-9, "{lls:?} vs {exact}");
    assert_eq!(t.history()[1].ll_estimator.as_deref(), Some("exact"));
    assert!(lls[3].is_some());
}

#[test]
fn the_free_energy_gap_is_recorded_after_every_epoch_as_defined() {
    let values = rows();
    let data = RowMatrix::new(&values, 6).unwrap();
    let (train, valid) = (&values[..60], &values[60..120]);
    let mut t = trainer(2);
    let mut opts = FitOptions::new(2);
    opts.free_energy_gap = Some((train, valid));
    fit(&mut t, &data, &opts, &mut ()).unwrap();
    let gaps: Vec<Option<f64>> = t.history().iter().map(|r| r.free_energy_gap).collect();
    assert!(gaps.iter().all(|g| g.is_some()), "{gaps:?}");
    // the last one, from its definition with the final parameters (in f32 sums)
    let m = t.rbm();
    let mean = |v: &[f32]| m.free_energy(v).iter().map(|&f| f as f64).sum::<f64>() / (v.len() / 6) as f64;
    let want = mean(train) - mean(valid);
    assert!((gaps[1].unwrap() - want).abs() < 1e-5, "{:?} vs {want}", gaps[1]);
    // and the reconstruction error, from the one-thread reference
    let recon = m.propdown(&m.propup(train).mean).mean;
    let mse = train.iter().zip(&recon).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum::<f64>() / 10.0;
    assert_eq!(t.history()[1].reconstruction_mse, Some(mse));
    assert!(mse < t.history()[0].reconstruction_mse.unwrap() + 1.0, "the two bars are easy: it does not blow up");
}
