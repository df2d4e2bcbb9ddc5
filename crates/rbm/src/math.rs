//! Numeric kernels: matrix products, sigmoid, softplus, and the fused
//! "add bias, sigmoid, Bernoulli draw" pass.
//!
//! Every fast kernel has a naive reference beside it (`*_ref`), and the tests
//! check the two against each other. The elementwise kernels are plain loops
//! over slices written so that the compiler vectorises them (no calls into
//! libm, no branches in the body).
//!
//! All matrices are row-major. `[r, c]` in a comment means r rows of c columns.

use crate::rng::Stream;
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
    if n == 1 && k > 0 {
        // a one-column product is a matrix-vector one to faer, summed in
        // another order than two columns or more (see dense_rows): b's column
        // twice, and the first column of the result kept
        thread_local!(static TWO: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) });
        TWO.with(|two| {
            let (b2, d2) = &mut *two.borrow_mut();
            b2.clear();
            b2.extend(b[..k].iter().flat_map(|&v| [v, v]));
            d2.clear();
            d2.extend(dst[..m].iter().flat_map(|&v| [v, v]));
            gemm(d2, m, 2, k, a, a_t, b2, false, alpha, add);
            for (d, pair) in dst.iter_mut().zip(d2.chunks_exact(2)) {
                *d = pair[0];
            }
        });
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

/// The fused pass after a product, over one block of columns:
/// `pre += bias` (the pre-sigmoid activation), `mean = sigm(pre)`, and
/// `sample = 1 if u < mean else 0`, where `u` holds uniform draws in [0, 1).
///
/// Shapes: `pre`, `mean`, `sample` are `[rows, ld]`, of which the first
/// `width = bias.len()` columns are used; `u` is `[rows, width]`; `bias` is `[width]`.
pub fn bias_sigmoid_sample(pre: &mut [f32], ld: usize, bias: &[f32], mean: &mut [f32], sample: &mut [f32], u: &[f32]) {
    let w = bias.len();
    if w == 0 {
        return;
    }
    crate::raw::dispatch(
        #[inline(always)]
        || {
            for (((p, m), s), u) in
                pre.chunks_mut(ld).zip(mean.chunks_mut(ld)).zip(sample.chunks_mut(ld)).zip(u.chunks_exact(w))
            {
                let (p, m, s) = (&mut p[..w], &mut m[..w], &mut s[..w]);
                for j in 0..w {
                    let a = p[j] + bias[j];
                    let q = sigmoid(a);
                    p[j] = a;
                    m[j] = q;
                    s[j] = if u[j] < q { 1.0 } else { 0.0 };
                }
            }
        },
    )
}

/// `u` `[groups, rows, 8]`: each group's next `rows` draws of eight uniforms
/// in [0, 1), multiples of 2^-24 (as [`Stream::fill_uniform`]), from its
/// stream `streams[g]`. Each stream is copied into a local for its rows and
/// stored back after: drawing through the slice's `&mut` stores the state and
/// reloads it at every draw, partly by halves that stall on the store (7840
/// draws: 6.4 µs, against 2.5 µs from a copy held in registers).
#[inline(always)]
fn group_uniforms(streams: &mut [Stream], rows: usize, u: &mut [f32]) {
    const SCALE: f32 = 1.0 / (1u32 << 24) as f32;
    for (st, u) in streams.iter_mut().zip(u.chunks_exact_mut(8 * rows)) {
        let mut st_local = st.clone();
        for c in u.chunks_exact_mut(8) {
            let r = st_local.next8();
            for l in 0..8 {
                c[l] = (r[l] >> 8) as f32 * SCALE;
            }
        }
        *st = st_local;
    }
}

/// The engine's pass after a product, drawing by 8-unit groups:
/// `pre += bias`, `mean = sigm(pre)` (as [`bias_sigmoid`]), then for every
/// group k of the `width = bias.len()` columns and every row r,
/// `sample[r, j] = 1 if u_j < mean[r, j] else 0`, where u is the next draw of
/// eight from `streams[k]` (one draw per group and row, rows in order; a
/// last, narrower group uses the first lanes). Each unit's draws thus come
/// from its group's stream, however the units are split between parts and
/// threads.
///
/// Shapes: `pre`, `mean`, `sample` `[rows, ld]`, of which the first `width`
/// columns are used; `bias` `[width]`; `streams` `[ceil(width / 8)]`;
/// `scratch` grows to `[ceil(width / 8), rows, 8]` (the uniforms).
#[allow(clippy::too_many_arguments)]
pub fn bias_sigmoid_sample_groups(
    pre: &mut [f32],
    ld: usize,
    bias: &[f32],
    mean: &mut [f32],
    sample: &mut [f32],
    streams: &mut [Stream],
    rows: usize,
    scratch: &mut Vec<f32>,
) {
    bias_sigmoid(pre, ld, bias, mean);
    draw_groups(mean, ld, bias.len(), sample, streams, rows, scratch);
}

/// `sample[r, j] = 1 if u_j < mean[r, j] else 0` over `width` columns, by
/// 8-unit groups as [`bias_sigmoid_sample_groups`] draws. `scratch` grows to
/// `[groups, rows, 8]`: every group's uniforms are drawn first, then compared
/// (drawing and comparing in one loop keeps the streams out of registers:
/// 4.8 µs against 3.6 µs for 20 x 250 units, measured).
#[allow(clippy::too_many_arguments)]
pub fn draw_groups(
    mean: &[f32],
    ld: usize,
    width: usize,
    sample: &mut [f32],
    streams: &mut [Stream],
    rows: usize,
    scratch: &mut Vec<f32>,
) {
    assert_eq!(streams.len(), width.div_ceil(8), "one stream per 8-unit group");
    scratch.resize(8 * streams.len() * rows, 0.0);
    if scratch.is_empty() {
        return;
    }
    crate::raw::dispatch(
        #[inline(always)]
        || {
            group_uniforms(streams, rows, scratch);
            for (k, u) in scratch.chunks_exact(8 * rows).enumerate() {
                let (j0, w) = (8 * k, 8.min(width - 8 * k));
                for (r, u) in u.chunks_exact(8).enumerate() {
                    let at = r * ld + j0;
                    for ((s, &m), &u) in sample[at..at + w].iter_mut().zip(&mean[at..at + w]).zip(u) {
                        *s = if u < m { 1.0 } else { 0.0 };
                    }
                }
            }
        },
    )
}

/// ln(x) for x in (0, 1] (what Box-Muller needs), vectorisable: x = m 2^e
/// with m in [1, 2) read off the float's bits, ln x = e ln 2 + ln(m).
#[inline(always)]
fn ln_unit(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    e as f32 * std::f32::consts::LN_2 + ln_1_to_2(m)
}

/// (cos 2πt, sin 2πt) for t in [0, 1), vectorisable: the quarter turn q =
/// floor(4t) and φ = (4t - q) π/2 in [0, π/2), Taylor polynomials of cos and
/// sin on that range (degrees 12 and 11: errors below 1e-7), then a rotation
/// by q quarter turns.
#[inline(always)]
fn cos_sin_turn(t: f32) -> (f32, f32) {
    let q4 = 4.0 * t;
    let q = q4.floor();
    let phi = (q4 - q) * std::f32::consts::FRAC_PI_2;
    let p2 = phi * phi;
    let s = phi
        * (1.0
            + p2 * (-1.0 / 6.0
                + p2 * (1.0 / 120.0 + p2 * (-1.0 / 5040.0 + p2 * (1.0 / 362_880.0 + p2 * (-1.0 / 39_916_800.0))))));
    let c = 1.0
        + p2 * (-0.5
            + p2 * (1.0 / 24.0
                + p2 * (-1.0 / 720.0
                    + p2 * (1.0 / 40_320.0 + p2 * (-1.0 / 3_628_800.0 + p2 * (1.0 / 479_001_600.0))))));
    // rotate (c, s) by q quarter turns: (c, s), (-s, c), (-c, -s), (s, -c)
    let (odd, neg) = (q == 1.0 || q == 3.0, q >= 2.0);
    let (x, y) = if odd { (-s, c) } else { (c, s) };
    if neg {
        (-x, -y)
    } else {
        (x, y)
    }
}

/// `sample[r, j] = mean[r, j] + z_j` over `width` columns, z standard
/// normal draws made by 8-unit groups as [`draw_groups`] makes uniforms: one
/// draw of eight uniforms per group and row, turned into eight normals by
/// Box-Muller, (u0, u4) → sqrt(-2 ln(1 - u0)) (cos 2π u4, sin 2π u4) for
/// units 0 and 4 of the group, and so on for the other three pairs (1 - u0
/// lies in (0, 1]: the logarithm is finite). The logarithm, cosine and sine
/// are vectorised approximations (about 1e-7 off), so the draws differ from
/// [`crate::gaussian::standard_normals`]'s in the last bits; tests check
/// their moments.
///
/// `scratch` grows to `[groups, rows, 8]` (+ 8): the uniforms, then the normals.
#[allow(clippy::too_many_arguments)]
pub fn normal_groups(
    mean: &[f32],
    ld: usize,
    width: usize,
    sample: &mut [f32],
    streams: &mut [Stream],
    rows: usize,
    scratch: &mut Vec<f32>,
) {
    assert_eq!(streams.len(), width.div_ceil(8), "one stream per 8-unit group");
    let n = 8 * streams.len() * rows;
    // one spare row of 8, so that two rows at a time cover an odd count
    scratch.resize(n + 8, 0.0);
    if n == 0 {
        return;
    }
    crate::raw::dispatch(
        #[inline(always)]
        || {
            group_uniforms(streams, rows, scratch);
            // Box-Muller in place, two rows of eight at a time (eight pairs:
            // one vector of radii' inputs and one of angles')
            for z in scratch[..n.div_ceil(16) * 16].chunks_exact_mut(16) {
                let (mut r_in, mut t_in) = ([0f32; 8], [0f32; 8]);
                r_in[..4].copy_from_slice(&z[..4]);
                r_in[4..].copy_from_slice(&z[8..12]);
                t_in[..4].copy_from_slice(&z[4..8]);
                t_in[4..].copy_from_slice(&z[12..]);
                let (mut zc, mut zs) = ([0f32; 8], [0f32; 8]);
                for l in 0..8 {
                    let radius = (-2.0 * ln_unit(1.0 - r_in[l])).sqrt();
                    let (c, s) = cos_sin_turn(t_in[l]);
                    zc[l] = radius * c;
                    zs[l] = radius * s;
                }
                z[..4].copy_from_slice(&zc[..4]);
                z[4..8].copy_from_slice(&zs[..4]);
                z[8..12].copy_from_slice(&zc[4..]);
                z[12..].copy_from_slice(&zs[4..]);
            }
            for (g, zg) in scratch[..n].chunks_exact(8 * rows).enumerate() {
                let (j0, w) = (8 * g, 8.min(width - 8 * g));
                for (r, z) in zg.chunks_exact(8).enumerate() {
                    let at = r * ld + j0;
                    for ((s, &m), &z) in sample[at..at + w].iter_mut().zip(&mean[at..at + w]).zip(z) {
                        *s = m + z;
                    }
                }
            }
        },
    )
}

/// Eight standard normals from eight uniforms in [0, 1), pair by pair
/// (lanes 0-3 give the radii, lanes 4-7 the angles, so each half is one vector).
#[inline(always)]
pub fn box_muller8(u: &[f32; 8]) -> [f32; 8] {
    let mut z = [0f32; 8];
    for p in 0..4 {
        let radius = (-2.0 * ln_unit(1.0 - u[p])).sqrt();
        let (c, s) = cos_sin_turn(u[4 + p]);
        z[p] = radius * c;
        z[4 + p] = radius * s;
    }
    z
}

/// `mean = sigm(beta * pre)` (pre unchanged), then `sample` drawn from it by
/// 8-unit groups as [`draw_groups`]: annealing's states at inverse temperature beta.
#[allow(clippy::too_many_arguments)]
pub fn sigmoid_sample_groups(
    pre: &[f32],
    ld: usize,
    width: usize,
    beta: f32,
    mean: &mut [f32],
    sample: &mut [f32],
    streams: &mut [Stream],
    rows: usize,
    scratch: &mut Vec<f32>,
) {
    crate::raw::dispatch(
        #[inline(always)]
        || {
            for r in 0..rows {
                let (p, m) = (&pre[r * ld..r * ld + width], &mut mean[r * ld..r * ld + width]);
                for j in 0..width {
                    m[j] = sigmoid(beta * p[j]);
                }
            }
        },
    );
    draw_groups(mean, ld, width, sample, streams, rows, scratch);
}

/// Per row r and 8-unit group k of `width` columns, the sum over the group of
/// `f(pre[r, j], j)`, in column order: `out[r * groups + k]`. Sums by fixed
/// groups do not depend on how the columns are split between parts.
#[inline(always)]
fn group_sums(
    pre: &[f32],
    ld: usize,
    width: usize,
    rows: usize,
    out: &mut [f32],
    f: impl Fn(f32, usize, usize) -> f32,
) {
    let groups = width.div_ceil(8);
    for r in 0..rows {
        for k in 0..groups {
            let (j0, w) = (8 * k, 8.min(width - 8 * k));
            let mut t = [0f32; 8];
            if w == 8 {
                let p: &[f32; 8] = pre[r * ld + j0..r * ld + j0 + 8].try_into().unwrap();
                for l in 0..8 {
                    t[l] = f(p[l], j0 + l, r);
                }
            } else {
                for l in 0..w {
                    t[l] = f(pre[r * ld + j0 + l], j0 + l, r);
                }
            }
            // summed in lane order (a tree would differ in the last bits); the
            // lanes past a narrow group's width hold 0 and add nothing
            out[r * groups + k] = t.iter().sum();
        }
    }
}

/// The tutorial's reconstruction cost over one group of at most 8 visible
/// units and `rows` rows: Σ_r Σ_l x log sigm(a) + (1 - x) log(1 - sigm(a)) =
/// -Σ_r Σ_l [x softplus(-a) + (1 - x) softplus(a)], a = `pre[r * ldp + l]`,
/// x = `x[r * ldx + l]`. The terms of a row are computed as one vector and
/// then summed one by one, rows in order, units in order, so the sum has the
/// bits of the plain double loop.
pub fn reconstruction_group(pre: &[f32], ldp: usize, x: &[f32], ldx: usize, width: usize, rows: usize) -> f32 {
    assert!(width <= 8, "one group of at most 8 units");
    crate::raw::dispatch(
        #[inline(always)]
        || {
            let mut total = 0f32;
            for r in 0..rows {
                let (mut a, mut v) = ([0f32; 8], [0f32; 8]);
                a[..width].copy_from_slice(&pre[r * ldp..r * ldp + width]);
                v[..width].copy_from_slice(&x[r * ldx..r * ldx + width]);
                let mut t = [0f32; 8];
                for l in 0..8 {
                    t[l] = v[l] * softplus(-a[l]) + (1.0 - v[l]) * softplus(a[l]);
                }
                for &t in &t[..width] {
                    total -= t;
                }
            }
            total
        },
    )
}

/// Per row and 8-unit group: Σ_j softplus(x_j + d_r w_j) - softplus(x_j), the
/// change of the free energy's hidden term when one visible bit flips (the
/// pre-activations x `[rows, ld]` move by d_r = ±1 times a row w of W,
/// `[width]`). Each difference is taken before summing, so no large terms
/// cancel. `out` is `[rows, ceil(width / 8)]`.
pub fn softplus_diff_groups(x: &[f32], ld: usize, w: &[f32], d: &[f32], out: &mut [f32]) {
    crate::raw::dispatch(
        #[inline(always)]
        || group_sums(x, ld, w.len(), d.len(), out, |a, j, r| softplus(a + d[r] * w[j]) - softplus(a)),
    )
}

/// Per row and 8-unit group: Σ_j softplus(b1 a_j) - softplus(b0 a_j), the
/// change of the hidden term of log p*_β(v) between two inverse temperatures
/// (annealing), differences taken before summing. `a` is `[rows, ld]`; `out`
/// is `[rows, ceil(width / 8)]`.
pub fn softplus_beta_diff_groups(a: &[f32], ld: usize, width: usize, rows: usize, b0: f32, b1: f32, out: &mut [f32]) {
    crate::raw::dispatch(
        #[inline(always)]
        || group_sums(a, ld, width, rows, out, |x, _, _| softplus(b1 * x) - softplus(b0 * x)),
    )
}

/// `pre += bias`, `mean = sigm(pre)`, with no draw. Shapes as [`bias_sigmoid_sample`].
pub fn bias_sigmoid(pre: &mut [f32], ld: usize, bias: &[f32], mean: &mut [f32]) {
    let w = bias.len();
    if w == 0 {
        return;
    }
    crate::raw::dispatch(
        #[inline(always)]
        || {
            for (p, m) in pre.chunks_mut(ld).zip(mean.chunks_mut(ld)) {
                let (p, m) = (&mut p[..w], &mut m[..w]);
                for j in 0..w {
                    let a = p[j] + bias[j];
                    p[j] = a;
                    m[j] = sigmoid(a);
                }
            }
        },
    )
}

/// Sum of softplus over a slice (the hidden term of the free energy, Eq. 9),
/// accumulated in eight lanes so the loop vectorises; the lane order is fixed.
pub fn sum_softplus(x: &[f32]) -> f32 {
    crate::raw::dispatch(
        #[inline(always)]
        || {
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
        },
    )
}

/// Σ_i softplus(a_i + c_i) in f64: softplus in f32 eight lanes at a time,
/// each lane accumulated in f64 (the free energy's hidden term over many units).
pub fn sum_softplus_biased(a: &[f32], c: &[f32]) -> f64 {
    crate::raw::dispatch(
        #[inline(always)]
        || {
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
        },
    )
}

/// Σ_j softplus(x_j + d w_j) - softplus(x_j): the change of the free energy's
/// hidden term when one visible bit flips (its pre-activations move by d times
/// a row of W, d = ±1). Summed as differences, so no large terms cancel.
pub fn sum_softplus_diff(x: &[f32], w: &[f32], d: f32) -> f32 {
    crate::raw::dispatch(
        #[inline(always)]
        || {
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
        },
    )
}

const PREFETCH_AHEAD: usize = 6;

/// The nonzeros of a matrix's rows, compacted: row r's columns and values
/// are `idx`/`val` between `start[r]` and `start[r + 1]`, columns ascending.
///
/// Gibbs chains multiply binary states, and MNIST images are four-fifths
/// background, so the products below add up only the rows of W that the
/// nonzeros pick. A row may be assembled from segments held by different
/// threads ([`NzRows::push`] with each segment's column offset).
#[derive(Clone, Debug, Default)]
pub struct NzRows {
    idx: Vec<u32>,
    val: Vec<f32>,
    len: usize,
    start: Vec<usize>,
    cols: usize,
    /// set by [`NzRows::set_dense`]: nothing compacted, the product is dense
    dense: bool,
}

impl NzRows {
    /// Starts a new matrix of `cols` columns, keeping the buffers.
    pub fn clear(&mut self, cols: usize) {
        self.len = 0;
        self.dense = false;
        self.start.clear();
        self.start.push(0);
        self.cols = cols;
    }

    /// Appends the nonzeros of `seg`, columns `offset..offset + seg.len()` of the current row.
    pub fn push(&mut self, seg: &[f32], offset: usize) {
        let need = self.len + seg.len();
        if self.idx.len() < need {
            self.idx.resize(need, 0);
            self.val.resize(need, 0.0);
        }
        let (idx, val) = (&mut self.idx[self.len..need], &mut self.val[self.len..need]);
        // Branch-free (a branch would mispredict on random binary states):
        // always write, advance only past nonzeros.
        let mut n = 0;
        for (i, &v) in seg.iter().enumerate() {
            idx[n] = (offset + i) as u32;
            val[n] = v;
            n += (v != 0.0) as usize;
        }
        self.len += n;
    }

    /// Ends the current row.
    pub fn end_row(&mut self) {
        self.start.push(self.len);
    }

    /// The nonzeros of a dense `[rows, cols]` matrix (or, when there are too
    /// many for the sparse product, only that fact: [`NzRows::set_dense`]).
    pub fn of(&mut self, x: &[f32], cols: usize) -> &Self {
        if !sparse_enough(count_nonzero(x), x.len()) {
            self.set_dense(x.len() / cols.max(1), cols);
            return self;
        }
        self.clear(cols);
        for row in x.chunks_exact(cols.max(1)) {
            self.push(row, 0);
            self.end_row();
        }
        self
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.start.len() - 1
    }

    /// Row r's columns and values.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let s = self.start[r]..self.start[r + 1];
        (&self.idx[s.clone()], &self.val[s])
    }

    /// Whether at most [`SPARSE_MAX_DENSITY`] of the entries are nonzero.
    pub fn is_sparse(&self) -> bool {
        !self.dense && self.len as f32 <= SPARSE_MAX_DENSITY * (self.rows() * self.cols) as f32
    }

    /// Records a `[rows, cols]` matrix found too dense to compact (see
    /// [`sparse_enough`]): its product is then done densely.
    pub fn set_dense(&mut self, rows: usize, cols: usize) {
        self.clear(cols);
        self.start.resize(rows + 1, 0);
        self.dense = true;
    }
}

/// Whether `nonzeros` of `total` entries are few enough for the sparse product.
pub fn sparse_enough(nonzeros: usize, total: usize) -> bool {
    nonzeros as f32 <= SPARSE_MAX_DENSITY * total as f32
}

/// The number of nonzero values, counted branch-free (a pass much cheaper
/// than compacting them, done first so that dense operands skip compaction).
/// Blocks of 2^31 values keep each block's u32 count from overflowing; the
/// plain sum vectorises to a compare and a subtract per 8 values (an array
/// of 8 lane counters was compiled into shuffles instead: 1.06 µs against
/// 0.17 µs for 5,000 values, measured).
pub fn count_nonzero(x: &[f32]) -> usize {
    x.chunks(1 << 31)
        .map(|block| {
            crate::raw::dispatch(
                #[inline(always)]
                || block.iter().map(|&v| (v != 0.0) as u32).sum::<u32>() as usize,
            )
        })
        .sum()
}

/// Density of nonzeros above which a product is done densely (the measured
/// crossover on these shapes: about 0.3; see examples/products.rs).
pub const SPARSE_MAX_DENSITY: f32 = 0.3;

/// `n` rounded up to a whole number of 16-float blocks: the row stride that
/// [`sparse_rows`] needs for its right operand.
pub fn pad16(n: usize) -> usize {
    n.div_ceil(16) * 16
}

/// `dst[r, 0..n] = alpha * Σ_(i, v) in row r of x: v * w[i, 0..n]` for every
/// row of `x` (given by its nonzeros): the product x w, skipping x's zeros.
///
/// Shapes: `dst` `[rows, ldd]` (its first n columns written); `w` `[k, ldw]`
/// with `ldw >= pad16(n)` (the padding is read, its products discarded).
/// Each output is summed over x's nonzeros in column order, whatever the
/// block width, so a block of columns gives the same bits as the whole.
pub fn sparse_rows(dst: &mut [f32], ldd: usize, x: &NzRows, w: &[f32], ldw: usize, n: usize, alpha: f32) {
    assert!(ldw >= pad16(n) && n <= ldd && dst.len() >= x.rows().saturating_sub(1) * ldd + n);
    assert!(x.cols == 0 || w.len() >= (x.cols - 1) * ldw + pad16(n));
    if n == 0 {
        return;
    }
    crate::raw::dispatch(
        #[inline(always)]
        || {
            for r in 0..x.rows() {
                let (idx, val) = x.row(r);
                let out = &mut dst[r * ldd..r * ldd + n];
                let mut c = 0;
                while c + 64 <= n {
                    block::<64>(out, c, 64, idx, val, w, ldw, alpha);
                    c += 64;
                }
                while c < n {
                    block::<16>(out, c, 16.min(n - c), idx, val, w, ldw, alpha);
                    c += 16;
                }
            }
        },
    )
}

/// One block of L lanes of [`sparse_rows`]: `out[c..c + width] = alpha Σ v w[i, c..]`,
/// accumulated in registers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block<const L: usize>(
    out: &mut [f32],
    c: usize,
    width: usize,
    idx: &[u32],
    val: &[f32],
    w: &[f32],
    ldw: usize,
    alpha: f32,
) {
    let mut acc = [0f32; L];
    for (t, (&i, &v)) in idx.iter().zip(val).enumerate() {
        // The rows are scattered: ask for one a few steps ahead.
        if let Some(&ahead) = idx.get(t + PREFETCH_AHEAD) {
            crate::raw::prefetch(&w[ahead as usize * ldw + c..]);
        }
        let start = i as usize * ldw + c;
        let wrow: &[f32; L] = w[start..start + L].try_into().unwrap();
        for l in 0..L {
            acc[l] += v * wrow[l];
        }
    }
    for l in 0..width {
        out[c + l] = alpha * acc[l];
    }
}

/// `dst [m, n] (row stride ldd) = alpha * x [m, k] * w [k, n] (row stride ldw)`,
/// densely, on one thread (faer).
#[allow(clippy::too_many_arguments)]
pub fn dense_rows(
    dst: &mut [f32],
    ldd: usize,
    x: &[f32],
    m: usize,
    k: usize,
    w: &[f32],
    ldw: usize,
    n: usize,
    alpha: f32,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for r in 0..m {
            dst[r * ldd..r * ldd + n].fill(0.0);
        }
        return;
    }
    if n == 1 && ldw >= 2 {
        // faer takes a one-column product for a matrix-vector one and sums it
        // in another order than a block of two or more columns, which would
        // make a slab one unit wide give other bits than the whole: so two
        // columns (the second from w's padding or its next column) into
        // scratch, and the first kept. (Regression test:
        // a_slab_one_unit_wide_does_not_change_the_parameters.)
        thread_local!(static TWO_COLUMNS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) });
        TWO_COLUMNS.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.resize(2 * m, 0.0);
            dense_rows(&mut buf, 2, x, m, k, w, ldw, 2, alpha);
            for r in 0..m {
                dst[r * ldd] = buf[2 * r];
            }
        });
        return;
    }
    // (faer 0.24's `MatMut::from_row_major_slice_with_stride_mut` lays the
    // slice out column-major, so the row-major view is built as a transpose.)
    matmul(
        MatMut::from_column_major_slice_with_stride_mut(&mut dst[..(m - 1) * ldd + n], n, m, ldd).transpose_mut(),
        Accum::Replace,
        MatRef::from_row_major_slice(&x[..m * k], m, k),
        MatRef::from_row_major_slice_with_stride(&w[..(k - 1) * ldw + n], k, n, ldw),
        alpha,
        Par::Seq,
    );
}

/// `dst = alpha * x w` by [`sparse_rows`] when `nz` (x's nonzeros) is sparse
/// enough, else by [`dense_rows`] on the dense `x` `[rows, k]`. The choice
/// depends only on x, never on threads.
#[allow(clippy::too_many_arguments)]
pub fn xw_product(dst: &mut [f32], ldd: usize, nz: &NzRows, x: &[f32], w: &[f32], ldw: usize, n: usize, alpha: f32) {
    if nz.is_sparse() {
        sparse_rows(dst, ldd, nz, w, ldw, n, alpha);
    } else {
        dense_rows(dst, ldd, x, nz.rows(), nz.cols, w, ldw, n, alpha);
    }
}

/// Σ_j softplus(b1 a_j) - softplus(b0 a_j): the change of the hidden term of
/// log p*_β(v) between two inverse temperatures (annealing). Each difference
/// is taken before summing, so the large softplus values cancel exactly and
/// only their rounding remains.
pub fn sum_softplus_beta_diff(a: &[f32], b0: f32, b1: f32) -> f32 {
    crate::raw::dispatch(
        #[inline(always)]
        || {
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
        },
    )
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
        bias_sigmoid_sample(&mut pre, w, &bias, &mut mean, &mut sample, &u);
        for i in 0..15 {
            let a = orig[i] + bias[i % w];
            assert_eq!(pre[i], a);
            assert!((mean[i] as f64 - sigmoid_ref(a as f64)).abs() < 1e-7);
            assert_eq!(sample[i], if u[i] < mean[i] { 1.0 } else { 0.0 });
        }
    }

    /// The draws by groups (uniforms drawn ahead from a copy of each stream)
    /// must give the bits of drawing one group row at a time straight from
    /// the stream, as they did before (runs stay reproducible across versions).
    #[test]
    fn draws_by_groups_have_the_bits_of_one_draw_per_group_and_row() {
        let ld = 21;
        for width in [0usize, 5, 8, 13, 21] {
            for rows in [1, 2, 7] {
                let groups = width.div_ceil(8);
                let mean: Vec<f32> = (0..rows * ld).map(|k| ((k * 29) % 23) as f32 / 22.0 - 0.2).collect();
                let streams: Vec<Stream> = (0..groups as u64).map(|g| Stream::new(9, g)).collect();
                let (mut want_bin, mut want_normal) = (vec![-1f32; rows * ld], vec![-1f32; rows * ld]);
                let (mut bin_streams, mut normal_streams) = (streams.clone(), streams.clone());
                for (g, (sb, sn)) in bin_streams.iter_mut().zip(normal_streams.iter_mut()).enumerate() {
                    for r in 0..rows {
                        let u = sb.next8().map(|x| (x >> 8) as f32 / (1u32 << 24) as f32);
                        let z = box_muller8(&sn.next8().map(|x| (x >> 8) as f32 / (1u32 << 24) as f32));
                        for l in 0..8usize.min(width - 8 * g) {
                            let at = r * ld + 8 * g + l;
                            want_bin[at] = if u[l] < mean[at] { 1.0 } else { 0.0 };
                            want_normal[at] = mean[at] + z[l];
                        }
                    }
                }
                let (mut bin, mut normal, mut scratch) = (vec![-1f32; rows * ld], vec![-1f32; rows * ld], Vec::new());
                let mut got_streams = streams.clone();
                draw_groups(&mean, ld, width, &mut bin, &mut got_streams, rows, &mut scratch);
                assert_eq!(got_streams, bin_streams, "width {width}, rows {rows}: the streams moved on as far");
                let mut got_streams = streams.clone();
                normal_groups(&mean, ld, width, &mut normal, &mut got_streams, rows, &mut scratch);
                assert_eq!(got_streams, normal_streams, "width {width}, rows {rows}: the streams moved on as far");
                let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&bin), bits(&want_bin), "Bernoulli draws, width {width}, rows {rows}");
                assert_eq!(bits(&normal), bits(&want_normal), "normal draws, width {width}, rows {rows}");
            }
        }
    }

    #[test]
    fn count_nonzero_counts_what_a_filter_counts() {
        // every length up to 40 (whole vectors and remainders), zeros of both
        // signs (not counted) and NaN (counted: it is not equal to zero)
        for n in 0..40 {
            let x: Vec<f32> = (0..n)
                .map(|i| match i % 5 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => f32::NAN,
                    _ => i as f32 * 0.5 - 3.0,
                })
                .collect();
            assert_eq!(count_nonzero(&x), x.iter().filter(|&&v| v != 0.0).count(), "length {n}");
        }
    }

    /// The vectorised reconstruction cost must keep the bits of the scalar
    /// double loop it replaced (the metrics files of earlier runs stay valid).
    #[test]
    fn reconstruction_group_has_the_bits_of_the_plain_double_loop() {
        let (rows, ldp, ldx) = (7, 11, 13);
        let pre: Vec<f32> = (0..rows * ldp).map(|k| (k as f32 * 0.731).sin() * 40.0).collect();
        let x: Vec<f32> = (0..rows * ldx).map(|k| ((k * 37) % 17) as f32 / 16.0).collect();
        for width in 0..=8 {
            for start in [0, 3] {
                let mut want = 0f32;
                for r in 0..rows {
                    for l in start..start + width {
                        let (a, x) = (pre[r * ldp + l], x[r * ldx + l]);
                        want -= x * softplus(-a) + (1.0 - x) * softplus(a);
                    }
                }
                let got = reconstruction_group(&pre[start..], ldp, &x[start..], ldx, width, rows);
                assert_eq!(got.to_bits(), want.to_bits(), "width {width}, start {start}");
                assert!(got.is_finite() && (width == 0 || got < 0.0));
            }
        }
    }

    #[test]
    fn log_sum_exp_is_stable() {
        assert!((log_sum_exp(&[1000.0, 1000.0]) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        assert!((log_sum_exp(&[-1000.0, -1000.0]) - (-1000.0 + 2f64.ln())).abs() < 1e-12);
    }
}
