//! A seeded split of a data source's rows into training and validation rows,
//! and [`Subset`], the rows of a source that an index list names.
//!
//! The split is drawn by selection sampling (Knuth's Algorithm S): row i goes
//! to validation with probability (rows still wanted) / (rows left), so
//! exactly round(fraction * n) rows are chosen, every such subset is equally
//! likely, and both lists come out in the file's order, one uniform draw per
//! row and no permutation held. Memory: 4 bytes per row.

use crate::data::DataRows;
use crate::error::{RbmError, Result};
use crate::rng::Stream;

/// The stream id of the split's draws.
pub const SPLIT_STREAM: u64 = 8;

/// `(train, valid)`: the indices of `n` rows split so that
/// round(`fraction` n) of them, at least one, are validation rows, drawn from
/// the stream (seed, [`SPLIT_STREAM`]). Fails unless 0 < `fraction` < 1 and
/// both parts have a row.
pub fn split_rows(n: usize, fraction: f64, seed: u64) -> Result<(Vec<u32>, Vec<u32>)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(RbmError::param("valid_fraction", format!("must lie strictly between 0 and 1, got {fraction}")));
    }
    if n > u32::MAX as usize {
        return Err(RbmError::param("valid_fraction", format!("{n} rows: a split holds at most 2^32 - 1")));
    }
    let want = ((fraction * n as f64).round() as usize).max(1);
    if want >= n {
        return Err(RbmError::param(
            "valid_fraction",
            format!("{fraction} of {n} rows leaves no training row ({want} would be validation rows)"),
        ));
    }
    let (mut train, mut valid) = (Vec::with_capacity(n - want), Vec::with_capacity(want));
    let mut rng = Stream::new(seed, SPLIT_STREAM);
    let mut u = [0f32; 4096];
    for block in (0..n).step_by(u.len()) {
        rng.fill_uniform(&mut u);
        for (i, &u) in (block..n.min(block + u.len())).zip(&u) {
            // P(row i is chosen) = (want - chosen) / (n - i), in f64 so no row is skipped by rounding
            let chosen = valid.len();
            if (u as f64) * ((n - i) as f64) < (want - chosen) as f64 {
                valid.push(i as u32);
            } else {
                train.push(i as u32);
            }
        }
    }
    Ok((train, valid))
}

/// The rows of `data` that `index` names, in that order.
pub struct Subset<'a> {
    data: &'a dyn DataRows,
    /// `[n_rows]`, each below `data.n_rows()`
    index: &'a [u32],
}

impl<'a> Subset<'a> {
    /// Fails when an index is out of range.
    pub fn new(data: &'a dyn DataRows, index: &'a [u32]) -> Result<Self> {
        match index.iter().find(|&&i| i as usize >= data.n_rows()) {
            Some(i) => Err(RbmError::param("index", format!("row {i} of {} rows", data.n_rows()))),
            None => Ok(Subset { data, index }),
        }
    }
}

impl DataRows for Subset<'_> {
    fn n_rows(&self) -> usize {
        self.index.len()
    }
    fn n_cols(&self) -> usize {
        self.data.n_cols()
    }
    /// Reads each run of consecutive source rows with one call.
    fn copy_rows(&self, start: usize, out: &mut [f32]) -> Result<()> {
        let m = self.n_cols();
        let rows = &self.index[start..start + out.len() / m];
        let mut at = 0;
        while at < rows.len() {
            let mut end = at + 1;
            while end < rows.len() && rows[end] == rows[end - 1] + 1 {
                end += 1;
            }
            self.data.copy_rows(rows[at] as usize, &mut out[at * m..end * m])?;
            at = end;
        }
        Ok(())
    }
}
