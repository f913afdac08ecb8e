//! An ingest worker: runs a set of hooks over every JSONL batch file in an inbox directory.
//!
//! It shows the shape a service that embeds hookhost takes:
//!
//! - one [`Hookhost`] for the process: one engine, and a bound on sandboxes running at once
//!   that makes busy batches wait rather than fail;
//! - for each batch, a fresh [snapshot](Hookhost::snapshot) of the hooks' releases, resolved
//!   once: a release made live while the worker runs applies from the next batch on, never
//!   halfway through one;
//! - an idempotency key made of the file's name and the sha256 of its bytes: running the
//!   worker again over the same inbox runs nothing twice and prints `already done`. A batch
//!   holds its key only once it has succeeded, and only for the same snapshot (a new live
//!   release makes every file a new batch). A cancelled or failed batch runs again on the
//!   next pass, after its directory is moved aside to `OUTBOX/<stem>.<state>-<batch id>/`;
//! - outcomes written to `OUTBOX/<file stem>/` (`<hook>/features.jsonl` with a `run_id` on
//!   every row, `passed.jsonl`, `batch.json`) rather than kept in memory, so memory does not
//!   grow with the batch;
//! - progress from [`BatchHandle::changed`], and Ctrl-C cancelling the batches in flight (the
//!   outcomes already settled are kept; a second Ctrl-C quits at once).
//!
//! It processes the files that are in the inbox when it starts, in name order and up to
//! `--concurrency` at once, then exits: 0 when every batch succeeded (now or earlier), 1
//! otherwise. A long-running worker would take batch files from a queue instead.
//!
//! # As a fleet
//!
//! With `--registry postgres://…` (or `HOOKHOST_REGISTRY`), every worker process — on this
//! machine or others — shares one registry, and each batch is claimed in the database before
//! any guest code runs: several workers over one inbox process every batch file exactly once
//! between them (a worker that finds a batch claimed waits for its outcome, and prints
//! `already done`). A worker that dies loses its claims when their lease (`--lease-secs`)
//! runs out, and the next worker to begin that batch runs it. `--root` then holds only this
//! machine's caches.
//!
//! Run it from the repository root after `make demo` (which publishes `text_stats` and
//! `require_fields` to `demo-out/registry`):
//!
//! ```sh
//! cargo run -p hookhost --example ingest_worker -- --root demo-out/registry \
//!     --hooks text_stats,require_fields \
//!     --inbox example-hooks/samples/inbox --outbox demo-out/outbox
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use hookhost::embed::{
    BATCH_FILE, Batch, BatchHandle, BatchOptions, BatchResult, BatchState, EmbedConfig, Hookhost,
};
use hookhost::registry::RegistryLocation;
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// How often a running batch prints its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Runs a hook set over the JSONL batch files of a directory.
#[derive(Debug, Parser)]
struct Args {
    /// The registry root the hooks are published in (with --registry: this machine's caches).
    #[arg(long, env = "HOOKHOST_HOME", default_value = ".hookhost")]
    root: PathBuf,
    /// A shared registry: a PostgreSQL URL (`postgres://user@host/db`, `?host=/dir` for a
    /// unix socket). Without it, the registry is under --root.
    #[arg(long, env = "HOOKHOST_REGISTRY")]
    registry: Option<String>,
    /// This worker's name in run records. By default `host:pid`.
    #[arg(long)]
    worker: Option<String>,
    /// How long a batch claim lasts without renewal, in seconds (renewed every third of it).
    #[arg(long, default_value_t = hookhost::embed::DEFAULT_CLAIM_LEASE.as_secs_f64())]
    lease_secs: f64,
    /// The hooks, comma-separated: `name` (its live release) or `name@VERSION`.
    #[arg(long, value_delimiter = ',', required = true)]
    hooks: Vec<String>,
    /// The directory whose `*.jsonl` files are the batches.
    #[arg(long)]
    inbox: PathBuf,
    /// Where each batch's outputs go, as `OUTBOX/<file stem>/`.
    #[arg(long)]
    outbox: PathBuf,
    /// How many batches run at once.
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> Result<ExitCode> {
    // The library never prints; it reports through `tracing`, and the worker picks where to.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let lease = Duration::from_secs_f64(args.lease_secs.max(0.1));
    let mut config = EmbedConfig {
        registry: RegistryLocation::parse(args.registry.as_deref())?,
        claim_lease: lease,
        claim_renewal: lease / 3,
        ..EmbedConfig::default()
    };
    config.host.worker = args.worker.clone();
    // Compiled code cached under the root: a component is compiled once per machine.
    config.host.code_cache = Some(args.root.join(hookhost::cache::CODE_CACHE_DIR));
    let hookhost = Hookhost::open(&args.root, config).await?;
    let mut files = batch_files(&args.inbox)?;
    if args.registry.is_some() && !files.is_empty() {
        // Fleet workers start at a place of their own in the inbox, so that they spread over
        // it instead of queueing behind one another's claims on the same first file.
        let start = std::process::id() as usize % files.len();
        files.rotate_left(start);
    }

    // Ctrl-C sets `stop`: each batch task cancels its batch, and no new batch begins.
    let (stop_sender, stop) = watch::channel(false);
    ctrlc::set_handler(move || {
        if stop_sender.send_replace(true) {
            std::process::exit(130);
        }
        eprintln!("worker: cancelling the batches in flight (Ctrl-C again quits at once)");
    })?;

    let slots = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let hooks: Arc<[String]> = args.hooks.into();
    let mut tasks = JoinSet::new();
    let mut not_begun = files.len();
    for path in files {
        let slot = slots.clone().acquire_owned().await?;
        if *stop.borrow() {
            break;
        }
        not_begun -= 1;
        let (hookhost, hooks, stop) = (hookhost.clone(), hooks.clone(), stop.clone());
        let out = args.outbox.join(path.file_stem().expect("a *.jsonl file"));
        tasks.spawn(async move {
            let _slot = slot;
            let ok = process(&hookhost, &hooks, &path, &out, stop).await;
            ok.unwrap_or_else(|error| {
                eprintln!("{}: {error:#}", name_of(&path));
                false
            })
        });
    }
    let mut all_succeeded = not_begun == 0;
    while let Some(succeeded) = tasks.join_next().await {
        all_succeeded &= succeeded?;
    }
    if not_begun > 0 {
        eprintln!("worker: interrupted; {not_begun} batch file(s) not begun");
    }
    Ok(if all_succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs one batch file; whether its batch succeeded (now, or in an earlier pass).
async fn process(
    hookhost: &Hookhost,
    hooks: &[String],
    path: &Path,
    out: &Path,
    mut stop: watch::Receiver<bool>,
) -> Result<bool> {
    let name = name_of(path);
    let key = {
        let (path, out) = (path.to_owned(), out.to_owned());
        // Reading files is blocking work: keep it off the runtime's worker threads.
        tokio::task::spawn_blocking(move || prepare(&path, &out)).await??
    };
    // Once per batch: the releases of the hook set, fixed for the whole batch.
    let references: Vec<&str> = hooks.iter().map(String::as_str).collect();
    let snapshot = hookhost.snapshot(&references).await?;
    let options = BatchOptions::default()
        .with_idempotency_key(key)
        .with_out(out);
    let mut handle = hookhost
        .begin(&snapshot, Batch::jsonl(path), options)
        .await
        .context("the batch could not begin")?;
    if handle.is_reused() {
        let earlier = handle.wait().await?;
        println!("{name}: already done: {}", describe(&earlier));
        return Ok(earlier.state == BatchState::Succeeded);
    }
    watch_progress(&name, &mut handle, &mut stop).await;
    let result = handle.wait().await?;
    println!("{name}: {}", describe(&result));
    Ok(result.state == BatchState::Succeeded)
}

/// Prints the batch's progress until it ends, cancelling it if the worker is stopped.
async fn watch_progress(name: &str, handle: &mut BatchHandle, stop: &mut watch::Receiver<bool>) {
    let mut cancelled = false;
    let mut printed: Option<Instant> = None;
    loop {
        tokio::select! {
            seen = handle.changed() => {
                if seen.state.is_finished() {
                    return;
                }
                let due = printed.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY);
                if due && seen.records.total > 0 {
                    let c = seen.records;
                    println!(
                        "{name}: {}: {} records settled ({} passed, {} rejected, {} errored), \
                         {} bytes read",
                        state_name(seen.state),
                        c.total,
                        c.passed,
                        c.rejected,
                        c.errored,
                        seen.input_bytes
                    );
                    printed = Some(Instant::now());
                }
            }
            _ = stop.wait_for(|&stop| stop), if !cancelled => {
                handle.cancel();
                cancelled = true;
            }
        }
    }
}

/// The batch's idempotency key: the file's name and the sha256 of its bytes (read as a
/// stream), so a file rewritten under the same name is a new batch. Also moves aside the outputs of an earlier
/// batch of this file that was cancelled or failed: such a batch does not hold its key, so
/// the file runs again, and its directory would be in the way.
fn prepare(path: &Path, out: &Path) -> Result<String> {
    let mut sha256 = Sha256::new();
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    std::io::copy(&mut file, &mut sha256).with_context(|| format!("reading {}", path.display()))?;
    if let Ok(json) = std::fs::read(out.join(BATCH_FILE)) {
        let earlier: serde_json::Value = serde_json::from_slice(&json)?;
        let state = earlier["state"].as_str().unwrap_or("unfinished");
        if state != "succeeded" {
            let batch_id = earlier["batch_id"].as_str().unwrap_or("unknown");
            let aside = format!("{}.{state}-{batch_id}", name_of(out));
            let aside = out.with_file_name(aside);
            std::fs::rename(out, &aside)
                .with_context(|| format!("moving {} aside", out.display()))?;
            println!(
                "{}: the earlier batch was {state}; its outputs are now in {}",
                name_of(path),
                aside.display()
            );
        }
    }
    Ok(format!("{}:sha256:{:x}", name_of(path), sha256.finalize()))
}

/// The `*.jsonl` files of `inbox`, in name order.
fn batch_files(inbox: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(inbox).with_context(|| format!("reading {}", inbox.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "jsonl") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// One line for a finished batch: how it ended, its counts, its id, each hook's release.
fn describe(result: &BatchResult) -> String {
    let c = result.records;
    let hooks: Vec<String> = result
        .hooks
        .iter()
        .map(|h| match h.run.hook.version {
            Some(version) => format!("{} v{version}", h.name),
            None => h.name.clone(),
        })
        .collect();
    let out = result
        .out_dir
        .as_deref()
        .map_or(String::new(), |d| format!(" -> {}", d.display()));
    format!(
        "{}: {} records: {} passed every hook, {} rejected, {} errored; batch {} ({}){out}",
        state_name(result.state),
        c.total,
        c.passed,
        c.rejected,
        c.errored,
        result.batch_id,
        hooks.join(", ")
    )
}

fn state_name(state: BatchState) -> &'static str {
    match state {
        BatchState::Pending => "pending",
        BatchState::Active => "active",
        BatchState::Succeeded => "succeeded",
        BatchState::Failed => "failed",
        BatchState::Cancelled => "cancelled",
    }
}

fn name_of(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
