//! One hook's run over a batch: its outcomes settled chunk by chunk, in input order — feature
//! rows into its [feature sink](crate::sink), the rest into its run directory or memory — and
//! its provenance record at the end.
//!
//! A lane never runs guest code or reads input itself: [workers](super::workers) run its
//! chunks (on [`BatchRunner`]s made from [`Lane::runner`], sharing the run's memory cap) and
//! the driver hands it their outcomes in input order. So several lanes can share one chunk:
//! that is how a batch runs a set of hooks.

use std::time::Instant;

use super::Plan;
use crate::component::{HOST_VERSION, WASMTIME_VERSION};
use crate::digest::sha256_digest;
use crate::error::{Error, RecordError};
use crate::input::{Chunk, Slot};
use crate::outcome::{ErrorRow, Outcomes};
use crate::output::OutputDir;
use crate::provenance::{
    Counts, HookRef, HostInfo, InputRecord, LimitsRecord, RunRecord, RunStatus, now_rfc3339,
};
use crate::runner::{
    BatchRunner, DEFAULT_MAX_OUTPUT_BYTES_PER_RECORD, RecordOutcome, RunnerSettings, RunnerStats,
};
use crate::sink::{FeatureSink, Written};

/// Where a lane's rejections, errors and logs go (and its feature rows, when it has no
/// feature sink).
#[derive(Debug)]
pub(crate) enum Sink {
    /// A run directory, visible when the lane finishes.
    Dir(Box<OutputDir>),
    /// Memory, handed back when the lane finishes.
    Memory(Outcomes, Vec<u8>),
}

/// What a finished lane kept.
#[derive(Debug)]
pub(crate) enum Kept {
    /// The run directory, now visible.
    Dir,
    /// The outcomes and the captured guest output.
    Memory(Outcomes, Vec<u8>),
}

/// How a run (or a batch) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Every item of the input was settled.
    Completed,
    /// Stopped on request.
    Cancelled,
    /// It could not go on, for this reason.
    Failed(String),
}

impl From<Result<(), Error>> for Ended {
    fn from(result: Result<(), Error>) -> Ended {
        match result {
            Ok(()) => Ended::Completed,
            Err(Error::Cancelled) => Ended::Cancelled,
            Err(error) => Ended::Failed(error.to_string()),
        }
    }
}

/// How one slot settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Passed,
    Rejected,
    Errored,
}

/// One hook's run in progress.
#[derive(Debug)]
pub(crate) struct Lane {
    plan: Plan,
    run_id: String,
    started: Instant,
    started_at: String,
    /// The runner the workers' runners are siblings of: it holds the run's memory cap.
    runner: BatchRunner,
    max_log_bytes: u64,
    replay_of: Option<String>,
    chunk_size: usize,
    sink: Sink,
    /// Where feature rows go; `None`: into `sink`'s memory.
    features: Option<Box<dyn FeatureSink>>,
    counts: Counts,
    stats: RunnerStats,
    log_bytes_kept: u64,
    log_bytes_cut: u64,
}

/// What every lane of a batch shares.
#[derive(Debug, Clone)]
pub(crate) struct LaneKnobs {
    pub chunk_size: usize,
    pub max_log_bytes: u64,
    pub replay_of: Option<String>,
    pub cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Lane {
    /// Starts run `run_id` of `plan`, settling feature rows into `features` (or, when `None`,
    /// into `sink`'s memory) and the rest into `sink`.
    pub fn start(
        plan: Plan,
        knobs: &LaneKnobs,
        run_id: String,
        sink: Sink,
        features: Option<Box<dyn FeatureSink>>,
    ) -> Lane {
        let runner = BatchRunner::new(
            plan.hook().clone(),
            RunnerSettings {
                limits: *plan.limits(),
                memory_ceiling: plan.memory_ceiling(),
                config_json: plan.config_json().to_owned(),
                max_output_bytes_per_record: DEFAULT_MAX_OUTPUT_BYTES_PER_RECORD,
                max_log_bytes: knobs.max_log_bytes,
                cancel: knobs.cancel.clone(),
                keep_values: features.as_ref().is_none_or(|sink| sink.needs_values()),
            },
        );
        Lane {
            plan,
            run_id,
            started: Instant::now(),
            started_at: now_rfc3339(),
            runner,
            max_log_bytes: knobs.max_log_bytes,
            replay_of: knobs.replay_of.clone(),
            chunk_size: knobs.chunk_size,
            sink,
            features,
            counts: Counts::default(),
            stats: RunnerStats::default(),
            log_bytes_kept: 0,
            log_bytes_cut: 0,
        }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Outcome counts so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// A runner for this lane's chunks, for a worker: it shares the run's memory cap (a
    /// doubling by any holds for all, counted once) and counts its own fuel and calls.
    pub fn runner(&self) -> BatchRunner {
        self.runner.sibling()
    }

    /// Adds what a worker's runner measured for one of this lane's chunks.
    pub fn add_stats(&mut self, more: RunnerStats) {
        self.stats.fuel_consumed += more.fuel_consumed;
        self.stats.calls += more.calls;
        self.stats.log_bytes_dropped += more.log_bytes_dropped;
        self.stats.peak_memory_bytes = self.stats.peak_memory_bytes.max(more.peak_memory_bytes);
        self.stats.fuel_per_record_max =
            self.stats.fuel_per_record_max.max(more.fuel_per_record_max);
        self.stats.fuel_records_metered += more.fuel_records_metered;
    }

    /// Settles `chunk` with what its call gave: first its guest output, then, if it ran, every
    /// slot in order. A chunk that could not run (the run cannot go on, or was cancelled)
    /// settles nothing and returns its error; earlier chunks stay settled.
    pub fn settle_chunk(
        &mut self,
        chunk: &Chunk,
        logs: &[u8],
        ran: Result<Vec<RecordOutcome>, Error>,
    ) -> Result<Vec<Verdict>, Error> {
        self.write_logs(logs)?;
        let settled = ran?;
        let mut outcomes = chunk.records.iter().zip(settled);
        let mut verdicts = Vec::with_capacity(chunk.slots.len());
        for slot in &chunk.slots {
            self.counts.total += 1;
            let verdict = match slot {
                Slot::Invalid { line, id, reason } => {
                    let error = RecordError::InvalidInput(reason.clone());
                    self.error(id.as_deref(), *line, &error)?;
                    Verdict::Errored
                }
                Slot::Record { line } => {
                    let (record, outcome) = outcomes.next().expect("one outcome per record");
                    self.settle(&record.record.id, *line, outcome)?
                }
            };
            match verdict {
                Verdict::Passed => self.counts.passed += 1,
                Verdict::Rejected => self.counts.rejected += 1,
                Verdict::Errored => self.counts.errored += 1,
            }
            verdicts.push(verdict);
        }
        Ok(verdicts)
    }

    fn settle(&mut self, id: &str, line: u64, outcome: RecordOutcome) -> Result<Verdict, Error> {
        let run_id = self.run_id.as_str();
        let contract = self.plan.hook().contract();
        match outcome {
            RecordOutcome::Passed(rows) => {
                match (&mut self.features, &mut self.sink) {
                    (Some(features), _) => features.write(id, run_id, &rows)?,
                    (None, Sink::Memory(kept, _)) => {
                        kept.push_features(id, run_id, contract, &rows.rows)
                    }
                    (None, Sink::Dir(_)) => {
                        unreachable!("a lane with a run directory has a feature sink")
                    }
                }
                Ok(Verdict::Passed)
            }
            RecordOutcome::Rejected(reason) => {
                match &mut self.sink {
                    Sink::Dir(out) => out.write_rejection(id, run_id, &reason)?,
                    Sink::Memory(kept, _) => kept.push_rejection(id, run_id, &reason),
                }
                Ok(Verdict::Rejected)
            }
            RecordOutcome::Errored(error) => {
                self.error(Some(id), line, &error)?;
                Ok(Verdict::Errored)
            }
        }
    }

    fn error(&mut self, id: Option<&str>, line: u64, error: &RecordError) -> Result<(), Error> {
        match &mut self.sink {
            Sink::Dir(out) => out.write_error(id, line, &self.run_id, error),
            Sink::Memory(kept, _) => {
                kept.errors
                    .push(ErrorRow::new(id, line, &self.run_id, error));
                Ok(())
            }
        }
    }

    /// Appends a chunk's guest output, within the run's log cap: past it, output is counted
    /// (in `log_bytes_dropped`) and dropped, and the cap is noted once, so `logs.txt` stays
    /// bounded however many calls flood their output.
    fn write_logs(&mut self, logs: &[u8]) -> Result<(), Error> {
        if logs.is_empty() {
            return Ok(());
        }
        let cap = self.max_log_bytes;
        let room = cap.saturating_sub(self.log_bytes_kept) as usize;
        let kept = &logs[..logs.len().min(room)];
        let mut bytes = kept.to_vec();
        if kept.len() < logs.len() {
            if self.log_bytes_cut == 0 {
                bytes.extend_from_slice(
                    format!(
                        "\n--- the run's log cap of {cap} bytes was reached: later guest output \
                         is dropped and counted in run.json's log_bytes_dropped ---\n"
                    )
                    .as_bytes(),
                );
            }
            self.log_bytes_cut += (logs.len() - kept.len()) as u64;
        }
        self.log_bytes_kept += kept.len() as u64;
        match &mut self.sink {
            Sink::Dir(out) => out.write_logs(&bytes),
            Sink::Memory(_, all) => {
                all.extend_from_slice(&bytes);
                Ok(())
            }
        }
    }

    /// Ends the run — `ended` says how — and writes its provenance record (for a directory,
    /// `run.json`, and the directory becomes visible).
    pub fn finish(self, ended: Ended, input: InputRecord) -> Result<(RunRecord, Kept), Error> {
        let (status, error) = match ended {
            Ended::Completed => (RunStatus::Succeeded, None),
            Ended::Cancelled => (RunStatus::Cancelled, None),
            Ended::Failed(reason) => (RunStatus::Failed, Some(reason)),
        };
        let plan = &self.plan;
        let memory = self.runner.stats();
        let stats = self.stats;
        let release = plan.release();
        let limits = plan.limits();
        let mut record = RunRecord {
            run_id: self.run_id,
            status,
            hook: HookRef {
                name: release.map(|(name, _)| name.clone()),
                version: release.map(|(_, version)| *version),
                digest: plan.hook().digest().to_owned(),
            },
            contract_digest: plan.hook().contract().digest(),
            config_digest: sha256_digest(plan.config_json().as_bytes()),
            limits: LimitsRecord {
                fuel_per_record: limits.fuel_per_record,
                memory_bytes: limits.memory_bytes,
                memory_ceiling_bytes: plan.memory_ceiling(),
                max_oom_retries: limits.max_oom_retries,
                timeout_ms: limits.timeout.as_millis() as u64,
                max_log_bytes: self.max_log_bytes,
            },
            memory_bytes_final: memory.memory_bytes,
            oom_retries: memory.oom_retries,
            records: self.counts,
            fuel_consumed: stats.fuel_consumed,
            fuel_per_record_max: stats.fuel_per_record_max,
            fuel_records_metered: stats.fuel_records_metered,
            peak_memory_bytes: stats.peak_memory_bytes,
            input,
            outputs: Default::default(),
            started_at: self.started_at,
            finished_at: now_rfc3339(),
            duration_ms: self.started.elapsed().as_millis() as u64,
            host: HostInfo {
                version: HOST_VERSION.to_owned(),
                wasmtime: WASMTIME_VERSION.to_owned(),
                engine: plan.hook().host().engine_fingerprint().to_owned(),
            },
            chunk_size: self.chunk_size,
            calls: stats.calls,
            log_bytes_dropped: stats.log_bytes_dropped + self.log_bytes_cut,
            replay_of: self.replay_of,
            error,
            worker: Some(plan.hook().host().worker().to_owned()),
            features_table: None,
        };
        if let Some(features) = self.features {
            match features.finish()? {
                Written::File { name, file } => {
                    record.outputs.insert(name.to_owned(), file);
                }
                Written::Table(table) => record.features_table = Some(table),
            }
        }
        let kept = match self.sink {
            Sink::Dir(out) => {
                out.finish(&mut record)?;
                Kept::Dir
            }
            Sink::Memory(outcomes, logs) => Kept::Memory(outcomes, logs),
        };
        tracing::info!(run_id = %record.run_id, status = ?record.status,
            passed = record.records.passed, rejected = record.records.rejected,
            errored = record.records.errored, "run finished");
        Ok((record, kept))
    }
}
