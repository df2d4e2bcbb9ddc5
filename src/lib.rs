//! `rbm`: restricted Boltzmann machines, after the classic deep-learning
//! tutorial "Restricted Boltzmann Machines (RBM)", and beyond it.
//!
//! Shape legend used in every comment: `n_visible` (nv), `n_hidden` (nh),
//! `batch` (rows of a minibatch or chains in flight). `W` is
//! `[n_visible, n_hidden]`, row-major, everywhere (see `model.rs`).
//!
//! Modules: [`model`] (the RBM and its conditionals), [`engine`] (the same
//! split across threads), [`train`] (CD-k, PCD-k and their monitors),
//! [`data`] (MNIST), [`images`] (filter and sample pictures), [`math`] and
//! [`rng`] (kernels).
//!
//! Training a small RBM on a few binary patterns with PCD-1, then reading its
//! exact log-likelihood:
//!
//! ```
//! use rbm::{data::Images, estimate, Method, Rbm, Stream, TrainConfig, Trainer};
//!
//! // 40 images of 6 pixels: two bars, alternating
//! let pixels: Vec<u8> = (0..40).flat_map(|i| if i % 2 == 0 { [255, 255, 255, 0, 0, 0] } else { [0, 0, 0, 255, 255, 255] }).collect();
//! let data = Images { n: 40, rows: 1, cols: 6, pixels };
//! let config = TrainConfig { method: Method::Pcd, k: 1, lr: 0.1, batch_size: 10, epochs: 50, n_hidden: 3, seed: 7, train_size: 40 };
//! config.check(data.n)?;
//! let rbm = Rbm::new(6, 3, &mut Stream::new(config.seed, 0))?;
//! let mut trainer = Trainer::new(&rbm, config)?;
//! while !trainer.done() {
//!     trainer.run(&data, 100, 2)?; // up to 100 minibatches on 2 threads
//! }
//! let trained = trainer.rbm();
//! let ll = |m: &Rbm| estimate::mean_neg_free_energy(m, &data.to_f32()) - estimate::exact_log_z(m, 1);
//! assert!(ll(&trained) > ll(&rbm));
//! # Ok::<(), rbm::RbmError>(())
//! ```

pub mod data;
pub mod engine;
pub mod error;
pub mod estimate;
pub mod images;
pub mod math;
pub mod model;
pub mod modelfile;
pub mod rng;
pub mod train;

pub use error::{RbmError, Result};
pub use model::Rbm;
pub use rng::Stream;
pub use train::{Method, TrainConfig, Trainer};
