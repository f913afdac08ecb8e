//! The peer: the `text-stats` logic as an Extism plugin, called once per record through the
//! `extism` host crate, on the same ~1 KB texts as hookhost's benchmarks (`../texts.rs`).
//!
//! The plugin is built first by `make -C benches extism-plugin`; run everything with
//! `make -C benches bench`.

#[path = "../../texts.rs"]
mod texts;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use extism::{Manifest, Plugin, PluginBuilder, Wasm};

/// Records per measured iteration; the figure of merit is time per record.
const RECORDS: usize = 100;

fn plugin_path() -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plugin/target/wasm32-unknown-unknown/release/text_stats_extism.wasm");
    assert!(
        path.exists(),
        "{} is missing: run `make -C benches extism-plugin` first",
        path.display()
    );
    path
}

fn call_each(plugin: &mut Plugin, inputs: &[String]) {
    for input in inputs {
        let row: String = plugin.call("text_stats", input.as_str()).unwrap();
        black_box(row);
    }
}

fn benches(c: &mut Criterion) {
    let wasm = std::fs::read(plugin_path()).unwrap();
    let manifest = Manifest::new([Wasm::data(wasm)]);
    let inputs: Vec<String> = (0..RECORDS).map(texts::metadata).collect();
    // What the plugin answers, so a broken build cannot be benchmarked by accident.
    let mut plugin = Plugin::new(&manifest, [], false).unwrap();
    let first: String = plugin.call("text_stats", inputs[0].as_str()).unwrap();
    let row: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(row["word_count"], 160, "{first}");

    let mut group = c.benchmark_group("peer");
    group.throughput(Throughput::Elements(RECORDS as u64));
    // Extism's default: no fuel metering.
    group.bench_with_input(BenchmarkId::new("extism", RECORDS), &inputs, |b, inputs| {
        b.iter(|| call_each(&mut plugin, inputs))
    });
    // With a fuel limit, as hookhost always meters fuel.
    let mut metered = PluginBuilder::new(manifest)
        .with_wasi(false)
        .with_fuel_limit(u64::MAX / 2)
        .build()
        .unwrap();
    group.bench_with_input(
        BenchmarkId::new("extism_fuel", RECORDS),
        &inputs,
        |b, inputs| b.iter(|| call_each(&mut metered, inputs)),
    );
    group.finish();
}

criterion_group!(peer, benches);
criterion_main!(peer);
