//! The deep belief network's pieces: backpropagation against finite
//! differences, the fast fine-tuning step against its naive reference, the
//! layer-wise training data, the unrolled network against its RBMs, and
//! DBN.py's early-stopping decisions.

mod common;
use common::*;
use rbm::dbn::{Dbn, Dropout, LayerFeatures, Patience};
use rbm::finetune::FineTuner;
use rbm::{DataRows, RowMatrix};

/// A 6-5-4 stack with a 3-class classifier, all parameters nonzero.
fn net() -> Dbn {
    let mut d = Dbn::new(vec![random_rbm(6, 5, 0.8, 1), random_rbm(5, 4, 0.8, 2)], 3).unwrap();
    d.classifier_w = (0..12).map(|k| ((k * 7 % 11) as f32 - 5.0) / 6.0).collect();
    d.classifier_b = vec![0.3, -0.2, 0.1];
    d
}

/// 7 rows of 6 values in [0, 1] and their labels.
fn batch() -> (Vec<f32>, Vec<usize>) {
    ((0..42).map(|k| ((k * 13 % 17) as f32) / 16.0).collect(), vec![0, 2, 1, 1, 0, 2, 2])
}

/// The mean cross-entropy in f64 from the prediction rule, for finite differences.
fn loss(d: &Dbn, x: &[f32], y: &[usize]) -> f64 {
    let p = d.predict_proba(x);
    -y.iter().enumerate().map(|(r, &k)| (p[r * 3 + k] as f64).ln()).sum::<f64>() / y.len() as f64
}

#[test]
fn backpropagation_matches_finite_differences() {
    // central differences with step 1e-2 on an f32 network: truncation error
    // O(1e-4) times the third derivative, rounding O(1e-7 / 1e-2); 2e-3 covers both
    let (d, (x, y)) = (net(), batch());
    let (l, g) = d.gradients(&x, &y).unwrap();
    assert!((l - loss(&d, &x, &y)).abs() < 1e-5);
    let eps = 1e-2f32;
    let check = |name: &str, get: &dyn Fn(&mut Dbn) -> &mut f32, want: f32| {
        let (mut up, mut down) = (d.clone(), d.clone());
        *get(&mut up) += eps;
        *get(&mut down) -= eps;
        let fd = (loss(&up, &x, &y) - loss(&down, &x, &y)) / (2.0 * eps as f64);
        assert!((fd - want as f64).abs() < 2e-3, "{name}: backprop {want}, finite differences {fd}");
    };
    for k in [0, 7, 13, 29] {
        check(&format!("W1[{k}]"), &|n| &mut n.layers[0].w[k], g.layers[0].w[k]);
    }
    for k in [0, 9, 19] {
        check(&format!("W2[{k}]"), &|n| &mut n.layers[1].w[k], g.layers[1].w[k]);
    }
    for j in 0..4 {
        check(&format!("hbias1[{j}]"), &|n| &mut n.layers[0].hbias[j], g.layers[0].hbias[j]);
        check(&format!("hbias2[{j}]"), &|n| &mut n.layers[1].hbias[j], g.layers[1].hbias[j]);
    }
    for k in [0, 5, 11] {
        check(&format!("Wc[{k}]"), &|n| &mut n.classifier_w[k], g.classifier_w[k]);
    }
    for k in 0..3 {
        check(&format!("bc[{k}]"), &|n| &mut n.classifier_b[k], g.classifier_b[k]);
    }
    // and a step down the gradient lowers the loss
    let mut stepped = d.clone();
    stepped.sgd_step(&x, &y, 0.5).unwrap();
    assert!(loss(&stepped, &x, &y) < l);
}

#[test]
fn the_fine_tuners_steps_are_the_reference_sgd_steps() {
    // the same arithmetic in another order (the update accumulated into W
    // instead of through a gradient buffer): equal up to f32 rounding, a few
    // ulps of values of order 1 per step, so 1e-5 after 20 steps
    let (mut fast, (x, y)) = (net(), batch());
    let mut slow = fast.clone();
    let mut tuner = FineTuner::new(&fast, 7);
    for step in 0..20 {
        let (lf, ls) = (tuner.step(&mut fast, &x, &y, 0.5).unwrap(), slow.sgd_step(&x, &y, 0.5).unwrap());
        assert!((lf - ls).abs() < 1e-5, "step {step}: loss {lf} against {ls}");
    }
    let max_diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
    for (l, (a, b)) in fast.layers.iter().zip(&slow.layers).enumerate() {
        assert!(max_diff(&a.w, &b.w) < 1e-5 && max_diff(&a.hbias, &b.hbias) < 1e-5, "layer {l}");
        assert_eq!(a.vbias, b.vbias, "fine-tuning leaves vbias alone");
    }
    assert!(max_diff(&fast.classifier_w, &slow.classifier_w) < 1e-5);
    assert!(max_diff(&fast.classifier_b, &slow.classifier_b) < 1e-5);
    // the steps moved the network: the comparison is not of two idle copies
    assert!(max_diff(&fast.classifier_w, &net().classifier_w) > 1e-2);
    // a minibatch of the wrong size, or a label past the classes, is refused
    assert!(tuner.step(&mut fast, &x[..36], &y[..6], 0.5).is_err());
    assert!(tuner.step(&mut fast, &x, &[0, 1, 2, 3, 0, 1, 2], 0.5).is_err());
}

#[test]
fn the_fine_tuners_threads_take_the_same_steps_as_one_thread() {
    // 56-56-49 with 3 classes: 7 groups of 8 units per layer (the last of 49
    // one unit wide, a block of its own on 7 threads); 12 minibatches of 7
    // rows, each different
    let mut start = Dbn::new(vec![random_rbm(56, 56, 0.8, 3), random_rbm(56, 49, 0.8, 4)], 3).unwrap();
    start.classifier_w = (0..147).map(|k| ((k * 7 % 11) as f32 - 5.0) / 6.0).collect();
    let fill = |i: usize, x: &mut [f32], y: &mut [usize]| -> rbm::Result<()> {
        for (k, v) in x.iter_mut().enumerate() {
            *v = (((k + 31 * i) * 13 % 17) as f32) / 16.0;
        }
        for (r, l) in y.iter_mut().enumerate() {
            *l = (r * 5 + i) % 3;
        }
        Ok(())
    };
    let run = |threads: usize| {
        let mut d = start.clone();
        let loss = FineTuner::new(&d, 7).steps(&mut d, 12, 0.5, threads, &fill).unwrap();
        (d, loss)
    };
    let (mut reference, mut ref_loss, mut step_loss) = (start.clone(), 0.0, 0.0);
    let (mut stepped, mut tuner) = (start.clone(), FineTuner::new(&start, 7));
    let (mut x, mut y) = (vec![0f32; 7 * 56], vec![0usize; 7]);
    for i in 0..12 {
        fill(i, &mut x, &mut y).unwrap();
        ref_loss += reference.sgd_step(&x, &y, 0.5).unwrap();
        step_loss += tuner.step(&mut stepped, &x, &y, 0.5).unwrap();
    }
    // any number of threads: step in a loop, bit for bit (the loss summed alike);
    // and that is the reference up to rounding (see the test above: 1e-5)
    for threads in [1, 2, 3, 7] {
        assert_eq!(FineTuner::team_size(&start, threads), threads);
        let (d, loss) = run(threads);
        assert!(d == stepped, "{threads} threads: not the same bits as step");
        assert_eq!(loss, step_loss, "{threads} threads");
    }
    let max_diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
    assert!((step_loss - ref_loss).abs() < 1e-4);
    for (l, (a, b)) in stepped.layers.iter().zip(&reference.layers).enumerate() {
        assert!(max_diff(&a.w, &b.w) < 1e-5 && max_diff(&a.hbias, &b.hbias) < 1e-5, "layer {l}");
    }
    assert!(max_diff(&stepped.classifier_w, &reference.classifier_w) < 1e-5);
    assert!(max_diff(&reference.layers[0].w, &start.layers[0].w) > 1e-3);
    // a label past the classes stops the steps with an error, on any number of threads
    let bad = |i: usize, x: &mut [f32], y: &mut [usize]| -> rbm::Result<()> {
        fill(i, x, y)?;
        if i == 4 {
            y[2] = 3;
        }
        Ok(())
    };
    for threads in [1, 2] {
        let mut d = start.clone();
        assert!(FineTuner::new(&d, 7).steps(&mut d, 12, 0.5, threads, &bad).is_err(), "{threads} threads");
    }
}

#[test]
fn dropouts_masks_keep_each_unit_with_probability_q_independently() {
    // 200 rows x 1000 units = 2e5 draws per rate: the kept fraction's standard
    // error is sqrt(p q / 2e5) <= 1.2e-3, so 6e-3 is 5 standard errors
    for (p, layer) in [(0.5f32, 1), (0.2, 0)] {
        let d = Dropout::new(p, p, 42).unwrap();
        let mut a = vec![1f32; 200 * 1000];
        d.apply(&mut a, 0..1000, layer, 9);
        let kept = a.iter().filter(|&&v| v != 0.0).count() as f64 / a.len() as f64;
        assert!((kept - (1.0 - p as f64)).abs() < 6e-3, "p {p}: kept {kept}");
        // the kept units are scaled by 1/q, so the mean stays 1 (same tolerance / q)
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / a.len() as f64;
        assert!((mean - 1.0).abs() < 6e-3 / (1.0 - p as f64), "p {p}: mean {mean}");
        assert!(a.iter().all(|&v| v == 0.0 || v == 1.0 / (1.0 - p)));
        // another step, row or unit is another draw: two masks agree on a unit
        // with probability p^2 + q^2 (same tolerance)
        let mut b = vec![1f32; 200 * 1000];
        d.apply(&mut b, 0..1000, layer, 10);
        let agree = a.iter().zip(&b).filter(|(x, y)| (**x == 0.0) == (**y == 0.0)).count() as f64 / a.len() as f64;
        let want = (p * p + (1.0 - p) * (1.0 - p)) as f64;
        assert!((agree - want).abs() < 6e-3, "p {p}: steps 9 and 10 agree on {agree}, independent masks on {want}");
        let rows_agree = a[..1000].iter().zip(&a[1000..2000]).filter(|(x, y)| (**x == 0.0) == (**y == 0.0)).count();
        assert!(rows_agree < 1000, "rows 0 and 1 have the same mask");
        // a block of columns gets the masks of those units in the whole layer
        let mut block = vec![1f32; 200 * 300];
        d.apply(&mut block, 500..800, layer, 9);
        for r in 0..200 {
            assert_eq!(block[r * 300..(r + 1) * 300], a[r * 1000 + 500..r * 1000 + 800], "row {r}");
            assert!((0..300).all(|j| d.kept(9, layer, r, 500 + j) == (block[r * 300 + j] != 0.0)));
        }
    }
    // no dropout leaves the values alone; rates outside [0, 1) are refused
    let mut a = vec![0.3f32; 50];
    Dropout::none().apply(&mut a, 0..10, 1, 0);
    assert!(a.iter().all(|&v| v == 0.3));
    assert!(Dropout::new(1.0, 0.5, 0).is_err() && Dropout::new(0.2, -0.1, 0).is_err());
}

#[test]
fn backpropagation_through_dropouts_masks_matches_finite_differences() {
    // the thinned network of step 3 (input rate 0.3, hidden 0.4) is a fixed
    // function of the parameters; central differences as in the test above
    let (d, (x, y)) = (net(), batch());
    let drop = Dropout::new(0.3, 0.4, 5).unwrap();
    let thinned_loss = |n: &Dbn| {
        let p = n.forward_dropped(&x, Some((&drop, 3))).probs;
        -y.iter().enumerate().map(|(r, &k)| (p[r * 3 + k] as f64).ln()).sum::<f64>() / y.len() as f64
    };
    let (l, g) = d.gradients_dropped(&x, &y, Some((&drop, 3))).unwrap();
    assert!((l - thinned_loss(&d)).abs() < 1e-5);
    // some units are dropped, so this is not the whole network's loss
    assert!((l - loss(&d, &x, &y)).abs() > 1e-4);
    let eps = 1e-2f32;
    let check = |name: &str, get: &dyn Fn(&mut Dbn) -> &mut f32, want: f32| {
        let (mut up, mut down) = (d.clone(), d.clone());
        *get(&mut up) += eps;
        *get(&mut down) -= eps;
        let fd = (thinned_loss(&up) - thinned_loss(&down)) / (2.0 * eps as f64);
        assert!((fd - want as f64).abs() < 2e-3, "{name}: backprop {want}, finite differences {fd}");
    };
    for k in 0..30 {
        check(&format!("W1[{k}]"), &|n| &mut n.layers[0].w[k], g.layers[0].w[k]);
    }
    for k in 0..20 {
        check(&format!("W2[{k}]"), &|n| &mut n.layers[1].w[k], g.layers[1].w[k]);
    }
    for j in 0..4 {
        check(&format!("hbias1[{j}]"), &|n| &mut n.layers[0].hbias[j], g.layers[0].hbias[j]);
    }
    for k in 0..12 {
        check(&format!("Wc[{k}]"), &|n| &mut n.classifier_w[k], g.classifier_w[k]);
    }
}

#[test]
fn the_fine_tuners_dropout_steps_are_the_reference_steps_on_any_number_of_threads() {
    // the 56-56-49 network of the test above, input rate 0.2, hidden 0.5
    let mut start = Dbn::new(vec![random_rbm(56, 56, 0.8, 3), random_rbm(56, 49, 0.8, 4)], 3).unwrap();
    start.classifier_w = (0..147).map(|k| ((k * 7 % 11) as f32 - 5.0) / 6.0).collect();
    let drop = Dropout::new(0.2, 0.5, 11).unwrap();
    let fill = |i: usize, x: &mut [f32], y: &mut [usize]| -> rbm::Result<()> {
        for (k, v) in x.iter_mut().enumerate() {
            *v = (((k + 31 * i) * 13 % 17) as f32) / 16.0;
        }
        for (r, l) in y.iter_mut().enumerate() {
            *l = (r * 5 + i) % 3;
        }
        Ok(())
    };
    // the reference, and step in a loop, from step index 100 (as a resumed run)
    let (mut reference, mut ref_loss, mut step_loss) = (start.clone(), 0.0, 0.0);
    let mut stepped = start.clone();
    let mut tuner = FineTuner::new(&start, 7).with_dropout(drop);
    tuner.set_step_index(100);
    let (mut x, mut y) = (vec![0f32; 7 * 56], vec![0usize; 7]);
    for i in 0..12 {
        fill(i, &mut x, &mut y).unwrap();
        ref_loss += reference.sgd_step_dropped(&x, &y, 0.5, Some((&drop, 100 + i as u64))).unwrap();
        step_loss += tuner.step(&mut stepped, &x, &y, 0.5).unwrap();
    }
    assert_eq!(tuner.step_index(), 112);
    // up to rounding, as without dropout (1e-5)
    let max_diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
    assert!((step_loss - ref_loss).abs() < 1e-4);
    for (l, (a, b)) in stepped.layers.iter().zip(&reference.layers).enumerate() {
        assert!(max_diff(&a.w, &b.w) < 1e-5 && max_diff(&a.hbias, &b.hbias) < 1e-5, "layer {l}");
    }
    assert!(max_diff(&stepped.classifier_w, &reference.classifier_w) < 1e-5);
    // dropout changed the steps: not those of the whole network
    let mut whole = start.clone();
    let mut plain = FineTuner::new(&start, 7);
    plain.steps(&mut whole, 12, 0.5, 1, &fill).unwrap();
    assert!(max_diff(&whole.layers[0].w, &stepped.layers[0].w) > 1e-4);
    // any number of threads, in one run of 12 steps or in runs of 5 and 7: the same bits
    for threads in [1, 2, 3, 7] {
        let mut d = start.clone();
        let mut t = FineTuner::new(&d, 7).with_dropout(drop);
        t.set_step_index(100);
        let loss = t.steps(&mut d, 12, 0.5, threads, &fill).unwrap();
        assert!(d == stepped, "{threads} threads: not the same bits as step");
        assert_eq!((loss, t.step_index()), (step_loss, 112), "{threads} threads");
        let mut d = start.clone();
        let mut t = FineTuner::new(&d, 7).with_dropout(drop);
        t.set_step_index(100);
        t.steps(&mut d, 5, 0.5, threads, &fill).unwrap();
        let later = |i: usize, x: &mut [f32], y: &mut [usize]| fill(i + 5, x, y);
        t.steps(&mut d, 7, 0.5, threads, &later).unwrap();
        assert!(d == stepped, "{threads} threads, runs of 5 and 7");
    }
}

#[test]
fn the_unrolled_network_and_the_upper_layers_data_are_the_rbms_p_h_given_v() {
    let (d, (x, _)) = (net(), batch());
    let f = d.forward(&x);
    let h1 = d.layers[0].propup(&x).mean;
    assert_eq!(f.acts[1], h1);
    assert_eq!(f.acts[2], d.layers[1].propup(&h1).mean);
    // layer 2's training rows: p(h | v) of layer 1, read a block at a time
    let rows = RowMatrix::new(&x, 6).unwrap();
    let feats = LayerFeatures { data: &rows, layers: &d.layers[..1] };
    assert_eq!((feats.n_rows(), feats.n_cols()), (7, 5));
    let mut out = vec![0f32; 3 * 5];
    feats.copy_rows(2, &mut out).unwrap();
    assert_eq!(out, h1[2 * 5..5 * 5]);
    // and all at once, as pretraining holds it when it fits in memory
    assert_eq!(feats.to_matrix().unwrap(), h1);
    // probabilities sum to 1, and the rule survives huge activations
    let mut big = d.clone();
    big.classifier_b = vec![1e4, -1e4, 0.0];
    assert!(big.predict_proba(&x).chunks_exact(3).all(|p| (p.iter().sum::<f32>() - 1.0).abs() < 1e-6 && p[0] == 1.0));
}

/// DBN.py's loop over `errors` (the validation error at each validation):
/// returns (the iteration it stops after, the best validation's iteration).
fn dbn_py_loop(batches_per_epoch: usize, epochs: usize, errors: &[f64]) -> (usize, Option<usize>) {
    let mut p = Patience::new(batches_per_epoch);
    let mut errors = errors.iter();
    for iter in 0..epochs * batches_per_epoch {
        if p.validates_after(iter) {
            p.observe(iter, *errors.next().expect("enough scripted errors"));
        }
        if p.done(iter) {
            return (iter, p.best_iter);
        }
    }
    (epochs * batches_per_epoch - 1, p.best_iter)
}

#[test]
fn early_stopping_makes_dbn_pys_decisions() {
    // 10 minibatches per epoch: patience 40, validation after iterations 9, 19, ...
    // 0.10 (best) 0.09 (best, < 0.995 x: patience max(40, 38)) 0.0899 (best but
    // not by 0.5%: patience stays) 0.095: patience 40 <= iteration 40, stop there
    assert_eq!(dbn_py_loop(10, 100, &[0.10, 0.09, 0.0899, 0.095]), (40, Some(29)));
    // a clear improvement at iteration 39 raises patience to 78; at 59 to 118;
    // at 99 a new best by less than 0.5% (0.0699 against 0.07) leaves it at
    // 118: stop at iteration 118, the best at 99
    let errors = [0.10, 0.09, 0.0899, 0.08, 0.081, 0.07, 0.075, 0.072, 0.071, 0.0699, 0.08, 0.08];
    assert_eq!(dbn_py_loop(10, 100, &errors), (118, Some(99)));
    // the epochs run out first
    assert_eq!(dbn_py_loop(10, 3, &[0.5, 0.4, 0.3]), (29, Some(29)));
    // DBN.py's frequency: min(batches per epoch, patience / 2)
    assert_eq!(Patience::new(5000).frequency, 5000);
}

#[test]
fn a_dbn_file_reads_back_the_same_network_and_bad_files_are_refused() {
    let d = tmpdir("dbn-file");
    let net = net();
    let path = d.join("dbn.safetensors");
    rbm::modelfile::save_dbn(&path, &net, Default::default()).unwrap();
    let (back, meta) = rbm::modelfile::load_dbn(&path).unwrap();
    assert_eq!(back, net);
    assert_eq!((meta["format"].as_str(), meta["sizes"].as_str()), ("rbm-dbn", "6,5,4,3"));
    // an RBM file, a truncated file, and a DBN whose metadata disagrees with its tensors
    let rbm_file = d.join("rbm.safetensors");
    rbm::modelfile::save_model(&rbm_file, &net.layers[0], Default::default()).unwrap();
    let refused = |p: &std::path::Path, needle: &str| {
        let e = rbm::modelfile::load_dbn(p).unwrap_err().to_string();
        assert!(e.contains(p.file_name().unwrap().to_str().unwrap()) && e.contains(needle), "{e}");
    };
    refused(&rbm_file, "not a DBN file");
    let bytes = std::fs::read(&path).unwrap();
    let cut = d.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    refused(&cut, "not a valid safetensors file");
    // the header's sizes edited in place (same length) to claim a 5-unit second layer
    let mut lie = bytes.clone();
    let at = lie.windows(7).position(|w| w == b"6,5,4,3").unwrap();
    lie[at..at + 7].copy_from_slice(b"6,5,5,3");
    let lying = d.join("lying.safetensors");
    std::fs::write(&lying, &lie).unwrap();
    refused(&lying, "layers.1.W");
}

#[test]
fn python_computes_the_same_probabilities_from_the_file_by_the_stated_rule() {
    // Runs where Python has safetensors and numpy (.ci/run installs them and
    // sets RBM_PYTHON_TESTS=1, which makes their absence a failure).
    use std::process::Command;
    let have = Command::new("python3").args(["-c", "import safetensors, numpy"]).status().is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var("RBM_PYTHON_TESTS").is_err(),
            "RBM_PYTHON_TESTS is set but python3 lacks safetensors/numpy"
        );
        eprintln!("skipped: python3 with safetensors and numpy not found");
        return;
    }
    let d = tmpdir("dbn-python");
    let (net, (x, _)) = (net(), batch());
    let (model, xs, ps) = (d.join("dbn.safetensors"), d.join("x.npy"), d.join("p.npy"));
    rbm::modelfile::save_dbn(&model, &net, Default::default()).unwrap();
    std::fs::write(&xs, rbm::modelfile::npy_bytes(&x, &[7, 6])).unwrap();
    // h_l = sigm(h_(l-1) W_l + hbias_l), p = softmax(h_L W_c + b_c), from the file alone
    let script = format!(
        "from safetensors.numpy import load_file\nimport numpy as np\n\
         m = load_file({model:?})\nh = np.load({xs:?}).astype(np.float64)\n\
         n = max(int(k.split('.')[1]) for k in m if k.startswith('layers.')) + 1\n\
         for i in range(n):\n    h = 1 / (1 + np.exp(-(h @ m[f'layers.{{i}}.W'] + m[f'layers.{{i}}.hbias'])))\n\
         a = h @ m['classifier.W'] + m['classifier.b']\na = np.exp(a - a.max(axis=1, keepdims=True))\n\
         np.save({ps:?}, (a / a.sum(axis=1, keepdims=True)).astype(np.float32))"
    );
    let out = Command::new("python3").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let f = rbm::npy::NpyFile::open(&ps).unwrap();
    let mut theirs = vec![0f32; 7 * 3];
    rbm::DataRows::copy_rows(&f, 0, &mut theirs).unwrap();
    for (k, (a, b)) in net.predict_proba(&x).iter().zip(&theirs).enumerate() {
        assert!((a - b).abs() < 1e-5, "probability {k}: ours {a}, Python's {b}");
    }
}

#[test]
fn the_down_pass_is_the_lower_layers_p_v_given_h_and_up_to_top_their_p_h_given_v() {
    let (d, (x, _)) = (net(), batch());
    let top = d.up_to_top(&x);
    assert_eq!(top, d.layers[0].propup(&x).mean);
    assert_eq!(d.down(&top), d.layers[0].propdown(&top).mean);
    // a one-layer DBN's top RBM sees the pixels themselves
    let one = Dbn::new(vec![random_rbm(6, 5, 0.8, 1)], 3).unwrap();
    assert_eq!((one.up_to_top(&x), one.down(&x)), (x.clone(), x.clone()));
}
