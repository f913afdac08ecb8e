//! Hook components: bytes → digest → a checked component with its contract, linked on a
//! [`Host`]'s engine and kept per digest.
//!
//! A [`Host`] is one [`SandboxEngine`] (see [`crate::engine`]) plus the host-wide
//! [`Ceilings`], the code cache and the components loaded on it. [`Host::load_file`] and
//! [`Host::load_bytes`] turn bytes into a [`HookComponent`]: digested, checked to be a
//! component implementing the hook world, linked, and asked for its contract.
//!
//! - **Linked once per digest.** The compiled, linked component
//!   ([`wasmtime::component::InstancePre`]) and its contract are kept per digest (up to
//!   [`DEFAULT_MAX_LOADED_COMPONENTS`]): loading bytes the host already loaded costs a hash
//!   ([`CodeSource::Reused`]).
//! - **Compiled once per engine.** With [`HostConfig::code_cache`], compiled code is stored on
//!   disk by digest and engine fingerprint and loaded instead of compiled
//!   ([`CodeSource::Cache`]); see [`crate::cache`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use wasmtime::Store;
use wasmtime::component::Component;

use crate::bindings::HookPre;
use crate::cache::CodeCache;
use crate::contract::Contract;
use crate::digest::sha256_digest;
pub use crate::engine::{
    DEFAULT_POOLED_SANDBOXES, HOST_VERSION, InstanceAllocation, SandboxEngine, WASMTIME_VERSION,
};
use crate::error::Error;
use crate::limits::{
    Ceilings, DEFAULT_CHUNK_SIZE, HEAVY_CHUNK_SIZE, HEAVY_MEMORY_IMAGE_BYTES, WASM_PAGE_BYTES,
};
use crate::sandbox::{OutputCapture, SandboxSpec, SandboxState};

/// The version of the hook world (`wit/hook.wit`) this host implements. A component built
/// against another version is refused at load, with both versions named.
pub const HOOK_WORLD_VERSION: &str = "0.2.0";

/// The largest component the host will load.
pub const DEFAULT_MAX_COMPONENT_BYTES: u64 = 64 << 20;
/// How many loaded components (compiled, linked, with their contract) a host keeps by digest,
/// so loading the same bytes again neither compiles nor links. Past this, the least recently
/// loaded is forgotten (runs holding it keep it alive). Each costs its compiled code in memory.
pub const DEFAULT_MAX_LOADED_COMPONENTS: usize = 64;
/// How a [`Host`] is set up.
///
/// ```
/// use hookhost::component::{HostConfig, InstanceAllocation};
///
/// let config = HostConfig {
///     code_cache: Some(".hookhost/cache/code".into()),
///     instances: InstanceAllocation::Pooling { sandboxes: 512 },
///     ..HostConfig::default()
/// };
/// assert!(config.fuel_metering);
/// ```
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The most any run may ask for. By default [`Ceilings::default`].
    pub ceilings: Ceilings,
    /// The largest component accepted, in bytes. By default [`DEFAULT_MAX_COMPONENT_BYTES`]
    /// (also when set to 0).
    pub max_component_bytes: u64,
    /// A directory for compiled code, kept by component digest and engine fingerprint, so a
    /// component is compiled once rather than once per process (see [`crate::cache`]). The
    /// directory is created if needed. By default `None`: every process compiles. The CLI uses
    /// [`CODE_CACHE_DIR`](crate::cache::CODE_CACHE_DIR) under the registry root.
    pub code_cache: Option<PathBuf>,
    /// How instances are allocated. By default [`InstanceAllocation::Pooling`] with
    /// [`DEFAULT_POOLED_SANDBOXES`].
    pub instances: InstanceAllocation,
    /// Whether guest code counts fuel. With it off, **the fuel limit is not enforced** (a
    /// guest that loops runs until its timeout) and no fuel is reported; code runs a little
    /// faster. Changes compiled code, so the engine fingerprint. By default `true`.
    pub fuel_metering: bool,
    /// How many loaded components the host keeps linked by digest. By default
    /// [`DEFAULT_MAX_LOADED_COMPONENTS`] (also when set to 0).
    pub max_loaded_components: usize,
    /// Who this host is in a fleet, recorded as `worker` in every run record. By default
    /// `None`: [`default_worker`], the host name and process id (`build-3:4242`).
    pub worker: Option<String>,
}

/// The worker identity a host has unless its config names one: the machine's host name and
/// this process's id, `host:pid`, so a run record says which process on which machine ran it.
pub fn default_worker() -> String {
    format!("{}:{}", host_name(), std::process::id())
}

/// The machine's host name, as the kernel has it (`/proc/sys/kernel/hostname`, else
/// `/etc/hostname`; no call into libc needed); `unknown-host` when neither can be read.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            ceilings: Ceilings::default(),
            max_component_bytes: DEFAULT_MAX_COMPONENT_BYTES,
            code_cache: None,
            instances: InstanceAllocation::default(),
            fuel_metering: true,
            max_loaded_components: DEFAULT_MAX_LOADED_COMPONENTS,
            worker: None,
        }
    }
}

/// Where a loaded component's compiled code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeSource {
    /// Compiled from its bytes by this load (and stored in the code cache, if there is one).
    Compiled,
    /// Loaded from the host's [code cache](HostConfig::code_cache), already compiled.
    Cache,
    /// This host had loaded the same digest already: nothing compiled, linked or probed.
    Reused,
}

/// One engine and everything shared by the runs on it. Cheap to clone.
///
/// ```no_run
/// use hookhost::{Host, HostConfig};
///
/// let host = Host::new(HostConfig::default())?;
/// let hook = host.load_file("text_stats.wasm".as_ref())?;
/// println!("{} implements feature `{}`", hook.digest(), hook.contract().feature);
/// # Ok::<(), hookhost::Error>(())
/// ```
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

struct HostInner {
    engine: SandboxEngine,
    ceilings: Ceilings,
    max_component_bytes: u64,
    code_cache: Option<CodeCache>,
    loaded: Mutex<LoadedComponents>,
    worker: String,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("ceilings", &self.inner.ceilings)
            .field("engine", &self.inner.engine)
            .field(
                "code_cache",
                &self.inner.code_cache.as_ref().map(|c| c.path()),
            )
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Builds the engine (falling back from the pooling allocator to on-demand allocation if
    /// the pool cannot be reserved), opens the code cache, links WASI and starts the epoch
    /// thread.
    pub fn new(config: HostConfig) -> Result<Host, Error> {
        let engine = SandboxEngine::new(config.instances, config.fuel_metering)?;
        let code_cache = config
            .code_cache
            .as_deref()
            .map(CodeCache::open)
            .transpose()?;
        let max_component_bytes = match config.max_component_bytes {
            0 => DEFAULT_MAX_COMPONENT_BYTES,
            n => n,
        };
        let max_loaded = match config.max_loaded_components {
            0 => DEFAULT_MAX_LOADED_COMPONENTS,
            n => n,
        };
        Ok(Host {
            inner: Arc::new(HostInner {
                engine,
                ceilings: config.ceilings,
                max_component_bytes,
                code_cache,
                loaded: Mutex::new(LoadedComponents::new(max_loaded)),
                worker: config.worker.unwrap_or_else(default_worker),
            }),
        })
    }

    /// Who this host is in a fleet: [`HostConfig::worker`], recorded in every run record.
    pub fn worker(&self) -> &str {
        &self.inner.worker
    }

    /// The host-wide maxima.
    pub fn ceilings(&self) -> &Ceilings {
        &self.inner.ceilings
    }

    /// `sha256:<hex>` fingerprint of everything in the engine that changes compiled code: the
    /// wasmtime version, the target, the compiler flags and every code-generation setting
    /// (fuel metering, epoch interruption, memory reservation and guards, …). The code cache
    /// is keyed by it; provenance records it.
    pub fn engine_fingerprint(&self) -> &str {
        self.inner.engine.fingerprint()
    }

    /// The engine every sandbox of this host is made on.
    pub fn engine(&self) -> &SandboxEngine {
        &self.inner.engine
    }

    /// The instance allocation in use: the configured one, or [`InstanceAllocation::OnDemand`]
    /// if the pool could not be reserved.
    pub fn instance_allocation(&self) -> InstanceAllocation {
        self.inner.engine.instance_allocation()
    }

    /// Whether guest code counts fuel ([`HostConfig::fuel_metering`]). When not, the fuel
    /// limit is not enforced and stores must not be given fuel.
    pub fn fuel_metering(&self) -> bool {
        self.inner.engine.fuel_metering()
    }

    /// Reads, checks and loads the component at `path`.
    pub fn load_file(&self, path: &Path) -> Result<HookComponent, Error> {
        let bytes = self.read_component(path)?;
        self.load_bytes(&bytes, &path.display().to_string())
    }

    /// Reads the component file at `path`, refusing one over the size cap before reading it.
    pub fn read_component(&self, path: &Path) -> Result<Vec<u8>, Error> {
        let size = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        self.check_size(&path.display().to_string(), size)?;
        std::fs::read(path).map_err(|e| Error::io(path, e))
    }

    /// Checks and loads component `bytes`; `origin` names them in errors (a path, a digest).
    ///
    /// Bytes this host loaded before are not compiled, linked or probed again
    /// ([`CodeSource::Reused`]); with a code cache, code compiled by an earlier process is
    /// loaded from it ([`CodeSource::Cache`]).
    pub fn load_bytes(&self, bytes: &[u8], origin: &str) -> Result<HookComponent, Error> {
        let invalid = |reason: String| Error::InvalidComponent {
            origin: origin.to_owned(),
            reason,
        };
        self.check_size(origin, bytes.len() as u64)?;
        check_component_header(bytes).map_err(|r| invalid(r.to_owned()))?;
        let digest = sha256_digest(bytes);
        let _span = tracing::debug_span!("load", %digest, origin).entered();
        if let Some(loaded) = self.loaded().get(&digest) {
            tracing::debug!("component already loaded on this host");
            return Ok(self.component(loaded, CodeSource::Reused));
        }
        let (component, source) = self.compile(bytes, &digest).map_err(invalid)?;
        check_world_version(&component, self.inner.engine.wasmtime()).map_err(invalid)?;
        let pre = self
            .inner
            .engine
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| invalid(format!("{e:#}")))?;
        let pre = HookPre::new(pre)
            .map_err(|e| invalid(format!("it does not implement the hook world: {e:#}")))?;
        let contract = self
            .ask_contract(&pre)
            .map_err(|e| invalid(format!("contract(): {e}")))?;
        contract
            .validate()
            .map_err(|source| Error::InvalidContract {
                origin: origin.to_owned(),
                source,
            })?;
        if source == CodeSource::Compiled {
            self.store_code(&component, &digest);
        }
        tracing::debug!(feature = %contract.feature, ?source, "component loaded");
        let initial_memory_bytes = component
            .resources_required()
            .and_then(|r| r.max_initial_memory_size)
            .map_or(0, |pages| pages.saturating_mul(WASM_PAGE_BYTES));

        let loaded = Arc::new(LoadedComponent {
            digest,
            size: bytes.len() as u64,
            initial_memory_bytes,
            contract,
            pre,
        });
        self.loaded().insert(loaded.digest.clone(), loaded.clone());
        Ok(self.component(loaded, source))
    }

    fn component(&self, loaded: Arc<LoadedComponent>, source: CodeSource) -> HookComponent {
        HookComponent {
            host: self.clone(),
            loaded,
            source,
        }
    }

    fn loaded(&self) -> std::sync::MutexGuard<'_, LoadedComponents> {
        self.inner.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The component's code: from the cache if it holds a valid entry, else compiled.
    fn compile(&self, bytes: &[u8], digest: &str) -> Result<(Component, CodeSource), String> {
        let engine = self.inner.engine.wasmtime();
        if let Some(cache) = &self.inner.code_cache
            && let Some(component) = cache.load(engine, digest, self.inner.engine.fingerprint())
        {
            return Ok((component, CodeSource::Cache));
        }
        let component = Component::new(engine, bytes).map_err(|e| format!("{e:#}"))?;
        Ok((component, CodeSource::Compiled))
    }

    /// Stores freshly compiled code in the cache, if there is one. A failure costs only the
    /// next process a compile, so it is warned about, not returned.
    fn store_code(&self, component: &Component, digest: &str) {
        let Some(cache) = &self.inner.code_cache else {
            return;
        };
        let stored = component
            .serialize()
            .map_err(|e| format!("{e:#}"))
            .and_then(|code| {
                cache
                    .store(digest, self.inner.engine.fingerprint(), &code)
                    .map_err(|e| e.to_string())
            });
        if let Err(error) = stored {
            tracing::warn!(%digest, error, "could not cache compiled code");
        }
    }

    fn check_size(&self, origin: &str, size: u64) -> Result<(), Error> {
        if size > self.inner.max_component_bytes {
            return Err(Error::InvalidComponent {
                origin: origin.to_owned(),
                reason: format!(
                    "it is {size} bytes, over the cap of {} bytes",
                    self.inner.max_component_bytes
                ),
            });
        }
        Ok(())
    }

    pub(crate) fn new_store(&self, spec: &SandboxSpec<'_>) -> std::io::Result<Store<SandboxState>> {
        self.inner.engine.new_store(spec)
    }

    fn probe_store(&self, capture: &OutputCapture) -> Result<Store<SandboxState>, String> {
        self.inner.engine.probe_store(capture)
    }

    /// Instantiates the component once with default limits and asks for its contract.
    fn ask_contract(&self, pre: &HookPre<SandboxState>) -> Result<Contract, String> {
        let capture = OutputCapture::new(0);
        let mut store = self.probe_store(&capture)?;
        let hook = pre
            .instantiate(&mut store)
            .map_err(|e| crate::sandbox::failure_line(&e))?;
        let contract = hook
            .call_contract(&mut store)
            .map_err(|e| crate::sandbox::failure_line(&e))?;
        Ok(contract.into())
    }
}

/// What a load produces, kept per digest: compiled, linked, with its contract.
struct LoadedComponent {
    digest: String,
    size: u64,
    /// The largest initial linear memory of its core instances, in bytes (0 if unknown).
    initial_memory_bytes: u64,
    contract: Contract,
    pre: HookPre<SandboxState>,
}

/// Loaded components by digest, forgetting the least recently used past a bound.
struct LoadedComponents<T = LoadedComponent> {
    by_digest: HashMap<String, (Arc<T>, u64)>,
    max: usize,
    clock: u64,
}

impl<T> LoadedComponents<T> {
    fn new(max: usize) -> Self {
        LoadedComponents {
            by_digest: HashMap::new(),
            max: max.max(1),
            clock: 0,
        }
    }

    fn get(&mut self, digest: &str) -> Option<Arc<T>> {
        self.clock += 1;
        let (loaded, used) = self.by_digest.get_mut(digest)?;
        *used = self.clock;
        Some(loaded.clone())
    }

    fn insert(&mut self, digest: String, loaded: Arc<T>) {
        self.clock += 1;
        self.by_digest.insert(digest, (loaded, self.clock));
        while self.by_digest.len() > self.max {
            let oldest = self
                .by_digest
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(digest, _)| digest.clone());
            match oldest {
                Some(digest) => self.by_digest.remove(&digest),
                None => break,
            };
        }
    }
}

/// A loaded hook component: its identity, its contract, and the linked code ready to
/// instantiate. Cheap to clone.
#[derive(Clone)]
pub struct HookComponent {
    host: Host,
    loaded: Arc<LoadedComponent>,
    source: CodeSource,
}

impl fmt::Debug for HookComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookComponent")
            .field("digest", &self.loaded.digest)
            .field("size", &self.loaded.size)
            .field("feature", &self.loaded.contract.feature)
            .field("compiled_from", &self.source)
            .finish_non_exhaustive()
    }
}

impl HookComponent {
    /// `sha256:<hex>` of the component's bytes: its identity.
    pub fn digest(&self) -> &str {
        &self.loaded.digest
    }

    /// The component's size in bytes.
    pub fn size(&self) -> u64 {
        self.loaded.size
    }

    /// What the hook outputs.
    pub fn contract(&self) -> &Contract {
        &self.loaded.contract
    }

    /// The largest initial linear memory of the component's core instances, in bytes: what
    /// each sandbox starts with, before the guest grows it. 0 when it cannot be told before
    /// instantiating.
    pub fn initial_memory_bytes(&self) -> u64 {
        self.loaded.initial_memory_bytes
    }

    /// Records per call for this hook, by default: [`HEAVY_CHUNK_SIZE`] for a heavy component
    /// (an initial memory of [`HEAVY_MEMORY_IMAGE_BYTES`] or more, e.g. an interpreter), else
    /// [`DEFAULT_CHUNK_SIZE`].
    pub fn default_chunk_size(&self) -> usize {
        if self.loaded.initial_memory_bytes >= HEAVY_MEMORY_IMAGE_BYTES {
            HEAVY_CHUNK_SIZE
        } else {
            DEFAULT_CHUNK_SIZE
        }
    }

    /// The host this component was loaded on.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Where this load got its compiled code: compiled, the code cache, or an earlier load of
    /// the same digest on this host.
    pub fn compiled_from(&self) -> CodeSource {
        self.source
    }

    /// Builds a fresh sandbox with default limits and instantiates the component in it, as
    /// every call starts, then drops it: a health check, a way to warm the instance pool, and
    /// what the `instantiate` benchmark measures.
    pub fn instantiate_once(&self) -> Result<(), Error> {
        let capture = OutputCapture::new(0);
        let mut store =
            self.host
                .probe_store(&capture)
                .map_err(|reason| Error::InvalidComponent {
                    origin: self.loaded.digest.clone(),
                    reason,
                })?;
        self.loaded
            .pre
            .instantiate(&mut store)
            .map_err(Error::Engine)?;
        Ok(())
    }

    pub(crate) fn pre(&self) -> &HookPre<SandboxState> {
        &self.loaded.pre
    }
}

/// Refuses a component whose imports or exports name another version of the
/// `hookhost:hook` package than [`HOOK_WORLD_VERSION`], before linking would fail with a
/// generic "missing import" or "missing export" (a 0.1.0 hook imports
/// `hookhost:hook/types@0.1.0` and lacks the 0.2.0 `host` import).
fn check_world_version(component: &Component, engine: &wasmtime::Engine) -> Result<(), String> {
    let ty = component.component_type();
    let imports = ty.imports(engine).map(|(name, _)| name);
    let exports = ty.exports(engine).map(|(name, _)| name);
    for name in imports.chain(exports) {
        let Some(interface) = name.strip_prefix("hookhost:hook/") else {
            continue;
        };
        let version = interface.split_once('@').map(|(_, version)| version);
        if version != Some(HOOK_WORLD_VERSION) {
            return Err(format!(
                "it implements hookhost:hook@{}, but this host needs \
                 hookhost:hook@{HOOK_WORLD_VERSION} (it names `{name}`); rebuild it against \
                 the host's wit/hook.wit (for Rust, with the current hookhost-sdk)",
                version.unwrap_or("(no version)")
            ));
        }
    }
    Ok(())
}

/// Tells a component from a core module or a non-WebAssembly file, before compiling.
fn check_component_header(bytes: &[u8]) -> Result<(), &'static str> {
    if bytes.is_empty() {
        return Err("the file is empty");
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err("it is not WebAssembly (no `\\0asm` header)");
    }
    // Bytes 6..8 are the layer: 0 for a core module, 1 for a component.
    match [bytes[6], bytes[7]] {
        [1, 0] => Ok(()),
        [0, 0] => Err(
            "it is a core WebAssembly module, not a component; build the hook for \
             `wasm32-wasip2` (which makes a component), or wrap the module with \
             `wasm-tools component new`",
        ),
        _ => Err("it has an unknown WebAssembly layer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_tell_components_from_modules() {
        assert_eq!(check_component_header(b""), Err("the file is empty"));
        assert!(
            check_component_header(b"hello world")
                .unwrap_err()
                .contains("not WebAssembly")
        );
        let module = wat::parse_str("(module)").unwrap();
        assert!(
            check_component_header(&module)
                .unwrap_err()
                .contains("core WebAssembly module")
        );
        let component = wat::parse_str("(component)").unwrap();
        assert_eq!(check_component_header(&component), Ok(()));
    }

    #[test]
    fn loaded_components_forget_the_least_recently_used() {
        let mut loaded = LoadedComponents::new(2);
        loaded.insert("a".into(), Arc::new(1));
        loaded.insert("b".into(), Arc::new(2));
        assert_eq!(loaded.get("a").as_deref(), Some(&1));
        loaded.insert("c".into(), Arc::new(3));
        assert!(loaded.get("b").is_none(), "b was the least recently used");
        assert_eq!(loaded.get("a").as_deref(), Some(&1));
        assert_eq!(loaded.get("c").as_deref(), Some(&3));
    }
}
