//! Parallel tempering (an alternative to PCD's plain persistent chains): M
//! sets of c chains, set t at inverse temperature
//!
//!   beta_t = 1 - t (1 - beta_min) / (M - 1),   t = 0 .. M-1,
//!
//! sampling p_beta(v, h) ∝ exp(-beta E(v, h)). After every visible phase,
//! neighbouring sets exchange their (v, h) chain by chain (the even pairs of sets on
//! one round, the odd ones on the next), a pair (x_a at beta_a, x_b at beta_b)
//! with probability
//!
//!   min(1, exp((beta_a - beta_b) (E(x_a) - E(x_b)))),
//!
//! which keeps the product of the tempered distributions stationary. Only
//! the chains at beta = 1 (the first c rows) enter the gradient.

use crate::rng::Stream;
use serde::{Deserialize, Serialize};
use std::sync::{Mutex, RwLock};

/// The stream id of the exchanges' draws.
pub const TEMPERING_STREAM: u64 = 9;

/// The exchange draws' position: the stream and the rounds done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemperingState {
    pub stream: Stream,
    pub rounds: u64,
}

/// What the threads share for the exchanges.
pub(crate) struct Tempering {
    /// `[M]`
    pub betas: Vec<f32>,
    /// chains per temperature
    pub chains: usize,
    /// per hidden and per visible 8-unit group: its share of each chain's energy, `[M c]`
    pub hid: Vec<Mutex<Vec<f32>>>,
    pub vis: Vec<Mutex<Vec<f32>>>,
    /// this round's exchanges (chain rows)
    pub swaps: RwLock<Vec<(usize, usize)>>,
    pub state: Mutex<TemperingState>,
    /// per neighbouring pair of temperatures: (proposed, accepted) exchanges
    pub counts: Mutex<Vec<(u64, u64)>>,
    /// scratch: `[M c]` the chains' energies, `[c]` uniform draws
    scratch: Mutex<(Vec<f32>, Vec<f32>)>,
}

impl Tempering {
    pub(crate) fn new(m: usize, beta_min: f32, chains: usize, n_visible: usize, n_hidden: usize, seed: u64) -> Self {
        let betas = (0..m).map(|t| 1.0 - t as f32 * (1.0 - beta_min) / (m - 1) as f32).collect();
        let rows = m * chains;
        Tempering {
            betas,
            chains,
            hid: (0..n_hidden.div_ceil(8)).map(|_| Mutex::new(vec![0.0; rows])).collect(),
            vis: (0..n_visible.div_ceil(8)).map(|_| Mutex::new(vec![0.0; rows])).collect(),
            swaps: RwLock::new(Vec::with_capacity(rows)),
            state: Mutex::new(TemperingState { stream: Stream::new(seed, TEMPERING_STREAM), rounds: 0 }),
            counts: Mutex::new(vec![(0, 0); m - 1]),
            scratch: Mutex::new((vec![0.0; rows], vec![0.0; chains])),
        }
    }

    /// `[M c]` the inverse temperature of every chain row.
    pub(crate) fn row_betas(&self) -> Vec<f32> {
        self.betas.iter().flat_map(|&b| std::iter::repeat_n(b, self.chains)).collect()
    }

    /// One round's exchanges (thread 0, after every slab's energy shares):
    /// the energies summed group by group in order, hidden groups first, then
    /// the pairs of sets (t, t + 1) with t of this round's parity, chain by
    /// chain, each accepted as the module's rule says.
    pub(crate) fn decide(&self) {
        let (c, m) = (self.chains, self.betas.len());
        let mut scratch = self.scratch.lock().unwrap();
        let (energy, u) = &mut *scratch;
        energy.iter_mut().for_each(|e| *e = 0.0);
        for part in self.hid.iter().chain(&self.vis) {
            for (e, &p) in energy.iter_mut().zip(part.lock().unwrap().iter()) {
                *e -= p;
            }
        }
        let mut state = self.state.lock().unwrap();
        let parity = (state.rounds % 2) as usize;
        state.rounds += 1;
        let (mut swaps, mut counts) = (self.swaps.write().unwrap(), self.counts.lock().unwrap());
        swaps.clear();
        for t in (parity..m - 1).step_by(2) {
            state.stream.fill_uniform(u);
            for k in 0..c {
                let (a, b) = (t * c + k, (t + 1) * c + k);
                let log_ratio = (self.betas[t] - self.betas[t + 1]) as f64 * (energy[a] - energy[b]) as f64;
                let accept = (u[k] as f64) < log_ratio.min(0.0).exp();
                counts[t].0 += 1;
                if accept {
                    counts[t].1 += 1;
                    swaps.push((a, b));
                }
            }
        }
    }
}
