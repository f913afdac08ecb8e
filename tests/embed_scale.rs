//! A stream of 1 000 000 small records through the embedding API runs in bounded memory
//! (issue 4). Alone in its own test binary, so the process's peak memory is this test's.

mod common;

use std::io::BufRead;
use std::pin::Pin;
use std::task::{Context, Poll};

use common::{host, load};
use hookhost::embed::{Batch, BatchOptions, BatchState, Hookhost, Record, Snapshot, SnapshotHook};
use hookhost::provenance::Counts;
use serde_json::json;

const RECORDS: u64 = 1_000_000;
/// The stated bound on how far the process's peak resident memory may rise while the batch
/// runs. What grows with the batch is only the duplicate-id table (20 bytes per id plus the
/// hash table's slack, about 50 MiB at a million ids); the rest — a chunk of records, the
/// sandboxes, the output buffers — is fixed. Keeping the outcomes in memory instead would
/// take several hundred MiB at this size.
const PEAK_BOUND_BYTES: u64 = 128 << 20;

/// Records made on demand, as a queue consumer would hand them over.
struct Generated {
    next: u64,
}

impl futures_core::Stream for Generated {
    type Item = Record;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Record>> {
        if self.next == RECORDS {
            return Poll::Ready(None);
        }
        let n = self.next;
        self.next += 1;
        Poll::Ready(Some(Record::new(format!("r{n}"), json!({"n": n}))))
    }
}

/// `VmHWM` (peak resident set) and `VmRSS` of this process, in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_streamed_records_run_in_bounded_memory() {
    let snapshot = Snapshot::new(vec![SnapshotHook::new("chaos", load("chaos"))]).unwrap();
    let hookhost = Hookhost::new(host().clone(), None, 2);
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("out");
    // Warm up (engine, sandbox pools, buffers) on a small batch, then reset the peak.
    let warm = hookhost
        .begin(
            &snapshot,
            Batch::from_records((0..2000).map(|n| Record::new(format!("w{n}"), json!({})))),
            BatchOptions::default().with_out(temp.path().join("warm")),
        )
        .await
        .unwrap();
    assert_eq!(warm.await.unwrap().state, BatchState::Succeeded);
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS (Linux)");
    let (_, before) = memory();

    let options = BatchOptions::default().with_out(&out).with_chunk_size(256);
    let handle = hookhost
        .begin(
            &snapshot,
            Batch::from_stream(Generated { next: 0 }),
            options,
        )
        .await
        .unwrap();
    let result = handle.await.unwrap();
    let (peak, _) = memory();
    let rise = peak.saturating_sub(before);
    eprintln!(
        "{RECORDS} records: peak RSS {} MiB, {} MiB above the {} MiB before",
        peak >> 20,
        rise >> 20,
        before >> 20
    );

    let all = Counts {
        total: RECORDS,
        passed: RECORDS,
        rejected: 0,
        errored: 0,
    };
    assert_eq!(result.state, BatchState::Succeeded);
    assert_eq!(result.records, all);
    assert_eq!(result.hooks[0].run.records, all);
    assert_eq!(result.hooks[0].run.outputs["features.jsonl"].rows, RECORDS);
    let passed = std::fs::File::open(out.join("passed.jsonl")).unwrap();
    let mut lines = std::io::BufReader::new(passed).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "{\"id\":\"r0\"}");
    assert_eq!(lines.count() as u64, RECORDS - 1);
    assert!(
        rise < PEAK_BOUND_BYTES,
        "peak memory rose by {} MiB, over the bound of {} MiB",
        rise >> 20,
        PEAK_BOUND_BYTES >> 20
    );
}
