//! Every `unsafe` block of the library lives here, each with the reason it
//! is sound. There are two kinds:
//!
//! - running a kernel compiled for an instruction set (AVX2 + FMA) that the
//!   CPU was found at run time to have ([`dispatch`]), so that one portable
//!   binary runs the hand-written loops at the speed of a native build;
//! - cache prefetch hints ([`prefetch`]).
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
