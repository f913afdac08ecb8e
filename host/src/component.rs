//! The engine and hook components.
//!
//! A [`Host`] owns one wasmtime engine (fuel metering and epoch interruption on), the linker
//! with the WASI preview 2 interfaces, the host-wide [`Ceilings`], and the thread that advances
//! the epoch every [`EPOCH_TICK`](crate::sandbox::EPOCH_TICK). [`Host::load_file`] and
//! [`Host::load_bytes`] turn bytes into a [`HookComponent`]: digested, checked to be a
//! component implementing the hook world, linked, and asked for its contract.

use std::fmt;
use std::hash::Hasher;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};

use crate::bindings::HookPre;
use crate::contract::{Contract, hex, sha256_digest};
use crate::error::Error;
use crate::limits::{Ceilings, Limits};
use crate::sandbox::{self, EPOCH_TICK, OutputCapture, SandboxSpec, SandboxState};

/// The largest component the host will load.
pub const DEFAULT_MAX_COMPONENT_BYTES: u64 = 64 << 20;

/// The version of this host, for provenance.
pub const HOST_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The version of wasmtime this host was built with, for provenance.
pub const WASMTIME_VERSION: &str = env!("HOOKHOST_WASMTIME_VERSION");

/// How a [`Host`] is set up.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// The most any run may ask for. By default [`Ceilings::default`].
    pub ceilings: Ceilings,
    /// The largest component accepted, in bytes. By default [`DEFAULT_MAX_COMPONENT_BYTES`]
    /// (when left at 0).
    pub max_component_bytes: u64,
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
    engine: Engine,
    linker: Linker<SandboxState>,
    ceilings: Ceilings,
    max_component_bytes: u64,
    fingerprint: String,
    _ticker: EpochTicker,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("ceilings", &self.inner.ceilings)
            .field("engine", &self.inner.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Builds the engine, links WASI and starts the epoch thread.
    pub fn new(config: HostConfig) -> Result<Host, Error> {
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true);
        let engine = Engine::new(&wasm).map_err(Error::Engine)?;
        let mut linker = Linker::new(&engine);
        // WASI with clocks whose sleeps take no host time (see `sandbox::add_to_linker`).
        sandbox::add_to_linker(&mut linker).map_err(Error::Engine)?;
        let fingerprint = engine_fingerprint(&engine);
        let ticker = EpochTicker::start(engine.clone());
        let max_component_bytes = match config.max_component_bytes {
            0 => DEFAULT_MAX_COMPONENT_BYTES,
            n => n,
        };
        Ok(Host {
            inner: Arc::new(HostInner {
                engine,
                linker,
                ceilings: config.ceilings,
                max_component_bytes,
                fingerprint,
                _ticker: ticker,
            }),
        })
    }

    /// The host-wide maxima.
    pub fn ceilings(&self) -> &Ceilings {
        &self.inner.ceilings
    }

    /// `sha256:<hex>` fingerprint of everything in the engine that changes compiled code.
    pub fn engine_fingerprint(&self) -> &str {
        &self.inner.fingerprint
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
    pub fn load_bytes(&self, bytes: &[u8], origin: &str) -> Result<HookComponent, Error> {
        let invalid = |reason: String| Error::InvalidComponent {
            origin: origin.to_owned(),
            reason,
        };
        self.check_size(origin, bytes.len() as u64)?;
        check_component_header(bytes).map_err(|r| invalid(r.to_owned()))?;
        let digest = sha256_digest(bytes);
        let _span = tracing::debug_span!("load", %digest, origin).entered();
        let component =
            Component::new(&self.inner.engine, bytes).map_err(|e| invalid(format!("{e:#}")))?;
        let pre = self
            .inner
            .linker
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
        tracing::debug!(feature = %contract.feature, "component loaded");
        Ok(HookComponent {
            host: self.clone(),
            digest,
            size: bytes.len() as u64,
            contract,
            pre,
        })
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
        let mut store = Store::new(&self.inner.engine, SandboxState::new(spec)?);
        store.limiter(|state| &mut state.memory);
        Ok(store)
    }

    /// Instantiates the component once with default limits and asks for its contract.
    fn ask_contract(&self, pre: &HookPre<SandboxState>) -> Result<Contract, String> {
        let limits = Limits::default();
        let capture = OutputCapture::new(0);
        let spec = SandboxSpec {
            memory_cap: limits.memory_bytes,
            capture: &capture,
            preopens: &[],
        };
        let mut store = self.new_store(&spec).map_err(|e| e.to_string())?;
        store
            .set_fuel(limits.fuel_per_record)
            .map_err(|e| e.to_string())?;
        sandbox::arm_deadline(
            &mut store,
            sandbox::ticks_for(limits.timeout),
            Arc::new(AtomicBool::new(false)),
        );
        let hook = pre.instantiate(&mut store).map_err(|e| format!("{e:#}"))?;
        let contract = hook
            .call_contract(&mut store)
            .map_err(|e| format!("{e:#}"))?;
        Ok(contract.into())
    }
}

/// A loaded hook component: its identity, its contract, and the linked code ready to
/// instantiate. Cheap to clone.
#[derive(Clone)]
pub struct HookComponent {
    host: Host,
    digest: String,
    size: u64,
    contract: Contract,
    pre: HookPre<SandboxState>,
}

impl fmt::Debug for HookComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookComponent")
            .field("digest", &self.digest)
            .field("size", &self.size)
            .field("feature", &self.contract.feature)
            .finish_non_exhaustive()
    }
}

impl HookComponent {
    /// `sha256:<hex>` of the component's bytes: its identity.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The component's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// What the hook outputs.
    pub fn contract(&self) -> &Contract {
        &self.contract
    }

    /// The host this component was loaded on.
    pub fn host(&self) -> &Host {
        &self.host
    }

    pub(crate) fn pre(&self) -> &HookPre<SandboxState> {
        &self.pre
    }
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

/// Hashes the engine's compatibility hash (which covers the wasmtime version and every
/// setting that changes compiled code) into a stable digest.
fn engine_fingerprint(engine: &Engine) -> String {
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
}
