//! NumPy `.npy` files as training data: 2-D arrays `[n_samples, n_features]`
//! of u8, f32 or f64, little-endian, in C or Fortran order. The file is read
//! a block of rows at a time, never whole, so a file larger than memory
//! trains and the memory used does not grow with the file. u8 values are read
//! as value / 255 (like MNIST's pixels), floats as they are.
//!
//! The format (NumPy's `format.py`): the magic bytes `\x93NUMPY`, a major and
//! minor version, the header's length (2 bytes in version 1, 4 in versions 2
//! and 3), then the header, a Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (70000, 784), }`,
//! then the values.

use crate::data::DataRows;
use crate::error::{RbmError, Result};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The element types read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NpyDtype {
    U8,
    F32,
    F64,
}

impl NpyDtype {
    fn size(self) -> usize {
        match self {
            NpyDtype::U8 => 1,
            NpyDtype::F32 => 4,
            NpyDtype::F64 => 8,
        }
    }
}

/// An open `.npy` file of 2-D data.
#[derive(Debug)]
pub struct NpyFile {
    path: PathBuf,
    n_rows: usize,
    n_cols: usize,
    dtype: NpyDtype,
    fortran: bool,
    /// where the values start
    offset: u64,
    /// the file and a scratch buffer of raw bytes, used by one reader at a time
    io: Mutex<(std::fs::File, Vec<u8>)>,
}

impl NpyFile {
    /// Opens `path` and checks its header and length (the values are not read).
    pub fn open(path: &Path) -> Result<Self> {
        let bad = |msg: String| RbmError::data(path, msg);
        let (file, head) = read_header(path)?;
        let Header { descr, fortran, shape, offset, len } = head;
        let dtype = data_dtype(&descr).map_err(bad)?;
        let (n_rows, n_cols) = match shape[..] {
            [r, c] => (r, c),
            _ => {
                return Err(bad(format!(
                    "the array is {}-D (shape {shape:?}); training data must be 2-D, [n_samples, n_features]",
                    shape.len()
                )))
            }
        };
        if n_rows == 0 || n_cols == 0 {
            return Err(bad(format!("the array has shape ({n_rows}, {n_cols}): no data")));
        }
        let want = n_rows
            .checked_mul(n_cols)
            .and_then(|n| n.checked_mul(dtype.size()))
            .and_then(|n| (n as u64).checked_add(offset));
        if want != Some(len) {
            return Err(bad(format!(
                "truncated or oversized: {len} bytes, but the header says {n_rows} x {n_cols} values of {} bytes after {offset}",
                dtype.size()
            )));
        }
        Ok(NpyFile {
            path: path.to_path_buf(),
            n_rows,
            n_cols,
            dtype,
            fortran,
            offset,
            io: Mutex::new((file, Vec::new())),
        })
    }

    /// The element type.
    pub fn dtype(&self) -> NpyDtype {
        self.dtype
    }

    /// Whether the values are in Fortran (column-major) order.
    pub fn fortran_order(&self) -> bool {
        self.fortran
    }

    /// Reads every value once, a block at a time, and fails at the first that
    /// is not finite, or (when `unit_interval`) outside [0, 1], naming its
    /// row and column.
    pub fn check_values(&self, unit_interval: bool) -> Result<()> {
        const BLOCK: usize = 1 << 16;
        let rows = (BLOCK / self.n_cols).max(1);
        let mut buf = vec![0f32; rows * self.n_cols];
        for start in (0..self.n_rows).step_by(rows) {
            let k = rows.min(self.n_rows - start);
            let out = &mut buf[..k * self.n_cols];
            self.copy_rows(start, out)?;
            check_rows(&self.path, out, self.n_cols, start, unit_interval)?;
        }
        Ok(())
    }

    fn read_at(&self, file: &mut std::fs::File, at: u64, bytes: &mut [u8]) -> Result<()> {
        file.seek(SeekFrom::Start(at))
            .and_then(|_| file.read_exact(bytes))
            .map_err(|e| RbmError::data(&self.path, format!("reading at byte {at}: {e}")))
    }
}

/// A `.npy` file's header, checked as far as every array needs.
struct Header {
    descr: String,
    fortran: bool,
    shape: Vec<usize>,
    /// where the values start
    offset: u64,
    /// the file's length in bytes
    len: u64,
}

/// Opens `path`, reads its magic bytes, version and header, and returns the
/// file and the parsed header.
fn read_header(path: &Path) -> Result<(std::fs::File, Header)> {
    let bad = |msg: String| RbmError::data(path, msg);
    let mut file = std::fs::File::open(path).map_err(|e| RbmError::io(path, e))?;
    let len = file.metadata().map_err(|e| RbmError::io(path, e))?.len();
    let mut head = vec![0u8; 12.min(len as usize)];
    file.read_exact(&mut head).map_err(|e| RbmError::io(path, e))?;
    if len == 0 {
        return Err(bad("empty file: a .npy file starts with the magic bytes \\x93NUMPY".into()));
    }
    if head.len() < 10 || &head[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file (it does not start with the magic bytes \\x93NUMPY)".into()));
    }
    let (header_len, start) = match head[6] {
        1 => (u16::from_le_bytes([head[8], head[9]]) as usize, 10),
        2 | 3 if head.len() >= 12 => (u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize, 12),
        v => return Err(bad(format!(".npy format version {v} is not supported (1, 2 and 3 are)"))),
    };
    if (start + header_len) as u64 > len {
        return Err(bad(format!("truncated: the header says it is {header_len} bytes, the file has {len} in all")));
    }
    let mut header = vec![0u8; header_len];
    file.seek(SeekFrom::Start(start as u64)).map_err(|e| RbmError::io(path, e))?;
    file.read_exact(&mut header).map_err(|e| RbmError::io(path, e))?;
    let header = String::from_utf8(header).map_err(|_| bad("the header is not text".into()))?;
    let (descr, fortran, shape) = parse_header(&header).map_err(bad)?;
    Ok((file, Header { descr, fortran, shape, offset: (start + header_len) as u64, len }))
}

/// Class labels from a `.npy` file: a 1-D array (or `[n, 1]`) of integers,
/// any width, signed or not, little-endian. Floats are refused (a label is
/// a class, not a value).
pub fn read_labels(path: &Path) -> Result<Vec<i64>> {
    let bad = |msg: String| RbmError::data(path, msg);
    let (mut file, h) = read_header(path)?;
    let n = match h.shape[..] {
        [n] | [n, 1] => n,
        _ => return Err(bad(format!("labels must be a 1-D array, got shape {:?}", h.shape))),
    };
    let d = h.descr.as_str();
    let (signed, size) = match d.trim_start_matches(['<', '|', '=']) {
        "i1" => (true, 1),
        "u1" | "b1" => (false, 1),
        "i2" => (true, 2),
        "u2" => (false, 2),
        "i4" => (true, 4),
        "u4" => (false, 4),
        "i8" => (true, 8),
        "u8" => (false, 8),
        _ if d.starts_with('>') => {
            return Err(bad(format!("dtype '{d}' is big-endian; save the labels little-endian")))
        }
        _ => {
            return Err(bad(format!("dtype '{d}' is no integer type: save the labels as integers (y.astype('int64'))")))
        }
    };
    if n.checked_mul(size).map(|b| b as u64 + h.offset) != Some(h.len) {
        return Err(bad(format!(
            "truncated or oversized: {} bytes, but the header says {n} labels of {size} bytes after {}",
            h.len, h.offset
        )));
    }
    let mut bytes = vec![0u8; n * size];
    file.seek(SeekFrom::Start(h.offset))
        .and_then(|_| file.read_exact(&mut bytes))
        .map_err(|e| RbmError::io(path, e))?;
    bytes
        .chunks_exact(size)
        .enumerate()
        .map(|(i, b)| {
            let mut w = [if signed && b[size - 1] & 0x80 != 0 { 0xff } else { 0 }; 8];
            w[..size].copy_from_slice(b);
            let (v, u) = (i64::from_le_bytes(w), u64::from_le_bytes(w));
            if !signed && size == 8 && u > i64::MAX as u64 {
                return Err(bad(format!("label {i} is {u}, too large")));
            }
            Ok(v)
        })
        .collect()
}

/// Fails at the first value of `values` (`[rows, n_cols]`, whose first row is
/// row `first` of the file) that is not finite, or when `unit_interval`, not in
/// [0, 1]; the message names the file, row and column, numbered from 0 as
/// NumPy indexes them (`x[row, column]`).
pub fn check_rows(path: &Path, values: &[f32], n_cols: usize, first: usize, unit_interval: bool) -> Result<()> {
    let bad = values.iter().position(|&v| !v.is_finite() || (unit_interval && !(0.0..=1.0).contains(&v)));
    match bad {
        None => Ok(()),
        Some(i) => {
            let (r, c, v) = (first + i / n_cols, i % n_cols, values[i]);
            let msg = if !v.is_finite() {
                format!("row {r}, column {c} (x[{r}, {c}]): {v} is not a finite number")
            } else {
                format!(
                    "row {r}, column {c} (x[{r}, {c}]): {v} is outside [0, 1], as Bernoulli (binary) visible units need; scale the data into [0, 1], or use Gaussian visible units for real values"
                )
            };
            Err(RbmError::data(path, msg))
        }
    }
}

impl DataRows for NpyFile {
    fn n_rows(&self) -> usize {
        self.n_rows
    }
    fn n_cols(&self) -> usize {
        self.n_cols
    }
    fn copy_rows(&self, start: usize, out: &mut [f32]) -> Result<()> {
        let (m, size) = (self.n_cols, self.dtype.size());
        let k = out.len() / m;
        assert!(start + k <= self.n_rows, "rows {start}..{} of {}", start + k, self.n_rows);
        let mut io = self.io.lock().unwrap();
        let (file, buf) = &mut *io;
        buf.resize(k * m * size, 0);
        if !self.fortran {
            self.read_at(file, self.offset + (start * m * size) as u64, buf)?;
            decode(self.dtype, buf, out);
        } else {
            // column c's rows start..start+k are contiguous; gather them by columns
            let mut col = vec![0f32; k];
            for c in 0..m {
                let at = self.offset + ((c * self.n_rows + start) * size) as u64;
                self.read_at(file, at, &mut buf[..k * size])?;
                decode(self.dtype, &buf[..k * size], &mut col);
                for (r, &v) in col.iter().enumerate() {
                    out[r * m + c] = v;
                }
            }
        }
        Ok(())
    }
}

/// Little-endian bytes of `dtype` to f32 (u8 as value / 255).
fn decode(dtype: NpyDtype, bytes: &[u8], out: &mut [f32]) {
    match dtype {
        NpyDtype::U8 => {
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = crate::data::PIXEL[b as usize];
            }
        }
        NpyDtype::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        NpyDtype::F64 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                *o = f64::from_le_bytes(b.try_into().unwrap()) as f32;
            }
        }
    }
}

/// The data's element type from a header's `descr`.
fn data_dtype(descr: &str) -> std::result::Result<NpyDtype, String> {
    match descr {
        "|u1" | "<u1" | "u1" => Ok(NpyDtype::U8),
        "<f4" | "=f4" => Ok(NpyDtype::F32),
        "<f8" | "=f8" => Ok(NpyDtype::F64),
        d if d.starts_with('>') => {
            Err(format!("dtype '{d}' is big-endian; save the array little-endian (arr.astype('<f4'))"))
        }
        d => Err(format!("dtype '{d}' is not supported: use uint8, float32 or float64")),
    }
}

/// The `descr`, the order and the shape from a header's dict literal.
fn parse_header(h: &str) -> std::result::Result<(String, bool, Vec<usize>), String> {
    let value = |key: &str| -> std::result::Result<&str, String> {
        let at = h.find(&format!("'{key}'")).ok_or(format!("the header lacks '{key}': {h:?}"))?;
        let rest = h[at + key.len() + 2..].trim_start();
        rest.strip_prefix(':').map(str::trim_start).ok_or(format!("the header's '{key}' has no value: {h:?}"))
    };
    let descr = value("descr")?;
    let descr =
        descr.strip_prefix('\'').and_then(|d| d.split('\'').next()).ok_or(format!("unreadable 'descr': {h:?}"))?;
    let fortran = match value("fortran_order")? {
        v if v.starts_with("True") => true,
        v if v.starts_with("False") => false,
        _ => return Err(format!("unreadable 'fortran_order': {h:?}")),
    };
    let shape = value("shape")?;
    let inner =
        shape.strip_prefix('(').and_then(|s| s.split(')').next()).ok_or(format!("unreadable 'shape': {h:?}"))?;
    let dims = inner
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse::<usize>().map_err(|_| format!("unreadable 'shape': {h:?}")))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((descr.to_string(), fortran, dims))
}
