//! `rbm`: restricted Boltzmann machines, after the classic deep-learning
//! tutorial "Restricted Boltzmann Machines (RBM)", and beyond it.
//!
//! Shape legend used in every comment: `n_visible` (nv), `n_hidden` (nh),
//! `batch` (rows of a minibatch or chains in flight). `W` is
//! `[n_visible, n_hidden]`, row-major, everywhere (see `model.rs`).
//!
//! Modules: [`model`] (the RBM and its conditionals), [`engine`] (the same
//! split across threads), [`train`] (CD-k, PCD-k and their monitors), [`recipe`]
//! (momentum, weight decay, schedules, sparsity, initialisation),
//! [`fit`] (the epoch loop), [`estimate`] (log-likelihoods), [`data`]
//! (MNIST and in-memory rows), [`npy`] and [`csv`] (data files), [`split`] (seeded
//! validation splits), [`gaussian`] (Gaussian visible units), [`modelfile`] (safetensors files),
//! [`dbn`] (deep belief networks) and [`finetune`] (their fast fine-tuning), [`images`] (filter and sample pictures), [`math`] and [`rng`] (kernels).
//! Every `unsafe` block lives in one private module, `raw`.
//!
//! Training a small RBM on an array made in code with PCD-1, then reading
//! its exact log-likelihood (`examples/in_memory.rs` is the same, runnable):
//!
//! ```
//! use rbm::{data::RowMatrix, estimate, fit, FitOptions, Method, Rbm, TrainConfig, Trainer};
//!
//! // 40 rows of 6 values: two bars, alternating
//! let values: Vec<f32> = (0..40).flat_map(|i| if i % 2 == 0 { [1., 1., 1., 0., 0., 0.] } else { [0., 0., 0., 1., 1., 1.] }).collect();
//! let data = RowMatrix::new(&values, 6)?;
//! let mut config = TrainConfig::default();
//! (config.method, config.k, config.lr, config.batch_size, config.epochs) = (Method::Pcd, 1, 0.1, 10, 50);
//! (config.n_hidden, config.seed, config.train_size) = (3, 7, 40);
//! let rbm = Rbm::init(6, 3, config.seed)?;
//! let mut trainer = Trainer::new(&rbm, config.check(40)?)?;
//! fit(&mut trainer, &data, &FitOptions::new(2), &mut ())?;
//! let ll = |m: &Rbm| estimate::mean_neg_free_energy(m, &values) - estimate::exact_log_z(m, 1);
//! assert!(ll(&trainer.rbm()) > ll(&rbm));
//! # Ok::<(), rbm::RbmError>(())
//! ```

#![deny(unsafe_code)]
// Index loops that mirror a formula's subscripts (E = -Σ_i b_i v_i - ...) read better than iterator chains.
#![allow(clippy::needless_range_loop)]

pub mod csv;
pub mod data;
pub mod dbn;
pub mod engine;
pub mod error;
pub mod estimate;
pub mod finetune;
pub mod fit;
pub mod gaussian;
pub mod images;
pub mod math;
pub mod model;
pub mod modelfile;
pub mod npy;
#[allow(unsafe_code)]
mod raw;
pub mod recipe;
pub mod rng;
pub mod split;
pub mod tempering;
pub mod train;

pub use data::{DataRows, RowMatrix};
pub use error::{RbmError, Result};
pub use fit::{fit, Control, FitOptions, FitOutcome, Observer};
pub use model::Rbm;
pub use raw::has_avx2_fma;
pub use rng::Stream;
pub use train::{CheckedConfig, Method, TrainConfig, Trainer};
