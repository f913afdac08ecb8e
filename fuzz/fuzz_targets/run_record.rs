//! The `run.json` reader: any bytes through `RunRecord`'s deserializer never panic, and a
//! record that parses writes back to JSON that parses to the same record.
#![no_main]

use hookhost::provenance::RunRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = serde_json::from_slice::<RunRecord>(data) else {
        return;
    };
    let written = serde_json::to_vec_pretty(&record).expect("a run record serializes");
    let again: RunRecord = serde_json::from_slice(&written).expect("what was written reads back");
    assert_eq!(record, again);
});
