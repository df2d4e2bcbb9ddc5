//! The parallel chain engine: an RBM's units split into a fixed number of
//! parts, a team of threads that each own a contiguous run of parts, and the
//! phases of block Gibbs sampling.
//!
//! Parts and threads. Part p owns the hidden units `C_p` and the visible units
//! `V_p` (whole 8-unit groups, split as evenly as the parts allow). Every
//! 8-unit group draws from its own random stream, every product sums over
//! its nonzeros in unit order, and every monitor sums by groups, whatever the
//! split; so results are bit-identical for any number of threads and any
//! number of parts. The number of parts ([`DEFAULT_PARTS`]) is the grain of
//! the parallel work: a thread owns a contiguous run of parts.
//!
//! What a thread holds (its *slab*: the union of its parts' units, `C_T` and `V_T`):
//!
//!   w   `[n_visible, |C_T|]`  W[:, C_T], for propup     pre_h[:, C_T] = x W[:, C_T]
//!   wt  `[n_hidden, |V_T|]`   W[V_T, :]^T, for propdown  pre_v[:, V_T] = h W[V_T, :]^T
//!
//! so each thread reads only its own share of W in both products, and no
//! partial sums cross threads. The two copies receive the same increments
//! (dW is computed once, by the hidden side, and transposed into `wt` by
//! the visible side after a barrier), so they stay exact transposes.
//!
//! Both products multiply a mostly-zero left operand (binary chain states, or
//! MNIST's background): each thread compacts the operand's nonzeros once per
//! phase and runs a sparse product ([`crate::math::sparse_rows`]) over them,
//! or a dense one above 30% nonzeros.
//!
//! Threads share buffers only through `std::sync` locks, taken at the start of
//! a phase and released before the barrier that ends it: a buffer is written
//! by its owner in one phase and read by the others in the next. The locks are
//! never contended when the phases are kept; if they were not, a thread would
//! wait, never race. Phases are separated by a spinning barrier (a sleeping one
//! costs more than the work between two barriers).

use crate::math::{
    bias_sigmoid, bias_sigmoid_sample_groups, count_nonzero, gemm, normal_groups, pad16, sparse_enough, xw_product,
    NzRows,
};
use crate::model::Rbm;
use crate::rng::Stream;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

/// The default number of parts: enough for a 16-core machine to have work
/// for every core, and no slower than 2 parts on 2 cores (see the benchmark).
pub const DEFAULT_PARTS: usize = 16;

/// The largest number of parts a run may ask for.
pub const MAX_PARTS: usize = 256;

/// `range` of the p-th of `parts` near-equal pieces of 0..n.
pub fn split(n: usize, parts: usize, p: usize) -> Range<usize> {
    (n * p / parts)..(n * (p + 1) / parts)
}

/// The units of part p of a layer of n units: whole 8-unit groups, so that
/// every part but the last runs its elementwise passes on full vectors.
pub fn unit_split(n: usize, parts: usize, p: usize) -> Range<usize> {
    let g = split(n.div_ceil(8), parts, p);
    (g.start * 8).min(n)..(g.end * 8).min(n)
}

/// A barrier that spins (then yields) instead of sleeping; it yields at once
/// when there are more threads than cores. If a thread of the team panics,
/// the barrier is poisoned and the others panic too, rather than wait forever.
pub(crate) struct SpinBarrier {
    n: usize,
    spins: u32,
    count: AtomicUsize,
    generation: AtomicUsize,
    poisoned: AtomicBool,
}

impl SpinBarrier {
    fn new(n: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        SpinBarrier {
            n,
            spins: if n <= cores { 20_000 } else { 0 },
            count: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
        }
    }

    fn wait(&self) {
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
                if spins < self.spins {
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
pub(crate) struct Ctx<'a> {
    pub tid: usize,
    barrier: &'a SpinBarrier,
}

impl Ctx<'_> {
    /// Waits until every thread of the team has arrived.
    pub fn sync(&self) {
        self.barrier.wait();
    }
}

/// Runs `f` on `n_threads` threads (the caller's thread is thread 0), SPMD style.
pub(crate) fn run_team<F: Fn(&Ctx) + Sync>(n_threads: usize, f: F) {
    let n = n_threads.max(1);
    let barrier = SpinBarrier::new(n);
    let run = |tid: usize| {
        let ctx = Ctx { tid, barrier: &barrier };
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

/// What only the thread of a slab touches (its lock is never contended).
pub(crate) struct Own {
    /// `[n_visible, ldw]`: W[:, C_T], rows padded to ldw = pad16(m), m = |C_T|
    pub w: Vec<f32>,
    pub ldw: usize,
    /// `[n_hidden, ldwt]`: W[V_T, :]^T, rows padded to ldwt = pad16(mv), mv = |V_T|
    pub wt: Vec<f32>,
    pub ldwt: usize,
    /// `[m]`
    pub hbias: Vec<f32>,
    /// `[mv]`
    pub vbias: Vec<f32>,
    /// `[batch, m]` pre-sigmoid activations of the hidden units
    pub pre_h: Vec<f32>,
    /// `[2 * batch, m]`: rows 0..batch h_pos means (training), rows batch.. the chain's h means
    pub h_mean: Vec<f32>,
    /// `[batch, mv]` pre-sigmoid activations of the visible units
    pub pre_v: Vec<f32>,
    /// `[batch, mv]` means of the visible units
    pub v_mean: Vec<f32>,
    /// the random streams of the slab's hidden and visible 8-unit groups
    pub hid_streams: Vec<Stream>,
    pub vis_streams: Vec<Stream>,
    /// `[batch, groups of C_T]` scratch: per-group sums of a monitor or weight term
    pub group_sums: Vec<f32>,
    /// `[m]` scratch: an effective hidden bias (annealing) or column sums (gradient)
    pub hb_eff: Vec<f32>,
    /// `[mv]` scratch: an effective visible bias (annealing) or column sums (gradient)
    pub vb_eff: Vec<f32>,
    /// `[mv]` the visible units' standard deviations (Gaussian units; empty for binary ones)
    pub sigma: Vec<f32>,
    /// the nonzeros of the operand of the current product
    pub nz: NzRows,
    /// `[2 * batch, n_visible]` scratch: x gathered whole (dense products, gradient)
    pub xbuf: Vec<f32>,
    /// `[batch, n_hidden]` scratch: h gathered whole (dense propdown)
    pub hbuf: Vec<f32>,
    /// `[batch]` scratch: a per-row sum
    pub row_sums: Vec<f32>,
    /// scratch of the random draws: uniforms (and normals, for Gaussian units)
    pub noise: Vec<f32>,
    /// scratch of a learned sigma's gradient: `[2 batch, n_hidden]` means, `[2 batch, mv]` their product with W^T
    pub qbuf: Vec<f32>,
    pub qw: Vec<f32>,
    /// `[mv]` the sigmas after this update's step
    pub sigma_next: Vec<f32>,
    /// `[m]` and `[mv]`: the hidden and visible biases' velocities (momentum;
    /// the weights' velocity is the slab's `dw`)
    pub hb_vel: Vec<f32>,
    pub vb_vel: Vec<f32>,
    /// centring: `[n_visible]` the visible offsets μ (every thread keeps the
    /// whole, updated alike) and `[m]` the slab's hidden offsets λ
    pub v_offset: Vec<f32>,
    pub h_offset: Vec<f32>,
    /// `[m]` scratch: the minibatch's mean of h_pos (sparsity, centring)
    pub q_mean: Vec<f32>,
    /// `[m]` scratch: centring's hidden-bias correction Σ_rows (x_c μ) y_c
    pub hc_corr: Vec<f32>,
    /// `[2 batch]` scratch: a per-row dot product
    pub d_row: Vec<f32>,
    /// `[n_visible]` scratch: the minibatch's mean (centring)
    pub data_mean: Vec<f32>,
    /// `[batch, n_visible]` this thread's copy of the minibatch, v_pos (x = v / sigma
    /// for Gaussian units): each thread reads it itself, so none waits for
    /// another's load and no line of it crosses between cores
    pub x_data: Vec<f32>,
    /// `[batch, n_visible]` the minibatch rounded to 0/1 (the pseudo-likelihood's input)
    pub xi_data: Vec<f32>,
}

/// One thread's share of the engine.
pub(crate) struct Slab {
    /// hidden units C_T and visible units V_T of the slab's parts
    pub cols: Range<usize>,
    pub vcols: Range<usize>,
    pub own: Mutex<Own>,
    /// `[batch, m]` the chain's hidden states: written in the hidden phase, read by all in the visible phase
    pub h: RwLock<Vec<f32>>,
    /// `[batch, mv]` the chain's visible states: written in the visible phase, read by all in the hidden phase
    pub v: RwLock<Vec<f32>>,
    /// `[n_visible, m]` this update's weight increment (with momentum, the
    /// weights' velocity): written by the hidden side, read by all visible sides
    pub dw: RwLock<Vec<f32>>,
    /// `[2 batch, m]` h_pos and h_neg means, published for a learned sigma's gradient
    pub q: RwLock<Vec<f32>>,
}

/// An RBM split into parts and laid out on a team of threads, with `batch`
/// chains in flight. Its methods are safe whatever the caller does: every
/// buffer that threads share sits behind a lock.
pub struct Engine {
    pub(crate) n_visible: usize,
    pub(crate) n_hidden: usize,
    /// rows of the minibatch (the data)
    pub(crate) batch: usize,
    /// chains in flight (PCD's persistent chains; the same as batch for CD,
    /// sampling and annealing)
    pub(crate) chains: usize,
    /// the chain rows that enter the gradient: the first `neg_rows` (all of
    /// them, but with tempering only those at inverse temperature 1)
    pub(crate) neg_rows: usize,
    /// tempering: `[chains]` the inverse temperature of each chain row
    pub(crate) row_beta: Option<Vec<f32>>,
    pub(crate) n_parts: usize,
    pub(crate) slabs: Vec<Slab>,
    /// `[n_visible]` for Gaussian visible units: their standard deviations. The
    /// engine then holds visible states in units of sigma, x = v / sigma, so
    /// that propup is x W + c as for binary units.
    pub(crate) sigma: Option<RwLock<Vec<f32>>>,
}

/// Which rows a propup reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Rows {
    /// the minibatch
    Data,
    /// the minibatch rounded to 0/1
    Rounded,
    /// the chain's visible states
    Chain,
}

/// The stream ids the engine derives from its seed: hidden units 8g..8g+8
/// draw from `base + 2g`, visible units 8g..8g+8 from `base + 2g + 1`.
pub fn stream_ids(base: u64, g: usize) -> (u64, u64) {
    (base + 2 * g as u64, base + 2 * g as u64 + 1)
}

/// The 8-unit groups that the units `r` cover.
pub(crate) fn groups(r: &Range<usize>) -> Range<usize> {
    r.start / 8..r.end.div_ceil(8)
}

impl Engine {
    /// Splits `rbm` into `n_parts` parts (clamped to 1..=[`MAX_PARTS`]) for
    /// `batch` chains, laid out for `n_threads` threads, with the streams
    /// `stream_ids(stream_base, g)` of the family `seed` for its 8-unit groups.
    pub fn new(rbm: &Rbm, batch: usize, seed: u64, stream_base: u64, n_parts: usize, n_threads: usize) -> Self {
        Self::with_chains(rbm, batch, batch, seed, stream_base, n_parts, n_threads)
    }

    /// [`Engine::new`] with `chains` chains in flight beside minibatches of
    /// `batch` rows.
    pub fn with_chains(
        rbm: &Rbm,
        batch: usize,
        chains: usize,
        seed: u64,
        stream_base: u64,
        n_parts: usize,
        n_threads: usize,
    ) -> Self {
        let n_parts = n_parts.clamp(1, MAX_PARTS);
        let hid =
            (0..rbm.n_hidden.div_ceil(8)).map(|g| Stream::new(seed, stream_ids(stream_base, g).0)).collect::<Vec<_>>();
        let vis =
            (0..rbm.n_visible.div_ceil(8)).map(|g| Stream::new(seed, stream_ids(stream_base, g).1)).collect::<Vec<_>>();
        Self::layout(rbm, (batch, chains), n_parts, n_threads.clamp(1, n_parts), (&hid, &vis))
    }

    fn layout(
        rbm: &Rbm,
        (batch, chains): (usize, usize),
        n_parts: usize,
        n_slabs: usize,
        streams: (&[Stream], &[Stream]),
    ) -> Self {
        assert!(n_parts >= 1);
        assert!(streams.0.len() == rbm.n_hidden.div_ceil(8) && streams.1.len() == rbm.n_visible.div_ceil(8));
        // b data rows, c chains; r rows of a propup at most
        let (nv, nh, b, c) = (rbm.n_visible, rbm.n_hidden, batch, chains);
        let r = b.max(c);
        let slabs = (0..n_slabs)
            .map(|t| {
                let parts = split(n_parts, n_slabs, t);
                let cols = unit_split(nh, n_parts, parts.start).start..unit_split(nh, n_parts, parts.end - 1).end;
                let vcols = unit_split(nv, n_parts, parts.start).start..unit_split(nv, n_parts, parts.end - 1).end;
                let (m, mv) = (cols.len(), vcols.len());
                let (ldw, ldwt) = (pad16(m), pad16(mv));
                let mut w = vec![0f32; nv * ldw];
                let mut wt = vec![0f32; nh * ldwt];
                for i in 0..nv {
                    for (jj, j) in cols.clone().enumerate() {
                        w[i * ldw + jj] = rbm.w[i * nh + j];
                    }
                }
                transpose_rows(&mut wt, ldwt, &rbm.w, nh, &vcols);
                let own = Own {
                    w,
                    ldw,
                    wt,
                    ldwt,
                    hbias: rbm.hbias[cols.clone()].to_vec(),
                    vbias: rbm.vbias[vcols.clone()].to_vec(),
                    pre_h: vec![0.0; r * m],
                    h_mean: vec![0.0; (b + c) * m],
                    pre_v: vec![0.0; c * mv],
                    v_mean: vec![0.0; c * mv],
                    hid_streams: streams.0[groups(&cols)].to_vec(),
                    vis_streams: streams.1[groups(&vcols)].to_vec(),
                    group_sums: vec![0.0; r * groups(&cols).len().max(groups(&vcols).len())],
                    hb_eff: vec![0.0; m],
                    vb_eff: vec![0.0; mv],
                    nz: NzRows::default(),
                    xbuf: vec![0.0; (b + c) * nv],
                    hbuf: vec![0.0; c * nh],
                    row_sums: vec![0.0; r],
                    noise: Vec::new(),
                    qbuf: Vec::new(),
                    qw: Vec::new(),
                    sigma_next: Vec::new(),
                    sigma: Vec::new(),
                    hb_vel: vec![0.0; m],
                    vb_vel: vec![0.0; mv],
                    v_offset: vec![0.5; nv],
                    h_offset: vec![0.5; m],
                    q_mean: vec![0.0; m],
                    hc_corr: vec![0.0; m],
                    d_row: vec![0.0; b + c],
                    data_mean: vec![0.0; nv],
                    x_data: Vec::new(),
                    xi_data: Vec::new(),
                };
                Slab {
                    own: Mutex::new(own),
                    h: RwLock::new(vec![0.0; c * m]),
                    v: RwLock::new(vec![0.0; c * mv]),
                    dw: RwLock::new(vec![0.0; nv * m]),
                    q: RwLock::new(Vec::new()),
                    cols,
                    vcols,
                }
            })
            .collect();
        Engine {
            n_visible: nv,
            n_hidden: nh,
            batch,
            chains,
            neg_rows: chains,
            row_beta: None,
            n_parts,
            slabs,
            sigma: None,
        }
    }

    /// Makes the visible units Gaussian with standard deviations `sigma`
    /// `[n_visible]` (positive; see [`crate::gaussian`]).
    pub(crate) fn set_sigma(&mut self, sigma: &[f32]) {
        assert_eq!(sigma.len(), self.n_visible);
        for slab in &mut self.slabs {
            slab.own.get_mut().unwrap().sigma = sigma[slab.vcols.clone()].to_vec();
        }
        self.sigma = Some(RwLock::new(sigma.to_vec()));
    }

    /// The number of parts.
    pub fn n_parts(&self) -> usize {
        self.n_parts
    }

    /// The number of chains (rows) in flight.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Lays the engine out for `n_threads` threads (at most one per part),
    /// keeping its parameters, chains and streams; returns the team size.
    pub(crate) fn relayout(&mut self, n_threads: usize) -> usize {
        let t = n_threads.clamp(1, self.n_parts);
        if t != self.slabs.len() {
            let (rbm, h, v, streams) = (self.to_rbm(), self.chain_hidden(), self.chain_states(), self.streams());
            let velocity = self.velocity();
            let offsets = self.offsets();
            let tempering = (self.neg_rows, self.row_beta.take());
            let sigma = self.sigma.take().map(|s| s.into_inner().unwrap());
            *self = Self::layout(&rbm, (self.batch, self.chains), self.n_parts, t, (&streams.0, &streams.1));
            if let Some(sigma) = sigma {
                self.set_sigma(&sigma);
            }
            self.set_chain_hidden(&h);
            self.set_chain_states(&v);
            self.set_velocity(&velocity);
            self.set_offsets(&offsets.0, &offsets.1);
            (self.neg_rows, self.row_beta) = tempering;
        }
        t
    }

    /// Tempering: chain row r runs at inverse temperature `betas[r]`
    /// (`[chains]`), and only the first `neg_rows` rows enter the gradient.
    pub(crate) fn set_tempering(&mut self, betas: Vec<f32>, neg_rows: usize) {
        assert!(betas.len() == self.chains && neg_rows <= self.chains);
        (self.row_beta, self.neg_rows) = (Some(betas), neg_rows);
    }

    /// Centring's offsets: (μ `[n_visible]`, λ `[n_hidden]`).
    pub fn offsets(&mut self) -> (Vec<f32>, Vec<f32>) {
        let mut lambda = vec![0f32; self.n_hidden];
        for slab in &mut self.slabs {
            lambda[slab.cols.clone()].copy_from_slice(&slab.own.get_mut().unwrap().h_offset);
        }
        (self.slabs[0].own.get_mut().unwrap().v_offset.clone(), lambda)
    }

    /// Sets centring's offsets μ `[n_visible]` and λ `[n_hidden]`.
    pub fn set_offsets(&mut self, mu: &[f32], lambda: &[f32]) {
        assert!(mu.len() == self.n_visible && lambda.len() == self.n_hidden, "set_offsets: shapes differ");
        for slab in &mut self.slabs {
            let own = slab.own.get_mut().unwrap();
            own.v_offset.copy_from_slice(mu);
            own.h_offset.copy_from_slice(&lambda[slab.cols.clone()]);
        }
    }

    /// The last update's increments as an [`Rbm`]'s parameters (with
    /// momentum: the velocities of W, hbias and vbias).
    pub fn velocity(&mut self) -> Rbm {
        let (nv, nh) = (self.n_visible, self.n_hidden);
        let mut v =
            Rbm { n_visible: nv, n_hidden: nh, w: vec![0.0; nv * nh], hbias: vec![0.0; nh], vbias: vec![0.0; nv] };
        for slab in &mut self.slabs {
            gather_cols(&mut v.w, slab.dw.get_mut().unwrap(), nh, &slab.cols);
            let own = slab.own.get_mut().unwrap();
            v.hbias[slab.cols.clone()].copy_from_slice(&own.hb_vel);
            v.vbias[slab.vcols.clone()].copy_from_slice(&own.vb_vel);
        }
        v
    }

    /// Sets the velocities [`Engine::velocity`] returns.
    pub fn set_velocity(&mut self, v: &Rbm) {
        assert!(v.n_visible == self.n_visible && v.n_hidden == self.n_hidden, "set_velocity: shapes differ");
        for slab in &mut self.slabs {
            scatter_cols(slab.dw.get_mut().unwrap(), &v.w, self.n_hidden, &slab.cols);
            let own = slab.own.get_mut().unwrap();
            own.hb_vel.copy_from_slice(&v.hbias[slab.cols.clone()]);
            own.vb_vel.copy_from_slice(&v.vbias[slab.vcols.clone()]);
        }
    }

    /// Runs `f(ctx, slab, own)` on a team of one thread per slab (see
    /// [`Engine::relayout`]), each with its own slab.
    pub(crate) fn team<F: Fn(&Ctx, &Slab, &mut Own) + Sync>(&self, f: F) {
        let slabs = &self.slabs;
        run_team(slabs.len(), |ctx| {
            let slab = &slabs[ctx.tid];
            let mut own = slab.own.lock().unwrap();
            f(ctx, slab, &mut own);
        });
    }

    /// Gathers the slabs back into an [`Rbm`].
    pub fn to_rbm(&mut self) -> Rbm {
        let (nv, nh) = (self.n_visible, self.n_hidden);
        let mut w = vec![0f32; nv * nh];
        let mut hbias = vec![0f32; nh];
        let mut vbias = vec![0f32; nv];
        for slab in &mut self.slabs {
            let own = slab.own.get_mut().unwrap();
            let m = slab.cols.len();
            for i in 0..nv {
                w[i * nh + slab.cols.start..i * nh + slab.cols.end]
                    .copy_from_slice(&own.w[i * own.ldw..i * own.ldw + m]);
            }
            hbias[slab.cols.clone()].copy_from_slice(&own.hbias);
            vbias[slab.vcols.clone()].copy_from_slice(&own.vbias);
        }
        Rbm { n_visible: nv, n_hidden: nh, w, hbias, vbias }
    }

    /// Which kind of parameter, if any, is not finite (read in place, no copy:
    /// the padding of the weight rows is zero and stays so).
    pub(crate) fn non_finite_parameter(&mut self) -> Option<&'static str> {
        for slab in &mut self.slabs {
            let own = slab.own.get_mut().unwrap();
            for (name, v) in [("a weight", &own.w), ("a hidden bias", &own.hbias), ("a visible bias", &own.vbias)] {
                if v.iter().any(|x| !x.is_finite()) {
                    return Some(name);
                }
            }
        }
        None
    }

    /// Sets the chains' visible states, `[chains, n_visible]` (in the data's units).
    pub fn set_chain_visible(&mut self, v: &[f32]) {
        assert_eq!(v.len(), self.chains * self.n_visible, "set_chain_visible: expected [chains, n_visible]");
        match &mut self.sigma {
            Some(sigma) => {
                let sigma = sigma.get_mut().unwrap();
                let x: Vec<f32> = v.iter().enumerate().map(|(k, &v)| v / sigma[k % self.n_visible]).collect();
                self.set_chain_states(&x)
            }
            None => self.set_chain_states(v),
        }
    }

    /// The chains' visible states, `[chains, n_visible]` (in the data's units).
    pub fn chain_visible(&mut self) -> Vec<f32> {
        let mut x = self.chain_states();
        if let Some(sigma) = &mut self.sigma {
            let sigma = sigma.get_mut().unwrap();
            x.iter_mut().enumerate().for_each(|(k, v)| *v *= sigma[k % self.n_visible]);
        }
        x
    }

    /// The chains' visible states as the engine holds them (x = v / sigma for Gaussian units).
    fn chain_states(&mut self) -> Vec<f32> {
        let mut out = vec![0f32; self.chains * self.n_visible];
        for slab in &mut self.slabs {
            gather_cols(&mut out, slab.v.get_mut().unwrap(), self.n_visible, &slab.vcols);
        }
        out
    }

    fn set_chain_states(&mut self, x: &[f32]) {
        let nv = self.n_visible;
        for slab in &mut self.slabs {
            scatter_cols(slab.v.get_mut().unwrap(), x, nv, &slab.vcols);
        }
    }

    /// The means of the chains' visible units at the last step (in the data's
    /// units), `[chains, n_visible]`.
    pub fn visible_means(&mut self) -> Vec<f32> {
        let mut out = vec![0f32; self.chains * self.n_visible];
        for slab in &mut self.slabs {
            gather_cols(&mut out, &slab.own.get_mut().unwrap().v_mean, self.n_visible, &slab.vcols);
        }
        out
    }

    /// The chains' hidden states, `[chains, n_hidden]`.
    pub fn chain_hidden(&mut self) -> Vec<f32> {
        let mut out = vec![0f32; self.chains * self.n_hidden];
        for slab in &mut self.slabs {
            gather_cols(&mut out, slab.h.get_mut().unwrap(), self.n_hidden, &slab.cols);
        }
        out
    }

    /// Sets the chains' hidden states, `[chains, n_hidden]`.
    pub fn set_chain_hidden(&mut self, h: &[f32]) {
        assert_eq!(h.len(), self.chains * self.n_hidden, "set_chain_hidden: expected [chains, n_hidden]");
        for slab in &mut self.slabs {
            scatter_cols(slab.h.get_mut().unwrap(), h, self.n_hidden, &slab.cols);
        }
    }

    /// The random streams of the hidden and of the visible 8-unit groups, in unit order.
    pub fn streams(&mut self) -> (Vec<Stream>, Vec<Stream>) {
        let (mut hid, mut vis) = (Vec::new(), Vec::new());
        for slab in &mut self.slabs {
            let own = slab.own.get_mut().unwrap();
            hid.extend(own.hid_streams.iter().cloned());
            vis.extend(own.vis_streams.iter().cloned());
        }
        (hid, vis)
    }

    /// Restores the streams saved by [`Engine::streams`]; false (and nothing
    /// changed) when their numbers do not fit the layers.
    pub fn set_streams(&mut self, hid: &[Stream], vis: &[Stream]) -> bool {
        if hid.len() != self.n_hidden.div_ceil(8) || vis.len() != self.n_visible.div_ceil(8) {
            return false;
        }
        for slab in &mut self.slabs {
            let own = slab.own.get_mut().unwrap();
            own.hid_streams = hid[groups(&slab.cols)].to_vec();
            own.vis_streams = vis[groups(&slab.vcols)].to_vec();
        }
        true
    }

    /// Runs `steps` steps of gibbs_vhv (v → h → v) on every chain with
    /// `n_threads` threads, from the chains' visible states. Afterwards
    /// [`Engine::chain_visible`] holds the samples and
    /// [`Engine::visible_means`] their means.
    pub fn gibbs_vhv(&mut self, steps: usize, n_threads: usize) {
        self.relayout(n_threads);
        self.team(|ctx, slab, own| {
            for _ in 0..steps {
                self.propup(slab, own, Rows::Chain, 1.0, 1, true);
                ctx.sync();
                self.visible(slab, own, 1.0, None);
                ctx.sync();
            }
        });
    }
}

/// Read guards on one buffer of each slab, in slab order, without allocating
/// (slabs are at most [`MAX_PARTS`]).
fn read_each<'a>(
    slabs: &'a [Slab],
    buf: impl Fn(&'a Slab) -> &'a RwLock<Vec<f32>>,
) -> [Option<RwLockReadGuard<'a, Vec<f32>>>; MAX_PARTS] {
    let mut guards = std::array::from_fn(|_| None);
    for (g, s) in guards.iter_mut().zip(slabs) {
        *g = Some(buf(s).read().unwrap());
    }
    guards
}

/// `dst[r, cols] = src[r, ..]` for every row: `dst` `[rows, width]`, `src` `[rows, cols.len()]`.
pub(crate) fn gather_cols(dst: &mut [f32], src: &[f32], width: usize, cols: &Range<usize>) {
    let m = cols.len();
    if m == 0 {
        return;
    }
    for (d, s) in dst.chunks_exact_mut(width).zip(src.chunks_exact(m)) {
        d[cols.clone()].copy_from_slice(s);
    }
}

/// Rows `rows` of a row-major `[.., n_cols]` matrix `w`, transposed into
/// `dst` `[n_cols, ld]`: `dst[j, i - rows.start] = w[i, j]`.
pub(crate) fn transpose_rows(dst: &mut [f32], ld: usize, w: &[f32], n_cols: usize, rows: &Range<usize>) {
    for j in 0..n_cols {
        for (ii, i) in rows.clone().enumerate() {
            dst[j * ld + ii] = w[i * n_cols + j];
        }
    }
}

/// `dst[r, ..] = src[r, cols]` for every row (the inverse of [`gather_cols`]).
pub(crate) fn scatter_cols(dst: &mut [f32], src: &[f32], width: usize, cols: &Range<usize>) {
    let m = cols.len();
    if m == 0 {
        return;
    }
    for (d, s) in dst.chunks_exact_mut(m).zip(src.chunks_exact(width)) {
        d.copy_from_slice(&s[cols.clone()]);
    }
}

/// The phases, as one thread of a team runs them on its slab.
impl Engine {
    /// Compacts the chains' states of one layer, held slab by slab (`layer(s)`:
    /// the slab's `[chains, |units|]` buffer and its units), into `nz`, row by
    /// row in unit order; when they are too dense for the sparse product, also
    /// gathers them whole into `dense` `[chains, width]`. `real_valued`: the
    /// states are draws of continuous (Gaussian) units, never exactly zero, so
    /// dense without counting.
    fn compact_layer(
        &self,
        nz: &mut NzRows,
        dense: &mut [f32],
        layer: impl for<'a> Fn(&'a Slab) -> (&'a RwLock<Vec<f32>>, &'a Range<usize>),
        real_valued: bool,
    ) {
        let width = dense.len() / self.chains.max(1);
        let bufs = read_each(&self.slabs, |s| layer(s).0);
        let nonzeros: usize = match real_valued {
            true => self.chains * width,
            false => bufs.iter().flatten().map(|b| count_nonzero(b)).sum(),
        };
        if !sparse_enough(nonzeros, self.chains * width) {
            nz.set_dense(self.chains, width);
            for (s, buf) in self.slabs.iter().zip(bufs.iter().flatten()) {
                gather_cols(dense, buf, width, layer(s).1);
            }
            return;
        }
        nz.clear(width);
        for r in 0..self.chains {
            for (s, buf) in self.slabs.iter().zip(bufs.iter().flatten()) {
                let units = layer(s).1;
                nz.push(&buf[r * units.len()..(r + 1) * units.len()], units.start);
            }
            nz.end_row();
        }
    }

    /// Compacts the rows that a propup reads into `own.nz`; when they are too
    /// dense for the sparse product, also copies them whole into `own.xbuf`'s
    /// first half (the data's rows are read in place instead).
    fn gather_visible(&self, own: &mut Own, rows: Rows) {
        let (b, nv) = (self.batch, self.n_visible);
        match rows {
            Rows::Data | Rows::Rounded => {
                let Own { nz, xbuf, x_data, xi_data, .. } = own;
                let x = if rows == Rows::Data { x_data } else { xi_data };
                nz.of(x, nv);
                if !nz.is_sparse() {
                    xbuf[..b * nv].copy_from_slice(x);
                }
            }
            Rows::Chain => {
                let c = self.chains;
                self.compact_layer(&mut own.nz, &mut own.xbuf[..c * nv], |s| (&s.v, &s.vcols), self.sigma.is_some())
            }
        }
    }

    /// Eq. 7 for the slab's hidden units at inverse temperature `beta` (1 for
    /// the model itself): pre_h = beta (x W[:, C_T] + hbias); the means go to
    /// h_mean's rows `mean_half` (0 for h_pos, 1 for the chain), and when
    /// `draw`, the chain's hidden states h ~ Bern(mean), part by part.
    ///
    /// Phase: reads the data or every slab's v; writes this slab's h.
    pub(crate) fn propup(&self, slab: &Slab, own: &mut Own, rows: Rows, beta: f32, mean_half: usize, draw: bool) {
        // n rows: the minibatch's or the chains'
        let (b, m) = (self.batch, slab.cols.len());
        let n = if rows == Rows::Chain { self.chains } else { b };
        self.gather_visible(own, rows);
        let Own { nz, xbuf, w, ldw, pre_h, .. } = own;
        xw_product(&mut pre_h[..n * m], m, nz, &xbuf[..n * self.n_visible], w, *ldw, m, beta);
        if rows == Rows::Rounded {
            return;
        }
        let Own { hbias, hb_eff, pre_h, h_mean, hid_streams, noise, .. } = own;
        if let (Rows::Chain, Some(rb)) = (rows, &self.row_beta) {
            // tempering: pre_h = beta_r (x W + c) row by row, then sigm with no further bias
            for (r, &br) in rb.iter().enumerate().take(n) {
                for (a, &c) in pre_h[r * m..(r + 1) * m].iter_mut().zip(hbias.iter()) {
                    *a = br * (*a + c);
                }
            }
            hb_eff.iter_mut().for_each(|e| *e = 0.0);
            let mean = &mut h_mean[b * m..(b + n) * m];
            let mut h = slab.h.write().unwrap();
            bias_sigmoid_sample_groups(&mut pre_h[..n * m], m, hb_eff, mean, &mut h, hid_streams, n, noise);
            return;
        }
        let bias: &[f32] = if beta == 1.0 {
            hbias
        } else {
            for (e, &x) in hb_eff.iter_mut().zip(hbias.iter()) {
                *e = beta * x;
            }
            hb_eff
        };
        // h_mean's rows: 0..b for h_pos, b..b + chains for the chains
        let mean = &mut h_mean[mean_half * b * m..(mean_half * b + n) * m];
        let pre_h = &mut pre_h[..n * m];
        if draw {
            let mut h = slab.h.write().unwrap();
            bias_sigmoid_sample_groups(pre_h, m, bias, mean, &mut h, hid_streams, n, noise);
        } else {
            bias_sigmoid(pre_h, m, bias, mean);
        }
    }

    /// Eq. 8 for the slab's visible units: pre_v = h W[V_T, :]^T over every
    /// slab's hidden states, then part by part
    /// pre_v = beta (pre_v + vbias) + (1 - beta) base_vbias, v_mean = sigm(pre_v),
    /// and the chain's visible states v ~ Bern(v_mean).
    ///
    /// Phase: reads every slab's h; writes this slab's v.
    pub(crate) fn visible(&self, slab: &Slab, own: &mut Own, beta: f32, base_vbias: Option<&[f32]>) {
        let (b, mv) = (self.chains, slab.vcols.len());
        self.compact_layer(&mut own.nz, &mut own.hbuf, |s| (&s.h, &s.cols), false);
        let Own { nz, hbuf, wt, ldwt, pre_v, .. } = own;
        xw_product(pre_v, mv, nz, hbuf, wt, *ldwt, mv, 1.0);
        if let (Some(_), Some(rb)) = (&self.sigma, &self.row_beta) {
            // tempering, Gaussian units: p_beta(x | h) ∝ exp(-beta (x - b / sigma)² / 2 + beta x (h W^T)),
            // so x ~ Normal(h W^T + b / sigma, 1 / beta_r); pre_v keeps the mean
            let Own { vbias, sigma, pre_v, v_mean, vis_streams, noise, .. } = own;
            v_mean.iter_mut().for_each(|m| *m = 0.0);
            let mut v = slab.v.write().unwrap();
            normal_groups(v_mean, mv, mv, &mut v, vis_streams, b, noise);
            for (r, &br) in rb.iter().enumerate().take(b) {
                let spread = 1.0 / br.sqrt();
                for i in 0..mv {
                    let k = r * mv + i;
                    pre_v[k] += vbias[i] / sigma[i];
                    v[k] = pre_v[k] + spread * v[k];
                    v_mean[k] = sigma[i] * pre_v[k];
                }
            }
            return;
        }
        if self.sigma.is_some() {
            // Gaussian units, in units of sigma: x ~ Normal(beta h W^T + b_beta / sigma, 1) and
            // v_mean = sigma (beta h W^T) + b_beta, where b_beta = beta b + (1 - beta) b_base
            // (the product of the base model's Gaussians and the model's, annealing)
            let Own { vbias, vb_eff, sigma, pre_v, v_mean, vis_streams, noise, .. } = own;
            // vb_eff = b_beta / sigma, `[mv]`, once per phase: the rows' pass below has no division
            for (i, e) in vb_eff.iter_mut().enumerate() {
                let base = base_vbias.map_or(0.0, |v| v[slab.vcols.start + i]);
                let b_beta =
                    if base_vbias.is_none() && beta == 1.0 { vbias[i] } else { beta * vbias[i] + (1.0 - beta) * base };
                *e = b_beta / sigma[i];
            }
            for (p, m) in pre_v.chunks_exact_mut(mv.max(1)).zip(v_mean.chunks_exact_mut(mv.max(1))).take(b) {
                for (((p, m), &e), &s) in p.iter_mut().zip(m.iter_mut()).zip(vb_eff.iter()).zip(sigma.iter()) {
                    *p = beta * *p + e;
                    *m = s * *p;
                }
            }
            let mut v = slab.v.write().unwrap();
            normal_groups(pre_v, mv, mv, &mut v, vis_streams, b, noise);
            return;
        }
        let Own { vbias, vb_eff, pre_v, v_mean, vis_streams, noise, .. } = own;
        if let Some(rb) = &self.row_beta {
            // tempering: pre_v = beta_r (h W^T + b) row by row
            for (r, &br) in rb.iter().enumerate().take(b) {
                for (a, &c) in pre_v[r * mv..(r + 1) * mv].iter_mut().zip(vbias.iter()) {
                    *a = br * (*a + c);
                }
            }
            vb_eff.iter_mut().for_each(|e| *e = 0.0);
            let mut v = slab.v.write().unwrap();
            bias_sigmoid_sample_groups(pre_v, mv, vb_eff, v_mean, &mut v, vis_streams, b, noise);
            return;
        }
        let bias: &[f32] = match base_vbias {
            None if beta == 1.0 => vbias,
            _ => {
                for a in pre_v.iter_mut() {
                    *a *= beta;
                }
                for (i, e) in vb_eff.iter_mut().enumerate() {
                    let base = base_vbias.map_or(0.0, |v| v[slab.vcols.start + i]);
                    *e = beta * vbias[i] + (1.0 - beta) * base;
                }
                vb_eff
            }
        };
        let mut v = slab.v.write().unwrap();
        bias_sigmoid_sample_groups(pre_v, mv, bias, v_mean, &mut v, vis_streams, b, noise);
    }

    /// Tempering, after a visible phase: this slab's shares of each chain's
    /// energy E(v, h) = -v·(W h + b) - h·c (Gaussian units, with x = v / σ:
    /// Σ (x - b/σ)² / 2 - x·(W h) - h·c), with v the new visible states and
    /// h the hidden ones they were drawn from, as sums over 8-unit groups in
    /// unit order: `vis[g][r]` = Σ_(i in g) v_ri (W h + b)_ri (the visible
    /// phase's pre_v / beta_r) and `hid[g][r]` = Σ_(j in g) h_rj c_j, `[chains]` each.
    ///
    /// Phase: reads this slab's h and v; writes its groups' shares.
    pub(crate) fn energy_parts(&self, slab: &Slab, own: &Own, hid: &[Mutex<Vec<f32>>], vis: &[Mutex<Vec<f32>>]) {
        let (c, m, mv) = (self.chains, slab.cols.len(), slab.vcols.len());
        let rb = self.row_beta.as_ref().expect("tempering");
        let (h, v) = (slab.h.read().unwrap(), slab.v.read().unwrap());
        for g in groups(&slab.cols) {
            let cols = 8 * g - slab.cols.start..(8 * g + 8).min(slab.cols.end) - slab.cols.start;
            let mut part = hid[g].lock().unwrap();
            for r in 0..c {
                part[r] = cols.clone().map(|j| h[r * m + j] * own.hbias[j]).sum();
            }
        }
        let gaussian = self.sigma.is_some();
        for g in groups(&slab.vcols) {
            let cols = 8 * g - slab.vcols.start..(8 * g + 8).min(slab.vcols.end) - slab.vcols.start;
            let mut part = vis[g].lock().unwrap();
            for r in 0..c {
                part[r] = if gaussian {
                    // x = v / sigma, pre_v = h W^T + b / sigma: minus the visible terms of E,
                    // x (h W^T) - (x - b / sigma)² / 2
                    cols.clone()
                        .map(|i| {
                            let (x, m, bs) = (v[r * mv + i], own.pre_v[r * mv + i], own.vbias[i] / own.sigma[i]);
                            x * (m - bs) - (x - bs) * (x - bs) / 2.0
                        })
                        .sum()
                } else {
                    cols.clone().map(|i| v[r * mv + i] * own.pre_v[r * mv + i]).sum::<f32>() / rb[r]
                };
            }
        }
    }

    /// Tempering: exchanges chain rows a and b of every pair in this slab's
    /// states (the next propup draws h anew from each row's v at its own
    /// temperature).
    ///
    /// Phase: writes this slab's h and v.
    pub(crate) fn swap_rows(&self, slab: &Slab, pairs: &[(usize, usize)]) {
        let (m, mv) = (slab.cols.len(), slab.vcols.len());
        let (mut h, mut v) = (slab.h.write().unwrap(), slab.v.write().unwrap());
        for &(r, q) in pairs {
            for j in 0..m {
                h.swap(r * m + j, q * m + j);
            }
            for i in 0..mv {
                v.swap(r * mv + i, q * mv + i);
            }
        }
    }

    /// Gathers the whole of x = [data; chains] `[batch + chains, n_visible]` into `own.xbuf`.
    pub(crate) fn gather_x(&self, own: &mut Own) {
        let (b, nv) = (self.batch, self.n_visible);
        own.xbuf[..b * nv].copy_from_slice(&own.x_data);
        for s in &self.slabs {
            gather_cols(&mut own.xbuf[b * nv..], &s.v.read().unwrap(), nv, &s.vcols);
        }
    }

    /// First half of a weight update, the hidden side: with `y` = h_mean
    /// `[batch + chains, m]` and x gathered by [`Engine::gather_x`],
    /// dW[:, C_T] = momentum dW[:, C_T] + alpha x^T y - decay W[:, C_T],
    /// W[:, C_T] += dW[:, C_T], published in this slab's `dw` for the visible
    /// sides (and kept: with momentum, it is the weights' velocity).
    ///
    /// Phase: reads the data and every slab's v; writes this slab's dw.
    pub(crate) fn add_weights_hidden(&self, slab: &Slab, own: &mut Own, alpha: f32, momentum: f32, decay: f32) {
        let (nv, m) = (self.n_visible, slab.cols.len());
        let mut dw = slab.dw.write().unwrap();
        let Own { xbuf, h_mean, w, ldw, .. } = own;
        if momentum > 0.0 {
            dw.iter_mut().for_each(|d| *d *= momentum);
        }
        let rows = self.batch + self.neg_rows;
        let (x, y) = (&xbuf[..rows * nv], &h_mean[..rows * m]);
        gemm(&mut dw, nv, m, rows, x, true, y, false, alpha, momentum > 0.0);
        if decay > 0.0 {
            for i in 0..nv {
                for (d, &x) in dw[i * m..(i + 1) * m].iter_mut().zip(&w[i * *ldw..i * *ldw + m]) {
                    *d -= decay * x;
                }
            }
        }
        for i in 0..nv {
            for (x, &d) in w[i * *ldw..i * *ldw + m].iter_mut().zip(&dw[i * m..(i + 1) * m]) {
                *x += d;
            }
        }
    }

    /// Publishes this slab's h_pos and h_neg means `[2 batch, m]` (before the
    /// gradient negates h_neg) for [`Engine::learn_sigma`].
    pub(crate) fn publish_means(&self, slab: &Slab, own: &Own) {
        let mut q = slab.q.write().unwrap();
        q.clear();
        q.extend_from_slice(&own.h_mean);
    }

    /// A learned sigma's step, for the slab's visible units (before the
    /// weights and biases change): with x = v / σ and q = p(h | v),
    ///
    ///   dF/dlog σ_i² = -(x_i - b_i / σ_i)² / 2 + x_i (q W^T)_i / 2,
    ///   log σ_i² -= alpha Σ_rows [dF/dlog σ_i²(v_pos) - dF/dlog σ_i²(v_neg)],
    ///
    /// with alpha = lr / batch. x is `own.xbuf` (gathered); the means come from
    /// every slab's [`Engine::publish_means`]. The new sigmas wait in
    /// `own.sigma_next` until [`Engine::apply_sigma`] (once the phase no longer needs the old).
    ///
    /// Phase: reads every slab's q; writes only this slab's own state.
    pub(crate) fn sigma_step(&self, slab: &Slab, own: &mut Own, alpha: f32) {
        let (b, nv, nh, mv, v0) = (self.batch, self.n_visible, self.n_hidden, slab.vcols.len(), slab.vcols.start);
        own.qbuf.resize(2 * b * nh, 0.0);
        own.qw.resize(2 * b * mv, 0.0);
        own.sigma_next.resize(mv, 0.0);
        for s in &self.slabs {
            gather_cols(&mut own.qbuf, &s.q.read().unwrap(), nh, &s.cols);
        }
        let Own { qbuf, qw, wt, ldwt, xbuf, vbias, sigma, sigma_next, .. } = own;
        crate::math::dense_rows(qw, mv, qbuf, 2 * b, nh, wt, *ldwt, mv, 1.0);
        for i in 0..mv {
            let (bs, mut g) = (vbias[i] / sigma[i], 0f64);
            for r in 0..2 * b {
                let x = xbuf[r * nv + v0 + i];
                let d = -(x - bs) * (x - bs) / 2.0 + x * qw[r * mv + i] / 2.0;
                g += if r < b { d as f64 } else { -(d as f64) };
            }
            // log σ² moves by -alpha g, so σ by a factor exp(-alpha g / 2)
            sigma_next[i] = sigma[i] * (-(alpha as f64) * g / 2.0).exp() as f32;
        }
    }

    /// Applies the sigmas [`Engine::sigma_step`] left in `own.sigma_next`.
    pub(crate) fn apply_sigma(&self, slab: &Slab, own: &mut Own) {
        own.sigma.copy_from_slice(&own.sigma_next);
        let mut all = self.sigma.as_ref().expect("Gaussian units").write().unwrap();
        all[slab.vcols.clone()].copy_from_slice(&own.sigma);
    }

    /// Second half, the visible side: W[V_T, :]^T += dW[V_T, :]^T, from every
    /// slab's published dW (by 8 x 8 tiles transposed in registers, see
    /// [`crate::raw::add_transposed`]).
    ///
    /// Phase: reads every slab's dw; writes only this slab's own state.
    pub(crate) fn add_weights_visible(&self, slab: &Slab, own: &mut Own) {
        let (v0, mv) = (slab.vcols.start, slab.vcols.len());
        let (wt, ldwt) = (&mut own.wt, own.ldwt);
        for s in &self.slabs {
            let (dw, m) = (s.dw.read().unwrap(), s.cols.len());
            // dW[V_T, C_s] `[mv, m]` (row stride m) onto wt's rows C_s `[m, mv]`
            crate::raw::add_transposed(&dw[v0 * m..], m, mv, m, &mut wt[s.cols.start * ldwt..], ldwt);
        }
    }
}

/// The stream ids the sampler uses.
pub const SAMPLE_STREAMS: u64 = 200;

/// The tutorial's sampling: `n_chains` chains start at `init` (`[n_chains,
/// n_visible]`, grey values allowed); before each of `n_rows` plotted rows
/// they take `plot_every` gibbs_vhv steps. Returns, per row, the last step's
/// mean-field visible activations `[n_chains, n_visible]`. With `sigma`
/// (`[n_visible]`), the visible units are Gaussian (see [`crate::gaussian`])
/// and the means those of p(v | h).
#[allow(clippy::too_many_arguments)]
pub fn sample_rows(
    rbm: &Rbm,
    sigma: Option<&[f32]>,
    init: &[f32],
    n_rows: usize,
    plot_every: usize,
    seed: u64,
    n_threads: usize,
    mut on_row: impl FnMut(usize),
) -> Vec<Vec<f32>> {
    let n_chains = init.len() / rbm.n_visible;
    let mut engine = Engine::new(rbm, n_chains, seed, SAMPLE_STREAMS, DEFAULT_PARTS, n_threads);
    if let Some(sigma) = sigma {
        engine.set_sigma(sigma);
    }
    engine.set_chain_visible(init);
    (0..n_rows)
        .map(|r| {
            engine.gibbs_vhv(plot_every, n_threads);
            on_row(r);
            engine.visible_means()
        })
        .collect()
}

/// The matrix products of `n_updates` training updates and nothing else (no
/// sampling, no barriers), done densely, each thread on its slab as in
/// training: the speed limit the training loop is measured against.
/// `monitor_product` adds the pseudo-likelihood's product. Returns the seconds taken.
pub fn products_only(
    rbm: &Rbm,
    batch: usize,
    k: usize,
    monitor_product: bool,
    n_updates: usize,
    n_parts: usize,
    n_threads: usize,
) -> f64 {
    let mut engine = Engine::new(rbm, batch, 0, 0, n_parts, n_threads);
    let (b, nv, nh) = (batch, rbm.n_visible, rbm.n_hidden);
    engine.relayout(n_threads);
    let t = std::time::Instant::now();
    engine.team(|_, slab, own| {
        let (m, mv) = (slab.cols.len(), slab.vcols.len());
        let mut dw = vec![0f32; nv * m];
        let Own { w, ldw, wt, ldwt, pre_h, pre_v, h_mean, xbuf, hbuf, .. } = own;
        for _ in 0..n_updates {
            let dense = crate::math::dense_rows;
            dense(pre_h, m, &xbuf[..b * nv], b, nv, w, *ldw, m, 1.0);
            if monitor_product {
                dense(pre_h, m, &xbuf[..b * nv], b, nv, w, *ldw, m, 1.0);
            }
            for _ in 0..k {
                dense(pre_v, mv, hbuf, b, nh, wt, *ldwt, mv, 1.0);
                dense(pre_h, m, &xbuf[b * nv..], b, nv, w, *ldw, m, 1.0);
            }
            gemm(&mut dw, nv, m, 2 * b, xbuf, true, h_mean, false, 1.0, false);
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
    fn parts_cover_each_layer_in_whole_groups_and_slabs_cover_the_parts() {
        for n in [1, 5, 8, 500, 784] {
            for parts in [1, 2, 5, 16, 100] {
                let ranges: Vec<_> = (0..parts).map(|p| unit_split(n, parts, p)).collect();
                assert_eq!(ranges[0].start, 0);
                assert_eq!(ranges[parts - 1].end, n);
                for w in ranges.windows(2) {
                    assert_eq!(w[0].end, w[1].start, "{n} units, {parts} parts: contiguous");
                }
                assert!(ranges.iter().all(|r| r.start % 8 == 0), "{n} units, {parts} parts: whole groups");
            }
        }
        let rbm = Rbm::init(30, 20, 1).unwrap();
        for threads in [1, 2, 3, 8] {
            let e = Engine::new(&rbm, 4, 1, 0, 5, threads);
            assert_eq!(e.slabs.len(), threads.min(5));
            assert_eq!((e.slabs[0].cols.start, e.slabs.last().unwrap().cols.end), (0, 20));
            assert_eq!((e.slabs[0].vcols.start, e.slabs.last().unwrap().vcols.end), (0, 30));
        }
    }
}
