//! CSV files as training data: numbers only, one sample per line, an
//! optional header line (a first line in which no field is a number), and a
//! delimiter given or detected from the first line (comma, semicolon, tab,
//! else whitespace). The whole file is read into memory.

use crate::data::{DataRows, RowMatrix};
use crate::error::{RbmError, Result};
use std::path::{Path, PathBuf};

/// A CSV file's numbers, `[n_rows, n_cols]`, and its header when it has one.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub path: PathBuf,
    pub values: Vec<f32>,
    pub n_cols: usize,
    pub header: Option<Vec<String>>,
    /// the line (from 1) each row came from
    pub lines: Vec<usize>,
}

/// How the fields of a line are separated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delimiter {
    Char(char),
    Whitespace,
}

impl Delimiter {
    /// The delimiter of a first line: the most frequent of `,` `;` and tab,
    /// else whitespace.
    pub fn detect(line: &str) -> Delimiter {
        let count = |c: char| line.matches(c).count();
        match [',', ';', '\t'].into_iter().map(|c| (count(c), c)).max() {
            Some((n, c)) if n > 0 => Delimiter::Char(c),
            _ => Delimiter::Whitespace,
        }
    }

    fn split(self, line: &str) -> Vec<&str> {
        match self {
            Delimiter::Char(c) => line.split(c).map(str::trim).collect(),
            Delimiter::Whitespace => line.split_whitespace().collect(),
        }
    }
}

/// Reads a CSV file (see the module's documentation). Every error names the
/// file, and the line and column where that applies (both counted from 1, as
/// an editor shows them).
pub fn read_csv(path: &Path, delimiter: Option<Delimiter>) -> Result<Table> {
    let bytes = std::fs::read(path).map_err(|e| RbmError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        RbmError::data(
            path,
            format!("not UTF-8 text (byte {} is not valid); a CSV file must be text", e.utf8_error().valid_up_to()),
        )
    })?;
    let bad = |msg: String| RbmError::data(path, msg);
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((first_no, first)) = lines.next() else {
        return Err(bad("empty file: no rows of data".into()));
    };
    let delim = delimiter.unwrap_or_else(|| Delimiter::detect(first));
    let first_fields = delim.split(first);
    let n_cols = first_fields.len();
    let header = first_fields.iter().all(|f| f.parse::<f64>().is_err());
    let mut values = Vec::new();
    let mut line_numbers = Vec::new();
    let data_lines = (!header).then_some((first_no, first)).into_iter().chain(lines);
    for (no, line) in data_lines {
        let fields = delim.split(line);
        if fields.len() != n_cols {
            return Err(bad(format!("line {}: {} fields, but the first line has {n_cols}", no + 1, fields.len())));
        }
        for (c, f) in fields.iter().enumerate() {
            let v: f64 =
                f.parse().map_err(|_| bad(format!("line {}, column {}: {f:?} is not a number", no + 1, c + 1)))?;
            if !v.is_finite() || (v as f32).is_infinite() {
                return Err(bad(format!("line {}, column {}: {f} is not a finite number", no + 1, c + 1)));
            }
            values.push(v as f32);
        }
        line_numbers.push(no + 1);
    }
    if values.is_empty() {
        return Err(bad("no rows of data, only a header".into()));
    }
    let header = header.then(|| first_fields.iter().map(|s| s.to_string()).collect());
    Ok(Table { path: path.to_path_buf(), values, n_cols, header, lines: line_numbers })
}

impl Table {
    /// Fails at the first value outside [0, 1] (what Bernoulli visible units
    /// need), naming its line and column.
    pub fn check_unit_interval(&self) -> Result<()> {
        match self.values.iter().position(|v| !(0.0..=1.0).contains(v)) {
            None => Ok(()),
            Some(i) => Err(RbmError::data(
                &self.path,
                format!(
                    "line {}, column {}: {} is outside [0, 1], as Bernoulli (binary) visible units need; scale the data into [0, 1], or use Gaussian visible units for real values",
                    self.lines[i / self.n_cols],
                    i % self.n_cols + 1,
                    self.values[i]
                ),
            )),
        }
    }

    /// The rows, for training (a table holds whole rows of finite values).
    pub fn rows(&self) -> RowMatrix<'_> {
        RowMatrix::from_checked(&self.values, self.n_cols)
    }

    /// Removes the column named `name` (from the header) and returns it:
    /// labels kept beside the data.
    pub fn take_column(&mut self, name: &str) -> Result<Vec<f32>> {
        let names = self
            .header
            .as_ref()
            .ok_or_else(|| RbmError::data(&self.path, format!("has no header line, so no column is named {name:?}")))?;
        let c = names.iter().position(|n| n == name).ok_or_else(|| {
            RbmError::data(&self.path, format!("no column is named {name:?}; the header has {names:?}"))
        })?;
        if self.n_cols == 1 {
            return Err(RbmError::data(&self.path, format!("column {name:?} is the only one: no data would be left")));
        }
        let m = self.n_cols;
        let column = self.values.iter().skip(c).step_by(m).cloned().collect();
        self.values =
            self.values.chunks_exact(m).flat_map(|row| row[..c].iter().chain(&row[c + 1..]).cloned()).collect();
        self.n_cols -= 1;
        if let Some(h) = &mut self.header {
            h.remove(c);
        }
        Ok(column)
    }
    /// Removes the column named `name` and returns it as class labels,
    /// failing at the first value that is not an integer (naming its line).
    pub fn take_labels(&mut self, name: &str) -> Result<Vec<i64>> {
        let column = self.take_column(name)?;
        column
            .iter()
            .zip(&self.lines)
            .map(|(&v, line)| match v.fract() == 0.0 && v.abs() < (1u32 << 24) as f32 {
                true => Ok(v as i64),
                false => Err(RbmError::data(
                    &self.path,
                    format!("line {line}, column {name:?}: {v} is no integer class label"),
                )),
            })
            .collect()
    }
}

impl DataRows for Table {
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
