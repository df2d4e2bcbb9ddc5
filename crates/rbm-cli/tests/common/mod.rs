//! Helpers of the command-line tests: the binary, temporary directories,
//! snapshots of files, and small training runs.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn rbm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rbm"))
}

/// Runs `args`, expecting success; returns stdout.
pub fn run_ok(args: &[&str]) -> String {
    let out = rbm().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rbm-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every file under `dir` with its bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut m = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                m.extend(snapshot(&p));
            } else {
                m.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    m
}

/// Runs `args`, expecting failure with every `needles` in a one-line error,
/// and `watched` unchanged.
pub fn fails(args: &[&str], needles: &[&str], watched: &Path) -> String {
    let before = snapshot(watched);
    let out: Output = rbm().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    let line =
        err.lines().find(|l| l.starts_with("error")).unwrap_or_else(|| panic!("{args:?}: no error line in {err}"));
    for n in needles {
        assert!(line.contains(n), "{args:?}: {line:?} lacks {n:?}");
    }
    assert_eq!(before, snapshot(watched), "{args:?} changed files");
    line.to_string()
}

/// A directory with a sentinel file, to show nothing is touched.
pub fn watched_out(name: &str) -> PathBuf {
    let d = tmpdir(name);
    std::fs::write(d.join("keep.txt"), b"precious").unwrap();
    d
}

/// A small model file from a short training run (once per test binary).
pub fn small_run() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let d = tmpdir("small");
        let out = rbm()
            .args([
                "train",
                "--out",
                d.to_str().unwrap(),
                "--train-size",
                "200",
                "--epochs",
                "1",
                "--hidden",
                "16",
                "-k",
                "1",
                "--samples",
                "1",
                "--plot-every",
                "5",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        d
    })
    .clone()
}

pub fn train_args(out: &Path, method: &str, train_size: usize, epochs: usize) -> Vec<String> {
    sized_args(out, method, train_size, epochs, 40, 2)
}

pub fn sized_args(out: &Path, method: &str, train_size: usize, epochs: usize, hidden: usize, k: usize) -> Vec<String> {
    let (ts, ep, h, k) = (train_size.to_string(), epochs.to_string(), hidden.to_string(), k.to_string());
    [
        "train",
        "--out",
        out.to_str().unwrap(),
        "--method",
        method,
        "--train-size",
        &ts,
        "--epochs",
        &ep,
        "--hidden",
        &h,
        "-k",
        &k,
        "--samples",
        "1",
        "--plot-every",
        "10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The shipped real-valued data set (8 x 8 digits with a label column).
pub fn digits() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits/digits.csv")
}

/// A short Gaussian run on the shipped digits into `out`.
pub fn gaussian_args(out: &Path, epochs: usize) -> Vec<String> {
    gaussian_args_on(&digits(), out, epochs)
}

/// A short Gaussian run (16 hidden units, CD-1, standardised) on `data`, a CSV
/// with a `label` column, into `out`.
pub fn gaussian_args_on(data: &Path, out: &Path, epochs: usize) -> Vec<String> {
    let (d, o, e) = (data.to_str().unwrap(), out.to_str().unwrap(), epochs.to_string());
    let args = ["train", "--data", d, "--label-column", "label", "--visible", "gaussian", "--standardize"];
    let more = ["--hidden", "16", "--method", "cd", "-k", "1", "--lr", "0.01", "--batch-size", "20", "--epochs", &e];
    let pictures = ["--samples", "2", "--plot-every", "10", "--out", o];
    args.iter().chain(&more).chain(&pictures).map(|s| s.to_string()).collect()
}
