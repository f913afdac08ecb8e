//! The engine: one wasmtime engine (fuel metering and epoch interruption on), the linker
//! with the WASI preview 2 interfaces and the hook world's `host` import, the instance pool, and the thread that advances the
//! epoch every [`EPOCH_TICK`]. [`SandboxEngine`] is what every sandbox is made on; a
//! [`Host`](crate::Host) holds one, with the components loaded on it.
//!
//! # Making a sandbox cheap
//!
//! Every call into a hook runs in a fresh store with a fresh instance, so what a call starts
//! with is paid per chunk of records. By default the engine uses wasmtime's pooling instance
//! allocator ([`InstanceAllocation::Pooling`]): instance, memory and table slots are reserved
//! once, when the engine starts, and reused. A memory slot is made ready for the next
//! sandbox by writing zeros over the pages the last call dirtied (found with Linux's
//! `PAGEMAP_SCAN`), up to [`POOLED_MEMORY_KEEP_RESIDENT`], and the instance copies its data
//! segments in: no page is unmapped or faulted in again between calls that stay within it.
//!
//! Memories are deliberately *not* initialised from copy-on-write images. wasmtime resets an
//! image's pages with `madvise(MADV_DONTNEED)` whenever a call dirtied more of them than its
//! page scan reports at once, and every call into CPython (a 7.6 MiB image) does: one `madvise`
//! per call, whose TLB shootdowns interrupt every other core running the process, cost a second
//! worker a third of its speed (issue 15: `python_text_stats/host_run/jobs_2` 384 → 276 ms, 1.26× →
//! 1.8× of one job, see `benches/README.md`). Copying a Rust hook's few KiB of data costs
//! nothing measurable (`instantiate/pooling` within noise). wasmtime copies data segments with
//! the module's compiled start-up code, so that copy is metered: each call's instantiation
//! counts fuel (about 12 600 for `text_stats`, 11 million for CPython), under `configure`'s
//! budget, never a record's. The pool reserves address space (not memory) for
//! [`DEFAULT_POOLED_SANDBOXES`] sandboxes at once, each with up to
//! [`MAX_MEMORIES_PER_SANDBOX`] memories of [`POOLED_MEMORY_BYTES`]. When the machine cannot
//! reserve that much (a low `ulimit -v`), the engine falls back to allocating on demand, with
//! a `tracing::warn!`; [`SandboxEngine::instance_allocation`] tells which is in use.

use std::fmt;
use std::hash::Hasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256};
use wasmtime::component::Linker;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};

use crate::digest::hex;
use crate::error::Error;
use crate::limits::Limits;
use crate::sandbox::{
    self, EPOCH_TICK, MAX_TABLE_ELEMENTS, OutputCapture, SandboxSpec, SandboxState,
};

/// How many sandboxes may exist at once with the pooling allocator, by default. Every call
/// holds one sandbox while it runs, so this bounds concurrent calls across all runs on one
/// host (jobs × hooks); one more fails to instantiate. It costs address space, not memory:
/// about `MAX_MEMORIES_PER_SANDBOX × (POOLED_MEMORY_BYTES + guard)` per sandbox.
pub const DEFAULT_POOLED_SANDBOXES: u32 = 128;
/// The most core instances one component may have in a pooled sandbox. A Rust `wasm32-wasip2`
/// hook has a handful (its module, the WASI adapter, shims).
pub const MAX_CORE_INSTANCES_PER_SANDBOX: u32 = 16;
/// The most linear memories one component may have in a pooled sandbox.
pub const MAX_MEMORIES_PER_SANDBOX: u32 = 2;
/// The most tables one component may have in a pooled sandbox.
pub const MAX_TABLES_PER_SANDBOX: u32 = 8;
/// How much of a pooled linear memory stays resident when its sandbox ends: the pages a call
/// dirtied (found with Linux's `PAGEMAP_SCAN` where available) are reset with `memset` up to
/// this much, instead of being returned to the kernel with `madvise` and faulted in again by
/// the next sandbox. Costs up to this much resident memory per pool slot that has been used
/// (only the pages its calls dirtied: about 1 MiB for a Rust hook, 14 MiB for CPython). 32 MiB
/// holds an interpreter's whole working memory, so its calls make no `madvise` (issue 15).
pub const POOLED_MEMORY_KEEP_RESIDENT: usize = 32 << 20;
/// Like [`POOLED_MEMORY_KEEP_RESIDENT`], for each pooled table.
pub const POOLED_TABLE_KEEP_RESIDENT: usize = 64 << 10;
/// The largest linear memory a pooled slot holds: all of a 32-bit memory, so the memory cap
/// (however often it doubles toward the ceiling) is the only limit a guest meets.
pub const POOLED_MEMORY_BYTES: u64 = 4 << 30;

/// The version of this host, for provenance.
pub const HOST_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The version of wasmtime this host was built with, for provenance.
pub const WASMTIME_VERSION: &str = env!("HOOKHOST_WASMTIME_VERSION");

/// How the engine allocates instances, memories and tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceAllocation {
    /// wasmtime's pooling allocator: slots reserved up front and reused, the pages a call
    /// dirtied reset in place. The fastest to instantiate. `sandboxes` bounds how many sandboxes may
    /// exist at once (see [`DEFAULT_POOLED_SANDBOXES`]).
    Pooling {
        /// How many sandboxes may exist at once.
        sandboxes: u32,
    },
    /// Allocate every instance on demand (`mmap` per memory). Slower to instantiate, no
    /// address space reserved up front, no bound on concurrent sandboxes.
    OnDemand,
}

impl Default for InstanceAllocation {
    fn default() -> Self {
        InstanceAllocation::Pooling {
            sandboxes: DEFAULT_POOLED_SANDBOXES,
        }
    }
}

/// One engine and its linker, pool and epoch thread: what every sandbox is made on. Dropping
/// it stops the epoch thread.
pub struct SandboxEngine {
    engine: Engine,
    linker: Linker<SandboxState>,
    fingerprint: String,
    instances: InstanceAllocation,
    fuel_metering: bool,
    _ticker: EpochTicker,
}

impl fmt::Debug for SandboxEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxEngine")
            .field("fingerprint", &self.fingerprint)
            .field("instances", &self.instances)
            .field("fuel_metering", &self.fuel_metering)
            .finish_non_exhaustive()
    }
}

impl SandboxEngine {
    /// Builds the engine (falling back from the pooling allocator to on-demand allocation if
    /// the pool cannot be reserved), links WASI and starts the epoch thread. With
    /// `fuel_metering` off guest code counts no fuel and the fuel limit is not enforced.
    pub fn new(instances: InstanceAllocation, fuel_metering: bool) -> Result<SandboxEngine, Error> {
        let (engine, instances) = build_engine(instances, fuel_metering)?;
        let mut linker = Linker::new(&engine);
        // WASI with clocks whose sleeps take no host time (see `sandbox::add_to_linker`).
        sandbox::add_to_linker(&mut linker).map_err(Error::Engine)?;
        // The hook world's own import: `begin-record`, which moves the per-record budget.
        sandbox::add_host_to_linker(&mut linker).map_err(Error::Engine)?;
        let fingerprint = fingerprint_of(&engine);
        let ticker = EpochTicker::start(engine.clone());
        Ok(SandboxEngine {
            engine,
            linker,
            fingerprint,
            instances,
            fuel_metering,
            _ticker: ticker,
        })
    }

    /// The wasmtime engine.
    pub fn wasmtime(&self) -> &Engine {
        &self.engine
    }

    /// The linker with the interfaces a guest may import.
    pub(crate) fn linker(&self) -> &Linker<SandboxState> {
        &self.linker
    }

    /// `sha256:<hex>` fingerprint of everything in the engine that changes compiled code: the
    /// wasmtime version, the target, the compiler flags and every code-generation setting
    /// (fuel metering, epoch interruption, memory reservation and guards, …).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The instance allocation in use: the one asked for, or [`InstanceAllocation::OnDemand`]
    /// if the pool could not be reserved.
    pub fn instance_allocation(&self) -> InstanceAllocation {
        self.instances
    }

    /// Whether guest code counts fuel.
    pub fn fuel_metering(&self) -> bool {
        self.fuel_metering
    }

    /// A fresh store for a sandbox as `spec` describes it, its memory limiter installed.
    pub(crate) fn new_store(&self, spec: &SandboxSpec<'_>) -> std::io::Result<Store<SandboxState>> {
        let mut store = Store::new(&self.engine, SandboxState::new(spec)?);
        store.limiter(|state| &mut state.memory);
        Ok(store)
    }

    /// A fresh store with default limits, fuel and a deadline, as every call starts.
    pub(crate) fn probe_store(
        &self,
        capture: &OutputCapture,
    ) -> Result<Store<SandboxState>, String> {
        let limits = Limits::default();
        let spec = SandboxSpec {
            memory_cap: limits.memory_bytes,
            capture,
            preopens: &[],
        };
        let mut store = self.new_store(&spec).map_err(|e| e.to_string())?;
        let budget = sandbox::Budget::pooled(
            self.fuel_metering,
            0,
            limits.fuel_per_record,
            sandbox::ticks_for(limits.timeout),
        );
        sandbox::install_budget(&mut store, budget, Arc::new(AtomicBool::new(false)))
            .map_err(|e| e.to_string())?;
        Ok(store)
    }
}

/// Builds the engine the config asks for; if the pool cannot be reserved, an on-demand one.
fn build_engine(
    instances: InstanceAllocation,
    fuel_metering: bool,
) -> Result<(Engine, InstanceAllocation), Error> {
    if let InstanceAllocation::Pooling { sandboxes } = instances {
        let mut wasm = engine_config(fuel_metering);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(
            sandboxes,
        )));
        match Engine::new(&wasm) {
            Ok(engine) => return Ok((engine, instances)),
            Err(error) => tracing::warn!(
                error = %format!("{error:#}"),
                sandboxes,
                "could not reserve the instance pool; allocating instances on demand (slower \
                 to instantiate)"
            ),
        }
    }
    let engine = Engine::new(&engine_config(fuel_metering)).map_err(Error::Engine)?;
    Ok((engine, InstanceAllocation::OnDemand))
}

/// The engine settings shared by both allocation strategies. Everything here that changes
/// compiled code is covered by the engine fingerprint.
fn engine_config(fuel_metering: bool) -> Config {
    let mut wasm = Config::new();
    wasm.wasm_component_model(true)
        .consume_fuel(fuel_metering)
        .epoch_interruption(true)
        // No copy-on-write images: see "Making a sandbox cheap" above.
        .memory_init_cow(false);
    wasm
}

/// The pool for `sandboxes` sandboxes at once, each within the per-sandbox maxima.
fn pooling_config(sandboxes: u32) -> PoolingAllocationConfig {
    let sandboxes = sandboxes.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(sandboxes)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_SANDBOX)
        .max_memories_per_component(MAX_MEMORIES_PER_SANDBOX)
        .max_tables_per_component(MAX_TABLES_PER_SANDBOX)
        .total_core_instances(sandboxes.saturating_mul(MAX_CORE_INSTANCES_PER_SANDBOX))
        .total_memories(sandboxes.saturating_mul(MAX_MEMORIES_PER_SANDBOX))
        .total_tables(sandboxes.saturating_mul(MAX_TABLES_PER_SANDBOX))
        .max_memory_size(POOLED_MEMORY_BYTES as usize)
        .table_elements(MAX_TABLE_ELEMENTS)
        .linear_memory_keep_resident(POOLED_MEMORY_KEEP_RESIDENT)
        .table_keep_resident(POOLED_TABLE_KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto);
    pool
}

/// Hashes the engine's compatibility hash (which covers the wasmtime version and every
/// setting that changes compiled code) into a stable digest.
pub(crate) fn fingerprint_of(engine: &Engine) -> String {
    struct Sha256Hasher(Sha256);
    impl Hasher for Sha256Hasher {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut hasher = Sha256Hasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    format!("sha256:{}", hex(&hasher.0.finalize()))
}

/// Advances the engine's epoch every tick, until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("hookhost-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_follows_code_generation_settings_only() {
        let fingerprint = |instances: InstanceAllocation, fuel: bool| {
            let (engine, _) = build_engine(instances, fuel).unwrap();
            fingerprint_of(&engine)
        };
        let default = fingerprint(InstanceAllocation::default(), true);
        assert!(default.starts_with("sha256:") && default.len() == 71);
        // Fuel metering changes every function's code.
        let no_fuel = fingerprint(InstanceAllocation::default(), false);
        assert_ne!(no_fuel, default);
        // The allocator does not: precompiled code works with either.
        let on_demand = fingerprint(InstanceAllocation::OnDemand, true);
        assert_eq!(on_demand, default);
    }

    #[test]
    fn a_pool_too_large_to_reserve_falls_back_to_on_demand() {
        // 200 000 memory slots of 4 GiB: far more address space than a 64-bit process has.
        let engine =
            SandboxEngine::new(InstanceAllocation::Pooling { sandboxes: 100_000 }, true).unwrap();
        assert_eq!(engine.instance_allocation(), InstanceAllocation::OnDemand);
        let pooled = SandboxEngine::new(InstanceAllocation::default(), true).unwrap();
        assert_eq!(pooled.instance_allocation(), InstanceAllocation::default());
    }
}
