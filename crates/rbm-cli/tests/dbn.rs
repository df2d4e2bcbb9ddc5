//! `rbm dbn`: a small run end to end, its evaluation and predictions against
//! the library's, resume after Ctrl-C in either phase, and refusals.

mod common;
use common::*;

#[test]
fn a_small_dbn_trains_evaluates_and_predicts_as_the_library_does() {
    let d = tmpdir("dbn-run");
    let out = d.join("run");
    let o = out.to_str().unwrap();
    run_ok(&[
        "dbn",
        "train",
        "--layers",
        "50,30",
        "--pretrain-epochs",
        "2",
        "--train-size",
        "2000",
        "--max-epochs",
        "5",
        "--out",
        o,
    ]);
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.starts_with("pretrain,")).count(), 4, "{csv}");
    assert_eq!(csv.lines().filter(|l| l.starts_with("finetune,")).count(), 5, "{csv}");
    let filters = rbm::images::read_png(&out.join("filters_layer_0.png")).unwrap();
    assert!(filters.width > 0 && filters.height > 0);
    let model = out.join("dbn.safetensors");
    let (net, meta) = rbm::modelfile::load_dbn(&model).unwrap();
    assert_eq!(meta["sizes"], "784,50,30,10");
    // the evaluation of the saved (best) model is the test error recorded at its validation
    let json = run_ok(&["dbn", "eval", "--model", model.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    let error = v["error_rate"].as_f64().unwrap();
    assert_eq!(error, meta["test_error"].parse::<f64>().unwrap());
    assert!(error < 0.5, "a DBN at chance level: {error}");
    let total: u64 = v["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(total, 10_000);
    let picture = rbm::images::read_png(&out.join("misclassified_test.png")).unwrap();
    assert_eq!(picture.width, 10 * 29 - 1, "10 digits of 28 pixels a row, 1-pixel gaps");
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(page.contains("learning_curves.svg") && page.contains("misclassified.png") && page.contains("finetune"));
    assert!(std::fs::read_to_string(out.join("learning_curves.svg")).unwrap().contains("fine-tuning error"));
    // predictions of 50 test images, from a uint8 .npy, as the library computes them
    let mnist = rbm::data::load_mnist(&shipped()).unwrap();
    let images = mnist.test.slice(0..50);
    let (x, p) = (d.join("x.npy"), d.join("p.npy"));
    let mut npy = rbm::modelfile::npy_bytes(&[0.0; 50 * 784], &[50, 784]);
    // the same header for uint8: rewrite the dtype and the values
    let header_end = npy.len() - 50 * 784 * 4;
    npy.truncate(header_end);
    let at = npy.windows(5).position(|w| w == b"'<f4'").unwrap();
    npy[at..at + 5].copy_from_slice(b"'|u1'");
    npy.extend_from_slice(&images.pixels);
    std::fs::write(&x, npy).unwrap();
    run_ok(&[
        "dbn",
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        x.to_str().unwrap(),
        "--out",
        p.to_str().unwrap(),
    ]);
    let f = rbm::npy::NpyFile::open(&p).unwrap();
    let mut got = vec![0f32; 50 * 10];
    rbm::DataRows::copy_rows(&f, 0, &mut got).unwrap();
    assert_eq!(got, net.predict_proba(&images.to_f32()));
    // samples: 3 chains, 2 rows of 28 x 28 images with 1-pixel gaps
    let s = d.join("samples");
    run_ok(&[
        "dbn",
        "sample",
        "--model",
        model.to_str().unwrap(),
        "--out",
        s.to_str().unwrap(),
        "--chains",
        "3",
        "--samples",
        "2",
        "--plot-every",
        "5",
    ]);
    let png = rbm::images::read_png(&s.join("samples.png")).unwrap();
    assert_eq!((png.width, png.height), (3 * 29 - 1, 2 * 29 + 1));
}

#[test]
fn bad_dbn_flags_and_inputs_are_refused() {
    let d = watched_out("dbn-bad");
    let o = d.join("never");
    let o = o.to_str().unwrap();
    fails(&["dbn", "train", "--layers", "10,0", "--out", o], &["--layers"], &d);
    fails(&["dbn", "train", "--finetune-lr", "0", "--out", o], &["--finetune-lr"], &d);
    fails(&["dbn", "train", "--dropout-hidden", "1", "--out", o], &["--dropout-hidden", "[0, 1)"], &d);
    fails(&["dbn", "train", "--dropout-input", "-0.1", "--out", o], &["--dropout-input"], &d);
    fails(&["dbn", "eval", "--model", d.join("missing.safetensors").to_str().unwrap()], &["missing.safetensors"], &d);
    let rbm_file = d.join("rbm.safetensors");
    let rbm = rbm::Rbm::init(784, 5, 1).unwrap();
    rbm::modelfile::save_model(&rbm_file, &rbm, Default::default()).unwrap();
    fails(&["dbn", "eval", "--model", rbm_file.to_str().unwrap()], &["rbm.safetensors", "not a DBN file"], &d);
}

#[test]
fn a_dbn_trains_on_a_data_file_with_labels_and_a_seeded_validation_split() {
    // the shipped digits scaled into [0, 1] as a .npy, their labels as another
    let d = tmpdir("dbn-file");
    let mut t = rbm::csv::read_csv(&digits(), None).unwrap();
    let labels = t.take_labels("label").unwrap();
    let x: Vec<f32> = t.values.iter().map(|v| v / 16.0).collect();
    let (xs, ys, out) = (d.join("x.npy"), d.join("y.npy"), d.join("run"));
    std::fs::write(&xs, rbm::modelfile::npy_bytes(&x, &[1797, 64])).unwrap();
    std::fs::write(&ys, rbm::modelfile::npy_i64_bytes(&labels)).unwrap();
    let (xp, yp, o) = (xs.to_str().unwrap(), ys.to_str().unwrap(), out.to_str().unwrap());
    let args = ["dbn", "train", "--data", xp, "--labels", yp, "--layers", "40", "--pretrain-epochs", "2"];
    let printed = run_ok(&[&args[..], &["--max-epochs", "10", "--valid-fraction", "0.2", "--out", o]].concat());
    assert!(printed.contains("no test split"), "{printed}");
    let (net, meta) = rbm::modelfile::load_dbn(&out.join("dbn.safetensors")).unwrap();
    assert_eq!(meta["sizes"], "64,40,10");
    // the recorded validation error is the saved model's on the seeded split's rows
    let (_, valid) = rbm::split::split_rows(1797, 0.2, 1234).unwrap();
    let vx: Vec<f32> = valid.iter().flat_map(|&i| x[i as usize * 64..(i as usize + 1) * 64].to_vec()).collect();
    let vy: Vec<usize> = valid.iter().map(|&i| labels[i as usize] as usize).collect();
    let err = net.error_rate(&vx, &vy, 3);
    assert_eq!(err, meta["best_valid_error"].parse::<f64>().unwrap());
    assert!(err < 0.2, "validation error {err}");
    // without labels, the run is refused before anything is written
    let w = watched_out("dbn-file-bad");
    let never = w.join("never");
    fails(&["dbn", "train", "--data", xp, "--out", never.to_str().unwrap()], &["x.npy", "--labels"], &w);
}

/// `rbm dbn train` of 300-200 units on 5,000 images into `out`, fine-tuned
/// with dropout: about a tenth of a second per epoch of either phase, long
/// enough for a signal sent at the start of a phase to land inside it.
fn resumable_args(out: &std::path::Path) -> Vec<String> {
    let args = "dbn train --layers 300,200 --pretrain-epochs 3 --max-epochs 4 --train-size 5000 --threads 2 \
                --dropout-input 0.2 --dropout-hidden 0.5 --out";
    args.split(' ').map(String::from).chain([out.to_str().unwrap().to_string()]).collect()
}

/// Runs `args` until stdout shows a line starting with `after`, sends
/// SIGINT, and returns the run's stderr (checking its exit status, 130).
fn interrupt_after(args: &[String], after: &str) -> String {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = rbm().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while !lines.next().expect("the run's output").unwrap().starts_with(after) {}
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(130), "{err}");
    err
}

#[test]
fn dbn_resume_after_ctrl_c_in_either_phase_writes_the_same_files() {
    let whole = tmpdir("dbn-whole");
    run_ok(&resumable_args(&whole).iter().map(String::as_str).collect::<Vec<_>>());
    let same = |dir: &std::path::Path, phase: &str| {
        for f in ["dbn.safetensors", "metrics.csv"] {
            assert!(
                std::fs::read(whole.join(f)).unwrap() == std::fs::read(dir.join(f)).unwrap(),
                "{phase}: {f} differs"
            );
        }
    };
    // stopped while layer 1 is pretrained (from its own checkpoint, mid-epoch or not)
    let cut = tmpdir("dbn-cut-pretraining");
    let err = interrupt_after(&resumable_args(&cut), "Pre-training layer 0");
    assert!(err.contains("interrupted in pretraining layer 1") && err.contains("--resume"), "{err}");
    assert!(!cut.join("dbn.safetensors").exists() && cut.join("layer_checkpoint.safetensors").exists());
    run_ok(&["dbn", "train", "--resume", cut.to_str().unwrap()]);
    same(&cut, "pretraining");
    // stopped while fine-tuning, after the first epoch's validation
    let cut = tmpdir("dbn-cut-tuning");
    let err = interrupt_after(&resumable_args(&cut), "epoch 0, minibatch");
    assert!(err.contains("interrupted in fine-tuning epoch"), "{err}");
    run_ok(&["dbn", "train", "--resume", cut.to_str().unwrap(), "--threads", "1"]);
    same(&cut, "fine-tuning");
    // a finished run is not resumed, other flags beside --resume are refused,
    // and a fresh run of other settings keeps off another run's checkpoint
    fails(&["dbn", "train", "--resume", cut.to_str().unwrap()], &["complete"], &cut);
    fails(&["dbn", "train", "--resume", cut.to_str().unwrap(), "--layers", "5"], &["--layers"], &cut);
    let busy = tmpdir("dbn-busy");
    let err = interrupt_after(&resumable_args(&busy), "Pre-training layer 0");
    assert!(err.contains("interrupted"), "{err}");
    let o = busy.to_str().unwrap();
    fails(&["dbn", "train", "--layers", "20", "--out", o], &["checkpoint of a different run", "--resume"], &busy);
}

#[test]
fn fine_tuning_a_runs_pretrained_stack_again_gives_the_runs_network() {
    // a run writes its stack before fine-tuning; `--pretrained` fine-tunes it
    // with the same settings (here on one thread, the run on two) to the same network
    let whole = tmpdir("dbn-stack");
    run_ok(&resumable_args(&whole).iter().map(String::as_str).collect::<Vec<_>>());
    let stack = whole.join("pretrained.safetensors");
    let again = tmpdir("dbn-again");
    let (s, o) = (stack.to_str().unwrap(), again.to_str().unwrap());
    let tuning = "--max-epochs 4 --train-size 5000 --threads 1 --dropout-input 0.2 --dropout-hidden 0.5";
    let args = [&["dbn", "train", "--pretrained", s, "--out", o][..], &tuning.split(' ').collect::<Vec<_>>()].concat();
    let printed = run_ok(&args);
    assert!(!printed.contains("Pre-training"), "{printed}");
    let (first, _) = rbm::modelfile::load_dbn(&whole.join("dbn.safetensors")).unwrap();
    let (second, meta) = rbm::modelfile::load_dbn(&again.join("dbn.safetensors")).unwrap();
    assert!(first == second, "fine-tuning the saved stack gave another network");
    assert!(meta["args"].contains("\"layers\":[300,200]"), "{}", meta["args"]);
    // the stack is the pretrained one, not the fine-tuned network
    let (pretrained, _) = rbm::modelfile::load_dbn(&stack).unwrap();
    assert_eq!(pretrained.layers.len(), 2);
    assert!(pretrained.layers[0].w != first.layers[0].w && pretrained.classifier_w.iter().all(|&w| w == 0.0));
    // not a DBN file, and --layers beside --pretrained, are refused
    let w = watched_out("dbn-stack-bad");
    let never = w.join("never");
    let rbm_file = w.join("rbm.safetensors");
    rbm::modelfile::save_model(&rbm_file, &rbm::Rbm::init(784, 5, 1).unwrap(), Default::default()).unwrap();
    let (r, n) = (rbm_file.to_str().unwrap(), never.to_str().unwrap());
    fails(&["dbn", "train", "--pretrained", r, "--out", n], &["rbm.safetensors", "not a DBN file"], &w);
    fails(&["dbn", "train", "--pretrained", s, "--layers", "5", "--out", n], &["--pretrained", "--layers"], &w);
    // the dropout preset's fine-tuning on the same stack: its flags recorded
    let preset = tmpdir("dbn-preset");
    let p = preset.to_str().unwrap();
    run_ok(&["dbn", "train", "--preset", "dropout", "--pretrained", s, "--train-size", "1000", "--out", p]);
    let (_, meta) = rbm::modelfile::load_dbn(&preset.join("dbn.safetensors")).unwrap();
    for field in ["\"max_epochs\":120", "\"dropout_input\":0.1", "\"dropout_hidden\":0.2", "\"preset\":\"dropout\""] {
        assert!(meta["args"].contains(field), "{field} in {}", meta["args"]);
    }
    fails(&["dbn", "train", "--preset", "dropout", "--max-epochs", "3", "--out", n], &["--preset", "--max-epochs"], &w);
}
