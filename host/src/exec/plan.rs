//! One hook's resolved settings: the component, where it came from, its canonical config and
//! its limits clamped to the host's ceilings. What a [lane](super::lane) runs.

use crate::component::HookComponent;
use crate::config::canonical_config;
use crate::error::Error;
use crate::limits::{Limits, format_size};

/// A checked request to run one hook.
#[derive(Debug, Clone)]
pub struct Plan {
    name: String,
    hook: HookComponent,
    release: Option<(String, u32)>,
    config_json: String,
    limits: Limits,
    memory_ceiling: u64,
}

impl Plan {
    /// Plans `hook` under `name` (the name its outputs go under in a batch directory):
    /// checks the config (JSON, made canonical; `None` is `{}`) and clamps `limits` to the
    /// host's ceilings and to `memory_ceiling` (the most the cap may double to in this run;
    /// `None` for the host's ceiling), warning about each value lowered. `release` is the
    /// registered name and version, when the component is a release.
    pub fn new(
        name: impl Into<String>,
        hook: HookComponent,
        release: Option<(String, u32)>,
        config: Option<&str>,
        limits: &Limits,
        memory_ceiling: Option<u64>,
    ) -> Result<Plan, Error> {
        let mut ceilings = *hook.host().ceilings();
        if let Some(ceiling) = memory_ceiling {
            ceilings.memory_bytes = ceilings.memory_bytes.min(ceiling.max(1));
        }
        let clamped = limits.clamped(&ceilings);
        for change in clamp_changes(limits, &clamped) {
            tracing::warn!(hook = %hook.digest(), "{change}, the host's limit");
        }
        Ok(Plan {
            name: name.into(),
            config_json: canonical_config(config)?,
            hook,
            release,
            limits: clamped,
            memory_ceiling: ceilings.memory_bytes,
        })
    }

    /// The name its outputs go under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The component.
    pub fn hook(&self) -> &HookComponent {
        &self.hook
    }

    /// The registered name and version, when the component is a release.
    pub fn release(&self) -> Option<&(String, u32)> {
        self.release.as_ref()
    }

    /// The config as canonical JSON text.
    pub fn config_json(&self) -> &str {
        &self.config_json
    }

    /// The limits, clamped.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The most the memory cap may double to.
    pub fn memory_ceiling(&self) -> u64 {
        self.memory_ceiling
    }
}

/// What clamping changed, in words: `memory 8GiB changed to 4GiB`.
fn clamp_changes(asked: &Limits, granted: &Limits) -> Vec<String> {
    let mut changes = Vec::new();
    let mut note = |what: &str, asked: String, granted: String| {
        if asked != granted {
            changes.push(format!("{what} {asked} changed to {granted}"));
        }
    };
    note(
        "fuel",
        asked.fuel_per_record.to_string(),
        granted.fuel_per_record.to_string(),
    );
    note(
        "memory",
        format_size(asked.memory_bytes),
        format_size(granted.memory_bytes),
    );
    note(
        "max OOM retries",
        asked.max_oom_retries.to_string(),
        granted.max_oom_retries.to_string(),
    );
    note(
        "timeout",
        format!("{:?}", asked.timeout),
        format!("{:?}", granted.timeout),
    );
    changes
}
