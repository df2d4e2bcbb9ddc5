//! The command line on bad input: a one-line error naming the file or flag,
//! a non-zero exit, no panic, and no existing file changed. Also the
//! checkpoint, resume and signal paths, end to end.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[test]
fn out_of_range_flags_name_the_flag() {
    let out = watched_out("flags");
    let o = out.to_str().unwrap();
    for (flags, name) in [
        (vec!["--batch-size", "0"], "--batch-size"),
        (vec!["-k", "0"], "-k"),
        (vec!["--lr", "0"], "--lr"),
        (vec!["--lr", "-1"], "--lr"),
        (vec!["--lr", "NaN"], "--lr"),
        (vec!["--train-size", "0"], "--train-size"),
        (vec!["--train-size", "50001"], "--train-size"),
        (vec!["--chains", "10001"], "--chains"),
        (vec!["--threads", "0"], "--threads"),
    ] {
        let mut args = vec!["train", "--out", o];
        args.extend(flags);
        fails(&args, &[name], &out);
    }
}

/// A data directory of symlinks to the shipped files, with `name` replaced by `bytes` (plain).
fn data_with(name: &str, dir: &str, bytes: Option<&[u8]>) -> PathBuf {
    let d = tmpdir(dir);
    for f in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    {
        if f != name {
            std::os::unix::fs::symlink(shipped().join(format!("{f}.gz")), d.join(format!("{f}.gz"))).unwrap();
        }
    }
    if let Some(b) = bytes {
        std::fs::write(d.join(name), b).unwrap();
    }
    d
}

fn idx(magic: u32, dims: &[u32], payload: usize) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend(std::iter::repeat_n(0u8, payload));
    b
}

#[test]
fn bad_data_files_are_named() {
    let out = watched_out("data");
    let o = out.to_str().unwrap();
    fails(&["train", "--data", "/nonexistent/mnist", "--out", o], &["/nonexistent/mnist", "does not exist"], &out);

    // truncated gzip: the first half of the real test-label file
    let gz = std::fs::read(shipped().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let d = data_with("t10k-labels-idx1-ubyte", "trunc", None);
    std::fs::write(d.join("t10k-labels-idx1-ubyte.gz"), &gz[..gz.len() / 2]).unwrap();
    fails(&["train", "--data", d.to_str().unwrap(), "--out", o], &["t10k-labels-idx1-ubyte.gz", "gzip"], &out);

    let d = data_with("t10k-images-idx3-ubyte", "magic", Some(&idx(0x0804, &[1, 28, 28], 784)));
    fails(&["train", "--data", d.to_str().unwrap(), "--out", o], &["t10k-images-idx3-ubyte", "magic"], &out);

    let d = data_with("t10k-images-idx3-ubyte", "dims", Some(&idx(0x0803, &[10, 27, 29], 10 * 27 * 29)));
    fails(&["train", "--data", d.to_str().unwrap(), "--out", o], &["t10k-images-idx3-ubyte", "27x29", "28x28"], &out);

    let d = tmpdir("count");
    for f in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"] {
        std::os::unix::fs::symlink(shipped().join(format!("{f}.gz")), d.join(format!("{f}.gz"))).unwrap();
    }
    std::fs::write(d.join("t10k-images-idx3-ubyte"), idx(0x0803, &[10, 28, 28], 10 * 784)).unwrap();
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx(0x0801, &[9], 9)).unwrap();
    fails(
        &["train", "--data", d.to_str().unwrap(), "--out", o],
        &["t10k-labels-idx1-ubyte", "9 labels for 10 images"],
        &out,
    );
}

#[test]
fn an_unwritable_output_directory_is_named() {
    let d = watched_out("unwritable");
    let blocker = d.join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let target = blocker.join("sub");
    fails(&["train", "--out", target.to_str().unwrap(), "--train-size", "40"], &["--out", "sub"], &d);
}

#[test]
fn bad_model_files_are_named() {
    let run = small_run();
    let good = std::fs::read(run.join("model.safetensors")).unwrap();
    let d = watched_out("models");
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(good[8..8 + header_len].to_vec()).unwrap();
    let with_header = |h: &str| {
        let mut b = (h.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(h.as_bytes());
        b.extend_from_slice(&good[8 + header_len..]);
        b
    };
    // a flipped byte in the header's structure (its first quote: a flip inside a
    // metadata string would be a valid, if different, file)
    let mut flipped = good.clone();
    let quote = 8 + good[8..8 + header_len].iter().position(|&c| c == b'"').unwrap();
    flipped[quote] ^= 0x55;
    let mut nan = good.clone();
    let at = good.len() - 4; // the last value of the last tensor
    nan[at..].copy_from_slice(&f32::NAN.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        ("truncated.safetensors", good[..good.len() - 100].to_vec(), vec!["truncated.safetensors", "safetensors"]),
        ("flipped.safetensors", flipped, vec!["flipped.safetensors"]),
        ("nan.safetensors", nan, vec!["nan.safetensors", "non-finite"]),
        (
            "missing.safetensors",
            with_header(&header.replace("\"hbias\"", "\"hbiaz\"")),
            vec!["missing.safetensors", "`hbias` is missing"],
        ),
    ];
    for (name, bytes, needles) in cases {
        let p = d.join(name);
        std::fs::write(&p, &bytes).unwrap();
        let o = d.join("f.png");
        fails(&["filters", "--model", p.to_str().unwrap(), "--out", o.to_str().unwrap()], &needles, &d);
    }
    // wrong and inconsistent shapes, written with the library's own writer
    let st = |tensors: &[(&str, Vec<usize>, &[f32])]| rbm::modelfile::safetensors_bytes(tensors, Default::default());
    let v = vec![0.5f32; 784 * 16];
    let shapes: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "w1d.safetensors",
            st(&[("W", vec![784 * 16], &v), ("hbias", vec![16], &v[..16]), ("vbias", vec![784], &v[..784])]),
            "`W` has shape [12544]",
        ),
        (
            "hb.safetensors",
            st(&[("W", vec![784, 16], &v), ("hbias", vec![15], &v[..15]), ("vbias", vec![784], &v[..784])]),
            "`hbias` has shape [15], expected [16]",
        ),
        (
            "vb.safetensors",
            st(&[("W", vec![784, 16], &v), ("hbias", vec![16], &v[..16]), ("vbias", vec![783], &v[..783])]),
            "`vbias` has shape [783], expected [784]",
        ),
    ];
    for (name, bytes, needle) in shapes {
        let p = d.join(name);
        std::fs::write(&p, &bytes).unwrap();
        let o = d.join("f.png");
        fails(&["sample", "--model", p.to_str().unwrap(), "--out", d.to_str().unwrap()], &[name, needle], &d);
        fails(&["filters", "--model", p.to_str().unwrap(), "--out", o.to_str().unwrap()], &[name, needle], &d);
    }
}

#[test]
fn a_checkpoint_of_another_configuration_is_refused() {
    let run = small_run();
    let d = watched_out("otherconf");
    for f in ["checkpoint.safetensors", "model.safetensors"] {
        std::fs::copy(run.join(f), d.join(f)).unwrap();
    }
    let o = d.to_str().unwrap();
    fails(
        &["train", "--out", o, "--train-size", "200", "--epochs", "1", "--hidden", "17", "-k", "1"],
        &["checkpoint.safetensors", "different configuration", "--resume"],
        &d,
    );
    fails(&["train", "--resume", "/nonexistent/run"], &["--resume", "/nonexistent/run"], &d);
}

#[test]
fn features_and_filters_of_a_saved_model() {
    let run = small_run();
    let d = tmpdir("features");
    let npy = d.join("f.npy");
    let out = rbm()
        .args([
            "features",
            "--model",
            run.join("model.safetensors").to_str().unwrap(),
            "--split",
            "valid",
            "--out",
            npy.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let b = std::fs::read(&npy).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    assert!(header.contains("'shape': (10000, 16)") && header.contains("'<f4'"), "{header}");
    assert_eq!((10 + hl) % 64, 0);
    assert_eq!(b.len(), 10 + hl + 10_000 * 16 * 4);
    let png = d.join("filters.png");
    let out = rbm()
        .args(["filters", "--model", run.join("model.safetensors").to_str().unwrap(), "--out", png.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let g = rbm::images::read_png(&png).unwrap();
    assert_eq!((g.width, g.height), (289, 289));
}

#[test]
fn stop_and_resume_gives_the_same_model_as_one_run() {
    // A 3-epoch run against the same run stopped after epoch 2 (its checkpoint
    // relabelled as belonging to a 3-epoch run) and resumed.
    for method in ["pcd", "cd"] {
        let whole = tmpdir(&format!("whole-{method}"));
        assert!(rbm().args(train_args(&whole, method, 600, 3)).output().unwrap().status.success());
        let part = tmpdir(&format!("part-{method}"));
        assert!(rbm().args(train_args(&part, method, 600, 2)).output().unwrap().status.success());
        let ck = rbm::modelfile::load_checkpoint(&part.join("checkpoint.safetensors")).unwrap();
        let mut trainer = ck.trainer;
        trainer.set_epochs(3).unwrap();
        rbm::modelfile::save_checkpoint(&part.join("checkpoint.safetensors"), &mut trainer, &ck.extra).unwrap();
        let out = rbm().args(["train", "--resume", part.to_str().unwrap()]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let a = std::fs::read(whole.join("model.safetensors")).unwrap();
        let b = std::fs::read(part.join("model.safetensors")).unwrap();
        assert!(a == b, "{method}: resumed model differs from the uninterrupted run's");
        assert_eq!(std::fs::read(whole.join("samples.png")).unwrap(), std::fs::read(part.join("samples.png")).unwrap());
    }
}

#[test]
fn sigint_mid_epoch_leaves_a_checkpoint_that_resume_finishes() {
    // The tutorial's model size, so that an epoch of 100 minibatches lasts long
    // enough (about half a second) for the signal to land inside it.
    let args = |out: &Path| sized_args(out, "pcd", 2000, 3, 500, 15);
    let whole = tmpdir("sig-whole");
    assert!(rbm().args(args(&whole)).output().unwrap().status.success());

    let cut = tmpdir("sig-cut");
    let mut child = rbm().args(args(&cut)).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // wait for the first epoch to finish, then interrupt early in the second
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let l = lines.next().expect("training output").unwrap();
        if l.starts_with("Training epoch 0") {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted at epoch 1, minibatch") && err.contains("--resume"), "{err}");
    let ck = rbm::modelfile::load_checkpoint(&cut.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ck.trainer.epoch(), 1);
    assert!(ck.trainer.batch_index() > 0, "the signal should land mid-epoch");
    assert!(!cut.join("model.safetensors").exists());
    let out = rbm().args(["train", "--resume", cut.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        std::fs::read(whole.join("model.safetensors")).unwrap()
            == std::fs::read(cut.join("model.safetensors")).unwrap()
    );
}

#[test]
fn python_opens_the_model_file_and_the_features() {
    // Runs where Python has safetensors and numpy (.ci/run installs them and
    // sets RBM_PYTHON_TESTS=1, which makes their absence a failure).
    let have = Command::new("python3").args(["-c", "import safetensors, numpy"]).status().is_ok_and(|s| s.success());
    if !have {
        assert!(
            std::env::var("RBM_PYTHON_TESTS").is_err(),
            "RBM_PYTHON_TESTS is set but python3 lacks safetensors/numpy"
        );
        eprintln!("skipped: python3 with safetensors and numpy not found");
        return;
    }
    let run = small_run();
    let model = run.join("model.safetensors");
    let npy = tmpdir("py").join("f.npy");
    let out = rbm()
        .args(["features", "--model", model.to_str().unwrap(), "--split", "test", "--out", npy.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let script = format!(
        "from safetensors.numpy import load_file\nfrom safetensors import safe_open\nimport numpy as np\n\
         m = load_file({model:?})\nf = np.load({npy:?})\n\
         meta = safe_open({model:?}, 'np').metadata()\n\
         print(m['W'].shape, m['hbias'].shape, m['vbias'].shape, m['W'].dtype, f.shape, f.dtype, meta['format_version'], meta['epochs_done'])\n\
         print(repr(float(m['W'][3, 5])), repr(float(f[7, 2])))"
    );
    let out = Command::new("python3").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), "(784, 16) (16,) (784,) float32 (10000, 16) float32 1 1");
    let (rbm, _) = rbm::modelfile::load_model(&model).unwrap();
    let data = rbm::data::load_mnist(&shipped()).unwrap();
    let f = rbm.propup(&data.test.slice(7..8).to_f32()).mean;
    let got: Vec<f64> = lines.next().unwrap().split(' ').map(|x| x.parse().unwrap()).collect();
    assert_eq!(got, vec![rbm.w[3 * 16 + 5] as f64, f[2] as f64], "Python reads other values");
}
