//! The workers a batch runs on: a fixed set of threads, started once per batch and kept for
//! all of its chunks, each with its own runner per hook (no thread per chunk, nothing shared
//! on the hot path but the job queue). A worker takes a job — one hook over one chunk — runs
//! it in a sandbox, and sends back the outcomes, the guest output and what it cost.
//!
//! A [`Gate`] bounds the sandboxes running at once across every batch that shares it (the
//! embedding API's `max_sandboxes`): a worker waits for a permit before each call, so a busy
//! host makes batches wait; it does not fail them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
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

/// One hook (a lane, by index) over one chunk (by its sequence number in the batch).
pub(crate) struct Job {
    pub seq: u64,
    pub lane: usize,
    pub chunk: Arc<Chunk>,
}

/// A job's answer.
pub(crate) struct Done {
    pub seq: u64,
    pub lane: usize,
    pub ran: Result<Vec<RecordOutcome>, Error>,
    pub logs: Vec<u8>,
    pub stats: RunnerStats,
}

/// What a worker needs besides its runners.
pub(crate) struct WorkerContext<'a> {
    pub jobs: &'a Mutex<Receiver<Job>>,
    pub done: Sender<Done>,
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
        let ran = run_job(runner, &job, &context);
        let done = Done {
            seq: job.seq,
            lane: job.lane,
            ran,
            logs: runner.take_logs(),
            stats: runner.take_stats(),
        };
        if context.done.send(done).is_err() {
            return;
        }
    }
}

fn run_job(
    runner: &mut BatchRunner,
    job: &Job,
    context: &WorkerContext<'_>,
) -> Result<Vec<RecordOutcome>, Error> {
    if context.abort.load(Ordering::SeqCst) || context.cancel.load(Ordering::SeqCst) {
        return Err(Error::Cancelled);
    }
    let _permit = match context.gate {
        Some(gate) => Some(gate.acquire(context.cancel).ok_or(Error::Cancelled)?),
        None => None,
    };
    runner.run_chunk(&job.chunk.records)
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
