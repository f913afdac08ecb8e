//! One hook's run over a batch, one chunk at a time: the core that [`run_to_dir`] and the
//! embedding API ([`crate::embed`]) both drive.
//!
//! A [`LanePlan`] is a checked request (canonical config, limits clamped to the host's
//! ceilings). [`Lane::run_chunk`] runs a [`Chunk`] through the lane's [`BatchRunner`] and
//! settles each slot into the lane's [`Sink`] (an output directory or memory), in input
//! order; [`Lane::finish`] writes the provenance record. A lane never reads input itself, so
//! several lanes can share one chunk: that is how a batch runs a set of hooks.
//!
//! [`run_to_dir`]: crate::run::run_to_dir

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::component::{HOST_VERSION, HookComponent, WASMTIME_VERSION};
use crate::config::canonical_config;
use crate::digest::sha256_digest;
use crate::error::{Error, RecordError};
use crate::input::{InputItem, PendingRecord};
use crate::limits::{Limits, format_size};
use crate::outcome::{ErrorRow, Outcomes};
use crate::output::OutputDir;
use crate::provenance::{
    Counts, HookRef, HostInfo, InputRecord, LimitsRecord, RunRecord, RunStatus, now_rfc3339,
};
use crate::runner::{
    BatchRunner, DEFAULT_MAX_OUTPUT_BYTES_PER_RECORD, RecordOutcome, RunnerSettings,
};

/// What every lane of a batch shares.
#[derive(Debug, Clone)]
pub(crate) struct BatchKnobs {
    pub chunk_size: usize,
    /// Chunks run at once, each on its own thread (at least 1).
    pub jobs: usize,
    pub max_log_bytes: u64,
    pub memory_ceiling: Option<u64>,
    pub replay_of: Option<String>,
    pub cancel: Arc<AtomicBool>,
}

/// A checked request to run one hook: ready to start a [`Lane`].
#[derive(Debug, Clone)]
pub(crate) struct LanePlan {
    hook: HookComponent,
    release: Option<(String, u32)>,
    config_json: String,
    limits: Limits,
    memory_ceiling: u64,
    knobs: BatchKnobs,
}

impl LanePlan {
    /// Checks the config (JSON, made canonical) and clamps `limits` to the host's ceilings
    /// (and to `knobs.memory_ceiling`), warning about each value lowered.
    pub fn new(
        hook: HookComponent,
        release: Option<(String, u32)>,
        config: Option<&str>,
        limits: &Limits,
        knobs: &BatchKnobs,
    ) -> Result<LanePlan, Error> {
        let mut ceilings = *hook.host().ceilings();
        if let Some(ceiling) = knobs.memory_ceiling {
            ceilings.memory_bytes = ceilings.memory_bytes.min(ceiling.max(1));
        }
        let clamped = limits.clamped(&ceilings);
        for change in clamp_changes(limits, &clamped) {
            tracing::warn!(hook = %hook.digest(), "{change}, the host's limit");
        }
        Ok(LanePlan {
            config_json: canonical_config(config)?,
            hook,
            release,
            limits: clamped,
            memory_ceiling: ceilings.memory_bytes,
            knobs: knobs.clone(),
        })
    }

    /// The config as canonical JSON text.
    pub fn config_json(&self) -> &str {
        &self.config_json
    }
}

/// Where a lane's outcomes go.
#[derive(Debug)]
pub(crate) enum Sink {
    /// An output directory, visible when the lane finishes.
    Dir(Box<OutputDir>),
    /// Memory, handed back when the lane finishes.
    Memory(Outcomes, Vec<u8>),
}

/// What a finished lane kept.
#[derive(Debug)]
pub(crate) enum Kept {
    /// The output directory, now visible.
    Dir,
    /// The outcomes and the captured guest output.
    Memory(Outcomes, Vec<u8>),
}

/// A non-blank input item waiting for its chunk to settle, kept in input order.
#[derive(Debug)]
pub(crate) enum Slot {
    Record {
        line: u64,
    },
    Invalid {
        line: u64,
        id: Option<String>,
        reason: String,
    },
}

/// The items one call settles: every slot in input order, and the valid records among them.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    pub slots: Vec<Slot>,
    pub records: Vec<PendingRecord>,
}

impl Chunk {
    pub fn push(&mut self, item: InputItem) {
        match item {
            InputItem::Record { line, record } => {
                self.slots.push(Slot::Record { line });
                self.records.push(record);
            }
            InputItem::Invalid { line, id, reason } => {
                self.slots.push(Slot::Invalid { line, id, reason });
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// How a lane's main loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Every item of the input was settled.
    Completed,
    /// Stopped on request.
    Cancelled,
    /// The run could not go on, for this reason.
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

/// A chunk's outcomes, or why it has none.
type Settled = Result<Vec<RecordOutcome>, Error>;

/// One hook's run in progress.
#[derive(Debug)]
pub(crate) struct Lane {
    plan: LanePlan,
    run_id: String,
    started: Instant,
    started_at: String,
    /// One runner per chunk in flight; they share the run's memory cap.
    runners: Vec<BatchRunner>,
    sink: Sink,
    counts: Counts,
    log_bytes_kept: u64,
    log_bytes_cut: u64,
}

impl Lane {
    /// Starts run `run_id` of `plan`, settling into `sink`.
    pub fn start(plan: LanePlan, run_id: String, sink: Sink) -> Lane {
        let runner = BatchRunner::new(
            plan.hook.clone(),
            RunnerSettings {
                limits: plan.limits,
                memory_ceiling: plan.memory_ceiling,
                config_json: plan.config_json.clone(),
                max_output_bytes_per_record: DEFAULT_MAX_OUTPUT_BYTES_PER_RECORD,
                max_log_bytes: plan.knobs.max_log_bytes,
                cancel: plan.knobs.cancel.clone(),
            },
        );
        Lane {
            plan,
            run_id,
            started: Instant::now(),
            started_at: now_rfc3339(),
            runners: vec![runner],
            sink,
            counts: Counts::default(),
            log_bytes_kept: 0,
            log_bytes_cut: 0,
        }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn plan(&self) -> &LanePlan {
        &self.plan
    }

    /// Outcome counts so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Runs `chunk`'s records and settles every slot, in order. On an error (the run cannot go
    /// on, or was cancelled) nothing of the chunk is settled; earlier chunks stay.
    pub fn run_chunk(&mut self, chunk: &Chunk) -> Result<Vec<Verdict>, Error> {
        let mut verdicts = self.run_chunks(std::slice::from_ref(chunk), &mut |_| {})?;
        Ok(verdicts.pop().expect("one chunk, one list"))
    }

    /// Runs `chunks` at once, one thread and runner each, then settles them in input order,
    /// so the outputs are the same as running them one by one. On an error, the chunks before
    /// the failing one are settled and it and the later ones are not. `settled` is called
    /// after each chunk is.
    pub fn run_chunks(
        &mut self,
        chunks: &[Chunk],
        settled: &mut dyn FnMut(&Lane),
    ) -> Result<Vec<Vec<Verdict>>, Error> {
        while self.runners.len() < chunks.len() {
            let sibling = self.runners[0].sibling();
            self.runners.push(sibling);
        }
        let ran: Vec<(Settled, Vec<u8>)> = match chunks {
            [chunk] => {
                let runner = &mut self.runners[0];
                let settled = runner.run_chunk(&chunk.records);
                vec![(settled, runner.take_logs())]
            }
            _ => std::thread::scope(|scope| {
                let running: Vec<_> = self
                    .runners
                    .iter_mut()
                    .zip(chunks)
                    .map(|(runner, chunk)| {
                        scope.spawn(move || {
                            let settled = runner.run_chunk(&chunk.records);
                            (settled, runner.take_logs())
                        })
                    })
                    .collect();
                running
                    .into_iter()
                    .map(|thread| {
                        thread
                            .join()
                            .unwrap_or_else(|p| std::panic::resume_unwind(p))
                    })
                    .collect()
            }),
        };
        let mut all = Vec::with_capacity(chunks.len());
        for (chunk, (outcomes, logs)) in chunks.iter().zip(ran) {
            self.write_logs(&logs)?;
            all.push(self.settle_chunk(chunk, outcomes?)?);
            settled(self);
        }
        Ok(all)
    }

    fn settle_chunk(
        &mut self,
        chunk: &Chunk,
        settled: Vec<RecordOutcome>,
    ) -> Result<Vec<Verdict>, Error> {
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
        let contract = self.plan.hook.contract();
        match outcome {
            RecordOutcome::Passed(rows) => {
                match &mut self.sink {
                    Sink::Dir(out) => out.write_features(id, run_id, contract, &rows.rows)?,
                    Sink::Memory(kept, _) => kept.push_features(id, run_id, contract, &rows.rows),
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
        let cap = self.plan.knobs.max_log_bytes;
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

    /// Ends the run — `ended` says how its main loop ended — and writes its provenance record
    /// (for a directory, `run.json`, and the directory becomes visible).
    pub fn finish(self, ended: Ended, input: InputRecord) -> Result<(RunRecord, Kept), Error> {
        let (status, error) = match ended {
            Ended::Completed => (RunStatus::Succeeded, None),
            Ended::Cancelled => (RunStatus::Cancelled, None),
            Ended::Failed(reason) => (RunStatus::Failed, Some(reason)),
        };
        let plan = &self.plan;
        let mut stats = self.runners[0].stats();
        for sibling in &self.runners[1..] {
            let more = sibling.stats();
            stats.fuel_consumed += more.fuel_consumed;
            stats.calls += more.calls;
            stats.log_bytes_dropped += more.log_bytes_dropped;
            stats.peak_memory_bytes = stats.peak_memory_bytes.max(more.peak_memory_bytes);
        }
        stats.log_bytes_dropped += self.log_bytes_cut;
        let host = plan.hook.host();
        let mut record = RunRecord {
            run_id: self.run_id,
            status,
            hook: HookRef {
                name: plan.release.as_ref().map(|(name, _)| name.clone()),
                version: plan.release.as_ref().map(|(_, version)| *version),
                digest: plan.hook.digest().to_owned(),
            },
            contract_digest: plan.hook.contract().digest(),
            config_digest: sha256_digest(plan.config_json.as_bytes()),
            limits: LimitsRecord {
                fuel_per_record: plan.limits.fuel_per_record,
                memory_bytes: plan.limits.memory_bytes,
                memory_ceiling_bytes: plan.memory_ceiling,
                max_oom_retries: plan.limits.max_oom_retries,
                timeout_ms: plan.limits.timeout.as_millis() as u64,
                max_log_bytes: plan.knobs.max_log_bytes,
            },
            memory_bytes_final: stats.memory_bytes,
            oom_retries: stats.oom_retries,
            records: self.counts,
            fuel_consumed: stats.fuel_consumed,
            peak_memory_bytes: stats.peak_memory_bytes,
            input,
            outputs: Default::default(),
            started_at: self.started_at,
            finished_at: now_rfc3339(),
            duration_ms: self.started.elapsed().as_millis() as u64,
            host: HostInfo {
                version: HOST_VERSION.to_owned(),
                wasmtime: WASMTIME_VERSION.to_owned(),
                engine: host.engine_fingerprint().to_owned(),
            },
            chunk_size: plan.knobs.chunk_size,
            calls: stats.calls,
            log_bytes_dropped: stats.log_bytes_dropped,
            replay_of: plan.knobs.replay_of.clone(),
            error,
        };
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

/// What clamping changed, in words: `memory 8GiB changed to 4GiB`.
fn clamp_changes(asked: &Limits, granted: &Limits) -> Vec<String> {
    let mut changes = Vec::new();
    let mut note = |what: &str, asked: String, granted: String| {
        if asked != granted {
            changes.push(format!("{what} {asked} changed to {granted}"));
        }
    };
    note(
        "fuel",
        asked.fuel_per_record.to_string(),
        granted.fuel_per_record.to_string(),
    );
    note(
        "memory",
        format_size(asked.memory_bytes),
        format_size(granted.memory_bytes),
    );
    note(
        "max OOM retries",
        asked.max_oom_retries.to_string(),
        granted.max_oom_retries.to_string(),
    );
    note(
        "timeout",
        format!("{:?}", asked.timeout),
        format!("{:?}", granted.timeout),
    );
    changes
}
