//! The parallel chain engine: an RBM's parameters split into a fixed number of
//! parts by hidden units, a team of threads that each own some parts, and the
//! phases of block Gibbs sampling written per part.
//!
//! Why this shape: at the tutorial's sizes one product takes 100-400 us, too
//! short for a BLAS's own threading to pay. Instead, part p owns the hidden
//! columns `C_p` of W as its own contiguous block, kept twice: `w` as
//! `[n_visible, |C_p|]` rows for propup and `wt` as `[|C_p|, n_visible]` rows
//! for propdown (each row padded to a multiple of 64 floats):
//!
//!   propup   (part p):  pre_h[:, C_p] = v W[:, C_p] + hbias[C_p]         no exchange
//!   propdown (part p):  partial_p     = h[:, C_p] W[:, C_p]^T           [batch, n_visible]
//!   visible  (rows q):  pre_v = Σ_p partial_p + vbias, over batch rows R_q
//!
//! Both products multiply a mostly-zero left operand (binary chain states, or
//! MNIST's background), so they run as sparse products ([`xw_product`]): the sum of the rows of
//! `w` (or `wt`) picked by the nonzeros. The two copies receive the same
//! increments, so they stay exact transposes of each other.
//!
//! The number of parts, [`N_PARTS`], is a constant, not the thread count:
//! every random stream belongs to a part and every sum runs over parts in a
//! fixed order, so results are bit-identical for any number of threads.
//! Phases are separated by a spinning barrier (a sleeping one costs more
//! than the work between two barriers).

use crate::math::{bias_sigmoid_sample, gemm, pad64, xw_product, Nonzeros};
use crate::model::Rbm;
use crate::rng::Stream;
use std::cell::UnsafeCell;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The fixed number of parts the hidden layer (and the batch rows) are split into.
pub const N_PARTS: usize = 2;
const _: () = assert!(N_PARTS >= 2, "the visible phase sums partial_0 + partial_1 first");

/// `range` of the p-th of `parts` near-equal pieces of 0..n.
pub fn split(n: usize, parts: usize, p: usize) -> Range<usize> {
    (n * p / parts)..(n * (p + 1) / parts)
}

/// A barrier that spins (then yields) instead of sleeping. If a thread of
/// the team panics, the barrier is poisoned and the others panic too, rather
/// than wait forever.
pub struct SpinBarrier {
    n: usize,
    count: AtomicUsize,
    generation: AtomicUsize,
    poisoned: std::sync::atomic::AtomicBool,
}

impl SpinBarrier {
    pub fn new(n: usize) -> Self {
        SpinBarrier { n, count: AtomicUsize::new(0), generation: AtomicUsize::new(0), poisoned: Default::default() }
    }

    pub fn wait(&self) {
        if self.n == 1 {
            return;
        }
        let gen = self.generation.load(Ordering::Acquire);
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.count.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
        } else {
            let mut spins = 0u32;
            while self.generation.load(Ordering::Acquire) == gen {
                if self.poisoned.load(Ordering::Relaxed) {
                    panic!("another thread of the team panicked");
                }
                if spins < 20_000 {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
    }
}

/// What one thread of a team knows: its id, and the barrier it shares.
pub struct Ctx<'a> {
    pub tid: usize,
    pub n_threads: usize,
    barrier: &'a SpinBarrier,
}

impl Ctx<'_> {
    /// The parts this thread owns: p ≡ tid (mod n_threads).
    pub fn parts(&self) -> impl Iterator<Item = usize> {
        (self.tid..N_PARTS).step_by(self.n_threads)
    }
    /// Waits until every thread of the team has arrived.
    pub fn sync(&self) {
        self.barrier.wait();
    }
}

/// Runs `f` on `n_threads` threads (the caller's thread is thread 0), SPMD style.
/// Threads beyond [`N_PARTS`] would own no part, so at most N_PARTS are started.
pub fn run_team<F: Fn(&Ctx) + Sync>(n_threads: usize, f: F) {
    let n = n_threads.clamp(1, N_PARTS);
    let barrier = SpinBarrier::new(n);
    let run = |tid: usize| {
        let ctx = Ctx { tid, n_threads: n, barrier: &barrier };
        if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&ctx))) {
            barrier.poisoned.store(true, Ordering::Relaxed);
            std::panic::resume_unwind(e);
        }
    };
    std::thread::scope(|s| {
        for tid in 1..n {
            let run = &run;
            s.spawn(move || run(tid));
        }
        run(0);
    });
}

/// A buffer that the threads of a team read and write in disjoint pieces,
/// phase by phase. Its accessors are `unsafe`: the caller promises that during
/// the current phase (between two barriers) no other thread writes what it
/// reads, nor touches what it writes.
pub struct Shared<T> {
    data: UnsafeCell<Vec<T>>,
}

// SAFETY: access is coordinated by the phase discipline documented on the type.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    pub fn new(v: Vec<T>) -> Self {
        Shared { data: UnsafeCell::new(v) }
    }
    /// # Safety
    /// Nobody writes `r` during this phase.
    pub unsafe fn get(&self, r: Range<usize>) -> &[T] {
        let v = &*self.data.get();
        assert!(r.end <= v.len());
        std::slice::from_raw_parts(v.as_ptr().add(r.start), r.len())
    }
    /// # Safety
    /// Nobody else reads or writes `r` during this phase.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get_mut(&self, r: Range<usize>) -> &mut [T] {
        let v = &mut *self.data.get();
        assert!(r.end <= v.len());
        std::slice::from_raw_parts_mut(v.as_mut_ptr().add(r.start), r.len())
    }
    /// Whole-buffer access when no team is running.
    pub fn whole_mut(&mut self) -> &mut Vec<T> {
        self.data.get_mut()
    }
    pub fn whole(&mut self) -> &[T] {
        self.data.get_mut()
    }
}

/// The state a part owns: its block of W and its hidden units' buffers.
/// Only the thread that owns the part locks it, so the lock is never contended.
pub struct Part {
    /// hidden units of this part
    pub cols: Range<usize>,
    /// batch rows whose visible units this part samples
    pub rows: Range<usize>,
    /// `[n_visible, ldw]`: W[:, cols], rows padded to ldw = pad64(m), m = |cols|
    pub w: Vec<f32>,
    pub ldw: usize,
    /// `[m, ldwt]`: W[:, cols]^T, rows padded to ldwt = pad64(n_visible)
    pub wt: Vec<f32>,
    pub ldwt: usize,
    /// `[n_visible, m]` scratch: a weight increment
    pub dw: Vec<f32>,
    /// scratch of the sparse products
    pub nonzeros: Nonzeros,
    /// `[m]`
    pub hbias: Vec<f32>,
    /// `[batch, m]` pre-sigmoid activations of the hidden units
    pub pre_h: Vec<f32>,
    /// `[2 * batch, m]`: rows 0..batch h_pos means (training), rows batch..2 batch the chain's h means
    pub h_mean: Vec<f32>,
    /// `[batch, m]` the chain's hidden states (PCD's persistent chain between updates)
    pub h_sample: Vec<f32>,
    /// `[batch, m]` uniform draws for the hidden units
    pub u_h: Vec<f32>,
    /// `[|rows|, n_visible]` uniform draws for the visible units
    pub u_v: Vec<f32>,
    /// draws for this part's hidden units
    pub hid_rng: Stream,
    /// draws for the visible units of this part's batch rows
    pub vis_rng: Stream,
    /// `[n_visible]` scratch: an effective visible bias (annealing) or column sums (gradient)
    pub vb_eff: Vec<f32>,
    /// `[m]` scratch: an effective hidden bias (annealing) or column sums (gradient)
    pub hb_eff: Vec<f32>,
}

/// The stream ids the engine derives from its seed: part p draws its hidden
/// units from `base + 2p` and its rows' visible units from `base + 2p + 1`.
pub fn stream_ids(base: u64, p: usize) -> (u64, u64) {
    (base + 2 * p as u64, base + 2 * p as u64 + 1)
}

/// An RBM split into parts, with `batch` chains (rows) in flight.
pub struct Engine {
    pub n_visible: usize,
    pub n_hidden: usize,
    pub batch: usize,
    pub parts: Vec<Mutex<Part>>,
    /// `[2 * batch, n_visible]`: rows 0..batch the data (v_pos), rows batch.. the chain's visible states
    pub x: Shared<f32>,
    /// `[N_PARTS, batch, n_visible]` per-part partial products of propdown
    pub partial: Shared<f32>,
    /// `[batch, n_visible]` pre-sigmoid activations of the visible units
    pub pre_v: Shared<f32>,
    /// `[batch, n_visible]` means of the visible units
    pub v_mean: Shared<f32>,
    /// `[n_visible]`
    pub vbias: Shared<f32>,
}

/// Which half of `Engine::x` a propup reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Rows {
    /// rows 0..batch: the data
    Data,
    /// rows batch..2 batch: the chain's visible states
    Chain,
}

impl Engine {
    /// Splits `rbm` into parts for `batch` chains, with streams
    /// `stream_ids(stream_base, p)` of the family `seed`.
    pub fn new(rbm: &Rbm, batch: usize, seed: u64, stream_base: u64) -> Self {
        let (nv, nh) = (rbm.n_visible, rbm.n_hidden);
        let parts = (0..N_PARTS)
            .map(|p| {
                let cols = split(nh, N_PARTS, p);
                let rows = split(batch, N_PARTS, p);
                let m = cols.len();
                let (ldw, ldwt) = (pad64(m), pad64(nv));
                let mut w = vec![0f32; nv * ldw];
                let mut wt = vec![0f32; m * ldwt];
                for i in 0..nv {
                    for (jj, j) in cols.clone().enumerate() {
                        w[i * ldw + jj] = rbm.w[i * nh + j];
                        wt[jj * ldwt + i] = rbm.w[i * nh + j];
                    }
                }
                let (hid, vis) = stream_ids(stream_base, p);
                Mutex::new(Part {
                    hbias: rbm.hbias[cols.clone()].to_vec(),
                    pre_h: vec![0.0; batch * m],
                    h_mean: vec![0.0; 2 * batch * m],
                    h_sample: vec![0.0; batch * m],
                    u_h: vec![0.0; batch * m],
                    u_v: vec![0.0; rows.len() * nv],
                    hid_rng: Stream::new(seed, hid),
                    vis_rng: Stream::new(seed, vis),
                    vb_eff: vec![0.0; nv],
                    hb_eff: vec![0.0; m],
                    dw: vec![0.0; nv * m],
                    nonzeros: Nonzeros::default(),
                    cols,
                    rows,
                    w,
                    ldw,
                    wt,
                    ldwt,
                })
            })
            .collect();
        Engine {
            n_visible: nv,
            n_hidden: nh,
            batch,
            parts,
            x: Shared::new(vec![0.0; 2 * batch * nv]),
            partial: Shared::new(vec![0.0; N_PARTS * batch * nv]),
            pre_v: Shared::new(vec![0.0; batch * nv]),
            v_mean: Shared::new(vec![0.0; batch * nv]),
            vbias: Shared::new(rbm.vbias.clone()),
        }
    }

    /// Gathers the parts back into an [`Rbm`].
    pub fn to_rbm(&mut self) -> Rbm {
        let (nv, nh) = (self.n_visible, self.n_hidden);
        let mut w = vec![0f32; nv * nh];
        let mut hbias = vec![0f32; nh];
        for part in &mut self.parts {
            let part = part.get_mut().unwrap();
            let m = part.cols.len();
            for i in 0..nv {
                w[i * nh + part.cols.start..i * nh + part.cols.end]
                    .copy_from_slice(&part.w[i * part.ldw..i * part.ldw + m]);
            }
            hbias[part.cols.clone()].copy_from_slice(&part.hbias);
        }
        Rbm { n_visible: nv, n_hidden: nh, w, hbias, vbias: self.vbias.whole().to_vec() }
    }

    /// Row range of the data half or the chain half of `x`.
    pub fn x_rows(&self, rows: Rows) -> Range<usize> {
        let n = self.batch * self.n_visible;
        match rows {
            Rows::Data => 0..n,
            Rows::Chain => n..2 * n,
        }
    }

    /// Eq. 7 for part p at inverse temperature `beta` (1 for the model itself):
    /// pre_h = beta (x W_p + hbias_p); the means go to h_mean rows `mean_half`
    /// (0 for h_pos, 1 for the chain), and when `draw`, h_sample ~ Bern(mean).
    ///
    /// Phase rule: reads `x[rows]` (nobody writes it), writes only part p.
    pub fn propup(&self, part: &mut Part, rows: Rows, beta: f32, mean_half: usize, draw: bool) {
        let (b, nv, m) = (self.batch, self.n_visible, part.cols.len());
        // SAFETY: no phase that runs propup writes x.
        let x = unsafe { self.x.get(self.x_rows(rows)) };
        xw_product(&mut part.pre_h, b, m, nv, x, &part.w, part.ldw, beta, &mut part.nonzeros);
        let Part { hbias, hb_eff, pre_h, h_mean, h_sample, u_h, hid_rng, .. } = part;
        let bias: &[f32] = if beta == 1.0 {
            hbias
        } else {
            for (e, &c) in hb_eff.iter_mut().zip(hbias.iter()) {
                *e = beta * c;
            }
            hb_eff
        };
        let mean = &mut h_mean[mean_half * b * m..(mean_half + 1) * b * m];
        if draw {
            hid_rng.fill_uniform(u_h);
            bias_sigmoid_sample(pre_h, bias, mean, h_sample, u_h);
        } else {
            crate::math::bias_sigmoid(pre_h, bias, mean);
        }
    }

    /// Eq. 8's product for part p: partial_p = h_sample_p W_p^T, `[batch, n_visible]`.
    ///
    /// Phase rule: writes only partial_p.
    pub fn propdown(&self, part: &mut Part, p: usize) {
        let (b, nv, m) = (self.batch, self.n_visible, part.cols.len());
        // SAFETY: partial_p is written by part p alone, and read only after the next barrier.
        let out = unsafe { self.partial.get_mut(p * b * nv..(p + 1) * b * nv) };
        xw_product(out, b, nv, m, &part.h_sample, &part.wt, part.ldwt, 1.0, &mut part.nonzeros);
    }

    /// W[:, C_p] += alpha · a^T y for part p, in both copies: `a` is
    /// `[rows, n_visible]`, `y` is `[rows, m]`. The increment is one dense
    /// product into `dw`, then added to `w` row by row and to `wt` by tiles.
    pub fn add_to_weights(part: &mut Part, nv: usize, rows: usize, a: &[f32], y: &[f32], alpha: f32) {
        let m = part.cols.len();
        let Part { dw, w, wt, ldw, ldwt, .. } = part;
        gemm(dw, nv, m, rows, a, true, y, false, alpha, false);
        for i in 0..nv {
            for (x, &d) in w[i * *ldw..i * *ldw + m].iter_mut().zip(&dw[i * m..(i + 1) * m]) {
                *x += d;
            }
        }
        // wt += dw^T by 8 x 8 tiles: a tile of dw is read row by row into
        // registers, then added to wt column by column.
        const T: usize = 8;
        let mut tile = [[0f32; T]; T];
        for i0 in (0..nv).step_by(T) {
            let ni = T.min(nv - i0);
            for j0 in (0..m).step_by(T) {
                let nj = T.min(m - j0);
                for (i, t) in tile.iter_mut().enumerate().take(ni) {
                    let src = &dw[(i0 + i) * m + j0..(i0 + i) * m + j0 + nj];
                    if nj == T {
                        // a fixed-size copy: two vector moves, not a call to memmove
                        *t = src.try_into().unwrap();
                    } else {
                        t[..nj].copy_from_slice(src);
                    }
                }
                for j in 0..nj {
                    let out = &mut wt[(j0 + j) * *ldwt + i0..(j0 + j) * *ldwt + i0 + ni];
                    for (i, o) in out.iter_mut().enumerate() {
                        *o += tile[i][j];
                    }
                }
            }
        }
    }

    /// Eq. 8 for the batch rows of part q:
    /// pre_v = beta (Σ_p partial_p + vbias) + (1 - beta) base_vbias, v_mean = sigm(pre_v), and the chain's visible
    /// states x[chain rows] ~ Bern(v_mean). The sum over parts runs in part order.
    ///
    /// Phase rule: reads every partial and vbias (nobody writes them), writes
    /// pre_v, v_mean and x's chain half in rows `part.rows` only.
    pub fn visible(&self, part: &mut Part, beta: f32, base_vbias: Option<&[f32]>) {
        let (b, nv) = (self.batch, self.n_visible);
        let r = part.rows.start * nv..part.rows.end * nv;
        if r.is_empty() {
            return;
        }
        // SAFETY: see the phase rule above.
        let (pre, mean, x, vbias) = unsafe {
            (
                self.pre_v.get_mut(r.clone()),
                self.v_mean.get_mut(r.clone()),
                self.x.get_mut(b * nv + r.start..b * nv + r.end),
                self.vbias.get(0..nv),
            )
        };
        // pre = partial_0 + partial_1 (+ further parts), in part order
        let (p0, p1) = unsafe { (self.partial.get(r.clone()), self.partial.get(b * nv + r.start..b * nv + r.end)) };
        for ((a, &x), &y) in pre.iter_mut().zip(p0).zip(p1) {
            *a = x + y;
        }
        for p in (0..N_PARTS).skip(2) {
            let other = unsafe { self.partial.get(p * b * nv + r.start..p * b * nv + r.end) };
            for (a, &o) in pre.iter_mut().zip(other) {
                *a += o;
            }
        }
        let Part { vb_eff, u_v, vis_rng, .. } = part;
        let bias: &[f32] = match base_vbias {
            None if beta == 1.0 => vbias,
            _ => {
                for a in pre.iter_mut() {
                    *a *= beta;
                }
                for i in 0..nv {
                    let base = base_vbias.map_or(0.0, |v| v[i]);
                    vb_eff[i] = beta * vbias[i] + (1.0 - beta) * base;
                }
                vb_eff
            }
        };
        vis_rng.fill_uniform(u_v);
        bias_sigmoid_sample(pre, bias, mean, x, u_v);
    }

    /// Sets the chain's visible states (rows batch..2 batch of x), `[batch, n_visible]`.
    pub fn set_chain_visible(&mut self, v: &[f32]) {
        let r = self.x_rows(Rows::Chain);
        self.x.whole_mut()[r].copy_from_slice(v);
    }

    /// Copies out the chain's visible states, `[batch, n_visible]`.
    pub fn chain_visible(&mut self) -> Vec<f32> {
        let r = self.x_rows(Rows::Chain);
        self.x.whole_mut()[r].to_vec()
    }

    /// Runs `steps` steps of gibbs_vhv (v → h → v) on every chain with
    /// `n_threads` threads, starting from the chain's visible states. Afterwards
    /// x's chain half holds the visible samples and `v_mean` their means.
    pub fn gibbs_vhv(&mut self, steps: usize, n_threads: usize) {
        let this = &*self;
        run_team(n_threads, |ctx| {
            for _ in 0..steps {
                for p in ctx.parts() {
                    let mut part = this.parts[p].lock().unwrap();
                    this.propup(&mut part, Rows::Chain, 1.0, 1, true);
                    this.propdown(&mut part, p);
                }
                ctx.sync();
                for q in ctx.parts() {
                    this.visible(&mut this.parts[q].lock().unwrap(), 1.0, None);
                }
                ctx.sync();
            }
        });
    }
}

/// The stream ids the sampler uses.
pub const SAMPLE_STREAMS: u64 = 200;

/// The tutorial's sampling: `n_chains` chains start at `init` (`[n_chains,
/// n_visible]`, grey values allowed); before each of `n_rows` plotted rows
/// they take `plot_every` gibbs_vhv steps. Returns, per row, the last step's
/// mean-field visible activations `[n_chains, n_visible]`.
pub fn sample_rows(
    rbm: &Rbm,
    init: &[f32],
    n_rows: usize,
    plot_every: usize,
    seed: u64,
    n_threads: usize,
    mut on_row: impl FnMut(usize),
) -> Vec<Vec<f32>> {
    let n_chains = init.len() / rbm.n_visible;
    let mut engine = Engine::new(rbm, n_chains, seed, SAMPLE_STREAMS);
    engine.set_chain_visible(init);
    (0..n_rows)
        .map(|r| {
            engine.gibbs_vhv(plot_every, n_threads);
            on_row(r);
            engine.v_mean.whole().to_vec()
        })
        .collect()
}

/// The matrix products of `n_updates` training updates and nothing else (no
/// sampling, no barriers), each part on its thread as in training: the speed
/// limit the training loop is measured against. `monitor_product` adds the
/// pseudo-likelihood's product. Returns the seconds taken.
pub fn products_only(
    rbm: &Rbm,
    batch: usize,
    k: usize,
    monitor_product: bool,
    n_updates: usize,
    n_threads: usize,
) -> f64 {
    let mut engine = Engine::new(rbm, batch, 0, 0);
    for part in &mut engine.parts {
        let part = part.get_mut().unwrap();
        part.h_mean.iter_mut().for_each(|h| *h = 0.0); // the "gradient" adds zeros
        part.w = part.dw.clone(); // dense [n_visible, m] operands for the dense products
    }
    let (b, nv) = (batch, rbm.n_visible);
    let this = &engine;
    let t = std::time::Instant::now();
    run_team(n_threads, |ctx| {
        for p in ctx.parts() {
            let mut guard = this.parts[p].lock().unwrap();
            let part = &mut *guard;
            let m = part.cols.len();
            // SAFETY: this function's threads only read x and write their own partial.
            let x = unsafe { this.x.get(0..2 * b * nv) };
            let partial = unsafe { this.partial.get_mut(p * b * nv..(p + 1) * b * nv) };
            for _ in 0..n_updates {
                gemm(&mut part.pre_h, b, m, nv, &x[..b * nv], false, &part.w, false, 1.0, false);
                if monitor_product {
                    gemm(&mut part.pre_h, b, m, nv, &x[..b * nv], false, &part.w, false, 1.0, false);
                }
                for _ in 0..k {
                    gemm(partial, b, nv, m, &part.h_sample, false, &part.w, true, 1.0, false);
                    gemm(&mut part.pre_h, b, m, nv, &x[b * nv..], false, &part.w, false, 1.0, false);
                }
                gemm(&mut part.w, nv, m, 2 * b, x, true, &part.h_mean, false, 1.0, true);
            }
        }
    });
    t.elapsed().as_secs_f64()
}

/// Floating-point operations of one training update's products:
/// (2 + 2 [monitor] + 4k + 4) · batch · n_visible · n_hidden.
pub fn update_flops(nv: usize, nh: usize, batch: usize, k: usize, monitor_product: bool) -> f64 {
    let per = (batch * nv * nh) as f64;
    (2.0 + if monitor_product { 2.0 } else { 0.0 } + 4.0 * k as f64 + 4.0) * per
}

impl Engine {
    /// The chains' hidden states gathered from the parts, `[batch, n_hidden]`.
    pub fn chain_hidden(&mut self) -> Vec<f32> {
        let (b, nh) = (self.batch, self.n_hidden);
        let mut h = vec![0f32; b * nh];
        for part in &mut self.parts {
            let part = part.get_mut().unwrap();
            let m = part.cols.len();
            for r in 0..b {
                h[r * nh + part.cols.start..r * nh + part.cols.end].copy_from_slice(&part.h_sample[r * m..(r + 1) * m]);
            }
        }
        h
    }

    /// Sets the chains' hidden states, `[batch, n_hidden]`.
    pub fn set_chain_hidden(&mut self, h: &[f32]) {
        let (b, nh) = (self.batch, self.n_hidden);
        assert_eq!(h.len(), b * nh);
        for part in &mut self.parts {
            let part = part.get_mut().unwrap();
            let m = part.cols.len();
            for r in 0..b {
                part.h_sample[r * m..(r + 1) * m].copy_from_slice(&h[r * nh + part.cols.start..r * nh + part.cols.end]);
            }
        }
    }

    /// Every part's (hidden, visible) random streams, in part order.
    pub fn streams(&mut self) -> Vec<(Stream, Stream)> {
        self.parts
            .iter_mut()
            .map(|p| {
                let p = p.get_mut().unwrap();
                (p.hid_rng.clone(), p.vis_rng.clone())
            })
            .collect()
    }

    /// Restores the streams saved by [`Engine::streams`].
    pub fn set_streams(&mut self, streams: &[(Stream, Stream)]) {
        assert_eq!(streams.len(), N_PARTS);
        for (part, (h, v)) in self.parts.iter_mut().zip(streams) {
            let p = part.get_mut().unwrap();
            p.hid_rng = h.clone();
            p.vis_rng = v.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic]
    fn a_panic_in_one_thread_poisons_the_barrier_instead_of_hanging_the_others() {
        run_team(2, |ctx| {
            if ctx.tid == 1 {
                panic!("deliberate");
            }
            ctx.sync();
            ctx.sync();
        });
    }

    #[test]
    fn parts_cover_the_range_whatever_the_thread_count() {
        for n in [0, 1, 5, 500] {
            let total: usize = (0..N_PARTS).map(|p| split(n, N_PARTS, p).len()).sum();
            assert_eq!(total, n);
        }
        let owned = |threads: usize| -> Vec<usize> {
            let seen = Mutex::new(Vec::new());
            run_team(threads, |ctx| seen.lock().unwrap().extend(ctx.parts()));
            let mut v = seen.into_inner().unwrap();
            v.sort();
            v
        };
        assert_eq!(owned(1), (0..N_PARTS).collect::<Vec<_>>());
        assert_eq!(owned(2), owned(1));
        assert_eq!(owned(7), owned(1));
    }
}
