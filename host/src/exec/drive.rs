//! [`execute`]: read a flight of chunks, hand it to the workers (one job per hook), settle the
//! answers in input order, and when the input ends (or the batch cannot go on) finish every
//! run, write the batch's record and hand the runs to the recorder.
//!
//! Three kinds of thread: the workers run the calls; a reader thread reads, checks and hashes
//! the input and queues the flights; the calling thread — the driver — settles the answers
//! and writes the outputs, so reading and writing are pipelined. A source that may wait on
//! its producer is read by the driver itself, between settling (see `Feeder`).

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
                settled: &mut settled,
                chunk_size: knobs.chunk_size,
                jobs,
                cancel: &knobs.cancel,
                started,
                progress,
            };
            driver.run(source, gate.as_ref())
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
    /// The input's bytes read when this flight had been read, for progress.
    bytes_read: u64,
}

/// What the reading side hands the driver: a flight whose jobs are queued (or about to be),
/// or the end of the input (`Err` when reading ended the batch: cancelled, or the input could
/// not be read).
enum Feed {
    Flight {
        chunks: Arc<Vec<Chunk>>,
        bytes_read: u64,
    },
    End(Result<(), Ended>),
}

/// Where the driver's flights come from.
enum Feeder<'s> {
    /// The driver reads them itself, between settling, up to `window` flights ahead: for a
    /// source that may wait on its producer, so what it gave is settled while it waits (and a
    /// batch that stopped never waits on it).
    Inline {
        source: &'s mut dyn Source,
        jobs: mpsc::Sender<Job>,
        window: usize,
        flight_chunks: usize,
        next_seq: u64,
    },
    /// A reader thread reads, checks and hashes them and queues their jobs, up to as many
    /// flights ahead as it holds slots; the driver gives a slot back as it settles a flight.
    Thread {
        feeds: mpsc::Receiver<Feed>,
        slots: mpsc::Sender<()>,
    },
}

/// What the reader thread needs besides the source and its channels.
struct Reading<'a> {
    chunk_size: usize,
    flight_chunks: usize,
    lanes: usize,
    cancel: &'a AtomicBool,
    /// Set by the driver once nothing more will be settled: read no further.
    stop: &'a AtomicBool,
}

impl Reading<'_> {
    /// The reader thread's loop: for each slot, a flight read, announced to the driver, then
    /// queued for the workers (announced first, so the driver knows every flight it gets an
    /// answer for); then the end of the input.
    fn run(
        self,
        source: &mut dyn Source,
        jobs: mpsc::Sender<Job>,
        feeds: mpsc::Sender<Feed>,
        slots: mpsc::Receiver<()>,
    ) {
        let mut seq = 0;
        let mut input_done = false;
        while !input_done {
            if slots.recv().is_err() || self.stop.load(Ordering::SeqCst) {
                return;
            }
            let chunks = match read_flight(
                source,
                self.chunk_size,
                self.flight_chunks,
                self.cancel,
                &mut input_done,
            ) {
                Ok(chunks) => chunks,
                Err(ended) => {
                    let _ = feeds.send(Feed::End(Err(ended)));
                    return;
                }
            };
            if chunks.is_empty() || self.stop.load(Ordering::SeqCst) {
                continue;
            }
            let chunks = Arc::new(chunks);
            let feed = Feed::Flight {
                chunks: chunks.clone(),
                bytes_read: source.bytes_read(),
            };
            if feeds.send(feed).is_err() {
                return;
            }
            queue(&jobs, seq, self.lanes, &chunks);
            seq += 1;
        }
        let _ = feeds.send(Feed::End(Ok(())));
    }
}

/// Queues one job per lane for flight `seq`.
fn queue(jobs: &mpsc::Sender<Job>, seq: u64, lanes: usize, chunks: &Arc<Vec<Chunk>>) {
    for lane in 0..lanes {
        let job = Job {
            seq,
            lane,
            chunks: chunks.clone(),
        };
        jobs.send(job).expect("the workers outlive the queue");
    }
}

/// Reads up to `chunks` chunks (sets `input_done` at the end of the input). A cancellation
/// or an input that cannot be read ends the batch: what was read of this flight is not run,
/// and nothing more is settled.
fn read_flight(
    source: &mut dyn Source,
    chunk_size: usize,
    chunks: usize,
    cancel: &AtomicBool,
    input_done: &mut bool,
) -> Result<Vec<Chunk>, Ended> {
    let mut flight = Vec::with_capacity(chunks);
    while flight.len() < chunks {
        if cancel.load(Ordering::SeqCst) {
            return Err(Ended::Cancelled);
        }
        match source.next_chunk(chunk_size) {
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

/// The reader thread's next feed; its end, should the thread have died without saying so.
fn recv_feed(feeds: &mpsc::Receiver<Feed>) -> Feed {
    feeds.recv().unwrap_or_else(|_| {
        Feed::End(Err(Ended::Failed(
            "the input's reader thread stopped".into(),
        )))
    })
}

/// The flights out and how the batch stands, as the driver settles them.
struct Flights {
    in_flight: VecDeque<InFlight>,
    /// The sequence number of `in_flight`'s first flight.
    first_seq: u64,
    /// Whether the reading side has ended (the input, or the batch).
    read_all: bool,
    /// Whether chunks are still settled: not after the first chunk that could not run.
    settling: bool,
    endings: Endings,
    /// The input's bytes read by the latest flight, for progress.
    bytes_read: u64,
}

impl Flights {
    /// Takes in what the reading side handed over.
    fn take(&mut self, feed: Feed, lanes: usize) {
        match feed {
            Feed::Flight { chunks, bytes_read } => {
                self.in_flight.push_back(InFlight {
                    answers: chunks
                        .iter()
                        .map(|_| (0..lanes).map(|_| None).collect())
                        .collect(),
                    done: 0,
                    chunks,
                    bytes_read,
                });
            }
            Feed::End(ended) => {
                self.read_all = true;
                if let Err(ended) = ended {
                    self.endings.batch = ended;
                    self.settling = false;
                }
            }
        }
    }
}

struct Driver<'a> {
    lanes: &'a mut [Lane],
    settled: &'a mut Settled,
    chunk_size: usize,
    jobs: usize,
    cancel: &'a Arc<AtomicBool>,
    started: Instant,
    progress: &'a mut dyn FnMut(&Progress),
}

impl Driver<'_> {
    /// Starts the workers (and, for a source that does not wait on a producer, the reader
    /// thread), feeds them, settles their answers; returns how the batch ended.
    fn run(&mut self, source: &mut dyn Source, gate: Option<&Arc<super::Gate>>) -> Endings {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Mutex::new(job_rx);
        let answers = Answers::default();
        let abort = AtomicBool::new(false);
        let stop = AtomicBool::new(false);
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
            // Two flights per worker and one more: a worker that finishes before the one
            // working on an earlier flight (whose answers are settled first) still finds work
            // queued. A source that may wait on its producer is read no further ahead than one
            // chunk per worker and one more, so what it gave is settled while it waits.
            let feeder = if source.may_wait() {
                Feeder::Inline {
                    source,
                    jobs: job_tx,
                    window: self.jobs + 1,
                    flight_chunks: 1,
                    next_seq: 0,
                }
            } else {
                let (feed_tx, feeds) = mpsc::channel();
                let (slots, slot_rx) = mpsc::channel();
                for _ in 0..2 * self.jobs + 1 {
                    slots.send(()).expect("the slots' receiver is here");
                }
                let reading = Reading {
                    chunk_size: self.chunk_size,
                    flight_chunks: (FLIGHT_RECORDS / self.chunk_size).max(1),
                    lanes: self.lanes.len(),
                    cancel: self.cancel,
                    stop: &stop,
                };
                std::thread::Builder::new()
                    .name("hookhost-reader".into())
                    .spawn_scoped(scope, move || reading.run(source, job_tx, feed_tx, slot_rx))
                    .expect("spawning the reader thread");
                Feeder::Thread { feeds, slots }
            };
            // Dropping the feeder when done closes the job queue (directly, or by ending the
            // reader thread), which ends the workers once they are idle; every job the driver
            // knows of has been answered by then.
            self.feed_and_settle(feeder, &answers, &abort, &stop)
        })
    }

    fn feed_and_settle(
        &mut self,
        mut feeder: Feeder<'_>,
        answers: &Answers,
        abort: &AtomicBool,
        stop: &AtomicBool,
    ) -> Endings {
        let lanes = self.lanes.len();
        let mut flights = Flights {
            in_flight: VecDeque::new(),
            first_seq: 0,
            read_all: false,
            settling: true,
            endings: Endings {
                batch: Ended::Completed,
                own: vec![None; lanes],
            },
            bytes_read: 0,
        };
        let mut received: Vec<Done> = Vec::new();
        loop {
            self.feed(&mut feeder, &mut flights, lanes);
            if flights.in_flight.is_empty() {
                if flights.read_all || !flights.settling {
                    stop.store(true, Ordering::SeqCst);
                    return flights.endings;
                }
                // The reader thread is reading the next flight: wait for it.
                if let Feeder::Thread { feeds, .. } = &feeder {
                    flights.take(recv_feed(feeds), lanes);
                }
                continue;
            }
            answers.take(&mut received);
            for done in received.drain(..) {
                // The reader announces a flight before queuing its jobs, so an answer's flight
                // is (at the latest) waiting in the feed.
                while done.seq >= flights.first_seq + flights.in_flight.len() as u64 {
                    let Feeder::Thread { feeds, .. } = &feeder else {
                        unreachable!("the driver queued every flight it answers for");
                    };
                    flights.take(recv_feed(feeds), lanes);
                }
                let flight = &mut flights.in_flight[(done.seq - flights.first_seq) as usize];
                self.lanes[done.lane].add_stats(done.stats);
                flight.answers[done.chunk][done.lane] = Some(done.ran);
            }
            // Settle, in input order, every chunk all lanes have answered.
            while let Some(flight) = flights.in_flight.front_mut() {
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
                    if !flights.settling {
                        continue;
                    }
                    flights.bytes_read = flights.bytes_read.max(flight.bytes_read);
                    let bytes_read = flights.bytes_read;
                    let settled = self.settle(
                        &flight.chunks[index],
                        calls,
                        bytes_read,
                        &mut flights.endings,
                    );
                    if let Err(failed) = settled {
                        flights.settling = false;
                        stop.store(true, Ordering::SeqCst);
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
                flights.in_flight.pop_front();
                flights.first_seq += 1;
                if let Feeder::Thread { slots, .. } = &feeder {
                    // The reader may have ended already.
                    let _ = slots.send(());
                }
            }
        }
    }

    /// Takes in the flights the reading side has ready: read here, while fewer than the
    /// window are out; or whatever the reader thread has announced.
    fn feed(&mut self, feeder: &mut Feeder<'_>, flights: &mut Flights, lanes: usize) {
        match feeder {
            Feeder::Inline {
                source,
                jobs,
                window,
                flight_chunks,
                next_seq,
            } => {
                while flights.settling && !flights.read_all && flights.in_flight.len() < *window {
                    let mut input_done = false;
                    let read = read_flight(
                        &mut **source,
                        self.chunk_size,
                        *flight_chunks,
                        self.cancel,
                        &mut input_done,
                    );
                    match read {
                        Ok(chunks) if chunks.is_empty() => {}
                        Ok(chunks) => {
                            let chunks = Arc::new(chunks);
                            queue(jobs, *next_seq, lanes, &chunks);
                            *next_seq += 1;
                            let bytes_read = source.bytes_read();
                            flights.take(Feed::Flight { chunks, bytes_read }, lanes);
                        }
                        Err(ended) => flights.take(Feed::End(Err(ended)), lanes),
                    }
                    if input_done {
                        flights.take(Feed::End(Ok(())), lanes);
                    }
                }
            }
            Feeder::Thread { feeds, .. } => {
                while let Ok(feed) = feeds.try_recv() {
                    flights.take(feed, lanes);
                }
            }
        }
    }

    /// Settles one chunk in every lane, then at the batch level. A lane whose call could not
    /// run ends the batch (a failure outranks a cancellation); the other lanes still settle
    /// this chunk, but the batch does not count it.
    fn settle(
        &mut self,
        chunk: &Chunk,
        calls: Vec<Ran>,
        bytes_read: u64,
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
            bytes_read,
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
