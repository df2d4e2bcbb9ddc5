//! Every `unsafe` block of the library lives here, each with the reason it
//! is sound. There are two kinds:
//!
//! - running a kernel compiled for an instruction set (AVX2 + FMA) that the
//!   CPU was found at run time to have ([`dispatch`]), so that one portable
//!   binary runs the hand-written loops at the speed of a native build;
//! - cache prefetch hints ([`prefetch`]);
//! - an 8 x 8 transpose in AVX2 registers ([`add_transposed`]), whose loads
//!   and stores take raw pointers.
//!
//! The threads of a team share buffers through `std::sync` locks only (see
//! `engine.rs`), so no `unsafe` is needed for them.

/// Whether this CPU runs AVX2 and FMA instructions (std caches the answer).
#[inline]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Runs `f` compiled for AVX2 + FMA when the CPU has them, else for the
/// target's baseline. `f` is a closure called once, so it is inlined into the
/// function below and compiled with its features, together with everything
/// `#[inline(always)]` that it calls (the kernels' bodies).
///
/// Results do not depend on the path taken: Rust never contracts `a * b + c`
/// into a fused multiply-add on its own, and the kernels fix their summation
/// order, so both paths do the same IEEE operations in the same order.
#[inline(always)]
pub fn dispatch<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        fn avx2_fma<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if has_avx2_fma() && !force_baseline() {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above), which
            // is all that calling a function compiled with them requires.
            return unsafe { avx2_fma(f) };
        }
    }
    f()
}

/// `RBM_BASELINE_ISA=1` makes [`dispatch`] take the baseline path (for the
/// benchmark's side-by-side figures and the tests that compare the two paths).
fn force_baseline() -> bool {
    use std::sync::OnceLock;
    static FORCE: OnceLock<bool> = OnceLock::new();
    *FORCE.get_or_init(|| std::env::var_os("RBM_BASELINE_ISA").is_some_and(|v| v == "1"))
}

/// Hints the cache to fetch the 256 bytes at the start of `x` (no effect on results).
#[inline(always)]
pub fn prefetch(x: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint that never faults; the addresses lie within
    // (or just past) `x`'s allocation.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = x.as_ptr() as *const i8;
        for line in 0..4 {
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64 * line));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// `dst[j * ldd + i] += src[i * lds + j]` for i in 0..rows, j in 0..cols: a
/// `[rows, cols]` block of `src` added, transposed, to a `[cols, rows]` block
/// of `dst`; each element gets one addition, so every path gives the same bits.
/// With AVX2, 8 x 8 tiles are transposed in registers (the edges go element by element).
pub fn add_transposed(src: &[f32], lds: usize, rows: usize, cols: usize, dst: &mut [f32], ldd: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(cols <= lds && rows <= ldd, "add_transposed: strides shorter than the block");
    assert!(
        src.len() >= (rows - 1) * lds + cols && dst.len() >= (cols - 1) * ldd + rows,
        "add_transposed: out of bounds"
    );
    let (r8, c8) = (rows / 8 * 8, cols / 8 * 8);
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() && !force_baseline() {
        // SAFETY: the CPU has AVX2 (checked just above); every tile read or
        // written lies inside the block, which the asserts above keep within
        // `src` and `dst`.
        unsafe { add_transposed_tiles_avx2(src.as_ptr(), lds, r8, c8, dst.as_mut_ptr(), ldd) };
    } else {
        add_transposed_scalar(src, lds, 0..r8, 0..c8, dst, ldd);
    }
    #[cfg(not(target_arch = "x86_64"))]
    add_transposed_scalar(src, lds, 0..r8, 0..c8, dst, ldd);
    // the edges: the last rows % 8 rows, and the last cols % 8 columns of the rest
    add_transposed_scalar(src, lds, r8..rows, 0..cols, dst, ldd);
    add_transposed_scalar(src, lds, 0..r8, c8..cols, dst, ldd);
}

/// [`add_transposed`] element by element over rows x cols.
fn add_transposed_scalar(
    src: &[f32],
    lds: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    dst: &mut [f32],
    ldd: usize,
) {
    for i in rows {
        for j in cols.clone() {
            dst[j * ldd + i] += src[i * lds + j];
        }
    }
}

/// The 8 x 8 tiles of [`add_transposed`] over rows 0..r8 and columns 0..c8
/// (multiples of 8): each tile's 8 rows loaded, transposed by unpack,
/// shuffle and lane permute, and each column added to a row of `dst`. The
/// tiles run along `dst`'s rows (j0 outer), so each cache line of `dst` is
/// finished while it is in L1; going down `dst`'s columns instead touches
/// lines a row stride apart (2 KB on a 500-unit slab), which fall into few
/// L1 sets, so a line is likely evicted between its two halves (the
/// transposed add took 17.5% of a 1000 x 1000 CD-1 profile that way, 13.9%
/// this way).
///
/// # Safety
/// The CPU must have AVX2, and `src[i * lds + j]` for i < r8, j < c8 and
/// `dst[j * ldd + i]` for the same must be in bounds.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_transposed_tiles_avx2(src: *const f32, lds: usize, r8: usize, c8: usize, dst: *mut f32, ldd: usize) {
    use std::arch::x86_64::*;
    for j0 in (0..c8).step_by(8) {
        for i0 in (0..r8).step_by(8) {
            // SAFETY: rows i0..i0 + 8 and columns j0..j0 + 8 lie in the block (the caller's promise).
            let row = |k: usize| unsafe { _mm256_loadu_ps(src.add((i0 + k) * lds + j0)) };
            let (r0, r1, r2, r3, r4, r5, r6, r7) = (row(0), row(1), row(2), row(3), row(4), row(5), row(6), row(7));
            let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
            let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
            let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
            let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
            let (u0, u1) = (_mm256_shuffle_ps::<0x44>(t0, t2), _mm256_shuffle_ps::<0xEE>(t0, t2));
            let (u2, u3) = (_mm256_shuffle_ps::<0x44>(t1, t3), _mm256_shuffle_ps::<0xEE>(t1, t3));
            let (u4, u5) = (_mm256_shuffle_ps::<0x44>(t4, t6), _mm256_shuffle_ps::<0xEE>(t4, t6));
            let (u6, u7) = (_mm256_shuffle_ps::<0x44>(t5, t7), _mm256_shuffle_ps::<0xEE>(t5, t7));
            // column j of the tile: src[i0..i0 + 8, j0 + j]
            let cols = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (j, c) in cols.into_iter().enumerate() {
                // SAFETY: dst[(j0 + j) * ldd + i0 ..][..8] lies in the block (the caller's promise).
                unsafe {
                    let d = dst.add((j0 + j) * ldd + i0);
                    _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), c));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_transposed_matches_the_element_by_element_reference_on_every_edge_shape() {
        for rows in [1, 7, 8, 9, 16, 23] {
            for cols in [1, 5, 8, 15, 24] {
                let (lds, ldd) = (cols + 3, rows + 5);
                let src: Vec<f32> = (0..rows * lds).map(|k| (k as f32 * 0.37 + 1.0).sin()).collect();
                let start: Vec<f32> = (0..cols * ldd).map(|k| (k as f32 * 0.11).cos()).collect();
                let (mut fast, mut naive) = (start.clone(), start.clone());
                add_transposed(&src, lds, rows, cols, &mut fast, ldd);
                add_transposed_scalar(&src, lds, 0..rows, 0..cols, &mut naive, ldd);
                assert_eq!(fast, naive, "{rows} x {cols}");
                // the padding between rows is untouched
                for j in 0..cols {
                    assert_eq!(fast[j * ldd + rows..(j + 1) * ldd], start[j * ldd + rows..(j + 1) * ldd]);
                }
                assert_ne!(fast, start, "{rows} x {cols}: something was added");
            }
        }
    }
}
