//! The idempotency memory of one host: the batches it remembers by key (in flight, and the
//! last finished ones), so racing `begin`s with one key join one batch. The registry
//! remembers succeeded batches for good; this covers the process.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::handle::Shared;
use crate::error::Error;
use crate::exec::{BatchState, Gate};

/// How many finished batches a [`Hookhost`](super::Hookhost) remembers in memory for their
/// idempotency keys (the registry remembers succeeded ones for good).
pub const DEFAULT_KEEP_FINISHED: usize = 256;

/// The batches a host remembers by idempotency key: in flight, and the last finished ones.
/// A key is claimed by the first `begin` that uses it, before it checks the registry; later
/// `begin`s with the key join that batch.
#[derive(Debug, Default)]
pub(super) struct Remembered {
    by_key: HashMap<(String, String), Arc<Shared>>,
    /// Keys in the order they were claimed, to forget the oldest finished ones.
    order: VecDeque<(String, String)>,
}

impl Remembered {
    /// The batch holding `key`: in flight, or finished and succeeded.
    pub fn holder(&mut self, key: &(String, String)) -> Option<Arc<Shared>> {
        let shared = self.by_key.get(key)?;
        match shared.state() {
            BatchState::Failed | BatchState::Cancelled => {
                self.by_key.remove(key);
                None
            }
            _ => Some(shared.clone()),
        }
    }

    pub fn claim(&mut self, key: (String, String), gate: Arc<Gate>) {
        let shared = Shared::new(uuid::Uuid::now_v7().to_string(), gate);
        self.by_key.insert(key.clone(), shared);
        self.order.push_back(key);
        // Forget the oldest finished batches beyond the bound; the registry still has them.
        while self.order.len() > DEFAULT_KEEP_FINISHED {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            match self.by_key.get(&oldest) {
                Some(shared) if !shared.state().is_finished() => {
                    self.order.push_back(oldest);
                    break;
                }
                _ => {
                    self.by_key.remove(&oldest);
                }
            }
        }
    }

    pub fn claimed(&self, key: &(String, String)) -> Option<Arc<Shared>> {
        self.by_key.get(key).cloned()
    }

    pub fn release(&mut self, key: &(String, String)) {
        if let Some(shared) = self.by_key.remove(key) {
            shared.finish(Err(Arc::new(Error::Cancelled)));
        }
    }
}
