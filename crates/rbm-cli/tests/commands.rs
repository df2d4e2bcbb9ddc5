//! The commands' successful paths: what they write, and that it is right.

mod common;
use common::*;

use std::process::Stdio;

fn run_ok(args: &[&str]) -> String {
    let out = rbm().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

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
