//! Throwaway comparison of GEMM back ends on the RBM's shapes (single thread).
use faer::{linalg::matmul::matmul, Accum, MatMut, MatRef, Par};
use std::time::Instant;

fn time<F: FnMut()>(flops: f64, mut f: F) -> f64 {
    for _ in 0..50 { f(); }
    let mut best = f64::MAX;
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..200 { f(); }
        best = best.min(t.elapsed().as_secs_f64() / 200.0);
    }
    flops / best / 1e9
}

fn main() {
    let b = 20; let nv = 784;
    for m in [250usize, 500] {
        let v = vec![0.3f32; b * nv];
        let w = vec![0.01f32; nv * m];
        let mut h = vec![0f32; b * m];
        let mut vo = vec![0f32; b * nv];
        let x = vec![0.2f32; 2 * b * nv];
        let y = vec![0.1f32; 2 * b * m];
        let mut wg = w.clone();
        let f = 2.0 * (b * nv * m) as f64;
        let g_up = time(f, || matmul(MatMut::from_row_major_slice_mut(&mut h, b, m), Accum::Replace,
            MatRef::from_row_major_slice(&v, b, nv), MatRef::from_row_major_slice(&w, nv, m), 1.0f32, Par::Seq));
        let g_dn = time(f, || matmul(MatMut::from_row_major_slice_mut(&mut vo, b, nv), Accum::Replace,
            MatRef::from_row_major_slice(&h, b, m), MatRef::from_row_major_slice(&w, nv, m).transpose(), 1.0f32, Par::Seq));
        let g_gr = time(2.0 * f, || matmul(MatMut::from_row_major_slice_mut(&mut wg, nv, m), Accum::Add,
            MatRef::from_row_major_slice(&x, 2 * b, nv).transpose(), MatRef::from_row_major_slice(&y, 2 * b, m), 1e-9f32, Par::Seq));
        println!("faer m={m}: propup {g_up:.1} propdown {g_dn:.1} grad {g_gr:.1} GFLOP/s");
        unsafe {
            let gu = time(f, || gemm::gemm(b, m, nv, h.as_mut_ptr(), 1, m as isize, false, v.as_ptr(), 1, nv as isize, w.as_ptr(), 1, m as isize, 0.0, 1.0, false, false, false, gemm::Parallelism::None));
            let gd = time(f, || gemm::gemm(b, nv, m, vo.as_mut_ptr(), 1, nv as isize, false, h.as_ptr(), 1, m as isize, w.as_ptr(), m as isize, 1, 0.0, 1.0, false, false, false, gemm::Parallelism::None));
            let gg = time(2.0 * f, || gemm::gemm(nv, m, 2 * b, wg.as_mut_ptr(), 1, m as isize, true, x.as_ptr(), nv as isize, 1, y.as_ptr(), 1, m as isize, 1.0, 1e-9, false, false, false, gemm::Parallelism::None));
            println!("gemm m={m}: propup {gu:.1} propdown {gd:.1} grad {gg:.1} GFLOP/s");
        }
    }
}
