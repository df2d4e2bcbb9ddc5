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
