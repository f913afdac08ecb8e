//! Input is streamed (issue 5: `host run` over 1 000 000 records): peak memory does not grow
//! with the number of records, except for the table of id hashes kept to refuse duplicates
//! (20 bytes per record, plus hash-table slack).
//! Alone in its binary so that no other test moves the process's high-water mark.

mod common;

use std::io::Write;

use common::load;
use hookhost::run::{Input, RunRequest, run_to_dir};

/// The process's peak resident memory, from `/proc/self/status`.
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

fn run_records(count: usize) -> u64 {
    let temp = tempfile::tempdir().unwrap();
    let input = temp.path().join("in.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    for i in 0..count {
        writeln!(
            file,
            "{{\"id\":\"record-{i:08}\",\"metadata\":{{\"text\":\"some words here {i}\"}}}}"
        )
        .unwrap();
    }
    file.flush().unwrap();
    drop(file);
    let mut request = RunRequest::new(
        load("text_stats"),
        Input::File(input),
        temp.path().join("out"),
    );
    request.chunk_size = Some(256);
    let record = run_to_dir(request, &mut |_| {}).unwrap();
    assert_eq!(record.records.passed, count as u64);
    record.outputs["features.jsonl"].bytes
}

/// The most peak memory may grow per extra record: the id table's bucket is 21 bytes (20 of
/// entry, 1 of control); a table holds up to 16/7 buckets per entry (load factor 7/8, sizes
/// double), and while it resizes the old table (half the size) is alive too:
/// 21 × 16/7 × 1.5 = 72 bytes, rounded up to 80. Keeping any record's input (about 60 bytes)
/// or output (about 160 bytes) on top of that would break it.
const GROWTH_PER_RECORD: u64 = 80;

#[test]
fn peak_memory_does_not_grow_with_input_size() {
    const SMALL: u64 = 10_000;
    const LARGE: u64 = 1_000_000;
    run_records(SMALL as usize);
    let after_small = peak_rss_bytes();
    let features_bytes = run_records(LARGE as usize);
    let after_large = peak_rss_bytes();
    let growth = after_large.saturating_sub(after_small);
    let bound = GROWTH_PER_RECORD * (LARGE - SMALL);
    eprintln!(
        "peak RSS {after_small} -> {after_large} bytes (+{growth}, {:.1} bytes per extra record, bound {bound}); \
         features.jsonl {features_bytes} bytes",
        growth as f64 / (LARGE - SMALL) as f64
    );
    assert!(
        features_bytes > 2 * bound,
        "the output must dwarf the bound for the test to mean anything"
    );
    assert!(
        growth < bound,
        "peak memory grew by {growth} bytes, over {bound}"
    );
}
