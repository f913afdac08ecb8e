//! [`execute`]: read a chunk, hand it to the workers (one job per hook), settle the answers in
//! input order, and when the input ends (or the batch cannot go on) finish every run, write
//! the batch's record and hand the runs to the recorder.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use super::lane::{Ended, Kept, Lane, LaneKnobs, Sink, Verdict};
use super::workers::{self, Answers, Done, FLIGHT_RECORDS, Job, Ran, WorkerContext};
use super::{
    BatchHookSummary, BatchRequest, BatchResult, BatchState, BatchSummary, Executed, HookProgress,
    HookResult, Layout, Progress,
};
use crate::contract::Contract;
use crate::error::Error;
use crate::fsutil::absolute;
use crate::input::{Chunk, Slot, Source};
use crate::limits::DEFAULT_CHUNK_SIZE;
use crate::outcome::Outcomes;
use crate::output::{BatchDir, FEATURES_FILE, OutputDir, PARQUET_FILE};
use crate::provenance::{Counts, NewBatch, Recorder, RunEntry, RunRecord, now_rfc3339};
use crate::sink::jsonl::JsonlFile;
use crate::sink::parquet::ParquetFile;
use crate::sink::{FeatureSink, Features, TableBatch, TableHook};

/// Runs every plan of `request` over every item of `source`, writes the outcomes where
/// `request.layout` says, and records the runs with `request.recorder`. `progress` is called
/// after each chunk is settled.
///
/// Memory stays bounded by about `2 × jobs + 1` flights of chunks (a flight is about 128
/// records, or one chunk when chunks are larger; `jobs + 1` chunks for a source that may wait
/// on its producer, see [`Source::may_wait`]), whatever the input's length (plus the ids of a batch
/// kept in memory, and ~20 bytes per record id to refuse duplicates).
///
/// Errors are for batches that cannot start (an output directory in the way) or whose outputs
/// could not be finished or recorded ([`Error::NotRecorded`]); a batch that started and could
/// not complete ends `Failed` (each run's `error` says why) or `Cancelled`.
pub fn execute(
    request: BatchRequest,
    source: &mut dyn Source,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Executed, Error> {
    Execution::prepare(request)?.run(source, progress)
}

/// A batch whose outputs are created and whose runs have started, ready to [`run`]: what
/// [`execute`] does in two steps, for callers that must know a batch can start (its output
/// directory is not in the way) before they hand it a thread.
///
/// [`run`]: Execution::run
#[derive(Debug)]
pub struct Execution {
    lanes: Vec<Lane>,
    settled: Settled,
    knobs: LaneKnobs,
    jobs: usize,
    gate: Option<Arc<super::Gate>>,
    started: Instant,
    finishing: Finishing,
}

impl Execution {
    /// Checks the request and creates its outputs (staged, invisible until finished); nothing
    /// runs yet. Fails when an output directory is in the way.
    pub fn prepare(request: BatchRequest) -> Result<Execution, Error> {
        let started = Instant::now();
        let started_at = now_rfc3339();
        let BatchRequest {
            batch_id,
            plans,
            layout,
            features,
            chunk_size,
            jobs,
            max_log_bytes,
            replay_of,
            cancel,
            gate,
            recorder,
            record_out_dir,
            idempotency_key,
            snapshot_digest,
        } = request;
        if plans.is_empty() || (matches!(layout, Layout::Run(_)) && plans.len() != 1) {
            return Err(Error::Internal(format!(
                "a batch of {} hook(s) cannot be laid out as {layout:?}",
                plans.len()
            )));
        }
        let chunk_size = chunk_size.unwrap_or_else(|| {
            plans
                .iter()
                .map(|plan| plan.hook().default_chunk_size())
                .max()
                .unwrap_or(DEFAULT_CHUNK_SIZE)
        });
        let knobs = LaneKnobs {
            chunk_size: chunk_size.max(1),
            max_log_bytes,
            replay_of,
            cancel,
        };
        let run_ids: Vec<String> = plans
            .iter()
            .map(|_| uuid::Uuid::now_v7().to_string())
            .collect();
        let mut tables = match &features {
            Features::Tables(tables) => {
                if recorder.is_none() {
                    return Err(Error::Internal(format!(
                        "feature tables ({}) commit with their runs, so the batch needs the \
                         registry as its recorder",
                        tables.describe()
                    )));
                }
                let hooks: Vec<TableHook<'_>> = plans
                    .iter()
                    .map(|plan| TableHook {
                        name: plan.name(),
                        contract: plan.hook().contract(),
                    })
                    .collect();
                Some(tables.begin(&hooks)?)
            }
            Features::Parquet(_) if matches!(layout, Layout::Memory) => {
                return Err(Error::ParquetNeedsDirectory);
            }
            _ => None,
        };
        if matches!(features, Features::Parquet(_)) {
            refuse_unwritable_parquet(&plans, &layout)?;
        }
        let mut batch_dir = None;
        let sinks: Vec<Sink> = match &layout {
            Layout::Run(path) => {
                vec![Sink::Dir(Box::new(OutputDir::create(path, &run_ids[0])?))]
            }
            Layout::Batch(path) => {
                let dir = BatchDir::create(path, &batch_id)?;
                let sinks = plans
                    .iter()
                    .zip(&run_ids)
                    .map(|(plan, run_id)| {
                        let out = OutputDir::create(&dir.staged(plan.name()), run_id)?;
                        Ok(Sink::Dir(Box::new(out)))
                    })
                    .collect::<Result<_, Error>>()?;
                batch_dir = Some(dir);
                sinks
            }
            Layout::Memory => plans
                .iter()
                .map(|_| Sink::Memory(Outcomes::default(), Vec::new()))
                .collect(),
        };
        let feature_sinks = sinks
            .iter()
            .zip(&run_ids)
            .zip(&plans)
            .enumerate()
            .map(|(index, ((sink, run_id), plan))| {
                let contract = plan.hook().contract();
                feature_sink(
                    &features,
                    tables.as_deref_mut(),
                    index,
                    run_id,
                    contract,
                    sink,
                )
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let lanes: Vec<Lane> = plans
            .into_iter()
            .zip(run_ids)
            .zip(sinks.into_iter().zip(feature_sinks))
            .map(|((plan, run_id), (sink, features))| {
                Lane::start(plan, &knobs, run_id, sink, features)
            })
            .collect();
        let keep_passed = !matches!(layout, Layout::Run(_));
        Ok(Execution {
            lanes,
            settled: Settled {
                records: Counts::default(),
                passed: Vec::new(),
                keep_passed,
                batch_dir,
            },
            knobs,
            jobs: jobs.max(1),
            gate,
            started,
            finishing: Finishing {
                batch_id,
                idempotency_key,
                snapshot_digest,
                started_at,
                layout,
                recorder,
                tables,
                record_out_dir,
            },
        })
    }

    /// Runs the batch over `source` to its end, finishes every run and records them.
    pub fn run(
        self,
        source: &mut dyn Source,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Executed, Error> {
        let Execution {
            mut lanes,
            mut settled,
            knobs,
            jobs,
            gate,
            started,
            finishing,
        } = self;
        let _span =
            tracing::info_span!("batch", batch_id = %finishing.batch_id, hooks = lanes.len())
                .entered();
        let ended = {
            let mut driver = Driver {
                lanes: &mut lanes,
                source,
                settled: &mut settled,
                chunk_size: knobs.chunk_size,
                jobs,
                cancel: &knobs.cancel,
                started,
                progress,
            };
            driver.run(gate.as_ref())
        };
        tracing::info!(?ended.batch, passed = settled.records.passed,
            rejected = settled.records.rejected, errored = settled.records.errored,
            "batch ended");
        finish(finishing, lanes, ended, settled, source.summary())
    }
}

/// What the batch settled so far, beyond each lane's own outputs.
#[derive(Debug)]
struct Settled {
    records: Counts,
    passed: Vec<String>,
    keep_passed: bool,
    batch_dir: Option<BatchDir>,
}

/// How the batch ended, and each lane's own ending when it differs.
#[derive(Debug)]
struct Endings {
    batch: Ended,
    own: Vec<Option<Ended>>,
}

/// A flight of chunks handed to the workers, settled chunk by chunk as every lane answers.
struct InFlight {
    chunks: Arc<Vec<Chunk>>,
    /// Per chunk, per lane: the answer, until the chunk is settled.
    answers: Vec<Vec<Option<Ran>>>,
    /// The chunks settled (or passed over) so far, from the first.
    done: usize,
}

struct Driver<'a> {
    lanes: &'a mut [Lane],
    source: &'a mut dyn Source,
    settled: &'a mut Settled,
    chunk_size: usize,
    jobs: usize,
    cancel: &'a Arc<AtomicBool>,
    started: Instant,
    progress: &'a mut dyn FnMut(&Progress),
}

impl Driver<'_> {
    /// Starts the workers, feeds them, settles their answers; returns how the batch ended.
    fn run(&mut self, gate: Option<&Arc<super::Gate>>) -> Endings {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Mutex::new(job_rx);
        let answers = Answers::default();
        let abort = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for index in 0..self.jobs {
                let runners = self.lanes.iter().map(Lane::runner).collect();
                let context = WorkerContext {
                    jobs: &job_rx,
                    answers: &answers,
                    gate,
                    cancel: self.cancel,
                    abort: &abort,
                };
                std::thread::Builder::new()
                    .name(format!("hookhost-worker-{index}"))
                    .spawn_scoped(scope, move || workers::work(runners, context))
                    .expect("spawning a worker thread");
            }
            let endings = self.feed_and_settle(&job_tx, &answers, &abort);
            // Closing the queue ends the workers once they are idle; every job sent has been
            // answered by now.
            drop(job_tx);
            endings
        })
    }

    fn feed_and_settle(
        &mut self,
        jobs: &mpsc::Sender<Job>,
        answers: &Answers,
        abort: &AtomicBool,
    ) -> Endings {
        let lanes = self.lanes.len();
        // Two flights per worker and one more: a worker that finishes before the one working
        // on an earlier flight (whose answers are settled first) still finds work queued. A
        // source that may wait on its producer is read no further ahead than one chunk per
        // worker and one more, so what it gave is settled while it waits.
        let (window, flight_chunks) = match self.source.may_wait() {
            true => (self.jobs + 1, 1),
            false => (2 * self.jobs + 1, (FLIGHT_RECORDS / self.chunk_size).max(1)),
        };
        let mut in_flight: VecDeque<InFlight> = VecDeque::with_capacity(window);
        let mut received: Vec<Done> = Vec::new();
        let mut next_seq: u64 = 0;
        let mut first_seq: u64 = 0;
        let mut input_done = false;
        let mut endings = Endings {
            batch: Ended::Completed,
            own: vec![None; lanes],
        };
        // Whether chunks are still settled: not after the first chunk that could not run.
        let mut settling = true;
        loop {
            while settling && !input_done && in_flight.len() < window {
                let chunks = match self.read_flight(flight_chunks, &mut input_done) {
                    Ok(chunks) => chunks,
                    Err(ended) => {
                        endings.batch = ended;
                        settling = false;
                        break;
                    }
                };
                if chunks.is_empty() {
                    break;
                }
                let chunks = Arc::new(chunks);
                for lane in 0..lanes {
                    let job = Job {
                        seq: next_seq,
                        lane,
                        chunks: chunks.clone(),
                    };
                    jobs.send(job).expect("the workers outlive the queue");
                }
                in_flight.push_back(InFlight {
                    answers: chunks
                        .iter()
                        .map(|_| (0..lanes).map(|_| None).collect())
                        .collect(),
                    done: 0,
                    chunks,
                });
                next_seq += 1;
            }
            if in_flight.is_empty() {
                return endings;
            }
            answers.take(&mut received);
            for done in received.drain(..) {
                let flight = &mut in_flight[(done.seq - first_seq) as usize];
                self.lanes[done.lane].add_stats(done.stats);
                flight.answers[done.chunk][done.lane] = Some(done.ran);
            }
            // Settle, in input order, every chunk all lanes have answered.
            while let Some(flight) = in_flight.front_mut() {
                while flight
                    .answers
                    .get(flight.done)
                    .is_some_and(|lanes| lanes.iter().all(Option::is_some))
                {
                    let index = flight.done;
                    flight.done += 1;
                    let calls: Vec<Ran> = flight.answers[index]
                        .iter_mut()
                        .map(|ran| ran.take().expect("every lane answered"))
                        .collect();
                    if !settling {
                        continue;
                    }
                    if let Err(failed) = self.settle(&flight.chunks[index], calls, &mut endings) {
                        settling = false;
                        if matches!(failed, Ended::Failed(_)) {
                            // Nothing after this chunk will be settled: skip the jobs not
                            // started.
                            abort.store(true, Ordering::SeqCst);
                        }
                    }
                }
                if flight.done < flight.chunks.len() {
                    break;
                }
                in_flight.pop_front();
                first_seq += 1;
            }
        }
    }

    /// Reads up to `chunks` chunks (sets `input_done` at the end of the input). A cancellation
    /// or an input that cannot be read ends the batch: what was read of this flight is not
    /// run, and nothing more is settled.
    fn read_flight(&mut self, chunks: usize, input_done: &mut bool) -> Result<Vec<Chunk>, Ended> {
        let mut flight = Vec::with_capacity(chunks);
        while flight.len() < chunks {
            if self.cancel.load(Ordering::SeqCst) {
                return Err(Ended::Cancelled);
            }
            match self.source.next_chunk(self.chunk_size) {
                Ok(chunk) if chunk.is_empty() => {
                    *input_done = true;
                    break;
                }
                Ok(chunk) => flight.push(chunk),
                Err(error) => return Err(Ended::from(Err(error))),
            }
        }
        Ok(flight)
    }

    /// Settles one chunk in every lane, then at the batch level. A lane whose call could not
    /// run ends the batch (a failure outranks a cancellation); the other lanes still settle
    /// this chunk, but the batch does not count it.
    fn settle(
        &mut self,
        chunk: &Chunk,
        calls: Vec<Ran>,
        endings: &mut Endings,
    ) -> Result<(), Ended> {
        let mut verdicts = Vec::with_capacity(self.lanes.len());
        let mut stop: Option<Ended> = None;
        for (index, call) in calls.into_iter().enumerate() {
            let lane = &mut self.lanes[index];
            match lane.settle_chunk(chunk, &call.logs, call.ran) {
                Ok(lane_verdicts) => verdicts.push(lane_verdicts),
                Err(error) => {
                    let own = Ended::from(Err(error));
                    let batch = match &own {
                        Ended::Failed(reason) => {
                            Ended::Failed(format!("hook `{}` failed: {reason}", lane.plan().name()))
                        }
                        other => other.clone(),
                    };
                    endings.own[index] = Some(own);
                    if !matches!(stop, Some(Ended::Failed(_))) {
                        stop = Some(batch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            if !matches!(endings.batch, Ended::Failed(_)) {
                endings.batch = stop.clone();
            }
            return Err(stop);
        }
        let passed = tally(
            chunk,
            &verdicts,
            &mut self.settled.records,
            self.settled.keep_passed,
        );
        if let Err(error) = self.keep_passed(passed) {
            let failed = Ended::from(Err(error));
            endings.batch = failed.clone();
            return Err(failed);
        }
        let report = Progress {
            counts: self.settled.records,
            hooks: self
                .lanes
                .iter()
                .map(|lane| HookProgress {
                    name: lane.plan().name().to_owned(),
                    run_id: lane.run_id().to_owned(),
                    records: lane.counts(),
                })
                .collect(),
            bytes_read: self.source.bytes_read(),
            elapsed: self.started.elapsed(),
        };
        (self.progress)(&report);
        Ok(())
    }

    /// Keeps a chunk's passed ids: appended to `passed.jsonl`, or in memory.
    fn keep_passed(&mut self, passed: Vec<String>) -> Result<(), Error> {
        let settled = &mut *self.settled;
        match &mut settled.batch_dir {
            Some(dir) => dir.write_passed(&passed),
            None if settled.keep_passed => {
                settled.passed.extend(passed);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// Settles a chunk at the batch level: a record errored if any hook errored it, else was
/// rejected if any hook rejected it, else passed every hook. Returns the passed ids, if
/// `keep` (else none).
fn tally(
    chunk: &Chunk,
    verdicts: &[Vec<Verdict>],
    records: &mut Counts,
    keep: bool,
) -> Vec<String> {
    let mut passed = Vec::new();
    let mut record_index = 0;
    for (slot_index, slot) in chunk.slots.iter().enumerate() {
        let is_record = matches!(slot, Slot::Record { .. });
        let of_slot = || verdicts.iter().map(move |lane| lane[slot_index]);
        records.total += 1;
        if of_slot().any(|v| v == Verdict::Errored) {
            records.errored += 1;
        } else if of_slot().any(|v| v == Verdict::Rejected) {
            records.rejected += 1;
        } else {
            records.passed += 1;
            if keep {
                passed.push(chunk.records[record_index].record.id.clone());
            }
        }
        record_index += usize::from(is_record);
    }
    passed
}

/// How each lane's run ends, given how the batch ended.
fn lane_ending(own: Option<&Ended>, batch: &Ended) -> Ended {
    match (own, batch) {
        (Some(own), _) => own.clone(),
        (None, Ended::Failed(reason)) => Ended::Failed(format!("stopped: {reason}")),
        (None, batch) => batch.clone(),
    }
}

/// What finishing needs from the request.
#[derive(Debug)]
struct Finishing {
    batch_id: String,
    idempotency_key: Option<String>,
    snapshot_digest: String,
    started_at: String,
    layout: Layout,
    recorder: Option<Arc<dyn Recorder>>,
    /// The feature tables' open transaction: the runs are recorded through it.
    tables: Option<Box<dyn TableBatch>>,
    record_out_dir: bool,
}

/// Fails, before any output directory is created, when a plan's contract cannot be the
/// schema of `features.parquet` (a column named like one the file adds itself).
fn refuse_unwritable_parquet(plans: &[super::Plan], layout: &Layout) -> Result<(), Error> {
    for plan in plans {
        if let Err(reason) = crate::sink::parquet::schema(plan.hook().contract()) {
            let dir = match layout {
                Layout::Run(path) => path.clone(),
                Layout::Batch(path) => path.join(plan.name()),
                Layout::Memory => return Err(Error::ParquetNeedsDirectory),
            };
            return Err(Error::FeatureFile {
                path: dir.join(PARQUET_FILE),
                reason: format!("hook `{}`: {reason}", plan.name()),
            });
        }
    }
    Ok(())
}

/// Lane `index`'s feature sink: its feature table, or a file in its run directory, or (for
/// outcomes in memory) none.
fn feature_sink(
    features: &Features,
    tables: Option<&mut (dyn TableBatch + 'static)>,
    index: usize,
    run_id: &str,
    contract: &Contract,
    sink: &Sink,
) -> Result<Option<Box<dyn FeatureSink>>, Error> {
    if let Some(tables) = tables {
        return Ok(Some(tables.sink(index, run_id)));
    }
    let Sink::Dir(out) = sink else {
        return Ok(None);
    };
    match features {
        Features::Jsonl => {
            let (file, path) = out.create_file(FEATURES_FILE)?;
            Ok(Some(Box::new(JsonlFile::new(file, path))))
        }
        Features::Parquet(options) => {
            let (file, path) = out.create_raw(PARQUET_FILE)?;
            Ok(Some(Box::new(ParquetFile::new(
                file, path, contract, options,
            )?)))
        }
        Features::Tables(_) => unreachable!("feature tables have a table batch"),
    }
}

/// Ends every lane, writes the batch's directory, and records the runs.
fn finish(
    finishing: Finishing,
    lanes: Vec<Lane>,
    endings: Endings,
    settled: Settled,
    input: crate::provenance::InputRecord,
) -> Result<Executed, Error> {
    let state = match &endings.batch {
        Ended::Completed => BatchState::Succeeded,
        Ended::Cancelled => BatchState::Cancelled,
        Ended::Failed(_) => BatchState::Failed,
    };
    let mut hooks = Vec::with_capacity(lanes.len());
    let mut configs = Vec::with_capacity(lanes.len());
    for (lane, own) in lanes.into_iter().zip(&endings.own) {
        let name = lane.plan().name().to_owned();
        configs.push(lane.plan().config_json().to_owned());
        let (run, kept) = lane.finish(lane_ending(own.as_ref(), &endings.batch), input.clone())?;
        let (outcomes, logs) = match kept {
            Kept::Dir => (None, Vec::new()),
            Kept::Memory(outcomes, logs) => (Some(outcomes), logs),
        };
        hooks.push(HookResult {
            name,
            run,
            outcomes,
            logs,
            dir: None,
        });
    }
    let out_dir = match &finishing.layout {
        Layout::Run(path) | Layout::Batch(path) => Some(absolute(path)),
        Layout::Memory => None,
    };
    for hook in &mut hooks {
        hook.dir = match &finishing.layout {
            Layout::Run(_) => out_dir.clone(),
            Layout::Batch(_) => out_dir.as_ref().map(|d| d.join(&hook.name)),
            Layout::Memory => None,
        };
    }
    let summary = BatchSummary {
        batch_id: finishing.batch_id.clone(),
        idempotency_key: finishing.idempotency_key.clone(),
        snapshot_digest: finishing.snapshot_digest.clone(),
        state,
        records: settled.records,
        hooks: hooks
            .iter()
            .map(|h| BatchHookSummary {
                name: h.name.clone(),
                version: h.run.hook.version,
                digest: h.run.hook.digest.clone(),
                run_id: h.run.run_id.clone(),
                status: h.run.status,
                records: h.run.records,
            })
            .collect(),
        out_dir: out_dir.clone(),
        started_at: finishing.started_at.clone(),
        finished_at: now_rfc3339(),
    };
    if let Some(dir) = settled.batch_dir {
        let mut json = serde_json::to_vec_pretty(&summary).expect("a batch summary serializes");
        json.push(b'\n');
        dir.finish(&json)?;
    }
    let result = BatchResult {
        batch_id: finishing.batch_id,
        idempotency_key: finishing.idempotency_key,
        snapshot_digest: finishing.snapshot_digest,
        state,
        records: settled.records,
        passed: matches!(finishing.layout, Layout::Memory).then_some(settled.passed),
        out_dir,
        hooks,
        reused: false,
    };
    let Some(recorder) = finishing.recorder else {
        return Ok(Executed {
            result,
            recorded: None,
        });
    };
    let recorded_dir = |hook: &HookResult| {
        hook.dir
            .as_ref()
            .filter(|_| finishing.record_out_dir)
            .map(|d| d.display().to_string())
    };
    if let Layout::Run(_) = finishing.layout {
        let hook = &result.hooks[0];
        let out_dir = recorded_dir(hook);
        record_run(
            recorder.as_ref(),
            finishing.tables,
            &hook.run,
            &configs[0],
            out_dir.as_deref(),
        )?;
        return Ok(Executed {
            result,
            recorded: None,
        });
    }
    // Only a batch that succeeded holds its key for good.
    let key = (state == BatchState::Succeeded)
        .then_some(result.idempotency_key.as_deref())
        .flatten();
    let out_dirs: Vec<Option<String>> = result.hooks.iter().map(recorded_dir).collect();
    let runs: Vec<RunEntry<'_>> = result
        .hooks
        .iter()
        .zip(&configs)
        .zip(&out_dirs)
        .map(|((hook, config), out_dir)| RunEntry {
            record: &hook.run,
            config,
            out_dir: out_dir.as_deref(),
        })
        .collect();
    let summary_json = serde_json::to_value(&summary).expect("a batch summary serializes");
    let batch = NewBatch {
        batch_id: &result.batch_id,
        idempotency_key: key,
        snapshot_digest: &result.snapshot_digest,
        runs: &runs,
        summary: &summary_json,
    };
    let recorded = match finishing.tables {
        Some(tables) => tables.record_batch(batch),
        None => recorder.record_batch(batch),
    };
    let recorded = recorded.map_err(|error| Error::NotRecorded {
        run_id: result.batch_id.clone(),
        out_dir: result.out_dir.as_ref().map(|d| d.display().to_string()),
        source: Box::new(error),
    })?;
    drop(runs);
    Ok(Executed {
        result,
        recorded: Some(recorded),
    })
}

/// Hands a finished run to its recorder (through the feature tables' transaction, when it
/// wrote to them); a failure says the output is complete but unrecorded.
fn record_run(
    recorder: &dyn Recorder,
    tables: Option<Box<dyn TableBatch>>,
    record: &RunRecord,
    config: &str,
    out_dir: Option<&str>,
) -> Result<(), Error> {
    let entry = RunEntry {
        record,
        config,
        out_dir,
    };
    match tables {
        Some(tables) => tables.record_run(entry),
        None => recorder.record_run(entry),
    }
    .map_err(|error| Error::NotRecorded {
        run_id: record.run_id.clone(),
        out_dir: out_dir.map(str::to_owned),
        source: Box::new(error),
    })
}
