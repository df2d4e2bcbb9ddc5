//! Partition functions and log-likelihoods against exact answers.

mod common;
use common::*;
use rbm::data::{load_mnist, Binarize};
use rbm::estimate::{
    ais, ais_schedule, base_log_z, base_rate_vbias, exact_log_z, exact_log_z_over, mean_se, neg_free_energies, raise,
};
use rbm::train::{Method, Trainer};
use rbm::{Rbm, Stream};
use std::path::Path;

fn mnist() -> rbm::data::Mnist {
    load_mnist(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")).unwrap()
}

#[test]
fn exact_enumeration_over_hidden_equals_over_visible_and_brute_force() {
    let rbm = random_rbm(12, 10, 0.8, 31);
    let over_h = exact_log_z_over(&rbm, true, 2);
    let over_v = exact_log_z_over(&rbm, false, 2);
    let brute = log_z_brute(&rbm);
    assert!((over_h - over_v).abs() < 1e-4, "{over_h} vs {over_v}");
    assert!((over_h - brute).abs() < 1e-4, "{over_h} vs brute force {brute}");
    // and the thread count changes nothing
    assert_eq!(exact_log_z_over(&rbm, true, 1), over_h);
}

#[test]
fn the_base_rate_models_log_z_is_right_in_closed_form() {
    let m = mnist();
    let vb_a = base_rate_vbias(&m.train.slice(0..5000));
    let base = Rbm::from_params(784, 18, vec![0.0; 784 * 18], vec![0.0; 18], vb_a.clone()).unwrap();
    let closed = base_log_z(&vb_a, 18);
    let enumerated = exact_log_z(&base, 2);
    assert!((closed - enumerated).abs() < 1e-3, "{closed} vs {enumerated}");
    // a tiny one against brute force over every (v, h)
    let tiny = Rbm::from_params(5, 3, vec![0.0; 15], vec![0.0; 3], vec![0.3, -1.0, 2.0, 0.0, -0.5]).unwrap();
    assert!((base_log_z(&tiny.vbias, 3) - log_z_brute(&tiny)).abs() < 1e-9);
}

/// A 784 x n_hidden model: the tutorial's initialisation, or that trained for
/// one CD-1 epoch on 5,000 MNIST images.
fn model(n_hidden: usize, trained: bool, m: &rbm::data::Mnist) -> Rbm {
    let rbm = Rbm::new(784, n_hidden, &mut Stream::new(4, 0)).unwrap();
    if !trained {
        return rbm;
    }
    let cfg = train_config(Method::Cd, 1, 0.1, 20, 1, n_hidden, 4, 5000);
    let mut t = Trainer::new(&rbm, checked(&cfg)).unwrap();
    while !t.done() {
        t.run(&m.train, 1000, 2).unwrap();
    }
    t.rbm()
}

#[test]
fn ais_agrees_with_the_exact_log_z_and_raise_stays_below_the_exact_likelihood() {
    let m = mnist();
    let vb_a = base_rate_vbias(&m.train);
    let test = m.test.slice(0..300).binarize(Binarize::Stochastic, 7).to_f32();
    for (n_hidden, trained) in [(15, false), (20, true)] {
        let rbm = model(n_hidden, trained, &m);
        let exact = exact_log_z(&rbm, 2);
        // the default schedule: 14,500 temperatures, 100 runs
        let est = ais(&rbm, &vb_a, 100, &ais_schedule(14_500), 11, 2);
        let what = format!("784 x {n_hidden} {}", if trained { "trained" } else { "random" });
        assert!((est.log_z - exact).abs() < 0.1, "{what}: AIS {} vs exact {exact}", est.log_z);
        assert!(est.lo <= exact && exact <= est.hi, "{what}: exact {exact} outside AIS's ±3σ [{}, {}]", est.lo, est.hi);
        // RAISE on 300 test images with a shorter schedule: its mean is a
        // stochastic lower bound; allow 3 standard errors of that mean.
        let exact_ll = neg_free_energies(&rbm, &test).iter().sum::<f64>() / 300.0 - exact;
        let (raise_ll, se) = mean_se(&raise(&rbm, &vb_a, &test, &ais_schedule(2000), 12, 2));
        assert!(raise_ll <= exact_ll + 3.0 * se, "{what}: RAISE {raise_ll} ± {se} above exact {exact_ll}");
        assert!(raise_ll > exact_ll - 5.0, "{what}: RAISE {raise_ll} implausibly far below exact {exact_ll}");
    }
}

#[test]
fn the_schedule_has_the_published_shape() {
    let b = ais_schedule(14_500);
    assert_eq!(b.len(), 14_501);
    assert_eq!((b[0], b[14_500]), (0.0, 1.0));
    assert!((b[500] - 0.5).abs() < 1e-12 && (b[4500] - 0.9).abs() < 1e-12);
    assert!(b.windows(2).all(|w| w[1] > w[0]));
    let short = ais_schedule(1450);
    assert_eq!((short.len(), short[0], short[1450]), (1451, 0.0, 1.0));
}

#[test]
fn the_effective_sample_size_of_known_weights() {
    use rbm::estimate::effective_sample_size as ess;
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b.max(1.0);
    // equal weights: every run counts
    assert!(close(ess(&[-3.0; 50]), 50.0));
    // one run carries all the weight
    assert!(close(ess(&[0.0, -800.0, -900.0, f64::NEG_INFINITY]), 1.0));
    // weights 1, 1, 2 (logs shifted by 1000, which must not matter):
    // (1 + 1 + 2)² / (1 + 1 + 4) = 16 / 6
    let l2 = 2f64.ln();
    assert!(close(ess(&[1000.0, 1000.0, 1000.0 + l2]), 16.0 / 6.0));
    // and LogZ carries it
    let z = rbm::estimate::LogZ::from_log_weights(0.0, vec![0.0, 0.0, l2]);
    assert!(close(z.ess, 16.0 / 6.0) && close(z.log_z, (4.0f64 / 3.0).ln()));
}

#[test]
fn ais_and_raise_on_the_same_images_are_paired_image_by_image() {
    // 784 x 30: too large to enumerate, so evaluate runs AIS and RAISE
    let m = mnist();
    let vb_a = base_rate_vbias(&m.train);
    let rbm = model(30, true, &m);
    let test = m.test.slice(0..200).binarize(Binarize::Stochastic, 7).to_f32();
    let mut opts = rbm::estimate::EvalOptions::default();
    (opts.ais_runs, opts.ais_steps, opts.raise_images, opts.raise_steps) = (50, 1000, 60, 500);
    let r = rbm::estimate::evaluate(&rbm, &test, &vb_a, &opts, 2);
    let q = r.raise.as_ref().unwrap();
    let (gap, gap_se) = (q.paired_gap.unwrap(), q.paired_gap_se.unwrap());
    // the mean of the per-image gaps is the gap of the means on the same images
    assert!((gap - (q.reference_avg_ll.unwrap() - q.avg_ll)).abs() < 1e-9);
    // pairing removes the images' own spread: the gap's standard error is far
    // below RAISE's own (a third of its ±3 s.e. half-width)
    assert!(gap_se > 0.0 && gap_se < (q.avg_ll_hi - q.avg_ll) / 3.0 / 3.0, "{gap_se} vs {q:?}");
    let ess = r.ais_ess.unwrap();
    assert!((1.0..=50.0).contains(&ess), "{ess}");
    assert!((r.avg_ll_upper_95.unwrap() - r.avg_ll - 20f64.ln()).abs() < 1e-12);
}

#[test]
fn ais_doubles_its_temperatures_until_the_weights_are_even_or_the_cap() {
    let m = mnist();
    let vb_a = base_rate_vbias(&m.train);
    let rbm = model(30, true, &m);
    let test = m.test.slice(0..50).binarize(Binarize::Stochastic, 7).to_f32();
    let run = |target: f64, max: usize| {
        let mut opts = rbm::estimate::EvalOptions::default();
        opts.estimator = rbm::estimate::Estimator::Ais;
        (opts.ais_runs, opts.ais_steps, opts.ais_target_ess, opts.ais_max_steps) = (20, 50, target, max);
        let r = rbm::estimate::evaluate(&rbm, &test, &vb_a, &opts, 2);
        (r.ais_steps.unwrap(), r.ais_ess.unwrap(), r.avg_ll)
    };
    // an effective sample size of 1 is always reached: no doubling
    assert_eq!(run(0.05, 400).0, 50);
    // an even spread of 19.8 of 20 runs is not reached by 50 temperatures:
    // doubling to the cap (or stopping on the way once it is reached)
    let (steps, ess, ll) = run(0.99, 400);
    assert!(steps == 400 || (ess >= 19.8 && [100, 200].contains(&steps)), "{steps} temperatures, ESS {ess}");
    // the cap in work, not in time: the same result every time
    assert_eq!(run(0.99, 400), (steps, ess, ll));
    assert_eq!(run(0.99, 399).0, 200.min(steps));
}
