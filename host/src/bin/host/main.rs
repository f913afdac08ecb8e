//! `host`: the command-line shell over the hookhost library. It parses flags, builds requests,
//! calls the library and maps the result to an exit code: 0 when the command did what it was
//! asked (a run succeeded, records may still be rejected or errored), 1 when it could not,
//! 2 for bad usage, 3 when a replay ran but its outputs differ.
//!
//! `args` holds the raw flags; `print` renders results as text tables or JSON.

mod args;
mod print;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use hookhost::embed::{
    Batch, BatchOptions, BatchResult, Hookhost, RunState, Snapshot, SnapshotHook,
};
use hookhost::limits::{self, Ceilings, Limits};
use hookhost::provenance::{RunRecord, RunStatus};
use hookhost::registry::{PublishRequest, Registry, ReleaseLimits};
use hookhost::replay::{ReplayRequest, replay};
use hookhost::run::{Input, Progress, RunRequest};
use hookhost::{Host, HostConfig};

use crate::args::{
    Cli, Command, HookArg, HooksArgs, InspectArgs, LiveArgs, PublishArgs, ReleasesArgs, ReplayArgs,
    RunArgs, RunsArgs, ShowArgs,
};

/// A replay that ran but whose outputs differ from the original's.
const EXIT_REPLAY_DIFFERS: u8 = 3;

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let root = cli.root;
    let result = match cli.command {
        Command::Run(args) => run(&root, args),
        Command::Inspect(args) => inspect(&root, args),
        Command::Publish(args) => publish(&root, args),
        Command::Hooks(args) => hooks(&root, args),
        Command::Releases(args) => releases(&root, args),
        Command::Live(args) => live(&root, args),
        Command::Runs(args) => runs(&root, args),
        Command::Show(args) => show(&root, args),
        Command::Replay(args) => replay_run(&root, args),
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

fn run(root: &Path, args: RunArgs) -> Result<ExitCode> {
    let registry = if args.hooks.iter().any(|h| matches!(h, HookArg::File(_))) {
        Registry::open(root)?
    } else {
        open_existing(root)?
    };
    let host = Host::new(HostConfig {
        ceilings: Ceilings {
            memory_bytes: args.memory_ceiling,
            ..Ceilings::default()
        },
        code_cache: code_cache(root),
        ..HostConfig::default()
    })?;
    if args.hooks.len() > 1 {
        return run_set(host, registry, args);
    }
    let mut request = match &args.hooks[0] {
        HookArg::File(path) => {
            let hook = registry.load_file(&host, path)?;
            RunRequest::new(hook, input_of(&args.input), &args.out)
        }
        HookArg::Release(reference) => {
            // Resolved once: a `host live` during the run does not change what runs.
            let release = registry.resolve(reference)?;
            let hook = registry.load(&host, &release)?;
            RunRequest::for_release(hook, &release, input_of(&args.input), &args.out)
        }
    };
    request.limits = override_limits(request.limits, &args);
    request.files = args.files.clone();
    match args.config.as_slice() {
        [] => {}
        [config] => {
            let config = match config.split_once('=') {
                Some((name, json)) if Some(name) == hook_name(&args.hooks[0]).as_deref() => json,
                _ => config.as_str(),
            };
            request.config = Some(read_config(config)?);
        }
        _ => bail!("--config is given more than once for one hook"),
    }
    request.chunk_size = args.chunk_size;
    if let Some(jobs) = args.jobs {
        request.jobs = jobs;
    }
    install_ctrl_c(request.cancel.clone());
    let mut meter = ProgressLine::new();
    request.recorder = Some(Arc::new(registry));
    let record = hookhost::run::run_to_dir(request, &mut |p| meter.update(p))?;
    meter.finish();
    report(&record)
}

/// `host run A B …`: every hook over the same batch, through the embedding API.
fn run_set(host: Host, registry: Registry, args: RunArgs) -> Result<ExitCode> {
    let mut configs = args
        .config
        .iter()
        .map(|given| {
            let (name, config) = given.split_once('=').with_context(|| {
                format!("--config `{given}`: with several hooks, write NAME=JSON or NAME=@FILE")
            })?;
            Ok((name.to_owned(), read_config(config)?))
        })
        .collect::<Result<std::collections::HashMap<_, _>>>()?;
    // Every release in one registry read: a `host live` meanwhile cannot mix versions.
    let references: Vec<&str> = args
        .hooks
        .iter()
        .filter_map(|h| match h {
            HookArg::Release(reference) => Some(reference.as_str()),
            HookArg::File(_) => None,
        })
        .collect();
    let mut releases = registry.resolve_all(&references)?.into_iter();
    let mut hooks = Vec::with_capacity(args.hooks.len());
    for hook in &args.hooks {
        let mut entry = match hook {
            HookArg::Release(_) => {
                let release = releases.next().context("one release per reference")?;
                let component = registry.load(&host, &release)?;
                SnapshotHook::from_release(component, release)
            }
            HookArg::File(path) => {
                let name = hook_name(hook).expect("files have names");
                let component = registry.load_file(&host, path)?;
                SnapshotHook::new(name, component)
            }
        };
        entry.limits = override_limits(entry.limits, &args);
        if let Some(config) = configs.remove(&entry.name) {
            entry.config = Some(config);
        }
        hooks.push(entry);
    }
    if let Some(name) = configs.keys().next() {
        bail!("--config names `{name}`, which is not one of the hooks of this run");
    }
    let snapshot = Snapshot::new(hooks)?;
    let mut options = BatchOptions::default()
        .with_out(&args.out)
        .with_chunk_size(args.chunk_size);
    options.files = args.files.clone();
    let batch = match input_of(&args.input) {
        Input::File(path) => Batch::jsonl(path),
        Input::Stdin => Batch::stdin(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let hookhost = Hookhost::new(host, Some(registry), Hookhost::default_max_sandboxes());
    let result = runtime.block_on(async {
        let mut handle = hookhost.begin(&snapshot, batch, options).await?;
        install_ctrl_c(handle.cancel_flag());
        let started = Instant::now();
        let mut meter = ProgressLine::new();
        loop {
            let seen = handle.changed().await;
            meter.update(&Progress {
                counts: seen.records,
                bytes_read: seen.input_bytes,
                elapsed: started.elapsed(),
            });
            if seen.state.is_finished() {
                break;
            }
        }
        meter.finish();
        handle.wait().await.map_err(anyhow::Error::new)
    })?;
    report_set(&result)
}

/// The name a hook's outputs go under: a release's hook name, a file's stem.
fn hook_name(hook: &HookArg) -> Option<String> {
    match hook {
        HookArg::Release(reference) => {
            let name = reference
                .split_once('@')
                .map_or(reference.as_str(), |(n, _)| n);
            Some(name.to_owned())
        }
        HookArg::File(path) => Some(path.file_stem()?.to_string_lossy().into_owned()),
    }
}

fn report_set(result: &BatchResult) -> Result<ExitCode> {
    for hook in &result.hooks {
        let c = hook.run.records;
        let version = hook
            .run
            .hook
            .version
            .map(|v| format!(" v{v}"))
            .unwrap_or_default();
        println!(
            "{}{version}: run {}: {}: {} passed, {} rejected, {} errored",
            hook.name,
            hook.run.run_id,
            print::status(hook.run.status),
            c.passed,
            c.rejected,
            c.errored
        );
    }
    let c = result.records;
    println!(
        "batch {}: {} records: {} passed every hook, {} rejected, {} errored",
        result.batch_id, c.total, c.passed, c.rejected, c.errored
    );
    if let Some(dir) = &result.out_dir {
        println!("outputs: {}", dir.display());
    }
    match result.state {
        RunState::Succeeded => Ok(ExitCode::SUCCESS),
        RunState::Cancelled => bail!("batch {} was cancelled", result.batch_id),
        _ => {
            let why = result
                .hooks
                .iter()
                .find_map(|h| h.run.error.as_deref())
                .unwrap_or("unknown error");
            bail!("batch {} failed: {why}", result.batch_id)
        }
    }
}

fn input_of(input: &str) -> Input {
    match input {
        "-" => Input::Stdin,
        path => Input::File(path.into()),
    }
}

/// The limits to run with: the release's (or the defaults), with each flag given on top.
fn override_limits(base: Limits, args: &RunArgs) -> Limits {
    let mut limits = base;
    if let Some(fuel) = args.fuel {
        limits.fuel_per_record = fuel;
    }
    if let Some(memory) = args.memory {
        limits.memory_bytes = memory;
    }
    if let Some(retries) = args.max_oom_retries {
        limits.max_oom_retries = retries;
    }
    if let Some(timeout) = args.timeout {
        limits.timeout = timeout;
    }
    limits
}

/// `--config` text, or the contents of the file after `@`.
fn read_config(text: &str) -> Result<String> {
    Ok(match text.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading config file {path}"))?
        }
        None => text.to_owned(),
    })
}

fn report(record: &RunRecord) -> Result<ExitCode> {
    let c = record.records;
    let rows = record
        .outputs
        .get("features.jsonl")
        .map_or(0, |output| output.rows);
    println!(
        "run {}: {}: {} records: {} passed ({rows} feature rows), {} rejected, {} errored",
        record.run_id,
        print::status(record.status),
        c.total,
        c.passed,
        c.rejected,
        c.errored
    );
    if let (Some(name), Some(version)) = (&record.hook.name, record.hook.version) {
        println!("hook {name} v{version} {}", record.hook.digest);
    }
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

fn inspect(root: &Path, args: InspectArgs) -> Result<ExitCode> {
    let host = Host::new(HostConfig {
        code_cache: code_cache(root),
        ..HostConfig::default()
    })?;
    match &args.hook {
        HookArg::File(path) => {
            let hook = host.load_file(path)?;
            print::component(&hook, args.json)?;
        }
        HookArg::Release(reference) => {
            let registry = open_existing(root)?;
            let release = registry.resolve(reference)?;
            // Loading re-hashes the blob and checks it still implements the world.
            registry.load(&host, &release)?;
            print::release(&release, args.json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn publish(root: &Path, args: PublishArgs) -> Result<ExitCode> {
    // Nothing is created for a component refused here: the cache only if the root exists.
    let host = Host::new(HostConfig {
        max_component_bytes: args.max_component_size,
        code_cache: code_cache(root),
        ..HostConfig::default()
    })?;
    let bytes = host.read_component(&args.file)?;
    let registry = Registry::open(root)?;
    let request = PublishRequest {
        name: args.name,
        config: args.config.as_deref().map(read_config).transpose()?,
        limits: ReleaseLimits {
            fuel_per_record: args.fuel,
            memory_bytes: args.memory,
            timeout_ms: args.timeout.as_millis() as u64,
        },
        source_ref: args.source_ref,
        built_by: args.built_by,
    };
    let published = registry.publish(&host, &bytes, &args.file.display().to_string(), request)?;
    print::published(&published, args.json)?;
    Ok(ExitCode::SUCCESS)
}

fn hooks(root: &Path, args: HooksArgs) -> Result<ExitCode> {
    let registry = open_existing(root)?;
    print::hooks(&registry.hooks()?, args.json)?;
    Ok(ExitCode::SUCCESS)
}

fn releases(root: &Path, args: ReleasesArgs) -> Result<ExitCode> {
    let registry = open_existing(root)?;
    let releases = registry.releases(&args.name)?;
    let history = registry.live_history(&args.name)?;
    print::releases(&releases, &history, args.json)?;
    Ok(ExitCode::SUCCESS)
}

fn live(root: &Path, args: LiveArgs) -> Result<ExitCode> {
    let registry = open_existing(root)?;
    let moved = registry.set_live(&args.name, args.version)?;
    let release = registry.release(&args.name, Some(args.version))?;
    print::live(&release, moved, args.json)?;
    Ok(ExitCode::SUCCESS)
}

fn runs(root: &Path, args: RunsArgs) -> Result<ExitCode> {
    let registry = open_existing(root)?;
    if let Some(hook) = &args.hook {
        hookhost::registry::check_hook_name(hook)?;
    }
    print::runs(&registry.runs(args.hook.as_deref(), args.limit)?, args.json)?;
    Ok(ExitCode::SUCCESS)
}

fn show(root: &Path, args: ShowArgs) -> Result<ExitCode> {
    let registry = open_existing(root)?;
    print::run(&registry.run_record(&args.run_id)?, args.json)?;
    Ok(ExitCode::SUCCESS)
}

fn replay_run(root: &Path, args: ReplayArgs) -> Result<ExitCode> {
    let registry = open_existing(root)?;
    let stored = registry.run_record(&args.run_id)?;
    // The host needs room for the memory ceiling the run had.
    let host = Host::new(HostConfig {
        ceilings: Ceilings {
            memory_bytes: stored
                .record
                .limits
                .memory_ceiling_bytes
                .max(Ceilings::default().memory_bytes),
            ..Ceilings::default()
        },
        code_cache: code_cache(root),
        ..HostConfig::default()
    })?;
    let mut request = ReplayRequest::new(stored.record.run_id, &args.input);
    request.files = args.files;
    request.out = args.out;
    install_ctrl_c(request.cancel.clone());
    let mut meter = ProgressLine::new();
    let registry = Arc::new(registry);
    let report = replay(&registry, &host, request, &mut |p| meter.update(p))?;
    meter.finish();
    print::replay(&report, args.json)?;
    Ok(if report.identical() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REPLAY_DIFFERS)
    })
}

/// The compiled-code cache under the root, when the root exists (read-only commands never
/// create one).
fn code_cache(root: &Path) -> Option<std::path::PathBuf> {
    Registry::exists(root).then(|| root.join(hookhost::cache::CODE_CACHE_DIR))
}

/// Opens the registry for a command that only reads or moves what is there: a root that does
/// not exist is an error, not an empty registry created by mistake.
fn open_existing(root: &Path) -> Result<Registry> {
    Ok(Registry::open_existing(root)?)
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
