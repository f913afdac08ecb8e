//! The provenance record of a run: `run.json`, field for field as DESIGN.md lists it.
//!
//! Fields may be added; none may be renamed. `passed + rejected + errored == total` always,
//! and every output file is listed with its real size and hash.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every record got an outcome (rejected and errored records are counted, not fatal).
    Succeeded,
    /// The run itself could not complete; `error` says why.
    Failed,
    /// The run was stopped before every record got an outcome.
    Cancelled,
}

impl RunStatus {
    /// As `run.json` writes it: `succeeded`, `failed`, `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunStatus {
    type Err = String;

    /// A status as [`RunStatus::as_str`] writes it.
    fn from_str(text: &str) -> Result<RunStatus, String> {
        [
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
        .ok_or_else(|| format!("`{text}` is not a run status (succeeded, failed, cancelled)"))
    }
}

/// The provenance record written to `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run's id (a UUIDv7: sortable by start time).
    pub run_id: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Which component ran.
    pub hook: HookRef,
    /// `sha256:` digest of the hook's contract.
    pub contract_digest: String,
    /// `sha256:` digest of the config's canonical JSON.
    pub config_digest: String,
    /// The limits in force (after clamping to the host's ceilings).
    pub limits: LimitsRecord,
    /// The memory cap at the end of the run (raised by OOM doubling).
    pub memory_bytes_final: u64,
    /// How many times the memory cap doubled.
    pub oom_retries: u32,
    /// Outcome counts.
    pub records: Counts,
    /// Fuel used by every call, reruns included.
    pub fuel_consumed: u64,
    /// The most fuel one record used on its own, among the records that got an outcome from
    /// a call (not a failed one) and that the hook announced with `begin-record` (since
    /// `hookhost:hook@0.2.0`; the SDKs announce every record). 0 when none was announced.
    /// Compare with `limits.fuel_per_record` to see how close the run came to its budget.
    #[serde(default)]
    pub fuel_per_record_max: u64,
    /// How many records `fuel_per_record_max` was taken over: the records with an outcome
    /// from a settled call whose fuel was measured on their own. Fewer than
    /// `records.total` when the hook does not announce its records (their fuel is pooled per
    /// call) or records errored before settling.
    #[serde(default)]
    pub fuel_records_metered: u64,
    /// The most linear memory any sandbox held.
    pub peak_memory_bytes: u64,
    /// What was read.
    pub input: InputRecord,
    /// Every output file, by name.
    pub outputs: BTreeMap<String, OutputFile>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// Wall-clock duration of the run.
    pub duration_ms: u64,
    /// The host that ran it.
    pub host: HostInfo,
    /// Records per call.
    #[serde(default)]
    pub chunk_size: usize,
    /// Sandboxes started, reruns included.
    #[serde(default)]
    pub calls: u64,
    /// Guest output dropped because the log cap was reached.
    #[serde(default)]
    pub log_bytes_dropped: u64,
    /// The run this one replayed, when it was a replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<String>,
    /// Why the run failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where it ran: the worker identity of its host ([`Host::worker`](crate::Host::worker)),
    /// `host:pid` unless the embedder named it. Absent in records written before fleets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// The feature table the rows went to, when the run wrote to feature tables instead of a
    /// features file ([`sink`](crate::sink)). Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features_table: Option<TableOutput>,
}

/// The feature table a run wrote its rows to, as `run.json` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableOutput {
    /// The schema, e.g. `hookhost_features`.
    pub schema: String,
    /// The table, e.g. `text_stats`.
    pub table: String,
    /// The rows this run wrote to it.
    pub rows: u64,
    /// Lowercase hex sha256 of the rows as `features.jsonl` would hold them without their
    /// `run_id` members: the same as a JSONL run's `content_sha256` for the same rows.
    pub content_sha256: String,
}

/// Which component ran, and under which registered name, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookRef {
    /// The registered hook name, or null for a component run from a file.
    pub name: Option<String>,
    /// The release version, or null for a component run from a file.
    pub version: Option<u32>,
    /// `sha256:` digest of the component's bytes.
    pub digest: String,
}

/// The limits of a run, in the units of `run.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsRecord {
    /// Fuel per record.
    pub fuel_per_record: u64,
    /// The starting memory cap.
    pub memory_bytes: u64,
    /// The most the cap may double to.
    pub memory_ceiling_bytes: u64,
    /// How many times the cap may double.
    pub max_oom_retries: u32,
    /// Wall-clock time per record.
    pub timeout_ms: u64,
    /// The most guest output kept in `logs.txt`.
    #[serde(default)]
    pub max_log_bytes: u64,
}

/// Outcome counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Non-blank input lines.
    pub total: u64,
    /// Records that passed.
    pub passed: u64,
    /// Records the hook rejected.
    pub rejected: u64,
    /// Records that errored, invalid lines included.
    pub errored: u64,
}

/// The input that was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    /// Lowercase hex sha256 of every byte read.
    pub sha256: String,
    /// Bytes read.
    pub bytes: u64,
    /// Non-blank lines.
    pub records: u64,
}

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// Lowercase hex sha256 of the file.
    pub sha256: String,
    /// Lowercase hex sha256 of the file's content without the run: every line's `run_id`
    /// member left out (`,"run_id":"…"` removed). Two runs that produced the same outcomes
    /// have the same content digest, which is what `host replay` compares.
    #[serde(default)]
    pub content_sha256: String,
    /// The file's size.
    pub bytes: u64,
    /// Lines in the file.
    pub rows: u64,
}

/// The host that ran the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// hookhost's version.
    pub version: String,
    /// wasmtime's version.
    pub wasmtime: String,
    /// Fingerprint of the engine configuration.
    pub engine: String,
}

/// A batch's runs, to record at once with [`Recorder::record_batch`].
#[derive(Debug, Clone, Copy)]
pub struct NewBatch<'a> {
    /// The batch's id: unique among recorded batches.
    pub batch_id: &'a str,
    /// The idempotency key the batch was begun with. `None`: its runs are recorded but the
    /// batch is not, and nothing can find it by key.
    pub idempotency_key: Option<&'a str>,
    /// `sha256:` digest identifying the releases the batch resolved (its snapshot); the same
    /// key for another snapshot is another batch.
    pub snapshot_digest: &'a str,
    /// Its runs, in the order their ids are kept.
    pub runs: &'a [RunEntry<'a>],
    /// What the embedder keeps about the batch, stored as given and not read by the registry.
    pub summary: &'a serde_json::Value,
}

/// One run to record: on its own, or as one of a batch's runs.
#[derive(Debug, Clone, Copy)]
pub struct RunEntry<'a> {
    /// The provenance record, as written to `run.json`.
    pub record: &'a RunRecord,
    /// The config it ran with, as canonical JSON.
    pub config: &'a str,
    /// The output directory it wrote, when it is kept.
    pub out_dir: Option<&'a str>,
}

/// What [`Recorder::record_batch`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum BatchRecorded {
    /// Every run was recorded, and the batch too when it had an idempotency key.
    Recorded,
    /// The key and snapshot were already taken by another batch, returned here; nothing of
    /// this one was recorded.
    Existing(StoredBatch),
}

/// A batch as the registry keeps it (only batches begun with an idempotency key are kept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredBatch {
    /// The batch's id.
    pub batch_id: String,
    /// The key it was begun with; with `snapshot_digest`, unique among batches.
    pub idempotency_key: String,
    /// The digest of the releases it resolved.
    pub snapshot_digest: String,
    /// Its runs' ids, in the order it gave them; each is a recorded run.
    pub run_ids: Vec<String>,
    /// What the embedder kept about it, exactly as given.
    pub summary: serde_json::Value,
    /// When the registry recorded it and its runs.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: time::OffsetDateTime,
}

/// Where finished runs are recorded: what the execution layer calls when a run (or a batch of
/// runs) ends, whatever its status. The registry implements it; running code never needs to
/// know which registry, or whether there is one.
pub trait Recorder: Send + Sync + std::fmt::Debug {
    /// Appends one run. A run id already recorded is refused.
    fn record_run(&self, run: RunEntry<'_>) -> Result<(), crate::error::Error>;

    /// Records a batch's runs, and the batch itself when it has an idempotency key, at once:
    /// afterwards all of them are recorded or none is. When the key was already recorded for
    /// the same snapshot, nothing is written and that batch is returned.
    fn record_batch(&self, batch: NewBatch<'_>) -> Result<BatchRecorded, crate::error::Error>;
}

/// Now, as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .expect("UTC times always format")
}

/// A record with small placeholder values, for tests that store or write one.
#[cfg(test)]
pub(crate) fn sample_record(run_id: &str) -> RunRecord {
    RunRecord {
        run_id: run_id.into(),
        status: RunStatus::Succeeded,
        hook: HookRef {
            name: None,
            version: None,
            digest: crate::digest::sha256_digest(b"a"),
        },
        contract_digest: "sha256:00".into(),
        config_digest: crate::digest::sha256_digest(b"{}"),
        limits: LimitsRecord {
            fuel_per_record: 1,
            memory_bytes: 1,
            memory_ceiling_bytes: 1,
            max_oom_retries: 0,
            timeout_ms: 1,
            max_log_bytes: 1,
        },
        memory_bytes_final: 1,
        oom_retries: 0,
        records: Counts {
            total: 3,
            passed: 1,
            rejected: 1,
            errored: 1,
        },
        fuel_consumed: 7,
        fuel_per_record_max: 3,
        fuel_records_metered: 2,
        peak_memory_bytes: 65536,
        input: InputRecord {
            sha256: "00".into(),
            bytes: 10,
            records: 3,
        },
        outputs: Default::default(),
        started_at: "2026-11-22T00:00:00.000Z".into(),
        finished_at: "2026-11-22T00:00:01.000Z".into(),
        duration_ms: 1000,
        host: HostInfo {
            version: "0".into(),
            wasmtime: "48".into(),
            engine: "sha256:00".into(),
        },
        chunk_size: 16,
        calls: 1,
        log_bytes_dropped: 0,
        replay_of: None,
        error: None,
        worker: None,
        features_table: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_spelled_as_run_json_spells_them() {
        for status in [
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ] {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
            assert_eq!(status.as_str().parse::<RunStatus>().unwrap(), status);
        }
        assert!("done".parse::<RunStatus>().is_err());
    }
}
