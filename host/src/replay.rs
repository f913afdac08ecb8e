//! Replay: run a recorded run again and check that it gives the same outputs.
//!
//! Same component (by digest, from the blob store), same config, limits, memory ceiling,
//! chunk size and log cap, same input (checked by its sha256 before anything runs). Because
//! the sandbox has fixed clocks and seeded randomness, a deterministic hook gives outputs
//! with identical content digests ([`OutputFile::content_sha256`], which leaves out the
//! `run_id` each line carries). The replay is itself a run, recorded with `replay_of`.
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
use crate::provenance::{RunRecord, RunStatus};
use crate::registry::Registry;
use crate::run::{Input, Progress, RunRequest};
use crate::runner::DEFAULT_MAX_LOG_BYTES;

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
    let names: std::collections::BTreeSet<&String> = original
        .outputs
        .keys()
        .chain(replay.outputs.keys())
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
