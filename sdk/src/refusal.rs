//! Why a record did not pass: [`Refusal`], [`reject`] and [`GuestError`].

use std::fmt;

use crate::GuestError;

/// Why a record produced no rows: the hook refused it, or could not process it.
///
/// ```
/// use hookhost_sdk::{GuestError, Refusal, reject};
///
/// fn check(n: i64) -> Result<i64, Refusal> {
///     if n < 0 {
///         return Err(reject("n must not be negative"));
///     }
///     if n > 1_000 {
///         // `?` turns a GuestError into Refusal::Errored.
///         Err(GuestError::new("upstream busy").retryable(true))?;
///     }
///     Ok(n)
/// }
/// assert_eq!(check(-1), Err(Refusal::Rejected("n must not be negative".into())));
/// assert!(matches!(check(2_000), Err(Refusal::Errored(e)) if e.retryable));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The record was looked at and refused; the text says why. Not an error: the record is
    /// reported in `rejections.jsonl`.
    Rejected(String),
    /// The hook could not process the record (kind `guest_error`).
    Errored(GuestError),
}

/// A [`Refusal::Rejected`] with this reason.
pub fn reject(reason: impl Into<String>) -> Refusal {
    Refusal::Rejected(reason.into())
}

impl From<GuestError> for Refusal {
    fn from(error: GuestError) -> Self {
        Refusal::Errored(error)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Rejected(reason) => write!(f, "rejected: {reason}"),
            Refusal::Errored(error) => write!(f, "errored: {error}"),
        }
    }
}

impl std::error::Error for Refusal {}

impl GuestError {
    /// An error with this message, not retryable.
    pub fn new(message: impl Into<String>) -> Self {
        GuestError {
            message: message.into(),
            retryable: false,
        }
    }

    /// The same error, marked as retryable (running the same record again might succeed) or not.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GuestError {}
