//! hookhost runs *hooks* — WebAssembly components that compute typed features for each record
//! of a batch, or reject it — in a sandbox with fuel, memory and time limits, and records
//! where every feature row came from.
//!
//! # Layout
//!
//! The pipeline, one module a line, in dependency order: each module uses only modules above
//! it (`tests/layout.rs` checks this list against the `use crate::` lines of the tree). A
//! record's trip goes down the list once: from a source, through a sandbox, to its outputs and
//! the record of its run.
//!
//! - [`digest`] — `sha256:` digests and hex; the ground floor, with [`fsutil`].
//! - [`fsutil`] — absolute paths, the stale-temp sweep, directory fsyncs.
//! - [`limits`] — the knobs of a run ([`Limits`](limits::Limits)) and the host's
//!   [`Ceilings`](limits::Ceilings), each with its named default.
//! - [`bindings`] — generated from `wit/hook.wit`, the single source of the hook interface.
//! - [`contract`] — the feature [`Contract`](contract::Contract) and the checks on every row.
//! - [`evolution`] — the one classifier of contract changes.
//! - [`error`] — [`Error`] for operations, [`RecordError`] for one record's outcome.
//! - [`config`] — a hook's config, made canonical.
//! - [`provenance`] — `run.json` ([`RunRecord`](provenance::RunRecord)) and the
//!   [`Recorder`](provenance::Recorder) a run hands itself to when it ends.
//! - [`outcome`] — outcome lines as values, for runs that keep them in memory.
//! - [`sandbox`] — what a guest may see and use: nothing inherited, fixed clocks, seeded
//!   randomness, captured output, the memory limiter and the deadline.
//! - [`engine`] — the [`SandboxEngine`](engine::SandboxEngine): one wasmtime engine, the WASI
//!   linker, the instance pool, the epoch thread.
//! - [`cache`] — compiled code on disk, by component digest and engine fingerprint.
//! - [`component`] — the [`Host`] and its [`HookComponent`]s: bytes → digest → a checked,
//!   linked component with its contract.
//! - [`input`] — a batch's records from JSONL or values, checked once, cut into chunks.
//! - [`runner`] — one call into a sandbox at a time: budget → configure → process → collect
//!   → classify, OOM doubling, and the isolation reruns that keep a failing record from
//!   costing its batch-mates their outcomes.
//! - [`output`] — run and batch directories, visible only when complete.
//! - [`sink`] — where feature rows go: `features.jsonl`, `features.parquet`, or PostgreSQL
//!   feature tables that commit with their runs.
//! - [`exec`] — the one engine for one hook or many: [`execute`](exec::execute) runs a
//!   [`BatchRequest`](exec::BatchRequest) on a fixed set of workers and settles in input order.
//! - [`registry`] — the registry's rules (names, releases, live pointers and who moved them,
//!   runs and their pages, batch keys, uploads by digest) over a
//!   [`Store`](registry::store::Store) (SQLite on one machine, PostgreSQL for a fleet) and a
//!   blob store; its async face for services ([`AsyncRegistry`](registry::AsyncRegistry)); and,
//!   in a PostgreSQL registry's database, the feature tables whose rows commit with their runs
//!   ([`registry::tables`]).
//! - [`run`] — one hook over one JSONL file into a run directory: [`run::run_to_dir`].
//! - [`hookset`] — what `host run HOOK…` asks for (names, files, configs, overrides), resolved
//!   into plans.
//! - [`replay`] — run a recorded run again and compare.
//! - [`scaffold`] — hook projects: `host new` and `host build` for Rust and Python.
//! - [`embed`] — the async API for ingest workers: [`Hookhost`](embed::Hookhost), a
//!   [`Snapshot`](embed::Snapshot) of live releases, `begin` / observe / cancel / await,
//!   idempotency keys.
//!
//! The `host` binary (`src/bin/host`, behind the default `cli` feature) only parses flags,
//! builds a resolved config, calls the library and maps errors to exit codes.
//!
//! # Example
//!
//! ```no_run
//! use hookhost::{Host, HostConfig, limits::{Limits, MIB}};
//! use hookhost::run::{run_to_dir, Input, RunRequest};
//!
//! let host = Host::new(HostConfig::default())?;
//! let hook = host.load_file("text_stats.wasm".as_ref())?;
//! let mut request = RunRequest::new(hook, Input::File("batch.jsonl".into()), "out");
//! request.limits = Limits::default().with_memory_bytes(32 * MIB);
//! let record = run_to_dir(request, &mut |_| {})?;
//! assert_eq!(
//!     record.records.passed + record.records.rejected + record.records.errored,
//!     record.records.total,
//! );
//! # Ok::<(), hookhost::Error>(())
//! ```
//!
//! The library never prints; it reports through `tracing` spans and events.
#![deny(missing_docs)]

#[allow(missing_docs, unsafe_code)]
pub mod bindings;
pub mod cache;
pub mod component;
pub mod config;
pub mod contract;
pub mod digest;
pub mod embed;
pub mod engine;
pub mod error;
pub mod evolution;
pub mod exec;
pub mod fsutil;
pub mod hookset;
pub mod input;
pub mod limits;
pub mod outcome;
pub mod output;
pub mod provenance;
pub mod registry;
pub mod replay;
pub mod run;
pub mod runner;
pub mod sandbox;
pub mod scaffold;
pub mod sink;

pub use component::{HookComponent, Host, HostConfig};
pub use error::{Error, RecordError};
