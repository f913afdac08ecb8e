//! Loading each example hook: compiled from its bytes on a fresh host (`load/compile/<hook>`),
//! loaded from the precompiled-code cache on a fresh host (`load/cached/<hook>`), and loaded
//! again on a host that has it already (`load/reused/<hook>`). Every load links the component
//! and asks it for its contract; only the host's own setup (reserving the instance pool,
//! starting the epoch thread) is left out of the timings.
//!
//! Run with `make -C benches bench` (see `benches/README.md`).

mod common;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use hookhost::component::CodeSource;
use hookhost::{Host, HostConfig};

fn load(c: &mut Criterion) {
    let cache = tempfile::tempdir().unwrap();
    let cached_host = || {
        Host::new(HostConfig {
            code_cache: Some(cache.path().to_owned()),
            ..HostConfig::default()
        })
        .unwrap()
    };
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    for name in common::EXAMPLE_HOOKS {
        let bytes = common::component(name);
        let origin = format!("{name}.wasm");
        group.bench_function(BenchmarkId::new("compile", name), |b| {
            b.iter_batched(
                || Host::new(HostConfig::default()).unwrap(),
                |host| {
                    let hook = host.load_bytes(&bytes, &origin).unwrap();
                    assert_eq!(hook.compiled_from(), CodeSource::Compiled);
                    (host, hook)
                },
                BatchSize::PerIteration,
            )
        });
        // Fill the cache, then load from it on fresh hosts.
        cached_host().load_bytes(&bytes, &origin).unwrap();
        group.bench_function(BenchmarkId::new("cached", name), |b| {
            b.iter_batched(
                cached_host,
                |host| {
                    let hook = host.load_bytes(&bytes, &origin).unwrap();
                    assert_eq!(hook.compiled_from(), CodeSource::Cache);
                    (host, hook)
                },
                BatchSize::PerIteration,
            )
        });
        let host = Host::new(HostConfig::default()).unwrap();
        let _kept = host.load_bytes(&bytes, &origin).unwrap();
        group.bench_function(BenchmarkId::new("reused", name), |b| {
            b.iter(|| {
                let hook = host.load_bytes(&bytes, &origin).unwrap();
                assert_eq!(hook.compiled_from(), CodeSource::Reused);
                hook
            })
        });
    }
    group.finish();
}

criterion_group!(loading, load);
criterion_main!(loading);
