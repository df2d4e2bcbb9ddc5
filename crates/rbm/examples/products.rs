//! Candidate matrix-product back ends on the training loop's exact shapes,
//! one thread each (the trainer gives each thread its own half of W):
//!
//!   propup    [20, 784] x [784, 250]
//!   propdown  [20, 250] x [250, 784]
//!   gradient  [784, 40] x [40, 250], accumulated
//!
//! faer and gemm are dense; `sparse_gemm` skips zeros of the left operand,
//! shown at the densities Gibbs chains on MNIST see (0.15 to 0.5).
//! Run: cargo run --release --example products
use faer::{linalg::matmul::matmul, Accum, MatMut, MatRef, Par};
use rbm::math::{pad16, sparse_rows, NzRows};
use std::time::Instant;

/// Best seconds per call over 7 timings of 200 calls.
fn time<F: FnMut()>(mut f: F) -> f64 {
    for _ in 0..50 {
        f();
    }
    let mut best = f64::MAX;
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..200 {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / 200.0);
    }
    best
}

fn main() {
    let (b, nv, m) = (20usize, 784usize, 250usize);
    let flop = 2.0 * (b * nv * m) as f64;
    let v = vec![0.3f32; b * nv];
    let w = vec![0.01f32; nv * m];
    let mut h = vec![0f32; b * m];
    let mut vo = vec![0f32; b * nv];
    let x = vec![0.2f32; 2 * b * nv];
    let y = vec![0.1f32; 2 * b * m];
    let mut wg = w.clone();
    let gf = |s: f64, f: f64| f / s / 1e9;

    let up = time(|| {
        matmul(
            MatMut::from_row_major_slice_mut(&mut h, b, m),
            Accum::Replace,
            MatRef::from_row_major_slice(&v, b, nv),
            MatRef::from_row_major_slice(&w, nv, m),
            1.0f32,
            Par::Seq,
        )
    });
    let dn = time(|| {
        matmul(
            MatMut::from_row_major_slice_mut(&mut vo, b, nv),
            Accum::Replace,
            MatRef::from_row_major_slice(&h, b, m),
            MatRef::from_row_major_slice(&w, nv, m).transpose(),
            1.0f32,
            Par::Seq,
        )
    });
    let gr = time(|| {
        matmul(
            MatMut::from_row_major_slice_mut(&mut wg, nv, m),
            Accum::Add,
            MatRef::from_row_major_slice(&x, 2 * b, nv).transpose(),
            MatRef::from_row_major_slice(&y, 2 * b, m),
            1e-9f32,
            Par::Seq,
        )
    });
    println!(
        "faer   propup {:6.1} GFLOP/s  propdown {:6.1}  gradient {:6.1}",
        gf(up, flop),
        gf(dn, flop),
        gf(gr, 2.0 * flop)
    );
    unsafe {
        let up = time(|| {
            gemm::gemm(
                b,
                m,
                nv,
                h.as_mut_ptr(),
                1,
                m as isize,
                false,
                v.as_ptr(),
                1,
                nv as isize,
                w.as_ptr(),
                1,
                m as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        });
        let dn = time(|| {
            gemm::gemm(
                b,
                nv,
                m,
                vo.as_mut_ptr(),
                1,
                nv as isize,
                false,
                h.as_ptr(),
                1,
                m as isize,
                w.as_ptr(),
                m as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        });
        let gr = time(|| {
            gemm::gemm(
                nv,
                m,
                2 * b,
                wg.as_mut_ptr(),
                1,
                m as isize,
                true,
                x.as_ptr(),
                nv as isize,
                1,
                y.as_ptr(),
                1,
                m as isize,
                1.0,
                1e-9,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        });
        println!(
            "gemm   propup {:6.1} GFLOP/s  propdown {:6.1}  gradient {:6.1}",
            gf(up, flop),
            gf(dn, flop),
            gf(gr, 2.0 * flop)
        );
    }
    let (mut nz_v, mut nz_h) = (NzRows::default(), NzRows::default());
    let (wp, wtp) = (vec![0.01f32; nv * pad16(m)], vec![0.01f32; m * pad16(nv)]);
    for density in [0.15f64, 0.2, 0.3, 0.5] {
        let bin = |n: usize| {
            (0..n)
                .map(|i| if ((i * 7919) % 1000) as f64 / 1000.0 < density { 1.0f32 } else { 0.0 })
                .collect::<Vec<f32>>()
        };
        let (vs, hs) = (bin(b * nv), bin(b * m));
        // the compaction of the operand's nonzeros is part of each product's time
        let up = time(|| sparse_rows(&mut h, m, nz_v.of(&vs, nv), &wp, pad16(m), m, 1.0));
        let dn = time(|| sparse_rows(&mut vo, nv, nz_h.of(&hs, m), &wtp, pad16(nv), nv, 1.0));
        println!(
            "sparse density {density:.2}: propup {:6.1} dense-equivalent GFLOP/s  propdown {:6.1}",
            gf(up, flop),
            gf(dn, flop)
        );
    }
}
