//! A [`Snapshot`]: the hooks a batch runs, resolved once and fixed for the whole batch.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::component::HookComponent;
use crate::config::canonical_config;
use crate::digest::{hex, sha256_digest};
use crate::error::Error;
use crate::limits::Limits;
use crate::registry::{Release, check_hook_name};

/// The hooks a batch runs, fixed when resolved. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Snapshot {
    hooks: Arc<[SnapshotHook]>,
    digest: String,
}

impl Snapshot {
    /// A snapshot of `hooks`: at least one, names valid (`^[a-z][a-z0-9_]{0,39}$`) and
    /// distinct, configs JSON.
    ///
    /// ```no_run
    /// use hookhost::{Host, HostConfig};
    /// use hookhost::embed::{Snapshot, SnapshotHook};
    ///
    /// let host = Host::new(HostConfig::default())?;
    /// let hook = host.load_file("require_fields.wasm".as_ref())?;
    /// let snapshot = Snapshot::new(vec![
    ///     SnapshotHook::new("require_fields", hook).with_config(r#"{"required": ["title"]}"#),
    /// ])?;
    /// println!("{}", snapshot.digest());
    /// # Ok::<(), hookhost::Error>(())
    /// ```
    pub fn new(hooks: Vec<SnapshotHook>) -> Result<Snapshot, Error> {
        if hooks.is_empty() {
            return Err(Error::InvalidHookName {
                name: String::new(),
                reason: "a snapshot needs at least one hook",
            });
        }
        let mut digest = Sha256::new();
        for (index, hook) in hooks.iter().enumerate() {
            check_hook_name(&hook.name)?;
            if hooks[..index].iter().any(|h| h.name == hook.name) {
                return Err(Error::DuplicateHook {
                    name: hook.name.clone(),
                });
            }
            let config = canonical_config(hook.config.as_deref())?;
            let line = serde_json::json!([
                hook.name,
                hook.release.as_ref().map(|r| r.version),
                hook.component.digest(),
                sha256_digest(config.as_bytes()),
                hook.limits.fuel_per_record,
                hook.limits.memory_bytes,
                hook.limits.max_oom_retries,
                hook.limits.timeout.as_millis() as u64,
            ]);
            digest.update(line.to_string().as_bytes());
            digest.update(b"\n");
        }
        Ok(Snapshot {
            hooks: hooks.into(),
            digest: format!("sha256:{}", hex(&digest.finalize())),
        })
    }

    /// The hooks, in the order given.
    pub fn hooks(&self) -> &[SnapshotHook] {
        &self.hooks
    }

    /// `sha256:` over every hook's name, version, component digest, config digest and
    /// limits: two snapshots with the same digest run the same code the same way.
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

/// One hook of a [`Snapshot`].
#[derive(Debug, Clone)]
pub struct SnapshotHook {
    /// The name its outputs go under (`DIR/<name>/`).
    pub name: String,
    /// The release it came from, if it came from the registry.
    pub release: Option<Release>,
    /// The loaded component.
    pub component: HookComponent,
    /// The config as JSON text; `{}` when `None`.
    pub config: Option<String>,
    /// The limits, clamped to the host's ceilings when the batch begins.
    pub limits: Limits,
}

impl SnapshotHook {
    /// `component` under `name`, with no config and default limits.
    pub fn new(name: impl Into<String>, component: HookComponent) -> Self {
        SnapshotHook {
            name: name.into(),
            release: None,
            component,
            config: None,
            limits: Limits::default(),
        }
    }

    /// A release's component with the release's config and limits.
    pub fn from_release(component: HookComponent, release: Release) -> Self {
        SnapshotHook {
            name: release.hook.clone(),
            config: Some(release.config.clone()),
            limits: release.limits.to_limits(),
            release: Some(release),
            component,
        }
    }

    /// Sets the config (JSON text).
    pub fn with_config(mut self, config: impl Into<String>) -> Self {
        self.config = Some(config.into());
        self
    }

    /// Sets the limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}
