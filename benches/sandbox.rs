//! The cost of running a hook, stage by stage, each against a baseline measured in the same
//! run:
//!
//! - `instantiate/{pooling,on_demand}` — a fresh sandbox (store, WASI context, fuel, deadline)
//!   and an instance of the pre-linked `text_stats` component, with each instance allocator;
//! - `per_record/chaos/N` — one runner call over N trivial records (`chaos`, `{"n": i}`): the
//!   host's per-record overhead once the sandbox is paid for;
//! - `per_record_starts/{announced,pooled}/1000` — the `raw_outcomes` fixture over 1000 records
//!   in one call, announcing each record with `begin-record` (each its own fuel and deadline)
//!   or not at all (the call's pooled budget): what the per-record starts of WIT 0.2.0 cost;
//! - `text_stats/{component,native}/N` — the `text-stats` hook on ~1 KB texts as a component
//!   through the runner, and the same crate compiled natively, called in-process;
//! - `fuel/{on,off}/100` — instantiate, `configure` and `process` 100 texts on engines that
//!   differ only in fuel metering;
//! - `threads/{1,2}` — 2048 texts in chunks of the runner's default size, on one thread or
//!   split over two threads with a runner each; `threads/native_{1,2}` — the same records
//!   through the native function, split the same way: what the machine gives two threads.
//!
//! Run with `make -C benches bench` (see `benches/README.md`).

mod common;

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hookhost::bindings::{Hook, Record};
use hookhost::component::InstanceAllocation;
use hookhost::input::PendingRecord;
use hookhost::runner::DEFAULT_CHUNK_SIZE;
use hookhost::{Host, HostConfig};
use hookhost_sdk::Hook as _;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

fn host(instances: InstanceAllocation) -> Host {
    Host::new(HostConfig {
        instances,
        ..HostConfig::default()
    })
    .unwrap()
}

fn instantiate(c: &mut Criterion) {
    let bytes = common::component("text_stats");
    let mut group = c.benchmark_group("instantiate");
    for (name, instances) in [
        ("pooling", InstanceAllocation::default()),
        ("on_demand", InstanceAllocation::OnDemand),
    ] {
        let host = host(instances);
        assert_eq!(host.instance_allocation(), instances, "{name}");
        let hook = host.load_bytes(&bytes, "text_stats.wasm").unwrap();
        group.bench_function(name, |b| b.iter(|| hook.instantiate_once().unwrap()));
    }
    group.finish();
}

fn per_record(c: &mut Criterion) {
    let host = host(InstanceAllocation::default());
    let hook = host
        .load_bytes(&common::component("chaos"), "chaos.wasm")
        .unwrap();
    let mut runner = common::runner(hook, &host);
    let mut group = c.benchmark_group("per_record");
    for batch in [1usize, 100, 1000, 10_000] {
        let records: Vec<PendingRecord> = (0..batch)
            .map(|i| common::pending(i, format!("{{\"n\":{i}}}")))
            .collect();
        if batch >= 1000 {
            group.sample_size(20);
        }
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("chaos", batch), &records, |b, records| {
            b.iter(|| runner.run_chunk(records).unwrap())
        });
    }
    group.finish();
}

fn per_record_starts(c: &mut Criterion) {
    let host = host(InstanceAllocation::default());
    let hook = host
        .load_bytes(&common::component("raw_outcomes"), "raw_outcomes.wasm")
        .unwrap();
    let records: Vec<PendingRecord> = (0..1000)
        .map(|i| common::pending(i, format!("{{\"n\":{i}}}")))
        .collect();
    let mut group = c.benchmark_group("per_record_starts");
    group.sample_size(20);
    group.throughput(Throughput::Elements(records.len() as u64));
    for (name, config) in [("announced", "{}"), ("pooled", r#"{"announce":false}"#)] {
        let mut runner = common::runner_with_config(hook.clone(), &host, config);
        group.bench_with_input(BenchmarkId::new(name, 1000), &records, |b, records| {
            b.iter(|| runner.run_chunk(records).unwrap())
        });
    }
    group.finish();
}

fn text_stats(c: &mut Criterion) {
    let host = host(InstanceAllocation::default());
    let hook = host
        .load_bytes(&common::component("text_stats"), "text_stats.wasm")
        .unwrap();
    let mut runner = common::runner(hook, &host);
    let mut group = c.benchmark_group("text_stats");
    for batch in [1usize, DEFAULT_CHUNK_SIZE, 100] {
        let records = common::text_records(batch);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(
            BenchmarkId::new("component", batch),
            &records,
            |b, records| b.iter(|| runner.run_chunk(records).unwrap()),
        );
        let native: Vec<hookhost_sdk::Record> = records
            .iter()
            .map(|r| hookhost_sdk::Record::new(r.record.id.clone(), r.record.metadata.clone()))
            .collect();
        let hook = text_stats::TextStatsHook;
        group.bench_with_input(BenchmarkId::new("native", batch), &native, |b, native| {
            b.iter_batched(
                || (),
                |()| {
                    native
                        .iter()
                        .map(|r| hook.process(r).unwrap())
                        .collect::<Vec<_>>()
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// The least a store needs to run a hook: an empty WASI context.
struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// What each instrumentation costs guest code: the same component, records and calls on
/// engines set up like the host's (component model, pooling) with fuel metering and epoch
/// interruption (`on`: both, as the host runs; `off`: epoch interruption only, the host with
/// `HostConfig::fuel_metering` off; `bare`: neither, which no hookhost engine is). Measured
/// below the runner, which gives every store fuel and a deadline.
fn fuel(c: &mut Criterion) {
    let bytes = common::component("text_stats");
    let owned = common::text_records(100);
    let records: Vec<Record<'_>> = owned.iter().map(|r| r.record.as_wit()).collect();
    let mut group = c.benchmark_group("fuel");
    group.throughput(Throughput::Elements(records.len() as u64));
    for (name, metered, epochs) in [
        ("on", true, true),
        ("off", false, true),
        ("bare", false, false),
    ] {
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(metered)
            .epoch_interruption(epochs)
            .memory_init_cow(false)
            .allocation_strategy(wasmtime::InstanceAllocationStrategy::pooling());
        let engine = wasmtime::Engine::new(&config).unwrap();
        let component = Component::new(&engine, &bytes).unwrap();
        let mut linker = Linker::<Bare>::new(&engine);
        hookhost::sandbox::add_to_linker(&mut linker).unwrap();
        // The hook world's `begin-record`, as a no-op: this bench measures guest code only.
        linker
            .instance(hookhost::sandbox::HOST_INTERFACE)
            .unwrap()
            .func_wrap("begin-record", |_, (_index,): (u32,)| Ok(()))
            .unwrap();
        let pre = linker.instantiate_pre(&component).unwrap();
        let pre = hookhost::bindings::HookPre::new(pre).unwrap();
        let run = || {
            let mut store = wasmtime::Store::new(
                &engine,
                Bare {
                    wasi: WasiCtx::builder().build(),
                    table: ResourceTable::new(),
                },
            );
            if epochs {
                store.set_epoch_deadline(1 << 40);
            }
            if metered {
                store.set_fuel(u64::MAX / 2).unwrap();
            }
            let hook: Hook = pre.instantiate(&mut store).unwrap();
            hook.call_configure(&mut store, "{}").unwrap().unwrap();
            let outcomes = hook.call_process(&mut store, &records).unwrap();
            assert_eq!(outcomes.len(), records.len());
            black_box(outcomes)
        };
        group.bench_function(BenchmarkId::new(name, records.len()), |b| b.iter(run));
    }
    group.finish();
}

/// Records split into chunks of the runner's default size, run on one thread or two.
fn threads(c: &mut Criterion) {
    const RECORDS: usize = 2048;
    let host = host(InstanceAllocation::default());
    let hook = host
        .load_bytes(&common::component("text_stats"), "text_stats.wasm")
        .unwrap();
    let records = common::text_records(RECORDS);
    let chunks: Vec<&[PendingRecord]> = records.chunks(DEFAULT_CHUNK_SIZE).collect();
    let mut runners = [
        common::runner(hook.clone(), &host),
        common::runner(hook, &host),
    ];
    let mut group = c.benchmark_group("threads");
    group.sample_size(20);
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("1", |b| {
        b.iter(|| {
            for chunk in &chunks {
                black_box(runners[0].run_chunk(chunk).unwrap());
            }
        })
    });
    group.bench_function("2", |b| {
        b.iter(|| {
            let (left, right) = chunks.split_at(chunks.len() / 2);
            let [first, second] = &mut runners;
            std::thread::scope(|scope| {
                for (runner, share) in [(first, left), (second, right)] {
                    scope.spawn(move || {
                        for chunk in share {
                            black_box(runner.run_chunk(chunk).unwrap());
                        }
                    });
                }
            });
        })
    });
    // The same split of the same records through the native function: what this machine
    // gives two threads of pure computation, measured in the same run.
    let native: Vec<hookhost_sdk::Record> = records
        .iter()
        .map(|r| hookhost_sdk::Record::new(r.record.id.clone(), r.record.metadata.clone()))
        .collect();
    let run_native = |share: &[hookhost_sdk::Record]| {
        for record in share {
            black_box(text_stats::TextStatsHook.process(record).unwrap());
        }
    };
    group.bench_function("native_1", |b| b.iter(|| run_native(&native)));
    group.bench_function("native_2", |b| {
        b.iter(|| {
            let (left, right) = native.split_at(native.len() / 2);
            std::thread::scope(|scope| {
                scope.spawn(|| run_native(left));
                scope.spawn(|| run_native(right));
            });
        })
    });
    group.finish();
}

criterion_group!(
    sandbox,
    instantiate,
    per_record,
    per_record_starts,
    text_stats,
    fuel,
    threads
);
criterion_main!(sandbox);
