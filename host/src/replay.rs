//! Replay: run a recorded run again and check that it gives the same outputs.
//!
//! Same component (by digest, from the blob store), same config, limits, memory ceiling,
//! chunk size and log cap, same input (checked by its sha256 before anything runs). Because
//! the sandbox has fixed clocks and seeded randomness, a deterministic hook gives outputs
//! with identical content digests ([`OutputFile::content_sha256`], which leaves out the
//! `run_id` each line carries). The replay is itself a run, recorded with `replay_of`.
//!
//! Feature rows are compared by their content digest whatever sink holds them: a run
//! recorded with `features.jsonl`, `features.parquet` or a feature table
//! ([`RunRecord::features_table`]) has the digest of its rows rendered as `features.jsonl`
//! renders them ([`sink::content_line`](crate::sink::content_line)). A replay of a Parquet
//! run writes Parquet; of any other run, JSONL (never rows into a feature table).
//!
//! A record's files are not part of the input digest: a replay with `--files` reads them as
//! they are now.
//!
//! [`OutputFile::content_sha256`]: crate::provenance::OutputFile::content_sha256

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::component::Host;
use crate::digest::{hex, sha256_digest};
use crate::error::Error;
use crate::limits::Limits;
use crate::output::{FEATURES_FILE, PARQUET_FILE};
use crate::provenance::{RunRecord, RunStatus};
use crate::registry::Registry;
use crate::run::{Input, Progress, RunRequest};
use crate::runner::DEFAULT_MAX_LOG_BYTES;
use crate::sink::{Features, ParquetOptions};

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    /// The run (its id, or a unique prefix of at least 4 characters).
    pub run_id: String,
    /// The input file; must have the sha256 the run recorded.
    pub input: PathBuf,
    /// The files directory, if the run had one.
    pub files: Option<PathBuf>,
    /// Where to keep the replay's output; when `None` it is written to a temporary
    /// directory and removed after the comparison.
    pub out: Option<PathBuf>,
    /// Set to stop the replay.
    pub cancel: Arc<AtomicBool>,
}

impl ReplayRequest {
    /// A replay of `run_id` over `input`, output not kept.
    pub fn new(run_id: impl Into<String>, input: impl Into<PathBuf>) -> Self {
        ReplayRequest {
            run_id: run_id.into(),
            input: input.into(),
            files: None,
            out: None,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// One way the replay differs from the original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// What differs: an output file's name, `status`, or `records`.
    pub what: String,
    /// The original's value (a content digest with its row count, a status, counts).
    pub original: String,
    /// The replay's value.
    pub replay: String,
}

/// What a replay found.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// The run replayed, as recorded.
    pub original: RunRecord,
    /// The replay's own provenance record.
    pub replay: RunRecord,
    /// Everything that differs; empty when the replay is identical.
    pub differences: Vec<Difference>,
    /// Where the replay's output was kept, if it was.
    pub out_dir: Option<PathBuf>,
}

impl ReplayReport {
    /// Whether every output's content, the status and the counts are the same.
    pub fn identical(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Replays a recorded run on `host` and compares the outputs.
///
/// Fails before running anything if the run is unknown, its component is missing or altered
/// in the blob store, its recorded config does not match its digest, or `input` is not the
/// input it read ([`Error::ReplayInputMismatch`]).
///
/// ```no_run
/// use hookhost::{Host, HostConfig};
/// use hookhost::registry::Registry;
/// use hookhost::replay::{replay, ReplayRequest};
///
/// let host = Host::new(HostConfig::default())?;
/// let registry = std::sync::Arc::new(Registry::open(".hookhost")?);
/// let report = replay(&registry, &host, ReplayRequest::new("0193a1b2", "batch.jsonl"),
///     &mut |_| {})?;
/// for difference in &report.differences {
///     println!("{} differs: {} vs {}", difference.what, difference.original, difference.replay);
/// }
/// # Ok::<(), hookhost::Error>(())
/// ```
pub fn replay(
    registry: &Arc<Registry>,
    host: &Host,
    request: ReplayRequest,
    progress: &mut dyn FnMut(&Progress),
) -> Result<ReplayReport, Error> {
    let stored = registry.run_record(&request.run_id)?;
    let original = stored.record;
    let actual = file_sha256(&request.input)?;
    if actual != original.input.sha256 {
        return Err(Error::ReplayInputMismatch {
            run_id: original.run_id,
            path: request.input,
            expected: original.input.sha256,
            actual,
        });
    }
    if sha256_digest(stored.config.as_bytes()) != original.config_digest {
        return Err(Error::InvalidConfig(format!(
            "the config recorded for run {} does not match its digest {}",
            original.run_id, original.config_digest
        )));
    }
    let origin = match (&original.hook.name, original.hook.version) {
        (Some(name), Some(version)) => format!("{name} v{version} ({})", original.hook.digest),
        _ => original.hook.digest.clone(),
    };
    let hook = registry.load_digest(host, &original.hook.digest, &origin)?;
    if hook.contract().digest() != original.contract_digest {
        return Err(Error::InvalidComponent {
            origin,
            reason: format!(
                "its contract is {}, but run {} recorded {}",
                hook.contract().digest(),
                original.run_id,
                original.contract_digest
            ),
        });
    }

    let temp;
    let (out, keep) = match &request.out {
        Some(dir) => (dir.clone(), true),
        None => {
            temp = tempfile::Builder::new()
                .prefix("hookhost-replay-")
                .tempdir()
                .map_err(|e| Error::io(std::env::temp_dir(), e))?;
            (temp.path().join("out"), false)
        }
    };
    let recorded = original.limits;
    let mut run = RunRequest::new(hook, Input::File(request.input.clone()), &out);
    run.release = original.hook.name.clone().zip(original.hook.version);
    run.files = request.files.clone();
    run.config = Some(stored.config);
    run.limits = Limits::default()
        .with_fuel_per_record(recorded.fuel_per_record)
        .with_memory_bytes(recorded.memory_bytes)
        .with_max_oom_retries(recorded.max_oom_retries)
        .with_timeout(Duration::from_millis(recorded.timeout_ms));
    run.memory_ceiling = Some(recorded.memory_ceiling_bytes);
    run.chunk_size = Some(original.chunk_size.max(1));
    run.max_log_bytes = match recorded.max_log_bytes {
        0 => DEFAULT_MAX_LOG_BYTES,
        n => n,
    };
    run.cancel = request.cancel.clone();
    run.replay_of = Some(original.run_id.clone());
    run.recorder = Some(registry.clone());
    run.record_out_dir = keep;
    run.features = replay_features(&original);
    let replayed = crate::run::run_to_dir(run, progress)?;
    let differences = compare(&original, &replayed);
    Ok(ReplayReport {
        original,
        replay: replayed,
        differences,
        out_dir: keep.then_some(out),
    })
}

/// Everything that differs between two records' outcomes.
pub fn compare(original: &RunRecord, replay: &RunRecord) -> Vec<Difference> {
    let mut differences = Vec::new();
    let status = |s: RunStatus| {
        serde_json::to_value(s)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    if original.status != replay.status {
        differences.push(Difference {
            what: "status".into(),
            original: status(original.status),
            replay: status(replay.status),
        });
    }
    if original.records != replay.records {
        let counts = |r: &RunRecord| {
            let c = r.records;
            format!(
                "{} total, {} passed, {} rejected, {} errored",
                c.total, c.passed, c.rejected, c.errored
            )
        };
        differences.push(Difference {
            what: "records".into(),
            original: counts(original),
            replay: counts(replay),
        });
    }
    let (was, now) = (features_of(original), features_of(replay));
    if was.as_ref().map(|f| &f.content) != now.as_ref().map(|f| &f.content) {
        let sinks_differ = was.as_ref().map(|f| &f.place) != now.as_ref().map(|f| &f.place);
        let describe = |features: &Option<FeatureContent>| match features {
            Some(f) if sinks_differ => {
                format!("sha256:{} ({} rows, in {})", f.content, f.rows, f.place)
            }
            Some(f) => format!("sha256:{} ({} lines)", f.content, f.rows),
            None => "absent".to_owned(),
        };
        differences.push(Difference {
            what: was
                .as_ref()
                .or(now.as_ref())
                .map(|f| f.place.clone())
                .unwrap_or_default(),
            original: describe(&was),
            replay: describe(&now),
        });
    }
    let names: std::collections::BTreeSet<&String> = original
        .outputs
        .keys()
        .chain(replay.outputs.keys())
        .filter(|name| !FEATURE_FILES.contains(&name.as_str()))
        .collect();
    for name in names {
        let describe = |r: &RunRecord| match r.outputs.get(name) {
            Some(file) => format!("sha256:{} ({} lines)", file.content_sha256, file.rows),
            None => "absent".to_owned(),
        };
        let content = |r: &RunRecord| r.outputs.get(name).map(|f| f.content_sha256.clone());
        if content(original) != content(replay) {
            differences.push(Difference {
                what: name.clone(),
                original: describe(original),
                replay: describe(replay),
            });
        }
    }
    differences
}

/// The files a feature sink writes in a run directory.
const FEATURE_FILES: [&str; 2] = [FEATURES_FILE, PARQUET_FILE];

/// Where a run's feature rows went and their content digest, whatever the sink.
#[derive(Debug, PartialEq, Eq)]
struct FeatureContent {
    /// `features.jsonl`, `features.parquet`, or `table <schema>.<table>`.
    place: String,
    content: String,
    rows: u64,
}

/// The feature content of a run: its feature file's, or its feature table's.
fn features_of(record: &RunRecord) -> Option<FeatureContent> {
    if let Some(table) = &record.features_table {
        return Some(FeatureContent {
            place: format!("table {}.{}", table.schema, table.table),
            content: table.content_sha256.clone(),
            rows: table.rows,
        });
    }
    FEATURE_FILES.iter().find_map(|name| {
        record.outputs.get(*name).map(|file| FeatureContent {
            place: (*name).to_owned(),
            content: file.content_sha256.clone(),
            rows: file.rows,
        })
    })
}

/// The sink a replay of `original` writes to: Parquet for a Parquet run, else JSONL (a run
/// that wrote a feature table is replayed into `features.jsonl`, so the replay adds no rows
/// to the table; the content digests compare all the same).
fn replay_features(original: &RunRecord) -> Features {
    if original.outputs.contains_key(PARQUET_FILE) {
        Features::Parquet(ParquetOptions::default())
    } else {
        Features::Jsonl
    }
}

fn file_sha256(path: &Path) -> Result<String, Error> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::{OutputFile, TableOutput, sample_record};

    fn file(content: &str, rows: u64) -> OutputFile {
        OutputFile {
            sha256: format!("bytes-of-{content}"),
            content_sha256: content.into(),
            bytes: 100,
            rows,
        }
    }

    /// A run whose rows have content digest `content`, written to `sink`; its other outputs
    /// the same in every run.
    fn run_in(sink: &str, content: &str) -> RunRecord {
        let mut record = sample_record("0193");
        for name in ["rejections.jsonl", "errors.jsonl", "logs.txt"] {
            record.outputs.insert(name.into(), file("same", 1));
        }
        match sink {
            "table" => {
                record.features_table = Some(TableOutput {
                    schema: "hookhost_features".into(),
                    table: "text_stats".into(),
                    rows: 7,
                    content_sha256: content.into(),
                })
            }
            name => {
                record.outputs.insert(name.into(), file(content, 7));
            }
        }
        record
    }

    #[test]
    fn the_same_rows_in_any_two_sinks_are_identical() {
        let sinks = [FEATURES_FILE, PARQUET_FILE, "table"];
        for original in sinks {
            for replay in sinks {
                let differences = compare(&run_in(original, "abc"), &run_in(replay, "abc"));
                assert_eq!(differences, [], "{original} vs {replay}");
            }
        }
    }

    #[test]
    fn other_rows_differ_named_by_where_the_original_kept_them() {
        let differences = compare(&run_in(PARQUET_FILE, "abc"), &run_in(PARQUET_FILE, "def"));
        assert_eq!(
            differences,
            [Difference {
                what: PARQUET_FILE.into(),
                original: "sha256:abc (7 lines)".into(),
                replay: "sha256:def (7 lines)".into(),
            }]
        );
        let differences = compare(&run_in("table", "abc"), &run_in(FEATURES_FILE, "def"));
        assert_eq!(
            differences,
            [Difference {
                what: "table hookhost_features.text_stats".into(),
                original: "sha256:abc (7 rows, in table hookhost_features.text_stats)".into(),
                replay: "sha256:def (7 rows, in features.jsonl)".into(),
            }]
        );
        let mut without = run_in(FEATURES_FILE, "abc");
        without.outputs.remove(FEATURES_FILE);
        let differences = compare(&run_in(FEATURES_FILE, "abc"), &without);
        assert_eq!(differences.len(), 1);
        assert_eq!(differences[0].replay, "absent");
    }

    #[test]
    fn a_parquet_run_replays_into_parquet_and_any_other_into_jsonl() {
        assert!(matches!(
            replay_features(&run_in(PARQUET_FILE, "abc")),
            Features::Parquet(options) if options == ParquetOptions::default()
        ));
        assert!(matches!(
            replay_features(&run_in(FEATURES_FILE, "abc")),
            Features::Jsonl
        ));
        assert!(matches!(
            replay_features(&run_in("table", "abc")),
            Features::Jsonl
        ));
    }
}
