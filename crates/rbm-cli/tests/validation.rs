//! Validation rows of a data file: the seeded --valid-fraction split, the
//! --eval-every figure on it, and class labels kept beside the rows.

mod common;
use common::*;

use rbm::split::split_rows;
use rbm::DataRows;
use std::path::{Path, PathBuf};

/// The shipped digits: its header, and its rows as lines of text.
fn digits_lines() -> (String, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits/digits.csv");
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines().map(str::to_string);
    (lines.next().unwrap(), lines.collect())
}

/// The digits (pixels and labels) as parsed numbers: `[1797, 64]` and `[1797]`.
fn digits_values() -> (Vec<f32>, Vec<i64>) {
    let (header, lines) = digits_lines();
    let label = header.split(',').position(|h| h == "label").unwrap();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for l in &lines {
        for (c, v) in l.split(',').enumerate() {
            match c == label {
                true => y.push(v.parse::<i64>().unwrap()),
                false => x.push(v.parse::<f32>().unwrap()),
            }
        }
    }
    (x, y)
}

/// The digits' pixels / 16, values in [0, 1], written to `dir`/x.npy; returns
/// its path, the values `[1797, 64]` and the labels.
fn digits_npy(dir: &Path) -> (PathBuf, Vec<f32>, Vec<i64>) {
    let (x, y) = digits_values();
    let scaled: Vec<f32> = x.iter().map(|v| v / 16.0).collect();
    let data = dir.join("x.npy");
    std::fs::write(&data, rbm::modelfile::npy_bytes(&scaled, &[1797, 64])).unwrap();
    (data, scaled, y)
}

/// A short CD-1 run of binary units on `data` into `run`, with `extra` flags.
fn train_binary(data: &Path, run: &Path, extra: &[&str]) {
    let mut args = vec!["train", "--data", p(data), "--method", "cd", "-k", "1", "--out", p(run)];
    args.extend(["--samples", "1", "--plot-every", "2"]);
    args.extend(extra);
    run_ok(&args);
}

/// The last epoch's validation log-likelihood in a run's metrics.csv.
fn last_valid_ll(run: &Path) -> f64 {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let last = csv.lines().last().unwrap().split(',').collect::<Vec<_>>();
    last[3].parse().unwrap_or_else(|_| panic!("no validation figure in {csv}"))
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_gaussian_runs_validation_figure_on_its_split_equals_rbm_eval_of_those_rows() {
    // 16 hidden units, so both figures are exact: the split (drawn from the
    // seed), the standardisation by the training rows and the change to the
    // data's units must agree to rounding
    let d = tmpdir("split-gaussian");
    let (header, lines) = digits_lines();
    let run = d.join("run");
    let split = ["--seed", "5", "--valid-fraction", "0.2", "--eval-every", "1"].map(String::from);
    let args: Vec<String> = gaussian_args(&run, 2).into_iter().chain(split).collect();
    run_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (_, valid) = split_rows(lines.len(), 0.2, 5).unwrap();
    let vfile = d.join("valid.csv");
    let vlines: Vec<&str> = valid.iter().map(|&i| lines[i as usize].as_str()).collect();
    std::fs::write(&vfile, format!("{header}\n{}\n", vlines.join("\n"))).unwrap();
    let out = rbm()
        .args(["eval", "--model", p(&run.join("model.safetensors")), "--data", p(&vfile)])
        .args(["--label-column", "label", "--estimator", "exact", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (eval, during) = (v["avg_ll"].as_f64().unwrap(), last_valid_ll(&run));
    assert_eq!(v["n_images"], valid.len());
    assert!((eval - during).abs() < 1e-3, "rbm eval {eval}, during training {during}");
    // the same seed, the same run
    let again = d.join("again");
    let args2: Vec<&str> = args.iter().map(|a| if a == p(&run) { p(&again) } else { a.as_str() }).collect();
    run_ok(&args2);
    assert_eq!(
        std::fs::read(run.join("model.safetensors")).unwrap(),
        std::fs::read(again.join("model.safetensors")).unwrap()
    );
}

#[test]
fn a_binary_runs_validation_figure_is_the_exact_log_likelihood_of_its_binarised_split() {
    // digits / 16 as a .npy of values in [0, 1]; 12 hidden units: exact
    let d = tmpdir("split-binary");
    let (data, scaled, _) = digits_npy(&d);
    let run = d.join("run");
    let extra = ["--hidden", "12", "--epochs", "2", "--valid-fraction", "0.1", "--eval-every", "1"];
    train_binary(&data, &run, &extra);
    let (rbm, _) = rbm::modelfile::load_model(&run.join("model.safetensors")).unwrap();
    let (_, valid) = split_rows(1797, 0.1, 1234).unwrap();
    let mut v: Vec<f32> = valid.iter().flat_map(|&i| scaled[i as usize * 64..(i as usize + 1) * 64].to_vec()).collect();
    rbm::data::binarize_values(&mut v, 1234);
    let exact = rbm::estimate::mean_neg_free_energy(&rbm, &v) - rbm::estimate::exact_log_z(&rbm, 1);
    let during = last_valid_ll(&run);
    assert!((exact - during).abs() < 1e-3, "exact {exact}, during training {during}");
}

#[test]
fn labels_are_checked_against_the_rows_and_written_beside_the_features() {
    let d = watched_out("labels");
    let (data, _, y) = digits_npy(&d);
    let labels = d.join("y.npy");
    std::fs::write(&labels, rbm::modelfile::npy_i64_bytes(&y)).unwrap();
    let run = d.join("run");
    train_binary(&data, &run, &["--labels", p(&labels), "--hidden", "8", "--epochs", "1"]);
    let (feat, lab) = (d.join("f.npy"), d.join("l.npy"));
    let model = run.join("model.safetensors");
    run_ok(&[
        "features",
        "--model",
        p(&model),
        "--data",
        p(&data),
        "--labels",
        p(&labels),
        "--out",
        p(&feat),
        "--labels-out",
        p(&lab),
    ]);
    assert_eq!(rbm::npy::read_labels(&lab).unwrap(), y);
    assert_eq!(rbm::npy::NpyFile::open(&feat).unwrap().n_rows(), 1797);

    // a label short, float labels, labels for MNIST, --labels-out without labels
    let short = d.join("short.npy");
    std::fs::write(&short, rbm::modelfile::npy_i64_bytes(&y[1..])).unwrap();
    let floats = d.join("floats.npy");
    std::fs::write(&floats, rbm::modelfile::npy_bytes(&[1.0; 1797], &[1797])).unwrap();
    let o = d.join("never");
    let train = |l: &PathBuf| {
        vec!["train", "--data", p(&data), "--labels", p(l), "--out", p(&o)]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let t = train(&short);
    fails(
        &t.iter().map(String::as_str).collect::<Vec<_>>(),
        &["--labels", "short.npy", "1796 labels for the 1797 rows"],
        &d,
    );
    let t = train(&floats);
    fails(&t.iter().map(String::as_str).collect::<Vec<_>>(), &["floats.npy", "no integer type"], &d);
    fails(&["train", "--labels", p(&labels), "--out", p(&o)], &["--labels", "MNIST brings its labels"], &d);
    fails(
        &["features", "--model", p(&model), "--data", p(&data), "--out", p(&o), "--labels-out", p(&lab)],
        &["--labels-out", "no labels"],
        &d,
    );
    fails(
        &["train", "--data", p(&data), "--valid-fraction", "1", "--out", p(&o)],
        &["--valid-fraction", "between 0 and 1"],
        &d,
    );
    fails(&["train", "--valid-fraction", "0.1", "--out", p(&o)], &["required arguments"], &d);
}
