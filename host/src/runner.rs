//! The batch runner: runs chunks of records through fresh sandboxes and settles one outcome
//! per record.
//!
//! One call is a fixed sequence of small steps: build the sandbox (fresh store, memory cap,
//! captured output, the files of the call's records) → install `configure`'s own budget
//! ([`DEFAULT_CONFIGURE_FUEL`], [`DEFAULT_CONFIGURE_TIMEOUT`]) → instantiate and `configure` →
//! install the budget of N records → `process` (each `begin-record(i)` of the guest moves the
//! budget to record `i`, see [`crate::sandbox`]) → collect fuel, memory and output → match the
//! outcomes to the records by index → classify the result.
//!
//! When a call fails, the runner keeps every innocent record's outcome:
//! - a denied memory grow reruns the same records with the cap doubled (at most
//!   `max_oom_retries` times in the run, never above the ceiling; the raised cap stays);
//! - a record that ran out of its own fuel or time (it had announced itself and had a whole
//!   record's budget) errors, and the others are run again without it in one call;
//! - any other failure (trap, a pooled budget running out, outcomes that do not name each
//!   record once, a misused `begin-record`), or an OOM with no doubling left, reruns each
//!   record of the call alone on a fresh sandbox, so only the failing record gets the error.
//!   (Alone, the guilty record burns one budget and the others only their real work; halving
//!   instead would burn about N budgets on a record that loops.)

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use wasmtime::Trap;

use crate::bindings::{self, hookhost::hook::types::Outcome};
use crate::component::HookComponent;
use crate::contract::{CheckedRows, Violation};
use crate::error::{Error, RecordError};
use crate::input::PendingRecord;
use crate::limits::{DEFAULT_CONFIGURE_FUEL, DEFAULT_CONFIGURE_TIMEOUT, Limits};
use crate::sandbox::{
    self, BeginRecordMisuse, Budget, OutputCapture, SandboxSpec, SandboxState, Stop,
};

pub use crate::limits::{DEFAULT_CHUNK_SIZE, HEAVY_CHUNK_SIZE, HEAVY_MEMORY_IMAGE_BYTES};
/// The most JSON one record's rows may take.
pub const DEFAULT_MAX_OUTPUT_BYTES_PER_RECORD: u64 = 16 << 20;
/// The most guest output (stdout and stderr) kept for one run; the rest is dropped and counted.
pub const DEFAULT_MAX_LOG_BYTES: u64 = 16 << 20;
/// The longest rejection reason or guest error message kept, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 16 << 10;

/// How a [`BatchRunner`] runs.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// The limits, already clamped to the host's ceilings.
    pub limits: Limits,
    /// The most memory the cap may double to.
    pub memory_ceiling: u64,
    /// The config handed to `configure`, as JSON text.
    pub config_json: String,
    /// The most JSON one record's rows may take. By default
    /// [`DEFAULT_MAX_OUTPUT_BYTES_PER_RECORD`].
    pub max_output_bytes_per_record: u64,
    /// The most guest output kept for the run. By default [`DEFAULT_MAX_LOG_BYTES`].
    pub max_log_bytes: u64,
    /// Set to stop the run: in-flight guest code stops within one epoch tick.
    pub cancel: Arc<AtomicBool>,
    /// Whether passed rows keep their JSON values beside their rendered lines
    /// ([`CheckedRows`]). A run whose rows go only to `features.jsonl` needs just the lines,
    /// and its values are freed on the thread that made them.
    pub keep_values: bool,
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    /// The record passed with these rows.
    Passed(CheckedRows),
    /// The hook refused the record.
    Rejected(String),
    /// The record has no features because of this error.
    Errored(RecordError),
}

/// What the runner has measured so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunnerStats {
    /// Fuel used by every call, failed ones and reruns included.
    pub fuel_consumed: u64,
    /// The most linear memory any sandbox held.
    pub peak_memory_bytes: u64,
    /// Sandboxes started (calls made), reruns included.
    pub calls: u64,
    /// Times the memory cap doubled.
    pub oom_retries: u32,
    /// The memory cap now in force.
    pub memory_bytes: u64,
    /// Guest output bytes dropped because the log cap was reached.
    pub log_bytes_dropped: u64,
    /// The most fuel one announced record used, among the records of calls that settled.
    pub fuel_per_record_max: u64,
    /// How many settled records had their fuel measured on their own (the guest announced
    /// them with `begin-record`).
    pub fuel_records_metered: u64,
}

/// Runs chunks of records for one run of one hook. See the module docs for the retry rules.
#[derive(Debug)]
pub struct BatchRunner {
    hook: HookComponent,
    settings: RunnerSettings,
    stats: RunnerStats,
    memory: Arc<MemoryCap>,
    logs: Vec<u8>,
    /// Calls made for the current chunk, numbering its log headers.
    chunk_calls: u64,
}

/// The memory cap of a run, shared by the runners working on its chunks in parallel, so a
/// doubling is made once and counted once, and the raised cap holds for all of them.
#[derive(Debug)]
struct MemoryCap {
    /// The cap in force and how many times it doubled.
    state: Mutex<(u64, u32)>,
}

impl MemoryCap {
    fn now(&self) -> (u64, u32) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why a call produced no usable outcomes.
#[derive(Debug, Clone, PartialEq)]
enum Failure {
    /// Out of fuel; `record` is the index of the announced record that had a whole record's
    /// fuel and spent it, if there was one.
    Fuel {
        record: Option<usize>,
    },
    /// Out of time; `record` as for fuel.
    Timeout {
        record: Option<usize>,
    },
    Memory,
    /// A denied grow while instantiating or configuring: not any record's fault.
    ConfigureMemory,
    Trap(String),
    OutcomeCount {
        expected: usize,
        got: usize,
    },
    /// The answer or the announcements broke the contract (outcomes that do not name each
    /// record once, a misused `begin-record`).
    Contract(String),
}

impl Failure {
    /// The record that alone caused the failure, when the host knows it.
    fn guilty(&self) -> Option<usize> {
        match self {
            Failure::Fuel { record } | Failure::Timeout { record } => *record,
            _ => None,
        }
    }
}

impl BatchRunner {
    /// A runner for `hook` with `settings`.
    pub fn new(hook: HookComponent, settings: RunnerSettings) -> Self {
        let memory = Arc::new(MemoryCap {
            state: Mutex::new((settings.limits.memory_bytes, 0)),
        });
        BatchRunner {
            hook,
            settings,
            stats: RunnerStats::default(),
            memory,
            logs: Vec::new(),
            chunk_calls: 0,
        }
    }

    /// A runner for other chunks of the same run, to run on another thread: it shares this
    /// one's memory cap (a doubling by either holds for both, and is counted once) and keeps
    /// its own counters.
    pub fn sibling(&self) -> BatchRunner {
        BatchRunner {
            hook: self.hook.clone(),
            settings: self.settings.clone(),
            stats: RunnerStats::default(),
            memory: self.memory.clone(),
            logs: Vec::new(),
            chunk_calls: 0,
        }
    }

    /// What the runner has measured so far (the memory cap and its doublings are the run's).
    pub fn stats(&self) -> RunnerStats {
        let (memory_bytes, oom_retries) = self.memory.now();
        RunnerStats {
            memory_bytes,
            oom_retries,
            ..self.stats
        }
    }

    /// Takes what this runner measured since the last call to this (fuel, calls, peak memory,
    /// dropped log bytes), leaving its counters at zero; the memory cap and its doublings are
    /// the run's and stay. Lets several runners' counters be summed without double counting.
    pub fn take_stats(&mut self) -> RunnerStats {
        let taken = self.stats();
        self.stats = RunnerStats::default();
        taken
    }

    /// Takes the guest output captured since the last call to this, with a header per call.
    pub fn take_logs(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.logs)
    }

    /// Runs `records` and returns one outcome per record, in order.
    ///
    /// Fails only when the run itself cannot go on: the hook refused its config, `configure`
    /// failed, the engine failed, or the run was cancelled ([`Error::Cancelled`]; outcomes
    /// already settled in earlier chunks stay valid).
    pub fn run_chunk(&mut self, records: &[PendingRecord]) -> Result<Vec<RecordOutcome>, Error> {
        self.chunk_calls = 0;
        let outcomes = self.run_isolated(records)?;
        debug_assert_eq!(outcomes.len(), records.len());
        Ok(outcomes)
    }

    /// One outcome per record of `records`, in order, however many calls that takes.
    fn run_isolated(&mut self, records: &[PendingRecord]) -> Result<Vec<RecordOutcome>, Error> {
        match self.call_with_oom_retries(records)? {
            Ok(settled) => Ok(settled),
            Err(failure) if records.len() == 1 => {
                Ok(vec![RecordOutcome::Errored(self.record_error(failure))])
            }
            Err(failure) => match failure.guilty() {
                Some(guilty) => self.run_without(records, guilty, failure),
                None => self.run_each_alone(records, failure),
            },
        }
    }

    /// Errors record `guilty`, which spent its own whole budget, and runs the others again
    /// without it, in one call.
    fn run_without(
        &mut self,
        records: &[PendingRecord],
        guilty: usize,
        failure: Failure,
    ) -> Result<Vec<RecordOutcome>, Error> {
        tracing::debug!(
            ?failure,
            records = records.len(),
            guilty,
            "rerunning the call without the record that ran out"
        );
        let others: Vec<PendingRecord> = records
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != guilty)
            .map(|(_, r)| r.clone())
            .collect();
        let mut outcomes = self.run_isolated(&others)?;
        outcomes.insert(guilty, RecordOutcome::Errored(self.record_error(failure)));
        Ok(outcomes)
    }

    /// Alone, each record costs at most its own budget: the guilty one burns one budget, the
    /// innocent ones only their real work.
    fn run_each_alone(
        &mut self,
        records: &[PendingRecord],
        failure: Failure,
    ) -> Result<Vec<RecordOutcome>, Error> {
        tracing::debug!(
            ?failure,
            records = records.len(),
            "rerunning each record alone"
        );
        let mut outcomes = Vec::with_capacity(records.len());
        for record in records {
            outcomes.extend(self.run_isolated(std::slice::from_ref(record))?);
        }
        Ok(outcomes)
    }

    /// Calls, doubling the memory cap and calling again while a denied grow is the cause and
    /// the run may still double.
    fn call_with_oom_retries(
        &mut self,
        records: &[PendingRecord],
    ) -> Result<Result<Vec<RecordOutcome>, Failure>, Error> {
        loop {
            let (cap, _) = self.memory.now();
            match self.call(records, cap)? {
                Err(Failure::Memory | Failure::ConfigureMemory) if self.double_memory(cap) => {}
                Err(Failure::ConfigureMemory) => {
                    return Err(Error::ConfigureFailed(format!(
                        "ran out of memory at the cap of {cap} bytes"
                    )));
                }
                answer => return Ok(answer),
            }
        }
    }

    /// After a denied grow at `cap`: raises the run's cap if the run may (or finds it already
    /// raised by a sibling); says whether a call at a higher cap is possible.
    fn double_memory(&mut self, cap: u64) -> bool {
        let limits = &self.settings.limits;
        let mut state = self.memory.state.lock().unwrap_or_else(|p| p.into_inner());
        let (current, retries) = *state;
        if current > cap {
            return true;
        }
        if retries >= limits.max_oom_retries || cap >= self.settings.memory_ceiling {
            return false;
        }
        let raised = cap.saturating_mul(2).min(self.settings.memory_ceiling);
        *state = (raised, retries + 1);
        tracing::info!(
            from = cap,
            to = raised,
            retry = retries + 1,
            "memory cap doubled after a denied grow"
        );
        true
    }

    fn record_error(&self, failure: Failure) -> RecordError {
        let limits = &self.settings.limits;
        match failure {
            Failure::Fuel { .. } => RecordError::FuelExhausted {
                fuel_per_record: limits.fuel_per_record,
            },
            Failure::Timeout { .. } => RecordError::Timeout {
                timeout_ms: limits.timeout.as_millis() as u64,
            },
            Failure::Memory | Failure::ConfigureMemory => {
                let (cap_bytes, oom_retries) = self.memory.now();
                RecordError::MemoryExhausted {
                    cap_bytes,
                    oom_retries,
                }
            }
            Failure::Trap(message) => RecordError::Trap(message),
            Failure::OutcomeCount { expected, got } => RecordError::ContractViolation(Violation {
                column: None,
                row: None,
                reason: format!("the hook returned {got} outcomes for {expected} record(s)"),
            }),
            Failure::Contract(reason) => RecordError::ContractViolation(Violation {
                column: None,
                row: None,
                reason,
            }),
        }
    }

    /// One sandbox, one `process` call. The outer `Result` is for run-level failures.
    fn call(
        &mut self,
        records: &[PendingRecord],
        memory_cap: u64,
    ) -> Result<Result<Vec<RecordOutcome>, Failure>, Error> {
        self.stats.calls += 1;
        self.chunk_calls += 1;
        let call_number = self.chunk_calls;
        // Each call may keep up to the run's whole log cap; the run's cap itself is applied
        // in input order when the logs are written, so they come out the same however many
        // runners worked on the run.
        let capture = OutputCapture::new(self.settings.max_log_bytes as usize);
        let mut store = self.sandbox(records, &capture, memory_cap)?;
        let hook = match self.configure(&mut store) {
            Ok(Ok(hook)) => hook,
            Ok(Err(message)) => return Err(Error::ConfigRejected(message)),
            Err(error) => {
                self.collect(&mut store, &capture, call_number, records);
                return match classify(&error, &store) {
                    Err(Stop::Cancelled) => Err(Error::Cancelled),
                    Ok(Failure::Memory) => Ok(Err(Failure::ConfigureMemory)),
                    Ok(failure) => Err(Error::ConfigureFailed(describe(failure, &error))),
                    Err(Stop::Timeout) => Err(Error::ConfigureFailed(format!(
                        "ran past its timeout of {} ms",
                        DEFAULT_CONFIGURE_TIMEOUT.as_millis()
                    ))),
                };
            }
        };
        let result = self.process(&mut store, &hook, records);
        let output = self.collect(&mut store, &capture, call_number, records);
        let answer = match result {
            Ok(answer) => answer,
            Err(error) => {
                return match classify(&error, &store) {
                    Ok(Failure::Trap(message)) => {
                        Ok(Err(Failure::Trap(with_guest_hint(message, &output))))
                    }
                    Ok(failure) => Ok(Err(failure)),
                    Err(Stop::Timeout) => Ok(Err(Failure::Timeout {
                        record: store.data().budget.out_of_time().map(|i| i as usize),
                    })),
                    Err(Stop::Cancelled) => Err(Error::Cancelled),
                };
            }
        };
        let outcomes = match by_record(answer, records.len()) {
            Ok(outcomes) => outcomes,
            Err(failure) => return Ok(Err(failure)),
        };
        self.count_record_fuel(store.data().budget.per_record());
        Ok(Ok(outcomes.into_iter().map(|o| self.settle(o)).collect()))
    }

    /// Adds the settled call's per-record fuel to the stats.
    fn count_record_fuel(&mut self, per_record: &[Option<u64>]) {
        for used in per_record.iter().flatten() {
            self.stats.fuel_per_record_max = self.stats.fuel_per_record_max.max(*used);
            self.stats.fuel_records_metered += 1;
        }
    }

    /// A fresh store at the current memory cap, showing the call's records' files.
    fn sandbox(
        &self,
        records: &[PendingRecord],
        capture: &OutputCapture,
        memory_cap: u64,
    ) -> Result<Store, Error> {
        let preopens: Vec<_> = records
            .iter()
            .filter_map(|r| Some((r.files_host_dir.clone()?, r.record.files_dir.clone()?)))
            .collect();
        let spec = SandboxSpec {
            memory_cap,
            capture,
            preopens: &preopens,
        };
        self.hook.host().new_store(&spec).map_err(|e| Error::Io {
            path: "files directory".into(),
            source: e,
        })
    }

    /// Installs `budget` on the store: fuel, and the deadline (which the run's cancellation
    /// also stops). With fuel metering off (`HostConfig::fuel_metering`), the fuel limit is not
    /// enforced and no fuel is counted.
    fn install(&self, store: &mut Store, fuel: u64, time: std::time::Duration, records: u32) {
        let budget = Budget::pooled(
            self.hook.host().fuel_metering(),
            records,
            fuel,
            sandbox::ticks_for(time),
        );
        // Setting fuel fails only on an engine without fuel metering, which `pooled` knows.
        let _ = sandbox::install_budget(store, budget, self.settings.cancel.clone());
    }

    /// Instantiates and configures, on `configure`'s own budget.
    fn configure(&mut self, store: &mut Store) -> wasmtime::Result<Result<HookInstance, String>> {
        self.install(store, DEFAULT_CONFIGURE_FUEL, DEFAULT_CONFIGURE_TIMEOUT, 0);
        let hook = self.hook.pre().instantiate(&mut *store)?;
        let answer = hook.call_configure(&mut *store, &self.settings.config_json)?;
        self.stats.fuel_consumed += fuel_used(store);
        Ok(answer.map(|()| hook))
    }

    /// Calls `process` with the records' budget: one record's at each `begin-record`, N
    /// records' pooled until the first.
    fn process(
        &mut self,
        store: &mut Store,
        hook: &HookInstance,
        records: &[PendingRecord],
    ) -> wasmtime::Result<Vec<bindings::RecordOutcome>> {
        let limits = self.settings.limits;
        self.install(
            store,
            limits.fuel_per_record,
            limits.timeout,
            records.len() as u32,
        );
        let wit_records: Vec<bindings::Record<'_>> =
            records.iter().map(|r| r.record.as_wit()).collect();
        hook.call_process(&mut *store, &wit_records)
    }
}

type Store = wasmtime::Store<SandboxState>;
type HookInstance = bindings::Hook;

/// Ends the store's budget: the open segment is charged to its record. Returns the fuel used
/// since the budget was installed.
fn fuel_used(store: &mut Store) -> u64 {
    let left = sandbox::fuel_left(store);
    store.data_mut().budget.finish(left)
}

/// Matches a call's answer to its records: one outcome per record, each index exactly once
/// and in range. Returns the outcomes in record order.
fn by_record(
    answer: Vec<bindings::RecordOutcome>,
    records: usize,
) -> Result<Vec<Outcome>, Failure> {
    if answer.len() != records {
        return Err(Failure::OutcomeCount {
            expected: records,
            got: answer.len(),
        });
    }
    let mut slots: Vec<Option<Outcome>> = (0..records).map(|_| None).collect();
    for named in answer {
        let index = named.index as usize;
        match slots.get_mut(index) {
            None => {
                return Err(Failure::Contract(format!(
                    "an outcome names record index {index}, but the call has {records} record(s)"
                )));
            }
            Some(Some(_)) => {
                let missing = slots.iter().position(Option::is_none).unwrap_or(index);
                return Err(Failure::Contract(format!(
                    "two outcomes name record index {index} (so one of the call's records, \
                     index {missing} or later, has none)"
                )));
            }
            Some(slot) => *slot = Some(named.outcome),
        }
    }
    // The count matched and no index repeated or fell outside, so every slot is filled.
    Ok(slots.into_iter().flatten().collect())
}

impl BatchRunner {
    /// Collects a finished call's fuel, memory and output; returns the output it captured.
    fn collect(
        &mut self,
        store: &mut Store,
        capture: &OutputCapture,
        call_number: u64,
        records: &[PendingRecord],
    ) -> Vec<u8> {
        self.stats.fuel_consumed += fuel_used(store);
        self.stats.peak_memory_bytes = self.stats.peak_memory_bytes.max(store.data().memory.peak());
        let captured = capture.take();
        self.stats.log_bytes_dropped += captured.dropped;
        if !captured.bytes.is_empty() {
            self.log_call(call_number, records, &captured.bytes);
        }
        captured.bytes
    }

    fn log_call(&mut self, call: u64, records: &[PendingRecord], bytes: &[u8]) {
        use std::io::Write as _;
        let first = records.first().map_or("", |r| r.record.id.as_str());
        let last = records.last().map_or("", |r| r.record.id.as_str());
        let span = if records.len() == 1 {
            format!("record {first}")
        } else {
            format!("{} records, {first} .. {last}", records.len())
        };
        let _ = writeln!(self.logs, "--- call {call}: {span} ---");
        self.logs.extend_from_slice(bytes);
        if !bytes.ends_with(b"\n") {
            self.logs.push(b'\n');
        }
    }

    /// Turns the guest's outcome for one record into the host's, checking rows and sizes.
    fn settle(&self, outcome: Outcome) -> RecordOutcome {
        match outcome {
            Outcome::Passed(rows) => match self
                .hook
                .contract()
                .check_rows_keeping(rows, self.settings.keep_values)
            {
                Ok(checked) if checked.json_bytes > self.settings.max_output_bytes_per_record => {
                    RecordOutcome::Errored(RecordError::OutputTooLarge {
                        bytes: checked.json_bytes,
                        limit: self.settings.max_output_bytes_per_record,
                    })
                }
                Ok(checked) => RecordOutcome::Passed(checked),
                Err(violation) => RecordOutcome::Errored(RecordError::ContractViolation(violation)),
            },
            Outcome::Rejected(reason) => RecordOutcome::Rejected(truncate(reason)),
            Outcome::Errored(error) => RecordOutcome::Errored(RecordError::Guest {
                message: truncate(error.message),
                retryable: error.retryable,
            }),
        }
    }
}

/// Sorts a failed call's error: our own deadline stop, fuel, a denied memory grow, or a trap.
fn classify(error: &wasmtime::Error, store: &Store) -> Result<Failure, Stop> {
    if let Some(stop) = error.downcast_ref::<Stop>() {
        return Err(*stop);
    }
    if let Some(misuse) = error.downcast_ref::<BeginRecordMisuse>() {
        return Ok(Failure::Contract(misuse.to_string()));
    }
    let trap = error.downcast_ref::<Trap>();
    match trap {
        Some(Trap::OutOfFuel) => {
            return Ok(Failure::Fuel {
                record: store.data().budget.out_of_fuel().map(|i| i as usize),
            });
        }
        Some(Trap::Interrupt) => return Err(Stop::Timeout),
        _ => {}
    }
    // A denied grow usually surfaces as an abort (`unreachable`), so the limiter's record,
    // not the trap code, says whether memory was the cause.
    if store.data().memory.denied().is_some() {
        return Ok(Failure::Memory);
    }
    Ok(Failure::Trap(sandbox::failure_line(error)))
}

fn describe(failure: Failure, error: &wasmtime::Error) -> String {
    match failure {
        Failure::Trap(message) => message,
        Failure::Fuel { .. } => "ran out of fuel".into(),
        other => format!("{other:?}: {error:#}"),
    }
}

/// Adds the guest's own account of a trap — a Rust panic message, or the last line it
/// printed — to the trap's description.
fn with_guest_hint(message: String, output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let hint = match lines.iter().rposition(|l| l.contains("panicked at")) {
        Some(at) => lines[at..]
            .iter()
            .take(2)
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
        None => match lines.last() {
            Some(last) => (*last).to_owned(),
            None => return message,
        },
    };
    format!("{message}; guest output: {}", truncate(hint))
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_lifted_from_guest_output() {
        let output = b"starting\nthread '<unnamed>' panicked at src/lib.rs:3:5:\nboom in r1\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            with_guest_hint("wasm trap: unreachable".into(), output),
            "wasm trap: unreachable; guest output: thread '<unnamed>' panicked at src/lib.rs:3:5: boom in r1"
        );
        assert_eq!(
            with_guest_hint("t".into(), b"last words\n"),
            "t; guest output: last words"
        );
        assert_eq!(with_guest_hint("t".into(), b""), "t");
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let cut = truncate("é".repeat(MAX_MESSAGE_BYTES));
        assert!(cut.len() <= MAX_MESSAGE_BYTES + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
