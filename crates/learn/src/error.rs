//! The error type of the model, data and training modules.

use std::path::PathBuf;

/// Result with [`LearnError`].
pub type Result<T, E = LearnError> = std::result::Result<T, E>;

/// What went wrong reading data, building a model or training it.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// An input that does not make sense, with what to fix.
    #[error("invalid {context}: {message}")]
    Invalid {
        /// What was being checked (a file, a parameter, a model spec).
        context: String,
        /// What is wrong with it.
        message: String,
    },
    /// Reading a table failed.
    #[error(transparent)]
    Data(#[from] tributary_valuation::ValuationError),
    /// The tensor library failed (a shape mismatch is a bug or a spec that does not fit the data).
    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// Reading or writing a weights file failed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Training diverged (a loss or a weight became NaN or infinite).
    #[error("training diverged at epoch {epoch}: {detail}; lower the learning rate")]
    Diverged {
        /// 1-based epoch.
        epoch: u32,
        /// What was seen.
        detail: String,
    },
}

impl LearnError {
    /// An [`LearnError::Invalid`].
    pub fn invalid(context: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            context: context.into(),
            message: message.into(),
        }
    }
}
