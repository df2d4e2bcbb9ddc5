//! Typed errors of the library. They name parameters and files; the command
//! line translates parameter names into its flags.

use std::path::PathBuf;

/// Everything the library can refuse or fail at.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RbmError {
    /// A file could not be read or written.
    /// (The cause is part of the message, not a `source()`, so that a
    /// printed chain states it once.)
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    /// A data file is malformed (bad magic number, wrong size, bad checksum...).
    #[error("{path}: {msg}")]
    Data { path: PathBuf, msg: String },
    /// A model or checkpoint file is malformed.
    #[error("{path}: {msg}")]
    ModelFile { path: PathBuf, msg: String },
    /// A parameter is out of range; `name` is the field that is wrong.
    #[error("{name}: {msg}")]
    Param { name: &'static str, msg: String },
    /// Shapes of arrays do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// Training produced a non-finite parameter or cost.
    #[error(
        "training diverged at epoch {epoch}, minibatch {batch}: {what} is not finite; try a smaller learning rate (lr)"
    )]
    Diverged { epoch: usize, batch: usize, what: String },
}

impl RbmError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RbmError::Io { path: path.into(), err: source }
    }
    pub fn data(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        RbmError::Data { path: path.into(), msg: msg.into() }
    }
    pub fn model_file(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        RbmError::ModelFile { path: path.into(), msg: msg.into() }
    }
    pub fn param(name: &'static str, msg: impl Into<String>) -> Self {
        RbmError::Param { name, msg: msg.into() }
    }
}

pub type Result<T> = std::result::Result<T, RbmError>;
