//! The raw command-line flags, as clap parses them, and their `build()` into resolved configs:
//! defaults from the library's named constants, hook arguments read by the library's rules.
//! `main` hands the resolved configs to the library.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use hookhost::component::DEFAULT_MAX_COMPONENT_BYTES;
use hookhost::hookset::{HookSetSpec, LimitOverrides};
use hookhost::limits;
use hookhost::limits::Ceilings;
use hookhost::registry::ReleaseLimits;
use hookhost::run::Input;
use hookhost::sink::{Features, ParquetOptions};

/// How many runs `host runs` lists unless told.
pub const DEFAULT_RUNS_LISTED: usize = 20;

const ABOUT: &str = "Run sandboxed WebAssembly hooks over batches of records";

const LONG_ABOUT: &str = "\
Run sandboxed WebAssembly hooks over batches of records.

A hook is a WebAssembly component (built with the hookhost SDK, or any language that targets
the component model and implements wit/hook.wit). It looks at each record of a JSONL batch and
returns typed feature rows, a rejection, or an error. Each call runs in a fresh sandbox with a
fuel budget, a memory cap (doubled and retried when the hook runs out) and a timeout; a record
that fails never costs the others their outcomes.

Hooks can be published to a registry as immutable, numbered releases with a movable live
pointer; every run is recorded there with its provenance, and can be replayed.

The workflow:
  host publish text_stats.wasm --name text_stats     # v1, live
  host run text_stats --input batch.jsonl --out out/  # runs the live release
  host publish text_stats.wasm --name text_stats     # a new build becomes v2, live
  host live text_stats 1                              # roll back
  host runs --hook text_stats                         # what ran, newest first
  host show RUN_ID                                    # one run's provenance
  host replay RUN_ID --input batch.jsonl              # same outputs again?

Set HOOKHOST_LOG=debug (or info, trace) to see what the host does.";

const RUN_AFTER_HELP: &str = "\
HOOK is a registered hook, `name` (its live release) or `name@3` (release 3), or a path to a
`.wasm` component (anything with a `.` or `/` in it, e.g. ./my_hook). A release runs with its
own config and limits; the flags below override them, within the host's maxima.

Input lines look like {\"id\": \"doc-1\", \"metadata\": {...}, \"size_hint_mb\": 1.5}; blank lines
are skipped; a line that is not a valid record becomes an `invalid_input` error naming its line.

OUT receives, only once complete: features.jsonl, rejections.jsonl, errors.jsonl, logs.txt and
run.json (the provenance record: digests, limits, counts, output hashes). With --format parquet
the feature rows go to features.parquet instead: one typed column per contract column (string,
int64, double, boolean, timestamp[us, UTC], date32, uuid, json, list<double>) after record_id,
run_id and ordinal, zstd-compressed, in row groups of bounded size; pyarrow, pandas and DuckDB
read it as it is. Rejections, errors and logs stay as they are. The run is also
recorded in the registry (see `host runs`), component files included: their bytes are kept in
the blob store so the run can be replayed.

With several hooks, each runs over every record (releases resolved once, in one registry read)
and OUT receives OUT/<hook>/ (the files above, one run each), OUT/passed.jsonl (the ids that
passed every hook, in input order) and OUT/batch.json. A component file's hook name is its file
name without `.wasm`. Limit flags apply to every hook; --config takes NAME=JSON per hook.

With --sink URL (the registry's own PostgreSQL database), feature rows go into the table
SCHEMA.<hook> (--sink-schema, by default hookhost_features) instead of features.jsonl, typed
from the contract, each row's run_id a foreign key to its run; the rows and the run records
commit together. run.json names the table in features_table. Rejections, errors and logs still
go to OUT.

Examples:
  host run text_stats --input batch.jsonl --out out/
  host run text_stats@2 --input batch.jsonl --out out/ --timeout 30s
  host run file_profile.wasm --input docs.jsonl --files docs/ --out out/
  host run require_fields.wasm --input batch.jsonl --config '{\"required\": [\"title\"]}' --out out/
  host run memory_hungry.wasm --input big.jsonl --memory 32MiB --max-oom-retries 3 --out out/
  host run text_stats --input batch.jsonl --out out/ --format parquet
  host run text_stats require_fields.wasm --input batch.jsonl \\
      --config 'require_fields={\"required\": [\"title\"]}' --out out/
  host --registry postgres://worker@db/hookhost run text_stats --input batch.jsonl --out out/ \\
      --sink postgres://worker@db/hookhost";

const PUBLISH_AFTER_HELP: &str = "\
The component is checked first: it must be a component implementing wit/hook.wit, with a
well-formed contract, under the size cap. Its contract is compared with the hook's:
  identical              accepted
  additive               new nullable columns only: accepted, the hook's contract grows
  destructive            a column removed or retyped, a nullability change, a new required
                         column, a renamed feature or changed cardinality: refused, every
                         change listed
Publishing a digest the hook already has prints the existing release and moves nothing; a new
digest becomes the next version and takes the live pointer (unless --no-live). The release
records who published it: this process's user and machine, `local:USER@HOST`.

Prints `NAME vN sha256:… created` or `NAME vN sha256:… existing`.

Examples:
  host publish target/wasm32-wasip2/release/text_stats.wasm --name text_stats \\
      --source-ref \"$(git rev-parse HEAD)\" --built-by ci
  host publish require_fields.wasm --name require_fields --config '{\"required\": [\"title\"]}' \\
      --fuel 100000000 --memory 16MiB --timeout 2s";

const RELEASES_AFTER_HELP: &str = "\
Each release shows who published it (PUBLISHED_BY): over the storage itself (a root or a
--registry URL) that is the operating-system user and machine, `local:USER@HOST`; through the
HTTP service, the verified token's issuer and subject, `token:ISSUER/SUBJECT`. BUILT_BY is what
the publisher said (--built-by), kept as given. Releases published before hookhost recorded it
show `-`.

The live pointer's history lists every move, publishes included: when, from and to, why
(`publish` or `live`), who moved it and the reason given with --reason.

--json prints {\"releases\": [...], \"live_history\": [...]}: each release with `live`,
`published_by` ({\"kind\": \"local\", \"user\", \"host\"} or {\"kind\": \"token\", \"issuer\", \"subject\",
\"token_id\"}, or null) and its other fields; each move with `moved_by` and `reason`.";

const LIVE_AFTER_HELP: &str = "\
With VERSION, moves the pointer there; releases and runs never change. The move is recorded in
the pointer's history with the time, who moved it (`local:USER@HOST`: this process's user and
machine) and the reason given with --reason (at most 1024 bytes). A pointer already on VERSION
does not move, and nothing is recorded.

--expect N makes the move conditional (compare-and-set): if the pointer is not on vN when the
move is made — someone moved it since you looked — nothing moves and the command fails, saying
where it is. Scripts that roll back use it so that two operators never undo each other.

Without VERSION, shows where the pointer is and every move it made, oldest first, with who,
why and when.

Examples:
  host live text_stats                                  # where it is, and its history
  host live text_stats 2 --reason \"v3 rejects every record\" --expect 3
  host live text_stats 3 --json";

const REPLAY_AFTER_HELP: &str = "\
The input must be the bytes the run read (its sha256 is checked first). The replay uses the
run's component (from the blob store), config, limits, memory ceiling and chunk size, and is
recorded as a run of its own, with `replay_of`. Outputs are compared by content digest, which
leaves out the run_id on each line.

Exit status: 0 when every output, the status and the counts are identical; 3 when something
differs (each difference is listed); 1 when the replay could not run.";

#[derive(Debug, Parser)]
#[command(name = "host", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// The registry root: component blobs and registry.db. Created when first needed.
    #[arg(long, global = true, value_name = "DIR", env = "HOOKHOST_HOME",
          default_value = hookhost::registry::DEFAULT_ROOT)]
    pub root: PathBuf,
    /// A shared registry: a PostgreSQL URL (`postgres://user@host/db`, a unix socket as
    /// `?host=/dir`). Releases, runs, batch claims and component bytes live there; --root then
    /// holds only this machine's caches. Without it, the registry is under --root.
    #[arg(long, global = true, value_name = "URL", env = "HOOKHOST_REGISTRY")]
    pub registry: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a hook over a JSONL batch and write its features, rejections, errors, logs and
    /// provenance.
    #[command(after_help = RUN_AFTER_HELP)]
    Run(RunArgs),
    /// Show a component's or a release's digest, settings and feature contract.
    Inspect(InspectArgs),
    /// Publish a component as the next release of a hook and make it live.
    #[command(after_help = PUBLISH_AFTER_HELP)]
    Publish(PublishArgs),
    /// List the registered hooks.
    Hooks(HooksArgs),
    /// List a hook's releases (who published each) and its live pointer's history.
    #[command(after_help = RELEASES_AFTER_HELP)]
    Releases(ReleasesArgs),
    /// Point a hook's live pointer at one of its releases (a rollback is a move back), or
    /// show where it is and every move it made, with who and why.
    #[command(after_help = LIVE_AFTER_HELP)]
    Live(LiveArgs),
    /// List recorded runs, newest first.
    Runs(RunsArgs),
    /// Show one run's full provenance record.
    Show(ShowArgs),
    /// Run a recorded run again over the same input and check the outputs are identical.
    #[command(after_help = REPLAY_AFTER_HELP)]
    Replay(ReplayArgs),
    /// Make a new hook project (Rust or Python) that builds and runs as it is.
    #[command(after_help = NEW_AFTER_HELP)]
    New(NewArgs),
    /// Build a hook project (Rust or Python) into a component, with this host's interface.
    #[command(after_help = BUILD_AFTER_HELP)]
    Build(BuildArgs),
}

const NEW_AFTER_HELP: &str = "\
From nothing to a first run is three commands:
  host new word_stats                      # or --lang python
  host build word_stats                    # prints the component's path and digest
  host run word_stats/word_stats.wasm --input word_stats/sample.jsonl --out out/

A Rust project is its own cargo workspace (it builds inside another one, e.g. a clone of
hookhost, as well as anywhere else); a Python project is an app.py. Either gets a sample
batch. What the host supplies (the WIT and the SDK) lives in the project's .hookhost/ and is
written again by every `host build`, so it always matches the host that builds it.";

const BUILD_AFTER_HELP: &str = "\
Rust projects (a Cargo.toml) build with `cargo build --release --target wasm32-wasip2`
(`rustup target add wasm32-wasip2` once); Python projects (an app.py) with componentize-py
0.25.1 from a virtual environment, created with it when missing. A project that does not build
shows the compiler's own messages.";

pub use hookhost::hookset::HookArg;

/// A count that must be at least 1 (records per call, jobs).
fn parse_chunk_size(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("`{text}` is not a positive number: {e}")),
    }
}

fn parse_hook(text: &str) -> Result<HookArg, String> {
    HookArg::parse(text).map_err(|e| match e {
        hookhost::Error::InvalidHookName { .. } if !text.is_empty() => {
            format!("{e} (for a file, write ./{text})")
        }
        other => other.to_string(),
    })
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The hook: `name`, `name@VERSION`, or a path to a `.wasm` component. Give several to
    /// run them all over the same batch.
    #[arg(value_parser = parse_hook, required = true, num_args = 1.., value_name = "HOOK")]
    pub hooks: Vec<HookArg>,
    /// The JSONL batch, or `-` for standard input.
    #[arg(long, short, value_name = "FILE")]
    pub input: String,
    /// The output directory; it must not exist yet (or be empty).
    #[arg(long, short, value_name = "DIR")]
    pub out: PathBuf,
    /// Directory of record files: record ID sees the files under DIR/ID/, read-only.
    #[arg(long, value_name = "DIR")]
    pub files: Option<PathBuf>,
    /// The hook's config: JSON text, or @FILE to read it from a file. By default the
    /// release's, or {} for a file. With several hooks, NAME=JSON or NAME=@FILE, once per
    /// hook that needs one.
    #[arg(long, value_name = "JSON|@FILE")]
    pub config: Vec<String>,
    /// Fuel (about one unit per WebAssembly instruction) per record. By default the
    /// release's, or 1000000000.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub fuel: Option<u64>,
    /// Starting memory cap of the sandbox, e.g. 32MiB; doubled on out-of-memory failures.
    /// By default the release's, or 64MiB.
    #[arg(long, value_name = "SIZE", value_parser = limits::parse_size)]
    pub memory: Option<u64>,
    /// The most memory the cap may double to. By default 4GiB.
    #[arg(long, value_name = "SIZE", value_parser = limits::parse_size)]
    pub memory_ceiling: Option<u64>,
    /// How many times the memory cap may double in this run. By default 3.
    #[arg(long, value_name = "N")]
    pub max_oom_retries: Option<u32>,
    /// Wall-clock time per record, e.g. 500ms, 10s, 2m. By default the release's, or 10s.
    #[arg(long, value_name = "DUR", value_parser = limits::parse_duration)]
    pub timeout: Option<Duration>,
    /// Records per call into the sandbox. By default 16, or 256 when a hook is a heavy
    /// component (an initial memory of 8 MiB or more, e.g. a Python interpreter), whose sandbox
    /// costs about a millisecond to start.
    #[arg(long, value_name = "N", value_parser = parse_chunk_size)]
    pub chunk_size: Option<usize>,
    /// Chunks run at once, each on its own thread; the outputs are the same for any N. By
    /// default the number of cores. With several hooks, every hook runs over every chunk.
    #[arg(long, short = 'j', value_name = "N", value_parser = parse_chunk_size)]
    pub jobs: Option<usize>,
    /// Write feature rows into PostgreSQL tables, one per hook, instead of features.jsonl:
    /// URL must name the registry's own database (--registry), where each row's run_id
    /// references its run and rows commit with their run records.
    #[arg(long, value_name = "URL", conflicts_with = "format")]
    pub sink: Option<String>,
    /// The schema of the feature tables. By default hookhost_features.
    #[arg(long, value_name = "NAME", requires = "sink")]
    pub sink_schema: Option<String>,
    /// The feature file's format: jsonl (features.jsonl, a JSON line per row) or parquet
    /// (features.parquet, typed columns from the hook's contract). Either is listed in
    /// run.json with its size, sha256 and rows, and replays compare their content alike.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
}

/// `--format`: the feature file a run writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// features.jsonl: {"id", "run_id", "features": {column: value, …}} per row.
    Jsonl,
    /// features.parquet: record_id, run_id, ordinal, then the contract's typed columns.
    Parquet,
}

impl Format {
    /// The library's sink for this format, with its defaults.
    pub fn features(self) -> Features {
        match self {
            Format::Jsonl => Features::Jsonl,
            Format::Parquet => Features::Parquet(ParquetOptions::default()),
        }
    }
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The hook: `name`, `name@VERSION`, or a path to a `.wasm` component.
    #[arg(value_parser = parse_hook)]
    pub hook: HookArg,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The component to publish.
    pub file: PathBuf,
    /// The hook's name: a lowercase letter, then up to 39 lowercase letters, digits or `_`.
    #[arg(long)]
    pub name: String,
    /// The release's config: JSON text, or @FILE to read it from a file. By default {}.
    #[arg(long, value_name = "JSON|@FILE")]
    pub config: Option<String>,
    /// Fuel per record for the release's runs.
    #[arg(long, value_name = "N", value_parser = parse_count,
          default_value_t = limits::DEFAULT_FUEL_PER_RECORD)]
    pub fuel: u64,
    /// Starting memory cap for the release's runs. By default 64MiB.
    #[arg(long, value_name = "SIZE", value_parser = limits::parse_size)]
    pub memory: Option<u64>,
    /// Wall-clock time per record for the release's runs. By default 10s.
    #[arg(long, value_name = "DUR", value_parser = limits::parse_duration)]
    pub timeout: Option<Duration>,
    /// Where the component was built from: a commit, a tag.
    #[arg(long, value_name = "REF")]
    pub source_ref: Option<String>,
    /// Who or what built it, kept as given (who published it is recorded apart, from the
    /// operating system: `local:USER@HOST`).
    #[arg(long, value_name = "WHO")]
    pub built_by: Option<String>,
    /// Record the release without moving the live pointer to it (a hook's first release is
    /// live all the same); `host live` moves it later.
    #[arg(long)]
    pub no_live: bool,
    /// The largest component accepted.
    #[arg(long, value_name = "SIZE", value_parser = limits::parse_size,
          default_value_t = DEFAULT_MAX_COMPONENT_BYTES)]
    pub max_component_size: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HooksArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReleasesArgs {
    /// The hook.
    pub name: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// The hook.
    pub name: String,
    /// The release to make live (`3` or `v3`). Without it, the pointer and its history are
    /// shown.
    #[arg(value_parser = parse_version)]
    pub version: Option<u32>,
    /// Why the pointer moves, recorded with the move (at most 1024 bytes).
    #[arg(long, value_name = "TEXT", requires = "version")]
    pub reason: Option<String>,
    /// Move only if the pointer is on this release now; otherwise move nothing and fail.
    #[arg(long, value_name = "N", value_parser = parse_version, requires = "version")]
    pub expect: Option<u32>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only the runs of this hook.
    #[arg(long, value_name = "NAME")]
    pub hook: Option<String>,
    /// At most this many runs.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RUNS_LISTED)]
    pub limit: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run's id, or a unique prefix of it (at least 4 characters).
    pub run_id: String,
    /// Print JSON (the record as in run.json, with the config and output directory).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The run's id, or a unique prefix of it (at least 4 characters).
    pub run_id: String,
    /// The input the run read.
    #[arg(long, short, value_name = "FILE")]
    pub input: PathBuf,
    /// Directory of record files, if the run had one.
    #[arg(long, value_name = "DIR")]
    pub files: Option<PathBuf>,
    /// Keep the replay's output here; by default it is written to a temporary directory and
    /// removed once compared.
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_count(text: &str) -> Result<u64, String> {
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    match digits.parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("expected a whole number: {e}")),
    }
}

fn parse_version(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix('v').unwrap_or(text);
    match digits.parse::<u32>() {
        Ok(0) => Err("versions start at 1".into()),
        Ok(n) if digits.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!(
            "expected a release number such as 3 or v3, got `{text}`"
        )),
    }
}

/// A `host run` as the library takes it.
#[derive(Debug)]
pub struct RunConfig {
    /// The hooks, their configs and limit overrides.
    pub hooks: HookSetSpec,
    /// The batch.
    pub input: Input,
    /// The output directory.
    pub out: PathBuf,
    /// The records' files.
    pub files: Option<PathBuf>,
    /// Records per call; `None`: the hooks' own default.
    pub chunk_size: Option<usize>,
    /// Chunks at once.
    pub jobs: usize,
    /// The host-wide ceilings (the memory ceiling as given).
    pub ceilings: Ceilings,
    /// Where the feature rows go in the run directory (--format).
    pub features: Features,
    /// Feature tables instead of features.jsonl: the database URL and the schema.
    pub sink: Option<SinkConfig>,
}

/// Where `--sink` sends feature rows.
#[derive(Debug)]
pub struct SinkConfig {
    /// The registry's own database, as given.
    pub url: String,
    /// The tables' schema.
    pub schema: String,
}

/// Flags that cannot make a run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The memory ceiling is below the starting cap asked for.
    #[error(
        "--memory {memory} is above --memory-ceiling {ceiling}: the cap can only grow up to the \
         ceiling"
    )]
    MemoryAboveCeiling {
        /// The starting cap.
        memory: String,
        /// The ceiling.
        ceiling: String,
    },
}

impl RunArgs {
    /// The resolved config: every default from the library's constants.
    pub fn build(self) -> Result<RunConfig, ConfigError> {
        let ceilings = Ceilings {
            memory_bytes: self
                .memory_ceiling
                .unwrap_or(limits::DEFAULT_MEMORY_CEILING_BYTES),
            ..Ceilings::default()
        };
        if let (Some(memory), Some(ceiling)) = (self.memory, self.memory_ceiling)
            && memory > ceiling
        {
            return Err(ConfigError::MemoryAboveCeiling {
                memory: limits::format_size(memory),
                ceiling: limits::format_size(ceiling),
            });
        }
        let input = match self.input.as_str() {
            "-" => Input::Stdin,
            path => Input::File(path.into()),
        };
        Ok(RunConfig {
            hooks: HookSetSpec {
                hooks: self.hooks,
                configs: self.config,
                overrides: LimitOverrides {
                    fuel_per_record: self.fuel,
                    memory_bytes: self.memory,
                    max_oom_retries: self.max_oom_retries,
                    timeout: self.timeout,
                },
                memory_ceiling: None,
            },
            input,
            out: self.out,
            files: self.files,
            chunk_size: self.chunk_size,
            jobs: self.jobs.unwrap_or_else(hookhost::exec::default_jobs),
            ceilings,
            sink: self.sink.map(|url| SinkConfig {
                url,
                schema: self
                    .sink_schema
                    .unwrap_or_else(|| hookhost::registry::DEFAULT_FEATURE_SCHEMA.to_owned()),
            }),
            features: self.format.features(),
        })
    }
}

impl PublishArgs {
    /// The release's limits: each flag given, else the library's default.
    pub fn limits(&self) -> ReleaseLimits {
        let defaults = ReleaseLimits::default();
        ReleaseLimits {
            fuel_per_record: self.fuel,
            memory_bytes: self.memory.unwrap_or(defaults.memory_bytes),
            timeout_ms: self
                .timeout
                .map_or(defaults.timeout_ms, |t| t.as_millis() as u64),
        }
    }
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The hook's name (a lowercase letter, then lowercase letters, digits or `_`); also the
    /// project's directory unless --dir says otherwise.
    pub name: String,
    /// The project's language.
    #[arg(long, value_name = "LANG", default_value = "rust",
          value_parser = ["rust", "python"])]
    pub lang: String,
    /// Where to make it. By default ./NAME.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The project's directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Where the component goes. By default `DIR/<dir name>.wasm`.
    #[arg(long, short, value_name = "FILE.wasm")]
    pub out: Option<PathBuf>,
    /// The virtual environment with componentize-py for Python projects; created when it has
    /// none. By default DIR/.hookhost/venv.
    #[arg(long, value_name = "DIR")]
    pub python_venv: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
