//! Errors: [`Error`] for operations that fail, [`RecordError`] for one record's failed outcome.

use std::path::PathBuf;

use crate::contract::{InvalidContract, Violation};
use crate::evolution::ContractChange;

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
    /// A feature file could not take a run's rows: its contract cannot be the file's schema,
    /// or a row could not be written (the reason names the record and column).
    #[error("{}: {reason}", path.display())]
    FeatureFile {
        /// The file (in the run's staging directory).
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Parquet feature files were asked for a batch that keeps its outcomes in memory:
    /// `features.parquet` is a file in a run directory.
    #[error(
        "features as Parquet need an output directory (features.parquet is written in each \
         run directory): give the batch one (BatchOptions::with_out), or keep features as JSONL"
    )]
    ParquetNeedsDirectory,
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
    /// The operation needs a registry and the host was opened without one.
    #[error("this host has no registry: open it on a root to resolve hooks by name")]
    NoRegistry,
    /// Something in the host itself went wrong (a background task stopped); a bug to report.
    #[error("internal error: {0}")]
    Internal(String),
    /// A name is not a valid hook name (`^[a-z][a-z0-9_]{0,39}$`).
    #[error("`{name}` is not a valid hook name: {reason}")]
    InvalidHookName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No hook of that name is registered.
    #[error("no hook named `{name}` in the registry at {registry}")]
    HookNotFound {
        /// The name asked for.
        name: String,
        /// The registry searched, as its store describes itself (`/x/registry.db`).
        registry: String,
    },
    /// The hook has no release of that version.
    #[error("hook `{name}` has no release v{version} (latest is v{latest})")]
    ReleaseNotFound {
        /// The hook.
        name: String,
        /// The version asked for.
        version: u32,
        /// The newest version there is.
        latest: u32,
    },
    /// No recorded run has that id (or id prefix), or the prefix matches several.
    #[error("{}", match matches {
        0 => format!("no run `{run_id}` in the registry"),
        n => format!("`{run_id}` matches {n} runs; give more of the id"),
    })]
    RunNotFound {
        /// The id or prefix asked for.
        run_id: String,
        /// How many runs the prefix matched (0, or more than 1).
        matches: usize,
    },
    /// A digest is not `sha256:` followed by 64 lowercase hex digits.
    #[error("`{digest}` is not a sha256 digest (sha256:<64 lowercase hex digits>)")]
    InvalidDigest {
        /// The text given.
        digest: String,
    },
    /// The blob store has no component with that digest.
    #[error("component {digest} is missing from the blob store (expected at {location})")]
    BlobNotFound {
        /// The digest.
        digest: String,
        /// Where it should be: a path, a URL.
        location: String,
    },
    /// A stored component's bytes no longer hash to its name: it was altered on disk.
    #[error(
        "blob {location} is corrupt: its bytes hash to {actual}, not {expected}; refusing to use \
         it (publish the component again to repair it)"
    )]
    CorruptBlob {
        /// Where the blob is: a path, a URL.
        location: String,
        /// The digest it is named after.
        expected: String,
        /// The digest of its bytes.
        actual: String,
    },
    /// A new release's contract breaks readers of the hook's feature rows.
    #[error(
        "the contract of {origin} is not compatible with hook `{hook}`'s; refused because:\n{}",
        changes.iter().map(|c| format!("  - {c}")).collect::<Vec<_>>().join("\n")
    )]
    ContractChanged {
        /// The hook.
        hook: String,
        /// The component published.
        origin: String,
        /// Every breaking change, as the classifier listed them.
        changes: Vec<ContractChange>,
    },
    /// The same component is already a release of the hook, with other settings.
    #[error(
        "{digest} is already released as `{hook}` v{version} with a different {what}; a release \
         never changes: override settings per run with `host run` flags, or publish a new build"
    )]
    ReleaseConflict {
        /// The hook.
        hook: String,
        /// The existing release.
        version: u32,
        /// The component's digest.
        digest: String,
        /// What differs: `config`, `limits`, or both.
        what: &'static str,
    },
    /// A replay's input is not the input the run read.
    #[error(
        "{} is not the input of run {run_id}: its sha256 is {actual}, the run read {expected}",
        path.display()
    )]
    ReplayInputMismatch {
        /// The run being replayed.
        run_id: String,
        /// The input given.
        path: PathBuf,
        /// The recorded input sha256.
        expected: String,
        /// The given input's sha256.
        actual: String,
    },
    /// A run finished but its provenance could not be added to the registry.
    #[error(
        "run {run_id} finished{} but could not be recorded in the registry: {source}",
        out_dir.as_ref().map(|d| format!(" (its output is complete in {d})")).unwrap_or_default()
    )]
    NotRecorded {
        /// The run.
        run_id: String,
        /// Its output directory, when kept.
        out_dir: Option<String>,
        /// Why recording failed.
        source: Box<Error>,
    },
    /// The registry's store (its database) failed.
    #[error("registry {registry}: {operation}: {source}")]
    Store {
        /// The registry, as its store describes itself (`/x/registry.db`,
        /// `postgres://host:5432/db`).
        registry: String,
        /// What it was doing: `recording run 0193…`, `reading hook `text_stats``.
        operation: String,
        /// The backend's own error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A registry that should already exist does not: nothing was ever published there.
    #[error(
        "no registry at {} (publish a hook first, or point --root / HOOKHOST_HOME at one)",
        root.display()
    )]
    RegistryNotFound {
        /// The root asked for.
        root: PathBuf,
    },
    /// The registry was written by a newer hookhost, with a schema this one does not know.
    #[error(
        "registry {registry} has schema version {found}, newer than this hookhost knows \
         ({known}); upgrade hookhost"
    )]
    RegistryTooNew {
        /// The registry, as its store describes itself.
        registry: String,
        /// Its schema version.
        found: u32,
        /// The newest this host knows.
        known: u32,
    },
    /// The WebAssembly engine failed in a way not covered above.
    #[error("engine error: {0:#}")]
    Engine(wasmtime::Error),
    /// A directory is not a hook project (or cannot become one).
    #[error("{}: {reason}", path.display())]
    InvalidProject {
        /// The directory or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A hook project did not build; the tool's own messages came before this.
    #[error("{} did not build: {tool}: {reason}", project.display())]
    BuildFailed {
        /// The project.
        project: PathBuf,
        /// The tool that failed (`cargo`, `pip`, `python -m hookhost build`).
        tool: String,
        /// How it failed.
        reason: String,
    },
    /// A config given for a run cannot be matched to its hook.
    #[error("config `{arg}`: {reason}")]
    InvalidConfigArg {
        /// The config as given.
        arg: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A set of hooks names one hook more than once (with or without a version).
    #[error("hook `{name}` is named more than once in the set; each hook runs once per batch")]
    DuplicateHook {
        /// The hook named twice.
        name: String,
    },
    /// Feature tables were asked for where they cannot be: with a registry that is not
    /// PostgreSQL, in a database that is not the registry's own, or under a name PostgreSQL
    /// cannot take. Refused before anything runs.
    #[error("feature tables {tables}: {reason}")]
    FeatureTables {
        /// Where they were asked for: the registry, the database or the schema.
        tables: String,
        /// Why they cannot be there.
        reason: String,
    },
    /// A hook's contract does not fit its feature table (classified by the one classifier
    /// against the table's contract): refused before anything runs.
    #[error(
        "feature table {table} cannot take the rows of hook `{hook}` (nothing ran); refused \
         because:\n{}",
        changes.iter().map(|c| format!("  - {c}")).collect::<Vec<_>>().join("\n")
    )]
    TableContractChanged {
        /// The table, `schema.name`.
        table: String,
        /// The hook whose rows were to go in.
        hook: String,
        /// Every breaking change from the table's contract to the hook's.
        changes: Vec<ContractChange>,
    },
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
