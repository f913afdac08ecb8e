//! `host`: the command-line shell over the hookhost library. It parses flags, builds requests,
//! calls the library and maps the result to an exit code: 0 when the command did what it was
//! asked (a run succeeded, records may still be rejected or errored), 1 when it could not,
//! 2 for bad usage, 3 when a replay ran but its outputs differ.
//!
//! `args` holds the raw flags; `print` renders results as text tables or JSON.

mod args;
mod print;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use hookhost::exec::{BatchRequest, BatchResult, BatchState, Layout, Progress, execute};
use hookhost::hookset::read_config;
use hookhost::limits::{self, Ceilings};
use hookhost::output::{FEATURES_FILE, PARQUET_FILE};
use hookhost::provenance::{RunRecord, RunStatus};
use hookhost::registry::{Actor, LiveRequest, PublishRequest, Registry, RegistryLocation};
use hookhost::replay::{ReplayRequest, replay};
use hookhost::scaffold;
use hookhost::sink::Features;
use hookhost::{Host, HostConfig};

use crate::args::{
    BuildArgs, Cli, Command, ConfigError, HookArg, HooksArgs, InspectArgs, LiveArgs, NewArgs,
    PublishArgs, ReleasesArgs, ReplayArgs, RunArgs, RunsArgs, ShowArgs,
};

/// Flags that cannot make a command (as clap's own usage errors).
const EXIT_USAGE: u8 = 2;
/// A replay that ran but whose outputs differ from the original's.
const EXIT_REPLAY_DIFFERS: u8 = 3;

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let place = match RegistryLocation::parse(cli.registry.as_deref()) {
        Ok(location) => Place {
            root: cli.root,
            location,
        },
        Err(error) => {
            eprintln!("host: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let root = &place;
    let result = match cli.command {
        Command::Run(args) => run(root, args),
        Command::Inspect(args) => inspect(root, args),
        Command::Publish(args) => publish(root, args),
        Command::Hooks(args) => hooks(root, args),
        Command::Releases(args) => releases(root, args),
        Command::Live(args) => live(root, args),
        Command::Runs(args) => runs(root, args),
        Command::Show(args) => show(root, args),
        Command::Replay(args) => replay_run(root, args),
        Command::New(args) => new_project(args),
        Command::Build(args) => build_project(args),
    };
    match result {
        Ok(code) => code,
        Err(error) if error.downcast_ref::<ConfigError>().is_some() => {
            eprintln!("host: {error}");
            ExitCode::from(EXIT_USAGE)
        }
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

/// `host run HOOK…`: one hook or several, through the one engine.
fn run(root: &Place, args: RunArgs) -> Result<ExitCode> {
    let config = args.build()?;
    let registry = Arc::new(config.hooks.open_registry(&root.location, &root.root)?);
    let host = Host::new(HostConfig {
        ceilings: config.ceilings,
        code_cache: root.code_cache(),
        ..HostConfig::default()
    })?;
    let plans = config.hooks.resolve(&registry, &host)?;
    let layout = match plans.len() {
        1 => Layout::Run(config.out.clone()),
        _ => Layout::Batch(config.out.clone()),
    };
    // Checked before the input is opened: a sink that cannot be is refused before anything
    // runs.
    let features = match &config.sink {
        Some(sink) => Features::Tables(registry.feature_tables_at(&sink.url, &sink.schema)?),
        None => config.features.clone(),
    };
    let mut source = config.input.open(config.files.as_deref())?;
    let mut request = BatchRequest::new(plans, layout);
    request.features = features;
    request.chunk_size = config.chunk_size;
    request.jobs = config.jobs;
    request.recorder = Some(registry);
    install_ctrl_c(request.cancel.clone());
    let mut meter = ProgressLine::new();
    let executed = execute(request, &mut source, &mut |p| meter.update(p))?;
    meter.finish();
    match executed.result.hooks.as_slice() {
        [one] => report(&one.run),
        _ => report_set(&executed.result),
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
            hook.name, hook.run.run_id, hook.run.status, c.passed, c.rejected, c.errored
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
        BatchState::Succeeded => Ok(ExitCode::SUCCESS),
        BatchState::Cancelled => bail!("batch {} was cancelled", result.batch_id),
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

fn report(record: &RunRecord) -> Result<ExitCode> {
    let c = record.records;
    let rows = [FEATURES_FILE, PARQUET_FILE]
        .iter()
        .find_map(|name| record.outputs.get(*name))
        .map(|output| output.rows)
        .or(record.features_table.as_ref().map(|table| table.rows))
        .unwrap_or(0);
    println!(
        "run {}: {}: {} records: {} passed ({rows} feature rows), {} rejected, {} errored",
        record.run_id, record.status, c.total, c.passed, c.rejected, c.errored
    );
    if let (Some(name), Some(version)) = (&record.hook.name, record.hook.version) {
        println!("hook {name} v{version} {}", record.hook.digest);
    }
    if let Some(table) = &record.features_table {
        println!("feature rows in table {}.{}", table.schema, table.table);
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

fn inspect(root: &Place, args: InspectArgs) -> Result<ExitCode> {
    let host = Host::new(HostConfig {
        code_cache: root.code_cache(),
        ..HostConfig::default()
    })?;
    match &args.hook {
        HookArg::File(path) => {
            let hook = host.load_file(path)?;
            print::component(&hook, args.json)?;
        }
        HookArg::Release(reference) => {
            let registry = root.open_existing()?;
            let release = registry.resolve(reference)?;
            // Loading re-hashes the blob and checks it still implements the world.
            registry.load(&host, &release)?;
            print::release(&release, args.json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn publish(root: &Place, args: PublishArgs) -> Result<ExitCode> {
    // Nothing is created for a component refused here: the cache only if the root exists.
    let host = Host::new(HostConfig {
        max_component_bytes: args.max_component_size,
        code_cache: root.code_cache(),
        ..HostConfig::default()
    })?;
    let bytes = host.read_component(&args.file)?;
    let registry = root.open()?;
    let limits = args.limits();
    let request = PublishRequest {
        name: args.name,
        config: args.config.as_deref().map(read_config).transpose()?,
        limits,
        source_ref: args.source_ref,
        built_by: args.built_by,
        make_live: !args.no_live,
        actor: Actor::local(),
    };
    let published = registry.publish(&host, &bytes, &args.file.display().to_string(), request)?;
    print::published(&published, args.json)?;
    Ok(ExitCode::SUCCESS)
}

fn hooks(root: &Place, args: HooksArgs) -> Result<ExitCode> {
    let registry = root.open_existing()?;
    print::hooks(&registry.hooks()?, args.json)?;
    Ok(ExitCode::SUCCESS)
}

fn releases(root: &Place, args: ReleasesArgs) -> Result<ExitCode> {
    let registry = root.open_existing()?;
    print::releases(&registry.release_history(&args.name)?, args.json)?;
    Ok(ExitCode::SUCCESS)
}

fn live(root: &Place, args: LiveArgs) -> Result<ExitCode> {
    let registry = root.open_existing()?;
    let Some(version) = args.version else {
        print::live_history(&registry.live_history(&args.name)?, args.json)?;
        return Ok(ExitCode::SUCCESS);
    };
    let request = LiveRequest {
        expected_live: args.expect,
        reason: args.reason,
        actor: Actor::local(),
    };
    print::live(&registry.set_live(&args.name, version, request)?, args.json)?;
    Ok(ExitCode::SUCCESS)
}

fn runs(root: &Place, args: RunsArgs) -> Result<ExitCode> {
    let registry = root.open_existing()?;
    if let Some(hook) = &args.hook {
        hookhost::registry::check_hook_name(hook)?;
    }
    print::runs(&registry.runs(args.hook.as_deref(), args.limit)?, args.json)?;
    Ok(ExitCode::SUCCESS)
}

fn show(root: &Place, args: ShowArgs) -> Result<ExitCode> {
    let registry = root.open_existing()?;
    print::run(&registry.run_record(&args.run_id)?, args.json)?;
    Ok(ExitCode::SUCCESS)
}

fn replay_run(root: &Place, args: ReplayArgs) -> Result<ExitCode> {
    let registry = root.open_existing()?;
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
        code_cache: root.code_cache(),
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

fn new_project(args: NewArgs) -> Result<ExitCode> {
    let language = scaffold::Language::parse(&args.lang)?;
    let dir = args.dir.unwrap_or_else(|| args.name.clone().into());
    let written = scaffold::new_project(&dir, &args.name, language)?;
    println!("created {} ({})", dir.display(), args.lang);
    for path in &written {
        println!("  {}", path.display());
    }
    println!(
        "next: host build {0} && host run {0}/{1}.wasm --input {0}/sample.jsonl --out out",
        dir.display(),
        dir.file_name()
            .map(|n| n.to_string_lossy().replace('-', "_"))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

fn build_project(args: BuildArgs) -> Result<ExitCode> {
    let options = scaffold::BuildOptions {
        out: args.out,
        python_venv: args.python_venv,
        ..scaffold::BuildOptions::default()
    };
    let built = scaffold::build_project(&args.dir, &options)?;
    print::built(&built, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Where the registry is (`--registry`, else the local root) and this machine's root.
struct Place {
    root: PathBuf,
    location: RegistryLocation,
}

impl Place {
    /// The registry, created if needed.
    fn open(&self) -> Result<Registry, hookhost::Error> {
        Registry::open_at(&self.location, &self.root)
    }

    /// The registry, which must exist (a local root is never created for a read).
    fn open_existing(&self) -> Result<Registry, hookhost::Error> {
        Registry::open_existing_at(&self.location, &self.root)
    }

    /// The compiled-code cache, by the library's rule ([`RegistryLocation::code_cache`]).
    fn code_cache(&self) -> Option<PathBuf> {
        self.location.code_cache(&self.root)
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
