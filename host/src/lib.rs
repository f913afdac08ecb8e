//! hookhost runs *hooks* — WebAssembly components that compute typed features for each record
//! of a batch, or reject it — in a sandbox with fuel, memory and time limits, and records
//! where every feature row came from.
//!
//! # Layout
//!
//! The pipeline, in the order a record travels through it:
//!
//! - [`component`] — the [`Host`] (one engine, the WASI linker, host-wide ceilings, the epoch
//!   thread) and [`HookComponent`]: bytes → digest → checked component with its contract.
//! - [`cache`] — the precompiled-code cache, keyed by component digest and engine fingerprint.
//! - [`contract`] — the feature [`Contract`](contract::Contract) and the checks on every row.
//! - [`sandbox`] — what a guest may see and use: nothing inherited, fixed clocks, seeded
//!   randomness, captured output, the memory limiter and the deadline.
//! - [`runner`] — the [`BatchRunner`](runner::BatchRunner): calls, OOM doubling, and the
//!   splitting that keeps a failing record from costing its batch-mates their outcomes.
//! - [`input`] — streaming JSONL records, with every bad line named.
//! - [`output`] and [`provenance`] — the output directory, made visible only when complete,
//!   and its `run.json`.
//! - [`run`] — all of the above as one call: [`run::run_to_dir`], what `host run` does;
//!   [`outcome`] — outcome lines as values, for runs that keep them in memory.
//! - [`embed`] — the async API for ingest workers: [`Hookhost`](embed::Hookhost) (one engine,
//!   a bound on sandboxes), a [`Snapshot`](embed::Snapshot) of live releases,
//!   `begin` / observe / cancel / await over a batch of many hooks, idempotency keys.
//! - [`registry`] — a root of content-addressed component blobs and `registry.db`: hooks,
//!   immutable numbered releases, live pointers, the append-only record of runs;
//!   [`evolution`] — the one classifier of contract changes; [`replay`] — run a recorded run
//!   again and compare.
//! - [`limits`] — the knobs and their defaults; [`error`] — the errors.
//!
//! The wire interface is `wit/hook.wit`; [`bindings`] is generated from it.
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

pub use component::{HookComponent, Host, HostConfig};
pub use error::{Error, RecordError};
