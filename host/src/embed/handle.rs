//! A begun batch as its callers hold it: [`BatchHandle`] to observe, cancel and await it, and
//! the [`Observation`] it gives.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::Error;
use crate::exec::{BatchResult, BatchState, Gate, HookProgress};
use crate::provenance::Counts;

/// A batch's state and counts at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Where the batch is.
    pub state: BatchState,
    /// Records settled by every hook: `passed` every hook, `rejected` by at least one (and
    /// errored by none), `errored` in at least one. `total` is their sum.
    pub records: Counts,
    /// Each hook's own counts, in snapshot order.
    pub hooks: Vec<HookProgress>,
    /// Input read so far, in bytes (of JSONL, or of the records as JSONL lines).
    pub input_bytes: u64,
}

/// A begun batch. Several handles may share one batch (an idempotency key joined); each
/// observes, cancels and awaits the same batch.
#[derive(Debug)]
pub struct BatchHandle {
    shared: Arc<Shared>,
    observation: watch::Receiver<Observation>,
    result: watch::Receiver<Option<Finished>>,
    reused: bool,
}

pub(super) type Finished = Result<Arc<BatchResult>, Arc<Error>>;

/// What a batch's handles and its driver share.
#[derive(Debug)]
pub(super) struct Shared {
    pub batch_id: String,
    pub cancel: Arc<AtomicBool>,
    /// Wakes a batch waiting on its input stream when it is cancelled.
    pub cancelled: Arc<tokio::sync::Notify>,
    /// Wakes the batch's workers waiting for a sandbox when it is cancelled.
    gate: Arc<Gate>,
    pub observation: watch::Sender<Observation>,
    result: watch::Sender<Option<Finished>>,
}

impl Shared {
    pub fn new(batch_id: String, gate: Arc<Gate>) -> Arc<Shared> {
        let observation = Observation {
            state: BatchState::Pending,
            records: Counts::default(),
            hooks: Vec::new(),
            input_bytes: 0,
        };
        Arc::new(Shared {
            batch_id,
            cancel: Arc::new(AtomicBool::new(false)),
            cancelled: Arc::new(tokio::sync::Notify::new()),
            gate,
            observation: watch::Sender::new(observation),
            result: watch::Sender::new(None),
        })
    }

    pub fn finish(&self, finished: Finished) {
        let state = match &finished {
            Ok(result) => result.state,
            Err(_) => BatchState::Failed,
        };
        let records = finished.as_ref().map(|r| r.records).ok();
        self.observation.send_modify(|o| {
            o.state = state;
            if let Some(records) = records {
                o.records = records;
            }
        });
        self.result.send_replace(Some(finished));
    }

    pub fn state(&self) -> BatchState {
        self.observation.borrow().state
    }
}

impl BatchHandle {
    pub(super) fn new(shared: Arc<Shared>, reused: bool) -> BatchHandle {
        BatchHandle {
            observation: shared.observation.subscribe(),
            result: shared.result.subscribe(),
            shared,
            reused,
        }
    }

    /// The batch's id.
    pub fn batch_id(&self) -> &str {
        &self.shared.batch_id
    }

    /// Whether `begin` returned an earlier batch for its idempotency key.
    pub fn is_reused(&self) -> bool {
        self.reused
    }

    /// The batch's state and counts now.
    pub fn observe(&self) -> Observation {
        self.observation.borrow().clone()
    }

    /// Waits until the state or counts change (after each chunk), then returns them. Returns
    /// at once when the batch has finished.
    pub async fn changed(&mut self) -> Observation {
        if !self.observation.borrow().state.is_finished() {
            // The sender lives as long as the handle, so this only returns on a change.
            let _ = self.observation.changed().await;
        }
        self.observation.borrow_and_update().clone()
    }

    /// Stops the batch: guest code stops within one epoch tick, the batch ends `Cancelled`,
    /// and the outcomes already settled are kept and counted. Does nothing to a finished
    /// batch.
    pub fn cancel(&self) {
        self.shared.cancel.store(true, Ordering::SeqCst);
        // A batch waiting on a stream that has nothing to give, or on a sandbox, is woken too.
        self.shared.cancelled.notify_one();
        self.shared.gate.wake();
    }

    /// The batch's cancel flag, to cancel from elsewhere (a signal handler, another task):
    /// setting it is [`BatchHandle::cancel`], except that a batch waiting on an input stream
    /// sees it only when the stream yields.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.shared.cancel.clone()
    }

    /// Waits for the batch to end. The error is for a batch whose outputs could not be
    /// written or recorded (shared, since several handles may wait on one batch).
    pub async fn wait(mut self) -> Result<Arc<BatchResult>, Arc<Error>> {
        let finished = self
            .result
            .wait_for(Option::is_some)
            .await
            .expect("the batch's sender lives in the handle");
        finished.clone().expect("waited for Some")
    }
}

impl IntoFuture for BatchHandle {
    type Output = Result<Arc<BatchResult>, Arc<Error>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.wait())
    }
}
