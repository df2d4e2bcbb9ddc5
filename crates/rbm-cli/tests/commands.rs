//! The commands' successful paths: what they write, and that it is right.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Stdio;

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn threads_1_and_3_write_byte_identical_model_files() {
    let mut models = Vec::new();
    for threads in ["1", "3"] {
        let d = tmpdir(&format!("threads-{threads}"));
        let mut args = sized_args(&d, "pcd", 400, 2, 60, 3);
        args.extend(["--threads".to_string(), threads.to_string()]);
        run_ok(&strs(&args));
        models.push(std::fs::read(d.join("model.safetensors")).unwrap());
        models.push(std::fs::read(d.join("samples.png")).unwrap());
    }
    assert!(models[0] == models[2], "model files differ between 1 and 3 threads");
    assert!(models[1] == models[3], "samples differ between 1 and 3 threads");
}

/// log Z by enumerating the hidden states in f64, independently of the library.
fn log_z_brute(w: &[f32], hbias: &[f32], vbias: &[f32]) -> f64 {
    let (nv, nh) = (vbias.len(), hbias.len());
    let softplus = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
    let terms: Vec<f64> = (0..1usize << nh)
        .map(|s| {
            let h = |j: usize| ((s >> j) & 1) as f64;
            let mut t: f64 = (0..nh).map(|j| hbias[j] as f64 * h(j)).sum();
            for i in 0..nv {
                t += softplus(vbias[i] as f64 + (0..nh).map(|j| w[i * nh + j] as f64 * h(j)).sum::<f64>());
            }
            t
        })
        .collect();
    let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln()
}

#[test]
fn eval_json_has_its_keys_and_the_exact_estimate_equals_brute_force() {
    let model = small_run().join("model.safetensors");
    let out = run_ok(&["eval", "--model", model.to_str().unwrap(), "--binarize", "threshold", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    for key in [
        "estimator",
        "logz",
        "logz_lo",
        "logz_hi",
        "avg_ll",
        "avg_ll_lo",
        "avg_ll_hi",
        "n_images",
        "split",
        "binarize",
        "seed",
        "seconds",
        "model",
    ] {
        assert!(v.get(key).is_some(), "--json lacks {key}: {v}");
    }
    assert_eq!(v["estimator"], "exact");
    assert_eq!(v["n_images"], 10_000);
    // the same figure from first principles: mean of -F(v) over the thresholded test images, minus log Z
    let (rbm, _) = rbm::modelfile::load_model(&model).unwrap();
    let lz = log_z_brute(&rbm.w, &rbm.hbias, &rbm.vbias);
    assert!((v["logz"].as_f64().unwrap() - lz).abs() < 1e-6 * lz.abs(), "log Z {} vs {lz}", v["logz"]);
    let test = rbm::data::load_mnist(&shipped()).unwrap().test;
    let (nv, nh) = (784, rbm.n_hidden);
    let softplus = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
    let mut sum = 0f64;
    for i in 0..test.n {
        let x: Vec<f64> = test.image(i).iter().map(|&p| if p >= 128 { 1.0 } else { 0.0 }).collect();
        let mut nfe: f64 = (0..nv).map(|k| x[k] * rbm.vbias[k] as f64).sum();
        for j in 0..nh {
            nfe += softplus(rbm.hbias[j] as f64 + (0..nv).map(|k| x[k] * rbm.w[k * nh + j] as f64).sum::<f64>());
        }
        sum += nfe;
    }
    let want = sum / test.n as f64 - lz;
    let got = v["avg_ll"].as_f64().unwrap();
    assert!((got - want).abs() < 1e-4, "average log-likelihood {got} vs {want}");
}

#[test]
fn eval_every_adds_the_exact_validation_log_likelihood_to_the_metrics() {
    let d = tmpdir("eval-every");
    let mut args = sized_args(&d, "cd", 300, 2, 12, 1);
    args.extend(["--eval-every".to_string(), "1".to_string()]);
    let printed = run_ok(&strs(&args));
    assert!(printed.contains("validation log-likelihood"), "{printed}");
    let csv = std::fs::read_to_string(d.join("metrics.csv")).unwrap();
    let last: Vec<&str> = csv.lines().last().unwrap().split(',').collect();
    assert_eq!(last[4], "exact", "{csv}");
    assert!(
        csv.starts_with("epoch,cost,seconds,valid_log_likelihood,ll_estimator,free_energy_gap,reconstruction_mse\n"),
        "{csv}"
    );
    assert!(last[6].parse::<f64>().unwrap() > 0.0, "the reconstruction error: {csv}");
    assert!(last[5].parse::<f64>().unwrap().is_finite(), "the free-energy gap of MNIST runs: {csv}");
    let in_metrics: f64 = last[3].parse().unwrap();
    // the final model's figure by `rbm eval` on the same (seeded) validation images
    let model = d.join("model.safetensors");
    let out = run_ok(&["eval", "--model", model.to_str().unwrap(), "--split", "valid", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let by_eval = v["avg_ll"].as_f64().unwrap();
    assert!((in_metrics - by_eval).abs() < 1e-9 * by_eval.abs(), "metrics {in_metrics} vs eval {by_eval}");
    assert!(std::fs::read_to_string(d.join("learning_curve.svg")).unwrap().contains("validation log-likelihood"));
}

#[test]
fn checkpoint_every_writes_mid_epoch_checkpoints_without_changing_the_run() {
    // 15 minibatches an epoch, a checkpoint every 4: the run is interrupted by
    // SIGTERM once the first mid-epoch checkpoint exists, and what it left
    // must resume to the same model as the uninterrupted run.
    let whole = tmpdir("ck-whole");
    run_ok(&strs(&sized_args(&whole, "pcd", 300, 2, 300, 5)));
    let cut = tmpdir("ck-cut");
    let mut args = sized_args(&cut, "pcd", 300, 2, 300, 5);
    args.extend(["--checkpoint-every".to_string(), "4".to_string()]);
    let mut child = rbm().args(&args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let ck = cut.join("checkpoint.safetensors");
    while !ck.exists() {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let first = rbm::modelfile::load_checkpoint(&ck).unwrap().trainer;
    assert_eq!((first.epoch(), first.batch_index()), (0, 4), "the first checkpoint is after 4 minibatches");
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    if !cut.join("model.safetensors").exists() {
        run_ok(&["train", "--resume", cut.to_str().unwrap()]);
    }
    assert!(
        std::fs::read(whole.join("model.safetensors")).unwrap()
            == std::fs::read(cut.join("model.safetensors")).unwrap(),
        "checkpointing every 4 minibatches changed the model"
    );
}

#[test]
fn sample_draws_the_samples_picture_from_a_saved_model() {
    let model = small_run().join("model.safetensors");
    let sample = |name: &str| {
        let d = tmpdir(name);
        let m = model.to_str().unwrap();
        let args = [
            "sample",
            "--model",
            m,
            "--out",
            d.to_str().unwrap(),
            "--chains",
            "5",
            "--samples",
            "3",
            "--plot-every",
            "10",
        ];
        let printed = run_ok(&args);
        assert!(printed.contains("samples.png"), "{printed}");
        d.join("samples.png")
    };
    let first = sample("sample");
    let g = rbm::images::read_png(&first).unwrap();
    assert_eq!((g.width, g.height), (29 * 5 - 1, 29 * 3 + 1));
    assert!(g.pixels.iter().any(|&p| p > 0), "an empty picture");
    // the same seed draws the same picture
    assert_eq!(std::fs::read(first).unwrap(), std::fs::read(sample("sample-again")).unwrap());
}

#[test]
fn a_closed_stdout_does_not_stop_training() {
    // Regression: `rbm train | head -c 5` used to end the run at the first
    // print after the pipe closed, writing nothing.
    let d = tmpdir("closed-stdout");
    let mut child =
        rbm().args(sized_args(&d, "cd", 200, 3, 16, 1)).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take()); // the reader goes away before the first line
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(d.join("model.safetensors").exists() && d.join("samples.png").exists());
}

#[test]
fn a_missing_model_file_states_its_cause_once() {
    let d = tmpdir("missing-model");
    let line = fails(
        &["filters", "--model", "/nonexistent/model.safetensors", "--out", d.join("f.png").to_str().unwrap()],
        &["/nonexistent/model.safetensors", "No such file"],
        &d,
    );
    assert_eq!(line.matches("No such file").count(), 1, "{line}");
}

#[test]
fn a_model_file_of_a_newer_format_is_refused() {
    let d = tmpdir("newer");
    let (rbm, mut meta) = rbm::modelfile::load_model(&small_run().join("model.safetensors")).unwrap();
    meta.insert("format_version".into(), "99".into());
    let path = d.join("newer.safetensors");
    let bytes = rbm::modelfile::safetensors_bytes(
        &[
            ("W", vec![784, rbm.n_hidden], &rbm.w),
            ("hbias", vec![rbm.n_hidden], &rbm.hbias),
            ("vbias", vec![784], &rbm.vbias),
        ],
        meta,
    );
    std::fs::write(&path, bytes).unwrap();
    fails(
        &["filters", "--model", path.to_str().unwrap(), "--out", d.join("f.png").to_str().unwrap()],
        &["newer.safetensors", "format version 99", "newer"],
        &d,
    );
}

/// MNIST's first `n` training images as a float32 .npy file (p / 255, as MNIST is read).
fn mnist_npy(dir: &Path, n: usize) -> PathBuf {
    let train = rbm::data::load_mnist(&shipped()).unwrap().train;
    let p = dir.join("mnist.npy");
    std::fs::write(&p, rbm::modelfile::npy_bytes(&train.slice(0..n).to_f32(), &[n, 784])).unwrap();
    p
}

#[test]
fn a_npy_of_mnist_trains_the_same_model_as_mnist_itself_and_resumes() {
    let d = tmpdir("npy-train");
    let npy = mnist_npy(&d, 400);
    let from_mnist = d.join("mnist");
    run_ok(&strs(&sized_args(&from_mnist, "pcd", 400, 3, 30, 2)));
    let from_npy = d.join("npy");
    let mut args = sized_args(&from_npy, "pcd", 400, 3, 30, 2);
    args.extend(["--data".to_string(), npy.to_str().unwrap().to_string()]);
    run_ok(&strs(&args));
    let model = |dir: &Path| std::fs::read(dir.join("model.safetensors")).unwrap();
    assert!(model(&from_mnist) == model(&from_npy), "the same rows gave different models");
    assert!(from_npy.join("samples.png").exists() && from_npy.join("filters_at_epoch_2.png").exists());
    // a run on the file, stopped after 2 epochs and resumed (the checkpoint
    // remembers the file), ends where the 3-epoch run did
    let part = d.join("part");
    let mut args = sized_args(&part, "pcd", 400, 2, 30, 2);
    args.extend(["--data".to_string(), npy.to_str().unwrap().to_string()]);
    run_ok(&strs(&args));
    let ck = rbm::modelfile::load_checkpoint(&part.join("checkpoint.safetensors")).unwrap();
    let mut trainer = ck.trainer;
    trainer.set_epochs(3).unwrap();
    rbm::modelfile::save_checkpoint(&part.join("checkpoint.safetensors"), &mut trainer, &ck.extra).unwrap();
    run_ok(&["train", "--resume", part.to_str().unwrap()]);
    assert!(model(&part) == model(&from_npy), "the resumed run differs");
}

#[test]
fn a_csv_of_non_image_rows_trains_without_pictures() {
    let d = tmpdir("csv-train");
    let rows: String = (0..60).map(|i| format!("{},{},{},{},{}\n", i % 2, (i / 2) % 2, 1, 0, i % 2)).collect();
    let csv = d.join("five.csv");
    std::fs::write(&csv, format!("a,b,c,d,e\n{rows}")).unwrap();
    let out = d.join("run");
    let printed = run_ok(&[
        "train",
        "--data",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--hidden",
        "3",
        "--batch-size",
        "6",
        "--epochs",
        "2",
        "-k",
        "1",
    ]);
    assert!(printed.contains("no square image"), "{printed}");
    let (rbm, meta) = rbm::modelfile::load_model(&out.join("model.safetensors")).unwrap();
    assert_eq!((rbm.n_visible, rbm.n_hidden), (5, 3));
    assert!(meta["config"].contains("\"train_size\":60"), "{}", meta["config"]);
    assert!(!out.join("samples.png").exists() && !out.join("filters_at_epoch_1.png").exists());
    assert!(!std::fs::read_to_string(out.join("index.html")).unwrap().contains("filters_at_epoch"));
}

#[test]
fn data_files_with_bad_values_are_named_and_nothing_is_written() {
    let d = watched_out("bad-values");
    let o = d.to_str().unwrap();
    let csv = d.join("big.csv");
    std::fs::write(&csv, "a,b\n0.5,1\n0,1.5\n").unwrap();
    fails(
        &["train", "--data", csv.to_str().unwrap(), "--out", o],
        &["big.csv", "line 3, column 2", "outside [0, 1]"],
        &d,
    );
    let npy = d.join("nan.npy");
    std::fs::write(&npy, rbm::modelfile::npy_bytes(&[0.5, f32::NAN, 0.0, 1.0], &[2, 2])).unwrap();
    fails(&["train", "--data", npy.to_str().unwrap(), "--out", o], &["nan.npy", "row 0, column 1", "not a finite"], &d);
    let three = d.join("three.npy");
    std::fs::write(&three, rbm::modelfile::npy_bytes(&[0.5; 8], &[2, 2, 2])).unwrap();
    fails(&["train", "--data", three.to_str().unwrap(), "--out", o], &["three.npy", "3-D"], &d);
    fails(
        &["train", "--data", d.join("missing.npy").to_str().unwrap(), "--out", o],
        &["missing.npy", "No such file"],
        &d,
    );
    let ok = d.join("ok.csv");
    std::fs::write(&ok, "0,1\n1,0\n0,1\n1,0\n").unwrap();
    fails(
        &["train", "--data", ok.to_str().unwrap(), "--out", o, "--eval-every", "1", "--batch-size", "2"],
        &["--eval-every", "--valid FILE or --valid-fraction"],
        &d,
    );
}

#[test]
fn a_gaussian_model_trains_on_the_shipped_digits_samples_and_resumes() {
    let d = tmpdir("gaussian-digits");
    let whole = d.join("whole");
    let printed = run_ok(&strs(&gaussian_args(&whole, 3)));
    assert!(printed.contains("Training epoch 2"), "{printed}");
    let (g, z) = rbm::modelfile::load_gaussian_model(&whole.join("model.safetensors")).unwrap();
    assert_eq!((g.rbm.n_visible, g.rbm.n_hidden), (64, 16), "the label column is not a visible unit");
    assert!(g.sigma.iter().all(|&s| s == 1.0));
    let z = z.expect("--standardize stores the data's statistics");
    // pixel_0 is 0 in every image: mean 0, and a deviation of 1 instead of 0
    assert_eq!((z.mean[0], z.std[0]), (0.0, 1.0));
    assert!(z.std.iter().all(|&s| s > 0.0) && z.mean.iter().any(|&m| m > 1.0));
    let csv = std::fs::read_to_string(whole.join("metrics.csv")).unwrap();
    let costs: Vec<f64> = csv.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    assert!(costs.iter().all(|&c| c < 0.0) && costs[2] > costs[0], "the reconstruction improves: {costs:?}");
    assert!(whole.join("samples.png").exists() && whole.join("filters_at_epoch_2.png").exists());
    // rbm sample draws from it, in the data's units, from the digits
    let s = d.join("sample");
    let (m, dg) = (whole.join("model.safetensors"), digits());
    run_ok(&[
        "sample",
        "--model",
        m.to_str().unwrap(),
        "--data",
        dg.to_str().unwrap(),
        "--label-column",
        "label",
        "--out",
        s.to_str().unwrap(),
        "--samples",
        "2",
        "--plot-every",
        "5",
    ]);
    assert!(s.join("samples.png").exists());
    // stopped after 2 epochs and resumed (the statistics computed again): the same model
    let part = d.join("part");
    run_ok(&strs(&gaussian_args(&part, 2)));
    let ck = rbm::modelfile::load_checkpoint(&part.join("checkpoint.safetensors")).unwrap();
    let mut trainer = ck.trainer;
    trainer.set_epochs(3).unwrap();
    rbm::modelfile::save_checkpoint(&part.join("checkpoint.safetensors"), &mut trainer, &ck.extra).unwrap();
    run_ok(&["train", "--resume", part.to_str().unwrap()]);
    let model = |dir: &Path| std::fs::read(dir.join("model.safetensors")).unwrap();
    assert!(model(&whole) == model(&part), "the resumed Gaussian run differs");
}

#[test]
fn gaussian_flags_are_checked() {
    let d = watched_out("gaussian-flags");
    let (o, dg) = (d.to_str().unwrap(), digits());
    let dgs = dg.to_str().unwrap();
    fails(&["train", "--out", o, "--standardize"], &["--standardize", "--visible gaussian"], &d);
    fails(&["train", "--out", o, "--visible", "gaussian", "--sigma", "0"], &["--sigma", "positive"], &d);
    fails(&["train", "--out", o, "--label-column", "label"], &["--label-column", ".csv"], &d);
    fails(
        &["train", "--out", o, "--data", dgs, "--label-column", "nope", "--visible", "gaussian"],
        &["digits.csv", "no column is named \"nope\""],
        &d,
    );
    // digits' pixels run to 16: binary units refuse them, naming the place
    fails(
        &["train", "--out", o, "--data", dgs, "--label-column", "label"],
        &["digits.csv", "outside [0, 1]", "Gaussian"],
        &d,
    );
    fails(
        &["train", "--out", o, "--data", dgs, "--label-column", "label", "--visible", "gaussian", "--eval-every", "1"],
        &["--eval-every"],
        &d,
    );
}

#[test]
fn eval_of_a_gaussian_model_exact_and_by_ais_agree() {
    // 16 hidden units: exact by enumeration, and AIS (100 runs, 3,000
    // temperatures) within 0.1 nat of it, both in the data's units
    let d = tmpdir("gaussian-eval");
    let run = d.join("run");
    run_ok(&strs(&gaussian_args(&run, 5)));
    let (m, dg) = (run.join("model.safetensors"), digits());
    // `rbm eval --json` of the model on every digit, with `extra` flags
    let eval_json = |extra: &[&str]| -> serde_json::Value {
        let base = ["eval", "--model", m.to_str().unwrap(), "--data", dg.to_str().unwrap(), "--label-column", "label"];
        let out = run_ok(&[&base[..], extra, &["--json"]].concat());
        serde_json::from_str(out.trim()).unwrap()
    };
    let eval = |estimator: &str| {
        let v = eval_json(&["--estimator", estimator, "--ais-steps", "3000"]);
        assert_eq!(v["estimator"], estimator);
        assert_eq!(v["n_images"], 1797);
        v["avg_ll"].as_f64().unwrap()
    };
    let (exact, ais) = (eval("exact"), eval("ais"));
    assert!(exact.is_finite() && exact < 0.0, "{exact}");
    assert!((exact - ais).abs() < 0.1, "exact {exact}, AIS {ais}");
    // RAISE on every row: not above the exact figure beyond its error bar, and near it
    let v = eval_json(&["--estimator", "raise", "--raise-images", "1797", "--raise-steps", "3000"]);
    let (raise, hi) = (v["avg_ll"].as_f64().unwrap(), v["avg_ll_hi"].as_f64().unwrap());
    // hi = raise + 3 s.e.: RAISE must not exceed the exact figure by more than that
    assert!(raise <= exact + (hi - raise), "RAISE {raise} (+3 s.e. {hi}) above exact {exact}");
    assert!(raise > exact - 1.0, "RAISE {raise} far below exact {exact}");
}

#[test]
fn features_of_a_gaussian_model_are_p_h_given_the_standardised_rows() {
    let d = tmpdir("gaussian-features");
    let run = d.join("run");
    run_ok(&strs(&gaussian_args(&run, 2)));
    let (m, dg, out) = (run.join("model.safetensors"), digits(), d.join("f.npy"));
    run_ok(&[
        "features",
        "--model",
        m.to_str().unwrap(),
        "--data",
        dg.to_str().unwrap(),
        "--label-column",
        "label",
        "--out",
        out.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&out).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[10..10 + header_len]);
    assert!(header.contains("'shape': (1797, 16)"), "{header}");
    let got: Vec<f32> =
        bytes[10 + header_len..].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    // the same from the library: the rows, standardised, through p(h | v)
    let (g, z) = rbm::modelfile::load_gaussian_model(&m).unwrap();
    let mut t = rbm::csv::read_csv(&dg, None).unwrap();
    t.take_column("label").unwrap();
    let mut v = t.values.clone();
    z.unwrap().apply(&mut v);
    let want = g.prob_h_given_v(&v);
    assert_eq!(got.len(), want.len());
    for (a, b) in got.iter().zip(&want) {
        assert!((*a as f64 - b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[test]
fn filters_of_rows_that_are_not_square_images_take_an_image_shape() {
    let d = tmpdir("image-shape");
    let csv = d.join("six.csv");
    let rows: String =
        (0..40).map(|i| format!("{},{},{},{},{},{}\n", i % 2, (i / 2) % 2, 1, 0, i % 2, 1 - i % 2)).collect();
    std::fs::write(&csv, rows).unwrap();
    let run = d.join("run");
    run_ok(&[
        "train",
        "--data",
        csv.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--hidden",
        "4",
        "--batch-size",
        "4",
        "--epochs",
        "1",
    ]);
    let (m, png) = (run.join("model.safetensors"), d.join("f.png"));
    let (m, p) = (m.to_str().unwrap(), png.to_str().unwrap());
    fails(&["filters", "--model", m, "--out", p], &["6 visible units", "--image-shape"], &run);
    fails(
        &["filters", "--model", m, "--out", p, "--image-shape", "2x4"],
        &["--image-shape 2x4", "8 pixels", "6 visible"],
        &run,
    );
    fails(&["filters", "--model", m, "--out", p, "--image-shape", "six"], &["--image-shape six", "HxW"], &run);
    run_ok(&["filters", "--model", m, "--out", p, "--image-shape", "2x3"]);
    let g = rbm::images::read_png(&png).unwrap();
    // 10 x 10 tiles of 2 x 3 pixels with 1-pixel gaps
    assert_eq!((g.width, g.height), (10 * 4 - 1, 10 * 3 - 1));
}

#[test]
fn a_valid_file_gives_the_monitors_of_a_file_run() {
    // the digits split in two files: 1,500 rows to train on, 297 to validate
    let d = tmpdir("valid-file");
    let text = std::fs::read_to_string(digits()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (train, valid) = (d.join("train.csv"), d.join("valid.csv"));
    std::fs::write(&train, lines[..1501].join("\n")).unwrap();
    std::fs::write(&valid, [&lines[..1], &lines[1501..]].concat().join("\n")).unwrap();
    let out = d.join("run");
    let mut args = gaussian_args_on(&train, &out, 3);
    args.extend(["--valid".to_string(), valid.to_str().unwrap().to_string()]);
    run_ok(&strs(&args));
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert!(f[5].parse::<f64>().unwrap().is_finite() && f[6].parse::<f64>().unwrap() > 0.0, "{csv}");
    }
    // a validation file of other columns is refused, naming it
    let narrow = d.join("narrow.csv");
    std::fs::write(&narrow, "a,label\n1,0\n2,1\n").unwrap();
    let o2 = d.join("run2");
    let err = rbm()
        .args([
            "train",
            "--data",
            train.to_str().unwrap(),
            "--valid",
            narrow.to_str().unwrap(),
            "--label-column",
            "label",
            "--visible",
            "gaussian",
            "--out",
            o2.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let msg = String::from_utf8_lossy(&err.stderr);
    assert!(!err.status.success() && msg.contains("narrow.csv") && msg.contains("--valid"), "{msg}");
}

/// Regression: the pretraining line (i) asked its trainer for the default
/// 50,000 training rows of a 2,000-row input and stopped the benchmark.
#[test]
fn bench_dbn_only_runs_its_fine_tuning_and_pretraining_lines() {
    let data = shipped();
    let args = ["bench", "--dbn-only", "--updates", "2", "--repeat", "1", "--threads", "2", "--data"];
    let out = run_ok(&[&args[..], &[data.to_str().unwrap()]].concat());
    for line in ["(h) DBN fine-tuning step", "(i) DBN pretraining update", "a layer-epoch of 5,000 updates"] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
}
