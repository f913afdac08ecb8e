//! Limits on what one record may cost, and the host-wide ceilings that clamp them.
//!
//! A run has [`Limits`]: fuel per record, a starting memory cap, how many times the cap may
//! double after an out-of-memory failure, and a wall-clock timeout per record. The host has
//! [`Ceilings`], the most any run may ask for; [`Limits::clamped`] applies them. Every number
//! here is written once, as a named default.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

/// Fuel (roughly, WebAssembly instructions) each record may use. A hook that announces its
/// records (`begin-record`, which the SDKs call) gets this afresh for each; one that does not
/// shares N times this over a call of N records. A billion is around a second of guest work: a hundred times what the example
/// hooks need per record, while an infinite loop is still stopped quickly.
pub const DEFAULT_FUEL_PER_RECORD: u64 = 1_000_000_000;
/// The sandbox's starting linear-memory cap.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 * MIB;
/// The most memory any sandbox may get, however often the cap doubles: the whole 32-bit
/// WebAssembly address space.
pub const DEFAULT_MEMORY_CEILING_BYTES: u64 = 4096 * MIB;
/// How many times a run may double its memory cap after out-of-memory failures.
pub const DEFAULT_MAX_OOM_RETRIES: u32 = 3;
/// The wall-clock time each record may take, per announced record like the fuel (a hook that
/// does not announce its records shares N times this over a call of N).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The fuel `configure` may use in each sandbox (instantiation included). It is the host's,
/// not the run's: a run with a small per-record budget still configures, and its records error
/// `fuel_exhausted` one by one. Running out fails the run (the hook cannot be configured).
pub const DEFAULT_CONFIGURE_FUEL: u64 = 1_000_000_000;
/// The wall-clock time `configure` may take in each sandbox; like [`DEFAULT_CONFIGURE_FUEL`],
/// independent of the per-record timeout.
pub const DEFAULT_CONFIGURE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most fuel per record an operator may ask for.
pub const MAX_FUEL_PER_RECORD: u64 = 1_000_000_000_000;
/// The most OOM retries an operator may ask for.
pub const MAX_OOM_RETRIES: u32 = 16;
/// The longest per-record timeout an operator may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// What one run lets each record cost.
///
/// Build one with [`Limits::default`] and the setters, then [`Limits::clamped`] to the host's
/// [`Ceilings`] (the runner does this itself).
///
/// ```
/// use hookhost::limits::{Limits, MIB};
/// use std::time::Duration;
///
/// let limits = Limits::default()
///     .with_memory_bytes(32 * MIB)
///     .with_timeout(Duration::from_secs(2));
/// assert_eq!(limits.memory_bytes, 32 * MIB);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Fuel per record, given afresh at each record's start (`begin-record`); a hook that does
    /// not announce its records shares N × this over a call of N. `configure` has its own
    /// budget ([`DEFAULT_CONFIGURE_FUEL`]). Running out errors the record with kind
    /// `fuel_exhausted` and is not retried. By default [`DEFAULT_FUEL_PER_RECORD`].
    pub fuel_per_record: u64,
    /// The starting cap on the sandbox's linear memory. A call that fails because a memory
    /// grow was denied is run again with the cap doubled (see `max_oom_retries`); the raised
    /// cap stays for the rest of the run. By default [`DEFAULT_MEMORY_BYTES`].
    pub memory_bytes: u64,
    /// How many times the memory cap may double in one run, never above the ceiling.
    /// By default [`DEFAULT_MAX_OOM_RETRIES`].
    pub max_oom_retries: u32,
    /// Wall-clock time per record, enforced by epoch interruption and given afresh at each
    /// record's start like the fuel (pooled as N × this for a hook that does not announce its
    /// records; `configure` has [`DEFAULT_CONFIGURE_TIMEOUT`]). Running out errors the record with kind `timeout`. By default
    /// [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel_per_record: DEFAULT_FUEL_PER_RECORD,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            max_oom_retries: DEFAULT_MAX_OOM_RETRIES,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl Limits {
    /// Sets [`Limits::fuel_per_record`].
    pub fn with_fuel_per_record(mut self, fuel: u64) -> Self {
        self.fuel_per_record = fuel;
        self
    }

    /// Sets [`Limits::memory_bytes`].
    pub fn with_memory_bytes(mut self, bytes: u64) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// Sets [`Limits::max_oom_retries`].
    pub fn with_max_oom_retries(mut self, retries: u32) -> Self {
        self.max_oom_retries = retries;
        self
    }

    /// Sets [`Limits::timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// These limits with every value brought within `ceilings` (and at least 1 where zero
    /// would make no sense).
    pub fn clamped(self, ceilings: &Ceilings) -> Limits {
        Limits {
            fuel_per_record: self.fuel_per_record.clamp(1, ceilings.fuel_per_record),
            memory_bytes: self.memory_bytes.clamp(1, ceilings.memory_bytes),
            max_oom_retries: self.max_oom_retries.min(ceilings.max_oom_retries),
            timeout: self
                .timeout
                .clamp(Duration::from_millis(1), ceilings.timeout),
        }
    }
}

/// The host-wide maxima: operator overrides are clamped to these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ceilings {
    /// The most fuel per record. By default [`MAX_FUEL_PER_RECORD`].
    pub fuel_per_record: u64,
    /// The most memory a sandbox may ever get, OOM doubling included. By default
    /// [`DEFAULT_MEMORY_CEILING_BYTES`].
    pub memory_bytes: u64,
    /// The most OOM retries. By default [`MAX_OOM_RETRIES`].
    pub max_oom_retries: u32,
    /// The longest per-record timeout. By default [`MAX_TIMEOUT`].
    pub timeout: Duration,
}

impl Default for Ceilings {
    fn default() -> Self {
        Ceilings {
            fuel_per_record: MAX_FUEL_PER_RECORD,
            memory_bytes: DEFAULT_MEMORY_CEILING_BYTES,
            max_oom_retries: MAX_OOM_RETRIES,
            timeout: MAX_TIMEOUT,
        }
    }
}

/// A value given for a limit could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{input}`: {reason}")]
pub struct ParseLimitError {
    /// What was being parsed: `size`, `duration`, `count`.
    pub what: &'static str,
    /// The text given.
    pub input: String,
    /// Why it was refused.
    pub reason: String,
}

impl ParseLimitError {
    fn new(what: &'static str, input: &str, reason: impl fmt::Display) -> Self {
        ParseLimitError {
            what,
            input: input.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Parses a byte size: a whole number with an optional unit, `B`, `KiB`, `MiB`, `GiB`
/// (powers of 1024; `K`, `M`, `G`, `KB`, `MB`, `GB` mean the same here, as for memory
/// limits in most tools).
///
/// ```
/// use hookhost::limits::{parse_size, MIB};
/// assert_eq!(parse_size("32MiB").unwrap(), 32 * MIB);
/// assert_eq!(parse_size("1g").unwrap(), 1024 * MIB);
/// assert!(parse_size("12 parsecs").is_err());
/// ```
pub fn parse_size(input: &str) -> Result<u64, ParseLimitError> {
    let text = input.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(ParseLimitError::new(
            "size",
            input,
            "expected a whole number with an optional unit, e.g. 64MiB",
        ));
    }
    let number: u64 = digits
        .parse()
        .map_err(|e| ParseLimitError::new("size", input, e))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(ParseLimitError::new(
                "size",
                input,
                format!("unknown unit `{other}`; use B, KiB, MiB or GiB"),
            ));
        }
    };
    let bytes = number
        .checked_mul(multiplier)
        .ok_or_else(|| ParseLimitError::new("size", input, "too large"))?;
    if bytes == 0 {
        return Err(ParseLimitError::new("size", input, "must be more than 0"));
    }
    Ok(bytes)
}

/// Parses a duration: a number with a unit, `ms`, `s`, `m` or `h` (`1.5s` is allowed).
///
/// ```
/// use hookhost::limits::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
/// assert!(parse_duration("10").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, ParseLimitError> {
    let text = input.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        ParseLimitError::new(
            "duration",
            input,
            "expected a number with a unit, e.g. 500ms, 10s, 2m",
        )
    })?;
    let seconds_per_unit = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "" => {
            return Err(ParseLimitError::new(
                "duration",
                input,
                "missing unit; use ms, s, m or h",
            ));
        }
        other => {
            return Err(ParseLimitError::new(
                "duration",
                input,
                format!("unknown unit `{other}`; use ms, s, m or h"),
            ));
        }
    };
    let duration = Duration::try_from_secs_f64(value * seconds_per_unit)
        .map_err(|e| ParseLimitError::new("duration", input, e))?;
    if duration.is_zero() {
        return Err(ParseLimitError::new(
            "duration",
            input,
            "must be more than 0",
        ));
    }
    Ok(duration)
}

/// Renders a byte count the way [`parse_size`] reads it back, in the largest exact unit.
pub fn format_size(bytes: u64) -> String {
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// Records per call, by default. Larger chunks amortise the sandbox's start; smaller ones bound
/// what a failing record costs: the rerun of its batch-mates (and, for a hook that does not
/// announce its records, the call's pooled budget of N × fuel, N × time).
pub const DEFAULT_CHUNK_SIZE: usize = 16;
/// Records per call, by default, for a heavy component: one whose largest initial linear
/// memory is at least [`HEAVY_MEMORY_IMAGE_BYTES`] (an interpreter and its heap, such as a
/// Python component's ~14 MiB). Starting such a sandbox costs about a millisecond (its memory
/// image mapped in page by page as the call touches it, its function tables filled), which
/// chunks of 16 would pay every 16 records (issue 13).
pub const HEAVY_CHUNK_SIZE: usize = 256;
/// A WebAssembly page: the unit linear memories are sized in.
pub const WASM_PAGE_BYTES: u64 = 64 << 10;
/// The initial linear memory from which a component is heavy ([`HEAVY_CHUNK_SIZE`]): 8 MiB.
/// Rust hooks start with about 1 MiB.
pub const HEAVY_MEMORY_IMAGE_BYTES: u64 = 8 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("4KiB").unwrap(), 4096);
        assert_eq!(parse_size("32MiB").unwrap(), 32 * MIB);
        assert_eq!(parse_size("32 mb").unwrap(), 32 * MIB);
        assert_eq!(parse_size("2GiB").unwrap(), 2048 * MIB);
    }

    #[test]
    fn bad_sizes_say_why() {
        let err = parse_size("lots").unwrap_err();
        assert_eq!(err.what, "size");
        assert!(err.to_string().contains("`lots`"), "{err}");
        assert!(
            parse_size("3TiB")
                .unwrap_err()
                .reason
                .contains("unknown unit")
        );
        assert!(parse_size("0").unwrap_err().reason.contains("more than 0"));
        assert!(parse_size("99999999999999999999GiB").is_err());
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(
            parse_duration("5")
                .unwrap_err()
                .reason
                .contains("missing unit")
        );
        assert!(parse_duration("5 fortnights").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn clamping_respects_ceilings() {
        let ceilings = Ceilings {
            memory_bytes: 128 * MIB,
            ..Ceilings::default()
        };
        let limits = Limits::default()
            .with_memory_bytes(1024 * MIB)
            .with_fuel_per_record(0)
            .clamped(&ceilings);
        assert_eq!(limits.memory_bytes, 128 * MIB);
        assert_eq!(limits.fuel_per_record, 1);
    }

    #[test]
    fn sizes_format_in_exact_units() {
        assert_eq!(format_size(64 * MIB), "64MiB");
        assert_eq!(format_size(1536), "1536B");
        assert_eq!(format_size(2048), "2KiB");
    }
}
