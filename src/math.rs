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
    let a = if a_t {
        MatRef::from_row_major_slice(a, k, m).transpose()
    } else {
        MatRef::from_row_major_slice(a, m, k)
    };
    let b = if b_t {
        MatRef::from_row_major_slice(b, n, k).transpose()
    } else {
        MatRef::from_row_major_slice(b, k, n)
    };
    let accum = if add { Accum::Add } else { Accum::Replace };
    matmul(
        MatMut::from_row_major_slice_mut(dst, m, n),
        accum,
        a,
        b,
        alpha,
        Par::Seq,
    );
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
    let p = ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 5.000_000_1e-1;
    let y = p * r2 + r + 1.0;
    let scale = f32::from_bits(((ni + 127) as u32) << 23);
    y * scale
}

/// ln(x) for x in [1, 2] (all that softplus needs), vectorisable (Cephes `logf`
/// polynomial after reducing to m in [sqrt(1/2), sqrt(2))).
#[inline(always)]
fn ln_1_to_2(x: f32) -> f32 {
    let big = x > std::f32::consts::SQRT_2;
    let m = if big { x * 0.5 } else { x };
    let e = if big { 1.0f32 } else { 0.0 };
    let f = m - 1.0;
    let z = f * f;
    let p = ((((((((7.037_683_6e-2 * f - 1.151_461e-1) * f + 1.167_699_9e-1) * f
        - 1.242_014_1e-1)
        * f
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
pub fn bias_sigmoid_sample(
    pre: &mut [f32],
    bias: &[f32],
    mean: &mut [f32],
    sample: &mut [f32],
    u: &[f32],
) {
    let w = bias.len();
    for (((p, m), s), u) in pre
        .chunks_exact_mut(w)
        .zip(mean.chunks_exact_mut(w))
        .zip(sample.chunks_exact_mut(w))
        .zip(u.chunks_exact(w))
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
