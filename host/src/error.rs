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
    /// The registry's store (its database) failed; [`StoreFailure`] says whether it could not
    /// be reached (try again later) or failed otherwise.
    #[error("registry {registry}: {operation}: {}{source}", kind.prefix())]
    Store {
        /// The registry, as its store describes itself (`/x/registry.db`,
        /// `postgres://host:5432/db`).
        registry: String,
        /// What it was doing: `recording run 0193…`, `reading hook `text_stats``.
        operation: String,
        /// What kind of failure it was.
        kind: StoreFailure,
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
    /// A live move was asked for on the condition that the pointer is on `expected`, and it
    /// is on `actual`: someone moved it meanwhile. Nothing moved.
    #[error(
        "hook `{hook}`'s live pointer is on v{actual}, not v{expected} as expected; nothing \
         moved (read where it is and decide again)"
    )]
    LiveConflict {
        /// The hook.
        hook: String,
        /// Where the caller expected the pointer.
        expected: u32,
        /// Where it is.
        actual: u32,
    },
    /// A live move's reason is longer than
    /// [`MAX_REASON_BYTES`](crate::registry::MAX_REASON_BYTES).
    #[error("the reason is {bytes} bytes long, over the cap of {max} bytes; say it shorter")]
    ReasonTooLong {
        /// Its length in bytes.
        bytes: usize,
        /// The cap.
        max: usize,
    },
    /// Bytes uploaded under a digest do not hash to it. Nothing was stored.
    #[error("the bytes uploaded as {expected} hash to {actual}; nothing was stored")]
    DigestMismatch {
        /// The digest the bytes were sent under.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// Something sent is larger than its cap. Nothing was stored.
    #[error("{what} is over the cap of {limit} bytes; nothing was stored")]
    TooLarge {
        /// What was too large: `the upload of sha256:…`.
        what: String,
        /// The cap, in bytes.
        limit: u64,
    },
    /// An upload ended before all of its bytes arrived (the sender's stream failed). Nothing
    /// was stored.
    #[error("the upload of {digest} failed after {received} bytes: {reason}; nothing was stored")]
    UploadFailed {
        /// The digest the bytes were sent under.
        digest: String,
        /// How many bytes had arrived.
        received: u64,
        /// Why the stream ended.
        reason: String,
    },
    /// A page cursor is not one the registry gave out.
    #[error("`{cursor}` is not a cursor of this listing (pass back `next_cursor` as given)")]
    InvalidCursor {
        /// The cursor given.
        cursor: String,
    },
    /// A run record handed to the registry to keep cannot be a run of one of its releases, or
    /// does not hold together.
    #[error("run {run_id} cannot be recorded: {reason}")]
    InvalidRun {
        /// The run's id as given.
        run_id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A run with this id is already recorded, with other content. Runs never change.
    #[error("run {run_id} is already recorded with other content; a recorded run never changes")]
    RunConflict {
        /// The run's id.
        run_id: String,
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

/// What kind of store failure an [`Error::Store`] is: what a caller decides on (a server
/// answers [`Unavailable`](StoreFailure::Unavailable) with 503 and the rest with 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreFailure {
    /// The store could not be reached, or dropped the connection, or is shutting down or
    /// starting, or stayed busy past its timeout: nothing was changed by half, and the same
    /// call may succeed later.
    Unavailable,
    /// A blocking registry call was made on a thread that drives async tasks, where it would
    /// stall the runtime (or panic inside it): call the registry through
    /// [`AsyncRegistry`](crate::registry::AsyncRegistry) or
    /// [`registry::blocking`](crate::registry::blocking).
    InsideAsyncRuntime,
    /// Anything else the backend refused or failed with.
    Failed,
}

impl StoreFailure {
    fn prefix(self) -> &'static str {
        match self {
            StoreFailure::Unavailable => "the store is unavailable: ",
            StoreFailure::InsideAsyncRuntime => "",
            StoreFailure::Failed => "",
        }
    }
}

impl Error {
    /// A stable, snake_case name for what went wrong, one per variant (and per
    /// [`StoreFailure`]): what an HTTP API puts in its error body and what scripts branch on.
    /// Codes are never renamed or reused; new variants get new codes.
    ///
    /// ```
    /// use hookhost::Error;
    /// let error = Error::HookNotFound { name: "x".into(), registry: "/r/registry.db".into() };
    /// assert_eq!(error.code(), "hook_not_found");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            Error::Io { .. } => "io_error",
            Error::InvalidComponent { .. } => "invalid_component",
            Error::InvalidContract { .. } => "invalid_contract",
            Error::FeatureFile { .. } => "feature_file_failed",
            Error::ParquetNeedsDirectory => "parquet_needs_directory",
            Error::InvalidConfig(_) => "invalid_config",
            Error::ConfigRejected(_) => "config_rejected",
            Error::ConfigureFailed(_) => "configure_failed",
            Error::OutputExists { .. } => "output_exists",
            Error::Cancelled => "cancelled",
            Error::NoRegistry => "no_registry",
            Error::Internal(_) => "internal",
            Error::InvalidHookName { .. } => "invalid_hook_name",
            Error::HookNotFound { .. } => "hook_not_found",
            Error::ReleaseNotFound { .. } => "release_not_found",
            Error::RunNotFound { .. } => "run_not_found",
            Error::InvalidDigest { .. } => "invalid_digest",
            Error::BlobNotFound { .. } => "blob_not_found",
            Error::CorruptBlob { .. } => "corrupt_blob",
            Error::ContractChanged { .. } => "contract_changed",
            Error::ReleaseConflict { .. } => "release_conflict",
            Error::ReplayInputMismatch { .. } => "replay_input_mismatch",
            Error::NotRecorded { .. } => "not_recorded",
            Error::Store { kind, .. } => match kind {
                StoreFailure::Unavailable => "store_unavailable",
                StoreFailure::InsideAsyncRuntime => "store_inside_async_runtime",
                StoreFailure::Failed => "store_failed",
            },
            Error::RegistryNotFound { .. } => "registry_not_found",
            Error::RegistryTooNew { .. } => "registry_too_new",
            Error::Engine(_) => "engine_error",
            Error::InvalidProject { .. } => "invalid_project",
            Error::BuildFailed { .. } => "build_failed",
            Error::InvalidConfigArg { .. } => "invalid_config_arg",
            Error::DuplicateHook { .. } => "duplicate_hook",
            Error::FeatureTables { .. } => "feature_tables_refused",
            Error::TableContractChanged { .. } => "table_contract_changed",
            Error::LiveConflict { .. } => "live_conflict",
            Error::ReasonTooLong { .. } => "reason_too_long",
            Error::DigestMismatch { .. } => "digest_mismatch",
            Error::TooLarge { .. } => "too_large",
            Error::UploadFailed { .. } => "upload_failed",
            Error::InvalidCursor { .. } => "invalid_cursor",
            Error::InvalidRun { .. } => "invalid_run",
            Error::RunConflict { .. } => "run_conflict",
        }
    }

    /// Whether this is a store that could not be reached ([`StoreFailure::Unavailable`]), for
    /// a caller that retries later or answers 503. A run that finished but could not be
    /// recorded ([`Error::NotRecorded`]) is one when its cause is.
    pub fn is_store_unavailable(&self) -> bool {
        match self {
            Error::Store { kind, .. } => *kind == StoreFailure::Unavailable,
            Error::NotRecorded { source, .. } => source.is_store_unavailable(),
            _ => false,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The variant's place in the enum. No wildcard arm: a new variant does not compile until
    /// it is listed here, and then `every_variant_has_a_stable_unique_code` fails until it has
    /// a sample below.
    fn variant_index(error: &Error) -> usize {
        match error {
            Error::Io { .. } => 0,
            Error::InvalidComponent { .. } => 1,
            Error::InvalidContract { .. } => 2,
            Error::FeatureFile { .. } => 3,
            Error::ParquetNeedsDirectory => 4,
            Error::InvalidConfig(_) => 5,
            Error::ConfigRejected(_) => 6,
            Error::ConfigureFailed(_) => 7,
            Error::OutputExists { .. } => 8,
            Error::Cancelled => 9,
            Error::NoRegistry => 10,
            Error::Internal(_) => 11,
            Error::InvalidHookName { .. } => 12,
            Error::HookNotFound { .. } => 13,
            Error::ReleaseNotFound { .. } => 14,
            Error::RunNotFound { .. } => 15,
            Error::InvalidDigest { .. } => 16,
            Error::BlobNotFound { .. } => 17,
            Error::CorruptBlob { .. } => 18,
            Error::ContractChanged { .. } => 19,
            Error::ReleaseConflict { .. } => 20,
            Error::ReplayInputMismatch { .. } => 21,
            Error::NotRecorded { .. } => 22,
            Error::Store { .. } => 23,
            Error::RegistryNotFound { .. } => 24,
            Error::RegistryTooNew { .. } => 25,
            Error::Engine(_) => 26,
            Error::InvalidProject { .. } => 27,
            Error::BuildFailed { .. } => 28,
            Error::InvalidConfigArg { .. } => 29,
            Error::DuplicateHook { .. } => 30,
            Error::FeatureTables { .. } => 31,
            Error::TableContractChanged { .. } => 32,
            Error::LiveConflict { .. } => 33,
            Error::ReasonTooLong { .. } => 34,
            Error::DigestMismatch { .. } => 35,
            Error::TooLarge { .. } => 36,
            Error::UploadFailed { .. } => 37,
            Error::InvalidCursor { .. } => 38,
            Error::InvalidRun { .. } => 39,
            Error::RunConflict { .. } => 40,
        }
    }
    const VARIANTS: usize = 41;

    fn samples() -> Vec<Error> {
        let text = || String::from("x");
        let store = |kind| Error::Store {
            registry: text(),
            operation: text(),
            kind,
            source: "down".into(),
        };
        vec![
            Error::io("/x", std::io::Error::other("x")),
            Error::InvalidComponent {
                origin: text(),
                reason: text(),
            },
            Error::InvalidContract {
                origin: text(),
                source: crate::contract::Contract {
                    feature: String::new(),
                    cardinality: crate::contract::Cardinality::One,
                    columns: vec![],
                }
                .validate()
                .unwrap_err(),
            },
            Error::FeatureFile {
                path: "/x".into(),
                reason: text(),
            },
            Error::ParquetNeedsDirectory,
            Error::InvalidConfig(text()),
            Error::ConfigRejected(text()),
            Error::ConfigureFailed(text()),
            Error::OutputExists { path: "/x".into() },
            Error::Cancelled,
            Error::NoRegistry,
            Error::Internal(text()),
            Error::InvalidHookName {
                name: text(),
                reason: "x",
            },
            Error::HookNotFound {
                name: text(),
                registry: text(),
            },
            Error::ReleaseNotFound {
                name: text(),
                version: 2,
                latest: 1,
            },
            Error::RunNotFound {
                run_id: text(),
                matches: 0,
            },
            Error::InvalidDigest { digest: text() },
            Error::BlobNotFound {
                digest: text(),
                location: text(),
            },
            Error::CorruptBlob {
                location: text(),
                expected: text(),
                actual: text(),
            },
            Error::ContractChanged {
                hook: text(),
                origin: text(),
                changes: vec![],
            },
            Error::ReleaseConflict {
                hook: text(),
                version: 1,
                digest: text(),
                what: "config",
            },
            Error::ReplayInputMismatch {
                run_id: text(),
                path: "/x".into(),
                expected: text(),
                actual: text(),
            },
            Error::NotRecorded {
                run_id: text(),
                out_dir: None,
                source: Box::new(store(StoreFailure::Unavailable)),
            },
            store(StoreFailure::Unavailable),
            store(StoreFailure::InsideAsyncRuntime),
            store(StoreFailure::Failed),
            Error::RegistryNotFound { root: "/x".into() },
            Error::RegistryTooNew {
                registry: text(),
                found: 9,
                known: 1,
            },
            Error::Engine(wasmtime::Error::msg("x")),
            Error::InvalidProject {
                path: "/x".into(),
                reason: text(),
            },
            Error::BuildFailed {
                project: "/x".into(),
                tool: text(),
                reason: text(),
            },
            Error::InvalidConfigArg {
                arg: text(),
                reason: text(),
            },
            Error::DuplicateHook { name: text() },
            Error::FeatureTables {
                tables: text(),
                reason: text(),
            },
            Error::TableContractChanged {
                table: text(),
                hook: text(),
                changes: vec![],
            },
            Error::LiveConflict {
                hook: text(),
                expected: 1,
                actual: 2,
            },
            Error::ReasonTooLong { bytes: 9, max: 1 },
            Error::DigestMismatch {
                expected: text(),
                actual: text(),
            },
            Error::TooLarge {
                what: text(),
                limit: 1,
            },
            Error::UploadFailed {
                digest: text(),
                received: 0,
                reason: text(),
            },
            Error::InvalidCursor { cursor: text() },
            Error::InvalidRun {
                run_id: text(),
                reason: text(),
            },
            Error::RunConflict { run_id: text() },
        ]
    }

    #[test]
    fn every_variant_has_a_stable_unique_code() {
        let samples = samples();
        let covered: std::collections::BTreeSet<usize> =
            samples.iter().map(variant_index).collect();
        assert_eq!(covered.len(), VARIANTS, "a sample of every variant");
        let mut codes = std::collections::BTreeSet::new();
        for error in &samples {
            let code = error.code();
            assert!(
                !code.is_empty()
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
                    && !code.starts_with('_')
                    && !code.ends_with('_'),
                "`{code}` is not snake_case"
            );
            assert!(codes.insert(code), "`{code}` is used twice");
        }
        // The ones a service answers with are spelled as documented.
        for (error, code) in samples.iter().zip(samples.iter().map(Error::code)) {
            if let Error::Store { kind, .. } = error {
                assert_eq!(
                    error.is_store_unavailable(),
                    *kind == StoreFailure::Unavailable,
                    "{code}"
                );
            }
        }
        for expected in [
            "hook_not_found",
            "release_not_found",
            "blob_not_found",
            "invalid_component",
            "contract_changed",
            "release_conflict",
            "live_conflict",
            "digest_mismatch",
            "too_large",
            "invalid_hook_name",
            "store_unavailable",
            "run_conflict",
            "invalid_run",
        ] {
            assert!(codes.contains(expected), "{expected}");
        }
        assert!(
            samples[22].is_store_unavailable(),
            "a run not recorded because the store was down"
        );
    }
}
