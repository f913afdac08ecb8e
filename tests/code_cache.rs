//! The precompiled-code cache (issue 5): the first load of a digest compiles and stores, later
//! hosts load the stored code; a stale, truncated, corrupt or foreign entry is recompiled and
//! rewritten, never loaded, and runs give the same outputs either way; concurrent loaders of
//! one digest are safe.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use hookhost::cache::{CodeCache, HEADER_BYTES};
use hookhost::component::{CodeSource, HookComponent, InstanceAllocation};
use hookhost::{Host, HostConfig};
use serde_json::Value;

fn host_with_cache(dir: &Path) -> Host {
    Host::new(HostConfig {
        code_cache: Some(dir.to_owned()),
        ..HostConfig::default()
    })
    .unwrap()
}

fn text_stats_bytes() -> Vec<u8> {
    std::fs::read(common::guest("text_stats")).unwrap()
}

/// Where `host`'s entry for `hook` lives.
fn entry_of(cache_dir: &Path, host: &Host, hook: &HookComponent) -> PathBuf {
    CodeCache::open(cache_dir)
        .unwrap()
        .entry_path(hook.digest(), host.engine_fingerprint())
        .unwrap()
}

/// A run's outputs without the run id: what must not depend on where the code came from.
fn outputs(hook: HookComponent) -> (Vec<Value>, Vec<Value>, Vec<Value>, u64) {
    let input =
        std::fs::read_to_string(common::root().join("example-hooks/samples/text.jsonl")).unwrap();
    let ran = common::run(hook, &input);
    let strip = |rows: Vec<Value>| -> Vec<Value> {
        rows.into_iter()
            .map(|mut row| {
                row.as_object_mut().unwrap().remove("run_id");
                row
            })
            .collect()
    };
    assert!(
        ran.record.records.passed > 0,
        "the sample batch has passing records"
    );
    (
        strip(ran.features),
        strip(ran.rejections),
        strip(ran.errors),
        ran.record.fuel_consumed,
    )
}

#[test]
fn the_first_load_compiles_and_stores_later_hosts_load_the_stored_code() {
    let temp = tempfile::tempdir().unwrap();
    let bytes = text_stats_bytes();

    let first = host_with_cache(temp.path());
    assert!(matches!(
        first.instance_allocation(),
        InstanceAllocation::Pooling { .. }
    ));
    let compiled = first.load_bytes(&bytes, "text_stats.wasm").unwrap();
    assert_eq!(compiled.compiled_from(), CodeSource::Compiled);
    let entry = entry_of(temp.path(), &first, &compiled);
    let written = std::fs::read(&entry).expect("the first load wrote an entry");
    assert!(written.len() > HEADER_BYTES);
    // The same host does not even look at the cache again.
    let again = first.load_bytes(&bytes, "again.wasm").unwrap();
    assert_eq!(again.compiled_from(), CodeSource::Reused);
    assert_eq!(again.contract(), compiled.contract());

    let second = host_with_cache(temp.path());
    let cached = second.load_bytes(&bytes, "text_stats.wasm").unwrap();
    assert_eq!(cached.compiled_from(), CodeSource::Cache);
    assert_eq!(cached.digest(), compiled.digest());
    assert_eq!(cached.contract(), compiled.contract());
    assert_eq!(
        std::fs::read(&entry).unwrap(),
        written,
        "a cache hit does not rewrite"
    );
    assert_eq!(outputs(cached), outputs(compiled));
}

#[test]
fn damaged_stale_and_foreign_entries_are_recompiled_and_rewritten() {
    let temp = tempfile::tempdir().unwrap();
    let bytes = text_stats_bytes();
    let uncached = Host::new(HostConfig::default()).unwrap();
    let expected = outputs(uncached.load_bytes(&bytes, "text_stats.wasm").unwrap());

    let writer = host_with_cache(temp.path());
    let hook = writer.load_bytes(&bytes, "text_stats.wasm").unwrap();
    let entry = entry_of(temp.path(), &writer, &hook);
    let good = std::fs::read(&entry).unwrap();

    // An entry compiled by another engine configuration (fuel metering off), put where this
    // engine's entry belongs: the header's fingerprint gives it away.
    let other = Host::new(HostConfig {
        code_cache: Some(temp.path().to_owned()),
        fuel_metering: false,
        ..HostConfig::default()
    })
    .unwrap();
    assert_ne!(other.engine_fingerprint(), writer.engine_fingerprint());
    let other_hook = other.load_bytes(&bytes, "text_stats.wasm").unwrap();
    let stale = std::fs::read(entry_of(temp.path(), &other, &other_hook)).unwrap();
    assert_ne!(stale, good);

    let mut flipped = good.clone();
    let middle = HEADER_BYTES + (good.len() - HEADER_BYTES) / 2;
    flipped[middle] ^= 0x01;
    let mut other_digest = good.clone();
    other_digest[12] ^= 0x80; // the first byte of the header's digest
    let random: Vec<u8> = (0..good.len() as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let damages: [(&str, Vec<u8>); 6] = [
        ("a flipped payload byte", flipped),
        ("truncated", good[..good.len() - 4096].to_vec()),
        ("cut inside the header", good[..HEADER_BYTES - 1].to_vec()),
        ("the header names another digest", other_digest),
        ("written under another fingerprint", stale),
        ("a random file", random),
    ];
    for (what, damaged) in damages {
        std::fs::write(&entry, &damaged).unwrap();
        let host = host_with_cache(temp.path());
        let hook = host.load_bytes(&bytes, "text_stats.wasm").unwrap();
        assert_eq!(hook.compiled_from(), CodeSource::Compiled, "{what}");
        assert_eq!(
            std::fs::read(&entry).unwrap(),
            good,
            "{what}: the entry is rewritten"
        );
        assert_eq!(outputs(hook), expected, "{what}");
    }
    // And the rewritten entry is used again.
    let host = host_with_cache(temp.path());
    let hook = host.load_bytes(&bytes, "text_stats.wasm").unwrap();
    assert_eq!(hook.compiled_from(), CodeSource::Cache);
}

#[test]
fn four_threads_loading_one_digest_at_once_all_get_working_code() {
    let temp = tempfile::tempdir().unwrap();
    let bytes = Arc::new(text_stats_bytes());
    let start = Arc::new(Barrier::new(4));
    // One host per thread: four processes sharing a root, as far as the cache can tell.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (dir, bytes, start) = (temp.path().to_owned(), bytes.clone(), start.clone());
            std::thread::spawn(move || {
                let host = host_with_cache(&dir);
                start.wait();
                let hook = host.load_bytes(&bytes, "text_stats.wasm").unwrap();
                hook.instantiate_once().unwrap();
                (hook.digest().to_owned(), hook.contract().clone())
            })
        })
        .collect();
    let loaded: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(loaded.windows(2).all(|pair| pair[0] == pair[1]));

    let host = host_with_cache(temp.path());
    let hook = host.load_bytes(&bytes, "text_stats.wasm").unwrap();
    assert_eq!(hook.compiled_from(), CodeSource::Cache);
    let entry = entry_of(temp.path(), &host, &hook);
    let names: Vec<_> = std::fs::read_dir(entry.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        [entry.file_name().unwrap()],
        "no temporary file is left"
    );
}

#[test]
fn without_a_cache_every_new_host_compiles() {
    let bytes = text_stats_bytes();
    for _ in 0..2 {
        let host = Host::new(HostConfig::default()).unwrap();
        let hook = host.load_bytes(&bytes, "text_stats.wasm").unwrap();
        assert_eq!(hook.compiled_from(), CodeSource::Compiled);
    }
}

#[test]
fn on_demand_allocation_runs_the_same_as_pooled() {
    let bytes = text_stats_bytes();
    let on_demand = Host::new(HostConfig {
        instances: InstanceAllocation::OnDemand,
        ..HostConfig::default()
    })
    .unwrap();
    assert_eq!(
        on_demand.instance_allocation(),
        InstanceAllocation::OnDemand
    );
    let pooled = Host::new(HostConfig::default()).unwrap();
    // Pooling does not change compiled code, so both share cache entries.
    assert_eq!(on_demand.engine_fingerprint(), pooled.engine_fingerprint());
    assert_eq!(
        outputs(on_demand.load_bytes(&bytes, "a.wasm").unwrap()),
        outputs(pooled.load_bytes(&bytes, "b.wasm").unwrap())
    );
}
