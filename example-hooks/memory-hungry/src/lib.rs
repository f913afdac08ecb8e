//! `memory_hungry`: allocates `metadata.alloc_mb` MiB, touches every page, and reports it.
//!
//! Shows the host's memory cap and its out-of-memory retry: a record that needs more memory
//! than the cap makes the allocation fail, the guest aborts, and the host reruns the call on a
//! fresh sandbox with the cap doubled (see `oom_retries` in `run.json`). Run it on the samples:
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 --manifest-path example-hooks/Cargo.toml --workspace
//! host run example-hooks/target/wasm32-wasip2/release/memory_hungry.wasm \
//!     --input example-hooks/samples/memory.jsonl --out /tmp/out
//! ```

use std::hint::black_box;

use hookhost_sdk::{Features, Hook, NoConfig, Record, Refusal, export_hook, reject};
use serde::Deserialize;

/// How much memory a record held.
#[derive(Debug, PartialEq, Features)]
#[features(name = "memory_hungry", cardinality = "one")]
pub struct Allocated {
    /// MiB allocated and touched at once.
    allocated_mb: i64,
}

#[derive(Deserialize)]
struct Metadata {
    alloc_mb: Option<u32>,
}

/// The buffer is touched with one write every `PAGE` bytes: once per 4 KiB page.
const PAGE: usize = 4096;

/// The hook: stateless, so it takes no config.
pub struct MemoryHungry;

impl Hook for MemoryHungry {
    type Row = Allocated;
    type Config = NoConfig;

    fn new(_config: NoConfig) -> Result<Self, String> {
        Ok(MemoryHungry)
    }

    fn process(&self, record: &Record) -> Result<Vec<Allocated>, Refusal> {
        let Metadata { alloc_mb } = record.metadata()?;
        let mb = alloc_mb.ok_or_else(|| reject("metadata.alloc_mb is required"))?;
        // An allocation the memory cap denies aborts the guest: that is the point.
        let mut buffer = vec![0u8; mb as usize * 1024 * 1024];
        for (i, page) in buffer.chunks_mut(PAGE).enumerate() {
            page[0] = i as u8;
        }
        // Read the pages back so the writes (and the buffer) cannot be optimised away.
        let checksum = black_box(&buffer)
            .iter()
            .step_by(PAGE)
            .fold(0u8, |sum, &b| sum.wrapping_add(b));
        black_box(checksum);
        Ok(vec![Allocated {
            allocated_mb: mb.into(),
        }])
    }
}

export_hook!(MemoryHungry);
