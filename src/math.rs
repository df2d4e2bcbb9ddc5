//! Numeric kernels: matrix products, sigmoid, softplus, and the fused
//! "add bias, sigmoid, Bernoulli draw" pass.
//!
//! Every fast kernel has a naive reference beside it (`*_ref`), and the tests
//! check the two against each other. The elementwise kernels are plain loops
//! over slices written so that the compiler vectorises them (no calls into
//! libm, no branches in the body).
//!
//! All matrices are row-major. `[r, c]` in a comment means r rows of c columns.

use faer::{linalg::matmul::matmul, Accum, MatMut, MatRef, Par};

/// `dst [m, n] (=|+=) alpha * op(a) * op(b)` on one thread.
///
/// `a` is `[m, k]` (or `[k, m]` when `a_t`), `b` is `[k, n]` (or `[n, k]`
/// when `b_t`); every matrix is row-major and dense. With `add`, the product
/// is added to `dst`; otherwise it replaces it.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    dst: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_t: bool,
    b: &[f32],
    b_t: bool,
    alpha: f32,
    add: bool,
) {
    debug_assert_eq!(dst.len(), m * n);
    debug_assert_eq!(a.len(), m * k);
    debug_assert_eq!(b.len(), k * n);
    if m == 0 || n == 0 {
        return;
    }
    let a = if a_t { MatRef::from_row_major_slice(a, k, m).transpose() } else { MatRef::from_row_major_slice(a, m, k) };
    let b = if b_t { MatRef::from_row_major_slice(b, n, k).transpose() } else { MatRef::from_row_major_slice(b, k, n) };
    let accum = if add { Accum::Add } else { Accum::Replace };
    matmul(MatMut::from_row_major_slice_mut(dst, m, n), accum, a, b, alpha, Par::Seq);
}

/// Naive reference for [`gemm`], accumulating in f64.
#[allow(clippy::too_many_arguments)]
pub fn gemm_ref(
    dst: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_t: bool,
    b: &[f32],
    b_t: bool,
    alpha: f32,
    add: bool,
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for l in 0..k {
                let x = if a_t { a[l * m + i] } else { a[i * k + l] };
                let y = if b_t { b[j * k + l] } else { b[l * n + j] };
                s += x as f64 * y as f64;
            }
            let v = alpha as f64 * s;
            dst[i * n + j] = if add { dst[i * n + j] + v as f32 } else { v as f32 };
        }
    }
}

const LOG2E: f32 = std::f32::consts::LOG2_E;

/// exp(x) for f32, branch-free and vectorisable (Cephes `expf`: range reduction
/// x = n ln2 + r with |r| <= ln2/2, then a degree-6 polynomial; about 1 ulp).
///
/// The input is clamped to [-87, 88] so that 2^n stays a normal number: the
/// result saturates at about 1.7e38 and 1.6e-38 instead of becoming inf or 0.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' published coefficients
pub fn exp_fast(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // round(x * log2 e) to nearest by the 1.5 * 2^23 trick (|x log2 e| < 2^22):
    // t's low mantissa bits then hold n as an integer, read without a
    // (saturating, hence unvectorisable) float-to-int cast.
    let t = x * LOG2E + 12582912.0;
    let n = t - 12582912.0;
    let ni = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    // Cody-Waite: ln2 = 0.693359375 - 2.12194440e-4, the first part exact in f32.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let r2 = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1) * r
        + 5.000_000_1e-1;
    let y = p * r2 + r + 1.0;
    let scale = f32::from_bits(((ni + 127) as u32) << 23);
    y * scale
}

/// ln(x) for x in [1, 2] (all that softplus needs), vectorisable (Cephes `logf`
/// polynomial after reducing to m in [sqrt(1/2), sqrt(2))).
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' published coefficients
fn ln_1_to_2(x: f32) -> f32 {
    let big = x > std::f32::consts::SQRT_2;
    let m = if big { x * 0.5 } else { x };
    let e = if big { 1.0f32 } else { 0.0 };
    let f = m - 1.0;
    let z = f * f;
    let p = ((((((((7.037_683_6e-2 * f - 1.151_461e-1) * f + 1.167_699_9e-1) * f - 1.242_014_1e-1) * f
        + 1.424_932_3e-1)
        * f
        - 1.666_805_8e-1)
        * f
        + 2.000_071_4e-1)
        * f
        - 2.499_999_4e-1)
        * f
        + 3.333_333_1e-1)
        * f
        * z;
    let y = p - 0.5 * z;
    // ln2 split as in Cephes for accuracy.
    f + y + e * -2.121_944_4e-4 + e * 0.693_359_4
}

/// sigm(x) = 1 / (1 + exp(-x)) (the tutorial's Eqs. 7-8). Finite for every
/// finite x: exp_fast saturates, so sigm(-1000) is about 6e-39 and sigm(1000) = 1.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_fast(-x))
}

/// softplus(x) = log(1 + e^x), computed as max(x, 0) + log(1 + e^-|x|):
/// e^-|x| <= 1 never overflows, so softplus(1000) = 1000 and softplus(-1000) = ~0.
#[inline(always)]
pub fn softplus(x: f32) -> f32 {
    x.max(0.0) + ln_1_to_2(1.0 + exp_fast(-x.abs()))
}

/// log sigm(x) = -softplus(-x), stable for any x.
#[inline(always)]
pub fn log_sigmoid(x: f32) -> f32 {
    -softplus(-x)
}

/// Reference softplus in f64 (libm).
pub fn softplus_ref(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Reference sigmoid in f64 (libm).
pub fn sigmoid_ref(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// log(sum(exp(xs))) without overflow: m + log(sum(exp(x - m))), m = max(xs).
pub fn log_sum_exp(xs: &[f64]) -> f64 {
    let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + xs.iter().map(|&x| (x - m).exp()).sum::<f64>().ln()
}

/// The fused pass after a product, over one row block:
/// `pre += bias` (the pre-sigmoid activation), `mean = sigm(pre)`, and
/// `sample = 1 if u < mean else 0`, where `u` holds uniform draws in [0, 1).
///
/// Shapes: `pre`, `mean`, `sample`, `u` are `[rows, width]`; `bias` is `[width]`.
pub fn bias_sigmoid_sample(pre: &mut [f32], bias: &[f32], mean: &mut [f32], sample: &mut [f32], u: &[f32]) {
    let w = bias.len();
    if w == 0 {
        return;
    }
    for (((p, m), s), u) in
        pre.chunks_exact_mut(w).zip(mean.chunks_exact_mut(w)).zip(sample.chunks_exact_mut(w)).zip(u.chunks_exact(w))
    {
        for j in 0..w {
            let a = p[j] + bias[j];
            let q = sigmoid(a);
            p[j] = a;
            m[j] = q;
            s[j] = if u[j] < q { 1.0 } else { 0.0 };
        }
    }
}

/// `pre += bias`, `mean = sigm(pre)`, with no draw. Shapes as [`bias_sigmoid_sample`].
pub fn bias_sigmoid(pre: &mut [f32], bias: &[f32], mean: &mut [f32]) {
    let w = bias.len();
    if w == 0 {
        return;
    }
    for (p, m) in pre.chunks_exact_mut(w).zip(mean.chunks_exact_mut(w)) {
        for j in 0..w {
            let a = p[j] + bias[j];
            p[j] = a;
            m[j] = sigmoid(a);
        }
    }
}

/// Sum of softplus over a slice (the hidden term of the free energy, Eq. 9),
/// accumulated in eight lanes so the loop vectorises; the lane order is fixed.
pub fn sum_softplus(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            acc[l] += softplus(c[l]);
        }
    }
    let mut tail = 0f32;
    for &v in chunks.remainder() {
        tail += softplus(v);
    }
    acc.iter().sum::<f32>() + tail
}

/// Σ_i softplus(a_i + c_i) in f64: softplus in f32 eight lanes at a time,
/// each lane accumulated in f64 (the free energy's hidden term over many units).
pub fn sum_softplus_biased(a: &[f32], c: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let mut ac = a.chunks_exact(8);
    let mut cc = c.chunks_exact(8);
    for (x, y) in (&mut ac).zip(&mut cc) {
        for l in 0..8 {
            acc[l] += softplus(x[l] + y[l]) as f64;
        }
    }
    let mut tail = 0f64;
    for (&x, &y) in ac.remainder().iter().zip(cc.remainder()) {
        tail += softplus(x + y) as f64;
    }
    acc.iter().sum::<f64>() + tail
}

/// Σ_j softplus(x_j + d w_j) - softplus(x_j): the change of the free energy's
/// hidden term when one visible bit flips (its pre-activations move by d times
/// a row of W, d = ±1). Summed as differences, so no large terms cancel.
pub fn sum_softplus_diff(x: &[f32], w: &[f32], d: f32) -> f32 {
    let mut acc = [0f32; 8];
    let mut xc = x.chunks_exact(8);
    let mut wc = w.chunks_exact(8);
    for (a, b) in (&mut xc).zip(&mut wc) {
        for l in 0..8 {
            acc[l] += softplus(a[l] + d * b[l]) - softplus(a[l]);
        }
    }
    let mut tail = 0f32;
    for (&a, &b) in xc.remainder().iter().zip(wc.remainder()) {
        tail += softplus(a + d * b) - softplus(a);
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_fast_matches_libm_to_a_few_ulp() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp_fast(x) as f64;
            assert!(((got - want) / want).abs() < 4e-7, "exp({x}) = {got}, want {want}");
            x += 0.0137;
        }
    }

    #[test]
    fn softplus_and_sigmoid_match_references_and_stay_finite() {
        for i in -20000..20000 {
            let x = i as f32 * 0.005;
            let sp = softplus(x) as f64;
            let want = softplus_ref(x as f64);
            assert!((sp - want).abs() <= 2e-7 * want.max(1.0), "softplus({x}) = {sp}, want {want}");
            let s = sigmoid(x) as f64;
            assert!((s - sigmoid_ref(x as f64)).abs() < 2e-7, "sigmoid({x})");
        }
        for x in [-1e30f32, -1000.0, -88.5, 88.5, 1000.0, 1e30] {
            assert!(softplus(x).is_finite() && sigmoid(x).is_finite() && log_sigmoid(x).is_finite());
        }
        assert_eq!(softplus(1000.0), 1000.0);
        assert!(softplus(-1000.0) >= 0.0 && softplus(-1000.0) < 1e-30);
        assert_eq!(log_sigmoid(-1000.0), -1000.0);
    }

    #[test]
    fn gemm_matches_reference_in_every_orientation() {
        let (m, n, k) = (7, 13, 11);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 17) as f32 - 8.0) / 7.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 19) as f32 - 9.0) / 5.0).collect();
        for a_t in [false, true] {
            for b_t in [false, true] {
                for add in [false, true] {
                    let mut d1 = vec![0.5f32; m * n];
                    let mut d2 = d1.clone();
                    gemm(&mut d1, m, n, k, &a, a_t, &b, b_t, 0.75, add);
                    gemm_ref(&mut d2, m, n, k, &a, a_t, &b, b_t, 0.75, add);
                    for (x, y) in d1.iter().zip(&d2) {
                        assert!((x - y).abs() < 1e-4, "{a_t} {b_t} {add}: {x} vs {y}");
                    }
                }
            }
        }
    }

    #[test]
    fn fused_pass_matches_its_definition() {
        let w = 5;
        let mut pre: Vec<f32> = (0..15).map(|i| i as f32 - 7.0).collect();
        let orig = pre.clone();
        let bias = [0.5f32, -1.0, 0.0, 2.0, -3.0];
        let u: Vec<f32> = (0..15).map(|i| (i as f32 * 0.37) % 1.0).collect();
        let (mut mean, mut sample) = (vec![0f32; 15], vec![0f32; 15]);
        bias_sigmoid_sample(&mut pre, &bias, &mut mean, &mut sample, &u);
        for i in 0..15 {
            let a = orig[i] + bias[i % w];
            assert_eq!(pre[i], a);
            assert!((mean[i] as f64 - sigmoid_ref(a as f64)).abs() < 1e-7);
            assert_eq!(sample[i], if u[i] < mean[i] { 1.0 } else { 0.0 });
        }
    }

    #[test]
    fn log_sum_exp_is_stable() {
        assert!((log_sum_exp(&[1000.0, 1000.0]) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        assert!((log_sum_exp(&[-1000.0, -1000.0]) - (-1000.0 + 2f64.ln())).abs() < 1e-12);
    }
}

const PREFETCH_AHEAD: usize = 6;

/// Hints the cache to fetch the 256 bytes at the start of `x` (no effect on results).
#[inline(always)]
fn prefetch(x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; the addresses lie within (or just past) `x`'s allocation.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = x.as_ptr() as *const i8;
        for line in 0..4 {
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64 * line));
        }
    }
}

/// Scratch of the sparse products: one row's nonzero positions and values.
#[derive(Clone, Debug, Default)]
pub struct Nonzeros {
    idx: Vec<u32>,
    val: Vec<f32>,
}

/// Density of nonzeros above which [`xw_product`] multiplies densely
/// (measured crossover on these shapes: about 0.3; see examples/products.rs).
pub const SPARSE_MAX_DENSITY: f32 = 0.3;

/// `dst [m, n] = alpha * x [m, k] * w [k, n]`, `w`'s rows `ldw >= pad64(n)`
/// floats apart: [`sparse_gemm`] when at most [`SPARSE_MAX_DENSITY`] of x is
/// nonzero, else a dense product. The choice depends only on x, never on threads.
#[allow(clippy::too_many_arguments)]
pub fn xw_product(
    dst: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    x: &[f32],
    w: &[f32],
    ldw: usize,
    alpha: f32,
    scratch: &mut Nonzeros,
) {
    let nz = x.iter().filter(|&&v| v != 0.0).count();
    if nz as f32 <= SPARSE_MAX_DENSITY * x.len() as f32 {
        sparse_gemm(dst, m, n, k, x, w, ldw, alpha, scratch);
    } else if m > 0 && n > 0 {
        matmul(
            MatMut::from_row_major_slice_mut(dst, m, n),
            Accum::Replace,
            MatRef::from_row_major_slice(x, m, k),
            MatRef::from_row_major_slice_with_stride(&w[..(k - 1) * ldw + n], k, n, ldw),
            alpha,
            Par::Seq,
        );
    }
}

/// `n` rounded up to a whole number of 64-float blocks: the row stride that
/// [`sparse_gemm`] needs for its right operand.
pub fn pad64(n: usize) -> usize {
    n.div_ceil(64) * 64
}

/// `dst [m, n] = alpha * x [m, k] * w [k, n]`, skipping the zeros of x.
/// `w`'s rows are `ldw >= pad64(n)` floats apart (the padding is read, its
/// products discarded), so every block is a full 64 lanes.
///
/// Gibbs chains multiply binary states, and MNIST images are four-fifths
/// background: row r of the product is the sum of the rows i of W where
/// x[r, i] != 0, each scaled by x[r, i]. With a fraction ρ of nonzeros this
/// does ρ of a dense product's work, in the same f32 arithmetic (a different
/// summation order, so results differ from [`gemm`] in the last bits).
///
/// `scratch` holds a row's nonzeros (grown to k + 1 once, then reused).
#[allow(clippy::too_many_arguments)]
pub fn sparse_gemm(
    dst: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    x: &[f32],
    w: &[f32],
    ldw: usize,
    alpha: f32,
    scratch: &mut Nonzeros,
) {
    let Nonzeros { idx, val } = scratch;
    assert!(ldw >= pad64(n) && dst.len() == m * n && x.len() == m * k);
    assert!(k == 0 || w.len() >= (k - 1) * ldw + pad64(n));
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        dst.fill(0.0);
        return;
    }
    idx.resize(k + 1, 0);
    val.resize(k + 1, 0.0);
    for (out, row) in dst.chunks_exact_mut(n).zip(x.chunks_exact(k)) {
        // Branch-free compaction of the nonzeros (a branch would mispredict
        // on random binary states): always write, advance only past nonzeros.
        let mut nz = 0;
        for (i, &v) in row.iter().enumerate() {
            idx[nz] = i as u32;
            val[nz] = v;
            nz += (v != 0.0) as usize;
        }
        let (idx, val) = (&idx[..nz], &val[..nz]);
        for c in (0..n).step_by(64) {
            // Σ over (i, v) of v * w[i, c..c+64], in eight registers' worth of lanes.
            let mut acc = [0f32; 64];
            for (t, (&i, &v)) in idx.iter().zip(val).enumerate() {
                // The rows are scattered: ask for one a few steps ahead.
                if let Some(&ahead) = idx.get(t + PREFETCH_AHEAD) {
                    prefetch(&w[ahead as usize * ldw + c..]);
                }
                let start = i as usize * ldw + c;
                let wrow: &[f32; 64] = w[start..start + 64].try_into().unwrap();
                for l in 0..64 {
                    acc[l] += v * wrow[l];
                }
            }
            let width = 64.min(n - c);
            for l in 0..width {
                out[c + l] = alpha * acc[l];
            }
        }
    }
}

#[cfg(test)]
mod sparse_tests {
    use super::*;

    #[test]
    fn sparse_gemm_matches_reference_on_binary_grey_and_empty_rows() {
        for &(m, n, k) in &[(5usize, 250usize, 97usize), (3, 7, 5), (4, 131, 784)] {
            let w: Vec<f32> = (0..k * n).map(|i| ((i * 37 % 23) as f32 - 11.0) / 13.0).collect();
            let mut x = vec![0f32; m * k];
            for (i, v) in x.iter_mut().enumerate() {
                *v = match i % 5 {
                    0 => 1.0,
                    1 => 0.25 * (i % 3) as f32,
                    _ => 0.0,
                };
            }
            x[..k].iter_mut().for_each(|v| *v = 0.0); // an all-zero row
            let (mut d1, mut d2) = (vec![9f32; m * n], vec![0f32; m * n]);
            let mut scratch = Nonzeros::default();
            let ldw = pad64(n);
            let mut wp = vec![f32::NAN; k * ldw]; // the padding's products are discarded
            for i in 0..k {
                wp[i * ldw..i * ldw + n].copy_from_slice(&w[i * n..(i + 1) * n]);
            }
            sparse_gemm(&mut d1, m, n, k, &x, &wp, ldw, 0.5, &mut scratch);
            gemm_ref(&mut d2, m, n, k, &x, false, &w, false, 0.5, false);
            for (a, b) in d1.iter().zip(&d2) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
            // the dense branch of xw_product, on an all-nonzero x
            let xd: Vec<f32> = x.iter().map(|v| v + 0.5).collect();
            let mut d3 = vec![0f32; m * n];
            xw_product(
                &mut d1,
                m,
                n,
                k,
                &xd,
                &wp.iter().map(|v| if v.is_nan() { 0.0 } else { *v }).collect::<Vec<_>>(),
                ldw,
                0.5,
                &mut scratch,
            );
            gemm_ref(&mut d3, m, n, k, &xd, false, &w, false, 0.5, false);
            for (a, b) in d1.iter().zip(&d3) {
                assert!((a - b).abs() < 1e-3, "{a} vs {b}");
            }
        }
    }
}

/// Σ_j softplus(b1 a_j) - softplus(b0 a_j): the change of the hidden term of
/// log p*_β(v) between two inverse temperatures (annealing). Each difference
/// is taken before summing, so the large softplus values cancel exactly and
/// only their rounding remains.
pub fn sum_softplus_beta_diff(a: &[f32], b0: f32, b1: f32) -> f32 {
    let mut acc = [0f32; 8];
    let mut chunks = a.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            acc[l] += softplus(b1 * c[l]) - softplus(b0 * c[l]);
        }
    }
    let mut tail = 0f32;
    for &x in chunks.remainder() {
        tail += softplus(b1 * x) - softplus(b0 * x);
    }
    acc.iter().sum::<f32>() + tail
}
