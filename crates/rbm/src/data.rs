//! MNIST in the standard IDX format (gzip or plain), loudly checked.
//!
//! Images are kept as the file's bytes (`u8`, 0..=255) and converted to f32 in
//! [0, 1] (divided by 255, as the tutorial) one minibatch at a time, so the
//! whole data set costs 55 MB instead of 220.

use crate::error::{RbmError, Result};
use crate::rng::Stream;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A set of equally sized grey images, row-major, one byte per pixel.
#[derive(Clone, Debug, PartialEq)]
pub struct Images {
    pub n: usize,
    pub rows: usize,
    pub cols: usize,
    /// `[n, rows * cols]`
    pub pixels: Vec<u8>,
}

/// How grey pixels become the visible units' values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Binarize {
    /// keep the grey level p / 255 (the tutorial)
    None,
    /// 1 where p / 255 >= 0.5
    Threshold,
    /// 1 with probability p / 255, drawn once with a seed
    Stochastic,
}

impl Images {
    /// An empty set with the same image size.
    fn clone_header(&self) -> Images {
        Images { n: 0, rows: self.rows, cols: self.cols, pixels: Vec::new() }
    }

    /// Pixels per image.
    pub fn dim(&self) -> usize {
        self.rows * self.cols
    }

    /// Image i's pixels, `[rows * cols]`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * self.dim()..(i + 1) * self.dim()]
    }

    /// Images `range` as a new set.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Images {
        Images {
            n: range.len(),
            rows: self.rows,
            cols: self.cols,
            pixels: self.pixels[range.start * self.dim()..range.end * self.dim()].to_vec(),
        }
    }

    /// All pixels as f32 in [0, 1], `[n, rows * cols]`.
    pub fn to_f32(&self) -> Vec<f32> {
        self.pixels.iter().map(|&p| PIXEL[p as usize]).collect()
    }

    /// The images binarised as `mode` says (pixels become 0 or 255). For
    /// `Stochastic`, pixel j of image i is 255 with probability p / 255, drawn
    /// from the stream (seed, [`BINARIZE_STREAM`]) in order, so a seed gives one fixed set.
    pub fn binarize(&self, mode: Binarize, seed: u64) -> Images {
        let pixels = match mode {
            Binarize::None => self.pixels.clone(),
            Binarize::Threshold => self.pixels.iter().map(|&p| if p >= 128 { 255 } else { 0 }).collect(),
            Binarize::Stochastic => {
                let mut u = vec![0f32; self.pixels.len()];
                Stream::new(seed, BINARIZE_STREAM).fill_uniform(&mut u);
                self.pixels.iter().zip(&u).map(|(&p, &u)| if u < PIXEL[p as usize] { 255 } else { 0 }).collect()
            }
        };
        Images { pixels, ..self.clone() }
    }
}

/// Training data as rows of f32 values, read a minibatch at a time. MNIST's
/// [`Images`] (bytes, read as p / 255) are one kind; [`RowMatrix`] (an f32
/// slice) another.
pub trait DataRows: Sync {
    /// Number of rows (samples).
    fn n_rows(&self) -> usize;
    /// Values per row (visible units).
    fn n_cols(&self) -> usize;
    /// Copies rows `start..start + out.len() / n_cols` into `out` `[rows, n_cols]`.
    /// Fails only when the rows live in a file that cannot be read.
    fn copy_rows(&self, start: usize, out: &mut [f32]) -> Result<()>;
}

impl DataRows for Images {
    fn n_rows(&self) -> usize {
        self.n
    }
    fn n_cols(&self) -> usize {
        self.dim()
    }
    fn copy_rows(&self, start: usize, out: &mut [f32]) -> Result<()> {
        let d = self.dim();
        let n = out.len();
        for (o, &p) in out.iter_mut().zip(&self.pixels[start * d..start * d + n]) {
            *o = PIXEL[p as usize];
        }
        Ok(())
    }
}

/// Rows of f32 values held in memory: `values` is `[n_rows, n_cols]`, row-major.
#[derive(Clone, Copy, Debug)]
pub struct RowMatrix<'a> {
    values: &'a [f32],
    n_cols: usize,
}

impl<'a> RowMatrix<'a> {
    /// Checks that `values` holds whole rows of `n_cols` finite values.
    pub fn new(values: &'a [f32], n_cols: usize) -> Result<Self> {
        if n_cols == 0 || values.is_empty() || !values.len().is_multiple_of(n_cols) {
            return Err(RbmError::Shape(format!("{} values do not make whole rows of {n_cols} columns", values.len())));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(RbmError::Shape(format!(
                "row {}, column {} is not finite ({})",
                i / n_cols,
                i % n_cols,
                values[i]
            )));
        }
        Ok(RowMatrix { values, n_cols })
    }

    /// Rows the caller has already checked (a parsed table's, or an array
    /// checked once before many calls): whole rows, finite values. Nothing
    /// unsound follows from a wrong promise; a non-finite value makes
    /// training stop with its divergence error.
    pub fn from_checked(values: &'a [f32], n_cols: usize) -> Self {
        assert!(n_cols > 0 && values.len().is_multiple_of(n_cols), "whole rows of n_cols > 0 values");
        RowMatrix { values, n_cols }
    }

    /// The values, `[n_rows, n_cols]`.
    pub fn values(&self) -> &'a [f32] {
        self.values
    }
}

/// Rows of f32 values owned in memory, `[n_rows, n_cols]`, row-major, as
/// [`RowMatrix`] borrows them (checked the same way).
#[derive(Clone, Debug)]
pub struct OwnedRows {
    values: Vec<f32>,
    n_cols: usize,
}

impl OwnedRows {
    /// Checks that `values` holds whole rows of `n_cols` finite values.
    pub fn new(values: Vec<f32>, n_cols: usize) -> Result<Self> {
        RowMatrix::new(&values, n_cols)?;
        Ok(OwnedRows { values, n_cols })
    }

    /// The rows, borrowed.
    pub fn rows(&self) -> RowMatrix<'_> {
        RowMatrix::from_checked(&self.values, self.n_cols)
    }
}

impl DataRows for OwnedRows {
    fn n_rows(&self) -> usize {
        self.rows().n_rows()
    }
    fn n_cols(&self) -> usize {
        self.n_cols
    }
    fn copy_rows(&self, start: usize, out: &mut [f32]) -> Result<()> {
        self.rows().copy_rows(start, out)
    }
}

impl DataRows for RowMatrix<'_> {
    fn n_rows(&self) -> usize {
        self.values.len() / self.n_cols
    }
    fn n_cols(&self) -> usize {
        self.n_cols
    }
    fn copy_rows(&self, start: usize, out: &mut [f32]) -> Result<()> {
        out.copy_from_slice(&self.values[start * self.n_cols..start * self.n_cols + out.len()]);
        Ok(())
    }
}

/// Per-column standardisation: a row v becomes (v - mean) / std.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardize {
    /// `[n_cols]`
    pub mean: Vec<f32>,
    /// `[n_cols]`, positive (a constant column gets 1)
    pub std: Vec<f32>,
}

impl Standardize {
    /// The columns' means and standard deviations over the first `rows` rows
    /// of `data` (see [`column_sums`]).
    pub fn of(data: &dyn DataRows, rows: usize) -> Result<Self> {
        let (s1, s2) = column_sums(data, rows)?;
        let n = rows.max(1) as f64;
        let mean: Vec<f32> = s1.iter().map(|s| (s / n) as f32).collect();
        let std = s1
            .iter()
            .zip(&s2)
            .map(|(a, b)| {
                let var = (b / n - (a / n).powi(2)).max(0.0);
                if var > 1e-12 {
                    var.sqrt() as f32
                } else {
                    1.0
                }
            })
            .collect();
        Ok(Standardize { mean, std })
    }

    /// `values` (`[rows, n_cols]`) standardised in place: x = (v - mean) / std.
    pub fn apply(&self, values: &mut [f32]) {
        for row in values.chunks_exact_mut(self.mean.len()) {
            for ((v, &mean), &std) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - mean) / std;
            }
        }
    }

    /// What a log-density of standardised rows gains in the data's units:
    /// log p(v) = log p(x) + log |dx/dv| = log p(x) - Σ_i ln std_i.
    pub fn log_density_shift(&self) -> f64 {
        -self.std.iter().map(|&s| (s as f64).ln()).sum::<f64>()
    }

    /// `values` (`[rows, n_cols]`) back in the data's units: v = x std + mean.
    pub fn undo(&self, values: &mut [f32]) {
        for row in values.chunks_exact_mut(self.mean.len()) {
            for ((v, &mean), &std) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = *v * std + mean;
            }
        }
    }
}

/// `(Σ x, Σ x²)` of each column over the first `rows` rows of `data`, each
/// `[n_cols]`, in one pass a block at a time (memory does not grow with the
/// data), accumulated in f64.
pub fn column_sums(data: &dyn DataRows, rows: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let m = data.n_cols();
    let (mut s1, mut s2) = (vec![0f64; m], vec![0f64; m]);
    let block = (1 << 16) / m.max(1) + 1;
    let mut buf = vec![0f32; block * m];
    for start in (0..rows).step_by(block) {
        let k = block.min(rows - start);
        data.copy_rows(start, &mut buf[..k * m])?;
        for row in buf[..k * m].chunks_exact(m) {
            for (i, &x) in row.iter().enumerate() {
                s1[i] += x as f64;
                s2[i] += x as f64 * x as f64;
            }
        }
    }
    Ok((s1, s2))
}

/// Values in [0, 1] (`[rows, n_cols]`) made binary in place: 1 with
/// probability v, drawn from the stream (seed, [`BINARIZE_STREAM`]) in
/// order, as [`Images::binarize`] draws for the same rows.
pub fn binarize_values(values: &mut [f32], seed: u64) {
    let mut u = vec![0f32; values.len()];
    Stream::new(seed, BINARIZE_STREAM).fill_uniform(&mut u);
    for (v, u) in values.iter_mut().zip(&u) {
        *v = if *u < *v { 1.0 } else { 0.0 };
    }
}

/// Rows seen through a [`Standardize`].
pub struct Standardized<'a> {
    pub data: &'a dyn DataRows,
    pub by: &'a Standardize,
}

impl DataRows for Standardized<'_> {
    fn n_rows(&self) -> usize {
        self.data.n_rows()
    }
    fn n_cols(&self) -> usize {
        self.data.n_cols()
    }
    fn copy_rows(&self, start: usize, out: &mut [f32]) -> Result<()> {
        self.data.copy_rows(start, out)?;
        self.by.apply(out);
        Ok(())
    }
}

/// The stream id of the stochastic binarisation (the weights' initialisation
/// draws from [`crate::model::INIT_STREAM`], so the two never share draws).
pub const BINARIZE_STREAM: u64 = 7;

/// p / 255 for every byte value.
pub static PIXEL: [f32; 256] = {
    let mut t = [0f32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as f32 / 255.0;
        i += 1;
    }
    t
};

/// The tutorial's split of MNIST, with labels.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// the first 50,000 training images
    pub train: Images,
    /// the last 10,000 training images
    pub valid: Images,
    /// the 10,000 t10k images
    pub test: Images,
    pub train_labels: Vec<u8>,
    pub valid_labels: Vec<u8>,
    pub test_labels: Vec<u8>,
}

/// The four standard files and the SHA-256 of their decompressed bytes.
pub const MNIST_FILES: [(&str, &str); 4] = [
    ("train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    ("train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    ("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    ("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
];

/// Finds `name.gz` or `name` in `dir`.
fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(RbmError::data(dir, "data directory does not exist"));
    }
    for cand in [dir.join(format!("{name}.gz")), dir.join(name)] {
        if cand.is_file() {
            return Ok(cand);
        }
    }
    Err(RbmError::data(dir.join(format!("{name}.gz")), "file not found (nor its uncompressed form)"))
}

/// Loads MNIST from `dir` and splits it as the tutorial (50,000 / 10,000 / 10,000).
/// Checks, in order: each file's structure (magic number, header, length), the
/// image size (28 x 28), that images and labels agree in number, and last the
/// SHA-256 of each file's decompressed bytes.
pub fn load_mnist(dir: &Path) -> Result<Mnist> {
    let paths: Vec<PathBuf> = MNIST_FILES.iter().map(|(n, _)| find(dir, n)).collect::<Result<_>>()?;
    // Each file is read, hashed and parsed before the next is read, so that only
    // one decompressed file is in memory beside the parsed data; the hashes are
    // compared last, after the checks that say more precisely what is wrong.
    let mut digests = Vec::new();
    let mut read = |i: usize| -> Result<Vec<u8>> {
        let bytes = read_maybe_gz(&paths[i])?;
        digests.push(sha256_hex(&bytes));
        Ok(bytes)
    };
    let mut train_all = parse_idx_images(&paths[0], &read(0)?)?;
    let mut train_lab = parse_idx_labels(&paths[1], &read(1)?)?;
    let test = parse_idx_images(&paths[2], &read(2)?)?;
    let test_labels = parse_idx_labels(&paths[3], &read(3)?)?;
    for (imgs, p) in [(&train_all, &paths[0]), (&test, &paths[2])] {
        if (imgs.rows, imgs.cols) != (28, 28) {
            return Err(RbmError::data(p, format!("images are {}x{}, MNIST's are 28x28", imgs.rows, imgs.cols)));
        }
    }
    for (imgs, labs, p) in [(&train_all, &train_lab, &paths[1]), (&test, &test_labels, &paths[3])] {
        if imgs.n != labs.len() {
            return Err(RbmError::data(p, format!("{} labels for {} images", labs.len(), imgs.n)));
        }
    }
    for ((p, got), (_, want)) in paths.iter().zip(&digests).zip(MNIST_FILES) {
        check_digest(p, got, want)?;
    }
    if train_all.n != 60_000 || test.n != 10_000 {
        return Err(RbmError::data(dir, format!("expected 60000 + 10000 images, found {} + {}", train_all.n, test.n)));
    }
    // the split, without copying: valid takes the tail of the training file
    let valid = Images { n: 10_000, pixels: train_all.pixels.split_off(50_000 * 784), ..train_all.clone_header() };
    train_all.n = 50_000;
    let valid_labels = train_lab.split_off(50_000);
    Ok(Mnist { train: train_all, valid, test, train_labels: train_lab, valid_labels, test_labels })
}

/// Reads a whole file, gunzipping it when it starts with the gzip magic bytes.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| RbmError::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| RbmError::data(path, format!("corrupt or truncated gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn check_digest(path: &Path, got: &str, want: &str) -> Result<()> {
    if got != want {
        return Err(RbmError::data(
            path,
            format!("SHA-256 of the decompressed content is {got}, expected {want}: the file is corrupt or not the standard MNIST file"),
        ));
    }
    Ok(())
}

fn check_sha(path: &Path, bytes: &[u8], expected: Option<&str>) -> Result<()> {
    match expected {
        Some(want) => check_digest(path, &sha256_hex(bytes), want),
        None => Ok(()),
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses IDX image bytes (magic 0x00000803, then n, rows, cols, then the pixels).
pub fn parse_idx_images(path: &Path, bytes: &[u8]) -> Result<Images> {
    if bytes.len() < 16 {
        return Err(RbmError::data(path, format!("truncated: {} bytes, an IDX image header needs 16", bytes.len())));
    }
    let magic = be_u32(bytes, 0);
    if magic != 0x0803 {
        return Err(RbmError::data(
            path,
            format!("wrong magic number 0x{magic:08x}: an IDX image file starts with 0x00000803"),
        ));
    }
    let (n, rows, cols) = (be_u32(bytes, 4) as usize, be_u32(bytes, 8) as usize, be_u32(bytes, 12) as usize);
    if rows == 0 || cols == 0 || rows > 4096 || cols > 4096 {
        return Err(RbmError::data(path, format!("implausible image size {rows}x{cols}")));
    }
    let want = n.checked_mul(rows * cols).and_then(|x| x.checked_add(16));
    if want != Some(bytes.len()) {
        return Err(RbmError::data(
            path,
            format!(
                "truncated or oversized: {} bytes, but the header says {n} images of {rows}x{cols} ({} bytes)",
                bytes.len(),
                want.map_or("too many".into(), |w| w.to_string())
            ),
        ));
    }
    Ok(Images { n, rows, cols, pixels: bytes[16..].to_vec() })
}

/// Parses IDX label bytes (magic 0x00000801, then n, then n labels 0..=9).
pub fn parse_idx_labels(path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    if bytes.len() < 8 {
        return Err(RbmError::data(path, format!("truncated: {} bytes, an IDX label header needs 8", bytes.len())));
    }
    let magic = be_u32(bytes, 0);
    if magic != 0x0801 {
        return Err(RbmError::data(
            path,
            format!("wrong magic number 0x{magic:08x}: an IDX label file starts with 0x00000801"),
        ));
    }
    let n = be_u32(bytes, 4) as usize;
    if bytes.len() != n + 8 {
        return Err(RbmError::data(
            path,
            format!("truncated or oversized: {} bytes, but the header says {n} labels", bytes.len()),
        ));
    }
    if let Some(i) = bytes[8..].iter().position(|&l| l > 9) {
        return Err(RbmError::data(path, format!("label {i} is {}, not a digit", bytes[8 + i])));
    }
    Ok(bytes[8..].to_vec())
}

/// Reads an IDX image file (gzip or plain), checking the SHA-256 of the
/// decompressed bytes when `sha256` is given.
pub fn read_idx_images(path: &Path, sha256: Option<&str>) -> Result<Images> {
    let bytes = read_maybe_gz(path)?;
    let images = parse_idx_images(path, &bytes)?;
    check_sha(path, &bytes, sha256)?;
    Ok(images)
}

/// Reads an IDX label file (gzip or plain), checking its SHA-256 when given.
pub fn read_idx_labels(path: &Path, sha256: Option<&str>) -> Result<Vec<u8>> {
    let bytes = read_maybe_gz(path)?;
    let labels = parse_idx_labels(path, &bytes)?;
    check_sha(path, &bytes, sha256)?;
    Ok(labels)
}
