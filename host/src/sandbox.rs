//! The sandbox one call runs in: a fresh [`wasmtime::Store`] whose WASI context grants nothing
//! but what the run asked for.
//!
//! What a guest sees:
//! - no environment, arguments or stdin; no network (sockets are linked but every address and
//!   name lookup is denied); no writable filesystem;
//! - the files directories of the records in the current call, read-only, at `/files/<id>`;
//! - a wall clock fixed at [`FIXED_WALL_CLOCK`] and a monotonic clock that never advances;
//! - random bytes from generators seeded with [`RANDOM_SEED`], so runs repeat exactly;
//! - stdout and stderr captured into one buffer, up to a cap; the rest is dropped and counted.
//!
//! What the host watches: every memory grow goes through [`MemoryLimiter`], which denies grows
//! past the cap and remembers that it did; a per-call epoch deadline (checked every
//! [`EPOCH_TICK`]) stops guests that run past their time or whose run was cancelled.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use wasmtime::{ResourceLimiter, UpdateDeadline};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{
    FsPerms, HostMonotonicClock, HostWallClock, ResourceTable, WasiCtx, WasiCtxBuilder,
    WasiCtxView, WasiView,
};

/// How often the host's epoch advances; timeouts and cancellation act at this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// The wall-clock time every guest sees: 2000-01-01T00:00:00Z, as time since the Unix epoch.
pub const FIXED_WALL_CLOCK: Duration = Duration::from_secs(946_684_800);
/// The seed of the guest's random generators (both `wasi:random/random` and the insecure one).
pub const RANDOM_SEED: u64 = 0x686f_6f6b_686f_7374; // "hookhost"
/// The most table elements (function references) a sandbox may hold.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;
/// Where a record's files directory appears inside the sandbox: `/files/<id>`.
pub const FILES_GUEST_ROOT: &str = "/files";

/// The state a sandbox's store carries.
pub(crate) struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryLimiter,
    /// The fuel the store was last given, so what was used can be told from what is left.
    pub(crate) fuel_given: u64,
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// What one sandbox is given.
pub(crate) struct SandboxSpec<'a> {
    /// Memory cap in bytes for this sandbox.
    pub memory_cap: u64,
    /// Where guest output goes.
    pub capture: &'a OutputCapture,
    /// Host directories to show read-only: `(host path, guest path)`.
    pub preopens: &'a [(std::path::PathBuf, String)],
}

impl SandboxState {
    pub(crate) fn new(spec: &SandboxSpec<'_>) -> io::Result<Self> {
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(spec.capture.clone())
            .stderr(spec.capture.clone())
            .wall_clock(FixedWallClock)
            .monotonic_clock(FrozenMonotonicClock)
            .secure_random(StdRng::seed_from_u64(RANDOM_SEED))
            .insecure_random(StdRng::seed_from_u64(RANDOM_SEED.rotate_left(17)))
            .insecure_random_seed(u128::from(RANDOM_SEED))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (host, guest) in spec.preopens {
            builder
                .preopened_dir(host, guest, FsPerms::ReadOnly)
                .map_err(|e| io::Error::other(format!("{}: {e:#}", host.display())))?;
        }
        Ok(SandboxState {
            wasi: builder.build(),
            table: ResourceTable::new(),
            memory: MemoryLimiter::new(spec.memory_cap),
            fuel_given: 0,
        })
    }
}

/// Caps a sandbox's total linear memory and records denials.
///
/// A denied grow usually makes a Rust guest abort (an `unreachable` trap), so the trap alone
/// does not say "out of memory": the runner asks [`MemoryLimiter::denied`] instead.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    cap: u64,
    total: u64,
    peak: u64,
    denied: Option<u64>,
}

impl MemoryLimiter {
    fn new(cap: u64) -> Self {
        MemoryLimiter {
            cap,
            total: 0,
            peak: 0,
            denied: None,
        }
    }

    /// The total memory a denied grow asked for, if any grow was denied.
    pub(crate) fn denied(&self) -> Option<u64> {
        self.denied
    }

    /// The most linear memory this sandbox held at once.
    pub(crate) fn peak(&self) -> u64 {
        self.peak
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let wanted = self.total - current as u64 + desired as u64;
        if wanted > self.cap {
            self.denied = Some(wanted);
            return Ok(false);
        }
        self.total = wanted;
        self.peak = self.peak.max(wanted);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // The grow was allowed by the cap but the allocation failed anyway: treat it like a
        // denial, so the record is retried with more room or reported as out of memory.
        self.denied.get_or_insert(self.total);
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Why the epoch deadline stopped a guest. Returned as the call's error, then downcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Stop {
    /// The call ran past its wall-clock budget.
    #[error("the call ran past its time budget")]
    Timeout,
    /// The run was cancelled.
    #[error("the run was cancelled")]
    Cancelled,
}

/// Installs the epoch callback on `store`: the guest may run `ticks` epoch ticks from now,
/// and stops sooner if `cancel` is set.
pub(crate) fn arm_deadline<T: 'static>(
    store: &mut wasmtime::Store<T>,
    ticks: u64,
    cancel: Arc<AtomicBool>,
) {
    let mut remaining = ticks;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if cancel.load(Ordering::Relaxed) {
            return Err(Stop::Cancelled.into());
        }
        if remaining == 0 {
            return Err(Stop::Timeout.into());
        }
        remaining -= 1;
        Ok(UpdateDeadline::Continue(1))
    });
}

/// The epoch ticks a budget of `time` needs (at least one).
pub(crate) fn ticks_for(time: Duration) -> u64 {
    (time.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64).max(1)
}

struct FixedWallClock;

impl HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        FIXED_WALL_CLOCK
    }
}

struct FrozenMonotonicClock;

impl HostMonotonicClock for FrozenMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Guest stdout and stderr of one sandbox, interleaved as written, up to a cap.
#[derive(Clone)]
pub(crate) struct OutputCapture {
    inner: Arc<Mutex<Captured>>,
}

#[derive(Default)]
pub(crate) struct Captured {
    pub bytes: Vec<u8>,
    pub dropped: u64,
    cap: usize,
}

impl OutputCapture {
    pub(crate) fn new(cap: usize) -> Self {
        OutputCapture {
            inner: Arc::new(Mutex::new(Captured {
                cap,
                ..Captured::default()
            })),
        }
    }

    /// Takes what was captured so far, leaving the capture empty.
    pub(crate) fn take(&self) -> Captured {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let cap = inner.cap;
        std::mem::replace(
            &mut *inner,
            Captured {
                cap,
                ..Captured::default()
            },
        )
    }

    fn push(&self, bytes: &[u8]) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let room = inner.cap.saturating_sub(inner.bytes.len());
        let kept = bytes.len().min(room);
        inner.bytes.extend_from_slice(&bytes[..kept]);
        inner.dropped += (bytes.len() - kept) as u64;
    }
}

impl IsTerminal for OutputCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputCapture {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

/// The most a guest may write in one go; writing never blocks and never fails, so a guest
/// that floods its output is slowed by nothing but its fuel.
const CAPTURE_WRITE_WINDOW: usize = 64 * 1024;

#[wasmtime_wasi::async_trait]
impl Pollable for OutputCapture {
    async fn ready(&mut self) {}
}

impl OutputStream for OutputCapture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(CAPTURE_WRITE_WINDOW)
    }
}

impl tokio::io::AsyncWrite for OutputCapture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_denies_past_the_cap_and_remembers() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(limiter.memory_growing(60, 100, None).unwrap());
        assert_eq!(limiter.denied(), None);
        assert!(!limiter.memory_growing(100, 101, None).unwrap());
        assert_eq!(limiter.denied(), Some(101));
        assert_eq!(limiter.peak(), 100);
    }

    #[test]
    fn capture_keeps_the_cap_and_counts_the_rest() {
        let capture = OutputCapture::new(5);
        capture.push(b"abc");
        capture.push(b"defg");
        let taken = capture.take();
        assert_eq!(taken.bytes, b"abcde");
        assert_eq!(taken.dropped, 2);
        assert!(capture.take().bytes.is_empty());
    }

    #[test]
    fn ticks_round_up() {
        assert_eq!(ticks_for(Duration::from_millis(1)), 1);
        assert_eq!(ticks_for(EPOCH_TICK * 3), 3);
        assert_eq!(ticks_for(EPOCH_TICK * 3 + Duration::from_nanos(1)), 4);
    }
}
