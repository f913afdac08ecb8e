//! Where a batch's records come from: [`Batch`], and its adapters to the execution layer's
//! [`Source`](crate::input::Source).
//!
//! An iterator and a JSONL file are read on the blocking thread that executes the batch. A
//! stream is polled from that thread through the runtime's handle (`Handle::block_on`, which
//! a blocking thread may do), so its producer keeps running on the runtime; a cancelled
//! batch stops waiting on a stream that has nothing to give.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use futures_core::Stream;

use crate::error::Error;
use crate::input::{Chunk, FilesRoot, Input, Record, RecordChecker, Source, ValuesSource};
use crate::provenance::InputRecord;

/// The records of a batch: an iterator, a stream, or a JSONL file. Each is read a chunk at a
/// time, as the hooks are ready for it.
pub struct Batch {
    source: Records,
}

enum Records {
    Iter(Box<dyn Iterator<Item = Record> + Send>),
    Stream(Pin<Box<dyn Stream<Item = Record> + Send>>),
    Jsonl(Input),
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.source {
            Records::Iter(_) => "records",
            Records::Stream(_) => "stream",
            Records::Jsonl(input) => return f.debug_tuple("Batch").field(input).finish(),
        };
        f.debug_tuple("Batch").field(&kind).finish()
    }
}

impl Batch {
    /// Records from an iterator. It is advanced on a blocking thread, so it may read files.
    pub fn from_records<I>(records: I) -> Batch
    where
        I: IntoIterator<Item = Record>,
        I::IntoIter: Send + 'static,
    {
        Batch {
            source: Records::Iter(Box::new(records.into_iter())),
        }
    }

    /// Records from an async stream (a channel receiver, a queue consumer), pulled as the
    /// hooks are ready for them.
    pub fn from_stream<S>(records: S) -> Batch
    where
        S: Stream<Item = Record> + Send + 'static,
    {
        Batch {
            source: Records::Stream(Box::pin(records)),
        }
    }

    /// The records of a JSONL file, with the checks and error lines of `host run`.
    pub fn jsonl(path: impl Into<PathBuf>) -> Batch {
        Batch {
            source: Records::Jsonl(Input::File(path.into())),
        }
    }

    /// The records of JSONL on standard input.
    pub fn stdin() -> Batch {
        Batch {
            source: Records::Jsonl(Input::Stdin),
        }
    }
}

impl Batch {
    /// Opens the batch for reading on a blocking thread, with `files` giving records their
    /// files directories; `cancelled` wakes a wait on a stream.
    pub(super) fn open(
        self,
        files: Option<&std::path::Path>,
        runtime: tokio::runtime::Handle,
        cancelled: Arc<tokio::sync::Notify>,
    ) -> Result<Box<dyn Source>, Error> {
        Ok(match self.source {
            Records::Jsonl(input) => Box::new(input.open(files)?),
            Records::Iter(records) => {
                let files = files.map(FilesRoot::open).transpose()?;
                Box::new(ValuesSource::new(records, files))
            }
            Records::Stream(stream) => {
                let files = files.map(FilesRoot::open).transpose()?;
                Box::new(StreamSource {
                    stream,
                    checker: RecordChecker::new(files),
                    runtime,
                    cancelled,
                })
            }
        })
    }
}

/// A stream of records as a [`Source`], polled from a blocking thread.
struct StreamSource {
    stream: Pin<Box<dyn Stream<Item = Record> + Send>>,
    checker: RecordChecker,
    runtime: tokio::runtime::Handle,
    cancelled: Arc<tokio::sync::Notify>,
}

impl Source for StreamSource {
    fn next_chunk(&mut self, records: usize) -> Result<Chunk, Error> {
        let StreamSource {
            stream,
            checker,
            runtime,
            cancelled,
        } = self;
        runtime.block_on(async {
            let mut chunk = Chunk::default();
            while chunk.records.len() < records {
                let next = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx));
                let next = tokio::select! {
                    next = next => next,
                    // The records read into this chunk are not settled: a cancelled batch
                    // keeps only what its hooks finished.
                    () = cancelled.notified() => return Err(Error::Cancelled),
                };
                match next {
                    Some(record) => chunk.push(checker.check(record)),
                    None => break,
                }
            }
            Ok(chunk)
        })
    }

    fn bytes_read(&self) -> u64 {
        self.checker.bytes_read()
    }

    fn summary(&self) -> InputRecord {
        self.checker.summary()
    }

    fn may_wait(&self) -> bool {
        true
    }
}
