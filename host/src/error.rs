//! Errors: [`Error`] for operations that fail, [`RecordError`] for one record's failed outcome.

use std::path::PathBuf;

use crate::contract::{InvalidContract, Violation};

/// Why an operation of the host failed. Callers branch on the variant; each carries the file,
/// component or value concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not a component implementing the hook world.
    #[error("{origin} is not a usable hook component: {reason}")]
    InvalidComponent {
        /// Where the bytes came from (a path, or a digest).
        origin: String,
        /// What is wrong with them.
        reason: String,
    },
    /// The component's contract is not well formed.
    #[error("{origin}: {source}")]
    InvalidContract {
        /// Where the component came from.
        origin: String,
        /// What is wrong with the contract.
        source: InvalidContract,
    },
    /// The config is not JSON.
    #[error("config is not valid JSON: {0}")]
    InvalidConfig(String),
    /// The hook's `configure` refused the config.
    #[error("the hook refused its config: {0}")]
    ConfigRejected(String),
    /// `configure` trapped or ran out of fuel, time or memory.
    #[error("the hook failed while being configured: {0}")]
    ConfigureFailed(String),
    /// The output directory already exists and is not empty.
    #[error(
        "output directory {} already exists and is not empty; choose a new one",
        path.display()
    )]
    OutputExists {
        /// The directory.
        path: PathBuf,
    },
    /// The run was cancelled.
    #[error("the run was cancelled")]
    Cancelled,
    /// The WebAssembly engine failed in a way not covered above.
    #[error("engine error: {0:#}")]
    Engine(wasmtime::Error),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Why one record has no features: the `kind` written to `errors.jsonl`, with details.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The input line is not a valid record.
    #[error("{0}")]
    InvalidInput(String),
    /// The record used up its fuel.
    #[error("ran out of fuel ({fuel_per_record} per record)")]
    FuelExhausted {
        /// The per-record budget in force.
        fuel_per_record: u64,
    },
    /// The record ran past its wall-clock timeout.
    #[error("ran past its timeout of {timeout_ms} ms")]
    Timeout {
        /// The per-record timeout in force.
        timeout_ms: u64,
    },
    /// The record needs more memory than the last cap allowed.
    #[error("ran out of memory at the cap of {cap_bytes} bytes{}", retries_note(*.oom_retries))]
    MemoryExhausted {
        /// The final memory cap.
        cap_bytes: u64,
        /// How many times the cap had doubled.
        oom_retries: u32,
    },
    /// The guest trapped: panic, abort, stack overflow, `unreachable`.
    #[error("{0}")]
    Trap(String),
    /// The hook returned an error for the record.
    #[error("{message}")]
    Guest {
        /// The hook's message.
        message: String,
        /// Whether the hook says a retry may succeed.
        retryable: bool,
    },
    /// The rows do not match the contract (or the call returned the wrong number of outcomes).
    #[error("{0}")]
    ContractViolation(Violation),
    /// The record's rows are larger than the per-record output cap.
    #[error("rows take {bytes} bytes of JSON, over the cap of {limit} bytes")]
    OutputTooLarge {
        /// The rows' size.
        bytes: u64,
        /// The cap.
        limit: u64,
    },
}

fn retries_note(retries: u32) -> String {
    match retries {
        0 => String::new(),
        n => format!(" (after {n} doubling{})", if n == 1 { "" } else { "s" }),
    }
}

impl RecordError {
    /// The error's kind, as written in `errors.jsonl`.
    pub fn kind(&self) -> &'static str {
        match self {
            RecordError::InvalidInput(_) => "invalid_input",
            RecordError::FuelExhausted { .. } => "fuel_exhausted",
            RecordError::Timeout { .. } => "timeout",
            RecordError::MemoryExhausted { .. } => "memory_exhausted",
            RecordError::Trap(_) => "trap",
            RecordError::Guest { .. } => "guest_error",
            RecordError::ContractViolation(_) => "contract_violation",
            RecordError::OutputTooLarge { .. } => "output_too_large",
        }
    }

    /// Whether running the same record again, unchanged, might succeed: only a timeout (the
    /// machine may have been busy) or a guest error the hook marked retryable.
    pub fn retryable(&self) -> bool {
        match self {
            RecordError::Timeout { .. } => true,
            RecordError::Guest { retryable, .. } => *retryable,
            _ => false,
        }
    }
}
