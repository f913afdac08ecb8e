//! Record parsing: any bytes through `InputReader`. Every byte is counted and hashed, line
//! numbers only grow, every non-blank line becomes exactly one item, and every record that
//! comes out obeys the id rules, carries JSON metadata and has an id seen once.
#![no_main]

use std::collections::HashSet;

use hookhost::input::{InputItem, InputReader, check_id};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest as _, Sha256};

fuzz_target!(|data: &[u8]| {
    // The first byte picks a small line cap, so over-long lines are reached often.
    let Some((&cap, input)) = data.split_first() else {
        return;
    };
    let max_line_bytes = usize::from(cap) * 4 + 1;
    let mut reader = InputReader::new(input, None).with_max_line_bytes(max_line_bytes);
    let mut last_line = 0;
    let mut items = 0u64;
    let mut ids = HashSet::new();
    while let Some(item) = reader.next_item().expect("reading a slice never fails") {
        items += 1;
        match item {
            InputItem::Record { line, record } => {
                assert!(line > last_line);
                last_line = line;
                let id = &record.record.id;
                check_id(id).expect("records have valid ids");
                assert!(ids.insert(id.clone()), "duplicate id {id:?} passed");
                serde_json::from_str::<serde_json::Value>(&record.record.metadata)
                    .expect("metadata is JSON");
                if let Some(mb) = record.record.size_hint_mb {
                    assert!(mb.is_finite() && mb >= 0.0);
                }
            }
            InputItem::Invalid { line, id, reason } => {
                assert!(line > last_line);
                last_line = line;
                assert!(!reason.is_empty());
                if let Some(id) = id {
                    assert!(id.len() <= input.len());
                }
            }
        }
    }
    let summary = reader.summary();
    assert_eq!(summary.bytes, input.len() as u64);
    assert_eq!(summary.records, items);
    let expected: String = Sha256::digest(input)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(summary.sha256, expected);
    let lines = input.split(|&b| b == b'\n').count() as u64;
    assert!(last_line <= lines);
});
