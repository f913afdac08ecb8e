//! `host`: the command-line shell over the hookhost library. It parses flags, builds a
//! request, calls the library and maps the result to an exit code: 0 when the run succeeded
//! (records may still be rejected or errored), 1 when it could not run or did not complete,
//! 2 for bad usage.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use hookhost::limits::{self, Ceilings, Limits};
use hookhost::provenance::{RunRecord, RunStatus};
use hookhost::run::{Input, Progress, RunRequest, run_to_dir};
use hookhost::runner::DEFAULT_CHUNK_SIZE;
use hookhost::{Host, HostConfig};

const ABOUT: &str = "Run sandboxed WebAssembly hooks over batches of records";

const LONG_ABOUT: &str = "\
Run sandboxed WebAssembly hooks over batches of records.

A hook is a WebAssembly component (built with the hookhost SDK, or any language that targets
the component model and implements wit/hook.wit). It looks at each record of a JSONL batch and
returns typed feature rows, a rejection, or an error. Each call runs in a fresh sandbox with a
fuel budget, a memory cap (doubled and retried when the hook runs out) and a timeout; a record
that fails never costs the others their outcomes.

Set HOOKHOST_LOG=debug (or info, trace) to see what the host does.";

const RUN_AFTER_HELP: &str = "\
Input lines look like {\"id\": \"doc-1\", \"metadata\": {...}, \"size_hint_mb\": 1.5}; blank lines
are skipped; a line that is not a valid record becomes an `invalid_input` error naming its line.

OUT receives, only once complete: features.jsonl, rejections.jsonl, errors.jsonl, logs.txt and
run.json (the provenance record: digests, limits, counts, output hashes).

Examples:
  host run text_stats.wasm --input batch.jsonl --out out/
  host run file_profile.wasm --input docs.jsonl --files docs/ --out out/
  host run require_fields.wasm --input batch.jsonl --config '{\"required\": [\"title\"]}' --out out/
  host run memory_hungry.wasm --input big.jsonl --memory 32MiB --max-oom-retries 3 --out out/";

#[derive(Debug, Parser)]
#[command(name = "host", version, about = ABOUT, long_about = LONG_ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a hook over a JSONL batch and write its features, rejections, errors, logs and
    /// provenance.
    #[command(after_help = RUN_AFTER_HELP)]
    Run(RunArgs),
    /// Show a component's digest, size and feature contract.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The hook: a path to a `.wasm` component.
    hook: PathBuf,
    /// The JSONL batch, or `-` for standard input.
    #[arg(long, short, value_name = "FILE")]
    input: String,
    /// The output directory; it must not exist yet (or be empty).
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    /// Directory of record files: record <id> sees the files under DIR/<id>/, read-only.
    #[arg(long, value_name = "DIR")]
    files: Option<PathBuf>,
    /// The hook's config: JSON text, or @FILE to read it from a file.
    #[arg(long, value_name = "JSON|@FILE")]
    config: Option<String>,
    /// Fuel (about one unit per WebAssembly instruction) per record.
    #[arg(long, value_name = "N", value_parser = parse_count,
          default_value_t = limits::DEFAULT_FUEL_PER_RECORD)]
    fuel: u64,
    /// Starting memory cap of the sandbox, e.g. 32MiB; doubled on out-of-memory failures.
    #[arg(long, value_name = "SIZE", value_parser = limits::parse_size,
          default_value = "64MiB")]
    memory: u64,
    /// The most memory the cap may double to.
    #[arg(long, value_name = "SIZE", value_parser = limits::parse_size,
          default_value = "4GiB")]
    memory_ceiling: u64,
    /// How many times the memory cap may double in this run.
    #[arg(long, value_name = "N", default_value_t = limits::DEFAULT_MAX_OOM_RETRIES)]
    max_oom_retries: u32,
    /// Wall-clock time per record, e.g. 500ms, 10s, 2m.
    #[arg(long, value_name = "DUR", value_parser = limits::parse_duration, default_value = "10s")]
    timeout: Duration,
    /// Records per call into the sandbox.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CHUNK_SIZE,
          value_parser = clap::value_parser!(usize))]
    chunk_size: usize,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// The hook: a path to a `.wasm` component.
    hook: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Inspect(args) => inspect(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // A library error's message already names its cause; other errors carry context
            // added here, shown as a chain.
            match error.downcast_ref::<hookhost::Error>() {
                Some(error) => eprintln!("host: {error}"),
                None => eprintln!("host: {error:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> Result<ExitCode> {
    let host = Host::new(HostConfig {
        ceilings: Ceilings {
            memory_bytes: args.memory_ceiling,
            ..Ceilings::default()
        },
        ..HostConfig::default()
    })?;
    let request = build_request(&host, args)?;
    let cancel = request.cancel.clone();
    install_ctrl_c(cancel);
    let mut meter = ProgressLine::new();
    let record = run_to_dir(request, &mut |p| meter.update(p))?;
    meter.finish();
    report(&record)
}

/// Turns raw flags into a validated request.
fn build_request(host: &Host, args: RunArgs) -> Result<RunRequest> {
    let hook = host.load_file(&args.hook)?;
    let input = match args.input.as_str() {
        "-" => Input::Stdin,
        path => Input::File(path.into()),
    };
    let config = match args.config {
        Some(text) => Some(match text.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {path}"))?,
            None => text,
        }),
        None => None,
    };
    if args.chunk_size == 0 {
        bail!("--chunk-size must be at least 1");
    }
    let mut request = RunRequest::new(hook, input, args.out);
    request.files = args.files;
    request.config = config;
    request.chunk_size = args.chunk_size;
    request.limits = Limits::default()
        .with_fuel_per_record(args.fuel)
        .with_memory_bytes(args.memory)
        .with_max_oom_retries(args.max_oom_retries)
        .with_timeout(args.timeout);
    Ok(request)
}

fn report(record: &RunRecord) -> Result<ExitCode> {
    let c = record.records;
    let rows = record
        .outputs
        .get("features.jsonl")
        .map_or(0, |output| output.rows);
    let status = match record.status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
    };
    println!(
        "run {}: {status}: {} records: {} passed ({rows} feature rows), {} rejected, {} errored",
        record.run_id, c.total, c.passed, c.rejected, c.errored
    );
    if record.oom_retries > 0 {
        println!(
            "memory cap doubled {} time(s), to {}",
            record.oom_retries,
            limits::format_size(record.memory_bytes_final)
        );
    }
    match record.status {
        RunStatus::Succeeded => Ok(ExitCode::SUCCESS),
        RunStatus::Cancelled => bail!("run {} was cancelled", record.run_id),
        RunStatus::Failed => bail!(
            "run {} failed: {}",
            record.run_id,
            record.error.as_deref().unwrap_or("unknown error")
        ),
    }
}

fn inspect(args: InspectArgs) -> Result<ExitCode> {
    let host = Host::new(HostConfig::default())?;
    let hook = host.load_file(&args.hook)?;
    let contract = hook.contract();
    if args.json {
        let json = serde_json::json!({
            "digest": hook.digest(),
            "size": hook.size(),
            "contract_digest": contract.digest(),
            "contract": contract,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("digest:       {}", hook.digest());
    println!("size:         {} bytes", hook.size());
    println!("feature:      {}", contract.feature);
    println!(
        "cardinality:  {}",
        serde_json::to_value(contract.cardinality)?
            .as_str()
            .unwrap_or_default()
    );
    println!("contract:     {}", contract.digest());
    println!("columns:");
    let width = contract
        .columns
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    for column in &contract.columns {
        let required = if column.nullable {
            "nullable"
        } else {
            "required"
        };
        let description = column.description.as_deref().unwrap_or("");
        println!(
            "  {:width$}  {:12}  {required:8}  {description}",
            column.name,
            column.ty.name()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_count(text: &str) -> Result<u64, String> {
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    match digits.parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("expected a whole number: {e}")),
    }
}

/// The first Ctrl-C cancels the run (guest code stops within one epoch tick and the output
/// directory is still written, marked `cancelled`); a second one exits at once.
fn install_ctrl_c(cancel: Arc<AtomicBool>) {
    let _ = ctrlc::set_handler(move || {
        if cancel.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
        eprintln!("\nhost: cancelling (press Ctrl-C again to quit at once)");
    });
}

/// A one-line progress meter on stderr, only when stderr is a terminal.
struct ProgressLine {
    enabled: bool,
    last: Option<Instant>,
    shown: bool,
}

impl ProgressLine {
    fn new() -> Self {
        ProgressLine {
            enabled: std::io::stderr().is_terminal(),
            last: None,
            shown: false,
        }
    }

    fn update(&mut self, progress: &Progress) {
        if !self.enabled
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(200))
        {
            return;
        }
        self.last = Some(Instant::now());
        let c = progress.counts;
        let rate = c.total as f64 / progress.elapsed.as_secs_f64().max(1e-3);
        eprint!(
            "\r\x1b[K{} records ({} passed, {} rejected, {} errored), {:.1} MB read, {rate:.0} records/s",
            c.total,
            c.passed,
            c.rejected,
            c.errored,
            progress.bytes_read as f64 / 1e6
        );
        let _ = std::io::stderr().flush();
        self.shown = true;
    }

    fn finish(&self) {
        if self.shown {
            eprint!("\r\x1b[K");
        }
    }
}

/// Warnings go to stderr as plain lines; `HOOKHOST_LOG=info|debug|trace` shows more, with
/// timestamps and sources.
fn init_tracing() {
    use tracing_subscriber::filter::LevelFilter;
    let asked = std::env::var("HOOKHOST_LOG")
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok());
    let builder = tracing_subscriber::fmt()
        .with_max_level(asked.unwrap_or(LevelFilter::WARN))
        .with_writer(std::io::stderr);
    if asked.is_some() {
        builder.init();
    } else {
        builder.without_time().with_target(false).init();
    }
}
