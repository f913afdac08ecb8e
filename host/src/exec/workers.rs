//! The workers a batch runs on: a fixed set of threads, started once per batch and kept for
//! all of its chunks, each with its own runner per hook (no thread per chunk, nothing shared
//! on the hot path but the job queue and the answers). A worker takes a job — one hook over
//! one flight of chunks — runs each chunk in its own sandbox call, and leaves each chunk's
//! outcomes, guest output and cost in the [`Answers`] as soon as it has them.
//!
//! A flight holds several small chunks ([`FLIGHT_RECORDS`]), so a worker takes work once per
//! flight, and it wakes the driver only when it ends one (or a chunk could not run); the
//! driver also looks at the answers every [`ANSWER_POLL`] while it waits, so the chunks of a
//! flight are settled, and reported, even while a later chunk of it runs long.
//!
//! A [`Gate`] bounds the sandboxes running at once across every batch that shares it (the
//! embedding API's `max_sandboxes`): a worker waits for a permit before each call, so a busy
//! host makes batches wait; it does not fail them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::error::Error;
use crate::input::Chunk;
use crate::runner::{BatchRunner, RecordOutcome, RunnerStats};

/// How often a worker waiting for a permit looks at a cancel flag set without waking the gate
/// (from a signal handler, say). [`Gate::wake`] wakes it at once.
const CANCEL_CHECK: Duration = Duration::from_millis(50);

/// A counting semaphore bounding the sandboxes running at once, across the batches sharing it.
#[derive(Debug)]
pub struct Gate {
    free: Mutex<usize>,
    freed: Condvar,
    size: usize,
}

impl Gate {
    /// A gate letting `sandboxes` (at least 1) run at once.
    pub fn new(sandboxes: usize) -> Gate {
        let size = sandboxes.max(1);
        Gate {
            free: Mutex::new(size),
            freed: Condvar::new(),
            size,
        }
    }

    /// How many sandboxes may run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Wakes every waiter, so one whose batch was cancelled stops waiting.
    pub fn wake(&self) {
        self.freed.notify_all();
    }

    /// Waits for a permit; `None` once `cancel` is set.
    fn acquire(self: &Arc<Gate>, cancel: &AtomicBool) -> Option<Permit> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if cancel.load(Ordering::SeqCst) {
                return None;
            }
            if *free > 0 {
                *free -= 1;
                return Some(Permit(self.clone()));
            }
            free = self
                .freed
                .wait_timeout(free, CANCEL_CHECK)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A sandbox's place at the gate, given back when dropped.
struct Permit(Arc<Gate>);

impl Drop for Permit {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

/// About how many records a flight holds: chunks are read and handed to a worker this many
/// records at a time (at least one chunk a flight). Calls stay one chunk each, so the outputs
/// do not depend on it.
pub(crate) const FLIGHT_RECORDS: usize = 128;

/// How long the driver waits for answers before looking again without being woken.
pub(crate) const ANSWER_POLL: Duration = Duration::from_millis(5);

/// One hook (a lane, by index) over one flight of chunks (by its sequence number in the
/// batch).
pub(crate) struct Job {
    pub seq: u64,
    pub lane: usize,
    pub chunks: Arc<Vec<Chunk>>,
}

/// One chunk's answer: chunk `chunk` of flight `seq`, for lane `lane`.
pub(crate) struct Done {
    pub seq: u64,
    pub chunk: usize,
    pub lane: usize,
    pub ran: Ran,
    pub stats: RunnerStats,
}

/// One chunk's call: its outcomes (or why it could not run) and its guest output.
pub(crate) struct Ran {
    pub ran: Result<Vec<RecordOutcome>, Error>,
    pub logs: Vec<u8>,
}

/// Where the workers leave their answers for the driver.
#[derive(Default)]
pub(crate) struct Answers {
    queue: Mutex<VecDeque<Done>>,
    posted: Condvar,
}

impl Answers {
    /// Leaves an answer; wakes the driver if `wake`.
    fn post(&self, done: Done, wake: bool) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(done);
        if wake {
            self.posted.notify_one();
        }
    }

    /// Moves every answer left so far into `into`, first waiting up to [`ANSWER_POLL`] (or
    /// until woken) when there is none.
    pub(crate) fn take(&self, into: &mut Vec<Done>) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.is_empty() {
            queue = self
                .posted
                .wait_timeout(queue, ANSWER_POLL)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        into.extend(queue.drain(..));
    }
}

/// What a worker needs besides its runners.
pub(crate) struct WorkerContext<'a> {
    pub jobs: &'a Mutex<Receiver<Job>>,
    pub answers: &'a Answers,
    pub gate: Option<&'a Arc<Gate>>,
    pub cancel: &'a AtomicBool,
    /// Set when the batch has failed: jobs not yet started are skipped.
    pub abort: &'a AtomicBool,
}

/// A worker's loop: takes jobs until the queue closes. `runners` has one runner per lane.
pub(crate) fn work(mut runners: Vec<BatchRunner>, context: WorkerContext<'_>) {
    loop {
        let job = {
            let queue = context.jobs.lock().unwrap_or_else(|p| p.into_inner());
            queue.recv()
        };
        let Ok(job) = job else { return };
        let runner = &mut runners[job.lane];
        let mut failed = false;
        for (index, chunk) in job.chunks.iter().enumerate() {
            // Nothing after a chunk that could not run is settled: the rest are not run.
            let ran = match failed {
                true => Err(Error::Cancelled),
                false => run_chunk(runner, chunk, &context),
            };
            failed = ran.is_err();
            let done = Done {
                seq: job.seq,
                chunk: index,
                lane: job.lane,
                ran: Ran {
                    ran,
                    logs: runner.take_logs(),
                },
                stats: runner.take_stats(),
            };
            let last = index + 1 == job.chunks.len();
            context.answers.post(done, last || failed);
        }
    }
}

fn run_chunk(
    runner: &mut BatchRunner,
    chunk: &Chunk,
    context: &WorkerContext<'_>,
) -> Result<Vec<RecordOutcome>, Error> {
    if context.abort.load(Ordering::SeqCst) || context.cancel.load(Ordering::SeqCst) {
        return Err(Error::Cancelled);
    }
    let _permit = match context.gate {
        Some(gate) => Some(gate.acquire(context.cancel).ok_or(Error::Cancelled)?),
        None => None,
    };
    runner.run_chunk(&chunk.records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_bounds_permits_and_gives_them_back() {
        let gate = Arc::new(Gate::new(2));
        let never = AtomicBool::new(false);
        let a = gate.acquire(&never).unwrap();
        let _b = gate.acquire(&never).unwrap();
        assert_eq!(*gate.free.lock().unwrap(), 0);
        drop(a);
        assert_eq!(*gate.free.lock().unwrap(), 1);
        let cancelled = AtomicBool::new(true);
        assert!(
            gate.acquire(&cancelled).is_none(),
            "a cancelled waiter gets no permit"
        );
    }

    #[test]
    fn a_waiter_gets_the_permit_another_thread_gives_back() {
        let gate = Arc::new(Gate::new(1));
        let never = AtomicBool::new(false);
        let held = gate.acquire(&never).unwrap();
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || gate.acquire(&AtomicBool::new(false)).is_some())
        };
        std::thread::sleep(Duration::from_millis(20));
        drop(held);
        assert!(waiter.join().unwrap());
    }
}
